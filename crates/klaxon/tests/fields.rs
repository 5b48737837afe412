//! Custom fields (response.md 1.11, RSP-014, RSP-084, RSP-085; openapi-compat.md 2.2):
//! definitions over `/field/*`, defaults on new incidents, values through
//! `/incident/field/reset` with their timeline entry. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set. The incident list search by field values, people, labels
//! and teams (RSP-503) is here too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::TestServer;
use serde_json::{Value, json};

fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn err((status, body): (u16, Value), code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "{status} {body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

async fn pushed_incident(ts: &TestServer, key: &str) -> Value {
    let (status, _) = ts
        .push(json!({"event_status": "Warning", "title_rule": "disk", "alert_key": key}))
        .await;
    assert_eq!(status, 200);
    ts.drained().await;
    ts.incidents()
        .await
        .into_iter()
        .find(|i| i["dedup_key"] == key)
        .unwrap()
}

async fn incident(ts: &TestServer, id: &str) -> Value {
    ok(ts.api("/incident/info", json!({"incident_id": id})).await)
}

async fn feed_kinds(ts: &TestServer, id: &str) -> Vec<String> {
    let data = ok(ts
        .api("/incident/feed", json!({"incident_id": id, "asc": true}))
        .await);
    data["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

on_both_backends!(custom_fields_end_to_end, |url: String| async move {
    // spec: RSP-014, RSP-084, RSP-085
    let ts = TestServer::start(&url).await;
    let env = ok(ts
        .api(
            "/field/create",
            json!({"field_name": "env", "display_name": "Environment", "field_type": "single_select",
                   "value_type": "string", "options": ["prod", "staging"], "default_value": "prod"}),
        )
        .await);
    let env_id = env["field_id"].as_str().unwrap().to_string();
    ok(ts
        .api(
            "/field/create",
            json!({"field_name": "ticket", "display_name": "Ticket", "field_type": "text"}),
        )
        .await);
    ok(ts
        .api(
            "/field/create",
            json!({"field_name": "areas", "display_name": "Areas", "field_type": "multi_select",
                   "options": ["db", "net", "app"]}),
        )
        .await);

    // Validation names the bad part and creates nothing.
    err(
        ts.api(
            "/field/create",
            json!({"field_name": "env", "display_name": "Again", "field_type": "text"}),
        )
        .await,
        "InvalidParameter",
    );
    let msg = err(
        ts.api(
            "/field/create",
            json!({"field_name": "9bad", "display_name": "Bad", "field_type": "text"}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("field_name"), "{msg}");
    let msg = err(
        ts.api(
            "/field/create",
            json!({"field_name": "sel", "display_name": "Sel", "field_type": "single_select",
                   "options": ["a"], "default_value": "b"}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("default_value"), "{msg}");
    let list = ok(ts.api("/field/list", json!({"asc": true})).await);
    let mut names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field_name"].as_str().unwrap())
        .collect();
    // Creation order; fields made in the same millisecond may come in either order.
    names.sort_unstable();
    assert_eq!(names, vec!["areas", "env", "ticket"]);
    assert_eq!(list["items"][0]["value_type"], "string");

    // RSP-014: a new incident gets the defaults.
    let inc = pushed_incident(&ts, "fields-1").await;
    let id = inc["incident_id"].as_str().unwrap().to_string();
    assert_eq!(inc["fields"], json!({"env": "prod"}));

    // RSP-084: values are checked, normalised, and written to the timeline once.
    ok(ts
        .api(
            "/incident/field/reset",
            json!({"incident_id": id, "field_name": "areas", "field_value": ["app", "db", "app"]}),
        )
        .await);
    assert_eq!(
        incident(&ts, &id).await["fields"]["areas"],
        json!(["db", "app"])
    );
    let before = feed_kinds(&ts, &id).await.len();
    ok(ts
        .api(
            "/incident/field/reset",
            json!({"incident_id": id, "field_name": "areas", "field_value": ["db", "app"]}),
        )
        .await);
    assert_eq!(
        feed_kinds(&ts, &id).await.len(),
        before,
        "same value: no-op"
    );
    assert_eq!(feed_kinds(&ts, &id).await.last().unwrap(), "i_r_field");
    err(
        ts.api(
            "/incident/field/reset",
            json!({"incident_id": id, "field_name": "env", "field_value": "qa"}),
        )
        .await,
        "InvalidParameter",
    );
    err(
        ts.api(
            "/incident/field/reset",
            json!({"incident_id": id, "field_name": "nope", "field_value": "x"}),
        )
        .await,
        "ResourceNotFound",
    );
    ok(ts
        .api(
            "/incident/field/reset",
            json!({"incident_id": id, "field_name": "areas", "field_value": null}),
        )
        .await);
    assert!(incident(&ts, &id).await["fields"].get("areas").is_none());

    // RSP-085: name and type are fixed; a removed option stays on existing incidents.
    err(
        ts.api(
            "/field/update",
            json!({"field_id": env_id, "field_type": "text"}),
        )
        .await,
        "InvalidParameter",
    );
    err(
        ts.api(
            "/field/update",
            json!({"field_id": env_id, "options": ["staging", "dev"]}),
        )
        .await,
        "InvalidParameter",
    );
    ok(ts
        .api(
            "/field/update",
            json!({"field_id": env_id, "options": ["staging", "dev"], "default_value": "dev",
                   "display_name": "Env"}),
        )
        .await);
    assert_eq!(incident(&ts, &id).await["fields"]["env"], "prod");
    let info = ok(ts.api("/field/info", json!({"field_id": env_id})).await);
    assert_eq!(info["display_name"], "Env");
    assert_eq!(info["field_name"], "env");

    // Manual creation: explicit values win over defaults.
    let created = ok(ts
        .api(
            "/incident/create",
            json!({"title": "manual", "incident_severity": "Info",
                   "fields": {"ticket": "T-1", "env": "staging"}}),
        )
        .await);
    let manual = incident(&ts, created["incident_id"].as_str().unwrap()).await;
    assert_eq!(manual["fields"], json!({"env": "staging", "ticket": "T-1"}));
    err(
        ts.api(
            "/incident/create",
            json!({"title": "manual", "incident_severity": "Info", "fields": {"nope": 1}}),
        )
        .await,
        "ResourceNotFound",
    );

    // Deleting a field removes its values; the name is free again.
    ok(ts.api("/field/delete", json!({"field_id": env_id})).await);
    assert!(incident(&ts, &id).await["fields"].get("env").is_none());
    err(
        ts.api("/field/info", json!({"field_id": env_id})).await,
        "ResourceNotFound",
    );
    ok(ts
        .api(
            "/field/create",
            json!({"field_name": "env", "display_name": "Environment", "field_type": "text"}),
        )
        .await);
    assert!(incident(&ts, &id).await["fields"].get("env").is_none());
});

on_both_backends!(at_most_fifteen_fields, |url: String| async move {
    // spec: RSP-085 (a 16th field fails with limit_exceeded → InvalidParameter)
    let ts = TestServer::start(&url).await;
    for i in 0..15 {
        ok(ts
            .api(
                "/field/create",
                json!({"field_name": format!("f{i}"), "display_name": format!("F{i}"), "field_type": "checkbox"}),
            )
            .await);
    }
    let msg = err(
        ts.api(
            "/field/create",
            json!({"field_name": "f15", "display_name": "F15", "field_type": "checkbox"}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(msg.contains("15"), "{msg}");
    assert_eq!(ok(ts.api("/field/list", json!({})).await)["total"], 15);
});

async fn search(ts: &TestServer, filter: Value) -> (u16, Value) {
    let now = common::now_secs();
    let mut body = json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 100});
    for (k, v) in filter.as_object().unwrap() {
        body[k] = v.clone();
    }
    ts.api("/incident/list", body).await
}

fn keys(data: &Value) -> Vec<String> {
    let mut k: Vec<String> = data["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["dedup_key"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

on_both_backends!(search_by_field_value_and_people, |url: String| async move {
    // spec: RSP-503, RSP-086
    let ts = TestServer::start(&url).await;
    ok(ts
        .api(
            "/field/create",
            json!({"field_name": "env", "display_name": "Env", "field_type": "single_select",
                   "options": ["prod", "staging"]}),
        )
        .await);
    ok(ts
        .api(
            "/field/create",
            json!({"field_name": "areas", "display_name": "Areas", "field_type": "multi_select",
                   "options": ["db", "net", "100%_done"]}),
        )
        .await);
    ok(ts
        .api(
            "/field/create",
            json!({"field_name": "note", "display_name": "Note", "field_type": "text"}),
        )
        .await);
    let a = pushed_incident(&ts, "s-a").await["incident_id"].clone();
    let b = pushed_incident(&ts, "s-b").await["incident_id"].clone();
    pushed_incident(&ts, "s-c").await;
    for (id, field, value) in [
        (&a, "env", json!("prod")),
        (&b, "env", json!("staging")),
        (&a, "areas", json!(["db", "100%_done"])),
        (&b, "areas", json!(["net"])),
    ] {
        ok(ts
            .api(
                "/incident/field/reset",
                json!({"incident_id": id, "field_name": field, "field_value": value}),
            )
            .await);
    }
    let data = ok(search(&ts, json!({"fields": {"env": "prod"}})).await);
    assert_eq!(keys(&data), vec!["s-a"]);
    let data = ok(search(&ts, json!({"fields": {"env": ["prod", "staging"]}})).await);
    assert_eq!(keys(&data), vec!["s-a", "s-b"]);
    let data = ok(search(&ts, json!({"fields": {"env": "staging", "areas": "net"}})).await);
    assert_eq!(keys(&data), vec!["s-b"]);
    // LIKE wildcards in a value are taken literally.
    let data = ok(search(&ts, json!({"fields": {"areas": "100%_done"}})).await);
    assert_eq!(keys(&data), vec!["s-a"]);
    let data = ok(search(&ts, json!({"fields": {"areas": "100%"}})).await);
    assert!(keys(&data).is_empty());
    err(
        search(&ts, json!({"fields": {"note": "x"}})).await,
        "InvalidParameter",
    );

    // Responders and ackers.
    let me = ok(ts.api("/member/info", json!({})).await)["member_id"].clone();
    ok(ts.api("/incident/ack", json!({"incident_ids": [a]})).await);
    let data = ok(search(&ts, json!({"acker_ids": [me]})).await);
    assert_eq!(keys(&data), vec!["s-a"]);
    let data = ok(search(&ts, json!({"responder_ids": [me]})).await);
    assert_eq!(keys(&data), vec!["s-a"], "the acker became a responder");
    let data = ok(search(&ts, json!({"responder_ids": [999_999]})).await);
    assert!(keys(&data).is_empty());
});

async fn pushed_with_labels(ts: &TestServer, key: &str, labels: Value) {
    let (status, body) = ts
        .push(
            json!({"event_status": "Warning", "title_rule": key, "alert_key": key,
                     "labels": labels}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

on_both_backends!(search_by_label_pattern_and_team, |url: String| async move {
    // spec: RSP-503 (labels: exact, wildcard or regex; teams), ingest.md §4.2 (cidr:/num: are
    // text in a label search), §4.4 (a missing label matches nothing)
    let ts = TestServer::start(&url).await;
    pushed_with_labels(&ts, "l-db7", json!({"host": "db-7", "env": "prod"})).await;
    pushed_with_labels(&ts, "l-web3", json!({"host": "web-3", "env": "prod"})).await;
    pushed_with_labels(&ts, "l-db8", json!({"host": "db-8"})).await;
    ts.drained().await;
    let found = |labels: Value| {
        let ts = &ts;
        async move { keys(&ok(search(ts, json!({"labels": labels})).await)) }
    };
    assert_eq!(found(json!({"host": "db-*"})).await, vec!["l-db7", "l-db8"]);
    assert_eq!(found(json!({"host": "db-7"})).await, vec!["l-db7"]);
    assert_eq!(
        found(json!({"host": "/^web-[0-9]+$/"})).await,
        vec!["l-web3"]
    );
    assert_eq!(
        found(json!({"host": ["db-7", "web-3"]})).await,
        vec!["l-db7", "l-web3"]
    );
    assert_eq!(
        found(json!({"host": "db-*", "env": "prod"})).await,
        vec!["l-db7"]
    );
    assert_eq!(found(json!({"env": "*"})).await, vec!["l-db7", "l-web3"]);
    assert!(found(json!({"host": "cidr:10.0.0.0/8"})).await.is_empty());
    assert!(
        found(json!({"host": "DB-7"})).await.is_empty(),
        "case-sensitive"
    );
    // Filters combine with the others; the empty object filters nothing.
    assert_eq!(found(json!({})).await.len(), 3);

    // Paging counts the matches only: offset pages, then the cursor.
    let page = ok(search(&ts, json!({"labels": {"host": "db-*"}, "limit": 1})).await);
    assert_eq!(page["total"], 2);
    assert_eq!(page["has_next_page"], true);
    let first = page["items"][0]["dedup_key"].clone();
    let p2 = ok(search(&ts, json!({"labels": {"host": "db-*"}, "limit": 1, "p": 2})).await);
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_ne!(p2["items"][0]["dedup_key"], first);
    assert_eq!(p2["has_next_page"], false);
    let cursor = page["search_after_ctx"].as_str().unwrap().to_string();
    let next = ok(search(
        &ts,
        json!({"labels": {"host": "db-*"}, "limit": 1, "search_after_ctx": cursor}),
    )
    .await);
    assert_eq!(next["items"][0]["dedup_key"], p2["items"][0]["dedup_key"]);

    // Refusals name the label and change nothing.
    let m = err(
        search(&ts, json!({"labels": {"host": "/(db/"}})).await,
        "InvalidParameter",
    );
    assert!(
        m.starts_with("labels.host: invalid regular expression"),
        "{m}"
    );
    let m = err(
        search(&ts, json!({"labels": {"": "x"}})).await,
        "InvalidParameter",
    );
    assert!(m.starts_with("labels:"), "{m}");
    let m = err(
        search(&ts, json!({"labels": {"host": 7}})).await,
        "InvalidParameter",
    );
    assert!(m.starts_with("labels.host:"), "{m}");
    err(
        search(&ts, json!({"labels": "host=db-7"})).await,
        "InvalidParameter",
    );

    // Teams: the incidents of the channels a team owns or manages.
    ok(ts.api("/team/upsert", json!({"team_name": "dba"})).await);
    ok(ts.api("/team/upsert", json!({"team_name": "web"})).await);
    let teams = ok(ts.api("/team/list", json!({})).await);
    let team = |name: &str| {
        teams["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["team_name"] == name)
            .unwrap()["team_id"]
            .as_i64()
            .unwrap()
    };
    let (dba, web) = (team("dba"), team("web"));
    let owned = ok(ts
        .api(
            "/channel/create",
            json!({"channel_name": "DB", "team_id": dba}),
        )
        .await)["channel_id"]
        .clone();
    let managed = ok(ts
        .api(
            "/channel/create",
            json!({"channel_name": "Shared", "managing_team_ids": [dba]}),
        )
        .await)["channel_id"]
        .clone();
    for (title, channel) in [("in DB", &owned), ("in Shared", &managed)] {
        ok(ts
            .api(
                "/incident/create",
                json!({"title": title, "incident_severity": "Info", "channel_id": channel}),
            )
            .await);
    }
    let titles = |data: &Value| {
        let mut t: Vec<String> = data["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_string())
            .collect();
        t.sort();
        t
    };
    let data = ok(search(&ts, json!({"team_ids": [dba]})).await);
    assert_eq!(titles(&data), vec!["in DB", "in Shared"]);
    let data = ok(search(&ts, json!({"team_ids": [dba], "channel_ids": [owned]})).await);
    assert_eq!(titles(&data), vec!["in DB"]);
    let data = ok(search(&ts, json!({"team_ids": [web]})).await);
    assert_eq!(data["total"], 0);
    assert!(titles(&data).is_empty());
});
