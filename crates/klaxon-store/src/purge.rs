//! Per-tenant data keys, per-account backups and their restore, and the purge of a tenant
//! (service-agreement.md SVC-185, SVC-190, SVC-191, §21; docs/backup.md; migration 0043).
//!
//! Everything here is driven by the classification of [`TABLES`](crate::export::TABLES), so
//! a new table cannot escape a backup or a purge:
//! - a per-account backup holds every row of the account in the `Exported` tables (secret
//!   columns included: it is a backup, not an export) and the `Secret` tables;
//! - a purge deletes the account's rows from every table that is not an `OperatorRecord`
//!   (SVC-180 keeps those), then counts what is left of the account in each of them (the
//!   verification scan of SVC-190 step 4). Tables that carry no account id at all are named
//!   in [`NO_TENANT_COLUMN`], and a test keeps that list equal to the live schema's.
//!
//! The data key itself is opaque here: the store keeps it wrapped (the wrapping is done by the
//! server with the deployment's key-encryption key) and destroys it in the purge transaction.

use std::collections::HashMap;

use klaxon_core::model::Millis;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Column, Row};

use crate::db::{Arg, Sql, is_sqlite};
use crate::export::{TABLES, TableClass};
use crate::rows::{get_i64, get_str};
use crate::{Result, Store, StoreError};

/// Tables outside the operator records that hold no account id, and why no tenant row can be
/// in them. Every other such table has an `account_id` column (checked by a test).
pub const NO_TENANT_COLUMN: &[(&str, &str)] = &[
    (
        "leases",
        "work-sharing leases between nodes, named after shards, never after a tenant",
    ),
    (
        "inbox_progress",
        "the processor's watermark over the inbox sequence, one row per node group",
    ),
    (
        "saas_registration_codes",
        "one-time codes for an e-mail address before its tenant exists; deleted after a day",
    ),
];

/// A tenant's data key as stored: wrapped under the key-encryption key `kek_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantKeyRecord {
    pub account_id: i64,
    pub key_id: String,
    /// Fingerprint of the key-encryption key that wrapped it.
    pub kek_id: String,
    /// Hex of the wrapped key; empty once destroyed.
    pub wrapped_key: String,
    pub created_at: Millis,
    /// 0 while the key exists.
    pub destroyed_at: Millis,
}

/// The rows of one table of a per-account backup.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupTable {
    pub table: String,
    pub rows: Vec<Map<String, Value>>,
}

/// Rows deleted from one table by a purge, and the rows of the account found there after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgedTable {
    pub table: String,
    pub deleted: u64,
    pub remaining: u64,
}

/// What [`Store::purge_tenant`] did.
#[derive(Debug, Clone)]
pub struct PurgeOutcome {
    pub account_id: i64,
    /// Every non-operator table, in deletion order.
    pub tables: Vec<PurgedTable>,
    /// The data key as it was destroyed (`None`: the tenant never had one).
    pub key: Option<TenantKeyRecord>,
    /// True when the key was destroyed by this run (false: already destroyed, or none).
    pub key_destroyed_now: bool,
}

impl PurgeOutcome {
    /// The verification scan found no row of the tenant anywhere (SVC-190 step 4).
    pub fn verified(&self) -> bool {
        self.tables.iter().all(|t| t.remaining == 0)
    }
}

/// A stored purge certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeCertificateRecord {
    pub certificate_id: String,
    pub account_id: i64,
    pub issued_at: Millis,
    pub body: String,
    pub sha256: String,
    /// Hex of the operator's Ed25519 signature of `sha256` (SVC-191); empty when unsigned
    /// (a self-hosted install has no operator key).
    pub signature: String,
    pub signing_key_id: String,
}

fn key_record(row: &sqlx::any::AnyRow) -> Result<TenantKeyRecord> {
    Ok(TenantKeyRecord {
        account_id: get_i64(row, "account_id")?,
        key_id: get_str(row, "key_id")?,
        kek_id: get_str(row, "kek_id")?,
        wrapped_key: get_str(row, "wrapped_key")?,
        created_at: get_i64(row, "created_at")?,
        destroyed_at: get_i64(row, "destroyed_at")?,
    })
}

const KEY_COLUMNS: &str = "account_id, key_id, kek_id, wrapped_key, created_at, destroyed_at";

/// The tables a backup carries and a restore writes: the tenant's data and its secrets.
fn backed_up(class: &TableClass) -> bool {
    matches!(class, TableClass::Exported { .. } | TableClass::Secret)
}

