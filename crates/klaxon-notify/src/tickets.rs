//! Requests to ticket systems (response.md RSP-405…407): Jira's REST API v2 and ServiceNow's
//! Table API, both JSON over HTTP with basic authentication (Jira Cloud: the account e-mail
//! and an API token; Jira Server/Data Center: username and password; ServiceNow: an
//! integration user and its password), and ServiceDesk Plus's v3 API, form-encoded with an
//! `authtoken` header (on-premises) or an OAuth access token (cloud, Zoho accounts).
//!
//! - Every request goes through the outbound address guard (`guard`): the service URL is
//!   tenant input and must not reach Klaxon's own network unless the installation allows it.
//! - Redirects are not followed and no proxy is used, like webhooks.
//! - [`retry_at`] is the retry rule of sync steps: a transport failure, a 429 or a 5xx is
//!   tried again with exponential back-off, up to [`MAX_ATTEMPTS`]; any other answer is final
//!   (a 400 for a missing required field will not fix itself).

use std::time::{Duration, Instant};

use klaxon_core::model::Millis;

use crate::guard;
use crate::retry::{self, Next};

/// Attempts of one sync step before it is logged as failed.
pub const MAX_ATTEMPTS: u32 = 5;
/// First retry after 30 s, doubling, at most 30 minutes apart.
pub const RETRY_BASE_MS: u64 = 30_000;
pub const RETRY_MAX_MS: u64 = 30 * 60_000;
/// Each request's overall timeout: ticket systems are slower than webhook receivers.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// Nothing (an OAuth token request carries its credentials in the form).
    None,
    /// HTTP basic: username and secret.
    Basic(&'a str, &'a str),
    /// One header: name and value (`authtoken: KEY`, `Authorization: Zoho-oauthtoken T`).
    Header(&'a str, &'a str),
}

/// A request body.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    /// `application/x-www-form-urlencoded` fields.
    Form(&'a [(String, String)]),
}

/// One request.
#[derive(Debug, Clone)]
pub struct TicketRequest<'a> {
    /// `GET`, `POST`, `PUT` or `PATCH`.
    pub method: &'a str,
    pub url: &'a str,
    pub auth: Auth<'a>,
    pub body: Body<'a>,
    /// The `Accept` media type; `""` = `application/json`.
    pub accept: &'a str,
}

/// What came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketResponse {
    /// The HTTP status, when a response came.
    pub status: Option<u16>,
    /// At most 4 KB of the body.
    pub body: String,
    /// "" on success; else what failed.
    pub error: String,
    pub latency_ms: i64,
}

impl TicketResponse {
    pub fn success(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// When a failed attempt (the `attempts`-th, 1-based) is tried again; `None` = final.
pub fn retry_at(resp: &TicketResponse, attempts: u32, now: Millis, jitter: f64) -> Option<Millis> {
    let transient = match resp.status {
        None => true,
        Some(s) => s == 429 || s >= 500,
    };
    if !transient {
        return None;
    }
    match retry::after_failure(
        attempts,
        MAX_ATTEMPTS,
        now,
        RETRY_BASE_MS,
        RETRY_MAX_MS,
        jitter,
    ) {
        Next::RetryAt(at) => Some(at),
        Next::GiveUp => None,
    }
}

/// The HTTP client of ticket sync; cheap to clone.
#[derive(Clone)]
pub struct TicketClient {
    client: reqwest::Client,
    allow_private: bool,
}

impl TicketClient {
    /// `allow_private`: whether service URLs may be loopback or private addresses.
    pub fn new(allow_private: bool) -> Result<TicketClient, String> {
        crate::install_crypto_provider();
        let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("klaxon-ticket-sync/", env!("CARGO_PKG_VERSION")));
        if let Some(r) = guard::resolver(allow_private) {
            builder = builder.dns_resolver(r);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(TicketClient {
            client,
            allow_private,
        })
    }

    /// Makes one request. Never fails: every outcome is a [`TicketResponse`].
    pub async fn send(&self, req: &TicketRequest<'_>) -> TicketResponse {
        let started = Instant::now();
        let elapsed = |s: Instant| i64::try_from(s.elapsed().as_millis()).unwrap_or(i64::MAX);
        let refused = |error: String| TicketResponse {
            status: None,
            body: String::new(),
            error,
            latency_ms: 0,
        };
        let url = match reqwest::Url::parse(req.url.trim()) {
            Ok(u) => u,
            Err(e) => return refused(format!("invalid URL: {e}")),
        };
        if let Err(e) = guard::check_url(&url, self.allow_private) {
            return refused(e);
        }
        let method = match req.method {
            "GET" => reqwest::Method::GET,
            "POST" => reqwest::Method::POST,
            "PUT" => reqwest::Method::PUT,
            "PATCH" => reqwest::Method::PATCH,
            other => return refused(format!("unsupported method {other}")),
        };
        let accept = if req.accept.is_empty() {
            "application/json"
        } else {
            req.accept
        };
        let mut builder = self
            .client
            .request(method, url)
            .header(reqwest::header::ACCEPT, accept);
        builder = match req.auth {
            Auth::None => builder,
            Auth::Basic(user, secret) => builder.basic_auth(user, Some(secret)),
            Auth::Header(name, value) => builder.header(name, value),
        };
        match req.body {
            Body::None => {}
            Body::Json(body) => {
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string());
            }
            Body::Form(fields) => {
                let encoded = match serde_urlencoded::to_string(fields) {
                    Ok(e) => e,
                    Err(e) => return refused(format!("cannot encode the form: {e}")),
                };
                builder = builder
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(encoded);
            }
        }
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                return TicketResponse {
                    status: None,
                    body: String::new(),
                    error: crate::webhook::describe(&e),
                    latency_ms: elapsed(started),
                };
            }
        };
        let status = response.status().as_u16();
        let (body, read_error) = crate::webhook::read_prefix(response).await;
        let ok = (200..=299).contains(&status);
        let error = match (ok, read_error) {
            (true, _) => String::new(),
            (false, Some(e)) => format!("HTTP {status}; {e}"),
            (false, None) => format!("HTTP {status}"),
        };
        TicketResponse {
            status: Some(status),
            body,
            error,
            latency_ms: elapsed(started),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: Option<u16>) -> TicketResponse {
        TicketResponse {
            status,
            body: String::new(),
            error: String::new(),
            latency_ms: 0,
        }
    }

    #[test]
    fn only_transient_failures_are_retried_and_not_forever() {
        // A 400 (a required Jira field without a mapping, RSP-405) is final.
        assert_eq!(retry_at(&answer(Some(400)), 1, 0, 0.0), None);
        assert_eq!(retry_at(&answer(Some(401)), 1, 0, 0.0), None);
        assert!(retry_at(&answer(Some(503)), 1, 0, 0.0).is_some());
        assert!(retry_at(&answer(Some(429)), 1, 0, 0.0).is_some());
        assert!(retry_at(&answer(None), 1, 0, 0.0).is_some());
        assert_eq!(retry_at(&answer(None), MAX_ATTEMPTS, 0, 0.0), None);
    }
}
