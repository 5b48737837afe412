//! The Slack app channel end to end (response.md §2.19 RSP-286/287/332, §2.20 RSP-310/311,
//! RSP-045; docs/slack.md): an IM integration is created and a member linked over the Open
//! API, an escalation rule sends `slack_app` direct messages, the delivery engine posts the
//! card to a fake Slack Web API (a local HTTP server that records every request), and signed
//! button presses on the interactivity endpoint act on the incident as the linked member and
//! replace the card through `response_url`. Time is an injected clock. SQLite always,
//! PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use common::{ManualClock, test_config, wall_ms};
use klaxon_notify::{Deliverer, NotifyConfig};
use klaxon_server::{Clock, Config, Server};
use serde_json::{Value, json};

const BOT_TOKEN: &str = "xoxb-1111-2222-testtoken";
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const OWNER_SLACK: &str = "U0OWNER1";
const DM_CHANNEL: &str = "D0SLACK1";
const OTHER_DM_CHANNEL: &str = "D0SLACK2";
const POSTED_TS: &str = "1700000000.000100";
const GONE_CHANNEL: &str = "C0GONE";

// ---- a fake Slack ----

#[derive(Debug, Clone)]
struct Req {
    path: String,
    auth: String,
    content_type: String,
    key: String,
    body: String,
}

#[derive(Clone, Default)]
struct FakeSlack {
    reqs: Arc<Mutex<Vec<Req>>>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl FakeSlack {
    async fn start() -> FakeSlack {
        let fake = FakeSlack::default();
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

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.lock().unwrap().unwrap())
    }

    /// The requests recorded since the last call.
    fn take(&self) -> Vec<Req> {
        std::mem::take(&mut *self.reqs.lock().unwrap())
    }
}

/// Answers like Slack: `chat.postMessage` checks the bot token and answers `{ok, channel,
/// ts}`; a `response_url` answers `ok`.
async fn handle(
    State(fake): State<FakeSlack>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let path = uri.path().to_string();
    let answer = if path == "/api/chat.postMessage" || path == "/api/chat.update" {
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        // Each user's DM with the app is a channel of its own; a Slack channel (`C…`) is
        // answered as itself, and GONE_CHANNEL is one the app was removed from.
        let channel = match v["channel"].as_str() {
            Some(OWNER_SLACK) | Some(DM_CHANNEL) => DM_CHANNEL,
            Some(c) if c.starts_with('C') => c,
            _ => OTHER_DM_CHANNEL,
        };
        if h("authorization") != format!("Bearer {BOT_TOKEN}") {
            json!({"ok": false, "error": "invalid_auth"}).to_string()
        } else if channel == GONE_CHANNEL {
            json!({"ok": false, "error": "not_in_channel"}).to_string()
        } else {
            json!({"ok": true, "channel": channel, "ts": POSTED_TS}).to_string()
        }
    } else {
        "ok".to_string()
    };
    fake.reqs.lock().unwrap().push(Req {
        path,
        auth: h("authorization"),
        content_type: h("content-type"),
        key: h("idempotency-key"),
        body,
    });
    (StatusCode::OK, answer)
}

// ---- a node whose delivery the test drives ----

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    notify: NotifyConfig,
    owner: i64,
    account: i64,
    channel: i64,
}

impl Node {
    async fn start(dir: &std::path::Path, url: &str, fake: &FakeSlack) -> Node {
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let notify = NotifyConfig {
            allow_private_targets: true,
            slack_api_base: fake.url("/api"),
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
            channel: b.channel_id,
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

    /// The error of a call that must fail with 400 `InvalidParameter`.
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

    /// Pushes one Critical alert and returns its incident's id once it exists.
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

    async fn rule(&self, channels: Value, template_id: &str) {
        self.rule_for(&[self.owner], channels, template_id).await;
    }

    async fn rule_for(&self, persons: &[i64], channels: Value, template_id: &str) {
        self.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": self.channel,
                "rule_name": "Primary",
                "template_id": template_id,
                "layers": [{"target": {"person_ids": persons,
                                       "by": {"follow_preference": false, "critical": channels}},
                            "escalate_window": 30}],
            }),
        )
        .await;
    }

    async fn slack_integration(&self) -> i64 {
        let created = self
            .api(
                "/im/integration/create",
                json!({"type": "slack", "name": "Ops Slack", "bot_token": BOT_TOKEN,
                       "signing_secret": SIGNING_SECRET}),
            )
            .await;
        created["integration_id"].as_i64().unwrap()
    }

    /// POSTs a `block_actions` interaction as Slack does: the form field `payload`, signed
    /// with `secret` at `ts` (Unix seconds) unless `sign` is false.
    async fn press(
        &self,
        integration_id: i64,
        user: &str,
        action: Value,
        response_url: &str,
        signing: Signing,
    ) -> u16 {
        self.press_in(
            DM_CHANNEL,
            integration_id,
            user,
            action,
            response_url,
            signing,
        )
        .await
    }

    /// [`Self::press`] on a card posted in `channel`.
    async fn press_in(
        &self,
        channel: &str,
        integration_id: i64,
        user: &str,
        action: Value,
        response_url: &str,
        signing: Signing,
    ) -> u16 {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": user, "username": "someone", "team_id": "T0TEAM"},
            "team": {"id": "T0TEAM", "domain": "ops"},
            "api_app_id": "A0APP",
            "container": {"type": "message", "message_ts": POSTED_TS, "channel_id": channel},
            "response_url": response_url,
            "actions": [action],
        });
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let mut req = self
            .http
            .post(format!(
                "{}/im/slack/interactive/{integration_id}",
                self.server.base_url()
            ))
            .header("Content-Type", "application/x-www-form-urlencoded");
        let now_s = self.now() / 1000;
        match signing {
            Signing::Good => {
                let ts = now_s.to_string();
                let sig = klaxon_notify::slack::signature(SIGNING_SECRET, &ts, body.as_bytes());
                req = req
                    .header("X-Slack-Request-Timestamp", ts)
                    .header("X-Slack-Signature", sig);
            }
            Signing::WrongSecret => {
                let ts = now_s.to_string();
                let sig = klaxon_notify::slack::signature("not-the-secret", &ts, body.as_bytes());
                req = req
                    .header("X-Slack-Request-Timestamp", ts)
                    .header("X-Slack-Signature", sig);
            }
            Signing::Stale => {
                let ts = (now_s - 301).to_string();
                let sig = klaxon_notify::slack::signature(SIGNING_SECRET, &ts, body.as_bytes());
                req = req
                    .header("X-Slack-Request-Timestamp", ts)
                    .header("X-Slack-Signature", sig);
            }
            Signing::None => {}
        }
        req.body(body).send().await.unwrap().status().as_u16()
    }
}