/// The tables a purge empties of the tenant's rows: everything but the operator records.
fn purged(table: &str, class: &TableClass) -> bool {
    !matches!(class, TableClass::OperatorRecord)
        && !NO_TENANT_COLUMN.iter().any(|(name, _)| *name == table)
}

/// How a column is bound on restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    Integer,
    Bytes,
    Text,
}

fn column_kind(declared: &str) -> ColumnKind {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        ColumnKind::Integer
    } else if t.contains("blob") || t.contains("bytea") {
        ColumnKind::Bytes
    } else {
        ColumnKind::Text
    }
}

/// The columns of `table` in the live schema with how each is bound.
pub(crate) async fn columns_of(
    conn: &mut AnyConnection,
    table: &str,
) -> Result<HashMap<String, ColumnKind>> {
    let mut out = HashMap::new();
    if is_sqlite(conn) {
        // `table` comes from TABLES (a fixed list), never from input.
        let rows = Sql::new(&format!(
            "SELECT name, type FROM pragma_table_info('{table}')"
        ))
        .query_on(conn)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            out.insert(get_str(row, "name")?, column_kind(&get_str(row, "type")?));
        }
    } else {
        let mut sql = Sql::new(
            "SELECT CAST(column_name AS TEXT) AS name, CAST(data_type AS TEXT) AS type \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = ",
        );
        sql.bind(table);
        let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
        for row in &rows {
            out.insert(get_str(row, "name")?, column_kind(&get_str(row, "type")?));
        }
    }
    Ok(out)
}

pub(crate) fn bad_backup(message: String) -> StoreError {
    StoreError::Corrupt(format!("backup: {message}"))
}

/// One JSON value of a backup as a bind argument for a column of `kind`.
fn to_arg(table: &str, column: &str, kind: ColumnKind, value: &Value) -> Result<Arg> {
    let wrong = || bad_backup(format!("{table}.{column}: unexpected value {value}"));
    Ok(match (kind, value) {
        (ColumnKind::Integer, Value::Null) => Arg::NullInt,
        (ColumnKind::Bytes, Value::Null) => Arg::NullBytes,
        (ColumnKind::Text, Value::Null) => Arg::NullText,
        (ColumnKind::Integer, Value::Number(n)) => Arg::I64(n.as_i64().ok_or_else(wrong)?),
        (ColumnKind::Integer, Value::Bool(b)) => Arg::I64(i64::from(*b)),
        (ColumnKind::Integer, Value::String(s)) => Arg::I64(s.parse().map_err(|_| wrong())?),
        (ColumnKind::Bytes, Value::String(s)) => Arg::Bytes(hex::decode(s).map_err(|_| wrong())?),
        (ColumnKind::Text, Value::String(s)) => Arg::Text(s.clone()),
        (ColumnKind::Text, Value::Number(n)) => Arg::Text(n.to_string()),
        _ => return Err(wrong()),
    })
}

/// One column value as JSON, whatever its type (bytes as hex).
fn column_json(row: &sqlx::any::AnyRow, i: usize) -> Result<Value> {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
        return Ok(v.map_or(Value::Null, |b| Value::from(hex::encode(b))));
    }
    Err(StoreError::Corrupt(format!(
        "column {} cannot be backed up: unknown type",
        row.columns()[i].name()
    )))
}

