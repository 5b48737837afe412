//! IM integrations over the Open API (response.md 1.21, RSP-301, RSP-302; docs/slack.md).
//!
//! A Klaxon extension like `/webhook/*`: Flashduty installs IM apps only in its console.
//! - `/im/integration/create|list|info|delete`: the integration with its credentials, for
//!   every platform of 1.21: `slack`, `feishu` (Feishu/Lark), `dingtalk`, `wecom`, `teams`.
//!   Credentials are never answered in full, not even at creation (the caller typed them).
//! - `/im/person/link|unlink|list`: linked identities (member ↔ IM user id), the
//!   administrator's link of RSP-301. Teams users link themselves instead (RSP-301): the
//!   member asks `/im/person/link_code` for a one-time code and sends `linkUser {code}` to
//!   the bot; Teams links cannot be removed.
//! - `/im/person/link_by_phone`: the administrator's one-click link of RSP-301 for DingTalk:
//!   the member's verified phone is looked up in the organisation's address book.
//!
//! Managing needs `Integrations Manage`, reading `Integrations Read` (RSP-521), checked by the
//! route table (`super::access`) before these handlers run.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{ImIntegration, ImIntegrationDraft, ImLink, ImRefusal};
use serde_json::{Value, json};

use super::teams::store_err;
use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

pub const PATHS: &[&str] = &[
    "/im/integration/create",
    "/im/integration/list",
    "/im/integration/info",
    "/im/integration/delete",
    "/im/person/link",
    "/im/person/unlink",
    "/im/person/list",
    "/im/person/link_code",
    "/im/person/link_by_phone",
];

/// The platforms of response.md 1.21.
const TYPES: [&str; 5] = ["feishu", "dingtalk", "wecom", "slack", "teams"];
const NAME_MAX_CHARS: usize = 39;
const SECRET_MAX_CHARS: usize = 256;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/im/integration/create" => create(state, caller, args).await.map(Some),
        "/im/integration/list" => list(state, caller, args).await.map(Some),
        "/im/integration/info" => info(state, caller, args).await.map(Some),
        "/im/integration/delete" => delete(state, caller, args).await.map(|()| None),
        "/im/person/link" => link(state, caller, args).await.map(Some),
        "/im/person/unlink" => unlink(state, caller, args).await.map(|()| None),
        "/im/person/list" => links(state, caller, args).await.map(Some),
        "/im/person/link_code" => link_code(state, caller, args).await.map(Some),
        "/im/person/link_by_phone" => link_by_phone(state, caller, args).await.map(Some),
        _ => return None,
    })
}

/// The interactivity request URL to enter in the Slack app's settings.
pub fn interactivity_url(base_url: &str, integration_id: i64) -> String {
    format!("{base_url}/im/slack/interactive/{integration_id}")
}

/// The "message card request URL" to enter in the Feishu app's event and callback settings.
pub fn feishu_callback_url(base_url: &str, integration_id: i64) -> String {
    format!("{base_url}/im/feishu/callback/{integration_id}")
}

/// The callback URL to enter in the WeCom app's "receive messages" settings, with its Token
/// and EncodingAESKey.
pub fn wecom_callback_url(base_url: &str, integration_id: i64) -> String {
    format!("{base_url}/im/wecom/callback/{integration_id}")
}

/// The URL to enter in the DingTalk app's event subscription (HTTP push), with its Signature
/// Token and aes_key; the cards' callback route key is bound to it too.
pub fn dingtalk_callback_url(base_url: &str, integration_id: i64) -> String {
    format!("{base_url}/im/dingtalk/callback/{integration_id}")
}

/// The messaging endpoint to enter in the Teams bot's Azure registration.
pub fn teams_messaging_url(base_url: &str, integration_id: i64) -> String {
    format!("{base_url}/im/teams/messages/{integration_id}")
}

