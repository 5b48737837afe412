//! Schedules: the list with who is on call now, a form for a simple schedule (one rotation
//! layer of members taking turns, a handoff time), and a schedule's page with the current and
//! next shifts. Everything is an Open API call (`/schedule/list`, `/schedule/create`,
//! `/schedule/info`), so the schedule resolver of `klaxon_core::schedule` computes every shift
//! and validates every value.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, names, now_secs, page_headers};
use super::schedule_edit;
use super::schedule_swap;
use super::schedule_views::{self as sv, segment_people};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schedules", get(list_page).post(create))
        .route("/schedules/new", get(new_page))
        .route("/schedules/{id}", get(schedule_page))
}

/// How far ahead a schedule's page shows shifts, and how far back it looks for the start of
/// the current one (the API allows windows under 45 days; segments are cut at the window).
const AHEAD_SECS: i64 = 14 * 86_400;
const BEHIND_SECS: i64 = 7 * 86_400;
/// Shifts listed on a schedule's page.
const NEXT_SHIFTS: usize = 10;
/// Days the timeline shows by default (`?days=7` for a week).
const TIMELINE_DAYS: i64 = 14;
use super::schedule_edit::UNITS;

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// A segment as the pages draw it: its span and its people's ids.
fn shift(seg: &Value) -> Value {
    json!({"start": seg["start"], "end": seg["end"], "people": segment_people(seg)})
}

async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    super::me(state, viewer).await
}

async fn list_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/schedules").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let now = now_secs(&state);
    // With a window each item carries `cur_oncall` ("who is on call now"), cut at its end.
    let listed = match fetch(
        &state,
        &viewer,
        "/schedule/list",
        json!({"limit": 100, "start": now, "end": now + AHEAD_SECS}),
    )
    .await
    {
        Ok(l) => items(&l),
        Err(e) => return page_error(&e),
    };
    let mut people = BTreeSet::new();
    let schedules: Vec<Value> = listed
        .iter()
        .map(|s| {
            let now_on = if s["cur_oncall"].is_null() {
                Value::Null
            } else {
                shift(&s["cur_oncall"])
            };
            people.extend(segment_people(&s["cur_oncall"]));
            json!({
                "schedule_id": s["schedule_id"],
                "schedule_name": s["schedule_name"],
                "description": s["description"],
                "time_zone": s["time_zone"],
                "disabled": s["disabled"],
                "now": now_on,
            })
        })
        .collect();
    let names = names(&state, &viewer, people).await;
    let me = match me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "Schedules",
        nav => "schedules",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        now => now,
        window_end => now + AHEAD_SECS,
        schedules => j(&schedules),
        names => names,
    };
    page_headers(view::render("schedules.html", ctx).into_response())
}

