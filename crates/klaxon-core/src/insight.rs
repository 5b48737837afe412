//! Insights (response.md §2.27): how a team responded over a period, computed from the
//! incidents that started in it. Pure: the store hands over each incident with the facts its
//! timeline adds (escalated, reassigned, merged away, first acknowledgements), and these
//! functions pick the population (RSP-471), count (RSP-472), average (RSP-473, RSP-474),
//! take percentages (RSP-475, RSP-476), sum the response effort (RSP-477) and split by time of
//! day (RSP-480).

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::model::{Incident, Millis, Progress};

pub mod export;
pub mod incident;
pub mod responder;
pub mod topk;

/// RSP-470: a query spans at most 180 days.
pub const MAX_RANGE_DAYS: i64 = 180;

/// One incident with what its timeline says about it.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub incident: &'a Incident,
    /// At least one `escalate` assignment.
    pub escalated: bool,
    /// At least one `reassign` assignment.
    pub reassigned: bool,
    /// Closed by being merged into another incident.
    pub merged_away: bool,
    /// Each person's first acknowledgement of the incident (person, instant).
    pub first_acks: Vec<(i64, Millis)>,
}

impl Facts<'_> {
    /// RSP-471: converged incidents (muted, or merged into another) are left out.
    pub fn counts(&self) -> bool {
        !self.incident.response.ever_muted && !self.merged_away
    }

    /// Created from an alert rather than by a person.
    fn automatic(&self) -> bool {
        !self.incident.first_alert_id.is_empty()
    }
}

/// The figures of one row of `/insight/{account,team,channel}` (openapi-compat.md 2.14).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub total_incident_cnt: i64,
    pub total_incidents_acknowledged: i64,
    pub total_incidents_closed: i64,
    pub total_incidents_auto_closed: i64,
    pub total_incidents_manually_closed: i64,
    pub total_incidents_timeout_closed: i64,
    pub total_incidents_escalated: i64,
    pub total_incidents_reassigned: i64,
    pub total_alert_cnt: i64,
    pub total_alert_event_cnt: i64,
    pub total_seconds_to_ack: i64,
    pub total_seconds_to_close: i64,
    pub total_engaged_seconds: i64,
    /// RSP-473: `None` when nothing was acknowledged.
    pub mean_seconds_to_ack: Option<f64>,
    /// RSP-474: over the incidents Closed now; `None` when none is.
    pub mean_seconds_to_close: Option<f64>,
    /// RSP-475: `None` without incidents.
    pub acknowledgement_pct: Option<f64>,
    /// RSP-476: `None` without alert events.
    pub noise_reduction_pct: Option<f64>,
    #[serde(skip)]
    automatic_incident_cnt: i64,
    #[serde(skip)]
    automatic_alert_event_cnt: i64,
}

/// RSP-484: percentages and means rounded to 2 decimal places.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn seconds(ms: Millis) -> i64 {
    ms.max(0) / 1000
}

impl Totals {
    /// Adds one incident of the population.
    pub fn add(&mut self, f: &Facts<'_>) {
        let inc = f.incident;
        self.total_incident_cnt += 1;
        if inc.ack_time > 0 {
            self.total_incidents_acknowledged += 1;
            self.total_seconds_to_ack += seconds(inc.ack_time - inc.start_time);
        }
        if inc.progress == Progress::Closed {
            self.total_incidents_closed += 1;
            self.total_seconds_to_close += seconds(inc.close_time - inc.start_time);
            match inc.close_source.as_str() {
                "event" => self.total_incidents_auto_closed += 1,
                "autorslv" => self.total_incidents_timeout_closed += 1,
                _ => self.total_incidents_manually_closed += 1,
            }
            // RSP-477: per person who acknowledged, close minus their first acknowledgement.
            for (_, at) in &f.first_acks {
                self.total_engaged_seconds += seconds(inc.close_time - at);
            }
        }
        if f.escalated {
            self.total_incidents_escalated += 1;
        }
        if f.reassigned {
            self.total_incidents_reassigned += 1;
        }
        self.total_alert_cnt += inc.alert_cnt;
        self.total_alert_event_cnt += inc.alert_event_cnt;
        if f.automatic() {
            self.automatic_incident_cnt += 1;
            self.automatic_alert_event_cnt += inc.alert_event_cnt;
        }
    }

