//! The standard alert event protocol (ingest.md §2.2, §2.4, ING-012): a push body → validated
//! [`NewEvent`]s. Pure: the receive time and the integration come in as arguments.

use serde_json::Value;

use crate::error::ApiError;
use crate::model::{Labels, Millis, NewEvent};

/// What the adapter needs to know about the push besides its body.
#[derive(Debug, Clone)]
pub struct PushContext<'a> {
    pub integration_id: i64,
    /// Query parameters other than `integration_key`, in order (ING-012: last value wins).
    pub query_labels: &'a [(String, String)],
    /// Platform receive time.
    pub received_at: Millis,
}

/// Parses and validates one standard push body (ING-020…031, ING-012, ING-050).
/// Returns exactly one event (field mapping and batches are issue 4's §2.3).
pub fn parse_standard(body: &Value, ctx: &PushContext<'_>) -> Result<NewEvent, ApiError> {
    let _ = (body, ctx);
    Err(ApiError::internal("not yet built"))
}

/// `H(p1, …, pn)` of ingest.md §0.
pub fn hash_parts(parts: &[&str]) -> String {
    let _ = parts;
    String::new()
}

/// `canon(L)` of ingest.md §0.
pub fn canon_labels(labels: &Labels) -> String {
    let _ = labels;
    String::new()
}