/// How long a Teams link code works.
const LINK_CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Link code letters: no 0/O, 1/I/L, so a code read from a screen is typed right.
const LINK_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// The open platforms a Feishu integration may call: Feishu's, Lark's, or any other http(s)
/// origin (a proxy), checked against the private-address rules when it is called.
fn api_base(args: &Args, default: &str) -> Result<String, ApiError> {
    let Some(b) = args.str("api_base")? else {
        return Ok(default.to_string());
    };
    let b = b.trim().trim_end_matches('/').to_string();
    let ok = reqwest::Url::parse(&b).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.path() == "/"
            && u.query().is_none()
            && u.username().is_empty()
    });
    if !ok || b.chars().count() > 200 {
        return Err(ApiError::invalid(
            "api_base: must be an http(s) origin such as https://open.feishu.cn or https://qyapi.weixin.qq.com",
        ));
    }
    Ok(b)
}

/// A secret shown as its last four characters (enough to tell two apart), never in full.
fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 8 {
        return "****".into();
    }
    let tail: String = secret.chars().skip(n - 4).collect();
    let head: String = secret.chars().take_while(|c| *c != '-').take(4).collect();
    if secret.contains('-') && head.len() < n - 4 {
        format!("{head}-…{tail}")
    } else {
        format!("…{tail}")
    }
}

fn integration_json(state: &AppState, i: &ImIntegration) -> Value {
    if i.kind == "feishu" {
        let encrypt_key = if i.encrypt_key.is_empty() {
            String::new()
        } else {
            mask(&i.encrypt_key)
        };
        // Feishu's names for the same credentials.
        return json!({
            "integration_id": i.integration_id,
            "type": i.kind,
            "name": i.name,
            "war_room_enabled": i.war_room_enabled,
            "status": i.status,
            "app_id": i.app_id,
            "app_secret": mask(&i.bot_token),
            "verification_token": mask(&i.signing_secret),
            "encrypt_key": encrypt_key,
            "api_base": i.api_base,
            "callback_url": feishu_callback_url(&state.base_url, i.integration_id),
            "creator_id": i.creator_id,
            "created_at": wire::secs(i.created_at),
            "updated_at": wire::secs(i.updated_at),
        });
    }
    if i.kind == "teams" {
        return json!({
            "integration_id": i.integration_id,
            "type": i.kind,
            "name": i.name,
            "war_room_enabled": i.war_room_enabled,
            "status": i.status,
            "app_id": i.app_id,
            "app_password": mask(&i.bot_token),
            "tenant_id": i.tenant_id,
            "messaging_endpoint": teams_messaging_url(&state.base_url, i.integration_id),
            "creator_id": i.creator_id,
            "created_at": wire::secs(i.created_at),
            "updated_at": wire::secs(i.updated_at),
        });
    }
    if i.kind == "wecom" {
        // WeCom's names for the credentials.
        return json!({
            "integration_id": i.integration_id,
            "type": i.kind,
            "name": i.name,
            "war_room_enabled": i.war_room_enabled,
            "status": i.status,
            "corp_id": i.app_id,
            "agent_id": i.agent_id,
            "secret": mask(&i.bot_token),
            "token": mask(&i.signing_secret),
            "encoding_aes_key": mask(&i.encrypt_key),
            "api_base": i.api_base,
            "callback_url": wecom_callback_url(&state.base_url, i.integration_id),
            "creator_id": i.creator_id,
            "created_at": wire::secs(i.created_at),
            "updated_at": wire::secs(i.updated_at),
        });
    }
    if i.kind == "dingtalk" {
        // The developer console's names for the credentials.
        return json!({
            "integration_id": i.integration_id,
            "type": i.kind,
            "name": i.name,
            "war_room_enabled": i.war_room_enabled,
            "status": i.status,
            "corp_id": i.corp_id,
            "agent_id": i.agent_id,
            "client_id": i.app_id,
            "client_secret": mask(&i.bot_token),
            "signature_token": mask(&i.signing_secret),
            "aes_key": mask(&i.encrypt_key),
            "api_base": i.api_base,
            "callback_url": dingtalk_callback_url(&state.base_url, i.integration_id),
            "callback_route_key": klaxon_notify::dingtalk::callback_route_key(i.integration_id),
            "creator_id": i.creator_id,
            "created_at": wire::secs(i.created_at),
            "updated_at": wire::secs(i.updated_at),
        });
    }
    let mut v = json!({
        "integration_id": i.integration_id,
        "type": i.kind,
        "name": i.name,
        "war_room_enabled": i.war_room_enabled,
        "status": i.status,
        "bot_token": mask(&i.bot_token),
        "signing_secret": mask(&i.signing_secret),
        "creator_id": i.creator_id,
        "created_at": wire::secs(i.created_at),
        "updated_at": wire::secs(i.updated_at),
    });
    if i.kind == "slack"
        && let Value::Object(m) = &mut v
    {
        m.insert(
            "interactivity_url".into(),
            Value::String(interactivity_url(&state.base_url, i.integration_id)),
        );
    }
    v
}

