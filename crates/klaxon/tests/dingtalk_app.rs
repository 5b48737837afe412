//! The DingTalk app end to end (response.md 1.21, §2.19 RSP-281/RSP-286/RSP-288/RSP-302,
//! §2.20 RSP-301/RSP-310–RSP-312; docs/dingtalk-app.md): a DingTalk integration is created
//! and members linked over the Open API, escalation rules send `dingtalk_app` cards to
//! members and groups, the delivery engine calls a fake DingTalk server API (a local HTTP
//! server that checks every request as DingTalk documents it and records it), and
//! encrypted, signed callbacks on the callback URL act on the incident as the linked member
//! and update the cards. Time is an injected clock. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::StatusCode;
use common::im_app::{FakeApi, Node, Req};
use klaxon_notify::msgcrypt;
use serde_json::{Value, json};

const CORP_ID: &str = "ding5f2a3b4c5d6e7f80";
const AGENT_ID: &str = "3120045678";
const CLIENT_ID: &str = "dingq8abcdefghijkl01";
const SECRET: &str = "dingtalkClientSecretForTests0001";
const TOKEN: &str = "dtSignatureToken01";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const ACCESS_TOKEN: &str = "dt-access-token-0001";
const OWNER_USER: &str = "manager4220";
const BO_USER: &str = "bo_0731";
const OWNER_MOBILE: &str = "13812345678";

// ---- a fake DingTalk server API ----

/// What the fake remembers: the cards sent (their outTrackIds), and how many sends it
/// still refuses with a 503.
#[derive(Default)]
struct Dingtalk {
    cards: Mutex<HashSet<String>>,
    failures: AtomicI64,
}

type FakeDingtalk = FakeApi<Dingtalk>;

async fn fake_dingtalk() -> FakeDingtalk {
    FakeApi::start(Dingtalk::default(), answer).await
}

fn error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"code": code, "message": message, "requestid": "req-1"}),
    )
}

/// Whether a send or update carries the standard card with its layout as one JSON string.
fn card_data_ok(v: &Value) -> bool {
    v["cardData"]["cardParamMap"]["sys_full_json_obj"]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .is_some_and(|l| l["header"]["title"]["text"].is_string() && l["contents"].is_array())
}

/// Answers like DingTalk: the token endpoint checks the Client ID and Secret; every other
/// call needs the access token (the `x-acs-dingtalk-access-token` header, or the older API's
/// `access_token` query); a send must be a standard card sent by the app's robot to one user
/// or one group; an update must name a card that was sent.
fn answer(fake: &FakeDingtalk, r: &Req) -> (StatusCode, Value) {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let json_body = r.header("content-type").starts_with("application/json");
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1.0/oauth2/accessToken") => {
            if json_body && v == json!({"appKey": CLIENT_ID, "appSecret": SECRET}) {
                (
                    StatusCode::OK,
                    json!({"accessToken": ACCESS_TOKEN, "expireIn": 7200}),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalidClientIdOrSecret",
                    "invalid clientId or clientSecret",
                )
            }
        }
        ("POST", "/topapi/v2/user/getbymobile") => {
            if r.arg("access_token") != ACCESS_TOKEN {
                (
                    StatusCode::OK,
                    json!({"errcode": 40014, "errmsg": "invalid access_token"}),
                )
            } else if v == json!({"mobile": OWNER_MOBILE}) {
                (
                    StatusCode::OK,
                    json!({"errcode": 0, "errmsg": "ok", "result": {"userid": OWNER_USER},
                           "request_id": "r-2"}),
                )
            } else {
                (
                    StatusCode::OK,
                    json!({"errcode": 60121, "errmsg": "user not found"}),
                )
            }
        }
        _ if r.header("x-acs-dingtalk-access-token") != ACCESS_TOKEN => error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthentication",
            "invalid access_token",
        ),
        ("POST", "/v1.0/im/interactiveCards/send") => {
            let track = v["outTrackId"].as_str().unwrap_or_default().to_string();
            let single = v["conversationType"] == 0
                && v["receiverUserIdList"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1)
                && v.get("openConversationId").is_none();
            let group = v["conversationType"] == 1
                && v["openConversationId"].is_string()
                && v.get("receiverUserIdList").is_none();
            if !json_body
                || v["cardTemplateId"] != "StandardCard"
                || v["robotCode"] != CLIENT_ID
                || track.is_empty()
                || !(single || group)
                || !card_data_ok(&v)
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    "param.invalid",
                    "invalid parameter",
                );
            }
            if fake.state.failures.load(Ordering::SeqCst) > 0 {
                fake.state.failures.fetch_sub(1, Ordering::SeqCst);
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "busy",
                );
            }
            fake.state.cards.lock().unwrap().insert(track);
            (
                StatusCode::OK,
                json!({"success": true, "result": {"processQueryKey": "pqk-1"}}),
            )
        }
        ("PUT", "/v1.0/im/interactiveCards") => {
            let track = v["outTrackId"].as_str().unwrap_or_default();
            if !fake.state.cards.lock().unwrap().contains(track) || !card_data_ok(&v) {
                return error(StatusCode::BAD_REQUEST, "card.notFound", "no such card");
            }
            (StatusCode::OK, json!({"success": true, "result": true}))
        }
        _ => error(StatusCode::NOT_FOUND, "NotFound", "no such API"),
    }
}