#[derive(Clone, Copy)]
enum Signing {
    Good,
    WrongSecret,
    Stale,
    None,
}

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

/// The card as RSP-286/RSP-311 want it, written out in full.
/// The incident a card is about: id, short number, details link.
struct Shown<'a> {
    inc: &'a str,
    num: &'a str,
    detail: &'a str,
}

fn expected_card(
    shown: &Shown<'_>,
    state_line: &str,
    body: &str,
    note: Option<&str>,
    closed: bool,
    outlier: bool,
) -> Value {
    let (inc, num, detail) = (shown.inc, shown.num, shown.detail);
    let headline = format!("INC #{num} db down & out");
    // RSP-453: a rare incident's header carries the outlier marker.
    let header = if outlier {
        format!("[Outlier] {headline}")
    } else {
        headline.clone()
    };
    let details = json!({"type": "button", "action_id": "klaxon_details",
                         "text": plain("Details"), "url": detail});
    let elements = if closed {
        json!([details])
    } else {
        json!([
            {"type": "button", "action_id": "klaxon_ack", "text": plain("Acknowledge"),
             "style": "primary", "value": inc},
            {"type": "button", "action_id": "klaxon_close", "text": plain("Close"),
             "style": "danger", "value": inc},
            {"type": "button", "action_id": "klaxon_snooze", "text": plain("Snooze 2 hours"),
             "value": format!("{inc}:120")},
            {"type": "static_select", "action_id": "klaxon_snooze_menu",
             "placeholder": plain("Snooze longer"),
             "options": [
                {"text": plain("4 hours"), "value": format!("{inc}:240")},
                {"text": plain("12 hours"), "value": format!("{inc}:720")},
                {"text": plain("24 hours"), "value": format!("{inc}:1440")},
             ]},
            details,
        ])
    };
    let mut blocks = vec![
        json!({"type": "header", "text": plain(&header)}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": state_line}]}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": body}}),
    ];
    if let Some(n) = note {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": n}]}));
    }
    blocks.push(json!({"type": "actions", "block_id": "klaxon_actions", "elements": elements}));
    json!({
        "text": format!("INC #{num} db down &amp; out"),
        "attachments": [{"color": if closed { "#84CC16" } else { "#C80000" }, "blocks": blocks}],
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

// ---- the tests ----

on_both_backends!(
    the_card_is_sent_and_its_buttons_act_as_the_linked_member,
    |url: String| async move {
        // spec: RSP-286 (card: colour, INC #num, title, template body, buttons), RSP-453, RSP-347
        // (empty lines removed), RSP-311 (buttons, from = card), RSP-045 (2 h one click;
        // 4/12/24 h menu), RSP-041 (snooze end), RSP-310 (linked member), RSP-312 (card
        // updated), RSP-036, RSP-050
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;

        // The integration: credentials checked, never answered in full.
        for (body, field) in [
            (
                json!({"type": "line", "name": "F", "bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET}),
                "type",
            ),
            (
                json!({"type": "slack", "name": "S", "bot_token": "xoxp-user-token", "signing_secret": SIGNING_SECRET}),
                "bot_token",
            ),
            (
                json!({"type": "slack", "name": "S", "bot_token": BOT_TOKEN}),
                "signing_secret",
            ),
            (
                json!({"type": "slack", "bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET}),
                "name",
            ),
        ] {
            let msg = node.invalid("/im/integration/create", body).await;
            assert!(msg.starts_with(field), "{msg}");
        }
        assert_eq!(
            node.api("/im/integration/list", json!({})).await["total"],
            0
        );
        let created = node
            .api(
                "/im/integration/create",
                json!({"type": "slack", "name": "Ops Slack", "bot_token": BOT_TOKEN,
                       "signing_secret": SIGNING_SECRET}),
            )
            .await;
        let iid = created["integration_id"].as_i64().unwrap();
        assert_eq!(created["bot_token"], "xoxb-…oken");
        assert_eq!(created["signing_secret"], "…85a5");
        assert_eq!(
            created["interactivity_url"],
            format!("{}/im/slack/interactive/{iid}", node.server.base_url())
        );
        let listed = node.api("/im/integration/list", json!({})).await;
        assert_eq!(listed["total"], 1);
        assert!(!listed.to_string().contains(BOT_TOKEN));
        assert!(!listed.to_string().contains(SIGNING_SECRET));

        // Linking: a Slack user id, one member per Slack user.
        let msg = node
            .invalid(
                "/im/person/link",
                json!({"integration_id": iid, "person_id": node.owner, "im_user_id": "C0CHANNEL"}),
            )
            .await;
        assert!(msg.starts_with("im_user_id"), "{msg}");
        node.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": node.owner, "im_user_id": OWNER_SLACK}),
        )
        .await;
        let links = node
            .api("/im/person/list", json!({"integration_id": iid}))
            .await;
        assert_eq!(links["items"][0]["person_id"], node.owner);
        assert_eq!(links["items"][0]["im_user_id"], OWNER_SLACK);

        // A rule sending slack_app with a custom template whose blank lines disappear.
        let tid = node
            .api(
                "/template/create",
                json!({"template_name": "Slack", "slack_app": "Title: {{.Title}}\n\n   \nSeverity: {{.IncidentSeverity}}\n"}),
            )
            .await["template_id"]
            .as_str()
            .unwrap()
            .to_string();
        node.rule(json!(["slack_app"]), &tid).await;
        let inc = node.incident("db-1", "db down & out").await;
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let states = node
            .server
            .store()
            .delivery_states(node.account, &inc)
            .await
            .unwrap();
        assert_eq!(states.len(), 1, "{states:?}");
        assert_eq!(states[0].channel, "slack_app");
        assert_eq!(states[0].status, "sent");
        assert_eq!(
            states[0].provider_message_id,
            format!("{DM_CHANNEL}/{POSTED_TS}")
        );

        // The request Slack got, exactly.
        let info = node.info(&inc).await;
        let num = info["num"].as_str().unwrap().to_string();
        // The account's first incident has nothing like it: an outlier (RSP-452).
        assert_eq!(info["frequency"], "rare");
        let detail = format!("{}/incident/detail/{inc}", node.server.base_url());
        let shown = Shown {
            inc: &inc,
            num: &num,
            detail: &detail,
        };
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        let post = &reqs[0];
        assert_eq!(post.path, "/api/chat.postMessage");
        assert_eq!(post.auth, format!("Bearer {BOT_TOKEN}"));
        assert_eq!(post.content_type, "application/json; charset=utf-8");
        assert_eq!(post.key, states[0].rid);
        let mut want = expected_card(
            &shown,
            "*Critical* · Triggered",
            "Title: db down &amp; out\nSeverity: Critical",
            None,
            false,
            true,
        );
        want["channel"] = json!(OWNER_SLACK);
        assert_eq!(serde_json::from_str::<Value>(&post.body).unwrap(), want);

        // Signatures: wrong secret, none, stale → 401, nothing changes, nothing is posted.
        let ack = json!({"action_id": "klaxon_ack", "value": inc, "type": "button"});
        let respond = fake.url("/respond/1");
        for signing in [Signing::WrongSecret, Signing::None, Signing::Stale] {
            let status = node
                .press(iid, OWNER_SLACK, ack.clone(), &respond, signing)
                .await;
            assert_eq!(status, 401);
        }
        // An unknown integration looks the same as a bad signature.
        assert_eq!(
            node.press(iid + 1, OWNER_SLACK, ack.clone(), &respond, Signing::Good)
                .await,
            401
        );
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(fake.take().is_empty());

        // An unlinked Slack user is told so, alone; nothing changes.
        let status = node
            .press(iid, "U0NOBODY", ack.clone(), &respond, Signing::Good)
            .await;
        assert_eq!(status, 200);
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].path, "/respond/1");
        let v: Value = serde_json::from_str(&reqs[0].body).unwrap();
        assert_eq!(v["response_type"], "ephemeral");
        assert_eq!(v["replace_original"], false);
        assert!(v["text"].as_str().unwrap().contains("not linked"), "{v}");
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(node.feed(&inc, "i_ack").await.is_empty());

        // Acknowledge: as the owner, from the card; the card is replaced with the new state.
        let status = node
            .press(iid, OWNER_SLACK, ack.clone(), &respond, Signing::Good)
            .await;
        assert_eq!(status, 200);
        assert_eq!(node.info(&inc).await["progress"], "Processing");
        let acks = node.feed(&inc, "i_ack").await;
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["creator_id"], node.owner);
        assert_eq!(acks[0]["detail"]["from"], "card");
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].content_type, "application/json; charset=utf-8");
        let mut want = expected_card(
            &shown,
            "*Critical* · Processing",
            "Title: db down &amp; out\nSeverity: Critical",
            Some("Acknowledged by Owner"),
            false,
            true,
        );
        want["replace_original"] = json!(true);
        assert_eq!(serde_json::from_str::<Value>(&reqs[0].body).unwrap(), want);

        // Snooze: 2 hours with one click, then 4, 12 and 24 hours from the menu, each
        // replacing the last (RSP-041), at moving times.
        let presses = [
            (
                json!({"action_id": "klaxon_snooze", "value": format!("{inc}:120"), "type": "button"}),
                120,
            ),
            (
                json!({"action_id": "klaxon_snooze_menu", "type": "static_select",
                    "selected_option": {"value": format!("{inc}:240")}}),
                240,
            ),
            (
                json!({"action_id": "klaxon_snooze_menu", "type": "static_select",
                    "selected_option": {"value": format!("{inc}:720")}}),
                720,
            ),
            (
                json!({"action_id": "klaxon_snooze_menu", "type": "static_select",
                    "selected_option": {"value": format!("{inc}:1440")}}),
                1440,
            ),
        ];
        for (action, minutes) in presses {
            node.clock.0.fetch_add(60_000, Ordering::SeqCst);
            let now = node.now();
            let status = node
                .press(iid, OWNER_SLACK, action, &respond, Signing::Good)
                .await;
            assert_eq!(status, 200);
            let info = node.info(&inc).await;
            let until = now + minutes * 60_000;
            assert_eq!(info["snoozed_before"], until / 1000, "{minutes} min");
            let snoozes = node.feed(&inc, "i_snooze").await;
            assert_eq!(snoozes.last().unwrap()["detail"]["minutes"], minutes);
            let reqs = fake.take();
            assert_eq!(reqs.len(), 1);
            let v: Value = serde_json::from_str(&reqs[0].body).unwrap();
            let blocks = &v["attachments"][0]["blocks"];
            assert_eq!(
                blocks[1]["elements"][0]["text"],
                format!(
                    "*Critical* · Processing · Snoozed until {}",
                    snooze_end(until)
                )
            );
            assert_eq!(
                blocks[3]["elements"][0]["text"],
                format!("Snoozed for {} hours by Owner", minutes / 60)
            );
        }
        // A duration the card does not offer is ignored.
        let before = node.info(&inc).await["snoozed_before"].clone();
        let status = node
            .press(
                iid,
                OWNER_SLACK,
                json!({"action_id": "klaxon_snooze_menu", "selected_option": {"value": format!("{inc}:60")}}),
                &respond,
                Signing::Good,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(node.info(&inc).await["snoozed_before"], before);
        assert!(fake.take().is_empty());

        // Close: the card keeps only the Details link.
        let close = json!({"action_id": "klaxon_close", "value": inc, "type": "button"});
        let status = node
            .press(iid, OWNER_SLACK, close, &respond, Signing::Good)
            .await;
        assert_eq!(status, 200);
        let info = node.info(&inc).await;
        assert_eq!(info["progress"], "Closed");
        let closes = node.feed(&inc, "i_rslv").await;
        assert_eq!(closes.len(), 1);
        assert_eq!(closes[0]["detail"]["from"], "card");
        let reqs = fake.take();
        let mut want = expected_card(
            &shown,
            "*Critical* · Closed",
            "Title: db down &amp; out\nSeverity: Critical",
            Some("Closed by Owner"),
            true,
            true,
        );
        want["replace_original"] = json!(true);
        assert_eq!(serde_json::from_str::<Value>(&reqs[0].body).unwrap(), want);

        // Acknowledging a closed incident is refused (RSP-035): the user is told, alone.
        let status = node
            .press(iid, OWNER_SLACK, ack, &respond, Signing::Good)
            .await;
        assert_eq!(status, 200);
        let reqs = fake.take();
        let v: Value = serde_json::from_str(&reqs[0].body).unwrap();
        assert_eq!(v["response_type"], "ephemeral");
        assert!(
            v["text"]
                .as_str()
                .unwrap()
                .starts_with("Acknowledge failed:"),
            "{v}"
        );
        assert_eq!(node.feed(&inc, "i_ack").await.len(), 1);
        node.server.shutdown().await;
    }
);

on_both_backends!(
    a_linked_member_without_incidents_manage_changes_nothing,
    |url: String| async move {
        // spec: RSP-310 (acts as the linked member), RSP-522 (a Viewer reads but does not act)
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration().await;
        let viewer = node
            .api(
                "/member/invite",
                json!({"members": [{"email": "v@example.com", "member_name": "Vi", "role_ids": [8]}]}),
            )
            .await["items"][0]["member_id"]
            .as_i64()
            .unwrap();
        // A pending member cannot be linked: links need an enabled member.
        let msg = node
            .invalid(
                "/im/person/link",
                json!({"integration_id": iid, "person_id": viewer, "im_user_id": "U0VIEWER"}),
            )
            .await;
        assert!(msg.starts_with("person_id"), "{msg}");
        // Signing in once enables the member (RSP-551).
        node.server
            .store()
            .create_session(node.account, viewer, 60_000, node.now())
            .await
            .unwrap();
        node.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": viewer, "im_user_id": "U0VIEWER"}),
        )
        .await;
        // The same Slack user cannot be linked to a second member.
        let msg = node
            .invalid(
                "/im/person/link",
                json!({"integration_id": iid, "person_id": node.owner, "im_user_id": "U0VIEWER"}),
            )
            .await;
        assert!(msg.contains("already linked"), "{msg}");

        let inc = node.incident("db-2", "db down & out").await;
        let respond = fake.url("/respond/2");
        let status = node
            .press(
                iid,
                "U0VIEWER",
                json!({"action_id": "klaxon_ack", "value": inc}),
                &respond,
                Signing::Good,
            )
            .await;
        assert_eq!(status, 200);
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1);
        let v: Value = serde_json::from_str(&reqs[0].body).unwrap();
        assert_eq!(v["response_type"], "ephemeral");
        assert!(
            v["text"].as_str().unwrap().contains("Incidents Manage"),
            "{v}"
        );
        assert_eq!(node.info(&inc).await["progress"], "Triggered");
        assert!(node.feed(&inc, "i_ack").await.is_empty());

        // Unlinked, the same user is told to link their account.
        node.api(
            "/im/person/unlink",
            json!({"integration_id": iid, "person_id": viewer}),
        )
        .await;
        node.press(
            iid,
            "U0VIEWER",
            json!({"action_id": "klaxon_ack", "value": inc}),
            &respond,
            Signing::Good,
        )
        .await;
        let v: Value = serde_json::from_str(&fake.take()[0].body).unwrap();
        assert!(v["text"].as_str().unwrap().contains("not linked"), "{v}");
        node.server.shutdown().await;
    }
);

