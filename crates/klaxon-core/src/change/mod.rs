//! Change events (ingest.md §1.3.8, §2.20): the normalised change event, the status values
//! and the standard change protocol (ING-241). Changes never alert (ING-243); the store keeps
//! them as change records (ING-242).

use serde_json::Value;

use crate::error::ApiError;
use crate::model::{Labels, Millis};
use crate::standard::{
    DESCRIPTION_MAX_CHARS, TITLE_MAX_CHARS, canon_labels, hash_parts, parse_event_time,
    parse_labels, truncate,
};

/// ING-241: `change_key` at most 255 characters.
pub const CHANGE_KEY_MAX_CHARS: usize = 255;
/// §1.3.8: `link` at most 1024 characters, http(s) only.
pub const LINK_MAX_CHARS: usize = 1024;

/// §1.2 ChangeStatus, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    Planned,
    Ready,
    Processing,
    Canceled,
    Done,
}

impl ChangeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Planned => "Planned",
            ChangeStatus::Ready => "Ready",
            ChangeStatus::Processing => "Processing",
            ChangeStatus::Canceled => "Canceled",
            ChangeStatus::Done => "Done",
        }
    }

    /// Case-sensitive (ING-241).
    pub fn parse(s: &str) -> Option<ChangeStatus> {
        match s {
            "Planned" => Some(ChangeStatus::Planned),
            "Ready" => Some(ChangeStatus::Ready),
            "Processing" => Some(ChangeStatus::Processing),
            "Canceled" => Some(ChangeStatus::Canceled),
            "Done" => Some(ChangeStatus::Done),
            _ => None,
        }
    }

    /// `Done` and `Canceled` end a change (ING-242).
    pub fn is_terminal(self) -> bool {
        matches!(self, ChangeStatus::Done | ChangeStatus::Canceled)
    }
}

/// A normalised change event (§1.3.8).
#[derive(Debug, Clone, PartialEq)]
pub struct NewChangeEvent {
    pub change_key: String,
    pub title: String,
    pub description: String,
    /// `None`: keep the record's current status, or `Planned` for a new record (§3.10, an
    /// unlisted Jira status).
    pub change_status: Option<ChangeStatus>,
    pub link: String,
    pub labels: Labels,
    pub event_time: Millis,
}

/// What the store decides for an event given the latest record of its key (ING-242).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeEffect {
    /// Start a new change record with this status.
    Start(ChangeStatus),
    /// Update the latest record to this status.
    Update(ChangeStatus),
}

/// ING-242: `latest` is the status of the key's latest record, if any.
pub fn change_effect(latest: Option<ChangeStatus>, event: Option<ChangeStatus>) -> ChangeEffect {
    match (latest, event) {
        (None, s) => ChangeEffect::Start(s.unwrap_or(ChangeStatus::Planned)),
        (Some(cur), Some(s)) if cur.is_terminal() && !s.is_terminal() => ChangeEffect::Start(s),
        (Some(cur), s) => ChangeEffect::Update(s.unwrap_or(cur)),
    }
}

/// §1.3.8: an http(s) URL of at most 1024 characters, otherwise dropped.
pub fn clean_link(link: &str) -> String {
    let link = link.trim();
    let lower = link.to_ascii_lowercase();
    if (lower.starts_with("http://") || lower.starts_with("https://"))
        && link.chars().count() <= LINK_MAX_CHARS
    {
        link.to_owned()
    } else {
        String::new()
    }
}

fn opt_str<'v>(
    obj: &'v serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<&'v str>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("{field} must be a string"))),
    }
}

/// ING-241: one standard change push body.
pub fn parse_standard_change(
    body: &Value,
    integration_id: i64,
    received_at: Millis,
) -> Result<NewChangeEvent, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::invalid("request body must be a JSON object"))?;
    let title = opt_str(obj, "title")?.unwrap_or("").trim();
    if title.is_empty() {
        return Err(ApiError::invalid("title is required"));
    }
    let title = truncate(title, TITLE_MAX_CHARS);
    let status = match opt_str(obj, "change_status")? {
        None => return Err(ApiError::invalid("change_status is required")),
        Some(s) => ChangeStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "change_status {s} is invalid (Planned, Ready, Processing, Canceled or Done)"
            ))
        })?,
    };
    let description = truncate(
        opt_str(obj, "description")?.unwrap_or(""),
        DESCRIPTION_MAX_CHARS,
    );
    let link = clean_link(opt_str(obj, "link")?.unwrap_or(""));
    let labels = parse_labels(obj.get("labels"), &[])?;
    // ING-241: a future time of a `Ready` change is a planned start and kept as given.
    let event_time = match (status, obj.get("event_time")) {
        (ChangeStatus::Ready, Some(Value::Number(n))) if n.as_i64().is_some_and(|s| s > 0) => {
            let s = n.as_i64().unwrap_or(0);
            let secs = if s > 100_000_000_000 { s / 1000 } else { s };
            if secs.saturating_mul(1000) > received_at {
                secs.saturating_mul(1000)
            } else {
                parse_event_time(obj.get("event_time"), received_at)?
            }
        }
        (_, raw) => parse_event_time(raw, received_at)?,
    };
    let change_key = match opt_str(obj, "change_key")? {
        Some(k) if k.chars().count() > CHANGE_KEY_MAX_CHARS => {
            return Err(ApiError::invalid(
                "change_key is too long (at most 255 characters)",
            ));
        }
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => hash_parts(&[
            "chg",
            &integration_id.to_string(),
            &title,
            &canon_labels(&labels),
        ]),
    };
    Ok(NewChangeEvent {
        change_key,
        title,
        description,
        change_status: Some(status),
        link,
        labels,
        event_time,
    })
}

pub mod correlation;
