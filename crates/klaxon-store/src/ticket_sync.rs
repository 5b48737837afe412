//! Ticket sync with Jira, ServiceNow and ServiceDesk Plus (response.md 1.23, RSP-403…407;
//! migrations 0060, 0072): the integrations, the incident ↔ ticket links, the durable outbox
//! of sync steps, which is also the integration's sync log, and the OAuth tokens of
//! ServiceDesk Plus cloud.
//!
//! - **Decided with the change.** [`enqueue`] runs inside the transaction that writes an
//!   incident change (`response::write_changes`) and asks `klaxon_core::ticket_sync::steps`
//!   which steps each outbound integration of the incident's channel needs. An account
//!   without enabled ticket-sync integrations pays one read.
//! - **Sent afterwards, in order.** The server claims due rows under a lease; only the oldest
//!   queued row of each (integration, incident) is eligible, so a comment never overtakes the
//!   create it depends on. Retries wait as rows (`next_attempt_at`), so a restart or a second
//!   node loses nothing.
//! - A row ends `success`, `failed` (the sync log shows why) or `skipped` (nothing to do: no
//!   ticket to update, integration disabled, tenant halted).
//! - **Credentials sealed at rest.** The API token or password (`secret`), the ServiceNow
//!   push token and the OAuth tokens are sealed under the tenant's data key when a
//!   key-encryption key is configured ([`crate::sealing`]); the push URL is found by the
//!   SHA-256 of its token (`push_token_hash`, migration 0071).

use std::collections::{BTreeMap, HashMap};

use klaxon_core::condition::FilterGroups;
use klaxon_core::model::Millis;
use klaxon_core::ticket_sync::{FieldMap, SyncRule, steps};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use crate::db::{Sql, is_sqlite};
use crate::response::Change;
use crate::rows::{get_i64, get_str};
use crate::sealing::{DataKey, Opener, SecretSlot, seal_value};
use crate::webhooks::draw_integration_id;
use crate::{Result, Store, StoreError};

/// How long a claim on a sync step lasts: above a few 10 s requests.
pub const TICKET_CLAIM_MS: Millis = 120_000;

/// The non-secret connection settings of an integration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TicketSettings {
    /// Jira: `cloud` | `server` (Data Center counts as server). ServiceNow: "".
    pub platform: String,
    /// The service URL (`https://your-domain.atlassian.net`, `https://x.service-now.com`).
    pub base_url: String,
    /// Jira Cloud: the account e-mail; else the username.
    pub username: String,
    /// Jira: the project key.
    pub project_key: String,
    /// Jira: the issue type name.
    pub issue_type: String,
    /// ServiceDesk Plus: the request template's name (RSP-407).
    pub template: String,
    /// ServiceDesk Plus: the requester, a name or an e-mail (RSP-407).
    pub requester: String,
    /// ServiceDesk Plus: `severity`, `labels.<key>` or `fields.<name>`; `severity_mapping`
    /// then maps that source's values to priority names (RSP-407).
    pub priority_source: String,
    /// ServiceDesk Plus: the label naming the assignee, `""` = none (RSP-407).
    pub assignee_label: String,
    /// ServiceDesk Plus: `technician` | `group`.
    pub assignee_kind: String,
    /// ServiceDesk Plus: label value → technician or group name; empty = the value itself.
    pub assignee_mapping: BTreeMap<String, String>,
    /// ServiceDesk Plus cloud: the Zoho API console's client id (the client secret is the
    /// integration's secret).
    pub client_id: String,
    /// ServiceDesk Plus cloud: the Zoho accounts server of the data centre.
    pub auth_url: String,
    /// ServiceDesk Plus cloud: the redirect URI the code was made for, if any.
    pub redirect_uri: String,
}

/// ServiceDesk Plus cloud OAuth tokens (RSP-407).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TicketTokens {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: Millis,
}