on_both_backends!(
    an_unlinked_member_fails_app_not_linked_and_falls_back_to_sms_and_email,
    |url: String| async move {
        // spec: RSP-332 (app_not_linked), RSP-281, RSP-287 (fallback sms + email, not a
        // channel already in the firing; reason fallback; i_notify fallback: true)
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        node.slack_integration().await;
        node.rule(json!(["slack_app", "email"]), "").await;
        let inc = node.incident("db-3", "db down & out").await;
        let before = node
            .server
            .store()
            .delivery_states(node.account, &inc)
            .await
            .unwrap();
        let channels: Vec<&str> = before.iter().map(|s| s.channel.as_str()).collect();
        assert_eq!(channels, ["slack_app", "email"]);
        node.deliver().await;
        assert!(fake.take().is_empty(), "nothing reaches Slack");
        let after = node
            .server
            .store()
            .delivery_states(node.account, &inc)
            .await
            .unwrap();
        let slack = after.iter().find(|s| s.channel == "slack_app").unwrap();
        assert_eq!(
            (slack.status.as_str(), slack.failed_reason.as_str()),
            ("failed", "app_not_linked")
        );
        // Only SMS is added: e-mail was already part of the firing.
        let channels: Vec<&str> = after.iter().map(|s| s.channel.as_str()).collect();
        assert_eq!(channels, ["slack_app", "email", "sms"], "{after:?}");
        let sms = after.iter().find(|s| s.channel == "sms").unwrap();
        // The owner has no phone on file: the fallback itself fails, visibly.
        assert_eq!(
            (sms.status.as_str(), sms.failed_reason.as_str()),
            ("failed", "contact_missing")
        );
        let notify = node.feed(&inc, "i_notify").await;
        assert_eq!(notify.len(), 1, "one entry per firing");
        let persons = notify[0]["detail"]["persons"].as_array().unwrap();
        let slack_p = persons
            .iter()
            .find(|p| p["channel"] == "slack_app")
            .unwrap();
        assert_eq!(slack_p["failed_reason"], "app_not_linked");
        let fb = persons.iter().find(|p| p["channel"] == "sms").unwrap();
        assert_eq!(fb["fallback"], true);
        assert_eq!(fb["rid"], sms.rid.as_str());
        assert_eq!(fb["person_id"], node.owner);
        assert!(
            !persons
                .iter()
                .any(|p| p["channel"] == "email" && p["fallback"] == true)
        );
        node.server.shutdown().await;
    }
);

