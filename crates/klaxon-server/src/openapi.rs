//! The Open API (openapi-compat.md): RPC over POST with the `{request_id, data|error}` envelope,
//! authenticated by an APP key (`?app_key=` or `Authorization: Bearer`), lenient bodies
//! (an empty body is `{}`, unknown fields are ignored, `0`/`""`/absent mean the same),
//! clamped paging.

mod access;
mod agreements;
mod alert_feed;
mod app_keys;
mod args;
mod audit;
mod calendars;
mod changes;
mod channels;
mod contacts;
mod custom_actions;
pub(crate) mod document;
mod enrichment;
mod escalation;
mod export;
mod field_mapping;
mod fields;
mod grants;
mod handlers;
mod im;
mod incident_actions;
mod insight;
mod integrations;
mod licences;
mod list_columns;
mod lookups;
mod members;
mod noise;
mod pipeline;
mod preferences;
mod providers;
mod pulls;
mod push_devices;
mod retention;
mod roles;
mod routing;
mod schedules;
mod sla;
mod sso;
mod teams;
mod templates;
mod ticket_sync;
mod transfer_consents;
mod war_room;
mod webhooks;

use axum::Router;
use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{Extensions, HeaderMap, Method, Uri, header};
use axum::response::Response;
use axum::routing::any;
use http_body_util::{BodyExt, Limited};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::permissions::Actor;
use klaxon_core::ratelimit::Admission;
use klaxon_store::AppKeyUse;
use serde_json::{Map, Value};

use crate::envelope::{failure, success, throttled};
use crate::state::{AppState, new_request_id};

pub(crate) use args::Args;
pub(crate) use field_mapping::stored as stored_field_mapping;
pub(crate) use grants::render as render_grant;

/// Open API bodies above this are refused with 413 `EntityTooLarge` (openapi-compat.md 1.5).
const MAX_API_BODY: usize = 1024 * 1024;

/// Every path the Open API serves (each must have a rule in `access::ROUTES`).
fn served_paths() -> impl Iterator<Item = &'static str> {
    handlers::PATHS
        .iter()
        .chain(incident_actions::PATHS)
        .chain(escalation::PATHS)
        .chain(enrichment::PATHS)
        .chain(fields::PATHS)
        .chain(templates::PATHS)
        .chain(calendars::PATHS)
        .chain(noise::PATHS)
        .chain(channels::PATHS)
        .chain(app_keys::PATHS)
        .chain(changes::PATHS)
        .chain(insight::PATHS)
        .chain(roles::PATHS)
        .chain(audit::PATHS)
        .chain(routing::PATHS)
        .chain(webhooks::PATHS)
        .chain(custom_actions::PATHS)
        .chain(ticket_sync::PATHS)
        .chain(im::PATHS)
        .chain(war_room::PATHS)
        .chain(licences::PATHS)
        .chain(agreements::PATHS)
        .chain(sla::PATHS)
        .chain(pipeline::PATHS)
        .chain(retention::PATHS)
        .chain(export::PATHS)
        .chain(field_mapping::PATHS)
        .chain(pulls::PATHS)
        .chain(preferences::PATHS)
        .chain(list_columns::PATHS)
        .chain(contacts::PATHS)
        .chain(push_devices::PATHS)
        .chain(sso::PATHS)
        .chain(grants::PATHS)
        .chain(transfer_consents::PATHS)
        .chain(providers::PATHS)
        .chain(lookups::PATHS)
        .chain(alert_feed::PATHS)
        .copied()
}

pub fn routes() -> Router<AppState> {
    served_paths()
        .fold(Router::new(), |r, path| r.route(path, any(api)))
        .route("/openapi.json", axum::routing::get(openapi_json))
}

/// `GET /openapi.json`: the OpenAPI 3.1 document of everything served (issue 8), without
/// authentication; it holds no account data.
async fn openapi_json() -> Response {
    use axum::response::IntoResponse;
    (
        [(header::CONTENT_TYPE, "application/json")],
        document::rendered(),
    )
        .into_response()
}

