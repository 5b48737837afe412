//! Custom actions and links over the Open API (response.md 1.19, 1.20, §2.24;
//! docs/custom-actions.md).
//!
//! - `/incident/custom-action/do` is Flashduty's (openapi-compat.md 2.1): it posts the
//!   `i_custom` payload at once and answers with the outcome (RSP-401, RSP-402).
//! - `/custom-action/*` and `/link/*` (create, update, delete, list, info) are a Klaxon
//!   extension in the style of `/webhook/*`: Flashduty configures them only in its console.
//!
//! Managing needs `Integrations Manage` (the route table) and, for an existing one, its data
//! permission (RSP-403, RSP-527: creator, management team, Admin role, owner; anyone with the
//! point when it has no team). Reading needs `Integrations Read`. A channel takes at most 3
//! custom actions and 3 links (`limit_exceeded`).

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::links::{self, LinkContext, MAX_URL_TEMPLATE_BYTES};
use klaxon_core::model::{Alert, Incident};
use klaxon_core::permissions::{self, DataScope, ObjectKind, Point};
use klaxon_core::response::ActionError;
use klaxon_core::webhook;
use klaxon_store::{
    ActionResult, CUSTOM_PER_CHANNEL, CustomDraft, CustomIntegration, CustomRefusal,
};
use serde_json::{Value, json};

use super::access::denied;
use super::teams::store_err;
use super::webhooks::{check_endpoint, parse_headers, parse_mapping};
use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

pub const PATHS: &[&str] = &[
    "/custom-action/create",
    "/custom-action/update",
    "/custom-action/delete",
    "/custom-action/list",
    "/custom-action/info",
    "/link/create",
    "/link/update",
    "/link/delete",
    "/link/list",
    "/link/info",
    "/incident/custom-action/do",
];

const ACTION: &str = "custom_action";
const LINK: &str = "link";

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    if path == "/incident/custom-action/do" {
        return Some(invoke(state, caller, args).await.map(Some));
    }
    let (kind, op) = if let Some(op) = path.strip_prefix("/custom-action/") {
        (ACTION, op)
    } else if let Some(op) = path.strip_prefix("/link/") {
        (LINK, op)
    } else {
        return None;
    };
    Some(match op {
        "create" => create(state, caller, kind, args).await.map(Some),
        "update" => update(state, caller, kind, args).await.map(Some),
        "delete" => delete(state, caller, kind, args).await.map(|()| None),
        "list" => list(state, caller, kind, args).await.map(Some),
        "info" => info(state, caller, kind, args).await.map(Some),
        _ => return None,
    })
}

fn noun(kind: &str) -> &'static str {
    if kind == ACTION {
        "custom action"
    } else {
        "link"
    }
}

fn integration_json(c: &CustomIntegration) -> Value {
    let mut v = json!({
        "integration_id": c.integration_id,
        "name": c.name,
        "channel_ids": c.channel_ids,
        "team_id": c.team_id,
        "status": c.status,
        "creator_id": c.creator_id,
        "updated_by": c.updated_by,
        "created_at": wire::secs(c.created_at),
        "updated_at": wire::secs(c.updated_at),
    });
    if let Value::Object(m) = &mut v {
        if c.kind == ACTION {
            m.insert("endpoint".into(), json!(c.endpoint));
            m.insert("headers".into(), json!(c.headers));
            m.insert("custom_body".into(), json!(c.custom_body));
            m.insert("value_mapping".into(), json!(c.value_mapping));
        } else {
            m.insert("url_template".into(), json!(c.url_template));
            m.insert("open_mode".into(), json!(c.open_mode));
        }
    }
    v
}

fn not_found(kind: &str, id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("integration_id: {} {id} not found", noun(kind)),
    )
}

fn refused(kind: &str, id: i64, r: CustomRefusal) -> ApiError {
    match r {
        CustomRefusal::NotFound => not_found(kind, id),
        CustomRefusal::LimitExceeded { channel_id } => ApiError::invalid(format!(
            "channel_ids: limit_exceeded: channel {channel_id} already has {CUSTOM_PER_CHANNEL} \
             {}s",
            noun(kind)
        )),
    }
}

