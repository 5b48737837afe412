//! Ticket-sync integrations in the console (response.md 1.23, RSP-403…407;
//! docs/ticket-sync.md): the list, one form to create and edit a Jira, ServiceNow or
//! ServiceDesk Plus integration, and deletion. Reads and saves are Open API calls
//! (`/ticket-sync/list`, `/ticket-sync/info`, `/ticket-sync/create`, `/ticket-sync/update`,
//! `/ticket-sync/delete`), so permissions and checks are the API's own.
//!
//! Secrets are write-only here as in the API: the form never shows the stored API token,
//! password, API key or client secret; leaving the input empty on an edit keeps it.
//!
//! The automatic trigger's `filters` (RSP-405) are edited with the condition rows every rule
//! form shares: rows with one group number all match, groups are alternatives.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Map, Value, json};

use super::forms::FieldErrors;
use super::incidents::{form_pairs, form_value, j, page_headers};
use super::noise::{MORE_ROWS, Row, groups_of, padded_rows, parse_rows, row_input, rows_of};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/ticket-sync", get(list_page).post(save_new))
        .route("/settings/ticket-sync/new", get(new_page))
        .route(
            "/settings/ticket-sync/{id}",
            get(edit_page).post(save_existing),
        )
        .route("/settings/ticket-sync/{id}/delete", post(delete))
}

const SEVERITIES: [&str; 3] = ["Critical", "Warning", "Info"];

/// Text inputs sent as they are typed (the API trims and checks them).
const TEXT_INPUTS: &[&str] = &[
    "name",
    "direction",
    "trigger",
    "status",
    "platform",
    "base_url",
    "username",
    "project_key",
    "issue_type",
    "template",
    "requester",
    "priority_source",
    "assignee_label",
    "assignee_kind",
    "client_id",
    "auth_url",
    "redirect_uri",
];

/// What the form shows: the typed values, kept through a refusal. Never a secret.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct SyncForm {
    /// 0 for a new integration.
    integration_id: i64,
    system: String,
    channel_id: String,
    text: BTreeMap<String, String>,
    severity: BTreeMap<String, String>,
    /// `source=target` lines.
    field_mapping: String,
    /// `value=name` lines.
    assignee_mapping: String,
    secret_set: bool,
    push_url: String,
    /// The automatic trigger's conditions (`filters`), one row per condition.
    rows: Vec<Row>,
    /// Set by "Add condition rows": redraw with more rows, save nothing.
    more_rows: String,
}

