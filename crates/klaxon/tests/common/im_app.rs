//! What the IM app tests (WeCom, DingTalk) share: a fake platform API that records every
//! request and answers through the test's own function, and a node whose delivery the test
//! drives by hand, with an injected clock.

use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use klaxon_notify::{Deliverer, NotifyConfig};
use klaxon_server::{Clock, Config, Server};
use serde_json::{Value, json};

use super::{ManualClock, test_config, wall_ms};

/// One request the fake platform received.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Req {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// A query argument.
    pub fn arg(&self, name: &str) -> String {
        let q: Vec<(String, String)> = serde_urlencoded::from_str(&self.query).unwrap_or_default();
        q.into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    }
}

/// How a fake answers a request: (status, JSON body). `S` is the test's own state.
pub type Answer<S> = fn(&FakeApi<S>, &Req) -> (StatusCode, Value);

/// A local HTTP server standing in for a platform's API.
pub struct FakeApi<S> {
    pub reqs: Arc<Mutex<Vec<Req>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    pub state: Arc<S>,
    answer: Answer<S>,
}

impl<S> Clone for FakeApi<S> {
    fn clone(&self) -> Self {
        FakeApi {
            reqs: self.reqs.clone(),
            addr: self.addr.clone(),
            state: self.state.clone(),
            answer: self.answer,
        }
    }
}

impl<S: Send + Sync + 'static> FakeApi<S> {
    pub async fn start(state: S, answer: Answer<S>) -> FakeApi<S> {
        let fake = FakeApi {
            reqs: Arc::default(),
            addr: Arc::default(),
            state: Arc::new(state),
            answer,
        };
        let app = axum::Router::new()
            .fallback(handle::<S>)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *fake.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        fake
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr.lock().unwrap().unwrap())
    }

    /// The requests recorded since the last call.
    pub fn take(&self) -> Vec<Req> {
        std::mem::take(&mut *self.reqs.lock().unwrap())
    }
}

async fn handle<S: Send + Sync + 'static>(
    State(fake): State<FakeApi<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let req = Req {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers,
        body,
    };
    let (status, answer) = (fake.answer)(&fake, &req);
    fake.reqs.lock().unwrap().push(req);
    (status, answer.to_string())
}

/// A node with its workers off: the test delivers by hand at the clock's time.
pub struct Node {
    pub server: Server,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub notify: NotifyConfig,
    pub owner: i64,
    pub channel: i64,
    pub account: i64,
}

impl Node {
    pub async fn start(dir: &std::path::Path, url: &str) -> Node {
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let notify = NotifyConfig {
            allow_private_targets: true,
            ..NotifyConfig::default()
        };
        let mut config: Config = test_config(dir, url);
        config.workers.delivery = false;
        config.workers.timers = false;
        config.notify = notify.clone();
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let b = server.bootstrap().clone();
        Node {
            owner: b.owner_member_id,
            channel: b.channel_id,
            account: b.account_id,
            server,
            http: reqwest::Client::new(),
            clock,
            notify,
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}{path}?app_key={}",
                self.server.base_url(),
                self.server.bootstrap().app_key
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    pub async fn api(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(path, body).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.get("error").is_none(), "{path}: {body}");
        body["data"].clone()
    }

    /// Calls `path` expecting `InvalidParameter`; answers its message.
    pub async fn invalid(&self, path: &str, body: Value) -> String {
        let (status, body) = self.call(path, body).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "InvalidParameter", "{body}");
        body["error"]["message"].as_str().unwrap().to_string()
    }

    pub async fn deliver(&self) -> klaxon_notify::Round {
        Deliverer::new(
            self.server.store().clone(),
            self.notify.clone(),
            self.server.base_url(),
            "d1",
        )
        .unwrap()
        .drain(self.now())
        .await
        .unwrap()
    }

    /// Pushes a Critical alert and waits for its incident (ingestion runs on its own).
    pub async fn incident(&self, key: &str, title: &str) -> String {
        let push = format!(
            "{}/event/push/alert/standard?integration_key={}",
            self.server.base_url(),
            self.server.bootstrap().integration_key
        );
        let resp = self
            .http
            .post(push)
            .json(&json!({"event_status": "Critical", "title_rule": title, "alert_key": key}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let now = self.now() / 1000;
        for _ in 0..500 {
            let data = self
                .api(
                    "/incident/list",
                    json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 100}),
                )
                .await;
            if let Some(inc) = data["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["dedup_key"] == key)
            {
                return inc["incident_id"].as_str().unwrap().to_string();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no incident for {key}");
    }

    pub async fn info(&self, incident_id: &str) -> Value {
        self.api("/incident/info", json!({"incident_id": incident_id}))
            .await
    }

    /// The incident's timeline entries of `kind`, oldest first.
    pub async fn feed(&self, incident_id: &str, kind: &str) -> Vec<Value> {
        let data = self
            .api(
                "/incident/feed",
                json!({"incident_id": incident_id, "limit": 100, "asc": true}),
            )
            .await;
        data["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }

    pub async fn states(&self, incident_id: &str) -> Vec<klaxon_store::DeliveryState> {
        self.server
            .store()
            .delivery_states(self.account, incident_id)
            .await
            .unwrap()
    }

    pub async fn link(&self, iid: i64, person: i64, user: &str) {
        self.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": person, "im_user_id": user}),
        )
        .await;
    }

    /// An escalation rule that sends Critical incidents to `persons` over `channel` only.
    pub async fn direct_rule(&self, persons: &[i64], channel: &str) {
        self.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": self.channel, "rule_name": "Primary",
                "layers": [{"target": {"person_ids": persons,
                                       "by": {"follow_preference": false, "critical": [channel]}},
                            "escalate_window": 30}],
            }),
        )
        .await;
    }
}
