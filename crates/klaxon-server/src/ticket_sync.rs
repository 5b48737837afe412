//! Ticket sync with Jira, ServiceNow and ServiceDesk Plus (response.md RSP-405…407;
//! docs/ticket-sync.md; ServiceDesk Plus requests in [`crate::ticket_sync_sdp`]).
//!
//! - **Outbound**: [`TicketDispatcher`] claims due sync steps (rows written with the incident
//!   change, see `klaxon_store::ticket_sync`), makes the ticket system's requests through
//!   `klaxon_notify::tickets` and records the outcome, which is the integration's sync log. A
//!   successful create stores the ticket's key and URL on the incident in the same
//!   transaction. A failed create leaves the incident unchanged (RSP-405).
//! - **Inbound** (ServiceNow and ServiceDesk Plus, direction `from` or `two_way`): `POST
//!   /ticket-sync/{servicenow,servicedeskplus}/push?integration_key=…` takes the body the
//!   ServiceNow business rule or the ServiceDesk Plus custom trigger sends (`action_type`
//!   insert | update) and creates or changes the incident, custom fields included. Steps
//!   that such a change queues for the same integration are skipped, so nothing echoes back.
//!
//! Every node with `workers.delivery` runs the dispatcher; rows and leases make it safe
//! across restarts and nodes.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use klaxon_core::model::{Incident, Labels, Millis, Progress, Status};
use klaxon_core::response::Response as IncidentResponse;
use klaxon_core::ticket_sync::{
    self as rules, StateAction, Step, System, jira_create_body, mapped_fields, priority_for,
    servicenow_create_body,
};
use klaxon_core::ticket_sync_sdp as sdp;
use klaxon_notify::tickets::{self, Auth, Body, TicketClient, TicketRequest, TicketResponse};
use klaxon_store::{
    ActionResult, Store, StoreError, TicketIntegration, TicketJob, TicketLink, TicketOutcome,
};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::state::AppState;
use crate::ticket_sync_sdp::{NotSent, Sdp};

/// How often an idle worker looks for due steps.
const POLL: Duration = Duration::from_millis(500);
/// Steps claimed per round.
const BATCH: i64 = 8;
/// The most of a ticket system's answer kept in the sync log.
const LOGGED_BODY_CHARS: usize = 512;
/// Inbound bodies above this are refused.
const MAX_PUSH_BODY: usize = 256 * 1024;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketRound {
    pub claimed: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub retried: usize,
    pub skipped: usize,
}

/// The ticket-sync sender of one node; cheap to clone.
#[derive(Clone)]
pub struct TicketDispatcher {
    store: Store,
    client: TicketClient,
    holder: String,
}

impl TicketDispatcher {
    /// `holder` names this node's claims; `allow_private` lets service URLs be private
    /// addresses (`notify.allow_private_targets`).
    pub fn new(
        store: Store,
        holder: &str,
        allow_private: bool,
    ) -> Result<TicketDispatcher, String> {
        Ok(TicketDispatcher {
            store,
            client: TicketClient::new(allow_private)?,
            holder: holder.to_string(),
        })
    }

    /// Claims due steps at `now` and makes one attempt at each.
    pub async fn run_once(&self, now: Millis) -> Result<TicketRound, StoreError> {
        let claimed = self
            .store
            .claim_ticket_jobs(&self.holder, now, BATCH)
            .await?;
        let mut round = TicketRound {
            claimed: claimed.len(),
            ..TicketRound::default()
        };
        for job in claimed {
            let outcome = self.attempt(&job, now).await?;
            let (outcome, link) = outcome;
            if !self
                .store
                .finish_ticket_job(&self.holder, &job, &outcome, link.as_ref(), now)
                .await?
            {
                continue;
            }
            metrics::counter!("klaxon_ticket_sync_steps_total", "outcome" => outcome.status)
                .increment(1);
            match outcome.status {
                "success" => round.succeeded += 1,
                "queued" => round.retried += 1,
                "skipped" => round.skipped += 1,
                _ => round.failed += 1,
            }
            if outcome.status == "failed" {
                tracing::info!(
                    integration_id = job.integration_id,
                    incident_id = %job.incident_id,
                    op = %job.op,
                    error = %outcome.error,
                    "ticket sync step failed"
                );
            }
        }
        Ok(round)
    }

