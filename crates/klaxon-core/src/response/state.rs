//! The response side of an incident (response.md §1.7–§1.10): responders, the current
//! assignment, the internal escalation state and the editable texts. Ingestion never reads
//! these; it carries them through unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Millis;

/// How a responder got onto an incident (response.md 1.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponderAs {
    Assignee,
    Added,
    Acker,
    Merged,
}

/// One person on the incident (response.md 1.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responder {
    pub person_id: i64,
    pub assigned_at: Millis,
    /// 0 = has not acknowledged (or withdrew it).
    pub acknowledged_at: Millis,
    #[serde(rename = "as")]
    pub as_: ResponderAs,
}

/// The kind of an assignment (response.md 1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssignType {
    Assign,
    Reassign,
    Escalate,
    Reopen,
}

impl AssignType {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignType::Assign => "assign",
            AssignType::Reassign => "reassign",
            AssignType::Escalate => "escalate",
            AssignType::Reopen => "reopen",
        }
    }
}

/// The most recent assignment (`assigned_to`, response.md 1.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AssignType,
    /// "" for direct assignments.
    pub escalate_rule_id: String,
    pub escalate_rule_name: String,
    /// 0-based level; -1 for direct assignments.
    pub layer_idx: i64,
    pub person_ids: Vec<i64>,
    pub schedule_to_role_ids: BTreeMap<i64, Vec<i64>>,
    pub assigned_at: Millis,
    pub creator_id: i64,
}

impl Assignment {
    pub fn is_rule_based(&self) -> bool {
        !self.escalate_rule_id.is_empty()
    }
}

/// The internal escalation state, one per incident (response.md 1.9.1). Every timer carries the
/// instant it was scheduled for; a timer whose instant no longer matches this state is stale
/// and does nothing, which is what makes timer processing idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EscalationState {
    pub rule_id: String,
    pub layer_idx: i64,
    pub level_entered_at: Millis,
    /// 0 = no pending escalation.
    pub escalate_deadline: Millis,
    pub refire_count: i64,
    /// 0 = no pending repeat.
    pub next_refire_at: Millis,
    pub muted: bool,
    /// 0 = no delayed first assignment pending (RSP-160).
    pub pending_delay_until: Millis,
}

/// Everything the response side keeps on an incident besides the ingestion-owned fields.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Response {
    /// Snooze end; 0 when not snoozed.
    #[serde(default)]
    pub snoozed_before: Millis,
    #[serde(default)]
    pub responders: Vec<Responder>,
    #[serde(default)]
    pub assigned_to: Option<Assignment>,
    #[serde(default)]
    pub escalation: Option<EscalationState>,
    #[serde(default)]
    pub ever_muted: bool,
    #[serde(default)]
    pub impact: String,
    #[serde(default)]
    pub root_cause: String,
    #[serde(default)]
    pub resolution: String,
    /// Custom field values by `field_name` (response.md 1.11).
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// RSP-452: `rare` (outlier), `frequent`, or "" when not evaluated.
    #[serde(default)]
    pub frequency: String,
}

impl Response {
    pub fn responder(&self, person_id: i64) -> Option<&Responder> {
        self.responders.iter().find(|r| r.person_id == person_id)
    }

    pub fn any_acknowledged(&self) -> bool {
        self.responders.iter().any(|r| r.acknowledged_at > 0)
    }

    pub fn is_snoozed(&self, now: Millis) -> bool {
        self.snoozed_before > now
    }
}
