//! Routing of shared integrations (docs/routing.md, ingest.md §2.8): the list of shared
//! integrations with their push URLs, and one page per integration with the current route
//! version (rules in order, default route), its history, a diff of a chosen version against
//! the current one, and rollback. Every read and the rollback are Open API calls
//! (`/route/list`, `/route/info`, `/route/history/list`, `/route/diff`, `/route/rollback`,
//! `/integration/info`, `/channel/list`, `/member/list`), so the version lock and every check
//! are the API's own.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, now_secs, page_headers};
use super::route_edit::{self, Rules};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/integrations", get(list_page))
        .route("/integrations/{id}/routing", get(routing_page))
        .route("/integrations/{id}/routing/rollback", post(rollback))
        .route("/integrations/{id}/routing/rules", post(add_rule))
        .route(
            "/integrations/{id}/routing/layout",
            post(super::route_layout::save),
        )
        .route(
            "/integrations/{id}/routing/rules/{pos}",
            get(route_edit::edit_page).post(route_edit::save_edit),
        )
        .route(
            "/integrations/{id}/routing/rules/{pos}/{verb}",
            post(route_edit::act),
        )
}

/// How many versions the history shows (the newest; the API keeps every version).
const HISTORY_SHOWN: i64 = 50;

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    super::me(state, viewer).await
}

async fn list_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/integrations").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let result = async {
        let routes = items(&fetch(&state, &viewer, "/route/list", json!({})).await?);
        let mut shared = Vec::with_capacity(routes.len());
        for r in routes {
            // `/route/list` has no push URL; `/integration/info` builds it from the key.
            let mut i = fetch(
                &state,
                &viewer,
                "/integration/info",
                json!({"integration_id": r["integration_id"]}),
            )
            .await?;
            if let Some(obj) = i.as_object_mut() {
                obj.insert("route_version".into(), r["version"].clone());
                obj.insert(
                    "rule_count".into(),
                    json!(r["cases"].as_array().map_or(0, Vec::len)),
                );
            }
            shared.push(i);
        }
        Ok::<_, ApiError>((shared, me(&state, &viewer).await?))
    }
    .await;
    match result {
        Ok((shared, me)) => {
            let ctx = context! {
                title => "Shared integrations",
                nav => "channels",
                csrf => viewer.session.csrf_token.clone(),
                me => j(&me),
                now => now_secs(&state),
                integrations => j(&shared),
            };
            page_headers(view::render("integrations.html", ctx).into_response())
        }
        Err(e) => page_error(&e),
    }
}

pub(super) fn integration_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no such integration"))
}

/// One condition as a person reads it: `labels.team is db or web`.
fn condition_text(c: &Value) -> String {
    let key = c["key"].as_str().unwrap_or("?");
    let vals: Vec<&str> = c["vals"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let oper = match c["oper"].as_str().unwrap_or("IN") {
        "NOTIN" => "is not",
        _ => "is",
    };
    format!("{key} {oper} {}", vals.join(" or "))
}

/// The conditions of a case (all must match) as one line; none matches everything.
fn conditions_text(conds: &Value) -> String {
    let parts: Vec<String> = conds
        .as_array()
        .into_iter()
        .flatten()
        .map(condition_text)
        .collect();
    if parts.is_empty() {
        "every event".into()
    } else {
        parts.join(" and ")
    }
}

/// Channel ids as their names (an id no longer listed is shown as deleted: routing skips it).
fn channel_names(ids: &Value, names: &HashMap<i64, String>) -> Vec<String> {
    ids.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .map(|id| {
            names
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("channel {id} (deleted)"))
        })
        .collect()
}

/// The rules of a wire route as rows to show, in order; a rule shown as several cases (its
/// alternatives) is one row.
fn case_rows(route: &Value, names: &HashMap<i64, String>) -> Vec<Value> {
    Rules::of(route)
        .rules
        .iter()
        .enumerate()
        .map(|(k, cases)| {
            let c = &cases[0];
            let conditions = if cases.len() == 1 {
                conditions_text(&c["if"])
            } else {
                cases
                    .iter()
                    .map(|c| conditions_text(&c["if"]))
                    .collect::<Vec<_>>()
                    .join("; or ")
            };
            json!({
                "position": k + 1,
                "name": c["name"],
                "enabled": c["enabled"].as_bool().unwrap_or(true),
                "conditions": conditions,
                "channels": channel_names(&c["channel_ids"], names),
                "flow": if c["fallthrough"].as_bool().unwrap_or(false) { "continue" } else { "stop" },
            })
        })
        .collect()
}

