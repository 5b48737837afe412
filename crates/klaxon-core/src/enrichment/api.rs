//! Mapping services (ingest.md ING-072…075): the stored service, its checks on save, the
//! request a map rule with `source = api` sends, and what a response means.
//!
//! The core never calls a service. A rule asks its caller for the answer to one request
//! ([`ApiLookup`]); a request not answered yet is reported in `Report::calls` so the caller
//! can make every call of a batch outside its transaction and run the batch again with the
//! answers. What a response means ([`classify`]) is decided here too, so the shell only moves
//! bytes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::{Labels, QueuedEvent};
use crate::standard::{TemplateFailed, TemplateFields, render_url_template};

/// ING-074: `timeout` in seconds, and `retry_count`.
pub const MIN_TIMEOUT_SECS: u64 = 1;
pub const MAX_TIMEOUT_SECS: u64 = 3;
pub const MAX_RETRY_COUNT: u32 = 1;
/// Defaults when the field is left out: the longest wait the spec allows is not the right
/// default for a call on the ingest path; two seconds and one retry are.
pub const DEFAULT_TIMEOUT_SECS: u64 = 2;
pub const DEFAULT_RETRY_COUNT: u32 = 1;
/// ING-074: header name and value sizes, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 1024;
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// Custom headers of one service (the spec names no bound; this keeps a request small).
pub const MAX_HEADERS: usize = 20;
/// ING-073: a response body larger than this is a failure.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// A service's name, description and URL template (the spec names no bounds; name and
/// description match the mapping schema's).
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_URL_CHARS: usize = 2048;

/// ING-074: header names refused whatever their case.
pub const HEADER_BLACKLIST: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "x-access-token",
    "x-forwarded-for",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "host",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-internal-id",
    "x-user-id",
    "transfer-encoding",
    "upgrade",
    "connection",
];

/// A label mapping service (the reference's mapping service object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingService {
    pub service_id: String,
    pub account_id: i64,
    pub name: String,
    pub description: String,
    pub team_id: i64,
    /// A T-template (ING-075).
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub timeout: u64,
    pub retry_count: u32,
    pub insecure_skip_verify: bool,
    /// `false` = `status: disabled`: rules naming it produce nothing and call nothing.
    pub enabled: bool,
}

/// A refused service, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError(pub String);

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A service that passed the checks, with the warnings that did not refuse it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedService {
    pub service: MappingService,
    pub warnings: Vec<String>,
}

