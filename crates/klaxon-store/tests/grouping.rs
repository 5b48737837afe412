//! Store behaviour of alert grouping (ingest.md §2.13, ING-150…159, ING-011): the inbox
//! batch groups new alerts by the channel's policy, and the result does not depend on how the
//! events were split into batches. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL`
//! is set (each test in a database of its own, dropped afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use klaxon_core::condition::Condition;
use klaxon_core::flapping::FlappingConfig;
use klaxon_core::grouping::{GroupingConfig, MAX_ALERTS_PER_INCIDENT, Mode};
use klaxon_core::model::{EventOrigin, Millis, NewEvent, Status};
use klaxon_core::noise::{NoiseRule, OneOff, RuleKind};
use klaxon_store::{AlertFilter, Bootstrap, BootstrapSeed, ChannelDraft, IncidentFilter, Paging};

const T0: Millis = 1_700_000_000_000;
const MIN: Millis = 60_000;

both!(
    one_batch_and_split_batches_give_the_same_alerts_and_incidents,
    grouping_joins_incidents_from_earlier_batches_and_respects_the_window,
    an_unmuted_alert_joins_the_incident_of_its_group,
    a_new_alert_keeps_the_incident_of_the_alert_it_expires_open,
    similarity_grouping_does_not_depend_on_batches,
    a_full_similarity_incident_takes_no_more_and_the_replay_reads_the_latest_events,
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

fn policy(window_minutes: i64) -> GroupingConfig {
    GroupingConfig {
        enabled: true,
        unified_dims: vec!["labels.check".into()],
        window_minutes,
        ..GroupingConfig::default()
    }
}

/// A channel grouping by `labels.check` with storm thresholds [2, 4].
async fn grouped_channel(db: &Db, b: &Bootstrap, name: &str, window_minutes: i64) -> i64 {
    channel_with(db, b, name, policy(window_minutes)).await
}

/// Intelligent grouping on the title (ING-157), default threshold 0.80.
fn similarity_policy() -> GroupingConfig {
    GroupingConfig {
        enabled: true,
        mode: Mode::Intelligent,
        ..GroupingConfig::default()
    }
}

/// A channel with `grouping` and storm thresholds [2, 4].
async fn channel_with(db: &Db, b: &Bootstrap, name: &str, grouping: GroupingConfig) -> i64 {
    let draft = ChannelDraft {
        channel_name: name.into(),
        description: String::new(),
        team_id: 0,
        auto_resolve_timeout: 0,
        auto_resolve_mode: "trigger".into(),
        grouping,
        storm_thresholds: vec![2, 4],
        flapping: FlappingConfig::default(),
        is_private: false,
        managing_team_ids: Vec::new(),
    };
    db.store
        .create_channel(b.account_id, b.owner_member_id, &draft, T0)
        .await
        .unwrap()
}

fn origin(b: &Bootstrap, channel_id: i64, received_at: Millis) -> EventOrigin {
    EventOrigin {
        request_id: random_hex(16),
        account_id: b.account_id,
        integration_id: b.integration_id,
        integration_type: "standard".into(),
        integration_name: "Standard (default)".into(),
        channel_id,
        received_at,
    }
}

fn event(key: &str, status: Status, check: &str, host: &str, at: Millis) -> NewEvent {
    NewEvent {
        alert_key: key.into(),
        event_status: status,
        event_severity: status.severity(),
        title: format!("{check} problem"),
        title_rule: String::new(),
        description: String::new(),
        labels: BTreeMap::from([
            ("check".to_string(), check.to_string()),
            ("host".to_string(), host.to_string()),
        ]),
        images: Vec::new(),
        event_time: at,
        raw: String::new(),
    }
}

fn paging() -> Paging {
    Paging {
        p: 1,
        limit: 100,
        asc: true,
        search_after_ctx: None,
    }
}

/// A channel's incidents, each with its alerts, in a form independent of ids: per incident
/// its counters, status, severity, progress, method, storm level and the alerts' (key,
/// start_time, status, event_cnt, closed), sorted.
async fn shape(db: &Db, b: &Bootstrap, channel_id: i64) -> Vec<String> {
    let f = IncidentFilter {
        paging: paging(),
        channel_ids: vec![channel_id],
        ..IncidentFilter::default()
    };
    let incidents = db
        .store
        .list_incidents(b.account_id, &f)
        .await
        .unwrap()
        .items;
    let f = AlertFilter {
        paging: paging(),
        channel_ids: vec![channel_id],
        ..AlertFilter::default()
    };
    let alerts = db.store.list_alerts(b.account_id, &f).await.unwrap().items;
    let mut out: Vec<String> = incidents
        .iter()
        .map(|i| {
            let mut members: Vec<String> = alerts
                .iter()
                .filter(|a| a.incident_id == i.incident_id)
                .map(|a| {
                    format!(
                        "{}@{} {} x{} closed={}",
                        a.alert_key,
                        a.start_time,
                        a.alert_status.as_str(),
                        a.event_cnt,
                        a.closed
                    )
                })
                .collect();
            members.sort();
            format!(
                "cnt={} active={} {} {} {:?} {} storm={} [{}]",
                i.alert_cnt,
                i.active_alert_cnt,
                i.incident_status.as_str(),
                i.incident_severity.as_str(),
                i.progress,
                i.group_method,
                i.storm_level,
                members.join(", ")
            )
        })
        .collect();
    let loose = alerts.iter().filter(|a| a.incident_id.is_empty()).count();
    out.sort();
    out.push(format!("alerts without incident: {loose}"));
    out
}

/// A deterministic pseudo-random event sequence (keys k0…k7, checks disk/cpu/mem, some
/// recoveries), one event per second.
fn sequence(seed: u64, len: usize) -> Vec<NewEvent> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = |m: u64| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) % m
    };
    (0..len)
        .map(|n| {
            let key = format!("k{}", next(8));
            let check = ["disk", "cpu", "mem"][next(3) as usize];
            let status = match next(5) {
                0 => Status::Ok,
                1 => Status::Warning,
                _ => Status::Critical,
            };
            let at = T0 + i64::try_from(n).unwrap() * 1000;
            event(&key, status, check, &format!("h{}", next(4)), at)
        })
        .collect()
}

