//! RSP-008 Halt through the store, on SQLite and (with `KLAXON_TEST_DATABASE_URL`)
//! PostgreSQL, with explicit instants: a SaaS tenant that is suspended for non-payment has
//! every pending timer of its open incidents cancelled in the suspending transaction, one
//! system `i_comm` per affected incident, queued sends withheld except first firings
//! (SVC-023), no step run while suspended, and nothing replayed on restoration (SVC-024).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use klaxon_core::model::{EventOrigin, Millis, NewEvent, Status};
use klaxon_core::response::rules::By;
use klaxon_core::response::{EscalationRule, Level, RuleStatus, Target};
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::money::Currency;
use klaxon_saas::params::Params;
use klaxon_store::{Bootstrap, SaasSettings};

both!(suspension_halts_the_tenants_automation);

fn ms(s: &str) -> Millis {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn settings() -> SaasSettings {
    SaasSettings {
        params: Params::cloud_defaults(),
        billing_tz: TimeZone::UTC,
        currency: Currency::CNY,
        region: "cn-north".into(),
        default_edition: "standard".into(),
    }
}

async fn boot(db: &Db, at: Millis) -> Bootstrap {
    db.boot(at).await
}

/// Two levels paging the owner, repeating every 10 minutes, escalating after 30.
async fn page_the_owner(db: &Db, b: &Bootstrap, at: Millis) {
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
        force_escalate: true,
        max_times: 3,
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
        layers: vec![level.clone(), level],
        updated_by: 0,
        created_at: 0,
        updated_at: 0,
    };
    db.store
        .save_escalation_rule(rule, at)
        .await
        .unwrap()
        .unwrap();
}

/// Accepts an event at `accepted` and processes it at `processed`.
async fn push(db: &Db, b: &Bootstrap, key: &str, accepted: Millis, processed: Millis) {
    let origin = EventOrigin {
        request_id: random_hex(16),
        account_id: b.account_id,
        integration_id: b.integration_id,
        integration_type: "standard".into(),
        integration_name: "Standard".into(),
        channel_id: b.channel_id,
        received_at: accepted,
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
        event_time: accepted,
        raw: String::new(),
    };
    db.store.enqueue(vec![(origin, event)]).await.unwrap();
    while db
        .store
        .process_inbox("test", 512, processed)
        .await
        .unwrap()
        > 0
    {}
}

async fn incident_ids(db: &Db, b: &Bootstrap) -> Vec<String> {
    db.incident_ids(b.account_id).await
}

/// (status, failed_reason) of every outbox row of the incident, oldest first.
async fn sends(db: &Db, b: &Bootstrap, id: &str) -> Vec<(String, String)> {
    db.store
        .delivery_states(b.account_id, id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.status, d.failed_reason))
        .collect()
}

async fn system_comments(db: &Db, b: &Bootstrap, id: &str) -> Vec<serde_json::Value> {
    let (entries, _) = db
        .store
        .incident_feed(b.account_id, id, &["i_comm".to_string()], true, 0, 100)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|e| {
            assert_eq!(e.creator_id, 0, "the halt entry is the system's");
            e.detail
        })
        .collect()
}

