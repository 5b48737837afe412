//! Roles and member roles over the Open API (openapi-compat.md 2.10; response.md §1.5,
//! RSP-521 … RSP-525).
//!
//! - `/role/list`, `/role/info` (`role_id`, or `role_name` with the legacy aliases of
//!   RSP-522), `/role/permission/list`: any member.
//! - `/role/upsert` (`role_id` 0 or absent creates; `role_name*`, `description`,
//!   `permissions*[]` of point keys or names), `/role/delete`, `/role/enable`,
//!   `/role/disable` (`role_id*`): `Roles Manage`; the built-in roles 2, 6, 8 cannot be
//!   changed (RSP-524).
//! - `/member/role/{grant,revoke,update}` (`member_id*`, `role_ids[]`) and
//!   `/role/member/{grant,revoke}` (`role_id*`, `member_ids*[]`): `Members Manage`, except
//!   that a member may drop their own roles (RSP-525); the owner cannot be demoted (RSP-523).
//!   Each change is decided by `permissions::may_change_roles` for every member before any is
//!   written, and applies to the next request at once (roles are loaded per request).
//!
//! Role objects: `{role_id, role_name, description, permissions[], status, is_builtin,
//! creator_id, created_at, updated_at}`.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::permissions::{
    self, BUILTIN, CustomRole, Point, Points, RoleChangeRefused, builtin_points,
};
use klaxon_store::{Refusal, RoleRecord, RoleWrite};
use serde_json::{Value, json};

use super::access::denied;
use super::teams::{refused, store_err};
use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

pub const PATHS: &[&str] = &[
    "/role/list",
    "/role/info",
    "/role/permission/list",
    "/role/permission/factor/list",
    "/role/upsert",
    "/role/delete",
    "/role/enable",
    "/role/disable",
    "/role/member/grant",
    "/role/member/revoke",
    "/member/role/grant",
    "/member/role/revoke",
    "/member/role/update",
];

/// §1.5: `role_name` 1..39, `description` 0..500 characters.
const NAME_MAX: usize = 39;
const DESCRIPTION_MAX: usize = 500;
/// Members changed by one `/role/member/*` call.
const MEMBERS_MAX: usize = 100;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/role/list" => list(state, caller).await.map(Some),
        "/role/info" => info(state, caller, args).await.map(Some),
        "/role/permission/list" => Ok(Some(permission_list())),
        "/role/permission/factor/list" => Ok(Some(factor_list())),
        "/role/upsert" => upsert(state, caller, args).await.map(Some),
        "/role/delete" => delete(state, caller, args).await.map(|()| None),
        "/role/enable" => set_enabled(state, caller, args, true).await.map(|()| None),
        "/role/disable" => set_enabled(state, caller, args, false).await.map(|()| None),
        "/role/member/grant" => role_members(state, caller, args, Change::Grant)
            .await
            .map(|()| None),
        "/role/member/revoke" => role_members(state, caller, args, Change::Revoke)
            .await
            .map(|()| None),
        "/member/role/grant" => member_roles(state, caller, args, Change::Grant)
            .await
            .map(|()| None),
        "/member/role/revoke" => member_roles(state, caller, args, Change::Revoke)
            .await
            .map(|()| None),
        "/member/role/update" => member_roles(state, caller, args, Change::Replace)
            .await
            .map(|()| None),
        _ => return None,
    })
}

fn points_json(points: Points) -> Value {
    json!(
        points
            .list()
            .into_iter()
            .map(Point::key)
            .collect::<Vec<_>>()
    )
}

fn builtin_json(r: &permissions::BuiltinRole) -> Value {
    json!({
        "role_id": r.role_id,
        "role_name": r.role_name,
        "description": r.description,
        "permissions": points_json(builtin_points(r.role_id).unwrap_or_default()),
        "status": "enabled",
        "is_builtin": true,
        "creator_id": 0,
        "created_at": 0,
        "updated_at": 0,
    })
}

fn role_json(r: &RoleRecord) -> Value {
    json!({
        "role_id": r.role_id,
        "role_name": r.role_name,
        "description": r.description,
        "permissions": points_json(r.points),
        "status": if r.enabled { "enabled" } else { "disabled" },
        "is_builtin": false,
        "creator_id": r.creator_id,
        "created_at": wire::secs(r.created_at),
        "updated_at": wire::secs(r.updated_at),
    })
}

async fn list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let custom = state
        .store
        .custom_roles(caller.account_id, &[])
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = BUILTIN
        .iter()
        .map(builtin_json)
        .chain(custom.iter().map(role_json))
        .collect();
    let total = items.len();
    Ok(json!({"items": items, "total": total, "has_next_page": false}))
}

