//! The Klaxon extension for inbound integrations (openapi-compat.md §2.6.1): `/integration/`
//! `create`, `list`, `info`, `update`, `delete`, `enable`, `disable` and `rotate-key`, over the entity
//! of ingest.md §1.3.1.
//!
//! What this version accepts, and why:
//! - types with a receiver here: the standard family (`standard`, `uptimekuma`, `keep`,
//!   `elastalert2`, `oceanbase`), the adapters `prometheus`, `grafana`, `zabbix`, `n9e`,
//!   `pagerduty`, the chat-bot types `dingtalk_alert`, `feishu_alert` and `wecom_alert`
//!   (ING-218, `crate::chatbots`), `email` (SMTP receiver; the answer carries `email_address`) and the change
//!   types `jira` and `standard` with `category: "change"` (always shared, no channel; the
//!   standard change type is stored as `change_standard`, see `crate::changes`). Other §3.11 types are refused by name (creating a key whose push path
//!   answers 404 would be a trap), `monit` and `rum` are system-managed, anything else is
//!   an unknown type;
//! - `kind = dedicated` (events go to `channel_id`) or `shared` (events are routed by the
//!   integration's routes, ingest.md §2.8; `default_channel_ids` becomes the default route of
//!   route version 1, ING-096; later changes go through `/route/upsert`). E-mail
//!   integrations are dedicated only in this version (their SMTP receiver does not apply the
//!   no-route refusal of ING-010);
//! - `settings`: `console_url` (an http(s) URL) for `n9e` and `zabbix`, the push mode and
//!   rules of ingest.md ING-216 for `email` and the chat-bot types, `field_mapping` / `value_mapping` (ingest.md
//!   §2.3, checked by `super::field_mapping`) for the standard family, the pull settings of
//!   ING-220 for `http_pull` (which has no push URL; `crate::pull` runs it); any other member
//!   is refused rather than stored and ignored.
//!
//! `/integration/update` changes `integration_name` and `settings`; sending another value for
//! an immutable field (`type`, `kind`, `channel_id`) is refused.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{ChannelFilter, Integration, IntegrationFilter, NewIntegration, Paging};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::changes::{CHANGE_TYPES, wire_type};
use crate::state::{AppState, random_hex};
use crate::wire::secs;

/// The standard family and the adapters of `klaxon-sources` (ingest.md §3.11).
const CREATABLE: [&str; 15] = [
    "standard",
    "http_pull",
    "email",
    "uptimekuma",
    "keep",
    "elastalert2",
    "oceanbase",
    "prometheus",
    "grafana",
    "zabbix",
    "n9e",
    "pagerduty",
    "dingtalk_alert",
    "feishu_alert",
    "wecom_alert",
];

/// Catalogue types (§3.11) without a receiver in this version.
const NOT_YET: &[&str] = &[
    "nagios",
    "aliyun_arms",
    "aliyun_cm_event",
    "aliyun_cm_metric",
    "aliyun_sls",
    "aliyun_prometheus",
    "aws_cloudwatch",
    "aws_eventbridge",
    "azure_monitor",
    "gcp_monitoring",
    "baidu_bcm",
    "huawei_ces",
    "huawei_lts",
    "huawei_apm",
    "tencent_bk",
    "tencent_cls",
    "tencent_cm",
    "tencent_eb",
    "volc_cm_metric",
    "volc_cm_event",
    "volc_tls",
    "volc_detect",
    "volc_rtc",
    "influxdata",
    "open_falcon",
    "graylog",
    "skywalking",
    "sentry",
    "jiankongbao",
    "dynatrace",
    "splunk",
    "appdynamics",
    "solarwinds",
    "opmanager",
    "meraki",
    "statecloud",
    "guance",
    "zilliz",
    "zstack",
    "jdcloud",
    "ucloud_cw",
    "cloudflare",
    "harbor",
];

fn store_err(e: klaxon_store::StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("integration {id} not found"),
    )
}

