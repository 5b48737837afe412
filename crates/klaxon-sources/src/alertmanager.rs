//! Prometheus Alertmanager (`prometheus`, ingest.md §3.2): the webhook body (version 4) that
//! Alertmanager's `webhook_configs` send, and the postable-alerts array that Prometheus sends
//! to an Alertmanager's `POST /api/v2/alerts` (Klaxon serves that API too, so Prometheus can
//! point at it directly).
//!
//! Grafana Alerting (§3.3) sends the same shape with a few more fields; it reuses
//! [`convert`] with its own [`Flavour`].

use klaxon_core::error::ApiError;
use klaxon_core::model::{Image, NewEvent, Status};
use klaxon_core::standard::{canon_labels, hash_parts};
use serde_json::{Map, Value};

use crate::Context;
use crate::common::{
    Draft, compact, event_time, is_http_url, iso_seconds, non_empty, number, object, opt_object,
    opt_text, pairs, prometheus_status, source_key,
};

/// Where Prometheus- and Grafana-shaped alerts differ (§3.2 vs §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Prometheus,
    Grafana,
}

/// The group-level fields an alert is read with.
pub(crate) struct Group<'a> {
    /// The whole body, for `commonLabels`, `externalURL`, `title` and the raw item.
    pub body: &'a Map<String, Value>,
}

/// Alertmanager's webhook body → one event per element of `alerts`, in order (§3.2).
pub fn parse_webhook(body: &Value, ctx: &Context<'_>) -> Result<Vec<NewEvent>, ApiError> {
    let obj = object(body, "request body")?;
    alerts_of(obj, Flavour::Prometheus, ctx)
}

/// The `alerts` array of an Alertmanager-shaped group, converted in order.
pub(crate) fn alerts_of(
    obj: &Map<String, Value>,
    flavour: Flavour,
    ctx: &Context<'_>,
) -> Result<Vec<NewEvent>, ApiError> {
    let alerts = match obj.get("alerts") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => return Err(ApiError::invalid("alerts is required")),
        Some(_) => return Err(ApiError::invalid("alerts must be an array")),
    };
    let group = Group { body: obj };
    alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| convert(&group, alert, &format!("alerts[{i}]"), flavour, ctx))
        .collect()
}

