//! The WeCom app's callback URL (response.md §2.19 RSP-302, §2.20 RSP-310–RSP-313;
//! docs/wecom.md): WeCom checks the URL with a GET and posts each button press of a card
//! (`template_card_event`) here.
//!
//! 1. Every request carries `msg_signature` over the Token, timestamp, nonce and the
//!    ciphertext, and the message is encrypted with the EncodingAESKey and names the corp ID.
//!    Anything that fails these checks, or whose timestamp is more than five minutes from
//!    our clock (a replay), is answered 401 and changes nothing: the URL is public, and they
//!    are the only proof that the request comes from WeCom.
//! 2. The press brings a new response code for the card: it is kept before anything else,
//!    since it is the one way to update that card again (RSP-313).
//! 3. A press must come from a WeCom user linked to an enabled member (RSP-310); otherwise
//!    the card is re-rendered with a line asking the user to link their account, and
//!    nothing changes.
//! 4. The action runs as that member through the same path as the other IM apps, the Open
//!    API and the console (`slack::act`), with the timeline's `from = card`.
//! 5. The pressed card is replaced with the incident's current state using the press's
//!    code, then every other WeCom card of the incident that still holds an unused code
//!    from the last 72 hours (RSP-312). A card pushed this way has spent its code, so it
//!    carries a Refresh button: pressing it is a new interaction, with a new code, and
//!    re-renders the current state (RSP-313).

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_notify::card::Action;
use klaxon_notify::wecom::{self, Event, Press};
use klaxon_store::ImIntegration;

use crate::im_callback;
use crate::state::AppState;

/// A callback carries one encrypted event; far below this.
const MAX_BODY: usize = 256 * 1024;

/// RSP-310: what the card says to a user who is not linked.
const NOT_LINKED: &str = "Your WeCom account is not linked to a Klaxon member. Open the Klaxon \
                          app once to link it (or ask an administrator to link it), then try \
                          again.";

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/im/wecom/callback/{integration_id}",
        get(check_url).post(callback),
    )
}

fn query(q: &HashMap<String, String>) -> wecom::Query<'_> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    wecom::Query {
        msg_signature: get("msg_signature"),
        timestamp: get("timestamp"),
        nonce: get("nonce"),
    }
}

/// The decrypted message, or `None` (logged) when the request is not proved. A request whose
/// timestamp is more than five minutes from `now` is refused like a bad signature: a
/// captured request cannot be replayed later.
fn opened(
    i: &ImIntegration,
    q: &HashMap<String, String>,
    encrypted: &str,
    now: klaxon_core::model::Millis,
) -> Option<Vec<u8>> {
    wecom::open(
        &i.signing_secret,
        &i.encrypt_key,
        &i.app_id,
        query(q),
        encrypted,
        now,
    )
    .map_err(|why| {
        metrics::counter!("klaxon_wecom_requests_refused_total").increment(1);
        tracing::info!(
            integration_id = i.integration_id,
            ?why,
            "refused a WeCom request"
        );
    })
    .ok()
}

/// WeCom saves the callback URL only after this GET answers the decrypted `echostr`.
async fn check_url(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let i = match im_callback::integration(&state, &integration_id, "wecom").await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let echo = q.get("echostr").cloned().unwrap_or_default();
    match opened(&i, &q, &echo, state.clock.now()) {
        Some(plain) => String::from_utf8_lossy(&plain).into_owned().into_response(),
        None => im_callback::refuse("unverified request"),
    }
}

async fn callback(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    let bytes = match im_callback::body(body, MAX_BODY).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let i = match im_callback::integration(&state, &integration_id, "wecom").await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let encrypted = match wecom::encrypted_field(&String::from_utf8_lossy(&bytes)) {
        Ok(e) => e,
        Err(_) => return im_callback::refuse("unverified request"),
    };
    let Some(plain) = opened(&i, &q, &encrypted, state.clock.now()) else {
        return im_callback::refuse("unverified request");
    };
    let Ok(Event::CardPress {
        user_id,
        task_id,
        response_code,
        press: Some(press),
    }) = wecom::parse_event(&plain)
    else {
        // Other events, and keys no card offers: acknowledged, nothing to do.
        return StatusCode::OK.into_response();
    };
    if task_id.is_empty() || user_id.is_empty() {
        return StatusCode::OK.into_response();
    }
    match pressed(&state, &i, &user_id, &task_id, &response_code, press).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot handle a WeCom card press");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn pressed(
    state: &AppState,
    i: &ImIntegration,
    user_id: &str,
    task_id: &str,
    response_code: &str,
    press: Press,
) -> Result<(), klaxon_store::StoreError> {
    let account_id = i.account_id;
    let now = state.clock.now();
    let incident_id = match &press {
        Press::Refresh { incident_id } => incident_id.clone(),
        Press::Act(
            Action::Ack { incident_id }
            | Action::Close { incident_id }
            | Action::Snooze { incident_id, .. },
        ) => incident_id.clone(),
        Press::Act(Action::Details) => return Ok(()),
    };
    // RSP-313: the press is a new interaction; its code is the card's next update.
    state
        .store
        .record_im_card_code(
            account_id,
            i.integration_id,
            task_id,
            &incident_id,
            user_id,
            response_code,
            now,
        )
        .await?;
    let member = state
        .store
        .linked_member(account_id, i.integration_id, user_id)
        .await?
        .filter(|_| i.status == "enabled");
    let note = match (member, press) {
        // RSP-310: nothing changes; the card says why.
        (None, _) => NOT_LINKED.to_string(),
        (Some(_), Press::Refresh { .. }) => String::new(),
        (Some(member_id), Press::Act(action)) => {
            match crate::slack::act(
                state,
                account_id,
                member_id,
                &action,
                crate::audit::SOURCE_CARD,
            )
            .await
            {
                Ok((_, note)) => note,
                Err(message) => message,
            }
        }
    };
    // The other cards follow through the outbox (RSP-312, `card_refresh`).
    answer_card(state, i, &incident_id, task_id, &note).await;
    Ok(())
}

/// Replaces the pressed card with the incident's current state and `note`, spending the
/// response code the press brought (RSP-312, RSP-313). Best effort: a failure is logged, the
/// action stays done. If the outbox refresh spent the code first, it drew the same card.
async fn answer_card(
    state: &AppState,
    pressed_on: &ImIntegration,
    incident_id: &str,
    pressed: &str,
    note: &str,
) {
    let account_id = pressed_on.account_id;
    let now = state.clock.now();
    let Some((_, card)) = klaxon_notify::card_refresh::current_card(
        &state.store,
        &state.base_url,
        account_id,
        incident_id,
        note,
        klaxon_core::template::Channel::WecomApp,
        now,
    )
    .await
    else {
        return;
    };
    let cards = match state.store.im_cards(account_id, incident_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the incident's cards");
            return;
        }
    };
    let Some(c) = cards
        .iter()
        .find(|c| c.integration_id == pressed_on.integration_id && c.task_id == pressed)
    else {
        return;
    };
    let code = match state
        .store
        .take_im_card_code(account_id, c.integration_id, &c.task_id, now)
        .await
    {
        Ok(Some(code)) => code,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the card's response code");
            return;
        }
    };
    let body = wecom::card(&card, &c.task_id, true);
    if let Err(e) = state
        .im_http
        .wecom_update_card(pressed_on, &c.im_user_id, &code, &body, now)
        .await
    {
        tracing::warn!(error = ?e, task_id = %c.task_id, "updating a WeCom card failed");
    }
}
