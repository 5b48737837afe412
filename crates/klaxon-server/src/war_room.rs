//! War rooms (response.md §2.25 RSP-430…438; docs/war-rooms.md): creating, dissolving and
//! inviting, shared by the Open API (`openapi/war_room.rs`) and the console's incident page.
//!
//! Platform calls (`klaxon_notify::war_room::Platform`) are made before anything is stored and
//! outside any transaction; the store then re-checks the preconditions under the incident
//! lock. When the platform refuses, nothing is stored; when the record is refused after the
//! chat was made (the incident closed meanwhile), the new chat is disbanded again.
//! Sync while a room is active is queued with the incident's changes and sent by the delivery
//! worker (`klaxon_store` war_rooms, `klaxon_notify::war_room::sync`).

use klaxon_core::model::Progress;
use klaxon_notify::providers::SendError;
use klaxon_notify::war_room::{self as platform, NewChat, PLATFORMS, Platform};
use klaxon_store::{ImIntegration, StoreError, WarRoom, WarRoomInvitations, WarRoomRefusal};

use crate::state::{AppState, random_hex};

/// Why a war-room request was refused; nothing was stored.
#[derive(Debug)]
pub enum WarRoomError {
    /// Bad input, or no IM integration has war rooms enabled (openapi-compat.md 5.2 item 9).
    Invalid(String),
    /// RSP-022 / RSP-430 / RSP-436: `failed_precondition`.
    Precondition(String),
    NotFound(String),
    /// The IM platform refused or could not be reached.
    Platform(String),
    Store(StoreError),
}

impl From<StoreError> for WarRoomError {
    fn from(e: StoreError) -> Self {
        WarRoomError::Store(e)
    }
}

fn platform_error(e: SendError) -> WarRoomError {
    let text = match e {
        SendError::Transient(t) | SendError::Permanent(t) | SendError::RateLimited(t) => t,
    };
    WarRoomError::Platform(format!(
        "the IM platform refused: {}",
        text.trim_start_matches("provider_error:")
    ))
}

/// The account's war-room integration (RSP-430): the one IM integration with
/// `war_room_enabled`, enabled, on a platform that has war rooms.
pub async fn war_room_integration(
    state: &AppState,
    account_id: i64,
) -> Result<ImIntegration, WarRoomError> {
    let all = state.store.list_im_integrations(account_id, None).await?;
    if all.is_empty() {
        return Err(WarRoomError::Invalid(
            "the account has no IM integration; create one with /im/integration/create and \
             enable war rooms on it"
                .into(),
        ));
    }
    let Some(i) = all.into_iter().find(|i| i.war_room_enabled) else {
        return Err(WarRoomError::Invalid(
            "no IM integration of the account has war_room_enabled".into(),
        ));
    };
    if !PLATFORMS.contains(&i.kind.as_str()) {
        return Err(WarRoomError::Precondition(format!(
            "war rooms cannot be created on {} (only Slack, Feishu/Lark and WeCom)",
            i.kind
        )));
    }
    if i.status != "enabled" {
        return Err(WarRoomError::Precondition(format!(
            "IM integration {} is disabled",
            i.name
        )));
    }
    Ok(i)
}

fn platform_of<'a>(state: &'a AppState, integration: &'a ImIntegration) -> Platform<'a> {
    Platform {
        http: &state.im_http,
        slack_api_base: &state.config.notify.slack_api_base,
        integration,
    }
}

/// A created war room and the members who could not be invited (RSP-432).
#[derive(Debug)]
pub struct Created {
    pub room: WarRoom,
    pub uninvited: Vec<i64>,
}

