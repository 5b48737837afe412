//! The incident list (response.md §2.28) and the incident detail page (RSP-508) with their
//! actions. Reads and actions are Open API calls ([`super::call`]): `/incident/list`,
//! `/incident/info`, `/incident/feed`, `/incident/ack`, … — the console adds presentation
//! only.

use std::collections::{BTreeSet, HashMap};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::ApiError;
use minijinja::context;
use serde_json::{Value, json};

use super::{Viewer, call, fetch, page_error, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(list_page))
        .route("/incidents/results", get(results))
        .route("/incidents/batch", post(batch))
        .route("/incidents/columns", post(super::list_columns::save))
        .route("/channels/{cid}/incidents", get(channel_list_page))
        .route("/channels/{cid}/incidents/results", get(channel_results))
        .route("/channels/{cid}/incidents/batch", post(channel_batch))
        .route("/incident/detail/{id}", get(detail_page))
        .route("/incident/detail/{id}/{action}", post(action))
}

/// The console pages 100 incidents at a time (the Open API's largest page).
const PAGE: i64 = 100;
/// RSP-504: past 1000 matches the console shows `1000+` and pages through the first 1000.
const SHOWN_MAX: i64 = 1000;

const PROGRESS: [&str; 3] = ["Triggered", "Processing", "Closed"];
const SEVERITIES: [&str; 3] = ["Critical", "Warning", "Info"];
/// Time ranges offered, all shorter than 31 days (RSP-502); the default is 7 days (RSP-501).
const RANGES: [(&str, &str, i64); 5] = [
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("14d", "Last 14 days", 14 * 86_400),
    ("30d", "Last 30 days", 30 * 86_400),
];
const DEFAULT_RANGE: &str = "7d";

/// The list's filters, as they appear in the page's query string.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Filters {
    pub(super) progress: Vec<String>,
    pub(super) severity: Vec<String>,
    pub(super) channel: Option<String>,
    /// Incidents of the channels a team owns or manages (RSP-503).
    pub(super) team: Option<String>,
    /// Label filters (RSP-503), each `name=pattern`: exact, wildcard (`db-*`) or regex
    /// (`/^db/`); several patterns of one label mean any of them.
    pub(super) labels: Vec<String>,
    /// `me` (the default, RSP-501: "assigned to me") or `all`.
    pub(super) who: String,
    pub(super) range: String,
    /// An incident id, a `num`, or part of a title.
    pub(super) q: String,
    /// Custom field filters (RSP-503): `field.<name>=<value>`, in the order given; several
    /// values of one field mean any of them.
    pub(super) fields: Vec<(String, String)>,
    pub(super) p: i64,
}

impl Filters {
    pub(super) fn parse(query: Option<&str>) -> Filters {
        let pairs: Vec<(String, String)> = query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let all = |name: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect()
        };
        let one = |name: &str| all(name).pop();
        Filters {
            progress: all("progress"),
            severity: all("severity"),
            channel: one("channel"),
            team: one("team"),
            labels: all("label")
                .into_iter()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            who: match one("who").as_deref() {
                Some("all") => "all".to_string(),
                _ => "me".to_string(),
            },
            range: one("range")
                .filter(|r| RANGES.iter().any(|(k, _, _)| k == r))
                .unwrap_or_else(|| DEFAULT_RANGE.to_string()),
            q: one("q").map(|q| q.trim().to_string()).unwrap_or_default(),
            fields: pairs
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .filter_map(|(k, v)| {
                    let name = k.strip_prefix("field.").filter(|n| !n.is_empty())?;
                    Some((name.to_string(), v.clone()))
                })
                .collect(),
            p: one("p")
                .and_then(|p| p.parse().ok())
                .filter(|p| *p >= 1)
                .unwrap_or(1),
        }
    }

    /// The query string of these filters (page `p` included when past the first).
    pub(super) fn query(&self, p: i64) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for v in &self.progress {
            pairs.push(("progress", v.clone()));
        }
        for v in &self.severity {
            pairs.push(("severity", v.clone()));
        }
        if let Some(c) = &self.channel {
            pairs.push(("channel", c.clone()));
        }
        if let Some(t) = &self.team {
            pairs.push(("team", t.clone()));
        }
        for l in &self.labels {
            pairs.push(("label", l.clone()));
        }
        pairs.push(("who", self.who.clone()));
        pairs.push(("range", self.range.clone()));
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        let fields: Vec<(String, String)> = self
            .fields
            .iter()
            .map(|(name, v)| (format!("field.{name}"), v.clone()))
            .collect();
        for (k, v) in &fields {
            pairs.push((k.as_str(), v.clone()));
        }
        if p > 1 {
            pairs.push(("p", p.to_string()));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    /// The `/incident/list` body for these filters; the API checks every value.
    pub(super) fn args(&self, now_secs: i64, member_id: i64) -> Value {
        let span = RANGES
            .iter()
            .find(|(k, _, _)| *k == self.range)
            .map_or(7 * 86_400, |(_, _, s)| *s);
        let mut body = json!({
            "start_time": now_secs - span,
            // One second past now: an incident that started this second is inside.
            "end_time": now_secs + 1,
            "p": self.p.min(SHOWN_MAX / PAGE),
            "limit": PAGE,
        });
        let obj = body.as_object_mut();
        if let Some(obj) = obj {
            if !self.progress.is_empty() {
                obj.insert("progress".into(), json!(self.progress.join(",")));
            }
            if !self.severity.is_empty() {
                obj.insert("incident_severity".into(), json!(self.severity.join(",")));
            }
            if let Some(c) = &self.channel {
                // A non-number goes through as text, so the API names the bad field.
                let v = c.parse::<i64>().map_or_else(|_| json!([c]), |n| json!([n]));
                obj.insert("channel_ids".into(), v);
            }
            if let Some(t) = &self.team {
                let v = t.parse::<i64>().map_or_else(|_| json!([t]), |n| json!([n]));
                obj.insert("team_ids".into(), v);
            }
            if !self.labels.is_empty() {
                // `name=pattern`; text without `=` goes through as a nameless label, so the
                // API says what is missing.
                let mut by_name = serde_json::Map::new();
                for l in &self.labels {
                    let (name, pattern) = l.split_once('=').unwrap_or(("", l.as_str()));
                    let entry = by_name
                        .entry(name.trim().to_string())
                        .or_insert_with(|| json!([]));
                    if let Some(list) = entry.as_array_mut() {
                        list.push(json!(pattern.trim()));
                    }
                }
                obj.insert("labels".into(), Value::Object(by_name));
            }
            if self.who == "me" {
                obj.insert("responder_ids".into(), json!([member_id]));
            }
            if !self.q.is_empty() {
                obj.insert("query".into(), json!(self.q));
            }
            if !self.fields.is_empty() {
                // `fields{name: [values]}`: the API checks that each names a select or
                // checkbox field.
                let mut by_name = serde_json::Map::new();
                for (name, v) in &self.fields {
                    let entry = by_name.entry(name.clone()).or_insert_with(|| json!([]));
                    if let Some(list) = entry.as_array_mut() {
                        list.push(json!(v));
                    }
                }
                obj.insert("fields".into(), Value::Object(by_name));
            }
        }
        body
    }
}

