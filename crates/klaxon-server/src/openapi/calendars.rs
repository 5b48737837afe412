//! Service calendars over the Open API (openapi-compat.md 2.8 "Service calendars";
//! response.md §1.14, §2.18): `/calendar/{create,update,delete,info,list}`, the per-date marks
//! as `/calendar/event/{list,upsert,delete}`, and holiday sets loaded from a file as
//! `/calendar/holiday/{import,list,delete}` (a Klaxon extension: OQ-18 has administrators
//! load holiday data; none is built in).
//!
//! A Calendar on the wire: `{cal_id, cal_name, description, team_id, timezone, workdays[],
//! extra_cal_ids[], date_overrides{YYYY-MM-DD: workday|restday}, status, creator_id}`.
//! `/calendar/info` with `start_date`/`end_date` (`YYYY-MM-DD`, at most 366 days) adds
//! `days[]{date, day_type}`, the day type of every date in the range (RSP-270).
//!
//! The spec names the event endpoints but not their fields. We chose: an event is one per-date
//! mark `{date: YYYY-MM-DD, day_type: workday|restday}` of `date_overrides`; upsert takes
//! `events[]`, delete takes `dates[]`.
//!
//! A holiday-set file is JSON: `{id, name, entries{YYYY-MM-DD: holiday|workday}}`, where
//! `workday` marks an officially adjusted working day; `curl -d @cn-2025.json` loads it.
//! Loading a set with an id that exists replaces it (RSP-272: later evaluations read it).
//!
//! Editing and deleting follow RSP-274 (the creator, members of the management team, the
//! owner); deleting a calendar something still uses is refused with `ReferenceExist` listing
//! the users (RSP-273), and so is deleting a holiday set a calendar links.

use std::collections::BTreeMap;

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::ids::object_id;
use klaxon_core::schedule::{
    self, CalendarStatus, DayType, HolidayMark, HolidaySet, ServiceCalendar,
};
use klaxon_store::{CalendarFilter, StoreError, TeamFilter, TeamKey};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/calendar/create",
    "/calendar/update",
    "/calendar/delete",
    "/calendar/info",
    "/calendar/list",
    "/calendar/event/list",
    "/calendar/event/upsert",
    "/calendar/event/delete",
    "/calendar/holiday/import",
    "/calendar/holiday/list",
    "/calendar/holiday/delete",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/calendar/create" => create(state, caller, args).await.map(Some),
        "/calendar/update" => update(state, caller, args).await.map(|()| None),
        "/calendar/delete" => delete(state, caller, args).await.map(|()| None),
        "/calendar/info" => info(state, caller, args).await.map(Some),
        "/calendar/list" => list(state, caller, args).await.map(Some),
        "/calendar/event/list" => event_list(state, caller, args).await.map(Some),
        "/calendar/event/upsert" => event_upsert(state, caller, args).await.map(|()| None),
        "/calendar/event/delete" => event_delete(state, caller, args).await.map(|()| None),
        "/calendar/holiday/import" => holiday_import(state, caller, args).await.map(Some),
        "/calendar/holiday/list" => holiday_list(state, caller).await.map(Some),
        "/calendar/holiday/delete" => holiday_delete(state, caller, args).await.map(|()| None),
        _ => return None,
    })
}

/// The widest `start_date`..`end_date` range `/calendar/info` and `/calendar/event/list` take.
const MAX_RANGE_DAYS: i32 = 366;
/// Most entries one holiday-set file may hold (about 25 years of dense data).
const MAX_HOLIDAY_ENTRIES: usize = 10_000;
/// Most per-date marks one calendar may hold.
const MAX_DATE_OVERRIDES: usize = 5_000;
/// Holiday-set ids: 1..64 of `a-z 0-9 . _ -` (e.g. `zh-cn.china.official`).
const HOLIDAY_ID_MAX: usize = 64;
const HOLIDAY_NAME_MAX: usize = 100;

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn not_found(cal_id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("calendar {cal_id} not found"),
    )
}

fn required_str(args: &Args, name: &str) -> Result<String, ApiError> {
    args.str(name)?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("{name} is required")))
}

fn day_type(field: &str, v: &Value) -> Result<DayType, ApiError> {
    match v.as_str() {
        Some("workday") => Ok(DayType::Workday),
        Some("restday") => Ok(DayType::Restday),
        _ => Err(ApiError::invalid(format!(
            "{field} must be \"workday\" or \"restday\""
        ))),
    }
}

