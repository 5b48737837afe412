//! Editing a schedule from the console: its rotation layers (name, who takes turns, rotation
//! length and unit, start date and handoff time; add and remove layers), its overrides (add
//! one, remove a future one, end a running one early) and its calendar-feed link. Every write
//! is `/schedule/update` or `/schedule/feed/reset`, so RSP-225 (edits never change the past)
//! and RSP-228 (validation) are the API's own; a refusal comes back next to the input it
//! names, with everything typed kept.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::tz::TimeZone;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, now_secs, page_headers};
use super::schedule_views::{local_date, local_input, zone};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schedules/{id}/layers", get(layers_page).post(layers_save))
        .route("/schedules/{id}/overrides", post(override_add))
        .route("/schedules/{id}/overrides/{oid}/{verb}", post(override_act))
        .route("/schedules/{id}/feed", post(feed_reset))
}

/// Empty turn rows an edited layer offers past its members, and rows of a new layer.
const SPARE_TURNS: usize = 2;
const NEW_LAYER_TURNS: usize = 3;
pub(super) const UNITS: [(&str, &str); 4] = [
    ("hour", "hours"),
    ("day", "days"),
    ("week", "weeks"),
    ("month", "months"),
];

pub(super) fn schedule_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no such schedule"))
}

/// The stored schedule (no computed views).
async fn stored(state: &AppState, viewer: &Viewer, id: i64) -> Result<Value, ApiError> {
    // `/schedule/info` needs a window; a short one keeps the computation small.
    let now = now_secs(state);
    fetch(
        state,
        viewer,
        "/schedule/info",
        json!({"schedule_id": id, "start": now, "end": now + 3600}),
    )
    .await
}

/// The opening every editing handler shares: the signed-in viewer and the schedule id from
/// the path. Any failure is already the response to send (sign-in redirect or error page).
async fn open(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    here: &str,
    raw_id: &str,
) -> Result<(Viewer, i64), Response> {
    let viewer = viewer(state, method, headers, here).await?;
    let id = schedule_id(raw_id).map_err(|e| page_error(&e))?;
    Ok((viewer, id))
}

/// [`open`] plus the stored schedule, for the handlers that edit it.
async fn open_stored(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    here: &str,
    raw_id: &str,
) -> Result<(Viewer, i64, Value), Response> {
    let (viewer, id) = open(state, method, headers, here, raw_id).await?;
    let s = stored(state, &viewer, id)
        .await
        .map_err(|e| page_error(&e))?;
    Ok((viewer, id, s))
}

fn status_of(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

// --- the layer editor ----------------------------------------------------------------------

/// One person's place in a layer: people with the same turn number are on call together.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct Turn {
    turn: String,
    person: String,
    /// The on-call role the person holds in the stored group, kept through an edit.
    role: String,
}

/// One layer as the editor shows it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct LayerForm {
    /// Empty for a new layer.
    layer_id: String,
    remove: bool,
    name: String,
    rotation_value: String,
    rotation_unit: String,
    start_date: String,
    handoff: String,
    turns: Vec<Turn>,
}

impl LayerForm {
    fn is_blank(&self) -> bool {
        self.layer_id.is_empty()
            && self.name.trim().is_empty()
            && self.turns.iter().all(|t| t.person.is_empty())
    }

    fn blank(tz: &TimeZone, now: i64) -> LayerForm {
        LayerForm {
            rotation_value: "1".into(),
            rotation_unit: "week".into(),
            start_date: local_date(tz, now).to_string(),
            handoff: "09:00".into(),
            turns: (1..=NEW_LAYER_TURNS)
                .map(|n| Turn {
                    turn: n.to_string(),
                    ..Turn::default()
                })
                .collect(),
            ..LayerForm::default()
        }
    }

