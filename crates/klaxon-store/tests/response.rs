//! The response side through the store, on SQLite and (with `KLAXON_TEST_DATABASE_URL`)
//! PostgreSQL: what needs rows arranged by hand that the Open API cannot set yet — storm
//! thresholds on a channel, and a channel auto-close timeout — driven with explicit instants.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use klaxon_core::model::{EventOrigin, Millis, NewEvent, Status};
use klaxon_core::response::rules::By;
use klaxon_core::response::{EscalationRule, Level, RuleStatus, Target};
use klaxon_store::{Bootstrap, IncidentFilter, Paging};

const T0: Millis = 1_750_000_000_000;
const MIN: Millis = 60_000;

both!(
    storm_warning_on_merge,
    auto_close_timeout_follows_the_channel,
    merges_into_an_open_incident_notify_nobody,
    num_is_a_display_id_that_can_repeat
);

async fn boot(db: &Db) -> Bootstrap {
    db.boot(T0).await
}

async fn push(db: &Db, b: &Bootstrap, key: &str, status: Status, at: Millis) {
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
        event_status: status,
        event_severity: status.severity(),
        title: format!("{key} failing"),
        title_rule: String::new(),
        description: String::new(),
        labels: BTreeMap::new(),
        images: Vec::new(),
        event_time: at,
        raw: String::new(),
    };
    db.store.enqueue(vec![(origin, event)]).await.unwrap();
    while db.store.process_inbox("test", 512, at).await.unwrap() > 0 {}
}

async fn incident_ids(db: &Db, b: &Bootstrap) -> Vec<String> {
    db.incident_ids(b.account_id).await
}

async fn kinds(db: &Db, b: &Bootstrap, id: &str) -> Vec<String> {
    let (entries, _) = db
        .store
        .incident_feed(b.account_id, id, &[], true, 0, 100)
        .await
        .unwrap();
    entries.into_iter().map(|e| e.kind).collect()
}

fn one_level_rule(b: &Bootstrap) -> EscalationRule {
    EscalationRule {
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
        layers: vec![Level {
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
            max_times: 0,
            notify_step: 10.0,
        }],
        updated_by: 0,
        created_at: 0,
        updated_at: 0,
    }
}

