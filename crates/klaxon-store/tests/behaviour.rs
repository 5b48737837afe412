//! The store's behaviour suite (DESIGN.md "Testing"): every test is written once over a
//! [`Db`] and runs against SQLite (a temporary file) always, and against PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set — each test then creates its own database
//! `klaxon_t_<random hex>` from that URL and drops it afterwards, so tests run in parallel.
//! A few SQLite-only tests (the inbox file of its own) follow the shared ones.

// The test bodies are plain async fns called by the generated `#[tokio::test]`s, which
// clippy's `allow-unwrap-in-tests` does not recognise as tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Instant;

use klaxon_core::model::{EventOrigin, Millis, NewEvent, Progress, ResolvedBy, Severity, Status};
use klaxon_store::{
    AlertFilter, Backend, Bootstrap, BootstrapSeed, ChannelFilter, EventFilter, IncidentFilter,
    MemberFilter, MemberKey, MemberUpdate, NewMember, Paging, Refusal, ScheduleFilter, Store,
    StoreError, StoreOptions, TeamFilter, TeamKey, TeamOrder, TeamWrite,
};
use sqlx::{AnyPool, Executor};

const T0: Millis = 1_700_000_000_000;
const ENV: &str = "KLAXON_TEST_DATABASE_URL";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A fresh, migrated store plus a raw pool on the same database for arranging rows by hand.
struct Db {
    store: Store,
    raw: AnyPool,
    /// SQLite: a raw pool on the inbox file (`klaxon-inbox.db` beside `klaxon.db`).
    raw_inbox: Option<AnyPool>,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
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

    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sub/klaxon.db").display());
        let (store, raw) = Db::open(&url).await;
        let inbox_url = format!(
            "sqlite://{}",
            dir.path().join("sub/klaxon-inbox.db").display()
        );
        let raw_inbox = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&inbox_url)
            .await
            .unwrap();
        Db {
            store,
            raw,
            raw_inbox: Some(raw_inbox),
            url,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Db> {
        let admin_url = std::env::var(ENV).ok().filter(|u| !u.is_empty())?;
        // Migrated and empty; reused by a later test once this test's process has ended.
        let url = klaxon_testdb::fresh_database(&admin_url).await.unwrap();
        let (store, raw) = Db::open(&url).await;
        Some(Db {
            store,
            raw,
            raw_inbox: None,
            url,
            _dir: None,
        })
    }

    async fn finish(self) {
        self.store.close().await;
        self.raw.close().await;
        if let Some(raw_inbox) = &self.raw_inbox {
            raw_inbox.close().await;
        }
    }

    /// The pool that sees the `inbox` table: the inbox file on SQLite, the database on
    /// PostgreSQL.
    fn inbox_pool(&self) -> &AnyPool {
        self.raw_inbox.as_ref().unwrap_or(&self.raw)
    }

    /// Rows physically in the inbox table (processed or not).
    async fn inbox_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(self.inbox_pool())
            .await
            .unwrap()
    }

    async fn exec(&self, sql: &str) {
        self.raw
            .execute(sqlx::AssertSqlSafe(sql.to_string()))
            .await
            .unwrap();
    }
}

