//! War rooms end to end (response.md §2.25 RSP-430…438, RSP-022; docs/war-rooms.md): the Open
//! API creates a group chat on a fake IM platform (a local HTTP server that answers like
//! Slack's Web API, Feishu's open platform and WeCom's server API and records every request),
//! invites the responders, the creator and the default observers, posts the incident card and
//! records the room; member and state sync ride the delivery outbox, which the test drains;
//! card presses in the room act with `from = wcard`; dissolving archives or disbands the chat,
//! and Feishu's disbanded event dissolves the room with creator 0. Time is an injected clock.
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

const SLACK_TOKEN: &str = "xoxb-war-room-token-0001";
const SLACK_SECRET: &str = "slack-signing-secret-0001";
const FEISHU_APP_ID: &str = "cli_war0room0app01";
const FEISHU_SECRET: &str = "feishuWarRoomSecret0001";
const FEISHU_VT: &str = "feishuVerifyToken0001";
const FEISHU_TOKEN: &str = "t-war-room-tenant-token";
const WECOM_CORP: &str = "ww0warroomcorp01";
const WECOM_SECRET: &str = "wecomWarRoomSecret0001";
const WECOM_TOKEN: &str = "wecom-access-token-01";

// ---- a fake IM platform: Slack under /slack/api, Feishu under /open-apis, WeCom /cgi-bin ----

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
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The Slack method name, or the path.
    fn name(&self) -> &str {
        self.path.strip_prefix("/slack/api/").unwrap_or(&self.path)
    }
}

