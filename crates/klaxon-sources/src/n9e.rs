//! Nightingale / Flashcat (`n9e`, ingest.md §3.5): one alert event object, or an array of
//! them.

use klaxon_core::error::ApiError;
use klaxon_core::model::{NewEvent, Status};
use klaxon_core::standard::{canon_labels, hash_parts};
use serde_json::Value;

use crate::Context;
use crate::common::{
    Draft, compact, event_time, non_empty, number, object, opt_object, opt_text, pairs, source_key,
};

/// The severity table of §3.5; `None` for unlisted values (a trigger then gets `Warning`).
fn table(value: Option<f64>) -> Option<Status> {
    let v = value.filter(|v| v.fract() == 0.0)?;
    match v as i64 {
        1 => Some(Status::Critical),
        2 => Some(Status::Warning),
        3 => Some(Status::Info),
        _ => None,
    }
}

pub fn parse(body: &Value, ctx: &Context<'_>) -> Result<Vec<NewEvent>, ApiError> {
    // ING-097: `channel_ids` is a routing hint, never a label (exception to ING-012).
    let query: Vec<(String, String)> = ctx
        .query_labels
        .iter()
        .filter(|(k, _)| k != "channel_ids")
        .cloned()
        .collect();
    let ctx = Context {
        query_labels: &query,
        ..*ctx
    };
    match body {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| event(item, &format!("[{i}]"), &ctx))
            .collect(),
        _ => Ok(vec![event(body, "", &ctx)?]),
    }
}

