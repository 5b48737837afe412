//! HTTP pull integrations (ingest.md §2.19, §3.9), the pure part: the settings and their
//! checks on save (ING-220), the request of each page with the pull variables and the cursor
//! (ING-222, ING-226), what makes a page good (ING-223), the items it yields with severity
//! mapping and volume limits (ING-224, ING-225), and the outcome of a whole pull (ING-227,
//! ING-229).
//!
//! The server does the I/O: it asks a [`Pull`] for the next [`PageRequest`], sends it (with
//! timeout, retries, redirect limit and address guard) and hands back either the checked body
//! ([`Pull::on_page`]) or the failure ([`Pull::on_failure`]); the [`PullReport`] says how the
//! pull went and whether `.LastPullTime` may advance.

use std::collections::BTreeMap;

use klaxon_core::error::ApiError;
use klaxon_core::model::{Millis, NewEvent, RAW_MAX_BYTES, cut_bytes};
use klaxon_core::standard::{PullVars, PushContext, parse_standard, render_pull_template};
use serde_json::{Map, Value, json};

/// ING-225: items taken from one page; the rest of the page is ignored.
pub const MAX_ITEMS_PER_PAGE: usize = 100;
/// ING-225: items taken by one pull; pagination stops once reached.
pub const MAX_ITEMS_PER_PULL: usize = 2000;

/// ING-074's header blacklist (compared case-insensitively), which ING-220 applies to pulls.
pub const HEADER_BLACKLIST: [&str; 17] = [
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
const HEADER_NAME_MAX: usize = 1024;
const HEADER_VALUE_MAX: usize = 4096;

/// The members `settings` may have for type `http_pull`.
pub const SETTING_NAMES: [&str; 9] = [
    "url",
    "method",
    "headers",
    "body",
    "timeout",
    "retry_count",
    "cycle_seconds",
    "severity_mapping",
    "pagination",
];
const PAGINATION_NAMES: [&str; 5] = [
    "mode",
    "max_pages",
    "next_value_path",
    "param_name",
    "inject_to",
];

/// Instant the templates are rendered at when settings are checked on save (ING-220).
const SAMPLE_NOW: i64 = 1_778_652_000; // 2026-05-13T06:00:00Z

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// Where the cursor goes (ING-226).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectTo {
    Query,
    Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagination {
    /// 1–100, default 20.
    pub max_pages: u32,
    /// gjson-style path of the next cursor in a page's body.
    pub next_value_path: String,
    pub param_name: String,
    pub inject_to: InjectTo,
}

/// `settings` of an `http_pull` integration, with the defaults of ING-220 filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSettings {
    pub url: String,
    pub method: Method,
    /// In the order given (names checked, ING-074).
    pub headers: Vec<(String, String)>,
    /// POST only; a template whose rendering is JSON.
    pub body: Option<String>,
    /// Seconds, 1–300, default 10.
    pub timeout: u64,
    /// 0–10, default 0.
    pub retry_count: u32,
    /// ≥ 30, default 300.
    pub cycle_seconds: i64,
    /// Source `event_status` → `Critical` | `Warning` | `Info` | `Ok`.
    pub severity_mapping: BTreeMap<String, String>,
    pub pagination: Option<Pagination>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(msg)
}

/// An integer member within `lo..=hi`, or `default` when absent/null.
fn int_in(
    obj: &Map<String, Value>,
    name: &str,
    lo: i64,
    hi: i64,
    default: i64,
) -> Result<i64, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            let n = v
                .as_i64()
                .ok_or_else(|| invalid(format!("settings.{name} must be an integer")))?;
            if n < lo || n > hi {
                let range = if hi == i64::MAX {
                    format!("at least {lo}")
                } else {
                    format!("{lo}–{hi}")
                };
                return Err(invalid(format!("settings.{name} must be {range}")));
            }
            Ok(n)
        }
    }
}

fn opt_string<'v>(
    obj: &'v Map<String, Value>,
    name: &str,
    at: &str,
) -> Result<Option<&'v str>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{at}{name} must be a string"))),
    }
}

/// RFC 9110 token characters: what a header name may be made of.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// True when the URL is http(s) with a host.
fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or("");
            !host.is_empty() && !host.starts_with(':') && !host.contains(char::is_whitespace)
        }
        None => false,
    }
}