fn link_json(l: &ImLink) -> Value {
    json!({
        "integration_id": l.integration_id,
        "person_id": l.member_id,
        "im_user_id": l.im_user_id,
        "created_at": wire::secs(l.created_at),
    })
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("integration_id: IM integration {id} not found"),
    )
}

/// A credential: required, no whitespace, at most [`SECRET_MAX_CHARS`].
fn credential(args: &Args, name: &str) -> Result<String, ApiError> {
    let v = args
        .str(name)?
        .ok_or_else(|| ApiError::invalid(format!("{name}: required")))?;
    if v.chars().any(char::is_whitespace) || v.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{name}: must not contain spaces or control characters"
        )));
    }
    if v.chars().count() > SECRET_MAX_CHARS {
        return Err(ApiError::invalid(format!(
            "{name}: at most {SECRET_MAX_CHARS} characters"
        )));
    }
    Ok(v)
}

/// A Slack user id as Slack writes it: `U…` or `W…` (Enterprise Grid), upper-case letters and
/// digits.
fn slack_user_id(v: &str) -> bool {
    let mut chars = v.chars();
    matches!(chars.next(), Some('U' | 'W'))
        && (3..=24).contains(&v.len())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A Feishu user's `open_id` as the platform writes it: `ou_` and letters or digits. Cards
/// are sent to it and callbacks name the clicking user by it.
fn feishu_open_id(v: &str) -> bool {
    v.len() > 3
        && v.len() <= 64
        && v.starts_with("ou_")
        && v[3..].chars().all(|c| c.is_ascii_alphanumeric())
}

/// A DingTalk user id as the address book writes it (the `userid` cards are sent to and
/// callbacks name): 1–64 letters, digits and `_-`.
fn dingtalk_user_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// A WeCom user id as the address book writes it (the `userid`, which cards are sent to and
/// callbacks name): 1–64 letters, digits and `_-.@`.
fn wecom_user_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let kind = args.str("type")?.ok_or_else(|| {
        ApiError::invalid("type: required (slack, feishu, dingtalk, wecom or teams)")
    })?;
    if !TYPES.contains(&kind.as_str()) {
        return Err(ApiError::invalid(format!(
            "type: {kind:?} is not one of feishu, dingtalk, wecom, slack, teams"
        )));
    }
    let name = args
        .str("name")?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("name: required"))?;
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(ApiError::invalid(format!(
            "name: at most {NAME_MAX_CHARS} characters"
        )));
    }
    let creds = if kind == "feishu" {
        feishu_credentials(args)?
    } else if kind == "wecom" {
        wecom_credentials(args)?
    } else if kind == "dingtalk" {
        dingtalk_credentials(args)?
    } else if kind == "teams" {
        teams_credentials(args)?
    } else {
        let bot_token = credential(args, "bot_token")?;
        // Slack bot tokens start with `xoxb-`; a user token would post as that person.
        if !bot_token.starts_with("xoxb-") {
            return Err(ApiError::invalid(
                "bot_token: must be the app's bot token (xoxb-…)",
            ));
        }
        let signing_secret = credential(args, "signing_secret")?;
        ImIntegrationDraft {
            bot_token,
            signing_secret,
            ..ImIntegrationDraft::default()
        }
    };
    let status = match args.str("status")? {
        None => "enabled".to_string(),
        Some(s) if s == "enabled" || s == "disabled" => s,
        Some(s) => {
            return Err(ApiError::invalid(format!(
                "status: {s:?} is not enabled or disabled"
            )));
        }
    };
    let draft = ImIntegrationDraft {
        kind,
        name,
        war_room_enabled: args.bool("war_room_enabled")?.unwrap_or(false),
        status,
        ..creds
    };
    let created = state
        .store
        .create_im_integration(
            caller.account_id,
            &draft,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?;
    match created {
        Ok(i) => {
            tracing::info!(
                account_id = caller.account_id,
                integration_id = i.integration_id,
                kind = %i.kind,
                "IM integration created"
            );
            Ok(integration_json(state, &i))
        }
        Err(ImRefusal::WarRoomTaken(other)) => Err(ApiError::invalid(format!(
            "war_room_enabled: IM integration {other} already has war rooms enabled; at most one may"
        ))),
        Err(_) => Err(ApiError::internal("the created integration is gone")),
    }
}

