//! Service calendars (response.md §1.14, §2.18): the list, a form to create one, and each
//! calendar's page with the same form to edit it, a month of its day types where a click on a
//! date toggles that date's mark (RSP-272), and deletion (refused while something uses it,
//! RSP-273). Every read and write is an Open API call (`/calendar/*`), so the calendar rules
//! of `klaxon_core::schedule` (validation, RSP-270 day types, RSP-274 edit rights) are the
//! API's own; a refusal comes back next to the input it names, with everything typed kept.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::civil::Date;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::FieldErrors;
use super::incidents::{form_pairs, form_value, j, now_secs, page_headers};
use super::schedule_views as sv;
use super::{Viewer, call, error_text, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calendars", get(list_page).post(create))
        .route("/calendars/new", get(new_page))
        .route("/calendars/{id}", get(calendar_page).post(update))
        .route("/calendars/{id}/dates/{date}", post(toggle))
        .route("/calendars/{id}/delete", post(delete))
}

/// Weekdays as the API numbers them (0 = Sunday), in the order the form lists them.
const WEEKDAYS: [(i64, &str); 7] = [
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (0, "Sunday"),
];

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn status_of(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// Calendar ids are ObjectIDs (24 hex digits); anything else is no calendar.
fn cal_id(raw: &str) -> Result<String, ApiError> {
    let ok = raw.len() == 24 && raw.bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            "no such service calendar",
        ))
    }
}

async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    super::me(state, viewer).await
}

/// `Mon Tue Wed Thu Fri` for the stored `workdays`.
fn workday_names(workdays: &Value) -> String {
    let days: Vec<i64> = workdays
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    if days.is_empty() {
        return "none".to_string();
    }
    WEEKDAYS
        .iter()
        .filter(|(n, _)| days.contains(n))
        .map(|(_, name)| &name[..3])
        .collect::<Vec<_>>()
        .join(" ")
}

async fn list_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/calendars").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let listed = match fetch(&state, &viewer, "/calendar/list", json!({"limit": 100})).await {
        Ok(l) => items(&l),
        Err(e) => return page_error(&e),
    };
    let calendars: Vec<Value> = listed
        .iter()
        .map(|c| {
            json!({
                "cal_id": c["cal_id"],
                "cal_name": c["cal_name"],
                "description": c["description"],
                "timezone": c["timezone"],
                "workdays": workday_names(&c["workdays"]),
                "extra_cal_ids": c["extra_cal_ids"],
                "marks": c["date_overrides"].as_object().map_or(0, serde_json::Map::len),
            })
        })
        .collect();
    let me = match me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "Service calendars",
        nav => "calendars",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        calendars => j(&calendars),
    };
    page_headers(view::render("calendars.html", ctx).into_response())
}

/// What the form shows: the typed values, kept through a refusal.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct CalendarForm {
    cal_name: String,
    description: String,
    timezone: String,
    team_id: String,
    /// Ticked weekdays, as the API numbers them.
    workdays: Vec<String>,
    /// Linked holiday sets.
    extra_cal_ids: Vec<String>,
}

fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect()
}

impl CalendarForm {
    fn parse(pairs: &[(String, String)]) -> CalendarForm {
        CalendarForm {
            cal_name: form_value(pairs, "cal_name"),
            description: form_value(pairs, "description"),
            timezone: form_value(pairs, "timezone").trim().to_string(),
            team_id: form_value(pairs, "team_id").trim().to_string(),
            workdays: all(pairs, "workdays"),
            extra_cal_ids: all(pairs, "extra_cal_ids"),
        }
    }

