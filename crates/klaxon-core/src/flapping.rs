//! Flapping detection (ingest.md §2.15, ING-180…184).
//!
//! A "change" of an alert key K is a new incident of the channel whose `first_alert_key` is
//! K. A new incident is flapping when K changed at least `max_changes` times within the last
//! `in_mins` (counting the new incident), or when it falls inside a *mute period*: `mute_mins`
//! after an incident of K that the count flagged.
//!
//! The decision is a pure function over the creation times of the channel's earlier
//! incidents of K. The mute periods are recomputed from those times rather than stored: an
//! incident was "flagged by the count" exactly when the incidents of K in the `in_mins`
//! before it (itself included) reached `max_changes`, which the same times tell. So the
//! caller reads only the incidents of K created in the last `in_mins + mute_mins`
//! ([`FlappingConfig::lookback_ms`]). A consequence worth knowing: the periods are evaluated
//! with the channel's current settings, so after a settings change the earlier incidents are
//! judged by the new numbers (the flags already given are never changed, ING-180).
//!
//! What a flapping incident means for notifications is the response side's business
//! (RSP-203, RSP-204); [`FlappingConfig::mute`] says whether it is muted.

use serde::{Deserialize, Serialize};

use crate::model::Millis;
use crate::response::engine::FlappingMute;
use crate::response::rules::RuleError;

/// ingest.md §1.3.6 FlappingConfig bounds.
pub const MAX_CHANGES_MIN: i64 = 2;
pub const MAX_CHANGES_MAX: i64 = 100;
pub const IN_MINS_MIN: i64 = 1;
pub const IN_MINS_MAX: i64 = 1440;
pub const MUTE_MINS_MIN: i64 = 0;
pub const MUTE_MINS_MAX: i64 = 1440;

const MINUTE_MS: Millis = 60_000;

/// ING-181/182: what the channel does with flapping incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlappingMode {
    /// No detection: every incident has `is_flapping = false`.
    #[default]
    Off,
    /// Flag only; notify as usual (RSP-203).
    Remind,
    /// Flag and mute the flagged incidents for their whole life (RSP-204).
    RemindSuppress,
}

impl FlappingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FlappingMode::Off => "off",
            FlappingMode::Remind => "remind",
            FlappingMode::RemindSuppress => "remind_suppress",
        }
    }

    pub fn parse(s: &str) -> Option<FlappingMode> {
        match s {
            "off" => Some(FlappingMode::Off),
            "remind" => Some(FlappingMode::Remind),
            "remind_suppress" => Some(FlappingMode::RemindSuppress),
            _ => None,
        }
    }
}

/// A channel's flapping settings (ingest.md §1.3.6). Missing fields take the defaults, so
/// the stored JSON of a channel saved before this feature (`{}`) reads as mode `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlappingConfig {
    pub mode: FlappingMode,
    pub max_changes: i64,
    pub in_mins: i64,
    pub mute_mins: i64,
}

impl Default for FlappingConfig {
    /// Q-18: 4 changes in 60 minutes, muted for 60 minutes; detection off.
    fn default() -> Self {
        FlappingConfig {
            mode: FlappingMode::Off,
            max_changes: 4,
            in_mins: 60,
            mute_mins: 60,
        }
    }
}

fn bad(field: &str, message: String) -> RuleError {
    RuleError {
        field: field.to_string(),
        message,
    }
}

fn check(field: &str, v: i64, lo: i64, hi: i64) -> Result<(), RuleError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(bad(field, format!("must be {lo} to {hi}, not {v}")))
    }
}

/// Bounds of ingest.md §1.3.6, checked whatever the mode (a disabled setting is kept for
/// when it is switched on). Fields are named as on the wire (`flapping.max_changes`, …).
pub fn validate(cfg: &FlappingConfig) -> Result<(), RuleError> {
    check(
        "flapping.max_changes",
        cfg.max_changes,
        MAX_CHANGES_MIN,
        MAX_CHANGES_MAX,
    )?;
    check("flapping.in_mins", cfg.in_mins, IN_MINS_MIN, IN_MINS_MAX)?;
    check(
        "flapping.mute_mins",
        cfg.mute_mins,
        MUTE_MINS_MIN,
        MUTE_MINS_MAX,
    )?;
    Ok(())
}

