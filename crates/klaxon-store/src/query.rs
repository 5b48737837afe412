//! The read side: point lookups and the Open API lists (openapi-compat.md 1.6, 2.1, 2.3).
//!
//! Every tenant query starts with `WHERE account_id = $1` (DESIGN.md principle 6).
//!
//! Paging: offset (`p`, `limit`) or cursor (`search_after_ctx`). Lists are ordered by one
//! integer sort value and then the id, both descending unless `asc`. `total` is the exact count
//! of the filter (cursor or not); the cursor of the last item is returned whenever there is a
//! next page, so offset and cursor clients can both continue.

use klaxon_core::model::{Alert, Incident, StoredEvent};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use crate::db::{Arg, Sql};
use crate::records::{
    Account, AlertFilter, AppKeyOwner, Channel, ChannelFilter, EventFilter, IncidentFilter,
    Integration, Member, Page, Paging,
};
use crate::rows::{self, get_i64};
use crate::{Result, StoreError};

pub(crate) async fn integration_by_key(pool: &AnyPool, key: &str) -> Result<Option<Integration>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::INTEGRATION_COLUMNS)
        .push(" FROM integrations WHERE integration_key = ")
        .bind(key)
        .push(" AND deleted = 0");
    match sql.query().fetch_optional(pool).await? {
        Some(row) => Ok(Some(rows::integration(&row)?)),
        None => Ok(None),
    }
}

pub(crate) async fn app_key(pool: &AnyPool, key: &str) -> Result<Option<AppKeyOwner>> {
    crate::signin::app_key_owner(pool, key).await
}

pub(crate) async fn ping(pool: &AnyPool) -> Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

async fn one<T>(pool: &AnyPool, sql: &Sql, map: fn(&AnyRow) -> Result<T>) -> Result<Option<T>> {
    match sql.query().fetch_optional(pool).await? {
        Some(row) => Ok(Some(map(&row)?)),
        None => Ok(None),
    }
}

pub(crate) async fn account(pool: &AnyPool, account_id: i64) -> Result<Option<Account>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::ACCOUNT_COLUMNS)
        .push(" FROM accounts WHERE account_id = ")
        .bind(account_id);
    one(pool, &sql, rows::account).await
}

pub(crate) async fn member(
    pool: &AnyPool,
    account_id: i64,
    member_id: i64,
) -> Result<Option<Member>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::MEMBER_COLUMNS)
        .push(" FROM members WHERE account_id = ")
        .bind(account_id)
        .push(" AND member_id = ")
        .bind(member_id);
    one(pool, &sql, rows::member).await
}

/// Whether the account has this channel (not deleted).
pub(crate) async fn channel_exists(
    conn: &mut sqlx::AnyConnection,
    account_id: i64,
    channel_id: i64,
) -> Result<bool> {
    let mut sql =
        Sql::new("SELECT channel_id FROM channels WHERE status <> 'deleted' AND account_id = ");
    sql.bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id);
    Ok(sql
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

pub(crate) async fn incident(
    pool: &AnyPool,
    account_id: i64,
    incident_id: &str,
) -> Result<Option<Incident>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::INCIDENT_COLUMNS)
        .push(" FROM incidents WHERE account_id = ")
        .bind(account_id)
        .push(" AND incident_id = ")
        .bind(incident_id);
    one(pool, &sql, rows::incident).await
}

pub(crate) async fn alert(
    pool: &AnyPool,
    account_id: i64,
    alert_id: &str,
) -> Result<Option<Alert>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::ALERT_COLUMNS)
        .push(" FROM alerts WHERE account_id = ")
        .bind(account_id)
        .push(" AND alert_id = ")
        .bind(alert_id);
    one(pool, &sql, rows::alert).await
}

/// One list: its table, columns, sort column, id column and cursor tag.
struct ListSpec<T> {
    table: &'static str,
    columns: &'static str,
    sort: &'static str,
    id: &'static str,
    /// Cursor kind, so a cursor of one list is refused by another.
    tag: &'static str,
    map: fn(&AnyRow) -> Result<T>,
    key: fn(&T) -> (i64, String),
}

