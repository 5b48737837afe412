//! Label enrichment (ingest.md §2.5, §2.6): each alert integration's rule list, mapping
//! schemas and their rows, and stage 4 of the processing batch.
//!
//! In the batch nothing is read per event: the rule lists of the batch's integrations come
//! with one query per account, the schemas the rules name with one more, and table rows are
//! read only for the source values the events actually carry. Since a map rule may read labels
//! that earlier rules made, those values are known only by running the rules; so the batch runs
//! them, collects the keys the core reported as not loaded ([`Report::wanted`]), reads all of
//! them with one query per schema, and runs the affected events again from their original
//! labels. Each round loads keys the previous one could not know, so the number of rounds is
//! bounded by the number of map rules in a chain (plus one).
//!
//! Map rules with `source = api` (ING-072…075) are answered from the [`ApiAnswers`] the caller
//! passes in. Requests without an answer are returned ([`Enriched::calls`]) so the caller can
//! roll the batch back, make the calls with no transaction open, and process it again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use klaxon_core::enrichment::{
    ApiCall, ApiKey, ApiLookup, EnrichmentRule, Lookup, MAX_ROWS, MappingSchema, MappingService,
    Report, RuleSet, TableUpload, Tables, row_key,
};
use klaxon_core::ids::IdSource;
use klaxon_core::model::{Millis, QueuedEvent};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool};

use crate::db::Sql;
use crate::mapping_services::ApiAnswers;
use crate::noise::EventOutcome;
use crate::records::Page;
use crate::rows::{get_i64, get_str};
use crate::{Result, StoreError};

/// Most values in one `IN (…)` list.
const IN_CHUNK: usize = 512;
/// Rows per INSERT of an upload (5 parameters each).
const INSERT_ROWS: usize = 400;

/// An integration's saved rule list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichmentRecord {
    pub integration_id: i64,
    pub rules: Vec<EnrichmentRule>,
    pub updated_by: i64,
    /// 0 when the integration never had rules.
    pub updated_at: Millis,
}

/// A schema with its row count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRecord {
    pub schema: MappingSchema,
    pub row_count: i64,
    pub creator_id: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One row of a mapping table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRow {
    pub source_values: Vec<String>,
    pub result_values: Vec<String>,
}

/// Why a mapping write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingRefusal {
    SchemaNotFound,
    /// The keys of a schema that holds rows cannot change (the rows are keyed by them).
    KeysFixed,
    /// Delete of a schema an enrichment rule still names (the integration ids).
    InUse(Vec<i64>),
    /// A single-row add past [`MAX_ROWS`].
    Full,
    RowNotFound,
    ServiceNotFound,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| corrupt("json", e))
}

fn hash(values: &[String]) -> String {
    hex::encode(Sha256::digest(row_key(values).as_bytes()))
}

// ---- rules ----

