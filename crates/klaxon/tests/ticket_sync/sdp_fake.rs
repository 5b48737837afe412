//! A fake ServiceDesk Plus (v3 API) with its Zoho accounts token endpoint, on this machine.
//! It checks each call as the real API documents it — the `Accept` media type, the
//! `authtoken` header (on-premises) or a current `Zoho-oauthtoken` (cloud), a form body whose
//! only field is `input_data` holding `{"request": …}` or `{"request_note": …}`, known
//! templates, priorities, statuses, technicians and groups — and answers with SDP's
//! `response_status` envelope. Every call is recorded.

// A refusal is the fake's whole answer; its size does not matter in a test server.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use serde_json::{Value, json};

pub const ACCEPT: &str = "application/vnd.manageengine.sdp.v3+json";
pub const API_KEY: &str = "sdp-key-1";
pub const CLIENT_ID: &str = "1000.CLIENT";
pub const CLIENT_SECRET: &str = "zoho-secret";
pub const CODE: &str = "1000.onetime.code";

/// One recorded API call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// The parsed `input_data`.
    pub input: Value,
    /// `authtoken` or the `Authorization` header.
    pub auth: String,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// `grant_type` of each token request, in order.
    grants: Vec<String>,
    /// The one-time code, until used.
    code: Option<String>,
    access: String,
    refresh: String,
    issued: i64,
    requests: BTreeMap<String, Value>,
    next_id: i64,
}

#[derive(Clone)]
pub struct FakeSdp {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
}

fn sdp_error(status: StatusCode, field: &str, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"response_status": {"status_code": 4000, "status": "failed",
            "messages": [{"status_code": 4001, "field": field, "type": "failed",
                          "message": message}]}}),
        ),
    )
        .into_response()
}

const TEMPLATES: &[&str] = &["Default Request", "Incident Template"];
const PRIORITIES: &[&str] = &["Low", "Medium", "High", "Urgent"];
const STATUSES: &[&str] = &["Open", "In Progress", "On Hold", "Resolved", "Closed"];
const TECHNICIANS: &[&str] = &["Ann Tech", "bob@example.com"];
const GROUPS: &[&str] = &["Database Team", "Network"];

impl FakeSdp {
    pub async fn start() -> FakeSdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let fake = FakeSdp {
            inner: Arc::new(Mutex::new(Inner {
                code: Some(CODE.to_string()),
                next_id: 1000,
                ..Inner::default()
            })),
            url: format!("http://{addr}"),
        };
        let app = Router::new()
            .route("/oauth/v2/token", post(token))
            .route("/api/v3/requests", post(create))
            .route("/api/v3/requests/{id}", put(update))
            .route("/api/v3/requests/{id}/notes", post(note))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.inner.lock().unwrap().calls)
    }

    pub fn grants(&self) -> Vec<String> {
        self.inner.lock().unwrap().grants.clone()
    }

    /// The access token the fake accepts now.
    pub fn access(&self) -> String {
        self.inner.lock().unwrap().access.clone()
    }

    /// Revokes the current access token early (a 401 until refreshed).
    pub fn revoke_access(&self) {
        self.inner.lock().unwrap().access = "revoked".into();
    }

    pub fn request(&self, id: &str) -> Value {
        self.inner
            .lock()
            .unwrap()
            .requests
            .get(id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Checks the documented headers and form; the parsed `input_data` or the refusal.
    fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        root: &str,
    ) -> Result<(Value, String), Response> {
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        if h("accept") != ACCEPT {
            return Err(sdp_error(
                StatusCode::BAD_REQUEST,
                "Accept",
                "unsupported media type",
            ));
        }
        let auth = if headers.contains_key("authtoken") {
            let key = h("authtoken");
            if key != API_KEY {
                return Err(sdp_error(
                    StatusCode::UNAUTHORIZED,
                    "authtoken",
                    "invalid key",
                ));
            }
            key
        } else {
            let a = h("authorization");
            let current = format!("Zoho-oauthtoken {}", self.access());
            if self.access().is_empty() || a != current {
                return Err(sdp_error(
                    StatusCode::UNAUTHORIZED,
                    "Authorization",
                    "invalid token",
                ));
            }
            a
        };
        if !h("content-type").starts_with("application/x-www-form-urlencoded") {
            return Err(sdp_error(
                StatusCode::BAD_REQUEST,
                "Content-Type",
                "a form is expected",
            ));
        }
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        if form.len() != 1 || form[0].0 != "input_data" {
            return Err(sdp_error(
                StatusCode::BAD_REQUEST,
                "input_data",
                "the only field is input_data",
            ));
        }
        let input: Value = serde_json::from_str(&form[0].1)
            .map_err(|_| sdp_error(StatusCode::BAD_REQUEST, "input_data", "not JSON"))?;
        if !input.get(root).is_some_and(Value::is_object) {
            return Err(sdp_error(StatusCode::BAD_REQUEST, root, "missing"));
        }
        Ok((input, auth))
    }

    fn record(&self, method: &str, path: String, input: Value, auth: String) {
        self.inner.lock().unwrap().calls.push(Call {
            method: method.into(),
            path,
            input,
            auth,
        });
    }
}

