//! Change events and change records (ingest.md §1.3.8, ING-242; openapi-compat.md §2.13).
//! Every statement is scoped by `account_id` (DESIGN.md principle 6).

use klaxon_core::change::{ChangeEffect, ChangeStatus, NewChangeEvent, change_effect};
use klaxon_core::model::{Labels, Millis};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use crate::db::Sql;
use crate::query::contains_pattern;
use crate::records::Page;
use crate::rows::{get_i64, get_str};
use crate::{Result, StoreError};

/// A change record as `/change/list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    pub change_id: String,
    pub integration_id: i64,
    pub change_key: String,
    pub title: String,
    pub description: String,
    pub change_status: String,
    pub link: String,
    pub labels: Labels,
    pub start_time: Millis,
    pub last_time: Millis,
    pub end_time: Millis,
    pub event_cnt: i64,
}

/// One stored change event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEventRecord {
    pub event_id: String,
    pub change_id: String,
    pub integration_id: i64,
    pub change_key: String,
    pub title: String,
    pub description: String,
    pub change_status: String,
    pub link: String,
    pub labels: Labels,
    pub event_time: Millis,
}

/// `/change/list` filters; times in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub start_time: Millis,
    pub end_time: Millis,
    pub p: i64,
    pub limit: i64,
    pub asc: bool,
    /// `last_time` instead of `start_time`.
    pub order_by_last_time: bool,
    pub integration_ids: Vec<i64>,
    pub query: Option<String>,
}

fn labels_text(labels: &Labels) -> Result<String> {
    serde_json::to_string(labels).map_err(|e| StoreError::Corrupt(format!("labels: {e}")))
}

fn labels_of(row: &AnyRow) -> Result<Labels> {
    serde_json::from_str(&get_str(row, "labels")?)
        .map_err(|e| StoreError::Corrupt(format!("change labels: {e}")))
}

/// ING-242: stores the event and updates (or starts) its change record, in one transaction.
/// Returns the change id.
pub(crate) async fn record(
    pool: &AnyPool,
    account_id: i64,
    integration_id: i64,
    event: &NewChangeEvent,
    now: Millis,
) -> Result<String> {
    let mut tx = pool.begin().await?;
    // Take the key's head row first: it serialises concurrent events of the key.
    let mut sql = Sql::new(
        "INSERT INTO change_heads (account_id, integration_id, change_key, change_id) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(integration_id)
        .push(", ")
        .bind(event.change_key.as_str())
        .push(
            ", '') ON CONFLICT (account_id, integration_id, change_key) DO UPDATE SET \
               change_id = change_heads.change_id",
        );
    sql.query_on(&tx).execute(&mut *tx).await?;
    let mut sql = Sql::new(
        "SELECT c.change_id, c.change_status, c.end_time FROM change_heads h JOIN changes c \
         ON c.change_id = h.change_id AND c.account_id = h.account_id WHERE h.account_id = ",
    );
    sql.bind(account_id)
        .push(" AND h.integration_id = ")
        .bind(integration_id)
        .push(" AND h.change_key = ")
        .bind(event.change_key.as_str());
    let latest = match sql.query_on(&tx).fetch_optional(&mut *tx).await? {
        Some(row) => {
            let status = get_str(&row, "change_status")?;
            let status = ChangeStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("change_status {status}")))?;
            Some((
                get_str(&row, "change_id")?,
                status,
                get_i64(&row, "end_time")?,
            ))
        }
        None => None,
    };
    let labels = labels_text(&event.labels)?;
    let effect = change_effect(latest.as_ref().map(|l| l.1), event.change_status);
    let (change_id, status) = match (effect, latest) {
        (ChangeEffect::Update(status), Some((change_id, _, end_time))) => {
            let end = if status.is_terminal() {
                if end_time > 0 {
                    end_time
                } else {
                    event.event_time
                }
            } else {
                0
            };
            let mut sql = Sql::new("UPDATE changes SET title = ");
            sql.bind(event.title.as_str())
                .push(", description = ")
                .bind(event.description.as_str())
                .push(", change_status = ")
                .bind(status.as_str())
                .push(", link = ")
                .bind(event.link.as_str())
                .push(", labels = ")
                .bind(labels.as_str())
                .push(", last_time = CASE WHEN last_time > ")
                .bind(event.event_time)
                .push(" THEN last_time ELSE ")
                .bind(event.event_time)
                .push(" END, end_time = ")
                .bind(end)
                .push(", event_cnt = event_cnt + 1 WHERE account_id = ")
                .bind(account_id)
                .push(" AND change_id = ")
                .bind(change_id.as_str());
            sql.query_on(&tx).execute(&mut *tx).await?;
            (change_id, status)
        }
        (ChangeEffect::Start(status), _) | (ChangeEffect::Update(status), None) => {
            let change_id = klaxon_core::ids::object_id(now, rand::random());
            let end = if status.is_terminal() {
                event.event_time
            } else {
                0
            };
            let mut sql = Sql::new(
                "INSERT INTO changes (change_id, account_id, integration_id, change_key, title, \
                 description, change_status, link, labels, start_time, last_time, end_time, \
                 event_cnt) VALUES (",
            );
            sql.bind(change_id.as_str())
                .push(", ")
                .bind(account_id)
                .push(", ")
                .bind(integration_id)
                .push(", ")
                .bind(event.change_key.as_str())
                .push(", ")
                .bind(event.title.as_str())
                .push(", ")
                .bind(event.description.as_str())
                .push(", ")
                .bind(status.as_str())
                .push(", ")
                .bind(event.link.as_str())
                .push(", ")
                .bind(labels.as_str())
                .push(", ")
                .bind(event.event_time)
                .push(", ")
                .bind(event.event_time)
                .push(", ")
                .bind(end)
                .push(", 1)");
            sql.query_on(&tx).execute(&mut *tx).await?;
            let mut sql = Sql::new("UPDATE change_heads SET change_id = ");
            sql.bind(change_id.as_str())
                .push(" WHERE account_id = ")
                .bind(account_id)
                .push(" AND integration_id = ")
                .bind(integration_id)
                .push(" AND change_key = ")
                .bind(event.change_key.as_str());
            sql.query_on(&tx).execute(&mut *tx).await?;
            (change_id, status)
        }
    };
    let event_id = klaxon_core::ids::object_id(now, rand::random());
    let mut sql = Sql::new(
        "INSERT INTO change_events (event_id, account_id, change_id, integration_id, \
         change_key, title, description, change_status, link, labels, event_time, created_at) \
         VALUES (",
    );
    sql.bind(event_id.as_str())
        .push(", ")
        .bind(account_id)
        .push(", ")
        .bind(change_id.as_str())
        .push(", ")
        .bind(integration_id)
        .push(", ")
        .bind(event.change_key.as_str())
        .push(", ")
        .bind(event.title.as_str())
        .push(", ")
        .bind(event.description.as_str())
        .push(", ")
        .bind(status.as_str())
        .push(", ")
        .bind(event.link.as_str())
        .push(", ")
        .bind(labels.as_str())
        .push(", ")
        .bind(event.event_time)
        .push(", ")
        .bind(now)
        .push(")");
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(change_id)
}

