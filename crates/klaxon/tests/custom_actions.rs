//! Custom actions and links end to end (response.md 1.19, 1.20, §2.24 RSP-400…RSP-404;
//! docs/custom-actions.md): configured over the Open API, invoked with
//! `/incident/custom-action/do` against a receiver on this machine that records every request
//! and answers what the test tells it, and the `i_custom` incident webhook delivered by a
//! dispatcher the test drives. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{ManualClock, test_config, wall_ms};
use klaxon_server::webhooks::WebhookDispatcher;
use klaxon_server::{Clock, Config, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- the receiver: plain HTTP/1.1, so it can also close a connection without answering ----

#[derive(Debug, Clone)]
struct Req {
    target: String,
    headers: HashMap<String, String>,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    reqs: Arc<Mutex<Vec<Req>>>,
    /// The next this-many requests are read and then dropped unanswered.
    drop_next: Arc<AtomicUsize>,
    /// (status, body) of the next answers; (200, "ok") when empty.
    answers: Arc<Mutex<VecDeque<(u16, String)>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let r = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *r.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        let this = r.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let this = this.clone();
                tokio::spawn(async move { this.serve(socket).await });
            }
        });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.lock().unwrap().unwrap())
    }

    async fn serve(&self, mut socket: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = socket.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let target = lines
            .next()
            .unwrap_or("")
            .split(' ')
            .nth(1)
            .unwrap_or("")
            .to_string();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = socket.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        if self
            .drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            drop(socket);
            return;
        }
        let (status, text) = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, "ok".to_string()));
        self.reqs.lock().unwrap().push(Req {
            target,
            headers,
            body,
        });
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = socket.write_all(resp.as_bytes()).await;
        let _ = socket.shutdown().await;
    }

    fn to(&self, target: &str) -> Vec<Req> {
        self.reqs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.target == target)
            .cloned()
            .collect()
    }
}