/// `{api_host}/event/push/{category}/{type}?integration_key=…`; none for `email` and
/// `http_pull` (openapi-compat.md §2.6.1).
fn push_url(state: &AppState, i: &Integration) -> Option<String> {
    if i.integration_type == "email" || i.integration_type == "http_pull" {
        return None;
    }
    let (wire_type, category) = wire_type(&i.integration_type);
    Some(format!(
        "{}/event/push/{category}/{wire_type}?integration_key={}",
        state.base_url, i.integration_key
    ))
}

/// ING-210: the address of an `email` integration.
fn email_address(state: &AppState, i: &Integration) -> Option<String> {
    (i.integration_type == "email").then(|| crate::smtp::address(i, &state.config.smtp.domain))
}

/// The Integration object of §2.6.1; `with_key` for `info` (never in `list`).
fn wire(state: &AppState, i: &Integration, with_key: bool) -> Value {
    let settings: Value = serde_json::from_str(&i.settings).unwrap_or_else(|_| json!({}));
    let (wire_type, category) = wire_type(&i.integration_type);
    let mut v = json!({
        "integration_id": i.integration_id,
        "integration_name": i.integration_name,
        "type": wire_type,
        "category": category,
        "kind": i.kind,
        "channel_id": i.channel_id,
        "team_id": 0,
        "enabled": i.enabled,
        "system_managed": false,
        "last_event_time": secs(i.last_event_time),
        "settings": settings,
        "created_at": secs(i.created_at),
        "updated_at": secs(i.updated_at),
    });
    if let (Some(address), Some(obj)) = (email_address(state, i), v.as_object_mut()) {
        obj.insert("email_address".into(), json!(address));
    }
    if with_key && let Some(obj) = v.as_object_mut() {
        obj.insert("integration_key".into(), json!(i.integration_key));
        if let Some(url) = push_url(state, i) {
            obj.insert("push_url".into(), json!(url));
        }
    }
    v
}

fn check_type(t: &str) -> Result<(), ApiError> {
    if CREATABLE.contains(&t) {
        Ok(())
    } else if t == "monit" || t == "rum" {
        Err(ApiError::invalid(format!(
            "type {t} is system-managed and cannot be created"
        )))
    } else if NOT_YET.contains(&t) {
        Err(ApiError::invalid(format!(
            "type {t} has no receiver in this version"
        )))
    } else {
        Err(ApiError::invalid(format!("type {t} is invalid")))
    }
}

/// `settings` for `type`, as JSON object text.
fn check_settings(t: &str, raw: Option<&Value>) -> Result<String, ApiError> {
    if t == "http_pull" {
        // ING-220, checked in klaxon_sources::http_pull.
        return klaxon_sources::http_pull::settings_text(raw);
    }
    let settings = match raw {
        None | Some(Value::Null) => return Ok("{}".into()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ApiError::invalid("settings must be an object")),
    };
    if t == "email" {
        // ING-216: push mode and rules, validated as a whole.
        if let Some(name) = settings
            .keys()
            .find(|n| !klaxon_sources::email::SETTING_NAMES.contains(&n.as_str()))
        {
            return Err(ApiError::invalid(format!(
                "settings.{name} is not supported for type {t}"
            )));
        }
        let value = Value::Object(settings.clone());
        klaxon_sources::email::EmailSettings::from_json(&value)?;
        return Ok(value.to_string());
    }
    if let Some(bot) = klaxon_sources::chatbot::Bot::from_type(t) {
        // ING-218: the push modes of ING-216, with the bot's vocabulary.
        if let Some(name) = settings
            .keys()
            .find(|n| !klaxon_sources::chatbot::SETTING_NAMES.contains(&n.as_str()))
        {
            return Err(ApiError::invalid(format!(
                "settings.{name} is not supported for type {t}"
            )));
        }
        let value = Value::Object(settings.clone());
        klaxon_sources::chatbot::ChatSettings::from_json(bot, &value)?;
        return Ok(value.to_string());
    }
    // ING-040…049: field and value mapping of the standard family.
    let mut kept = super::field_mapping::checked_settings(t, settings)?;
    for (name, value) in settings {
        match (name.as_str(), t) {
            _ if kept.contains_key(name) => {}
            ("console_url", "n9e" | "zabbix") => {
                let url = value
                    .as_str()
                    .ok_or_else(|| ApiError::invalid("settings.console_url must be a string"))?;
                let lower = url.to_ascii_lowercase();
                if !url.is_empty()
                    && !lower.starts_with("http://")
                    && !lower.starts_with("https://")
                {
                    return Err(ApiError::invalid(
                        "settings.console_url must be an http(s) URL",
                    ));
                }
                kept.insert(
                    name.clone(),
                    Value::String(url.trim_end_matches('/').into()),
                );
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "settings.{name} is not supported for type {t}"
                )));
            }
        }
    }
    Ok(Value::Object(kept).to_string())
}

