//! The Microsoft Teams app end to end (response.md §2.19 RSP-300/RSP-301/RSP-302, §2.20
//! RSP-310/RSP-311/RSP-312/RSP-317, RSP-045; docs/teams-app.md): a Teams integration is
//! created over the Open API; a fake Bot Connector (a local HTTP server) publishes OpenID
//! metadata with its own RSA key, signs the activities it posts to the messaging endpoint
//! with that key, issues the bot's access tokens and records every card the bot posts or
//! updates. Members link themselves with `linkUser {code}`, teams and chats are linked with
//! `linkTeam` and `linkChat`, and card buttons act as the linked member. Time is an injected
//! clock. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

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

const APP_ID: &str = "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8";
const APP_PASSWORD: &str = "bot~secret.ForTests_0001";
const BOT_TOKEN: &str = "bf-access-token-0001";
const KEY_ID: &str = "connector-key-1";
/// The modulus of tests/teams/connector-key.der, the fake Connector's signing key.
const KEY_N: &str = "qqqzXxU2QWWWiOWFCC4euHPjjF8b_z--ZX44wsJL5soCu9ekYCWxU3rG2cPACTayh_NdfsqNYXz1cs7gcCWmKdXeSbB8Y4WRLpdkLz9BtneTPmnBhuZZrOjZ8g71WnVyBVqXaulG65vbehXhoS7d7LnmypOlkeKlbBn8xuwZzRffzWWbihPBkgzJxiouM_juSLpprQGswBFgUyFTdROUbTt8-aS2n-jZ3cnYAu9fqSTqWj74PfL0sJosvTDkTgYOK3Prpbu2qoX_45qhdGmAPTktzuqwEJURF_q0-BXaJnaHAxlOkBEwl0y_Hma6Vi1i6xwX75W049tKmzTia127zw";
const OWNER_USER: &str = "29:1owner-aad-user";
const TEAM_ID: &str = "19:team-general@thread.tacv2";
const CHAT_ID: &str = "19:group-chat@thread.v2";
const PERSONAL: &str = "a:1personal-chat-owner";

// ---- a fake Bot Connector and identity platform ----

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    auth: String,
    body: String,
}

impl Req {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
struct Fake {
    reqs: Arc<Mutex<Vec<Req>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
    posted: Arc<AtomicI64>,
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

    /// The Bot Connector's service URL of the activities.
    fn service_url(&self) -> String {
        format!("{}/svc/", self.base())
    }

    /// The Connector calls recorded since the last call (key fetches left out).
    fn take(&self) -> Vec<Req> {
        std::mem::take(&mut *self.reqs.lock().unwrap())
            .into_iter()
            .filter(|r| !matches!(r.path.as_str(), "/openid" | "/keys"))
            .collect()
    }

    /// A token of the Connector for an activity: signed with its key for the bot.
    fn token(&self, aud: &str, service_url: &str, now_secs: i64) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(KEY_ID.to_string());
        let claims = json!({"iss": "https://api.botframework.com", "aud": aud,
                            "exp": now_secs + 3600, "nbf": now_secs - 10,
                            "serviceUrl": service_url});
        let key =
            jsonwebtoken::EncodingKey::from_rsa_der(include_bytes!("teams/connector-key.der"));
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }
}

