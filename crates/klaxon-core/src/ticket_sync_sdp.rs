//! ServiceDesk Plus sync (response.md RSP-407): the pure rules. Requests of the v3 API, how
//! statuses, priorities and assignees map, and what an inbound status does to an incident.
//!
//! The v3 API takes a form field `input_data` holding JSON (`{"request": {...}}` for a
//! request, `{"request_note": {...}}` for a note) and answers `{"request": {...},
//! "response_status": {"status_code": 2000, "status": "success"}}`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::model::{Incident, Millis, Progress, Severity};
use crate::ticket_sync::{ON_HOLD_SNOOZE_MINUTES, StateAction, source_value};

/// The media type every v3 call sends in `Accept`.
pub const ACCEPT: &str = "application/vnd.manageengine.sdp.v3+json";
/// RSP-407: the one-time code of the cloud edition is valid this long after it is made.
pub const OAUTH_CODE_VALID_MS: Millis = 10 * 60_000;
/// An access token is refreshed this long before it expires, so none expires mid-request.
pub const TOKEN_MARGIN_MS: Millis = 60_000;
/// The Zoho accounts server of the cloud edition's US data centre (others: `.eu`, `.in`, …).
pub const DEFAULT_AUTH_URL: &str = "https://accounts.zoho.com";
/// The resolution sent with a resolve: SDP refuses to resolve without one when the
/// installation requires it.
pub const RESOLUTION: &str = "Resolved in Klaxon";

/// RSP-407 platforms.
pub fn platform_valid(p: &str) -> bool {
    matches!(p, "cloud" | "onprem")
}

/// Outbound status: Triggered → Open, Processing → In Progress, Closed → Resolved.
pub fn status_name(progress: Progress) -> &'static str {
    match progress {
        Progress::Triggered => "Open",
        Progress::Processing => "In Progress",
        Progress::Closed => "Resolved",
    }
}

/// SDP's default priorities for a severity when the integration maps none.
pub fn default_priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "High",
        Severity::Warning => "Medium",
        Severity::Info => "Low",
    }
}

/// Inbound urgency (SDP's defaults: Low, Normal, Medium, High, Urgent) to severity, as RSP-406
/// maps urgency: Low → Info, Medium (and Normal) → Warning, High (and Urgent) → Critical.
pub fn severity_of_urgency(urgency: &str) -> Option<Severity> {
    match urgency.trim().to_ascii_lowercase().as_str() {
        "low" => Some(Severity::Info),
        "medium" | "normal" => Some(Severity::Warning),
        "high" | "urgent" => Some(Severity::Critical),
        _ => None,
    }
}

/// Where the priority comes from (RSP-407): `severity`, `labels.<key>` or `fields.<name>`.
pub fn check_priority_source(source: &str) -> Result<(), String> {
    let ok = source == "severity"
        || source
            .strip_prefix("labels.")
            .or_else(|| source.strip_prefix("fields."))
            .is_some_and(|k| !k.is_empty());
    if ok {
        Ok(())
    } else {
        Err("priority_source: must be severity, labels.<key> or fields.<name>".into())
    }
}

/// RSP-407 priority: from the severity (the mapping by severity name, else SDP's defaults),
/// or from a label or custom field (the mapping by value, else the value itself as the
/// priority's name). `None` = no value to send.
pub fn priority(
    source: &str,
    mapping: &BTreeMap<String, String>,
    inc: &Incident,
) -> Option<String> {
    if source.is_empty() || source == "severity" {
        let sev = inc.incident_severity;
        return Some(
            mapping
                .get(sev.as_str())
                .filter(|p| !p.is_empty())
                .cloned()
                .unwrap_or_else(|| default_priority(sev).to_string()),
        );
    }
    let v = source_value(inc, source)?;
    Some(
        mapping
            .get(&v)
            .filter(|p| !p.is_empty())
            .cloned()
            .unwrap_or(v),
    )
}

/// Whom a request is assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    Technician(String),
    Group(String),
}

/// The assignee setting (RSP-407): the label read, whether it names a technician or a group,
/// and optionally which label values are known (value → technician or group name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssigneeRule<'a> {
    /// `""` = no assignee mapping.
    pub label: &'a str,
    /// `technician` | `group`.
    pub kind: &'a str,
    pub mapping: Option<&'a BTreeMap<String, String>>,
}

/// Why an assignee setting is refused.
pub fn check_assignee(label: &str, kind: &str) -> Result<(), String> {
    if label.is_empty() {
        return Ok(());
    }
    if label.chars().any(char::is_whitespace) || label.len() > 128 {
        return Err("assignee_label: a label key of 1 to 128 characters without spaces".into());
    }
    if kind != "technician" && kind != "group" {
        return Err(format!(
            "assignee_kind: {kind:?} is not technician or group"
        ));
    }
    Ok(())
}

