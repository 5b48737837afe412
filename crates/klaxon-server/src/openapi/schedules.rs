//! On-call schedules over the Open API (openapi-compat.md 2.8): `/schedule/create`,
//! `/schedule/update`, `/schedule/delete`, `/schedule/info`, `/schedule/infos`,
//! `/schedule/list`, `/schedule/self` ("my on-call", RSP-229) and `/schedule/preview`
//! (RSP-227 on an unsaved body), backed by the pure resolver of `klaxon_core::schedule`
//! (response.md §1.13, RSP-210 … RSP-229).
//!
//! Request bodies are the core model's JSON ([`klaxon_core::schedule::Schedule`], field names
//! as in response.md §1.13) with these wire conveniences:
//! - instants (`layer_start`, `layer_end`, override `start`/`end`) are Unix **seconds**;
//! - `restrict_mode` may be the wire integer (0 none, 1 daily, 2 weekly) or the core name;
//! - `day_mask` may be the wire `{repeat: [...]}` or a plain weekday list;
//! - a group member may be the wire `{role_id, person_ids: [...]}` or `{person_id, role_id}`;
//! - `layer_id` / `override_id` may be left out: positions then number them (1, 2, …);
//! - a layer with `mode = 1` is an override layer (openapi-compat.md 2.8): each person in its
//!   groups becomes one override over `[layer_start, layer_end)` with the `layer_name` as its
//!   note; the first person keeps the layer's `layer_id` as `override_id`. When `layers` has
//!   any `mode = 1` layer, those are the schedule's overrides and an `overrides` array in the
//!   same body is ignored; otherwise `overrides`, when given, replaces them (`[]` clears).
//!   Overrides already running can only be ended early, never removed (RSP-225);
//! - `handoff_time` is the weekly handoff point as seconds from Sunday 00:00 in the schedule's
//!   zone (`weekday × 86400 + seconds of the day`, a whole minute). The SaaS's encoding is not
//!   documented (response.md §1.13 asks to confirm it); this is our choice. `0` reads as
//!   "not given" (Go clients omit zero values), so a Sunday 00:00 handoff is sent as
//!   `handoff {weekday: 0, time: "00:00"}`; an explicit `handoff` wins over `handoff_time`.
//!
//! Service calendars (`calendar_mask {cal_id, day_type}`, RSP-223) are read from the store
//! on every create, update, preview and view. Deleting a schedule an escalation rule still
//! targets is refused with `ReferenceExist` naming the rules (RSP-234).
//!
//! - `restrict_start`/`restrict_end` (integers, our encoding like `handoff_time`'s: seconds
//!   of the day for `restrict_mode` 1, seconds from Sunday 00:00 for 2, whole minutes) make one
//!   restriction period when the body has no `restrict_periods`; responses carry the first
//!   period in them too. Sent without a restriction mode they are refused.
//!
//! Responses render the core schedule with instants in seconds, `restrict_mode` as the wire
//! integer, `day_mask` as `{repeat}`, `handoff_time`, the overrides a second time as `mode = 1`
//! layers after the rotation layers, plus the legacy aliases (`id`, `name`, `disabled`,
//! `create_at`/`update_at`, `layer_schedules`). With a window (`start`/`end`, seconds,
//! `end − start` < 45 days, RSP-227) they carry the computed `schedule_layers`,
//! `final_schedule {schedules}`, `cur_oncall` and `next_oncall`.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::model::Millis;
use klaxon_core::schedule::{
    self, Calendars, FinalSegment, Layer, LayerSegment, Override, RestrictMode, Schedule,
    ScheduleNotify, ScheduleStatus, ShiftRole,
};
use klaxon_store::{AccountCalendars, ScheduleFilter, ScheduleRefusal, StoreError, TeamFilter};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// `schedule_name` is unique within the account (response.md §1.13 table).
fn name_taken() -> ApiError {
    ApiError::invalid("schedule_name is already used by another schedule")
}

