//! Channel noise rules (openapi-compat.md 2.5; ingest.md §2.9, §2.11, §2.12):
//! `/channel/{silence,inhibit,unsubscribe}/rule/{list,info,create,update,delete,enable,disable}`
//! (`unsubscribe` is the Open API's name for drop rules), and the Klaxon extension
//! `/alert-event/outcome/list`: what happened to each event and why (ING-262).
//!
//! Bodies use the rule's wire fields: `rule_name`, `description`, `priority`, and
//! - drop: `filters` (also read from `conditions`);
//! - silence: `filters`, `time_filter{start_time, end_time}` or `time_filters[]{start, end,
//!   repeat, cal_id, is_off}`, `is_directly_discard` (default false = mark);
//! - inhibit: `source_filters`, `target_filters`, `equals[]` (`title`, `description`,
//!   `severity`, `labels.<name>`), `is_directly_discard` (default true = drop). The names of
//!   ingest.md §1.3.7 are read too when the Open API name is absent: `source_conditions`,
//!   `target_conditions`, `equal_attributes` + `equal_labels`, `behaviour` (`drop`|`mark`).
//!
//! Every refusal names the bad field; a refused call changes nothing.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::noise::{NoiseRule, RuleKind, validate_rule};
use klaxon_core::response::RuleStatus;
use klaxon_store::{EventOutcome, NoiseRefusal, OutcomeFilter, Paging, StoreError};
use serde_json::{Map, Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/channel/silence/rule/list",
    "/channel/silence/rule/info",
    "/channel/silence/rule/create",
    "/channel/silence/rule/update",
    "/channel/silence/rule/delete",
    "/channel/silence/rule/enable",
    "/channel/silence/rule/disable",
    "/channel/inhibit/rule/list",
    "/channel/inhibit/rule/info",
    "/channel/inhibit/rule/create",
    "/channel/inhibit/rule/update",
    "/channel/inhibit/rule/delete",
    "/channel/inhibit/rule/enable",
    "/channel/inhibit/rule/disable",
    "/channel/unsubscribe/rule/list",
    "/channel/unsubscribe/rule/info",
    "/channel/unsubscribe/rule/create",
    "/channel/unsubscribe/rule/update",
    "/channel/unsubscribe/rule/delete",
    "/channel/unsubscribe/rule/enable",
    "/channel/unsubscribe/rule/disable",
    "/alert-event/outcome/list",
    "/incident/quick-silence",
];

/// ING-262 outcome names a filter may ask for.
const OUTCOMES: &[&str] = &[
    "new_alert",
    "merged",
    "merged_nonsignificant",
    "duplicate",
    "resolved",
    "ok_without_alert",
    "dropped_by_channel_rule",
    "silenced_drop",
    "inhibited_drop",
    "channel_disabled",
    "no_route",
    "dropped_by_pipeline",
    "inhibited_by_pipeline",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    if path == "/alert-event/outcome/list" {
        return Some(outcome_list(state, caller, args).await.map(Some));
    }
    if path == "/incident/quick-silence" {
        return Some(quick_silence(state, caller, args).await.map(Some));
    }
    let rest = path.strip_prefix("/channel/")?;
    let (set, verb) = rest.split_once("/rule/")?;
    let kind = match set {
        "silence" => RuleKind::Silence,
        "inhibit" => RuleKind::Inhibit,
        "unsubscribe" => RuleKind::Drop,
        _ => return None,
    };
    Some(match verb {
        "list" => list(state, caller, args, kind).await.map(Some),
        "info" => info(state, caller, args, kind).await.map(Some),
        "create" => save(state, caller, args, kind, true).await.map(Some),
        "update" => save(state, caller, args, kind, false).await.map(|_| None),
        "delete" => delete(state, caller, args, kind).await.map(|()| None),
        "enable" => set_status(state, caller, args, kind, RuleStatus::Enabled)
            .await
            .map(|()| None),
        "disable" => set_status(state, caller, args, kind, RuleStatus::Disabled)
            .await
            .map(|()| None),
        _ => return None,
    })
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn what(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Drop => "drop rule",
        RuleKind::Silence => "silence rule",
        RuleKind::Inhibit => "inhibit rule",
    }
}

