//! Drop, silence and inhibit rules of a channel (ingest.md §2.9, §2.11, §2.12): one list page
//! per rule set (state, window, behaviour, conditions as text per §4.6) and one editor per
//! rule, with enable, disable and delete. Every read and write is an Open API call
//! (`/channel/{unsubscribe,silence,inhibit}/rule/{list,info,create,update,enable,disable,delete}`,
//! `unsubscribe` being the API's name for drop rules), so every check is the API's own; the
//! console turns form fields into the wire body and puts a refusal next to the input it names.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::condition::{self, Condition};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, now_secs, page_headers};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{cid}/silence-rules",
            get(silence_list).post(silence_save),
        )
        .route("/channels/{cid}/silence-rules/new", get(silence_new))
        .route("/channels/{cid}/silence-rules/{rid}", get(silence_edit))
        .route(
            "/channels/{cid}/silence-rules/{rid}/{verb}",
            post(silence_act),
        )
        .route(
            "/channels/{cid}/inhibit-rules",
            get(inhibit_list).post(inhibit_save),
        )
        .route("/channels/{cid}/inhibit-rules/new", get(inhibit_new))
        .route("/channels/{cid}/inhibit-rules/{rid}", get(inhibit_edit))
        .route(
            "/channels/{cid}/inhibit-rules/{rid}/{verb}",
            post(inhibit_act),
        )
        .route("/channels/{cid}/drop-rules", get(drop_list).post(drop_save))
        .route("/channels/{cid}/drop-rules/new", get(drop_new))
        .route("/channels/{cid}/drop-rules/{rid}", get(drop_edit))
        .route("/channels/{cid}/drop-rules/{rid}/{verb}", post(drop_act))
}

/// Which rule set a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Drop,
    Silence,
    Inhibit,
}

impl Kind {
    /// The Open API's name of the set (`/channel/<api>/rule/…`).
    fn api(self) -> &'static str {
        match self {
            Kind::Drop => "unsubscribe",
            Kind::Silence => "silence",
            Kind::Inhibit => "inhibit",
        }
    }

    /// The console's path segment (`/channels/{cid}/<slug>`).
    fn slug(self) -> &'static str {
        match self {
            Kind::Drop => "drop-rules",
            Kind::Silence => "silence-rules",
            Kind::Inhibit => "inhibit-rules",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Drop => "Drop rules",
            Kind::Silence => "Silence rules",
            Kind::Inhibit => "Inhibit rules",
        }
    }

    /// The name pages use (`drop`, `silence`, `inhibit`).
    fn name(self) -> &'static str {
        match self {
            Kind::Drop => "drop",
            Kind::Silence => "silence",
            Kind::Inhibit => "inhibit",
        }
    }

    fn path(self, verb: &str) -> String {
        format!("/channel/{}/rule/{verb}", self.api())
    }
}

/// Condition row slots an editor shows at least, and windows of a recurring silence.
const ROW_SLOTS: usize = 3;
/// Empty rows one press of "Add condition rows" adds.
pub(super) const MORE_ROWS: usize = 3;
const WINDOW_SLOTS: usize = 2;
/// ING-131: 1–10 recurring windows.
const WINDOWS_MAX: usize = 10;
const WEEKDAYS: [(&str, &str); 7] = [
    ("1", "Mon"),
    ("2", "Tue"),
    ("3", "Wed"),
    ("4", "Thu"),
    ("5", "Fri"),
    ("6", "Sat"),
    ("0", "Sun"),
];

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn channel_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no such channel"))
}

// --- conditions as rows ------------------------------------------------------------------

/// One condition as the editor shows it: values one per line (a value may contain `|` or
/// `,`, a regex especially, so neither separates values).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(super) struct Row {
    /// Rows with the same group number must all match; groups are alternatives.
    pub(super) group: String,
    pub(super) key: String,
    pub(super) oper: String,
    pub(super) vals: String,
}

impl Row {
    pub(super) fn is_blank(&self) -> bool {
        self.key.trim().is_empty() && self.vals.trim().is_empty()
    }

    pub(super) fn empty(group: usize) -> Row {
        Row {
            group: group.to_string(),
            oper: "IN".into(),
            ..Row::default()
        }
    }
}