pub(crate) fn record_row(row: &sqlx::any::AnyRow) -> Result<EnrichmentRecord> {
    let id = get_i64(row, "integration_id")?;
    let text = get_str(row, "rules")?;
    Ok(EnrichmentRecord {
        integration_id: id,
        rules: serde_json::from_str(&text)
            .map_err(|e| corrupt(&format!("enrichment_rules.rules {id}"), e))?,
        updated_by: get_i64(row, "updated_by")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

async fn rules_of(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_ids: &[i64],
) -> Result<Vec<EnrichmentRecord>> {
    let mut out = Vec::new();
    for chunk in integration_ids.chunks(IN_CHUNK) {
        let mut sql = Sql::new(
            "SELECT integration_id, rules, updated_by, updated_at FROM enrichment_rules \
             WHERE account_id = ",
        );
        sql.bind(account_id);
        sql.and_in_padded("integration_id", chunk);
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            out.push(record_row(&row)?);
        }
    }
    Ok(out)
}

/// Replaces the integration's rule list (validated by the caller). Rules without an id get one.
async fn save_rules(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
    mut rules: Vec<EnrichmentRule>,
    by: i64,
    now: Millis,
    ids: &mut (dyn IdSource + Send),
) -> Result<EnrichmentRecord> {
    for r in &mut rules {
        if r.id.trim().is_empty() {
            r.id = ids.object_id(now);
        }
    }
    let text = json(&rules)?;
    let mut tx = pool.begin().await?;
    let mut del = Sql::new("DELETE FROM enrichment_rules WHERE account_id = ");
    del.bind(account_id)
        .push(" AND integration_id = ")
        .bind(integration_id);
    del.query_on(&tx).execute(&mut *tx).await?;
    if !rules.is_empty() {
        let mut ins = Sql::new(
            "INSERT INTO enrichment_rules (integration_id, account_id, rules, updated_by, \
             updated_at) VALUES (",
        );
        ins.bind(integration_id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(text)
            .push(", ")
            .bind(by)
            .push(", ")
            .bind(now)
            .push(")");
        ins.query_on(&tx).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(EnrichmentRecord {
        integration_id,
        rules,
        updated_by: by,
        updated_at: now,
    })
}

// ---- schemas ----

const SCHEMA_COLUMNS: &str = "schema_id, account_id, name, description, team_id, \
     source_label_keys, result_label_keys, creator_id, created_at, updated_at";

fn schema_row(row: &sqlx::any::AnyRow) -> Result<(MappingSchema, i64, Millis, Millis)> {
    let id = get_str(row, "schema_id")?;
    let keys = |col: &str| -> Result<Vec<String>> {
        serde_json::from_str(&get_str(row, col)?)
            .map_err(|e| corrupt(&format!("mapping_schemas.{col} {id}"), e))
    };
    Ok((
        MappingSchema {
            schema_id: id.clone(),
            account_id: get_i64(row, "account_id")?,
            name: get_str(row, "name")?,
            description: get_str(row, "description")?,
            team_id: get_i64(row, "team_id")?,
            source_label_keys: keys("source_label_keys")?,
            result_label_keys: keys("result_label_keys")?,
        },
        get_i64(row, "creator_id")?,
        get_i64(row, "created_at")?,
        get_i64(row, "updated_at")?,
    ))
}

async fn row_count(conn: &mut AnyConnection, schema_id: &str) -> Result<i64> {
    let mut sql = Sql::new("SELECT COUNT(*) AS n FROM mapping_rows WHERE schema_id = ");
    sql.bind(schema_id);
    get_i64(&sql.query_on(conn).fetch_one(&mut *conn).await?, "n")
}

async fn load_schema(
    conn: &mut AnyConnection,
    account_id: i64,
    schema_id: &str,
) -> Result<Option<SchemaRecord>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(SCHEMA_COLUMNS)
        .push(" FROM mapping_schemas WHERE account_id = ")
        .bind(account_id)
        .push(" AND schema_id = ")
        .bind(schema_id);
    let Some(row) = sql.query_on(conn).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let (schema, creator_id, created_at, updated_at) = schema_row(&row)?;
    let row_count = row_count(conn, schema_id).await?;
    Ok(Some(SchemaRecord {
        schema,
        row_count,
        creator_id,
        created_at,
        updated_at,
    }))
}

async fn schemas_by_id(
    conn: &mut AnyConnection,
    account_id: i64,
    ids: &[String],
) -> Result<HashMap<String, MappingSchema>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut sql = Sql::new("SELECT ");
        sql.push(SCHEMA_COLUMNS)
            .push(" FROM mapping_schemas WHERE account_id = ")
            .bind(account_id);
        sql.and_in_padded("schema_id", chunk);
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            let (schema, ..) = schema_row(&row)?;
            out.insert(schema.schema_id.clone(), schema);
        }
    }
    Ok(out)
}

