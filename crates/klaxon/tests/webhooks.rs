//! Outbound alert and incident webhooks end to end (response.md §2.23, ingest.md §2.21;
//! docs/webhooks.md): webhooks configured over the Open API, events fired by pushes and
//! incident actions, delivered by the node's `WebhookDispatcher` to a fake receiver on this
//! machine that records every request and can drop the connection (a transport failure) or
//! answer an error status. Time is an injected clock: the test moves it past the retry wait
//! instead of sleeping. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

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

// ---- the injected clock ----

// ---- the fake receiver: plain HTTP/1.1 on a socket, so it can close without answering ----

#[derive(Debug, Clone)]
struct Req {
    target: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Req {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

#[derive(Clone, Default)]
struct Receiver {
    reqs: Arc<Mutex<Vec<Req>>>,
    /// The next this-many requests are read and then the connection is closed unanswered.
    drop_next: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    /// Statuses for the next answers (200 when empty).
    statuses: Arc<Mutex<VecDeque<u16>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    /// When non-zero, a 200 answer's body is this many bytes instead of `ok`.
    answer_bytes: Arc<AtomicUsize>,
    /// While set, a request that was read waits for `release` before it is answered.
    hold: Arc<std::sync::atomic::AtomicBool>,
    release: Arc<tokio::sync::Notify>,
    /// Requests read so far (held ones included).
    arrived: Arc<AtomicUsize>,
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
        if self.hold.load(Ordering::SeqCst) {
            let released = self.release.notified();
            self.arrived.fetch_add(1, Ordering::SeqCst);
            released.await;
        } else {
            self.arrived.fetch_add(1, Ordering::SeqCst);
        }
        if self
            .drop_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            drop(socket);
            return;
        }
        let status = self.statuses.lock().unwrap().pop_front().unwrap_or(200);
        self.reqs.lock().unwrap().push(Req {
            target,
            headers,
            body,
        });
        let big = "x".repeat(self.answer_bytes.load(Ordering::SeqCst));
        let text = match status {
            200 if !big.is_empty() => big.as_str(),
            200 => "ok",
            _ => "receiver says no",
        };
        let resp = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = socket.write_all(resp.as_bytes()).await;
        let _ = socket.shutdown().await;
    }

    fn requests(&self) -> Vec<Req> {
        self.reqs.lock().unwrap().clone()
    }

    /// The JSON bodies of requests to `path` (query included), in arrival order.
    fn bodies(&self, target: &str) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.target == target)
            .map(Req::json)
            .collect()
    }
}

/// `v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>` computed by openssl, an implementation
/// independent of Klaxon's.
fn openssl_signature(secret: &str, ts: &str, body: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{ts}.{body}").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("v1={}", text.trim().rsplit(' ').next().unwrap())
}

// ---- a node whose delivery workers are off: the test runs the dispatcher itself ----

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    owner: i64,
    account: i64,
    /// Shown only at the first start: a restarted node is called with the first one's.
    app_key: String,
    integration_key: String,
    hooks: WebhookDispatcher,
}

impl Node {
    async fn start(dir: &std::path::Path, url: &str, clock: Arc<ManualClock>) -> Node {
        Node::restart(dir, url, clock, None).await
    }