    /// A stored calendar (`/calendar/info`) as the form shows it.
    fn of(c: &Value) -> CalendarForm {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        };
        CalendarForm {
            cal_name: c["cal_name"].as_str().unwrap_or("").to_string(),
            description: c["description"].as_str().unwrap_or("").to_string(),
            timezone: c["timezone"].as_str().unwrap_or("").to_string(),
            team_id: c["team_id"]
                .as_i64()
                .filter(|t| *t > 0)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            workdays: strings(&c["workdays"]),
            extra_cal_ids: strings(&c["extra_cal_ids"]),
        }
    }

    /// The `/calendar/create` or `/calendar/update` body. Lists are always sent, so unticking
    /// every weekday or every holiday set clears them.
    fn body(&self, cal_id: Option<&str>) -> Result<Value, FieldErrors> {
        let mut workdays = Vec::new();
        for w in &self.workdays {
            let n = w
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=6).contains(n))
                .ok_or_else(|| {
                    FieldErrors::one(
                        "workdays",
                        format!("workdays: {w:?} is not a weekday 0..6 (0 = Sunday)"),
                    )
                })?;
            workdays.push(n);
        }
        let team_id = if self.team_id.is_empty() {
            0
        } else {
            self.team_id
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    FieldErrors::one(
                        "team_id",
                        format!("team_id: {:?} is not a team", self.team_id),
                    )
                })?
        };
        let mut body = json!({
            "cal_name": self.cal_name.trim(),
            "description": self.description,
            "team_id": team_id,
            "workdays": workdays,
            "extra_cal_ids": self.extra_cal_ids,
        });
        if let Some(obj) = body.as_object_mut() {
            // Empty: the account's zone on create, the stored one on update.
            if !self.timezone.is_empty() {
                obj.insert("timezone".into(), json!(self.timezone));
            }
            if let Some(id) = cal_id {
                obj.insert("cal_id".into(), json!(id));
            }
        }
        Ok(body)
    }
}

/// The input an API error field belongs to (`extra_cal_ids[0]` → `extra_cal_ids`, …).
fn calendar_input(field: &str) -> Option<String> {
    let head = field.split(['.', '[']).next().unwrap_or("");
    match head {
        "cal_name" | "description" | "timezone" | "team_id" | "workdays" | "extra_cal_ids" => {
            Some(head.to_string())
        }
        _ => None,
    }
}

/// Everything the form fragment draws besides the values: the holiday sets and teams to pick
/// from, where it posts.
async fn form_ctx(
    state: &AppState,
    viewer: &Viewer,
    cal_id: Option<&str>,
    form: &CalendarForm,
    errors: &FieldErrors,
) -> Result<minijinja::Value, ApiError> {
    let sets = items(&fetch(state, viewer, "/calendar/holiday/list", json!({})).await?);
    let teams = items(&fetch(state, viewer, "/team/list", json!({"limit": 100})).await?);
    let weekdays: Vec<(String, String)> = WEEKDAYS
        .iter()
        .map(|(n, name)| (n.to_string(), (*name).to_string()))
        .collect();
    Ok(context! {
        action => cal_id.map_or_else(|| "/calendars".to_string(), |id| format!("/calendars/{id}")),
        editing => cal_id.is_some(),
        v => j(form),
        errors => j(&errors.0),
        sets => j(&sets),
        teams => j(&teams),
        weekdays => weekdays,
    })
}

async fn new_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/calendars/new").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let me = match me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    // Every day a workday until bulk-marked otherwise (§1.14), in the viewer's zone.
    let form = CalendarForm {
        timezone: me["time_zone"].as_str().unwrap_or("").to_string(),
        workdays: (0..7).map(|n: i64| n.to_string()).collect(),
        ..CalendarForm::default()
    };
    let f = match form_ctx(&state, &viewer, None, &form, &FieldErrors::default()).await {
        Ok(f) => f,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "New service calendar",
        nav => "calendars",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        f => f,
    };
    page_headers(view::render("calendar_new.html", ctx).into_response())
}

/// The form fragment again after a refusal, errors beside their inputs.
async fn form_again(
    state: &AppState,
    viewer: &Viewer,
    cal_id: Option<&str>,
    form: &CalendarForm,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    match form_ctx(state, viewer, cal_id, form, errors).await {
        Ok(f) => page_headers(
            (
                status,
                view::render("calendar_form.html", context! { f => f }),
            )
                .into_response(),
        ),
        Err(e) => page_error(&e),
    }
}

async fn save(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    cal_id: Option<&str>,
    body: &Bytes,
) -> Response {
    let form = CalendarForm::parse(&form_pairs(body));
    let args = match form.body(cal_id) {
        Ok(a) => a,
        Err(errors) => {
            return form_again(
                state,
                viewer,
                cal_id,
                &form,
                &errors,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let path = if cal_id.is_some() {
        "/calendar/update"
    } else {
        "/calendar/create"
    };
    match call(state, viewer, path, args).await {
        Ok(answer) => {
            let id = cal_id
                .map(str::to_string)
                .or_else(|| {
                    answer
                        .as_ref()
                        .and_then(|a| a["cal_id"].as_str().map(str::to_string))
                })
                .unwrap_or_default();
            redirect(headers, &format!("/calendars/{id}?saved=1"))
        }
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console calendar save failed");
            }
            let errors = FieldErrors::file(&e.message, calendar_input);
            form_again(state, viewer, cal_id, &form, &errors, status_of(&e)).await
        }
    }
}

/// Creates the calendar and opens its page.
async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/calendars/new").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    save(&state, &viewer, &headers, None, &body).await
}

