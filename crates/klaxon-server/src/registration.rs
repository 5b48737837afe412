//! Self-service registration in SaaS mode (docs/registration.md; SVC-001, SVC-008, SVC-032,
//! SVC-210 … SVC-215). Served only by SaaS nodes: on a self-hosted node these paths are
//! unknown routes (404) and nothing here runs.
//!
//! JSON, unauthenticated, in the style of `/auth/password/reset/*`:
//! - `GET|POST /auth/register/info`: the regions and the documents a registrant accepts;
//! - `POST /auth/register/code {email, region}`: sends a one-time code (10 minutes);
//! - `POST /auth/register/complete {…}`: creates the tenant.
//!
//! A registration for another region is answered with that region's address and nothing is
//! stored or sent here (SVC-211). The console page `/register` (`console::register`) runs the
//! same functions.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, Method, header};
use axum::response::Response;
use axum::routing::any;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_notify::smtp::Mailer;
use klaxon_saas::SaasError;
use klaxon_saas::region::{Region, Regions, Route};
use klaxon_saas::registration::{self as reg, Form};
use klaxon_store::{CodeIssue, DocumentVersion, NewRegistration, Registered, SaasFailure};
use rand::Rng;
use serde_json::{Value, json};

use crate::envelope::{failure, success, throttled};
use crate::signin::{internal, json_body, method_not_allowed};
use crate::state::{AppState, new_request_id, random_hex};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/register/info", any(info))
        .route("/auth/register/code", any(code))
        .route("/auth/register/complete", any(complete))
}

/// Why a step did not happen; `field` says which form field the message belongs to.
pub(crate) enum Refusal {
    Error {
        field: Option<&'static str>,
        error: ApiError,
    },
    Throttled {
        reset_at: i64,
    },
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Error { field: None, error }
    }
}

impl Refusal {
    pub(crate) fn message(&self) -> String {
        match self {
            Refusal::Error { error, .. } => error.message.clone(),
            Refusal::Throttled { .. } => {
                "too many codes were sent to this address in the last hour; try again later".into()
            }
        }
    }

    pub(crate) fn field(&self) -> Option<&'static str> {
        match self {
            Refusal::Error { field, .. } => *field,
            Refusal::Throttled { .. } => Some("email"),
        }
    }

    pub(crate) fn status(&self) -> u16 {
        match self {
            Refusal::Error { error, .. } => error.code.http_status(Surface::OpenApi),
            Refusal::Throttled { .. } => 429,
        }
    }
}

fn rule(e: SaasError) -> Refusal {
    match e {
        SaasError::Invalid { field, message } => Refusal::Error {
            field: Some(field),
            error: ApiError::invalid(format!("{field}: {message}")),
        },
        other => Refusal::Error {
            field: None,
            error: ApiError::new(ErrorCode::BadRequest, other.to_string()),
        },
    }
}

fn store_failure(e: SaasFailure) -> Refusal {
    match e {
        SaasFailure::Rule(r) => rule(r),
        other => internal(other).into(),
    }
}

/// The region routing of this deployment, from its configuration (checked at start).
pub(crate) fn regions(state: &AppState) -> Result<Regions, Refusal> {
    state
        .config
        .deployment
        .regions()
        .map_err(|e| internal(e).into())
}

/// Where a registration for another region goes: its own registration page.
pub(crate) fn register_url(r: &Region) -> String {
    format!("{}/register?region={}", r.base_url, r.id)
}

fn elsewhere(r: &Region) -> Value {
    json!({
        "registered": false,
        "region": {"id": r.id, "name": r.name, "base_url": r.base_url},
        "register_url": register_url(r),
        "message": format!(
            "{} is served by another deployment; register at {} (nothing was stored here)",
            r.name, r.base_url
        ),
    })
}

/// SVC-032: the versions a registrant is shown now, in the form's order.
pub(crate) async fn documents(state: &AppState) -> Result<Vec<DocumentVersion>, Refusal> {
    let all = state.store.saas_documents().await.map_err(store_failure)?;
    let facts = all
        .iter()
        .map(DocumentVersion::facts)
        .collect::<Result<Vec<_>, _>>()
        .map_err(store_failure)?;
    let now = jiff::Timestamp::from_millisecond(state.clock.now()).map_err(internal)?;
    let shown = reg::documents_to_accept(&facts, now);
    Ok(shown
        .iter()
        .filter_map(|id| all.iter().find(|d| d.version_id == *id).cloned())
        .collect())
}

/// The node-wide bound shared with password sign-in: every step costs a slot.
fn admit(state: &AppState) -> Result<(), Refusal> {
    let now = state.clock.now();
    if let Ok(mut window) = state.signin_window.lock()
        && window.limit() > 0
    {
        if !window.has_room(now) {
            return Err(Refusal::Throttled {
                reset_at: window.reset_at(now),
            });
        }
        window.admit(now);
    }
    Ok(())
}

