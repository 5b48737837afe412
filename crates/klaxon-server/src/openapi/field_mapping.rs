//! Field mapping of the standard family (ingest.md §2.3; docs/alert-push.md): the save-time
//! check of `settings.field_mapping` / `settings.value_mapping` (ING-042, ING-045, ING-046,
//! ING-049) and the dry run `/integration/field-mapping/preview` (ING-049).
//!
//! The mapping itself lives in `klaxon_core::field_mapping`, so the push path, the save check
//! and the dry run share one implementation.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::field_mapping::FieldMapping;
use klaxon_core::model::{NewEvent, RAW_MAX_BYTES, Severity};
use klaxon_core::standard::PushContext;
use serde_json::{Map, Value, json};

use super::{Args, Caller};
use crate::push::STANDARD_FAMILY;
use crate::state::AppState;
use crate::wire::secs;

/// The two settings this module owns.
const SETTINGS: [&str; 2] = ["field_mapping", "value_mapping"];

pub const PATHS: &[&str] = &["/integration/field-mapping/preview"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/integration/field-mapping/preview" => Some(preview(state, caller, args).await.map(Some)),
        _ => None,
    }
}

/// The field and value mapping members of an integration's `settings`, checked, for
/// `check_settings` to keep. Empty for types outside the standard family (their settings
/// check refuses the members by name) and when neither member is present.
pub fn checked_settings(
    t: &str,
    settings: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let mut kept = Map::new();
    if !STANDARD_FAMILY.contains(&t) || !SETTINGS.iter().any(|s| settings.contains_key(*s)) {
        return Ok(kept);
    }
    FieldMapping::from_settings(settings.get("field_mapping"), settings.get("value_mapping"))
        .map_err(|e| ApiError::invalid(format!("settings.{}", e.message)))?;
    for name in SETTINGS {
        if let Some(value) = settings.get(name) {
            kept.insert(name.to_owned(), value.clone());
        }
    }
    Ok(kept)
}

/// The mapping stored in an integration's settings text; `None` when there is none (or it is
/// empty), so the body is a standard payload.
pub fn stored(settings: &str) -> Result<Option<FieldMapping>, ApiError> {
    let settings: Value = serde_json::from_str(settings).unwrap_or_else(|_| json!({}));
    FieldMapping::from_settings(settings.get("field_mapping"), settings.get("value_mapping"))
        .map_err(|e| {
            ApiError::internal(format!(
                "the stored field mapping is invalid: {}",
                e.message
            ))
        })
}

/// `/integration/field-mapping/preview` (ING-049): applies a field mapping to `sample` (an
/// object or an array, as a push body) and returns the standard events it yields, or the
/// first error — nothing is stored or queued.
///
/// The mapping is the body's `field_mapping` / `value_mapping` when given (to try a mapping
/// before saving it), else the one saved on `integration_id`. With `integration_id`, generated
/// alert keys are the ones a real push would get.
async fn preview(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let integration = match args.i64("integration_id")?.filter(|id| *id != 0) {
        None => None,
        Some(id) => {
            let i = state
                .store
                .integration(caller.account_id, id)
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ResourceNotFound,
                        format!("integration {id} not found"),
                    )
                })?;
            if !STANDARD_FAMILY.contains(&i.integration_type.as_str()) {
                return Err(ApiError::invalid(format!(
                    "integration_id: type {} has no field mapping (standard family only)",
                    i.integration_type
                )));
            }
            Some(i)
        }
    };
    let body = args.raw();
    let mapping = if body.get("field_mapping").is_some_and(|v| !v.is_null()) {
        FieldMapping::from_settings(body.get("field_mapping"), body.get("value_mapping"))?
    } else if let Some(i) = &integration {
        stored(&i.settings)?
    } else {
        return Err(ApiError::invalid(
            "field_mapping or integration_id is required",
        ));
    };
    let mapping = mapping.ok_or_else(|| {
        ApiError::invalid("field_mapping: no field mapping to apply (it is empty)")
    })?;
    let sample = body
        .get("sample")
        .filter(|v| !v.is_null())
        .ok_or_else(|| ApiError::invalid("sample is required"))?;
    let ctx = PushContext {
        integration_id: integration.as_ref().map_or(0, |i| i.integration_id),
        query_labels: &[],
        received_at: state.clock.now(),
    };
    let raw = |_: usize, item: &Value| {
        klaxon_core::model::cut_bytes(&item.to_string(), RAW_MAX_BYTES).to_owned()
    };
    Ok(match mapping.apply(sample, &ctx, raw) {
        Ok(events) => json!({
            "ok": true,
            "events": events.iter().map(event).collect::<Vec<_>>(),
            "error": "",
        }),
        Err(e) => json!({"ok": false, "events": [], "error": e.message}),
    })
}

/// A mapped event as the standard payload it amounts to, with the generated key and the
/// rendered title.
fn event(e: &NewEvent) -> Value {
    json!({
        "alert_key": e.alert_key,
        "event_status": e.event_status.as_str(),
        "event_severity": e.event_severity.map_or("", Severity::as_str),
        "title": e.title,
        "title_rule": e.title_rule,
        "description": e.description,
        "labels": e.labels,
        "images": e.images,
        "event_time": secs(e.event_time),
    })
}