    /// Runs rounds at `now` until nothing is due; returns the sum.
    pub async fn drain(&self, now: Millis) -> Result<TicketRound, StoreError> {
        let mut total = TicketRound::default();
        loop {
            let r = self.run_once(now).await?;
            if r.claimed == 0 {
                return Ok(total);
            }
            total.claimed += r.claimed;
            total.succeeded += r.succeeded;
            total.failed += r.failed;
            total.retried += r.retried;
            total.skipped += r.skipped;
        }
    }

    async fn attempt(
        &self,
        job: &TicketJob,
        now: Millis,
    ) -> Result<(TicketOutcome, Option<TicketLink>), StoreError> {
        let skip = |why: &str| (outcome("skipped", None, why.to_string(), ""), None);
        let integration = match self
            .store
            .ticket_sync(job.account_id, job.integration_id)
            .await?
        {
            Some(i) if i.status == "enabled" && rules::outbound(&i.direction) => i,
            _ => return Ok(skip("integration_disabled")),
        };
        let Some(system) = System::parse(&integration.system) else {
            return Ok(skip("unknown ticket system"));
        };
        let Some(step) = Step::parse(&job.op, &job.payload) else {
            return Ok(skip("unknown step"));
        };
        let Some(inc) = self
            .store
            .incident(job.account_id, &job.incident_id)
            .await?
        else {
            return Ok(skip("the incident no longer exists"));
        };
        let link = self
            .store
            .ticket_links(job.account_id, &job.incident_id)
            .await?
            .into_iter()
            .find(|l| l.integration_id == job.integration_id);
        let attempts = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
        let sync = Requests {
            client: &self.client,
            integration: &integration,
            base: integration.settings.base_url.trim_end_matches('/'),
        };
        if step == Step::Create {
            if link.is_some() {
                return Ok(skip("the incident already has a ticket"));
            }
            let (resp, made) = match system {
                System::Jira => sync.jira_create(&inc).await,
                System::ServiceNow => sync.servicenow_create(&inc).await,
                System::ServiceDeskPlus => match sync.sdp(&self.store, now).create(&inc).await {
                    Ok(r) => r,
                    Err(e) => return not_sent(e, attempts, now, ""),
                },
            };
            return Ok(match made {
                Some((external_id, key, url)) if resp.success() => {
                    let link = TicketLink {
                        account_id: job.account_id,
                        integration_id: job.integration_id,
                        incident_id: job.incident_id.clone(),
                        external_id,
                        external_key: key.clone(),
                        external_url: url,
                        last_urgency: String::new(),
                        last_comment: String::new(),
                        created_at: now,
                    };
                    (answered(&resp, "success", None, &key), Some(link))
                }
                _ if resp.success() => (
                    answered(&resp, "failed", None, "")
                        .with_error("the ticket system answered without the new ticket's key"),
                    None,
                ),
                _ => (failure(&resp, attempts, now), None),
            });
        }
        let Some(link) = link else {
            return Ok(skip("the incident has no ticket of this integration"));
        };
        let resp = match (system, &step) {
            (System::Jira, Step::Priority(sev)) => {
                let Some(p) = priority_for(system, &integration.severity_mapping, *sev) else {
                    return Ok(skip("no priority is mapped for this severity"));
                };
                let body = json!({"fields": {"priority": {"name": p}}});
                sync.call("PUT", &sync.jira_issue(&link, ""), Some(&body))
                    .await
            }
            (System::Jira, Step::Status(progress)) => {
                match sync
                    .jira_transition(&link, rules::jira_status(*progress))
                    .await
                {
                    Ok(resp) => resp,
                    Err(why) => {
                        return Ok((outcome("failed", None, why, &link.external_key), None));
                    }
                }
            }
            (System::Jira, Step::Comment(text)) => {
                let body = json!({"body": text});
                sync.call("POST", &sync.jira_issue(&link, "/comment"), Some(&body))
                    .await
            }
            (System::ServiceNow, Step::Priority(sev)) => {
                let Some(u) = priority_for(system, &integration.severity_mapping, *sev) else {
                    return Ok(skip("no urgency is mapped for this severity"));
                };
                let body = json!({"urgency": u});
                sync.call("PATCH", &sync.servicenow_record(&link), Some(&body))
                    .await
            }
            (System::ServiceNow, Step::Status(progress)) => {
                let mut body = json!({"state": rules::servicenow_state(*progress)});
                if *progress == Progress::Closed
                    && let Value::Object(m) = &mut body
                {
                    // Resolving needs a resolution code and notes on most instances.
                    m.insert("close_code".into(), json!(rules::SERVICENOW_CLOSE_CODE));
                    m.insert("close_notes".into(), json!(rules::SERVICENOW_CLOSE_NOTES));
                }
                sync.call("PATCH", &sync.servicenow_record(&link), Some(&body))
                    .await
            }
            (System::ServiceNow, Step::Comment(text)) => {
                let body = json!({"comments": text});
                sync.call("PATCH", &sync.servicenow_record(&link), Some(&body))
                    .await
            }
            (System::ServiceDeskPlus, step) => {
                let path = format!("/requests/{}", link.external_id);
                let (method, path, input) = match step {
                    Step::Priority(sev) => {
                        let source = &integration.settings.priority_source;
                        if !source.is_empty() && source != "severity" {
                            return Ok(skip(
                                "the priority follows a label or field, not the severity",
                            ));
                        }
                        let mut one = inc.clone();
                        one.incident_severity = *sev;
                        let Some(p) = sdp::priority(source, &integration.severity_mapping, &one)
                        else {
                            return Ok(skip("no priority is mapped for this severity"));
                        };
                        ("PUT", path, sdp::priority_input(&p))
                    }
                    Step::Status(progress) => ("PUT", path, sdp::status_input(*progress)),
                    Step::Comment(text) => ("POST", format!("{path}/notes"), sdp::note_input(text)),
                    Step::Create => return Ok(skip("unknown step")),
                };
                match sync
                    .sdp(&self.store, now)
                    .call(method, &path, Some(&input))
                    .await
                {
                    Ok(resp) => resp,
                    Err(e) => return not_sent(e, attempts, now, &link.external_key),
                }
            }
            (_, Step::Create) => return Ok(skip("unknown step")),
        };
        Ok(if resp.success() {
            (answered(&resp, "success", None, &link.external_key), None)
        } else {
            let mut o = failure(&resp, attempts, now);
            o.external_key = link.external_key.clone();
            (o, None)
        })
    }
}

