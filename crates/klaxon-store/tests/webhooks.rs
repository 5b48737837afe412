//! The outbound webhook outbox through the store (response.md §2.23, ingest.md §2.21), on
//! SQLite and (with `KLAXON_TEST_DATABASE_URL`) PostgreSQL, with explicit instants: events are
//! written with the change that fires them, filtered per integration, claimed one at a time
//! per subject in order, retried as rows, withheld for a halted tenant, and recorded in the
//! history.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::{Db, random_hex};

use std::collections::BTreeMap;

use klaxon_core::model::{EventOrigin, Millis, NewEvent, Status};
use klaxon_store::{Bootstrap, PendingWebhook, WebhookAttempt, WebhookDraft, WebhookHistoryFilter};

both!(
    events_are_written_with_the_change_and_filtered_per_integration,
    one_subject_goes_out_in_order_and_retries_wait_as_rows,
    a_halted_tenant_gets_no_webhook,
);

const T0: Millis = 1_750_000_000_000;

async fn boot(db: &Db) -> Bootstrap {
    db.boot(T0).await
}

fn draft(kind: &str, types: &[&str], channels: Vec<i64>) -> WebhookDraft {
    WebhookDraft {
        kind: kind.into(),
        name: format!("{kind} hook"),
        endpoint: "http://127.0.0.1:9/hook".into(),
        headers: BTreeMap::new(),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        channel_ids: channels,
        custom_body: String::new(),
        value_mapping: BTreeMap::new(),
        team_id: 0,
        status: "enabled".into(),
    }
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
    while db.store.process_inbox("test", 512, at).await.unwrap() > 0 {}
}

async fn incident_ids(db: &Db, b: &Bootstrap) -> Vec<String> {
    db.incident_ids(b.account_id).await
}

/// (integration, event_type, subject) of every outbox row, oldest first.
async fn rows(db: &Db, b: &Bootstrap) -> Vec<(i64, String, String)> {
    db.store
        .webhook_deliveries(b.account_id)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.integration_id, d.event_type, d.subject_id))
        .collect()
}

fn done(p: &PendingWebhook, success: bool, retry_at: Option<Millis>) -> WebhookAttempt {
    WebhookAttempt {
        body: format!("{{\"event_id\":\"{}\"}}", p.event_id),
        success,
        response_status: if success { 200 } else { 0 },
        response_body: String::new(),
        latency_ms: 3,
        error: if success {
            String::new()
        } else {
            "unexpected EOF".into()
        },
        retry_at,
    }
}