impl PullSettings {
    /// Parses and checks `settings` (ING-220); the error names the field.
    pub fn from_json(value: &Value) -> Result<PullSettings, ApiError> {
        let obj = value
            .as_object()
            .ok_or_else(|| invalid("settings must be an object"))?;
        if let Some(name) = obj.keys().find(|n| !SETTING_NAMES.contains(&n.as_str())) {
            return Err(invalid(format!(
                "settings.{name} is not supported for type http_pull"
            )));
        }
        let url = opt_string(obj, "url", "settings.")?
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| invalid("settings.url is required"))?
            .to_owned();
        let method = match opt_string(obj, "method", "settings.")?.map(str::to_ascii_uppercase) {
            None => Method::Get,
            Some(m) if m.is_empty() || m == "GET" => Method::Get,
            Some(m) if m == "POST" => Method::Post,
            Some(m) => {
                return Err(invalid(format!(
                    "settings.method {m} is invalid (GET or POST)"
                )));
            }
        };
        let mut headers = Vec::new();
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    let value = value.as_str().ok_or_else(|| {
                        invalid(format!("settings.headers.{name} must be a string"))
                    })?;
                    check_header(name, value)?;
                    headers.push((name.clone(), value.to_owned()));
                }
            }
            Some(_) => return Err(invalid("settings.headers must be an object")),
        }
        let body = match obj.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            // A JSON object is taken as its text (no template variables can be unquoted then).
            Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.to_string()),
            Some(_) => return Err(invalid("settings.body must be a string")),
        };
        if body.is_some() && method == Method::Get {
            return Err(invalid("settings.body is only allowed with method POST"));
        }
        let timeout = int_in(obj, "timeout", 1, 300, 10)? as u64;
        let retry_count = int_in(obj, "retry_count", 0, 10, 0)? as u32;
        let cycle_seconds = int_in(obj, "cycle_seconds", 30, i64::MAX, 300)?;
        let mut severity_mapping = BTreeMap::new();
        match obj.get("severity_mapping") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (from, to) in map {
                    let to = to
                        .as_str()
                        .filter(|t| matches!(*t, "Critical" | "Warning" | "Info" | "Ok"));
                    let Some(to) = to else {
                        return Err(invalid(format!(
                            "settings.severity_mapping.{from} must be Critical, Warning, Info or Ok"
                        )));
                    };
                    severity_mapping.insert(from.clone(), to.to_owned());
                }
            }
            Some(_) => return Err(invalid("settings.severity_mapping must be an object")),
        }
        let pagination = match obj.get("pagination") {
            None | Some(Value::Null) => None,
            Some(Value::Object(p)) => Some(pagination(p, method)?),
            Some(_) => return Err(invalid("settings.pagination must be an object")),
        };
        let settings = PullSettings {
            url,
            method,
            headers,
            body,
            timeout,
            retry_count,
            cycle_seconds,
            severity_mapping,
            pagination,
        };
        settings.check_templates()?;
        Ok(settings)
    }

    /// ING-220: the URL renders to an http(s) URL and the body to JSON (an object when the
    /// cursor goes into it), on the first page and on a later one, with sample values.
    fn check_templates(&self) -> Result<(), ApiError> {
        for cursor in ["", "sample-cursor"] {
            let vars = PullVars {
                now: SAMPLE_NOW,
                last_pull: SAMPLE_NOW - self.cycle_seconds,
                cursor: cursor.into(),
            };
            let url = render_pull_template(&self.url, &vars)
                .map_err(|_| invalid("settings.url is not a valid template"))?;
            if !is_http_url(url.trim()) {
                return Err(invalid("settings.url must be an http or https URL"));
            }
            if let Some(body) = &self.body {
                let text = render_pull_template(body, &vars)
                    .map_err(|_| invalid("settings.body is not a valid template"))?;
                let parsed: Value = serde_json::from_str(&text).map_err(|e| {
                    invalid(format!(
                        "settings.body must be valid JSON after rendering ({e})"
                    ))
                })?;
                if self
                    .pagination
                    .as_ref()
                    .is_some_and(|p| p.inject_to == InjectTo::Body)
                    && !parsed.is_object()
                {
                    return Err(invalid(
                        "settings.body must be a JSON object when pagination.inject_to is body",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The normalised settings as stored (defaults filled in).
    pub fn to_json(&self) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut out = json!({
            "url": self.url,
            "method": self.method.as_str(),
            "headers": headers,
            "timeout": self.timeout,
            "retry_count": self.retry_count,
            "cycle_seconds": self.cycle_seconds,
            "severity_mapping": self.severity_mapping,
        });
        if let Some(obj) = out.as_object_mut() {
            if let Some(body) = &self.body {
                obj.insert("body".into(), json!(body));
            }
            if let Some(p) = &self.pagination {
                obj.insert(
                    "pagination".into(),
                    json!({
                        "mode": "cursor",
                        "max_pages": p.max_pages,
                        "next_value_path": p.next_value_path,
                        "param_name": p.param_name,
                        "inject_to": match p.inject_to {
                            InjectTo::Query => "query",
                            InjectTo::Body => "body",
                        },
                    }),
                );
            }
        }
        out
    }

    /// The longest a pull of these settings can take, in seconds: every page of
    /// `max_pages`, every attempt timing out, plus the pauses between attempts.
    pub fn worst_case_seconds(&self) -> i64 {
        let pages = self
            .pagination
            .as_ref()
            .map_or(1, |p| i64::from(p.max_pages));
        let attempts = i64::from(self.retry_count) + 1;
        pages * attempts * (self.timeout as i64 + 1)
    }
}

/// The `settings` of an `http_pull` integration as given to `/integration/create` or
/// `/integration/update`, checked (ING-220) and normalised to the JSON object text stored.
pub fn settings_text(raw: Option<&Value>) -> Result<String, ApiError> {
    match raw {
        None | Some(Value::Null) => Err(invalid("settings.url is required")),
        Some(v) => Ok(PullSettings::from_json(v)?.to_json().to_string()),
    }
}

/// ING-074 header checks as ING-220 applies them.
fn check_header(name: &str, value: &str) -> Result<(), ApiError> {
    if HEADER_BLACKLIST.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(invalid(format!("settings.headers.{name} is not allowed")));
    }
    if name.len() > HEADER_NAME_MAX {
        return Err(invalid(
            "settings.headers: a header name is longer than 1024 bytes",
        ));
    }
    if value.len() > HEADER_VALUE_MAX {
        return Err(invalid(format!(
            "settings.headers.{name} is longer than 4096 bytes"
        )));
    }
    if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
        return Err(invalid(format!(
            "settings.headers.{name} must not contain CR or LF"
        )));
    }
    if !is_token(name) {
        return Err(invalid(format!(
            "settings.headers.{name} is not a valid header name"
        )));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(invalid(format!(
            "settings.headers.{name} contains a control character"
        )));
    }
    Ok(())
}

fn pagination(p: &Map<String, Value>, method: Method) -> Result<Pagination, ApiError> {
    if let Some(name) = p.keys().find(|n| !PAGINATION_NAMES.contains(&n.as_str())) {
        return Err(invalid(format!(
            "settings.pagination.{name} is not supported"
        )));
    }
    match opt_string(p, "mode", "settings.pagination.")? {
        None | Some("") | Some("cursor") => {}
        Some(other) => {
            return Err(invalid(format!(
                "settings.pagination.mode {other} is invalid (cursor)"
            )));
        }
    }
    let max_pages = match p.get("max_pages") {
        None | Some(Value::Null) => 20,
        Some(v) => match v.as_i64() {
            Some(n) if (1..=100).contains(&n) => n as u32,
            _ => return Err(invalid("settings.pagination.max_pages must be 1–100")),
        },
    };
    let next_value_path = opt_string(p, "next_value_path", "settings.pagination.")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("settings.pagination.next_value_path is required"))?
        .to_owned();
    let param_name = opt_string(p, "param_name", "settings.pagination.")?
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("settings.pagination.param_name is required"))?
        .to_owned();
    let inject_to = match opt_string(p, "inject_to", "settings.pagination.")? {
        None | Some("") | Some("query") => InjectTo::Query,
        Some("body") => InjectTo::Body,
        Some(other) => {
            return Err(invalid(format!(
                "settings.pagination.inject_to {other} is invalid (query or body)"
            )));
        }
    };
    if inject_to == InjectTo::Body && method != Method::Post {
        return Err(invalid(
            "settings.pagination.inject_to body requires method POST",
        ));
    }
    Ok(Pagination {
        max_pages,
        next_value_path,
        param_name,
        inject_to,
    })
}