/// Runs a list: `filter` is the `WHERE` after the account test (fragments starting with
/// ` AND `), built on top of `base` so its placeholders continue the numbering.
async fn list<T>(
    pool: &AnyPool,
    spec: &ListSpec<T>,
    account_id: i64,
    paging: &Paging,
    filter: impl Fn(&mut Sql),
) -> Result<Page<T>> {
    let limit = paging.limit.max(1);
    let cursor = match &paging.search_after_ctx {
        Some(c) if !c.is_empty() => Some(decode_cursor(spec.tag, c)?),
        _ => None,
    };

    let mut count = Sql::new("SELECT COUNT(*) AS n FROM ");
    count
        .push(spec.table)
        .push(" WHERE account_id = ")
        .bind(account_id);
    filter(&mut count);
    let total = get_i64(&count.query().fetch_one(pool).await?, "n")?;

    let mut sql = Sql::new("SELECT ");
    sql.push(spec.columns)
        .push(" FROM ")
        .push(spec.table)
        .push(" WHERE account_id = ")
        .bind(account_id);
    filter(&mut sql);
    let (cmp, dir) = if paging.asc {
        (" > ", " ASC")
    } else {
        (" < ", " DESC")
    };
    if let Some((value, _)) = &cursor
        && spec.sort == spec.id
    {
        sql.push(" AND ").push(spec.sort).push(cmp).bind(*value);
    } else if let Some((value, id)) = &cursor {
        // (sort, id) strictly after the cursor in the list's direction.
        sql.push(" AND (")
            .push(spec.sort)
            .push(cmp)
            .bind(*value)
            .push(" OR (")
            .push(spec.sort)
            .push(" = ")
            .bind(*value)
            .push(" AND ")
            .push(spec.id)
            .push(cmp)
            .bind(Arg::Text(id.clone()))
            .push("))");
    }
    sql.push(" ORDER BY ")
        .push(spec.sort)
        .push(dir)
        .push(", ")
        .push(spec.id)
        .push(dir)
        .push(" LIMIT ")
        .bind(limit.saturating_add(1));
    if cursor.is_none() {
        let offset = paging.p.max(1).saturating_sub(1).saturating_mul(limit);
        sql.push(" OFFSET ").bind(offset);
    }

    let fetched = sql.query().fetch_all(pool).await?;
    let has_next_page = i64::try_from(fetched.len()).unwrap_or(i64::MAX) > limit;
    let mut items = Vec::with_capacity(fetched.len());
    for row in fetched
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        items.push((spec.map)(row)?);
    }
    Ok(page(spec, items, total, has_next_page))
}

/// Opaque cursor: hex of `tag:value:id`.
/// One page of a list, with the cursor of its last item when more follow.
fn page<T>(spec: &ListSpec<T>, items: Vec<T>, total: i64, has_next_page: bool) -> Page<T> {
    let search_after_ctx = if has_next_page {
        items.last().map(|last| {
            let (value, id) = (spec.key)(last);
            encode_cursor(spec.tag, value, &id)
        })
    } else {
        None
    };
    Page {
        items,
        total,
        has_next_page,
        search_after_ctx,
    }
}

fn encode_cursor(tag: &str, value: i64, id: &str) -> String {
    hex::encode(format!("{tag}:{value}:{id}"))
}

fn decode_cursor(tag: &str, cursor: &str) -> Result<(i64, String)> {
    let bytes = hex::decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let mut parts = text.splitn(3, ':');
    let (Some(t), Some(value), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StoreError::InvalidCursor);
    };
    if t != tag {
        return Err(StoreError::InvalidCursor);
    }
    let value = value
        .parse::<i64>()
        .map_err(|_| StoreError::InvalidCursor)?;
    Ok((value, id.to_string()))
}

