//! Store behaviour of channel noise rules (ingest.md §2.9, §2.11, §2.12, §2.22): rules saved
//! per channel, applied by the inbox batch, and the outcome of every event recorded. SQLite
//! always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set (each test in a database of its
//! own, dropped afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use klaxon_core::condition::Condition;
use klaxon_core::model::{EventOrigin, Mark, Millis, NewEvent, Progress, Status};
use klaxon_core::noise::{NoiseRule, OneOff, RuleKind};
use klaxon_store::{
    AlertFilter, Bootstrap, BootstrapSeed, IncidentFilter, NoiseRefusal, OutcomeFilter, Paging,
};

const T0: Millis = 1_700_000_000_000;
const HOUR: Millis = 3_600_000;

both!(
    inhibit_sees_an_incident_opened_earlier_in_the_same_batch,
    a_marked_alert_is_unmuted_into_an_incident_the_response_side_handles,
    rules_are_stored_per_channel_and_account,
    quick_silence_rules_are_deleted_when_their_window_ends,
);

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

fn event(key: &str, status: Status, check: &str, at: Millis) -> NewEvent {
    NewEvent {
        alert_key: key.into(),
        event_status: status,
        event_severity: status.severity(),
        title: format!("{check} problem"),
        title_rule: String::new(),
        description: String::new(),
        labels: BTreeMap::from([("check".to_string(), check.to_string())]),
        images: Vec::new(),
        event_time: at,
        raw: String::new(),
    }
}

async fn push(db: &Db, b: &Bootstrap, events: Vec<NewEvent>, at: Millis) {
    let items = events.into_iter().map(|e| (origin(b, at), e)).collect();
    db.store.enqueue(items).await.unwrap();
}

async fn drain(db: &Db, now: Millis) {
    while db.store.process_inbox("a", 100, now).await.unwrap() > 0 {}
}

fn paging() -> Paging {
    Paging {
        p: 1,
        limit: 100,
        asc: true,
        search_after_ctx: None,
    }
}

async fn save(db: &Db, rule: NoiseRule, now: Millis) -> NoiseRule {
    db.store.save_noise_rule(rule, now).await.unwrap().unwrap()
}

fn rule(b: &Bootstrap, kind: RuleKind, name: &str) -> NoiseRule {
    let mut r = NoiseRule::new(kind);
    r.account_id = b.account_id;
    r.channel_id = b.channel_id;
    r.rule_name = name.into();
    r
}

async fn incidents(db: &Db, b: &Bootstrap) -> Vec<klaxon_core::model::Incident> {
    let f = IncidentFilter {
        paging: paging(),
        ..IncidentFilter::default()
    };
    db.store
        .list_incidents(b.account_id, &f)
        .await
        .unwrap()
        .items
}

async fn alerts(db: &Db, b: &Bootstrap) -> Vec<klaxon_core::model::Alert> {
    let f = AlertFilter {
        paging: paging(),
        ..AlertFilter::default()
    };
    db.store.list_alerts(b.account_id, &f).await.unwrap().items
}

async fn outcomes(db: &Db, b: &Bootstrap) -> Vec<klaxon_store::EventOutcome> {
    let f = OutcomeFilter {
        paging: paging(),
        ..OutcomeFilter::default()
    };
    db.store
        .event_outcomes(b.account_id, &f)
        .await
        .unwrap()
        .items
}