    /// A node on an existing data directory or database, with the keys of its first start.
    async fn restart(
        dir: &std::path::Path,
        url: &str,
        clock: Arc<ManualClock>,
        keys: Option<(String, String)>,
    ) -> Node {
        let mut config: Config = test_config(dir, url);
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
        let (app_key, integration_key) =
            keys.unwrap_or_else(|| (b.app_key.clone(), b.integration_key.clone()));
        Node {
            owner: b.owner_member_id,
            account: b.account_id,
            app_key,
            integration_key,
            server,
            http: reqwest::Client::new(),
            clock,
            hooks,
        }
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!(
                "{}{path}?app_key={}",
                self.server.base_url(),
                self.app_key
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        resp.json().await.unwrap()
    }

    async fn api(&self, path: &str, body: Value) -> Value {
        let out = self.call(path, body).await;
        assert!(out.get("error").is_none(), "{path}: {out}");
        out["data"].clone()
    }

    /// Pushes one Critical alert and returns (incident id, alert id) once they exist.
    async fn alert(&self, key: &str) -> (String, String) {
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
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no alert for {key}");
    }

    async fn drain(&self) -> klaxon_server::webhooks::WebhookRound {
        self.hooks.drain(self.clock.now()).await.unwrap()
    }

    async fn history(&self, filter: Value) -> Value {
        let mut body = json!({"start_time": self.clock.now() - 3_600_000,
                              "end_time": self.clock.now() + 60_000, "limit": 100});
        for (k, v) in filter.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.api("/webhook/history/list", body).await
    }
}

fn is_hex32(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

on_both_backends!(
    payloads_headers_signature_and_history,
    |url: String| async move {
        // spec: RSP-370 (POST, headers, query kept, custom headers replace defaults), RSP-371,
        // RSP-372, RSP-373 (envelope, incident and alert objects), ING-250, ING-251, RSP-378,
        // RSP-379 (history), RSP-375 (order per incident)
        let rx = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let node = Node::start(dir.path(), &url, clock.clone()).await;

        // Bad input names the field and creates nothing.
        for (body, field) in [
            (
                json!({"kind": "incident_webhook", "name": "x", "endpoint": "ftp://h/x"}),
                "endpoint",
            ),
            (
                json!({"kind": "alert_webhook", "name": "x", "endpoint": rx.url("/a")}),
                "event_types",
            ),
            (
                json!({"kind": "incident_webhook", "name": "x", "endpoint": rx.url("/a"),
                    "event_types": ["a_new"]}),
                "event_types",
            ),
            (
                json!({"kind": "incident_webhook", "name": "x", "endpoint": rx.url("/a"),
                    "headers": {"Content-Type": "text/plain"}}),
                "headers",
            ),
            (
                json!({"kind": "incident_webhook", "name": "x", "endpoint": rx.url("/a"),
                    "custom_body": "{oops"}),
                "custom_body",
            ),
            (
                json!({"kind": "incident_webhook", "name": "x", "endpoint": rx.url("/a"),
                    "channel_ids": [424242]}),
                "channel_ids",
            ),
            (
                json!({"kind": "pager", "name": "x", "endpoint": rx.url("/a")}),
                "kind",
            ),
            (
                json!({"kind": "incident_webhook", "endpoint": rx.url("/a")}),
                "name",
            ),
        ] {
            let out = node.call("/webhook/create", body).await;
            assert_eq!(out["error"]["code"], "InvalidParameter", "{out}");
            let msg = out["error"]["message"].as_str().unwrap();
            assert!(msg.starts_with(field), "{field}: {msg}");
        }
        assert_eq!(node.api("/webhook/list", json!({})).await["total"], 0);

        let inc_hook = node
            .api(
                "/webhook/create",
                json!({"kind": "incident_webhook", "name": "Incidents",
                       "endpoint": rx.url("/incident/webhook?a=a"),
                       "headers": {"X-Customize-Header-A": "a", "User-Agent": "my-agent/1"}}),
            )
            .await;
        let secret = inc_hook["signing_secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        let alert_hook = node
            .api(
                "/webhook/create",
                json!({"kind": "alert_webhook", "name": "Alerts",
                       "endpoint": rx.url("/alert/webhook"),
                       "event_types": ["a_new", "a_merge", "a_update", "a_close"]}),
            )
            .await;
        // The secret is shown once: info and list never carry it.
        let info = node
            .api(
                "/webhook/info",
                json!({"integration_id": inc_hook["integration_id"]}),
            )
            .await;
        assert!(info.get("signing_secret").is_none());
        assert_eq!(info["headers"]["X-Customize-Header-A"], "a");
        assert_eq!(info["event_types"], json!([]));
        let listed = node.api("/webhook/list", json!({})).await;
        assert_eq!(listed["total"], 2);
        assert!(listed.to_string().find("whsec_").is_none());

        let (inc, alert_id) = node.alert("disk").await;
        let round = node.drain().await;
        assert_eq!(round.failed + round.retried, 0, "{round:?}");

        // The incident webhook: i_new first, with the incident object.
        let incident_reqs: Vec<Req> = rx
            .requests()
            .into_iter()
            .filter(|r| r.target == "/incident/webhook?a=a")
            .collect();
        let first = &incident_reqs[0];
        let body = first.json();
        assert_eq!(body["event_type"], "i_new");
        assert!(is_hex32(&body["event_id"]), "{body}");
        assert!(
            body["event_time"].as_i64().unwrap() > 1_000_000_000_000,
            "milliseconds"
        );
        assert!(
            body.get("person").is_none(),
            "an automatic incident has no actor"
        );
        let i = &body["incident"];
        assert_eq!(i["incident_id"], inc.as_str());
        assert_eq!(i["account_id"], node.account);
        assert_eq!(i["account_name"].as_str().map(str::is_empty), Some(false));
        assert_eq!(i["title"], "disk down");
        assert_eq!(i["incident_severity"], "Critical");
        assert_eq!(i["incident_status"], "Critical");
        assert_eq!(i["progress"], "Triggered");
        assert_eq!(i["labels"]["host"], "disk");
        assert_eq!(i["alert_cnt"], 1);
        assert_eq!(i["dedup_key"], "disk");
        assert!(i["num"].as_str().is_some_and(|n| n.len() == 6));
        assert!(i["channel_id"].as_i64().unwrap() > 0);
        assert_eq!(i["channel_name"].as_str().map(str::is_empty), Some(false));
        assert!(
            i["detail_url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/incident/detail/{inc}"))
        );
        assert!(
            i["start_time"].as_i64().unwrap() < 10_000_000_000,
            "seconds"
        );
        assert!(i.get("creator_id").is_none() && i.get("creator").is_none());
        assert!(i["responders"].is_array() && i["responder_ids"].is_array());
        // Headers: ours, the custom ones (replacing our User-Agent), and the signature.
        assert_eq!(first.header("content-type"), "application/json");
        assert_eq!(first.header("user-agent"), "my-agent/1");
        assert_eq!(first.header("x-customize-header-a"), "a");
        assert_eq!(
            first.header("x-klaxon-event-id"),
            body["event_id"].as_str().unwrap()
        );
        assert_eq!(first.header("x-klaxon-event-type"), "i_new");
        let ts = first.header("x-klaxon-timestamp");
        assert_eq!(ts.parse::<i64>().unwrap(), clock.now() / 1000);
        assert_eq!(
            first.header("x-klaxon-signature"),
            openssl_signature(&secret, ts, &first.body)
        );
        assert_ne!(
            first.header("x-klaxon-signature"),
            openssl_signature("wrong", ts, &first.body)
        );

        // The alert webhook: a_new, then a_merge (it opened the incident).
        let alert_bodies = rx.bodies("/alert/webhook");
        let types: Vec<&str> = alert_bodies
            .iter()
            .map(|b| b["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["a_new", "a_merge"]);
        let a = &alert_bodies[1]["alert"];
        assert_eq!(a["alert_id"], alert_id.as_str());
        assert_eq!(a["alert_key"], "disk");
        assert_eq!(a["title"], "disk down");
        assert_eq!(a["alert_severity"], "Critical");
        assert_eq!(a["alert_status"], "Critical");
        assert_eq!(a["data_source_type"], "standard");
        assert_eq!(a["data_source_id"], node.server.bootstrap().integration_id);
        assert_eq!(
            a["data_source_name"].as_str().map(str::is_empty),
            Some(false)
        );
        assert_eq!(a["channel_name"].as_str().map(str::is_empty), Some(false));
        assert_eq!(a["labels"]["host"], "disk");
        assert_eq!(a["event_cnt"], 1);
        assert_eq!(a["end_time"], 0);
        assert_eq!(a["incident"]["incident_id"], inc.as_str());
        assert_eq!(a["incident"]["title"], "disk down");
        let alert_req = rx
            .requests()
            .into_iter()
            .find(|r| r.target == "/alert/webhook")
            .unwrap();
        assert!(
            alert_req
                .header("user-agent")
                .starts_with("klaxon-webhook/")
        );

        // A person acknowledges, then closes: i_ack and i_rslv with `person`, the closer, and
        // the alert's a_close.
        clock.advance_ms(1_000);
        node.api("/incident/ack", json!({"incident_ids": [inc]}))
            .await;
        clock.advance_ms(1_000);
        node.api("/incident/resolve", json!({"incident_ids": [inc]}))
            .await;
        node.drain().await;
        let incident_bodies = rx.bodies("/incident/webhook?a=a");
        let types: Vec<&str> = incident_bodies
            .iter()
            .map(|b| b["event_type"].as_str().unwrap())
            .collect();
        let at = |t: &str| types.iter().position(|x| *x == t).unwrap();
        assert!(
            at("i_new") < at("i_ack") && at("i_ack") < at("i_rslv"),
            "{types:?}"
        );
        let ack = &incident_bodies[at("i_ack")];
        assert_eq!(ack["person"]["person_id"], node.owner);
        assert!(ack["person"]["email"].as_str().unwrap().contains('@'));
        assert_eq!(ack["incident"]["progress"], "Processing");
        let rslv = &incident_bodies[at("i_rslv")];
        assert_eq!(rslv["incident"]["progress"], "Closed");
        assert_eq!(rslv["incident"]["closer"]["person_id"], node.owner);
        assert!(rslv["incident"]["close_time"].as_i64().unwrap() > 0);
        let close = rx
            .bodies("/alert/webhook")
            .into_iter()
            .find(|b| b["event_type"] == "a_close")
            .expect("a_close");
        assert_eq!(close["alert"]["alert_id"], alert_id.as_str());
        assert_eq!(close["person"]["person_id"], node.owner);
        // Every event id is different.
        let mut ids: Vec<String> = rx
            .requests()
            .iter()
            .map(|r| r.json()["event_id"].as_str().unwrap().to_string())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);

        // The history: one success per request, newest first, filters, detail, cursor.
        let all = node.history(json!({})).await;
        let items = all["items"].as_array().unwrap();
        assert_eq!(items.len(), rx.requests().len());
        assert!(
            items
                .iter()
                .all(|h| h["status"] == "success" && h["response_status"] == 200)
        );
        assert_eq!(all["has_next_page"], false);
        let acks = node.history(json!({"event_types": ["i_ack"]})).await;
        let acks = acks["items"].as_array().unwrap();
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["integration_id"], inc_hook["integration_id"]);
        assert_eq!(acks[0]["ref_id"], inc.as_str());
        assert_eq!(acks[0]["event_id"], ack["event_id"]);
        let detail = node
            .api(
                "/webhook/history/detail",
                json!({"history_id": acks[0]["history_id"]}),
            )
            .await;
        assert_eq!(
            serde_json::from_str::<Value>(detail["request_body"].as_str().unwrap()).unwrap(),
            *ack
        );
        assert_eq!(detail["response_body"], "ok");
        let of_alerts = node
            .history(json!({"integration_id": alert_hook["integration_id"]}))
            .await;
        assert_eq!(of_alerts["items"].as_array().unwrap().len(), 3);
        assert_eq!(
            node.history(json!({"status": "failed"})).await["items"],
            json!([])
        );
        let mut seen = Vec::new();
        let mut filter = json!({"limit": 2});
        loop {
            let page = node.history(filter.clone()).await;
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["history_id"].as_str().unwrap().to_string()),
            );
            if page["has_next_page"] == false {
                break;
            }
            filter["search_after_ctx"] = page["search_after_ctx"].clone();
        }
        assert_eq!(seen.len(), items.len());
        let out = node
            .call(
                "/webhook/history/list",
                json!({"end_time": clock.now(), "limit": 10}),
            )
            .await;
        assert!(
            out["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("start_time")
        );

        // Disabling stops deliveries (RSP-378); deleting removes it.
        node.api(
            "/webhook/update",
            json!({"integration_id": inc_hook["integration_id"], "status": "disabled"}),
        )
        .await;
        let before = rx.requests().len();
        node.api("/incident/reopen", json!({"incident_ids": [inc]}))
            .await;
        node.drain().await;
        assert_eq!(
            rx.requests().len(),
            before,
            "a disabled webhook gets nothing"
        );
        node.api(
            "/webhook/delete",
            json!({"integration_id": inc_hook["integration_id"]}),
        )
        .await;
        let out = node
            .call(
                "/webhook/info",
                json!({"integration_id": inc_hook["integration_id"]}),
            )
            .await;
        assert_eq!(out["error"]["code"], "ResourceNotFound");
        node.server.shutdown().await;
    }
);

on_both_backends!(
    transport_failures_retry_once_and_http_errors_never,
    |url: String| async move {
        // spec: RSP-374 (one retry 1 s later for a dropped connection; none for an HTTP
        // error; same event_id), RSP-375 (the next event of the incident waits), RSP-379,
        // DESIGN.md principle 4 (a pending retry survives a restart)
        let rx = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let node = Node::start(dir.path(), &url, clock.clone()).await;
        node.api(
            "/webhook/create",
            json!({"kind": "incident_webhook", "name": "Incidents",
                   "endpoint": rx.url("/hook"), "event_types": ["i_new", "i_ack", "i_comm", "i_rslv"]}),
        )
        .await;
        rx.drop_next.store(1, Ordering::SeqCst);
        let (inc, _) = node.alert("cpu").await;
        node.api("/incident/ack", json!({"incident_ids": [inc]}))
            .await;
        let round = node.hooks.run_once(clock.now()).await.unwrap();
        assert_eq!((round.claimed, round.retried), (1, 1), "{round:?}");
        assert_eq!(rx.dropped.load(Ordering::SeqCst), 1);
        // Neither the retry nor i_ack is due before 1 s has passed.
        assert_eq!(
            node.hooks
                .run_once(clock.now() + 500)
                .await
                .unwrap()
                .claimed,
            0
        );
        assert!(rx.requests().is_empty());

        // The node restarts; the waiting retry is a row and goes out from the new node.
        let keys = Some((node.app_key.clone(), node.integration_key.clone()));
        let Node { server, .. } = node;
        server.shutdown().await;
        let node = Node::restart(dir.path(), &url, clock.clone(), keys).await;
        clock.advance_ms(1_100);
        node.drain().await;
        let bodies = rx.bodies("/hook");
        let types: Vec<&str> = bodies
            .iter()
            .map(|b| b["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(types, vec!["i_new", "i_ack"], "in order, the retry first");
        let history = node.history(json!({"event_types": ["i_new"]})).await;
        let h = history["items"].as_array().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0]["attempt"].as_i64(), h[0]["status"].as_str()),
            (Some(2), Some("success"))
        );
        assert_eq!(
            (h[1]["attempt"].as_i64(), h[1]["status"].as_str()),
            (Some(1), Some("failed"))
        );
        assert_eq!(h[1]["response_status"], 0);
        assert_ne!(h[1]["error"], "");
        assert_eq!(h[0]["event_id"], h[1]["event_id"]);
        assert_eq!(h[0]["event_id"], bodies[0]["event_id"]);

        // An HTTP error is final: one attempt, no retry; the next event still goes out.
        rx.statuses.lock().unwrap().push_back(500);
        node.api(
            "/incident/comment",
            json!({"incident_ids": [inc], "comment": "looking"}),
        )
        .await;
        node.api("/incident/resolve", json!({"incident_ids": [inc]}))
            .await;
        node.drain().await;
        clock.advance_ms(5_000);
        node.drain().await;
        let failed = node
            .history(json!({"status": "failed", "event_types": ["i_comm"]}))
            .await;
        let failed = failed["items"].as_array().unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["response_status"], 500);
        assert!(failed[0]["error"].as_str().unwrap().contains("500"));
        let detail = node
            .api(
                "/webhook/history/detail",
                json!({"history_id": failed[0]["history_id"]}),
            )
            .await;
        assert_eq!(detail["response_body"], "receiver says no");
        let types: Vec<String> = rx
            .bodies("/hook")
            .iter()
            .map(|b| b["event_type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, vec!["i_new", "i_ack", "i_comm", "i_rslv"]);

        // Two dropped connections: the single retry is used up and the event fails.
        rx.drop_next.store(2, Ordering::SeqCst);
        node.api("/incident/reopen", json!({"incident_ids": [inc]}))
            .await;
        node.api(
            "/incident/comment",
            json!({"incident_ids": [inc], "comment": "again"}),
        )
        .await;
        node.drain().await;
        clock.advance_ms(1_100);
        node.drain().await;
        clock.advance_ms(5_000);
        node.drain().await;
        assert_eq!(rx.dropped.load(Ordering::SeqCst), 3);
        let states = node
            .server
            .store()
            .webhook_deliveries(node.account)
            .await
            .unwrap();
        let last = states
            .iter()
            .rev()
            .find(|d| d.event_type == "i_comm")
            .unwrap();
        assert_eq!((last.status.as_str(), last.attempts), ("failed", 2));
        node.server.shutdown().await;
    }
);

on_both_backends!(
    a_manual_alert_merge_fires_a_merge,
    |url: String| async move {
        // spec: RSP-372 (a_merge for a manual move, with `person`), RSP-101, ING-250, RSP-002
        // ("merge an alert into an incident": a_merge + i_rslv of the emptied incident)
        let rx = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let node = Node::start(dir.path(), &url, clock.clone()).await;
        node.api(
            "/webhook/create",
            json!({"kind": "alert_webhook", "name": "Merges",
                   "endpoint": rx.url("/alerts"), "event_types": ["a_merge"]}),
        )
        .await;
        node.api(
            "/webhook/create",
            json!({"kind": "incident_webhook", "name": "Closes",
                   "endpoint": rx.url("/incidents"), "event_types": ["i_rslv"]}),
        )
        .await;
        let (inc_a, _) = node.alert("web-1").await;
        let (inc_b, alert_b) = node.alert("web-2").await;
        assert_ne!(inc_a, inc_b);
        node.drain().await;
        let before = rx.bodies("/alerts").len();
        assert_eq!(before, 2, "each alert opened its incident");
        clock.advance_ms(1_000);
        node.api(
            "/alert/merge",
            json!({"incident_id": inc_a, "alert_ids": [alert_b], "comment": "same outage"}),
        )
        .await;
        node.drain().await;
        let merges = rx.bodies("/alerts");
        assert_eq!(merges.len(), before + 1);
        let m = &merges[before];
        assert_eq!(m["event_type"], "a_merge");
        assert_eq!(m["person"]["person_id"], node.owner);
        assert_eq!(m["alert"]["alert_id"], alert_b.as_str());
        assert_eq!(m["alert"]["incident"]["incident_id"], inc_a.as_str());
        let closes = rx.bodies("/incidents");
        assert_eq!(closes.len(), 1);
        assert_eq!(closes[0]["incident"]["incident_id"], inc_b.as_str());
        assert_eq!(closes[0]["incident"]["progress"], "Closed");
        node.server.shutdown().await;
    }
);

on_both_backends!(
    custom_body_and_value_mapping_shape_the_request,
    |url: String| async move {
        // spec: RSP-376, RSP-377 (the Flashduty docs' example, end to end)
        let rx = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let node = Node::start(dir.path(), &url, clock.clone()).await;
        node.api(
            "/webhook/create",
            json!({"kind": "incident_webhook", "name": "Custom", "event_types": ["i_new"],
                   "endpoint": rx.url("/custom"),
                   "custom_body": r#"{"msg_type": "incident", "event": "{{event_type}}",
                     "content": {"id": "{{incident.incident_id}}", "severity": "{{incident.incident_severity}}",
                     "status": "{{incident.progress}}", "labels": "{{incident.labels}}",
                     "text": "Incident: {{incident.title}}", "odd": "{{incident.nope}}"}}"#,
                   "value_mapping": {"incident.incident_severity": {"Critical": "P0"},
                                     "incident.progress": {"Triggered": "open"}}}),
        )
        .await;
        let (inc, _) = node.alert("api").await;
        node.drain().await;
        let bodies = rx.bodies("/custom");
        assert_eq!(
            bodies,
            vec![json!({"msg_type": "incident", "event": "i_new",
                "content": {"id": inc, "severity": "P0", "status": "open",
                            "labels": {"host": "api"}, "text": "Incident: api down",
                            "odd": "{{incident.nope}}"}})]
        );
        node.server.shutdown().await;
    }
);

