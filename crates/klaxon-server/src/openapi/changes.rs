//! `/change/list` (openapi-compat.md §2.13): change records of ingest.md §1.3.8, newest first.

use std::collections::HashMap;

use klaxon_core::error::ApiError;
use klaxon_store::{ChangeFilter, IntegrationFilter};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;
use crate::wire::secs;

pub const PATHS: &[&str] = &["/change/list"];

/// openapi-compat.md 1.7: the window is shorter than 31 days.
const MAX_WINDOW_SECS: i64 = 31 * 86_400;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/change/list" => Some(list(state, caller, args).await.map(Some)),
        _ => None,
    }
}

fn store_err(e: klaxon_store::StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let now_secs = state.clock.now().div_euclid(1000);
    // Optional here (required for incidents and alerts): the last 30 days by default.
    let end = args.i64("end_time")?.filter(|t| *t > 0).unwrap_or(now_secs);
    let start = args
        .i64("start_time")?
        .filter(|t| *t > 0)
        .unwrap_or(end - 30 * 86_400);
    if start > end {
        return Err(ApiError::invalid("start_time must not be after end_time"));
    }
    if end - start >= MAX_WINDOW_SECS {
        return Err(ApiError::invalid(
            "end_time - start_time must be less than 31 days",
        ));
    }
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20);
    if limit > 100 {
        return Err(ApiError::invalid("limit must be at most 100"));
    }
    let order_by_last_time = match args.str("orderby")?.as_deref() {
        None | Some("") | Some("start_time") => false,
        Some("last_time") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "orderby {other} is invalid (start_time or last_time)"
            )));
        }
    };
    // Change integrations are shared and belong to no channel: asking for channels finds
    // no change.
    let channel_ids = args.i64_list("channel_ids")?;
    if !channel_ids.is_empty() {
        return Ok(json!({"items": [], "total": 0, "has_next_page": false}));
    }
    let filter = ChangeFilter {
        start_time: start.saturating_mul(1000),
        end_time: end.saturating_mul(1000).saturating_add(999),
        p,
        limit,
        asc: args.bool("asc")?.unwrap_or(false),
        order_by_last_time,
        integration_ids: args.i64_list("integration_ids")?,
        query: args.str("query")?,
    };
    let page = state
        .store
        .list_changes(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let include_events = args.bool("include_events")?.unwrap_or(false);
    let mut events: HashMap<String, Vec<Value>> = HashMap::new();
    if include_events {
        let ids: Vec<String> = page.items.iter().map(|c| c.change_id.clone()).collect();
        for e in state
            .store
            .change_events(caller.account_id, &ids)
            .await
            .map_err(store_err)?
        {
            events.entry(e.change_id.clone()).or_default().push(json!({
                "event_id": e.event_id,
                "change_key": e.change_key,
                "change_status": e.change_status,
                "title": e.title,
                "description": e.description,
                "link": e.link,
                "labels": e.labels,
                "event_time": secs(e.event_time),
                "integration_id": e.integration_id,
            }));
        }
    }
    let names = integration_names(state, caller).await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|c| {
            let mut v = json!({
                "change_id": c.change_id,
                "change_key": c.change_key,
                "change_status": c.change_status,
                "title": c.title,
                "description": c.description,
                "link": c.link,
                "labels": c.labels,
                "start_time": secs(c.start_time),
                "last_time": secs(c.last_time),
                "end_time": secs(c.end_time),
                "event_cnt": c.event_cnt,
                "channel_id": 0,
                "channel_name": "",
                "integration_id": c.integration_id,
                "integration_name": names.get(&c.integration_id).cloned().unwrap_or_default(),
            });
            if include_events && let Some(obj) = v.as_object_mut() {
                let list = events.remove(&c.change_id).unwrap_or_default();
                obj.insert("events".into(), Value::Array(list));
            }
            v
        })
        .collect();
    Ok(json!({
        "items": items,
        "total": page.total,
        "has_next_page": page.has_next_page,
    }))
}

/// Names of the account's change integrations.
async fn integration_names(
    state: &AppState,
    caller: &Caller,
) -> Result<HashMap<i64, String>, ApiError> {
    let filter = IntegrationFilter {
        p: 1,
        limit: 1000,
        query: None,
        types: crate::changes::CHANGE_TYPES
            .iter()
            .map(|(_, stored)| (*stored).to_owned())
            .collect(),
        kinds: Vec::new(),
        channel_ids: Vec::new(),
        enabled: None,
    };
    let page = state
        .store
        .list_integrations(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    Ok(page
        .items
        .into_iter()
        .map(|i| (i.integration_id, i.integration_name))
        .collect())
}