async fn inhibit_sees_an_incident_opened_earlier_in_the_same_batch(db: &Db) {
    // spec: ING-140, ING-142, ING-011, ING-262
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let mut r = rule(&b, RuleKind::Inhibit, "Disk");
    r.source_filters = vec![vec![Condition::is_in("severity", ["Critical"])]];
    r.target_filters = vec![vec![Condition::is_in("severity", ["Warning", "Info"])]];
    r.equals = vec!["labels.check".into()];
    let r = save(db, r, T0).await;
    // One batch: the source opens its incident, then the target arrives.
    push(
        db,
        &b,
        vec![
            event("src", Status::Critical, "disk", T0),
            event("tgt", Status::Warning, "disk", T0 + 1000),
            event("other", Status::Warning, "cpu", T0 + 2000),
        ],
        T0,
    )
    .await;
    drain(db, T0 + 5000).await;
    let incs = incidents(db, &b).await;
    assert_eq!(incs.len(), 2, "source and the uninhibited cpu alert");
    let source = incs.iter().find(|i| i.first_alert_key == "src").unwrap();
    let alerts = alerts(db, &b).await;
    assert!(
        alerts.iter().all(|a| a.alert_key != "tgt"),
        "dropped, no alert"
    );
    let out = outcomes(db, &b).await;
    assert_eq!(out.len(), 3);
    let tgt = out.iter().find(|o| o.alert_key == "tgt").unwrap();
    assert_eq!(tgt.outcome, "inhibited_drop");
    assert_eq!(tgt.rule_id, r.rule_id);
    assert_eq!(tgt.rule_name, "Disk");
    assert_eq!(tgt.source_incident_id, source.incident_id);
    let src = out.iter().find(|o| o.alert_key == "src").unwrap();
    assert_eq!(src.outcome, "new_alert");
    assert_eq!(src.incident_id, source.incident_id);
    assert_eq!(src.event_id.len(), 24);
}

async fn a_marked_alert_is_unmuted_into_an_incident_the_response_side_handles(db: &Db) {
    // spec: ING-123, ING-130, ING-132
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let mut r = rule(&b, RuleKind::Silence, "Window");
    r.time_filter = Some(OneOff {
        start_time: T0 / 1000,
        end_time: (T0 + HOUR) / 1000,
    });
    let r = save(db, r, T0).await;
    push(db, &b, vec![event("k", Status::Warning, "disk", T0)], T0).await;
    drain(db, T0 + 1000).await;
    assert!(incidents(db, &b).await.is_empty());
    let a = &alerts(db, &b).await[0];
    assert_eq!(a.mark, Mark::Silenced);
    assert_eq!(a.mark_rule_id, r.rule_id);
    assert!(a.ever_muted);
    assert_eq!(a.incident_id, "");

    // The one-off window has ended (ING-132): the next trigger un-mutes the alert.
    push(
        db,
        &b,
        vec![event("k", Status::Critical, "disk", T0 + 2 * HOUR)],
        T0 + 2 * HOUR,
    )
    .await;
    drain(db, T0 + 2 * HOUR).await;
    let incs = incidents(db, &b).await;
    assert_eq!(incs.len(), 1);
    let alerts = alerts(db, &b).await;
    assert_eq!(alerts.len(), 1, "the same alert, not a new one");
    let a = &alerts[0];
    assert_eq!(a.mark, Mark::None);
    assert_eq!(a.incident_id, incs[0].incident_id);
    assert!(a.ever_muted);
    assert_eq!(
        incs[0].start_time, T0,
        "keeps the alert's original start_time"
    );
    assert_eq!(incs[0].progress, Progress::Triggered);
    assert_eq!(incs[0].alert_event_cnt, 2);
    // The response side saw it as a new incident.
    let (feed, _) = db
        .store
        .incident_feed(b.account_id, &incs[0].incident_id, &[], true, 0, 10)
        .await
        .unwrap();
    assert_eq!(feed[0].kind, "i_new");
}

