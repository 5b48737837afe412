//! The Feishu/Lark app's "message card request URL" (response.md §2.19 RSP-300/RSP-302,
//! §2.20 RSP-310/RSP-311/RSP-312; docs/feishu.md): Feishu posts here to check the URL, when
//! someone uses a control of a card (`card.action.trigger` and the older
//! `card.action.trigger_v1`), and for the app's events (`im.chat.disbanded_v1`).
//!
//! 1. When the integration has an Encrypt Key every request must be encrypted with it, and is
//!    decrypted; then it must carry the integration's Verification Token (the old card
//!    callback instead signs the raw body with it, `X-Lark-Signature`). Anything else is
//!    answered 401 and changes nothing: the URL is public, and these are the only proofs
//!    that the request comes from Feishu.
//! 2. A card action must come from a Feishu user linked to an enabled member (RSP-310);
//!    otherwise the card answers with an error toast and nothing changes.
//! 3. The action runs as that member through the same path as the Slack app, the Open API
//!    and the console (`slack::act`): permissions, licences, the audit log (source `card`)
//!    and the timeline's `from = card` apply.
//! 4. The answer carries the pressed card in its new state; the incident's other Feishu cards
//!    are patched before answering (RSP-312, best effort).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use klaxon_notify::card::Action;
use klaxon_notify::feishu::{self, Callback, SignatureHeaders};
use serde_json::json;

use crate::im_callback;
use crate::state::AppState;

/// Callbacks carry one card action or event; far below this.
const MAX_BODY: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/im/feishu/callback/{integration_id}", post(callback))
}

async fn callback(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match im_callback::body(body, MAX_BODY).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let integration = match im_callback::integration(&state, &integration_id, "feishu").await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let id = integration.integration_id;
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let sig = SignatureHeaders {
        timestamp: header("x-lark-request-timestamp"),
        nonce: header("x-lark-request-nonce"),
        signature: header("x-lark-signature"),
    };
    let callback = match feishu::verify(
        &integration.signing_secret,
        &integration.encrypt_key,
        &bytes,
        sig,
    ) {
        Ok(c) => c,
        Err(why) => {
            metrics::counter!("klaxon_feishu_requests_refused_total").increment(1);
            tracing::info!(integration_id = id, ?why, "refused a Feishu request");
            return im_callback::refuse("unverified request");
        }
    };
    let account_id = integration.account_id;
    match callback {
        Callback::Challenge(challenge) => Json(json!({ "challenge": challenge })).into_response(),
        Callback::ChatDisbanded { chat_id } => {
            // RSP-300: later sends to this chat fail with chat_unavailable.
            if let Err(e) = state
                .store
                .mark_im_chat_unavailable(account_id, id, &chat_id, "disbanded", state.clock.now())
                .await
            {
                tracing::error!(error = %e, "cannot record the disbanded chat");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            // RSP-436: a war room on the chat is dissolved, with creator 0.
            if let Err(e) =
                crate::war_room::disbanded_on_platform(&state, &integration, &chat_id).await
            {
                tracing::error!(error = %e, "cannot record the disbanded war room");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            Json(json!({})).into_response()
        }
        Callback::Other => Json(json!({})).into_response(),
        Callback::CardAction {
            v2,
            open_id,
            message_id,
            action,
        } => {
            let Some(action) = action.filter(|a| *a != Action::Details) else {
                return Json(json!({})).into_response();
            };
            let member = match state.store.linked_member(account_id, id, &open_id).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the linked member");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            };
            let Some(member_id) = member.filter(|_| integration.status == "enabled") else {
                // RSP-310: the card tells the clicking user; nothing changes.
                let text = "Your Feishu account is not linked to a Klaxon member. Open the \
                            Klaxon app once to link it (or ask an administrator to link it), \
                            then try again.";
                return Json(feishu::callback_answer(v2, false, text, None)).into_response();
            };
            // RSP-435: the card posted in a war room acts with `from = wcard`.
            let source =
                crate::war_room::press_source(&state, account_id, &action, &message_id).await;
            match crate::slack::act(&state, account_id, member_id, &action, source).await {
                Ok((incident_id, note)) => {
                    // The pressed card is the answer; the others follow through the outbox
                    // (RSP-312, `card_refresh`).
                    let card = klaxon_notify::card_refresh::current_card(
                        &state.store,
                        &state.base_url,
                        account_id,
                        &incident_id,
                        &note,
                        klaxon_core::template::Channel::FeishuApp,
                        state.clock.now(),
                    )
                    .await
                    .map(|(_, c)| feishu::card(&c));
                    Json(feishu::callback_answer(v2, true, &note, card)).into_response()
                }
                Err(message) => {
                    Json(feishu::callback_answer(v2, false, &message, None)).into_response()
                }
            }
        }
    }
}
