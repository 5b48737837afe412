//! Klaxon extension routes of HTTP pull integrations (ingest.md ING-228, ING-229), beside
//! `/integration/*` (openapi-compat.md §2.6.1):
//! - `/integration/pull/trigger` `{integration_id}` starts a pull now (in the background);
//!   429 `RequestTooFrequently` within 60 s of the previous manual trigger, 400
//!   `pull in progress` while one runs. The schedule does not move.
//! - `/integration/pull/history` `{integration_id, p, limit}` lists the recorded pulls,
//!   newest first, with `last_pull_time` (`.LastPullTime`, 0 before the first pull).

use klaxon_core::error::{ApiError, ErrorCode};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;
use crate::wire::secs;

pub const PATHS: &[&str] = &["/integration/pull/trigger", "/integration/pull/history"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/integration/pull/trigger" => Some(trigger(state, caller, args).await.map(Some)),
        "/integration/pull/history" => Some(history(state, caller, args).await.map(Some)),
        _ => None,
    }
}

fn internal(e: klaxon_store::StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

async fn pull_integration(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<klaxon_store::Integration, ApiError> {
    let id = args.required_id("integration_id")?;
    let i = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("integration {id} not found"),
            )
        })?;
    if i.integration_type != "http_pull" {
        return Err(ApiError::invalid(
            "integration_id is not an http_pull integration",
        ));
    }
    Ok(i)
}

async fn trigger(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let i = pull_integration(state, caller, args).await?;
    crate::pull::trigger(state, i).await
}

async fn history(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let i = pull_integration(state, caller, args).await?;
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20).min(100);
    let (records, total) = state
        .store
        .pull_history(caller.account_id, i.integration_id, p, limit)
        .await
        .map_err(internal)?;
    let last = state
        .store
        .last_pull_time(caller.account_id, i.integration_id)
        .await
        .map_err(internal)?;
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "started_at": secs(r.started_at),
                "ended_at": secs(r.ended_at),
                "trigger": r.trigger,
                "status": r.status,
                "pages": r.pages,
                "items_received": r.items_received,
                "items_accepted": r.items_accepted,
                "items_skipped": r.items_skipped,
                "items_truncated": r.items_truncated,
                "error": r.error,
            })
        })
        .collect();
    Ok(json!({
        "items": items,
        "total": total,
        "has_next_page": p.saturating_mul(limit) < total,
        "last_pull_time": last.unwrap_or(0),
    }))
}
