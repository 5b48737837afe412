//! Store behaviour of the alert pipeline (ingest.md §2.7, ING-262): the action list saved per
//! integration, run by the inbox batch before routing, and the outcomes of the events it
//! discards. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use klaxon_core::condition::Condition;
use klaxon_core::model::{EventOrigin, Millis, NewEvent, Severity, Status};
use klaxon_core::pipeline::{Action, InhibitSpec, PipelineAction};
use klaxon_store::{AlertFilter, Bootstrap, IncidentFilter, OutcomeFilter, Paging};

const T0: Millis = 1_700_000_000_000;
const HOUR: Millis = 3_600_000;

both!(
    saves_replace_the_whole_list_and_keep_the_first_author,
    a_rewritten_title_and_severity_reach_the_alert_and_incident,
    a_dropped_event_leaves_no_alert_and_its_outcome_is_queryable,
    a_recovery_is_never_dropped_or_inhibited,
    inhibit_reads_young_active_alerts_of_the_integration,
    a_source_opened_earlier_in_the_batch_inhibits_a_later_event,
    a_source_resolved_earlier_in_the_batch_no_longer_inhibits,
    one_push_decides_as_the_same_events_pushed_one_by_one,
);

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

fn event(key: &str, status: Status, pairs: &[(&str, &str)], at: Millis) -> NewEvent {
    NewEvent {
        alert_key: key.into(),
        event_status: status,
        event_severity: status.severity(),
        title: format!("{key} problem"),
        title_rule: String::new(),
        description: String::new(),
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        images: Vec::new(),
        event_time: at,
        raw: String::new(),
    }
}

/// Enqueues the events in one request and processes everything; returns the request id.
async fn push(db: &Db, b: &Bootstrap, events: Vec<NewEvent>, at: Millis) -> String {
    let o = origin(b, at);
    let request_id = o.request_id.clone();
    let items = events.into_iter().map(|e| (o.clone(), e)).collect();
    db.store.enqueue(items).await.unwrap();
    while db.store.process_inbox("a", 100, at).await.unwrap() > 0 {}
    request_id
}

fn paging() -> Paging {
    Paging {
        p: 1,
        limit: 100,
        asc: true,
        search_after_ctx: None,
    }
}

async fn alerts(db: &Db, b: &Bootstrap) -> Vec<klaxon_core::model::Alert> {
    let f = AlertFilter {
        paging: paging(),
        ..AlertFilter::default()
    };
    db.store.list_alerts(b.account_id, &f).await.unwrap().items
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

/// (channel, outcome, rule id) of one request's events.
async fn outcomes(db: &Db, b: &Bootstrap, request_id: &str) -> Vec<(i64, String, String)> {
    let f = OutcomeFilter {
        paging: paging(),
        request_id: Some(request_id.to_string()),
        ..OutcomeFilter::default()
    };
    db.store
        .event_outcomes(b.account_id, &f)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| (o.channel_id, o.outcome, o.rule_id))
        .collect()
}

fn action(id: &str, conditions: Vec<Condition>, action: Action) -> PipelineAction {
    PipelineAction {
        id: id.into(),
        enabled: true,
        condition: if conditions.is_empty() {
            Vec::new()
        } else {
            vec![conditions]
        },
        action,
    }
}

async fn save(db: &Db, b: &Bootstrap, actions: &[PipelineAction], now: Millis) {
    klaxon_core::pipeline::validate(actions).unwrap();
    db.store
        .save_pipeline(
            b.account_id,
            b.integration_id,
            actions,
            b.owner_member_id,
            now,
        )
        .await
        .unwrap()
        .unwrap();
}

