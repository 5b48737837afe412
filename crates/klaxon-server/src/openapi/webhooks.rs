//! Outbound webhooks over the Open API (response.md 1.18, §2.23; ingest.md ING-253;
//! docs/webhooks.md).
//!
//! - `/webhook/history/list` and `/webhook/history/detail` are Flashduty's (openapi-compat.md
//!   2.6): the invocation history, times in **milliseconds**, cursor paging.
//! - `/webhook/create|update|delete|list|info` are a Klaxon extension: Flashduty configures
//!   webhooks only in its console. `create` answers the `signing_secret` once.
//!
//! Managing needs `Integrations Manage`, reading `Integrations Read` (RSP-521), checked by the
//! route table (`super::access`) before these handlers run.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, Uri};
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::webhook::{self, Kind};
use klaxon_store::{
    StoreError, WebhookDraft, WebhookHistoryFilter, WebhookHistoryItem, WebhookIntegration,
};
use serde_json::{Map, Value, json};

use super::teams::store_err;
use super::{Args, Caller};
use crate::state::{AppState, random_hex};
use crate::wire;

pub const PATHS: &[&str] = &[
    "/webhook/create",
    "/webhook/update",
    "/webhook/delete",
    "/webhook/list",
    "/webhook/info",
    "/webhook/history/list",
    "/webhook/history/detail",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/webhook/create" => create(state, caller, args).await.map(Some),
        "/webhook/update" => update(state, caller, args).await.map(Some),
        "/webhook/delete" => delete(state, caller, args).await.map(|()| None),
        "/webhook/list" => list(state, caller, args).await.map(Some),
        "/webhook/info" => info(state, caller, args).await.map(Some),
        "/webhook/history/list" => history_list(state, caller, args).await.map(Some),
        "/webhook/history/detail" => history_detail(state, caller, args).await.map(Some),
        _ => return None,
    })
}

fn integration_json(w: &WebhookIntegration) -> Value {
    json!({
        "integration_id": w.integration_id,
        "kind": w.kind,
        "name": w.name,
        "endpoint": w.endpoint,
        "headers": w.headers,
        "event_types": w.event_types,
        "channel_ids": w.channel_ids,
        "custom_body": w.custom_body,
        "value_mapping": w.value_mapping,
        "team_id": w.team_id,
        "status": w.status,
        "creator_id": w.creator_id,
        "updated_by": w.updated_by,
        "created_at": wire::secs(w.created_at),
        "updated_at": wire::secs(w.updated_at),
    })
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("integration_id: webhook {id} not found"),
    )
}

/// Reads the draft from `args`; absent fields keep `base`'s values (update) or the defaults
/// (create). Every field is checked; the error names it.
async fn draft(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    base: Option<&WebhookIntegration>,
) -> Result<WebhookDraft, ApiError> {
    let kind_text = match base {
        Some(b) => {
            if let Some(k) = args.str("kind")?
                && k != b.kind
            {
                return Err(ApiError::invalid("kind: cannot be changed"));
            }
            b.kind.clone()
        }
        None => args.str("kind")?.ok_or_else(|| {
            ApiError::invalid("kind: required (alert_webhook or incident_webhook)")
        })?,
    };
    let kind = Kind::parse(&kind_text).ok_or_else(|| {
        ApiError::invalid(format!(
            "kind: {kind_text:?} is not alert_webhook or incident_webhook"
        ))
    })?;
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
    let endpoint = match args.str("endpoint")? {
        Some(e) => e.trim().to_string(),
        None => base.map(|b| b.endpoint.clone()).unwrap_or_default(),
    };
    check_endpoint(&endpoint)?;
    let headers = match args.raw().get("headers").filter(|v| !v.is_null()) {
        Some(v) => parse_headers(v)?,
        None => base.map(|b| b.headers.clone()).unwrap_or_default(),
    };
    let event_types = if args.raw().get("event_types").is_some_and(|v| !v.is_null()) {
        args.str_list("event_types")?
    } else {
        base.map(|b| b.event_types.clone()).unwrap_or_default()
    };
    webhook::check_event_types(kind, &event_types).map_err(ApiError::invalid)?;
    let channel_ids = if args.raw().get("channel_ids").is_some_and(|v| !v.is_null()) {
        args.i64_list("channel_ids")?
    } else {
        base.map(|b| b.channel_ids.clone()).unwrap_or_default()
    };
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
    let custom_body = match args.raw().get("custom_body") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => base.map(|b| b.custom_body.clone()).unwrap_or_default(),
        Some(_) => return Err(ApiError::invalid("custom_body must be a string")),
    };
    webhook::check_custom_body(&custom_body).map_err(ApiError::invalid)?;
    let value_mapping = match args.raw().get("value_mapping").filter(|v| !v.is_null()) {
        Some(v) => parse_mapping(v)?,
        None => base.map(|b| b.value_mapping.clone()).unwrap_or_default(),
    };
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
    Ok(WebhookDraft {
        kind: kind.as_str().to_string(),
        name,
        endpoint,
        headers,
        event_types,
        channel_ids,
        custom_body,
        value_mapping,
        team_id,
        status,
    })
}

