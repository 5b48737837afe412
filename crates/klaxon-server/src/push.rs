//! The push endpoints (ingest.md §2.1): receive, authenticate, limit, parse, validate, queue.
//!
//! Stages 1–3 of ingest.md §1.4 run here, synchronously; a 200 means the events are committed
//! to the inbox (ING-008). Everything after runs in the inbox worker.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use axum::routing::any;
use http_body_util::{BodyExt, Limited};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::model::{EventOrigin, Millis, NewEvent, RAW_MAX_BYTES, cut_bytes};
use klaxon_core::ratelimit::Admission;
use klaxon_core::standard::{PushContext, parse_standard};
use klaxon_store::Integration;
use serde_json::{Value, json};

use crate::envelope::{failure, success, throttled};
use crate::state::{AppState, new_request_id};

/// ING-006: at most 5 MiB.
pub const MAX_PUSH_BODY: usize = 5 * 1024 * 1024;

/// The standard family (ING-001): these types may all push to `/event/push/alert/standard`,
/// and each also has its own alias path taking the same payload.
pub(crate) const STANDARD_FAMILY: [&str; 5] =
    ["standard", "uptimekuma", "keep", "elastalert2", "oceanbase"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/event/push/alert/{source}", any(push_alert))
        .merge(crate::sources::routes())
        .merge(crate::changes::routes())
}

async fn push_alert(
    State(state): State<AppState>,
    method: Method,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if source == "pagerduty" {
        // PagerDuty answers in its own shapes (ingest.md §3.6).
        return crate::sources::pagerduty(state, method, query, body).await;
    }
    if let Some(bot) = klaxon_sources::chatbot::Bot::from_type(&source) {
        // ING-218: the bots answer in their own shapes.
        return crate::chatbots::receive(state, bot, method, query, body).await;
    }
    let started = Instant::now();
    let request_id = new_request_id();
    let result = accept(
        &state,
        &request_id,
        &method,
        &source,
        query.as_deref(),
        &headers,
        body,
    )
    .await;
    let code = match &result {
        Ok(_) => "OK",
        Err(e) => e.code.as_str(),
    };
    metrics::counter!("klaxon_push_requests_total", "code" => code).increment(1);
    metrics::histogram!("klaxon_push_latency_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(Accepted::Events { data }) => success(&request_id, data),
        Ok(Accepted::Throttled { limit, reset_at }) => {
            throttled(&request_id, Surface::Push, limit, reset_at)
        }
        Err(e) => failure(&request_id, Surface::Push, &e),
    }
}

enum Accepted {
    /// Committed; `data` of ING-031 for the standard family, none for adapters (§3.0).
    Events {
        data: Option<Value>,
    },
    Throttled {
        limit: usize,
        reset_at: i64,
    },
}

