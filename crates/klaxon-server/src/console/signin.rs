//! `/` and the sign-in form. The form posts e-mail and password as an ordinary HTML form (it
//! works before any script has loaded); the check itself is the one `POST /auth/login` runs
//! ([`crate::signin::password_sign_in`]): throttling, lockout, argon2, session creation.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::ErrorCode;
use minijinja::context;

use super::{local_path, redirect, view};
use crate::signin::{LoginFailure, SESSION_COOKIE, cookie, session_cookies};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_page).post(signin_submit))
        .route("/signin/code/request", post(code_request_submit))
        .route("/signin/code", post(code_submit))
        .route("/signout", post(signout))
}

const START: &str = "/incidents";

async fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    matches!(
        crate::signin::session_of(state, &Method::GET, headers).await,
        Ok(Some(_))
    )
}

/// `/`: the incident list for a signed-in person, else the sign-in form (which also tells an
/// operator that the node runs and where to push).
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers).await {
        return redirect(&headers, START);
    }
    form(&state, StatusCode::OK, "", None, START).await
}

fn next_of(query: Option<&str>) -> String {
    query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "next").map(|(_, v)| v))
        .and_then(|n| local_path(&n).map(str::to_string))
        .unwrap_or_else(|| START.to_string())
}

async fn signin_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let next = next_of(query.as_deref());
    if signed_in(&state, &headers).await {
        return redirect(&headers, &next);
    }
    form(&state, StatusCode::OK, "", None, &next).await
}

/// Which field an error belongs next to.
#[derive(Debug, PartialEq)]
enum Field {
    Email,
    Password,
}

/// The sign-in page; `error` is shown beside its field, and the typed e-mail is kept.
async fn form(
    state: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<(Field, String)>,
    next: &str,
) -> Response {
    let depth = state
        .store
        .inbox_depth()
        .await
        .map_or_else(|_| "unknown".to_string(), |d| d.to_string());
    let (email_error, password_error) = match error {
        Some((Field::Email, m)) => (Some(m), None),
        Some((Field::Password, m)) => (None, Some(m)),
        None => (None, None),
    };
    let ctx = context! {
        title => "Sign in",
        email => email,
        email_error => email_error,
        password_error => password_error,
        next => next,
        inbox_depth => depth,
    };
    (status, view::render("signin.html", ctx)).into_response()
}

/// The sign-in page with an SSO error beside the login-domain field (the SSO sign-in of
/// `crate::sso` comes back here when it cannot finish).
pub(crate) async fn sso_form(
    state: &AppState,
    status: StatusCode,
    login_domain: &str,
    error: &str,
    next: &str,
) -> Response {
    let depth = state
        .store
        .inbox_depth()
        .await
        .map_or_else(|_| "unknown".to_string(), |d| d.to_string());
    let ctx = context! {
        title => "Sign in",
        email => "",
        next => next,
        login_domain => login_domain,
        sso_error => error,
        inbox_depth => depth,
    };
    (status, view::render("signin.html", ctx)).into_response()
}

/// The sign-in page after a single logout (RSP-574), with `notice` at its top. Only SAML
/// has single logout, so builds without the `saml` feature leave it out.
#[cfg(feature = "saml")]
pub(crate) async fn signed_out_form(state: &AppState, notice: &str) -> Response {
    let depth = state
        .store
        .inbox_depth()
        .await
        .map_or_else(|_| "unknown".to_string(), |d| d.to_string());
    let ctx = context! {
        title => "Sign in",
        email => "",
        next => START,
        notice => notice,
        inbox_depth => depth,
    };
    let mut resp = (StatusCode::OK, view::render("signin.html", ctx)).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// The LDAP sign-in form of a login domain (RSP-577), with `error` beside the password.
pub(crate) async fn ldap_form(
    state: &AppState,
    status: StatusCode,
    login_domain: &str,
    username: &str,
    error: &str,
    next: &str,
) -> Response {
    let depth = state
        .store
        .inbox_depth()
        .await
        .map_or_else(|_| "unknown".to_string(), |d| d.to_string());
    let ctx = context! {
        title => "Sign in",
        email => "",
        next => next,
        ldap_domain => login_domain,
        username => username,
        ldap_error => error,
        inbox_depth => depth,
    };
    (status, view::render("signin.html", ctx)).into_response()
}

/// The e-mail-code steps of the sign-in page (RSP-578): `email` set and `sent` true shows the
/// form for the code; `error` goes beside the field of the step shown.
async fn code_form(
    state: &AppState,
    status: StatusCode,
    email: &str,
    sent: bool,
    error: &str,
    next: &str,
) -> Response {
    let depth = state
        .store
        .inbox_depth()
        .await
        .map_or_else(|_| "unknown".to_string(), |d| d.to_string());
    let ctx = context! {
        title => "Sign in",
        email => "",
        next => next,
        code_email => email,
        code_sent => sent,
        code_error => error,
        code_minutes => klaxon_core::login_code::CODE_TTL_MS / 60_000,
        inbox_depth => depth,
    };
    (status, view::render("signin.html", ctx)).into_response()
}

fn failure_status(f: &LoginFailure) -> (StatusCode, String) {
    match f {
        LoginFailure::Error(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console sign-in failed");
            }
            (
                StatusCode::from_u16(e.code.http_status(klaxon_core::error::Surface::OpenApi))
                    .unwrap_or(StatusCode::BAD_REQUEST),
                e.message.clone(),
            )
        }
        LoginFailure::Locked { until, now } => (
            StatusCode::LOCKED,
            crate::signin::locked(*until, *now).0.message,
        ),
        LoginFailure::Throttled { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many sign-in attempts on this server right now; try again in a second".to_string(),
        ),
    }
}