/// Serves one `/integration/*` path of `handlers::PATHS`.
pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Result<Option<Value>, ApiError> {
    match path {
        "/integration/create" => create(state, caller, args).await.map(Some),
        "/integration/list" => list(state, caller, args).await.map(Some),
        "/integration/info" => info(state, caller, args).await.map(Some),
        "/integration/update" => update(state, caller, args).await.map(|_| None),
        "/integration/delete" => delete(state, caller, args).await.map(|_| None),
        "/integration/enable" => set_enabled(state, caller, args, true).await.map(|_| None),
        "/integration/disable" => set_enabled(state, caller, args, false).await.map(|_| None),
        "/integration/rotate-key" => rotate_key(state, caller, args).await.map(Some),
        _ => Err(ApiError::new(ErrorCode::RouteNotFound, "no such route")),
    }
}

/// `integration_name`: 1–100 characters after trimming (ingest.md §1.3.1).
fn check_name(name: Option<String>) -> Result<String, ApiError> {
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("integration_name is required"))?;
    if name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "integration_name must be at most 100 characters",
        ));
    }
    Ok(name)
}

/// A change integration (ingest.md §2.20): always shared, no channel, no settings.
async fn create_change(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    name: String,
    stored_type: &str,
) -> Result<Value, ApiError> {
    match args.str("kind")?.as_deref() {
        None | Some("") | Some("shared") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "kind {other} is invalid: change integrations are always shared"
            )));
        }
    }
    if args.i64("channel_id")?.is_some_and(|c| c != 0) {
        return Err(ApiError::invalid(
            "channel_id is not allowed: change integrations belong to no channel",
        ));
    }
    if let Some(Value::Object(m)) = args.raw().get("settings")
        && let Some(name) = m.keys().next()
    {
        return Err(ApiError::invalid(format!(
            "settings.{name} is not supported for change integrations"
        )));
    }
    let new = NewIntegration {
        integration_name: name,
        integration_type: stored_type.to_owned(),
        kind: "shared".into(),
        channel_id: 0,
        integration_key: random_hex(16),
        enabled: args.bool("enabled")?.unwrap_or(true),
        settings: "{}".into(),
        now: state.clock.now(),
    };
    let id = state
        .store
        .create_integration(caller.account_id, &new)
        .await
        .map_err(store_err)?;
    let created = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::internal("the new integration is not readable"))?;
    Ok(json!({
        "integration_id": id,
        "integration_name": created.integration_name,
        "integration_key": created.integration_key,
        "push_url": push_url(state, &created),
    }))
}