/// The card layouts of the sends recorded since the last call, in order.
fn sends(fake: &FakeDingtalk) -> Vec<Value> {
    fake.take()
        .into_iter()
        .filter(|r| r.path == "/v1.0/im/interactiveCards/send")
        .map(|r| r.json())
        .collect()
}

/// The updates recorded since the last call: (outTrackId, layout).
fn updates(fake: &FakeDingtalk) -> Vec<(String, Value)> {
    let mut u: Vec<(String, Value)> = fake
        .take()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path == "/v1.0/im/interactiveCards")
        .map(|r| {
            let v = r.json();
            (v["outTrackId"].as_str().unwrap().to_string(), layout(&v))
        })
        .collect();
    u.sort_by(|a, b| a.0.cmp(&b.0));
    u
}

/// The layout a send or update carries.
fn layout(v: &Value) -> Value {
    serde_json::from_str(
        v["cardData"]["cardParamMap"]["sys_full_json_obj"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

/// The markdown texts of a layout.
fn texts(l: &Value) -> Vec<String> {
    l["contents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect()
}

/// The button ids of a layout.
fn buttons(l: &Value) -> Vec<String> {
    l["contents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "action")
        .flat_map(|c| c["actions"].as_array().unwrap().clone())
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

// ---- the node's DingTalk side ----

fn create_body(fake: &FakeDingtalk, secret: &str) -> Value {
    json!({"type": "dingtalk", "name": "Ops DingTalk", "corp_id": CORP_ID, "agent_id": AGENT_ID,
           "client_id": CLIENT_ID, "client_secret": secret, "signature_token": TOKEN,
           "aes_key": AES_KEY, "api_base": fake.base()})
}

impl Node {
    async fn dingtalk_integration(&self, fake: &FakeDingtalk, secret: &str) -> i64 {
        self.api("/im/integration/create", create_body(fake, secret))
            .await["integration_id"]
            .as_i64()
            .unwrap()
    }

    fn dingtalk_callback_url(&self, iid: i64) -> String {
        format!("{}/im/dingtalk/callback/{iid}", self.server.base_url())
    }

    /// POSTs `inner` encrypted for `receiver`, signed with `token` at `ts` (milliseconds).
    /// Answers the status and the body.
    async fn dingtalk_post_event_at(
        &self,
        iid: i64,
        token: &str,
        receiver: &str,
        inner: &Value,
        ts: i64,
    ) -> (u16, Value) {
        let encrypted =
            msgcrypt::encrypt(AES_KEY, inner.to_string().as_bytes(), receiver, [5u8; 16]);
        let ts = ts.to_string();
        let sig = msgcrypt::signature(token, &ts, "nonce1", &encrypted);
        let q = serde_urlencoded::to_string([
            ("msg_signature", sig.as_str()),
            ("timestamp", ts.as_str()),
            ("nonce", "nonce1"),
        ])
        .unwrap();
        let resp = self
            .http
            .post(format!("{}?{q}", self.dingtalk_callback_url(iid)))
            .json(&json!({"encrypt": encrypted}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A press of button `action_id` on card `track` by DingTalk user `user`, signed now.
    async fn dingtalk_press(&self, iid: i64, user: &str, track: &str, action_id: &str) -> u16 {
        self.press_signed(iid, TOKEN, user, track, action_id, self.now())
            .await
    }

    async fn press_signed(
        &self,
        iid: i64,
        token: &str,
        user: &str,
        track: &str,
        action_id: &str,
        ts: i64,
    ) -> u16 {
        let content = json!({"cardPrivateData": {"actionIds": [action_id], "params": {}}});
        let inner = json!({"outTrackId": track, "corpId": CORP_ID, "userId": user,
                           "type": "actionCallback", "content": content.to_string()});
        let (status, body) = self
            .dingtalk_post_event_at(iid, token, CLIENT_ID, &inner, ts)
            .await;
        if status == 200 {
            assert_success(&body, self.now());
        }
        status
    }
}

/// The answer DingTalk expects: `success`, encrypted for the app and signed with the token.
fn assert_success(body: &Value, now: i64) {
    let enc = body["encrypt"].as_str().unwrap();
    assert_eq!(
        msgcrypt::decrypt(AES_KEY, enc).unwrap(),
        (b"success".to_vec(), CLIENT_ID.to_string())
    );
    let ts = body["timeStamp"].as_str().unwrap();
    assert_eq!(ts, now.to_string());
    assert_eq!(
        body["msg_signature"],
        msgcrypt::signature(TOKEN, ts, body["nonce"].as_str().unwrap(), enc)
    );
}

async fn invite(node: &Node, email: &str, name: &str) -> i64 {
    let id = node
        .api(
            "/member/invite",
            json!({"members": [{"email": email, "member_name": name, "role_ids": [6]}]}),
        )
        .await["items"][0]["member_id"]
        .as_i64()
        .unwrap();
    node.server
        .store()
        .create_session(node.account, id, 60_000, node.now())
        .await
        .unwrap();
    id
}

// ---- the tests ----

on_both_backends!(
    credentials_are_checked_and_the_url_answers_dingtalk,
    |url: String| async move {
        // spec: response.md 1.21 (DingTalk CorpId, AgentId, Client ID, Client Secret,
        // aes_key, Signature Token; encrypted, never shown), RSP-302 (callback URL check),
        // RSP-301 (links; the one-click link by phone)
        let fake = fake_dingtalk().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let base = create_body(&fake, SECRET);
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
            (without("corp_id"), "corp_id"),
            (with("corp_id", "ding-1"), "corp_id"),
            (without("agent_id"), "agent_id"),
            (with("agent_id", "31x"), "agent_id"),
            (without("client_id"), "client_id"),
            (without("client_secret"), "client_secret"),
            (with("client_secret", "has space"), "client_secret"),
            (without("signature_token"), "signature_token"),
            (with("aes_key", "short"), "aes_key"),
            (with("api_base", "ftp://api.dingtalk.com"), "api_base"),
        ] {
            let msg = node.invalid("/im/integration/create", body).await;
            assert!(msg.starts_with(field), "{field}: {msg}");
        }
        assert_eq!(
            node.api("/im/integration/list", json!({})).await["total"],
            0
        );
        let created = node.api("/im/integration/create", base.clone()).await;
        let iid = created["integration_id"].as_i64().unwrap();
        assert_eq!(created["type"], "dingtalk");
        assert_eq!(created["corp_id"], CORP_ID);
        assert_eq!(created["agent_id"], AGENT_ID);
        assert_eq!(created["client_id"], CLIENT_ID);
        assert_eq!(created["client_secret"], "…0001");
        assert_eq!(created["callback_url"], node.dingtalk_callback_url(iid));
        assert_eq!(created["callback_route_key"], format!("klaxon_{iid}"));
        let listed = node
            .api("/im/integration/list", json!({"type": "dingtalk"}))
            .await;
        assert_eq!(listed["total"], 1);
        let text = listed.to_string();
        assert!(!text.contains(SECRET) && !text.contains(AES_KEY) && !text.contains(TOKEN));
        // Nothing was asked of DingTalk to store credentials.
        assert!(fake.take().is_empty());

        // The URL check: answered with the encrypted, signed `success`, only when proved.
        let check = json!({"EventType": "check_url"});
        let (s, body) = node
            .dingtalk_post_event_at(iid, TOKEN, CLIENT_ID, &check, node.now())
            .await;
        assert_eq!(s, 200, "{body}");
        assert_success(&body, node.now());
        // The organisation's CorpId is an accepted receiver too.
        let (s, _) = node
            .dingtalk_post_event_at(iid, TOKEN, CORP_ID, &check, node.now())
            .await;
        assert_eq!(s, 200);
        for (token, receiver, iid) in [
            ("otherToken", CLIENT_ID, iid),
            (TOKEN, "dingOtherApp", iid),
            (TOKEN, CLIENT_ID, iid + 1000),
        ] {
            let (s, _) = node
                .dingtalk_post_event_at(iid, token, receiver, &check, node.now())
                .await;
            assert_eq!(s, 401, "{token} {receiver} {iid}");
        }

        // Links: a DingTalk user id is checked.
        let msg = node
            .invalid(
                "/im/person/link",
                json!({"integration_id": iid, "person_id": node.owner, "im_user_id": "a b"}),
            )
            .await;
        assert!(msg.starts_with("im_user_id"), "{msg}");
        node.link(iid, node.owner, "someone_else").await;

        // One-click link: needs a verified phone, then finds the user by it.
        let by_phone = json!({"integration_id": iid, "person_id": node.owner});
        let msg = node
            .invalid("/im/person/link_by_phone", by_phone.clone())
            .await;
        assert!(msg.contains("verified phone"), "{msg}");
        node.api(
            "/member/info/reset",
            json!({"member_id": node.owner, "updates": {"phone": format!("+86{OWNER_MOBILE}")}}),
        )
        .await;
        assert!(
            node.server
                .store()
                .mark_contact_verified(node.account, node.owner, false, true)
                .await
                .unwrap()
        );
        let linked = node.api("/im/person/link_by_phone", by_phone).await;
        assert_eq!(linked["im_user_id"], OWNER_USER);
        assert_eq!(linked["person_id"], node.owner);
        let reqs = fake.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(reqs[0].path, "/v1.0/oauth2/accessToken");
        assert_eq!(reqs[1].path, "/topapi/v2/user/getbymobile");
        assert_eq!(reqs[1].query, format!("access_token={ACCESS_TOKEN}"));
        assert_eq!(reqs[1].json(), json!({"mobile": OWNER_MOBILE}));
        let links = node
            .api("/im/person/list", json!({"integration_id": iid}))
            .await;
        assert_eq!(links["items"][0]["im_user_id"], OWNER_USER);

        // A member DingTalk does not know: not found, and nothing linked. The cached token
        // is reused.
        let bo = invite(&node, "bo@example.com", "Bo").await;
        node.api(
            "/member/info/reset",
            json!({"member_id": bo, "updates": {"phone": "+8613900000000"}}),
        )
        .await;
        node.server
            .store()
            .mark_contact_verified(node.account, bo, false, true)
            .await
            .unwrap();
        let (s, b) = node
            .call(
                "/im/person/link_by_phone",
                json!({"integration_id": iid, "person_id": bo}),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("ResourceNotFound")),
            "{b}"
        );
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(
            node.api("/im/person/list", json!({"integration_id": iid}))
                .await["total"],
            1
        );
        node.server.shutdown().await;
    }
);

on_both_backends!(
    direct_cards_are_sent_and_buttons_act_as_the_linked_member,
    |url: String| async move {
        // spec: RSP-281 (app_not_linked), RSP-286 (the card), RSP-311 (Acknowledge, Close,
        // Snooze, Details; from = card; closed cards keep only the link), RSP-045, RSP-310
        // (acts as the linked member; an unlinked user is told and nothing changes), RSP-312
        // (the card is updated), RSP-302 (a bad signature or a stale timestamp is refused)
        let fake = fake_dingtalk().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let iid = node.dingtalk_integration(&fake, SECRET).await;
        node.direct_rule(&[node.owner], "dingtalk_app").await;

        // Unlinked: app_not_linked, DingTalk is not called.
        let first = node.incident("d-0", "db down").await;
        node.deliver().await;
        let st = node.states(&first).await;
        let row = st.iter().find(|s| s.channel == "dingtalk_app").unwrap();
        assert_eq!(
            (row.status.as_str(), row.failed_reason.as_str()),
            ("failed", "app_not_linked")
        );
        assert!(
            fake.take()
                .iter()
                .all(|r| r.path != "/v1.0/im/interactiveCards/send")
        );

        // Linked: a token, then the card to the user from the app's robot.
        node.link(iid, node.owner, OWNER_USER).await;
        let inc = node.incident("d-1", "db down").await;
        node.deliver().await;
        let st = node.states(&inc).await;
        let row = st.iter().find(|s| s.channel == "dingtalk_app").unwrap();
        assert_eq!(row.status, "sent", "{st:?}");
        let track = row.provider_message_id.clone();
        let reqs = fake.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].path.as_str()),
            ("POST", "/v1.0/oauth2/accessToken")
        );
        assert_eq!(
            (reqs[1].method.as_str(), reqs[1].path.as_str()),
            ("POST", "/v1.0/im/interactiveCards/send")
        );
        assert_eq!(reqs[1].header("x-acs-dingtalk-access-token"), ACCESS_TOKEN);
        assert_eq!(reqs[1].header("idempotency-key"), track);
        let sent = reqs[1].json();
        assert_eq!(sent["cardTemplateId"], "StandardCard");
        assert_eq!(sent["robotCode"], CLIENT_ID);
        assert_eq!(sent["conversationType"], 0);
        assert_eq!(sent["receiverUserIdList"], json!([OWNER_USER]));
        assert_eq!(sent["outTrackId"], track);
        assert_eq!(sent["callbackRouteKey"], format!("klaxon_{iid}"));
        let card = layout(&sent);
        let info = node.info(&inc).await;
        let num = info["num"].as_str().unwrap();
        let outlier = if info["frequency"] == "rare" {
            "[Outlier] "
        } else {
            ""
        };
        assert_eq!(
            card["header"]["title"]["text"],
            format!("{outlier}INC #{num} db down")
        );
        let t = texts(&card);
        assert_eq!(t[0], "<font color=#C80000>**Critical · Triggered**</font>");
        assert!(t[1].contains("db down"), "{t:?}");
        assert_eq!(
            buttons(&card),
            [
                format!("ack_{inc}"),
                format!("close_{inc}"),
                format!("snooze120_{inc}"),
                "details".to_string(),
                format!("snooze240_{inc}"),
                format!("snooze720_{inc}"),
                format!("snooze1440_{inc}"),
            ]
        );
        let detail = format!("{}/incident/detail/{inc}", node.server.base_url());
        assert_eq!(card["contents"][2]["actions"][3]["url"]["all"], detail);

        // A wrong token, and a correct signature six minutes old or ahead: refused, nothing
        // changes, no card is touched.
        let ack = format!("ack_{inc}");
        assert_eq!(
            node.press_signed(iid, "wrongToken", OWNER_USER, &track, &ack, node.now())
                .await,
            401
        );
        for ts in [node.now() - 360_000, node.now() + 360_000] {
            assert_eq!(
                node.press_signed(iid, TOKEN, OWNER_USER, &track, &ack, ts)
                    .await,
                401
            );
        }
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(node.feed(&inc, "i_ack").await.is_empty());
        assert!(fake.take().is_empty());

        // An unlinked DingTalk user: the card tells them; nothing changes.
        assert_eq!(node.dingtalk_press(iid, BO_USER, &track, &ack).await, 200);
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        let up = updates(&fake);
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0].0, track);
        assert!(
            texts(&up[0].1).iter().any(|t| t.contains("is not linked")),
            "{:?}",
            up[0].1
        );

        // Acknowledge: as the owner, from the card; the card shows the new state.
        assert_eq!(
            node.dingtalk_press(iid, OWNER_USER, &track, &ack).await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        let acks = node.feed(&inc, "i_ack").await;
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["creator_id"], node.owner);
        assert_eq!(acks[0]["detail"]["from"], "card");
        let up = updates(&fake);
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0].0, track);
        let t = texts(&up[0].1);
        assert_eq!(t[0], "<font color=#C80000>**Critical · Processing**</font>");
        assert!(t.contains(&"> Acknowledged by Owner".to_string()), "{t:?}");

        // Snooze from the menu: 4 hours.
        assert_eq!(
            node.dingtalk_press(iid, OWNER_USER, &track, &format!("snooze240_{inc}"))
                .await,
            200
        );
        let snoozed = node.info(&inc).await["snoozed_before"].as_i64().unwrap();
        assert!(
            (snoozed - (node.now() / 1000 + 4 * 3600)).abs() <= 1,
            "{snoozed}"
        );
        assert_eq!(updates(&fake).len(), 1);

        // A button no card offers: acknowledged, nothing happens.
        assert_eq!(
            node.dingtalk_press(iid, OWNER_USER, &track, "delete_x")
                .await,
            200
        );
        assert!(fake.take().is_empty());

        // Close: the card keeps only the link.
        assert_eq!(
            node.dingtalk_press(iid, OWNER_USER, &track, &format!("close_{inc}"))
                .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Closed");
        let up = updates(&fake);
        assert_eq!(buttons(&up[0].1), ["details"]);
        node.server.shutdown().await;
    }
);

on_both_backends!(
    group_cards_go_to_every_group_and_are_all_updated,
    |url: String| async move {
        // spec: RSP-288 (IM app groups get the same card; actions act as the clicking
        // user), RSP-289 (responders named), RSP-300 (groups the app is installed in),
        // RSP-312 (every card of the incident is updated after a change)
        let fake = fake_dingtalk().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let iid = node.dingtalk_integration(&fake, SECRET).await;
        node.link(iid, node.owner, OWNER_USER).await;
        let groups = json!(["cidGroupA0001", "cidGroupB0002"]);
        node.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": node.channel, "rule_name": "Groups",
                "layers": [{"target": {"person_ids": [node.owner], "by": null,
                                       "webhooks": [{"type": "dingtalk_app",
                                                     "settings": {"integration_id": iid,
                                                                  "chat_ids": groups}}]},
                            "escalate_window": 30}],
            }),
        )
        .await;
        let inc = node.incident("d-g", "api slow").await;
        node.deliver().await;
        let st = node.states(&inc).await;
        let row = st.iter().find(|s| s.channel == "dingtalk_app").unwrap();
        assert_eq!(row.status, "sent", "{st:?}");
        let tracks: Vec<String> = row
            .provider_message_id
            .split(' ')
            .map(str::to_string)
            .collect();
        assert_eq!(tracks.len(), 2, "{tracks:?}");
        let sent = sends(&fake);
        assert_eq!(sent.len(), 2);
        for (s, (group, track)) in sent
            .iter()
            .zip(groups.as_array().unwrap().iter().zip(&tracks))
        {
            assert_eq!(s["conversationType"], 1);
            assert_eq!(&s["openConversationId"], group);
            assert!(s.get("receiverUserIdList").is_none());
            assert_eq!(&s["outTrackId"], track);
            let l = layout(s);
            assert!(texts(&l).contains(&"@Owner".to_string()), "{l}");
            assert_eq!(buttons(&l)[0], format!("ack_{inc}"));
        }

        // A press in group A acknowledges as the linked owner; both groups' cards follow.
        assert_eq!(
            node.dingtalk_press(iid, OWNER_USER, &tracks[0], &format!("ack_{inc}"))
                .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        // The pressed card is answered at once; every card of the incident follows through
        // the outbox's refresh row.
        let up = updates(&fake);
        let updated: Vec<&str> = up.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(updated, [tracks[0].as_str()]);
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let up = updates(&fake);
        let updated: Vec<&str> = up.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(updated, [tracks[0].as_str(), tracks[1].as_str()]);
        for (_, l) in &up {
            assert_eq!(
                texts(l)[0],
                "<font color=#C80000>**Critical · Processing**</font>"
            );
        }
        node.server.shutdown().await;
    }
);

