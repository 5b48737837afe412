//! The delivery hand-off, on SQLite and (with `KLAXON_TEST_DATABASE_URL`) PostgreSQL: an inbox
//! batch that queues notifications claims them for this node's delivery worker in its own
//! commit and hands them over in memory, so the first attempt waits for no claim of its own
//! (issue 7's latency target). The outbox rules stay those of RSP-290: a row is claimed by one
//! worker at a time, and a claim that is never finished expires and the row is sent then.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use klaxon_core::model::{EventOrigin, Millis, NewEvent, Status};
use klaxon_core::response::rules::By;
use klaxon_core::response::{EscalationRule, Level, RuleStatus, Target};
use klaxon_store::{Bootstrap, DELIVERY_CLAIM_MS};

both!(
    a_batch_hands_its_notifications_to_the_delivery_worker,
    without_the_hand_off_the_worker_claims_them_itself,
    a_batch_rolled_back_hands_nothing_over,
    hand_offs_keep_to_the_workers_limit,
);

const T0: Millis = 1_750_000_000_000;

/// One level paging the owner by their preferences, so each new incident queues sends.
async fn page_the_owner(db: &Db, b: &Bootstrap) {
    let level = Level {
        target: Target {
            person_ids: vec![b.owner_member_id],
            by: Some(By {
                follow_preference: true,
                ..By::default()
            }),
            ..Target::default()
        },
        escalate_window: 30,
        force_escalate: false,
        max_times: 1,
        notify_step: 10.0,
    };
    let rule = EscalationRule {
        rule_id: String::new(),
        account_id: b.account_id,
        channel_id: b.channel_id,
        rule_name: "Default".into(),
        description: String::new(),
        priority: 0,
        status: RuleStatus::Enabled,
        template_id: String::new(),
        aggr_window: 0,
        time_filters: vec![],
        filters: vec![],
        layers: vec![level],
        updated_by: 0,
        created_at: 0,
        updated_at: 0,
    };
    db.store
        .save_escalation_rule(rule, T0)
        .await
        .unwrap()
        .unwrap();
}

async fn accept(db: &Db, b: &Bootstrap, key: &str, at: Millis) {
    let origin = EventOrigin {
        request_id: random_hex(16),
        account_id: b.account_id,
        integration_id: b.integration_id,
        integration_type: "standard".into(),
        integration_name: "Standard".into(),
        channel_id: b.channel_id,
        received_at: at,
    };
    let event = NewEvent {
        alert_key: key.into(),
        event_status: Status::Critical,
        event_severity: Status::Critical.severity(),
        title: format!("{key} failing"),
        title_rule: String::new(),
        description: String::new(),
        labels: BTreeMap::new(),
        images: Vec::new(),
        event_time: at,
        raw: String::new(),
    };
    db.store.enqueue(vec![(origin, event)]).await.unwrap();
}

/// Every outbox row of the account's incidents, by rid.
async fn queued_rids(db: &Db, b: &Bootstrap) -> Vec<String> {
    let mut rids = Vec::new();
    for id in db.incident_ids(b.account_id).await {
        for d in db.store.delivery_states(b.account_id, &id).await.unwrap() {
            assert_eq!(d.status, "queued");
            rids.push(d.rid);
        }
    }
    rids.sort();
    rids
}

fn rids(rows: &[klaxon_store::PendingDelivery]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|d| d.rid.clone()).collect();
    v.sort();
    v
}

