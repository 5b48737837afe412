//! Channel management (openapi-compat.md 2.5): `/channel/{create,update,info,delete,enable,
//! disable}`, with the wire mapping of ingest.md §1.5.1–§1.5.2.
//!
//! - `group{method, equals, cases, all_equals_required, time_window, window_type,
//!   storm_thresholds, i_keys, i_score_threshold}` ↔ the grouping policy and the channel's
//!   storm thresholds. `method = i` is intelligent grouping (ING-157): `i_keys` (1–10 dims,
//!   absent or empty = [`title`]) and `i_score_threshold` (0.50–1.00, absent or 0 = 0.80);
//!   `equals`, `cases` and `all_equals_required` do not apply to it. On update an absent
//!   `group` leaves both unchanged; a present one replaces both (a `group` without
//!   `storm_thresholds` clears them: absent and empty mean the same, openapi-compat.md 1.3).
//! - `/channel/grouping/preview` (ING-160): replays the channel's recent events through a
//!   proposed `group{}` and returns the incident → alert → event tree; it writes nothing.
//! - `auto_resolve_timeout` (0 or 60–2 592 000 s), `auto_resolve_mode` (`trigger`|`update`),
//!   `disable_auto_close` (`true` stores timeout 0).
//! - `flapping{is_disabled, max_changes, in_mins, mute_mins, mode}` ↔ the flapping settings
//!   (ING-180…184). `mode` wins when present; without it `is_disabled` and `mute_mins` decide
//!   (ingest.md §1.5.2). Missing numbers take the defaults (4 / 60 / 60). On update an absent
//!   `flapping` leaves the settings unchanged; a present one replaces them.
//!
//! Creating a channel creates no integration: the spec asks for none (integrations are made
//! with `/integration/create`). Every refusal names the field and changes nothing.

use klaxon_core::condition::Condition;
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::flapping::{self, FlappingConfig, FlappingMode};
use klaxon_core::grouping::{self, FineRule, GroupingConfig, Mode, Scope, WindowType};
use klaxon_core::model::ChannelStatus;
use klaxon_store::{ChannelDraft, ChannelSettings, StoreError};
use serde_json::{Map, Value, json};

use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

pub const PATHS: &[&str] = &[
    "/channel/info",
    "/channel/create",
    "/channel/update",
    "/channel/delete",
    "/channel/enable",
    "/channel/disable",
    "/channel/grouping/preview",
];

/// response.md 1.6: `channel_name` 1–59, `description` ≤ 500 characters.
const NAME_MAX: usize = 59;
const DESCRIPTION_MAX: usize = 500;
/// response.md 1.6: at most 3 `managing_team_ids`.
const MANAGING_TEAMS_MAX: usize = 3;
/// ingest.md §1.3.6: `auto_resolve_timeout` 0 or 60–2 592 000 seconds.
const AUTO_RESOLVE_MIN: i64 = 60;
const AUTO_RESOLVE_MAX: i64 = 2_592_000;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/channel/info" => info(state, caller, args).await.map(Some),
        "/channel/create" => create(state, caller, args).await.map(Some),
        "/channel/update" => update(state, caller, args).await.map(|()| None),
        "/channel/delete" => delete(state, caller, args).await.map(|()| None),
        "/channel/enable" => set_status(state, caller, args, ChannelStatus::Enabled)
            .await
            .map(|()| None),
        "/channel/disable" => set_status(state, caller, args, ChannelStatus::Disabled)
            .await
            .map(|()| None),
        "/channel/grouping/preview" => preview(state, caller, args).await.map(Some),
        _ => return None,
    })
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("channel {id} not found"),
    )
}

fn channel_id(args: &Args) -> Result<i64, ApiError> {
    match args.i64("channel_id")? {
        Some(id) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid("channel_id is required")),
    }
}

/// The Channel object (openapi-compat.md 2.5) with `group{}` rendered from the settings.
pub fn render(s: &ChannelSettings) -> Value {
    let mut v = wire::channel(&s.channel);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("group".into(), group_json(&s.grouping, &s.storm_thresholds));
        obj.insert("flapping".into(), flapping_json(&s.flapping));
    }
    v
}

/// ingest.md §1.5.2, read direction: `mode` and `is_disabled` (= `mode = off`) with the
/// numbers.
fn flapping_json(f: &FlappingConfig) -> Value {
    json!({
        "mode": f.mode.as_str(),
        "is_disabled": f.mode == FlappingMode::Off,
        "max_changes": f.max_changes,
        "in_mins": f.in_mins,
        "mute_mins": f.mute_mins,
    })
}

