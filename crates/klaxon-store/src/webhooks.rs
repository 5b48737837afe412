//! Outbound alert and incident webhooks (response.md 1.18, §2.23; ingest.md §2.21; migration
//! 0023): the integrations, the durable outbox of webhook events and the invocation history.
//!
//! - **Decided with the change.** [`enqueue`] runs inside the transaction that writes the
//!   incident or alert change (`response::write_changes`, the inbox batch), and writes one
//!   `webhook_deliveries` row per (event, subscribed integration) (RSP-378). Nothing is
//!   written when the account has no enabled webhook, so the common case costs one read.
//! - **Delivered afterwards, at least once.** A worker claims due rows under a lease like the
//!   notification outbox's; only the oldest queued row of each (integration, subject) is
//!   eligible, so the events of one incident or alert reach an endpoint one at a time and in
//!   order, the retry included (RSP-375). Retries wait as rows (`next_attempt_at`).
//! - **Halt (RSP-008).** A claim for a tenant that is not served ends the row `failed` with
//!   `withheld:<state>` without sending anything.
//! - Every attempt is one `webhook_attempts` row (RSP-379), written with the delivery's new
//!   state in one transaction, and purged after 7 days.

use std::collections::{BTreeMap, HashMap};

use klaxon_core::model::Millis;
use klaxon_core::webhook::{Kind, Subscription};
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::db::{Sql, is_sqlite};
use crate::rows::{get_i64, get_str};
use crate::sealing::{Opener, SecretSlot, seal_value};
use crate::{Result, Store, StoreError};

const TABLE: &str = "webhook_integrations";

/// The custom headers of a row (sealed at rest: they carry the receiver's credentials).
async fn open_headers(
    opener: &mut Opener<'_>,
    account_id: i64,
    integration_id: i64,
    raw: &str,
) -> Result<BTreeMap<String, String>> {
    let slot = SecretSlot::new(account_id, TABLE, "headers", integration_id);
    let text = opener.open(slot, raw).await?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}

/// How long a claim on a webhook delivery lasts: well above one attempt (2 s timeout).
pub const WEBHOOK_CLAIM_MS: Millis = 30_000;

/// An outbound webhook integration (response.md 1.18). The signing secret is not part of it:
/// it is shown once, at creation.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookIntegration {
    pub integration_id: i64,
    pub account_id: i64,
    pub kind: String,
    pub name: String,
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub event_types: Vec<String>,
    pub channel_ids: Vec<i64>,
    pub custom_body: String,
    pub value_mapping: BTreeMap<String, Map<String, Value>>,
    pub team_id: i64,
    /// `enabled` | `disabled`.
    pub status: String,
    pub creator_id: i64,
    pub updated_by: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// The editable fields, already validated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDraft {
    pub kind: String,
    pub name: String,
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub event_types: Vec<String>,
    pub channel_ids: Vec<i64>,
    pub custom_body: String,
    pub value_mapping: BTreeMap<String, Map<String, Value>>,
    pub team_id: i64,
    pub status: String,
}

/// One webhook event, decided inside the transaction of the change that fired it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WebhookEvent {
    pub account_id: i64,
    pub event_type: &'static str,
    /// The incident id (incident webhooks) or alert id (alert webhooks).
    pub subject_id: String,
    /// The subject's channel; `None` for an alert whose channel is looked up.
    pub channel_id: Option<i64>,
    pub event_time: Millis,
    /// The acting person, 0 for the system (RSP-373 `person`).
    pub person_id: i64,
}

/// A claimed delivery with its integration's sending settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingWebhook {
    pub seq: i64,
    pub account_id: i64,
    pub integration_id: i64,
    pub kind: String,
    pub event_id: String,
    pub event_type: String,
    pub subject_id: String,
    pub event_time: Millis,
    pub person_id: i64,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The incident or alert row as the change left it (JSON; "" = read it when sending).
    pub snapshot: String,
    /// The body of the first attempt ("" before it): a retry sends the same bytes.
    pub body: String,
    pub endpoint: String,
    pub headers: BTreeMap<String, String>,
    pub custom_body: String,
    pub value_mapping: BTreeMap<String, Map<String, Value>>,
    pub signing_secret: String,
}

