//! Per-node rate limiting of pushes (ING-007) and Open API calls (openapi-compat.md 1.8).
//!
//! Windows live in memory on each node. With several nodes behind a balancer each node
//! enforces the limits on its own share; a shared budget would need the database on every
//! request, which costs more than the limit protects.

use std::collections::HashMap;
use std::sync::Mutex;

use klaxon_core::model::Millis;
use klaxon_core::ratelimit::{Admission, PushLimits, RollingWindow, admit_all};

use crate::config::ApiLimits;

const SECOND: Millis = 1000;
const MINUTE: Millis = 60_000;

#[derive(Default)]
struct Windows {
    integration: HashMap<i64, (RollingWindow, RollingWindow)>,
    push_account: HashMap<i64, RollingWindow>,
    api_account: HashMap<i64, (RollingWindow, RollingWindow)>,
}

pub struct Limiter {
    push: PushLimits,
    api: ApiLimits,
    windows: Mutex<Windows>,
}

/// A window that is switched off (limit 0) admits everything: it is left out of the check.
fn window(limit: u32, span: Millis) -> RollingWindow {
    RollingWindow::new(limit, span)
}

fn check(windows: Vec<&mut RollingWindow>, now: Millis) -> Admission {
    let mut active: Vec<&mut RollingWindow> =
        windows.into_iter().filter(|w| w.limit() > 0).collect();
    if active.is_empty() {
        return Admission::Admitted {
            limit: 0,
            remaining: 0,
            reset_at: now,
        };
    }
    admit_all(&mut active, now)
}

impl Limiter {
    pub fn new(push: PushLimits, api: ApiLimits) -> Self {
        Limiter {
            push,
            api,
            windows: Mutex::new(Windows::default()),
        }
    }

    /// One push request of `integration_id` in `account_id` (a batch counts once).
    pub fn admit_push(&self, account_id: i64, integration_id: i64, now: Millis) -> Admission {
        let Ok(mut w) = self.windows.lock() else {
            // A poisoned lock means a panic elsewhere; failing open keeps alerts flowing.
            return Admission::Admitted {
                limit: 0,
                remaining: 0,
                reset_at: now,
            };
        };
        let w = &mut *w;
        let (sec, min) = w.integration.entry(integration_id).or_insert_with(|| {
            (
                window(self.push.per_integration_per_second, SECOND),
                window(self.push.per_integration_per_minute, MINUTE),
            )
        });
        let acct = w
            .push_account
            .entry(account_id)
            .or_insert_with(|| window(self.push.per_account_per_second, SECOND));
        check(vec![sec, min, acct], now)
    }

    /// One Open API call of `account_id`.
    pub fn admit_api(&self, account_id: i64, now: Millis) -> Admission {
        let Ok(mut w) = self.windows.lock() else {
            return Admission::Admitted {
                limit: 0,
                remaining: 0,
                reset_at: now,
            };
        };
        let (sec, min) = w.api_account.entry(account_id).or_insert_with(|| {
            (
                window(self.api.per_account_per_second, SECOND),
                window(self.api.per_account_per_minute, MINUTE),
            )
        });
        check(vec![sec, min], now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // spec: ING-007
    #[test]
    fn per_integration_and_per_account_limits_apply_together() {
        let l = Limiter::new(
            PushLimits {
                per_integration_per_second: 2,
                per_integration_per_minute: 1000,
                per_account_per_second: 3,
            },
            ApiLimits::default(),
        );
        assert!(matches!(l.admit_push(1, 10, 0), Admission::Admitted { .. }));
        assert!(matches!(l.admit_push(1, 10, 1), Admission::Admitted { .. }));
        assert!(
            matches!(l.admit_push(1, 10, 2), Admission::Throttled { .. }),
            "integration: 2/s"
        );
        assert!(matches!(l.admit_push(1, 11, 3), Admission::Admitted { .. }));
        assert!(
            matches!(l.admit_push(1, 12, 4), Admission::Throttled { .. }),
            "account: 3/s"
        );
        assert!(
            matches!(l.admit_push(2, 13, 5), Admission::Admitted { .. }),
            "other accounts are apart"
        );
    }

    #[test]
    fn zero_switches_a_limit_off() {
        let l = Limiter::new(
            PushLimits {
                per_integration_per_second: 0,
                per_integration_per_minute: 0,
                per_account_per_second: 0,
            },
            ApiLimits::default(),
        );
        for i in 0..10_000 {
            assert!(matches!(
                l.admit_push(1, 1, i / 100),
                Admission::Admitted { .. }
            ));
        }
    }
}
