//! E-mail messages (ingest.md §2.18, §3.8) and change payloads (§2.20, §3.10) → events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use klaxon_core::change::{ChangeEffect, ChangeStatus, change_effect, parse_standard_change};
use klaxon_core::model::{NewEvent, Severity, Status};
use klaxon_core::standard::hash_parts;
use klaxon_sources::email::{
    EmailSettings, MailOutcome, PushMode, html_to_text, parse_mail, to_event,
};
use klaxon_sources::jira;
use serde_json::json;

const NOW: i64 = 1_790_000_000_123;
const ADDR: &str = "0123456789abcdef0123456789abcdef@klaxon.local";
const RANDOM: &str = "ffffffffffffffffffffffffffffffff";

fn event(raw: &str, settings: &EmailSettings) -> NewEvent {
    let mail = parse_mail(raw.as_bytes()).unwrap();
    match to_event(&mail, raw.as_bytes(), 7, ADDR, settings, NOW, RANDOM) {
        MailOutcome::Event(e) => *e,
        MailOutcome::DroppedUnmatched => panic!("dropped"),
    }
}

const PLAIN: &str = "From: \"Nagios\" <Nagios@Example.COM>\r\n\
To: 0123456789abcdef0123456789abcdef@klaxon.local\r\n\
Subject:   DB down on db-1  \r\n\
Message-ID: <abc.123@example.com>\r\n\
Date: Mon, 1 Jan 2001 00:00:00 +0000\r\n\
\r\n\
The database on db-1 is not answering.\r\n";

#[test]
fn plain_mail_maps_subject_body_and_labels() {
    // spec: ING-212, ING-215, ING-216 (always_new keyed on Message-ID), §3.8
    let e = event(PLAIN, &EmailSettings::default());
    assert_eq!(e.title, "DB down on db-1");
    assert_eq!(e.description, "The database on db-1 is not answering.\n");
    assert_eq!(e.event_status, Status::Warning);
    assert_eq!(e.event_severity, Some(Severity::Warning));
    assert_eq!(
        e.alert_key,
        hash_parts(&["mail", "7", "abc.123@example.com"])
    );
    assert_eq!(e.labels["from"], "nagios@example.com");
    assert_eq!(e.labels["to"], ADDR);
    assert_eq!(e.labels["message_id"], "abc.123@example.com");
    assert!(!e.labels.contains_key("body_cut"));
    assert!(!e.labels.contains_key("attachment_stripped"));
    // §3.8: the Date header is not trusted; receive time in whole seconds.
    assert_eq!(e.event_time, 1_790_000_000_000);
}

#[test]
fn mail_without_message_id_gets_a_random_key() {
    // spec: ING-216
    let raw = "From: a@b.c\r\nSubject: x\r\n\r\nbody\r\n";
    let e = event(raw, &EmailSettings::default());
    assert_eq!(e.alert_key, RANDOM);
    assert!(!e.labels.contains_key("message_id"));
}

#[test]
fn empty_subject_is_no_subject() {
    // spec: §3.8 title "(no subject)"
    let e = event("From: a@b.c\r\n\r\nhello\r\n", &EmailSettings::default());
    assert_eq!(e.title, "(no subject)");
}

const MULTIPART: &str = "From: ops@example.com\r\n\
Subject: Disk full\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"OUTER\"\r\n\
\r\n\
--OUTER\r\n\
Content-Type: multipart/alternative; boundary=\"INNER\"\r\n\
\r\n\
--INNER\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
/var is 99% full =E2=80=94 clean up\r\n\
--INNER\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>/var is <b>99%</b> full</p>\r\n\
--INNER--\r\n\
--OUTER\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--OUTER\r\n\
Content-Type: image/png\r\n\
Content-Disposition: inline\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--OUTER--\r\n";

#[test]
fn multipart_takes_first_plain_part_and_strips_attachments() {
    // spec: ING-212 (first text/plain, MIME decoded), ING-214 (attachments and inline images)
    let e = event(MULTIPART, &EmailSettings::default());
    assert_eq!(e.description.trim_end(), "/var is 99% full — clean up");
    assert_eq!(e.labels["attachment_stripped"], "true");
    assert!(e.images.is_empty());
}