/// A Feishu app's credentials (docs/feishu.md): the App ID (`cli_…`) and App Secret obtain
/// the tenant access token, the Verification Token proves callbacks, and the optional Encrypt
/// Key decrypts them. Stored in the columns Slack's credentials use (see migration 0047).
fn feishu_credentials(args: &Args) -> Result<ImIntegrationDraft, ApiError> {
    let app_id = credential(args, "app_id")?;
    if !app_id.starts_with("cli_") {
        return Err(ApiError::invalid(
            "app_id: must be the app's App ID (cli_…)",
        ));
    }
    let app_secret = credential(args, "app_secret")?;
    let verification_token = credential(args, "verification_token")?;
    let encrypt_key = match args.str("encrypt_key")? {
        Some(k) if !k.is_empty() => credential(args, "encrypt_key")?,
        _ => String::new(),
    };
    Ok(ImIntegrationDraft {
        bot_token: app_secret,
        signing_secret: verification_token,
        app_id,
        encrypt_key,
        api_base: api_base(args, klaxon_notify::feishu::DEFAULT_API_BASE)?,
        ..ImIntegrationDraft::default()
    })
}

/// A Microsoft Entra id (App ID, tenant): a GUID.
fn guid(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A Teams bot's credentials (docs/teams-app.md): the Microsoft App ID and a client secret
/// obtain the Bot Connector token; `tenant_id` names a single-tenant bot's directory.
fn teams_credentials(args: &Args) -> Result<ImIntegrationDraft, ApiError> {
    let app_id = credential(args, "app_id")?;
    if !guid(&app_id) {
        return Err(ApiError::invalid(
            "app_id: must be the bot's Microsoft App ID (a GUID)",
        ));
    }
    let app_password = credential(args, "app_password")?;
    let tenant_id = match args.str("tenant_id")? {
        Some(t) if !t.is_empty() => {
            if !guid(&t) {
                return Err(ApiError::invalid(
                    "tenant_id: must be the Microsoft Entra tenant ID (a GUID)",
                ));
            }
            t
        }
        _ => String::new(),
    };
    Ok(ImIntegrationDraft {
        bot_token: app_password,
        app_id,
        tenant_id,
        ..ImIntegrationDraft::default()
    })
}

/// A WeCom app's credentials (docs/wecom.md): the corp ID and the app's AgentId and Secret
/// obtain the access token and send as the app; the callback's Token and EncodingAESKey
/// prove and decrypt button presses. `api_base` is a private deployment's API origin.
fn wecom_credentials(args: &Args) -> Result<ImIntegrationDraft, ApiError> {
    let corp_id = credential(args, "corp_id")?;
    if corp_id.len() > 64 || !corp_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid(
            "corp_id: must be the enterprise's corp ID (letters and digits, such as ww…)",
        ));
    }
    let agent_id = credential(args, "agent_id")?;
    if agent_id.len() > 18 || !agent_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "agent_id: must be the app's AgentId (digits)",
        ));
    }
    let secret = credential(args, "secret")?;
    let token = credential(args, "token")?;
    if token.len() > 32 || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid(
            "token: must be the callback Token (at most 32 letters or digits)",
        ));
    }
    let encoding_aes_key = credential(args, "encoding_aes_key")?;
    if klaxon_notify::wecom::aes_key(&encoding_aes_key).is_none() {
        return Err(ApiError::invalid(
            "encoding_aes_key: must be the callback EncodingAESKey (43 characters)",
        ));
    }
    Ok(ImIntegrationDraft {
        bot_token: secret,
        signing_secret: token,
        app_id: corp_id,
        agent_id,
        encrypt_key: encoding_aes_key,
        api_base: api_base(args, klaxon_notify::wecom::DEFAULT_API_BASE)?,
        ..ImIntegrationDraft::default()
    })
}

