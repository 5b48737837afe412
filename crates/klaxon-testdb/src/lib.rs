//! PostgreSQL databases for tests, migrated and empty, without running the migrations or
//! creating a database for every test.
//!
//! A test's database used to be created empty, migrated (ninety-odd migrations, each commit
//! waiting for the disk) and dropped afterwards (`DROP DATABASE` forces a checkpoint): on a
//! busy two-core machine that added three to five seconds to each of about a thousand tests.
//! Now:
//!
//! - **A template per set of migrations.** The first caller migrates `klaxon_tmpl_<digest>`
//!   (the digest covers every migration's version and checksum), built under a private name
//!   and renamed into place when complete, so its name existing means it is ready and no lock
//!   is needed. What the migrations leave in it (seed rows, sequence positions, the list of
//!   tables) is recorded as JSON in the template's database comment.
//! - **Databases are reused, not dropped.** A test's database is named
//!   `klaxon_t_<digest>_<time>_p<pid>`: the process id says which test process owns it (the
//!   test runner gives every test a process of its own). A new test first takes over the
//!   database of a process that has ended (renaming it is atomic, so two tests cannot take the
//!   same one) and empties it back to the template's state: it truncates the tables that hold
//!   rows, puts the seed rows back and resets every sequence. Only when there is none to take
//!   does it copy the template with `CREATE DATABASE … TEMPLATE`. So a run keeps about as many
//!   databases as tests run at once, and `.ci/run` drops them at the end.
//! - Databases commit without waiting for the disk (`synchronous_commit = off`): a test checks
//!   Klaxon's behaviour, not PostgreSQL's durability.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection, Row};

use klaxon_store::{Store, StoreOptions};

/// The name prefix of every test database; a cleanup may drop every database that has it.
pub const DATABASE_PREFIX: &str = "klaxon_t_";

/// The name prefix of template databases; a cleanup may drop every database that has it.
pub const TEMPLATE_PREFIX: &str = "klaxon_tmpl_";

/// What went wrong making a database, in words for a test's failure message.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error(format!("PostgreSQL: {e}"))
    }
}

impl From<klaxon_store::StoreError> for Error {
    fn from(e: klaxon_store::StoreError) -> Self {
        Error(format!("the store: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A migrated, empty database of its own for the calling test process on the server of
/// `admin_url` (a PostgreSQL URL whose database the caller may connect to and create
/// databases from); returns its URL.
pub async fn fresh_database(admin_url: &str) -> Result<String> {
    let digest = migrations_digest();
    let template = format!("{TEMPLATE_PREFIX}{digest}");
    let name = format!(
        "{DATABASE_PREFIX}{digest}_{:x}_p{}",
        unique_nanos(),
        std::process::id()
    );
    let mut admin = PgConnection::connect(admin_url).await?;
    if !exists(&mut admin, &template).await? {
        build_template(&mut admin, admin_url, &template).await?;
    }
    let state = match template_state(&mut admin, &template).await? {
        Some(state) => state,
        // A template made before its state was recorded: record it now.
        None => {
            let state = read_state(&database_url(admin_url, &template)).await?;
            record_state(&mut admin, &template, &state).await?;
            state
        }
    };
    let url = database_url(admin_url, &name);
    if take_over_a_finished_one(&mut admin, &digest, &name).await? {
        match reset(&url, &state).await {
            Ok(()) => {
                admin.close().await?;
                return Ok(url);
            }
            // Something a test did cannot be undone here: start from a copy instead.
            Err(_) => drop_database(&mut admin, &name).await,
        }
    }
    copy_template(&mut admin, &template, &name).await?;
    admin.close().await?;
    Ok(url)
}

/// Renames the database of an ended test process with the current migrations to `name`; true
/// when one was taken. Databases of ended processes made for other migrations are dropped.
async fn take_over_a_finished_one(
    admin: &mut PgConnection,
    digest: &str,
    name: &str,
) -> Result<bool> {
    let rows = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(format!("{}%", DATABASE_PREFIX.replace('_', "\\_")))
        .fetch_all(&mut *admin)
        .await?;
    for row in rows {
        let candidate: String = row.try_get("datname")?;
        let Some(pid) = owner_pid(&candidate) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if !candidate.starts_with(&format!("{DATABASE_PREFIX}{digest}_")) {
            drop_database(admin, &candidate).await;
            continue;
        }
        // Fails when another test took it first, or while the ended process's sessions are
        // still closing: then try the next one.
        let renamed = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {candidate} RENAME TO {name}"
            )))
            .await;
        if renamed.is_ok() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The process id at the end of a test database's name (`…_p<pid>`).
fn owner_pid(name: &str) -> Option<u32> {
    let (_, pid) = name.rsplit_once("_p")?;
    pid.parse().ok()
}

/// Empties a taken-over database back to the template's state, in one transaction.
async fn reset(url: &str, state: &TemplateState) -> Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let tables = public_tables(&mut conn).await?;
    if tables != state.tables {
        return Err(Error("its tables differ from the template's".into()));
    }
    if latest_migration(&mut conn).await? != state.migration {
        return Err(Error("its migrations differ from the template's".into()));
    }
    let mut dirty: BTreeSet<String> = non_empty_tables(&mut conn, &tables).await?;
    dirty.extend(state.rows.keys().cloned());
    let mut tx = conn.begin().await?;
    if !dirty.is_empty() {
        let list = dirty
            .iter()
            .map(|t| quoted(t))
            .collect::<Vec<_>>()
            .join(", ");
        tx.execute(sqlx::AssertSqlSafe(format!(
            "TRUNCATE {list} RESTART IDENTITY CASCADE"
        )))
        .await?;
    }
    for (table, rows) in &state.rows {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {t} SELECT * FROM json_populate_recordset(NULL::{t}, $1::json)",
            t = quoted(table)
        )))
        .bind(rows.to_string())
        .execute(&mut *tx)
        .await?;
    }
    let sequences: Vec<String> = sqlx::query_scalar(
        "SELECT sequencename::text FROM pg_sequences WHERE schemaname = 'public'",
    )
    .fetch_all(&mut *tx)
    .await?;
    for sequence in sequences {
        let statement = match state.sequences.get(&sequence) {
            Some(Some(last)) => format!("SELECT setval('{}', {last}, true)", quoted(&sequence)),
            _ => format!("ALTER SEQUENCE {} RESTART", quoted(&sequence)),
        };
        tx.execute(sqlx::AssertSqlSafe(statement)).await?;
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(())
}

