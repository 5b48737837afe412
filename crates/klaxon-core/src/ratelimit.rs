//! Rolling-window rate limits for push endpoints (ING-007).
//!
//! ING-007 says "1000 requests per rolling 60 s". A token bucket (GCRA, as in `governor`)
//! with that quota admits up to twice the limit inside one 60 s window (a full burst, then the
//! refill), so the limit is kept exactly with a log of admission times instead. The log of one
//! window holds at most `limit` instants, so memory is bounded by the limit.

use std::collections::VecDeque;

use crate::model::Millis;

/// At most `limit` admissions in any window of `window_ms`.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    limit: usize,
    window_ms: Millis,
    admitted: VecDeque<Millis>,
}

impl RollingWindow {
    pub fn new(limit: u32, window_ms: Millis) -> Self {
        RollingWindow {
            limit: limit as usize,
            window_ms,
            admitted: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Millis) {
        while let Some(&t) = self.admitted.front() {
            if now - t >= self.window_ms {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
    }

    /// Whether one more request fits at `now`, without admitting it.
    pub fn has_room(&mut self, now: Millis) -> bool {
        self.expire(now);
        self.admitted.len() < self.limit
    }

    /// Records an admission (call only after `has_room` said yes for every window involved,
    /// so a refused request uses up no budget anywhere).
    pub fn admit(&mut self, now: Millis) {
        self.admitted.push_back(now);
    }

    /// Remaining admissions at `now`.
    pub fn remaining(&mut self, now: Millis) -> usize {
        self.expire(now);
        self.limit.saturating_sub(self.admitted.len())
    }

    /// When the oldest admission leaves the window (the earliest instant with room again).
    pub fn reset_at(&mut self, now: Millis) -> Millis {
        self.expire(now);
        self.admitted.front().map_or(now, |t| t + self.window_ms)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// The push limits of one deployment (ING-007 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushLimits {
    pub per_integration_per_second: u32,
    pub per_integration_per_minute: u32,
    pub per_account_per_second: u32,
}

impl Default for PushLimits {
    fn default() -> Self {
        PushLimits {
            per_integration_per_second: 100,
            per_integration_per_minute: 1000,
            per_account_per_second: 200,
        }
    }
}

/// Outcome of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted {
        limit: usize,
        remaining: usize,
        reset_at: Millis,
    },
    Throttled {
        limit: usize,
        reset_at: Millis,
    },
}

/// Checks all windows; admits into all of them or into none (ING-007: a throttled request has
/// no side effects).
pub fn admit_all(windows: &mut [&mut RollingWindow], now: Millis) -> Admission {
    let mut tightest: Option<(usize, usize, Millis)> = None;
    for w in windows.iter_mut() {
        if !w.has_room(now) {
            return Admission::Throttled {
                limit: w.limit(),
                reset_at: w.reset_at(now),
            };
        }
        let remaining = w.remaining(now);
        if tightest.is_none_or(|(_, r, _)| remaining < r) {
            tightest = Some((w.limit(), remaining, w.reset_at(now)));
        }
    }
    for w in windows.iter_mut() {
        w.admit(now);
    }
    let (limit, remaining, reset_at) = tightest.unwrap_or((0, 0, now));
    Admission::Admitted {
        limit,
        remaining: remaining.saturating_sub(1),
        reset_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // spec: ING-007
    #[test]
    fn rolling_minute_never_admits_more_than_the_limit() {
        let mut minute = RollingWindow::new(1000, 60_000);
        let mut admitted = 0;
        // One request every 10 ms for two minutes.
        for i in 0..12_000 {
            let now = i * 10;
            if let Admission::Admitted { .. } = admit_all(&mut [&mut minute], now) {
                admitted += 1;
            }
        }
        // Windows [0,60s) and [60s,120s): 1000 each, never more.
        assert_eq!(admitted, 2000);
    }

    // spec: ING-007
    #[test]
    fn refused_request_uses_no_budget_in_other_windows() {
        let mut second = RollingWindow::new(1, 1000);
        let mut account = RollingWindow::new(5, 1000);
        assert!(matches!(
            admit_all(&mut [&mut second, &mut account], 0),
            Admission::Admitted { .. }
        ));
        assert!(matches!(
            admit_all(&mut [&mut second, &mut account], 1),
            Admission::Throttled { .. }
        ));
        assert_eq!(
            account.remaining(1),
            4,
            "the throttled request did not count for the account"
        );
        assert!(matches!(
            admit_all(&mut [&mut second, &mut account], 1000),
            Admission::Admitted { .. }
        ));
    }

    #[test]
    fn defaults_are_the_spec_defaults() {
        // spec: ING-007
        let l = PushLimits::default();
        assert_eq!(
            (
                l.per_integration_per_second,
                l.per_integration_per_minute,
                l.per_account_per_second
            ),
            (100, 1000, 200)
        );
    }
}