/// The authenticated caller of an Open API request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: i64,
    pub member_id: i64,
    /// Called with an account-level APP key (response.md §1.26): acts as the owner
    /// (`member_id` is the owner's), but is no member.
    pub account_key: bool,
    /// The caller's permissions (response.md §2.29), loaded once at authentication so no
    /// check needs a query of its own.
    pub actor: Actor,
    /// Source, request id, client address and APP key of the call, for the audit log.
    pub origin: crate::audit::Origin,
}

/// Whether a served path changes something (its audit record is written, RSP-600).
pub(crate) fn is_write_route(path: &str) -> bool {
    access::is_write(path)
}

async fn api(
    State(state): State<AppState>,
    uri: Uri,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let path = uri.path().to_string();
    let call = Call {
        path: &path,
        method: &method,
        query: query.as_deref(),
        headers: &headers,
        request_id: &request_id,
        ip: client_ip(&extensions),
    };
    let result = serve(&state, &call, body).await;
    let code = match &result {
        Ok(_) => "OK",
        Err(Failure::Error(e)) => e.code.as_str(),
        Err(Failure::Throttled { .. }) => "RequestTooFrequently",
    };
    metrics::counter!("klaxon_api_requests_total", "code" => code).increment(1);
    match result {
        // The mapping-table download and the insight exports are CSV, not the envelope
        // (openapi-compat.md 1.4).
        Ok(data) => enrichment::csv_response(&path, &request_id, &data)
            .or_else(|| insight::csv_response(&path, &request_id, &data))
            .unwrap_or_else(|| success(&request_id, data)),
        Err(Failure::Error(e)) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(%request_id, path, error = %e.message, "open api call failed");
            }
            failure(&request_id, Surface::OpenApi, &e)
        }
        Err(Failure::Throttled { limit, reset_at }) => {
            throttled(&request_id, Surface::OpenApi, limit, reset_at)
        }
    }
}

enum Failure {
    Error(ApiError),
    Throttled { limit: usize, reset_at: i64 },
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Error(e)
    }
}

/// The client's address as the connection shows it (`ConnectInfo`, set by `start`); empty
/// when the router runs without one (tests that call it in-process).
pub(crate) fn client_ip(extensions: &Extensions) -> String {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default()
}

/// One HTTP request to the Open API, before authentication.
struct Call<'a> {
    path: &'a str,
    method: &'a Method,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    request_id: &'a str,
    ip: String,
}

async fn serve(state: &AppState, call: &Call<'_>, body: Body) -> Result<Option<Value>, Failure> {
    let (path, method, query, headers) = (call.path, call.method, call.query, call.headers);
    if method != Method::POST {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed, use POST"),
        )
        .into());
    }
    let mut caller = authenticate(state, method, query, headers).await?;
    caller.origin.request_id = call.request_id.to_string();
    caller.origin.ip = call.ip.clone();
    caller.origin.user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect();
    // §1.26: an account-level key is no member.
    if caller.account_key && path == "/member/info" {
        return Err(ApiError::invalid(
            "app_key: an account-level APP key belongs to no member; use /account/info",
        )
        .into());
    }
    // SVC-023: a suspended or ended tenant may read but not change anything.
    crate::saas::check_write(state, caller.account_id, path)?;
    if let Admission::Throttled { limit, reset_at } = state
        .limiter
        .admit_api(caller.account_id, state.clock.now())
    {
        return Err(Failure::Throttled { limit, reset_at });
    }
    // RSP-520: the feature permission of the route, before the body is even read. A refused
    // write is still audited (RSP-600), without a body since none was read.
    if let Err(e) = access::check(&caller.actor, path) {
        crate::audit::record_call(state, &caller, path, None, Err(&e)).await;
        return Err(e.into());
    }
    let limit = enrichment::body_limit(path).unwrap_or(MAX_API_BODY);
    let args = match read_body(headers, body, limit).await {
        Ok(args) => args,
        Err(e) => {
            crate::audit::record_call(state, &caller, path, None, Err(&e)).await;
            return Err(e.into());
        }
    };
    Ok(perform(state, &caller, path, &args).await?)
}