fn not_found(schedule_id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("schedule {schedule_id} not found"),
    )
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
    obj.remove("mode");
    let handoff_time = obj.remove("handoff_time");
    if obj.get("handoff").is_none_or(Value::is_null)
        && let Some(h) = handoff_time.filter(|v| !v.is_null())
    {
        obj.insert("handoff".into(), handoff_from_wire(&h, path)?);
    }
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
    restrict_from_wire(obj, path)?;
    if let Some(Value::Object(mask)) = obj.get("day_mask") {
        let repeat = mask.get("repeat").cloned().unwrap_or(Value::Null);
        obj.insert("day_mask".into(), repeat);
    }
    if let Some(Value::Array(groups)) = obj.get_mut("groups") {
        for group in groups.iter_mut() {
            let Some(Value::Array(members)) = group.get_mut("members") else {
                continue;
            };
            *members = flat_members(std::mem::take(members));
        }
    }
    parse(path, v)
}

/// A group's members in the core form `{person_id, role_id}`: the wire's `{role_id,
/// person_ids[]}` entries are spread out, one per person.
fn flat_members(members: Vec<Value>) -> Vec<Value> {
    let mut flat = Vec::with_capacity(members.len());
    for m in members {
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
    flat
}

const WEEK_SECS: i64 = 7 * 86_400;

/// `handoff_time` (seconds from Sunday 00:00, a whole minute) → the core `{weekday, time}`.
fn handoff_from_wire(v: &Value, path: &str) -> Result<Value, ApiError> {
    let secs = v
        .as_i64()
        .filter(|s| (0..WEEK_SECS).contains(s) && s % 60 == 0)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{path}.handoff_time must be seconds from Sunday 00:00, a whole minute in \
                 0..604800"
            ))
        })?;
    let weekday = secs / 86_400;
    let minutes = (secs % 86_400) / 60;
    Ok(json!({
        "weekday": weekday,
        "time": format!("{:02}:{:02}", minutes / 60, minutes % 60),
    }))
}

/// `restrict_start`/`restrict_end` → one `restrict_periods` entry, when the body has no
/// periods of its own (an explicit `restrict_periods` wins). The encoding is ours, like
/// `handoff_time`'s: seconds of the day for a daily restriction, seconds from Sunday 00:00
/// for a weekly one, whole minutes. Non-zero values sent with no restriction mode are refused
/// rather than dropped: a restriction silently lost would put the wrong person on call.
fn restrict_from_wire(obj: &mut Map<String, Value>, path: &str) -> Result<(), ApiError> {
    let start = obj.remove("restrict_start").filter(|v| !v.is_null());
    let end = obj.remove("restrict_end").filter(|v| !v.is_null());
    let has_periods = obj
        .get("restrict_periods")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if has_periods || (start.is_none() && end.is_none()) {
        return Ok(());
    }
    let weekly = match obj.get("restrict_mode").and_then(Value::as_str) {
        Some("daily") => false,
        Some("weekly") => true,
        // Reads render `0`/`0` for a layer without a restriction: sending a layer back as it
        // was read must keep working (Go clients also send zero values they never set).
        _ if [&start, &end]
            .iter()
            .all(|v| v.as_ref().is_none_or(|v| v.as_i64() == Some(0))) =>
        {
            return Ok(());
        }
        _ => {
            return Err(ApiError::invalid(format!(
                "{path}.restrict_start/restrict_end need restrict_mode 1 (daily) or 2 (weekly)"
            )));
        }
    };
    let limit = if weekly { WEEK_SECS } else { 86_400 };
    let point = |v: Option<Value>, name: &str| -> Result<(i64, String), ApiError> {
        let secs = v
            .and_then(|v| v.as_i64())
            .filter(|s| (0..limit).contains(s) && s % 60 == 0)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{path}.{name} must be {}, a whole minute in 0..{limit}",
                    if weekly {
                        "seconds from Sunday 00:00"
                    } else {
                        "seconds of the day"
                    }
                ))
            })?;
        let minutes = (secs % 86_400) / 60;
        Ok((
            secs / 86_400,
            format!("{:02}:{:02}", minutes / 60, minutes % 60),
        ))
    };
    let (sw, st) = point(start, "restrict_start")?;
    let (ew, et) = point(end, "restrict_end")?;
    let period = if weekly {
        json!({"start_weekday": sw, "start": st, "end_weekday": ew, "end": et})
    } else {
        json!({"start": st, "end": et})
    };
    obj.insert("restrict_periods".into(), json!([period]));
    Ok(())
}

