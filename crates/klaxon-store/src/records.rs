//! Rows and filters of the read side.

use klaxon_core::model::{ChannelStatus, Millis, Progress, Severity, Status};
use serde::{Deserialize, Serialize};

/// The tenant (ingest.md §1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: i64,
    pub account_name: String,
    pub email: String,
    pub locale: String,
    pub time_zone: String,
    pub created_at: Millis,
    /// Closed incidents are deleted this many days after they closed; 0 = kept forever
    /// (docs/data-retention.md).
    #[serde(default)]
    pub incident_retention_days: i64,
}

/// A person of the account (openapi-compat.md 2.10). `member_id` is also the person id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub member_id: i64,
    pub account_id: i64,
    pub member_name: String,
    pub email: String,
    pub status: String,
    /// Built-in role ids (2 Admin, 6 Responder, 8 Viewer); the owner has 2.
    pub account_role_ids: Vec<i64>,
    pub is_owner: bool,
    pub locale: String,
    pub time_zone: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A channel with the fields this slice reads (ingest.md §1.3.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub channel_id: i64,
    pub account_id: i64,
    pub channel_name: String,
    pub description: String,
    pub team_id: i64,
    pub creator_id: i64,
    pub status: ChannelStatus,
    pub auto_resolve_timeout: i64,
    pub auto_resolve_mode: String,
    /// RSP-526: incidents of a private channel are listed only for its people.
    pub is_private: bool,
    /// OQ-47: managing teams in addition to `team_id` (≤ 3).
    pub managing_team_ids: Vec<i64>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An inbound integration (ingest.md §1.3.1), as the push path needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    pub integration_id: i64,
    pub account_id: i64,
    pub integration_name: String,
    /// Type id of §3.11, e.g. `standard`.
    pub integration_type: String,
    /// `dedicated` or `shared`.
    pub kind: String,
    /// The owning channel of a dedicated integration; 0 for shared.
    pub channel_id: i64,
    pub integration_key: String,
    pub enabled: bool,
    pub last_event_time: Millis,
    /// Type-specific settings (ingest.md §1.3.1) as JSON object text; `{}` when none.
    pub settings: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A new inbound integration (openapi-compat.md §2.6.1 `/integration/create`), validated by
/// the API layer.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub integration_name: String,
    pub integration_type: String,
    pub kind: String,
    pub channel_id: i64,
    /// 32 lower-case hex.
    pub integration_key: String,
    pub enabled: bool,
    /// JSON object text.
    pub settings: String,
    pub now: Millis,
}

/// `/integration/list` filters; empty lists mean "any".
#[derive(Debug, Clone, Default)]
pub struct IntegrationFilter {
    /// 1-based page.
    pub p: i64,
    pub limit: i64,
    /// Case-insensitive substring of the name.
    pub query: Option<String>,
    pub types: Vec<String>,
    pub kinds: Vec<String>,
    pub channel_ids: Vec<i64>,
    pub enabled: Option<bool>,
}

/// Who an APP key acts as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppKeyOwner {
    pub account_id: i64,
    pub member_id: i64,
}

/// What the first start creates.
#[derive(Debug, Clone)]
pub struct BootstrapSeed {
    pub account_name: String,
    pub owner_email: String,
    pub owner_name: String,
    /// Plain password of the owner; only its hash is stored.
    pub owner_password: String,
    /// 32 lower-case hex.
    pub app_key: String,
    /// 32 lower-case hex (ING §1.3.1).
    pub integration_key: String,
}

/// The result of [`crate::Store::bootstrap`].
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// True on the very first start only.
    pub created: bool,
    pub account_id: i64,
    pub owner_member_id: i64,
    pub owner_email: String,
    pub app_key: String,
    pub channel_id: i64,
    pub integration_id: i64,
    pub integration_key: String,
}

/// One page of a list (openapi-compat.md 1.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub has_next_page: bool,
    /// Opaque cursor for the next page; only when there is one and cursor paging was used or
    /// possible.
    pub search_after_ctx: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page {
            items: Vec::new(),
            total: 0,
            has_next_page: false,
            search_after_ctx: None,
        }
    }
}

/// Offset or cursor paging, already clamped by the API layer (p ≥ 1, 1 ≤ limit ≤ max).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paging {
    pub p: i64,
    pub limit: i64,
    pub asc: bool,
    /// When set, `p` is ignored and the page starts after this cursor.
    pub search_after_ctx: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ChannelFilter {
    pub paging: Paging,
    /// Case-insensitive substring of the name.
    pub query: Option<String>,
    /// Exact name.
    pub channel_name: Option<String>,
    pub channel_ids: Vec<i64>,
}

/// `/incident/list` filters (openapi-compat.md 2.1); times in ms, `start ≤ start_time < end`.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub paging: Paging,
    pub start_time: Millis,
    pub end_time: Millis,
    pub progress: Vec<Progress>,
    pub severities: Vec<Severity>,
    pub channel_ids: Vec<i64>,
    pub incident_ids: Vec<String>,
    pub nums: Vec<String>,
    /// Title substring, or a direct 24-hex id / 6-hex num lookup.
    pub query: Option<String>,
    pub creator_ids: Vec<i64>,
    pub closer_ids: Vec<i64>,
    /// `Some(true)`: only incidents snoozed at `now`; `Some(false)`: only those not snoozed.
    pub is_snoozed: Option<bool>,
    /// `Some(true)`: only incidents muted by flapping detection (RSP-204); `Some(false)`:
    /// only the others (RSP-503).
    pub ever_muted: Option<bool>,
    /// The instant `is_snoozed` is evaluated at.
    pub now: Millis,
    /// Incidents with any of these responders / people who acknowledged (RSP-503).
    pub responder_ids: Vec<i64>,
    pub acker_ids: Vec<i64>,
    /// Custom field filters: every field must have one of its listed values (RSP-503).
    pub fields: Vec<(String, Vec<String>)>,
    /// Label filters (RSP-503: exact, wildcard or regex values), compiled for the
    /// `LabelSearch` context; the empty filter (the default) keeps every incident.
    pub labels: klaxon_core::condition::Filter,
    /// Channels whose incidents the caller may not list (private channels, RSP-507,
    /// RSP-526); left out of the page and of `total`.
    pub hidden_channel_ids: Vec<i64>,
}

/// `/alert/list` filters (openapi-compat.md 2.3).
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub paging: Paging,
    pub start_time: Millis,
    pub end_time: Millis,
    pub is_active: Option<bool>,
    pub severities: Vec<Severity>,
    pub channel_ids: Vec<i64>,
    pub integration_ids: Vec<i64>,
    pub alert_ids: Vec<String>,
    pub alert_keys: Vec<String>,
    pub incident_id: Option<String>,
    /// `ever_muted` (openapi-compat.md 2.3): alerts ever kept with a silence/inhibit mark.
    pub ever_muted: Option<bool>,
    /// Klaxon extension: alerts currently marked by this silence or inhibit rule (ING-130).
    pub mark_rule_id: Option<String>,
}

/// `/alert-event/list` filters (openapi-compat.md 2.3).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub paging: Paging,
    /// 0 = unbounded.
    pub start_time: Millis,
    /// 0 = unbounded.
    pub end_time: Millis,
    pub integration_ids: Vec<i64>,
    pub integration_types: Vec<String>,
    pub channel_ids: Vec<i64>,
    /// Event severities (for recoveries: their `event_severity`).
    pub severities: Vec<Severity>,
    pub alert_id: Option<String>,
    pub statuses: Vec<Status>,
}
