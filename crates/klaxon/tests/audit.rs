//! The audit log over HTTP (response.md §1.25, §2.32; openapi-compat.md 2.15): writes made
//! with an APP key are recorded with who, when, where from, what and how it ended; failed
//! writes too; reads are not; `/audit/search` filters and pages; it needs `Audit Read`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs, test_config};
use serde_json::{Value, json};

fn ok(status: u16, body: &Value) -> &Value {
    assert_eq!(status, 200, "{body}");
    &body["data"]
}

async fn store_of(ts: &TestServer) -> klaxon_store::Store {
    let url = test_config(ts.dir.path(), &ts.database_url).effective_database_url();
    klaxon_store::Store::connect(&url, klaxon_store::StoreOptions::default())
        .await
        .unwrap()
}

async fn search(ts: &TestServer, extra: Value) -> (u16, Value) {
    let now = now_secs();
    let mut body = json!({"start_time": now - 3600, "end_time": now + 60});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ts.api("/audit/search", body).await
}

fn docs(data: &Value) -> Vec<Value> {
    data["docs"].as_array().unwrap().clone()
}

on_both_backends!(
    writes_and_failures_are_recorded_reads_are_not,
    |url: String| async move {
        // spec: RSP-600
        // spec: RSP-601
        let ts = TestServer::start(&url).await;
        let channel_id = ts.server.as_ref().unwrap().bootstrap().channel_id;
        let (s, b) = ts
            .api(
                "/incident/create",
                json!({"title": "disk full", "incident_severity": "Warning",
                   "channel_id": channel_id, "description": "x", "webhook_token": "hunter2"}),
            )
            .await;
        let incident_id = ok(s, &b)["incident_id"].as_str().unwrap().to_string();
        let (s, b) = ts
            .api("/incident/ack", json!({"incident_ids": [incident_id]}))
            .await;
        ok(s, &b);
        let ack_request = b["request_id"].as_str().unwrap().to_string();
        // A failed write: an unknown incident.
        let (s, b) = ts
            .api(
                "/incident/resolve",
                json!({"incident_ids": ["000000000000000000000000"]}),
            )
            .await;
        assert_ne!(s, 200, "{b}");
        let failed_code = b["error"]["code"].as_str().unwrap().to_string();
        // A read is not recorded.
        let (s, b) = ts
            .api("/incident/info", json!({"incident_id": incident_id}))
            .await;
        ok(s, &b);

        let (s, b) = search(&ts, json!({"limit": 99})).await;
        let data = ok(s, &b);
        let all = docs(data);
        let ops: Vec<&str> = all
            .iter()
            .map(|d| d["operation"].as_str().unwrap())
            .collect();
        assert_eq!(
            ops,
            vec![
                "incident:write:resolve",
                "incident:write:ack",
                "incident:write:create"
            ],
            "newest first, writes only"
        );
        assert_eq!(data["total"], 3);
        assert_eq!(data["search_after_ctx"], "", "one page: no cursor");
        let ack = &all[1];
        assert_eq!(
            ack["request_id"],
            ack_request.as_str(),
            "event id = request id"
        );
        assert_eq!(ack["result"], "ok");
        assert_eq!(ack["resource_type"], "incident");
        assert_eq!(ack["resource_id"], incident_id.as_str());
        assert_eq!(ack["ip"], "127.0.0.1");
        assert_eq!(ack["source"], "api");
        assert_eq!(ack["is_write"], true);
        assert!(ack["member_id"].as_i64().unwrap() > 0);
        assert!(!ack["member_name"].as_str().unwrap().is_empty());
        assert!(
            ack["app_key_id"].as_i64().unwrap() > 0,
            "the APP key is named"
        );
        let created_ms = ack["created_at"].as_i64().unwrap();
        assert!(
            (created_ms - now_secs() * 1000).abs() < 60_000,
            "created_at is in ms"
        );
        assert_eq!(
            all[0]["result"],
            failed_code.as_str(),
            "a failed write keeps its error"
        );
        let create_body = all[2]["body"].as_str().unwrap();
        assert!(
            create_body.contains("\"webhook_token\":\"***\""),
            "{create_body}"
        );
        assert!(!create_body.contains("hunter2"));
    }
);