/// What step 1 did.
pub(crate) enum CodeStep {
    Sent { email: String },
    Elsewhere(Region),
}

/// Step 1 (SVC-001): routes the region, then stores a code for the address and mails it.
pub(crate) async fn send_code(
    state: &AppState,
    email: &str,
    region: &str,
    ip: &str,
) -> Result<CodeStep, Refusal> {
    let email = reg::check_email(email).map_err(rule)?;
    let regions = regions(state)?;
    let region = if region.trim().is_empty() {
        regions.own().id.clone()
    } else {
        region.trim().to_string()
    };
    if let Route::Elsewhere(r) = regions.route(&region).map_err(rule)? {
        return Ok(CodeStep::Elsewhere(r.clone()));
    }
    let Some(smtp) = state.config.notify.email.as_ref() else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "registration is not available: no e-mail sender is configured (notify.email)",
        )
        .into());
    };
    admit(state)?;
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let now = state.clock.now();
    match state
        .store
        .saas_issue_registration_code(&email, &code, ip, now)
        .await
        .map_err(store_failure)?
    {
        CodeIssue::Throttled { until } => return Err(Refusal::Throttled { reset_at: until }),
        CodeIssue::Issued => {}
    }
    let mailer = Mailer::new(smtp, state.config.notify.timeout_ms).map_err(internal)?;
    let minutes = reg::CODE_TTL.as_mins();
    let base = state.base_url.to_string();
    // ASCII and short lines, so the text part goes out as plain 7bit.
    let text = format!(
        "Someone asked to register an organisation with Klaxon\r\n\
         at {base} with this e-mail address.\r\n\r\n\
         Your registration code (it works once, for {minutes} minutes):\r\n\r\n\
         {code}\r\n\r\n\
         If you did not ask for this, ignore this e-mail.\r\n"
    );
    let html = format!("<pre>{}</pre>", crate::console::view::escape(&text));
    mailer
        .send(
            &new_request_id(),
            &email,
            "",
            "Your Klaxon registration code",
            html,
            text,
        )
        .await
        .map_err(|e| {
            tracing::warn!(error = ?e, "cannot send the registration code");
            Refusal::from(ApiError::new(
                ErrorCode::InternalError,
                "the code could not be sent; try again in a moment",
            ))
        })?;
    tracing::info!("registration code sent");
    Ok(CodeStep::Sent { email })
}

/// What step 2 did.
pub(crate) enum Completed {
    Registered(Registered),
    Elsewhere(Region),
}

/// The evidence of the request an acceptance is recorded with (SVC-032).
pub(crate) struct Client<'a> {
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// `web` or `api`.
    pub client_type: &'a str,
    pub request_id: &'a str,
}

/// Step 2 (SVC-001/008/032/210): checks the form, routes the region, and creates the tenant
/// in one transaction.
pub(crate) async fn register(
    state: &AppState,
    form: &Form,
    client: &Client<'_>,
) -> Result<Completed, Refusal> {
    let Some(saas) = &state.saas else {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "not found").into());
    };
    let checked = reg::check_form(form).map_err(rule)?;
    let regions = regions(state)?;
    if let Route::Elsewhere(r) = regions.route(&checked.region).map_err(rule)? {
        return Ok(Completed::Elsewhere(r.clone()));
    }
    admit(state)?;
    let new = NewRegistration {
        email: checked.email,
        code: checked.code,
        password: form.password.clone(),
        organisation: checked.organisation,
        entity_type: checked.entity_type,
        legal_name: checked.legal_name,
        region: regions.own().id.clone(),
        accepted_versions: form.accepted_versions.clone(),
        at: state.clock.now(),
        client_ip: client.ip.to_string(),
        user_agent: client.user_agent.chars().take(512).collect(),
        client_type: client.client_type.to_string(),
        request_id: client.request_id.to_string(),
        app_key: random_hex(16),
        integration_key: random_hex(16),
    };
    let done = state
        .store
        .saas_register(&saas.settings, &new)
        .await
        .map_err(store_failure)?;
    // RSP-600: the new tenant's audit log starts with its owner's registration.
    crate::audit::record_signin(
        state,
        done.account_id,
        done.member_id,
        "register",
        client.ip,
        "ok",
    )
    .await;
    tracing::info!(
        account_id = done.account_id,
        member_id = done.member_id,
        existing_identity = done.existing_identity,
        "tenant registered"
    );
    // The new tenant is `trial`: serving, so no node's refusal cache needs it.
    Ok(Completed::Registered(done))
}