/// A ServiceDesk Plus step that could not be sent: final (the sync log says why), retried
/// (Zoho accounts unreachable), or a store error.
fn not_sent(
    e: NotSent,
    attempts: u32,
    now: Millis,
    key: &str,
) -> Result<(TicketOutcome, Option<TicketLink>), StoreError> {
    match e {
        NotSent::Final(why) => Ok((outcome("failed", None, why, key), None)),
        NotSent::Transient(resp) => {
            let mut o = failure(&resp, attempts, now);
            o.external_key = key.to_string();
            Ok((o, None))
        }
        NotSent::Store(e) => Err(e),
    }
}

fn outcome(
    status: &'static str,
    retry_at: Option<Millis>,
    error: String,
    key: &str,
) -> TicketOutcome {
    TicketOutcome {
        status,
        retry_at,
        response_status: 0,
        error,
        external_key: key.to_string(),
    }
}

fn answered(
    resp: &TicketResponse,
    status: &'static str,
    retry_at: Option<Millis>,
    key: &str,
) -> TicketOutcome {
    TicketOutcome {
        status,
        retry_at,
        response_status: resp.status.map_or(0, i64::from),
        error: String::new(),
        external_key: key.to_string(),
    }
}

trait WithError {
    fn with_error(self, e: &str) -> Self;
}

impl WithError for TicketOutcome {
    fn with_error(mut self, e: &str) -> Self {
        self.error = e.to_string();
        self
    }
}

/// A failed request: retried when transient (`tickets::retry_at`), else final; the log keeps
/// the status, the error and the start of the answer (Jira names the refused fields there).
fn failure(resp: &TicketResponse, attempts: u32, now: Millis) -> TicketOutcome {
    let retry_at = tickets::retry_at(resp, attempts, now, rand::random());
    let mut error = resp.error.clone();
    if !resp.body.is_empty() {
        let shown: String = resp.body.chars().take(LOGGED_BODY_CHARS).collect();
        error = format!("{error}: {shown}");
    }
    TicketOutcome {
        status: if retry_at.is_some() {
            "queued"
        } else {
            "failed"
        },
        retry_at,
        response_status: resp.status.map_or(0, i64::from),
        error,
        external_key: String::new(),
    }
}

/// One integration's requests.
struct Requests<'a> {
    client: &'a TicketClient,
    integration: &'a TicketIntegration,
    base: &'a str,
}

