//! On-call schedules over the Open API (openapi-compat.md 2.8): `/schedule/create`,
//! `/schedule/update`, `/schedule/delete`, `/schedule/info` and `/schedule/list`, backed by
//! the pure resolver of `klaxon_core::schedule` (response.md §1.13, RSP-210 … RSP-228).
//!
//! Request bodies are the core model's JSON ([`klaxon_core::schedule::Schedule`], field names
//! as in response.md §1.13) with these wire conveniences:
//! - instants (`layer_start`, `layer_end`, override `start`/`end`) are Unix **seconds**;
//! - `restrict_mode` may be the wire integer (0 none, 1 daily, 2 weekly) or the core name;
//! - `day_mask` may be the wire `{repeat: [...]}` or a plain weekday list;
//! - a group member may be the wire `{role_id, person_ids: [...]}` or `{person_id, role_id}`;
//! - `layer_id` / `override_id` may be left out: positions then number them (1, 2, …).
//!
//! Not mapped yet (ignored when sent): layer `mode = 1` (override layers: send `overrides`
//! instead), `handoff_time` (send the core `handoff {weekday, time}`), the list filters
//! `team_ids`, `is_my_team` and `is_my_manage`, and schedule name uniqueness. Service
//! calendars are passed as `Calendars::default()` until their API exists, so a layer with a
//! `calendar_mask` is refused (`layers[i].calendar_mask.cal_id`).
//!
//! Responses render the core schedule with instants in seconds, `restrict_mode` as the wire
//! integer, `day_mask` as `{repeat}`, plus the legacy aliases (`id`, `name`, `disabled`,
//! `create_at`/`update_at`, `layer_schedules`). With a window (`start`/`end`, seconds,
//! `end − start` < 45 days, RSP-227) they carry the computed `schedule_layers`,
//! `final_schedule {schedules}`, `cur_oncall` and `next_oncall`.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::model::Millis;
use klaxon_core::schedule::{
    self, Calendars, FinalSegment, Layer, LayerSegment, Override, RestrictMode, Schedule,
    ScheduleNotify, ScheduleStatus, ShiftRole,
};
use klaxon_store::{ScheduleFilter, StoreError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn not_found(schedule_id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("schedule {schedule_id} not found"),
    )
}

fn required_id(args: &Args, name: &str) -> Result<i64, ApiError> {
    match args.i64(name)? {
        Some(id) if id > 0 => Ok(id),
        Some(_) => Err(ApiError::invalid(format!("{name} must be a positive id"))),
        None => Err(ApiError::invalid(format!("{name} is required"))),
    }
}

/// `start`/`end` in seconds → milliseconds; `required` for `/schedule/info`. Both or neither.
fn window(args: &Args, required: bool) -> Result<Option<(Millis, Millis)>, ApiError> {
    let start = args.i64("start")?;
    let end = args.i64("end")?;
    match (start, end) {
        (Some(s), Some(e)) => {
            if s < 0 {
                return Err(ApiError::invalid("start must not be negative"));
            }
            Ok(Some((s.saturating_mul(1000), e.saturating_mul(1000))))
        }
        (None, _) if required => Err(ApiError::invalid("start is required")),
        (_, None) if required => Err(ApiError::invalid("end is required")),
        _ => Ok(None),
    }
}

fn parse<T: DeserializeOwned>(field: &str, v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
}

/// Seconds → milliseconds for the integer field `key` of `obj`, when present.
fn to_millis(obj: &mut Map<String, Value>, key: &str) {
    if let Some(n) = obj.get(key).and_then(Value::as_i64) {
        obj.insert(key.into(), json!(n.saturating_mul(1000)));
    }
}

fn layer_from_wire(mut v: Value, path: &str) -> Result<Layer, ApiError> {
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::invalid(format!("{path} must be an object")));
    };
    if obj.get("layer_id").is_none_or(Value::is_null) {
        obj.insert("layer_id".into(), json!(0));
    }
    to_millis(obj, "layer_start");
    to_millis(obj, "layer_end");
    obj.remove("version_from");
    if let Some(n) = obj.get("restrict_mode").and_then(Value::as_i64) {
        let name = match n {
            0 => "none",
            1 => "daily",
            2 => "weekly",
            _ => {
                return Err(ApiError::invalid(format!(
                    "{path}.restrict_mode must be 0, 1 or 2"
                )));
            }
        };
        obj.insert("restrict_mode".into(), json!(name));
    }
    if let Some(Value::Object(mask)) = obj.get("day_mask") {
        let repeat = mask.get("repeat").cloned().unwrap_or(Value::Null);
        obj.insert("day_mask".into(), repeat);
    }
    if let Some(Value::Array(groups)) = obj.get_mut("groups") {
        for group in groups.iter_mut() {
            let Some(Value::Array(members)) = group.get_mut("members") else {
                continue;
            };
            let mut flat = Vec::with_capacity(members.len());
            for m in members.drain(..) {
                match m.get("person_ids").and_then(Value::as_array) {
                    Some(ids) => {
                        let role_id = m.get("role_id").cloned().unwrap_or(json!(0));
                        flat.extend(
                            ids.iter()
                                .map(|id| json!({ "person_id": id, "role_id": role_id })),
                        );
                    }
                    None => flat.push(m),
                }
            }
            *members = flat;
        }
    }
    parse(path, v)
}

