//! PagerDuty Events API compatibility (`pagerduty`, ingest.md §3.6): one endpoint serves
//! Events API v2 (`routing_key` / `event_action`) and v1 (`service_key` / `event_type`).
//!
//! The server answers in PagerDuty's own shapes, so this module returns the [`Version`] and
//! the dedup key alongside the event. Acknowledge events are accepted and produce no event.
//! The random key for a trigger without one comes from the caller (this crate does no I/O).

use klaxon_core::error::ApiError;
use klaxon_core::model::{NewEvent, Status};
use klaxon_core::standard::{label_text, parse_images};
use serde_json::{Map, Value, json};

use crate::Context;
use crate::common::{
    Draft, compact, event_time, iso_seconds, non_empty, object, opt_object, opt_text, source_key,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// What one PagerDuty request yields.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub version: Version,
    /// `dedup_key` (v2) / `incident_key` (v1) to answer with.
    pub key: String,
    /// `None` for an acknowledge (accepted, ignored).
    pub event: Option<NewEvent>,
}

/// v2 if the body has `routing_key` or `event_action`; v1 if `service_key` or `event_type`.
pub fn detect(body: &Value) -> Result<Version, ApiError> {
    let obj = object(body, "request body")?;
    if obj.contains_key("routing_key") || obj.contains_key("event_action") {
        Ok(Version::V2)
    } else if obj.contains_key("service_key") || obj.contains_key("event_type") {
        Ok(Version::V1)
    } else {
        Err(ApiError::invalid(
            "not a PagerDuty event: expected routing_key/event_action (v2) or \
             service_key/event_type (v1)",
        ))
    }
}

/// The integration key carried in the body, used when the query has none (ING-005).
pub fn body_key(body: &Value, version: Version) -> Option<&str> {
    let field = match version {
        Version::V2 => "routing_key",
        Version::V1 => "service_key",
    };
    body.get(field)
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
}

