//! The Feishu/Lark app channel end to end (response.md §2.19 RSP-286/287/289/300/302, §2.20
//! RSP-310/311/312, RSP-045; docs/feishu.md): a Feishu integration is created and a member
//! linked over the Open API, escalation rules send `feishu_app` direct messages and group
//! chat cards, the delivery engine calls a fake Feishu open platform (a local HTTP server that
//! records every request), and callbacks on the "message card request URL" (plain and
//! encrypted, new and old card callbacks, URL checks, the chat-disbanded event) act on the
//! incident as the linked member and answer with the updated card. Time is an injected clock.
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use common::{ManualClock, test_config, wall_ms};
use klaxon_notify::{Deliverer, NotifyConfig};
use klaxon_server::{Clock, Config, Server};
use serde_json::{Value, json};

const APP_ID: &str = "cli_a1b2c3d4e5f60001";
const APP_SECRET: &str = "s3cretAppSecretForTests0001";
const VERIFICATION_TOKEN: &str = "vToken0123456789abcdef";
const ENCRYPT_KEY: &str = "encKey0123456789abcdef";
const TENANT_TOKEN: &str = "t-g1044qeGEDXTB6NDJOGV4JQX";
const OWNER_OPEN_ID: &str = "ou_7d8a6e6df7621556ce0d21922b676706";

// ---- a fake Feishu open platform ----

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    query: String,
    auth: String,
    body: String,
}

impl Req {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The card a send or an update carried (its `content`, a JSON string).
    fn card(&self) -> Value {
        serde_json::from_str(self.json()["content"].as_str().unwrap()).unwrap()
    }
}

#[derive(Clone, Default)]
struct FakeFeishu {
    reqs: Arc<Mutex<Vec<Req>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    sent: Arc<AtomicI64>,
}

impl FakeFeishu {
    async fn start() -> FakeFeishu {
        let fake = FakeFeishu::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *fake.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        fake
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr.lock().unwrap().unwrap())
    }

    /// The requests recorded since the last call.
    fn take(&self) -> Vec<Req> {
        std::mem::take(&mut *self.reqs.lock().unwrap())
    }
}

/// Answers like Feishu: the token endpoint checks the app's credentials; sends and updates
/// check the tenant access token; a send answers a new `om_<n>` message id.
async fn handle(
    State(fake): State<FakeFeishu>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let path = uri.path().to_string();
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let bearer_ok = auth == format!("Bearer {TENANT_TOKEN}");
    let (status, answer) = if path == "/open-apis/auth/v3/tenant_access_token/internal" {
        if v["app_id"] == APP_ID && v["app_secret"] == APP_SECRET {
            (
                200,
                json!({"code": 0, "msg": "ok", "tenant_access_token": TENANT_TOKEN, "expire": 7200}),
            )
        } else {
            (200, json!({"code": 10014, "msg": "app secret invalid"}))
        }
    } else if !bearer_ok {
        (
            400,
            json!({"code": 99991663, "msg": "Invalid access token for authorization."}),
        )
    } else if path == "/open-apis/im/v1/messages" && method == Method::POST {
        if v["receive_id"] == "oc_gone" {
            (
                400,
                json!({"code": 230002, "msg": "Bot/User can NOT be out of the chat."}),
            )
        } else {
            let n = fake.sent.fetch_add(1, Ordering::SeqCst) + 1;
            (
                200,
                json!({"code": 0, "msg": "success", "data": {"message_id": format!("om_{n}")}}),
            )
        }
    } else if path.starts_with("/open-apis/im/v1/messages/") && method == Method::PATCH {
        (200, json!({"code": 0, "msg": "success", "data": {}}))
    } else {
        (404, json!({"code": 404, "msg": "not found"}))
    };
    fake.reqs.lock().unwrap().push(Req {
        method: method.to_string(),
        path,
        query: uri.query().unwrap_or("").to_string(),
        auth,
        body,
    });
    (StatusCode::from_u16(status).unwrap(), answer.to_string())
}

// ---- a node whose delivery the test drives ----

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    notify: NotifyConfig,
    owner: i64,
    channel: i64,
    account: i64,
}