/// ingest.md §1.5.1, read direction.
fn group_json(g: &GroupingConfig, storm: &[i64]) -> Value {
    let mut out = Map::new();
    if !g.enabled {
        out.insert("method".into(), json!("n"));
    } else if g.mode == Mode::Intelligent {
        out.insert("method".into(), json!(grouping::METHOD_INTELLIGENT));
        out.insert("i_keys".into(), json!(g.similarity_keys));
        out.insert("i_score_threshold".into(), json!(g.similarity_threshold));
    } else {
        out.insert("method".into(), json!(grouping::METHOD_RULE));
        let (equals, cases): (Vec<Vec<String>>, Vec<Value>) = match g.scope {
            Scope::Unified => (vec![g.unified_dims.clone()], Vec::new()),
            Scope::FineGrained => (
                if g.default_dims.is_empty() {
                    Vec::new()
                } else {
                    vec![g.default_dims.clone()]
                },
                g.fine_rules
                    .iter()
                    .map(|r| {
                        let conds: Vec<&Condition> = r.conditions.iter().flatten().collect();
                        json!({"if": conds, "equals": [r.dims.clone()]})
                    })
                    .collect(),
            ),
        };
        out.insert("equals".into(), json!(equals));
        out.insert("cases".into(), json!(cases));
        out.insert("all_equals_required".into(), json!(g.strict));
    }
    out.insert("time_window".into(), json!(g.window_minutes));
    out.insert(
        "window_type".into(),
        json!(match g.window_type {
            WindowType::Sliding => "sliding",
            WindowType::Tumbling => "tumbling",
        }),
    );
    out.insert("storm_thresholds".into(), json!(storm));
    Value::Object(out)
}

fn field_err(e: klaxon_core::response::RuleError) -> ApiError {
    ApiError::invalid(format!("{}: {}", e.field, e.message))
}

fn dims(v: &Value, field: &str) -> Result<Vec<String>, ApiError> {
    let Some(items) = v.as_array() else {
        return Err(ApiError::invalid(format!(
            "{field} must be an array of strings"
        )));
    };
    items
        .iter()
        .map(|d| {
            d.as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::invalid(format!("{field} must be an array of strings")))
        })
        .collect()
}

/// `equals`: a list holding at most one dim list (ING-155: one key per incident).
fn equals_list(v: Option<&Value>, field: &str) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(lists) = v.as_array() else {
        return Err(ApiError::invalid(format!(
            "{field} must be a list of dimension lists"
        )));
    };
    match lists.as_slice() {
        [] => Ok(None),
        [one] => dims(one, &format!("{field}[0]")).map(Some),
        _ => Err(ApiError::invalid(format!(
            "{field}: at most one dimension list is allowed (one group key per incident)"
        ))),
    }
}

fn int(obj: &Map<String, Value>, name: &str, field: &str) -> Result<Option<i64>, ApiError> {
    match obj.get(name).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("{field} must be an integer"))),
    }
}