    /// A stored wire layer (`mode = 0`) as the editor shows it, times in `tz`.
    fn of(l: &Value, tz: &TimeZone) -> LayerForm {
        let start = l["layer_start"].as_i64().unwrap_or(0);
        let local = local_input(tz, start);
        let (date, time) = local.split_once('T').unwrap_or(("", ""));
        // With a weekly handoff point its time is the handoff time.
        let handoff = l["handoff"]["time"]
            .as_str()
            .map_or_else(|| time.to_string(), str::to_string);
        let mut turns = Vec::new();
        for (g, group) in l["groups"].as_array().into_iter().flatten().enumerate() {
            for m in group["members"].as_array().into_iter().flatten() {
                turns.push(Turn {
                    turn: (g + 1).to_string(),
                    person: m["person_id"].as_i64().unwrap_or(0).to_string(),
                    role: m["role_id"].as_i64().unwrap_or(0).to_string(),
                });
            }
        }
        let next = l["groups"].as_array().map_or(0, Vec::len);
        for n in 0..SPARE_TURNS {
            turns.push(Turn {
                turn: (next + n + 1).to_string(),
                ..Turn::default()
            });
        }
        LayerForm {
            layer_id: l["layer_id"].as_i64().unwrap_or(0).to_string(),
            remove: false,
            name: l["layer_name"].as_str().unwrap_or("").to_string(),
            rotation_value: l["rotation_value"].as_i64().unwrap_or(1).to_string(),
            rotation_unit: l["rotation_unit"].as_str().unwrap_or("week").to_string(),
            start_date: date.to_string(),
            handoff,
            turns,
        }
    }
}

/// Every layer of the editor, the last one the "new layer" slot.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct LayersForm {
    layers: Vec<LayerForm>,
}

/// The largest `n` of the keys `{prefix}{n}{suffix}`.
fn max_index(pairs: &[(String, String)], prefix: &str, suffix: &str) -> Option<usize> {
    pairs
        .iter()
        .filter_map(|(k, _)| {
            k.strip_prefix(prefix)?
                .strip_suffix(suffix)?
                .parse::<usize>()
                .ok()
        })
        .max()
}

