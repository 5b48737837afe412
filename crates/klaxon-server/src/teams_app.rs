//! The Microsoft Teams app's messaging endpoint (response.md §2.19 RSP-300/RSP-301/RSP-302,
//! §2.20 RSP-310/RSP-311/RSP-312/RSP-317; docs/teams-app.md): the Bot Connector posts every
//! activity for the bot here — the commands people send it and the presses of its cards'
//! buttons (`Action.Submit` arrives as a message activity carrying the button's data).
//!
//! 1. Every request carries a JWT from the Bot Connector. It must be signed (RS256) by a key
//!    the Connector publishes in its OpenID metadata (`notify.teams_openid_url`, fetched and
//!    kept for an hour), be issued by `https://api.botframework.com` for the bot's App ID,
//!    be within its validity (five minutes of clock skew), and name the activity's
//!    `serviceUrl`. Anything else is answered 401 and changes nothing.
//! 2. Commands: `linkTeam {ID}` in a team's General channel and `linkChat {ID} {ChatName}` in
//!    a group chat make the conversation a chat that escalation rules can post to (the ID is
//!    the integration's id, so a bot shared by two integrations cannot be linked to the wrong
//!    one); `linkUser {code}` in the personal chat links the Teams user to the member who
//!    obtained the one-time code (`/im/person/link_code`), for good (RSP-301).
//! 3. A card button acts as the member linked to the pressing Teams user, through the same
//!    path as the other IM apps (`slack::act`, `from = card`); an unlinked user gets a reply
//!    telling them to link, and nothing changes (RSP-310). The pressed card and the incident's
//!    other Teams cards are then replaced with the current state (RSP-312).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use klaxon_core::model::Millis;
use klaxon_notify::card::Action;
use klaxon_notify::teams::{self, Command};
use klaxon_store::{ImConversation, ImIntegration, ImRefusal};
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::im_callback;
use crate::state::AppState;

const MAX_BODY: usize = 256 * 1024;
/// How long the Connector's published keys are kept before they are fetched again.
const KEYS_TTL_MS: Millis = 3600 * 1000;
/// The clock skew the Bot Framework allows.
const SKEW_SECS: i64 = 300;

const NOT_LINKED: &str = "Your Teams account is not linked to a Klaxon member. Get a link code \
                          in Klaxon and send linkUser {code} to this bot, then try again.";

pub fn routes() -> Router<AppState> {
    Router::new().route("/im/teams/messages/{integration_id}", post(messages))
}

