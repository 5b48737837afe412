//! Deleting incidents through the store, on SQLite and (with `KLAXON_TEST_DATABASE_URL`)
//! PostgreSQL, with explicit instants: bulk deletion by time range (service-agreement.md
//! SVC-183) removes every row an incident owns in one transaction, previews roll back, the
//! retention sweep (SVC-184, docs/data-retention.md) deletes closed incidents by close time in
//! bounded, audited chunks, and a deleted incident no longer counts for outlier marking or
//! past incidents (response.md RSP-454).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use klaxon_core::model::{DAY_MS, EventOrigin, Millis, NewEvent, Status};
use klaxon_core::response::rules::By;
use klaxon_core::response::{EscalationRule, Level, RuleStatus, Target};
use klaxon_store::{AuditFilter, Bootstrap, BulkDeletion, DeletionCounts, WebhookDraft};

both!(
    bulk_deletion_leaves_nothing_of_the_incident,
    a_preview_and_a_refusal_change_nothing,
    the_sweep_deletes_closed_incidents_by_close_time_in_chunks,
    bulk_deleted_incidents_no_longer_make_new_ones_frequent,
    swept_incidents_are_no_longer_past_incidents,
    alerts_without_an_incident_go_by_range_and_by_retention,
);

const T0: Millis = 1_750_000_000_000;
const MIN: Millis = 60_000;

async fn push_titled(db: &Db, b: &Bootstrap, key: &str, title: &str, status: Status, at: Millis) {
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
        event_severity: Status::Critical.severity(),
        title: title.into(),
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

async fn push(db: &Db, b: &Bootstrap, key: &str, status: Status, at: Millis) {
    push_titled(db, b, key, &format!("{key} failing"), status, at).await;
}

/// The id of the incident whose first alert has `key`.
async fn incident_of(db: &Db, b: &Bootstrap, key: &str) -> String {
    for id in db.incident_ids(b.account_id).await {
        let inc = db.store.incident(b.account_id, &id).await.unwrap().unwrap();
        if inc.first_alert_key == key {
            return id;
        }
    }
    panic!("no incident for {key}");
}

/// Rows of `table` whose `column` is `value`.
async fn rows(db: &Db, table: &str, column: &str, value: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE {column} = '{value}'");
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(&db.raw)
        .await
        .unwrap()
}

async fn alert_ids_of(db: &Db, incident_id: &str) -> Vec<String> {
    let sql = format!("SELECT alert_id FROM alerts WHERE incident_id = '{incident_id}'");
    sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.raw)
        .await
        .unwrap()
}

/// Every row that belongs to the incident or one of its alerts, per table.
async fn owned_rows(db: &Db, incident_id: &str, alert_ids: &[String]) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for (table, column) in [
        ("incidents", "incident_id"),
        ("alerts", "incident_id"),
        ("incident_timeline", "incident_id"),
        ("timers", "incident_id"),
        ("notifications", "incident_id"),
        ("event_outcomes", "incident_id"),
        ("event_outcomes", "source_incident_id"),
        ("webhook_deliveries", "subject_id"),
        ("webhook_attempts", "ref_id"),
    ] {
        out.push((
            format!("{table}.{column}"),
            rows(db, table, column, incident_id).await,
        ));
    }
    for a in alert_ids {
        for (table, column) in [
            ("alerts", "alert_id"),
            ("events", "alert_id"),
            ("event_outcomes", "alert_id"),
            ("webhook_deliveries", "subject_id"),
            ("webhook_attempts", "ref_id"),
        ] {
            out.push((
                format!("{table}.{column}"),
                rows(db, table, column, a).await,
            ));
        }
    }
    out
}

