//! Full export of a tenant's data (service-agreement.md SVC-180, SVC-182; §21 keeps it for
//! self-hosted installs too; docs/data-export.md; migration 0035).
//!
//! Every table of the schema is classified in [`TABLES`]: exported (the tenant's data, with
//! secret columns left out), secret (left out whole and listed as redacted), operator record
//! (not the tenant's data, SVC-180) or internal working state. [`Store::unclassified_tables`]
//! lists the tables of the live schema that [`TABLES`] does not know, and a test keeps that
//! list empty, so a new table cannot silently escape (or leak into) the export.
//!
//! [`Store::export_snapshot`] reads every exported table of one account in one read
//! transaction (PostgreSQL: repeatable read; SQLite: one WAL snapshot), so the archive is a
//! consistent picture even while events keep arriving. Rows are decoded generically: the
//! exported tables hold only integers and text (JSON documents are stored as text and are
//! exported as that text). The archive itself is built by the server; this module stores it
//! (`account_exports`), enforces one export at a time and three a day, and expires it.

use klaxon_core::model::Millis;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Column, Row, any::AnyRow};

use crate::db::{Sql, is_sqlite};
use crate::rows::{get_i64, get_str};
use crate::{Result, Store, StoreError};

/// What happens to a table in a full export. A redacted name `column.member` removes one
/// member of a JSON object stored as text in `column` (the rest of the document is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableClass {
    /// The tenant's data: every row of the account, minus the named secret columns.
    Exported { redacted: &'static [&'static str] },
    /// Holds only secrets (API keys, session and reset tokens, feed tokens): left out whole
    /// and named in the manifest's redaction list.
    Secret,
    /// An operator record of SVC-180 (billing, tenant state, counters): not the tenant's data.
    OperatorRecord,
    /// Working state of the platform (leases, timers, sweep marks, the export archives
    /// themselves): derived from exported rows or meaningless outside a running node.
    Internal,
}

use TableClass::{Exported, Internal, OperatorRecord, Secret};