/// `custom_details` / `details`: a string as is; an object as `key: value` lines sorted by
/// key (non-strings as compact JSON); absent → "".
fn render_details(details: Option<&Value>) -> String {
    match details {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            keys.iter()
                .map(|k| {
                    let v = o.get(*k).and_then(label_text).unwrap_or_default();
                    format!("{k}: {v}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        Some(other) => other.to_string(),
    }
}

/// Each member of an object `details` as a label (nested values as compact JSON).
fn detail_labels(draft: &mut Draft, details: Option<&Value>) {
    if let Some(Value::Object(o)) = details {
        for (k, v) in o {
            if let Some(t) = label_text(v) {
                draft.derive(k, t);
            }
        }
    }
}

pub fn parse(
    body: &Value,
    version: Version,
    ctx: &Context<'_>,
    random_key: &str,
) -> Result<Outcome, ApiError> {
    let obj = object(body, "request body")?;
    match version {
        Version::V2 => v2(obj, ctx, random_key),
        Version::V1 => v1(obj, ctx, random_key),
    }
}

#[derive(PartialEq)]
enum Action {
    Trigger,
    Resolve,
    Acknowledge,
}

fn action(obj: &Map<String, Value>, field: &str) -> Result<Action, ApiError> {
    match opt_text(obj, field, field)?.as_deref().map(str::trim) {
        Some("trigger") => Ok(Action::Trigger),
        Some("resolve") => Ok(Action::Resolve),
        Some("acknowledge") => Ok(Action::Acknowledge),
        Some(_) => Err(ApiError::invalid(format!(
            "{field} must be trigger, acknowledge or resolve"
        ))),
        None => Err(ApiError::invalid(format!("{field} is required"))),
    }
}

/// The key: given (≤ 255), generated for a trigger, required otherwise.
fn key(
    obj: &Map<String, Value>,
    field: &str,
    action: &Action,
    random_key: &str,
) -> Result<String, ApiError> {
    match non_empty(obj, field, field)? {
        Some(k) => source_key(k, field),
        None if *action == Action::Trigger => Ok(random_key.to_owned()),
        None => Err(ApiError::invalid(format!("{field} is required"))),
    }
}

fn v2(obj: &Map<String, Value>, ctx: &Context<'_>, random_key: &str) -> Result<Outcome, ApiError> {
    let action = action(obj, "event_action")?;
    let key = key(obj, "dedup_key", &action, random_key)?;
    let done = |event| Outcome {
        version: Version::V2,
        key: key.clone(),
        event,
    };
    if action == Action::Acknowledge {
        return Ok(done(None));
    }
    let empty = Map::new();
    let payload = match (opt_object(obj, "payload", "payload")?, &action) {
        (Some(p), _) => p,
        (None, Action::Trigger) => return Err(ApiError::invalid("payload is required")),
        (None, _) => &empty,
    };
    let text = |name: &str| {
        opt_text(payload, name, &format!("payload.{name}")).map(Option::unwrap_or_default)
    };
    let severity_text = text("severity")?;
    let status = match action {
        Action::Resolve => Status::Ok,
        _ => match severity_text.trim().to_ascii_lowercase().as_str() {
            "critical" => Status::Critical,
            "error" | "warning" => Status::Warning,
            "info" => Status::Info,
            _ => {
                return Err(ApiError::invalid(
                    "payload.severity must be critical, error, warning or info",
                ));
            }
        },
    };
    let summary = text("summary")?;
    let source = text("source")?;
    if status.is_trigger() {
        if summary.trim().is_empty() {
            return Err(ApiError::invalid("payload.summary is required"));
        }
        if source.trim().is_empty() {
            return Err(ApiError::invalid("payload.source is required"));
        }
    }
    let mut draft = Draft::new(status, ctx.received_at);
    if !status.is_trigger() {
        draft.severity = None;
    }
    draft.title = summary;
    draft.alert_key = key.clone();
    let details = payload.get("custom_details");
    draft.description = render_details(details);

    let class = text("class")?;
    for name in ["source", "component", "group", "class"] {
        draft.derive(name, text(name)?);
    }
    draft.derive("resource", source);
    draft.derive("check", class);
    draft.derive("severity", severity_text);
    for name in ["client", "client_url"] {
        draft.derive(name, opt_text(obj, name, name)?.unwrap_or_default());
    }
    detail_labels(&mut draft, details);
    if let Some(Value::Array(links)) = obj.get("links") {
        let hrefs = links
            .iter()
            .filter_map(|l| l.get("href").and_then(Value::as_str));
        for (i, href) in hrefs.take(5).enumerate() {
            draft.derive(&format!("link_{}", i + 1), href);
        }
    }
    draft.images = parse_images(obj.get("images"));
    let ts = text("timestamp")?;
    draft.event_time = event_time(iso_seconds(&ts), ctx.received_at);
    draft.raw = compact(&Value::Object(without_key(obj, "routing_key")));
    Ok(done(Some(draft.finish(ctx))))
}

fn v1(obj: &Map<String, Value>, ctx: &Context<'_>, random_key: &str) -> Result<Outcome, ApiError> {
    let action = action(obj, "event_type")?;
    let key = key(obj, "incident_key", &action, random_key)?;
    let done = |event| Outcome {
        version: Version::V1,
        key: key.clone(),
        event,
    };
    if action == Action::Acknowledge {
        return Ok(done(None));
    }
    let status = if action == Action::Resolve {
        Status::Ok
    } else {
        Status::Warning
    };
    let description = opt_text(obj, "description", "description")?.unwrap_or_default();
    if status.is_trigger() && description.trim().is_empty() {
        return Err(ApiError::invalid("description is required"));
    }
    let mut draft = Draft::new(status, ctx.received_at);
    if !status.is_trigger() {
        draft.severity = None;
    }
    draft.title = description;
    draft.alert_key = key.clone();
    let details = obj.get("details");
    draft.description = render_details(details);
    for name in ["client", "client_url"] {
        draft.derive(name, opt_text(obj, name, name)?.unwrap_or_default());
    }
    detail_labels(&mut draft, details);
    let mut images = Vec::new();
    let mut link = 0;
    if let Some(Value::Array(contexts)) = obj.get("contexts") {
        for c in contexts {
            let field = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("");
            match field("type") {
                "link" if link < 5 && !field("href").is_empty() => {
                    link += 1;
                    draft.derive(&format!("link_{link}"), field("href"));
                }
                "image" => images.push(json!({
                    "src": field("src"),
                    "href": field("href"),
                    "alt": field("text"),
                })),
                _ => {}
            }
        }
    }
    draft.images = parse_images(Some(&Value::Array(images)));
    draft.raw = compact(&Value::Object(without_key(obj, "service_key")));
    Ok(done(Some(draft.finish(ctx))))
}

/// The body without its secret key member, for `raw` (keys are never shown again).
fn without_key(obj: &Map<String, Value>, field: &str) -> Map<String, Value> {
    let mut m = obj.clone();
    m.remove(field);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaxon_core::model::Severity;

    const NOW: i64 = 1_700_000_000_000;
    const RANDOM: &str = "0123456789abcdef0123456789abcdef";

    fn ctx() -> Context<'static> {
        Context {
            integration_id: 4,
            query_labels: &[],
            received_at: NOW,
            console_url: None,
        }
    }

    fn run(body: &Value) -> Result<Outcome, ApiError> {
        parse(body, detect(body)?, &ctx(), RANDOM)
    }

    fn trigger_v2() -> Value {
        json!({
            "routing_key": "ffffffffffffffffffffffffffffffff",
            "event_action": "trigger",
            "dedup_key": "srv01/HTTP",
            "payload": {
                "summary": "DISK at 99% on machine prod-datapipe03.example.com",
                "timestamp": "2023-11-14T22:10:00.000+0000",
                "severity": "error",
                "source": "prod-datapipe03.example.com",
                "component": "mysql",
                "group": "prod-datapipe",
                "class": "disk",
                "custom_details": {"free space": "1%", "ping time": 1500, "load avg": {"1m": 0.8}}
            },
            "images": [{"src": "https://chart.example/x.png", "href": "https://example.com/", "alt": "Example"}],
            "links": [{"href": "https://example.com/", "text": "Link text"}],
            "client": "Sample Monitoring Service",
            "client_url": "https://monitoring.example.com"
        })
    }

    // spec: ING-053, ING-028, ING-029, Q-24, §3.6 v2 table — trigger mapping, labels, images, timestamp.
    #[test]
    fn v2_trigger() {
        let out = run(&trigger_v2()).unwrap();
        assert_eq!(out.version, Version::V2);
        assert_eq!(out.key, "srv01/HTTP");
        let e = out.event.unwrap();
        assert_eq!(e.event_status, Status::Warning);
        assert_eq!(
            e.title,
            "DISK at 99% on machine prod-datapipe03.example.com"
        );
        assert_eq!(
            e.description,
            "free space: 1%\nload avg: {\"1m\":0.8}\nping time: 1500"
        );
        assert_eq!(e.labels["resource"], "prod-datapipe03.example.com");
        assert_eq!(e.labels["check"], "disk");
        assert_eq!(e.labels["component"], "mysql");
        assert_eq!(e.labels["severity"], "error");
        assert_eq!(e.labels["free space"], "1%");
        assert_eq!(e.labels["load avg"], "{\"1m\":0.8}");
        assert_eq!(e.labels["link_1"], "https://example.com/");
        assert_eq!(e.labels["client"], "Sample Monitoring Service");
        assert_eq!(e.images.len(), 1);
        assert_eq!(e.images[0].alt, "Example");
        assert_eq!(e.event_time, 1_699_999_800_000);
        assert!(
            !e.raw.contains("ffffffff"),
            "raw never keeps the routing key"
        );
    }

    // spec: ING-051, §3.6 v2 severity table.
    #[test]
    fn v2_severity_table() {
        for (sev, want) in [
            ("critical", Status::Critical),
            ("error", Status::Warning),
            ("Warning", Status::Warning),
            ("info", Status::Info),
        ] {
            let mut b = trigger_v2();
            b["payload"]["severity"] = json!(sev);
            assert_eq!(run(&b).unwrap().event.unwrap().event_status, want);
        }
    }

    // spec: ING-050, §3.6 — resolve is Ok; acknowledge is accepted and ignored; trigger without a
    // dedup_key gets the caller's random key.
    #[test]
    fn v2_resolve_acknowledge_and_generated_key() {
        let resolve =
            json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "srv01/HTTP"});
        let out = run(&resolve).unwrap();
        let e = out.event.unwrap();
        assert_eq!(e.event_status, Status::Ok);
        assert_eq!(e.event_severity, None::<Severity>);
        assert_eq!(e.alert_key, "srv01/HTTP");
        let ack = json!({"routing_key": "k", "event_action": "acknowledge", "dedup_key": "x"});
        let out = run(&ack).unwrap();
        assert!(out.event.is_none());
        assert_eq!(out.key, "x");
        let mut b = trigger_v2();
        b.as_object_mut().unwrap().remove("dedup_key");
        assert_eq!(run(&b).unwrap().key, RANDOM);
    }

    // spec: ING-009, §3.6 validation — every refusal names the field.
    #[test]
    fn v2_validation() {
        let err = |b: Value| run(&b).unwrap_err().message;
        let mut b = trigger_v2();
        b["payload"]["severity"] = json!("fatal");
        assert_eq!(
            err(b),
            "payload.severity must be critical, error, warning or info"
        );
        let mut b = trigger_v2();
        b["payload"].as_object_mut().unwrap().remove("summary");
        assert_eq!(err(b), "payload.summary is required");
        let mut b = trigger_v2();
        b["payload"]["source"] = json!("  ");
        assert_eq!(err(b), "payload.source is required");
        let mut b = trigger_v2();
        b.as_object_mut().unwrap().remove("payload");
        assert_eq!(err(b), "payload is required");
        assert_eq!(
            err(json!({"routing_key": "k", "event_action": "resolve"})),
            "dedup_key is required"
        );
        assert_eq!(
            err(json!({"routing_key": "k", "event_action": "snooze"})),
            "event_action must be trigger, acknowledge or resolve"
        );
        assert!(err(json!({"hello": 1})).starts_with("not a PagerDuty event"));
        let mut b = trigger_v2();
        b["dedup_key"] = json!("k".repeat(256));
        assert_eq!(err(b), "dedup_key is too long");
    }

    #[test]
    fn body_keys() {
        assert_eq!(
            body_key(&trigger_v2(), Version::V2),
            Some("ffffffffffffffffffffffffffffffff")
        );
        assert_eq!(body_key(&json!({"service_key": ""}), Version::V1), None);
    }

    // spec: ING-028, ING-053, §3.6 v1 table.
    #[test]
    fn v1_trigger_and_resolve() {
        let b = json!({
            "service_key": "abc",
            "event_type": "trigger",
            "incident_key": "srv01/HTTP",
            "description": "FAILURE for production/HTTP on machine srv01.acme.com",
            "client": "Sample Monitoring Service",
            "client_url": "https://monitoring.service.com",
            "details": {"ping time": "1500ms", "load avg": 0.75},
            "contexts": [
                {"type": "link", "href": "http://acme.pagerduty.com"},
                {"type": "image", "src": "https://chart.googleapis.com/chart?chs=600x400", "text": "chart"}
            ]
        });
        let out = run(&b).unwrap();
        assert_eq!(out.version, Version::V1);
        let e = out.event.unwrap();
        assert_eq!(e.event_status, Status::Warning);
        assert_eq!(
            e.title,
            "FAILURE for production/HTTP on machine srv01.acme.com"
        );
        assert_eq!(e.description, "load avg: 0.75\nping time: 1500ms");
        assert_eq!(e.labels["link_1"], "http://acme.pagerduty.com");
        assert_eq!(e.labels["load avg"], "0.75");
        assert_eq!(e.images[0].alt, "chart");
        let r = run(
            &json!({"service_key": "abc", "event_type": "resolve", "incident_key": "srv01/HTTP"}),
        )
        .unwrap();
        assert_eq!(r.event.unwrap().event_status, Status::Ok);
        let err = run(&json!({"service_key": "abc", "event_type": "resolve"})).unwrap_err();
        assert_eq!(err.message, "incident_key is required");
        let err = run(&json!({"service_key": "abc", "event_type": "trigger"})).unwrap_err();
        assert_eq!(err.message, "description is required");
    }

    // spec: ING-024 — oversize summary and details are cut; unicode keys are used verbatim.
    #[test]
    fn oversize_and_unicode() {
        let mut b = trigger_v2();
        b["payload"]["summary"] = json!("ä".repeat(1000));
        b["payload"]["custom_details"] = json!("ö".repeat(5000));
        b["dedup_key"] = json!("服务/HTTP");
        let out = run(&b).unwrap();
        assert_eq!(out.key, "服务/HTTP");
        let e = out.event.unwrap();
        assert_eq!(e.title.chars().count(), 512);
        assert_eq!(e.description.chars().count(), 2048);
        assert_eq!(e.alert_key, "服务/HTTP");
    }
}