/// A rule of `/route/diff` (`conditions` are alternatives) as a row.
fn diff_rule_row(r: &Value, names: &HashMap<i64, String>) -> Value {
    let alternatives: Vec<String> = r["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(conditions_text)
        .collect();
    let conditions = if alternatives.is_empty() {
        "every event".to_string()
    } else {
        alternatives.join("; or ")
    };
    json!({
        "name": r["name"],
        "enabled": r["enabled"].as_bool().unwrap_or(true),
        "conditions": conditions,
        "channels": channel_names(&r["channel_ids"], names),
        "flow": r["flow"],
    })
}

/// The diff as rows: each added, removed or changed rule with what it was and is.
fn diff_view(diff: &Value, names: &HashMap<i64, String>) -> Value {
    let rules: Vec<Value> = diff["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let change = r["change"].as_str().unwrap_or("");
            let (before, after) = match change {
                "removed" => (Some(diff_rule_row(&r["rule"], names)), None),
                "added" => (None, Some(diff_rule_row(&r["rule"], names))),
                _ => (
                    Some(diff_rule_row(&r["before"], names)),
                    Some(diff_rule_row(&r["after"], names)),
                ),
            };
            json!({
                "change": change,
                "fields": r["fields"],
                "before": before,
                "after": after,
            })
        })
        .collect();
    let ids = |v: &Value| {
        let names = channel_names(v, names);
        names.join(", ")
    };
    json!({
        "from_version": diff["from_version"],
        "to_version": diff["to_version"],
        "identical": diff["identical"],
        "sections_changed": diff["sections_changed"],
        "default_added": ids(&diff["default_channel_ids"]["added"]),
        "default_removed": ids(&diff["default_channel_ids"]["removed"]),
        "rules": rules,
    })
}

#[derive(serde::Deserialize, Default)]
struct PageQuery {
    /// The version to compare with the current one.
    diff: Option<String>,
}

async fn routing_page(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/integrations/{raw}/routing");
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match integration_id(&raw) {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    match routing_ctx(&state, &viewer, id, q.diff.as_deref()).await {
        Ok(ctx) => page_headers(view::render("routing.html", ctx).into_response()),
        Err(e) => page_error(&e),
    }
}

/// Everything the routing page shows.
async fn routing_ctx(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    diff_from: Option<&str>,
) -> Result<minijinja::Value, ApiError> {
    let integration = fetch(
        state,
        viewer,
        "/integration/info",
        json!({"integration_id": id}),
    )
    .await?;
    let route = fetch(state, viewer, "/route/info", json!({"integration_id": id})).await?;
    let history = items(
        &fetch(
            state,
            viewer,
            "/route/history/list",
            json!({"integration_id": id, "limit": HISTORY_SHOWN}),
        )
        .await?,
    );
    let channels = items(&fetch(state, viewer, "/channel/list", json!({"limit": 100})).await?);
    let names: HashMap<i64, String> = channels
        .iter()
        .filter_map(|c| {
            Some((
                c["channel_id"].as_i64()?,
                c["channel_name"].as_str()?.to_string(),
            ))
        })
        .collect();
    // Authors by name; someone who may not list members still sees the ids.
    let members: HashMap<i64, String> = fetch(state, viewer, "/member/list", json!({"limit": 100}))
        .await
        .map(|l| items(&l))
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            Some((
                m["member_id"].as_i64()?,
                m["member_name"].as_str()?.to_string(),
            ))
        })
        .collect();
    let current = route["version"].as_i64().unwrap_or(0);
    let versions: Vec<Value> = history
        .iter()
        .map(|v| {
            let by = v["updated_by"].as_i64().unwrap_or(0);
            json!({
                "version": v["version"],
                "updated_at": v["updated_at"],
                "author": members.get(&by).cloned().unwrap_or_else(|| format!("member {by}")),
                "rolled_back_from": v["rolled_back_from"],
                "rules": v["cases"].as_array().map_or(0, Vec::len),
                "current": v["version"].as_i64() == Some(current),
            })
        })
        .collect();
    let diff = match diff_from {
        None | Some("") => None,
        Some(raw) => {
            let from = raw
                .parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("diff: {raw:?} is not a version number")))?;
            let d = fetch(
                state,
                viewer,
                "/route/diff",
                json!({"integration_id": id, "from_version": from, "to_version": current}),
            )
            .await?;
            Some(diff_view(&d, &names))
        }
    };
    let me = me(state, viewer).await?;
    Ok(context! {
        title => format!("Routing of {}", integration["integration_name"].as_str().unwrap_or("")),
        nav => "channels",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        now => now_secs(state),
        integration => j(&integration),
        version => current,
        rules => j(&case_rows(&route, &names)),
        default_channels => j(&channel_names(&route["default"]["channel_ids"], &names)),
        versions => j(&versions),
        diff => j(&diff),
        f => add_rule_ctx(id, &channels, &AddRuleForm::new(current), &FieldErrors::default()),
        dividers => Rules::of(&route).sections().iter()
            .map(|(name, at)| (name.as_str().unwrap_or("").to_string(), at + 1))
            .collect::<Vec<_>>(),
        layout => super::route_layout::layout_ctx(
            id,
            Rules::of(&route).rules.len(),
            &channels,
            super::route_layout::LayoutForm::of_route(&route),
            &FieldErrors::default(),
        ),
    })
}