impl std::fmt::Debug for TicketTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketTokens")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A ticket-sync integration (response.md 1.23).
#[derive(Clone, PartialEq)]
pub struct TicketIntegration {
    pub integration_id: i64,
    pub account_id: i64,
    /// `jira` | `servicenow`.
    pub system: String,
    pub name: String,
    pub team_id: i64,
    pub channel_ids: Vec<i64>,
    /// `to` | `from` | `two_way`.
    pub direction: String,
    /// `auto` | `manual`.
    pub trigger: String,
    pub filters: FilterGroups,
    pub settings: TicketSettings,
    /// The API token or password.
    pub secret: String,
    /// The credential of the inbound push URL (ServiceNow).
    pub push_token: String,
    /// Severity name → the system's priority (Jira) or urgency (ServiceNow).
    pub severity_mapping: BTreeMap<String, String>,
    pub field_mapping: Vec<FieldMap>,
    /// `enabled` | `disabled`.
    pub status: String,
    pub creator_id: i64,
    pub updated_by: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl std::fmt::Debug for TicketIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketIntegration")
            .field("integration_id", &self.integration_id)
            .field("system", &self.system)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("push_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The editable fields, already validated by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketDraft {
    pub system: String,
    pub name: String,
    pub team_id: i64,
    pub channel_ids: Vec<i64>,
    pub direction: String,
    pub trigger: String,
    pub filters: FilterGroups,
    pub settings: TicketSettings,
    pub secret: String,
    pub severity_mapping: BTreeMap<String, String>,
    pub field_mapping: Vec<FieldMap>,
    pub status: String,
    /// New OAuth tokens (a one-time code was exchanged), written with the integration.
    pub oauth: Option<TicketTokens>,
}

/// An incident's ticket in one integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketLink {
    pub account_id: i64,
    pub integration_id: i64,
    pub incident_id: String,
    pub external_id: String,
    pub external_key: String,
    pub external_url: String,
    pub last_urgency: String,
    pub last_comment: String,
    pub created_at: Millis,
}

/// One sync step: a claimed outbox row, or a sync log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketJob {
    pub seq: i64,
    pub account_id: i64,
    pub integration_id: i64,
    pub incident_id: String,
    pub op: String,
    pub payload: Value,
    pub person_id: i64,
    /// `queued` | `success` | `failed` | `skipped`.
    pub status: String,
    /// Attempts made before this one (claimed) or in all (log).
    pub attempts: i64,
    pub response_status: i64,
    pub last_error: String,
    pub external_key: String,
    pub created_at: Millis,
    pub finished_at: Millis,
}

/// How an attempt at a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketOutcome {
    /// `success` | `failed` | `skipped`, or `queued` with `retry_at`.
    pub status: &'static str,
    pub retry_at: Option<Millis>,
    pub response_status: i64,
    pub error: String,
    pub external_key: String,
}

const COLUMNS: &str = "integration_id, account_id, system, name, team_id, channel_ids, \
     direction, trigger_mode, filters, settings, secret, push_token, severity_mapping, \
     field_mapping, status, creator_id, updated_by, created_at, updated_at";

const LINK_COLUMNS: &str = "account_id, integration_id, incident_id, external_id, external_key, \
     external_url, last_urgency, last_comment, created_at";

const JOB_COLUMNS: &str = "seq, account_id, integration_id, incident_id, op, payload, person_id, \
     status, attempts, response_status, last_error, external_key, created_at, finished_at";