/// Every table of the schema, with its class. Order is the archive's order.
pub const TABLES: &[(&str, TableClass)] = &[
    ("accounts", Exported { redacted: &[] }),
    (
        "members",
        Exported {
            redacted: &["password_hash"],
        },
    ),
    ("member_preferences", Exported { redacted: &[] }),
    // The ntfy topic is the device's credential: whoever knows it reads the pushes.
    (
        "push_devices",
        Exported {
            redacted: &["topic"],
        },
    ),
    ("member_list_columns", Exported { redacted: &[] }),
    ("member_insight_filters", Exported { redacted: &[] }),
    ("teams", Exported { redacted: &[] }),
    ("team_members", Exported { redacted: &[] }),
    ("roles", Exported { redacted: &[] }),
    ("channels", Exported { redacted: &[] }),
    (
        "integrations",
        Exported {
            // HTTP pull headers (ING-220) are often the source's credentials.
            redacted: &["integration_key", "settings.headers"],
        },
    ),
    ("pull_history", Exported { redacted: &[] }),
    ("route_versions", Exported { redacted: &[] }),
    ("escalation_rules", Exported { redacted: &[] }),
    ("channel_rules", Exported { redacted: &[] }),
    ("enrichment_rules", Exported { redacted: &[] }),
    ("mapping_schemas", Exported { redacted: &[] }),
    ("mapping_rows", Exported { redacted: &[] }),
    (
        "mapping_services",
        Exported {
            // Custom headers of a mapping service (ING-074) usually carry its credential.
            redacted: &["headers"],
        },
    ),
    ("alert_pipelines", Exported { redacted: &[] }),
    ("custom_fields", Exported { redacted: &[] }),
    ("notification_templates", Exported { redacted: &[] }),
    (
        "schedules",
        Exported {
            redacted: &["feed_token"],
        },
    ),
    ("calendars", Exported { redacted: &[] }),
    ("holiday_sets", Exported { redacted: &[] }),
    (
        "webhook_integrations",
        Exported {
            redacted: &["headers", "signing_secret"],
        },
    ),
    (
        "custom_integrations",
        Exported {
            // A custom action's headers usually carry the receiver's credential (RSP-380).
            redacted: &["headers"],
        },
    ),
    (
        "im_integrations",
        Exported {
            redacted: &["bot_token", "signing_secret", "encrypt_key"],
        },
    ),
    (
        "ticket_sync_integrations",
        Exported {
            // The ticket system's API token or password, and the inbound push credential
            // (with its lookup hash).
            redacted: &["secret", "push_token", "push_token_hash"],
        },
    ),
    ("ticket_sync_links", Exported { redacted: &[] }),
    ("ticket_sync_jobs", Exported { redacted: &[] }),
    (
        "ticket_sync_tokens",
        Exported {
            // ServiceDesk Plus cloud OAuth tokens (RSP-407).
            redacted: &["access_token", "refresh_token"],
        },
    ),
    ("im_links", Exported { redacted: &[] }),
    ("im_unavailable_chats", Exported { redacted: &[] }),
    ("im_conversations", Exported { redacted: &[] }),
    ("war_rooms", Exported { redacted: &[] }),
    ("war_room_members", Exported { redacted: &[] }),
    ("war_room_observers", Exported { redacted: &[] }),
    (
        "im_link_codes",
        Exported {
            // Hashes of one-time link codes.
            redacted: &["code_hash"],
        },
    ),
    (
        "im_card_codes",
        Exported {
            // A response code lets its holder replace the card (RSP-313).
            redacted: &["response_code"],
        },
    ),
    ("alerts", Exported { redacted: &[] }),
    ("events", Exported { redacted: &[] }),
    ("event_outcomes", Exported { redacted: &[] }),
    ("incidents", Exported { redacted: &[] }),
    ("incident_timeline", Exported { redacted: &[] }),
    ("notifications", Exported { redacted: &[] }),
    ("webhook_deliveries", Exported { redacted: &[] }),
    ("webhook_attempts", Exported { redacted: &[] }),
    ("changes", Exported { redacted: &[] }),
    ("change_heads", Exported { redacted: &[] }),
    ("change_events", Exported { redacted: &[] }),
    ("audit_log", Exported { redacted: &[] }),
    (
        "sso_configs",
        Exported {
            // The OIDC client secret (response.md 1.24).
            redacted: &["secret"],
        },
    ),
    ("app_keys", Secret),
    ("member_feeds", Secret),
    ("sessions", Secret),
    // The SAML subject of SAML-opened console sessions (single logout): keyed by the session
    // token's hash and meaningless without the session it belongs to, which is a secret left
    // out of every export; so is this.
    ("saml_sessions", Secret),
    ("password_resets", Secret),
    // Codes proving a member's new e-mail address or phone number (RSP-333).
    ("contact_verifications", Secret),
    // E-mail sign-in codes: salted hashes of short-lived secrets.
    ("login_codes", Secret),
    // Sign-ins under way at an identity provider: nonces and PKCE verifiers.
    ("sso_logins", Secret),
    ("saas_tenants", OperatorRecord),
    ("saas_ledger_entries", OperatorRecord),
    ("saas_overdue_items", OperatorRecord),
    ("saas_job_runs", OperatorRecord),
    ("saas_audit", OperatorRecord),
    ("saas_licence_orders", OperatorRecord),
    ("saas_licence_holdings", OperatorRecord),
    ("saas_licence_actions", OperatorRecord),
    // Terminations and cancellations (SVC-231 … SVC-238): evidence of who ended the
    // service, why and what was refunded, kept with the ledger.
    ("saas_terminations", OperatorRecord),
    // Communication packs bought and the unit each metered send drew (SVC-072/074):
    // billing records like the orders.
    ("saas_comm_packs", OperatorRecord),
    ("saas_comm_units", OperatorRecord),
    ("login_failures", OperatorRecord),
    // Wrapped data keys (destroyed, not deleted, at purge) and purge certificates (SVC-191).
    ("tenant_keys", OperatorRecord),
    ("purge_certificates", OperatorRecord),
    // Support tickets (SVC-171): the operator's correspondence with the tenant (SVC-223).
    ("support_tickets", OperatorRecord),
    ("support_messages", OperatorRecord),
    // Notices, agreement versions and acceptances (SVC-312, SVC-030, SVC-032): evidence the
    // operator keeps after the purge.
    ("saas_notices", OperatorRecord),
    ("saas_documents", OperatorRecord),
    ("saas_acceptances", OperatorRecord),
    // Notices not yet given (SVC-312): the operator's to-do list, kept like the records.
    ("saas_notice_outbox", OperatorRecord),
    // Operator access (SVC-226): staff identities (tokens hashed), the tenant's access grants
    // and the lawful-request register are kept as evidence after a purge.
    ("saas_staff", OperatorRecord),
    ("saas_access_grants", OperatorRecord),
    ("saas_lawful_requests", OperatorRecord),
    // Legal holds and data-security incidents (SVC-192, SVC-194): evidence of the
    // operator's duties, kept after a purge like the register.
    ("saas_legal_holds", OperatorRecord),
    ("saas_security_incidents", OperatorRecord),
    ("saas_security_incident_tenants", OperatorRecord),
    // Closures asked for by e-mail and their confirmation (SVC-010): evidence of the release.
    ("saas_closure_requests", OperatorRecord),
    // Staff-assisted ownership transfers (SVC-004): evidence of who owns the tenant.
    ("saas_ownership_transfers", OperatorRecord),
    // SVC-009: dormancy notices and deactivations of login identifiers (person-level).
    ("saas_dormant_logins", OperatorRecord),
    // SLA measurement, exclusions and claims (SVC-270…SVC-282): the operator's evidence
    // for compensation, kept after a purge like the ledger they lead to.
    ("sla_request_counts", OperatorRecord),
    ("sla_exclusions", OperatorRecord),
    ("sla_unreachable", OperatorRecord),
    ("sla_claims", OperatorRecord),
    // Registration (SVC-180, SVC-213): the directory entry (tenant id and region), the legal
    // entity and the contact record are operator records.
    ("saas_tenant_directory", OperatorRecord),
    ("saas_legal_entities", OperatorRecord),
    ("saas_contacts", OperatorRecord),
    // SVC-033: the acceptance recorded with each order, evidence like the decisions.
    ("saas_order_acceptances", OperatorRecord),
    // SVC-212: the owner's consents to cross-region transfers and the transfers made under
    // them or under a lawful order: evidence kept after a purge like the register.
    ("saas_transfer_consents", OperatorRecord),
    ("saas_transfers", OperatorRecord),
    ("saas_transfer_imports", OperatorRecord),
    // SVC-232/237: each lift of an export block, with the reasons and both staff members.
    ("saas_export_block_lifts", OperatorRecord),
    // SVC-214: the operator's published list of notification providers per region.
    ("saas_region_providers", OperatorRecord),
    // SVC-191: the operator's signing keys (the seed sealed under the key-encryption key).
    ("operator_signing_keys", OperatorRecord),
    ("timers", Internal),
    // SAML assertion IDs already used (replay protection), kept until the assertion expires.
    ("saml_assertions", Internal),
    ("leases", Internal),
    ("inbox_progress", Internal),
    ("inbox", Internal),
    ("schedule_reminder_runs", Internal),
    ("pull_schedules", Internal),
    ("account_exports", Internal),
    // SMS reply codes: short-lived (a day) pointers from a phone's reply to an incident.
    ("sms_reply_codes", Internal),
    // One-click action links: hashed, short-lived (a day) pointers from a notification to an
    // incident and the member it went to.
    ("action_links", Internal),
    // One-time registration codes (hashed), before any tenant exists; gone after a day.
    ("saas_registration_codes", Internal),
];

