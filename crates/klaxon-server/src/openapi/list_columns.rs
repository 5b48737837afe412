//! The caller's own incident list columns (response.md RSP-506; a Klaxon extension — the
//! SaaS keeps this choice in its console):
//!
//! - `/member/list-columns/info`: `{member_id, columns, is_default, available}`. `columns`
//!   are column keys in display order; `is_default` says the member never chose;
//!   `available.basic` lists the basic attributes `{key, label}`.
//! - `/member/list-columns/update`: `{columns}` (required, may be empty: the title only);
//!   the answer is the new `/member/list-columns/info`. A key is a basic attribute,
//!   `field.<field_name>` of a custom field of the account, or `label.<name>`.
//!
//! Any member may call both (route access `Member` and `OwnSettings`); an account-level APP
//! key belongs to no member and is refused.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::response::list_columns::{BASIC, Column, default_keys, validate};
use serde_json::{Value, json};

use super::teams::store_err;
use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &["/member/list-columns/info", "/member/list-columns/update"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/member/list-columns/info" => info(state, caller).await.map(Some),
        "/member/list-columns/update" => update(state, caller, args).await.map(Some),
        _ => return None,
    })
}

fn own_member(caller: &Caller) -> Result<i64, ApiError> {
    if caller.account_key {
        return Err(ApiError::invalid(
            "app_key: an account-level APP key belongs to no member",
        ));
    }
    Ok(caller.member_id)
}

fn describe(member_id: i64, columns: &[String], is_default: bool) -> Value {
    let basic: Vec<Value> = BASIC
        .iter()
        .map(|(k, l)| json!({"key": k, "label": l}))
        .collect();
    json!({
        "member_id": member_id,
        "columns": columns,
        "is_default": is_default,
        "available": {"basic": basic},
    })
}

async fn info(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let member_id = own_member(caller)?;
    let stored = state
        .store
        .member_list_columns(caller.account_id, member_id)
        .await
        .map_err(store_err)?;
    let is_default = stored.is_none();
    Ok(describe(
        member_id,
        &stored.unwrap_or_else(default_keys),
        is_default,
    ))
}

async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let member_id = own_member(caller)?;
    let raw = args
        .raw()
        .get("columns")
        .ok_or_else(|| ApiError::invalid("columns: required (a list of column keys)"))?;
    let items = raw
        .as_array()
        .ok_or_else(|| ApiError::invalid("columns: must be a list of column keys"))?;
    let mut keys = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = item
            .as_str()
            .ok_or_else(|| ApiError::invalid(format!("columns[{i}]: must be a string")))?;
        keys.push(key.trim().to_string());
    }
    let columns = validate(&keys).map_err(ApiError::invalid)?;
    // A custom field column must name a field of the account (labels are free: any alert
    // may carry any label).
    if columns.iter().any(|c| matches!(c, Column::Field(_))) {
        let defined: Vec<String> = state
            .store
            .custom_fields(caller.account_id)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|f| f.field_name)
            .collect();
        for (i, c) in columns.iter().enumerate() {
            if let Column::Field(name) = c
                && !defined.contains(name)
            {
                return Err(ApiError::new(
                    ErrorCode::ResourceNotFound,
                    format!("columns[{i}]: no custom field {name:?} in this account"),
                ));
            }
        }
    }
    let keys: Vec<String> = columns.iter().map(Column::key).collect();
    state
        .store
        .set_member_list_columns(caller.account_id, member_id, &keys, state.clock.now())
        .await
        .map_err(store_err)?;
    Ok(describe(member_id, &keys, false))
}