fn not_found(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("role {what} not found"),
    )
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.i64("role_id")?.filter(|id| *id > 0);
    let name = args.str("role_name")?.filter(|n| !n.trim().is_empty());
    if let Some(id) = id {
        if let Some(b) = BUILTIN.iter().find(|b| b.role_id == id) {
            return Ok(builtin_json(b));
        }
        let found = state
            .store
            .custom_roles(caller.account_id, &[id])
            .await
            .map_err(store_err)?;
        return found.first().map(role_json).ok_or_else(|| not_found(id));
    }
    let Some(name) = name else {
        return Err(ApiError::invalid("role_id or role_name is required"));
    };
    if let Some(b) = permissions::builtin_by_name(&name) {
        return Ok(builtin_json(&b));
    }
    let all = state
        .store
        .custom_roles(caller.account_id, &[])
        .await
        .map_err(store_err)?;
    all.iter()
        .find(|r| r.role_name.eq_ignore_ascii_case(name.trim()))
        .map(role_json)
        .ok_or_else(|| not_found(format!("{name:?}")))
}

fn permission_list() -> Value {
    let items: Vec<Value> = Point::ALL
        .into_iter()
        .map(|p| {
            json!({
                "permission": p.key(),
                "permission_name": p.name(),
                "implied_by": p.implied_by().map(Point::key),
            })
        })
        .collect();
    let total = items.len();
    json!({"items": items, "total": total, "has_next_page": false})
}

/// RSP-527: the factors of the data permission, per kind of object. Roles give feature
/// permissions (`/role/permission/list`); whether a member may change one particular object
/// is decided by these: who created it, the teams it belongs to, whether the Admin role
/// counts, and the owner (who always may, RSP-523).
const DATA_FACTORS: &[(&str, Point, &[&str], &str)] = &[
    (
        "team",
        Point::TeamsManage,
        &["creator", "members", "owner"],
        "its creator, its members and the owner",
    ),
    (
        "channel",
        Point::ChannelsManage,
        &["creator", "team_members", "managing_team_members", "owner"],
        "the creator, members of its team and managing teams, and the owner; the Admin role \
         does not count; a channel without a team only its creator and the owner",
    ),
    (
        "schedule",
        Point::SchedulesManage,
        &["creator", "management_team_members", "owner"],
        "the creator, members of its management team and the owner",
    ),
    (
        "template",
        Point::TemplatesManage,
        &["creator", "management_team_members", "owner"],
        "the creator, members of its management team and the owner",
    ),
    (
        "service_calendar",
        Point::CalendarsManage,
        &["creator", "management_team_members", "owner"],
        "the creator, members of its management team and the owner",
    ),
    (
        "shared_integration",
        Point::IntegrationsManage,
        &["creator", "management_team_members", "admin_role", "owner"],
        "the creator, members of its management team, holders of the Admin role and the \
         owner; without a management team anyone with Integrations Manage",
    ),
    (
        "mapping_table",
        Point::MappingsManage,
        &["creator", "management_team_members", "admin_role", "owner"],
        "as shared integrations",
    ),
];

fn factor_list() -> Value {
    let items: Vec<Value> = DATA_FACTORS
        .iter()
        .map(|(object, point, factors, summary)| {
            json!({
                "object": object,
                // The Manage point that creating such objects needs (RSP-528).
                "permission": point.key(),
                "permission_name": point.name(),
                "factors": factors,
                "description": summary,
            })
        })
        .collect();
    let total = items.len();
    json!({"items": items, "total": total, "has_next_page": false})
}

fn required_role_id(args: &Args) -> Result<i64, ApiError> {
    let id = args
        .i64("role_id")?
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("role_id is required"))?;
    if permissions::is_builtin(id) {
        return Err(ApiError::invalid(format!(
            "role_id: the built-in role {id} cannot be changed"
        )));
    }
    Ok(id)
}

