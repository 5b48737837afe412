//! What every fuzz target checks besides "no panic": a refusal is an `InvalidParameter` with a
//! message (ingest.md §3.0: malformed input names the field), and an accepted event respects
//! the limits of §2.4 whatever the input.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::model::{NewEvent, RAW_MAX_BYTES};
use klaxon_core::standard::{ALERT_KEY_MAX_CHARS, DESCRIPTION_MAX_CHARS, TITLE_MAX_CHARS};
use klaxon_sources::Context;
use serde_json::Value;

pub const NOW: i64 = 1_700_000_000_123;
pub const RANDOM: &str = "0123456789abcdef0123456789abcdef";

/// Query labels a push might carry.
pub fn query() -> Vec<(String, String)> {
    vec![("env".to_owned(), "fuzz".to_owned())]
}

pub fn ctx(query: &[(String, String)]) -> Context<'_> {
    Context {
        integration_id: 7,
        query_labels: query,
        received_at: NOW,
        console_url: Some("https://console.example"),
    }
}

/// The body as the push path hands it over: only what parses as JSON reaches an adapter.
pub fn json(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

pub fn check_refusal(e: &ApiError) {
    assert_eq!(e.code, ErrorCode::InvalidParameter, "{e:?}");
    assert!(!e.message.is_empty());
}

/// §2.4 limits on an accepted event. `description_max` is 2048 except for e-mail.
pub fn check_event(e: &NewEvent, description_max: usize) {
    assert!(!e.alert_key.is_empty(), "empty alert key");
    assert!(
        e.alert_key.chars().count() <= ALERT_KEY_MAX_CHARS,
        "alert key too long"
    );
    assert!(e.title.chars().count() <= TITLE_MAX_CHARS, "title too long");
    assert!(e.description.len() <= description_max.max(DESCRIPTION_MAX_CHARS * 4));
    assert!(e.raw.len() <= RAW_MAX_BYTES, "raw too long");
    assert!(e.labels.len() <= 50, "more than 50 labels");
    for (k, v) in e.labels.iter() {
        assert!(!k.is_empty(), "empty label name");
        assert!(k.chars().count() <= 128, "label name too long");
        assert!(v.chars().count() <= 2048, "label value too long");
    }
}

/// Runs an adapter's result through the checks.
pub fn check(result: Result<Vec<NewEvent>, ApiError>) {
    match result {
        Ok(events) => events
            .iter()
            .for_each(|e| check_event(e, DESCRIPTION_MAX_CHARS * 4)),
        Err(e) => check_refusal(&e),
    }
}
