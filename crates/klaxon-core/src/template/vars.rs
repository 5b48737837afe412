//! The root object of RSP-343, built from plain incident data, and the mock incident of
//! RSP-345 that saves and previews render against.

use std::collections::BTreeMap;

use super::value::V;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Person {
    pub person_id: i64,
    pub person_name: String,
    pub email: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Responder {
    pub person_id: i64,
    pub person_name: String,
    pub email: String,
    pub assigned_at: i64,
    pub acknowledged_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssignedTo {
    pub person_ids: Vec<i64>,
    pub escalate_rule_id: String,
    pub escalate_rule_name: String,
    pub layer_idx: i64,
    /// `assign`, `escalate`, `reassign`, `reopen`…
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertVars {
    pub title: String,
    pub description: String,
    pub alert_severity: String,
    pub alert_status: String,
    pub start_time: i64,
    pub end_time: i64,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageVars {
    pub src: String,
    pub href: String,
    pub alt: String,
}

/// Everything a template can read (RSP-343). Times are Unix seconds, 0 when unset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vars {
    pub id: String,
    pub num: String,
    pub detail_url: String,
    /// The one-click action link of this notification (`{base_url}/act/{token}`), when its
    /// channel carries one (e-mail); empty otherwise. A Klaxon extension: Flashduty has no
    /// such variable.
    pub action_url: String,
    pub title: String,
    pub description: String,
    pub impact: String,
    pub root_cause: String,
    pub resolution: String,
    pub incident_severity: String,
    pub incident_status: String,
    pub progress: String,
    pub start_time: i64,
    pub last_time: i64,
    pub end_time: i64,
    pub snoozed_before: i64,
    pub ack_time: i64,
    pub close_time: i64,
    pub creator: Option<Person>,
    pub closer: Option<Person>,
    pub creator_id: i64,
    pub assigned_to: AssignedTo,
    pub responders: Vec<Responder>,
    pub channel_id: i64,
    pub channel_name: String,
    pub group_method: String,
    pub labels: BTreeMap<String, String>,
    pub fields: BTreeMap<String, serde_json::Value>,
    pub alert_cnt: i64,
    /// At most the 100 most recent alerts (RSP-343); [`Vars::to_value`] enforces the cap.
    pub alerts: Vec<AlertVars>,
    pub images: Vec<ImageVars>,
    pub fire_type: String,
    pub is_flapping: bool,
    pub flapping_mute_minutes: i64,
    pub is_in_storm: bool,
    pub frequency: String,
    pub notify_reason: String,
    pub repeat_index: i64,
}

/// RSP-343: at most the 100 most recent alerts.
pub const MAX_ALERTS: usize = 100;

fn person(p: &Option<Person>) -> V {
    match p {
        None => V::Nil,
        Some(p) => V::strukt([
            ("PersonID", V::Int(p.person_id)),
            ("PersonName", V::str(&p.person_name)),
            ("Email", V::str(&p.email)),
        ]),
    }
}

impl Vars {
    pub fn to_value(&self) -> V {
        let alerts = self.alerts.iter().take(MAX_ALERTS).map(|a| {
            V::strukt([
                ("Title", V::str(&a.title)),
                ("Description", V::str(&a.description)),
                ("AlertSeverity", V::str(&a.alert_severity)),
                ("AlertStatus", V::str(&a.alert_status)),
                ("StartTime", V::Int(a.start_time)),
                ("EndTime", V::Int(a.end_time)),
                ("Labels", V::string_map(&a.labels)),
            ])
        });
        let responders = self.responders.iter().map(|r| {
            V::strukt([
                ("PersonID", V::Int(r.person_id)),
                ("PersonName", V::str(&r.person_name)),
                ("Email", V::str(&r.email)),
                ("AssignedAt", V::Int(r.assigned_at)),
                ("AcknowledgedAt", V::Int(r.acknowledged_at)),
            ])
        });
        let images = self.images.iter().map(|i| {
            V::strukt([
                ("Src", V::str(&i.src)),
                ("Href", V::str(&i.href)),
                ("Alt", V::str(&i.alt)),
            ])
        });
        let a = &self.assigned_to;
        V::strukt([
            ("ID", V::str(&self.id)),
            ("Num", V::str(&self.num)),
            ("DetailUrl", V::str(&self.detail_url)),
            ("ActionUrl", V::str(&self.action_url)),
            ("Title", V::str(&self.title)),
            ("Description", V::str(&self.description)),
            ("Impact", V::str(&self.impact)),
            ("RootCause", V::str(&self.root_cause)),
            ("Resolution", V::str(&self.resolution)),
            ("IncidentSeverity", V::str(&self.incident_severity)),
            ("IncidentStatus", V::str(&self.incident_status)),
            ("Progress", V::str(&self.progress)),
            ("StartTime", V::Int(self.start_time)),
            ("LastTime", V::Int(self.last_time)),
            ("EndTime", V::Int(self.end_time)),
            ("SnoozedBefore", V::Int(self.snoozed_before)),
            ("AckTime", V::Int(self.ack_time)),
            ("CloseTime", V::Int(self.close_time)),
            ("Creator", person(&self.creator)),
            ("Closer", person(&self.closer)),
            ("CreatorID", V::Int(self.creator_id)),
            (
                "AssignedTo",
                V::strukt([
                    (
                        "PersonIDs",
                        V::List(a.person_ids.iter().map(|i| V::Int(*i)).collect()),
                    ),
                    ("EscalateRuleID", V::str(&a.escalate_rule_id)),
                    ("EscalateRuleName", V::str(&a.escalate_rule_name)),
                    ("LayerIdx", V::Int(a.layer_idx)),
                    ("Type", V::str(&a.kind)),
                ]),
            ),
            ("Responders", V::List(responders.collect())),
            ("ChannelID", V::Int(self.channel_id)),
            ("ChannelName", V::str(&self.channel_name)),
            ("GroupMethod", V::str(&self.group_method)),
            ("Labels", V::string_map(&self.labels)),
            (
                "Fields",
                V::Map(
                    self.fields
                        .iter()
                        .map(|(k, v)| (k.clone(), V::from_json(v)))
                        .collect(),
                ),
            ),
            ("AlertCnt", V::Int(self.alert_cnt)),
            ("Alerts", V::List(alerts.collect())),
            ("Images", V::List(images.collect())),
            ("FireType", V::str(&self.fire_type)),
            ("IsFlapping", V::Bool(self.is_flapping)),
            (
                "Flapping",
                V::strukt([("MuteMinutes", V::Int(self.flapping_mute_minutes))]),
            ),
            ("IsInStorm", V::Bool(self.is_in_storm)),
            ("Frequency", V::str(&self.frequency)),
            ("NotifyReason", V::str(&self.notify_reason)),
            ("RepeatIndex", V::Int(self.repeat_index)),
        ])
    }

    /// The built-in mock incident of RSP-345: Critical, 2 alerts, labels `resource`, `check`,
    /// `body_text`, 1 responder, one image. `now` is Unix seconds.
    pub fn mock(now: i64) -> Vars {
        let labels: BTreeMap<String, String> = [
            ("resource", "db-01"),
            ("check", "cpu_usage"),
            ("body_text", "CPU usage 97% for 5m"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut labels2 = labels.clone();
        labels2.insert("resource".into(), "db-02".into());
        let alert = |t: &str, l: BTreeMap<String, String>| AlertVars {
            title: t.to_string(),
            description: "CPU usage is above 90%".into(),
            alert_severity: "Critical".into(),
            alert_status: "Critical".into(),
            start_time: now - 600,
            end_time: 0,
            labels: l,
        };
        Vars {
            id: "6560000000000000000000aa".into(),
            num: "A1B2C3".into(),
            detail_url: "https://klaxon.example/incident/detail/6560000000000000000000aa".into(),
            action_url: "https://klaxon.example/act/sample-link".into(),
            title: "High CPU on db-01".into(),
            description: "CPU usage is above 90% on db-01 and db-02".into(),
            incident_severity: "Critical".into(),
            incident_status: "Critical".into(),
            progress: "Triggered".into(),
            start_time: now - 600,
            last_time: now - 60,
            assigned_to: AssignedTo {
                person_ids: vec![1001],
                escalate_rule_id: "6560000000000000000000bb".into(),
                escalate_rule_name: "Default rule".into(),
                layer_idx: 0,
                kind: "assign".into(),
            },
            responders: vec![Responder {
                person_id: 1001,
                person_name: "Alice".into(),
                email: "alice@example.com".into(),
                assigned_at: now - 590,
                acknowledged_at: 0,
            }],
            channel_id: 2001,
            channel_name: "Databases".into(),
            group_method: "p".into(),
            labels: labels.clone(),
            alert_cnt: 2,
            alerts: vec![
                alert("High CPU on db-01", labels),
                alert("High CPU on db-02", labels2),
            ],
            images: vec![ImageVars {
                src: "https://klaxon.example/img/cpu.png".into(),
                href: "https://klaxon.example/d/cpu".into(),
                alt: "cpu".into(),
            }],
            fire_type: "fire".into(),
            flapping_mute_minutes: 120,
            notify_reason: "assign".into(),
            ..Vars::default()
        }
    }
}
