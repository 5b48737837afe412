//! Deleting incidents and alerts with everything that belongs to them (service-agreement.md
//! SVC-183, SVC-184; response.md RSP-454; migration 0027; docs/data-retention.md).
//!
//! Two ways in, one way of deleting:
//! - [`Store::bulk_delete_incidents`]: an administrator deletes the incidents that started in
//!   a time range, and the alerts that never joined an incident from that range, in one
//!   transaction (or previews it: the same transaction, rolled back);
//! - [`Store::sweep_incident_retention`]: closed incidents (and unattached alerts that closed
//!   or recovered) older than the account's `incident_retention_days`, a bounded chunk per account and
//!   transaction, audited in that transaction.
//!
//! Both call [`delete_incidents`]/[`delete_alerts`], which remove an incident's alerts, their
//! events and event outcomes, the timeline, timers, notification outbox rows and outbound
//! webhook deliveries and attempts of the incident and its alerts; custom field values live
//! on the incident row. References from rows that are not the incident's own (another event's
//! outcome naming it as the inhibiting incident) are blanked, so nothing points at a deleted
//! row. Like every other incident write, the transaction first takes the incident lock
//! (`response::lock_incidents`), so processing, timers and actions never work on an incident
//! that is being deleted.

use klaxon_core::ids::IdSource;
use klaxon_core::model::Millis;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::audit::NewAuditRecord;
use crate::db::Sql;
use crate::process::RandomIds;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// Ids per statement: keeps every `IN (…)` list far below both backends' bind limits.
const IDS_PER_STATEMENT: usize = 200;

/// What a deletion removed (or, previewed, would remove), per kind of row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeletionCounts {
    pub incidents: i64,
    pub alerts: i64,
    pub events: i64,
    pub timeline_entries: i64,
    pub notifications: i64,
    pub timers: i64,
    pub event_outcomes: i64,
    pub webhook_deliveries: i64,
    pub webhook_attempts: i64,
}

impl DeletionCounts {
    /// The objects a person deletes (SVC-183 counts these): incidents and alerts. Their
    /// events, timeline and the rest are parts of them.
    pub fn objects(&self) -> i64 {
        self.incidents + self.alerts
    }

    fn add(&mut self, o: &DeletionCounts) {
        self.incidents += o.incidents;
        self.alerts += o.alerts;
        self.events += o.events;
        self.timeline_entries += o.timeline_entries;
        self.notifications += o.notifications;
        self.timers += o.timers;
        self.event_outcomes += o.event_outcomes;
        self.webhook_deliveries += o.webhook_deliveries;
        self.webhook_attempts += o.webhook_attempts;
    }
}

/// How a bulk deletion ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkDeletion {
    /// Committed: these rows are gone.
    Deleted(DeletionCounts),
    /// Rolled back (a preview, or the caller's check refused): what would have gone.
    RolledBack(DeletionCounts),
    /// More than the caller's maximum: nothing was touched.
    TooMany { objects: i64 },
}

/// One account's share of a retention sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSweep {
    pub account_id: i64,
    /// Closed incidents whose close time is before this instant were due.
    pub cutoff: Millis,
    pub counts: DeletionCounts,
    /// A whole chunk went: there may be more due, so sweep again.
    pub more: bool,
}

async fn execute(conn: &mut AnyConnection, sql: &Sql) -> Result<i64> {
    let done = sql.query_on(conn).execute(&mut *conn).await?;
    Ok(i64::try_from(done.rows_affected()).unwrap_or(i64::MAX))
}

async fn count(conn: &mut AnyConnection, sql: &Sql) -> Result<i64> {
    let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
    get_i64(&row, "n")
}

async fn ids(conn: &mut AnyConnection, sql: &Sql, column: &str) -> Result<Vec<String>> {
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter().map(|r| get_str(r, column)).collect()
}

