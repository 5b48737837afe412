//! Grafana (`grafana`, ingest.md §3.3): Grafana Alerting (unified, v9+, an Alertmanager-like
//! body with an `alerts` array) and legacy dashboard alerting (v4–v8, one notification with
//! `ruleId`, `evalMatches`, `state`).

use klaxon_core::error::ApiError;
use klaxon_core::model::{Image, NewEvent, Status};
use klaxon_core::standard::hash_parts;
use serde_json::{Map, Value};

use crate::Context;
use crate::alertmanager::{Flavour, alerts_of};
use crate::common::{Draft, compact, is_http_url, non_empty, object, opt_object, opt_text, pairs};

/// Either Grafana format; anything else → 400.
pub fn parse(body: &Value, ctx: &Context<'_>) -> Result<Vec<NewEvent>, ApiError> {
    let obj = object(body, "request body")?;
    if obj.contains_key("alerts") {
        return alerts_of(obj, Flavour::Grafana, ctx);
    }
    if ["ruleId", "evalMatches", "state"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Ok(legacy(obj, ctx)?.into_iter().collect());
    }
    Err(ApiError::invalid(
        "not a Grafana notification: expected alerts (Grafana Alerting) or ruleId, evalMatches \
         or state (legacy alerting)",
    ))
}

