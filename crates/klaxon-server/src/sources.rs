//! The receivers that do not answer with the push envelope of ING-008:
//!
//! - PagerDuty Events API v1/v2 (ingest.md §3.6) on `/event/push/alert/pagerduty` and its
//!   two aliases, answering in PagerDuty's own shapes;
//! - the Alertmanager-compatible `POST /api/v2/alerts`, so Prometheus can send alerts straight
//!   to Klaxon (`alerting.alertmanagers` with the integration key as bearer token). It
//!   answers like Alertmanager: 200 with an empty body, 400 with the message as a JSON string.
//!
//! Both reuse the push path's steps (key resolution, body limits, rate limits, one group
//! commit per request), so what a 2xx means does not change: every event is committed.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::ratelimit::Admission;
use klaxon_sources::Context;
use klaxon_sources::pagerduty::{self, Version};
use serde_json::{Value, json};

use crate::envelope::{FLASHCAT_REQUEST_ID, X_REQUEST_ID};
use crate::push::{
    check_integration, commit, lookup_key, query_key, query_params, read_json, resolve_key,
};
use crate::state::{AppState, new_request_id, random_hex};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/event/push/alert/pagerduty/v2/enqueue",
            any(pagerduty_route),
        )
        .route(
            "/event/push/alert/pagerduty/generic/2010-04-15/create_event.json",
            any(pagerduty_route),
        )
        .route("/api/v2/alerts", any(alertmanager_api))
}

async fn pagerduty_route(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    pagerduty(state, method, query, body).await
}

/// How a PagerDuty request ended.
enum PdResult {
    Accepted(Version, String),
    Throttled,
}

/// `POST /event/push/alert/pagerduty` (and aliases), ingest.md §3.6.
pub(crate) async fn pagerduty(
    state: AppState,
    method: Method,
    query: Option<String>,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let result = pagerduty_accept(&state, &request_id, &method, query.as_deref(), body).await;
    let code = match &result {
        Ok(PdResult::Accepted(..)) => "OK",
        Ok(PdResult::Throttled) => "RequestTooFrequently",
        Err(e) => e.code.as_str(),
    };
    metrics::counter!("klaxon_push_requests_total", "code" => code).increment(1);
    metrics::histogram!("klaxon_push_latency_seconds").record(started.elapsed().as_secs_f64());
    let (status, body) = match result {
        Ok(PdResult::Accepted(Version::V2, key)) => (
            StatusCode::ACCEPTED,
            json!({"status": "success", "message": "Event processed", "dedup_key": key}),
        ),
        Ok(PdResult::Accepted(Version::V1, key)) => (
            StatusCode::OK,
            json!({"status": "success", "message": "Event processed", "incident_key": key}),
        ),
        Ok(PdResult::Throttled) => (
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly. Please retry later."
            }),
        ),
        Err(e) if e.code == ErrorCode::InternalError => {
            tracing::error!(%request_id, error = %e.message, "pagerduty push failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"status": "error", "message": "Internal error"}),
            )
        }
        // §3.6: invalid body, missing/unknown/disabled key and type mismatch are all 400.
        Err(e) => (
            StatusCode::BAD_REQUEST,
            json!({
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [e.message],
            }),
        ),
    };
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    with_request_id(resp, &request_id)
}

async fn pagerduty_accept(
    state: &AppState,
    request_id: &str,
    method: &Method,
    query: Option<&str>,
    body: Body,
) -> Result<PdResult, ApiError> {
    if method != Method::POST {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed, use POST"),
        ));
    }
    let params = query_params(query)?;
    // The key may travel in the body, so the body is read first here (ING-005: the query's
    // key wins when both are given).
    let (_, payload) = read_json(body).await?;
    let version = pagerduty::detect(&payload)?;
    let key = match query_key(&params) {
        "" => pagerduty::body_key(&payload, version).unwrap_or(""),
        k => k,
    };
    let integration = resolve_key(state, key, "pagerduty").await?;
    let now = state.clock.now();
    if let Admission::Throttled { .. } =
        state
            .limiter
            .admit_push(integration.account_id, integration.integration_id, now)
    {
        return Ok(PdResult::Throttled);
    }
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
    let outcome = pagerduty::parse(&payload, version, &ctx, &random_hex(16))?;
    commit(
        state,
        request_id,
        &integration,
        outcome.event.into_iter().collect(),
        now,
    )
    .await?;
    Ok(PdResult::Accepted(outcome.version, outcome.key))
}

/// `POST /api/v2/alerts`: Prometheus's postable alerts, authenticated by a `prometheus`
/// integration's key as bearer token (or `?integration_key=`).
async fn alertmanager_api(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let result = alertmanager_accept(&state, &request_id, &method, query, &headers, body).await;
    let code = match &result {
        Ok(_) => "OK",
        Err(e) => e.code.as_str(),
    };
    metrics::counter!("klaxon_push_requests_total", "code" => code).increment(1);
    metrics::histogram!("klaxon_push_latency_seconds").record(started.elapsed().as_secs_f64());
    let resp = match result {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!("request rate limit exceeded, retry later")),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(e) => {
            let status = match e.code {
                ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
                ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
                ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::InternalError => {
                    tracing::error!(%request_id, error = %e.message, "/api/v2/alerts failed");
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                _ => StatusCode::BAD_REQUEST,
            };
            (status, axum::Json(Value::String(e.message))).into_response()
        }
    };
    with_request_id(resp, &request_id)
}

/// `Ok(true)` committed, `Ok(false)` throttled.
async fn alertmanager_accept(
    state: &AppState,
    request_id: &str,
    method: &Method,
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<bool, ApiError> {
    if method != Method::POST {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed, use POST"),
        ));
    }
    let params = query_params(query.as_deref())?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    let key = if bearer.is_empty() {
        query_key(&params)
    } else {
        bearer
    };
    // Alertmanager's convention for credentials: a key that is missing or does not resolve
    // is 401 (the push paths answer 400 for an unknown key, ING-005). Disabled → 403 and a
    // key of another type → 400, as on the push paths.
    if key.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "an integration key is required (Authorization: Bearer <key>)",
        ));
    }
    let integration = lookup_key(state, key).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "integration key is not a valid one",
        )
    })?;
    crate::saas::check_inbound(state, integration.account_id)?;
    let integration = check_integration(integration, "prometheus")?;
    let (_, payload) = read_json(body).await?;
    let now = state.clock.now();
    if let Admission::Throttled { .. } =
        state
            .limiter
            .admit_push(integration.account_id, integration.integration_id, now)
    {
        return Ok(false);
    }
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
    let events = klaxon_sources::alertmanager::parse_postable(&payload, &ctx)?;
    commit(state, request_id, &integration, events, now).await?;
    Ok(true)
}

fn with_request_id(mut resp: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(FLASHCAT_REQUEST_ID, v.clone());
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    resp
}