/// Why an export may not start now (SVC-182).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportRefusal {
    /// Another export of the account is being built.
    InProgress,
    /// Three exports were started in the last 24 hours; the next may start at `retry_at`.
    DailyLimit { retry_at: Millis },
}

/// Full exports per account in any 24 hours (SVC-182, a decision of the spec).
pub const EXPORTS_PER_DAY: usize = 3;
/// How long an archive can be downloaded (SVC-182): then it is deleted.
pub const EXPORT_VALID_MS: Millis = 7 * 24 * 3_600_000;
/// A `building` export older than this was left by a node that stopped mid-build: it no
/// longer blocks a new one and is marked failed by the sweep.
pub const STALE_BUILD_MS: Millis = 3_600_000;
const DAY_MS: Millis = 24 * 3_600_000;

/// The rows of one exported table.
#[derive(Debug, Clone)]
pub struct ExportedTable {
    pub table: &'static str,
    pub rows: Vec<Map<String, Value>>,
}

/// An export as `/account/export/list` shows it (never the archive or its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportRecord {
    pub export_id: i64,
    pub account_id: i64,
    pub requested_by: i64,
    /// `building`, `ready`, `failed` or `expired` (the archive was deleted).
    pub status: String,
    pub created_at: Millis,
    pub finished_at: Millis,
    pub expires_at: Millis,
    pub size_bytes: i64,
    pub sha256: String,
    pub error: String,
}