/// RSP-431: creates the incident's war room as `actor`.
pub async fn create(
    state: &AppState,
    account_id: i64,
    actor: i64,
    incident_id: &str,
) -> Result<Created, WarRoomError> {
    let now = state.clock.now();
    let inc = state
        .store
        .incident(account_id, incident_id)
        .await?
        .ok_or_else(|| WarRoomError::NotFound(format!("incident {incident_id} not found")))?;
    if inc.progress == Progress::Closed {
        return Err(WarRoomError::Precondition(
            "a war room cannot be created for a Closed incident".into(),
        ));
    }
    if state
        .store
        .active_war_room(account_id, incident_id)
        .await?
        .is_some()
    {
        return Err(WarRoomError::Precondition(
            "the incident already has an active war room".into(),
        ));
    }
    let integration = war_room_integration(state, account_id).await?;
    let p = platform_of(state, &integration);
    // The current responders, the creator, then the account's default observers.
    let mut members: Vec<i64> = inc
        .response
        .responders
        .iter()
        .map(|r| r.person_id)
        .collect();
    members.push(actor);
    members.extend(state.store.war_room_observers(account_id).await?);
    let mut seen = std::collections::HashSet::new();
    members.retain(|m| *m != 0 && seen.insert(*m));
    let (found, missing) = p
        .resolve(&state.store, &members, now)
        .await
        .map_err(platform_error)?;
    let users: Vec<String> = found.iter().map(|(_, u)| u.clone()).collect();
    let name = platform::chat_name(&integration.kind, &inc.num, &inc.title);
    let NewChat {
        chat_id,
        share_link,
        name,
    } = p
        .create_chat(&name, &users, now)
        .await
        .map_err(platform_error)?;
    let room_id = random_hex(12);
    let card =
        platform::card_of(&state.store, &inc, &state.base_url, &integration.kind, now).await?;
    let card_ref = match p
        .post_card(&chat_id, &card, &format!("wr-{room_id}"), now)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            undo(&p, &chat_id, now).await;
            return Err(platform_error(e));
        }
    };
    let room = WarRoom {
        room_id,
        account_id,
        incident_id: incident_id.to_string(),
        integration_id: integration.integration_id,
        plugin_type: integration.kind.clone(),
        chat_id: chat_id.clone(),
        chat_name: name,
        share_link,
        card_ref,
        status: "active".into(),
        created_by: actor,
        created_at: now,
        dissolved_at: 0,
    };
    let invitations = WarRoomInvitations {
        invited: found,
        uninvited: missing.clone(),
    };
    match state
        .store
        .record_war_room(&room, &integration.name, &invitations, now)
        .await?
    {
        Ok(room) => Ok(Created {
            room,
            uninvited: missing,
        }),
        Err(refusal) => {
            undo(&p, &chat_id, now).await;
            Err(refused(refusal))
        }
    }
}

/// Disbands a chat made for a war room that could not be recorded; best effort.
async fn undo(p: &Platform<'_>, chat_id: &str, now: klaxon_core::model::Millis) {
    if let Err(e) = p.disband(chat_id, now).await {
        tracing::warn!(
            ?e,
            "could not disband the chat of a war room that was not recorded"
        );
    }
}

fn refused(r: WarRoomRefusal) -> WarRoomError {
    match r {
        WarRoomRefusal::IncidentNotFound => WarRoomError::NotFound("incident not found".into()),
        WarRoomRefusal::Closed => {
            WarRoomError::Precondition("a war room cannot be created for a Closed incident".into())
        }
        WarRoomRefusal::NotClosed => WarRoomError::Precondition(
            "a war room can be dissolved only once the incident is Closed".into(),
        ),
        WarRoomRefusal::AlreadyActive => {
            WarRoomError::Precondition("the incident already has an active war room".into())
        }
        WarRoomRefusal::NoActiveRoom => {
            WarRoomError::NotFound("the incident has no active war room".into())
        }
    }
}

/// RSP-436: disbands the incident's active war room as `actor`, once the incident is Closed.
pub async fn dissolve(
    state: &AppState,
    account_id: i64,
    actor: i64,
    incident_id: &str,
) -> Result<WarRoom, WarRoomError> {
    let now = state.clock.now();
    let inc = state
        .store
        .incident(account_id, incident_id)
        .await?
        .ok_or_else(|| WarRoomError::NotFound(format!("incident {incident_id} not found")))?;
    if inc.progress != Progress::Closed {
        return Err(refused(WarRoomRefusal::NotClosed));
    }
    let room = state
        .store
        .active_war_room(account_id, incident_id)
        .await?
        .ok_or_else(|| refused(WarRoomRefusal::NoActiveRoom))?;
    let integration = state
        .store
        .im_integration(account_id, room.integration_id)
        .await?;
    // An integration deleted since cannot reach the chat any more: only the record changes.
    let name = match &integration {
        Some(i) => {
            platform_of(state, i)
                .disband(&room.chat_id, now)
                .await
                .map_err(platform_error)?;
            i.name.clone()
        }
        None => String::new(),
    };
    state
        .store
        .dissolve_war_room(account_id, incident_id, actor, &name, true, now)
        .await?
        .map_err(refused)
}

