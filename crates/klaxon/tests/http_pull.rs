//! HTTP pull integrations (ingest.md §2.19, §3.9) end to end: a local HTTP server plays the
//! monitored system and records every request; the node's clock is a ManualClock and pulls
//! run through `Server::run_due_pulls` (the timer worker is off), so no test waits for a timer.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_server::Clock;
use serde_json::{Value, json};

// ---- the monitored system: answers from a script per path, records every request ----

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Debug, Clone)]
enum Reply {
    Json(Value),
    Status(u16),
    Text(&'static str),
    Redirect(String),
}

#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<HashMap<String, VecDeque<Reply>>>>,
    /// While set, answers wait for it (a pull "in progress").
    hold: Arc<Mutex<Option<Arc<tokio::sync::Notify>>>>,
    base: Arc<Mutex<String>>,
}

async fn answer(
    State(up): State<Upstream>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| serde_urlencoded::from_str(q).unwrap())
        .unwrap_or_default();
    up.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).to_string(),
    });
    let hold = up.hold.lock().unwrap().clone();
    if let Some(gate) = hold {
        gate.notified().await;
    }
    let reply = up
        .script
        .lock()
        .unwrap()
        .get_mut(uri.path())
        .and_then(VecDeque::pop_front)
        .unwrap_or(Reply::Json(json!({"items": []})));
    match reply {
        Reply::Json(v) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            v.to_string(),
        )
            .into_response(),
        Reply::Status(s) => (
            StatusCode::from_u16(s).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            "{\"items\": []}",
        )
            .into_response(),
        Reply::Text(t) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], t).into_response()
        }
        Reply::Redirect(to) => {
            let location = format!("{}{to}", up.base.lock().unwrap());
            (StatusCode::FOUND, [(header::LOCATION, location)], "").into_response()
        }
    }
}

impl Upstream {
    async fn start() -> Upstream {
        let up = Upstream::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *up.base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(answer).with_state(up.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        up
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.lock().unwrap())
    }

    fn script(&self, path: &str, replies: Vec<Reply>) {
        self.script
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .extend(replies);
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

// ---- the node ----

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    channel: i64,
}

fn ok(r: (u16, Value)) -> Value {
    assert_eq!(r.0, 200, "{}", r.1);
    assert!(r.1.get("error").is_none(), "{}", r.1);
    r.1["data"].clone()
}

fn refused(r: (u16, Value)) -> (u16, String, String) {
    let code = r.1["error"]["code"].as_str().unwrap_or("").to_string();
    let message = r.1["error"]["message"].as_str().unwrap_or("").to_string();
    (r.0, code, message)
}

impl Node {
    async fn start(database_url: &str) -> Node {
        Self::start_with(database_url, |_| {}).await
    }