fn rule_not_found(kind: RuleKind, id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("{} {id} not found", what(kind)),
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

/// The wire form: the fields of the rule's kind, times in seconds, without the account.
pub fn rule_json(rule: &NoiseRule) -> Value {
    let mut v = serde_json::to_value(rule).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("account_id");
        obj.remove("kind");
        let drop_fields: &[&str] = match rule.kind {
            RuleKind::Drop => &[
                "time_filter",
                "time_filters",
                "is_directly_discard",
                "from_incident_id",
                "source_filters",
                "target_filters",
                "equals",
            ],
            RuleKind::Silence => &["source_filters", "target_filters", "equals"],
            RuleKind::Inhibit => &["filters", "time_filter", "time_filters", "from_incident_id"],
        };
        for f in drop_fields {
            obj.remove(*f);
        }
        obj.insert("created_at".into(), json!(rule.created_at / 1000));
        obj.insert("updated_at".into(), json!(rule.updated_at / 1000));
    }
    v
}

/// The body fields a rule of `kind` takes.
fn fields(kind: RuleKind) -> &'static [&'static str] {
    match kind {
        RuleKind::Drop => &["rule_name", "description", "priority", "filters"],
        RuleKind::Silence => &[
            "rule_name",
            "description",
            "priority",
            "filters",
            "time_filter",
            "time_filters",
            "is_directly_discard",
        ],
        RuleKind::Inhibit => &[
            "rule_name",
            "description",
            "priority",
            "source_filters",
            "target_filters",
            "equals",
            "is_directly_discard",
        ],
    }
}

/// Reads the rule from the body over `base` (update) or the kind's defaults (create).
fn merged_body(
    args: &Args,
    kind: RuleKind,
    base: Option<&NoiseRule>,
) -> Result<NoiseRule, ApiError> {
    let start = base.cloned().unwrap_or_else(|| NoiseRule::new(kind));
    let mut body: Map<String, Value> = match serde_json::to_value(&start) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let raw = args.raw();
    let given = |k: &str| raw.get(k).filter(|v| !v.is_null());
    for k in fields(kind) {
        if let Some(v) = given(k) {
            body.insert((*k).to_string(), v.clone());
        }
    }
    if kind == RuleKind::Drop
        && given("filters").is_none()
        && let Some(v) = given("conditions")
    {
        body.insert("filters".into(), v.clone());
    }
    if kind == RuleKind::Inhibit {
        // ingest.md §1.3.7 names: accepted when the Open API name is not given.
        for (spec, wire) in [
            ("source_conditions", "source_filters"),
            ("target_conditions", "target_filters"),
        ] {
            if given(wire).is_none()
                && let Some(v) = given(spec)
            {
                body.insert(wire.into(), v.clone());
            }
        }
        if given("equals").is_none()
            && (given("equal_attributes").is_some() || given("equal_labels").is_some())
        {
            let mut equals: Vec<Value> = Vec::new();
            if let Some(v) = given("equal_attributes") {
                let items = v.as_array().ok_or_else(|| {
                    ApiError::invalid("equal_attributes must be an array of strings")
                })?;
                equals.extend(items.iter().cloned());
            }
            if let Some(v) = given("equal_labels") {
                let items = v
                    .as_array()
                    .ok_or_else(|| ApiError::invalid("equal_labels must be an array of strings"))?;
                for item in items {
                    let name = item.as_str().ok_or_else(|| {
                        ApiError::invalid("equal_labels must be an array of strings")
                    })?;
                    equals.push(json!(format!("labels.{name}")));
                }
            }
            body.insert("equals".into(), Value::Array(equals));
        }
        if given("is_directly_discard").is_none()
            && let Some(v) = given("behaviour")
        {
            let discard = match v.as_str() {
                Some("drop") => true,
                Some("mark") => false,
                _ => return Err(ApiError::invalid("behaviour must be drop or mark")),
            };
            body.insert("is_directly_discard".into(), json!(discard));
        }
    }
    if kind == RuleKind::Silence {
        // One time specification replaces the other (ING-131: exactly one of them).
        let one_off = given("time_filter").is_some();
        let recurring =
            given("time_filters").is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty()));
        if one_off && !recurring {
            body.insert("time_filters".into(), json!([]));
        }
        if recurring && !one_off {
            body.remove("time_filter");
        }
    }
    if base.is_none() && given("rule_name").is_none() {
        return Err(ApiError::invalid("rule_name is required"));
    }
    serde_json::from_value::<NoiseRule>(Value::Object(body))
        .map_err(|e| ApiError::invalid(format!("invalid {}: {e}", what(kind))))
}

async fn list(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    kind: RuleKind,
) -> Result<Value, ApiError> {
    let channel = channel_id(args)?;
    let rules = state
        .store
        .noise_rules(caller.account_id, channel, kind, state.clock.now())
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = rules.iter().map(rule_json).collect();
    Ok(json!({"items": items, "total": items.len()}))
}