/// `DELETE FROM table WHERE account_id = … AND column IN (values)`; the number deleted.
async fn delete_in(
    conn: &mut AnyConnection,
    table: &str,
    account_id: i64,
    column: &str,
    values: &[String],
) -> Result<i64> {
    if values.is_empty() {
        return Ok(0);
    }
    let mut sql = Sql::new("DELETE FROM ");
    sql.push(table)
        .push(" WHERE account_id = ")
        .bind(account_id);
    sql.and_in(column, values);
    execute(conn, &sql).await
}

/// Deletes alerts of `account_id` with their events, event outcomes and outbound webhook
/// deliveries and attempts. The caller decides which alerts: those of deleted incidents, or
/// alerts that never joined one.
pub(crate) async fn delete_alerts(
    conn: &mut AnyConnection,
    account_id: i64,
    alert_ids: &[String],
) -> Result<DeletionCounts> {
    let mut c = DeletionCounts::default();
    for chunk in alert_ids.chunks(IDS_PER_STATEMENT) {
        c.events += delete_in(conn, "events", account_id, "alert_id", chunk).await?;
        c.event_outcomes +=
            delete_in(conn, "event_outcomes", account_id, "alert_id", chunk).await?;
        c.webhook_deliveries +=
            delete_in(conn, "webhook_deliveries", account_id, "subject_id", chunk).await?;
        c.webhook_attempts +=
            delete_in(conn, "webhook_attempts", account_id, "ref_id", chunk).await?;
        c.alerts += delete_in(conn, "alerts", account_id, "alert_id", chunk).await?;
    }
    Ok(c)
}

/// Deletes incidents of `account_id` and every row that belongs to them (module docs). The
/// caller holds the incident lock and owns the transaction.
pub(crate) async fn delete_incidents(
    conn: &mut AnyConnection,
    account_id: i64,
    incident_ids: &[String],
) -> Result<DeletionCounts> {
    let mut c = DeletionCounts::default();
    for chunk in incident_ids.chunks(IDS_PER_STATEMENT) {
        // An alert belongs to exactly one incident (`alerts.incident_id`; a merge moves it).
        let mut sql = Sql::new("SELECT alert_id FROM alerts WHERE account_id = ");
        sql.bind(account_id).and_in("incident_id", chunk);
        let alerts = ids(conn, &sql, "alert_id").await?;
        c.add(&delete_alerts(conn, account_id, &alerts).await?);
        // Outcomes recorded against the incident under an alert that later moved elsewhere.
        c.event_outcomes +=
            delete_in(conn, "event_outcomes", account_id, "incident_id", chunk).await?;
        // Another event's outcome may name this incident as the one that inhibited it: that
        // record stays (it is the other event's), without the reference.
        let mut sql =
            Sql::new("UPDATE event_outcomes SET source_incident_id = '' WHERE account_id = ");
        sql.bind(account_id).and_in("source_incident_id", chunk);
        execute(conn, &sql).await?;
        c.timeline_entries +=
            delete_in(conn, "incident_timeline", account_id, "incident_id", chunk).await?;
        c.timers += delete_in(conn, "timers", account_id, "incident_id", chunk).await?;
        c.notifications +=
            delete_in(conn, "notifications", account_id, "incident_id", chunk).await?;
        c.webhook_deliveries +=
            delete_in(conn, "webhook_deliveries", account_id, "subject_id", chunk).await?;
        c.webhook_attempts +=
            delete_in(conn, "webhook_attempts", account_id, "ref_id", chunk).await?;
        // Ticket-sync links and steps (RSP-405): the tickets stay in the ticket system.
        for table in ["ticket_sync_links", "ticket_sync_jobs"] {
            delete_in(conn, table, account_id, "incident_id", chunk).await?;
        }
        // War rooms (1.22) and their members; the chats themselves stay on the IM platform.
        let mut sql = Sql::new(
            "DELETE FROM war_room_members WHERE room_id IN (SELECT room_id FROM war_rooms \
             WHERE account_id = ",
        );
        sql.bind(account_id).and_in("incident_id", chunk).push(")");
        execute(conn, &sql).await?;
        delete_in(conn, "war_rooms", account_id, "incident_id", chunk).await?;
        c.incidents += delete_in(conn, "incidents", account_id, "incident_id", chunk).await?;
    }
    Ok(c)
}