/// `path` prefixes field names in errors (`[2].tags`); "" for a single object.
fn event(item: &Value, path: &str, ctx: &Context<'_>) -> Result<NewEvent, ApiError> {
    let field = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let obj = object(
        item,
        if path.is_empty() {
            "request body"
        } else {
            path
        },
    )?;
    let text = |name: &str| opt_text(obj, name, &field(name)).map(Option::unwrap_or_default);

    let recovered = match obj.get("is_recovered") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "{} must be a boolean",
                field("is_recovered")
            )));
        }
    };
    let sev = number(obj.get("severity"));
    let status = if recovered {
        Status::Ok
    } else {
        table(sev).unwrap_or(Status::Warning)
    };
    let mut draft = Draft::new(status, ctx.received_at);
    if recovered {
        draft.severity = table(sev).and_then(Status::severity);
    }

    let rule_name = text("rule_name")?;
    let cluster = text("cluster")?;
    let ident = text("target_ident")?;
    let mut title = if rule_name.trim().is_empty() {
        "Nightingale Alert".to_owned()
    } else {
        rule_name.clone()
    };
    if !cluster.is_empty() {
        title.push_str(" / ");
        title.push_str(&cluster);
    }
    if !ident.is_empty() {
        title.push_str(" - ");
        title.push_str(&ident);
    }
    draft.title = title;
    let trigger_value = text("trigger_value")?;
    draft.description = match non_empty(obj, "rule_note", &field("rule_note"))? {
        Some(note) => note,
        None => format!("{rule_name} trigger value: {trigger_value}"),
    };

    // Labels: tags (`key=value`), tags_map, then annotations not yet present.
    let mut tags: Vec<(String, String)> = Vec::new();
    match obj.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, t) in list.iter().enumerate() {
                let Some(t) = t.as_str() else {
                    return Err(ApiError::invalid(format!(
                        "{}[{i}] must be a string",
                        field("tags")
                    )));
                };
                if let Some((k, v)) = t.split_once('=') {
                    tags.push((k.to_owned(), v.to_owned()));
                }
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "{} must be an array",
                field("tags")
            )));
        }
    }
    let rule_id = text("rule_id")?;
    draft.alert_key = match non_empty(obj, "hash", &field("hash"))? {
        Some(h) => source_key(h, &field("hash"))?,
        None => {
            let canon = canon_labels(&tags.iter().cloned().collect());
            hash_parts(&["n9e", &rule_id, &canon])
        }
    };
    draft.labels = tags;
    if let Some(map) = opt_object(obj, "tags_map", &field("tags_map"))? {
        draft.labels.extend(pairs(map));
    }
    if let Some(map) = opt_object(obj, "annotations", &field("annotations"))? {
        draft.labels.extend(pairs(map));
    }
    let metric = draft
        .labels
        .iter()
        .find(|(k, _)| k == "__name__")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    draft.derive("check", rule_name);
    draft.derive("resource", ident.clone());
    draft.derive("ident", ident);
    draft.derive("metric", metric);
    draft.derive("cluster", cluster);
    for name in [
        "cate",
        "datasource_id",
        "group_id",
        "group_name",
        "rule_id",
        "rule_prod",
        "prom_ql",
        "prom_eval_interval",
    ] {
        draft.derive(name, text(name)?);
    }
    draft.derive("trigger_value", trigger_value);
    draft.derive("runbook_url", text("runbook_url")?);
    let id = text("id")?;
    if let Some(console) = ctx.console_url.map(|c| c.trim_end_matches('/'))
        && !console.is_empty()
        && !id.is_empty()
    {
        draft.derive("detail_url", format!("{console}/alert-his-events/{id}"));
    }

    let time_field = if recovered {
        "last_eval_time"
    } else {
        "trigger_time"
    };
    let t = number(obj.get(time_field)).filter(|t| *t > 0.0);
    draft.event_time = event_time(t, ctx.received_at);
    draft.raw = compact(item);
    Ok(draft.finish(ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaxon_core::model::Severity;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn n9e_event() -> Value {
        json!({
            "id": 1042,
            "cate": "prometheus",
            "cluster": "Cluster-01",
            "datasource_id": 1,
            "group_id": 3,
            "group_name": "Default Busi Group",
            "hash": "4cbd8d5d0b2c6e44a3cbf2e9f4c7d1aa",
            "rule_id": 12,
            "rule_name": "hm-test-alert-rule-name",
            "rule_note": "",
            "rule_prod": "metric",
            "prom_ql": "cpu_usage_active > 90",
            "prom_eval_interval": 15,
            "runbook_url": "https://runbooks/cpu",
            "severity": 2,
            "target_ident": "demo-01",
            "trigger_time": 1699999900,
            "trigger_value": "93.5",
            "last_eval_time": 1699999990,
            "tags": ["__name__=cpu_usage_active", "ident=demo-01", "cpu=cpu-total", "broken"],
            "tags_map": {"region": "nj"},
            "annotations": {"team": "sre", "cpu": "ignored"},
            "is_recovered": false
        })
    }

    fn ctx<'a>(query: &'a [(String, String)], console: Option<&'a str>) -> Context<'a> {
        Context {
            integration_id: 2,
            query_labels: query,
            received_at: NOW,
            console_url: console,
        }
    }

    // spec: ING-053, Q-26 — title "rule / cluster - ident", description, labels, time.
    #[test]
    fn trigger_event() {
        let e = &parse(&n9e_event(), &ctx(&[], Some("https://n9e.example/"))).unwrap()[0];
        assert_eq!(e.event_status, Status::Warning);
        assert_eq!(e.title, "hm-test-alert-rule-name / Cluster-01 - demo-01");
        assert_eq!(e.description, "hm-test-alert-rule-name trigger value: 93.5");
        assert_eq!(e.alert_key, "4cbd8d5d0b2c6e44a3cbf2e9f4c7d1aa");
        assert_eq!(e.labels["cpu"], "cpu-total");
        assert_eq!(e.labels["region"], "nj");
        assert_eq!(e.labels["team"], "sre");
        assert_eq!(e.labels["metric"], "cpu_usage_active");
        assert_eq!(e.labels["check"], "hm-test-alert-rule-name");
        assert_eq!(e.labels["resource"], "demo-01");
        assert_eq!(e.labels["rule_id"], "12");
        assert_eq!(e.labels["prom_eval_interval"], "15");
        assert_eq!(
            e.labels["detail_url"],
            "https://n9e.example/alert-his-events/1042"
        );
        assert_eq!(e.event_time, 1_699_999_900_000);
    }

    // spec: ING-050 — recovery: Ok, severity from the event, time = last_eval_time.
    #[test]
    fn recovery_event() {
        let mut b = n9e_event();
        b["is_recovered"] = json!(true);
        b["severity"] = json!(1);
        let e = &parse(&b, &ctx(&[], None)).unwrap()[0];
        assert_eq!(e.event_status, Status::Ok);
        assert_eq!(e.event_severity, Some(Severity::Critical));
        assert_eq!(e.event_time, 1_699_999_990_000);
        assert!(!e.labels.contains_key("detail_url"));
    }

    // spec: ING-051 — table 1/2/3, other → Warning; arrays are batches; ING-097 channel_ids
    // is not a label while other query parameters are (ING-012).
    #[test]
    fn severities_batches_and_query() {
        let items: Vec<Value> = [json!(1), json!(3), json!(9), json!("2")]
            .into_iter()
            .map(|s| {
                let mut b = n9e_event();
                b["severity"] = s;
                b
            })
            .collect();
        let q = vec![
            ("channel_ids".to_string(), "1,2".to_string()),
            ("env".to_string(), "prod".to_string()),
        ];
        let events = parse(&Value::Array(items), &ctx(&q, None)).unwrap();
        let got: Vec<Status> = events.iter().map(|e| e.event_status).collect();
        assert_eq!(
            got,
            [
                Status::Critical,
                Status::Info,
                Status::Warning,
                Status::Warning
            ]
        );
        assert!(!events[0].labels.contains_key("channel_ids"));
        assert_eq!(events[0].labels["env"], "prod");
    }

    // spec: ING-026 (by analogy), §3.5 — without hash the key is H("n9e", rule_id, canon(tag labels)); rule_note.
    #[test]
    fn key_without_hash_and_rule_note() {
        let mut b = n9e_event();
        b.as_object_mut().unwrap().remove("hash");
        b["tags"] = json!(["b=2", "a=1"]);
        b["rule_note"] = json!("CPU is high");
        b["cluster"] = json!("");
        let e = &parse(&b, &ctx(&[], None)).unwrap()[0];
        assert_eq!(
            e.alert_key,
            hash_parts(&["n9e", "12", "a\u{1e}1\u{1d}b\u{1e}2"])
        );
        assert_eq!(e.description, "CPU is high");
        assert_eq!(e.title, "hm-test-alert-rule-name - demo-01");
    }

    // spec: ING-009 — wrong types name the field, with the item index in a batch.
    #[test]
    fn malformed_n9e_bodies() {
        let err = |b: Value| parse(&b, &ctx(&[], None)).unwrap_err().message;
        let mut b = n9e_event();
        b["is_recovered"] = json!("yes");
        assert_eq!(err(b), "is_recovered must be a boolean");
        let mut b = n9e_event();
        b["tags"] = json!("a=b");
        assert_eq!(err(json!([n9e_event(), b])), "[1].tags must be an array");
        let mut b = n9e_event();
        b["tags"] = json!([1]);
        assert_eq!(err(b), "tags[0] must be a string");
        assert_eq!(err(json!("x")), "request body must be a JSON object");
        assert_eq!(err(json!([1])), "[0] must be a JSON object");
    }

    // spec: ING-024, ING-052 — oversize and unicode values.
    #[test]
    fn oversize_and_unicode() {
        let mut b = n9e_event();
        b["rule_note"] = json!("ß".repeat(3000));
        b["rule_name"] = json!("规则");
        b["tags"] = json!([format!("{}=v", "k".repeat(129)), "区域=华东", "empty="]);
        let e = &parse(&b, &ctx(&[], None)).unwrap()[0];
        assert_eq!(e.description.chars().count(), 2048);
        assert_eq!(e.title, "规则 / Cluster-01 - demo-01");
        assert_eq!(e.labels["区域"], "华东");
        assert!(!e.labels.contains_key("empty"));
        assert!(e.labels.keys().all(|k| k.chars().count() <= 128));
    }
}
