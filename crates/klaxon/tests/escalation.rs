//! Incidents and escalation end to end (response.md §2.2–§2.14, openapi-compat.md 2.1, 2.7):
//! escalation rules over the Open API, a pushed alert assigned by its channel's rule, timers
//! driven by an injected clock (the test moves the clock and runs the due steps through the
//! node's store, so nothing sleeps on a timer), manual actions and their timeline, and the
//! notification outbox. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_server::Clock;
use serde_json::{Value, json};

const MIN: i64 = 60_000;

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    owner: i64,
    channel: i64,
}

impl Node {
    /// A node whose clock the test drives; `timers` = whether its own timer worker runs.
    async fn start(database_url: &str, timers: bool) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.timers = timers;
        // These tests read the outbox as decided; delivery has its own tests (delivery.rs).
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

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Moves the clock by `minutes` and runs every step that fell due, in order.
    async fn advance(&self, minutes: i64) {
        let to = self.now() + minutes * MIN;
        self.clock.0.store(to, Ordering::SeqCst);
        let store = self.ts.server.as_ref().unwrap().store();
        store.run_due_timers("test-driver", to).await.unwrap();
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    async fn feed(&self, incident_id: &str) -> Vec<Value> {
        let data = ok(self
            .api(
                "/incident/feed",
                json!({"incident_id": incident_id, "asc": true, "limit": 100}),
            )
            .await);
        data["items"].as_array().unwrap().clone()
    }

    async fn kinds(&self, incident_id: &str) -> Vec<String> {
        self.feed(incident_id)
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    async fn incident(&self, incident_id: &str) -> Value {
        ok(self
            .api("/incident/info", json!({"incident_id": incident_id}))
            .await)
    }

    /// Pushes one Critical alert and returns its incident's id.
    async fn push_incident(&self, key: &str) -> String {
        let (status, body) = self
            .ts
            .push(json!({"event_status": "Critical", "title_rule": "db down", "alert_key": key}))
            .await;
        assert_eq!(status, 200, "{body}");
        self.ts.drained().await;
        self.incident_by_key(key).await
    }

    /// The id of the incident whose first alert has this key.
    async fn incident_by_key(&self, key: &str) -> String {
        // The window follows the node's clock, which the test may have moved ahead.
        let now = self.now() / 1000;
        let data = ok(self
            .api(
                "/incident/list",
                json!({"start_time": now - 86_400, "end_time": now + 86_400, "limit": 100}),
            )
            .await);
        let incidents = data["items"].as_array().unwrap().clone();
        incidents
            .iter()
            .find(|i| i["dedup_key"] == key)
            .unwrap_or_else(|| panic!("no incident for {key}: {incidents:?}"))["incident_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A pending member (invited, never signed in).
    async fn invite(&self, email: &str) -> i64 {
        let data = ok(self
            .api(
                "/member/invite",
                json!({"members": [{"member_name": email, "email": email}]}),
            )
            .await);
        data["items"][0]["member_id"].as_i64().unwrap()
    }
}

fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn err((status, body): (u16, Value), code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "{status} {body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

fn level(persons: &[i64], window: i64) -> Value {
    json!({
        "target": {"person_ids": persons, "by": {"follow_preference": true}},
        "escalate_window": window,
    })
}

on_both_backends!(escalation_rules_over_the_api, |url: String| async move {
    // spec: RSP-130, RSP-136 (enable/disable), response.md 1.12 validation, openapi-compat 2.7
    let n = Node::start(&url, false).await;
    let created = ok(n
        .api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": n.channel,
                "rule_name": "Primary",
                "layers": [level(&[n.owner], 15), level(&[n.owner], 30)],
                "filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
                "time_filters": [{"start": "18:00", "end": "09:00", "repeat": [1, 2, 3, 4, 5]}],
            }),
        )
        .await);
    let rule_id = created["rule_id"].as_str().unwrap().to_string();
    assert_eq!(rule_id.len(), 24);
    assert_eq!(created["rule_name"], "Primary");

    let info = ok(n
        .api(
            "/channel/escalate/rule/info",
            json!({"channel_id": n.channel, "rule_id": rule_id}),
        )
        .await);
    assert_eq!(info["status"], "enabled");
    assert_eq!(info["layers"][0]["escalate_window"], 15);
    assert_eq!(info["layers"][1]["notify_step"], 10.0, "defaults apply");
    assert_eq!(info["priority"], 0);

    // A second rule goes last; its name must be unique in the channel.
    err(
        n.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Primary", "layers": [level(&[n.owner], 5)]}),
        )
        .await,
        "InvalidParameter",
    );
    let second = ok(n
        .api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Catch-all", "layers": [level(&[n.owner], 5)]}),
        )
        .await);
    let list = ok(n
        .api(
            "/channel/escalate/rule/list",
            json!({"channel_id": n.channel}),
        )
        .await);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Primary", "Catch-all"]);
    assert_eq!(list["items"][1]["priority"], 1);

    // Validation names the bad part and changes nothing.
    let msg = err(
        n.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Bad", "layers": [{"target": {"person_ids": [n.owner]}, "escalate_window": 15}]}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("layers[0].target"), "{msg}");
    let msg = err(
        n.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Bad", "layers": [level(&[n.owner], 721)]}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("layers[0].escalate_window"), "{msg}");
    let msg = err(
        n.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Bad", "layers": [level(&[n.owner], 5)],
                   "filters": [[{"key": "severity", "oper": "LIKE", "vals": ["x"]}]]}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("filters"), "{msg}");
    err(
        n.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": 999_999, "rule_name": "X", "layers": [level(&[n.owner], 5)]}),
        )
        .await,
        "ResourceNotFound",
    );
    let list = ok(n
        .api(
            "/channel/escalate/rule/list",
            json!({"channel_id": n.channel}),
        )
        .await);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // Update keeps the fields left out; disable and enable.
    ok(n.api(
        "/channel/escalate/rule/update",
        json!({"rule_id": rule_id, "description": "nights"}),
    )
    .await);
    ok(n.api(
        "/channel/escalate/rule/disable",
        json!({"channel_id": n.channel, "rule_id": rule_id}),
    )
    .await);
    let info = ok(n
        .api("/channel/escalate/rule/info", json!({"rule_id": rule_id}))
        .await);
    assert_eq!(info["description"], "nights");
    assert_eq!(info["status"], "disabled");
    assert_eq!(info["layers"].as_array().unwrap().len(), 2);

    ok(n.api(
        "/channel/escalate/rule/delete",
        json!({"channel_id": n.channel, "rule_id": second["rule_id"]}),
    )
    .await);
    err(
        n.api(
            "/channel/escalate/rule/info",
            json!({"rule_id": second["rule_id"]}),
        )
        .await,
        "ResourceNotFound",
    );
});