impl FlappingConfig {
    /// How far back the caller must read incidents of the key: the count window plus the
    /// mute period (an incident flagged by the count `mute_mins` ago needed the `in_mins`
    /// before it).
    pub fn lookback_ms(&self) -> Millis {
        self.in_mins
            .max(0)
            .saturating_add(self.mute_mins.max(0))
            .saturating_mul(MINUTE_MS)
    }

    /// RSP-204: the mute the response side applies to an incident created with
    /// `is_flapping`, or `None` when the incident is notified as usual.
    pub fn mute(&self, is_flapping: bool) -> Option<FlappingMute> {
        (is_flapping && self.mode == FlappingMode::RemindSuppress).then_some(FlappingMute {
            max_changes: self.max_changes,
            in_mins: self.in_mins,
            mute_mins: self.mute_mins,
        })
    }
}

/// Why a new incident is (not) flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Mode off, or an incident without a first alert key (manual incidents).
    NotEvaluated,
    /// Fewer than `max_changes` and no mute period.
    Calm,
    /// ING-180 first condition: `changes ≥ max_changes`.
    Count,
    /// ING-180 second condition: inside the mute period that ends at `mute_until`.
    MutePeriod,
}

/// The outcome of [`detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub is_flapping: bool,
    pub reason: Reason,
    /// n of ING-180: incidents of the key in the last `in_mins`, the new one included.
    pub changes: usize,
    /// End of the latest mute period covering `now` (exclusive), 0 when there is none.
    pub mute_until: Millis,
}

