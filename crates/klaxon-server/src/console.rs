//! The web console (docs/console.md): server-rendered HTML pages for people, served by the
//! node itself. Templates are minijinja, embedded in the binary; interactions use the vendored
//! htmx; there is no JavaScript build chain.
//!
//! Every read and every action goes through [`crate::openapi::perform`], the same function the
//! Open API runs, so a page can never apply a rule differently from the API. Pages are
//! authenticated by the console session cookie (docs/sign-in.md); every state-changing request
//! carries the session's CSRF token in `X-Klaxon-CSRF`, which htmx sends from the `hx-headers`
//! attribute of the page's `<body>`.

mod account;
mod action_link;
mod alert_events;
mod assets;
mod calendars;
mod channels;
mod contact;
mod forms;
mod incident_fields;
mod incident_groups;
mod incidents;
mod insights;
mod label_suggestions;
mod list_columns;
/// Form bodies of the console's own forms (also the LDAP sign-in form).
pub(crate) use incidents::{form_pairs, form_value};
mod enrich;
mod mapping;
mod members;
mod multipart;
mod noise;
mod noise_settings;
mod pipeline;
pub(crate) mod register;
mod related_changes;
mod route_edit;
mod route_layout;
mod routing;
mod schedule_edit;
mod schedule_swap;
mod schedule_views;
mod schedules;
mod settings;
pub(crate) mod signin;
mod teams;
mod ticket_sync;
pub(crate) mod view;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_store::Session;
use serde_json::{Map, Value};

use crate::openapi::{Args, Caller};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(assets::routes())
        .merge(account::routes())
        .merge(signin::routes())
        .merge(action_link::routes())
        .merge(incidents::routes())
        .merge(alert_events::routes())
        .merge(related_changes::routes())
        .merge(label_suggestions::routes())
        .merge(incident_groups::routes())
        .merge(channels::routes())
        .merge(schedules::routes())
        .merge(schedule_edit::routes())
        .merge(schedule_swap::routes())
        .merge(calendars::routes())
        .merge(members::routes())
        .merge(routing::routes())
        .merge(noise::routes())
        .merge(noise_settings::routes())
        .merge(enrich::routes())
        .merge(pipeline::routes())
        .merge(mapping::routes())
        .merge(teams::routes())
        .merge(insights::routes())
        .merge(ticket_sync::routes())
        .merge(settings::routes())
        .merge(contact::routes())
}

/// A signed-in person looking at a page.
pub(crate) struct Viewer {
    pub caller: Caller,
    pub session: Session,
}

/// True for requests htmx made (they get fragments and `HX-Redirect`, not whole pages).
fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// A path of this site only (`/…`, not `//host` or `/\host`), for the `next` of a sign-in.
pub(crate) fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    ok.then_some(next)
}

/// Sends the browser to `to`: a 303 for a page load, `HX-Redirect` for an htmx request (a
/// redirect followed inside an htmx request would swap a whole page into a fragment).
pub(crate) fn redirect(headers: &HeaderMap, to: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(to) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if is_htmx(headers) {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        resp.headers_mut().insert("hx-redirect", value);
        resp
    } else {
        let mut resp = StatusCode::SEE_OTHER.into_response();
        resp.headers_mut().insert(header::LOCATION, value);
        resp
    }
}

fn signin_redirect(headers: &HeaderMap, next: &str) -> Response {
    let to = format!(
        "/signin?{}",
        serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
    );
    redirect(headers, &to)
}

/// The viewer of a request, or the response to send instead: the sign-in page when there is
/// no valid session, an error when a state-changing request lacks the CSRF token.
pub(crate) async fn viewer(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    next: &str,
) -> Result<Viewer, Response> {
    match crate::signin::session_of(state, method, headers).await {
        Ok(Some(session)) => {
            // The member's current roles, loaded as for an API call (RSP-611), so every page
            // and action is checked by the same policy as the Open API.
            match crate::openapi::member_caller(state, session.account_id, session.member_id).await
            {
                Ok(caller) => Ok(Viewer { caller, session }),
                Err(e) if e.code == ErrorCode::Unauthorized => Err(signin_redirect(headers, next)),
                Err(e) => Err(error_text(&e)),
            }
        }
        Ok(None) => Err(signin_redirect(headers, next)),
        Err(e) if e.code == ErrorCode::Unauthorized => Err(signin_redirect(headers, next)),
        Err(e) => Err(error_text(&e)),
    }
}

/// A short error answer for an htmx request that could not even start (bad CSRF token, …).
pub(crate) fn error_text(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, Html(view::escape(&e.message))).into_response();
    // Shown in the page's alert region, never in place of the fragment that was asked for.
    resp.headers_mut()
        .insert("hx-retarget", HeaderValue::from_static("#console-error"));
    resp.headers_mut()
        .insert("hx-reswap", HeaderValue::from_static("innerHTML"));
    resp
}

/// Runs an Open API path with a JSON body for the viewer.
pub(crate) async fn call(
    state: &AppState,
    viewer: &Viewer,
    path: &str,
    body: Value,
) -> Result<Option<Value>, ApiError> {
    let map = match body {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    crate::openapi::perform(state, &viewer.caller, path, &Args::new(map)).await
}

/// Like [`call`], for paths that always answer with `data`.
pub(crate) async fn fetch(
    state: &AppState,
    viewer: &Viewer,
    path: &str,
    body: Value,
) -> Result<Value, ApiError> {
    Ok(call(state, viewer, path, body)
        .await?
        .unwrap_or(Value::Null))
}

/// The signed-in member as every page's header draws it (`/member/info`), with
/// `account_page`: whether the nav shows "Account" (SaaS mode, and the member may read the
/// account's notices, grants and consents: the owner and admins).
pub(crate) async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    let mut me = fetch(state, viewer, "/member/info", Value::Object(Map::new())).await?;
    let shown = account::shown(state, viewer);
    if let Value::Object(m) = &mut me {
        m.insert("account_page".to_string(), Value::Bool(shown));
    }
    Ok(me)
}

/// The answer to a failed page load: the error page, logged when it is ours.
pub(crate) fn page_error(e: &ApiError) -> Response {
    if e.code == ErrorCode::InternalError {
        tracing::error!(error = %e.message, "console page failed");
    }
    // The Open API answers a missing resource with 400 (Flashduty's choice); a page is 404.
    let status = if e.code == ErrorCode::ResourceNotFound {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    };
    let ctx = minijinja::context! { title => "Error", message => e.message.clone() };
    (status, view::render("error.html", ctx)).into_response()
}