/// A JSON answer of the Open API as a template value.
pub(super) fn j<T: serde::Serialize>(v: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

pub(super) fn now_secs(state: &AppState) -> i64 {
    state.clock.now().div_euclid(1000)
}

/// Adds the headers every console page carries.
pub(super) fn page_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    // Incident data must not outlive the session in a shared browser's cache.
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    resp
}

/// Which of the two lists (RSP-500): the global incident list, or one channel's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Scope {
    pub(super) channel: Option<i64>,
}

impl Scope {
    pub(super) const GLOBAL: Scope = Scope { channel: None };

    /// The list's own address.
    pub(super) fn path(&self) -> String {
        match self.channel {
            Some(c) => format!("/channels/{c}/incidents"),
            None => "/incidents".to_string(),
        }
    }

    /// The filters of a request. The channel list is fixed to its channel, and opened
    /// without filters it shows everyone's open incidents (RSP-501: Triggered and
    /// Processing); once filtered (the query names a time range) it shows what was chosen.
    pub(super) fn filters(&self, query: Option<&str>) -> Filters {
        let mut f = Filters::parse(query);
        if let Some(c) = self.channel {
            let filtered = query.is_some_and(|q| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                    .unwrap_or_default()
                    .iter()
                    .any(|(k, _)| k == "range")
            });
            if !filtered {
                f.progress = vec!["Triggered".to_string(), "Processing".to_string()];
                f.who = "all".to_string();
            }
            f.channel = Some(c.to_string());
        }
        f
    }
}

/// The channel id of a `/channels/{cid}/incidents…` path.
fn scope_of(raw: &str) -> Result<Scope, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|c| *c > 0)
        .map(|c| Scope { channel: Some(c) })
        .ok_or_else(|| {
            ApiError::new(
                klaxon_core::error::ErrorCode::ResourceNotFound,
                format!("no channel {raw:?}"),
            )
        })
}

/// Everything `results.html` draws: one page of matches, or the error the API gave.
async fn results_ctx(
    state: &AppState,
    viewer: &Viewer,
    filters: &Filters,
    scope: Scope,
    flash: Option<String>,
    flash_error: Option<String>,
) -> minijinja::Value {
    let now = now_secs(state);
    let answer = fetch(
        state,
        viewer,
        "/incident/list",
        filters.args(now, viewer.caller.member_id),
    )
    .await;
    let (items, total, error) = match answer {
        Ok(data) => (
            data["items"].as_array().cloned().unwrap_or_default(),
            data["total"].as_i64().unwrap_or(0),
            None,
        ),
        Err(e) => (Vec::new(), 0, Some(e.message)),
    };
    let p = filters.p.min(SHOWN_MAX / PAGE);
    let last_page = (total.min(SHOWN_MAX) + PAGE - 1) / PAGE;
    let (columns, items) = super::list_columns::cells(state, viewer, items, now).await;
    context! {
        items => j(&items),
        columns => j(&columns),
        list_path => scope.path(),
        total => total,
        total_text => if total > SHOWN_MAX { format!("{SHOWN_MAX}+") } else { total.to_string() },
        error => error,
        flash => flash,
        flash_error => flash_error,
        now => now,
        query => filters.query(p),
        prev_query => (p > 1).then(|| filters.query(p - 1)),
        next_query => (p < last_page).then(|| filters.query(p + 1)),
        page => p,
        pages => last_page,
        who => filters.who.clone(),
        everyone_query => Filters { who: "all".to_string(), p: 1, ..filters.clone() }.query(1),
    }
}

async fn list_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    list(&state, query, &headers, Scope::GLOBAL).await
}

async fn channel_list_page(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let next = format!("/channels/{cid}/incidents");
    let scope = match scope_of(&cid) {
        Ok(s) => s,
        Err(e) => {
            // Signed in first, so a stranger learns nothing about channels.
            if let Err(resp) = viewer(&state, &Method::GET, &headers, &next).await {
                return resp;
            }
            return page_error(&e);
        }
    };
    list(&state, query, &headers, scope).await
}

