//! War rooms over the Open API (response.md §2.25 RSP-430…438; openapi-compat.md 2.x and
//! 5.2 item 9; docs/war-rooms.md).
//!
//! - `/incident/war-room/create|delete|add-member` act on an incident's war room
//!   (`Incidents Manage`); `list|detail` read them (`Incidents Read`, like opening an incident
//!   by its id, RSP-526).
//! - `/incident/war-room/default-observers`: with `member_ids` it replaces the members invited
//!   to every war room of the account; without, it answers them.
//! - `/datasource/im/war-room-enabled/list`: the IM integration war rooms are created on;
//!   `/datasource/im/war-room-enabled/set` turns `war_room_enabled` of one on or off (off
//!   stops sync, RSP-438).
//! - `/datasource/im/person/try-link`: RSP-432's one-click link for members.
//!
//! Without an IM integration that has `war_room_enabled` every call answers
//! `InvalidParameter` naming the reason; nothing pretends to succeed.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::WarRoom;
use serde_json::{Value, json};

use super::teams::store_err;
use super::{Args, Caller};
use crate::state::AppState;
use crate::war_room::{self as rooms, WarRoomError};

pub const PATHS: &[&str] = &[
    "/incident/war-room/create",
    "/incident/war-room/list",
    "/incident/war-room/detail",
    "/incident/war-room/delete",
    "/incident/war-room/add-member",
    "/incident/war-room/default-observers",
    "/datasource/im/war-room-enabled/list",
    "/datasource/im/war-room-enabled/set",
    "/datasource/im/person/try-link",
];

/// At most this many members in one call.
const MAX_MEMBERS: usize = 100;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(
        match path {
            "/incident/war-room/create" => create(state, caller, args).await,
            "/incident/war-room/list" => list(state, caller, args).await,
            "/incident/war-room/detail" => detail(state, caller, args).await,
            "/incident/war-room/delete" => delete(state, caller, args).await,
            "/incident/war-room/add-member" => add_member(state, caller, args).await,
            "/incident/war-room/default-observers" => observers(state, caller, args).await,
            "/datasource/im/war-room-enabled/list" => enabled_list(state, caller).await,
            "/datasource/im/war-room-enabled/set" => enabled_set(state, caller, args).await,
            "/datasource/im/person/try-link" => try_link(state, caller, args).await,
            _ => return None,
        }
        .map(Some),
    )
}

pub(crate) fn api_error(e: WarRoomError) -> ApiError {
    match e {
        WarRoomError::Invalid(m) => ApiError::invalid(m),
        // failed_precondition, as the incident actions answer it (RSP-022).
        WarRoomError::Precondition(m) | WarRoomError::Platform(m) => {
            ApiError::new(ErrorCode::BadRequest, m)
        }
        WarRoomError::NotFound(m) => ApiError::new(ErrorCode::ResourceNotFound, m),
        WarRoomError::Store(e) => store_err(e),
    }
}

/// A war room as the API answers it (response.md 1.22); times in seconds.
pub(crate) fn room_json(r: &WarRoom) -> Value {
    json!({
        "incident_id": r.incident_id,
        "integration_id": r.integration_id,
        "plugin_type": r.plugin_type,
        "chat_id": r.chat_id,
        "chat_name": r.chat_name,
        "share_link": r.share_link,
        "created_by": r.created_by,
        "created_at": r.created_at / 1000,
        "status": r.status,
        "dissolved_at": r.dissolved_at / 1000,
    })
}

fn incident_id(args: &Args) -> Result<String, ApiError> {
    args.str("incident_id")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("incident_id is required"))
}

fn member_ids(args: &Args, name: &str) -> Result<Vec<i64>, ApiError> {
    let ids = args.i64_list(name)?;
    if ids.len() > MAX_MEMBERS {
        return Err(ApiError::invalid(format!(
            "{name}: at most {MAX_MEMBERS} members"
        )));
    }
    if ids.iter().any(|i| *i <= 0) {
        return Err(ApiError::invalid(format!("{name}: ids must be positive")));
    }
    Ok(ids)
}

/// Every call first needs a war-room integration (openapi-compat.md 5.2 item 9).
async fn require_integration(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    rooms::war_room_integration(state, caller.account_id)
        .await
        .map(|_| ())
        .map_err(api_error)
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = incident_id(args)?;
    let created = rooms::create(state, caller.account_id, caller.member_id, &id)
        .await
        .map_err(api_error)?;
    let mut out = room_json(&created.room);
    out["uninvited"] = json!(created.uninvited);
    Ok(out)
}