async fn saves_replace_the_whole_list_and_keep_the_first_author(db: &Db) {
    // spec: ING-080 — one list per integration, replaced whole by a save.
    let b = db.boot(T0).await;
    assert_eq!(
        db.store
            .pipeline(b.account_id, b.integration_id)
            .await
            .unwrap(),
        None
    );
    let first = vec![action("d", Vec::new(), Action::Drop)];
    save(db, &b, &first, T0).await;
    let second = vec![
        action(
            "t",
            Vec::new(),
            Action::UpdateTitle {
                template: "x".into(),
            },
        ),
        action(
            "s",
            Vec::new(),
            Action::UpdateSeverity {
                severity: Severity::Info,
            },
        ),
    ];
    save(db, &b, &second, T0 + 1000).await;
    let got = db
        .store
        .pipeline(b.account_id, b.integration_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.actions, second);
    assert_eq!((got.created_at, got.updated_at), (T0, T0 + 1000));
    assert_eq!(got.creator_id, b.owner_member_id);
    // Another account's integration, or none at all: nothing is written.
    assert_eq!(
        db.store
            .save_pipeline(b.account_id + 1, b.integration_id, &first, 0, T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        db.store
            .save_pipeline(b.account_id, 999_999, &first, 0, T0)
            .await
            .unwrap(),
        None
    );
    let all = db
        .store
        .pipelines(b.account_id, &[b.integration_id, 999_999])
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

async fn a_rewritten_title_and_severity_reach_the_alert_and_incident(db: &Db) {
    // spec: ING-081, ING-083 — the pipeline's title and severity are what the alert and its
    // incident get.
    let b = db.boot(T0).await;
    let template = "[TPL]${host} is down ({{.Labels.dc | upper}})";
    save(
        db,
        &b,
        &[
            action(
                "t",
                Vec::new(),
                Action::UpdateTitle {
                    template: template.into(),
                },
            ),
            action(
                "s",
                vec![Condition::is_in("title", ["db1 *"])],
                Action::UpdateSeverity {
                    severity: Severity::Critical,
                },
            ),
        ],
        T0,
    )
    .await;
    let r = push(
        db,
        &b,
        vec![event(
            "k",
            Status::Info,
            &[("host", "db1"), ("dc", "fra")],
            T0,
        )],
        T0,
    )
    .await;
    assert_eq!(
        outcomes(db, &b, &r).await,
        vec![(b.channel_id, "new_alert".to_string(), String::new())]
    );
    let a = alerts(db, &b).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].title, "db1 is down (FRA)");
    assert_eq!(a[0].title_rule, template);
    assert_eq!(a[0].alert_severity, Severity::Critical);
    assert_eq!(a[0].alert_status, Status::Critical);
    let i = incidents(db, &b).await;
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].title, "db1 is down (FRA)");
    assert_eq!(i[0].incident_severity, Severity::Critical);
}

async fn a_dropped_event_leaves_no_alert_and_its_outcome_is_queryable(db: &Db) {
    // spec: ING-084, ING-262 — no alert, no incident; outcome `dropped_by_pipeline` with the
    // action id on channel 0. The kept event of the same request goes on.
    let b = db.boot(T0).await;
    save(
        db,
        &b,
        &[action(
            "no-test",
            vec![Condition::is_in("labels.env", ["test"])],
            Action::Drop,
        )],
        T0,
    )
    .await;
    let r = push(
        db,
        &b,
        vec![
            event("a", Status::Critical, &[("env", "test")], T0),
            event("b", Status::Critical, &[("env", "prod")], T0),
        ],
        T0,
    )
    .await;
    let mut got = outcomes(db, &b, &r).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, "dropped_by_pipeline".to_string(), "no-test".to_string()),
            (b.channel_id, "new_alert".to_string(), String::new()),
        ]
    );
    let a = alerts(db, &b).await;
    assert_eq!(
        a.iter().map(|a| a.alert_key.as_str()).collect::<Vec<_>>(),
        vec!["b"]
    );
    assert_eq!(incidents(db, &b).await.len(), 1);
    let f = OutcomeFilter {
        paging: paging(),
        outcomes: vec!["dropped_by_pipeline".into()],
        rule_id: Some("no-test".into()),
        ..OutcomeFilter::default()
    };
    let page = db.store.event_outcomes(b.account_id, &f).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].alert_key, "a");
}