impl Node {
    async fn start(dir: &std::path::Path, url: &str) -> Node {
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

    fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn call(&self, path: &str, body: Value) -> (u16, Value) {
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

    async fn api(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(path, body).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.get("error").is_none(), "{path}: {body}");
        body["data"].clone()
    }

    async fn invalid(&self, path: &str, body: Value) -> String {
        let (status, body) = self.call(path, body).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "InvalidParameter", "{body}");
        body["error"]["message"].as_str().unwrap().to_string()
    }

    async fn deliver(&self) -> klaxon_notify::Round {
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

    async fn incident(&self, key: &str, title: &str) -> String {
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

    async fn info(&self, incident_id: &str) -> Value {
        self.api("/incident/info", json!({"incident_id": incident_id}))
            .await
    }

    async fn feed(&self, incident_id: &str, kind: &str) -> Vec<Value> {
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

    async fn states(&self, incident_id: &str) -> Vec<klaxon_store::DeliveryState> {
        self.server
            .store()
            .delivery_states(self.account, incident_id)
            .await
            .unwrap()
    }

    async fn feishu_integration(&self, fake: &FakeFeishu, encrypt_key: &str) -> i64 {
        let created = self
            .api(
                "/im/integration/create",
                json!({"type": "feishu", "name": "Ops Feishu", "app_id": APP_ID,
                       "app_secret": APP_SECRET, "verification_token": VERIFICATION_TOKEN,
                       "encrypt_key": encrypt_key, "api_base": fake.base()}),
            )
            .await;
        created["integration_id"].as_i64().unwrap()
    }

    async fn link(&self, iid: i64, person: i64, open_id: &str) {
        self.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": person, "im_user_id": open_id}),
        )
        .await;
    }

    async fn template(&self) -> String {
        self.api(
            "/template/create",
            json!({"template_name": "Feishu", "feishu_app": "Title: {{.Title}}\n\n  \nSeverity: {{.IncidentSeverity}}\n"}),
        )
        .await["template_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// POSTs `body` to the integration's callback URL; answers (status, JSON body or Null).
    async fn callback(&self, iid: i64, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!(
                "{}/im/feishu/callback/{iid}",
                self.server.base_url()
            ))
            .header("Content-Type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.body(body.to_string()).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A `card.action.trigger` callback (schema 2.0) for a control of message `message_id`.
    async fn press(
        &self,
        iid: i64,
        token: &str,
        open_id: &str,
        message_id: &str,
        action: Value,
    ) -> (u16, Value) {
        let body = json!({
            "schema": "2.0",
            "header": {"event_id": "ev-1", "token": token, "create_time": "1700000000000",
                       "event_type": "card.action.trigger", "tenant_key": "tk-1", "app_id": APP_ID},
            "event": {"operator": {"tenant_key": "tk-1", "open_id": open_id},
                      "token": "c-update-token", "action": action, "host": "im_message",
                      "context": {"open_message_id": message_id, "open_chat_id": "oc_dm"}},
        });
        self.callback(iid, &body.to_string(), &[]).await
    }
}

fn plain(text: &str) -> Value {
    json!({"tag": "plain_text", "content": text})
}

fn md(text: &str) -> Value {
    json!({"tag": "div", "text": {"tag": "lark_md", "content": text}})
}

/// The card as RSP-286/RSP-311 want it, written out in full.
#[allow(clippy::too_many_arguments)]
fn expected_card(
    inc: &str,
    header: &str,
    state_line: &str,
    mentions: Option<&str>,
    body: &str,
    note: Option<&str>,
    closed: bool,
    detail: &str,
) -> Value {
    let mut elements = vec![md(state_line)];
    if let Some(m) = mentions {
        elements.push(md(m));
    }
    elements.push(md(body));
    if let Some(n) = note {
        elements.push(json!({"tag": "note", "elements": [plain(n)]}));
    }
    let details =
        json!({"tag": "button", "text": plain("Details"), "type": "default", "url": detail});
    let actions = if closed {
        json!([details])
    } else {
        json!([
            {"tag": "button", "text": plain("Acknowledge"), "type": "primary",
             "value": {"action": "ack", "incident_id": inc}},
            {"tag": "button", "text": plain("Close"), "type": "danger",
             "value": {"action": "close", "incident_id": inc}},
            {"tag": "button", "text": plain("Snooze 2 hours"), "type": "default",
             "value": {"action": "snooze", "incident_id": inc, "minutes": "120"}},
            {"tag": "select_static", "placeholder": plain("Snooze longer"),
             "value": {"action": "snooze_menu", "incident_id": inc},
             "options": [
                {"text": plain("4 hours"), "value": "240"},
                {"text": plain("12 hours"), "value": "720"},
                {"text": plain("24 hours"), "value": "1440"},
             ]},
            details,
        ])
    };
    elements.push(json!({"tag": "action", "actions": actions}));
    json!({
        "config": {"wide_screen_mode": true, "update_multi": true},
        "header": {"template": if closed { "green" } else { "red" }, "title": plain(header)},
        "elements": elements,
    })
}

fn snooze_end(ms: i64) -> String {
    jiff::ZonedDateTime::new(
        jiff::Timestamp::from_millisecond(ms).unwrap(),
        jiff::tz::TimeZone::UTC,
    )
    .strftime("%Y-%m-%d %H:%M %Z")
    .to_string()
}

const BODY: &str = "Title: db down &amp; out\nSeverity: Critical";

// ---- the tests ----

on_both_backends!(
    direct_cards_are_sent_with_a_cached_token_and_their_buttons_act,
    |url: String| async move {
        // spec: RSP-286 (card: colour, INC #num, title, template body, buttons), RSP-453,
        // RSP-347, RSP-281 (app_not_linked), RSP-302 (App ID/Secret, Verification Token),
        // RSP-311 (buttons, from = card), RSP-045, RSP-041, RSP-310, RSP-036, RSP-050
        let fake = FakeFeishu::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;

        // The integration: credentials checked and never answered in full.
        let base = json!({"type": "feishu", "name": "F", "app_id": APP_ID, "app_secret": APP_SECRET,
                          "verification_token": VERIFICATION_TOKEN});
        let without = |k: &str| {
            let mut b = base.clone();
            b.as_object_mut().unwrap().remove(k);
            b
        };
        let with = |k: &str, v: &str| {
            let mut b = base.clone();
            b[k] = json!(v);
            b
        };
        for (body, field) in [
            (without("app_id"), "app_id"),
            (with("app_id", "xoxb-1"), "app_id"),
            (without("app_secret"), "app_secret"),
            (without("verification_token"), "verification_token"),
            (with("encrypt_key", "has space"), "encrypt_key"),
            (with("api_base", "ftp://open.feishu.cn"), "api_base"),
            (with("api_base", "https://open.feishu.cn/x?y=1"), "api_base"),
            (with("type", "line"), "type"),
        ] {
            let msg = node.invalid("/im/integration/create", body).await;
            assert!(msg.starts_with(field), "{field}: {msg}");
        }
        assert_eq!(
            node.api("/im/integration/list", json!({})).await["total"],
            0
        );
        let created = node
            .api(
                "/im/integration/create",
                json!({"type": "feishu", "name": "Ops Feishu", "app_id": APP_ID,
                       "app_secret": APP_SECRET, "verification_token": VERIFICATION_TOKEN,
                       "api_base": format!("{}/", fake.base())}),
            )
            .await;
        let iid = created["integration_id"].as_i64().unwrap();
        assert_eq!(created["app_id"], APP_ID);
        assert_eq!(created["app_secret"], "…0001");
        assert_eq!(created["verification_token"], "…cdef");
        assert_eq!(created["encrypt_key"], "");
        assert_eq!(created["api_base"], fake.base());
        assert_eq!(
            created["callback_url"],
            format!("{}/im/feishu/callback/{iid}", node.server.base_url())
        );
        let listed = node
            .api("/im/integration/list", json!({}))
            .await
            .to_string();
        assert!(!listed.contains(APP_SECRET) && !listed.contains(VERIFICATION_TOKEN));

        // Unlinked: the direct message fails with app_not_linked and Feishu is not called.
        let tid = node.template().await;
        node.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": node.channel, "rule_name": "Primary", "template_id": tid,
                "layers": [{"target": {"person_ids": [node.owner],
                                       "by": {"follow_preference": false, "critical": ["feishu_app"]}},
                            "escalate_window": 30}],
            }),
        )
        .await;
        let first = node.incident("db-0", "db down & out").await;
        node.deliver().await;
        let st = node.states(&first).await;
        let row = st.iter().find(|s| s.channel == "feishu_app").unwrap();
        assert_eq!(
            (row.status.as_str(), row.failed_reason.as_str()),
            ("failed", "app_not_linked")
        );
        assert!(fake.take().is_empty());

        // Linking: an open_id, one member per Feishu user.
        let msg = node
            .invalid(
                "/im/person/link",
                json!({"integration_id": iid, "person_id": node.owner, "im_user_id": "U024BE7LH"}),
            )
            .await;
        assert!(msg.starts_with("im_user_id"), "{msg}");
        node.link(iid, node.owner, OWNER_OPEN_ID).await;

        // Linked: a token is obtained once, then the card is sent to the open_id.
        let inc = node.incident("db-1", "db down & out").await;
        node.deliver().await;
        let st = node.states(&inc).await;
        assert_eq!(st.len(), 1, "{st:?}");
        assert_eq!(st[0].status, "sent");
        assert_eq!(st[0].provider_message_id, "om_1");
        let reqs = fake.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(
            reqs[0].path,
            "/open-apis/auth/v3/tenant_access_token/internal"
        );
        assert_eq!(
            reqs[0].json(),
            json!({"app_id": APP_ID, "app_secret": APP_SECRET})
        );
        let send = &reqs[1];
        assert_eq!(
            (send.method.as_str(), send.path.as_str()),
            ("POST", "/open-apis/im/v1/messages")
        );
        assert_eq!(send.query, "receive_id_type=open_id");
        assert_eq!(send.auth, format!("Bearer {TENANT_TOKEN}"));
        let sent = send.json();
        assert_eq!(sent["receive_id"], OWNER_OPEN_ID);
        assert_eq!(sent["msg_type"], "interactive");
        assert_eq!(sent["uuid"], st[0].rid);
        let info = node.info(&inc).await;
        let num = info["num"].as_str().unwrap().to_string();
        let outlier = if info["frequency"] == "rare" {
            "[Outlier] "
        } else {
            ""
        };
        let header = format!("{outlier}INC #{num} db down & out");
        let detail = format!("{}/incident/detail/{inc}", node.server.base_url());
        assert_eq!(
            send.card(),
            expected_card(
                &inc,
                &header,
                "**Critical** · Triggered",
                None,
                BODY,
                None,
                false,
                &detail
            )
        );

        // The token is reused for the next send, until shortly before it ends.
        let inc2 = node.incident("db-2", "db down & out").await;
        node.deliver().await;
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].path, "/open-apis/im/v1/messages");
        assert_eq!(node.states(&inc2).await[0].status, "sent");
        node.clock.0.fetch_add(7_200_000, Ordering::SeqCst);
        let inc3 = node.incident("db-3", "db down & out").await;
        node.deliver().await;
        let paths: Vec<String> = fake.take().into_iter().map(|r| r.path).collect();
        assert_eq!(
            paths,
            [
                "/open-apis/auth/v3/tenant_access_token/internal",
                "/open-apis/im/v1/messages"
            ]
        );
        assert_eq!(node.states(&inc3).await[0].status, "sent");

        // A wrong Verification Token is refused (401) and changes nothing.
        let ack = json!({"value": {"action": "ack", "incident_id": inc}, "tag": "button"});
        let (status, _) = node
            .press(iid, "wrong-token", OWNER_OPEN_ID, "om_1", ack.clone())
            .await;
        assert_eq!(status, 401);
        // An unknown integration looks the same.
        let (status, _) = node
            .press(
                iid + 1,
                VERIFICATION_TOKEN,
                OWNER_OPEN_ID,
                "om_1",
                ack.clone(),
            )
            .await;
        assert_eq!(status, 401);
        assert_eq!(node.info(&inc).await["progress"], "Triggered");

        // An unlinked Feishu user gets an error toast; nothing changes.
        let (status, answer) = node
            .press(iid, VERIFICATION_TOKEN, "ou_nobody", "om_1", ack.clone())
            .await;
        assert_eq!(status, 200);
        assert_eq!(answer["toast"]["type"], "error");
        assert!(
            answer["toast"]["content"]
                .as_str()
                .unwrap()
                .contains("not linked"),
            "{answer}"
        );
        assert!(answer.get("card").is_none());
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(node.feed(&inc, "i_ack").await.is_empty());
        assert!(fake.take().is_empty());

        // Acknowledge: as the owner, from the card; the answer is the updated card.
        let (status, answer) = node
            .press(iid, VERIFICATION_TOKEN, OWNER_OPEN_ID, "om_1", ack.clone())
            .await;
        assert_eq!(status, 200);
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        let acks = node.feed(&inc, "i_ack").await;
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["creator_id"], node.owner);
        assert_eq!(acks[0]["detail"]["from"], "card");
        assert_eq!(
            answer["toast"],
            json!({"type": "success", "content": "Acknowledged by Owner"})
        );
        assert_eq!(answer["card"]["type"], "raw");
        assert_eq!(
            answer["card"]["data"],
            expected_card(
                &inc,
                &header,
                "**Critical** · Processing",
                None,
                BODY,
                Some("Acknowledged by Owner"),
                false,
                &detail
            )
        );
        // The pressed card is the only card: nothing else is patched.
        assert!(fake.take().is_empty());

