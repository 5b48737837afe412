//! Service calendars (response.md §1.14, §2.18), the holiday sets they link, the reference
//! checks that guard deleting a calendar or a schedule (RSP-234, RSP-273), and the per-member
//! calendar feed tokens (feature: iCalendar feed).
//!
//! A calendar is one row with the core [`ServiceCalendar`] kept whole as JSON in
//! `definition`; the row's `cal_id` is authoritative. Holiday sets are per account (every
//! tenant-owned row carries the account id, DESIGN.md principle 6) and are replaced whole when
//! a set with the same id is loaded again.
//!
//! [`Store::account_calendars`] is what every schedule evaluation needs: the account's
//! calendars and holiday sets, whose [`AccountCalendars::view`] is the resolver's
//! [`Calendars`].

use std::collections::BTreeMap;

use klaxon_core::model::Millis;
use klaxon_core::schedule::{CalendarStatus, Calendars, HolidayMark, HolidaySet, ServiceCalendar};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::db::Sql;
use crate::query::contains_pattern;
use crate::records::Page;
use crate::rows::{get_i64, get_str, to_json};
use crate::{Result, Store, StoreError};

/// Filter of [`Store::list_calendars`]: offset paging, newest first (by creation instant,
/// then id).
#[derive(Debug, Clone, Default)]
pub struct CalendarFilter {
    /// 1-based page.
    pub p: i64,
    pub limit: i64,
    /// Case-insensitive substring of `cal_name`.
    pub query: Option<String>,
    /// Only calendars managed by one of these teams (empty = all).
    pub team_ids: Vec<i64>,
    /// Only these calendars (empty = all).
    pub cal_ids: Vec<String>,
}

/// The account's calendars and holiday sets, loaded for schedule evaluation.
#[derive(Debug, Clone, Default)]
pub struct AccountCalendars {
    pub calendars: Vec<ServiceCalendar>,
    pub holiday_sets: Vec<HolidaySet>,
}

impl AccountCalendars {
    /// The resolver's view (`klaxon_core::schedule::on_call_at(s, cals.view(), t)`).
    pub fn view(&self) -> Calendars<'_> {
        Calendars::new(&self.calendars, &self.holiday_sets)
    }
}

/// Why a delete was refused: the objects that still refer to it, one readable line each
/// (`escalation rule "Night" (rule_id …, channel 3)`), for the `ReferenceExist` message.
pub type Referrers = Vec<String>;

fn calendar(row: &AnyRow) -> Result<ServiceCalendar> {
    let id = get_str(row, "cal_id")?;
    let text = get_str(row, "definition")?;
    let mut c: ServiceCalendar = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("calendars.definition {id}: {e}")))?;
    c.cal_id = id;
    c.status = CalendarStatus::Enabled;
    Ok(c)
}

fn holiday_set(row: &AnyRow) -> Result<HolidaySet> {
    let id = get_str(row, "set_id")?;
    let text = get_str(row, "entries")?;
    let entries: BTreeMap<String, HolidayMark> = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("holiday_sets.entries {id}: {e}")))?;
    Ok(HolidaySet {
        id,
        name: get_str(row, "set_name")?,
        entries,
    })
}

