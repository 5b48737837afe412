//! Cycle boundaries and group selection (RSP-214 … RSP-218).
//!
//! A rotation is anchored at the virtual start V. Hour cycles count elapsed time from V; day,
//! week and month cycles count calendar units from the *wall-clock* date-time of V, so they
//! keep their handoff time across DST (OQ-13).

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;

use super::error::ScheduleError;
use super::model::RotationUnit;
use super::zone::{self, HOUR_MS};
use crate::model::Millis;

/// One cycle: `[start, end)` with index k (cycle 0 may be a partial cycle starting at S).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cycle {
    pub index: i64,
    pub start: Millis,
    pub end: Millis,
}

#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    unit: RotationUnit,
    value: i64,
    /// The nominal wall-clock date-time of V. Boundaries are this plus whole calendar units,
    /// converted with RSP-215; keeping the nominal value (not `local(V)`) means a V that fell
    /// into a DST gap does not drag every later handoff off its configured time.
    anchor: DateTime,
    /// V as an instant.
    v: Millis,
}

impl Rotation {
    /// RSP-214 "Virtual start": with a handoff {w, h}, H0 is the first instant ≥ S at local
    /// weekday w and time h; V = S when H0 = S, else H0's wall clock minus 7 calendar days
    /// (so cycle 0 is the partial cycle [S, H0), served by g(0) — OQ-12). Without one, V = S.
    pub(crate) fn new(
        tz: &TimeZone,
        layer_start: Millis,
        unit: RotationUnit,
        value: i64,
        handoff: Option<(i64, Time)>,
    ) -> Result<Self, ScheduleError> {
        let start_local = zone::local(tz, layer_start)?;
        let (anchor, v) = match handoff {
            None => (start_local, layer_start),
            Some((w, h)) => {
                let ahead = (w - zone::weekday(start_local.date())).rem_euclid(7);
                let mut h0 = zone::add_days(start_local.date().to_datetime(h), ahead)?;
                if zone::to_instant(tz, h0)? < layer_start {
                    h0 = zone::add_days(h0, 7)?;
                }
                if zone::to_instant(tz, h0)? == layer_start {
                    (h0, layer_start)
                } else {
                    let anchor = zone::add_days(h0, -7)?;
                    (anchor, zone::to_instant(tz, anchor)?)
                }
            }
        };
        Ok(Rotation {
            unit,
            value,
            anchor,
            v,
        })
    }

    /// `h*` of RSP-220: the local time of day of V.
    pub(crate) fn handoff_time(&self) -> Time {
        self.anchor.time()
    }

    /// `b_k` (RSP-214, RSP-216).
    pub(crate) fn boundary(&self, tz: &TimeZone, k: i64) -> Result<Millis, ScheduleError> {
        let overflow = || ScheduleError::out_of_range("time");
        let steps = k.checked_mul(self.value).ok_or_else(overflow)?;
        match self.unit {
            // Elapsed time: an hour cycle is always exactly v hours, across DST too.
            RotationUnit::Hour => steps
                .checked_mul(HOUR_MS)
                .and_then(|d| self.v.checked_add(d))
                .ok_or_else(overflow),
            RotationUnit::Day => zone::to_instant(tz, zone::add_days(self.anchor, steps)?),
            RotationUnit::Week => {
                let days = steps.checked_mul(7).ok_or_else(overflow)?;
                zone::to_instant(tz, zone::add_days(self.anchor, days)?)
            }
            RotationUnit::Month => {
                zone::to_instant(tz, zone::add_months_clamped(self.anchor, steps)?)
            }
        }
    }

    /// The cycle containing t: the largest k with `b_k ≤ t`. `None` before V.
    ///
    /// Boundaries never decrease with k, but a DST change (or a zone skipping a whole day,
    /// as Samoa did in 2011) can make one cycle empty; taking the *largest* such k skips it.
    pub(crate) fn cycle_at(
        &self,
        tz: &TimeZone,
        t: Millis,
    ) -> Result<Option<Cycle>, ScheduleError> {
        if t < self.v {
            return Ok(None);
        }
        let mut k = self.estimate(tz, t)?.max(0);
        // The estimate is off by at most one cycle in practice; the bound only guards against
        // looping forever on corrupt data.
        for _ in 0..64 {
            if k > 0 && self.boundary(tz, k)? > t {
                k -= 1;
                continue;
            }
            let next = self.boundary(tz, k + 1)?;
            if next <= t {
                k += 1;
                continue;
            }
            return Ok(Some(Cycle {
                index: k,
                start: self.boundary(tz, k)?,
                end: next,
            }));
        }
        Err(ScheduleError::out_of_range("time"))
    }

