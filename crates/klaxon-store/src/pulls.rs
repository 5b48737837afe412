//! HTTP pull scheduling and history (ingest.md ING-221, ING-227 … ING-229; migration 0032).
//!
//! The server decides what a pull does; this module keeps *when* and *who*:
//! - `pull_schedules.next_due_at` is the next scheduled start. An enabled `http_pull`
//!   integration without a row is due at once (ING-221: the first pull runs when it is
//!   created); enabling one makes it due at once again ([`Store::pull_due_now`]).
//! - A pull runs under a lease (`running_until`, `holder`) taken with a conditional `UPDATE`,
//!   so only one pull of an integration runs at a time, across nodes; a node that dies loses
//!   its lease when it expires.
//! - Finishing writes the history row, releases the lease and — only for a pull without
//!   failure — advances `last_pull_time`, in one transaction; the newest
//!   [`HISTORY_KEPT`] rows per integration are kept.
//!
//! Every statement is scoped by `account_id` (DESIGN.md principle 6).

use klaxon_core::model::Millis;
use sqlx::Row;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// History rows kept per integration (ING-229: at least the last 100).
pub const HISTORY_KEPT: i64 = 100;

/// An enabled `http_pull` integration with its schedule, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSchedule {
    pub account_id: i64,
    pub integration_id: i64,
    /// The integration's settings (JSON object text).
    pub settings: String,
    /// `None` before the first look (due at once).
    pub next_due_at: Option<Millis>,
    /// Lease end of the running pull; 0 = none.
    pub running_until: Millis,
}

/// How a pull ended, as stored (ING-229).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRecord {
    pub seq: i64,
    pub integration_id: i64,
    pub started_at: Millis,
    pub ended_at: Millis,
    /// `schedule` | `manual`.
    pub trigger: String,
    /// `success` | `partial` | `failed`.
    pub status: String,
    pub pages: i64,
    pub items_received: i64,
    pub items_accepted: i64,
    pub items_skipped: i64,
    pub items_truncated: i64,
    pub error: String,
}

/// Why a manual trigger was refused (ING-228).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualRefusal {
    /// The previous manual trigger was less than the cooldown ago.
    TooFrequent,
    /// A pull is running.
    InProgress,
}

