//! The stored shape of a schedule (response.md §1.13), mirrored field for field so the store
//! can keep it as JSON and the Open API can render it. Field names follow the spec, not the
//! wire encodings of openapi-compat.md 2.8 (integer `restrict_mode`, `mode = 1` override
//! layers, …): the API layer translates.
//!
//! Two departures, both forced by the module being pure:
//! - instants are epoch **milliseconds** ([`Millis`]) like the rest of the core, where the
//!   spec's `ts` is Unix seconds on the wire;
//! - wall-clock strings (`HH:MM`) and weekday numbers stay as the client sent them, and are
//!   checked by [`super::validate_schedule`], so a bad value is reported with the name of its
//!   field instead of a bare deserialisation error.

use serde::{Deserialize, Serialize};

use crate::model::Millis;

/// A member's `person_id` (an `ID`, response.md §1.1).
pub type PersonId = i64;
/// An on-call role id (response.md §1.13 "On-call role").
pub type RoleId = i64;

/// `role_id = 0`: "no particular role".
pub const ROLE_NONE: RoleId = 0;
/// Built-in Primary role (DECISION, OQ-15).
pub const ROLE_PRIMARY: RoleId = 1;
/// Built-in Backup role (DECISION, OQ-15).
pub const ROLE_BACKUP: RoleId = 2;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schedule {
    pub schedule_id: i64,
    pub schedule_name: String,
    #[serde(default)]
    pub description: String,
    /// The management team, 0 = none.
    #[serde(default)]
    pub team_id: i64,
    /// IANA zone; every wall-clock setting of the schedule is read in it (OQ-11). The API
    /// fills in the account zone when the client leaves it out.
    pub time_zone: String,
    #[serde(default)]
    pub status: ScheduleStatus,
    /// Normal rotation rules, 0..20. These are the *current* definitions; superseded ones live
    /// in `history`.
    #[serde(default)]
    pub layers: Vec<Layer>,
    #[serde(default)]
    pub overrides: Vec<Override>,
    #[serde(default)]
    pub notify: ScheduleNotify,
    #[serde(default)]
    pub creator_id: PersonId,
    #[serde(default)]
    pub created_at: Millis,
    #[serde(default)]
    pub updated_at: Millis,
    /// Earlier definitions, oldest first (RSP-225, OQ-17). Maintained by
    /// [`super::apply_edit`]; a client cannot write it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PastDefinition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    #[default]
    Enabled,
    /// Nobody is on call in a disabled schedule (RSP-210 step 1).
    Disabled,
}

/// The definition that applied up to `until` (exclusive), from the previous entry's `until`
/// (or from the beginning of time for the first one).
///
/// Why the whole definition and not only the changed layer: the zone and the status change
/// who was on call just as much as a layer does, and a snapshot keeps "evaluate the old
/// version with its own parameters" (RSP-225) trivially true.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastDefinition {
    pub until: Millis,
    pub time_zone: String,
    pub status: ScheduleStatus,
    pub layers: Vec<Layer>,
}

/// A rotation rule (the UI calls it a rule; not an escalation level).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Layer {
    pub layer_id: i64,
    pub layer_name: String,
    /// Display order only; it never changes who is on call (RSP-224).
    #[serde(default)]
    pub weight: i64,
    /// The units that take turns, in order (1..50).
    pub groups: Vec<Group>,
    pub layer_start: Millis,
    /// `None` = open-ended; otherwise > `layer_start`.
    #[serde(default)]
    pub layer_end: Option<Millis>,
    pub rotation_unit: RotationUnit,
    /// 1..30; the cycle is `rotation_value × rotation_unit`.
    pub rotation_value: i64,
    /// Allowed only when the cycle is exactly 7 days (RSP-214).
    #[serde(default)]
    pub handoff: Option<Handoff>,
    #[serde(default)]
    pub fair_rotation: bool,
    /// Weekdays (0 = Sunday) the layer is active on; `None` = mask off.
    #[serde(default)]
    pub day_mask: Option<Vec<i64>>,
    #[serde(default)]
    pub mask_continuous_enabled: bool,
    #[serde(default)]
    pub restrict_mode: RestrictMode,
    #[serde(default)]
    pub restrict_periods: Vec<RestrictPeriod>,
    #[serde(default)]
    pub calendar_mask: Option<CalendarMask>,
    /// When this version of the layer took effect (RSP-225); set by [`super::apply_edit`].
    #[serde(default)]
    pub version_from: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationUnit {
    Hour,
    Day,
    #[default]
    Week,
    Month,
}

/// A custom weekly handoff point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// 0 = Sunday … 6 = Saturday.
    pub weekday: i64,
    /// `HH:MM`.
    pub time: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestrictMode {
    #[default]
    None,
    Daily,
    Weekly,
}

/// A time restriction period. Daily periods carry only `start`/`end`; weekly ones also the
/// two weekdays. One struct for both keeps the stored JSON exactly the spec's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestrictPeriod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_weekday: Option<i64>,
    pub start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_weekday: Option<i64>,
    pub end: String,
}

/// Date skipping by service calendar (DECISION, OQ-18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarMask {
    pub cal_id: String,
    pub day_type: DayType,
}

/// A calendar day type (RSP-270).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayType {
    Workday,
    Restday,
}

/// Everyone in a group is on call at the same time (multi-person on-call).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Group {
    #[serde(default)]
    pub group_name: String,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub person_id: PersonId,
    /// 0 = no particular role.
    #[serde(default)]
    pub role_id: RoleId,
}

/// Replaces every layer during `[start, end)` (RSP-212). Never deleted automatically.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Override {
    pub override_id: i64,
    pub start: Millis,
    pub end: Millis,
    pub person_id: PersonId,
    #[serde(default)]
    pub created_by: PersonId,
    #[serde(default)]
    pub created_at: Millis,
    #[serde(default)]
    pub note: String,
}

/// Shift reminders (RSP-230 … RSP-232).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScheduleNotify {
    /// Seconds; 0 = off, else a multiple of 300 in 300..86400.
    #[serde(default)]
    pub advance_in_time: i64,
    #[serde(default)]
    pub fixed_time: Option<FixedTime>,
    #[serde(default)]
    pub by: Option<ReminderBy>,
    #[serde(default)]
    pub webhooks: Vec<ReminderChat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedTime {
    pub cycle: FixedTimeCycle,
    /// `HH:MM` in the schedule's zone.
    pub start: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixedTimeCycle {
    Day,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReminderBy {
    #[serde(default)]
    pub follow_preference: bool,
    #[serde(default)]
    pub personal_channels: Vec<DirectChannel>,
}

/// `DirectChannel` of response.md §1.1. It lives here until the notification work gives the
/// core a shared definition; the names are the wire spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectChannel {
    Voice,
    Sms,
    Email,
    App,
    FeishuApp,
    DingtalkApp,
    WecomApp,
    SlackApp,
    TeamsApp,
}

/// A group chat or bot that receives shift reminders. `settings` is kept as raw JSON: its
/// shape per type belongs to the GroupChatTarget of response.md §1.12, which the
/// notification side owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderChat {
    #[serde(rename = "type")]
    pub chat_type: ReminderChatType,
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// The chat types §1.13 offers for reminders (no `teams_app`, no `wecom_app`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderChatType {
    FeishuApp,
    DingtalkApp,
    SlackApp,
    Wecom,
    Dingtalk,
    Feishu,
    Slack,
    Telegram,
    Zoom,
}