        // Snooze: 2 hours with one click, then 4, 12 and 24 hours from the menu.
        let presses = [
            (
                json!({"value": {"action": "snooze", "incident_id": inc, "minutes": "120"}, "tag": "button"}),
                120,
            ),
            (
                json!({"value": {"action": "snooze_menu", "incident_id": inc}, "tag": "select_static", "option": "240"}),
                240,
            ),
            (
                json!({"value": {"action": "snooze_menu", "incident_id": inc}, "tag": "select_static", "option": "720"}),
                720,
            ),
            (
                json!({"value": {"action": "snooze_menu", "incident_id": inc}, "tag": "select_static", "option": "1440"}),
                1440,
            ),
        ];
        for (action, minutes) in presses {
            node.clock.0.fetch_add(60_000, Ordering::SeqCst);
            let now = node.now();
            let (status, answer) = node
                .press(iid, VERIFICATION_TOKEN, OWNER_OPEN_ID, "om_1", action)
                .await;
            assert_eq!(status, 200);
            let until = now + minutes * 60_000;
            assert_eq!(
                node.info(&inc).await["snoozed_before"],
                until / 1000,
                "{minutes} min"
            );
            let snoozes = node.feed(&inc, "i_snooze").await;
            assert_eq!(snoozes.last().unwrap()["detail"]["minutes"], minutes);
            assert_eq!(snoozes.last().unwrap()["creator_id"], node.owner);
            let card = &answer["card"]["data"];
            assert_eq!(
                card["elements"][0]["text"]["content"],
                format!(
                    "**Critical** · Processing · Snoozed until {}",
                    snooze_end(until)
                )
            );
            assert_eq!(
                card["elements"][2]["elements"][0]["content"],
                format!("Snoozed for {} hours by Owner", minutes / 60)
            );
        }
        // A duration the card does not offer does nothing.
        let before = node.info(&inc).await["snoozed_before"].clone();
        let (status, answer) = node
            .press(
                iid,
                VERIFICATION_TOKEN,
                OWNER_OPEN_ID,
                "om_1",
                json!({"value": {"action": "snooze_menu", "incident_id": inc}, "option": "60"}),
            )
            .await;
        assert_eq!((status, answer), (200, json!({})));
        assert_eq!(node.info(&inc).await["snoozed_before"], before);

