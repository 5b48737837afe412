//! Boots the real server on port 0 with a temporary data directory and drives it over HTTP
//! (SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs};
use serde_json::{Value, json};

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit())
}

// spec: ING-008, ING-031, ING-124, ING-170, ING-121, ING-200
on_both_backends!(
    alert_becomes_incident_and_recovery_closes_it,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let resp = t
            .http
            .post(t.push_url())
            .json(&json!({
                "event_status": "Critical",
                "title_rule": "CPU high on $host",
                "alert_key": "cpu-web-1",
                "description": "load 12",
                "labels": {"host": "web-1"}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let rid = resp.headers()["flashcat-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(resp.headers()["x-request-id"].to_str().unwrap(), rid);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["request_id"], rid.as_str());
        assert!(is_hex(&rid, 32));
        assert_eq!(body["data"]["alert_key"], "cpu-web-1");
        assert!(body.get("error").is_none());

        t.drained().await;
        let incidents = t.incidents().await;
        assert_eq!(incidents.len(), 1);
        let inc = &incidents[0];
        assert_eq!(inc["title"], "CPU high on web-1");
        assert_eq!(inc["incident_severity"], "Critical");
        assert_eq!(inc["incident_status"], "Critical");
        assert_eq!(inc["progress"], "Triggered");
        assert_eq!(inc["alert_cnt"], 1);
        assert_eq!(inc["labels"]["host"], "web-1");
        assert_eq!(inc["channel_name"], "Default");
        let incident_id = inc["incident_id"].as_str().unwrap().to_string();
        assert!(is_hex(&incident_id, 24));
        assert_eq!(inc["num"], incident_id[18..].to_uppercase());

        let alerts = t.alerts().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["incident"]["incident_id"], incident_id.as_str());
        assert_eq!(alerts[0]["alert_status"], "Critical");

        let (status, events) = t.api("/alert-event/list", json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(events["data"]["items"].as_array().unwrap().len(), 1);
        assert_eq!(events["data"]["items"][0]["request_id"], rid.as_str());
        // spec: ING-054 — the item as received is kept with the event.
        assert!(
            events["data"]["items"][0]["raw"]
                .as_str()
                .unwrap()
                .contains("\"alert_key\":\"cpu-web-1\"")
        );

        // Recovery resolves the alert and auto-resolves the incident.
        let (status, _) = t
            .push(json!({"event_status": "Ok", "alert_key": "cpu-web-1"}))
            .await;
        assert_eq!(status, 200);
        t.drained().await;
        let (status, info) = t
            .api("/incident/info", json!({"incident_id": incident_id}))
            .await;
        assert_eq!(status, 200, "{info}");
        assert_eq!(info["data"]["progress"], "Closed");
        assert_eq!(info["data"]["incident_status"], "Ok");
        assert_eq!(info["data"]["close_source"], "event");
        assert_eq!(info["data"]["alert_event_cnt"], 2);
        t.stop().await;
    }
);

// spec: ING-026, ING-120
on_both_backends!(
    same_payload_twice_is_one_alert_and_one_event,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let payload = json!({"event_status": "Warning", "title_rule": "disk full", "labels": {"host": "db-1"}});
        let (s1, b1) = t.push(payload.clone()).await;
        let (s2, b2) = t.push(payload).await;
        assert_eq!((s1, s2), (200, 200));
        let key = b1["data"]["alert_key"].as_str().unwrap();
        assert!(is_hex(key, 32));
        assert_eq!(b2["data"]["alert_key"], key);
        t.drained().await;
        let alerts = t.alerts().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["event_cnt"], 1);
        assert_eq!(t.incidents().await.len(), 1);
        t.stop().await;
    }
);

// spec: ING-002, ING-003, ING-004, ING-005, ING-006, ING-009, ING-021
on_both_backends!(
    push_errors_follow_the_table_and_write_nothing,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let std_url = t.push_url();
        let expect = |resp: reqwest::Response, status: u16, code: &'static str| async move {
            assert_eq!(resp.status().as_u16(), status);
            assert!(resp.headers().contains_key("flashcat-request-id"));
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], code, "{body}");
            assert!(body["request_id"].is_string());
            assert!(body.get("data").is_none());
            body["error"]["message"].as_str().unwrap_or("").to_string()
        };
        let ok_body = json!({"event_status": "Critical", "title_rule": "x"}).to_string();

        // ING-002: GET on a push path is a 400, not a 405.
        expect(
            t.http.get(&std_url).send().await.unwrap(),
            400,
            "MethodNotAllowed",
        )
        .await;
        // ING-003
        expect(
            t.http
                .post(format!(
                    "{}/event/push/alert/nonesuch?integration_key=x",
                    t.base
                ))
                .send()
                .await
                .unwrap(),
            404,
            "RouteNotFound",
        )
        .await;
        expect(
            t.http
                .post(format!("{}/no/such/path", t.base))
                .send()
                .await
                .unwrap(),
            404,
            "RouteNotFound",
        )
        .await;
        // ING-004
        let m = expect(
            t.http
                .post(&std_url)
                .header("content-type", "text/plain")
                .body(ok_body.clone())
                .send()
                .await
                .unwrap(),
            400,
            "InvalidContentType",
        )
        .await;
        assert!(m.contains("application/json"));
        assert_eq!(
            t.http
                .post(&std_url)
                .header("content-type", "Application/JSON; charset=utf-8")
                .body(ok_body.clone())
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        // ING-005
        let m = expect(
            t.http
                .post(format!("{}/event/push/alert/standard", t.base))
                .header("content-type", "application/json")
                .body(ok_body.clone())
                .send()
                .await
                .unwrap(),
            401,
            "Unauthorized",
        )
        .await;
        assert_eq!(m, "integration_key is required");
        let m = expect(
            t.http
                .post(format!(
                    "{}/event/push/alert/standard?integration_key=0000",
                    t.base
                ))
                .header("content-type", "application/json")
                .body(ok_body.clone())
                .send()
                .await
                .unwrap(),
            400,
            "InvalidParameter",
        )
        .await;
        assert_eq!(m, "integration_key is not a valid one");
        // ING-006
        let huge = format!(
            "{{\"event_status\":\"Critical\",\"title_rule\":\"x\",\"description\":\"{}\"}}",
            "a".repeat(5 * 1024 * 1024)
        );
        let m = expect(
            t.http
                .post(&std_url)
                .header("content-type", "application/json")
                .body(huge)
                .send()
                .await
                .unwrap(),
            400,
            "InvalidParameter",
        )
        .await;
        assert_eq!(m, "request body too large");
        let m = expect(
            t.http
                .post(&std_url)
                .header("content-type", "application/json")
                .body("{not json")
                .send()
                .await
                .unwrap(),
            400,
            "InvalidParameter",
        )
        .await;
        assert_eq!(m, "invalid JSON");
        // ING-021
        let m = expect(
            t.http
                .post(&std_url)
                .json(&json!({"event_status": "critical", "title_rule": "x"}))
                .send()
                .await
                .unwrap(),
            400,
            "InvalidParameter",
        )
        .await;
        assert_eq!(m, "event_status is invalid");

        // Only the one valid push above was accepted.
        t.drained().await;
        assert_eq!(t.alerts().await.len(), 1);
        t.stop().await;
    }
);