/// The tables among `tables` that hold at least one row, found with one statement.
async fn non_empty_tables(
    conn: &mut PgConnection,
    tables: &BTreeSet<String>,
) -> Result<BTreeSet<String>> {
    if tables.is_empty() {
        return Ok(BTreeSet::new());
    }
    let probes = tables
        .iter()
        .map(|t| {
            format!(
                "SELECT '{t}'::text AS name WHERE EXISTS (SELECT 1 FROM {})",
                quoted(t)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let names: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(probes))
        .fetch_all(&mut *conn)
        .await?;
    Ok(names.into_iter().collect())
}

/// The tables of the `public` schema, without sqlx's migration ledger.
async fn public_tables(conn: &mut PgConnection) -> Result<BTreeSet<String>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' \
         AND tablename <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(names.into_iter().collect())
}

/// What the migrations leave in a new database, recorded when the template is built.
#[derive(Debug, Default, PartialEq)]
struct TemplateState {
    tables: BTreeSet<String>,
    migration: Option<i64>,
    /// Seed rows by table, as `json_agg` gives them.
    rows: BTreeMap<String, Value>,
    /// Each sequence's `last_value`, or none when it was never used.
    sequences: BTreeMap<String, Option<i64>>,
}

/// The newest migration applied to the database (`None` before any).
async fn latest_migration(conn: &mut PgConnection) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(conn)
            .await?,
    )
}

impl TemplateState {
    async fn read(conn: &mut PgConnection) -> Result<TemplateState> {
        let tables = public_tables(conn).await?;
        let migration = latest_migration(conn).await?;
        let mut rows = BTreeMap::new();
        for table in non_empty_tables(conn, &tables).await? {
            let text: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT json_agg(t)::text FROM {} t",
                quoted(&table)
            )))
            .fetch_one(&mut *conn)
            .await?;
            let value = serde_json::from_str(&text)
                .map_err(|e| Error(format!("seed rows of {table}: {e}")))?;
            rows.insert(table, value);
        }
        let mut sequences = BTreeMap::new();
        for row in sqlx::query(
            "SELECT sequencename::text AS name, last_value FROM pg_sequences \
             WHERE schemaname = 'public'",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            sequences.insert(row.try_get("name")?, row.try_get("last_value")?);
        }
        Ok(TemplateState {
            tables,
            migration,
            rows,
            sequences,
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "tables": self.tables,
            "migration": self.migration,
            "rows": self.rows,
            "sequences": self.sequences,
        })
    }

    fn from_json(v: &Value) -> Result<TemplateState> {
        let bad = || Error("the template's recorded state is unreadable".into());
        let tables = v["tables"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|t| t.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<BTreeSet<_>>>()?;
        let rows = v["rows"]
            .as_object()
            .ok_or_else(bad)?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let sequences = v["sequences"]
            .as_object()
            .ok_or_else(bad)?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64()))
            .collect();
        Ok(TemplateState {
            tables,
            migration: v["migration"].as_i64(),
            rows,
            sequences,
        })
    }
}

/// The state recorded in the template's comment, if any.
async fn template_state(admin: &mut PgConnection, template: &str) -> Result<Option<TemplateState>> {
    let text: Option<String> = sqlx::query_scalar(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
    )
    .bind(template)
    .fetch_one(&mut *admin)
    .await?;
    let Some(text) = text else {
        return Ok(None);
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error(format!("the recorded state of {template}: {e}")))?;
    TemplateState::from_json(&value).map(Some)
}

