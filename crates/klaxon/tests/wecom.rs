//! The WeCom app channel end to end (response.md §2.19 RSP-286/RSP-302, §2.20
//! RSP-310–RSP-313, RSP-045; docs/wecom.md): a WeCom integration is created and members
//! linked over the Open API, escalation rules send `wecom_app` direct messages, the delivery
//! engine calls a fake WeCom API (a local HTTP server that records every request and, like
//! WeCom, accepts each response code once), and encrypted, signed callbacks on the callback
//! URL act on the incident as the linked member and update the cards. Time is an injected
//! clock. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::StatusCode;
use common::im_app::{FakeApi, Node, Req};
use klaxon_notify::wecom;
use serde_json::{Value, json};

const CORP_ID: &str = "ww1a2b3c4d5e6f7001";
const AGENT_ID: &str = "1000002";
const SECRET: &str = "wecomAppSecretForTests0001";
const TOKEN: &str = "wToken0123456789";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const ACCESS_TOKEN: &str = "wx-access-token-0001";
const OWNER_USER: &str = "zhangsan";
const BO_USER: &str = "bo.li";

// ---- a fake WeCom API ----

/// What the fake remembers: the cards sent, and the response codes already spent.
#[derive(Default)]
struct Wecom {
    sent: AtomicI64,
    spent: Mutex<HashSet<String>>,
}

type FakeWecom = FakeApi<Wecom>;

async fn fake_wecom() -> FakeWecom {
    FakeApi::start(Wecom::default(), answer).await
}

/// The card updates recorded since the last call, by recipient.
fn updates(fake: &FakeWecom) -> Vec<Value> {
    let mut u: Vec<Value> = fake
        .take()
        .into_iter()
        .filter(|r| r.path == "/cgi-bin/message/update_template_card")
        .map(|r| r.json())
        .collect();
    u.sort_by_key(|v| v["userids"][0].as_str().unwrap().to_string());
    u
}

/// Answers like WeCom: `gettoken` checks the corp ID and Secret; the other calls check the
/// access token; a send answers a response code `rc-send-<n>`; an update accepts a response
/// code only once.
fn answer(fake: &FakeWecom, r: &Req) -> (StatusCode, Value) {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let post = r.method == "POST";
    let answer = if r.path == "/cgi-bin/gettoken" {
        if r.arg("corpid") == CORP_ID && r.arg("corpsecret") == SECRET {
            json!({"errcode": 0, "errmsg": "ok", "access_token": ACCESS_TOKEN, "expires_in": 7200})
        } else {
            json!({"errcode": 40001, "errmsg": "invalid credential"})
        }
    } else if r.arg("access_token") != ACCESS_TOKEN {
        json!({"errcode": 40014, "errmsg": "invalid access_token"})
    } else if r.path == "/cgi-bin/message/send" && post {
        if v["agentid"] != json!(1000002) {
            json!({"errcode": 40056, "errmsg": "invalid agentid"})
        } else {
            let n = fake.state.sent.fetch_add(1, Ordering::SeqCst) + 1;
            json!({"errcode": 0, "errmsg": "ok", "msgid": format!("msg-{n}"),
                   "response_code": format!("rc-send-{n}")})
        }
    } else if r.path == "/cgi-bin/message/update_template_card" && post {
        let code = v["response_code"].as_str().unwrap_or_default().to_string();
        if fake.state.spent.lock().unwrap().insert(code) {
            json!({"errcode": 0, "errmsg": "ok"})
        } else {
            json!({"errcode": 40003, "errmsg": "response_code already used"})
        }
    } else {
        json!({"errcode": 404, "errmsg": "not found"})
    };
    (StatusCode::OK, answer)
}

// ---- the node's WeCom side ----

impl Node {
    async fn wecom_integration(&self, fake: &FakeWecom, secret: &str) -> i64 {
        let created = self
            .api(
                "/im/integration/create",
                json!({"type": "wecom", "name": "Ops WeCom", "corp_id": CORP_ID,
                       "agent_id": AGENT_ID, "secret": secret, "token": TOKEN,
                       "encoding_aes_key": AES_KEY, "api_base": fake.base()}),
            )
            .await;
        created["integration_id"].as_i64().unwrap()
    }

