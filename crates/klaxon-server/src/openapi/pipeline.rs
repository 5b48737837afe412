//! The alert pipeline of alert integrations (ingest.md §2.7, §1.5.4; openapi-compat.md §2.3,
//! §2.6): `/alert/pipeline/info`, `/alert/pipeline/list`, `/alert/pipeline/upsert`
//! (docs/pipeline.md).
//!
//! An upsert replaces the integration's whole `rules[]` (no version); the rules are read and
//! checked by `klaxon_core::pipeline::wire`, so a refused list names the bad part and
//! changes nothing. Processing reads the list saved last, so a save applies to the next
//! event processed (ING-080).

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::pipeline::wire;
use klaxon_store::{Integration, IntegrationFilter, PipelineRecord};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::changes::wire_type;
use crate::state::{AppState, random_hex};
use crate::wire::secs;

pub const PATHS: &[&str] = &[
    "/alert/pipeline/info",
    "/alert/pipeline/list",
    "/alert/pipeline/upsert",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    let result = match path {
        "/alert/pipeline/info" => info(state, caller, args).await,
        "/alert/pipeline/list" => list(state, caller, args).await,
        "/alert/pipeline/upsert" => upsert(state, caller, args).await,
        _ => return None,
    };
    Some(result.map(Some))
}

fn store_err(e: klaxon_store::StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn is_alert(i: &Integration) -> bool {
    wire_type(&i.integration_type).1 == "alert"
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("integration {id} not found"),
    )
}

/// ING-080 / Q-09: a live alert integration of the account, dedicated or shared.
async fn alert_integration(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<Integration, ApiError> {
    let i = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))?;
    if !is_alert(&i) {
        return Err(ApiError::invalid(format!(
            "integration_id: integration {id} is a change integration (only alert integrations have a pipeline)"
        )));
    }
    Ok(i)
}

/// The pipeline object; an integration that never saved one has no rules.
fn object(integration_id: i64, saved: Option<&PipelineRecord>) -> Value {
    match saved {
        Some(r) => json!({
            "integration_id": integration_id,
            "rules": wire::render(&r.actions),
            "creator_id": r.creator_id,
            "updated_by": r.updated_by,
            "created_at": secs(r.created_at),
            "updated_at": secs(r.updated_at),
        }),
        None => json!({
            "integration_id": integration_id,
            "rules": [],
            "creator_id": 0,
            "updated_by": 0,
            "created_at": 0,
            "updated_at": 0,
        }),
    }
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    alert_integration(state, caller, id).await?;
    let saved = state
        .store
        .pipeline(caller.account_id, id)
        .await
        .map_err(store_err)?;
    Ok(object(id, saved.as_ref()))
}

/// `integration_ids` (absent or empty: every alert integration of the account); ids that are
/// not live alert integrations are left out.
async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let asked = args.i64_list("integration_ids")?;
    let mut ids = Vec::new();
    if asked.is_empty() {
        let mut p = 1;
        loop {
            let filter = IntegrationFilter {
                p,
                limit: 100,
                ..IntegrationFilter::default()
            };
            let page = state
                .store
                .list_integrations(caller.account_id, &filter)
                .await
                .map_err(store_err)?;
            ids.extend(
                page.items
                    .iter()
                    .filter(|i| is_alert(i))
                    .map(|i| i.integration_id),
            );
            if !page.has_next_page {
                break;
            }
            p += 1;
        }
    } else {
        for id in asked {
            let found = state
                .store
                .integration(caller.account_id, id)
                .await
                .map_err(store_err)?;
            if found.is_some_and(|i| is_alert(&i)) && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let saved = state
        .store
        .pipelines(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = ids.iter().map(|id| object(*id, saved.get(id))).collect();
    let total = items.len();
    Ok(json!({"items": items, "total": total, "has_next_page": false}))
}

async fn upsert(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    alert_integration(state, caller, id).await?;
    let previous = state
        .store
        .pipeline(caller.account_id, id)
        .await
        .map_err(store_err)?
        .map(|r| r.actions)
        .unwrap_or_default();
    let actions = wire::read(args.raw().get("rules"), &previous, &mut || random_hex(8))?;
    let saved = state
        .store
        .save_pipeline(
            caller.account_id,
            id,
            &actions,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))?;
    Ok(object(id, Some(&saved)))
}
