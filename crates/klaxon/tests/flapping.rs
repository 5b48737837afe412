//! Flapping detection end to end (ingest.md §2.15, §1.5.2; response.md RSP-203, RSP-204):
//! the channel's `flapping{}` settings over the Open API, and alerts pushed through the
//! standard push endpoint on a clock the test drives, whose 3rd and 4th incidents of one key
//! are flagged — and, in `remind_suppress`, muted: responders recorded, nothing in the
//! notification outbox. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

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

fn invalid((status, body): (u16, Value)) -> String {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "InvalidParameter", "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    owner: i64,
    channel: i64,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.timers = false;
        // The outbox is read as decided; delivery has its own tests.
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
        let me = ok(ts.api("/member/info", json!({})).await);
        let channels = ok(ts.api("/channel/list", json!({})).await);
        Node {
            owner: me["member_id"].as_i64().unwrap(),
            channel: channels["items"][0]["channel_id"].as_i64().unwrap(),
            ts,
            clock,
        }
    }

    fn advance(&self, minutes: i64) {
        self.clock.0.fetch_add(minutes * MIN, Ordering::SeqCst);
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    async fn push(&self, key: &str, status: &str) {
        let (code, body) = self
            .ts
            .push(json!({"event_status": status, "title_rule": format!("{key} flaps"), "alert_key": key}))
            .await;
        assert_eq!(code, 200, "{body}");
        self.ts.drained().await;
    }

    /// The incidents whose first alert has `key`, oldest first.
    async fn incidents(&self, key: &str, extra: Value) -> Vec<Value> {
        let now = self.clock.now() / 1000;
        let mut body =
            json!({"start_time": now - 86_400, "end_time": now + 3600, "limit": 100, "asc": true});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let data = ok(self.api("/incident/list", body).await);
        data["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["dedup_key"] == key)
            .cloned()
            .collect()
    }

    async fn outbox(&self, incident_id: &str) -> usize {
        ok(self
            .api(
                "/incident/notification/list",
                json!({"incident_id": incident_id}),
            )
            .await)["items"]
            .as_array()
            .unwrap()
            .len()
    }

    async fn set_flapping(&self, flapping: Value) {
        ok(self
            .api(
                "/channel/update",
                json!({"channel_id": self.channel, "flapping": flapping}),
            )
            .await);
    }

    async fn flapping(&self) -> Value {
        ok(self
            .api("/channel/info", json!({"channel_id": self.channel}))
            .await)["flapping"]
            .clone()
    }

    /// An escalation rule paging the owner, so unmuted incidents reach the outbox.
    async fn page_the_owner(&self) {
        ok(self
            .api(
                "/channel/escalate/rule/create",
                json!({
                    "channel_id": self.channel,
                    "rule_name": "Primary",
                    "layers": [{
                        "target": {"person_ids": [self.owner], "by": {"follow_preference": true}},
                        "escalate_window": 15,
                    }],
                }),
            )
            .await);
    }

    /// Four incidents of `key`, five minutes apart, each resolved a minute after it opened.
    async fn flap(&self, key: &str) {
        for _ in 0..4 {
            self.push(key, "Critical").await;
            self.advance(1);
            self.push(key, "Ok").await;
            self.advance(4);
        }
    }
}

// spec: ING-180 (ingest.md §1.5.2 flapping{} mapping, §1.3.6 bounds)
on_both_backends!(flapping_settings_over_the_api, |url: String| async move {
    let n = Node::start(&url).await;
    // A new channel: off, with the defaults.
    assert_eq!(
        n.flapping().await,
        json!({"mode": "off", "is_disabled": true, "max_changes": 4, "in_mins": 60, "mute_mins": 60})
    );
    // Klaxon's `mode` wins.
    n.set_flapping(json!({"mode": "remind_suppress", "is_disabled": true, "max_changes": 3, "in_mins": 30, "mute_mins": 10}))
        .await;
    assert_eq!(
        n.flapping().await,
        json!({"mode": "remind_suppress", "is_disabled": false, "max_changes": 3, "in_mins": 30, "mute_mins": 10})
    );
    // The SaaS form: a mute window of 0 is remind, a positive one remind_suppress; missing
    // numbers take the defaults.
    n.set_flapping(json!({"is_disabled": false, "max_changes": 5, "in_mins": 20, "mute_mins": 0}))
        .await;
    assert_eq!(
        n.flapping().await,
        json!({"mode": "remind", "is_disabled": false, "max_changes": 5, "in_mins": 20, "mute_mins": 0})
    );
    n.set_flapping(json!({"is_disabled": false})).await;
    assert_eq!(n.flapping().await["mode"], "remind_suppress");
    assert_eq!(n.flapping().await["max_changes"], 4);
    n.set_flapping(json!({"is_disabled": true, "max_changes": 9}))
        .await;
    let off = n.flapping().await;
    assert_eq!(
        (off["mode"].clone(), off["max_changes"].clone()),
        (json!("off"), json!(9))
    );
    // spec: ING-184 — incident suppression is the flapping mode `remind_suppress`; a channel
    // has no separate setting for it.
    let info = ok(n
        .api("/channel/info", json!({"channel_id": n.channel}))
        .await);
    let suppress: Vec<&String> = info
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains("suppress"))
        .collect();
    assert!(suppress.is_empty(), "{suppress:?}");
    // An update without flapping leaves it alone.
    ok(n.api(
        "/channel/update",
        json!({"channel_id": n.channel, "description": "flappy"}),
    )
    .await);
    assert_eq!(n.flapping().await, off);
    // The list renders it too.
    let listed = ok(n.api("/channel/list", json!({})).await);
    assert_eq!(listed["items"][0]["flapping"], off);
    // Create takes it.
    let created = ok(n
        .api(
            "/channel/create",
            json!({"channel_name": "flappy", "flapping": {"mode": "remind", "in_mins": 5}}),
        )
        .await);
    let info = ok(n
        .api(
            "/channel/info",
            json!({"channel_id": created["channel_id"]}),
        )
        .await);
    assert_eq!(info["flapping"]["mode"], "remind");
    assert_eq!(info["flapping"]["in_mins"], 5);

    // Bad values name the field and change nothing.
    let cases = [
        (json!({"mode": "often"}), "flapping.mode"),
        (json!({"mode": 1}), "flapping.mode"),
        (json!({"is_disabled": "no"}), "flapping.is_disabled"),
        (json!({"max_changes": 1}), "flapping.max_changes"),
        (json!({"max_changes": 101}), "flapping.max_changes"),
        (json!({"max_changes": "4"}), "flapping.max_changes"),
        (json!({"in_mins": 0}), "flapping.in_mins"),
        (json!({"in_mins": 1441}), "flapping.in_mins"),
        (json!({"mute_mins": -1}), "flapping.mute_mins"),
        (json!({"mute_mins": 1441}), "flapping.mute_mins"),
        (json!("remind"), "flapping"),
    ];
    for (flapping, field) in cases {
        let message = invalid(
            n.api(
                "/channel/update",
                json!({"channel_id": n.channel, "flapping": flapping}),
            )
            .await,
        );
        assert!(message.starts_with(field), "{flapping}: {message}");
        assert_eq!(n.flapping().await, off, "{flapping}: nothing changed");
    }
});