async fn rules_are_stored_per_channel_and_account(db: &Db) {
    // spec: ING-130, ING-141 (rules only ever look at their own channel)
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let mut d = rule(&b, RuleKind::Drop, "Info");
    d.filters = vec![vec![Condition::is_in("severity", ["Info"])]];
    let d = save(db, d, T0).await;
    assert_eq!(d.rule_id.len(), 24);
    assert_eq!(d.created_at, T0);
    let listed = db
        .store
        .noise_rules(b.account_id, b.channel_id, RuleKind::Drop, T0)
        .await
        .unwrap();
    assert_eq!(listed, vec![d.clone()]);
    assert!(
        db.store
            .noise_rules(b.account_id, b.channel_id, RuleKind::Silence, T0)
            .await
            .unwrap()
            .is_empty()
    );
    // Another account sees nothing of it.
    assert!(
        db.store
            .noise_rule(b.account_id + 1, &d.rule_id, T0)
            .await
            .unwrap()
            .is_none()
    );
    // A missing channel, and an update that would change the kind, are refused.
    let mut lost = rule(&b, RuleKind::Drop, "Lost");
    lost.channel_id = 987_654;
    lost.filters = d.filters.clone();
    assert_eq!(
        db.store.save_noise_rule(lost, T0).await.unwrap(),
        Err(NoiseRefusal::ChannelNotFound)
    );
    let mut other_kind = d.clone();
    other_kind.kind = RuleKind::Silence;
    assert_eq!(
        db.store.save_noise_rule(other_kind, T0).await.unwrap(),
        Err(NoiseRefusal::RuleNotFound)
    );
    // Update keeps the creation time; delete removes it.
    let mut renamed = d.clone();
    renamed.rule_name = "Info events".into();
    let renamed = save(db, renamed, T0 + 1000).await;
    assert_eq!(renamed.created_at, T0);
    assert_eq!(renamed.updated_at, T0 + 1000);
    assert!(
        db.store
            .delete_noise_rule(b.account_id, &d.rule_id)
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .delete_noise_rule(b.account_id, &d.rule_id)
            .await
            .unwrap()
    );
    // With the rule gone, Info events open incidents again.
    push(db, &b, vec![event("i", Status::Info, "x", T0)], T0).await;
    drain(db, T0 + 1000).await;
    assert_eq!(incidents(db, &b).await.len(), 1);
}

async fn quick_silence_rules_are_deleted_when_their_window_ends(db: &Db) {
    // spec: ING-134, RSP-120 (deleted at the end of the window, without a record), ING-132
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    push(db, &b, vec![event("k", Status::Critical, "disk", T0)], T0).await;
    drain(db, T0 + 1000).await;
    let inc = incidents(db, &b).await.remove(0);
    let quick = save(
        db,
        klaxon_core::noise::quick_silence(&inc, T0 + 1000),
        T0 + 1000,
    )
    .await;
    // An ordinary one-off rule with the same window stays after it ends (ING-132).
    let mut plain = rule(&b, RuleKind::Silence, "Plain");
    plain.time_filter = quick.time_filter;
    let plain = save(db, plain, T0 + 1000).await;
    let found = db
        .store
        .quick_silence_rule(b.account_id, b.channel_id, &inc.incident_id, T0 + HOUR)
        .await
        .unwrap();
    assert_eq!(found.map(|r| r.rule_id), Some(quick.rule_id.clone()));
    let end = quick.time_filter.unwrap().end_time * 1000;
    let names = |rules: Vec<NoiseRule>| rules.into_iter().map(|r| r.rule_name).collect::<Vec<_>>();
    let listed = db
        .store
        .noise_rules(b.account_id, b.channel_id, RuleKind::Silence, end - 1)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    // From its end on, the quick rule is gone for readers ...
    let listed = db
        .store
        .noise_rules(b.account_id, b.channel_id, RuleKind::Silence, end)
        .await
        .unwrap();
    assert_eq!(names(listed), vec![plain.rule_name.clone()]);
    // ... and the next inbox batch deletes its row: an earlier `now` no longer finds it.
    push(db, &b, vec![event("k2", Status::Info, "cpu", end)], end).await;
    drain(db, end).await;
    let listed = db
        .store
        .noise_rules(b.account_id, b.channel_id, RuleKind::Silence, T0)
        .await
        .unwrap();
    assert_eq!(names(listed), vec![plain.rule_name]);
}