fn date(field: &str, s: &str) -> Result<jiff::civil::Date, ApiError> {
    schedule::parse_date(s)
        .ok_or_else(|| ApiError::invalid(format!("{field} must be a date YYYY-MM-DD, got {s:?}")))
}

/// `date_overrides` as `{YYYY-MM-DD: workday|restday}`.
fn date_overrides(v: &Value) -> Result<BTreeMap<String, DayType>, ApiError> {
    let Some(map) = v.as_object() else {
        return Err(ApiError::invalid(
            "date_overrides must be an object {\"YYYY-MM-DD\": \"workday\"|\"restday\"}",
        ));
    };
    if map.len() > MAX_DATE_OVERRIDES {
        return Err(ApiError::invalid(format!(
            "date_overrides holds at most {MAX_DATE_OVERRIDES} dates"
        )));
    }
    let mut out = BTreeMap::new();
    for (k, t) in map {
        let field = format!("date_overrides.{k}");
        let d = date(&field, k)?;
        out.insert(d.to_string(), day_type(&field, t)?);
    }
    Ok(out)
}

/// Applies the fields the body gives to `base`. Absent, `null` and `""` keep `base`'s value
/// (openapi-compat.md 1.3); for lists and maps an explicit `[]`/`{}` clears.
fn merge_body(args: &Args, mut base: ServiceCalendar) -> Result<ServiceCalendar, ApiError> {
    if let Some(name) = args.str("cal_name")? {
        base.cal_name = name.trim().to_string();
    }
    if let Some(d) = args.str("description")? {
        base.description = d;
    }
    if let Some(t) = args.i64("team_id")? {
        base.team_id = t;
    }
    if let Some(z) = args.str("timezone")? {
        base.timezone = z;
    }
    let raw = args.raw();
    if raw.get("workdays").is_some_and(|v| !v.is_null()) {
        let days = args.i64_list("workdays").map_err(|_| {
            ApiError::invalid("workdays must be an array of weekdays 0..6 (0 = Sunday)")
        })?;
        schedule::set_workdays(&mut base, &days)?;
    }
    if raw.get("extra_cal_ids").is_some_and(|v| !v.is_null()) {
        let mut ids: Vec<String> = Vec::new();
        for id in args.str_list("extra_cal_ids")? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        base.extra_cal_ids = ids;
    }
    if let Some(v) = raw.get("date_overrides").filter(|v| !v.is_null()) {
        base.date_overrides = date_overrides(v)?;
    }
    Ok(base)
}

async fn check_team(state: &AppState, caller: &Caller, team_id: i64) -> Result<(), ApiError> {
    if team_id < 0 {
        return Err(ApiError::invalid("team_id must be a team id or 0"));
    }
    if team_id == 0 {
        return Ok(());
    }
    let team = state
        .store
        .team(caller.account_id, &TeamKey::Id(team_id))
        .await
        .map_err(store_err)?;
    if team.is_none() {
        return Err(ApiError::invalid(format!("team_id: no team {team_id}")));
    }
    Ok(())
}

/// Validation of §1.14 against the account's holiday sets, plus the management team.
async fn validate(
    state: &AppState,
    caller: &Caller,
    cal: &ServiceCalendar,
) -> Result<(), ApiError> {
    let sets = state
        .store
        .holiday_sets(caller.account_id)
        .await
        .map_err(store_err)?;
    schedule::validate_calendar(cal, &sets)?;
    check_team(state, caller, cal.team_id).await
}

/// RSP-274: the creator, members of the calendar's management team and the owner may edit;
/// everyone else may only read.
async fn check_can_edit(
    state: &AppState,
    caller: &Caller,
    cal: &ServiceCalendar,
) -> Result<(), ApiError> {
    let member = state
        .store
        .member(caller.account_id, caller.member_id)
        .await
        .map_err(store_err)?;
    let is_owner = member.as_ref().is_some_and(|m| m.is_owner);
    let team_ids: Vec<i64> = if cal.team_id != 0 && !is_owner {
        let filter = TeamFilter {
            p: 1,
            limit: 1000,
            person_id: Some(caller.member_id),
            ..TeamFilter::default()
        };
        state
            .store
            .list_teams(caller.account_id, &filter)
            .await
            .map_err(store_err)?
            .items
            .iter()
            .map(|t| t.team_id)
            .collect()
    } else {
        Vec::new()
    };
    if schedule::can_edit_calendar(cal, caller.member_id, &team_ids, is_owner) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::AccessDenied,
            "only the calendar's creator, its management team and the owner may change it",
        ))
    }
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