/// `LIKE` pattern for "contains `needle`", case-insensitive via `LOWER` on both sides, with
/// `%`, `_` and the escape character itself escaped.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut out = String::from("%");
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `AND (column LIKE p1 OR column LIKE p2 …)`; nothing when there are no patterns.
fn any_like(sql: &mut Sql, column: &str, patterns: impl Iterator<Item = String>) {
    let mut first = true;
    for p in patterns {
        sql.push(if first { " AND (" } else { " OR " })
            .push(column)
            .push(" LIKE ")
            .bind(p)
            .push(" ESCAPE '\\'");
        first = false;
    }
    if !first {
        sql.push(")");
    }
}

/// Escapes LIKE's wildcards (with `\`).
fn like_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Start inclusive, end exclusive; a bound ≤ 0 is open.
fn time_window(sql: &mut Sql, column: &str, start: i64, end: i64) {
    if start > 0 {
        sql.push(" AND ").push(column).push(" >= ").bind(start);
    }
    if end > 0 {
        sql.push(" AND ").push(column).push(" < ").bind(end);
    }
}

fn strings<T: AsRef<str>>(values: &[T]) -> Vec<String> {
    values.iter().map(|v| v.as_ref().to_string()).collect()
}

pub(crate) async fn list_channels(
    pool: &AnyPool,
    account_id: i64,
    f: &ChannelFilter,
) -> Result<Page<Channel>> {
    let spec = ListSpec {
        table: "channels",
        columns: rows::CHANNEL_COLUMNS,
        sort: "channel_id",
        id: "channel_id",
        tag: "ch",
        map: rows::channel,
        key: |c: &Channel| (c.channel_id, c.channel_id.to_string()),
    };
    list(pool, &spec, account_id, &f.paging, |sql| {
        sql.push(" AND status <> 'deleted'");
        if let Some(q) = f.query.as_deref().filter(|q| !q.is_empty()) {
            sql.push(" AND LOWER(channel_name) LIKE ")
                .bind(contains_pattern(q))
                .push(" ESCAPE '\\'");
        }
        if let Some(name) = f.channel_name.as_deref().filter(|n| !n.is_empty()) {
            sql.push(" AND channel_name = ").bind(name);
        }
        sql.and_in("channel_id", &f.channel_ids);
    })
    .await
}

/// Runs a list whose last condition SQL cannot express (a label pattern, §4.3): every row of
/// the `WHERE` is read in the list's order, `keep` picks the matches, and the page (offset or
/// cursor) and `total` are taken from those.
///
/// DECISION: the rows are read in full only when such a condition is given; the incident
/// list's required time window (under 31 days) bounds them.
async fn list_kept<T>(
    pool: &AnyPool,
    spec: &ListSpec<T>,
    account_id: i64,
    paging: &Paging,
    filter: impl Fn(&mut Sql),
    keep: impl Fn(&T) -> bool,
) -> Result<Page<T>> {
    let limit = usize::try_from(paging.limit.max(1)).unwrap_or(usize::MAX);
    let cursor = match &paging.search_after_ctx {
        Some(c) if !c.is_empty() => Some(decode_cursor(spec.tag, c)?),
        _ => None,
    };
    let mut sql = Sql::new("SELECT ");
    sql.push(spec.columns)
        .push(" FROM ")
        .push(spec.table)
        .push(" WHERE account_id = ")
        .bind(account_id);
    filter(&mut sql);
    let dir = if paging.asc { " ASC" } else { " DESC" };
    sql.push(" ORDER BY ")
        .push(spec.sort)
        .push(dir)
        .push(", ")
        .push(spec.id)
        .push(dir);
    let mut kept = Vec::new();
    for row in &sql.query().fetch_all(pool).await? {
        let item = (spec.map)(row)?;
        if keep(&item) {
            kept.push(item);
        }
    }
    let total = i64::try_from(kept.len()).unwrap_or(i64::MAX);
    let start = match &cursor {
        Some((value, id)) => kept
            .iter()
            .position(|t| {
                let (v, i) = (spec.key)(t);
                let here = (v, i.as_str());
                let after = (*value, id.as_str());
                if paging.asc {
                    here > after
                } else {
                    here < after
                }
            })
            .unwrap_or(kept.len()),
        None => usize::try_from(paging.p.max(1) - 1)
            .unwrap_or(usize::MAX)
            .saturating_mul(limit),
    };
    let mut items: Vec<T> = kept
        .into_iter()
        .skip(start)
        .take(limit.saturating_add(1))
        .collect();
    let has_next_page = items.len() > limit;
    items.truncate(limit);
    Ok(page(spec, items, total, has_next_page))
}