/// Stored FilterGroups as rows, group numbers from 1.
pub(super) fn rows_of(groups: &Value) -> Vec<Row> {
    let mut out = Vec::new();
    for (g, group) in groups.as_array().into_iter().flatten().enumerate() {
        for c in group.as_array().into_iter().flatten() {
            out.push(Row {
                group: (g + 1).to_string(),
                key: c["key"].as_str().unwrap_or("").to_string(),
                oper: c["oper"].as_str().unwrap_or("IN").to_string(),
                vals: c["vals"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
        }
    }
    out
}

/// At least [`ROW_SLOTS`] rows, and two empty ones past the last used row.
pub(super) fn padded_rows(mut rows: Vec<Row>) -> Vec<Row> {
    while rows.last().is_some_and(Row::is_blank) {
        rows.pop();
    }
    let group = rows
        .last()
        .and_then(|r| r.group.trim().parse::<usize>().ok())
        .unwrap_or(1);
    let want = (rows.len() + 2).max(ROW_SLOTS);
    while rows.len() < want {
        rows.push(Row::empty(group));
    }
    rows
}

/// The rows `{prefix}{n}_group/_key/_oper/_vals` of a form, in order.
pub(super) fn parse_rows(pairs: &[(String, String)], prefix: &str) -> Vec<Row> {
    let mut n_max = None;
    for (k, _) in pairs {
        if let Some(n) = k
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("_key"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            n_max = Some(n_max.map_or(n, |m: usize| m.max(n)));
        }
    }
    let Some(n_max) = n_max else {
        return Vec::new();
    };
    (0..=n_max)
        .map(|n| Row {
            group: form_value(pairs, &format!("{prefix}{n}_group"))
                .trim()
                .to_string(),
            key: form_value(pairs, &format!("{prefix}{n}_key"))
                .trim()
                .to_string(),
            oper: form_value(pairs, &format!("{prefix}{n}_oper")),
            vals: form_value(pairs, &format!("{prefix}{n}_vals")),
        })
        .collect()
}

/// Rows → wire FilterGroups, with the row each condition came from (`at[g][c]`), so an API
/// error on `filters[g][c]` goes back to its row. Blank rows are left out; an empty group
/// number means group 1.
pub(super) fn groups_of(
    rows: &[Row],
    prefix: &str,
) -> Result<(Value, Vec<Vec<usize>>), FieldErrors> {
    let mut groups: BTreeMap<u64, Vec<(usize, Value)>> = BTreeMap::new();
    for (n, r) in rows.iter().enumerate() {
        if r.is_blank() {
            continue;
        }
        let g = if r.group.is_empty() {
            1
        } else {
            match r.group.parse::<u64>() {
                Ok(g) if g >= 1 => g,
                _ => {
                    return Err(FieldErrors::one(
                        &format!("{prefix}{n}_group"),
                        format!("group: {:?} is not a group number (1, 2, …)", r.group),
                    ));
                }
            }
        };
        let vals: Vec<&str> = r
            .vals
            .lines()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        let oper = if r.oper.is_empty() { "IN" } else { &r.oper };
        groups
            .entry(g)
            .or_default()
            .push((n, json!({"key": r.key, "oper": oper, "vals": vals})));
    }
    let mut wire = Vec::new();
    let mut at = Vec::new();
    for (_, conds) in groups {
        at.push(conds.iter().map(|(n, _)| *n).collect());
        wire.push(Value::Array(conds.into_iter().map(|(_, c)| c).collect()));
    }
    Ok((Value::Array(wire), at))
}

/// `filters[1][0].vals[2]` under `field` → the input of that row (`c4_vals`).
pub(super) fn row_input(
    path: &str,
    field: &str,
    prefix: &str,
    at: &[Vec<usize>],
) -> Option<String> {
    let (g, rest) = indexed(path, field)?;
    let rows = at.get(g)?;
    let (n, part) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((c, part)) => (*rows.get(c.parse::<usize>().ok()?)?, part),
        None => (*rows.first()?, ""),
    };
    let part = part.strip_prefix('.').unwrap_or(part);
    let input = if part.starts_with("oper") {
        "oper"
    } else if part.starts_with("vals") {
        "vals"
    } else {
        "key"
    };
    Some(format!("{prefix}{n}_{input}"))
}

/// FilterGroups as text per ingest.md §4.6, or `None` for no conditions.
pub(super) fn conditions_text(groups: &Value) -> Option<String> {
    let parsed: Vec<Vec<Condition>> = serde_json::from_value(groups.clone()).ok()?;
    if parsed.is_empty() {
        return None;
    }
    Some(condition::render(&parsed))
}

// --- windows of a silence ----------------------------------------------------------------

/// One recurring window as the editor shows it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct WindowForm {
    start: String,
    end: String,
    days: Vec<String>,
    /// Kept from the stored window (the editor does not change calendars).
    cal_id: String,
    is_off: bool,
}

impl WindowForm {
    fn is_blank(&self) -> bool {
        self.start.trim().is_empty() && self.end.trim().is_empty() && self.days.is_empty()
    }
}

/// Unix seconds → the `datetime-local` value in UTC (`2026-11-26T10:00`).
fn local_input(secs: i64) -> String {
    if secs <= 0 {
        return String::new();
    }
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// A `datetime-local` value (UTC) → Unix seconds.
fn parse_local(field: &str, input: &str, raw: &str) -> Result<i64, FieldErrors> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(FieldErrors::one(input, format!("{field}: is required")));
    }
    text.replace(' ', "T")
        .parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| {
            jiff::tz::TimeZone::UTC
                .to_ambiguous_timestamp(dt)
                .compatible()
                .ok()
        })
        .map(|t| t.as_second())
        .ok_or_else(|| {
            FieldErrors::one(
                input,
                format!("{field}: {text:?} is not a date and time (YYYY-MM-DD HH:MM, UTC)"),
            )
        })
}