async fn schedule_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, &format!("/schedules/{id}")).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
        return page_error(&ApiError::new(
            ErrorCode::ResourceNotFound,
            "no such schedule",
        ));
    };
    if q.get("view").map(String::as_str) == Some("month") {
        return month_page(&state, &viewer, id, q.get("month").map(String::as_str)).await;
    }
    let now = now_secs(&state);
    // The stored zone first: the timeline's days are the schedule's local days.
    let zone_of = match fetch(
        &state,
        &viewer,
        "/schedule/info",
        json!({"schedule_id": id, "start": now, "end": now + 60}),
    )
    .await
    {
        Ok(s) => s["time_zone"].as_str().unwrap_or("UTC").to_string(),
        Err(e) => return page_error(&e),
    };
    let tz = sv::zone(&zone_of);
    let days: i64 = match q.get("days").map(String::as_str) {
        Some("7") => 7,
        _ => TIMELINE_DAYS,
    };
    let today = sv::local_date(&tz, now);
    let from = sv::day_start(&tz, today);
    let to = today
        .checked_add(jiff::Span::new().days(days))
        .map_or(from + days * 86_400, |d| sv::day_start(&tz, d));
    let s = match fetch(
        &state,
        &viewer,
        "/schedule/info",
        json!({"schedule_id": id, "start": (now - BEHIND_SECS).min(from), "end": to.max(now + AHEAD_SECS)}),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return page_error(&e),
    };
    let window_start = (now - BEHIND_SECS).min(from);
    let window_end = to.max(now + AHEAD_SECS);
    let shifts: Vec<Value> = s["final_schedule"]["schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|seg| seg["end"].as_i64().is_none_or(|end| end > now))
        .filter(|seg| seg["start"].as_i64().is_none_or(|st| st < now + AHEAD_SECS))
        .take(NEXT_SHIFTS + 1)
        .map(shift)
        .collect();
    let current = if s["cur_oncall"].is_null() {
        Value::Null
    } else {
        shift(&s["cur_oncall"])
    };
    let mut people: BTreeSet<i64> = BTreeSet::new();
    for seg in s["final_schedule"]["schedules"]
        .as_array()
        .into_iter()
        .flatten()
    {
        people.extend(segment_people(seg));
    }
    for l in s["schedule_layers"].as_array().into_iter().flatten() {
        for seg in l["schedules"].as_array().into_iter().flatten() {
            people.extend(segment_people(seg));
        }
    }
    for l in s["layers"].as_array().into_iter().flatten() {
        for g in l["groups"].as_array().into_iter().flatten() {
            for m in g["members"].as_array().into_iter().flatten() {
                people.insert(m["person_id"].as_i64().unwrap_or(0));
            }
        }
    }
    let names = names(&state, &viewer, people).await;
    let me = match me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let rows = sv::timeline(&s, from, to, &tz, &names);
    let ticks = sv::ticks(&tz, from, to);
    let now_at = (now >= from && now < to)
        .then(|| ((now - from) as f64 / (to - from).max(1) as f64 * 10_000.0).round() / 100.0);
    let overrides: Vec<Value> = s["overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let start = o["start"].as_i64().unwrap_or(0);
            let end = o["end"].as_i64().unwrap_or(0);
            json!({
                "override_id": o["override_id"],
                "person_id": o["person_id"],
                "note": o["note"],
                "from": sv::local_label(&tz, start),
                "to": sv::local_label(&tz, end),
                // RSP-225: a begun override can only be ended early, a past one not at all.
                "state": if end <= now { "past" } else if start <= now { "running" } else { "future" },
            })
        })
        .collect();
    let picks = match schedule_edit::override_people(&state, &viewer).await {
        Ok(p) => p,
        Err(e) => return page_error(&e),
    };
    let o = context! {
        schedule_id => id,
        time_zone => zone_of.clone(),
        v => j(&schedule_edit::OverrideForm::fresh(&tz, now)),
        people => j(&picks),
        errors => j(&BTreeMap::<String, String>::new()),
    };
    let w = context! {
        schedule_id => id,
        time_zone => zone_of.clone(),
        v => j(&schedule_swap::SwapForm::default()),
        people => j(&picks),
        errors => j(&BTreeMap::<String, String>::new()),
    };
    let ctx = context! {
        title => s["schedule_name"].as_str().unwrap_or("Schedule").to_string(),
        nav => "schedules",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        now => now,
        // A shift cut by the window began before / ends after what the page can tell.
        window_start => window_start,
        window_end => window_end,
        s => j(&s),
        zone => zone_of,
        current => j(&current),
        // The current shift leads the list; the rest are the next ones.
        shifts => j(&shifts),
        names => names,
        days => days,
        rows => j(&rows),
        tl_from => from,
        tl_to => to,
        ticks => j(&ticks),
        now_at => now_at,
        overrides => j(&overrides),
        month => sv::month_key(today.first_of_month()),
        o => o,
        w => w,
    };
    page_headers(view::render("schedule.html", ctx).into_response())
}

/// The month calendar (`?view=month&month=YYYY-MM`, this month by default): who is on call
/// on each local day, from the final schedule.
async fn month_page(state: &AppState, viewer: &Viewer, id: i64, month: Option<&str>) -> Response {
    let now = now_secs(state);
    let zone_of = match fetch(
        state,
        viewer,
        "/schedule/info",
        json!({"schedule_id": id, "start": now, "end": now + 60}),
    )
    .await
    {
        Ok(s) => s["time_zone"].as_str().unwrap_or("UTC").to_string(),
        Err(e) => return page_error(&e),
    };
    let tz = sv::zone(&zone_of);
    let today = sv::local_date(&tz, now);
    let first = match month {
        None | Some("") => today.first_of_month(),
        Some(raw) => match sv::parse_month(raw) {
            Some(d) => d,
            None => {
                return page_error(&ApiError::invalid(format!(
                    "month: {raw:?} is not a month (YYYY-MM)"
                )));
            }
        },
    };
    let (from, to) = sv::month_window(&tz, first);
    let s = match fetch(
        state,
        viewer,
        "/schedule/info",
        json!({"schedule_id": id, "start": from, "end": to}),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return page_error(&e),
    };
    let mut people = BTreeSet::new();
    for seg in s["final_schedule"]["schedules"]
        .as_array()
        .into_iter()
        .flatten()
    {
        people.extend(segment_people(seg));
    }
    let names = names(state, viewer, people).await;
    let me = match me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let days = sv::month_days(&tz, first, &s["final_schedule"]["schedules"], &names, today);
    let step = |n: i64| {
        first
            .checked_add(jiff::Span::new().months(n))
            .map(sv::month_key)
            .unwrap_or_default()
    };
    let ctx = context! {
        title => format!("{} · {}", s["schedule_name"].as_str().unwrap_or("Schedule"), first.strftime("%B %Y")),
        nav => "schedules",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        s => j(&s),
        zone => zone_of,
        month_name => first.strftime("%B %Y").to_string(),
        prev => step(-1),
        next => step(1),
        this_month => sv::month_key(today.first_of_month()),
        days => j(&days),
    };
    page_headers(view::render("schedule_month.html", ctx).into_response())
}