/// response.md 1.18: an http(s) URL with a host, at most 2048 bytes; a query string is kept.
pub(super) fn check_endpoint(endpoint: &str) -> Result<(), ApiError> {
    if endpoint.is_empty() {
        return Err(ApiError::invalid("endpoint: required"));
    }
    if endpoint.len() > webhook::MAX_ENDPOINT_BYTES {
        return Err(ApiError::invalid(format!(
            "endpoint: at most {} bytes",
            webhook::MAX_ENDPOINT_BYTES
        )));
    }
    let uri: Uri = endpoint
        .parse()
        .map_err(|e| ApiError::invalid(format!("endpoint: not a URL ({e})")))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(ApiError::invalid("endpoint: must be an http or https URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ApiError::invalid("endpoint: the URL has no host"));
    }
    Ok(())
}

/// `headers`: an object of at most 20 string values with valid HTTP names and values; the
/// content and signature headers cannot be replaced (RSP-370).
pub(super) fn parse_headers(v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Object(map) = v else {
        return Err(ApiError::invalid("headers must be an object of strings"));
    };
    if map.len() > webhook::MAX_HEADERS {
        return Err(ApiError::invalid(format!(
            "headers: at most {} entries",
            webhook::MAX_HEADERS
        )));
    }
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let Value::String(value) = value else {
            return Err(ApiError::invalid(format!(
                "headers.{name}: must be a string"
            )));
        };
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ApiError::invalid(format!(
                "headers: {name:?} is not a valid header name"
            )));
        }
        if klaxon_notify::webhook::PROTECTED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ApiError::invalid(format!(
                "headers: {name} cannot be replaced"
            )));
        }
        if HeaderValue::from_str(value).is_err() {
            return Err(ApiError::invalid(format!(
                "headers.{name}: not a valid header value"
            )));
        }
        out.insert(name.clone(), value.clone());
    }
    Ok(out)
}

/// `value_mapping`: `{path: {source_value: target_value}}` (RSP-377).
pub(super) fn parse_mapping(v: &Value) -> Result<BTreeMap<String, Map<String, Value>>, ApiError> {
    let Value::Object(map) = v else {
        return Err(ApiError::invalid(
            "value_mapping must be an object of path → {source: target}",
        ));
    };
    let mut out = BTreeMap::new();
    for (path, table) in map {
        let Value::Object(table) = table else {
            return Err(ApiError::invalid(format!(
                "value_mapping.{path}: must be an object of source value → target value"
            )));
        };
        if path.trim().is_empty() {
            return Err(ApiError::invalid("value_mapping: a path is empty"));
        }
        out.insert(path.clone(), table.clone());
    }
    Ok(out)
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let draft = draft(state, caller, args, None).await?;
    // Shown once: the store keeps it to sign, the API never shows it again.
    let secret = format!("whsec_{}", random_hex(24));
    let created = state
        .store
        .create_webhook(
            caller.account_id,
            &draft,
            &secret,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?;
    tracing::info!(
        account_id = caller.account_id,
        integration_id = created.integration_id,
        kind = %created.kind,
        "webhook created"
    );
    let mut out = integration_json(&created);
    if let Value::Object(m) = &mut out {
        m.insert("signing_secret".into(), Value::String(secret));
    }
    Ok(out)
}

async fn existing(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<WebhookIntegration, ApiError> {
    state
        .store
        .webhook(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))
}

async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    let base = existing(state, caller, id).await?;
    let draft = draft(state, caller, args, Some(&base)).await?;
    let updated = state
        .store
        .update_webhook(
            caller.account_id,
            id,
            &draft,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))?;
    Ok(integration_json(&updated))
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = args.required_id("integration_id")?;
    if !state
        .store
        .delete_webhook(caller.account_id, id, state.clock.now())
        .await
        .map_err(store_err)?
    {
        return Err(not_found(id));
    }
    Ok(())
}