/// RSP-407: the assignee from the label. A missing label assigns nobody; a value the mapping
/// does not know is an unknown assignee and fails the sync (`Err` says which).
pub fn assignee(rule: &AssigneeRule<'_>, inc: &Incident) -> Result<Option<Assignee>, String> {
    if rule.label.is_empty() {
        return Ok(None);
    }
    let Some(value) = inc.labels.get(rule.label).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let name = match rule.mapping.filter(|m| !m.is_empty()) {
        Some(m) => m.get(value).cloned().ok_or_else(|| {
            format!(
                "unknown assignee: label {}={value} maps to no {}",
                rule.label, rule.kind
            )
        })?,
        None => value.clone(),
    };
    Ok(Some(if rule.kind == "group" {
        Assignee::Group(name)
    } else {
        Assignee::Technician(name)
    }))
}

/// A user reference: by e-mail when it looks like one, else by name.
fn user_ref(v: &str) -> Value {
    if v.contains('@') {
        json!({"email_id": v})
    } else {
        json!({"name": v})
    }
}

/// What a new request carries besides the incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateSettings<'a> {
    /// RSP-407: the request template's name (`""` = SDP's default).
    pub template: &'a str,
    /// RSP-407: the requester, a name or an e-mail (`""` = the API key's or token's user).
    pub requester: &'a str,
}

/// The `input_data` of `POST /api/v3/requests`: subject, description, template, requester,
/// priority, technician or group, and the mapped fields as user-defined fields.
pub fn create_input(
    inc: &Incident,
    settings: &CreateSettings<'_>,
    priority: Option<&str>,
    assignee: Option<&Assignee>,
    mapped: &[(String, String)],
) -> Value {
    let mut r = Map::new();
    r.insert("subject".into(), json!(inc.title));
    r.insert("description".into(), json!(inc.description));
    if !settings.template.is_empty() {
        r.insert("template".into(), json!({"name": settings.template}));
    }
    if !settings.requester.is_empty() {
        r.insert("requester".into(), user_ref(settings.requester));
    }
    if let Some(p) = priority {
        r.insert("priority".into(), json!({"name": p}));
    }
    match assignee {
        Some(Assignee::Technician(t)) => {
            r.insert("technician".into(), user_ref(t));
        }
        Some(Assignee::Group(g)) => {
            r.insert("group".into(), json!({"name": g}));
        }
        None => {}
    }
    if !mapped.is_empty() {
        let udf: Map<String, Value> = mapped.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        r.insert("udf_fields".into(), Value::Object(udf));
    }
    json!({ "request": r })
}

/// The `input_data` of `PUT /api/v3/requests/{id}` for a priority change.
pub fn priority_input(priority: &str) -> Value {
    json!({"request": {"priority": {"name": priority}}})
}

/// The `input_data` of `PUT /api/v3/requests/{id}` for a progress change; a resolve carries
/// the resolution.
pub fn status_input(progress: Progress) -> Value {
    let mut r = Map::new();
    r.insert("status".into(), json!({"name": status_name(progress)}));
    if progress == Progress::Closed {
        r.insert("resolution".into(), json!({"content": RESOLUTION}));
    }
    json!({ "request": r })
}

/// The `input_data` of `POST /api/v3/requests/{id}/notes`: a private note that notifies
/// nobody (the incident's own notifications already did).
pub fn note_input(text: &str) -> Value {
    json!({"request_note": {
        "description": text,
        "show_to_requester": false,
        "notify_technician": false,
        "mark_first_response": false,
        "add_to_linked_requests": false,
    }})
}

/// Whether an answer body reports success (`response_status.status`); a list of statuses (a
/// bulk answer) succeeds when all do.
pub fn answer_ok(body: &Value) -> bool {
    match body.get("response_status") {
        Some(Value::Object(m)) => m.get("status").and_then(Value::as_str) == Some("success"),
        Some(Value::Array(list)) => list
            .iter()
            .all(|s| s.get("status").and_then(Value::as_str) == Some("success")),
        _ => false,
    }
}

/// The created request's `(id, display id)`.
pub fn created(body: &Value) -> Option<(String, String)> {
    let r = body.get("request")?;
    let text = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let id = r.get("id").and_then(text)?;
    let display = r
        .get("display_id")
        .and_then(text)
        .unwrap_or_else(|| id.clone());
    Some((id, display))
}

/// The web address of a request: the cloud's UI path, or the on-premises work order page.
pub fn request_url(base: &str, cloud: bool, id: &str) -> String {
    if cloud {
        format!("{base}/ui/requests/{id}/details")
    } else {
        format!("{base}/WorkOrder.do?woMode=viewWO&woID={id}")
    }
}

