//! The audit log store (migration 0021): append, newest-first paging with a cursor, filters,
//! and retention on write. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use klaxon_store::{AuditFilter, BootstrapSeed, NewAuditRecord};

both!(
    records_page_newest_first_and_filter,
    old_records_expire_on_write,
);

async fn account(db: &Db) -> (i64, i64) {
    let seed = BootstrapSeed {
        account_name: "T".into(),
        owner_email: format!("{}@example.com", random_hex(4)),
        owner_name: "Olga".into(),
        owner_password: "pw-123456".into(),
        app_key: random_hex(16),
        integration_key: random_hex(16),
    };
    let b = db.store.create_account(&seed, 1).await.unwrap();
    let owner = db
        .store
        .owner_member_id(b.account_id)
        .await
        .unwrap()
        .unwrap();
    (b.account_id, owner)
}

fn record(account_id: i64, member_id: i64, at: i64, op: &str, result: &str) -> NewAuditRecord {
    NewAuditRecord {
        account_id,
        request_id: format!("req-{at}"),
        created_at: at,
        member_id,
        app_key_id: 0,
        source: "api".into(),
        operation: op.into(),
        resource_type: "incident".into(),
        resource_id: "7".into(),
        ip: "192.0.2.1".into(),
        is_write: true,
        is_dangerous: op.ends_with("delete"),
        body: "{}".into(),
        result: result.into(),
    }
}

async fn records_page_newest_first_and_filter(db: &Db) {
    // spec: RSP-600
    // spec: RSP-602
    let (a, owner) = account(db).await;
    let (other, other_owner) = account(db).await;
    for at in 1..=5 {
        let op = if at == 3 {
            "team:write:delete"
        } else {
            "incident:write:ack"
        };
        let result = if at == 4 { "not_found" } else { "ok" };
        db.store
            .append_audit(&record(a, owner, at * 1000, op, result), 0)
            .await
            .unwrap();
    }
    db.store
        .append_audit(
            &record(other, other_owner, 2500, "incident:write:ack", "ok"),
            0,
        )
        .await
        .unwrap();
    let all = AuditFilter {
        start: 0,
        end: 10_000,
        limit: 2,
        ..Default::default()
    };
    let page = db.store.search_audit(a, &all).await.unwrap();
    assert_eq!(page.total, 5, "the other account's record is not counted");
    assert!(page.has_next);
    let times: Vec<i64> = page.records.iter().map(|r| r.created_at).collect();
    assert_eq!(times, vec![5000, 4000]);
    assert_eq!(
        page.records[0].member_name, "Olga",
        "the name is copied at write time"
    );
    assert_eq!(
        page.records[1].result, "not_found",
        "a failed call is kept with its category"
    );
    let last = page.records.last().unwrap();
    let next = AuditFilter {
        before: Some((last.created_at, last.seq)),
        ..all.clone()
    };
    let page2 = db.store.search_audit(a, &next).await.unwrap();
    let times: Vec<i64> = page2.records.iter().map(|r| r.created_at).collect();
    assert_eq!(times, vec![3000, 2000]);
    // Filters: operations, dangerous, request id, time range, member.
    let f = AuditFilter {
        operations: vec!["team:write:delete".into()],
        ..all.clone()
    };
    let p = db.store.search_audit(a, &f).await.unwrap();
    assert_eq!(p.total, 1);
    assert!(p.records[0].is_dangerous);
    let f = AuditFilter {
        is_dangerous: Some(false),
        ..all.clone()
    };
    assert_eq!(db.store.search_audit(a, &f).await.unwrap().total, 4);
    let f = AuditFilter {
        request_id: Some("req-2000".into()),
        ..all.clone()
    };
    assert_eq!(
        db.store.search_audit(a, &f).await.unwrap().records[0].created_at,
        2000
    );
    let f = AuditFilter {
        start: 2000,
        end: 3000,
        ..all.clone()
    };
    assert_eq!(db.store.search_audit(a, &f).await.unwrap().total, 2);
    let f = AuditFilter {
        member_id: Some(owner + 1000),
        ..all.clone()
    };
    assert_eq!(db.store.search_audit(a, &f).await.unwrap().total, 0);
}

async fn old_records_expire_on_write(db: &Db) {
    // spec: RSP-603
    let (a, owner) = account(db).await;
    db.store
        .append_audit(&record(a, owner, 1_000, "team:write:create", "ok"), 0)
        .await
        .unwrap();
    db.store
        .append_audit(&record(a, owner, 2_000, "team:write:create", "ok"), 0)
        .await
        .unwrap();
    // A write at 10 000 keeping records from 1 500 on drops the first one.
    db.store
        .append_audit(&record(a, owner, 10_000, "team:write:create", "ok"), 1_500)
        .await
        .unwrap();
    let all = AuditFilter {
        start: 0,
        end: 20_000,
        limit: 10,
        ..Default::default()
    };
    let times: Vec<i64> = db
        .store
        .search_audit(a, &all)
        .await
        .unwrap()
        .records
        .iter()
        .map(|r| r.created_at)
        .collect();
    assert_eq!(times, vec![10_000, 2_000]);
}