/// The incident list page of `scope` (RSP-500).
async fn list(
    state: &AppState,
    query: Option<String>,
    headers: &HeaderMap,
    scope: Scope,
) -> Response {
    let next = match &query {
        Some(q) => format!("{}?{q}", scope.path()),
        None => scope.path(),
    };
    let viewer = match viewer(state, &Method::GET, headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let filters = scope.filters(query.as_deref());
    // The channel list names its channel; an unknown or hidden one is not found.
    let scoped_channel = match scope.channel {
        Some(c) => match fetch(state, &viewer, "/channel/info", json!({"channel_id": c})).await {
            Ok(info) => Some(info),
            Err(e) => return page_error(&e),
        },
        None => None,
    };
    let channels = match fetch(state, &viewer, "/channel/list", json!({"limit": 100})).await {
        Ok(data) => data["items"].as_array().cloned().unwrap_or_default(),
        Err(e) => return page_error(&e),
    };
    let me = match super::me(state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    // RSP-503: select and checkbox fields can filter (text fields cannot). Someone who may
    // not read the field definitions gets the list without them.
    let fields: Vec<Value> = fetch(state, &viewer, "/field/list", json!({}))
        .await
        .map(|d| d["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d["field_type"] != "text")
        .map(|d| {
            let name = d["field_name"].as_str().unwrap_or("").to_string();
            let chosen = filters
                .fields
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let options: Vec<(String, String)> = if d["field_type"] == "checkbox" {
                vec![("true".into(), "Yes".into()), ("false".into(), "No".into())]
            } else {
                d["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|o| (o.to_string(), o.to_string()))
                    .collect()
            };
            let label = d["display_name"]
                .as_str()
                .filter(|l| !l.is_empty())
                .unwrap_or(&name)
                .to_string();
            json!({"name": name, "label": label, "options": options, "chosen": chosen})
        })
        .collect();
    // Someone who may not list teams gets the list without the team filter.
    let teams: Vec<Value> = fetch(state, &viewer, "/team/list", json!({"limit": 100}))
        .await
        .map(|d| d["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let results = results_ctx(state, &viewer, &filters, scope, None, None).await;
    let picker = super::list_columns::picker_ctx(
        state,
        &viewer,
        &format!("{}?{}", scope.path(), filters.query(filters.p)),
        None,
    )
    .await;
    let title = match &scoped_channel {
        Some(c) => format!("Incidents of {}", c["channel_name"].as_str().unwrap_or("")),
        None => "Incidents".to_string(),
    };
    let ctx = context! {
        title => title,
        scope_channel => scoped_channel.as_ref().map(j),
        list_path => scope.path(),
        cols => picker,
        fields => j(&fields),
        teams => j(&teams),
        nav => "incidents",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        channels => j(&channels),
        progress_options => PROGRESS,
        severity_options => SEVERITIES,
        ranges => RANGES.iter().map(|(k, l, _)| (k.to_string(), l.to_string())).collect::<Vec<_>>(),
        f => context! {
            progress => filters.progress.clone(),
            severity => filters.severity.clone(),
            channel => filters.channel.clone().unwrap_or_default(),
            team => filters.team.clone().unwrap_or_default(),
            labels => filters.labels.clone(),
            who => filters.who.clone(),
            range => filters.range.clone(),
            q => filters.q.clone(),
        },
        r => results,
    };
    page_headers(view::render("incidents.html", ctx).into_response())
}

/// The results fragment: polled every few seconds for live updates, and fetched when a filter
/// changes (then the address bar follows the filters through `HX-Push-Url`).
async fn results(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    results_of(&state, query, &headers, Scope::GLOBAL).await
}

async fn channel_results(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match scope_of(&cid) {
        Ok(scope) => results_of(&state, query, &headers, scope).await,
        Err(e) => super::error_text(&e),
    }
}

async fn results_of(
    state: &AppState,
    query: Option<String>,
    headers: &HeaderMap,
    scope: Scope,
) -> Response {
    let filters = scope.filters(query.as_deref());
    let viewer = match viewer(
        state,
        &Method::GET,
        headers,
        &format!("{}?{}", scope.path(), filters.query(filters.p)),
    )
    .await
    {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let ctx = results_ctx(state, &viewer, &filters, scope, None, None).await;
    let mut resp =
        page_headers(view::render("results.html", context! { r => ctx }).into_response());
    let from_filters = headers
        .get("hx-trigger")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t == "filters" || t == "q");
    if from_filters
        && let Ok(v) =
            HeaderValue::from_str(&format!("{}?{}", scope.path(), filters.query(filters.p)))
    {
        resp.headers_mut().insert("hx-push-url", v);
    }
    resp
}

pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

pub(crate) fn form_value(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The per-incident outcome of a batch action (`data.items` of the API), as one line each for
/// the failures.
fn batch_failures(data: &Value) -> Vec<String> {
    data["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| i["ok"] == Value::Bool(false))
                .map(|i| {
                    format!(
                        "{}: {}",
                        i["incident_id"].as_str().unwrap_or(""),
                        i["error"]["message"].as_str().unwrap_or("failed")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Acknowledge or close the ticked incidents (`/incident/ack`, `/incident/close`, each
/// incident on its own, RSP-121), then redraw the results with what happened.
async fn batch(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    batch_in(&state, query, &headers, &body, Scope::GLOBAL).await
}

async fn channel_batch(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match scope_of(&cid) {
        Ok(scope) => batch_in(&state, query, &headers, &body, scope).await,
        Err(e) => super::error_text(&e),
    }
}

async fn batch_in(
    state: &AppState,
    query: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
    scope: Scope,
) -> Response {
    let viewer = match viewer(state, &Method::POST, headers, &scope.path()).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let filters = scope.filters(query.as_deref());
    let pairs = form_pairs(body);
    let ids: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k == "incident_ids" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (path, done) = match form_value(&pairs, "action").as_str() {
        "ack" => ("/incident/ack", "acknowledged"),
        "close" => ("/incident/close", "closed"),
        other => {
            let e = format!("action: unknown batch action {other:?}");
            let ctx = results_ctx(state, &viewer, &filters, scope, None, Some(e)).await;
            return page_headers(
                (
                    StatusCode::BAD_REQUEST,
                    view::render("results.html", context! { r => ctx }),
                )
                    .into_response(),
            );
        }
    };
    let (flash, flash_error) = if ids.is_empty() {
        (
            None,
            Some("Select one or more incidents first.".to_string()),
        )
    } else {
        let n = ids.len();
        match call(state, &viewer, path, json!({"incident_ids": ids})).await {
            Ok(None) => (
                Some(format!(
                    "{n} incident{} {done}.",
                    if n == 1 { "" } else { "s" }
                )),
                None,
            ),
            Ok(Some(data)) => {
                let failed = batch_failures(&data);
                let ok = n.saturating_sub(failed.len());
                (
                    (ok > 0).then(|| format!("{ok} of {n} incidents {done}.")),
                    Some(failed.join("; ")),
                )
            }
            Err(e) => (None, Some(e.message)),
        }
    };
    state.wake_senders();
    let ctx = results_ctx(state, &viewer, &filters, scope, flash, flash_error).await;
    page_headers(view::render("results.html", context! { r => ctx }).into_response())
}

/// The names of the people an incident mentions (`/person/infos`).
pub(super) async fn names(
    state: &AppState,
    viewer: &Viewer,
    ids: BTreeSet<i64>,
) -> HashMap<String, String> {
    let ids: Vec<i64> = ids.into_iter().filter(|id| *id > 0).take(100).collect();
    if ids.is_empty() {
        return HashMap::new();
    }
    match fetch(state, viewer, "/person/infos", json!({"person_ids": ids})).await {
        Ok(data) => data["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|p| {
                        (
                            p["person_id"].as_i64().unwrap_or(0).to_string(),
                            p["person_name"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) => HashMap::new(),
    }
}

/// What a timeline entry says, in words.
fn feed_text(kind: &str) -> &'static str {
    match kind {
        "i_new" => "Incident triggered",
        "i_ack" => "Acknowledged",
        "i_unack" => "Acknowledgement withdrawn",
        "i_rslv" => "Closed",
        "i_reopen" => "Reopened",
        "i_snooze" => "Snoozed",
        "i_wake" => "Woken from snooze",
        "i_comm" => "Comment",
        "i_notify" => "Notification",
        "i_assign" => "Assigned",
        "i_a_rspd" => "Responders added",
        "i_merge" => "Merged",
        "i_storm" => "Alert storm",
        "i_m_flapping" => "Flapping",
        "i_r_title" => "Title changed",
        "i_r_desc" => "Description changed",
        "i_r_severity" => "Severity changed",
        "i_r_impact" => "Impact changed",
        "i_r_rc" => "Root cause changed",
        "i_r_rsltn" => "Resolution changed",
        "i_r_field" => "Custom field changed",
        "i_custom" => "Custom action run",
        "i_wr_create" => "War room created",
        "i_wr_delete" => "War room dissolved",
        _ => "Event",
    }
}

/// `text` with its first letter upper-cased, for a banner.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Form input kept after a failed action, with the error beside its field.
#[derive(Default)]
struct Outcome {
    flash: Option<String>,
    error: Option<String>,
    /// `comment` or `minutes`: the field `error` belongs to.
    error_field: Option<&'static str>,
    comment: String,
    minutes: String,
    /// The people ticked in the reassign form, kept when it is refused.
    assignees: Vec<String>,
    /// The incident chosen in the merge form, kept when it is refused.
    merge_target: String,
    /// The people ticked in the add-responders form, kept when it is refused.
    adders: Vec<String>,
    /// The level chosen in the escalate form, kept when it is refused.
    layer_idx: String,
    /// The custom field form that was refused, with its values.
    field: super::incident_fields::Kept,
}

/// RSP-114: the levels "Escalate" may go to — offered only when the incident is open, its
/// assignment names an escalation rule, and that rule still exists (`/channel/escalate/rule/info`
/// finds it). Every level but the current one (RSP-113), each with its number and targets.
async fn escalation_levels(state: &AppState, viewer: &Viewer, incident: &Value) -> Option<Value> {
    if incident["progress"] == "Closed" {
        return None;
    }
    let assigned = &incident["assigned_to"];
    let rule_id = assigned["escalate_rule_id"]
        .as_str()
        .filter(|r| !r.is_empty())?;
    let rule = fetch(
        state,
        viewer,
        "/channel/escalate/rule/info",
        json!({"rule_id": rule_id}),
    )
    .await
    .ok()?;
    let current = assigned["layer_idx"].as_i64().unwrap_or(-1);
    let levels: Vec<Value> = rule["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(k, _)| i64::try_from(k).ok())
        .filter(|k| *k != current)
        .map(|k| json!({"idx": k, "label": format!("Level {}", k + 1)}))
        .collect();
    if levels.is_empty() {
        // A one-level rule has nowhere else to go.
        return None;
    }
    Some(json!({
        "rule_id": rule_id,
        "rule_name": rule["rule_name"],
        "current": current,
        "levels": levels,
    }))
}

/// Open incidents of the last 30 days (other than `id`) this one can be merged into.
async fn merge_candidates(state: &AppState, viewer: &Viewer, id: &str) -> Vec<Value> {
    let now = now_secs(state);
    let args = json!({
        "start_time": now - 30 * 86_400,
        "end_time": now + 1,
        "progress": "Triggered,Processing",
        "limit": PAGE,
    });
    match fetch(state, viewer, "/incident/list", args).await {
        Ok(data) => data["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["incident_id"].as_str() != Some(id))
            .map(|i| {
                json!({
                    "incident_id": i["incident_id"],
                    "num": i["num"],
                    "title": i["title"],
                })
            })
            .collect(),
        // The merge form is then empty; the rest of the page still draws.
        Err(_) => Vec::new(),
    }
}

/// The detail's context, or the API's error (unknown incident, …).
async fn detail_ctx(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    tab: &Tab,
    outcome: Outcome,
) -> Result<minijinja::Value, ApiError> {
    let incident = fetch(state, viewer, "/incident/info", json!({"incident_id": id})).await?;
    // RSP-430: "Create war room" only when the account has a war-room integration.
    let war_room_ready = crate::war_room::war_room_integration(state, viewer.caller.account_id)
        .await
        .is_ok();
    let tabs = tabs_of(&incident);
    // A tab the incident does not have (the outcome of an open one) falls back to the overview.
    let shown = if tabs.iter().any(|(k, _)| *k == tab.key) {
        tab.key
    } else {
        "overview"
    };
    let alerts = fetch(
        state,
        viewer,
        "/incident/alert/list",
        json!({"incident_id": id, "limit": 100}),
    )
    .await?;
    let feed = fetch(
        state,
        viewer,
        "/incident/feed",
        json!({"incident_id": id, "limit": 100}),
    )
    .await?;
    let sent = fetch(
        state,
        viewer,
        "/incident/notification/list",
        json!({"incident_id": id, "limit": 100}),
    )
    .await?;
    let mut people: BTreeSet<i64> = BTreeSet::new();
    for r in incident["responders"].as_array().into_iter().flatten() {
        people.insert(r["person_id"].as_i64().unwrap_or(0));
    }
    for e in feed["items"].as_array().into_iter().flatten() {
        people.insert(e["creator_id"].as_i64().unwrap_or(0));
    }
    for n in sent["items"].as_array().into_iter().flatten() {
        people.insert(n["person_id"].as_i64().unwrap_or(0));
    }
    for k in ["creator_id", "closer_id"] {
        people.insert(incident[k].as_i64().unwrap_or(0));
    }
    for e in feed["items"].as_array().into_iter().flatten() {
        if e["type"] == "i_assign" {
            for p in e["detail"]["to"].as_array().into_iter().flatten() {
                people.insert(p.as_i64().unwrap_or(0));
            }
        }
    }
    let names = names(state, viewer, people).await;
    let history = history(&feed["items"], &names);
    let timeline: Vec<Value> = feed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let kind = e["type"].as_str().unwrap_or("");
            json!({
                "kind": kind,
                "text": feed_text(kind),
                // The feed's instants are milliseconds.
                "at": e["created_at"].as_i64().unwrap_or(0).div_euclid(1000),
                "creator_id": e["creator_id"],
                "detail": e["detail"],
            })
        })
        .collect();
    let past = if shown == "past" {
        fetch(
            state,
            viewer,
            "/incident/past/list",
            json!({"incident_id": id}),
        )
        .await?["items"]
            .clone()
    } else {
        Value::Array(Vec::new())
    };
    let snoozed = incident["snoozed_before"].as_i64().unwrap_or(0) > now_secs(state);
    let members = fetch(state, viewer, "/member/list", json!({"limit": 100}))
        .await
        .map(|m| m["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let candidates = if incident["progress"] == "Closed" {
        Vec::new()
    } else {
        merge_candidates(state, viewer, id).await
    };
    let escalation = escalation_levels(state, viewer, &incident).await;
    // Someone who may not read the custom fields (RSP-521) sees none.
    let defs = fetch(state, viewer, "/field/list", json!({}))
        .await
        .map(|f| f["items"].clone())
        .unwrap_or(Value::Null);
    let fields = super::incident_fields::rows(&defs, &incident, &outcome.field);
    let field_name = outcome.field.field_name.clone();
    Ok(context! {
        i => j(&incident),
        alerts => j(&alerts["items"]),
        timeline => j(&timeline),
        notifications => j(&sent["items"]),
        names => names,
        now => now_secs(state),
        snoozed => snoozed,
        flash => outcome.flash,
        error => outcome.error,
        error_field => outcome.error_field,
        comment => outcome.comment,
        minutes => if outcome.minutes.is_empty() { "60".to_string() } else { outcome.minutes },
        members => j(&members),
        assignees => outcome.assignees,
        candidates => j(&candidates),
        merge_target => outcome.merge_target,
        adders => outcome.adders,
        layer_idx => outcome.layer_idx,
        escalation => escalation.map(|e| j(&e)),
        fields => j(&fields),
        field_name => field_name,
        tab => shown,
        tab_chosen => tab.chosen,
        tabs => tabs.iter().map(|(k, l)| context! { key => *k, label => *l }).collect::<Vec<_>>(),
        history => j(&history),
        past => j(&past),
        // RSP-430: the war-room buttons are offered to those with Incidents Manage.
        manage_incidents => viewer.caller.actor.is_owner
            || viewer.caller.actor.points.grants(klaxon_core::permissions::Point::IncidentsManage),
        war_room_ready => war_room_ready,
    })
}

/// The tab of the detail page a request asks for (RSP-508), and whether the person chose it
/// (then the tab link keeps the keyboard focus after the swap).
#[derive(Debug, Clone, PartialEq)]
struct Tab {
    key: &'static str,
    chosen: bool,
}

impl Tab {
    /// `?tab=` of a query string; `fallback` when absent or unknown.
    fn parse(query: Option<&str>, fallback: &'static str) -> Tab {
        let asked = query
            .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "tab").map(|(_, v)| v));
        match asked.and_then(|a| TABS.iter().find(|(k, _)| *k == a)) {
            Some((k, _)) => Tab {
                key: k,
                chosen: true,
            },
            None => Tab {
                key: fallback,
                chosen: false,
            },
        }
    }
}

/// RSP-508: the tabs of the detail page, in order; the root cause and resolution only for a
/// closed incident.
const TABS: [(&str, &str); 6] = [
    ("overview", "Overview"),
    ("alerts", "Alerts"),
    ("timeline", "Timeline"),
    ("history", "Change history"),
    ("past", "Past incidents"),
    ("outcome", "Root cause and resolution"),
];

fn tabs_of(incident: &Value) -> Vec<(&'static str, &'static str)> {
    TABS.iter()
        .copied()
        .filter(|(k, _)| *k != "outcome" || incident["progress"] == "Closed")
        .collect()
}

/// RSP-508: the change history is the feed's `i_r_*` and `i_assign` entries, each with what
/// changed in words.
fn history(feed: &Value, names: &HashMap<String, String>) -> Vec<Value> {
    let quoted = |v: &Value| match v {
        Value::String(s) if s.is_empty() => "(empty)".to_string(),
        Value::String(s) => format!("“{s}”"),
        Value::Null => "(empty)".to_string(),
        other => other.to_string(),
    };
    feed.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let kind = e["type"].as_str().unwrap_or("");
            let d = &e["detail"];
            let change = if kind == "i_assign" {
                let to: Vec<String> = d["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let id = p.as_i64().unwrap_or(0).to_string();
                        names
                            .get(&id)
                            .filter(|n| !n.is_empty())
                            .cloned()
                            .unwrap_or_else(|| format!("member {id}"))
                    })
                    .collect();
                let rule = d["escalate_rule_name"].as_str().filter(|r| !r.is_empty());
                match (rule, to.is_empty()) {
                    (Some(r), _) => format!(
                        "{r}, level {}: {}",
                        d["layer_idx"].as_i64().unwrap_or(0) + 1,
                        if to.is_empty() {
                            "nobody".to_string()
                        } else {
                            to.join(", ")
                        }
                    ),
                    (None, true) => "nobody".to_string(),
                    (None, false) => to.join(", "),
                }
            } else if kind == "i_r_field" {
                format!(
                    "{} → {}",
                    d["field_name"].as_str().unwrap_or(""),
                    quoted(&d["to"])
                )
            } else if kind.starts_with("i_r_") {
                format!("{} → {}", quoted(&d["from"]), quoted(&d["to"]))
            } else {
                return None;
            };
            Some(json!({
                "kind": kind,
                "text": feed_text(kind),
                "at": e["created_at"].as_i64().unwrap_or(0).div_euclid(1000),
                "creator_id": e["creator_id"],
                "change": change,
            }))
        })
        .collect()
}

async fn detail_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let next = match &query {
        Some(q) => format!("/incident/detail/{id}?{q}"),
        None => format!("/incident/detail/{id}"),
    };
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    // `?ack=1` comes from a notification's link (RSP-316). The GET itself changes nothing
    // (mail scanners prefetch links); the page it returns posts the acknowledgement as soon
    // as a browser shows it, unless the incident is closed or the viewer already acknowledged.
    let from_link = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "ack=1"));
    let tab = Tab::parse(query.as_deref(), "overview");
    let body = match detail_ctx(&state, &viewer, &id, &tab, Outcome::default()).await {
        Ok(b) => b,
        Err(e) => return page_error(&e),
    };
    if super::is_htmx(&headers) && !headers.contains_key("hx-history-restore-request") {
        // A tab link followed by htmx: the incident alone, swapped in place.
        return page_headers(
            view::render("incident_body.html", context! { d => body }).into_response(),
        );
    }
    let me = match super::me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "Incident",
        nav => "incidents",
        csrf => viewer.session.csrf_token.clone(),
        ack_link => if from_link { ack_link(&body, me["member_id"].as_i64().unwrap_or(0)) } else { "" },
        me => j(&me),
        d => body,
    };
    page_headers(view::render("incident.html", ctx).into_response())
}

/// What opening `detail_url?ack=1` does (RSP-316): `closed` shows a notice, `ack`
/// acknowledges as the viewer, `done` (the viewer already acknowledged) shows the incident.
fn ack_link(d: &minijinja::Value, viewer: i64) -> &'static str {
    let Ok(i) = d.get_attr("i") else {
        return "";
    };
    if i.get_attr("progress")
        .is_ok_and(|p| p.as_str() == Some("Closed"))
    {
        return "closed";
    }
    let acked = i
        .get_attr("responders")
        .ok()
        .and_then(|r| r.try_iter().ok())
        .is_some_and(|mut rs| {
            rs.any(|r| {
                let num = |k: &str| r.get_attr(k).ok().and_then(|v| i64::try_from(v).ok());
                num("person_id") == Some(viewer) && num("acknowledged_at").unwrap_or(0) > 0
            })
        });
    if acked { "done" } else { "ack" }
}

/// One action on the detail page; answers with the redrawn incident.
async fn action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let viewer = match viewer(
        &state,
        &Method::POST,
        &headers,
        &format!("/incident/detail/{id}"),
    )
    .await
    {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let pairs = form_pairs(&body);
    // The answer shows the tab the action was taken on (the form's `tab`, or `?tab=`);
    // without one, the tab where its outcome shows (a comment lands in the timeline).
    let asked = match form_value(&pairs, "tab") {
        t if !t.is_empty() => Some(serde_urlencoded::to_string([("tab", t)]).unwrap_or_default()),
        _ => query,
    };
    let mut tab = Tab::parse(
        asked.as_deref(),
        if action == "comment" {
            "timeline"
        } else {
            "overview"
        },
    );
    tab.chosen = false;
    let mut outcome = Outcome::default();
    let ids = json!([id]);
    let (path, args, done, field): (&str, Value, &str, Option<&'static str>) = match action.as_str()
    {
        "ack" => (
            "/incident/ack",
            json!({"incident_ids": ids}),
            "Acknowledged.",
            None,
        ),
        "unack" => (
            "/incident/unack",
            json!({"incident_ids": ids}),
            "Acknowledgement withdrawn.",
            None,
        ),
        "close" => (
            "/incident/close",
            json!({"incident_ids": ids}),
            "Closed.",
            None,
        ),
        "reopen" => (
            "/incident/reopen",
            json!({"incident_ids": ids}),
            "Reopened.",
            None,
        ),
        "wake" => (
            "/incident/wake",
            json!({"incident_ids": ids}),
            "Woken.",
            None,
        ),
        "snooze" => {
            let raw = form_value(&pairs, "minutes").trim().to_string();
            outcome.minutes = raw.clone();
            // A non-number goes through as text, so the API's own check names the field.
            let minutes = raw.parse::<i64>().map_or_else(|_| json!(raw), |m| json!(m));
            (
                "/incident/snooze",
                json!({"incident_ids": ids, "minutes": minutes}),
                "Snoozed.",
                Some("minutes"),
            )
        }
        "comment" => {
            let text = form_value(&pairs, "comment");
            outcome.comment = text.clone();
            (
                "/incident/comment",
                json!({"incident_ids": ids, "comment": text}),
                "Comment added.",
                Some("comment"),
            )
        }
        "reassign" => {
            let people: Vec<String> = pairs
                .iter()
                .filter(|(k, v)| k == "person_ids" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect();
            outcome.assignees = people.clone();
            // A non-number goes through as text, so the API's own check names the field.
            let ids_json: Vec<Value> = people
                .iter()
                .map(|p| p.parse::<i64>().map_or_else(|_| json!(p), |n| json!(n)))
                .collect();
            (
                "/incident/assign",
                json!({"incident_ids": ids, "assigned_to": {"person_ids": ids_json}}),
                "Reassigned.",
                Some("assigned_to"),
            )
        }
        "responders" => {
            let people: Vec<String> = pairs
                .iter()
                .filter(|(k, v)| k == "person_ids" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect();
            outcome.adders = people.clone();
            // A non-number goes through as text, so the API's own check names the field.
            let ids_json: Vec<Value> = people
                .iter()
                .map(|p| p.parse::<i64>().map_or_else(|_| json!(p), |n| json!(n)))
                .collect();
            (
                "/incident/responder/add",
                json!({"incident_id": id, "person_ids": ids_json}),
                "Responders added.",
                Some("person_ids"),
            )
        }
        "escalate" => {
            let raw = form_value(&pairs, "layer_idx").trim().to_string();
            outcome.layer_idx = raw.clone();
            let layer = raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n));
            (
                "/incident/assign",
                json!({"incident_ids": ids, "assigned_to": {
                    "escalate_rule_id": form_value(&pairs, "rule_id"),
                    "layer_idx": layer,
                }}),
                "Escalated.",
                Some("layer_idx"),
            )
        }
        "field" => {
            let (name, value, kept) = super::incident_fields::submitted(&pairs);
            outcome.field = kept;
            (
                "/incident/field/reset",
                json!({"incident_id": id, "field_name": name, "field_value": value}),
                "Field saved.",
                Some("field_value"),
            )
        }
        "custom" | "ticket-sync" | "war-room-create" | "war-room-dissolve" => {
            // RSP-402: the outcome is shown either way; the API's message names the action
            // and, on failure, the endpoint's status or error and the start of its answer.
            // RSP-405/406: a manual ticket sync is queued; its result is in the sync log.
            // RSP-431/436: war rooms go through the same API paths as the Open API's callers.
            let (path, done) = match action.as_str() {
                "custom" => ("/incident/custom-action/do", "custom action succeeded"),
                "war-room-create" => ("/incident/war-room/create", "war room created"),
                "war-room-dissolve" => ("/incident/war-room/delete", "war room dissolved"),
                _ => ("/incident/ticket-sync/do", "ticket sync queued"),
            };
            let args = if action.starts_with("war-room") {
                json!({"incident_id": id})
            } else {
                let raw = form_value(&pairs, "integration_id").trim().to_string();
                let integration = raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n));
                json!({"incident_id": id, "integration_id": integration})
            };
            let status = match call(&state, &viewer, path, args).await {
                Ok(data) => {
                    let message = data
                        .as_ref()
                        .and_then(|d| d["message"].as_str())
                        .unwrap_or(done)
                        .to_string();
                    outcome.flash = Some(format!("{}.", capitalised(&message)));
                    StatusCode::OK
                }
                Err(e) => {
                    outcome.error = Some(capitalised(&e.message));
                    StatusCode::from_u16(e.code.http_status(klaxon_core::error::Surface::OpenApi))
                        .unwrap_or(StatusCode::BAD_REQUEST)
                }
            };
            return match detail_ctx(&state, &viewer, &id, &tab, outcome).await {
                Ok(d) => page_headers(
                    (
                        status,
                        view::render("incident_body.html", context! { d => d }),
                    )
                        .into_response(),
                ),
                Err(e) => page_error(&e),
            };
        }
        "merge" => {
            let target = form_value(&pairs, "target_incident_id").trim().to_string();
            outcome.merge_target = target.clone();
            let args = json!({"target_incident_id": target, "source_incident_ids": ids});
            // Merged away, this incident is closed: the person goes on to the one it joined.
            return match call(&state, &viewer, "/incident/merge", args).await {
                Ok(_) => super::redirect(&headers, &format!("/incident/detail/{target}")),
                Err(e) => {
                    let status = StatusCode::from_u16(
                        e.code.http_status(klaxon_core::error::Surface::OpenApi),
                    )
                    .unwrap_or(StatusCode::BAD_REQUEST);
                    outcome.error = Some(e.message);
                    outcome.error_field = Some("target_incident_id");
                    match detail_ctx(&state, &viewer, &id, &tab, outcome).await {
                        Ok(d) => page_headers(
                            (
                                status,
                                view::render("incident_body.html", context! { d => d }),
                            )
                                .into_response(),
                        ),
                        Err(e) => page_error(&e),
                    }
                }
            };
        }
        other => {
            return (
                StatusCode::NOT_FOUND,
                view::escape(&format!("no such incident action: {other}")),
            )
                .into_response();
        }
    };
    let status = match call(&state, &viewer, path, args).await {
        Ok(_) => {
            outcome.flash = Some(done.to_string());
            // A successful comment is in the timeline now; clear the box.
            outcome.comment.clear();
            outcome.assignees.clear();
            outcome.adders.clear();
            outcome.layer_idx.clear();
            outcome.field = Default::default();
            StatusCode::OK
        }
        Err(e) => {
            outcome.error = Some(e.message.clone());
            outcome.error_field = field;
            StatusCode::from_u16(e.code.http_status(klaxon_core::error::Surface::OpenApi))
                .unwrap_or(StatusCode::BAD_REQUEST)
        }
    };
    match detail_ctx(&state, &viewer, &id, &tab, outcome).await {
        // A 4xx answer is swapped in too (the page's htmx-config), so the error shows.
        Ok(d) => page_headers(
            (
                status,
                view::render("incident_body.html", context! { d => d }),
            )
                .into_response(),
        ),
        Err(e) => page_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let f = Filters::parse(Some(
            "progress=Triggered&progress=Processing&severity=Critical&channel=7&who=all&range=24h&q=cpu\
             &field.region=eu&field.region=us&field.paged=true&team=3\
             &label=host%3Ddb-*&label=host%3D%2F%5Eweb%2F&label=env%3Dprod&p=2",
        ));
        assert_eq!(f.labels, vec!["host=db-*", "host=/^web/", "env=prod"]);
        assert_eq!(f.team.as_deref(), Some("3"));
        assert_eq!(f.progress, vec!["Triggered", "Processing"]);
        assert_eq!(f.who, "all");
        assert_eq!(f.fields.len(), 3);
        assert_eq!(Filters::parse(Some(&f.query(f.p))), f);
    }

    // spec: RSP-503 (labels: exact, wildcard or regex; several patterns of one label mean any)
    #[test]
    fn label_and_team_filters_become_arguments() {
        let f = Filters::parse(Some(
            "who=all&team=3&label=host%3Ddb-*&label=host%3D%2F%5Eweb%2F&label=env%3Dprod&label=+",
        ));
        let args = f.args(1_000_000, 42);
        assert_eq!(
            args["labels"],
            json!({"host": ["db-*", "/^web/"], "env": ["prod"]})
        );
        assert_eq!(args["team_ids"], json!([3]));
        // Text without a name goes through as it is, so the API names what is missing.
        let nameless = Filters::parse(Some("label=prod")).args(1_000_000, 42);
        assert_eq!(nameless["labels"], json!({"": ["prod"]}));
        let none = Filters::parse(Some("who=all")).args(1_000_000, 42);
        assert!(none.get("labels").is_none() && none.get("team_ids").is_none());
    }

    // spec: RSP-503 (custom fields filter the list; several values of one field mean any)
    #[test]
    fn custom_field_filters_become_the_fields_argument() {
        let f = Filters::parse(Some(
            "who=all&field.region=eu&field.region=us&field.paged=true&field.=x&field.empty=",
        ));
        let args = f.args(1_000_000, 42);
        assert_eq!(
            args["fields"],
            json!({"region": ["eu", "us"], "paged": ["true"]})
        );
        assert!(
            Filters::parse(Some("who=all"))
                .args(1_000_000, 42)
                .get("fields")
                .is_none()
        );
    }

    // spec: RSP-501 (assigned to me, all progress, the last 7 days by default)
    #[test]
    fn defaults_are_assigned_to_me_over_seven_days() {
        let f = Filters::parse(None);
        assert_eq!(f.who, "me");
        assert_eq!(f.range, "7d");
        assert!(f.progress.is_empty());
        let args = f.args(1_000_000, 42);
        assert_eq!(args["responder_ids"], json!([42]));
        assert_eq!(
            args["end_time"].as_i64().unwrap() - args["start_time"].as_i64().unwrap(),
            7 * 86_400 + 1
        );
    }

    // spec: RSP-502 (every offered window is shorter than 31 days)
    #[test]
    fn every_range_is_shorter_than_31_days() {
        for (_, _, span) in RANGES {
            assert!(span + 1 < 31 * 86_400);
        }
        assert_eq!(Filters::parse(Some("range=90d")).range, DEFAULT_RANGE);
    }

    // spec: RSP-504 (the console pages through the first 1000 only)
    #[test]
    fn paging_stops_at_the_thousandth_match() {
        let f = Filters::parse(Some("p=50&who=all"));
        assert_eq!(f.args(1_000_000, 1)["p"], json!(SHOWN_MAX / PAGE));
    }
}