async fn one_batch_and_split_batches_give_the_same_alerts_and_incidents(db: &Db) {
    // spec: ING-011, ING-151, ING-153, ING-159, ING-175, RSP-200
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let now = T0 + 60 * MIN;
    for s in 0..4u64 {
        let events = sequence(s, 40);
        let mut reference: Option<Vec<String>> = None;
        for split in [40usize, 1, 3, 7, 16] {
            let ch = grouped_channel(db, &b, &format!("seq{s}-split{split}"), 0).await;
            let items = events
                .iter()
                .map(|e| (origin(&b, ch, e.event_time), e.clone()))
                .collect();
            db.store.enqueue(items).await.unwrap();
            while db.store.process_inbox("a", split, now).await.unwrap() > 0 {}
            let got = shape(db, &b, ch).await;
            assert!(
                got.iter()
                    .any(|l| l.starts_with("cnt=") && !l.starts_with("cnt=1 ")),
                "some alerts were grouped: {got:?}"
            );
            match &reference {
                None => reference = Some(got),
                Some(r) => assert_eq!(&got, r, "sequence {s}, batches of {split}"),
            }
        }
    }
}

async fn grouping_joins_incidents_from_earlier_batches_and_respects_the_window(db: &Db) {
    // spec: ING-152, ING-153, ING-159
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let ch = grouped_channel(db, &b, "window", 10).await;
    let at = |m: i64| T0 + m * MIN;
    for (n, minute) in [0i64, 8, 17, 30].into_iter().enumerate() {
        let e = event(
            &format!("k{n}"),
            Status::Critical,
            "disk",
            &format!("h{n}"),
            at(minute),
        );
        db.store
            .enqueue(vec![(origin(&b, ch, at(minute)), e)])
            .await
            .unwrap();
        while db.store.process_inbox("a", 100, at(minute)).await.unwrap() > 0 {}
    }
    let f = IncidentFilter {
        paging: paging(),
        channel_ids: vec![ch],
        ..IncidentFilter::default()
    };
    let mut incidents = db
        .store
        .list_incidents(b.account_id, &f)
        .await
        .unwrap()
        .items;
    incidents.sort_by_key(|i| i.created_at);
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[0].alert_cnt, 3);
    assert_eq!(incidents[0].last_merge_time, at(17));
    assert_eq!(incidents[0].storm_level, 2, "thresholds [2, 4]: 2 crossed");
    assert_eq!(incidents[1].alert_cnt, 1);
    assert_eq!(incidents[1].created_at, at(30));
    assert_eq!(incidents[0].group_key, incidents[1].group_key);
}