on_both_backends!(
    pushed_alert_is_assigned_and_escalates,
    |url: String| async move {
        // spec: RSP-010, RSP-132, RSP-150, RSP-152, RSP-155, RSP-163, RSP-164 (ESC-1 over HTTP)
        let n = Node::start(&url, false).await;
        let pending = n.invite("new.hire@example.com").await;
        ok(n.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": n.channel,
                "rule_name": "Default",
                "layers": [level(&[n.owner], 15), level(&[pending, n.owner], 30)],
            }),
        )
        .await);
        let id = n.push_incident("esc-1").await;
        assert_eq!(n.kinds(&id).await, vec!["i_new", "i_assign", "i_notify"]);
        let inc = n.incident(&id).await;
        assert_eq!(inc["assigned_to"]["type"], "assign");
        assert_eq!(inc["assigned_to"]["layer_idx"], 0);
        assert_eq!(inc["responders"][0]["person_id"], n.owner);
        assert_eq!(inc["progress"], "Triggered");

        // The decision is in the outbox: the owner's default Critical channels (OQ-24).
        let outbox = ok(n
            .api("/incident/notification/list", json!({"incident_id": id}))
            .await);
        let channels: Vec<&str> = outbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["channel"].as_str().unwrap())
            .collect();
        assert_eq!(channels, vec!["email", "sms", "voice"]);
        assert_eq!(outbox["items"][0]["status"], "queued");
        assert_eq!(outbox["items"][0]["reason"], "assign");

        // 14 minutes: nothing yet. 15: level 1, the pending member reported, not notified.
        n.advance(14).await;
        assert_eq!(n.kinds(&id).await.len(), 3);
        n.advance(1).await;
        let feed = n.feed(&id).await;
        let kinds: Vec<&str> = feed.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            vec!["i_new", "i_assign", "i_notify", "i_assign", "i_notify"]
        );
        assert_eq!(feed[3]["detail"]["type"], "escalate");
        assert_eq!(feed[3]["detail"]["layer_idx"], 1);
        assert_eq!(feed[3]["detail"]["to"], json!([n.owner]));
        let persons = feed[4]["detail"]["persons"].as_array().unwrap();
        assert!(
            persons
                .iter()
                .any(|p| p["person_id"] == pending && p["failed_reason"] == "member_inactive"),
            "{persons:?}"
        );
        // The last level never escalates (RSP-164).
        n.advance(120).await;
        assert_eq!(n.kinds(&id).await.len(), 5);
    }
);