/// The incidents of a bulk deletion: those that started in `[start, end)`.
fn incidents_in_range(select: &str, account_id: i64, start: Millis, end: Millis) -> Sql {
    let mut sql = Sql::new(select);
    sql.push(" FROM incidents WHERE account_id = ")
        .bind(account_id)
        .push(" AND start_time >= ")
        .bind(start)
        .push(" AND start_time < ")
        .bind(end);
    sql
}

/// The alerts of a bulk deletion that belong to no incident: started in `[start, end)`.
fn unattached_alerts_in_range(select: &str, account_id: i64, start: Millis, end: Millis) -> Sql {
    let mut sql = Sql::new(select);
    sql.push(" FROM alerts WHERE account_id = ")
        .bind(account_id)
        .push(" AND incident_id = '' AND start_time >= ")
        .bind(start)
        .push(" AND start_time < ")
        .bind(end);
    sql
}

impl Store {
    /// SVC-183: deletes the account's incidents that started in `[start, end)` (ms) with all
    /// their rows, and the alerts of that range that never joined an incident, in one
    /// transaction. More than `max_objects` incidents and alerts: nothing is touched. Once the
    /// rows are deleted (still uncommitted), `commit` sees the counts and decides: `false`
    /// rolls everything back (a preview, or a missing confirmation).
    pub async fn bulk_delete_incidents(
        &self,
        account_id: i64,
        start: Millis,
        end: Millis,
        max_objects: i64,
        commit: impl FnOnce(&DeletionCounts) -> bool,
    ) -> Result<BulkDeletion> {
        let mut tx = self.inner.write.begin().await?;
        crate::response::lock_incidents(&mut tx).await?;
        let incidents = count(
            &mut tx,
            &incidents_in_range("SELECT COUNT(*) AS n", account_id, start, end),
        )
        .await?;
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM alerts WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND incident_id IN (SELECT incident_id FROM incidents WHERE account_id = ")
            .bind(account_id)
            .push(" AND start_time >= ")
            .bind(start)
            .push(" AND start_time < ")
            .bind(end)
            .push(")");
        let attached = count(&mut tx, &sql).await?;
        let unattached = count(
            &mut tx,
            &unattached_alerts_in_range("SELECT COUNT(*) AS n", account_id, start, end),
        )
        .await?;
        let objects = incidents + attached + unattached;
        if objects > max_objects {
            tx.rollback().await?;
            return Ok(BulkDeletion::TooMany { objects });
        }
        let mut select = incidents_in_range("SELECT incident_id", account_id, start, end);
        select.push(" ORDER BY start_time, incident_id");
        let incident_ids = ids(&mut tx, &select, "incident_id").await?;
        let alert_ids = ids(
            &mut tx,
            &unattached_alerts_in_range("SELECT alert_id", account_id, start, end),
            "alert_id",
        )
        .await?;
        let mut counts = delete_incidents(&mut tx, account_id, &incident_ids).await?;
        counts.add(&delete_alerts(&mut tx, account_id, &alert_ids).await?);
        if commit(&counts) {
            tx.commit().await?;
            Ok(BulkDeletion::Deleted(counts))
        } else {
            tx.rollback().await?;
            Ok(BulkDeletion::RolledBack(counts))
        }
    }

    /// Changes the account settings given (`time_zone`, `incident_retention_days`; 0 keeps
    /// incidents forever) in one statement, so a call changes all or nothing. The caller has
    /// checked the values (`klaxon_core::directory::time_zone`,
    /// `klaxon_core::retention::retention_days`). False for an unknown account.
    pub async fn set_account_settings(
        &self,
        account_id: i64,
        time_zone: Option<&str>,
        incident_retention_days: Option<i64>,
        locale: Option<&str>,
        now: Millis,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE accounts SET updated_at = ");
        sql.bind(now);
        if let Some(zone) = time_zone {
            sql.push(", time_zone = ").bind(zone);
        }
        if let Some(locale) = locale {
            sql.push(", locale = ").bind(locale);
        }
        if let Some(days) = incident_retention_days {
            sql.push(", incident_retention_days = ").bind(days);
        }
        sql.push(" WHERE account_id = ").bind(account_id);
        Ok(execute(&mut conn, &sql).await? == 1)
    }

    /// The incident retention sweep at `now`: for every account with a retention, deletes up
    /// to `chunk` of its closed incidents that closed before `now − retention`, oldest close
    /// first, and up to `chunk` alerts that never joined an incident and closed or recovered
    /// before it, with all their rows, in one transaction per account that also writes an audit
    /// record (`incident:write:retention_delete`, member 0, source `system`) with the counts.
    /// Accounts with nothing due are left alone. Call again while a sweep reports `more`.
    pub async fn sweep_incident_retention(
        &self,
        now: Millis,
        chunk: i64,
    ) -> Result<Vec<RetentionSweep>> {
        let chunk = chunk.max(1);
        let accounts = {
            let mut conn = self.inner.read.acquire().await?;
            let sql = Sql::new(
                "SELECT account_id, incident_retention_days FROM accounts \
                 WHERE incident_retention_days > 0 ORDER BY account_id",
            );
            let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        get_i64(r, "account_id")?,
                        get_i64(r, "incident_retention_days")?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?
        };
        let mut out = Vec::new();
        for (account_id, days) in accounts {
            let Some(cutoff) = klaxon_core::retention::retention_cutoff(now, days) else {
                continue;
            };
            if let Some(sweep) = self
                .sweep_account(account_id, days, cutoff, chunk, now)
                .await?
            {
                out.push(sweep);
            }
        }
        Ok(out)
    }

    async fn sweep_account(
        &self,
        account_id: i64,
        days: i64,
        cutoff: Millis,
        chunk: i64,
        now: Millis,
    ) -> Result<Option<RetentionSweep>> {
        let mut tx = self.inner.write.begin().await?;
        crate::response::lock_incidents(&mut tx).await?;
        let mut sql = Sql::new("SELECT incident_id FROM incidents WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND progress = 'Closed' AND close_time < ")
            .bind(cutoff)
            .push(" ORDER BY close_time, incident_id LIMIT ")
            .bind(chunk);
        let incident_ids = ids(&mut tx, &sql, "incident_id").await?;
        // An alert without an incident is over when it was closed, or when it recovered (a
        // silenced alert's recovery sets `end_time` but never closes it).
        let mut sql = Sql::new("SELECT alert_id FROM alerts WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND incident_id = '' AND ((closed = 1 AND close_time < ")
            .bind(cutoff)
            .push(") OR (alert_status = 'Ok' AND end_time > 0 AND end_time < ")
            .bind(cutoff)
            .push(")) ORDER BY start_time, alert_id LIMIT ")
            .bind(chunk);
        let alert_ids = ids(&mut tx, &sql, "alert_id").await?;
        if incident_ids.is_empty() && alert_ids.is_empty() {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut counts = delete_incidents(&mut tx, account_id, &incident_ids).await?;
        counts.add(&delete_alerts(&mut tx, account_id, &alert_ids).await?);
        // SVC-184: deletions are accountable; the record commits with them.
        let body = serde_json::json!({
            "incident_retention_days": days,
            "closed_before": cutoff,
            "deleted": counts,
        });
        let record = NewAuditRecord {
            account_id,
            request_id: klaxon_core::ids::object_id(now, RandomIds.random8()),
            created_at: now,
            member_id: 0,
            app_key_id: 0,
            source: "system".to_string(),
            operation: "incident:write:retention_delete".to_string(),
            resource_type: "incident".to_string(),
            resource_id: String::new(),
            ip: String::new(),
            is_write: true,
            is_dangerous: true,
            body: body.to_string(),
            result: "ok".to_string(),
        };
        crate::audit::insert(&mut tx, &record).await?;
        tx.commit().await?;
        let more = incident_ids.len() as i64 >= chunk || alert_ids.len() as i64 >= chunk;
        Ok(Some(RetentionSweep {
            account_id,
            cutoff,
            counts,
            more,
        }))
    }
}