async fn calendars_of(conn: &mut AnyConnection, account_id: i64) -> Result<Vec<ServiceCalendar>> {
    let mut sql = Sql::new("SELECT cal_id, definition FROM calendars WHERE account_id = ");
    sql.bind(account_id).push(" ORDER BY cal_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter().map(calendar).collect()
}

async fn holiday_sets_of(conn: &mut AnyConnection, account_id: i64) -> Result<Vec<HolidaySet>> {
    let mut sql =
        Sql::new("SELECT set_id, set_name, entries FROM holiday_sets WHERE account_id = ");
    sql.bind(account_id).push(" ORDER BY set_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter().map(holiday_set).collect()
}

/// The account's calendars and holiday sets on `conn`, for code that already holds a
/// connection or transaction (the escalation engine's `StoreDirectory` in `response.rs` loads
/// its members, teams and schedules this way). [`Store::account_calendars`] is the same on
/// the read pool.
pub(crate) async fn load(conn: &mut AnyConnection, account_id: i64) -> Result<AccountCalendars> {
    Ok(AccountCalendars {
        calendars: calendars_of(conn, account_id).await?,
        holiday_sets: holiday_sets_of(conn, account_id).await?,
    })
}

/// The escalation rules of the account as `(rule_id, rule_name, channel_id, definition)`.
/// The definition is read as plain JSON so these checks depend only on the stored shape
/// (response.md 1.12), not on the rule engine's types.
async fn rule_definitions(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<Vec<(String, String, i64, serde_json::Value)>> {
    let mut sql = Sql::new(
        "SELECT rule_id, rule_name, channel_id, definition FROM escalation_rules WHERE \
         account_id = ",
    );
    sql.bind(account_id).push(" ORDER BY channel_id, rule_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| {
            let id = get_str(row, "rule_id")?;
            let text = get_str(row, "definition")?;
            let def = serde_json::from_str(&text).map_err(|e| {
                StoreError::Corrupt(format!("escalation_rules.definition {id}: {e}"))
            })?;
            Ok((
                id,
                get_str(row, "rule_name")?,
                get_i64(row, "channel_id")?,
                def,
            ))
        })
        .collect()
}

fn rule_label(rule_id: &str, name: &str, channel_id: i64) -> String {
    format!("escalation rule {name:?} (rule_id {rule_id}, channel {channel_id})")
}

/// RSP-234: the escalation rules with a level whose `target.schedule_to_role_ids` names one
/// of `schedule_ids`.
async fn schedule_referrers_on(
    conn: &mut AnyConnection,
    account_id: i64,
    schedule_ids: &[i64],
) -> Result<Referrers> {
    let mut out = Vec::new();
    for (id, name, channel, def) in rule_definitions(conn, account_id).await? {
        let levels = def.get("layers").and_then(|l| l.as_array());
        let hits: Vec<i64> = levels
            .into_iter()
            .flatten()
            .filter_map(|level| level.pointer("/target/schedule_to_role_ids"))
            .filter_map(|m| m.as_object())
            .flat_map(|m| m.keys())
            .filter_map(|k| k.parse::<i64>().ok())
            .filter(|k| schedule_ids.contains(k))
            .collect();
        if !hits.is_empty() {
            let mut hits = hits;
            hits.sort_unstable();
            hits.dedup();
            let which: Vec<String> = hits.iter().map(|h| h.to_string()).collect();
            out.push(format!(
                "{} targets schedule {}",
                rule_label(&id, &name, channel),
                which.join(", ")
            ));
        }
    }
    Ok(out)
}

/// RSP-273: the live schedules whose current layers mask by `cal_id` (past versions only
/// describe the past and do not count), and the escalation rules whose time filters name it.
/// Silence rules belong here too once they exist.
async fn calendar_referrers_on(
    conn: &mut AnyConnection,
    account_id: i64,
    cal_id: &str,
) -> Result<Referrers> {
    let mut out = Vec::new();
    let mut sql = Sql::new(
        "SELECT schedule_id, schedule_name, definition FROM schedules WHERE deleted = 0 AND \
         account_id = ",
    );
    sql.bind(account_id).push(" ORDER BY schedule_id");
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let id = get_i64(&row, "schedule_id")?;
        let text = get_str(&row, "definition")?;
        let def: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("schedules.definition {id}: {e}")))?;
        let uses = def
            .get("layers")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
            .any(|l| l.pointer("/calendar_mask/cal_id").and_then(|c| c.as_str()) == Some(cal_id));
        if uses {
            out.push(format!(
                "schedule {:?} (schedule_id {id}) masks a layer by it",
                get_str(&row, "schedule_name")?
            ));
        }
    }
    for (id, name, channel, def) in rule_definitions(conn, account_id).await? {
        let uses = def
            .get("time_filters")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
            .any(|tf| tf.get("cal_id").and_then(|c| c.as_str()) == Some(cal_id));
        if uses {
            out.push(format!(
                "{} has a time filter on it",
                rule_label(&id, &name, channel)
            ));
        }
    }
    // ING-133: silence rules (the only channel rules with time filters) may use one too.
    let mut sql = Sql::new(
        "SELECT rule_id, rule_name, channel_id, definition FROM channel_rules WHERE account_id = ",
    );
    sql.bind(account_id)
        .push(" AND kind = 'silence' ORDER BY rule_id");
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let id = get_str(&row, "rule_id")?;
        let text = get_str(&row, "definition")?;
        let def: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("channel_rules.definition {id}: {e}")))?;
        let uses = def
            .get("time_filters")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
            .any(|tf| tf.get("cal_id").and_then(|c| c.as_str()) == Some(cal_id));
        if uses {
            out.push(format!(
                "silence rule {:?} (rule_id {id}, channel {}) has a time filter on it",
                get_str(&row, "rule_name")?,
                get_i64(&row, "channel_id")?
            ));
        }
    }
    Ok(out)
}

