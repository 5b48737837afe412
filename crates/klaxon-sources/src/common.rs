//! What every adapter shares: reading fields with typed errors, the one event builder that
//! applies §2.4/§3.0, and the severity table of Prometheus and Grafana (§3.2).

use klaxon_core::error::ApiError;
use klaxon_core::model::{Image, Millis, NewEvent, RAW_MAX_BYTES, Severity, Status, cut_bytes};
use klaxon_core::standard::{
    ALERT_KEY_MAX_CHARS, DESCRIPTION_MAX_CHARS, TITLE_MAX_CHARS, adapter_labels, label_text,
    parse_event_time, truncate,
};
use serde_json::{Map, Value};

use crate::Context;

/// An event as an adapter reads it from the source, before the shared normalisation.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub status: Status,
    /// The severity the source reports; for a recovery `None` lets processing take the
    /// resolved alert's (ING-050).
    pub severity: Option<Severity>,
    pub title: String,
    pub description: String,
    pub alert_key: String,
    /// The source's own labels, first one of a key wins.
    pub labels: Vec<(String, String)>,
    /// Labels the adapter derives, set only when the source did not send the key (§3.0
    /// "fill when absent", ING-053).
    pub derived: Vec<(String, String)>,
    pub images: Vec<Image>,
    /// ING-029 already applied (milliseconds).
    pub event_time: Millis,
    /// The source item as received (ING-054); cut here.
    pub raw: String,
}

impl Draft {
    pub fn new(status: Status, received_at: Millis) -> Draft {
        Draft {
            status,
            severity: status.severity(),
            title: String::new(),
            description: String::new(),
            alert_key: String::new(),
            labels: Vec::new(),
            derived: Vec::new(),
            images: Vec::new(),
            event_time: received_at - received_at.rem_euclid(1000),
            raw: String::new(),
        }
    }

    /// Adds a derived label (fill when absent) if the value is non-empty.
    pub fn derive(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if !value.is_empty() {
            self.derived.push((key.to_owned(), value));
        }
    }

    /// §3.0 / §2.4: labels (source, then derived, then the query's; ING-052, ING-053,
    /// ING-012), truncation (ING-024), raw cut (ING-054).
    pub fn finish(self, ctx: &Context<'_>) -> NewEvent {
        let query = ctx
            .query_labels
            .iter()
            .rev() // ING-012: the last of a repeated parameter wins; first-wins below
            .filter(|(k, _)| k != "integration_key")
            .cloned();
        let (labels, _labels_truncated) =
            adapter_labels(self.labels.into_iter().chain(self.derived).chain(query));
        NewEvent {
            alert_key: self.alert_key,
            event_status: self.status,
            event_severity: if self.status.is_trigger() {
                self.status.severity()
            } else {
                self.severity
            },
            title: truncate(self.title.trim(), TITLE_MAX_CHARS),
            title_rule: String::new(),
            description: truncate(&self.description, DESCRIPTION_MAX_CHARS),
            labels,
            images: self.images,
            event_time: self.event_time,
            raw: cut_bytes(&self.raw, RAW_MAX_BYTES).to_owned(),
        }
    }
}

/// The body as an object, or a 400.
pub(crate) fn object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| ApiError::invalid(format!("{what} must be a JSON object")))
}

/// An optional object member: absent or null → `None`; another type → 400 naming `path`.
pub(crate) fn opt_object<'v>(
    obj: &'v Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<&'v Map<String, Value>>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(ApiError::invalid(format!("{path} must be an object"))),
    }
}

/// An optional text member. Strings as is, numbers and booleans as text (sources are not
/// consistent about quoting); absent or null → `None`; objects/arrays → 400 naming `path`.
pub(crate) fn opt_text(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<String>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(_) | Value::Object(_)) => {
            Err(ApiError::invalid(format!("{path} must be a string")))
        }
        Some(v) => Ok(label_text(v)),
    }
}