impl LayersForm {
    fn of(s: &Value, tz: &TimeZone, now: i64) -> LayersForm {
        let mut layers: Vec<LayerForm> = s["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["mode"].as_i64().unwrap_or(0) == 0)
            .map(|l| LayerForm::of(l, tz))
            .collect();
        layers.push(LayerForm::blank(tz, now));
        LayersForm { layers }
    }

    /// Fields `l{i}_name`, `l{i}_t{n}_person`, … in order.
    fn parse(pairs: &[(String, String)]) -> LayersForm {
        let Some(last) = max_index(pairs, "l", "_name") else {
            return LayersForm::default();
        };
        let layers = (0..=last)
            .map(|i| {
                let f = |k: &str| form_value(pairs, &format!("l{i}_{k}"));
                let prefix = format!("l{i}_t");
                let turns = max_index(pairs, &prefix, "_person").map_or_else(Vec::new, |n| {
                    (0..=n)
                        .map(|t| Turn {
                            turn: f(&format!("t{t}_turn")).trim().to_string(),
                            person: f(&format!("t{t}_person")),
                            role: f(&format!("t{t}_role")),
                        })
                        .collect()
                });
                LayerForm {
                    layer_id: f("id").trim().to_string(),
                    remove: !f("remove").is_empty(),
                    name: f("name"),
                    rotation_value: f("rotation_value").trim().to_string(),
                    rotation_unit: f("rotation_unit"),
                    start_date: f("start_date").trim().to_string(),
                    handoff: f("handoff").trim().to_string(),
                    turns,
                }
            })
            .collect();
        LayersForm { layers }
    }

    /// The `/schedule/update` body: every kept layer (the stored wire layer of the same
    /// `layer_id`, so what the editor does not show — masks, restrictions, an end — stays as
    /// it is, with the shown fields replaced), and for each sent layer the form layer it came
    /// from. Overrides are left out, so the API keeps them.
    fn body(
        &self,
        schedule_id: i64,
        stored: &Value,
        tz: &TimeZone,
    ) -> Result<(Value, Vec<usize>), FieldErrors> {
        let stored_layers: BTreeMap<String, &Value> = stored["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["mode"].as_i64().unwrap_or(0) == 0)
            .map(|l| (l["layer_id"].as_i64().unwrap_or(0).to_string(), l))
            .collect();
        let mut sent = Vec::new();
        let mut origin = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            if l.remove || l.is_blank() {
                continue;
            }
            let date: jiff::civil::Date = l.start_date.parse().map_err(|_| {
                FieldErrors::one(
                    &format!("l{i}_start_date"),
                    format!(
                        "layers[{i}].layer_start: {:?} is not a date (YYYY-MM-DD)",
                        l.start_date
                    ),
                )
            })?;
            let time: jiff::civil::Time = l.handoff.parse().map_err(|_| {
                FieldErrors::one(
                    &format!("l{i}_handoff"),
                    format!(
                        "layers[{i}].layer_start: {:?} is not a time of day (HH:MM)",
                        l.handoff
                    ),
                )
            })?;
            let start = tz
                .to_ambiguous_timestamp(date.to_datetime(time))
                .compatible()
                .map(|t| t.as_second())
                .map_err(|e| {
                    FieldErrors::one(
                        &format!("l{i}_start_date"),
                        format!("layers[{i}].layer_start: {e}"),
                    )
                })?;
            let value = l.rotation_value.parse::<i64>().map_err(|_| {
                FieldErrors::one(
                    &format!("l{i}_rotation_value"),
                    format!(
                        "layers[{i}].rotation_value: {:?} is not a whole number",
                        l.rotation_value
                    ),
                )
            })?;
            // Turn numbers order the groups; a person row left empty is no one.
            let mut by_turn: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
            for t in l.turns.iter().filter(|t| !t.person.is_empty()) {
                let n = t
                    .turn
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        FieldErrors::one(
                            &format!("l{i}_turns"),
                            format!(
                                "layers[{i}].groups: the turn {:?} is not a number from 1",
                                t.turn
                            ),
                        )
                    })?;
                let person = t
                    .person
                    .parse::<i64>()
                    .map_or_else(|_| json!(t.person), |n| json!(n));
                let role = t.role.parse::<i64>().unwrap_or(0);
                by_turn
                    .entry(n)
                    .or_default()
                    .push(json!({"person_id": person, "role_id": role}));
            }
            let mut layer = stored_layers
                .get(&l.layer_id)
                .map_or_else(|| json!({}), |v| (*v).clone());
            let names: Vec<Value> = layer["groups"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|g| g["group_name"].clone())
                .collect();
            let groups: Vec<Value> = by_turn
                .into_values()
                .enumerate()
                .map(|(g, members)| {
                    json!({
                        "group_name": names.get(g).cloned().unwrap_or(json!("")),
                        "members": members,
                    })
                })
                .collect();
            if let Some(obj) = layer.as_object_mut() {
                obj.insert("mode".into(), json!(0));
                obj.insert("layer_name".into(), json!(l.name.trim()));
                obj.insert("groups".into(), json!(groups));
                obj.insert("layer_start".into(), json!(start));
                obj.insert("rotation_unit".into(), json!(l.rotation_unit));
                obj.insert("rotation_value".into(), json!(value));
                obj.remove("handoff_time");
                // A weekly handoff point keeps its weekday and takes the edited time.
                if let Some(h) = obj.get_mut("handoff").and_then(Value::as_object_mut) {
                    h.insert("time".into(), json!(time.strftime("%H:%M").to_string()));
                }
                if l.layer_id.is_empty() {
                    obj.remove("layer_id");
                }
            }
            sent.push(layer);
            origin.push(i);
        }
        Ok((json!({"schedule_id": schedule_id, "layers": sent}), origin))
    }
}

/// The editor input an API error field names; `origin[k]` is the form layer of `layers[k]`.
fn layer_input(field: &str, origin: &[usize]) -> Option<String> {
    if field == "layers" {
        return Some("_form".to_string());
    }
    let (k, rest) = indexed(field, "layers")?;
    let i = *origin.get(k)?;
    let input = match rest.split(['.', '[']).next().unwrap_or("") {
        "layer_name" => "name",
        "rotation_value" => "rotation_value",
        "rotation_unit" => "rotation_unit",
        "groups" => "turns",
        "layer_start" | "layer_end" => "start_date",
        "handoff" | "handoff_time" => "handoff",
        _ => "layer",
    };
    Some(format!("l{i}_{input}"))
}

