//! Escalation rules per channel (openapi-compat.md 2.7; response.md 1.12, RSP-130 … RSP-139):
//! `/channel/escalate/rule/{list,info,create,update,delete,enable,disable}`, and the Klaxon
//! extension `/channel/escalate/rule/reorder` (RSP-137).
//!
//! Bodies are the rule's wire shape (`layers[]{target, escalate_window, force_escalate,
//! max_times, notify_step}`, `time_filters[]`, `filters[[…]]`, `aggr_window`, …), validated by
//! `klaxon_core::response::validate_rule`; errors name the bad field.
//!
//! A time filter's `cal_id` must name one of the account's service calendars, and a non-empty
//! `template_id` one of the account's templates or the default's ids (response.md 1.12); an
//! empty or absent `template_id` means the default template.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::response::{EscalationRule, RuleStatus, unknown_calendars, validate_rule};
use klaxon_store::{ReorderRefusal, RuleRefusal, StoreError};
use serde_json::{Map, Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/channel/escalate/rule/list",
    "/channel/escalate/rule/info",
    "/channel/escalate/rule/create",
    "/channel/escalate/rule/update",
    "/channel/escalate/rule/delete",
    "/channel/escalate/rule/enable",
    "/channel/escalate/rule/disable",
    "/channel/escalate/rule/reorder",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/channel/escalate/rule/list" => list(state, caller, args).await.map(Some),
        "/channel/escalate/rule/info" => info(state, caller, args).await.map(Some),
        "/channel/escalate/rule/create" => save(state, caller, args, true).await.map(Some),
        "/channel/escalate/rule/update" => save(state, caller, args, false).await.map(|_| None),
        "/channel/escalate/rule/delete" => delete(state, caller, args).await.map(|()| None),
        "/channel/escalate/rule/enable" => set_status(state, caller, args, RuleStatus::Enabled)
            .await
            .map(|()| None),
        "/channel/escalate/rule/disable" => set_status(state, caller, args, RuleStatus::Disabled)
            .await
            .map(|()| None),
        "/channel/escalate/rule/reorder" => reorder(state, caller, args).await.map(|()| None),
        _ => return None,
    })
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn rule_not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("escalation rule {id} not found"),
    )
}

fn channel_id(args: &Args) -> Result<i64, ApiError> {
    match args.i64("channel_id")? {
        Some(id) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid("channel_id is required")),
    }
}

fn rule_id(args: &Args) -> Result<String, ApiError> {
    args.str("rule_id")?
        .ok_or_else(|| ApiError::invalid("rule_id is required"))
}

/// The wire form: the stored rule with times in seconds and without the account.
pub fn rule_json(rule: &EscalationRule) -> Value {
    let mut v = serde_json::to_value(rule).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("account_id");
        obj.insert("created_at".into(), json!(rule.created_at / 1000));
        obj.insert("updated_at".into(), json!(rule.updated_at / 1000));
    }
    v
}

async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let channel = channel_id(args)?;
    let rules = state
        .store
        .escalation_rules(caller.account_id, channel)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = rules.iter().map(rule_json).collect();
    Ok(json!({"items": items, "total": items.len()}))
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = rule_id(args)?;
    let channel = args.i64("channel_id")?;
    let rule = state
        .store
        .escalation_rule(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .filter(|r| channel.is_none_or(|c| c == r.channel_id))
        .ok_or_else(|| rule_not_found(&id))?;
    Ok(rule_json(&rule))
}