    /// Fills in the means and percentages once every incident is added.
    pub fn finish(mut self) -> Totals {
        let ratio = |n: i64, d: i64| (d > 0).then(|| round2(n as f64 / d as f64));
        self.mean_seconds_to_ack =
            ratio(self.total_seconds_to_ack, self.total_incidents_acknowledged);
        self.mean_seconds_to_close =
            ratio(self.total_seconds_to_close, self.total_incidents_closed);
        self.acknowledgement_pct = (self.total_incident_cnt > 0).then(|| {
            round2(
                self.total_incidents_acknowledged as f64 * 100.0 / self.total_incident_cnt as f64,
            )
        });
        self.noise_reduction_pct = (self.automatic_alert_event_cnt > 0).then(|| {
            round2(
                (1.0 - self.automatic_incident_cnt as f64 / self.automatic_alert_event_cnt as f64)
                    * 100.0,
            )
        });
        self
    }
}

/// RSP-480: the part of the day an instant falls in, in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hours {
    /// Monday–Friday 08:00–19:00.
    Work,
    /// Monday–Friday 19:00–23:00, Saturday and Sunday 08:00–23:00.
    Off,
    /// Every day 23:00–08:00.
    Sleep,
}

impl Hours {
    pub fn of(at: Millis, tz: &TimeZone) -> Hours {
        let Ok(ts) = Timestamp::from_millisecond(at) else {
            return Hours::Work;
        };
        let local = tz.to_datetime(ts);
        let hour = local.hour();
        if !(8..23).contains(&hour) {
            return Hours::Sleep;
        }
        let weekend = matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday);
        if weekend || hour >= 19 {
            Hours::Off
        } else {
            Hours::Work
        }
    }
}

/// RSP-481: the unit of a time series, aligned in the account's (or the query's) zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Hour,
    Day,
    /// ISO weeks, from Monday 00:00.
    Week,
    Month,
}

/// A series has at most this many points (RSP-481).
pub const MAX_POINTS: i64 = 31;

impl Unit {
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "hour" => Some(Unit::Hour),
            "day" => Some(Unit::Day),
            "week" => Some(Unit::Week),
            "month" => Some(Unit::Month),
            _ => None,
        }
    }

    /// RSP-481: `day` up to 31 days, `week` beyond.
    pub fn default_for(from: Millis, to: Millis) -> Unit {
        if to - from <= 31 * 86_400_000 {
            Unit::Day
        } else {
            Unit::Week
        }
    }

    /// The start of the bucket `at` falls in.
    pub fn bucket(self, at: Millis, tz: &TimeZone) -> Millis {
        let Ok(ts) = Timestamp::from_millisecond(at) else {
            return at;
        };
        let local = tz.to_datetime(ts);
        let date = local.date();
        let start = match self {
            Unit::Hour => local.date().at(local.hour(), 0, 0, 0),
            Unit::Day => date.to_datetime(jiff::civil::Time::midnight()),
            Unit::Week => {
                let back = i64::from(date.weekday().to_monday_zero_offset());
                date.checked_sub(jiff::Span::new().days(back))
                    .unwrap_or(date)
                    .to_datetime(jiff::civil::Time::midnight())
            }
            Unit::Month => date
                .first_of_month()
                .to_datetime(jiff::civil::Time::midnight()),
        };
        tz.to_ambiguous_timestamp(start)
            .compatible()
            .map_or(at, |t| t.as_millisecond())
    }

    /// The bucket after the one starting at `start`.
    fn next(self, start: Millis, tz: &TimeZone) -> Millis {
        let step = match self {
            Unit::Hour => return start + 3_600_000,
            Unit::Day => jiff::Span::new().days(1),
            Unit::Week => jiff::Span::new().weeks(1),
            Unit::Month => jiff::Span::new().months(1),
        };
        let Ok(ts) = Timestamp::from_millisecond(start) else {
            return start + 86_400_000;
        };
        let local = tz.to_datetime(ts);
        local
            .checked_add(step)
            .ok()
            .and_then(|d| tz.to_ambiguous_timestamp(d).compatible().ok())
            .map_or(start + 86_400_000, |t| t.as_millisecond())
    }

    /// How many buckets `[from, to)` touches.
    pub fn points(self, from: Millis, to: Millis, tz: &TimeZone) -> i64 {
        let mut n = 0;
        let mut b = self.bucket(from, tz);
        while b < to && n <= MAX_POINTS {
            n += 1;
            b = self.next(b, tz);
        }
        n
    }
}

/// The population of `facts` (RSP-471) grouped by `key` (an incident may fall in several
/// groups, as under several teams, or none), each group's totals finished.
pub fn grouped<'a, K: Ord>(
    facts: &'a [Facts<'a>],
    key: impl Fn(&Facts<'a>) -> Vec<K>,
) -> BTreeMap<K, Totals> {
    let mut out: BTreeMap<K, Totals> = BTreeMap::new();
    for f in facts.iter().filter(|f| f.counts()) {
        for k in key(f) {
            out.entry(k).or_default().add(f);
        }
    }
    out.into_iter().map(|(k, t)| (k, t.finish())).collect()
}