on_both_backends!(manual_actions_and_timeline, |url: String| async move {
    // spec: RSP-002, RSP-030, RSP-033, RSP-041, RSP-042, RSP-051, RSP-052, RSP-070, RSP-080,
    // spec: RSP-081, RSP-082, RSP-121, RSP-020 (Triggered → Processing → Triggered → Closed
    // spec: → Triggered), RSP-036 (`console`), RSP-050 (`console`)
    let n = Node::start(&url, false).await;
    ok(n.api(
        "/channel/escalate/rule/create",
        json!({"channel_id": n.channel, "rule_name": "Default",
                   "layers": [level(&[n.owner], 15), level(&[n.owner], 15)]}),
    )
    .await);
    let id = n.push_incident("manual-1").await;

    assert!(
        n.api("/incident/ack", json!({"incident_ids": [id]}))
            .await
            .1
            .get("error")
            .is_none()
    );
    let inc = n.incident(&id).await;
    assert_eq!(inc["progress"], "Processing");
    assert!(inc["ack_time"].as_i64().unwrap() > 0);
    assert!(inc["responders"][0]["acknowledged_at"].as_i64().unwrap() > 0);
    // The Open API's entry point is recorded as `console` (RSP-036).
    let acks: Vec<Value> = n
        .feed(&id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "i_ack")
        .collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0]["detail"]["from"], "console");
    // Acknowledged with force_escalate false: no escalation at the deadline (RSP-031).
    n.advance(30).await;
    assert_eq!(n.incident(&id).await["assigned_to"]["layer_idx"], 0);

    ok(n.api(
        "/incident/snooze",
        json!({"incident_ids": [id], "minutes": 60}),
    )
    .await);
    let inc = n.incident(&id).await;
    assert!(inc["snoozed_before"].as_i64().unwrap() > 0);
    ok(n.api("/incident/wake", json!({"incident_ids": [id]})).await);
    assert_eq!(n.incident(&id).await["snoozed_before"], 0);
    ok(n.api("/incident/unack", json!({"incident_ids": [id]}))
        .await);
    assert_eq!(n.incident(&id).await["progress"], "Triggered");
    // Withdrawing an acknowledgement one does not hold is refused (RSP-033).
    err(
        n.api("/incident/unack", json!({"incident_ids": [id]}))
            .await,
        "BadRequest",
    );

    ok(n.api(
        "/incident/comment",
        json!({"incident_ids": [id], "comment": "  looking  "}),
    )
    .await);
    err(
        n.api(
            "/incident/comment",
            json!({"incident_ids": [id], "comment": "   "}),
        )
        .await,
        "InvalidParameter",
    );
    // spec: RSP-006 — `num` and `detail_url` are fixed at creation; edits leave them alone.
    let before = n.incident(&id).await;
    assert_eq!(
        before["num"],
        id[id.len() - 6..].to_ascii_uppercase(),
        "num is the id's last six characters, upper-cased (1.7)"
    );
    assert_eq!(
        before["detail_url"],
        format!("{}/incident/detail/{id}", n.ts.base),
        "detail_url is {{base_url}}/incident/detail/{{incident_id}} (1.7)"
    );
    ok(n
        .api(
            "/incident/reset",
            json!({"incident_id": id, "title": "db primary down", "incident_severity": "Warning", "impact": "checkout"}),
        )
        .await);
    let inc = n.incident(&id).await;
    assert_eq!(inc["title"], "db primary down");
    assert_eq!(
        (&inc["num"], &inc["detail_url"]),
        (&before["num"], &before["detail_url"])
    );
    assert_eq!(inc["incident_severity"], "Warning");
    assert_eq!(inc["impact"], "checkout");
    assert_eq!(
        inc["manual_overrides"],
        json!(["title", "incident_severity"])
    );

    ok(n.api(
        "/incident/resolve",
        json!({"incident_ids": [id], "root_cause": "disk full", "resolution": "grew the volume"}),
    )
    .await);
    let inc = n.incident(&id).await;
    assert_eq!(inc["progress"], "Closed");
    assert_eq!(inc["close_source"], "console");
    assert_eq!(inc["closer_id"], n.owner);
    assert_eq!(inc["root_cause"], "disk full");
    // RSP-052: its alerts are closed too.
    let alerts = n.ts.alerts().await;
    let alert = alerts
        .iter()
        .find(|a| a["alert_key"] == "manual-1")
        .unwrap();
    assert_eq!(alert["closed"], true);
    // RSP-022: no acknowledging a closed incident.
    err(
        n.api("/incident/ack", json!({"incident_ids": [id]})).await,
        "BadRequest",
    );

    ok(n.api(
        "/incident/reopen",
        json!({"incident_ids": [id], "reason": "recurred"}),
    )
    .await);
    let inc = n.incident(&id).await;
    assert_eq!(inc["progress"], "Triggered");
    assert_eq!(inc["close_time"], 0);
    assert_eq!(inc["assigned_to"]["type"], "reopen");

    let kinds = n.kinds(&id).await;
    let tail: Vec<&str> = kinds[3..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        vec![
            "i_ack",
            "i_snooze",
            "i_wake",
            "i_unack",
            "i_comm",
            "i_r_title",
            "i_r_impact",
            "i_r_severity",
            "i_rslv",
            "i_reopen",
            "i_assign",
            "i_notify"
        ]
    );
    let feed = n.feed(&id).await;
    let comment = feed.iter().find(|e| e["type"] == "i_comm").unwrap();
    assert_eq!(comment["detail"]["comment"], "looking");
    assert_eq!(comment["creator_id"], n.owner);

    // Batch with an unknown id: each incident on its own (RSP-121).
    let data = ok(n
        .api(
            "/incident/comment",
            json!({"incident_ids": [id, "ffffffffffffffffffffffff"], "comment": "x"}),
        )
        .await);
    assert_eq!(data["items"][0]["ok"], true);
    assert_eq!(data["items"][1]["error"]["code"], "ResourceNotFound");
    err(
        n.api(
            "/incident/ack",
            json!({"incident_ids": ["ffffffffffffffffffffffff"]}),
        )
        .await,
        "ResourceNotFound",
    );
    err(
        n.api(
            "/incident/snooze",
            json!({"incident_ids": [id], "minutes": 0}),
        )
        .await,
        "InvalidParameter",
    );
});

on_both_backends!(
    manual_incident_reassign_and_escalate,
    |url: String| async move {
        // spec: RSP-011, RSP-012, RSP-013, RSP-110, RSP-112, RSP-113
        let n = Node::start(&url, false).await;
        let rule = ok(n
        .api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Three",
                   "aggr_window": 600,
                   "layers": [level(&[n.owner], 10), level(&[n.owner], 10), level(&[n.owner], 10)]}),
        )
        .await);
        let rule_id = rule["rule_id"].as_str().unwrap().to_string();

        // Direct assignment, global incident.
        let created = ok(n
            .api(
                "/incident/create",
                json!({"title": "manual", "incident_severity": "Info",
                   "assigned_to": {"person_ids": [n.owner]}}),
            )
            .await);
        let direct = created["incident_id"].as_str().unwrap().to_string();
        let inc = n.incident(&direct).await;
        assert_eq!(inc["channel_id"], 0);
        assert_eq!(inc["creator_id"], n.owner);
        assert_eq!(inc["assigned_to"]["layer_idx"], -1);
        assert_eq!(inc["incident_status"], "Info");
        assert_eq!(
            n.kinds(&direct).await,
            vec!["i_new", "i_assign", "i_notify"]
        );
        // A global incident cannot take a rule.
        err(
            n.api(
                "/incident/create",
                json!({"title": "x", "incident_severity": "Info",
                   "assigned_to": {"escalate_rule_id": rule_id}}),
            )
            .await,
            "InvalidParameter",
        );
        err(
            n.api("/incident/create", json!({"title": "x"})).await,
            "InvalidParameter",
        );

        // Rule-based at level 1: no delay window for manual incidents (RSP-013).
        let created = ok(n
            .api(
                "/incident/create",
                json!({"title": "by rule", "incident_severity": "Critical", "channel_id": n.channel,
                   "assigned_to": {"escalate_rule_id": rule_id, "layer_idx": 1}}),
            )
            .await);
        let id = created["incident_id"].as_str().unwrap().to_string();
        let inc = n.incident(&id).await;
        assert_eq!(inc["assigned_to"]["layer_idx"], 1);
        assert_eq!(inc["assigned_to"]["escalate_rule_id"], rule_id);

        // Manual escalation to level 0 (lower is allowed), then to an invalid level.
        ok(n
        .api(
            "/incident/assign",
            json!({"incident_id": id, "assigned_to": {"escalate_rule_id": rule_id, "layer_idx": 0}}),
        )
        .await);
        let inc = n.incident(&id).await;
        assert_eq!(inc["assigned_to"]["type"], "escalate");
        assert_eq!(inc["assigned_to"]["layer_idx"], 0);
        err(
        n.api(
            "/incident/assign",
            json!({"incident_id": id, "assigned_to": {"escalate_rule_id": rule_id, "layer_idx": 7}}),
        )
        .await,
        "InvalidParameter",
    );
        // Reassign, then manual escalation is no longer possible (RSP-111).
        ok(n.api(
            "/incident/assign",
            json!({"incident_id": id, "assigned_to": {"person_ids": [n.owner]}}),
        )
        .await);
        let inc = n.incident(&id).await;
        assert_eq!(inc["assigned_to"]["type"], "reassign");
        assert_eq!(inc["assigned_to"]["escalate_rule_id"], "");
        err(
        n.api(
            "/incident/assign",
            json!({"incident_id": id, "assigned_to": {"escalate_rule_id": rule_id, "layer_idx": 1}}),
        )
        .await,
        "InvalidParameter",
    );
        // No timer survives the reassignment: nothing happens later.
        let before = n.kinds(&id).await.len();
        n.advance(60).await;
        assert_eq!(n.kinds(&id).await.len(), before);

        // Adding a pending member reports it without making it a responder.
        let pending = n.invite("late@example.com").await;
        ok(n.api(
            "/incident/responder/add",
            json!({"incident_id": id, "person_ids": [pending]}),
        )
        .await);
        assert_eq!(
            n.incident(&id).await["responders"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // The delay window applies to pushed incidents (RSP-160).
        let pushed = n.push_incident("delayed").await;
        assert_eq!(n.kinds(&pushed).await, vec!["i_new"]);
        n.advance(10).await;
        assert_eq!(
            n.kinds(&pushed).await,
            vec!["i_new", "i_assign", "i_notify"]
        );
    }
);