/// A DingTalk app's credentials (docs/dingtalk-app.md): the Client ID (AppKey, also the robot
/// code) and Client Secret obtain the access token; the event subscription's Signature Token
/// and aes_key prove and decrypt callbacks; the CorpId and AgentId name the organisation and
/// the app. `api_base` is a proxy serving DingTalk's server APIs.
fn dingtalk_credentials(args: &Args) -> Result<ImIntegrationDraft, ApiError> {
    let id_like = |name: &str, what: &str| -> Result<String, ApiError> {
        let v = credential(args, name)?;
        if v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ApiError::invalid(format!(
                "{name}: must be the {what} (letters and digits)"
            )));
        }
        Ok(v)
    };
    let corp_id = id_like("corp_id", "organisation's CorpId, such as ding…")?;
    let agent_id = credential(args, "agent_id")?;
    if agent_id.len() > 18 || !agent_id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "agent_id: must be the app's AgentId (digits)",
        ));
    }
    let client_id = id_like("client_id", "app's Client ID (AppKey)")?;
    let client_secret = credential(args, "client_secret")?;
    let signature_token = credential(args, "signature_token")?;
    let aes_key = credential(args, "aes_key")?;
    if klaxon_notify::msgcrypt::aes_key(&aes_key).is_none() {
        return Err(ApiError::invalid(
            "aes_key: must be the event subscription's aes_key (43 characters)",
        ));
    }
    Ok(ImIntegrationDraft {
        bot_token: client_secret,
        signing_secret: signature_token,
        app_id: client_id,
        agent_id,
        corp_id,
        encrypt_key: aes_key,
        api_base: api_base(args, "")?,
        ..ImIntegrationDraft::default()
    })
}

async fn existing(state: &AppState, caller: &Caller, id: i64) -> Result<ImIntegration, ApiError> {
    state
        .store
        .im_integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))
}

async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let kind = args.str("type")?;
    if let Some(k) = &kind
        && !TYPES.contains(&k.as_str())
    {
        return Err(ApiError::invalid(format!(
            "type: {k:?} is not one of feishu, dingtalk, wecom, slack, teams"
        )));
    }
    let items: Vec<Value> = state
        .store
        .list_im_integrations(caller.account_id, kind.as_deref())
        .await
        .map_err(store_err)?
        .iter()
        .map(|i| integration_json(state, i))
        .collect();
    let total = items.len();
    Ok(json!({"items": items, "total": total, "has_next_page": false}))
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let i = existing(state, caller, id).await?;
    let mut v = integration_json(state, &i);
    if i.kind == "teams" {
        // The teams and chats linked with linkTeam and linkChat (RSP-300): their ids are the
        // chat ids of escalation rules.
        let chats: Vec<Value> = state
            .store
            .im_group_conversations(caller.account_id, id)
            .await
            .map_err(store_err)?
            .iter()
            .map(|c| {
                json!({"chat_id": c.conversation_id, "kind": c.kind, "name": c.name,
                            "created_at": wire::secs(c.created_at)})
            })
            .collect();
        v["linked_chats"] = Value::Array(chats);
    }
    Ok(v)
}