on_both_backends!(
    a_slack_only_firing_falls_back_to_both,
    |url: String| async move {
        // spec: RSP-287 (both sms and email when neither was chosen)
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        node.rule(json!(["slack_app"]), "").await;
        let inc = node.incident("db-4", "db down & out").await;
        node.deliver().await;
        let after = node
            .server
            .store()
            .delivery_states(node.account, &inc)
            .await
            .unwrap();
        let channels: Vec<&str> = after.iter().map(|s| s.channel.as_str()).collect();
        assert_eq!(channels, ["slack_app", "sms", "email"], "{after:?}");
        assert_eq!(after[0].failed_reason, "app_not_linked");
        node.server.shutdown().await;
    }
);

on_both_backends!(
    a_press_updates_the_other_cards_of_the_incident,
    |url: String| async move {
        // spec: RSP-312 (every card already sent is updated to the current state)
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration().await;
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
        for (person, user) in [(node.owner, OWNER_SLACK), (bo, "U0BO")] {
            node.api(
                "/im/person/link",
                json!({"integration_id": iid, "person_id": person, "im_user_id": user}),
            )
            .await;
        }
        node.rule_for(&[node.owner, bo], json!(["slack_app"]), "")
            .await;
        let inc = node.incident("db-5", "db down & out").await;
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (2, 0), "{round:?}");
        let mut to: Vec<String> = fake
            .take()
            .iter()
            .map(|r| {
                assert_eq!(r.path, "/api/chat.postMessage");
                serde_json::from_str::<Value>(&r.body).unwrap()["channel"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        to.sort();
        assert_eq!(to, ["U0BO", OWNER_SLACK]);

        // The owner acknowledges on their card: it is replaced through response_url, and Bo's
        // card is updated in place with chat.update to the same content.
        let respond = fake.url("/respond/5");
        let status = node
            .press(
                iid,
                OWNER_SLACK,
                json!({"action_id": "klaxon_ack", "value": inc}),
                &respond,
                Signing::Good,
            )
            .await;
        assert_eq!(status, 200);
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].path, "/respond/5");
        let mut replaced: Value = serde_json::from_str(&reqs[0].body).unwrap();
        // The other cards follow through the outbox: one refresh row, sent by the worker.
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let reqs = fake.take();
        assert!(
            reqs.iter().all(|r| r.path == "/api/chat.update"),
            "{reqs:?}"
        );
        let update = reqs
            .iter()
            .find(|r| r.body.contains(OTHER_DM_CHANNEL))
            .expect("Bo's card is updated");
        assert_eq!(update.path, "/api/chat.update");
        assert_eq!(update.auth, format!("Bearer {BOT_TOKEN}"));
        assert_eq!(update.content_type, "application/json; charset=utf-8");
        let mut updated: Value = serde_json::from_str(&update.body).unwrap();
        assert_eq!(updated["channel"], OTHER_DM_CHANNEL);
        assert_eq!(updated["ts"], POSTED_TS);
        assert_eq!(
            updated["attachments"][0]["blocks"][1]["elements"][0]["text"],
            "*Critical* · Processing"
        );
        let u = updated.as_object_mut().unwrap();
        u.remove("channel");
        u.remove("ts");
        replaced.as_object_mut().unwrap().remove("replace_original");
        assert_eq!(updated, replaced);
        node.server.shutdown().await;
    }
);

