//! Password reset by e-mail (docs/sign-in.md): `POST /auth/password/reset/request` and
//! `POST /auth/password/reset/confirm`.
//!
//! - request `{email}`: every live member with a password and that address gets an e-mail
//!   with a single-use token that works for `auth.reset_ttl_minutes`. The answer is the
//!   same `200` whether or not the address is known, rate-limited or not, and the e-mail
//!   is sent after answering, so neither the answer nor its timing tells whether an
//!   account exists. Requests count against the node-wide sign-in rate
//!   (`auth.attempts_per_second`) and, per member, `auth.resets_per_hour`.
//! - confirm `{token, password}`: sets the new password, voids the member's other tokens and
//!   ends all their sessions (store: one transaction). A bad, used or expired token is
//!   `400 InvalidParameter` naming `token`, and changes nothing.
//!
//! Both are audited as sign-in events of the member (RSP-600).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, Method};
use axum::response::Response;
use axum::routing::any;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_notify::smtp::Mailer;
use klaxon_store::ResetPolicy;
use serde_json::Value;

use crate::envelope::{failure, success, throttled};
use crate::signin::{internal, json_body, method_not_allowed};
use crate::state::{AppState, new_request_id};

/// A chosen password: at least this many characters (and at most 1024 bytes, as sign-in).
const MIN_PASSWORD_CHARS: usize = 8;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/password/reset/request", any(request))
        .route("/auth/password/reset/confirm", any(confirm))
}

enum Refusal {
    Error(ApiError),
    Throttled { limit: usize, reset_at: i64 },
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Error(e)
    }
}

fn answer(request_id: &str, result: Result<(), Refusal>) -> Response {
    match result {
        Ok(()) => success(request_id, None),
        Err(Refusal::Throttled { limit, reset_at }) => {
            throttled(request_id, Surface::OpenApi, limit, reset_at)
        }
        Err(Refusal::Error(e)) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(%request_id, error = %e.message, "password reset failed");
            }
            failure(request_id, Surface::OpenApi, &e)
        }
    }
}

fn policy(state: &AppState) -> ResetPolicy {
    ResetPolicy {
        ttl_ms: state.config.auth.reset_ttl_minutes.max(1) * 60_000,
        max_per_window: state.config.auth.resets_per_hour.max(1),
        window_ms: 3_600_000,
    }
}

fn text_field(args: &Value, name: &str) -> String {
    args.get(name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The node-wide bound shared with password sign-in.
fn admit(state: &AppState) -> Result<(), Refusal> {
    let now = state.clock.now();
    if let Ok(mut window) = state.signin_window.lock()
        && window.limit() > 0
    {
        if !window.has_room(now) {
            return Err(Refusal::Throttled {
                limit: window.limit(),
                reset_at: window.reset_at(now),
            });
        }
        window.admit(now);
    }
    Ok(())
}

async fn request(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let ip = crate::openapi::client_ip(&extensions);
    let result = request_inner(&state, &method, &headers, &ip, body).await;
    answer(&request_id, result)
}

async fn request_inner(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    ip: &str,
    body: Body,
) -> Result<(), Refusal> {
    if *method != Method::POST {
        return Err(method_not_allowed(method).into());
    }
    let args = json_body(headers, body).await?;
    let email = text_field(&args, "email").trim().to_string();
    if email.is_empty() {
        return Err(ApiError::invalid("email: required").into());
    }
    if email.chars().count() > 254 {
        return Err(ApiError::invalid("email: at most 254 characters").into());
    }
    // Without an e-mail sender no reset can ever arrive: say so (for any address alike).
    let Some(smtp) = state.config.notify.email.as_ref() else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "password reset by e-mail is not available: no e-mail sender is configured \
             (notify.email)",
        )
        .into());
    };
    admit(state)?;
    let mailer = Mailer::new(smtp, state.config.notify.timeout_ms).map_err(internal)?;
    let now = state.clock.now();
    let candidates = state
        .store
        .login_candidates(&email)
        .await
        .map_err(internal)?;
    let mut mails = Vec::new();
    for c in candidates {
        let token = state
            .store
            .create_password_reset(c.account_id, c.member_id, policy(state), now)
            .await
            .map_err(internal)?;
        let result = if token.is_some() {
            "ok"
        } else {
            ErrorCode::RequestTooFrequently.as_str()
        };
        crate::audit::record_signin(
            state,
            c.account_id,
            c.member_id,
            "password_reset_request",
            ip,
            result,
        )
        .await;
        // To the address as the member entered it, not as the request spelled it.
        if let Some(token) = token {
            let member = state
                .store
                .member(c.account_id, c.member_id)
                .await
                .map_err(internal)?;
            if let Some(m) = member {
                mails.push((m.email, m.member_name, token));
            }
        }
    }
    if !mails.is_empty() {
        let minutes = state.config.auth.reset_ttl_minutes.max(1);
        let base = state.base_url.to_string();
        // After answering: the time a send takes must not tell that the address exists.
        tokio::spawn(async move {
            for (to, name, token) in mails {
                // ASCII and short lines, so the text part goes out as plain 7bit.
                let text = format!(
                    "Someone asked to reset the password of your Klaxon account\r\n\
                     at {base}.\r\n\r\n\
                     Your reset code (it works once, for {minutes} minutes):\r\n\r\n\
                     {token}\r\n\r\n\
                     Send it with your new password to\r\n\
                     {base}/auth/password/reset/confirm\r\n\
                     as JSON: {{\"token\": \"<code>\", \"password\": \"<new>\"}}.\r\n\
                     Setting a new password signs you out everywhere.\r\n\r\n\
                     If you did not ask for this, ignore this e-mail.\r\n"
                );
                let html = format!("<pre>{}</pre>", crate::console::view::escape(&text));
                if let Err(e) = mailer
                    .send(
                        &new_request_id(),
                        &to,
                        &name,
                        "Reset your Klaxon password",
                        html,
                        text,
                    )
                    .await
                {
                    tracing::warn!(error = ?e, "cannot send the password reset e-mail");
                }
            }
        });
    }
    Ok(())
}

async fn confirm(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let ip = crate::openapi::client_ip(&extensions);
    let result = confirm_inner(&state, &method, &headers, &ip, body).await;
    answer(&request_id, result)
}

async fn confirm_inner(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    ip: &str,
    body: Body,
) -> Result<(), Refusal> {
    if *method != Method::POST {
        return Err(method_not_allowed(method).into());
    }
    let args = json_body(headers, body).await?;
    let token = text_field(&args, "token").trim().to_string();
    let password = text_field(&args, "password");
    if token.is_empty() {
        return Err(ApiError::invalid("token: required").into());
    }
    if token.len() > 256 {
        return Err(ApiError::invalid("token: is invalid or has expired").into());
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters"
        ))
        .into());
    }
    if password.len() > 1024 {
        return Err(ApiError::invalid("password: at most 1024 bytes").into());
    }
    // Guessing tokens costs a slot of the node-wide sign-in rate, like guessing passwords.
    admit(state)?;
    let hash = state
        .store
        .hash_password(&password)
        .await
        .map_err(internal)?;
    let done = state
        .store
        .use_password_reset(&token, &hash, state.clock.now())
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::invalid("token: is invalid or has expired"))?;
    crate::audit::record_signin(
        state,
        done.account_id,
        done.member_id,
        "password_reset",
        ip,
        "ok",
    )
    .await;
    tracing::info!(
        account_id = done.account_id,
        member_id = done.member_id,
        "password reset; every session of the member ended"
    );
    Ok(())
}