fn override_from_wire(mut v: Value, path: &str) -> Result<Override, ApiError> {
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::invalid(format!("{path} must be an object")));
    };
    if obj.get("override_id").is_none_or(Value::is_null) {
        obj.insert("override_id".into(), json!(0));
    }
    to_millis(obj, "start");
    to_millis(obj, "end");
    to_millis(obj, "created_at");
    parse(path, v)
}

/// The smallest id from `i + 1` on that no other entry uses.
fn fill_ids(ids: &mut [i64]) {
    let used: std::collections::BTreeSet<i64> = ids.iter().copied().filter(|i| *i > 0).collect();
    let mut taken = used.clone();
    for (i, id) in ids.iter_mut().enumerate() {
        if *id <= 0 {
            let mut candidate = i64::try_from(i).unwrap_or(0) + 1;
            while taken.contains(&candidate) {
                candidate += 1;
            }
            taken.insert(candidate);
            *id = candidate;
        }
    }
}

/// Applies the fields the body gives to `base` (create: a blank schedule; update: the stored
/// one). Absent, `null`, `0` and `""` fields keep `base`'s value (openapi-compat.md 1.3),
/// except list fields, where an explicit `[]` clears.
fn merge_body(args: &Args, mut base: Schedule) -> Result<Schedule, ApiError> {
    if let Some(name) = args.str("schedule_name")? {
        base.schedule_name = name;
    }
    if let Some(d) = args.str("description")? {
        base.description = d;
    }
    if let Some(t) = args.i64("team_id")? {
        base.team_id = t;
    }
    if let Some(z) = args.str("time_zone")? {
        base.time_zone = z;
    }
    let raw = args.raw();
    if let Some(v) = raw.get("status").filter(|v| !v.is_null()) {
        base.status = match v {
            Value::Number(n) if n.as_i64() == Some(0) => ScheduleStatus::Enabled,
            Value::Number(n) if n.as_i64() == Some(1) => ScheduleStatus::Disabled,
            other => parse("status", other.clone())?,
        };
    }
    if let Some(v) = raw.get("layers").filter(|v| !v.is_null()) {
        let Value::Array(items) = v else {
            return Err(ApiError::invalid("layers must be an array"));
        };
        let mut layers = items
            .iter()
            .enumerate()
            .map(|(i, l)| layer_from_wire(l.clone(), &format!("layers[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ids: Vec<i64> = layers.iter().map(|l| l.layer_id).collect();
        fill_ids(&mut ids);
        for (l, id) in layers.iter_mut().zip(ids) {
            l.layer_id = id;
        }
        base.layers = layers;
    }
    if let Some(v) = raw.get("overrides").filter(|v| !v.is_null()) {
        let Value::Array(items) = v else {
            return Err(ApiError::invalid("overrides must be an array"));
        };
        let mut overrides = items
            .iter()
            .enumerate()
            .map(|(i, o)| override_from_wire(o.clone(), &format!("overrides[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ids: Vec<i64> = overrides.iter().map(|o| o.override_id).collect();
        fill_ids(&mut ids);
        for (o, id) in overrides.iter_mut().zip(ids) {
            o.override_id = id;
        }
        base.overrides = overrides;
    }
    if let Some(v) = raw.get("notify").filter(|v| !v.is_null()) {
        base.notify = parse::<ScheduleNotify>("notify", v.clone())?;
    }
    Ok(base)
}

async fn account_zone(state: &AppState, caller: &Caller) -> Result<String, ApiError> {
    Ok(state
        .store
        .account(caller.account_id)
        .await
        .map_err(store_err)?
        .map(|a| a.time_zone)
        .filter(|z| !z.is_empty())
        .unwrap_or_else(|| "UTC".into()))
}

/// POST `/schedule/create` → `{schedule_id, schedule_name}`. Validation is RSP-228's
/// (`InvalidParameter` naming the field, e.g. `layers[0].rotation_value`).
pub async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut draft = merge_body(args, Schedule::default())?;
    if draft.time_zone.is_empty() {
        draft.time_zone = account_zone(state, caller).await?;
    }
    draft.creator_id = caller.member_id;
    let now = state.clock.now();
    let prepared = schedule::create_schedule(draft, now, Calendars::default())?;
    let schedule_id = state
        .store
        .create_schedule(caller.account_id, &prepared)
        .await
        .map_err(store_err)?;
    Ok(json!({ "schedule_id": schedule_id, "schedule_name": prepared.schedule_name }))
}

/// POST `/schedule/update`: `schedule_id*` plus any create field; fields left out keep their
/// stored value. The edit never changes the past (RSP-225, via `apply_edit`).
pub async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let schedule_id = required_id(args, "schedule_id")?;
    let current = state
        .store
        .schedule(caller.account_id, schedule_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(schedule_id))?;
    let edited = merge_body(args, current.clone())?;
    let now = state.clock.now();
    let next = schedule::apply_edit(&current, edited, now, Calendars::default())?;
    let found = state
        .store
        .update_schedule(caller.account_id, &next)
        .await
        .map_err(store_err)?;
    if !found {
        return Err(not_found(schedule_id));
    }
    Ok(json!({ "schedule_id": schedule_id, "schedule_name": next.schedule_name }))
}

/// POST `/schedule/delete`: `schedule_ids*[]`. Every id must name a live schedule of the
/// account, else `ResourceNotFound` and nothing is deleted.
pub async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut ids = args.i64_list("schedule_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid("schedule_ids is required"));
    }
    ids.sort_unstable();
    ids.dedup();
    let filter = ScheduleFilter {
        p: 1,
        limit: i64::try_from(ids.len()).unwrap_or(i64::MAX),
        query: None,
        schedule_ids: ids.clone(),
    };
    let existing = state
        .store
        .list_schedules(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    if let Some(missing) = ids
        .iter()
        .find(|id| !existing.items.iter().any(|s| s.schedule_id == **id))
    {
        return Err(not_found(*missing));
    }
    state
        .store
        .delete_schedules(caller.account_id, &ids, state.clock.now())
        .await
        .map_err(store_err)?;
    Ok(Value::Null)
}

/// POST `/schedule/info`: `schedule_id*`, `start*`, `end*` (seconds, < 45 days) → Schedule
/// with the computed views (RSP-227).
pub async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let schedule_id = required_id(args, "schedule_id")?;
    let window = window(args, true)?;
    let s = state
        .store
        .schedule(caller.account_id, schedule_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(schedule_id))?;
    render(&s, window, state.clock.now())
}

/// POST `/schedule/list`: `p`, `limit` (default 10, at most 100), `query`; with both `start`
/// and `end` each item carries the computed views, so a short window answers "who is on
/// call now" through `cur_oncall`/`next_oncall`.
pub async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(10).min(100);
    let window = window(args, false)?;
    let filter = ScheduleFilter {
        p,
        limit,
        query: args.str("query")?,
        schedule_ids: Vec::new(),
    };
    let page = state
        .store
        .list_schedules(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let now = state.clock.now();
    let items = page
        .items
        .iter()
        .map(|s| render(s, window, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "items": items,
        "total": page.total,
        "p": p,
        "limit": limit,
        "has_next_page": page.has_next_page,
    }))
}

/// feature: iCalendar feed. POST `/schedule/feed/reset`: `schedule_id*` → `{feed_url}`, the
/// schedule's calendar subscription URL (`/calendar/schedule/<token>.ics`) with a fresh
/// 32-hex secret token. The previous URL stops working at once.
pub async fn feed_reset(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let schedule_id = required_id(args, "schedule_id")?;
    let token = crate::state::random_hex(16);
    let found = state
        .store
        .schedule_feed_token(caller.account_id, schedule_id, Some(&token))
        .await
        .map_err(store_err)?;
    if !found {
        return Err(not_found(schedule_id));
    }
    Ok(json!({
        "schedule_id": schedule_id,
        "feed_url": crate::calendar::schedule_feed_url(state, &token),
    }))
}

fn role_id(role: ShiftRole) -> i64 {
    match role {
        ShiftRole::Any => 0,
        ShiftRole::Role(id) => id,
    }
}

/// A final segment as the wire's `{start, end, group{group_name, members[]{role_id,
/// person_ids[]}}}`: persons grouped by role (override persons under role 0).
fn segment(seg: &FinalSegment) -> Value {
    let mut by_role: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for m in &seg.members {
        for r in &m.roles {
            by_role.entry(role_id(*r)).or_default().push(m.person_id);
        }
    }
    let members: Vec<Value> = by_role
        .into_iter()
        .map(|(role_id, mut person_ids)| {
            person_ids.sort_unstable();
            person_ids.dedup();
            json!({ "role_id": role_id, "person_ids": person_ids })
        })
        .collect();
    json!({
        "start": wire::secs(seg.start),
        "end": wire::secs(seg.end),
        "group": { "group_name": "", "members": members },
    })
}

fn layer_segment(seg: &LayerSegment) -> Value {
    let mut by_role: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for m in &seg.members {
        by_role.entry(m.role_id).or_default().push(m.person_id);
    }
    let members: Vec<Value> = by_role
        .into_iter()
        .map(|(role_id, person_ids)| json!({ "role_id": role_id, "person_ids": person_ids }))
        .collect();
    json!({
        "start": wire::secs(seg.start),
        "end": wire::secs(seg.end),
        "index": seg.group_index,
        "group": { "group_name": seg.group_name, "members": members },
    })
}

fn layer_wire(l: &Layer) -> Value {
    let members = |g: &schedule::Group| -> Vec<Value> {
        g.members
            .iter()
            .map(|m| json!({ "person_id": m.person_id, "role_id": m.role_id }))
            .collect()
    };
    json!({
        "layer_id": l.layer_id,
        "layer_name": l.layer_name,
        "mode": 0,
        "weight": l.weight,
        "groups": l.groups.iter().map(|g| json!({
            "group_name": g.group_name,
            "members": members(g),
        })).collect::<Vec<_>>(),
        "layer_start": wire::secs(l.layer_start),
        "layer_end": l.layer_end.map(wire::secs),
        "rotation_unit": l.rotation_unit,
        "rotation_value": l.rotation_value,
        "handoff": l.handoff,
        "fair_rotation": l.fair_rotation,
        "day_mask": l.day_mask.as_ref().map(|d| json!({ "repeat": d })),
        "mask_continuous_enabled": l.mask_continuous_enabled,
        "restrict_mode": match l.restrict_mode {
            RestrictMode::None => 0,
            RestrictMode::Daily => 1,
            RestrictMode::Weekly => 2,
        },
        "restrict_periods": l.restrict_periods,
        "calendar_mask": l.calendar_mask,
    })
}

/// The wire Schedule; with a window, the computed views relative to `now` (RSP-227).
fn render(s: &Schedule, window: Option<(Millis, Millis)>, now: Millis) -> Result<Value, ApiError> {
    let overrides: Vec<Value> = s
        .overrides
        .iter()
        .map(|o| {
            json!({
                "override_id": o.override_id,
                "start": wire::secs(o.start),
                "end": wire::secs(o.end),
                "person_id": o.person_id,
                "created_by": o.created_by,
                "created_at": wire::secs(o.created_at),
                "note": o.note,
            })
        })
        .collect();
    let disabled = s.status == ScheduleStatus::Disabled;
    let mut v = json!({
        "schedule_id": s.schedule_id,
        "id": s.schedule_id,
        "schedule_name": s.schedule_name,
        "name": s.schedule_name,
        "description": s.description,
        "team_id": s.team_id,
        "group_id": s.team_id,
        "time_zone": s.time_zone,
        "status": if disabled { 1 } else { 0 },
        "disabled": disabled,
        "layers": s.layers.iter().map(layer_wire).collect::<Vec<_>>(),
        "overrides": overrides,
        "notify": s.notify,
        "creator_id": s.creator_id,
        "created_at": wire::secs(s.created_at),
        "updated_at": wire::secs(s.updated_at),
        "create_at": wire::secs(s.created_at),
        "update_at": wire::secs(s.updated_at),
    });
    if let (Some((from, to)), Some(obj)) = (window, v.as_object_mut()) {
        let view = schedule::view(s, Calendars::default(), from, to, now)?;
        let layers: Vec<Value> = view
            .layers
            .iter()
            .map(|l| {
                json!({
                    "layer_id": l.layer_id,
                    "schedules": l.segments.iter().map(layer_segment).collect::<Vec<_>>(),
                })
            })
            .collect();
        obj.insert("schedule_layers".into(), json!(layers));
        obj.insert("layer_schedules".into(), json!(layers));
        obj.insert(
            "final_schedule".into(),
            json!({ "schedules": view.final_segments.iter().map(segment).collect::<Vec<_>>() }),
        );
        obj.insert(
            "cur_oncall".into(),
            view.cur_oncall.as_ref().map_or(Value::Null, segment),
        );
        obj.insert(
            "next_oncall".into(),
            view.next_oncall.as_ref().map_or(Value::Null, segment),
        );
    }
    Ok(v)
}