on_both_backends!(recovery_closes_and_cancels, |url: String| async move {
    // spec: RSP-053, RSP-056, RSP-160 (ESC-9 case 1), RSP-050 (`event`)
    // spec: ING-190 (closed when the window ends: never assigned, never notified)
    let n = Node::start(&url, false).await;
    ok(n.api(
        "/channel/escalate/rule/create",
        json!({"channel_id": n.channel, "rule_name": "Delayed", "aggr_window": 120,
                   "layers": [level(&[n.owner], 10)]}),
    )
    .await);
    let id = n.push_incident("recovers").await;
    let (status, _) =
        n.ts.push(json!({"event_status": "Ok", "alert_key": "recovers"}))
            .await;
    assert_eq!(status, 200);
    n.ts.drained().await;
    let inc = n.incident(&id).await;
    assert_eq!(inc["progress"], "Closed");
    assert_eq!(inc["close_source"], "event");
    n.advance(10).await;
    assert_eq!(n.kinds(&id).await, vec!["i_new", "i_rslv"]);
    let feed = n.feed(&id).await;
    assert_eq!(feed[1]["detail"]["from"], "event");
});

on_both_backends!(timer_worker_runs_due_steps, |url: String| async move {
    // The node's own timer worker (not the test) runs a due escalation once the clock passes
    // its deadline.
    let n = Node::start(&url, true).await;
    ok(n.api(
        "/channel/escalate/rule/create",
        json!({"channel_id": n.channel, "rule_name": "Two",
                   "layers": [level(&[n.owner], 5), level(&[n.owner], 5)]}),
    )
    .await);
    let id = n.push_incident("worker").await;
    n.clock.0.fetch_add(5 * MIN, Ordering::SeqCst);
    for _ in 0..300 {
        if n.kinds(&id).await.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let feed = n.feed(&id).await;
    assert_eq!(feed.len(), 5, "{feed:?}");
    assert_eq!(feed[3]["detail"]["type"], "escalate");
    let metrics = n.ts.metrics().await;
    assert!(
        metrics.contains("klaxon_timer_lateness_seconds"),
        "the auditor records lateness"
    );
});

on_both_backends!(rules_with_service_calendars, |url: String| async move {
    // spec: RSP-133 (cal_id, is_off), RSP-270, RSP-273
    let n = Node::start(&url, false).await;
    let msg = err(
        n.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Workdays",
                   "time_filters": [{"start": "00:00", "end": "00:00", "cal_id": "ffffffffffffffffffffffff"}],
                   "layers": [level(&[n.owner], 5)]}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("time_filters[0].cal_id"), "{msg}");

    // A calendar with no workdays at all: the workday rule never holds.
    let cal = ok(n
        .api(
            "/calendar/create",
            json!({"cal_name": "Never", "timezone": "UTC", "workdays": []}),
        )
        .await);
    let cal_id = cal["cal_id"].as_str().unwrap().to_string();
    let workdays = ok(n
        .api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Workdays",
                   "time_filters": [{"start": "00:00", "end": "00:00", "cal_id": cal_id, "is_off": false}],
                   "layers": [level(&[n.owner], 5)]}),
        )
        .await);
    ok(n
        .api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Catch-all", "layers": [level(&[n.owner], 5)]}),
        )
        .await);
    let first = n.push_incident("cal-1").await;
    assert_eq!(
        n.incident(&first).await["assigned_to"]["escalate_rule_name"],
        "Catch-all"
    );

    // Every day a workday: now the calendar rule wins.
    ok(n.api(
        "/calendar/update",
        json!({"cal_id": cal_id, "workdays": [0, 1, 2, 3, 4, 5, 6]}),
    )
    .await);
    let second = n.push_incident("cal-2").await;
    assert_eq!(
        n.incident(&second).await["assigned_to"]["escalate_rule_id"],
        workdays["rule_id"]
    );

    // The rule keeps the calendar in use (RSP-273).
    err(
        n.api("/calendar/delete", json!({"cal_id": cal_id})).await,
        "ReferenceExist",
    );
});