/// `Mon, Tue 22:00–06:00` (no days: every day).
fn window_text(w: &Value) -> String {
    let days: Vec<&str> = w["repeat"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .filter_map(|d| {
            WEEKDAYS
                .iter()
                .find(|(n, _)| *n == d.to_string())
                .map(|(_, name)| *name)
        })
        .collect();
    let days = if days.is_empty() {
        "every day".to_string()
    } else {
        days.join(", ")
    };
    let mut text = format!(
        "{days} {}–{}",
        w["start"].as_str().unwrap_or("?"),
        w["end"].as_str().unwrap_or("?")
    );
    if let Some(cal) = w["cal_id"].as_str().filter(|c| !c.is_empty()) {
        let which = if w["is_off"].as_bool().unwrap_or(false) {
            "rest days"
        } else {
            "working days"
        };
        text.push_str(&format!(" ({which} of calendar {cal})"));
    }
    text
}

// --- the form ----------------------------------------------------------------------------

/// Everything an editor shows: the typed (or stored) values of both kinds.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct RuleForm {
    rule_id: String,
    rule_name: String,
    description: String,
    priority: String,
    /// `mark` or `drop` (`is_directly_discard`).
    behaviour: String,
    /// Silence: `once` or `weekly`.
    window: String,
    start_time: String,
    end_time: String,
    windows: Vec<WindowForm>,
    /// Silence: `filters`.
    rows: Vec<Row>,
    /// Inhibit: `source_filters` and `target_filters`.
    source: Vec<Row>,
    target: Vec<Row>,
    /// Inhibit: `title`, `description`, `severity` ticked; label names comma-separated.
    equal: Vec<String>,
    equal_labels: String,
    /// The condition list (`c`, `s` or `t`) whose "Add condition rows" button was pressed:
    /// the form is redrawn, nothing saved, with [`MORE_ROWS`] more empty rows there.
    more_rows: String,
}

impl RuleForm {
    /// A new rule: silence marks for the next hour (from `now`), inhibit drops.
    fn new(kind: Kind, now: i64) -> RuleForm {
        RuleForm {
            priority: "0".into(),
            behaviour: if kind == Kind::Inhibit {
                "drop"
            } else {
                "mark"
            }
            .into(),
            window: "once".into(),
            start_time: local_input(now - now.rem_euclid(60)),
            end_time: local_input(now - now.rem_euclid(60) + 3600),
            ..RuleForm::default()
        }
    }

    /// The form of a stored rule (its wire form).
    fn of_rule(r: &Value) -> RuleForm {
        let windows: Vec<WindowForm> = r["time_filters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| WindowForm {
                start: w["start"].as_str().unwrap_or("").to_string(),
                end: w["end"].as_str().unwrap_or("").to_string(),
                days: w["repeat"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_i64)
                    .map(|d| d.to_string())
                    .collect(),
                cal_id: w["cal_id"].as_str().unwrap_or("").to_string(),
                is_off: w["is_off"].as_bool().unwrap_or(false),
            })
            .collect();
        let (mut equal, mut labels) = (Vec::new(), Vec::new());
        for e in r["equals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            match e.strip_prefix("labels.") {
                Some(name) => labels.push(name.to_string()),
                None => equal.push(e.to_string()),
            }
        }
        RuleForm {
            rule_id: r["rule_id"].as_str().unwrap_or("").to_string(),
            rule_name: r["rule_name"].as_str().unwrap_or("").to_string(),
            description: r["description"].as_str().unwrap_or("").to_string(),
            priority: r["priority"].as_i64().unwrap_or(0).to_string(),
            behaviour: if r["is_directly_discard"].as_bool().unwrap_or(false) {
                "drop"
            } else {
                "mark"
            }
            .into(),
            window: if windows.is_empty() { "once" } else { "weekly" }.into(),
            start_time: local_input(r["time_filter"]["start_time"].as_i64().unwrap_or(0)),
            end_time: local_input(r["time_filter"]["end_time"].as_i64().unwrap_or(0)),
            windows,
            rows: rows_of(&r["filters"]),
            source: rows_of(&r["source_filters"]),
            target: rows_of(&r["target_filters"]),
            equal,
            equal_labels: labels.join(", "),
            more_rows: String::new(),
        }
    }

    fn parse(pairs: &[(String, String)]) -> RuleForm {
        let all = |name: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect()
        };
        let mut windows: Vec<WindowForm> = (0..WINDOWS_MAX)
            .map(|i| WindowForm {
                start: form_value(pairs, &format!("w{i}_start")).trim().to_string(),
                end: form_value(pairs, &format!("w{i}_end")).trim().to_string(),
                days: all(&format!("w{i}_day")),
                cal_id: form_value(pairs, &format!("w{i}_cal")),
                is_off: form_value(pairs, &format!("w{i}_off")) == "true",
            })
            .collect();
        while windows.last().is_some_and(WindowForm::is_blank) {
            windows.pop();
        }
        RuleForm {
            rule_id: form_value(pairs, "rule_id").trim().to_string(),
            rule_name: form_value(pairs, "rule_name"),
            description: form_value(pairs, "description"),
            priority: form_value(pairs, "priority").trim().to_string(),
            behaviour: form_value(pairs, "behaviour"),
            window: form_value(pairs, "window"),
            start_time: form_value(pairs, "start_time").trim().to_string(),
            end_time: form_value(pairs, "end_time").trim().to_string(),
            windows,
            rows: parse_rows(pairs, "c"),
            source: parse_rows(pairs, "s"),
            target: parse_rows(pairs, "t"),
            equal: all("equal"),
            equal_labels: form_value(pairs, "equal_labels"),
            more_rows: form_value(pairs, "more_rows"),
        }
    }

    /// What the editor draws: the slots padded.
    fn padded(mut self) -> RuleForm {
        self.rows = padded_rows(self.rows);
        self.source = padded_rows(self.source);
        self.target = padded_rows(self.target);
        let asked = match self.more_rows.as_str() {
            "c" => Some(&mut self.rows),
            "s" => Some(&mut self.source),
            "t" => Some(&mut self.target),
            _ => None,
        };
        if let Some(rows) = asked {
            let group = rows.last().map_or(1, |r| r.group.parse().unwrap_or(1));
            rows.extend((0..MORE_ROWS).map(|_| Row::empty(group)));
        }
        let want = (self.windows.len() + 1).clamp(WINDOW_SLOTS, WINDOWS_MAX);
        while self.windows.len() < want {
            self.windows.push(WindowForm::default());
        }
        self
    }
}