on_both_backends!(
    provider_failures_are_retried_and_misconfiguration_is_reported,
    |url: String| async move {
        // spec: RSP-290 (queued → sent; failures visible with their reason), RSP-302 (a
        // misconfigured adapter fails with provider_error:<platform message>)
        let fake = fake_dingtalk().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let iid = node.dingtalk_integration(&fake, SECRET).await;
        node.link(iid, node.owner, OWNER_USER).await;
        node.direct_rule(&[node.owner], "dingtalk_app").await;

        // DingTalk is unavailable once: the send is retried and goes out, with the same
        // outTrackId both times.
        fake.state.failures.store(1, Ordering::SeqCst);
        let inc = node.incident("d-r", "disk full").await;
        node.deliver().await;
        let st = node.states(&inc).await;
        let row = st.iter().find(|s| s.channel == "dingtalk_app").unwrap();
        assert_ne!(row.status, "sent");
        assert_eq!(row.attempts, 1);
        assert!(row.next_attempt_at > node.now());
        node.clock.0.store(row.next_attempt_at, Ordering::SeqCst);
        node.deliver().await;
        let st = node.states(&inc).await;
        let row = st.iter().find(|s| s.channel == "dingtalk_app").unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("sent", 2), "{row:?}");
        let sent = sends(&fake);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0]["outTrackId"], sent[1]["outTrackId"]);
        assert_eq!(sent[1]["outTrackId"], row.provider_message_id);

        // A wrong Client Secret: the platform's message, at once.
        let other = node.dingtalk_integration(&fake, "notTheSecret").await;
        node.api(
            "/im/person/unlink",
            json!({"integration_id": iid, "person_id": node.owner}),
        )
        .await;
        node.link(other, node.owner, OWNER_USER).await;
        let inc = node.incident("d-m", "queue full").await;
        node.deliver().await;
        let st = node.states(&inc).await;
        let row = st.iter().find(|s| s.channel == "dingtalk_app").unwrap();
        assert_eq!(
            (row.status.as_str(), row.failed_reason.as_str()),
            (
                "failed",
                "provider_error:invalidClientIdOrSecret invalid clientId or clientSecret"
            )
        );
        node.server.shutdown().await;
    }
);
