//! Outbound webhook delivery (response.md §2.23, ingest.md §2.21; docs/webhooks.md): claims
//! due rows of the webhook outbox, builds the payload of each event (RSP-373, ING-251) with
//! the same wire forms as the Open API, applies the custom body (RSP-376, RSP-377), sends it
//! signed through `klaxon_notify::webhook`, and records the attempt (RSP-379).
//!
//! - The incident or alert in the payload is the state the change left it in (a snapshot
//!   written with the event); names (channel, people, account) are read when the body is
//!   built, at the first attempt. The body is then kept: a retry sends the same bytes with the
//!   same `event_id`. Events written without a snapshot (a manual alert move, `a_close`) show
//!   the alert as it is when sent.
//! - Rows are claimed under a lease and retries wait as rows, so a restart or a second node
//!   loses nothing; the claim hands out only the oldest queued row per (integration, subject),
//!   so one incident's events reach an endpoint one at a time, in order.
//! - Every node with `workers.delivery` runs it. Metrics: `klaxon_webhook_attempts_total
//!   {outcome}`.

use klaxon_core::model::{Alert, Incident, Millis};
use klaxon_core::webhook::{self, HISTORY_KEEP_MS};
use klaxon_notify::webhook::{WebhookRequest, WebhookSender};
use klaxon_store::{PendingWebhook, Store, StoreError, WebhookAttempt};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use tokio::sync::watch;

use crate::state::AppState;
use crate::wire;

/// How often the history purge runs (RSP-379: 7 days).
const PURGE_EVERY_MS: Millis = 3_600_000;
/// Rows claimed per round (sent concurrently; each is a different subject).
const BATCH: i64 = 16;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookRound {
    pub claimed: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub retried: usize,
    /// Results not written because the claim had been lost meanwhile.
    pub lost: usize,
}

/// The webhook sender of one node; cheap to clone.
#[derive(Clone)]
pub struct WebhookDispatcher {
    store: Store,
    sender: WebhookSender,
    base_url: String,
    holder: String,
}

impl WebhookDispatcher {
    /// `base_url` is the console's public URL (`detail_url`); `holder` names this node's
    /// claims; `allow_private` lets endpoints be private addresses (RSP-380).
    pub fn new(
        store: Store,
        base_url: &str,
        holder: &str,
        allow_private: bool,
    ) -> Result<WebhookDispatcher, String> {
        Ok(WebhookDispatcher {
            store,
            sender: WebhookSender::new(allow_private)?,
            base_url: base_url.trim_end_matches('/').to_string(),
            holder: holder.to_string(),
        })
    }

