//! ING-160: the grouping preview. Replays a channel's stored events, oldest first, through a
//! proposed [`GroupingConfig`] with the same [`ChannelGrouping::choose`] the inbox uses, and
//! returns the incident → alert → event tree it would have produced. Pure: the caller reads
//! the events and their alerts; nothing is written.
//!
//! The replay keeps the alerts as they were stored (de-duplication does not depend on
//! grouping): the first event of an alert in the replay opens it, with that event's title,
//! description, severity and labels. Each new alert is grouped at the time its event was
//! received; an Ok event resolves its alert, and an incident whose alerts are all Ok is
//! closed (ING-200), so it takes no more alerts. Alerts kept with a silence or inhibit mark
//! are never grouped (ING-123) and are listed apart. Manual actions (closing, merging,
//! moving) and the auto-close timeout are not replayed.

use std::collections::HashMap;

use serde::Serialize;

use super::{ChannelGrouping, Choice, GroupingConfig};
use crate::merge::incident_for;
use crate::model::{Alert, Incident, Mark, Millis, Progress, Status, StoredEvent};

/// ING-160: at most this many events are replayed …
pub const MAX_EVENTS: usize = 500;
/// … from this long before now.
pub const WINDOW_MS: Millis = 86_400_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewEvent {
    pub event_id: String,
    pub event_status: Status,
    pub event_time: Millis,
    pub received_at: Millis,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewAlert {
    pub alert_id: String,
    pub alert_key: String,
    pub title: String,
    /// Status at the end of the replay.
    pub alert_status: Status,
    pub events: Vec<PreviewEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewIncident {
    /// A number in the preview (1, 2, …, in order of creation); no incident is created.
    pub preview_id: i64,
    pub title: String,
    /// `n`, `p` or `i`.
    pub group_method: String,
    /// Intelligent mode: the reference text compared with new alerts (ING-157).
    pub group_text: String,
    pub created_at: Millis,
    pub last_merge_time: Millis,
    /// True once every alert is Ok (ING-200).
    pub closed: bool,
    pub alerts: Vec<PreviewAlert>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Preview {
    pub incidents: Vec<PreviewIncident>,
    /// Alerts kept with a silence or inhibit mark: never grouped.
    pub unassigned_alerts: Vec<PreviewAlert>,
    pub event_cnt: usize,
}

/// Where a replayed alert lives: an incident (index) or the unassigned list.
#[derive(Clone, Copy)]
enum Home {
    Incident(usize, usize),
    Unassigned(usize),
}

fn sim_id(n: usize) -> String {
    format!("{n:024x}")
}

/// Replays `events` (oldest first; at most [`MAX_EVENTS`] are used) of one channel through
/// `cfg`. `alerts` are the stored alerts the events belong to; an event whose alert is
/// missing is skipped.
pub fn replay(cfg: &GroupingConfig, events: &[StoredEvent], alerts: &[Alert]) -> Preview {
    let policy = ChannelGrouping::compile(cfg);
    let by_id: HashMap<&str, &Alert> = alerts.iter().map(|a| (a.alert_id.as_str(), a)).collect();
    let mut sims: Vec<Incident> = Vec::new();
    let mut out = Preview::default();
    let mut homes: HashMap<String, Home> = HashMap::new();
    for e in events.iter().take(MAX_EVENTS) {
        let Some(stored) = by_id.get(e.alert_id.as_str()) else {
            continue;
        };
        out.event_cnt += 1;
        let now = e.received_at;
        let home = match homes.get(&e.alert_id) {
            Some(h) => *h,
            None => {
                let alert = as_created(stored, e, now);
                let node = PreviewAlert {
                    alert_id: alert.alert_id.clone(),
                    alert_key: alert.alert_key.clone(),
                    title: alert.title.clone(),
                    alert_status: e.event_status,
                    events: Vec::new(),
                };
                let h = if stored.mark != Mark::None && stored.incident_id.is_empty() {
                    out.unassigned_alerts.push(node);
                    Home::Unassigned(out.unassigned_alerts.len() - 1)
                } else {
                    place(&policy, &alert, node, now, &mut sims, &mut out)
                };
                homes.insert(e.alert_id.clone(), h);
                h
            }
        };
        let ev = PreviewEvent {
            event_id: e.event_id.clone(),
            event_status: e.event_status,
            event_time: e.event_time,
            received_at: e.received_at,
            title: e.title.clone(),
        };
        match home {
            Home::Unassigned(i) => {
                let a = &mut out.unassigned_alerts[i];
                a.alert_status = e.event_status;
                a.events.push(ev);
            }
            Home::Incident(i, j) => {
                let inc = &mut out.incidents[i];
                inc.alerts[j].alert_status = e.event_status;
                inc.alerts[j].events.push(ev);
                // ING-200: the last unresolved alert resolving closes the incident.
                if !inc.closed && inc.alerts.iter().all(|a| a.alert_status == Status::Ok) {
                    inc.closed = true;
                    sims[i].progress = Progress::Closed;
                }
            }
        }
    }
    out
}

/// The alert as its event `e` created it (the fields grouping reads come from the event).
fn as_created(stored: &Alert, e: &StoredEvent, now: Millis) -> Alert {
    let mut a = stored.clone();
    a.title = e.title.clone();
    a.description = e.description.clone();
    a.alert_severity = e.event_severity;
    a.alert_status = e.event_status;
    a.labels = e.labels.clone();
    a.integration_id = e.integration_id;
    a.start_time = e.event_time;
    a.last_time = e.event_time;
    a.created_at = now;
    a.updated_at = now;
    a.event_cnt = 1;
    a.incident_id = String::new();
    a.closed = false;
    a
}

/// ING-150…159 for one new alert: join the incident `choose` picks, or open one.
fn place(
    policy: &ChannelGrouping,
    alert: &Alert,
    node: PreviewAlert,
    now: Millis,
    sims: &mut Vec<Incident>,
    out: &mut Preview,
) -> Home {
    let choice = if policy.enabled() {
        let refs: Vec<&Incident> = sims.iter().collect();
        Some(policy.choose(alert, &refs, now))
    } else {
        None
    };
    let target = choice
        .as_ref()
        .and_then(|c: &Choice| c.target.as_ref())
        .and_then(|t| sims.iter().position(|s| &s.incident_id == t));
    if let Some(i) = target {
        sims[i].alert_cnt += 1;
        sims[i].last_merge_time = now;
        let inc = &mut out.incidents[i];
        inc.last_merge_time = now;
        inc.alerts.push(node);
        return Home::Incident(i, inc.alerts.len() - 1);
    }
    let mut sim = incident_for(alert, sim_id(sims.len() + 1), now);
    if let Some(c) = &choice {
        sim.group_method = c.group_method.to_string();
        sim.group_key = c.group_key.clone();
        sim.group_text = c.group_text.clone();
    }
    out.incidents.push(PreviewIncident {
        preview_id: i64::try_from(sims.len() + 1).unwrap_or(i64::MAX),
        title: sim.title.clone(),
        group_method: sim.group_method.clone(),
        group_text: sim.group_text.clone(),
        created_at: now,
        last_merge_time: now,
        closed: false,
        alerts: vec![node],
    });
    sims.push(sim);
    Home::Incident(sims.len() - 1, 0)
}