/// A ready archive found by its download token.
#[derive(Debug, Clone)]
pub struct ExportArchive {
    pub export_id: i64,
    pub account_id: i64,
    pub archive: Vec<u8>,
    pub sha256: String,
}

const RECORD_COLUMNS: &str = "export_id, account_id, requested_by, status, created_at, \
     finished_at, expires_at, size_bytes, sha256, error";

fn record(row: &AnyRow) -> Result<ExportRecord> {
    Ok(ExportRecord {
        export_id: get_i64(row, "export_id")?,
        account_id: get_i64(row, "account_id")?,
        requested_by: get_i64(row, "requested_by")?,
        status: get_str(row, "status")?,
        created_at: get_i64(row, "created_at")?,
        finished_at: get_i64(row, "finished_at")?,
        expires_at: get_i64(row, "expires_at")?,
        size_bytes: get_i64(row, "size_bytes")?,
        sha256: get_str(row, "sha256")?,
        error: get_str(row, "error")?,
    })
}

/// One column value as JSON: the exported tables hold integers and text only; anything else
/// the driver can decode is still carried (floats, bytes as hex) rather than dropped.
fn column_value(row: &AnyRow, i: usize) -> Result<Value> {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
        return Ok(v.map_or(Value::Null, |b| Value::from(hex::encode(b))));
    }
    Err(StoreError::Corrupt(format!(
        "column {} cannot be exported: unknown type",
        row.columns()[i].name()
    )))
}