async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let incident = args.str("incident_id")?.filter(|s| !s.is_empty());
    let status = args.str("status")?.filter(|s| !s.is_empty());
    if let Some(s) = &status
        && s != "active"
        && s != "dissolved"
    {
        return Err(ApiError::invalid("status: must be active or dissolved"));
    }
    let all = state
        .store
        .war_rooms(caller.account_id, incident.as_deref(), status.as_deref())
        .await
        .map_err(store_err)?;
    if all.is_empty() {
        // No rooms because war rooms are not set up is said, not answered as an empty list.
        require_integration(state, caller).await?;
    }
    Ok(json!({
        "items": all.iter().map(room_json).collect::<Vec<_>>(),
        "total": all.len(),
    }))
}

async fn detail(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = incident_id(args)?;
    let all = state
        .store
        .war_rooms(caller.account_id, Some(&id), None)
        .await
        .map_err(store_err)?;
    // The active room, else the latest one.
    let Some(room) = all.iter().find(|r| r.is_active()).or_else(|| all.first()) else {
        require_integration(state, caller).await?;
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("incident {id} has no war room"),
        ));
    };
    let members = state
        .store
        .war_room_members(caller.account_id, &room.room_id)
        .await
        .map_err(store_err)?;
    let mut out = room_json(room);
    out["members"] = members
        .iter()
        .map(|(m, u)| json!({"person_id": m, "im_user_id": u}))
        .collect();
    Ok(out)
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = incident_id(args)?;
    let room = rooms::dissolve(state, caller.account_id, caller.member_id, &id)
        .await
        .map_err(api_error)?;
    Ok(room_json(&room))
}

async fn add_member(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = incident_id(args)?;
    let members = member_ids(args, "member_ids")?;
    if members.is_empty() {
        return Err(ApiError::invalid("member_ids is required"));
    }
    require_integration(state, caller).await?;
    let (invited, uninvited) = rooms::add_members(state, caller.account_id, &id, &members)
        .await
        .map_err(api_error)?;
    Ok(json!({"invited": invited, "uninvited": uninvited}))
}

async fn observers(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    require_integration(state, caller).await?;
    if args.raw().contains_key("member_ids") {
        let members = member_ids(args, "member_ids")?;
        let known = state
            .store
            .member_contacts(caller.account_id, &members)
            .await
            .map_err(store_err)?;
        if let Some(unknown) = members.iter().find(|id| {
            !known
                .iter()
                .any(|c| c.member_id == **id && c.status != "deleted")
        }) {
            return Err(ApiError::invalid(format!(
                "member_ids: member {unknown} not found"
            )));
        }
        state
            .store
            .set_war_room_observers(caller.account_id, &members, state.clock.now())
            .await
            .map_err(store_err)?;
    }
    let now = state
        .store
        .war_room_observers(caller.account_id)
        .await
        .map_err(store_err)?;
    Ok(json!({"member_ids": now}))
}

async fn enabled_list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let all = state
        .store
        .list_im_integrations(caller.account_id, None)
        .await
        .map_err(store_err)?;
    if all.is_empty() {
        return Err(api_error(WarRoomError::Invalid(
            "the account has no IM integration".into(),
        )));
    }
    let items: Vec<Value> = all
        .iter()
        .filter(|i| i.war_room_enabled)
        .map(|i| {
            json!({
                "integration_id": i.integration_id,
                "name": i.name,
                "type": i.kind,
                "status": i.status,
                "war_room_enabled": true,
            })
        })
        .collect();
    Ok(json!({"items": items}))
}

async fn enabled_set(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let enabled = args
        .bool("war_room_enabled")?
        .ok_or_else(|| ApiError::invalid("war_room_enabled is required"))?;
    match state
        .store
        .set_im_war_room_enabled(caller.account_id, id, enabled, state.clock.now())
        .await
        .map_err(store_err)?
    {
        Ok(true) => Ok(json!({"integration_id": id, "war_room_enabled": enabled})),
        Ok(false) => Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("integration_id: IM integration {id} not found"),
        )),
        Err(_) => Err(ApiError::invalid(
            "war_room_enabled: another IM integration of the account has war rooms enabled",
        )),
    }
}

async fn try_link(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let persons = member_ids(args, "person_ids")?;
    if persons.is_empty() {
        return Err(ApiError::invalid("person_ids is required"));
    }
    let integration = match args.i64("integration_id")? {
        Some(id) => state
            .store
            .im_integration(caller.account_id, id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::invalid(format!("integration_id: IM integration {id} not found"))
            })?,
        None => rooms::war_room_integration(state, caller.account_id)
            .await
            .map_err(api_error)?,
    };
    let (linked, failed) = rooms::try_link(state, &integration, &persons)
        .await
        .map_err(api_error)?;
    Ok(json!({
        "integration_id": integration.integration_id,
        "linked": linked
            .iter()
            .map(|(m, u)| json!({"person_id": m, "im_user_id": u}))
            .collect::<Vec<_>>(),
        "failed": failed,
    }))
}
