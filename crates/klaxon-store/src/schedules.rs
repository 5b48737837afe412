//! On-call schedules (response.md §1.13, openapi-compat.md 2.8): one row per schedule, the
//! core [`Schedule`] kept whole as JSON in `definition`.
//!
//! The row's `schedule_id` is authoritative: it is written into the returned schedule on every
//! read, so the stored JSON never has to be rewritten after the insert assigned the id.
//! `schedule_name` is a column of its own for the list's `query` filter. Deletion is soft
//! (`deleted = 1`); deleted schedules are invisible to every read here.
//!
//! `schedule_name` is unique among the account's live schedules (response.md §1.13): create
//! and update check it in the same transaction as the write. The comparison is exact (after
//! the core's validation), like template names; a deleted schedule frees its name.
//!
//! Every statement is scoped by `account_id` (DESIGN.md principle 6).

use klaxon_core::model::Millis;
use klaxon_core::schedule::Schedule;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::db::Sql;
use crate::query::contains_pattern;
use crate::records::Page;
use crate::rows::{get_i64, get_str, to_json};
use crate::{Result, StoreError};

const COLUMNS: &str = "schedule_id, definition";

/// Filter of [`crate::Store::list_schedules`]: offset paging, newest id first.
#[derive(Debug, Clone, Default)]
pub struct ScheduleFilter {
    /// 1-based page.
    pub p: i64,
    pub limit: i64,
    /// Case-insensitive substring of `schedule_name`.
    pub query: Option<String>,
    /// Only these ids (empty = all).
    pub schedule_ids: Vec<i64>,
    /// Only schedules managed by one of these teams (empty = all).
    pub team_ids: Vec<i64>,
}

/// Why [`create`] or [`update`] refused to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleRefusal {
    /// Another live schedule of the account already has this `schedule_name`.
    NameTaken,
    /// The account has no such live schedule (update only).
    NotFound,
}

/// Whether a live schedule of the account other than `except` is named `name`.
async fn name_taken(
    conn: &mut AnyConnection,
    account_id: i64,
    name: &str,
    except: i64,
) -> Result<bool> {
    let mut sql = Sql::new("SELECT schedule_id FROM schedules WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND deleted = 0 AND schedule_name = ")
        .bind(name)
        .push(" AND schedule_id <> ")
        .bind(except);
    Ok(sql
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

pub(crate) fn schedule(row: &AnyRow) -> Result<Schedule> {
    let id = get_i64(row, "schedule_id")?;
    let text = get_str(row, "definition")?;
    let mut s: Schedule = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("schedules.definition {id}: {e}")))?;
    s.schedule_id = id;
    Ok(s)
}

/// Inserts `schedule` (already prepared by the core's `create_schedule`) and returns its new
/// id. The `schedule_id` inside the definition is ignored.
/// Refused when the name is taken; nothing is written then.
pub(crate) async fn create(
    pool: &AnyPool,
    account_id: i64,
    schedule: &Schedule,
) -> Result<std::result::Result<i64, ScheduleRefusal>> {
    let mut tx = pool.begin().await?;
    if name_taken(&mut tx, account_id, &schedule.schedule_name, 0).await? {
        tx.rollback().await?;
        return Ok(Err(ScheduleRefusal::NameTaken));
    }
    let mut sql = Sql::new(
        "INSERT INTO schedules (account_id, schedule_name, team_id, definition, created_at, \
         updated_at, deleted) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(schedule.schedule_name.as_str())
        .push(", ")
        .bind(schedule.team_id)
        .push(", ")
        .bind(to_json(schedule)?)
        .push(", ")
        .bind(schedule.created_at)
        .push(", ")
        .bind(schedule.updated_at)
        .push(", 0) RETURNING schedule_id");
    let row = sql.query_on(&tx).fetch_one(&mut *tx).await?;
    let id = row
        .try_get::<i64, _>(0)
        .map_err(|e| StoreError::Corrupt(format!("returned schedule_id: {e}")))?;
    tx.commit().await?;
    Ok(Ok(id))
}

/// The live (not deleted) schedule `schedule_id` of the account.
pub(crate) async fn get(
    pool: &AnyPool,
    account_id: i64,
    schedule_id: i64,
) -> Result<Option<Schedule>> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM schedules WHERE account_id = ")
        .bind(account_id)
        .push(" AND schedule_id = ")
        .bind(schedule_id)
        .push(" AND deleted = 0");
    match sql.into_query_on(&conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(schedule(&row)?)),
        None => Ok(None),
    }
}

