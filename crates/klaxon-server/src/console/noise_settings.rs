//! The noise reduction settings of a channel (ingest.md §1.3.6, §1.5.1, §1.5.2): grouping
//! (off, by dimensions, by similarity), its window, the storm thresholds and flapping, with a
//! preview (ING-160) of the incidents the channel's recent events would have made under the
//! settings in the form, before they are saved.
//!
//! Reads and saves are the Open API's `/channel/info` and `/channel/update`; the preview is
//! `/channel/grouping/preview`, which replays the stored events through the same grouping
//! code as the inbox and writes nothing. Every value is checked by the API; the console only
//! refuses what cannot be sent at all (a number that is not one).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, page_headers};
use super::noise::{Row, groups_of, padded_rows, parse_rows, row_input, rows_of};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels/{cid}/noise", get(page).post(save))
        .route("/channels/{cid}/noise/preview", post(preview))
}

fn channel_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no such channel"))
}

/// The settings as the form shows them: everything as typed text.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(super) struct SettingsForm {
    /// `n` (off), `p` (by dimensions) or `i` (by similarity).
    pub method: String,
    /// Dimensions of rule-based grouping, comma-separated.
    pub dims: String,
    pub strict: bool,
    /// Similarity keys, comma-separated.
    pub i_keys: String,
    pub i_threshold: String,
    pub time_window: String,
    pub window_type: String,
    /// Storm thresholds, comma-separated.
    pub storm: String,
    /// Rule-based grouping cases (ING-154), in order: the first whose conditions all match
    /// an alert gives its dimensions.
    pub cases: Vec<CaseForm>,
    pub flap_mode: String,
    pub max_changes: String,
    pub in_mins: String,
    pub mute_mins: String,
}

/// One grouping case as the form shows it: condition rows (all must match) and dimensions.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(super) struct CaseForm {
    pub rows: Vec<Row>,
    /// Dimensions, comma-separated.
    pub dims: String,
}

impl CaseForm {
    fn is_blank(&self) -> bool {
        self.dims.trim().is_empty() && self.rows.iter().all(Row::is_blank)
    }
}

/// Where each wire case came from: its form case and the row of each condition.
type CaseMap = Vec<(usize, Vec<Vec<usize>>)>;

/// The input of a `group.cases[i]…` error: the case's dimensions, a condition's row, or the
/// case's conditions as a whole.
fn case_input(field: &str, map: &CaseMap) -> Option<String> {
    let (i, rest) = indexed(field, "group.cases")?;
    let (k, at) = map.get(i)?;
    if rest.starts_with("equals") {
        return Some(format!("k{k}_dims"));
    }
    row_input(rest, "if", &format!("k{k}c"), at).or_else(|| Some(format!("k{k}c_rows")))
}