    async fn start_with(
        database_url: &str,
        tweak: impl FnOnce(&mut klaxon_server::Config),
    ) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        // Pulls are driven by the test with `run_due_pulls`.
        config.workers.timers = false;
        config.workers.delivery = false;
        // ING-223 pauses 1 s between attempts; the test shortens the pause, not the count.
        config.pull.retry_delay_ms = 5;
        tweak(&mut config);
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms() / 1000 * 1000)));
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
        let channels = ok(ts.api("/channel/list", json!({})).await);
        Node {
            channel: channels["items"][0]["channel_id"].as_i64().unwrap(),
            ts,
            clock,
        }
    }

    fn now_s(&self) -> i64 {
        self.clock.now() / 1000
    }

    fn advance_s(&self, s: i64) {
        self.clock.0.fetch_add(s * 1000, Ordering::SeqCst);
    }

    async fn run_due(&self) -> usize {
        self.ts.server.as_ref().unwrap().run_due_pulls().await
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    /// A dedicated http_pull integration in the default channel.
    async fn create(&self, settings: Value) -> i64 {
        let created = ok(self
            .api(
                "/integration/create",
                json!({"integration_name": "pull", "type": "http_pull", "kind": "dedicated",
                       "channel_id": self.channel, "settings": settings}),
            )
            .await);
        // openapi-compat.md §2.6.1: http_pull integrations have no push URL.
        assert!(created.get("push_url").is_none(), "{created}");
        created["integration_id"].as_i64().unwrap()
    }

    async fn history(&self, id: i64) -> Value {
        ok(self
            .api(
                "/integration/pull/history",
                json!({"integration_id": id, "limit": 100}),
            )
            .await)
    }

    /// Waits for the history to hold `n` records (a manual pull runs in the background).
    async fn wait_history(&self, id: i64, n: usize) -> Value {
        for _ in 0..500 {
            let h = self.history(id).await;
            if h["items"].as_array().unwrap().len() >= n {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the pull history did not reach {n} records");
    }
}

fn item(key: &str, status: &str) -> Value {
    json!({"event_status": status, "title": format!("pulled {key}"), "alert_key": key})
}

// ---- tests ----

on_both_backends!(first_pull_then_every_cycle, |url: String| async move {
    // spec: ING-221, ING-222, ING-224, ING-229, ING-231
    let up = Upstream::start().await;
    let n = Node::start(&url).await;
    up.script(
        "/alerts",
        vec![Reply::Json(json!({"items": [
            {"event_status": "Critical", "title": "Disk full on db-1", "alert_key": "disk-db-1",
             "labels": {"host": "db-1"}}
        ]}))],
    );
    let t0 = n.now_s();
    let id = n
        .create(json!({
            "url": up.url("/alerts?from={{.LastPullTime}}&to={{.NowTime}}&since={{.LastPullTimeISO}}"),
            "cycle_seconds": 60,
            "headers": {"X-Custom-Token": "secret-1"},
        }))
        .await;
    // The first pull runs as soon as the integration exists, looking back one cycle.
    assert_eq!(n.run_due().await, 1);
    let seen = up.seen("/alerts");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].query["from"], (t0 - 60).to_string());
    assert_eq!(seen[0].query["to"], t0.to_string());
    let iso = jiff::Timestamp::from_second(t0 - 60)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(seen[0].query["since"], iso);
    assert_eq!(seen[0].headers["x-custom-token"], "secret-1");
    let h = n.history(id).await;
    let rec = &h["items"][0];
    assert_eq!(rec["status"], "success", "{h}");
    assert_eq!(rec["trigger"], "schedule");
    assert_eq!(
        (
            rec["pages"].as_i64(),
            rec["items_received"].as_i64(),
            rec["items_accepted"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(h["last_pull_time"], t0);

    // The pulled item opens an incident in the integration's channel like a pushed event.
    n.ts.drained().await;
    let incidents = n.ts.incidents().await;
    let inc = incidents
        .iter()
        .find(|i| i["title"] == "Disk full on db-1")
        .expect("incident from the pulled item");
    assert_eq!(inc["channel_id"], n.channel);
    assert_eq!(inc["incident_severity"], "Critical");

    // Not due again before a cycle has passed.
    assert_eq!(n.run_due().await, 0);
    n.advance_s(30);
    assert_eq!(n.run_due().await, 0);
    n.advance_s(30);
    assert_eq!(n.run_due().await, 1);
    let seen = up.seen("/alerts");
    assert_eq!(seen.len(), 2);
    // .LastPullTime is the .NowTime of the previous successful pull.
    assert_eq!(seen[1].query["from"], t0.to_string());
    assert_eq!(seen[1].query["to"], (t0 + 60).to_string());

    // Disabled integrations do not pull; enabling makes a pull due at once.
    ok(n.api("/integration/disable", json!({"integration_id": id}))
        .await);
    n.advance_s(600);
    assert_eq!(n.run_due().await, 0);
    n.advance_s(10);
    ok(n.api("/integration/enable", json!({"integration_id": id}))
        .await);
    assert_eq!(n.run_due().await, 1);
    assert_eq!(up.seen("/alerts").len(), 3);
});

on_both_backends!(
    cursor_pagination_in_query_and_body,
    |url: String| async move {
        // spec: ING-226
        let up = Upstream::start().await;
        let n = Node::start(&url).await;
        up.script(
            "/q",
            vec![
                Reply::Json(json!({"items": [item("q1", "Warning")], "next": "c2"})),
                Reply::Json(json!({"items": [item("q2", "Warning")], "next": 7})),
                Reply::Json(json!({"items": [], "next": "never-used"})),
            ],
        );
        let q = n
            .create(json!({
                "url": up.url("/q?cursor=stale&size=2"),
                "pagination": {"mode": "cursor", "next_value_path": "next", "param_name": "cursor"},
            }))
            .await;
        up.script(
            "/b",
            vec![
                Reply::Json(json!({"items": [item("b1", "Info")], "meta": {"next": "p2"}})),
                Reply::Json(json!({"items": [item("b2", "Info")], "meta": {"next": ""}})),
            ],
        );
        let b = n
        .create(json!({
            "url": up.url("/b"),
            "method": "POST",
            "body": "{\"since\": {{.LastPullTime}}, \"until\": \"{{.NowTimeISO}}\"}",
            "pagination": {"next_value_path": "meta.next", "param_name": "after", "inject_to": "body", "max_pages": 5},
        }))
        .await;
        assert_eq!(n.run_due().await, 2);

        let seen = up.seen("/q");
        assert_eq!(seen.len(), 3, "an empty items page ends pagination");
        assert_eq!(
            seen[0].query["cursor"], "stale",
            "page 1 is requested without a cursor"
        );
        assert_eq!(seen[1].query["cursor"], "c2");
        assert_eq!(
            seen[2].query["cursor"], "7",
            "a numeric cursor in decimal form"
        );
        assert_eq!(seen[2].query["size"], "2");
        let h = n.history(q).await;
        assert_eq!(h["items"][0]["pages"], 3, "{h}");
        assert_eq!(h["items"][0]["items_accepted"], 2);

        let seen = up.seen("/b");
        assert_eq!(seen.len(), 2, "an empty cursor ends pagination");
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].headers["content-type"], "application/json");
        let first = seen[0].json();
        assert!(first.get("after").is_none(), "{first}");
        assert_eq!(first["since"], n.now_s() - 300);
        let second = seen[1].json();
        assert_eq!(second["after"], "p2");
        assert_eq!(
            second["since"], first["since"],
            "all pages share the pull's variables"
        );
        assert_eq!(second["until"], first["until"]);
        let h = n.history(b).await;
        assert_eq!(
            (
                h["items"][0]["status"].as_str(),
                h["items"][0]["pages"].as_i64()
            ),
            (Some("success"), Some(2))
        );
    }
);

on_both_backends!(
    page_failures_retry_and_hold_last_pull_time,
    |url: String| async move {
        // spec: ING-223, ING-227
        let up = Upstream::start().await;
        let n = Node::start(&url).await;
        let t0 = n.now_s();
        up.script(
            "/f",
            vec![
                // Pull 1: page 1 good, page 2 fails three times (1 try + 2 retries) → partial.
                Reply::Json(json!({"items": [item("f1", "Critical")], "next": "p2"})),
                Reply::Status(500),
                Reply::Status(502),
                Reply::Status(503),
                // Pull 2: the first page fails on every attempt → failed.
                Reply::Text("{\"items\": []}"),
                Reply::Status(404),
                Reply::Json(json!({"no_items": true})),
                // Pull 3: a failure, then a good answer within the retries → success.
                Reply::Status(500),
                Reply::Json(json!({"items": [item("f3", "Warning")]})),
            ],
        );
        let id = n
            .create(json!({
                "url": up.url("/f?from={{.LastPullTime}}&to={{.NowTime}}"),
                "retry_count": 2,
                "cycle_seconds": 60,
                "pagination": {"next_value_path": "next", "param_name": "page"},
            }))
            .await;
        assert_eq!(n.run_due().await, 1);
        assert_eq!(up.seen("/f").len(), 4);
        let h = n.history(id).await;
        let rec = &h["items"][0];
        assert_eq!(rec["status"], "partial", "{h}");
        assert_eq!(rec["pages"], 1);
        assert_eq!(rec["items_accepted"], 1);
        assert_eq!(rec["error"], "HTTP status 503");
        assert_eq!(
            h["last_pull_time"],
            t0 - 60,
            "a pull with a failure keeps the first pull's .LastPullTime"
        );
        // Items of the pages fetched before the failure are ingested.
        n.ts.drained().await;
        assert!(
            n.ts.incidents()
                .await
                .iter()
                .any(|i| i["title"] == "pulled f1")
        );

        n.advance_s(60);
        assert_eq!(n.run_due().await, 1);
        let seen = up.seen("/f");
        assert_eq!(seen.len(), 7);
        // The same range is requested again.
        assert_eq!(seen[4].query["from"], (t0 - 60).to_string());
        assert_eq!(seen[4].query["to"], (t0 + 60).to_string());
        let h = n.history(id).await;
        let rec = &h["items"][0];
        assert_eq!(rec["status"], "failed", "{h}");
        assert_eq!(rec["pages"], 0);
        assert_eq!(rec["error"], "the body has no items array");
        assert_eq!(h["last_pull_time"], t0 - 60);

        n.advance_s(60);
        assert_eq!(n.run_due().await, 1);
        let seen = up.seen("/f");
        assert_eq!(seen.len(), 9);
        assert_eq!(seen[7].query["from"], (t0 - 60).to_string());
        let h = n.history(id).await;
        assert_eq!(h["items"][0]["status"], "success", "{h}");
        assert_eq!(h["last_pull_time"], t0 + 120);
        assert_eq!(h["total"], 3);

        n.advance_s(60);
        assert_eq!(n.run_due().await, 1);
        assert_eq!(up.seen("/f")[9].query["from"], (t0 + 120).to_string());
    }
);

on_both_backends!(
    invalid_items_are_skipped_and_volume_truncated,
    |url: String| async move {
        // spec: ING-224, ING-225, §3.9 severity mapping example
        let up = Upstream::start().await;
        let n = Node::start(&url).await;
        let mut items: Vec<Value> = vec![
            json!({"event_status": "P1", "title": "mapped critical", "alert_key": "m1"}),
            json!({"event_status": "P2", "title": "mapped warning", "alert_key": "m2"}),
            json!({"event_status": "P4", "title": "unmapped", "alert_key": "m4"}),
            json!({"event_status": "Warning"}),
            json!({"event_status": "Ok"}),
        ];
        items.extend((0..145).map(
            |i| json!({"event_status": "P3", "title": format!("info {i}"), "alert_key": "same"}),
        ));
        up.script("/v", vec![Reply::Json(json!({"items": items}))]);
        let id = n
            .create(json!({
                "url": up.url("/v"),
                "severity_mapping": {"P1": "Critical", "P2": "Warning", "P3": "Info"},
            }))
            .await;
        assert_eq!(n.run_due().await, 1);
        let h = n.history(id).await;
        let rec = &h["items"][0];
        assert_eq!(
            rec["status"], "success",
            "invalid items do not fail the pull: {h}"
        );
        assert_eq!(rec["items_received"], 150);
        assert_eq!(
            rec["items_skipped"], 3,
            "P4 (unmapped), a trigger without title, Ok without key"
        );
        assert_eq!(rec["items_accepted"], 97);
        assert_eq!(rec["items_truncated"], 50, "at most 100 items per page");
        n.ts.drained().await;
        let alerts = n.ts.alerts().await;
        let sev = |title: &str| {
            alerts
                .iter()
                .find(|a| a["title"] == title)
                .map(|a| a["alert_severity"].clone())
        };
        assert_eq!(sev("mapped critical"), Some(json!("Critical")));
        assert_eq!(sev("mapped warning"), Some(json!("Warning")));
        assert_eq!(sev("unmapped"), None);
    }
);

on_both_backends!(manual_trigger_limits, |url: String| async move {
    // spec: ING-228, ING-221 (never two pulls at once)
    let up = Upstream::start().await;
    let n = Node::start(&url).await;
    let id = n
        .create(json!({"url": up.url("/m"), "cycle_seconds": 600}))
        .await;
    let gate = Arc::new(tokio::sync::Notify::new());
    *up.hold.lock().unwrap() = Some(gate.clone());
    up.script(
        "/m",
        vec![Reply::Json(json!({"items": [item("m1", "Info")]}))],
    );

    let started = ok(n
        .api("/integration/pull/trigger", json!({"integration_id": id}))
        .await);
    assert_eq!(started["started_at"], n.now_s());
    for _ in 0..500 {
        if !up.seen("/m").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(up.seen("/m").len(), 1);
    // Within 60 s of the previous manual trigger.
    let r = refused(
        n.api("/integration/pull/trigger", json!({"integration_id": id}))
            .await,
    );
    assert_eq!((r.0, r.1.as_str()), (429, "RequestTooFrequently"), "{r:?}");
    // After the cooldown, but the pull still runs.
    n.advance_s(61);
    let r = refused(
        n.api("/integration/pull/trigger", json!({"integration_id": id}))
            .await,
    );
    assert_eq!(
        (r.0, r.1.as_str(), r.2.as_str()),
        (400, "InvalidParameter", "pull in progress")
    );
    // The scheduled pull that falls due meanwhile is skipped, not run beside it.
    assert_eq!(n.run_due().await, 0);
    assert_eq!(up.seen("/m").len(), 1);

    *up.hold.lock().unwrap() = None;
    gate.notify_one();
    let h = n.wait_history(id, 1).await;
    assert_eq!(h["items"][0]["trigger"], "manual");
    assert_eq!(h["items"][0]["status"], "success");
    // The skipped start is not made up for; the schedule was not shifted by the manual pull.
    assert_eq!(n.run_due().await, 0);
    n.advance_s(600);
    assert_eq!(n.run_due().await, 1);
    assert_eq!(up.seen("/m").len(), 2);

    // A manual trigger works again once nothing runs and 60 s have passed.
    ok(
        n.api("/integration/pull/trigger", json!({"integration_id": id}))
            .await,
    );
    let h = n.wait_history(id, 3).await;
    assert_eq!(h["items"][0]["trigger"], "manual");

    // Other integrations and unknown ids.
    let standard = ok(n
        .api("/integration/list", json!({"types": ["standard"]}))
        .await)["items"][0]["integration_id"]
        .clone();
    let r = refused(
        n.api(
            "/integration/pull/trigger",
            json!({"integration_id": standard}),
        )
        .await,
    );
    assert_eq!((r.0, r.1.as_str()), (400, "InvalidParameter"), "{r:?}");
    let r = refused(
        n.api(
            "/integration/pull/trigger",
            json!({"integration_id": 999_999}),
        )
        .await,
    );
    assert_eq!(r.1, "ResourceNotFound");
    let r = refused(n.api("/integration/pull/history", json!({})).await);
    assert_eq!(r.1, "InvalidParameter");
});

on_both_backends!(settings_are_checked_on_save, |url: String| async move {
    // spec: ING-220, ING-074
    let n = Node::start(&url).await;
    let cases = [
        (json!(null), "settings.url is required"),
        (
            json!({"url": "ftp://example.com/x"}),
            "settings.url must be an http or https URL",
        ),
        (
            json!({"url": "https://example.com/", "headers": {"Authorization": "Bearer x"}}),
            "settings.headers.Authorization is not allowed",
        ),
        (
            json!({"url": "https://example.com/", "body": "{}"}),
            "settings.body is only allowed with method POST",
        ),
        (
            json!({"url": "https://example.com/", "method": "POST", "body": "{\"t\": {{.NowTimeISO}}}"}),
            "settings.body must be valid JSON",
        ),
        (
            json!({"url": "https://example.com/", "timeout": 301}),
            "settings.timeout",
        ),
        (
            json!({"url": "https://example.com/", "cycle_seconds": 10}),
            "settings.cycle_seconds",
        ),
        (
            json!({"url": "https://example.com/", "pagination": {"param_name": "c"}}),
            "settings.pagination.next_value_path is required",
        ),
        (
            json!({"url": "https://example.com/", "pagination": {"next_value_path": "n", "param_name": "c", "inject_to": "body"}}),
            "requires method POST",
        ),
    ];
    for (settings, expected) in cases {
        let r = refused(
            n.api(
                "/integration/create",
                json!({"integration_name": "bad", "type": "http_pull", "kind": "dedicated",
                       "channel_id": n.channel, "settings": settings}),
            )
            .await,
        );
        assert_eq!((r.0, r.1.as_str()), (400, "InvalidParameter"), "{settings}");
        assert!(r.2.contains(expected), "{settings}: {}", r.2);
    }
    let listed = ok(n
        .api("/integration/list", json!({"types": ["http_pull"]}))
        .await);
    assert_eq!(listed["total"], 0, "nothing was created");

    // Update goes through the same checks and changes nothing when refused.
    let id = n.create(json!({"url": "https://example.com/a"})).await;
    let r = refused(
        n.api("/integration/update", json!({"integration_id": id, "settings": {"url": "https://example.com/b", "headers": {"Cookie": "x"}}}))
            .await,
    );
    assert!(r.2.contains("settings.headers.Cookie"), "{r:?}");
    let info = ok(n
        .api("/integration/info", json!({"integration_id": id}))
        .await);
    assert_eq!(info["settings"]["url"], "https://example.com/a");
    assert_eq!(info["settings"]["timeout"], 10, "defaults are stored");
    assert_eq!(info["type"], "http_pull");
});

on_both_backends!(
    shared_pull_integrations_are_routed,
    |url: String| async move {
        // spec: ING-231
        let up = Upstream::start().await;
        let n = Node::start(&url).await;
        let other = ok(n
            .api("/channel/create", json!({"channel_name": "Pulled"}))
            .await)["channel_id"]
            .as_i64()
            .unwrap();
        up.script(
            "/s",
            vec![Reply::Json(json!({"items": [item("s1", "Critical")]}))],
        );
        let created = ok(n
            .api(
                "/integration/create",
                json!({"integration_name": "shared pull", "type": "http_pull", "kind": "shared",
                   "default_channel_ids": [other], "settings": {"url": up.url("/s")}}),
            )
            .await);
        let id = created["integration_id"].as_i64().unwrap();
        assert_eq!(n.run_due().await, 1);
        assert_eq!(n.history(id).await["items"][0]["status"], "success");
        n.ts.drained().await;
        let incidents = n.ts.incidents().await;
        let inc = incidents
            .iter()
            .find(|i| i["title"] == "pulled s1")
            .expect("routed incident");
        assert_eq!(inc["channel_id"], other);
    }
);

on_both_backends!(
    shared_pull_without_any_route_fetches_nothing,
    |url: String| async move {
        // spec: ING-231, ING-010 — a shared pull integration whose route configuration names no
        // channel at all is not fetched; the pull is recorded as failed with the reason.
        let up = Upstream::start().await;
        let n = Node::start(&url).await;
        let target = ok(n
            .api("/channel/create", json!({"channel_name": "Pulled"}))
            .await)["channel_id"]
            .as_i64()
            .unwrap();
        up.script(
            "/none",
            vec![Reply::Json(json!({"items": [item("n1", "Critical")]}))],
        );
        let created = ok(n
            .api(
                "/integration/create",
                json!({"integration_name": "unrouted pull", "type": "http_pull", "kind": "shared",
                   "default_channel_ids": [target], "settings": {"url": up.url("/none")}}),
            )
            .await);
        let id = created["integration_id"].as_i64().unwrap();
        // Every target removed: no rule, empty default route.
        ok(n.api(
            "/route/upsert",
            json!({"integration_id": id, "version": 1, "cases": [], "default": {"channel_ids": []}}),
        )
        .await);
        assert_eq!(n.run_due().await, 1);
        let h = n.history(id).await;
        assert_eq!(h["items"][0]["status"], "failed", "{h}");
        assert_eq!(
            h["items"][0]["error"],
            "no route configured for this integration"
        );
        assert!(up.seen("/none").is_empty(), "the source was not fetched");
        n.ts.drained().await;
        assert!(
            n.ts.incidents()
                .await
                .iter()
                .all(|i| i["title"] != "pulled n1"),
            "nothing was ingested"
        );
    }
);

on_both_backends!(redirects_and_private_targets, |url: String| async move {
    // spec: ING-230
    let up = Upstream::start().await;
    let n = Node::start(&url).await;
    up.script("/r0", vec![Reply::Redirect("/r1".into())]);
    up.script("/r1", vec![Reply::Redirect("/r2".into())]);
    up.script("/r2", vec![Reply::Redirect("/r3".into())]);
    up.script(
        "/r3",
        vec![Reply::Json(json!({"items": [item("r", "Info")]}))],
    );
    let three = n.create(json!({"url": up.url("/r0")})).await;
    up.script("/x0", vec![Reply::Redirect("/x1".into())]);
    up.script("/x1", vec![Reply::Redirect("/x2".into())]);
    up.script("/x2", vec![Reply::Redirect("/x3".into())]);
    up.script("/x3", vec![Reply::Redirect("/x4".into())]);
    let four = n.create(json!({"url": up.url("/x0")})).await;
    assert_eq!(n.run_due().await, 2);
    let h = n.history(three).await;
    assert_eq!(
        (
            h["items"][0]["status"].as_str(),
            h["items"][0]["items_accepted"].as_i64()
        ),
        (Some("success"), Some(1)),
        "{h}"
    );
    let h = n.history(four).await;
    assert_eq!(h["items"][0]["status"], "failed");
    assert_eq!(h["items"][0]["error"], "too many redirects");
    assert!(up.seen("/x4").is_empty());
});

on_both_backends!(private_targets_can_be_denied, |url: String| async move {
    // spec: ING-230 — with deny_private_targets the loopback server is refused before any
    // request, by address and by name.
    let up = Upstream::start().await;
    let n = Node::start_with(&url, |c| c.pull.deny_private_targets = true).await;
    let id = n.create(json!({"url": up.url("/p")})).await;
    let named = n
        .create(json!({"url": up.url("/p").replace("127.0.0.1", "localhost")}))
        .await;
    assert_eq!(n.run_due().await, 2);
    for i in [id, named] {
        let h = n.history(i).await;
        assert_eq!(h["items"][0]["status"], "failed", "{h}");
        assert_eq!(h["items"][0]["error"], "URL access denied");
    }
    assert!(up.seen("/p").is_empty());
});