/// Where each part of the wire body came from, to put an API error next to its input.
#[derive(Debug, Default)]
struct Origins {
    rows: Vec<Vec<usize>>,
    source: Vec<Vec<usize>>,
    target: Vec<Vec<usize>>,
    /// `time_filters[i]` → the window slot it came from.
    windows: Vec<usize>,
}

/// The create/update body of the form, or the input a value is wrong in (only what the API
/// cannot be sent at all: a number or a date that is not one; the API checks the rest).
fn body_of(kind: Kind, f: &RuleForm) -> Result<(Value, Origins), FieldErrors> {
    let priority = if f.priority.is_empty() {
        0
    } else {
        f.priority.parse::<i64>().map_err(|_| {
            FieldErrors::one(
                "priority",
                format!("priority: {:?} is not a whole number", f.priority),
            )
        })?
    };
    let mut body = json!({
        "rule_name": f.rule_name,
        "description": f.description,
        "priority": priority,
    });
    let mut origins = Origins::default();
    match kind {
        // ING-101: a drop rule always discards; it has no behaviour and no window.
        Kind::Drop => {
            let (filters, at) = groups_of(&f.rows, "c")?;
            origins.rows = at;
            body["filters"] = filters;
        }
        Kind::Silence => {
            body["is_directly_discard"] = json!(f.behaviour == "drop");
            let (filters, at) = groups_of(&f.rows, "c")?;
            origins.rows = at;
            body["filters"] = filters;
            if f.window == "weekly" {
                let mut wire = Vec::new();
                for (i, w) in f.windows.iter().enumerate() {
                    if w.is_blank() {
                        continue;
                    }
                    let mut days = Vec::new();
                    for d in &w.days {
                        days.push(d.parse::<i64>().map_or_else(|_| json!(d), |n| json!(n)));
                    }
                    let mut entry = json!({"start": w.start, "end": w.end, "repeat": days});
                    if !w.cal_id.is_empty() {
                        entry["cal_id"] = json!(w.cal_id);
                        entry["is_off"] = json!(w.is_off);
                    }
                    origins.windows.push(i);
                    wire.push(entry);
                }
                if wire.is_empty() {
                    return Err(FieldErrors::one(
                        "w0_start",
                        "time_filters: give at least one weekly window (start and end)",
                    ));
                }
                body["time_filters"] = Value::Array(wire);
            } else {
                let start = parse_local("time_filter.start_time", "start_time", &f.start_time)?;
                let end = parse_local("time_filter.end_time", "end_time", &f.end_time)?;
                body["time_filter"] = json!({"start_time": start, "end_time": end});
            }
        }
        Kind::Inhibit => {
            body["is_directly_discard"] = json!(f.behaviour == "drop");
            let (source, at) = groups_of(&f.source, "s")?;
            origins.source = at;
            let (target, at) = groups_of(&f.target, "t")?;
            origins.target = at;
            let mut equals: Vec<String> = f.equal.clone();
            equals.extend(
                f.equal_labels
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("labels.{l}")),
            );
            body["source_filters"] = source;
            body["target_filters"] = target;
            body["equals"] = json!(equals);
        }
    }
    Ok((body, origins))
}

