//! Inbound source adapters (ingest.md §3): each turns one monitoring tool's payload into
//! canonical [`NewEvent`]s and nothing else.
//!
//! Pure, like `klaxon-core`: the body arrives already parsed as JSON (ING-006 is the server's),
//! the receive time, the integration and the query-string labels come in a [`Context`], and
//! anything random (PagerDuty's generated keys) is passed in by the caller. The shared rules
//! of §2.4 and §3.0 — label normalisation (ING-052), canonical labels (ING-053), truncation
//! (ING-024), images (ING-028), event-time bounds (ING-029), raw retention (ING-054) — are
//! applied by one builder ([`common`]) over the helpers of `klaxon_core::standard`, so every
//! adapter behaves the same way there.
//!
//! Malformed input is an `InvalidParameter` [`ApiError`] naming the field; nothing panics.

pub mod alertmanager;
pub mod chatbot;
mod common;
pub mod email;
pub mod grafana;
pub mod http_pull;
pub mod jira;
pub mod n9e;
pub mod pagerduty;
mod push_rules;
pub mod uptimekuma;
pub mod zabbix;

use klaxon_core::error::ApiError;
use klaxon_core::model::{Millis, NewEvent};
use serde_json::Value;

/// What an adapter needs to know about the push besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub integration_id: i64,
    /// Query parameters other than `integration_key`, in order (ING-012: they become labels,
    /// the last of a repeated name wins, payload labels win over them).
    pub query_labels: &'a [(String, String)],
    /// Platform receive time.
    pub received_at: Millis,
    /// The integration's `settings.console_url` (Nightingale, Zabbix), if set.
    pub console_url: Option<&'a str>,
}

/// Source types served by an adapter of this crate on `/event/push/alert/<type>` with the
/// plain envelope of ING-008 (PagerDuty has its own response shapes: [`pagerduty`]).
pub const ENVELOPE_TYPES: [&str; 4] = ["prometheus", "grafana", "zabbix", "n9e"];

/// Runs the adapter of `source_type` (one of [`ENVELOPE_TYPES`]) over a push body.
/// Zero events is a valid result (§3.0: a body with no usable items is accepted).
pub fn parse(
    source_type: &str,
    body: &Value,
    ctx: &Context<'_>,
) -> Result<Vec<NewEvent>, ApiError> {
    match source_type {
        "prometheus" => alertmanager::parse_webhook(body, ctx),
        "grafana" => grafana::parse(body, ctx),
        "zabbix" => zabbix::parse(body, ctx),
        "n9e" => n9e::parse(body, ctx),
        other => Err(ApiError::invalid(format!(
            "no adapter for source type {other}"
        ))),
    }
}