/// Saves the edited fields (RSP-272: later evaluations see the change at once).
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, &format!("/calendars/{id}")).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match cal_id(&id) {
        Ok(id) => id,
        Err(e) => return error_text(&e),
    };
    save(&state, &viewer, &headers, Some(&id), &body).await
}

/// The month of day types the page shows (`/calendar/info` with a date range, RSP-270), with
/// a pad before the first Monday.
async fn month_ctx(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    first: Date,
    today: Date,
) -> Result<minijinja::Value, ApiError> {
    let last = first.last_of_month();
    let info = fetch(
        state,
        viewer,
        "/calendar/info",
        json!({"cal_id": id, "start_date": first.to_string(), "end_date": last.to_string()}),
    )
    .await?;
    let mut days = Vec::new();
    for _ in 0..first.weekday().to_monday_zero_offset() {
        days.push(json!({"pad": true}));
    }
    for d in info["days"].as_array().into_iter().flatten() {
        let date = d["date"].as_str().unwrap_or("");
        let Ok(parsed) = date.parse::<Date>() else {
            continue;
        };
        days.push(json!({
            "pad": false,
            "date": date,
            "day": parsed.day(),
            "label": parsed.strftime("%a %-d %b").to_string(),
            "rest": d["day_type"] == "restday",
            // A manual mark (RSP-270 step 1) rather than holiday sets or weekdays.
            "marked": info["date_overrides"].get(date).is_some(),
            "today": parsed == today,
        }));
    }
    let step = |n: i64| {
        first
            .checked_add(jiff::Span::new().months(n))
            .map(sv::month_key)
            .unwrap_or_default()
    };
    Ok(context! {
        cal_id => id,
        month_name => first.strftime("%B %Y").to_string(),
        month => sv::month_key(first),
        prev => step(-1),
        next => step(1),
        days => j(&days),
    })
}

async fn calendar_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, &format!("/calendars/{id}")).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match cal_id(&id) {
        Ok(id) => id,
        Err(e) => return page_error(&e),
    };
    let cal = match fetch(&state, &viewer, "/calendar/info", json!({"cal_id": id})).await {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let tz = sv::zone(cal["timezone"].as_str().unwrap_or("UTC"));
    let today = sv::local_date(&tz, now_secs(&state));
    let first = match q.get("month").map(String::as_str) {
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
    let m = match month_ctx(&state, &viewer, &id, first, today).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let form = CalendarForm::of(&cal);
    let f = match form_ctx(&state, &viewer, Some(&id), &form, &FieldErrors::default()).await {
        Ok(f) => f,
        Err(e) => return page_error(&e),
    };
    let me = match me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => cal["cal_name"].as_str().unwrap_or("Service calendar").to_string(),
        nav => "calendars",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        c => j(&cal),
        saved => q.contains_key("saved"),
        m => m,
        f => f,
    };
    page_headers(view::render("calendar.html", ctx).into_response())
}