async fn handle(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let path = uri.path().to_string();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (status, answer) = if path == "/openid" {
        (
            200,
            json!({"issuer": "https://api.botframework.com", "jwks_uri": format!("{}/keys", fake.base())}),
        )
    } else if path == "/keys" {
        (
            200,
            json!({"keys": [{"kty": "RSA", "use": "sig", "kid": KEY_ID, "n": KEY_N, "e": "AQAB",
                               "endorsements": ["msteams"]}]}),
        )
    } else if path == "/botframework.com/oauth2/v2.0/token" {
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
        let get = |k: &str| {
            form.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if get("client_id") == APP_ID
            && get("client_secret") == APP_PASSWORD
            && get("grant_type") == "client_credentials"
            && get("scope") == "https://api.botframework.com/.default"
        {
            (
                200,
                json!({"token_type": "Bearer", "expires_in": 3600, "access_token": BOT_TOKEN}),
            )
        } else {
            (
                401,
                json!({"error": "invalid_client",
                         "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}),
            )
        }
    } else if auth != format!("Bearer {BOT_TOKEN}") {
        (
            401,
            json!({"message": "Authorization has been denied for this request."}),
        )
    } else if path.starts_with("/svc/v3/conversations/") && method == Method::POST {
        let n = fake.posted.fetch_add(1, Ordering::SeqCst) + 1;
        (201, json!({"id": format!("act-{n}")}))
    } else if path.starts_with("/svc/v3/conversations/") && method == Method::PUT {
        (200, json!({"id": path.rsplit('/').next().unwrap()}))
    } else {
        (
            404,
            json!({"error": {"code": "NotFound", "message": "not found"}}),
        )
    };
    fake.reqs.lock().unwrap().push(Req {
        method: method.to_string(),
        path: urlencoding_decode(&path),
        auth,
        body,
    });
    (StatusCode::from_u16(status).unwrap(), answer.to_string())
}

/// The path with its percent-escapes decoded (conversation ids carry `:` and `@`).
fn urlencoding_decode(p: &str) -> String {
    let bytes = p.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
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
    async fn start(dir: &std::path::Path, url: &str, fake: &Fake) -> Node {
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let notify = NotifyConfig {
            allow_private_targets: true,
            teams_login_base: fake.base(),
            teams_openid_url: format!("{}/openid", fake.base()),
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

    async fn teams_integration(&self, password: &str) -> i64 {
        self.api(
            "/im/integration/create",
            json!({"type": "teams", "name": "Ops Teams", "app_id": APP_ID,
                   "app_password": password}),
        )
        .await["integration_id"]
            .as_i64()
            .unwrap()
    }

    /// Posts an activity to the messaging endpoint with `token` as the Connector's JWT.
    async fn activity(&self, iid: i64, token: &str, activity: Value) -> u16 {
        self.http
            .post(format!(
                "{}/im/teams/messages/{iid}",
                self.server.base_url()
            ))
            .header("Authorization", format!("Bearer {token}"))
            .json(&activity)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A message from the Connector, properly signed.
    async fn send(&self, fake: &Fake, iid: i64, activity: Value) -> u16 {
        let token = fake.token(APP_ID, &fake.service_url(), self.now() / 1000);
        self.activity(iid, &token, activity).await
    }
}

fn message(fake: &Fake, id: &str, from: &str, conv: Value, text: &str) -> Value {
    json!({"type": "message", "id": id, "channelId": "msteams", "serviceUrl": fake.service_url(),
           "from": {"id": from, "name": "Someone"}, "conversation": conv,
           "recipient": {"id": format!("28:{APP_ID}")}, "text": text})
}

fn personal() -> Value {
    json!({"id": PERSONAL, "conversationType": "personal"})
}

fn team_channel() -> Value {
    json!({"id": format!("{TEAM_ID};messageid=1700000000000"), "conversationType": "channel"})
}

/// A press of a card button: a message activity with the button's data, replying to the card.
fn press(fake: &Fake, from: &str, conv: Value, card_activity: &str, value: Value) -> Value {
    json!({"type": "message", "id": "press-1", "channelId": "msteams",
           "serviceUrl": fake.service_url(), "from": {"id": from}, "conversation": conv,
           "replyToId": card_activity, "value": value})
}

/// The text of the bot's replies among the recorded calls.
fn replies(reqs: &[Req]) -> Vec<String> {
    reqs.iter()
        .filter(|r| {
            r.method == "POST" && r.path.starts_with("/svc/") && r.json()["text"].is_string()
        })
        .map(|r| r.json()["text"].as_str().unwrap().to_string())
        .collect()
}

fn titles(card: &Value) -> Vec<String> {
    card["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_string())
        .collect()
}

// ---- the tests ----

on_both_backends!(
    members_link_themselves_and_cards_act_as_them,
    |url: String| async move {
        // spec: RSP-302 (App ID and password; messaging endpoint; linkTeam, linkChat,
        // linkUser), RSP-301 (Teams users link with linkUser; links cannot be removed),
        // RSP-300 (only linked teams and chats), RSP-317, RSP-311 (buttons, from = card),
        // RSP-045, RSP-310, RSP-312, RSP-286
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;

        for (body, field) in [
            (
                json!({"type": "teams", "name": "T", "app_password": APP_PASSWORD}),
                "app_id",
            ),
            (
                json!({"type": "teams", "name": "T", "app_id": "not-a-guid", "app_password": "x"}),
                "app_id",
            ),
            (
                json!({"type": "teams", "name": "T", "app_id": APP_ID}),
                "app_password",
            ),
            (
                json!({"type": "teams", "name": "T", "app_id": APP_ID, "app_password": "x", "tenant_id": "x"}),
                "tenant_id",
            ),
        ] {
            let msg = node.invalid("/im/integration/create", body).await;
            assert!(msg.starts_with(field), "{field}: {msg}");
        }
        let iid = node.teams_integration(APP_PASSWORD).await;
        let info = node
            .api("/im/integration/info", json!({"integration_id": iid}))
            .await;
        assert_eq!(info["app_password"], "…0001");
        assert_eq!(
            info["messaging_endpoint"],
            format!("{}/im/teams/messages/{iid}", node.server.base_url())
        );
        assert_eq!(info["linked_chats"], json!([]));

        // Only the Connector's signed requests are accepted.
        let link = node
            .api("/im/person/link_code", json!({"integration_id": iid}))
            .await;
        let code = link["code"].as_str().unwrap().to_string();
        assert_eq!(link["command"], format!("linkUser {{{code}}}"));
        let link_user = message(
            &fake,
            "m-1",
            OWNER_USER,
            personal(),
            &format!("linkUser {{{code}}}"),
        );
        let now = node.now() / 1000;
        for token in [
            String::new(),
            "not.a.jwt".to_string(),
            fake.token("another-app", &fake.service_url(), now),
            fake.token(APP_ID, "https://elsewhere.example/", now),
            fake.token(APP_ID, &fake.service_url(), now - 7200),
        ] {
            assert_eq!(node.activity(iid, &token, link_user.clone()).await, 401);
        }
        assert_eq!(node.send(&fake, iid + 1, link_user.clone()).await, 401);
        assert!(fake.take().is_empty());
        assert_eq!(
            node.api("/im/person/list", json!({"integration_id": iid}))
                .await["total"],
            0
        );

        // linkUser in the personal chat links the Teams user to the code's member; the bot
        // replies with its own token.
        assert_eq!(node.send(&fake, iid, link_user.clone()).await, 200);
        let reqs = fake.take();
        assert_eq!(reqs[0].path, "/botframework.com/oauth2/v2.0/token");
        let reply = reqs.last().unwrap();
        assert_eq!(
            reply.path,
            format!("/svc/v3/conversations/{PERSONAL}/activities/m-1")
        );
        assert_eq!(reply.auth, format!("Bearer {BOT_TOKEN}"));
        assert_eq!(
            replies(&reqs),
            ["Linked your Teams account to the Klaxon member Owner."]
        );
        let links = node
            .api("/im/person/list", json!({"integration_id": iid}))
            .await;
        assert_eq!(links["items"][0]["im_user_id"], OWNER_USER);
        assert_eq!(links["items"][0]["person_id"], node.owner);
        // A code works once; links are made only by the user and cannot be removed.
        assert_eq!(node.send(&fake, iid, link_user.clone()).await, 200);
        assert!(replies(&fake.take())[0].contains("unknown or has expired"));
        let msg = node
            .invalid(
                "/im/person/link",
                json!({"integration_id": iid, "person_id": node.owner, "im_user_id": "29:x"}),
            )
            .await;
        assert!(msg.contains("link themselves"), "{msg}");
        let msg = node
            .invalid(
                "/im/person/unlink",
                json!({"integration_id": iid, "person_id": node.owner}),
            )
            .await;
        assert!(msg.contains("cannot be removed"), "{msg}");

        // linkTeam in the General channel and linkChat in a group chat, with this
        // integration's ID only.
        let wrong = message(
            &fake,
            "m-2",
            OWNER_USER,
            team_channel(),
            "<at>Klaxon</at> linkTeam {999}",
        );
        assert_eq!(node.send(&fake, iid, wrong).await, 200);
        assert!(replies(&fake.take())[0].contains("not this integration's ID"));
        let mut team = message(
            &fake,
            "m-3",
            OWNER_USER,
            team_channel(),
            &format!("<at>Klaxon</at> linkTeam {{{iid}}}"),
        );
        team["channelData"] =
            json!({"team": {"id": TEAM_ID, "name": "Ops"}, "channel": {"id": TEAM_ID}});
        assert_eq!(node.send(&fake, iid, team).await, 200);
        assert!(replies(&fake.take())[0].starts_with("Linked the team Ops"));
        let chat = message(
            &fake,
            "m-4",
            OWNER_USER,
            json!({"id": CHAT_ID, "conversationType": "groupChat"}),
            &format!("<at>Klaxon</at> linkChat {iid} DB on-call"),
        );
        assert_eq!(node.send(&fake, iid, chat).await, 200);
        fake.take();
        let linked = node
            .api("/im/integration/info", json!({"integration_id": iid}))
            .await["linked_chats"]
            .clone();
        let ids: Vec<&str> = linked
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["chat_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&TEAM_ID) && ids.contains(&CHAT_ID), "{linked}");

        // Cards: a direct message, and the linked team and chat; an unlinked chat id fails.
        let hook = |chats: Value| json!({"type": "teams_app", "settings": {"integration_id": iid, "chat_ids": chats}});
        node.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": node.channel, "rule_name": "Teams",
                "layers": [{"target": {"person_ids": [node.owner],
                                       "by": {"follow_preference": false, "critical": ["teams_app"]},
                                       "webhooks": [hook(json!([TEAM_ID, CHAT_ID])), hook(json!(["19:unknown@thread.v2"]))]},
                            "escalate_window": 30}],
            }),
        )
        .await;
        let inc = node.incident("t-1", "api down").await;
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (2, 1), "{round:?}");
        let st = node.states(&inc).await;
        let dm = st.iter().find(|s| s.person_id == node.owner).unwrap();
        assert_eq!(dm.status, "sent");
        let (dm_conv, dm_activity) = dm.provider_message_id.split_once('|').unwrap();
        assert_eq!(dm_conv, PERSONAL);
        let gone = st.iter().find(|s| s.status == "failed").unwrap();
        assert_eq!(gone.failed_reason, "chat_unavailable");
        let posts: Vec<Req> = fake
            .take()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.starts_with("/svc/"))
            .collect();
        assert_eq!(posts.len(), 3, "{posts:?}");
        let dm_post = posts.iter().find(|r| r.path.contains(PERSONAL)).unwrap();
        let attachment = &dm_post.json()["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        let num = node.info(&inc).await["num"].as_str().unwrap().to_string();
        assert!(
            card["body"][0]["text"]
                .as_str()
                .unwrap()
                .ends_with(&format!("INC #{num} api down"))
        );
        assert_eq!(card["body"][0]["color"], "attention");
        assert_eq!(card["body"][1]["text"], "Critical · Triggered");
        assert_eq!(
            titles(card),
            [
                "Acknowledge",
                "Close",
                "Snooze 2 hours",
                "Snooze longer",
                "Details"
            ]
        );
        assert_eq!(
            card["actions"][4]["url"],
            format!("{}/incident/detail/{inc}", node.server.base_url())
        );
        // The linked owner is a real mention: `<at>` in the text and the matching entity.
        let chat_post = posts.iter().find(|r| r.path.contains(CHAT_ID)).unwrap();
        let chat_card = &chat_post.json()["attachments"][0]["content"];
        assert_eq!(chat_card["body"][2]["text"], "<at>Owner</at>");
        assert_eq!(
            chat_card["msteams"]["entities"],
            json!([{"type": "mention", "text": "<at>Owner</at>",
                    "mentioned": {"id": OWNER_USER, "name": "Owner"}}])
        );

        // A stranger's press changes nothing and gets told to link.
        let ack = json!({"klaxon": "ack", "incident_id": inc});
        assert_eq!(
            node.send(
                &fake,
                iid,
                press(&fake, "29:stranger", team_channel(), "act-9", ack.clone())
            )
            .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(replies(&fake.take())[0].contains("not linked"));

        // Acknowledge from the direct message: as the owner, from a card; every Teams card
        // of the incident is replaced.
        assert_eq!(
            node.send(
                &fake,
                iid,
                press(&fake, OWNER_USER, personal(), dm_activity, ack)
            )
            .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        let acks = node.feed(&inc, "i_ack").await;
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["creator_id"], node.owner);
        assert_eq!(acks[0]["detail"]["from"], "card");
        let puts = |fake: &Fake| -> Vec<Req> {
            fake.take()
                .into_iter()
                .filter(|r| r.method == "PUT")
                .collect()
        };
        // The pressed card is answered at once; every card follows through the outbox's
        // refresh row.
        let pressed = puts(&fake);
        assert_eq!(pressed.len(), 1, "{pressed:?}");
        assert_eq!(
            pressed[0].path,
            format!("/svc/v3/conversations/{PERSONAL}/activities/{dm_activity}")
        );
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let refreshed = puts(&fake);
        assert_eq!(refreshed.len(), 3, "{refreshed:?}");
        assert!(refreshed.iter().any(
            |p| p.path == format!("/svc/v3/conversations/{PERSONAL}/activities/{dm_activity}")
        ));
        for p in pressed.iter().chain(&refreshed) {
            let card = &p.json()["attachments"][0]["content"];
            assert_eq!(card["body"][1]["text"], "Critical · Processing");
            assert_eq!(
                card["body"].as_array().unwrap().last().unwrap()["text"],
                "Acknowledged by Owner"
            );
        }

        // Snooze from the menu: 12 hours; a duration the card does not offer does nothing.
        let now = node.now();
        let snooze = json!({"klaxon": "snooze_menu", "incident_id": inc, "minutes": "720"});
        assert_eq!(
            node.send(
                &fake,
                iid,
                press(&fake, OWNER_USER, personal(), dm_activity, snooze)
            )
            .await,
            200
        );
        assert_eq!(
            node.info(&inc).await["snoozed_before"],
            (now + 720 * 60_000) / 1000
        );
        fake.take();
        let odd = json!({"klaxon": "snooze_menu", "incident_id": inc, "minutes": "30"});
        assert_eq!(
            node.send(
                &fake,
                iid,
                press(&fake, OWNER_USER, personal(), dm_activity, odd)
            )
            .await,
            200
        );
        assert!(fake.take().is_empty());

        // Close: the cards keep only Details.
        let close = json!({"klaxon": "close", "incident_id": inc});
        assert_eq!(
            node.send(
                &fake,
                iid,
                press(&fake, OWNER_USER, personal(), dm_activity, close)
            )
            .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Closed");
        let closed = puts(&fake);
        assert_eq!(
            titles(&closed[0].json()["attachments"][0]["content"]),
            ["Details"]
        );
        node.server.shutdown().await;
    }
);

on_both_backends!(
    a_wrong_password_fails_with_the_platforms_message,
    |url: String| async move {
        // spec: RSP-302 (a misconfigured adapter fails with provider_error:<platform message>)
        let fake = Fake::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.teams_integration("wrong-password").await;
        let code = node
            .api("/im/person/link_code", json!({"integration_id": iid}))
            .await["code"]
            .as_str()
            .unwrap()
            .to_string();
        // The link is made even though the bot cannot reply.
        let link_user = message(
            &fake,
            "m-1",
            OWNER_USER,
            personal(),
            &format!("linkUser {code}"),
        );
        assert_eq!(node.send(&fake, iid, link_user).await, 200);
        assert_eq!(
            node.api("/im/person/list", json!({"integration_id": iid}))
                .await["total"],
            1
        );
        node.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": node.channel, "rule_name": "Teams",
                "layers": [{"target": {"person_ids": [node.owner],
                                       "by": {"follow_preference": false, "critical": ["teams_app"]}},
                            "escalate_window": 30}],
            }),
        )
        .await;
        let inc = node.incident("t-2", "disk full").await;
        node.deliver().await;
        let st = node.states(&inc).await;
        let row = st.iter().find(|s| s.channel == "teams_app").unwrap();
        assert_eq!(
            (row.status.as_str(), row.failed_reason.as_str()),
            (
                "failed",
                "provider_error:AADSTS7000215: Invalid client secret provided."
            )
        );
        node.server.shutdown().await;
    }
);
