//! Flapping detection through the store (ingest.md §2.15, ING-180…183; response.md RSP-203,
//! RSP-204): the inbox batch flags new incidents from the channel's settings and history,
//! and the response side mutes flagged incidents of `remind_suppress` channels — responders
//! recorded, nothing in the notification outbox, no escalation or repeat timer. SQLite
//! always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use klaxon_core::flapping::{FlappingConfig, FlappingMode};
use klaxon_core::grouping::GroupingConfig;
use klaxon_core::model::{EventOrigin, Incident, Millis, NewEvent, Status};
use klaxon_core::response::rules::By;
use klaxon_core::response::{EscalationRule, Level, RuleStatus, Target};
use klaxon_store::{Bootstrap, IncidentFilter, OutcomeFilter, Paging};

const T0: Millis = 1_750_000_000_000;
const MIN: Millis = 60_000;

both!(
    worked_example_in_remind_suppress_mode,
    remind_mode_flags_and_still_notifies,
    incidents_of_one_batch_count_in_creation_order,
    settings_are_stored_per_channel,
    a_muted_incident_sends_no_storm_notification,
);

async fn boot(db: &Db) -> Bootstrap {
    db.boot(T0).await
}

async fn set_flapping(db: &Db, b: &Bootstrap, channel_id: i64, cfg: FlappingConfig) {
    let mut draft = db
        .store
        .channel_settings(b.account_id, channel_id)
        .await
        .unwrap()
        .unwrap()
        .draft();
    draft.flapping = cfg;
    assert!(
        db.store
            .update_channel(b.account_id, channel_id, &draft, T0)
            .await
            .unwrap()
    );
}

