//! Event → alert → incident (ingest.md §2.10, §2.14, §2.17) without grouping: every new alert
//! opens its own incident (`group_method = n`). Pure: the store loads the candidate alert and
//! its incident, calls [`process_event`], and writes the returned rows in the same transaction.
//!
//! Not in this module: silence, inhibit, grouping into existing incidents, flapping and storm
//! levels (new incidents get `is_flapping = false`, `storm_level = 0`, alerts no mark); the
//! noise, grouping and flapping modules and the response side decide those afterwards.

use crate::ids::{IdSource, incident_num};
use crate::model::{
    Alert, AlertSummary, Image, Incident, Millis, Progress, QueuedEvent, ResolvedBy, Severity,
    Status, StoredEvent,
};

mod members;
pub use members::Members;

/// Maximum length of an incident description, in characters (ingest.md §1.3.5).
pub const INCIDENT_DESCRIPTION_MAX_CHARS: usize = 6144;

/// Maximum number of images on an alert (ING-028, ING-118).
pub const ALERT_IMAGES_MAX: usize = 20;

/// `manual_overrides` entries (ingest.md §1.3.5).
pub const OVERRIDE_TITLE: &str = "title";
pub const OVERRIDE_DESCRIPTION: &str = "description";
pub const OVERRIDE_SEVERITY: &str = "incident_severity";

/// `close_source` of an incident closed by automatic resolution (ING-200).
pub const CLOSE_SOURCE_EVENT: &str = "event";

/// Event outcome (ING-262), for the explainability record and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NewAlert,
    Merged,
    MergedNonSignificant,
    Duplicate,
    Resolved,
    OkWithoutAlert,
    /// ING-101
    DroppedByChannelRule,
    /// ING-130, behaviour `drop`.
    SilencedDrop,
    /// ING-140, behaviour `drop`.
    InhibitedDrop,
    /// ING-100: the channel is not enabled.
    ChannelDisabled,
    /// ING-094: a shared integration's event reached no channel (recorded with channel 0).
    NoRoute,
    /// ING-084: discarded by a pipeline drop action (channel 0).
    DroppedByPipeline,
    /// ING-085: discarded by a pipeline inhibit action (channel 0).
    InhibitedByPipeline,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NewAlert => "new_alert",
            Outcome::Merged => "merged",
            Outcome::MergedNonSignificant => "merged_nonsignificant",
            Outcome::Duplicate => "duplicate",
            Outcome::Resolved => "resolved",
            Outcome::OkWithoutAlert => "ok_without_alert",
            Outcome::DroppedByChannelRule => "dropped_by_channel_rule",
            Outcome::SilencedDrop => "silenced_drop",
            Outcome::InhibitedDrop => "inhibited_drop",
            Outcome::ChannelDisabled => "channel_disabled",
            Outcome::NoRoute => "no_route",
            Outcome::DroppedByPipeline => "dropped_by_pipeline",
            Outcome::InhibitedByPipeline => "inhibited_by_pipeline",
        }
    }
}

/// The stored state processing reads for one event.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The most recently created active alert with the event's (channel, integration,
    /// alert_key) (ING-110).
    pub alert: Alert,
    /// Its incident, if it has one.
    pub incident: Option<Incident>,
    /// The aggregate of all the incident's alerts, `alert` included as it is now: the incident
    /// is re-derived from it plus the change (ING-172…175), not from every alert. Empty when
    /// the alert has no incident.
    pub members: Members,
}

impl Candidate {
    /// A candidate whose incident's other alerts are `siblings` (`alert` itself need not be
    /// among them; if it is, that entry is ignored).
    pub fn with_siblings(
        alert: Alert,
        incident: Option<Incident>,
        siblings: &[AlertSummary],
    ) -> Self {
        let mut members = Members::of(siblings.iter().filter(|s| s.alert_id != alert.alert_id));
        if incident.is_some() {
            members.add(&AlertSummary::from(&alert));
        }
        Candidate {
            alert,
            incident,
            members,
        }
    }
}

/// The rows to write. Alerts and incidents are whole rows: insert when the id is new, else
/// update.
///
/// Order: on the expiry path (ING-113) the new alert and its new incident come first, then the
/// expired alert and its re-derived incident. An unchanged row is never returned: an exact
/// duplicate event (ING-120) yields no alert and no incident at all.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub outcome: Option<Outcome>,
    pub stored_event: Option<StoredEvent>,
    pub alerts: Vec<Alert>,
    pub incidents: Vec<Incident>,
    /// An incident that just auto-resolved (ING-200) and has other alerts than the one in
    /// `alerts`: the store sets `closed = true`, `close_time = close_time` on those of its
    /// alerts not closed yet (an alert already closed keeps its own `close_time`; all of them
    /// are Ok). No `a_close` webhook for these. Alerts returned in `alerts` are already closed
    /// in the row itself. "" when none.
    pub close_incident_id: String,
    /// The `close_time` for `close_incident_id`; 0 when that is "".
    pub close_time: Millis,
}

/// Decides what one queued event does (ING-110…124, ING-170…175, ING-200).
///
/// A `candidate` that cannot absorb the event (closed, already Ok, or of another channel,
/// integration or key) is treated as no candidate (ING-110, ING-122).
pub fn process_event(
    queued: &QueuedEvent,
    candidate: Option<Candidate>,
    now: Millis,
    ids: &mut dyn IdSource,
) -> Effects {
    let candidate = candidate.filter(|c| absorbs(&c.alert, queued));
    if queued.event.event_status.is_trigger() {
        match candidate {
            None => new_alert_path(queued, now, ids),
            Some(c) if c.alert.is_expired(now) => {
                // ING-111, ING-113: the new alert's path first, then C resolves by expiry.
                let mut fx = new_alert_path(queued, now, ids);
                expire(&mut fx, c, queued.event.event_time, now);
                fx
            }
            Some(c) => merge_trigger(queued, c, now, ids),
        }
    } else {
        match candidate {
            // ING-114
            None => Effects {
                outcome: Some(Outcome::OkWithoutAlert),
                ..Effects::default()
            },
            Some(c) => resolve(queued, c, now, ids),
        }
    }
}

/// Re-derives an incident's severity, status, times and counters from its alerts
/// (ING-172…175) and auto-resolves it when every alert is Ok (ING-200).
///
/// `alerts` are all the incident's alerts, the changed one included. Title, description and
/// labels need the first alert's full row: see [`follow_first_alert`]. `updated_at = now`
/// when anything changed.
pub fn derive_incident(incident: &Incident, alerts: &[AlertSummary], now: Millis) -> Incident {
    let mut d = incident.clone();
    let status_of_alerts = alerts.iter().map(|a| a.alert_status).max();
    match status_of_alerts {
        // ING-173: an incident without alerts has the status of its severity (RSP-004).
        None => {
            d.incident_status = Status::from(d.incident_severity);
            d.alert_cnt = 0;
            d.active_alert_cnt = 0;
            d.alert_event_cnt = 0;
        }
        Some(status) => {
            // ING-172
            if !has_override(incident, OVERRIDE_SEVERITY)
                && let Some(sev) = alerts.iter().map(|a| a.alert_severity).max()
            {
                d.incident_severity = sev;
            }
            // ING-173: Ok sorts lowest, so the max over all alerts is Ok only when all are Ok
            // and otherwise the highest non-Ok status.
            d.incident_status = status;
            // ING-175
            if let Some(last) = alerts.iter().map(|a| a.last_time).max() {
                d.last_time = last;
            }
            d.alert_cnt = count(alerts.len());
            d.active_alert_cnt = count(
                alerts
                    .iter()
                    .filter(|a| a.alert_status != Status::Ok)
                    .count(),
            );
            d.alert_event_cnt = alerts
                .iter()
                .fold(0i64, |sum, a| sum.saturating_add(a.event_cnt));
        }
    }
    if d.incident_status == Status::Ok {
        // ING-200: only on the transition to Ok.
        if incident.incident_status != Status::Ok {
            d.end_time = alerts.iter().map(|a| a.end_time).max().unwrap_or(now);
            if d.progress != Progress::Closed {
                d.progress = Progress::Closed;
                d.close_time = now;
                d.closer_id = 0;
                d.close_source = CLOSE_SOURCE_EVENT.to_string();
            }
        }
    } else {
        // §1.3.5: end_time is 0 unless auto-resolved.
        d.end_time = 0;
    }
    if d != *incident {
        d.updated_at = now;
    }
    d
}