/// What the create form shows: the typed values, kept through a refusal.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct ScheduleForm {
    schedule_name: String,
    time_zone: String,
    members: Vec<String>,
    rotation_unit: String,
    rotation_value: String,
    start_date: String,
    handoff: String,
}

impl ScheduleForm {
    fn parse(pairs: &[(String, String)]) -> ScheduleForm {
        ScheduleForm {
            schedule_name: form_value(pairs, "schedule_name"),
            time_zone: form_value(pairs, "time_zone").trim().to_string(),
            // The order of the ticks is the order of the turns.
            members: pairs
                .iter()
                .filter(|(k, v)| k == "members" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
            rotation_unit: form_value(pairs, "rotation_unit"),
            rotation_value: form_value(pairs, "rotation_value").trim().to_string(),
            start_date: form_value(pairs, "start_date").trim().to_string(),
            handoff: form_value(pairs, "handoff").trim().to_string(),
        }
    }

    /// The `/schedule/create` body: one layer, each ticked member a group of their own, so
    /// they take turns; the layer starts at the handoff time of the start date in the
    /// schedule's zone.
    fn body(&self) -> Result<Value, FieldErrors> {
        let date: jiff::civil::Date = self.start_date.parse().map_err(|_| {
            FieldErrors::one(
                "start_date",
                format!(
                    "layers[0].layer_start: {:?} is not a date (YYYY-MM-DD)",
                    self.start_date
                ),
            )
        })?;
        let time: jiff::civil::Time = self.handoff.parse().map_err(|_| {
            FieldErrors::one(
                "handoff",
                format!(
                    "layers[0].layer_start: {:?} is not a time of day (HH:MM)",
                    self.handoff
                ),
            )
        })?;
        // An unknown zone is the API's to refuse (it names `time_zone`); the start is then
        // computed in UTC only to have something to send.
        let tz = jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let start = tz
            .to_ambiguous_timestamp(date.to_datetime(time))
            .compatible()
            .map(|t| t.as_second())
            .map_err(|e| FieldErrors::one("start_date", format!("layers[0].layer_start: {e}")))?;
        let value = self.rotation_value.parse::<i64>().map_err(|_| {
            FieldErrors::one(
                "rotation_value",
                format!(
                    "layers[0].rotation_value: {:?} is not a whole number",
                    self.rotation_value
                ),
            )
        })?;
        let groups: Vec<Value> = self
            .members
            .iter()
            .map(|m| {
                let id = m.parse::<i64>().map_or_else(|_| json!(m), |n| json!(n));
                json!({"members": [{"person_id": id}]})
            })
            .collect();
        let mut body = json!({
            "schedule_name": self.schedule_name,
            "layers": [{
                "layer_name": "Rotation",
                "groups": groups,
                "layer_start": start,
                "rotation_unit": self.rotation_unit,
                "rotation_value": value,
            }],
        });
        if !self.time_zone.is_empty()
            && let Some(obj) = body.as_object_mut()
        {
            obj.insert("time_zone".into(), json!(self.time_zone));
        }
        Ok(body)
    }
}

/// The input an API error field of a schedule belongs to.
fn schedule_input(field: &str) -> Option<String> {
    match field {
        "schedule_name" | "time_zone" => return Some(field.to_string()),
        "layers" => return Some("members".to_string()),
        _ => {}
    }
    let (_, rest) = indexed(field, "layers")?;
    let input = match rest.split(['.', '[']).next().unwrap_or("") {
        "rotation_value" => "rotation_value",
        "rotation_unit" => "rotation_unit",
        "groups" => "members",
        "layer_start" => "start_date",
        "handoff" | "handoff_time" => "handoff",
        _ => return None,
    };
    Some(input.to_string())
}

async fn form_page(
    state: &AppState,
    viewer: &Viewer,
    form: &ScheduleForm,
    errors: &FieldErrors,
    status: StatusCode,
    fragment: bool,
) -> Response {
    let members = match fetch(state, viewer, "/member/list", json!({"limit": 100})).await {
        Ok(m) => items(&m),
        Err(e) => return page_error(&e),
    };
    let me = match me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let f = context! {
        v => j(form),
        members => j(&members),
        units => UNITS.iter().map(|(k, l)| (k.to_string(), l.to_string())).collect::<Vec<_>>(),
        errors => j(&errors.0),
    };
    let (template, ctx) = if fragment {
        ("schedule_form.html", context! { f => f })
    } else {
        (
            "schedule_new.html",
            context! {
                title => "New schedule",
                nav => "schedules",
                csrf => viewer.session.csrf_token.clone(),
                me => j(&me),
                f => f,
            },
        )
    };
    page_headers((status, view::render(template, ctx)).into_response())
}

async fn new_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/schedules/new").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let me = match me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let zone = me["time_zone"]
        .as_str()
        .filter(|z| !z.is_empty())
        .unwrap_or("UTC")
        .to_string();
    let today = jiff::Timestamp::from_second(now_secs(&state))
        .ok()
        .and_then(|t| {
            jiff::tz::TimeZone::get(&zone)
                .ok()
                .map(|tz| tz.to_datetime(t).date().to_string())
        })
        .unwrap_or_default();
    let form = ScheduleForm {
        time_zone: zone,
        rotation_unit: "week".to_string(),
        rotation_value: "1".to_string(),
        start_date: today,
        handoff: "09:00".to_string(),
        ..ScheduleForm::default()
    };
    form_page(
        &state,
        &viewer,
        &form,
        &FieldErrors::default(),
        StatusCode::OK,
        false,
    )
    .await
}

