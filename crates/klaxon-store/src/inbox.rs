//! Hop 1: the durable inbox, appended with GROUP COMMIT (DESIGN.md principle 4, ING-008,
//! ING-011, ING-260).
//!
//! One background task owns the inbox write path. Callers encode their events (in parallel, on
//! their own tasks), send them with a oneshot over a channel and wait. The task takes everything
//! queued — up to `max_group_commit` events — writes it in ONE transaction with multi-row
//! INSERTs, commits, and then answers every caller of the batch with the same result: all
//! committed, or all failed (nothing half-written).
//!
//! On SQLite the task runs on a thread of its own (see `Committer::start`), sends each batch
//! to SQLite as one multi-statement command (see `Statements::sqlite_batch`), and has the file
//! checkpointed in the background (see `checkpoints`): measured, each of the three took a
//! large share of the acceptance latency on a loaded 2-core machine.
//!
//! Where the inbox lives depends on the backend (`Mode`):
//!
//! - **PostgreSQL** (`Mode::Shared`): a table of the one database. The group commit also sets
//!   `integrations.last_event_time` (ING-260), and the processor DELETEs the rows it processed
//!   in its own transaction. (PostgreSQL identities can commit out of order across sessions and
//!   nodes, so a watermark over `seq` could skip a row there; the delete is exact.)
//! - **SQLite** (`Mode::Separate`): a database file of its own beside the main one
//!   (`<stem>-inbox.db`, see `db::inbox_url`), with its own single writer — this task. SQLite
//!   has one writer per file; with the inbox in the main file every group commit queued behind
//!   processing transactions (tens of ms each), so acceptance waited for processing. Now the
//!   group commit writes only the inbox file and never touches the main one, so
//!   `last_event_time` is set by the processor instead (see `process.rs`).
//!
//! Exactly-once on SQLite (ING-011) without atomic commits across two files: the main
//! database's one-row `inbox_progress.processed_seq` is a watermark, moved in the same main
//! transaction as the effects of the events it covers, so an event is processed iff its `seq`
//! is at or below it — whatever happened to the inbox file since. This is sound because `seq`
//! is AUTOINCREMENT assigned under the inbox file's single write lock: rows become visible in
//! `seq` order, and a reader that sees row n sees every committed row below n. Processed rows
//! are deleted afterwards, idempotently (`DELETE … WHERE seq <= watermark`), by this task:
//! inside its next group commit (no extra fsync under load) or, when it is idle, in a small
//! transaction of its own. A crash between the two commits only leaves processed rows behind
//! for a later delete; they are never read again, since readers ask for `seq > watermark`.
//! `reconcile` guards the one way the watermark could hide new rows: an inbox file lost or
//! older than the main one would restart `seq` at 1, so at start the counter is moved above
//! the watermark.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use klaxon_core::model::{EventOrigin, Millis, NewEvent};
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Executor};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::db::Sql;
use crate::rows::{get_i64, to_json};
use crate::{Result, StoreError};

/// Columns of one inbox row (the `seq` is assigned by the database).
const COLUMNS: usize = 8;
/// PostgreSQL: largest multi-row INSERT, 256 rows × 8 = 2048 parameters, far below its
/// 65 535. Chunks are powers of two so each connection caches at most nine statements.
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

/// Where the inbox lives (see the module docs).
pub(crate) enum Mode {
    /// PostgreSQL: a table of the main database; the group commit also sets
    /// `last_event_time` (ING-260) and the processor deletes what it processed.
    Shared,
    /// SQLite: a file of its own, written only by the committer, which also deletes the rows
    /// the processor reports as processed, and has the file checkpointed in the background.
    Separate {
        trim: Arc<Trim>,
        checkpoint: Option<AnyPool>,
    },
}

/// The SQLite inbox file: its pools and the processed-rows hand-off to the committer.
pub(crate) struct InboxFile {
    pub read: AnyPool,
    pub write: AnyPool,
    /// Background checkpoints (`None` in memory).
    pub checkpoint: Option<AnyPool>,
    pub trim: Arc<Trim>,
}

/// How often the inbox file is checkpointed in the background while events arrive.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Processor → committer: the highest `seq` committed as processed in the main database,
/// below which (inclusive) inbox rows may be deleted.
#[derive(Default)]
pub(crate) struct Trim {
    processed: AtomicI64,
    wake: Notify,
}