/// Whether `actor` may call `path` at all (the route's feature permission, RSP-520): the
/// console asks before it draws a page or a control for that path.
pub(crate) fn may_call(actor: &Actor, path: &str) -> bool {
    check_route(actor, path).is_ok()
}

/// The Open API's refusal of `path` for `actor` by the route's permission, as a call gets it.
pub(crate) fn check_route(actor: &Actor, path: &str) -> Result<(), ApiError> {
    access::check(actor, path)
}

/// Runs one Open API path for an authenticated caller. The console calls this too, so a page
/// and the API share every rule (no second implementation), permissions included.
pub(crate) async fn perform(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Result<Option<Value>, ApiError> {
    // SVC-037: an authenticated call is a use event (one in-memory lookup in the common case).
    // Operator staff reading under an access grant (SVC-221) act as the owner but are not
    // the tenant using the service, so their calls never count as acceptance.
    if caller.origin.source != "staff" {
        crate::agreements::use_event(
            state,
            caller.account_id,
            state.clock.now(),
            &caller.origin.request_id,
            crate::agreements::UseEvent::Request {
                path,
                console: caller.origin.source == "console",
            },
        )
        .await;
    }
    // SVC-188: during the buffer only the owner and admins reach the data; SVC-192: held
    // data cannot be deleted (console and API alike); a refusal is audited.
    let result =
        match crate::saas::check_buffer_reader(state, caller.account_id, &caller.actor, path) {
            Ok(()) => match crate::saas::check_hold(state, caller.account_id, path).await {
                Ok(()) => perform_unaudited(state, caller, path, args).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
    // The one audit hook of every Open API and console call (RSP-600): writes only, ok or
    // failed, after the call so the record says how it ended.
    let outcome = result.as_ref().map(|_| ());
    // A deletion is recorded with what it removed (SVC-183): the answer's counts join the
    // recorded body.
    let answer = match &result {
        Ok(Some(data)) if retention::PATHS.contains(&path) => Some(data),
        _ => None,
    };
    crate::audit::record_call_with(state, caller, path, Some(args), outcome, answer).await;
    result
}

async fn perform_unaudited(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Result<Option<Value>, ApiError> {
    // RSP-520: the feature permission of the route (`serve` checked it before reading the
    // body; the console comes straight here).
    access::check(&caller.actor, path)?;
    // RSP-527: the data permission of routes that change one object.
    access::check_object(state, caller, path, args).await?;
    // RSP-008 / SVC-052/055: the licence gate, after the permission checks (a refused caller
    // takes no licence) and before anything runs. Account-level keys never need a licence.
    if access::licensed(path) && !caller.account_key {
        crate::saas::check_licence(state, caller.account_id, caller.member_id).await?;
    }
    if let Some(result) = roles::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = incident_actions::dispatch(state, caller, path, args).await {
        // An incident action may have decided notifications: wake this node's sender.
        state.wake_senders();
        return result;
    }
    if let Some(result) = escalation::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = enrichment::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = fields::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = templates::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = calendars::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = noise::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = channels::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = app_keys::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = preferences::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = list_columns::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = contacts::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = push_devices::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = changes::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = insight::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = lookups::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = alert_feed::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = audit::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = routing::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = webhooks::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = custom_actions::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = ticket_sync::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = im::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = war_room::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = licences::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = agreements::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = transfer_consents::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = providers::dispatch(state, caller, path).await {
        return result;
    }
    if let Some(result) = sla::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = pipeline::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = export::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = retention::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = field_mapping::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = pulls::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = sso::dispatch(state, caller, path, args).await {
        return result;
    }
    if let Some(result) = grants::dispatch(state, caller, path, args).await {
        return result;
    }
    handlers::dispatch(state, caller, path, args).await
}

/// `app_key` in the query (the public scheme), or `Authorization: Bearer` (openapi-compat.md
/// 1.2), or else a console session cookie with its CSRF header (docs/sign-in.md). Missing or
/// unknown → 401 `Unauthorized`. A key's use is recorded at most once a minute (RSP-612).
async fn authenticate(
    state: &AppState,
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let from_query = query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|params| {
            params
                .into_iter()
                .rev()
                .find(|(k, _)| k == "app_key")
                .map(|(_, v)| v)
        });
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|v| v.trim().to_string());
    let key = from_query.or(from_header).unwrap_or_default();
    if key.is_empty() {
        if let Some(session) = crate::signin::session_of(state, method, headers).await? {
            return member_caller(state, session.account_id, session.member_id).await;
        }
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "app_key is required",
        ));
    }
    let found: Option<AppKeyUse> = state
        .store
        .use_app_key(&key, state.clock.now())
        .await
        .map_err(|e| ApiError::internal(format!("cannot check the app key: {e}")))?;
    let Some(found) = found else {
        return Err(ApiError::new(ErrorCode::Unauthorized, "app_key is invalid"));
    };
    let origin = crate::audit::Origin {
        source: "api",
        app_key_id: found.key_id,
        ..Default::default()
    };
    if found.member_id != 0 {
        let mut caller = member_caller(state, found.account_id, found.member_id).await?;
        caller.origin = origin;
        return Ok(caller);
    }
    // An account-level key acts as the owner (§1.26).
    let owner = state
        .store
        .owner_member_id(found.account_id)
        .await
        .map_err(|e| ApiError::internal(format!("cannot find the account owner: {e}")))?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "app_key is invalid"))?;
    Ok(Caller {
        account_id: found.account_id,
        member_id: owner,
        account_key: true,
        actor: Actor::owner(owner),
        origin,
    })
}