const HTML_ONLY: &str = "From: ops@example.com\r\n\
Subject: Queue backlog\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><head><style>p {color: red}</style></head><body>\r\n\
<h1>Backlog</h1><p>Queue   <b>orders</b> has 5&nbsp;000 &amp; growing</p>\r\n\
<div></div><div></div><br><br>\r\n\
<p>See &lt;dashboard&gt; &#8212; ops</p></body></html>\r\n";

#[test]
fn html_only_mail_is_converted_to_text() {
    // spec: ING-212 (tags removed, blocks → line breaks, entities decoded, blank runs collapsed)
    let e = event(HTML_ONLY, &EmailSettings::default());
    assert_eq!(
        e.description,
        "Backlog\n\nQueue orders has 5 000 & growing\n\nSee <dashboard> — ops"
    );
    assert!(!e.labels.contains_key("attachment_stripped"));
}

#[test]
fn html_to_text_collapses_blank_runs() {
    // spec: ING-212
    assert_eq!(html_to_text("a<br><br><br><br>b"), "a\n\nb");
    assert_eq!(html_to_text("x &unknown; &#x41;"), "x &unknown; A");
}

#[test]
fn unicode_subject_is_rfc2047_decoded() {
    // spec: ING-212 (subject RFC 2047-decoded, text converted to UTF-8)
    let raw = "From: =?UTF-8?B?5byg5LiJ?= <zhang@example.cn>\r\n\
Subject: =?UTF-8?B?5pWw5o2u5bqT5pWF6Zqc?= =?ISO-8859-1?Q?_caf=E9?=\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=E9 ferm=E9\r\n";
    let e = event(raw, &EmailSettings::default());
    assert_eq!(e.title, "数据库故障 café");
    assert_eq!(e.description.trim_end(), "Café fermé");
    assert_eq!(e.labels["from"], "zhang@example.cn");
}