/// Creates the schedule and opens its page; a refusal redraws the form with the API's
/// message beside the field and what was typed kept.
async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/schedules/new").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let form = ScheduleForm::parse(&form_pairs(&body));
    let args = match form.body() {
        Ok(a) => a,
        Err(errors) => {
            return form_page(
                &state,
                &viewer,
                &form,
                &errors,
                StatusCode::BAD_REQUEST,
                true,
            )
            .await;
        }
    };
    match call(&state, &viewer, "/schedule/create", args).await {
        Ok(Some(created)) => {
            let id = created["schedule_id"].as_i64().unwrap_or(0);
            redirect(&headers, &format!("/schedules/{id}"))
        }
        Ok(None) => redirect(&headers, "/schedules"),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console schedule create failed");
            }
            let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
                .unwrap_or(StatusCode::BAD_REQUEST);
            let errors = FieldErrors::file(&e.message, schedule_input);
            form_page(&state, &viewer, &form, &errors, status, true).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(raw: &str) -> ScheduleForm {
        ScheduleForm::parse(&serde_urlencoded::from_str::<Vec<(String, String)>>(raw).unwrap())
    }

    #[test]
    fn the_form_becomes_one_rotation_layer_starting_at_the_local_handoff() {
        let f = form(
            "schedule_name=Ops&time_zone=Europe%2FBerlin&members=2&members=1&rotation_unit=week\
             &rotation_value=1&start_date=2026-01-05&handoff=09%3A00",
        );
        let b = f.body().unwrap();
        // 2026-01-05 09:00 in Berlin (UTC+1) is 08:00 UTC.
        assert_eq!(b["layers"][0]["layer_start"], 1_767_600_000);
        assert_eq!(b["layers"][0]["groups"][0]["members"][0]["person_id"], 2);
        assert_eq!(b["layers"][0]["groups"][1]["members"][0]["person_id"], 1);
        assert_eq!(b["time_zone"], "Europe/Berlin");
    }

    #[test]
    fn unreadable_values_are_refused_at_their_input() {
        let e = form("rotation_value=x&start_date=2026-01-05&handoff=09%3A00")
            .body()
            .unwrap_err();
        assert!(e.0.contains_key("rotation_value"));
        let e = form("rotation_value=1&start_date=soon&handoff=09%3A00")
            .body()
            .unwrap_err();
        assert!(e.0.contains_key("start_date"));
    }

    #[test]
    fn errors_of_the_layer_go_to_their_inputs() {
        assert_eq!(
            schedule_input("layers[0].rotation_value").as_deref(),
            Some("rotation_value")
        );
        assert_eq!(
            schedule_input("layers[0].groups[1].members").as_deref(),
            Some("members")
        );
        assert_eq!(
            schedule_input("schedule_name").as_deref(),
            Some("schedule_name")
        );
        assert_eq!(schedule_input("notify"), None);
    }
}