/// A header name is an HTTP token (RFC 9110 §5.6.2): anything else could not be sent.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// ING-074: the checks on save. `url` must be http(s) after rendering with a sample event;
/// header names are compared case-insensitively with [`HEADER_BLACKLIST`]; sizes, CR/LF and
/// ranges are checked; names trimmed. A header name not starting with `X-Custom-` or
/// `X-Enrich-` is a warning only.
pub fn validate_service(mut s: MappingService) -> Result<CheckedService, ServiceError> {
    let refuse = |m: String| Err(ServiceError(m));
    s.name = s.name.trim().to_string();
    if s.name.is_empty() || s.name.chars().count() > MAX_NAME_CHARS {
        return refuse(format!("api_name: 1–{MAX_NAME_CHARS} characters"));
    }
    if s.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return refuse(format!(
            "description: at most {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    if s.team_id < 0 {
        return refuse("team_id must not be negative".into());
    }
    s.url = s.url.trim().to_string();
    if s.url.is_empty() {
        return refuse("url is required".into());
    }
    if s.url.chars().count() > MAX_URL_CHARS {
        return refuse(format!("url: at most {MAX_URL_CHARS} characters"));
    }
    if s.url.contains(['\r', '\n']) {
        return refuse("url must not contain CR or LF".into());
    }
    let sample = sample_url(&s.url).map_err(|()| {
        ServiceError(
            "url: the template does not parse (Go text/template subset of ingest.md §2.5.1)".into(),
        )
    })?;
    if !is_http_url(&sample) {
        return refuse(format!(
            "url: {sample:?} (rendered with a sample event) is not an http or https URL"
        ));
    }
    if !(MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&s.timeout) {
        return refuse(format!(
            "timeout: {MIN_TIMEOUT_SECS}–{MAX_TIMEOUT_SECS} seconds, got {}",
            s.timeout
        ));
    }
    if s.retry_count > MAX_RETRY_COUNT {
        return refuse(format!(
            "retry_count: 0–{MAX_RETRY_COUNT}, got {}",
            s.retry_count
        ));
    }
    if s.headers.len() > MAX_HEADERS {
        return refuse(format!(
            "headers: at most {MAX_HEADERS} headers, got {}",
            s.headers.len()
        ));
    }
    let mut warnings = Vec::new();
    let mut headers = BTreeMap::new();
    let mut seen: Vec<String> = Vec::new();
    for (raw_name, value) in &s.headers {
        let name = raw_name.trim();
        let field = format!("headers.{name}");
        if name.len() > MAX_HEADER_NAME_BYTES {
            return refuse(format!(
                "headers: a header name is longer than {MAX_HEADER_NAME_BYTES} bytes"
            ));
        }
        if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
            return refuse(format!("{field}: CR and LF are not allowed"));
        }
        if !is_token(name) {
            return refuse(format!("{field}: {name:?} is not a valid header name"));
        }
        let lower = name.to_ascii_lowercase();
        if HEADER_BLACKLIST.contains(&lower.as_str()) || lower == "content-type" {
            return refuse(format!("{field}: this header may not be set"));
        }
        if seen.contains(&lower) {
            return refuse(format!("{field}: listed twice (names ignore case)"));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return refuse(format!(
                "{field}: the value is longer than {MAX_HEADER_VALUE_BYTES} bytes"
            ));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return refuse(format!("{field}: control characters are not allowed"));
        }
        if !(lower.starts_with("x-custom-") || lower.starts_with("x-enrich-")) {
            warnings.push(format!(
                "headers.{name}: custom header names should start with X-Custom- or X-Enrich-"
            ));
        }
        seen.push(lower);
        headers.insert(name.to_string(), value.clone());
    }
    s.headers = headers;
    Ok(CheckedService {
        service: s,
        warnings,
    })
}

/// `http://host…` or `https://host…` with a non-empty host (the full check, and the address
/// guard, run again on every call).
pub fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = match lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    {
        Some(r) => r,
        None => return false,
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':') && !url.chars().any(char::is_whitespace)
}

/// The URL rendered for a sample event (every label present with the value `sample`, so a
/// `{{.Labels.x}}` in the host cannot hide a scheme error).
fn sample_url(template: &str) -> Result<String, ()> {
    let mut labels = Labels::new();
    // The template's own label references, so that `{{.Labels.host}}` renders something.
    for name in referenced_labels(template) {
        labels.insert(name, "sample".to_string());
    }
    let fields = TemplateFields {
        title: "sample",
        description: "sample",
        event_severity: "Critical",
        event_status: "Critical",
        alert_key: "sample",
        labels: &labels,
    };
    render_url_template(template, &fields).map_err(|_| ())
}

/// The names in `.Labels.<name>` and `index .Labels "<name>"` references (best effort; used
/// only for the sample event).
fn referenced_labels(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(".Labels.") {
        let tail = &rest[i + ".Labels.".len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
        rest = tail;
    }
    let mut rest = template;
    while let Some(i) = rest.find("index .Labels \"") {
        let tail = &rest[i + "index .Labels \"".len()..];
        if let Some(end) = tail.find('"') {
            out.push(tail[..end].to_string());
        }
        rest = tail;
    }
    out
}

/// The severity a template and the request see: the recovery's own severity, else the
/// event's (ING-050).
fn severity_of(q: &QueuedEvent) -> &'static str {
    q.event
        .event_status
        .severity()
        .or(q.event.event_severity)
        .map(|s| s.as_str())
        .unwrap_or("Info")
}

/// ING-075: the service URL for this event; every substituted value is percent-encoded. A
/// rendering error is a call failure (ING-073).
pub fn render_url(template: &str, q: &QueuedEvent) -> Result<String, TemplateFailed> {
    let fields = TemplateFields {
        title: &q.event.title,
        description: &q.event.description,
        event_severity: severity_of(q),
        event_status: q.event.event_status.as_str(),
        alert_key: &q.event.alert_key,
        labels: &q.event.labels,
    };
    render_url_template(template, &fields)
}

