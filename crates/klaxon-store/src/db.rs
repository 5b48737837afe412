//! Pools, dialect and a small builder for dynamic SQL with `$n` placeholders.
//!
//! One code path over `sqlx::AnyPool`: SQLite gets a single-connection write pool (SQLite has
//! one writer) and a read pool per database file — the main file and the inbox file beside it
//! (see [`inbox_url`]); PostgreSQL one pool for both, and the inbox in the same database.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor};

use crate::{Backend, Result, StoreError, StoreOptions};

/// How long a SQLite connection waits for a lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolClosed => StoreError::Closed,
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration failed: {e}"))
    }
}

/// The connected pools.
pub(crate) struct Pools {
    pub backend: Backend,
    /// Reads (SQLite: `max_connections` connections; PostgreSQL: the one pool).
    pub read: AnyPool,
    /// Writes (SQLite: exactly one connection; PostgreSQL: the same pool as `read`).
    pub write: AnyPool,
    /// SQLite: the inbox database (its own file). PostgreSQL: `None`, the inbox is a table of
    /// the one database.
    pub inbox: Option<FilePools>,
}

/// The pools of one SQLite database.
pub(crate) struct FilePools {
    /// Readers (WAL: they never block the writer nor wait for it).
    pub read: AnyPool,
    /// The one writer connection.
    pub write: AnyPool,
    /// A connection for background checkpoints, if asked for (files only: memory databases
    /// have no WAL).
    pub checkpoint: Option<AnyPool>,
}

/// Read connections of the inbox file: the processor's batch read plus the occasional
/// `inbox_depth` / `peek_inbox`.
const INBOX_READERS: u32 = 2;

pub(crate) fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Database(
            "unsupported database URL: expected sqlite://… or postgres://…".into(),
        ))
    }
}

pub(crate) async fn connect(url: &str, options: &StoreOptions) -> Result<Pools> {
    // Idempotent (sqlx guards it with a `Once`).
    sqlx::any::install_default_drivers();
    match backend_of(url)? {
        Backend::Sqlite => connect_sqlite(url, options).await,
        Backend::Postgres => {
            let pool = AnyPoolOptions::new()
                .max_connections(options.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            Ok(Pools {
                backend: Backend::Postgres,
                read: pool.clone(),
                write: pool,
                inbox: None,
            })
        }
    }
}

/// Splits `sqlite://path?params` into the path and the query string.
fn sqlite_parts(url: &str) -> (&str, Option<&str>) {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    match rest.split_once('?') {
        Some((path, params)) => (path, Some(params)),
        None => (rest, None),
    }
}

fn is_memory(path: &str, params: Option<&str>) -> bool {
    path.is_empty()
        || path == ":memory:"
        || params.is_some_and(|p| p.split('&').any(|kv| kv == "mode=memory"))
}

/// The URL of the inbox database that belongs to the main SQLite database `url`.
///
/// A file `dir/<stem>.<ext>` gets `dir/<stem>-inbox.db` beside it (`klaxon.db` →
/// `klaxon-inbox.db`): derived from the file name rather than a fixed `inbox.db`, so two
/// databases in one directory never share an inbox, and the pair sorts together in a listing.
/// The URL's parameters are kept. An in-memory database gets a second, private in-memory
/// database: every `:memory:` connection is a database of its own (deps.md P4).
pub(crate) fn inbox_url(url: &str) -> String {
    let (path, params) = sqlite_parts(url);
    if is_memory(path, params) {
        return "sqlite::memory:".to_string();
    }
    let (dir, file) = match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    };
    let stem = match file.rfind('.') {
        Some(i) if i > 0 => &file[..i],
        _ => file,
    };
    let prefix = &url[..url.len() - url_tail_len(url)];
    match params {
        Some(p) => format!("{prefix}{dir}{stem}-inbox.db?{p}"),
        None => format!("{prefix}{dir}{stem}-inbox.db"),
    }
}

/// Length of `url` after its `sqlite://` or `sqlite:` prefix.
fn url_tail_len(url: &str) -> usize {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
        .len()
}

async fn connect_sqlite(url: &str, options: &StoreOptions) -> Result<Pools> {
    let main = open_sqlite(url, options, options.max_connections.max(1), false).await?;
    let inbox = open_sqlite(&inbox_url(url), options, INBOX_READERS, true).await?;
    Ok(Pools {
        backend: Backend::Sqlite,
        read: main.read,
        write: main.write,
        inbox: Some(inbox),
    })
}