pub async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let name = check_name(args.str("integration_name")?)?;
    let integration_type = args
        .str("type")?
        .ok_or_else(|| ApiError::invalid("type is required"))?;
    // `standard` names both the standard alert and the standard change type (§3.11); the
    // request's `category` tells them apart (default `alert`). `jira` is a change type.
    let category = args.str("category")?.filter(|c| !c.is_empty());
    match category.as_deref() {
        None | Some("alert") | Some("change") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "category {other} is invalid (alert or change)"
            )));
        }
    }
    let change_type = CHANGE_TYPES
        .iter()
        .find(|(wire, _)| *wire == integration_type)
        .map(|(_, stored)| *stored)
        .filter(|stored| *stored == "jira" || category.as_deref() == Some("change"));
    if let Some(stored) = change_type {
        if category.as_deref() == Some("alert") {
            return Err(ApiError::invalid(format!(
                "type {integration_type} is a change type"
            )));
        }
        return create_change(state, caller, args, name, stored).await;
    }
    if category.as_deref() == Some("change") {
        return Err(ApiError::invalid(format!(
            "type {integration_type} is not a change type (standard or jira)"
        )));
    }
    check_type(&integration_type)?;
    match args.str("kind")?.as_deref() {
        Some("dedicated") => {}
        Some("shared") => return create_shared(state, caller, args, name, integration_type).await,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "kind {other} is invalid (dedicated or shared)"
            )));
        }
        None => return Err(ApiError::invalid("kind is required")),
    }
    if args
        .raw()
        .get("default_channel_ids")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::invalid(
            "default_channel_ids is only for shared integrations",
        ));
    }
    let channel_id = match args.i64("channel_id")? {
        Some(id) if id > 0 => id,
        _ => {
            return Err(ApiError::invalid(
                "channel_id is required for a dedicated integration",
            ));
        }
    };
    let settings = check_settings(&integration_type, args.raw().get("settings"))?;
    let enabled = args.bool("enabled")?.unwrap_or(true);

    let filter = ChannelFilter {
        paging: Paging {
            p: 1,
            limit: 1,
            asc: true,
            search_after_ctx: None,
        },
        channel_ids: vec![channel_id],
        ..ChannelFilter::default()
    };
    let channels = state
        .store
        .list_channels(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    if channels.items.is_empty() {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("channel {channel_id} not found"),
        ));
    }

    let new = NewIntegration {
        integration_name: name,
        integration_type,
        kind: "dedicated".into(),
        channel_id,
        integration_key: random_hex(16),
        enabled,
        settings,
        now: state.clock.now(),
    };
    let id = state
        .store
        .create_integration(caller.account_id, &new)
        .await
        .map_err(store_err)?;
    let created = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::internal("the new integration is not readable"))?;
    let mut out = json!({
        "integration_id": id,
        "integration_name": created.integration_name,
        "integration_key": created.integration_key,
    });
    if let Some(obj) = out.as_object_mut() {
        if let Some(url) = push_url(state, &created) {
            obj.insert("push_url".into(), json!(url));
        }
        if let Some(address) = email_address(state, &created) {
            obj.insert("email_address".into(), json!(address));
        }
    }
    Ok(out)
}

/// A shared alert integration (ingest.md §1.3.1): no channel; its events are routed (§2.8).
/// It is created with route version 1, whose default route is `default_channel_ids` (ING-096),
/// in one transaction.
async fn create_shared(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    name: String,
    integration_type: String,
) -> Result<Value, ApiError> {
    if integration_type == "email" {
        return Err(ApiError::invalid(
            "kind shared is not supported for email integrations yet: create a dedicated one with channel_id",
        ));
    }
    if args.i64("channel_id")?.is_some_and(|c| c != 0) {
        return Err(ApiError::invalid(
            "channel_id is not allowed for a shared integration: its events are routed (default_channel_ids, /route/upsert)",
        ));
    }
    let settings = check_settings(&integration_type, args.raw().get("settings"))?;
    let defaults =
        super::routing::first_default(state, caller, args.raw().get("default_channel_ids")).await?;
    let new = NewIntegration {
        integration_name: name,
        integration_type,
        kind: "shared".into(),
        channel_id: 0,
        integration_key: random_hex(16),
        enabled: args.bool("enabled")?.unwrap_or(true),
        settings,
        now: state.clock.now(),
    };
    let id = state
        .store
        .create_shared_integration(caller.account_id, &new, &defaults, caller.member_id)
        .await
        .map_err(store_err)?;
    let created = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::internal("the new integration is not readable"))?;
    Ok(json!({
        "integration_id": id,
        "integration_name": created.integration_name,
        "integration_key": created.integration_key,
        "push_url": push_url(state, &created),
    }))
}

