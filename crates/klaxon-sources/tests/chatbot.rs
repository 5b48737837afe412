//! Chat-bot alert integrations (ingest.md ING-218): the three bot protocols' bodies → events,
//! push modes shared with e-mail (ING-216), and refusals.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use klaxon_core::model::{Severity, Status};
use klaxon_core::standard::hash_parts;
use klaxon_sources::Context;
use klaxon_sources::chatbot::{
    Bot, ChatOutcome, ChatSettings, Message, MessageError, parse_message, to_event,
};
use serde_json::{Value, json};

const NOW: i64 = 1_700_000_000_123;
const RANDOM: &str = "0123456789abcdef0123456789abcdef";

fn ctx(query: &[(String, String)]) -> Context<'_> {
    Context {
        integration_id: 7,
        query_labels: query,
        received_at: NOW,
        console_url: None,
    }
}

fn message(bot: Bot, body: Value) -> Message {
    parse_message(bot, &body).unwrap()
}

fn event(bot: Bot, body: Value, settings: &ChatSettings) -> klaxon_core::model::NewEvent {
    let m = message(bot, body.clone());
    match to_event(bot, &m, &body.to_string(), settings, &ctx(&[]), RANDOM) {
        ChatOutcome::Event(e) => *e,
        ChatOutcome::DroppedUnmatched => panic!("dropped"),
    }
}

fn default(bot: Bot) -> ChatSettings {
    ChatSettings::from_json(bot, &json!({})).unwrap()
}

#[test]
fn dingtalk_text_and_markdown() {
    // spec: ING-218 (text → default title, markdown title → title, always Warning)
    let text = message(
        Bot::DingTalk,
        json!({"msgtype": "text", "text": {"content": "disk full on db-1"}, "at": {"isAtAll": true}}),
    );
    assert_eq!(text.title, "Dingtalk Alert");
    assert_eq!(text.content, "disk full on db-1");
    let md = message(
        Bot::DingTalk,
        json!({"msgtype": "markdown", "markdown": {"title": " CPU high ", "text": "### CPU\n> 97% on web-1"}}),
    );
    assert_eq!(md.title, "CPU high");
    assert_eq!(md.content, "### CPU\n> 97% on web-1");
    let e = event(
        Bot::DingTalk,
        json!({"msgtype": "markdown", "markdown": {"title": "CPU high", "text": "97%"}}),
        &default(Bot::DingTalk),
    );
    assert_eq!(e.title, "CPU high");
    assert_eq!(e.description, "97%");
    assert_eq!(e.event_status, Status::Warning);
    assert_eq!(e.event_severity, Some(Severity::Warning));
    // always_new: every message its own alert.
    assert_eq!(e.alert_key, RANDOM);
    // Whole seconds of the receive time (ING-029).
    assert_eq!(e.event_time, 1_700_000_000_000);
    assert!(e.raw.contains("CPU high"));
}

#[test]
fn feishu_text_and_post() {
    // spec: ING-218 (Feishu's titled message type is `post`)
    let text = message(
        Bot::Feishu,
        json!({"msg_type": "text", "content": {"text": "新告警: 磁盘已满"}}),
    );
    assert_eq!(text.title, "Feishu Alert");
    assert_eq!(text.content, "新告警: 磁盘已满");
    let post = message(
        Bot::Feishu,
        json!({"msg_type": "post", "content": {"post": {"en_us": {"title": "Backup failed", "content": [
            [{"tag": "text", "text": "job "}, {"tag": "a", "text": "nightly", "href": "https://ci/1"}],
            [{"tag": "at", "user_id": "ou_1", "user_name": "alice"}, {"tag": "img", "image_key": "k"}]
        ]}}}}),
    );
    assert_eq!(post.title, "Backup failed");
    assert_eq!(post.content, "job nightly (https://ci/1)\n@alice");
    // The Chinese version wins when several are sent.
    let both = message(
        Bot::Feishu,
        json!({"msg_type": "post", "content": {"post": {
            "en_us": {"title": "en", "content": [[{"tag": "text", "text": "x"}]]},
            "zh_cn": {"title": "中文", "content": [[{"tag": "text", "text": "y"}]]}
        }}}),
    );
    assert_eq!(both.title, "中文");
}

#[test]
fn wecom_text_and_markdown_have_the_default_title() {
    // spec: ING-218 (WeCom messages carry no title)
    let md = message(
        Bot::WeCom,
        json!({"msgtype": "markdown", "markdown": {"content": "# down\n<font color=\"warning\">api</font>"}}),
    );
    assert_eq!(md.title, "Wecom Alert");
    assert_eq!(md.content, "# down\n<font color=\"warning\">api</font>");
    let text = message(
        Bot::WeCom,
        json!({"msgtype": "text", "text": {"content": "hello", "mentioned_list": ["@all"]}}),
    );
    assert_eq!(text.title, "Wecom Alert");
}

