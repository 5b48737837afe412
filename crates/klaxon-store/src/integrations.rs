//! Inbound integrations (ingest.md §1.3.1) as the Klaxon extension `/integration/*` manages
//! them (openapi-compat.md §2.6.1). Deletion is soft (`deleted = 1`): a deleted integration's
//! key stops resolving at once ([`crate::Store::integration_by_key`] skips it), while the
//! alerts and incidents it created keep their `integration_id`.
//!
//! Every statement is scoped by `account_id` (DESIGN.md principle 6).

use klaxon_core::model::Millis;
use serde_json::Value;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::Sql;
use crate::query::contains_pattern;
use crate::records::{Integration, IntegrationFilter, NewIntegration, Page};
use crate::rows::{self, get_i64};
use crate::sealing::{DataKey, Opener, SEALED_PREFIX, SecretSlot, seal_value};
use crate::{Result, StoreError};

pub(crate) async fn create(
    pool: &AnyPool,
    key: Option<&DataKey>,
    account_id: i64,
    new: &NewIntegration,
) -> Result<i64> {
    let mut tx = pool.begin().await?;
    let id = insert(&mut tx, key, account_id, new).await?;
    tx.commit().await?;
    Ok(id)
}

/// Inserts the integration on `conn` (a transaction: the insert and the sealing of its
/// headers, and for a shared integration its first route version) and returns its id.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    key: Option<&DataKey>,
    account_id: i64,
    new: &NewIntegration,
) -> Result<i64> {
    let mut sql = Sql::new(
        "INSERT INTO integrations (account_id, integration_name, integration_type, kind, \
         channel_id, integration_key, enabled, deleted, last_event_time, settings, created_at, \
         updated_at) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(new.integration_name.as_str())
        .push(", ")
        .bind(new.integration_type.as_str())
        .push(", ")
        .bind(new.kind.as_str())
        .push(", ")
        .bind(new.channel_id)
        .push(", ")
        .bind(new.integration_key.as_str())
        .push(", ")
        .bind(new.enabled)
        .push(", 0, 0, ")
        .bind(new.settings.as_str())
        .push(", ")
        .bind(new.now)
        .push(", ")
        .bind(new.now)
        .push(") RETURNING integration_id");
    let row = sql.into_query_on(conn).fetch_one(&mut *conn).await?;
    let id = row
        .try_get::<i64, _>(0)
        .map_err(|e| StoreError::Corrupt(format!("returned integration_id: {e}")))?;
    seal_inserted(conn, key, account_id, id, &new.settings).await?;
    Ok(id)
}

/// The account's live integration `integration_id`.
pub(crate) async fn get(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
) -> Result<Option<Integration>> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::INTEGRATION_COLUMNS)
        .push(" FROM integrations WHERE account_id = ")
        .bind(account_id)
        .push(" AND integration_id = ")
        .bind(integration_id)
        .push(" AND deleted = 0");
    match sql.into_query_on(&conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(rows::integration(&row)?)),
        None => Ok(None),
    }
}

fn filtered(sql: &mut Sql, account_id: i64, f: &IntegrationFilter) {
    sql.push(" FROM integrations WHERE account_id = ")
        .bind(account_id)
        .push(" AND deleted = 0");
    if let Some(q) = f.query.as_deref().filter(|q| !q.is_empty()) {
        sql.push(" AND LOWER(integration_name) LIKE ")
            .bind(contains_pattern(q))
            .push(" ESCAPE '\\'");
    }
    if let Some(enabled) = f.enabled {
        sql.push(" AND enabled = ").bind(enabled);
    }
    sql.and_in("integration_type", &f.types)
        .and_in("kind", &f.kinds)
        .and_in("channel_id", &f.channel_ids);
}

/// A page of the account's live integrations, oldest first (ids grow), with the exact total.
pub(crate) async fn list(
    pool: &AnyPool,
    account_id: i64,
    f: &IntegrationFilter,
) -> Result<Page<Integration>> {
    let p = f.p.max(1);
    let limit = f.limit.max(1);
    let mut conn = pool.acquire().await?;
    let mut count = Sql::new("SELECT COUNT(*) AS n");
    filtered(&mut count, account_id, f);
    let row = count.into_query_on(&conn).fetch_one(&mut *conn).await?;
    let total = get_i64(&row, "n")?;

    let mut sql = Sql::new("SELECT ");
    sql.push(rows::INTEGRATION_COLUMNS);
    filtered(&mut sql, account_id, f);
    sql.push(" ORDER BY integration_id ASC LIMIT ")
        .bind(limit)
        .push(" OFFSET ")
        .bind((p - 1).saturating_mul(limit));
    let rows = sql.into_query_on(&conn).fetch_all(&mut *conn).await?;
    let items = rows
        .iter()
        .map(rows::integration)
        .collect::<Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total,
        has_next_page: p.saturating_mul(limit) < total,
        search_after_ctx: None,
    })
}