/// The input an API error field belongs to.
fn input_of(field: &str, o: &Origins) -> Option<String> {
    match field {
        "rule_name" | "description" | "priority" => return Some(field.to_string()),
        "time_filter" | "time_filters" => return Some("window".into()),
        "time_filter.start_time" => return Some("start_time".into()),
        "time_filter.end_time" => return Some("end_time".into()),
        _ => {}
    }
    if field == "equals" || field.starts_with("equals[") {
        return Some("equals".into());
    }
    if let Some((i, rest)) = indexed(field, "time_filters") {
        let slot = o.windows.get(i).copied().unwrap_or(i);
        let part = if rest.starts_with("end") {
            "end"
        } else if rest.starts_with("repeat") {
            "days"
        } else {
            "start"
        };
        return Some(format!("w{slot}_{part}"));
    }
    for (name, prefix, at) in [
        ("source_filters", "s", &o.source),
        ("target_filters", "t", &o.target),
        ("filters", "c", &o.rows),
    ] {
        if field == name {
            return Some(format!("{prefix}_rows"));
        }
        if let Some(input) = row_input(field, name, prefix, at) {
            return Some(input);
        }
    }
    None
}

// --- pages -------------------------------------------------------------------------------

async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    super::me(state, viewer).await
}

async fn channel_of(state: &AppState, viewer: &Viewer, cid: i64) -> Result<Value, ApiError> {
    fetch(state, viewer, "/channel/info", json!({"channel_id": cid})).await
}

/// A listed rule with what the page shows of it.
fn rule_row(kind: Kind, r: &Value, now: i64) -> Value {
    let end = r["time_filter"]["end_time"].as_i64().unwrap_or(0);
    let window = match kind {
        Kind::Drop | Kind::Inhibit => String::new(),
        Kind::Silence if r["time_filter"].is_object() => format!(
            "from {} to {}",
            view_time(r["time_filter"]["start_time"].as_i64().unwrap_or(0)),
            view_time(end)
        ),
        Kind::Silence => r["time_filters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(window_text)
            .collect::<Vec<_>>()
            .join("; "),
    };
    let equals: Vec<&str> = r["equals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    json!({
        "rule_id": r["rule_id"],
        "rule_name": r["rule_name"],
        "description": r["description"],
        "priority": r["priority"],
        "enabled": r["status"] == "enabled",
        // ING-132: a one-off window that has passed stops applying; the rule stays.
        "expired": kind == Kind::Silence && end > 0 && end <= now,
        "behaviour": if r["is_directly_discard"].as_bool().unwrap_or(false) { "drop" } else { "mark" },
        "window": window,
        "conditions": conditions_text(&r["filters"]),
        "source": conditions_text(&r["source_filters"]),
        "target": conditions_text(&r["target_filters"]),
        "equals": equals.join(", "),
        "quick": r["from_incident_id"].as_str().is_some_and(|s| !s.is_empty()),
    })
}

fn view_time(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) if secs > 0 => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        _ => "-".to_string(),
    }
}

async fn list_page(state: AppState, cid: String, headers: HeaderMap, kind: Kind) -> Response {
    let next = format!("/channels/{cid}/{}", kind.slug());
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let result = async {
        let cid = channel_id(&cid)?;
        let channel = channel_of(&state, &viewer, cid).await?;
        let listed = items(
            &fetch(
                &state,
                &viewer,
                &kind.path("list"),
                json!({"channel_id": cid}),
            )
            .await?,
        );
        Ok::<_, ApiError>((channel, listed, me(&state, &viewer).await?))
    }
    .await;
    match result {
        Ok((channel, listed, me)) => {
            let now = now_secs(&state);
            let rules: Vec<Value> = listed.iter().map(|r| rule_row(kind, r, now)).collect();
            let ctx = context! {
                title => format!("{} · {}", kind.title(), channel["channel_name"].as_str().unwrap_or("")),
                heading => kind.title(),
                kind => kind.name(),
                slug => kind.slug(),
                nav => "channels",
                csrf => viewer.session.csrf_token.clone(),
                me => j(&me),
                channel => j(&channel),
                rules => j(&rules),
            };
            page_headers(view::render("noise_rules.html", ctx).into_response())
        }
        Err(e) => page_error(&e),
    }
}

/// The form fragment's data.
fn form_ctx(kind: Kind, channel: &Value, form: RuleForm, errors: &FieldErrors) -> minijinja::Value {
    let form = form.padded();
    context! {
        kind => kind.name(),
        slug => kind.slug(),
        channel => j(channel),
        v => j(&form),
        weekdays => WEEKDAYS.iter().map(|(n, l)| (n.to_string(), l.to_string())).collect::<Vec<_>>(),
        errors => j(&errors.0),
    }
}

async fn form_page(
    state: &AppState,
    viewer: &Viewer,
    kind: Kind,
    cid: i64,
    form: RuleForm,
) -> Response {
    let result = async {
        Ok::<_, ApiError>((
            channel_of(state, viewer, cid).await?,
            me(state, viewer).await?,
        ))
    }
    .await;
    match result {
        Ok((channel, me)) => {
            let what = match kind {
                Kind::Drop => "drop rule",
                Kind::Silence => "silence rule",
                Kind::Inhibit => "inhibit rule",
            };
            let title = if form.rule_id.is_empty() {
                format!("New {what}")
            } else {
                format!("Edit {what}")
            };
            let ctx = context! {
                title => title,
                heading => kind.title(),
                nav => "channels",
                csrf => viewer.session.csrf_token.clone(),
                me => j(&me),
                f => form_ctx(kind, &channel, form, &FieldErrors::default()),
            };
            page_headers(view::render("noise_rule.html", ctx).into_response())
        }
        Err(e) => page_error(&e),
    }
}

