//! The channels page (integrations with their push URLs and last event, escalation rules) and
//! the escalation rule editor (response.md 1.12). Reads and saves are Open API calls:
//! `/channel/list`, `/integration/list`, `/integration/info` (the push URL is only in `info`),
//! `/channel/escalate/rule/{list,info,create,update}`; the API validates every value.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Map, Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, now_secs, page_headers};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels", get(list_page))
        .route("/channels/{cid}/rules/new", get(new_rule_page))
        .route("/channels/{cid}/rules/{rid}", get(edit_rule_page))
        .route("/channels/{cid}/rules", post(save_rule))
}

/// Level slots the editor shows at least (a rule has 1 to 10, response.md 1.12).
const LEVEL_SLOTS: usize = 3;
const LEVELS_MAX: usize = 10;
/// The default of `escalate_window` (minutes) for a new level.
const DEFAULT_WINDOW: &str = "30";

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    super::me(state, viewer).await
}

async fn list_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/channels").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    match channels_ctx(&state, &viewer).await {
        Ok(channels) => {
            let me = match me(&state, &viewer).await {
                Ok(m) => m,
                Err(e) => return page_error(&e),
            };
            let ctx = context! {
                title => "Channels",
                nav => "channels",
                csrf => viewer.session.csrf_token.clone(),
                me => j(&me),
                now => now_secs(&state),
                channels => j(&channels),
            };
            page_headers(view::render("channels.html", ctx).into_response())
        }
        Err(e) => page_error(&e),
    }
}

/// Every channel with its integrations (push URL included) and escalation rules.
async fn channels_ctx(state: &AppState, viewer: &Viewer) -> Result<Vec<Value>, ApiError> {
    let channels = items(&fetch(state, viewer, "/channel/list", json!({"limit": 100})).await?);
    let mut out = Vec::with_capacity(channels.len());
    for mut c in channels {
        let cid = c["channel_id"].as_i64().unwrap_or(0);
        let listed = items(
            &fetch(
                state,
                viewer,
                "/integration/list",
                json!({"channel_ids": [cid], "limit": 100}),
            )
            .await?,
        );
        let mut integrations = Vec::with_capacity(listed.len());
        for i in listed {
            // `list` never shows the key; `info` does, with the push URL built from it.
            let full = fetch(
                state,
                viewer,
                "/integration/info",
                json!({"integration_id": i["integration_id"]}),
            )
            .await?;
            integrations.push(full);
        }
        let rules = items(
            &fetch(
                state,
                viewer,
                "/channel/escalate/rule/list",
                json!({"channel_id": cid}),
            )
            .await?,
        );
        let catch_all = has_catch_all(&rules);
        if let Some(obj) = c.as_object_mut() {
            obj.insert("catch_all".into(), json!(catch_all));
            obj.insert("integrations".into(), json!(integrations));
            obj.insert("rules".into(), json!(rules));
        }
        out.push(c);
    }
    Ok(out)
}

/// RSP-135: the console warns when no enabled rule of a channel is free of filters and time
/// conditions, since incidents that no rule matches notify nobody (RSP-132).
fn has_catch_all(rules: &[Value]) -> bool {
    let empty = |v: &Value| {
        v.as_array().is_none_or(|a| {
            a.iter()
                .all(|g| g.as_array().is_some_and(Vec::is_empty) || g.is_null())
        })
    };
    rules.iter().any(|r| {
        r["status"] == "enabled"
            && empty(&r["filters"])
            && r["time_filters"].as_array().is_none_or(Vec::is_empty)
    })
}

/// One level as the form shows it: ids as text (what the checkboxes carry).
#[derive(Debug, Clone, Default, serde::Serialize)]
struct LevelForm {
    persons: Vec<String>,
    teams: Vec<String>,
    schedules: Vec<String>,
    window: String,
}

impl LevelForm {
    fn is_blank(&self) -> bool {
        self.persons.is_empty() && self.teams.is_empty() && self.schedules.is_empty()
    }

    fn of_layer(layer: &Value) -> LevelForm {
        let ids = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .map(|n| n.to_string())
                .collect()
        };
        let t = &layer["target"];
        LevelForm {
            persons: ids(&t["person_ids"]),
            teams: ids(&t["team_ids"]),
            schedules: t["schedule_to_role_ids"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            window: layer["escalate_window"]
                .as_i64()
                .map_or_else(|| DEFAULT_WINDOW.to_string(), |w| w.to_string()),
        }
    }
}