/// The first restriction period as the wire's `(restrict_start, restrict_end)`; zeros
/// without one.
fn restrict_times(l: &Layer) -> (i64, i64) {
    let secs = |weekday: Option<i64>, hhmm: &str| -> i64 {
        schedule::parse_hhmm(hhmm)
            .map(|t| {
                weekday.unwrap_or(0) * 86_400
                    + i64::from(t.hour()) * 3600
                    + i64::from(t.minute()) * 60
            })
            .unwrap_or(0)
    };
    match (l.restrict_mode, l.restrict_periods.first()) {
        (RestrictMode::None, _) | (_, None) => (0, 0),
        (_, Some(p)) => (secs(p.start_weekday, &p.start), secs(p.end_weekday, &p.end)),
    }
}

/// The core handoff as the wire's `handoff_time`; 0 without one (or for a malformed time,
/// which validation never lets in).
fn handoff_time(h: Option<&schedule::Handoff>) -> i64 {
    h.and_then(|h| {
        let (hh, mm) = h.time.split_once(':')?;
        let (hh, mm) = (hh.parse::<i64>().ok()?, mm.parse::<i64>().ok()?);
        Some(h.weekday * 86_400 + hh * 3600 + mm * 60)
    })
    .unwrap_or(0)
}

/// A `mode = 1` layer → one override per person (openapi-compat.md 2.8).
fn overrides_from_layer(v: &Value, path: &str) -> Result<Vec<Override>, ApiError> {
    let secs = |key: &str| -> Result<i64, ApiError> {
        v.get(key)
            .and_then(Value::as_i64)
            .filter(|s| *s > 0)
            .map(|s| s.saturating_mul(1000))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{path}.{key} is required for an override layer (mode 1)"
                ))
            })
    };
    let start = secs("layer_start")?;
    let end = secs("layer_end")?;
    if end <= start {
        return Err(ApiError::invalid(format!(
            "{path}.layer_end must be after layer_start"
        )));
    }
    let note = v
        .get("layer_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let first_id = v.get("layer_id").and_then(Value::as_i64).unwrap_or(0);
    let mut persons: Vec<i64> = Vec::new();
    for (g, group) in v
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let members = group
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (m, member) in flat_members(members).iter().enumerate() {
            let id = member
                .get("person_id")
                .and_then(Value::as_i64)
                .filter(|id| *id > 0)
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{path}.groups[{g}].members[{m}].person_id must be a person id"
                    ))
                })?;
            if !persons.contains(&id) {
                persons.push(id);
            }
        }
    }
    if persons.is_empty() {
        return Err(ApiError::invalid(format!(
            "{path}.groups: an override layer (mode 1) needs at least one person"
        )));
    }
    Ok(persons
        .into_iter()
        .enumerate()
        .map(|(i, person_id)| Override {
            override_id: if i == 0 { first_id.max(0) } else { 0 },
            start,
            end,
            person_id,
            created_by: 0,
            created_at: 0,
            note: note.clone(),
        })
        .collect())
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
    let mut override_layers: Option<Vec<Override>> = None;
    if let Some(v) = raw.get("layers").filter(|v| !v.is_null()) {
        let Value::Array(items) = v else {
            return Err(ApiError::invalid("layers must be an array"));
        };
        let mut layers = Vec::with_capacity(items.len());
        for (i, l) in items.iter().enumerate() {
            let path = format!("layers[{i}]");
            match l.get("mode").and_then(Value::as_i64).unwrap_or(0) {
                0 => layers.push(layer_from_wire(l.clone(), &path)?),
                1 => override_layers
                    .get_or_insert_with(Vec::new)
                    .extend(overrides_from_layer(l, &path)?),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{path}.mode must be 0 (rotation) or 1 (override)"
                    )));
                }
            }
        }
        let mut ids: Vec<i64> = layers.iter().map(|l| l.layer_id).collect();
        fill_ids(&mut ids);
        for (l, id) in layers.iter_mut().zip(ids) {
            l.layer_id = id;
        }
        base.layers = layers;
    }
    let given = match (
        override_layers,
        raw.get("overrides").filter(|v| !v.is_null()),
    ) {
        // The wire form wins: with any `mode = 1` layer, `overrides` is ignored.
        (Some(from_layers), _) => Some(from_layers),
        (None, Some(Value::Array(items))) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, o)| override_from_wire(o.clone(), &format!("overrides[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        (None, Some(_)) => return Err(ApiError::invalid("overrides must be an array")),
        (None, None) => None,
    };
    if let Some(mut overrides) = given {
        // Two entries claiming one id: the later one gets a fresh id.
        let mut seen = std::collections::BTreeSet::new();
        for o in &mut overrides {
            if o.override_id > 0 && !seen.insert(o.override_id) {
                o.override_id = 0;
            }
        }
        // The wire carries seconds, the store milliseconds (a start raised to the edit
        // instant has some): a stored override sent back as it was read keeps its exact
        // instants, so a begun one can be ended early (RSP-225) without "changing its start".
        for o in &mut overrides {
            if let Some(old) = base
                .overrides
                .iter()
                .find(|b| b.override_id == o.override_id)
            {
                if o.start == old.start.div_euclid(1000) * 1000 {
                    o.start = old.start;
                }
                if o.end == old.end.div_euclid(1000) * 1000 {
                    o.end = old.end;
                }
            }
        }
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

async fn calendars(state: &AppState, caller: &Caller) -> Result<AccountCalendars, ApiError> {
    state
        .store
        .account_calendars(caller.account_id)
        .await
        .map_err(store_err)
}

/// Overrides a client sent without an author are the caller's.
fn stamp_override_authors(s: &mut Schedule, caller: &Caller) {
    for o in &mut s.overrides {
        if o.created_by == 0 {
            o.created_by = caller.member_id;
        }
    }
}

/// POST `/schedule/create` → `{schedule_id, schedule_name}`. Validation is RSP-228's
/// (`InvalidParameter` naming the field, e.g. `layers[0].rotation_value`); a
/// `calendar_mask.cal_id` must name one of the account's calendars.
pub async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut draft = merge_body(args, Schedule::default())?;
    if draft.time_zone.is_empty() {
        draft.time_zone = account_zone(state, caller).await?;
    }
    draft.creator_id = caller.member_id;
    stamp_override_authors(&mut draft, caller);
    let now = state.clock.now();
    let cals = calendars(state, caller).await?;
    let prepared = schedule::create_schedule(draft, now, cals.view())?;
    let schedule_id = state
        .store
        .create_schedule(caller.account_id, &prepared)
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            ScheduleRefusal::NameTaken => name_taken(),
            ScheduleRefusal::NotFound => ApiError::internal("schedule vanished while created"),
        })?;
    Ok(json!({ "schedule_id": schedule_id, "schedule_name": prepared.schedule_name }))
}