/// Reads the draft; absent fields keep `base`'s values (update) or the defaults (create).
async fn draft(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    args: &Args,
    base: Option<&CustomIntegration>,
) -> Result<CustomDraft, ApiError> {
    let name = match args.str("name")? {
        Some(n) => n.trim().to_string(),
        None => base.map(|b| b.name.clone()).unwrap_or_default(),
    };
    if name.is_empty() {
        return Err(ApiError::invalid("name: required"));
    }
    if name.chars().count() > webhook::MAX_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "name: at most {} characters",
            webhook::MAX_NAME_CHARS
        )));
    }
    let channel_ids = if args.raw().get("channel_ids").is_some_and(|v| !v.is_null()) {
        let mut ids = args.i64_list("channel_ids")?;
        ids.sort_unstable();
        ids.dedup();
        ids
    } else {
        base.map(|b| b.channel_ids.clone()).unwrap_or_default()
    };
    // response.md 1.19: a custom action is bound to at least one channel.
    if kind == ACTION && channel_ids.is_empty() {
        return Err(ApiError::invalid("channel_ids: at least one channel"));
    }
    for id in &channel_ids {
        let known = state
            .store
            .channel_name(caller.account_id, *id)
            .await
            .map_err(store_err)?;
        if known.is_none() {
            return Err(ApiError::invalid(format!(
                "channel_ids: channel {id} not found"
            )));
        }
    }
    let team_id = match args.i64("team_id")? {
        Some(t) if t < 0 => return Err(ApiError::invalid("team_id: must be 0 or a team id")),
        Some(t) => t,
        None => base.map_or(0, |b| b.team_id),
    };
    let status = match args.str("status")? {
        Some(s) if s == "enabled" || s == "disabled" => s,
        Some(s) => {
            return Err(ApiError::invalid(format!(
                "status: {s:?} is not enabled or disabled"
            )));
        }
        None => base.map_or_else(|| "enabled".to_string(), |b| b.status.clone()),
    };
    let mut d = CustomDraft {
        kind: kind.to_string(),
        name,
        endpoint: String::new(),
        headers: Default::default(),
        custom_body: String::new(),
        value_mapping: Default::default(),
        url_template: String::new(),
        open_mode: String::new(),
        channel_ids,
        team_id,
        status,
    };
    if kind == ACTION {
        d.endpoint = match args.str("endpoint")? {
            Some(e) => e.trim().to_string(),
            None => base.map(|b| b.endpoint.clone()).unwrap_or_default(),
        };
        check_endpoint(&d.endpoint)?;
        d.headers = match args.raw().get("headers").filter(|v| !v.is_null()) {
            Some(v) => parse_headers(v)?,
            None => base.map(|b| b.headers.clone()).unwrap_or_default(),
        };
        d.custom_body = match args.raw().get("custom_body") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => base.map(|b| b.custom_body.clone()).unwrap_or_default(),
            Some(_) => return Err(ApiError::invalid("custom_body must be a string")),
        };
        webhook::check_custom_body(&d.custom_body).map_err(ApiError::invalid)?;
        d.value_mapping = match args.raw().get("value_mapping").filter(|v| !v.is_null()) {
            Some(v) => parse_mapping(v)?,
            None => base.map(|b| b.value_mapping.clone()).unwrap_or_default(),
        };
    } else {
        d.url_template = match args.str("url_template")? {
            Some(u) => u.trim().to_string(),
            None => base.map(|b| b.url_template.clone()).unwrap_or_default(),
        };
        check_url_template(&d.url_template)?;
        d.open_mode = match args.str("open_mode")? {
            Some(m) if m == "popup" || m == "new_tab" => m,
            Some(m) => {
                return Err(ApiError::invalid(format!(
                    "open_mode: {m:?} is not popup or new_tab"
                )));
            }
            None => base.map_or_else(|| "new_tab".to_string(), |b| b.open_mode.clone()),
        };
    }
    Ok(d)
}