/// ING-072: the request body, exactly. `channel_id` is the dedicated integration's channel or
/// 0 for a shared one (routing has not happened yet, Q-08); `alert_id` is the active alert
/// the caller knows for a dedicated integration's event, else "".
pub fn request_body(result_label_keys: &[String], q: &QueuedEvent, alert_id: &str) -> Value {
    let e = &q.event;
    json!({
        "result_label_keys": result_label_keys,
        "event": {
            "account_id": q.origin.account_id,
            "channel_id": q.origin.channel_id,
            "data_source_id": q.origin.integration_id,
            "data_source_type": q.origin.integration_type,
            "title": e.title,
            "title_rule": e.title_rule,
            "description": e.description,
            "alert_key": e.alert_key,
            "alert_id": alert_id,
            "event_severity": severity_of(q),
            "event_status": e.event_status.as_str(),
            "event_time": e.event_time.div_euclid(1000),
            "labels": e.labels,
            "images": e.images.iter().map(|i| i.src.as_str()).collect::<Vec<_>>(),
        }
    })
}

/// One call a rule needs: the service as it stood when the batch read it, the rendered URL
/// and the JSON body. `key` identifies the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    pub service: MappingService,
    pub url: String,
    pub body: String,
}

impl ApiCall {
    pub fn key(&self) -> ApiKey {
        ApiKey {
            service_id: self.service.service_id.clone(),
            url: self.url.clone(),
            body: self.body.clone(),
        }
    }
}

/// What identifies an answer: the same service, URL and body get the same answer within one
/// batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKey {
    pub service_id: String,
    pub url: String,
    pub body: String,
}

/// The outcome of a call (ING-073), after retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAnswer {
    /// 200: the string members of `result_labels` (the rule keeps the keys it listed and the
    /// non-empty values). Empty = no result.
    Labels(BTreeMap<String, String>),
    /// 404.
    NoResult,
    /// 400, 5xx, timeout, connection error, non-JSON or oversized body, a refused target, a
    /// URL rendering error: `enrich_error`.
    Failed(String),
}

/// What the caller knows about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiLookup<'a> {
    /// Not called yet: report it and produce nothing this time.
    NotLoaded,
    Answer(&'a ApiAnswer),
}

/// One attempt's result, as [`classify`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Done(ApiAnswer),
    /// 5xx, timeout or connection error: retried while `retry_count` allows (ING-073).
    Retry(String),
}

/// ING-073: what a response means. `body` is at most [`MAX_RESPONSE_BYTES`] (the caller
/// stops reading past it and reports [`oversized`]).
pub fn classify(status: u16, body: &[u8]) -> Attempt {
    match status {
        200 => {
            let Ok(value) = serde_json::from_slice::<Value>(body) else {
                return Attempt::Done(ApiAnswer::Failed("the response is not JSON".into()));
            };
            let Some(obj) = value.as_object() else {
                return Attempt::Done(ApiAnswer::Failed(
                    "the response is not a JSON object".into(),
                ));
            };
            let labels = match obj.get("result_labels") {
                Some(Value::Object(m)) => m
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect(),
                _ => {
                    return Attempt::Done(ApiAnswer::Failed(
                        "the response has no result_labels object".into(),
                    ));
                }
            };
            Attempt::Done(ApiAnswer::Labels(labels))
        }
        404 => Attempt::Done(ApiAnswer::NoResult),
        500..=599 => Attempt::Retry(format!("HTTP {status}")),
        s => Attempt::Done(ApiAnswer::Failed(format!("HTTP {s}"))),
    }
}

/// The failure of a body larger than [`MAX_RESPONSE_BYTES`].
pub fn oversized() -> ApiAnswer {
    ApiAnswer::Failed("the response body is larger than 1 MiB".into())
}

/// The labels a 200 answer produces for a rule: only keys the rule listed, only non-empty
/// values, in the rule's key order.
pub fn produced(answer: &BTreeMap<String, String>, keys: &[String]) -> Vec<(String, String)> {
    keys.iter()
        .filter_map(|k| {
            answer
                .get(k)
                .filter(|v| !v.is_empty())
                .map(|v| (k.clone(), v.clone()))
        })
        .collect()
}