    fn callback_url(&self, iid: i64) -> String {
        format!("{}/im/wecom/callback/{iid}", self.server.base_url())
    }

    /// POSTs an encrypted event (`inner` XML) signed with `token`.
    async fn post_event(&self, iid: i64, token: &str, inner: &str) -> u16 {
        self.post_event_at(iid, token, inner, self.now() / 1000)
            .await
    }

    /// The same, signed with the timestamp `ts` (seconds).
    async fn post_event_at(&self, iid: i64, token: &str, inner: &str, ts: i64) -> u16 {
        let encrypted = wecom::encrypt(AES_KEY, inner.as_bytes(), CORP_ID, [5u8; 16]);
        let ts = ts.to_string();
        let nonce = "n-1";
        let sig = wecom::signature(token, &ts, nonce, &encrypted);
        let body = format!(
            "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[{AGENT_ID}]]></AgentID><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        );
        let q = serde_urlencoded::to_string([
            ("msg_signature", sig.as_str()),
            ("timestamp", ts.as_str()),
            ("nonce", nonce),
        ])
        .unwrap();
        self.http
            .post(format!("{}?{q}", self.callback_url(iid)))
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A button press on card `task_id` by `user`, bringing `code`.
    #[allow(clippy::too_many_arguments)]
    async fn press(
        &self,
        iid: i64,
        token: &str,
        user: &str,
        task_id: &str,
        key: &str,
        snooze: Option<&str>,
        code: &str,
    ) -> u16 {
        let selected = snooze.map_or(String::new(), |m| {
            format!(
                "<SelectedItems><SelectedItem><QuestionKey><![CDATA[snooze_minutes]]></QuestionKey><OptionIds><OptionId><![CDATA[{m}]]></OptionId></OptionIds></SelectedItem></SelectedItems>"
            )
        });
        let inner = format!(
            "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey><TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[{code}]]></ResponseCode><AgentID>{AGENT_ID}</AgentID>{selected}</xml>"
        );
        self.post_event(iid, token, &inner).await
    }
}

/// The buttons of a card: (label, key or url).
fn buttons(card: &Value) -> Vec<(String, String)> {
    card["button_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let what = b["key"].as_str().or(b["url"].as_str()).unwrap();
            (b["text"].as_str().unwrap().to_string(), what.to_string())
        })
        .collect()
}

fn open_buttons(inc: &str, detail: &str, refresh: bool) -> Vec<(String, String)> {
    let mut b = vec![
        ("Start processing".to_string(), format!("ack:{inc}")),
        ("Close directly".to_string(), format!("close:{inc}")),
        ("Snooze".to_string(), format!("snooze:{inc}")),
        ("Details".to_string(), detail.to_string()),
    ];
    if refresh {
        b.push(("Refresh".to_string(), format!("refresh:{inc}")));
    }
    b
}

// ---- the tests ----

on_both_backends!(
    direct_cards_are_sent_and_their_buttons_act,
    |url: String| async move {
        // spec: RSP-302 (corp ID, AgentId, Secret, Token + EncodingAESKey, callback URL),
        // RSP-281 (app_not_linked), RSP-286, RSP-311 (Start processing, Close directly, Snooze,
        // Details; from = card; no actions when closed), RSP-045, RSP-310, RSP-313
        let fake = fake_wecom().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;

        // The integration: credentials checked and never answered in full.
        let base = json!({"type": "wecom", "name": "W", "corp_id": CORP_ID, "agent_id": AGENT_ID,
                          "secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY});
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
            (with("corp_id", "ww-1"), "corp_id"),
            (without("agent_id"), "agent_id"),
            (with("agent_id", "10x"), "agent_id"),
            (without("secret"), "secret"),
            (with("token", "has-dash"), "token"),
            (with("encoding_aes_key", "short"), "encoding_aes_key"),
            (with("api_base", "ftp://qyapi.weixin.qq.com"), "api_base"),
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
                json!({"type": "wecom", "name": "Ops WeCom", "corp_id": CORP_ID,
                       "agent_id": AGENT_ID, "secret": SECRET, "token": TOKEN,
                       "encoding_aes_key": AES_KEY, "api_base": fake.base()}),
            )
            .await;
        let iid = created["integration_id"].as_i64().unwrap();
        assert_eq!(created["corp_id"], CORP_ID);
        assert_eq!(created["agent_id"], AGENT_ID);
        assert_eq!(created["secret"], "…0001");
        assert_eq!(created["api_base"], fake.base());
        assert_eq!(created["callback_url"], node.callback_url(iid));
        let listed = node
            .api("/im/integration/list", json!({}))
            .await
            .to_string();
        assert!(!listed.contains(SECRET) && !listed.contains(AES_KEY) && !listed.contains(TOKEN));

        // WeCom's URL check: the decrypted echostr, only with a valid signature.
        let echo = wecom::encrypt(AES_KEY, b"echo-4711", CORP_ID, [3u8; 16]);
        let check = |token: &str| {
            let ts = (node.now() / 1000).to_string();
            let sig = wecom::signature(token, &ts, "n-0", &echo);
            let q = serde_urlencoded::to_string([
                ("msg_signature", sig.as_str()),
                ("timestamp", ts.as_str()),
                ("nonce", "n-0"),
                ("echostr", echo.as_str()),
            ])
            .unwrap();
            node.http.get(format!("{}?{q}", node.callback_url(iid)))
        };
        let resp = check(TOKEN).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.text().await.unwrap(), "echo-4711");
        assert_eq!(check("other").send().await.unwrap().status().as_u16(), 401);

        // Unlinked: the direct message fails with app_not_linked and WeCom is not called.
        node.direct_rule(&[node.owner], "wecom_app").await;
        let first = node.incident("w-0", "db down").await;
        node.deliver().await;
        let st = node.states(&first).await;
        let row = st.iter().find(|s| s.channel == "wecom_app").unwrap();
        assert_eq!(
            (row.status.as_str(), row.failed_reason.as_str()),
            ("failed", "app_not_linked")
        );
        assert!(fake.take().is_empty());
        let msg = node
            .invalid(
                "/im/person/link",
                json!({"integration_id": iid, "person_id": node.owner, "im_user_id": "has space"}),
            )
            .await;
        assert!(msg.starts_with("im_user_id"), "{msg}");
        node.link(iid, node.owner, OWNER_USER).await;

        // Linked: a token, then the card to the user as the app's agent.
        let inc = node.incident("w-1", "db down").await;
        node.deliver().await;
        let st = node.states(&inc).await;
        assert_eq!(st[0].status, "sent", "{st:?}");
        let task = st[0].provider_message_id.clone();
        assert!(!task.is_empty());
        let reqs = fake.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        assert_eq!(
            (reqs[0].method.as_str(), reqs[0].path.as_str()),
            ("GET", "/cgi-bin/gettoken")
        );
        assert_eq!(
            reqs[0].query,
            format!("corpid={CORP_ID}&corpsecret={SECRET}")
        );
        assert_eq!(reqs[1].path, "/cgi-bin/message/send");
        assert_eq!(reqs[1].query, format!("access_token={ACCESS_TOKEN}"));
        let sent = reqs[1].json();
        assert_eq!(sent["touser"], OWNER_USER);
        assert_eq!(sent["agentid"], 1000002);
        assert_eq!(sent["msgtype"], "template_card");
        let card = &sent["template_card"];
        let info = node.info(&inc).await;
        let num = info["num"].as_str().unwrap().to_string();
        let outlier = if info["frequency"] == "rare" {
            "[Outlier] "
        } else {
            ""
        };
        let detail = format!("{}/incident/detail/{inc}", node.server.base_url());
        assert_eq!(card["card_type"], "button_interaction");
        assert_eq!(card["task_id"], task);
        assert_eq!(
            card["main_title"],
            json!({"title": format!("{outlier}INC #{num} db down"), "desc": "Critical · Triggered"})
        );
        assert_eq!(card["source"], json!({"desc": "Critical", "desc_color": 2}));
        assert_eq!(card["card_action"], json!({"type": 1, "url": detail}));
        assert!(card["sub_title_text"].as_str().unwrap().contains("db down"));
        // A fresh card can be updated with the send's code: no Refresh yet.
        assert_eq!(buttons(card), open_buttons(&inc, &detail, false));
        assert_eq!(
            card["button_selection"]["option_list"],
            json!([{"id": "120", "text": "2 hours"}, {"id": "240", "text": "4 hours"},
                   {"id": "720", "text": "12 hours"}, {"id": "1440", "text": "24 hours"}])
        );
        assert_eq!(card["button_selection"]["selected_id"], "120");

        // A wrong signature (or an unknown integration) is refused and changes nothing.
        let ack = format!("ack:{inc}");
        assert_eq!(
            node.press(iid, "wrongToken", OWNER_USER, &task, &ack, None, "rc-x")
                .await,
            401
        );
        assert_eq!(
            node.press(iid + 1, TOKEN, OWNER_USER, &task, &ack, None, "rc-x")
                .await,
            401
        );
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(fake.take().is_empty());

        // An unlinked WeCom user: nothing changes, the card says to link the account.
        assert_eq!(
            node.press(iid, TOKEN, "wangwu", &task, &ack, None, "rc-u1")
                .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(node.feed(&inc, "i_ack").await.is_empty());
        let up = updates(&fake);
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0]["response_code"], "rc-u1");
        assert_eq!(up[0]["agentid"], 1000002);
        let quote = up[0]["template_card"]["quote_area"]["quote_text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(quote.contains("not linked"), "{quote}");
        assert_eq!(
            up[0]["template_card"]["main_title"]["desc"],
            "Critical · Triggered"
        );

        // Start processing: acknowledged as the owner from the card; the card is replaced
        // with the press's own code and now offers Refresh.
        assert_eq!(
            node.press(iid, TOKEN, OWNER_USER, &task, &ack, None, "rc-1")
                .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        let acks = node.feed(&inc, "i_ack").await;
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["creator_id"], node.owner);
        assert_eq!(acks[0]["detail"]["from"], "card");
        let up = updates(&fake);
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0]["userids"], json!([OWNER_USER]));
        assert_eq!(up[0]["response_code"], "rc-1");
        let card = &up[0]["template_card"];
        assert_eq!(card["task_id"], task);
        assert_eq!(card["main_title"]["desc"], "Critical · Processing");
        assert_eq!(card["quote_area"]["quote_text"], "Acknowledged by Owner");
        assert_eq!(buttons(card), open_buttons(&inc, &detail, true));

