//! Ticket sync with Jira, ServiceNow and ServiceDesk Plus (response.md 1.23, RSP-405…407):
//! the pure decisions (ServiceDesk Plus specifics in [`crate::ticket_sync_sdp`]). Which sync steps an incident change asks for, how severities, progress and
//! fields map to the ticket systems' values, the request bodies, and what an inbound
//! ServiceNow state does to an incident. The store writes the steps as rows in the change's
//! transaction; the server sends them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::condition::{Context, Filter, FilterGroups, Key, Subject};
use crate::model::{Incident, Progress, Severity};

/// response.md 1.23 `name` (the custom-action limit of 1.19 applies to every integration).
pub const MAX_NAME_CHARS: usize = 39;
/// Mapped fields per integration.
pub const MAX_FIELD_MAPPINGS: usize = 50;
/// Longest mapped value sent to a text field.
pub const MAX_MAPPED_VALUE_CHARS: usize = 4096;
/// RSP-406: an inbound On Hold snoozes for 120 minutes.
pub const ON_HOLD_SNOOZE_MINUTES: i64 = 120;

/// The ticket system of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Jira,
    ServiceNow,
    /// RSP-407: ManageEngine ServiceDesk Plus, v3 API.
    ServiceDeskPlus,
}

impl System {
    pub fn parse(s: &str) -> Option<System> {
        match s {
            "jira" => Some(System::Jira),
            "servicenow" => Some(System::ServiceNow),
            "servicedeskplus" => Some(System::ServiceDeskPlus),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            System::Jira => "jira",
            System::ServiceNow => "servicenow",
            System::ServiceDeskPlus => "servicedeskplus",
        }
    }

    /// What people call it, in messages.
    pub fn display(self) -> &'static str {
        match self {
            System::Jira => "Jira",
            System::ServiceNow => "ServiceNow",
            System::ServiceDeskPlus => "ServiceDesk Plus",
        }
    }
}

/// RSP-406 sync direction (Jira: `to` only, RSP-405).
pub fn direction_valid(system: System, direction: &str) -> bool {
    match system {
        System::Jira => direction == "to",
        System::ServiceNow | System::ServiceDeskPlus => {
            matches!(direction, "to" | "from" | "two_way")
        }
    }
}

/// Whether incidents go out to the system.
pub fn outbound(direction: &str) -> bool {
    matches!(direction, "to" | "two_way")
}

/// Whether the system's push URL is accepted.
pub fn inbound(direction: &str) -> bool {
    matches!(direction, "from" | "two_way")
}

/// One label or custom field copied into a text field of the ticket (response.md 1.23).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMap {
    /// `labels.<key>` or `fields.<name>`.
    pub source: String,
    /// The ticket's field id (Jira `customfield_10001`, ServiceNow column name).
    pub target_field: String,
}

/// Why a field mapping is refused, naming the entry.
pub fn check_field_mapping(list: &[FieldMap]) -> Result<(), String> {
    if list.len() > MAX_FIELD_MAPPINGS {
        return Err(format!(
            "field_mapping: at most {MAX_FIELD_MAPPINGS} entries"
        ));
    }
    for (i, m) in list.iter().enumerate() {
        let ok = m
            .source
            .strip_prefix("labels.")
            .or_else(|| m.source.strip_prefix("fields."))
            .is_some_and(|k| !k.is_empty());
        if !ok {
            return Err(format!(
                "field_mapping[{i}].source: must be labels.<key> or fields.<name>"
            ));
        }
        let t = m.target_field.trim();
        if t.is_empty() || t.len() > 128 || t.chars().any(char::is_whitespace) {
            return Err(format!(
                "field_mapping[{i}].target_field: a field id of 1 to 128 characters without spaces"
            ));
        }
    }
    Ok(())
}

