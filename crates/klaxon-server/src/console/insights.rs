//! Insights (response.md §2.27; docs/insights.md): one page with the account's figures for
//! a period, the team, channel and responder rankings (top 10, expandable to all rows, RSP-482)
//! and the top `check` and `resource` label values, with CSV downloads of each dimension
//! (RSP-483). Every figure comes from the `/insight/*` Open API calls, so the page and the API
//! cannot disagree.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use klaxon_core::error::ApiError;
use klaxon_core::insight::Unit;
use klaxon_core::model::Millis;
use minijinja::context;
use serde_json::{Value, json};

use super::incidents::{j, page_headers};
use super::{fetch, page_error, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/insights", get(page))
        .route("/insights/export/{dim}", get(export))
}

/// Rankings show this many rows until expanded (RSP-482).
const TOP: usize = 10;
/// The global view's label values (RSP-482).
const TOP_LABELS: i64 = 20;

/// The presets of RSP-470, plus a custom range of dates.
const RANGES: &[(&str, &str)] = &[
    ("week", "This week"),
    ("two_weeks", "Last two weeks"),
    ("month", "This month"),
    ("last_month", "Last month"),
    ("custom", "Custom"),
];

const DAY: Millis = 86_400_000;

/// The period `[from, to)` in Unix seconds a range names at `now`, in the account's zone:
/// weeks from Monday 00:00, months from the 1st; a custom range runs from the start of `from`
/// to the end of `to` (dates, `YYYY-MM-DD`).
fn window(
    range: &str,
    from: &str,
    to: &str,
    now: Millis,
    tz: &TimeZone,
) -> Result<(i64, i64), ApiError> {
    let (start, end) = match range {
        "week" => (Unit::Week.bucket(now, tz), now),
        "two_weeks" => (Unit::Week.bucket(now, tz) - 7 * DAY, now),
        "month" => (Unit::Month.bucket(now, tz), now),
        "last_month" => {
            let this = Unit::Month.bucket(now, tz);
            (Unit::Month.bucket(this - 1, tz), this)
        }
        "custom" => {
            let day = |s: &str, name: &str| -> Result<Millis, ApiError> {
                let d: Date = s.trim().parse().map_err(|_| {
                    ApiError::invalid(format!("{name} must be a date such as 2026-01-31"))
                })?;
                tz.to_ambiguous_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
                    .compatible()
                    .map(|t| t.as_millisecond())
                    .map_err(|_| ApiError::invalid(format!("{name} is out of range")))
            };
            (day(from, "from")?, day(to, "to")? + DAY)
        }
        other => {
            return Err(ApiError::invalid(format!(
                "range must be week, two_weeks, month, last_month or custom, not {other:?}"
            )));
        }
    };
    // An empty period (the first instant of a week) still asks for one second.
    Ok((start / 1000, (end / 1000).max(start / 1000 + 1)))
}