async fn events_are_written_with_the_change_and_filtered_per_integration(db: &Db) {
    // spec: ING-250 (a_new, a_merge, a_update, a_close), RSP-371 (i_new, i_ack, i_rslv),
    // RSP-372, RSP-378 (enabled, event types, channels)
    let b = boot(db).await;
    let all_incident = db
        .store
        .create_webhook(
            b.account_id,
            &draft("incident_webhook", &[], vec![]),
            "s",
            1,
            T0,
        )
        .await
        .unwrap();
    let alerts = db
        .store
        .create_webhook(
            b.account_id,
            &draft(
                "alert_webhook",
                &["a_new", "a_merge", "a_update", "a_close"],
                vec![b.channel_id],
            ),
            "s",
            1,
            T0,
        )
        .await
        .unwrap();
    // Subscribed to i_ack only; another channel only; disabled: none of them sees i_new.
    let ack_only = db
        .store
        .create_webhook(
            b.account_id,
            &draft("incident_webhook", &["i_ack"], vec![]),
            "s",
            1,
            T0,
        )
        .await
        .unwrap();
    let other_channel = db
        .store
        .create_webhook(
            b.account_id,
            &draft("incident_webhook", &[], vec![b.channel_id + 1_000]),
            "s",
            1,
            T0,
        )
        .await
        .unwrap();
    let mut off = draft("incident_webhook", &[], vec![]);
    off.status = "disabled".into();
    db.store
        .create_webhook(b.account_id, &off, "s", 1, T0)
        .await
        .unwrap();
    assert_ne!(all_incident.integration_id, alerts.integration_id);
    assert!(all_incident.integration_id > b.integration_id);

    push(db, &b, "disk", Status::Critical, T0 + 1_000).await;
    let ids = incident_ids(db, &b).await;
    assert_eq!(ids.len(), 1);
    let inc = ids[0].clone();
    let got = rows(db, &b).await;
    let alert_id = got
        .iter()
        .find(|(_, t, _)| t == "a_new")
        .map(|(_, _, s)| s.clone())
        .expect("a_new");
    assert!(
        got.contains(&(alerts.integration_id, "a_new".into(), alert_id.clone()))
            && got.contains(&(alerts.integration_id, "a_merge".into(), alert_id.clone())),
        "{got:?}"
    );
    assert!(
        got.contains(&(all_incident.integration_id, "i_new".into(), inc.clone())),
        "{got:?}"
    );
    assert!(
        got.iter()
            .all(|(i, _, _)| *i == all_incident.integration_id || *i == alerts.integration_id),
        "filtered integrations got rows: {got:?}"
    );
    // a_new comes before a_merge for the same alert.
    let pos = |t: &str| got.iter().position(|(_, x, _)| x == t).unwrap();
    assert!(pos("a_new") < pos("a_merge"));

    // A second trigger of the same alert changes it: a_update, not a_new.
    push(db, &b, "disk", Status::Warning, T0 + 2_000).await;
    let got = rows(db, &b).await;
    assert!(
        got.contains(&(alerts.integration_id, "a_update".into(), alert_id.clone())),
        "{got:?}"
    );
    assert_eq!(got.iter().filter(|(_, t, _)| t == "a_new").count(), 1);

    // A person acknowledges, then closes: i_ack (also for the ack-only hook), i_rslv and the
    // alert's a_close.
    let owner = b.owner_member_id;
    db.store
        .incident_action(b.account_id, &inc, T0 + 3_000, |e, i, ctx| {
            e.acknowledge(i, owner, "api", ctx.rule)
        })
        .await
        .unwrap();
    db.store
        .incident_action(b.account_id, &inc, T0 + 4_000, |e, i, _| {
            e.close(i, owner, "api", None, None);
            Ok(())
        })
        .await
        .unwrap();
    let got = rows(db, &b).await;
    for want in [
        (all_incident.integration_id, "i_ack", inc.as_str()),
        (ack_only.integration_id, "i_ack", inc.as_str()),
        (all_incident.integration_id, "i_rslv", inc.as_str()),
        (alerts.integration_id, "a_close", alert_id.as_str()),
    ] {
        assert!(
            got.contains(&(want.0, want.1.to_string(), want.2.to_string())),
            "{want:?} in {got:?}"
        );
    }
    assert!(
        !got.iter()
            .any(|(i, _, _)| *i == other_channel.integration_id)
    );
    // The same event goes to two integrations with one event_id.
    let states = db.store.webhook_deliveries(b.account_id).await.unwrap();
    let acks: Vec<_> = states.iter().filter(|d| d.event_type == "i_ack").collect();
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0].event_id, acks[1].event_id);
    assert_eq!(acks[0].event_id.len(), 32);
    assert!(acks[0].event_id.chars().all(|c| c.is_ascii_hexdigit()));
}