on_both_backends!(
    a_change_made_outside_slack_updates_every_card,
    |url: String| async move {
        // spec: RSP-312 (after any change of progress, assignment or snooze, every card
        // already sent is updated — whatever made the change)
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration().await;
        node.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": node.owner, "im_user_id": OWNER_SLACK}),
        )
        .await;
        node.rule_for(&[node.owner], json!(["slack_app"]), "").await;
        let inc = node.incident("db-6", "db slow").await;
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        fake.take();

        // Nothing changed yet: nothing to refresh.
        let round = node.deliver().await;
        assert_eq!(round.sent, 0, "{round:?}");

        // Acknowledged through the Open API (as the console does): the card follows.
        node.api("/incident/ack", json!({"incident_ids": [inc]}))
            .await;
        assert!(fake.take().is_empty(), "nothing is sent inside the request");
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].path, "/api/chat.update");
        let updated: Value = serde_json::from_str(&reqs[0].body).unwrap();
        assert_eq!(updated["ts"], POSTED_TS);
        assert_eq!(
            updated["attachments"][0]["blocks"][1]["elements"][0]["text"],
            "*Critical* · Processing"
        );
        assert!(
            updated.to_string().contains("Acknowledged by "),
            "{updated}"
        );

        // Closed through the Open API: the card loses its buttons but Details.
        node.api("/incident/close", json!({"incident_ids": [inc]}))
            .await;
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        let updated: Value = serde_json::from_str(&reqs[0].body).unwrap();
        assert_eq!(
            updated["attachments"][0]["blocks"][1]["elements"][0]["text"],
            "*Critical* · Closed"
        );
        assert!(!updated.to_string().contains("klaxon_ack"), "{updated}");

        // The refresh rows are in the incident's outbox like every send.
        let refreshes = node
            .server
            .store()
            .delivery_states(node.account, &inc)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.channel == "card_refresh")
            .count();
        assert_eq!(refreshes, 2);
        node.server.shutdown().await;
    }
);