        // Snooze: the picked duration (2 hours when nothing else is picked).
        for (pick, minutes) in [(None, 120), (Some("720"), 720), (Some("1440"), 1440)] {
            node.clock.0.fetch_add(60_000, Ordering::SeqCst);
            let now = node.now();
            let code = format!("rc-s{minutes}");
            let snooze = format!("snooze:{inc}");
            assert_eq!(
                node.press(iid, TOKEN, OWNER_USER, &task, &snooze, pick, &code)
                    .await,
                200
            );
            assert_eq!(
                node.info(&inc).await["snoozed_before"],
                (now + minutes * 60_000) / 1000,
                "{minutes} min"
            );
            let up = updates(&fake);
            assert_eq!(up.len(), 1);
            assert_eq!(up[0]["response_code"], code);
        }
        // A duration the card does not offer is ignored.
        let before = node.info(&inc).await["snoozed_before"].clone();
        assert_eq!(
            node.press(
                iid,
                TOKEN,
                OWNER_USER,
                &task,
                &format!("snooze:{inc}"),
                Some("30"),
                "rc-bad"
            )
            .await,
            200
        );
        assert_eq!(node.info(&inc).await["snoozed_before"], before);
        assert!(updates(&fake).is_empty());

        // Close directly: the closed card keeps only Details (and Refresh).
        assert_eq!(
            node.press(
                iid,
                TOKEN,
                OWNER_USER,
                &task,
                &format!("close:{inc}"),
                None,
                "rc-c"
            )
            .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Closed");
        let up = updates(&fake);
        let card = &up[0]["template_card"];
        assert_eq!(card["source"]["desc_color"], 3);
        assert!(card.get("button_selection").is_none());
        assert_eq!(
            buttons(card),
            [
                ("Details".to_string(), detail.clone()),
                ("Refresh".to_string(), format!("refresh:{inc}"))
            ]
        );
        node.server.shutdown().await;
    }
);