async fn one_subject_goes_out_in_order_and_retries_wait_as_rows(db: &Db) {
    // spec: RSP-375 (one at a time per incident, in order), RSP-374 (the retry waits as a
    // row, same event_id), RSP-379 (every attempt recorded; filters; cursor paging)
    let b = boot(db).await;
    let hook = db
        .store
        .create_webhook(
            b.account_id,
            &draft("incident_webhook", &[], vec![]),
            "s",
            1,
            T0,
        )
        .await
        .unwrap();
    push(db, &b, "cpu", Status::Critical, T0).await;
    let inc = incident_ids(db, &b).await[0].clone();
    let owner = b.owner_member_id;
    db.store
        .incident_action(b.account_id, &inc, T0 + 10, |e, i, ctx| {
            e.acknowledge(i, owner, "api", ctx.rule)
        })
        .await
        .unwrap();
    let now = T0 + 100;
    let first = db.store.claim_webhooks("n1", now, 10).await.unwrap();
    assert_eq!(first.len(), 1, "only the oldest event of the incident");
    assert_eq!(first[0].event_type, "i_new");
    assert_eq!(first[0].endpoint, "http://127.0.0.1:9/hook");
    // Another node finds nothing: the next event waits for the first.
    assert!(
        db.store
            .claim_webhooks("n2", now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The first attempt fails in a retryable way: the row waits 1 s, and so does i_ack.
    let retry_at = now + 1_000;
    assert!(
        db.store
            .record_webhook_attempt(
                "n1",
                &first[0],
                &done(&first[0], false, Some(retry_at)),
                now
            )
            .await
            .unwrap()
    );
    assert!(
        db.store
            .claim_webhooks("n1", now + 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = db.store.claim_webhooks("n2", retry_at, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event_id, first[0].event_id);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(
        again[0].body,
        format!("{{\"event_id\":\"{}\"}}", first[0].event_id)
    );
    // A node whose claim moved on writes nothing.
    assert!(
        !db.store
            .record_webhook_attempt("n1", &again[0], &done(&again[0], true, None), retry_at)
            .await
            .unwrap()
    );
    assert!(
        db.store
            .record_webhook_attempt("n2", &again[0], &done(&again[0], true, None), retry_at)
            .await
            .unwrap()
    );
    let next = db.store.claim_webhooks("n1", retry_at, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].event_type, "i_ack");
    assert!(
        db.store
            .record_webhook_attempt("n1", &next[0], &done(&next[0], true, None), retry_at)
            .await
            .unwrap()
    );
    let states = db.store.webhook_deliveries(b.account_id).await.unwrap();
    let summary: Vec<(&str, &str, i64)> = states
        .iter()
        .filter(|d| d.event_type == "i_new" || d.event_type == "i_ack")
        .map(|d| (d.event_type.as_str(), d.status.as_str(), d.attempts))
        .collect();
    assert_eq!(
        summary,
        vec![("i_new", "success", 2), ("i_ack", "success", 1)]
    );

    // History: three attempts, newest first; filters and a cursor.
    let window = |limit| WebhookHistoryFilter {
        start_time: T0,
        end_time: T0 + 10_000,
        limit,
        ..WebhookHistoryFilter::default()
    };
    let page = db
        .store
        .webhook_history(b.account_id, &window(10))
        .await
        .unwrap();
    let seen: Vec<(String, i64, String)> = page
        .items
        .iter()
        .filter(|h| h.ref_id == inc && (h.event_type == "i_new" || h.event_type == "i_ack"))
        .map(|h| (h.event_type.clone(), h.attempt, h.status.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("i_ack".to_string(), 1, "success".to_string()),
            ("i_new".to_string(), 2, "success".to_string()),
            ("i_new".to_string(), 1, "failed".to_string()),
        ]
    );
    let failed = db
        .store
        .webhook_history(
            b.account_id,
            &WebhookHistoryFilter {
                status: "failed".into(),
                integration_id: hook.integration_id,
                ..window(10)
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.items.len(), 1);
    assert_eq!(failed.items[0].error, "unexpected EOF");
    let detail = db
        .store
        .webhook_history_item(b.account_id, &failed.items[0].attempt_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail, failed.items[0]);
    // Pages of one: the cursor walks every record once.
    let total = page.items.len();
    let mut walked = Vec::new();
    let mut filter = window(1);
    loop {
        let p = db
            .store
            .webhook_history(b.account_id, &filter)
            .await
            .unwrap();
        walked.extend(p.items.iter().map(|h| h.attempt_id.clone()));
        match p.search_after_ctx {
            Some(ctx) => filter.search_after_ctx = Some(ctx),
            None => break,
        }
    }
    assert_eq!(walked.len(), total);
    walked.sort();
    walked.dedup();
    assert_eq!(walked.len(), total);
    // A forged cursor is refused.
    filter.search_after_ctx = Some("bogus".into());
    assert!(
        db.store
            .webhook_history(b.account_id, &filter)
            .await
            .is_err()
    );
    // 7 days later the purge removes it all.
    db.store
        .purge_webhook_history(T0 + 10_000 + 7 * 86_400_000)
        .await
        .unwrap();
    assert!(
        db.store
            .webhook_history(b.account_id, &window(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn a_halted_tenant_gets_no_webhook(db: &Db) {
    // spec: RSP-008 (Halt: no webhook is sent while the tenant is suspended)
    let b = boot(db).await;
    db.store
        .create_webhook(
            b.account_id,
            &draft("incident_webhook", &[], vec![]),
            "s",
            1,
            T0,
        )
        .await
        .unwrap();
    push(db, &b, "mem", Status::Critical, T0).await;
    db.exec(&format!(
        "INSERT INTO saas_tenants (account_id, profile, state, reason, since, edition, \
         currency, region, created_at, updated_at) VALUES ({}, 'commercial', 'suspended', \
         'admin', {T0}, 'standard', 'CNY', 'cn-north', {T0}, {T0})",
        b.account_id
    ))
    .await;
    assert!(
        db.store
            .claim_webhooks("n1", T0 + 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let states = db.store.webhook_deliveries(b.account_id).await.unwrap();
    assert!(!states.is_empty());
    for d in &states {
        assert_eq!(d.status, "failed", "{d:?}");
        assert_eq!(d.last_error, "withheld:suspended:admin");
        assert_eq!(d.attempts, 0, "nothing was sent");
    }
}