/// Creates (empty `schema_id`) or updates a validated schema. Keys of a schema that holds rows
/// cannot change.
async fn save_schema(
    pool: &AnyPool,
    mut schema: MappingSchema,
    by: i64,
    now: Millis,
    ids: &mut (dyn IdSource + Send),
) -> Result<std::result::Result<SchemaRecord, MappingRefusal>> {
    let mut tx = pool.begin().await?;
    if schema.schema_id.is_empty() {
        schema.schema_id = ids.object_id(now);
        let mut sql = Sql::new("INSERT INTO mapping_schemas (");
        sql.push(SCHEMA_COLUMNS).push(") VALUES (");
        sql.bind(schema.schema_id.as_str())
            .push(", ")
            .bind(schema.account_id)
            .push(", ")
            .bind(schema.name.as_str())
            .push(", ")
            .bind(schema.description.as_str())
            .push(", ")
            .bind(schema.team_id)
            .push(", ")
            .bind(json(&schema.source_label_keys)?)
            .push(", ")
            .bind(json(&schema.result_label_keys)?)
            .push(", ")
            .bind(by)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        return Ok(Ok(SchemaRecord {
            schema,
            row_count: 0,
            creator_id: by,
            created_at: now,
            updated_at: now,
        }));
    }
    let Some(old) = load_schema(&mut tx, schema.account_id, &schema.schema_id).await? else {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::SchemaNotFound));
    };
    let keys_change = old.schema.source_label_keys != schema.source_label_keys
        || old.schema.result_label_keys != schema.result_label_keys;
    if keys_change && old.row_count > 0 {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::KeysFixed));
    }
    let mut sql = Sql::new("UPDATE mapping_schemas SET name = ");
    sql.bind(schema.name.as_str())
        .push(", description = ")
        .bind(schema.description.as_str())
        .push(", team_id = ")
        .bind(schema.team_id)
        .push(", source_label_keys = ")
        .bind(json(&schema.source_label_keys)?)
        .push(", result_label_keys = ")
        .bind(json(&schema.result_label_keys)?)
        .push(", updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(schema.account_id)
        .push(" AND schema_id = ")
        .bind(schema.schema_id.as_str());
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(SchemaRecord {
        schema,
        updated_at: now,
        ..old
    }))
}

/// The live integrations whose rules name `schema_id`. A deleted integration's rules are
/// left in place but no longer count: nobody could change them to free the schema.
async fn users_of(conn: &mut AnyConnection, account_id: i64, schema_id: &str) -> Result<Vec<i64>> {
    let mut sql = Sql::new(
        "SELECT r.integration_id, r.rules, r.updated_by, r.updated_at FROM enrichment_rules r \
         JOIN integrations i ON i.integration_id = r.integration_id \
         AND i.account_id = r.account_id WHERE i.deleted = 0 AND r.account_id = ",
    );
    sql.bind(account_id);
    let mut out = Vec::new();
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let record = record_row(&row)?;
        if record
            .rules
            .iter()
            .any(|r| r.source == "table" && r.schema_id == schema_id)
        {
            out.push(record.integration_id);
        }
    }
    Ok(out)
}

async fn delete_schema(
    pool: &AnyPool,
    account_id: i64,
    schema_id: &str,
) -> Result<std::result::Result<(), MappingRefusal>> {
    let mut tx = pool.begin().await?;
    let users = users_of(&mut tx, account_id, schema_id).await?;
    if !users.is_empty() {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::InUse(users)));
    }
    let mut sql = Sql::new("DELETE FROM mapping_schemas WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND schema_id = ")
        .bind(schema_id);
    if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::SchemaNotFound));
    }
    let mut rows = Sql::new("DELETE FROM mapping_rows WHERE account_id = ");
    rows.bind(account_id)
        .push(" AND schema_id = ")
        .bind(schema_id);
    rows.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

async fn list_schemas(
    pool: &AnyPool,
    account_id: i64,
    p: i64,
    limit: i64,
) -> Result<Page<SchemaRecord>> {
    let mut conn = pool.acquire().await?;
    let mut count = Sql::new("SELECT COUNT(*) AS n FROM mapping_schemas WHERE account_id = ");
    count.bind(account_id);
    let total = get_i64(&count.query_on(&conn).fetch_one(&mut *conn).await?, "n")?;
    let limit = limit.max(1);
    let offset = (p.max(1) - 1).saturating_mul(limit);
    let mut sql = Sql::new("SELECT ");
    sql.push(SCHEMA_COLUMNS)
        .push(" FROM mapping_schemas WHERE account_id = ")
        .bind(account_id)
        .push(" ORDER BY created_at, schema_id LIMIT ")
        .bind(limit)
        .push(" OFFSET ")
        .bind(offset);
    let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let (schema, creator_id, created_at, updated_at) = schema_row(row)?;
        let row_count = row_count(&mut conn, &schema.schema_id).await?;
        items.push(SchemaRecord {
            schema,
            row_count,
            creator_id,
            created_at,
            updated_at,
        });
    }
    let seen = offset.saturating_add(i64::try_from(items.len()).unwrap_or(i64::MAX));
    Ok(Page {
        has_next_page: seen < total,
        items,
        total,
        search_after_ctx: None,
    })
}