async fn an_unmuted_alert_joins_the_incident_of_its_group(db: &Db) {
    // spec: ING-123, ING-153, ING-159, RSP-200
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let ch = grouped_channel(db, &b, "unmute", 0).await;
    let mut rule = NoiseRule::new(RuleKind::Silence);
    rule.account_id = b.account_id;
    rule.channel_id = ch;
    rule.rule_name = "h2 maintenance".into();
    rule.filters = vec![vec![Condition::is_in("labels.host", ["h2"])]];
    rule.time_filter = Some(OneOff {
        start_time: T0 / 1000,
        end_time: (T0 + 10 * MIN) / 1000,
    });
    db.store.save_noise_rule(rule, T0).await.unwrap().unwrap();
    let step = |key: &str, host: &str, at: Millis| {
        let e = event(key, Status::Critical, "disk", host, at);
        (origin(&b, ch, at), e)
    };
    for (key, host, at) in [
        ("a", "h1", T0),
        ("b", "h2", T0 + MIN),
        ("b", "h2", T0 + 20 * MIN),
    ] {
        db.store.enqueue(vec![step(key, host, at)]).await.unwrap();
        while db.store.process_inbox("a", 100, at).await.unwrap() > 0 {}
    }
    let f = IncidentFilter {
        paging: paging(),
        channel_ids: vec![ch],
        ..IncidentFilter::default()
    };
    let incidents = db
        .store
        .list_incidents(b.account_id, &f)
        .await
        .unwrap()
        .items;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].alert_cnt, 2);
    assert_eq!(incidents[0].last_merge_time, T0 + 20 * MIN);
    assert_eq!(incidents[0].storm_level, 2);
    let f = AlertFilter {
        paging: paging(),
        channel_ids: vec![ch],
        ..AlertFilter::default()
    };
    let alerts = db.store.list_alerts(b.account_id, &f).await.unwrap().items;
    assert_eq!(alerts.len(), 2);
    assert!(
        alerts
            .iter()
            .all(|a| a.incident_id == incidents[0].incident_id)
    );
    assert!(alerts.iter().any(|a| a.ever_muted));
}

async fn a_new_alert_keeps_the_incident_of_the_alert_it_expires_open(db: &Db) {
    // spec: ING-113, ING-159
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let ch = grouped_channel(db, &b, "expiry", 0).await;
    let later = T0 + 25 * 60 * MIN;
    for at in [T0, later] {
        let e = event("a", Status::Critical, "disk", "h1", at);
        db.store
            .enqueue(vec![(origin(&b, ch, at), e)])
            .await
            .unwrap();
        while db.store.process_inbox("a", 100, at).await.unwrap() > 0 {}
    }
    let f = IncidentFilter {
        paging: paging(),
        channel_ids: vec![ch],
        ..IncidentFilter::default()
    };
    let incidents = db
        .store
        .list_incidents(b.account_id, &f)
        .await
        .unwrap()
        .items;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let i = &incidents[0];
    assert_eq!((i.alert_cnt, i.active_alert_cnt), (2, 1));
    assert_eq!(i.progress, klaxon_core::model::Progress::Triggered);
    let f = AlertFilter {
        paging: paging(),
        channel_ids: vec![ch],
        ..AlertFilter::default()
    };
    let alerts = db.store.list_alerts(b.account_id, &f).await.unwrap().items;
    assert_eq!(alerts.len(), 2);
    assert!(
        alerts
            .iter()
            .all(|a| a.incident_id == i.incident_id && !a.closed)
    );
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.alert_status == Status::Ok)
            .count(),
        1,
        "the expired alert resolved"
    );
}