#[derive(Clone, Default)]
struct Fake {
    reqs: Arc<Mutex<Vec<Req>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    n: Arc<AtomicI64>,
    channels: Arc<AtomicI64>,
    /// Slack channel names in use; like Slack, archiving a channel keeps its name taken.
    names: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl Fake {
    async fn start() -> Fake {
        let fake = Fake::default();
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

    /// The requests recorded since the last call, token requests left out.
    fn take(&self) -> Vec<Req> {
        std::mem::take(&mut *self.reqs.lock().unwrap())
            .into_iter()
            .filter(|r| !r.path.contains("tenant_access_token") && !r.path.contains("gettoken"))
            .collect()
    }

    fn next(&self) -> i64 {
        self.n.fetch_add(1, Ordering::SeqCst) + 1
    }
}

fn slack(fake: &Fake, method: &str, auth: &str, body: &str) -> Value {
    if auth != format!("Bearer {SLACK_TOKEN}") {
        return json!({"ok": false, "error": "invalid_auth"});
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match method {
        "conversations.create" => {
            let name = v["name"].as_str().unwrap_or_default().to_string();
            if name.contains("taken") || !fake.names.lock().unwrap().insert(name) {
                json!({"ok": false, "error": "name_taken"})
            } else {
                let n = fake.channels.fetch_add(1, Ordering::SeqCst) + 1;
                json!({"ok": true, "channel": {"id": format!("C0WAR{n}"),
                       "name": v["name"], "is_channel": true}})
            }
        }
        "auth.test" => json!({"ok": true, "url": "https://acme.slack.com/", "team": "Acme",
                              "team_id": "T0TEAM", "user_id": "U0BOT", "bot_id": "B0BOT"}),
        "conversations.invite" => json!({"ok": true, "channel": {"id": v["channel"]}}),
        "chat.postMessage" | "chat.update" => json!({"ok": true, "channel": v["channel"],
            "ts": v["ts"].as_str().map_or_else(|| format!("1700000000.{:06}", fake.next()), str::to_string)}),
        "conversations.archive" => json!({"ok": true}),
        "users.lookupByEmail" => {
            let form: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap_or_default();
            let email = form
                .iter()
                .find(|(k, _)| k == "email")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            if email == "bob@example.com" {
                json!({"ok": true, "user": {"id": "U0BOB", "name": "bob"}})
            } else {
                json!({"ok": false, "error": "users_not_found"})
            }
        }
        _ => json!({"ok": false, "error": "unknown_method"}),
    }
}

fn feishu(fake: &Fake, method: &Method, path: &str, auth: &str, body: &str) -> (u16, Value) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if path == "/open-apis/auth/v3/tenant_access_token/internal" {
        return if v["app_id"] == FEISHU_APP_ID && v["app_secret"] == FEISHU_SECRET {
            (
                200,
                json!({"code": 0, "msg": "ok", "tenant_access_token": FEISHU_TOKEN, "expire": 7200}),
            )
        } else {
            (200, json!({"code": 10014, "msg": "app secret invalid"}))
        };
    }
    if auth != format!("Bearer {FEISHU_TOKEN}") {
        return (
            400,
            json!({"code": 99991663, "msg": "Invalid access token for authorization."}),
        );
    }
    let ok = |data: Value| (200, json!({"code": 0, "msg": "success", "data": data}));
    match (method.as_str(), path) {
        ("POST", "/open-apis/im/v1/chats") => ok(json!({"chat_id": "oc_war1"})),
        ("POST", "/open-apis/im/v1/chats/oc_war1/link") => ok(json!({
            "share_link": "https://applink.feishu.cn/client/chat/chatter/add_by_link?link_token=war1",
            "expire_time": "1609296809", "is_permanent": true})),
        ("POST", "/open-apis/im/v1/chats/oc_war1/members") => ok(json!({"invalid_id_list": []})),
        ("DELETE", "/open-apis/im/v1/chats/oc_war1") => ok(json!({})),
        ("POST", "/open-apis/im/v1/messages") => {
            ok(json!({"message_id": format!("om_war{}", fake.next())}))
        }
        ("PATCH", p) if p.starts_with("/open-apis/im/v1/messages/") => ok(json!({})),
        ("POST", "/open-apis/contact/v3/users/batch_get_id") => {
            let list: Vec<Value> = v["emails"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    if e == "bob@example.com" {
                        json!({"user_id": "ou_bob", "email": e})
                    } else {
                        json!({"email": e})
                    }
                })
                .collect();
            ok(json!({"user_list": list}))
        }
        _ => (404, json!({"code": 404, "msg": "not found"})),
    }
}

fn wecom(path: &str, query: &str, body: &str) -> Value {
    if path == "/cgi-bin/gettoken" {
        return if query.contains(&format!("corpid={WECOM_CORP}"))
            && query.contains(&format!("corpsecret={WECOM_SECRET}"))
        {
            json!({"errcode": 0, "errmsg": "ok", "access_token": WECOM_TOKEN, "expires_in": 7200})
        } else {
            json!({"errcode": 40001, "errmsg": "invalid credential"})
        };
    }
    if !query.contains(&format!("access_token={WECOM_TOKEN}")) {
        return json!({"errcode": 40014, "errmsg": "invalid access_token"});
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match path {
        "/cgi-bin/appchat/create" => json!({"errcode": 0, "errmsg": "ok", "chatid": "wrchat1"}),
        "/cgi-bin/appchat/send" | "/cgi-bin/appchat/update" => {
            json!({"errcode": 0, "errmsg": "ok"})
        }
        "/cgi-bin/user/get_userid_by_email" if v["email"] == "bob@example.com" => {
            json!({"errcode": 0, "errmsg": "ok", "userid": "bob"})
        }
        "/cgi-bin/user/get_userid_by_email" | "/cgi-bin/user/getuserid" => {
            json!({"errcode": 46004, "errmsg": "user no exist"})
        }
        _ => json!({"errcode": 404, "errmsg": "unknown api"}),
    }
}

async fn handle(
    State(fake): State<Fake>,
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
    let query = uri.query().unwrap_or("").to_string();
    let (status, answer) = if let Some(m) = path.strip_prefix("/slack/api/") {
        (200, slack(&fake, m, &auth, &body))
    } else if path == "/slack/respond" {
        (200, json!("ok"))
    } else if path.starts_with("/open-apis/") {
        feishu(&fake, &method, &path, &auth, &body)
    } else {
        (200, wecom(&path, &query, &body))
    };
    fake.reqs.lock().unwrap().push(Req {
        method: method.to_string(),
        path,
        query,
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
    account: i64,
}

impl Node {
    async fn start(dir: &std::path::Path, url: &str, fake: &Fake) -> Node {
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let notify = NotifyConfig {
            allow_private_targets: true,
            slack_api_base: format!("{}/slack/api", fake.base()),
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

    /// A refused call: (error code, message).
    async fn refused(&self, path: &str, body: Value) -> (String, String) {
        let (status, body) = self.call(path, body).await;
        assert_eq!(status, 400, "{path}: {body}");
        (
            body["error"]["code"].as_str().unwrap().to_string(),
            body["error"]["message"].as_str().unwrap().to_string(),
        )
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

    /// An enabled member (invited, then signed in once, RSP-551) with an e-mail.
    async fn member(&self, email: &str, name: &str) -> i64 {
        let id = self
            .api(
                "/member/invite",
                json!({"members": [{"email": email, "member_name": name, "role_ids": [6]}]}),
            )
            .await["items"][0]["member_id"]
            .as_i64()
            .unwrap();
        self.server
            .store()
            .create_session(self.account, id, 3_600_000, self.now())
            .await
            .unwrap();
        id
    }

    /// A manual incident assigned to `persons`.
    async fn incident(&self, title: &str, persons: &[i64]) -> String {
        let id = self
            .api(
                "/incident/create",
                json!({"title": title, "incident_severity": "Critical"}),
            )
            .await["incident_id"]
            .as_str()
            .unwrap()
            .to_string();
        self.api(
            "/incident/assign",
            json!({"incident_id": id, "assigned_to": {"person_ids": persons}}),
        )
        .await;
        id
    }

    async fn info(&self, incident_id: &str) -> Value {
        self.api("/incident/info", json!({"incident_id": incident_id}))
            .await
    }

    async fn feed(&self, incident_id: &str, kind: &str) -> Vec<Value> {
        self.api(
            "/incident/feed",
            json!({"incident_id": incident_id, "limit": 100, "asc": true}),
        )
        .await["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }

    /// War-room outbox rows of the incident.
    async fn sync_rows(&self, incident_id: &str) -> usize {
        self.server
            .store()
            .delivery_states(self.account, incident_id)
            .await
            .unwrap()
            .iter()
            .filter(|d| d.channel == "war_room")
            .count()
    }

    async fn slack_integration(&self, war_room: bool) -> i64 {
        let iid = self
            .api(
                "/im/integration/create",
                json!({"type": "slack", "name": "Ops Slack", "bot_token": SLACK_TOKEN,
                       "signing_secret": SLACK_SECRET, "war_room_enabled": war_room}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        self.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": self.owner, "im_user_id": "U0OWNER"}),
        )
        .await;
        iid
    }

    async fn feishu_integration(&self, fake: &Fake) -> i64 {
        let iid = self
            .api(
                "/im/integration/create",
                json!({"type": "feishu", "name": "Ops Feishu", "app_id": FEISHU_APP_ID,
                       "app_secret": FEISHU_SECRET, "verification_token": FEISHU_VT,
                       "api_base": fake.base(), "war_room_enabled": true}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        self.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": self.owner, "im_user_id": "ou_owner"}),
        )
        .await;
        iid
    }

    /// A signed Slack `block_actions` press on a card posted in `channel`.
    async fn press(&self, iid: i64, channel: &str, user: &str, action: Value) -> u16 {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": user, "username": "someone", "team_id": "T0TEAM"},
            "team": {"id": "T0TEAM", "domain": "acme"},
            "container": {"type": "message", "message_ts": "1700000000.000009",
                          "channel_id": channel},
            "response_url": format!("{}/slack/respond", self.notify.slack_api_base.replace("/slack/api", "")),
            "actions": [action],
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let ts = (self.now() / 1000).to_string();
        let sig = klaxon_notify::slack::signature(SLACK_SECRET, &ts, body.as_bytes());
        self.http
            .post(format!(
                "{}/im/slack/interactive/{iid}",
                self.server.base_url()
            ))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Slack-Request-Timestamp", ts)
            .header("X-Slack-Signature", sig)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn num_of(info: &Value) -> String {
    info["num"].as_str().unwrap().to_string()
}

// ---- creation ----

on_both_backends!(
    slack_war_room_is_created_with_the_exact_requests,
    |url: String| async move {
        // spec: RSP-430 (one war-room integration, Incidents Manage), RSP-431 (create the
        // channel named from INC #<num> <title>, the bot is in it, invite responders and the
        // creator, post the card, store it, i_wr_create with the share link), RSP-432 (link,
        // else users.lookupByEmail; unresolved members in detail.uninvited)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration(true).await;
        let bob = node.member("bob@example.com", "Bob").await;
        let carol = node.member("carol@example.com", "Carol").await;
        let observers = node
            .api(
                "/incident/war-room/default-observers",
                json!({"member_ids": [carol]}),
            )
            .await;
        assert_eq!(observers["member_ids"], json!([carol]));
        let enabled = node
            .api("/datasource/im/war-room-enabled/list", json!({}))
            .await;
        assert_eq!(enabled["items"][0]["integration_id"], iid);
        let id = node.incident("DB is down: 5xx on /api", &[bob]).await;
        let num = num_of(&node.info(&id).await);
        fake.take();

        let room = node
            .api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        let reqs = fake.take();
        let names: Vec<&str> = reqs.iter().map(Req::name).collect();
        assert_eq!(
            names,
            [
                "users.lookupByEmail",
                "users.lookupByEmail",
                "conversations.create",
                "auth.test",
                "conversations.invite",
                "chat.postMessage"
            ],
            "{reqs:?}"
        );
        for r in &reqs {
            assert_eq!(r.method, "POST");
            assert_eq!(r.auth, format!("Bearer {SLACK_TOKEN}"));
        }
        assert_eq!(reqs[0].body, "email=bob%40example.com");
        assert_eq!(reqs[1].body, "email=carol%40example.com");
        let slug = format!("inc-{}-db-is-down-5xx-on-api", num.to_lowercase());
        assert_eq!(reqs[2].json(), json!({"name": slug, "is_private": false}));
        assert_eq!(
            reqs[4].json(),
            json!({"channel": "C0WAR1", "users": "U0BOB,U0OWNER", "force": true})
        );
        let card = reqs[5].json();
        assert_eq!(card["channel"], "C0WAR1");
        // The incident card (Slack app layout: blocks inside a coloured attachment).
        assert!(
            card["attachments"][0]["blocks"]
                .to_string()
                .contains("klaxon_ack"),
            "{card}"
        );

        assert_eq!(room["chat_id"], "C0WAR1");
        assert_eq!(room["chat_name"], slug);
        assert_eq!(room["plugin_type"], "slack");
        assert_eq!(room["status"], "active");
        assert_eq!(
            room["share_link"],
            "https://app.slack.com/client/T0TEAM/C0WAR1"
        );
        assert_eq!(room["uninvited"], json!([carol]));
        // The one-click link is kept: Bob's card presses now act as Bob.
        let links = node
            .api("/im/person/list", json!({"integration_id": iid}))
            .await;
        assert!(links.to_string().contains("U0BOB"), "{links}");
        // i_wr_create with the share link and the uninvited member.
        let created = node.feed(&id, "i_wr_create").await;
        assert_eq!(created.len(), 1);
        assert_eq!(created[0]["creator_id"], node.owner);
        assert_eq!(
            created[0]["detail"],
            json!({"integration_id": iid, "integration_name": "Ops Slack", "chat_id": "C0WAR1",
                   "chat_name": slug, "plugin_type": "slack",
                   "share_link": "https://app.slack.com/client/T0TEAM/C0WAR1",
                   "uninvited": [carol]})
        );
        // "View war room" for everyone who opens the incident.
        let info = node.info(&id).await;
        assert_eq!(
            info["war_room"]["share_link"],
            "https://app.slack.com/client/T0TEAM/C0WAR1"
        );
        let detail = node
            .api("/incident/war-room/detail", json!({"incident_id": id}))
            .await;
        let members: Vec<i64> = detail["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["person_id"].as_i64().unwrap())
            .collect();
        assert_eq!(members.len(), 2);
        assert!(members.contains(&bob) && members.contains(&node.owner));
        // RSP-430: one active war room per incident.
        let (code, msg) = node
            .refused("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        assert_eq!(code, "BadRequest");
        assert!(msg.contains("already has an active war room"), "{msg}");
        assert!(fake.take().is_empty());
    }
);

on_both_backends!(
    feishu_war_room_is_created_with_the_exact_requests,
    |url: String| async move {
        // spec: RSP-431 (im/v1/chats with the bot and user_id_list, the share link, the card),
        // RSP-432 (contact/v3/users/batch_get_id by e-mail)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.feishu_integration(&fake).await;
        let bob = node.member("bob@example.com", "Bob").await;
        let id = node.incident("磁盘已满 on db-1", &[bob]).await;
        let num = num_of(&node.info(&id).await);
        fake.take();

        let room = node
            .api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        let reqs = fake.take();
        let paths: Vec<(&str, &str)> = reqs
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("POST", "/open-apis/contact/v3/users/batch_get_id"),
                ("POST", "/open-apis/im/v1/chats"),
                ("POST", "/open-apis/im/v1/chats/oc_war1/link"),
                ("POST", "/open-apis/im/v1/messages"),
            ],
            "{reqs:?}"
        );
        for r in &reqs {
            assert_eq!(r.auth, format!("Bearer {FEISHU_TOKEN}"));
        }
        assert_eq!(reqs[0].query, "user_id_type=open_id");
        assert_eq!(reqs[0].json(), json!({"emails": ["bob@example.com"]}));
        assert_eq!(reqs[1].query, "user_id_type=open_id&set_bot_manager=true");
        let name = format!("INC #{num} 磁盘已满 on db-1");
        assert_eq!(
            reqs[1].json(),
            json!({"name": name, "chat_mode": "group", "chat_type": "private",
                   "bot_id_list": [FEISHU_APP_ID], "user_id_list": ["ou_bob", "ou_owner"]})
        );
        assert_eq!(reqs[2].json(), json!({"validity_period": "permanently"}));
        assert_eq!(reqs[3].query, "receive_id_type=chat_id");
        let send = reqs[3].json();
        assert_eq!(send["receive_id"], "oc_war1");
        assert_eq!(send["msg_type"], "interactive");
        let card: Value = serde_json::from_str(send["content"].as_str().unwrap()).unwrap();
        assert!(card.to_string().contains(&id), "{card}");

        assert_eq!(room["chat_id"], "oc_war1");
        assert_eq!(room["chat_name"], name);
        assert_eq!(room["plugin_type"], "feishu");
        assert_eq!(
            room["share_link"],
            "https://applink.feishu.cn/client/chat/chatter/add_by_link?link_token=war1"
        );
        assert_eq!(room["uninvited"], json!([]));
        let created = node.feed(&id, "i_wr_create").await;
        assert_eq!(created[0]["detail"]["integration_id"], iid);
        assert_eq!(created[0]["detail"]["plugin_type"], "feishu");
    }
);

on_both_backends!(
    wecom_war_room_is_created_and_dissolving_leaves_the_chat,
    |url: String| async move {
        // spec: RSP-430 (WeCom custom app), RSP-431 (appchat/create, the card through
        // appchat/send), RSP-436 (WeCom cannot disband a chat: the room is closed in Klaxon
        // and the chat is told)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node
            .api(
                "/im/integration/create",
                json!({"type": "wecom", "name": "Ops WeCom", "corp_id": WECOM_CORP,
                       "agent_id": "1000002", "secret": WECOM_SECRET, "token": "cbToken01",
                       "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
                       "api_base": fake.base(), "war_room_enabled": true}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        node.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": node.owner, "im_user_id": "owner"}),
        )
        .await;
        let bob = node.member("bob@example.com", "Bob").await;
        let id = node.incident("Queue stuck", &[bob]).await;
        let num = num_of(&node.info(&id).await);
        fake.take();
        let room = node
            .api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        let reqs = fake.take();
        let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/cgi-bin/user/get_userid_by_email",
                "/cgi-bin/appchat/create",
                "/cgi-bin/appchat/send"
            ]
        );
        assert_eq!(reqs[0].query, format!("access_token={WECOM_TOKEN}"));
        assert_eq!(
            reqs[0].json(),
            json!({"email": "bob@example.com", "email_type": 1})
        );
        assert_eq!(
            reqs[1].json(),
            json!({"name": format!("INC #{num} Queue stuck"), "owner": "bob",
                   "userlist": ["bob", "owner"]})
        );
        let card = reqs[2].json();
        assert_eq!(card["chatid"], "wrchat1");
        assert_eq!(card["msgtype"], "textcard");
        assert_eq!(card["textcard"]["title"], format!("INC #{num} Queue stuck"));
        assert!(
            card["textcard"]["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/incident/detail/{id}"))
        );
        assert_eq!(room["chat_id"], "wrchat1");
        assert_eq!(room["share_link"], "");

        node.api("/incident/close", json!({"incident_ids": [id]}))
            .await;
        node.deliver().await;
        fake.take();
        let gone = node
            .api("/incident/war-room/delete", json!({"incident_id": id}))
            .await;
        assert_eq!(gone["status"], "dissolved");
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].path, "/cgi-bin/appchat/send");
        assert_eq!(reqs[0].json()["chatid"], "wrchat1");
        assert_eq!(reqs[0].json()["msgtype"], "text");
    }
);

// ---- preconditions ----

on_both_backends!(
    preconditions_refuse_clearly_and_store_nothing,
    |url: String| async move {
        // spec: RSP-430 (no war-room integration; Teams; an active room), RSP-022 (a Closed
        // incident: no creation), RSP-431 (a platform refusal stores nothing)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let id = node.incident("Name taken", &[node.owner]).await;

        // No IM integration at all: every war-room call says so.
        for (path, body) in [
            ("/incident/war-room/create", json!({"incident_id": id})),
            ("/incident/war-room/list", json!({})),
            ("/incident/war-room/detail", json!({"incident_id": id})),
            ("/incident/war-room/default-observers", json!({})),
            ("/datasource/im/war-room-enabled/list", json!({})),
            (
                "/datasource/im/person/try-link",
                json!({"person_ids": [node.owner]}),
            ),
        ] {
            let (code, msg) = node.refused(path, body).await;
            assert_eq!(code, "InvalidParameter", "{path}");
            assert!(msg.contains("IM integration"), "{path}: {msg}");
        }
        // An IM integration without war rooms enabled.
        let iid = node.slack_integration(false).await;
        let (code, msg) = node
            .refused("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        assert_eq!(code, "InvalidParameter");
        assert!(msg.contains("war_room_enabled"), "{msg}");
        assert!(fake.take().is_empty());

        // Teams is not a war-room platform: failed_precondition.
        node.api("/im/integration/delete", json!({"integration_id": iid}))
            .await;
        node.api(
            "/im/integration/create",
            json!({"type": "teams", "name": "Ops Teams", "app_id": "3f2a1b4c-0000-4000-8000-000000000001",
                   "app_password": "teams-client-secret-01", "war_room_enabled": true}),
        )
        .await;
        let (code, msg) = node
            .refused("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        assert_eq!(code, "BadRequest");
        assert!(msg.contains("teams"), "{msg}");
        let teams = node
            .api("/datasource/im/war-room-enabled/list", json!({}))
            .await;
        let teams_id = teams["items"][0]["integration_id"].as_i64().unwrap();
        node.api(
            "/im/integration/delete",
            json!({"integration_id": teams_id}),
        )
        .await;

        // Slack refuses the channel (name_taken): a clear error and nothing stored.
        node.slack_integration(true).await;
        fake.take();
        let (code, msg) = node
            .refused("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        assert_eq!(code, "BadRequest");
        assert!(msg.contains("name_taken"), "{msg}");
        let list = node
            .api("/incident/war-room/list", json!({"incident_id": id}))
            .await;
        assert_eq!(list["items"], json!([]));
        assert!(node.feed(&id, "i_wr_create").await.is_empty());
        assert_eq!(node.info(&id).await["war_room"], Value::Null);

        // RSP-022: a Closed incident gets no war room; an unknown one is not found.
        let closed = node.incident("Closed already", &[node.owner]).await;
        node.api("/incident/close", json!({"incident_ids": [closed]}))
            .await;
        fake.take();
        let (code, msg) = node
            .refused("/incident/war-room/create", json!({"incident_id": closed}))
            .await;
        assert_eq!(code, "BadRequest");
        assert!(msg.contains("Closed"), "{msg}");
        assert!(fake.take().is_empty());
        let (status, body) = node
            .call(
                "/incident/war-room/create",
                json!({"incident_id": "0123456789abcdef01234567"}),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "ResourceNotFound");
        let (code, _) = node.refused("/incident/war-room/create", json!({})).await;
        assert_eq!(code, "InvalidParameter");
    }
);

// ---- sync ----

on_both_backends!(
    member_and_state_sync_ride_the_outbox_and_comments_do_not,
    |url: String| async move {
        // spec: RSP-433 (a new responder through reassignment is invited once), RSP-434
        // (acknowledge, reassignment and close post to the chat and refresh the card;
        // comments do not)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        node.slack_integration(true).await;
        let bob = node.member("bob@example.com", "Bob").await;
        let id = node.incident("Payments failing", &[node.owner]).await;
        node.api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        node.deliver().await;
        fake.take();

        // Reassigned to Bob: Bob is invited, the chat is told, the card refreshed.
        node.api(
            "/incident/assign",
            json!({"incident_id": id, "assigned_to": {"person_ids": [bob]}}),
        )
        .await;
        assert_eq!(node.sync_rows(&id).await, 1);
        node.deliver().await;
        let reqs = fake.take();
        let slack: Vec<&Req> = reqs
            .iter()
            .filter(|r| r.path.starts_with("/slack/api/"))
            .collect();
        let names: Vec<&str> = slack.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "users.lookupByEmail",
                "conversations.invite",
                "chat.postMessage",
                "chat.update"
            ],
            "{reqs:?}"
        );
        assert_eq!(
            slack[1].json(),
            json!({"channel": "C0WAR1", "users": "U0BOB", "force": true})
        );
        let text = slack[2].json();
        assert_eq!(text["channel"], "C0WAR1");
        assert!(
            text["text"].as_str().unwrap().contains("Assigned to Bob"),
            "{text}"
        );
        assert_eq!(slack[3].json()["channel"], "C0WAR1");

        // Acknowledged: posted, nobody new to invite.
        node.api("/incident/ack", json!({"incident_ids": [id]}))
            .await;
        node.deliver().await;
        let reqs = fake.take();
        let names: Vec<&str> = reqs.iter().map(Req::name).collect();
        assert_eq!(names, ["chat.postMessage", "chat.update"], "{reqs:?}");
        assert!(
            reqs[0].json()["text"]
                .as_str()
                .unwrap()
                .contains("Acknowledged by"),
            "{:?}",
            reqs[0]
        );

        // A comment is not posted (RSP-434 DECISION).
        let before = node.sync_rows(&id).await;
        node.api(
            "/incident/comment",
            json!({"incident_ids": [id], "comment": "looking at the db"}),
        )
        .await;
        assert_eq!(node.sync_rows(&id).await, before);
        node.deliver().await;
        assert!(fake.take().is_empty());

        // Closed: posted; the room stays until it is dissolved.
        node.api("/incident/close", json!({"incident_ids": [id]}))
            .await;
        node.deliver().await;
        let reqs = fake.take();
        assert!(
            reqs[0].json()["text"]
                .as_str()
                .unwrap()
                .contains("Closed by"),
            "{reqs:?}"
        );
        let states: Vec<String> = node
            .server
            .store()
            .delivery_states(node.account, &id)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.channel == "war_room")
            .map(|d| d.status)
            .collect();
        assert_eq!(states, ["sent", "sent", "sent"]);
    }
);

on_both_backends!(
    sync_stops_when_war_room_enabled_is_turned_off,
    |url: String| async move {
        // spec: RSP-438 (the record stays; member and state sync stop)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration(true).await;
        let id = node.incident("Cache cold", &[node.owner]).await;
        node.api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        // A change queued before the switch is not sent after it either.
        node.api("/incident/ack", json!({"incident_ids": [id]}))
            .await;
        assert_eq!(node.sync_rows(&id).await, 1);
        let off = node
            .api(
                "/datasource/im/war-room-enabled/set",
                json!({"integration_id": iid, "war_room_enabled": false}),
            )
            .await;
        assert_eq!(off["war_room_enabled"], false);
        fake.take();
        node.deliver().await;
        assert!(fake.take().is_empty());
        let failed: Vec<String> = node
            .server
            .store()
            .delivery_states(node.account, &id)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.channel == "war_room")
            .map(|d| d.failed_reason)
            .collect();
        assert_eq!(failed, ["war_room_sync_off"]);
        // Later changes queue nothing.
        node.api("/incident/unack", json!({"incident_ids": [id]}))
            .await;
        node.api("/incident/close", json!({"incident_ids": [id]}))
            .await;
        assert_eq!(node.sync_rows(&id).await, 1);
        // The record is kept.
        let list = node
            .api("/incident/war-room/list", json!({"incident_id": id}))
            .await;
        assert_eq!(list["items"][0]["status"], "active");
    }
);

// ---- card presses ----

on_both_backends!(
    war_room_card_press_acts_as_the_linked_member_with_wcard,
    |url: String| async move {
        // spec: RSP-435 (a war-room card acts as the clicking linked member, from = wcard),
        // RSP-036 (a direct-message card stays `card`)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration(true).await;
        let bob = node.member("bob@example.com", "Bob").await;
        let id = node.incident("Login broken", &[node.owner, bob]).await;
        node.api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        // Bob (linked by the one-click link at creation) acknowledges in the room.
        let ack = json!({"type": "button", "action_id": "klaxon_ack", "value": id});
        assert_eq!(node.press(iid, "C0WAR1", "U0BOB", ack.clone()).await, 200);
        let acks = node.feed(&id, "i_ack").await;
        assert_eq!(acks.len(), 1, "{acks:?}");
        assert_eq!(acks[0]["creator_id"], bob);
        assert_eq!(acks[0]["detail"]["from"], "wcard");
        // The owner closes from a direct-message card: `card`.
        let close = json!({"type": "button", "action_id": "klaxon_close", "value": id});
        assert_eq!(node.press(iid, "D0OWNER", "U0OWNER", close).await, 200);
        let closes = node.feed(&id, "i_rslv").await;
        assert_eq!(closes[0]["creator_id"], node.owner);
        assert_eq!(closes[0]["detail"]["from"], "card");
    }
);

// ---- dissolving ----

on_both_backends!(
    dissolving_needs_a_closed_incident_and_reopening_keeps_the_room,
    |url: String| async move {
        // spec: RSP-436 (only once Closed; archives the channel; i_wr_delete by the actor),
        // RSP-437 (reopening keeps the active room; a new room after a dissolve), RSP-022
        // (dissolving is allowed on a Closed incident)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration(true).await;
        let id = node.incident("Disk full", &[node.owner]).await;
        node.api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        let (code, msg) = node
            .refused("/incident/war-room/delete", json!({"incident_id": id}))
            .await;
        assert_eq!(code, "BadRequest");
        assert!(msg.contains("Closed"), "{msg}");

        // Close and reopen: the same room stays active, and no second one can be made.
        node.api("/incident/close", json!({"incident_ids": [id]}))
            .await;
        node.api("/incident/reopen", json!({"incident_ids": [id]}))
            .await;
        let list = node
            .api("/incident/war-room/list", json!({"incident_id": id}))
            .await;
        assert_eq!(list["total"], 1);
        assert_eq!(list["items"][0]["status"], "active");
        let (code, _) = node
            .refused("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        assert_eq!(code, "BadRequest");

        node.api("/incident/close", json!({"incident_ids": [id]}))
            .await;
        node.deliver().await;
        fake.take();
        let gone = node
            .api("/incident/war-room/delete", json!({"incident_id": id}))
            .await;
        assert_eq!(gone["status"], "dissolved");
        assert!(gone["dissolved_at"].as_i64().unwrap() > 0);
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].name(), "conversations.archive");
        assert_eq!(reqs[0].json(), json!({"channel": "C0WAR1"}));
        let deleted = node.feed(&id, "i_wr_delete").await;
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0]["creator_id"], node.owner);
        assert_eq!(deleted[0]["detail"]["chat_id"], "C0WAR1");
        assert_eq!(deleted[0]["detail"]["integration_id"], iid);
        assert_eq!(node.info(&id).await["war_room"], Value::Null);
        // Nothing left to dissolve.
        let (status, body) = node
            .call("/incident/war-room/delete", json!({"incident_id": id}))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "ResourceNotFound");

        // RSP-437: after the dissolve, a reopened incident may get a new room. Slack keeps the
        // archived channel's name, so the new channel takes the next numbered name.
        node.api("/incident/reopen", json!({"incident_ids": [id]}))
            .await;
        fake.take();
        let again = node
            .api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        assert_eq!(again["chat_id"], "C0WAR2");
        let creates: Vec<String> = fake
            .take()
            .iter()
            .filter(|r| r.name() == "conversations.create")
            .map(|r| r.json()["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(creates.len(), 2, "{creates:?}");
        assert_eq!(creates[1], format!("{}-2", creates[0]));
        assert_eq!(again["chat_name"], creates[1].as_str(), "{again}");
        let list = node
            .api("/incident/war-room/list", json!({"incident_id": id}))
            .await;
        assert_eq!(list["total"], 2);
        assert_eq!(list["items"][0]["status"], "active");
        assert_eq!(list["items"][1]["status"], "dissolved");
    }
);

on_both_backends!(
    feishu_disbanded_event_dissolves_the_room_with_creator_zero,
    |url: String| async move {
        // spec: RSP-436 (the platform reports the chat disbanded: dissolved, i_wr_delete by 0)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.feishu_integration(&fake).await;
        let id = node.incident("Queue lag", &[node.owner]).await;
        node.api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        let event = json!({"schema": "2.0",
            "header": {"event_id": "ev-war-1", "token": FEISHU_VT,
                       "event_type": "im.chat.disbanded_v1", "app_id": FEISHU_APP_ID,
                       "tenant_key": "tk-1", "create_time": "1700000000000"},
            "event": {"chat_id": "oc_war1", "operator_id": {"open_id": "ou_owner"}}});
        let resp = node
            .http
            .post(format!(
                "{}/im/feishu/callback/{iid}",
                node.server.base_url()
            ))
            .header("Content-Type", "application/json")
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let deleted = node.feed(&id, "i_wr_delete").await;
        assert_eq!(deleted.len(), 1, "{deleted:?}");
        assert_eq!(deleted[0]["creator_id"], 0);
        assert_eq!(deleted[0]["detail"]["chat_id"], "oc_war1");
        let list = node
            .api("/incident/war-room/list", json!({"incident_id": id}))
            .await;
        assert_eq!(list["items"][0]["status"], "dissolved");
        // The incident is still open: sync no longer applies, a new room may be made.
        node.api("/incident/ack", json!({"incident_ids": [id]}))
            .await;
        assert_eq!(node.sync_rows(&id).await, 0);
    }
);

on_both_backends!(
    add_member_and_try_link_invite_and_link_now,
    |url: String| async move {
        // spec: RSP-432 (one-click link by e-mail; unknown members are reported), RSP-433
        // (invitations; nobody is removed)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration(true).await;
        let bob = node.member("bob@example.com", "Bob").await;
        let carol = node.member("carol@example.com", "Carol").await;
        let linked = node
            .api(
                "/datasource/im/person/try-link",
                json!({"person_ids": [bob, carol]}),
            )
            .await;
        assert_eq!(linked["integration_id"], iid);
        assert_eq!(
            linked["linked"],
            json!([{"person_id": bob, "im_user_id": "U0BOB"}])
        );
        assert_eq!(linked["failed"], json!([carol]));
        let id = node.incident("Search slow", &[node.owner]).await;
        node.api("/incident/war-room/create", json!({"incident_id": id}))
            .await;
        fake.take();
        let added = node
            .api(
                "/incident/war-room/add-member",
                json!({"incident_id": id, "member_ids": [bob, carol]}),
            )
            .await;
        assert_eq!(added, json!({"invited": [bob], "uninvited": [carol]}));
        let reqs = fake.take();
        let names: Vec<&str> = reqs.iter().map(Req::name).collect();
        assert_eq!(names, ["users.lookupByEmail", "conversations.invite"]);
        assert_eq!(
            reqs[1].json(),
            json!({"channel": "C0WAR1", "users": "U0BOB", "force": true})
        );
        let (code, _) = node
            .refused(
                "/incident/war-room/add-member",
                json!({"incident_id": id, "member_ids": [987654321]}),
            )
            .await;
        assert_eq!(code, "InvalidParameter");
    }
);

// ---- the console ----

on_both_backends!(
    the_incident_page_offers_create_view_and_dissolve,
    |url: String| async move {
        // spec: RSP-430 (Create war room for Incidents Manage), RSP-431 ("View war room"
        // for everyone who sees the incident), RSP-436 (Dissolve once Closed)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        node.slack_integration(true).await;
        let id = node.incident("Console room", &[node.owner]).await;
        let (cookie, csrf) = common::console_session(&node.server).await;
        let page = |path: String| {
            let (http, cookie) = (node.http.clone(), cookie.clone());
            let base = node.server.base_url().to_string();
            async move {
                http.get(format!("{base}{path}"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        let post = |action: &'static str| {
            let (http, cookie, csrf) = (node.http.clone(), cookie.clone(), csrf.clone());
            let url = format!("{}/incident/detail/{id}/{action}", node.server.base_url());
            async move {
                let resp = http
                    .post(url)
                    .header("cookie", cookie)
                    .header("x-klaxon-csrf", csrf)
                    .header("hx-request", "true")
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            }
        };
        let html = page(format!("/incident/detail/{id}")).await;
        assert!(html.contains("id=\"create-war-room\""), "{html}");
        assert!(!html.contains("View war room"));

        let (status, html) = post("war-room-create").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("War room created."), "{html}");
        // The template escapes `/` in attributes as `&#x2f;`, which browsers read back as `/`.
        assert!(
            html.replace("&#x2f;", "/")
                .contains("href=\"https://app.slack.com/client/T0TEAM/C0WAR1\""),
            "{html}"
        );
        assert!(html.contains("View war room"));
        assert!(!html.contains("id=\"create-war-room\""));
        assert!(!html.contains("id=\"dissolve-war-room\""));
        assert_eq!(node.feed(&id, "i_wr_create").await.len(), 1);

        // Dissolving is offered once the incident is Closed.
        node.api("/incident/close", json!({"incident_ids": [id]}))
            .await;
        let html = page(format!("/incident/detail/{id}")).await;
        assert!(html.contains("id=\"dissolve-war-room\""), "{html}");
        let (status, html) = post("war-room-dissolve").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("War room dissolved."), "{html}");
        assert!(!html.contains("View war room"));
        assert_eq!(node.feed(&id, "i_wr_delete").await.len(), 1);
    }
);