/// Rolls back to `version`, based on `base_version` (the version the page showed): if the
/// routes changed meanwhile the API refuses and the page says so, with nothing changed.
async fn rollback(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/integrations/{raw}/routing");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match integration_id(&raw) {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    let pairs = form_pairs(&body);
    // Numbers go through as typed text when they are not numbers, so the API names the field.
    let num = |name: &str| {
        let v = form_value(&pairs, name);
        v.trim()
            .parse::<i64>()
            .map_or_else(|_| json!(v), |n| json!(n))
    };
    let args = json!({
        "integration_id": id,
        "version": num("version"),
        "base_version": num("base_version"),
    });
    match call(&state, &viewer, "/route/rollback", args).await {
        Ok(_) => redirect(&headers, &format!("/integrations/{id}/routing")),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console rollback failed");
            }
            let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
                .unwrap_or(StatusCode::BAD_REQUEST);
            let message = if e.message.contains("version conflict") {
                format!(
                    "The routes were changed by someone else since this page was loaded ({}). Nothing was rolled back: look at the current version and try again.",
                    e.message
                )
            } else {
                e.message.clone()
            };
            // A fragment for the page's message region (htmx swaps 4xx answers in).
            let html = format!(
                "<p>{}</p><p><a href=\"/integrations/{id}/routing\">Show the current version</a></p>",
                view::escape(&message)
            );
            page_headers((status, Html(html)).into_response())
        }
    }
}

/// What the "add a rule" form shows: the typed values (kept after a refusal).
#[derive(Debug, Default, serde::Serialize)]
struct AddRuleForm {
    /// The route version the page showed: the save is based on it (the version lock).
    version: String,
    key: String,
    oper: String,
    value: String,
    chosen: Vec<String>,
    flow: String,
}

impl AddRuleForm {
    fn new(version: i64) -> AddRuleForm {
        AddRuleForm {
            version: version.to_string(),
            oper: "IN".into(),
            flow: "stop".into(),
            ..AddRuleForm::default()
        }
    }