impl Store {
    /// The tenant's data key row, live or destroyed.
    pub async fn tenant_key(&self, account_id: i64) -> Result<Option<TenantKeyRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {KEY_COLUMNS} FROM tenant_keys WHERE account_id = "
        ));
        sql.bind(account_id);
        let row = sql.query_on(&conn).fetch_optional(&mut *conn).await?;
        row.as_ref().map(key_record).transpose()
    }

    /// Stores `key` unless the tenant already has a key row; returns the row that is stored
    /// (so two nodes creating a key at once agree on one).
    pub async fn create_tenant_key(&self, key: &TenantKeyRecord) -> Result<TenantKeyRecord> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(&format!("INSERT INTO tenant_keys ({KEY_COLUMNS}) VALUES ("));
        sql.bind(key.account_id)
            .push(", ")
            .bind(key.key_id.as_str())
            .push(", ")
            .bind(key.kek_id.as_str())
            .push(", ")
            .bind(key.wrapped_key.as_str())
            .push(", ")
            .bind(key.created_at)
            .push(", 0) ON CONFLICT (account_id) DO NOTHING");
        sql.query_on(&conn).execute(&mut *conn).await?;
        let mut sql = Sql::new(&format!(
            "SELECT {KEY_COLUMNS} FROM tenant_keys WHERE account_id = "
        ));
        sql.bind(key.account_id);
        let row = sql.query_on(&conn).fetch_one(&mut *conn).await?;
        key_record(&row)
    }

    /// Every row of the account in the backed-up tables (secret columns included), read in one
    /// consistent snapshot, in [`TABLES`] order. `progress` is called after each table.
    pub async fn backup_snapshot(
        &self,
        account_id: i64,
        mut progress: impl FnMut(&str, usize),
    ) -> Result<Vec<BackupTable>> {
        let mut tx = self.inner.read.begin().await?;
        if !is_sqlite(&tx) {
            Sql::new("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .query_on(&tx)
                .execute(&mut *tx)
                .await?;
        }
        let mut out = Vec::new();
        for (table, class) in TABLES {
            if !backed_up(class) {
                continue;
            }
            let mut sql = Sql::new(&format!("SELECT * FROM {table} WHERE account_id = "));
            sql.bind(account_id).push(" ORDER BY 1");
            let rows = sql.query_on(&tx).fetch_all(&mut *tx).await?;
            let mut objects = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut object = Map::new();
                for (i, column) in row.columns().iter().enumerate() {
                    object.insert(column.name().to_string(), column_json(row, i)?);
                }
                objects.push(object);
            }
            progress(table, objects.len());
            out.push(BackupTable {
                table: table.to_string(),
                rows: objects,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Writes a per-account backup back, in one transaction, into a database where the
    /// account has no row at all (restore never merges). Every table must be a backed-up
    /// table of [`TABLES`], every column one of the live schema, every row the account's.
    /// Returns the rows written per table.
    pub async fn restore_snapshot(
        &self,
        account_id: i64,
        tables: &[BackupTable],
        mut progress: impl FnMut(&str, usize),
    ) -> Result<Vec<(String, u64)>> {
        // Validate names before any SQL is built from them.
        for t in tables {
            let known = TABLES
                .iter()
                .any(|(name, class)| *name == t.table && backed_up(class));
            if !known {
                return Err(bad_backup(format!(
                    "table {:?} is not a table a backup holds",
                    t.table
                )));
            }
        }
        let mut tx = self.inner.write.begin().await?;
        for (table, class) in TABLES {
            if !backed_up(class) {
                continue;
            }
            let mut sql = Sql::new(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE account_id = "
            ));
            sql.bind(account_id);
            let n = get_i64(&sql.query_on(&tx).fetch_one(&mut *tx).await?, "n")?;
            if n > 0 {
                return Err(bad_backup(format!(
                    "account {account_id} already has {n} rows in {table}: restore writes only \
                     into a database without the account (purge or drop it first)"
                )));
            }
        }
        let mut written = Vec::new();
        // TABLES order: referenced tables (accounts, teams) come before their referrers.
        for (table, class) in TABLES {
            if !backed_up(class) {
                continue;
            }
            let Some(t) = tables.iter().find(|t| t.table == *table) else {
                continue;
            };
            write_rows(&mut tx, table, &t.rows, account_id, account_id, &[]).await?;
            if !is_sqlite(&tx) && !t.rows.is_empty() {
                advance_identities(&mut tx, table).await?;
            }
            progress(table, t.rows.len());
            written.push((table.to_string(), t.rows.len() as u64));
        }
        tx.commit().await?;
        Ok(written)
    }

    /// The tables outside the operator records whose live schema has no `account_id` column
    /// (a test keeps this equal to [`NO_TENANT_COLUMN`], so a purge cannot miss a table).
    pub async fn tables_without_tenant_column(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut conn = self.inner.read.acquire().await?;
        for (table, class) in TABLES {
            if matches!(class, TableClass::OperatorRecord) {
                continue;
            }
            let columns = match (&self.inner.inbox, *table == "inbox") {
                (Some(file), true) => {
                    let mut c = file.read.acquire().await?;
                    columns_of(&mut c, table).await?
                }
                _ => columns_of(&mut conn, table).await?,
            };
            if !columns.contains_key("account_id") {
                out.push(table.to_string());
            }
        }
        Ok(out)
    }

    /// Rows of the account per purged table (SVC-190 step 4 asks for 0 everywhere).
    pub async fn tenant_row_counts(&self, account_id: i64) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        let mut conn = self.inner.read.acquire().await?;
        for (table, class) in TABLES {
            if !purged(table, class) {
                continue;
            }
            let n = if *table == "inbox" {
                match &self.inner.inbox {
                    Some(file) => {
                        let mut c = file.read.acquire().await?;
                        count(&mut c, table, account_id).await?
                    }
                    None => count(&mut conn, table, account_id).await?,
                }
            } else {
                count(&mut conn, table, account_id).await?
            };
            out.push((table.to_string(), n));
        }
        Ok(out)
    }

    /// Deletes every row of the tenant outside the operator records, destroys its data key,
    /// marks a SaaS tenant `purged` (with an audit row), and scans every purged table for
    /// rows of the tenant left behind (SVC-190 steps 2–4). Idempotent: a second run deletes
    /// nothing and reports the key as already destroyed.
    pub async fn purge_tenant(
        &self,
        account_id: i64,
        now: Millis,
        actor: &str,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<PurgeOutcome> {
        let mut tables = Vec::new();
        // SQLite keeps the inbox in a file of its own: empty it of the tenant first, so no
        // accepted event of the tenant is processed after its rows are gone.
        if let Some(file) = &self.inner.inbox {
            let mut conn = file.write.acquire().await?;
            let deleted = delete(&mut conn, "inbox", account_id).await?;
            progress("inbox", deleted);
            tables.push(PurgedTable {
                table: "inbox".into(),
                deleted,
                remaining: 0,
            });
        }
        let mut tx = self.inner.write.begin().await?;
        // SVC-191: the certificate goes to the owner's last contact, an operator record that
        // outlives the member rows (a registered tenant has one already).
        let mut sql = Sql::new(
            "INSERT INTO saas_contacts (account_id, owner_email, updated_at) SELECT account_id, \
             email, ",
        );
        sql.bind(now)
            .push(
                " FROM members WHERE is_owner = 1 AND status <> 'deleted' AND account_id IN \
                 (SELECT account_id FROM saas_tenants WHERE account_id = ",
            )
            .bind(account_id)
            .push(") ORDER BY member_id LIMIT 1 ON CONFLICT (account_id) DO NOTHING");
        sql.query_on(&tx).execute(&mut *tx).await?;
        // Reverse TABLES order: referrers go before what they reference (accounts last).
        for (table, class) in TABLES.iter().rev() {
            if !purged(table, class) || (*table == "inbox" && self.inner.inbox.is_some()) {
                continue;
            }
            let deleted = delete(&mut tx, table, account_id).await?;
            progress(table, deleted);
            tables.push(PurgedTable {
                table: table.to_string(),
                deleted,
                remaining: 0,
            });
        }
        let mut sql = Sql::new(&format!(
            "SELECT {KEY_COLUMNS} FROM tenant_keys WHERE account_id = "
        ));
        sql.bind(account_id);
        let before = sql.query_on(&tx).fetch_optional(&mut *tx).await?;
        let before = before.as_ref().map(key_record).transpose()?;
        let key_destroyed_now = before.as_ref().is_some_and(|k| k.destroyed_at == 0);
        if key_destroyed_now {
            let mut sql = Sql::new("UPDATE tenant_keys SET wrapped_key = '', destroyed_at = ");
            sql.bind(now)
                .push(" WHERE destroyed_at = 0 AND account_id = ")
                .bind(account_id);
            sql.query_on(&tx).execute(&mut *tx).await?;
        }
        let mut sql = Sql::new(&format!(
            "SELECT {KEY_COLUMNS} FROM tenant_keys WHERE account_id = "
        ));
        sql.bind(account_id);
        let key = sql.query_on(&tx).fetch_optional(&mut *tx).await?;
        let key = key.as_ref().map(key_record).transpose()?;
        // A SaaS tenant: purging → purged, audited (self-hosted installs have no row).
        let mut sql = Sql::new("SELECT state FROM saas_tenants WHERE account_id = ");
        sql.bind(account_id);
        if let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? {
            let from = get_str(&row, "state")?;
            if from != "purged" {
                let mut sql =
                    Sql::new("UPDATE saas_tenants SET state = 'purged', reason = '', since = ");
                sql.bind(now)
                    .push(", updated_at = ")
                    .bind(now)
                    .push(" WHERE account_id = ")
                    .bind(account_id);
                sql.query_on(&tx).execute(&mut *tx).await?;
                let mut sql = Sql::new(
                    "INSERT INTO saas_audit (account_id, at, actor, action, detail) VALUES (",
                );
                sql.bind(account_id)
                    .push(", ")
                    .bind(now)
                    .push(", ")
                    .bind(actor)
                    .push(", 'purge', ")
                    .bind(format!("{from} -> purged (SVC-190)"))
                    .push(")");
                sql.query_on(&tx).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        // The verification scan, after the commit, through the read path.
        let counts = self.tenant_row_counts(account_id).await?;
        for t in &mut tables {
            t.remaining = counts
                .iter()
                .find(|(name, _)| *name == t.table)
                .map_or(0, |(_, n)| *n);
        }
        Ok(PurgeOutcome {
            account_id,
            tables,
            key,
            key_destroyed_now,
        })
    }

    /// Stores an issued certificate (an operator record: it outlives the tenant's data).
    pub async fn insert_purge_certificate(&self, c: &PurgeCertificateRecord) -> Result<()> {
        let mut sql = Sql::new(
            "INSERT INTO purge_certificates (certificate_id, account_id, issued_at, body, sha256, \
             signature, signing_key_id) VALUES (",
        );
        sql.bind(c.certificate_id.as_str())
            .push(", ")
            .bind(c.account_id)
            .push(", ")
            .bind(c.issued_at)
            .push(", ")
            .bind(c.body.as_str())
            .push(", ")
            .bind(c.sha256.as_str())
            .push(", ")
            .bind(c.signature.as_str())
            .push(", ")
            .bind(c.signing_key_id.as_str())
            .push(")");
        let mut tx = self.inner.write.begin().await?;
        sql.query_on(&tx).execute(&mut *tx).await?;
        // SVC-191/316: a SaaS tenant's owner is sent the certificate (e-mail, critical), in
        // the transaction that stores it. Self-hosted installs have no notices.
        let mut saas = Sql::new("SELECT 1 AS one FROM saas_tenants WHERE account_id = ");
        saas.bind(c.account_id);
        if saas.query_on(&tx).fetch_optional(&mut *tx).await?.is_some() {
            crate::saas::enqueue_notice(
                &mut tx,
                c.account_id,
                klaxon_saas::notice::Category::PurgeCertificate,
                "purge_certificate",
                (
                    format!(
                        "Purge certificate {} for your organisation's data",
                        c.certificate_id
                    ),
                    format!(
                        "Your organisation's data was purged. This is the purge certificate; \
                         support can give it again by tenant id.\n\n{}\n",
                        c.body
                    ),
                ),
                &format!("purge_certificate:{}", c.certificate_id),
                c.issued_at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The certificates issued for the account, oldest first.
    pub async fn purge_certificates(&self, account_id: i64) -> Result<Vec<PurgeCertificateRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT certificate_id, account_id, issued_at, body, sha256, signature, signing_key_id \
             FROM purge_certificates \
             WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" ORDER BY issued_at, certificate_id");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                Ok(PurgeCertificateRecord {
                    certificate_id: get_str(row, "certificate_id")?,
                    account_id: get_i64(row, "account_id")?,
                    issued_at: get_i64(row, "issued_at")?,
                    body: get_str(row, "body")?,
                    sha256: get_str(row, "sha256")?,
                    signature: get_str(row, "signature")?,
                    signing_key_id: get_str(row, "signing_key_id")?,
                })
            })
            .collect()
    }

    /// SaaS tenants whose purge is due: `ended` with a purge date at or before `now`, or left
    /// `purging` by an interrupted run (SVC-189, SVC-190), and no legal hold in force at `now`
    /// (SVC-192 pauses the purge; once the hold is lifted the next run takes the tenant).
    pub async fn due_purges(&self, now: Millis) -> Result<Vec<i64>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT account_id FROM saas_tenants t WHERE ((state = 'ended' AND purge_at > 0 \
             AND purge_at <= ",
        );
        sql.bind(now)
            .push(
                ") OR state = 'purging') AND NOT EXISTS (SELECT 1 FROM saas_legal_holds h \
                 WHERE h.account_id = t.account_id AND h.lifted_at = 0 AND h.starts_at <= ",
            )
            .bind(now)
            .push(") ORDER BY account_id");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        rows.iter().map(|r| get_i64(r, "account_id")).collect()
    }

    /// SQLite only: a consistent copy of both database files taken while a node may be
    /// writing (`VACUUM INTO`: each copy is one read snapshot). The inbox goes first: every
    /// event the main copy has processed is then either in the inbox copy or deleted as
    /// processed, and later events are renumbered above the watermark at the next start.
    pub async fn sqlite_snapshot(
        &self,
        main_to: &std::path::Path,
        inbox_to: &std::path::Path,
    ) -> Result<()> {
        let Some(file) = &self.inner.inbox else {
            return Err(StoreError::Database(
                "a file snapshot exists for SQLite only; use pg_dump for PostgreSQL".into(),
            ));
        };
        for (pool, to) in [(&file.read, inbox_to), (&self.inner.read, main_to)] {
            let mut conn = pool.acquire().await?;
            let mut sql = Sql::new("VACUUM INTO ");
            sql.bind(to.display().to_string());
            sql.query_on(&conn).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// What fills a column a package left out (SVC-182 leaves secrets out of an export) when it
/// is imported: a new random value of 16 bytes in hex (a fresh credential) or an empty text
/// (the owner enters the secret again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fill {
    Fresh,
    Empty,
}

/// Inserts `rows` of the account `from_account` into `table`, giving each row the account id
/// `to_account` (the same for a restore; the new tenant's for an import) and the `fill`ed
/// value of each listed column the row lacks. Every column must exist in the live schema.
/// The table name comes from [`TABLES`], never from input.
pub(crate) async fn write_rows(
    conn: &mut AnyConnection,
    table: &str,
    rows: &[Map<String, Value>],
    from_account: i64,
    to_account: i64,
    fill: &[(&str, Fill)],
) -> Result<()> {
    let columns = columns_of(conn, table).await?;
    for row in rows {
        if row.get("account_id").and_then(Value::as_i64) != Some(from_account) {
            return Err(bad_backup(format!(
                "a row of {table} does not belong to account {from_account}"
            )));
        }
        let mut sql = Sql::new(&format!("INSERT INTO {table} ("));
        let mut args = Vec::with_capacity(row.len() + fill.len());
        let mut names = Vec::with_capacity(row.len() + fill.len());
        for (column, value) in row {
            let Some(kind) = columns.get(column) else {
                return Err(bad_backup(format!(
                    "{table} has no column {column:?} in this schema"
                )));
            };
            let arg = if column == "account_id" {
                Arg::I64(to_account)
            } else {
                to_arg(table, column, *kind, value)?
            };
            names.push(column.as_str());
            args.push(arg);
        }
        for (column, how) in fill {
            if row.contains_key(*column) || !columns.contains_key(*column) {
                continue;
            }
            names.push(*column);
            args.push(Arg::Text(match how {
                Fill::Fresh => hex::encode(rand::random::<[u8; 16]>()),
                Fill::Empty => String::new(),
            }));
        }
        for (i, column) in names.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            // Checked against the live schema just above.
            sql.push(column);
        }
        sql.push(") VALUES (");
        for (i, a) in args.into_iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(a);
        }
        sql.push(")");
        sql.into_query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// PostgreSQL: rows restored with their ids leave identity sequences behind; move each past
/// the table's largest id (never backwards), so new rows do not collide with restored ones.
/// SQLite numbers new rows after the largest id by itself.
pub(crate) async fn advance_identities(conn: &mut AnyConnection, table: &str) -> Result<()> {
    let mut sql = Sql::new(
        "SELECT CAST(column_name AS TEXT) AS name FROM information_schema.columns \
         WHERE table_schema = current_schema() AND is_identity = 'YES' AND table_name = ",
    );
    sql.bind(table);
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    for row in &rows {
        let column = get_str(row, "name")?;
        // `table` is from TABLES and `column` from the catalogue: both are identifiers of
        // the schema, never input.
        let seq = format!("pg_get_serial_sequence('{table}', '{column}')");
        let text = format!(
            "SELECT setval({seq}, GREATEST(COALESCE((SELECT MAX({column}) FROM {table}), 1), \
             COALESCE(pg_sequence_last_value(CAST({seq} AS regclass)), 1))) AS v"
        );
        Sql::new(&text).query_on(conn).fetch_one(&mut *conn).await?;
    }
    Ok(())
}

async fn count(conn: &mut AnyConnection, table: &str, account_id: i64) -> Result<u64> {
    let mut sql = Sql::new(&format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE account_id = "
    ));
    sql.bind(account_id);
    let n = get_i64(&sql.query_on(conn).fetch_one(&mut *conn).await?, "n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn delete(conn: &mut AnyConnection, table: &str, account_id: i64) -> Result<u64> {
    let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE account_id = "));
    sql.bind(account_id);
    Ok(sql
        .query_on(conn)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}
