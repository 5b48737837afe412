//! `/insight/responder` (openapi-compat.md 2.14; RSP-478, RSP-479): one row per person who
//! was ever a responder of an incident of the population, through an assignment or add
//! responders. The incidents are read through the common filter block; the figures are
//! computed by `klaxon_core::insight::responder`.

use klaxon_core::error::ApiError;
use klaxon_core::insight::responder::{self, ResponderTotals};
use serde_json::{Value, json};

use super::super::handlers::store_err;
use super::super::{Args, Caller};
use super::{facts_of, incidents, read_query, sort_rows, timeline_of};
use crate::state::AppState;

/// The metrics `orderby` may name.
pub(super) const METRICS: &[&str] = &[
    "total_incident_cnt",
    "total_incidents_acknowledged",
    "mean_seconds_to_ack",
    "total_incidents_reassigned",
    "total_incidents_timeout_escalated",
    "total_incidents_manually_escalated",
    "total_notifications",
    "total_interruptions",
    "total_engaged_seconds",
];

pub async fn rows(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut q = read_query(state, caller, args, METRICS).await?;
    if q.split_hours || q.unit.is_some() {
        return Err(ApiError::invalid(
            "split_hours and aggregate_unit are not available for /insight/responder",
        ));
    }
    let found = incidents(state, caller, &mut q.filter).await?;
    let timeline = timeline_of(state, caller, &found).await?;
    let facts = facts_of(&found, &timeline, &q);
    let ids: Vec<String> = facts
        .iter()
        .map(|f| f.incident.incident_id.clone())
        .collect();
    let entries = state
        .store
        .insight_responder_entries(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let sends = state
        .store
        .insight_sends(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let rows = responder::responders(
        &facts,
        |id| entries.get(id).map(|es| responder::parts(es)),
        &sends,
    );
    let people: Vec<i64> = rows.keys().copied().collect();
    let names: std::collections::HashMap<i64, String> = state
        .store
        .persons(caller.account_id, &people)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|p| (p.member_id, p.member_name))
        .collect();
    let mut items: Vec<Value> = rows
        .into_iter()
        .map(|(person, totals): (i64, ResponderTotals)| {
            let mut v = serde_json::to_value(&totals).unwrap_or(Value::Null);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("responder_id".into(), json!(person));
                obj.insert(
                    "responder_name".into(),
                    json!(names.get(&person).cloned().unwrap_or_default()),
                );
            }
            v
        })
        .collect();
    sort_rows(&mut items, q.orderby.as_deref(), q.asc);
    Ok(json!({ "items": items }))
}
