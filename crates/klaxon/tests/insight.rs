//! Insights over the Open API (response.md §2.27, openapi-compat.md 2.14): `/insight/account`,
//! `/insight/team` and `/insight/channel` over incidents pushed, acknowledged, closed and
//! merged with an injected clock. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is
//! set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

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
                    // Sends on an interrupting channel bound the interruptions: the delivery
                    // worker may fail a pending send between the insight read and this one.
                    if ["sms", "voice", "app"].contains(&s["channel"].as_str().unwrap_or("")) {
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

impl Node {
    async fn push_labeled(&self, key: &str, status: &str, labels: Value) {
        let (code, body) = self
            .ts
            .push(
                json!({"event_status": status, "title_rule": format!("{key} down"),
                         "alert_key": key, "labels": labels}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        self.ts.drained().await;
    }

    /// The period of every test: the day from an hour before T0.
    fn window(extra: Value) -> Value {
        let mut body = json!({"start_time": T0 / 1000 - 3600, "end_time": T0 / 1000 + 86_400});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    /// An export: (status, content type, body).
    async fn export(&self, path: &str, extra: Value) -> (u16, String, String) {
        let resp = self
            .ts
            .http
            .post(format!(
                "{}{path}?app_key={}",
                self.ts.base, self.ts.app_key
            ))
            .json(&Node::window(extra))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, ct, resp.text().await.unwrap())
    }

    /// An export that succeeded, parsed: the header and the records.
    async fn csv(&self, path: &str, extra: Value) -> (Vec<String>, Vec<Vec<String>>) {
        let (status, ct, body) = self.export(path, extra).await;
        assert_eq!(status, 200, "{body}");
        assert!(ct.starts_with("text/csv"), "{ct}");
        let mut records = klaxon_core::enrichment::parse_csv(&body)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r);
        let header = records.next().unwrap();
        (header, records.collect())
    }

    /// The period's incidents: db (3 events, acknowledged after 4 min, closed by hand after
    /// 12), cache (5 events, never
    /// Critical, recovered by itself after 4 min), disk (open), and dup merged into db (left out, RSP-471). Each starts a minute after the one before.
    async fn incidents_of_a_period(&self) -> (String, String, String) {
        let cpu = |resource: &str| json!({"check": "cpu", "resource": resource});
        // An event repeating the alert's status is not a new event: alternate.
        for status in ["Critical", "Warning", "Critical"] {
            self.push_labeled("db", status, cpu("web-1")).await;
        }
        self.advance(1);
        let disk_check = json!({"check": "disk", "resource": "web-1"});
        for status in ["Warning", "Info", "Warning", "Info"] {
            self.push_labeled("cache", status, disk_check.clone()).await;
        }
        self.advance(1);
        self.push_labeled("disk", "Critical", cpu("web-2")).await;
        self.push("dup", "Critical").await;
        let db = self.incident_of("db").await;
        let dup = self.incident_of("dup").await;
        ok(self
            .ts
            .api(
                "/incident/merge",
                json!({"target_incident_id": db, "source_incident_ids": [dup]}),
            )
            .await);
        self.advance(2);
        ok(self
            .ts
            .api("/incident/ack", json!({"incident_ids": [db]}))
            .await);
        self.advance(1);
        self.push_labeled("cache", "Ok", disk_check).await;
        self.advance(7);
        ok(self
            .ts
            .api("/incident/close", json!({"incident_ids": [db]}))
            .await);
        (
            db,
            self.incident_of("cache").await,
            self.incident_of("disk").await,
        )
    }
}

on_both_backends!(
    the_incident_list_pages_and_adds_up_to_the_totals,
    |url: String| async move {
        // spec: RSP-471, RSP-472, RSP-473, RSP-474, RSP-477, RSP-478 (per incident);
        // openapi-compat.md 1.6 (p/limit and search_after_ctx on /insight/incident/list)
        let mut n = Node::start(&url).await;
        let (db, cache, disk) = n.incidents_of_a_period().await;
        let list = |extra: Value| n.ts.api("/insight/incident/list", Node::window(extra));

        let first = ok(list(json!({"limit": 2})).await);
        assert_eq!(first["total"], 3, "dup was merged away: {first}");
        assert_eq!(first["has_next_page"], true);
        let ids = |page: &Value| -> Vec<String> {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["incident_id"].as_str().unwrap().to_string())
                .collect()
        };
        // Newest first by default.
        assert_eq!(ids(&first), vec![disk.clone(), cache.clone()]);
        let ctx = first["search_after_ctx"].as_str().unwrap().to_string();
        let next = ok(list(json!({"limit": 2, "search_after_ctx": ctx})).await);
        assert_eq!(ids(&next), vec![db.clone()]);
        assert_eq!(next["has_next_page"], false);
        assert!(
            next.get("search_after_ctx").is_none(),
            "no cursor on the last page"
        );
        let second = ok(list(json!({"limit": 2, "p": 2})).await);
        assert_eq!(ids(&second), vec![db.clone()]);
        let oldest = ok(list(json!({"limit": 2, "asc": true})).await);
        assert_eq!(ids(&oldest), vec![db.clone(), cache.clone()]);
        let ctx = oldest["search_after_ctx"].as_str().unwrap().to_string();
        let rest = ok(list(json!({"limit": 2, "asc": true, "search_after_ctx": ctx})).await);
        assert_eq!(ids(&rest), vec![disk.clone()]);

        let all = ok(list(json!({"limit": 100})).await);
        let items = all["items"].as_array().unwrap();
        let by_id = |id: &str| items.iter().find(|i| i["incident_id"] == id).unwrap();
        let d = by_id(&db);
        assert_eq!(d["seconds_to_ack"], 240, "{d}");
        assert_eq!(d["seconds_to_close"], 720);
        assert_eq!(d["engaged_seconds"], 480);
        assert_eq!(d["acknowledgements"], 1);
        assert_eq!(d["hours"], "work");
        assert_eq!(d["labels"]["check"], "cpu", "the list keeps the labels");
        let c = by_id(&cache);
        assert_eq!(c["seconds_to_ack"], Value::Null);
        assert_eq!(c["seconds_to_close"], 240);
        assert_eq!(c["alert_event_cnt"], 5);
        assert_eq!(by_id(&disk)["seconds_to_close"], Value::Null);

        // The list adds up to the account's row.
        let account = &n.insight("/insight/account", json!({})).await[0];
        let sum = |m: &str| -> i64 { items.iter().map(|i| i[m].as_i64().unwrap_or(0)).sum() };
        assert_eq!(
            sum("seconds_to_ack"),
            account["total_seconds_to_ack"].as_i64().unwrap()
        );
        assert_eq!(
            sum("seconds_to_close"),
            account["total_seconds_to_close"].as_i64().unwrap()
        );
        assert_eq!(
            sum("engaged_seconds"),
            account["total_engaged_seconds"].as_i64().unwrap()
        );
        assert_eq!(
            sum("alert_event_cnt"),
            account["total_alert_event_cnt"].as_i64().unwrap()
        );
        assert_eq!(
            items.len() as i64,
            account["total_incident_cnt"].as_i64().unwrap()
        );
        // Each incident's sends are the direct ones its notification list shows.
        for i in items {
            let id = i["incident_id"].as_str().unwrap();
            let sent = ok(n
                .ts
                .api("/incident/notification/list", json!({"incident_id": id}))
                .await);
            let direct = sent["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["person_id"].as_i64().unwrap_or(0) > 0)
                .count();
            assert_eq!(i["notifications"], direct, "{i}");
        }

        // Same filters as the other insight endpoints.
        let critical = ok(list(json!({"severities": ["Critical"]})).await);
        assert_eq!(critical["total"], 2);
        let quick = ok(list(json!({"seconds_to_close_to": 300})).await);
        assert_eq!(ids(&quick), vec![cache.clone()]);

        // Bad input is refused and names the problem.
        let msg = invalid(list(json!({"search_after_ctx": "zz"})).await);
        assert!(msg.contains("search_after_ctx"), "{msg}");
        let msg = invalid(list(json!({"orderby": "title"})).await);
        assert!(msg.starts_with("orderby"), "{msg}");
        let msg = invalid(list(json!({"aggregate_unit": "day"})).await);
        assert!(msg.contains("aggregate_unit"), "{msg}");
        let msg = invalid(list(json!({"p": 200, "limit": 100})).await);
        assert!(msg.contains("search_after_ctx"), "{msg}");
        n.ts.stop().await;
    }
);

on_both_backends!(
    top_check_and_resource_values_by_alert_events,
    |url: String| async move {
        // spec: RSP-482
        let mut n = Node::start(&url).await;
        n.incidents_of_a_period().await;
        let top = |extra: Value| {
            n.ts.api("/insight/alert/topk-by-label", Node::window(extra))
        };
        let values = |data: &Value| -> Vec<(String, i64, i64)> {
            assert!(data.get("has_next_page").is_none(), "no paging members");
            data["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    (
                        i["value"].as_str().unwrap().to_string(),
                        i["total_alert_cnt"].as_i64().unwrap(),
                        i["total_alert_event_cnt"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        // cache's alert (check disk) had 5 events; db's and disk's (check cpu) 3 and 1.
        let checks = ok(top(json!({"label": "check"})).await);
        assert_eq!(
            values(&checks),
            vec![("disk".into(), 1, 5), ("cpu".into(), 2, 4)]
        );
        let by_alerts = ok(top(json!({"label": "check", "orderby": "total_alert_cnt"})).await);
        assert_eq!(values(&by_alerts)[0].0, "cpu");
        let resources = ok(top(json!({"label": "resource", "k": 1})).await);
        assert_eq!(values(&resources), vec![("web-1".into(), 2, 8)]);
        // A team filter narrows the population like the other insights.
        let none = ok(top(json!({"label": "check", "channel_ids": [999_999]})).await);
        assert_eq!(values(&none), vec![]);

        let msg = invalid(top(json!({"label": "host"})).await);
        assert!(msg.contains("check or resource"), "{msg}");
        let msg = invalid(top(json!({})).await);
        assert!(msg.starts_with("label"), "{msg}");
        let msg = invalid(top(json!({"label": "check", "k": 101})).await);
        assert!(msg.starts_with("k "), "{msg}");
        let msg = invalid(top(json!({"label": "check", "orderby": "value"})).await);
        assert!(msg.starts_with("orderby"), "{msg}");
        n.ts.stop().await;
    }
);

on_both_backends!(insight_exports_are_csv_files, |url: String| async move {
    // spec: RSP-483
    let mut n = Node::start(&url).await;
    let (db, _, _) = n.incidents_of_a_period().await;
    // A hand-made incident whose title needs quoting and whose description is HTML.
    let made = ok(n
        .ts
        .api(
            "/incident/create",
            json!({"title": "customer \"report\", urgent", "incident_severity": "Info",
                   "description": "<p>disk <b>full</b> on web-1</p>"}),
        )
        .await)["incident_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (header, rows) = n.csv("/insight/incident/export", json!({})).await;
    assert!(
        !header.iter().any(|h| h == "labels"),
        "no labels: {header:?}"
    );
    assert!(header.iter().any(|h| h == "interruptions"), "{header:?}");
    assert_eq!(
        rows.len(),
        4,
        "the population: db, cache, disk and the hand-made one"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row_of = |id: &str| rows.iter().find(|r| r[col("incident_id")] == id).unwrap();
    assert_eq!(row_of(&db)[col("seconds_to_ack")], "240");
    assert_eq!(row_of(&db)[col("engaged_seconds")], "480");
    assert_eq!(row_of(&made)[col("title")], "customer \"report\", urgent");
    assert_eq!(
        row_of(&made)[col("seconds_to_ack")],
        "",
        "null is an empty cell"
    );
    assert!(row_of(&made)[col("description")].contains("<b>"));

    let (header, rows) = n
        .csv(
            "/insight/incident/export",
            json!({"export_fields": ["title", "description", "seconds_to_close"],
                   "description_html_to_text": true, "asc": true}),
        )
        .await;
    assert_eq!(header, vec!["title", "description", "seconds_to_close"]);
    assert_eq!(rows[0], vec!["db down", "", "720"]);
    let last = rows.last().unwrap();
    assert_eq!(last[1], "disk full on web-1");

    let (header, rows) = n.csv("/insight/team/export", json!({})).await;
    assert_eq!(header[..2], ["team_id", "team_name"]);
    assert!(rows.is_empty(), "no channel has a team");
    let (header, rows) = n
        .csv(
            "/insight/channel/export",
            json!({"export_fields": ["channel_name", "total_incident_cnt"],
                   "orderby": "total_incident_cnt"}),
        )
        .await;
    assert_eq!(header, vec!["channel_name", "total_incident_cnt"]);
    assert_eq!(rows[0][1], "3");
    assert_eq!(rows[1], vec!["none", "1"]);
    let (header, rows) = n
        .csv("/insight/channel/export", json!({"split_hours": true}))
        .await;
    assert!(header.contains(&"hours".to_string()) && !header.contains(&"ts".to_string()));
    assert_eq!(rows.len(), 2);
    let (header, rows) = n.csv("/insight/responder/export", json!({})).await;
    assert_eq!(header[..2], ["responder_id", "responder_name"]);
    assert!(!header.contains(&"mean_seconds_to_close".to_string()));
    for r in &rows {
        assert!(!r[0].is_empty());
    }

    // Bad input: a 400 naming the problem, not a file.
    let (status, ct, body) = n
        .export(
            "/insight/incident/export",
            json!({"export_fields": ["title", "labels"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "InvalidParameter");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"labels\""),
        "{body}"
    );
    let many: Vec<&str> = vec!["title"; 51];
    let (status, _, body) = n
        .export("/insight/team/export", json!({"export_fields": many}))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("at most 50"), "{body}");
    let (status, _, body) = n
        .export(
            "/insight/responder/export",
            json!({"export_fields": ["mean_seconds_to_close"]}),
        )
        .await;
    assert_eq!(status, 400, "no MTTR per responder: {body}");
    n.ts.stop().await;
});

on_both_backends!(
    the_console_insights_page_shows_the_figures,
    |url: String| async move {
        // spec: RSP-470 (a custom range), RSP-472, RSP-482 (rankings, top check and resource
        // values), RSP-483 (the CSV download)
        let mut n = Node::start(&url).await;
        n.incidents_of_a_period().await;
        let server = n.ts.server.as_ref().unwrap();
        let (cookie, _) = common::console_session(server).await;
        let get = |path: &str| {
            n.ts.http
                .get(format!("{}{path}", n.ts.base))
                .header("cookie", cookie.clone())
                .send()
        };
        let range = "range=custom&from=2025-12-31&to=2026-01-02";
        let resp = get(&format!("/insights?{range}")).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let html = resp.text().await.unwrap();
        let section = |id: &str| -> String {
            let at = html
                .find(&format!("id=\"{id}\""))
                .unwrap_or_else(|| panic!("{id}: {html}"));
            let rest = &html[at..];
            let end = if id == "totals" { "</dl>" } else { "</table>" };
            rest[..rest.find(end).unwrap()].to_string()
        };
        let totals = section("totals");
        assert!(totals.contains("<dt>Incidents</dt><dd>3</dd>"), "{totals}");
        // MTTA: db, acknowledged after 240 s, is the only acknowledged incident.
        assert!(totals.contains("<dt>MTTA</dt><dd>240.0 s</dd>"), "{totals}");
        let checks = section("check-top");
        let disk = checks.find(">disk<").unwrap();
        let cpu = checks.find(">cpu<").unwrap();
        assert!(disk < cpu, "by alert events: {checks}");
        assert!(section("resource-top").contains(">web-1<"));
        let channels = section("channel-ranking");
        assert!(
            channels.contains("<td data-label=\"Incidents\">3</td>"),
            "{channels}"
        );
        assert!(html.contains(&format!(
            "/insights/export/incident?{}",
            range.replace('&', "&amp;")
        )));

        let resp = get(&format!("/insights/export/channel?{range}"))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/csv"), "{ct}");
        let text = resp.text().await.unwrap();
        let records = klaxon_core::enrichment::parse_csv(&text).unwrap();
        assert_eq!(records[0].1[..2], ["channel_id", "channel_name"]);
        assert_eq!(records.len(), 2, "one channel: {text}");

        // A bad range is refused with a page naming it.
        let resp = get("/insights?range=custom&from=soon").await.unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        assert!(resp.text().await.unwrap().contains("from must be a date"));
        n.ts.stop().await;
    }
);

on_both_backends!(
    the_console_insights_filter_is_remembered_for_each_member,
    |url: String| async move {
        // spec: RSP-470 (filters by team, channel and severity; each user's last filter
        // choice is stored for that user only)
        let mut n = Node::start(&url).await;
        n.incidents_of_a_period().await;
        let server = n.ts.server.as_ref().unwrap();
        let (owner, _) = common::console_session(server).await;
        let invited = ok(n
            .ts
            .api(
                "/member/invite",
                json!({"members": [{"email": "ana@example.com"}]}),
            )
            .await);
        let ana_id = invited["items"][0]["member_id"].as_i64().unwrap();
        let session = server
            .store()
            .create_session(
                server.bootstrap().account_id,
                ana_id,
                86_400_000,
                n.clock.0.load(Ordering::SeqCst),
            )
            .await
            .unwrap();
        let ana = format!("klaxon_session={}", session.token);
        let get = |cookie: &str, path: &str| {
            n.ts.http
                .get(format!("{}{path}", n.ts.base))
                .header("cookie", cookie.to_string())
                .send()
        };
        let totals = |html: &str| -> String {
            let at = html
                .find("id=\"totals\"")
                .unwrap_or_else(|| panic!("{html}"));
            html[at..at + html[at..].find("</dl>").unwrap()].to_string()
        };
        let count = |v: &Value| v["items"][0]["total_incident_cnt"].as_i64().unwrap_or(0);
        let all = ok(n.ts.api("/insight/account", Node::window(json!({}))).await);
        let critical = ok(n
            .ts
            .api(
                "/insight/account",
                Node::window(json!({"severities": ["Critical"]})),
            )
            .await);
        assert!(
            count(&critical) > 0 && count(&critical) < count(&all),
            "{critical}"
        );

        // The owner filters by severity: the page shows the API's figures for it.
        let period = "range=custom&from=2025-12-31&to=2026-01-02";
        let html = get(&owner, &format!("/insights?{period}&severity=Critical"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let filtered = format!("<dt>Incidents</dt><dd>{}</dd>", count(&critical));
        assert!(totals(&html).contains(&filtered), "{html}");
        assert!(html.contains("value=\"Critical\" checked"));
        assert!(html.contains(&format!(
            "/insights/export/incident?{}&amp;severity=Critical",
            period.replace('&', "&amp;")
        )));

        // Opened again without a choice, the page shows the owner's last one.
        let html = get(&owner, "/insights")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(totals(&html).contains(&filtered), "{html}");
        assert!(html.contains("value=\"2025-12-31\""), "{html}");
        // The CSV of a filtered page holds the filtered incidents.
        let csv = get(
            &owner,
            &format!("/insights/export/incident?{period}&severity=Critical"),
        )
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        let records = klaxon_core::enrichment::parse_csv(&csv).unwrap();
        assert_eq!(records.len() as i64, count(&critical) + 1, "{csv}");

        // Another member's page is their own: this week, unfiltered (the period's
        // incidents are not in this week).
        let html = get(&ana, "/insights").await.unwrap().text().await.unwrap();
        assert!(!html.contains("value=\"Critical\" checked"), "{html}");
        assert!(html.contains("<option value=\"week\" selected>"), "{html}");
        // Ana's choice of a channel does not change the owner's.
        let channel = all["items"][0]["channel_id"].as_i64();
        let channels = ok(n.ts.api("/channel/list", json!({})).await);
        let channel_id = channel
            .or_else(|| channels["items"][0]["channel_id"].as_i64())
            .unwrap();
        let html = get(&ana, &format!("/insights?{period}&channel={channel_id}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains(&format!("<option value=\"{channel_id}\" selected>")),
            "{html}"
        );
        let html = get(&owner, "/insights")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(totals(&html).contains(&filtered), "{html}");
        assert!(!html.contains(&format!("<option value=\"{channel_id}\" selected>")));

        // A bad filter is refused naming it, and the remembered choice stays.
        let resp = get(&owner, "/insights?range=week&severity=Ok")
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        assert!(resp.text().await.unwrap().contains("severity must be"));
        let stored = server
            .store()
            .member_insight_filter(
                server.bootstrap().account_id,
                server.bootstrap().owner_member_id,
            )
            .await
            .unwrap()
            .unwrap();
        assert!(stored.contains("\"Critical\""), "{stored}");
        n.ts.stop().await;
    }
);