impl Trim {
    /// Call only after the main-database commit that moved the watermark to `seq`.
    pub(crate) fn processed_up_to(&self, seq: i64) {
        self.processed.fetch_max(seq, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn target(&self) -> i64 {
        self.processed.load(Ordering::SeqCst)
    }
}

/// The handle the store keeps on its committer task.
pub(crate) struct Committer {
    tx: mpsc::Sender<Msg>,
    task: Mutex<Option<Running>>,
}

/// How the committer runs, to wait for its end.
enum Running {
    /// A task on the caller's runtime (PostgreSQL: its connections belong to that runtime).
    Task(JoinHandle<()>),
    /// A thread of its own (SQLite), which reports its end here.
    Thread(oneshot::Receiver<()>),
}

impl Committer {
    /// Starts the committer: on SQLite (`Mode::Separate`) on a thread of its own with a
    /// current-thread runtime; on PostgreSQL as a task of the caller's runtime.
    ///
    /// Why a thread on SQLite: every statement is a round trip to sqlx's SQLite worker thread,
    /// and a task woken from outside its runtime waits in the runtime's global queue, which
    /// busy workers look at only every few dozen polls. Behind the HTTP tasks of a loaded
    /// server that cost about a millisecond per round trip, i.e. most of the group commit's
    /// latency; on its own runtime the committer runs as soon as it is woken.
    pub(crate) fn start(pool: AnyPool, max_group_commit: usize, mode: Mode) -> Result<Committer> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let max = max_group_commit.max(1);
        let running = match mode {
            Mode::Shared => Running::Task(tokio::spawn(run(pool, rx, max, mode))),
            Mode::Separate { .. } => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::Database(format!("inbox committer: {e}")))?;
                let (finished, wait) = oneshot::channel();
                std::thread::Builder::new()
                    .name("klaxon-inbox".into())
                    .spawn(move || {
                        runtime.block_on(run(pool, rx, max, mode));
                        let _ = finished.send(());
                    })
                    .map_err(|e| StoreError::Database(format!("inbox committer: {e}")))?;
                Running::Thread(wait)
            }
        };
        Ok(Committer {
            tx,
            task: Mutex::new(Some(running)),
        })
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
        let Some(running) = task.take() else {
            return;
        };
        let (ack, acked) = oneshot::channel();
        if self.tx.send(Msg::Close(ack)).await.is_ok() {
            let _ = acked.await;
        }
        match running {
            Running::Task(handle) => {
                let _ = handle.await;
            }
            Running::Thread(finished) => {
                let _ = finished.await;
            }
        }
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Msg>, max: usize, mode: Mode) {
    // Commits so far, for the background checkpointer (SQLite).
    let commits = Arc::new(AtomicU64::new(0));
    let checkpointer = match &mode {
        Mode::Separate {
            checkpoint: Some(checkpoint),
            ..
        } => Some(tokio::spawn(checkpoints(
            checkpoint.clone(),
            commits.clone(),
        ))),
        _ => None,
    };
    serve(&pool, &mut rx, max, &mode, &commits).await;
    if let Some(checkpointer) = checkpointer {
        checkpointer.abort();
    }
}

/// Background checkpoints of the SQLite inbox file (ING-008's latency).
///
/// In WAL mode the connection that commits past `wal_autocheckpoint` pages (1000 by default)
/// copies the WAL back into the database file right after its commit — with the group
/// committer's callers waiting: measured, most of the acceptance p99. This task copies it
/// (PASSIVE: concurrently with the writer, never blocking it) every CHECKPOINT_EVERY while
/// commits happen, so when the writer's own automatic checkpoint comes (it is kept: it is what
/// lets the WAL restart from its beginning) only a small remainder is left.
async fn checkpoints(pool: AnyPool, commits: Arc<AtomicU64>) {
    let mut seen = 0;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        let now = commits.load(Ordering::Relaxed);
        if now == seen {
            continue;
        }
        seen = now;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "inbox checkpoint failed; the writer's own will do");
        }
    }
}