on_both_backends!(
    past_incidents_are_similar_closed_ones,
    |url: String| async move {
        // spec: RSP-450, RSP-451
        let n = Node::start(&url, false).await;
        let push = |key: &'static str, status: &'static str, title: &'static str| {
            let ts = &n.ts;
            async move {
                let (code, body) = ts
                    .push(json!({"event_status": status, "title_rule": title, "alert_key": key}))
                    .await;
                assert_eq!(code, 200, "{body}");
                ts.drained().await;
            }
        };
        push("past-1", "Critical", "payments down on web-1").await;
        let first = n.incident_by_key("past-1").await;
        ok(n.api(
            "/incident/reset",
            json!({"incident_id": first, "root_cause": "pool exhausted"}),
        )
        .await);
        push("past-1", "Ok", "payments down on web-1").await;
        push("past-x", "Critical", "checkout latency above 2s").await;
        let unrelated = n.incident_by_key("past-x").await;
        ok(
            n.api("/incident/resolve", json!({"incident_ids": [unrelated]}))
                .await,
        );
        n.clock.0.fetch_add(60_000, Ordering::SeqCst);
        push("past-2", "Critical", "payments down on web-7").await;
        let second = n.incident_by_key("past-2").await;
        let past = ok(n
            .api("/incident/past/list", json!({"incident_id": second}))
            .await);
        let items = past["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{past}");
        assert_eq!(items[0]["incident_id"], first);
        assert_eq!(items[0]["score"], 1.0);
        assert_eq!(items[0]["root_cause"], "pool exhausted");
        // The first has nothing before it.
        let none = ok(n
            .api("/incident/past/list", json!({"incident_id": first}))
            .await);
        assert_eq!(none["items"].as_array().unwrap().len(), 0);
    }
);

on_both_backends!(merging_incidents, |url: String| async move {
    // spec: RSP-100, RSP-003, RSP-004 (LIFE-1), RSP-102
    let n = Node::start(&url, false).await;
    ok(n.api(
        "/channel/escalate/rule/create",
        json!({"channel_id": n.channel, "rule_name": "Default", "layers": [level(&[n.owner], 30)]}),
    )
    .await);
    let (status, _) = n
        .ts
        .push(json!({"event_status": "Warning", "title_rule": "disk slow", "alert_key": "m-1"}))
        .await;
    assert_eq!(status, 200);
    n.ts.drained().await;
    let i1 = n.incident_by_key("m-1").await;
    let i2 = n.push_incident("m-2").await; // Critical
    ok(n.api("/incident/ack", json!({"incident_ids": [i2]})).await);

    err(
        n.api(
            "/incident/merge",
            json!({"target_incident_id": i1, "source_incident_ids": []}),
        )
        .await,
        "InvalidParameter",
    );
    err(
        n.api(
            "/incident/merge",
            json!({"target_incident_id": i1, "source_incident_ids": ["ffffffffffffffffffffffff"]}),
        )
        .await,
        "ResourceNotFound",
    );
    ok(n
        .api(
            "/incident/merge",
            json!({"target_incident_id": i1, "source_incident_ids": [i2, i1], "comment": "same root cause"}),
        )
        .await);
    let target = n.incident(&i1).await;
    assert_eq!(target["alert_cnt"], 2);
    assert_eq!(
        target["incident_severity"], "Critical",
        "derived again (RSP-003)"
    );
    assert_eq!(target["progress"], "Triggered");
    assert_eq!(target["responders"].as_array().unwrap().len(), 1);
    let alerts = ok(n
        .api("/incident/alert/list", json!({"incident_id": i1}))
        .await);
    assert_eq!(alerts["total"], 2);
    let source = n.incident(&i2).await;
    assert_eq!(source["progress"], "Closed");
    assert_eq!(source["close_source"], "console");
    assert_eq!(source["closer_id"], n.owner);
    let tail: Vec<String> = n.kinds(&i2).await.into_iter().rev().take(2).collect();
    assert_eq!(tail, vec!["i_rslv", "i_merge"]);
    let feed = n.feed(&i1).await;
    let merge = feed.last().unwrap();
    assert_eq!(merge["type"], "i_merge");
    assert_eq!(merge["detail"]["comment"], "same root cause");
    assert_eq!(merge["detail"]["source_incidents"][0]["incident_id"], i2);
    // A new event for the moved alert still lands in the target.
    let (status, _) =
        n.ts.push(json!({"event_status": "Ok", "alert_key": "m-2"}))
            .await;
    assert_eq!(status, 200);
    n.ts.drained().await;
    assert_eq!(n.incident(&i1).await["active_alert_cnt"], 1);
    // A manual incident (no alerts) can be merged too and closes like any source (RSP-102).
    let manual = ok(n
        .api(
            "/incident/create",
            json!({"title": "customer report", "incident_severity": "Info",
                   "assigned_to": {"person_ids": [n.owner]}}),
        )
        .await);
    let manual = manual["incident_id"].as_str().unwrap().to_string();
    ok(n.api(
        "/incident/merge",
        json!({"target_incident_id": i1, "source_incident_ids": [manual]}),
    )
    .await);
    let m = n.incident(&manual).await;
    assert_eq!(m["progress"], "Closed");
    assert_eq!(m["close_source"], "console");
    let tail: Vec<String> = n.kinds(&manual).await.into_iter().rev().take(2).collect();
    assert_eq!(tail, vec!["i_rslv", "i_merge"]);
    assert_eq!(n.incident(&i1).await["alert_cnt"], 2, "no alert moved");
    // A closed incident cannot be a target.
    err(
        n.api(
            "/incident/merge",
            json!({"target_incident_id": i2, "source_incident_ids": [i1]}),
        )
        .await,
        "BadRequest",
    );
});

