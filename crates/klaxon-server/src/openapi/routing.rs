//! Routes of shared alert integrations (ingest.md §2.8, §1.5.3; openapi-compat.md §2.6):
//! `/route/info`, `/route/list`, `/route/upsert`, `/route/history/list`, `/route/preview`
//! (the two Terraform uses), and the Klaxon extensions `/route/rollback` and `/route/diff`
//! (docs/routing.md).
//!
//! Every save is a new version (ING-095) made under the optimistic lock `version`; checks are
//! those of ING-096 and §4.5, reported in wire terms. Processing reads the latest version
//! (klaxon-store's `routing`), so a save applies to the next event processed.

mod wire;

use std::collections::HashSet;

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::model::{Alert, Labels, Severity, Status};
use klaxon_core::routing::{self, EventFields, RouteConfig, Router};
use klaxon_store::{
    AlertFilter, Integration, IntegrationFilter, Paging, RouteRefusal, RouteVersion,
};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::changes::wire_type;
use crate::state::AppState;
use crate::wire::secs;

pub const PATHS: &[&str] = &[
    "/route/info",
    "/route/list",
    "/route/upsert",
    "/route/history/list",
    "/route/rollback",
    "/route/preview",
    "/route/diff",
];

/// `/route/preview` without `alert_ids` or `event`: this many of the integration's most
/// recent alerts (of the last 7 days).
const PREVIEW_RECENT: i64 = 20;
const PREVIEW_MAX_ALERTS: usize = 100;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    let result = match path {
        "/route/info" => info(state, caller, args).await,
        "/route/list" => list(state, caller, args).await,
        "/route/upsert" => upsert(state, caller, args).await,
        "/route/history/list" => history(state, caller, args).await,
        "/route/rollback" => rollback(state, caller, args).await,
        "/route/preview" => preview(state, caller, args).await,
        "/route/diff" => diff(state, caller, args).await,
        _ => return None,
    };
    Some(result.map(Some))
}

fn store_err(e: klaxon_store::StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn is_shared_alert(i: &Integration) -> bool {
    i.kind == "shared" && wire_type(&i.integration_type).1 == "alert"
}

/// §1.5.3: the integration must be a live shared alert integration of the account.
async fn shared_integration(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<Integration, ApiError> {
    let i = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("integration {id} not found"),
            )
        })?;
    if !is_shared_alert(&i) {
        return Err(ApiError::invalid(format!(
            "integration_id: integration {id} is not a shared alert integration (only those have routes)"
        )));
    }
    Ok(i)
}

fn conflict(based_on: i64, latest: i64) -> ApiError {
    ApiError::invalid(format!(
        "route version conflict: the save is based on version {based_on}, the latest is {latest}"
    ))
}

/// The Route object: wire cases of the latest version; `creator_id`/`created_at` from
/// version 1.
fn route_object(
    integration_id: i64,
    latest: Option<&RouteVersion>,
    first: Option<&RouteVersion>,
) -> Value {
    let empty = RouteConfig::default();
    let config = latest.map(|v| &v.config).unwrap_or(&empty);
    let mut out = wire::render(config);
    let first = first.map(|v| &v.config).unwrap_or(config);
    for (k, v) in [
        ("integration_id", json!(integration_id)),
        ("status", json!("enabled")),
        ("version", json!(config.version)),
        ("creator_id", json!(first.updated_by)),
        ("updated_by", json!(config.updated_by)),
        ("created_at", json!(secs(first.updated_at))),
        ("updated_at", json!(secs(config.updated_at))),
    ] {
        out.insert(k.into(), v);
    }
    Value::Object(out)
}

async fn first_version(
    state: &AppState,
    caller: &Caller,
    latest: Option<&RouteVersion>,
    id: i64,
) -> Result<Option<RouteVersion>, ApiError> {
    match latest {
        Some(v) if v.config.version == 1 => Ok(Some(v.clone())),
        None => Ok(None),
        Some(_) => state
            .store
            .route_version(caller.account_id, id, 1)
            .await
            .map_err(store_err),
    }
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    shared_integration(state, caller, id).await?;
    let latest = state
        .store
        .route_version(caller.account_id, id, 0)
        .await
        .map_err(store_err)?;
    let first = first_version(state, caller, latest.as_ref(), id).await?;
    Ok(route_object(id, latest.as_ref(), first.as_ref()))
}

