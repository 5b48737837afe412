//! Insights over the Open API (response.md §2.27, openapi-compat.md 2.14): `/insight/account`,
//! `/insight/team` and `/insight/channel` over incidents pushed, acknowledged, closed and
//! merged with an injected clock. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is
//! set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{ManualClock, TestServer, test_config};
use serde_json::{Value, json};

const MIN: i64 = 60_000;
/// Thursday 2026-01-01 10:00 UTC: work hours (RSP-480).
const T0: i64 = 1_767_261_600_000;

fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn invalid((status, body): (u16, Value)) -> String {
    assert_eq!(body["error"]["code"], "InvalidParameter", "{status} {body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
}

impl Node {
    async fn start(url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path(), url);
        let clock = Arc::new(ManualClock(AtomicI64::new(T0)));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let ts = TestServer {
            base: server.base_url().to_string(),
            app_key: server.bootstrap().app_key.clone(),
            integration_key: server.bootstrap().integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: url.to_string(),
        };
        Node { ts, clock }
    }

    fn advance(&self, minutes: i64) {
        self.clock.0.fetch_add(minutes * MIN, Ordering::SeqCst);
    }

    async fn push(&self, key: &str, status: &str) {
        let (code, body) = self
            .ts
            .push(
                json!({"event_status": status, "title_rule": format!("{key} down"),
                         "alert_key": key}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        self.ts.drained().await;
    }

    async fn incident_of(&self, key: &str) -> String {
        let now = self.clock.0.load(Ordering::SeqCst) / 1000;
        let data = ok(self
            .ts
            .api(
                "/incident/list",
                json!({"start_time": now - 86_400, "end_time": now + 60, "limit": 100}),
            )
            .await);
        data["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["dedup_key"] == key)
            .unwrap()["incident_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn insight(&self, path: &str, extra: Value) -> Vec<Value> {
        let mut body = json!({"start_time": T0 / 1000 - 3600, "end_time": T0 / 1000 + 86_400});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let data = ok(self.ts.api(path, body).await);
        assert!(data.get("has_next_page").is_none(), "no paging members");
        data["items"].as_array().unwrap().clone()
    }
}

on_both_backends!(
    insights_count_the_responses_of_a_period,
    |url: String| async move {
        // spec: RSP-470, RSP-471, RSP-472, RSP-473, RSP-474, RSP-475, RSP-476, RSP-477
        let mut n = Node::start(&url).await;
        let channel = n.ts.server.as_ref().unwrap().bootstrap().channel_id;
        let team = ok(n
            .ts
            .api("/team/upsert", json!({"team_name": "Payments"}))
            .await)["team_id"]
            .as_i64()
            .unwrap();
        ok(n.ts
            .api(
                "/channel/update",
                json!({"channel_id": channel, "team_id": team}),
            )
            .await);

        // db: 3 events, acknowledged after 2 minutes and closed by hand after 10.
        n.push("db", "Critical").await;
        n.push("db", "Warning").await;
        n.push("db", "Critical").await;
        // cache: recovers by itself after 5 minutes.
        n.push("cache", "Warning").await;
        // disk: open and never acknowledged.
        n.push("disk", "Critical").await;
        // dup: merged into db, so left out (RSP-471).
        n.push("dup", "Critical").await;
        let (db, dup) = (n.incident_of("db").await, n.incident_of("dup").await);
        n.advance(2);
        ok(n.ts
            .api("/incident/ack", json!({"incident_ids": [db]}))
            .await);
        n.advance(3);
        n.push("cache", "Ok").await;
        ok(n.ts
            .api(
                "/incident/merge",
                json!({"target_incident_id": db, "source_incident_ids": [dup]}),
            )
            .await);
        n.advance(5);
        ok(n.ts
            .api("/incident/close", json!({"incident_ids": [db]}))
            .await);
        // A global incident made by hand: counted under channel "none", not automatic.
        ok(n.ts
            .api(
                "/incident/create",
                json!({"title": "customer report", "incident_severity": "Info"}),
            )
            .await);

        let account = n.insight("/insight/account", json!({})).await;
        assert_eq!(account.len(), 1);
        let a = &account[0];
        assert_eq!(a["total_incident_cnt"], 4, "{a}");
        assert_eq!(a["total_incidents_acknowledged"], 1);
        assert_eq!(a["total_incidents_closed"], 2);
        assert_eq!(a["total_incidents_manually_closed"], 1);
        assert_eq!(a["total_incidents_auto_closed"], 1);
        assert_eq!(a["total_incidents_timeout_closed"], 0);
        // db holds its own alert and dup's after the merge.
        assert_eq!(a["total_alert_cnt"], 4);
        assert_eq!(a["total_alert_event_cnt"], 7);
        assert_eq!(a["total_seconds_to_ack"], 120);
        assert_eq!(a["mean_seconds_to_ack"], 120.0);
        // MTTR over db (600 s) and cache (300 s).
        assert_eq!(a["mean_seconds_to_close"], 450.0);
        assert_eq!(a["acknowledgement_pct"], 25.0);
        // Automatic incidents only: 3 incidents from 7 events.
        assert_eq!(a["noise_reduction_pct"], 57.14);
        // The owner acknowledged db at +2 min; it closed at +10 min.
        assert_eq!(a["total_engaged_seconds"], 480);

        let by_channel = n
            .insight("/insight/channel", json!({"orderby": "total_incident_cnt"}))
            .await;
        assert_eq!(by_channel.len(), 2, "{by_channel:?}");
        assert_eq!(by_channel[0]["channel_id"], channel);
        assert_eq!(by_channel[0]["total_incident_cnt"], 3);
        assert_eq!(by_channel[1]["channel_id"], 0);
        assert_eq!(by_channel[1]["channel_name"], "none");
        assert_eq!(by_channel[1]["total_incident_cnt"], 1);
        assert_eq!(
            by_channel[1]["noise_reduction_pct"],
            Value::Null,
            "no events"
        );
        let ascending = n
            .insight(
                "/insight/channel",
                json!({"orderby": "total_incident_cnt", "asc": true}),
            )
            .await;
        assert_eq!(ascending[0]["channel_id"], 0);

        let by_team = n.insight("/insight/team", json!({})).await;
        assert_eq!(
            by_team.len(),
            1,
            "the global incident has no team: {by_team:?}"
        );
        assert_eq!(by_team[0]["team_id"], team);
        assert_eq!(by_team[0]["team_name"], "Payments");
        assert_eq!(by_team[0]["total_incident_cnt"], 3);
        // A team filter keeps that team's channels only.
        let of_team = n
            .insight("/insight/account", json!({"team_ids": [team]}))
            .await;
        assert_eq!(of_team[0]["total_incident_cnt"], 3);
        // Severity filter, as an array (openapi-compat.md 1.3).
        let critical = n
            .insight("/insight/account", json!({"severities": ["Critical"]}))
            .await;
        assert_eq!(critical[0]["total_incident_cnt"], 2, "{critical:?}");
        // Acknowledged within 60 s: none.
        let quick = n
            .insight("/insight/account", json!({"seconds_to_ack_to": 60}))
            .await;
        assert!(quick.is_empty(), "{quick:?}");
        // Outside the range: nothing.
        let (code, body) =
            n.ts.api(
                "/insight/account",
                json!({"start_time": T0 / 1000 + 86_400, "end_time": T0 / 1000 + 2 * 86_400}),
            )
            .await;
        assert_eq!(code, 200);
        assert_eq!(body["data"]["items"], json!([]));
        n.ts.stop().await;
    }
);

on_both_backends!(
    insights_split_by_hours_and_into_a_series,
    |url: String| async move {
        // spec: RSP-480, RSP-481
        let mut n = Node::start(&url).await;
        n.push("morning", "Critical").await; // Thursday 10:00 UTC: work
        n.advance(10 * 60); // 20:00: off
        n.push("evening", "Critical").await;
        n.advance(4 * 60); // Friday 00:00: sleep
        n.push("night", "Critical").await;
        let split = n
            .insight("/insight/account", json!({"split_hours": true}))
            .await;
        let hours: Vec<(&str, i64)> = split
            .iter()
            .map(|r| {
                (
                    r["hours"].as_str().unwrap(),
                    r["total_incident_cnt"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(hours, vec![("work", 1), ("off", 1), ("sleep", 1)]);
        // In Shanghai (UTC+8) 10:00 UTC is 18:00 (work), 20:00 is 04:00 (sleep), 00:00 is 08:00.
        let shanghai = n
            .insight(
                "/insight/account",
                json!({"split_hours": true, "time_zone": "Asia/Shanghai"}),
            )
            .await;
        let hours: Vec<(&str, i64)> = shanghai
            .iter()
            .map(|r| {
                (
                    r["hours"].as_str().unwrap(),
                    r["total_incident_cnt"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(hours, vec![("work", 2), ("sleep", 1)]);

        let series = n
            .insight("/insight/account", json!({"aggregate_unit": "day"}))
            .await;
        let points: Vec<(i64, i64)> = series
            .iter()
            .map(|r| {
                (
                    r["ts"].as_i64().unwrap(),
                    r["total_incident_cnt"].as_i64().unwrap(),
                )
            })
            .collect();
        let day0 = 1_767_225_600; // 2026-01-01 00:00 UTC
        assert_eq!(points, vec![(day0, 2), (day0 + 86_400, 1)]);

        // Bad input is refused and names the problem.
        let msg = invalid(
            n.ts.api(
                "/insight/account",
                json!({"start_time": T0 / 1000, "end_time": T0 / 1000 + 181 * 86_400}),
            )
            .await,
        );
        assert!(msg.contains("180 days"), "{msg}");
        let msg = invalid(
            n.ts.api(
                "/insight/account",
                json!({"start_time": T0 / 1000, "end_time": T0 / 1000 + 2 * 86_400,
                   "aggregate_unit": "hour"}),
            )
            .await,
        );
        assert!(msg.contains("31 points"), "{msg}");
        let msg = invalid(
            n.ts.api(
                "/insight/account",
                json!({"start_time": T0 / 1000, "end_time": T0 / 1000 + 3600, "orderby": "fun"}),
            )
            .await,
        );
        assert!(msg.starts_with("orderby"), "{msg}");
        let msg = invalid(
        n.ts.api(
            "/insight/account",
            json!({"start_time": T0 / 1000, "end_time": T0 / 1000 + 3600, "time_zone": "Mars/Base"}),
        )
        .await,
    );
        assert!(msg.starts_with("time_zone"), "{msg}");
        invalid(
            n.ts.api("/insight/account", json!({"end_time": T0 / 1000}))
                .await,
        );
        n.ts.stop().await;
    }
);

on_both_backends!(insights_per_responder, |url: String| async move {
    // spec: RSP-479, RSP-478, RSP-477, RSP-471
    let mut n = Node::start(&url).await;
    let me = ok(n.ts.api("/member/info", json!({})).await);
    let owner = me["member_id"].as_i64().unwrap();
    let invited = ok(n
        .ts
        .api(
            "/member/invite",
            json!({"members": [{"email": "bo@example.com", "member_name": "Bo"}]}),
        )
        .await);
    let bo = invited["items"][0]["member_id"].as_i64().unwrap();
    // A first sign-in turns the invited member into an enabled one (RSP-152).
    n.ts.server
        .as_ref()
        .unwrap()
        .store()
        .create_session(me["account_id"].as_i64().unwrap(), bo, 60_000, T0)
        .await
        .unwrap();
    let create = |title: &str| json!({"title": title, "incident_severity": "Critical"});
    let first = ok(n.ts.api("/incident/create", create("db down")).await)["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = ok(n.ts.api("/incident/create", create("queue stuck")).await)["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The owner is assigned the first incident at +1 min, acknowledges at +4 min and
    // closes it at +11 min: 180 s to acknowledge, 420 s engaged.
    n.advance(1);
    ok(n.ts
        .api(
            "/incident/assign",
            json!({"incident_id": first, "assigned_to": {"person_ids": [owner]}}),
        )
        .await);
    n.advance(3);
    ok(n.ts
        .api("/incident/ack", json!({"incident_ids": [first]}))
        .await);
    // Bo is added to the second incident and then reassigned away from it.
    ok(n.ts
        .api(
            "/incident/responder/add",
            json!({"incident_id": second, "person_ids": [bo]}),
        )
        .await);
    n.advance(1);
    ok(n.ts
        .api(
            "/incident/assign",
            json!({"incident_id": second, "assigned_to": {"person_ids": [owner]}}),
        )
        .await);
    n.advance(6);
    ok(n.ts
        .api("/incident/close", json!({"incident_ids": [first]}))
        .await);

    let rows = n
        .insight(
            "/insight/responder",
            json!({"orderby": "total_incident_cnt"}),
        )
        .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let o = &rows[0];
    assert_eq!(o["responder_id"], owner, "{rows:?}");
    assert_eq!(o["total_incident_cnt"], 2);
    assert_eq!(o["total_incidents_acknowledged"], 1);
    assert_eq!(o["mean_seconds_to_ack"], 180.0);
    assert_eq!(o["total_engaged_seconds"], 420);
    assert_eq!(o["total_incidents_reassigned"], 0);
    assert!(
        o.get("mean_seconds_to_close").is_none(),
        "no MTTR per responder"
    );
    let b = &rows[1];
    assert_eq!(b["responder_id"], bo);
    assert_eq!(b["responder_name"], "Bo");
    assert_eq!(b["total_incident_cnt"], 1);
    assert_eq!(b["total_incidents_acknowledged"], 0);
    assert_eq!(b["mean_seconds_to_ack"], Value::Null);
    assert_eq!(b["total_incidents_reassigned"], 1);
    assert_eq!(b["total_incidents_manually_escalated"], 0);
    assert_eq!(b["total_incidents_timeout_escalated"], 0);

    // The sends counted are the direct ones the incidents' notification lists show.
    for (person, row) in [(owner, o), (bo, b)] {
        let mut sends = 0;
        let mut interrupting = 0;
        for inc in [&first, &second] {
            let list = ok(n
                .ts
                .api("/incident/notification/list", json!({"incident_id": inc}))
                .await);
            for s in list["items"].as_array().unwrap() {
                if s["person_id"] == person {
                    sends += 1;
                    if ["sms", "voice", "app"].contains(&s["channel"].as_str().unwrap_or(""))
                        && s["status"] != "failed"
                    {
                        interrupting += 1;
                    }
                }
            }
        }
        assert_eq!(row["total_notifications"], sends, "{row} {person}");
        assert!(row["total_interruptions"].as_i64().unwrap() <= interrupting);
    }

    // Ascending by a responder metric; bad metric names are refused.
    let asc = n
        .insight(
            "/insight/responder",
            json!({"orderby": "total_incidents_reassigned", "asc": true}),
        )
        .await;
    assert_eq!(asc[0]["responder_id"], owner);
    let msg = invalid(
        n.ts.api(
            "/insight/responder",
            json!({"start_time": T0 / 1000, "end_time": T0 / 1000 + 3600,
                       "orderby": "total_incidents_closed"}),
        )
        .await,
    );
    assert!(msg.starts_with("orderby"), "{msg}");
    let msg = invalid(
        n.ts.api(
            "/insight/responder",
            json!({"start_time": T0 / 1000, "end_time": T0 / 1000 + 3600,
                       "split_hours": true}),
        )
        .await,
    );
    assert!(msg.contains("split_hours"), "{msg}");
    n.ts.stop().await;
});