// ---- rows ----

async fn insert_rows(
    conn: &mut AnyConnection,
    account_id: i64,
    schema_id: &str,
    rows: &[(Vec<String>, Vec<String>)],
) -> Result<()> {
    for chunk in rows.chunks(INSERT_ROWS) {
        let mut sql = Sql::new(
            "INSERT INTO mapping_rows (schema_id, row_hash, account_id, source_values, \
             result_values) VALUES ",
        );
        for (i, (source, result)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(schema_id)
                .push(", ")
                .bind(hash(source))
                .push(", ")
                .bind(account_id)
                .push(", ")
                .bind(json(source)?)
                .push(", ")
                .bind(json(result)?)
                .push(")");
        }
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// ING-071: replaces every row of the schema in one transaction.
async fn replace_rows(
    pool: &AnyPool,
    account_id: i64,
    schema_id: &str,
    upload: &TableUpload,
    now: Millis,
) -> Result<std::result::Result<(), MappingRefusal>> {
    let mut tx = pool.begin().await?;
    if load_schema(&mut tx, account_id, schema_id).await?.is_none() {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::SchemaNotFound));
    }
    let mut del = Sql::new("DELETE FROM mapping_rows WHERE account_id = ");
    del.bind(account_id)
        .push(" AND schema_id = ")
        .bind(schema_id);
    del.query_on(&tx).execute(&mut *tx).await?;
    insert_rows(&mut tx, account_id, schema_id, &upload.rows).await?;
    touch(&mut tx, account_id, schema_id, now).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

async fn touch(
    conn: &mut AnyConnection,
    account_id: i64,
    schema_id: &str,
    now: Millis,
) -> Result<()> {
    let mut sql = Sql::new("UPDATE mapping_schemas SET updated_at = ");
    sql.bind(now)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND schema_id = ")
        .bind(schema_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Adds a row or replaces the row with the same source values (the caller checked the lengths
/// against the schema and that no source value is empty).
async fn upsert_row(
    pool: &AnyPool,
    account_id: i64,
    schema_id: &str,
    row: &MappingRow,
    now: Millis,
) -> Result<std::result::Result<(), MappingRefusal>> {
    let mut tx = pool.begin().await?;
    let Some(schema) = load_schema(&mut tx, account_id, schema_id).await? else {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::SchemaNotFound));
    };
    let mut del = Sql::new("DELETE FROM mapping_rows WHERE schema_id = ");
    del.bind(schema_id)
        .push(" AND row_hash = ")
        .bind(hash(&row.source_values));
    let replaced = del.query_on(&tx).execute(&mut *tx).await?.rows_affected() > 0;
    if !replaced && schema.row_count >= i64::try_from(MAX_ROWS).unwrap_or(i64::MAX) {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::Full));
    }
    let rows = [(row.source_values.clone(), row.result_values.clone())];
    insert_rows(&mut tx, account_id, schema_id, &rows).await?;
    touch(&mut tx, account_id, schema_id, now).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

async fn delete_row(
    pool: &AnyPool,
    account_id: i64,
    schema_id: &str,
    source_values: &[String],
    now: Millis,
) -> Result<std::result::Result<(), MappingRefusal>> {
    let mut tx = pool.begin().await?;
    let mut del = Sql::new("DELETE FROM mapping_rows WHERE account_id = ");
    del.bind(account_id)
        .push(" AND schema_id = ")
        .bind(schema_id)
        .push(" AND row_hash = ")
        .bind(hash(source_values));
    if del.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::RowNotFound));
    }
    touch(&mut tx, account_id, schema_id, now).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

fn mapping_row(row: &sqlx::any::AnyRow) -> Result<MappingRow> {
    let parse = |col: &str| -> Result<Vec<String>> {
        serde_json::from_str(&get_str(row, col)?).map_err(|e| corrupt("mapping_rows", e))
    };
    Ok(MappingRow {
        source_values: parse("source_values")?,
        result_values: parse("result_values")?,
    })
}