async fn upsert(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let role_id = args.i64("role_id")?.filter(|id| *id > 0).unwrap_or(0);
    if permissions::is_builtin(role_id) {
        return Err(ApiError::invalid(format!(
            "role_id: the built-in role {role_id} cannot be changed"
        )));
    }
    let name = args
        .str("role_name")?
        .unwrap_or_default()
        .trim()
        .to_string();
    let len = name.chars().count();
    if len == 0 {
        return Err(ApiError::invalid("role_name is required"));
    }
    if len > NAME_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "role_name must be 1 to {NAME_MAX} characters without control characters"
        )));
    }
    if permissions::builtin_by_name(&name).is_some() {
        return Err(ApiError::invalid(format!(
            "role_name: {name:?} is the name of a built-in role"
        )));
    }
    let description = args.str("description")?.unwrap_or_default();
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(ApiError::invalid(format!(
            "description must be at most {DESCRIPTION_MAX} characters"
        )));
    }
    if !args.raw().contains_key("permissions") {
        return Err(ApiError::invalid("permissions is required"));
    }
    let mut points = Vec::new();
    for (i, key) in args.str_list("permissions")?.iter().enumerate() {
        let p = Point::parse(key).ok_or_else(|| {
            ApiError::invalid(format!(
                "permissions[{i}]: unknown permission point {key:?} (see /role/permission/list)"
            ))
        })?;
        points.push(p);
    }
    let saved = state
        .store
        .upsert_role(
            caller.account_id,
            caller.member_id,
            &RoleWrite {
                role_id,
                role_name: name,
                description,
                points: Points::of(&points),
            },
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    Ok(role_json(&saved))
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = required_role_id(args)?;
    state
        .store
        .delete_role(caller.account_id, id, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(refused)
}

async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    enabled: bool,
) -> Result<(), ApiError> {
    let id = required_role_id(args)?;
    state
        .store
        .set_role_enabled(caller.account_id, id, enabled, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(refused)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Grant,
    Revoke,
    Replace,
}

fn apply(change: Change, before: &[i64], given: &[i64]) -> Vec<i64> {
    let mut after: Vec<i64> = match change {
        Change::Grant => before.iter().chain(given).copied().collect(),
        Change::Revoke => before
            .iter()
            .copied()
            .filter(|r| !given.contains(r))
            .collect(),
        Change::Replace => given.to_vec(),
    };
    after.sort_unstable();
    after.dedup();
    after
}

fn role_refused(r: RoleChangeRefused) -> ApiError {
    match r {
        RoleChangeRefused::Denied(d) => denied(&d),
        RoleChangeRefused::SelfGrant => ApiError::new(ErrorCode::AccessDenied, r.to_string()),
        RoleChangeRefused::OwnerDemoted => ApiError::new(ErrorCode::BadRequest, r.to_string()),
    }
}

/// Decides every member's change first, then writes them; a refusal changes nothing.
async fn change_roles(
    state: &AppState,
    caller: &Caller,
    members: &[i64],
    given: &[i64],
    change: Change,
) -> Result<(), ApiError> {
    let unknown = state
        .store
        .unknown_role_ids(caller.account_id, given)
        .await
        .map_err(store_err)?;
    if let Some(id) = unknown.first() {
        return Err(ApiError::invalid(format!("role_ids: unknown role id {id}")));
    }
    let mut plan = Vec::with_capacity(members.len());
    for member_id in members {
        let (is_owner, before) = state
            .store
            .member_roles(caller.account_id, *member_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ResourceNotFound,
                    format!("member_id: member {member_id} not found"),
                )
            })?;
        let after = apply(change, &before, given);
        let custom_ids: Vec<i64> = after
            .iter()
            .copied()
            .filter(|r| !permissions::is_builtin(*r))
            .collect();
        let custom: Vec<CustomRole> = if custom_ids.is_empty() {
            Vec::new()
        } else {
            state
                .store
                .custom_roles(caller.account_id, &custom_ids)
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|r| CustomRole {
                    role_id: r.role_id,
                    points: r.points,
                    enabled: r.enabled,
                })
                .collect()
        };
        permissions::may_change_roles(
            &caller.actor,
            *member_id,
            is_owner,
            &before,
            &after,
            &custom,
        )
        .map_err(role_refused)?;
        plan.push((*member_id, before, after));
    }
    let now = state.clock.now();
    for (member_id, before, after) in plan {
        if before == after {
            continue;
        }
        match state
            .store
            .set_member_roles(caller.account_id, member_id, &before, &after, now)
            .await
            .map_err(store_err)?
        {
            Ok(()) => {}
            Err(Refusal::Conflict(m)) => return Err(ApiError::invalid(m)),
            Err(other) => return Err(refused(other)),
        }
        tracing::info!(
            account_id = caller.account_id,
            actor = caller.member_id,
            member_id,
            ?before,
            ?after,
            "member roles changed"
        );
    }
    Ok(())
}

async fn member_roles(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    change: Change,
) -> Result<(), ApiError> {
    let member_id = args
        .i64("member_id")?
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("member_id is required"))?;
    let role_ids = args.i64_list("role_ids")?;
    if role_ids.is_empty() && change != Change::Replace {
        return Err(ApiError::invalid("role_ids is required"));
    }
    if role_ids.iter().any(|r| *r <= 0) {
        return Err(ApiError::invalid("role_ids must hold role ids above 0"));
    }
    change_roles(state, caller, &[member_id], &role_ids, change).await
}

async fn role_members(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    change: Change,
) -> Result<(), ApiError> {
    let role_id = args
        .i64("role_id")?
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("role_id is required"))?;
    let mut members = args.i64_list("member_ids")?;
    members.sort_unstable();
    members.dedup();
    if members.is_empty() {
        return Err(ApiError::invalid("member_ids is required"));
    }
    if members.len() > MEMBERS_MAX {
        return Err(ApiError::invalid(format!(
            "member_ids must hold at most {MEMBERS_MAX} members"
        )));
    }
    change_roles(state, caller, &members, &[role_id], change).await
}