/// Removes `member` from the JSON object stored as text in `column`, when there is one.
fn scrub_member(object: &mut Map<String, Value>, column: &str, member: &str) {
    let Some(Value::String(text)) = object.get(column) else {
        return;
    };
    let Ok(Value::Object(mut doc)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if doc.remove(member).is_some() {
        object.insert(
            column.to_string(),
            Value::String(Value::Object(doc).to_string()),
        );
    }
}

impl Store {
    /// The tables of the live schema (migration bookkeeping excluded).
    pub async fn schema_tables(&self) -> Result<Vec<String>> {
        let mut conn = self.inner.read.acquire().await?;
        let text = if is_sqlite(&conn) {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name"
        } else {
            "SELECT CAST(table_name AS TEXT) AS t FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '_sqlx%' ORDER BY table_name"
        };
        let rows = Sql::new(text).query_on(&conn).fetch_all(&mut *conn).await?;
        rows.iter().map(|r| get_str(r, "t")).collect()
    }

    /// Tables of the live schema that [`TABLES`] does not classify (must stay empty).
    pub async fn unclassified_tables(&self) -> Result<Vec<String>> {
        Ok(self
            .schema_tables()
            .await?
            .into_iter()
            .filter(|t| !TABLES.iter().any(|(name, _)| name == t))
            .collect())
    }

    /// Every exported table of the account, read in one consistent snapshot, secret columns
    /// left out. Tables come in [`TABLES`] order, rows ordered by their first column.
    pub async fn export_snapshot(&self, account_id: i64) -> Result<Vec<ExportedTable>> {
        let mut tx = self.inner.read.begin().await?;
        if !is_sqlite(&tx) {
            Sql::new("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .query_on(&tx)
                .execute(&mut *tx)
                .await?;
        }
        let mut out = Vec::new();
        for (table, class) in TABLES {
            let TableClass::Exported { redacted } = class else {
                continue;
            };
            let mut sql = Sql::new(&format!("SELECT * FROM {table} WHERE account_id = "));
            sql.bind(account_id).push(" ORDER BY 1");
            let rows = sql.query_on(&tx).fetch_all(&mut *tx).await?;
            let mut objects = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut object = Map::new();
                for (i, column) in row.columns().iter().enumerate() {
                    if redacted.contains(&column.name()) {
                        continue;
                    }
                    object.insert(column.name().to_string(), column_value(row, i)?);
                }
                for (column, member) in redacted.iter().filter_map(|r| r.split_once('.')) {
                    scrub_member(&mut object, column, member);
                }
                objects.push(object);
            }
            out.push(ExportedTable {
                table,
                rows: objects,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Starts an export (status `building`) unless one is being built or three were started
    /// in the last 24 hours (SVC-182). The check and the insert are one write transaction, so
    /// two simultaneous requests cannot both pass.
    pub async fn begin_export(
        &self,
        account_id: i64,
        requested_by: i64,
        now: Millis,
    ) -> std::result::Result<i64, BeginExport> {
        let mut tx = self
            .inner
            .write
            .begin()
            .await
            .map_err(|e| BeginExport::store(e.into()))?;
        let mut sql =
            Sql::new("SELECT status, created_at FROM account_exports WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND created_at > ")
            .bind(now - DAY_MS)
            .push(" ORDER BY created_at");
        let rows = sql
            .query_on(&tx)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| BeginExport::store(e.into()))?;
        let mut recent = Vec::new();
        for row in &rows {
            let status = get_str(row, "status").map_err(BeginExport::store)?;
            let created_at = get_i64(row, "created_at").map_err(BeginExport::store)?;
            if status == "building" && created_at > now - STALE_BUILD_MS {
                return Err(BeginExport::Refused(ExportRefusal::InProgress));
            }
            recent.push(created_at);
        }
        if recent.len() >= EXPORTS_PER_DAY {
            let oldest_counted = recent[recent.len() - EXPORTS_PER_DAY];
            return Err(BeginExport::Refused(ExportRefusal::DailyLimit {
                retry_at: oldest_counted + DAY_MS,
            }));
        }
        let export_id = draw_id(&mut tx).await.map_err(BeginExport::store)?;
        let mut sql = Sql::new(
            "INSERT INTO account_exports (export_id, account_id, requested_by, status, \
             created_at, finished_at, expires_at, size_bytes, sha256, error, token_hash) VALUES (",
        );
        sql.bind(export_id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(requested_by)
            .push(", 'building', ")
            .bind(now)
            .push(", 0, 0, 0, '', '', '')");
        sql.query_on(&tx)
            .execute(&mut *tx)
            .await
            .map_err(|e| BeginExport::store(e.into()))?;
        tx.commit()
            .await
            .map_err(|e| BeginExport::store(e.into()))?;
        Ok(export_id)
    }

    /// Stores the built archive: `ready`, downloadable by the token whose SHA-256 is
    /// `token_hash` until `now + 7 days`.
    pub async fn finish_export(
        &self,
        account_id: i64,
        export_id: i64,
        archive: &[u8],
        sha256: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<ExportRecord> {
        let mut conn = self.inner.write.acquire().await?;
        let size = i64::try_from(archive.len()).unwrap_or(i64::MAX);
        let mut sql = Sql::new("UPDATE account_exports SET status = 'ready', archive = ");
        sql.bind(archive.to_vec())
            .push(", sha256 = ")
            .bind(sha256)
            .push(", token_hash = ")
            .bind(token_hash)
            .push(", size_bytes = ")
            .bind(size)
            .push(", finished_at = ")
            .bind(now)
            .push(", expires_at = ")
            .bind(now + EXPORT_VALID_MS)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND export_id = ")
            .bind(export_id);
        // Moved into the query, not cloned: the archive may be large.
        sql.into_query_on(&conn).execute(&mut *conn).await?;
        drop(conn);
        self.export_record(account_id, export_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("export {export_id} vanished")))
    }

    /// Marks a build that could not finish as failed, with the reason.
    pub async fn fail_export(
        &self,
        account_id: i64,
        export_id: i64,
        error: &str,
        now: Millis,
    ) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE account_exports SET status = 'failed', error = ");
        sql.bind(error)
            .push(", finished_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND export_id = ")
            .bind(export_id);
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// One export of the account.
    pub async fn export_record(
        &self,
        account_id: i64,
        export_id: i64,
    ) -> Result<Option<ExportRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {RECORD_COLUMNS} FROM account_exports WHERE account_id = "
        ));
        sql.bind(account_id)
            .push(" AND export_id = ")
            .bind(export_id);
        let row = sql.query_on(&conn).fetch_optional(&mut *conn).await?;
        row.as_ref().map(record).transpose()
    }

    /// The account's exports, newest first.
    pub async fn list_exports(&self, account_id: i64) -> Result<Vec<ExportRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {RECORD_COLUMNS} FROM account_exports WHERE account_id = "
        ));
        sql.bind(account_id)
            .push(" ORDER BY created_at DESC, export_id DESC");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        rows.iter().map(record).collect()
    }

    /// The ready, unexpired archive whose download token hashes to `token_hash`.
    pub async fn export_archive(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<ExportArchive>> {
        if token_hash.is_empty() {
            return Ok(None);
        }
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT export_id, account_id, archive, sha256 FROM account_exports \
             WHERE status = 'ready' AND token_hash = ",
        );
        sql.bind(token_hash).push(" AND expires_at > ").bind(now);
        let Some(row) = sql.query_on(&conn).fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        Ok(Some(ExportArchive {
            export_id: get_i64(&row, "export_id")?,
            account_id: get_i64(&row, "account_id")?,
            archive: row
                .try_get::<Vec<u8>, _>("archive")
                .map_err(|e| StoreError::Corrupt(format!("archive: {e}")))?,
            sha256: get_str(&row, "sha256")?,
        }))
    }

    /// Deletes the archives whose link expired (SVC-182: "then the archive is deleted") and
    /// fails builds left behind by a stopped node. The rows stay, without archive or token,
    /// as the account's export history. Returns the number of archives deleted.
    pub async fn sweep_exports(&self, now: Millis) -> Result<u64> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "UPDATE account_exports SET status = 'expired', archive = NULL, token_hash = '' \
             WHERE status = 'ready' AND expires_at <= ",
        );
        sql.bind(now);
        let expired = sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let mut sql = Sql::new(
            "UPDATE account_exports SET status = 'failed', error = 'the node building it stopped', \
             finished_at = ",
        );
        sql.bind(now)
            .push(" WHERE status = 'building' AND created_at <= ")
            .bind(now - STALE_BUILD_MS);
        sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(expired)
    }
}

/// Why [`Store::begin_export`] did not start an export.
#[derive(Debug)]
pub enum BeginExport {
    Refused(ExportRefusal),
    Store(StoreError),
}

impl BeginExport {
    fn store(e: StoreError) -> Self {
        BeginExport::Store(e)
    }
}

/// A fresh export id, drawn like the other 13-digit ids.
pub(crate) async fn draw_id(conn: &mut AnyConnection) -> Result<i64> {
    for _ in 0..16 {
        let candidate = crate::webhooks::candidate_id();
        let mut sql = Sql::new("SELECT 1 AS one FROM account_exports WHERE export_id = ");
        sql.bind(candidate);
        if sql
            .query_on(conn)
            .fetch_optional(&mut *conn)
            .await?
            .is_none()
        {
            return Ok(candidate);
        }
    }
    Err(StoreError::Database(
        "no free export id after 16 draws".into(),
    ))
}
