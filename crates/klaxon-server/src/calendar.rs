//! feature: iCalendar feed — `GET /calendar/schedule/{token}.ics`, the public subscription
//! URL of a schedule's on-call calendar (RFC 5545) for Google Calendar, Outlook and Apple
//! Calendar, and `GET /calendar/member/{token}.ics`, one member's own shifts across every
//! schedule.
//!
//! The secret token in the path is the only credential (calendar clients cannot send API
//! keys); `POST /schedule/feed/reset` and `POST /schedule/self/feed/reset` issue and rotate
//! them. An unknown token answers a plain 404 that tells nothing about why. A feed covers
//! `[now − 7 d, now + 60 d)` (see `klaxon_core::schedule::ical`), every instant in UTC, and
//! honours the account's service calendars (layer calendar masks, RSP-223). Adding
//! `?download=1` serves the same calendar as a one-off file download
//! (`Content-Disposition: attachment`) instead of a subscription.

use std::collections::{BTreeSet, HashMap};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_core::schedule::{Schedule, Shift, ical};
use klaxon_store::ScheduleFilter;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calendar/schedule/{token}", get(schedule_feed))
        .route("/calendar/member/{token}", get(member_feed))
}

/// The per-member feed URL of `token` under the node's base URL.
pub fn member_feed_url(state: &AppState, token: &str) -> String {
    format!("{}/calendar/member/{token}.ics", state.base_url)
}

/// The token of a `…/{token}.ics` path, when it can be one (32 hex digits are issued;
/// anything else cannot match, so the store is not asked).
fn token_of(path: &str) -> Option<&str> {
    let token = path.strip_suffix(".ics").unwrap_or(path);
    (!token.is_empty() && token.len() <= 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(token)
}

fn wants_download(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "download" || kv.starts_with("download=") && kv != "download=0")
    })
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n").into_response()
}

fn cannot_compute() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "cannot compute the feed\n",
    )
        .into_response()
}

/// Names of `persons` (members of `account_id`); unknown ones read `Person <id>`.
async fn person_names(
    state: &AppState,
    account_id: i64,
    persons: BTreeSet<i64>,
) -> HashMap<i64, String> {
    let mut names: HashMap<i64, String> = HashMap::with_capacity(persons.len());
    for id in persons {
        if let Ok(Some(m)) = state.store.member(account_id, id).await
            && !m.member_name.is_empty()
        {
            names.insert(id, m.member_name);
        }
    }
    names
}

fn calendar_response(body: String, filename: &str, download: bool) -> Response {
    let disposition = if download {
        format!("attachment; filename=\"{filename}\"")
    } else {
        format!("inline; filename=\"{filename}\"")
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_string(),
            ),
            (header::CACHE_CONTROL, "private, max-age=300".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

async fn member_feed(
    State(state): State<AppState>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(token) = token_of(&token) else {
        return not_found();
    };
    let (account_id, member_id) = match state.store.member_by_feed_token(token).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "member calendar feed: store error");
            return unavailable();
        }
    };
    let member = match state.store.member(account_id, member_id).await {
        Ok(Some(m)) if m.status != "deleted" => m,
        // A deleted member's feed shows nothing, like an unknown token.
        Ok(_) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "member calendar feed: store error");
            return unavailable();
        }
    };
    let (cals, schedules) = match (
        state.store.account_calendars(account_id).await,
        load_all_schedules(&state, account_id).await,
    ) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "member calendar feed: store error");
            return unavailable();
        }
    };
    let now = state.clock.now();
    let mut entries: Vec<(&Schedule, Vec<Shift>)> = Vec::new();
    for s in &schedules {
        match ical::feed_shifts(s, cals.view(), now) {
            Ok(shifts) if shifts.iter().any(|sh| sh.members.contains(&member_id)) => {
                entries.push((s, shifts));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, schedule_id = s.schedule_id, "member calendar feed");
                return cannot_compute();
            }
        }
    }
    let persons: BTreeSet<i64> = entries
        .iter()
        .flat_map(|(_, shifts)| shifts.iter().flat_map(|s| s.members.clone()))
        .collect();
    let names = person_names(&state, account_id, persons).await;
    let lookup = |id: i64| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("Person {id}"))
    };
    let name = if member.member_name.is_empty() {
        format!("Person {member_id}")
    } else {
        member.member_name.clone()
    };
    let body = ical::member_feed(member_id, &name, &entries, now, &lookup);
    calendar_response(body, "on-call.ics", wants_download(query.as_deref()))
}

async fn load_all_schedules(
    state: &AppState,
    account_id: i64,
) -> Result<Vec<Schedule>, klaxon_store::StoreError> {
    let mut out = Vec::new();
    let mut p = 1;
    loop {
        let filter = ScheduleFilter {
            p,
            limit: 500,
            ..ScheduleFilter::default()
        };
        let page = state.store.list_schedules(account_id, &filter).await?;
        out.extend(page.items);
        if !page.has_next_page {
            return Ok(out);
        }
        p += 1;
    }
}

/// The feed URL of `token` under the node's base URL.
pub fn schedule_feed_url(state: &AppState, token: &str) -> String {
    format!("{}/calendar/schedule/{token}.ics", state.base_url)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "not found\n",
    )
        .into_response()
}

async fn schedule_feed(
    State(state): State<AppState>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(token) = token_of(&token) else {
        return not_found();
    };
    let (account_id, schedule) = match state.store.schedule_by_feed_token(token).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "calendar feed: store error");
            return unavailable();
        }
    };
    let cals = match state.store.account_calendars(account_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "calendar feed: store error");
            return unavailable();
        }
    };
    let now = state.clock.now();
    let shifts = match ical::feed_shifts(&schedule, cals.view(), now) {
        Ok(shifts) => shifts,
        Err(e) => {
            tracing::warn!(error = %e, schedule_id = schedule.schedule_id, "calendar feed");
            return cannot_compute();
        }
    };
    let persons: BTreeSet<i64> = shifts.iter().flat_map(|s| s.members.clone()).collect();
    let names = person_names(&state, account_id, persons).await;
    let lookup = |id: i64| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("Person {id}"))
    };
    let body = ical::schedule_feed(&schedule, &shifts, now, &lookup);
    calendar_response(body, "schedule.ics", wants_download(query.as_deref()))
}
