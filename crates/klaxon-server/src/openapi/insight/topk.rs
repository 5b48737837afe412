//! `/insight/alert/topk-by-label` (openapi-compat.md 2.14; response.md RSP-482): the values of
//! the `check` or the `resource` label of the population's alerts with the most alert events
//! (or alerts), as the global view ranks them. `items` carry no paging members.

use klaxon_core::error::ApiError;
use klaxon_core::insight::topk::{self, DEFAULT_K, LABELS, MAX_K, Order};
use serde_json::{Value, json};

use super::super::handlers::store_err;
use super::super::{Args, Caller};
use super::{facts_of, incidents, read_query, timeline_of};
use crate::state::AppState;

const ORDERS: &[&str] = &["total_alert_cnt", "total_alert_event_cnt"];

pub async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let label = args
        .str("label")?
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ApiError::invalid("label is required: check or resource"))?;
    if !LABELS.contains(&label.as_str()) {
        return Err(ApiError::invalid(format!(
            "label must be check or resource, not {label:?}"
        )));
    }
    // Zero means absent (openapi-compat.md 1.3): the global view's 20.
    let k = args.i64("k")?.filter(|k| *k != 0).unwrap_or(DEFAULT_K);
    if !(1..=MAX_K).contains(&k) {
        return Err(ApiError::invalid(format!(
            "k must be from 1 to {MAX_K}, not {k}"
        )));
    }
    let order = match args.str("orderby")?.filter(|o| !o.is_empty()) {
        None => Order::Events,
        Some(o) => Order::parse(&o).ok_or_else(|| {
            ApiError::invalid(format!(
                "orderby must be total_alert_cnt or total_alert_event_cnt, not {o:?}"
            ))
        })?,
    };
    let mut q = read_query(state, caller, args, ORDERS).await?;
    let found = incidents(state, caller, &mut q.filter).await?;
    let timeline = timeline_of(state, caller, &found).await?;
    let ids: Vec<String> = facts_of(&found, &timeline, &q)
        .iter()
        .filter(|f| f.counts())
        .map(|f| f.incident.incident_id.clone())
        .collect();
    let alerts = state
        .store
        .insight_alert_labels(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = topk::topk(&alerts, &label, usize::try_from(k).unwrap_or(20), order)
        .into_iter()
        .map(|c| {
            json!({
                "label": label,
                "value": c.value,
                "total_alert_cnt": c.total_alert_cnt,
                "total_alert_event_cnt": c.total_alert_event_cnt,
            })
        })
        .collect();
    Ok(json!({ "items": items }))
}
