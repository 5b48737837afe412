//! Custom fields over the Open API (openapi-compat.md 2.2; response.md 1.11, RSP-084, RSP-085):
//! `/field/{list,info,create,update,delete}`. Values are set with `/incident/field/reset`
//! (incident_actions.rs).
//!
//! Deleting a field removes its value from every incident in the same transaction, so the
//! `deleting` state of RSP-085 is never observable and the name is free again at once.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::response::fields::validate_definition;
use klaxon_core::response::{FieldDefinition, FieldType};
use klaxon_store::{FieldRefusal, StoreError};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/field/list",
    "/field/info",
    "/field/create",
    "/field/update",
    "/field/delete",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/field/list" => list(state, caller, args).await.map(Some),
        "/field/info" => info(state, caller, args).await.map(Some),
        "/field/create" => create(state, caller, args).await.map(Some),
        "/field/update" => update(state, caller, args).await.map(|()| None),
        "/field/delete" => delete(state, caller, args).await.map(|()| None),
        _ => return None,
    })
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn field_not_found(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("custom field {what} not found"),
    )
}

/// The wire object (openapi-compat.md 2.2).
pub fn field_json(d: &FieldDefinition) -> Value {
    json!({
        "field_id": d.field_id,
        "field_name": d.field_name,
        "display_name": d.display_name,
        "description": d.description,
        "field_type": d.field_type,
        "value_type": d.field_type.value_type(),
        "options": d.options,
        "default_value": d.default_value,
        "status": "active",
        "creator_id": d.creator_id,
        "updated_by": d.updated_by,
        "created_at": d.created_at / 1000,
        "updated_at": d.updated_at / 1000,
    })
}

/// The account's field with this id or name.
pub async fn find(
    state: &AppState,
    caller: &Caller,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<Option<FieldDefinition>, ApiError> {
    let all = state
        .store
        .custom_fields(caller.account_id)
        .await
        .map_err(store_err)?;
    Ok(all
        .into_iter()
        .find(|d| id.is_some_and(|i| d.field_id == i) || name.is_some_and(|n| d.field_name == n)))
}

/// `query` is a case-insensitive regular expression over the name and display name.
async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut all = state
        .store
        .custom_fields(caller.account_id)
        .await
        .map_err(store_err)?;
    if let Some(q) = args.str("query")? {
        let re = regex::RegexBuilder::new(&q)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                ApiError::invalid(format!("query is not a valid regular expression: {e}"))
            })?;
        all.retain(|d| re.is_match(&d.field_name) || re.is_match(&d.display_name));
    }
    if let Some(creator) = args.i64("creator_id")? {
        all.retain(|d| d.creator_id == creator);
    }
    let by_updated = args.str("orderby")?.as_deref() == Some("updated_at");
    all.sort_by_key(|d| {
        (
            if by_updated {
                d.updated_at
            } else {
                d.created_at
            },
            d.field_id.clone(),
        )
    });
    if !args.bool("asc")?.unwrap_or(false) {
        all.reverse();
    }
    let items: Vec<Value> = all.iter().map(field_json).collect();
    Ok(json!({"items": items, "total": items.len()}))
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args
        .str("field_id")?
        .ok_or_else(|| ApiError::invalid("field_id is required"))?;
    let def = find(state, caller, Some(&id), None)
        .await?
        .ok_or_else(|| field_not_found(&id))?;
    Ok(field_json(&def))
}

fn parse_type(args: &Args) -> Result<FieldType, ApiError> {
    let t = args
        .str("field_type")?
        .ok_or_else(|| ApiError::invalid("field_type is required"))?;
    serde_json::from_value(Value::String(t.clone())).map_err(|_| {
        ApiError::invalid(format!(
            "field_type {t} is not one of text, single_select, multi_select, checkbox"
        ))
    })
}

fn string_list(args: &Args, name: &str) -> Result<Vec<String>, ApiError> {
    args.str_list(name)
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let field_type = parse_type(args)?;
    if let Some(vt) = args.str("value_type")?
        && vt != field_type.value_type()
        && !(vt == "float" && field_type == FieldType::Text)
    {
        return Err(ApiError::invalid(format!(
            "value_type {vt} does not fit field_type {}",
            args.str("field_type")?.unwrap_or_default()
        )));
    }
    let mut def = FieldDefinition {
        field_id: String::new(),
        field_name: args
            .str("field_name")?
            .ok_or_else(|| ApiError::invalid("field_name is required"))?,
        display_name: args
            .str("display_name")?
            .ok_or_else(|| ApiError::invalid("display_name is required"))?,
        description: args.str("description")?.unwrap_or_default(),
        field_type,
        options: string_list(args, "options")?,
        default_value: args
            .raw()
            .get("default_value")
            .cloned()
            .unwrap_or(Value::Null),
        creator_id: caller.member_id,
        updated_by: caller.member_id,
        created_at: 0,
        updated_at: 0,
    };
    if def.default_value == Value::String(String::new()) {
        def.default_value = Value::Null; // openapi-compat.md 1.3: "" means absent
    }
    validate_definition(&mut def).map_err(|e| ApiError::invalid(e.to_string()))?;
    let saved = state
        .store
        .create_custom_field(caller.account_id, def, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            FieldRefusal::NameTaken => ApiError::invalid("field_name is already used"),
            FieldRefusal::LimitReached => {
                ApiError::invalid("an account holds at most 15 custom fields")
            }
            FieldRefusal::NotFound => field_not_found(""),
        })?;
    Ok(json!({"field_id": saved.field_id, "field_name": saved.field_name}))
}

/// RSP-085: only `display_name`, `description`, `options` and `default_value` change.
async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = args
        .str("field_id")?
        .ok_or_else(|| ApiError::invalid("field_id is required"))?;
    let mut def = find(state, caller, Some(&id), None)
        .await?
        .ok_or_else(|| field_not_found(&id))?;
    if let Some(name) = args.str("field_name")?
        && name != def.field_name
    {
        return Err(ApiError::invalid("field_name cannot be changed"));
    }
    if args.str("field_type")?.is_some() && parse_type(args)? != def.field_type {
        return Err(ApiError::invalid("field_type cannot be changed"));
    }
    if let Some(v) = args.str("display_name")? {
        def.display_name = v;
    }
    if let Some(v) = args.raw().get("description").and_then(Value::as_str) {
        def.description = v.to_string();
    }
    if args.raw().contains_key("options") {
        def.options = string_list(args, "options")?;
    }
    if let Some(v) = args.raw().get("default_value") {
        def.default_value = if v == &Value::String(String::new()) {
            Value::Null
        } else {
            v.clone()
        };
    }
    def.updated_by = caller.member_id;
    validate_definition(&mut def).map_err(|e| ApiError::invalid(e.to_string()))?;
    state
        .store
        .update_custom_field(caller.account_id, &def, state.clock.now())
        .await
        .map_err(store_err)?;
    Ok(())
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = args
        .str("field_id")?
        .ok_or_else(|| ApiError::invalid("field_id is required"))?;
    if !state
        .store
        .delete_custom_field(caller.account_id, &id)
        .await
        .map_err(store_err)?
    {
        return Err(field_not_found(&id));
    }
    Ok(())
}