/// One page's request, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// POST only; JSON text.
    pub body: Option<String>,
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sets query parameter `name` to `value`, replacing existing ones (ING-226).
pub fn set_query_param(url: &str, name: &str, value: &str) -> String {
    let (rest, fragment) = match url.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (url, None),
    };
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, q),
        None => (rest, ""),
    };
    let encoded = encode_component(name);
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or("");
            key != name && key != encoded
        })
        .map(str::to_owned)
        .collect();
    pairs.push(format!("{encoded}={}", encode_component(value)));
    let mut out = format!("{base}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// The request of one page (ING-222, ING-226).
pub fn page_request(settings: &PullSettings, vars: &PullVars) -> Result<PageRequest, String> {
    let mut url = render_pull_template(&settings.url, vars)
        .map_err(|_| "the URL template cannot be rendered".to_owned())?
        .trim()
        .to_owned();
    if !is_http_url(&url) {
        return Err("the rendered URL is not an http or https URL".into());
    }
    let mut body = match &settings.body {
        Some(template) if settings.method == Method::Post => {
            let text = render_pull_template(template, vars)
                .map_err(|_| "the body template cannot be rendered".to_owned())?;
            let parsed: Value = serde_json::from_str(&text)
                .map_err(|e| format!("the rendered body is not valid JSON: {e}"))?;
            Some(parsed)
        }
        _ => None,
    };
    if let Some(p) = &settings.pagination
        && !vars.cursor.is_empty()
    {
        match p.inject_to {
            InjectTo::Query => url = set_query_param(&url, &p.param_name, &vars.cursor),
            InjectTo::Body => {
                let obj = body.get_or_insert_with(|| Value::Object(Map::new()));
                match obj.as_object_mut() {
                    Some(o) => {
                        o.insert(p.param_name.clone(), Value::String(vars.cursor.clone()));
                    }
                    None => return Err("the rendered body is not a JSON object".into()),
                }
            }
        }
    }
    let body = match (settings.method, body) {
        (Method::Post, Some(b)) => Some(b.to_string()),
        (Method::Post, None) => Some("{}".to_owned()),
        (Method::Get, _) => None,
    };
    Ok(PageRequest {
        method: settings.method,
        url,
        headers: settings.headers.clone(),
        body,
    })
}

/// ING-223: status 200, a JSON content type, a JSON object body with an `items` array. The
/// parsed body, or why the page failed.
pub fn check_page(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Value, String> {
    if status != 200 {
        return Err(format!("HTTP status {status}"));
    }
    if !content_type.is_some_and(|c| c.to_ascii_lowercase().contains("json")) {
        return Err(format!(
            "Content-Type {} is not JSON",
            content_type.unwrap_or("(none)")
        ));
    }
    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    match parsed.get("items") {
        Some(Value::Array(_)) if parsed.is_object() => Ok(parsed),
        _ => Err("the body has no items array".into()),
    }
}

/// ING-226: the cursor at `path` (gjson-style: `.`-separated members, digits index arrays,
/// `\.` is a literal dot). A string as is, a number in decimal form; anything else, absent or
/// empty ends pagination.
pub fn next_cursor(body: &Value, path: &str) -> Option<String> {
    let mut segments = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '.' => segments.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    segments.push(cur);
    let mut at = body;
    for seg in &segments {
        at = match at {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match at {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// ING-229: how a pull ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    Success,
    Partial,
    Failed,
}

impl PullStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PullStatus::Success => "success",
            PullStatus::Partial => "partial",
            PullStatus::Failed => "failed",
        }
    }
}

/// What one pull did (ING-229).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    pub status: PullStatus,
    /// Pages fetched successfully.
    pub pages: u32,
    /// Elements of the `items` arrays received.
    pub items_received: usize,
    /// Valid items ingested.
    pub items_accepted: usize,
    /// Invalid items skipped (ING-224).
    pub items_skipped: usize,
    /// Items ignored by the limits of ING-225.
    pub items_truncated: usize,
    /// The failing page's error; "" on success.
    pub error: String,
}

/// One pull, page by page (see the module docs).
#[derive(Debug, Clone)]
pub struct Pull<'a> {
    settings: &'a PullSettings,
    vars: PullVars,
    pages: u32,
    received: usize,
    accepted: usize,
    skipped: usize,
    truncated: usize,
    error: Option<String>,
    done: bool,
}