/// Replaces the stored definition of `schedule.schedule_id` (prepared by the core's
/// `apply_edit`). Refused when the account has no such live schedule, or when the name
/// changes to one another live schedule has (keeping a name is always allowed, so a
/// duplicate stored before names were checked does not block other edits).
pub(crate) async fn update(
    pool: &AnyPool,
    account_id: i64,
    schedule: &Schedule,
) -> Result<std::result::Result<(), ScheduleRefusal>> {
    let mut tx = pool.begin().await?;
    let mut current = Sql::new("SELECT schedule_name FROM schedules WHERE account_id = ");
    current
        .bind(account_id)
        .push(" AND schedule_id = ")
        .bind(schedule.schedule_id)
        .push(" AND deleted = 0");
    let Some(row) = current.query_on(&tx).fetch_optional(&mut *tx).await? else {
        tx.rollback().await?;
        return Ok(Err(ScheduleRefusal::NotFound));
    };
    let old_name = get_str(&row, "schedule_name")?;
    if old_name != schedule.schedule_name
        && name_taken(
            &mut tx,
            account_id,
            &schedule.schedule_name,
            schedule.schedule_id,
        )
        .await?
    {
        tx.rollback().await?;
        return Ok(Err(ScheduleRefusal::NameTaken));
    }
    let mut sql = Sql::new("UPDATE schedules SET schedule_name = ");
    sql.bind(schedule.schedule_name.as_str())
        .push(", team_id = ")
        .bind(schedule.team_id)
        .push(", definition = ")
        .bind(to_json(schedule)?)
        .push(", updated_at = ")
        .bind(schedule.updated_at)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND schedule_id = ")
        .bind(schedule.schedule_id)
        .push(" AND deleted = 0");
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Soft-deletes the account's live schedules among `schedule_ids`; returns how many were.
pub(crate) async fn delete(
    pool: &AnyPool,
    account_id: i64,
    schedule_ids: &[i64],
    now: Millis,
) -> Result<u64> {
    if schedule_ids.is_empty() {
        return Ok(0);
    }
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("UPDATE schedules SET deleted = 1, updated_at = ");
    sql.bind(now)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND deleted = 0")
        .and_in("schedule_id", schedule_ids);
    let done = sql.into_query_on(&conn).execute(&mut *conn).await?;
    Ok(done.rows_affected())
}

fn filtered(sql: &mut Sql, account_id: i64, f: &ScheduleFilter) {
    sql.push(" FROM schedules WHERE account_id = ")
        .bind(account_id)
        .push(" AND deleted = 0");
    if let Some(q) = f.query.as_deref().filter(|q| !q.is_empty()) {
        sql.push(" AND LOWER(schedule_name) LIKE ")
            .bind(contains_pattern(q))
            .push(" ESCAPE '\\'");
    }
    sql.and_in("schedule_id", &f.schedule_ids);
    sql.and_in("team_id", &f.team_ids);
}

/// A page of the account's live schedules, newest first, with the exact `total`.
pub(crate) async fn list(
    pool: &AnyPool,
    account_id: i64,
    f: &ScheduleFilter,
) -> Result<Page<Schedule>> {
    let p = f.p.max(1);
    let limit = f.limit.max(1);
    let mut conn = pool.acquire().await?;

    let mut count = Sql::new("SELECT COUNT(*) AS n");
    filtered(&mut count, account_id, f);
    let row = count.into_query_on(&conn).fetch_one(&mut *conn).await?;
    let total = get_i64(&row, "n")?;

    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS);
    filtered(&mut sql, account_id, f);
    sql.push(" ORDER BY schedule_id DESC LIMIT ")
        .bind(limit)
        .push(" OFFSET ")
        .bind((p - 1).saturating_mul(limit));
    let rows = sql.into_query_on(&conn).fetch_all(&mut *conn).await?;
    let items = rows.iter().map(schedule).collect::<Result<Vec<_>>>()?;
    let has_next_page = p.saturating_mul(limit) < total;
    Ok(Page {
        items,
        total,
        has_next_page,
        search_after_ctx: None,
    })
}

/// feature: iCalendar feed. Sets (`Some`) or clears (`None`) the calendar feed token of the
/// account's live schedule `schedule_id`; the previous token stops working. False when the
/// account has no such live schedule.
pub(crate) async fn set_feed_token(
    pool: &AnyPool,
    account_id: i64,
    schedule_id: i64,
    new_token: Option<&str>,
) -> Result<bool> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("UPDATE schedules SET feed_token = ");
    sql.bind(new_token.unwrap_or(""))
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND schedule_id = ")
        .bind(schedule_id)
        .push(" AND deleted = 0");
    let done = sql.into_query_on(&conn).execute(&mut *conn).await?;
    Ok(done.rows_affected() > 0)
}

/// feature: iCalendar feed. The live schedule whose feed token is `token`, with its
/// account. An empty token never matches (empty = no feed).
pub(crate) async fn by_feed_token(pool: &AnyPool, token: &str) -> Result<Option<(i64, Schedule)>> {
    if token.is_empty() {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("SELECT account_id, ");
    sql.push(COLUMNS)
        .push(" FROM schedules WHERE feed_token = ")
        .bind(token)
        .push(" AND deleted = 0");
    match sql.into_query_on(&conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some((get_i64(&row, "account_id")?, schedule(&row)?))),
        None => Ok(None),
    }
}