/// ING-180: whether a new incident with first alert key `key`, created at `now` in a channel
/// with settings `cfg`, is flapping.
///
/// `earlier` holds the creation times of the channel's other incidents with that
/// `first_alert_key` created before this one (any progress, any grouping method), in
/// creation order; times older than [`FlappingConfig::lookback_ms`] do not matter. Incidents
/// created in the same instant count as earlier when they come first in `earlier` order.
pub fn detect(cfg: &FlappingConfig, key: &str, earlier: &[Millis], now: Millis) -> Verdict {
    if cfg.mode == FlappingMode::Off || key.is_empty() {
        return Verdict {
            is_flapping: false,
            reason: Reason::NotEvaluated,
            changes: 0,
            mute_until: 0,
        };
    }
    let window = cfg.in_mins.max(0).saturating_mul(MINUTE_MS);
    let mute = cfg.mute_mins.max(0).saturating_mul(MINUTE_MS);
    // Keep the given order for equal times (a stable sort): it is the creation order.
    let mut times: Vec<Millis> = earlier.iter().copied().filter(|t| *t <= now).collect();
    times.sort();
    times.push(now);
    let last = times.len() - 1;
    // changes_at(j): incidents among times[..=j] created after times[j] − in_mins.
    let changes_at = |j: usize| -> usize {
        let since = times[j].saturating_sub(window);
        // Sorted: the ones at or before `since` form a prefix.
        j + 1 - times[..=j].partition_point(|t| *t <= since)
    };
    let threshold = usize::try_from(cfg.max_changes.max(0)).unwrap_or(usize::MAX);
    let changes = changes_at(last);
    if changes >= threshold {
        return Verdict {
            is_flapping: true,
            reason: Reason::Count,
            changes,
            mute_until: now.saturating_add(mute),
        };
    }
    let mut mute_until = 0;
    if mute > 0 {
        for (j, t) in times.iter().enumerate().take(last) {
            let end = t.saturating_add(mute);
            if now < end && changes_at(j) >= threshold {
                mute_until = mute_until.max(end);
            }
        }
    }
    Verdict {
        is_flapping: mute_until > 0,
        reason: if mute_until > 0 {
            Reason::MutePeriod
        } else {
            Reason::Calm
        },
        changes,
        mute_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;
    const T0: Millis = 1_700_000_000_000;

    fn cfg(mode: FlappingMode) -> FlappingConfig {
        FlappingConfig {
            mode,
            ..FlappingConfig::default()
        }
    }

    /// Runs detection for incidents of one key created at the given minutes, in order.
    fn flags(cfg: &FlappingConfig, minutes: &[i64]) -> Vec<bool> {
        let mut earlier = Vec::new();
        let mut out = Vec::new();
        for m in minutes {
            let now = T0 + m * MIN;
            out.push(detect(cfg, "K", &earlier, now).is_flapping);
            earlier.push(now);
        }
        out
    }

    #[test]
    fn worked_example() {
        // spec: ING-183
        let c = cfg(FlappingMode::RemindSuppress);
        let minutes = [0, 10, 20, 30, 40, 85, 150];
        assert_eq!(
            flags(&c, &minutes),
            vec![false, false, false, true, true, true, false]
        );
        // The counts and reasons of the table.
        let times: Vec<Millis> = minutes.iter().map(|m| T0 + m * MIN).collect();
        let expect = [
            (1, Reason::Calm),
            (2, Reason::Calm),
            (3, Reason::Calm),
            (4, Reason::Count),
            (5, Reason::Count),
            (3, Reason::MutePeriod),
            (1, Reason::Calm),
        ];
        for (i, (n, reason)) in expect.iter().enumerate() {
            let v = detect(&c, "K", &times[..i], times[i]);
            assert_eq!(
                (v.changes, v.reason),
                (*n, *reason),
                "minute {}",
                minutes[i]
            );
        }
        // Minute 85 lies in the period opened at 40 (until 100).
        assert_eq!(
            detect(&c, "K", &times[..5], times[5]).mute_until,
            T0 + 100 * MIN
        );
    }

    #[test]
    fn mode_off_never_flags() {
        // spec: ING-180
        let c = cfg(FlappingMode::Off);
        assert_eq!(flags(&c, &[0, 1, 2, 3, 4, 5]), vec![false; 6]);
        let v = detect(&c, "K", &[T0, T0, T0, T0], T0);
        assert_eq!(v.reason, Reason::NotEvaluated);
    }

    #[test]
    fn remind_mode_flags_the_same_incidents() {
        // spec: ING-181
        let c = cfg(FlappingMode::Remind);
        assert_eq!(
            flags(&c, &[0, 10, 20, 30, 40, 85, 150]),
            vec![false, false, false, true, true, true, false]
        );
        // ... but nothing is muted.
        assert_eq!(c.mute(true), None);
        assert_eq!(c.mute(false), None);
    }

    #[test]
    fn remind_suppress_mutes_only_flagged_incidents() {
        // spec: ING-182
        let c = cfg(FlappingMode::RemindSuppress);
        assert_eq!(
            c.mute(true),
            Some(FlappingMute {
                max_changes: 4,
                in_mins: 60,
                mute_mins: 60
            })
        );
        assert_eq!(c.mute(false), None);
    }

    #[test]
    fn window_is_strict_and_counts_the_new_incident() {
        // spec: ING-180 — created_at > now − in_mins: an incident exactly in_mins old is out.
        let c = FlappingConfig {
            mode: FlappingMode::Remind,
            max_changes: 2,
            in_mins: 10,
            mute_mins: 0,
        };
        assert!(!detect(&c, "K", &[T0], T0 + 10 * MIN).is_flapping);
        assert!(detect(&c, "K", &[T0], T0 + 10 * MIN - 1).is_flapping);
        // A key with no history is one change.
        assert_eq!(detect(&c, "K", &[], T0).changes, 1);
    }

    #[test]
    fn mute_period_end_is_exclusive_and_zero_means_none() {
        // spec: ING-180 — flagged when created before t + mute_mins.
        let c = FlappingConfig {
            mode: FlappingMode::RemindSuppress,
            max_changes: 2,
            in_mins: 5,
            mute_mins: 30,
        };
        // Flagged by count at minute 1 (0 and 1): the period runs until minute 31.
        let earlier = [T0, T0 + MIN];
        assert!(detect(&c, "K", &earlier, T0 + 31 * MIN - 1).is_flapping);
        assert!(!detect(&c, "K", &earlier, T0 + 31 * MIN).is_flapping);
        let no_mute = FlappingConfig { mute_mins: 0, ..c };
        let v = detect(&no_mute, "K", &earlier, T0 + 20 * MIN);
        assert_eq!((v.is_flapping, v.reason), (false, Reason::Calm));
    }

    #[test]
    fn mute_flagged_incidents_do_not_extend_the_period() {
        // spec: ING-180 — only incidents flagged by the count open a mute period.
        let c = FlappingConfig {
            mode: FlappingMode::RemindSuppress,
            max_changes: 3,
            in_mins: 10,
            mute_mins: 30,
        };
        // 0, 1, 2 → flagged at 2 (period until 32); 25 is inside; 40 is outside even though
        // 25 was flagged (by the period, not by the count).
        assert_eq!(
            flags(&c, &[0, 1, 2, 25, 40]),
            vec![false, false, true, true, false]
        );
    }

    #[test]
    fn same_instant_incidents_count_in_order() {
        // spec: ING-180 — several incidents of K created in one batch.
        let c = FlappingConfig {
            mode: FlappingMode::Remind,
            max_changes: 3,
            in_mins: 1,
            mute_mins: 0,
        };
        assert_eq!(flags(&c, &[0, 0, 0, 0]), vec![false, false, true, true]);
    }

    #[test]
    fn empty_key_is_not_evaluated() {
        // spec: ING-180 — K is the first alert key; manual incidents have none.
        let c = FlappingConfig {
            mode: FlappingMode::Remind,
            max_changes: 2,
            ..FlappingConfig::default()
        };
        assert!(!detect(&c, "", &[T0, T0], T0).is_flapping);
    }

    #[test]
    fn bounds_name_the_field() {
        // spec: ING-180 (ingest.md §1.3.6 FlappingConfig bounds)
        let ok = FlappingConfig::default();
        assert_eq!(validate(&ok), Ok(()));
        let edges = [
            FlappingConfig {
                max_changes: 2,
                in_mins: 1,
                mute_mins: 0,
                ..ok
            },
            FlappingConfig {
                max_changes: 100,
                in_mins: 1440,
                mute_mins: 1440,
                ..ok
            },
        ];
        for c in edges {
            assert_eq!(validate(&c), Ok(()));
        }
        let cases = [
            (
                FlappingConfig {
                    max_changes: 1,
                    ..ok
                },
                "flapping.max_changes",
            ),
            (
                FlappingConfig {
                    max_changes: 101,
                    ..ok
                },
                "flapping.max_changes",
            ),
            (FlappingConfig { in_mins: 0, ..ok }, "flapping.in_mins"),
            (
                FlappingConfig {
                    in_mins: 1441,
                    ..ok
                },
                "flapping.in_mins",
            ),
            (
                FlappingConfig {
                    mute_mins: -1,
                    ..ok
                },
                "flapping.mute_mins",
            ),
            (
                FlappingConfig {
                    mute_mins: 1441,
                    ..ok
                },
                "flapping.mute_mins",
            ),
        ];
        for (c, field) in cases {
            assert_eq!(validate(&c).map_err(|e| e.field), Err(field.to_string()));
        }
    }

    #[test]
    fn stored_json_defaults() {
        // spec: ING-180 — a channel without settings has detection off, defaults 4/60/60.
        let c: FlappingConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, FlappingConfig::default());
        assert_eq!(c.mode, FlappingMode::Off);
        let c: FlappingConfig = serde_json::from_str(r#"{"mode":"remind_suppress"}"#).unwrap();
        assert_eq!(c.mode, FlappingMode::RemindSuppress);
        assert_eq!(c.lookback_ms(), 120 * MIN);
    }
}