fn joined(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn number_text(v: &Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        v.to_string()
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn whole(input: &str, field: &str, text: &str, unit: &str) -> Result<Option<i64>, FieldErrors> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>()
        .map(Some)
        .map_err(|_| FieldErrors::one(input, format!("{field}: {t:?} is not a whole number{unit}")))
}

impl SettingsForm {
    /// The form of a stored channel (`/channel/info`).
    pub fn of_channel(c: &Value) -> SettingsForm {
        let g = &c["group"];
        let f = &c["flapping"];
        let cases = g["cases"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| CaseForm {
                rows: rows_of(&json!([c["if"].clone()])),
                dims: c["equals"]
                    .as_array()
                    .and_then(|a| a.first())
                    .map(joined)
                    .unwrap_or_default(),
            })
            .collect();
        SettingsForm {
            method: g["method"].as_str().unwrap_or("n").to_string(),
            dims: g["equals"]
                .as_array()
                .and_then(|a| a.first())
                .map(joined)
                .unwrap_or_default(),
            strict: g["all_equals_required"].as_bool().unwrap_or(false),
            i_keys: joined(&g["i_keys"]),
            i_threshold: number_text(&g["i_score_threshold"]),
            time_window: number_text(&g["time_window"]),
            window_type: g["window_type"].as_str().unwrap_or("sliding").to_string(),
            storm: joined(&g["storm_thresholds"]),
            cases,
            flap_mode: f["mode"].as_str().unwrap_or("off").to_string(),
            max_changes: number_text(&f["max_changes"]),
            in_mins: number_text(&f["in_mins"]),
            mute_mins: number_text(&f["mute_mins"]),
        }
    }

    pub fn parse(pairs: &[(String, String)]) -> SettingsForm {
        let v = |k: &str| form_value(pairs, k);
        SettingsForm {
            method: v("method"),
            dims: v("dims"),
            strict: v("strict") == "true",
            i_keys: v("i_keys"),
            i_threshold: v("i_threshold").trim().to_string(),
            time_window: v("time_window").trim().to_string(),
            window_type: v("window_type"),
            storm: v("storm"),
            cases: (0..)
                .map_while(|k| {
                    let dims_key = format!("k{k}_dims");
                    pairs
                        .iter()
                        .any(|(key, _)| *key == dims_key)
                        .then(|| CaseForm {
                            rows: parse_rows(pairs, &format!("k{k}c")),
                            dims: v(&dims_key),
                        })
                })
                .collect(),
            flap_mode: v("flap_mode"),
            max_changes: v("max_changes").trim().to_string(),
            in_mins: v("in_mins").trim().to_string(),
            mute_mins: v("mute_mins").trim().to_string(),
        }
    }

    /// The wire `group{}` (ingest.md §1.5.1) of the form.
    pub fn group(&self) -> Result<Value, FieldErrors> {
        let method = if self.method.is_empty() {
            "n"
        } else {
            self.method.as_str()
        };
        let mut g = json!({"method": method, "window_type": self.window_type});
        if let Some(w) = whole(
            "time_window",
            "group.time_window",
            &self.time_window,
            " of minutes",
        )? {
            g["time_window"] = json!(w);
        }
        let mut storm = Vec::new();
        for t in list(&self.storm) {
            match t.parse::<i64>() {
                Ok(n) => storm.push(json!(n)),
                Err(_) => {
                    return Err(FieldErrors::one(
                        "storm",
                        format!("group.storm_thresholds: {t:?} is not a whole number"),
                    ));
                }
            }
        }
        g["storm_thresholds"] = Value::Array(storm);
        match method {
            "p" => {
                g["equals"] = json!([list(&self.dims)]);
                g["all_equals_required"] = json!(self.strict);
                let (cases, _) = self.wire_cases()?;
                g["cases"] = Value::Array(cases);
            }
            "i" => {
                g["i_keys"] = json!(list(&self.i_keys));
                let t = self.i_threshold.trim();
                if !t.is_empty() {
                    let n = t.parse::<f64>().map_err(|_| {
                        FieldErrors::one(
                            "i_threshold",
                            format!(
                                "group.i_score_threshold: {t:?} is not a number (0.50 to 1.00)"
                            ),
                        )
                    })?;
                    g["i_score_threshold"] = json!(n);
                }
            }
            _ => {}
        }
        Ok(g)
    }

    /// The wire `group.cases` (ingest.md §1.5.1: `{if, equals}`, a flat AND list each) of
    /// the cases that are not blank, and where each came from.
    fn wire_cases(&self) -> Result<(Vec<Value>, CaseMap), FieldErrors> {
        let mut out = Vec::new();
        let mut map = Vec::new();
        for (k, c) in self.cases.iter().enumerate() {
            if c.is_blank() {
                continue;
            }
            let (groups, at) = groups_of(&c.rows, &format!("k{k}c"))?;
            let conds = groups
                .as_array()
                .and_then(|g| g.first())
                .cloned()
                .unwrap_or_else(|| json!([]));
            out.push(json!({"if": conds, "equals": [list(&c.dims)]}));
            map.push((k, at));
        }
        Ok((out, map))
    }

    /// The form as drawn: condition rows padded, and one empty case to add one.
    fn padded(&self) -> SettingsForm {
        let mut f = self.clone();
        f.cases.retain(|c| !c.is_blank());
        for c in &mut f.cases {
            c.rows = padded_rows(std::mem::take(&mut c.rows));
        }
        f.cases.push(CaseForm {
            rows: padded_rows(Vec::new()),
            dims: String::new(),
        });
        f
    }

    /// The wire `flapping{}` (ingest.md §1.5.2) of the form.
    pub fn flapping(&self) -> Result<Value, FieldErrors> {
        let mut f = json!({"mode": self.flap_mode});
        for (input, unit) in [
            ("max_changes", ""),
            ("in_mins", " of minutes"),
            ("mute_mins", " of minutes"),
        ] {
            let text = match input {
                "max_changes" => &self.max_changes,
                "in_mins" => &self.in_mins,
                _ => &self.mute_mins,
            };
            if let Some(n) = whole(input, &format!("flapping.{input}"), text, unit)? {
                f[input] = json!(n);
            }
        }
        Ok(f)
    }
}

/// The input an API error field belongs to (`group.equals[0][1]` → `dims`).
pub(super) fn input_of(field: &str) -> Option<String> {
    let input = if let Some(rest) = field.strip_prefix("group.") {
        let name = rest.split(['.', '[']).next().unwrap_or(rest);
        match name {
            "time_window" => "time_window",
            "window_type" => "window_type",
            "equals" => "dims",
            "all_equals_required" => "strict",
            "i_keys" => "i_keys",
            "i_score_threshold" => "i_threshold",
            "storm_thresholds" | "storm_threshold" => "storm",
            "method" => "method",
            _ => return None,
        }
    } else if let Some(rest) = field.strip_prefix("flapping.") {
        match rest {
            "max_changes" => "max_changes",
            "in_mins" => "in_mins",
            "mute_mins" => "mute_mins",
            _ => "flap_mode",
        }
    } else {
        return None;
    };
    Some(input.to_string())
}

fn status_of(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The preview of `group` for the channel: the API's answer, or its refusal as text.
async fn preview_ctx(
    state: &AppState,
    viewer: &Viewer,
    cid: i64,
    group: Result<Value, FieldErrors>,
) -> (StatusCode, minijinja::Value) {
    let group = match group {
        Ok(g) => g,
        Err(errors) => {
            let msg = errors.0.values().next().cloned().unwrap_or_default();
            return (StatusCode::BAD_REQUEST, context! { error => msg });
        }
    };
    match fetch(
        state,
        viewer,
        "/channel/grouping/preview",
        json!({"channel_id": cid, "group": group}),
    )
    .await
    {
        Ok(p) => (StatusCode::OK, context! { p => j(&p) }),
        Err(e) => (status_of(&e), context! { error => e.message }),
    }
}

fn form_ctx(channel: &Value, form: &SettingsForm, errors: &FieldErrors) -> minijinja::Value {
    context! {
        channel => j(channel),
        v => j(&form.padded()),
        errors => j(&errors.0),
    }
}

async fn page(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/channels/{cid}/noise");
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let channel = match fetch(&state, &viewer, "/channel/info", json!({"channel_id": cid})).await {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let me = match super::me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let form = SettingsForm::of_channel(&channel);
    let (_, preview) = preview_ctx(&state, &viewer, cid, form.group()).await;
    let ctx = context! {
        title => "Noise reduction",
        nav => "channels",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        saved => q.contains_key("saved"),
        f => form_ctx(&channel, &form, &FieldErrors::default()),
        preview => preview,
    };
    page_headers(view::render("noise_settings.html", ctx).into_response())
}

/// The preview fragment for the settings in the form (nothing saved).
async fn preview(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/channels/{cid}/noise");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let form = SettingsForm::parse(&form_pairs(&body));
    let (status, preview) = preview_ctx(&state, &viewer, cid, form.group()).await;
    page_headers(
        (
            status,
            view::render("noise_preview.html", context! { preview => preview }),
        )
            .into_response(),
    )
}

/// Saves the settings; a refusal draws the form again with the message beside its input and
/// everything typed kept.
async fn save(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/channels/{cid}/noise");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let form = SettingsForm::parse(&form_pairs(&body));
    let outcome = match (form.group(), form.flapping()) {
        (Err(errors), _) | (_, Err(errors)) => Err((errors, StatusCode::BAD_REQUEST)),
        (Ok(group), Ok(flapping)) => {
            let args = json!({"channel_id": cid, "group": group, "flapping": flapping});
            match call(&state, &viewer, "/channel/update", args).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    if e.code == ErrorCode::InternalError {
                        tracing::error!(error = %e.message, "console noise settings save failed");
                    }
                    let map = form.wire_cases().map(|(_, m)| m).unwrap_or_default();
                    let errors = FieldErrors::file(&e.message, |f| {
                        input_of(f).or_else(|| case_input(f, &map))
                    });
                    Err((errors, status_of(&e)))
                }
            }
        }
    };
    match outcome {
        Ok(()) => redirect(&headers, &format!("/channels/{cid}/noise?saved=1")),
        Err((errors, status)) => {
            match fetch(&state, &viewer, "/channel/info", json!({"channel_id": cid})).await {
                Ok(channel) => page_headers(
                    (
                        status,
                        view::render(
                            "noise_settings_form.html",
                            context! { f => form_ctx(&channel, &form, &errors) },
                        ),
                    )
                        .into_response(),
                ),
                Err(e) => page_error(&e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(raw).unwrap()
    }

    // spec: ING-155 (rule-based grouping by dimensions), §1.5.1 (the wire group{})
    #[test]
    fn a_rule_based_form_becomes_the_wire_group() {
        let f = SettingsForm::parse(&pairs(
            "method=p&dims=labels.host%2C+title&strict=true&time_window=30\
             &window_type=tumbling&storm=10%2C+50&i_keys=&i_threshold=",
        ));
        let g = f.group().unwrap();
        assert_eq!(g["method"], "p");
        assert_eq!(g["equals"], json!([["labels.host", "title"]]));
        assert_eq!(g["all_equals_required"], true);
        assert_eq!(g["time_window"], 30);
        assert_eq!(g["window_type"], "tumbling");
        assert_eq!(g["storm_thresholds"], json!([10, 50]));
        assert!(g.get("i_keys").is_none());
    }

    // spec: ING-157 (similarity grouping: keys and threshold)
    #[test]
    fn a_similarity_form_and_a_stored_channel_round_trip() {
        let stored = json!({
            "group": {"method": "i", "i_keys": ["title", "labels.host"], "i_score_threshold": 0.9,
                      "time_window": 60, "window_type": "sliding", "storm_thresholds": [5]},
            "flapping": {"mode": "remind", "max_changes": 4, "in_mins": 60, "mute_mins": 0}
        });
        let f = SettingsForm::of_channel(&stored);
        assert_eq!(f.i_keys, "title, labels.host");
        assert_eq!(f.storm, "5");
        let g = f.group().unwrap();
        assert_eq!(g["i_keys"], stored["group"]["i_keys"]);
        assert_eq!(g["i_score_threshold"], 0.9);
        assert_eq!(g["time_window"], 60);
        let fl = f.flapping().unwrap();
        assert_eq!(
            fl,
            json!({"mode": "remind", "max_changes": 4, "in_mins": 60, "mute_mins": 0})
        );
    }

    // spec: ING-154 (fine-grained cases round-trip through the case editor)
    #[test]
    fn cases_set_through_the_api_round_trip() {
        let cases = json!([{"if": [{"key": "severity", "oper": "IN", "vals": ["Critical"]},
                                   {"key": "labels.env", "oper": "NOTIN", "vals": ["dev", "test"]}],
                            "equals": [["labels.host", "title"]]}]);
        let stored = json!({"group": {"method": "p", "equals": [], "cases": cases}});
        let f = SettingsForm::of_channel(&stored);
        assert_eq!(f.cases.len(), 1);
        assert_eq!(f.cases[0].dims, "labels.host, title");
        assert_eq!(f.group().unwrap()["cases"], cases);
        // The drawn form has one empty case more, which saves nothing.
        let drawn = f.padded();
        assert_eq!(drawn.cases.len(), 2);
        assert_eq!(drawn.group().unwrap()["cases"], cases);
    }

    // spec: ING-154 (cases edited in the form; errors go beside the case's inputs)
    #[test]
    fn the_case_editor_becomes_wire_cases() {
        let f = SettingsForm::parse(&pairs(
            "method=p&dims=title&window_type=sliding             &k0c0_key=severity&k0c0_oper=IN&k0c0_vals=Critical&k0c1_key=&k0c1_vals=&k0_dims=labels.host             &k1c0_key=&k1c0_vals=&k1_dims=             &k2c0_key=labels.svc&k2c0_oper=IN&k2c0_vals=db%0Acache&k2_dims=labels.svc%2C+labels.host",
        ));
        assert_eq!(f.cases.len(), 3);
        let g = f.group().unwrap();
        assert_eq!(g["equals"], json!([["title"]]));
        assert_eq!(
            g["cases"],
            json!([
                {"if": [{"key": "severity", "oper": "IN", "vals": ["Critical"]}], "equals": [["labels.host"]]},
                {"if": [{"key": "labels.svc", "oper": "IN", "vals": ["db", "cache"]}],
                 "equals": [["labels.svc", "labels.host"]]},
            ])
        );
        let (_, map) = f.wire_cases().unwrap();
        // The second wire case is the form's third (the blank one is left out).
        assert_eq!(
            case_input("group.cases[1].equals[0][1]", &map).as_deref(),
            Some("k2_dims")
        );
        assert_eq!(
            case_input("group.cases[1].if[0][0].vals[0]", &map).as_deref(),
            Some("k2c0_vals")
        );
        assert_eq!(
            case_input("group.cases[0].if", &map).as_deref(),
            Some("k0c_rows")
        );
        assert_eq!(case_input("group.cases[5].if", &map), None);
    }

    #[test]
    fn what_cannot_be_sent_is_named_beside_its_input() {
        let f = SettingsForm::parse(&pairs("method=p&dims=title&time_window=soon"));
        assert!(f.group().unwrap_err().0["time_window"].starts_with("group.time_window:"));
        let f = SettingsForm::parse(&pairs("method=n&storm=10%2C+lots"));
        assert!(f.group().unwrap_err().0.contains_key("storm"));
        let f = SettingsForm::parse(&pairs("flap_mode=remind&max_changes=four"));
        assert!(f.flapping().unwrap_err().0.contains_key("max_changes"));
        assert_eq!(input_of("group.equals[0][1]").as_deref(), Some("dims"));
        assert_eq!(
            input_of("group.storm_thresholds[1]").as_deref(),
            Some("storm")
        );
        assert_eq!(input_of("flapping.in_mins").as_deref(), Some("in_mins"));
        assert_eq!(input_of("group.cases[0].if"), None);
        assert_eq!(input_of("channel_name"), None);
    }
}
