//! `/account/delivery-provider/list` (SVC-214; docs/saas.md "Delivery providers"): any
//! member reads which notification providers receive the contents of the account's
//! messages in its region and where they process them — those in force now and the changes
//! announced for later. A Klaxon route; a self-hosted install configures its own providers
//! and answers `"mode": "self_hosted"` with no list.

use jiff::Timestamp;
use klaxon_core::error::ApiError;
use klaxon_saas::providers::in_force_at;
use serde_json::{Value, json};

use super::Caller;
use crate::state::AppState;

pub const PATHS: &[&str] = &["/account/delivery-provider/list"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/account/delivery-provider/list" => Some(list(state, caller).await.map(Some)),
        _ => None,
    }
}

fn failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("delivery providers: {e}"))
}

async fn list(state: &AppState, _caller: &Caller) -> Result<Value, ApiError> {
    let Some(saas) = &state.saas else {
        return Ok(json!({"mode": "self_hosted", "items": [], "total": 0, "upcoming": []}));
    };
    // Every tenant of this deployment lives in the region it serves (SVC-211).
    let region = saas.settings.region.as_str();
    let now = Timestamp::from_millisecond(state.clock.now()).map_err(failed)?;
    let rows = state
        .store
        .saas_region_providers(Some(region))
        .await
        .map_err(failed)?;
    let entries = rows
        .iter()
        .map(|r| r.entry())
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    let wire = |e: &klaxon_saas::providers::Entry| {
        json!({
            "channel": e.channel,
            "provider": e.provider,
            "location": e.location,
            "effective_at": e.effective_at.as_second(),
            "removed_at": e.removed_at.map_or(0, |r| r.as_second()),
        })
    };
    let items: Vec<Value> = in_force_at(&entries, region, now)
        .into_iter()
        .map(wire)
        .collect();
    // Announced changes not yet applied: entries starting later, and ends to come.
    let upcoming: Vec<Value> = entries
        .iter()
        .filter(|e| e.effective_at > now || e.removed_at.is_some_and(|r| r > now))
        .map(|e| {
            let mut v = wire(e);
            v["change"] = json!(if e.effective_at > now {
                "added"
            } else {
                "removed"
            });
            v
        })
        .collect();
    Ok(json!({
        "mode": "saas",
        "region": region,
        "total": items.len(),
        "items": items,
        "upcoming": upcoming,
    }))
}
