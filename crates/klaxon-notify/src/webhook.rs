//! Sending one outbound webhook request (response.md RSP-370, RSP-374; ingest.md ING-252):
//! a JSON `POST` with the integration's headers, signed with HMAC-SHA256, under a 2-second
//! overall timeout, and a classification of transport failures so the caller can apply the
//! retry rule of `klaxon_core::webhook::retry_after`.
//!
//! Headers (docs/webhooks.md):
//! - `Content-Type: application/json`, `User-Agent: klaxon-webhook/<version>`;
//! - `X-Klaxon-Event-Id` (the event's 32-hex `event_id`, the same on a retry: the receiver's
//!   idempotency key) and `X-Klaxon-Event-Type`;
//! - `X-Klaxon-Timestamp` (Unix seconds of this attempt) and `X-Klaxon-Signature:
//!   v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`;
//! - every custom header, which replaces a default of the same name except the content
//!   headers and the two signature headers (those names are refused when saved).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use klaxon_core::webhook::{ATTEMPT_TIMEOUT_MS, RESPONSE_KEEP_BYTES, TransportFailure};

use crate::guard;

pub const HEADER_EVENT_ID: &str = "X-Klaxon-Event-Id";
pub const HEADER_EVENT_TYPE: &str = "X-Klaxon-Event-Type";
pub const HEADER_TIMESTAMP: &str = "X-Klaxon-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Klaxon-Signature";

/// Custom header names that cannot replace ours (compared case-insensitively).
pub const PROTECTED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "x-klaxon-timestamp",
    "x-klaxon-signature",
];

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2_11::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(&klaxon_core::webhook::signed_content(timestamp, body));
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + digest.len() * 2);
    out.push_str("v1=");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// One request to make.
#[derive(Debug, Clone)]
pub struct WebhookRequest<'a> {
    pub endpoint: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    pub body: &'a [u8],
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// "" = unsigned: no timestamp or signature header.
    pub signing_secret: &'a str,
    /// Unix seconds of this attempt.
    pub timestamp: i64,
}

/// What came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// The HTTP status, when a response came.
    pub status: Option<u16>,
    /// At most [`RESPONSE_KEEP_BYTES`] of the response body (lossy UTF-8).
    pub body: String,
    pub latency_ms: i64,
    /// "" on success; else what failed.
    pub error: String,
    /// Set when no response came.
    pub failure: Option<TransportFailure>,
}

impl WebhookResponse {
    /// RSP-374: any 2xx is success (OQ-27).
    pub fn success(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

/// The HTTP client of webhook delivery; cheap to clone.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

impl WebhookSender {
    /// `allow_private`: whether endpoints may be loopback or private addresses (the
    /// installation setting of RSP-380).
    pub fn new(allow_private: bool) -> Result<WebhookSender, String> {
        Self::with_timeout(allow_private, Duration::from_millis(ATTEMPT_TIMEOUT_MS))
    }

    pub fn with_timeout(allow_private: bool, timeout: Duration) -> Result<WebhookSender, String> {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("klaxon-webhook/", env!("CARGO_PKG_VERSION")));
        if let Some(r) = guard::resolver(allow_private) {
            builder = builder.dns_resolver(r);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(WebhookSender {
            client,
            allow_private,
        })
    }

    /// Makes one attempt. Never fails: every outcome is a [`WebhookResponse`].
    pub async fn send(&self, req: &WebhookRequest<'_>) -> WebhookResponse {
        let started = Instant::now();
        let elapsed = |s: Instant| i64::try_from(s.elapsed().as_millis()).unwrap_or(i64::MAX);
        let refused = |error: String| WebhookResponse {
            status: None,
            body: String::new(),
            latency_ms: 0,
            error,
            failure: Some(TransportFailure::Other),
        };
        let url = match reqwest::Url::parse(req.endpoint.trim()) {
            Ok(u) => u,
            Err(e) => return refused(format!("invalid endpoint: {e}")),
        };
        if let Err(e) = guard::check_url(&url, self.allow_private) {
            return refused(e);
        }
        let ts = req.timestamp.to_string();
        let mut builder = self
            .client
            .post(url)
            .header(HEADER_EVENT_ID, req.event_id)
            .header(HEADER_EVENT_TYPE, req.event_type);
        for (name, value) in req.headers {
            let lower = name.to_ascii_lowercase();
            if PROTECTED_HEADERS.contains(&lower.as_str()) {
                continue;
            }
            // Replaces ours of the same name (User-Agent, the event headers).
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json");
        // Custom actions have no secret: a signature over an empty key would prove nothing,
        // so their receivers authenticate by custom headers instead (RSP-380).
        if !req.signing_secret.is_empty() {
            builder = builder.header(HEADER_TIMESTAMP, ts.as_str()).header(
                HEADER_SIGNATURE,
                signature(req.signing_secret, &ts, req.body),
            );
        }
        let builder = builder.body(req.body.to_vec());
        // Custom headers go through `header`, which appends; build the request to make the
        // replacement of defaults real (the last value of a name wins).
        let mut request = match builder.build() {
            Ok(r) => r,
            Err(e) => return refused(format!("invalid request: {e}")),
        };
        dedupe_headers(request.headers_mut());
        let response = match self.client.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                return WebhookResponse {
                    status: None,
                    body: String::new(),
                    latency_ms: elapsed(started),
                    error: describe(&e),
                    failure: Some(classify(&e)),
                };
            }
        };
        let status = response.status().as_u16();
        let (body, read_error) = read_prefix(response).await;
        let ok = (200..=299).contains(&status);
        let error = if ok {
            String::new()
        } else {
            match read_error {
                Some(e) => format!("HTTP {status}; {e}"),
                None => format!("HTTP {status}"),
            }
        };
        WebhookResponse {
            status: Some(status),
            body,
            latency_ms: elapsed(started),
            error,
            failure: None,
        }
    }
}

/// Keeps only the last value of every header name: custom headers were added after ours,
/// so they replace them.
fn dedupe_headers(headers: &mut reqwest::header::HeaderMap) {
    let names: Vec<reqwest::header::HeaderName> = headers.keys().cloned().collect();
    for name in names {
        let values: Vec<reqwest::header::HeaderValue> =
            headers.get_all(&name).iter().cloned().collect();
        if values.len() > 1
            && let Some(last) = values.last().cloned()
        {
            headers.insert(name, last);
        }
    }
}

/// The first [`RESPONSE_KEEP_BYTES`] of the body; the rest is not read.
pub(crate) async fn read_prefix(mut response: reqwest::Response) -> (String, Option<String>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_KEEP_BYTES.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if buf.len() >= RESPONSE_KEEP_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return (lossy(&buf), Some(describe(&e))),
        }
    }
    (lossy(&buf), None)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The error and its causes, one line.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

