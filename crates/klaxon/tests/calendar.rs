//! feature: iCalendar feed — a schedule's calendar subscription URL over HTTP:
//! `POST /schedule/feed/reset` issues a secret-token URL, `GET /calendar/schedule/<token>.ics`
//! serves the RFC 5545 feed, rotating the token retires the old URL. SQLite always,
//! PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set. The `.ics` is also checked by an
//! independent parser (`tests/ics_check.py`, Python's `icalendar`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

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

// ---------------------------------------------------------------------------------------
// feature: iCalendar feed — independent check (issue 6): the `.ics` parses with Python's
// `icalendar` (installed by `.ci/run`) and round-trips every shift of the Open API timeline.

/// A clock the test sets, so the feed window crosses a known DST change.
struct FixedClock(i64);

impl klaxon_server::Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}

const ICS_CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ics_check.py");

/// Whether python3 with `icalendar` is here; without it the check skips, except under
/// `CI=true` where `.ci/run` installs it and a missing parser is a failure.
fn ics_checker_available() -> bool {
    let probe = std::process::Command::new("python3")
        .arg(ICS_CHECK)
        .arg("--probe")
        .output();
    let ok = probe.as_ref().is_ok_and(|o| o.status.success());
    if !ok {
        let why = match &probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but python3/icalendar is missing (pip install icalendar): {why}"
        );
        eprintln!("SKIP ics independent check: python3 with icalendar not available: {why}");
    }
    ok
}

