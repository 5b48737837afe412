//! Channel management and alert grouping end to end (openapi-compat.md 2.5; ingest.md
//! §1.5.1–§1.5.2, §2.9 ING-100, §2.13, §2.16 ING-192): the channel endpoints, their
//! validation, and what a channel's grouping policy and storm thresholds do to pushed events.
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::TestServer;
use serde_json::{Value, json};

fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn invalid((status, body): (u16, Value)) -> String {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "InvalidParameter", "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

/// A channel with a dedicated standard integration; returns (channel_id, integration_key).
async fn channel_with_key(t: &TestServer, body: Value) -> (i64, String) {
    let data = ok(t.api("/channel/create", body).await);
    let channel_id = data["channel_id"].as_i64().unwrap();
    let integration = ok(t
        .api(
            "/integration/create",
            json!({"integration_name": "std", "type": "standard", "kind": "dedicated",
                   "channel_id": channel_id}),
        )
        .await);
    (
        channel_id,
        integration["integration_key"].as_str().unwrap().to_string(),
    )
}

async fn push_to(t: &TestServer, key: &str, body: Value) {
    let resp = t
        .http
        .post(format!(
            "{}/event/push/alert/standard?integration_key={key}",
            t.base
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

fn alert(key: &str, check: &str, host: &str) -> Value {
    json!({"event_status": "Critical", "alert_key": key, "title_rule": format!("{check} on {host}"),
           "labels": {"check": check, "host": host}})
}

async fn incidents_of(t: &TestServer, channel_id: i64) -> Vec<Value> {
    t.incidents()
        .await
        .into_iter()
        .filter(|i| i["channel_id"] == channel_id)
        .collect()
}

// spec: openapi-compat.md 2.5
// spec: ING-150
on_both_backends!(channel_crud_and_wire_mapping, |url: String| async move {
    let t = TestServer::start(&url).await;
    let created = ok(t
        .api(
            "/channel/create",
            json!({"channel_name": "  payments  ", "description": "pay",
                   "auto_resolve_timeout": 3600, "auto_resolve_mode": "update"}),
        )
        .await);
    assert_eq!(created["channel_name"], "payments");
    let id = created["channel_id"].as_i64().unwrap();
    let info = ok(t.api("/channel/info", json!({"channel_id": id})).await);
    assert_eq!(info["channel_name"], "payments");
    assert_eq!(info["description"], "pay");
    assert_eq!(info["status"], "enabled");
    assert_eq!(info["auto_resolve_timeout"], 3600);
    assert_eq!(info["auto_resolve_mode"], "update");
    assert_eq!(info["disable_auto_close"], false);
    // ING-150: grouping is off for a new channel.
    assert_eq!(info["group"]["method"], "n");
    assert_eq!(info["group"]["storm_thresholds"], json!([]));

    // §1.5.1: group{} maps onto the grouping policy and storm thresholds.
    ok(t.api(
        "/channel/update",
        json!({"channel_id": id, "group": {"method": "p", "equals": [["labels.check"]],
               "time_window": 30, "window_type": "tumbling", "all_equals_required": true,
               "storm_thresholds": [5, 20]}}),
    )
    .await);
    let info = ok(t.api("/channel/info", json!({"channel_id": id})).await);
    assert_eq!(info["channel_name"], "payments", "absent fields unchanged");
    assert_eq!(info["auto_resolve_timeout"], 3600);
    let g = &info["group"];
    assert_eq!(g["method"], "p");
    assert_eq!(g["equals"], json!([["labels.check"]]));
    assert_eq!(g["time_window"], 30);
    assert_eq!(g["window_type"], "tumbling");
    assert_eq!(g["all_equals_required"], true);
    assert_eq!(g["storm_thresholds"], json!([5, 20]));
    let listed = ok(t.api("/channel/list", json!({"channel_ids": [id]})).await);
    assert_eq!(
        listed["items"][0]["group"], *g,
        "list renders the same group"
    );

    // Fine-grained: cases become rules, equals the default dims.
    ok(t.api(
        "/channel/update",
        json!({"channel_id": id, "disable_auto_close": true,
               "group": {"method": "p", "cases": [{"if": [{"key": "labels.check", "oper": "IN",
               "vals": ["cpu"]}], "equals": [["labels.cluster"]]}], "storm_threshold": 3}}),
    )
    .await);
    let info = ok(t.api("/channel/info", json!({"channel_id": id})).await);
    assert_eq!(info["auto_resolve_timeout"], 0);
    assert_eq!(info["disable_auto_close"], true);
    assert_eq!(info["group"]["equals"], json!([]));
    assert_eq!(
        info["group"]["cases"][0]["equals"],
        json!([["labels.cluster"]])
    );
    assert_eq!(info["group"]["cases"][0]["if"][0]["key"], "labels.check");
    assert_eq!(
        info["group"]["storm_thresholds"],
        json!([3]),
        "legacy storm_threshold"
    );

    // disable / enable / delete.
    ok(t.api("/channel/disable", json!({"channel_id": id})).await);
    let info = ok(t.api("/channel/info", json!({"channel_id": id})).await);
    assert_eq!(info["status"], "disabled");
    ok(t.api("/channel/enable", json!({"channel_id": id})).await);
    let info = ok(t.api("/channel/info", json!({"channel_id": id})).await);
    assert_eq!(info["status"], "enabled");
    ok(t.api("/channel/delete", json!({"channel_id": id})).await);
    let (status, body) = t.api("/channel/info", json!({"channel_id": id})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "ResourceNotFound");
    let (_, body) = t.api("/channel/enable", json!({"channel_id": id})).await;
    assert_eq!(body["error"]["code"], "ResourceNotFound");
    let listed = ok(t.api("/channel/list", json!({"channel_ids": [id]})).await);
    assert_eq!(listed["total"], 0);
});

// spec: openapi-compat.md 2.5
// spec: ING-155
// spec: ING-192
on_both_backends!(
    bad_channel_settings_name_the_field,
    |url: String| async move {
        let t = TestServer::start(&url).await;
        let id = ok(t.api("/channel/create", json!({"channel_name": "c"})).await)["channel_id"]
            .as_i64()
            .unwrap();
        let before = ok(t.api("/channel/info", json!({"channel_id": id})).await);
        let cases: Vec<(Value, &str)> = vec![
            (json!({"channel_name": "x".repeat(60)}), "channel_name"),
            (json!({"auto_resolve_timeout": 59}), "auto_resolve_timeout"),
            (json!({"auto_resolve_mode": "later"}), "auto_resolve_mode"),
            (json!({"team_id": 987_654}), "team_id"),
            (json!({"group": {"method": "x"}}), "group.method"),
            (
                json!({"group": {"method": "i", "i_score_threshold": 0.3}}),
                "group.i_score_threshold",
            ),
            (json!({"group": {"method": "p"}}), "group.equals[0]"),
            (
                json!({"group": {"method": "p", "equals": [["host"]]}}),
                "group.equals[0][0]",
            ),
            (
                json!({"group": {"method": "p", "equals": [["title"], ["severity"]]}}),
                "group.equals",
            ),
            (
                json!({"group": {"method": "p", "equals": [["title"]], "time_window": 1441}}),
                "group.time_window",
            ),
            (
                json!({"group": {"method": "p", "equals": [["title"]], "window_type": "hopping"}}),
                "group.window_type",
            ),
            (
                json!({"group": {"method": "p", "equals": [["title"]], "storm_thresholds": [20, 5]}}),
                "group.storm_thresholds[1]",
            ),
            (
                json!({"group": {"method": "p", "cases": [{"if": [], "equals": [["title"]]}]}}),
                "group.cases[0].if",
            ),
            (json!({"flapping": {"mode": "sometimes"}}), "flapping.mode"),
            (
                json!({"flapping": {"max_changes": 1}}),
                "flapping.max_changes",
            ),
        ];
        for (patch, field) in cases {
            let mut body = patch.clone();
            body["channel_id"] = json!(id);
            let message = invalid(t.api("/channel/update", body).await);
            assert!(message.starts_with(field), "{patch}: {message}");
        }
        let after = ok(t.api("/channel/info", json!({"channel_id": id})).await);
        assert_eq!(before, after, "a refused update changes nothing");
        let message = invalid(t.api("/channel/create", json!({})).await);
        assert!(message.starts_with("channel_name"), "{message}");
        let message = invalid(t.api("/channel/update", json!({})).await);
        assert!(message.starts_with("channel_id"), "{message}");
        // flapping that maps to off is accepted.
        ok(t.api(
            "/channel/update",
            json!({"channel_id": id, "flapping": {"is_disabled": true}}),
        )
        .await);
    }
);

// spec: ING-153
// spec: ING-159
// spec: ING-192
// spec: RSP-200
on_both_backends!(
    storm_across_hosts_becomes_one_incident,
    |url: String| async move {
        let t = TestServer::start(&url).await;
        let (ch, key) = channel_with_key(&t, json!({"channel_name": "storm"})).await;
        // Grouping by check, thresholds [5, 20], set through /channel/update.
        ok(t.api(
            "/channel/update",
            json!({"channel_id": ch, "group": {"method": "p", "equals": [["labels.check"]],
               "time_window": 60, "storm_thresholds": [5, 20]}}),
        )
        .await);
        const N: usize = 25;
        for n in 0..N {
            let host = format!("host-{n:02}");
            push_to(&t, &key, alert(&format!("disk-{host}"), "disk", &host)).await;
            if n == 2 {
                // Part of the storm in a later batch than the first alerts.
                t.drained().await;
            }
        }
        push_to(&t, &key, alert("cpu-host-00", "cpu", "host-00")).await;
        t.drained().await;
        let incidents = incidents_of(&t, ch).await;
        assert_eq!(incidents.len(), 2, "{incidents:?}");
        let storm = incidents
            .iter()
            .find(|i| i["labels"]["check"] == "disk")
            .unwrap();
        assert_eq!(storm["alert_cnt"], N);
        assert_eq!(storm["active_alert_cnt"], N);
        assert_eq!(storm["group_method"], "p");
        assert_eq!(storm["title"], "disk on host-00", "the first alert's title");
        assert_eq!(storm["storm_level"], 20);
        let id = storm["incident_id"].as_str().unwrap();
        let feed = ok(t
            .api(
                "/incident/feed",
                json!({"incident_id": id, "types": ["i_storm"], "asc": true}),
            )
            .await);
        let thresholds: Vec<Value> = feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["detail"]["threshold"].clone())
            .collect();
        assert_eq!(thresholds, vec![json!(5), json!(20)]);
        let alerts = ok(t
            .api(
                "/incident/alert/list",
                json!({"incident_id": id, "limit": 100}),
            )
            .await);
        assert_eq!(alerts["total"], N);
        let other = incidents
            .iter()
            .find(|i| i["labels"]["check"] == "cpu")
            .unwrap();
        assert_eq!(other["alert_cnt"], 1);
    }
);

// spec: ING-150
on_both_backends!(
    without_grouping_each_alert_opens_an_incident,
    |url: String| async move {
        let t = TestServer::start(&url).await;
        let (ch, key) = channel_with_key(&t, json!({"channel_name": "plain"})).await;
        for n in 0..3 {
            push_to(&t, &key, alert(&format!("k{n}"), "disk", &format!("h{n}"))).await;
        }
        t.drained().await;
        let incidents = incidents_of(&t, ch).await;
        assert_eq!(incidents.len(), 3);
        assert!(incidents.iter().all(|i| i["group_method"] == "n"));
    }
);

// spec: ING-100
on_both_backends!(disabled_channel_discards_events, |url: String| async move {
    let t = TestServer::start(&url).await;
    let (ch, key) = channel_with_key(&t, json!({"channel_name": "off"})).await;
    ok(t.api("/channel/disable", json!({"channel_id": ch})).await);
    push_to(&t, &key, alert("k1", "disk", "h1")).await;
    t.drained().await;
    assert!(incidents_of(&t, ch).await.is_empty());
    let outcomes = ok(t
        .api("/alert-event/outcome/list", json!({"channel_ids": [ch]}))
        .await);
    assert_eq!(outcomes["items"][0]["outcome"], "channel_disabled");
    ok(t.api("/channel/enable", json!({"channel_id": ch})).await);
    push_to(&t, &key, alert("k1", "disk", "h1")).await;
    t.drained().await;
    assert_eq!(incidents_of(&t, ch).await.len(), 1);
    // Deleting the channel deletes its dedicated integration: the key stops working.
    ok(t.api("/channel/delete", json!({"channel_id": ch})).await);
    let resp = t
        .http
        .post(format!(
            "{}/event/push/alert/standard?integration_key={key}",
            t.base
        ))
        .json(&alert("k2", "disk", "h2"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
});