on_both_backends!(
    slack_channels_get_the_card_with_the_responders_mentioned,
    |url: String| async move {
        // spec: RSP-288 (group chats get the same interactive card), RSP-289 (linked Slack
        // users as <@U…>, others as plain @name), RSP-310 (a press in a channel acts as the
        // clicking user), RSP-312 (the other channel's card is updated), RSP-153 (a level
        // may notify chats only)
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration().await;
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
        // Only the owner is linked: Bo is mentioned by name.
        node.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": node.owner, "im_user_id": OWNER_SLACK}),
        )
        .await;
        let tid = node
            .api(
                "/template/create",
                json!({"template_name": "Slack", "slack_app": "Title: {{.Title}}\n\nSeverity: {{.IncidentSeverity}}"}),
            )
            .await["template_id"]
            .as_str()
            .unwrap()
            .to_string();
        node.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": node.channel,
                "rule_name": "Channels",
                "template_id": tid,
                "layers": [{"target": {"person_ids": [node.owner, bo],
                                       "webhooks": [{"type": "slack_app", "settings":
                                           {"integration_id": iid, "chat_ids": ["C0OPS", "C0DEV"]}}]},
                            "escalate_window": 30}],
            }),
        )
        .await;
        let inc = node.incident("db-ch", "db down & out").await;
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let states = node
            .server
            .store()
            .delivery_states(node.account, &inc)
            .await
            .unwrap();
        assert_eq!(states.len(), 1, "{states:?}");
        assert_eq!(states[0].channel, "slack_app");
        assert_eq!(states[0].person_id, 0);
        assert_eq!(states[0].status, "sent");
        assert_eq!(
            states[0].provider_message_id,
            format!("C0OPS/{POSTED_TS} C0DEV/{POSTED_TS}")
        );

        // One chat.postMessage per channel, through the integration's bot token, each the
        // direct-message card with the mentions in its text.
        let info = node.info(&inc).await;
        let num = info["num"].as_str().unwrap().to_string();
        let detail = format!("{}/incident/detail/{inc}", node.server.base_url());
        let shown = Shown {
            inc: &inc,
            num: &num,
            detail: &detail,
        };
        let reqs = fake.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        for (req, chat) in reqs.iter().zip(["C0OPS", "C0DEV"]) {
            assert_eq!(req.path, "/api/chat.postMessage");
            assert_eq!(req.auth, format!("Bearer {BOT_TOKEN}"));
            assert_eq!(req.content_type, "application/json; charset=utf-8");
            assert_eq!(req.key, states[0].rid);
            let mut want = expected_card(
                &shown,
                "*Critical* · Triggered",
                "Title: db down &amp; out\nSeverity: Critical",
                None,
                false,
                true,
            );
            want["text"] = json!(format!(
                "INC #{num} db down &amp; out\n<@{OWNER_SLACK}> @Bo"
            ));
            want["channel"] = json!(chat);
            assert_eq!(serde_json::from_str::<Value>(&req.body).unwrap(), want);
        }

        // The owner acknowledges from the card in C0OPS: the action is theirs, the pressed card
        // is replaced, and the card in C0DEV is updated in place to the same content (RSP-312).
        let respond = fake.url("/respond/ch");
        let status = node
            .press_in(
                "C0OPS",
                iid,
                OWNER_SLACK,
                json!({"action_id": "klaxon_ack", "value": inc}),
                &respond,
                Signing::Good,
            )
            .await;
        assert_eq!(status, 200);
        let info = node.info(&inc).await;
        assert_eq!(info["progress"], "Processing");
        let acks = node.feed(&inc, "i_ack").await;
        assert_eq!(acks.len(), 1, "{acks:?}");
        assert_eq!(acks[0]["creator_id"], node.owner);
        assert_eq!(acks[0]["detail"]["from"], "card");
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].path, "/respond/ch");
        let mut replaced: Value = serde_json::from_str(&reqs[0].body).unwrap();
        assert_eq!(replaced["replace_original"], true);
        assert_eq!(
            replaced["attachments"][0]["blocks"][1]["elements"][0]["text"],
            "*Critical* · Processing"
        );
        // The other channel's card follows through the outbox's refresh row.
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
        let reqs = fake.take();
        let update = reqs
            .iter()
            .find(|r| r.body.contains("\"C0DEV\""))
            .expect("the card in C0DEV is updated");
        assert_eq!(update.path, "/api/chat.update");
        assert_eq!(update.auth, format!("Bearer {BOT_TOKEN}"));
        let mut updated: Value = serde_json::from_str(&update.body).unwrap();
        assert_eq!(updated["channel"], "C0DEV");
        assert_eq!(updated["ts"], POSTED_TS);
        let u = updated.as_object_mut().unwrap();
        u.remove("channel");
        u.remove("ts");
        replaced.as_object_mut().unwrap().remove("replace_original");
        assert_eq!(updated, replaced);
        node.server.shutdown().await;
    }
);

