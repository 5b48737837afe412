//! Zabbix (`zabbix`, ingest.md §3.4): the media-type form (Zabbix 5.x–7.x, named string
//! members) and the script form (3.x–4.x, the same names as `key=value` pairs between two
//! markers inside `alert_message`).

use klaxon_core::error::ApiError;
use klaxon_core::model::{NewEvent, Status};
use klaxon_core::standard::hash_parts;
use serde_json::{Map, Value};

use crate::Context;
use crate::common::{Draft, compact, object, opt_text};

const START: &str = "-----Flashduty Required Starts-----";
const END: &str = "-----Flashduty Required Ends-----";

/// The members the adapter reads (§3.4), in either form.
const MEMBERS: [&str; 18] = [
    "event_id",
    "event_name",
    "event_severity",
    "event_value",
    "event_ack",
    "event_tags",
    "event_update_status",
    "trigger_id",
    "trigger_desc",
    "trigger_expr",
    "host_group",
    "host_ip",
    "host_name",
    "item_name",
    "item_value",
    "alert_subject",
    "alert_message",
    "zabbix_url",
];

/// The severity table of §3.4; unlisted values → `Warning` (ING-051).
fn severity(value: &str) -> Status {
    match value.trim().to_ascii_lowercase().as_str() {
        "disaster" | "high" => Status::Critical,
        "average" | "warning" => Status::Warning,
        "information" | "not classified" => Status::Info,
        _ => Status::Warning,
    }
}

/// An unexpanded macro (`{EVENT.ID}`) or `*UNKNOWN*` is no value.
fn meaningful(v: &str) -> bool {
    let t = v.trim();
    if t.is_empty() || t == "*UNKNOWN*" {
        return false;
    }
    let is_macro = t.len() > 2
        && t.starts_with('{')
        && t.ends_with('}')
        && t.get(1..t.len() - 1).is_some_and(|inner| {
            inner
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.' || c == '_')
        });
    !is_macro
}

/// The text between the markers and the message with the block removed.
fn split_block(message: &str) -> (Option<&str>, String) {
    let Some(start) = message.find(START) else {
        return (None, message.to_owned());
    };
    let after = message.get(start + START.len()..).unwrap_or("");
    let (block, rest) = match after.find(END) {
        Some(end) => (
            after.get(..end).unwrap_or(""),
            after.get(end + END.len()..).unwrap_or(""),
        ),
        None => (after, ""),
    };
    let before = message.get(..start).unwrap_or("");
    (Some(block), format!("{before}{rest}"))
}