impl Store {
    /// Enabled, live `http_pull` integrations that are due at `now` or have no schedule yet
    /// (running ones included: the caller skips their due start, ING-221).
    pub async fn due_pulls(&self, now: Millis) -> Result<Vec<PullSchedule>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT i.account_id, i.integration_id, i.settings, s.next_due_at, s.running_until \
             FROM integrations i LEFT JOIN pull_schedules s ON s.integration_id = \
             i.integration_id AND s.account_id = i.account_id \
             WHERE i.integration_type = 'http_pull' AND i.deleted = 0 AND i.enabled = ",
        );
        sql.bind(true)
            .push(" AND (s.next_due_at IS NULL OR s.next_due_at <= ")
            .bind(now)
            .push(") ORDER BY i.integration_id");
        let rows = sql.into_query_on(&conn).fetch_all(&mut *conn).await?;
        drop(conn);
        let due = rows
            .iter()
            .map(|row| {
                Ok(PullSchedule {
                    account_id: get_i64(row, "account_id")?,
                    integration_id: get_i64(row, "integration_id")?,
                    settings: get_str(row, "settings")?,
                    next_due_at: row.try_get::<i64, _>("next_due_at").ok(),
                    running_until: row.try_get::<i64, _>("running_until").ok().unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The scheduler parses the whole settings (cycle, timeout), headers included.
        // One tenant whose headers cannot be opened must not stop the others' pulls.
        let mut opener = crate::sealing::Opener::new(self);
        let mut out = Vec::with_capacity(due.len());
        for mut d in due {
            match crate::integrations::open_settings(
                &mut opener,
                d.account_id,
                d.integration_id,
                &mut d.settings,
            )
            .await
            {
                Ok(()) => out.push(d),
                Err(e) => tracing::error!(
                    account = d.account_id,
                    integration = d.integration_id,
                    error = %e,
                    "the pull's sealed headers cannot be opened; it is skipped"
                ),
            }
        }
        Ok(out)
    }

    /// Creates the schedule row if there is none (due at `due_at`).
    async fn ensure_pull_schedule(
        &self,
        account_id: i64,
        integration_id: i64,
        due_at: Millis,
    ) -> Result<()> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO pull_schedules (integration_id, account_id, next_due_at) VALUES (",
        );
        sql.bind(integration_id)
            .push(", ")
            .bind(account_id)
            .push(", ")
            .bind(due_at)
            .push(") ON CONFLICT (integration_id) DO NOTHING");
        sql.into_query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// ING-221: the integration's next pull is due at `now` (it was just enabled).
    pub async fn pull_due_now(
        &self,
        account_id: i64,
        integration_id: i64,
        now: Millis,
    ) -> Result<()> {
        self.ensure_pull_schedule(account_id, integration_id, now)
            .await?;
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE pull_schedules SET next_due_at = ");
        sql.bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        sql.into_query_on(&conn).execute(&mut *conn).await?;
        Ok(())
    }

    /// Takes the lease of the scheduled start `due` (`None`: the integration had no
    /// schedule yet) and moves the schedule to `next_due`. False when another node took it,
    /// or a pull is running (then the start is skipped: the schedule still moves on).
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_scheduled_pull(
        &self,
        account_id: i64,
        integration_id: i64,
        due: Option<Millis>,
        next_due: Millis,
        now: Millis,
        lease_until: Millis,
        holder: &str,
    ) -> Result<bool> {
        let due = match due {
            Some(d) => d,
            None => {
                self.ensure_pull_schedule(account_id, integration_id, now)
                    .await?;
                now
            }
        };
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE pull_schedules SET running_until = ");
        sql.bind(lease_until)
            .push(", holder = ")
            .bind(holder)
            .push(", next_due_at = ")
            .bind(next_due)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND next_due_at <= ")
            .bind(due)
            .push(" AND running_until <= ")
            .bind(now);
        let claimed = sql
            .into_query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0;
        if !claimed {
            // ING-221: a start that falls due while a pull runs is skipped, not queued.
            let mut skip = Sql::new("UPDATE pull_schedules SET next_due_at = ");
            skip.bind(next_due)
                .push(" WHERE account_id = ")
                .bind(account_id)
                .push(" AND integration_id = ")
                .bind(integration_id)
                .push(" AND next_due_at <= ")
                .bind(due)
                .push(" AND running_until > ")
                .bind(now);
            skip.into_query_on(&conn).execute(&mut *conn).await?;
        }
        Ok(claimed)
    }

    /// ING-228: takes the lease for a manual pull, unless the previous manual trigger was
    /// less than `cooldown` ago or a pull is running. The schedule does not move.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_manual_pull(
        &self,
        account_id: i64,
        integration_id: i64,
        now: Millis,
        cooldown: Millis,
        lease_until: Millis,
        holder: &str,
    ) -> Result<std::result::Result<(), ManualRefusal>> {
        self.ensure_pull_schedule(account_id, integration_id, now)
            .await?;
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE pull_schedules SET running_until = ");
        sql.bind(lease_until)
            .push(", holder = ")
            .bind(holder)
            .push(", last_manual_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND running_until <= ")
            .bind(now)
            .push(" AND (last_manual_at = 0 OR last_manual_at <= ")
            .bind(now - cooldown)
            .push(")");
        if sql
            .into_query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0
        {
            return Ok(Ok(()));
        }
        let mut read = Sql::new("SELECT last_manual_at FROM pull_schedules WHERE account_id = ");
        read.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let row = read.into_query_on(&conn).fetch_one(&mut *conn).await?;
        let last = get_i64(&row, "last_manual_at")?;
        Ok(Err(if last != 0 && last > now - cooldown {
            ManualRefusal::TooFrequent
        } else {
            ManualRefusal::InProgress
        }))
    }

    /// `.LastPullTime` (seconds) of the integration: the `.NowTime` of its last pull without
    /// failure; `None` before the first.
    pub async fn last_pull_time(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Option<i64>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT last_pull_time FROM pull_schedules WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let row = sql.into_query_on(&conn).fetch_optional(&mut *conn).await?;
        Ok(match row {
            Some(r) => Some(get_i64(&r, "last_pull_time")?).filter(|t| *t != 0),
            None => None,
        })
    }

    /// Records a finished pull, releases `holder`'s lease and, when `advance_to` is given,
    /// sets `.LastPullTime` (ING-227: only pulls without failure advance it; a failed first
    /// pull stores the value it used). Keeps the newest [`HISTORY_KEPT`] records.
    pub async fn finish_pull(
        &self,
        account_id: i64,
        record: &PullRecord,
        holder: &str,
        advance_to: Option<i64>,
    ) -> Result<()> {
        let id = record.integration_id;
        let mut tx = self.inner.write.begin().await?;
        let mut insert = Sql::new(
            "INSERT INTO pull_history (account_id, integration_id, started_at, ended_at, \
             trigger_kind, status, pages, items_received, items_accepted, items_skipped, \
             items_truncated, error) VALUES (",
        );
        insert
            .bind(account_id)
            .push(", ")
            .bind(id)
            .push(", ")
            .bind(record.started_at)
            .push(", ")
            .bind(record.ended_at)
            .push(", ")
            .bind(record.trigger.as_str())
            .push(", ")
            .bind(record.status.as_str())
            .push(", ")
            .bind(record.pages)
            .push(", ")
            .bind(record.items_received)
            .push(", ")
            .bind(record.items_accepted)
            .push(", ")
            .bind(record.items_skipped)
            .push(", ")
            .bind(record.items_truncated)
            .push(", ")
            .bind(record.error.as_str())
            .push(")");
        insert.into_query_on(&tx).execute(&mut *tx).await?;

        let mut release = Sql::new("UPDATE pull_schedules SET running_until = 0, holder = ''");
        if let Some(t) = advance_to {
            release.push(", last_pull_time = ").bind(t);
        }
        release
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(id)
            .push(" AND holder = ")
            .bind(holder);
        release.into_query_on(&tx).execute(&mut *tx).await?;

        let mut prune = Sql::new("DELETE FROM pull_history WHERE account_id = ");
        prune
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(id)
            .push(" AND seq <= (SELECT seq FROM pull_history h WHERE h.account_id = ")
            .bind(account_id)
            .push(" AND h.integration_id = ")
            .bind(id)
            .push(" ORDER BY seq DESC LIMIT 1 OFFSET ")
            .bind(HISTORY_KEPT)
            .push(")");
        prune.into_query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A page of the integration's pull history, newest first, and the total kept.
    pub async fn pull_history(
        &self,
        account_id: i64,
        integration_id: i64,
        p: i64,
        limit: i64,
    ) -> Result<(Vec<PullRecord>, i64)> {
        let mut conn = self.inner.read.acquire().await?;
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM pull_history WHERE account_id = ");
        count
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let total = get_i64(
            &count.into_query_on(&conn).fetch_one(&mut *conn).await?,
            "n",
        )?;
        let mut sql = Sql::new(
            "SELECT seq, integration_id, started_at, ended_at, trigger_kind, status, pages, \
             items_received, items_accepted, items_skipped, items_truncated, error \
             FROM pull_history WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" ORDER BY seq DESC LIMIT ")
            .bind(limit.max(1))
            .push(" OFFSET ")
            .bind((p.max(1) - 1).saturating_mul(limit.max(1)));
        let rows = sql.into_query_on(&conn).fetch_all(&mut *conn).await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(PullRecord {
                    seq: get_i64(row, "seq")?,
                    integration_id: get_i64(row, "integration_id")?,
                    started_at: get_i64(row, "started_at")?,
                    ended_at: get_i64(row, "ended_at")?,
                    trigger: get_str(row, "trigger_kind")?,
                    status: get_str(row, "status")?,
                    pages: get_i64(row, "pages")?,
                    items_received: get_i64(row, "items_received")?,
                    items_accepted: get_i64(row, "items_accepted")?,
                    items_skipped: get_i64(row, "items_skipped")?,
                    items_truncated: get_i64(row, "items_truncated")?,
                    error: get_str(row, "error")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((items, total))
    }
}