/// Reads the rule's fields from the body. On update, fields left out keep their stored value.
fn merged_body(args: &Args, base: Option<&EscalationRule>) -> Result<EscalationRule, ApiError> {
    let mut body: Map<String, Value> = match base {
        Some(r) => match serde_json::to_value(r) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    for (k, v) in args.raw() {
        if matches!(
            k.as_str(),
            "rule_name"
                | "description"
                | "priority"
                | "template_id"
                | "aggr_window"
                | "time_filters"
                | "filters"
                | "layers"
        ) && !v.is_null()
        {
            body.insert(k.clone(), v.clone());
        }
    }
    if base.is_none() && !body.contains_key("priority") {
        body.insert("priority".into(), json!(-1));
    }
    if !body.contains_key("rule_name") {
        return Err(ApiError::invalid("rule_name is required"));
    }
    if !body.contains_key("layers") {
        return Err(ApiError::invalid("layers is required"));
    }
    serde_json::from_value::<EscalationRule>(Value::Object(body))
        .map_err(|e| ApiError::invalid(format!("invalid rule: {e}")))
}

async fn save(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    creating: bool,
) -> Result<Value, ApiError> {
    let base = if creating {
        None
    } else {
        let id = rule_id(args)?;
        Some(
            state
                .store
                .escalation_rule(caller.account_id, &id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| rule_not_found(&id))?,
        )
    };
    let channel = match &base {
        Some(r) => r.channel_id,
        None => channel_id(args)?,
    };
    let mut rule = merged_body(args, base.as_ref())?;
    rule.account_id = caller.account_id;
    rule.channel_id = channel;
    rule.rule_id = base.as_ref().map(|r| r.rule_id.clone()).unwrap_or_default();
    rule.status = base.as_ref().map_or(RuleStatus::Enabled, |r| r.status);
    rule.updated_by = caller.member_id;
    let auto_priority = rule.priority < 0;
    if auto_priority {
        rule.priority = 0; // validated as 0, placed last by the store
    }
    validate_rule(&mut rule).map_err(|e| ApiError::invalid(e.to_string()))?;
    if rule.time_filters.iter().any(|f| !f.cal_id.is_empty()) {
        let calendars = state
            .store
            .account_calendars(caller.account_id)
            .await
            .map_err(store_err)?;
        if let Some(missing) = unknown_calendars(&rule, calendars.view()).first() {
            let i = rule
                .time_filters
                .iter()
                .position(|f| &f.cal_id == missing)
                .unwrap_or(0);
            return Err(ApiError::invalid(format!(
                "time_filters[{i}].cal_id: service calendar {missing} not found"
            )));
        }
    }
    if auto_priority {
        rule.priority = -1;
    }
    let template_id = rule.template_id.clone();
    let saved = state
        .store
        .save_escalation_rule(rule, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            RuleRefusal::ChannelNotFound => ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("channel {channel} not found"),
            ),
            RuleRefusal::RuleNotFound => rule_not_found(""),
            RuleRefusal::NameTaken => {
                ApiError::invalid("rule_name is already used by another rule of this channel")
            }
            RuleRefusal::PriorityTaken => {
                ApiError::invalid("priority is already used by another rule of this channel")
            }
            RuleRefusal::TemplateNotFound => ApiError::invalid(format!(
                "template_id: notification template {template_id} not found"
            )),
        })?;
    Ok(json!({"rule_id": saved.rule_id, "rule_name": saved.rule_name}))
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = rule_id(args)?;
    let rule = state
        .store
        .escalation_rule(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| rule_not_found(&id))?;
    if let Some(c) = args.i64("channel_id")?
        && c != rule.channel_id
    {
        return Err(rule_not_found(&id));
    }
    state
        .store
        .delete_escalation_rule(caller.account_id, rule.channel_id, &id)
        .await
        .map_err(store_err)?;
    Ok(())
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    status: RuleStatus,
) -> Result<(), ApiError> {
    let id = rule_id(args)?;
    let mut rule = state
        .store
        .escalation_rule(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| rule_not_found(&id))?;
    if let Some(c) = args.i64("channel_id")?
        && c != rule.channel_id
    {
        return Err(rule_not_found(&id));
    }
    if rule.status == status {
        return Ok(());
    }
    rule.status = status;
    rule.updated_by = caller.member_id;
    state
        .store
        .save_escalation_rule(rule, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|_| rule_not_found(&id))?;
    Ok(())
}

/// `/channel/escalate/rule/reorder` (RSP-137, a Klaxon extension): `rule_ids` lists every rule
/// of the channel, first to last; their priorities become 0, 1, 2, … at once.
async fn reorder(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let channel = channel_id(args)?;
    if !args.raw().contains_key("rule_ids") {
        return Err(ApiError::invalid("rule_ids is required"));
    }
    let order = args.str_list("rule_ids")?;
    state
        .store
        .reorder_escalation_rules(
            caller.account_id,
            channel,
            &order,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            ReorderRefusal::ChannelNotFound => ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("channel {channel} not found"),
            ),
            ReorderRefusal::Mismatch(e) => ApiError::invalid(e),
        })
}
