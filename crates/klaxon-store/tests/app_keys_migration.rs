//! Migration 0013: APP keys that earlier versions stored in plain text are hashed on upgrade
//! and keep working (response.md §1.26 "stored hashed", RSP-611). The database is first
//! migrated with the files before 0013 only, given a plain key, then opened by the store.
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use klaxon_store::{Store, StoreOptions, hash_secret};
use sqlx::{Connection, Executor};

const ENV: &str = "KLAXON_TEST_DATABASE_URL";
const PLAIN: &str = "0123456789abcdef0123456789abcdef";

/// The migrations of `backend` numbered below 0013, copied into a directory of their own.
fn old_migrations(backend: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() < "0013" {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    dir
}

async fn upgrade(url: &str, backend: &str) {
    sqlx::any::install_default_drivers();
    let store = Store::connect(url, StoreOptions::default()).await.unwrap();
    let raw = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let old = old_migrations(backend);
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&raw)
        .await
        .unwrap();
    raw.execute(
        "INSERT INTO accounts (account_name, email, locale, time_zone, created_at, updated_at) \
         VALUES ('Old', 'old@example.com', 'en-US', 'UTC', 1, 1)",
    )
    .await
    .unwrap();
    raw.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO app_keys (app_key, account_id, member_id, key_name, created_at) \
         VALUES ('{PLAIN}', (SELECT MIN(account_id) FROM accounts), 0, 'legacy', 5)"
    )))
    .await
    .unwrap();

    // The upgrade: 0013 and the store's hashing of SQLite's copied keys.
    store.migrate().await.unwrap();

    // spec: RSP-611 — the old key still acts as before, now found by its hash.
    let owner = store.app_key(PLAIN).await.unwrap().unwrap();
    let account_id = owner.account_id;
    // §1.26 — stored hashed: no column holds the plain key any more.
    let stored = store.app_key_hashes(account_id).await.unwrap();
    assert_eq!(stored, vec![hash_secret(PLAIN)]);
    let keys = store.list_app_keys(account_id, None).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key_name, "legacy");
    assert_eq!(keys[0].key_hint, "cdef");
    assert_eq!(keys[0].created_at, 5);
    assert_eq!(keys[0].last_used_at, 0);
    // Migrating again changes nothing.
    store.migrate().await.unwrap();
    assert_eq!(
        store.app_key_hashes(account_id).await.unwrap(),
        vec![hash_secret(PLAIN)]
    );
    store.close().await;
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_plain_keys_are_hashed_on_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("klaxon.db").display());
    upgrade(&url, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_plain_keys_are_hashed_on_upgrade() {
    let Some(admin_url) = std::env::var(ENV).ok().filter(|u| !u.is_empty()) else {
        eprintln!("{ENV} is not set: skipping the PostgreSQL run");
        return;
    };
    let stamp = hash_secret(&format!("{:?}", std::time::SystemTime::now()));
    let name = format!("klaxon_mig_{}", &stamp[..12]);
    let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url.as_str(), String::new()),
    };
    let cut = base.rfind('/').unwrap();
    let url = format!("{}/{name}{query}", &base[..cut]);
    upgrade(&url, "postgres").await;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .await
    .unwrap();
    conn.close().await.unwrap();
}