async fn a_recovery_is_never_dropped_or_inhibited(db: &Db) {
    // spec: ING-086, Q-05 — with a drop and an inhibit matching everything, the recovery
    // still resolves its alert; the severity update still applies to it, status stays Ok.
    let b = db.boot(T0).await;
    push(
        db,
        &b,
        vec![event("k", Status::Warning, &[("host", "h")], T0)],
        T0,
    )
    .await;
    save(
        db,
        &b,
        &[
            action(
                "inh",
                Vec::new(),
                Action::Inhibit(InhibitSpec {
                    source_conditions: Vec::new(),
                    equal_attributes: Vec::new(),
                    equal_labels: vec!["host".into()],
                }),
            ),
            action("all", Vec::new(), Action::Drop),
        ],
        T0 + 1000,
    )
    .await;
    let r = push(
        db,
        &b,
        vec![event("k", Status::Ok, &[("host", "h")], T0 + 2000)],
        T0 + 2000,
    )
    .await;
    assert_eq!(
        outcomes(db, &b, &r).await,
        vec![(b.channel_id, "resolved".to_string(), String::new())]
    );
    let a = alerts(db, &b).await;
    assert_eq!(a[0].alert_status, Status::Ok);
    // A new trigger of the same host is inhibited by… nothing active any more, so the drop
    // takes it.
    let r = push(
        db,
        &b,
        vec![event("k2", Status::Warning, &[("host", "h")], T0 + 3000)],
        T0 + 3000,
    )
    .await;
    assert_eq!(
        outcomes(db, &b, &r).await,
        vec![(0, "dropped_by_pipeline".to_string(), "all".to_string())]
    );
}

async fn inhibit_reads_young_active_alerts_of_the_integration(db: &Db) {
    // spec: ING-085 — an active Critical alert with the same host inhibits a Warning; another
    // host does not; once the source is 24 h old it no longer inhibits.
    let b = db.boot(T0).await;
    save(
        db,
        &b,
        &[action(
            "quiet",
            vec![Condition::is_in("severity", ["Warning"])],
            Action::Inhibit(InhibitSpec {
                source_conditions: vec![vec![Condition::is_in("severity", ["Critical"])]],
                equal_attributes: Vec::new(),
                equal_labels: vec!["host".into()],
            }),
        )],
        T0,
    )
    .await;
    push(
        db,
        &b,
        vec![event("down", Status::Critical, &[("host", "h1")], T0)],
        T0,
    )
    .await;
    let r = push(
        db,
        &b,
        vec![
            event("disk", Status::Warning, &[("host", "h1")], T0 + HOUR),
            event("disk2", Status::Warning, &[("host", "h2")], T0 + HOUR),
            event("crit", Status::Critical, &[("host", "h1")], T0 + HOUR),
        ],
        T0 + HOUR,
    )
    .await;
    let mut got = outcomes(db, &b, &r).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, "inhibited_by_pipeline".to_string(), "quiet".to_string()),
            (b.channel_id, "new_alert".to_string(), String::new()),
            (b.channel_id, "new_alert".to_string(), String::new()),
        ]
    );
    // 24 h after the source was created it no longer counts (`crit`, created an hour later,
    // still does).
    let r = push(
        db,
        &b,
        vec![event(
            "disk3",
            Status::Warning,
            &[("host", "h1")],
            T0 + 24 * HOUR,
        )],
        T0 + 24 * HOUR,
    )
    .await;
    assert_eq!(outcomes(db, &b, &r).await[0].1, "inhibited_by_pipeline");
    let r = push(
        db,
        &b,
        vec![event(
            "disk4",
            Status::Warning,
            &[("host", "h1")],
            T0 + 25 * HOUR + 1,
        )],
        T0 + 25 * HOUR + 1,
    )
    .await;
    assert_eq!(outcomes(db, &b, &r).await[0].1, "new_alert");
}

/// The pipeline of the batch-order tests: a Warning is inhibited by an active Critical
/// alert of the same host.
async fn save_host_inhibit(db: &Db, b: &Bootstrap) {
    save(
        db,
        b,
        &[action(
            "quiet",
            vec![Condition::is_in("severity", ["Warning"])],
            Action::Inhibit(InhibitSpec {
                source_conditions: vec![vec![Condition::is_in("severity", ["Critical"])]],
                equal_attributes: Vec::new(),
                equal_labels: vec!["host".into()],
            }),
        )],
        T0,
    )
    .await;
}

async fn a_source_opened_earlier_in_the_batch_inhibits_a_later_event(db: &Db) {
    // spec: ING-085 — the Critical that the first event of a push opens is an active alert
    // of the integration when the second event of the same push is decided.
    let b = db.boot(T0).await;
    save_host_inhibit(db, &b).await;
    let r = push(
        db,
        &b,
        vec![
            event("down", Status::Critical, &[("host", "h1")], T0),
            event("disk", Status::Warning, &[("host", "h1")], T0),
            event("disk2", Status::Warning, &[("host", "h2")], T0),
        ],
        T0,
    )
    .await;
    let got: Vec<(String, String)> = outcomes(db, &b, &r)
        .await
        .into_iter()
        .map(|(_, o, rule)| (o, rule))
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            ("inhibited_by_pipeline".to_string(), "quiet".to_string()),
            ("new_alert".to_string(), String::new()),
            ("new_alert".to_string(), String::new()),
        ]
    );
    let keys: Vec<String> = alerts(db, &b)
        .await
        .into_iter()
        .map(|a| a.labels.get("host").cloned().unwrap_or_default() + "/" + &a.title)
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(!keys.contains(&"h1/disk problem".to_string()), "{keys:?}");
}