    /// Claims due rows at `now` and makes one attempt for each.
    pub async fn run_once(&self, now: Millis) -> Result<WebhookRound, StoreError> {
        let claimed = self.store.claim_webhooks(&self.holder, now, BATCH).await?;
        let mut round = WebhookRound {
            claimed: claimed.len(),
            ..WebhookRound::default()
        };
        let mut tasks = tokio::task::JoinSet::new();
        for p in claimed {
            let this = self.clone();
            tasks.spawn(async move { this.attempt(p, now).await });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(Some(a))) if a.success => round.succeeded += 1,
                Ok(Ok(Some(a))) if a.retry_at.is_some() => round.retried += 1,
                Ok(Ok(Some(_))) => round.failed += 1,
                Ok(Ok(None)) => round.lost += 1,
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error
                        .get_or_insert(StoreError::Database(format!("webhook task failed: {e}")));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(round),
        }
    }

    /// Runs rounds at `now` until nothing is due; returns the sum.
    pub async fn drain(&self, now: Millis) -> Result<WebhookRound, StoreError> {
        let mut total = WebhookRound::default();
        loop {
            let r = self.run_once(now).await?;
            if r.claimed == 0 {
                return Ok(total);
            }
            total.claimed += r.claimed;
            total.succeeded += r.succeeded;
            total.failed += r.failed;
            total.retried += r.retried;
            total.lost += r.lost;
        }
    }

    /// One attempt of one claimed row; `None` when the claim was lost before the result was
    /// written.
    async fn attempt(
        &self,
        p: PendingWebhook,
        now: Millis,
    ) -> Result<Option<WebhookAttempt>, StoreError> {
        let body = if p.body.is_empty() {
            match self.body(&p).await? {
                Ok(body) => body,
                Err(reason) => {
                    // The subject is gone (purged): nothing can be sent, ever.
                    let a = WebhookAttempt {
                        body: String::new(),
                        success: false,
                        response_status: 0,
                        response_body: String::new(),
                        latency_ms: 0,
                        error: reason,
                        retry_at: None,
                    };
                    return self.record(&p, a, now).await;
                }
            }
        } else {
            p.body.clone()
        };
        let response = self
            .sender
            .send(&WebhookRequest {
                endpoint: &p.endpoint,
                headers: &p.headers,
                body: body.as_bytes(),
                event_id: &p.event_id,
                event_type: &p.event_type,
                signing_secret: &p.signing_secret,
                timestamp: now.div_euclid(1000),
            })
            .await;
        let success = response.success();
        let retry_at = if success {
            None
        } else {
            webhook::retry_after(response.failure, p.attempts + 1, now, rand::random())
        };
        metrics::counter!(
            "klaxon_webhook_attempts_total",
            "outcome" => if success { "success" } else if retry_at.is_some() { "retry" } else { "failed" }
        )
        .increment(1);
        if !success {
            tracing::info!(
                integration_id = p.integration_id,
                event_id = %p.event_id,
                event_type = %p.event_type,
                error = %response.error,
                retry = retry_at.is_some(),
                "webhook attempt failed"
            );
        }
        let a = WebhookAttempt {
            body,
            success,
            response_status: response.status.map_or(0, i64::from),
            response_body: response.body,
            latency_ms: response.latency_ms,
            error: response.error,
            retry_at,
        };
        self.record(&p, a, now).await
    }

    async fn record(
        &self,
        p: &PendingWebhook,
        a: WebhookAttempt,
        now: Millis,
    ) -> Result<Option<WebhookAttempt>, StoreError> {
        let kept = self
            .store
            .record_webhook_attempt(&self.holder, p, &a, now)
            .await?;
        Ok(kept.then_some(a))
    }

    /// The JSON body of an event: the default payload (RSP-373), through the integration's
    /// custom body and value mapping. `Err` when the subject no longer exists.
    async fn body(&self, p: &PendingWebhook) -> Result<Result<String, String>, StoreError> {
        let Some(payload) = self.payload(p).await? else {
            return Ok(Err(format!(
                "{} {} no longer exists",
                subject_kind(p),
                p.subject_id
            )));
        };
        let rendered = webhook::render_body(&p.custom_body, &payload, &p.value_mapping);
        Ok(Ok(rendered.to_string()))
    }

    /// The default payload: `{event_time, event_type, event_id, person?, incident | alert}`.
    pub async fn payload(&self, p: &PendingWebhook) -> Result<Option<Value>, StoreError> {
        let subject = if p.kind == "alert_webhook" {
            match alert_object(&self.store, p.account_id, &p.subject_id, &p.snapshot).await? {
                Some(a) => ("alert", a),
                None => return Ok(None),
            }
        } else {
            match incident_object(
                &self.store,
                &self.base_url,
                p.account_id,
                &p.subject_id,
                &p.snapshot,
            )
            .await?
            {
                Some(i) => ("incident", i),
                None => return Ok(None),
            }
        };
        let mut out = Map::new();
        out.insert("event_time".into(), json!(p.event_time));
        out.insert("event_type".into(), json!(p.event_type));
        out.insert("event_id".into(), json!(p.event_id));
        if p.person_id > 0
            && let Some(person) = persons(&self.store, p.account_id, &[p.person_id])
                .await?
                .remove(&p.person_id)
        {
            out.insert("person".into(), person);
        }
        out.insert(subject.0.into(), subject.1);
        Ok(Some(Value::Object(out)))
    }
}

fn subject_kind(p: &PendingWebhook) -> &'static str {
    if p.kind == "alert_webhook" {
        "alert"
    } else {
        "incident"
    }
}

/// `{person_id, person_name, email}` of members (ING-251 Person), by id.
async fn persons(
    store: &Store,
    account_id: i64,
    ids: &[i64],
) -> Result<HashMap<i64, Value>, StoreError> {
    let wanted: Vec<i64> = ids.iter().copied().filter(|id| *id > 0).collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(store
        .member_contacts(account_id, &wanted)
        .await?
        .into_iter()
        .map(|m| {
            (
                m.member_id,
                json!({"person_id": m.member_id, "person_name": m.name, "email": m.email}),
            )
        })
        .collect())
}