/// response.md 1.20: at most 2048 bytes, and an http(s) URL once the placeholders are left
/// out (so a link can never become `javascript:`).
fn check_url_template(t: &str) -> Result<(), ApiError> {
    if t.is_empty() {
        return Err(ApiError::invalid("url_template: required"));
    }
    if t.len() > MAX_URL_TEMPLATE_BYTES {
        return Err(ApiError::invalid(format!(
            "url_template: at most {MAX_URL_TEMPLATE_BYTES} bytes"
        )));
    }
    let lower = t.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(ApiError::invalid(
            "url_template: must start with http:// or https://",
        ));
    }
    Ok(())
}

/// RSP-403 / RSP-527: the data permission on an existing custom action or link.
async fn check_data(
    state: &AppState,
    caller: &Caller,
    c: &CustomIntegration,
) -> Result<(), ApiError> {
    let scope = DataScope {
        kind: ObjectKind::SharedIntegration,
        creator_id: c.creator_id,
        team_ids: [c.team_id].into_iter().filter(|t| *t != 0).collect(),
    };
    let my_teams = state
        .store
        .member_team_ids(caller.account_id, caller.member_id)
        .await
        .map_err(store_err)?;
    permissions::allowed(
        &caller.actor,
        Point::IntegrationsManage,
        Some((&scope, &my_teams)),
    )
    .map_err(|d| denied(&d))
}

async fn existing(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    id: i64,
) -> Result<CustomIntegration, ApiError> {
    state
        .store
        .custom_integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .filter(|c| c.kind == kind)
        .ok_or_else(|| not_found(kind, id))
}

async fn create(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    args: &Args,
) -> Result<Value, ApiError> {
    let draft = draft(state, caller, kind, args, None).await?;
    let created = state
        .store
        .create_custom_integration(
            caller.account_id,
            &draft,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(|r| refused(kind, 0, r))?;
    Ok(integration_json(&created))
}

async fn update(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    args: &Args,
) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let base = existing(state, caller, kind, id).await?;
    check_data(state, caller, &base).await?;
    let draft = draft(state, caller, kind, args, Some(&base)).await?;
    let updated = state
        .store
        .update_custom_integration(
            caller.account_id,
            id,
            &draft,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(|r| refused(kind, id, r))?;
    Ok(integration_json(&updated))
}

async fn delete(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    args: &Args,
) -> Result<(), ApiError> {
    let id = args.required_id("integration_id")?;
    let base = existing(state, caller, kind, id).await?;
    check_data(state, caller, &base).await?;
    if !state
        .store
        .delete_custom_integration(caller.account_id, kind, id)
        .await
        .map_err(store_err)?
    {
        return Err(not_found(kind, id));
    }
    Ok(())
}

async fn list(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    args: &Args,
) -> Result<Value, ApiError> {
    let channel_id = args.i64("channel_id")?.filter(|c| *c > 0);
    let items: Vec<Value> = state
        .store
        .list_custom_integrations(caller.account_id, kind, channel_id)
        .await
        .map_err(store_err)?
        .iter()
        .map(integration_json)
        .collect();
    let total = items.len();
    Ok(json!({"items": items, "total": total, "has_next_page": false}))
}

async fn info(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    args: &Args,
) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    Ok(integration_json(&existing(state, caller, kind, id).await?))
}

/// RSP-400: the enabled custom actions of the incident's channel, ordered by name; a global
/// incident has none. `[{integration_id, name}]`, for `/incident/info`.
pub(super) async fn incident_actions(
    state: &AppState,
    inc: &Incident,
) -> Result<Vec<Value>, ApiError> {
    if inc.channel_id == 0 {
        return Ok(Vec::new());
    }
    Ok(state
        .store
        .list_custom_integrations(inc.account_id, ACTION, Some(inc.channel_id))
        .await
        .map_err(store_err)?
        .iter()
        .filter(|c| c.status == "enabled")
        .map(|c| json!({"integration_id": c.integration_id, "name": c.name}))
        .collect())
}