/// The totals of the whole population.
pub fn totals(facts: &[Facts<'_>]) -> Totals {
    let mut t = Totals::default();
    for f in facts.iter().filter(|f| f.counts()) {
        t.add(f);
    }
    t.finish()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const MIN: Millis = 60_000;
    const T0: Millis = 1_767_225_600_000; // 2026-01-01 00:00 UTC, a Thursday

    pub(crate) fn incident(id: &str, alerts: i64, events: i64) -> Incident {
        let mut inc: Incident = serde_json::from_value(serde_json::json!({
            "incident_id": id, "num": "N1", "account_id": 1, "channel_id": 7,
            "title": "db down", "description": "", "incident_severity": "Critical",
            "incident_status": "Critical", "progress": "Triggered", "start_time": T0,
            "last_time": T0, "end_time": 0, "ack_time": 0, "close_time": 0, "created_at": T0,
            "updated_at": T0, "creator_id": 0, "closer_id": 0, "close_source": "",
            "labels": {}, "alert_cnt": alerts, "active_alert_cnt": alerts,
            "alert_event_cnt": events, "group_method": "n", "group_key": "",
            "last_merge_time": T0, "first_alert_id": "", "first_alert_key": "",
            "integration_id": 0, "integration_type": "", "is_flapping": false,
            "storm_level": 0, "manual_overrides": []
        }))
        .unwrap();
        if alerts > 0 {
            inc.first_alert_id = format!("a-{id}");
        }
        inc
    }

    fn facts(inc: &Incident) -> Facts<'_> {
        Facts {
            incident: inc,
            escalated: false,
            reassigned: false,
            merged_away: false,
            first_acks: Vec::new(),
        }
    }

    #[test]
    fn counts_means_and_percentages() {
        // spec: RSP-472, RSP-473, RSP-474, RSP-475, RSP-476, RSP-477, RSP-484
        let mut acked_closed = incident("a", 2, 10);
        acked_closed.ack_time = T0 + 2 * MIN;
        acked_closed.progress = Progress::Closed;
        acked_closed.close_time = T0 + 30 * MIN;
        acked_closed.close_source = "console".into();
        let mut auto_closed = incident("b", 1, 5);
        auto_closed.progress = Progress::Closed;
        auto_closed.close_time = T0 + 10 * MIN;
        auto_closed.close_source = "event".into();
        let mut timeout = incident("c", 1, 4);
        timeout.ack_time = T0 + 4 * MIN;
        timeout.progress = Progress::Closed;
        timeout.close_time = T0 + 60 * MIN;
        timeout.close_source = "autorslv".into();
        let open = incident("d", 1, 1);
        let manual = incident("e", 0, 0);

        let mut fa = facts(&acked_closed);
        fa.escalated = true;
        // Two people acknowledged: 28 and 20 minutes of effort.
        fa.first_acks = vec![(1, T0 + 2 * MIN), (2, T0 + 10 * MIN)];
        let mut fc = facts(&timeout);
        fc.reassigned = true;
        fc.first_acks = vec![(1, T0 + 4 * MIN)];
        let all = [fa, facts(&auto_closed), fc, facts(&open), facts(&manual)];
        let t = totals(&all);
        assert_eq!(t.total_incident_cnt, 5);
        assert_eq!(t.total_incidents_acknowledged, 2);
        assert_eq!(t.total_incidents_closed, 3);
        assert_eq!(
            (
                t.total_incidents_auto_closed,
                t.total_incidents_manually_closed,
                t.total_incidents_timeout_closed
            ),
            (1, 1, 1)
        );
        assert_eq!(t.total_incidents_escalated, 1);
        assert_eq!(t.total_incidents_reassigned, 1);
        assert_eq!((t.total_alert_cnt, t.total_alert_event_cnt), (5, 20));
        // MTTA over the two acknowledged: (120 + 240) / 2.
        assert_eq!(t.mean_seconds_to_ack, Some(180.0));
        // MTTR over the three Closed: (1800 + 600 + 3600) / 3.
        assert_eq!(t.mean_seconds_to_close, Some(2000.0));
        assert_eq!(t.acknowledgement_pct, Some(40.0));
        // Automatic incidents only: 1 − 4/20.
        assert_eq!(t.noise_reduction_pct, Some(80.0));
        assert_eq!(t.total_engaged_seconds, 28 * 60 + 20 * 60 + 56 * 60);
    }

    #[test]
    fn converged_incidents_are_left_out() {
        // spec: RSP-471
        let mut muted = incident("m", 1, 3);
        muted.response.ever_muted = true;
        let merged = incident("g", 1, 3);
        let kept = incident("k", 1, 3);
        let mut fm = facts(&merged);
        fm.merged_away = true;
        let t = totals(&[facts(&muted), fm, facts(&kept)]);
        assert_eq!(t.total_incident_cnt, 1);
        assert_eq!(t.total_alert_event_cnt, 3);
    }

    #[test]
    fn nothing_gives_nulls_not_zeros() {
        // spec: RSP-475, RSP-476
        let t = totals(&[]);
        assert_eq!(t.total_incident_cnt, 0);
        assert_eq!(t.acknowledgement_pct, None);
        assert_eq!(t.noise_reduction_pct, None);
        assert_eq!(t.mean_seconds_to_ack, None);
        let manual = incident("e", 0, 0);
        let t = totals(&[facts(&manual)]);
        assert_eq!(t.acknowledgement_pct, Some(0.0));
        assert_eq!(t.noise_reduction_pct, None, "no events");
    }

    #[test]
    fn percentages_are_rounded_to_two_places() {
        // spec: RSP-484
        let mut a = incident("a", 1, 3);
        a.ack_time = T0 + MIN;
        let b = incident("b", 1, 3);
        let c = incident("c", 1, 3);
        let t = totals(&[facts(&a), facts(&b), facts(&c)]);
        assert_eq!(t.acknowledgement_pct, Some(33.33));
        assert_eq!(t.noise_reduction_pct, Some(66.67));
    }

    #[test]
    fn the_day_splits_into_work_off_and_sleep() {
        // spec: RSP-480 (Saturday and Sunday are the non-working days)
        let utc = TimeZone::UTC;
        let at = |day: i64, hour: i64| T0 + day * 86_400_000 + hour * 3_600_000;
        // 2026-01-01 is a Thursday.
        assert_eq!(Hours::of(at(0, 8), &utc), Hours::Work);
        assert_eq!(Hours::of(at(0, 18), &utc), Hours::Work);
        assert_eq!(Hours::of(at(0, 19), &utc), Hours::Off);
        assert_eq!(Hours::of(at(0, 22), &utc), Hours::Off);
        assert_eq!(Hours::of(at(0, 23), &utc), Hours::Sleep);
        assert_eq!(Hours::of(at(0, 7), &utc), Hours::Sleep);
        // Saturday 2026-01-03 at noon, and at 02:00.
        assert_eq!(Hours::of(at(2, 12), &utc), Hours::Off);
        assert_eq!(Hours::of(at(2, 2), &utc), Hours::Sleep);
        // In Shanghai (UTC+8), Thursday 02:00 UTC is 10:00 local: work.
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(Hours::of(at(0, 2), &shanghai), Hours::Work);
    }

    #[test]
    fn series_buckets_align_in_the_zone_and_stay_within_31_points() {
        // spec: RSP-481
        let utc = TimeZone::UTC;
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        let day = 86_400_000;
        // Thursday 2026-01-01 10:00 UTC.
        let at = T0 + 10 * 3_600_000;
        assert_eq!(Unit::Day.bucket(at, &utc), T0);
        assert_eq!(Unit::Hour.bucket(at + 59 * MIN, &utc), at);
        // The ISO week began on Monday 2025-12-29.
        assert_eq!(Unit::Week.bucket(at, &utc), T0 - 3 * day);
        assert_eq!(Unit::Month.bucket(at + 20 * day, &utc), T0);
        // 2026-01-01 10:00 UTC is 18:00 in Shanghai; its day began at 16:00 UTC the day before.
        assert_eq!(Unit::Day.bucket(at, &shanghai), T0 - 8 * 3_600_000);
        assert_eq!(Unit::Day.points(T0, T0 + 31 * day, &utc), 31);
        assert_eq!(Unit::Day.points(T0, T0 + 32 * day, &utc), 32);
        assert_eq!(Unit::Hour.points(T0, T0 + 31 * 3_600_000, &utc), 31);
        assert_eq!(Unit::Month.points(T0, T0 + 180 * day, &utc), 6);
        assert_eq!(Unit::default_for(T0, T0 + 31 * day), Unit::Day);
        assert_eq!(Unit::default_for(T0, T0 + 40 * day), Unit::Week);
    }

    #[test]
    fn groups_count_an_incident_under_each_of_its_keys() {
        // spec: RSP-470 (an incident belongs to its channel's team and managing teams)
        let a = incident("a", 1, 2);
        let b = incident("b", 1, 2);
        let fs = [facts(&a), facts(&b)];
        let by = grouped(&fs, |f| {
            if f.incident.incident_id == "a" {
                vec![1, 2]
            } else {
                vec![2]
            }
        });
        assert_eq!(by[&1].total_incident_cnt, 1);
        assert_eq!(by[&2].total_incident_cnt, 2);
    }
}