async fn accept(
    state: &AppState,
    request_id: &str,
    method: &Method,
    source: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Accepted, ApiError> {
    // ING-003: the standard family and the adapters of `klaxon-sources` have endpoints.
    let standard = STANDARD_FAMILY.contains(&source);
    if !standard && !klaxon_sources::ENVELOPE_TYPES.contains(&source) {
        return Err(ApiError::new(
            ErrorCode::RouteNotFound,
            format!("no push endpoint for source type {source}"),
        ));
    }
    // ING-002: the reference product answers 400, not 405.
    if method != Method::POST {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed, use POST"),
        ));
    }
    // ING-004: only the standard endpoints check the header.
    if standard && !is_json_content_type(headers) {
        return Err(ApiError::new(
            ErrorCode::InvalidContentType,
            "Content-Type must be application/json",
        ));
    }
    let params = query_params(query)?;
    // ING-005: the last `integration_key` wins, like every other repeated parameter (ING-012).
    let key = query_key(&params);
    let integration = resolve_key(state, key, source).await?;

    // ING-006.
    let (bytes, payload) = read_json(body).await?;

    // ING-007: counted only for requests that got this far.
    let now = state.clock.now();
    if let Admission::Throttled { limit, reset_at } =
        state
            .limiter
            .admit_push(integration.account_id, integration.integration_id, now)
    {
        return Ok(Accepted::Throttled { limit, reset_at });
    }

    // ING-097: Nightingale's `channel_ids` targets channels directly; it is never a label
    // (exception to ING-012), and only a shared integration heeds it.
    let mut direct: Vec<i64> = Vec::new();
    let query_labels: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, v)| {
            if source == "n9e" && k == "channel_ids" {
                if integration.kind == "shared" {
                    direct = klaxon_core::routing::parse_channel_ids(v);
                }
                return false;
            }
            k != "integration_key"
        })
        .collect();
    if !standard {
        let console_url = setting(&integration, "console_url");
        let ctx = klaxon_sources::Context {
            integration_id: integration.integration_id,
            query_labels: &query_labels,
            received_at: now,
            console_url: console_url.as_deref(),
        };
        let events = klaxon_sources::parse(source, &payload, &ctx)?;
        commit_to(state, request_id, &integration, events, now, &direct).await?;
        return Ok(Accepted::Events { data: None });
    }
    let ctx = PushContext {
        integration_id: integration.integration_id,
        query_labels: &query_labels,
        received_at: now,
    };
    // ING-040: with a field mapping the body is mapped, one item or a batch (§2.3).
    if let Some(mapping) = crate::openapi::stored_field_mapping(&integration.settings)? {
        let single = payload.is_object();
        let raw = |_: usize, item: &Value| {
            if single {
                // ING-054: the body as received.
                cut_bytes(&String::from_utf8_lossy(&bytes), RAW_MAX_BYTES).to_string()
            } else {
                cut_bytes(&item.to_string(), RAW_MAX_BYTES).to_string()
            }
        };
        // ING-044, ING-047: every item is mapped and valid, or nothing is queued.
        let events = mapping.apply(&payload, &ctx, raw)?;
        let keys: Vec<String> = events.iter().map(|e| e.alert_key.clone()).collect();
        // One inbox commit for the whole batch: a 200 means every item is queued.
        commit(state, request_id, &integration, events, now).await?;
        // ING-048: an object answers like ING-031, an array with the keys in input order.
        let data = if single {
            json!({ "alert_key": keys.first() })
        } else {
            json!({ "alert_keys": keys })
        };
        return Ok(Accepted::Events { data: Some(data) });
    }
    let mut event = parse_standard(&payload, &ctx)?;
    // ING-054: keep the item as received (the body is valid UTF-8: it parsed as JSON).
    event.raw = cut_bytes(&String::from_utf8_lossy(&bytes), RAW_MAX_BYTES).to_string();
    let alert_key = event.alert_key.clone();
    commit(state, request_id, &integration, vec![event], now).await?;
    Ok(Accepted::Events {
        data: Some(json!({ "alert_key": alert_key })),
    })
}

/// The query string as ordered pairs.
pub(crate) fn query_params(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    match query {
        Some(q) => {
            serde_urlencoded::from_str(q).map_err(|_| ApiError::invalid("query string is invalid"))
        }
        None => Ok(Vec::new()),
    }
}

/// The last `integration_key` of the query, or "".
pub(crate) fn query_key(params: &[(String, String)]) -> &str {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == "integration_key")
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// ING-005 and ING-001: the key's enabled integration, of a type allowed on `source`'s path.
pub(crate) async fn resolve_key(
    state: &AppState,
    key: &str,
    source: &str,
) -> Result<Integration, ApiError> {
    if key.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "integration_key is required",
        ));
    }
    let integration = lookup_key(state, key)
        .await?
        .ok_or_else(|| ApiError::invalid("integration_key is not a valid one"))?;
    // ING-013: right after the key resolves, before the body is read; refused requests are
    // not queued and do not count toward the rate limits. Self-hosted: no check.
    crate::saas::check_inbound(state, integration.account_id)?;
    check_integration(integration, source)
}

/// The live integration of a push key, if any.
pub(crate) async fn lookup_key(
    state: &AppState,
    key: &str,
) -> Result<Option<Integration>, ApiError> {
    state
        .keys
        .integration(&state.store, key, state.clock.now())
        .await
        .map_err(|e| ApiError::internal(format!("cannot look up the integration: {e}")))
}

/// ING-005 (disabled) and ING-001 (type of the path) for a resolved integration.
pub(crate) fn check_integration(
    integration: Integration,
    source: &str,
) -> Result<Integration, ApiError> {
    if !integration.enabled {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "integration is disabled",
        ));
    }
    let type_ok = integration.integration_type == source
        || (source == "standard"
            && STANDARD_FAMILY.contains(&integration.integration_type.as_str()));
    if !type_ok {
        return Err(ApiError::invalid("integration type mismatch"));
    }
    Ok(integration)
}