/// The text of a label or custom field of `inc`; a multi-select field is joined with `,`.
/// `None` when it is missing or empty (an empty value never overwrites, RSP-406).
pub fn source_value(inc: &Incident, source: &str) -> Option<String> {
    let v = if let Some(k) = source.strip_prefix("labels.") {
        inc.labels.get(k).cloned()
    } else if let Some(k) = source.strip_prefix("fields.") {
        match inc.response.fields.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|x| match x {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        }
    } else {
        None
    };
    v.filter(|s| !s.is_empty())
        .map(|s| s.chars().take(MAX_MAPPED_VALUE_CHARS).collect())
}

/// The mapped `(target_field, value)` pairs of `inc`, empty sources left out.
pub fn mapped_fields(inc: &Incident, list: &[FieldMap]) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|m| source_value(inc, &m.source).map(|v| (m.target_field.clone(), v)))
        .collect()
}

/// RSP-406 inbound "other fields → custom fields": the `(custom field name, value)` pairs a
/// pushed record carries for the `fields.<name>` mappings. Label mappings are outbound only
/// (labels are never edited, RSP-005); an empty or non-text value never overwrites.
pub fn inbound_fields(list: &[FieldMap], record: &Map<String, Value>) -> Vec<(String, String)> {
    list.iter()
        .filter_map(|m| {
            let name = m.source.strip_prefix("fields.")?;
            let v = record.get(&m.target_field)?.as_str()?.trim();
            (!v.is_empty()).then(|| {
                (
                    name.to_string(),
                    v.chars().take(MAX_MAPPED_VALUE_CHARS).collect(),
                )
            })
        })
        .collect()
}

/// RSP-405: the Jira status a progress moves the issue to.
pub fn jira_status(progress: Progress) -> &'static str {
    match progress {
        Progress::Triggered => "To Do",
        Progress::Processing => "In Progress",
        Progress::Closed => "Done",
    }
}

/// RSP-406 (state ↔ progress), outbound: ServiceNow's incident `state` values (1 New,
/// 2 In Progress, 6 Resolved).
pub fn servicenow_state(progress: Progress) -> &'static str {
    match progress {
        Progress::Triggered => "1",
        Progress::Processing => "2",
        Progress::Closed => "6",
    }
}

/// The resolution code and notes sent with a ServiceNow resolve: most instances refuse a
/// Resolved state without them (a data policy).
pub const SERVICENOW_CLOSE_CODE: &str = "Solution provided";
pub const SERVICENOW_CLOSE_NOTES: &str = "Closed in Klaxon";

/// RSP-406 urgency ↔ severity, outbound: ServiceNow `urgency` values (1 High, 2 Medium, 3 Low).
pub fn servicenow_urgency(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "1",
        Severity::Warning => "2",
        Severity::Info => "3",
    }
}

/// RSP-406: Low → Info, Medium → Warning, High → Critical. ServiceNow sends display values
/// (`1 - High`); a bare word or number is read too.
pub fn severity_of_urgency(urgency: &str) -> Option<Severity> {
    let u = urgency.trim().to_ascii_lowercase();
    if u.is_empty() {
        return None;
    }
    if u.ends_with("high") || u == "1" {
        Some(Severity::Critical)
    } else if u.ends_with("medium") || u == "2" {
        Some(Severity::Warning)
    } else if u.ends_with("low") || u == "3" {
        Some(Severity::Info)
    } else {
        None
    }
}

/// The priority (Jira) or urgency (ServiceNow) a severity maps to: the integration's
/// `severity_mapping` first, then the default (ServiceNow only; Jira has no default because
/// priority names are the site's own). `None` = leave the priority alone.
pub fn priority_for(
    system: System,
    mapping: &BTreeMap<String, String>,
    severity: Severity,
) -> Option<String> {
    if let Some(p) = mapping.get(severity.as_str()).filter(|p| !p.is_empty()) {
        return Some(p.clone());
    }
    match system {
        System::Jira => None,
        System::ServiceNow => Some(servicenow_urgency(severity).to_string()),
        System::ServiceDeskPlus => Some(crate::ticket_sync_sdp::default_priority(severity).into()),
    }
}

/// One outbound sync step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the ticket from the incident as it is when sent.
    Create,
    /// RSP-405/406: the severity changed.
    Priority(Severity),
    /// RSP-405/406: the progress changed.
    Status(Progress),
    /// RSP-405/406: a comment that is not `mute_reply`.
    Comment(String),
}