/// Who can be picked: the account's members, by id, with a name to show.
async fn people(state: &AppState, viewer: &Viewer) -> Result<Vec<Value>, ApiError> {
    let listed = fetch(state, viewer, "/member/list", json!({"limit": 100})).await?;
    Ok(listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            json!({
                "id": m["member_id"].as_i64().unwrap_or(0).to_string(),
                "name": m["member_name"].as_str().filter(|n| !n.is_empty())
                    .or_else(|| m["email"].as_str()).unwrap_or(""),
            })
        })
        .collect())
}

async fn layers_form_page(
    state: &AppState,
    viewer: &Viewer,
    s: &Value,
    form: &LayersForm,
    errors: &FieldErrors,
    status: StatusCode,
    fragment: bool,
) -> Response {
    let people = match people(state, viewer).await {
        Ok(p) => p,
        Err(e) => return page_error(&e),
    };
    let f = context! {
        schedule_id => s["schedule_id"].as_i64().unwrap_or(0),
        time_zone => s["time_zone"].as_str().unwrap_or("UTC").to_string(),
        v => j(form),
        people => j(&people),
        units => UNITS.iter().map(|(k, l)| (k.to_string(), l.to_string())).collect::<Vec<_>>(),
        errors => j(&errors.0),
    };
    let (template, ctx) = if fragment {
        ("schedule_layers_form.html", context! { f => f })
    } else {
        let me = match super::me(state, viewer).await {
            Ok(m) => m,
            Err(e) => return page_error(&e),
        };
        (
            "schedule_layers.html",
            context! {
                title => format!("Layers of {}", s["schedule_name"].as_str().unwrap_or("a schedule")),
                nav => "schedules",
                csrf => viewer.session.csrf_token.clone(),
                me => j(&me),
                s => j(s),
                f => f,
            },
        )
    };
    page_headers((status, view::render(template, ctx)).into_response())
}

async fn layers_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/schedules/{id}/layers");
    let (viewer, _, s) = match open_stored(&state, &Method::GET, &headers, &here, &id).await {
        Ok(opened) => opened,
        Err(resp) => return resp,
    };
    let tz = zone(s["time_zone"].as_str().unwrap_or("UTC"));
    let form = LayersForm::of(&s, &tz, now_secs(&state));
    layers_form_page(
        &state,
        &viewer,
        &s,
        &form,
        &FieldErrors::default(),
        StatusCode::OK,
        false,
    )
    .await
}

/// Saves the layers and opens the schedule's page; a refusal redraws the editor with the
/// API's message beside the field and what was typed kept.
async fn layers_save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = format!("/schedules/{id}/layers");
    let (viewer, id, s) = match open_stored(&state, &Method::POST, &headers, &here, &id).await {
        Ok(opened) => opened,
        Err(resp) => return resp,
    };
    let tz = zone(s["time_zone"].as_str().unwrap_or("UTC"));
    let form = LayersForm::parse(&form_pairs(&body));
    let redraw = |errors: FieldErrors, status: StatusCode| {
        let (state, viewer, s, form) = (&state, &viewer, &s, &form);
        async move { layers_form_page(state, viewer, s, form, &errors, status, true).await }
    };
    let (args, origin) = match form.body(id, &s, &tz) {
        Ok(b) => b,
        Err(errors) => return redraw(errors, StatusCode::BAD_REQUEST).await,
    };
    match call(&state, &viewer, "/schedule/update", args).await {
        Ok(_) => redirect(&headers, &format!("/schedules/{id}")),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console schedule layers save failed");
            }
            let errors = FieldErrors::file(&e.message, |f| layer_input(f, &origin));
            redraw(errors, status_of(&e)).await
        }
    }
}

// --- overrides -----------------------------------------------------------------------------

/// The override form: who takes over, from and until when (local, in the schedule's zone).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(super) struct OverrideForm {
    pub person: String,
    pub start: String,
    pub end: String,
    pub note: String,
}