/// `integration_ids` (absent or empty: every shared alert integration of the account); ids
/// that are not shared alert integrations are left out.
async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut ids = args.i64_list("integration_ids")?;
    if ids.is_empty() {
        let mut p = 1;
        loop {
            let filter = IntegrationFilter {
                p,
                limit: 100,
                kinds: vec!["shared".into()],
                ..IntegrationFilter::default()
            };
            let page = state
                .store
                .list_integrations(caller.account_id, &filter)
                .await
                .map_err(store_err)?;
            ids.extend(
                page.items
                    .iter()
                    .filter(|i| is_shared_alert(i))
                    .map(|i| i.integration_id),
            );
            if !page.has_next_page {
                break;
            }
            p += 1;
        }
    } else {
        let mut kept = Vec::with_capacity(ids.len());
        for id in ids {
            let found = state
                .store
                .integration(caller.account_id, id)
                .await
                .map_err(store_err)?;
            if found.is_some_and(|i| is_shared_alert(&i)) && !kept.contains(&id) {
                kept.push(id);
            }
        }
        ids = kept;
    }
    let latest = state
        .store
        .latest_routes(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        let l = latest.get(&id);
        let first = first_version(state, caller, l, id).await?;
        items.push(route_object(id, l, first.as_ref()));
    }
    let total = items.len();
    Ok(json!({"items": items, "total": total, "has_next_page": false}))
}

/// The version a write states it is based on (`version`; absent or 0 while none is saved).
fn based_on(args: &Args, name: &str) -> Result<Option<i64>, ApiError> {
    match args.i64(name)? {
        Some(v) if v < 0 => Err(ApiError::invalid(format!("{name} must not be negative"))),
        other => Ok(other),
    }
}

/// ING-096 and §4.5 on a configuration read from the wire; errors in wire terms.
async fn check(
    state: &AppState,
    caller: &Caller,
    routes: &wire::WireRoutes,
) -> Result<HashSet<i64>, ApiError> {
    let named = routes.config.channel_ids();
    let existing = state
        .store
        .existing_channels(caller.account_id, &named)
        .await
        .map_err(store_err)?;
    routing::validate(&routes.config, |id| existing.contains(&id)).map_err(|e| routes.error(&e))?;
    Ok(existing)
}

async fn upsert(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    shared_integration(state, caller, id).await?;
    let version = based_on(args, "version")?.unwrap_or(0);
    let latest = state
        .store
        .route_version(caller.account_id, id, 0)
        .await
        .map_err(store_err)?;
    let latest_number = latest.as_ref().map(|v| v.config.version).unwrap_or(0);
    if version != latest_number {
        return Err(conflict(version, latest_number));
    }
    let routes = wire::read(args.raw(), latest.as_ref().map(|v| &v.config))?;
    check(state, caller, &routes).await?;
    let saved = state
        .store
        .save_routes(
            caller.account_id,
            id,
            version,
            &routes.config,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?;
    match saved {
        Ok(v) => Ok(json!({"integration_id": id, "version": v.config.version})),
        Err(refusal) => Err(refusal_error(id, refusal)),
    }
}

fn refusal_error(id: i64, refusal: RouteRefusal) -> ApiError {
    match refusal {
        RouteRefusal::Conflict { based_on, latest } => conflict(based_on, latest),
        RouteRefusal::NoSuchVersion(k) => ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("version {k} of the routes of integration {id} not found"),
        ),
        RouteRefusal::NoIntegration => ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("integration {id} not found"),
        ),
    }
}

fn history_item(v: &RouteVersion) -> Value {
    let mut out = wire::render(&v.config);
    for (k, val) in [
        ("version", json!(v.config.version)),
        ("updated_by", json!(v.config.updated_by)),
        ("updated_at", json!(secs(v.config.updated_at))),
        ("rolled_back_from", json!(v.rolled_back_from)),
    ] {
        out.insert(k.into(), val);
    }
    Value::Object(out)
}

/// ING-095: the versions, newest first (`asc` for oldest first).
async fn history(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    shared_integration(state, caller, id).await?;
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20).min(100);
    match args.str("orderby")?.as_deref() {
        None | Some("") | Some("version") | Some("updated_at") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "orderby {other} is invalid (version or updated_at)"
            )));
        }
    }
    let asc = args.bool("asc")?.unwrap_or(false);
    let (versions, total) = state
        .store
        .route_history(caller.account_id, id, p, limit, asc)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = versions.iter().map(history_item).collect();
    Ok(json!({
        "items": items,
        "total": total,
        "has_next_page": p.saturating_mul(limit) < total,
    }))
}