        // Close: the card keeps only the Details link.
        let close = json!({"value": {"action": "close", "incident_id": inc}, "tag": "button"});
        let (status, answer) = node
            .press(iid, VERIFICATION_TOKEN, OWNER_OPEN_ID, "om_1", close)
            .await;
        assert_eq!(status, 200);
        assert_eq!(node.info(&inc).await["progress"], "Closed");
        let closes = node.feed(&inc, "i_rslv").await;
        assert_eq!(closes.len(), 1);
        assert_eq!(closes[0]["detail"]["from"], "card");
        assert_eq!(
            answer["card"]["data"],
            expected_card(
                &inc,
                &header,
                "**Critical** · Closed",
                None,
                BODY,
                Some("Closed by Owner"),
                true,
                &detail
            )
        );
        // Acknowledging a closed incident is refused: an error toast, nothing recorded.
        let (status, answer) = node
            .press(iid, VERIFICATION_TOKEN, OWNER_OPEN_ID, "om_1", ack)
            .await;
        assert_eq!(status, 200);
        assert_eq!(answer["toast"]["type"], "error");
        assert!(
            answer["toast"]["content"]
                .as_str()
                .unwrap()
                .starts_with("Acknowledge failed:"),
            "{answer}"
        );
        assert_eq!(node.feed(&inc, "i_ack").await.len(), 1);
        node.server.shutdown().await;
    }
);

