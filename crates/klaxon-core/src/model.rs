//! The canonical data model shared by ingestion, the store and the API (ingest.md §1.2–§1.3).
//!
//! All instants are epoch **milliseconds** internally (DESIGN.md: "instants as integer epoch
//! milliseconds"); the wire renders them as Unix seconds (openapi-compat.md 1.7).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Epoch milliseconds.
pub type Millis = i64;

/// One day, the alert merge window of ING-112.
pub const DAY_MS: Millis = 86_400_000;

/// Flat label map. A `BTreeMap` keeps keys byte-wise sorted, which `canon(L)` (§0) relies on.
pub type Labels = BTreeMap<String, String>;

/// `Critical` > `Warning` > `Info` (ingest.md §1.2). The derived `Ord` follows declaration
/// order, so the variants are listed from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Event, alert and incident status: a severity, or `Ok` for recovered.
/// Order for "max": Critical > Warning > Info > Ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    Ok,
    Info,
    Warning,
    Critical,
}

impl Status {
    /// The severity of a trigger status; `None` for `Ok`.
    pub fn severity(self) -> Option<Severity> {
        match self {
            Status::Ok => None,
            Status::Info => Some(Severity::Info),
            Status::Warning => Some(Severity::Warning),
            Status::Critical => Some(Severity::Critical),
        }
    }

    pub fn is_trigger(self) -> bool {
        self != Status::Ok
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "Ok",
            Status::Info => "Info",
            Status::Warning => "Warning",
            Status::Critical => "Critical",
        }
    }
}

impl From<Severity> for Status {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Info => Status::Info,
            Severity::Warning => Status::Warning,
            Severity::Critical => Status::Critical,
        }
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        Status::from(self).as_str()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parsing is exact and case-sensitive (ING-021).
impl FromStr for Status {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "Ok" => Ok(Status::Ok),
            "Info" => Ok(Status::Info),
            "Warning" => Ok(Status::Warning),
            "Critical" => Ok(Status::Critical),
            _ => Err(()),
        }
    }
}

impl FromStr for Severity {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Status::from_str(s)?.severity().ok_or(())
    }
}

/// Incident progress (ingest.md §1.2). UI labels: Pending, In Progress, Closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Progress {
    Triggered,
    Processing,
    Closed,
}

impl Progress {
    pub fn as_str(self) -> &'static str {
        match self {
            Progress::Triggered => "Triggered",
            Progress::Processing => "Processing",
            Progress::Closed => "Closed",
        }
    }
}

impl FromStr for Progress {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "Triggered" => Ok(Progress::Triggered),
            "Processing" => Ok(Progress::Processing),
            "Closed" => Ok(Progress::Closed),
            _ => Err(()),
        }
    }
}

/// An image attached to an event or alert (ingest.md §1.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub alt: String,
    pub src: String,
    pub href: String,
}

/// A push event after the adapter and validation (stage 3 of §1.4): what the inbox holds.
///
/// `event_severity` is `None` only for a recovery whose source gave no severity; processing
/// then takes the resolved alert's severity, else `Info` (ING-050).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub alert_key: String,
    pub event_status: Status,
    pub event_severity: Option<Severity>,
    pub title: String,
    pub title_rule: String,
    pub description: String,
    pub labels: Labels,
    pub images: Vec<Image>,
    /// ING-029, already normalised (milliseconds, whole seconds).
    pub event_time: Millis,
    /// The source item as received, cut to [`RAW_MAX_BYTES`] (ING-054); for display only.
    #[serde(default)]
    pub raw: String,
}

/// ING-054: at most 64 KiB of the source item is kept with an event.
pub const RAW_MAX_BYTES: usize = 64 * 1024;

/// Cuts `s` to at most `max` bytes on a character boundary (ingest.md §0 "Bytes").
pub fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Where a queued event came from: everything processing needs besides the event itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventOrigin {
    pub request_id: String,
    pub account_id: i64,
    pub integration_id: i64,
    pub integration_type: String,
    pub integration_name: String,
    /// The dedicated integration's channel (routing of shared integrations is issue 3).
    pub channel_id: i64,
    pub received_at: Millis,
}

/// An accepted event waiting in the durable inbox (hop 1 → hop 2 of DESIGN.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// Arrival order; processing follows it (ING-011).
    pub seq: i64,
    pub origin: EventOrigin,
    pub event: NewEvent,
}

/// A stored alert event (ingest.md §1.3.3; the Open API's AlertEvent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub event_id: String,
    pub request_id: String,
    pub account_id: i64,
    pub channel_id: i64,
    pub integration_id: i64,
    pub integration_type: String,
    pub alert_id: String,
    pub alert_key: String,
    pub event_status: Status,
    pub event_severity: Severity,
    pub event_time: Millis,
    pub received_at: Millis,
    pub title: String,
    pub title_rule: String,
    pub description: String,
    pub labels: Labels,
    pub images: Vec<Image>,
    /// The source item (ING-054).
    pub raw: String,
}

/// How an alert was resolved (ingest.md §1.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResolvedBy {
    None,
    Event,
    Expiry,
}

impl ResolvedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedBy::None => "",
            ResolvedBy::Event => "event",
            ResolvedBy::Expiry => "expiry",
        }
    }
}

impl FromStr for ResolvedBy {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "" => Ok(ResolvedBy::None),
            "event" => Ok(ResolvedBy::Event),
            "expiry" => Ok(ResolvedBy::Expiry),
            _ => Err(()),
        }
    }
}