/// What the rule form shows: the typed (or stored) values and the errors by input id.
#[derive(Debug, Default)]
struct RuleForm {
    rule_id: String,
    rule_name: String,
    levels: Vec<LevelForm>,
}

impl RuleForm {
    /// At least [`LEVEL_SLOTS`] slots, one empty slot past the last used level (up to 10).
    fn padded(mut self) -> RuleForm {
        let want = (self.levels.len() + 1).clamp(LEVEL_SLOTS, LEVELS_MAX);
        while self.levels.len() < want {
            self.levels.push(LevelForm {
                window: DEFAULT_WINDOW.to_string(),
                ..LevelForm::default()
            });
        }
        self
    }

    fn parse(pairs: &[(String, String)]) -> RuleForm {
        let all = |name: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect()
        };
        let mut levels: Vec<LevelForm> = (0..LEVELS_MAX)
            .map(|k| LevelForm {
                persons: all(&format!("l{k}_person")),
                teams: all(&format!("l{k}_team")),
                schedules: all(&format!("l{k}_schedule")),
                window: form_value(pairs, &format!("l{k}_window"))
                    .trim()
                    .to_string(),
            })
            .collect();
        // Trailing empty slots are no levels; an empty slot between two used ones is sent
        // as it is, so the API names it.
        while levels.len() > 1 && levels.last().is_some_and(LevelForm::is_blank) {
            levels.pop();
        }
        RuleForm {
            rule_id: form_value(pairs, "rule_id").trim().to_string(),
            rule_name: form_value(pairs, "rule_name"),
            levels,
        }
    }
}

/// The input an API error field of a rule belongs to.
fn rule_input(field: &str) -> Option<String> {
    if field == "rule_name" {
        return Some("rule_name".into());
    }
    let (k, rest) = indexed(field, "layers")?;
    if rest == "escalate_window" {
        Some(format!("l{k}_window"))
    } else {
        Some(format!("l{k}_target"))
    }
}

fn ids_json(ids: &[String]) -> Value {
    // A non-number goes through as text, so the API's own check names the field.
    Value::Array(
        ids.iter()
            .map(|s| s.parse::<i64>().map_or_else(|_| json!(s), |n| json!(n)))
            .collect(),
    )
}

/// The `layers` of the save call. Settings the form does not show (repeats, notification
/// methods, group chats, schedule roles) are kept from the stored level at the same place.
fn layers_json(form: &RuleForm, stored: &[Value]) -> Result<Vec<Value>, FieldErrors> {
    let mut out = Vec::with_capacity(form.levels.len());
    for (k, l) in form.levels.iter().enumerate() {
        let window = if l.window.is_empty() {
            json!(DEFAULT_WINDOW.parse::<i64>().unwrap_or(30))
        } else {
            match l.window.parse::<i64>() {
                Ok(n) => json!(n),
                Err(_) => {
                    return Err(FieldErrors::one(
                        &format!("l{k}_window"),
                        format!(
                            "layers[{k}].escalate_window: {:?} is not a whole number of minutes",
                            l.window
                        ),
                    ));
                }
            }
        };
        let mut layer = match stored.get(k) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let mut target = match layer.get("target") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let old_roles = target
            .get("schedule_to_role_ids")
            .cloned()
            .unwrap_or(Value::Null);
        let schedules: Map<String, Value> = l
            .schedules
            .iter()
            .map(|s| {
                let roles = old_roles.get(s).cloned().unwrap_or_else(|| json!([]));
                (s.clone(), roles)
            })
            .collect();
        target.insert("person_ids".into(), ids_json(&l.persons));
        target.insert("team_ids".into(), ids_json(&l.teams));
        target.insert("schedule_to_role_ids".into(), Value::Object(schedules));
        let has_method = target.get("by").is_some_and(|b| !b.is_null())
            || target
                .get("webhooks")
                .and_then(Value::as_array)
                .is_some_and(|w| !w.is_empty());
        if !has_method {
            // A new level notifies each person by their own preferences.
            target.insert("by".into(), json!({"follow_preference": true}));
        }
        layer.insert("target".into(), Value::Object(target));
        layer.insert("escalate_window".into(), window);
        out.push(Value::Object(layer));
    }
    Ok(out)
}