    fn parse(pairs: &[(String, String)]) -> AddRuleForm {
        AddRuleForm {
            version: form_value(pairs, "version").trim().to_string(),
            key: form_value(pairs, "key").trim().to_string(),
            oper: form_value(pairs, "oper"),
            value: form_value(pairs, "value"),
            chosen: pairs
                .iter()
                .filter(|(k, v)| k == "channel" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
            flow: form_value(pairs, "flow"),
        }
    }

    /// The wire case to append, or the input that is missing a value. A key and a value go
    /// together; neither makes a rule that matches every event.
    fn case(&self) -> Result<Value, FieldErrors> {
        let conditions = match (self.key.is_empty(), self.value.is_empty()) {
            (true, true) => json!([]),
            (false, true) => {
                return Err(FieldErrors::one(
                    "value",
                    "value: give the value the key must have (or leave the key empty too)",
                ));
            }
            (true, false) => {
                return Err(FieldErrors::one(
                    "key",
                    "key: give the key the value applies to (or leave the value empty too)",
                ));
            }
            (false, false) => json!([{"key": self.key, "oper": self.oper, "vals": [self.value]}]),
        };
        let channel_ids: Vec<Value> = self
            .chosen
            .iter()
            .map(|s| s.parse::<i64>().map_or_else(|_| json!(s), |n| json!(n)))
            .collect();
        Ok(json!({
            "if": conditions,
            "channel_ids": channel_ids,
            "fallthrough": self.flow == "continue",
        }))
    }
}

/// The input an API error of the added case (at `position`) belongs to.
fn add_rule_input(field: &str, position: usize) -> Option<String> {
    let (k, rest) = indexed(field, "cases")?;
    if k != position {
        return None;
    }
    let input = if rest.starts_with("if[0].key") {
        "key"
    } else if rest.starts_with("if[0].oper") {
        "oper"
    } else if rest.starts_with("if[0].vals") {
        "value"
    } else if rest.starts_with("channel_ids") {
        "channels"
    } else {
        return None;
    };
    Some(input.into())
}

fn add_rule_ctx(
    id: i64,
    channels: &[Value],
    form: &AddRuleForm,
    errors: &FieldErrors,
) -> minijinja::Value {
    context! {
        integration_id => id,
        version => form.version.clone(),
        key => form.key.clone(),
        oper => form.oper.clone(),
        value => form.value.clone(),
        chosen => j(&form.chosen),
        flow => form.flow.clone(),
        channels => j(&channels),
        errors => j(&errors.0),
    }
}

/// Appends a rule to the latest routes with `/route/upsert`, based on the version the page
/// showed; a refusal (a bad value, no channel, someone saved meanwhile) comes back beside the
/// field with everything typed kept, and nothing is saved.
async fn add_rule(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/integrations/{raw}/routing");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match integration_id(&raw) {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    let form = AddRuleForm::parse(&form_pairs(&body));
    let route = match fetch(
        &state,
        &viewer,
        "/route/info",
        json!({"integration_id": id}),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return page_error(&e),
    };
    let mut cases = route["cases"].as_array().cloned().unwrap_or_default();
    let position = cases.len();
    let outcome = match form.case() {
        Err(errors) => Err((errors, StatusCode::BAD_REQUEST)),
        Ok(case) => {
            cases.push(case);
            let version = form
                .version
                .parse::<i64>()
                .map_or_else(|_| json!(form.version), |n| json!(n));
            let args = json!({
                "integration_id": id,
                "version": version,
                "cases": cases,
                "sections": route["sections"],
                "default": route["default"],
            });
            match call(&state, &viewer, "/route/upsert", args).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    if e.code == ErrorCode::InternalError {
                        tracing::error!(error = %e.message, "console route save failed");
                    }
                    let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
                        .unwrap_or(StatusCode::BAD_REQUEST);
                    let errors = FieldErrors::file(&e.message, |f| add_rule_input(f, position));
                    Err((errors, status))
                }
            }
        }
    };
    match outcome {
        Ok(()) => redirect(&headers, &format!("/integrations/{id}/routing")),
        Err((errors, status)) => {
            let channels =
                match fetch(&state, &viewer, "/channel/list", json!({"limit": 100})).await {
                    Ok(l) => items(&l),
                    Err(e) => return page_error(&e),
                };
            let f = add_rule_ctx(id, &channels, &form, &errors);
            page_headers(
                (
                    status,
                    view::render("route_rule_form.html", context! { f => f }),
                )
                    .into_response(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_text() {
        let conds = json!([
            {"key": "labels.team", "oper": "IN", "vals": ["db", "web"]},
            {"key": "severity", "oper": "NOTIN", "vals": ["Info"]}
        ]);
        assert_eq!(
            conditions_text(&conds),
            "labels.team is db or web and severity is not Info"
        );
        assert_eq!(conditions_text(&json!([])), "every event");
    }

    #[test]
    fn cases_show_order_channels_and_flow() {
        let names = HashMap::from([(3, "DB".to_string())]);
        let rows = case_rows(
            &json!({"cases": [{"if": [], "channel_ids": [3, 9], "fallthrough": true},
                              {"if": [], "channel_ids": [3]}]}),
            &names,
        );
        assert_eq!(rows[0]["position"], 1);
        assert_eq!(rows[0]["channels"], json!(["DB", "channel 9 (deleted)"]));
        assert_eq!(rows[0]["flow"], "continue");
        assert_eq!(rows[1]["flow"], "stop");
    }

    #[test]
    fn errors_of_the_added_rule_go_to_their_inputs() {
        assert_eq!(
            add_rule_input("cases[2].if[0].vals[0]", 2).as_deref(),
            Some("value")
        );
        assert_eq!(
            add_rule_input("cases[2].if[0].key", 2).as_deref(),
            Some("key")
        );
        assert_eq!(
            add_rule_input("cases[2].channel_ids", 2).as_deref(),
            Some("channels")
        );
        // An older rule's problem belongs to no input of this form.
        assert_eq!(add_rule_input("cases[0].channel_ids", 2), None);
        assert_eq!(add_rule_input("default.channel_ids", 2), None);
    }

    #[test]
    fn a_key_and_a_value_go_together() {
        let mut f = AddRuleForm::new(3);
        f.chosen = vec!["4".into()];
        f.flow = "continue".into();
        let every = f.case().unwrap();
        assert_eq!(every["if"], json!([]));
        assert_eq!(every["channel_ids"], json!([4]));
        assert_eq!(every["fallthrough"], true);
        f.key = "labels.team".into();
        assert!(f.case().unwrap_err().0.contains_key("value"));
        f.value = "db".into();
        assert_eq!(
            f.case().unwrap()["if"],
            json!([{"key": "labels.team", "oper": "IN", "vals": ["db"]}])
        );
    }
}