fn answer(request_id: &str, result: Result<Option<Value>, Refusal>) -> Response {
    match result {
        Ok(data) => success(request_id, data),
        Err(Refusal::Throttled { reset_at }) => throttled(
            request_id,
            Surface::OpenApi,
            reg::CODES_PER_HOUR as usize,
            reset_at,
        ),
        Err(Refusal::Error { error, .. }) => {
            if error.code == ErrorCode::InternalError {
                tracing::error!(%request_id, error = %error.message, "registration failed");
            }
            failure(request_id, Surface::OpenApi, &error)
        }
    }
}

fn text_field(args: &Value, name: &str) -> String {
    args.get(name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

async fn info(State(state): State<AppState>, method: Method) -> Response {
    let request_id = new_request_id();
    let result = info_inner(&state, &method).await;
    answer(&request_id, result)
}

async fn info_inner(state: &AppState, method: &Method) -> Result<Option<Value>, Refusal> {
    if *method != Method::GET && *method != Method::POST {
        return Err(method_not_allowed(method).into());
    }
    let regions = regions(state)?;
    let docs = documents(state).await?;
    let own = regions.own().id.clone();
    Ok(Some(json!({
        "region": own,
        "regions": regions.all().map(|r| json!({
            "id": r.id, "name": r.name, "base_url": r.base_url, "this_deployment": r.id == own,
        })).collect::<Vec<_>>(),
        "documents": docs.iter().map(|d| json!({
            "version_id": d.version_id,
            "type": d.doc_type.as_str(),
            "version": d.version,
            "language": d.language,
            "sha256": d.body_sha256,
            "effective_at": d.effective_at.div_euclid(1000),
            "body": d.body,
        })).collect::<Vec<_>>(),
        "consent_label": {"id": reg::CONSENT_LABEL_ID, "text": reg::CONSENT_LABEL},
        "code_valid_minutes": reg::CODE_TTL.as_mins(),
    })))
}

async fn code(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let ip = crate::openapi::client_ip(&extensions);
    let result = code_inner(&state, &method, &headers, &ip, body).await;
    answer(&request_id, result)
}

async fn code_inner(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    ip: &str,
    body: Body,
) -> Result<Option<Value>, Refusal> {
    if *method != Method::POST {
        return Err(method_not_allowed(method).into());
    }
    let args = json_body(headers, body).await?;
    match send_code(
        state,
        &text_field(&args, "email"),
        &text_field(&args, "region"),
        ip,
    )
    .await?
    {
        CodeStep::Sent { .. } => Ok(Some(json!({
            "sent": true,
            "code_valid_minutes": reg::CODE_TTL.as_mins(),
        }))),
        CodeStep::Elsewhere(r) => Ok(Some(elsewhere(&r))),
    }
}

fn version_ids(args: &Value) -> Result<Vec<i64>, Refusal> {
    match args.get("accept") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_i64().ok_or_else(|| {
                    Refusal::from(ApiError::invalid(
                        "accept: a list of the document version ids accepted",
                    ))
                })
            })
            .collect(),
        Some(_) => {
            Err(ApiError::invalid("accept: a list of the document version ids accepted").into())
        }
    }
}

pub(crate) fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn complete(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let ip = crate::openapi::client_ip(&extensions);
    let result = complete_inner(&state, &method, &headers, &ip, &request_id, body).await;
    answer(&request_id, result)
}

async fn complete_inner(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    ip: &str,
    request_id: &str,
    body: Body,
) -> Result<Option<Value>, Refusal> {
    if *method != Method::POST {
        return Err(method_not_allowed(method).into());
    }
    let args = json_body(headers, body).await?;
    let form = Form {
        email: text_field(&args, "email"),
        code: text_field(&args, "code"),
        password: text_field(&args, "password"),
        organisation: text_field(&args, "organisation"),
        legal_entity_type: text_field(&args, "legal_entity_type"),
        legal_name: text_field(&args, "legal_name"),
        region: text_field(&args, "region"),
        accepted_versions: version_ids(&args)?,
    };
    let ua = user_agent(headers);
    let client = Client {
        ip,
        user_agent: &ua,
        client_type: "api",
        request_id,
    };
    match register(state, &form, &client).await? {
        Completed::Elsewhere(r) => Ok(Some(elsewhere(&r))),
        Completed::Registered(done) => {
            let settings = state.saas.as_ref().map(|s| &s.settings);
            let trial_days = settings.map_or(0, |s| s.params.trial_days);
            let now = state.clock.now();
            Ok(Some(json!({
                "registered": true,
                "account_id": done.account_id,
                "member_id": done.member_id,
                "existing_identity": done.existing_identity,
                "state": "trial",
                "region": regions(state)?.own().id,
                "currency": settings.map(|s| s.currency.code),
                "trial_ends_at": now.div_euclid(1000) + trial_days * 86_400,
                // Shown once (SVC-011): only hashes are kept.
                "app_key": done.app_key,
                "integration_key": done.integration_key,
                "acceptance_ids": done.acceptance_ids,
            })))
        }
    }
}