/// RSP-373's incident object: the Open API incident (openapi-compat.md 2.3) plus
/// `account_name`, `detail_url`, people as Person objects and `responder_ids`. The incident is
/// `snapshot` (its state when the event happened) or, without one, the stored row; names are
/// read now.
pub async fn incident_object(
    store: &Store,
    base_url: &str,
    account_id: i64,
    incident_id: &str,
    snapshot: &str,
) -> Result<Option<Value>, StoreError> {
    let taken = serde_json::from_str::<Incident>(snapshot)
        .ok()
        .filter(|i| i.incident_id == incident_id && i.account_id == account_id);
    let inc = match taken {
        Some(i) => i,
        None => match store.incident(account_id, incident_id).await? {
            Some(i) => i,
            None => return Ok(None),
        },
    };
    let mut names = HashMap::new();
    if inc.channel_id > 0
        && let Some(name) = store.channel_name(account_id, inc.channel_id).await?
    {
        names.insert(inc.channel_id, name);
    }
    let mut obj = wire::incident(&inc, &names, base_url);
    let account_name = store
        .account(account_id)
        .await?
        .map(|a| a.account_name)
        .unwrap_or_default();
    let mut ids: Vec<i64> = inc
        .response
        .responders
        .iter()
        .map(|r| r.person_id)
        .collect();
    ids.push(inc.creator_id);
    ids.push(inc.closer_id);
    let people = persons(store, account_id, &ids).await?;
    if let Value::Object(m) = &mut obj {
        m.insert("account_name".into(), json!(account_name));
        let responders: Vec<Value> = inc
            .response
            .responders
            .iter()
            .map(|r| {
                let person = people.get(&r.person_id);
                json!({
                    "person_id": r.person_id,
                    "person_name": person.and_then(|p| p.get("person_name")).cloned().unwrap_or(json!("")),
                    "email": person.and_then(|p| p.get("email")).cloned().unwrap_or(json!("")),
                    "assigned_at": wire::secs(r.assigned_at),
                    "acknowledged_at": wire::secs(r.acknowledged_at),
                })
            })
            .collect();
        let responder_ids: Vec<i64> = inc
            .response
            .responders
            .iter()
            .map(|r| r.person_id)
            .collect();
        m.insert("responders".into(), Value::Array(responders));
        m.insert("responder_ids".into(), json!(responder_ids));
        // RSP-373: `creator`/`creator_id` only for manual incidents, `closer` only for
        // manual closes.
        match people.get(&inc.creator_id) {
            Some(p) if inc.creator_id > 0 => {
                m.insert("creator".into(), p.clone());
            }
            _ => {
                m.remove("creator_id");
            }
        }
        if inc.closer_id > 0
            && let Some(p) = people.get(&inc.closer_id)
        {
            m.insert("closer".into(), p.clone());
        }
        if m.get("assigned_to").is_some_and(Value::is_null) {
            m.remove("assigned_to");
        }
    }
    Ok(Some(obj))
}

/// RSP-373 / ING-251's alert object, from `snapshot` (the alert when the event happened) or,
/// without one, the stored row.
pub async fn alert_object(
    store: &Store,
    account_id: i64,
    alert_id: &str,
    snapshot: &str,
) -> Result<Option<Value>, StoreError> {
    let taken = serde_json::from_str::<Alert>(snapshot)
        .ok()
        .filter(|a| a.alert_id == alert_id && a.account_id == account_id);
    let a = match taken {
        Some(a) => a,
        None => match store.alert(account_id, alert_id).await? {
            Some(a) => a,
            None => return Ok(None),
        },
    };
    let channel_name = if a.channel_id > 0 {
        store
            .channel_name(account_id, a.channel_id)
            .await?
            .unwrap_or_default()
    } else {
        String::new()
    };
    let mut obj = alert_json(&a, &channel_name);
    if !a.incident_id.is_empty()
        && let Some(inc) = store.incident(account_id, &a.incident_id).await?
        && let Value::Object(m) = &mut obj
    {
        m.insert(
            "incident".into(),
            json!({"incident_id": inc.incident_id, "title": inc.title}),
        );
    }
    Ok(Some(obj))
}

/// The alert object of RSP-373 / ING-251 without its `incident` reference (the payload of a
/// custom action lists the incident's alerts inside the incident, RSP-401).
pub fn alert_json(a: &Alert, channel_name: &str) -> Value {
    json!({
        "alert_id": a.alert_id,
        "alert_key": a.alert_key,
        "title": a.title,
        "title_rule": a.title_rule,
        "description": a.description,
        "alert_severity": a.alert_severity.as_str(),
        "alert_status": a.alert_status.as_str(),
        "channel_id": a.channel_id,
        "channel_name": channel_name,
        "data_source_id": a.integration_id,
        "data_source_name": a.integration_name,
        "data_source_type": a.integration_type,
        "created_at": wire::secs(a.created_at),
        "updated_at": wire::secs(a.updated_at),
        "start_time": wire::secs(a.start_time),
        "last_time": wire::secs(a.last_time),
        "end_time": wire::secs(a.end_time),
        "labels": a.labels,
        "event_cnt": a.event_cnt,
    })
}

/// The worker loop of `klaxon serve` (with `workers.delivery`).
pub async fn run(
    state: AppState,
    dispatcher: WebhookDispatcher,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    let mut purged_at: Millis = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = state.clock.now();
        if now.saturating_sub(purged_at) >= PURGE_EVERY_MS {
            purged_at = now;
            if let Err(e) = state
                .store
                .purge_webhook_history(now.saturating_sub(HISTORY_KEEP_MS))
                .await
            {
                tracing::error!(error = %e, "purging the webhook history failed");
            }
        }
        match dispatcher.run_once(now).await {
            Ok(round) if round.claimed > 0 => {
                failures = 0;
                continue;
            }
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %e, "webhook delivery round failed");
            }
        }
        // Idle: `workers.idle_poll_ms` looks for rows of other nodes and retries coming due;
        // this node's own commits wake the worker at once.
        let wait = state.config.workers.idle_poll() * failures.clamp(1, 25);
        tokio::select! {
            _ = state.webhook_ready.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}