#[test]
fn long_body_is_cut_to_32_kib() {
    // spec: ING-213
    let body = "é".repeat(20_000); // 40 000 bytes
    let raw = format!(
        "From: a@b.c\r\nSubject: big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    let e = event(&raw, &EmailSettings::default());
    assert!(e.description.len() <= 32 * 1024);
    assert!(e.description.len() > 32 * 1024 - 4);
    assert_eq!(e.labels["body_cut"], "true");
}

#[test]
fn by_subject_keys_on_the_subject() {
    // spec: ING-216 by_subject
    let s = EmailSettings::from_json(&json!({"push_mode": "by_subject"})).unwrap();
    assert_eq!(s.push_mode, PushMode::BySubject);
    let e = event(PLAIN, &s);
    assert_eq!(
        e.alert_key,
        hash_parts(&["mail-subject", "7", "DB down on db-1"])
    );
}

fn rules() -> EmailSettings {
    EmailSettings::from_json(&json!({
        "push_mode": "by_rules",
        "rules": [
            {"conditions": [[{"key": "content", "oper": "IN", "vals": ["/RESOLVED/"]}]], "action": "close"},
            {"conditions": [], "action": "trigger"}
        ],
        "key_rule": {"source": "subject", "pattern": "/(.*)/"}
    }))
    .unwrap()
}

#[test]
fn recovery_mail_is_recognised_by_a_close_rule() {
    // spec: ING-216 (worked example), ING-217
    let s = rules();
    let trigger = event("From: a@b.c\r\nSubject: DB down\r\n\r\nit is down\r\n", &s);
    assert_eq!(trigger.event_status, Status::Warning);
    assert_eq!(trigger.alert_key, "DB down");
    let recovery = event(
        "From: a@b.c\r\nSubject: DB down\r\n\r\nRESOLVED at 10:00\r\n",
        &s,
    );
    assert_eq!(recovery.event_status, Status::Ok);
    assert_eq!(recovery.event_severity, None);
    assert_eq!(recovery.alert_key, "DB down");
}

#[test]
fn recovery_words_do_not_recover_outside_by_rules() {
    // spec: ING-217
    let e = event(
        "From: a@b.c\r\nSubject: [RESOLVED] DB down\r\n\r\nRESOLVED\r\n",
        &EmailSettings::default(),
    );
    assert_eq!(e.event_status, Status::Warning);
}

#[test]
fn by_rules_key_fallbacks_and_unmatched_mail() {
    // spec: ING-216 (no match → subject hash; > 255 → hash; drop_unmatched)
    let s = EmailSettings::from_json(&json!({
        "push_mode": "by_rules",
        "rules": [{"conditions": [[{"key": "from", "oper": "IN", "vals": ["*@monitor.example"]}]], "action": "trigger"}],
        "key_rule": {"source": "content", "pattern": "host=(\\S+)"}
    }))
    .unwrap();
    let e = event(
        "From: x@other.example\r\nSubject: s1\r\n\r\nno host here\r\n",
        &s,
    );
    assert_eq!(
        e.event_status,
        Status::Warning,
        "unmatched mail triggers by default"
    );
    assert_eq!(e.alert_key, hash_parts(&["mail-subject", "7", "s1"]));
    let e = event(
        "From: x@monitor.example\r\nSubject: s1\r\n\r\nhost=web-1 down\r\n",
        &s,
    );
    assert_eq!(e.alert_key, "web-1");
    let long = "k".repeat(300);
    let e = event(
        &format!("From: x@monitor.example\r\nSubject: s\r\n\r\nhost={long}\r\n"),
        &s,
    );
    assert_eq!(e.alert_key, hash_parts(&["mail-key", "7", &long]));

    let dropping = EmailSettings::from_json(&json!({
        "push_mode": "by_rules",
        "drop_unmatched": true,
        "rules": [{"conditions": [[{"key": "from", "oper": "IN", "vals": ["*@monitor.example"]}]], "action": "trigger"}],
        "key_rule": {"source": "subject", "pattern": ".*"}
    }))
    .unwrap();
    let raw = "From: x@other.example\r\nSubject: s1\r\n\r\nbody\r\n";
    let mail = parse_mail(raw.as_bytes()).unwrap();
    assert_eq!(
        to_event(&mail, raw.as_bytes(), 7, ADDR, &dropping, NOW, RANDOM),
        MailOutcome::DroppedUnmatched
    );
}

#[test]
fn invalid_email_settings_are_refused() {
    // spec: ING-216 (≥ 1 trigger rule, key_rule required, RE2 pattern)
    let bad = [
        (json!({"push_mode": "sometimes"}), "push_mode"),
        (
            json!({"push_mode": "by_rules", "rules": [{"action": "close"}], "key_rule": {"source": "subject", "pattern": "x"}}),
            "at least one rule with action trigger",
        ),
        (
            json!({"push_mode": "by_rules", "rules": [{"action": "trigger"}]}),
            "key_rule is required",
        ),
        (
            json!({"push_mode": "by_rules", "rules": [{"action": "trigger"}], "key_rule": {"source": "subject", "pattern": "("}}),
            "not a valid regex",
        ),
        (
            json!({"push_mode": "by_rules", "rules": [{"action": "trigger", "conditions": [[{"key": "title", "oper": "IN", "vals": ["x"]}]]}], "key_rule": {"source": "subject", "pattern": "x"}}),
            "conditions",
        ),
        (json!({"rules": []}), "need push_mode by_rules"),
    ];
    for (settings, needle) in bad {
        let err = EmailSettings::from_json(&settings).unwrap_err();
        assert!(err.message.contains(needle), "{settings}: {}", err.message);
    }
}

// --- change events ------------------------------------------------------------------------

#[test]
fn standard_change_payload() {
    // spec: ING-241
    let e = parse_standard_change(
        &json!({"title": " Deploy api v2 ", "change_status": "Processing", "change_key": "dep-1",
                "description": "rolling", "link": "https://ci.example/1", "labels": {"service": "api"},
                "event_time": 1_789_999_000}),
        3,
        NOW,
    )
    .unwrap();
    assert_eq!(e.title, "Deploy api v2");
    assert_eq!(e.change_status, Some(ChangeStatus::Processing));
    assert_eq!(e.change_key, "dep-1");
    assert_eq!(e.link, "https://ci.example/1");
    assert_eq!(e.labels["service"], "api");
    assert_eq!(e.event_time, 1_789_999_000_000);

    // Generated key; bad link ignored; future Ready time kept.
    let e = parse_standard_change(
        &json!({"title": "Plan", "change_status": "Ready", "link": "ftp://x", "event_time": 1_790_100_000}),
        3,
        NOW,
    )
    .unwrap();
    assert_eq!(e.change_key, hash_parts(&["chg", "3", "Plan", ""]));
    assert_eq!(e.link, "");
    assert_eq!(e.event_time, 1_790_100_000_000);

    for (body, needle) in [
        (json!({"change_status": "Done"}), "title is required"),
        (
            json!({"title": "x", "change_status": "done"}),
            "change_status done is invalid",
        ),
        (json!({"title": "x"}), "change_status is required"),
        (
            json!({"title": "x", "change_status": "Done", "change_key": "k".repeat(256)}),
            "change_key is too long",
        ),
    ] {
        let err = parse_standard_change(&body, 3, NOW).unwrap_err();
        assert!(err.message.contains(needle), "{body}: {}", err.message);
    }
}

#[test]
fn change_records_follow_ing_242() {
    // spec: ING-242 (same key updates; terminal then non-terminal starts a new record)
    use ChangeStatus::*;
    assert_eq!(
        change_effect(None, Some(Processing)),
        ChangeEffect::Start(Processing)
    );
    assert_eq!(change_effect(None, None), ChangeEffect::Start(Planned));
    assert_eq!(
        change_effect(Some(Processing), Some(Done)),
        ChangeEffect::Update(Done)
    );
    assert_eq!(
        change_effect(Some(Done), Some(Processing)),
        ChangeEffect::Start(Processing)
    );
    assert_eq!(
        change_effect(Some(Done), Some(Canceled)),
        ChangeEffect::Update(Canceled)
    );
    assert_eq!(
        change_effect(Some(Ready), None),
        ChangeEffect::Update(Ready)
    );
}

fn jira_body(event: &str, status: &str) -> serde_json::Value {
    json!({
        "webhookEvent": event,
        "timestamp": 1_789_999_123_456_i64,
        "issue": {
            "id": "10042",
            "key": "OPS-7",
            "self": "https://acme.atlassian.net/rest/api/2/issue/10042",
            "fields": {
                "summary": "Upgrade Postgres",
                "description": {"type": "doc", "version": 1, "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "Step"}, {"type": "text", "text": "one"}]},
                    {"type": "paragraph", "content": [{"type": "text", "text": "Step two"}]}
                ]},
                "status": {"name": status},
                "issuetype": {"name": "Change"},
                "project": {"key": "OPS", "name": "Operations"},
                "priority": {"name": "High"},
                "assignee": {"displayName": "Ann", "emailAddress": "ann@acme.example"},
                "reporter": {"displayName": "Bob"},
                "labels": ["db", "prod"]
            }
        }
    })
}

