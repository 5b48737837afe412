//! Sign-in with a code sent by e-mail (response.md RSP-578, docs/sign-in.md):
//! `POST /auth/code/request` and `POST /auth/code/login`, and the same two steps for the
//! console's sign-in form ([`request_code`], [`code_sign_in`]).
//!
//! - request `{email}`: every live member with that address who may sign in locally gets a
//!   six-digit code by e-mail. While the account's SSO is on, that is only the owner (the
//!   break-glass access); with SSO off, every member. The answer is the same `200` whether
//!   the address is known, rate-limited or under SSO, and the e-mail goes out after
//!   answering, so neither the answer nor its timing tells whether an account exists.
//!   Requests count against the node-wide sign-in rate; each member gets at most
//!   [`login_code::MAX_PER_WINDOW`] codes an hour.
//! - login `{email, code, account_id?}`: opens the console session (as `/auth/login` does)
//!   when the code is the live one of a member with that address. A wrong code counts a try
//!   against it; the fifth wrong try spends it.
//!
//! Both steps are audited as sign-in events of the member (RSP-600).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, Method};
use axum::response::Response;
use axum::routing::any;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::login_code;
use klaxon_notify::smtp::Mailer;
use klaxon_store::{CodeCandidate, CodePolicy, NewSession};
use serde_json::{Value, json};

use crate::envelope::{failure, success, throttled};
use crate::signin::{LoginFailure, internal, json_body, method_not_allowed, session_cookies};
use crate::state::{AppState, new_request_id};
use crate::wire;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/code/request", any(request))
        .route("/auth/code/login", any(login))
}

fn policy() -> CodePolicy {
    CodePolicy {
        ttl_ms: login_code::CODE_TTL_MS,
        max_tries: login_code::MAX_TRIES,
        max_per_window: login_code::MAX_PER_WINDOW,
        window_ms: login_code::WINDOW_MS,
    }
}

fn text_field(args: &Value, name: &str) -> String {
    args.get(name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string()
}

fn check_email(email: &str) -> Result<(), ApiError> {
    if email.is_empty() {
        return Err(ApiError::invalid("email: required"));
    }
    if email.chars().count() > 254 {
        return Err(ApiError::invalid("email: at most 254 characters"));
    }
    Ok(())
}

/// The node-wide bound shared with password sign-in.
fn admit(state: &AppState) -> Result<(), LoginFailure> {
    let now = state.clock.now();
    if let Ok(mut window) = state.signin_window.lock()
        && window.limit() > 0
    {
        if !window.has_room(now) {
            return Err(LoginFailure::Throttled {
                limit: window.limit(),
                reset_at: window.reset_at(now),
            });
        }
        window.admit(now);
    }
    Ok(())
}

/// RSP-578: whether the candidate may sign in locally, and the login domain it must use
/// instead when not.
pub(crate) async fn sso_domain_required(
    state: &AppState,
    account_id: i64,
    is_owner: bool,
) -> Result<Option<String>, ApiError> {
    let config = state.store.sso_config(account_id).await.map_err(internal)?;
    let enabled = config.as_ref().is_some_and(|c| c.enabled);
    if login_code::local_sign_in_allowed(enabled, is_owner) {
        return Ok(None);
    }
    Ok(config.map(|c| c.login_domain))
}

/// Sends a sign-in code to every member with this address who may sign in locally. The
/// same `Ok` for every address; the mails go out in the background.
pub(crate) async fn request_code(
    state: &AppState,
    email: &str,
    ip: &str,
) -> Result<(), LoginFailure> {
    check_email(email)?;
    // Without an e-mail sender no code can ever arrive: say so (for any address alike).
    let Some(smtp) = state.config.notify.email.as_ref() else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "sign-in by e-mail code is not available: no e-mail sender is configured \
             (notify.email)",
        )
        .into());
    };
    admit(state)?;
    let mailer = Mailer::new(smtp, state.config.notify.timeout_ms).map_err(internal)?;
    let now = state.clock.now();
    let candidates = state.store.code_candidates(email).await.map_err(internal)?;
    let mut mails: Vec<(CodeCandidate, String)> = Vec::new();
    for c in candidates {
        if sso_domain_required(state, c.account_id, c.is_owner)
            .await?
            .is_some()
        {
            crate::audit::record_signin(
                state,
                c.account_id,
                c.member_id,
                "login_code_request",
                ip,
                ErrorCode::AccessDenied.as_str(),
            )
            .await;
            continue;
        }
        let code = state
            .store
            .create_login_code(c.account_id, c.member_id, policy(), now)
            .await
            .map_err(internal)?;
        let result = if code.is_some() {
            "ok"
        } else {
            ErrorCode::RequestTooFrequently.as_str()
        };
        crate::audit::record_signin(
            state,
            c.account_id,
            c.member_id,
            "login_code_request",
            ip,
            result,
        )
        .await;
        if let Some(code) = code {
            mails.push((c, code));
        }
    }
    if !mails.is_empty() {
        let minutes = login_code::CODE_TTL_MS / 60_000;
        let base = state.base_url.to_string();
        // After answering: the time a send takes must not tell that the address exists.
        tokio::spawn(async move {
            for (c, code) in mails {
                // ASCII and short lines, so the text part goes out as plain 7bit.
                let text = format!(
                    "Someone asked to sign in to your Klaxon account at\r\n\
                     {base} with a code sent by e-mail.\r\n\r\n\
                     Your sign-in code (it works once, for {minutes} minutes):\r\n\r\n\
                     {code}\r\n\r\n\
                     Type it on the sign-in page, or send it to\r\n\
                     {base}/auth/code/login\r\n\
                     as JSON: {{\"email\": \"<address>\", \"code\": \"<code>\"}}.\r\n\r\n\
                     If you did not ask for this, ignore this e-mail: nobody can\r\n\
                     sign in without the code.\r\n"
                );
                let html = format!("<pre>{}</pre>", crate::console::view::escape(&text));
                if let Err(e) = mailer
                    .send(
                        &new_request_id(),
                        &c.email,
                        &c.member_name,
                        "Your Klaxon sign-in code",
                        html,
                        text,
                    )
                    .await
                {
                    tracing::warn!(error = ?e, "cannot send the sign-in code e-mail");
                }
            }
        });
    }
    Ok(())
}