/// A member's caller with their roles (RSP-611: a key acts with its owner's **current**
/// permissions). A deleted member's key or session no longer authenticates (RSP-553).
pub(crate) async fn member_caller(
    state: &AppState,
    account_id: i64,
    member_id: i64,
) -> Result<Caller, ApiError> {
    let record = state
        .store
        .actor(account_id, member_id)
        .await
        .map_err(|e| ApiError::internal(format!("cannot load the caller's roles: {e}")))?
        .ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthorized, "the caller is no longer a member")
        })?;
    Ok(Caller {
        account_id,
        member_id,
        account_key: false,
        actor: Actor::new(
            member_id,
            record.is_owner,
            &record.role_ids,
            &record.custom_roles,
        ),
        origin: crate::audit::Origin {
            source: "console",
            request_id: new_request_id(),
            ..Default::default()
        },
    })
}

/// An empty body is `{}` (go-flashduty sends body-less POSTs without a Content-Type); a
/// non-empty body must be a JSON object, and a declared Content-Type must be JSON.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Args, ApiError> {
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ApiError::new(
                ErrorCode::EntityTooLarge,
                "request body too large",
            ));
        }
        Err(e) => return Err(ApiError::invalid(format!("cannot read request body: {e}"))),
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Args::new(Map::new()));
    }
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                ErrorCode::InvalidContentType,
                "Content-Type must be application/json",
            ));
        }
    }
    match serde_json::from_slice::<Value>(&bytes) {
        // PostgreSQL cannot store U+0000 in text, and no field means anything by it: refused
        // on every backend alike, naming the field, before anything runs.
        Ok(Value::Object(map)) => match args::nul_field(&map) {
            Some(field) => Err(ApiError::invalid(format!(
                "{field} must not contain the NUL character (\\u0000)"
            ))),
            None => Ok(Args::new(map)),
        },
        Ok(_) => Err(ApiError::invalid("request body must be a JSON object")),
        Err(_) => Err(ApiError::invalid("invalid JSON")),
    }
}
