//! The aggregate of an incident's alerts that incident derivation needs (ING-172…175, ING-200),
//! kept up to date one alert change at a time so that an incident of 1,000 alerts is
//! re-derived without reading its 1,000 alerts again.
//!
//! Severity and status are maxima over alerts whose severity and status can go *down* (a trigger
//! merge lowering the status, a resolution), so they are kept as counts per (status,
//! severity): the highest non-empty bucket is always exact. `last_time` and `end_time` are
//! plain maxima: ingestion only ever raises an alert's times (ING-119, ING-121, ING-113), so a
//! maximum stays exact through every change it makes; an alert leaving the incident, or one
//! whose time goes down, may take the maximum with it, and the aggregate then says it is no
//! longer exact ([`Members::is_exact`]) and must be rebuilt from the alerts.

use crate::model::{AlertSummary, Millis, Severity, Status};

const STATUSES: [Status; 4] = [Status::Ok, Status::Info, Status::Warning, Status::Critical];
const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

/// What [`crate::merge::derive_from_members`] reads about all of an incident's alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// Alerts per `[alert_status][alert_severity]`, in the order of `STATUSES`, `SEVERITIES`.
    counts: [[i64; 3]; 4],
    /// Max `last_time` and `end_time` over the alerts; `None` when there are none.
    last_time: Option<Millis>,
    end_time: Option<Millis>,
    /// Sum of `event_cnt`.
    event_cnt: i64,
    /// A maximum may be too high: an alert that held it left or lowered it.
    stale: bool,
}

impl Members {
    /// The aggregate of exactly these alerts.
    pub fn of<'a>(alerts: impl IntoIterator<Item = &'a AlertSummary>) -> Members {
        let mut m = Members::default();
        for a in alerts {
            m.add(a);
        }
        m
    }

    /// Adds `n` alerts of one status and severity, whose maximum `last_time` and `end_time`
    /// and summed `event_cnt` are given: one row of a grouped query over the stored alerts.
    pub fn add_group(
        &mut self,
        status: Status,
        severity: Severity,
        n: i64,
        last_time: Millis,
        end_time: Millis,
        event_cnt: i64,
    ) {
        if n <= 0 {
            return;
        }
        let c = &mut self.counts[status_index(status)][severity_index(severity)];
        *c = c.saturating_add(n);
        self.last_time = Some(self.last_time.map_or(last_time, |t| t.max(last_time)));
        self.end_time = Some(self.end_time.map_or(end_time, |t| t.max(end_time)));
        self.event_cnt = self.event_cnt.saturating_add(event_cnt);
    }

    /// An alert joins.
    pub fn add(&mut self, a: &AlertSummary) {
        self.add_group(
            a.alert_status,
            a.alert_severity,
            1,
            a.last_time,
            a.end_time,
            a.event_cnt,
        );
    }

    /// An alert leaves. If it may have held a maximum, the aggregate is no longer exact
    /// (unless it was the last alert: an empty aggregate is exact).
    pub fn remove(&mut self, a: &AlertSummary) {
        let c = &mut self.counts[status_index(a.alert_status)][severity_index(a.alert_severity)];
        *c = c.saturating_sub(1);
        self.event_cnt = self.event_cnt.saturating_sub(a.event_cnt);
        if self.total() == 0 {
            *self = Members::default();
            return;
        }
        if self.last_time == Some(a.last_time) || self.end_time == Some(a.end_time) {
            self.stale = true;
        }
    }

    /// An alert of the incident changed from `old` to `new`. Exact as long as neither of its
    /// times went down while holding the maximum.
    pub fn replace(&mut self, old: &AlertSummary, new: &AlertSummary) {
        let from =
            &mut self.counts[status_index(old.alert_status)][severity_index(old.alert_severity)];
        *from = from.saturating_sub(1);
        let to =
            &mut self.counts[status_index(new.alert_status)][severity_index(new.alert_severity)];
        *to = to.saturating_add(1);
        self.event_cnt = self
            .event_cnt
            .saturating_sub(old.event_cnt)
            .saturating_add(new.event_cnt);
        self.stale |= raise(&mut self.last_time, old.last_time, new.last_time);
        self.stale |= raise(&mut self.end_time, old.end_time, new.end_time);
    }

    /// False when a maximum may be too high (see [`Members::remove`]): rebuild from the alerts.
    pub fn is_exact(&self) -> bool {
        !self.stale
    }

    /// `alert_cnt` (ING-175).
    pub fn total(&self) -> i64 {
        self.counts
            .iter()
            .flatten()
            .fold(0i64, |s, n| s.saturating_add(*n))
    }

    /// `active_alert_cnt`: alerts not Ok (ING-175).
    pub fn active(&self) -> i64 {
        let ok = self.counts[status_index(Status::Ok)]
            .iter()
            .fold(0i64, |s, n| s.saturating_add(*n));
        self.total().saturating_sub(ok)
    }

    /// The highest `alert_status` (Ok sorts lowest, ING-173); `None` without alerts.
    pub fn status(&self) -> Option<Status> {
        STATUSES
            .iter()
            .zip(self.counts.iter())
            .rev()
            .find(|(_, row)| row.iter().any(|n| *n > 0))
            .map(|(s, _)| *s)
    }

    /// The highest `alert_severity`, resolved alerts included (ING-172); `None` without alerts.
    pub fn severity(&self) -> Option<Severity> {
        SEVERITIES
            .iter()
            .enumerate()
            .rev()
            .find(|(j, _)| self.counts.iter().any(|row| row[*j] > 0))
            .map(|(_, s)| *s)
    }

    /// Max `last_time` over the alerts (ING-175).
    pub fn last_time(&self) -> Option<Millis> {
        self.last_time
    }

    /// Max `end_time` over the alerts (ING-200).
    pub fn end_time(&self) -> Option<Millis> {
        self.end_time
    }

    /// Sum of `event_cnt` (`alert_event_cnt`, ingest.md §1.5.4).
    pub fn event_cnt(&self) -> i64 {
        self.event_cnt
    }
}

/// One alert's time went from `old` to `new`: keeps `max` exact when it did not go down;
/// returns true when it went down from what may be the maximum.
fn raise(max: &mut Option<Millis>, old: Millis, new: Millis) -> bool {
    if new >= old {
        *max = Some(max.map_or(new, |m| m.max(new)));
        false
    } else {
        *max == Some(old)
    }
}

fn status_index(s: Status) -> usize {
    match s {
        Status::Ok => 0,
        Status::Info => 1,
        Status::Warning => 2,
        Status::Critical => 3,
    }
}

fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}