/// Like [`opt_text`], with empty and whitespace-only text also `None`.
pub(crate) fn non_empty(
    obj: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<String>, ApiError> {
    Ok(opt_text(obj, field, path)?.filter(|s| !s.trim().is_empty()))
}

/// A map's members as label pairs (values converted per ING-052).
pub(crate) fn pairs(obj: &Map<String, Value>) -> Vec<(String, String)> {
    obj.iter()
        .filter_map(|(k, v)| label_text(v).map(|t| (k.clone(), t)))
        .collect()
}

/// A source-supplied alert key: used verbatim; longer than 255 characters → 400 naming the
/// source field (as ING-025 does for the standard protocol).
pub(crate) fn source_key(key: String, path: &str) -> Result<String, ApiError> {
    if key.chars().count() > ALERT_KEY_MAX_CHARS {
        return Err(ApiError::invalid(format!("{path} is too long")));
    }
    Ok(key)
}

/// ING-029 bounds over a source time in seconds (or milliseconds above 10^12); anything
/// unusable is the receive time. Never fails: source times are advisory.
pub(crate) fn event_time(secs: Option<f64>, received_at: Millis) -> Millis {
    let value = secs
        .filter(|s| s.is_finite())
        .and_then(|s| serde_json::Number::from_f64(s.floor()))
        .map(Value::Number);
    parse_event_time(value.as_ref(), received_at)
        .unwrap_or(received_at - received_at.rem_euclid(1000))
}

/// A number, or a string holding one, as `f64`.
pub(crate) fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// An RFC 3339 / ISO 8601 instant, as epoch seconds.
pub(crate) fn iso_seconds(text: &str) -> Option<f64> {
    let ts: jiff::Timestamp = text.trim().parse().ok()?;
    Some(ts.as_second() as f64)
}

/// `s` is an `http://` or `https://` URL.
pub(crate) fn is_http_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The severity table of Prometheus and Grafana Alerting (§3.2), looked up case-insensitively
/// and trimmed (ING-051). `None` (no severity label) and unlisted values are `Warning`;
/// `ok` is a recovery.
pub(crate) fn prometheus_status(value: Option<&str>) -> Status {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("critical") => Status::Critical,
        Some("warning" | "warn") => Status::Warning,
        Some("info" | "acknowledged" | "unknown" | "unk") => Status::Info,
        Some("ok") => Status::Ok,
        _ => Status::Warning,
    }
}

/// A JSON value re-serialised compactly (for `raw`, ING-054).
pub(crate) fn compact(value: &Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // spec: ING-051 — case-insensitive, trimmed; unlisted → Warning.
    #[test]
    fn prometheus_table() {
        assert_eq!(prometheus_status(Some(" CRITICAL ")), Status::Critical);
        assert_eq!(prometheus_status(Some("warn")), Status::Warning);
        assert_eq!(prometheus_status(Some("Unk")), Status::Info);
        assert_eq!(prometheus_status(Some("acknowledged")), Status::Info);
        assert_eq!(prometheus_status(Some("ok")), Status::Ok);
        assert_eq!(prometheus_status(Some("page")), Status::Warning);
        assert_eq!(prometheus_status(None), Status::Warning);
    }

    // spec: ING-029 — bounds apply to source times; unusable values are the receive time.
    #[test]
    fn event_time_bounds() {
        let now = 1_700_000_000_500;
        assert_eq!(event_time(Some(1_600_000_000.9), now), 1_600_000_000_000);
        assert_eq!(
            event_time(Some(1_600_000_000_123.0), now),
            1_600_000_000_000
        );
        assert_eq!(event_time(Some(1_700_001_000.0), now), 1_700_000_000_000);
        assert_eq!(event_time(Some(-5.0), now), 1_700_000_000_000);
        assert_eq!(event_time(Some(f64::NAN), now), 1_700_000_000_000);
        assert_eq!(event_time(None, now), 1_700_000_000_000);
    }

    #[test]
    fn iso_instants() {
        assert_eq!(iso_seconds("2024-01-02T03:04:05Z"), Some(1_704_164_645.0));
        assert_eq!(
            iso_seconds("2024-01-02T03:04:05.123+01:00"),
            Some(1_704_161_045.0)
        );
        assert_eq!(iso_seconds("yesterday"), None);
    }
}