on_both_backends!(
    outlier_incidents_are_marked_rare,
    |url: String| async move {
        // spec: RSP-452, RSP-007
        let n = Node::start(&url, false).await;
        async fn push(n: &Node, key: &str, title: &str) {
            let (code, body) = n
                .ts
                .push(json!({"event_status": "Warning", "title_rule": title, "alert_key": key}))
                .await;
            assert_eq!(code, 200, "{body}");
            n.ts.drained().await;
        }
        async fn freq(n: &Node, id: &str) -> Value {
            n.incident(id).await["frequency"].clone()
        }
        push(&n, "o-1", "queue depth high on mq-1").await;
        n.clock.0.fetch_add(60_000, Ordering::SeqCst);
        push(&n, "o-2", "queue depth high on mq-2").await;
        push(&n, "o-3", "certificate expires in 7 days").await;
        assert_eq!(freq(&n, &n.incident_by_key("o-1").await).await, "rare");
        assert_eq!(freq(&n, &n.incident_by_key("o-2").await).await, "frequent");
        assert_eq!(freq(&n, &n.incident_by_key("o-3").await).await, "rare");
        // Event times are whole seconds: an incident raised again in the same second as a
        // like one is not an outlier, its predecessor was created first.
        push(&n, "o-5", "disk full on db-1").await;
        push(&n, "o-6", "disk full on db-2").await;
        assert_eq!(freq(&n, &n.incident_by_key("o-5").await).await, "rare");
        assert_eq!(freq(&n, &n.incident_by_key("o-6").await).await, "frequent");
        // A global incident is not evaluated.
        let created = ok(n
            .api(
                "/incident/create",
                json!({"title": "queue depth high on mq-3", "incident_severity": "Info"}),
            )
            .await);
        assert_eq!(freq(&n, created["incident_id"].as_str().unwrap()).await, "");
        // A manual incident of the channel is.
        let created = ok(n
        .api(
            "/incident/create",
            json!({"title": "queue depth high on mq-4", "incident_severity": "Info", "channel_id": n.channel}),
        )
        .await);
        assert_eq!(
            freq(&n, created["incident_id"].as_str().unwrap()).await,
            "frequent"
        );
    }
);