/// A one-time code the calling member sends to the Teams bot as `linkUser {code}` to link
/// their Teams account (RSP-301). A new code replaces the member's earlier one.
async fn link_code(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let i = existing(state, caller, id).await?;
    if i.kind != "teams" {
        return Err(ApiError::invalid(
            "integration_id: link codes are for Teams integrations",
        ));
    }
    let code: String = (0..8)
        .map(|_| {
            let n = rand::random_range(0..LINK_CODE_ALPHABET.len());
            char::from(LINK_CODE_ALPHABET[n])
        })
        .collect();
    let now = state.clock.now();
    let expires_at = now + LINK_CODE_TTL_MS;
    state
        .store
        .issue_im_link_code(
            caller.account_id,
            id,
            caller.member_id,
            &crate::teams_app::code_hash(&code),
            expires_at,
            now,
        )
        .await
        .map_err(store_err)?;
    Ok(json!({
        "code": code,
        "command": format!("linkUser {{{code}}}"),
        "expires_at": wire::secs(expires_at),
    }))
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = args.required_id("integration_id")?;
    if !state
        .store
        .delete_im_integration(caller.account_id, id)
        .await
        .map_err(store_err)?
    {
        return Err(not_found(id));
    }
    Ok(())
}

fn person_id(args: &Args) -> Result<i64, ApiError> {
    args.i64("person_id")?
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid("person_id: required"))
}

async fn link(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let integration = existing(state, caller, id).await?;
    let member = person_id(args)?;
    let user = args
        .str("im_user_id")?
        .map(|u| u.trim().to_string())
        .ok_or_else(|| ApiError::invalid("im_user_id: required"))?;
    if integration.kind == "slack" && !slack_user_id(&user) {
        return Err(ApiError::invalid(format!(
            "im_user_id: {user:?} is not a Slack user id (U… or W…)"
        )));
    }
    if integration.kind == "feishu" && !feishu_open_id(&user) {
        return Err(ApiError::invalid(format!(
            "im_user_id: {user:?} is not a Feishu open_id (ou_…)"
        )));
    }
    if integration.kind == "teams" {
        return Err(ApiError::invalid(
            "integration_id: Teams users link themselves: get a code with /im/person/link_code \
             and send linkUser {code} to the bot",
        ));
    }
    if integration.kind == "dingtalk" && !dingtalk_user_id(&user) {
        return Err(ApiError::invalid(format!(
            "im_user_id: {user:?} is not a DingTalk user id"
        )));
    }
    if integration.kind == "wecom" && !wecom_user_id(&user) {
        return Err(ApiError::invalid(format!(
            "im_user_id: {user:?} is not a WeCom user id"
        )));
    }
    store_link(state, caller, id, member, &user).await
}

/// Links `member` to `user` on integration `id`, answering the link or why it was refused.
async fn store_link(
    state: &AppState,
    caller: &Caller,
    id: i64,
    member: i64,
    user: &str,
) -> Result<Value, ApiError> {
    let linked = state
        .store
        .link_im_user(caller.account_id, id, member, user, state.clock.now())
        .await
        .map_err(store_err)?;
    match linked {
        Ok(l) => Ok(link_json(&l)),
        Err(ImRefusal::NotFound) => Err(not_found(id)),
        Err(ImRefusal::NoSuchMember) => Err(ApiError::invalid(format!(
            "person_id: {member} is not an enabled member of the account"
        ))),
        Err(ImRefusal::UserLinked { member_id }) => Err(ApiError::invalid(format!(
            "im_user_id: {user} is already linked to member {member_id}"
        ))),
        Err(ImRefusal::WarRoomTaken(_)) => Err(ApiError::internal("unexpected refusal")),
    }
}