/// RSP-272: a click on a date toggles its mark. A marked date loses its mark; if that leaves
/// it as it was (the mark was redundant), or it had none, it is marked as the other day type.
/// Answers with the month again, so the focus stays on the date.
async fn toggle(
    State(state): State<AppState>,
    Path((id, date)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/calendars/{id}");
    let viewer = match viewer(&state, &Method::POST, &headers, &here).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match cal_id(&id) {
        Ok(id) => id,
        Err(e) => return error_text(&e),
    };
    let Ok(d) = date.parse::<Date>() else {
        return error_text(&ApiError::invalid(format!(
            "date: {date:?} is not a date (YYYY-MM-DD)"
        )));
    };
    let day = d.to_string();
    let type_of = |info: &Value| info["days"][0]["day_type"].as_str().map(str::to_string);
    let info_args = json!({"cal_id": id, "start_date": day, "end_date": day});
    let info = match fetch(&state, &viewer, "/calendar/info", info_args.clone()).await {
        Ok(i) => i,
        Err(e) => return error_text(&e),
    };
    let flipped = if type_of(&info).as_deref() == Some("restday") {
        "workday"
    } else {
        "restday"
    };
    let mut now_type = type_of(&info);
    if info["date_overrides"].get(&day).is_some() {
        let r = call(
            &state,
            &viewer,
            "/calendar/event/delete",
            json!({"cal_id": id, "dates": [day]}),
        )
        .await;
        if let Err(e) = r {
            return error_text(&e);
        }
        now_type = match fetch(&state, &viewer, "/calendar/info", info_args).await {
            Ok(i) => type_of(&i),
            Err(e) => return error_text(&e),
        };
    }
    if now_type.as_deref() != Some(flipped) {
        let r = call(
            &state,
            &viewer,
            "/calendar/event/upsert",
            json!({"cal_id": id, "events": [{"date": day, "day_type": flipped}]}),
        )
        .await;
        if let Err(e) = r {
            return error_text(&e);
        }
    }
    let tz_of = match fetch(&state, &viewer, "/calendar/info", json!({"cal_id": id})).await {
        Ok(c) => c["timezone"].as_str().unwrap_or("UTC").to_string(),
        Err(e) => return error_text(&e),
    };
    let today = sv::local_date(&sv::zone(&tz_of), now_secs(&state));
    match month_ctx(&state, &viewer, &id, d.first_of_month(), today).await {
        Ok(m) => {
            page_headers(view::render("calendar_month.html", context! { m => m }).into_response())
        }
        Err(e) => error_text(&e),
    }
}

/// Deletes the calendar (RSP-273: refused, listing the users, while something uses it).
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, &format!("/calendars/{id}")).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match cal_id(&id) {
        Ok(id) => id,
        Err(e) => return error_text(&e),
    };
    match call(&state, &viewer, "/calendar/delete", json!({"cal_id": id})).await {
        Ok(_) => redirect(&headers, "/calendars"),
        Err(e) => error_text(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(raw).unwrap()
    }

    // spec: RSP-272 — bulk marking by weekday sets `workdays`; unticking every weekday or
    // holiday set is sent as an empty list, which clears it.
    #[test]
    fn the_form_becomes_a_calendar_body() {
        let f = CalendarForm::parse(&pairs(
            "cal_name=+Trading+days+&description=NYSE&timezone=America%2FNew_York&team_id=\
             &workdays=1&workdays=2&workdays=5&extra_cal_ids=us.nyse",
        ));
        let b = f.body(None).unwrap();
        assert_eq!(b["cal_name"], "Trading days");
        assert_eq!(b["workdays"], json!([1, 2, 5]));
        assert_eq!(b["extra_cal_ids"], json!(["us.nyse"]));
        assert_eq!(b["team_id"], 0);
        assert_eq!(b["timezone"], "America/New_York");
        assert!(b.get("cal_id").is_none());
        let cleared = CalendarForm::parse(&pairs("cal_name=X&timezone="))
            .body(Some("0123456789abcdef01234567"))
            .unwrap();
        assert_eq!(cleared["workdays"], json!([]));
        assert_eq!(cleared["extra_cal_ids"], json!([]));
        assert_eq!(cleared["cal_id"], "0123456789abcdef01234567");
        assert!(cleared.get("timezone").is_none(), "the stored zone is kept");
    }

    #[test]
    fn unreadable_values_are_refused_at_their_input() {
        let e = CalendarForm::parse(&pairs("cal_name=X&workdays=9"))
            .body(None)
            .unwrap_err();
        assert!(e.0.contains_key("workdays"), "{e:?}");
        let e = CalendarForm::parse(&pairs("cal_name=X&team_id=abc"))
            .body(None)
            .unwrap_err();
        assert!(e.0.contains_key("team_id"), "{e:?}");
    }

    #[test]
    fn api_errors_go_to_their_inputs() {
        assert_eq!(calendar_input("cal_name").as_deref(), Some("cal_name"));
        assert_eq!(
            calendar_input("extra_cal_ids[0]").as_deref(),
            Some("extra_cal_ids")
        );
        assert_eq!(calendar_input("timezone").as_deref(), Some("timezone"));
        assert_eq!(calendar_input("date_overrides.2026-01-01"), None);
    }

    #[test]
    fn a_stored_calendar_fills_the_form() {
        let f = CalendarForm::of(&json!({
            "cal_name": "Ops", "description": "", "timezone": "UTC", "team_id": 0,
            "workdays": [1, 2, 3], "extra_cal_ids": ["cn"],
        }));
        assert_eq!(f.workdays, vec!["1", "2", "3"]);
        assert_eq!(f.team_id, "");
        assert_eq!(f.extra_cal_ids, vec!["cn"]);
        assert_eq!(
            workday_names(&json!([1, 2, 3, 4, 5])),
            "Mon Tue Wed Thu Fri"
        );
        assert_eq!(workday_names(&json!([])), "none");
        assert!(cal_id("0123456789ABCDEF01234567").is_ok());
        assert!(cal_id("../x").is_err());
    }
}
