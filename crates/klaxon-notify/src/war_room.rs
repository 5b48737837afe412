//! War rooms on the IM platforms (response.md §2.25 RSP-430…438; docs/war-rooms.md).
//!
//! [`Platform`] is one war-room integration's chat operations, each a platform API call
//! through [`HttpProviders`] (its token caches and answer checks): create a group chat, invite,
//! post the incident card (the apps' own card layouts, [`crate::slack`], [`crate::feishu`]),
//! post a line of text, refresh the card, disband, and look a member up by e-mail or phone
//! (RSP-432's one-click link). [`sync`] sends one war-room outbox row (RSP-433, RSP-434) for
//! the delivery engine, so sync gets the outbox's claims, retries and restarts.
//!
//! WeCom (custom app) chats (`appchat/*`) have no share link, no member removal, no dissolve
//! and no interactive card: the card is a text card with a link, and dissolving posts a
//! closing line and leaves the chat to its members.

use std::collections::HashMap;

use klaxon_core::model::{Incident, Millis};
use klaxon_store::{ImIntegration, MemberContact, PendingDelivery, Store, StoreError, WarRoom};
use serde_json::{Value, json};

use crate::card::Card;
use crate::providers::{HttpProviders, SendError};

/// The platforms a war room can be created on (RSP-430; DingTalk has no adapter yet).
pub const PLATFORMS: [&str; 3] = ["slack", "feishu", "wecom"];

/// Slack channel names: at most 80 characters.
const SLACK_NAME_MAX: usize = 80;
/// Feishu/Lark group names: at most 60 characters (kept short of the API's byte limit).
const FEISHU_NAME_MAX: usize = 60;
/// WeCom group names: at most 50 characters.
const WECOM_NAME_MAX: usize = 50;

/// RSP-431 step 1: `INC #<num> <title>`, made valid for the platform and cut to its limit.
/// Slack channel names are lowercase letters, digits, `-` and `_`, so the name becomes a
/// slug (`inc-12-db-is-down`).
pub fn chat_name(kind: &str, num: &str, title: &str) -> String {
    let full = format!("INC #{num} {title}");
    match kind {
        "slack" => {
            let mut slug = String::new();
            for c in full.chars().flat_map(char::to_lowercase) {
                if c.is_ascii_alphanumeric() || c == '_' {
                    slug.push(c);
                } else if !slug.ends_with('-') && !slug.is_empty() {
                    slug.push('-');
                }
            }
            let cut: String = slug.chars().take(SLACK_NAME_MAX).collect();
            cut.trim_end_matches('-').to_string()
        }
        "feishu" => full.chars().take(FEISHU_NAME_MAX).collect(),
        _ => full.chars().take(WECOM_NAME_MAX).collect(),
    }
}

/// How many numbered names a Slack war room tries after its own name is taken.
const SLACK_NAME_TRIES: usize = 9;

/// The Slack channel names to try in order: the name, then `name-2` … `name-10`, each cut so
/// it stays within Slack's 80 characters.
fn slack_names(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    for n in 2..=SLACK_NAME_TRIES + 1 {
        let suffix = format!("-{n}");
        let room = SLACK_NAME_MAX - suffix.len();
        let base: String = name.chars().take(room).collect();
        out.push(format!("{}{suffix}", base.trim_end_matches('-')));
    }
    out
}

/// The Feishu message `uuid` of a send (Feishu drops a repeat within an hour): at most 50
/// characters.
fn feishu_uuid(key: &str) -> String {
    key.chars()
        .rev()
        .take(50)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

/// A chat the platform created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChat {
    pub chat_id: String,
    pub share_link: String,
    /// The name the chat got: the one asked for, or a numbered one when it was taken.
    pub name: String,
}

/// One war-room integration's chat operations.
pub struct Platform<'a> {
    pub http: &'a HttpProviders,
    /// Slack's Web API origin (`notify.slack_api_base`).
    pub slack_api_base: &'a str,
    pub integration: &'a ImIntegration,
}

