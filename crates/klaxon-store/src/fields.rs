//! Custom field definitions (response.md 1.11, RSP-085). Values are stored on the incidents.

use klaxon_core::ids::IdSource;
use klaxon_core::model::Millis;
use klaxon_core::response::FieldDefinition;
use klaxon_core::response::fields::FIELDS_MAX;
use sqlx::{AnyConnection, AnyPool};

use crate::db::{Sql, is_sqlite};
use crate::rows::get_str;
use crate::{Result, StoreError};

/// Why a field write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRefusal {
    NotFound,
    /// Another field of the account has this name.
    NameTaken,
    /// The account already has [`FIELDS_MAX`] fields.
    LimitReached,
}

fn definition(row: &sqlx::any::AnyRow) -> Result<FieldDefinition> {
    let id = get_str(row, "field_id")?;
    let text = get_str(row, "definition")?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("custom_fields.definition {id}: {e}")))
}

pub(crate) async fn all(conn: &mut AnyConnection, account_id: i64) -> Result<Vec<FieldDefinition>> {
    let mut sql = Sql::new("SELECT field_id, definition FROM custom_fields WHERE account_id = ");
    sql.bind(account_id).push(" ORDER BY created_at, field_id");
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(definition)
        .collect()
}

pub(crate) async fn list(pool: &AnyPool, account_id: i64) -> Result<Vec<FieldDefinition>> {
    let mut conn = pool.acquire().await?;
    all(&mut conn, account_id).await
}

/// Inserts a validated definition with a new id, or refuses it.
pub(crate) async fn create(
    pool: &AnyPool,
    account_id: i64,
    mut def: FieldDefinition,
    now: Millis,
    ids: &mut (dyn IdSource + Send),
) -> Result<std::result::Result<FieldDefinition, FieldRefusal>> {
    let mut tx = pool.begin().await?;
    let existing = all(&mut tx, account_id).await?;
    if existing.iter().any(|d| d.field_name == def.field_name) {
        tx.rollback().await?;
        return Ok(Err(FieldRefusal::NameTaken));
    }
    if existing.len() >= FIELDS_MAX {
        tx.rollback().await?;
        return Ok(Err(FieldRefusal::LimitReached));
    }
    def.field_id = ids.object_id(now);
    def.created_at = now;
    def.updated_at = now;
    let text = serde_json::to_string(&def).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut sql = Sql::new(
        "INSERT INTO custom_fields (field_id, account_id, field_name, definition, created_at, \
         updated_at) VALUES (",
    );
    sql.bind(def.field_id.as_str())
        .push(", ")
        .bind(account_id)
        .push(", ")
        .bind(def.field_name.as_str())
        .push(", ")
        .bind(text)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(")");
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(def))
}

/// Replaces a definition (the caller keeps `field_name` and `field_type`, RSP-085).
pub(crate) async fn update(
    pool: &AnyPool,
    account_id: i64,
    def: &FieldDefinition,
    now: Millis,
) -> Result<bool> {
    let mut conn = pool.acquire().await?;
    let mut def = def.clone();
    def.updated_at = now;
    let text = serde_json::to_string(&def).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut sql = Sql::new("UPDATE custom_fields SET definition = ");
    sql.bind(text)
        .push(", updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND field_id = ")
        .bind(def.field_id.as_str());
    Ok(sql
        .query_on(&conn)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

/// Deletes a definition and, in the same transaction, removes its value from every incident of
/// the account (RSP-085's clean-up, done at once: afterwards the name is free again).
pub(crate) async fn delete(pool: &AnyPool, account_id: i64, field_id: &str) -> Result<bool> {
    let mut tx = pool.begin().await?;
    crate::response::lock_incidents(&mut tx).await?;
    let mut sql = Sql::new("SELECT field_id, definition FROM custom_fields WHERE account_id = ");
    sql.bind(account_id).push(" AND field_id = ").bind(field_id);
    let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
        tx.rollback().await?;
        return Ok(false);
    };
    let def = definition(&row)?;
    // Field names are [A-Za-z_][A-Za-z0-9_]*, so they are safe inside a JSON path.
    let mut sql = if is_sqlite(&tx) {
        let mut sql = Sql::new("UPDATE incidents SET response = json_remove(response, ");
        sql.bind(format!("$.fields.\"{}\"", def.field_name))
            .push(")");
        sql
    } else {
        let mut sql =
            Sql::new("UPDATE incidents SET response = (response::jsonb #- ARRAY['fields', ");
        sql.bind(def.field_name.as_str()).push("]::text[])::text");
        sql
    };
    sql.push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND response LIKE ")
        .bind(format!("%\"{}\"%", def.field_name));
    sql.query_on(&tx).execute(&mut *tx).await?;
    let mut sql = Sql::new("DELETE FROM custom_fields WHERE account_id = ");
    sql.bind(account_id).push(" AND field_id = ").bind(field_id);
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}