#[test]
fn jira_issue_event_maps_to_a_change() {
    // spec: §3.10
    let e = jira::parse(&jira_body("jira:issue_updated", " In Progress "), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(e.change_key, "OPS-7");
    assert_eq!(e.title, "[OPS-7] Upgrade Postgres");
    assert_eq!(e.description, "Step one\nStep two");
    assert_eq!(e.change_status, Some(ChangeStatus::Processing));
    assert_eq!(e.link, "https://acme.atlassian.net/browse/OPS-7");
    assert_eq!(e.event_time, 1_789_999_123_000);
    assert_eq!(e.labels["issue_id"], "10042");
    assert_eq!(e.labels["project_key"], "OPS");
    assert_eq!(e.labels["project_name"], "Operations");
    assert_eq!(e.labels["issue_type"], "Change");
    assert_eq!(e.labels["priority"], "High");
    assert_eq!(e.labels["assignee"], "ann@acme.example");
    assert_eq!(e.labels["reporter"], "Bob");
    assert_eq!(e.labels["jira_labels"], "db,prod");
}

#[test]
fn jira_status_table_and_other_events() {
    // spec: §3.10 status table, deleted → Canceled, unlisted keeps, other events ignored
    for (name, want) in [
        ("To Do", Some(ChangeStatus::Planned)),
        ("ready", Some(ChangeStatus::Ready)),
        ("Reopen", Some(ChangeStatus::Processing)),
        ("Aborted", Some(ChangeStatus::Canceled)),
        ("Resolved", Some(ChangeStatus::Done)),
        ("Closed", Some(ChangeStatus::Done)),
        ("Under review", None),
    ] {
        assert_eq!(jira::map_status(name), want, "{name}");
    }
    let e = jira::parse(&jira_body("jira:issue_deleted", "In Progress"), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(e.change_status, Some(ChangeStatus::Canceled));
    assert!(
        jira::parse(&jira_body("comment_created", "Done"), NOW)
            .unwrap()
            .is_none()
    );
    let err = jira::parse(&json!({"webhookEvent": "jira:issue_created"}), NOW).unwrap_err();
    assert!(err.message.contains("issue"));
}
