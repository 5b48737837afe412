//! Label enrichment rules of an alert integration (ingest.md §2.5; docs/enrichment.md): the
//! rule list in order (type, what it does, its condition as text), a form that adds a rule at
//! the end, and per rule enable, disable and delete. The Open API keeps the whole list as one
//! value (`/enrichment/info`, `/enrichment/upsert`), so every change sends the stored list with
//! the change applied, and the API validates the whole list (`RuleSet::compile_with`) before
//! anything is written.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, page_headers};
use super::noise::{
    MORE_ROWS, Row, conditions_text, groups_of, padded_rows, parse_rows, row_input,
};
use super::routing::integration_id;
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/integrations/{id}/enrichment", get(page).post(add))
        .route("/integrations/{id}/enrichment/{idx}/{verb}", post(act))
}

/// The Open API answers a missing resource with 400 (Flashduty's choice); a page says 404.
fn status_of(e: &ApiError) -> StatusCode {
    if e.code == ErrorCode::ResourceNotFound {
        return StatusCode::NOT_FOUND;
    }
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

fn names(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The new rule as typed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(super) struct RuleForm {
    /// `extract`, `compose`, `map` or `delete`.
    pub kind: String,
    pub r#override: bool,
    pub extract_source: String,
    pub pattern: String,
    pub result_label: String,
    pub template: String,
    /// `table` or `api`.
    pub map_source: String,
    pub schema_id: String,
    pub service_id: String,
    pub result_label_keys: String,
    pub label_names: String,
    pub rows: Vec<Row>,
    pub more_rows: String,
}

impl RuleForm {
    pub fn parse(pairs: &[(String, String)]) -> RuleForm {
        let v = |k: &str| form_value(pairs, k);
        RuleForm {
            kind: v("kind"),
            r#override: v("override") == "true",
            extract_source: v("extract_source").trim().to_string(),
            pattern: v("pattern"),
            result_label: v("result_label").trim().to_string(),
            template: v("template"),
            map_source: v("map_source"),
            schema_id: v("schema_id"),
            service_id: v("service_id").trim().to_string(),
            result_label_keys: v("result_label_keys"),
            label_names: v("label_names"),
            rows: parse_rows(pairs, "c"),
            more_rows: v("more_rows"),
        }
    }

    fn padded(mut self) -> RuleForm {
        self.rows = padded_rows(self.rows);
        if self.more_rows == "c" {
            let group = self.rows.last().map_or(1, |r| r.group.parse().unwrap_or(1));
            self.rows.extend((0..MORE_ROWS).map(|_| Row::empty(group)));
        }
        self
    }

    /// The wire rule (§1.3.7 EnrichmentRule) with the rows its condition groups came from.
    pub fn rule(&self) -> Result<(Value, Vec<Vec<usize>>), FieldErrors> {
        let (groups, at) = groups_of(&self.rows, "c")?;
        let condition = if groups.as_array().is_some_and(Vec::is_empty) {
            Value::Null
        } else {
            groups
        };
        let mut r = json!({"type": self.kind, "enabled": true, "condition": condition});
        match self.kind.as_str() {
            "extract" => {
                r["source"] = json!(self.extract_source);
                r["pattern"] = json!(self.pattern);
                r["result_label"] = json!(self.result_label);
                r["override"] = json!(self.r#override);
            }
            "compose" => {
                r["result_label"] = json!(self.result_label);
                r["template"] = json!(self.template);
                r["override"] = json!(self.r#override);
            }
            "map" => {
                r["source"] = json!(self.map_source);
                if self.map_source == "api" {
                    r["service_id"] = json!(self.service_id);
                    r["result_label_keys"] = json!(names(&self.result_label_keys));
                } else {
                    r["schema_id"] = json!(self.schema_id);
                }
                r["override"] = json!(self.r#override);
            }
            "delete" => {
                r["label_names"] = json!(names(&self.label_names));
            }
            _ => {
                return Err(FieldErrors::one(
                    "kind",
                    "type: choose extract, compose, map or delete",
                ));
            }
        }
        Ok((r, at))
    }
}

/// The input an API error on `rules[new]` belongs to; errors on other rules are the form's.
pub(super) fn input_of(field: &str, new: usize, kind: &str, at: &[Vec<usize>]) -> Option<String> {
    let (i, rest) = indexed(field, "rules")?;
    if i != new {
        return None;
    }
    if rest.starts_with("condition") {
        return row_input(rest, "condition", "c", at);
    }
    let name = rest.split(['.', '[']).next().unwrap_or(rest);
    let input = match name {
        "type" => "kind",
        "source" if kind == "map" => "map_source",
        "source" => "extract_source",
        "pattern" | "result_label" | "template" | "schema_id" | "service_id"
        | "result_label_keys" | "label_names" => name,
        _ => return None,
    };
    Some(input.to_string())
}

/// One stored rule as the list shows it.
fn rule_row(r: &Value) -> Value {
    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
    let what = match r["type"].as_str().unwrap_or("") {
        "extract" => format!(
            "{} ← /{}/ of {}",
            if s("result_label").is_empty() {
                "named groups".into()
            } else {
                s("result_label")
            },
            s("pattern"),
            s("source")
        ),
        "compose" => format!("{} ← {}", s("result_label"), s("template")),
        "map" if s("source") == "api" => format!(
            "labels {} from mapping service {}",
            r["result_label_keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            s("service_id")
        ),
        "map" => format!("labels from mapping table {}", s("schema_id")),
        "delete" => format!(
            "removes {}",
            r["label_names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    };
    json!({
        "type": r["type"],
        "what": what,
        "override": r["override"].as_bool().unwrap_or(false),
        "enabled": r["enabled"].as_bool().unwrap_or(true),
        "condition": conditions_text(&r["condition"]),
    })
}

async fn stored(state: &AppState, viewer: &Viewer, iid: i64) -> Result<Vec<Value>, ApiError> {
    let info = fetch(
        state,
        viewer,
        "/enrichment/info",
        json!({"integration_id": iid}),
    )
    .await?;
    Ok(info["rules"].as_array().cloned().unwrap_or_default())
}

async fn answer(
    state: &AppState,
    viewer: &Viewer,
    iid: i64,
    form: RuleForm,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let integration = match fetch(
        state,
        viewer,
        "/integration/info",
        json!({"integration_id": iid}),
    )
    .await
    {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    let rules = match stored(state, viewer, iid).await {
        Ok(r) => r,
        Err(e) => return page_error(&e),
    };
    // Someone who may not list tables still gets the form, without tables to pick.
    let tables = fetch(
        state,
        viewer,
        "/enrichment/mapping/schema/list",
        json!({"limit": 100}),
    )
    .await
    .map(|t| t["items"].clone())
    .unwrap_or(Value::Null);
    let me = match super::me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let rows: Vec<Value> = rules.iter().map(rule_row).collect();
    let ctx = context! {
        title => "Label enrichment",
        nav => "channels",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        i => j(&integration),
        rules => j(&rows),
        tables => j(&tables),
        v => j(&form.padded()),
        errors => j(&errors.0),
    };
    page_headers((status, view::render("enrichment.html", ctx)).into_response())
}

async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/integrations/{id}/enrichment");
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let iid = match integration_id(&id) {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    let form = RuleForm {
        kind: "extract".into(),
        extract_source: "description".into(),
        map_source: "table".into(),
        ..RuleForm::default()
    };
    answer(
        &state,
        &viewer,
        iid,
        form,
        &FieldErrors::default(),
        StatusCode::OK,
    )
    .await
}

/// Adds the rule of the form at the end of the list; a refusal draws the page again with the
/// message beside its input and everything typed kept.
async fn add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/integrations/{id}/enrichment");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let iid = match integration_id(&id) {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    let form = RuleForm::parse(&form_pairs(&body));
    if !form.more_rows.is_empty() {
        return answer(
            &state,
            &viewer,
            iid,
            form,
            &FieldErrors::default(),
            StatusCode::OK,
        )
        .await;
    }
    let (rule, at) = match form.rule() {
        Ok(r) => r,
        Err(errors) => {
            return answer(&state, &viewer, iid, form, &errors, StatusCode::BAD_REQUEST).await;
        }
    };
    let mut rules = match stored(&state, &viewer, iid).await {
        Ok(r) => r,
        Err(e) => return page_error(&e),
    };
    let new = rules.len();
    rules.push(rule);
    let args = json!({"integration_id": iid, "rules": rules});
    match call(&state, &viewer, "/enrichment/upsert", args).await {
        Ok(_) => redirect(&headers, &format!("/integrations/{iid}/enrichment")),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console enrichment save failed");
            }
            let errors = FieldErrors::file(&e.message, |f| input_of(f, new, &form.kind, &at));
            answer(&state, &viewer, iid, form, &errors, status_of(&e)).await
        }
    }
}

/// Enables, disables or deletes the rule at `idx`; a refusal is a message for the page's
/// region.
async fn act(
    State(state): State<AppState>,
    Path((id, idx, verb)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/integrations/{id}/enrichment");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let iid = match integration_id(&id) {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    let result = async {
        let mut rules = stored(&state, &viewer, iid).await?;
        let idx = idx
            .parse::<usize>()
            .ok()
            .filter(|i| *i < rules.len())
            .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no such rule"))?;
        match verb.as_str() {
            "delete" => {
                rules.remove(idx);
            }
            "enable" | "disable" => rules[idx]["enabled"] = json!(verb == "enable"),
            _ => return Err(ApiError::new(ErrorCode::ResourceNotFound, "no such action")),
        }
        call(
            &state,
            &viewer,
            "/enrichment/upsert",
            json!({"integration_id": iid, "rules": rules}),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => redirect(&headers, &format!("/integrations/{iid}/enrichment")),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console enrichment action failed");
            }
            let html = format!("<p>{}</p>", view::escape(&e.message));
            page_headers((status_of(&e), Html(html)).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(raw).unwrap()
    }

    // spec: ING-061 (extract rule fields), ING-060 (a condition; none = always)
    #[test]
    fn an_extract_form_becomes_the_wire_rule() {
        let f = RuleForm::parse(&pairs(
            "kind=extract&extract_source=description&pattern=host+(%5Cd%2B)&result_label=ip\
             &override=true&c0_group=1&c0_key=severity&c0_oper=IN&c0_vals=Critical",
        ));
        let (r, at) = f.rule().unwrap();
        assert_eq!(r["type"], "extract");
        assert_eq!(r["source"], "description");
        assert_eq!(r["pattern"], "host (\\d+)");
        assert_eq!(r["override"], true);
        assert_eq!(
            r["condition"],
            json!([[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]])
        );
        assert_eq!(at, vec![vec![0]]);
        let plain = RuleForm::parse(&pairs("kind=delete&label_names=a%2C+b"));
        let (r, _) = plain.rule().unwrap();
        assert_eq!(r["label_names"], json!(["a", "b"]));
        assert_eq!(r["condition"], Value::Null);
    }

    // spec: ING-063 (map rules name a table, or a service with result keys)
    #[test]
    fn map_rules_name_a_table_or_a_service() {
        let t = RuleForm::parse(&pairs("kind=map&map_source=table&schema_id=s1"));
        assert_eq!(t.rule().unwrap().0["schema_id"], "s1");
        let a = RuleForm::parse(&pairs(
            "kind=map&map_source=api&service_id=x&result_label_keys=team%2Cowner",
        ));
        let (r, _) = a.rule().unwrap();
        assert_eq!(r["result_label_keys"], json!(["team", "owner"]));
        assert!(r.get("schema_id").is_none());
        assert!(RuleForm::parse(&pairs("kind=nope")).rule().is_err());
    }

    #[test]
    fn errors_of_the_new_rule_go_to_their_inputs() {
        let at = vec![vec![2]];
        assert_eq!(
            input_of("rules[3].pattern", 3, "extract", &at).as_deref(),
            Some("pattern")
        );
        assert_eq!(
            input_of("rules[3].source", 3, "map", &at).as_deref(),
            Some("map_source")
        );
        assert_eq!(
            input_of("rules[3].condition[0][0].vals[0]", 3, "extract", &at).as_deref(),
            Some("c2_vals")
        );
        assert_eq!(input_of("rules[1].pattern", 3, "extract", &at), None);
    }
}