/// The hash a link code is kept under.
pub fn code_hash(code: &str) -> String {
    sha2::Sha256::digest(code.trim().to_ascii_uppercase().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- the Connector's keys ----

type Keys = (Millis, Vec<Value>);

fn key_cache() -> &'static Mutex<HashMap<String, Keys>> {
    static KEYS: OnceLock<Mutex<HashMap<String, Keys>>> = OnceLock::new();
    KEYS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The keys of the OpenID metadata at `url`: the kept ones while fresh, unless `refresh`
/// (a token names a key they do not have: the Connector rolled its keys).
async fn connector_keys(
    state: &AppState,
    url: &str,
    now: Millis,
    refresh: bool,
) -> Result<Vec<Value>, String> {
    if !refresh
        && let Ok(map) = key_cache().lock()
        && let Some((at, keys)) = map.get(url)
        && now < at + KEYS_TTL_MS
    {
        return Ok(keys.clone());
    }
    let meta = state
        .im_http
        .get_json(url)
        .await
        .map_err(|e| format!("OpenID metadata: {e:?}"))?;
    let jwks_uri = meta["jwks_uri"]
        .as_str()
        .ok_or("the OpenID metadata has no jwks_uri")?;
    let jwks = state
        .im_http
        .get_json(jwks_uri)
        .await
        .map_err(|e| format!("keys: {e:?}"))?;
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    if let Ok(mut map) = key_cache().lock() {
        map.insert(url.to_string(), (now, keys.clone()));
    }
    Ok(keys)
}

/// Why a request was not accepted as coming from the Bot Connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// The token names a key the Connector does not publish (yet).
    UnknownKey,
    Invalid(String),
}

/// Verifies the Connector's token (RS256 by one of `keys`, issuer, audience = the App ID,
/// validity at `now_secs` with five minutes of skew, `serviceUrl` = the activity's, and the
/// key endorsed for the activity's channel when the key lists endorsements).
pub fn verify_token(
    token: &str,
    keys: &[Value],
    app_id: &str,
    service_url: &str,
    channel_id: &str,
    now_secs: i64,
) -> Result<(), Unverified> {
    let bad = |m: &str| Unverified::Invalid(m.to_string());
    let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed token"))?;
    if header.alg != Algorithm::RS256 {
        return Err(bad("the token is not RS256"));
    }
    let kid = header.kid.ok_or_else(|| bad("the token names no key"))?;
    let Some(raw) = keys
        .iter()
        .find(|k| k["kid"].as_str() == Some(kid.as_str()))
    else {
        return Err(Unverified::UnknownKey);
    };
    if let Some(endorsed) = raw["endorsements"].as_array()
        && !endorsed.iter().any(|e| e.as_str() == Some(channel_id))
    {
        return Err(bad("the key is not endorsed for this channel"));
    }
    let jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|_| bad("unreadable key"))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| bad("unusable key"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Times are checked below against the injected clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[teams::ISSUER]);
    validation.set_audience(&[app_id]);
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| Unverified::Invalid(format!("token: {e}")))?
        .claims;
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp + SKEW_SECS < now_secs {
        return Err(bad("the token has expired"));
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && nbf - SKEW_SECS > now_secs
    {
        return Err(bad("the token is not valid yet"));
    }
    let claimed = claims
        .get("serviceUrl")
        .or_else(|| claims.get("serviceurl"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if claimed.trim_end_matches('/') != service_url.trim_end_matches('/') || claimed.is_empty() {
        return Err(bad("the token is for another service URL"));
    }
    Ok(())
}

async fn messages(
    State(state): State<AppState>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match im_callback::body(body, MAX_BODY).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let i = match im_callback::integration(&state, &integration_id, "teams").await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Ok(activity) = serde_json::from_slice::<Value>(&bytes) else {
        return im_callback::refuse("unverified request");
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let service_url = activity["serviceUrl"].as_str().unwrap_or_default();
    let channel_id = activity["channelId"].as_str().unwrap_or_default();
    let now = state.clock.now();
    let openid = state.config.notify.teams_openid_url.clone();
    let mut verdict = Err(Unverified::UnknownKey);
    for refresh in [false, true] {
        let keys = match connector_keys(&state, &openid, now, refresh).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the Bot Connector's keys");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        };
        verdict = verify_token(token, &keys, &i.app_id, service_url, channel_id, now / 1000);
        if verdict != Err(Unverified::UnknownKey) {
            break;
        }
    }
    if let Err(why) = verdict {
        metrics::counter!("klaxon_teams_requests_refused_total").increment(1);
        tracing::info!(
            integration_id = i.integration_id,
            ?why,
            "refused a Teams request"
        );
        return im_callback::refuse("unverified request");
    }
    if activity["type"].as_str() != Some("message") {
        // conversationUpdate and the like: nothing to do.
        return StatusCode::OK.into_response();
    }
    let reply = if activity["value"].get("klaxon").is_some() {
        press(&state, &i, &activity).await
    } else {
        command(&state, &i, &activity).await
    };
    if let Some(text) = reply
        && let Err(e) = state
            .im_http
            .teams_post(
                &i,
                &state.config.notify.teams_login_base,
                service_url,
                activity["conversation"]["id"].as_str().unwrap_or_default(),
                activity["id"].as_str(),
                &teams::text_activity(&text),
                now,
            )
            .await
    {
        tracing::warn!(error = ?e, "replying in Teams failed");
    }
    StatusCode::OK.into_response()
}

/// A command; `Some(text)` is the bot's reply.
async fn command(state: &AppState, i: &ImIntegration, activity: &Value) -> Option<String> {
    let text = activity["text"].as_str().unwrap_or_default();
    let conv = &activity["conversation"];
    let conv_type = conv["conversationType"].as_str().unwrap_or_default();
    let service_url = activity["serviceUrl"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = state.clock.now();
    let own_id = i.integration_id.to_string();
    let record = |kind: &str, id: &str, user: &str, name: &str| ImConversation {
        integration_id: i.integration_id,
        conversation_id: id.to_string(),
        kind: kind.to_string(),
        im_user_id: user.to_string(),
        name: name.to_string(),
        service_url: service_url.clone(),
        created_at: now,
    };
    let help = "Send linkUser {code} here to link your Teams account (get the code in \
                Klaxon), linkTeam {ID} in a team's General channel, or linkChat {ID} \
                {ChatName} in a group chat.";
    let store_failed = |e: klaxon_store::StoreError| {
        tracing::error!(error = %e, "cannot record a Teams link");
        "Klaxon could not record the link; try again.".to_string()
    };
    match teams::parse_command(text) {
        None => Some(help.to_string()),
        Some(Command::LinkTeam { id }) | Some(Command::LinkChat { id, .. }) if id != own_id => {
            Some(format!(
                "{id} is not this integration's ID; use the ID shown on the integration's page."
            ))
        }
        Some(Command::LinkTeam { .. }) => {
            let team = &activity["channelData"]["team"];
            let Some(team_id) = team["id"].as_str().filter(|_| conv_type == "channel") else {
                return Some("Send linkTeam in the General channel of the team.".into());
            };
            // The General channel's id is the team's id: cards are posted there.
            let name = team["name"].as_str().unwrap_or(team_id);
            let c = record("team", team_id, "", name);
            if let Err(e) = state.store.record_im_conversation(i.account_id, &c).await {
                return Some(store_failed(e));
            }
            Some(format!(
                "Linked the team {name} to Klaxon. Its chat id for escalation rules is {team_id}."
            ))
        }
        Some(Command::LinkChat { name, .. }) => {
            let Some(chat_id) = conv["id"].as_str().filter(|_| conv_type == "groupChat") else {
                return Some("Send linkChat in the group chat to link.".into());
            };
            let c = record("chat", chat_id, "", &name);
            if let Err(e) = state.store.record_im_conversation(i.account_id, &c).await {
                return Some(store_failed(e));
            }
            Some(format!(
                "Linked the chat {name} to Klaxon. Its chat id for escalation rules is {chat_id}."
            ))
        }
        Some(Command::LinkUser { code }) => {
            let (Some(chat_id), Some(user)) = (
                conv["id"].as_str().filter(|_| conv_type == "personal"),
                activity["from"]["id"].as_str().filter(|u| !u.is_empty()),
            ) else {
                return Some("Send linkUser to the bot in a personal chat.".into());
            };
            let taken = match state
                .store
                .take_im_link_code(i.integration_id, &code_hash(&code), now)
                .await
            {
                Ok(t) => t,
                Err(e) => return Some(store_failed(e)),
            };
            let Some((account_id, member_id)) =
                taken.filter(|(a, _)| *a == i.account_id && i.status == "enabled")
            else {
                return Some(
                    "This link code is unknown or has expired; get a new one in Klaxon.".into(),
                );
            };
            match state
                .store
                .link_im_user(account_id, i.integration_id, member_id, user, now)
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(ImRefusal::UserLinked { .. })) => {
                    return Some(
                        "This Teams account is already linked to another Klaxon member.".into(),
                    );
                }
                Ok(Err(_)) => {
                    return Some("The member of this code can no longer be linked.".into());
                }
                Err(e) => return Some(store_failed(e)),
            }
            let c = record("personal", chat_id, user, "");
            if let Err(e) = state.store.record_im_conversation(account_id, &c).await {
                return Some(store_failed(e));
            }
            let name = state
                .store
                .member_contacts(account_id, &[member_id])
                .await
                .ok()
                .and_then(|c| c.into_iter().next())
                .map(|c| c.name)
                .unwrap_or_default();
            Some(format!(
                "Linked your Teams account to the Klaxon member {name}."
            ))
        }
    }
}

/// A card button; `Some(text)` is a reply for the user (an error), else the card changed.
async fn press(state: &AppState, i: &ImIntegration, activity: &Value) -> Option<String> {
    let action = teams::parse_action(&activity["value"]).filter(|a| *a != Action::Details)?;
    let user = activity["from"]["id"].as_str().unwrap_or_default();
    let member = match state
        .store
        .linked_member(i.account_id, i.integration_id, user)
        .await
    {
        Ok(m) => m.filter(|_| i.status == "enabled"),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the linked member");
            return Some("Klaxon could not read your link; try again.".into());
        }
    };
    // RSP-310: nothing changes for an unlinked user.
    let Some(member_id) = member else {
        return Some(NOT_LINKED.into());
    };
    match crate::slack::act(
        state,
        i.account_id,
        member_id,
        &action,
        crate::audit::SOURCE_CARD,
    )
    .await
    {
        Ok((incident_id, note)) => {
            let pressed = format!(
                "{}|{}",
                activity["conversation"]["id"].as_str().unwrap_or_default(),
                activity["replyToId"].as_str().unwrap_or_default()
            );
            // The other cards follow through the outbox (RSP-312, `card_refresh`).
            answer_card(state, i, &incident_id, &note, &pressed).await;
            None
        }
        Err(message) => Some(message),
    }
}

/// Replaces the pressed Teams card (`conversation|activity`) with the incident's current
/// state and `note` (RSP-312). Best effort.
async fn answer_card(
    state: &AppState,
    i: &ImIntegration,
    incident_id: &str,
    note: &str,
    pressed: &str,
) {
    let now = state.clock.now();
    let Some((conversation, activity)) = pressed.split_once('|') else {
        return;
    };
    if conversation.is_empty() || activity.is_empty() {
        return;
    }
    let Some((_, card)) = klaxon_notify::card_refresh::current_card(
        &state.store,
        &state.base_url,
        i.account_id,
        incident_id,
        note,
        klaxon_core::template::Channel::TeamsApp,
        now,
    )
    .await
    else {
        return;
    };
    let Ok(Some(conv)) = state
        .store
        .im_conversation(i.account_id, i.integration_id, conversation)
        .await
    else {
        return;
    };
    let body = teams::activity(&teams::card(&card, &[]));
    if let Err(e) = state
        .im_http
        .teams_update(
            i,
            &state.config.notify.teams_login_base,
            &conv.service_url,
            conversation,
            activity,
            &body,
            now,
        )
        .await
    {
        tracing::warn!(error = ?e, "updating a Teams card failed");
    }
}