/// The platform-side record of one problem (ingest.md §1.3.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub account_id: i64,
    pub channel_id: i64,
    pub integration_id: i64,
    pub integration_type: String,
    pub integration_name: String,
    pub alert_key: String,
    pub title: String,
    pub title_rule: String,
    pub description: String,
    pub alert_severity: Severity,
    pub alert_status: Status,
    pub labels: Labels,
    pub images: Vec<Image>,
    pub start_time: Millis,
    pub last_time: Millis,
    /// 0 while unresolved.
    pub end_time: Millis,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub event_cnt: i64,
    /// "" when not in an incident.
    pub incident_id: String,
    pub closed: bool,
    pub close_time: Millis,
    pub resolved_by: ResolvedBy,
    pub ever_muted: bool,
    /// Kept with a silence or inhibit mark (ING-123, ING-130, ING-140); such an alert has no
    /// incident.
    #[serde(default)]
    pub mark: Mark,
    /// The silence or inhibit rule behind `mark`; "" when unmarked.
    #[serde(default)]
    pub mark_rule_id: String,
}

/// `AlertMark` (ingest.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    #[default]
    None,
    Silenced,
    Inhibited,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::None => "none",
            Mark::Silenced => "silenced",
            Mark::Inhibited => "inhibited",
        }
    }
}

impl FromStr for Mark {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "none" | "" => Ok(Mark::None),
            "silenced" => Ok(Mark::Silenced),
            "inhibited" => Ok(Mark::Inhibited),
            _ => Err(()),
        }
    }
}

impl Alert {
    /// Active = not closed and not recovered (ingest.md §1.3.4).
    pub fn is_active(&self) -> bool {
        !self.closed && self.alert_status != Status::Ok
    }

    /// Expired = active and at least 24 h old by platform time (ING-112).
    pub fn is_expired(&self, now: Millis) -> bool {
        self.is_active() && now - self.created_at >= DAY_MS
    }
}

/// How an incident was closed (RSP-050); "" while open.
pub type CloseSource = String;

/// The unit people handle (ingest.md §1.3.5; response.md §1.7 owns the full model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub incident_id: String,
    pub num: String,
    pub account_id: i64,
    pub channel_id: i64,
    pub title: String,
    pub description: String,
    pub incident_severity: Severity,
    pub incident_status: Status,
    pub progress: Progress,
    pub start_time: Millis,
    pub last_time: Millis,
    pub end_time: Millis,
    pub ack_time: Millis,
    pub close_time: Millis,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub creator_id: i64,
    pub closer_id: i64,
    pub close_source: CloseSource,
    pub labels: Labels,
    pub alert_cnt: i64,
    pub active_alert_cnt: i64,
    /// Sum of `event_cnt` over its alerts (ingest.md §1.5.4), kept as a counter.
    pub alert_event_cnt: i64,
    /// `n`, `p` or `i`.
    pub group_method: String,
    pub group_key: String,
    /// Intelligent grouping's reference text (ING-157): the first alert's compared text at
    /// creation, never changed afterwards; "" for other methods.
    #[serde(default)]
    pub group_text: String,
    pub last_merge_time: Millis,
    pub first_alert_id: String,
    pub first_alert_key: String,
    pub integration_id: i64,
    pub integration_type: String,
    pub is_flapping: bool,
    pub storm_level: i64,
    /// Any of `title`, `description`, `incident_severity` edited by a person.
    pub manual_overrides: Vec<String>,
    /// The response side's state (response.md 1.7–1.9); ingestion carries it unchanged.
    #[serde(default)]
    pub response: crate::response::Response,
}

/// What incident derivation needs to know about each alert of an incident (ING-172…175).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSummary {
    pub alert_id: String,
    pub alert_status: Status,
    pub alert_severity: Severity,
    pub last_time: Millis,
    pub end_time: Millis,
    pub event_cnt: i64,
}

impl From<&Alert> for AlertSummary {
    fn from(a: &Alert) -> Self {
        AlertSummary {
            alert_id: a.alert_id.clone(),
            alert_status: a.alert_status,
            alert_severity: a.alert_severity,
            last_time: a.last_time,
            end_time: a.end_time,
            event_cnt: a.event_cnt,
        }
    }
}

/// Channel status (ingest.md §1.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelStatus {
    Enabled,
    Disabled,
    Deleted,
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Enabled => "enabled",
            ChannelStatus::Disabled => "disabled",
            ChannelStatus::Deleted => "deleted",
        }
    }
}

impl FromStr for ChannelStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "enabled" => Ok(ChannelStatus::Enabled),
            "disabled" => Ok(ChannelStatus::Disabled),
            "deleted" => Ok(ChannelStatus::Deleted),
            _ => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // spec: ING-054
    #[test]
    fn raw_is_cut_to_64_kib_on_a_character_boundary() {
        let short = "{\"a\":1}";
        assert_eq!(cut_bytes(short, RAW_MAX_BYTES), short);
        // 'é' is two bytes: a cut in its middle backs off to the boundary before it.
        let long = format!("{}é", "a".repeat(RAW_MAX_BYTES - 1));
        let cut = cut_bytes(&long, RAW_MAX_BYTES);
        assert_eq!(cut.len(), RAW_MAX_BYTES - 1);
        assert!(cut.chars().all(|c| c == 'a'));
    }
}
