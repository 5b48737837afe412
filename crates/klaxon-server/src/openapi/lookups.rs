//! Batch look-ups by id (openapi-compat.md 2.1, 2.3, 2.5 and §4's minimal subset):
//! `/incident/list-by-ids`, `/alert/list-by-ids`, `/alert/event/list` and `/channel/infos`.
//!
//! They answer what a client already holds ids for (the MCP server fetches incidents this way,
//! the CLI an alert's events), so they take no time window and read through the same store
//! queries as the list endpoints. Like `/incident/info`, a look-up by id needs only the read
//! permission of the route table (RSP-526: the shared-link case). Ids of another account, or
//! of nothing, are simply absent from `items`; a request naming no id, or too many, is refused
//! and reads nothing.

use std::collections::HashMap;

use klaxon_core::error::ApiError;
use klaxon_core::model::Incident;
use klaxon_store::{AlertFilter, EventFilter, Paging};
use serde_json::{Value, json};

use super::handlers::{channel_names, incidents_by_id, not_found, page_json, paging, store_err};
use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

pub const PATHS: &[&str] = &[
    "/incident/list-by-ids",
    "/alert/list-by-ids",
    "/alert/event/list",
    "/channel/infos",
];

/// Most ids one batch look-up takes (the batch actions' limit, openapi-compat.md 2.1).
const MAX_IDS: usize = 100;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/incident/list-by-ids" => incidents(state, caller, args).await.map(Some),
        "/alert/list-by-ids" => alerts(state, caller, args).await.map(Some),
        "/alert/event/list" => alert_events(state, caller, args).await.map(Some),
        "/channel/infos" => channels(state, caller, args).await.map(Some),
        _ => return None,
    })
}

/// The ids of `name`: 1..=100 of them, duplicates dropped, order kept.
fn ids<T: PartialEq + Clone>(name: &str, list: Vec<T>) -> Result<Vec<T>, ApiError> {
    if list.is_empty() {
        return Err(ApiError::invalid(format!("{name} is required")));
    }
    if list.len() > MAX_IDS {
        return Err(ApiError::invalid(format!(
            "{name} must list at most {MAX_IDS} ids"
        )));
    }
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for id in list {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// A batch answer: everything found, on one page.
fn all_found(items: Vec<Value>) -> Value {
    let total = items.len();
    json!({"items": items, "total": total, "has_next_page": false})
}

/// `/incident/list-by-ids`: the incidents among `incident_ids`, in the order asked.
async fn incidents(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let wanted = ids("incident_ids", args.str_list("incident_ids")?)?;
    let found: HashMap<String, Incident> = incidents_by_id(state, caller, wanted.clone()).await?;
    let names = channel_names(
        state,
        caller,
        found.values().map(|i| i.channel_id).collect(),
    )
    .await?;
    let items = wanted
        .iter()
        .filter_map(|id| found.get(id))
        .map(|i| wire::incident(i, &names, &state.base_url))
        .collect();
    Ok(all_found(items))
}

/// `/alert/list-by-ids`: the alerts among `alert_ids`, in the order asked, each with its
/// incident as `/alert/list` shows it.
async fn alerts(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let wanted = ids("alert_ids", args.str_list("alert_ids")?)?;
    let filter = AlertFilter {
        paging: Paging {
            p: 1,
            limit: i64::try_from(wanted.len()).unwrap_or(100),
            asc: true,
            search_after_ctx: None,
        },
        alert_ids: wanted.clone(),
        ..AlertFilter::default()
    };
    let page = state
        .store
        .list_alerts(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let names = channel_names(
        state,
        caller,
        page.items.iter().map(|a| a.channel_id).collect(),
    )
    .await?;
    let incidents = incidents_by_id(
        state,
        caller,
        page.items.iter().map(|a| a.incident_id.clone()).collect(),
    )
    .await?;
    let by_id: HashMap<&str, &klaxon_core::model::Alert> = page
        .items
        .iter()
        .map(|a| (a.alert_id.as_str(), a))
        .collect();
    let items = wanted
        .iter()
        .filter_map(|id| by_id.get(id.as_str()))
        .map(|a| wire::alert(a, &names, &incidents))
        .collect();
    Ok(all_found(items))
}

/// `/alert/event/list`: one alert's events, newest first (`asc` for oldest first), paged
/// like `/alert-event/list` (up to 100 a page). An unknown alert is `ResourceNotFound`.
async fn alert_events(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args
        .str("alert_id")?
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::invalid("alert_id is required"))?;
    if state
        .store
        .alert(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .is_none()
    {
        return Err(not_found("alert"));
    }
    let filter = EventFilter {
        paging: paging(args, 100, 100)?,
        alert_id: Some(id),
        ..EventFilter::default()
    };
    let page = state
        .store
        .list_events(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let items = page.items.iter().map(wire::event).collect();
    Ok(page_json(&page, items))
}

/// `/channel/infos`: the channels among `channel_ids`, in the order asked, each as
/// `/channel/info` shows it.
async fn channels(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let wanted = ids("channel_ids", args.i64_list("channel_ids")?)?;
    let mut items = Vec::with_capacity(wanted.len());
    for id in wanted {
        if let Some(s) = state
            .store
            .channel_settings(caller.account_id, id)
            .await
            .map_err(store_err)?
        {
            items.push(super::channels::render(&s));
        }
    }
    Ok(all_found(items))
}