/// [`derive_incident`] from the aggregate of the incident's alerts instead of the alerts
/// themselves: the same result whenever `members` is exact ([`Members::is_exact`]) and
/// aggregates exactly the alerts [`derive_incident`] would be given.
pub fn derive_from_members(incident: &Incident, members: &Members, now: Millis) -> Incident {
    let mut d = incident.clone();
    match members.status() {
        // ING-173: an incident without alerts has the status of its severity (RSP-004).
        None => {
            d.incident_status = Status::from(d.incident_severity);
            d.alert_cnt = 0;
            d.active_alert_cnt = 0;
            d.alert_event_cnt = 0;
        }
        Some(status) => {
            // ING-172: per-severity counts, so a severity going down is exact too.
            if !has_override(incident, OVERRIDE_SEVERITY)
                && let Some(sev) = members.severity()
            {
                d.incident_severity = sev;
            }
            // ING-173
            d.incident_status = status;
            // ING-175
            if let Some(last) = members.last_time() {
                d.last_time = last;
            }
            d.alert_cnt = members.total();
            d.active_alert_cnt = members.active();
            d.alert_event_cnt = members.event_cnt();
        }
    }
    if d.incident_status == Status::Ok {
        // ING-200: only on the transition to Ok.
        if incident.incident_status != Status::Ok {
            d.end_time = members.end_time().unwrap_or(now);
            if d.progress != Progress::Closed {
                d.progress = Progress::Closed;
                d.close_time = now;
                d.closer_id = 0;
                d.close_source = CLOSE_SOURCE_EVENT.to_string();
            }
        }
    } else {
        // §1.3.5: end_time is 0 unless auto-resolved.
        d.end_time = 0;
    }
    if d != *incident {
        d.updated_at = now;
    }
    d
}

/// Title, description and labels of an automatic incident follow its first alert (ING-171,
/// ING-174), except fields in `manual_overrides`. Returns the incident unchanged when `alert`
/// is not its first alert (or no longer belongs to it). Does not touch `updated_at`.
pub fn follow_first_alert(incident: &Incident, alert: &Alert) -> Incident {
    let mut i = incident.clone();
    if alert.alert_id != incident.first_alert_id || alert.incident_id != incident.incident_id {
        return i;
    }
    if !has_override(incident, OVERRIDE_TITLE) {
        i.title = alert.title.clone();
    }
    if !has_override(incident, OVERRIDE_DESCRIPTION) {
        i.description = cut_chars(&alert.description, INCIDENT_DESCRIPTION_MAX_CHARS);
    }
    i.labels = alert.labels.clone();
    i
}

/// Merges event images into alert images (ING-118). Trigger events (`replace = true`): an
/// image with an alt already present replaces it in place (the event wins, the first position
/// is kept), new alts are appended. Recovery events (`replace = false`) only append new alts.
/// At most [`ALERT_IMAGES_MAX`] are kept, the oldest positions first.
pub fn merge_images(alert: &[Image], event: &[Image], replace: bool) -> Vec<Image> {
    let mut out = alert.to_vec();
    for img in event {
        match out.iter_mut().find(|o| o.alt == img.alt) {
            Some(existing) => {
                if replace {
                    *existing = img.clone();
                }
            }
            None => out.push(img.clone()),
        }
    }
    out.truncate(ALERT_IMAGES_MAX);
    out
}

/// ING-050: a recovery event's severity is the one its source gave, else the resolved
/// alert's, else Info.
pub fn recovery_severity(given: Option<Severity>, alert: Option<Severity>) -> Severity {
    given.or(alert).unwrap_or(Severity::Info)
}

fn absorbs(alert: &Alert, queued: &QueuedEvent) -> bool {
    alert.is_active()
        && alert.channel_id == queued.origin.channel_id
        && alert.integration_id == queued.origin.integration_id
        && alert.alert_key == queued.event.alert_key
}

fn has_override(incident: &Incident, field: &str) -> bool {
    incident.manual_overrides.iter().any(|o| o == field)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn cut_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s.get(..i).unwrap_or(s).to_string(),
        None => s.to_string(),
    }
}

/// ING-050: a trigger event's severity is its status.
fn trigger_severity(status: Status) -> Severity {
    status.severity().unwrap_or(Severity::Info)
}

fn stored_event(
    queued: &QueuedEvent,
    alert: &Alert,
    severity: Severity,
    now: Millis,
    ids: &mut dyn IdSource,
) -> StoredEvent {
    let (o, e) = (&queued.origin, &queued.event);
    StoredEvent {
        event_id: ids.object_id(now),
        request_id: o.request_id.clone(),
        account_id: o.account_id,
        channel_id: o.channel_id,
        integration_id: o.integration_id,
        integration_type: o.integration_type.clone(),
        alert_id: alert.alert_id.clone(),
        alert_key: e.alert_key.clone(),
        event_status: e.event_status,
        event_severity: severity,
        event_time: e.event_time,
        received_at: o.received_at,
        title: e.title.clone(),
        title_rule: e.title_rule.clone(),
        description: e.description.clone(),
        labels: e.labels.clone(),
        images: e.images.clone(),
        raw: e.raw.clone(),
    }
}

/// ING-124 new alert record and ING-170 its own new incident.
fn new_alert_path(queued: &QueuedEvent, now: Millis, ids: &mut dyn IdSource) -> Effects {
    let (o, e) = (&queued.origin, &queued.event);
    let severity = trigger_severity(e.event_status);
    let alert_id = ids.object_id(now);
    let incident_id = ids.object_id(now);
    let alert = Alert {
        alert_id,
        account_id: o.account_id,
        channel_id: o.channel_id,
        integration_id: o.integration_id,
        integration_type: o.integration_type.clone(),
        integration_name: o.integration_name.clone(),
        alert_key: e.alert_key.clone(),
        title: e.title.clone(),
        title_rule: e.title_rule.clone(),
        description: e.description.clone(),
        alert_severity: severity,
        alert_status: e.event_status,
        labels: e.labels.clone(),
        images: merge_images(&[], &e.images, true),
        start_time: e.event_time,
        last_time: e.event_time,
        end_time: 0,
        created_at: now,
        updated_at: now,
        event_cnt: 1,
        incident_id: incident_id.clone(),
        closed: false,
        close_time: 0,
        resolved_by: ResolvedBy::None,
        ever_muted: false,
        mark: crate::model::Mark::None,
        mark_rule_id: String::new(),
    };
    let incident = incident_for(&alert, incident_id, now);
    let event = stored_event(queued, &alert, severity, now, ids);
    Effects {
        outcome: Some(Outcome::NewAlert),
        stored_event: Some(event),
        alerts: vec![alert],
        incidents: vec![incident],
        close_incident_id: String::new(),
        close_time: 0,
    }
}