/// `search`: a text every matching row has in one of its source values (case-sensitive
/// substring); `limit` 0 = all rows (the download).
async fn list_rows(
    pool: &AnyPool,
    account_id: i64,
    schema_id: &str,
    search: &str,
    p: i64,
    limit: i64,
) -> Result<Page<MappingRow>> {
    let mut conn = pool.acquire().await?;
    let filter = |sql: &mut Sql| {
        sql.bind(account_id)
            .push(" AND schema_id = ")
            .bind(schema_id);
        if !search.is_empty() {
            // The values are stored as a JSON list: search the JSON form of the text, with
            // LIKE's own wildcards escaped.
            let quoted = serde_json::to_string(search).unwrap_or_default();
            let inner = quoted
                .get(1..quoted.len().saturating_sub(1))
                .unwrap_or("")
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            sql.push(" AND source_values LIKE ")
                .bind(format!("%{inner}%"))
                .push(" ESCAPE '\\'");
        }
    };
    let mut count = Sql::new("SELECT COUNT(*) AS n FROM mapping_rows WHERE account_id = ");
    filter(&mut count);
    let total = get_i64(&count.query_on(&conn).fetch_one(&mut *conn).await?, "n")?;
    let mut sql =
        Sql::new("SELECT source_values, result_values FROM mapping_rows WHERE account_id = ");
    filter(&mut sql);
    sql.push(" ORDER BY source_values");
    let offset = if limit > 0 {
        let offset = (p.max(1) - 1).saturating_mul(limit);
        sql.push(" LIMIT ")
            .bind(limit)
            .push(" OFFSET ")
            .bind(offset);
        offset
    } else {
        0
    };
    let items = sql
        .query_on(&conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(mapping_row)
        .collect::<Result<Vec<_>>>()?;
    let seen = offset.saturating_add(i64::try_from(items.len()).unwrap_or(i64::MAX));
    Ok(Page {
        has_next_page: seen < total,
        items,
        total,
        search_after_ctx: None,
    })
}

// ---- stage 4 of the processing batch ----

/// The tables one account's rules read in this batch, as far as loaded.
#[derive(Default)]
struct AccountTables {
    schemas: HashMap<String, MappingSchema>,
    /// The mapping services the rules call (ING-072).
    services: HashMap<String, MappingService>,
    /// ING-072 `alert_id`: the newest active alert of each identity `(channel, integration,
    /// alert_key)` of the batch's dedicated-integration events, read when api rules run.
    alerts: HashMap<(i64, i64, String), String>,
    /// `(schema_id, row key)` → the row's result values, or None when no row has them.
    rows: HashMap<(String, String), Option<Vec<String>>>,
}

impl Tables for AccountTables {
    fn schema(&self, schema_id: &str) -> Option<&MappingSchema> {
        self.schemas.get(schema_id)
    }

    fn lookup(&self, schema_id: &str, values: &[String]) -> Lookup<'_> {
        if !self.schemas.contains_key(schema_id) {
            return Lookup::NoSchema;
        }
        match self.rows.get(&(schema_id.to_string(), row_key(values))) {
            None => Lookup::NotLoaded,
            Some(None) => Lookup::NoRow,
            Some(Some(r)) => Lookup::Row(r),
        }
    }
}

/// An account's tables with the answers of the batch's service calls.
struct View<'a> {
    tables: &'a AccountTables,
    answers: &'a ApiAnswers,
}

impl Tables for View<'_> {
    fn schema(&self, schema_id: &str) -> Option<&MappingSchema> {
        self.tables.schema(schema_id)
    }

    fn lookup(&self, schema_id: &str, values: &[String]) -> Lookup<'_> {
        self.tables.lookup(schema_id, values)
    }

    fn service(&self, service_id: &str) -> Option<&MappingService> {
        self.tables.services.get(service_id)
    }

    fn api_answer(&self, key: &ApiKey) -> ApiLookup<'_> {
        self.answers.lookup(key)
    }

    fn alert_id(&self, q: &QueuedEvent) -> &str {
        let o = &q.origin;
        if o.channel_id == 0 {
            return "";
        }
        self.tables
            .alerts
            .get(&(o.channel_id, o.integration_id, q.event.alert_key.clone()))
            .map_or("", String::as_str)
    }
}