/// What [`update`] changes on a live integration.
pub(crate) enum Change<'a> {
    Delete,
    Enabled(bool),
    Key(&'a str),
    /// `/integration/update`: the name and the settings (JSON object text, headers sealed
    /// already by [`seal_settings`]).
    Edit {
        name: &'a str,
        settings: String,
    },
}

/// Applies `change` to the account's live integration; false when there is none.
pub(crate) async fn update(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
    change: Change<'_>,
    now: Millis,
) -> Result<bool> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("UPDATE integrations SET ");
    match change {
        Change::Delete => sql.push("deleted = 1"),
        Change::Enabled(on) => sql.push("enabled = ").bind(on),
        Change::Key(key) => sql.push("integration_key = ").bind(key),
        Change::Edit { name, settings } => sql
            .push("integration_name = ")
            .bind(name)
            .push(", settings = ")
            .bind(settings),
    };
    sql.push(", updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND integration_id = ")
        .bind(integration_id)
        .push(" AND deleted = 0");
    let done = sql.into_query_on(&conn).execute(&mut *conn).await?;
    Ok(done.rows_affected() > 0)
}

/// HTTP-pull headers (ING-220) usually carry the source's credentials, so `settings.headers`
/// is sealed at rest under the tenant's data key when a key-encryption key is configured
/// ([`crate::sealing`]): the member holds the sealed text of the headers object instead of
/// the object. Readers that need the headers ([`crate::Store::integration`], the list and the
/// pull scheduler) open it again; the push path never reads them.
pub(crate) const SEALED_SETTINGS_MEMBER: &str = "headers";

fn headers_slot(account_id: i64, integration_id: i64) -> SecretSlot {
    SecretSlot::new(
        account_id,
        "integrations",
        "settings.headers",
        integration_id,
    )
}

/// The settings with a non-empty `headers` object sealed; unchanged without a key, without
/// headers, or when they are sealed already.
pub(crate) fn seal_settings(
    key: Option<&DataKey>,
    account_id: i64,
    integration_id: i64,
    settings: &str,
) -> Result<String> {
    let Some(key) = key else {
        return Ok(settings.to_string());
    };
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(settings) else {
        return Ok(settings.to_string());
    };
    let Some(Value::Object(headers)) = object.get(SEALED_SETTINGS_MEMBER) else {
        return Ok(settings.to_string());
    };
    if headers.is_empty() {
        return Ok(settings.to_string());
    }
    let clear = Value::Object(headers.clone()).to_string();
    let sealed = seal_value(Some(key), &headers_slot(account_id, integration_id), &clear)?;
    object.insert(SEALED_SETTINGS_MEMBER.into(), Value::String(sealed));
    Ok(Value::Object(object).to_string())
}

/// Does this stored settings text hold clear headers that [`seal_settings`] would seal?
pub(crate) fn has_clear_headers(settings: &str) -> bool {
    matches!(
        serde_json::from_str::<Value>(settings),
        Ok(Value::Object(o)) if matches!(o.get(SEALED_SETTINGS_MEMBER), Some(Value::Object(h)) if !h.is_empty())
    )
}

/// Opens sealed `settings.headers` in place (clear settings are left as they are).
pub(crate) async fn open_settings(
    opener: &mut Opener<'_>,
    account_id: i64,
    integration_id: i64,
    settings: &mut String,
) -> Result<()> {
    // Fast path: nothing sealed in this text.
    if !settings.contains(SEALED_PREFIX) {
        return Ok(());
    }
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(settings) else {
        return Ok(());
    };
    let Some(Value::String(sealed)) = object.get(SEALED_SETTINGS_MEMBER) else {
        return Ok(());
    };
    let clear = opener
        .open(headers_slot(account_id, integration_id), sealed)
        .await?;
    let headers: Value = serde_json::from_str(&clear).map_err(|e| {
        StoreError::Corrupt(format!(
            "integrations.settings.headers of integration {integration_id}: {e}"
        ))
    })?;
    object.insert(SEALED_SETTINGS_MEMBER.into(), headers);
    *settings = Value::Object(object).to_string();
    Ok(())
}

/// Seals the headers of a just-inserted integration on the same connection (the sealed value
/// names the row, so it is written once the id is known).
async fn seal_inserted(
    conn: &mut AnyConnection,
    key: Option<&DataKey>,
    account_id: i64,
    integration_id: i64,
    settings: &str,
) -> Result<()> {
    let sealed = seal_settings(key, account_id, integration_id, settings)?;
    if sealed == settings {
        return Ok(());
    }
    let mut sql = Sql::new("UPDATE integrations SET settings = ");
    sql.bind(sealed)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND integration_id = ")
        .bind(integration_id);
    sql.into_query_on(conn).execute(&mut *conn).await?;
    Ok(())
}