/// Legacy alerting: one notification, at most one event. `paused`, `pending` and unknown
/// states are accepted and ignored (§3.3 table).
fn legacy(obj: &Map<String, Value>, ctx: &Context<'_>) -> Result<Option<NewEvent>, ApiError> {
    let state = opt_text(obj, "state", "state")?.unwrap_or_default();
    let status = match state.trim().to_ascii_lowercase().as_str() {
        "alerting" => Status::Warning,
        "no_data" => Status::Critical,
        "ok" => Status::Ok,
        _ => return Ok(None),
    };
    let mut draft = Draft::new(status, ctx.received_at);
    if !status.is_trigger() {
        draft.severity = None;
    }

    let rule_name = non_empty(obj, "ruleName", "ruleName")?;
    let title = non_empty(obj, "title", "title")?.map(|t| {
        let t = t.trim_start();
        ["[Alerting] ", "[OK] ", "[No Data] "]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t)
            .to_owned()
    });
    draft.title = rule_name
        .clone()
        .or(title.filter(|t| !t.trim().is_empty()))
        .unwrap_or_else(|| "Grafana Alert".to_owned());
    draft.description = opt_text(obj, "message", "message")?.unwrap_or_default();

    let text = |field: &str| opt_text(obj, field, field).map(Option::unwrap_or_default);
    let (org, dashboard, panel, rule) = (
        text("orgId")?,
        text("dashboardId")?,
        text("panelId")?,
        text("ruleId")?,
    );
    draft.alert_key = hash_parts(&["grafana-legacy", &org, &dashboard, &panel, &rule]);

    if let Some(tags) = opt_object(obj, "tags", "tags")? {
        draft.labels = pairs(tags);
    }
    draft.derive("rule_id", rule);
    draft.derive("rule_name", rule_name.clone().unwrap_or_default());
    draft.derive("rule_url", text("ruleUrl")?);
    draft.derive("dashboard_id", dashboard);
    draft.derive("panel_id", panel);
    draft.derive("org_id", org);
    let first_match = match obj.get("evalMatches") {
        None | Some(Value::Null) => None,
        Some(Value::Array(m)) => match m.first() {
            None => None,
            Some(first) => Some(object(first, "evalMatches[0]")?),
        },
        Some(_) => return Err(ApiError::invalid("evalMatches must be an array")),
    };
    let mut metric = String::new();
    if let Some(m) = first_match {
        metric = opt_text(m, "metric", "evalMatches[0].metric")?.unwrap_or_default();
        draft.derive("metric", metric.clone());
        let value = opt_text(m, "value", "evalMatches[0].value")?;
        draft.derive("value", value.unwrap_or_default());
        if let Some(tags) = opt_object(m, "tags", "evalMatches[0].tags")? {
            draft.derived.extend(pairs(tags));
        }
    }
    draft.derive("check", rule_name.unwrap_or_default());
    draft.derive("resource", metric);

    if let Some(url) = non_empty(obj, "imageUrl", "imageUrl")?
        && is_http_url(&url)
        && url.chars().count() <= 256
    {
        draft.images.push(Image {
            alt: "grafana".to_owned(),
            src: url,
            href: String::new(),
        });
    }
    draft.raw = compact(&Value::Object(obj.clone()));
    Ok(Some(draft.finish(ctx)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaxon_core::model::Severity;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn ctx() -> Context<'static> {
        Context {
            integration_id: 3,
            query_labels: &[],
            received_at: NOW,
            console_url: None,
        }
    }

    fn unified(alert: Value) -> Value {
        json!({
            "receiver": "klaxon",
            "status": "firing",
            "orgId": 1,
            "alerts": [alert],
            "groupLabels": {},
            "commonLabels": {"alertname": "ignored-for-grafana"},
            "commonAnnotations": {},
            "externalURL": "http://grafana:3000/",
            "version": "1",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
            "title": "[FIRING:1] Disk full",
            "state": "alerting",
            "message": "**Firing**"
        })
    }

    fn grafana_alert() -> Value {
        json!({
            "status": "firing",
            "labels": {"alertname": "DiskFull", "grafana_folder": "infra", "instance": "db-1"},
            "annotations": {"summary": "disk / at 95%"},
            "startsAt": "2023-11-14T22:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://grafana:3000/alerting/grafana/abc/view",
            "fingerprint": "0f1e2d3c4b5a6978",
            "silenceURL": "http://grafana:3000/alerting/silence/new",
            "dashboardURL": "http://grafana:3000/d/abc",
            "panelURL": "http://grafana:3000/d/abc?viewPanel=2",
            "values": {"B": 95.1},
            "valueString": "[ var='B' labels={} value=95.1 ]",
            "imageURL": "https://grafana.example/render/abc.png"
        })
    }

    // spec: ING-053, ING-051 — unified alert: default Warning, Grafana's URL labels, image.
    #[test]
    fn unified_firing_alert() {
        let events = parse(&unified(grafana_alert()), &ctx()).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.event_status, Status::Warning);
        assert_eq!(e.title, "DiskFull");
        assert_eq!(e.description, "disk / at 95%");
        assert_eq!(e.alert_key, "0f1e2d3c4b5a6978");
        assert_eq!(e.labels["check"], "DiskFull");
        assert_eq!(e.labels["resource"], "db-1");
        assert_eq!(e.labels["dashboard_url"], "http://grafana:3000/d/abc");
        assert_eq!(
            e.labels["panel_url"],
            "http://grafana:3000/d/abc?viewPanel=2"
        );
        assert_eq!(
            e.labels["silence_url"],
            "http://grafana:3000/alerting/silence/new"
        );
        assert_eq!(e.labels["value_string"], "[ var='B' labels={} value=95.1 ]");
        assert_eq!(e.labels["external_url"], "http://grafana:3000/");
        assert_eq!(e.images.len(), 1);
        assert_eq!(e.images[0].alt, "grafana");
        assert_eq!(e.images[0].src, "https://grafana.example/render/abc.png");
    }

    // spec: ING-050 — unified resolved with a severity label; valueString as description
    // fallback; top-level title as title fallback; non-http image dropped (ING-028).
    #[test]
    fn unified_resolved_and_fallbacks() {
        let mut a = grafana_alert();
        a["status"] = json!("resolved");
        a["labels"] = json!({"severity": "critical"});
        a["annotations"] = json!({});
        a["imageURL"] = json!("file:///etc/passwd");
        a.as_object_mut().unwrap().remove("fingerprint");
        let e = &parse(&unified(a), &ctx()).unwrap()[0];
        assert_eq!(e.event_status, Status::Ok);
        assert_eq!(e.event_severity, Some(Severity::Critical));
        assert_eq!(e.title, "[FIRING:1] Disk full");
        assert_eq!(e.description, "[ var='B' labels={} value=95.1 ]");
        assert!(e.images.is_empty());
        assert_eq!(
            e.alert_key,
            hash_parts(&["grafana", "severity\u{1e}critical"])
        );
    }

    fn legacy_body(state: &str) -> Value {
        json!({
            "dashboardId": 1,
            "evalMatches": [{"value": 100, "metric": "High value", "tags": {"host": "h1"}}],
            "imageUrl": "https://grafana.com/assets/img/blog/mixed_styles.png",
            "message": "Notification Message",
            "orgId": 1,
            "panelId": 2,
            "ruleId": 1,
            "ruleName": "Panel Title alert",
            "ruleUrl": "http://localhost:3000/d/hZ7BuVbWz/test-dashboard?fullscreen&edit&tab=alert&panelId=2&orgId=1",
            "state": state,
            "tags": {"tag name": "tag value"},
            "title": "[Alerting] Panel Title alert"
        })
    }

    // spec: ING-051, ING-053, §3.3 legacy state table and labels.
    #[test]
    fn legacy_alerting_no_data_ok() {
        let e = &parse(&legacy_body("alerting"), &ctx()).unwrap()[0];
        assert_eq!(e.event_status, Status::Warning);
        assert_eq!(e.title, "Panel Title alert");
        assert_eq!(e.description, "Notification Message");
        assert_eq!(
            e.alert_key,
            hash_parts(&["grafana-legacy", "1", "1", "2", "1"])
        );
        assert_eq!(e.labels["tag name"], "tag value");
        assert_eq!(e.labels["rule_id"], "1");
        assert_eq!(e.labels["metric"], "High value");
        assert_eq!(e.labels["value"], "100");
        assert_eq!(e.labels["host"], "h1");
        assert_eq!(e.labels["check"], "Panel Title alert");
        assert_eq!(e.labels["resource"], "High value");
        assert_eq!(e.images[0].alt, "grafana");

        let e = &parse(&legacy_body("no_data"), &ctx()).unwrap()[0];
        assert_eq!(e.event_status, Status::Critical);
        let ok = &parse(&legacy_body("ok"), &ctx()).unwrap()[0];
        assert_eq!(ok.event_status, Status::Ok);
        assert_eq!(ok.event_severity, None);
        assert_eq!(ok.alert_key, e.alert_key);
    }

    // spec: ING-050, §3.3 — paused/pending are accepted and ignored; title prefix stripped.
    #[test]
    fn legacy_ignored_states_and_title_prefix() {
        assert!(parse(&legacy_body("paused"), &ctx()).unwrap().is_empty());
        assert!(parse(&legacy_body("pending"), &ctx()).unwrap().is_empty());
        let mut b = legacy_body("ok");
        b.as_object_mut().unwrap().remove("ruleName");
        b["title"] = json!("[OK] Panel Title alert");
        assert_eq!(parse(&b, &ctx()).unwrap()[0].title, "Panel Title alert");
    }

    // spec: ING-009 — neither format → 400; wrong types name the field.
    #[test]
    fn malformed_grafana_bodies() {
        let err = |b: Value| parse(&b, &ctx()).unwrap_err().message;
        assert!(err(json!({"hello": 1})).starts_with("not a Grafana notification"));
        assert_eq!(err(json!("x")), "request body must be a JSON object");
        let mut b = legacy_body("alerting");
        b["evalMatches"] = json!("x");
        assert_eq!(err(b), "evalMatches must be an array");
        let mut b = legacy_body("alerting");
        b["tags"] = json!([1]);
        assert_eq!(err(b), "tags must be an object");
        assert_eq!(err(json!({"alerts": 5})), "alerts must be an array");
    }

    // spec: ING-024, ING-028 — oversize legacy message cut; an image URL over 256 characters
    // is dropped, not an error.
    #[test]
    fn oversize_and_unicode() {
        let mut b = legacy_body("alerting");
        b["message"] = json!("日".repeat(3000));
        b["ruleName"] = json!("面板告警");
        b["imageUrl"] = json!(format!("https://g/{}", "a".repeat(300)));
        let e = &parse(&b, &ctx()).unwrap()[0];
        assert_eq!(e.description.chars().count(), 2048);
        assert_eq!(e.title, "面板告警");
        assert!(e.images.is_empty());
    }
}