// ---- a node without delivery workers: the test runs the webhook dispatcher itself ----

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    owner: i64,
    account: i64,
    app_key: String,
    integration_key: String,
    hooks: WebhookDispatcher,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let mut config: Config = test_config(dir.path(), url);
        config.workers.delivery = false;
        config.workers.timers = false;
        config.notify.allow_private_targets = true;
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let b = server.bootstrap().clone();
        let hooks = WebhookDispatcher::new(
            server.store().clone(),
            server.base_url(),
            &format!("test-{}", wall_ms()),
            true,
        )
        .unwrap();
        Node {
            owner: b.owner_member_id,
            account: b.account_id,
            app_key: b.app_key.clone(),
            integration_key: b.integration_key.clone(),
            server,
            http: reqwest::Client::new(),
            clock,
            hooks,
            _dir: dir,
        }
    }

    async fn call_with(&self, key: &str, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}?app_key={key}", self.server.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        self.call_with(&self.app_key, path, body).await
    }

    async fn api(&self, path: &str, body: Value) -> Value {
        let out = self.call(path, body).await;
        assert!(out.get("error").is_none(), "{path}: {out}");
        out["data"].clone()
    }

    /// Pushes one Critical alert; returns (incident id, alert id, channel id).
    async fn alert(&self, key: &str) -> (String, String, i64) {
        let push = format!(
            "{}/event/push/alert/standard?integration_key={}",
            self.server.base_url(),
            self.integration_key
        );
        let resp = self
            .http
            .post(push)
            .json(
                &json!({"event_status": "Critical", "title_rule": format!("{key} down"),
                          "alert_key": key, "labels": {"host": key}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let now = self.clock.now() / 1000;
        // Ingestion is asynchronous (ING-011): poll until the incident exists.
        for _ in 0..500 {
            let data = self
                .api(
                    "/alert/list",
                    json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 100}),
                )
                .await;
            if let Some(a) = data["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["alert_key"] == key && a["incident_id"] != "")
            {
                return (
                    a["incident_id"].as_str().unwrap().to_string(),
                    a["alert_id"].as_str().unwrap().to_string(),
                    a["channel_id"].as_i64().unwrap(),
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no alert for {key}");
    }

    async fn feed(&self, incident_id: &str) -> Vec<Value> {
        self.api(
            "/incident/feed",
            json!({"incident_id": incident_id, "limit": 100}),
        )
        .await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Invites a member with `role_ids` and gives them an APP key; returns (member_id, key).
    async fn member(&self, email: &str, role_ids: &[i64]) -> (i64, String) {
        let data = self
            .api(
                "/member/invite",
                json!({"members": [{"email": email, "role_ids": role_ids}]}),
            )
            .await;
        let id = data["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("k{id}"));
        self.server
            .store()
            .add_app_key(self.account, id, "test", &key, self.clock.now())
            .await
            .unwrap()
            .unwrap();
        (id, key)
    }
}

fn error_of(out: &Value) -> (String, String) {
    (
        out["error"]["code"].as_str().unwrap_or("").to_string(),
        out["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

fn is_hex32(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

on_both_backends!(
    invoking_posts_the_payload_and_records_the_success,
    |url: String| async move {
        // spec: RSP-400 (offered by channel, by name), RSP-401 (payload, headers, custom body,
        // value mapping), RSP-402 (success: timeline entry by the invoker, i_custom webhook)
        let rx = Receiver::start().await;
        let node = Node::start(&url).await;
        let (incident_id, alert_id, channel) = node.alert("db1").await;
        node.api(
            "/webhook/create",
            json!({"kind": "incident_webhook", "name": "all", "endpoint": rx.url("/hook"),
                   "event_types": ["i_custom"]}),
        )
        .await;
        let action = node
            .api(
                "/custom-action/create",
                json!({"name": "Restart db", "endpoint": rx.url("/restart?token=s3"),
                       "headers": {"X-Auth": "abc"}, "channel_ids": [channel]}),
            )
            .await;
        let action_id = action["integration_id"].as_i64().unwrap();
        assert_eq!(action["headers"], json!({"X-Auth": "abc"}));
        let templated = node
            .api(
                "/custom-action/create",
                json!({"name": "Page DBA", "endpoint": rx.url("/page"), "channel_ids": [channel],
                       "custom_body": r#"{"who": "{{person.email}}", "sev": "{{incident.incident_severity}}", "n": "{{incident.alerts.0.alert_id}}"}"#,
                       "value_mapping": {"incident.incident_severity": {"Critical": "P1"}}}),
            )
            .await;
        let templated_id = templated["integration_id"].as_i64().unwrap();

        // RSP-400: the incident offers both, ordered by name.
        let info = node
            .api("/incident/info", json!({"incident_id": incident_id}))
            .await;
        assert_eq!(
            info["custom_actions"],
            json!([{"integration_id": templated_id, "name": "Page DBA"},
                   {"integration_id": action_id, "name": "Restart db"}])
        );

        let done = node
            .api(
                "/incident/custom-action/do",
                json!({"incident_id": incident_id, "integration_id": action_id}),
            )
            .await;
        assert!(
            done["message"].as_str().unwrap().contains("Restart db"),
            "{done}"
        );

        // RSP-401: exactly one POST, to the endpoint with its query, with the custom header,
        // as JSON, unsigned.
        let got = rx.to("/restart?token=s3");
        assert_eq!(got.len(), 1);
        let req = &got[0];
        assert_eq!(req.headers["x-auth"], "abc");
        assert_eq!(req.headers["content-type"], "application/json");
        assert!(!req.headers.contains_key("x-klaxon-signature"));
        assert_eq!(req.headers["x-klaxon-event-type"], "i_custom");
        let body: Value = serde_json::from_str(&req.body).unwrap();
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["event_id", "event_time", "event_type", "incident", "person"]
        );
        assert_eq!(body["event_type"], "i_custom");
        assert_eq!(body["event_time"], node.clock.now());
        assert!(is_hex32(&body["event_id"]), "{body}");
        assert_eq!(req.headers["x-klaxon-event-id"], body["event_id"]);
        assert_eq!(body["person"]["person_id"], node.owner);
        assert!(body["person"]["email"].as_str().unwrap().contains('@'));
        let inc = &body["incident"];
        assert_eq!(inc["incident_id"], incident_id);
        assert_eq!(inc["channel_id"], channel);
        assert_eq!(inc["incident_severity"], "Critical");
        assert_eq!(inc["progress"], "Triggered");
        assert!(inc["detail_url"].as_str().unwrap().ends_with(&incident_id));
        let alerts = inc["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["alert_id"], alert_id);
        assert_eq!(alerts[0]["labels"]["host"], "db1");
        assert_eq!(alerts[0]["alert_severity"], "Critical");

        // RSP-402: recorded on the timeline, by the invoker.
        let feed = node.feed(&incident_id).await;
        let custom: Vec<&Value> = feed.iter().filter(|e| e["type"] == "i_custom").collect();
        assert_eq!(custom.len(), 1, "{feed:?}");
        assert_eq!(custom[0]["creator_id"], node.owner);
        assert_eq!(
            custom[0]["detail"],
            json!({"integration_id": action_id, "integration_name": "Restart db"})
        );

        // RSP-402: and the incident webhook i_custom fires, with the same incident object
        // (RSP-373) the action received, less its alerts.
        let round = node.hooks.drain(node.clock.now()).await.unwrap();
        assert_eq!(round.succeeded, 1, "{round:?}");
        let hooks = rx.to("/hook");
        assert_eq!(hooks.len(), 1);
        let hook: Value = serde_json::from_str(&hooks[0].body).unwrap();
        assert_eq!(hook["event_type"], "i_custom");
        assert_eq!(hook["person"]["person_id"], node.owner);
        let mut without_alerts = inc.clone();
        without_alerts.as_object_mut().unwrap().remove("alerts");
        assert_eq!(hook["incident"], without_alerts);

        // RSP-376, RSP-377: the custom body and value mapping apply.
        node.api(
            "/incident/custom-action/do",
            json!({"incident_id": incident_id, "integration_id": templated_id}),
        )
        .await;
        let paged = rx.to("/page");
        assert_eq!(paged.len(), 1);
        let sent: Value = serde_json::from_str(&paged[0].body).unwrap();
        assert_eq!(
            sent,
            json!({"who": body["person"]["email"], "sev": "P1", "n": alert_id})
        );
    }
);

on_both_backends!(
    a_failure_is_shown_and_nothing_is_recorded,
    |url: String| async move {
        // spec: RSP-402 (failure: status or transport error and ≤ 1 KB of the body, nothing
        // recorded, no webhook), RSP-374 (one retry after a connection closed unanswered)
        let rx = Receiver::start().await;
        let node = Node::start(&url).await;
        let (incident_id, _, channel) = node.alert("db2").await;
        node.api(
            "/webhook/create",
            json!({"kind": "incident_webhook", "name": "all", "endpoint": rx.url("/hook")}),
        )
        .await;
        let action_id = node
            .api(
                "/custom-action/create",
                json!({"name": "Heal", "endpoint": rx.url("/heal"), "channel_ids": [channel]}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        // Whatever is due before the invocations goes out first, so the count below is
        // only theirs.
        node.hooks.drain(node.clock.now()).await.unwrap();
        let hooks_before = rx.to("/hook").len();
        let feed_before = node.feed(&incident_id).await.len();

        let long = format!("{}{}", "x".repeat(1024), "y".repeat(976));
        rx.answers.lock().unwrap().push_back((500, long));
        let out = node
            .call(
                "/incident/custom-action/do",
                json!({"incident_id": incident_id, "integration_id": action_id}),
            )
            .await;
        let (code, message) = error_of(&out);
        assert_eq!(code, "BadRequest", "{out}");
        assert!(message.contains("HTTP 500"), "{message}");
        assert!(message.contains(&"x".repeat(1024)), "{message}");
        assert!(!message.contains('y'), "only the first 1 KB: {message}");
        assert_eq!(rx.to("/heal").len(), 1, "an HTTP error is not retried");

        // A transport error names what failed.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}/gone", closed.local_addr().unwrap());
        drop(closed);
        let dead_id = node
            .api(
                "/custom-action/create",
                json!({"name": "Dead", "endpoint": dead, "channel_ids": [channel]}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        let out = node
            .call(
                "/incident/custom-action/do",
                json!({"incident_id": incident_id, "integration_id": dead_id}),
            )
            .await;
        let (code, message) = error_of(&out);
        assert_eq!(code, "BadRequest", "{out}");
        assert!(message.contains("could not be reached"), "{message}");

        // Nothing was recorded, and no webhook fires.
        assert_eq!(node.feed(&incident_id).await.len(), feed_before);
        node.hooks.drain(node.clock.now()).await.unwrap();
        assert_eq!(rx.to("/hook").len(), hooks_before);

        // RSP-374: a connection closed before any answer is retried once, and then succeeds.
        rx.drop_next.store(1, Ordering::SeqCst);
        node.api(
            "/incident/custom-action/do",
            json!({"incident_id": incident_id, "integration_id": action_id}),
        )
        .await;
        let heals = rx.to("/heal");
        assert_eq!(heals.len(), 2);
        assert_eq!(
            node.feed(&incident_id)
                .await
                .iter()
                .filter(|e| e["type"] == "i_custom")
                .count(),
            1
        );
    }
);

on_both_backends!(
    permissions_bindings_and_the_limit,
    |url: String| async move {
        // spec: RSP-403 (Integrations Manage, data permission, a 4th binding → limit_exceeded),
        // RSP-400 (invoking needs Incidents Manage; not offered outside the bound channels)
        let rx = Receiver::start().await;
        let node = Node::start(&url).await;
        let (incident_id, _, channel) = node.alert("db3").await;
        let other = node
            .api("/channel/create", json!({"channel_name": "other"}))
            .await["channel_id"]
            .as_i64()
            .unwrap();
        let (_, viewer) = node.member("viewer@example.com", &[8]).await;
        let (_, responder) = node.member("responder@example.com", &[6]).await;
        let (_, admin) = node.member("admin@example.com", &[2]).await;

        // A Viewer may read but not create, and may not invoke.
        let out = node
            .call_with(
                &viewer,
                "/custom-action/create",
                json!({"name": "A", "endpoint": rx.url("/a"), "channel_ids": [channel]}),
            )
            .await;
        let (code, message) = error_of(&out);
        assert_eq!(code, "AccessDenied");
        assert!(message.contains("Integrations Manage"), "{message}");

        let mut ids = Vec::new();
        for name in ["A", "B", "C"] {
            let created = node
                .api(
                    "/custom-action/create",
                    json!({"name": name, "endpoint": rx.url("/a"), "channel_ids": [channel]}),
                )
                .await;
            ids.push(created["integration_id"].as_i64().unwrap());
        }
        let out = node
            .call_with(
                &viewer,
                "/incident/custom-action/do",
                json!({"incident_id": incident_id, "integration_id": ids[0]}),
            )
            .await;
        let (code, message) = error_of(&out);
        assert_eq!(code, "AccessDenied");
        assert!(message.contains("Incidents Manage"), "{message}");
        assert!(rx.to("/a").is_empty());
        let listed = node
            .call_with(
                &viewer,
                "/custom-action/list",
                json!({"channel_id": channel}),
            )
            .await;
        assert_eq!(listed["data"]["total"], 3, "{listed}");

        // The fourth custom action on one channel is refused and nothing is stored.
        let out = node
            .call(
                "/custom-action/create",
                json!({"name": "D", "endpoint": rx.url("/a"), "channel_ids": [other, channel]}),
            )
            .await;
        let (code, message) = error_of(&out);
        assert_eq!(code, "InvalidParameter");
        assert!(message.contains("limit_exceeded"), "{message}");
        assert!(message.contains(&channel.to_string()), "{message}");
        let all = node.api("/custom-action/list", json!({})).await;
        assert_eq!(all["total"], 3);
        // Binding an existing one to the full channel by an edit is refused too.
        let elsewhere = node
            .api(
                "/custom-action/create",
                json!({"name": "E", "endpoint": rx.url("/a"), "channel_ids": [other]}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        let out = node
            .call(
                "/custom-action/update",
                json!({"integration_id": elsewhere, "channel_ids": [other, channel]}),
            )
            .await;
        assert!(error_of(&out).1.contains("limit_exceeded"), "{out}");
        // Editing one already bound there is no fourth binding.
        node.api(
            "/custom-action/update",
            json!({"integration_id": ids[0], "name": "A2"}),
        )
        .await;

        // Links are counted on their own: three fit beside the three actions, a fourth not.
        for name in ["L1", "L2", "L3"] {
            node.api(
                "/link/create",
                json!({"name": name, "url_template": "https://wiki/?q=${title}",
                       "channel_ids": [channel]}),
            )
            .await;
        }
        let out = node
            .call(
                "/link/create",
                json!({"name": "L4", "url_template": "https://wiki/", "channel_ids": [channel]}),
            )
            .await;
        assert!(error_of(&out).1.contains("limit_exceeded"), "{out}");

        // An action not bound to the incident's channel cannot be run on it.
        let out = node
            .call(
                "/incident/custom-action/do",
                json!({"incident_id": incident_id, "integration_id": elsewhere}),
            )
            .await;
        assert_eq!(error_of(&out).0, "BadRequest", "{out}");
        assert!(rx.to("/a").is_empty());

        // RSP-527: one with a management team is changed only by its creator, the team, the
        // Admin role and the owner; one without a team by anyone holding the point.
        let team = node.api("/team/upsert", json!({"team_name": "dba"})).await["team_id"]
            .as_i64()
            .unwrap();
        node.api(
            "/custom-action/update",
            json!({"integration_id": elsewhere, "team_id": team}),
        )
        .await;
        let out = node
            .call_with(
                &responder,
                "/custom-action/update",
                json!({"integration_id": elsewhere, "name": "mine now"}),
            )
            .await;
        let (code, message) = error_of(&out);
        assert_eq!(code, "AccessDenied", "{out}");
        assert!(message.contains("data permission"), "{message}");
        let out = node
            .call_with(
                &responder,
                "/custom-action/delete",
                json!({"integration_id": elsewhere}),
            )
            .await;
        assert_eq!(error_of(&out).0, "AccessDenied", "{out}");
        let out = node
            .call_with(
                &admin,
                "/custom-action/update",
                json!({"integration_id": elsewhere, "name": "admin may"}),
            )
            .await;
        assert!(out.get("error").is_none(), "{out}");
        let out = node
            .call_with(
                &responder,
                "/custom-action/update",
                json!({"integration_id": ids[1], "name": "B2"}),
            )
            .await;
        assert!(out.get("error").is_none(), "{out}");

        // Bad input names the field and changes nothing.
        for (body, field) in [
            (
                json!({"name": "", "endpoint": rx.url("/a"), "channel_ids": [other]}),
                "name",
            ),
            (
                json!({"name": "x", "endpoint": "ftp://x", "channel_ids": [other]}),
                "endpoint",
            ),
            (
                json!({"name": "x", "endpoint": rx.url("/a"), "channel_ids": []}),
                "channel_ids",
            ),
            (
                json!({"name": "x", "endpoint": rx.url("/a"), "channel_ids": [999]}),
                "channel_ids",
            ),
            (
                json!({"name": "x", "endpoint": rx.url("/a"), "channel_ids": [other],
                       "custom_body": "{not json"}),
                "custom_body",
            ),
        ] {
            let out = node.call("/custom-action/create", body).await;
            let (code, message) = error_of(&out);
            assert_eq!(code, "InvalidParameter", "{out}");
            assert!(message.contains(field), "{field}: {message}");
        }
        for (body, field) in [
            (
                json!({"name": "x", "url_template": "javascript:alert(1)", "channel_ids": [other]}),
                "url_template",
            ),
            (
                json!({"name": "x", "url_template": format!("https://x/{}", "a".repeat(2048)),
                       "channel_ids": [other]}),
                "url_template",
            ),
            (
                json!({"name": "x", "url_template": "https://x/", "open_mode": "window",
                       "channel_ids": [other]}),
                "open_mode",
            ),
        ] {
            let out = node.call("/link/create", body).await;
            let (code, message) = error_of(&out);
            assert_eq!(code, "InvalidParameter", "{out}");
            assert!(message.contains(field), "{field}: {message}");
        }
        assert_eq!(node.api("/custom-action/list", json!({})).await["total"], 4);
        assert_eq!(node.api("/link/list", json!({})).await["total"], 3);
    }
);

on_both_backends!(
    links_are_rendered_on_incident_and_alert_info,
    |url: String| async move {
        // spec: RSP-404 (placeholders filled and percent-encoded; unknown → empty; alert
        // placeholders on alert pages only; open_mode kept)
        let node = Node::start(&url).await;
        let (incident_id, alert_id, channel) = node.alert("web 1").await;
        node.api(
        "/link/create",
        json!({"name": "Dashboards", "open_mode": "popup", "channel_ids": [channel],
               "url_template": "https://grafana.example/d?host=${labels.host}&from=${start_time}&a=${alert_id}&x=${nope}"}),
    )
    .await;
        // Not bound to this channel: not shown.
        let other = node
            .api("/channel/create", json!({"channel_name": "elsewhere"}))
            .await["channel_id"]
            .as_i64()
            .unwrap();
        node.api(
            "/link/create",
            json!({"name": "Other", "url_template": "https://x/", "channel_ids": [other]}),
        )
        .await;
        let info = node
            .api("/incident/info", json!({"incident_id": incident_id}))
            .await;
        let start = info["start_time"].as_i64().unwrap();
        let links = info["links"].as_array().unwrap();
        assert_eq!(links.len(), 1, "{info}");
        assert_eq!(links[0]["name"], "Dashboards");
        assert_eq!(links[0]["open_mode"], "popup");
        assert_eq!(
            links[0]["url"],
            format!("https://grafana.example/d?host=web%201&from={start}&a=&x=")
        );
        let alert = node.api("/alert/info", json!({"alert_id": alert_id})).await;
        assert_eq!(
            alert["links"][0]["url"],
            format!("https://grafana.example/d?host=web%201&from={start}&a={alert_id}&x=")
        );
    }
);

on_both_backends!(
    the_payload_lists_the_newest_hundred_alerts,
    |url: String| async move {
        // spec: RSP-401
        // spec: RSP-373
        let rx = Receiver::start().await;
        let node = Node::start(&url).await;
        let (first_incident, _, channel) = node.alert("seed").await;
        // Alerts of one check are grouped into one incident, one second apart.
        node.api(
            "/channel/update",
            json!({"channel_id": channel, "group": {"method": "p",
                   "equals": [["labels.check"]], "time_window": 60}}),
        )
        .await;
        let push = format!(
            "{}/event/push/alert/standard?integration_key={}",
            node.server.base_url(),
            node.integration_key
        );
        const N: usize = 102;
        for k in 0..N {
            node.clock.0.fetch_add(1_000, Ordering::SeqCst);
            let resp = node
                .http
                .post(&push)
                .json(&json!({"event_status": "Warning", "title_rule": "db slow",
                              "alert_key": format!("db-{k}"), "labels": {"check": "db"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
        }
        let now = node.clock.now() / 1000;
        let mut incident = None;
        for _ in 0..1000 {
            let data = node
                .api(
                    "/incident/list",
                    json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 100}),
                )
                .await;
            incident = data["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["alert_cnt"] == N)
                .map(|i| i["incident_id"].as_str().unwrap().to_string());
            if incident.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let incident = incident.expect("the grouped incident");
        assert_ne!(incident, first_incident);
        let action = node
            .api(
                "/custom-action/create",
                json!({"name": "Dump", "endpoint": rx.url("/dump"), "channel_ids": [channel]}),
            )
            .await;
        node.api(
            "/incident/custom-action/do",
            json!({"incident_id": incident, "integration_id": action["integration_id"]}),
        )
        .await;
        let got = rx.to("/dump");
        assert_eq!(got.len(), 1);
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        assert_eq!(body["event_type"], "i_custom");
        assert_eq!(body["incident"]["alert_cnt"], N);
        let keys: Vec<String> = body["incident"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert_key"].as_str().unwrap().to_string())
            .collect();
        // At most 100, the newest first: db-101 … db-2.
        let expected: Vec<String> = (2..N).rev().map(|k| format!("db-{k}")).collect();
        assert_eq!(keys, expected);
    }
);
