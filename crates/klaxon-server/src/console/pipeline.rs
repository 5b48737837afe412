//! The alert pipeline of an alert integration (ingest.md §2.7, §1.5.4; docs/pipeline.md): the
//! rules in order (what each does, its condition as text), a form that adds a title,
//! description or severity rewrite or a drop at the end, and per rule enable, disable and
//! delete. The Open API keeps the whole list (`/alert/pipeline/info`, `/alert/pipeline/upsert`),
//! so every change sends the stored list with the change applied; the API reads and checks it
//! with `klaxon_core::pipeline::wire` before anything is written.

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
        .route("/integrations/{id}/pipeline", get(page).post(add))
        .route("/integrations/{id}/pipeline/{idx}/{verb}", post(act))
}

/// The Open API answers a missing resource with 400 (Flashduty's choice); a page says 404.
fn status_of(e: &ApiError) -> StatusCode {
    if e.code == ErrorCode::ResourceNotFound {
        return StatusCode::NOT_FOUND;
    }
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The new rule as typed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(super) struct RuleForm {
    /// `title_reset`, `description_reset`, `severity_reset` or `alert_drop`.
    pub kind: String,
    pub title: String,
    pub description: String,
    pub severity: String,
    pub rows: Vec<Row>,
    pub more_rows: String,
}

impl RuleForm {
    pub fn parse(pairs: &[(String, String)]) -> RuleForm {
        let v = |k: &str| form_value(pairs, k);
        RuleForm {
            kind: v("kind"),
            title: v("title"),
            description: v("description"),
            severity: v("severity"),
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

    /// The wire rule (`kind`, `settings`, `if` as OR-ed groups) with the rows each condition
    /// came from.
    pub fn rule(&self) -> Result<(Value, Vec<Vec<usize>>), FieldErrors> {
        let (groups, at) = groups_of(&self.rows, "c")?;
        let settings = match self.kind.as_str() {
            "title_reset" => json!({"title": self.title}),
            "description_reset" => json!({"description": self.description}),
            "severity_reset" => json!({"severity": self.severity}),
            _ => json!({}),
        };
        Ok((
            json!({"kind": self.kind, "settings": settings, "if": groups, "enabled": true}),
            at,
        ))
    }
}

/// The input an API error on `rules[new]` belongs to; errors on other rules are the form's.
/// A single group of conditions is written flat on the wire (`if[1].vals`), so its path has
/// no group index.
pub(super) fn input_of(field: &str, new: usize, at: &[Vec<usize>]) -> Option<String> {
    let (i, rest) = indexed(field, "rules")?;
    if i != new {
        return None;
    }
    if let Some(cond) = rest.strip_prefix("if") {
        let path = if at.len() == 1 {
            format!("if[0]{cond}")
        } else {
            rest.to_string()
        };
        return row_input(&path, "if", "c", at).or_else(|| Some("c0_key".into()));
    }
    let input = match rest {
        "kind" => "kind",
        "settings.title" => "title",
        "settings.description" => "description",
        "settings.severity" => "severity",
        _ => return None,
    };
    Some(input.to_string())
}

/// `if` as OR-ed groups whether it is stored flat (one group) or as a list of groups.
fn groups(v: &Value) -> Value {
    match v.as_array() {
        Some(a) if a.first().is_some_and(Value::is_object) => json!([a]),
        Some(_) => v.clone(),
        None => json!([]),
    }
}

/// One stored rule as the list shows it.
fn rule_row(r: &Value) -> Value {
    let s = &r["settings"];
    let what = match r["kind"].as_str().unwrap_or("") {
        "title_reset" => format!("title ← {}", s["title"].as_str().unwrap_or("")),
        "description_reset" => format!("description ← {}", s["description"].as_str().unwrap_or("")),
        "severity_reset" => format!("severity ← {}", s["severity"].as_str().unwrap_or("")),
        "alert_drop" => "drops the event".to_string(),
        "alert_inhibit" => "drops the event while a related alert is active".to_string(),
        other => other.to_string(),
    };
    json!({
        "kind": r["kind"],
        "what": what,
        "enabled": r["enabled"].as_bool().unwrap_or(true),
        "condition": conditions_text(&groups(&r["if"])),
    })
}

async fn stored(state: &AppState, viewer: &Viewer, iid: i64) -> Result<Vec<Value>, ApiError> {
    let info = fetch(
        state,
        viewer,
        "/alert/pipeline/info",
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
    let me = match super::me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let rows: Vec<Value> = rules.iter().map(rule_row).collect();
    let ctx = context! {
        title => "Alert pipeline",
        nav => "channels",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        i => j(&integration),
        rules => j(&rows),
        v => j(&form.padded()),
        errors => j(&errors.0),
    };
    page_headers((status, view::render("pipeline.html", ctx)).into_response())
}

async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/integrations/{id}/pipeline");
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let iid = match integration_id(&id) {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    let form = RuleForm {
        kind: "severity_reset".into(),
        severity: "Warning".into(),
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

/// Adds the rule of the form at the end of the pipeline; a refusal draws the page again with
/// the message beside its input and everything typed kept.
async fn add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/integrations/{id}/pipeline");
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
    match call(&state, &viewer, "/alert/pipeline/upsert", args).await {
        Ok(_) => redirect(&headers, &format!("/integrations/{iid}/pipeline")),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console pipeline save failed");
            }
            let errors = FieldErrors::file(&e.message, |f| input_of(f, new, &at));
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
    let next = format!("/integrations/{id}/pipeline");
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
            "/alert/pipeline/upsert",
            json!({"integration_id": iid, "rules": rules}),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => redirect(&headers, &format!("/integrations/{iid}/pipeline")),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console pipeline action failed");
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

    // spec: ING-080 (severity rewrite with a condition), §1.5.4 (wire rules)
    #[test]
    fn a_severity_form_becomes_the_wire_rule() {
        let f = RuleForm::parse(&pairs(
            "kind=severity_reset&severity=Info&c0_group=1&c0_key=labels.env&c0_oper=IN&c0_vals=dev",
        ));
        let (r, _) = f.rule().unwrap();
        assert_eq!(r["kind"], "severity_reset");
        assert_eq!(r["settings"], json!({"severity": "Info"}));
        assert_eq!(
            r["if"],
            json!([[{"key": "labels.env", "oper": "IN", "vals": ["dev"]}]])
        );
        let drop = RuleForm::parse(&pairs("kind=alert_drop&title=ignored"));
        assert_eq!(drop.rule().unwrap().0["settings"], json!({}));
    }

    #[test]
    fn stored_rules_read_as_text_and_errors_find_their_input() {
        let flat = json!({"kind": "title_reset", "settings": {"title": "[{{.Labels.env}}] x"},
            "if": [{"key": "severity", "oper": "IN", "vals": ["Critical"]}]});
        let row = rule_row(&flat);
        assert_eq!(row["what"], "title ← [{{.Labels.env}}] x");
        assert_eq!(row["condition"], "( severity == Critical )");
        let at = vec![vec![0, 3]];
        assert_eq!(
            input_of("rules[2].if[1].vals[0]", 2, &at).as_deref(),
            Some("c3_vals")
        );
        assert_eq!(
            input_of("rules[2].settings.severity", 2, &at).as_deref(),
            Some("severity")
        );
        assert_eq!(input_of("rules[0].settings.severity", 2, &at), None);
    }
}
