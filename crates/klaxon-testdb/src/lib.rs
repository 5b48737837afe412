//! Fresh PostgreSQL databases for tests and benchmarks, cloned from a migrated template.
//!
//! Running every migration for every test's database cost about 3 seconds a test on a busy
//! two-core machine: each of the ninety-odd migrations commits, and each commit waits for the
//! disk. Instead, the first caller migrates a template database once per set of migrations
//! (its name carries a digest of their versions and checksums), and every database after that
//! is a `CREATE DATABASE … TEMPLATE` copy of it, which takes a fraction of the time.
//!
//! No lock is needed between concurrent callers: a template is built under a private name and
//! renamed into place only when it is complete, so the template's name existing means it is
//! ready; a caller that loses the rename drops its own copy and uses the winner's.

use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};

use klaxon_store::{Store, StoreOptions};

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

/// The name prefix of template databases; a cleanup may drop every database that carries it.
pub const TEMPLATE_PREFIX: &str = "klaxon_tmpl_";

/// Creates the database `name` on the server of `admin_url` (a PostgreSQL URL whose database
/// the caller may connect to and create databases from), with every migration already
/// applied, and returns its URL. The new database commits without waiting for the disk
/// (`synchronous_commit = off`): a test checks Klaxon's behaviour, not PostgreSQL's.
pub async fn fresh_migrated(admin_url: &str, name: &str) -> Result<String> {
    check_identifier(name)?;
    let template = template_name();
    let mut admin = PgConnection::connect(admin_url).await?;
    if !exists(&mut admin, &template).await? {
        build_template(&mut admin, admin_url, &template).await?;
    }
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
    admin.close().await?;
    Ok(database_url(admin_url, name))
}

/// `klaxon_tmpl_` and the first 12 hex digits of a digest of the PostgreSQL migrations, so a
/// changed or added migration gets a template of its own.
pub fn template_name() -> String {
    let mut digest = Sha256::new();
    // The store's own migration files, read at compile time exactly as the store reads them.
    for migration in sqlx::migrate!("../klaxon-store/migrations/postgres").iter() {
        digest.update(migration.version.to_le_bytes());
        digest.update(&migration.checksum);
    }
    let hex = hex::encode(digest.finalize());
    format!("{TEMPLATE_PREFIX}{}", &hex[..12])
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
    let store = Store::connect(&database_url(admin_url, &building), StoreOptions::default()).await?;
    let migrated = store.migrate().await;
    store.close().await;
    if let Err(e) = migrated {
        drop_database(admin, &building).await;
        return Err(e.into());
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

/// Database names go into statements unquoted, so only lower-case letters, digits and `_`.
fn check_identifier(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error(format!(
            "{name:?} is not a plain database name"
        )))
    }
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
            database_url("postgres://postgres@127.0.0.1:5432/ci?sslmode=disable", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1?sslmode=disable"
        );
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
    }

    #[test]
    fn names_are_plain_identifiers() {
        assert!(check_identifier("klaxon_t_0a1b").is_ok());
        assert!(check_identifier("x; DROP DATABASE y").is_err());
        assert!(check_identifier("").is_err());
    }

    #[test]
    fn the_template_follows_the_migrations() {
        let name = template_name();
        assert!(name.starts_with(TEMPLATE_PREFIX));
        assert_eq!(name.len(), TEMPLATE_PREFIX.len() + 12);
        assert_eq!(name, template_name(), "the same migrations, the same template");
    }
}