/// ING-006: at most 5 MiB of valid JSON.
pub(crate) async fn read_json(body: Body) -> Result<(axum::body::Bytes, Value), ApiError> {
    let bytes = match Limited::new(body, MAX_PUSH_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ApiError::invalid("request body too large"));
        }
        Err(e) => return Err(ApiError::invalid(format!("cannot read request body: {e}"))),
    };
    let payload: Value =
        serde_json::from_slice(&bytes).map_err(|_| ApiError::invalid("invalid JSON"))?;
    Ok((bytes, payload))
}

/// A string member of the integration's settings (e.g. `console_url`), if set.
pub(crate) fn setting(integration: &Integration, name: &str) -> Option<String> {
    serde_json::from_str::<Value>(&integration.settings)
        .ok()?
        .get(name)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Appends the request's events to the inbox in one group-commit job: they are committed
/// together or not at all, and a 2xx is answered only after the commit (ING-008). Zero
/// events commit nothing (§3.0).
pub(crate) async fn commit(
    state: &AppState,
    request_id: &str,
    integration: &Integration,
    events: Vec<NewEvent>,
    now: Millis,
) -> Result<(), ApiError> {
    commit_to(state, request_id, integration, events, now, &[]).await
}

/// [`commit`], with the channels a Nightingale request named (ING-097, shared integrations
/// only; empty = none named).
pub(crate) async fn commit_to(
    state: &AppState,
    request_id: &str,
    integration: &Integration,
    events: Vec<NewEvent>,
    now: Millis,
    direct: &[i64],
) -> Result<(), ApiError> {
    let channels = push_channels(state, integration, direct).await?;
    if events.is_empty() {
        return Ok(());
    }
    let count = events.len() as u64;
    let origin = EventOrigin {
        request_id: request_id.to_string(),
        account_id: integration.account_id,
        integration_id: integration.integration_id,
        integration_type: integration.integration_type.clone(),
        integration_name: integration.integration_name.clone(),
        channel_id: integration.channel_id,
        received_at: now,
    };
    // One inbox row per event and channel, in request order (ING-011).
    let mut rows = Vec::with_capacity(events.len() * channels.len());
    for event in events {
        for channel in &channels {
            let mut o = origin.clone();
            o.channel_id = *channel;
            rows.push((o, event.clone()));
        }
    }
    let commit_started = Instant::now();
    state
        .store
        .enqueue(rows)
        .await
        .map_err(|e| ApiError::internal(format!("cannot queue the event: {e}")))?;
    metrics::histogram!("klaxon_store_commit_seconds")
        .record(commit_started.elapsed().as_secs_f64());
    metrics::counter!("klaxon_push_events_accepted_total").increment(count);
    state.inbox_ready.notify_one();
    // SVC-037: an accepted inbound event is a use event (one in-memory lookup unless a new
    // version has just taken effect for this tenant).
    crate::agreements::use_event(
        state,
        integration.account_id,
        now,
        request_id,
        crate::agreements::UseEvent::Inbound,
    )
    .await;
    Ok(())
}

/// The channels a request's events are queued for: a dedicated integration's own channel;
/// for a shared one, the existing channels its source named (ING-097), else 0 (routed when
/// processed, ING-091) — unless its routes name no channel at all, when every push is
/// refused (ING-010).
pub(crate) async fn push_channels(
    state: &AppState,
    integration: &Integration,
    direct: &[i64],
) -> Result<Vec<i64>, ApiError> {
    if integration.kind != "shared" {
        return Ok(vec![integration.channel_id]);
    }
    let internal =
        |e: klaxon_store::StoreError| ApiError::internal(format!("cannot read the routes: {e}"));
    let account = integration.account_id;
    if !direct.is_empty() {
        let existing = state
            .store
            .existing_channels(account, direct)
            .await
            .map_err(internal)?;
        let valid: Vec<i64> = direct
            .iter()
            .copied()
            .filter(|id| existing.contains(id))
            .collect();
        if !valid.is_empty() {
            return Ok(valid);
        }
    }
    let id = integration.integration_id;
    let latest = state
        .store
        .latest_routes(account, &[id])
        .await
        .map_err(internal)?;
    if !latest.get(&id).is_some_and(|v| v.config.has_targets()) {
        return Err(ApiError::invalid(
            "no route configured for this integration",
        ));
    }
    Ok(vec![0])
}

/// `application/json`, parameters allowed, case-insensitive (ING-004).
fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}
