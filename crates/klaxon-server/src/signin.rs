//! Password sign-in for the console (docs/sign-in.md): `POST /auth/login`, `POST /auth/logout`
//! and `POST /auth/session`, server-side sessions in an HttpOnly cookie, lockout after
//! repeated failures, and the CSRF check for cookie-authenticated requests.
//!
//! A cookie-authenticated state-changing request (every Open API call is a POST) must carry the
//! session's CSRF token in the `X-Klaxon-CSRF` header. The token is returned by the sign-in and
//! also set in the readable `klaxon_csrf` cookie, so a page script can copy it (double submit);
//! the server compares it with the copy it stored with the session, so a forged cookie does
//! not help. `SameSite=Lax` already keeps the session cookie off cross-site POSTs.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::any;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::model::Millis;
use klaxon_store::{LockoutPolicy, NewSession, Session};
use serde_json::{Value, json};

use crate::envelope::{failure, success, throttled};
use crate::state::{AppState, new_request_id};
use crate::wire;

pub const SESSION_COOKIE: &str = "klaxon_session";
pub const CSRF_COOKIE: &str = "klaxon_csrf";
pub const CSRF_HEADER: &str = "x-klaxon-csrf";

/// Sign-in bodies are tiny; anything larger is refused before parsing.
const MAX_BODY: usize = 16 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", any(login))
        .route("/auth/logout", any(logout))
        .route("/auth/session", any(session_info))
        .merge(crate::password_reset::routes())
        .merge(crate::signin_code::routes())
}

/// The value of one cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Equality that does not stop at the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session of a cookie-authenticated request, with the CSRF check for every method that
/// is not GET/HEAD/OPTIONS. `Ok(None)`: no session cookie at all.
pub async fn session_of(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let session = state
        .store
        .session(token, state.clock.now())
        .await
        .map_err(|e| ApiError::internal(format!("cannot check the session: {e}")))?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "the session has expired or was ended; sign in again",
            )
        })?;
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if sent.is_empty() || !same(sent, &session.csrf_token) {
            return Err(ApiError::new(
                ErrorCode::AccessDenied,
                "X-Klaxon-CSRF: a cookie-authenticated request must carry the session's CSRF token",
            ));
        }
    }
    Ok(Some(session))
}

pub(crate) fn lockout_policy(state: &AppState) -> LockoutPolicy {
    let auth = &state.config.auth;
    LockoutPolicy {
        max_failures: auth.max_failures.max(1),
        window_ms: auth.failure_window_minutes.max(1) * 60_000,
        lock_ms: auth.lockout_minutes.max(1) * 60_000,
    }
}

fn secure_cookie(state: &AppState) -> bool {
    state
        .config
        .auth
        .secure_cookie
        .unwrap_or_else(|| state.base_url.starts_with("https://"))
}

fn set_cookie(resp: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) fn session_cookies(
    state: &AppState,
    resp: &mut Response,
    token: &str,
    csrf: &str,
    max_age: i64,
) {
    let secure = if secure_cookie(state) { "; Secure" } else { "" };
    set_cookie(
        resp,
        format!(
            "{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        ),
    );
    set_cookie(
        resp,
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age}; SameSite=Lax{secure}"),
    );
}

pub(crate) fn locked(until: Millis, now: Millis) -> (ApiError, i64) {
    let secs = (until - now).div_euclid(1000).max(1);
    (
        ApiError::new(
            ErrorCode::RequestLocked,
            format!("too many failed sign-ins for this e-mail address; try again in {secs} s"),
        ),
        secs,
    )
}

fn locked_response(request_id: &str, until: Millis, now: Millis) -> Response {
    let (err, secs) = locked(until, now);
    let mut resp = failure(request_id, Surface::OpenApi, &err);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

pub(crate) async fn json_body(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        && !ct
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/json")
    {
        return Err(ApiError::new(
            ErrorCode::InvalidContentType,
            "Content-Type must be application/json",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::new(ErrorCode::EntityTooLarge, "request body too large"))?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("body must be a JSON object"));
    }
    Ok(value)
}

pub(crate) fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method {method} is not allowed, use POST"),
    )
}

/// A hash to verify against when no member matches, so an unknown address costs the same
/// time as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        Argon2::default()
            .hash_password(b"klaxon-no-such-member")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