impl Requests<'_> {
    async fn call(&self, method: &str, url: &str, body: Option<&Value>) -> TicketResponse {
        self.client
            .send(&TicketRequest {
                method,
                url,
                auth: Auth::Basic(
                    &self.integration.settings.username,
                    &self.integration.secret,
                ),
                body: body.map_or(Body::None, Body::Json),
                accept: "",
            })
            .await
    }

    fn sdp<'s>(&'s self, store: &'s Store, now: Millis) -> Sdp<'s> {
        Sdp {
            client: self.client,
            store,
            integration: self.integration,
            base: self.base,
            now,
        }
    }

    fn jira_issue(&self, link: &TicketLink, tail: &str) -> String {
        format!("{}/rest/api/2/issue/{}{tail}", self.base, link.external_key)
    }

    fn servicenow_record(&self, link: &TicketLink) -> String {
        format!("{}/api/now/table/incident/{}", self.base, link.external_id)
    }

    /// RSP-405 create: `(id, key, browse URL)` of the new issue.
    async fn jira_create(
        &self,
        inc: &Incident,
    ) -> (TicketResponse, Option<(String, String, String)>) {
        let s = &self.integration.settings;
        let priority = priority_for(
            System::Jira,
            &self.integration.severity_mapping,
            inc.incident_severity,
        );
        let body = jira_create_body(
            &s.project_key,
            &s.issue_type,
            inc,
            priority.as_deref(),
            &mapped_fields(inc, &self.integration.field_mapping),
        );
        let url = format!("{}/rest/api/2/issue", self.base);
        let resp = self.call("POST", &url, Some(&body)).await;
        let v = resp.json();
        let made = v.get("key").and_then(Value::as_str).map(|key| {
            let id = v
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (id, key.to_string(), format!("{}/browse/{key}", self.base))
        });
        (resp, made)
    }

    /// RSP-406 create: `(sys_id, number, record URL)` of the new ServiceNow incident.
    async fn servicenow_create(
        &self,
        inc: &Incident,
    ) -> (TicketResponse, Option<(String, String, String)>) {
        let urgency = priority_for(
            System::ServiceNow,
            &self.integration.severity_mapping,
            inc.incident_severity,
        );
        let body = servicenow_create_body(
            inc,
            urgency.as_deref(),
            &mapped_fields(inc, &self.integration.field_mapping),
        );
        let url = format!("{}/api/now/table/incident", self.base);
        let resp = self.call("POST", &url, Some(&body)).await;
        let v = resp.json();
        let result = v.get("result");
        let made = result
            .and_then(|r| r.get("sys_id"))
            .and_then(Value::as_str)
            .map(|sys_id| {
                let number = result
                    .and_then(|r| r.get("number"))
                    .and_then(Value::as_str)
                    .unwrap_or(sys_id)
                    .to_string();
                (
                    sys_id.to_string(),
                    number,
                    format!("{}/nav_to.do?uri=incident.do?sys_id={sys_id}", self.base),
                )
            });
        (resp, made)
    }

    /// RSP-405 status: the issue's transition whose target status (or name) is `status`.
    /// `Err` when the workflow offers none from the issue's current status.
    async fn jira_transition(
        &self,
        link: &TicketLink,
        status: &str,
    ) -> Result<TicketResponse, String> {
        let url = self.jira_issue(link, "/transitions");
        let listed = self.call("GET", &url, None).await;
        if !listed.success() {
            return Ok(listed);
        }
        let v = listed.json();
        let found = v
            .get("transitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| {
                let to = t
                    .get("to")
                    .and_then(|to| to.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
                to.eq_ignore_ascii_case(status) || name.eq_ignore_ascii_case(status)
            })
            .and_then(|t| t.get("id"))
            .and_then(|id| match id {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        let Some(id) = found else {
            return Err(format!(
                "the issue's workflow offers no transition to {status}"
            ));
        };
        let body = json!({"transition": {"id": id}});
        Ok(self.call("POST", &url, Some(&body)).await)
    }
}

/// The worker loop of `klaxon serve` (with `workers.delivery`).
pub async fn run(
    state: AppState,
    dispatcher: TicketDispatcher,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match dispatcher.run_once(state.clock.now()).await {
            Ok(round) if round.claimed > 0 => {
                failures = 0;
                continue;
            }
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %e, "ticket sync round failed");
            }
        }
        let wait = POLL * failures.clamp(1, 25);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