/// ingest.md §1.5.1, write direction: the grouping policy and the storm thresholds.
fn parse_group(v: &Value) -> Result<(GroupingConfig, Vec<i64>), ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::invalid("group must be an object"));
    };
    let method = match obj.get("method").filter(|v| !v.is_null()) {
        None => "n",
        Some(Value::String(s)) if s.is_empty() => "n",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::invalid("group.method must be n, p or i")),
    };
    let mut cfg = GroupingConfig::default();
    match method {
        "n" => {}
        "p" => cfg.enabled = true,
        "i" => {
            cfg.enabled = true;
            cfg.mode = Mode::Intelligent;
        }
        other => {
            return Err(ApiError::invalid(format!(
                "group.method must be n, p or i, not {other:?}"
            )));
        }
    }
    cfg.window_minutes = int(obj, "time_window", "group.time_window")?.unwrap_or(0);
    cfg.window_type = match obj.get("window_type").filter(|v| !v.is_null()) {
        None => WindowType::Sliding,
        Some(Value::String(s)) if s.is_empty() || s == "sliding" => WindowType::Sliding,
        Some(Value::String(s)) if s == "tumbling" => WindowType::Tumbling,
        Some(_) => {
            return Err(ApiError::invalid(
                "group.window_type must be sliding or tumbling",
            ));
        }
    };
    match obj.get("all_equals_required").filter(|v| !v.is_null()) {
        None => {}
        Some(Value::Bool(b)) => cfg.strict = *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "group.all_equals_required must be a boolean",
            ));
        }
    }
    if cfg.mode == Mode::Intelligent {
        // §1.5.1: absent or empty keys → [title]; absent or 0 threshold → 0.80.
        let keys = match obj.get("i_keys").filter(|v| !v.is_null()) {
            None => Vec::new(),
            Some(v) => dims(v, "group.i_keys")?,
        };
        if !keys.is_empty() {
            cfg.similarity_keys = keys;
        }
        match obj.get("i_score_threshold").filter(|v| !v.is_null()) {
            None => {}
            Some(v) => match v.as_f64() {
                Some(0.0) => {}
                Some(t) => cfg.similarity_threshold = t,
                None => {
                    return Err(ApiError::invalid(
                        "group.i_score_threshold must be a number from 0.50 to 1.00",
                    ));
                }
            },
        }
    } else if cfg.enabled {
        let equals = equals_list(obj.get("equals"), "group.equals")?;
        let cases = match obj.get("cases").filter(|v| !v.is_null()) {
            None => Vec::new(),
            Some(Value::Array(c)) => c.clone(),
            Some(_) => return Err(ApiError::invalid("group.cases must be an array")),
        };
        if cases.is_empty() {
            cfg.scope = Scope::Unified;
            cfg.unified_dims = equals.unwrap_or_default();
        } else {
            cfg.scope = Scope::FineGrained;
            cfg.default_dims = equals.unwrap_or_default();
            for (i, case) in cases.iter().enumerate() {
                let field = format!("group.cases[{i}]");
                let Some(case) = case.as_object() else {
                    return Err(ApiError::invalid(format!("{field} must be an object")));
                };
                let conds: Vec<Condition> = match case.get("if").filter(|v| !v.is_null()) {
                    None => Vec::new(),
                    Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                        ApiError::invalid(format!(
                            "{field}.if must be a list of {{key, oper, vals}} conditions"
                        ))
                    })?,
                };
                let rule_dims = equals_list(case.get("equals"), &format!("{field}.equals"))?
                    .unwrap_or_default();
                cfg.fine_rules.push(FineRule {
                    id: i.to_string(),
                    conditions: vec![conds],
                    dims: rule_dims,
                });
            }
        }
    }
    grouping::validate(&cfg).map_err(field_err)?;
    let storm = match (
        obj.get("storm_thresholds").filter(|v| !v.is_null()),
        obj.get("storm_threshold").filter(|v| !v.is_null()),
    ) {
        (Some(Value::Array(items)), _) => items
            .iter()
            .map(|t| {
                t.as_i64().ok_or_else(|| {
                    ApiError::invalid("group.storm_thresholds must be a list of integers")
                })
            })
            .collect::<Result<Vec<i64>, ApiError>>()?,
        (Some(_), _) => {
            return Err(ApiError::invalid(
                "group.storm_thresholds must be a list of integers",
            ));
        }
        // Legacy singular form: one integer = a one-element list; 0 = none.
        (None, Some(v)) => match v.as_i64() {
            Some(0) => Vec::new(),
            Some(t) => vec![t],
            None => {
                return Err(ApiError::invalid(
                    "group.storm_threshold must be an integer",
                ));
            }
        },
        (None, None) => Vec::new(),
    };
    grouping::validate_storm_thresholds(&storm).map_err(field_err)?;
    Ok((cfg, storm))
}

/// ingest.md §1.5.2, write direction: `flapping{is_disabled, max_changes, in_mins,
/// mute_mins, mode}`. `mode` wins when present; without it, `is_disabled = true` means off and
/// otherwise the mute window decides: `mute_mins = 0` is remind, `mute_mins > 0` is
/// remind_suppress (the SaaS treats a mute window as suppression). The mute window read there
/// is the effective one, so an omitted `mute_mins` counts as its default 60.
fn parse_flapping(v: &Value) -> Result<FlappingConfig, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::invalid("flapping must be an object"));
    };
    let defaults = FlappingConfig::default();
    let mut cfg = FlappingConfig {
        max_changes: int(obj, "max_changes", "flapping.max_changes")?
            .unwrap_or(defaults.max_changes),
        in_mins: int(obj, "in_mins", "flapping.in_mins")?.unwrap_or(defaults.in_mins),
        mute_mins: int(obj, "mute_mins", "flapping.mute_mins")?.unwrap_or(defaults.mute_mins),
        ..defaults
    };
    let disabled = match obj.get("is_disabled").filter(|v| !v.is_null()) {
        // Go clients omit `false`, so an absent is_disabled is false: enabled.
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("flapping.is_disabled must be a boolean")),
    };
    cfg.mode = match obj.get("mode").filter(|v| !v.is_null()) {
        Some(Value::String(m)) if !m.is_empty() => FlappingMode::parse(m).ok_or_else(|| {
            ApiError::invalid(format!(
                "flapping.mode must be off, remind or remind_suppress, not {m:?}"
            ))
        })?,
        Some(Value::String(_)) | None => {
            if disabled {
                FlappingMode::Off
            } else if cfg.mute_mins == 0 {
                FlappingMode::Remind
            } else {
                FlappingMode::RemindSuppress
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "flapping.mode must be off, remind or remind_suppress",
            ));
        }
    };
    flapping::validate(&cfg).map_err(field_err)?;
    Ok(cfg)
}

