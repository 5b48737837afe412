//! The Klaxon extension for inbound integrations (openapi-compat.md §2.6.1): `/integration/`
//! `create`, `list`, `info`, `update`, `delete`, `enable`, `disable` and `rotate-key`, over the entity
//! of ingest.md §1.3.1.
//!
//! What this version accepts, and why:
//! - types with a receiver here: the standard family (`standard`, `uptimekuma`, `keep`,
//!   `elastalert2`, `oceanbase`) and the adapters `prometheus`, `grafana`, `zabbix`, `n9e`,
//!   `pagerduty`. Other §3.11 types are refused by name (creating a key whose push path
//!   answers 404 would be a trap), `monit` and `rum` are system-managed, anything else is
//!   an unknown type;
//! - `kind = dedicated` only (events go to `channel_id`). Shared integrations need routing
//!   (`/route/upsert`), which this version does not serve yet, so `shared` is refused;
//! - `settings`: `console_url` (an http(s) URL) for `n9e` and `zabbix`; field mapping is not
//!   implemented, so any other member is refused rather than stored and ignored.
//!
//! `/integration/update` changes `integration_name` and `settings`; sending another value for
//! an immutable field (`type`, `kind`, `channel_id`) is refused.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{ChannelFilter, Integration, IntegrationFilter, NewIntegration, Paging};
use serde_json::{Map, Value, json};

use super::{Args, Caller};
use crate::state::{AppState, random_hex};
use crate::wire::secs;

/// The standard family and the adapters of `klaxon-sources` (ingest.md §3.11).
const CREATABLE: [&str; 10] = [
    "standard",
    "uptimekuma",
    "keep",
    "elastalert2",
    "oceanbase",
    "prometheus",
    "grafana",
    "zabbix",
    "n9e",
    "pagerduty",
];

/// Catalogue types (§3.11) without a receiver in this version.
const NOT_YET: &[&str] = &[
    "email",
    "http_pull",
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
    "dingtalk_alert",
    "feishu_alert",
    "wecom_alert",
    "jira",
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

fn required_id(args: &Args) -> Result<i64, ApiError> {
    match args.i64("integration_id")? {
        Some(id) if id > 0 => Ok(id),
        Some(_) => Err(ApiError::invalid("integration_id must be a positive id")),
        None => Err(ApiError::invalid("integration_id is required")),
    }
}

/// `{api_host}/event/push/alert/{type}?integration_key=…`.
fn push_url(state: &AppState, i: &Integration) -> String {
    format!(
        "{}/event/push/alert/{}?integration_key={}",
        state.base_url, i.integration_type, i.integration_key
    )
}

/// The Integration object of §2.6.1; `with_key` for `info` (never in `list`).
fn wire(state: &AppState, i: &Integration, with_key: bool) -> Value {
    let settings: Value = serde_json::from_str(&i.settings).unwrap_or_else(|_| json!({}));
    let mut v = json!({
        "integration_id": i.integration_id,
        "integration_name": i.integration_name,
        "type": i.integration_type,
        "category": "alert",
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
    if with_key && let Some(obj) = v.as_object_mut() {
        obj.insert("integration_key".into(), json!(i.integration_key));
        obj.insert("push_url".into(), json!(push_url(state, i)));
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
    let settings = match raw {
        None | Some(Value::Null) => return Ok("{}".into()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(ApiError::invalid("settings must be an object")),
    };
    let mut kept = Map::new();
    for (name, value) in settings {
        match (name.as_str(), t) {
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

pub async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let name = check_name(args.str("integration_name")?)?;
    let integration_type = args
        .str("type")?
        .ok_or_else(|| ApiError::invalid("type is required"))?;
    check_type(&integration_type)?;
    match args.str("kind")?.as_deref() {
        Some("dedicated") => {}
        Some("shared") => {
            return Err(ApiError::invalid(
                "kind shared is not supported yet: create a dedicated integration with channel_id",
            ));
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "kind {other} is invalid (dedicated or shared)"
            )));
        }
        None => return Err(ApiError::invalid("kind is required")),
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
    Ok(json!({
        "integration_id": id,
        "integration_name": created.integration_name,
        "integration_key": created.integration_key,
        "push_url": push_url(state, &created),
    }))
}

/// `/integration/update`: `integration_name` and `settings` (each kept when absent).
pub async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = required_id(args)?;
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
    let id = required_id(args)?;
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
    // Every integration here is an alert integration: asking only for `change` finds none.
    let categories = args.str_list("categories")?;
    if !categories.is_empty() && !categories.iter().any(|c| c == "alert") {
        return Ok(json!({"items": [], "total": 0, "has_next_page": false}));
    }
    let filter = IntegrationFilter {
        p,
        limit,
        query: args.str("query")?,
        types: args.str_list("types")?,
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
    let id = required_id(args)?;
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
    let id = required_id(args)?;
    let done = state
        .store
        .set_integration_enabled(caller.account_id, id, enabled, state.clock.now())
        .await
        .map_err(store_err)?;
    if !done {
        return Err(not_found(id));
    }
    state.keys.forget(id);
    Ok(())
}

pub async fn rotate_key(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = required_id(args)?;
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
