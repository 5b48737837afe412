//! Invoking a custom action (response.md RSP-401, RSP-402; docs/custom-actions.md): the
//! `i_custom` payload is built like an incident webhook's (RSP-373, plus the incident's
//! alerts), passed through the action's custom body and value mapping (RSP-376, RSP-377), and
//! posted **synchronously**: the person who clicked waits for the answer, so it can be shown.
//!
//! - The sending is the webhooks' (`klaxon_notify::webhook`): its 2 s timeout, its address
//!   guard and its failure classes, and the retry rule of RSP-374 (one retry, 1 s later, only
//!   when the receiver cannot have acted). The retry reuses the body and `event_id`.
//! - Requests are unsigned: a custom action has no secret; receivers authenticate through
//!   custom headers.
//! - Nothing is written here: the caller records the success (RSP-402).

use std::collections::HashMap;
use std::time::Duration;

use klaxon_core::model::{Incident, Millis};
use klaxon_core::webhook::{self, RETRY_BASE_MS};
use klaxon_notify::webhook::{WebhookRequest, WebhookSender};
use klaxon_store::{AlertFilter, CustomIntegration, Paging, StoreError};
use serde_json::{Map, Value, json};

use crate::state::AppState;
use crate::webhooks::{alert_json, incident_object};

/// RSP-402: how much of a failed response's body the person is shown.
pub const SHOWN_BODY_BYTES: usize = 1024;

/// The incident's alerts listed in the payload (the newest first; `/incident/alert/list`'s
/// page size keeps a storm incident's payload bounded).
const PAYLOAD_ALERTS: i64 = 100;

/// Why an invocation failed, for the person who clicked (RSP-402).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The HTTP status, when a response came.
    pub status: Option<u16>,
    /// At most [`SHOWN_BODY_BYTES`] of the response body.
    pub body: String,
    /// The transport error, when no response came.
    pub error: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "the endpoint answered HTTP {status}")?,
            None => write!(f, "the endpoint could not be reached: {}", self.error)?,
        }
        if !self.body.is_empty() {
            write!(f, ": {}", self.body)?;
        }
        Ok(())
    }
}

/// The first [`SHOWN_BODY_BYTES`] of `body`, cut on a character boundary.
pub fn shown_body(body: &str) -> String {
    let mut end = body.len().min(SHOWN_BODY_BYTES);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_string()
}

/// RSP-401's default payload: `{event_time, event_type: "i_custom", event_id, person,
/// incident: <RSP-373 incident object plus alerts[]>}`.
pub async fn payload(
    state: &AppState,
    inc: &Incident,
    invoker: i64,
    event_id: &str,
    now: Millis,
) -> Result<Value, StoreError> {
    let store = &state.store;
    let account_id = inc.account_id;
    let snapshot = serde_json::to_string(inc).unwrap_or_default();
    let mut incident = incident_object(
        store,
        &state.base_url,
        account_id,
        &inc.incident_id,
        &snapshot,
    )
    .await?
    .unwrap_or_else(|| json!({}));
    let filter = AlertFilter {
        paging: Paging {
            p: 1,
            limit: PAYLOAD_ALERTS,
            asc: false,
            search_after_ctx: None,
        },
        incident_id: Some(inc.incident_id.clone()),
        ..AlertFilter::default()
    };
    let alerts = store.list_alerts(account_id, &filter).await?;
    let mut channel_names: HashMap<i64, String> = HashMap::new();
    let mut items = Vec::with_capacity(alerts.items.len());
    for a in &alerts.items {
        if a.channel_id > 0 && !channel_names.contains_key(&a.channel_id) {
            let name = store
                .channel_name(account_id, a.channel_id)
                .await?
                .unwrap_or_default();
            channel_names.insert(a.channel_id, name);
        }
        let name = channel_names
            .get(&a.channel_id)
            .map(String::as_str)
            .unwrap_or("");
        items.push(alert_json(a, name));
    }
    if let Value::Object(m) = &mut incident {
        m.insert("alerts".into(), Value::Array(items));
    }
    let mut out = Map::new();
    out.insert("event_time".into(), json!(now));
    out.insert("event_type".into(), json!("i_custom"));
    out.insert("event_id".into(), json!(event_id));
    if let Some(m) = store
        .member_contacts(account_id, &[invoker])
        .await?
        .into_iter()
        .next()
    {
        out.insert(
            "person".into(),
            json!({"person_id": m.member_id, "person_name": m.name, "email": m.email}),
        );
    }
    out.insert("incident".into(), incident);
    Ok(Value::Object(out))
}

/// Posts the action for `inc`, with RSP-374's single retry. `Ok(())` on a 2xx.
pub async fn invoke(
    state: &AppState,
    action: &CustomIntegration,
    inc: &Incident,
    invoker: i64,
) -> Result<Result<(), Failure>, StoreError> {
    let now = state.clock.now();
    let event_id = crate::state::random_hex(16);
    let default = payload(state, inc, invoker, &event_id, now).await?;
    let body =
        webhook::render_body(&action.custom_body, &default, &action.value_mapping).to_string();
    let allow_private =
        state.config.notify.allow_private_targets || state.config.notify.webhook_private_targets;
    let sender = match WebhookSender::new(allow_private) {
        Ok(s) => s,
        Err(error) => {
            return Ok(Err(Failure {
                status: None,
                body: String::new(),
                error,
            }));
        }
    };
    let mut attempts = 0;
    loop {
        let response = sender
            .send(&WebhookRequest {
                endpoint: &action.endpoint,
                headers: &action.headers,
                body: body.as_bytes(),
                event_id: &event_id,
                event_type: "i_custom",
                signing_secret: "",
                timestamp: state.clock.now().div_euclid(1000),
            })
            .await;
        attempts += 1;
        if response.success() {
            return Ok(Ok(()));
        }
        // Only a failure the receiver cannot have acted on is retried, once (RSP-374). The
        // person is waiting for this answer, so the retry's 1 s wait is a real one.
        if webhook::retry_after(response.failure, attempts, 0, 0.0).is_some() {
            tokio::time::sleep(Duration::from_millis(
                u64::try_from(RETRY_BASE_MS).unwrap_or(1000),
            ))
            .await;
            continue;
        }
        tracing::info!(
            integration_id = action.integration_id,
            incident_id = %inc.incident_id,
            error = %response.error,
            "custom action failed"
        );
        return Ok(Err(Failure {
            status: response.status,
            body: shown_body(&response.body),
            error: response.error,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_body_is_cut_at_one_kilobyte_on_a_character_boundary() {
        // spec: RSP-402 (up to 1 KB of the response body)
        assert_eq!(shown_body("short"), "short");
        let long = "é".repeat(600); // 1200 bytes
        let cut = shown_body(&long);
        assert!(cut.len() <= SHOWN_BODY_BYTES);
        assert_eq!(cut.len(), 1024);
        assert!(long.starts_with(&cut));
    }

    #[test]
    fn the_failure_names_the_status_or_the_transport_error() {
        // spec: RSP-402 (the HTTP status or transport error, and the body)
        let http = Failure {
            status: Some(502),
            body: "bad gateway".into(),
            error: "HTTP 502".into(),
        };
        assert_eq!(
            http.to_string(),
            "the endpoint answered HTTP 502: bad gateway"
        );
        let transport = Failure {
            status: None,
            body: String::new(),
            error: "connection refused".into(),
        };
        assert_eq!(
            transport.to_string(),
            "the endpoint could not be reached: connection refused"
        );
    }
}
