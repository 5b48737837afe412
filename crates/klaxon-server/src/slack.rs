//! The Slack app's interactivity endpoint (response.md §2.20 RSP-310, RSP-311, RSP-045;
//! docs/slack.md): Slack posts here when someone presses a button of a card.
//!
//! 1. The request must carry Slack's signature over the raw body, made with the integration's
//!    signing secret, and a timestamp within five minutes of our clock; anything else is
//!    answered 401 and changes nothing (the URL is public; the signature is the only proof
//!    the request comes from Slack, and the timestamp stops replays).
//! 2. The clicking Slack user must be linked to an enabled member (RSP-310); otherwise the
//!    user alone gets a message asking them to link their account, and nothing changes.
//! 3. The action runs as that member through `openapi::perform`, the path of the Open API
//!    and the console, so permissions, licences, the audit log and the incident's rules all
//!    apply; the timeline records `from = card` (RSP-036, RSP-050).
//! 4. The card is then replaced through the interaction's `response_url` with the incident's
//!    current state, and the other Slack cards of the incident through `chat.update`
//!    (RSP-312); a refusal is told to the user alone. Slack expects the HTTP answer within 3 s and ignores its body, so both go
//!    through `response_url`, sent before answering to keep the order observable.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use klaxon_notify::slack::{self, Action};
use serde_json::{Map, Value, json};

use crate::im_callback;
use crate::openapi::{self, Args};
use crate::state::AppState;

/// Interaction payloads carry the whole message; far below this.
const MAX_BODY: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/im/slack/interactive/{integration_id}", post(interactive))
}

async fn interactive(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match im_callback::body(body, MAX_BODY).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let integration = match im_callback::integration(&state, &integration_id, "slack").await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let id = integration.integration_id;
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    if let Err(why) = slack::verify(
        &integration.signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &bytes,
        state.clock.now(),
    ) {
        metrics::counter!("klaxon_slack_requests_refused_total").increment(1);
        tracing::info!(integration_id = id, ?why, "refused a Slack request");
        return im_callback::refuse("invalid signature");
    }
    let payload = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|form| form.into_iter().find(|(k, _)| k == "payload"))
        .and_then(|(_, v)| serde_json::from_str::<Value>(&v).ok());
    let Some(payload) = payload else {
        return (StatusCode::BAD_REQUEST, "no payload").into_response();
    };
    if payload["type"] != "block_actions" {
        // Other interactions (shortcuts, views) are not offered by our cards.
        return StatusCode::OK.into_response();
    }
    let user = payload["user"]["id"].as_str().unwrap_or_default();
    let response_url = payload["response_url"].as_str().unwrap_or_default();
    let Some(action) = payload["actions"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(slack::parse_action)
    else {
        return StatusCode::OK.into_response();
    };
    if action == Action::Details || response_url.is_empty() {
        return StatusCode::OK.into_response();
    }
    let account_id = integration.account_id;
    let member = match state.store.linked_member(account_id, id, user).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the linked member");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let Some(member_id) = member.filter(|_| integration.status == "enabled") else {
        // RSP-310: tell the clicking user alone; nothing changes.
        let text = "Your Slack account is not linked to a Klaxon member. Open Klaxon once to \
                    link it (or ask an administrator to link it), then try again.";
        respond(&state, response_url, &ephemeral(text)).await;
        return StatusCode::OK.into_response();
    };
    // The pressed card, as `chat.postMessage` reported it (`<channel>/<ts>`).
    let pressed = slack::message_ref(
        payload["container"]["channel_id"]
            .as_str()
            .unwrap_or_default(),
        payload["container"]["message_ts"]
            .as_str()
            .unwrap_or_default(),
    );
    // RSP-435: the card in a war-room channel acts with `from = wcard`.
    let source = crate::war_room::press_source(&state, account_id, &action, &pressed).await;
    match act(&state, account_id, member_id, &action, source).await {
        Ok((incident_id, note)) => {
            // The other cards follow through the outbox (RSP-312, `card_refresh`).
            answer_card(&state, account_id, &incident_id, &note, response_url).await;
        }
        Err(message) => {
            respond(&state, response_url, &ephemeral(&message)).await;
        }
    }
    StatusCode::OK.into_response()
}

fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": text})
}

/// Performs `action` as the member through the Open API's path, with the origin `source`
/// (`card`, or `wcard` in a war room). Ok = (incident id, the note
/// the card shows); Err = the message for the user.
pub(crate) async fn act(
    state: &AppState,
    account_id: i64,
    member_id: i64,
    action: &Action,
    source: &'static str,
) -> Result<(String, String), String> {
    // (route, incident, snooze minutes, what failed, the timeline kind it writes)
    let (path, incident_id, minutes, verb, kind) = match action {
        Action::Ack { incident_id } => ("/incident/ack", incident_id, None, "Acknowledge", "i_ack"),
        Action::Close { incident_id } => ("/incident/close", incident_id, None, "Close", "i_rslv"),
        Action::Snooze {
            incident_id,
            minutes,
        } => (
            "/incident/snooze",
            incident_id,
            Some(*minutes),
            "Snooze",
            "i_snooze",
        ),
        Action::Details => return Err("nothing to do".into()),
    };
    let mut caller = openapi::member_caller(state, account_id, member_id)
        .await
        .map_err(|e| e.message)?;
    caller.origin.source = source;
    crate::saas::check_write(state, account_id, path).map_err(|e| e.message)?;
    let mut body = Map::new();
    body.insert("incident_ids".into(), json!([incident_id]));
    if let Some(m) = minutes {
        body.insert("minutes".into(), json!(m));
    }
    // `perform` also wakes the delivery worker for what the action decided.
    openapi::perform(state, &caller, path, &Args::new(body))
        .await
        .map_err(|e| format!("{verb} failed: {}", e.message))?;
    let name = state
        .store
        .member_contacts(account_id, &[member_id])
        .await
        .ok()
        .and_then(|c| c.into_iter().next())
        .map(|c| c.name)
        .unwrap_or_default();
    // The same words the other cards get from the refresh (RSP-312).
    let note = klaxon_notify::card_refresh::action_note(kind, minutes, &name);
    Ok((incident_id.clone(), note))
}

/// Replaces the pressed card with the incident's current state through `response_url`
/// (RSP-312). Best effort: a failure is logged, the action stays done.
async fn answer_card(
    state: &AppState,
    account_id: i64,
    incident_id: &str,
    note: &str,
    response_url: &str,
) {
    let Some((_, card)) = klaxon_notify::card_refresh::current_card(
        &state.store,
        &state.base_url,
        account_id,
        incident_id,
        note,
        klaxon_core::template::Channel::SlackApp,
        state.clock.now(),
    )
    .await
    else {
        return;
    };
    let mut replace = slack::message(&card);
    if let Some(m) = replace.as_object_mut() {
        m.insert("replace_original".into(), Value::Bool(true));
    }
    respond(state, response_url, &replace).await;
}

async fn respond(state: &AppState, response_url: &str, body: &Value) {
    if let Err(e) = state.im_http.slack_respond(response_url, body).await {
        tracing::warn!(error = ?e, "answering through Slack's response_url failed");
    }
}
