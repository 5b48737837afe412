//! Outbound alert and incident webhooks: the pure rules (response.md 1.18, §2.23 RSP-370…381;
//! ingest.md §2.21 ING-250…253). Which event a timeline entry fires, which integrations an
//! event goes to, how a custom body is rendered, and whether a failed attempt is retried.
//! Storage, HTTP and the payload's data live at the edges.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::model::Millis;

/// response.md 1.18 `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Alert,
    Incident,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "alert_webhook",
            Kind::Incident => "incident_webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "alert_webhook" => Some(Kind::Alert),
            "incident_webhook" => Some(Kind::Incident),
            _ => None,
        }
    }

    /// The event types of this kind (RSP-371, RSP-372).
    pub fn event_types(self) -> &'static [&'static str] {
        match self {
            Kind::Alert => ALERT_EVENT_TYPES,
            Kind::Incident => INCIDENT_EVENT_TYPES,
        }
    }

    /// The kind an event type belongs to.
    pub fn of_event(event_type: &str) -> Option<Kind> {
        if ALERT_EVENT_TYPES.contains(&event_type) {
            Some(Kind::Alert)
        } else if INCIDENT_EVENT_TYPES.contains(&event_type) {
            Some(Kind::Incident)
        } else {
            None
        }
    }
}

/// RSP-371.
pub const INCIDENT_EVENT_TYPES: &[&str] = &[
    "i_new",
    "i_assign",
    "i_snooze",
    "i_wake",
    "i_ack",
    "i_unack",
    "i_storm",
    "i_custom",
    "i_rslv",
    "i_reopen",
    "i_merge",
    "i_comm",
    "i_r_title",
    "i_r_desc",
    "i_r_impact",
    "i_r_rc",
    "i_r_rsltn",
    "i_r_severity",
    "i_r_field",
];

/// RSP-372 / ING-250.
pub const ALERT_EVENT_TYPES: &[&str] = &["a_new", "a_update", "a_merge", "a_close"];

/// response.md 1.18 limits.
pub const MAX_NAME_CHARS: usize = 39;
pub const MAX_ENDPOINT_BYTES: usize = 2048;
pub const MAX_HEADERS: usize = 20;

/// RSP-374: one retry after a transport failure that the receiver cannot have acted on.
pub const MAX_ATTEMPTS: i64 = 2;
/// RSP-374 / OQ-27: the retry waits 1 s.
pub const RETRY_BASE_MS: Millis = 1_000;
/// RSP-374: each attempt has a 2-second overall timeout.
pub const ATTEMPT_TIMEOUT_MS: u64 = 2_000;
/// RSP-379: the invocation history is kept 7 days (OQ-27).
pub const HISTORY_KEEP_MS: Millis = 7 * 24 * 3_600_000;
/// RSP-379: the first 4 KB of the response body are kept.
pub const RESPONSE_KEEP_BYTES: usize = 4096;

/// The incident-webhook event a timeline entry fires (RSP-002 matrix, RSP-371), if any.
///
/// - `i_a_rspd` (add responders) fires `i_assign` (OQ-29);
/// - `i_merge` fires only on the target (its detail lists `source_incidents`); a source gets
///   `i_rslv` for its close instead (RSP-002 "merge incidents" row);
/// - `i_notify`, war-room and mute entries fire nothing; `a_merge` is an alert webhook
///   ([`alert_event_for_timeline`]).
pub fn incident_event_for_timeline(kind: &str, detail: &Value) -> Option<&'static str> {
    match kind {
        "i_a_rspd" => Some("i_assign"),
        "i_merge" => detail
            .get("source_incidents")
            .is_some()
            .then_some("i_merge"),
        _ => INCIDENT_EVENT_TYPES.iter().copied().find(|t| *t == kind),
    }
}

/// The alert-webhook event a timeline entry fires: a manual move of an alert into an incident
/// (RSP-101 writes `a_merge {alert_id, …}`) fires `a_merge` for that alert (RSP-372).
pub fn alert_event_for_timeline(kind: &str, detail: &Value) -> Option<(&'static str, String)> {
    if kind != "a_merge" {
        return None;
    }
    let id = detail.get("alert_id")?.as_str()?;
    Some(("a_merge", id.to_string()))
}