async fn new_page(state: AppState, cid: String, headers: HeaderMap, kind: Kind) -> Response {
    let next = format!("/channels/{cid}/{}/new", kind.slug());
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let form = RuleForm::new(kind, now_secs(&state));
    form_page(&state, &viewer, kind, cid, form).await
}

async fn edit_page(
    state: AppState,
    cid: String,
    rid: String,
    headers: HeaderMap,
    kind: Kind,
) -> Response {
    let next = format!("/channels/{cid}/{}/{rid}", kind.slug());
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let rule = match fetch(
        &state,
        &viewer,
        &kind.path("info"),
        json!({"channel_id": cid, "rule_id": rid}),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return page_error(&e),
    };
    form_page(&state, &viewer, kind, cid, RuleForm::of_rule(&rule)).await
}

/// Creates or updates a rule; on success the browser goes to the list, on a refusal the form
/// comes back with the message next to the field and everything typed kept.
async fn save(
    state: AppState,
    cid: String,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
) -> Response {
    let next = format!("/channels/{cid}/{}", kind.slug());
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let form = RuleForm::parse(&form_pairs(&body));
    // "Add condition rows" redraws what was typed with more empty rows; nothing is saved.
    let outcome = if !form.more_rows.is_empty() {
        Err((FieldErrors::default(), StatusCode::OK))
    } else {
        body_of(kind, &form).map_err(|errors| (errors, StatusCode::BAD_REQUEST))
    };
    let outcome = match outcome {
        Err(refused) => Err(refused),
        Ok((mut args, origins)) => {
            let path = if form.rule_id.is_empty() {
                args["channel_id"] = json!(cid);
                kind.path("create")
            } else {
                args["channel_id"] = json!(cid);
                args["rule_id"] = json!(form.rule_id);
                kind.path("update")
            };
            match call(&state, &viewer, &path, args).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    if e.code == ErrorCode::InternalError {
                        tracing::error!(error = %e.message, "console noise rule save failed");
                    }
                    let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
                        .unwrap_or(StatusCode::BAD_REQUEST);
                    Err((
                        FieldErrors::file(&e.message, |f| input_of(f, &origins)),
                        status,
                    ))
                }
            }
        }
    };
    match outcome {
        Ok(()) => redirect(&headers, &format!("/channels/{cid}/{}", kind.slug())),
        Err((errors, status)) => match channel_of(&state, &viewer, cid).await {
            Ok(channel) => page_headers(
                (
                    status,
                    view::render(
                        "noise_form.html",
                        context! { f => form_ctx(kind, &channel, form, &errors) },
                    ),
                )
                    .into_response(),
            ),
            Err(e) => page_error(&e),
        },
    }
}

/// Enable, disable or delete; the answer to a refusal is a fragment for the page's message
/// region.
async fn act(
    state: AppState,
    cid: String,
    rid: String,
    verb: String,
    headers: HeaderMap,
    kind: Kind,
) -> Response {
    let next = format!("/channels/{cid}/{}", kind.slug());
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    if !matches!(verb.as_str(), "enable" | "disable" | "delete") {
        return page_error(&ApiError::new(
            ErrorCode::ResourceNotFound,
            "no such action",
        ));
    }
    let args = json!({"channel_id": cid, "rule_id": rid});
    match call(&state, &viewer, &kind.path(&verb), args).await {
        Ok(_) => redirect(&headers, &format!("/channels/{cid}/{}", kind.slug())),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console noise rule action failed");
            }
            let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
                .unwrap_or(StatusCode::BAD_REQUEST);
            let html = format!("<p>{}</p>", view::escape(&e.message));
            page_headers((status, Html(html)).into_response())
        }
    }
}

// Handlers of the two rule sets.