/// ING-170: the new incident `alert` opens on its own (`group_method = n`), with id
/// `incident_id`; the alert's `incident_id` is the caller's business. Also used when a marked
/// alert is un-muted (ING-123): it keeps its own `start_time`.
pub fn incident_for(alert: &Alert, incident_id: String, now: Millis) -> Incident {
    Incident {
        num: incident_num(&incident_id),
        incident_id,
        account_id: alert.account_id,
        channel_id: alert.channel_id,
        title: alert.title.clone(),
        description: cut_chars(&alert.description, INCIDENT_DESCRIPTION_MAX_CHARS),
        incident_severity: alert.alert_severity,
        incident_status: alert.alert_status,
        progress: Progress::Triggered,
        start_time: alert.start_time,
        last_time: alert.last_time,
        end_time: 0,
        ack_time: 0,
        close_time: 0,
        created_at: now,
        updated_at: now,
        creator_id: 0,
        closer_id: 0,
        close_source: String::new(),
        labels: alert.labels.clone(),
        alert_cnt: 1,
        active_alert_cnt: 1,
        alert_event_cnt: alert.event_cnt,
        group_method: "n".to_string(),
        group_key: String::new(),
        group_text: String::new(),
        last_merge_time: now,
        first_alert_id: alert.alert_id.clone(),
        first_alert_key: alert.alert_key.clone(),
        integration_id: alert.integration_id,
        integration_type: alert.integration_type.clone(),
        is_flapping: false,
        storm_level: 0,
        manual_overrides: Vec::new(),
        response: crate::response::Response::default(),
    }
}

/// ING-113: C resolved by the system, no event stored on it.
fn expire(fx: &mut Effects, c: Candidate, event_time: Millis, now: Millis) {
    let old = AlertSummary::from(&c.alert);
    let mut a = c.alert;
    a.alert_status = Status::Ok;
    a.end_time = a.start_time.max(event_time);
    a.resolved_by = ResolvedBy::Expiry;
    a.updated_at = now;
    settle(fx, &old, a, c.incident, &c.members, now);
}

/// ING-115…120: a trigger event merging into an active, unexpired alert.
fn merge_trigger(
    queued: &QueuedEvent,
    c: Candidate,
    now: Millis,
    ids: &mut dyn IdSource,
) -> Effects {
    let e = &queued.event;
    let old = &c.alert;
    let mut a = old.clone();
    // ING-117, ING-118: labels replaced and images merged, significant or not.
    a.labels = e.labels.clone();
    a.images = merge_images(&old.images, &e.images, true);
    a.last_time = old.last_time.max(e.event_time);
    let mut fx = Effects::default();
    // ING-115: the alert's status/title/description are those of its last stored event.
    let significant = e.event_status != old.alert_status
        || e.title != old.title
        || e.description != old.description;
    if significant {
        // ING-116, ING-118, ING-119
        let severity = trigger_severity(e.event_status);
        a.alert_status = e.event_status;
        a.alert_severity = old.alert_severity.max(severity);
        a.title = e.title.clone();
        a.title_rule = e.title_rule.clone();
        a.description = e.description.clone();
        a.event_cnt = old.event_cnt.saturating_add(1);
        a.updated_at = now;
        fx.stored_event = Some(stored_event(queued, &a, severity, now, ids));
        fx.outcome = Some(Outcome::Merged);
    } else if a.labels != old.labels || a.images != old.images {
        // ING-120
        a.updated_at = now;
        fx.outcome = Some(Outcome::MergedNonSignificant);
    } else {
        // ING-120: nothing changed but possibly `last_time` (§1.3.4: max over all accepted
        // events, stored or not); `updated_at` stays.
        fx.outcome = Some(Outcome::Duplicate);
        if a.last_time == old.last_time {
            return fx;
        }
    }
    let incident = c.incident;
    settle(
        &mut fx,
        &AlertSummary::from(old),
        a,
        incident,
        &c.members,
        now,
    );
    fx
}