impl<'a> Pull<'a> {
    /// A pull starting at `now` (Unix seconds); `last_pull` is the `.NowTime` of the last pull
    /// that finished without failure, `None` before the first (ING-222: `now − cycle`).
    pub fn new(settings: &'a PullSettings, now: i64, last_pull: Option<i64>) -> Pull<'a> {
        Pull {
            settings,
            vars: PullVars {
                now,
                last_pull: last_pull.unwrap_or(now - settings.cycle_seconds),
                cursor: String::new(),
            },
            pages: 0,
            received: 0,
            accepted: 0,
            skipped: 0,
            truncated: 0,
            error: None,
            done: false,
        }
    }

    /// The variables of the next page.
    pub fn vars(&self) -> &PullVars {
        &self.vars
    }

    /// The next page's request; `None` once the pull is over.
    pub fn next_request(&self) -> Option<Result<PageRequest, String>> {
        (!self.done).then(|| page_request(self.settings, &self.vars))
    }

    /// A page that passed [`check_page`]: its events (valid items after severity mapping,
    /// within the limits), and the cursor of the next page, if any.
    pub fn on_page(
        &mut self,
        body: &Value,
        integration_id: i64,
        received_at: Millis,
    ) -> Vec<NewEvent> {
        self.pages += 1;
        let items: &[Value] = body
            .get("items")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        self.received += items.len();
        let room = MAX_ITEMS_PER_PULL.saturating_sub(self.accepted + self.skipped);
        let take = items.len().min(MAX_ITEMS_PER_PAGE).min(room);
        self.truncated += items.len() - take;
        let ctx = PushContext {
            integration_id,
            query_labels: &[],
            received_at,
        };
        let mut events = Vec::with_capacity(take);
        for item in &items[..take] {
            match item_event(item, &self.settings.severity_mapping, &ctx) {
                Ok(event) => {
                    self.accepted += 1;
                    events.push(event);
                }
                Err(_) => self.skipped += 1,
            }
        }
        let max_pages = self.settings.pagination.as_ref().map_or(1, |p| p.max_pages);
        let next = self
            .settings
            .pagination
            .as_ref()
            .and_then(|p| next_cursor(body, &p.next_value_path));
        match next {
            Some(cursor)
                if !items.is_empty()
                    && self.pages < max_pages
                    && self.accepted + self.skipped < MAX_ITEMS_PER_PULL =>
            {
                self.vars.cursor = cursor;
            }
            _ => self.done = true,
        }
        events
    }

    /// The current page failed after its retries (ING-223): the pull ends there.
    pub fn on_failure(&mut self, error: impl Into<String>) {
        self.error = Some(error.into());
        self.done = true;
    }

    /// The outcome (ING-227): `failed` when the first page failed, `partial` when a later one
    /// did, `success` otherwise.
    pub fn report(&self) -> PullReport {
        let status = match (&self.error, self.pages) {
            (None, _) => PullStatus::Success,
            (Some(_), 0) => PullStatus::Failed,
            (Some(_), _) => PullStatus::Partial,
        };
        PullReport {
            status,
            pages: self.pages,
            items_received: self.received,
            items_accepted: self.accepted,
            items_skipped: self.skipped,
            items_truncated: self.truncated,
            error: self.error.clone().unwrap_or_default(),
        }
    }
}

/// ING-224 / §3.9: one item → one standard event, `severity_mapping` applied to
/// `event_status` first (exact match; unmapped values pass through and fail validation
/// unless already valid).
pub fn item_event(
    item: &Value,
    severity_mapping: &BTreeMap<String, String>,
    ctx: &PushContext<'_>,
) -> Result<NewEvent, ApiError> {
    let mut item = item.clone();
    if let Some(obj) = item.as_object_mut()
        && let Some(Value::String(status)) = obj.get("event_status")
        && let Some(mapped) = severity_mapping.get(status)
    {
        let mapped = Value::String(mapped.clone());
        obj.insert("event_status".into(), mapped);
    }
    let mut event = parse_standard(&item, ctx)?;
    event.raw = cut_bytes(&item.to_string(), RAW_MAX_BYTES).to_string();
    Ok(event)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn settings(v: Value) -> PullSettings {
        PullSettings::from_json(&v).unwrap()
    }

    fn refused(v: Value) -> String {
        PullSettings::from_json(&v).unwrap_err().message
    }

    #[test]
    fn defaults_are_filled_in() {
        // spec: ING-220
        let s = settings(json!({"url": "https://mon.example/api/alerts"}));
        assert_eq!(s.method, Method::Get);
        assert_eq!(s.timeout, 10);
        assert_eq!(s.retry_count, 0);
        assert_eq!(s.cycle_seconds, 300);
        assert!(s.pagination.is_none());
        let stored = s.to_json();
        assert_eq!(stored["timeout"], 10);
        assert_eq!(PullSettings::from_json(&stored).unwrap(), s);
    }

    #[test]
    fn settings_are_checked_on_save() {
        // spec: ING-220
        assert!(refused(json!({})).contains("settings.url is required"));
        assert!(refused(json!({"url": "ftp://x.example/"})).contains("http or https"));
        assert!(refused(json!({"url": "https://x/", "method": "PUT"})).contains("method"));
        assert!(
            refused(json!({"url": "https://x/", "body": "{}"}))
                .contains("only allowed with method POST")
        );
        assert!(refused(json!({"url": "https://x/", "timeout": 0})).contains("settings.timeout"));
        assert!(refused(json!({"url": "https://x/", "timeout": 301})).contains("settings.timeout"));
        assert!(refused(json!({"url": "https://x/", "retry_count": 11})).contains("retry_count"));
        assert!(
            refused(json!({"url": "https://x/", "cycle_seconds": 29})).contains("cycle_seconds")
        );
        assert!(
            refused(json!({"url": "https://x/", "severity_mapping": {"P1": "High"}}))
                .contains("settings.severity_mapping.P1")
        );
        assert!(refused(json!({"url": "https://x/", "extra": 1})).contains("settings.extra"));
        assert!(refused(json!({"url": "https://x/{{if}}"})).contains("settings.url"));
    }

    #[test]
    fn blacklisted_and_malformed_headers_are_refused() {
        // spec: ING-220, ING-074
        for name in ["Authorization", "COOKIE", "x-api-key", "Host", "Connection"] {
            let msg = refused(json!({"url": "https://x/", "headers": {name: "v"}}));
            assert!(msg.contains(name) && msg.contains("not allowed"), "{msg}");
        }
        assert!(
            refused(json!({"url": "https://x/", "headers": {"X-A": "a\r\nb"}}))
                .contains("CR or LF")
        );
        let long = "v".repeat(4097);
        assert!(refused(json!({"url": "https://x/", "headers": {"X-A": long}})).contains("4096"));
        let long_name = "x".repeat(1025);
        assert!(
            refused(json!({"url": "https://x/", "headers": {long_name: "v"}})).contains("1024")
        );
        assert!(
            refused(json!({"url": "https://x/", "headers": {"X-A": 1}}))
                .contains("must be a string")
        );
        let ok = settings(json!({"url": "https://x/", "headers": {"X-Custom-Token": "abc"}}));
        assert_eq!(ok.headers, vec![("X-Custom-Token".into(), "abc".into())]);
    }

    #[test]
    fn the_body_must_render_to_json() {
        // spec: ING-220
        let ok = settings(json!({
            "url": "https://x/", "method": "POST",
            "body": "{\"from\": {{.LastPullTime}}, \"to\": {{.NowTime}}, \"iso\": \"{{.NowTimeISO}}\"}"
        }));
        assert!(ok.body.is_some());
        let msg = refused(
            json!({"url": "https://x/", "method": "POST", "body": "{\"from\": {{.LastPullTimeISO}}}"}),
        );
        assert!(msg.contains("settings.body must be valid JSON"), "{msg}");
        let msg = refused(json!({"url": "https://x/", "method": "POST", "body": "[1]",
            "pagination": {"next_value_path": "next", "param_name": "cursor", "inject_to": "body"}}));
        assert!(msg.contains("JSON object"), "{msg}");
    }

    #[test]
    fn pagination_rules() {
        // spec: ING-220
        let p = settings(json!({"url": "https://x/", "pagination": {"mode": "cursor", "next_value_path": "next", "param_name": "c"}}))
            .pagination
            .unwrap();
        assert_eq!(p.max_pages, 20);
        assert_eq!(p.inject_to, InjectTo::Query);
        assert!(
            refused(json!({"url": "https://x/", "pagination": {"param_name": "c"}}))
                .contains("next_value_path is required")
        );
        assert!(
            refused(json!({"url": "https://x/", "pagination": {"next_value_path": "n"}}))
                .contains("param_name is required")
        );
        assert!(refused(json!({"url": "https://x/", "pagination": {"next_value_path": "n", "param_name": "c", "max_pages": 101}})).contains("max_pages"));
        assert!(refused(json!({"url": "https://x/", "pagination": {"next_value_path": "n", "param_name": "c", "mode": "offset"}})).contains("mode"));
        assert!(refused(json!({"url": "https://x/", "pagination": {"next_value_path": "n", "param_name": "c", "inject_to": "body"}})).contains("requires method POST"));
    }

    #[test]
    fn templates_see_the_pull_variables() {
        // spec: ING-222
        let s = settings(json!({
            "url": "https://x/a?from={{.LastPullTime}}&to={{.NowTime}}&since={{.LastPullTimeISO}}&c={{.CursorValue}}{{.PageValue}}",
            "method": "POST",
            "body": "{\"until\": \"{{.NowTimeISO}}\"}"
        }));
        let vars = PullVars {
            now: 1_778_652_000,
            last_pull: 1_778_651_700,
            cursor: String::new(),
        };
        let r = page_request(&s, &vars).unwrap();
        assert_eq!(
            r.url,
            "https://x/a?from=1778651700&to=1778652000&since=2026-05-13T05:55:00Z&c="
        );
        assert_eq!(
            r.body.as_deref(),
            Some("{\"until\":\"2026-05-13T06:00:00Z\"}")
        );
    }

    #[test]
    fn the_first_pull_looks_back_one_cycle() {
        // spec: ING-222
        let s = settings(json!({"url": "https://x/?from={{.LastPullTime}}", "cycle_seconds": 60}));
        let pull = Pull::new(&s, 1000, None);
        assert_eq!(pull.vars().last_pull, 940);
        let pull = Pull::new(&s, 1000, Some(700));
        assert_eq!(pull.vars().last_pull, 700);
    }

    #[test]
    fn cursor_is_injected_into_query_or_body() {
        // spec: ING-226
        let q = settings(json!({"url": "https://x/a?cursor=old&b=1#frag",
            "pagination": {"next_value_path": "next", "param_name": "cursor"}}));
        let vars = PullVars {
            now: 1,
            last_pull: 0,
            cursor: "a b/c".into(),
        };
        assert_eq!(
            page_request(&q, &vars).unwrap().url,
            "https://x/a?b=1&cursor=a%20b%2Fc#frag"
        );
        let b = settings(
            json!({"url": "https://x/", "method": "POST", "body": "{\"size\": 10}",
            "pagination": {"next_value_path": "meta.next", "param_name": "after", "inject_to": "body"}}),
        );
        let body: Value =
            serde_json::from_str(page_request(&b, &vars).unwrap().body.as_deref().unwrap())
                .unwrap();
        assert_eq!(body, json!({"size": 10, "after": "a b/c"}));
        // The first page carries no cursor.
        let first = PullVars {
            now: 1,
            last_pull: 0,
            cursor: String::new(),
        };
        assert_eq!(
            page_request(&q, &first).unwrap().url,
            "https://x/a?cursor=old&b=1#frag"
        );
    }

    #[test]
    fn next_cursor_reads_strings_and_numbers_only() {
        // spec: ING-226
        let body = json!({"meta": {"next": "abc", "n": 42, "e": "", "z": null, "o": {}}, "list": [{"id": "x"}], "a.b": "dot"});
        assert_eq!(next_cursor(&body, "meta.next").as_deref(), Some("abc"));
        assert_eq!(next_cursor(&body, "meta.n").as_deref(), Some("42"));
        assert_eq!(next_cursor(&body, "list.0.id").as_deref(), Some("x"));
        assert_eq!(next_cursor(&body, "a\\.b").as_deref(), Some("dot"));
        for path in [
            "meta.e",
            "meta.z",
            "meta.o",
            "meta.missing",
            "nothing.at.all",
        ] {
            assert_eq!(next_cursor(&body, path), None, "{path}");
        }
    }

    #[test]
    fn page_requirements() {
        // spec: ING-223
        assert!(
            check_page(
                200,
                Some("application/json; charset=utf-8"),
                b"{\"items\": []}"
            )
            .is_ok()
        );
        assert!(check_page(200, Some("Application/Problem+JSON"), b"{\"items\": []}").is_ok());
        assert!(
            check_page(500, Some("application/json"), b"{\"items\": []}")
                .unwrap_err()
                .contains("500")
        );
        assert!(
            check_page(200, Some("text/plain"), b"{\"items\": []}")
                .unwrap_err()
                .contains("Content-Type")
        );
        assert!(check_page(200, None, b"{\"items\": []}").is_err());
        assert!(check_page(200, Some("application/json"), b"not json").is_err());
        assert!(
            check_page(200, Some("application/json"), b"{\"items\": {}}")
                .unwrap_err()
                .contains("items")
        );
        assert!(check_page(200, Some("application/json"), b"[]").is_err());
    }

    fn item(i: usize) -> Value {
        json!({"event_status": "P1", "title": format!("item {i}"), "alert_key": format!("k{i}")})
    }

    #[test]
    fn severity_mapping_and_invalid_items() {
        // spec: ING-224, §3.9 example: P1 → Critical, P2 → Warning, P3 → Info; P4 is skipped.
        let s = settings(
            json!({"url": "https://x/", "severity_mapping": {"P1": "Critical", "P2": "Warning", "P3": "Info"}}),
        );
        let mut pull = Pull::new(&s, 1_000, None);
        let body = json!({"items": [
            {"event_status": "P1", "title": "a"},
            {"event_status": "P2", "title": "b"},
            {"event_status": "P3", "title": "c"},
            {"event_status": "P4", "title": "d"},
            {"event_status": "Ok"},
            {"event_status": "Ok", "alert_key": "k"},
            "not an object",
        ]});
        let events = pull.on_page(&body, 7, 1_000_000);
        let statuses: Vec<&str> = events.iter().map(|e| e.event_status.as_str()).collect();
        assert_eq!(statuses, ["Critical", "Warning", "Info", "Ok"]);
        assert!(events[0].raw.contains("\"Critical\""));
        let r = pull.report();
        assert_eq!(
            (
                r.items_received,
                r.items_accepted,
                r.items_skipped,
                r.items_truncated
            ),
            (7, 4, 3, 0)
        );
        assert_eq!(r.status, PullStatus::Success);
        assert!(pull.next_request().is_none());
    }

    #[test]
    fn volume_limits_truncate_pages_and_pulls() {
        // spec: ING-225
        let s = settings(
            json!({"url": "https://x/", "pagination": {"next_value_path": "next", "param_name": "c", "max_pages": 100}}),
        );
        let mut pull = Pull::new(&s, 1_000, None);
        let page: Vec<Value> = (0..150).map(item).collect();
        let body = json!({"items": page, "next": "more"});
        let mut pages = 0;
        while let Some(req) = pull.next_request() {
            req.unwrap();
            pull.on_page(&body, 1, 0);
            pages += 1;
        }
        assert_eq!(pages, 20);
        let r = pull.report();
        assert_eq!(r.items_received, 3000);
        assert_eq!(r.items_skipped, 2000, "P1 is unmapped here");
        assert_eq!(r.items_truncated, 1000);
    }

    #[test]
    fn pagination_ends_on_empty_items_missing_cursor_or_max_pages() {
        // spec: ING-226
        let s = settings(
            json!({"url": "https://x/", "pagination": {"next_value_path": "next", "param_name": "c", "max_pages": 3}}),
        );
        let mut pull = Pull::new(&s, 1_000, None);
        pull.on_page(&json!({"items": [item(1)], "next": 2}), 1, 0);
        assert_eq!(pull.vars().cursor, "2");
        pull.on_page(&json!({"items": [], "next": "3"}), 1, 0);
        assert!(pull.next_request().is_none());

        let mut pull = Pull::new(&s, 1_000, None);
        pull.on_page(&json!({"items": [item(1)]}), 1, 0);
        assert!(pull.next_request().is_none());

        let mut pull = Pull::new(&s, 1_000, None);
        for _ in 0..3 {
            assert!(pull.next_request().is_some());
            pull.on_page(&json!({"items": [item(1)], "next": "x"}), 1, 0);
        }
        assert!(pull.next_request().is_none());
        assert_eq!(pull.report().pages, 3);
    }

    #[test]
    fn failure_semantics() {
        // spec: ING-227
        let s = settings(
            json!({"url": "https://x/", "pagination": {"next_value_path": "next", "param_name": "c"}}),
        );
        let mut pull = Pull::new(&s, 1_000, None);
        pull.on_failure("HTTP status 500");
        let r = pull.report();
        assert_eq!(
            (r.status, r.pages, r.error.as_str()),
            (PullStatus::Failed, 0, "HTTP status 500")
        );

        let mut pull = Pull::new(&s, 1_000, None);
        let events = pull.on_page(
            &json!({"items": [{"event_status": "Warning", "title": "t"}], "next": "p2"}),
            1,
            0,
        );
        assert_eq!(events.len(), 1);
        pull.on_failure("timeout");
        let r = pull.report();
        assert_eq!(
            (r.status, r.pages, r.items_accepted),
            (PullStatus::Partial, 1, 1)
        );
        assert!(pull.next_request().is_none());
    }

    #[test]
    fn set_query_param_handles_bare_urls() {
        assert_eq!(set_query_param("https://x/a", "c", "1"), "https://x/a?c=1");
        assert_eq!(set_query_param("https://x/a?", "c", "1"), "https://x/a?c=1");
    }
}
