//! Hop 1: the durable inbox, appended with GROUP COMMIT (DESIGN.md principle 4, ING-008,
//! ING-011, ING-260).
//!
//! One background task owns the inbox write path. Callers encode their events (in parallel, on
//! their own tasks), send them with a oneshot over a channel and wait. The task takes everything
//! queued — up to `max_group_commit` events — writes it in ONE transaction with multi-row
//! INSERTs, bumps `integrations.last_event_time`, commits, and then answers every caller of the
//! batch with the same result: all committed, or all failed (nothing half-written).

use std::collections::BTreeMap;
use std::sync::Arc;

use klaxon_core::model::{EventOrigin, Millis, NewEvent};
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::db::{Sql, anonymous_placeholders, is_sqlite};
use crate::rows::to_json;
use crate::{Result, StoreError};

/// Columns of one inbox row (the `seq` is assigned by the database).
const COLUMNS: usize = 8;
/// Largest multi-row INSERT: 256 rows × 8 = 2048 parameters, far below SQLite's 32 766 and
/// PostgreSQL's 65 535. Chunks are powers of two so each connection caches at most nine
/// statements.
const MAX_CHUNK_LOG2: u32 = 8;
/// How many callers may wait in the channel before `enqueue` itself waits (back-pressure).
const CHANNEL_CAPACITY: usize = 4096;

/// One event, encoded for the inbox.
pub(crate) struct InboxRow {
    account_id: i64,
    channel_id: i64,
    integration_id: i64,
    integration_type: String,
    integration_name: String,
    request_id: String,
    received_at: Millis,
    event: String,
}

impl InboxRow {
    pub(crate) fn encode(origin: EventOrigin, event: &NewEvent) -> Result<InboxRow> {
        Ok(InboxRow {
            account_id: origin.account_id,
            channel_id: origin.channel_id,
            integration_id: origin.integration_id,
            integration_type: origin.integration_type,
            integration_name: origin.integration_name,
            request_id: origin.request_id,
            received_at: origin.received_at,
            event: to_json(event)?,
        })
    }
}

struct Job {
    rows: Vec<InboxRow>,
    done: oneshot::Sender<Result<()>>,
}

enum Msg {
    Job(Job),
    /// Commit what was received before this message, then stop.
    Close(oneshot::Sender<()>),
}

/// The handle the store keeps on its committer task.
pub(crate) struct Committer {
    tx: mpsc::Sender<Msg>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    pub(crate) fn start(pool: AnyPool, max_group_commit: usize) -> Committer {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(run(pool, rx, max_group_commit.max(1)));
        Committer {
            tx,
            task: Mutex::new(Some(task)),
        }
    }

    pub(crate) async fn enqueue(&self, rows: Vec<InboxRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Job(Job { rows, done }))
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn close(&self) {
        let mut task = self.task.lock().await;
        let Some(handle) = task.take() else {
            return;
        };
        let (ack, acked) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = acked.await;
        }
        let _ = handle.await;
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Msg>, max: usize) {
    let statements = Statements::new();
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else {
            return; // every store handle is gone
        };
        let mut rows: Vec<InboxRow> = Vec::new();
        let mut waiters = Vec::new();
        let mut take = |job: Job, rows: &mut Vec<InboxRow>| {
            rows.extend(job.rows);
            waiters.push(job.done);
        };
        match first {
            Msg::Job(job) => take(job, &mut rows),
            Msg::Close(ack) => closing = Some(ack),
        }
        // Drain whatever else is already queued, up to the batch limit.
        while closing.is_none() && rows.len() < max {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => take(job, &mut rows),
                Ok(Msg::Close(ack)) => closing = Some(ack),
                Err(_) => break,
            }
        }
        if !waiters.is_empty() {
            let count = rows.len();
            let result = commit(&pool, &statements, rows).await;
            if let Err(e) = &result {
                tracing::error!(error = %e, events = count, "inbox group commit failed");
            }
            for done in waiters {
                let answer = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(clone_error(e)),
                };
                let _ = done.send(answer);
            }
        }
    }
    // Refuse whatever arrives after the close: the callers see `Closed`.
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Job(job) => {
                let _ = job.done.send(Err(StoreError::Closed));
            }
            Msg::Close(ack) => {
                let _ = ack.send(());
            }
        }
    }
    if let Some(ack) = closing {
        let _ = ack.send(());
    }
}