/// The newest active alert of each dedicated-integration identity among `queued` of one
/// account (ING-072 `alert_id`; the same candidate rule as ING-110).
async fn active_alerts(
    conn: &mut AnyConnection,
    account_id: i64,
    queued: &[QueuedEvent],
) -> Result<HashMap<(i64, i64, String), String>> {
    let keys: BTreeSet<String> = queued
        .iter()
        .filter(|q| q.origin.account_id == account_id && q.origin.channel_id != 0)
        .map(|q| q.event.alert_key.clone())
        .collect();
    let keys: Vec<String> = keys.into_iter().collect();
    let mut newest: HashMap<(i64, i64, String), (i64, String)> = HashMap::new();
    for chunk in keys.chunks(IN_CHUNK) {
        let mut sql = Sql::new(
            "SELECT alert_id, alert_key, channel_id, integration_id, created_at FROM alerts \
             WHERE account_id = ",
        );
        sql.bind(account_id);
        sql.and_in_padded("alert_key", chunk);
        sql.push(" AND closed = 0 AND alert_status <> 'Ok'");
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            let key = (
                get_i64(&row, "channel_id")?,
                get_i64(&row, "integration_id")?,
                get_str(&row, "alert_key")?,
            );
            let created = get_i64(&row, "created_at")?;
            let id = get_str(&row, "alert_id")?;
            match newest.get(&key) {
                Some((t, _)) if *t >= created => {}
                _ => {
                    newest.insert(key, (created, id));
                }
            }
        }
    }
    Ok(newest.into_iter().map(|(k, (_, id))| (k, id)).collect())
}

impl AccountTables {
    /// Reads the rows of `wanted` (one query per schema and chunk) and records the keys no row
    /// has.
    async fn load(
        &mut self,
        conn: &mut AnyConnection,
        account_id: i64,
        wanted: BTreeMap<String, BTreeSet<Vec<String>>>,
    ) -> Result<()> {
        for (schema_id, keys) in wanted {
            let keys: Vec<Vec<String>> = keys.into_iter().collect();
            for chunk in keys.chunks(IN_CHUNK) {
                let hashes: Vec<String> = chunk.iter().map(|k| hash(k)).collect();
                let mut sql = Sql::new(
                    "SELECT source_values, result_values FROM mapping_rows WHERE account_id = ",
                );
                sql.bind(account_id)
                    .push(" AND schema_id = ")
                    .bind(schema_id.as_str());
                sql.and_in_padded("row_hash", &hashes);
                for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
                    let r = mapping_row(&row)?;
                    self.rows.insert(
                        (schema_id.clone(), row_key(&r.source_values)),
                        Some(r.result_values),
                    );
                }
                for k in chunk {
                    self.rows
                        .entry((schema_id.clone(), row_key(k)))
                        .or_insert(None);
                }
            }
        }
        Ok(())
    }
}

/// What stage 4 learnt about each event of the batch, for its outcomes (ING-262).
#[derive(Debug, Default)]
pub(crate) struct Enriched {
    flags: HashMap<i64, (bool, bool)>,
    /// Mapping-service requests without an answer (ING-072), one per key: the batch cannot
    /// finish before they are made.
    pub(crate) calls: Vec<ApiCall>,
}

impl Enriched {
    /// Sets the detail flags `labels_truncated` and `enrich_error` on the outcomes of enriched
    /// events (every copy a routed event made).
    pub(crate) fn mark(&self, outcomes: &mut [EventOutcome]) {
        if self.flags.is_empty() {
            return;
        }
        for o in outcomes {
            if let Some((truncated, error)) = self.flags.get(&o.seq) {
                o.labels_truncated |= *truncated;
                o.enrich_error |= *error;
            }
        }
    }
}