on_both_backends!(merging_alerts_into_an_incident, |url: String| async move {
    // spec: RSP-101, RSP-100 b (an incident left without alerts closes), RSP-053, RSP-003
    // spec: ING-205 (both incidents re-derived; a moved alert keeps absorbing events)
    let n = Node::start(&url, false).await;
    async fn push(n: &Node, key: &str, status: &str, title: &str) {
        let (code, body) =
            n.ts.push(json!({"event_status": status, "title_rule": title, "alert_key": key}))
                .await;
        assert_eq!(code, 200, "{body}");
        n.ts.drained().await;
    }
    async fn alert_id(n: &Node, incident_id: &str, key: &str) -> String {
        let alerts = ok(n
            .api("/incident/alert/list", json!({"incident_id": incident_id}))
            .await);
        alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["alert_key"] == key)
            .unwrap_or_else(|| panic!("no alert {key} in {incident_id}: {alerts}"))["alert_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
    push(&n, "am-1", "Critical", "api errors").await;
    push(&n, "am-2", "Warning", "api latency").await;
    push(&n, "am-3", "Warning", "db slow").await;
    push(&n, "am-4", "Info", "cache cold").await;
    let old = n.incident_by_key("am-1").await;
    let i2 = n.incident_by_key("am-2").await;
    let target = n.incident_by_key("am-3").await;
    let lone = n.incident_by_key("am-4").await;
    // `old` holds am-1 (its first alert) and am-2; am-2 has recovered.
    ok(n.api(
        "/incident/merge",
        json!({"target_incident_id": old, "source_incident_ids": [i2]}),
    )
    .await);
    push(&n, "am-2", "Ok", "api latency").await;
    let before = n.incident(&old).await;
    assert_eq!(before["alert_cnt"], 2);
    assert_eq!(before["active_alert_cnt"], 1);
    assert_eq!(before["progress"], "Triggered");
    let a1 = alert_id(&n, &old, "am-1").await;

    // Bad input changes nothing.
    err(
        n.api(
            "/alert/merge",
            json!({"incident_id": target, "alert_ids": []}),
        )
        .await,
        "InvalidParameter",
    );
    let msg = err(
        n.api("/alert/merge", json!({"alert_ids": [a1]})).await,
        "InvalidParameter",
    );
    assert!(msg.contains("incident_id"), "{msg}");
    err(
        n.api(
            "/alert/merge",
            json!({"incident_id": target, "alert_ids": [a1, "ffffffffffffffffffffffff"]}),
        )
        .await,
        "ResourceNotFound",
    );
    assert_eq!(alert_id(&n, &old, "am-1").await, a1, "nothing moved");

    // The only unresolved alert (and the first one) of `old` moves to the target.
    ok(n.api(
        "/alert/merge",
        json!({"incident_id": target, "alert_ids": [a1], "comment": "same service"}),
    )
    .await);
    let t = n.incident(&target).await;
    assert_eq!(t["alert_cnt"], 2);
    assert_eq!(t["active_alert_cnt"], 2);
    assert_eq!(
        t["incident_severity"], "Critical",
        "derived again (RSP-003)"
    );
    assert_eq!(t["title"], "db slow", "the target keeps its own text");
    assert_eq!(alert_id(&n, &target, "am-1").await, a1);
    let last = n.feed(&target).await.last().unwrap().clone();
    assert_eq!(last["type"], "a_merge");
    assert_eq!(last["detail"]["alert_id"], a1);
    assert_eq!(last["detail"]["from_incident_id"], old);
    assert_eq!(last["detail"]["comment"], "same service");
    // `old` kept only a recovered alert: recomputed and auto-resolved (RSP-053).
    let o = n.incident(&old).await;
    assert_eq!(o["alert_cnt"], 1);
    assert_eq!(o["active_alert_cnt"], 0);
    assert_eq!(o["incident_severity"], "Warning");
    assert_eq!(o["incident_status"], "Ok");
    assert_eq!(o["progress"], "Closed");
    assert_eq!(o["close_source"], "event");
    assert_eq!(
        o["title"], "api errors",
        "title frozen after its first alert left"
    );
    assert_eq!(n.kinds(&old).await.last().unwrap(), "i_rslv");
    // A new event of the moved alert changes the target, not the old incident's text.
    push(&n, "am-1", "Critical", "api errors everywhere").await;
    assert_eq!(n.incident(&old).await["title"], "api errors");
    assert_eq!(n.incident(&target).await["title"], "db slow");

    // Moving an incident's last alert closes it as a merged-away source (RSP-100 b).
    let a4 = alert_id(&n, &lone, "am-4").await;
    ok(n.api(
        "/alert/merge",
        json!({"incident_id": target, "alert_ids": [a4], "title": "checkout degraded"}),
    )
    .await);
    let l = n.incident(&lone).await;
    assert_eq!(l["progress"], "Closed");
    assert_eq!(l["close_source"], "console");
    assert_eq!(l["closer_id"], n.owner);
    let tail: Vec<String> = n.kinds(&lone).await.into_iter().rev().take(2).collect();
    assert_eq!(tail, vec!["i_rslv", "i_merge"]);
    let t = n.incident(&target).await;
    assert_eq!(t["alert_cnt"], 3);
    assert_eq!(t["title"], "checkout degraded", "title applied as an edit");

    // A closed incident cannot be the target; nothing moves.
    err(
        n.api(
            "/alert/merge",
            json!({"incident_id": old, "alert_ids": [a4]}),
        )
        .await,
        "BadRequest",
    );
    assert_eq!(alert_id(&n, &target, "am-4").await, a4);
    assert_eq!(n.incident(&target).await["alert_cnt"], 3);
});

on_both_backends!(reordering_escalation_rules, |url: String| async move {
    // spec: RSP-137, RSP-130, RSP-132 (first matching rule in priority order), RSP-131
    let n = Node::start(&url, false).await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        let created = ok(n
            .api(
                "/channel/escalate/rule/create",
                json!({"channel_id": n.channel, "rule_name": name, "layers": [level(&[n.owner], 30)]}),
            )
            .await);
        ids.push(created["rule_id"].as_str().unwrap().to_string());
    }
    let (a, b, c) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let first = n.push_incident("ro-1").await;
    assert_eq!(
        n.incident(&first).await["assigned_to"]["escalate_rule_id"],
        a
    );

    async fn order(n: &Node) -> Vec<(String, i64)> {
        let list = ok(n
            .api(
                "/channel/escalate/rule/list",
                json!({"channel_id": n.channel}),
            )
            .await);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["rule_name"].as_str().unwrap().to_string(),
                    r["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    }
    let initial = order(&n).await;

    // rule_ids must be exactly the channel's rules; a refusal changes nothing.
    let path = "/channel/escalate/rule/reorder";
    let msg = err(
        n.api(path, json!({"channel_id": n.channel, "rule_ids": [c, a]}))
            .await,
        "InvalidParameter",
    );
    assert!(msg.contains("missing"), "{msg}");
    let msg = err(
        n.api(
            path,
            json!({"channel_id": n.channel, "rule_ids": [c, a, a]}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("twice"), "{msg}");
    let msg = err(
        n.api(
            path,
            json!({"channel_id": n.channel, "rule_ids": [c, a, "ffffffffffffffffffffffff"]}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("not a rule of this channel"), "{msg}");
    let msg = err(
        n.api(path, json!({"channel_id": n.channel})).await,
        "InvalidParameter",
    );
    assert!(msg.contains("rule_ids"), "{msg}");
    err(
        n.api(path, json!({"channel_id": 999_999, "rule_ids": [c, a, b]}))
            .await,
        "ResourceNotFound",
    );
    assert_eq!(order(&n).await, initial);

    ok(n.api(
        path,
        json!({"channel_id": n.channel, "rule_ids": [c, a, b]}),
    )
    .await);
    assert_eq!(
        order(&n).await,
        vec![
            ("C".to_string(), 0),
            ("A".to_string(), 1),
            ("B".to_string(), 2)
        ]
    );
    let info = ok(n
        .api("/channel/escalate/rule/info", json!({"rule_id": b}))
        .await);
    assert_eq!(info["priority"], 2, "the stored definition follows too");
    // Matching uses the new order at once; the earlier incident keeps its rule.
    let second = n.push_incident("ro-2").await;
    assert_eq!(
        n.incident(&second).await["assigned_to"]["escalate_rule_id"],
        c
    );
    assert_eq!(
        n.incident(&first).await["assigned_to"]["escalate_rule_id"],
        a
    );
});

/// The alerts of an incident, as `/incident/alert/list` gives them.
async fn alerts_of(n: &Node, incident_id: &str) -> Vec<Value> {
    let data = ok(n
        .api(
            "/incident/alert/list",
            json!({"incident_id": incident_id, "limit": 100}),
        )
        .await);
    data["items"].as_array().unwrap().clone()
}

/// Incidents whose first alert has this key, newest first.
async fn incidents_by_key(n: &Node, key: &str) -> Vec<Value> {
    let now = n.now() / 1000;
    let data = ok(n
        .api(
            "/incident/list",
            json!({"start_time": now - 86_400, "end_time": now + 86_400, "limit": 100}),
        )
        .await);
    data["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["dedup_key"] == key)
        .cloned()
        .collect()
}

async fn push_event(n: &Node, key: &str, status: &str, title: &str) {
    let (code, body) =
        n.ts.push(json!({"event_status": status, "title_rule": title, "alert_key": key}))
            .await;
    assert_eq!(code, 200, "{body}");
    n.ts.drained().await;
}

on_both_backends!(
    auto_close_follows_the_channel_settings_in_force,
    |url: String| async move {
        // spec: ING-202, RSP-055 (settings at evaluation time, also for open incidents)
        // spec: ING-201 (closing closes the alerts; the same key then opens a new incident)
        // spec: ING-191 (no escalation rule matches: no assignment, no notification)
        let n = Node::start(&url, false).await;
        let a = n.push_incident("ac-a").await;
        // The timeout is set after `a` opened; it applies to `a` all the same.
        ok(n.api(
            "/channel/update",
            json!({"channel_id": n.channel, "auto_resolve_timeout": 3600}),
        )
        .await);
        n.advance(59).await;
        assert_eq!(n.incident(&a).await["progress"], "Triggered");
        n.advance(2).await;
        let inc = n.incident(&a).await;
        assert_eq!(inc["progress"], "Closed");
        assert_eq!(inc["close_source"], "autorslv");
        assert_eq!(inc["closer_id"], 0);
        assert_eq!(inc["incident_status"], "Critical", "status does not change");
        assert_eq!(inc["end_time"], 0, "end_time does not change");
        for alert in alerts_of(&n, &a).await {
            assert_eq!(alert["closed"], true, "{alert}");
            assert_eq!(alert["alert_status"], "Critical", "{alert}");
        }
        let kinds = n.kinds(&a).await;
        assert!(
            !kinds.iter().any(|k| k == "i_assign" || k == "i_notify"),
            "{kinds:?}"
        );
        // A closed alert takes no more events: the same key opens a new alert and incident.
        push_event(&n, "ac-a", "Critical", "db down").await;
        let both = incidents_by_key(&n, "ac-a").await;
        assert_eq!(both.len(), 2, "{both:?}");
        let again = both.iter().find(|i| i["incident_id"] != a).unwrap();
        assert_eq!(again["progress"], "Triggered");
        let again = again["incident_id"].as_str().unwrap().to_string();
        assert_ne!(
            alerts_of(&n, &again).await[0]["alert_id"],
            alerts_of(&n, &a).await[0]["alert_id"]
        );

        // A longer timeout set later moves the close of an open incident later.
        ok(n.api(
            "/channel/update",
            json!({"channel_id": n.channel, "auto_resolve_timeout": 7200}),
        )
        .await);
        n.advance(61).await;
        assert_eq!(n.incident(&again).await["progress"], "Triggered");
        n.advance(60).await;
        assert_eq!(n.incident(&again).await["progress"], "Closed");

        // A shorter one set later closes an incident already past it at once.
        let c = n.push_incident("ac-c").await;
        n.advance(20).await;
        ok(n.api(
            "/channel/update",
            json!({"channel_id": n.channel, "auto_resolve_timeout": 600}),
        )
        .await);
        n.advance(1).await;
        let inc = n.incident(&c).await;
        assert_eq!(inc["progress"], "Closed");
        assert_eq!(inc["close_source"], "autorslv");

        // `update` counts from the last alert that joined: a joining alert postpones it.
        ok(n.api(
            "/channel/update",
            json!({"channel_id": n.channel, "auto_resolve_timeout": 600,
                   "auto_resolve_mode": "update",
                   "group": {"method": "p", "equals": [["title"]], "time_window": 60}}),
        )
        .await);
        let d = n.push_incident("ac-d").await;
        n.advance(8).await;
        push_event(&n, "ac-d2", "Critical", "db down").await;
        assert_eq!(n.incident(&d).await["alert_cnt"], 2, "joined by grouping");
        n.advance(8).await;
        assert_eq!(n.incident(&d).await["progress"], "Triggered");
        n.advance(3).await;
        assert_eq!(n.incident(&d).await["progress"], "Closed");
    }
);

on_both_backends!(
    a_delay_window_is_not_extended_by_joining_alerts,
    |url: String| async move {
        // spec: ING-190 (alerts merging during the window do not extend it)
        // spec: ING-191 (joins never trigger a second initial assignment)
        let n = Node::start(&url, false).await;
        ok(n.api(
            "/channel/update",
            json!({"channel_id": n.channel,
                   "group": {"method": "p", "equals": [["title"]], "time_window": 60}}),
        )
        .await);
        ok(n.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": n.channel, "rule_name": "Delayed", "aggr_window": 600,
                   "layers": [level(&[n.owner], 30)]}),
        )
        .await);
        let id = n.push_incident("dw-1").await;
        assert_eq!(n.kinds(&id).await, vec!["i_new"]);
        n.advance(5).await;
        push_event(&n, "dw-2", "Critical", "db down").await;
        assert_eq!(n.incident(&id).await["alert_cnt"], 2);
        n.advance(4).await;
        assert!(!n.kinds(&id).await.contains(&"i_assign".to_string()));
        // Ten minutes after the start, not after the join.
        n.advance(1).await;
        let kinds = n.kinds(&id).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "i_assign").count(),
            1,
            "{kinds:?}"
        );
        push_event(&n, "dw-3", "Warning", "db down").await;
        n.advance(5).await;
        let inc = n.incident(&id).await;
        assert_eq!(inc["alert_cnt"], 3);
        let kinds = n.kinds(&id).await;
        assert_eq!(
            kinds.iter().filter(|k| *k == "i_assign").count(),
            1,
            "{kinds:?}"
        );
    }
);

on_both_backends!(
    a_reopened_incident_takes_new_alerts_and_resolves_on_them,
    |url: String| async move {
        // spec: ING-203, RSP-072
        let n = Node::start(&url, false).await;
        ok(n.api(
            "/channel/update",
            json!({"channel_id": n.channel,
                   "group": {"method": "p", "equals": [["title"]], "time_window": 60}}),
        )
        .await);
        let id = n.push_incident("ro-1").await;
        push_event(&n, "ro-1", "Ok", "db down").await;
        let inc = n.incident(&id).await;
        assert_eq!(inc["progress"], "Closed");
        let end_time = inc["end_time"].clone();
        assert_ne!(end_time, 0);

        n.advance(1).await;
        ok(n.api(
            "/incident/reopen",
            json!({"incident_ids": [id], "reason": "not fixed"}),
        )
        .await);
        let inc = n.incident(&id).await;
        assert_eq!(inc["progress"], "Triggered");
        assert_eq!(inc["close_time"], 0);
        assert_eq!(inc["closer_id"], 0);
        assert_eq!(inc["incident_status"], "Ok", "status unchanged");
        assert_eq!(inc["end_time"], end_time, "end_time unchanged");
        assert_eq!(alerts_of(&n, &id).await[0]["closed"], true);

        // The old alert is closed: the key's next trigger is a new alert, and grouping puts
        // it into the reopened incident.
        push_event(&n, "ro-1", "Critical", "db down").await;
        let inc = n.incident(&id).await;
        assert_eq!(inc["alert_cnt"], 2, "{inc}");
        assert_eq!(inc["incident_status"], "Critical");
        assert_eq!(inc["progress"], "Triggered");
        assert_eq!(incidents_by_key(&n, "ro-1").await.len(), 1);
        // Every alert Ok again: it auto-resolves.
        push_event(&n, "ro-1", "Ok", "db down").await;
        let inc = n.incident(&id).await;
        assert_eq!(inc["progress"], "Closed");
        assert_eq!(inc["close_source"], "event");
        assert_eq!(inc["incident_status"], "Ok");
    }
);