/// POST `/schedule/update`: `schedule_id*` plus any create field; fields left out keep their
/// stored value. The edit never changes the past (RSP-225, via `apply_edit`).
pub async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let schedule_id = args.required_id("schedule_id")?;
    let current = state
        .store
        .schedule(caller.account_id, schedule_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(schedule_id))?;
    let mut edited = merge_body(args, current.clone())?;
    stamp_override_authors(&mut edited, caller);
    let now = state.clock.now();
    let cals = calendars(state, caller).await?;
    let next = schedule::apply_edit(&current, edited, now, cals.view())?;
    state
        .store
        .update_schedule(caller.account_id, &next)
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            ScheduleRefusal::NameTaken => name_taken(),
            ScheduleRefusal::NotFound => not_found(schedule_id),
        })?;
    Ok(json!({ "schedule_id": schedule_id, "schedule_name": next.schedule_name }))
}

/// The account's live schedules among `ids` (all of them must exist, else
/// `ResourceNotFound`), in the order of `ids`.
async fn existing(
    state: &AppState,
    caller: &Caller,
    ids: &[i64],
) -> Result<Vec<Schedule>, ApiError> {
    let filter = ScheduleFilter {
        p: 1,
        limit: i64::try_from(ids.len()).unwrap_or(i64::MAX).max(1),
        schedule_ids: ids.to_vec(),
        ..ScheduleFilter::default()
    };
    let found = state
        .store
        .list_schedules(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    ids.iter()
        .map(|id| {
            found
                .items
                .iter()
                .find(|s| s.schedule_id == *id)
                .cloned()
                .ok_or_else(|| not_found(*id))
        })
        .collect()
}

/// POST `/schedule/delete`: `schedule_ids*[]`. Every id must name a live schedule of the
/// account, else `ResourceNotFound`; a schedule an escalation rule still targets is refused
/// with `ReferenceExist` naming the rules (RSP-234). Either way nothing is deleted.
pub async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut ids = args.i64_list("schedule_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid("schedule_ids is required"));
    }
    ids.sort_unstable();
    ids.dedup();
    existing(state, caller, &ids).await?;
    let outcome = state
        .store
        .delete_schedules_unreferenced(caller.account_id, &ids, state.clock.now())
        .await
        .map_err(store_err)?;
    match outcome {
        Ok(_) => Ok(Value::Null),
        Err(referrers) => Err(schedule::check_schedule_deletable(&referrers)
            .err()
            .map(ApiError::from)
            .unwrap_or_else(|| ApiError::internal("refused without referrers"))),
    }
}

