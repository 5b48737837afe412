//! Ticket sync with Jira, ServiceNow and ServiceDesk Plus end to end (response.md 1.23,
//! RSP-403…407; docs/ticket-sync.md): integrations configured over the Open API, incidents
//! changed over the Open API, the sync steps sent by a dispatcher the test drives to fake
//! Jira, ServiceNow and ServiceDesk Plus servers on this machine that record every request
//! and answer like the real APIs (Jira REST API v2, ServiceNow Table API, ServiceDesk Plus
//! v3 API with Zoho accounts), and the inbound push URLs.
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::sdp_fake;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::{ManualClock, test_config, wall_ms};
use klaxon_server::ticket_sync::TicketDispatcher;
use klaxon_server::{Clock, Config, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- a fake ticket system: records requests, answers per "METHOD path" ----

#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Req {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Answers per route, in order: (status, JSON body).
type Answers = HashMap<String, Vec<(u16, String)>>;

#[derive(Clone, Default)]
struct Fake {
    reqs: Arc<Mutex<Vec<Req>>>,
    /// "METHOD /path" → queue of (status, JSON body); the last entry repeats.
    routes: Arc<Mutex<Answers>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl Fake {
    async fn start() -> Fake {
        let f = Fake::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *f.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        let this = f.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let this = this.clone();
                tokio::spawn(async move { this.serve(socket).await });
            }
        });
        f
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr.lock().unwrap().unwrap())
    }

    fn answer(&self, route: &str, status: u16, body: Value) {
        self.routes
            .lock()
            .unwrap()
            .entry(route.to_string())
            .or_default()
            .push((status, body.to_string()));
    }

    fn take(&self) -> Vec<Req> {
        std::mem::take(&mut *self.reqs.lock().unwrap())
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
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
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
        let key = format!("{method} {target}");
        let (status, text) = {
            let mut routes = self.routes.lock().unwrap();
            match routes.get_mut(&key) {
                Some(q) if q.len() > 1 => q.remove(0),
                Some(q) if q.len() == 1 => q[0].clone(),
                _ => (404, r#"{"errorMessages":["not found"]}"#.to_string()),
            }
        };
        self.reqs.lock().unwrap().push(Req {
            method,
            target,
            headers,
            body,
        });
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = socket.write_all(resp.as_bytes()).await;
        let _ = socket.shutdown().await;
    }
}

fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

// ---- a node without delivery workers: the test runs the ticket dispatcher itself ----

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    app_key: String,
    integration_key: String,
    tickets: TicketDispatcher,
    url: String,
    dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path, url: &str) -> Config {
    let mut config: Config = test_config(dir, url);
    config.workers.delivery = false;
    config.workers.timers = false;
    config.notify.allow_private_targets = true;
    config
}

