//! Deleting incident data end to end (service-agreement.md SVC-183, SVC-184; response.md
//! RSP-454; docs/data-retention.md): `/incident/bulk-delete` for account administrators with
//! its preview, confirmation phrase, refusals and audit record; `incident_retention_days` set
//! through `/account/reset` and the retention sweep driven by the node's injected clock; and a
//! deleted incident no longer counting as a similar one. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_core::model::{DAY_MS, EventOrigin, NewEvent, Status};
use klaxon_server::Clock;
use serde_json::{Value, json};

const MIN: i64 = 60_000;

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    account_id: i64,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        Node::start_in(tempfile::tempdir().unwrap(), database_url, wall_ms(), false).await
    }

    /// A node on `dir`'s data at clock `at`; `timers` = whether it runs the timer worker and,
    /// with it, the retention sweep. Otherwise the test sweeps at the instants it chooses.
    async fn start_in(dir: tempfile::TempDir, database_url: &str, at: i64, timers: bool) -> Node {
        let mut config = test_config(dir.path(), database_url);
        config.workers.timers = timers;
        config.workers.delivery = false;
        let clock = Arc::new(ManualClock(AtomicI64::new(at)));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let account_id = server.bootstrap().account_id;
        let ts = TestServer {
            base: server.base_url().to_string(),
            app_key: server.bootstrap().app_key.clone(),
            integration_key: server.bootstrap().integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: database_url.to_string(),
        };
        Node {
            ts,
            clock,
            account_id,
        }
    }

    fn store(&self) -> &klaxon_store::Store {
        self.ts.server.as_ref().unwrap().store()
    }

    fn now_secs(&self) -> i64 {
        self.clock.now() / 1000
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    async fn api_with(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .ts
            .http
            .post(format!("{}{path}?app_key={key}", self.ts.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Invites a member with `role_ids` and gives them an APP key: (member_id, key).
    async fn member(&self, email: &str, role_ids: &[i64]) -> (i64, String) {
        let data = ok(self
            .api(
                "/member/invite",
                json!({"members": [{"email": email, "role_ids": role_ids}]}),
            )
            .await);
        let id = data["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("k{id}"));
        self.store()
            .add_app_key(self.account_id, id, "test", &key, self.clock.now())
            .await
            .unwrap()
            .unwrap();
        (id, key)
    }

    async fn push(&self, key: &str, status: &str, title: &str) {
        let (code, body) = self
            .ts
            .push(json!({"event_status": status, "title_rule": title, "alert_key": key}))
            .await;
        assert_eq!(code, 200, "{body}");
        self.ts.drained().await;
    }

    /// `(total, ids)` of `/incident/list` over the day around the node's clock.
    async fn listed(&self) -> (i64, Vec<String>) {
        let now = self.now_secs();
        let data = ok(self
            .api(
                "/incident/list",
                json!({"start_time": now - 86_400, "end_time": now + 86_400, "limit": 100}),
            )
            .await);
        let ids = data["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["incident_id"].as_str().unwrap().to_string())
            .collect();
        (data["total"].as_i64().unwrap(), ids)
    }

    async fn incident_by_key(&self, key: &str) -> Value {
        let now = self.now_secs();
        let data = ok(self
            .api(
                "/incident/list",
                json!({"start_time": now - 29 * 86_400, "end_time": now + 86_400, "limit": 100}),
            )
            .await);
        data["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["dedup_key"] == key)
            .unwrap_or_else(|| panic!("no incident for {key}: {data}"))
            .clone()
    }

    async fn id_of(&self, key: &str) -> String {
        self.incident_by_key(key).await["incident_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The account's audit records of `operation`, newest first.
    async fn audit(&self, operation: &str) -> Vec<Value> {
        let now = self.now_secs();
        let data = ok(self
            .api(
                "/audit/search",
                json!({"start_time": now - 86_400, "end_time": now + 86_400,
                       "operations": [operation]}),
            )
            .await);
        data["docs"].as_array().unwrap().clone()
    }
}

fn ok(r: (u16, Value)) -> Value {
    assert_eq!(r.0, 200, "{}", r.1);
    r.1["data"].clone()
}

/// A refusal with `code` and HTTP `status`; returns its message.
fn refused(r: (u16, Value), code: &str, status: u16) -> String {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["error"]["code"], code, "{}", r.1);
    r.1["error"]["message"].as_str().unwrap().to_string()
}

on_both_backends!(
    administrators_bulk_delete_a_time_range,
    |url: String| async move {
        // spec: SVC-183 (admins bulk-delete incidents and alerts by time range; deletion shows
        // the number of objects first), SVC-184, RSP-529
        let n = Node::start(&url).await;
        n.push("bd-1", "Critical", "disk full on db-1").await;
        n.push("bd-2", "Warning", "disk full on db-2").await;
        n.clock.0.fetch_add(2 * 3_600_000, Ordering::SeqCst);
        n.push("bd-later", "Warning", "disk full on db-3").await;
        let (gone_1, gone_2, kept) = (
            n.id_of("bd-1").await,
            n.id_of("bd-2").await,
            n.id_of("bd-later").await,
        );
        let now = n.now_secs();
        let range = json!({"start_time": now - 3 * 3600, "end_time": now - 3600});

        // A Responder holds Incidents Manage, yet bulk deletion is for administrators.
        let (_, responder) = n.member("responder@example.com", &[6]).await;
        let msg = refused(
            n.api_with(&responder, "/incident/bulk-delete", range.clone())
                .await,
            "AccessDenied",
            403,
        );
        assert!(msg.contains("Admin"), "{msg}");
        // Bad ranges are refused naming the field.
        let (admin_id, admin) = n.member("admin@example.com", &[2]).await;
        for (body, field) in [
            (json!({"end_time": now}), "start_time"),
            (json!({"start_time": now - 60}), "end_time"),
            (json!({"start_time": now, "end_time": now - 60}), "end_time"),
            (
                json!({"start_time": "yesterday", "end_time": now}),
                "start_time",
            ),
        ] {
            let msg = refused(
                n.api_with(&admin, "/incident/bulk-delete", body).await,
                "InvalidParameter",
                400,
            );
            assert!(msg.contains(field), "{msg}");
        }
        assert_eq!(n.listed().await.0, 3);

        // The preview counts and deletes nothing.
        let mut preview = range.clone();
        preview["dry_run"] = json!(true);
        let data = ok(n.api_with(&admin, "/incident/bulk-delete", preview).await);
        assert_eq!(data["dry_run"], true);
        assert_eq!(data["deleted"], false);
        assert_eq!(data["objects"], 4);
        assert_eq!(data["counts"]["incidents"], 2);
        assert_eq!(data["counts"]["alerts"], 2);
        assert_eq!(data["irreversible"], true);
        assert_eq!(data["confirm_required"], false);
        assert_eq!(n.listed().await.0, 3);

        let data = ok(n
            .api_with(&admin, "/incident/bulk-delete", range.clone())
            .await);
        assert_eq!(data["deleted"], true);
        assert_eq!(data["counts"]["incidents"], 2);
        assert!(data["counts"]["events"].as_i64().unwrap() >= 2, "{data}");
        assert!(
            data["counts"]["timeline_entries"].as_i64().unwrap() >= 2,
            "{data}"
        );
        let (total, ids) = n.listed().await;
        assert_eq!((total, ids), (1, vec![kept.clone()]));
        for id in [&gone_1, &gone_2] {
            refused(
                n.api("/incident/info", json!({"incident_id": id})).await,
                "ResourceNotFound",
                400,
            );
        }
        let alerts = ok(n
            .api(
                "/alert/list",
                json!({"start_time": now - 86_400, "end_time": now + 3600, "limit": 100}),
            )
            .await);
        assert_eq!(alerts["total"], 1, "{alerts}");
        // Deleting the same range again finds nothing.
        let again = ok(n.api_with(&admin, "/incident/bulk-delete", range).await);
        assert_eq!(again["objects"], 0);

        // Audited: the refusal, the preview and the deletions, each with its counts.
        let records = n.audit("incident:write:bulk_delete").await;
        let results: Vec<&str> = records
            .iter()
            .map(|r| r["result"].as_str().unwrap())
            .collect();
        assert_eq!(
            results.iter().filter(|r| **r == "ok").count(),
            3,
            "{records:?}"
        );
        assert!(results.contains(&"AccessDenied"), "{results:?}");
        assert!(results.contains(&"InvalidParameter"), "{results:?}");
        let deletion = records
            .iter()
            .find(|r| {
                let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
                body["answer"]["deleted"] == true && body["answer"]["objects"] == 4
            })
            .unwrap_or_else(|| panic!("no record of the deletion: {records:?}"));
        assert_eq!(deletion["is_dangerous"], true);
        assert_eq!(deletion["member_id"], admin_id);
    }
);

on_both_backends!(
    more_than_a_thousand_objects_need_the_phrase,
    |url: String| async move {
        // spec: SVC-183 (bulk deletion of more than 1,000 objects requires typing a
        // confirmation phrase)
        let n = Node::start(&url).await;
        let b = n.ts.server.as_ref().unwrap().bootstrap().clone();
        let at = n.clock.now();
        // 501 alerts, each with its incident: 1,002 objects.
        let events = (0..501)
            .map(|i| {
                let origin = EventOrigin {
                    request_id: format!("{i:032x}"),
                    account_id: b.account_id,
                    integration_id: b.integration_id,
                    integration_type: "standard".into(),
                    integration_name: "Standard".into(),
                    channel_id: b.channel_id,
                    received_at: at,
                };
                let event = NewEvent {
                    alert_key: format!("many-{i}"),
                    event_status: Status::Warning,
                    event_severity: Status::Warning.severity(),
                    title: format!("host {i} unreachable"),
                    title_rule: String::new(),
                    description: String::new(),
                    labels: BTreeMap::new(),
                    images: Vec::new(),
                    event_time: at,
                    raw: String::new(),
                };
                (origin, event)
            })
            .collect();
        n.store().enqueue(events).await.unwrap();
        n.ts.drained().await;
        assert_eq!(n.listed().await.0, 501);
        let now = n.now_secs();
        let range = json!({"start_time": now - 60, "end_time": now + 60});

        let msg = refused(
            n.api("/incident/bulk-delete", range.clone()).await,
            "InvalidParameter",
            400,
        );
        assert!(
            msg.contains("confirm_phrase") && msg.contains("\"delete 1002 objects\""),
            "{msg}"
        );
        let mut wrong = range.clone();
        wrong["confirm_phrase"] = json!("delete 1000 objects");
        refused(
            n.api("/incident/bulk-delete", wrong).await,
            "InvalidParameter",
            400,
        );
        assert_eq!(n.listed().await.0, 501, "a refusal deletes nothing");

        let mut preview = range.clone();
        preview["dry_run"] = json!(true);
        let data = ok(n.api("/incident/bulk-delete", preview).await);
        assert_eq!(data["objects"], 1002);
        assert_eq!(data["confirm_required"], true);
        assert_eq!(data["confirm_phrase"], "delete 1002 objects");

        let mut confirmed = range;
        confirmed["confirm_phrase"] = data["confirm_phrase"].clone();
        let done = ok(n.api("/incident/bulk-delete", confirmed).await);
        assert_eq!(done["deleted"], true);
        assert_eq!(done["counts"]["incidents"], 501);
        assert_eq!(n.listed().await.0, 0);
    }
);

on_both_backends!(
    retention_is_an_account_setting_swept_by_close_time,
    |url: String| async move {
        // spec: SVC-184 (deletion by retention), SVC-403 (§13 applies self-hosted), RSP-454
        // (incidents deleted by data retention are not considered), RSP-451
        let n = Node::start(&url).await;
        let info = ok(n.api("/account/info", json!({})).await);
        assert_eq!(
            info["incident_retention_days"], 0,
            "kept forever by default"
        );
        // Below the floor, or not a number: refused, nothing changed.
        for bad in [json!(7), json!(-1), json!(5000), json!("30")] {
            let msg = refused(
                n.api("/account/reset", json!({"incident_retention_days": bad}))
                    .await,
                "InvalidParameter",
                400,
            );
            assert!(msg.contains("incident_retention_days"), "{msg}");
        }
        // Both settings are checked before either is saved.
        refused(
            n.api(
                "/account/reset",
                json!({"time_zone": "Asia/Tokyo", "incident_retention_days": 7}),
            )
            .await,
            "InvalidParameter",
            400,
        );
        let info = ok(n.api("/account/info", json!({})).await);
        assert_eq!(
            (
                info["time_zone"].clone(),
                info["incident_retention_days"].clone()
            ),
            (json!("UTC"), json!(0))
        );
        // Administration: a Responder may not change it.
        let (_, responder) = n.member("responder@example.com", &[6]).await;
        refused(
            n.api_with(
                &responder,
                "/account/reset",
                json!({"incident_retention_days": 30}),
            )
            .await,
            "AccessDenied",
            403,
        );
        let info = ok(n
            .api("/account/reset", json!({"incident_retention_days": 30}))
            .await);
        assert_eq!(info["incident_retention_days"], 30);
        assert_eq!(info["time_zone"], "UTC");

        n.push("ret-1", "Critical", "payments down on web-1").await;
        n.push("ret-1", "Ok", "payments down on web-1").await;
        n.clock.0.fetch_add(10 * MIN, Ordering::SeqCst);
        n.push("ret-2", "Critical", "payments down on web-2").await;
        let (old, current) = (n.id_of("ret-1").await, n.id_of("ret-2").await);
        let past = ok(n
            .api("/incident/past/list", json!({"incident_id": current}))
            .await);
        assert_eq!(past["items"][0]["incident_id"], old.as_str(), "{past}");

        // 30 days after the close minus a minute: not yet. Just after: gone.
        n.clock
            .0
            .fetch_add(30 * DAY_MS - 11 * MIN, Ordering::SeqCst);
        assert!(
            n.store()
                .sweep_incident_retention(n.clock.now(), 500)
                .await
                .unwrap()
                .is_empty()
        );
        n.clock.0.fetch_add(2 * MIN, Ordering::SeqCst);
        let swept = n
            .store()
            .sweep_incident_retention(n.clock.now(), 500)
            .await
            .unwrap();
        assert_eq!(swept.len(), 1);
        assert_eq!(swept[0].counts.incidents, 1);
        refused(
            n.api("/incident/info", json!({"incident_id": old})).await,
            "ResourceNotFound",
            400,
        );
        let past = ok(n
            .api("/incident/past/list", json!({"incident_id": current}))
            .await);
        assert_eq!(past["items"].as_array().unwrap().len(), 0, "{past}");
        // The open incident stays; the sweep is in the audit log as the system's.
        ok(n.api("/incident/info", json!({"incident_id": current}))
            .await);
        let records = n.audit("incident:write:retention_delete").await;
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0]["member_id"], 0);
        assert_eq!(records[0]["source"], "system");
    }
);

on_both_backends!(
    deleted_incidents_are_not_similar_and_similarity_cannot_be_marked,
    |url: String| async move {
        // spec: RSP-454 (only incidents still stored count; users cannot mark an incident as
        // "not similar"), RSP-452
        let n = Node::start(&url).await;
        n.push("sim-1", "Warning", "queue depth high on mq-1").await;
        n.clock.0.fetch_add(MIN, Ordering::SeqCst);
        n.push("sim-2", "Warning", "queue depth high on mq-2").await;
        let first = n.incident_by_key("sim-1").await;
        let second = n.incident_by_key("sim-2").await;
        assert_eq!(first["frequency"], "rare");
        assert_eq!(second["frequency"], "frequent");
        let second_id = second["incident_id"].as_str().unwrap().to_string();

        // No route marks an incident as not similar...
        for path in [
            "/incident/not-similar",
            "/incident/similar/reset",
            "/incident/past/delete",
            "/incident/frequency/reset",
        ] {
            let (status, body) = n
                .api(path, json!({"incident_id": second_id, "similar": false}))
                .await;
            assert_eq!(
                body["error"]["code"], "RouteNotFound",
                "{path}: {status} {body}"
            );
        }
        // ...and editing the incident leaves its mark alone (it is evaluated once).
        ok(n.api(
            "/incident/reset",
            json!({"incident_id": second_id, "description": "checked",
                   "frequency": "rare", "similar": false, "not_similar": true}),
        )
        .await);
        let again = ok(n
            .api("/incident/info", json!({"incident_id": second_id}))
            .await);
        assert_eq!(again["frequency"], "frequent");
        assert_eq!(again["description"], "checked");

        // Once both are deleted, a new look-alike has nothing to resemble.
        let now = n.now_secs();
        let done = ok(n
            .api(
                "/incident/bulk-delete",
                json!({"start_time": now - 3600, "end_time": now + 1}),
            )
            .await);
        assert_eq!(done["counts"]["incidents"], 2);
        n.clock.0.fetch_add(MIN, Ordering::SeqCst);
        n.push("sim-3", "Warning", "queue depth high on mq-3").await;
        assert_eq!(n.incident_by_key("sim-3").await["frequency"], "rare");
    }
);

on_both_backends!(the_node_sweeps_by_its_own_clock, |url: String| async move {
    // spec: SVC-184 (deletion by retention): the node's worker, not the test, deletes
    // what its clock says is past the retention. It sweeps right after start, so the
    // test restarts the node with its clock 31 days on instead of waiting.
    let mut n = Node::start(&url).await;
    ok(
        n.api("/account/reset", json!({"incident_retention_days": 30}))
            .await,
    );
    n.push("w-1", "Critical", "disk full on db-1").await;
    n.push("w-1", "Ok", "disk full on db-1").await;
    n.push("w-2", "Critical", "disk full on db-2").await;
    let (closed, open) = (n.id_of("w-1").await, n.id_of("w-2").await);
    let later = n.clock.now() + 31 * DAY_MS;
    n.ts.stop().await;
    let dir = std::mem::replace(&mut n.ts.dir, tempfile::tempdir().unwrap());
    let app_key = n.ts.app_key.clone();
    let mut n = Node::start_in(dir, &url, later, true).await;
    // A later start does not show the key again.
    n.ts.app_key = app_key;
    let mut gone = false;
    for _ in 0..250 {
        let (status, body) = n
            .api("/incident/info", json!({"incident_id": closed}))
            .await;
        if status == 400 && body["error"]["code"] == "ResourceNotFound" {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(gone, "the worker did not delete the closed incident");
    ok(n.api("/incident/info", json!({"incident_id": open})).await);
    assert!(
        n.ts.metrics()
            .await
            .contains("klaxon_retention_incidents_deleted_total")
    );
});