/// RSP-404: the links of `channel_id` rendered for `ctx`, ordered by name:
/// `[{integration_id, name, url, open_mode}]`.
async fn rendered_links(
    state: &AppState,
    account_id: i64,
    channel_id: i64,
    ctx: &LinkContext,
) -> Result<Vec<Value>, ApiError> {
    if channel_id == 0 {
        return Ok(Vec::new());
    }
    Ok(state
        .store
        .list_custom_integrations(account_id, LINK, Some(channel_id))
        .await
        .map_err(store_err)?
        .iter()
        .filter(|c| c.status == "enabled")
        .map(|c| {
            json!({
                "integration_id": c.integration_id,
                "name": c.name,
                "url": links::render(&c.url_template, ctx),
                "open_mode": c.open_mode,
            })
        })
        .collect())
}

/// The links of an incident's detail page.
pub(super) async fn incident_links(
    state: &AppState,
    inc: &Incident,
) -> Result<Vec<Value>, ApiError> {
    rendered_links(
        state,
        inc.account_id,
        inc.channel_id,
        &LinkContext::of_incident(inc),
    )
    .await
}

/// The links of an alert's detail page (the alert placeholders have values here).
pub(super) async fn alert_links(
    state: &AppState,
    alert: &Alert,
    incident: Option<&Incident>,
) -> Result<Vec<Value>, ApiError> {
    rendered_links(
        state,
        alert.account_id,
        alert.channel_id,
        &LinkContext::of_alert(alert, incident),
    )
    .await
}

/// `/incident/custom-action/do` (RSP-400 … RSP-402). The route table asks for `Incidents
/// Manage`; an incident opened by its id is visible to the caller (RSP-526, the shared-link
/// case). Nothing is recorded unless the endpoint answers 2xx.
async fn invoke(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let incident_id = args
        .str("incident_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("incident_id: required"))?;
    let integration_id = args.required_id("integration_id")?;
    let inc = state
        .store
        .incident(caller.account_id, &incident_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("incident_id: incident {incident_id} not found"),
            )
        })?;
    let action = existing(state, caller, ACTION, integration_id).await?;
    if action.status != "enabled" {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("integration_id: custom action {} is disabled", action.name),
        ));
    }
    if inc.channel_id == 0 || !action.channel_ids.contains(&inc.channel_id) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "integration_id: custom action {} is not bound to this incident's channel",
                action.name
            ),
        ));
    }
    match crate::custom_actions::invoke(state, &action, &inc, caller.member_id)
        .await
        .map_err(store_err)?
    {
        Ok(()) => {}
        Err(failure) => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("custom action {} failed: {failure}", action.name),
            ));
        }
    }
    let actor = caller.member_id;
    let name = action.name.clone();
    match state
        .store
        .incident_action(
            caller.account_id,
            &incident_id,
            state.clock.now(),
            move |e, inc, _| {
                e.custom_action_done(inc, actor, integration_id, &name);
                Ok(())
            },
        )
        .await
        .map_err(store_err)?
    {
        ActionResult::Done => {}
        // Deleted while the endpoint was answering: the call happened, but there is no
        // incident left to record it on.
        ActionResult::NotFound => {
            return Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("incident_id: incident {incident_id} not found"),
            ));
        }
        ActionResult::Refused(ActionError::FailedPrecondition(m)) => {
            return Err(ApiError::new(ErrorCode::BadRequest, m));
        }
        ActionResult::Refused(ActionError::InvalidArgument(m)) => {
            return Err(ApiError::invalid(m));
        }
    }
    // The timeline entry queued the `i_custom` incident webhook in the same transaction.
    state.wake_senders();
    Ok(json!({"message": format!("custom action {} succeeded", action.name)}))
}