    /// A first guess of the cycle index from elapsed wall-clock units.
    fn estimate(&self, tz: &TimeZone, t: Millis) -> Result<i64, ScheduleError> {
        Ok(match self.unit {
            RotationUnit::Hour => t.saturating_sub(self.v).div_euclid(self.value * HOUR_MS),
            RotationUnit::Day | RotationUnit::Week => {
                let per = if self.unit == RotationUnit::Week {
                    7 * self.value
                } else {
                    self.value
                };
                let days = zone::days_between(self.anchor.date(), zone::local(tz, t)?.date());
                days.div_euclid(per)
            }
            RotationUnit::Month => {
                let lt = zone::local(tz, t)?;
                let months = (i64::from(lt.year()) * 12 + i64::from(lt.month()))
                    - (i64::from(self.anchor.year()) * 12 + i64::from(self.anchor.month()));
                months.div_euclid(self.value)
            }
        })
    }
}

/// g(k): which group serves cycle k (RSP-217, RSP-218).
///
/// Fair rotation (OQ-16): with P the cycle in nominal hours and B = lcm(P, 168) / P the number
/// of cycles after which the rotation lands on the same hours of the week again, plain
/// rotation is already fair when gcd(n, B) = 1. Otherwise the order shifts by one position
/// every M = lcm(n, B) cycles, so over n blocks every group covers every position of the week.
/// Months do not line up with weeks at all, so fair rotation does nothing for them.
pub(crate) fn group_index(k: i64, n: usize, unit: RotationUnit, value: i64, fair: bool) -> usize {
    let n = n as i64;
    if n <= 0 {
        return 0;
    }
    let plain = k.rem_euclid(n) as usize;
    let p = match unit {
        _ if !fair => return plain,
        RotationUnit::Month => return plain,
        RotationUnit::Hour => value,
        RotationUnit::Day => 24 * value,
        RotationUnit::Week => 168 * value,
    };
    if p <= 0 {
        return plain;
    }
    let b = lcm(p, 168) / p;
    if gcd(n, b) == 1 {
        return plain;
    }
    let m = lcm(n, b);
    (k + k.div_euclid(m)).rem_euclid(n) as usize
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

fn lcm(a: i64, b: i64) -> i64 {
    a / gcd(a, b) * b
}

#[cfg(test)]
mod tests {
    use super::*;

    // spec: RSP-217
    #[test]
    fn plain_rotation_is_k_mod_n() {
        let got: Vec<usize> = (0..7)
            .map(|k| group_index(k, 3, RotationUnit::Day, 1, false))
            .collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
    }

    // spec: RSP-218
    #[test]
    fn fair_rotation_has_no_effect_for_months() {
        for k in 0..30 {
            assert_eq!(
                group_index(k, 7, RotationUnit::Month, 1, true),
                (k % 7) as usize
            );
        }
    }

    // spec: RSP-218 — within each block of M cycles every group serves exactly M/n times, and
    // over n blocks every group covers every position of the week.
    #[test]
    fn fair_rotation_is_fair_per_block_and_covers_every_position() {
        for (n, unit, value) in [
            (7usize, RotationUnit::Day, 1i64),
            (2, RotationUnit::Hour, 12),
            (3, RotationUnit::Day, 1),
            (14, RotationUnit::Day, 1),
            (4, RotationUnit::Hour, 6),
        ] {
            let p = match unit {
                RotationUnit::Hour => value,
                _ => 24 * value,
            };
            let b = lcm(p, 168) / p;
            let m = lcm(n as i64, b);
            for block in 0..n as i64 {
                let mut counts = vec![0; n];
                for k in block * m..(block + 1) * m {
                    counts[group_index(k, n, unit, value, true)] += 1;
                }
                assert!(counts.iter().all(|&c| c == m / n as i64), "{n} {counts:?}");
            }
            let mut seen = vec![std::collections::BTreeSet::new(); n];
            for k in 0..(n as i64 * m) {
                seen[group_index(k, n, unit, value, true)].insert(k % b);
            }
            assert!(seen.iter().all(|s| s.len() == b as usize), "{n} {unit:?}");
        }
    }
}