/// Reads the body over `base` (update) or the defaults (create) and validates the result.
async fn draft(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    base: Option<ChannelDraft>,
) -> Result<ChannelDraft, ApiError> {
    let creating = base.is_none();
    let mut d = base.unwrap_or(ChannelDraft {
        channel_name: String::new(),
        description: String::new(),
        team_id: 0,
        auto_resolve_timeout: 0,
        auto_resolve_mode: "trigger".to_string(),
        grouping: GroupingConfig::default(),
        storm_thresholds: Vec::new(),
        flapping: FlappingConfig::default(),
        is_private: false,
        managing_team_ids: Vec::new(),
    });
    if let Some(name) = args.str("channel_name")? {
        d.channel_name = name.trim().to_string();
    }
    let name_len = d.channel_name.chars().count();
    if name_len == 0 || name_len > NAME_MAX {
        return Err(ApiError::invalid(if creating && name_len == 0 {
            "channel_name is required".to_string()
        } else {
            format!("channel_name must be 1 to {NAME_MAX} characters")
        }));
    }
    if let Some(desc) = args.str("description")? {
        d.description = desc;
    } else if args.raw().contains_key("description") && !creating {
        d.description = String::new();
    }
    if d.description.chars().count() > DESCRIPTION_MAX {
        return Err(ApiError::invalid(format!(
            "description must be at most {DESCRIPTION_MAX} characters"
        )));
    }
    if let Some(team) = args.i64("team_id")? {
        if team < 0 {
            return Err(ApiError::invalid("team_id must not be negative"));
        }
        if team > 0 {
            let found = state
                .store
                .teams(caller.account_id, &[team])
                .await
                .map_err(store_err)?;
            if found.is_empty() {
                return Err(ApiError::invalid(format!("team_id {team} does not exist")));
            }
        }
        d.team_id = team;
    }
    // RSP-526: a private channel's incidents are listed only for its people.
    if let Some(private) = args.bool("is_private")? {
        d.is_private = private;
    }
    // §1.6, OQ-47: up to 3 managing teams besides team_id; present (even empty) replaces.
    if args.raw().contains_key("managing_team_ids") {
        let mut ids = args.i64_list("managing_team_ids")?;
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > MANAGING_TEAMS_MAX {
            return Err(ApiError::invalid(format!(
                "managing_team_ids must hold at most {MANAGING_TEAMS_MAX} teams"
            )));
        }
        if ids.iter().any(|t| *t <= 0) {
            return Err(ApiError::invalid(
                "managing_team_ids must hold team ids above 0",
            ));
        }
        if !ids.is_empty() {
            let found = state
                .store
                .teams(caller.account_id, &ids)
                .await
                .map_err(store_err)?;
            if let Some(missing) = ids.iter().find(|t| !found.iter().any(|f| f.team_id == **t)) {
                return Err(ApiError::invalid(format!(
                    "managing_team_ids: team {missing} does not exist"
                )));
            }
        }
        d.managing_team_ids = ids;
    }
    if let Some(t) = args.i64("auto_resolve_timeout")? {
        d.auto_resolve_timeout = t;
    } else if args.raw().contains_key("auto_resolve_timeout") && !creating {
        d.auto_resolve_timeout = 0;
    }
    if args.bool("disable_auto_close")? == Some(true) {
        d.auto_resolve_timeout = 0;
    }
    let t = d.auto_resolve_timeout;
    if t != 0 && !(AUTO_RESOLVE_MIN..=AUTO_RESOLVE_MAX).contains(&t) {
        return Err(ApiError::invalid(
            "auto_resolve_timeout must be 0 (off) or 60 to 2592000 seconds",
        ));
    }
    if let Some(mode) = args.str("auto_resolve_mode")? {
        if mode != "trigger" && mode != "update" {
            return Err(ApiError::invalid(
                "auto_resolve_mode must be trigger or update",
            ));
        }
        d.auto_resolve_mode = mode;
    }
    if let Some(g) = args.raw().get("group").filter(|v| !v.is_null()) {
        let (cfg, storm) = parse_group(g)?;
        d.grouping = cfg;
        d.storm_thresholds = storm;
    }
    if let Some(f) = args.raw().get("flapping").filter(|v| !v.is_null()) {
        d.flapping = parse_flapping(f)?;
    }
    Ok(d)
}