/// A one-level rule paging the owner, repeating, with an escalation window: everything a
/// muted incident must not arm.
async fn page_the_owner(db: &Db, b: &Bootstrap) {
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
        layers: vec![
            Level {
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
            2
        ],
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

fn item(
    b: &Bootstrap,
    channel_id: i64,
    key: &str,
    status: Status,
    at: Millis,
) -> (EventOrigin, NewEvent) {
    let origin = EventOrigin {
        request_id: random_hex(16),
        account_id: b.account_id,
        integration_id: b.integration_id,
        integration_type: "standard".into(),
        integration_name: "Standard".into(),
        channel_id,
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
    (origin, event)
}

async fn process(db: &Db, items: Vec<(EventOrigin, NewEvent)>, at: Millis) {
    db.store.enqueue(items).await.unwrap();
    while db.store.process_inbox("test", 512, at).await.unwrap() > 0 {}
}

async fn push(db: &Db, b: &Bootstrap, key: &str, status: Status, at: Millis) {
    process(db, vec![item(b, b.channel_id, key, status, at)], at).await;
}

fn all() -> IncidentFilter {
    IncidentFilter {
        paging: Paging {
            p: 1,
            limit: 100,
            asc: true,
            search_after_ctx: None,
        },
        ..IncidentFilter::default()
    }
}

/// Incidents of a channel, oldest first.
async fn incidents(db: &Db, b: &Bootstrap, f: IncidentFilter) -> Vec<Incident> {
    let mut items = db
        .store
        .list_incidents(b.account_id, &f)
        .await
        .unwrap()
        .items;
    items.sort_by(|x, y| (x.created_at, &x.num).cmp(&(y.created_at, &y.num)));
    items
}

/// The newest incident of the account.
async fn newest(db: &Db, b: &Bootstrap) -> Incident {
    let all = incidents(db, b, all()).await;
    all.into_iter().max_by_key(|i| i.created_at).unwrap()
}

async fn outbox_len(db: &Db, b: &Bootstrap, id: &str) -> usize {
    db.store
        .notification_outbox(b.account_id, Some(id), 100)
        .await
        .unwrap()
        .len()
}

async fn kinds(db: &Db, b: &Bootstrap, id: &str) -> Vec<String> {
    let (entries, _) = db
        .store
        .incident_feed(b.account_id, id, &[], true, 0, 100)
        .await
        .unwrap();
    entries.into_iter().map(|e| e.kind).collect()
}

async fn worked_example_in_remind_suppress_mode(db: &Db) {
    // spec: ING-183 (the example table), ING-182, ING-180, RSP-204, RSP-503 (ever_muted)
    let b = boot(db).await;
    page_the_owner(db, &b).await;
    set_flapping(
        db,
        &b,
        b.channel_id,
        FlappingConfig {
            mode: FlappingMode::RemindSuppress,
            max_changes: 4,
            in_mins: 60,
            mute_mins: 60,
        },
    )
    .await;
    let expected = [
        (0, false),
        (10, false),
        (20, false),
        (30, true),
        (40, true),
        (85, true),
        (150, false),
    ];
    for (minute, flapping) in expected {
        let at = T0 + minute * MIN;
        push(db, &b, "K", Status::Critical, at).await;
        let inc = newest(db, &b).await;
        assert_eq!(inc.created_at, at);
        assert_eq!(inc.is_flapping, flapping, "minute {minute}");
        // RSP-204: a flagged incident is muted for life; the others are notified.
        assert_eq!(inc.response.ever_muted, flapping, "minute {minute}");
        assert!(
            !inc.response.responders.is_empty(),
            "minute {minute}: responders are recorded either way"
        );
        let sent = outbox_len(db, &b, &inc.incident_id).await;
        let timers = db
            .store
            .incident_timers(b.account_id, &inc.incident_id)
            .await
            .unwrap();
        let feed = kinds(db, &b, &inc.incident_id).await;
        assert!(feed.contains(&"i_assign".to_string()), "{feed:?}");
        if flapping {
            assert_eq!(sent, 0, "minute {minute}: nothing in the outbox");
            assert!(
                !timers.iter().any(|(k, _)| k == "escalate" || k == "refire"),
                "minute {minute}: no escalation or repeat armed: {timers:?}"
            );
            assert_eq!(
                feed.iter().filter(|k| *k == "i_m_flapping").count(),
                1,
                "{feed:?}"
            );
        } else {
            assert!(sent > 0, "minute {minute}: notified");
            assert!(!feed.contains(&"i_m_flapping".to_string()), "{feed:?}");
        }
        // The alert recovers: the next trigger of K opens a new incident.
        push(db, &b, "K", Status::Ok, at + MIN).await;
    }
    // A later timer run sends nothing for the muted incidents either.
    db.store
        .run_due_timers("test", T0 + 300 * MIN)
        .await
        .unwrap();
    let muted = incidents(
        db,
        &b,
        IncidentFilter {
            ever_muted: Some(true),
            ..all()
        },
    )
    .await;
    let muted_at: Vec<Millis> = muted.iter().map(|i| (i.created_at - T0) / MIN).collect();
    assert_eq!(muted_at, vec![30, 40, 85]);
    for inc in &muted {
        assert_eq!(outbox_len(db, &b, &inc.incident_id).await, 0);
    }
    let loud = incidents(
        db,
        &b,
        IncidentFilter {
            ever_muted: Some(false),
            ..all()
        },
    )
    .await;
    assert_eq!(loud.len(), 4);

    // ING-262 (Klaxon extension): the outcome of the event that opened a flagged incident
    // says so.
    let outcomes = db
        .store
        .event_outcomes(
            b.account_id,
            &OutcomeFilter {
                paging: Paging {
                    p: 1,
                    limit: 100,
                    asc: true,
                    search_after_ctx: None,
                },
                outcomes: vec!["new_alert".into()],
                ..OutcomeFilter::default()
            },
        )
        .await
        .unwrap()
        .items;
    let mut flagged: Vec<Millis> = outcomes
        .iter()
        .filter(|o| o.is_flapping)
        .map(|o| (o.received_at - T0) / MIN)
        .collect();
    flagged.sort();
    assert_eq!(flagged, vec![30, 40, 85]);
    assert_eq!(outcomes.len(), 7);
}

async fn remind_mode_flags_and_still_notifies(db: &Db) {
    // spec: ING-181, RSP-203
    let b = boot(db).await;
    page_the_owner(db, &b).await;
    set_flapping(
        db,
        &b,
        b.channel_id,
        FlappingConfig {
            mode: FlappingMode::Remind,
            max_changes: 2,
            in_mins: 10,
            mute_mins: 0,
        },
    )
    .await;
    let mut flags = Vec::new();
    for minute in [0, 2, 4, 30] {
        let at = T0 + minute * MIN;
        push(db, &b, "R", Status::Critical, at).await;
        let inc = newest(db, &b).await;
        flags.push(inc.is_flapping);
        assert!(!inc.response.ever_muted, "remind never mutes");
        assert!(
            outbox_len(db, &b, &inc.incident_id).await > 0,
            "minute {minute}: notified as usual"
        );
        assert!(
            !kinds(db, &b, &inc.incident_id)
                .await
                .contains(&"i_m_flapping".to_string())
        );
        push(db, &b, "R", Status::Ok, at + MIN).await;
    }
    assert_eq!(flags, vec![false, true, true, false]);
}

async fn incidents_of_one_batch_count_in_creation_order(db: &Db) {
    // spec: ING-180 — the count is per channel and key, counts every progress, and sees the
    // incidents created earlier in the same batch.
    let b = boot(db).await;
    let other = db
        .store
        .create_channel(
            b.account_id,
            b.owner_member_id,
            &klaxon_store::ChannelDraft {
                channel_name: "other".into(),
                description: String::new(),
                team_id: 0,
                auto_resolve_timeout: 0,
                auto_resolve_mode: "trigger".into(),
                grouping: Default::default(),
                storm_thresholds: vec![],
                flapping: FlappingConfig::default(),
                is_private: false,
                managing_team_ids: Vec::new(),
            },
            T0,
        )
        .await
        .unwrap();
    let cfg = FlappingConfig {
        mode: FlappingMode::RemindSuppress,
        max_changes: 3,
        in_mins: 60,
        mute_mins: 0,
    };
    set_flapping(db, &b, b.channel_id, cfg).await;
    // The other channel detects flapping too, but has its own history.
    set_flapping(db, &b, other, cfg).await;
    // One earlier, stored incident of K (closed: it still counts).
    push(db, &b, "K", Status::Critical, T0).await;
    push(db, &b, "K", Status::Ok, T0 + 1000).await;
    // One batch: K opens two more incidents, J one, and K one in the other channel.
    let at = T0 + 5 * MIN;
    let batch = vec![
        item(&b, b.channel_id, "K", Status::Critical, at),
        item(&b, b.channel_id, "K", Status::Ok, at),
        item(&b, b.channel_id, "J", Status::Critical, at),
        item(&b, other, "K", Status::Critical, at),
        item(&b, b.channel_id, "K", Status::Critical, at),
    ];
    process(db, batch, at).await;
    let got: Vec<(i64, String, bool, bool)> = incidents(db, &b, all())
        .await
        .into_iter()
        .map(|i| {
            (
                i.channel_id,
                i.first_alert_key.clone(),
                i.is_flapping,
                i.response.ever_muted,
            )
        })
        .collect();
    let mut got = got;
    got.sort();
    let main = b.channel_id;
    let mut want = vec![
        (main, "J".to_string(), false, false),
        (main, "K".to_string(), false, false), // 1st change
        (main, "K".to_string(), false, false), // 2nd
        (main, "K".to_string(), true, true),   // 3rd: count reached
        (other, "K".to_string(), false, false),
    ];
    want.sort();
    assert_eq!(got, want);
}

async fn settings_are_stored_per_channel(db: &Db) {
    // spec: ING-180 (ingest.md §1.3.6 FlappingConfig: off by default, 4 / 60 / 60)
    let b = boot(db).await;
    let s = db
        .store
        .channel_settings(b.account_id, b.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.flapping, FlappingConfig::default());
    assert_eq!(s.flapping.mode, FlappingMode::Off);
    let cfg = FlappingConfig {
        mode: FlappingMode::Remind,
        max_changes: 7,
        in_mins: 15,
        mute_mins: 0,
    };
    set_flapping(db, &b, b.channel_id, cfg).await;
    let s = db
        .store
        .channel_settings(b.account_id, b.channel_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.flapping, cfg);
    // Mode off: nothing is flagged however often the key changes.
    set_flapping(db, &b, b.channel_id, FlappingConfig::default()).await;
    for n in 0..5 {
        let at = T0 + n * MIN;
        push(db, &b, "K", Status::Critical, at).await;
        push(db, &b, "K", Status::Ok, at + 1000).await;
    }
    let all = incidents(db, &b, all()).await;
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|i| !i.is_flapping && !i.response.ever_muted));
}

async fn a_muted_incident_sends_no_storm_notification(db: &Db) {
    // spec: RSP-204 (no storm firing), RSP-200, ING-182
    let b = boot(db).await;
    page_the_owner(db, &b).await;
    let mut draft = db
        .store
        .channel_settings(b.account_id, b.channel_id)
        .await
        .unwrap()
        .unwrap()
        .draft();
    draft.grouping = GroupingConfig {
        enabled: true,
        unified_dims: vec!["labels.check".into()],
        ..GroupingConfig::default()
    };
    draft.storm_thresholds = vec![2];
    draft.flapping = FlappingConfig {
        mode: FlappingMode::RemindSuppress,
        max_changes: 2,
        in_mins: 60,
        mute_mins: 0,
    };
    assert!(
        db.store
            .update_channel(b.account_id, b.channel_id, &draft, T0)
            .await
            .unwrap()
    );
    let disk = |key: &str, status: Status, at: Millis| {
        let mut it = item(&b, b.channel_id, key, status, at);
        it.1.labels.insert("check".into(), "disk".into());
        (vec![it], at)
    };
    // K opens an incident, recovers, and opens a second one: flagged and muted.
    for (key, status, minute) in [
        ("K", Status::Critical, 0),
        ("K", Status::Ok, 1),
        ("K", Status::Critical, 2),
    ] {
        let (items, at) = disk(key, status, T0 + minute * MIN);
        process(db, items, at).await;
    }
    let muted = newest(db, &b).await;
    assert!(muted.is_flapping && muted.response.ever_muted);
    // J joins it: the storm threshold 2 is crossed and recorded, but nothing is sent.
    let (items, at) = disk("J", Status::Critical, T0 + 3 * MIN);
    process(db, items, at).await;
    let after = db
        .store
        .incident(b.account_id, &muted.incident_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((after.alert_cnt, after.storm_level), (2, 2));
    assert!(
        kinds(db, &b, &muted.incident_id)
            .await
            .contains(&"i_storm".to_string())
    );
    assert_eq!(outbox_len(db, &b, &muted.incident_id).await, 0);
}