/// The rule `rule_id` of `kind`, in `channel_id` when the body names one.
async fn existing(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    kind: RuleKind,
) -> Result<NoiseRule, ApiError> {
    let id = rule_id(args)?;
    let channel = args.i64("channel_id")?;
    state
        .store
        .noise_rule(caller.account_id, &id, state.clock.now())
        .await
        .map_err(store_err)?
        .filter(|r| r.kind == kind && channel.is_none_or(|c| c == r.channel_id))
        .ok_or_else(|| rule_not_found(kind, &id))
}

async fn info(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    kind: RuleKind,
) -> Result<Value, ApiError> {
    Ok(rule_json(&existing(state, caller, args, kind).await?))
}

async fn save(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    kind: RuleKind,
    creating: bool,
) -> Result<Value, ApiError> {
    let base = if creating {
        None
    } else {
        Some(existing(state, caller, args, kind).await?)
    };
    let channel = match &base {
        Some(r) => r.channel_id,
        None => channel_id(args)?,
    };
    // RSP-120: a silence created with `from_incident_id` starts from the quick-silence
    // defaults, or is the rule that incident already made.
    let quick = match args.str("from_incident_id")? {
        Some(id) if creating && kind == RuleKind::Silence => {
            let incident = incident_of(state, caller, &id).await?;
            if incident.channel_id != channel {
                return Err(ApiError::invalid(format!(
                    "from_incident_id: incident {id} is not in channel {channel}"
                )));
            }
            if let Some(rule) = state
                .store
                .quick_silence_rule(caller.account_id, channel, &id, state.clock.now())
                .await
                .map_err(store_err)?
            {
                return Ok(json!({"rule_id": rule.rule_id, "rule_name": rule.rule_name}));
            }
            Some(klaxon_core::noise::quick_silence(
                &incident,
                state.clock.now(),
            ))
        }
        _ => None,
    };
    let mut rule = match &quick {
        Some(defaults) => merged_body(args, kind, Some(defaults))?,
        None => merged_body(args, kind, base.as_ref())?,
    };
    rule.account_id = caller.account_id;
    rule.channel_id = channel;
    rule.kind = kind;
    rule.rule_id = base.as_ref().map(|r| r.rule_id.clone()).unwrap_or_default();
    rule.status = base.as_ref().map_or(RuleStatus::Enabled, |r| r.status);
    rule.from_incident_id = base
        .as_ref()
        .or(quick.as_ref())
        .map(|r| r.from_incident_id.clone())
        .unwrap_or_default();
    if creating {
        rule.creator_id = caller.member_id;
    }
    rule.updated_by = caller.member_id;
    validate_rule(&mut rule).map_err(|e| ApiError::invalid(e.to_string()))?;
    check_calendars(state, caller, &rule).await?;
    let saved = write(state, rule, kind).await?;
    Ok(json!({"rule_id": saved.rule_id, "rule_name": saved.rule_name}))
}

/// ING-133: a `cal_id` must name one of the account's service calendars.
async fn check_calendars(
    state: &AppState,
    caller: &Caller,
    rule: &NoiseRule,
) -> Result<(), ApiError> {
    if rule.time_filters.iter().all(|f| f.cal_id.is_empty()) {
        return Ok(());
    }
    let calendars = state
        .store
        .account_calendars(caller.account_id)
        .await
        .map_err(store_err)?;
    for (i, f) in rule.time_filters.iter().enumerate() {
        if !f.cal_id.is_empty() && calendars.view().get(&f.cal_id).is_none() {
            return Err(ApiError::invalid(format!(
                "time_filters[{i}].cal_id: service calendar {} not found",
                f.cal_id
            )));
        }
    }
    Ok(())
}

pub(crate) async fn write(
    state: &AppState,
    rule: NoiseRule,
    kind: RuleKind,
) -> Result<NoiseRule, ApiError> {
    let channel = rule.channel_id;
    let id = rule.rule_id.clone();
    state
        .store
        .save_noise_rule(rule, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            NoiseRefusal::ChannelNotFound => ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("channel {channel} not found"),
            ),
            NoiseRefusal::RuleNotFound => rule_not_found(kind, &id),
        })
}