async fn suspension_halts_the_tenants_automation(db: &Db) {
    // spec: RSP-008 (Halt), SVC-023 (edge case: accepted events keep their first firing),
    // SVC-024 (no notifications or escalations while suspended; restoration replays nothing)
    let s = settings();
    let b = boot(db, ms("2025-06-01T00:00:00Z")).await;
    page_the_owner(db, &b, ms("2025-06-01T00:00:00Z")).await;

    // A cycle charge the tenant cannot pay, due 1 June: overdue now, suspended at 9 June
    // 00:00 (7 days of grace, SVC-137).
    let applied = db
        .store
        .saas_apply(
            &s,
            b.account_id,
            ms("2025-06-01T00:30:00Z"),
            "test",
            "charge",
            |book, at| {
                book.charge(
                    at,
                    ChargeKind::LicenceCycle,
                    "1990.00".parse().unwrap(),
                    true,
                    "2025-06-01".parse().unwrap(),
                    "cycle-2025-05",
                    "test",
                )?;
                Ok("charge".into())
            },
        )
        .await
        .unwrap();
    assert_eq!(applied.state.to_string(), "overdue");

    // Incident A at 23:45 fires, repeats at 23:55; incident B at 23:58 fires once.
    push(
        db,
        &b,
        "a",
        ms("2025-06-08T23:45:00Z"),
        ms("2025-06-08T23:45:00Z"),
    )
    .await;
    assert!(
        db.store
            .run_due_timers("test", ms("2025-06-08T23:55:00Z"))
            .await
            .unwrap()
            >= 1
    );
    push(
        db,
        &b,
        "b",
        ms("2025-06-08T23:58:00Z"),
        ms("2025-06-08T23:58:00Z"),
    )
    .await;
    let ids = incident_ids(db, &b).await;
    assert_eq!(ids.len(), 2);
    let (a, inc_b) = (ids[0].clone(), ids[1].clone());
    assert!(
        !db.store
            .incident_timers(b.account_id, &a)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !db.store
            .incident_timers(b.account_id, &inc_b)
            .await
            .unwrap()
            .is_empty()
    );
    let a_before = sends(db, &b, &a).await;
    let b_before = sends(db, &b, &inc_b).await;
    assert!(
        a_before.len() >= 2,
        "first firing and one repeat: {a_before:?}"
    );
    assert!(a_before.iter().all(|(st, _)| st == "queued"));
    assert!(system_comments(db, &b, &a).await.is_empty());

    // An event accepted at 23:59, before the change, is processed only after it.
    let settle_at = ms("2025-06-09T00:00:00Z");
    let run = db
        .store
        .saas_settle(
            &s,
            b.account_id,
            "2025-06-09".parse().unwrap(),
            settle_at,
            "test",
        )
        .await
        .unwrap();
    assert!(run.outcome.contains("suspended"), "{}", run.outcome);

    // Every pending timer of both incidents is gone, in the suspending transaction.
    assert!(
        db.store
            .incident_timers(b.account_id, &a)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.store
            .incident_timers(b.account_id, &inc_b)
            .await
            .unwrap()
            .is_empty()
    );

    // One system i_comm each, mute_reply, naming the state and reason.
    for id in [&a, &inc_b] {
        let comments = system_comments(db, &b, id).await;
        assert_eq!(comments.len(), 1, "{comments:?}");
        assert_eq!(comments[0]["mute_reply"], true);
        let text = comments[0]["comment"].as_str().unwrap();
        assert!(text.contains("suspended:nonpayment"), "{text}");
    }

    // A's repeat is withheld; the first firings of A and B stay queued (SVC-023).
    let a_after = sends(db, &b, &a).await;
    // One firing of the same level sends the same rows as B's only firing.
    let first_a = b_before.len();
    assert!(first_a >= 1 && a_before.len() > first_a);
    assert_eq!(a_after.len(), a_before.len());
    assert!(a_after[..first_a].iter().all(|(st, _)| st == "queued"));
    assert!(
        a_after[first_a..]
            .iter()
            .all(|(st, r)| st == "failed" && r == "service_suspended_nonpayment"),
        "{a_after:?}"
    );
    assert!(
        sends(db, &b, &inc_b)
            .await
            .iter()
            .all(|(st, _)| st == "queued")
    );
    assert_eq!(sends(db, &b, &inc_b).await, b_before);

    // The event accepted before the change becomes incident C with its first firing; its
    // escalation steps do not run while suspended.
    push(
        db,
        &b,
        "c",
        ms("2025-06-08T23:59:00Z"),
        ms("2025-06-09T00:01:00Z"),
    )
    .await;
    let ids = incident_ids(db, &b).await;
    assert_eq!(ids.len(), 3);
    let c = ids[2].clone();
    let c_first = sends(db, &b, &c).await;
    assert!(!c_first.is_empty());
    assert!(c_first.iter().all(|(st, _)| st == "queued"));
    assert!(
        !db.store
            .incident_timers(b.account_id, &c)
            .await
            .unwrap()
            .is_empty(),
        "C arms its steps; the runner must drop them"
    );
    db.store
        .run_due_timers("test", ms("2025-06-09T02:00:00Z"))
        .await
        .unwrap();
    assert!(
        db.store
            .incident_timers(b.account_id, &c)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        sends(db, &b, &c).await,
        c_first,
        "no repeat or escalation for C"
    );

    // Delivery hands out exactly the first firings of A, B and C.
    let claimed = db
        .store
        .claim_deliveries("worker", ms("2025-06-09T02:00:00Z"), 100)
        .await
        .unwrap();
    let want = first_a + b_before.len() + c_first.len();
    assert_eq!(claimed.len(), want, "{claimed:?}");

    // Restoration (the whole payable total paid) replays nothing: no timer comes back and the
    // withheld sends stay failed.
    let paid = db
        .store
        .saas_apply(
            &s,
            b.account_id,
            ms("2025-06-09T03:00:00Z"),
            "test",
            "payment",
            |book, at| {
                let total = book.payable_total(at)?;
                book.receive_cash(at, total, "pay-1", "test")?;
                Ok("paid".into())
            },
        )
        .await
        .unwrap();
    assert_eq!(paid.state.to_string(), "active");
    assert_eq!(
        db.store
            .run_due_timers("test", ms("2025-06-09T05:00:00Z"))
            .await
            .unwrap(),
        0
    );
    for id in [&a, &inc_b, &c] {
        assert!(
            db.store
                .incident_timers(b.account_id, id)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            system_comments(db, &b, id).await.len(),
            usize::from(id != &c)
        );
    }
    assert_eq!(sends(db, &b, &a).await, a_after);
}
