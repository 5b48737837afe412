//! Route versions and routing in the processing batch (ingest.md §2.8): the optimistic lock
//! under concurrent saves, history and rollback (ING-095), and a batch whose recovery follows
//! a trigger routed earlier in the same batch (ING-093). SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use std::collections::BTreeMap;

use harness::{Db, random_hex};

use klaxon_core::condition::Condition;
use klaxon_core::model::{EventOrigin, Millis, NewEvent, Status};
use klaxon_core::routing::{RouteConfig, RouteFlow, RouteRule};
use klaxon_store::{Bootstrap, BootstrapSeed, NewIntegration, OutcomeFilter, Paging, RouteRefusal};

const T0: Millis = 1_750_000_000_000;
const A: i64 = 9001;
const D: i64 = 9004;

both!(
    concurrent_saves_on_one_version_commit_once,
    history_keeps_every_version_and_rollback_copies,
    a_recovery_follows_its_trigger_routed_in_the_same_batch,
);

async fn boot(db: &Db) -> Bootstrap {
    let b = db
        .store
        .bootstrap(
            &BootstrapSeed {
                account_name: "Acme".into(),
                owner_email: "owner@example.com".into(),
                owner_name: "Owner".into(),
                owner_password: "correct horse battery staple".into(),
                app_key: random_hex(16),
                integration_key: random_hex(16),
            },
            T0,
        )
        .await
        .unwrap();
    for (id, name) in [(A, "A"), (D, "D")] {
        db.exec(&format!(
            "INSERT INTO channels (channel_id, account_id, channel_name, created_at, updated_at) \
             VALUES ({id}, {}, '{name}', {T0}, {T0})",
            b.account_id
        ))
        .await;
    }
    b
}

async fn shared(db: &Db, b: &Bootstrap, defaults: &[i64]) -> i64 {
    let new = NewIntegration {
        integration_name: "shared".into(),
        integration_type: "standard".into(),
        kind: "shared".into(),
        channel_id: 0,
        integration_key: random_hex(16),
        enabled: true,
        settings: "{}".into(),
        now: T0,
    };
    db.store
        .create_shared_integration(b.account_id, &new, defaults, b.owner_member_id)
        .await
        .unwrap()
}

fn critical_to(channel: i64) -> RouteConfig {
    RouteConfig {
        rules: vec![RouteRule {
            id: "crit".into(),
            conditions: vec![vec![Condition::is_in("severity", ["Critical"])]],
            channel_ids: vec![channel],
            flow: RouteFlow::Stop,
            ..RouteRule::default()
        }],
        default_channel_ids: vec![D],
        ..RouteConfig::default()
    }
}