async fn login(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let ip = crate::openapi::client_ip(&extensions);
    match login_inner(&state, &method, &headers, &ip, body).await {
        Ok(resp) => resp(&request_id),
        Err(LoginFailure::Locked { until, now }) => locked_response(&request_id, until, now),
        Err(LoginFailure::Throttled { limit, reset_at }) => {
            throttled(&request_id, Surface::OpenApi, limit, reset_at)
        }
        Err(LoginFailure::Error(e)) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(%request_id, error = %e.message, "sign-in failed");
            }
            failure(&request_id, Surface::OpenApi, &e)
        }
    }
}

pub(crate) enum LoginFailure {
    Error(ApiError),
    Locked { until: Millis, now: Millis },
    Throttled { limit: usize, reset_at: Millis },
}

impl From<ApiError> for LoginFailure {
    fn from(e: ApiError) -> Self {
        LoginFailure::Error(e)
    }
}

type Respond = Box<dyn FnOnce(&str) -> Response + Send>;

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("sign-in: {e}"))
}

async fn login_inner(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    ip: &str,
    body: Body,
) -> Result<Respond, LoginFailure> {
    if *method != Method::POST {
        return Err(method_not_allowed(method).into());
    }
    let args = json_body(headers, body).await?;
    let email = args
        .get("email")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("")
        .to_string();
    let password = args
        .get("password")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let account_id = args.get("account_id").and_then(Value::as_i64).unwrap_or(0);
    let created = password_sign_in(state, &email, &password, account_id, ip).await?;
    let ttl_ms = session_ttl_ms(state);
    let state = state.clone();
    Ok(Box::new(move |request_id: &str| {
        let s = &created.session;
        let mut resp = success(
            request_id,
            Some(json!({
                "account_id": s.account_id,
                "member_id": s.member_id,
                "csrf_token": s.csrf_token,
                "expires_at": wire::secs(s.expires_at),
            })),
        );
        session_cookies(
            &state,
            &mut resp,
            &created.token,
            &s.csrf_token,
            ttl_ms / 1000,
        );
        resp
    }))
}

fn session_ttl_ms(state: &AppState) -> i64 {
    state.config.auth.session_ttl_minutes.max(1) * 60_000
}

/// Checks an e-mail address and password (throttle, lockout, argon2) and opens a session.
/// The JSON sign-in and the console's sign-in form both come through here. Sign-ins and
/// wrong passwords for a known member are audited (RSP-600); an unknown address has no
/// account to record it in.
pub(crate) async fn password_sign_in(
    state: &AppState,
    email: &str,
    password: &str,
    account_id: i64,
    ip: &str,
) -> Result<NewSession, LoginFailure> {
    if email.is_empty() {
        return Err(ApiError::invalid("email: required").into());
    }
    if email.chars().count() > 254 {
        return Err(ApiError::invalid("email: at most 254 characters").into());
    }
    if password.is_empty() {
        return Err(ApiError::invalid("password: required").into());
    }
    if password.len() > 1024 {
        return Err(ApiError::invalid("password: at most 1024 bytes").into());
    }
    let now = state.clock.now();
    // Node-wide: at most `auth.attempts_per_second` password checks a second.
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
    // A locked address is refused before any password is checked.
    if let Some(until) = state
        .store
        .login_locked_until(email, now)
        .await
        .map_err(internal)?
    {
        return Err(LoginFailure::Locked { until, now });
    }
    let candidates: Vec<_> = state
        .store
        .login_candidates(email)
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|c| account_id == 0 || c.account_id == account_id)
        .collect();
    let hashes: Vec<String> = candidates.iter().map(|c| c.password_hash.clone()).collect();
    let pw = password.to_string();
    let matched: Vec<bool> = tokio::task::spawn_blocking(move || {
        if hashes.is_empty() {
            let _ = verify(&pw, dummy_hash());
            Vec::new()
        } else {
            hashes.iter().map(|h| verify(&pw, h)).collect()
        }
    })
    .await
    .map_err(internal)?;
    let winners: Vec<_> = candidates
        .iter()
        .zip(matched)
        .filter(|(_, ok)| *ok)
        .map(|(c, _)| c)
        .collect();
    let member = match winners.as_slice() {
        [] => {
            let locked_now = state
                .store
                .record_login_failure(email, now, lockout_policy(state))
                .await
                .map_err(internal)?;
            tracing::info!("sign-in refused: wrong e-mail or password");
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
            if let Some(until) = locked_now {
                return Err(LoginFailure::Locked { until, now });
            }
            return Err(
                ApiError::new(ErrorCode::Unauthorized, "email or password is incorrect").into(),
            );
        }
        [one] => (*one).clone(),
        several => {
            let ids: Vec<String> = several.iter().map(|c| c.account_id.to_string()).collect();
            return Err(ApiError::invalid(format!(
                "account_id: this e-mail address signs in to several accounts ({}); choose one",
                ids.join(", ")
            ))
            .into());
        }
    };
    state
        .store
        .clear_login_failures(email)
        .await
        .map_err(internal)?;
    // RSP-578: while the account's SSO is on, only the owner signs in with a password (the
    // break-glass access); everyone else goes through the identity provider. Checked after
    // the password, so the answer tells nothing to someone who does not know it.
    let is_owner = state
        .store
        .member(member.account_id, member.member_id)
        .await
        .map_err(internal)?
        .is_some_and(|m| m.is_owner);
    if let Some(domain) =
        crate::signin_code::sso_domain_required(state, member.account_id, is_owner).await?
    {
        crate::audit::record_signin(
            state,
            member.account_id,
            member.member_id,
            "login",
            ip,
            ErrorCode::AccessDenied.as_str(),
        )
        .await;
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!(
                "this account signs in with single sign-on: choose SSO and enter the login \
                 domain {domain}"
            ),
        )
        .into());
    }
    let created = state
        .store
        .create_session(
            member.account_id,
            member.member_id,
            session_ttl_ms(state),
            now,
        )
        .await
        .map_err(internal)?;
    tracing::info!(
        account_id = member.account_id,
        member_id = member.member_id,
        "signed in"
    );
    crate::audit::record_signin(
        state,
        member.account_id,
        member.member_id,
        "login",
        ip,
        "ok",
    )
    .await;
    Ok(created)
}