async fn load(state: &AppState, caller: &Caller, args: &Args) -> Result<ServiceCalendar, ApiError> {
    let cal_id = required_str(args, "cal_id")?;
    state
        .store
        .calendar(caller.account_id, &cal_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(&cal_id))
}

pub fn calendar_wire(c: &ServiceCalendar) -> Value {
    json!({
        "cal_id": c.cal_id,
        "cal_name": c.cal_name,
        "description": c.description,
        "team_id": c.team_id,
        "timezone": c.timezone,
        "workdays": c.workdays,
        "extra_cal_ids": c.extra_cal_ids,
        "date_overrides": c.date_overrides,
        "status": match c.status {
            CalendarStatus::Enabled => "enabled",
            CalendarStatus::Deleted => "deleted",
        },
        "creator_id": c.creator_id,
    })
}

/// POST `/calendar/create`: `cal_name*` (1..39), `description` (..499), `team_id`, `timezone`
/// (default: the account zone), `workdays` (default: all seven days), `extra_cal_ids`,
/// `date_overrides` → `{cal_id, cal_name}`.
async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let now = state.clock.now();
    let blank = ServiceCalendar {
        cal_id: object_id(now, rand::random()),
        cal_name: String::new(),
        description: String::new(),
        team_id: 0,
        timezone: String::new(),
        workdays: (0..7).collect(),
        extra_cal_ids: Vec::new(),
        date_overrides: BTreeMap::new(),
        status: CalendarStatus::Enabled,
        creator_id: caller.member_id,
    };
    let mut cal = merge_body(args, blank)?;
    if cal.timezone.is_empty() {
        cal.timezone = account_zone(state, caller).await?;
    }
    validate(state, caller, &cal).await?;
    state
        .store
        .create_calendar(caller.account_id, &cal, now)
        .await
        .map_err(store_err)?;
    Ok(json!({ "cal_id": cal.cal_id, "cal_name": cal.cal_name }))
}

/// POST `/calendar/update`: `cal_id*` plus any create field; fields left out keep their value.
/// RSP-272: the change applies to every later evaluation.
async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let current = load(state, caller, args).await?;
    check_can_edit(state, caller, &current).await?;
    let next = merge_body(args, current.clone())?;
    validate(state, caller, &next).await?;
    let found = state
        .store
        .update_calendar(caller.account_id, &next, state.clock.now())
        .await
        .map_err(store_err)?;
    if !found {
        return Err(not_found(&current.cal_id));
    }
    Ok(())
}

/// POST `/calendar/delete`: `cal_id*`. RSP-273: refused with `ReferenceExist` while a
/// schedule calendar mask, an escalation rule or a silence rule time filter uses it; final
/// otherwise.
async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let cal = load(state, caller, args).await?;
    check_can_edit(state, caller, &cal).await?;
    match state
        .store
        .delete_calendar(caller.account_id, &cal.cal_id)
        .await
        .map_err(store_err)?
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(not_found(&cal.cal_id)),
        Err(referrers) => Err(schedule::check_calendar_deletable(&referrers)
            .err()
            .map(ApiError::from)
            .unwrap_or_else(|| ApiError::internal("refused without referrers"))),
    }
}

/// `start_date`..`end_date` (both inclusive), both or neither, at most 366 days.
fn date_range(args: &Args) -> Result<Option<(jiff::civil::Date, jiff::civil::Date)>, ApiError> {
    let start = args.str("start_date")?;
    let end = args.str("end_date")?;
    match (start, end) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ApiError::invalid("end_date is required with start_date")),
        (None, Some(_)) => Err(ApiError::invalid("start_date is required with end_date")),
        (Some(s), Some(e)) => {
            let from = date("start_date", &s)?;
            let to = date("end_date", &e)?;
            if to < from {
                return Err(ApiError::invalid("end_date must not be before start_date"));
            }
            let days = from
                .until(to)
                .map(|span| span.get_days())
                .map_err(|_| ApiError::invalid("end_date is out of range"))?;
            if days >= MAX_RANGE_DAYS {
                return Err(ApiError::invalid(format!(
                    "start_date..end_date spans at most {MAX_RANGE_DAYS} days"
                )));
            }
            Ok(Some((from, to)))
        }
    }
}