impl Node {
    async fn start(url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config(dir.path(), url), clock.clone())
            .await
            .unwrap();
        let b = server.bootstrap().clone();
        let tickets = TicketDispatcher::new(server.store().clone(), "test-a", true).unwrap();
        Node {
            app_key: b.app_key.clone(),
            integration_key: b.integration_key.clone(),
            server,
            http: reqwest::Client::new(),
            clock,
            tickets,
            url: url.to_string(),
            dir,
        }
    }

    /// Stops this node and starts another on the same data (a restart).
    async fn restart(self) -> Node {
        let Node {
            server,
            clock,
            app_key,
            integration_key,
            url,
            dir,
            ..
        } = self;
        server.shutdown().await;
        let server = klaxon_server::start_with_clock(config(dir.path(), &url), clock.clone())
            .await
            .unwrap();
        let tickets = TicketDispatcher::new(server.store().clone(), "test-b", true).unwrap();
        Node {
            server,
            http: reqwest::Client::new(),
            clock,
            app_key,
            integration_key,
            tickets,
            url,
            dir,
        }
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!(
                "{}{path}?app_key={}",
                self.server.base_url(),
                self.app_key
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn api(&self, path: &str, body: Value) -> Value {
        let out = self.call(path, body).await;
        assert!(out.get("error").is_none(), "{path}: {out}");
        out["data"].clone()
    }

    async fn drain(&self) -> klaxon_server::ticket_sync::TicketRound {
        self.tickets.drain(self.clock.now()).await.unwrap()
    }

    fn advance(&self, ms: i64) {
        self.clock
            .0
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Pushes one alert; returns (incident id, channel id).
    async fn alert(&self, key: &str, severity: &str) -> (String, i64) {
        let push = format!(
            "{}/event/push/alert/standard?integration_key={}",
            self.server.base_url(),
            self.integration_key
        );
        let resp = self
            .http
            .post(push)
            .json(
                &json!({"event_status": severity, "title_rule": format!("{key} down"),
                          "description": "disk full", "alert_key": key, "labels": {"host": key}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let now = self.clock.now() / 1000;
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
                    a["channel_id"].as_i64().unwrap(),
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no alert for {key}");
    }

    /// Pushes one alert event with these labels (a second event of the same key replaces
    /// the alert's labels, and its incident's labels follow, RSP-005).
    async fn alert_with(&self, key: &str, severity: &str, labels: Value) {
        let push = format!(
            "{}/event/push/alert/standard?integration_key={}",
            self.server.base_url(),
            self.integration_key
        );
        let resp = self
            .http
            .post(push)
            .json(
                &json!({"event_status": severity, "title_rule": format!("{key} down"),
                          "description": "disk full", "alert_key": key, "labels": labels}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }

    /// Waits until the incident's labels are `labels`.
    async fn until_labels(&self, id: &str, labels: &Value) {
        for _ in 0..500 {
            if self.incident(id).await["labels"] == *labels {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("labels of {id} never became {labels}");
    }

    async fn incident(&self, id: &str) -> Value {
        self.api("/incident/info", json!({"incident_id": id})).await
    }

    async fn log(&self, integration_id: i64) -> Vec<Value> {
        self.api(
            "/ticket-sync/log/list",
            json!({"integration_id": integration_id, "limit": 100}),
        )
        .await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn push(&self, push_url: &str, body: Value) -> (u16, Value) {
        let resp = self.http.post(push_url).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn error_of(out: &Value) -> (String, String) {
    (
        out["error"]["code"].as_str().unwrap_or("").to_string(),
        out["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

fn jira_answers(jira: &Fake) {
    jira.answer(
        "POST /rest/api/2/issue",
        201,
        json!({"id": "10001", "key": "OPS-7", "self": format!("{}/rest/api/2/issue/10001", jira.url())}),
    );
    jira.answer(
        "GET /rest/api/2/issue/OPS-7/transitions",
        200,
        json!({"expand": "transitions", "transitions": [
            {"id": "11", "name": "Back to do", "to": {"id": "1", "name": "To Do"}},
            {"id": "21", "name": "Start work", "to": {"id": "3", "name": "In Progress"}},
            {"id": "31", "name": "Finish", "to": {"id": "10001", "name": "Done"}}
        ]}),
    );
    jira.answer("POST /rest/api/2/issue/OPS-7/transitions", 204, json!(null));
    jira.answer("PUT /rest/api/2/issue/OPS-7", 204, json!(null));
    jira.answer(
        "POST /rest/api/2/issue/OPS-7/comment",
        201,
        json!({"id": "100", "body": "ok"}),
    );
}

on_both_backends!(
    jira_issue_is_created_and_follows_the_incident,
    |url: String| async move {
        // spec: RSP-405 (setup, auto trigger, create fields, key and URL stored, later updates:
        // severity → priority, progress → status, comments unless mute_reply; title changes
        // are not synced), RSP-080 (mute_reply)
        let jira = Fake::start().await;
        jira_answers(&jira);
        let node = Node::start(&url).await;
        // A first alert shows the default channel.
        let (_, channel) = node.alert("web1", "Warning").await;
        let t = node
            .api(
                "/ticket-sync/create",
                json!({"system": "jira", "name": "Ops Jira", "channel_ids": [channel],
                       "platform": "cloud", "base_url": format!("{}/", jira.url()),
                       "username": "ops@example.com", "secret": "api-token-1",
                       "project_key": "OPS", "issue_type": "Bug", "trigger": "auto",
                       "filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
                       "severity_mapping": {"Critical": "Highest", "Warning": "High"},
                       "field_mapping": [{"source": "labels.host", "target_field": "customfield_10010"},
                                         {"source": "labels.absent", "target_field": "customfield_10011"}]}),
            )
            .await;
        let id = t["integration_id"].as_i64().unwrap();
        assert_eq!(t["secret_set"], json!(true));
        assert!(t.get("secret").is_none(), "the token is write-only: {t}");
        assert_eq!(t["base_url"], json!(jira.url()));
        assert!(t.get("push_url").is_none());

        // The Warning incident does not pass the filter; the Critical one does.
        let (inc, _) = node.alert("db1", "Critical").await;
        let round = node.drain().await;
        assert_eq!(round.succeeded, 1, "{round:?}");
        let reqs = jira.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        let r = &reqs[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/rest/api/2/issue");
        assert_eq!(
            r.headers["authorization"],
            basic("ops@example.com", "api-token-1")
        );
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(
            r.json(),
            json!({"fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Bug"},
                   "summary": "db1 down", "description": "disk full",
                   "priority": {"name": "Highest"}, "customfield_10010": "db1"}})
        );
        let info = node.incident(&inc).await;
        assert_eq!(
            info["tickets"],
            json!([{"integration_id": id, "system": "jira", "external_key": "OPS-7",
                    "external_url": format!("{}/browse/OPS-7", jira.url())}])
        );
        // Auto integrations are not "More actions" entries.
        assert_eq!(info["ticket_syncs"], json!([]));

        // Acknowledge → In Progress: the transitions are listed, the one to In Progress taken.
        node.api("/incident/ack", json!({"incident_ids": [inc]}))
            .await;
        node.drain().await;
        let reqs = jira.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].target.as_str()),
            ("GET", "/rest/api/2/issue/OPS-7/transitions")
        );
        assert_eq!(
            (reqs[1].method.as_str(), reqs[1].target.as_str()),
            ("POST", "/rest/api/2/issue/OPS-7/transitions")
        );
        assert_eq!(reqs[1].json(), json!({"transition": {"id": "21"}}));
        assert_eq!(
            reqs[1].headers["authorization"],
            basic("ops@example.com", "api-token-1")
        );

        // Severity → priority; a title edit is not synced.
        node.api(
            "/incident/reset",
            json!({"incident_id": inc, "incident_severity": "Warning", "title": "renamed"}),
        )
        .await;
        node.drain().await;
        let reqs = jira.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].target.as_str()),
            ("PUT", "/rest/api/2/issue/OPS-7")
        );
        assert_eq!(
            reqs[0].json(),
            json!({"fields": {"priority": {"name": "High"}}})
        );

        // Comments, except muted ones.
        node.api(
            "/incident/comment",
            json!({"incident_id": inc, "comment": "rolling back", "mute_reply": false}),
        )
        .await;
        node.api(
            "/incident/comment",
            json!({"incident_id": inc, "comment": "internal only", "mute_reply": true}),
        )
        .await;
        node.drain().await;
        let reqs = jira.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].target, "/rest/api/2/issue/OPS-7/comment");
        assert_eq!(reqs[0].json(), json!({"body": "rolling back"}));

        // Close → Done.
        node.api("/incident/resolve", json!({"incident_ids": [inc]}))
            .await;
        node.drain().await;
        let reqs = jira.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(reqs[1].json(), json!({"transition": {"id": "31"}}));

        // The sync log lists every step, newest first.
        let log = node.log(id).await;
        let ops: Vec<(&str, &str)> = log
            .iter()
            .map(|l| (l["op"].as_str().unwrap(), l["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            ops,
            vec![
                ("status", "success"),
                ("comment", "success"),
                ("priority", "success"),
                ("status", "success"),
                ("create", "success"),
            ]
        );
        assert_eq!(log[4]["external_key"], json!("OPS-7"));
        assert_eq!(log[4]["incident_id"], json!(inc));
    }
);

on_both_backends!(
    a_failed_create_is_logged_and_leaves_the_incident_unchanged,
    |url: String| async move {
        // spec: RSP-405 (a failed create shows in the sync log and leaves the incident
        // unchanged; manual trigger as a "More actions" entry), RSP-022 (manual sync on a
        // Closed incident)
        let jira = Fake::start().await;
        jira.answer(
            "POST /rest/api/2/issue",
            400,
            json!({"errorMessages": [], "errors": {"customfield_10050": "Team is required."}}),
        );
        let node = Node::start(&url).await;
        let (inc, channel) = node.alert("db1", "Critical").await;
        let t = node
            .api(
                "/ticket-sync/create",
                json!({"system": "jira", "name": "Server Jira", "channel_ids": [channel],
                       "platform": "server", "base_url": jira.url(), "username": "klaxon",
                       "secret": "pw", "project_key": "OPS", "issue_type": "Task"}),
            )
            .await;
        let id = t["integration_id"].as_i64().unwrap();
        assert_eq!(t["trigger"], json!("manual"));
        let before = node.incident(&inc).await;
        assert_eq!(
            before["ticket_syncs"],
            json!([{"integration_id": id, "name": "Server Jira", "system": "jira"}])
        );
        node.api("/incident/resolve", json!({"incident_ids": [inc]}))
            .await;
        let closed = node.incident(&inc).await;
        let feed_before = node
            .api("/incident/feed", json!({"incident_id": inc, "limit": 100}))
            .await;

        node.api(
            "/incident/ticket-sync/do",
            json!({"incident_id": inc, "integration_id": id}),
        )
        .await;
        // A second start while one is queued is refused.
        let out = node
            .call(
                "/incident/ticket-sync/do",
                json!({"incident_id": inc, "integration_id": id}),
            )
            .await;
        assert_eq!(error_of(&out).0, "BadRequest", "{out}");
        let round = node.drain().await;
        assert_eq!(round.failed, 1, "{round:?}");
        let reqs = jira.take();
        assert_eq!(reqs.len(), 1);
        // Server / Data Center: username and password.
        assert_eq!(reqs[0].headers["authorization"], basic("klaxon", "pw"));
        assert!(reqs[0].json()["fields"].get("priority").is_none());

        let log = node.log(id).await;
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["status"], json!("failed"));
        assert_eq!(log[0]["response_status"], json!(400));
        let error = log[0]["error"].as_str().unwrap();
        assert!(error.contains("Team is required."), "{error}");
        // The incident is as it was: no ticket, no new timeline entry.
        let after = node.incident(&inc).await;
        assert_eq!(after["tickets"], json!([]));
        assert_eq!(after["updated_at"], closed["updated_at"]);
        let feed_after = node
            .api("/incident/feed", json!({"incident_id": inc, "limit": 100}))
            .await;
        assert_eq!(feed_after["items"], feed_before["items"]);
        // It may be started again.
        node.api(
            "/incident/ticket-sync/do",
            json!({"incident_id": inc, "integration_id": id}),
        )
        .await;
    }
);

on_both_backends!(
    a_transient_failure_is_retried_after_a_restart,
    |url: String| async move {
        // spec: RSP-405 (sync survives restarts: steps are rows, retried as rows)
        let jira = Fake::start().await;
        jira.answer(
            "POST /rest/api/2/issue",
            503,
            json!({"errorMessages": ["busy"]}),
        );
        jira.answer(
            "POST /rest/api/2/issue",
            201,
            json!({"id": "10002", "key": "OPS-8"}),
        );
        let node = Node::start(&url).await;
        let (inc, channel) = node.alert("db1", "Critical").await;
        let id = node
            .api(
                "/ticket-sync/create",
                json!({"system": "jira", "name": "J", "channel_ids": [channel],
                       "base_url": jira.url(), "username": "a@example.com", "secret": "t",
                       "project_key": "OPS", "issue_type": "Bug"}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        node.api(
            "/incident/ticket-sync/do",
            json!({"incident_id": inc, "integration_id": id}),
        )
        .await;
        let round = node.drain().await;
        assert_eq!(round.retried, 1, "{round:?}");
        assert_eq!(node.log(id).await[0]["status"], json!("queued"));
        // Nothing is due until the back-off has passed, whatever node looks.
        let node = node.restart().await;
        assert_eq!(node.drain().await.claimed, 0);
        node.advance(60_000);
        let round = node.drain().await;
        assert_eq!(round.succeeded, 1, "{round:?}");
        assert_eq!(jira.take().len(), 2);
        let log = node.log(id).await;
        assert_eq!(log[0]["status"], json!("success"));
        assert_eq!(log[0]["attempts"], json!(2));
        assert_eq!(
            node.incident(&inc).await["tickets"][0]["external_key"],
            json!("OPS-8")
        );
    }
);

on_both_backends!(
    servicenow_incidents_sync_both_ways,
    |url: String| async move {
        // spec: RSP-406 (two-way: outbound create/state/urgency/comments through the Table
        // API; inbound insert creates an incident in the channel, update applies mapped
        // changes: urgency only when it changes, On Hold snoozes 120 minutes when Processing,
        // Resolved closes with from = console and closer 0; empty values never overwrite)
        let snow = Fake::start().await;
        snow.answer(
            "POST /api/now/table/incident",
            201,
            json!({"result": {"sys_id": "5e1f", "number": "INC0010002", "state": "1"}}),
        );
        snow.answer(
            "PATCH /api/now/table/incident/5e1f",
            200,
            json!({"result": {}}),
        );
        snow.answer(
            "PATCH /api/now/table/incident/a9b8",
            200,
            json!({"result": {}}),
        );
        let node = Node::start(&url).await;
        let (inc, channel) = node.alert("db1", "Critical").await;
        let t = node
            .api(
                "/ticket-sync/create",
                json!({"system": "servicenow", "name": "SNOW", "channel_ids": [channel],
                       "direction": "two_way", "base_url": snow.url(), "username": "klaxon",
                       "secret": "s3cret",
                       "field_mapping": [{"source": "labels.host", "target_field": "u_host"}]}),
            )
            .await;
        let id = t["integration_id"].as_i64().unwrap();
        let push_url = t["push_url"].as_str().unwrap().to_string();

        // Outbound: create, then a comment.
        node.api(
            "/incident/ticket-sync/do",
            json!({"incident_id": inc, "integration_id": id}),
        )
        .await;
        node.drain().await;
        let reqs = snow.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].target.as_str()),
            ("POST", "/api/now/table/incident")
        );
        assert_eq!(reqs[0].headers["authorization"], basic("klaxon", "s3cret"));
        assert_eq!(
            reqs[0].json(),
            json!({"short_description": "db1 down", "description": "disk full",
                   "urgency": "1", "u_host": "db1"})
        );
        assert_eq!(
            node.incident(&inc).await["tickets"][0],
            json!({"integration_id": id, "system": "servicenow", "external_key": "INC0010002",
                   "external_url": format!("{}/nav_to.do?uri=incident.do?sys_id=5e1f", snow.url())})
        );
        node.api(
            "/incident/comment",
            json!({"incident_id": inc, "comment": "looking"}),
        )
        .await;
        node.drain().await;
        let reqs = snow.take();
        assert_eq!(reqs[0].method, "PATCH");
        assert_eq!(reqs[0].target, "/api/now/table/incident/5e1f");
        assert_eq!(reqs[0].json(), json!({"comments": "looking"}));

        // Inbound: a bad key, an unknown record.
        let (status, _) = node
            .push(
                &format!(
                    "{}/ticket-sync/servicenow/push?integration_key=nope",
                    node.server.base_url()
                ),
                json!({"action_type": "insert", "sys_id": "x"}),
            )
            .await;
        assert_eq!(status, 401);
        let (status, _) = node
            .push(
                &push_url,
                json!({"action_type": "update", "sys_id": "nothing"}),
            )
            .await;
        assert_eq!(status, 404);

        // Inbound insert: a new incident in the channel, linked; nothing goes back out.
        let record = json!({"action_type": "insert", "number": "INC0010003", "sys_id": "a9b8",
                            "short_description": "Printer on fire", "description": "3rd floor",
                            "state": "New", "impact": "2 - Medium", "urgency": "2 - Medium",
                            "comments": ""});
        let (status, out) = node.push(&push_url, record.clone()).await;
        assert_eq!(status, 200, "{out}");
        let created = out["data"]["incident_id"].as_str().unwrap().to_string();
        let info = node.incident(&created).await;
        assert_eq!(info["title"], json!("Printer on fire"));
        assert_eq!(info["description"], json!("3rd floor"));
        assert_eq!(info["incident_severity"], json!("Warning"));
        assert_eq!(info["channel_id"], json!(channel));
        assert_eq!(info["tickets"][0]["external_key"], json!("INC0010003"));
        node.drain().await;
        assert!(snow.take().is_empty());

        // On Hold while Triggered is ignored.
        let mut update = record.clone();
        update["action_type"] = json!("update");
        update["state"] = json!("On Hold");
        update["short_description"] = json!("");
        node.push(&push_url, update.clone()).await;
        let info = node.incident(&created).await;
        assert_eq!(info["progress"], json!("Triggered"));
        assert_eq!(
            info["title"],
            json!("Printer on fire"),
            "empty never overwrites"
        );

        // Acknowledged here → In Progress there; then On Hold snoozes for 120 minutes.
        node.api("/incident/ack", json!({"incident_ids": [created]}))
            .await;
        node.drain().await;
        let reqs = snow.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].target, "/api/now/table/incident/a9b8");
        assert_eq!(reqs[0].json(), json!({"state": "2"}));
        let now = node.clock.now();
        node.push(&push_url, update.clone()).await;
        let info = node.incident(&created).await;
        assert_eq!(info["progress"], json!("Processing"));
        assert_eq!(info["snoozed_before"], json!((now + 120 * 60_000) / 1000));

        // Urgency change → severity; a new comment is added once; nothing echoes back.
        update["state"] = json!("In Progress");
        update["urgency"] = json!("1 - High");
        update["comments"] = json!("vendor called");
        node.push(&push_url, update.clone()).await;
        node.push(&push_url, update.clone()).await;
        let info = node.incident(&created).await;
        assert_eq!(info["incident_severity"], json!("Critical"));
        let feed = node
            .api(
                "/incident/feed",
                json!({"incident_id": created, "limit": 100}),
            )
            .await;
        let comments: Vec<&Value> = feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "i_comm")
            .collect();
        assert_eq!(comments.len(), 1, "{feed}");
        node.drain().await;
        assert!(
            snow.take().is_empty(),
            "changes from ServiceNow are not sent back"
        );

        // An unchanged urgency does not override a severity set here.
        node.api(
            "/incident/reset",
            json!({"incident_id": created, "incident_severity": "Info"}),
        )
        .await;
        node.drain().await;
        let reqs = snow.take();
        assert_eq!(reqs[0].json(), json!({"urgency": "3"}));
        node.push(&push_url, update.clone()).await;
        assert_eq!(
            node.incident(&created).await["incident_severity"],
            json!("Info")
        );

        // Resolved → closed by the system from the console.
        update["state"] = json!("Resolved");
        let (status, _) = node.push(&push_url, update.clone()).await;
        assert_eq!(status, 200);
        let info = node.incident(&created).await;
        assert_eq!(info["progress"], json!("Closed"));
        assert_eq!(info["closer_id"], json!(0));
        node.drain().await;
        assert!(snow.take().is_empty());

        // New on a Closed incident reopens it.
        update["state"] = json!("New");
        node.push(&push_url, update).await;
        assert_eq!(
            node.incident(&created).await["progress"],
            json!("Triggered")
        );
    }
);

on_both_backends!(
    configuration_is_validated_and_permission_checked,
    |url: String| async move {
        // spec: RSP-403 (Integrations Manage and the data permission), RSP-405 (Jira is one
        // way; one channel), RSP-406 (directions)
        let node = Node::start(&url).await;
        let (_, channel) = node.alert("db1", "Critical").await;
        let base = json!({"system": "jira", "name": "J", "channel_ids": [channel],
                          "base_url": "https://acme.atlassian.net", "username": "a@b.c",
                          "secret": "t", "project_key": "OPS", "issue_type": "Bug"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        for (body, field) in [
            (with("direction", json!("two_way")), "direction"),
            (with("system", json!("zendesk")), "system"),
            (with("channel_ids", json!([])), "channel_ids"),
            (with("channel_ids", json!([999_999])), "channel_ids"),
            (with("secret", json!("")), "secret"),
            (with("project_key", json!("")), "project_key"),
            (with("base_url", json!("ftp://x")), "base_url"),
            (with("platform", json!("cloudy")), "platform"),
            (with("trigger", json!("sometimes")), "trigger"),
            (
                with("severity_mapping", json!({"Urgent": "P1"})),
                "severity_mapping",
            ),
            (
                with(
                    "field_mapping",
                    json!([{"source": "title", "target_field": "x"}]),
                ),
                "field_mapping[0].source",
            ),
            (
                with(
                    "filters",
                    json!([[{"key": "nope", "oper": "IN", "vals": ["x"]}]]),
                ),
                "filters",
            ),
            (with("name", json!("x".repeat(40))), "name"),
        ] {
            let out = node.call("/ticket-sync/create", body).await;
            let (code, message) = error_of(&out);
            assert_eq!(code, "InvalidParameter", "{field}: {out}");
            assert!(message.contains(field), "{field}: {message}");
        }
        assert_eq!(
            node.api("/ticket-sync/list", json!({})).await["total"],
            json!(0)
        );
        let t = node.api("/ticket-sync/create", base.clone()).await;
        let id = t["integration_id"].as_i64().unwrap();
        // An update without a secret keeps the stored one.
        let u = node
            .api(
                "/ticket-sync/update",
                json!({"integration_id": id, "name": "Renamed"}),
            )
            .await;
        assert_eq!(u["name"], json!("Renamed"));
        assert_eq!(u["secret_set"], json!(true));

        // A Viewer (role 8) reads but may not change.
        let data = node
            .api(
                "/member/invite",
                json!({"members": [{"email": "viewer@example.com", "role_ids": [8]}]}),
            )
            .await;
        let member = data["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("k{member}"));
        let account = node.server.bootstrap().account_id;
        node.server
            .store()
            .add_app_key(account, member, "test", &key, node.clock.now())
            .await
            .unwrap()
            .unwrap();
        let as_viewer = |path: &str, body: Value| {
            let http = node.http.clone();
            let url = format!("{}{path}?app_key={key}", node.server.base_url());
            async move {
                http.post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let out = as_viewer("/ticket-sync/delete", json!({"integration_id": id})).await;
        assert_eq!(error_of(&out).0, "AccessDenied", "{out}");
        let out = as_viewer("/ticket-sync/info", json!({"integration_id": id})).await;
        assert_eq!(out["data"]["name"], json!("Renamed"), "{out}");

        node.api("/ticket-sync/delete", json!({"integration_id": id}))
            .await;
        let out = node
            .call("/ticket-sync/info", json!({"integration_id": id}))
            .await;
        assert_eq!(error_of(&out).0, "ResourceNotFound");
    }
);

on_both_backends!(
    a_manual_sync_is_started_from_the_incident_page,
    |url: String| async move {
        // spec: RSP-405 (manual: a "More actions" entry named after the integration; the
        // issue key and URL are shown on the incident)
        let jira = Fake::start().await;
        jira.answer(
            "POST /rest/api/2/issue",
            201,
            json!({"id": "10001", "key": "OPS-9"}),
        );
        let node = Node::start(&url).await;
        let (inc, channel) = node.alert("db1", "Critical").await;
        let id = node
            .api(
                "/ticket-sync/create",
                json!({"system": "jira", "name": "Ops Jira", "channel_ids": [channel],
                       "base_url": jira.url(), "username": "a@example.com", "secret": "t",
                       "project_key": "OPS", "issue_type": "Bug"}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        let (cookie, csrf) = common::console_session(&node.server).await;
        let page = format!("{}/incident/detail/{inc}", node.server.base_url());
        let html = node
            .http
            .get(&page)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("aria-label=\"Ticket syncs\""), "{html}");
        assert!(html.contains(">Ops Jira</button>"), "{html}");
        assert!(!html.contains("<h2>Tickets</h2>"));

        // Without the CSRF token nothing is queued.
        let resp = node
            .http
            .post(format!("{page}/ticket-sync"))
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("integration_id={id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        assert!(node.log(id).await.is_empty());

        let resp = node
            .http
            .post(format!("{page}/ticket-sync"))
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .header("x-klaxon-csrf", &csrf)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("integration_id={id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.text().await.unwrap();
        assert!(body.contains("Ticket sync Ops Jira queued."), "{body}");
        // A second press while it is queued shows the refusal.
        let resp = node
            .http
            .post(format!("{page}/ticket-sync"))
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .header("x-klaxon-csrf", &csrf)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("integration_id={id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);

        let round = node.drain().await;
        assert_eq!(round.succeeded, 1, "{round:?}");
        assert_eq!(jira.take().len(), 1);
        let html = node
            .http
            .get(&page)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("<h2>Tickets</h2>"), "{html}");
        assert!(html.contains(">OPS-9</a>"), "{html}");
        // Linked: the manual entry is no longer offered.
        assert!(!html.contains(">Ops Jira</button>"), "{html}");
    }
);

on_both_backends!(
    a_label_change_rechecks_the_auto_trigger,
    |url: String| async move {
        // spec: RSP-405 (auto: the filter is evaluated again after a label change, until an
        // issue is linked)
        let jira = Fake::start().await;
        jira_answers(&jira);
        let node = Node::start(&url).await;
        let (inc, channel) = node.alert("db1", "Critical").await;
        let t = node
            .api(
                "/ticket-sync/create",
                json!({"system": "jira", "name": "Tier one", "channel_ids": [channel],
                       "base_url": jira.url(), "username": "a@example.com", "secret": "t",
                       "project_key": "OPS", "issue_type": "Bug", "trigger": "auto",
                       "filters": [[{"key": "labels.tier", "oper": "IN", "vals": ["1"]}]]}),
            )
            .await;
        let id = t["integration_id"].as_i64().unwrap();
        // Same alert, new labels: the incident's labels follow, the filter now holds.
        node.alert_with("db1", "Critical", json!({"host": "db1", "tier": "2"}))
            .await;
        node.until_labels(&inc, &json!({"host": "db1", "tier": "2"}))
            .await;
        node.drain().await;
        assert!(jira.take().is_empty(), "tier 2 does not match");
        node.alert_with("db1", "Critical", json!({"host": "db1", "tier": "1"}))
            .await;
        node.until_labels(&inc, &json!({"host": "db1", "tier": "1"}))
            .await;
        let round = node.drain().await;
        assert_eq!(round.succeeded, 1, "{round:?}");
        let reqs = jira.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].target, "/rest/api/2/issue");
        assert_eq!(node.log(id).await[0]["op"], json!("create"));
        // Linked: later label changes ask for nothing (labels are not synced).
        node.alert_with(
            "db1",
            "Critical",
            json!({"host": "db1", "tier": "1", "x": "y"}),
        )
        .await;
        node.until_labels(&inc, &json!({"host": "db1", "tier": "1", "x": "y"}))
            .await;
        node.drain().await;
        assert!(jira.take().is_empty());
        assert_eq!(node.log(id).await.len(), 1);
    }
);

on_both_backends!(
    servicenow_inbound_records_set_mapped_custom_fields,
    |url: String| async move {
        // spec: RSP-406 (other fields → custom fields, text fields only; an empty value
        // never overwrites)
        let node = Node::start(&url).await;
        let (_, channel) = node.alert("db1", "Critical").await;
        node.api(
            "/field/create",
            json!({"field_name": "owner", "display_name": "Owner", "field_type": "text"}),
        )
        .await;
        node.api(
            "/field/create",
            json!({"field_name": "zone", "display_name": "Zone",
                   "field_type": "single_select", "options": ["eu", "us"]}),
        )
        .await;
        let t = node
            .api(
                "/ticket-sync/create",
                json!({"system": "servicenow", "name": "SNOW", "channel_ids": [channel],
                       "direction": "from", "base_url": "https://acme.service-now.com",
                       "username": "klaxon", "secret": "s",
                       "field_mapping": [{"source": "fields.owner", "target_field": "u_owner"},
                                         {"source": "fields.zone", "target_field": "u_zone"},
                                         {"source": "labels.host", "target_field": "u_host"}]}),
            )
            .await;
        let push_url = t["push_url"].as_str().unwrap().to_string();
        let record = json!({"action_type": "insert", "number": "INC1", "sys_id": "s1",
                            "short_description": "VPN down", "state": "New",
                            "urgency": "2 - Medium", "u_owner": "ann", "u_zone": "eu",
                            "u_host": "vpn1"});
        let (status, out) = node.push(&push_url, record.clone()).await;
        assert_eq!(status, 200, "{out}");
        let created = out["data"]["incident_id"].as_str().unwrap().to_string();
        let info = node.incident(&created).await;
        // Only the text field is set; labels are never written from outside.
        assert_eq!(info["fields"], json!({"owner": "ann"}), "{info}");
        assert_eq!(info["labels"], json!({}));
        let mut update = record.clone();
        update["action_type"] = json!("update");
        update["u_owner"] = json!("bob");
        node.push(&push_url, update.clone()).await;
        assert_eq!(
            node.incident(&created).await["fields"]["owner"],
            json!("bob")
        );
        update["u_owner"] = json!("");
        node.push(&push_url, update).await;
        assert_eq!(
            node.incident(&created).await["fields"]["owner"],
            json!("bob"),
            "empty never overwrites"
        );
    }
);

on_both_backends!(
    servicedeskplus_on_premises_requests_follow_the_incident,
    |url: String| async move {
        // spec: RSP-407 (on-premises with an API key, the v3 API; request template and
        // requester; priority from the severity; assignee group from a label, an unknown one
        // fails the sync; status and notes follow), RSP-405 (later updates)
        use sdp_fake::{ACCEPT, API_KEY, FakeSdp};
        let sdp = FakeSdp::start().await;
        let node = Node::start(&url).await;
        let (_, channel) = node.alert("web0", "Info").await;
        let t = node
            .api(
                "/ticket-sync/create",
                json!({"system": "servicedeskplus", "name": "Service desk",
                       "channel_ids": [channel], "platform": "onprem", "base_url": sdp.url,
                       "secret": API_KEY, "trigger": "auto",
                       "filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
                       "template": "Incident Template", "requester": "ops@example.com",
                       "severity_mapping": {"Critical": "Urgent"},
                       "assignee_label": "host", "assignee_kind": "group",
                       "assignee_mapping": {"db1": "Database Team", "db2": "Nobody Here"},
                       "field_mapping": [{"source": "labels.host", "target_field": "udf_sline_301"}]}),
            )
            .await;
        let id = t["integration_id"].as_i64().unwrap();
        assert_eq!(t["secret_set"], json!(true));
        assert!(t.get("secret").is_none(), "{t}");
        assert_eq!(t["platform"], json!("onprem"));
        assert_eq!(t["assignee_kind"], json!("group"));

        let (inc, _) = node.alert("db1", "Critical").await;
        let round = node.drain().await;
        assert_eq!(round.succeeded, 1, "{round:?}");
        let calls = sdp.take();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].auth, API_KEY);
        assert_eq!(
            calls[0].input,
            json!({"request": {"subject": "db1 down", "description": "disk full",
                   "template": {"name": "Incident Template"},
                   "requester": {"email_id": "ops@example.com"},
                   "priority": {"name": "Urgent"}, "group": {"name": "Database Team"},
                   "udf_fields": {"udf_sline_301": "db1"}}})
        );
        let info = node.incident(&inc).await;
        assert_eq!(
            info["tickets"],
            json!([{"integration_id": id, "system": "servicedeskplus", "external_key": "1",
                    "external_url": format!("{}/WorkOrder.do?woMode=viewWO&woID=1001", sdp.url)}])
        );
        assert_eq!(ACCEPT, "application/vnd.manageengine.sdp.v3+json");

        // Acknowledge → In Progress; a comment → a private note; severity → priority; close →
        // Resolved with a resolution.
        node.api("/incident/ack", json!({"incident_ids": [inc]}))
            .await;
        node.api(
            "/incident/comment",
            json!({"incident_id": inc, "comment": "on it"}),
        )
        .await;
        node.api(
            "/incident/reset",
            json!({"incident_id": inc, "incident_severity": "Warning"}),
        )
        .await;
        node.api("/incident/resolve", json!({"incident_ids": [inc]}))
            .await;
        let round = node.drain().await;
        assert_eq!(round.succeeded, 4, "{round:?}");
        let calls = sdp.take();
        let seen: Vec<(String, String, Value)> = calls
            .iter()
            .map(|c| (c.method.clone(), c.path.clone(), c.input.clone()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    "PUT".into(),
                    "/api/v3/requests/1001".into(),
                    json!({"request": {"status": {"name": "In Progress"}}})
                ),
                (
                    "POST".into(),
                    "/api/v3/requests/1001/notes".into(),
                    json!({"request_note": {"description": "on it", "show_to_requester": false,
                        "notify_technician": false, "mark_first_response": false,
                        "add_to_linked_requests": false}})
                ),
                (
                    "PUT".into(),
                    "/api/v3/requests/1001".into(),
                    json!({"request": {"priority": {"name": "Medium"}}})
                ),
                (
                    "PUT".into(),
                    "/api/v3/requests/1001".into(),
                    json!({"request": {"status": {"name": "Resolved"},
                        "resolution": {"content": "Resolved in Klaxon"}}})
                ),
            ]
        );
        assert_eq!(sdp.request("1001")["status"]["name"], json!("Resolved"));

        // An assignee the mapping does not know fails the sync without a request.
        let (other, _) = node.alert("db9", "Critical").await;
        let round = node.drain().await;
        assert_eq!(round.failed, 1, "{round:?}");
        assert!(sdp.take().is_empty());
        let log = node.log(id).await;
        let failed = log
            .iter()
            .find(|l| l["incident_id"] == json!(other))
            .unwrap();
        assert_eq!(failed["status"], json!("failed"));
        assert!(
            failed["error"]
                .as_str()
                .unwrap()
                .contains("unknown assignee: label host=db9"),
            "{failed}"
        );
        assert_eq!(node.incident(&other).await["tickets"], json!([]));
        // One ServiceDesk Plus does not know: its refusal fails the sync, named in the log.
        let (third, _) = node.alert("db2", "Critical").await;
        let round = node.drain().await;
        assert_eq!(round.failed, 1, "{round:?}");
        assert_eq!(sdp.take().len(), 1);
        let log = node.log(id).await;
        let failed = log
            .iter()
            .find(|l| l["incident_id"] == json!(third))
            .unwrap();
        assert_eq!(failed["response_status"], json!(400));
        assert!(
            failed["error"].as_str().unwrap().contains("Nobody Here"),
            "{failed}"
        );
    }
);

on_both_backends!(
    servicedeskplus_cloud_exchanges_the_code_and_refreshes_its_token,
    |url: String| async move {
        // spec: RSP-407 (cloud: OAuth with a one-time code valid 10 minutes, exchanged for
        // tokens; the access token is refreshed; a refused code saves nothing)
        use sdp_fake::{CLIENT_ID, CLIENT_SECRET, CODE, FakeSdp};
        let sdp = FakeSdp::start().await;
        let node = Node::start(&url).await;
        let (inc, channel) = node.alert("db1", "Critical").await;
        let base = json!({"system": "servicedeskplus", "name": "SDP cloud",
                          "channel_ids": [channel], "platform": "cloud", "base_url": sdp.url,
                          "auth_url": sdp.url, "client_id": CLIENT_ID,
                          "secret": CLIENT_SECRET});
        // No code, then a wrong one: refused, nothing saved.
        let out = node.call("/ticket-sync/create", base.clone()).await;
        assert!(
            error_of(&out).1.starts_with("oauth_code: required"),
            "{out}"
        );
        let mut wrong = base.clone();
        wrong["oauth_code"] = json!("1000.stale");
        let out = node.call("/ticket-sync/create", wrong).await;
        assert!(error_of(&out).1.contains("valid for 10 minutes"), "{out}");
        assert_eq!(
            node.api("/ticket-sync/list", json!({})).await["total"],
            json!(0)
        );

        let mut good = base.clone();
        good["oauth_code"] = json!(CODE);
        let t = node.api("/ticket-sync/create", good).await;
        let id = t["integration_id"].as_i64().unwrap();
        assert_eq!(sdp.grants(), vec!["authorization_code"; 2]);
        assert!(
            t.get("secret").is_none() && t.get("access_token").is_none(),
            "{t}"
        );
        // The code was used: sending it again is refused and changes nothing.
        let out = node
            .call(
                "/ticket-sync/update",
                json!({"integration_id": id, "oauth_code": CODE, "name": "Renamed"}),
            )
            .await;
        assert!(error_of(&out).1.starts_with("oauth_code:"), "{out}");
        assert_eq!(
            node.api("/ticket-sync/info", json!({"integration_id": id}))
                .await["name"],
            json!("SDP cloud")
        );
        // An edit without a code keeps the tokens.
        node.api(
            "/ticket-sync/update",
            json!({"integration_id": id, "template": "Default Request"}),
        )
        .await;

        node.api(
            "/incident/ticket-sync/do",
            json!({"incident_id": inc, "integration_id": id}),
        )
        .await;
        assert_eq!(node.drain().await.succeeded, 1);
        let calls = sdp.take();
        assert_eq!(calls[0].auth, "Zoho-oauthtoken at-1");
        assert_eq!(
            calls[0].input["request"]["template"],
            json!({"name": "Default Request"})
        );
        assert_eq!(
            node.incident(&inc).await["tickets"][0]["external_url"],
            json!(format!("{}/ui/requests/1001/details", sdp.url))
        );

        // Two hours later the token has expired: refreshed before the call.
        node.advance(2 * 3_600_000);
        node.api(
            "/incident/comment",
            json!({"incident_id": inc, "comment": "later"}),
        )
        .await;
        assert_eq!(node.drain().await.succeeded, 1);
        assert_eq!(sdp.take()[0].auth, "Zoho-oauthtoken at-2");
        assert_eq!(
            sdp.grants().last().map(String::as_str),
            Some("refresh_token")
        );
        // Revoked early: the 401 refreshes once and the call is made again.
        sdp.revoke_access();
        node.api("/incident/ack", json!({"incident_ids": [inc]}))
            .await;
        assert_eq!(node.drain().await.succeeded, 1);
        let calls = sdp.take();
        assert_eq!(
            calls.len(),
            1,
            "the refused call is not recorded: {calls:?}"
        );
        assert_eq!(calls[0].auth, format!("Zoho-oauthtoken {}", sdp.access()));
        assert_eq!(sdp.access(), "at-3");
    }
);

on_both_backends!(
    servicedeskplus_pushes_change_incidents_by_its_status_mapping,
    |url: String| async move {
        // spec: RSP-407 (inbound as RSP-406 with its status mapping: Open reopens; In
        // Progress, Assigned, Pending Verification, Staging change nothing; On Hold snoozes
        // 120 minutes when Processing; Resolved, Closed, Canceled, Rejected close), RSP-406
        // (custom fields, urgency → severity, notes added once)
        let node = Node::start(&url).await;
        let (_, channel) = node.alert("db1", "Critical").await;
        node.api(
            "/field/create",
            json!({"field_name": "site", "display_name": "Site", "field_type": "text"}),
        )
        .await;
        let t = node
            .api(
                "/ticket-sync/create",
                json!({"system": "servicedeskplus", "name": "SDP in", "channel_ids": [channel],
                       "direction": "from", "base_url": "https://sdp.example.com",
                       "secret": "k",
                       "field_mapping": [{"source": "fields.site", "target_field": "udf_sline_9"}]}),
            )
            .await;
        let push_url = t["push_url"].as_str().unwrap().to_string();
        assert!(push_url.contains("/ticket-sync/servicedeskplus/push?integration_key="));
        // The ServiceNow URL does not take this integration's key.
        let (status, _) = node
            .push(
                &push_url.replace("servicedeskplus", "servicenow"),
                json!({"action_type": "insert", "sys_id": "1"}),
            )
            .await;
        assert_eq!(status, 401);
        let (status, out) = node
            .push(
                &push_url,
                json!({"action_type": "insert", "display_id": "7"}),
            )
            .await;
        assert_eq!(status, 400);
        assert!(error_of(&out).1.starts_with("id: required"), "{out}");

        let record = json!({"action_type": "insert", "id": 2001, "display_id": "7",
                            "subject": "Laptop broken", "description": "screen",
                            "status": {"name": "Open"}, "urgency": {"name": "High"},
                            "udf_sline_9": "Berlin"});
        let (status, out) = node.push(&push_url, record.clone()).await;
        assert_eq!(status, 200, "{out}");
        let created = out["data"]["incident_id"].as_str().unwrap().to_string();
        let info = node.incident(&created).await;
        assert_eq!(info["title"], json!("Laptop broken"));
        assert_eq!(info["incident_severity"], json!("Critical"));
        assert_eq!(info["fields"], json!({"site": "Berlin"}));
        assert_eq!(
            info["tickets"][0]["external_url"],
            json!("https://sdp.example.com/WorkOrder.do?woMode=viewWO&woID=2001")
        );
        let mut update = record.clone();
        update["action_type"] = json!("update");
        for s in [
            "In Progress",
            "Assigned",
            "Pending Verification",
            "Staging",
            "On Hold",
        ] {
            update["status"] = json!({"name": s});
            node.push(&push_url, update.clone()).await;
            assert_eq!(
                node.incident(&created).await["progress"],
                json!("Triggered"),
                "{s}"
            );
        }
        node.api("/incident/ack", json!({"incident_ids": [created]}))
            .await;
        let now = node.clock.now();
        update["status"] = json!({"name": "On Hold"});
        update["note"] = json!("waiting for parts");
        node.push(&push_url, update.clone()).await;
        node.push(&push_url, update.clone()).await;
        let info = node.incident(&created).await;
        assert_eq!(info["snoozed_before"], json!((now + 120 * 60_000) / 1000));
        let feed = node
            .api(
                "/incident/feed",
                json!({"incident_id": created, "limit": 100}),
            )
            .await;
        let notes = feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "i_comm")
            .count();
        assert_eq!(notes, 1, "{feed}");
        update["status"] = json!({"name": "Rejected"});
        node.push(&push_url, update.clone()).await;
        let info = node.incident(&created).await;
        assert_eq!(info["progress"], json!("Closed"));
        assert_eq!(info["closer_id"], json!(0));
        update["status"] = json!({"name": "Open"});
        node.push(&push_url, update).await;
        assert_eq!(
            node.incident(&created).await["progress"],
            json!("Triggered")
        );
    }
);