async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let request_id = new_request_id();
    let result: Result<Option<String>, ApiError> = async {
        if method != Method::POST {
            return Err(method_not_allowed(&method));
        }
        let Some(session) = session_of(&state, &method, &headers).await? else {
            return Err(ApiError::new(ErrorCode::Unauthorized, "not signed in"));
        };
        let ip = crate::openapi::client_ip(&extensions);
        crate::audit::record_signin(
            &state,
            session.account_id,
            session.member_id,
            "logout",
            &ip,
            "ok",
        )
        .await;
        let mut saml_session = None;
        if let Some(token) = cookie(&headers, SESSION_COOKIE) {
            saml_session = state.store.saml_session(token).await.map_err(internal)?;
            state.store.delete_session(token).await.map_err(internal)?;
        }
        // RSP-574: a session opened by a SAML sign-in also ends at the identity provider. An
        // API client cannot be redirected, so it gets the IdP's logout address (with the
        // signed LogoutRequest) to send its user to, as the console's sign-out does.
        #[cfg(feature = "saml")]
        let idp_logout_url = match saml_session {
            Some(saml) => crate::sso_saml::logout_redirect(&state, &saml, &ip).await,
            None => None,
        };
        #[cfg(not(feature = "saml"))]
        let idp_logout_url: Option<String> = {
            let _ = (saml_session, &ip);
            None
        };
        Ok(idp_logout_url)
    }
    .await;
    match result {
        Ok(idp_logout_url) => {
            let data = idp_logout_url.map(|url| serde_json::json!({ "idp_logout_url": url }));
            let mut resp = success(&request_id, data);
            session_cookies(&state, &mut resp, "", "", 0);
            resp
        }
        Err(e) => failure(&request_id, Surface::OpenApi, &e),
    }
}

/// The signed-in member of the cookie (no CSRF token needed to read it).
async fn session_info(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let request_id = new_request_id();
    let result: Result<Value, ApiError> = async {
        if method != Method::POST && method != Method::GET {
            return Err(method_not_allowed(&method));
        }
        // Reading the session changes nothing: checked as a GET whatever the method.
        let session = session_of(&state, &Method::GET, &headers)
            .await?
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "not signed in"))?;
        Ok(json!({
            "account_id": session.account_id,
            "member_id": session.member_id,
            "csrf_token": session.csrf_token,
            "expires_at": wire::secs(session.expires_at),
        }))
    }
    .await;
    match result {
        Ok(v) => success(&request_id, Some(v)),
        Err(e) => failure(&request_id, Surface::OpenApi, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; klaxon_session=abc ; klaxon_csrf=def"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, CSRF_COOKIE), Some("def"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let phc = Argon2::default()
            .hash_password(b"right")
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(verify("right", &phc));
        assert!(!verify("wrong", &phc));
        assert!(!verify("right", "not a hash"));
    }
}