/// The result of one attempt, for the history and the delivery row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub body: String,
    pub success: bool,
    /// 0 when no HTTP response came.
    pub response_status: i64,
    /// At most 4 KB (RSP-379).
    pub response_body: String,
    pub latency_ms: i64,
    pub error: String,
    /// The next attempt's instant, when this failure is retried (RSP-374).
    pub retry_at: Option<Millis>,
}

/// One row of the invocation history (RSP-379).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHistoryItem {
    pub attempt_id: String,
    pub integration_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub ref_id: String,
    pub attempt: i64,
    /// `success` | `failed`.
    pub status: String,
    pub endpoint: String,
    pub request_body: String,
    pub response_status: i64,
    pub response_body: String,
    pub latency_ms: i64,
    pub error: String,
    pub created_at: Millis,
}

/// `/webhook/history/list` filters (openapi-compat.md 2.6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHistoryFilter {
    pub start_time: Millis,
    pub end_time: Millis,
    pub limit: i64,
    pub search_after_ctx: Option<String>,
    pub ref_id: String,
    pub integration_id: i64,
    pub event_types: Vec<String>,
    pub status: String,
}

/// One page of history, newest first, with the cursor of the next page if there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHistoryPage {
    pub items: Vec<WebhookHistoryItem>,
    pub search_after_ctx: Option<String>,
}

/// The delivery state of one outbox row (tests and diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDeliveryState {
    pub integration_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub subject_id: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: String,
}

const INTEGRATION_COLUMNS: &str = "integration_id, account_id, kind, name, endpoint, headers, \
     event_types, channel_ids, custom_body, value_mapping, team_id, status, creator_id, \
     updated_by, created_at, updated_at";

