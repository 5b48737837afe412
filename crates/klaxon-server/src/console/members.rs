//! Members (response.md §2.30): the list with roles, status and unverified contacts
//! (RSP-551), an invitation form (RSP-550) and deactivation (RSP-553). Everything is an Open
//! API call — `/member/list`, `/role/list`, `/member/invite`, `/member/delete` — so the
//! invitation limits, uniqueness and the owner's protection are the API's own rules.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::directory::ROLE_RESPONDER;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::permissions::{self, Point};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, page_headers};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/members", get(page).post(invite))
        .route("/members/{id}/delete", post(deactivate))
}

/// The console shows the first 100 members (the Open API's largest page).
const SHOWN: i64 = 100;

/// What the invitation form shows: the typed values, kept through a refusal.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct InviteForm {
    email: String,
    member_name: String,
    role_id: String,
}

impl InviteForm {
    fn parse(pairs: &[(String, String)]) -> InviteForm {
        InviteForm {
            email: form_value(pairs, "email").trim().to_string(),
            member_name: form_value(pairs, "member_name").trim().to_string(),
            role_id: form_value(pairs, "role_id").trim().to_string(),
        }
    }

    /// The `/member/invite` body for one invitee. RSP-550: a console invitation without a
    /// role grants Responder (the API's default is Viewer), so the console always sends one.
    fn body(&self) -> Value {
        let role = if self.role_id.is_empty() {
            json!(ROLE_RESPONDER)
        } else {
            // A non-number goes through as text, so the API's own check names the field.
            self.role_id
                .parse::<i64>()
                .map_or_else(|_| json!(self.role_id), |n| json!(n))
        };
        let mut invitee = json!({ "email": self.email, "role_ids": [role] });
        if !self.member_name.is_empty()
            && let Some(obj) = invitee.as_object_mut()
        {
            obj.insert("member_name".into(), json!(self.member_name));
        }
        json!({ "members": [invitee] })
    }
}

/// The input an API error of `/member/invite` belongs to.
fn invite_input(field: &str) -> Option<String> {
    let (_, rest) = indexed(field, "members")?;
    let input = match rest.split(['.', '[']).next().unwrap_or("") {
        // `members[0]: email or phone is required`, a duplicate phone, …: the address box.
        "" | "email" | "phone" | "country_code" => "email",
        "member_name" => "member_name",
        "role_ids" => "role_id",
        _ => return None,
    };
    Some(input.to_string())
}

/// Whether the viewer may invite and deactivate (RSP-521 `Members Manage`). Only decides
/// which controls are drawn: the API checks again on every call.
fn may_manage(viewer: &Viewer) -> bool {
    permissions::allowed(&viewer.caller.actor, Point::MembersManage, None).is_ok()
}

/// Everything `member_list.html` draws.
async fn list_ctx(
    state: &AppState,
    viewer: &Viewer,
    flash: Option<String>,
    error: Option<String>,
) -> Result<minijinja::Value, ApiError> {
    let members = fetch(
        state,
        viewer,
        "/member/list",
        json!({"limit": SHOWN, "orderby": "created_at", "asc": true}),
    )
    .await?;
    let roles = fetch(state, viewer, "/role/list", json!({})).await?;
    let role_names: std::collections::HashMap<String, String> = roles["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["role_id"].as_i64().unwrap_or(0).to_string(),
                r["role_name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    Ok(context! {
        items => j(&members["items"]),
        total => members["total"].as_i64().unwrap_or(0),
        shown => SHOWN,
        role_names => role_names,
        manage => may_manage(viewer),
        me => viewer.caller.member_id,
        flash => flash,
        error => error,
    })
}