/// ING-121: a recovery event resolving C.
fn resolve(queued: &QueuedEvent, c: Candidate, now: Millis, ids: &mut dyn IdSource) -> Effects {
    let e = &queued.event;
    let old = AlertSummary::from(&c.alert);
    let mut a = c.alert;
    let severity = recovery_severity(e.event_severity, Some(a.alert_severity));
    a.alert_status = Status::Ok;
    a.end_time = a.start_time.max(e.event_time);
    a.resolved_by = ResolvedBy::Event;
    // ING-117: recovery only adds missing keys. ING-118: only new alts; title etc. unchanged.
    for (k, v) in &e.labels {
        a.labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    a.images = merge_images(&a.images, &e.images, false);
    a.last_time = a.last_time.max(e.event_time);
    a.event_cnt = a.event_cnt.saturating_add(1);
    a.updated_at = now;
    let event = stored_event(queued, &a, severity, now, ids);
    let mut fx = Effects {
        outcome: Some(Outcome::Resolved),
        stored_event: Some(event),
        ..Effects::default()
    };
    settle(&mut fx, &old, a, c.incident, &c.members, now);
    fx
}

/// Re-derives the changed alert's incident (ING-171…175) from its aggregate `members` (which
/// holds the alert as it was before this change, `old`), auto-resolves it (ING-200) and
/// pushes the rows that changed.
fn settle(
    fx: &mut Effects,
    old: &AlertSummary,
    mut alert: Alert,
    incident: Option<Incident>,
    members: &Members,
    now: Millis,
) {
    if let Some(orig) = incident {
        let mut after = members.clone();
        after.replace(old, &AlertSummary::from(&alert));
        let followed = follow_first_alert(&orig, &alert);
        let mut derived = derive_from_members(&followed, &after, now);
        if derived != orig {
            derived.updated_at = now;
            // ING-200: auto-resolution closed it just now → its alerts close too.
            if orig.progress != Progress::Closed && derived.progress == Progress::Closed {
                alert.closed = true;
                alert.close_time = now;
                alert.updated_at = now;
                if after.total() > 1 {
                    fx.close_incident_id.clone_from(&orig.incident_id);
                    fx.close_time = now;
                }
            }
            fx.alerts.push(alert);
            fx.incidents.push(derived);
            return;
        }
    }
    fx.alerts.push(alert);
}

#[cfg(test)]
mod incremental;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CountingIds;
    use crate::model::{DAY_MS, EventOrigin, Labels, NewEvent};

    const T0: Millis = 1_700_000_000_000;
    const MIN: Millis = 60_000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn img(alt: &str, src: &str) -> Image {
        Image {
            alt: alt.to_string(),
            src: src.to_string(),
            href: String::new(),
        }
    }

    /// A standard event on channel 100, integration 10, key "k1", at `T0`.
    fn ev(status: Status) -> QueuedEvent {
        QueuedEvent {
            seq: 1,
            origin: EventOrigin {
                request_id: "0123456789abcdef0123456789abcdef".to_string(),
                account_id: 1,
                integration_id: 10,
                integration_type: "standard".to_string(),
                integration_name: "Std".to_string(),
                channel_id: 100,
                received_at: T0 + 5,
            },
            event: NewEvent {
                alert_key: "k1".to_string(),
                event_status: status,
                event_severity: status.severity(),
                title: "disk full".to_string(),
                title_rule: String::new(),
                description: "90% used".to_string(),
                labels: labels(&[("host", "a")]),
                images: Vec::new(),
                event_time: T0,
                raw: r#"{"event_status":"Critical"}"#.to_string(),
            },
        }
    }

    fn with(mut q: QueuedEvent, f: impl FnOnce(&mut NewEvent)) -> QueuedEvent {
        f(&mut q.event);
        q
    }

    /// Opens a new alert and incident from `q` at `now`.
    fn open(q: &QueuedEvent, now: Millis, ids: &mut CountingIds) -> (Alert, Incident) {
        let fx = process_event(q, None, now, ids);
        assert_eq!(fx.outcome, Some(Outcome::NewAlert));
        assert_eq!(fx.alerts.len(), 1);
        assert_eq!(fx.incidents.len(), 1);
        (fx.alerts[0].clone(), fx.incidents[0].clone())
    }

    fn cand(a: &Alert, i: &Incident) -> Option<Candidate> {
        Some(Candidate::with_siblings(a.clone(), Some(i.clone()), &[]))
    }

    /// An incident holding alert `a` (first, key k1) and `b` (key k2), both Warning.
    fn two_alert_incident(ids: &mut CountingIds) -> (Alert, Alert, Incident) {
        let (a, inc) = open(&ev(Status::Warning), T0, ids);
        let (mut b, _) = open(
            &with(ev(Status::Warning), |e| {
                e.alert_key = "k2".to_string();
                e.title = "cpu high".to_string();
            }),
            T0 + MIN,
            ids,
        );
        b.incident_id = inc.incident_id.clone();
        let inc = derive_incident(
            &inc,
            &[AlertSummary::from(&a), AlertSummary::from(&b)],
            T0 + MIN,
        );
        assert_eq!(inc.alert_cnt, 2);
        (a, b, inc)
    }

    fn is_object_id(s: &str) -> bool {
        s.len() == 24 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
    }

    // spec: ING-262
    #[test]
    fn outcome_names() {
        let all = [
            (Outcome::NewAlert, "new_alert"),
            (Outcome::Merged, "merged"),
            (Outcome::MergedNonSignificant, "merged_nonsignificant"),
            (Outcome::Duplicate, "duplicate"),
            (Outcome::Resolved, "resolved"),
            (Outcome::OkWithoutAlert, "ok_without_alert"),
        ];
        for (o, s) in all {
            assert_eq!(o.as_str(), s);
        }
    }

    // spec: ING-124
    // spec: ING-111
    #[test]
    fn trigger_without_candidate_stores_a_new_alert() {
        let mut ids = CountingIds::default();
        let q = with(ev(Status::Critical), |e| {
            e.title_rule = "[TPL]${host}".to_string();
            e.images = vec![img("g", "https://x/g.png")];
            e.event_time = T0 - 30_000;
        });
        let now = T0 + 1_000;
        let fx = process_event(&q, None, now, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::NewAlert));
        assert!(fx.close_incident_id.is_empty());
        let a = &fx.alerts[0];
        assert!(is_object_id(&a.alert_id));
        assert_eq!((a.account_id, a.channel_id, a.integration_id), (1, 100, 10));
        assert_eq!(a.integration_type, "standard");
        assert_eq!(a.integration_name, "Std");
        assert_eq!(a.alert_key, "k1");
        assert_eq!(a.title, "disk full");
        assert_eq!(a.title_rule, "[TPL]${host}");
        assert_eq!(a.description, "90% used");
        assert_eq!(a.alert_severity, Severity::Critical);
        assert_eq!(a.alert_status, Status::Critical);
        assert_eq!(a.labels, labels(&[("host", "a")]));
        assert_eq!(a.images, vec![img("g", "https://x/g.png")]);
        assert_eq!(
            (a.start_time, a.last_time, a.end_time),
            (T0 - 30_000, T0 - 30_000, 0)
        );
        assert_eq!((a.created_at, a.updated_at), (now, now));
        assert_eq!(a.event_cnt, 1);
        assert!(!a.closed);
        assert_eq!(a.close_time, 0);
        assert_eq!(a.resolved_by, ResolvedBy::None);
        assert!(!a.ever_muted);
        assert_eq!(a.incident_id, fx.incidents[0].incident_id);

        let Some(e) = fx.stored_event.clone() else {
            unreachable!("a new alert stores its event")
        };
        assert!(is_object_id(&e.event_id));
        assert_ne!(e.event_id, a.alert_id);
        assert_eq!(e.alert_id, a.alert_id);
        assert_eq!(e.request_id, q.origin.request_id);
        assert_eq!((e.account_id, e.channel_id, e.integration_id), (1, 100, 10));
        assert_eq!(e.integration_type, "standard");
        assert_eq!(e.alert_key, "k1");
        assert_eq!(e.event_status, Status::Critical);
        assert_eq!(e.event_severity, Severity::Critical);
        assert_eq!((e.event_time, e.received_at), (T0 - 30_000, T0 + 5));
        assert_eq!(e.title, "disk full");
        assert_eq!(e.title_rule, "[TPL]${host}");
        assert_eq!(e.description, "90% used");
        assert_eq!(e.labels, q.event.labels);
        assert_eq!(e.images, q.event.images);
    }

    // spec: ING-170
    #[test]
    fn new_alert_opens_its_own_incident() {
        let mut ids = CountingIds::default();
        let long = "é".repeat(7000);
        let q = with(ev(Status::Warning), |e| e.description = long.clone());
        let now = T0 + 2_000;
        let fx = process_event(&q, None, now, &mut ids);
        let (a, i) = (&fx.alerts[0], &fx.incidents[0]);
        assert!(is_object_id(&i.incident_id));
        assert_ne!(i.incident_id, a.alert_id);
        assert_eq!(i.num, incident_num(&i.incident_id));
        assert_eq!(i.num.len(), 6);
        assert_eq!((i.account_id, i.channel_id), (1, 100));
        assert_eq!(i.title, "disk full");
        assert_eq!(i.description.chars().count(), 6144);
        assert!(long.starts_with(&i.description));
        assert_eq!(a.description, long, "the alert keeps the full description");
        assert_eq!(i.incident_severity, Severity::Warning);
        assert_eq!(i.incident_status, Status::Warning);
        assert_eq!(i.progress, Progress::Triggered);
        assert_eq!((i.start_time, i.last_time), (T0, T0));
        assert_eq!((i.end_time, i.ack_time, i.close_time), (0, 0, 0));
        assert_eq!(
            (i.created_at, i.updated_at, i.last_merge_time),
            (now, now, now)
        );
        assert_eq!((i.creator_id, i.closer_id), (0, 0));
        assert_eq!(i.close_source, "");
        assert_eq!(i.labels, a.labels);
        assert_eq!(
            (i.alert_cnt, i.active_alert_cnt, i.alert_event_cnt),
            (1, 1, 1)
        );
        assert_eq!((i.group_method.as_str(), i.group_key.as_str()), ("n", ""));
        assert_eq!(i.first_alert_id, a.alert_id);
        assert_eq!(i.first_alert_key, "k1");
        assert_eq!(
            (i.integration_id, i.integration_type.as_str()),
            (10, "standard")
        );
        assert!(!i.is_flapping);
        assert_eq!(i.storm_level, 0);
        assert!(i.manual_overrides.is_empty());
    }

    // spec: ING-114
    // spec: ING-111
    #[test]
    fn recovery_without_candidate_writes_nothing() {
        let mut ids = CountingIds::default();
        let fx = process_event(&ev(Status::Ok), None, T0, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::OkWithoutAlert));
        assert!(fx.stored_event.is_none());
        assert!(fx.alerts.is_empty() && fx.incidents.is_empty());
        assert!(fx.close_incident_id.is_empty());
        assert_eq!(ids.0, 0, "no id drawn");
    }

    // spec: ING-122
    #[test]
    fn closed_or_resolved_candidate_absorbs_nothing() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let mut closed = a.clone();
        closed.closed = true;
        closed.close_time = T0 + MIN;
        let mut ok = a.clone();
        ok.alert_status = Status::Ok;
        for c in [closed, ok] {
            let fx = process_event(&ev(Status::Warning), cand(&c, &i), T0 + 2 * MIN, &mut ids);
            assert_eq!(fx.outcome, Some(Outcome::NewAlert));
            assert_ne!(fx.alerts[0].alert_id, a.alert_id);
            assert_eq!(fx.alerts.len(), 1, "the old alert is not touched");
            let fx = process_event(&ev(Status::Ok), cand(&c, &i), T0 + 2 * MIN, &mut ids);
            assert_eq!(fx.outcome, Some(Outcome::OkWithoutAlert));
            assert!(fx.alerts.is_empty());
        }
    }

    // spec: ING-110
    #[test]
    fn candidate_of_another_identity_is_ignored() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let others = [
            with(ev(Status::Warning), |e| e.alert_key = "k2".to_string()),
            {
                let mut q = ev(Status::Warning);
                q.origin.integration_id = 11;
                q
            },
            {
                let mut q = ev(Status::Warning);
                q.origin.channel_id = 101;
                q
            },
        ];
        for q in others {
            let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
            assert_eq!(fx.outcome, Some(Outcome::NewAlert));
            assert!(fx.alerts.iter().all(|x| x.alert_id != a.alert_id));
        }
    }

    // spec: ING-115
    // spec: ING-119
    #[test]
    fn significance_is_status_title_or_description() {
        type Case = (&'static str, fn(&mut NewEvent), Outcome);
        let cases: [Case; 6] = [
            (
                "status",
                |e| e.event_status = Status::Critical,
                Outcome::Merged,
            ),
            (
                "title",
                |e| e.title = "disk FULL".to_string(),
                Outcome::Merged,
            ),
            (
                "description",
                |e| e.description = "91% used".to_string(),
                Outcome::Merged,
            ),
            (
                "labels only",
                |e| e.labels = labels(&[("host", "b")]),
                Outcome::MergedNonSignificant,
            ),
            (
                "images only",
                |e| e.images = vec![img("a", "https://x/a")],
                Outcome::MergedNonSignificant,
            ),
            (
                "title_rule only",
                |e| e.title_rule = "r".to_string(),
                Outcome::Duplicate,
            ),
        ];
        for (name, f, want) in cases {
            let mut ids = CountingIds::default();
            let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
            let mut q = ev(Status::Warning);
            f(&mut q.event);
            let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
            assert_eq!(fx.outcome, Some(want), "{name}");
            assert_eq!(fx.stored_event.is_some(), want == Outcome::Merged, "{name}");
        }
    }

    // spec: ING-119
    // spec: ING-118
    // spec: ING-171
    // spec: RSP-005
    #[test]
    fn significant_merge_updates_alert_and_incident() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let q = with(ev(Status::Warning), |e| {
            e.title = "disk nearly full".to_string();
            e.title_rule = "rule".to_string();
            e.description = "95% used".to_string();
            e.event_time = T0 + 3 * MIN;
        });
        let now = T0 + 4 * MIN;
        let fx = process_event(&q, cand(&a, &i), now, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Merged));
        let m = &fx.alerts[0];
        assert_eq!(m.alert_id, a.alert_id);
        assert_eq!(m.event_cnt, 2);
        assert_eq!(m.title, "disk nearly full");
        assert_eq!(m.title_rule, "rule");
        assert_eq!(m.description, "95% used");
        assert_eq!(m.last_time, T0 + 3 * MIN);
        assert_eq!(m.updated_at, now);
        assert_eq!(m.created_at, a.created_at);
        assert_eq!(m.start_time, a.start_time);
        let Some(e) = fx.stored_event.as_ref() else {
            unreachable!("significant events are stored")
        };
        assert_eq!(e.alert_id, a.alert_id);
        assert_eq!(e.event_severity, Severity::Warning);
        let inc = &fx.incidents[0];
        assert_eq!(inc.title, "disk nearly full");
        assert_eq!(inc.description, "95% used");
        assert_eq!(inc.alert_event_cnt, 2);
        assert_eq!(inc.last_time, T0 + 3 * MIN);
        assert_eq!(inc.updated_at, now);
        assert_eq!(
            inc.last_merge_time, i.last_merge_time,
            "no new alert joined"
        );
    }

    // spec: ING-119
    // spec: ING-175
    #[test]
    fn last_time_never_goes_back() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let q = with(ev(Status::Critical), |e| e.event_time = T0 - 10 * MIN);
        let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
        assert_eq!(fx.alerts[0].last_time, T0);
        assert_eq!(fx.incidents[0].last_time, T0);
        assert_eq!(
            fx.stored_event.map(|e| e.event_time),
            Some(T0 - 10 * MIN),
            "the stored event keeps its own time"
        );
    }

    // spec: ING-116
    #[test]
    fn critical_warning_ok_gives_ok_and_critical() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Critical), T0, &mut ids);
        let fx = process_event(&ev(Status::Warning), cand(&a, &i), T0 + MIN, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Merged));
        let (a, i) = (fx.alerts[0].clone(), fx.incidents[0].clone());
        assert_eq!(
            (a.alert_status, a.alert_severity),
            (Status::Warning, Severity::Critical)
        );
        assert_eq!(
            (i.incident_status, i.incident_severity),
            (Status::Warning, Severity::Critical)
        );
        let fx = process_event(&ev(Status::Ok), cand(&a, &i), T0 + 2 * MIN, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Resolved));
        let (a, i) = (&fx.alerts[0], &fx.incidents[0]);
        assert_eq!(
            (a.alert_status, a.alert_severity),
            (Status::Ok, Severity::Critical)
        );
        assert_eq!(a.event_cnt, 3);
        assert_eq!(
            (i.incident_status, i.incident_severity),
            (Status::Ok, Severity::Critical)
        );
        assert_eq!(i.alert_event_cnt, 3);
    }

    // spec: ING-116
    #[test]
    fn severity_never_decreases_status_follows_latest() {
        let mut ids = CountingIds::default();
        let (mut a, mut i) = open(&ev(Status::Info), T0, &mut ids);
        let steps = [
            (Status::Warning, Status::Warning, Severity::Warning),
            (Status::Info, Status::Info, Severity::Warning),
            (Status::Critical, Status::Critical, Severity::Critical),
            (Status::Info, Status::Info, Severity::Critical),
        ];
        for (n, (status, want_status, want_sev)) in steps.into_iter().enumerate() {
            let fx = process_event(&ev(status), cand(&a, &i), T0 + MIN, &mut ids);
            assert_eq!(fx.outcome, Some(Outcome::Merged));
            a = fx.alerts[0].clone();
            i = fx.incidents[0].clone();
            assert_eq!(
                (a.alert_status, a.alert_severity),
                (want_status, want_sev),
                "step {n}"
            );
            assert_eq!(
                (i.incident_status, i.incident_severity),
                (want_status, want_sev)
            );
        }
    }

    // spec: ING-050
    // spec: ING-116
    #[test]
    fn recovery_event_severity() {
        let cases = [
            (None, Severity::Warning),
            (Some(Severity::Info), Severity::Info),
            (Some(Severity::Critical), Severity::Critical),
        ];
        for (given, want) in cases {
            let mut ids = CountingIds::default();
            let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
            let q = with(ev(Status::Ok), |e| e.event_severity = given);
            let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
            assert_eq!(fx.stored_event.map(|e| e.event_severity), Some(want));
            assert_eq!(
                fx.alerts[0].alert_severity,
                Severity::Warning,
                "never raised"
            );
            assert_eq!(fx.incidents[0].incident_severity, Severity::Warning);
        }
        assert_eq!(recovery_severity(None, None), Severity::Info);
        assert_eq!(
            recovery_severity(None, Some(Severity::Critical)),
            Severity::Critical
        );
    }

    // spec: ING-121
    // spec: ING-200
    #[test]
    fn recovery_resolves_alert_and_auto_resolves_incident() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Critical), T0, &mut ids);
        let q = with(ev(Status::Ok), |e| {
            e.event_time = T0 + 7 * MIN;
            e.title = "recovered".to_string();
            e.description = "all fine".to_string();
        });
        let now = T0 + 8 * MIN;
        let fx = process_event(&q, cand(&a, &i), now, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Resolved));
        let r = &fx.alerts[0];
        assert_eq!(r.alert_status, Status::Ok);
        assert_eq!(r.end_time, T0 + 7 * MIN);
        assert_eq!(r.resolved_by, ResolvedBy::Event);
        assert_eq!(r.event_cnt, 2);
        assert_eq!(r.last_time, T0 + 7 * MIN);
        assert_eq!(r.updated_at, now);
        assert_eq!(
            (r.title.as_str(), r.description.as_str()),
            ("disk full", "90% used")
        );
        assert!(r.closed, "alerts of an auto-resolved incident close");
        assert_eq!(r.close_time, now);
        let Some(e) = fx.stored_event.as_ref() else {
            unreachable!("recoveries are stored")
        };
        assert_eq!(
            (e.alert_id.as_str(), e.event_status),
            (a.alert_id.as_str(), Status::Ok)
        );
        assert_eq!(
            e.title, "recovered",
            "the stored event keeps its own fields"
        );
        let inc = &fx.incidents[0];
        assert_eq!(inc.incident_status, Status::Ok);
        assert_eq!(inc.end_time, T0 + 7 * MIN);
        assert_eq!(inc.progress, Progress::Closed);
        assert_eq!(inc.close_time, now);
        assert_eq!(inc.closer_id, 0);
        assert_eq!(inc.close_source, "event");
        assert_eq!(
            (inc.alert_cnt, inc.active_alert_cnt, inc.alert_event_cnt),
            (1, 0, 2)
        );
        assert_eq!(inc.updated_at, now);
        assert_eq!(inc.title, "disk full");
        assert!(fx.close_incident_id.is_empty());
        assert_eq!(fx.close_time, 0);
    }

    // spec: ING-121
    #[test]
    fn recovery_end_time_is_never_before_start() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let q = with(ev(Status::Ok), |e| e.event_time = T0 - 5 * MIN);
        let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
        assert_eq!(fx.alerts[0].end_time, T0);
        assert_eq!(fx.alerts[0].last_time, T0);
        assert_eq!(fx.incidents[0].end_time, T0);
    }

    // spec: ING-121
    // spec: ING-173
    // spec: ING-175
    #[test]
    fn recovery_with_an_open_sibling_keeps_the_incident_open() {
        let mut ids = CountingIds::default();
        let (a, b, i) = two_alert_incident(&mut ids);
        let c = Candidate::with_siblings(a.clone(), Some(i.clone()), &[AlertSummary::from(&b)]);
        let fx = process_event(&ev(Status::Ok), Some(c), T0 + 5 * MIN, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Resolved));
        assert!(!fx.alerts[0].closed);
        let inc = &fx.incidents[0];
        assert_eq!(inc.incident_status, Status::Warning);
        assert_eq!(inc.progress, Progress::Triggered);
        assert_eq!(
            (inc.alert_cnt, inc.active_alert_cnt, inc.alert_event_cnt),
            (2, 1, 3)
        );
        assert_eq!((inc.end_time, inc.close_time), (0, 0));
        assert!(fx.close_incident_id.is_empty());
    }

    // spec: ING-200
    #[test]
    fn last_resolving_alert_closes_its_siblings() {
        let mut ids = CountingIds::default();
        let (a, b, i) = two_alert_incident(&mut ids);
        let mut a_ok = a.clone();
        a_ok.alert_status = Status::Ok;
        a_ok.end_time = T0 + 20 * MIN;
        a_ok.resolved_by = ResolvedBy::Event;
        let i = derive_incident(
            &i,
            &[AlertSummary::from(&a_ok), AlertSummary::from(&b)],
            T0 + 21 * MIN,
        );
        assert_eq!(i.incident_status, Status::Warning);
        let c = Candidate::with_siblings(b.clone(), Some(i.clone()), &[AlertSummary::from(&a_ok)]);
        let q = with(ev(Status::Ok), |e| {
            e.alert_key = "k2".to_string();
            e.event_time = T0 + 10 * MIN;
        });
        let now = T0 + 30 * MIN;
        let fx = process_event(&q, Some(c), now, &mut ids);
        let inc = &fx.incidents[0];
        assert_eq!(inc.incident_status, Status::Ok);
        assert_eq!(inc.progress, Progress::Closed);
        assert_eq!(
            inc.end_time,
            T0 + 20 * MIN,
            "the latest end_time among its alerts"
        );
        assert!(fx.alerts[0].closed);
        assert_eq!(
            fx.close_incident_id, i.incident_id,
            "its other alerts close too"
        );
        assert_eq!(fx.close_time, now);
    }

    // spec: ING-117
    #[test]
    fn trigger_replaces_labels_recovery_only_adds() {
        let mut ids = CountingIds::default();
        let (a, i) = open(
            &with(ev(Status::Warning), |e| {
                e.labels = labels(&[("host", "a"), ("dc", "x")]);
            }),
            T0,
            &mut ids,
        );
        let q = with(ev(Status::Critical), |e| {
            e.labels = labels(&[("host", "b"), ("svc", "db")]);
        });
        let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
        let (a, i) = (fx.alerts[0].clone(), fx.incidents[0].clone());
        assert_eq!(a.labels, labels(&[("host", "b"), ("svc", "db")]));
        assert_eq!(i.labels, a.labels, "ING-174: the first alert's labels");
        let q = with(ev(Status::Ok), |e| {
            e.labels = labels(&[("host", "c"), ("dc", "y"), ("state", "ok")]);
        });
        let fx = process_event(&q, cand(&a, &i), T0 + 2 * MIN, &mut ids);
        let want = labels(&[("host", "b"), ("svc", "db"), ("dc", "y"), ("state", "ok")]);
        assert_eq!(fx.alerts[0].labels, want);
        assert_eq!(fx.incidents[0].labels, want);
        assert_eq!(
            fx.stored_event.map(|e| e.labels),
            Some(labels(&[("host", "c"), ("dc", "y"), ("state", "ok")]))
        );
    }

    // spec: ING-118
    #[test]
    fn images_merge_by_alt() {
        let alert = vec![img("x", "https://x/1"), img("y", "https://x/2")];
        let event = vec![img("y", "https://x/3"), img("z", "https://x/4")];
        assert_eq!(
            merge_images(&alert, &event, true),
            vec![
                img("x", "https://x/1"),
                img("y", "https://x/3"),
                img("z", "https://x/4")
            ],
            "trigger: the event wins, the first position is kept"
        );
        assert_eq!(
            merge_images(&alert, &event, false),
            vec![
                img("x", "https://x/1"),
                img("y", "https://x/2"),
                img("z", "https://x/4")
            ],
            "recovery: only new alts"
        );
        // The empty alt is a value like any other.
        assert_eq!(
            merge_images(&[img("", "https://x/1")], &[img("", "https://x/5")], true),
            vec![img("", "https://x/5")]
        );
    }

    // spec: ING-118
    #[test]
    fn images_cap_keeps_oldest_positions() {
        let full: Vec<Image> = (0..20)
            .map(|n| img(&n.to_string(), "https://x/old"))
            .collect();
        let event = vec![img("new", "https://x/n"), img("5", "https://x/five")];
        let merged = merge_images(&full, &event, true);
        assert_eq!(merged.len(), 20);
        assert!(merged.iter().all(|m| m.alt != "new"));
        assert_eq!(merged[5], img("5", "https://x/five"));
        let merged = merge_images(&full, &event, false);
        assert_eq!(merged, full);
    }

    // spec: ING-118
    // spec: ING-120
    #[test]
    fn images_through_process_event() {
        let mut ids = CountingIds::default();
        let (a, i) = open(
            &with(ev(Status::Warning), |e| {
                e.images = vec![img("x", "https://x/1"), img("y", "https://x/2")];
            }),
            T0,
            &mut ids,
        );
        let q = with(ev(Status::Warning), |e| {
            e.images = vec![img("y", "https://x/3"), img("z", "https://x/4")];
        });
        let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::MergedNonSignificant));
        let a = fx.alerts[0].clone();
        assert_eq!(
            a.images,
            vec![
                img("x", "https://x/1"),
                img("y", "https://x/3"),
                img("z", "https://x/4")
            ]
        );
        let q = with(ev(Status::Ok), |e| {
            e.images = vec![img("x", "https://x/9"), img("w", "https://x/5")];
        });
        let fx = process_event(&q, cand(&a, &i), T0 + 2 * MIN, &mut ids);
        assert_eq!(
            fx.alerts[0].images,
            vec![
                img("x", "https://x/1"),
                img("y", "https://x/3"),
                img("z", "https://x/4"),
                img("w", "https://x/5"),
            ]
        );
    }

    // spec: ING-120
    // spec: ING-174
    #[test]
    fn nonsignificant_merge_updates_labels_without_storing() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let q = with(ev(Status::Warning), |e| {
            e.labels = labels(&[("host", "b")]);
            e.event_time = T0 + 2 * MIN;
        });
        let now = T0 + 3 * MIN;
        let fx = process_event(&q, cand(&a, &i), now, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::MergedNonSignificant));
        assert!(fx.stored_event.is_none());
        let m = &fx.alerts[0];
        assert_eq!(m.event_cnt, 1);
        assert_eq!(m.labels, labels(&[("host", "b")]));
        assert_eq!(m.last_time, T0 + 2 * MIN);
        assert_eq!(m.updated_at, now);
        let inc = &fx.incidents[0];
        assert_eq!(inc.labels, labels(&[("host", "b")]));
        assert_eq!(inc.last_time, T0 + 2 * MIN);
        assert_eq!(inc.alert_event_cnt, 1);
        assert_eq!(inc.updated_at, now);
    }

    // spec: ING-174
    // spec: ING-171
    // spec: RSP-005
    #[test]
    fn only_the_first_alert_drives_incident_labels_and_title() {
        let mut ids = CountingIds::default();
        let (_, b, i) = two_alert_incident(&mut ids);
        let c = Candidate::with_siblings(b.clone(), Some(i.clone()), &[]);
        let q = with(ev(Status::Critical), |e| {
            e.alert_key = "k2".to_string();
            e.title = "cpu on fire".to_string();
            e.labels = labels(&[("host", "z")]);
        });
        let fx = process_event(&q, Some(c), T0 + 5 * MIN, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Merged));
        let inc = &fx.incidents[0];
        assert_eq!(inc.title, "disk full");
        assert_eq!(inc.labels, labels(&[("host", "a")]));
        assert_eq!(inc.incident_severity, Severity::Critical);
    }

    // spec: ING-120
    #[test]
    fn exact_duplicate_writes_nothing() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let before = ids.0;
        let fx = process_event(&ev(Status::Warning), cand(&a, &i), T0 + MIN, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Duplicate));
        assert!(fx.stored_event.is_none());
        assert!(fx.alerts.is_empty() && fx.incidents.is_empty());
        assert_eq!(ids.0, before, "no id drawn");
    }

    // spec: ING-120
    #[test]
    fn duplicate_with_a_later_time_only_moves_last_time() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let q = with(ev(Status::Warning), |e| e.event_time = T0 + 5 * MIN);
        let now = T0 + 6 * MIN;
        let fx = process_event(&q, cand(&a, &i), now, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Duplicate));
        assert!(fx.stored_event.is_none());
        let m = &fx.alerts[0];
        assert_eq!(m.last_time, T0 + 5 * MIN);
        assert_eq!(
            m.updated_at, a.updated_at,
            "a duplicate does not touch updated_at"
        );
        let mut only_last = a.clone();
        only_last.last_time = T0 + 5 * MIN;
        assert_eq!(*m, only_last);
        assert_eq!(fx.incidents[0].last_time, T0 + 5 * MIN);
    }

    // spec: ING-112
    #[test]
    fn merge_window_is_24_hours_of_platform_time() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let crit = ev(Status::Critical);
        let fx = process_event(&crit, cand(&a, &i), a.created_at + DAY_MS - 1, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Merged));
        let fx = process_event(&crit, cand(&a, &i), a.created_at + DAY_MS, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::NewAlert));
    }

    // spec: ING-113
    // spec: ING-111
    // spec: ING-200
    #[test]
    fn expired_candidate_is_resolved_by_expiry() {
        let mut ids = CountingIds::default();
        let (a, i) = open(
            &with(ev(Status::Warning), |e| e.event_time = T0 - 10 * MIN),
            T0,
            &mut ids,
        );
        let now = T0 + DAY_MS + MIN;
        let q = with(ev(Status::Critical), |e| e.event_time = T0 + DAY_MS);
        let fx = process_event(&q, cand(&a, &i), now, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::NewAlert));
        assert_eq!(fx.alerts.len(), 2);
        assert_eq!(fx.incidents.len(), 2);
        let (new, old) = (&fx.alerts[0], &fx.alerts[1]);
        assert_ne!(new.alert_id, a.alert_id);
        assert_eq!(new.start_time, T0 + DAY_MS);
        assert_eq!(new.created_at, now);
        assert_ne!(
            new.incident_id, i.incident_id,
            "a new incident, no grouping"
        );
        assert_eq!(fx.incidents[0].incident_id, new.incident_id);
        let Some(e) = fx.stored_event.as_ref() else {
            unreachable!("the new alert's event is stored")
        };
        assert_eq!(e.alert_id, new.alert_id, "no event stored on C");

        assert_eq!(old.alert_id, a.alert_id);
        assert_eq!(old.alert_status, Status::Ok);
        assert_eq!(old.end_time, T0 + DAY_MS);
        assert_eq!(old.resolved_by, ResolvedBy::Expiry);
        assert_eq!(old.event_cnt, 1);
        assert_eq!(old.alert_severity, Severity::Warning);
        assert_eq!(old.last_time, a.last_time);
        assert!(old.closed);
        assert_eq!(old.close_time, now);

        let oi = &fx.incidents[1];
        assert_eq!(oi.incident_id, i.incident_id);
        assert_eq!(oi.incident_status, Status::Ok);
        assert_eq!(oi.end_time, T0 + DAY_MS);
        assert_eq!(oi.progress, Progress::Closed);
        assert_eq!(oi.close_source, "event");
        assert_eq!(oi.close_time, now);
        assert_eq!(oi.active_alert_cnt, 0);
    }

    // spec: ING-113
    #[test]
    fn expiry_end_time_is_never_before_start() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        // A trigger carrying a past event_time older than C's start.
        let q = with(ev(Status::Warning), |e| e.event_time = T0 - 60 * MIN);
        let fx = process_event(&q, cand(&a, &i), T0 + DAY_MS, &mut ids);
        assert_eq!(fx.alerts[1].end_time, T0);
        assert_eq!(fx.incidents[1].end_time, T0);
    }

    // spec: ING-113
    // spec: ING-173
    #[test]
    fn expiry_with_an_open_sibling_leaves_the_incident_open() {
        let mut ids = CountingIds::default();
        let (a, b, i) = two_alert_incident(&mut ids);
        let mut b = b;
        b.alert_status = Status::Info;
        let c = Candidate::with_siblings(a.clone(), Some(i.clone()), &[AlertSummary::from(&b)]);
        let fx = process_event(&ev(Status::Warning), Some(c), T0 + DAY_MS, &mut ids);
        assert_eq!(fx.alerts[1].alert_status, Status::Ok);
        assert!(!fx.alerts[1].closed);
        let oi = &fx.incidents[1];
        assert_eq!(oi.incident_status, Status::Info);
        assert_eq!(oi.incident_severity, Severity::Warning);
        assert_eq!(oi.progress, Progress::Triggered);
        assert_eq!((oi.alert_cnt, oi.active_alert_cnt), (2, 1));
        assert!(fx.close_incident_id.is_empty());
    }

    // spec: ING-121
    #[test]
    fn recovery_resolves_an_expired_alert() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let fx = process_event(&ev(Status::Ok), cand(&a, &i), T0 + 2 * DAY_MS, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Resolved));
        assert_eq!(fx.alerts.len(), 1);
        assert_eq!(fx.alerts[0].resolved_by, ResolvedBy::Event);
    }

    // spec: ING-172
    #[test]
    fn manual_severity_override_is_kept() {
        let mut ids = CountingIds::default();
        let (a, mut i) = open(&ev(Status::Warning), T0, &mut ids);
        i.incident_severity = Severity::Info;
        i.manual_overrides = vec![OVERRIDE_SEVERITY.to_string()];
        let fx = process_event(&ev(Status::Critical), cand(&a, &i), T0 + MIN, &mut ids);
        let inc = &fx.incidents[0];
        assert_eq!(inc.incident_severity, Severity::Info);
        assert_eq!(
            inc.incident_status,
            Status::Critical,
            "status is still derived"
        );
        assert_eq!(fx.alerts[0].alert_severity, Severity::Critical);
        // Without the override the same change raises it.
        i.manual_overrides.clear();
        let fx = process_event(&ev(Status::Critical), cand(&a, &i), T0 + MIN, &mut ids);
        assert_eq!(fx.incidents[0].incident_severity, Severity::Critical);
    }

    // spec: ING-171
    // spec: RSP-005
    #[test]
    fn manual_title_override_stops_following_description_still_follows() {
        let mut ids = CountingIds::default();
        let (a, mut i) = open(&ev(Status::Warning), T0, &mut ids);
        i.title = "Edited by a person".to_string();
        i.manual_overrides = vec![OVERRIDE_TITLE.to_string()];
        let long = "x".repeat(7000);
        let q = with(ev(Status::Warning), |e| {
            e.title = "new title".to_string();
            e.description = long.clone();
        });
        let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
        let inc = &fx.incidents[0];
        assert_eq!(inc.title, "Edited by a person");
        assert_eq!(inc.description, "x".repeat(6144));
        assert_eq!(fx.alerts[0].title, "new title");

        i.manual_overrides = vec![OVERRIDE_DESCRIPTION.to_string()];
        i.description = "kept".to_string();
        let fx = process_event(&q, cand(&a, &i), T0 + MIN, &mut ids);
        assert_eq!(fx.incidents[0].title, "new title");
        assert_eq!(fx.incidents[0].description, "kept");
    }

    // spec: ING-173
    #[test]
    fn status_is_ok_only_when_all_alerts_are_ok() {
        let mut ids = CountingIds::default();
        let (_, i) = open(&ev(Status::Warning), T0, &mut ids);
        let s = |id: &str, st: Status, sev: Severity| AlertSummary {
            alert_id: id.to_string(),
            alert_status: st,
            alert_severity: sev,
            last_time: T0,
            end_time: if st == Status::Ok { T0 } else { 0 },
            event_cnt: 1,
        };
        let table: [(Vec<AlertSummary>, Status, Severity); 4] = [
            (
                vec![
                    s("a", Status::Ok, Severity::Critical),
                    s("b", Status::Info, Severity::Info),
                ],
                Status::Info,
                Severity::Critical,
            ),
            (
                vec![
                    s("a", Status::Warning, Severity::Critical),
                    s("b", Status::Info, Severity::Info),
                ],
                Status::Warning,
                Severity::Critical,
            ),
            (
                vec![
                    s("a", Status::Ok, Severity::Warning),
                    s("b", Status::Ok, Severity::Info),
                ],
                Status::Ok,
                Severity::Warning,
            ),
            // RSP-004: no alerts → status of its severity.
            (Vec::new(), Status::Warning, Severity::Warning),
        ];
        for (n, (alerts, status, severity)) in table.into_iter().enumerate() {
            let d = derive_incident(&i, &alerts, T0 + MIN);
            assert_eq!(
                (d.incident_status, d.incident_severity),
                (status, severity),
                "row {n}"
            );
        }
    }

    // spec: ING-175
    #[test]
    fn times_and_counters() {
        let mut ids = CountingIds::default();
        let (_, i) = open(&ev(Status::Warning), T0, &mut ids);
        let alerts = [
            AlertSummary {
                alert_id: "a".to_string(),
                alert_status: Status::Ok,
                alert_severity: Severity::Warning,
                last_time: T0 + 9 * MIN,
                end_time: T0 + 9 * MIN,
                event_cnt: 4,
            },
            AlertSummary {
                alert_id: "b".to_string(),
                alert_status: Status::Critical,
                alert_severity: Severity::Critical,
                last_time: T0 + 3 * MIN,
                end_time: 0,
                event_cnt: 2,
            },
            AlertSummary {
                alert_id: "c".to_string(),
                alert_status: Status::Info,
                alert_severity: Severity::Info,
                last_time: T0 + MIN,
                end_time: 0,
                event_cnt: 1,
            },
        ];
        let d = derive_incident(&i, &alerts, T0 + 10 * MIN);
        assert_eq!(d.last_time, T0 + 9 * MIN);
        assert_eq!(
            (d.alert_cnt, d.active_alert_cnt, d.alert_event_cnt),
            (3, 2, 7)
        );
        assert_eq!(d.end_time, 0);
        assert_eq!(d.updated_at, T0 + 10 * MIN);
    }

    #[test]
    fn derive_without_change_keeps_updated_at() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let d = derive_incident(&i, &[AlertSummary::from(&a)], T0 + DAY_MS);
        assert_eq!(d, i);
    }

    // spec: ING-200
    #[test]
    fn auto_resolve_of_an_already_closed_incident_changes_only_status_and_end_time() {
        let mut ids = CountingIds::default();
        let (a, mut i) = open(&ev(Status::Critical), T0, &mut ids);
        i.progress = Progress::Closed;
        i.close_time = T0 + MIN;
        i.closer_id = 42;
        i.close_source = "console".to_string();
        let mut ok = AlertSummary::from(&a);
        ok.alert_status = Status::Ok;
        ok.end_time = T0 + 2 * MIN;
        ok.event_cnt = 2;
        let now = T0 + 3 * MIN;
        let d = derive_incident(&i, &[ok], now);
        let mut want = i.clone();
        want.incident_status = Status::Ok;
        want.end_time = T0 + 2 * MIN;
        want.alert_event_cnt = 2;
        want.active_alert_cnt = 0;
        want.updated_at = now;
        assert_eq!(d, want);

        // Through process_event: no alert gets closed by it either.
        let q = with(ev(Status::Ok), |e| e.event_time = T0 + 2 * MIN);
        let fx = process_event(&q, cand(&a, &i), now, &mut ids);
        assert_eq!(fx.outcome, Some(Outcome::Resolved));
        assert!(!fx.alerts[0].closed);
        assert!(fx.close_incident_id.is_empty());
        let inc = &fx.incidents[0];
        assert_eq!(
            (inc.progress, inc.close_time, inc.closer_id),
            (Progress::Closed, T0 + MIN, 42)
        );
        assert_eq!(inc.close_source, "console");
        assert_eq!(
            (inc.incident_status, inc.end_time),
            (Status::Ok, T0 + 2 * MIN)
        );
    }

    // spec: ING-200
    #[test]
    fn an_incident_already_ok_does_not_resolve_again() {
        let mut ids = CountingIds::default();
        let (a, i) = open(&ev(Status::Warning), T0, &mut ids);
        let mut ok = AlertSummary::from(&a);
        ok.alert_status = Status::Ok;
        ok.end_time = T0 + MIN;
        let resolved = derive_incident(&i, &[ok.clone()], T0 + 2 * MIN);
        assert_eq!(resolved.progress, Progress::Closed);
        // Reopened by a person (ING-203): status and end_time stay; re-deriving does not
        // close it again.
        let mut reopened = resolved.clone();
        reopened.progress = Progress::Triggered;
        reopened.close_time = 0;
        reopened.close_source = String::new();
        let d = derive_incident(&reopened, &[ok], T0 + 5 * MIN);
        assert_eq!(d, reopened);
    }

    #[test]
    fn cut_chars_respects_scalar_values() {
        assert_eq!(cut_chars("héllo", 2), "hé");
        assert_eq!(cut_chars("hé", 5), "hé");
        assert_eq!(cut_chars("", 0), "");
    }
}