/// POST `/calendar/info`: `cal_id*` → Calendar; with `start_date`/`end_date` also `days[]`,
/// the day type of each date (RSP-270).
async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let cal = load(state, caller, args).await?;
    let mut v = calendar_wire(&cal);
    if let (Some((from, to)), Some(obj)) = (date_range(args)?, v.as_object_mut()) {
        let sets = state
            .store
            .holiday_sets(caller.account_id)
            .await
            .map_err(store_err)?;
        let mut days = Vec::new();
        let mut d = from;
        while d <= to {
            let t = schedule::day_type(&cal, &sets, d);
            days.push(json!({ "date": d.to_string(), "day_type": t }));
            match d.tomorrow() {
                Ok(next) => d = next,
                Err(_) => break,
            }
        }
        obj.insert("days".into(), json!(days));
    }
    Ok(v)
}

/// POST `/calendar/list`: `p`, `limit` (default 20, at most 100), `query` (name substring),
/// `team_ids[]` → `{items, total, p, limit, has_next_page}`, newest first.
async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20).min(100);
    let filter = CalendarFilter {
        p,
        limit,
        query: args.str("query")?,
        team_ids: args.i64_list("team_ids")?,
        cal_ids: args.str_list("cal_ids")?,
    };
    let page = state
        .store
        .list_calendars(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    Ok(json!({
        "items": page.items.iter().map(calendar_wire).collect::<Vec<_>>(),
        "total": page.total,
        "p": p,
        "limit": limit,
        "has_next_page": page.has_next_page,
    }))
}

/// POST `/calendar/event/list`: `cal_id*`, optional `start_date`/`end_date` → `items[]{date,
/// day_type}`, the calendar's per-date marks in date order.
async fn event_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let cal = load(state, caller, args).await?;
    let range = date_range(args)?.map(|(a, b)| (a.to_string(), b.to_string()));
    let items: Vec<Value> = cal
        .date_overrides
        .iter()
        .filter(|(d, _)| {
            range
                .as_ref()
                .is_none_or(|(a, b)| d.as_str() >= a.as_str() && d.as_str() <= b.as_str())
        })
        .map(|(d, t)| json!({ "date": d, "day_type": t }))
        .collect();
    Ok(json!({ "items": items, "total": items.len() }))
}

/// POST `/calendar/event/upsert`: `cal_id*`, `events*[]{date, day_type}` — marks each date
/// (RSP-272; a mark wins over holiday sets and weekdays, RSP-270).
async fn event_upsert(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let mut cal = load(state, caller, args).await?;
    check_can_edit(state, caller, &cal).await?;
    let events = match args.raw().get("events") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) | None | Some(Value::Null) => {
            return Err(ApiError::invalid("events is required"));
        }
        Some(_) => return Err(ApiError::invalid("events must be an array")),
    };
    for (i, e) in events.iter().enumerate() {
        let d = e
            .get("date")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid(format!("events[{i}].date is required")))?;
        let d = date(&format!("events[{i}].date"), d)?;
        let t = day_type(
            &format!("events[{i}].day_type"),
            e.get("day_type").unwrap_or(&Value::Null),
        )?;
        cal.date_overrides.insert(d.to_string(), t);
    }
    if cal.date_overrides.len() > MAX_DATE_OVERRIDES {
        return Err(ApiError::invalid(format!(
            "events: a calendar holds at most {MAX_DATE_OVERRIDES} marked dates"
        )));
    }
    save(state, caller, &cal).await
}

/// POST `/calendar/event/delete`: `cal_id*`, `dates*[]` — removes those marks; the dates fall
/// back to holiday sets and weekdays.
async fn event_delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let mut cal = load(state, caller, args).await?;
    check_can_edit(state, caller, &cal).await?;
    let dates = args.str_list("dates")?;
    if dates.is_empty() {
        return Err(ApiError::invalid("dates is required"));
    }
    for (i, d) in dates.iter().enumerate() {
        let d = date(&format!("dates[{i}]"), d)?;
        cal.date_overrides.remove(&d.to_string());
    }
    save(state, caller, &cal).await
}