async fn concurrent_saves_on_one_version_commit_once(db: &Db) {
    // spec: ING-095 — two editors based on version 1: one wins, the other is refused.
    let b = boot(db).await;
    let id = shared(db, &b, &[D]).await;
    let first = db
        .store
        .route_version(b.account_id, id, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.config.version, 1);
    assert_eq!(first.config.default_channel_ids, vec![D]);
    assert_eq!(first.config.updated_by, b.owner_member_id);

    let one = critical_to(A);
    let two = RouteConfig::default();
    let (x, y) = tokio::join!(
        db.store
            .save_routes(b.account_id, id, 1, &one, b.owner_member_id, T0 + 1),
        db.store
            .save_routes(b.account_id, id, 1, &two, b.owner_member_id, T0 + 1),
    );
    let results = [x.unwrap(), y.unwrap()];
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert_eq!(won[0].config.version, 2);
    assert!(results.iter().any(|r| matches!(
        r,
        Err(RouteRefusal::Conflict {
            based_on: 1,
            latest: 2
        })
    )));
    // A save based on an old version is refused and writes nothing.
    let stale = db
        .store
        .save_routes(b.account_id, id, 1, &one, b.owner_member_id, T0 + 2)
        .await
        .unwrap();
    assert_eq!(
        stale,
        Err(RouteRefusal::Conflict {
            based_on: 1,
            latest: 2
        })
    );
    let (_, total) = db
        .store
        .route_history(b.account_id, id, 1, 10, false)
        .await
        .unwrap();
    assert_eq!(total, 2);
    // Routes belong to shared integrations of the account only.
    let refused = db
        .store
        .save_routes(
            b.account_id,
            b.integration_id,
            0,
            &one,
            b.owner_member_id,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(refused, Err(RouteRefusal::NoIntegration));
}

async fn history_keeps_every_version_and_rollback_copies(db: &Db) {
    // spec: ING-095 — at least 100 versions retained, newest first; rollback adds a copy.
    let b = boot(db).await;
    let id = shared(db, &b, &[D]).await;
    for v in 1..=104 {
        let config = if v % 2 == 0 {
            critical_to(A)
        } else {
            RouteConfig::default()
        };
        db.store
            .save_routes(b.account_id, id, v, &config, b.owner_member_id, T0 + v)
            .await
            .unwrap()
            .unwrap();
    }
    let (page, total) = db
        .store
        .route_history(b.account_id, id, 1, 3, false)
        .await
        .unwrap();
    assert_eq!(total, 105);
    let versions: Vec<i64> = page.iter().map(|v| v.config.version).collect();
    assert_eq!(versions, [105, 104, 103]);
    let oldest = db
        .store
        .route_version(b.account_id, id, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(oldest.config.default_channel_ids, vec![D]);

    let back = db
        .store
        .rollback_routes(b.account_id, id, 1, None, b.owner_member_id, T0 + 500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.config.version, 106);
    assert_eq!(back.rolled_back_from, 1);
    assert!(back.config.same_content(&oldest.config));
    let latest = db
        .store
        .route_version(b.account_id, id, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest, back);
    let missing = db
        .store
        .rollback_routes(b.account_id, id, 999, Some(106), b.owner_member_id, T0)
        .await
        .unwrap();
    assert_eq!(missing, Err(RouteRefusal::NoSuchVersion(999)));
    let stale = db
        .store
        .rollback_routes(b.account_id, id, 2, Some(105), b.owner_member_id, T0)
        .await
        .unwrap();
    assert_eq!(
        stale,
        Err(RouteRefusal::Conflict {
            based_on: 105,
            latest: 106
        })
    );
}

fn event(key: &str, status: Status) -> NewEvent {
    NewEvent {
        alert_key: key.into(),
        event_status: status,
        event_severity: status.severity(),
        title: format!("{key} problem"),
        title_rule: String::new(),
        description: String::new(),
        labels: BTreeMap::new(),
        images: Vec::new(),
        event_time: T0,
        raw: String::new(),
    }
}

async fn a_recovery_follows_its_trigger_routed_in_the_same_batch(db: &Db) {
    // spec: ING-093, ING-091, ING-094, ING-262 — the trigger goes to A by its severity; the
    // recovery (no severity) matches no rule and takes the default D, and also reaches A,
    // where the trigger of the same batch opened the alert. A Warning event has no rule and,
    // once the default route is empty, no target: `no_route` on channel 0.
    let b = boot(db).await;
    let id = shared(db, &b, &[D]).await;
    db.store
        .save_routes(b.account_id, id, 1, &critical_to(A), b.owner_member_id, T0)
        .await
        .unwrap()
        .unwrap();
    let origin = EventOrigin {
        request_id: random_hex(16),
        account_id: b.account_id,
        integration_id: id,
        integration_type: "standard".into(),
        integration_name: "shared".into(),
        channel_id: 0,
        received_at: T0,
    };
    let batch = vec![
        (origin.clone(), event("k", Status::Critical)),
        (origin.clone(), event("k", Status::Ok)),
    ];
    db.store.enqueue(batch).await.unwrap();
    assert_eq!(db.store.process_inbox("n", 100, T0 + 10).await.unwrap(), 2);

    let mut no_default = critical_to(A);
    no_default.default_channel_ids.clear();
    db.store
        .save_routes(b.account_id, id, 2, &no_default, b.owner_member_id, T0 + 20)
        .await
        .unwrap()
        .unwrap();
    let lost = EventOrigin {
        request_id: random_hex(16),
        ..origin.clone()
    };
    db.store
        .enqueue(vec![(lost.clone(), event("w", Status::Warning))])
        .await
        .unwrap();
    assert_eq!(db.store.process_inbox("n", 100, T0 + 30).await.unwrap(), 1);

    let f = OutcomeFilter {
        paging: Paging {
            p: 1,
            limit: 100,
            asc: true,
            search_after_ctx: None,
        },
        integration_ids: vec![id],
        ..OutcomeFilter::default()
    };
    let mut got: Vec<(String, String, i64, String)> = db
        .store
        .event_outcomes(b.account_id, &f)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| (o.request_id, o.event_status, o.channel_id, o.outcome))
        .collect();
    got.sort();
    let r = origin.request_id.clone();
    let mut want = vec![
        (
            r.clone(),
            "Critical".to_string(),
            A,
            "new_alert".to_string(),
        ),
        (r.clone(), "Ok".to_string(), A, "resolved".to_string()),
        (
            r.clone(),
            "Ok".to_string(),
            D,
            "ok_without_alert".to_string(),
        ),
        (
            lost.request_id,
            "Warning".to_string(),
            0,
            "no_route".to_string(),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
}
