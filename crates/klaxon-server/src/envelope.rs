//! The response envelope (ING-008, openapi-compat.md 1.4) and error rendering from the one
//! error table (`klaxon_core::error`).

use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use serde_json::{Map, Value, json};

use crate::state::new_request_id;

pub const FLASHCAT_REQUEST_ID: HeaderName = HeaderName::from_static("flashcat-request-id");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `200 {"request_id", "data"?}`; `data` is left out when `None`.
pub fn success(request_id: &str, data: Option<Value>) -> Response {
    let mut body = Map::new();
    body.insert("request_id".into(), Value::String(request_id.to_string()));
    if let Some(d) = data {
        body.insert("data".into(), d);
    }
    with_request_id(
        StatusCode::OK,
        request_id,
        Json(Value::Object(body)).into_response(),
    )
}

/// `{"request_id", "error": {code, message, reason?}}` with the table's status for `surface`.
pub fn failure(request_id: &str, surface: Surface, err: &ApiError) -> Response {
    let mut error = Map::new();
    error.insert("code".into(), Value::String(err.code.as_str().to_string()));
    error.insert("message".into(), Value::String(err.message.clone()));
    if let Some(reason) = &err.reason {
        error.insert("reason".into(), Value::String(reason.clone()));
    }
    let status = StatusCode::from_u16(err.code.http_status(surface))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({ "request_id": request_id, "error": Value::Object(error) });
    with_request_id(status, request_id, Json(body).into_response())
}

/// A 429 with `Retry-After` and the `X-RateLimit-*` hints (ING-007, openapi-compat.md 1.8).
pub fn throttled(request_id: &str, surface: Surface, limit: usize, reset_at_ms: i64) -> Response {
    let err = ApiError::new(
        ErrorCode::RequestTooFrequently,
        "request rate limit exceeded, retry later",
    );
    let mut resp = failure(request_id, surface, &err);
    let h = resp.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    insert_num(h, "x-ratelimit-limit", limit as i64);
    insert_num(h, "x-ratelimit-remaining", 0);
    insert_num(h, "x-ratelimit-reset", reset_at_ms.div_euclid(1000) + 1);
    resp
}

pub fn insert_num(h: &mut HeaderMap, name: &'static str, value: i64) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn with_request_id(status: StatusCode, request_id: &str, mut resp: Response) -> Response {
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(FLASHCAT_REQUEST_ID, v.clone());
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    resp
}

/// Unknown method + path → 404 `RouteNotFound` (ING-003, openapi-compat.md 1.1).
pub async fn route_not_found() -> Response {
    let rid = new_request_id();
    failure(
        &rid,
        Surface::OpenApi,
        &ApiError::new(ErrorCode::RouteNotFound, "no such route"),
    )
}