/// The events of `ics` as the independent parser reads them: (uid, start s, end s, summary).
fn ics_events(ics: &str) -> Vec<(String, i64, i64, String)> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .arg(ICS_CHECK)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ics_check.py rejected the calendar: {}\n{ics}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["uid"].as_str().unwrap().to_string(),
                e["start"].as_i64().unwrap(),
                e["end"].as_i64().unwrap(),
                e["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `intervals` sorted and merged where they touch or overlap.
fn merged(mut intervals: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    intervals.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in intervals {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

type PersonIntervals = std::collections::BTreeMap<i64, Vec<(i64, i64)>>;

// feature: iCalendar feed; spec: RSP-227 (final timeline), RSP-212 (override wins), RSP-214
// and RSP-215 (cycles in the schedule's zone across DST), RSP-221 (daily restriction),
// RSP-224 (layers add up)
on_both_backends!(
    ics_feed_round_trips_with_independent_parser,
    |url: String| async move {
        if !ics_checker_available() {
            return;
        }
        // 2027-03-20T00:00Z: the feed window [now − 7 d, now + 60 d) crosses Europe/Berlin's
        // spring-forward (2027-03-28) and Australia/Adelaide's (+10:30 → +09:30) fall-back
        // (2027-04-04).
        let now = 1_805_500_800_i64;
        let dir = tempfile::tempdir().unwrap();
        let config = common::test_config(dir.path(), &url);
        let server =
            klaxon_server::start_with_clock(config, std::sync::Arc::new(FixedClock(now * 1000)))
                .await
                .unwrap();
        let mut t = TestServer {
            base: server.base_url().to_string(),
            app_key: server.bootstrap().app_key.clone(),
            integration_key: server.bootstrap().integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: url.clone(),
        };
        let (s, b) = t.api("/member/info", json!({})).await;
        let me = ok(s, &b);
        let owner = me["member_id"].as_i64().unwrap();
        let owner_name = me["member_name"].as_str().unwrap().to_string();
        // The owner's shifts per schedule, as the Open API shows them (for the member feed).
        let mut owner_api: Vec<(i64, i64)> = Vec::new();
        for zone in ["Europe/Berlin", "Australia/Adelaide"] {
            // Non-members, so the feed names them `Person <id>` and the test can map back.
            let body = json!({
                "schedule_name": format!("Round trip {zone}"),
                "time_zone": zone,
                "layers": [
                    {
                        "layer_name": "Weekly",
                        "groups": [
                            {"group_name": "A", "members": [{"role_id": 0, "person_ids": [1001]}]},
                            {"group_name": "B", "members": [{"role_id": 0, "person_ids": [1002]}]}
                        ],
                        "layer_start": now - 12 * DAY,
                        "rotation_unit": "week",
                        "rotation_value": 1,
                        "restrict_mode": 0
                    },
                    {
                        "layer_name": "Office hours",
                        "groups": [
                            {"group_name": "Pair", "members": [{"role_id": 0, "person_ids": [1003, 1004]}]},
                            {"group_name": "Solo", "members": [{"role_id": 0, "person_ids": [1005]}]}
                        ],
                        "layer_start": now - 9 * DAY,
                        "rotation_unit": "day",
                        "rotation_value": 2,
                        "restrict_mode": 1,
                        "restrict_periods": [{"start": "09:00", "end": "17:00"}]
                    },
                    {
                        "layer_name": "Hourly",
                        "groups": [
                            {"group_name": "X", "members": [{"role_id": 0, "person_ids": [1006]}]},
                            {"group_name": "Y", "members": [{"role_id": 0, "person_ids": [1007]}]}
                        ],
                        "layer_start": now + 20 * DAY,
                        "layer_end": now + 24 * DAY,
                        "rotation_unit": "hour",
                        "rotation_value": 7,
                        "restrict_mode": 0
                    }
                ],
                "overrides": [
                    {"start": now + 40 * DAY + 3600, "end": now + 42 * DAY, "person_id": 1008},
                    {"start": now + 30 * DAY, "end": now + 30 * DAY + 5400, "person_id": 1009},
                    {"start": now + 50 * DAY, "end": now + 50 * DAY + 7200, "person_id": owner}
                ]
            });
            let (s, b) = t.api("/schedule/create", body).await;
            let id = ok(s, &b)["schedule_id"].as_i64().unwrap();
            let (s, b) = t
                .api("/schedule/feed/reset", json!({"schedule_id": id}))
                .await;
            let feed_url = ok(s, &b)["feed_url"].as_str().unwrap().to_string();

            let (s, _, _, feed) = get(&t, &feed_url).await;
            assert_eq!(s, 200, "{feed}");
            let resp = t
                .http
                .get(format!("{feed_url}?download=1"))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let disposition = resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(disposition.starts_with("attachment"), "{disposition}");
            let download = resp.text().await.unwrap();

            let events = ics_events(&feed);
            let downloaded = ics_events(&download);
            // Stable UIDs: both downloads carry the same events under the same UIDs, each
            // UID once.
            assert_eq!(events, downloaded, "{zone}");
            let mut uids: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
            uids.sort_unstable();
            uids.dedup();
            assert_eq!(uids.len(), events.len(), "{zone}: duplicate UIDs");

            // The same window through the Open API, in chunks under its 45-day limit.
            let (from, to) = (now - 7 * DAY, now + 60 * DAY);
            let split = from + 34 * DAY;
            let mut api: PersonIntervals = Default::default();
            let mut api_bounds = std::collections::BTreeSet::new();
            for (a, z) in [(from, split), (split, to)] {
                let (s, b) = t
                    .api(
                        "/schedule/info",
                        json!({"schedule_id": id, "start": a, "end": z}),
                    )
                    .await;
                let data = ok(s, &b);
                for seg in data["final_schedule"]["schedules"].as_array().unwrap() {
                    let (ss, se) = (seg["start"].as_i64().unwrap(), seg["end"].as_i64().unwrap());
                    for bound in [ss, se] {
                        if bound != split && bound > from && bound < to {
                            api_bounds.insert(bound);
                        }
                    }
                    for m in seg["group"]["members"].as_array().unwrap() {
                        for p in m["person_ids"].as_array().unwrap() {
                            api.entry(p.as_i64().unwrap()).or_default().push((ss, se));
                        }
                    }
                }
            }
            assert!(!api.is_empty(), "{zone}: the API shows no shifts");

            let mut ics: PersonIntervals = Default::default();
            let mut ics_bounds = std::collections::BTreeSet::new();
            for (uid, start, end, summary) in &events {
                assert!(
                    end > &from && start < &to,
                    "{zone}: {uid} outside the window"
                );
                ics_bounds.insert(*start);
                ics_bounds.insert(*end);
                let (s, e) = ((*start).max(from), (*end).min(to));
                if summary == "Nobody on call" {
                    continue;
                }
                let names = summary
                    .strip_prefix("On call: ")
                    .unwrap_or_else(|| panic!("{zone}: summary {summary}"));
                for name in names.split(", ") {
                    let person = if name == owner_name {
                        owner
                    } else {
                        name.strip_prefix("Person ")
                            .and_then(|n| n.parse::<i64>().ok())
                            .unwrap_or_else(|| panic!("{zone}: name {name} in {summary}"))
                    };
                    ics.entry(person).or_default().push((s, e));
                }
            }
            // Every person is on call over exactly the same instants in the .ics as in the
            // Open API's final timeline (overrides and restrictions included)...
            let ics: PersonIntervals = ics.into_iter().map(|(p, v)| (p, merged(v))).collect();
            let api: PersonIntervals = api.into_iter().map(|(p, v)| (p, merged(v))).collect();
            assert_eq!(ics, api, "{zone}");
            // ...and every change of who is on call is an event boundary.
            let missing: Vec<_> = api_bounds.difference(&ics_bounds).collect();
            assert!(
                missing.is_empty(),
                "{zone}: boundaries missing from the .ics: {missing:?}"
            );
            for p in (1001..=1009).chain([owner]) {
                assert!(api.contains_key(&p), "{zone}: person {p} never on call");
            }
            owner_api.extend(api[&owner].iter().copied());

            // The weekly handoff keeps its local wall time across the DST change: one week
            // in the window is an hour short or long in UTC.
            let weekly: Vec<i64> = events
                .iter()
                .filter(|e| e.3 == "On call: Person 1001" || e.3 == "On call: Person 1002")
                .map(|e| e.2 - e.1)
                .collect();
            assert!(
                weekly
                    .iter()
                    .any(|d| *d == 7 * DAY - 3600 || *d == 7 * DAY + 3600),
                "{zone}: no DST-length week in {weekly:?}"
            );
        }

        // The owner's own feed (per member, across both schedules) passes the same parser
        // and shows exactly the owner's shifts, with stable, distinct UIDs.
        let (s, b) = t.api("/schedule/self/feed/reset", json!({})).await;
        let member_url = ok(s, &b)["feed_url"].as_str().unwrap().to_string();
        let (s, _, _, mine) = get(&t, &member_url).await;
        assert_eq!(s, 200, "{mine}");
        let (s, _, _, mine_again) = get(&t, &format!("{member_url}?download=1")).await;
        assert_eq!(s, 200);
        let mine = ics_events(&mine);
        assert_eq!(mine, ics_events(&mine_again));
        let mut uids: Vec<&str> = mine.iter().map(|e| e.0.as_str()).collect();
        uids.sort_unstable();
        uids.dedup();
        assert_eq!(uids.len(), mine.len(), "member feed: duplicate UIDs");
        let (from, to) = (now - 7 * DAY, now + 60 * DAY);
        let feed: Vec<(i64, i64)> = mine.iter().map(|e| (e.1.max(from), e.2.min(to))).collect();
        assert_eq!(merged(feed), merged(owner_api));
        assert_eq!(mine.len(), 2, "{mine:?}");
        t.stop().await;
    }
);
