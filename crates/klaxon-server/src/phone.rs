//! Acting from a call or an SMS: the provider callbacks (RSP-282, RSP-314; docs/notifications.md
//! "Acting from a call or an SMS"). Like the Slack interactivity endpoint these are not Open
//! API routes: the provider calls them, and its signature is the only proof of who calls.
//!
//! - `POST /voice/twilio/gather?t=<token>`: the `<Gather>` action of a call. Twilio's
//!   signature (`X-Twilio-Signature`) must match under the auth token of a configured
//!   Twilio-compatible account, and the token must be one signed by that same account and not
//!   expired. `Digits=1` acknowledges the incident as the called member (`from = voice`);
//!   another key is answered with one more prompt; a closed incident is told and left alone.
//!   The answer is TwiML.
//! - `POST /voice/twilio/status?t=<token>`: the call's final status. A call nobody answered
//!   (`no-answer`, `busy`, `failed`, `canceled`) turns its notification from `sent` into
//!   `failed` with `provider_error:no_answer` (…`busy`, …`call_failed`, …`canceled`); it is
//!   never redialled (RSP-282).
//! - `POST /sms/twilio/inbound`: an SMS sent to the configured number (Twilio's form POST,
//!   signed likewise). `<code> 1` acknowledges and `<code> 2` closes the incident the code was
//!   sent for, as the member it was sent to, when the reply comes from that member's verified
//!   phone and the code has not expired (`from = sms`). The answer is TwiML `<Message>`.
//! - `POST /voice/gateway/keypress` and `POST /sms/gateway/inbound`: the same for an SMS/voice
//!   gateway that is not Twilio: JSON bodies signed with `X-Klaxon-Signature: sha256=<hex
//!   HMAC-SHA256 of the body>` under the account's auth token, answered with JSON.
//!
//! A refused signature is answered 403 and changes nothing; so is a tampered token.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, Limited};
use klaxon_notify::phone::{self, ReplyVerb, TokenError, VoiceToken};
use serde_json::{Value, json};

use crate::acting::{Acted, Verb, act};
use crate::state::AppState;

/// Provider callbacks are a few hundred bytes.
const MAX_BODY: usize = 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(phone::GATHER_PATH, post(twilio_gather))
        .route(phone::STATUS_PATH, post(twilio_status))
        .route("/sms/twilio/inbound", post(twilio_sms))
        .route("/voice/gateway/keypress", post(gateway_keypress))
        .route("/sms/gateway/inbound", post(gateway_sms))
}

fn refuse(why: &str) -> Response {
    metrics::counter!("klaxon_phone_callbacks_refused_total").increment(1);
    (StatusCode::FORBIDDEN, why.to_string()).into_response()
}

fn twiml(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response())
}

/// The auth tokens of the configured Twilio-compatible accounts, primary first.
fn auth_tokens(state: &AppState) -> Vec<String> {
    [
        &state.config.notify.twilio,
        &state.config.notify.twilio_backup,
    ]
    .into_iter()
    .flatten()
    .map(|t| t.auth_token.clone())
    .filter(|t| !t.is_empty())
    .collect()
}