on_both_backends!(
    search_filters_pages_and_validates,
    |url: String| async move {
        // spec: RSP-602
        let ts = TestServer::start(&url).await;
        for name in ["a", "b", "c"] {
            let (s, b) = ts
                .api("/team/upsert", json!({"team_name": format!("team-{name}")}))
                .await;
            ok(s, &b);
        }
        let (s, b) = ts.api("/team/list", json!({})).await;
        let team_id = ok(s, &b)["items"][0]["team_id"].as_i64().unwrap();
        let (s, b) = ts.api("/team/delete", json!({"team_id": team_id})).await;
        ok(s, &b);
        let delete_request = b["request_id"].as_str().unwrap().to_string();

        // Operation filter.
        let (s, b) = search(&ts, json!({"operations": ["team:write:upsert"]})).await;
        assert_eq!(ok(s, &b)["total"], 3);
        // Dangerous filter.
        let (s, b) = search(&ts, json!({"is_dangerous": true})).await;
        let d = docs(ok(s, &b));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0]["operation"], "team:write:delete");
        assert_eq!(d[0]["resource_id"], team_id.to_string());
        // Exact event id.
        let (s, b) = search(&ts, json!({"request_id": delete_request})).await;
        assert_eq!(docs(ok(s, &b)).len(), 1);
        // Member filter.
        let me = docs(ok(s, &b))[0]["member_id"].as_i64().unwrap();
        let (s, b) = search(&ts, json!({"person_id": me})).await;
        assert_eq!(ok(s, &b)["total"], 4);
        let (s, b) = search(&ts, json!({"person_id": me + 1000})).await;
        assert_eq!(ok(s, &b)["total"], 0);
        // Paging: two per page, following the cursor, newest first, nothing twice.
        let mut seen = Vec::new();
        let mut ctx = String::new();
        loop {
            let (s, b) = search(&ts, json!({"limit": 2, "search_after_ctx": ctx})).await;
            let data = ok(s, &b).clone();
            assert_eq!(data["total"], 4);
            seen.extend(
                docs(&data)
                    .iter()
                    .map(|d| d["request_id"].as_str().unwrap().to_string()),
            );
            ctx = data["search_after_ctx"].as_str().unwrap().to_string();
            if ctx.is_empty() {
                break;
            }
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0], delete_request);
        // A time window with nothing in it.
        let (s, b) = ts
            .api(
                "/audit/search",
                json!({"start_time": 1_000, "end_time": 2_000}),
            )
            .await;
        assert_eq!(ok(s, &b)["total"], 0);
        // Validation names the field.
        let now = now_secs();
        let (s, b) = ts
            .api(
                "/audit/search",
                json!({"start_time": now - 91 * 86_400, "end_time": now}),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("end_time"),
            "{b}"
        );
        let (s, b) = ts.api("/audit/search", json!({"end_time": now})).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("start_time"),
            "{b}"
        );
        let (s, b) = search(&ts, json!({"limit": 100})).await;
        assert_eq!(s, 400, "{b}");
        let (s, b) = search(&ts, json!({"search_after_ctx": "nope"})).await;
        assert_eq!(s, 400, "{b}");
        // The catalogue lists the recorded operations.
        let (s, b) = ts.api("/audit/operation/list", json!({})).await;
        let items = ok(s, &b)["items"].as_array().unwrap().clone();
        assert!(items.iter().any(|i| i["operation"] == "incident:write:ack"));
        assert!(items.iter().any(|i| i["operation"] == "member:write:login"));
    }
);

on_both_backends!(
    reading_needs_audit_read_and_logins_are_recorded,
    |url: String| async move {
        // spec: RSP-604
        // spec: RSP-600
        let ts = TestServer::start(&url).await;
        let store = store_of(&ts).await;
        let account_id = store
            .app_key(&ts.app_key)
            .await
            .unwrap()
            .unwrap()
            .account_id;
        // A Viewer (role 8) holds every Read point except Audit Read.
        let (s, b) = ts
            .api(
                "/member/invite",
                json!({"members": [{"email": "v@example.com", "role_ids": [8]}]}),
            )
            .await;
        let viewer = ok(s, &b)["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("k{viewer}"));
        store
            .add_app_key(account_id, viewer, "test", &key, now_secs() * 1000)
            .await
            .unwrap()
            .unwrap();
        let now = now_secs();
        let resp = ts
            .http
            .post(format!("{}/audit/search?app_key={key}", ts.base))
            .json(&json!({"start_time": now - 60, "end_time": now}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        let b: Value = resp.json().await.unwrap();
        assert_eq!(b["error"]["code"], "AccessDenied");

        // A wrong password and a sign-in of the owner are recorded as login events.
        let server = ts.server.as_ref().unwrap();
        let email = server.bootstrap().owner_email.clone();
        let password = server.owner_password().unwrap().to_string();
        for (pw, want) in [("wrong-password", 401), (password.as_str(), 200)] {
            let resp = ts
                .http
                .post(format!("{}/auth/login", ts.base))
                .json(&json!({"email": email, "password": pw}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), want);
        }
        let (s, b) = search(&ts, json!({"operations": ["member:write:login"]})).await;
        let d = docs(ok(s, &b));
        let results: Vec<&str> = d.iter().map(|x| x["result"].as_str().unwrap()).collect();
        assert_eq!(results, vec!["ok", "Unauthorized"]);
        assert_eq!(d[0]["ip"], "127.0.0.1");
        assert!(!d[0]["body"].as_str().unwrap().contains(&password));
    }
);