fn clone_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Database(s) => StoreError::Database(s.clone()),
        StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
        StoreError::Closed => StoreError::Closed,
        StoreError::InvalidCursor => StoreError::InvalidCursor,
    }
}

/// The multi-row INSERT for 2^k rows, k = 0…MAX_CHUNK_LOG2, with numbered placeholders
/// (PostgreSQL) and with anonymous ones (SQLite: see `Sql::into_query_on`).
struct Statements {
    numbered: Vec<Arc<str>>,
    anonymous: Vec<Arc<str>>,
}

impl Statements {
    fn new() -> Statements {
        let mut out = Vec::new();
        for k in 0..=MAX_CHUNK_LOG2 {
            let rows = 1_usize << k;
            let mut sql = String::from(
                "INSERT INTO inbox (account_id, channel_id, integration_id, integration_type, \
                 integration_name, request_id, received_at, event) VALUES ",
            );
            for r in 0..rows {
                if r > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 0..COLUMNS {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('$');
                    sql.push_str(&(r * COLUMNS + c + 1).to_string());
                }
                sql.push(')');
            }
            out.push(sql);
        }
        Statements {
            anonymous: out
                .iter()
                .map(|s| Arc::from(anonymous_placeholders(s)))
                .collect(),
            numbered: out.into_iter().map(Arc::from).collect(),
        }
    }
}

async fn commit(pool: &AnyPool, statements: &Statements, rows: Vec<InboxRow>) -> Result<()> {
    let latest = latest_per_integration(&rows);
    let mut tx = pool.begin().await?;
    insert_rows(&mut tx, statements, rows).await?;
    touch_integrations(&mut tx, latest).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_rows(
    conn: &mut AnyConnection,
    statements: &Statements,
    rows: Vec<InboxRow>,
) -> Result<()> {
    // Largest power-of-two chunks first, in arrival order: identities are assigned in
    // statement and VALUES order, so `seq` follows arrival (ING-011).
    let mut rows = rows.into_iter();
    let mut left = rows.len();
    while left > 0 {
        let k = (usize::BITS - 1 - left.leading_zeros()).min(MAX_CHUNK_LOG2);
        let n = 1_usize << k;
        let texts = if is_sqlite(conn) {
            &statements.anonymous
        } else {
            &statements.numbered
        };
        let Some(text) = texts.get(k as usize) else {
            return Err(StoreError::Database("no statement for chunk".into()));
        };
        let mut q = sqlx::query(AssertSqlSafe(text.clone()));
        for r in rows.by_ref().take(n) {
            q = q
                .bind(r.account_id)
                .bind(r.channel_id)
                .bind(r.integration_id)
                .bind(r.integration_type)
                .bind(r.integration_name)
                .bind(r.request_id)
                .bind(r.received_at)
                .bind(r.event);
        }
        q.execute(&mut *conn).await?;
        left -= n;
    }
    Ok(())
}

fn latest_per_integration(rows: &[InboxRow]) -> BTreeMap<(i64, i64), Millis> {
    let mut latest: BTreeMap<(i64, i64), Millis> = BTreeMap::new();
    for r in rows {
        let t = latest.entry((r.account_id, r.integration_id)).or_insert(0);
        *t = (*t).max(r.received_at);
    }
    latest
}

/// ING-260: `last_event_time` = the receive time of the latest accepted push.
async fn touch_integrations(
    conn: &mut AnyConnection,
    latest: BTreeMap<(i64, i64), Millis>,
) -> Result<()> {
    for ((account_id, integration_id), at) in latest {
        let mut sql = Sql::new("UPDATE integrations SET last_event_time = ");
        sql.bind(at)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND last_event_time < ")
            .bind(at);
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}