// spec: ING-001 — a key works only on its own type's path (standard family: also on
// /standard); the alias paths exist and refuse a key of another type.
on_both_backends!(
    keys_only_work_on_their_own_push_path,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let body = json!({"event_status": "Info", "title_rule": "x"});
        let resp = t
            .http
            .post(format!(
                "{}/event/push/alert/uptimekuma?integration_key={}",
                t.base, t.integration_key
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let b: Value = resp.json().await.unwrap();
        assert_eq!(b["error"]["code"], "InvalidParameter");
        assert_eq!(b["error"]["message"], "integration type mismatch");
        let (status, _) = t.push(body).await;
        assert_eq!(status, 200);
        t.stop().await;
    }
);

// spec: ING-007
on_both_backends!(
    rate_limit_answers_429_with_retry_after,
    |url: String| async move {
        let mut t = TestServer::start_with(&url, |c| {
            c.limits.per_integration_per_second = 2;
        })
        .await;
        let body = json!({"event_status": "Info", "title_rule": "tick"});
        let mut statuses = Vec::new();
        let mut throttled = None;
        for _ in 0..5 {
            let resp = t.http.post(t.push_url()).json(&body).send().await.unwrap();
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 {
                throttled = Some(resp);
            }
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            2,
            "{statuses:?}"
        );
        let resp = throttled.unwrap();
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(resp.headers()["x-ratelimit-limit"], "2");
        assert!(resp.headers().contains_key("x-ratelimit-reset"));
        let b: Value = resp.json().await.unwrap();
        assert_eq!(b["error"]["code"], "RequestTooFrequently");
        t.stop().await;
    }
);

// openapi-compat.md 1.2–1.7
on_both_backends!(open_api_wire_conventions, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    // No key / bad key → 401.
    let r = t
        .http
        .post(format!("{}/member/info", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "Unauthorized");
    let r = t
        .http
        .post(format!("{}/member/info?app_key=nope", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Body-less POST, key in the query.
    let r = t
        .http
        .post(format!("{}/member/info?app_key={}", t.base, t.app_key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["data"]["email"], "owner@klaxon.local");
    assert_eq!(me["data"]["account_role_ids"], json!([2]));
    // Bearer header.
    let r = t
        .http
        .post(format!("{}/account/info", t.base))
        .bearer_auth(&t.app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let acct: Value = r.json().await.unwrap();
    assert_eq!(acct["data"]["account_id"], me["data"]["account_id"]);
    // Wrong method on an Open API path → 405.
    let r = t
        .http
        .get(format!("{}/incident/list?app_key={}", t.base, t.app_key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // Required window and its cap.
    let (s, b) = t.api("/incident/list", json!({})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("InvalidParameter"))
    );
    assert_eq!(b["error"]["message"], "start_time is required");
    let now = now_secs();
    let (s, _) = t
        .api(
            "/incident/list",
            json!({"start_time": now - 31 * 86_400, "end_time": now}),
        )
        .await;
    assert_eq!(s, 400);
    // Paging values ≤ 0 are clamped, never refused; unknown fields are ignored.
    let (s, b) = t
        .api("/incident/list", json!({"start_time": now - 3600, "end_time": now + 60, "p": -1, "limit": -1, "search_after_ctx": "", "whatever": 1}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["total"], 0);
    // Wrong types name the field.
    let (s, b) = t
        .api(
            "/incident/list",
            json!({"start_time": "yesterday", "end_time": now}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["message"], "start_time must be an integer");
    // Unknown ids are ResourceNotFound with HTTP 400.
    let (s, b) = t
        .api(
            "/incident/info",
            json!({"incident_id": "000000000000000000000000"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("ResourceNotFound"))
    );
    // The default channel is there.
    let (s, b) = t.api("/channel/list", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(b["data"]["items"][0]["channel_name"], "Default");
    assert_eq!(b["data"]["total"], 1);
    t.stop().await;
});

// openapi-compat.md 1.6
on_both_backends!(
    incident_list_pages_by_offset_and_cursor,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        for i in 0..5 {
            let (s, _) = t.push(json!({"event_status": "Warning", "title_rule": format!("alert {i}"), "alert_key": format!("k{i}")})).await;
            assert_eq!(s, 200);
        }
        t.drained().await;
        let now = now_secs();
        let window = |extra: Value| {
            let mut v = json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 2});
            for (k, val) in extra.as_object().unwrap() {
                v[k] = val.clone();
            }
            v
        };
        let (_, p1) = t.api("/incident/list", window(json!({}))).await;
        assert_eq!(p1["data"]["total"], 5);
        assert_eq!(p1["data"]["has_next_page"], true);
        let (_, p3) = t.api("/incident/list", window(json!({"p": 3}))).await;
        assert_eq!(p3["data"]["items"].as_array().unwrap().len(), 1);
        assert_eq!(p3["data"]["has_next_page"], false);
        // Follow the cursor to the end: every incident exactly once.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let extra = match &cursor {
                Some(c) => json!({"search_after_ctx": c}),
                None => json!({}),
            };
            let (s, page) = t.api("/incident/list", window(extra)).await;
            assert_eq!(s, 200, "{page}");
            for item in page["data"]["items"].as_array().unwrap() {
                seen.push(item["incident_id"].as_str().unwrap().to_string());
            }
            match page["data"]["search_after_ctx"].as_str() {
                Some(c) if page["data"]["has_next_page"] == true => cursor = Some(c.to_string()),
                _ => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (5, 5));
        t.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let mut t = TestServer::start("").await;
    let (s, _) = t
        .push(json!({"event_status": "Info", "title_rule": "x"}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = t.push(json!({"event_status": "nope"})).await;
    assert_eq!(s, 400);
    assert_eq!(
        t.http
            .get(format!("{}/healthz", t.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        t.http
            .get(format!("{}/readyz", t.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let home = t.http.get(format!("{}/", t.base)).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(
        home.text()
            .await
            .unwrap()
            .contains("/event/push/alert/standard")
    );
    t.drained().await;
    let text = t.metrics().await;
    assert!(
        text.contains("klaxon_push_requests_total{code=\"OK\"}"),
        "{text}"
    );
    assert!(text.contains("klaxon_push_requests_total{code=\"InvalidParameter\"}"));
    assert!(text.contains("klaxon_push_latency_seconds_bucket"));
    assert!(text.contains("klaxon_store_commit_seconds_bucket"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_creates_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let first = klaxon_server::start(common::test_config(dir.path(), ""))
        .await
        .unwrap();
    assert!(first.bootstrap().created);
    assert!(first.owner_password().is_some());
    let key = first.bootstrap().integration_key.clone();
    let ids = (
        first.bootstrap().account_id,
        first.bootstrap().channel_id,
        first.bootstrap().integration_id,
    );
    assert!(first.banner().contains(&format!("integration_key={key}")));
    assert!(first.banner().contains("curl"));
    first.shutdown().await;

    let second = klaxon_server::start(common::test_config(dir.path(), ""))
        .await
        .unwrap();
    assert!(!second.bootstrap().created);
    assert!(second.owner_password().is_none());
    assert_eq!(second.bootstrap().integration_key, key);
    assert_eq!(
        (
            second.bootstrap().account_id,
            second.bootstrap().channel_id,
            second.bootstrap().integration_id
        ),
        ids
    );
    second.shutdown().await;
}