/// POST `/schedule/info`: `schedule_id*`, `start*`, `end*` (seconds, < 45 days) → Schedule
/// with the computed views (RSP-227).
pub async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let schedule_id = args.required_id("schedule_id")?;
    let window = window(args, true)?;
    let s = state
        .store
        .schedule(caller.account_id, schedule_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(schedule_id))?;
    let cals = calendars(state, caller).await?;
    render(&s, cals.view(), window, state.clock.now())
}

/// POST `/schedule/infos`: `schedule_ids*[]` (at most 100), optional `start`/`end` →
/// `items[]` Schedule in the order asked. Unknown ids are left out (a batch read).
pub async fn infos(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut ids = args.i64_list("schedule_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid("schedule_ids is required"));
    }
    if ids.len() > 100 {
        return Err(ApiError::invalid("schedule_ids holds at most 100 ids"));
    }
    let mut seen = std::collections::BTreeSet::new();
    ids.retain(|id| seen.insert(*id));
    let window = window(args, false)?;
    let filter = ScheduleFilter {
        p: 1,
        limit: 100,
        schedule_ids: ids.clone(),
        ..ScheduleFilter::default()
    };
    let page = state
        .store
        .list_schedules(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let cals = calendars(state, caller).await?;
    let now = state.clock.now();
    let items = ids
        .iter()
        .filter_map(|id| page.items.iter().find(|s| s.schedule_id == *id))
        .map(|s| render(s, cals.view(), window, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({ "items": items }))
}

/// The ids of the teams `member_id` belongs to.
async fn my_team_ids(state: &AppState, caller: &Caller) -> Result<Vec<i64>, ApiError> {
    let filter = TeamFilter {
        p: 1,
        limit: 1000,
        person_id: Some(caller.member_id),
        ..TeamFilter::default()
    };
    Ok(state
        .store
        .list_teams(caller.account_id, &filter)
        .await
        .map_err(store_err)?
        .items
        .iter()
        .map(|t| t.team_id)
        .collect())
}

/// Every live schedule of the account matching `filter` (paging ignored), newest first.
async fn all_schedules(
    state: &AppState,
    caller: &Caller,
    filter: ScheduleFilter,
) -> Result<Vec<Schedule>, ApiError> {
    let mut out = Vec::new();
    let mut p = 1;
    loop {
        let page = state
            .store
            .list_schedules(
                caller.account_id,
                &ScheduleFilter {
                    p,
                    limit: 500,
                    ..filter.clone()
                },
            )
            .await
            .map_err(store_err)?;
        out.extend(page.items);
        if !page.has_next_page {
            return Ok(out);
        }
        p += 1;
    }
}

/// POST `/schedule/list`: `p`, `limit` (default 10, at most 100), `query`, `team_ids[]`,
/// `is_my_team` (managed by one of the caller's teams), `is_my_manage` (what the caller may
/// edit: created by them or managed by one of their teams; everything for the owner); with
/// both `start` and `end` each item carries the computed views, so a short window answers
/// "who is on call now" through `cur_oncall`/`next_oncall`.
pub async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(10).min(100);
    let window = window(args, false)?;
    let mut team_ids = args.i64_list("team_ids")?;
    let is_my_team = args.bool("is_my_team")?.unwrap_or(false);
    let is_my_manage = args.bool("is_my_manage")?.unwrap_or(false);
    let mine = if is_my_team || is_my_manage {
        my_team_ids(state, caller).await?
    } else {
        Vec::new()
    };
    if is_my_team {
        team_ids = if team_ids.is_empty() {
            mine.clone()
        } else {
            team_ids.into_iter().filter(|t| mine.contains(t)).collect()
        };
        if team_ids.is_empty() {
            // The caller is in no (matching) team: nothing is "my team's".
            return Ok(json!({
                "items": [], "total": 0, "p": p, "limit": limit, "has_next_page": false,
            }));
        }
    }
    let filter = ScheduleFilter {
        p,
        limit,
        query: args.str("query")?,
        team_ids,
        ..ScheduleFilter::default()
    };
    let is_owner = if is_my_manage {
        state
            .store
            .member(caller.account_id, caller.member_id)
            .await
            .map_err(store_err)?
            .is_some_and(|m| m.is_owner)
    } else {
        false
    };
    let (items, total, has_next_page) = if is_my_manage && !is_owner {
        // The creator is inside the definition, not a column: filter and page here.
        let all: Vec<Schedule> = all_schedules(state, caller, filter)
            .await?
            .into_iter()
            .filter(|s| {
                s.creator_id == caller.member_id || (s.team_id != 0 && mine.contains(&s.team_id))
            })
            .collect();
        let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
        let skip = usize::try_from((p - 1).saturating_mul(limit)).unwrap_or(usize::MAX);
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        let items: Vec<Schedule> = all.into_iter().skip(skip).take(take).collect();
        (items, total, p.saturating_mul(limit) < total)
    } else {
        let page = state
            .store
            .list_schedules(caller.account_id, &filter)
            .await
            .map_err(store_err)?;
        (page.items, page.total, page.has_next_page)
    };
    let cals = calendars(state, caller).await?;
    let now = state.clock.now();
    let items = items
        .iter()
        .map(|s| render(s, cals.view(), window, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "items": items,
        "total": total,
        "p": p,
        "limit": limit,
        "has_next_page": has_next_page,
    }))
}