impl Step {
    pub fn op(&self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Priority(_) => "priority",
            Step::Status(_) => "status",
            Step::Comment(_) => "comment",
        }
    }

    /// The step's stored input.
    pub fn payload(&self) -> Value {
        match self {
            Step::Create => json!({}),
            Step::Priority(s) => json!({"severity": s.as_str()}),
            Step::Status(p) => json!({"progress": p.as_str()}),
            Step::Comment(c) => json!({"comment": c}),
        }
    }

    /// Reads a stored step back.
    pub fn parse(op: &str, payload: &Value) -> Option<Step> {
        let s = |k: &str| payload.get(k).and_then(Value::as_str);
        match op {
            "create" => Some(Step::Create),
            "priority" => s("severity")
                .and_then(|v| v.parse::<Severity>().ok())
                .map(Step::Priority),
            "status" => s("progress").and_then(parse_progress).map(Step::Status),
            "comment" => s("comment").map(|c| Step::Comment(c.to_string())),
            _ => None,
        }
    }
}

fn parse_progress(s: &str) -> Option<Progress> {
    match s {
        "Triggered" => Some(Progress::Triggered),
        "Processing" => Some(Progress::Processing),
        "Closed" => Some(Progress::Closed),
        _ => None,
    }
}

/// What an integration needs to decide the steps of one change.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncRule {
    pub channel_ids: Vec<i64>,
    pub direction: String,
    /// `auto` | `manual`.
    pub trigger: String,
    pub filters: FilterGroups,
}

/// Not a timeline kind: the change of an automatic incident's labels, which follow its first
/// alert (RSP-005) without a timeline entry. The store passes it with the change's kinds.
pub const LABELS_CHANGED: &str = "labels_changed";

/// Change kinds after which an auto trigger's filter is evaluated again (RSP-405: at
/// creation, and after a title, severity, label or field change).
const CREATE_TRIGGERS: &[&str] = &[
    "i_new",
    "i_r_title",
    "i_r_severity",
    "i_r_field",
    LABELS_CHANGED,
];
/// Timeline kinds that may change the progress.
const PROGRESS_KINDS: &[&str] = &[
    "i_ack", "i_unack", "i_rslv", "i_reopen", "i_snooze", "i_wake",
];

/// An incident seen by a ticket-sync filter (the escalation filter's keys).
struct IncidentSubject<'a>(&'a Incident);

impl Subject for IncidentSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        match key {
            Key::Title => Some(Cow::Borrowed(self.0.title.as_str())),
            Key::Description => Some(Cow::Borrowed(self.0.description.as_str())),
            Key::Severity => Some(Cow::Borrowed(self.0.incident_severity.as_str())),
            Key::Label(name) => self.0.labels.get(name).map(|v| Cow::Borrowed(v.as_str())),
            _ => None,
        }
    }
}

/// The filter context of ticket sync: the incident keys of escalation filters.
pub const FILTER_CONTEXT: Context = Context::Escalation;

/// Whether an auto trigger's filter holds for `inc` (an empty filter holds for all).
pub fn filter_matches(filters: &FilterGroups, inc: &Incident) -> bool {
    match Filter::compile(filters, FILTER_CONTEXT) {
        Ok(f) => f.matches(&IncidentSubject(inc)),
        // Validated on save; a filter that no longer compiles matches nothing.
        Err(_) => false,
    }
}

