//! Notification templates (response.md 1.16, §2.22). Bodies are validated by the caller
//! (`klaxon_core::template::validate_record`) before they get here; this module keeps names
//! unique per account and refuses to delete a template an escalation rule references
//! (RSP-353). The built-in default template is code, not a row.
//!
//! Rule saves and template deletes cannot race: a rule save reads the template row `FOR
//! UPDATE` (PostgreSQL) and a delete removes the row before it looks for referencing rules,
//! so whichever runs second sees the other's result. SQLite has one writer anyway.

use klaxon_core::ids::IdSource;
use klaxon_core::model::Millis;
use klaxon_core::template::TemplateRecord;
use sqlx::{AnyConnection, AnyPool};

use crate::db::{Sql, is_sqlite};
use crate::rows::{get_str, to_json};
use crate::{Result, StoreError};

/// Why a template write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateRefusal {
    NotFound,
    /// Another template of the account has this name.
    NameTaken,
    /// Escalation rules still use it: `(rule_id, rule_name)` (RSP-353).
    InUse(Vec<(String, String)>),
}

fn record(row: &sqlx::any::AnyRow) -> Result<TemplateRecord> {
    let id = get_str(row, "template_id")?;
    let text = get_str(row, "definition")?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("notification_templates.definition {id}: {e}")))
}

pub(crate) async fn list(pool: &AnyPool, account_id: i64) -> Result<Vec<TemplateRecord>> {
    let mut conn = pool.acquire().await?;
    let mut sql =
        Sql::new("SELECT template_id, definition FROM notification_templates WHERE account_id = ");
    sql.bind(account_id)
        .push(" ORDER BY created_at, template_id");
    sql.query_on(&conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(record)
        .collect()
}

/// One template; `lock` takes a row lock on PostgreSQL (see the module docs).
pub(crate) async fn get_on(
    conn: &mut AnyConnection,
    account_id: i64,
    template_id: &str,
    lock: bool,
) -> Result<Option<TemplateRecord>> {
    let mut sql =
        Sql::new("SELECT template_id, definition FROM notification_templates WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND template_id = ")
        .bind(template_id);
    if lock && !is_sqlite(conn) {
        sql.push(" FOR UPDATE");
    }
    sql.query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

pub(crate) async fn get(
    pool: &AnyPool,
    account_id: i64,
    template_id: &str,
) -> Result<Option<TemplateRecord>> {
    let mut conn = pool.acquire().await?;
    get_on(&mut conn, account_id, template_id, false).await
}

async fn name_taken(
    conn: &mut AnyConnection,
    account_id: i64,
    name: &str,
    except: &str,
) -> Result<bool> {
    let mut sql = Sql::new("SELECT template_id FROM notification_templates WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND template_name = ")
        .bind(name)
        .push(" AND template_id <> ")
        .bind(except);
    Ok(sql
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Inserts a validated template with a new id.
pub(crate) async fn create(
    pool: &AnyPool,
    mut t: TemplateRecord,
    now: Millis,
    ids: &mut (dyn IdSource + Send),
) -> Result<std::result::Result<TemplateRecord, TemplateRefusal>> {
    let mut tx = pool.begin().await?;
    if name_taken(&mut tx, t.account_id, &t.template_name, "").await? {
        tx.rollback().await?;
        return Ok(Err(TemplateRefusal::NameTaken));
    }
    t.template_id = ids.object_id(now);
    t.created_at = now;
    t.updated_at = now;
    let mut sql = Sql::new(
        "INSERT INTO notification_templates (template_id, account_id, template_name, status, \
         definition, created_at, updated_at) VALUES (",
    );
    sql.bind(t.template_id.as_str())
        .push(", ")
        .bind(t.account_id)
        .push(", ")
        .bind(t.template_name.as_str())
        .push(", ")
        .bind(t.status.as_str())
        .push(", ")
        .bind(to_json(&t)?)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(")");
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(t))
}

/// Replaces a template's editable fields; id, creator and creation time are kept.
pub(crate) async fn update(
    pool: &AnyPool,
    mut t: TemplateRecord,
    now: Millis,
) -> Result<std::result::Result<TemplateRecord, TemplateRefusal>> {
    let mut tx = pool.begin().await?;
    let Some(old) = get_on(&mut tx, t.account_id, &t.template_id, true).await? else {
        tx.rollback().await?;
        return Ok(Err(TemplateRefusal::NotFound));
    };
    if name_taken(&mut tx, t.account_id, &t.template_name, &t.template_id).await? {
        tx.rollback().await?;
        return Ok(Err(TemplateRefusal::NameTaken));
    }
    t.creator_id = old.creator_id;
    t.created_at = old.created_at;
    t.updated_at = now;
    let mut sql = Sql::new("UPDATE notification_templates SET template_name = ");
    sql.bind(t.template_name.as_str())
        .push(", status = ")
        .bind(t.status.as_str())
        .push(", definition = ")
        .bind(to_json(&t)?)
        .push(", updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(t.account_id)
        .push(" AND template_id = ")
        .bind(t.template_id.as_str());
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(t))
}

/// Deletes a template unless a rule references it (RSP-353).
pub(crate) async fn delete(
    pool: &AnyPool,
    account_id: i64,
    template_id: &str,
) -> Result<std::result::Result<(), TemplateRefusal>> {
    let mut tx = pool.begin().await?;
    let mut sql = Sql::new("DELETE FROM notification_templates WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND template_id = ")
        .bind(template_id);
    if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(Err(TemplateRefusal::NotFound));
    }
    let users = referencing_rules(&mut tx, account_id, template_id).await?;
    if !users.is_empty() {
        tx.rollback().await?;
        return Ok(Err(TemplateRefusal::InUse(users)));
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// The account's escalation rules whose `template_id` is this template.
async fn referencing_rules(
    conn: &mut AnyConnection,
    account_id: i64,
    template_id: &str,
) -> Result<Vec<(String, String)>> {
    let mut sql =
        Sql::new("SELECT rule_id, rule_name, definition FROM escalation_rules WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND definition LIKE ")
        .bind(format!("%{template_id}%"))
        .push(" ORDER BY rule_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let mut out = Vec::new();
    for row in &rows {
        let def: serde_json::Value = serde_json::from_str(&get_str(row, "definition")?)
            .map_err(|e| StoreError::Corrupt(format!("escalation_rules.definition: {e}")))?;
        if def.get("template_id").and_then(|v| v.as_str()) == Some(template_id) {
            out.push((get_str(row, "rule_id")?, get_str(row, "rule_name")?));
        }
    }
    Ok(out)
}
