//! Notification templates over the Open API (openapi-compat.md 2.11; response.md 1.16,
//! §2.22): `/template/{list,info,create,update,delete,preview}`.
//!
//! Every non-empty body is parsed and rendered against the mock incident before a save
//! (RSP-345); the error names the channel and the position. The built-in default template is
//! readable under both of its ids and cannot be changed or deleted (response.md 1.16).

use std::collections::HashMap;

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::permissions::{self, DataScope, ObjectKind, Point};
use klaxon_core::template::{
    self, Channel, Env, TemplateRecord, Vars, default_body, is_default_id,
};
use klaxon_notify::templating::{self, Firing};
use klaxon_store::{StoreError, TemplateRefusal};
use serde_json::{Map, Value, json};

use super::access::denied;
use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/template/list",
    "/template/info",
    "/template/create",
    "/template/update",
    "/template/delete",
    "/template/preview",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/template/list" => list(state, caller, args).await.map(Some),
        "/template/info" => info(state, caller, args).await.map(Some),
        "/template/create" => save(state, caller, args, true).await.map(Some),
        "/template/update" => save(state, caller, args, false).await.map(Some),
        "/template/delete" => delete(state, caller, args).await.map(|()| None),
        "/template/preview" => preview(state, caller, args).await.map(Some),
        _ => return None,
    })
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("template {id} not found"),
    )
}

/// What rendering needs besides the variables: now in Unix seconds, and the account's zone
/// (RSP-344 `date`), the same one delivery uses, so a preview shows what would be sent.
async fn env(state: &AppState, caller: &Caller) -> Result<Env, ApiError> {
    Ok(Env {
        now: state.clock.now() / 1000,
        time_zone: templating::account_zone(&state.store, caller.account_id)
            .await
            .map_err(store_err)?,
        escape_html: false,
    })
}

/// The wire object: the fields of response.md 1.16 and one string per channel.
fn template_json(t: &TemplateRecord) -> Value {
    let mut m = Map::new();
    m.insert("template_id".into(), json!(t.template_id));
    m.insert("template_name".into(), json!(t.template_name));
    m.insert("description".into(), json!(t.description));
    m.insert("team_id".into(), json!(t.team_id));
    m.insert("status".into(), json!(t.status));
    for ch in Channel::ALL {
        m.insert(
            ch.key().into(),
            json!(t.bodies.get(ch.key()).cloned().unwrap_or_default()),
        );
    }
    m.insert("creator_id".into(), json!(t.creator_id));
    m.insert("updated_by".into(), json!(t.updated_by));
    m.insert("created_at".into(), json!(t.created_at / 1000));
    m.insert("updated_at".into(), json!(t.updated_at / 1000));
    Value::Object(m)
}

/// The built-in default template as a record (its bodies are the code's).
fn default_record(id: &str) -> TemplateRecord {
    TemplateRecord {
        template_id: id.to_string(),
        template_name: "Default".into(),
        description: "Built-in default template".into(),
        status: "enabled".into(),
        bodies: Channel::ALL
            .iter()
            .map(|c| (c.key().to_string(), default_body(*c).to_string()))
            .collect(),
        ..TemplateRecord::default()
    }
}

fn template_id(args: &Args) -> Result<String, ApiError> {
    args.str("template_id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("template_id is required"))
}

async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut all = state
        .store
        .notification_templates(caller.account_id)
        .await
        .map_err(store_err)?;
    if let Some(q) = args.str("query")?.filter(|q| !q.is_empty()) {
        let q = q.to_lowercase();
        all.retain(|t| t.template_name.to_lowercase().contains(&q));
    }
    let teams = args.i64_list("team_ids")?;
    if !teams.is_empty() {
        all.retain(|t| teams.contains(&t.team_id));
    }
    if let Some(c) = args.i64("creator_id")?.filter(|c| *c > 0) {
        all.retain(|t| t.creator_id == c);
    }
    if args.str("orderby")?.as_deref() == Some("updated_at") {
        all.sort_by_key(|t| t.updated_at);
    }
    if !args.bool("asc")?.unwrap_or(true) {
        all.reverse();
    }
    let limit = args.i64("limit")?.unwrap_or(20).clamp(1, 100) as usize;
    let p = args.i64("p")?.unwrap_or(1).max(1) as usize;
    let total = all.len();
    let items: Vec<Value> = all
        .iter()
        .skip((p - 1) * limit)
        .take(limit)
        .map(template_json)
        .collect();
    Ok(json!({"items": items, "total": total, "has_next_page": p * limit < total}))
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = template_id(args)?;
    if is_default_id(&id) {
        return Ok(template_json(&default_record(&id)));
    }
    let t = state
        .store
        .notification_template(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(&id))?;
    Ok(template_json(&t))
}

/// RSP-352 / RSP-527: editing or deleting needs the data permission on the template.
async fn check_data(state: &AppState, caller: &Caller, t: &TemplateRecord) -> Result<(), ApiError> {
    let scope = DataScope {
        kind: ObjectKind::Template,
        creator_id: t.creator_id,
        team_ids: if t.team_id != 0 {
            vec![t.team_id]
        } else {
            vec![]
        },
    };
    let my_teams = state
        .store
        .member_team_ids(caller.account_id, caller.member_id)
        .await
        .map_err(store_err)?;
    permissions::allowed(
        &caller.actor,
        Point::TemplatesManage,
        Some((&scope, &my_teams)),
    )
    .map_err(|d| denied(&d))
}