fn json_col<T: serde::de::DeserializeOwned + Default>(row: &sqlx::any::AnyRow, col: &str) -> T {
    get_str(row, col)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn integration_row(r: &sqlx::any::AnyRow) -> Result<TicketIntegration> {
    Ok(TicketIntegration {
        integration_id: get_i64(r, "integration_id")?,
        account_id: get_i64(r, "account_id")?,
        system: get_str(r, "system")?,
        name: get_str(r, "name")?,
        team_id: get_i64(r, "team_id")?,
        channel_ids: json_col(r, "channel_ids"),
        direction: get_str(r, "direction")?,
        trigger: get_str(r, "trigger_mode")?,
        filters: json_col(r, "filters"),
        settings: json_col(r, "settings"),
        secret: get_str(r, "secret")?,
        push_token: get_str(r, "push_token")?,
        severity_mapping: json_col(r, "severity_mapping"),
        field_mapping: json_col(r, "field_mapping"),
        status: get_str(r, "status")?,
        creator_id: get_i64(r, "creator_id")?,
        updated_by: get_i64(r, "updated_by")?,
        created_at: get_i64(r, "created_at")?,
        updated_at: get_i64(r, "updated_at")?,
    })
}

fn link_row(r: &sqlx::any::AnyRow) -> Result<TicketLink> {
    Ok(TicketLink {
        account_id: get_i64(r, "account_id")?,
        integration_id: get_i64(r, "integration_id")?,
        incident_id: get_str(r, "incident_id")?,
        external_id: get_str(r, "external_id")?,
        external_key: get_str(r, "external_key")?,
        external_url: get_str(r, "external_url")?,
        last_urgency: get_str(r, "last_urgency")?,
        last_comment: get_str(r, "last_comment")?,
        created_at: get_i64(r, "created_at")?,
    })
}

fn job_row(r: &sqlx::any::AnyRow) -> Result<TicketJob> {
    Ok(TicketJob {
        seq: get_i64(r, "seq")?,
        account_id: get_i64(r, "account_id")?,
        integration_id: get_i64(r, "integration_id")?,
        incident_id: get_str(r, "incident_id")?,
        op: get_str(r, "op")?,
        payload: json_col(r, "payload"),
        person_id: get_i64(r, "person_id")?,
        status: get_str(r, "status")?,
        attempts: get_i64(r, "attempts")?,
        response_status: get_i64(r, "response_status")?,
        last_error: get_str(r, "last_error")?,
        external_key: get_str(r, "external_key")?,
        created_at: get_i64(r, "created_at")?,
        finished_at: get_i64(r, "finished_at")?,
    })
}

const TABLE: &str = "ticket_sync_integrations";
const TOKENS: &str = "ticket_sync_tokens";

/// The lookup key of a push token: its SHA-256 (the token itself is sealed).
pub(crate) fn push_token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    if token.is_empty() {
        return String::new();
    }
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Migration 0071 left the push tokens of earlier rows unhashed: hash them (idempotent; a
/// token already sealed was hashed when it was sealed).
pub(crate) async fn hash_push_tokens(write: &sqlx::AnyPool) -> Result<()> {
    let mut tx = write.begin().await?;
    let rows = sqlx::query(
        "SELECT integration_id, push_token FROM ticket_sync_integrations WHERE push_token <> '' \
         AND push_token_hash = ''",
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in rows {
        let token = get_str(&row, "push_token")?;
        if crate::sealing::is_sealed_value(&token) {
            continue;
        }
        let mut sql = Sql::new("UPDATE ticket_sync_integrations SET push_token_hash = ");
        sql.bind(push_token_hash(&token))
            .push(" WHERE integration_id = ")
            .bind(get_i64(&row, "integration_id")?);
        sql.query_on(&tx).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Opens the credentials of a record read from the table.
async fn open_integration(opener: &mut Opener<'_>, t: &mut TicketIntegration) -> Result<()> {
    let (account, id) = (t.account_id, t.integration_id);
    opener
        .open_in_place(account, TABLE, "secret", id, &mut t.secret)
        .await?;
    opener
        .open_in_place(account, TABLE, "push_token", id, &mut t.push_token)
        .await
}

async fn fetch(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_id: Option<i64>,
) -> Result<Vec<TicketIntegration>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM ticket_sync_integrations WHERE account_id = ")
        .bind(account_id);
    if let Some(id) = integration_id {
        sql.push(" AND integration_id = ").bind(id);
    }
    sql.push(" ORDER BY name, integration_id");
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(integration_row)
        .collect()
}

/// Whether the incident has a ticket of the integration, or a create queued for one.
async fn linked_or_pending(
    conn: &mut AnyConnection,
    integration_id: i64,
    incident_id: &str,
) -> Result<bool> {
    let mut sql = Sql::new("SELECT 1 AS x FROM ticket_sync_links WHERE integration_id = ");
    sql.bind(integration_id)
        .push(" AND incident_id = ")
        .bind(incident_id)
        .push(" UNION ALL SELECT 1 AS x FROM ticket_sync_jobs WHERE integration_id = ")
        .bind(integration_id)
        .push(" AND incident_id = ")
        .bind(incident_id)
        .push(" AND op = 'create' AND status = 'queued'");
    Ok(sql
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

#[allow(clippy::too_many_arguments)]
async fn insert_job(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_id: i64,
    incident_id: &str,
    op: &str,
    payload: &Value,
    person_id: i64,
    now: Millis,
) -> Result<()> {
    let mut sql = Sql::new(
        "INSERT INTO ticket_sync_jobs (account_id, integration_id, incident_id, op, payload, \
         person_id, next_attempt_at, created_at) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(integration_id)
        .push(", ")
        .bind(incident_id)
        .push(", ")
        .bind(op)
        .push(", ")
        .bind(payload.to_string())
        .push(", ")
        .bind(person_id)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Writes the sync steps of `changes` (RSP-405, RSP-406) in the caller's transaction.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    changes: &[Change<'_>],
    now: Millis,
) -> Result<()> {
    let mut rules: HashMap<i64, Vec<(i64, SyncRule)>> = HashMap::new();
    for c in changes {
        let inc = c.incident;
        if inc.channel_id == 0 || c.outcome.timeline.is_empty() {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = rules.entry(inc.account_id) {
            slot.insert(outbound_rules(conn, inc.account_id).await?);
        }
        let Some(list) = rules.get(&inc.account_id) else {
            continue;
        };
        let kinds: Vec<(&str, &Value)> = c
            .outcome
            .timeline
            .iter()
            .map(|e| (e.kind, &e.detail))
            .collect();
        let person = c.outcome.timeline.last().map_or(0, |e| e.creator_id);
        for (integration_id, rule) in list {
            if !rule.channel_ids.contains(&inc.channel_id) {
                continue;
            }
            let linked = linked_or_pending(conn, *integration_id, &inc.incident_id).await?;
            for step in steps(rule, inc, linked, &kinds) {
                insert_job(
                    conn,
                    inc.account_id,
                    *integration_id,
                    &inc.incident_id,
                    step.op(),
                    &step.payload(),
                    person,
                    now,
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// RSP-405 auto trigger after a label change: automatic incidents whose labels followed their
/// first alert to new values (no timeline entry says so) get their filters checked again, in
/// the caller's transaction. Linked incidents get nothing: labels are not synced.
pub(crate) async fn enqueue_relabeled(
    conn: &mut AnyConnection,
    incidents: &[&klaxon_core::model::Incident],
    now: Millis,
) -> Result<()> {
    let mut rules: HashMap<i64, Vec<(i64, SyncRule)>> = HashMap::new();
    let none = Value::Null;
    let kinds = [(klaxon_core::ticket_sync::LABELS_CHANGED, &none)];
    for inc in incidents {
        if inc.channel_id == 0 {
            continue;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = rules.entry(inc.account_id) {
            slot.insert(outbound_rules(conn, inc.account_id).await?);
        }
        let Some(list) = rules.get(&inc.account_id) else {
            continue;
        };
        for (integration_id, rule) in list {
            if rule.trigger != "auto" || !rule.channel_ids.contains(&inc.channel_id) {
                continue;
            }
            if linked_or_pending(conn, *integration_id, &inc.incident_id).await? {
                continue;
            }
            for step in steps(rule, inc, false, &kinds) {
                insert_job(
                    conn,
                    inc.account_id,
                    *integration_id,
                    &inc.incident_id,
                    step.op(),
                    &step.payload(),
                    0,
                    now,
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// The enabled integrations of an account that send incidents out.
async fn outbound_rules(conn: &mut AnyConnection, account_id: i64) -> Result<Vec<(i64, SyncRule)>> {
    let mut sql = Sql::new(
        "SELECT integration_id, channel_ids, direction, trigger_mode, filters FROM \
         ticket_sync_integrations WHERE status = 'enabled' AND direction <> 'from' AND \
         account_id = ",
    );
    sql.bind(account_id).push(" ORDER BY integration_id");
    let mut out = Vec::new();
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        out.push((
            get_i64(&row, "integration_id")?,
            SyncRule {
                channel_ids: json_col(&row, "channel_ids"),
                direction: get_str(&row, "direction")?,
                trigger: get_str(&row, "trigger_mode")?,
                filters: json_col(&row, "filters"),
            },
        ));
    }
    Ok(out)
}

/// Ends a claimed row without sending.
async fn withhold(conn: &mut AnyConnection, seq: i64, reason: &str, now: Millis) -> Result<()> {
    let mut sql = Sql::new("UPDATE ticket_sync_jobs SET status = 'skipped', last_error = ");
    sql.bind(reason)
        .push(", claimed_by = '', claim_until = 0, finished_at = ")
        .bind(now)
        .push(" WHERE seq = ")
        .bind(seq);
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

impl Store {
    /// Opens the credentials of rows read by [`fetch`].
    async fn opened_ticket_syncs(
        &self,
        rows: Vec<TicketIntegration>,
    ) -> Result<Vec<TicketIntegration>> {
        let mut opener = Opener::new(self);
        let mut out = Vec::with_capacity(rows.len());
        for mut t in rows {
            open_integration(&mut opener, &mut t).await?;
            out.push(t);
        }
        Ok(out)
    }

    /// Creates an integration with a fresh id in the shared integration id space.
    pub async fn create_ticket_sync(
        &self,
        account_id: i64,
        draft: &TicketDraft,
        push_token: &str,
        actor: i64,
        now: Millis,
    ) -> Result<TicketIntegration> {
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
        let secret = seal("secret", &draft.secret)?;
        let sealed_push_token = seal("push_token", push_token)?;
        let mut sql = Sql::new("INSERT INTO ticket_sync_integrations (");
        sql.push(COLUMNS)
            .push(", push_token_hash) VALUES (")
            .bind(id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(draft.system.as_str())
            .push(", ")
            .bind(draft.name.as_str())
            .push(", ")
            .bind(draft.team_id)
            .push(", ")
            .bind(to_json(&draft.channel_ids))
            .push(", ")
            .bind(draft.direction.as_str())
            .push(", ")
            .bind(draft.trigger.as_str())
            .push(", ")
            .bind(to_json(&draft.filters))
            .push(", ")
            .bind(to_json(&draft.settings))
            .push(", ")
            .bind(secret)
            .push(", ")
            .bind(sealed_push_token)
            .push(", ")
            .bind(to_json(&draft.severity_mapping))
            .push(", ")
            .bind(to_json(&draft.field_mapping))
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
            .bind(push_token_hash(push_token))
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        if let Some(t) = &draft.oauth {
            put_tokens(&mut tx, key.as_ref(), account_id, id, t, now).await?;
        }
        tx.commit().await?;
        self.ticket_sync(account_id, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("ticket sync {id} vanished after insert")))
    }

    /// Replaces the editable fields; `None` when there is no such integration.
    pub async fn update_ticket_sync(
        &self,
        account_id: i64,
        integration_id: i64,
        draft: &TicketDraft,
        actor: i64,
        now: Millis,
    ) -> Result<Option<TicketIntegration>> {
        let key = self.sealing_key(account_id, now).await?;
        let secret = seal_value(
            key.as_ref(),
            &SecretSlot::new(account_id, TABLE, "secret", integration_id),
            &draft.secret,
        )?;
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("UPDATE ticket_sync_integrations SET name = ");
        sql.bind(draft.name.as_str())
            .push(", team_id = ")
            .bind(draft.team_id)
            .push(", channel_ids = ")
            .bind(to_json(&draft.channel_ids))
            .push(", direction = ")
            .bind(draft.direction.as_str())
            .push(", trigger_mode = ")
            .bind(draft.trigger.as_str())
            .push(", filters = ")
            .bind(to_json(&draft.filters))
            .push(", settings = ")
            .bind(to_json(&draft.settings))
            .push(", secret = ")
            .bind(secret)
            .push(", severity_mapping = ")
            .bind(to_json(&draft.severity_mapping))
            .push(", field_mapping = ")
            .bind(to_json(&draft.field_mapping))
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
        let n = sql.query_on(&tx).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        if let Some(t) = &draft.oauth {
            put_tokens(&mut tx, key.as_ref(), account_id, integration_id, t, now).await?;
        }
        tx.commit().await?;
        self.ticket_sync(account_id, integration_id).await
    }

    /// Deletes an integration with its links and queued steps; false when there is none. The
    /// tickets themselves stay in the ticket system.
    pub async fn delete_ticket_sync(&self, account_id: i64, integration_id: i64) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM ticket_sync_integrations WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let n = sql.query_on(&tx).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for table in [
            "ticket_sync_links",
            "ticket_sync_jobs",
            "ticket_sync_tokens",
        ] {
            let mut sql = Sql::new("DELETE FROM ");
            sql.push(table)
                .push(" WHERE account_id = ")
                .bind(account_id)
                .push(" AND integration_id = ")
                .bind(integration_id);
            sql.query_on(&tx).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn ticket_sync(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Option<TicketIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let rows = fetch(&mut conn, account_id, Some(integration_id)).await?;
        drop(conn);
        Ok(self.opened_ticket_syncs(rows).await?.into_iter().next())
    }

    /// The account's integrations ordered by name; with `channel_id`, those bound to it.
    pub async fn list_ticket_syncs(
        &self,
        account_id: i64,
        channel_id: Option<i64>,
    ) -> Result<Vec<TicketIntegration>> {
        let mut conn = self.inner.read.acquire().await?;
        let rows = fetch(&mut conn, account_id, None).await?;
        drop(conn);
        let all = self.opened_ticket_syncs(rows).await?;
        Ok(match channel_id {
            Some(ch) => all
                .into_iter()
                .filter(|c| c.channel_ids.contains(&ch))
                .collect(),
            None => all,
        })
    }

    /// The integration whose push URL carries `token` (the token is the credential, like an
    /// integration key).
    pub async fn ticket_sync_by_push_token(
        &self,
        token: &str,
    ) -> Result<Option<TicketIntegration>> {
        if token.is_empty() {
            return Ok(None);
        }
        let mut conn = self.inner.read.acquire().await?;
        // A row written before migration 0071 and not yet hashed is still found by its token.
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM ticket_sync_integrations WHERE push_token_hash = ")
            .bind(push_token_hash(token))
            .push(" OR push_token = ")
            .bind(token)
            .push(" ORDER BY integration_id LIMIT 1");
        let row = sql.query_on(&conn).fetch_optional(&mut *conn).await?;
        drop(conn);
        let rows = row.as_ref().map(integration_row).transpose()?;
        let found = self.opened_ticket_syncs(rows.into_iter().collect()).await?;
        // The hash found the row; the opened token must be the one asked for.
        Ok(found.into_iter().find(|t| t.push_token == token))
    }

    /// Queues a create step (the manual trigger, RSP-405); false when the incident already
    /// has a ticket of the integration or a create is queued.
    pub async fn queue_ticket_create(
        &self,
        account_id: i64,
        integration_id: i64,
        incident_id: &str,
        person_id: i64,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        if linked_or_pending(&mut tx, integration_id, incident_id).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_job(
            &mut tx,
            account_id,
            integration_id,
            incident_id,
            "create",
            &serde_json::json!({}),
            person_id,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` due steps for `holder`, at most one per (integration, incident):
    /// the oldest queued one. Steps of a halted tenant (RSP-008) end `skipped` here.
    pub async fn claim_ticket_jobs(
        &self,
        holder: &str,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<TicketJob>> {
        {
            let mut conn = self.inner.read.acquire().await?;
            let mut sql = Sql::new(
                "SELECT seq FROM ticket_sync_jobs WHERE status = 'queued' AND next_attempt_at <= ",
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
        let mut sql = Sql::new("UPDATE ticket_sync_jobs SET claimed_by = ");
        sql.bind(holder)
            .push(", claim_until = ")
            .bind(now.saturating_add(TICKET_CLAIM_MS))
            .push(
                " WHERE seq IN (SELECT d.seq FROM ticket_sync_jobs d WHERE d.status = 'queued' \
                 AND d.next_attempt_at <= ",
            )
            .bind(now)
            .push(" AND d.claim_until < ")
            .bind(now)
            .push(
                " AND NOT EXISTS (SELECT 1 FROM ticket_sync_jobs e WHERE e.integration_id = \
                 d.integration_id AND e.incident_id = d.incident_id AND e.status = 'queued' AND \
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
        sql.push(JOB_COLUMNS)
            .push(" FROM ticket_sync_jobs WHERE 1 = 1");
        sql.and_in("seq", &seqs).push(" ORDER BY seq");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut blocked: HashMap<i64, Option<String>> = HashMap::new();
        for row in &rows {
            let job = job_row(row)?;
            if let std::collections::hash_map::Entry::Vacant(slot) = blocked.entry(job.account_id) {
                slot.insert(crate::halt::tenant_blocked(&mut conn, job.account_id).await?);
            }
            if let Some(Some(state)) = blocked.get(&job.account_id) {
                withhold(&mut conn, job.seq, &format!("withheld:{state}"), now).await?;
                continue;
            }
            out.push(job);
        }
        Ok(out)
    }

    /// Records how a claimed step ended and, for a successful create, the incident's ticket,
    /// in one transaction. False (nothing written) when `holder` lost the claim.
    pub async fn finish_ticket_job(
        &self,
        holder: &str,
        job: &TicketJob,
        outcome: &TicketOutcome,
        link: Option<&TicketLink>,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(
            "UPDATE ticket_sync_jobs SET attempts = attempts + 1, claimed_by = '', claim_until = 0, \
             response_status = ",
        );
        sql.bind(outcome.response_status)
            .push(", last_error = ")
            .bind(outcome.error.as_str())
            .push(", external_key = ")
            .bind(outcome.external_key.as_str());
        match outcome.retry_at {
            Some(at) if outcome.status == "queued" => {
                sql.push(", next_attempt_at = ").bind(at);
            }
            _ => {
                sql.push(", status = ")
                    .bind(outcome.status)
                    .push(", finished_at = ")
                    .bind(now);
            }
        }
        sql.push(" WHERE seq = ")
            .bind(job.seq)
            .push(" AND status = 'queued' AND claimed_by = ")
            .bind(holder)
            .push(" AND claim_until >= ")
            .bind(now);
        if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(l) = link {
            insert_link(&mut tx, l).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a ticket made elsewhere (a ServiceNow insert); false when the incident already
    /// has one of this integration.
    pub async fn insert_ticket_link(&self, link: &TicketLink) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        insert_link(&mut conn, link).await
    }

    /// Forgets a link (an inbound insert whose incident could not be made).
    pub async fn delete_ticket_link(
        &self,
        account_id: i64,
        integration_id: i64,
        incident_id: &str,
    ) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("DELETE FROM ticket_sync_links WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND incident_id = ")
            .bind(incident_id);
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// What ServiceNow last sent for a link (RSP-406: only a change acts).
    pub async fn remember_ticket_inbound(
        &self,
        account_id: i64,
        integration_id: i64,
        incident_id: &str,
        last_urgency: &str,
        last_comment: &str,
    ) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE ticket_sync_links SET last_urgency = ");
        sql.bind(last_urgency)
            .push(", last_comment = ")
            .bind(last_comment)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND incident_id = ")
            .bind(incident_id);
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// The incident's tickets, in every integration.
    pub async fn ticket_links(
        &self,
        account_id: i64,
        incident_id: &str,
    ) -> Result<Vec<TicketLink>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(LINK_COLUMNS)
            .push(" FROM ticket_sync_links WHERE account_id = ")
            .bind(account_id)
            .push(" AND incident_id = ")
            .bind(incident_id)
            .push(" ORDER BY created_at, integration_id");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(link_row)
            .collect()
    }

    /// The link of an external record (`sys_id`) in one integration.
    pub async fn ticket_link_by_external(
        &self,
        account_id: i64,
        integration_id: i64,
        external_id: &str,
    ) -> Result<Option<TicketLink>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(LINK_COLUMNS)
            .push(" FROM ticket_sync_links WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND external_id = ")
            .bind(external_id);
        match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(r) => Ok(Some(link_row(&r)?)),
            None => Ok(None),
        }
    }

    /// The OAuth tokens of an integration (ServiceDesk Plus cloud, RSP-407).
    pub async fn ticket_tokens(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Option<TicketTokens>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT access_token, refresh_token, expires_at FROM ticket_sync_tokens WHERE \
             account_id = ",
        );
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let Some(r) = sql.query_on(&conn).fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        drop(conn);
        let mut tokens = TicketTokens {
            access_token: get_str(&r, "access_token")?,
            refresh_token: get_str(&r, "refresh_token")?,
            expires_at: get_i64(&r, "expires_at")?,
        };
        let mut opener = Opener::new(self);
        opener
            .open_in_place(
                account_id,
                TOKENS,
                "access_token",
                integration_id,
                &mut tokens.access_token,
            )
            .await?;
        opener
            .open_in_place(
                account_id,
                TOKENS,
                "refresh_token",
                integration_id,
                &mut tokens.refresh_token,
            )
            .await?;
        Ok(Some(tokens))
    }

    /// Stores refreshed tokens; false when the integration is gone.
    pub async fn save_ticket_tokens(
        &self,
        account_id: i64,
        integration_id: i64,
        tokens: &TicketTokens,
        now: Millis,
    ) -> Result<bool> {
        let key = self.sealing_key(account_id, now).await?;
        let mut tx = self.inner.write.begin().await?;
        if fetch(&mut tx, account_id, Some(integration_id))
            .await?
            .is_empty()
        {
            tx.rollback().await?;
            return Ok(false);
        }
        put_tokens(
            &mut tx,
            key.as_ref(),
            account_id,
            integration_id,
            tokens,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The highest step number so far (0 when none), to tell later steps apart.
    pub async fn last_ticket_job_seq(&self) -> Result<i64> {
        let mut conn = self.inner.write.acquire().await?;
        let row = Sql::new("SELECT MAX(seq) AS m FROM ticket_sync_jobs")
            .query_on(&conn)
            .fetch_one(&mut *conn)
            .await?;
        Ok(sqlx::Row::try_get::<Option<i64>, _>(&row, "m")
            .ok()
            .flatten()
            .unwrap_or(0))
    }

    /// Ends the queued steps of one incident and integration numbered above `after` as
    /// `skipped` with `reason`: changes that came from the ticket system itself are not sent
    /// back to it.
    pub async fn skip_ticket_jobs_after(
        &self,
        account_id: i64,
        integration_id: i64,
        incident_id: &str,
        after: i64,
        reason: &str,
        now: Millis,
    ) -> Result<u64> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE ticket_sync_jobs SET status = 'skipped', last_error = ");
        sql.bind(reason)
            .push(", finished_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND incident_id = ")
            .bind(incident_id)
            .push(" AND status = 'queued' AND claimed_by = '' AND seq > ")
            .bind(after);
        Ok(sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected())
    }

    /// The sync log of an integration, newest first: `limit` steps numbered below `before`
    /// (0 = from the newest), optionally of one incident.
    pub async fn ticket_sync_log(
        &self,
        account_id: i64,
        integration_id: i64,
        incident_id: Option<&str>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<TicketJob>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(JOB_COLUMNS)
            .push(" FROM ticket_sync_jobs WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        if let Some(id) = incident_id {
            sql.push(" AND incident_id = ").bind(id);
        }
        if before > 0 {
            sql.push(" AND seq < ").bind(before);
        }
        sql.push(" ORDER BY seq DESC LIMIT ").bind(limit);
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(job_row)
            .collect()
    }
}

async fn put_tokens(
    conn: &mut AnyConnection,
    key: Option<&DataKey>,
    account_id: i64,
    integration_id: i64,
    t: &TicketTokens,
    now: Millis,
) -> Result<()> {
    let seal = |column: &'static str, plain: &str| {
        seal_value(
            key,
            &SecretSlot::new(account_id, TOKENS, column, integration_id),
            plain,
        )
    };
    let access_token = seal("access_token", &t.access_token)?;
    let refresh_token = seal("refresh_token", &t.refresh_token)?;
    let mut sql = Sql::new(
        "INSERT INTO ticket_sync_tokens (integration_id, account_id, access_token, \
         refresh_token, expires_at, updated_at) VALUES (",
    );
    sql.bind(integration_id)
        .push(", ")
        .bind(account_id)
        .push(", ")
        .bind(access_token)
        .push(", ")
        .bind(refresh_token)
        .push(", ")
        .bind(t.expires_at)
        .push(", ")
        .bind(now)
        .push(
            ") ON CONFLICT (integration_id) DO UPDATE SET access_token = excluded.access_token, \
             refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, \
             updated_at = excluded.updated_at",
        );
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

async fn insert_link(conn: &mut AnyConnection, l: &TicketLink) -> Result<bool> {
    let mut sql = Sql::new("INSERT INTO ticket_sync_links (");
    sql.push(LINK_COLUMNS)
        .push(") VALUES (")
        .bind(l.account_id)
        .push(", ")
        .bind(l.integration_id)
        .push(", ")
        .bind(l.incident_id.as_str())
        .push(", ")
        .bind(l.external_id.as_str())
        .push(", ")
        .bind(l.external_key.as_str())
        .push(", ")
        .bind(l.external_url.as_str())
        .push(", ")
        .bind(l.last_urgency.as_str())
        .push(", ")
        .bind(l.last_comment.as_str())
        .push(", ")
        .bind(l.created_at)
        .push(") ON CONFLICT DO NOTHING");
    Ok(sql
        .query_on(conn)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1)
}
