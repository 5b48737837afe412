//! Chat-bot alert integrations over HTTP (ingest.md ING-218): a tool that only knows how to
//! notify a DingTalk, Feishu or WeCom group bot feeds Klaxon by pointing the bot URL at the
//! integration's push URL. On SQLite and (with `KLAXON_TEST_DATABASE_URL`) PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::TestServer;
use serde_json::{Value, json};

/// Creates a dedicated integration of `integration_type` with `settings`; returns its key.
async fn create(t: &TestServer, integration_type: &str, settings: Value) -> String {
    let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
    let (status, body) = t
        .api(
            "/integration/create",
            json!({
                "integration_name": format!("{integration_type} bot"),
                "type": integration_type,
                "kind": "dedicated",
                "channel_id": channel_id,
                "settings": settings,
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let key = body["data"]["integration_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        body["data"]["push_url"],
        format!(
            "{}/event/push/alert/{integration_type}?integration_key={key}",
            t.base
        )
        .as_str()
    );
    key
}

async fn post(t: &TestServer, integration_type: &str, query: &str, body: &Value) -> (u16, Value) {
    let resp = t
        .http
        .post(format!(
            "{}/event/push/alert/{integration_type}?{query}",
            t.base
        ))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

on_both_backends!(bots_answer_in_their_own_shapes, |url: String| async move {
    // spec: ING-218 — text and markdown become Warning alerts; the answer is the bot's success
    // form, and each refusal is the bot's error form, ingesting nothing.
    let mut t = TestServer::start(&url).await;
    let ding = create(&t, "dingtalk_alert", json!({})).await;
    let feishu = create(&t, "feishu_alert", json!({})).await;
    let wecom = create(&t, "wecom_alert", json!({})).await;

    let (status, body) = post(
        &t,
        "dingtalk_alert",
        &format!("integration_key={ding}&service=billing"),
        &json!({"msgtype": "markdown", "markdown": {"title": "Disk full", "text": "db-1 at 99%"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"errcode": 0, "errmsg": "ok"}));
    let (status, body) = post(
        &t,
        "feishu_alert",
        &format!("integration_key={feishu}"),
        &json!({"msg_type": "text", "content": {"text": "backup failed"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"code": 0, "msg": "success", "data": {}}));
    let (status, body) = post(
        &t,
        "wecom_alert",
        &format!("integration_key={wecom}"),
        &json!({"msgtype": "text", "text": {"content": "queue stuck"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"errcode": 0, "errmsg": "ok"}));
    t.drained().await;
    let mut alerts = t.alerts().await;
    alerts.sort_by_key(|a| a["title"].as_str().unwrap_or("").to_string());
    let titles: Vec<&str> = alerts.iter().filter_map(|a| a["title"].as_str()).collect();
    assert_eq!(titles, ["Disk full", "Feishu Alert", "Wecom Alert"]);
    assert!(alerts.iter().all(|a| a["alert_severity"] == "Warning"));
    assert_eq!(alerts[0]["labels"]["service"], "billing");
    assert_eq!(alerts[0]["description"], "db-1 at 99%");

    // Refusals: unsupported type, malformed body, unknown key, wrong integration type.
    let refusals = [
        (
            "dingtalk_alert",
            format!("integration_key={ding}"),
            json!({"msgtype": "actionCard", "actionCard": {"title": "t", "text": "x"}}),
            400,
            json!(40035),
        ),
        (
            "wecom_alert",
            format!("integration_key={wecom}"),
            json!({"msgtype": "news", "news": {"articles": []}}),
            400,
            json!(40008),
        ),
        (
            "wecom_alert",
            format!("integration_key={wecom}"),
            json!({"msgtype": "text"}),
            400,
            json!(40035),
        ),
        (
            "feishu_alert",
            format!("integration_key={feishu}"),
            json!({"msg_type": "interactive", "card": {}}),
            400,
            json!(9499),
        ),
        (
            "feishu_alert",
            "integration_key=0123456789abcdef0123456789abcdef".to_string(),
            json!({"msg_type": "text", "content": {"text": "x"}}),
            400,
            json!(19001),
        ),
        (
            "dingtalk_alert",
            String::new(),
            json!({"msgtype": "text", "text": {"content": "x"}}),
            401,
            json!(300001),
        ),
        (
            "dingtalk_alert",
            format!("integration_key={wecom}"),
            json!({"msgtype": "text", "text": {"content": "x"}}),
            400,
            json!(300001),
        ),
    ];
    for (kind, query, body, want_status, want_code) in refusals {
        let (status, answer) = post(&t, kind, &query, &body).await;
        assert_eq!(status, want_status, "{kind} {body}: {answer}");
        let code = if kind == "feishu_alert" {
            &answer["code"]
        } else {
            &answer["errcode"]
        };
        assert_eq!(code, &want_code, "{kind} {body}: {answer}");
        let message = if kind == "feishu_alert" {
            &answer["msg"]
        } else {
            &answer["errmsg"]
        };
        assert!(message.as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    t.drained().await;
    assert_eq!(t.alerts().await.len(), 3, "refused messages ingest nothing");
    t.stop().await;
});

on_both_backends!(by_rules_opens_and_resolves, |url: String| async move {
    // spec: ING-218, ING-216 — the worked example with the title in place of the subject: a
    // message opens an alert keyed on its title, a later one with RESOLVED in its text closes
    // it; an unmatched message is dropped when `drop_unmatched` is set.
    let mut t = TestServer::start(&url).await;
    let key = create(
        &t,
        "dingtalk_alert",
        json!({
            "push_mode": "by_rules",
            "drop_unmatched": true,
            "rules": [
                {"conditions": [[{"key": "content", "oper": "IN", "vals": ["/RESOLVED/"]}]], "action": "close"},
                {"conditions": [[{"key": "title", "oper": "IN", "vals": ["DB*"]}]], "action": "trigger"}
            ],
            "key_rule": {"source": "title", "pattern": "/(.*)/"}
        }),
    )
    .await;
    let md = |title: &str, text: &str| json!({"msgtype": "markdown", "markdown": {"title": title, "text": text}});
    let query = format!("integration_key={key}");
    let (status, _) = post(&t, "dingtalk_alert", &query, &md("DB down", "primary lost")).await;
    assert_eq!(status, 200);
    t.drained().await;
    let incidents = t.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["progress"], "Triggered");

    // Unmatched: no rule matches "Lunch", so it is dropped yet answered as a success.
    let (status, body) = post(&t, "dingtalk_alert", &query, &md("Lunch", "pizza")).await;
    assert_eq!((status, body["errcode"].clone()), (200, json!(0)));

    let (status, _) = post(
        &t,
        "dingtalk_alert",
        &query,
        &md("DB down", "RESOLVED at 10:00"),
    )
    .await;
    assert_eq!(status, 200);
    t.drained().await;
    let incidents = t.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["progress"], "Closed");
    let alerts = t.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["alert_key"], "DB down");
    t.stop().await;
});

on_both_backends!(
    chat_bot_settings_are_checked_on_save,
    |url: String| async move {
        // spec: ING-218 — WeCom offers only always_new and by_rules; unknown settings are refused.
        let mut t = TestServer::start(&url).await;
        let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
        for (kind, settings, needle) in [
            (
                "wecom_alert",
                json!({"push_mode": "by_subject"}),
                "push_mode",
            ),
            (
                "feishu_alert",
                json!({"console_url": "https://x"}),
                "settings.console_url is not supported",
            ),
            (
                "dingtalk_alert",
                json!({"push_mode": "by_rules", "rules": [{"action": "trigger"}]}),
                "key_rule is required",
            ),
        ] {
            let (status, body) = t
                .api(
                    "/integration/create",
                    json!({"integration_name": "bot", "type": kind, "kind": "dedicated",
                       "channel_id": channel_id, "settings": settings}),
                )
                .await;
            assert_eq!(status, 400, "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle)),
                "{body}"
            );
        }
        let (_, body) = t.api("/integration/list", json!({"limit": 100})).await;
        let types: Vec<&str> = body["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["type"].as_str())
            .collect();
        assert!(
            !types.iter().any(|t| t.ends_with("_alert")),
            "nothing was created: {types:?}"
        );
        t.stop().await;
    }
);