/// The named value of `r[key]` must be one of `known`.
fn known(r: &Value, key: &str, attr: &str, known: &[&str]) -> Result<(), Response> {
    match r.get(key) {
        None => Ok(()),
        Some(v) => {
            let name = v.get(attr).and_then(Value::as_str).unwrap_or("");
            if known.contains(&name) {
                Ok(())
            } else {
                Err(sdp_error(
                    StatusCode::BAD_REQUEST,
                    key,
                    &format!("unknown {key} {name:?}"),
                ))
            }
        }
    }
}

fn check_request(r: &Value) -> Result<(), Response> {
    known(r, "template", "name", TEMPLATES)?;
    known(r, "priority", "name", PRIORITIES)?;
    known(r, "status", "name", STATUSES)?;
    known(r, "group", "name", GROUPS)?;
    if let Some(t) = r.get("technician") {
        let attr = if t.get("email_id").is_some() {
            "email_id"
        } else {
            "name"
        };
        known(r, "technician", attr, TECHNICIANS)?;
    }
    if let Some(u) = r.get("udf_fields")
        && !u
            .as_object()
            .is_some_and(|m| m.keys().all(|k| k.starts_with("udf_")))
    {
        return Err(sdp_error(
            StatusCode::BAD_REQUEST,
            "udf_fields",
            "unknown field",
        ));
    }
    Ok(())
}

async fn token(State(f): State<FakeSdp>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut inner = f.inner.lock().unwrap();
    inner.grants.push(get("grant_type"));
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return axum::Json(json!({"error": "invalid_client"})).into_response();
    }
    match get("grant_type").as_str() {
        "authorization_code" => {
            // One-time: a used code is refused, as Zoho does (HTTP 200 with an error).
            if inner.code.as_deref() != Some(get("code").as_str()) {
                return axum::Json(json!({"error": "invalid_code"})).into_response();
            }
            inner.code = None;
            inner.issued += 1;
            inner.access = format!("at-{}", inner.issued);
            inner.refresh = "rt-1".into();
            axum::Json(
                json!({"access_token": inner.access, "refresh_token": inner.refresh,
                "api_domain": "https://www.zohoapis.com", "token_type": "Bearer",
                "expires_in": 3600}),
            )
            .into_response()
        }
        "refresh_token" => {
            if inner.refresh.is_empty() || get("refresh_token") != inner.refresh {
                return axum::Json(json!({"error": "invalid_code"})).into_response();
            }
            inner.issued += 1;
            inner.access = format!("at-{}", inner.issued);
            axum::Json(json!({"access_token": inner.access,
                "api_domain": "https://www.zohoapis.com", "token_type": "Bearer",
                "expires_in": 3600}))
            .into_response()
        }
        _ => axum::Json(json!({"error": "unsupported_grant_type"})).into_response(),
    }
}

async fn create(State(f): State<FakeSdp>, headers: HeaderMap, body: Bytes) -> Response {
    let (input, auth) = match f.check(&headers, &body, "request") {
        Ok(x) => x,
        Err(r) => return r,
    };
    f.record("POST", "/api/v3/requests".into(), input.clone(), auth);
    let r = &input["request"];
    if r.get("subject")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return sdp_error(StatusCode::BAD_REQUEST, "subject", "mandatory");
    }
    if let Err(e) = check_request(r) {
        return e;
    }
    let mut inner = f.inner.lock().unwrap();
    inner.next_id += 1;
    let id = inner.next_id.to_string();
    let display = format!("{}", inner.next_id - 1000);
    let mut stored = r.clone();
    stored["id"] = json!(id);
    stored["display_id"] = json!(display);
    stored["status"] = json!({"name": "Open"});
    inner.requests.insert(id.clone(), stored.clone());
    (
        StatusCode::CREATED,
        axum::Json(json!({"request": stored,
            "response_status": {"status_code": 2000, "status": "success"}})),
    )
        .into_response()
}

async fn update(
    State(f): State<FakeSdp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (input, auth) = match f.check(&headers, &body, "request") {
        Ok(x) => x,
        Err(r) => return r,
    };
    f.record("PUT", format!("/api/v3/requests/{id}"), input.clone(), auth);
    if let Err(e) = check_request(&input["request"]) {
        return e;
    }
    let mut inner = f.inner.lock().unwrap();
    let Some(stored) = inner.requests.get_mut(&id) else {
        return sdp_error(StatusCode::NOT_FOUND, "id", "no such request");
    };
    if let (Value::Object(s), Value::Object(n)) = (stored, &input["request"]) {
        for (k, v) in n {
            s.insert(k.clone(), v.clone());
        }
    }
    let stored = inner.requests.get(&id).cloned().unwrap_or(Value::Null);
    axum::Json(json!({"request": stored,
        "response_status": {"status_code": 2000, "status": "success"}}))
    .into_response()
}

async fn note(
    State(f): State<FakeSdp>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (input, auth) = match f.check(&headers, &body, "request_note") {
        Ok(x) => x,
        Err(r) => return r,
    };
    f.record(
        "POST",
        format!("/api/v3/requests/{id}/notes"),
        input.clone(),
        auth,
    );
    if input["request_note"]["description"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return sdp_error(StatusCode::BAD_REQUEST, "description", "mandatory");
    }
    if !f.inner.lock().unwrap().requests.contains_key(&id) {
        return sdp_error(StatusCode::NOT_FOUND, "id", "no such request");
    }
    (
        StatusCode::CREATED,
        axum::Json(
            json!({"request_note": {"id": "1", "description": input["request_note"]["description"]},
            "response_status": {"status_code": 2000, "status": "success"}}),
        ),
    )
        .into_response()
}