/// One Alertmanager/Grafana alert → one event.
pub(crate) fn convert(
    group: &Group<'_>,
    alert: &Value,
    path: &str,
    flavour: Flavour,
    ctx: &Context<'_>,
) -> Result<NewEvent, ApiError> {
    let a = object(alert, path)?;
    let empty = Map::new();
    let labels = opt_object(a, "labels", &format!("{path}.labels"))?.unwrap_or(&empty);
    let annotations =
        opt_object(a, "annotations", &format!("{path}.annotations"))?.unwrap_or(&empty);
    let resolved = match a.get("status") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("resolved"),
        Some(_) => return Err(ApiError::invalid(format!("{path}.status must be a string"))),
    };

    // Severity: the first non-empty of severity / priority / level, through the table.
    let mut severity_text = None;
    for field in ["severity", "priority", "level"] {
        if let Some(v) = non_empty(labels, field, &format!("{path}.labels.{field}"))? {
            severity_text = Some(v);
            break;
        }
    }
    let table = severity_text.as_deref().map(|v| prometheus_status(Some(v)));
    let status = if resolved {
        Status::Ok
    } else {
        // A firing alert labelled `ok` is a recovery (§3.2 table).
        table.unwrap_or(Status::Warning)
    };
    let mut draft = Draft::new(status, ctx.received_at);
    if !status.is_trigger() {
        // ING-050: the label's severity when it names one; otherwise processing decides.
        draft.severity = table.and_then(Status::severity);
    }

    let alertname = non_empty(labels, "alertname", &format!("{path}.labels.alertname"))?;
    let common_name = match flavour {
        Flavour::Prometheus => opt_object(group.body, "commonLabels", "commonLabels")?
            .map(|c| non_empty(c, "alertname", "commonLabels.alertname"))
            .transpose()?
            .flatten(),
        Flavour::Grafana => None,
    };
    let top_title = match flavour {
        Flavour::Grafana => non_empty(group.body, "title", "title")?,
        Flavour::Prometheus => None,
    };
    let check = alertname.clone().or(common_name.clone());
    draft.title = alertname
        .or(common_name)
        .or(top_title)
        .unwrap_or_else(|| match flavour {
            Flavour::Prometheus => "Prometheus Alert".to_owned(),
            Flavour::Grafana => "Grafana Alert".to_owned(),
        });

    let mut description = None;
    for field in ["description", "summary", "message"] {
        if let Some(v) = non_empty(annotations, field, &format!("{path}.annotations.{field}"))? {
            description = Some(v);
            break;
        }
    }
    if description.is_none() && flavour == Flavour::Grafana {
        description = non_empty(a, "valueString", &format!("{path}.valueString"))?;
    }
    draft.description = description.unwrap_or_default();

    let label_pairs = pairs(labels);
    let fingerprint = non_empty(a, "fingerprint", &format!("{path}.fingerprint"))?;
    draft.alert_key = match fingerprint {
        Some(f) => source_key(f, &format!("{path}.fingerprint"))?,
        None => {
            let canon = canon_labels(&label_pairs.iter().cloned().collect());
            let prefix = match flavour {
                Flavour::Prometheus => "prom",
                Flavour::Grafana => "grafana",
            };
            hash_parts(&[prefix, &canon])
        }
    };

    // Labels: the alert's, then annotations (except `timestamp`) as a lower-precedence part
    // of the source's own labels, then the derived ones.
    draft.labels = label_pairs;
    draft.labels.extend(
        pairs(annotations)
            .into_iter()
            .filter(|(k, _)| k != "timestamp"),
    );
    draft.derive("check", check.unwrap_or_default());
    let instance = opt_text(labels, "instance", &format!("{path}.labels.instance"))?;
    draft.derive("resource", instance.unwrap_or_default());
    let generator = opt_text(a, "generatorURL", &format!("{path}.generatorURL"))?;
    draft.derive("generator_url", generator.unwrap_or_default());
    let external = opt_text(group.body, "externalURL", "externalURL")?;
    draft.derive("external_url", external.unwrap_or_default());
    if flavour == Flavour::Grafana {
        for (label, field) in [
            ("dashboard_url", "dashboardURL"),
            ("panel_url", "panelURL"),
            ("silence_url", "silenceURL"),
            ("value_string", "valueString"),
        ] {
            let v = opt_text(a, field, &format!("{path}.{field}"))?;
            draft.derive(label, v.unwrap_or_default());
        }
        if let Some(url) = non_empty(a, "imageURL", &format!("{path}.imageURL"))?
            && is_http_url(&url)
            && url.chars().count() <= 256
        {
            draft.images.push(Image {
                alt: "grafana".to_owned(),
                src: url,
                href: String::new(),
            });
        }
    }

    // `annotations.timestamp` if it is a number; `startsAt`/`endsAt` are not used.
    draft.event_time = event_time(number(annotations.get("timestamp")), ctx.received_at);

    // ING-054: the item plus the group-level fields.
    let mut raw = group.body.clone();
    raw.insert("alerts".into(), Value::Array(vec![alert.clone()]));
    draft.raw = compact(&Value::Object(raw));
    Ok(draft.finish(ctx))
}