async fn settings(state: &AppState, caller: &Caller, id: i64) -> Result<ChannelSettings, ApiError> {
    state
        .store
        .channel_settings(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = channel_id(args)?;
    Ok(render(&settings(state, caller, id).await?))
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let d = draft(state, caller, args, None).await?;
    let id = state
        .store
        .create_channel(caller.account_id, caller.member_id, &d, state.clock.now())
        .await
        .map_err(store_err)?;
    Ok(json!({"channel_id": id, "channel_name": d.channel_name}))
}

async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = channel_id(args)?;
    let current = settings(state, caller, id).await?;
    let d = draft(state, caller, args, Some(current.draft())).await?;
    let done = state
        .store
        .update_channel(caller.account_id, id, &d, state.clock.now())
        .await
        .map_err(store_err)?;
    if done { Ok(()) } else { Err(not_found(id)) }
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = channel_id(args)?;
    let gone = state
        .store
        .delete_channel(caller.account_id, id, state.clock.now())
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))?;
    for integration in gone {
        state.keys.forget(integration);
    }
    Ok(())
}

async fn set_status(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    status: ChannelStatus,
) -> Result<(), ApiError> {
    let id = channel_id(args)?;
    let done = state
        .store
        .set_channel_status(caller.account_id, id, status, state.clock.now())
        .await
        .map_err(store_err)?;
    if done { Ok(()) } else { Err(not_found(id)) }
}

/// `/channel/grouping/preview` (ING-160): replays the channel's most recent events of the last
/// 24 h (at most 500, oldest first) through the proposed `group{}` (the channel's own policy
/// when absent), with the same grouping code as the inbox, and returns the incident → alert →
/// event tree. Nothing is written; a bad `group` is refused like `/channel/update` refuses it.
async fn preview(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    use klaxon_core::grouping::preview::{self, PreviewAlert};
    let id = channel_id(args)?;
    let current = settings(state, caller, id).await?;
    let cfg = match args.raw().get("group").filter(|v| !v.is_null()) {
        Some(g) => parse_group(g)?.0,
        None => current.grouping,
    };
    let now = state.clock.now();
    let since = now.saturating_sub(preview::WINDOW_MS);
    let (events, alerts) = state
        .store
        .grouping_replay_input(caller.account_id, id, since, preview::MAX_EVENTS)
        .await
        .map_err(store_err)?;
    let tree = preview::replay(&cfg, &events, &alerts);
    let secs = |ms: i64| ms.div_euclid(1000);
    let alert_json = |a: &PreviewAlert| {
        json!({
            "alert_id": a.alert_id,
            "alert_key": a.alert_key,
            "title": a.title,
            "alert_status": a.alert_status.as_str(),
            "event_cnt": a.events.len(),
            "events": a.events.iter().map(|e| json!({
                "event_id": e.event_id,
                "event_status": e.event_status.as_str(),
                "event_time": secs(e.event_time),
                "received_at": secs(e.received_at),
                "title": e.title,
            })).collect::<Vec<_>>(),
        })
    };
    let incidents: Vec<Value> = tree
        .incidents
        .iter()
        .map(|i| {
            json!({
                "preview_id": i.preview_id,
                "title": i.title,
                "group_method": i.group_method,
                "group_text": i.group_text,
                "created_at": secs(i.created_at),
                "last_merge_time": secs(i.last_merge_time),
                "closed": i.closed,
                "alert_cnt": i.alerts.len(),
                "alerts": i.alerts.iter().map(alert_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "channel_id": id,
        "group": group_json(&cfg, &[]),
        "start_time": secs(since),
        "end_time": secs(now),
        "event_cnt": tree.event_cnt,
        "incident_cnt": incidents.len(),
        "incidents": incidents,
        "unassigned_alerts": tree.unassigned_alerts.iter().map(alert_json).collect::<Vec<_>>(),
    }))
}