/// `/schedule/self`'s look-ahead limit (openapi-compat.md 1.7: up to 30 days).
const SELF_WINDOW_MAX_SECS: i64 = 30 * 86_400;
/// RSP-229's default look-ahead: two weeks.
const SELF_DEFAULT_SECS: i64 = 14 * 86_400;

/// POST `/schedule/self` ("my on-call", RSP-229): `start` (default now), `end` (default
/// start + 14 days; `end − start` at most 30 days) → `items[]`: every schedule in which the
/// caller is on call during the window, rendered with the window's views, plus
/// `on_call_now` and `my_shifts[]{start, end, role_id}` (the caller's own shifts in the
/// window), and `on_call_now_ids[]`, the schedules the caller is on call in right now.
pub async fn my_schedules(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<Value, ApiError> {
    let now = state.clock.now();
    let start = args.i64("start")?.unwrap_or(now / 1000);
    let end = args
        .i64("end")?
        .unwrap_or(start.saturating_add(SELF_DEFAULT_SECS));
    if start < 0 {
        return Err(ApiError::invalid("start must not be negative"));
    }
    if end <= start {
        return Err(ApiError::invalid("end must be after start"));
    }
    if end - start > SELF_WINDOW_MAX_SECS {
        return Err(ApiError::invalid("end - start must be at most 30 days"));
    }
    let (from, to) = (start.saturating_mul(1000), end.saturating_mul(1000));
    let me = caller.member_id;
    let cals = calendars(state, caller).await?;
    let mut items = Vec::new();
    let mut now_ids = Vec::new();
    for s in all_schedules(state, caller, ScheduleFilter::default()).await? {
        let shifts: Vec<schedule::Shift> = schedule::timeline(&s, cals.view(), from, to)?
            .into_iter()
            .filter(|sh| sh.members.contains(&me))
            .collect();
        if shifts.is_empty() {
            continue;
        }
        let on_now = schedule::on_call_at(&s, cals.view(), now)?
            .persons()
            .contains(&me);
        if on_now {
            now_ids.push(s.schedule_id);
        }
        let mut v = render(&s, cals.view(), Some((from, to)), now)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("on_call_now".into(), json!(on_now));
            let mine: Vec<Value> = shifts
                .iter()
                .map(|sh| {
                    json!({
                        "start": wire::secs(sh.start),
                        "end": wire::secs(sh.end),
                        "role_id": role_id(sh.role),
                    })
                })
                .collect();
            obj.insert("my_shifts".into(), json!(mine));
        }
        items.push(v);
    }
    Ok(json!({
        "items": items,
        "total": items.len(),
        "on_call_now_ids": now_ids,
        "start": start,
        "end": end,
    }))
}

