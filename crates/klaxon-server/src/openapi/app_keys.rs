//! APP keys over the Open API (response.md §1.26, RSP-610 … RSP-612; a Klaxon extension —
//! Flashduty manages keys only in its console): `/app-key/create`, `/app-key/list`,
//! `/app-key/delete`.
//!
//! - create: `key_name` (1..39 characters), `account_level` (bool, owner only). The answer
//!   carries the secret `app_key` — the only time it is shown; the database keeps its hash.
//! - list: the caller's own keys; the owner sees every key of the account. Never the secret,
//!   only its last four characters (`key_hint`).
//! - delete: `key_id`; one's own key, or any key for the owner. It stops working at once.
//!
//! Creating and deleting need `API Keys Manage`, listing `API Keys Read` (RSP-521): checked
//! centrally by the route table (`super::access`) before these handlers run.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{AppKeyInfo, Member};
use serde_json::{Value, json};

use super::teams::{refused, store_err};
use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

pub const PATHS: &[&str] = &["/app-key/create", "/app-key/list", "/app-key/delete"];

/// §1.26: `name: 1..39`.
const MAX_NAME_CHARS: usize = 39;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/app-key/create" => create(state, caller, args).await.map(Some),
        "/app-key/list" => list(state, caller).await.map(Some),
        "/app-key/delete" => delete(state, caller, args).await.map(|_| None),
        _ => return None,
    })
}

fn key_json(k: &AppKeyInfo) -> Value {
    json!({
        "key_id": k.key_id,
        "key_name": k.key_name,
        "member_id": k.member_id,
        "account_level": k.member_id == 0,
        "key_hint": format!("…{}", k.key_hint),
        "created_at": wire::secs(k.created_at),
        "last_used_at": wire::secs(k.last_used_at),
    })
}

async fn me(state: &AppState, caller: &Caller) -> Result<Member, ApiError> {
    state
        .store
        .member(caller.account_id, caller.member_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "the caller is no longer a member"))
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let name = args.str("key_name")?.unwrap_or_default();
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("key_name: required"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "key_name: at most {MAX_NAME_CHARS} characters"
        )));
    }
    let account_level = args.bool("account_level")?.unwrap_or(false);
    let member = me(state, caller).await?;
    if account_level && !member.is_owner {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "account_level: only the account owner may create account-level APP keys",
        ));
    }
    if caller.account_key && !account_level {
        return Err(ApiError::invalid(
            "account_level: an account-level key can only create account-level keys",
        ));
    }
    let owner = if account_level { 0 } else { caller.member_id };
    let created = state
        .store
        .create_app_key(caller.account_id, owner, name, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    tracing::info!(
        account_id = caller.account_id,
        key_id = created.info.key_id,
        "APP key created"
    );
    let mut out = key_json(&created.info);
    if let Value::Object(map) = &mut out {
        map.insert("app_key".into(), Value::String(created.app_key));
    }
    Ok(out)
}

async fn list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let member = me(state, caller).await?;
    let scope = if member.is_owner {
        None
    } else {
        Some(caller.member_id)
    };
    let keys = state
        .store
        .list_app_keys(caller.account_id, scope)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = keys.iter().map(key_json).collect();
    let total = items.len();
    Ok(json!({ "items": items, "total": total, "has_next_page": false }))
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let key_id = args
        .i64("key_id")?
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("key_id: required"))?;
    let member = me(state, caller).await?;
    let not_found = || {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("key_id: APP key {key_id} not found"),
        )
    };
    let key = state
        .store
        .app_key_info(caller.account_id, key_id)
        .await
        .map_err(store_err)?
        .ok_or_else(not_found)?;
    if !member.is_owner && key.member_id != caller.member_id {
        // Another member's key is not shown to this caller, so it does not exist for them.
        return Err(not_found());
    }
    if !state
        .store
        .delete_app_key(caller.account_id, key_id)
        .await
        .map_err(store_err)?
    {
        return Err(not_found());
    }
    tracing::info!(account_id = caller.account_id, key_id, "APP key deleted");
    Ok(())
}
