//! Insights (response.md §2.27; docs/insights.md): one page with the account's figures for
//! a period, the team, channel and responder rankings (top 10, expandable to all rows, RSP-482)
//! and the top `check` and `resource` label values, with CSV downloads of each dimension
//! (RSP-483). Every figure comes from the `/insight/*` Open API calls, so the page and the API
//! cannot disagree.
//!
//! The page filters by period and, optionally, teams, channels and severities (RSP-470). The
//! member's last choice is stored for them alone (`member_insight_filters`) and is what the
//! page shows when opened without one.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
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

/// The severities an incident can have (the filter's choices).
const SEVERITIES: [&str; 3] = ["Critical", "Warning", "Info"];

/// A filter choice of the page (RSP-470): the period, and the teams, channels and
/// severities to keep (none given: all). Stored as JSON for the member who made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Choice {
    range: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    team_ids: Vec<i64>,
    #[serde(default)]
    channel_ids: Vec<i64>,
    #[serde(default)]
    severities: Vec<String>,
}

impl Default for Choice {
    /// This week, everything: the page of a member who never chose.
    fn default() -> Choice {
        Choice {
            range: "week".into(),
            from: String::new(),
            to: String::new(),
            team_ids: Vec::new(),
            channel_ids: Vec::new(),
            severities: Vec::new(),
        }
    }
}

impl Choice {
    /// The choice a query string makes (`range`, `from`, `to`, and `team`, `channel`,
    /// `severity` repeated); `None` when it names no period (the stored choice applies).
    fn from_query(pairs: &[(String, String)]) -> Result<Option<Choice>, ApiError> {
        let one = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.trim().to_string())
        };
        let Some(range) = one("range") else {
            return Ok(None);
        };
        let all = |k: &'static str| {
            pairs
                .iter()
                .filter(move |(n, v)| n == k && !v.trim().is_empty())
                .map(|(_, v)| v.trim())
        };
        let ids = |k: &'static str| -> Result<Vec<i64>, ApiError> {
            let mut out = all(k)
                .map(|v| {
                    v.parse::<i64>()
                        .ok()
                        .filter(|id| *id > 0)
                        .ok_or_else(|| ApiError::invalid(format!("{k} must be an id, not {v:?}")))
                })
                .collect::<Result<Vec<i64>, ApiError>>()?;
            out.sort_unstable();
            out.dedup();
            Ok(out)
        };
        let mut severities = Vec::new();
        for v in all("severity") {
            let Some(known) = SEVERITIES.iter().find(|s| s.eq_ignore_ascii_case(v)) else {
                return Err(ApiError::invalid(format!(
                    "severity must be Critical, Warning or Info, not {v:?}"
                )));
            };
            if !severities.iter().any(|s| s == known) {
                severities.push((*known).to_string());
            }
        }
        Ok(Some(Choice {
            range,
            from: one("from").unwrap_or_default(),
            to: one("to").unwrap_or_default(),
            team_ids: ids("team")?,
            channel_ids: ids("channel")?,
            severities,
        }))
    }

    /// The query string of this choice, for the page's links and downloads.
    fn query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = vec![("range", self.range.clone())];
        if self.range == "custom" {
            pairs.push(("from", self.from.clone()));
            pairs.push(("to", self.to.clone()));
        }
        pairs.extend(self.team_ids.iter().map(|id| ("team", id.to_string())));
        pairs.extend(
            self.channel_ids
                .iter()
                .map(|id| ("channel", id.to_string())),
        );
        pairs.extend(self.severities.iter().map(|s| ("severity", s.clone())));
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// The `/insight/*` filter block of this choice over `[start, end)`.
    fn body(&self, (start, end): (i64, i64)) -> Value {
        let mut body = json!({"start_time": start, "end_time": end});
        if !self.team_ids.is_empty() {
            body["team_ids"] = json!(self.team_ids);
        }
        if !self.channel_ids.is_empty() {
            body["channel_ids"] = json!(self.channel_ids);
        }
        if !self.severities.is_empty() {
            body["severities"] = json!(self.severities);
        }
        body
    }

    fn window(&self, now: Millis, tz: &TimeZone) -> Result<(i64, i64), ApiError> {
        window(&self.range, &self.from, &self.to, now, tz)
    }
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default()
}