/// The people, teams and schedules a level can target.
async fn choices(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    let members = items(&fetch(state, viewer, "/member/list", json!({"limit": 100})).await?);
    let teams = items(&fetch(state, viewer, "/team/list", json!({"limit": 100})).await?);
    // Someone who may edit the channel but not read schedules still gets the form, without
    // schedules to pick (the API decides what they may read).
    let schedules = fetch(state, viewer, "/schedule/list", json!({"limit": 100}))
        .await
        .map(|l| items(&l))
        .unwrap_or_default();
    Ok(json!({"members": members, "teams": teams, "schedules": schedules}))
}

async fn channel_of(state: &AppState, viewer: &Viewer, cid: i64) -> Result<Value, ApiError> {
    fetch(state, viewer, "/channel/info", json!({"channel_id": cid})).await
}

/// The form fragment (`rule_form.html`) with its data.
async fn form_ctx(
    state: &AppState,
    viewer: &Viewer,
    cid: i64,
    form: RuleForm,
    errors: &FieldErrors,
) -> Result<minijinja::Value, ApiError> {
    let channel = channel_of(state, viewer, cid).await?;
    let choices = choices(state, viewer).await?;
    let form = form.padded();
    Ok(context! {
        channel => j(&channel),
        c => j(&choices),
        rule_id => form.rule_id.clone(),
        rule_name => form.rule_name.clone(),
        levels => j(&form.levels),
        errors => j(&errors.0),
    })
}

async fn rule_page(
    state: &AppState,
    viewer: &Viewer,
    cid: i64,
    form: RuleForm,
    title: &str,
) -> Response {
    let f = match form_ctx(state, viewer, cid, form, &FieldErrors::default()).await {
        Ok(f) => f,
        Err(e) => return page_error(&e),
    };
    let me = match me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => title,
        nav => "channels",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        f => f,
    };
    page_headers(view::render("rule.html", ctx).into_response())
}

fn channel_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no such channel"))
}

async fn new_rule_page(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/channels/{cid}/rules/new");
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    rule_page(
        &state,
        &viewer,
        cid,
        RuleForm::default(),
        "New escalation rule",
    )
    .await
}