/// Checks an e-mail code and opens a session. The JSON sign-in and the console's form both
/// come through here.
pub(crate) async fn code_sign_in(
    state: &AppState,
    email: &str,
    code: &str,
    account_id: i64,
    ip: &str,
) -> Result<NewSession, LoginFailure> {
    check_email(email)?;
    if code.is_empty() {
        return Err(ApiError::invalid("code: required").into());
    }
    let wrong = || ApiError::new(ErrorCode::Unauthorized, "email or code is incorrect");
    admit(state)?;
    let Some(code) = login_code::normalize_code(code) else {
        return Err(ApiError::invalid(format!(
            "code: the {} digits of the e-mail",
            login_code::CODE_DIGITS
        ))
        .into());
    };
    let now = state.clock.now();
    let candidates: Vec<CodeCandidate> = state
        .store
        .code_candidates(email)
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|c| account_id == 0 || c.account_id == account_id)
        .collect();
    let members: Vec<(i64, i64)> = candidates
        .iter()
        .map(|c| (c.account_id, c.member_id))
        .collect();
    let Some(used) = state
        .store
        .use_login_code(&members, &code, login_code::MAX_TRIES, now)
        .await
        .map_err(internal)?
    else {
        for c in &candidates {
            crate::audit::record_signin(
                state,
                c.account_id,
                c.member_id,
                "login",
                ip,
                ErrorCode::Unauthorized.as_str(),
            )
            .await;
        }
        tracing::info!("sign-in refused: wrong e-mail or code");
        return Err(wrong().into());
    };
    // SSO may have been turned on since the code was sent.
    let is_owner = candidates
        .iter()
        .any(|c| c.account_id == used.account_id && c.member_id == used.member_id && c.is_owner);
    if let Some(domain) = sso_domain_required(state, used.account_id, is_owner).await? {
        crate::audit::record_signin(
            state,
            used.account_id,
            used.member_id,
            "login",
            ip,
            ErrorCode::AccessDenied.as_str(),
        )
        .await;
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!(
                "this account signs in with single sign-on: use \"Sign in with SSO\" and the \
                 login domain \"{domain}\""
            ),
        )
        .into());
    }
    let ttl_ms = state.config.auth.session_ttl_minutes.max(1) * 60_000;
    let created = state
        .store
        .create_session(used.account_id, used.member_id, ttl_ms, now)
        .await
        .map_err(internal)?;
    tracing::info!(
        account_id = used.account_id,
        member_id = used.member_id,
        "signed in with an e-mail code"
    );
    crate::audit::record_signin(
        state,
        used.account_id,
        used.member_id,
        "login_code",
        ip,
        "ok",
    )
    .await;
    Ok(created)
}

fn failed(request_id: &str, f: LoginFailure) -> Response {
    match f {
        LoginFailure::Throttled { limit, reset_at } => {
            throttled(request_id, Surface::OpenApi, limit, reset_at)
        }
        LoginFailure::Locked { until, now } => {
            let (e, _) = crate::signin::locked(until, now);
            failure(request_id, Surface::OpenApi, &e)
        }
        LoginFailure::Error(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(%request_id, error = %e.message, "e-mail code sign-in failed");
            }
            failure(request_id, Surface::OpenApi, &e)
        }
    }
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
    let result = async {
        if method != Method::POST {
            return Err(method_not_allowed(&method).into());
        }
        let args = json_body(&headers, body).await?;
        request_code(&state, &text_field(&args, "email"), &ip).await
    }
    .await;
    match result {
        Ok(()) => success(&request_id, None),
        Err(f) => failed(&request_id, f),
    }
}

async fn login(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let ip = crate::openapi::client_ip(&extensions);
    let result = async {
        if method != Method::POST {
            return Err(method_not_allowed(&method).into());
        }
        let args = json_body(&headers, body).await?;
        let account_id = args.get("account_id").and_then(Value::as_i64).unwrap_or(0);
        code_sign_in(
            &state,
            &text_field(&args, "email"),
            &text_field(&args, "code"),
            account_id,
            &ip,
        )
        .await
    }
    .await;
    match result {
        Ok(created) => {
            let s = &created.session;
            let mut resp = success(
                &request_id,
                Some(json!({
                    "account_id": s.account_id,
                    "member_id": s.member_id,
                    "csrf_token": s.csrf_token,
                    "expires_at": wire::secs(s.expires_at),
                })),
            );
            let ttl_secs = state.config.auth.session_ttl_minutes.max(1) * 60;
            session_cookies(&state, &mut resp, &created.token, &s.csrf_token, ttl_secs);
            resp
        }
        Err(f) => failed(&request_id, f),
    }
}