async fn delete(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    kind: RuleKind,
) -> Result<(), ApiError> {
    let rule = existing(state, caller, args, kind).await?;
    state
        .store
        .delete_noise_rule(caller.account_id, &rule.rule_id)
        .await
        .map_err(store_err)?;
    Ok(())
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    kind: RuleKind,
    status: RuleStatus,
) -> Result<(), ApiError> {
    let mut rule = existing(state, caller, args, kind).await?;
    if rule.status == status {
        return Ok(());
    }
    rule.status = status;
    rule.updated_by = caller.member_id;
    write(state, rule, kind).await?;
    Ok(())
}

fn outcome_json(o: &EventOutcome) -> Value {
    json!({
        "outcome_id": o.outcome_id,
        "outcome": o.outcome,
        "mark": o.mark,
        "rule_id": o.rule_id,
        "rule_name": o.rule_name,
        "source_incident_id": o.source_incident_id,
        "event_id": o.event_id,
        "alert_id": o.alert_id,
        "incident_id": o.incident_id,
        "is_flapping": o.is_flapping,
        "labels_truncated": o.labels_truncated,
        "enrich_error": o.enrich_error,
        "request_id": o.request_id,
        "channel_id": o.channel_id,
        "integration_id": o.integration_id,
        "integration_type": o.integration_type,
        "alert_key": o.alert_key,
        "event_status": o.event_status,
        "title": o.title,
        "event_time": o.event_time / 1000,
        "received_at": o.received_at / 1000,
        "created_at": o.created_at / 1000,
    })
}

/// ING-262: the recorded outcomes, newest first, by request, channel, integration, outcome,
/// alert, rule and receive time (`start_time`/`end_time` in seconds, optional).
async fn outcome_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let start = args.i64("start_time")?.unwrap_or(0);
    let end = args.i64("end_time")?.unwrap_or(0);
    if start < 0 || end < 0 {
        return Err(ApiError::invalid(
            "start_time and end_time must not be negative",
        ));
    }
    if start > 0 && end > 0 && end <= start {
        return Err(ApiError::invalid("end_time must be after start_time"));
    }
    let outcomes = args.comma_list("outcomes")?;
    if let Some(bad) = outcomes.iter().find(|o| !OUTCOMES.contains(&o.as_str())) {
        return Err(ApiError::invalid(format!(
            "outcomes has an invalid value: {bad} (one of {})",
            OUTCOMES.join(", ")
        )));
    }
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20).min(100);
    let filter = OutcomeFilter {
        paging: Paging {
            p,
            limit,
            asc: args.bool("asc")?.unwrap_or(false),
            search_after_ctx: None,
        },
        start_time: start.saturating_mul(1000),
        end_time: end.saturating_mul(1000),
        request_id: args.str("request_id")?,
        channel_ids: args.i64_list("channel_ids")?,
        integration_ids: args.i64_list("integration_ids")?,
        outcomes,
        alert_id: args.str("alert_id")?,
        rule_id: args.str("rule_id")?,
    };
    let page = state
        .store
        .event_outcomes(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = page.items.iter().map(outcome_json).collect();
    Ok(json!({
        "items": items,
        "total": page.total,
        "has_next_page": page.has_next_page,
    }))
}

async fn incident_of(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<klaxon_core::model::Incident, ApiError> {
    state
        .store
        .incident(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("incident {id} not found"),
            )
        })
}

/// RSP-120 (Klaxon extension `/incident/quick-silence`): the incident's quick-silence rule,
/// created with the defaults of ING-134 unless the incident already made one that still
/// exists, which is returned instead. `created` tells which. Not for incidents without a
/// channel.
async fn quick_silence(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args
        .str("incident_id")?
        .ok_or_else(|| ApiError::invalid("incident_id is required"))?;
    let incident = incident_of(state, caller, &id).await?;
    if incident.channel_id == 0 {
        return Err(ApiError::invalid(
            "incident_id: quick silence is not available for incidents without a channel",
        ));
    }
    let now = state.clock.now();
    if let Some(rule) = state
        .store
        .quick_silence_rule(caller.account_id, incident.channel_id, &id, now)
        .await
        .map_err(store_err)?
    {
        let mut v = rule_json(&rule);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("created".into(), json!(false));
        }
        return Ok(v);
    }
    let mut rule = klaxon_core::noise::quick_silence(&incident, now);
    rule.creator_id = caller.member_id;
    rule.updated_by = caller.member_id;
    validate_rule(&mut rule).map_err(|e| ApiError::invalid(e.to_string()))?;
    let saved = write(state, rule, RuleKind::Silence).await?;
    let mut v = rule_json(&saved);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("created".into(), json!(true));
    }
    Ok(v)
}