/// The steps one incident change asks of one integration (RSP-405, RSP-406).
///
/// `kinds` are the change's timeline entries `(kind, detail)` in order; `inc` is the incident
/// as the change left it; `linked` says whether the incident has a ticket of this integration
/// or a create already queued. An unlinked incident gets at most a create (auto trigger,
/// filter holding after a creation or an edit); a linked one gets priority, status and comment
/// steps. A global incident (`channel_id = 0`) never syncs (RSP-007).
pub fn steps(rule: &SyncRule, inc: &Incident, linked: bool, kinds: &[(&str, &Value)]) -> Vec<Step> {
    if inc.channel_id == 0
        || !outbound(&rule.direction)
        || !rule.channel_ids.contains(&inc.channel_id)
    {
        return Vec::new();
    }
    if !linked {
        let asked = kinds.iter().any(|(k, _)| CREATE_TRIGGERS.contains(k));
        if rule.trigger == "auto" && asked && filter_matches(&rule.filters, inc) {
            return vec![Step::Create];
        }
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut status_done = false;
    for (kind, detail) in kinds {
        match *kind {
            "i_r_severity" => out.push(Step::Priority(inc.incident_severity)),
            "i_comm" => {
                let muted = detail
                    .get("mute_reply")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if let Some(c) = detail.get("comment").and_then(Value::as_str)
                    && !muted
                {
                    out.push(Step::Comment(c.to_string()));
                }
            }
            k if PROGRESS_KINDS.contains(&k) && !status_done => {
                // One status step per change: the progress the change ended in.
                status_done = true;
                out.push(Step::Status(inc.progress));
            }
            _ => {}
        }
    }
    // A change may set the severity twice; the last value is what counts.
    if out
        .iter()
        .filter(|s| matches!(s, Step::Priority(_)))
        .count()
        > 1
    {
        let mut seen = false;
        let mut kept: Vec<Step> = out.into_iter().rev().collect();
        kept.retain(|s| {
            if matches!(s, Step::Priority(_)) {
                let keep = !seen;
                seen = true;
                keep
            } else {
                true
            }
        });
        kept.reverse();
        out = kept;
    }
    out
}

/// Jira issue body (REST API v2 `POST /rest/api/2/issue`): project, issue type, summary,
/// description, priority by name when mapped, and the mapped text fields.
pub fn jira_create_body(
    project_key: &str,
    issue_type: &str,
    inc: &Incident,
    priority: Option<&str>,
    mapped: &[(String, String)],
) -> Value {
    let mut fields = Map::new();
    fields.insert("project".into(), json!({"key": project_key}));
    fields.insert("issuetype".into(), json!({"name": issue_type}));
    fields.insert("summary".into(), json!(inc.title));
    fields.insert("description".into(), json!(inc.description));
    if let Some(p) = priority {
        fields.insert("priority".into(), json!({"name": p}));
    }
    for (k, v) in mapped {
        fields.insert(k.clone(), json!(v));
    }
    json!({ "fields": fields })
}

/// ServiceNow incident body (Table API `POST /api/now/table/incident`).
pub fn servicenow_create_body(
    inc: &Incident,
    urgency: Option<&str>,
    mapped: &[(String, String)],
) -> Value {
    let mut m = Map::new();
    m.insert("short_description".into(), json!(inc.title));
    if !inc.description.is_empty() {
        m.insert("description".into(), json!(inc.description));
    }
    if let Some(u) = urgency {
        m.insert("urgency".into(), json!(u));
    }
    for (k, v) in mapped {
        m.insert(k.clone(), json!(v));
    }
    Value::Object(m)
}

/// What an inbound ServiceNow state does to the linked incident (RSP-406).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateAction {
    Nothing,
    Reopen,
    Snooze(i64),
    Close,
}