impl Platform<'_> {
    fn kind(&self) -> &str {
        &self.integration.kind
    }

    /// RSP-431 steps 1–3: creates the group chat with the bot and the given users in it.
    pub async fn create_chat(
        &self,
        name: &str,
        users: &[String],
        now: Millis,
    ) -> Result<NewChat, SendError> {
        let i = self.integration;
        match self.kind() {
            "slack" => {
                // The bot that creates a channel is its first member. Slack keeps the names of
                // archived channels, so a new war room after a dissolved one (RSP-437), or a
                // channel someone made by hand, finds the name taken: the next free numbered
                // name is used instead.
                let mut created = None;
                let mut used = name.to_string();
                for candidate in slack_names(name) {
                    used.clone_from(&candidate);
                    match self
                        .http
                        .slack_call(
                            self.slack_api_base,
                            &i.bot_token,
                            "conversations.create",
                            &json!({"name": candidate, "is_private": false}),
                        )
                        .await
                    {
                        Err(SendError::Permanent(why)) if why.ends_with(":name_taken") => {
                            created = Some(Err(SendError::Permanent(why)));
                        }
                        other => {
                            created = Some(other);
                            break;
                        }
                    }
                }
                let created = created.unwrap_or_else(|| {
                    Err(SendError::Permanent(
                        "provider_error:no channel name to try".into(),
                    ))
                })?;
                let chat_id = created["channel"]["id"].as_str().unwrap_or_default();
                if chat_id.is_empty() {
                    return Err(SendError::Permanent(
                        "provider_error:Slack answered no channel id".into(),
                    ));
                }
                let rest = async {
                    let who = self
                        .http
                        .slack_call(self.slack_api_base, &i.bot_token, "auth.test", &json!({}))
                        .await?;
                    self.invite(chat_id, users, now).await?;
                    let team = who["team_id"].as_str().unwrap_or_default();
                    Ok::<String, SendError>(team.to_string())
                }
                .await;
                match rest {
                    Ok(team) => Ok(NewChat {
                        chat_id: chat_id.to_string(),
                        share_link: format!("https://app.slack.com/client/{team}/{chat_id}"),
                        name: used,
                    }),
                    Err(e) => Err(self.abandon(chat_id, e, now).await),
                }
            }
            "feishu" => {
                let created = self
                    .http
                    .feishu_call(
                        i,
                        reqwest::Method::POST,
                        "im/v1/chats?user_id_type=open_id&set_bot_manager=true",
                        Some(&json!({
                            "name": name,
                            "chat_mode": "group",
                            "chat_type": "private",
                            "bot_id_list": [i.app_id],
                            "user_id_list": users,
                        })),
                        now,
                    )
                    .await?;
                let chat_id = created["data"]["chat_id"].as_str().unwrap_or_default();
                if chat_id.is_empty() {
                    return Err(SendError::Permanent(
                        "provider_error:Feishu answered no chat_id".into(),
                    ));
                }
                let link = match self
                    .http
                    .feishu_call(
                        i,
                        reqwest::Method::POST,
                        &format!("im/v1/chats/{chat_id}/link"),
                        Some(&json!({"validity_period": "permanently"})),
                        now,
                    )
                    .await
                {
                    Ok(v) => v,
                    Err(e) => return Err(self.abandon(chat_id, e, now).await),
                };
                Ok(NewChat {
                    chat_id: chat_id.to_string(),
                    share_link: link["data"]["share_link"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    name: name.to_string(),
                })
            }
            "wecom" => {
                // appchat/create needs an owner and at least two members.
                if users.len() < 2 {
                    return Err(SendError::Permanent(
                        "provider_error:a WeCom group chat needs at least two members who can \
                         be invited"
                            .into(),
                    ));
                }
                let created = self
                    .http
                    .wecom_call(
                        i,
                        "cgi-bin/appchat/create",
                        &json!({"name": name, "owner": users[0], "userlist": users}),
                        now,
                    )
                    .await?;
                let chat_id = created["chatid"].as_str().unwrap_or_default();
                if chat_id.is_empty() {
                    return Err(SendError::Permanent(
                        "provider_error:WeCom answered no chatid".into(),
                    ));
                }
                Ok(NewChat {
                    chat_id: chat_id.to_string(),
                    share_link: String::new(),
                    name: name.to_string(),
                })
            }
            other => Err(SendError::Permanent(format!(
                "provider_error:war rooms are not available on {other}"
            ))),
        }
    }

    /// A chat made by a creation that then failed is disbanded again (best effort), so a
    /// refused creation leaves nothing behind; answers the failure.
    async fn abandon(&self, chat_id: &str, failure: SendError, now: Millis) -> SendError {
        if let Err(e) = self.disband(chat_id, now).await {
            tracing::warn!(
                ?e,
                "could not disband the chat of a failed war-room creation"
            );
        }
        failure
    }

    /// Invites users into the chat; users already in it are no error.
    pub async fn invite(
        &self,
        chat_id: &str,
        users: &[String],
        now: Millis,
    ) -> Result<(), SendError> {
        if users.is_empty() {
            return Ok(());
        }
        let i = self.integration;
        match self.kind() {
            "slack" => {
                let r = self
                    .http
                    .slack_call(
                        self.slack_api_base,
                        &i.bot_token,
                        "conversations.invite",
                        &json!({"channel": chat_id, "users": users.join(","), "force": true}),
                    )
                    .await;
                match r {
                    Err(SendError::Permanent(e)) if e.ends_with("already_in_channel") => Ok(()),
                    r => r.map(|_| ()),
                }
            }
            "feishu" => self
                .http
                .feishu_call(
                    i,
                    reqwest::Method::POST,
                    &format!("im/v1/chats/{chat_id}/members?member_id_type=open_id"),
                    Some(&json!({"id_list": users})),
                    now,
                )
                .await
                .map(|_| ()),
            _ => self
                .http
                .wecom_call(
                    i,
                    "cgi-bin/appchat/update",
                    &json!({"chatid": chat_id, "add_user_list": users}),
                    now,
                )
                .await
                .map(|_| ()),
        }
    }

    /// RSP-431 step 4: posts the incident card; Ok = the card's reference for refreshes
    /// (Slack `<channel>/<ts>`, a Feishu message id; "" on WeCom).
    pub async fn post_card(
        &self,
        chat_id: &str,
        card: &Card,
        key: &str,
        now: Millis,
    ) -> Result<String, SendError> {
        let i = self.integration;
        match self.kind() {
            "slack" => {
                self.http
                    .slack_post_message(
                        self.slack_api_base,
                        &i.bot_token,
                        key,
                        chat_id,
                        &crate::slack::message(card),
                    )
                    .await
            }
            "feishu" => {
                self.http
                    .feishu_send_card(
                        i,
                        &feishu_uuid(key),
                        "chat_id",
                        chat_id,
                        &crate::feishu::card(card),
                        now,
                    )
                    .await
            }
            _ => {
                let body = json!({
                    "chatid": chat_id,
                    "msgtype": "textcard",
                    "textcard": {
                        "title": format!("INC #{} {}", card.num, card.title),
                        "description": format!("{} · {}", card.severity, card.progress),
                        "url": card.detail_url,
                        "btntxt": "Details",
                    },
                });
                self.http
                    .wecom_call(i, "cgi-bin/appchat/send", &body, now)
                    .await
                    .map(|_| String::new())
            }
        }
    }

    /// Posts a line of text into the chat (RSP-434 updates).
    pub async fn post_text(
        &self,
        chat_id: &str,
        text: &str,
        key: &str,
        now: Millis,
    ) -> Result<(), SendError> {
        let i = self.integration;
        match self.kind() {
            "slack" => self
                .http
                .slack_call(
                    self.slack_api_base,
                    &i.bot_token,
                    "chat.postMessage",
                    &json!({"channel": chat_id, "text": text}),
                )
                .await
                .map(|_| ()),
            "feishu" => self
                .http
                .feishu_call(
                    i,
                    reqwest::Method::POST,
                    "im/v1/messages?receive_id_type=chat_id",
                    Some(&json!({
                        "receive_id": chat_id,
                        "msg_type": "text",
                        "content": json!({"text": text}).to_string(),
                        "uuid": feishu_uuid(key),
                    })),
                    now,
                )
                .await
                .map(|_| ()),
            _ => self
                .http
                .wecom_call(
                    i,
                    "cgi-bin/appchat/send",
                    &json!({"chatid": chat_id, "msgtype": "text", "text": {"content": text}}),
                    now,
                )
                .await
                .map(|_| ()),
        }
    }

    /// Replaces the posted card with the incident's state now (RSP-434). WeCom's text card
    /// cannot be changed.
    pub async fn refresh_card(
        &self,
        card_ref: &str,
        card: &Card,
        now: Millis,
    ) -> Result<(), SendError> {
        if card_ref.is_empty() {
            return Ok(());
        }
        let i = self.integration;
        match self.kind() {
            "slack" => self
                .http
                .slack_update_message(
                    self.slack_api_base,
                    &i.bot_token,
                    card_ref,
                    &crate::slack::message(card),
                )
                .await
                .map(|_| ()),
            "feishu" => {
                self.http
                    .feishu_update_card(i, card_ref, &crate::feishu::card(card), now)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// RSP-436: disbands the chat. Slack archives the channel; WeCom cannot disband an app
    /// chat, so it is told in the chat that the war room is closed.
    pub async fn disband(&self, chat_id: &str, now: Millis) -> Result<(), SendError> {
        let i = self.integration;
        match self.kind() {
            "slack" => {
                let r = self
                    .http
                    .slack_call(
                        self.slack_api_base,
                        &i.bot_token,
                        "conversations.archive",
                        &json!({"channel": chat_id}),
                    )
                    .await;
                match r {
                    Err(SendError::Permanent(e)) if e.ends_with("already_archived") => Ok(()),
                    r => r.map(|_| ()),
                }
            }
            "feishu" => {
                let r = self
                    .http
                    .feishu_call(
                        i,
                        reqwest::Method::DELETE,
                        &format!("im/v1/chats/{chat_id}"),
                        None,
                        now,
                    )
                    .await;
                match r {
                    // Disbanded already (by a member, or Feishu reported it).
                    Err(SendError::Permanent(e)) if e == "chat_unavailable" => Ok(()),
                    r => r.map(|_| ()),
                }
            }
            _ => {
                self.post_text(
                    chat_id,
                    "This war room has been dissolved in Klaxon; it is no longer synced.",
                    "dissolve",
                    now,
                )
                .await
            }
        }
    }

    /// RSP-432's one-click link: the member's user on the platform, found by their
    /// notification e-mail or phone. `None` when the platform knows neither.
    pub async fn lookup(
        &self,
        contact: &MemberContact,
        now: Millis,
    ) -> Result<Option<String>, SendError> {
        let i = self.integration;
        match self.kind() {
            "slack" => {
                if contact.email.is_empty() {
                    return Ok(None);
                }
                let r = self
                    .http
                    .slack_form_call(
                        self.slack_api_base,
                        &i.bot_token,
                        "users.lookupByEmail",
                        &[("email", contact.email.as_str())],
                    )
                    .await;
                match r {
                    Ok(v) => Ok(v["user"]["id"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)),
                    Err(SendError::Permanent(e)) if e.ends_with("users_not_found") => Ok(None),
                    Err(e) => Err(e),
                }
            }
            "feishu" => {
                let mut body = serde_json::Map::new();
                if !contact.email.is_empty() {
                    body.insert("emails".into(), json!([contact.email]));
                }
                if !contact.phone.is_empty() {
                    body.insert("mobiles".into(), json!([contact.phone]));
                }
                if body.is_empty() {
                    return Ok(None);
                }
                let v = self
                    .http
                    .feishu_call(
                        i,
                        reqwest::Method::POST,
                        "contact/v3/users/batch_get_id?user_id_type=open_id",
                        Some(&Value::Object(body)),
                        now,
                    )
                    .await?;
                Ok(v["data"]["user_list"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u["user_id"].as_str())
                    .find(|s| !s.is_empty())
                    .map(str::to_string))
            }
            "wecom" => {
                self.http
                    .wecom_lookup(i, &contact.email, &contact.phone, now)
                    .await
            }
            _ => Ok(None),
        }
    }

    /// RSP-432: the IM user ids of `member_ids`: their link on the integration, else a
    /// platform look-up, which is then kept as their link. Returns (resolved, unresolved).
    pub async fn resolve(
        &self,
        store: &Store,
        member_ids: &[i64],
        now: Millis,
    ) -> Result<(Vec<(i64, String)>, Vec<i64>), SendError> {
        let i = self.integration;
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let links: HashMap<i64, String> = store
            .im_links(i.account_id, i.integration_id)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|l| (l.member_id, l.im_user_id))
            .collect();
        let contacts: HashMap<i64, MemberContact> = store
            .member_contacts(i.account_id, member_ids)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|c| (c.member_id, c))
            .collect();
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        for id in member_ids {
            let Some(c) = contacts.get(id).filter(|c| c.status == "enabled") else {
                missing.push(*id);
                continue;
            };
            if let Some(u) = links.get(id) {
                found.push((*id, u.clone()));
                continue;
            }
            match self.lookup(c, now).await? {
                Some(u) => {
                    // The one-click link: kept, so cards pressed by this user act as them.
                    // A user linked to another member already stays with that member.
                    if let Ok(Ok(_)) = store
                        .link_im_user(i.account_id, i.integration_id, *id, &u, now)
                        .await
                    {
                        found.push((*id, u));
                    } else {
                        missing.push(*id);
                    }
                }
                None => missing.push(*id),
            }
        }
        Ok((found, missing))
    }
}

/// The template channel of a platform's card body.
pub fn card_channel(kind: &str) -> klaxon_core::template::Channel {
    match kind {
        "slack" => klaxon_core::template::Channel::SlackApp,
        "feishu" => klaxon_core::template::Channel::FeishuApp,
        _ => klaxon_core::template::Channel::WecomApp,
    }
}

/// The persons an `i_assign` entry resolved (`to`), else the ones it named.
fn assigned_persons(detail: &Value) -> Vec<i64> {
    let ids = |k: &str| -> Vec<i64> {
        detail[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect()
    };
    let to = ids("to");
    if to.is_empty() { ids("person_ids") } else { to }
}

/// One line per state change for the chat (RSP-434), naming the actor when a person acted.
pub fn event_line(event: &Value, names: &HashMap<i64, String>) -> String {
    let by = event["creator_id"]
        .as_i64()
        .and_then(|id| names.get(&id))
        .map(|n| format!(" by {n}"))
        .unwrap_or_default();
    let d = &event["detail"];
    match event["type"].as_str().unwrap_or_default() {
        "i_ack" => format!("Acknowledged{by}"),
        "i_unack" => format!("Acknowledgement withdrawn{by}"),
        "i_snooze" => format!(
            "Snoozed for {} minutes{by}",
            d["minutes"].as_i64().unwrap_or(0)
        ),
        "i_wake" => format!("Snooze ended{by}"),
        "i_rslv" => format!("Closed{by}"),
        "i_reopen" => format!("Reopened{by}"),
        "i_assign" => {
            let people: Vec<&str> = assigned_persons(d)
                .into_iter()
                .filter_map(|id| names.get(&id).map(String::as_str))
                .collect();
            if people.is_empty() {
                format!("Assignment changed{by}")
            } else {
                format!("Assigned to {}{by}", people.join(", "))
            }
        }
        "i_r_severity" => format!(
            "Severity changed from {} to {}{by}",
            d["from"].as_str().unwrap_or("?"),
            d["to"].as_str().unwrap_or("?")
        ),
        other => other.to_string(),
    }
}

/// The war room of a sync row and its integration, when sync still applies: the room is
/// active and its integration enabled with `war_room_enabled` (RSP-438).
async fn sync_target(
    store: &Store,
    d: &PendingDelivery,
) -> Result<(WarRoom, ImIntegration), SendError> {
    let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
    let room_id = d.target["room_id"].as_str().unwrap_or_default();
    let room = store
        .war_room(d.account_id, room_id)
        .await
        .map_err(store_err)?
        .filter(WarRoom::is_active)
        .ok_or_else(|| SendError::Permanent("war_room_dissolved".into()))?;
    let integration = store
        .im_integration(d.account_id, room.integration_id)
        .await
        .map_err(store_err)?
        .filter(|i| i.war_room_enabled && i.status == "enabled")
        .ok_or_else(|| SendError::Permanent("war_room_sync_off".into()))?;
    Ok((room, integration))
}

/// Sends one war-room outbox row: invites the responders it names (RSP-433), then posts the
/// state changes and refreshes the card (RSP-434). Members who cannot be resolved are left
/// out, as at creation (RSP-432).
pub async fn sync(
    store: &Store,
    http: &HttpProviders,
    slack_api_base: &str,
    base_url: &str,
    d: &PendingDelivery,
    now: Millis,
) -> Result<String, SendError> {
    let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
    let (room, integration) = sync_target(store, d).await?;
    let platform = Platform {
        http,
        slack_api_base,
        integration: &integration,
    };
    let invite: Vec<i64> = d.target["invite"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    if !invite.is_empty() {
        let (found, _) = platform.resolve(store, &invite, now).await?;
        let users: Vec<String> = found.iter().map(|(_, u)| u.clone()).collect();
        platform.invite(&room.chat_id, &users, now).await?;
        store
            .add_war_room_members(&room, &found, now)
            .await
            .map_err(store_err)?;
    }
    let events: Vec<&Value> = d.target["events"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if events.is_empty() {
        return Ok(String::new());
    }
    let Some(inc) = store
        .incident(d.account_id, &d.incident_id)
        .await
        .map_err(store_err)?
    else {
        return Err(SendError::Permanent(
            "provider_error:the incident no longer exists".into(),
        ));
    };
    let mut ids: Vec<i64> = events
        .iter()
        .filter_map(|e| e["creator_id"].as_i64())
        .collect();
    for e in &events {
        ids.extend(assigned_persons(&e["detail"]));
    }
    let names: HashMap<i64, String> = store
        .member_contacts(d.account_id, &ids)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|c| (c.member_id, c.name))
        .collect();
    let lines: Vec<String> = events.iter().map(|e| event_line(e, &names)).collect();
    let text = format!("INC #{} {}: {}", inc.num, inc.title, lines.join("; "));
    platform
        .post_text(&room.chat_id, &text, &d.rid, now)
        .await?;
    let card = card_of(store, &inc, base_url, &integration.kind, now)
        .await
        .map_err(store_err)?;
    platform.refresh_card(&room.card_ref, &card, now).await?;
    Ok(String::new())
}

/// The incident's card as it is now, with the platform's app template as its body.
pub async fn card_of(
    store: &Store,
    inc: &Incident,
    base_url: &str,
    kind: &str,
    now: Millis,
) -> Result<Card, StoreError> {
    crate::templating::card_now(store, inc, base_url, "", now, card_channel(kind)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_slack_name_is_followed_by_numbered_ones_within_the_limit() {
        // spec: RSP-437 — a new war room after a dissolved one needs another channel name.
        let names = slack_names("inc-7-db-down");
        assert_eq!(names[0], "inc-7-db-down");
        assert_eq!(names[1], "inc-7-db-down-2");
        assert_eq!(names.last().unwrap(), "inc-7-db-down-10");
        assert_eq!(names.len(), 10);
        let long = chat_name("slack", "1", &"x".repeat(200));
        for n in slack_names(&long) {
            assert!(n.chars().count() <= 80, "{n}");
        }
        assert!(slack_names(&long)[1].ends_with("x-2"));
    }

    #[test]
    fn chat_names_follow_each_platforms_rules() {
        // spec: RSP-431
        assert_eq!(
            chat_name("slack", "A1B2", "DB is down: 5xx on /api!"),
            "inc-a1b2-db-is-down-5xx-on-api"
        );
        let long = "x".repeat(200);
        assert_eq!(chat_name("slack", "1", &long).chars().count(), 80);
        assert_eq!(
            chat_name("feishu", "7", "磁盘已满").as_str(),
            "INC #7 磁盘已满"
        );
        assert_eq!(chat_name("feishu", "7", &long).chars().count(), 60);
        assert_eq!(chat_name("wecom", "7", &long).chars().count(), 50);
        assert!(chat_name("slack", "7", "磁盘已满").starts_with("inc-7"));
    }

    #[test]
    fn state_lines_name_the_actor() {
        // spec: RSP-434
        let names = HashMap::from([(1, "Ann".to_string()), (2, "Bob".to_string())]);
        let ack = json!({"type": "i_ack", "creator_id": 1, "detail": {"from": "console"}});
        assert_eq!(event_line(&ack, &names), "Acknowledged by Ann");
        let assign = json!({"type": "i_assign", "creator_id": 0, "detail": {"person_ids": [2]}});
        assert_eq!(event_line(&assign, &names), "Assigned to Bob");
        let sev = json!({"type": "i_r_severity", "creator_id": 2,
                         "detail": {"from": "Warning", "to": "Critical"}});
        assert_eq!(
            event_line(&sev, &names),
            "Severity changed from Warning to Critical by Bob"
        );
    }
}