async fn similarity_grouping_does_not_depend_on_batches(db: &Db) {
    // spec: ING-011, ING-157, ING-151
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let now = T0 + 60 * MIN;
    for s in 0..3u64 {
        // Titles "<check> problem on host <n>": the number is one `#` token, so alerts of
        // one check share an incident whatever the host.
        let events: Vec<NewEvent> = sequence(s, 40)
            .into_iter()
            .map(|mut e| {
                let host = e.labels["host"].trim_start_matches('h').to_string();
                e.title = format!("{} on host {host}", e.title);
                e
            })
            .collect();
        let mut reference: Option<Vec<String>> = None;
        for split in [40usize, 1, 6] {
            let ch =
                channel_with(db, &b, &format!("sim{s}-split{split}"), similarity_policy()).await;
            let items = events
                .iter()
                .map(|e| (origin(&b, ch, e.event_time), e.clone()))
                .collect();
            db.store.enqueue(items).await.unwrap();
            while db.store.process_inbox("a", split, now).await.unwrap() > 0 {}
            let got = shape(db, &b, ch).await;
            assert!(
                got.iter()
                    .any(|l| l.starts_with("cnt=") && !l.starts_with("cnt=1 ")),
                "some alerts were grouped: {got:?}"
            );
            assert!(
                got.iter()
                    .filter(|l| l.starts_with("cnt="))
                    .all(|l| l.contains(" i storm=")),
                "{got:?}"
            );
            match &reference {
                None => reference = Some(got),
                Some(r) => assert_eq!(&got, r, "sequence {s}, batches of {split}"),
            }
        }
    }
}

async fn a_full_similarity_incident_takes_no_more_and_the_replay_reads_the_latest_events(db: &Db) {
    // spec: ING-158, ING-157, ING-160
    let b = db.store.bootstrap(&seed(), T0).await.unwrap();
    let ch = channel_with(db, &b, "cap", similarity_policy()).await;
    let total = usize::try_from(MAX_ALERTS_PER_INCIDENT).unwrap() + 1;
    let items = (0..total)
        .map(|n| {
            let at = T0 + i64::try_from(n).unwrap();
            let e = event(
                &format!("k{n}"),
                Status::Critical,
                "disk",
                &format!("h{n}"),
                at,
            );
            (origin(&b, ch, at), e)
        })
        .collect();
    db.store.enqueue(items).await.unwrap();
    let now = T0 + MIN;
    while db.store.process_inbox("a", 300, now).await.unwrap() > 0 {}
    let f = IncidentFilter {
        paging: paging(),
        channel_ids: vec![ch],
        ..IncidentFilter::default()
    };
    let incidents = db
        .store
        .list_incidents(b.account_id, &f)
        .await
        .unwrap()
        .items;
    let mut counts: Vec<i64> = incidents.iter().map(|i| i.alert_cnt).collect();
    counts.sort_unstable();
    assert_eq!(counts, vec![1, MAX_ALERTS_PER_INCIDENT]);
    assert!(
        incidents
            .iter()
            .all(|i| i.group_method == "i" && i.group_text == "disk problem")
    );

    // ING-160's input: the 500 most recent events, oldest first, with their alerts.
    let (events, alerts) = db
        .store
        .grouping_replay_input(b.account_id, ch, T0, 500)
        .await
        .unwrap();
    assert_eq!(events.len(), 500);
    assert_eq!(events[0].alert_key, format!("k{}", total - 500));
    assert_eq!(events[499].alert_key, format!("k{}", total - 1));
    assert_eq!(alerts.len(), 500);
    // The same replayed through the core: the cap does not bind 500 alerts.
    let p = klaxon_core::grouping::preview::replay(&similarity_policy(), &events, &alerts);
    assert_eq!(p.incidents.len(), 1);
    assert_eq!(p.incidents[0].alerts.len(), 500);
    // Events received before `since` are not read; nor another channel's.
    let (events, _) = db
        .store
        .grouping_replay_input(b.account_id, ch, T0 + 10_000, 500)
        .await
        .unwrap();
    assert!(events.is_empty());
    let (events, _) = db
        .store
        .grouping_replay_input(b.account_id, ch + 1000, T0, 500)
        .await
        .unwrap();
    assert!(events.is_empty());
}