/// The roles an invitation may grant: the built-in ones and the enabled custom roles.
async fn grantable_roles(state: &AppState, viewer: &Viewer) -> Result<Vec<Value>, ApiError> {
    let roles = fetch(state, viewer, "/role/list", json!({})).await?;
    Ok(roles["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] != "disabled")
        .map(|r| json!({"role_id": r["role_id"], "role_name": r["role_name"]}))
        .collect())
}

async fn invite_ctx(
    state: &AppState,
    viewer: &Viewer,
    form: &InviteForm,
    errors: &FieldErrors,
) -> Result<minijinja::Value, ApiError> {
    let mut v = form.clone();
    if v.role_id.is_empty() {
        v.role_id = ROLE_RESPONDER.to_string();
    }
    Ok(context! {
        v => j(&v),
        roles => j(&grantable_roles(state, viewer).await?),
        errors => j(&errors.0),
    })
}

async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/members").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    // `?invited=<address>` comes from a successful invitation (the form redirects here).
    let invited = query.as_deref().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "invited")
            .map(|(_, v)| format!("Invited {v}: pending until their first sign-in."))
    });
    let me = match super::me(&state, &viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let list = match list_ctx(&state, &viewer, invited, None).await {
        Ok(l) => l,
        Err(e) => return page_error(&e),
    };
    let form = if may_manage(&viewer) {
        match invite_ctx(
            &state,
            &viewer,
            &InviteForm::default(),
            &FieldErrors::default(),
        )
        .await
        {
            Ok(f) => Some(f),
            Err(e) => return page_error(&e),
        }
    } else {
        None
    };
    let ctx = context! {
        title => "Members",
        nav => "members",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        l => list,
        f => form,
    };
    page_headers(view::render("members.html", ctx).into_response())
}

fn status_of(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// Invites one member by email; a refusal redraws the form with the API's message beside the
/// field and what was typed kept.
async fn invite(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/members").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let form = InviteForm::parse(&form_pairs(&body));
    match call(&state, &viewer, "/member/invite", form.body()).await {
        Ok(_) => {
            let to = format!(
                "/members?{}",
                serde_urlencoded::to_string([("invited", form.email.as_str())]).unwrap_or_default()
            );
            redirect(&headers, &to)
        }
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console invitation failed");
            }
            let errors = FieldErrors::file(&e.message, invite_input);
            match invite_ctx(&state, &viewer, &form, &errors).await {
                Ok(f) => page_headers(
                    (
                        status_of(&e),
                        view::render("invite_form.html", context! { f => f }),
                    )
                        .into_response(),
                ),
                Err(e) => page_error(&e),
            }
        }
    }
}

/// Deactivates (deletes, RSP-553) a member and redraws the list with what happened.
async fn deactivate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/members").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    // A non-number goes through as text, so the API's own check names the field.
    let member_id = id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n));
    let (status, flash, error) = match call(
        &state,
        &viewer,
        "/member/delete",
        json!({"member_id": member_id}),
    )
    .await
    {
        Ok(_) => (
            StatusCode::OK,
            Some("Member deactivated: their sessions and APP keys no longer work.".to_string()),
            None,
        ),
        Err(e) => (status_of(&e), None, Some(e.message)),
    };
    match list_ctx(&state, &viewer, flash, error).await {
        Ok(l) => page_headers(
            (
                status,
                view::render("member_list.html", context! { l => l }),
            )
                .into_response(),
        ),
        Err(e) => page_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(raw: &str) -> InviteForm {
        InviteForm::parse(&serde_urlencoded::from_str::<Vec<(String, String)>>(raw).unwrap())
    }

    // spec: RSP-550 (a console invitation without a role grants Responder)
    #[test]
    fn a_console_invitation_grants_responder_unless_told() {
        let b = form("email=ann%40ex.com&member_name=&role_id=").body();
        assert_eq!(b["members"][0]["role_ids"], json!([ROLE_RESPONDER]));
        assert!(b["members"][0].get("member_name").is_none());
        let b = form("email=ann%40ex.com&member_name=Ann&role_id=8").body();
        assert_eq!(b["members"][0]["role_ids"], json!([8]));
        assert_eq!(b["members"][0]["member_name"], "Ann");
    }

    #[test]
    fn invitation_errors_go_to_their_inputs() {
        assert_eq!(invite_input("members[0].email").as_deref(), Some("email"));
        assert_eq!(invite_input("members[0]").as_deref(), Some("email"));
        assert_eq!(
            invite_input("members[0].role_ids").as_deref(),
            Some("role_id")
        );
        assert_eq!(
            invite_input("members[0].member_name").as_deref(),
            Some("member_name")
        );
        assert_eq!(invite_input("members"), None);
    }
}