/// Stage 4 (ING-060): runs each integration's enrichment rules on every event of the batch
/// (recoveries included), in place, before the pipeline and routing.
pub(crate) async fn apply(
    conn: &mut AnyConnection,
    queued: &mut [QueuedEvent],
    answers: &ApiAnswers,
) -> Result<Enriched> {
    let mut out = Enriched::default();
    let mut by_account: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for q in queued.iter() {
        by_account
            .entry(q.origin.account_id)
            .or_default()
            .insert(q.origin.integration_id);
    }
    let mut sets: HashMap<(i64, i64), RuleSet> = HashMap::new();
    let mut tables: HashMap<i64, AccountTables> = HashMap::new();
    for (account, ids) in by_account {
        let ids: Vec<i64> = ids.into_iter().collect();
        let mut schema_ids: BTreeSet<String> = BTreeSet::new();
        let mut service_ids: BTreeSet<String> = BTreeSet::new();
        for record in rules_of(conn, account, &ids).await? {
            let (set, broken) = RuleSet::compile_skipping(&record.rules);
            for e in broken {
                tracing::warn!(
                    account = account,
                    integration = record.integration_id,
                    error = %e,
                    "a stored enrichment rule no longer compiles; it is skipped"
                );
            }
            if set.is_empty() {
                continue;
            }
            schema_ids.extend(set.schema_ids());
            service_ids.extend(set.service_ids());
            sets.insert((account, record.integration_id), set);
        }
        if !schema_ids.is_empty() || !service_ids.is_empty() {
            let ids: Vec<String> = schema_ids.into_iter().collect();
            let schemas = schemas_by_id(conn, account, &ids).await?;
            let ids: Vec<String> = service_ids.into_iter().collect();
            let services = crate::mapping_services::by_id(conn, account, &ids).await?;
            let alerts = if services.is_empty() {
                HashMap::new()
            } else {
                active_alerts(conn, account, queued).await?
            };
            tables.insert(
                account,
                AccountTables {
                    schemas,
                    services,
                    alerts,
                    rows: HashMap::new(),
                },
            );
        }
    }
    if sets.is_empty() {
        return Ok(out);
    }
    let none = AccountTables::default();
    // The events to (re)run, with their labels as they came from the inbox.
    let mut pending: Vec<usize> = queued
        .iter()
        .enumerate()
        .filter(|(_, q)| sets.contains_key(&(q.origin.account_id, q.origin.integration_id)))
        .map(|(i, _)| i)
        .collect();
    let originals: HashMap<usize, klaxon_core::model::Labels> = pending
        .iter()
        .filter_map(|&i| queued.get(i).map(|q| (i, q.event.labels.clone())))
        .collect();
    let rounds = sets.values().map(|s| s.schema_ids().len()).sum::<usize>() + 1;
    let mut calls: BTreeMap<ApiKey, ApiCall> = BTreeMap::new();
    for round in 0..=rounds {
        let mut wanted: BTreeMap<i64, BTreeMap<String, BTreeSet<Vec<String>>>> = BTreeMap::new();
        let mut again = Vec::new();
        for &i in &pending {
            let Some(q) = queued.get_mut(i) else { continue };
            if round > 0
                && let Some(labels) = originals.get(&i)
            {
                q.event.labels.clone_from(labels);
            }
            let key = (q.origin.account_id, q.origin.integration_id);
            let Some(set) = sets.get(&key) else { continue };
            let view = View {
                tables: tables.get(&key.0).unwrap_or(&none),
                answers,
            };
            let report: Report = set.apply(q, &view);
            out.flags
                .insert(q.seq, (report.labels_truncated, report.enrich_error));
            if !report.wanted.is_empty() && round < rounds {
                again.push(i);
                let w = wanted.entry(key.0).or_default();
                for (schema, values) in report.wanted {
                    w.entry(schema).or_default().insert(values);
                }
            } else {
                // The event's last run: the calls it still needs are the ones to make.
                for c in report.calls {
                    calls.entry(c.key()).or_insert(c);
                }
            }
        }
        if again.is_empty() {
            break;
        }
        for (account, w) in wanted {
            tables
                .entry(account)
                .or_default()
                .load(conn, account, w)
                .await?;
        }
        pending = again;
    }
    out.calls = calls.into_values().collect();
    Ok(out)
}

// ---- the Store API ----

