//! Event → alert → incident (ingest.md §2.10, §2.14, §2.17) without grouping: every new alert
//! opens its own incident (`group_method = n`). Pure: the store loads the candidate alert and
//! its incident, calls [`process_event`], and writes the returned rows in the same transaction.

use crate::ids::IdSource;
use crate::model::{Alert, AlertSummary, Incident, Millis, QueuedEvent, StoredEvent};

/// Event outcome (ING-262), for the explainability record and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    NewAlert,
    Merged,
    MergedNonSignificant,
    Duplicate,
    Resolved,
    OkWithoutAlert,
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
    /// The incident's other alerts (not `alert`), for re-deriving the incident (ING-172…175).
    pub sibling_alerts: Vec<AlertSummary>,
}

/// The rows to write. Alerts and incidents are whole rows: insert when the id is new, else
/// update.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub outcome: Option<Outcome>,
    pub stored_event: Option<StoredEvent>,
    pub alerts: Vec<Alert>,
    pub incidents: Vec<Incident>,
}

/// Decides what one queued event does (ING-110…124, ING-170…175, ING-200).
pub fn process_event(
    queued: &QueuedEvent,
    candidate: Option<Candidate>,
    now: Millis,
    ids: &mut dyn IdSource,
) -> Effects {
    let _ = (queued, candidate, now, ids);
    Effects::default()
}

/// Re-derives an incident's severity, status, times and counters from its alerts
/// (ING-172…175) and auto-resolves it when every alert is Ok (ING-200).
pub fn derive_incident(incident: &Incident, alerts: &[AlertSummary], now: Millis) -> Incident {
    let _ = (alerts, now);
    incident.clone()
}
