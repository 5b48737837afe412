//! The chat-bot receivers (ingest.md ING-218): `/event/push/alert/{dingtalk,feishu,wecom}_alert`
//! take a group-bot message and answer in that bot's own shape, so a tool that checks the
//! bot's `errcode`/`code` sees success and failure as it would from the real bot.
//!
//! The push path's steps are reused (key resolution, body limit, rate limit, one inbox
//! commit), so a success answer still means the event is committed (ING-008). Failures keep
//! their HTTP status (400, 401, 403, 429, 500) as well as the bot's error code, so a tool that
//! only looks at the status also notices.
//!
//! The error codes are the bots' codes for the same situations: an unknown key, an unsupported
//! message type, a malformed body, too many requests, a server failure.

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::ratelimit::Admission;
use klaxon_sources::Context;
use klaxon_sources::chatbot::{
    Bot, ChatOutcome, ChatSettings, MessageError, parse_message, to_event,
};
use serde_json::{Value, json};

use crate::envelope::{FLASHCAT_REQUEST_ID, X_REQUEST_ID};
use crate::push::{commit, query_key, query_params, read_json, resolve_key};
use crate::state::{AppState, new_request_id, random_hex};

/// How a request failed, in the terms every bot protocol distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Missing, unknown or disabled key, wrong integration type, suspended account.
    Key,
    /// A message type other than the accepted two.
    MessageType,
    /// Unreadable body, missing field, wrong method.
    Body,
    Throttled,
    Internal,
}

impl Failure {
    fn of(e: &ApiError) -> Failure {
        match e.code {
            ErrorCode::Unauthorized | ErrorCode::AccessDenied | ErrorCode::ServiceSuspended => {
                Failure::Key
            }
            ErrorCode::InternalError | ErrorCode::ServiceUnavailable => Failure::Internal,
            // resolve_key answers an unknown key and a type mismatch with InvalidParameter.
            _ if e.message.contains("integration_key") || e.message.contains("type mismatch") => {
                Failure::Key
            }
            _ => Failure::Body,
        }
    }

    /// The bot's error code for this failure.
    fn code(self, bot: Bot) -> i64 {
        match (bot, self) {
            (Bot::DingTalk, Failure::Key) => 300001,
            (Bot::DingTalk, Failure::MessageType | Failure::Body) => 40035,
            (Bot::DingTalk, Failure::Throttled) => 130101,
            (Bot::WeCom, Failure::Key) => 93000,
            (Bot::WeCom, Failure::MessageType) => 40008,
            (Bot::WeCom, Failure::Body) => 40035,
            (Bot::WeCom, Failure::Throttled) => 45009,
            (Bot::Feishu, Failure::Key) => 19001,
            (Bot::Feishu, Failure::MessageType | Failure::Body) => 9499,
            (Bot::Feishu, Failure::Throttled) => 11232,
            (_, Failure::Internal) => -1,
        }
    }
}

/// The bot's answer: DingTalk and WeCom `{errcode, errmsg}`, Feishu `{code, msg, data}`.
fn answer(bot: Bot, code: i64, message: &str) -> Value {
    match bot {
        Bot::Feishu => json!({"code": code, "msg": message, "data": {}}),
        Bot::DingTalk | Bot::WeCom => json!({"errcode": code, "errmsg": message}),
    }
}

/// `POST /event/push/alert/<bot type>`.
pub(crate) async fn receive(
    state: AppState,
    bot: Bot,
    method: Method,
    query: Option<String>,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let result = accept(&state, &request_id, bot, &method, query.as_deref(), body).await;
    let metric = match &result {
        Ok(()) => "OK",
        Err((Failure::Throttled, _)) => "RequestTooFrequently",
        Err((_, e)) => e.code.as_str(),
    };
    metrics::counter!("klaxon_push_requests_total", "code" => metric).increment(1);
    metrics::histogram!("klaxon_push_latency_seconds").record(started.elapsed().as_secs_f64());
    let (status, body) = match result {
        // Feishu says "success", the others "ok".
        Ok(()) if bot == Bot::Feishu => (StatusCode::OK, answer(bot, 0, "success")),
        Ok(()) => (StatusCode::OK, answer(bot, 0, "ok")),
        Err((failure, e)) => {
            if failure == Failure::Internal {
                tracing::error!(%request_id, error = %e.message, "chat-bot push failed");
            }
            let status = match failure {
                Failure::Throttled => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::from_u16(e.code.http_status(Surface::Push))
                    .unwrap_or(StatusCode::BAD_REQUEST),
            };
            (status, answer(bot, failure.code(bot), &e.message))
        }
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(FLASHCAT_REQUEST_ID, v.clone());
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    resp
}

async fn accept(
    state: &AppState,
    request_id: &str,
    bot: Bot,
    method: &Method,
    query: Option<&str>,
    body: Body,
) -> Result<(), (Failure, ApiError)> {
    let fail = |e: ApiError| (Failure::of(&e), e);
    if method != Method::POST {
        return Err((
            Failure::Body,
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("method {method} is not allowed, use POST"),
            ),
        ));
    }
    let params = query_params(query).map_err(fail)?;
    let integration = resolve_key(state, query_key(&params), bot.type_name())
        .await
        .map_err(fail)?;
    let (bytes, payload) = read_json(body).await.map_err(|e| (Failure::Body, e))?;
    let now = state.clock.now();
    if let Admission::Throttled { .. } =
        state
            .limiter
            .admit_push(integration.account_id, integration.integration_id, now)
    {
        return Err((
            Failure::Throttled,
            ApiError::new(ErrorCode::RequestTooFrequently, "too many requests"),
        ));
    }
    let message = parse_message(bot, &payload).map_err(|e| match e {
        MessageError::UnsupportedType(e) => (Failure::MessageType, e),
        MessageError::Invalid(e) => (Failure::Body, e),
    })?;
    let settings_json: Value =
        serde_json::from_str(&integration.settings).unwrap_or_else(|_| json!({}));
    let settings = ChatSettings::from_json(bot, &settings_json).map_err(|e| {
        (
            Failure::Internal,
            ApiError::internal(format!(
                "the integration's stored settings are invalid: {}",
                e.message
            )),
        )
    })?;
    let query_labels: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, _)| k != "integration_key")
        .collect();
    let ctx = Context {
        integration_id: integration.integration_id,
        query_labels: &query_labels,
        received_at: now,
        console_url: None,
    };
    let raw = String::from_utf8_lossy(&bytes);
    match to_event(bot, &message, &raw, &settings, &ctx, &random_hex(16)) {
        ChatOutcome::Event(event) => commit(state, request_id, &integration, vec![*event], now)
            .await
            .map_err(fail),
        ChatOutcome::DroppedUnmatched => {
            // ING-216 `drop_unmatched`: answered as a success, like the bot would.
            metrics::counter!("klaxon_chatbot_messages_dropped_total").increment(1);
            tracing::info!(
                integration_id = integration.integration_id,
                "dropped_unmatched_message"
            );
            Ok(())
        }
    }
}