/// The choice the page shows: the query's (stored as the member's last choice once it
/// proves valid), else the member's stored one, else this week.
async fn choose(
    state: &AppState,
    viewer: &super::Viewer,
    pairs: &[(String, String)],
    tz: &TimeZone,
    remember: bool,
) -> Result<(Choice, (i64, i64)), ApiError> {
    let now = state.clock.now();
    let (account_id, member_id) = (viewer.caller.account_id, viewer.caller.member_id);
    if let Some(choice) = Choice::from_query(pairs)? {
        let w = choice.window(now, tz)?;
        if remember {
            let text = serde_json::to_string(&choice).unwrap_or_default();
            if let Err(e) = state
                .store
                .set_member_insight_filter(account_id, member_id, &text, now)
                .await
            {
                // The page still shows; only the remembering failed.
                tracing::warn!(error = %e, "cannot store the member's insights filter");
            }
        }
        return Ok((choice, w));
    }
    let stored = state
        .store
        .member_insight_filter(account_id, member_id)
        .await
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str::<Choice>(&t).ok());
    // A stored choice that no longer makes a period (it was checked when stored) falls back
    // to this week rather than locking the member out of the page.
    if let Some(choice) = stored
        && let Ok(w) = choice.window(now, tz)
    {
        return Ok((choice, w));
    }
    let choice = Choice::default();
    let w = choice.window(now, tz)?;
    Ok((choice, w))
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/insights").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let tz = account_zone(&state, &viewer).await;
    let pairs = query_pairs(raw.as_deref());
    let q: HashMap<String, String> = pairs.iter().cloned().collect();
    let (choice, (start, end)) = match choose(&state, &viewer, &pairs, &tz, true).await {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let period = choice.body((start, end));
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
    // The filter's choices: the account's teams and channels the member may see.
    let mut options = Vec::new();
    for path in ["/team/list", "/channel/list"] {
        match fetch(&state, &viewer, path, json!({"limit": 100})).await {
            Ok(d) => options.push(d["items"].as_array().cloned().unwrap_or_default()),
            Err(e) => return page_error(&e),
        }
    }
    let channels = options.pop().unwrap_or_default();
    let teams = options.pop().unwrap_or_default();
    let page = context! {
        title => "Insights",
        nav => "insights",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        ranges => j(&RANGES),
        range => choice.range.clone(),
        from => choice.from.clone(),
        to => choice.to.clone(),
        choice => j(&choice),
        teams => j(&teams),
        channels => j(&channels),
        severities => SEVERITIES.to_vec(),
        start => start,
        end => end,
        query => choice.query(),
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
    RawQuery(raw): RawQuery,
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
    // A download is of the page's choice; it does not change what the member remembers.
    let pairs = query_pairs(raw.as_deref());
    let (choice, w) = match choose(&state, &viewer, &pairs, &tz, false).await {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let path = format!("/insight/{dim}/export");
    let mut body = choice.body(w);
    body["description_html_to_text"] = json!(true);
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

    fn pairs(q: &str) -> Vec<(String, String)> {
        query_pairs(Some(q))
    }

    // spec: RSP-470
    #[test]
    fn a_choice_is_read_from_repeated_filters_and_written_back() {
        assert_eq!(Choice::from_query(&pairs("all=team")).unwrap(), None);
        let c = Choice::from_query(&pairs(
            "range=last_month&team=7&team=3&team=7&channel=&severity=critical&severity=Info",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(c.team_ids, vec![3, 7]);
        assert!(c.channel_ids.is_empty(), "an empty choice is no filter");
        assert_eq!(c.severities, vec!["Critical", "Info"]);
        assert_eq!(
            c.query(),
            "range=last_month&team=3&team=7&severity=Critical&severity=Info"
        );
        assert_eq!(Choice::from_query(&pairs(&c.query())).unwrap().unwrap(), c);
        assert_eq!(
            c.body((1, 2)),
            json!({"start_time": 1, "end_time": 2, "team_ids": [3, 7],
                   "severities": ["Critical", "Info"]})
        );
        let custom = Choice::from_query(&pairs("range=custom&from=2026-01-01&to=2026-01-02"))
            .unwrap()
            .unwrap();
        assert_eq!(custom.query(), "range=custom&from=2026-01-01&to=2026-01-02");
        for bad in [
            "range=week&team=x",
            "range=week&channel=-1",
            "range=week&severity=Ok",
        ] {
            assert!(Choice::from_query(&pairs(bad)).is_err(), "{bad}");
        }
        // The stored form reads back, and an old row without filters is this period only.
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Choice>(&text).unwrap(), c);
        let old: Choice = serde_json::from_str(r#"{"range":"month"}"#).unwrap();
        assert_eq!(old.body((1, 2)), json!({"start_time": 1, "end_time": 2}));
    }
}