const CHANGE_COLUMNS: &str = "change_id, integration_id, change_key, title, description, \
     change_status, link, labels, start_time, last_time, end_time, event_cnt";

fn change_row(row: &AnyRow) -> Result<ChangeRecord> {
    Ok(ChangeRecord {
        change_id: get_str(row, "change_id")?,
        integration_id: get_i64(row, "integration_id")?,
        change_key: get_str(row, "change_key")?,
        title: get_str(row, "title")?,
        description: get_str(row, "description")?,
        change_status: get_str(row, "change_status")?,
        link: get_str(row, "link")?,
        labels: labels_of(row)?,
        start_time: get_i64(row, "start_time")?,
        last_time: get_i64(row, "last_time")?,
        end_time: get_i64(row, "end_time")?,
        event_cnt: get_i64(row, "event_cnt")?,
    })
}

fn filtered(sql: &mut Sql, account_id: i64, f: &ChangeFilter) {
    // The change's active period (start to end, or open while not ended) overlaps the window.
    sql.push(" FROM changes WHERE account_id = ")
        .bind(account_id)
        .push(" AND start_time <= ")
        .bind(f.end_time)
        .push(" AND (end_time = 0 OR end_time >= ")
        .bind(f.start_time)
        .push(")");
    if let Some(q) = f.query.as_deref().filter(|q| !q.is_empty()) {
        let pattern = contains_pattern(q);
        sql.push(" AND (LOWER(title) LIKE ")
            .bind(pattern.as_str())
            .push(" ESCAPE '\\' OR LOWER(change_key) LIKE ")
            .bind(pattern.as_str())
            .push(" ESCAPE '\\')");
    }
    sql.and_in("integration_id", &f.integration_ids);
}

pub(crate) async fn list(
    pool: &AnyPool,
    account_id: i64,
    f: &ChangeFilter,
) -> Result<Page<ChangeRecord>> {
    let p = f.p.max(1);
    let limit = f.limit.max(1);
    let mut conn = pool.acquire().await?;
    let mut count = Sql::new("SELECT COUNT(*) AS n");
    filtered(&mut count, account_id, f);
    let row = count.into_query_on(&conn).fetch_one(&mut *conn).await?;
    let total = get_i64(&row, "n")?;
    let mut sql = Sql::new("SELECT ");
    sql.push(CHANGE_COLUMNS);
    filtered(&mut sql, account_id, f);
    let column = if f.order_by_last_time {
        "last_time"
    } else {
        "start_time"
    };
    let dir = if f.asc { "ASC" } else { "DESC" };
    sql.push(&format!(" ORDER BY {column} {dir}, change_id {dir} LIMIT "))
        .bind(limit)
        .push(" OFFSET ")
        .bind((p - 1).saturating_mul(limit));
    let rows = sql.into_query_on(&conn).fetch_all(&mut *conn).await?;
    let items = rows.iter().map(change_row).collect::<Result<Vec<_>>>()?;
    Ok(Page {
        items,
        total,
        has_next_page: p.saturating_mul(limit) < total,
        search_after_ctx: None,
    })
}

/// The stored events of the account's changes `change_ids`, oldest first.
pub(crate) async fn events(
    pool: &AnyPool,
    account_id: i64,
    change_ids: &[String],
) -> Result<Vec<ChangeEventRecord>> {
    if change_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new(
        "SELECT event_id, change_id, integration_id, change_key, title, description, \
         change_status, link, labels, event_time FROM change_events WHERE account_id = ",
    );
    sql.bind(account_id)
        .and_in("change_id", change_ids)
        .push(" ORDER BY event_time ASC, event_id ASC");
    let rows = sql.into_query_on(&conn).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            Ok(ChangeEventRecord {
                event_id: get_str(row, "event_id")?,
                change_id: get_str(row, "change_id")?,
                integration_id: get_i64(row, "integration_id")?,
                change_key: get_str(row, "change_key")?,
                title: get_str(row, "title")?,
                description: get_str(row, "description")?,
                change_status: get_str(row, "change_status")?,
                link: get_str(row, "link")?,
                labels: labels_of(row)?,
                event_time: get_i64(row, "event_time")?,
            })
        })
        .collect()
}