/// `a=b` lines to pairs; blank lines are skipped, a line without `=` is kept whole as a key
/// so the API names it.
fn lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((a, b)) => (a.trim().to_string(), b.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

impl SyncForm {
    fn parse(integration_id: i64, pairs: &[(String, String)]) -> SyncForm {
        SyncForm {
            integration_id,
            system: form_value(pairs, "system"),
            channel_id: form_value(pairs, "channel_id"),
            text: TEXT_INPUTS
                .iter()
                .map(|k| (k.to_string(), form_value(pairs, k)))
                .collect(),
            severity: SEVERITIES
                .iter()
                .map(|s| (s.to_string(), form_value(pairs, &format!("sev_{s}"))))
                .collect(),
            field_mapping: form_value(pairs, "field_mapping"),
            assignee_mapping: form_value(pairs, "assignee_mapping"),
            secret_set: false,
            push_url: String::new(),
            rows: parse_rows(pairs, "c"),
            more_rows: form_value(pairs, "more_rows"),
        }
    }

    fn of(t: &Value) -> SyncForm {
        let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
        SyncForm {
            integration_id: t["integration_id"].as_i64().unwrap_or(0),
            system: s("system"),
            channel_id: t["channel_ids"][0]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            text: TEXT_INPUTS.iter().map(|k| (k.to_string(), s(k))).collect(),
            severity: SEVERITIES
                .iter()
                .map(|k| {
                    let v = t["severity_mapping"][k].as_str().unwrap_or("");
                    (k.to_string(), v.to_string())
                })
                .collect(),
            field_mapping: t["field_mapping"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    format!(
                        "{}={}",
                        m["source"].as_str().unwrap_or(""),
                        m["target_field"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            assignee_mapping: t["assignee_mapping"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join("\n"),
            secret_set: t["secret_set"].as_bool().unwrap_or(false),
            push_url: s("push_url"),
            rows: rows_of(&t["filters"]),
            more_rows: String::new(),
        }
    }

    /// Enough empty condition rows to type into, and [`MORE_ROWS`] more when asked.
    fn padded(mut self) -> SyncForm {
        self.rows = padded_rows(self.rows);
        if self.more_rows == "c" {
            let group = self.rows.last().map_or(1, |r| r.group.parse().unwrap_or(1));
            self.rows.extend((0..MORE_ROWS).map(|_| Row::empty(group)));
        }
        self.more_rows.clear();
        self
    }

    /// The `/ticket-sync/create` or `/update` body, with the row each filter condition came
    /// from. Empty secret and code inputs are left out: on an edit that keeps the stored
    /// secret and tokens.
    fn body(&self, pairs: &[(String, String)]) -> Result<(Value, Vec<Vec<usize>>), FieldErrors> {
        let (filters, at) = groups_of(&self.rows, "c")?;
        let mut m = Map::new();
        m.insert("filters".into(), filters);
        if self.integration_id > 0 {
            m.insert("integration_id".into(), json!(self.integration_id));
        } else {
            m.insert("system".into(), json!(self.system));
        }
        for (k, v) in &self.text {
            m.insert(k.clone(), json!(v));
        }
        let channel = self.channel_id.trim();
        let ids = if channel.is_empty() {
            json!([])
        } else {
            // A non-number goes through as text, so the API's own check names the field.
            channel
                .parse::<i64>()
                .map_or_else(|_| json!([channel]), |n| json!([n]))
        };
        m.insert("channel_ids".into(), ids);
        let sev: Map<String, Value> = self
            .severity
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.clone(), json!(v.trim())))
            .collect();
        let label_priority = self.system_is_sdp()
            && !matches!(
                self.text.get("priority_source").map(String::as_str),
                None | Some("") | Some("severity")
            );
        if !label_priority {
            m.insert("severity_mapping".into(), Value::Object(sev));
        }
        let fields: Vec<Value> = lines(&self.field_mapping)
            .into_iter()
            .map(|(source, target)| json!({"source": source, "target_field": target}))
            .collect();
        m.insert("field_mapping".into(), Value::Array(fields));
        let assignees: Map<String, Value> = lines(&self.assignee_mapping)
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        m.insert("assignee_mapping".into(), Value::Object(assignees));
        for k in ["secret", "oauth_code"] {
            let v = form_value(pairs, k);
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Ok((Value::Object(m), at))
    }

    fn system_is_sdp(&self) -> bool {
        self.system == "servicedeskplus"
    }
}

/// The input an API error field belongs to; `at` maps filter conditions to their rows.
fn sync_input(field: &str, at: &[Vec<usize>]) -> Option<String> {
    if field.starts_with("filters") {
        return row_input(field, "filters", "c", at).or_else(|| Some("c0_key".into()));
    }
    let head = field.split(['.', '[']).next().unwrap_or("");
    let input = match head {
        "channel_ids" => "channel_id",
        "severity_mapping" => "sev_Critical",
        "system" | "secret" | "oauth_code" | "field_mapping" | "assignee_mapping" => head,
        h if TEXT_INPUTS.contains(&h) => h,
        _ => return None,
    };
    Some(input.to_string())
}

async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    super::me(state, viewer).await
}

async fn channels(state: &AppState, viewer: &Viewer) -> Result<Vec<Value>, ApiError> {
    Ok(
        fetch(state, viewer, "/channel/list", json!({"limit": 100})).await?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    )
}

async fn list_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/settings/ticket-sync").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let (list, chans, me) = match (
        fetch(&state, &viewer, "/ticket-sync/list", json!({})).await,
        channels(&state, &viewer).await,
        me(&state, &viewer).await,
    ) {
        (Ok(l), Ok(c), Ok(m)) => (l, c, m),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return page_error(&e),
    };
    let names: BTreeMap<String, String> = chans
        .iter()
        .map(|c| {
            (
                c["channel_id"].as_i64().unwrap_or(0).to_string(),
                c["channel_name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let ctx = context! {
        title => "Ticket sync",
        nav => "settings",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        items => j(&list["items"]),
        channels => names,
    };
    page_headers(view::render("ticket_syncs.html", ctx).into_response())
}

async fn form_page(
    state: &AppState,
    viewer: &Viewer,
    form: &SyncForm,
    errors: &FieldErrors,
    status: StatusCode,
    fragment: bool,
) -> Response {
    let chans = match channels(state, viewer).await {
        Ok(c) => c,
        Err(e) => return page_error(&e),
    };
    let action = if form.integration_id > 0 {
        format!("/settings/ticket-sync/{}", form.integration_id)
    } else {
        "/settings/ticket-sync".to_string()
    };
    let form = form.clone().padded();
    let f = context! {
        v => j(&form),
        channels => j(&chans),
        severities => SEVERITIES,
        errors => j(&errors.0),
        action => action,
    };
    if fragment {
        return page_headers(
            (
                status,
                view::render("ticket_sync_form.html", context! { f => f }),
            )
                .into_response(),
        );
    }
    let me = match me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let title = if form.integration_id > 0 {
        form.text.get("name").cloned().unwrap_or_default()
    } else {
        "New ticket sync".to_string()
    };
    let ctx = context! {
        title => title,
        nav => "settings",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        f => f,
    };
    page_headers((status, view::render("ticket_sync.html", ctx)).into_response())
}

async fn new_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/settings/ticket-sync/new").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let form = SyncForm {
        system: "jira".into(),
        text: [
            ("direction", "to"),
            ("trigger", "manual"),
            ("status", "enabled"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..SyncForm::default()
    };
    form_page(
        &state,
        &viewer,
        &form,
        &FieldErrors::default(),
        StatusCode::OK,
        false,
    )
    .await
}

fn sync_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no such ticket sync"))
}

async fn edit_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/settings/ticket-sync/{id}");
    let viewer = match viewer(&state, &Method::GET, &headers, &path).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match sync_id(&id) {
        Ok(id) => id,
        Err(e) => return page_error(&e),
    };
    let t = match fetch(
        &state,
        &viewer,
        "/ticket-sync/info",
        json!({"integration_id": id}),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return page_error(&e),
    };
    form_page(
        &state,
        &viewer,
        &SyncForm::of(&t),
        &FieldErrors::default(),
        StatusCode::OK,
        false,
    )
    .await
}

async fn save_new(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    save(state, headers, 0, body).await
}

async fn save_existing(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match sync_id(&id) {
        Ok(id) => save(state, headers, id, body).await,
        Err(e) => page_error(&e),
    }
}

/// Creates or updates the integration and goes back to the list; a refusal redraws the form
/// with the API's message beside the field and what was typed kept (secrets excepted).
async fn save(state: AppState, headers: HeaderMap, id: i64, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/settings/ticket-sync").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let pairs = form_pairs(&body);
    let mut form = SyncForm::parse(id, &pairs);
    let path = if id > 0 {
        // The system cannot change; the form only shows it.
        if let Ok(t) = fetch(
            &state,
            &viewer,
            "/ticket-sync/info",
            json!({"integration_id": id}),
        )
        .await
        {
            form.system = t["system"].as_str().unwrap_or("").to_string();
            form.secret_set = t["secret_set"].as_bool().unwrap_or(false);
            form.push_url = t["push_url"].as_str().unwrap_or("").to_string();
        }
        "/ticket-sync/update"
    } else {
        "/ticket-sync/create"
    };
    if !form.more_rows.is_empty() {
        return form_page(
            &state,
            &viewer,
            &form,
            &FieldErrors::default(),
            StatusCode::OK,
            true,
        )
        .await;
    }
    let (body, at) = match form.body(&pairs) {
        Ok(b) => b,
        Err(errors) => {
            return form_page(
                &state,
                &viewer,
                &form,
                &errors,
                StatusCode::BAD_REQUEST,
                true,
            )
            .await;
        }
    };
    match call(&state, &viewer, path, body).await {
        Ok(saved) => {
            let id = saved
                .as_ref()
                .and_then(|s| s["integration_id"].as_i64())
                .unwrap_or(id);
            redirect(&headers, &format!("/settings/ticket-sync#sync-{id}"))
        }
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console ticket sync save failed");
            }
            let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
                .unwrap_or(StatusCode::BAD_REQUEST);
            let errors = FieldErrors::file(&e.message, |f| sync_input(f, &at));
            form_page(&state, &viewer, &form, &errors, status, true).await
        }
    }
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/settings/ticket-sync/{id}/delete");
    let viewer = match viewer(&state, &Method::POST, &headers, &path).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match sync_id(&id) {
        Ok(id) => id,
        Err(e) => return page_error(&e),
    };
    match call(
        &state,
        &viewer,
        "/ticket-sync/delete",
        json!({"integration_id": id}),
    )
    .await
    {
        Ok(_) => redirect(&headers, "/settings/ticket-sync"),
        Err(e) => page_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).unwrap_or_default()
    }

    #[test]
    fn an_empty_secret_is_left_out_so_an_edit_keeps_the_stored_one() {
        let p = pairs(
            "name=Ops&channel_id=3&secret=&sev_Critical=Highest&field_mapping=labels.host%3Dcf_1",
        );
        let (b, _) = SyncForm::parse(9, &p).body(&p).unwrap();
        assert_eq!(b["integration_id"], 9);
        assert!(b.get("secret").is_none());
        assert_eq!(b["channel_ids"], json!([3]));
        assert_eq!(b["severity_mapping"], json!({"Critical": "Highest"}));
        assert_eq!(
            b["field_mapping"],
            json!([{"source": "labels.host", "target_field": "cf_1"}])
        );
        let p = pairs("system=jira&name=Ops&secret=tok");
        let (b, _) = SyncForm::parse(0, &p).body(&p).unwrap();
        assert_eq!(b["secret"], "tok");
        assert_eq!(b["system"], "jira");
    }

    #[test]
    fn errors_go_to_their_inputs() {
        let at = vec![vec![0, 2], vec![3]];
        assert_eq!(
            sync_input("channel_ids", &at).as_deref(),
            Some("channel_id")
        );
        assert_eq!(sync_input("base_url", &at).as_deref(), Some("base_url"));
        assert_eq!(
            sync_input("field_mapping[0].source", &at).as_deref(),
            Some("field_mapping")
        );
        assert_eq!(sync_input("integration_id", &at), None);
        // spec: RSP-405 — a refused condition is shown beside its own row.
        assert_eq!(
            sync_input("filters[0][1].vals[0]", &at).as_deref(),
            Some("c2_vals")
        );
        assert_eq!(
            sync_input("filters[1][0].key", &at).as_deref(),
            Some("c3_key")
        );
    }

    #[test]
    fn condition_rows_become_filter_groups() {
        // spec: RSP-405 — rows with one group number all match; groups are alternatives.
        let p = pairs(
            "name=Ops&c0_group=1&c0_key=severity&c0_oper=IN&c0_vals=Critical\
             &c1_group=1&c1_key=labels.env&c1_oper=NOTIN&c1_vals=dev%0Atest\
             &c2_group=2&c2_key=title&c2_oper=IN&c2_vals=db*&c3_group=1&c3_key=&c3_vals=",
        );
        let (b, at) = SyncForm::parse(0, &p).body(&p).unwrap();
        assert_eq!(
            b["filters"],
            json!([[{"key": "severity", "oper": "IN", "vals": ["Critical"]},
                     {"key": "labels.env", "oper": "NOTIN", "vals": ["dev", "test"]}],
                    [{"key": "title", "oper": "IN", "vals": ["db*"]}]])
        );
        assert_eq!(at, vec![vec![0, 1], vec![2]]);
        // No rows: no conditions, every incident.
        let p = pairs("name=Ops");
        assert_eq!(
            SyncForm::parse(0, &p).body(&p).unwrap().0["filters"],
            json!([])
        );
        // A group that is not a number is refused beside its row, before any call.
        let p = pairs("c0_group=x&c0_key=title&c0_vals=a");
        let errors = SyncForm::parse(0, &p).body(&p).unwrap_err();
        assert!(errors.0.contains_key("c0_group"), "{errors:?}");
    }
}