/// RSP-406: New → reopen a Closed incident; In Progress → nothing (an acknowledgement needs a
/// person); On Hold → snooze 120 minutes when Processing, ignored when Triggered; Resolved,
/// Closed, Canceled → close (unless already Closed).
pub fn state_action(state: &str, progress: Progress) -> StateAction {
    let s = state.trim().to_ascii_lowercase();
    let s = s
        .split_once(" - ")
        .map_or(s.as_str(), |(_, w)| w)
        .to_string();
    match s.as_str() {
        "new" | "1" if progress == Progress::Closed => StateAction::Reopen,
        "on hold" | "3" if progress == Progress::Processing => {
            StateAction::Snooze(ON_HOLD_SNOOZE_MINUTES)
        }
        "resolved" | "closed" | "canceled" | "cancelled" | "6" | "7" | "8"
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
    use crate::condition::Condition;

    fn incident() -> Incident {
        let mut inc: Incident = serde_json::from_value(json!({
            "incident_id": "i1", "num": "N1", "account_id": 1, "channel_id": 7,
            "title": "db down", "description": "disk full", "incident_severity": "Critical",
            "incident_status": "Critical", "progress": "Triggered", "start_time": 0,
            "last_time": 0, "end_time": 0, "ack_time": 0, "close_time": 0, "created_at": 0,
            "updated_at": 0, "creator_id": 0, "closer_id": 0, "close_source": "",
            "labels": {"service": "db"}, "alert_cnt": 0, "active_alert_cnt": 0,
            "alert_event_cnt": 0, "group_method": "n", "group_key": "", "last_merge_time": 0,
            "first_alert_id": "", "first_alert_key": "", "integration_id": 0,
            "integration_type": "", "is_flapping": false, "storm_level": 0,
            "manual_overrides": []
        }))
        .unwrap();
        inc.response
            .fields
            .insert("teams".into(), json!(["a", "b"]));
        inc
    }

    fn rule(trigger: &str) -> SyncRule {
        SyncRule {
            channel_ids: vec![7],
            direction: "to".into(),
            trigger: trigger.into(),
            filters: vec![vec![Condition::is_in("severity", ["Critical"])]],
        }
    }

    #[test]
    fn an_auto_trigger_creates_when_the_filter_holds_after_creation_or_an_edit() {
        // spec: RSP-405 (auto: evaluated at creation and after title/severity/label/field changes)
        let mut inc = incident();
        let d = json!({});
        assert_eq!(
            steps(&rule("auto"), &inc, false, &[("i_new", &d)]),
            vec![Step::Create]
        );
        assert!(steps(&rule("manual"), &inc, false, &[("i_new", &d)]).is_empty());
        assert!(steps(&rule("auto"), &inc, false, &[("i_ack", &d)]).is_empty());
        inc.incident_severity = Severity::Info;
        assert!(steps(&rule("auto"), &inc, false, &[("i_new", &d)]).is_empty());
        // spec: RSP-405 (a label change re-checks the filter too)
        let mut by_label = rule("auto");
        by_label.filters = vec![vec![Condition::is_in("labels.service", ["web"])]];
        assert!(steps(&by_label, &inc, false, &[(LABELS_CHANGED, &d)]).is_empty());
        inc.labels.insert("service".into(), "web".into());
        assert_eq!(
            steps(&by_label, &inc, false, &[(LABELS_CHANGED, &d)]),
            vec![Step::Create]
        );
        inc.incident_severity = Severity::Critical;
        assert_eq!(
            steps(&rule("auto"), &inc, false, &[("i_r_severity", &d)]),
            vec![Step::Create]
        );
        // RSP-007: a global incident never syncs.
        inc.channel_id = 0;
        assert!(steps(&rule("auto"), &inc, false, &[("i_new", &d)]).is_empty());
    }

    #[test]
    fn a_linked_incident_sends_priority_status_and_unmuted_comments() {
        // spec: RSP-405 (later updates), RSP-080 (mute_reply is not forwarded)
        let mut inc = incident();
        inc.progress = Progress::Processing;
        let none = json!({});
        let said = json!({"comment": "on it", "mute_reply": false});
        let muted = json!({"comment": "private", "mute_reply": true});
        let got = steps(
            &rule("manual"),
            &inc,
            true,
            &[
                ("i_ack", &none),
                ("i_r_severity", &none),
                ("i_comm", &said),
                ("i_comm", &muted),
                ("i_r_title", &none),
            ],
        );
        assert_eq!(
            got,
            vec![
                Step::Status(Progress::Processing),
                Step::Priority(Severity::Critical),
                Step::Comment("on it".into()),
            ]
        );
    }

    #[test]
    fn statuses_priorities_and_urgencies_map_as_specified() {
        // spec: RSP-405 (Triggered → To Do, Processing → In Progress, Closed → Done)
        assert_eq!(jira_status(Progress::Triggered), "To Do");
        assert_eq!(jira_status(Progress::Processing), "In Progress");
        assert_eq!(jira_status(Progress::Closed), "Done");
        // spec: RSP-406 (Low → Info, Medium → Warning, High → Critical)
        assert_eq!(severity_of_urgency("3 - Low"), Some(Severity::Info));
        assert_eq!(severity_of_urgency("2 - Medium"), Some(Severity::Warning));
        assert_eq!(severity_of_urgency("1 - High"), Some(Severity::Critical));
        assert_eq!(severity_of_urgency(""), None);
        let mut m = BTreeMap::new();
        assert_eq!(priority_for(System::Jira, &m, Severity::Critical), None);
        assert_eq!(
            priority_for(System::ServiceNow, &m, Severity::Critical).as_deref(),
            Some("1")
        );
        m.insert("Critical".to_string(), "Highest".to_string());
        assert_eq!(
            priority_for(System::Jira, &m, Severity::Critical).as_deref(),
            Some("Highest")
        );
    }

    #[test]
    fn inbound_states_act_as_specified() {
        // spec: RSP-406 (New reopens a Closed incident; In Progress nothing; On Hold snoozes
        // 120 minutes only when Processing; Resolved, Closed, Canceled close)
        use StateAction::*;
        assert_eq!(state_action("New", Progress::Closed), Reopen);
        assert_eq!(state_action("New", Progress::Processing), Nothing);
        assert_eq!(state_action("In Progress", Progress::Triggered), Nothing);
        assert_eq!(state_action("On Hold", Progress::Processing), Snooze(120));
        assert_eq!(state_action("On Hold", Progress::Triggered), Nothing);
        for s in ["Resolved", "Closed", "Canceled"] {
            assert_eq!(state_action(s, Progress::Triggered), Close);
            assert_eq!(state_action(s, Progress::Closed), Nothing);
        }
    }

    #[test]
    fn mapped_fields_skip_empty_sources_and_join_multi_selects() {
        // spec: RSP-406 (an empty source value never overwrites), RSP-404 (multi-select joined)
        let inc = incident();
        let list = vec![
            FieldMap {
                source: "labels.service".into(),
                target_field: "customfield_1".into(),
            },
            FieldMap {
                source: "labels.missing".into(),
                target_field: "customfield_2".into(),
            },
            FieldMap {
                source: "fields.teams".into(),
                target_field: "u_teams".into(),
            },
        ];
        assert_eq!(
            mapped_fields(&inc, &list),
            vec![
                ("customfield_1".to_string(), "db".to_string()),
                ("u_teams".to_string(), "a,b".to_string())
            ]
        );
        assert!(check_field_mapping(&list).is_ok());
        let bad = vec![FieldMap {
            source: "title".into(),
            target_field: "x".into(),
        }];
        assert!(
            check_field_mapping(&bad)
                .unwrap_err()
                .contains("field_mapping[0].source")
        );
    }

    #[test]
    fn inbound_records_set_mapped_custom_fields_only() {
        // spec: RSP-406 (other fields → custom fields; an empty value never overwrites)
        let list = vec![
            FieldMap {
                source: "fields.owner".into(),
                target_field: "u_owner".into(),
            },
            FieldMap {
                source: "labels.service".into(),
                target_field: "u_service".into(),
            },
            FieldMap {
                source: "fields.region".into(),
                target_field: "u_region".into(),
            },
        ];
        let rec = json!({"u_owner": "ann", "u_service": "db", "u_region": ""});
        let Value::Object(rec) = rec else { panic!() };
        assert_eq!(
            inbound_fields(&list, &rec),
            vec![("owner".to_string(), "ann".to_string())]
        );
    }

    #[test]
    fn the_jira_body_has_the_documented_shape() {
        // spec: RSP-405 (Summary = title, Description = description, Priority = mapped)
        let inc = incident();
        let body = jira_create_body(
            "OPS",
            "Bug",
            &inc,
            Some("Highest"),
            &[("customfield_1".into(), "db".into())],
        );
        assert_eq!(
            body,
            json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Bug"},
                   "summary": "db down", "description": "disk full",
                   "priority": {"name": "Highest"}, "customfield_1": "db"}})
        );
    }
}