/// RSP-374's failure classes. A timeout while connecting is before the request was sent; a
/// timeout after the connection was made is counted as waiting for the response headers
/// (webhook bodies are small and go out in one write), which is not retried because the
/// receiver may have acted on it.
pub(crate) fn classify(e: &reqwest::Error) -> TransportFailure {
    if e.is_timeout() {
        return if e.is_connect() {
            TransportFailure::TimeoutBeforeSent
        } else {
            TransportFailure::TimeoutAwaitingHeaders
        };
    }
    if e.is_connect() {
        return TransportFailure::Other;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::TimedOut => return TransportFailure::IoTimeout,
                std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe => return TransportFailure::UnexpectedEof,
                _ => {}
            }
        }
        let text = s.to_string();
        if text.contains("connection closed before message completed")
            || text.contains("unexpected end of file")
            || text.contains("IncompleteMessage")
        {
            return TransportFailure::UnexpectedEof;
        }
        src = s.source();
    }
    TransportFailure::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // The verification recipe of docs/webhooks.md (a signed request, issue 7's webhooks;
        // RSP-380 is revised by it). Reference value from
        // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret`.
        let sig = signature("s3cret", "1700000000", br#"{"a":1}"#);
        assert_eq!(
            sig,
            "v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
        // Same secret, timestamp and body: same signature; any change: another.
        assert_eq!(sig, signature("s3cret", "1700000000", br#"{"a":1}"#));
        assert_ne!(sig, signature("s3cret", "1700000001", br#"{"a":1}"#));
        assert_ne!(sig, signature("other", "1700000000", br#"{"a":1}"#));
    }

    #[tokio::test]
    async fn private_endpoints_are_refused_only_when_the_installation_restricts_them() {
        // spec: RSP-380 — endpoints may be private; an installation setting can restrict them.
        let headers = BTreeMap::new();
        let req = |endpoint: &'static str| WebhookRequest {
            endpoint,
            headers: &headers,
            event_id: "e1",
            event_type: "i_new",
            timestamp: 1_700_000_000,
            signing_secret: "s",
            body: b"{}",
        };
        let restricted = WebhookSender::new(false).unwrap();
        for endpoint in [
            "http://127.0.0.1:9/hook",
            "http://10.1.2.3/hook",
            "http://[::1]/x",
        ] {
            let r = restricted.send(&req(endpoint)).await;
            assert_eq!(r.status, None, "{endpoint} is not sent to");
            assert!(r.error.contains("not public"), "{endpoint}: {}", r.error);
        }
        // Allowed: the request is made (port 9 on loopback refuses the connection).
        let open = WebhookSender::new(true).unwrap();
        let r = open.send(&req("http://127.0.0.1:9/hook")).await;
        assert!(!r.error.contains("not public"), "{}", r.error);
    }
}