/// POST `/schedule/preview`: an unsaved schedule body (as for create) plus `start*`, `end*`
/// (< 45 days) → the computed Schedule (RSP-227), validated like a save (RSP-228) but stored
/// nowhere.
pub async fn preview(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let window = window(args, true)?;
    let base = match args.i64("schedule_id")? {
        // Previewing an edit of a stored schedule: start from it, so fields left out keep
        // their stored values, as an update would.
        Some(id) if id > 0 => state
            .store
            .schedule(caller.account_id, id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| not_found(id))?,
        _ => Schedule::default(),
    };
    let mut draft = merge_body(args, base)?;
    if draft.time_zone.is_empty() {
        draft.time_zone = account_zone(state, caller).await?;
    }
    if draft.creator_id == 0 {
        draft.creator_id = caller.member_id;
    }
    // A preview shows the definition as though it had always existed: no history.
    draft.history.clear();
    let cals = calendars(state, caller).await?;
    schedule::validate_schedule(&draft, cals.view())?;
    render(&draft, cals.view(), window, state.clock.now())
}

/// feature: iCalendar feed. POST `/schedule/feed/reset`: `schedule_id*` → `{feed_url}`, the
/// schedule's calendar subscription URL (`/calendar/schedule/<token>.ics`) with a fresh
/// 32-hex secret token. The previous URL stops working at once.
pub async fn feed_reset(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let schedule_id = args.required_id("schedule_id")?;
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
        "handoff_time": handoff_time(l.handoff.as_ref()),
        "fair_rotation": l.fair_rotation,
        "day_mask": l.day_mask.as_ref().map(|d| json!({ "repeat": d })),
        "mask_continuous_enabled": l.mask_continuous_enabled,
        "restrict_mode": match l.restrict_mode {
            RestrictMode::None => 0,
            RestrictMode::Daily => 1,
            RestrictMode::Weekly => 2,
        },
        "restrict_periods": l.restrict_periods,
        "restrict_start": restrict_times(l).0,
        "restrict_end": restrict_times(l).1,
        "calendar_mask": l.calendar_mask,
    })
}

/// An override as the wire's `mode = 1` layer (openapi-compat.md 2.8): one person, its
/// window as `layer_start`/`layer_end`, its note as `layer_name`, its id as `layer_id`.
fn override_layer_wire(o: &Override) -> Value {
    json!({
        "layer_id": o.override_id,
        "layer_name": o.note,
        "mode": 1,
        "groups": [{
            "group_name": "",
            "members": [{ "person_id": o.person_id, "role_id": 0 }],
        }],
        "layer_start": wire::secs(o.start),
        "layer_end": wire::secs(o.end),
    })
}

/// The wire Schedule; with a window, the computed views relative to `now` (RSP-227).
fn render(
    s: &Schedule,
    cals: Calendars<'_>,
    window: Option<(Millis, Millis)>,
    now: Millis,
) -> Result<Value, ApiError> {
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
        "layers": s
            .layers
            .iter()
            .map(layer_wire)
            .chain(s.overrides.iter().map(override_layer_wire))
            .collect::<Vec<_>>(),
        "overrides": overrides,
        "notify": s.notify,
        "creator_id": s.creator_id,
        "created_at": wire::secs(s.created_at),
        "updated_at": wire::secs(s.updated_at),
        "create_at": wire::secs(s.created_at),
        "update_at": wire::secs(s.updated_at),
    });
    if let (Some((from, to)), Some(obj)) = (window, v.as_object_mut()) {
        let view = schedule::view(s, cals, from, to, now)?;
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

/// feature: iCalendar feed, per member. POST `/schedule/self/feed/reset` → `{feed_url}`: the
/// caller's own on-call calendar (`/calendar/member/<token>.ics`, their shifts across every
/// schedule) with a fresh 32-hex secret token; the previous URL stops working at once.
pub async fn self_feed_reset(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let token = crate::state::random_hex(16);
    state
        .store
        .set_member_feed_token(caller.account_id, caller.member_id, &token)
        .await
        .map_err(store_err)?;
    Ok(json!({
        "member_id": caller.member_id,
        "feed_url": crate::calendar::member_feed_url(state, &token),
    }))
}