on_both_backends!(
    url_checks_old_callbacks_and_encrypted_callbacks_are_verified,
    |url: String| async move {
        // spec: RSP-302 (message card request URL; Verification Token and Encrypt Key),
        // RSP-310, RSP-311 (from = card), RSP-036
        let fake = FakeFeishu::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let plain_iid = node.feishu_integration(&fake, "").await;
        let enc_iid = node.feishu_integration(&fake, ENCRYPT_KEY).await;
        node.link(plain_iid, node.owner, OWNER_OPEN_ID).await;
        node.link(enc_iid, node.owner, OWNER_OPEN_ID).await;
        let info = node
            .api("/im/integration/info", json!({"integration_id": enc_iid}))
            .await;
        assert_eq!(info["encrypt_key"], "…cdef");

        // The URL check: the challenge is answered with the right token only.
        let check = |token: &str| {
            json!({"challenge": "ch-123", "token": token, "type": "url_verification"}).to_string()
        };
        assert_eq!(
            node.callback(plain_iid, &check(VERIFICATION_TOKEN), &[])
                .await,
            (200, json!({"challenge": "ch-123"}))
        );
        assert_eq!(node.callback(plain_iid, &check("nope"), &[]).await.0, 401);
        // Encrypted: decrypted with the Encrypt Key; a plain request to it is refused, and
        // so is one encrypted with another key.
        let enc = |key: &str, body: &str| {
            json!({"encrypt": klaxon_notify::feishu::encrypt(key, body.as_bytes(), [9u8; 16])})
                .to_string()
        };
        assert_eq!(
            node.callback(enc_iid, &enc(ENCRYPT_KEY, &check(VERIFICATION_TOKEN)), &[])
                .await,
            (200, json!({"challenge": "ch-123"}))
        );
        assert_eq!(
            node.callback(enc_iid, &check(VERIFICATION_TOKEN), &[])
                .await
                .0,
            401
        );
        assert_eq!(
            node.callback(
                enc_iid,
                &enc("another key", &check(VERIFICATION_TOKEN)),
                &[]
            )
            .await
            .0,
            401
        );
        assert_eq!(node.callback(enc_iid, "not json", &[]).await.0, 401);

        // An encrypted card action acknowledges as the linked member.
        let inc = node.incident("enc-1", "db down & out").await;
        let press = json!({
            "schema": "2.0",
            "header": {"event_id": "ev-2", "token": VERIFICATION_TOKEN, "event_type": "card.action.trigger",
                       "app_id": APP_ID, "tenant_key": "tk-1", "create_time": "1700000000000"},
            "event": {"operator": {"open_id": OWNER_OPEN_ID}, "token": "c-1", "host": "im_message",
                      "action": {"value": {"action": "ack", "incident_id": inc}, "tag": "button"},
                      "context": {"open_message_id": "om_x", "open_chat_id": "oc_x"}},
        })
        .to_string();
        let (status, answer) = node
            .callback(enc_iid, &enc("another key", &press), &[])
            .await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        let (status, answer) = node.callback(enc_iid, &enc(ENCRYPT_KEY, &press), &[]).await;
        assert_eq!(status, 200);
        assert_eq!(answer["toast"]["type"], "success", "{answer}");
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        let acks = node.feed(&inc, "i_ack").await;
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["detail"]["from"], "card");

        // The old card callback (`card.action.trigger_v1`) is proved by X-Lark-Signature over
        // the raw body; its answer is the card itself.
        let old = json!({"open_id": OWNER_OPEN_ID, "user_id": "u1", "open_message_id": "om_y",
                         "tenant_key": "tk-1", "token": "c-2",
                         "action": {"value": {"action": "close", "incident_id": inc}, "tag": "button"}})
        .to_string();
        let ts = (node.now() / 1000).to_string();
        let headers = |token: &str| {
            vec![
                ("X-Lark-Request-Timestamp", ts.clone()),
                ("X-Lark-Request-Nonce", "n-1".to_string()),
                (
                    "X-Lark-Signature",
                    klaxon_notify::feishu::card_signature(token, &ts, "n-1", old.as_bytes()),
                ),
            ]
        };
        assert_eq!(
            node.callback(plain_iid, &old, &headers("nope")).await.0,
            401
        );
        assert_eq!(node.callback(plain_iid, &old, &[]).await.0, 401);
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        let (status, answer) = node
            .callback(plain_iid, &old, &headers(VERIFICATION_TOKEN))
            .await;
        assert_eq!(status, 200);
        assert_eq!(node.info(&inc).await["progress"], "Closed");
        assert_eq!(answer["header"]["template"], "green", "{answer}");
        assert_eq!(
            answer["elements"].as_array().unwrap().last().unwrap()["actions"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let closes = node.feed(&inc, "i_rslv").await;
        assert_eq!(closes[0]["detail"]["from"], "card");
        // Nothing was sent to Feishu: no card of this incident was delivered.
        assert!(fake.take().is_empty());
        node.server.shutdown().await;
    }
);

on_both_backends!(
    group_chats_get_the_card_with_mentions_and_disbanded_chats_stop,
    |url: String| async move {
        // spec: RSP-288 (group chats get the same card), RSP-289 (linked users as
        // <at id=…></at>, others as plain @name), RSP-310, RSP-312 (other cards patched),
        // RSP-300 (chat_unavailable: disbanded, or the bot is not in the chat)
        let fake = FakeFeishu::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let iid = node.feishu_integration(&fake, "").await;
        let bo = node
            .api(
                "/member/invite",
                json!({"members": [{"email": "bo@example.com", "member_name": "Bo", "role_ids": [6]}]}),
            )
            .await["items"][0]["member_id"]
            .as_i64()
            .unwrap();
        node.server
            .store()
            .create_session(node.account, bo, 60_000, node.now())
            .await
            .unwrap();
        node.link(iid, node.owner, OWNER_OPEN_ID).await;
        let tid = node.template().await;
        let hook = |chats: Value| json!({"type": "feishu_app", "settings": {"integration_id": iid, "chat_ids": chats}});
        node.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": node.channel, "rule_name": "Chats", "template_id": tid,
                "layers": [{"target": {"person_ids": [node.owner, bo],
                                       "webhooks": [hook(json!(["oc_ops", "oc_dev"])), hook(json!(["oc_gone"]))]},
                            "escalate_window": 30}],
            }),
        )
        .await;
        let inc = node.incident("grp-1", "db down & out").await;
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 1), "{round:?}");
        let st = node.states(&inc).await;
        let ok = st.iter().find(|s| s.status == "sent").unwrap();
        assert_eq!(ok.person_id, 0);
        assert_eq!(ok.provider_message_id, "om_1 om_2");
        let gone = st.iter().find(|s| s.status == "failed").unwrap();
        assert_eq!(gone.failed_reason, "chat_unavailable");

        let info = node.info(&inc).await;
        let num = info["num"].as_str().unwrap().to_string();
        let header = format!("[Outlier] INC #{num} db down & out");
        assert_eq!(info["frequency"], "rare");
        let detail = format!("{}/incident/detail/{inc}", node.server.base_url());
        // The two entries may be sent at the same time: order the sends by chat.
        let mut reqs: Vec<Req> = fake
            .take()
            .into_iter()
            .filter(|r| r.path == "/open-apis/im/v1/messages")
            .collect();
        reqs.sort_by_key(|r| r.json()["receive_id"].as_str().unwrap().to_string());
        assert_eq!(reqs.len(), 3, "{reqs:?}");
        let want = expected_card(
            &inc,
            &header,
            "**Critical** · Triggered",
            Some(&format!("<at id={OWNER_OPEN_ID}></at> @Bo")),
            BODY,
            None,
            false,
            &detail,
        );
        for (req, chat) in reqs.iter().zip(["oc_dev", "oc_gone", "oc_ops"]) {
            assert_eq!(req.query, "receive_id_type=chat_id");
            assert_eq!(req.json()["receive_id"], chat);
            assert_eq!(req.card(), want);
        }
        // Each chat's send has its own de-duplication key.
        let mut keys: Vec<String> = reqs.iter().map(|r| r.json()["uuid"].to_string()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 3, "{keys:?}");

        // The owner acknowledges on the card in oc_ops: the answer replaces it at once, and
        // the outbox's refresh row patches every card of the incident (the card in oc_dev
        // too) to the same state.
        let ack = json!({"value": {"action": "ack", "incident_id": inc}, "tag": "button"});
        let (status, answer) = node
            .press(iid, VERIFICATION_TOKEN, OWNER_OPEN_ID, "om_1", ack)
            .await;
        assert_eq!(status, 200);
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        assert!(fake.take().is_empty());
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let reqs = fake.take();
        let mut paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "/open-apis/im/v1/messages/om_1",
                "/open-apis/im/v1/messages/om_2"
            ],
            "{reqs:?}"
        );
        for req in &reqs {
            assert_eq!(req.method, "PATCH");
            assert_eq!(req.auth, format!("Bearer {TENANT_TOKEN}"));
            assert_eq!(req.card(), answer["card"]["data"]);
            assert_eq!(
                req.card()["elements"][0]["text"]["content"],
                "**Critical** · Processing"
            );
        }

        // oc_dev is disbanded: the event is verified like every callback, then later sends
        // to it fail with chat_unavailable without calling Feishu.
        let disbanded = |token: &str| {
            json!({"schema": "2.0",
                   "header": {"event_id": "ev-9", "token": token, "event_type": "im.chat.disbanded_v1",
                              "app_id": APP_ID, "tenant_key": "tk-1", "create_time": "1700000000000"},
                   "event": {"chat_id": "oc_dev", "operator_id": {"open_id": OWNER_OPEN_ID}}})
            .to_string()
        };
        assert_eq!(node.callback(iid, &disbanded("nope"), &[]).await.0, 401);
        assert_eq!(
            node.callback(iid, &disbanded(VERIFICATION_TOKEN), &[])
                .await,
            (200, json!({}))
        );
        node.api("/incident/close", json!({"incident_ids": [inc]}))
            .await;
        fake.take();
        let inc2 = node.incident("grp-2", "db down again").await;
        node.deliver().await;
        let st = node.states(&inc2).await;
        assert!(
            st.iter().all(|s| s.failed_reason == "chat_unavailable"),
            "{st:?}"
        );
        let mut to: Vec<String> = fake
            .take()
            .into_iter()
            .filter(|r| r.path == "/open-apis/im/v1/messages")
            .map(|r| r.json()["receive_id"].as_str().unwrap().to_string())
            .collect();
        to.sort();
        assert_eq!(to, ["oc_gone", "oc_ops"]);
        node.server.shutdown().await;
    }
);