on_both_backends!(
    the_envelope_and_the_incident_object_carry_every_field,
    |url: String| async move {
        // spec: RSP-373
        let rx = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let node = Node::start(dir.path(), &url, clock.clone()).await;
        let channel = node.server.bootstrap().channel_id;
        node.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": channel, "rule_name": "Primary",
                   "layers": [{"target": {"person_ids": [node.owner],
                               "by": {"follow_preference": false, "critical": ["email"]}},
                               "escalate_window": 30}]}),
        )
        .await;
        node.api(
            "/webhook/create",
            json!({"kind": "incident_webhook", "name": "All", "endpoint": rx.url("/i")}),
        )
        .await;
        node.api(
            "/webhook/create",
            json!({"kind": "alert_webhook", "name": "Alerts", "endpoint": rx.url("/a"),
                   "event_types": ["a_new"]}),
        )
        .await;
        let (inc, _) = node.alert("envelope").await;
        clock.advance_ms(1_000);
        node.api("/incident/ack", json!({"incident_ids": [inc]}))
            .await;
        node.drain().await;
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let sorted = |k: &[&str]| -> Vec<String> {
            let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
            k.sort();
            k
        };
        let bodies = rx.bodies("/i");
        let of = |t: &str| {
            bodies
                .iter()
                .find(|b| b["event_type"] == t)
                .unwrap_or_else(|| panic!("no {t} in {bodies:?}"))
                .clone()
        };
        // The envelope: `person` only with an actor.
        let new = of("i_new");
        assert_eq!(
            keys(&new),
            sorted(&["event_time", "event_type", "event_id", "incident"])
        );
        let ack = of("i_ack");
        assert_eq!(
            keys(&ack),
            sorted(&["event_time", "event_type", "event_id", "person", "incident"])
        );
        assert_eq!(
            keys(&ack["person"]),
            sorted(&["person_id", "person_name", "email"])
        );
        assert!(ack["event_time"].is_i64() && is_hex32(&ack["event_id"]));

        // The incident object: every field of RSP-373 (creator and closer are absent for an
        // automatic, open incident).
        let i = &ack["incident"];
        for field in [
            "incident_id",
            "num",
            "account_id",
            "account_name",
            "title",
            "description",
            "impact",
            "root_cause",
            "resolution",
            "incident_severity",
            "incident_status",
            "progress",
            "created_at",
            "updated_at",
            "start_time",
            "last_time",
            "end_time",
            "ack_time",
            "close_time",
            "snoozed_before",
            "labels",
            "fields",
            "responders",
            "responder_ids",
            "assigned_to",
            "alert_cnt",
            "channel_id",
            "channel_name",
            "detail_url",
            "group_method",
            "dedup_key",
            "equals_md5",
            "data_source_id",
        ] {
            assert!(i.get(field).is_some(), "incident lacks {field}: {i}");
        }
        for absent in ["creator", "creator_id", "closer", "alerts"] {
            assert!(i.get(absent).is_none(), "{absent} should be absent: {i}");
        }
        assert!(i["ack_time"].as_i64().unwrap() > 0);
        assert_eq!(
            keys(&i["responders"][0]),
            sorted(&[
                "person_id",
                "person_name",
                "email",
                "assigned_at",
                "acknowledged_at"
            ])
        );
        assert_eq!(i["responders"][0]["person_id"], node.owner);
        assert!(i["responders"][0]["acknowledged_at"].as_i64().unwrap() > 0);
        assert_eq!(i["responder_ids"], json!([node.owner]));
        let a = &i["assigned_to"];
        for field in [
            "id",
            "type",
            "escalate_rule_id",
            "escalate_rule_name",
            "layer_idx",
            "assigned_at",
        ] {
            assert!(a.get(field).is_some(), "assigned_to lacks {field}: {a}");
        }
        assert_eq!(a["escalate_rule_name"], "Primary");
        assert_eq!(a["layer_idx"], 0);
        // `person_ids` is optional (`person_ids?`): present, it is a list.
        assert!(a.get("person_ids").is_none_or(Value::is_array), "{a}");

        // The alert object.
        let alert = &rx.bodies("/a")[0]["alert"];
        assert_eq!(
            keys(alert),
            sorted(&[
                "alert_id",
                "alert_key",
                "title",
                "title_rule",
                "description",
                "alert_severity",
                "alert_status",
                "channel_id",
                "channel_name",
                "data_source_id",
                "data_source_name",
                "data_source_type",
                "created_at",
                "updated_at",
                "start_time",
                "last_time",
                "end_time",
                "labels",
                "event_cnt",
                "incident",
            ])
        );
        node.server.shutdown().await;
    }
);

