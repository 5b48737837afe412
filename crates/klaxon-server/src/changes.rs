//! Change pushes (ingest.md §2.20): `POST /event/push/change/{type}?integration_key=…` for the
//! standard change protocol (ING-241) and Jira issue events (§3.10). The receiving rules are
//! those of the alert push (ING-001…009); a 200 means the change event is committed. Changes
//! never enter the alert inbox (ING-243).

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use axum::routing::any;
use klaxon_core::change::parse_standard_change;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::ratelimit::Admission;
use serde_json::{Value, json};

use crate::envelope::{failure, success, throttled};
use crate::push::{query_key, query_params, read_json, resolve_key};
use crate::state::{AppState, new_request_id};

/// Change integration types: (type id on the wire and in the push path, stored type). The
/// standard change type shares the id `standard` with the standard alert type (ingest.md
/// §3.11), so it is stored under a name of its own.
pub const CHANGE_TYPES: [(&str, &str); 2] = [("standard", "change_standard"), ("jira", "jira")];

/// The wire type and category of a stored integration type.
pub fn wire_type(stored: &str) -> (&str, &'static str) {
    match CHANGE_TYPES.iter().find(|(_, s)| *s == stored) {
        Some((wire, _)) => (wire, "change"),
        None => (stored, "alert"),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/event/push/change/{source}", any(push_change))
}

enum Accepted {
    Committed(Option<Value>),
    Throttled { limit: usize, reset_at: i64 },
}

async fn push_change(
    State(state): State<AppState>,
    method: Method,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let result = accept(&state, &method, &source, query.as_deref(), &headers, body).await;
    let code = match &result {
        Ok(_) => "OK",
        Err(e) => e.code.as_str(),
    };
    metrics::counter!("klaxon_change_push_requests_total", "code" => code).increment(1);
    metrics::histogram!("klaxon_push_latency_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(Accepted::Committed(data)) => success(&request_id, data),
        Ok(Accepted::Throttled { limit, reset_at }) => {
            throttled(&request_id, Surface::Push, limit, reset_at)
        }
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(%request_id, error = %e.message, "change push failed");
            }
            failure(&request_id, Surface::Push, &e)
        }
    }
}

async fn accept(
    state: &AppState,
    method: &Method,
    source: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, ApiError> {
    let Some((_, stored)) = CHANGE_TYPES.iter().find(|(wire, _)| *wire == source) else {
        return Err(ApiError::new(
            ErrorCode::RouteNotFound,
            format!("no change push endpoint for type {source}"),
        ));
    };
    if method != Method::POST {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed, use POST"),
        ));
    }
    // ING-004 applies to the standard protocol only.
    if source == "standard" && !is_json(headers) {
        return Err(ApiError::new(
            ErrorCode::InvalidContentType,
            "Content-Type must be application/json",
        ));
    }
    let params = query_params(query)?;
    let integration = resolve_key(state, query_key(&params), stored).await?;
    let (_, payload) = read_json(body).await?;
    let now = state.clock.now();
    if let Admission::Throttled { limit, reset_at } =
        state
            .limiter
            .admit_push(integration.account_id, integration.integration_id, now)
    {
        return Ok(Accepted::Throttled { limit, reset_at });
    }
    let event = if source == "standard" {
        Some(parse_standard_change(
            &payload,
            integration.integration_id,
            now,
        )?)
    } else {
        klaxon_sources::jira::parse(&payload, now)?
    };
    let Some(event) = event else {
        // §3.10: other webhook events are accepted and ignored.
        return Ok(Accepted::Committed(None));
    };
    state
        .store
        .record_change(
            integration.account_id,
            integration.integration_id,
            &event,
            now,
        )
        .await
        .map_err(|e| ApiError::internal(format!("cannot store the change event: {e}")))?;
    metrics::counter!("klaxon_change_events_accepted_total").increment(1);
    let data = (source == "standard").then(|| json!({ "change_key": event.change_key }));
    Ok(Accepted::Committed(data))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}