on_both_backends!(
    cards_update_once_per_interaction_within_72_hours,
    |url: String| async move {
        // spec: RSP-312 (every card of the incident follows a change), RSP-313 (one update
        // per interaction within 72 h; Refresh re-renders and is a new interaction), RSP-310
        let fake = fake_wecom().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let iid = node.wecom_integration(&fake, SECRET).await;
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
        node.link(iid, node.owner, OWNER_USER).await;
        node.link(iid, bo, BO_USER).await;
        node.direct_rule(&[node.owner, bo], "wecom_app").await;

        let inc = node.incident("w-2", "cache down").await;
        let round = node.deliver().await;
        assert_eq!(round.sent, 2, "{round:?}");
        let st = node.states(&inc).await;
        let task_of = |person: i64| {
            st.iter()
                .find(|s| s.person_id == person)
                .unwrap()
                .provider_message_id
                .clone()
        };
        let (owner_task, bo_task) = (task_of(node.owner), task_of(bo));
        assert_ne!(owner_task, bo_task);
        let sends: Vec<Value> = fake
            .take()
            .into_iter()
            .filter(|r| r.path == "/cgi-bin/message/send")
            .map(|r| r.json())
            .collect();
        assert_eq!(sends.len(), 2);
        // The send's code of the owner's card.
        let n_owner = if sends[0]["touser"] == OWNER_USER {
            1
        } else {
            2
        };
        let owner_send_code = format!("rc-send-{n_owner}");

        // Bo acknowledges: Bo's card with his press's code, the owner's card with the code of
        // its send.
        assert_eq!(
            node.press(
                iid,
                TOKEN,
                BO_USER,
                &bo_task,
                &format!("ack:{inc}"),
                None,
                "rc-b1"
            )
            .await,
            200
        );
        // Bo's card is answered at once; the owner's follows through the outbox's refresh row.
        let mut up = updates(&fake);
        assert_eq!(up.len(), 1, "{up:?}");
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        up.extend(updates(&fake));
        assert_eq!(up.len(), 2, "{up:?}");
        assert_eq!(up[0]["userids"], json!([BO_USER]));
        assert_eq!(up[0]["response_code"], "rc-b1");
        assert_eq!(up[1]["userids"], json!([OWNER_USER]));
        assert_eq!(up[1]["response_code"], owner_send_code);
        assert_eq!(up[1]["template_card"]["task_id"], owner_task);
        for u in &up {
            assert_eq!(
                u["template_card"]["main_title"]["desc"],
                "Critical · Processing"
            );
            assert_eq!(
                u["template_card"]["quote_area"]["quote_text"],
                "Acknowledged by Bo"
            );
            // Its code is spent: the card offers Refresh.
            assert_eq!(buttons(&u["template_card"]).last().unwrap().0, "Refresh");
        }

        // Bo snoozes: his card follows; the owner's card has no code left and is not
        // touched (WeCom would refuse it).
        assert_eq!(
            node.press(
                iid,
                TOKEN,
                BO_USER,
                &bo_task,
                &format!("snooze:{inc}"),
                Some("240"),
                "rc-b2"
            )
            .await,
            200
        );
        node.deliver().await;
        let up = updates(&fake);
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0]["userids"], json!([BO_USER]));
        assert!(
            up[0]["template_card"]["main_title"]["desc"]
                .as_str()
                .unwrap()
                .contains("Snoozed until")
        );

        // The owner presses Refresh: the current state, with the new interaction's code;
        // nothing changes on the incident.
        let snoozes = node.feed(&inc, "i_snooze").await.len();
        assert_eq!(
            node.press(
                iid,
                TOKEN,
                OWNER_USER,
                &owner_task,
                &format!("refresh:{inc}"),
                None,
                "rc-o1"
            )
            .await,
            200
        );
        let up = updates(&fake);
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0]["userids"], json!([OWNER_USER]));
        assert_eq!(up[0]["response_code"], "rc-o1");
        let card = &up[0]["template_card"];
        assert!(
            card["main_title"]["desc"]
                .as_str()
                .unwrap()
                .contains("Snoozed until")
        );
        assert!(card.get("quote_area").is_none());
        assert_eq!(buttons(card).last().unwrap().0, "Refresh");
        assert_eq!(node.feed(&inc, "i_snooze").await.len(), snoozes);
        assert_eq!(node.info(&inc).await["progress"], "Processing");

        // Once Bo is unlinked, his press changes nothing; his card says why.
        node.api(
            "/im/person/unlink",
            json!({"integration_id": iid, "person_id": bo}),
        )
        .await;
        assert_eq!(
            node.press(
                iid,
                TOKEN,
                BO_USER,
                &bo_task,
                &format!("close:{inc}"),
                None,
                "rc-b3"
            )
            .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        let up = updates(&fake);
        assert_eq!(up.len(), 1, "{up:?}");
        assert!(
            up[0]["template_card"]["quote_area"]["quote_text"]
                .as_str()
                .unwrap()
                .contains("not linked")
        );
        node.link(iid, bo, BO_USER).await;

        // 72 hours: a code older than that is not used.
        let inc2 = node.incident("w-3", "queue down").await;
        node.deliver().await;
        let st2 = node.states(&inc2).await;
        let owner_task2 = st2
            .iter()
            .find(|s| s.person_id == node.owner)
            .unwrap()
            .provider_message_id
            .clone();
        fake.take();
        node.clock
            .0
            .fetch_add(72 * 3600 * 1000 + 60_000, Ordering::SeqCst);
        assert_eq!(
            node.press(
                iid,
                TOKEN,
                OWNER_USER,
                &owner_task2,
                &format!("ack:{inc2}"),
                None,
                "rc-o2"
            )
            .await,
            200
        );
        assert_eq!(node.info(&inc2).await["progress"], "Processing");
        let up: Vec<Value> = fake
            .take()
            .into_iter()
            .filter(|r| r.path == "/cgi-bin/message/update_template_card")
            .map(|r| r.json())
            .collect();
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0]["userids"], json!([OWNER_USER]));
        assert_eq!(up[0]["response_code"], "rc-o2");
        // No code was ever offered to WeCom twice.
        node.server.shutdown().await;
    }
);