on_both_backends!(
    slack_channel_sends_fail_with_a_clear_reason,
    |url: String| async move {
        // spec: RSP-300 (a chat the app left fails with chat_unavailable), RSP-302
        // (a misconfigured adapter fails with provider_error:<reason>), RSP-290
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration().await;
        let disabled = node
            .api(
                "/im/integration/create",
                json!({"type": "slack", "name": "Old Slack", "bot_token": BOT_TOKEN,
                       "signing_secret": SIGNING_SECRET, "status": "disabled"}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        // Another platform's integration, created directly in the store.
        let feishu = node
            .server
            .store()
            .create_im_integration(
                node.account,
                &klaxon_store::ImIntegrationDraft {
                    kind: "feishu".into(),
                    name: "Feishu".into(),
                    bot_token: "t".into(),
                    signing_secret: "s".into(),
                    war_room_enabled: false,
                    status: "enabled".into(),
                    ..klaxon_store::ImIntegrationDraft::default()
                },
                node.owner,
                node.now(),
            )
            .await
            .unwrap()
            .unwrap()
            .integration_id;
        let hook = |id: i64, chats: Value| json!({"type": "slack_app", "settings": {"integration_id": id, "chat_ids": chats}});
        node.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": node.channel,
                "rule_name": "Channels",
                "layers": [{"target": {"person_ids": [node.owner],
                                       "webhooks": [
                                           hook(987_654_321, json!(["C0OPS"])),
                                           hook(feishu, json!(["C0OPS"])),
                                           hook(disabled, json!(["C0OPS"])),
                                           hook(iid, json!([GONE_CHANNEL])),
                                           hook(iid, json!(["C0OPS", GONE_CHANNEL])),
                                       ]},
                            "escalate_window": 30}],
            }),
        )
        .await;
        let inc = node.incident("db-fail", "db down & out").await;
        let round = node.deliver().await;
        assert_eq!(
            (round.sent, round.failed, round.retried),
            (0, 5, 0),
            "{round:?}"
        );
        let states = node
            .server
            .store()
            .delivery_states(node.account, &inc)
            .await
            .unwrap();
        let mut reasons: Vec<String> = states.iter().map(|s| s.failed_reason.clone()).collect();
        reasons.sort();
        let mut want = vec![
            "provider_error:IM integration 987654321 does not exist".to_string(),
            format!(
                "provider_error:IM integration {feishu} is a feishu integration, not a Slack one"
            ),
            format!("provider_error:IM integration {disabled} is disabled"),
            "chat_unavailable".to_string(),
            "chat_unavailable".to_string(),
        ];
        want.sort();
        assert_eq!(reasons, want, "{states:?}");
        assert!(states.iter().all(|s| s.attempts == 1), "{states:?}");
        // Nothing was posted through an integration that cannot be used; the reachable
        // channel of the last chat did get its card.
        let mut to: Vec<String> = fake
            .take()
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(&r.body).unwrap()["channel"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        to.sort();
        assert_eq!(to, ["C0GONE", "C0GONE", "C0OPS"]);
        node.server.shutdown().await;
    }
);