/// One Zabbix notification → one event.
pub fn parse(body: &Value, ctx: &Context<'_>) -> Result<Vec<NewEvent>, ApiError> {
    let obj = object(body, "request body")?;
    let mut fields: Map<String, Value> = Map::new();
    let message = opt_text(obj, "alert_message", "alert_message")?.unwrap_or_default();
    let (block, rest) = split_block(&message);
    // Script form: the block's pairs first; members present in the JSON override them.
    if let Some(block) = block {
        for piece in block.split("||") {
            if let Some((k, v)) = piece.split_once('=') {
                let k = k.trim();
                if MEMBERS.contains(&k) {
                    fields.insert(k.to_owned(), Value::String(v.trim().to_owned()));
                }
            }
        }
    }
    for name in MEMBERS {
        if let Some(v) = opt_text(obj, name, name)?
            && meaningful(&v)
        {
            fields.insert(name.to_owned(), Value::String(v));
        }
    }
    let get = |name: &str| -> String {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| meaningful(v))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };

    let severity_text = get("event_severity");
    let status = if get("event_value") == "0" {
        Status::Ok
    } else {
        severity(&severity_text)
    };
    let mut draft = Draft::new(status, ctx.received_at);
    if !status.is_trigger() {
        // ING-050: a recovery carries the problem's severity when Zabbix sends it.
        draft.severity = if severity_text.is_empty() {
            None
        } else {
            severity(&severity_text).severity()
        };
    }

    let (event_name, subject, host) = (get("event_name"), get("alert_subject"), get("host_name"));
    draft.title = [&event_name, &subject]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "Zabbix Alert".to_owned());
    let rest = rest.trim();
    draft.description = if !rest.is_empty() && meaningful(rest) {
        rest.to_owned()
    } else {
        get("trigger_desc")
    };

    let (trigger_id, event_id) = (get("trigger_id"), get("event_id"));
    draft.alert_key = if !trigger_id.is_empty() {
        hash_parts(&["zbx", &trigger_id])
    } else if !event_id.is_empty() {
        hash_parts(&["zbx-event", &event_id])
    } else {
        hash_parts(&["zbx", &draft.title, &host])
    };

    // Tags: comma-separated `name:value`; items without a value are dropped.
    for item in get("event_tags").split(',') {
        if let Some((k, v)) = item.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if !k.is_empty() && !v.is_empty() {
                draft.labels.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    draft.derive("check", event_name.clone());
    draft.derive("resource", host);
    for name in [
        "host_ip",
        "host_group",
        "item_name",
        "item_value",
        "trigger_id",
        "event_id",
        "trigger_expr",
        "event_ack",
    ] {
        draft.derive(name, get(name));
    }
    draft.derive("severity", severity_text);
    let base = get("zabbix_url");
    let base = base.trim_end_matches('/');
    if !base.is_empty() && !trigger_id.is_empty() && !event_id.is_empty() {
        draft.derive(
            "detail_url",
            format!("{base}/tr_events.php?triggerid={trigger_id}&eventid={event_id}"),
        );
    }
    draft.raw = compact(body);
    Ok(vec![draft.finish(ctx)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaxon_core::model::Severity;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn ctx() -> Context<'static> {
        Context {
            integration_id: 9,
            query_labels: &[],
            received_at: NOW,
            console_url: None,
        }
    }

    fn media(value: &str, severity: &str) -> Value {
        json!({
            "event_id": "4501",
            "event_name": "High CPU utilization on web-1",
            "event_severity": severity,
            "event_value": value,
            "event_ack": "No",
            "event_tags": "scope:performance, component:cpu,novalue, :x",
            "event_update_status": "0",
            "trigger_id": "23001",
            "trigger_desc": "CPU over 90% for 5m",
            "trigger_expr": "min(/web-1/system.cpu.util,5m)>90",
            "host_group": "Linux servers",
            "host_ip": "10.0.0.5",
            "host_name": "web-1",
            "item_name": "CPU utilization",
            "item_value": "97.3 %",
            "alert_subject": "Problem: High CPU utilization on web-1",
            "alert_message": "Problem started at 10:00",
            "zabbix_url": "https://zabbix.example/"
        })
    }

    // spec: ING-053, §3.4 severity table — media-type form problem event.
    #[test]
    fn media_type_problem() {
        let e = &parse(&media("1", "High"), &ctx()).unwrap()[0];
        assert_eq!(e.event_status, Status::Critical);
        assert_eq!(e.title, "High CPU utilization on web-1");
        assert_eq!(e.description, "Problem started at 10:00");
        assert_eq!(e.alert_key, hash_parts(&["zbx", "23001"]));
        assert_eq!(e.labels["scope"], "performance");
        assert_eq!(e.labels["component"], "cpu");
        assert!(!e.labels.contains_key("novalue"));
        assert_eq!(e.labels["check"], "High CPU utilization on web-1");
        assert_eq!(e.labels["resource"], "web-1");
        assert_eq!(e.labels["host_ip"], "10.0.0.5");
        assert_eq!(e.labels["severity"], "High");
        assert_eq!(
            e.labels["detail_url"],
            "https://zabbix.example/tr_events.php?triggerid=23001&eventid=4501"
        );
        assert_eq!(e.event_time, NOW);
    }

    // spec: ING-050, ING-051 — recovery keeps the trigger's key and severity; the table.
    #[test]
    fn recovery_and_severity_table() {
        let ok = &parse(&media("0", "Average"), &ctx()).unwrap()[0];
        assert_eq!(ok.event_status, Status::Ok);
        assert_eq!(ok.event_severity, Some(Severity::Warning));
        assert_eq!(ok.alert_key, hash_parts(&["zbx", "23001"]));
        for (sev, want) in [
            ("Disaster", Status::Critical),
            ("average", Status::Warning),
            ("Warning", Status::Warning),
            ("Information", Status::Info),
            ("Not classified", Status::Info),
            ("Bizarre", Status::Warning),
        ] {
            assert_eq!(
                parse(&media("1", sev), &ctx()).unwrap()[0].event_status,
                want,
                "{sev}"
            );
        }
    }

    // spec: ING-053, §3.4 — script form: the marker block is parsed and removed from the description;
    // members in the JSON win; macros and *UNKNOWN* are empty.
    #[test]
    fn script_form() {
        let body = json!({
            "alert_subject": "PROBLEM: Disk full",
            "alert_message": "Disk nearly full\n-----Flashduty Required Starts-----\nevent_id=77||event_name=Disk full on db||event_severity=Disaster||event_value=1||trigger_id=900||host_name=db||host_ip={HOST.IP}||item_value=*UNKNOWN*||event_tags=env:prod\n-----Flashduty Required Ends-----\n",
            "zabbix_url": "http://zbx"
        });
        let e = &parse(&body, &ctx()).unwrap()[0];
        assert_eq!(e.event_status, Status::Critical);
        assert_eq!(e.title, "Disk full on db");
        assert_eq!(e.description, "Disk nearly full");
        assert_eq!(e.alert_key, hash_parts(&["zbx", "900"]));
        assert_eq!(e.labels["env"], "prod");
        assert!(!e.labels.contains_key("host_ip"));
        assert!(!e.labels.contains_key("item_value"));
        assert_eq!(
            e.labels["detail_url"],
            "http://zbx/tr_events.php?triggerid=900&eventid=77"
        );

        let mut over = body.clone();
        over["event_name"] = json!("From JSON");
        assert_eq!(parse(&over, &ctx()).unwrap()[0].title, "From JSON");
    }

    // spec: ING-053, §3.4 key fallbacks; title fallback; numbers accepted as text.
    #[test]
    fn key_and_title_fallbacks() {
        let e = &parse(&json!({"event_id": 5, "event_value": 1}), &ctx()).unwrap()[0];
        assert_eq!(e.title, "Zabbix Alert");
        assert_eq!(e.alert_key, hash_parts(&["zbx-event", "5"]));
        assert_eq!(e.event_status, Status::Warning);
        let e = &parse(&json!({"alert_subject": "S", "host_name": "h"}), &ctx()).unwrap()[0];
        assert_eq!(e.alert_key, hash_parts(&["zbx", "S", "h"]));
        assert_eq!(e.title, "S");
    }

    // spec: ING-009 — wrong types name the field.
    #[test]
    fn malformed_zabbix_bodies() {
        let err = |b: Value| parse(&b, &ctx()).unwrap_err().message;
        assert_eq!(err(json!([])), "request body must be a JSON object");
        assert_eq!(
            err(json!({"event_name": {"a": 1}})),
            "event_name must be a string"
        );
        assert_eq!(
            err(json!({"alert_message": [1]})),
            "alert_message must be a string"
        );
    }

    // spec: ING-024, ING-052 — oversize and unicode values: title cut to 512 characters,
    // unicode tags kept, an oversize tag key dropped without failing.
    #[test]
    fn oversize_and_unicode() {
        let mut b = media("1", "High");
        b["event_name"] = json!("磁盘".repeat(400));
        b["event_tags"] = json!(format!("服务:支付,{}:x", "k".repeat(200)));
        let e = &parse(&b, &ctx()).unwrap()[0];
        assert_eq!(e.title.chars().count(), 512);
        assert_eq!(e.labels["服务"], "支付");
        assert!(e.labels.keys().all(|k| k.chars().count() <= 128));
        assert_eq!(e.labels["check"].chars().count(), 800);
    }
}