/// `/integration/update`: `integration_name` and `settings` (each kept when absent).
pub async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = args.required_id("integration_id")?;
    let current = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))?;
    if let Some(t) = args.str("type")?
        && t != current.integration_type
    {
        return Err(ApiError::invalid("type cannot be changed"));
    }
    if let Some(k) = args.str("kind")?
        && k != current.kind
    {
        return Err(ApiError::invalid("kind cannot be changed"));
    }
    if let Some(c) = args.i64("channel_id")?
        && c != 0
        && c != current.channel_id
    {
        return Err(ApiError::invalid("channel_id cannot be changed"));
    }
    let name = match args.str("integration_name")? {
        Some(n) => check_name(Some(n))?,
        None => current.integration_name.clone(),
    };
    let settings = match args.raw().get("settings") {
        None => current.settings.clone(),
        given => check_settings(&current.integration_type, given)?,
    };
    let done = state
        .store
        .update_integration(caller.account_id, id, &name, &settings, state.clock.now())
        .await
        .map_err(store_err)?;
    if !done {
        return Err(not_found(id));
    }
    state.keys.forget(id);
    Ok(())
}

pub async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let i = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))?;
    Ok(wire(state, &i, true))
}

pub async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20).min(100);
    // Categories narrow the stored types: change integrations are stored under the types of
    // `CHANGE_TYPES`, alert integrations under their own.
    let categories = args.str_list("categories")?;
    let want_alert = categories.is_empty() || categories.iter().any(|c| c == "alert");
    let want_change = categories.is_empty() || categories.iter().any(|c| c == "change");
    let asked = args.str_list("types")?;
    let mut types: Vec<String> = Vec::new();
    if want_alert {
        types.extend(
            CREATABLE
                .iter()
                .filter(|t| asked.is_empty() || asked.iter().any(|a| a == *t))
                .map(|t| (*t).to_owned()),
        );
    }
    if want_change {
        types.extend(
            CHANGE_TYPES
                .iter()
                .filter(|(wire, _)| asked.is_empty() || asked.iter().any(|a| a == wire))
                .map(|(_, stored)| (*stored).to_owned()),
        );
    }
    if types.is_empty() {
        return Ok(json!({"items": [], "total": 0, "has_next_page": false}));
    }
    let filter = IntegrationFilter {
        p,
        limit,
        query: args.str("query")?,
        types,
        kinds: args.str_list("kinds")?,
        channel_ids: args.i64_list("channel_ids")?,
        enabled: args.bool("enabled")?,
    };
    let page = state
        .store
        .list_integrations(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = page.items.iter().map(|i| wire(state, i, false)).collect();
    Ok(json!({
        "items": items,
        "total": page.total,
        "has_next_page": page.has_next_page,
    }))
}

pub async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = args.required_id("integration_id")?;
    let done = state
        .store
        .delete_integration(caller.account_id, id, state.clock.now())
        .await
        .map_err(store_err)?;
    if !done {
        return Err(not_found(id));
    }
    state.keys.forget(id);
    Ok(())
}

/// `/integration/enable` and `/integration/disable`; idempotent.
pub async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    enabled: bool,
) -> Result<(), ApiError> {
    let id = args.required_id("integration_id")?;
    let done = state
        .store
        .set_integration_enabled(caller.account_id, id, enabled, state.clock.now())
        .await
        .map_err(store_err)?;
    if !done {
        return Err(not_found(id));
    }
    state.keys.forget(id);
    if enabled {
        crate::pull::enabled(state, caller.account_id, id).await?;
    }
    Ok(())
}

pub async fn rotate_key(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let key = random_hex(16);
    let done = state
        .store
        .rotate_integration_key(caller.account_id, id, &key, state.clock.now())
        .await
        .map_err(store_err)?;
    if !done {
        return Err(not_found(id));
    }
    state.keys.forget(id);
    Ok(json!({ "integration_key": key }))
}