/// RSP-554: calendars managed by a deleted team lose it as their team (same transaction as
/// the team's deletion).
pub(crate) async fn drop_team(
    conn: &mut AnyConnection,
    account_id: i64,
    team_id: i64,
) -> Result<()> {
    for mut cal in calendars_of(conn, account_id).await? {
        if cal.team_id != team_id {
            continue;
        }
        cal.team_id = 0;
        let mut sql = Sql::new("UPDATE calendars SET team_id = 0, definition = ");
        sql.bind(to_json(&cal)?)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND cal_id = ")
            .bind(cal.cal_id.as_str());
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

fn filtered(sql: &mut Sql, account_id: i64, f: &CalendarFilter) {
    sql.push(" FROM calendars WHERE account_id = ")
        .bind(account_id);
    if let Some(q) = f.query.as_deref().filter(|q| !q.is_empty()) {
        sql.push(" AND LOWER(cal_name) LIKE ")
            .bind(contains_pattern(q))
            .push(" ESCAPE '\\'");
    }
    sql.and_in("team_id", &f.team_ids);
    sql.and_in("cal_id", &f.cal_ids);
}

impl Store {
    /// Stores a new, validated calendar under its `cal_id` (an ObjectID the caller made).
    pub async fn create_calendar(
        &self,
        account_id: i64,
        cal: &ServiceCalendar,
        now: Millis,
    ) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO calendars (cal_id, account_id, cal_name, team_id, definition, \
             created_at, updated_at) VALUES (",
        );
        sql.bind(cal.cal_id.as_str())
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(cal.cal_name.as_str())
            .push(", ")
            .bind(cal.team_id)
            .push(", ")
            .bind(to_json(cal)?)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
        sql.into_query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// The account's calendar `cal_id`.
    pub async fn calendar(&self, account_id: i64, cal_id: &str) -> Result<Option<ServiceCalendar>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT cal_id, definition FROM calendars WHERE account_id = ");
        sql.bind(account_id).push(" AND cal_id = ").bind(cal_id);
        match sql.into_query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(row) => Ok(Some(calendar(&row)?)),
            None => Ok(None),
        }
    }

    /// Replaces the stored calendar `cal.cal_id`; false when the account has no such calendar.
    /// RSP-272: every later evaluation reads the new definition.
    pub async fn update_calendar(
        &self,
        account_id: i64,
        cal: &ServiceCalendar,
        now: Millis,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE calendars SET cal_name = ");
        sql.bind(cal.cal_name.as_str())
            .push(", team_id = ")
            .bind(cal.team_id)
            .push(", definition = ")
            .bind(to_json(cal)?)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND cal_id = ")
            .bind(cal.cal_id.as_str());
        let done = sql.into_query_on(&conn).execute(&mut *conn).await?;
        Ok(done.rows_affected() > 0)
    }

    /// RSP-273: deletes the calendar unless something still refers to it. `Ok(Ok(false))`:
    /// no such calendar; `Ok(Err(referrers))`: refused, nothing changed. The check and the
    /// delete share one transaction.
    pub async fn delete_calendar(
        &self,
        account_id: i64,
        cal_id: &str,
    ) -> Result<std::result::Result<bool, Referrers>> {
        let mut tx = self.inner.write.begin().await?;
        let referrers = calendar_referrers_on(&mut tx, account_id, cal_id).await?;
        if !referrers.is_empty() {
            tx.rollback().await?;
            return Ok(Err(referrers));
        }
        let mut sql = Sql::new("DELETE FROM calendars WHERE account_id = ");
        sql.bind(account_id).push(" AND cal_id = ").bind(cal_id);
        let done = sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected() > 0))
    }

    /// RSP-273: what refers to calendar `cal_id` (schedule calendar masks, escalation rule and
    /// silence rule time filters).
    pub async fn calendar_referrers(&self, account_id: i64, cal_id: &str) -> Result<Referrers> {
        let mut conn = self.inner.read.acquire().await?;
        calendar_referrers_on(&mut conn, account_id, cal_id).await
    }

    /// RSP-234: the escalation rules whose levels target one of `schedule_ids`.
    pub async fn schedule_referrers(
        &self,
        account_id: i64,
        schedule_ids: &[i64],
    ) -> Result<Referrers> {
        let mut conn = self.inner.read.acquire().await?;
        schedule_referrers_on(&mut conn, account_id, schedule_ids).await
    }

    /// RSP-234: soft-deletes the account's live schedules among `schedule_ids` unless an
    /// escalation rule still targets one of them. `Ok(Err(referrers))`: refused, nothing
    /// changed. The check and the delete share one transaction.
    pub async fn delete_schedules_unreferenced(
        &self,
        account_id: i64,
        schedule_ids: &[i64],
        now: Millis,
    ) -> Result<std::result::Result<u64, Referrers>> {
        if schedule_ids.is_empty() {
            return Ok(Ok(0));
        }
        let mut tx = self.inner.write.begin().await?;
        let referrers = schedule_referrers_on(&mut tx, account_id, schedule_ids).await?;
        if !referrers.is_empty() {
            tx.rollback().await?;
            return Ok(Err(referrers));
        }
        let mut sql = Sql::new("UPDATE schedules SET deleted = 1, updated_at = ");
        sql.bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND deleted = 0")
            .and_in("schedule_id", schedule_ids);
        let done = sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected()))
    }

    /// A page of the account's calendars, newest first, with the exact `total`.
    pub async fn list_calendars(
        &self,
        account_id: i64,
        f: &CalendarFilter,
    ) -> Result<Page<ServiceCalendar>> {
        let p = f.p.max(1);
        let limit = f.limit.max(1);
        let mut conn = self.inner.read.acquire().await?;
        let mut count = Sql::new("SELECT COUNT(*) AS n");
        filtered(&mut count, account_id, f);
        let row = count.into_query_on(&conn).fetch_one(&mut *conn).await?;
        let total = get_i64(&row, "n")?;

        let mut sql = Sql::new("SELECT cal_id, definition");
        filtered(&mut sql, account_id, f);
        sql.push(" ORDER BY created_at DESC, cal_id DESC LIMIT ")
            .bind(limit)
            .push(" OFFSET ")
            .bind((p - 1).saturating_mul(limit));
        let rows = sql.into_query_on(&conn).fetch_all(&mut *conn).await?;
        let items = rows.iter().map(calendar).collect::<Result<Vec<_>>>()?;
        Ok(Page {
            items,
            total,
            has_next_page: p.saturating_mul(limit) < total,
            search_after_ctx: None,
        })
    }

    /// Every calendar and holiday set of the account, for schedule evaluation and calendar
    /// validation. **Escalation matching (RSP-133) and schedule targets (RSP-151) should call
    /// this too** and pass `.view()` where they pass `Calendars::default()` today.
    pub async fn account_calendars(&self, account_id: i64) -> Result<AccountCalendars> {
        let mut conn = self.inner.read.acquire().await?;
        load(&mut conn, account_id).await
    }

    /// Loads a holiday set (OQ-18), replacing a set with the same id; true when it was new.
    pub async fn put_holiday_set(
        &self,
        account_id: i64,
        set: &HolidaySet,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut del = Sql::new("DELETE FROM holiday_sets WHERE account_id = ");
        del.bind(account_id)
            .push(" AND set_id = ")
            .bind(set.id.as_str());
        let existed = del.query_on(&tx).execute(&mut *tx).await?.rows_affected() > 0;
        let mut sql = Sql::new(
            "INSERT INTO holiday_sets (account_id, set_id, set_name, entries, updated_at) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(set.id.as_str())
            .push(", ")
            .bind(set.name.as_str())
            .push(", ")
            .bind(to_json(&set.entries)?)
            .push(", ")
            .bind(now)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(!existed)
    }

    /// The account's holiday sets, by id.
    pub async fn holiday_sets(&self, account_id: i64) -> Result<Vec<HolidaySet>> {
        let mut conn = self.inner.read.acquire().await?;
        holiday_sets_of(&mut conn, account_id).await
    }

    /// Removes a holiday set unless a calendar links it (`extra_cal_ids`). `Ok(Ok(false))`:
    /// no such set; `Ok(Err(referrers))`: refused, nothing changed.
    pub async fn delete_holiday_set(
        &self,
        account_id: i64,
        set_id: &str,
    ) -> Result<std::result::Result<bool, Referrers>> {
        let mut tx = self.inner.write.begin().await?;
        let referrers: Referrers = calendars_of(&mut tx, account_id)
            .await?
            .into_iter()
            .filter(|c| c.extra_cal_ids.iter().any(|id| id == set_id))
            .map(|c| format!("calendar {:?} (cal_id {})", c.cal_name, c.cal_id))
            .collect();
        if !referrers.is_empty() {
            tx.rollback().await?;
            return Ok(Err(referrers));
        }
        let mut sql = Sql::new("DELETE FROM holiday_sets WHERE account_id = ");
        sql.bind(account_id).push(" AND set_id = ").bind(set_id);
        let done = sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Ok(done.rows_affected() > 0))
    }

    /// feature: iCalendar feed, per member. Sets the secret token of `member_id`'s feed (the
    /// previous one stops working).
    pub async fn set_member_feed_token(
        &self,
        account_id: i64,
        member_id: i64,
        token: &str,
    ) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        let mut del = Sql::new("DELETE FROM member_feeds WHERE account_id = ");
        del.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        del.query_on(&tx).execute(&mut *tx).await?;
        let mut sql =
            Sql::new("INSERT INTO member_feeds (account_id, member_id, feed_token) VALUES (");
        sql.bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(token)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// feature: iCalendar feed, per member. `(account_id, member_id)` of the feed token; `None`
    /// for an unknown or empty token.
    pub async fn member_by_feed_token(&self, token: &str) -> Result<Option<(i64, i64)>> {
        if token.is_empty() {
            return Ok(None);
        }
        let mut conn = self.inner.read.acquire().await?;
        let mut sql =
            Sql::new("SELECT account_id, member_id FROM member_feeds WHERE feed_token = ");
        sql.bind(token);
        match sql.into_query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(row) => Ok(Some((
                get_i64(&row, "account_id")?,
                get_i64(&row, "member_id")?,
            ))),
            None => Ok(None),
        }
    }
}