async fn storm_warning_on_merge(db: &Db) {
    // spec: RSP-200, RSP-201, RSP-100 (c) "storm thresholds are checked again"
    let b = boot(db).await;
    db.exec(&format!(
        "UPDATE channels SET storm_thresholds = '[2, 3]' WHERE channel_id = {}",
        b.channel_id
    ))
    .await;
    db.store
        .save_escalation_rule(one_level_rule(&b), T0)
        .await
        .unwrap()
        .unwrap();
    for (i, key) in ["s-1", "s-2", "s-3"].iter().enumerate() {
        push(db, &b, key, Status::Critical, T0 + i as i64 * 1000).await;
    }
    let ids = incident_ids(db, &b).await;
    assert_eq!(ids.len(), 3);
    db.store
        .merge_incidents(
            b.account_id,
            &ids[0],
            &[ids[1].clone(), ids[2].clone()],
            b.owner_member_id,
            None,
            "",
            T0 + 5 * MIN,
        )
        .await
        .unwrap()
        .unwrap();
    let target = db
        .store
        .incident(b.account_id, &ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(target.alert_cnt, 3);
    assert_eq!(target.storm_level, 3);
    let k = kinds(db, &b, &ids[0]).await;
    let tail: Vec<&str> = k.iter().rev().take(4).rev().map(String::as_str).collect();
    assert_eq!(tail, vec!["i_merge", "i_storm", "i_storm", "i_notify"]);
    let outbox = db
        .store
        .notification_outbox(b.account_id, Some(&ids[0]), 100)
        .await
        .unwrap();
    assert!(outbox.iter().any(|n| n.reason == "storm"));
}

async fn auto_close_timeout_follows_the_channel(db: &Db) {
    // spec: RSP-055 (LIFE-2: trigger mode, and a timeout changed while the incident is open)
    let b = boot(db).await;
    db.exec(&format!(
        "UPDATE channels SET auto_resolve_timeout = 3600, auto_resolve_mode = 'trigger' \
         WHERE channel_id = {}",
        b.channel_id
    ))
    .await;
    push(db, &b, "a-1", Status::Warning, T0).await;
    let id = incident_ids(db, &b).await.remove(0);
    let timers = db.store.incident_timers(b.account_id, &id).await.unwrap();
    assert_eq!(timers, vec![("auto_close".to_string(), T0 + 60 * MIN)]);
    // The timeout grows to 7200 s before it falls due: at 11:00 nothing closes, at 12:00 it does.
    db.exec(&format!(
        "UPDATE channels SET auto_resolve_timeout = 7200 WHERE channel_id = {}",
        b.channel_id
    ))
    .await;
    db.store.run_due_timers("t", T0 + 60 * MIN).await.unwrap();
    let inc = db.store.incident(b.account_id, &id).await.unwrap().unwrap();
    assert_eq!(inc.close_time, 0);
    db.store.run_due_timers("t", T0 + 120 * MIN).await.unwrap();
    let inc = db.store.incident(b.account_id, &id).await.unwrap().unwrap();
    assert_eq!(inc.close_source, "autorslv");
    assert_eq!(inc.closer_id, 0);
    assert_eq!(inc.close_time, T0 + 120 * MIN);
    assert_eq!(kinds(db, &b, &id).await.last().unwrap(), "i_rslv");
    // Its alert closed too (RSP-052).
    assert!(
        db.store
            .incident_timers(b.account_id, &id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn merges_into_an_open_incident_notify_nobody(db: &Db) {
    // spec: RSP-202 (no storm thresholds set, so no storm firing either)
    let b = boot(db).await;
    db.store
        .save_escalation_rule(one_level_rule(&b), T0)
        .await
        .unwrap()
        .unwrap();
    push(db, &b, "m-1", Status::Critical, T0).await;
    let ids = incident_ids(db, &b).await;
    assert_eq!(ids.len(), 1);
    let first = db
        .store
        .notification_outbox(b.account_id, Some(&ids[0]), 100)
        .await
        .unwrap()
        .len();
    assert!(first > 0, "the first assignment notifies");
    // Later events of the same alert merge into the open incident: nobody is notified.
    push(db, &b, "m-1", Status::Warning, T0 + MIN).await;
    push(db, &b, "m-1", Status::Critical, T0 + 2 * MIN).await;
    assert_eq!(incident_ids(db, &b).await, ids);
    let inc = db
        .store
        .incident(b.account_id, &ids[0])
        .await
        .unwrap()
        .unwrap();
    assert!(
        inc.alert_event_cnt >= 3,
        "the events merged: {}",
        inc.alert_event_cnt
    );
    let after = db
        .store
        .notification_outbox(b.account_id, Some(&ids[0]), 100)
        .await
        .unwrap()
        .len();
    assert_eq!(after, first);
    assert_eq!(
        kinds(db, &b, &ids[0])
            .await
            .iter()
            .filter(|k| *k == "i_notify")
            .count(),
        1
    );
}

async fn num_is_a_display_id_that_can_repeat(db: &Db) {
    // spec: RSP-006 — `num` is fixed at creation (the last 6 characters of `incident_id`,
    // upper-cased, response.md 1.7) and is not unique: a look-up by `num` can return several
    // incidents, which clients tell apart by time.
    let b = boot(db).await;
    push(db, &b, "disk-a", Status::Critical, T0).await;
    push(db, &b, "disk-b", Status::Critical, T0 + MIN).await;
    let ids = incident_ids(db, &b).await;
    assert_eq!(ids.len(), 2, "two alert keys open two incidents");
    let (first, second) = (&ids[0], &ids[1]);
    let by_nums = |nums: Vec<String>, query: Option<String>| {
        let filter = IncidentFilter {
            paging: Paging {
                p: 1,
                limit: 100,
                asc: true,
                search_after_ctx: None,
            },
            nums,
            query,
            ..IncidentFilter::default()
        };
        async move {
            db.store
                .list_incidents(b.account_id, &filter)
                .await
                .unwrap()
                .items
        }
    };
    let num = first[first.len() - 6..].to_ascii_uppercase();
    let found = by_nums(vec![num.to_ascii_lowercase()], None).await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].num, num,
        "num = last 6 of incident_id, upper-cased"
    );

    // Two ids that share their last six characters (one in 16^6 per pair) share the num.
    db.exec(&format!(
        "UPDATE incidents SET num = '{num}' WHERE incident_id = '{second}'"
    ))
    .await;
    for found in [
        by_nums(vec![num.clone()], None).await,
        by_nums(Vec::new(), Some(num.clone())).await,
    ] {
        let got: Vec<(&str, Millis)> = found
            .iter()
            .map(|i| (i.incident_id.as_str(), i.start_time))
            .collect();
        assert_eq!(
            got,
            vec![(first.as_str(), T0), (second.as_str(), T0 + MIN)],
            "both incidents come back; their start times tell them apart"
        );
    }

    // Later changes never rewrite the num: an alert recovering and the incident closing.
    push(db, &b, "disk-a", Status::Ok, T0 + 2 * MIN).await;
    let found = by_nums(vec![num.clone()], None).await;
    let again = found.iter().find(|i| &i.incident_id == first).unwrap();
    assert_eq!(again.num, num);
    assert_ne!(again.end_time, 0, "the first incident has recovered");
}