/// The URL Twilio requested, as it signed it: the public base URL and the path with its query.
fn full_url(state: &AppState, uri: &Uri) -> String {
    let pq = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    format!("{}{pq}", state.base_url.trim_end_matches('/'))
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query().unwrap_or(""))
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A Twilio form request whose signature matches one configured account: (its auth token,
/// the form). Err = the answer (403, or 400 for a body that is not a form).
async fn twilio_request(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Vec<(String, String)>), Response> {
    let bytes = read_body(body).await?;
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes) else {
        return Err((StatusCode::BAD_REQUEST, "the body is not a form").into_response());
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let url = full_url(state, uri);
    match auth_tokens(state)
        .into_iter()
        .find(|token| phone::twilio_signature_valid(token, &url, &params, signature))
    {
        Some(token) => Ok((token, params)),
        None => {
            tracing::info!(path = uri.path(), "refused a phone callback: bad signature");
            Err(refuse("invalid signature"))
        }
    }
}

/// A gateway JSON request whose signature matches one configured account.
async fn gateway_request(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Value), Response> {
    let bytes = read_body(body).await?;
    let signature = headers
        .get(phone::GATEWAY_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = auth_tokens(state)
        .into_iter()
        .find(|token| phone::gateway_signature_valid(token, &bytes, signature))
    else {
        tracing::info!("refused a gateway callback: bad signature");
        return Err(refuse("invalid signature"));
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.is_object() => Ok((token, v)),
        _ => Err((StatusCode::BAD_REQUEST, "the body is not a JSON object").into_response()),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

// ---- voice ----

/// What the caller hears after a key.
enum Heard {
    /// Say this and hang up.
    Say(String),
    /// Ask once more.
    Reprompt,
}

async fn twilio_gather(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (key, params) = match twilio_request(&state, &uri, &headers, body).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let token = query_param(&uri, "t").unwrap_or_default();
    let reprompted = query_param(&uri, "again").is_some();
    let t = match phone::verify_token(&key, &token, state.clock.now()) {
        Ok(t) => t,
        Err(TokenError::Invalid) => return refuse("invalid token"),
        Err(TokenError::Expired(_)) => {
            return twiml(phone::say_twiml(
                "This call has expired. Nothing was changed. Goodbye.",
            ));
        }
    };
    match keypress(&state, &t, param(&params, "Digits"), reprompted).await {
        Heard::Say(text) => twiml(phone::say_twiml(&text)),
        Heard::Reprompt => {
            let again = format!("{}&again=1", full_url(&state, &uri));
            twiml(phone::reprompt_twiml(
                &again,
                texts_of(&state, t.account_id).await,
            ))
        }
    }
}

/// The prompts in the account's language (RSP-293); English if the account cannot be read
/// (the caller is waiting: a prompt in the default language beats none).
async fn texts_of(state: &AppState, account_id: i64) -> &'static klaxon_notify::texts::Texts {
    match klaxon_notify::templating::account_zone_and_locale(&state.store, account_id).await {
        Ok((_, locale)) => klaxon_notify::texts::texts(&locale),
        Err(_) => &klaxon_notify::texts::EN,
    }
}

/// RSP-314: 1 acknowledges as the called member; another key is asked about once.
async fn keypress(state: &AppState, t: &VoiceToken, digits: &str, reprompted: bool) -> Heard {
    if digits.trim() != "1" {
        return if reprompted {
            Heard::Say("Nothing was changed. Goodbye.".into())
        } else {
            Heard::Reprompt
        };
    }
    let text = match act(
        state,
        t.account_id,
        t.member_id,
        &t.incident_id,
        Verb::Acknowledge,
        crate::audit::SOURCE_VOICE,
    )
    .await
    {
        Acted::Done(num) => format!("Incident {num} is acknowledged. Goodbye."),
        Acted::AlreadyClosed(num) => {
            format!("Incident {num} is already closed. Nothing was changed. Goodbye.")
        }
        Acted::Refused(why) => format!("{why} Nothing was changed. Goodbye."),
    };
    Heard::Say(text)
}

async fn twilio_status(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (key, params) = match twilio_request(&state, &uri, &headers, body).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let token = query_param(&uri, "t").unwrap_or_default();
    // The status of a call placed within the token's life may arrive after it: an expired
    // but genuine token still names the call.
    let t = match phone::verify_token(&key, &token, state.clock.now()) {
        Ok(t) | Err(TokenError::Expired(t)) => t,
        Err(TokenError::Invalid) => return refuse("invalid token"),
    };
    call_ended(&state, &t, param(&params, "CallStatus")).await
}

/// RSP-282: an unanswered call fails its notification; it is not redialled.
async fn call_ended(state: &AppState, t: &VoiceToken, status: &str) -> Response {
    let reason = match status {
        "no-answer" => "provider_error:no_answer",
        "busy" => "provider_error:busy",
        "failed" => "provider_error:call_failed",
        "canceled" => "provider_error:canceled",
        // queued, ringing, in-progress, completed: nothing to record.
        _ => return twiml(phone::EMPTY_TWIML.to_string()),
    };
    match state
        .store
        .fail_sent_delivery(t.account_id, &t.rid, reason)
        .await
    {
        Ok(changed) => {
            if changed {
                tracing::info!(rid = %t.rid, %reason, "a call was not answered");
                metrics::counter!("klaxon_notifications_unanswered_total").increment(1);
            }
            twiml(phone::EMPTY_TWIML.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record the call's status");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn gateway_keypress(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (key, v) = match gateway_request(&state, &headers, body).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let token = v["token"].as_str().unwrap_or_default();
    let t = match phone::verify_token(&key, token, state.clock.now()) {
        Ok(t) => t,
        Err(TokenError::Invalid) => return refuse("invalid token"),
        Err(TokenError::Expired(_)) => {
            return axum::Json(
                json!({"say": "This call has expired. Nothing was changed.", "hangup": true}),
            )
            .into_response();
        }
    };
    // A gateway's status report: the same outcome as Twilio's status callback.
    if let Some(status) = v["call_status"].as_str() {
        let answer = call_ended(&state, &t, status).await;
        if !answer.status().is_success() {
            return answer;
        }
        return axum::Json(json!({"ok": true})).into_response();
    }
    let digits = v["digits"].as_str().unwrap_or_default();
    let again = v["again"].as_bool().unwrap_or(false);
    let answer = match keypress(&state, &t, digits, again).await {
        Heard::Say(text) => json!({"say": text, "hangup": true}),
        Heard::Reprompt => {
            let texts = texts_of(&state, t.account_id).await;
            json!({
                "say": format!("{} {}", texts.key_does_nothing, texts.press_one),
                "hangup": false,
            })
        }
    };
    axum::Json(answer).into_response()
}

// ---- SMS ----

async fn twilio_sms(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (_, params) = match twilio_request(&state, &uri, &headers, body).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let reply = sms_reply(&state, param(&params, "From"), param(&params, "Body")).await;
    twiml(phone::message_twiml(&reply))
}

async fn gateway_sms(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (_, v) = match gateway_request(&state, &headers, body).await {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let from = v["from"].as_str().unwrap_or_default();
    let text = v["body"].as_str().unwrap_or_default();
    let reply = sms_reply(&state, from, text).await;
    axum::Json(json!({ "reply": reply })).into_response()
}

/// Acts on a reply and returns the confirmation to send back.
async fn sms_reply(state: &AppState, from: &str, text: &str) -> String {
    const HELP: &str = "Klaxon did not understand this reply. Reply with the code from the \
                        alert and 1 to acknowledge or 2 to close, for example: 4821 1";
    let Some((code, verb)) = phone::parse_reply(text) else {
        return HELP.to_string();
    };
    let now = state.clock.now();
    let target = match state.store.reply_target(from.trim(), &code, now).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the SMS reply code");
            return "Klaxon cannot read codes right now. Nothing was changed; please try again."
                .to_string();
        }
    };
    let Some(target) = target else {
        return format!(
            "Code {code} is unknown or has expired for this number. Nothing was changed."
        );
    };
    let (verb, source_done) = match verb {
        ReplyVerb::Acknowledge => (Verb::Acknowledge, "acknowledged"),
        ReplyVerb::Close => (Verb::Close, "closed"),
    };
    // The sender must still be the member's verified phone: a number that changed hands
    // since the SMS was sent cannot act.
    let contact = state
        .store
        .member_contacts(target.account_id, &[target.member_id])
        .await
        .ok()
        .and_then(|c| c.into_iter().next());
    let linked = contact.is_some_and(|c| {
        c.status == "enabled" && c.phone_verified && c.phone.trim() == from.trim()
    });
    if !linked {
        return format!(
            "This number is no longer the verified phone of the member code {code} was sent \
             to. Nothing was changed."
        );
    }
    match act(
        state,
        target.account_id,
        target.member_id,
        &target.incident_id,
        verb,
        crate::audit::SOURCE_SMS,
    )
    .await
    {
        Acted::Done(num) => format!("Incident {num} {source_done}."),
        Acted::AlreadyClosed(num) => match verb {
            Verb::Close => format!("Incident {num} was already closed."),
            _ => format!("Incident {num} is already closed. Nothing was changed."),
        },
        Acted::Refused(why) => format!("{why} Nothing was changed."),
    }
}