async fn a_source_resolved_earlier_in_the_batch_no_longer_inhibits(db: &Db) {
    // spec: ING-085, ING-086 — a Critical resolved by an earlier event of the push is no
    // longer active for the later Warning; the recovery itself is never inhibited.
    let b = db.boot(T0).await;
    save_host_inhibit(db, &b).await;
    push(
        db,
        &b,
        vec![event("down", Status::Critical, &[("host", "h1")], T0)],
        T0,
    )
    .await;
    let r = push(
        db,
        &b,
        vec![
            event("down", Status::Ok, &[("host", "h1")], T0 + HOUR),
            event("disk", Status::Warning, &[("host", "h1")], T0 + HOUR),
        ],
        T0 + HOUR,
    )
    .await;
    let got: Vec<String> = outcomes(db, &b, &r)
        .await
        .into_iter()
        .map(|(_, o, _)| o)
        .collect();
    assert!(
        !got.iter().any(|o| o == "inhibited_by_pipeline"),
        "nothing is inhibited once the source is resolved: {got:?}"
    );
    assert_eq!(got.len(), 2);
}

/// Alerts as (title, host, status, severity) and incidents as (title, severity, alert count),
/// sorted, to compare two histories whose ids differ.
async fn shape(
    db: &Db,
    b: &Bootstrap,
) -> (Vec<(String, String, String)>, Vec<(String, String, i64)>) {
    let mut a: Vec<(String, String, String)> = alerts(db, b)
        .await
        .into_iter()
        .map(|a| {
            (
                a.title.clone(),
                a.labels.get("host").cloned().unwrap_or_default(),
                format!("{:?}/{:?}", a.alert_status, a.alert_severity),
            )
        })
        .collect();
    a.sort();
    let mut i: Vec<(String, String, i64)> = incidents(db, b)
        .await
        .into_iter()
        .map(|i| {
            (
                i.title.clone(),
                format!("{:?}", i.incident_severity),
                i.alert_cnt,
            )
        })
        .collect();
    i.sort();
    (a, i)
}

async fn one_push_decides_as_the_same_events_pushed_one_by_one(db: &Db) {
    // spec: ING-085 — the issue's property "the same sequence in one batch or split across
    // many batches gives the same alerts and incidents", with a pipeline inhibit action
    // whose sources come and go inside the sequence.
    let seq = [
        ("disk", Status::Warning, "h1"),
        ("down", Status::Critical, "h1"),
        ("disk", Status::Warning, "h1"),
        ("cpu", Status::Warning, "h1"),
        ("down", Status::Ok, "h1"),
        ("mem", Status::Warning, "h1"),
        ("down2", Status::Critical, "h2"),
        ("cpu2", Status::Warning, "h2"),
        ("cpu", Status::Ok, "h1"),
        ("disk3", Status::Warning, "h3"),
    ];
    let together = db.boot(T0).await;
    let other = db.sibling().await;
    save_host_inhibit(db, &together).await;
    let all = seq
        .iter()
        .map(|(k, s, h)| event(k, *s, &[("host", h)], T0))
        .collect();
    push(db, &together, all, T0).await;

    let apart = other.boot(T0).await;
    save_host_inhibit(&other, &apart).await;
    for (k, s, h) in seq {
        push(&other, &apart, vec![event(k, s, &[("host", h)], T0)], T0).await;
    }
    let (a1, i1) = shape(db, &together).await;
    let (a2, i2) = shape(&other, &apart).await;
    other.finish().await;
    assert_eq!(a1, a2);
    assert_eq!(i1, i2);
    // And the sequence did inhibit something: `cpu` and `disk` while `down` was active.
    assert!(
        a1.iter()
            .all(|(t, h, _)| !(t == "cpu problem" && h == "h1")),
        "{a1:?}"
    );
    assert!(a1.iter().any(|(t, _, _)| t == "mem problem"), "{a1:?}");
}