/// A `datetime-local` value (`YYYY-MM-DDTHH:MM`) in `tz` → Unix seconds.
pub(super) fn local_secs(raw: &str, tz: &TimeZone) -> Option<i64> {
    let dt: jiff::civil::DateTime = raw.trim().parse().ok()?;
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .ok()
        .map(|t| t.as_second())
}

impl OverrideForm {
    fn parse(pairs: &[(String, String)]) -> OverrideForm {
        OverrideForm {
            person: form_value(pairs, "ov_person"),
            start: form_value(pairs, "ov_start").trim().to_string(),
            end: form_value(pairs, "ov_end").trim().to_string(),
            note: form_value(pairs, "ov_note"),
        }
    }

    /// The defaults: from the next full hour, for a day.
    pub(super) fn fresh(tz: &TimeZone, now: i64) -> OverrideForm {
        let start = (now / 3600 + 1) * 3600;
        OverrideForm {
            start: local_input(tz, start),
            end: local_input(tz, start + 86_400),
            ..OverrideForm::default()
        }
    }

    /// The `/schedule/update` body: the stored overrides as they are plus this one.
    fn body(&self, schedule_id: i64, stored: &Value, tz: &TimeZone) -> Result<Value, FieldErrors> {
        let person = self
            .person
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| FieldErrors::one("ov_person", "override person_id: pick a person"))?;
        let start = local_secs(&self.start, tz).ok_or_else(|| {
            FieldErrors::one(
                "ov_start",
                format!("override start: {:?} is not a date and time", self.start),
            )
        })?;
        let end = local_secs(&self.end, tz).ok_or_else(|| {
            FieldErrors::one(
                "ov_end",
                format!("override end: {:?} is not a date and time", self.end),
            )
        })?;
        let mut overrides = stored["overrides"].as_array().cloned().unwrap_or_default();
        overrides.push(json!({
            "start": start, "end": end, "person_id": person, "note": self.note.trim(),
        }));
        Ok(json!({"schedule_id": schedule_id, "overrides": overrides}))
    }
}

/// The override input an API error field names (`overrides[k].end`, …).
fn override_input(field: &str) -> Option<String> {
    let (_, rest) = indexed(field, "overrides")?;
    let input = match rest {
        "start" => "ov_start",
        "end" => "ov_end",
        "person_id" => "ov_person",
        "note" => "ov_note",
        _ => return None,
    };
    Some(input.to_string())
}

async fn override_form(
    state: &AppState,
    viewer: &Viewer,
    s: &Value,
    form: &OverrideForm,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let people = match people(state, viewer).await {
        Ok(p) => p,
        Err(e) => return page_error(&e),
    };
    let o = context! {
        schedule_id => s["schedule_id"].as_i64().unwrap_or(0),
        time_zone => s["time_zone"].as_str().unwrap_or("UTC").to_string(),
        v => j(form),
        people => j(&people),
        errors => j(&errors.0),
    };
    page_headers(
        (
            status,
            view::render("schedule_override_form.html", context! { o => o }),
        )
            .into_response(),
    )
}

pub(super) async fn override_people(
    state: &AppState,
    viewer: &Viewer,
) -> Result<Vec<Value>, ApiError> {
    people(state, viewer).await
}

async fn override_add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = format!("/schedules/{id}");
    let (viewer, id, s) = match open_stored(&state, &Method::POST, &headers, &here, &id).await {
        Ok(opened) => opened,
        Err(resp) => return resp,
    };
    let tz = zone(s["time_zone"].as_str().unwrap_or("UTC"));
    let form = OverrideForm::parse(&form_pairs(&body));
    let args = match form.body(id, &s, &tz) {
        Ok(a) => a,
        Err(errors) => {
            return override_form(&state, &viewer, &s, &form, &errors, StatusCode::BAD_REQUEST)
                .await;
        }
    };
    match call(&state, &viewer, "/schedule/update", args).await {
        Ok(_) => redirect(&headers, &format!("/schedules/{id}")),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console override save failed");
            }
            let errors = FieldErrors::file(&e.message, override_input);
            override_form(&state, &viewer, &s, &form, &errors, status_of(&e)).await
        }
    }
}