/// The page's query string without `all`, for its links.
fn query_of(q: &HashMap<String, String>) -> String {
    let pairs: Vec<(&str, &str)> = ["range", "from", "to"]
        .iter()
        .filter_map(|k| q.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

async fn account_zone(state: &AppState, viewer: &super::Viewer) -> TimeZone {
    let zone = fetch(state, viewer, "/account/info", json!({}))
        .await
        .ok()
        .and_then(|a| a["time_zone"].as_str().map(str::to_string))
        .unwrap_or_default();
    TimeZone::get(&zone).unwrap_or(TimeZone::UTC)
}

async fn page(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/insights").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let tz = account_zone(&state, &viewer).await;
    let range = q.get("range").map_or("week", String::as_str);
    let (from, to) = (
        q.get("from").cloned().unwrap_or_default(),
        q.get("to").cloned().unwrap_or_default(),
    );
    let (start, end) = match window(range, &from, &to, state.clock.now(), &tz) {
        Ok(w) => w,
        Err(e) => return page_error(&e),
    };
    let period = json!({"start_time": start, "end_time": end});
    let with = |extra: Value| {
        let mut body = period.clone();
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        body
    };
    let expanded = q.get("all").map_or("", String::as_str);
    let mut ctx = serde_json::Map::new();
    let account = match fetch(&state, &viewer, "/insight/account", period.clone()).await {
        Ok(a) => a["items"][0].clone(),
        Err(e) => return page_error(&e),
    };
    ctx.insert("account".into(), account);
    for (dim, path, order) in [
        ("team", "/insight/team", "total_incident_cnt"),
        ("channel", "/insight/channel", "total_incident_cnt"),
        ("responder", "/insight/responder", "total_incident_cnt"),
    ] {
        let rows = match fetch(&state, &viewer, path, with(json!({"orderby": order}))).await {
            Ok(d) => d["items"].as_array().cloned().unwrap_or_default(),
            Err(e) => return page_error(&e),
        };
        let total = rows.len();
        let shown: Vec<Value> = if expanded == dim {
            rows
        } else {
            rows.into_iter().take(TOP).collect()
        };
        ctx.insert(dim.into(), json!({"rows": shown, "total": total}));
    }
    for label in ["check", "resource"] {
        let top = match fetch(
            &state,
            &viewer,
            "/insight/alert/topk-by-label",
            with(json!({"label": label, "k": TOP_LABELS})),
        )
        .await
        {
            Ok(d) => d["items"].clone(),
            Err(e) => return page_error(&e),
        };
        ctx.insert(label.into(), top);
    }
    let me = match super::me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let page = context! {
        title => "Insights",
        nav => "insights",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        ranges => j(&RANGES),
        range => range,
        from => from,
        to => to,
        start => start,
        end => end,
        query => query_of(&q),
        top => TOP,
        d => j(&ctx),
    };
    page_headers(view::render("insights.html", page).into_response())
}

/// `GET /insights/export/{incident,team,channel,responder}?range=…`: the CSV of the period,
/// as `/insight/*/export` writes it.
async fn export(
    State(state): State<AppState>,
    Path(dim): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/insights/export/{dim}");
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if !["incident", "team", "channel", "responder"].contains(&dim.as_str()) {
        return page_error(&ApiError::invalid(format!(
            "exports are of incident, team, channel or responder, not {dim:?}"
        )));
    }
    let tz = account_zone(&state, &viewer).await;
    let range = q.get("range").map_or("week", String::as_str);
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let (start, end) = match window(range, get("from"), get("to"), state.clock.now(), &tz) {
        Ok(w) => w,
        Err(e) => return page_error(&e),
    };
    let path = format!("/insight/{dim}/export");
    let body = json!({"start_time": start, "end_time": end, "description_html_to_text": true});
    let data = match fetch(&state, &viewer, &path, body).await {
        Ok(d) => d,
        Err(e) => return page_error(&e),
    };
    let text = data["csv"].as_str().unwrap_or_default().to_string();
    let name = data["file_name"]
        .as_str()
        .unwrap_or("insight.csv")
        .to_string();
    let mut resp = page_headers(text.into_response());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_name_weeks_and_months_in_the_zone() {
        // spec: RSP-470 (this week, the last two weeks, this month, last month, custom)
        // Thursday 2026-01-15 10:00 UTC.
        let now: Millis = 1_768_471_200_000;
        let utc = TimeZone::UTC;
        let monday = 1_768_176_000; // 2026-01-12 00:00 UTC
        assert_eq!(
            window("week", "", "", now, &utc).unwrap(),
            (monday, now / 1000)
        );
        assert_eq!(
            window("two_weeks", "", "", now, &utc).unwrap().0,
            monday - 7 * 86_400
        );
        let jan = 1_767_225_600; // 2026-01-01 00:00 UTC
        assert_eq!(window("month", "", "", now, &utc).unwrap().0, jan);
        assert_eq!(
            window("last_month", "", "", now, &utc).unwrap(),
            (1_764_547_200, jan)
        );
        assert_eq!(
            window("custom", "2026-01-01", "2026-01-02", now, &utc).unwrap(),
            (jan, jan + 2 * 86_400)
        );
        // In Shanghai the month began 8 hours earlier.
        let sh = TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(window("month", "", "", now, &sh).unwrap().0, jan - 8 * 3600);
        assert!(window("custom", "yesterday", "", now, &utc).is_err());
        assert!(window("year", "", "", now, &utc).is_err());
    }
}