fn total(rows: &[(String, i64)]) -> i64 {
    rows.iter().map(|(_, n)| n).sum()
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

fn hook(kind: &str) -> WebhookDraft {
    WebhookDraft {
        kind: kind.into(),
        name: format!("{kind} hook"),
        endpoint: "http://127.0.0.1:9/hook".into(),
        headers: BTreeMap::new(),
        event_types: vec![],
        channel_ids: vec![],
        custom_body: String::new(),
        value_mapping: BTreeMap::new(),
        team_id: 0,
        status: "enabled".into(),
    }
}

/// An account with an escalation rule (notifications), auto-close (timers) and incident and
/// alert webhooks (outbox rows), so an incident owns rows in every table.
async fn busy_account(db: &Db) -> Bootstrap {
    let b = db.boot(T0).await;
    db.exec(&format!(
        "UPDATE channels SET auto_resolve_timeout = 3600, auto_resolve_mode = 'trigger' \
         WHERE channel_id = {}",
        b.channel_id
    ))
    .await;
    db.store
        .save_escalation_rule(one_level_rule(&b), T0)
        .await
        .unwrap()
        .unwrap();
    for kind in ["incident_webhook", "alert_webhook"] {
        db.store
            .create_webhook(b.account_id, &hook(kind), "s", b.owner_member_id, T0)
            .await
            .unwrap();
    }
    b
}

/// A webhook attempt (the invocation history) for `subject`, as the dispatcher records one.
async fn attempt(db: &Db, b: &Bootstrap, subject: &str) {
    db.exec(&format!(
        "INSERT INTO webhook_attempts (attempt_id, account_id, integration_id, delivery_seq, \
         event_id, event_type, ref_id, attempt, status, endpoint, request_body, created_at) \
         VALUES ('{}', {}, 1, 1, 'e', 'i_new', '{subject}', 1, 'success', 'http://x', '{{}}', {T0})",
        random_hex(12),
        b.account_id
    ))
    .await;
}

async fn bulk_deletion_leaves_nothing_of_the_incident(db: &Db) {
    // spec: SVC-183 (admins bulk-delete incidents and alerts by time range), SVC-184
    // (primary stores at once)
    let b = busy_account(db).await;
    push(db, &b, "in-1", Status::Critical, T0 + MIN).await;
    push(db, &b, "in-2", Status::Critical, T0 + 2 * MIN).await;
    push(db, &b, "in-2", Status::Ok, T0 + 3 * MIN).await;
    push(db, &b, "out-1", Status::Critical, T0 + 20 * MIN).await;
    let (gone_1, gone_2, kept) = (
        incident_of(db, &b, "in-1").await,
        incident_of(db, &b, "in-2").await,
        incident_of(db, &b, "out-1").await,
    );
    // A comment adds a timeline entry of a person.
    let owner = b.owner_member_id;
    db.store
        .incident_action(b.account_id, &gone_1, T0 + 4 * MIN, |e, i, _| {
            e.comment(i, owner, "looking", false)
        })
        .await
        .unwrap();
    for id in [&gone_1, &gone_2, &kept] {
        attempt(db, &b, id).await;
    }
    // An event of the kept incident's alert names a deleted incident as its inhibitor.
    db.exec(&format!(
        "UPDATE event_outcomes SET source_incident_id = '{gone_1}' WHERE incident_id = '{kept}'"
    ))
    .await;
    let alerts_1 = alert_ids_of(db, &gone_1).await;
    let alerts_2 = alert_ids_of(db, &gone_2).await;
    let alerts_kept = alert_ids_of(db, &kept).await;
    let before_1 = owned_rows(db, &gone_1, &alerts_1).await;
    for kind in [
        "incidents.incident_id",
        "alerts.incident_id",
        "incident_timeline.incident_id",
        "timers.incident_id",
        "notifications.incident_id",
        "event_outcomes.incident_id",
        "webhook_deliveries.subject_id",
        "webhook_attempts.ref_id",
        "events.alert_id",
    ] {
        assert!(
            before_1.iter().any(|(k, n)| k == kind && *n > 0),
            "the arrangement has {kind} rows: {before_1:?}"
        );
    }
    let kept_before = total(&owned_rows(db, &kept, &alerts_kept).await);

    let done = db
        .store
        .bulk_delete_incidents(b.account_id, T0, T0 + 10 * MIN, 100, |_| true)
        .await
        .unwrap();
    let BulkDeletion::Deleted(counts) = done else {
        panic!("not deleted: {done:?}");
    };
    assert_eq!(counts.incidents, 2);
    assert_eq!(counts.alerts, 2);
    assert_eq!(counts.objects(), 4);
    assert!(
        counts.events >= 3 && counts.timeline_entries >= 4,
        "{counts:?}"
    );
    assert!(
        counts.notifications > 0 && counts.webhook_deliveries > 0,
        "{counts:?}"
    );
    assert_eq!(counts.webhook_attempts, 2);
    for (id, alerts) in [(&gone_1, &alerts_1), (&gone_2, &alerts_2)] {
        let left = owned_rows(db, id, alerts).await;
        assert_eq!(total(&left), 0, "rows left of {id}: {left:?}");
        assert!(db.store.incident(b.account_id, id).await.unwrap().is_none());
    }
    // The incident outside the range keeps everything; only the reference to the deleted
    // inhibitor is blanked.
    let kept_after = owned_rows(db, &kept, &alerts_kept).await;
    assert_eq!(total(&kept_after), kept_before, "{kept_after:?}");
    assert_eq!(rows(db, "event_outcomes", "incident_id", &kept).await, 1);
    assert_eq!(
        rows(db, "event_outcomes", "source_incident_id", &gone_1).await,
        0
    );
    assert_eq!(db.incident_ids(b.account_id).await, vec![kept.clone()]);
}

async fn a_preview_and_a_refusal_change_nothing(db: &Db) {
    // spec: SVC-183 (deletion shows the number of objects first; nothing half-done)
    let b = busy_account(db).await;
    for i in 0..3 {
        push(db, &b, &format!("p-{i}"), Status::Warning, T0 + i * MIN).await;
    }
    let ids = db.incident_ids(b.account_id).await;
    let mut seen = DeletionCounts::default();
    let preview = db
        .store
        .bulk_delete_incidents(b.account_id, T0, T0 + 60 * MIN, 100, |c| {
            seen = *c;
            false
        })
        .await
        .unwrap();
    assert_eq!(preview, BulkDeletion::RolledBack(seen));
    assert_eq!(seen.objects(), 6);
    assert_eq!(db.incident_ids(b.account_id).await, ids);
    // Over the maximum: refused before anything is deleted.
    let too_many = db
        .store
        .bulk_delete_incidents(b.account_id, T0, T0 + 60 * MIN, 5, |_| true)
        .await
        .unwrap();
    assert_eq!(too_many, BulkDeletion::TooMany { objects: 6 });
    assert_eq!(db.incident_ids(b.account_id).await, ids);
    // The real deletion removes exactly what the preview counted.
    let done = db
        .store
        .bulk_delete_incidents(b.account_id, T0, T0 + 60 * MIN, 100, |_| true)
        .await
        .unwrap();
    assert_eq!(done, BulkDeletion::Deleted(seen));
    assert!(db.incident_ids(b.account_id).await.is_empty());
    // Another account's range is another account's.
    let empty = db
        .store
        .bulk_delete_incidents(b.account_id + 1, 0, T0 * 2, 100, |_| true)
        .await
        .unwrap();
    assert_eq!(empty, BulkDeletion::Deleted(DeletionCounts::default()));
}

async fn the_sweep_deletes_closed_incidents_by_close_time_in_chunks(db: &Db) {
    // spec: SVC-184 (deletion by retention), RSP-454 (incidents deleted by data retention)
    let b = busy_account(db).await;
    // Two closed on day 0, one closed on day 20, one still open since day 0.
    for key in ["old-1", "old-2"] {
        push(db, &b, key, Status::Critical, T0).await;
        push(db, &b, key, Status::Ok, T0 + MIN).await;
    }
    push(db, &b, "late", Status::Critical, T0).await;
    push(db, &b, "late", Status::Ok, T0 + 20 * DAY_MS).await;
    push(db, &b, "open", Status::Critical, T0).await;
    let (old_1, old_2, late, open) = (
        incident_of(db, &b, "old-1").await,
        incident_of(db, &b, "old-2").await,
        incident_of(db, &b, "late").await,
        incident_of(db, &b, "open").await,
    );
    let closed = db
        .store
        .incident(b.account_id, &old_1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(closed.progress.as_str(), "Closed");
    assert_eq!(closed.close_time, T0 + MIN);
    let at = T0 + 31 * DAY_MS;
    // No retention set: nothing is due, ever.
    assert!(
        db.store
            .sweep_incident_retention(at, 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.store
            .set_account_settings(b.account_id, None, Some(30), None, T0)
            .await
            .unwrap()
    );
    let account = db.store.account(b.account_id).await.unwrap().unwrap();
    assert_eq!(account.incident_retention_days, 30);
    // Chunks of one: the first sweep takes the oldest close and says there may be more.
    let first = db.store.sweep_incident_retention(at, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].account_id, b.account_id);
    assert_eq!(first[0].cutoff, at - 30 * DAY_MS);
    assert_eq!(first[0].counts.incidents, 1);
    assert!(first[0].more);
    let second = db.store.sweep_incident_retention(at, 1).await.unwrap();
    assert_eq!(second[0].counts.incidents, 1);
    let third = db.store.sweep_incident_retention(at, 1).await.unwrap();
    assert!(third.is_empty(), "nothing else is due: {third:?}");
    for id in [&old_1, &old_2] {
        assert!(db.store.incident(b.account_id, id).await.unwrap().is_none());
        assert_eq!(rows(db, "incident_timeline", "incident_id", id).await, 0);
        assert_eq!(rows(db, "notifications", "incident_id", id).await, 0);
        assert_eq!(rows(db, "alerts", "incident_id", id).await, 0);
    }
    // Closed 20 days in: due 30 days after that, not before. Open incidents never are.
    let mut left = db.incident_ids(b.account_id).await;
    left.sort();
    let mut want = vec![late.clone(), open.clone()];
    want.sort();
    assert_eq!(left, want);
    let later = db
        .store
        .sweep_incident_retention(T0 + 50 * DAY_MS + MIN, 10)
        .await
        .unwrap();
    assert_eq!(later[0].counts.incidents, 1);
    assert!(!later[0].more);
    assert_eq!(db.incident_ids(b.account_id).await, vec![open.clone()]);
    // Every chunk is in the audit log with its counts, as the system's deletion.
    let page = db
        .store
        .search_audit(
            b.account_id,
            &AuditFilter {
                start: 0,
                end: T0 * 2,
                operations: vec!["incident:write:retention_delete".into()],
                limit: 10,
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    let r = &page.records[0];
    assert_eq!((r.member_id, r.source.as_str()), (0, "system"));
    assert!(r.is_dangerous);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["deleted"]["incidents"], 1);
    assert_eq!(body["incident_retention_days"], 30);
    // Back to "keep forever": nothing more is deleted.
    db.store
        .set_account_settings(b.account_id, None, Some(0), None, T0)
        .await
        .unwrap();
    push(db, &b, "open", Status::Ok, T0 + 51 * DAY_MS).await;
    assert!(
        db.store
            .sweep_incident_retention(T0 + 500 * DAY_MS, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.incident_ids(b.account_id).await, vec![open]);
}

/// RSP-452's mark on the incident (`rare`, `frequent`, or `""`).
async fn frequency(db: &Db, b: &Bootstrap, id: &str) -> String {
    db.store
        .incident(b.account_id, id)
        .await
        .unwrap()
        .unwrap()
        .response
        .frequency
}

async fn bulk_deleted_incidents_no_longer_make_new_ones_frequent(db: &Db) {
    // spec: RSP-454 (only incidents still stored count), RSP-452
    let b = db.boot(T0).await;
    push_titled(
        db,
        &b,
        "q-1",
        "queue depth high on mq-1",
        Status::Warning,
        T0,
    )
    .await;
    let first = incident_of(db, &b, "q-1").await;
    assert_eq!(frequency(db, &b, &first).await, "rare");
    let done = db
        .store
        .bulk_delete_incidents(b.account_id, T0, T0 + MIN, 100, |_| true)
        .await
        .unwrap();
    assert!(matches!(done, BulkDeletion::Deleted(c) if c.incidents == 1));
    // The look-alike that follows has nothing stored to resemble: rare again.
    push_titled(
        db,
        &b,
        "q-2",
        "queue depth high on mq-2",
        Status::Warning,
        T0 + 2 * MIN,
    )
    .await;
    assert_eq!(
        frequency(db, &b, &incident_of(db, &b, "q-2").await).await,
        "rare"
    );
    // While the look-alike is stored, the next one is frequent.
    push_titled(
        db,
        &b,
        "q-3",
        "queue depth high on mq-3",
        Status::Warning,
        T0 + 3 * MIN,
    )
    .await;
    assert_eq!(
        frequency(db, &b, &incident_of(db, &b, "q-3").await).await,
        "frequent"
    );
}

async fn swept_incidents_are_no_longer_past_incidents(db: &Db) {
    // spec: RSP-454 (incidents deleted by data retention are not considered), RSP-451
    let b = db.boot(T0).await;
    push_titled(
        db,
        &b,
        "p-1",
        "payments down on web-1",
        Status::Critical,
        T0,
    )
    .await;
    push_titled(
        db,
        &b,
        "p-1",
        "payments down on web-1",
        Status::Ok,
        T0 + MIN,
    )
    .await;
    push_titled(
        db,
        &b,
        "p-2",
        "payments down on web-2",
        Status::Critical,
        T0 + 10 * MIN,
    )
    .await;
    let (past, current) = (
        incident_of(db, &b, "p-1").await,
        incident_of(db, &b, "p-2").await,
    );
    let inc = db
        .store
        .incident(b.account_id, &current)
        .await
        .unwrap()
        .unwrap();
    let window = || async {
        db.store
            .closed_incidents_between(
                b.account_id,
                b.channel_id,
                inc.start_time - 30 * DAY_MS,
                inc.start_time,
                10,
            )
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.incident_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(window().await, vec![past.clone()]);
    db.store
        .set_account_settings(b.account_id, None, Some(30), None, T0)
        .await
        .unwrap();
    let swept = db
        .store
        .sweep_incident_retention(T0 + 30 * DAY_MS + 2 * MIN, 10)
        .await
        .unwrap();
    assert_eq!(swept[0].counts.incidents, 1);
    assert!(window().await.is_empty());
    // The open incident itself stays.
    assert!(
        db.store
            .incident(b.account_id, &current)
            .await
            .unwrap()
            .is_some()
    );
}

/// Alerts of the account that belong to no incident (kept with a silence mark).
async fn unattached(db: &Db, b: &Bootstrap) -> i64 {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM alerts WHERE account_id = {} AND incident_id = ''",
        b.account_id
    );
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(&db.raw)
        .await
        .unwrap()
}

async fn alerts_without_an_incident_go_by_range_and_by_retention(db: &Db) {
    // spec: SVC-183 ("incidents and alerts by time range"), SVC-184 (retention), ING-123
    // (a silenced alert is kept, with no incident)
    let b = db.boot(T0).await;
    push(db, &b, "s-0", Status::Critical, T0).await;
    let first = db.incident_ids(b.account_id).await.remove(0);
    let inc = db
        .store
        .incident(b.account_id, &first)
        .await
        .unwrap()
        .unwrap();
    // A quick silence of that incident silences the next Critical events for an hour.
    db.store
        .save_noise_rule(klaxon_core::noise::quick_silence(&inc, T0), T0)
        .await
        .unwrap()
        .unwrap();
    push(db, &b, "s-1", Status::Critical, T0 + MIN).await;
    push(db, &b, "s-2", Status::Critical, T0 + 2 * MIN).await;
    assert_eq!(
        unattached(db, &b).await,
        2,
        "silenced alerts are kept without an incident"
    );
    assert_eq!(db.incident_ids(b.account_id).await.len(), 1);
    // A range holding one of them and no incident deletes just that alert and its events.
    let done = db
        .store
        .bulk_delete_incidents(b.account_id, T0 + MIN, T0 + 2 * MIN, 100, |_| true)
        .await
        .unwrap();
    let BulkDeletion::Deleted(c) = done else {
        panic!("{done:?}");
    };
    assert_eq!((c.incidents, c.alerts), (0, 1));
    assert!(c.events >= 1 && c.event_outcomes >= 1, "{c:?}");
    assert_eq!(unattached(db, &b).await, 1);
    // Retention: the other one goes once it recovered more than the retention ago.
    push(db, &b, "s-2", Status::Ok, T0 + 3 * MIN).await;
    db.store
        .set_account_settings(b.account_id, None, Some(30), None, T0)
        .await
        .unwrap();
    let swept = db
        .store
        .sweep_incident_retention(T0 + 30 * DAY_MS + 4 * MIN, 10)
        .await
        .unwrap();
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!((swept[0].counts.incidents, swept[0].counts.alerts), (0, 1));
    assert_eq!(unattached(db, &b).await, 0);
    // The open incident stays.
    assert_eq!(db.incident_ids(b.account_id).await, vec![first]);
}