fn json_col<T: serde::de::DeserializeOwned + Default>(row: &sqlx::any::AnyRow, col: &str) -> T {
    get_str(row, col)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// A row, with its headers still as stored (see [`Store::opened_webhooks`]).
fn integration_row(row: &sqlx::any::AnyRow) -> Result<(WebhookIntegration, String)> {
    let w = WebhookIntegration {
        integration_id: get_i64(row, "integration_id")?,
        account_id: get_i64(row, "account_id")?,
        kind: get_str(row, "kind")?,
        name: get_str(row, "name")?,
        endpoint: get_str(row, "endpoint")?,
        headers: BTreeMap::new(),
        event_types: json_col(row, "event_types"),
        channel_ids: json_col(row, "channel_ids"),
        custom_body: get_str(row, "custom_body")?,
        value_mapping: json_col(row, "value_mapping"),
        team_id: get_i64(row, "team_id")?,
        status: get_str(row, "status")?,
        creator_id: get_i64(row, "creator_id")?,
        updated_by: get_i64(row, "updated_by")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    };
    Ok((w, get_str(row, "headers")?))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A new 32-hex webhook `event_id` (ING-251, RSP-373).
fn new_event_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Writes the delivery rows of `events` (RSP-378): for each event, one row per enabled
/// integration of its account that subscribes to its type and channel. Runs in the caller's
/// transaction. Events of one subject keep their order (`seq`). `snapshot` gives the subject's
/// row as JSON for an event that has a subscriber (asked only then, so an account without
/// webhooks pays nothing for it).
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    events: &[WebhookEvent],
    now: Millis,
    snapshot: impl Fn(&WebhookEvent) -> Option<String>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut subscribers: HashMap<i64, Vec<(i64, Subscription)>> = HashMap::new();
    let mut alert_channels: HashMap<String, i64> = HashMap::new();
    let mut rows: Vec<(i64, &WebhookEvent, String, std::sync::Arc<String>)> = Vec::new();
    for e in events {
        if let std::collections::hash_map::Entry::Vacant(slot) = subscribers.entry(e.account_id) {
            slot.insert(subscriptions(conn, e.account_id).await?);
        }
        let Some(subs) = subscribers.get(&e.account_id).filter(|s| !s.is_empty()) else {
            continue;
        };
        let channel_id = match e.channel_id {
            Some(c) => c,
            None => match alert_channels.get(&e.subject_id) {
                Some(c) => *c,
                None => {
                    let c = alert_channel(conn, e.account_id, &e.subject_id).await?;
                    alert_channels.insert(e.subject_id.clone(), c);
                    c
                }
            },
        };
        let event_id = new_event_id();
        let mut state: Option<std::sync::Arc<String>> = None;
        for (integration_id, sub) in subs {
            if sub.wants(e.event_type, channel_id) {
                let state = state
                    .get_or_insert_with(|| std::sync::Arc::new(snapshot(e).unwrap_or_default()))
                    .clone();
                rows.push((*integration_id, e, event_id.clone(), state));
            }
        }
    }
    for chunk in rows.chunks(64) {
        let mut sql = Sql::new(
            "INSERT INTO webhook_deliveries (account_id, integration_id, event_id, event_type, \
             subject_id, event_time, person_id, snapshot, created_at) VALUES ",
        );
        for (i, (integration_id, e, event_id, state)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(e.account_id)
                .push(", ")
                .bind(*integration_id)
                .push(", ")
                .bind(event_id.as_str())
                .push(", ")
                .bind(e.event_type)
                .push(", ")
                .bind(e.subject_id.as_str())
                .push(", ")
                .bind(e.event_time)
                .push(", ")
                .bind(e.person_id)
                .push(", ")
                .bind(state.as_str())
                .push(", ")
                .bind(now)
                .push(")");
        }
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn subscriptions(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<Vec<(i64, Subscription)>> {
    let mut sql = Sql::new(
        "SELECT integration_id, kind, event_types, channel_ids FROM webhook_integrations \
         WHERE status = 'enabled' AND account_id = ",
    );
    sql.bind(account_id).push(" ORDER BY integration_id");
    let mut out = Vec::new();
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let Some(kind) = Kind::parse(&get_str(&row, "kind")?) else {
            continue;
        };
        out.push((
            get_i64(&row, "integration_id")?,
            Subscription {
                kind,
                enabled: true,
                event_types: json_col(&row, "event_types"),
                channel_ids: json_col(&row, "channel_ids"),
            },
        ));
    }
    Ok(out)
}

async fn alert_channel(conn: &mut AnyConnection, account_id: i64, alert_id: &str) -> Result<i64> {
    let mut sql = Sql::new("SELECT channel_id FROM alerts WHERE account_id = ");
    sql.bind(account_id).push(" AND alert_id = ").bind(alert_id);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => get_i64(&row, "channel_id"),
        None => Ok(0),
    }
}

/// Whether an integration id is in use by any kind of integration (inbound, webhook, IM,
/// custom action or link): they share one id space.
pub(crate) async fn id_taken(conn: &mut AnyConnection, id: i64) -> Result<bool> {
    for table in [
        "integrations",
        "webhook_integrations",
        "im_integrations",
        "custom_integrations",
        "ticket_sync_integrations",
    ] {
        let mut sql = Sql::new("SELECT integration_id FROM ");
        sql.push(table).push(" WHERE integration_id = ").bind(id);
        if sql
            .query_on(conn)
            .fetch_optional(&mut *conn)
            .await?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A random Flashduty-like 13-digit id; callers draw again when it is taken.
pub(crate) fn candidate_id() -> i64 {
    1_000_000_000_000 + rand::random_range(0..8_000_000_000_000i64)
}

/// A new id in the shared integration id space: Flashduty-like 13 digits, drawn again on a
/// clash with any kind of integration.
pub(crate) async fn draw_integration_id(conn: &mut AnyConnection) -> Result<i64> {
    for _ in 0..16 {
        let candidate = candidate_id();
        if !id_taken(conn, candidate).await? {
            return Ok(candidate);
        }
    }
    Err(StoreError::Database(
        "no free integration id after 16 draws".into(),
    ))
}

/// Ends a claimed row without sending: halted tenant or integration gone.
async fn withhold(conn: &mut AnyConnection, seq: i64, reason: &str, now: Millis) -> Result<()> {
    let mut sql = Sql::new("UPDATE webhook_deliveries SET status = 'failed', last_error = ");
    sql.bind(reason)
        .push(", claimed_by = '', claim_until = 0, finished_at = ")
        .bind(now)
        .push(" WHERE seq = ")
        .bind(seq);
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

const PENDING_COLUMNS: &str = "d.seq, d.account_id, d.integration_id, d.event_id, d.event_type, \
     d.subject_id, d.event_time, d.person_id, d.attempts, d.snapshot, d.body, w.kind, w.endpoint, \
     w.headers, w.custom_body, w.value_mapping, w.signing_secret, w.status AS w_status";

/// A claimed row, with its headers and signing secret still as stored.
fn pending_row(row: &sqlx::any::AnyRow) -> Result<(PendingWebhook, String)> {
    let p = PendingWebhook {
        seq: get_i64(row, "seq")?,
        account_id: get_i64(row, "account_id")?,
        integration_id: get_i64(row, "integration_id")?,
        kind: get_str(row, "kind")?,
        event_id: get_str(row, "event_id")?,
        event_type: get_str(row, "event_type")?,
        subject_id: get_str(row, "subject_id")?,
        event_time: get_i64(row, "event_time")?,
        person_id: get_i64(row, "person_id")?,
        attempts: get_i64(row, "attempts")?,
        snapshot: get_str(row, "snapshot")?,
        body: get_str(row, "body")?,
        endpoint: get_str(row, "endpoint")?,
        headers: BTreeMap::new(),
        custom_body: get_str(row, "custom_body")?,
        value_mapping: json_col(row, "value_mapping"),
        signing_secret: get_str(row, "signing_secret")?,
    };
    Ok((p, get_str(row, "headers")?))
}

fn history_row(row: &sqlx::any::AnyRow) -> Result<WebhookHistoryItem> {
    Ok(WebhookHistoryItem {
        attempt_id: get_str(row, "attempt_id")?,
        integration_id: get_i64(row, "integration_id")?,
        event_id: get_str(row, "event_id")?,
        event_type: get_str(row, "event_type")?,
        ref_id: get_str(row, "ref_id")?,
        attempt: get_i64(row, "attempt")?,
        status: get_str(row, "status")?,
        endpoint: get_str(row, "endpoint")?,
        request_body: get_str(row, "request_body")?,
        response_status: get_i64(row, "response_status")?,
        response_body: get_str(row, "response_body")?,
        latency_ms: get_i64(row, "latency_ms")?,
        error: get_str(row, "error")?,
        created_at: get_i64(row, "created_at")?,
    })
}

const HISTORY_COLUMNS: &str = "seq, attempt_id, integration_id, event_id, event_type, ref_id, \
     attempt, status, endpoint, request_body, response_status, response_body, latency_ms, \
     error, created_at";

impl Store {
    /// Opens the headers of rows read by [`integration_row`].
    async fn opened_webhooks(
        &self,
        rows: Vec<(WebhookIntegration, String)>,
    ) -> Result<Vec<WebhookIntegration>> {
        let mut opener = Opener::new(self);
        let mut out = Vec::with_capacity(rows.len());
        for (mut w, raw) in rows {
            w.headers = open_headers(&mut opener, w.account_id, w.integration_id, &raw).await?;
            out.push(w);
        }
        Ok(out)
    }

    /// Creates an outbound webhook with a fresh id in the shared integration id space.
    pub async fn create_webhook(
        &self,
        account_id: i64,
        draft: &WebhookDraft,
        signing_secret: &str,
        actor: i64,
        now: Millis,
    ) -> Result<WebhookIntegration> {
        let key = self.sealing_key(account_id, now).await?;
        let mut tx = self.inner.write.begin().await?;
        let id = draw_integration_id(&mut tx).await?;
        let seal = |column: &'static str, plain: &str| {
            seal_value(
                key.as_ref(),
                &SecretSlot::new(account_id, TABLE, column, id),
                plain,
            )
        };
        let headers = seal("headers", &to_json(&draft.headers))?;
        let signing_secret = seal("signing_secret", signing_secret)?;
        let mut sql = Sql::new("INSERT INTO webhook_integrations (");
        sql.push(INTEGRATION_COLUMNS)
            .push(", signing_secret) VALUES (")
            .bind(id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(draft.kind.as_str())
            .push(", ")
            .bind(draft.name.as_str())
            .push(", ")
            .bind(draft.endpoint.as_str())
            .push(", ")
            .bind(headers)
            .push(", ")
            .bind(to_json(&draft.event_types))
            .push(", ")
            .bind(to_json(&draft.channel_ids))
            .push(", ")
            .bind(draft.custom_body.as_str())
            .push(", ")
            .bind(to_json(&draft.value_mapping))
            .push(", ")
            .bind(draft.team_id)
            .push(", ")
            .bind(draft.status.as_str())
            .push(", ")
            .bind(actor)
            .push(", ")
            .bind(actor)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(signing_secret)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        self.webhook(account_id, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("webhook {id} vanished after insert")))
    }

    /// Replaces the editable fields (`kind` stays). `None` when it does not exist.
    pub async fn update_webhook(
        &self,
        account_id: i64,
        integration_id: i64,
        draft: &WebhookDraft,
        actor: i64,
        now: Millis,
    ) -> Result<Option<WebhookIntegration>> {
        let key = self.sealing_key(account_id, now).await?;
        let headers = seal_value(
            key.as_ref(),
            &SecretSlot::new(account_id, TABLE, "headers", integration_id),
            &to_json(&draft.headers),
        )?;
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE webhook_integrations SET name = ");
        sql.bind(draft.name.as_str())
            .push(", endpoint = ")
            .bind(draft.endpoint.as_str())
            .push(", headers = ")
            .bind(headers)
            .push(", event_types = ")
            .bind(to_json(&draft.event_types))
            .push(", channel_ids = ")
            .bind(to_json(&draft.channel_ids))
            .push(", custom_body = ")
            .bind(draft.custom_body.as_str())
            .push(", value_mapping = ")
            .bind(to_json(&draft.value_mapping))
            .push(", team_id = ")
            .bind(draft.team_id)
            .push(", status = ")
            .bind(draft.status.as_str())
            .push(", updated_by = ")
            .bind(actor)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let n = sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        drop(conn);
        if n == 0 {
            return Ok(None);
        }
        self.webhook(account_id, integration_id).await
    }

    /// Deletes a webhook; its queued deliveries end `failed` (`integration_deleted`) and its
    /// history stays until purged. False when it does not exist.
    pub async fn delete_webhook(
        &self,
        account_id: i64,
        integration_id: i64,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM webhook_integrations WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut sql = Sql::new(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = \
             'integration_deleted', claimed_by = '', claim_until = 0, finished_at = ",
        );
        sql.bind(now)
            .push(" WHERE status = 'queued' AND account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn webhook(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Option<WebhookIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(INTEGRATION_COLUMNS)
            .push(" FROM webhook_integrations WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let row = sql.query_on(&conn).fetch_optional(&mut *conn).await?;
        drop(conn);
        let rows = row.as_ref().map(integration_row).transpose()?;
        Ok(self
            .opened_webhooks(rows.into_iter().collect())
            .await?
            .pop())
    }

    /// The account's webhooks, of one kind or all, oldest first.
    pub async fn list_webhooks(
        &self,
        account_id: i64,
        kind: Option<&str>,
    ) -> Result<Vec<WebhookIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(INTEGRATION_COLUMNS)
            .push(" FROM webhook_integrations WHERE account_id = ")
            .bind(account_id);
        if let Some(k) = kind {
            sql.push(" AND kind = ").bind(k);
        }
        sql.push(" ORDER BY created_at, integration_id");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        drop(conn);
        let rows = rows.iter().map(integration_row).collect::<Result<_>>()?;
        self.opened_webhooks(rows).await
    }

    /// Claims up to `limit` due deliveries for `holder`, at most one per (integration,
    /// subject): the oldest queued one, so events go out in order (RSP-375). Rows of a halted
    /// tenant (RSP-008) or of a disabled integration end `failed` here without a request.
    pub async fn claim_webhooks(
        &self,
        holder: &str,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<PendingWebhook>> {
        // Idle nodes poll: look on the read side first, so an empty outbox costs no write.
        {
            let mut conn = self.inner.read.acquire().await?;
            let mut sql = Sql::new(
                "SELECT seq FROM webhook_deliveries WHERE status = 'queued' AND next_attempt_at <= ",
            );
            sql.bind(now)
                .push(" AND claim_until < ")
                .bind(now)
                .push(" LIMIT 1");
            if sql
                .query_on(&conn)
                .fetch_optional(&mut *conn)
                .await?
                .is_none()
            {
                return Ok(Vec::new());
            }
        }
        let mut conn = self.inner.write.acquire().await?;
        let lock = if is_sqlite(&conn) {
            ""
        } else {
            " FOR UPDATE OF d SKIP LOCKED"
        };
        let mut sql = Sql::new("UPDATE webhook_deliveries SET claimed_by = ");
        sql.bind(holder)
            .push(", claim_until = ")
            .bind(now.saturating_add(WEBHOOK_CLAIM_MS))
            .push(
                " WHERE seq IN (SELECT d.seq FROM webhook_deliveries d WHERE d.status = 'queued' \
                 AND d.next_attempt_at <= ",
            )
            .bind(now)
            .push(" AND d.claim_until < ")
            .bind(now)
            .push(
                " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.integration_id = \
                 d.integration_id AND e.subject_id = d.subject_id AND e.status = 'queued' AND \
                 e.seq < d.seq) ORDER BY d.seq LIMIT ",
            )
            .bind(limit)
            .push(lock)
            .push(") RETURNING seq");
        let seqs: Vec<i64> = sql
            .query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| get_i64(r, "seq"))
            .collect::<Result<_>>()?;
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("SELECT ");
        sql.push(PENDING_COLUMNS).push(
            " FROM webhook_deliveries d LEFT JOIN webhook_integrations w ON w.integration_id = \
             d.integration_id AND w.account_id = d.account_id WHERE 1 = 1",
        );
        sql.and_in("d.seq", &seqs).push(" ORDER BY d.seq");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut blocked: HashMap<i64, Option<String>> = HashMap::new();
        for row in &rows {
            let seq = get_i64(row, "seq")?;
            let account_id = get_i64(row, "account_id")?;
            if let std::collections::hash_map::Entry::Vacant(slot) = blocked.entry(account_id) {
                slot.insert(crate::halt::tenant_blocked(&mut conn, account_id).await?);
            }
            if let Some(Some(state)) = blocked.get(&account_id) {
                withhold(&mut conn, seq, &format!("withheld:{state}"), now).await?;
                continue;
            }
            // The integration was deleted (LEFT JOIN found nothing) or disabled since.
            let status: Option<String> = sqlx::Row::try_get(row, "w_status").ok().flatten();
            if status.as_deref() != Some("enabled") {
                withhold(&mut conn, seq, "integration_disabled", now).await?;
                continue;
            }
            out.push(pending_row(row)?);
        }
        drop(conn);
        // Open the credentials once the claim is committed and the write connection free.
        let mut opener = Opener::new(self);
        let mut opened = Vec::with_capacity(out.len());
        for (mut p, raw_headers) in out {
            p.headers =
                open_headers(&mut opener, p.account_id, p.integration_id, &raw_headers).await?;
            let slot = SecretSlot::new(p.account_id, TABLE, "signing_secret", p.integration_id);
            p.signing_secret = opener.open(slot, &p.signing_secret).await?;
            opened.push(p);
        }
        Ok(opened)
    }

    /// Records one attempt of a claimed delivery: the history row, and the delivery's new
    /// state (`success`, `failed`, or queued again at `retry_at`), in one transaction. False
    /// (nothing written) when `holder` lost the claim.
    pub async fn record_webhook_attempt(
        &self,
        holder: &str,
        pending: &PendingWebhook,
        attempt: &WebhookAttempt,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, claimed_by = '', \
             claim_until = 0, body = ",
        );
        sql.bind(attempt.body.as_str())
            .push(", last_error = ")
            .bind(attempt.error.as_str());
        match (attempt.success, attempt.retry_at) {
            (true, _) => {
                sql.push(", status = 'success', finished_at = ").bind(now);
            }
            (false, Some(at)) => {
                sql.push(", next_attempt_at = ").bind(at);
            }
            (false, None) => {
                sql.push(", status = 'failed', finished_at = ").bind(now);
            }
        }
        sql.push(" WHERE seq = ")
            .bind(pending.seq)
            .push(" AND status = 'queued' AND claimed_by = ")
            .bind(holder)
            .push(" AND claim_until >= ")
            .bind(now);
        if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut sql = Sql::new("INSERT INTO webhook_attempts (attempt_id, account_id, ");
        sql.push(
            "integration_id, delivery_seq, event_id, event_type, ref_id, attempt, status, \
             endpoint, request_body, response_status, response_body, latency_ms, error, \
             created_at) VALUES (",
        )
        .bind(new_event_id())
        .push(", ")
        .bind(pending.account_id)
        .push(", ")
        .bind(pending.integration_id)
        .push(", ")
        .bind(pending.seq)
        .push(", ")
        .bind(pending.event_id.as_str())
        .push(", ")
        .bind(pending.event_type.as_str())
        .push(", ")
        .bind(pending.subject_id.as_str())
        .push(", ")
        .bind(pending.attempts + 1)
        .push(", ")
        .bind(if attempt.success { "success" } else { "failed" })
        .push(", ")
        .bind(pending.endpoint.as_str())
        .push(", ")
        .bind(attempt.body.as_str())
        .push(", ")
        .bind(attempt.response_status)
        .push(", ")
        .bind(attempt.response_body.as_str())
        .push(", ")
        .bind(attempt.latency_ms)
        .push(", ")
        .bind(attempt.error.as_str())
        .push(", ")
        .bind(now)
        .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The earliest `next_attempt_at` of a queued delivery, for the worker's sleep.
    pub async fn next_webhook_due(&self) -> Result<Option<Millis>> {
        let mut conn = self.inner.read.acquire().await?;
        let row = Sql::new(
            "SELECT MIN(next_attempt_at) AS due FROM webhook_deliveries WHERE status = 'queued'",
        )
        .query_on(&conn)
        .fetch_one(&mut *conn)
        .await?;
        Ok(sqlx::Row::try_get::<Option<i64>, _>(&row, "due")
            .ok()
            .flatten())
    }

    /// Deletes history and finished deliveries older than `before` (RSP-379: 7 days).
    pub async fn purge_webhook_history(&self, before: Millis) -> Result<u64> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("DELETE FROM webhook_attempts WHERE created_at < ");
        sql.bind(before);
        let n = sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let mut sql =
            Sql::new("DELETE FROM webhook_deliveries WHERE status <> 'queued' AND finished_at < ");
        sql.bind(before);
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(n)
    }

    /// The invocation history of the account, newest first (RSP-379).
    pub async fn webhook_history(
        &self,
        account_id: i64,
        filter: &WebhookHistoryFilter,
    ) -> Result<WebhookHistoryPage> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(HISTORY_COLUMNS)
            .push(" FROM webhook_attempts WHERE account_id = ")
            .bind(account_id)
            .push(" AND created_at >= ")
            .bind(filter.start_time)
            .push(" AND created_at <= ")
            .bind(filter.end_time);
        if let Some(ctx) = &filter.search_after_ctx {
            let after = ctx
                .strip_prefix("wh")
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or(StoreError::InvalidCursor)?;
            sql.push(" AND seq < ").bind(after);
        }
        if filter.integration_id > 0 {
            sql.push(" AND integration_id = ")
                .bind(filter.integration_id);
        }
        if !filter.ref_id.is_empty() {
            sql.push(" AND ref_id = ").bind(filter.ref_id.as_str());
        }
        if !filter.status.is_empty() {
            sql.push(" AND status = ").bind(filter.status.as_str());
        }
        if !filter.event_types.is_empty() {
            sql.and_in("event_type", &filter.event_types);
        }
        let limit = filter.limit.clamp(1, 100);
        sql.push(" ORDER BY seq DESC LIMIT ").bind(limit + 1);
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last_seq = 0;
        for row in rows.iter().take(usize::try_from(limit).unwrap_or(100)) {
            last_seq = get_i64(row, "seq")?;
            items.push(history_row(row)?);
        }
        let more = i64::try_from(rows.len()).unwrap_or(0) > limit;
        Ok(WebhookHistoryPage {
            items,
            search_after_ctx: more.then(|| format!("wh{last_seq}")),
        })
    }

    /// One history record by its `attempt_id`.
    pub async fn webhook_history_item(
        &self,
        account_id: i64,
        attempt_id: &str,
    ) -> Result<Option<WebhookHistoryItem>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(HISTORY_COLUMNS)
            .push(" FROM webhook_attempts WHERE account_id = ")
            .bind(account_id)
            .push(" AND attempt_id = ")
            .bind(attempt_id);
        sql.query_on(&conn)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(history_row)
            .transpose()
    }

    /// The outbox rows of the account, oldest first (tests and diagnostics).
    pub async fn webhook_deliveries(&self, account_id: i64) -> Result<Vec<WebhookDeliveryState>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT integration_id, event_id, event_type, subject_id, status, attempts, \
             last_error FROM webhook_deliveries WHERE account_id = ",
        );
        sql.bind(account_id).push(" ORDER BY seq");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok(WebhookDeliveryState {
                    integration_id: get_i64(r, "integration_id")?,
                    event_id: get_str(r, "event_id")?,
                    event_type: get_str(r, "event_type")?,
                    subject_id: get_str(r, "subject_id")?,
                    status: get_str(r, "status")?,
                    attempts: get_i64(r, "attempts")?,
                    last_error: get_str(r, "last_error")?,
                })
            })
            .collect()
    }
}