/// The filter part of an outbound integration (RSP-378).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub kind: Kind,
    pub enabled: bool,
    pub event_types: Vec<String>,
    pub channel_ids: Vec<i64>,
}

impl Subscription {
    /// RSP-378: enabled, the event type subscribed (an empty list means every type, which
    /// only incident webhooks may have), and the channel in scope (empty = every channel,
    /// global incidents included).
    pub fn wants(&self, event_type: &str, channel_id: i64) -> bool {
        self.enabled
            && Kind::of_event(event_type) == Some(self.kind)
            && (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && (self.channel_ids.is_empty() || self.channel_ids.contains(&channel_id))
    }
}

/// Checks an integration's event types (response.md 1.18, ING-253); the error names the field.
pub fn check_event_types(kind: Kind, types: &[String]) -> Result<(), String> {
    if kind == Kind::Alert && types.is_empty() {
        return Err("event_types: an alert webhook needs at least one event type".into());
    }
    for t in types {
        if !kind.event_types().contains(&t.as_str()) {
            return Err(format!(
                "event_types: {t:?} is not an event type of {} (allowed: {})",
                kind.as_str(),
                kind.event_types().join(", ")
            ));
        }
    }
    Ok(())
}

/// Checks a custom body (RSP-376: valid JSON when saved) and a value mapping (RSP-377).
pub fn check_custom_body(body: &str) -> Result<(), String> {
    if body.trim().is_empty() {
        return Ok(());
    }
    serde_json::from_str::<Value>(body)
        .map(|_| ())
        .map_err(|e| format!("custom_body: not valid JSON: {e}"))
}

/// The value at a dot-separated path with numeric array indexes (RSP-376).
pub fn lookup<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = root;
    for key in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(key)?,
            Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A value's text form inside a longer string (RSP-376).
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// RSP-377: the mapped value of `path`, if a mapping for the path has the value's text form.
fn mapped(path: &str, v: &Value, mapping: &BTreeMap<String, Map<String, Value>>) -> Value {
    mapping
        .get(path)
        .and_then(|m| m.get(&text_of(v)))
        .cloned()
        .unwrap_or_else(|| v.clone())
}

/// The placeholders `{{path}}` of a string, as (start, end, path) byte ranges.
fn placeholders(s: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = s[from..].find("{{").map(|i| i + from) {
        let Some(close) = s[open + 2..].find("}}").map(|i| i + open + 2) else {
            break;
        };
        out.push((open, close + 2, s[open + 2..close].trim().to_string()));
        from = close + 2;
    }
    out
}

fn render_string(
    s: &str,
    payload: &Value,
    mapping: &BTreeMap<String, Map<String, Value>>,
) -> Value {
    let found = placeholders(s);
    // Exactly one placeholder and nothing else: the raw value keeps its JSON type.
    if let [(0, end, path)] = found.as_slice()
        && *end == s.len()
    {
        return match lookup(payload, path) {
            Some(v) => mapped(path, v, mapping),
            None => Value::String(s.to_string()),
        };
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (start, end, path) in &found {
        out.push_str(&s[last..*start]);
        match lookup(payload, path) {
            Some(v) => out.push_str(&text_of(&mapped(path, v, mapping))),
            None => out.push_str(&s[*start..*end]),
        }
        last = *end;
    }
    out.push_str(&s[last..]);
    Value::String(out)
}

fn render_value(
    v: &Value,
    payload: &Value,
    mapping: &BTreeMap<String, Map<String, Value>>,
) -> Value {
    match v {
        Value::String(s) => render_string(s, payload, mapping),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_value(x, payload, mapping))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), render_value(x, payload, mapping)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The body to send (RSP-376, RSP-377): the default payload when `custom_body` is empty, else
/// the custom body with its placeholders filled from the payload. A custom body that is not
/// JSON (it was checked when saved) falls back to the default payload.
pub fn render_body(
    custom_body: &str,
    payload: &Value,
    mapping: &BTreeMap<String, Map<String, Value>>,
) -> Value {
    if custom_body.trim().is_empty() {
        return payload.clone();
    }
    match serde_json::from_str::<Value>(custom_body) {
        Ok(template) => render_value(&template, payload, mapping),
        Err(_) => payload.clone(),
    }
}

/// How an attempt failed at the transport level (RSP-374).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// The deadline passed before the request was fully sent (connecting included).
    TimeoutBeforeSent,
    /// The deadline passed while waiting for the response headers.
    TimeoutAwaitingHeaders,
    /// A socket read or write timed out.
    IoTimeout,
    /// The connection closed before any response.
    UnexpectedEof,
    /// Anything else (refused connection, DNS, TLS, a blocked address).
    Other,
}

/// RSP-374: only failures the receiver cannot have acted on are retried, and only once.
pub fn retry_after(
    failure: Option<TransportFailure>,
    attempts_made: i64,
    now: Millis,
    jitter: f64,
) -> Option<Millis> {
    let retryable = matches!(
        failure,
        Some(
            TransportFailure::TimeoutBeforeSent
                | TransportFailure::IoTimeout
                | TransportFailure::UnexpectedEof
        )
    );
    if !retryable || attempts_made >= MAX_ATTEMPTS {
        return None;
    }
    Some(now.saturating_add(backoff_ms(attempts_made, jitter)))
}

/// The wait before attempt `attempts_made + 1`: `1 s · 2^(attempts_made-1)` plus up to 10 %
/// jitter, so endpoints that come back are not hit by every queued event in one instant.
/// With the spec's single retry this is 1.0–1.1 s.
pub fn backoff_ms(attempts_made: i64, jitter: f64) -> Millis {
    let exp = u32::try_from(attempts_made.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
    let base = RETRY_BASE_MS.saturating_mul(1i64 << exp);
    // The jitter term is at most a tenth of `base`, so the cast cannot overflow.
    base + ((base as f64) * 0.1 * jitter.clamp(0.0, 1.0)) as Millis
}

/// The bytes HMAC-SHA256 signs: `<timestamp>.<body>` (docs/webhooks.md has the recipe).
pub fn signed_content(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(timestamp.len() + 1 + body.len());
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b'.');
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(v: Value) -> BTreeMap<String, Map<String, Value>> {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn timeline_entries_map_onto_incident_events() {
        // spec: RSP-371, RSP-002
        assert_eq!(
            incident_event_for_timeline("i_ack", &json!({})),
            Some("i_ack")
        );
        // spec: RSP-112 (OQ-29): add responders fires i_assign
        assert_eq!(
            incident_event_for_timeline("i_a_rspd", &json!({})),
            Some("i_assign")
        );
        // Only the target's i_merge fires; a source fires its i_rslv.
        assert_eq!(
            incident_event_for_timeline("i_merge", &json!({"source_incidents": []})),
            Some("i_merge")
        );
        assert_eq!(
            incident_event_for_timeline("i_merge", &json!({"target_incident": {}})),
            None
        );
        for silent in ["i_notify", "i_wr_create", "i_m_flapping", "a_merge"] {
            assert_eq!(incident_event_for_timeline(silent, &json!({})), None);
        }
        assert_eq!(
            alert_event_for_timeline("a_merge", &json!({"alert_id": "a1"})),
            Some(("a_merge", "a1".to_string()))
        );
    }

    #[test]
    fn subscription_filters_by_state_type_and_channel() {
        // spec: RSP-378
        let mut s = Subscription {
            kind: Kind::Incident,
            enabled: true,
            event_types: vec![],
            channel_ids: vec![],
        };
        assert!(s.wants("i_new", 0));
        assert!(!s.wants("a_new", 0));
        s.event_types = vec!["i_ack".into()];
        assert!(!s.wants("i_new", 5));
        assert!(s.wants("i_ack", 5));
        s.channel_ids = vec![7];
        assert!(!s.wants("i_ack", 5));
        assert!(!s.wants("i_ack", 0));
        assert!(s.wants("i_ack", 7));
        s.enabled = false;
        assert!(!s.wants("i_ack", 7));
    }

    #[test]
    fn alert_webhooks_need_event_types_and_types_must_match_the_kind() {
        // spec: ING-253, RSP-372
        assert!(check_event_types(Kind::Alert, &[]).is_err());
        assert!(check_event_types(Kind::Incident, &[]).is_ok());
        assert!(check_event_types(Kind::Alert, &["i_new".into()]).is_err());
        assert!(check_event_types(Kind::Alert, &["a_merge".into()]).is_ok());
        let e = check_event_types(Kind::Incident, &["i_bogus".into()]).unwrap_err();
        assert!(e.starts_with("event_types:"), "{e}");
    }

    #[test]
    fn custom_body_keeps_types_for_whole_placeholders_and_text_inside_strings() {
        // spec: RSP-376 (the worked example of the Flashduty docs)
        let payload = json!({
            "event_type": "i_new",
            "incident": {
                "title": "cpu", "alert_cnt": 3, "labels": {"a": "b"},
                "responders": [{"email": "x@y.z"}], "acked": true,
            }
        });
        let body = r#"{"event": "{{event_type}}", "n": "{{incident.alert_cnt}}",
            "labels": "{{incident.labels}}", "who": "{{incident.responders.0.email}}",
            "text": "Incident: {{incident.title}} ({{incident.alert_cnt}}) {{incident.acked}} {{incident.labels}}",
            "missing": "{{incident.nope}}", "mixed_missing": "x {{nope.deeper}} y", "list": ["{{incident.title}}", 1]}"#;
        let out = render_body(body, &payload, &BTreeMap::new());
        assert_eq!(
            out,
            json!({
                "event": "i_new", "n": 3, "labels": {"a": "b"}, "who": "x@y.z",
                "text": "Incident: cpu (3) true {\"a\":\"b\"}",
                "missing": "{{incident.nope}}", "mixed_missing": "x {{nope.deeper}} y",
                "list": ["cpu", 1],
            })
        );
        assert_eq!(render_body("", &payload, &BTreeMap::new()), payload);
        assert!(check_custom_body("{not json").is_err());
        assert!(check_custom_body("").is_ok());
    }

    #[test]
    fn value_mapping_replaces_hits_and_passes_misses() {
        // spec: RSP-377 (the severity/progress example of the Flashduty docs)
        let m = mapping(json!({
            "incident.incident_severity": {"Critical": "P0", "Warning": "P1", "Info": "P2"},
            "incident.progress": {"Triggered": "open", "Processing": {"code": 2}},
        }));
        let body = r#"{"severity": "{{incident.incident_severity}}", "status": "{{incident.progress}}", "t": "sev={{incident.incident_severity}}"}"#;
        let p = json!({"incident": {"incident_severity": "Critical", "progress": "Processing"}});
        assert_eq!(
            render_body(body, &p, &m),
            json!({"severity": "P0", "status": {"code": 2}, "t": "sev=P0"})
        );
        let p = json!({"incident": {"incident_severity": "Major", "progress": "Closed"}});
        assert_eq!(
            render_body(body, &p, &m),
            json!({"severity": "Major", "status": "Closed", "t": "sev=Major"})
        );
    }

    #[test]
    fn only_pre_send_timeouts_io_timeouts_and_eof_are_retried_once_after_a_second() {
        // spec: RSP-374, ING-252
        let now = 10_000;
        for f in [
            TransportFailure::TimeoutBeforeSent,
            TransportFailure::IoTimeout,
            TransportFailure::UnexpectedEof,
        ] {
            let at = retry_after(Some(f), 1, now, 0.0);
            assert_eq!(at, Some(now + 1_000), "{f:?}");
            let at = retry_after(Some(f), 1, now, 1.0).unwrap_or(0);
            assert!((now + 1_000..=now + 1_100).contains(&at), "{at}");
            assert_eq!(retry_after(Some(f), 2, now, 0.0), None, "one retry only");
        }
        assert_eq!(
            retry_after(Some(TransportFailure::TimeoutAwaitingHeaders), 1, now, 0.0),
            None
        );
        assert_eq!(
            retry_after(Some(TransportFailure::Other), 1, now, 0.0),
            None
        );
        // An HTTP error status is no transport failure: never retried.
        assert_eq!(retry_after(None, 1, now, 0.0), None);
        assert_eq!(backoff_ms(2, 0.0), 2_000);
    }
}