/// Klaxon extension (ING-095): a new version copying `version`; `base_version`, when given,
/// is the lock of an upsert.
async fn rollback(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    shared_integration(state, caller, id).await?;
    let to = match args.i64("version")? {
        Some(v) if v > 0 => v,
        Some(_) => {
            return Err(ApiError::invalid(
                "version must be a positive version number",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "version is required (the version to restore)",
            ));
        }
    };
    let base = based_on(args, "base_version")?;
    let done = state
        .store
        .rollback_routes(
            caller.account_id,
            id,
            to,
            base,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?;
    match done {
        Ok(v) => Ok(json!({
            "integration_id": id,
            "version": v.config.version,
            "rolled_back_from": v.rolled_back_from,
        })),
        Err(refusal) => Err(refusal_error(id, refusal)),
    }
}

/// Klaxon extension: what changed from `from_version` (default: the one before
/// `to_version`; 0 = an empty configuration) to `to_version` (default: the latest).
async fn diff(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    shared_integration(state, caller, id).await?;
    let load = |v: i64| async move {
        state
            .store
            .route_version(caller.account_id, id, v)
            .await
            .map_err(store_err)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ResourceNotFound,
                    format!("version {v} of the routes of integration {id} not found"),
                )
            })
    };
    let to = match based_on(args, "to_version")?.filter(|v| *v > 0) {
        Some(v) => load(v).await?,
        None => load(0).await?,
    };
    let from_number = match based_on(args, "from_version")? {
        Some(v) => v,
        None => to.config.version - 1,
    };
    let from = if from_number == 0 {
        RouteConfig::default()
    } else {
        load(from_number).await?.config
    };
    let d = routing::diff(&from, &to.config);
    serde_json::to_value(&d).map_err(|e| ApiError::internal(e.to_string()))
}

/// `/route/preview`'s `event`: `title`, `description`, `severity` (or `event_status`),
/// `labels`.
fn preview_event(raw: &Value) -> Result<(String, String, Option<Severity>, Labels), ApiError> {
    let Value::Object(e) = raw else {
        return Err(ApiError::invalid("event must be an object"));
    };
    let text = |name: &str| -> Result<String, ApiError> {
        match e.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(ApiError::invalid(format!("event.{name} must be a string"))),
        }
    };
    let severity = match (text("severity")?, text("event_status")?) {
        (s, _) if !s.is_empty() => Some(s.parse::<Severity>().map_err(|_| {
            ApiError::invalid(format!(
                "event.severity {s} is invalid (Critical, Warning or Info)"
            ))
        })?),
        (_, st) if !st.is_empty() => st
            .parse::<Status>()
            .map_err(|_| ApiError::invalid(format!("event.event_status {st} is invalid")))?
            .severity(),
        _ => None,
    };
    let labels = match e.get("labels") {
        None | Some(Value::Null) => Labels::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::invalid(format!(
                    "event.labels.{k} must be a string"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::invalid("event.labels must be an object")),
    };
    Ok((text("title")?, text("description")?, severity, labels))
}