async fn save(state: &AppState, caller: &Caller, cal: &ServiceCalendar) -> Result<(), ApiError> {
    let found = state
        .store
        .update_calendar(caller.account_id, cal, state.clock.now())
        .await
        .map_err(store_err)?;
    if found {
        Ok(())
    } else {
        Err(not_found(&cal.cal_id))
    }
}

fn holiday_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= HOLIDAY_ID_MAX
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Reads a holiday-set file: `{id, name, entries{YYYY-MM-DD: holiday|workday}}`.
fn holiday_set_from(args: &Args) -> Result<HolidaySet, ApiError> {
    let id = required_str(args, "id")?;
    if !holiday_id_ok(&id) {
        return Err(ApiError::invalid(format!(
            "id must be 1..{HOLIDAY_ID_MAX} characters of a-z, 0-9, '.', '_' and '-'"
        )));
    }
    let name = args.str("name")?.unwrap_or_else(|| id.clone());
    let name = name.trim().to_string();
    if name.chars().count() > HOLIDAY_NAME_MAX {
        return Err(ApiError::invalid(format!(
            "name must be at most {HOLIDAY_NAME_MAX} characters"
        )));
    }
    let Some(Value::Object(map)) = args.raw().get("entries") else {
        return Err(ApiError::invalid(
            "entries is required: {\"YYYY-MM-DD\": \"holiday\"|\"workday\"}",
        ));
    };
    if map.is_empty() {
        return Err(ApiError::invalid("entries must list at least one date"));
    }
    if map.len() > MAX_HOLIDAY_ENTRIES {
        return Err(ApiError::invalid(format!(
            "entries holds at most {MAX_HOLIDAY_ENTRIES} dates"
        )));
    }
    let mut entries = BTreeMap::new();
    for (k, v) in map {
        let field = format!("entries.{k}");
        let d = date(&field, k)?;
        let mark = match v.as_str() {
            Some("holiday") => HolidayMark::Holiday,
            Some("workday") => HolidayMark::Workday,
            _ => {
                return Err(ApiError::invalid(format!(
                    "{field} must be \"holiday\" or \"workday\""
                )));
            }
        };
        entries.insert(d.to_string(), mark);
    }
    Ok(HolidaySet { id, name, entries })
}

fn holiday_summary(set: &HolidaySet) -> Value {
    json!({
        "id": set.id,
        "name": set.name,
        "entries": set.entries.len(),
        "holidays": set.entries.values().filter(|m| **m == HolidayMark::Holiday).count(),
        "first_date": set.entries.keys().next(),
        "last_date": set.entries.keys().next_back(),
    })
}

/// POST `/calendar/holiday/import`: the body is a holiday-set file → `{id, name, entries,
/// holidays, first_date, last_date, created}`. Only the account owner loads reference data.
async fn holiday_import(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    require_owner(state, caller).await?;
    let set = holiday_set_from(args)?;
    let created = state
        .store
        .put_holiday_set(caller.account_id, &set, state.clock.now())
        .await
        .map_err(store_err)?;
    let mut v = holiday_summary(&set);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("created".into(), json!(created));
    }
    Ok(v)
}

/// POST `/calendar/holiday/list` → `items[]{id, name, entries, holidays, first_date,
/// last_date}`.
async fn holiday_list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let sets = state
        .store
        .holiday_sets(caller.account_id)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = sets.iter().map(holiday_summary).collect();
    Ok(json!({ "items": items, "total": items.len() }))
}

/// POST `/calendar/holiday/delete`: `id*`. Refused with `ReferenceExist` while a calendar
/// links the set.
async fn holiday_delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    require_owner(state, caller).await?;
    let id = required_str(args, "id")?;
    match state
        .store
        .delete_holiday_set(caller.account_id, &id)
        .await
        .map_err(store_err)?
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("holiday set {id} not found"),
        )),
        Err(referrers) => Err(ApiError::new(
            ErrorCode::ReferenceExist,
            format!("id: the holiday set is linked by {}", referrers.join(", ")),
        )),
    }
}

async fn require_owner(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let member = state
        .store
        .member(caller.account_id, caller.member_id)
        .await
        .map_err(store_err)?;
    if member.is_some_and(|m| m.is_owner) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::AccessDenied,
            "only the account owner may load or remove holiday sets",
        ))
    }
}