async fn edit_rule_page(
    State(state): State<AppState>,
    Path((cid, rid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/channels/{cid}/rules/{rid}");
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
        "/channel/escalate/rule/info",
        json!({"channel_id": cid, "rule_id": rid}),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return page_error(&e),
    };
    let form = RuleForm {
        rule_id: rid,
        rule_name: rule["rule_name"].as_str().unwrap_or("").to_string(),
        levels: rule["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(LevelForm::of_layer)
            .collect(),
    };
    rule_page(&state, &viewer, cid, form, "Edit escalation rule").await
}

/// Creates or updates a rule; on success the browser goes to the channels page, on a refusal
/// the form comes back with the API's message next to the field and everything typed kept.
async fn save_rule(
    State(state): State<AppState>,
    Path(cid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/channels").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let cid = match channel_id(&cid) {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let form = RuleForm::parse(&form_pairs(&body));
    let editing = !form.rule_id.is_empty();
    let stored: Vec<Value> = if editing {
        match fetch(
            &state,
            &viewer,
            "/channel/escalate/rule/info",
            json!({"channel_id": cid, "rule_id": form.rule_id}),
        )
        .await
        {
            Ok(r) => r["layers"].as_array().cloned().unwrap_or_default(),
            Err(e) => return form_error(&state, &viewer, cid, form, e).await,
        }
    } else {
        Vec::new()
    };
    let layers = match layers_json(&form, &stored) {
        Ok(l) => l,
        Err(errors) => {
            return form_answer(&state, &viewer, cid, form, &errors, StatusCode::BAD_REQUEST).await;
        }
    };
    let (path, args) = if editing {
        (
            "/channel/escalate/rule/update",
            json!({"rule_id": form.rule_id, "rule_name": form.rule_name, "layers": layers}),
        )
    } else {
        (
            "/channel/escalate/rule/create",
            json!({"channel_id": cid, "rule_name": form.rule_name, "layers": layers}),
        )
    };
    match call(&state, &viewer, path, args).await {
        Ok(_) => redirect(&headers, &format!("/channels#channel-{cid}")),
        Err(e) => form_error(&state, &viewer, cid, form, e).await,
    }
}

async fn form_error(
    state: &AppState,
    viewer: &Viewer,
    cid: i64,
    form: RuleForm,
    e: ApiError,
) -> Response {
    if e.code == ErrorCode::InternalError {
        tracing::error!(error = %e.message, "console rule save failed");
    }
    let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
        .unwrap_or(StatusCode::BAD_REQUEST);
    let errors = FieldErrors::file(&e.message, rule_input);
    form_answer(state, viewer, cid, form, &errors, status).await
}

async fn form_answer(
    state: &AppState,
    viewer: &Viewer,
    cid: i64,
    form: RuleForm,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    match form_ctx(state, viewer, cid, form, errors).await {
        // A 4xx answer is swapped in (the page's htmx-config), so the errors show.
        Ok(f) => page_headers(
            (status, view::render("rule_form.html", context! { f => f })).into_response(),
        ),
        Err(e) => page_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(raw).unwrap()
    }

    // spec: RSP-135 (a channel without an enabled, unconditional rule is flagged)
    #[test]
    fn a_missing_catch_all_rule_is_noticed() {
        let plain = json!({"status": "enabled", "filters": [], "time_filters": []});
        let filtered = json!({"status": "enabled", "time_filters": [],
            "filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]]});
        let timed = json!({"status": "enabled", "filters": [],
            "time_filters": [{"start": "09:00", "end": "18:00", "repeat": [1]}]});
        let off = json!({"status": "disabled", "filters": [], "time_filters": []});
        assert!(has_catch_all(&[filtered.clone(), plain]));
        assert!(!has_catch_all(&[filtered, timed, off]));
        assert!(!has_catch_all(&[]));
    }

    #[test]
    fn trailing_empty_levels_are_dropped_and_gaps_kept() {
        let f = RuleForm::parse(&pairs(
            "rule_name=R&l0_person=1&l0_window=10&l1_window=30&l2_team=4&l2_window=5&l3_window=30",
        ));
        assert_eq!(f.levels.len(), 3);
        assert!(f.levels[1].is_blank());
        assert_eq!(f.levels[2].teams, vec!["4"]);
        let none = RuleForm::parse(&pairs("rule_name=R&l0_window=30"));
        assert_eq!(none.levels.len(), 1);
    }

    #[test]
    fn errors_of_levels_go_to_their_inputs() {
        assert_eq!(rule_input("rule_name").as_deref(), Some("rule_name"));
        assert_eq!(
            rule_input("layers[1].escalate_window").as_deref(),
            Some("l1_window")
        );
        assert_eq!(
            rule_input("layers[0].target.person_ids").as_deref(),
            Some("l0_target")
        );
        assert_eq!(rule_input("filters"), None);
    }

    #[test]
    fn an_edit_keeps_what_the_form_does_not_show() {
        let stored = vec![json!({
            "escalate_window": 10, "max_times": 3, "notify_step": 5.0,
            "target": {"person_ids": [1], "by": {"critical": ["sms"]},
                       "schedule_to_role_ids": {"9": [2]}}
        })];
        let f = RuleForm::parse(&pairs("rule_name=R&l0_person=2&l0_schedule=9&l0_window=15"));
        let layers = layers_json(&f, &stored).unwrap();
        assert_eq!(layers[0]["max_times"], 3);
        assert_eq!(layers[0]["escalate_window"], 15);
        assert_eq!(layers[0]["target"]["by"]["critical"], json!(["sms"]));
        assert_eq!(layers[0]["target"]["person_ids"], json!([2]));
        assert_eq!(layers[0]["target"]["schedule_to_role_ids"]["9"], json!([2]));
        let bad = RuleForm::parse(&pairs("rule_name=R&l0_person=2&l0_window=soon"));
        let e = layers_json(&bad, &[]).unwrap_err();
        assert!(e.0["l0_window"].contains("escalate_window"));
    }
}