impl crate::Store {
    /// The integration's enrichment rules (an empty list when it has none).
    pub async fn enrichment_rules(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<EnrichmentRecord> {
        let mut conn = self.inner.read.acquire().await?;
        Ok(rules_of(&mut conn, account_id, &[integration_id])
            .await?
            .pop()
            .unwrap_or(EnrichmentRecord {
                integration_id,
                rules: Vec::new(),
                updated_by: 0,
                updated_at: 0,
            }))
    }

    /// The rule lists of `integration_ids` that have rules.
    pub async fn enrichment_rule_lists(
        &self,
        account_id: i64,
        integration_ids: &[i64],
    ) -> Result<Vec<EnrichmentRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        rules_of(&mut conn, account_id, integration_ids).await
    }

    /// Replaces the integration's rules with a list the caller validated
    /// (`RuleSet::compile`). Applies to events processed after the save (ING-060).
    pub async fn save_enrichment_rules(
        &self,
        account_id: i64,
        integration_id: i64,
        rules: Vec<EnrichmentRule>,
        by: i64,
        now: Millis,
    ) -> Result<EnrichmentRecord> {
        save_rules(
            &self.inner.write,
            account_id,
            integration_id,
            rules,
            by,
            now,
            &mut crate::RandomIds,
        )
        .await
    }

    pub async fn mapping_schema(
        &self,
        account_id: i64,
        schema_id: &str,
    ) -> Result<Option<SchemaRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        load_schema(&mut conn, account_id, schema_id).await
    }

    /// Which of `schema_ids` exist in the account.
    pub async fn mapping_schemas_by_id(
        &self,
        account_id: i64,
        schema_ids: &[String],
    ) -> Result<HashMap<String, MappingSchema>> {
        let mut conn = self.inner.read.acquire().await?;
        schemas_by_id(&mut conn, account_id, schema_ids).await
    }

    pub async fn mapping_schemas(
        &self,
        account_id: i64,
        p: i64,
        limit: i64,
    ) -> Result<Page<SchemaRecord>> {
        list_schemas(&self.inner.read, account_id, p, limit).await
    }

    /// Creates (empty `schema_id`) or updates a schema validated with
    /// `klaxon_core::enrichment::validate_schema`.
    pub async fn save_mapping_schema(
        &self,
        schema: MappingSchema,
        by: i64,
        now: Millis,
    ) -> Result<std::result::Result<SchemaRecord, MappingRefusal>> {
        save_schema(&self.inner.write, schema, by, now, &mut crate::RandomIds).await
    }

    /// Deletes a schema and its rows, unless an enrichment rule names it.
    pub async fn delete_mapping_schema(
        &self,
        account_id: i64,
        schema_id: &str,
    ) -> Result<std::result::Result<(), MappingRefusal>> {
        delete_schema(&self.inner.write, account_id, schema_id).await
    }

    /// ING-071: replaces all rows with a parsed upload, atomically.
    pub async fn replace_mapping_rows(
        &self,
        account_id: i64,
        schema_id: &str,
        upload: &TableUpload,
        now: Millis,
    ) -> Result<std::result::Result<(), MappingRefusal>> {
        replace_rows(&self.inner.write, account_id, schema_id, upload, now).await
    }

    /// ING-071: adds a row, or edits the row with the same source values.
    pub async fn upsert_mapping_row(
        &self,
        account_id: i64,
        schema_id: &str,
        row: &MappingRow,
        now: Millis,
    ) -> Result<std::result::Result<(), MappingRefusal>> {
        upsert_row(&self.inner.write, account_id, schema_id, row, now).await
    }

    pub async fn delete_mapping_row(
        &self,
        account_id: i64,
        schema_id: &str,
        source_values: &[String],
        now: Millis,
    ) -> Result<std::result::Result<(), MappingRefusal>> {
        delete_row(&self.inner.write, account_id, schema_id, source_values, now).await
    }

    /// A page of rows ordered by source values, filtered by a source-value substring;
    /// `limit` 0 = every row (the CSV download).
    pub async fn mapping_rows(
        &self,
        account_id: i64,
        schema_id: &str,
        search: &str,
        p: i64,
        limit: i64,
    ) -> Result<Page<MappingRow>> {
        list_rows(&self.inner.read, account_id, schema_id, search, p, limit).await
    }
}