async fn drop_list(State(s): State<AppState>, Path(cid): Path<String>, h: HeaderMap) -> Response {
    list_page(s, cid, h, Kind::Drop).await
}
async fn drop_new(State(s): State<AppState>, Path(cid): Path<String>, h: HeaderMap) -> Response {
    new_page(s, cid, h, Kind::Drop).await
}
async fn drop_edit(
    State(s): State<AppState>,
    Path((cid, rid)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    edit_page(s, cid, rid, h, Kind::Drop).await
}
async fn drop_save(
    State(s): State<AppState>,
    Path(cid): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    save(s, cid, h, body, Kind::Drop).await
}
async fn drop_act(
    State(s): State<AppState>,
    Path((cid, rid, verb)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    act(s, cid, rid, verb, h, Kind::Drop).await
}
async fn silence_list(
    State(s): State<AppState>,
    Path(cid): Path<String>,
    h: HeaderMap,
) -> Response {
    list_page(s, cid, h, Kind::Silence).await
}
async fn inhibit_list(
    State(s): State<AppState>,
    Path(cid): Path<String>,
    h: HeaderMap,
) -> Response {
    list_page(s, cid, h, Kind::Inhibit).await
}
async fn silence_new(State(s): State<AppState>, Path(cid): Path<String>, h: HeaderMap) -> Response {
    new_page(s, cid, h, Kind::Silence).await
}
async fn inhibit_new(State(s): State<AppState>, Path(cid): Path<String>, h: HeaderMap) -> Response {
    new_page(s, cid, h, Kind::Inhibit).await
}
async fn silence_edit(
    State(s): State<AppState>,
    Path((cid, rid)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    edit_page(s, cid, rid, h, Kind::Silence).await
}
async fn inhibit_edit(
    State(s): State<AppState>,
    Path((cid, rid)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    edit_page(s, cid, rid, h, Kind::Inhibit).await
}
async fn silence_save(
    State(s): State<AppState>,
    Path(cid): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    save(s, cid, h, body, Kind::Silence).await
}
async fn inhibit_save(
    State(s): State<AppState>,
    Path(cid): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    save(s, cid, h, body, Kind::Inhibit).await
}
async fn silence_act(
    State(s): State<AppState>,
    Path((cid, rid, verb)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    act(s, cid, rid, verb, h, Kind::Silence).await
}
async fn inhibit_act(
    State(s): State<AppState>,
    Path((cid, rid, verb)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Response {
    act(s, cid, rid, verb, h, Kind::Inhibit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(raw).unwrap()
    }

    // spec: ING-131 (a one-off window or weekly windows), ING-130 (filters as groups)
    #[test]
    fn a_silence_form_becomes_the_wire_body() {
        let f = RuleForm::parse(&pairs(
            "rule_name=Nightly&priority=2&behaviour=drop&window=once\
             &start_time=2026-11-26T22%3A00&end_time=2026-11-27T06%3A00\
             &c0_group=1&c0_key=severity&c0_oper=IN&c0_vals=Warning%0D%0AInfo\
             &c1_group=1&c1_key=&c1_oper=IN&c1_vals=\
             &c2_group=2&c2_key=labels.check&c2_oper=NOTIN&c2_vals=%2Fcpu%7Cio%2F",
        ));
        let (body, origins) = body_of(Kind::Silence, &f).unwrap();
        assert_eq!(body["priority"], 2);
        assert_eq!(body["is_directly_discard"], true);
        assert_eq!(body["time_filter"]["start_time"], 1_795_730_400);
        assert_eq!(body["time_filter"]["end_time"], 1_795_759_200);
        assert_eq!(
            body["filters"],
            json!([[{"key": "severity", "oper": "IN", "vals": ["Warning", "Info"]}],
                   [{"key": "labels.check", "oper": "NOTIN", "vals": ["/cpu|io/"]}]])
        );
        // The blank row 1 is left out: group 1 (index 1) came from row 2.
        assert_eq!(origins.rows, vec![vec![0], vec![2]]);

        // "Add condition rows" on the conditions: the typed rows, two spare, then three more,
        // continuing the last row's group.
        let more = RuleForm::parse(&pairs(
            "rule_name=x&more_rows=c&c0_group=2&c0_key=severity&c0_oper=IN&c0_vals=Info",
        ))
        .padded();
        assert_eq!(more.rows.len(), 1 + 2 + MORE_ROWS);
        assert!(
            more.rows[1..]
                .iter()
                .all(|r| r.is_blank() && r.group == "2")
        );
        assert_eq!(more.source.len(), ROW_SLOTS);
        assert_eq!(
            input_of("filters[1][0].vals[0]", &origins).as_deref(),
            Some("c2_vals")
        );
        assert_eq!(input_of("filters[0]", &origins).as_deref(), Some("c0_key"));
    }

    // spec: ING-131 (weekly windows: HH:MM, weekdays 0–6)
    #[test]
    fn weekly_windows_keep_their_slot_for_errors() {
        let f = RuleForm::parse(&pairs(
            "rule_name=Weekend&window=weekly&w0_start=&w0_end=\
             &w1_start=22%3A00&w1_end=06%3A00&w1_day=6&w1_day=0&w1_cal=&w1_off=false",
        ));
        let (body, origins) = body_of(Kind::Silence, &f).unwrap();
        assert_eq!(
            body["time_filters"],
            json!([{"start": "22:00", "end": "06:00", "repeat": [6, 0]}])
        );
        assert!(body.get("time_filter").is_none());
        assert_eq!(
            input_of("time_filters[0].end", &origins).as_deref(),
            Some("w1_end")
        );
        let none = RuleForm::parse(&pairs("rule_name=X&window=weekly&w0_start=&w0_end="));
        assert!(
            body_of(Kind::Silence, &none)
                .unwrap_err()
                .0
                .contains_key("w0_start")
        );
    }

    #[test]
    fn what_cannot_be_sent_is_named_beside_its_input() {
        let bad_time = RuleForm::parse(&pairs(
            "rule_name=X&window=once&start_time=tomorrow&end_time=2026-11-27T06%3A00",
        ));
        let e = body_of(Kind::Silence, &bad_time).unwrap_err();
        assert!(e.0["start_time"].starts_with("time_filter.start_time:"));
        let bad_priority = RuleForm::parse(&pairs("rule_name=X&priority=high"));
        let e = body_of(Kind::Inhibit, &bad_priority).unwrap_err();
        assert!(e.0["priority"].contains("priority"));
        let bad_group = RuleForm::parse(&pairs(
            "rule_name=X&s0_group=first&s0_key=severity&s0_vals=Critical",
        ));
        let e = body_of(Kind::Inhibit, &bad_group).unwrap_err();
        assert!(e.0.contains_key("s0_group"));
    }

    // spec: ING-140, ING-141 (source and target conditions, equal attributes and labels)
    #[test]
    fn an_inhibit_form_becomes_the_wire_body() {
        let f = RuleForm::parse(&pairs(
            "rule_name=Disk&behaviour=drop\
             &s0_group=1&s0_key=severity&s0_oper=IN&s0_vals=Critical\
             &t0_group=1&t0_key=severity&t0_oper=IN&t0_vals=Warning%0AInfo\
             &equal=severity&equal_labels=check%2C+host",
        ));
        let (body, origins) = body_of(Kind::Inhibit, &f).unwrap();
        assert_eq!(body["is_directly_discard"], true);
        assert_eq!(
            body["equals"],
            json!(["severity", "labels.check", "labels.host"])
        );
        assert_eq!(
            body["target_filters"],
            json!([[{"key": "severity", "oper": "IN", "vals": ["Warning", "Info"]}]])
        );
        assert_eq!(
            input_of("source_filters[0][0].key", &origins).as_deref(),
            Some("s0_key")
        );
        assert_eq!(input_of("equals", &origins).as_deref(), Some("equals"));
        assert_eq!(input_of("equals[1]", &origins).as_deref(), Some("equals"));
        assert_eq!(
            input_of("rule_name", &origins).as_deref(),
            Some("rule_name")
        );
    }

    // spec: ING-131, §4.6 (a stored rule reads back into the same form)
    #[test]
    fn a_stored_rule_reads_back_into_the_form() {
        let stored = json!({
            "rule_id": "r1", "rule_name": "Weekend", "priority": 3, "is_directly_discard": false,
            "time_filters": [{"start": "00:00", "end": "00:00", "repeat": [6, 0],
                              "cal_id": "cn", "is_off": true}],
            "filters": [[{"key": "severity", "oper": "IN", "vals": ["Info"]},
                         {"key": "labels.env", "oper": "NOTIN", "vals": ["prod", "staging"]}]]
        });
        let f = RuleForm::of_rule(&stored);
        assert_eq!(f.window, "weekly");
        assert_eq!(f.behaviour, "mark");
        assert_eq!(f.rows[1].vals, "prod\nstaging");
        assert_eq!(f.rows[1].group, "1");
        let (body, _) = body_of(Kind::Silence, &f).unwrap();
        assert_eq!(body["filters"], stored["filters"]);
        assert_eq!(body["time_filters"], stored["time_filters"]);
        assert_eq!(body["priority"], 3);
        let padded = f.padded();
        assert_eq!(padded.rows.len(), 4);
        assert_eq!(padded.windows.len(), 2);
    }

    // spec: ING-132 (an expired one-off rule stays, shown as expired), §4.6 text rendering
    #[test]
    fn listed_rules_show_state_window_and_conditions() {
        let r = json!({
            "rule_id": "r1", "rule_name": "Deploy", "status": "enabled", "priority": 0,
            "is_directly_discard": false,
            "time_filter": {"start_time": 1_795_730_400, "end_time": 1_795_759_200},
            "filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical", "Warning"]},
                         {"key": "labels.check", "oper": "IN", "vals": ["Binlog Sync Delay"]}],
                        [{"key": "labels.value", "oper": "IN", "vals": ["num:gt:90"]}]]
        });
        let row = rule_row(Kind::Silence, &r, 1_795_759_200);
        assert_eq!(row["expired"], true);
        assert_eq!(row["enabled"], true);
        assert_eq!(
            row["conditions"],
            "( severity == Critical|Warning && labels.check == Binlog Sync Delay ) or ( labels.value == num:gt:90 )"
        );
        assert_eq!(
            row["window"],
            "from 2026-11-26 22:00 UTC to 2026-11-27 06:00 UTC"
        );
        assert_eq!(rule_row(Kind::Silence, &r, 1_795_759_199)["expired"], false);
        let weekly = json!({"status": "disabled", "filters": [],
            "time_filters": [{"start": "22:00", "end": "06:00", "repeat": [1, 2]}]});
        let row = rule_row(Kind::Silence, &weekly, 0);
        assert_eq!(row["window"], "Mon, Tue 22:00–06:00");
        assert_eq!(row["enabled"], false);
        assert_eq!(row["conditions"], Value::Null);
    }
}