on_both_backends!(
    misconfigured_apps_fail_with_the_platforms_message,
    |url: String| async move {
        // spec: RSP-302 (a misconfigured adapter fails with provider_error:<platform message>)
        let fake = fake_wecom().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let iid = node.wecom_integration(&fake, "notTheSecret").await;
        node.link(iid, node.owner, OWNER_USER).await;
        node.direct_rule(&[node.owner], "wecom_app").await;
        let inc = node.incident("w-4", "disk full").await;
        node.deliver().await;
        let st = node.states(&inc).await;
        let row = st.iter().find(|s| s.channel == "wecom_app").unwrap();
        assert_eq!(
            (row.status.as_str(), row.failed_reason.as_str()),
            ("failed", "provider_error:invalid credential")
        );
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].path, "/cgi-bin/gettoken");
        node.server.shutdown().await;
    }
);

on_both_backends!(
    stale_callbacks_are_refused_as_replays,
    |url: String| async move {
        // spec: RSP-302 (callbacks are proved with Token + EncodingAESKey; a request signed
        // more than five minutes from our clock is a replay), RSP-310 (nothing changes)
        let fake = fake_wecom().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url).await;
        let iid = node.wecom_integration(&fake, SECRET).await;
        node.link(iid, node.owner, OWNER_USER).await;
        node.direct_rule(&[node.owner], "wecom_app").await;
        let inc = node.incident("w-5", "cache cold").await;
        node.deliver().await;
        let task = node.states(&inc).await[0].provider_message_id.clone();
        fake.take();
        let inner = format!(
            "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{OWNER_USER}]]></FromUserName><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[ack:{inc}]]></EventKey><TaskId><![CDATA[{task}]]></TaskId><ResponseCode><![CDATA[rc-x]]></ResponseCode></xml>"
        );
        let now = node.now() / 1000;
        // Signed correctly, but six minutes in the past or in the future.
        for ts in [now - 360, now + 360] {
            assert_eq!(node.post_event_at(iid, TOKEN, &inner, ts).await, 401);
        }
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(node.feed(&inc, "i_ack").await.is_empty());
        assert!(fake.take().is_empty());
        // A request captured now and replayed six minutes later is refused the same way.
        node.clock.0.fetch_add(6 * 60 * 1000, Ordering::SeqCst);
        assert_eq!(node.post_event_at(iid, TOKEN, &inner, now).await, 401);
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        // Within the window it is accepted.
        assert_eq!(
            node.post_event_at(iid, TOKEN, &inner, node.now() / 1000 - 240)
                .await,
            200
        );
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        node.server.shutdown().await;
    }
);