/// ING-091 without side effects, for a supplied event or stored alerts, against a supplied
/// `route` (`cases`, `default`, `sections`) or the latest saved version. Each item says which
/// cases matched (`matched_cases`: their positions as strings), whether the default route
/// applied, and the channels the event would reach (`channel_ids`, vanished ones removed).
async fn preview(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let integration = match args.i64("integration_id")?.filter(|id| *id != 0) {
        Some(id) => Some(shared_integration(state, caller, id).await?),
        None => None,
    };
    let (config, existing) = match args.raw().get("route") {
        Some(Value::Object(route)) => {
            let routes = wire::read(route, None)?;
            let existing = check(state, caller, &routes).await?;
            (routes.config, existing)
        }
        None | Some(Value::Null) => {
            let Some(i) = &integration else {
                return Err(ApiError::invalid(
                    "integration_id is required when no route is given",
                ));
            };
            let config = state
                .store
                .route_version(caller.account_id, i.integration_id, 0)
                .await
                .map_err(store_err)?
                .map(|v| v.config)
                .unwrap_or_default();
            let existing = state
                .store
                .existing_channels(caller.account_id, &config.channel_ids())
                .await
                .map_err(store_err)?;
            (config, existing)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "route must be an object {cases, default}",
            ));
        }
    };
    let router = Router::compile(&config)?;
    let (_, first_case) = wire::cases(&config);
    let evaluate = |fields: &EventFields<'_>| -> Value {
        let routed = router.route(fields, &[], |id| existing.contains(&id));
        let matched: Vec<String> = routed
            .evaluation
            .matched
            .iter()
            .flat_map(|r| {
                let base = first_case.get(*r).copied().unwrap_or(*r);
                config
                    .rules
                    .get(*r)
                    .map(|rule| routing::matching_groups(rule, fields))
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |g| (base + g).to_string())
            })
            .collect();
        json!({
            "matched_cases": matched,
            "by_default": routed.evaluation.by_default,
            "channel_ids": routed.targets,
        })
    };
    let mut items = Vec::new();
    if let Some(raw) = args.raw().get("event").filter(|v| !v.is_null()) {
        let (title, description, severity, labels) = preview_event(raw)?;
        let (integration_id, integration_type) = integration
            .as_ref()
            .map(|i| (i.integration_id, i.integration_type.as_str()))
            .unwrap_or((0, ""));
        let fields = EventFields {
            title: &title,
            description: &description,
            severity,
            labels: &labels,
            integration_id,
            integration_type,
        };
        let mut item = evaluate(&fields);
        if let Some(obj) = item.as_object_mut() {
            obj.insert("alert_id".into(), json!(""));
            obj.insert("alert_title".into(), json!(title));
            obj.insert("start_time".into(), json!(0));
        }
        items.push(item);
    }
    for alert in preview_alerts(state, caller, args, integration.as_ref()).await? {
        let mut item = evaluate(&EventFields::of_alert(&alert));
        if let Some(obj) = item.as_object_mut() {
            obj.insert("alert_id".into(), json!(alert.alert_id));
            obj.insert("alert_title".into(), json!(alert.title));
            obj.insert("start_time".into(), json!(secs(alert.start_time)));
        }
        items.push(item);
    }
    Ok(json!({ "items": items }))
}

/// The stored alerts a preview evaluates: `alert_ids`, or without them (and without an
/// `event`) the integration's most recent alerts.
async fn preview_alerts(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    integration: Option<&Integration>,
) -> Result<Vec<Alert>, ApiError> {
    let ids = args.str_list("alert_ids")?;
    if ids.len() > PREVIEW_MAX_ALERTS {
        return Err(ApiError::invalid(format!(
            "alert_ids: at most {PREVIEW_MAX_ALERTS} alerts"
        )));
    }
    if !ids.is_empty() {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let alert = state
                .store
                .alert(caller.account_id, &id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| {
                    ApiError::new(ErrorCode::ResourceNotFound, format!("alert {id} not found"))
                })?;
            out.push(alert);
        }
        return Ok(out);
    }
    let wants_event = args.raw().get("event").is_some_and(|v| !v.is_null());
    let Some(i) = integration.filter(|_| !wants_event) else {
        return Ok(Vec::new());
    };
    let now = state.clock.now();
    let filter = AlertFilter {
        paging: Paging {
            p: 1,
            limit: PREVIEW_RECENT,
            asc: false,
            search_after_ctx: None,
        },
        start_time: now - 7 * 86_400_000,
        end_time: now + 1,
        integration_ids: vec![i.integration_id],
        ..AlertFilter::default()
    };
    let page = state
        .store
        .list_alerts(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    Ok(page.items)
}

/// The `/integration/create` part of a shared alert integration: its default route
/// (`default_channel_ids`, 1–50 existing channels, ING-096), as version 1.
pub(crate) async fn first_default(
    state: &AppState,
    caller: &Caller,
    raw: Option<&Value>,
) -> Result<Vec<i64>, ApiError> {
    let ids: Vec<i64> = match raw {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_i64().ok_or_else(|| {
                    ApiError::invalid("default_channel_ids must be a list of channel ids")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(
                "default_channel_ids must be a list of channel ids",
            ));
        }
    };
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "default_channel_ids is required for a shared integration: at least one channel",
        ));
    }
    let config = RouteConfig {
        default_channel_ids: ids.clone(),
        ..RouteConfig::default()
    };
    let existing = state
        .store
        .existing_channels(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    routing::validate(&config, |id| existing.contains(&id))?;
    Ok(ids)
}
