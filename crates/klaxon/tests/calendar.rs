//! feature: iCalendar feed — a schedule's calendar subscription URL over HTTP:
//! `POST /schedule/feed/reset` issues a secret-token URL, `GET /calendar/schedule/<token>.ics`
//! serves the RFC 5545 feed, rotating the token retires the old URL. SQLite always,
//! PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, now_secs};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn ok(status: u16, body: &Value) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

async fn get(t: &TestServer, url: &str) -> (u16, String, String, String) {
    let resp = t.http.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = header("content-type");
    let cache = header("cache-control");
    (status, content_type, cache, resp.text().await.unwrap())
}

// feature: iCalendar feed
on_both_backends!(schedule_feed_subscription, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (s, b) = t.api("/member/info", json!({})).await;
    let owner = ok(s, &b)["member_id"].as_i64().unwrap();
    let other = 424_242;
    let now = now_secs();
    let body = json!({
        "schedule_name": "Ops, primary",
        "time_zone": "UTC",
        "layers": [{
            "layer_name": "Weekly",
            "groups": [
                {"group_name": "A", "members": [{"person_id": owner}]},
                {"group_name": "B", "members": [{"person_id": other}]}
            ],
            "layer_start": now - 3 * DAY,
            "rotation_unit": "week",
            "rotation_value": 1,
            "restrict_mode": 0
        }],
        "overrides": [{"start": now + 20 * DAY, "end": now + 21 * DAY, "person_id": owner}]
    });
    let (s, b) = t.api("/schedule/create", body).await;
    let id = ok(s, &b)["schedule_id"].as_i64().unwrap();

    // No feed yet for an unknown schedule.
    let (s, b) = t
        .api("/schedule/feed/reset", json!({"schedule_id": id + 1000}))
        .await;
    assert_ne!(s, 200);
    assert_eq!(b["error"]["code"], "ResourceNotFound", "{b}");

    let (s, b) = t
        .api("/schedule/feed/reset", json!({"schedule_id": id}))
        .await;
    let feed_url = ok(s, &b)["feed_url"].as_str().unwrap().to_string();
    let prefix = format!("{}/calendar/schedule/", t.base);
    let token = feed_url
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(".ics"))
        .unwrap_or_else(|| panic!("{feed_url}"));
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|c| c.is_ascii_hexdigit()));

    let (s, content_type, cache, text) = get(&t, &feed_url).await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(content_type, "text/calendar; charset=utf-8");
    assert_eq!(cache, "private, max-age=300");
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n"), "{text}");
    assert!(text.ends_with("END:VCALENDAR\r\n"));
    assert!(text.contains("X-WR-CALNAME:On call: Ops\\, primary\r\n"));
    assert!(text.contains("SUMMARY:On call: Owner\r\n"), "{text}");
    // A person who is not a member is named by id.
    assert!(
        text.contains("SUMMARY:On call: Person 424242\r\n"),
        "{text}"
    );
    assert!(text.contains("DESCRIPTION:Schedule: Ops\\, primary\\nLayer: Weekly\\nGroup: A"));
    assert!(text.contains("Override 1"), "{text}");
    assert!(text.matches("BEGIN:VEVENT").count() >= 9, "{text}");
    assert_eq!(
        text.matches("BEGIN:VEVENT").count(),
        text.matches("\r\nUID:").count()
    );
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line}", line.len());
        assert!(!line.contains('\n'));
    }
    // UIDs are stable across fetches.
    let uids = |s: &str| {
        s.split("\r\n")
            .filter(|l| l.starts_with("UID:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (_, _, _, again) = get(&t, &feed_url).await;
    assert_eq!(uids(&text), uids(&again));

    // Rotating the token retires the old URL.
    let (s, b) = t
        .api("/schedule/feed/reset", json!({"schedule_id": id}))
        .await;
    let new_url = ok(s, &b)["feed_url"].as_str().unwrap().to_string();
    assert_ne!(new_url, feed_url);
    let (s, _, _, old) = get(&t, &feed_url).await;
    assert_eq!(s, 404);
    assert!(!old.contains("Ops"));
    let (s, _, _, fresh) = get(&t, &new_url).await;
    assert_eq!(s, 200);
    assert_eq!(uids(&fresh), uids(&text));

    // Unknown tokens: plain 404.
    for path in [
        "0123456789abcdef0123456789abcdef.ics",
        "0123456789abcdef0123456789abcdef",
        ".ics",
        "not-a-token.ics",
    ] {
        let (s, _, _, body) = get(&t, &format!("{prefix}{path}")).await;
        assert_eq!(s, 404, "{path}: {body}");
    }

    // A deleted schedule has no feed.
    let (s, b) = t
        .api("/schedule/delete", json!({"schedule_ids": [id]}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, _, _) = get(&t, &new_url).await;
    assert_eq!(s, 404);
    t.stop().await;
});
