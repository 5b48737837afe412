//! The DingTalk app's callback URL (response.md §2.19 RSP-302, §2.20 RSP-310–RSP-312;
//! docs/dingtalk-app.md): the developer console checks the URL here (`check_url`), and the
//! cards' request buttons call back here through the route key the cards name.
//!
//! 1. Every request carries a signature over the Signature Token, timestamp, nonce and the
//!    ciphertext; the message is encrypted with the aes_key and names the app's Client ID
//!    or the organisation's CorpId as receiver; the timestamp is within five minutes of our
//!    clock. Anything else is answered 401 and changes nothing: the URL is public, and these
//!    are the only proofs that the request comes from DingTalk and is not a replay.
//! 2. Every proved request is answered with the encrypted `success` DingTalk expects.
//! 3. A press must come from a DingTalk user linked to an enabled member (RSP-310);
//!    otherwise the pressed card is re-rendered with a line asking the user to link their
//!    account, and nothing changes.
//! 4. The action runs as that member through the same path as the other IM apps, the Open
//!    API and the console (`slack::act`), with the timeline's `from = card`.
//! 5. The pressed card shows the incident's new state and what was done; after a change,
//!    every other DingTalk card of the incident is updated too (RSP-312, best effort).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use klaxon_notify::card::Action;
use klaxon_notify::dingtalk::{self, Event};
use klaxon_store::ImIntegration;

use crate::im_callback;
use crate::state::AppState;

/// A callback carries one encrypted event; far below this.
const MAX_BODY: usize = 256 * 1024;

/// RSP-310: what the card says to a user who is not linked.
const NOT_LINKED: &str = "Your DingTalk account is not linked to a Klaxon member. Open the \
                          Klaxon app once to link it (or ask an administrator to link it), then \
                          try again.";

pub fn routes() -> Router<AppState> {
    Router::new().route("/im/dingtalk/callback/{integration_id}", post(callback))
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
    let i = match im_callback::integration(&state, &integration_id, "dingtalk").await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let query = dingtalk::Query {
        signature: match get("msg_signature") {
            "" => get("signature"),
            s => s,
        },
        timestamp: get("timestamp"),
        nonce: get("nonce"),
    };
    let now = state.clock.now();
    let opened = dingtalk::encrypted_field(&bytes).and_then(|encrypted| {
        dingtalk::open(
            &i.signing_secret,
            &i.encrypt_key,
            &[&i.app_id, &i.corp_id],
            query,
            &encrypted,
            now,
        )
    });
    let plain = match opened {
        Ok(p) => p,
        Err(why) => {
            metrics::counter!("klaxon_dingtalk_requests_refused_total").increment(1);
            tracing::info!(
                integration_id = i.integration_id,
                ?why,
                "refused a DingTalk request"
            );
            return im_callback::refuse("unverified request");
        }
    };
    // check_url, other events, and buttons no card offers: acknowledged, nothing to do.
    if let Ok(Event::CardPress {
        user_id,
        out_track_id,
        press: Some(action),
    }) = dingtalk::parse_event(&plain)
        && !user_id.is_empty()
        && let Err(e) = pressed(&state, &i, &user_id, &out_track_id, action).await
    {
        tracing::error!(error = %e, "cannot handle a DingTalk card press");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    Json(dingtalk::success_answer(
        &i.signing_secret,
        &i.encrypt_key,
        &i.app_id,
        now,
        rand::random(),
    ))
    .into_response()
}

async fn pressed(
    state: &AppState,
    i: &ImIntegration,
    user_id: &str,
    out_track_id: &str,
    action: Action,
) -> Result<(), klaxon_store::StoreError> {
    let account_id = i.account_id;
    let incident_id = match &action {
        Action::Ack { incident_id }
        | Action::Close { incident_id }
        | Action::Snooze { incident_id, .. } => incident_id.clone(),
        Action::Details => return Ok(()),
    };
    let member = state
        .store
        .linked_member(account_id, i.integration_id, user_id)
        .await?
        .filter(|_| i.status == "enabled");
    let note = match member {
        // RSP-310: nothing changes; the card says why.
        None => NOT_LINKED.to_string(),
        Some(member_id) => match crate::slack::act(
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
        },
    };
    // The other cards follow through the outbox (RSP-312, `card_refresh`).
    answer_card(state, i, &incident_id, out_track_id, &note).await;
    Ok(())
}

/// Shows the incident's current state with `note` on the pressed card (RSP-312). Best
/// effort: a failure is logged, the action stays done.
async fn answer_card(
    state: &AppState,
    pressed_on: &ImIntegration,
    incident_id: &str,
    pressed: &str,
    note: &str,
) {
    let now = state.clock.now();
    let Some((_, card)) = klaxon_notify::card_refresh::current_card(
        &state.store,
        &state.base_url,
        pressed_on.account_id,
        incident_id,
        note,
        klaxon_core::template::Channel::DingtalkApp,
        now,
    )
    .await
    else {
        return;
    };
    let layout = dingtalk::card_layout(&card, &[]);
    if let Err(e) = state
        .im_http
        .dingtalk_update_card(pressed_on, pressed, &layout, now)
        .await
    {
        tracing::warn!(error = ?e, out_track_id = %pressed, "updating a DingTalk card failed");
    }
}