/// The committer's loop, until a close or until every store handle is gone.
async fn serve(
    pool: &AnyPool,
    rx: &mut mpsc::Receiver<Msg>,
    max: usize,
    mode: &Mode,
    commits: &AtomicU64,
) {
    let mut statements = Statements::new();
    let trim = match mode {
        Mode::Separate { trim, .. } => Some(trim.clone()),
        Mode::Shared => None,
    };
    // Inbox rows at or below this seq are known deleted (SQLite).
    let mut trimmed: i64 = 0;
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        let next = match &trim {
            Some(trim) => tokio::select! {
                // Callers first: deleting processed rows can always wait.
                biased;
                msg = rx.recv() => msg,
                () = trim.wake.notified() => {
                    // Idle, and the processor moved the watermark: delete what it covers.
                    let to = trim.target();
                    if to > trimmed {
                        match trim_only(pool, to).await {
                            Ok(()) => {
                                trimmed = to;
                                commits.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "deleting processed inbox rows failed");
                            }
                        }
                    }
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(first) = next else {
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
            // SQLite: processed rows not deleted yet go in the same transaction.
            let trim_to = trim.as_ref().map(|t| t.target()).filter(|&to| to > trimmed);
            let result = commit(pool, &mut statements, mode, rows, trim_to).await;
            match &result {
                Ok(()) => {
                    trimmed = trim_to.unwrap_or(trimmed);
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::error!(error = %e, events = count, "inbox group commit failed"),
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
        StoreError::Secret(s) => StoreError::Secret(s.clone()),
    }
}

/// The INSERT texts.
struct Statements {
    /// PostgreSQL: the multi-row INSERT for 2^k rows, k = 0…MAX_CHUNK_LOG2.
    numbered: Vec<Arc<str>>,
    /// SQLite: one whole group commit, by (number of SQLITE_CHUNK-row INSERTs, with the
    /// processed-rows DELETE); built when first needed.
    sqlite: HashMap<(usize, bool), Arc<str>>,
}

/// SQLite: rows per INSERT statement of a group commit.
const SQLITE_CHUNK: usize = 64;

impl Statements {
    fn new() -> Statements {
        let mut numbered = Vec::new();
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
            numbered.push(Arc::from(sql));
        }
        Statements {
            numbered,
            sqlite: HashMap::new(),
        }
    }

    /// SQLite: the whole group commit as ONE multi-statement text, run by sqlx's SQLite worker
    /// in one command (it binds the `?`s across the statements in order):
    ///
    /// `BEGIN; [DELETE FROM inbox WHERE seq <= ?;] INSERT…; … COMMIT`
    ///
    /// One round trip to the worker thread instead of one per statement (BEGIN, each INSERT,
    /// COMMIT), which under load is most of a commit's latency. Each INSERT takes a fixed
    /// SQLITE_CHUNK rows from a VALUES list whose rows beyond the bound arguments stay NULL
    /// (SQLite leaves unbound parameters NULL) and are filtered out, so every batch size maps
    /// onto a handful of texts that stay in the connection's statement cache. The leading
    /// row number orders the rows: `seq` follows arrival (ING-011).
    fn sqlite_batch(&mut self, chunks: usize, trim: bool) -> Arc<str> {
        self.sqlite
            .entry((chunks, trim))
            .or_insert_with(|| {
                let mut insert = String::from(
                    "INSERT INTO inbox (account_id, channel_id, integration_id, \
                     integration_type, integration_name, request_id, received_at, event) \
                     SELECT column2, column3, column4, column5, column6, column7, column8, \
                     column9 FROM (VALUES ",
                );
                for r in 0..SQLITE_CHUNK {
                    if r > 0 {
                        insert.push_str(", ");
                    }
                    insert.push('(');
                    insert.push_str(&r.to_string());
                    insert.push_str(&", ?".repeat(COLUMNS));
                    insert.push(')');
                }
                insert.push_str(") WHERE column2 IS NOT NULL ORDER BY column1; ");
                let mut sql = String::from("BEGIN; ");
                if trim {
                    sql.push_str("DELETE FROM inbox WHERE seq <= ?; ");
                }
                for _ in 0..chunks {
                    sql.push_str(&insert);
                }
                sql.push_str("COMMIT");
                Arc::from(sql)
            })
            .clone()
    }
}

async fn commit(
    pool: &AnyPool,
    statements: &mut Statements,
    mode: &Mode,
    rows: Vec<InboxRow>,
    trim_to: Option<i64>,
) -> Result<()> {
    match mode {
        Mode::Shared => commit_shared(pool, statements, rows).await,
        Mode::Separate { .. } => commit_separate(pool, statements, rows, trim_to).await,
    }
}

/// PostgreSQL: one transaction with the rows and ING-260's `last_event_time`.
async fn commit_shared(pool: &AnyPool, statements: &Statements, rows: Vec<InboxRow>) -> Result<()> {
    let latest = latest_per_integration(
        rows.iter()
            .map(|r| (r.account_id, r.integration_id, r.received_at)),
    );
    let mut tx = pool.begin().await?;
    insert_rows(&mut tx, statements, rows).await?;
    touch_integrations(&mut tx, &latest).await?;
    tx.commit().await?;
    Ok(())
}

/// SQLite: one round trip (see `Statements::sqlite_batch`) writing only the inbox file. ING-260
/// is the processor's here: this must not write the main file.
async fn commit_separate(
    pool: &AnyPool,
    statements: &mut Statements,
    rows: Vec<InboxRow>,
    trim_to: Option<i64>,
) -> Result<()> {
    let text = statements.sqlite_batch(rows.len().div_ceil(SQLITE_CHUNK), trim_to.is_some());
    let mut query = sqlx::query(AssertSqlSafe(text));
    if let Some(to) = trim_to {
        query = query.bind(to);
    }
    for r in rows {
        query = query
            .bind(r.account_id)
            .bind(r.channel_id)
            .bind(r.integration_id)
            .bind(r.integration_type)
            .bind(r.integration_name)
            .bind(r.request_id)
            .bind(r.received_at)
            .bind(r.event);
    }
    let mut conn = pool.acquire().await?;
    match query.execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e) => {
            // It may have stopped after its BEGIN: end that transaction (nothing of the batch
            // is committed) before the connection serves anyone else.
            if let Err(rollback) = conn.execute("ROLLBACK").await {
                tracing::debug!(error = %rollback, "inbox rollback after a failed commit");
            }
            Err(e.into())
        }
    }
}

/// SQLite, idle committer: deletes the processed rows (one statement: its own transaction).
async fn trim_only(pool: &AnyPool, to: i64) -> Result<()> {
    let mut conn = pool.acquire().await?;
    delete_processed(&mut conn, to).await
}

/// ING-011, SQLite: deletes the inbox rows at or below the processed watermark `to` (read
/// from a committed main-database transaction, so every one of them was processed). Safe to
/// repeat; never touches a row above `to`.
async fn delete_processed(conn: &mut AnyConnection, to: i64) -> Result<()> {
    let mut sql = Sql::new("DELETE FROM inbox WHERE seq <= ");
    sql.bind(to);
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// PostgreSQL: the rows in multi-row INSERTs.
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
        let Some(text) = statements.numbered.get(k as usize) else {
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

/// The latest receive time per (account, integration) of `(account, integration, received_at)`
/// items.
pub(crate) fn latest_per_integration(
    items: impl Iterator<Item = (i64, i64, Millis)>,
) -> BTreeMap<(i64, i64), Millis> {
    let mut latest: BTreeMap<(i64, i64), Millis> = BTreeMap::new();
    for (account_id, integration_id, received_at) in items {
        let t = latest.entry((account_id, integration_id)).or_insert(0);
        *t = (*t).max(received_at);
    }
    latest
}

/// ING-260: `last_event_time` = the receive time of the latest accepted push; never moves
/// back.
pub(crate) async fn touch_integrations(
    conn: &mut AnyConnection,
    latest: &BTreeMap<(i64, i64), Millis>,
) -> Result<()> {
    for (&(account_id, integration_id), &at) in latest {
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

/// The `inbox_progress` row of the SQLite main database.
const PROGRESS: &str = "inbox";

/// ING-011, SQLite: the processed watermark (main database).
pub(crate) async fn watermark(conn: &mut AnyConnection) -> Result<i64> {
    let mut sql = Sql::new("SELECT processed_seq FROM inbox_progress WHERE name = ");
    sql.bind(PROGRESS);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => get_i64(&row, "processed_seq"),
        None => Err(StoreError::Corrupt("inbox_progress has no row".into())),
    }
}

/// ING-011, SQLite: moves the watermark up to `seq`, in the transaction of the effects of the
/// events it covers.
pub(crate) async fn set_watermark(conn: &mut AnyConnection, seq: i64) -> Result<()> {
    let mut sql = Sql::new("UPDATE inbox_progress SET processed_seq = ");
    sql.bind(seq)
        .push(" WHERE name = ")
        .bind(PROGRESS)
        .push(" AND processed_seq < ")
        .bind(seq);
    let done = sql.query_on(conn).execute(&mut *conn).await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        // Only possible if the row is missing or a second processor raced past the lease:
        // refuse rather than process anything twice.
        Err(StoreError::Corrupt(format!(
            "inbox_progress did not move to {seq}"
        )))
    }
}

/// SQLite, at migration time: keeps new inbox seqs above the watermark, and hands the
/// watermark to the committer so rows processed before a restart get deleted.
///
/// An inbox file that was lost, or is older than the main database (restored from an older
/// backup), would number new events from below the watermark, and the processor would take
/// them for processed. Moving the file's AUTOINCREMENT counter (`sqlite_sequence`) up to the
/// watermark rules that out.
pub(crate) async fn reconcile(main: &AnyPool, file: &InboxFile) -> Result<()> {
    let processed = {
        let mut conn = main.acquire().await?;
        watermark(&mut conn).await?
    };
    let mut tx = file.write.begin().await?;
    let counter = sqlx::query("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'")
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| get_i64(&row, "seq"))
        .transpose()?;
    let behind = match counter {
        Some(seq) => seq < processed,
        None => processed > 0,
    };
    if behind {
        tracing::warn!(
            processed,
            counter = counter.unwrap_or(0),
            "the inbox file is behind the main database (lost or restored?): \
             numbering new events above the processed watermark"
        );
        let mut sql = if counter.is_some() {
            Sql::new("UPDATE sqlite_sequence SET seq = ")
        } else {
            Sql::new("INSERT INTO sqlite_sequence (seq, name) VALUES (")
        };
        sql.bind(processed);
        sql.push(if counter.is_some() {
            " WHERE name = 'inbox'"
        } else {
            ", 'inbox')"
        });
        sql.query_on(&tx).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    file.trim.processed_up_to(processed);
    Ok(())
}
