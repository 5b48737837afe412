//! Teams (response.md §1.4, §2.30): the list with each team's members, a form to create a
//! team and the same form to edit one (name, description, members). Reads and saves are Open
//! API calls — `/team/list`, `/team/info`, `/team/upsert` — so names, uniqueness and member
//! checks are the API's own.

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::FieldErrors;
use super::incidents::{form_pairs, form_value, j, names, page_headers};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/teams", get(list_page).post(save_new))
        .route("/teams/new", get(new_page))
        .route("/teams/{id}", get(edit_page).post(save_existing))
}

/// The console shows the first 100 teams and offers the first 100 members.
const SHOWN: i64 = 100;

/// What the team form shows: the typed values, kept through a refusal.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct TeamForm {
    /// 0 for a new team.
    team_id: i64,
    team_name: String,
    description: String,
    members: Vec<String>,
}

impl TeamForm {
    fn parse(team_id: i64, pairs: &[(String, String)]) -> TeamForm {
        TeamForm {
            team_id,
            team_name: form_value(pairs, "team_name"),
            description: form_value(pairs, "description"),
            members: pairs
                .iter()
                .filter(|(k, v)| k == "members" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    fn of(team: &Value) -> TeamForm {
        TeamForm {
            team_id: team["team_id"].as_i64().unwrap_or(0),
            team_name: team["team_name"].as_str().unwrap_or("").to_string(),
            description: team["description"].as_str().unwrap_or("").to_string(),
            members: team["person_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .map(|id| id.to_string())
                .collect(),
        }
    }

    /// The `/team/upsert` body. `person_ids` is always sent, so unticking everyone empties
    /// the team (an explicit `[]`).
    fn body(&self) -> Value {
        let ids: Vec<Value> = self
            .members
            .iter()
            // A non-number goes through as text, so the API's own check names the field.
            .map(|m| m.parse::<i64>().map_or_else(|_| json!(m), |n| json!(n)))
            .collect();
        json!({
            "team_id": self.team_id,
            "team_name": self.team_name,
            "description": self.description,
            "person_ids": ids,
        })
    }
}

/// The input an API error field of `/team/upsert` belongs to.
fn team_input(field: &str) -> Option<String> {
    let input = match field.split(['.', '[']).next().unwrap_or("") {
        "team_name" => "team_name",
        "description" => "description",
        "person_ids" | "emails" | "phones" => "members",
        _ => return None,
    };
    Some(input.to_string())
}

async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    super::me(state, viewer).await
}

async fn list_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/teams").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let teams = match fetch(
        &state,
        &viewer,
        "/team/list",
        json!({"limit": SHOWN, "orderby": "team_name", "asc": true}),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return page_error(&e),
    };
    let people: BTreeSet<i64> = teams["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["person_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_i64())
        .collect();
    let names = names(&state, &viewer, people).await;
    let me = match me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "Teams",
        nav => "teams",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        teams => j(&teams["items"]),
        total => teams["total"].as_i64().unwrap_or(0),
        names => names,
    };
    page_headers(view::render("teams.html", ctx).into_response())
}

async fn form_page(
    state: &AppState,
    viewer: &Viewer,
    form: &TeamForm,
    errors: &FieldErrors,
    status: StatusCode,
    fragment: bool,
) -> Response {
    let members = match fetch(state, viewer, "/member/list", json!({"limit": SHOWN})).await {
        Ok(m) => m["items"].as_array().cloned().unwrap_or_default(),
        Err(e) => return page_error(&e),
    };
    let f = context! {
        v => j(form),
        members => j(&members),
        errors => j(&errors.0),
        action => if form.team_id > 0 { format!("/teams/{}", form.team_id) } else { "/teams".to_string() },
    };
    if fragment {
        return page_headers(
            (status, view::render("team_form.html", context! { f => f })).into_response(),
        );
    }
    let me = match me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let title = if form.team_id > 0 {
        form.team_name.clone()
    } else {
        "New team".to_string()
    };
    let ctx = context! {
        title => title,
        nav => "teams",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        f => f,
    };
    page_headers((status, view::render("team.html", ctx)).into_response())
}

async fn new_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/teams/new").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    form_page(
        &state,
        &viewer,
        &TeamForm::default(),
        &FieldErrors::default(),
        StatusCode::OK,
        false,
    )
    .await
}

fn team_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "no such team"))
}

async fn edit_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, &format!("/teams/{id}")).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match team_id(&id) {
        Ok(id) => id,
        Err(e) => return page_error(&e),
    };
    let team = match fetch(&state, &viewer, "/team/info", json!({"team_id": id})).await {
        Ok(t) => t,
        Err(e) => return page_error(&e),
    };
    form_page(
        &state,
        &viewer,
        &TeamForm::of(&team),
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
    match team_id(&id) {
        Ok(id) => save(state, headers, id, body).await,
        Err(e) => page_error(&e),
    }
}

/// Creates or updates the team and goes back to the list; a refusal redraws the form with the
/// API's message beside the field and what was typed and ticked kept.
async fn save(state: AppState, headers: HeaderMap, team_id: i64, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/teams").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let form = TeamForm::parse(team_id, &form_pairs(&body));
    match call(&state, &viewer, "/team/upsert", form.body()).await {
        Ok(saved) => {
            let id = saved
                .as_ref()
                .and_then(|s| s["team_id"].as_i64())
                .unwrap_or(team_id);
            redirect(&headers, &format!("/teams#team-{id}"))
        }
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console team save failed");
            }
            let status = StatusCode::from_u16(e.code.http_status(Surface::OpenApi))
                .unwrap_or(StatusCode::BAD_REQUEST);
            let errors = FieldErrors::file(&e.message, team_input);
            form_page(&state, &viewer, &form, &errors, status, true).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_sends_every_ticked_member_and_an_empty_list_when_none() {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str("team_name=DBA&description=&members=3&members=5").unwrap();
        let b = TeamForm::parse(7, &pairs).body();
        assert_eq!(b["team_id"], 7);
        assert_eq!(b["person_ids"], json!([3, 5]));
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str("team_name=DBA").unwrap();
        assert_eq!(TeamForm::parse(7, &pairs).body()["person_ids"], json!([]));
    }

    #[test]
    fn team_errors_go_to_their_inputs() {
        assert_eq!(team_input("team_name").as_deref(), Some("team_name"));
        assert_eq!(team_input("person_ids").as_deref(), Some("members"));
        assert_eq!(team_input("emails[0]").as_deref(), Some("members"));
        assert_eq!(team_input("ref_id"), None);
    }
}