// ---- inbound: the push URLs of ServiceNow and ServiceDesk Plus --------------------------------

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ticket-sync/servicenow/push", post(push_servicenow))
        .route(
            "/ticket-sync/servicedeskplus/push",
            post(push_servicedeskplus),
        )
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn refused(status: StatusCode, message: &str) -> Response {
    answer(status, json!({"error": {"message": message}}))
}

async fn push_servicenow(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    push(&state, System::ServiceNow, query, &body).await
}

async fn push_servicedeskplus(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    push(&state, System::ServiceDeskPlus, query, &body).await
}

/// A pushed value as text: a string, a number, or an object's `name` (ServiceDesk Plus
/// sends `{"name": "Resolved"}` for statuses and urgencies).
fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Object(m)) => m
            .get("name")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

async fn push(state: &AppState, system: System, query: Option<String>, body: &[u8]) -> Response {
    let key = query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(&q).ok())
        .and_then(|params| {
            params
                .into_iter()
                .find(|(k, _)| k == "integration_key")
                .map(|(_, v)| v)
        })
        .unwrap_or_default();
    let integration = match state.store.ticket_sync_by_push_token(&key).await {
        Ok(Some(i)) if i.system == system.as_str() => i,
        Ok(_) => return refused(StatusCode::UNAUTHORIZED, "integration_key is invalid"),
        Err(e) => {
            tracing::error!(error = %e, "ticket sync push failed");
            return refused(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    if integration.status != "enabled" || !rules::inbound(&integration.direction) {
        return refused(
            StatusCode::FORBIDDEN,
            &format!(
                "this integration does not accept changes from {}",
                system.display()
            ),
        );
    }
    if body.len() > MAX_PUSH_BODY {
        return refused(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(body) else {
        return refused(StatusCode::BAD_REQUEST, "the body must be a JSON object");
    };
    let text = |k: &str| text_of(payload.get(k));
    // The two systems name the same things differently (RSP-406, RSP-407).
    let (id_field, inbound) = match system {
        System::ServiceDeskPlus => (
            "id",
            Inbound {
                system,
                action_type: text("action_type"),
                number: text("display_id"),
                sys_id: text("id"),
                short_description: text("subject"),
                description: text("description"),
                state: text("status"),
                urgency: text("urgency"),
                comments: text("note"),
                record: payload.clone(),
            },
        ),
        _ => (
            "sys_id",
            Inbound {
                system,
                action_type: text("action_type"),
                number: text("number"),
                sys_id: text("sys_id"),
                short_description: text("short_description"),
                description: text("description"),
                state: text("state"),
                urgency: text("urgency"),
                comments: text("comments"),
                record: payload.clone(),
            },
        ),
    };
    if inbound.sys_id.is_empty() {
        return refused(StatusCode::BAD_REQUEST, &format!("{id_field}: required"));
    }
    let result = match inbound.action_type.as_str() {
        "insert" => insert(state, &integration, &inbound).await,
        "update" => update(state, &integration, &inbound).await,
        _ => {
            return refused(
                StatusCode::BAD_REQUEST,
                "action_type: must be insert or update",
            );
        }
    };
    match result {
        Ok(incident_id) => answer(
            StatusCode::OK,
            json!({"data": {"incident_id": incident_id}}),
        ),
        Err(PushError::NotLinked) => refused(
            StatusCode::NOT_FOUND,
            &format!(
                "{id_field}: no incident is linked to this {} record",
                system.display()
            ),
        ),
        Err(PushError::Invalid(m)) => refused(StatusCode::BAD_REQUEST, &m),
        Err(PushError::Store(e)) => {
            tracing::error!(error = %e, "ticket sync push failed");
            refused(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// What Klaxon reads of a pushed record (RSP-406, RSP-407), in ServiceNow's terms.
struct Inbound {
    system: System,
    action_type: String,
    number: String,
    /// The record id (ServiceNow `sys_id`, ServiceDesk Plus `id`).
    sys_id: String,
    short_description: String,
    description: String,
    state: String,
    urgency: String,
    comments: String,
    /// The whole record: mapped custom fields are read from it.
    record: serde_json::Map<String, Value>,
}

impl Inbound {
    fn severity(&self) -> Option<klaxon_core::model::Severity> {
        match self.system {
            System::ServiceDeskPlus => sdp::severity_of_urgency(&self.urgency),
            _ => rules::severity_of_urgency(&self.urgency),
        }
    }

    fn state_action(&self, progress: Progress) -> StateAction {
        match self.system {
            System::ServiceDeskPlus => sdp::status_action(&self.state, progress),
            _ => rules::state_action(&self.state, progress),
        }
    }

    fn url(&self, integration: &TicketIntegration) -> String {
        let base = integration.settings.base_url.trim_end_matches('/');
        match self.system {
            System::ServiceDeskPlus => {
                sdp::request_url(base, integration.settings.platform == "cloud", &self.sys_id)
            }
            _ => format!("{base}/nav_to.do?uri=incident.do?sys_id={}", self.sys_id),
        }
    }
}

/// RSP-406 "other fields → custom fields, text fields only": the mapped values of the record
/// for the account's text custom fields.
async fn inbound_fields(
    state: &AppState,
    integration: &TicketIntegration,
    inbound: &Inbound,
) -> Result<Vec<(klaxon_core::response::FieldDefinition, Value)>, PushError> {
    let pairs = rules::inbound_fields(&integration.field_mapping, &inbound.record);
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let defs = state.store.custom_fields(integration.account_id).await?;
    Ok(pairs
        .into_iter()
        .filter_map(|(name, v)| {
            defs.iter()
                .find(|d| {
                    d.field_name == name && d.field_type == klaxon_core::response::FieldType::Text
                })
                .map(|d| (d.clone(), Value::String(v)))
        })
        .collect())
}

enum PushError {
    NotLinked,
    Invalid(String),
    Store(StoreError),
}

impl From<StoreError> for PushError {
    fn from(e: StoreError) -> Self {
        PushError::Store(e)
    }
}

/// RSP-406 `insert`: a new incident in the integration's channel, assigned by rule matching,
/// linked to the record. A record already linked is treated as an update.
async fn insert(
    state: &AppState,
    integration: &TicketIntegration,
    inbound: &Inbound,
) -> Result<String, PushError> {
    let account_id = integration.account_id;
    if state
        .store
        .ticket_link_by_external(account_id, integration.integration_id, &inbound.sys_id)
        .await?
        .is_some()
    {
        return update(state, integration, inbound).await;
    }
    let Some(channel_id) = integration.channel_ids.first().copied() else {
        return Err(PushError::Invalid(
            "the integration has no channel to create incidents in".into(),
        ));
    };
    let title: String = if inbound.short_description.is_empty() {
        format!("{} {}", inbound.system.display(), inbound.number)
    } else {
        inbound.short_description.chars().take(512).collect()
    };
    let severity = inbound
        .severity()
        .unwrap_or(klaxon_core::model::Severity::Warning);
    let fields = inbound_fields(state, integration, inbound).await?;
    let now = state.clock.now();
    let incident_id = klaxon_core::ids::object_id(now, rand::random());
    // The link is written first: the creation's own auto trigger then sees a linked incident
    // and does not send it back as a new ticket.
    let link = TicketLink {
        account_id,
        integration_id: integration.integration_id,
        incident_id: incident_id.clone(),
        external_id: inbound.sys_id.clone(),
        external_key: inbound.number.clone(),
        external_url: inbound.url(integration),
        last_urgency: inbound.urgency.clone(),
        last_comment: inbound.comments.clone(),
        created_at: now,
    };
    state.store.insert_ticket_link(&link).await?;
    let incident = Incident {
        num: klaxon_core::ids::incident_num(&incident_id),
        incident_id: incident_id.clone(),
        account_id,
        channel_id,
        title,
        description: inbound.description.chars().take(6144).collect(),
        incident_severity: severity,
        incident_status: Status::from(severity),
        progress: Progress::Triggered,
        start_time: now,
        last_time: now,
        end_time: 0,
        ack_time: 0,
        close_time: 0,
        created_at: now,
        updated_at: now,
        creator_id: 0,
        closer_id: 0,
        close_source: String::new(),
        labels: Labels::new(),
        alert_cnt: 0,
        active_alert_cnt: 0,
        alert_event_cnt: 0,
        group_method: "n".to_string(),
        group_key: String::new(),
        group_text: String::new(),
        last_merge_time: now,
        first_alert_id: String::new(),
        first_alert_key: String::new(),
        integration_id: 0,
        integration_type: String::new(),
        is_flapping: false,
        storm_level: 0,
        manual_overrides: Vec::new(),
        response: IncidentResponse::default(),
    };
    let created = state
        .store
        .create_incident(incident, now, move |e, inc, ctx| {
            e.on_auto_created(inc, ctx.rules, &ctx.matching, None);
            // The record's mapped custom fields, recorded after the creation (RSP-406).
            for (def, v) in &fields {
                e.set_field(inc, 0, def, v)?;
            }
            Ok(())
        })
        .await;
    match created {
        Ok(Ok(_)) => {
            state.wake_senders();
            Ok(incident_id)
        }
        Ok(Err(e)) => {
            state
                .store
                .delete_ticket_link(account_id, integration.integration_id, &incident_id)
                .await?;
            Err(PushError::Invalid(e.to_string()))
        }
        Err(e) => {
            state
                .store
                .delete_ticket_link(account_id, integration.integration_id, &incident_id)
                .await?;
            Err(e.into())
        }
    }
}

/// RSP-406 `update`: the mapped changes to the linked incident. Empty values never overwrite;
/// only an urgency change sets the severity; a comment is added once; the state acts per
/// `klaxon_core::ticket_sync::state_action`. What this queues for the same integration is
/// skipped: it came from there.
async fn update(
    state: &AppState,
    integration: &TicketIntegration,
    inbound: &Inbound,
) -> Result<String, PushError> {
    let account_id = integration.account_id;
    let Some(link) = state
        .store
        .ticket_link_by_external(account_id, integration.integration_id, &inbound.sys_id)
        .await?
    else {
        return Err(PushError::NotLinked);
    };
    let incident_id = link.incident_id.clone();
    let mark = state.store.last_ticket_job_seq().await?;
    let severity = (!inbound.urgency.is_empty() && inbound.urgency != link.last_urgency)
        .then(|| inbound.severity())
        .flatten();
    let fields = inbound_fields(state, integration, inbound).await?;
    let comment = (!inbound.comments.is_empty() && inbound.comments != link.last_comment)
        .then(|| inbound.comments.chars().take(1024).collect::<String>());
    let title: Option<String> = (!inbound.short_description.is_empty())
        .then(|| inbound.short_description.chars().take(512).collect());
    let description: Option<String> =
        (!inbound.description.is_empty()).then(|| inbound.description.chars().take(6144).collect());
    let action = |p: Progress| inbound.state_action(p);
    let reopened = format!("reopened in {}", inbound.system.display());
    let result = state
        .store
        .incident_action(
            account_id,
            &incident_id,
            state.clock.now(),
            move |e, inc, ctx| {
                if let Some(t) = &title {
                    e.edit_text(inc, 0, "title", t)?;
                }
                if let Some(d) = &description {
                    e.edit_text(inc, 0, "description", d)?;
                }
                if let Some(sev) = severity {
                    e.edit_severity(inc, 0, sev);
                }
                for (def, v) in &fields {
                    e.set_field(inc, 0, def, v)?;
                }
                if let Some(c) = &comment {
                    // Muted: it came from ServiceNow and is not forwarded again (RSP-080).
                    e.comment(inc, 0, c, true)?;
                }
                match action(inc.progress) {
                    StateAction::Nothing => {}
                    StateAction::Reopen => {
                        e.reopen(inc, 0, &reopened, ctx.rule, ctx.rules, &ctx.matching)?;
                    }
                    StateAction::Snooze(minutes) => {
                        e.snooze(inc, 0, minutes, "console", ctx.rule)?
                    }
                    StateAction::Close => e.close(inc, 0, "console", None, None),
                }
                Ok(())
            },
        )
        .await?;
    match result {
        ActionResult::Done => {}
        ActionResult::NotFound => return Err(PushError::NotLinked),
        ActionResult::Refused(e) => return Err(PushError::Invalid(e.to_string())),
    }
    state
        .store
        .remember_ticket_inbound(
            account_id,
            integration.integration_id,
            &incident_id,
            if inbound.urgency.is_empty() {
                &link.last_urgency
            } else {
                &inbound.urgency
            },
            if inbound.comments.is_empty() {
                &link.last_comment
            } else {
                &inbound.comments
            },
        )
        .await?;
    state
        .store
        .skip_ticket_jobs_after(
            account_id,
            integration.integration_id,
            &incident_id,
            mark,
            &format!("came from {}", inbound.system.display()),
            state.clock.now(),
        )
        .await?;
    state.wake_senders();
    Ok(incident_id)
}