on_both_backends!(
    shift_reminders_go_to_slack_channels_as_text,
    |url: String| async move {
        // spec: RSP-232 (group chats: one message per chat, the built-in text, the recipients
        // mentioned), RSP-289 (linked Slack users as <@U…>)
        use klaxon_core::schedule::{
            self, Calendars, Group, GroupMember, Layer, ReminderChat, ReminderChatType,
            RotationUnit, Schedule, ScheduleNotify,
        };
        const HOUR: i64 = 3_600_000;
        const GHOST: i64 = 987_654;
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let iid = node.slack_integration().await;
        node.api(
            "/im/person/link",
            json!({"integration_id": iid, "person_id": node.owner, "im_user_id": OWNER_SLACK}),
        )
        .await;
        // The handoff is a whole hour 2 to 3 hours from now: GHOST (no member) hands over to
        // the owner for a week.
        let handoff = (node.now() / HOUR + 3) * HOUR;
        node.clock
            .0
            .fetch_add(handoff - 2 * HOUR - node.now(), Ordering::SeqCst);
        let group = |p| Group {
            group_name: String::new(),
            members: vec![GroupMember {
                person_id: p,
                role_id: 0,
            }],
        };
        let mut settings = serde_json::Map::new();
        settings.insert("integration_id".into(), json!(iid));
        settings.insert("chat_ids".into(), json!(["C0OPS", "C0DEV"]));
        let s = Schedule {
            schedule_name: "Database primary".into(),
            time_zone: "Europe/Paris".into(),
            layers: vec![Layer {
                layer_id: 1,
                layer_name: "Weekly".into(),
                groups: vec![group(GHOST), group(node.owner)],
                layer_start: handoff - 7 * 24 * HOUR,
                rotation_unit: RotationUnit::Week,
                rotation_value: 1,
                ..Layer::default()
            }],
            notify: ScheduleNotify {
                advance_in_time: 1800,
                by: None,
                webhooks: vec![ReminderChat {
                    chat_type: ReminderChatType::SlackApp,
                    settings,
                }],
                ..ScheduleNotify::default()
            },
            ..Schedule::default()
        };
        let s = schedule::create_schedule(s, node.now(), Calendars::default()).unwrap();
        let id = node
            .server
            .store()
            .create_schedule(node.account, &s)
            .await
            .unwrap()
            .unwrap();
        let store = node.server.store().clone();
        store.sweep_shift_reminders(node.now()).await.unwrap();
        // Half an hour before the handoff.
        node.clock.0.fetch_add(90 * 60_000, Ordering::SeqCst);
        let sweep = store.sweep_shift_reminders(node.now()).await.unwrap();
        assert_eq!(sweep.queued, 1, "{sweep:?}");
        let round = node.deliver().await;
        assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");

        let at = |t: i64| {
            jiff::Timestamp::from_millisecond(t)
                .unwrap()
                .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Paris").unwrap())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        };
        let text = format!(
            "Shift reminder: Database primary hands over at {h}\n\
             Owner goes on call at {h} until {end}.\n\
             member {GHOST} goes off call at {h}.\n\
             Schedule: {base}/schedules/{id}\n\n<@{OWNER_SLACK}>",
            h = at(handoff),
            end = at(handoff + 7 * 24 * HOUR),
            base = node.server.base_url(),
        );
        let reqs = fake.take();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        for (req, chat) in reqs.iter().zip(["C0OPS", "C0DEV"]) {
            assert_eq!(req.path, "/api/chat.postMessage");
            assert_eq!(req.auth, format!("Bearer {BOT_TOKEN}"));
            // Plain text, no card and no buttons.
            assert_eq!(
                serde_json::from_str::<Value>(&req.body).unwrap(),
                json!({"channel": chat, "text": text})
            );
        }
        node.server.shutdown().await;
    }
);

on_both_backends!(
    a_preferred_slack_app_channel_needs_a_linked_identity_on_the_chosen_integration,
    |url: String| async move {
        // spec: RSP-332 (app_not_linked, the fallback of RSP-287, the warning), RSP-157 (a
        // direct assignment follows the preference), response.md 1.15 (integration_id picks
        // one instance)
        let fake = FakeSlack::start().await;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(dir.path(), &url, &fake).await;
        let linked = node.slack_integration().await;
        node.api(
            "/im/person/link",
            json!({"integration_id": linked, "person_id": node.owner, "im_user_id": OWNER_SLACK}),
        )
        .await;
        let other = node
            .api(
                "/im/integration/create",
                json!({"type": "slack", "name": "Other Slack",
                       "bot_token": "xoxb-3333-4444-othertoken",
                       "signing_secret": SIGNING_SECRET}),
            )
            .await["integration_id"]
            .as_i64()
            .unwrap();
        let prefer = |iid: i64| {
            json!({"critical": [{"channel": "slack_app", "integration_id": iid}],
                   "warning": ["email"], "info": ["email"]})
        };
        let n = &node;
        let direct = |title: &'static str| async move {
            n.api(
                "/incident/create",
                json!({"title": title, "incident_severity": "Critical",
                       "assigned_to": {"person_ids": [n.owner]}}),
            )
            .await["incident_id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let states = |id: String| async move {
            n.server
                .store()
                .delivery_states(n.account, &id)
                .await
                .unwrap()
        };

        // The owner is not linked on `other`: the console's warning, then app_not_linked and
        // SMS plus e-mail instead.
        let saved = node.api("/member/preference/update", prefer(other)).await;
        assert_eq!(saved["warnings"][0]["field"], "critical[0]", "{saved}");
        assert_eq!(saved["warnings"][0]["reason"], "app_not_linked");
        let inc = direct("unlinked").await;
        node.deliver().await;
        assert!(fake.take().is_empty(), "nothing reaches Slack");
        let after = states(inc.clone()).await;
        let channels: Vec<&str> = after.iter().map(|s| s.channel.as_str()).collect();
        assert_eq!(channels, ["slack_app", "sms", "email"], "{after:?}");
        assert_eq!(
            (after[0].status.as_str(), after[0].failed_reason.as_str()),
            ("failed", "app_not_linked")
        );
        let notify = node.feed(&inc, "i_notify").await;
        let persons = notify[0]["detail"]["persons"].as_array().unwrap();
        assert!(
            persons
                .iter()
                .any(|p| p["channel"] == "email" && p["fallback"] == true),
            "{persons:?}"
        );

        // Picking the integration the owner is linked on: no warning, and the card goes
        // through that one (its bot token) to the owner's Slack user.
        let saved = node.api("/member/preference/update", prefer(linked)).await;
        assert_eq!(saved["warnings"], json!([]), "{saved}");
        let inc = direct("linked").await;
        node.deliver().await;
        let reqs = fake.take();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].path, "/api/chat.postMessage");
        assert_eq!(reqs[0].auth, format!("Bearer {BOT_TOKEN}"));
        let body: Value = serde_json::from_str(&reqs[0].body).unwrap();
        assert_eq!(body["channel"], OWNER_SLACK);
        let after = states(inc).await;
        let channels: Vec<(&str, &str)> = after
            .iter()
            .map(|s| (s.channel.as_str(), s.status.as_str()))
            .collect();
        assert_eq!(channels, [("slack_app", "sent")], "{after:?}");
        node.server.shutdown().await;
    }
);