async fn a_batch_hands_its_notifications_to_the_delivery_worker(db: &Db) {
    // spec: RSP-290 (one claim per row, expiring claims), issue 7 (latency target)
    let b = db.boot(T0).await;
    page_the_owner(db, &b).await;
    db.store.hand_off_deliveries_to("delivery-a", 8);
    accept(db, &b, "disk", T0 + 1_000).await;
    assert_eq!(
        db.store
            .process_inbox("inbox", 512, T0 + 1_000)
            .await
            .unwrap(),
        1
    );
    let queued = queued_rids(db, &b).await;
    assert!(!queued.is_empty(), "the level pages the owner");

    // The batch's own commit claimed them: they are waiting for this node's worker.
    let handed = db.store.take_handed_off();
    assert_eq!(rids(&handed), queued);
    assert!(handed.iter().all(|d| d.attempts == 0));
    assert!(
        db.store.take_handed_off().is_empty(),
        "each row is handed over once"
    );
    // No other worker may claim them while the claim lasts.
    assert!(
        db.store
            .claim_deliveries("delivery-b", T0 + 1_001, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // The claim is the worker's: it records the outcome under it.
    let first = &handed[0];
    assert!(
        db.store
            .finish_delivery(
                "delivery-a",
                first.seq,
                &klaxon_store::DeliveryOutcome::Sent {
                    provider_message_id: "m-1".into()
                },
                T0 + 1_002,
            )
            .await
            .unwrap()
    );
    db.store.handed_off_done(1);

    // A node that stopped before sending the rest loses nothing: the claims expire and
    // another worker sends them.
    let later = T0 + 1_000 + DELIVERY_CLAIM_MS + 1;
    let reclaimed = db
        .store
        .claim_deliveries("delivery-b", later, 100)
        .await
        .unwrap();
    let mut rest = queued.clone();
    rest.retain(|r| r != &first.rid);
    assert_eq!(rids(&reclaimed), rest);
}

async fn without_the_hand_off_the_worker_claims_them_itself(db: &Db) {
    // spec: RSP-290
    let b = db.boot(T0).await;
    page_the_owner(db, &b).await;
    accept(db, &b, "disk", T0 + 1_000).await;
    db.store
        .process_inbox("inbox", 512, T0 + 1_000)
        .await
        .unwrap();
    let queued = queued_rids(db, &b).await;
    assert!(!queued.is_empty());
    assert!(db.store.take_handed_off().is_empty());
    let claimed = db
        .store
        .claim_deliveries("delivery-a", T0 + 1_001, 100)
        .await
        .unwrap();
    assert_eq!(rids(&claimed), queued);
}

async fn a_batch_rolled_back_hands_nothing_over(db: &Db) {
    // spec: ING-011 (a batch counts only once committed)
    let b = db.boot(T0).await;
    page_the_owner(db, &b).await;
    db.store.hand_off_deliveries_to("delivery-a", 8);
    accept(db, &b, "disk", T0 + 1_000).await;
    assert_eq!(
        db.store
            .process_inbox_then_crash("inbox", 512, T0 + 1_000)
            .await
            .unwrap(),
        1
    );
    assert!(db.store.take_handed_off().is_empty());
    assert!(db.incident_ids(b.account_id).await.is_empty());
    // The redone batch hands the rows over.
    db.store
        .process_inbox("inbox", 512, T0 + 2_000)
        .await
        .unwrap();
    assert_eq!(rids(&db.store.take_handed_off()), queued_rids(db, &b).await);
}

async fn hand_offs_keep_to_the_workers_limit(db: &Db) {
    // spec: RSP-290 (no claim is taken that the worker cannot send before it expires)
    let b = db.boot(T0).await;
    page_the_owner(db, &b).await;
    db.store.hand_off_deliveries_to("delivery-a", 1);
    accept(db, &b, "disk", T0 + 1_000).await;
    db.store
        .process_inbox("inbox", 512, T0 + 1_000)
        .await
        .unwrap();
    let first = db.store.take_handed_off();
    assert_eq!(first.len(), 1, "one row fits the limit");
    let queued_after_first = queued_rids(db, &b).await;

    // While that row is being sent, the next batch claims nothing for the worker...
    accept(db, &b, "cpu", T0 + 2_000).await;
    db.store
        .process_inbox("inbox", 512, T0 + 2_000)
        .await
        .unwrap();
    assert!(db.store.take_handed_off().is_empty());
    let all = queued_rids(db, &b).await;
    assert!(all.len() > queued_after_first.len());

    // ...and the ordinary claim still finds what was left (oldest first).
    db.store.handed_off_done(1);
    let mut left = all.clone();
    left.retain(|r| r != &first[0].rid);
    let claimed = db
        .store
        .claim_deliveries("delivery-a", T0 + 2_001, 100)
        .await
        .unwrap();
    assert_eq!(rids(&claimed), left);
}