/// RSP-301, the administrator's one-click link for DingTalk: the member's verified phone is
/// looked up in the organisation (`user/getbymobile`) and the user found is linked. Nothing
/// is linked when the member has no verified phone or DingTalk knows no user with it.
async fn link_by_phone(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let integration = existing(state, caller, id).await?;
    if integration.kind != "dingtalk" {
        return Err(ApiError::invalid(
            "integration_id: the look-up by phone is for DingTalk integrations",
        ));
    }
    let member = person_id(args)?;
    let contact = state
        .store
        .member_contacts(caller.account_id, &[member])
        .await
        .map_err(store_err)?
        .into_iter()
        .find(|c| c.member_id == member && c.status == "enabled")
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "person_id: {member} is not an enabled member of the account"
            ))
        })?;
    if contact.phone.is_empty() || !contact.phone_verified {
        return Err(ApiError::invalid(format!(
            "person_id: member {member} has no verified phone to look up"
        )));
    }
    let found = state
        .im_http
        .dingtalk_user_by_mobile(&integration, &contact.phone, state.clock.now())
        .await
        .map_err(|e| {
            let text = match e {
                klaxon_notify::providers::SendError::Transient(t)
                | klaxon_notify::providers::SendError::Permanent(t)
                | klaxon_notify::providers::SendError::RateLimited(t) => t,
            };
            ApiError::invalid(format!(
                "integration_id: DingTalk refused the look-up: {text}"
            ))
        })?;
    let Some(user) = found.filter(|u| dingtalk_user_id(u)) else {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("person_id: no DingTalk user of the organisation has member {member}'s phone"),
        ));
    };
    store_link(state, caller, id, member, &user).await
}

async fn unlink(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = args.required_id("integration_id")?;
    if existing(state, caller, id).await?.kind == "teams" {
        // RSP-301.
        return Err(ApiError::invalid(
            "integration_id: Teams links cannot be removed",
        ));
    }
    let member = person_id(args)?;
    if !state
        .store
        .unlink_im_user(caller.account_id, id, member)
        .await
        .map_err(store_err)?
    {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("person_id: member {member} is not linked on integration {id}"),
        ));
    }
    Ok(())
}

async fn links(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    existing(state, caller, id).await?;
    let items: Vec<Value> = state
        .store
        .im_links(caller.account_id, id)
        .await
        .map_err(store_err)?
        .iter()
        .map(link_json)
        .collect();
    let total = items.len();
    Ok(json!({"items": items, "total": total, "has_next_page": false}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_show_only_their_end() {
        // spec: response.md 1.21 (credentials are never shown in full)
        assert_eq!(mask("xoxb-1234-5678-abcdEFGH"), "xoxb-…EFGH");
        assert_eq!(mask("8f742231b10e8888abcd99yyyzzz85a5"), "…85a5");
        assert_eq!(mask("short"), "****");
    }

    #[test]
    fn feishu_open_ids() {
        assert!(feishu_open_id("ou_7d8a6e6df7621556ce0d21922b676706"));
        assert!(!feishu_open_id("ou_"));
        assert!(!feishu_open_id("on_7d8a6e6d"));
        assert!(!feishu_open_id("ou_ab cd"));
    }

    #[test]
    fn slack_user_ids() {
        assert!(slack_user_id("U024BE7LH"));
        assert!(slack_user_id("W012A3CDE"));
        assert!(!slack_user_id("u024be7lh"));
        assert!(!slack_user_id("C024BE7LH"));
        assert!(!slack_user_id("U"));
        assert!(!slack_user_id("U12 34"));
    }
}
