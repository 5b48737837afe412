//! The harness shared by the store's focused test files (`noise.rs`, `grouping.rs`,
//! `response.rs`): a fresh, migrated store on SQLite (a temporary file) or, when
//! `KLAXON_TEST_DATABASE_URL` is set, on a PostgreSQL database of its own that is dropped
//! afterwards, plus the `both!` macro that runs each test on both.
//!
//! The suite root (`store.rs`) declares it with `#[macro_use]`; a test module uses
//! `use crate::harness::{Db, random_hex};` and `both!(…)`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use klaxon_store::{Bootstrap, BootstrapSeed, IncidentFilter, Paging, Store, StoreOptions};
use sqlx::{AnyPool, Executor};

pub const ENV: &str = "KLAXON_TEST_DATABASE_URL";

pub fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

/// A fresh store, and a raw pool on the same database for arranging rows by hand.
pub struct Db {
    pub store: Store,
    pub raw: AnyPool,
    _dir: Option<tempfile::TempDir>,
    /// On PostgreSQL (else a temporary SQLite file).
    pg: bool,
}

impl Db {
    async fn open(url: &str) -> (Store, AnyPool) {
        sqlx::any::install_default_drivers();
        let store = Store::connect(url, StoreOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        let raw = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .unwrap();
        (store, raw)
    }

    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("klaxon.db").display());
        let (store, raw) = Db::open(&url).await;
        Db {
            store,
            raw,
            _dir: Some(dir),
            pg: false,
        }
    }

    /// A database of its own on the server of `KLAXON_TEST_DATABASE_URL`, migrated and empty
    /// (the `klaxon-testdb` crate; it is reused once this test's process has ended).
    pub async fn postgres() -> Option<Db> {
        let admin = std::env::var(ENV).ok().filter(|u| !u.is_empty())?;
        let url = klaxon_testdb::fresh_database(&admin).await.unwrap();
        let (store, raw) = Db::open(&url).await;
        Some(Db {
            store,
            raw,
            _dir: None,
            pg: true,
        })
    }

    /// Another fresh store on the same backend, for comparing two histories.
    pub async fn sibling(&self) -> Db {
        if self.pg {
            Db::postgres()
                .await
                .expect("PostgreSQL was reachable a moment ago")
        } else {
            Db::sqlite().await
        }
    }

    pub async fn finish(self) {
        self.store.close().await;
        self.raw.close().await;
        // A PostgreSQL database is left for the next test to empty and reuse.
    }

    /// The first start's account "Acme" (owner, APP key, default channel and integration),
    /// created at `at` (Unix ms).
    pub async fn boot(&self, at: i64) -> Bootstrap {
        self.store
            .bootstrap(
                &BootstrapSeed {
                    account_name: "Acme".into(),
                    owner_email: "owner@example.com".into(),
                    owner_name: "Owner".into(),
                    owner_password: "correct horse battery staple".into(),
                    app_key: random_hex(16),
                    integration_key: random_hex(16),
                },
                at,
            )
            .await
            .unwrap()
    }

    /// The ids of the account's first 100 incidents, oldest first.
    pub async fn incident_ids(&self, account_id: i64) -> Vec<String> {
        let filter = IncidentFilter {
            paging: Paging {
                p: 1,
                limit: 100,
                asc: true,
                search_after_ctx: None,
            },
            ..IncidentFilter::default()
        };
        let page = self
            .store
            .list_incidents(account_id, &filter)
            .await
            .unwrap();
        page.items.into_iter().map(|i| i.incident_id).collect()
    }

    /// Runs one statement on the raw pool (arranging what the API cannot set yet).
    pub async fn exec(&self, sql: &str) {
        self.raw
            .execute(sqlx::AssertSqlSafe(sql.to_string()))
            .await
            .unwrap();
    }
}

/// Runs each named `async fn(&Db)` of the test file on SQLite and on PostgreSQL.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::harness::Db::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::harness::Db::postgres().await else {
                        eprintln!("{} is not set: PostgreSQL run skipped", crate::harness::ENV);
                        return;
                    };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}