macro_rules! behaviour {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::Db::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::Db::postgres().await else {
                        eprintln!(
                            "{} is not set: skipping the PostgreSQL run of {}",
                            super::ENV,
                            stringify!($name)
                        );
                        return;
                    };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

behaviour!(
    migrate_twice_is_a_noop,
    close_commits_what_it_accepted,
    bootstrap_creates_once,
    keys_resolve_and_miss,
    enqueue_concurrent_group_commit,
    enqueue_throughput,
    process_throughput,
    process_creates_alert_incident_event,
    process_duplicate_and_significant_merge,
    process_recovery_resolves_and_closes,
    process_ok_without_alert,
    process_batch_closes_cached_siblings,
    process_expired_alert_opens_new,
    process_sees_earlier_events_of_its_batch,
    lease_excludes_other_holders,
    crash_before_commit_is_redone_once,
    list_incidents_filters_and_paging,
    list_alerts_and_events_filters,
    list_channels_filters,
    tenant_isolation,
    schedules_create_update_delete_list,
    schedule_names_are_unique,
    schedules_tenant_isolation,
    schedule_feed_tokens,
    directory_teams_upsert_info_list_delete,
    directory_invite_list_and_uniqueness,
    directory_member_delete_and_reset,
    directory_team_members_and_status,
    directory_tenant_isolation,
    directory_concurrent_uniqueness,
    directory_deletions_reach_schedules,
    calendars_crud_list_and_holiday_sets,
    calendars_tenant_isolation,
    calendar_and_schedule_references,
    member_feed_tokens,
    schedules_team_filter,
);

/// SQLite only: the inbox is a file of its own with a processed watermark in the main file.
mod sqlite_inbox {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processed_but_undeleted_rows_are_not_processed_again_after_reopen() {
        let db = super::Db::sqlite().await;
        super::processed_but_undeleted_rows_are_not_processed_again_after_reopen(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn processed_rows_are_deleted_and_unprocessed_rows_kept() {
        let db = super::Db::sqlite().await;
        super::processed_rows_are_deleted_and_unprocessed_rows_kept(&db).await;
        db.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lost_inbox_file_numbers_new_events_above_the_watermark() {
        let db = super::Db::sqlite().await;
        super::lost_inbox_file_numbers_new_events_above_the_watermark(db).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_group_commit_writes_nothing_and_the_next_one_works() {
        let db = super::Db::sqlite().await;
        super::failed_group_commit_writes_nothing_and_the_next_one_works(&db).await;
        db.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_memory_store_keeps_working() {
        super::in_memory_store_keeps_working().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn seed() -> BootstrapSeed {
    BootstrapSeed {
        account_name: "Acme".into(),
        owner_email: "owner@example.com".into(),
        owner_name: "Owner".into(),
        owner_password: "correct horse battery staple".into(),
        app_key: random_hex(16),
        integration_key: random_hex(16),
    }
}

fn origin(b: &Bootstrap, received_at: Millis) -> EventOrigin {
    EventOrigin {
        request_id: random_hex(16),
        account_id: b.account_id,
        integration_id: b.integration_id,
        integration_type: "standard".into(),
        integration_name: "Standard (default)".into(),
        channel_id: b.channel_id,
        received_at,
    }
}

fn event(key: &str, status: Status, title: &str, event_time: Millis) -> NewEvent {
    NewEvent {
        alert_key: key.into(),
        event_status: status,
        event_severity: status.severity(),
        title: title.into(),
        title_rule: String::new(),
        description: format!("{title} description"),
        labels: BTreeMap::from([("host".to_string(), "db1".to_string())]),
        images: Vec::new(),
        event_time,
        raw: format!(r#"{{"alert_key":"{key}"}}"#),
    }
}

async fn push(db: &Db, b: &Bootstrap, events: Vec<NewEvent>, at: Millis) {
    let items = events.into_iter().map(|e| (origin(b, at), e)).collect();
    db.store.enqueue(items).await.unwrap();
}

/// Processes everything queued, as holder "a", at `now`.
async fn drain(db: &Db, now: Millis) -> usize {
    let mut total = 0;
    loop {
        let n = db.store.process_inbox("a", 100, now).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// Arranges, by hand, an alert in an existing incident (as grouping or a manual move would).
async fn sibling_alert(db: &Db, b: &Bootstrap, id: &str, key: &str, status: &str, incident: &str) {
    let end = if status == "Ok" { T0 } else { 0 };
    db.exec(&format!(
        "INSERT INTO alerts (alert_id, account_id, channel_id, integration_id, integration_type, \
         integration_name, alert_key, title, title_rule, description, alert_severity, \
         alert_status, labels, images, start_time, last_time, end_time, created_at, updated_at, \
         event_cnt, incident_id, closed, close_time, resolved_by, ever_muted) VALUES \
         ('{id}', {acc}, {ch}, {int}, 'standard', 'Standard (default)', '{key}', 'Sib', '', '', \
         'Warning', '{status}', '{{}}', '[]', {t}, {t}, {end}, {t}, {t}, 1, '{incident}', 0, 0, \
         '', 0)",
        acc = b.account_id,
        ch = b.channel_id,
        int = b.integration_id,
        t = T0,
    ))
    .await;
}

fn paging(p: i64, limit: i64) -> Paging {
    Paging {
        p,
        limit,
        asc: false,
        search_after_ctx: None,
    }
}

fn incidents_all() -> IncidentFilter {
    IncidentFilter {
        paging: paging(1, 100),
        ..IncidentFilter::default()
    }
}

fn alerts_all() -> AlertFilter {
    AlertFilter {
        paging: paging(1, 100),
        ..AlertFilter::default()
    }
}

fn events_all() -> EventFilter {
    EventFilter {
        paging: paging(1, 100),
        ..EventFilter::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn migrate_twice_is_a_noop(db: &Db) {
    // The harness migrated once already.
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    db.store.ping().await.unwrap();
    assert_eq!(db.store.inbox_depth().await.unwrap(), 0);
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    db.store.migrate().await.unwrap();
    assert!(db.store.account(b.account_id).await.unwrap().is_some());
    if db.store.backend() == Backend::Sqlite {
        for pool in [&db.raw, db.inbox_pool()] {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
        }
        // The inbox is in its own file, not in the main one.
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'inbox'",
        )
        .fetch_one(&db.raw)
        .await
        .unwrap();
        assert_eq!(tables, 0);
    }
}

async fn close_commits_what_it_accepted(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    // Writers keep enqueueing while the store closes underneath them.
    let mut handles = Vec::new();
    for t in 0..16 {
        let store = db.store.clone();
        let b = b.clone();
        handles.push(tokio::spawn(async move {
            let mut accepted = 0_i64;
            for i in 0..10_000 {
                let e = event(&format!("k{t}-{i}"), Status::Info, "x", T0);
                match store.enqueue(vec![(origin(&b, T0), e)]).await {
                    Ok(()) => accepted += 1,
                    Err(StoreError::Closed) => break,
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            accepted
        }));
    }
    while db.store.inbox_depth().await.unwrap() < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    db.store.close().await;
    let mut accepted = 0;
    for h in handles {
        accepted += h.await.unwrap();
    }
    assert!(accepted >= 100);
    // Every caller told "committed" is in the inbox, and no one else.
    assert_eq!(db.inbox_rows().await, accepted);
    assert!(matches!(
        db.store
            .enqueue(vec![(origin(&b, T0), event("late", Status::Info, "x", T0))])
            .await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        db.store.inbox_depth().await,
        Err(StoreError::Closed)
    ));
    db.store.close().await; // twice is fine
}

async fn bootstrap_creates_once(db: &Db) {
    // Two nodes starting at once on an empty database: exactly one creates, both report the
    // same account.
    let first_seed = seed();
    let (s1, s2) = (db.store.clone(), db.store.clone());
    let second_seed = seed();
    let (r1, r2) = tokio::join!(
        s1.bootstrap(&first_seed, T0),
        s2.bootstrap(&second_seed, T0)
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert!(r1.created != r2.created, "exactly one of them creates");
    assert_eq!(r1.account_id, r2.account_id);
    assert_eq!(r1.integration_key, r2.integration_key);
    let first = if r1.created { r1 } else { r2 };
    let first_seed = if first.app_key == first_seed.app_key {
        first_seed
    } else {
        BootstrapSeed {
            app_key: first.app_key.clone(),
            integration_key: first.integration_key.clone(),
            ..first_seed
        }
    };
    assert!(first.account_id > 0 && first.owner_member_id > 0);
    assert!(first.channel_id > 0 && first.integration_id > 0);
    assert_eq!(first.app_key, first_seed.app_key);
    assert_eq!(first.integration_key, first_seed.integration_key);
    assert_eq!(first.owner_email, "owner@example.com");
    for table in [
        "accounts",
        "members",
        "app_keys",
        "channels",
        "integrations",
    ] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&db.raw)
                .await
                .unwrap();
        assert_eq!(n, 1, "{table}");
    }

    let account = db.store.account(first.account_id).await.unwrap().unwrap();
    assert_eq!(account.account_name, "Acme");
    assert_eq!(account.locale, "en-US");
    assert_eq!(account.time_zone, "UTC");
    assert_eq!(account.created_at, T0);

    let owner = db
        .store
        .member(first.account_id, first.owner_member_id)
        .await
        .unwrap()
        .unwrap();
    assert!(owner.is_owner);
    assert_eq!(owner.account_role_ids, vec![2]);
    assert_eq!(owner.member_name, "Owner");

    // The password is stored as an argon2 PHC string, never in clear.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM members")
        .fetch_one(&db.raw)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2"), "{hash}");
    assert!(!hash.contains("horse"));

    let channels = db
        .store
        .list_channels(first.account_id, &ChannelFilter::default())
        .await
        .unwrap();
    assert_eq!(channels.total, 1);
    let ch = &channels.items[0];
    assert_eq!(ch.channel_id, first.channel_id);
    assert_eq!(ch.channel_name, "Default");
    assert_eq!(ch.auto_resolve_timeout, 0);
    assert_eq!(ch.auto_resolve_mode, "trigger");

    // A later start (other seed) creates nothing and returns the first start's ids and keys.
    let again = db.store.bootstrap(&seed(), T0 + 1000).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.account_id, first.account_id);
    assert_eq!(again.owner_member_id, first.owner_member_id);
    assert_eq!(again.owner_email, first.owner_email);
    // spec: RSP-610 — keys are stored hashed, so a later start cannot show the key again;
    // the first one still works.
    assert_eq!(again.app_key, "");
    assert!(db.store.app_key(&first.app_key).await.unwrap().is_some());
    assert_eq!(again.channel_id, first.channel_id);
    assert_eq!(again.integration_id, first.integration_id);
    assert_eq!(again.integration_key, first.integration_key);
}

async fn keys_resolve_and_miss(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    // spec: ING-005 — keys compare exactly; unknown and deleted keys do not resolve.
    let i = db
        .store
        .integration_by_key(&b.integration_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(i.integration_id, b.integration_id);
    assert_eq!(i.account_id, b.account_id);
    assert_eq!(i.channel_id, b.channel_id);
    assert_eq!(i.integration_type, "standard");
    assert_eq!(i.kind, "dedicated");
    assert_eq!(i.integration_name, "Standard (default)");
    assert!(i.enabled);
    assert_eq!(i.last_event_time, 0);
    assert!(
        db.store
            .integration_by_key(&random_hex(16))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store
            .integration_by_key(&b.integration_key.to_uppercase())
            .await
            .unwrap()
            .is_none()
    );
    assert!(db.store.integration_by_key("").await.unwrap().is_none());

    let owner = db.store.app_key(&b.app_key).await.unwrap().unwrap();
    assert_eq!(owner.account_id, b.account_id);
    assert_eq!(owner.member_id, b.owner_member_id);
    assert!(db.store.app_key(&random_hex(16)).await.unwrap().is_none());

    // A disabled integration still resolves (the server answers 403), a deleted one does not.
    db.exec("UPDATE integrations SET enabled = 0").await;
    let i = db
        .store
        .integration_by_key(&b.integration_key)
        .await
        .unwrap()
        .unwrap();
    assert!(!i.enabled);
    db.exec("UPDATE integrations SET deleted = 1").await;
    assert!(
        db.store
            .integration_by_key(&b.integration_key)
            .await
            .unwrap()
            .is_none()
    );
}

async fn enqueue_concurrent_group_commit(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    const TASKS: usize = 32;
    const PER_TASK: usize = 25;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = db.store.clone();
        let b = b.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let at = T0 + (t * 1000 + i) as i64;
                let e = event(&format!("task-{t}"), Status::Warning, &format!("{i}"), at);
                // Each call returns only after its commit.
                store.enqueue(vec![(origin(&b, at), e)]).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let total = (TASKS * PER_TASK) as i64;
    assert_eq!(db.store.inbox_depth().await.unwrap(), total);

    // spec: ING-011 — `seq` follows arrival: strictly increasing, and each task's events (sent
    // one after the other) appear in the order they were sent.
    let queued = db.store.peek_inbox(usize::MAX).await.unwrap();
    assert_eq!(queued.len() as i64, total);
    assert!(queued.windows(2).all(|w| w[0].seq < w[1].seq));
    let mut next: BTreeMap<String, usize> = BTreeMap::new();
    for q in &queued {
        let expected = next.entry(q.event.alert_key.clone()).or_insert(0);
        assert_eq!(q.event.title, expected.to_string(), "{}", q.event.alert_key);
        *expected += 1;
        assert_eq!(q.origin.account_id, b.account_id);
        assert_eq!(q.origin.channel_id, b.channel_id);
    }

    // A batch of several events from one call keeps its order too.
    let batch: Vec<NewEvent> = (0..10)
        .map(|i| event("batch", Status::Info, &format!("{i}"), T0 + 50_000))
        .collect();
    push(db, &b, batch, T0 + 50_000).await;
    let queued = db.store.peek_inbox(usize::MAX).await.unwrap();
    let titles: Vec<String> = queued
        .iter()
        .filter(|q| q.event.alert_key == "batch")
        .map(|q| q.event.title.clone())
        .collect();
    assert_eq!(titles, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());

    // spec: ING-260 — last_event_time is the latest receive time. PostgreSQL sets it in the
    // group commit; SQLite in the processing transaction (acceptance writes only the inbox
    // file), so there it shows once the events are processed.
    let last_event_time = async || {
        db.store
            .integration_by_key(&b.integration_key)
            .await
            .unwrap()
            .unwrap()
            .last_event_time
    };
    if db.store.backend() == Backend::Postgres {
        assert_eq!(last_event_time().await, T0 + 50_000);
    }
    drain(db, T0 + 60_000).await;
    assert_eq!(last_event_time().await, T0 + 50_000);
    // An older receive time never moves it back.
    push(db, &b, vec![event("late", Status::Info, "x", T0)], T0 + 1).await;
    assert_eq!(last_event_time().await, T0 + 50_000);
    drain(db, T0 + 60_000).await;
    assert_eq!(last_event_time().await, T0 + 50_000);
    assert_eq!(db.store.inbox_depth().await.unwrap(), 0);

    assert!(db.store.enqueue(Vec::new()).await.is_ok());
}

/// Not a timing assertion: prints the rate so a human can see it (`--nocapture`).
async fn enqueue_throughput(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    const TASKS: usize = 64;
    const CALLS: usize = 100;
    const PER_CALL: usize = 4;
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = db.store.clone();
        let b = b.clone();
        handles.push(tokio::spawn(async move {
            for c in 0..CALLS {
                let items = (0..PER_CALL)
                    .map(|i| {
                        let e = event(
                            &format!("t{t}-{i}"),
                            Status::Critical,
                            "CPU load is high on db1",
                            T0 + c as i64,
                        );
                        (origin(&b, T0 + c as i64), e)
                    })
                    .collect();
                store.enqueue(items).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = start.elapsed();
    let total = TASKS * CALLS * PER_CALL;
    assert_eq!(db.store.inbox_depth().await.unwrap(), total as i64);
    eprintln!(
        "enqueue ({:?}): {total} events from {TASKS} tasks in {elapsed:?} = {:.0} events/s",
        db.store.backend(),
        total as f64 / elapsed.as_secs_f64()
    );
}

/// Not a timing assertion: prints the processing rate (new alerts, then merges into them).
async fn process_throughput(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    const KEYS: usize = 500;
    for round in 0..4_i64 {
        let events = (0..KEYS)
            .map(|k| {
                let title = format!("CPU high (round {})", round / 2);
                event(&format!("k{k}"), Status::Warning, &title, T0 + round)
            })
            .collect();
        push(db, &b, events, T0).await;
    }
    let start = Instant::now();
    let mut done = 0;
    loop {
        let n = db.store.process_inbox("a", 500, T0 + 1_000).await.unwrap();
        if n == 0 {
            break;
        }
        done += n;
    }
    let elapsed = start.elapsed();
    assert_eq!(done, 4 * KEYS);
    let page = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap();
    assert_eq!(page.total, KEYS as i64);
    assert!(page.items.iter().all(|a| a.event_cnt == 2));
    eprintln!(
        "process ({:?}): {done} events in {elapsed:?} = {:.0} events/s",
        db.store.backend(),
        done as f64 / elapsed.as_secs_f64()
    );
}

async fn process_creates_alert_incident_event(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    push(
        db,
        &b,
        vec![event("k1", Status::Critical, "Disk full", T0 - 5_000)],
        T0,
    )
    .await;
    assert_eq!(db.store.process_inbox("a", 10, T0 + 100).await.unwrap(), 1);
    assert_eq!(db.store.inbox_depth().await.unwrap(), 0);

    // spec: ING-124 — the new alert record.
    let alerts = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap();
    assert_eq!(alerts.total, 1);
    let a = &alerts.items[0];
    assert_eq!(a.alert_key, "k1");
    assert_eq!(a.channel_id, b.channel_id);
    assert_eq!(a.integration_id, b.integration_id);
    assert_eq!(a.alert_status, Status::Critical);
    assert_eq!(a.alert_severity, Severity::Critical);
    assert_eq!(a.start_time, T0 - 5_000);
    assert_eq!(a.created_at, T0 + 100);
    assert_eq!(a.event_cnt, 1);
    assert!(!a.closed);
    assert_eq!(a.labels.get("host").map(String::as_str), Some("db1"));
    assert_eq!(a.alert_id.len(), 24);
    assert_eq!(
        db.store
            .alert(b.account_id, &a.alert_id)
            .await
            .unwrap()
            .as_ref(),
        Some(a)
    );

    // spec: ING-170 — its own incident.
    let inc = db
        .store
        .incident(b.account_id, &a.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inc.title, "Disk full");
    assert_eq!(inc.progress, Progress::Triggered);
    assert_eq!(inc.incident_severity, Severity::Critical);
    assert_eq!(inc.alert_cnt, 1);
    assert_eq!(inc.first_alert_id, a.alert_id);
    assert_eq!(inc.num.len(), 6);
    assert_eq!(inc.num, inc.num.to_uppercase());

    let events = db
        .store
        .list_events(b.account_id, &events_all())
        .await
        .unwrap();
    assert_eq!(events.total, 1);
    let e = &events.items[0];
    assert_eq!(e.alert_id, a.alert_id);
    assert_eq!(e.event_status, Status::Critical);
    assert_eq!(e.received_at, T0);
    assert_eq!(e.event_id.len(), 24);
}

async fn process_duplicate_and_significant_merge(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    push(db, &b, vec![event("k", Status::Warning, "Slow", T0)], T0).await;
    drain(db, T0).await;
    // spec: ING-120 — an identical trigger is a duplicate: not stored, nothing changes.
    push(
        db,
        &b,
        vec![event("k", Status::Warning, "Slow", T0)],
        T0 + 1,
    )
    .await;
    drain(db, T0 + 1_000).await;
    let alerts = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap();
    assert_eq!(alerts.total, 1);
    assert_eq!(alerts.items[0].event_cnt, 1);
    assert_eq!(alerts.items[0].updated_at, T0);
    assert_eq!(
        db.store
            .list_events(b.account_id, &events_all())
            .await
            .unwrap()
            .total,
        1
    );

    // spec: ING-115, ING-119 — a new title is significant: stored, merged into the alert.
    push(
        db,
        &b,
        vec![event("k", Status::Critical, "Very slow", T0 + 60_000)],
        T0 + 2,
    )
    .await;
    drain(db, T0 + 2_000).await;
    let alerts = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap();
    assert_eq!(alerts.total, 1, "merged, not a new alert (ING-110)");
    let a = &alerts.items[0];
    assert_eq!(a.event_cnt, 2);
    assert_eq!(a.title, "Very slow");
    assert_eq!(a.alert_severity, Severity::Critical);
    assert_eq!(a.last_time, T0 + 60_000);
    assert_eq!(a.updated_at, T0 + 2_000);
    assert_eq!(
        db.store
            .list_events(b.account_id, &events_all())
            .await
            .unwrap()
            .total,
        2
    );
    // spec: ING-171, ING-172 — the incident follows its first alert.
    let inc = db
        .store
        .incident(b.account_id, &a.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inc.title, "Very slow");
    assert_eq!(inc.incident_severity, Severity::Critical);
    assert_eq!(inc.alert_event_cnt, 2);
    assert_eq!(
        db.store
            .list_incidents(b.account_id, &incidents_all())
            .await
            .unwrap()
            .total,
        1
    );

    // spec: ING-110 — another key is another alert.
    push(
        db,
        &b,
        vec![event("other", Status::Info, "Other", T0)],
        T0 + 3,
    )
    .await;
    drain(db, T0 + 3_000).await;
    assert_eq!(
        db.store
            .list_alerts(b.account_id, &alerts_all())
            .await
            .unwrap()
            .total,
        2
    );
}

async fn process_recovery_resolves_and_closes(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    push(db, &b, vec![event("k", Status::Critical, "Down", T0)], T0).await;
    drain(db, T0).await;
    let a = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap()
        .items[0]
        .clone();

    // A sibling alert of the same incident, already recovered but not closed (as grouping or a
    // manual move would leave it), arranged by hand.
    sibling_alert(
        db,
        &b,
        "aaaaaaaaaaaaaaaaaaaaaaaa",
        "sib",
        "Ok",
        &a.incident_id,
    )
    .await;

    // spec: ING-121, ING-200 — the recovery resolves the alert, the incident auto-resolves and
    // closes, and every alert of it becomes closed.
    push(
        db,
        &b,
        vec![event("k", Status::Ok, "Down", T0 + 30_000)],
        T0 + 1,
    )
    .await;
    assert_eq!(drain(db, T0 + 40_000).await, 1);
    let a2 = db
        .store
        .alert(b.account_id, &a.alert_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a2.alert_status, Status::Ok);
    assert_eq!(a2.alert_severity, Severity::Critical);
    assert_eq!(a2.end_time, T0 + 30_000);
    assert_eq!(a2.resolved_by, ResolvedBy::Event);
    assert_eq!(a2.event_cnt, 2);
    assert!(a2.closed);
    let sib = db
        .store
        .alert(b.account_id, "aaaaaaaaaaaaaaaaaaaaaaaa")
        .await
        .unwrap()
        .unwrap();
    assert!(sib.closed, "the store applies close_alert_ids");
    assert_eq!(sib.close_time, T0 + 40_000);

    let inc = db
        .store
        .incident(b.account_id, &a.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inc.incident_status, Status::Ok);
    assert_eq!(inc.progress, Progress::Closed);
    assert_eq!(inc.close_source, "event");
    assert_eq!(inc.close_time, T0 + 40_000);
    assert_eq!(inc.end_time, T0 + 30_000);
    assert_eq!(inc.active_alert_cnt, 0);

    // spec: ING-121, ING-122 — a resolved alert absorbs nothing: the next trigger opens a new
    // alert and a new incident.
    push(
        db,
        &b,
        vec![event("k", Status::Critical, "Down", T0 + 50_000)],
        T0 + 2,
    )
    .await;
    drain(db, T0 + 50_000).await;
    let active = AlertFilter {
        is_active: Some(true),
        ..alerts_all()
    };
    let page = db.store.list_alerts(b.account_id, &active).await.unwrap();
    assert_eq!(page.total, 1);
    assert_ne!(page.items[0].alert_id, a.alert_id);
    assert_ne!(page.items[0].incident_id, a.incident_id);
}

async fn process_batch_closes_cached_siblings(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    push(db, &b, vec![event("k", Status::Critical, "Down", T0)], T0).await;
    drain(db, T0).await;
    let a = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap()
        .items[0]
        .clone();
    // A second, still active alert in the same incident.
    sibling_alert(
        db,
        &b,
        "bbbbbbbbbbbbbbbbbbbbbbbb",
        "s",
        "Warning",
        &a.incident_id,
    )
    .await;

    // One batch: the sibling recovers first (the incident stays open), then the first alert
    // recovers: the second event must see the first one's effect on the sibling, and the
    // auto-resolution closes the sibling the batch already holds (spec: ING-200).
    push(
        db,
        &b,
        vec![
            event("s", Status::Ok, "", T0 + 10_000),
            event("k", Status::Ok, "", T0 + 20_000),
        ],
        T0 + 1,
    )
    .await;
    assert_eq!(
        db.store.process_inbox("a", 10, T0 + 30_000).await.unwrap(),
        2
    );
    let sib = db
        .store
        .alert(b.account_id, "bbbbbbbbbbbbbbbbbbbbbbbb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sib.alert_status, Status::Ok);
    assert_eq!(sib.end_time, T0 + 10_000);
    assert!(sib.closed);
    assert_eq!(sib.close_time, T0 + 30_000);
    let inc = db
        .store
        .incident(b.account_id, &a.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inc.progress, Progress::Closed);
    assert_eq!(inc.incident_status, Status::Ok);
    assert_eq!(inc.alert_cnt, 2);
    assert_eq!(inc.end_time, T0 + 20_000);
    assert_eq!(inc.alert_event_cnt, 2 + 2);
}

async fn process_expired_alert_opens_new(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    push(db, &b, vec![event("k", Status::Warning, "Slow", T0)], T0).await;
    drain(db, T0).await;
    let old = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap()
        .items[0]
        .clone();
    // spec: ING-112, ING-113 — 24 h after its creation the alert absorbs nothing: a trigger
    // opens a new alert and the old one resolves by expiry, its incident with it.
    let later = T0 + klaxon_core::model::DAY_MS;
    push(
        db,
        &b,
        vec![event("k", Status::Warning, "Slow", later)],
        later,
    )
    .await;
    drain(db, later).await;
    let alerts = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap();
    assert_eq!(alerts.total, 2);
    let old2 = db
        .store
        .alert(b.account_id, &old.alert_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old2.alert_status, Status::Ok);
    assert_eq!(old2.resolved_by, ResolvedBy::Expiry);
    assert_eq!(old2.end_time, later);
    assert_eq!(old2.event_cnt, 1, "no event is stored on the expired alert");
    let old_inc = db
        .store
        .incident(b.account_id, &old.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old_inc.progress, Progress::Closed);
    let new = alerts
        .items
        .iter()
        .find(|a| a.alert_id != old.alert_id)
        .unwrap();
    assert!(new.is_active());
    assert_ne!(new.incident_id, old.incident_id);
    assert_eq!(
        db.store
            .list_events(b.account_id, &events_all())
            .await
            .unwrap()
            .total,
        2
    );
}

async fn process_ok_without_alert(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    // spec: ING-114 — a recovery with nothing to resolve is discarded.
    push(db, &b, vec![event("nothing", Status::Ok, "Fine", T0)], T0).await;
    assert_eq!(drain(db, T0).await, 1);
    assert_eq!(db.store.inbox_depth().await.unwrap(), 0);
    assert_eq!(
        db.store
            .list_alerts(b.account_id, &alerts_all())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        db.store
            .list_events(b.account_id, &events_all())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        db.store
            .list_incidents(b.account_id, &incidents_all())
            .await
            .unwrap()
            .total,
        0
    );
}

async fn process_sees_earlier_events_of_its_batch(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    // spec: ING-011 — one batch, in arrival order: trigger, significant merge, recovery, and a
    // new trigger that must open a second alert.
    push(
        db,
        &b,
        vec![
            event("k", Status::Warning, "One", T0),
            event("k", Status::Critical, "Two", T0 + 1_000),
            event("k", Status::Ok, "Two", T0 + 2_000),
            event("k", Status::Warning, "Three", T0 + 3_000),
        ],
        T0,
    )
    .await;
    assert_eq!(
        db.store.process_inbox("a", 100, T0 + 5_000).await.unwrap(),
        4
    );
    let mut f = alerts_all();
    f.paging.asc = true;
    let alerts = db.store.list_alerts(b.account_id, &f).await.unwrap();
    assert_eq!(alerts.total, 2);
    let (first, second) = (&alerts.items[0], &alerts.items[1]);
    assert_eq!(first.event_cnt, 3);
    assert_eq!(first.alert_status, Status::Ok);
    assert!(first.closed);
    assert_eq!(second.alert_status, Status::Warning);
    assert_eq!(second.title, "Three");
    assert_eq!(
        db.store
            .list_events(b.account_id, &events_all())
            .await
            .unwrap()
            .total,
        4
    );
    assert_eq!(
        db.store
            .list_incidents(b.account_id, &incidents_all())
            .await
            .unwrap()
            .total,
        2
    );
}

async fn lease_excludes_other_holders(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let ttl = klaxon_store::LEASE_TTL_MS;
    push(db, &b, vec![event("k1", Status::Info, "x", T0)], T0).await;
    assert_eq!(db.store.process_inbox("A", 10, T0).await.unwrap(), 1);

    push(db, &b, vec![event("k2", Status::Info, "x", T0)], T0).await;
    // B gets nothing while A's lease lives, and takes nothing.
    assert_eq!(
        db.store.process_inbox("B", 10, T0 + ttl / 2).await.unwrap(),
        0
    );
    assert_eq!(db.store.inbox_depth().await.unwrap(), 1);
    // A renews.
    assert_eq!(
        db.store.process_inbox("A", 10, T0 + ttl / 2).await.unwrap(),
        1
    );

    push(db, &b, vec![event("k3", Status::Info, "x", T0)], T0).await;
    assert_eq!(
        db.store
            .process_inbox("B", 10, T0 + ttl / 2 + ttl - 1)
            .await
            .unwrap(),
        0
    );
    // After expiry B takes over, and now A is the one left out.
    assert_eq!(
        db.store
            .process_inbox("B", 10, T0 + ttl / 2 + ttl + 1)
            .await
            .unwrap(),
        1
    );
    push(db, &b, vec![event("k4", Status::Info, "x", T0)], T0).await;
    assert_eq!(
        db.store
            .process_inbox("A", 10, T0 + ttl / 2 + ttl + 2)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        db.store
            .process_inbox("B", 10, T0 + ttl / 2 + ttl + 3)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        db.store
            .list_alerts(b.account_id, &alerts_all())
            .await
            .unwrap()
            .total,
        4
    );

    // Two holders racing at the same instant: exactly one of them processes the event.
    push(db, &b, vec![event("k5", Status::Info, "x", T0)], T0).await;
    let late = T0 + 10 * ttl;
    let (s1, s2) = (db.store.clone(), db.store.clone());
    let (r1, r2) = tokio::join!(
        s1.process_inbox("C", 10, late),
        s2.process_inbox("D", 10, late)
    );
    assert_eq!(r1.unwrap() + r2.unwrap(), 1);
    assert_eq!(
        db.store
            .list_alerts(b.account_id, &alerts_all())
            .await
            .unwrap()
            .total,
        5
    );
}

async fn crash_before_commit_is_redone_once(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    push(
        db,
        &b,
        vec![
            event("k", Status::Critical, "Down", T0),
            event("k", Status::Critical, "Down again", T0 + 1),
        ],
        T0,
    )
    .await;
    // spec: ING-011 — processed once: a batch whose transaction never commits leaves no trace
    // and is redone later, exactly once.
    assert_eq!(
        db.store
            .process_inbox_then_crash("A", 10, T0)
            .await
            .unwrap(),
        2
    );
    assert_eq!(db.store.inbox_depth().await.unwrap(), 2);
    assert_eq!(
        db.store
            .list_alerts(b.account_id, &alerts_all())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        db.store
            .list_events(b.account_id, &events_all())
            .await
            .unwrap()
            .total,
        0
    );
    // The crashed node's lease was never committed either: another node takes the batch now.
    assert_eq!(db.store.process_inbox("B", 10, T0 + 1).await.unwrap(), 2);
    assert_eq!(db.store.process_inbox("B", 10, T0 + 2).await.unwrap(), 0);
    assert_eq!(db.store.inbox_depth().await.unwrap(), 0);
    let alerts = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap();
    assert_eq!(alerts.total, 1);
    assert_eq!(alerts.items[0].event_cnt, 2);
    assert_eq!(
        db.store
            .list_events(b.account_id, &events_all())
            .await
            .unwrap()
            .total,
        2
    );
    assert_eq!(
        db.store
            .list_incidents(b.account_id, &incidents_all())
            .await
            .unwrap()
            .total,
        1
    );
}

/// 12 incidents: keys k00…k11, start times T0 + (i / 2) minutes (pairs share a start time, so
/// the id tie-break matters), severities cycling Info/Warning/Critical; k00…k02 recovered.
async fn arrange_incidents(db: &Db, b: &Bootstrap) {
    let mut events = Vec::new();
    for i in 0..12 {
        let status = [Status::Info, Status::Warning, Status::Critical][i % 3];
        let title = if i == 7 {
            "Disk 100%_full".to_string()
        } else {
            format!("Incident {i}")
        };
        events.push(event(
            &format!("k{i:02}"),
            status,
            &title,
            T0 + (i as i64 / 2) * 60_000,
        ));
    }
    for i in 0..3 {
        events.push(event(&format!("k{i:02}"), Status::Ok, "", T0 + 600_000));
    }
    push(db, b, events, T0).await;
    drain(db, T0 + 700_000).await;
}

async fn list_incidents_filters_and_paging(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    arrange_incidents(db, &b).await;
    let acc = b.account_id;

    let all = db
        .store
        .list_incidents(acc, &incidents_all())
        .await
        .unwrap();
    assert_eq!(all.total, 12);
    assert!(!all.has_next_page);
    assert!(all.search_after_ctx.is_none());
    // Default order: start_time descending, then incident_id descending.
    let keys: Vec<(i64, String)> = all
        .items
        .iter()
        .map(|i| (i.start_time, i.incident_id.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);

    // Offset paging: 5 + 5 + 2, exact totals, has_next_page.
    let mut seen = Vec::new();
    for (p, len, next) in [(1, 5, true), (2, 5, true), (3, 2, false)] {
        let f = IncidentFilter {
            paging: paging(p, 5),
            ..IncidentFilter::default()
        };
        let page = db.store.list_incidents(acc, &f).await.unwrap();
        assert_eq!(page.total, 12);
        assert_eq!(page.items.len(), len, "page {p}");
        assert_eq!(page.has_next_page, next, "page {p}");
        assert_eq!(page.search_after_ctx.is_some(), next);
        seen.extend(page.items.into_iter().map(|i| i.incident_id));
    }
    assert_eq!(
        seen,
        all.items
            .iter()
            .map(|i| i.incident_id.clone())
            .collect::<Vec<_>>()
    );

    // Cursor paging continues after the last item, both directions, across equal start times.
    for asc in [false, true] {
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let f = IncidentFilter {
                paging: Paging {
                    p: 1,
                    limit: 3,
                    asc,
                    search_after_ctx: cursor.clone(),
                },
                ..IncidentFilter::default()
            };
            let page = db.store.list_incidents(acc, &f).await.unwrap();
            assert_eq!(page.total, 12);
            ids.extend(page.items.iter().map(|i| i.incident_id.clone()));
            if !page.has_next_page {
                break;
            }
            cursor = page.search_after_ctx;
            assert!(cursor.is_some());
        }
        let mut expected: Vec<String> = all.items.iter().map(|i| i.incident_id.clone()).collect();
        if asc {
            expected.reverse();
        }
        assert_eq!(ids, expected, "asc = {asc}");
    }
    // An offset page's cursor continues where the offset page ended.
    let f = IncidentFilter {
        paging: paging(1, 4),
        ..IncidentFilter::default()
    };
    let first = db.store.list_incidents(acc, &f).await.unwrap();
    let f = IncidentFilter {
        paging: Paging {
            p: 1,
            limit: 4,
            asc: false,
            search_after_ctx: first.search_after_ctx.clone(),
        },
        ..IncidentFilter::default()
    };
    let second = db.store.list_incidents(acc, &f).await.unwrap();
    assert_eq!(second.items[0].incident_id, all.items[4].incident_id);

    // A cursor that was not issued by this list is refused.
    for bad in ["not-hex", "abcd", &hex::encode("al:1:x")] {
        let f = IncidentFilter {
            paging: Paging {
                p: 1,
                limit: 4,
                asc: false,
                search_after_ctx: Some(bad.to_string()),
            },
            ..IncidentFilter::default()
        };
        assert!(matches!(
            db.store.list_incidents(acc, &f).await,
            Err(StoreError::InvalidCursor)
        ));
    }

    // Filters.
    let count = |f: IncidentFilter| {
        let store = db.store.clone();
        async move { store.list_incidents(acc, &f).await.unwrap().total }
    };
    let base = incidents_all;
    assert_eq!(
        count(IncidentFilter {
            progress: vec![Progress::Closed],
            ..base()
        })
        .await,
        3
    );
    assert_eq!(
        count(IncidentFilter {
            progress: vec![Progress::Triggered, Progress::Processing],
            ..base()
        })
        .await,
        9
    );
    assert_eq!(
        count(IncidentFilter {
            severities: vec![Severity::Critical],
            ..base()
        })
        .await,
        4
    );
    assert_eq!(
        count(IncidentFilter {
            severities: vec![Severity::Info, Severity::Warning],
            ..base()
        })
        .await,
        8
    );
    assert_eq!(
        count(IncidentFilter {
            channel_ids: vec![b.channel_id],
            ..base()
        })
        .await,
        12
    );
    assert_eq!(
        count(IncidentFilter {
            channel_ids: vec![0],
            ..base()
        })
        .await,
        0
    );
    // start ≤ start_time < end: minutes 1 and 2 → incidents 2, 3, 4, 5.
    assert_eq!(
        count(IncidentFilter {
            start_time: T0 + 60_000,
            end_time: T0 + 180_000,
            ..base()
        })
        .await,
        4
    );
    let target = &all.items[3];
    assert_eq!(
        count(IncidentFilter {
            incident_ids: vec![target.incident_id.clone()],
            ..base()
        })
        .await,
        1
    );
    // nums compare case-insensitively.
    let by_num = db
        .store
        .list_incidents(
            acc,
            &IncidentFilter {
                nums: vec![target.num.to_lowercase()],
                ..base()
            },
        )
        .await
        .unwrap();
    assert!(
        by_num
            .items
            .iter()
            .any(|i| i.incident_id == target.incident_id)
    );
    // query: 24-hex id, 6-hex num (any case), else a case-insensitive title substring in which
    // % and _ are literal.
    let q = |s: &str| IncidentFilter {
        query: Some(s.to_string()),
        ..base()
    };
    let page = db
        .store
        .list_incidents(acc, &q(&target.incident_id.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].incident_id, target.incident_id);
    let page = db
        .store
        .list_incidents(acc, &q(&target.num.to_lowercase()))
        .await
        .unwrap();
    assert!(
        page.items
            .iter()
            .any(|i| i.incident_id == target.incident_id)
    );
    assert_eq!(count(q("incident 1")).await, 3); // 1, 10, 11
    assert_eq!(count(q("INCIDENT")).await, 11);
    assert_eq!(count(q("100%_f")).await, 1);
    assert_eq!(count(q("100%%f")).await, 0);
    assert_eq!(count(q("Disk_100")).await, 0);
    assert_eq!(count(q("nothing like this")).await, 0);

    assert!(
        db.store
            .incident(acc, "ffffffffffffffffffffffff")
            .await
            .unwrap()
            .is_none()
    );
}

async fn list_alerts_and_events_filters(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    arrange_incidents(db, &b).await;
    let acc = b.account_id;

    let all = db.store.list_alerts(acc, &alerts_all()).await.unwrap();
    assert_eq!(all.total, 12);
    let active = AlertFilter {
        is_active: Some(true),
        ..alerts_all()
    };
    assert_eq!(db.store.list_alerts(acc, &active).await.unwrap().total, 9);
    let inactive = AlertFilter {
        is_active: Some(false),
        ..alerts_all()
    };
    assert_eq!(db.store.list_alerts(acc, &inactive).await.unwrap().total, 3);
    let f = AlertFilter {
        severities: vec![Severity::Warning],
        ..alerts_all()
    };
    assert_eq!(db.store.list_alerts(acc, &f).await.unwrap().total, 4);
    let f = AlertFilter {
        alert_keys: vec!["k03".into(), "k04".into(), "nope".into()],
        ..alerts_all()
    };
    assert_eq!(db.store.list_alerts(acc, &f).await.unwrap().total, 2);
    let f = AlertFilter {
        integration_ids: vec![b.integration_id + 1000],
        ..alerts_all()
    };
    assert_eq!(db.store.list_alerts(acc, &f).await.unwrap().total, 0);
    let one = &all.items[0];
    let f = AlertFilter {
        incident_id: Some(one.incident_id.clone()),
        ..alerts_all()
    };
    let page = db.store.list_alerts(acc, &f).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].alert_id, one.alert_id);
    let f = AlertFilter {
        alert_ids: vec![one.alert_id.clone()],
        channel_ids: vec![b.channel_id],
        ..alerts_all()
    };
    assert_eq!(db.store.list_alerts(acc, &f).await.unwrap().total, 1);
    let f = AlertFilter {
        start_time: T0 + 300_000,
        end_time: T0 + 400_000,
        ..alerts_all()
    };
    assert_eq!(db.store.list_alerts(acc, &f).await.unwrap().total, 2);

    // Alert cursor paging walks every alert once.
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let f = AlertFilter {
            paging: Paging {
                p: 1,
                limit: 5,
                asc: true,
                search_after_ctx: cursor.clone(),
            },
            ..AlertFilter::default()
        };
        let page = db.store.list_alerts(acc, &f).await.unwrap();
        ids.extend(page.items.into_iter().map(|a| a.alert_id));
        if !page.has_next_page {
            break;
        }
        cursor = page.search_after_ctx;
    }
    let mut expected: Vec<String> = all.items.iter().map(|a| a.alert_id.clone()).collect();
    expected.reverse();
    assert_eq!(ids, expected);

    // Events: 12 triggers + 3 recoveries.
    let events = db.store.list_events(acc, &events_all()).await.unwrap();
    assert_eq!(events.total, 15);
    let times: Vec<i64> = events.items.iter().map(|e| e.event_time).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "event_time descending"
    );
    let f = EventFilter {
        statuses: vec![Status::Ok],
        ..events_all()
    };
    let oks = db.store.list_events(acc, &f).await.unwrap();
    assert_eq!(oks.total, 3);
    // For recoveries, `severities` filters on their event_severity (ING-050: the alert's).
    let f = EventFilter {
        severities: vec![Severity::Info],
        ..events_all()
    };
    assert_eq!(db.store.list_events(acc, &f).await.unwrap().total, 4 + 1);
    let f = EventFilter {
        alert_id: Some(oks.items[0].alert_id.clone()),
        ..events_all()
    };
    assert_eq!(db.store.list_events(acc, &f).await.unwrap().total, 2);
    let f = EventFilter {
        integration_types: vec!["prometheus".into()],
        ..events_all()
    };
    assert_eq!(db.store.list_events(acc, &f).await.unwrap().total, 0);
    let f = EventFilter {
        integration_types: vec!["standard".into()],
        integration_ids: vec![b.integration_id],
        channel_ids: vec![b.channel_id],
        ..events_all()
    };
    assert_eq!(db.store.list_events(acc, &f).await.unwrap().total, 15);
    // 0 = unbounded on either side.
    let f = EventFilter {
        start_time: T0 + 600_000,
        ..events_all()
    };
    assert_eq!(db.store.list_events(acc, &f).await.unwrap().total, 3);
    let f = EventFilter {
        end_time: T0 + 60_000,
        ..events_all()
    };
    assert_eq!(db.store.list_events(acc, &f).await.unwrap().total, 2);
    let f = EventFilter {
        paging: paging(2, 10),
        ..EventFilter::default()
    };
    let page = db.store.list_events(acc, &f).await.unwrap();
    assert_eq!(
        (page.items.len(), page.total, page.has_next_page),
        (5, 15, false)
    );
}

async fn list_channels_filters(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let acc = b.account_id;
    for (name, status) in [
        ("Payments API", "enabled"),
        ("payments-db", "disabled"),
        ("Search_50%", "enabled"),
        ("Old", "deleted"),
    ] {
        db.exec(&format!(
            "INSERT INTO channels (account_id, channel_name, status, created_at, updated_at) \
             VALUES ({acc}, '{name}', '{status}', {T0}, {T0})"
        ))
        .await;
    }
    let all = db
        .store
        .list_channels(
            acc,
            &ChannelFilter {
                paging: paging(1, 100),
                ..ChannelFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.total, 4, "deleted channels are not listed");
    let ids: Vec<i64> = all.items.iter().map(|c| c.channel_id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));

    let q = |query: Option<&str>, name: Option<&str>, ids: Vec<i64>| ChannelFilter {
        paging: paging(1, 100),
        query: query.map(str::to_string),
        channel_name: name.map(str::to_string),
        channel_ids: ids,
    };
    let total = |f: ChannelFilter| {
        let store = db.store.clone();
        async move { store.list_channels(acc, &f).await.unwrap().total }
    };
    assert_eq!(total(q(Some("PAYMENTS"), None, vec![])).await, 2);
    assert_eq!(total(q(Some("h_50%"), None, vec![])).await, 1);
    assert_eq!(total(q(Some("h_5%%"), None, vec![])).await, 0);
    assert_eq!(total(q(None, Some("payments-db"), vec![])).await, 1);
    assert_eq!(total(q(None, Some("Payments-DB"), vec![])).await, 0);
    assert_eq!(total(q(None, None, vec![b.channel_id])).await, 1);

    // Cursor paging over channels.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let f = ChannelFilter {
            paging: Paging {
                p: 1,
                limit: 3,
                asc: true,
                search_after_ctx: cursor.clone(),
            },
            ..ChannelFilter::default()
        };
        let page = db.store.list_channels(acc, &f).await.unwrap();
        seen.extend(page.items.iter().map(|c| c.channel_id));
        if !page.has_next_page {
            break;
        }
        cursor = page.search_after_ctx;
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
}

async fn tenant_isolation(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    arrange_incidents(db, &b).await;
    // A second account, created directly in SQL, with a member and a channel of its own.
    db.exec(&format!(
        "INSERT INTO accounts (account_name, email, locale, time_zone, created_at, updated_at) \
         VALUES ('Other', 'o@example.com', 'en-US', 'UTC', {T0}, {T0})"
    ))
    .await;
    let other: i64 = sqlx::query_scalar("SELECT MAX(account_id) FROM accounts")
        .fetch_one(&db.raw)
        .await
        .unwrap();
    assert_ne!(other, b.account_id);
    db.exec(&format!(
        "INSERT INTO channels (account_id, channel_name, status, created_at, updated_at) \
         VALUES ({other}, 'Theirs', 'enabled', {T0}, {T0})"
    ))
    .await;

    let s = &db.store;
    assert_eq!(
        s.list_incidents(other, &incidents_all())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(s.list_alerts(other, &alerts_all()).await.unwrap().total, 0);
    assert_eq!(s.list_events(other, &events_all()).await.unwrap().total, 0);
    let theirs = s
        .list_channels(other, &ChannelFilter::default())
        .await
        .unwrap();
    assert_eq!(theirs.total, 1);
    assert_eq!(theirs.items[0].channel_name, "Theirs");
    let mine = s
        .list_channels(b.account_id, &ChannelFilter::default())
        .await
        .unwrap();
    assert_eq!(mine.total, 1);
    assert_eq!(mine.items[0].channel_name, "Default");
    // Even explicit ids of the first account's rows find nothing from the second account.
    let f = ChannelFilter {
        channel_ids: vec![b.channel_id],
        ..ChannelFilter::default()
    };
    assert_eq!(s.list_channels(other, &f).await.unwrap().total, 0);
    let inc = &s
        .list_incidents(b.account_id, &incidents_all())
        .await
        .unwrap()
        .items[0];
    assert!(s.incident(other, &inc.incident_id).await.unwrap().is_none());
    let f = IncidentFilter {
        incident_ids: vec![inc.incident_id.clone()],
        query: Some(inc.incident_id.clone()),
        ..incidents_all()
    };
    assert_eq!(s.list_incidents(other, &f).await.unwrap().total, 0);
    let alert = &s
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap()
        .items[0];
    assert!(s.alert(other, &alert.alert_id).await.unwrap().is_none());
    let f = EventFilter {
        alert_id: Some(alert.alert_id.clone()),
        ..events_all()
    };
    assert_eq!(s.list_events(other, &f).await.unwrap().total, 0);
    assert!(s.member(other, b.owner_member_id).await.unwrap().is_none());
    assert!(
        s.member(b.account_id, b.owner_member_id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.account(other).await.unwrap().unwrap().account_name,
        "Other"
    );
    // A later start still reports the first account.
    let again = s.bootstrap(&seed(), T0).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.account_id, b.account_id);
}

// ---------------------------------------------------------------------------------------------
// SQLite only: the inbox file
// ---------------------------------------------------------------------------------------------

/// One inbox row as stored: seq, account, channel, integration, type, name, request, received
/// at, event JSON.
type RawInboxRow = (i64, i64, i64, i64, String, String, String, i64, String);

async fn raw_inbox_rows(db: &Db) -> Vec<RawInboxRow> {
    use sqlx::Row;
    sqlx::query(
        "SELECT seq, account_id, channel_id, integration_id, integration_type, \
         integration_name, request_id, received_at, event FROM inbox ORDER BY seq",
    )
    .fetch_all(db.inbox_pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
        )
    })
    .collect()
}

async fn reopen(url: &str) -> Store {
    let store = Store::connect(url, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn processed_but_undeleted_rows_are_not_processed_again_after_reopen(mut db: Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    push(
        &db,
        &b,
        vec![
            event("k", Status::Critical, "Down", T0),
            event("k", Status::Critical, "Down again", T0 + 1),
        ],
        T0,
    )
    .await;
    let saved = raw_inbox_rows(&db).await;
    assert_eq!(saved.len(), 2);
    assert_eq!(db.store.process_inbox("a", 10, T0).await.unwrap(), 2);
    db.store.close().await;

    // spec: ING-011 — as if the node died after the main database committed the batch (and
    // its watermark) and before the inbox file deleted the processed rows: put them back.
    for r in &saved {
        sqlx::query(
            "INSERT OR IGNORE INTO inbox (seq, account_id, channel_id, integration_id, \
             integration_type, integration_name, request_id, received_at, event) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(r.0)
        .bind(r.1)
        .bind(r.2)
        .bind(r.3)
        .bind(r.4.clone())
        .bind(r.5.clone())
        .bind(r.6.clone())
        .bind(r.7)
        .bind(r.8.clone())
        .execute(db.inbox_pool())
        .await
        .unwrap();
    }
    assert_eq!(db.inbox_rows().await, 2);

    // Reopened on the same files: nothing is waiting, nothing is processed twice.
    db.store = reopen(&db.url).await;
    assert_eq!(db.store.inbox_depth().await.unwrap(), 0);
    assert!(db.store.peek_inbox(10).await.unwrap().is_empty());
    assert_eq!(db.store.process_inbox("b", 10, T0 + 1).await.unwrap(), 0);
    let alerts = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap();
    assert_eq!(alerts.total, 1);
    assert_eq!(alerts.items[0].event_cnt, 2);
    assert_eq!(
        db.store
            .list_events(b.account_id, &events_all())
            .await
            .unwrap()
            .total,
        2
    );

    // A new event comes after them, is processed once, and by then the leftovers are gone.
    push(
        &db,
        &b,
        vec![event("k", Status::Critical, "Third", T0 + 2)],
        T0 + 2,
    )
    .await;
    let queued = db.store.peek_inbox(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert!(queued[0].seq > saved[1].0);
    assert_eq!(db.inbox_rows().await, 1);
    assert_eq!(drain(&db, T0 + 3).await, 1);
    let alerts = db
        .store
        .list_alerts(b.account_id, &alerts_all())
        .await
        .unwrap();
    assert_eq!(alerts.items[0].event_cnt, 3);
    db.finish().await;
}

async fn processed_rows_are_deleted_and_unprocessed_rows_kept(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let events = (0..5)
        .map(|i| event(&format!("k{i}"), Status::Warning, "x", T0))
        .collect();
    push(db, &b, events, T0).await;
    let all = raw_inbox_rows(db).await;
    assert_eq!(all.len(), 5);
    assert_eq!(db.store.process_inbox("a", 3, T0).await.unwrap(), 3);
    assert_eq!(db.store.inbox_depth().await.unwrap(), 2);

    // spec: ING-011 — the processed rows are deleted by the committer's next transaction
    // (here the next group commit), the unprocessed ones stay.
    push(db, &b, vec![event("k5", Status::Warning, "x", T0)], T0).await;
    let left = raw_inbox_rows(db).await;
    let seqs: Vec<i64> = left.iter().map(|r| r.0).collect();
    assert_eq!(seqs.len(), 3);
    assert_eq!(seqs[..2], [all[3].0, all[4].0]);
    assert!(seqs[2] > all[4].0);
    let queued: Vec<i64> = db
        .store
        .peek_inbox(10)
        .await
        .unwrap()
        .iter()
        .map(|q| q.seq)
        .collect();
    assert_eq!(queued, seqs);
    assert_eq!(db.store.inbox_depth().await.unwrap(), 3);

    // When no event arrives, the idle committer deletes them on its own.
    assert_eq!(drain(db, T0 + 1).await, 3);
    assert_eq!(db.store.inbox_depth().await.unwrap(), 0);
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while db.inbox_rows().await > 0 {
        assert!(
            Instant::now() < deadline,
            "processed rows were never deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(
        db.store
            .list_alerts(b.account_id, &alerts_all())
            .await
            .unwrap()
            .total,
        6
    );
}

async fn lost_inbox_file_numbers_new_events_above_the_watermark(mut db: Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let events = (0..3)
        .map(|i| event(&format!("k{i}"), Status::Warning, "x", T0))
        .collect();
    push(&db, &b, events, T0).await;
    assert_eq!(drain(&db, T0).await, 3);
    let last = raw_inbox_rows(&db)
        .await
        .last()
        .map(|r| r.0)
        .unwrap_or_default();
    db.store.close().await;
    if let Some(raw_inbox) = db.raw_inbox.take() {
        raw_inbox.close().await;
    }
    let dir = db._dir.as_ref().unwrap().path().join("sub");
    for name in [
        "klaxon-inbox.db",
        "klaxon-inbox.db-wal",
        "klaxon-inbox.db-shm",
    ] {
        let _ = std::fs::remove_file(dir.join(name));
    }

    // A fresh inbox file would number from 1, under the watermark: the store moves it up.
    db.store = reopen(&db.url).await;
    push(&db, &b, vec![event("k3", Status::Warning, "x", T0)], T0).await;
    let queued = db.store.peek_inbox(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert!(queued[0].seq > last.max(3), "{}", queued[0].seq);
    assert_eq!(db.store.inbox_depth().await.unwrap(), 1);
    assert_eq!(drain(&db, T0 + 1).await, 1);
    assert_eq!(
        db.store
            .list_alerts(b.account_id, &alerts_all())
            .await
            .unwrap()
            .total,
        4
    );
    db.finish().await;
}

async fn failed_group_commit_writes_nothing_and_the_next_one_works(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    // A row the inbox refuses, in the middle of a batch (after its BEGIN and other rows).
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON inbox WHEN NEW.request_id = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(db.inbox_pool())
    .await
    .unwrap();
    let mut boom = origin(&b, T0);
    boom.request_id = "boom".into();
    let items = vec![
        (origin(&b, T0), event("ok1", Status::Info, "x", T0)),
        (boom, event("boom", Status::Info, "x", T0)),
    ];
    assert!(matches!(
        db.store.enqueue(items).await,
        Err(StoreError::Database(_))
    ));
    // Nothing of the failed batch, and the writer is not left inside its transaction.
    assert_eq!(db.inbox_rows().await, 0);
    push(db, &b, vec![event("ok2", Status::Info, "x", T0)], T0).await;
    let queued = db.store.peek_inbox(10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].event.alert_key, "ok2");
    assert_eq!(drain(db, T0).await, 1);
}

/// `sqlite::memory:` gets a second in-memory database for the inbox; the whole path works.
async fn in_memory_store_keeps_working() {
    let store = reopen("sqlite::memory:").await;
    let b = store.bootstrap(&seed(), T0).await.unwrap();
    let items = (0..3)
        .map(|i| {
            (
                origin(&b, T0),
                event(&format!("k{i}"), Status::Info, "x", T0),
            )
        })
        .collect();
    store.enqueue(items).await.unwrap();
    assert_eq!(store.inbox_depth().await.unwrap(), 3);
    assert_eq!(store.process_inbox("a", 10, T0).await.unwrap(), 3);
    assert_eq!(store.inbox_depth().await.unwrap(), 0);
    assert_eq!(
        store
            .list_alerts(b.account_id, &alerts_all())
            .await
            .unwrap()
            .total,
        3
    );
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// Schedules (response.md §1.13, openapi-compat.md 2.8)
// ---------------------------------------------------------------------------------------------

/// A weekly rotation of `members`, one per group, as the core's `create_schedule` prepares it.
fn weekly_schedule(name: &str, members: &[i64], at: Millis) -> klaxon_core::schedule::Schedule {
    use klaxon_core::schedule::{Group, GroupMember, Layer, RotationUnit, Schedule};
    let sched = Schedule {
        schedule_name: name.into(),
        time_zone: "UTC".into(),
        layers: vec![Layer {
            layer_id: 1,
            layer_name: "Weekly".into(),
            groups: members
                .iter()
                .map(|&person_id| Group {
                    group_name: String::new(),
                    members: vec![GroupMember {
                        person_id,
                        role_id: 0,
                    }],
                })
                .collect(),
            layer_start: T0,
            rotation_unit: RotationUnit::Week,
            rotation_value: 1,
            ..Layer::default()
        }],
        ..Schedule::default()
    };
    klaxon_core::schedule::create_schedule(sched, at, klaxon_core::schedule::Calendars::default())
        .unwrap()
}

fn schedules_all() -> ScheduleFilter {
    ScheduleFilter {
        p: 1,
        limit: 100,
        ..ScheduleFilter::default()
    }
}

async fn schedules_create_update_delete_list(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;

    let first = weekly_schedule("Ops primary", &[b.owner_member_id, 7], T0);
    let id1 = s.create_schedule(a, &first).await.unwrap().unwrap();
    let id2 = s
        .create_schedule(a, &weekly_schedule("Database", &[7], T0 + 1))
        .await
        .unwrap()
        .unwrap();
    assert!(id1 > 0 && id2 > id1);

    // The row's id is written into the definition read back; the rest round-trips.
    let got = s.schedule(a, id1).await.unwrap().unwrap();
    assert_eq!(got.schedule_id, id1);
    assert_eq!(
        klaxon_core::schedule::Schedule {
            schedule_id: 0,
            ..got.clone()
        },
        first
    );
    assert!(s.schedule(a, id2 + 1000).await.unwrap().is_none());

    // Newest first; query is a case-insensitive substring of the name; offset paging.
    let all = s.list_schedules(a, &schedules_all()).await.unwrap();
    assert_eq!(all.total, 2);
    let ids: Vec<i64> = all.items.iter().map(|x| x.schedule_id).collect();
    assert_eq!(ids, [id2, id1]);
    let q = ScheduleFilter {
        query: Some("PRIMARY".into()),
        ..schedules_all()
    };
    let found = s.list_schedules(a, &q).await.unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].schedule_name, "Ops primary");
    let page = ScheduleFilter {
        p: 2,
        limit: 1,
        ..ScheduleFilter::default()
    };
    let page2 = s.list_schedules(a, &page).await.unwrap();
    assert_eq!((page2.total, page2.items.len()), (2, 1));
    assert_eq!(page2.items[0].schedule_id, id1);
    assert!(!page2.has_next_page);

    // Update through the core's apply_edit: renamed, history recorded (RSP-225).
    let mut edited = got.clone();
    edited.schedule_name = "Ops renamed".into();
    edited.layers[0].rotation_value = 2;
    let next = klaxon_core::schedule::apply_edit(
        &got,
        edited,
        T0 + 5000,
        klaxon_core::schedule::Calendars::default(),
    )
    .unwrap();
    assert_eq!(s.update_schedule(a, &next).await.unwrap(), Ok(()));
    let got = s.schedule(a, id1).await.unwrap().unwrap();
    assert_eq!(got.schedule_name, "Ops renamed");
    assert_eq!(got.updated_at, T0 + 5000);
    assert_eq!(got.history.len(), 1);
    let q = ScheduleFilter {
        query: Some("renamed".into()),
        ..schedules_all()
    };
    assert_eq!(s.list_schedules(a, &q).await.unwrap().total, 1);
    // An unknown id updates nothing.
    let ghost = klaxon_core::schedule::Schedule {
        schedule_id: id2 + 1000,
        ..next.clone()
    };
    assert_eq!(
        s.update_schedule(a, &ghost).await.unwrap(),
        Err(klaxon_store::ScheduleRefusal::NotFound)
    );

    // Delete is soft and idempotent; a deleted schedule is gone from every read and update.
    assert_eq!(
        s.delete_schedules(a, &[id1, id2 + 1000], T0 + 6000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.delete_schedules(a, &[id1], T0 + 7000).await.unwrap(), 0);
    assert_eq!(s.delete_schedules(a, &[], T0 + 7000).await.unwrap(), 0);
    assert!(s.schedule(a, id1).await.unwrap().is_none());
    assert_eq!(
        s.update_schedule(a, &next).await.unwrap(),
        Err(klaxon_store::ScheduleRefusal::NotFound)
    );
    let all = s.list_schedules(a, &schedules_all()).await.unwrap();
    assert_eq!(all.total, 1);
    assert_eq!(all.items[0].schedule_id, id2);
}

// spec: response.md §1.13 (`schedule_name` unique within the account)
async fn schedule_names_are_unique(db: &Db) {
    use klaxon_store::ScheduleRefusal;
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    let ops = s
        .create_schedule(a, &weekly_schedule("Ops", &[7], T0))
        .await
        .unwrap()
        .unwrap();
    let db_id = s
        .create_schedule(a, &weekly_schedule("Database", &[8], T0))
        .await
        .unwrap()
        .unwrap();
    // A second "Ops" is refused and nothing is written.
    assert_eq!(
        s.create_schedule(a, &weekly_schedule("Ops", &[9], T0))
            .await
            .unwrap(),
        Err(ScheduleRefusal::NameTaken)
    );
    assert_eq!(
        s.list_schedules(a, &schedules_all()).await.unwrap().total,
        2
    );
    // Renaming onto another schedule's name is refused; the stored row is unchanged.
    let mut renamed = s.schedule(a, db_id).await.unwrap().unwrap();
    renamed.schedule_name = "Ops".into();
    renamed.updated_at = T0 + 10;
    assert_eq!(
        s.update_schedule(a, &renamed).await.unwrap(),
        Err(ScheduleRefusal::NameTaken)
    );
    let kept = s.schedule(a, db_id).await.unwrap().unwrap();
    assert_eq!(kept.schedule_name, "Database");
    assert_eq!(kept.updated_at, T0);
    // Keeping one's own name is no conflict.
    let mut same = kept.clone();
    same.updated_at = T0 + 20;
    assert_eq!(s.update_schedule(a, &same).await.unwrap(), Ok(()));
    // A deleted schedule frees its name.
    assert_eq!(s.delete_schedules(a, &[ops], T0 + 30).await.unwrap(), 1);
    assert_eq!(s.update_schedule(a, &renamed).await.unwrap(), Ok(()));
    assert!(
        s.create_schedule(a, &weekly_schedule("Database", &[9], T0))
            .await
            .unwrap()
            .is_ok()
    );
    // Names are per account.
    db.exec(&format!(
        "INSERT INTO accounts (account_name, email, locale, time_zone, created_at, updated_at) \
         VALUES ('Other', 'o@example.com', 'en-US', 'UTC', {T0}, {T0})"
    ))
    .await;
    let other: i64 = sqlx::query_scalar("SELECT MAX(account_id) FROM accounts")
        .fetch_one(&db.raw)
        .await
        .unwrap();
    assert!(
        s.create_schedule(other, &weekly_schedule("Ops", &[1], T0))
            .await
            .unwrap()
            .is_ok()
    );
}

async fn schedules_tenant_isolation(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    db.exec(&format!(
        "INSERT INTO accounts (account_name, email, locale, time_zone, created_at, updated_at) \
         VALUES ('Other', 'o@example.com', 'en-US', 'UTC', {T0}, {T0})"
    ))
    .await;
    let other: i64 = sqlx::query_scalar("SELECT MAX(account_id) FROM accounts")
        .fetch_one(&db.raw)
        .await
        .unwrap();
    assert_ne!(other, b.account_id);
    let s = &db.store;
    let mine = s
        .create_schedule(b.account_id, &weekly_schedule("Mine", &[1], T0))
        .await
        .unwrap()
        .unwrap();
    let theirs = s
        .create_schedule(other, &weekly_schedule("Theirs", &[2], T0))
        .await
        .unwrap()
        .unwrap();

    // Each account sees only its own, even by explicit id.
    let list = s.list_schedules(other, &schedules_all()).await.unwrap();
    assert_eq!(list.total, 1);
    assert_eq!(list.items[0].schedule_name, "Theirs");
    let by_id = ScheduleFilter {
        schedule_ids: vec![mine],
        ..schedules_all()
    };
    assert_eq!(s.list_schedules(other, &by_id).await.unwrap().total, 0);
    assert!(s.schedule(other, mine).await.unwrap().is_none());
    assert!(s.schedule(b.account_id, theirs).await.unwrap().is_none());

    // Another account can neither update nor delete it.
    let mut hijack = s.schedule(b.account_id, mine).await.unwrap().unwrap();
    hijack.schedule_name = "Hijacked".into();
    assert_eq!(
        s.update_schedule(other, &hijack).await.unwrap(),
        Err(klaxon_store::ScheduleRefusal::NotFound)
    );
    assert_eq!(s.delete_schedules(other, &[mine], T0).await.unwrap(), 0);
    let still = s.schedule(b.account_id, mine).await.unwrap().unwrap();
    assert_eq!(still.schedule_name, "Mine");
}

// feature: iCalendar feed — the secret token of a schedule's calendar subscription URL.
async fn schedule_feed_tokens(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    let id = s
        .create_schedule(a, &weekly_schedule("Feed", &[b.owner_member_id], T0))
        .await
        .unwrap()
        .unwrap();
    // No feed until a token is set; the empty token never matches.
    assert!(s.schedule_by_feed_token("").await.unwrap().is_none());
    assert!(s.schedule_by_feed_token("nope").await.unwrap().is_none());
    assert!(s.schedule_feed_token(a, id, Some("tok1")).await.unwrap());
    let (acc, got) = s.schedule_by_feed_token("tok1").await.unwrap().unwrap();
    assert_eq!((acc, got.schedule_id), (a, id));
    // Rotating retires the old token.
    assert!(s.schedule_feed_token(a, id, Some("tok2")).await.unwrap());
    assert!(s.schedule_by_feed_token("tok1").await.unwrap().is_none());
    assert!(s.schedule_by_feed_token("tok2").await.unwrap().is_some());
    // Another account cannot set it; an unknown schedule is reported.
    assert!(
        !s.schedule_feed_token(a + 1000, id, Some("x"))
            .await
            .unwrap()
    );
    assert!(
        !s.schedule_feed_token(a, id + 1000, Some("x"))
            .await
            .unwrap()
    );
    // Clearing switches the feed off; a deleted schedule has no feed.
    assert!(s.schedule_feed_token(a, id, None).await.unwrap());
    assert!(s.schedule_by_feed_token("tok2").await.unwrap().is_none());
    assert!(s.schedule_feed_token(a, id, Some("tok3")).await.unwrap());
    s.delete_schedules(a, &[id], T0 + 1).await.unwrap();
    assert!(s.schedule_by_feed_token("tok3").await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Members and teams (response.md §1.3, §1.4, §2.30)
// ---------------------------------------------------------------------------------------------

fn invitee(name: &str, email: &str, phone: &str) -> NewMember {
    NewMember {
        member_name: name.into(),
        email: email.into(),
        phone: phone.into(),
        country_code: String::new(),
        role_ids: vec![8],
        locale: "en-US".into(),
        time_zone: "UTC".into(),
        ref_id: String::new(),
    }
}

/// Invites `people` (name, email, phone) into `account`; returns their ids in order.
async fn invite(db: &Db, account: i64, people: &[(&str, &str, &str)], at: Millis) -> Vec<i64> {
    let list: Vec<NewMember> = people.iter().map(|(n, e, p)| invitee(n, e, p)).collect();
    db.store
        .invite_members(account, &list, at, 0)
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|p| p.member_id)
        .collect()
}

fn team(name: &str, person_ids: Option<Vec<i64>>) -> TeamWrite {
    TeamWrite {
        team_name: name.into(),
        person_ids,
        ..TeamWrite::default()
    }
}

fn teams_all() -> TeamFilter {
    TeamFilter {
        p: 1,
        limit: 100,
        ..TeamFilter::default()
    }
}

fn members_all() -> MemberFilter {
    MemberFilter {
        p: 1,
        limit: 100,
        ..MemberFilter::default()
    }
}

/// A second account with its own owner and APP key.
async fn other_account(db: &Db) -> Bootstrap {
    let seed = BootstrapSeed {
        account_name: "Other".into(),
        owner_email: "boss@other.example".into(),
        ..seed()
    };
    db.store.create_account(&seed, T0).await.unwrap()
}

// spec: RSP §1.4, openapi-compat 2.9 (/team/upsert, /team/info, /team/list, /team/delete),
// RSP-554, RSP-556
async fn directory_teams_upsert_info_list_delete(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    let ids = invite(
        db,
        a,
        &[
            ("Ann", "ann@example.com", ""),
            ("Bob", "bob@example.com", "+14155550100"),
        ],
        T0,
    )
    .await;
    let (ann, bob) = (ids[0], ids[1]);

    // Create: the creator is the actor, members ascending.
    let ops = s
        .upsert_team(
            a,
            b.owner_member_id,
            &team("Ops", Some(vec![bob, ann, bob])),
            T0 + 1,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ops.person_ids, vec![ann, bob]);
    assert_eq!(
        (ops.creator_id, ops.created_at),
        (b.owner_member_id, T0 + 1)
    );

    // spec: RSP §1.4 (team_name unique within the account)
    let clash = s
        .upsert_team(a, b.owner_member_id, &team("Ops", None), T0 + 2)
        .await
        .unwrap();
    assert!(matches!(clash, Err(Refusal::Conflict(ref m)) if m.starts_with("team_name")));

    // reset_if_name_exist updates the team of that name instead; absent person_ids keep the
    // members, absent description keeps it.
    let w = TeamWrite {
        description: Some("On call".into()),
        ref_id: Some("ext-1".into()),
        reset_if_name_exist: true,
        ..team("Ops", None)
    };
    let again = s.upsert_team(a, ann, &w, T0 + 3).await.unwrap().unwrap();
    assert_eq!(again.team_id, ops.team_id);
    assert_eq!(again.person_ids, vec![ann, bob]);
    assert_eq!((again.updated_by, again.updated_at), (ann, T0 + 3));
    assert_eq!(again.creator_id, b.owner_member_id);

    // Update by id: rename, replace the members (emails and phones are added to the list).
    let w = TeamWrite {
        team_id: ops.team_id,
        person_ids: Some(vec![]),
        phones: vec!["+14155550100".into()],
        emails: vec!["ANN@example.com".into()],
        ..team("Operations", None)
    };
    let renamed = s.upsert_team(a, ann, &w, T0 + 4).await.unwrap().unwrap();
    assert_eq!(renamed.team_name, "Operations");
    assert_eq!(renamed.description, "On call");
    assert_eq!(renamed.person_ids, vec![ann, bob]);
    let w = TeamWrite {
        team_id: ops.team_id,
        ..team("Operations", Some(vec![bob]))
    };
    assert_eq!(
        s.upsert_team(a, ann, &w, T0 + 5)
            .await
            .unwrap()
            .unwrap()
            .person_ids,
        vec![bob]
    );

    // Unknown ids are refused and change nothing.
    let w = TeamWrite {
        team_id: ops.team_id + 1000,
        ..team("Ghost", None)
    };
    assert!(matches!(
        s.upsert_team(a, ann, &w, T0).await.unwrap(),
        Err(Refusal::NotFound(ref m)) if m.starts_with("team_id")
    ));
    let w = TeamWrite {
        team_id: ops.team_id,
        ..team("Operations", Some(vec![bob, 999_999]))
    };
    assert!(matches!(
        s.upsert_team(a, ann, &w, T0).await.unwrap(),
        Err(Refusal::NotFound(ref m)) if m.starts_with("person_ids") && m.contains("999999")
    ));
    let w = TeamWrite {
        emails: vec!["nobody@example.com".into()],
        ..team("New", None)
    };
    assert!(matches!(
        s.upsert_team(a, ann, &w, T0).await.unwrap(),
        Err(Refusal::NotFound(ref m)) if m.starts_with("emails")
    ));
    let kept = s.team(a, &TeamKey::Id(ops.team_id)).await.unwrap().unwrap();
    assert_eq!(kept.person_ids, vec![bob]);
    assert!(
        s.team(a, &TeamKey::Name("New".into()))
            .await
            .unwrap()
            .is_none()
    );

    // Info by name and by ref_id.
    assert_eq!(
        s.team(a, &TeamKey::Name("Operations".into()))
            .await
            .unwrap()
            .unwrap()
            .team_id,
        ops.team_id
    );
    assert_eq!(
        s.team(a, &TeamKey::RefId("ext-1".into()))
            .await
            .unwrap()
            .unwrap()
            .team_id,
        ops.team_id
    );
    assert!(
        s.team(a, &TeamKey::RefId(String::new()))
            .await
            .unwrap()
            .is_none()
    );

    // List: query (case-insensitive substring), person_id ("my teams"), orderby, paging.
    let dev = s
        .upsert_team(a, ann, &team("Dev", Some(vec![ann])), T0 + 10)
        .await
        .unwrap()
        .unwrap();
    let qa = s
        .upsert_team(a, ann, &team("QA_team", None), T0 + 11)
        .await
        .unwrap()
        .unwrap();
    let all = s.list_teams(a, &teams_all()).await.unwrap();
    assert_eq!(all.total, 3);
    let order: Vec<i64> = all.items.iter().map(|t| t.team_id).collect();
    assert_eq!(
        order,
        vec![qa.team_id, dev.team_id, ops.team_id],
        "newest first"
    );
    let by_name = TeamFilter {
        orderby: TeamOrder::TeamName,
        asc: true,
        ..teams_all()
    };
    let names: Vec<String> = s
        .list_teams(a, &by_name)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|t| t.team_name)
        .collect();
    assert_eq!(names, vec!["Dev", "Operations", "QA_team"]);
    let q = TeamFilter {
        query: Some("ERAT".into()),
        ..teams_all()
    };
    assert_eq!(
        s.list_teams(a, &q).await.unwrap().items[0].team_id,
        ops.team_id
    );
    let q = TeamFilter {
        query: Some("_".into()),
        ..teams_all()
    };
    assert_eq!(
        s.list_teams(a, &q).await.unwrap().total,
        1,
        "LIKE wildcards are literal"
    );
    let mine = TeamFilter {
        person_id: Some(ann),
        ..teams_all()
    };
    let mine = s.list_teams(a, &mine).await.unwrap();
    assert_eq!((mine.total, mine.items[0].team_id), (1, dev.team_id));
    let page2 = TeamFilter {
        p: 2,
        limit: 2,
        ..teams_all()
    };
    let page2 = s.list_teams(a, &page2).await.unwrap();
    assert_eq!(
        (page2.total, page2.items.len(), page2.has_next_page),
        (3, 1, false)
    );
    assert!(
        s.list_teams(
            a,
            &TeamFilter {
                limit: 2,
                ..teams_all()
            }
        )
        .await
        .unwrap()
        .has_next_page
    );

    // Infos: only existing ids, ascending.
    let infos = s
        .teams(a, &[qa.team_id, 424_242, ops.team_id])
        .await
        .unwrap();
    let got: Vec<i64> = infos.iter().map(|t| t.team_id).collect();
    assert_eq!(got, vec![ops.team_id, qa.team_id]);

    // spec: RSP-554 — delete removes the team, its memberships and channel references.
    db.exec(&format!(
        "UPDATE channels SET team_id = {} WHERE channel_id = {}",
        dev.team_id, b.channel_id
    ))
    .await;
    let gone = s
        .delete_team(a, &TeamKey::Name("Dev".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.team_id, dev.team_id);
    assert!(
        s.team(a, &TeamKey::Id(dev.team_id))
            .await
            .unwrap()
            .is_none()
    );
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM team_members WHERE team_id = {}",
        dev.team_id
    )))
    .fetch_one(&db.raw)
    .await
    .unwrap();
    assert_eq!(rows, 0);
    let channel_team: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT team_id FROM channels WHERE channel_id = {}",
        b.channel_id
    )))
    .fetch_one(&db.raw)
    .await
    .unwrap();
    assert_eq!(channel_team, 0);
    assert!(matches!(
        s.delete_team(a, &TeamKey::Id(dev.team_id)).await.unwrap(),
        Err(Refusal::NotFound(_))
    ));
    // A new team never reuses a deleted team's id.
    let next = s
        .upsert_team(a, ann, &team("Dev", None), T0 + 20)
        .await
        .unwrap()
        .unwrap();
    assert!(next.team_id > qa.team_id);
}

// spec: RSP-550, RSP-551, RSP-552, openapi-compat 2.10 (/member/invite, /member/list)
async fn directory_invite_list_and_uniqueness(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;

    // The owner created by the first start is enabled, activated and verified.
    let owner = s.persons(a, &[b.owner_member_id]).await.unwrap().remove(0);
    assert_eq!(owner.status, "enabled");
    assert!(owner.email_verified);
    assert_eq!(owner.activated_at, T0);

    // spec: RSP-551 — invited members are pending.
    let invited = s
        .invite_members(
            a,
            &[
                invitee("Ann", "Ann@Example.com", ""),
                NewMember {
                    role_ids: vec![2, 6],
                    ref_id: "hr-7".into(),
                    ..invitee("Bob", "", "+8613800138000")
                },
            ],
            T0 + 1,
            0,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(invited.len(), 2);
    assert_eq!(invited[0].member_name, "Ann");
    assert_eq!(invited[1].member_name, "Bob");
    for p in &invited {
        assert_eq!(p.status, "pending");
        assert_eq!(p.activated_at, 0);
        assert!(!p.email_verified && !p.phone_verified);
    }
    assert_eq!(invited[1].role_ids, vec![2, 6]);
    let count = |db: &Db| {
        let raw = db.raw.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM members")
                .fetch_one(&raw)
                .await
                .unwrap()
        }
    };
    assert_eq!(count(db).await, 3);

    // spec: RSP-552 — email unique case-insensitively, phone unique; all-or-nothing.
    let dup_email = s
        .invite_members(
            a,
            &[
                invitee("New", "new@example.com", ""),
                invitee("Ann2", "ann@EXAMPLE.com", ""),
            ],
            T0 + 2,
            0,
        )
        .await
        .unwrap();
    assert!(
        matches!(dup_email, Err(Refusal::Conflict(ref m)) if m.starts_with("members[1].email")),
        "{dup_email:?}"
    );
    let dup_phone = s
        .invite_members(a, &[invitee("P", "", "+8613800138000")], T0 + 2, 0)
        .await
        .unwrap();
    assert!(
        matches!(dup_phone, Err(Refusal::Conflict(ref m)) if m.starts_with("members[0].phone"))
    );
    let dup_in_batch = s
        .invite_members(
            a,
            &[
                invitee("X", "x@example.com", ""),
                invitee("Y", "X@example.com", ""),
            ],
            T0 + 2,
            0,
        )
        .await
        .unwrap();
    assert!(matches!(dup_in_batch, Err(Refusal::Conflict(ref m)) if m.contains("members[0]")));
    let owner_email = s
        .invite_members(a, &[invitee("O", "OWNER@example.com", "")], T0 + 2, 0)
        .await
        .unwrap();
    assert!(matches!(owner_email, Err(Refusal::Conflict(_))));
    assert_eq!(count(db).await, 3, "refused invitations write nothing");

    // spec: RSP-550 — at most 200 invitations per account per calendar day.
    let many: Vec<NewMember> = (0..198)
        .map(|i| invitee(&format!("m{i}"), &format!("m{i}@example.com"), ""))
        .collect();
    assert!(
        s.invite_members(a, &many, T0 + 3, T0)
            .await
            .unwrap()
            .is_ok()
    );
    let over = s
        .invite_members(a, &[invitee("Z", "z@example.com", "")], T0 + 4, T0)
        .await
        .unwrap();
    assert!(
        matches!(over, Err(Refusal::Invalid(ref m)) if m.contains("200")),
        "{over:?}"
    );
    // The next day (a later day start) has a fresh budget.
    assert!(
        s.invite_members(
            a,
            &[invitee("Z", "z@example.com", "")],
            T0 + 86_400_000,
            T0 + 86_400_000
        )
        .await
        .unwrap()
        .is_ok()
    );

    // List: query on name, email and phone; role filter; paging; deleted never listed.
    let all = s.list_members(a, &members_all()).await.unwrap();
    assert_eq!(all.total, 202);
    let q = |text: &str| MemberFilter {
        query: Some(text.into()),
        ..members_all()
    };
    let found = s.list_members(a, &q("ANN@")).await.unwrap();
    assert_eq!(
        (found.total, found.items[0].member_id),
        (1, invited[0].member_id)
    );
    let found = s.list_members(a, &q("138001")).await.unwrap();
    assert_eq!(
        (found.total, found.items[0].member_id),
        (1, invited[1].member_id)
    );
    let found = s.list_members(a, &q("m19")).await.unwrap();
    assert_eq!(found.total, 9, "m19 and m190..m197");
    let admins = MemberFilter {
        role_id: Some(2),
        asc: true,
        ..members_all()
    };
    let admins: Vec<i64> = s
        .list_members(a, &admins)
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.member_id)
        .collect();
    assert_eq!(admins, vec![b.owner_member_id, invited[1].member_id]);
    let responders = MemberFilter {
        role_id: Some(6),
        ..members_all()
    };
    assert_eq!(s.list_members(a, &responders).await.unwrap().total, 1);
    let page = MemberFilter {
        p: 3,
        limit: 100,
        ..members_all()
    };
    let page = s.list_members(a, &page).await.unwrap();
    assert_eq!((page.items.len(), page.has_next_page), (2, false));
    let first = MemberFilter {
        asc: true,
        limit: 1,
        ..members_all()
    };
    let first = s.list_members(a, &first).await.unwrap();
    assert_eq!(first.items[0].member_id, b.owner_member_id);
    assert!(first.has_next_page);
}

// spec: RSP-553, RSP-523, RSP-611, openapi-compat 2.10 (/member/delete, /member/info/reset)
async fn directory_member_delete_and_reset(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    let ids = invite(
        db,
        a,
        &[
            ("Ann", "ann@example.com", "+14155550100"),
            ("Twin", "twin1@example.com", ""),
            ("Twin", "twin2@example.com", ""),
        ],
        T0,
    )
    .await;
    let (ann, twin1) = (ids[0], ids[1]);
    let ops = s
        .upsert_team(a, b.owner_member_id, &team("Ops", Some(ids.clone())), T0)
        .await
        .unwrap()
        .unwrap();
    // spec: RSP-610 — at most 5 APP keys per member.
    for i in 0..5 {
        let key = if i == 0 {
            "annkey".to_string()
        } else {
            format!("annkey{i}")
        };
        s.add_app_key(a, ann, "k", &key, T0).await.unwrap().unwrap();
    }
    assert!(matches!(
        s.add_app_key(a, ann, "k", "annkey6", T0).await.unwrap(),
        Err(Refusal::Invalid(ref m)) if m.contains('5')
    ));
    assert!(s.app_key("annkey6").await.unwrap().is_none());
    assert!(matches!(
        s.add_app_key(a, 999_999, "k", "ghostkey", T0)
            .await
            .unwrap(),
        Err(Refusal::NotFound(_))
    ));
    assert!(s.app_key("annkey").await.unwrap().is_some());

    // Lookups: by id, email (case-insensitive), phone, ref_id; an ambiguous name is refused.
    let by_email = s
        .find_member(a, &MemberKey::Email("ANN@example.com".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.member_id, ann);
    let by_phone = s
        .find_member(a, &MemberKey::Phone("+14155550100".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_phone.member_id, ann);
    let twins = s
        .find_member(a, &MemberKey::Name("Twin".into()))
        .await
        .unwrap();
    assert!(matches!(twins, Err(Refusal::Invalid(ref m)) if m.starts_with("member_name")));
    assert!(matches!(
        s.find_member(a, &MemberKey::Id(999_999)).await.unwrap(),
        Err(Refusal::NotFound(ref m)) if m.starts_with("member_id")
    ));

    // Reset: name, email (unverified again), phone, locale, time zone, ref_id.
    let update = MemberUpdate {
        member_name: Some("Twin One".into()),
        email: Some("one@example.com".into()),
        phone: Some(("+14155550199".into(), "US".into())),
        locale: Some("zh-CN".into()),
        time_zone: Some("Asia/Shanghai".into()),
        ref_id: Some("hr-1".into()),
    };
    let one = s
        .reset_member(a, &MemberKey::Id(twin1), &update, T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            one.member_name.as_str(),
            one.email.as_str(),
            one.phone.as_str(),
            one.country_code.as_str(),
            one.locale.as_str(),
            one.time_zone.as_str(),
            one.ref_id.as_str(),
            one.updated_at
        ),
        (
            "Twin One",
            "one@example.com",
            "+14155550199",
            "US",
            "zh-CN",
            "Asia/Shanghai",
            "hr-1",
            T0 + 5
        )
    );
    assert_eq!(
        s.find_member(a, &MemberKey::RefId("hr-1".into()))
            .await
            .unwrap()
            .unwrap()
            .member_id,
        twin1
    );
    // spec: RSP-552 — the new email or phone must not be another member's.
    let steal = MemberUpdate {
        email: Some("ANN@example.com".into()),
        ..MemberUpdate::default()
    };
    assert!(matches!(
        s.reset_member(a, &MemberKey::Id(twin1), &steal, T0 + 6).await.unwrap(),
        Err(Refusal::Conflict(ref m)) if m.starts_with("updates.email")
    ));
    let steal = MemberUpdate {
        phone: Some(("+14155550100".into(), String::new())),
        ..MemberUpdate::default()
    };
    assert!(matches!(
        s.reset_member(a, &MemberKey::Id(twin1), &steal, T0 + 6).await.unwrap(),
        Err(Refusal::Conflict(ref m)) if m.starts_with("updates.phone")
    ));
    assert_eq!(
        s.persons(a, &[twin1]).await.unwrap()[0].email,
        "one@example.com",
        "a refused reset changes nothing"
    );

    // spec: RSP-523 — the owner cannot be deleted.
    assert!(matches!(
        s.delete_member(a, &MemberKey::Id(b.owner_member_id), T0)
            .await
            .unwrap(),
        Err(Refusal::Precondition(_))
    ));

    // spec: RSP-553 — deleted: status, out of teams, APP keys revoked at once (RSP-611).
    let gone = s
        .delete_member(a, &MemberKey::Email("ann@example.com".into()), T0 + 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((gone.member_id, gone.status.as_str()), (ann, "deleted"));
    for key in ["annkey", "annkey1", "annkey4"] {
        assert!(s.app_key(key).await.unwrap().is_none(), "{key}");
    }
    assert!(
        s.add_app_key(a, ann, "k", "late", T0 + 8)
            .await
            .unwrap()
            .is_err()
    );
    let team_now = s.team(a, &TeamKey::Id(ops.team_id)).await.unwrap().unwrap();
    assert!(!team_now.person_ids.contains(&ann));
    assert_eq!(team_now.person_ids.len(), 2);
    // Deleted members are not listed, not found, not deletable twice, not addable to teams...
    let listed: Vec<i64> = s
        .list_members(a, &members_all())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.member_id)
        .collect();
    assert!(!listed.contains(&ann));
    assert!(matches!(
        s.delete_member(a, &MemberKey::Id(ann), T0 + 8)
            .await
            .unwrap(),
        Err(Refusal::NotFound(_))
    ));
    let w = TeamWrite {
        team_id: ops.team_id,
        ..team("Ops", Some(vec![ann]))
    };
    assert!(matches!(
        s.upsert_team(a, b.owner_member_id, &w, T0 + 8)
            .await
            .unwrap(),
        Err(Refusal::NotFound(_))
    ));
    // ...but still resolve by id for history (shown by name), and their address may be
    // invited again as a new member.
    let brief = s.members_status(a, &[ann]).await.unwrap();
    assert_eq!(brief[&ann].status, "deleted");
    assert_eq!(brief[&ann].member_name, "Ann");
    let back = invite(db, a, &[("Ann", "ann@example.com", "+14155550100")], T0 + 9).await;
    assert_ne!(back[0], ann);
    // With one Twin renamed, the name now addresses exactly one member.
    let twin2 = s
        .find_member(a, &MemberKey::Name("Twin".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(twin2.member_id, ids[2]);
}

// spec: RSP-152, RSP-551 (the escalation-facing lookups: team members and member status)
async fn directory_team_members_and_status(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    let ids = invite(
        db,
        a,
        &[
            ("Ann", "ann@example.com", ""),
            ("Bob", "bob@example.com", ""),
        ],
        T0,
    )
    .await;
    let t1 = s
        .upsert_team(
            a,
            b.owner_member_id,
            &team("T1", Some(vec![ids[1], b.owner_member_id, ids[0]])),
            T0,
        )
        .await
        .unwrap()
        .unwrap();
    let t2 = s
        .upsert_team(a, b.owner_member_id, &team("T2", None), T0)
        .await
        .unwrap()
        .unwrap();
    let map = s
        .team_members(a, &[t2.team_id, t1.team_id, 777_777, t1.team_id])
        .await
        .unwrap();
    let mut expected = vec![b.owner_member_id, ids[0], ids[1]];
    expected.sort_unstable();
    assert_eq!(map.len(), 2, "unknown teams are absent");
    assert_eq!(map[&t1.team_id], expected);
    assert!(map[&t2.team_id].is_empty());
    assert!(s.team_members(a, &[]).await.unwrap().is_empty());
    // Lookups over more ids than one IN list binds (RSP-556: teams are unbounded).
    let many: Vec<i64> = (1..=1_200).collect();
    assert_eq!(s.team_members(a, &many).await.unwrap().len(), 2);
    assert_eq!(s.teams(a, &many).await.unwrap().len(), 2);
    assert_eq!(s.persons(a, &many).await.unwrap().len(), 3);
    let w = TeamWrite {
        team_id: t2.team_id,
        ..team("T2", Some(many.clone()))
    };
    assert!(matches!(
        s.upsert_team(a, b.owner_member_id, &w, T0).await.unwrap(),
        Err(Refusal::NotFound(ref m)) if m.starts_with("person_ids")
    ));

    let status = s
        .members_status(a, &[b.owner_member_id, ids[0], 888_888])
        .await
        .unwrap();
    assert_eq!(status.len(), 2);
    assert_eq!(status[&b.owner_member_id].status, "enabled");
    assert_eq!(status[&ids[0]].status, "pending");
    assert_eq!(status[&ids[0]].email, "ann@example.com");
}

// spec: DESIGN.md principle 6 (tenancy in the store) for members and teams
async fn directory_tenant_isolation(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let other = other_account(db).await;
    assert!(other.created);
    assert_ne!(other.account_id, b.account_id);
    assert_ne!(other.app_key, b.app_key);
    assert_eq!(
        db.store
            .app_key(&other.app_key)
            .await
            .unwrap()
            .unwrap()
            .account_id,
        other.account_id
    );
    // The bootstrap still reports the first account.
    assert_eq!(
        db.store.bootstrap(&seed(), T0).await.unwrap().account_id,
        b.account_id
    );
    let s = &db.store;
    let (a, o) = (b.account_id, other.account_id);
    let mine = invite(db, a, &[("Ann", "ann@example.com", "+14155550100")], T0).await[0];
    // The same address may be a member of another account (RSP-552).
    let theirs = invite(db, o, &[("Ann", "ann@example.com", "+14155550100")], T0).await[0];
    let my_team = s
        .upsert_team(a, b.owner_member_id, &team("Ops", Some(vec![mine])), T0)
        .await
        .unwrap()
        .unwrap();
    // Team names are unique per account only.
    let their_team = s
        .upsert_team(
            o,
            other.owner_member_id,
            &team("Ops", Some(vec![theirs])),
            T0,
        )
        .await
        .unwrap()
        .unwrap();

    // Reads see nothing of the other account, even by explicit id.
    assert!(
        s.team(o, &TeamKey::Id(my_team.team_id))
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.teams(o, &[my_team.team_id]).await.unwrap().is_empty());
    assert!(
        s.team_members(o, &[my_team.team_id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.persons(o, &[mine]).await.unwrap().is_empty());
    assert!(s.members_status(o, &[mine]).await.unwrap().is_empty());
    let listed = s.list_teams(o, &teams_all()).await.unwrap();
    assert_eq!(
        (listed.total, listed.items[0].team_id),
        (1, their_team.team_id)
    );
    let f = TeamFilter {
        person_id: Some(mine),
        ..teams_all()
    };
    assert_eq!(s.list_teams(o, &f).await.unwrap().total, 0);
    assert_eq!(s.list_members(o, &members_all()).await.unwrap().total, 2);
    assert!(matches!(
        s.find_member(o, &MemberKey::Id(mine)).await.unwrap(),
        Err(Refusal::NotFound(_))
    ));

    // Writes through the other account refuse the first account's ids and change nothing.
    let hijack = TeamWrite {
        team_id: my_team.team_id,
        ..team("Hijacked", None)
    };
    assert!(matches!(
        s.upsert_team(o, other.owner_member_id, &hijack, T0)
            .await
            .unwrap(),
        Err(Refusal::NotFound(_))
    ));
    let poach = team("Poach", Some(vec![mine]));
    assert!(matches!(
        s.upsert_team(o, other.owner_member_id, &poach, T0)
            .await
            .unwrap(),
        Err(Refusal::NotFound(_))
    ));
    assert!(matches!(
        s.delete_team(o, &TeamKey::Id(my_team.team_id))
            .await
            .unwrap(),
        Err(Refusal::NotFound(_))
    ));
    assert!(matches!(
        s.delete_member(o, &MemberKey::Id(mine), T0).await.unwrap(),
        Err(Refusal::NotFound(_))
    ));
    let rename = MemberUpdate {
        member_name: Some("Hijacked".into()),
        ..MemberUpdate::default()
    };
    assert!(matches!(
        s.reset_member(o, &MemberKey::Id(mine), &rename, T0)
            .await
            .unwrap(),
        Err(Refusal::NotFound(_))
    ));
    let still = s
        .team(a, &TeamKey::Id(my_team.team_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (still.team_name.as_str(), still.person_ids.clone()),
        ("Ops", vec![mine])
    );
    let me = s.persons(a, &[mine]).await.unwrap().remove(0);
    assert_eq!(
        (me.member_name.as_str(), me.status.as_str()),
        ("Ann", "pending")
    );
    // Deleting their Ann leaves mine alone.
    s.delete_member(o, &MemberKey::Id(theirs), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.persons(a, &[mine]).await.unwrap()[0].status, "pending");
    assert_eq!(
        s.list_teams(o, &teams_all()).await.unwrap().items[0].person_ids,
        Vec::<i64>::new()
    );
}

// spec: RSP §1.4, RSP-552 — concurrent requests cannot create two teams of one name or two
// members with one email: exactly one wins, the others get a conflict.
async fn directory_concurrent_uniqueness(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let a = b.account_id;
    let mut teams = Vec::new();
    let mut invites = Vec::new();
    for i in 0..4 {
        let s = db.store.clone();
        teams.push(tokio::spawn(async move {
            s.upsert_team(a, 1, &team("Race", None), T0 + i)
                .await
                .unwrap()
        }));
        let s = db.store.clone();
        invites.push(tokio::spawn(async move {
            // The same address, spelled in different cases.
            let email = if i % 2 == 0 {
                "race@x.example"
            } else {
                "RACE@x.example"
            };
            let who = invitee(&format!("R{i}"), email, "");
            s.invite_members(a, &[who], T0 + i, 0).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in teams {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(Refusal::Conflict(m)) => assert!(m.starts_with("team_name"), "{m}"),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);
    let mut won = 0;
    for t in invites {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(Refusal::Conflict(m)) => assert!(m.starts_with("members[0]"), "{m}"),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(db.store.list_teams(a, &teams_all()).await.unwrap().total, 1);
    assert_eq!(
        db.store
            .list_members(a, &members_all())
            .await
            .unwrap()
            .total,
        2
    );
}

// spec: RSP-553, RSP-226, RSP-554 — deletions reach into schedules: a deleted member leaves
// every group from that moment (the past keeps them), a deleted team stops managing schedules.
async fn directory_deletions_reach_schedules(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    let ids = invite(
        db,
        a,
        &[
            ("Ann", "ann@example.com", ""),
            ("Bob", "bob@example.com", ""),
        ],
        T0,
    )
    .await;
    let (ann, bob) = (ids[0], ids[1]);
    let ops = s
        .upsert_team(a, b.owner_member_id, &team("Ops", Some(vec![ann, bob])), T0)
        .await
        .unwrap()
        .unwrap();
    let mut with_ann = weekly_schedule("Primary", &[ann, bob], T0);
    with_ann.team_id = ops.team_id;
    let primary = s.create_schedule(a, &with_ann).await.unwrap().unwrap();
    let without = s
        .create_schedule(a, &weekly_schedule("Other", &[bob], T0))
        .await
        .unwrap()
        .unwrap();
    let groups = |sched: &klaxon_core::schedule::Schedule| -> Vec<Vec<i64>> {
        sched.layers[0]
            .groups
            .iter()
            .map(|g| g.members.iter().map(|m| m.person_id).collect())
            .collect()
    };

    let at = T0 + 3 * 86_400_000;
    s.delete_member(a, &MemberKey::Id(ann), at)
        .await
        .unwrap()
        .unwrap();
    let p = s.schedule(a, primary).await.unwrap().unwrap();
    // Ann's group stays, empty (OQ-48); the change is an edit at `at` with the past kept.
    assert_eq!(groups(&p), vec![vec![], vec![bob]]);
    assert_eq!(p.updated_at, at);
    assert_eq!(p.history.len(), 1);
    assert_eq!(p.history[0].layers[0].groups[0].members[0].person_id, ann);
    // A schedule Ann was not in is untouched.
    let o = s.schedule(a, without).await.unwrap().unwrap();
    assert_eq!((o.updated_at, o.history.len()), (T0, 0));

    assert_eq!(p.team_id, ops.team_id);
    s.delete_team(a, &TeamKey::Id(ops.team_id))
        .await
        .unwrap()
        .unwrap();
    let p = s.schedule(a, primary).await.unwrap().unwrap();
    assert_eq!(p.team_id, 0);
    assert_eq!(
        groups(&p),
        vec![vec![], vec![bob]],
        "the team's deletion edits nothing else"
    );
}

// ---------------------------------------------------------------------------------------------
// Service calendars (calendars.rs)
// ---------------------------------------------------------------------------------------------

fn calendar(cal_id: &str, name: &str, team_id: i64) -> klaxon_core::schedule::ServiceCalendar {
    serde_json::from_value(serde_json::json!({
        "cal_id": cal_id,
        "cal_name": name,
        "team_id": team_id,
        "timezone": "Asia/Shanghai",
        "workdays": [1, 2, 3, 4, 5],
        "date_overrides": {"2025-10-11": "workday"},
        "creator_id": 1,
    }))
    .unwrap()
}

fn holidays(id: &str, entries: &[(&str, &str)]) -> klaxon_core::schedule::HolidaySet {
    let map: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(d, m)| (d.to_string(), serde_json::json!(m)))
        .collect();
    serde_json::from_value(serde_json::json!({"id": id, "name": id.to_uppercase(), "entries": map}))
        .unwrap()
}

fn cals_all() -> klaxon_store::CalendarFilter {
    klaxon_store::CalendarFilter {
        p: 1,
        limit: 100,
        ..klaxon_store::CalendarFilter::default()
    }
}

const CAL1: &str = "65000000aaaaaaaaaaaaaaa1";
const CAL2: &str = "65000001aaaaaaaaaaaaaaa2";

// spec: RSP-270, RSP-272, RSP-554 (response.md §1.14; store side of /calendar/*)
async fn calendars_crud_list_and_holiday_sets(db: &Db) {
    use klaxon_core::schedule::{DayType, day_type};
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    let ops = s
        .upsert_team(a, b.owner_member_id, &team("Ops", None), T0)
        .await
        .unwrap()
        .unwrap();

    s.create_calendar(a, &calendar(CAL1, "Trading days", 0), T0)
        .await
        .unwrap();
    s.create_calendar(a, &calendar(CAL2, "Payments", ops.team_id), T0)
        .await
        .unwrap();
    let got = s.calendar(a, CAL1).await.unwrap().unwrap();
    assert_eq!(got, calendar(CAL1, "Trading days", 0));
    assert!(
        s.calendar(a, "65000002aaaaaaaaaaaaaaa3")
            .await
            .unwrap()
            .is_none()
    );

    // Newest first; name substring; team filter; paging.
    let all = s.list_calendars(a, &cals_all()).await.unwrap();
    let ids: Vec<&str> = all.items.iter().map(|c| c.cal_id.as_str()).collect();
    assert_eq!((all.total, ids), (2, vec![CAL2, CAL1]));
    let q = klaxon_store::CalendarFilter {
        query: Some("TRADING".into()),
        ..cals_all()
    };
    assert_eq!(s.list_calendars(a, &q).await.unwrap().items[0].cal_id, CAL1);
    let by_team = klaxon_store::CalendarFilter {
        team_ids: vec![ops.team_id],
        ..cals_all()
    };
    let found = s.list_calendars(a, &by_team).await.unwrap();
    assert_eq!((found.total, found.items[0].cal_id.as_str()), (1, CAL2));
    let page = klaxon_store::CalendarFilter {
        p: 2,
        limit: 1,
        ..klaxon_store::CalendarFilter::default()
    };
    let page2 = s.list_calendars(a, &page).await.unwrap();
    assert_eq!(
        (page2.items[0].cal_id.as_str(), page2.has_next_page),
        (CAL1, false)
    );

    // Holiday sets: loading twice replaces; a linked set cannot be removed.
    let cn = holidays(
        "cn.official",
        &[("2025-10-01", "holiday"), ("2025-09-28", "workday")],
    );
    assert!(s.put_holiday_set(a, &cn, T0).await.unwrap());
    let cn2 = holidays(
        "cn.official",
        &[
            ("2025-10-01", "holiday"),
            ("2025-10-02", "holiday"),
            ("2025-09-28", "workday"),
        ],
    );
    assert!(!s.put_holiday_set(a, &cn2, T0 + 1).await.unwrap());
    assert!(
        s.put_holiday_set(a, &holidays("spare", &[("2025-01-01", "holiday")]), T0)
            .await
            .unwrap()
    );
    let sets = s.holiday_sets(a).await.unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0], cn2);

    // RSP-272: an edit applies to every later read.
    let mut cal = got.clone();
    cal.extra_cal_ids = vec!["cn.official".into()];
    cal.cal_name = "Trading days (CN)".into();
    assert!(s.update_calendar(a, &cal, T0 + 2).await.unwrap());
    let mut ghost = cal.clone();
    ghost.cal_id = "65000002aaaaaaaaaaaaaaa3".into();
    assert!(!s.update_calendar(a, &ghost, T0 + 2).await.unwrap());
    let loaded = s.account_calendars(a).await.unwrap();
    assert_eq!(loaded.calendars.len(), 2);
    let view = loaded.view();
    let c = view.get(CAL1).unwrap();
    assert_eq!(c.cal_name, "Trading days (CN)");
    let d = |y, m, dd| jiff::civil::date(y, m, dd);
    // spec: RSP-270 — holiday set, adjusted working Sunday, manual mark, weekdays.
    assert_eq!(
        day_type(c, &loaded.holiday_sets, d(2025, 10, 2)),
        DayType::Restday
    );
    assert_eq!(
        day_type(c, &loaded.holiday_sets, d(2025, 9, 28)),
        DayType::Workday
    );
    assert_eq!(
        day_type(c, &loaded.holiday_sets, d(2025, 10, 11)),
        DayType::Workday
    );
    assert_eq!(
        day_type(c, &loaded.holiday_sets, d(2025, 10, 12)),
        DayType::Restday
    );

    let refused = s
        .delete_holiday_set(a, "cn.official")
        .await
        .unwrap()
        .unwrap_err();
    assert!(refused[0].contains(CAL1), "{refused:?}");
    assert_eq!(s.holiday_sets(a).await.unwrap().len(), 2);
    assert_eq!(s.delete_holiday_set(a, "spare").await.unwrap(), Ok(true));
    assert_eq!(s.delete_holiday_set(a, "spare").await.unwrap(), Ok(false));

    // spec: RSP-554 — a deleted team leaves its calendars unmanaged.
    s.delete_team(a, &TeamKey::Id(ops.team_id))
        .await
        .unwrap()
        .unwrap();
    let c2 = s.calendar(a, CAL2).await.unwrap().unwrap();
    assert_eq!(c2.team_id, 0);
    assert_eq!(s.list_calendars(a, &by_team).await.unwrap().total, 0);

    assert_eq!(s.delete_calendar(a, CAL2).await.unwrap(), Ok(true));
    assert_eq!(s.delete_calendar(a, CAL2).await.unwrap(), Ok(false));
    assert!(s.calendar(a, CAL2).await.unwrap().is_none());
}

// DESIGN.md principle 6: one account never sees, changes or deletes another's calendars.
async fn calendars_tenant_isolation(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let other = other_account(db).await;
    let s = &db.store;
    s.create_calendar(b.account_id, &calendar(CAL1, "Mine", 0), T0)
        .await
        .unwrap();
    s.put_holiday_set(
        b.account_id,
        &holidays("cn", &[("2025-10-01", "holiday")]),
        T0,
    )
    .await
    .unwrap();
    let o = other.account_id;
    assert!(s.calendar(o, CAL1).await.unwrap().is_none());
    assert_eq!(s.list_calendars(o, &cals_all()).await.unwrap().total, 0);
    assert!(
        !s.update_calendar(o, &calendar(CAL1, "Stolen", 0), T0)
            .await
            .unwrap()
    );
    assert_eq!(s.delete_calendar(o, CAL1).await.unwrap(), Ok(false));
    assert!(s.holiday_sets(o).await.unwrap().is_empty());
    assert_eq!(s.delete_holiday_set(o, "cn").await.unwrap(), Ok(false));
    let theirs = s.account_calendars(o).await.unwrap();
    assert!(theirs.calendars.is_empty() && theirs.holiday_sets.is_empty());
    assert_eq!(
        s.calendar(b.account_id, CAL1)
            .await
            .unwrap()
            .unwrap()
            .cal_name,
        "Mine"
    );
}

fn escalation_rule(
    b: &Bootstrap,
    name: &str,
    schedule_id: Option<i64>,
    cal_id: Option<&str>,
) -> klaxon_core::response::EscalationRule {
    let target = match schedule_id {
        Some(id) => serde_json::json!({"schedule_to_role_ids": {id.to_string(): []}}),
        None => serde_json::json!({"person_ids": [b.owner_member_id]}),
    };
    let time_filters = match cal_id {
        Some(c) => serde_json::json!([{"start": "09:00", "end": "18:00", "cal_id": c}]),
        None => serde_json::json!([]),
    };
    serde_json::from_value(serde_json::json!({
        "account_id": b.account_id,
        "channel_id": b.channel_id,
        "rule_name": name,
        "priority": -1,
        "time_filters": time_filters,
        "layers": [{"target": target}],
    }))
    .unwrap()
}

// spec: RSP-234, RSP-273 — a referenced schedule or calendar cannot be deleted; the refusal
// names the referrers and changes nothing
async fn calendar_and_schedule_references(db: &Db) {
    use klaxon_core::schedule::{CalendarMask, DayType};
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    s.create_calendar(a, &calendar(CAL1, "Trading days", 0), T0)
        .await
        .unwrap();
    let loaded = s.account_calendars(a).await.unwrap();
    let mut masked = weekly_schedule("Trading desk", &[b.owner_member_id], T0);
    masked.layers[0].calendar_mask = Some(CalendarMask {
        cal_id: CAL1.into(),
        day_type: DayType::Workday,
    });
    let masked = klaxon_core::schedule::create_schedule(masked, T0, loaded.view()).unwrap();
    let desk = s.create_schedule(a, &masked).await.unwrap().unwrap();
    let plain = s
        .create_schedule(a, &weekly_schedule("Plain", &[b.owner_member_id], T0))
        .await
        .unwrap()
        .unwrap();

    // spec: RSP-273 — the schedule mask holds the calendar.
    let refused = s.delete_calendar(a, CAL1).await.unwrap().unwrap_err();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("Trading desk"), "{refused:?}");
    assert!(s.calendar(a, CAL1).await.unwrap().is_some());

    // Escalation rules: one targets the desk schedule, one filters time by the calendar.
    let targets = s
        .save_escalation_rule(escalation_rule(&b, "Page the desk", Some(desk), None), T0)
        .await
        .unwrap()
        .unwrap();
    let filters = s
        .save_escalation_rule(escalation_rule(&b, "Office hours", None, Some(CAL1)), T0)
        .await
        .unwrap()
        .unwrap();

    // spec: RSP-234 — the targeted schedule stays; the other one may go.
    let refused = s
        .delete_schedules_unreferenced(a, &[plain, desk], T0 + 1)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("Page the desk"), "{refused:?}");
    assert!(refused[0].contains(&targets.rule_id), "{refused:?}");
    assert!(
        s.schedule(a, plain).await.unwrap().is_some(),
        "nothing deleted"
    );
    assert_eq!(s.schedule_referrers(a, &[desk]).await.unwrap(), refused);
    assert!(s.schedule_referrers(a, &[plain]).await.unwrap().is_empty());
    assert_eq!(
        s.delete_schedules_unreferenced(a, &[plain], T0 + 1)
            .await
            .unwrap(),
        Ok(1)
    );

    let refs = s.calendar_referrers(a, CAL1).await.unwrap();
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert!(refs[1].contains("Office hours"), "{refs:?}");

    // Remove the referrers one by one.
    assert!(
        s.delete_escalation_rule(a, b.channel_id, &targets.rule_id)
            .await
            .unwrap()
    );
    assert_eq!(
        s.delete_schedules_unreferenced(a, &[desk], T0 + 2)
            .await
            .unwrap(),
        Ok(1)
    );
    // A deleted schedule no longer holds the calendar; the rule's time filter still does.
    let refused = s.delete_calendar(a, CAL1).await.unwrap().unwrap_err();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("Office hours"), "{refused:?}");
    assert!(
        s.delete_escalation_rule(a, b.channel_id, &filters.rule_id)
            .await
            .unwrap()
    );
    assert_eq!(s.delete_calendar(a, CAL1).await.unwrap(), Ok(true));
}

// feature: iCalendar feed, per member — a token names one member; rotating retires the old one.
async fn member_feed_tokens(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let other = other_account(db).await;
    let s = &db.store;
    let (t1, t2, t3) = (random_hex(16), random_hex(16), random_hex(16));
    s.set_member_feed_token(b.account_id, b.owner_member_id, &t1)
        .await
        .unwrap();
    s.set_member_feed_token(other.account_id, other.owner_member_id, &t3)
        .await
        .unwrap();
    assert_eq!(
        s.member_by_feed_token(&t1).await.unwrap(),
        Some((b.account_id, b.owner_member_id))
    );
    s.set_member_feed_token(b.account_id, b.owner_member_id, &t2)
        .await
        .unwrap();
    assert_eq!(s.member_by_feed_token(&t1).await.unwrap(), None);
    assert_eq!(
        s.member_by_feed_token(&t2).await.unwrap(),
        Some((b.account_id, b.owner_member_id))
    );
    assert_eq!(
        s.member_by_feed_token(&t3).await.unwrap(),
        Some((other.account_id, other.owner_member_id))
    );
    assert_eq!(s.member_by_feed_token("").await.unwrap(), None);
}

// openapi-compat.md 2.8 `/schedule/list` `team_ids`; RSP-554 keeps the column in step.
async fn schedules_team_filter(db: &Db) {
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let s = &db.store;
    let a = b.account_id;
    let ops = s
        .upsert_team(a, b.owner_member_id, &team("Ops", None), T0)
        .await
        .unwrap()
        .unwrap();
    let mut managed = weekly_schedule("Managed", &[b.owner_member_id], T0);
    managed.team_id = ops.team_id;
    let id = s.create_schedule(a, &managed).await.unwrap().unwrap();
    s.create_schedule(a, &weekly_schedule("Loose", &[b.owner_member_id], T0))
        .await
        .unwrap()
        .unwrap();
    let by_team = ScheduleFilter {
        team_ids: vec![ops.team_id],
        ..schedules_all()
    };
    let found = s.list_schedules(a, &by_team).await.unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.items[0].schedule_id, id);
    // An update that drops the team moves it out of the filter.
    let mut edited = found.items[0].clone();
    edited.team_id = 0;
    assert_eq!(s.update_schedule(a, &edited).await.unwrap(), Ok(()));
    assert_eq!(s.list_schedules(a, &by_team).await.unwrap().total, 0);
    edited.team_id = ops.team_id;
    assert_eq!(s.update_schedule(a, &edited).await.unwrap(), Ok(()));
    assert_eq!(s.list_schedules(a, &by_team).await.unwrap().total, 1);
    // spec: RSP-554 — deleting the team clears it, in the filter column too.
    s.delete_team(a, &TeamKey::Id(ops.team_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.list_schedules(a, &by_team).await.unwrap().total, 0);
    assert_eq!(s.schedule(a, id).await.unwrap().unwrap().team_id, 0);
}