/// Records `state` as the database comment of `database` (dollar-quoted JSON).
async fn record_state(
    admin: &mut PgConnection,
    database: &str,
    state: &TemplateState,
) -> Result<()> {
    let comment = state.to_json().to_string();
    if comment.contains("$klaxon_seed$") {
        return Err(Error("the seed rows cannot be quoted".into()));
    }
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "COMMENT ON DATABASE {database} IS $klaxon_seed${comment}$klaxon_seed$"
        )))
        .await?;
    Ok(())
}

async fn copy_template(admin: &mut PgConnection, template: &str, name: &str) -> Result<()> {
    // A copy fails while any session is connected to the template; only a builder that has
    // just renamed it can be, for a moment, so a few tries cover it.
    let mut tries = 0;
    loop {
        let created = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE {name} TEMPLATE {template}"
            )))
            .await;
        match created {
            Ok(_) => break,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} SET synchronous_commit = off"
        )))
        .await?;
    Ok(())
}

/// The first 12 hex digits of a digest of the PostgreSQL migrations, so a changed or added
/// migration gets a template (and test databases) of its own.
pub fn migrations_digest() -> String {
    let mut digest = Sha256::new();
    // The store's own migration files, read at compile time exactly as the store reads them.
    for migration in sqlx::migrate!("../klaxon-store/migrations/postgres").iter() {
        digest.update(migration.version.to_le_bytes());
        digest.update(&migration.checksum);
    }
    hex::encode(digest.finalize())[..12].to_string()
}

/// Nanoseconds since the epoch: with the process id, unique among test databases.
fn unique_nanos() -> u128 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

async fn build_template(admin: &mut PgConnection, admin_url: &str, template: &str) -> Result<()> {
    let building = format!(
        "{template}_b{}_{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {building}")))
        .await?;
    let url = database_url(admin_url, &building);
    let store = Store::connect(&url, StoreOptions::default()).await?;
    let migrated = store.migrate().await;
    store.close().await;
    let state = match migrated {
        Ok(()) => read_state(&url).await,
        Err(e) => Err(e.into()),
    };
    let state = match state {
        Ok(state) => state,
        Err(e) => {
            drop_database(admin, &building).await;
            return Err(e);
        }
    };
    if let Err(e) = record_state(admin, &building, &state).await {
        drop_database(admin, &building).await;
        return Err(e);
    }
    // The store's pools are closed; end any session that outlived them so the rename (which
    // needs the database to itself) cannot fail on it.
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{building}'"
        )))
        .await;
    let renamed = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {template}"
        )))
        .await;
    if renamed.is_err() {
        // Another caller finished first; theirs is as good as ours.
        drop_database(admin, &building).await;
        if !exists(admin, template).await? {
            return Err(Error(format!(
                "could not put the migrated template {template} in place"
            )));
        }
    }
    Ok(())
}

async fn read_state(url: &str) -> Result<TemplateState> {
    let mut conn = PgConnection::connect(url).await?;
    let state = TemplateState::read(&mut conn).await;
    conn.close().await?;
    state
}

async fn exists(admin: &mut PgConnection, name: &str) -> Result<bool> {
    let row: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut *admin)
        .await?;
    Ok(row.is_some())
}

async fn drop_database(admin: &mut PgConnection, name: &str) {
    let _ = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await;
}

/// A table or sequence name as an identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `admin_url` with its database replaced by `name`, keeping any query string.
pub fn database_url(admin_url: &str, name: &str) -> String {
    let (head, tail) = match admin_url.find('?') {
        Some(q) => (&admin_url[..q], &admin_url[q..]),
        None => (admin_url, ""),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    match head.rfind('/') {
        Some(slash) if slash >= scheme_end => format!("{}/{name}{tail}", &head[..slash]),
        _ => format!("{head}/{name}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_their_server_and_options() {
        assert_eq!(
            database_url(
                "postgres://postgres@127.0.0.1:5432/ci?sslmode=disable",
                "t1"
            ),
            "postgres://postgres@127.0.0.1:5432/t1?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
    }

    #[test]
    fn the_owner_is_the_process_at_the_end_of_the_name() {
        assert_eq!(owner_pid("klaxon_t_0123456789ab_18c2f_p4242"), Some(4242));
        assert_eq!(owner_pid("klaxon_t_0123456789ab_18c2f"), None);
    }

    #[test]
    fn the_digest_follows_the_migrations() {
        let digest = migrations_digest();
        assert_eq!(digest.len(), 12);
        assert_eq!(
            digest,
            migrations_digest(),
            "the same migrations, the same digest"
        );
    }

    #[test]
    fn the_recorded_state_round_trips() {
        let state = TemplateState {
            tables: ["leases".to_string(), "members".to_string()].into(),
            migration: Some(93),
            rows: [("leases".to_string(), json!([{"name": "inbox"}]))].into(),
            sequences: [("members_member_id_seq".to_string(), None)].into(),
        };
        assert_eq!(TemplateState::from_json(&state.to_json()).unwrap(), state);
    }
}