/// Opens one SQLite database (created if missing, WAL) with one writer, `readers` readers and,
/// if `checkpointer`, a connection for background checkpoints.
async fn open_sqlite(
    url: &str,
    options: &StoreOptions,
    readers: u32,
    checkpointer: bool,
) -> Result<FilePools> {
    let (path, params) = sqlite_parts(url);
    let memory = is_memory(path, params);
    // Created if missing: `mode=rwc` unless the caller chose a mode.
    let url = match params {
        Some(p) if p.split('&').any(|kv| kv.starts_with("mode=")) => url.to_string(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    };
    if !memory {
        if let Some(parent) = Path::new(path).parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        // WAL is a property of the file: set it once, before the pools open.
        let mut conn = AnyConnection::connect(&url).await?;
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.close().await?;
    }

    let synchronous: Arc<str> = if options.sqlite_synchronous_full {
        Arc::from("PRAGMA synchronous = FULL")
    } else {
        Arc::from("PRAGMA synchronous = NORMAL")
    };
    let pool_options = move |max: u32| {
        let synchronous = synchronous.clone();
        AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(60))
            // A local file does not drop connections; skip the ping before each use.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                let synchronous = synchronous.clone();
                Box::pin(async move {
                    let busy = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
                    conn.execute(AssertSqlSafe(busy)).await?;
                    conn.execute(AssertSqlSafe(synchronous)).await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // Sorts and temporary b-trees stay in memory instead of temp files.
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    Ok(())
                })
            })
    };

    if memory {
        // Every connection to `:memory:` is its own database (deps.md P4): one connection,
        // kept forever, serves reads and writes.
        let pool = pool_options(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect(&url)
            .await?;
        return Ok(FilePools {
            read: pool.clone(),
            write: pool,
            checkpoint: None,
        });
    }
    let write = pool_options(1).connect(&url).await?;
    let read = pool_options(readers.max(1)).connect(&url).await?;
    let checkpoint = if checkpointer {
        Some(pool_options(1).connect(&url).await?)
    } else {
        None
    };
    Ok(FilePools {
        read,
        write,
        checkpoint,
    })
}

pub(crate) async fn migrate(backend: Backend, pool: &AnyPool) -> Result<()> {
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
        Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(pool).await?,
    }
    Ok(())
}

/// The migrations of the SQLite inbox file.
pub(crate) async fn migrate_inbox(pool: &AnyPool) -> Result<()> {
    sqlx::migrate!("./migrations/sqlite-inbox")
        .run(pool)
        .await?;
    Ok(())
}

/// A bind value.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    I64(i64),
    Text(String),
    /// BLOB on SQLite, BYTEA on PostgreSQL (export archives).
    Bytes(Vec<u8>),
    /// Typed NULLs (restoring backups: PostgreSQL types each parameter).
    NullInt,
    NullText,
    NullBytes,
}

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(v)
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::I64(i64::from(v))
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