async fn save(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    creating: bool,
) -> Result<Value, ApiError> {
    let mut t = if creating {
        TemplateRecord {
            account_id: caller.account_id,
            status: "enabled".into(),
            creator_id: caller.member_id,
            ..TemplateRecord::default()
        }
    } else {
        let id = template_id(args)?;
        if is_default_id(&id) {
            return Err(ApiError::invalid(
                "template_id: the default template cannot be edited",
            ));
        }
        let t = state
            .store
            .notification_template(caller.account_id, &id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| not_found(&id))?;
        check_data(state, caller, &t).await?;
        t
    };
    if let Some(name) = args.str("template_name")? {
        t.template_name = name.trim().to_string();
    } else if creating {
        return Err(ApiError::invalid("template_name is required"));
    }
    if let Some(d) = args.str("description")? {
        t.description = d;
    }
    if let Some(team) = args.i64("team_id")? {
        t.team_id = team;
    }
    if let Some(status) = args.str("status")? {
        t.status = status;
    }
    for ch in Channel::ALL {
        if let Some(body) = args.str(ch.key())? {
            t.bodies.insert(ch.key().to_string(), body);
        }
    }
    t.bodies.retain(|_, b| !b.is_empty());
    t.updated_by = caller.member_id;
    template::validate_record(&t, &env(state, caller).await?).map_err(ApiError::invalid)?;
    let now = state.clock.now();
    let saved = if creating {
        state.store.create_notification_template(t, now).await
    } else {
        state.store.update_notification_template(t, now).await
    }
    .map_err(store_err)?
    .map_err(|r| match r {
        TemplateRefusal::NameTaken => {
            ApiError::invalid("template_name is already used by another template")
        }
        TemplateRefusal::NotFound | TemplateRefusal::InUse(_) => not_found(""),
    })?;
    Ok(json!({"template_id": saved.template_id, "template_name": saved.template_name}))
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = template_id(args)?;
    if is_default_id(&id) {
        return Err(ApiError::invalid(
            "template_id: the default template cannot be deleted",
        ));
    }
    let t = state
        .store
        .notification_template(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(&id))?;
    check_data(state, caller, &t).await?;
    state
        .store
        .delete_notification_template(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            TemplateRefusal::InUse(rules) => {
                let names: Vec<String> = rules
                    .iter()
                    .map(|(rid, name)| format!("{name} ({rid})"))
                    .collect();
                ApiError::new(
                    ErrorCode::ReferenceExist,
                    format!(
                        "template {id} is used by escalation rules: {}",
                        names.join(", ")
                    ),
                )
            }
            _ => not_found(&id),
        })
}

/// RSP-356: render `content` for `type` against a real incident or the mock, with the
/// delivery rules (post-processing, limits, fallback).
async fn preview(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let kind = args
        .str("type")?
        .ok_or_else(|| ApiError::invalid("type is required"))?;
    let channel = Channel::from_key(&kind)
        .ok_or_else(|| ApiError::invalid(format!("type: {kind:?} is not a template channel")))?;
    let content = args
        .str("content")?
        .ok_or_else(|| ApiError::invalid("content is required"))?;
    if content.len() > template::MAX_BODY_BYTES {
        return Err(ApiError::invalid(format!(
            "content is longer than {} bytes",
            template::MAX_BODY_BYTES
        )));
    }
    let env = env(state, caller).await?;
    let vars = match args.str("incident_id")?.filter(|s| !s.is_empty()) {
        None => Vars::mock(env.now),
        Some(id) => {
            let inc = state
                .store
                .incident(caller.account_id, &id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::ResourceNotFound,
                        format!("incident {id} not found"),
                    )
                })?;
            let mut ids: Vec<i64> = inc
                .response
                .responders
                .iter()
                .map(|r| r.person_id)
                .collect();
            ids.extend([inc.creator_id, inc.closer_id]);
            let names: HashMap<i64, (String, String)> = state
                .store
                .member_contacts(caller.account_id, &ids)
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|c| (c.member_id, (c.name, c.email)))
                .collect();
            let firing = Firing {
                fire_type: "fire".into(),
                reason: "assign".into(),
                repeat_index: 0,
                // A preview hands out no link that could act: `ActionUrl` stays empty.
                action_url: String::new(),
            };
            templating::incident_vars(&state.store, &inc, &state.base_url, &names, &firing)
                .await
                .map_err(store_err)?
        }
    };
    // Parse first so a syntax error is reported as such, with its position.
    if let Err(e) = template::Template::parse(&content) {
        return Ok(
            json!({"success": false, "content": "", "message": format!("{}: {e}", channel.key()), "fallback": true, "fixed_fields": []}),
        );
    }
    let out = template::render_channel(channel, Some(&content), &vars, &env);
    let message = match (&out.error, out.failed_reason) {
        (Some(e), _) => format!("{}: {e}", channel.key()),
        (None, Some(r)) => r.to_string(),
        (None, None) => String::new(),
    };
    Ok(json!({
        "success": !out.template_fallback && out.failed_reason.is_none(),
        "content": out.text,
        "message": message,
        "fallback": out.template_fallback,
        "truncated": out.truncated,
        "fixed_fields": [],
    }))
}