/// "E-mail me a code": sends the code (the same page whether or not the address is known)
/// and shows the form for it.
async fn code_request_submit(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let ip = crate::openapi::client_ip(&extensions);
    let pairs = super::form_pairs(&body);
    let get = |name: &str| super::form_value(&pairs, name);
    let email = get("email").trim().to_string();
    let next = local_path(&get("next")).unwrap_or(START).to_string();
    match crate::signin_code::request_code(&state, &email, &ip).await {
        Ok(()) => code_form(&state, StatusCode::OK, &email, true, "", &next).await,
        Err(f) => {
            let (status, message) = failure_status(&f);
            code_form(&state, status, &email, false, &message, &next).await
        }
    }
}

/// The code from the e-mail: signs in and goes on to `next`.
async fn code_submit(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let ip = crate::openapi::client_ip(&extensions);
    let pairs = super::form_pairs(&body);
    let get = |name: &str| super::form_value(&pairs, name);
    let email = get("email").trim().to_string();
    let code = get("code");
    let next = local_path(&get("next")).unwrap_or(START).to_string();
    match crate::signin_code::code_sign_in(&state, &email, &code, 0, &ip).await {
        Ok(created) => {
            let ttl_secs = state.config.auth.session_ttl_minutes.max(1) * 60;
            let mut resp = redirect(&HeaderMap::new(), &next);
            session_cookies(
                &state,
                &mut resp,
                &created.token,
                &created.session.csrf_token,
                ttl_secs,
            );
            resp
        }
        Err(f) => {
            let (status, message) = failure_status(&f);
            code_form(&state, status, &email, true, &message, &next).await
        }
    }
}

fn field_of(message: &str) -> Field {
    if message.starts_with("email") && !message.starts_with("email or password") {
        Field::Email
    } else {
        Field::Password
    }
}

async fn signin_submit(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let ip = crate::openapi::client_ip(&extensions);
    let pairs = super::form_pairs(&body);
    let get = |name: &str| super::form_value(&pairs, name);
    let email = get("email").trim().to_string();
    let password = get("password");
    let next = local_path(&get("next")).unwrap_or(START).to_string();
    match crate::signin::password_sign_in(&state, &email, &password, 0, &ip).await {
        Ok(created) => {
            let ttl_secs = state.config.auth.session_ttl_minutes.max(1) * 60;
            let mut resp = redirect(&HeaderMap::new(), &next);
            session_cookies(
                &state,
                &mut resp,
                &created.token,
                &created.session.csrf_token,
                ttl_secs,
            );
            resp
        }
        Err(LoginFailure::Error(e)) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console sign-in failed");
            }
            let status =
                StatusCode::from_u16(e.code.http_status(klaxon_core::error::Surface::OpenApi))
                    .unwrap_or(StatusCode::BAD_REQUEST);
            let field = field_of(&e.message);
            form(&state, status, &email, Some((field, e.message)), &next).await
        }
        Err(LoginFailure::Locked { until, now }) => {
            let (e, _) = crate::signin::locked(until, now);
            form(
                &state,
                StatusCode::LOCKED,
                &email,
                Some((Field::Password, e.message)),
                &next,
            )
            .await
        }
        Err(LoginFailure::Throttled { .. }) => {
            form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &email,
                Some((
                    Field::Password,
                    "too many sign-in attempts on this server right now; try again in a second"
                        .to_string(),
                )),
                &next,
            )
            .await
        }
    }
}

/// Ends the session (CSRF-checked like every state change) and clears both cookies.
async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let viewer = match super::viewer(&state, &Method::POST, &headers, "/").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let ip = crate::openapi::client_ip(&extensions);
    let saml_logout = match cookie(&headers, SESSION_COOKIE) {
        Some(token) => match state.store.saml_session(token).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "console sign-out failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "cannot end the session")
                    .into_response();
            }
        },
        None => None,
    };
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.delete_session(token).await
    {
        tracing::error!(error = %e, "console sign-out failed");
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot end the session").into_response();
    }
    tracing::info!(member_id = viewer.caller.member_id, "signed out");
    // RSP-574: a session opened by a SAML sign-in also ends at the identity provider when
    // its metadata has a single logout service; Klaxon's own session is already gone.
    #[cfg(feature = "saml")]
    let target = match saml_logout {
        Some(saml) => crate::sso_saml::logout_redirect(&state, &saml, &ip).await,
        None => None,
    };
    #[cfg(not(feature = "saml"))]
    let target: Option<String> = {
        let _ = (saml_logout, ip);
        None
    };
    let mut resp = redirect(&headers, target.as_deref().unwrap_or("/signin"));
    session_cookies(&state, &mut resp, "", "", 0);
    // Nothing of a signed-in page may be kept for the next person at this browser.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_go_next_to_their_field() {
        assert_eq!(field_of("email: required"), Field::Email);
        assert_eq!(field_of("email or password is incorrect"), Field::Password);
        assert_eq!(field_of("password: required"), Field::Password);
    }

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            next_of(Some("next=%2Fincident%2Fdetail%2Fab")),
            "/incident/detail/ab"
        );
        assert_eq!(next_of(Some("next=%2F%2Fevil.example")), START);
        assert_eq!(next_of(Some("next=https%3A%2F%2Fevil.example")), START);
        assert_eq!(next_of(None), START);
    }
}