/// The stored overrides with `oid` removed (`remove`) or ended at `now` (`end`).
fn overrides_after(stored: &Value, oid: i64, verb: &str, now: i64) -> Option<Vec<Value>> {
    let mut list = stored["overrides"].as_array().cloned().unwrap_or_default();
    let at = list
        .iter()
        .position(|o| o["override_id"].as_i64() == Some(oid))?;
    match verb {
        "remove" => {
            list.remove(at);
        }
        "end" => {
            if let Some(obj) = list[at].as_object_mut() {
                obj.insert("end".into(), json!(now));
            }
        }
        _ => return None,
    }
    Some(list)
}

/// Removes a future override or ends a running one now; a refusal (RSP-225) is shown in the
/// page's alert region.
async fn override_act(
    State(state): State<AppState>,
    Path((id, oid, verb)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/schedules/{id}");
    let (viewer, id, s) = match open_stored(&state, &Method::POST, &headers, &here, &id).await {
        Ok(opened) => opened,
        Err(resp) => return resp,
    };
    let Some(overrides) = oid
        .parse::<i64>()
        .ok()
        .and_then(|oid| overrides_after(&s, oid, &verb, now_secs(&state)))
    else {
        return super::error_text(&ApiError::new(
            ErrorCode::ResourceNotFound,
            "no such override",
        ));
    };
    match call(
        &state,
        &viewer,
        "/schedule/update",
        json!({"schedule_id": id, "overrides": overrides}),
    )
    .await
    {
        Ok(_) => redirect(&headers, &format!("/schedules/{id}")),
        Err(e) => super::error_text(&e),
    }
}

// --- the calendar feed ---------------------------------------------------------------------

/// Issues a fresh subscription URL (`/schedule/feed/reset`) and shows it with a copy button.
/// Only the API knows the secret; the previous URL stops working.
async fn feed_reset(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/schedules/{id}");
    let (viewer, id) = match open(&state, &Method::POST, &headers, &here, &id).await {
        Ok(opened) => opened,
        Err(resp) => return resp,
    };
    let (status, feed, error) = match fetch(
        &state,
        &viewer,
        "/schedule/feed/reset",
        json!({"schedule_id": id}),
    )
    .await
    {
        Ok(f) => (
            StatusCode::OK,
            f["feed_url"].as_str().unwrap_or("").to_string(),
            String::new(),
        ),
        Err(e) => (status_of(&e), String::new(), e.message),
    };
    let ctx = context! { schedule_id => id, feed_url => feed, feed_error => error };
    page_headers((status, view::render("schedule_feed.html", ctx)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(raw).unwrap()
    }

    fn stored() -> Value {
        json!({
            "schedule_id": 7,
            "time_zone": "Europe/Berlin",
            "layers": [
                {"layer_id": 3, "layer_name": "Day", "mode": 0, "weight": 2,
                 "groups": [{"group_name": "A", "members": [{"person_id": 1, "role_id": 2}]},
                            {"group_name": "B", "members": [{"person_id": 2, "role_id": 0}]}],
                 "layer_start": 1_767_600_000, "rotation_unit": "week", "rotation_value": 1,
                 "handoff": null, "handoff_time": 0,
                 "day_mask": {"repeat": [1, 2, 3, 4, 5]}, "restrict_mode": 0},
                {"layer_id": 1, "layer_name": "cover", "mode": 1,
                 "groups": [{"members": [{"person_id": 2}]}],
                 "layer_start": 1_767_700_000, "layer_end": 1_767_800_000},
            ],
            "overrides": [{"override_id": 1, "start": 1_767_700_000, "end": 1_767_800_000,
                           "person_id": 2, "created_by": 1, "created_at": 1, "note": "cover"}],
        })
    }

    // spec: RSP-228 — the editor shows each stored rotation layer, overrides aside, plus a
    // blank one to add; the handoff time is read in the schedule's zone.
    #[test]
    fn stored_layers_become_editor_rows() {
        let tz = zone("Europe/Berlin");
        let f = LayersForm::of(&stored(), &tz, 1_767_600_000);
        assert_eq!(f.layers.len(), 2);
        let l = &f.layers[0];
        assert_eq!(l.layer_id, "3");
        assert_eq!(l.start_date, "2026-01-05");
        // 08:00 UTC is 09:00 in Berlin.
        assert_eq!(l.handoff, "09:00");
        assert_eq!(l.turns.len(), 2 + SPARE_TURNS);
        assert_eq!(l.turns[1].turn, "2");
        assert_eq!(l.turns[1].person, "2");
        assert_eq!(l.turns[0].role, "2");
        assert!(f.layers[1].is_blank());
    }

    #[test]
    fn an_edited_layer_keeps_what_the_editor_does_not_show() {
        let tz = zone("Europe/Berlin");
        let form = LayersForm::parse(&pairs(
            "l0_id=3&l0_name=Days&l0_rotation_value=2&l0_rotation_unit=day\
             &l0_start_date=2026-01-05&l0_handoff=10%3A00\
             &l0_t0_turn=2&l0_t0_person=1&l0_t0_role=2\
             &l0_t1_turn=1&l0_t1_person=2&l0_t1_role=0\
             &l0_t2_turn=1&l0_t2_person=3&l0_t2_role=\
             &l0_t3_turn=3&l0_t3_person=&l0_t3_role=\
             &l1_id=&l1_name=&l1_rotation_value=1&l1_rotation_unit=week\
             &l1_start_date=2026-01-05&l1_handoff=09%3A00&l1_t0_turn=1&l1_t0_person=",
        ));
        let (b, origin) = form.body(7, &stored(), &tz).unwrap();
        assert_eq!(origin, vec![0], "the blank new layer is not sent");
        let l = &b["layers"][0];
        assert_eq!(b["schedule_id"], 7);
        assert!(
            b.get("overrides").is_none(),
            "overrides are the API's to keep"
        );
        assert_eq!(l["layer_id"], 3);
        assert_eq!(l["layer_name"], "Days");
        assert_eq!(l["rotation_value"], 2);
        assert_eq!(l["rotation_unit"], "day");
        // 10:00 in Berlin is 09:00 UTC.
        assert_eq!(l["layer_start"], 1_767_603_600);
        // Turn 1 first: persons 2 and 3 together, then person 1 with the role kept.
        assert_eq!(l["groups"][0]["members"][0]["person_id"], 2);
        assert_eq!(l["groups"][0]["members"][1]["person_id"], 3);
        assert_eq!(l["groups"][1]["members"][0]["person_id"], 1);
        assert_eq!(l["groups"][1]["members"][0]["role_id"], 2);
        assert_eq!(l["groups"][0]["group_name"], "A");
        assert_eq!(l["day_mask"]["repeat"][0], 1, "the mask stays");
        assert_eq!(l["weight"], 2);
        assert!(l.get("handoff_time").is_none());
    }

    #[test]
    fn removed_layers_are_left_out_and_new_ones_added() {
        let tz = TimeZone::UTC;
        let form = LayersForm::parse(&pairs(
            "l0_id=3&l0_remove=on&l0_name=Day&l0_rotation_value=1&l0_rotation_unit=week\
             &l0_start_date=2026-01-05&l0_handoff=09%3A00&l0_t0_turn=1&l0_t0_person=1\
             &l1_id=&l1_name=Night&l1_rotation_value=1&l1_rotation_unit=day\
             &l1_start_date=2026-01-05&l1_handoff=21%3A00&l1_t0_turn=1&l1_t0_person=2",
        ));
        let (b, origin) = form.body(7, &stored(), &tz).unwrap();
        assert_eq!(origin, vec![1]);
        assert_eq!(b["layers"].as_array().unwrap().len(), 1);
        assert_eq!(b["layers"][0]["layer_name"], "Night");
        assert!(b["layers"][0].get("layer_id").is_none());
        assert_eq!(b["layers"][0]["layer_start"], 1_767_646_800);
    }

    #[test]
    fn unreadable_values_are_refused_at_their_layer_input() {
        let tz = TimeZone::UTC;
        let base = "l0_id=&l0_name=X&l0_rotation_unit=week&l0_t0_turn=1&l0_t0_person=1";
        let e = LayersForm::parse(&pairs(&format!(
            "{base}&l0_rotation_value=x&l0_start_date=2026-01-05&l0_handoff=09%3A00"
        )))
        .body(7, &stored(), &tz)
        .unwrap_err();
        assert!(e.0.contains_key("l0_rotation_value"), "{e:?}");
        let e = LayersForm::parse(&pairs(&format!(
            "{base}&l0_rotation_value=1&l0_start_date=soon&l0_handoff=09%3A00"
        )))
        .body(7, &stored(), &tz)
        .unwrap_err();
        assert!(e.0.contains_key("l0_start_date"));
        let e = LayersForm::parse(&pairs(
            "l0_id=&l0_name=X&l0_rotation_unit=week&l0_rotation_value=1\
             &l0_start_date=2026-01-05&l0_handoff=09%3A00&l0_t0_turn=first&l0_t0_person=1",
        ))
        .body(7, &stored(), &tz)
        .unwrap_err();
        assert!(e.0.contains_key("l0_turns"));
    }

    #[test]
    fn api_errors_go_to_the_form_layer_they_came_from() {
        // Form layer 0 was removed: the API's layers[0] is form layer 1.
        let origin = [1, 2];
        assert_eq!(
            layer_input("layers[0].rotation_value", &origin).as_deref(),
            Some("l1_rotation_value")
        );
        assert_eq!(
            layer_input("layers[1].groups[0].members", &origin).as_deref(),
            Some("l2_turns")
        );
        assert_eq!(
            layer_input("layers[1].restrict_periods", &origin).as_deref(),
            Some("l2_layer")
        );
        assert_eq!(layer_input("layers", &origin).as_deref(), Some("_form"));
        assert_eq!(layer_input("schedule_name", &origin), None);
    }

    // spec: RSP-212 — an override is one person over a window, read in the schedule's zone,
    // sent with the stored overrides unchanged.
    #[test]
    fn an_override_is_added_to_the_stored_ones() {
        let tz = zone("Europe/Berlin");
        let f = OverrideForm::parse(&pairs(
            "ov_person=3&ov_start=2026-01-05T09%3A00&ov_end=2026-01-06T09%3A00&ov_note=swap",
        ));
        let b = f.body(7, &stored(), &tz).unwrap();
        let list = b["overrides"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["override_id"], 1);
        assert_eq!(list[1]["person_id"], 3);
        assert_eq!(list[1]["start"], 1_767_600_000);
        assert_eq!(list[1]["end"], 1_767_686_400);
        assert_eq!(list[1]["note"], "swap");
        let e = OverrideForm::parse(&pairs("ov_person=&ov_start=x&ov_end=y"))
            .body(7, &stored(), &tz)
            .unwrap_err();
        assert!(e.0.contains_key("ov_person"));
        let e = OverrideForm::parse(&pairs("ov_person=3&ov_start=x&ov_end=y"))
            .body(7, &stored(), &tz)
            .unwrap_err();
        assert!(e.0.contains_key("ov_start"));
        assert_eq!(
            override_input("overrides[1].end").as_deref(),
            Some("ov_end")
        );
        assert_eq!(override_input("overrides[1]"), None);
    }

    // spec: RSP-225 — a future override is removed, a running one ended at now.
    #[test]
    fn overrides_are_removed_or_ended() {
        let s = stored();
        assert_eq!(overrides_after(&s, 1, "remove", 5).unwrap().len(), 0);
        let ended = overrides_after(&s, 1, "end", 1_767_750_000).unwrap();
        assert_eq!(ended[0]["end"], 1_767_750_000);
        assert_eq!(ended[0]["start"], 1_767_700_000);
        assert!(overrides_after(&s, 9, "remove", 5).is_none());
        assert!(overrides_after(&s, 1, "explode", 5).is_none());
    }
}