on_both_backends!(
    delivery_is_woken_by_the_commit_never_blocks_and_keeps_its_history_a_week,
    |url: String| async move {
        // spec: RSP-381
        // spec: RSP-379
        // The node's own worker sends, with an idle poll of ten minutes: only the wake on
        // commit can explain a prompt delivery.
        let rx = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let mut config: Config = test_config(dir.path(), &url);
        config.workers.timers = false;
        config.workers.idle_poll_ms = 600_000;
        config.notify.allow_private_targets = true;
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let b = server.bootstrap().clone();
        let http = reqwest::Client::new();
        let api = |path: &str, body: Value| {
            let req = http
                .post(format!("{}{path}?app_key={}", server.base_url(), b.app_key))
                .json(&body);
            async move {
                let out: Value = req.send().await.unwrap().json().await.unwrap();
                assert!(out.get("error").is_none(), "{out}");
                out["data"].clone()
            }
        };
        let hook = api(
            "/webhook/create",
            json!({"kind": "incident_webhook", "name": "Slow", "endpoint": rx.url("/slow"),
                   "event_types": ["i_new", "i_ack", "i_comm"]}),
        )
        .await;
        // Let the worker finish its first round and go idle.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        // The receiver holds the request: the push and the acknowledgement both answer
        // while the i_new delivery is still waiting for its receiver.
        rx.hold.store(true, Ordering::SeqCst);
        let resp = http
            .post(format!(
                "{}/event/push/alert/standard?integration_key={}",
                server.base_url(),
                b.integration_key
            ))
            .json(&json!({"event_status": "Critical", "title_rule": "slow receiver", "alert_key": "slow"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut waited = 0;
        while rx.arrived.load(Ordering::SeqCst) == 0 {
            assert!(waited < 500, "the i_new delivery never started");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            waited += 1;
        }
        let now = clock.now() / 1000;
        let listed = api(
            "/incident/list",
            json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 10}),
        )
        .await;
        let inc = listed["items"][0]["incident_id"]
            .as_str()
            .unwrap()
            .to_string();
        api("/incident/ack", json!({"incident_ids": [inc]})).await;
        assert!(
            rx.requests().is_empty(),
            "the action answered while its delivery was still held"
        );

        // The receiver then fails: the failure is recorded and changes nothing in the incident.
        rx.statuses.lock().unwrap().push_back(500);
        rx.hold.store(false, Ordering::SeqCst);
        rx.release.notify_waiters();
        let history = |from: i64, to: i64| {
            api(
                "/webhook/history/list",
                json!({"start_time": from, "end_time": to, "limit": 100,
                       "integration_id": hook["integration_id"]}),
            )
        };
        let start = clock.now() - 60_000;
        let mut items = Vec::new();
        for _ in 0..500 {
            items = history(start, clock.now() + 60_000).await["items"]
                .as_array()
                .unwrap()
                .clone();
            if items.len() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(items.len(), 2, "{items:?}");
        let failed = items.iter().find(|h| h["event_type"] == "i_new").unwrap();
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["response_status"], 500);
        let info = api("/incident/info", json!({"incident_id": inc})).await;
        assert_eq!(info["progress"], "Processing");
        let feed = api("/incident/feed", json!({"incident_id": inc, "limit": 100})).await;
        let types: Vec<&str> = feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert!(
            types
                .iter()
                .all(|t| ["i_new", "i_assign", "i_ack", "i_notify"].contains(t)),
            "{types:?}"
        );

        // A long answer: the history keeps its first 4 KB.
        rx.answer_bytes.store(10_000, Ordering::SeqCst);
        api(
            "/incident/comment",
            json!({"incident_ids": [inc], "comment": "looking"}),
        )
        .await;
        let mut comm = None;
        for _ in 0..500 {
            let items = history(start, clock.now() + 60_000).await["items"]
                .as_array()
                .unwrap()
                .clone();
            comm = items.into_iter().find(|h| h["event_type"] == "i_comm");
            if comm.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let comm = comm.expect("the i_comm delivery");
        let detail = api(
            "/webhook/history/detail",
            json!({"history_id": comm["history_id"]}),
        )
        .await;
        assert_eq!(detail["response_body"], "x".repeat(4096));

        // Seven days later the history of that week is gone; the next commit wakes the worker,
        // which purges before sending.
        rx.answer_bytes.store(0, Ordering::SeqCst);
        let week_ago = clock.now();
        clock.advance_ms(7 * 24 * 3_600_000 + 60_000);
        api(
            "/incident/comment",
            json!({"incident_ids": [inc], "comment": "still looking"}),
        )
        .await;
        let mut old = usize::MAX;
        for _ in 0..500 {
            let now = clock.now();
            let fresh = history(now - 60_000, now + 60_000).await["items"]
                .as_array()
                .unwrap()
                .len();
            old = history(start, week_ago + 60_000).await["items"]
                .as_array()
                .unwrap()
                .len();
            if fresh == 1 && old == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(old, 0, "the week-old history is purged");
        server.shutdown().await;
    }
);