#[test]
fn other_message_types_are_refused_as_unsupported() {
    // spec: ING-218 (other types get the bot's error form and ingest nothing)
    for (bot, body) in [
        (
            Bot::DingTalk,
            json!({"msgtype": "actionCard", "actionCard": {"title": "t", "text": "x"}}),
        ),
        (
            Bot::DingTalk,
            json!({"msgtype": "link", "link": {"title": "t", "text": "x"}}),
        ),
        (Bot::Feishu, json!({"msg_type": "interactive", "card": {}})),
        (
            Bot::Feishu,
            json!({"msg_type": "image", "content": {"image_key": "k"}}),
        ),
        (
            Bot::WeCom,
            json!({"msgtype": "news", "news": {"articles": []}}),
        ),
        (
            Bot::WeCom,
            json!({"msgtype": "template_card", "template_card": {}}),
        ),
    ] {
        match parse_message(bot, &body) {
            Err(MessageError::UnsupportedType(e)) => {
                assert!(e.message.contains("not accepted"), "{body}: {}", e.message)
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn malformed_bodies_name_the_field() {
    // spec: ING-218 (malformed input: InvalidParameter naming the field, never a panic)
    let cases = [
        (Bot::DingTalk, json!([]), "the body must be a JSON object"),
        (Bot::DingTalk, json!({}), "msgtype is required"),
        (
            Bot::DingTalk,
            json!({"msgtype": 3}),
            "msgtype must be a string",
        ),
        (
            Bot::DingTalk,
            json!({"msgtype": "text"}),
            "text is required",
        ),
        (
            Bot::DingTalk,
            json!({"msgtype": "text", "text": "x"}),
            "text must be an object",
        ),
        (
            Bot::DingTalk,
            json!({"msgtype": "text", "text": {"content": "  "}}),
            "text.content is required",
        ),
        (
            Bot::DingTalk,
            json!({"msgtype": "markdown", "markdown": {"title": 1, "text": "x"}}),
            "markdown.title must be a string",
        ),
        (
            Bot::WeCom,
            json!({"msgtype": "markdown", "markdown": {}}),
            "markdown.content is required",
        ),
        (
            Bot::Feishu,
            json!({"msgtype": "text", "text": {"content": "x"}}),
            "msg_type is required",
        ),
        (
            Bot::Feishu,
            json!({"msg_type": "text", "content": {"text": ["x"]}}),
            "content.text must be a string",
        ),
        (
            Bot::Feishu,
            json!({"msg_type": "post", "content": {"post": {}}}),
            "needs a language version",
        ),
        (
            Bot::Feishu,
            json!({"msg_type": "post", "content": {"post": {"zh_cn": {"content": "x"}}}}),
            "content.post.zh_cn.content must be an array",
        ),
        (
            Bot::Feishu,
            json!({"msg_type": "post", "content": {"post": {"zh_cn": {"content": [[{"tag": "img"}]]}}}}),
            "has no text",
        ),
    ];
    for (bot, body, needle) in cases {
        match parse_message(bot, &body) {
            Err(MessageError::Invalid(e)) => {
                assert!(e.message.contains(needle), "{body}: {}", e.message)
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

#[test]
fn by_subject_keys_on_the_title() {
    // spec: ING-218, ING-216 (message title in place of the subject)
    let s = ChatSettings::from_json(Bot::DingTalk, &json!({"push_mode": "by_subject"})).unwrap();
    let body =
        |text: &str| json!({"msgtype": "markdown", "markdown": {"title": "DB down", "text": text}});
    let a = event(Bot::DingTalk, body("first"), &s);
    let b = event(Bot::DingTalk, body("second"), &s);
    assert_eq!(a.alert_key, b.alert_key);
    assert_eq!(a.alert_key, hash_parts(&["mail-subject", "7", "DB down"]));
}

fn resolving_rules(bot: Bot) -> ChatSettings {
    ChatSettings::from_json(
        bot,
        &json!({
            "push_mode": "by_rules",
            "rules": [
                {"conditions": [[{"key": "content", "oper": "IN", "vals": ["/RESOLVED/"]}]], "action": "close"},
                {"conditions": [], "action": "trigger"}
            ],
            "key_rule": {"source": "title", "pattern": "/(.*)/"}
        }),
    )
    .unwrap()
}

#[test]
fn by_rules_triggers_and_closes_like_the_mail_example() {
    // spec: ING-218, ING-216 (worked example with the title in place of the subject)
    let s = resolving_rules(Bot::DingTalk);
    let body =
        |text: &str| json!({"msgtype": "markdown", "markdown": {"title": "DB down", "text": text}});
    let trigger = event(Bot::DingTalk, body("it is down"), &s);
    assert_eq!(trigger.event_status, Status::Warning);
    assert_eq!(trigger.alert_key, "DB down");
    let recovery = event(Bot::DingTalk, body("RESOLVED at 10:00"), &s);
    assert_eq!(recovery.event_status, Status::Ok);
    assert_eq!(recovery.event_severity, None);
    assert_eq!(recovery.alert_key, "DB down");
}

#[test]
fn by_rules_fallbacks_differ_for_wecom() {
    // spec: ING-218 (WeCom's key fallback is a random key, the others hash the title)
    let settings = |bot| {
        ChatSettings::from_json(
            bot,
            &json!({
                "push_mode": "by_rules",
                "rules": [{"conditions": [], "action": "trigger"}],
                "key_rule": {"source": "content", "pattern": "host=(\\S+)"}
            }),
        )
        .unwrap()
    };
    let ding = event(
        Bot::DingTalk,
        json!({"msgtype": "text", "text": {"content": "no host here"}}),
        &settings(Bot::DingTalk),
    );
    assert_eq!(
        ding.alert_key,
        hash_parts(&["mail-subject", "7", "Dingtalk Alert"])
    );
    let wecom = event(
        Bot::WeCom,
        json!({"msgtype": "text", "text": {"content": "no host here"}}),
        &settings(Bot::WeCom),
    );
    assert_eq!(wecom.alert_key, RANDOM);
    let found = event(
        Bot::WeCom,
        json!({"msgtype": "text", "text": {"content": "host=web-1 down"}}),
        &settings(Bot::WeCom),
    );
    assert_eq!(found.alert_key, "web-1");
}

#[test]
fn unmatched_messages_can_be_dropped() {
    // spec: ING-218, ING-216 (drop_unmatched)
    let s = ChatSettings::from_json(
        Bot::Feishu,
        &json!({
            "push_mode": "by_rules",
            "drop_unmatched": true,
            "rules": [{"conditions": [[{"key": "title", "oper": "IN", "vals": ["Backup*"]}]], "action": "trigger"}],
            "key_rule": {"source": "title", "pattern": ".*"}
        }),
    )
    .unwrap();
    let m = message(
        Bot::Feishu,
        json!({"msg_type": "text", "content": {"text": "chatter"}}),
    );
    assert_eq!(
        to_event(Bot::Feishu, &m, "{}", &s, &ctx(&[]), RANDOM),
        ChatOutcome::DroppedUnmatched
    );
}

#[test]
fn query_parameters_become_labels() {
    // spec: ING-012 (query labels), ING-218
    let query = vec![("service".to_owned(), "billing".to_owned())];
    let m = message(
        Bot::WeCom,
        json!({"msgtype": "text", "text": {"content": "x"}}),
    );
    let ChatOutcome::Event(e) = to_event(
        Bot::WeCom,
        &m,
        "{}",
        &default(Bot::WeCom),
        &ctx(&query),
        RANDOM,
    ) else {
        panic!("dropped")
    };
    assert_eq!(e.labels.get("service").map(String::as_str), Some("billing"));
}

#[test]
fn invalid_settings_are_refused() {
    // spec: ING-218 (WeCom: only always_new and by_rules; rule fields title and content)
    let bad = [
        (
            Bot::WeCom,
            json!({"push_mode": "by_subject"}),
            "push_mode by_subject is invalid (always_new or by_rules)",
        ),
        (
            Bot::DingTalk,
            json!({"push_mode": "by_title"}),
            "always_new, by_subject or by_rules",
        ),
        (
            Bot::DingTalk,
            json!({"push_mode": "by_rules", "rules": [{"action": "trigger", "conditions": [[{"key": "subject", "oper": "IN", "vals": ["x"]}]]}], "key_rule": {"source": "title", "pattern": "x"}}),
            "conditions",
        ),
        (
            Bot::Feishu,
            json!({"push_mode": "by_rules", "rules": [{"action": "trigger"}], "key_rule": {"source": "from", "pattern": "x"}}),
            "key_rule.source must be title or content",
        ),
        (
            Bot::Feishu,
            json!({"push_mode": "by_rules", "rules": [{"action": "close"}], "key_rule": {"source": "title", "pattern": "x"}}),
            "at least one rule with action trigger",
        ),
    ];
    for (bot, settings, needle) in bad {
        let err = ChatSettings::from_json(bot, &settings).unwrap_err();
        assert!(err.message.contains(needle), "{settings}: {}", err.message);
    }
}