/// RSP-436: the platform reported the chat disbanded (Feishu's `im.chat.disbanded_v1`): the
/// room is marked dissolved with creator 0. False when no active room uses the chat.
pub async fn disbanded_on_platform(
    state: &AppState,
    integration: &ImIntegration,
    chat_id: &str,
) -> Result<bool, StoreError> {
    let Some(room) = state
        .store
        .war_room_by_chat(integration.account_id, integration.integration_id, chat_id)
        .await?
    else {
        return Ok(false);
    };
    let r = state
        .store
        .dissolve_war_room(
            integration.account_id,
            &room.incident_id,
            0,
            &integration.name,
            false,
            state.clock.now(),
        )
        .await?;
    Ok(r.is_ok())
}

/// Invites members into the incident's active war room now. Returns (invited, uninvited).
pub async fn add_members(
    state: &AppState,
    account_id: i64,
    incident_id: &str,
    member_ids: &[i64],
) -> Result<(Vec<i64>, Vec<i64>), WarRoomError> {
    let now = state.clock.now();
    let room = state
        .store
        .active_war_room(account_id, incident_id)
        .await?
        .ok_or_else(|| refused(WarRoomRefusal::NoActiveRoom))?;
    let known = state.store.member_contacts(account_id, member_ids).await?;
    if let Some(unknown) = member_ids
        .iter()
        .find(|id| !known.iter().any(|c| c.member_id == **id))
    {
        return Err(WarRoomError::Invalid(format!(
            "member_ids: member {unknown} not found"
        )));
    }
    let integration = state
        .store
        .im_integration(account_id, room.integration_id)
        .await?
        .filter(|i| i.war_room_enabled && i.status == "enabled")
        .ok_or_else(|| {
            WarRoomError::Precondition(
                "the war room's IM integration no longer has war rooms enabled".into(),
            )
        })?;
    let p = platform_of(state, &integration);
    let (found, missing) = p
        .resolve(&state.store, member_ids, now)
        .await
        .map_err(platform_error)?;
    let users: Vec<String> = found.iter().map(|(_, u)| u.clone()).collect();
    p.invite(&room.chat_id, &users, now)
        .await
        .map_err(platform_error)?;
    state.store.add_war_room_members(&room, &found, now).await?;
    Ok((found.into_iter().map(|(m, _)| m).collect(), missing))
}

/// RSP-432's one-click link for members: links each unlinked member whom the platform knows
/// by e-mail or phone. Returns (linked as (member, IM user), not found).
pub async fn try_link(
    state: &AppState,
    integration: &ImIntegration,
    member_ids: &[i64],
) -> Result<(Vec<(i64, String)>, Vec<i64>), WarRoomError> {
    if !PLATFORMS.contains(&integration.kind.as_str()) {
        return Err(WarRoomError::Invalid(format!(
            "integration_id: members cannot be looked up on {}",
            integration.kind
        )));
    }
    let known = state
        .store
        .member_contacts(integration.account_id, member_ids)
        .await?;
    if let Some(unknown) = member_ids
        .iter()
        .find(|id| !known.iter().any(|c| c.member_id == **id))
    {
        return Err(WarRoomError::Invalid(format!(
            "person_ids: member {unknown} not found"
        )));
    }
    platform_of(state, integration)
        .resolve(&state.store, member_ids, state.clock.now())
        .await
        .map_err(platform_error)
}

/// RSP-435: `wcard` when the pressed card is the one posted in the incident's active war
/// room (`pressed`: Slack's `<channel>/<ts>` or a Feishu message id), else `card`.
pub async fn press_source(
    state: &AppState,
    account_id: i64,
    action: &klaxon_notify::card::Action,
    pressed: &str,
) -> &'static str {
    use klaxon_notify::card::Action;
    let incident_id = match action {
        Action::Ack { incident_id }
        | Action::Close { incident_id }
        | Action::Snooze { incident_id, .. } => incident_id,
        Action::Details => return crate::audit::SOURCE_CARD,
    };
    let room = match state.store.active_war_room(account_id, incident_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return crate::audit::SOURCE_CARD,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the incident's war room");
            return crate::audit::SOURCE_CARD;
        }
    };
    let chat = pressed.split_once('/').map_or(pressed, |(c, _)| c);
    let in_room = (!room.card_ref.is_empty() && room.card_ref == pressed)
        || (room.plugin_type == "slack" && chat == room.chat_id);
    if in_room {
        crate::audit::SOURCE_WCARD
    } else {
        crate::audit::SOURCE_CARD
    }
}
