//! feature: iCalendar feed — `GET /calendar/schedule/{token}.ics`, the public subscription
//! URL of a schedule's on-call calendar (RFC 5545) for Google Calendar, Outlook and Apple
//! Calendar.
//!
//! The secret token in the path is the only credential (calendar clients cannot send API
//! keys); `POST /schedule/feed/reset` issues and rotates it. An unknown token answers a plain
//! 404 that tells nothing about why. The feed covers `[now − 7 d, now + 60 d)` (see
//! `klaxon_core::schedule::ical`), every instant in UTC.

use std::collections::{BTreeSet, HashMap};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_core::schedule::{Calendars, ical};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/calendar/schedule/{token}", get(schedule_feed))
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

async fn schedule_feed(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let token = token.strip_suffix(".ics").unwrap_or(&token);
    // Tokens are 32 lower-case hex digits; anything else cannot match, so skip the query.
    if token.is_empty() || token.len() > 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return not_found();
    }
    let (account_id, schedule) = match state.store.schedule_by_feed_token(token).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "calendar feed: store error");
            return (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n").into_response();
        }
    };
    let now = state.clock.now();
    let shifts = match ical::feed_shifts(&schedule, Calendars::default(), now) {
        Ok(shifts) => shifts,
        Err(e) => {
            tracing::warn!(error = %e, schedule_id = schedule.schedule_id, "calendar feed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot compute the feed\n",
            )
                .into_response();
        }
    };
    let persons: BTreeSet<i64> = shifts.iter().flat_map(|s| s.members.clone()).collect();
    let mut names: HashMap<i64, String> = HashMap::with_capacity(persons.len());
    for id in persons {
        if let Ok(Some(m)) = state.store.member(account_id, id).await
            && !m.member_name.is_empty()
        {
            names.insert(id, m.member_name);
        }
    }
    let lookup = |id: i64| {
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("Person {id}"))
    };
    let body = ical::schedule_feed(&schedule, &shifts, now, &lookup);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"schedule.ics\"",
            ),
        ],
        body,
    )
        .into_response()
}
