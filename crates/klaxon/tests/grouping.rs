//! Intelligent (similarity) grouping and the grouping preview end to end (ingest.md §1.5.1,
//! ING-151, ING-157, ING-160): `group.method = i` with `i_keys` and `i_score_threshold` over
//! the channel API, alerts pushed through the standard push endpoint on a clock the test
//! drives, and `/channel/grouping/preview`, which replays recent events through a proposed
//! configuration and must write nothing. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_server::Clock;
use serde_json::{Value, json};

const MIN: i64 = 60_000;

fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn refused((status, body): (u16, Value), code: &str) -> String {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.timers = false;
        config.workers.delivery = false;
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let ts = TestServer {
            base: server.base_url().to_string(),
            app_key: server.bootstrap().app_key.clone(),
            integration_key: server.bootstrap().integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: database_url.to_string(),
        };
        Node { ts, clock }
    }

    fn advance(&self, minutes: i64) {
        self.clock.0.fetch_add(minutes * MIN, Ordering::SeqCst);
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    /// A channel with `group` and a dedicated standard integration: (channel_id, key).
    async fn channel(&self, name: &str, group: Value) -> (i64, String) {
        let data = ok(self
            .api(
                "/channel/create",
                json!({"channel_name": name, "group": group}),
            )
            .await);
        let id = data["channel_id"].as_i64().unwrap();
        let integration = ok(self
            .api(
                "/integration/create",
                json!({"integration_name": format!("{name} std"), "type": "standard",
                       "kind": "dedicated", "channel_id": id}),
            )
            .await);
        (
            id,
            integration["integration_key"].as_str().unwrap().to_string(),
        )
    }

    async fn set_group(&self, channel: i64, group: Value) {
        ok(self
            .api(
                "/channel/update",
                json!({"channel_id": channel, "group": group}),
            )
            .await);
    }

    /// Pushes one trigger (or `status`) event and waits until it is processed.
    async fn push(&self, key: &str, alert_key: &str, title: &str, labels: Value, status: &str) {
        let resp = self
            .ts
            .http
            .post(format!(
                "{}/event/push/alert/standard?integration_key={key}",
                self.ts.base
            ))
            .json(&json!({"event_status": status, "alert_key": alert_key,
                          "title_rule": title, "labels": labels}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        self.ts.drained().await;
    }

    async fn fire(&self, key: &str, alert_key: &str, title: &str) {
        self.push(key, alert_key, title, json!({}), "Critical")
            .await;
    }

    /// The channel's incidents, oldest first.
    async fn incidents(&self, channel: i64) -> Vec<Value> {
        let now = self.clock.now() / 1000;
        let data = ok(self
            .api(
                "/incident/list",
                json!({"start_time": now - 2 * 86_400, "end_time": now + 3600, "limit": 100,
                       "asc": true, "channel_ids": [channel]}),
            )
            .await);
        data["items"].as_array().unwrap().clone()
    }

    /// The incident holding the alert with `alert_key`.
    async fn incident_of(&self, channel: i64, alert_key: &str) -> String {
        let now = self.clock.now() / 1000;
        let data = ok(self
            .api(
                "/alert/list",
                json!({"start_time": now - 2 * 86_400, "end_time": now + 3600, "limit": 100,
                       "channel_ids": [channel], "alert_keys": [alert_key]}),
            )
            .await);
        let items = data["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{data}");
        items[0]["incident"]["incident_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Counts of what the account holds: incidents, alerts, stored events, outcomes, channel.
    async fn snapshot(&self, channel: i64) -> Value {
        let now = self.clock.now() / 1000;
        let window = json!({"start_time": now - 2 * 86_400, "end_time": now + 3600,
                            "limit": 100, "channel_ids": [channel]});
        let mut out = serde_json::Map::new();
        for path in [
            "/incident/list",
            "/alert/list",
            "/alert-event/list",
            "/alert-event/outcome/list",
        ] {
            let data = ok(self.api(path, window.clone()).await);
            out.insert(path.to_string(), data["items"].clone());
        }
        out.insert(
            "channel".into(),
            ok(self
                .api("/channel/info", json!({"channel_id": channel}))
                .await),
        );
        Value::Object(out)
    }
}

const CPU_03: &str = "cpu idle < 20% / es.nj.03";
const CPU_01: &str = "cpu idle < 20% / es.nj.01";
const DISK_03: &str = "disk full / es.nj.03";

// spec: ING-157
// spec: ING-159
// spec: ingest.md §1.5.1
on_both_backends!(
    intelligent_grouping_follows_the_worked_example,
    |url: String| async move {
        let n = Node::start(&url).await;
        let (ch, key) = n.channel("similar", json!({"method": "i"})).await;
        // §1.5.1: absent i_keys → [title], absent threshold → 0.80.
        let info = ok(n.api("/channel/info", json!({"channel_id": ch})).await);
        assert_eq!(info["group"]["method"], "i");
        assert_eq!(info["group"]["i_keys"], json!(["title"]));
        assert_eq!(info["group"]["i_score_threshold"], json!(0.8));

        n.fire(&key, "a", CPU_03).await;
        n.advance(1);
        n.fire(&key, "b", CPU_01).await;
        n.advance(1);
        n.fire(&key, "c", DISK_03).await;
        n.advance(1);
        let incidents = n.incidents(ch).await;
        assert_eq!(incidents.len(), 2, "{incidents:?}");
        assert_eq!(incidents[0]["title"], CPU_03);
        assert_eq!(incidents[0]["alert_cnt"], 2, "1.00 joins");
        assert_eq!(incidents[0]["group_method"], "i");
        assert_eq!(incidents[1]["title"], DISK_03);
        assert_eq!(
            incidents[1]["alert_cnt"], 1,
            "3/7 = 0.43 opens a new incident"
        );
        assert_eq!(incidents[1]["group_method"], "i");

        // The reference text is fixed at creation: a person's title edit does not change it.
        let cpu = incidents[0]["incident_id"].as_str().unwrap().to_string();
        ok(n.api(
            "/incident/reset",
            json!({"incident_id": cpu, "title": "Search cluster CPU"}),
        )
        .await);
        n.fire(&key, "d", "cpu idle < 20% / es.nj.09").await;
        assert_eq!(n.incident_of(ch, "d").await, cpu);
        // Several alerts in one request are grouped in order, also inside one batch.
        let resp =
            n.ts.http
                .post(format!(
                    "{}/event/push/alert/standard?integration_key={key}",
                    n.ts.base
                ))
                .json(&json!({"event_status": "Warning", "alert_key": "e", "title_rule": DISK_03}))
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        n.fire(&key, "f", "memory low / es.nj.03").await;
        let disk = incidents[1]["incident_id"].as_str().unwrap().to_string();
        assert_eq!(n.incident_of(ch, "e").await, disk);
        let incidents = n.incidents(ch).await;
        assert_eq!(incidents.len(), 3, "memory: 3/7 with both");
        assert_eq!(incidents[0]["alert_cnt"], 3);
    }
);

// spec: ING-157
// spec: ING-155
// spec: ING-151
on_both_backends!(
    threshold_edge_and_configuration_changes,
    |url: String| async move {
        let n = Node::start(&url).await;
        let (ch, key) = n
            .channel("edge", json!({"method": "i", "i_score_threshold": 0.8}))
            .await;
        n.fire(&key, "k1", "a b c d e").await;
        let first = n.incident_of(ch, "k1").await;
        // 4/5 = 0.80 reaches the threshold exactly: joins.
        n.fire(&key, "k2", "a b c d").await;
        assert_eq!(n.incident_of(ch, "k2").await, first);
        // 0.81: the same similarity no longer joins. The threshold is not part of the key, so
        // the incident stays eligible for closer alerts.
        n.set_group(ch, json!({"method": "i", "i_score_threshold": 0.81}))
            .await;
        n.fire(&key, "k3", "a b c d").await;
        let third = n.incident_of(ch, "k3").await;
        assert_ne!(third, first);
        n.fire(&key, "k4", "e d c b a").await;
        assert_eq!(n.incident_of(ch, "k4").await, first, "1.00");
        // Other i_keys: nothing opened under the old keys is eligible.
        n.set_group(
            ch,
            json!({"method": "i", "i_keys": ["title", "labels.host"]}),
        )
        .await;
        let info = ok(n.api("/channel/info", json!({"channel_id": ch})).await);
        assert_eq!(info["group"]["i_keys"], json!(["title", "labels.host"]));
        n.push(&key, "k5", "a b c d e", json!({"host": "db"}), "Critical")
            .await;
        let keyed = n.incident_of(ch, "k5").await;
        assert!(keyed != first && keyed != third);
        n.push(&key, "k6", "a b c d e", json!({"host": "db"}), "Critical")
            .await;
        assert_eq!(n.incident_of(ch, "k6").await, keyed);
        // Rule mode: similarity incidents are not eligible (other method).
        n.set_group(ch, json!({"method": "p", "equals": [["title"]]}))
            .await;
        n.fire(&key, "k7", "a b c d e").await;
        let rule = n.incident_of(ch, "k7").await;
        assert!(![&first, &third, &keyed].contains(&&rule));
        let incidents = n.incidents(ch).await;
        let rule_incident = incidents
            .iter()
            .find(|i| i["incident_id"] == rule.as_str())
            .unwrap();
        assert_eq!(rule_incident["group_method"], "p");
        // Back to the first configuration: its incident is eligible again.
        n.set_group(ch, json!({"method": "i"})).await;
        n.fire(&key, "k8", "a b c d e").await;
        assert_eq!(n.incident_of(ch, "k8").await, first);
    }
);

// spec: ING-151
// spec: ING-152
// spec: ING-157
on_both_backends!(
    the_window_applies_to_similarity_grouping,
    |url: String| async move {
        let n = Node::start(&url).await;
        let (ch, key) = n
            .channel(
                "window",
                json!({"method": "i", "time_window": 10, "window_type": "sliding"}),
            )
            .await;
        n.fire(&key, "a", "disk full on db-1").await;
        let first = n.incident_of(ch, "a").await;
        n.advance(8);
        n.fire(&key, "b", "disk full on db-2").await;
        assert_eq!(n.incident_of(ch, "b").await, first);
        n.advance(9);
        n.fire(&key, "c", "disk full on db-3").await;
        assert_eq!(
            n.incident_of(ch, "c").await,
            first,
            "9 min after the last join"
        );
        n.advance(11);
        n.fire(&key, "d", "disk full on db-4").await;
        assert_ne!(n.incident_of(ch, "d").await, first, "an 11 min gap");
        // A resolved (closed) incident takes no more alerts.
        let (ch2, key2) = n.channel("closed", json!({"method": "i"})).await;
        n.fire(&key2, "x", "queue stuck").await;
        let before = n.incident_of(ch2, "x").await;
        n.push(&key2, "x", "queue stuck", json!({}), "Ok").await;
        n.fire(&key2, "y", "queue stuck").await;
        assert_ne!(n.incident_of(ch2, "y").await, before);
    }
);

// spec: ING-160
// spec: ING-157
// spec: ING-153
on_both_backends!(
    the_preview_replays_recent_events_and_writes_nothing,
    |url: String| async move {
        let n = Node::start(&url).await;
        // No grouping: every alert opens its own incident.
        let (ch, key) = n.channel("preview", json!({"method": "n"})).await;
        let cpu = json!({"check": "cpu"});
        let disk = json!({"check": "disk"});
        n.push(&key, "a", CPU_03, cpu.clone(), "Critical").await;
        n.advance(1);
        n.push(&key, "b", CPU_01, cpu.clone(), "Warning").await;
        n.advance(1);
        n.push(&key, "c", DISK_03, disk.clone(), "Critical").await;
        n.advance(1);
        n.push(&key, "a", CPU_03, cpu.clone(), "Ok").await;
        n.advance(1);
        n.push(
            &key,
            "d",
            "cpu idle < 20% / es.nj.05",
            cpu.clone(),
            "Critical",
        )
        .await;
        assert_eq!(n.incidents(ch).await.len(), 4);
        let before = n.snapshot(ch).await;

        // Intelligent: a, b and d share one incident, c has its own.
        let p = ok(n
            .api(
                "/channel/grouping/preview",
                json!({"channel_id": ch, "group": {"method": "i"}}),
            )
            .await);
        assert_eq!(p["event_cnt"], 5);
        assert_eq!(p["incident_cnt"], 2);
        assert_eq!(p["group"]["method"], "i");
        let tree: Vec<(String, Vec<(String, usize)>)> = p["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["title"].as_str().unwrap().to_string(),
                    i["alerts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| {
                            (
                                a["alert_key"].as_str().unwrap().to_string(),
                                a["events"].as_array().unwrap().len(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        let s = |x: &str| x.to_string();
        assert_eq!(
            tree,
            vec![
                (s(CPU_03), vec![(s("a"), 2), (s("b"), 1), (s("d"), 1)]),
                (s(DISK_03), vec![(s("c"), 1)]),
            ]
        );
        let first = &p["incidents"][0];
        assert_eq!(first["group_method"], "i");
        assert_eq!(first["group_text"], CPU_03);
        assert_eq!(first["closed"], false, "b and d are still firing");
        assert_eq!(first["alerts"][0]["alert_status"], "Ok");
        assert_eq!(first["alerts"][0]["events"][1]["event_status"], "Ok");

        // Rules on labels.check: the same split here.
        let p = ok(n
            .api(
                "/channel/grouping/preview",
                json!({"channel_id": ch, "group": {"method": "p", "equals": [["labels.check"]]}}),
            )
            .await);
        assert_eq!(p["incident_cnt"], 2);
        assert_eq!(p["incidents"][0]["group_method"], "p");
        assert_eq!(p["incidents"][0]["alert_cnt"], 3);
        // Rules on the exact title keep every alert apart (the cpu titles differ only in
        // digits, which similarity ignores); without `group`, the channel's own policy
        // (none) is replayed.
        let p = ok(n
            .api(
                "/channel/grouping/preview",
                json!({"channel_id": ch, "group": {"method": "p", "equals": [["title"]]}}),
            )
            .await);
        assert_eq!(p["incident_cnt"], 4, "{p}");
        let p = ok(n
            .api(
                "/channel/grouping/preview",
                json!({"channel_id": ch, "group": {"method": "i", "i_score_threshold": 1}}),
            )
            .await);
        assert_eq!(p["incident_cnt"], 2, "same token sets score 1.00: {p}");
        let p = ok(n
            .api("/channel/grouping/preview", json!({"channel_id": ch}))
            .await);
        assert_eq!(p["incident_cnt"], 4);
        assert!(p["incidents"][0]["group_method"] == "n");

        // Bad input: a clear error naming the field.
        let m = refused(
            n.api(
                "/channel/grouping/preview",
                json!({"channel_id": ch, "group": {"method": "i", "i_score_threshold": 0.2}}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.starts_with("group.i_score_threshold"), "{m}");
        let m = refused(
            n.api("/channel/grouping/preview", json!({})).await,
            "InvalidParameter",
        );
        assert!(m.starts_with("channel_id"), "{m}");
        refused(
            n.api(
                "/channel/grouping/preview",
                json!({"channel_id": 987_654_321}),
            )
            .await,
            "ResourceNotFound",
        );

        // Nothing was written by any of these calls.
        let after = n.snapshot(ch).await;
        assert_eq!(before, after);

        // Only the last 24 h are replayed.
        n.advance(24 * 60 + 5);
        let p = ok(n
            .api(
                "/channel/grouping/preview",
                json!({"channel_id": ch, "group": {"method": "i"}}),
            )
            .await);
        assert_eq!(p["event_cnt"], 0);
        assert_eq!(p["incidents"], json!([]));
    }
);

// spec: ingest.md §1.5.1
// spec: ING-157
on_both_backends!(
    bad_intelligent_settings_name_the_field_and_change_nothing,
    |url: String| async move {
        let n = Node::start(&url).await;
        let (ch, _) = n
            .channel(
                "checked",
                json!({"method": "i", "i_keys": ["title", "labels.service"],
                       "i_score_threshold": 0.65, "time_window": 30}),
            )
            .await;
        let before = ok(n.api("/channel/info", json!({"channel_id": ch})).await);
        assert_eq!(
            before["group"]["i_keys"],
            json!(["title", "labels.service"])
        );
        assert_eq!(before["group"]["i_score_threshold"], json!(0.65));
        assert_eq!(before["group"]["time_window"], 30);
        let eleven: Vec<String> = (0..11).map(|i| format!("labels.l{i}")).collect();
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"method": "i", "i_score_threshold": 0.49}),
                "group.i_score_threshold",
            ),
            (
                json!({"method": "i", "i_score_threshold": 1.01}),
                "group.i_score_threshold",
            ),
            (
                json!({"method": "i", "i_score_threshold": "high"}),
                "group.i_score_threshold",
            ),
            (json!({"method": "i", "i_keys": eleven}), "group.i_keys"),
            (
                json!({"method": "i", "i_keys": ["host"]}),
                "group.i_keys[0]",
            ),
            (json!({"method": "i", "i_keys": "title"}), "group.i_keys"),
            (
                json!({"method": "i", "time_window": 1441}),
                "group.time_window",
            ),
        ];
        for (group, field) in cases {
            let m = refused(
                n.api(
                    "/channel/update",
                    json!({"channel_id": ch, "group": group.clone()}),
                )
                .await,
                "InvalidParameter",
            );
            assert!(m.starts_with(field), "{group}: {m}");
            let m = refused(
                n.api(
                    "/channel/create",
                    json!({"channel_name": "never", "group": group.clone()}),
                )
                .await,
                "InvalidParameter",
            );
            assert!(m.starts_with(field), "{group}: {m}");
        }
        let after = ok(n.api("/channel/info", json!({"channel_id": ch})).await);
        assert_eq!(before, after, "a refused update changes nothing");
        let listed = ok(n.api("/channel/list", json!({"query": "never"})).await);
        assert_eq!(listed["total"], 0, "a refused create creates nothing");
        // Empty keys and a 0 threshold mean the defaults.
        n.set_group(
            ch,
            json!({"method": "i", "i_keys": [], "i_score_threshold": 0}),
        )
        .await;
        let info = ok(n.api("/channel/info", json!({"channel_id": ch})).await);
        assert_eq!(info["group"]["i_keys"], json!(["title"]));
        assert_eq!(info["group"]["i_score_threshold"], json!(0.8));
    }
);
