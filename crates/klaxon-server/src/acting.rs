//! Acting on an incident from a notification, as the member it was sent to: a keypress
//! during a call, an SMS reply (crate::phone), a one-click link in an e-mail or an app push
//! (crate::action_links). Every entry point goes through the Open API's path, so
//! permissions, licences, the audit log and the incident's rules apply exactly as for a
//! console click.

use klaxon_core::model::Progress;
use serde_json::{Map, json};

use crate::openapi::{self, Args};
use crate::state::AppState;

/// What a notification lets its reader do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Acknowledge,
    Close,
    /// Snooze for so many minutes (1..=1440, RSP-040).
    Snooze(i64),
}

pub(crate) enum Acted {
    /// Done (or already so); the incident's number.
    Done(String),
    /// The incident was closed before; nothing changed.
    AlreadyClosed(String),
    /// Refused; the sentence to tell.
    Refused(String),
}

/// Performs `verb` on the incident as the member, through the Open API's path, with `source`
/// as the entry point the timeline and the audit log record.
pub(crate) async fn act(
    state: &AppState,
    account_id: i64,
    member_id: i64,
    incident_id: &str,
    verb: Verb,
    source: &'static str,
) -> Acted {
    let inc = match state.store.incident(account_id, incident_id).await {
        Ok(Some(inc)) => inc,
        Ok(None) => return Acted::Refused("This incident no longer exists.".into()),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the incident");
            return Acted::Refused("Klaxon cannot read the incident right now.".into());
        }
    };
    let num = format!("number {}", inc.num);
    if inc.progress == Progress::Closed {
        return Acted::AlreadyClosed(num);
    }
    // A member disabled or deleted since the notification went out cannot act any more.
    let enabled = state
        .store
        .member_contacts(account_id, &[member_id])
        .await
        .ok()
        .and_then(|c| c.into_iter().next())
        .is_some_and(|c| c.status == "enabled");
    if !enabled {
        return Acted::Refused("The member this was sent to can no longer act.".into());
    }
    let mut body = Map::new();
    body.insert("incident_ids".into(), json!([incident_id]));
    let path = match verb {
        Verb::Acknowledge => "/incident/ack",
        Verb::Close => "/incident/close",
        Verb::Snooze(minutes) => {
            body.insert("minutes".into(), json!(minutes));
            "/incident/snooze"
        }
    };
    let mut caller = match openapi::member_caller(state, account_id, member_id).await {
        Ok(c) => c,
        Err(e) => return Acted::Refused(format!("{}.", e.message)),
    };
    caller.origin.source = source;
    if let Err(e) = crate::saas::check_write(state, account_id, path) {
        return Acted::Refused(format!("{}.", e.message));
    }
    // `perform` also wakes the delivery worker for what the action decided.
    match openapi::perform(state, &caller, path, &Args::new(body)).await {
        Ok(_) => Acted::Done(num),
        Err(e) => Acted::Refused(format!("The incident could not be changed: {}.", e.message)),
    }
}