/// Prometheus's `POST /api/v2/alerts` body: a JSON array of postable alerts (`labels`,
/// `annotations`, `startsAt`, `endsAt`, `generatorURL`). Each becomes one event like a
/// webhook alert without a fingerprint (key `H("prom", canon(labels))`): an alert whose
/// `endsAt` is at or before the receive time is resolved, any other is firing. This is how
/// Alertmanager itself reads them: Prometheus sends firing alerts with `endsAt` in the future
/// and resolved ones with the time they stopped.
///
/// Validated like Alertmanager does: each element an object with a non-empty `labels` object;
/// `startsAt`/`endsAt` RFC 3339 when present, `endsAt` not before `startsAt`.
pub fn parse_postable(body: &Value, ctx: &Context<'_>) -> Result<Vec<NewEvent>, ApiError> {
    let items = body
        .as_array()
        .ok_or_else(|| ApiError::invalid("request body must be a JSON array of alerts"))?;
    let empty = Map::new();
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("[{i}]");
        let a = object(item, &path)?;
        match opt_object(a, "labels", &format!("{path}.labels"))? {
            Some(l) if !l.is_empty() => {}
            _ => {
                return Err(ApiError::invalid(format!(
                    "{path}.labels: at least one label pair required"
                )));
            }
        }
        let instant = |field: &str| -> Result<Option<f64>, ApiError> {
            match opt_text(a, field, &format!("{path}.{field}"))? {
                None => Ok(None),
                Some(t) if t.trim().is_empty() || t.starts_with("0001-01-01") => Ok(None),
                Some(t) => iso_seconds(&t).map(Some).ok_or_else(|| {
                    ApiError::invalid(format!("{path}.{field} is not an RFC 3339 time"))
                }),
            }
        };
        let starts = instant("startsAt")?;
        let ends = instant("endsAt")?;
        if let (Some(s), Some(e)) = (starts, ends)
            && e < s
        {
            return Err(ApiError::invalid(format!(
                "{path}: start time must be before end time"
            )));
        }
        let now_secs = (ctx.received_at / 1000) as f64;
        let resolved = ends.is_some_and(|e| e <= now_secs);
        let mut alert = a.clone();
        alert.insert(
            "status".into(),
            Value::String(if resolved { "resolved" } else { "firing" }.into()),
        );
        alert.remove("fingerprint");
        let group = Group { body: &empty };
        events.push(convert(
            &group,
            &Value::Object(alert),
            &path,
            Flavour::Prometheus,
            ctx,
        )?);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaxon_core::model::Severity;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn ctx<'a>(query: &'a [(String, String)]) -> Context<'a> {
        Context {
            integration_id: 7,
            query_labels: query,
            received_at: NOW,
            console_url: None,
        }
    }

    fn webhook(alerts: Value) -> Value {
        json!({
            "version": "4",
            "groupKey": "{}:{alertname=\"HighCPU\"}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "klaxon",
            "groupLabels": {"alertname": "HighCPU"},
            "commonLabels": {"alertname": "HighCPU", "job": "node"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts
        })
    }

    fn firing() -> Value {
        json!({
            "status": "firing",
            "labels": {"alertname": "HighCPU", "instance": "web-1:9100", "job": "node", "severity": "critical"},
            "annotations": {"summary": "CPU above 90%", "description": "CPU is 97% on web-1", "runbook": "https://wiki/cpu"},
            "startsAt": "2023-11-14T22:13:20Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=cpu",
            "fingerprint": "a1b2c3d4e5f60718"
        })
    }

    // spec: ING-050, ING-053 — a firing alert: severity from the label, title alertname,
    // description, fingerprint as key, labels + annotations + derived labels.
    #[test]
    fn firing_alert_becomes_a_critical_event() {
        let events = parse_webhook(&webhook(json!([firing()])), &ctx(&[])).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.event_status, Status::Critical);
        assert_eq!(e.event_severity, Some(Severity::Critical));
        assert_eq!(e.title, "HighCPU");
        assert_eq!(e.description, "CPU is 97% on web-1");
        assert_eq!(e.alert_key, "a1b2c3d4e5f60718");
        assert_eq!(e.labels["severity"], "critical");
        assert_eq!(e.labels["summary"], "CPU above 90%");
        assert_eq!(e.labels["runbook"], "https://wiki/cpu");
        assert_eq!(e.labels["check"], "HighCPU");
        assert_eq!(e.labels["resource"], "web-1:9100");
        assert_eq!(
            e.labels["generator_url"],
            "http://prometheus:9090/graph?g0.expr=cpu"
        );
        assert_eq!(e.labels["external_url"], "http://alertmanager:9093");
        assert_eq!(e.event_time, NOW);
        assert!(e.images.is_empty());
    }

    // spec: ING-050 — a resolved alert is Ok with the label's severity.
    #[test]
    fn resolved_alert_is_ok_and_keeps_label_severity() {
        let mut a = firing();
        a["status"] = json!("resolved");
        let e = &parse_webhook(&webhook(json!([a])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.event_status, Status::Ok);
        assert_eq!(e.event_severity, Some(Severity::Critical));
        assert_eq!(e.alert_key, "a1b2c3d4e5f60718");

        // Without a severity label the recovery's severity is left to processing.
        let mut b = firing();
        b["status"] = json!("resolved");
        b["labels"].as_object_mut().unwrap().remove("severity");
        let e = &parse_webhook(&webhook(json!([b])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.event_status, Status::Ok);
        assert_eq!(e.event_severity, None);
    }

    // spec: ING-051 — priority/level are read when severity is absent; unlisted → Warning;
    // none present → Warning; a firing `ok` is a recovery.
    #[test]
    fn severity_labels_and_fallbacks() {
        let with = |labels: Value| {
            let mut a = firing();
            a["labels"] = labels;
            parse_webhook(&webhook(json!([a])), &ctx(&[])).unwrap()[0].event_status
        };
        assert_eq!(
            with(json!({"alertname": "X", "priority": "Info"})),
            Status::Info
        );
        assert_eq!(
            with(json!({"alertname": "X", "severity": "", "level": "warn"})),
            Status::Warning
        );
        assert_eq!(
            with(json!({"alertname": "X", "severity": "P1"})),
            Status::Warning
        );
        assert_eq!(with(json!({"alertname": "X"})), Status::Warning);
        assert_eq!(
            with(json!({"alertname": "X", "severity": "OK"})),
            Status::Ok
        );
    }

    // spec: ING-053 — source labels win over derived ones; ING-012 — query labels fill in
    // after both, the last repeated parameter winning.
    #[test]
    fn source_labels_win_over_derived_and_query_labels() {
        let mut a = firing();
        a["labels"]["check"] = json!("own-check");
        a["labels"]["resource"] = json!("own-resource");
        let query = vec![
            ("team".to_string(), "a".to_string()),
            ("team".to_string(), "b".to_string()),
            ("job".to_string(), "from-query".to_string()),
        ];
        let e = &parse_webhook(&webhook(json!([a])), &ctx(&query)).unwrap()[0];
        assert_eq!(e.labels["check"], "own-check");
        assert_eq!(e.labels["resource"], "own-resource");
        assert_eq!(e.labels["team"], "b");
        assert_eq!(e.labels["job"], "node");
    }

    // spec: ING-052 — labels never fail an adapter: empty values and bad keys are dropped,
    // values cut to 2048, at most the 50 smallest keys kept; non-string values converted.
    #[test]
    fn label_normalisation_never_fails() {
        let mut labels = serde_json::Map::new();
        labels.insert("alertname".into(), json!("Many"));
        for i in 0..60 {
            labels.insert(format!("k{i:02}"), json!(i));
        }
        labels.insert("empty".into(), json!(""));
        labels.insert("x".repeat(129), json!("long key"));
        labels.insert("ctl\u{7}".into(), json!("bell"));
        labels.insert("  spaced  ".into(), json!(true));
        labels.insert("big".into(), json!("é".repeat(3000)));
        labels.insert("nested".into(), json!({"a": [1, 2]}));
        let mut a = firing();
        a["labels"] = Value::Object(labels);
        a["annotations"] = json!({});
        let e = &parse_webhook(&webhook(json!([a])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.labels.len(), 50);
        // The 50 byte-wise smallest keys: "alertname", "big", "check", "external_url",
        // "generator_url", then k00…k44 ("nested", "resource", "spaced" come later).
        assert_eq!(e.labels["big"].chars().count(), 2048);
        assert!(e.labels.contains_key("k44"));
        assert!(!e.labels.contains_key("k45"));
        assert!(!e.labels.contains_key("empty"));
        assert!(
            !e.labels
                .keys()
                .any(|k| k.len() > 128 || k.contains('\u{7}'))
        );
        assert!(!e.labels.contains_key("spaced"));
    }

    // spec: ING-029 — annotations.timestamp (seconds or ms) sets the event time, bounded;
    // it is not kept as a label.
    #[test]
    fn timestamp_annotation_sets_event_time() {
        let mut a = firing();
        a["annotations"]["timestamp"] = json!("1699999000");
        let e = &parse_webhook(&webhook(json!([a.clone()])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.event_time, 1_699_999_000_000);
        assert!(!e.labels.contains_key("timestamp"));
        a["annotations"]["timestamp"] = json!("1699999000123.9");
        let e = &parse_webhook(&webhook(json!([a.clone()])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.event_time, 1_699_999_000_000);
        a["annotations"]["timestamp"] = json!("1800000000");
        let e = &parse_webhook(&webhook(json!([a.clone()])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.event_time, NOW);
        a["annotations"]["timestamp"] = json!("soon");
        let e = &parse_webhook(&webhook(json!([a])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.event_time, NOW);
    }

    // spec: ING-054 — raw is the item plus the group-level fields; ING-011 — order kept.
    #[test]
    fn batch_keeps_order_and_raw_holds_one_item_with_group_fields() {
        let mut second = firing();
        second["fingerprint"] = json!("second");
        let events = parse_webhook(&webhook(json!([firing(), second])), &ctx(&[])).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].alert_key, "second");
        let raw: Value = serde_json::from_str(&events[1].raw).unwrap();
        assert_eq!(raw["receiver"], "klaxon");
        assert_eq!(raw["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(raw["alerts"][0]["fingerprint"], "second");
    }

    // spec: ING-024 — long title/description are truncated; unicode counted in characters.
    #[test]
    fn oversize_and_unicode_values_are_truncated() {
        let mut a = firing();
        a["labels"]["alertname"] = json!("告警".repeat(400));
        a["annotations"]["description"] = json!("ü".repeat(5000));
        let e = &parse_webhook(&webhook(json!([a])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.title.chars().count(), 512);
        assert!(e.title.starts_with("告警告警"));
        assert_eq!(e.description.chars().count(), 2048);
    }

    // spec: ING-026 — no fingerprint: the key is H("prom", canon(labels)), stable.
    #[test]
    fn missing_fingerprint_hashes_the_labels() {
        let mut a = firing();
        a.as_object_mut().unwrap().remove("fingerprint");
        let e1 = &parse_webhook(&webhook(json!([a.clone()])), &ctx(&[])).unwrap()[0];
        let expected = hash_parts(&[
            "prom",
            "alertname\u{1e}HighCPU\u{1d}instance\u{1e}web-1:9100\u{1d}job\u{1e}node\u{1d}severity\u{1e}critical",
        ]);
        assert_eq!(e1.alert_key, expected);
        a["labels"]["instance"] = json!("web-2:9100");
        let e2 = &parse_webhook(&webhook(json!([a])), &ctx(&[])).unwrap()[0];
        assert_ne!(e2.alert_key, expected);
    }

    // spec: ING-053, §3.2 title fallbacks: commonLabels.alertname, then "Prometheus Alert".
    #[test]
    fn title_fallbacks() {
        let mut a = firing();
        a["labels"].as_object_mut().unwrap().remove("alertname");
        let e = &parse_webhook(&webhook(json!([a.clone()])), &ctx(&[])).unwrap()[0];
        assert_eq!(e.title, "HighCPU");
        assert_eq!(e.labels["check"], "HighCPU");
        let mut body = webhook(json!([a]));
        body["commonLabels"] = json!({});
        let e = &parse_webhook(&body, &ctx(&[])).unwrap()[0];
        assert_eq!(e.title, "Prometheus Alert");
        assert!(!e.labels.contains_key("check"));
    }

    // spec: ING-009 — unusable shapes are InvalidParameter naming the field; zero alerts is
    // accepted with no event (§3.0).
    #[test]
    fn malformed_bodies_name_the_field() {
        let err = |body: Value| parse_webhook(&body, &ctx(&[])).unwrap_err().message;
        assert_eq!(err(json!([1])), "request body must be a JSON object");
        assert_eq!(err(json!({"status": "firing"})), "alerts is required");
        assert_eq!(err(json!({"alerts": {}})), "alerts must be an array");
        assert_eq!(
            err(webhook(json!(["x"]))),
            "alerts[0] must be a JSON object"
        );
        let mut a = firing();
        a["labels"] = json!(["x"]);
        assert_eq!(
            err(webhook(json!([firing(), a]))),
            "alerts[1].labels must be an object"
        );
        let mut a = firing();
        a["status"] = json!(1);
        assert_eq!(
            err(webhook(json!([a]))),
            "alerts[0].status must be a string"
        );
        let mut a = firing();
        a["fingerprint"] = json!("f".repeat(256));
        assert_eq!(
            err(webhook(json!([a]))),
            "alerts[0].fingerprint is too long"
        );
        let mut a = firing();
        a["annotations"]["description"] = json!({"nested": 1});
        assert_eq!(
            err(webhook(json!([a]))),
            "alerts[0].annotations.description must be a string"
        );
        assert!(
            parse_webhook(&webhook(json!([])), &ctx(&[]))
                .unwrap()
                .is_empty()
        );
    }

    fn postable(ends_at: &str) -> Value {
        json!({
            "labels": {"alertname": "Down", "instance": "db:5432", "severity": "warning"},
            "annotations": {"summary": "db is down"},
            "startsAt": "2023-11-14T22:00:00Z",
            "endsAt": ends_at,
            "generatorURL": "http://prom/graph"
        })
    }

    // spec: ING-053 — postable alerts: endsAt in the future is firing, in the past resolved,
    // both with the same label-hash key.
    #[test]
    fn postable_alerts_fire_and_resolve_by_ends_at() {
        let fire = parse_postable(&json!([postable("2023-11-14T22:20:00Z")]), &ctx(&[])).unwrap();
        let done = parse_postable(&json!([postable("2023-11-14T22:10:00Z")]), &ctx(&[])).unwrap();
        assert_eq!(fire[0].event_status, Status::Warning);
        assert_eq!(fire[0].title, "Down");
        assert_eq!(fire[0].description, "db is down");
        assert_eq!(fire[0].labels["resource"], "db:5432");
        assert_eq!(fire[0].labels["generator_url"], "http://prom/graph");
        assert_eq!(done[0].event_status, Status::Ok);
        assert_eq!(done[0].event_severity, Some(Severity::Warning));
        assert_eq!(fire[0].alert_key, done[0].alert_key);
        assert_eq!(fire[0].alert_key.len(), 32);
        // No endsAt: firing.
        let mut a = postable("");
        a.as_object_mut().unwrap().remove("endsAt");
        assert_eq!(
            parse_postable(&json!([a]), &ctx(&[])).unwrap()[0].event_status,
            Status::Warning
        );
    }

    // spec: ING-009 — postable validation as Alertmanager does it.
    #[test]
    fn postable_validation() {
        let err = |body: Value| parse_postable(&body, &ctx(&[])).unwrap_err().message;
        assert_eq!(
            err(json!({})),
            "request body must be a JSON array of alerts"
        );
        assert_eq!(
            err(json!([{"labels": {}}])),
            "[0].labels: at least one label pair required"
        );
        assert_eq!(
            err(json!([{"annotations": {}}])),
            "[0].labels: at least one label pair required"
        );
        assert_eq!(
            err(json!([
                postable("2023-11-14T22:20:00Z"),
                postable("not a time")
            ])),
            "[1].endsAt is not an RFC 3339 time"
        );
        assert_eq!(
            err(json!([postable("2023-11-14T21:00:00Z")])),
            "[0]: start time must be before end time"
        );
        assert!(parse_postable(&json!([]), &ctx(&[])).unwrap().is_empty());
    }
}