/// An incident's labels as a condition subject (§4.2: `labels.<name>` only).
struct IncidentLabels<'a>(&'a Incident);

impl klaxon_core::condition::Subject for IncidentLabels<'_> {
    fn value(&self, key: &klaxon_core::condition::Key) -> Option<std::borrow::Cow<'_, str>> {
        match key {
            klaxon_core::condition::Key::Label(name) => self
                .0
                .labels
                .get(name)
                .map(|v| std::borrow::Cow::Borrowed(v.as_str())),
            _ => None,
        }
    }
}

pub(crate) async fn list_incidents(
    pool: &AnyPool,
    account_id: i64,
    f: &IncidentFilter,
) -> Result<Page<Incident>> {
    let spec = ListSpec {
        table: "incidents",
        columns: rows::INCIDENT_COLUMNS,
        sort: "start_time",
        id: "incident_id",
        tag: "inc",
        map: rows::incident,
        key: |i: &Incident| (i.start_time, i.incident_id.clone()),
    };
    let progress: Vec<String> = f.progress.iter().map(|p| p.as_str().to_string()).collect();
    let severities: Vec<String> = f
        .severities
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let nums: Vec<String> = f.nums.iter().map(|n| n.to_ascii_uppercase()).collect();
    let ids = strings(&f.incident_ids);
    let filter = |sql: &mut Sql| {
        time_window(sql, "start_time", f.start_time, f.end_time);
        sql.and_in("progress", &progress);
        sql.and_in("incident_severity", &severities);
        sql.and_in("channel_id", &f.channel_ids);
        sql.and_not_in("channel_id", &f.hidden_channel_ids);
        sql.and_in("incident_id", &ids);
        sql.and_in("num", &nums);
        sql.and_in("creator_id", &f.creator_ids);
        sql.and_in("closer_id", &f.closer_ids);
        any_like(
            sql,
            "responder_ids",
            f.responder_ids.iter().map(|id| format!("%,{id},%")),
        );
        any_like(
            sql,
            "acker_ids",
            f.acker_ids.iter().map(|id| format!("%,{id},%")),
        );
        for (name, values) in &f.fields {
            any_like(
                sql,
                "field_values",
                values
                    .iter()
                    .map(|v| format!("%{}%", like_escape(&format!("|{name}={v}|")))),
            );
        }
        match f.is_snoozed {
            Some(true) => {
                sql.push(" AND snoozed_before > ").bind(f.now);
            }
            Some(false) => {
                sql.push(" AND snoozed_before <= ").bind(f.now);
            }
            None => {}
        }
        if let Some(muted) = f.ever_muted {
            sql.push(" AND ever_muted = ").bind(muted);
        }
        if let Some(q) = f.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let hex = q.chars().all(|c| c.is_ascii_hexdigit());
            if hex && q.len() == 24 {
                sql.push(" AND incident_id = ").bind(q.to_ascii_lowercase());
            } else if hex && q.len() == 6 {
                sql.push(" AND num = ").bind(q.to_ascii_uppercase());
            } else {
                sql.push(" AND LOWER(title) LIKE ")
                    .bind(contains_pattern(q))
                    .push(" ESCAPE '\\'");
            }
        }
    };
    if f.labels.is_empty() {
        list(pool, &spec, account_id, &f.paging, filter).await
    } else {
        list_kept(pool, &spec, account_id, &f.paging, filter, |i| {
            f.labels.matches(&IncidentLabels(i))
        })
        .await
    }
}