// spec: ING-180, ING-182, RSP-204, RSP-503 (ever_muted filter), ING-262 (outcome flag)
// spec: ING-184 ("incident suppression": identical incidents within the period notify nobody)
on_both_backends!(
    remind_suppress_mutes_the_third_and_fourth_incident,
    |url: String| async move {
        let n = Node::start(&url).await;
        n.page_the_owner().await;
        n.set_flapping(
            json!({"mode": "remind_suppress", "max_changes": 3, "in_mins": 60, "mute_mins": 60}),
        )
        .await;
        n.flap("db-1").await;
        let all = n.incidents("db-1", json!({})).await;
        assert_eq!(all.len(), 4, "{all:?}");
        let flags: Vec<(bool, bool)> = all
            .iter()
            .map(|i| (i["is_flapping"] == true, i["ever_muted"] == true))
            .collect();
        assert_eq!(
            flags,
            vec![(false, false), (false, false), (true, true), (true, true)]
        );
        for (idx, inc) in all.iter().enumerate() {
            let id = inc["incident_id"].as_str().unwrap();
            // Responders are recorded either way (RSP-204).
            assert_eq!(inc["responders"][0]["person_id"], n.owner, "{inc}");
            let sent = n.outbox(id).await;
            if idx < 2 {
                assert!(sent > 0, "incident {idx} is notified");
            } else {
                assert_eq!(sent, 0, "incident {idx} is muted: nothing in the outbox");
            }
        }
        let muted = n.incidents("db-1", json!({"ever_muted": true})).await;
        assert_eq!(muted.len(), 2);
        assert!(muted.iter().all(|i| i["is_flapping"] == true));
        let loud = n.incidents("db-1", json!({"ever_muted": false})).await;
        assert_eq!(loud.len(), 2);
        // The event outcomes say which new alerts opened a flapping incident.
        let outcomes = ok(n
            .api(
                "/alert-event/outcome/list",
                json!({"outcomes": "new_alert", "limit": 100}),
            )
            .await);
        let flagged: Vec<&Value> = outcomes["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["is_flapping"] == true)
            .collect();
        let mut ids: Vec<&str> = flagged
            .iter()
            .map(|o| o["incident_id"].as_str().unwrap())
            .collect();
        ids.sort();
        let mut want: Vec<&str> = muted
            .iter()
            .map(|i| i["incident_id"].as_str().unwrap())
            .collect();
        want.sort();
        assert_eq!(ids, want);
    }
);

// spec: ING-181, RSP-203
on_both_backends!(remind_flags_and_still_notifies, |url: String| async move {
    let n = Node::start(&url).await;
    n.page_the_owner().await;
    n.set_flapping(json!({"is_disabled": false, "max_changes": 3, "in_mins": 60, "mute_mins": 0}))
        .await;
    n.flap("web-1").await;
    let all = n.incidents("web-1", json!({})).await;
    let flags: Vec<bool> = all.iter().map(|i| i["is_flapping"] == true).collect();
    assert_eq!(flags, vec![false, false, true, true]);
    for inc in &all {
        assert_eq!(inc["ever_muted"], false);
        assert!(n.outbox(inc["incident_id"].as_str().unwrap()).await > 0);
    }
});