async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let kind = args.str("kind")?;
    if let Some(k) = &kind
        && Kind::parse(k).is_none()
    {
        return Err(ApiError::invalid(format!(
            "kind: {k:?} is not alert_webhook or incident_webhook"
        )));
    }
    let items: Vec<Value> = state
        .store
        .list_webhooks(caller.account_id, kind.as_deref())
        .await
        .map_err(store_err)?
        .iter()
        .map(integration_json)
        .collect();
    let total = items.len();
    Ok(json!({"items": items, "total": total, "has_next_page": false}))
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    Ok(integration_json(&existing(state, caller, id).await?))
}

/// A history record; `full` adds the request and response bodies (detail).
fn history_json(h: &WebhookHistoryItem, full: bool) -> Value {
    let mut v = json!({
        "history_id": h.attempt_id,
        "integration_id": h.integration_id,
        "event_id": h.event_id,
        "event_type": h.event_type,
        "ref_id": h.ref_id,
        "attempt": h.attempt,
        "status": h.status,
        "endpoint": h.endpoint,
        "response_status": h.response_status,
        "latency_ms": h.latency_ms,
        "error": h.error,
        "created_at": h.created_at,
    });
    if full && let Value::Object(m) = &mut v {
        m.insert("request_body".into(), json!(h.request_body));
        m.insert("response_body".into(), json!(h.response_body));
    }
    v
}

async fn history_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let start_time = args
        .i64("start_time")?
        .ok_or_else(|| ApiError::invalid("start_time: required (milliseconds)"))?;
    let end_time = args
        .i64("end_time")?
        .ok_or_else(|| ApiError::invalid("end_time: required (milliseconds)"))?;
    if end_time < start_time {
        return Err(ApiError::invalid("end_time: must not be before start_time"));
    }
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20).min(100);
    let status = args.str("status")?.unwrap_or_default();
    if !status.is_empty() && status != "success" && status != "failed" {
        return Err(ApiError::invalid(format!(
            "status: {status:?} is not success or failed"
        )));
    }
    let event_types = args.comma_list("event_types")?;
    for t in &event_types {
        if Kind::of_event(t).is_none() {
            return Err(ApiError::invalid(format!(
                "event_types: {t:?} is not a webhook event type"
            )));
        }
    }
    let filter = WebhookHistoryFilter {
        start_time,
        end_time,
        limit,
        search_after_ctx: args.str("search_after_ctx")?,
        ref_id: args.str("ref_id")?.unwrap_or_default(),
        integration_id: args.i64("integration_id")?.unwrap_or(0),
        event_types,
        status,
    };
    let page = match state
        .store
        .webhook_history(caller.account_id, &filter)
        .await
    {
        Ok(p) => p,
        Err(StoreError::InvalidCursor) => {
            return Err(ApiError::invalid("search_after_ctx: invalid cursor"));
        }
        Err(e) => return Err(store_err(e)),
    };
    let items: Vec<Value> = page.items.iter().map(|h| history_json(h, false)).collect();
    let mut out = json!({
        "items": items,
        "has_next_page": page.search_after_ctx.is_some(),
    });
    if let (Some(ctx), Value::Object(m)) = (page.search_after_ctx, &mut out) {
        m.insert("search_after_ctx".into(), Value::String(ctx));
    }
    Ok(out)
}

async fn history_detail(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = match args.str("history_id")? {
        Some(id) => id,
        None => args
            .str("id")?
            .ok_or_else(|| ApiError::invalid("history_id: required"))?,
    };
    let item = state
        .store
        .webhook_history_item(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("history_id: {id} not found"),
            )
        })?;
    Ok(history_json(&item, true))
}