pub(crate) async fn list_alerts(
    pool: &AnyPool,
    account_id: i64,
    f: &AlertFilter,
) -> Result<Page<Alert>> {
    let spec = ListSpec {
        table: "alerts",
        columns: rows::ALERT_COLUMNS,
        sort: "start_time",
        id: "alert_id",
        tag: "al",
        map: rows::alert,
        key: |a: &Alert| (a.start_time, a.alert_id.clone()),
    };
    let severities: Vec<String> = f
        .severities
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let ids = strings(&f.alert_ids);
    let keys = strings(&f.alert_keys);
    list(pool, &spec, account_id, &f.paging, |sql| {
        time_window(sql, "start_time", f.start_time, f.end_time);
        match f.is_active {
            Some(true) => {
                sql.push(" AND closed = 0 AND alert_status <> 'Ok'");
            }
            Some(false) => {
                sql.push(" AND (closed <> 0 OR alert_status = 'Ok')");
            }
            None => {}
        }
        sql.and_in("alert_severity", &severities);
        sql.and_in("channel_id", &f.channel_ids);
        sql.and_in("integration_id", &f.integration_ids);
        sql.and_in("alert_id", &ids);
        sql.and_in("alert_key", &keys);
        if let Some(incident_id) = f.incident_id.as_deref().filter(|i| !i.is_empty()) {
            sql.push(" AND incident_id = ").bind(incident_id);
        }
        if let Some(muted) = f.ever_muted {
            sql.push(" AND ever_muted = ").bind(muted);
        }
        if let Some(rule) = f.mark_rule_id.as_deref().filter(|r| !r.is_empty()) {
            sql.push(" AND mark_rule_id = ").bind(rule);
        }
    })
    .await
}

pub(crate) async fn list_events(
    pool: &AnyPool,
    account_id: i64,
    f: &EventFilter,
) -> Result<Page<StoredEvent>> {
    let spec = ListSpec {
        table: "events",
        columns: rows::EVENT_COLUMNS,
        sort: "event_time",
        id: "event_id",
        tag: "ev",
        map: rows::event,
        key: |e: &StoredEvent| (e.event_time, e.event_id.clone()),
    };
    let severities: Vec<String> = f
        .severities
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    let statuses: Vec<String> = f.statuses.iter().map(|s| s.as_str().to_string()).collect();
    let types = strings(&f.integration_types);
    list(pool, &spec, account_id, &f.paging, |sql| {
        time_window(sql, "event_time", f.start_time, f.end_time);
        sql.and_in("integration_id", &f.integration_ids);
        sql.and_in("integration_type", &types);
        sql.and_in("channel_id", &f.channel_ids);
        sql.and_in("event_severity", &severities);
        if let Some(alert_id) = f.alert_id.as_deref().filter(|a| !a.is_empty()) {
            sql.push(" AND alert_id = ").bind(alert_id);
        }
        sql.and_in("event_status", &statuses);
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_refusals() {
        let c = encode_cursor("inc", 1_700_000_000_000, "65a1b2c3d4e5f6a7b8c9d0e1");
        assert_eq!(
            decode_cursor("inc", &c).ok(),
            Some((1_700_000_000_000, "65a1b2c3d4e5f6a7b8c9d0e1".to_string()))
        );
        assert!(matches!(
            decode_cursor("al", &c),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(
            decode_cursor("inc", "zz"),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(
            decode_cursor("inc", &hex::encode("inc:x:y")),
            Err(StoreError::InvalidCursor)
        ));
    }

    #[test]
    fn like_pattern_escapes() {
        assert_eq!(contains_pattern("CPU 100%_x"), "%cpu 100\\%\\_x%");
    }
}