/// SQL text plus its arguments, numbered `$1…` in the order they are added.
///
/// Only fixed fragments written in this crate go into the text; every value is a bind
/// argument, which is why handing the text to sqlx as `AssertSqlSafe` is sound.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends a fixed fragment.
    pub fn push(&mut self, fragment: &str) -> &mut Self {
        self.text.push_str(fragment);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        let n = self.args.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    /// Appends ` AND column IN ($a, $b, …)` unless `values` is empty.
    pub fn and_in<T: Clone + Into<Arg>>(&mut self, column: &str, values: &[T]) -> &mut Self {
        if values.is_empty() {
            return self;
        }
        self.push(" AND ").push(column).push(" IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v.clone());
        }
        self.push(")")
    }

    /// `AND column NOT IN (…)`; nothing when `values` is empty.
    pub fn and_not_in<T: Clone + Into<Arg>>(&mut self, column: &str, values: &[T]) -> &mut Self {
        if values.is_empty() {
            return self;
        }
        self.push(" AND ").push(column).push(" NOT IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v.clone());
        }
        self.push(")")
    }

    /// Like [`Sql::and_in`], with the list padded to a power of two by repeating its last
    /// value (same meaning: `IN` ignores duplicates). Lists of varying length then share a
    /// few statement texts, which each connection prepares once and caches, instead of one
    /// new statement per length (hot paths: the processing batch).
    pub fn and_in_padded<T: Clone + Into<Arg>>(&mut self, column: &str, values: &[T]) -> &mut Self {
        let Some(last) = values.last() else {
            return self;
        };
        self.push(" AND ").push(column).push(" IN (");
        for i in 0..values.len().next_power_of_two() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(values.get(i).unwrap_or(last).clone());
        }
        self.push(")")
    }

    pub fn query(&self) -> Query<'static, Any, AnyArguments> {
        self.clone().into_query()
    }

    /// The query for `conn`: on SQLite the numbered placeholders become anonymous `?`.
    ///
    /// sqlx-sqlite resolves every named parameter (`$n`, `?n`) through
    /// `sqlite3_bind_parameter_name`, which scans the statement's parameter list, so binding a
    /// statement with n named parameters costs O(n²): a 64-row multi-row INSERT spent most of
    /// its time there. Anonymous `?` parameters bind in order, and `bind` numbers them in order
    /// of appearance, so the meaning is the same.
    pub fn into_query_on(self, conn: &AnyConnection) -> Query<'static, Any, AnyArguments> {
        if is_sqlite(conn) {
            let text = anonymous_placeholders(&self.text);
            Sql {
                text,
                args: self.args,
            }
            .into_query()
        } else {
            self.into_query()
        }
    }

    /// Like [`Sql::into_query_on`], keeping `self`.
    pub fn query_on(&self, conn: &AnyConnection) -> Query<'static, Any, AnyArguments> {
        self.clone().into_query_on(conn)
    }

    /// Like [`Sql::query`] without copying the text and the arguments.
    pub fn into_query(self) -> Query<'static, Any, AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(self.text));
        for a in self.args {
            q = match a {
                Arg::I64(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
                Arg::NullInt => q.bind(None::<i64>),
                Arg::NullText => q.bind(None::<String>),
                Arg::NullBytes => q.bind(None::<Vec<u8>>),
            };
        }
        q
    }
}

/// Whether `conn` talks to SQLite.
pub(crate) fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("sqlite")
}

/// `$1`, `$2`, … → `?` (see [`Sql::into_query_on`]). Only placeholders contain `$` in the
/// text this crate builds: values are always bound, never spliced.
pub(crate) fn anonymous_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_placeholders_replace_numbered_ones_only() {
        assert_eq!(
            anonymous_placeholders("INSERT INTO t VALUES ($1, $2), ($3, $12) -- $x"),
            "INSERT INTO t VALUES (?, ?), (?, ?) -- $x"
        );
    }

    #[test]
    fn builder_numbers_placeholders() {
        let mut s = Sql::new("SELECT 1 FROM t WHERE a = ");
        s.bind(1_i64);
        s.and_in("b", &["x", "y"]);
        s.and_in::<i64>("c", &[]);
        assert_eq!(s.text, "SELECT 1 FROM t WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(s.args.len(), 3);
    }

    #[test]
    fn padded_in_lists_repeat_the_last_value() {
        let mut s = Sql::new("SELECT 1 FROM t WHERE 1 = 1");
        s.and_in_padded("b", &[1_i64, 2, 3]);
        s.and_in_padded::<i64>("c", &[]);
        s.and_in_padded("d", &[7_i64]);
        assert_eq!(
            s.text,
            "SELECT 1 FROM t WHERE 1 = 1 AND b IN ($1, $2, $3, $4) AND d IN ($5)"
        );
        let args: Vec<i64> = s
            .args
            .iter()
            .map(|a| match a {
                Arg::I64(v) => *v,
                _ => -1,
            })
            .collect();
        assert_eq!(args, vec![1, 2, 3, 3, 7]);
    }

    #[test]
    fn sqlite_url_parts() {
        assert_eq!(sqlite_parts("sqlite://a/b.db"), ("a/b.db", None));
        assert_eq!(
            sqlite_parts("sqlite:///abs/b.db?x=1"),
            ("/abs/b.db", Some("x=1"))
        );
        assert!(is_memory(":memory:", None));
        assert!(!is_memory("k.db", None));
    }

    #[test]
    fn inbox_file_sits_beside_the_main_file() {
        assert_eq!(
            inbox_url("sqlite://data/klaxon.db"),
            "sqlite://data/klaxon-inbox.db"
        );
        assert_eq!(
            inbox_url("sqlite:///abs/x.y/k.sqlite?mode=rwc"),
            "sqlite:///abs/x.y/k-inbox.db?mode=rwc"
        );
        assert_eq!(inbox_url("sqlite:k"), "sqlite:k-inbox.db");
        assert_eq!(inbox_url("sqlite:.hidden"), "sqlite:.hidden-inbox.db");
        assert_eq!(inbox_url("sqlite::memory:"), "sqlite::memory:");
    }
}