/// RSP-407 inbound status: Open → reopen a Closed incident; In Progress, Assigned, Pending
/// Verification, Staging → nothing; On Hold → snooze 120 minutes when Processing; Resolved,
/// Closed, Canceled, Rejected → close (unless already Closed). Unknown statuses change nothing.
pub fn status_action(status: &str, progress: Progress) -> StateAction {
    match status.trim().to_ascii_lowercase().as_str() {
        "open" if progress == Progress::Closed => StateAction::Reopen,
        "on hold" | "onhold" if progress == Progress::Processing => {
            StateAction::Snooze(ON_HOLD_SNOOZE_MINUTES)
        }
        "resolved" | "closed" | "canceled" | "cancelled" | "rejected"
            if progress != Progress::Closed =>
        {
            StateAction::Close
        }
        _ => StateAction::Nothing,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn incident() -> Incident {
        serde_json::from_value(json!({
            "incident_id": "i1", "num": "N1", "account_id": 1, "channel_id": 7,
            "title": "db down", "description": "disk full", "incident_severity": "Critical",
            "incident_status": "Critical", "progress": "Triggered", "start_time": 0,
            "last_time": 0, "end_time": 0, "ack_time": 0, "close_time": 0, "created_at": 0,
            "updated_at": 0, "creator_id": 0, "closer_id": 0, "close_source": "",
            "labels": {"team": "dba", "prio": "P1"}, "alert_cnt": 0, "active_alert_cnt": 0,
            "alert_event_cnt": 0, "group_method": "n", "group_key": "", "last_merge_time": 0,
            "first_alert_id": "", "first_alert_key": "", "integration_id": 0,
            "integration_type": "", "is_flapping": false, "storm_level": 0,
            "manual_overrides": []
        }))
        .unwrap()
    }

    #[test]
    fn inbound_statuses_act_as_specified() {
        // spec: RSP-407 (status mapping)
        use StateAction::*;
        assert_eq!(status_action("Open", Progress::Closed), Reopen);
        assert_eq!(status_action("Open", Progress::Processing), Nothing);
        for s in ["In Progress", "Assigned", "Pending Verification", "Staging"] {
            assert_eq!(status_action(s, Progress::Triggered), Nothing);
            assert_eq!(status_action(s, Progress::Closed), Nothing);
        }
        assert_eq!(status_action("On Hold", Progress::Processing), Snooze(120));
        assert_eq!(status_action("On Hold", Progress::Triggered), Nothing);
        for s in ["Resolved", "Closed", "Canceled", "Rejected"] {
            assert_eq!(status_action(s, Progress::Processing), Close);
            assert_eq!(status_action(s, Progress::Closed), Nothing);
        }
        assert_eq!(status_name(Progress::Processing), "In Progress");
    }

    #[test]
    fn the_priority_comes_from_the_severity_a_label_or_a_field() {
        // spec: RSP-407 (priority from the severity, a label or a custom field)
        let mut inc = incident();
        let mut m = BTreeMap::new();
        assert_eq!(priority("severity", &m, &inc).as_deref(), Some("High"));
        m.insert("Critical".to_string(), "Urgent".to_string());
        assert_eq!(priority("severity", &m, &inc).as_deref(), Some("Urgent"));
        m.insert("P1".to_string(), "High".to_string());
        assert_eq!(priority("labels.prio", &m, &inc).as_deref(), Some("High"));
        assert_eq!(priority("labels.missing", &m, &inc), None);
        inc.response.fields.insert("impact".into(), json!("Low"));
        assert_eq!(priority("fields.impact", &m, &inc).as_deref(), Some("Low"));
        assert!(check_priority_source("title").is_err());
        assert!(check_priority_source("fields.impact").is_ok());
    }

    #[test]
    fn an_unknown_assignee_fails_and_a_missing_label_assigns_nobody() {
        // spec: RSP-407 (assignee mapping from a label; an unknown assignee fails)
        let inc = incident();
        let mut m = BTreeMap::new();
        m.insert("dba".to_string(), "Database Team".to_string());
        let group = AssigneeRule {
            label: "team",
            kind: "group",
            mapping: Some(&m),
        };
        assert_eq!(
            assignee(&group, &inc).unwrap(),
            Some(Assignee::Group("Database Team".into()))
        );
        let unknown = AssigneeRule {
            label: "prio",
            kind: "group",
            mapping: Some(&m),
        };
        assert!(assignee(&unknown, &inc).unwrap_err().contains("prio=P1"));
        let missing = AssigneeRule {
            label: "owner",
            kind: "technician",
            mapping: None,
        };
        assert_eq!(assignee(&missing, &inc).unwrap(), None);
        let direct = AssigneeRule {
            label: "team",
            kind: "technician",
            mapping: None,
        };
        assert_eq!(
            assignee(&direct, &inc).unwrap(),
            Some(Assignee::Technician("dba".into()))
        );
    }

    #[test]
    fn the_create_input_has_the_documented_shape() {
        // spec: RSP-407 (request template and requester)
        let inc = incident();
        let v = create_input(
            &inc,
            &CreateSettings {
                template: "Incident",
                requester: "ops@example.com",
            },
            Some("High"),
            Some(&Assignee::Technician("Ann".into())),
            &[("udf_sline_301".into(), "dba".into())],
        );
        assert_eq!(
            v,
            json!({"request": {"subject": "db down", "description": "disk full",
                "template": {"name": "Incident"}, "requester": {"email_id": "ops@example.com"},
                "priority": {"name": "High"}, "technician": {"name": "Ann"},
                "udf_fields": {"udf_sline_301": "dba"}}})
        );
        assert!(answer_ok(
            &json!({"response_status": {"status_code": 2000, "status": "success"}})
        ));
        assert_eq!(
            created(&json!({"request": {"id": "42", "display_id": "7"}})),
            Some(("42".into(), "7".into()))
        );
    }
}
