//! Batch look-ups by id over HTTP, on both backends (openapi-compat.md §4's minimal subset:
//! `/incident/list-by-ids` and `/alert/event/list`; with them `/alert/list-by-ids` and
//! `/channel/infos`). Another account's ids are covered by tests/isolation.rs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::TestServer;
use serde_json::{Value, json};

fn ids_of(body: &Value, field: &str) -> Vec<String> {
    body["data"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {body}"))
        .iter()
        .map(|i| i[field].as_str().unwrap().to_string())
        .collect()
}

/// Two incidents (one alert each; the first alert has two events).
async fn two_incidents(t: &TestServer) -> (Vec<String>, Vec<String>) {
    for (key, status) in [
        ("disk", "Warning"),
        ("disk", "Critical"),
        ("cpu", "Critical"),
    ] {
        let (s, b) = t
            .push(json!({"event_status": status, "alert_key": key, "title_rule": format!("{key} high")}))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    t.drained().await;
    let alerts = t.alerts().await;
    assert_eq!(alerts.len(), 2);
    let mut alert_ids = Vec::new();
    let mut incident_ids = Vec::new();
    for key in ["disk", "cpu"] {
        let a = alerts
            .iter()
            .find(|a| a["alert_key"] == key)
            .unwrap_or_else(|| panic!("no alert {key}"));
        alert_ids.push(a["alert_id"].as_str().unwrap().to_string());
        incident_ids.push(a["incident"]["incident_id"].as_str().unwrap().to_string());
    }
    assert_ne!(incident_ids[0], incident_ids[1]);
    (alert_ids, incident_ids)
}

on_both_backends!(
    incidents_and_alerts_by_id_come_back_in_the_order_asked,
    |url: String| async move {
        // openapi-compat.md 2.1 `/incident/list-by-ids`, 2.3 `/alert/list-by-ids`
        let mut t = TestServer::start(&url).await;
        let (alerts, incidents) = two_incidents(&t).await;
        let unknown = "0123456789abcdef01234567".to_string();

        let (s, b) = t
            .api(
                "/incident/list-by-ids",
                json!({"incident_ids": [incidents[1], unknown, incidents[0], incidents[1]]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            ids_of(&b, "incident_id"),
            vec![incidents[1].clone(), incidents[0].clone()],
            "found ones only, duplicates once, in the order asked"
        );
        assert_eq!(b["data"]["total"], 2);
        assert_eq!(b["data"]["has_next_page"], false);
        // The same object as `/incident/info` shows.
        let (_, info) = t
            .api("/incident/info", json!({"incident_id": incidents[0]}))
            .await;
        let listed = &b["data"]["items"][1];
        for field in [
            "title",
            "progress",
            "alert_cnt",
            "channel_name",
            "detail_url",
        ] {
            assert_eq!(listed[field], info["data"][field], "{field}");
        }

        let (s, b) = t
            .api(
                "/alert/list-by-ids",
                json!({"alert_ids": [alerts[1], alerts[0], unknown]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            ids_of(&b, "alert_id"),
            vec![alerts[1].clone(), alerts[0].clone()]
        );
        assert_eq!(
            b["data"]["items"][1]["incident"]["incident_id"],
            incidents[0].as_str()
        );
        assert_eq!(b["data"]["items"][1]["alert_key"], "disk");
        t.stop().await;
    }
);

on_both_backends!(
    an_alerts_events_are_listed_and_an_unknown_alert_is_not_found,
    |url: String| async move {
        // openapi-compat.md 2.3 `/alert/event/list`; spec: ING-054 (the events kept per alert)
        let mut t = TestServer::start(&url).await;
        let (alerts, _) = two_incidents(&t).await;
        let (s, b) = t
            .api("/alert/event/list", json!({"alert_id": alerts[0]}))
            .await;
        assert_eq!(s, 200, "{b}");
        let items = b["data"]["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "both events of the disk alert: {b}");
        assert!(items.iter().all(|e| e["alert_id"] == alerts[0].as_str()));
        let statuses: Vec<&str> = items
            .iter()
            .map(|e| e["event_status"].as_str().unwrap())
            .collect();
        assert!(statuses.contains(&"Warning") && statuses.contains(&"Critical"));
        // Paging applies.
        let (_, page) = t
            .api(
                "/alert/event/list",
                json!({"alert_id": alerts[0], "limit": 1}),
            )
            .await;
        assert_eq!(page["data"]["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["data"]["has_next_page"], true);

        let (s, b) = t
            .api(
                "/alert/event/list",
                json!({"alert_id": "0123456789abcdef01234567"}),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["error"]["code"], "ResourceNotFound", "{b}");
        t.stop().await;
    }
);

on_both_backends!(channels_by_id_and_bad_requests, |url: String| async move {
    // openapi-compat.md 2.5 `/channel/infos`, 1.5 (InvalidParameter changes nothing)
    let mut t = TestServer::start(&url).await;
    let (s, created) = t
        .api("/channel/create", json!({"channel_name": "Payments"}))
        .await;
    assert_eq!(s, 200, "{created}");
    let payments = created["data"]["channel_id"].as_i64().unwrap();
    let (_, list) = t.api("/channel/list", json!({})).await;
    let default = list["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel_id"].as_i64().unwrap())
        .find(|id| *id != payments)
        .unwrap();
    let (s, b) = t
        .api(
            "/channel/infos",
            json!({"channel_ids": [payments, 987_654_321, default]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let items = b["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["channel_id"], payments);
    assert_eq!(items[0]["channel_name"], "Payments");
    assert_eq!(items[1]["channel_id"], default);
    let (_, info) = t
        .api("/channel/info", json!({"channel_id": payments}))
        .await;
    assert_eq!(items[0], info["data"], "the same object as /channel/info");

    // No ids, or more than 100: refused, naming the field.
    for (path, field) in [
        ("/incident/list-by-ids", "incident_ids"),
        ("/alert/list-by-ids", "alert_ids"),
        ("/channel/infos", "channel_ids"),
    ] {
        let (s, b) = t.api(path, json!({})).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["error"]["code"], "InvalidParameter", "{path}: {b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains(field),
            "{path}: {b}"
        );
        let many: Vec<Value> = if field == "channel_ids" {
            (1..=101).map(|i| json!(i)).collect()
        } else {
            (0..101).map(|i| json!(format!("{i:024x}"))).collect()
        };
        let (_, b) = t.api(path, json!({ field: many })).await;
        assert_eq!(b["error"]["code"], "InvalidParameter", "{path}: {b}");
    }
    let (_, b) = t.api("/alert/event/list", json!({})).await;
    assert_eq!(b["error"]["code"], "InvalidParameter", "{b}");
    t.stop().await;
});

/// The `type`s of an alert feed page, in its order.
fn feed_types(data: &Value) -> Vec<String> {
    data["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {data}"))
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

on_both_backends!(
    an_alert_feed_lists_its_events_moves_and_close,
    |url: String| async move {
        // openapi-compat.md 2.3 `/alert/feed` (ING-250 types, ING-262 outcomes, RSP-101 moves)
        let mut t = TestServer::start(&url).await;
        let (alerts, incidents) = two_incidents(&t).await;
        let (disk, cpu) = (&alerts[0], &alerts[1]);
        // The cpu alert is moved by hand into the disk incident, then disk recovers and the
        // incident is closed with cpu still firing.
        common::ok(
            t.api(
                "/alert/merge",
                json!({"incident_id": incidents[0], "alert_ids": [cpu]}),
            )
            .await,
        );
        let (s, b) = t
            .push(json!({"event_status": "Ok", "alert_key": "disk", "title_rule": "disk high"}))
            .await;
        assert_eq!(s, 200, "{b}");
        t.drained().await;
        common::ok(
            t.api("/incident/resolve", json!({"incident_ids": [incidents[0]]}))
                .await,
        );

        // The disk alert: opened, changed by its Critical event, closed by its recovery.
        let feed = common::ok(
            t.api("/alert/feed", json!({"alert_id": disk, "asc": true}))
                .await,
        );
        assert_eq!(
            feed_types(&feed),
            ["a_new", "a_update", "a_close"],
            "{feed}"
        );
        let items = feed["items"].as_array().unwrap();
        assert_eq!(items[0]["detail"]["incident_id"], incidents[0].as_str());
        assert_eq!(items[1]["detail"]["event_status"], "Critical");
        assert_eq!(items[1]["detail"]["significant"], true);
        assert_eq!(items[2]["detail"]["from"], "event");
        assert!(items.iter().all(|e| e["alert_id"] == disk.as_str()));
        let times: Vec<i64> = items
            .iter()
            .map(|e| e["created_at"].as_i64().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        // Newest first by default.
        let desc = common::ok(t.api("/alert/feed", json!({"alert_id": disk})).await);
        assert_eq!(feed_types(&desc), ["a_close", "a_update", "a_new"]);

        // The cpu alert: opened its own incident, moved by a person, closed with the incident.
        let feed = common::ok(
            t.api("/alert/feed", json!({"alert_id": cpu, "asc": true}))
                .await,
        );
        assert_eq!(feed_types(&feed), ["a_new", "a_merge", "a_close"], "{feed}");
        let items = feed["items"].as_array().unwrap();
        assert_eq!(items[0]["detail"]["incident_id"], incidents[1].as_str());
        assert_eq!(items[1]["detail"]["incident_id"], incidents[0].as_str());
        assert_eq!(
            items[1]["detail"]["from_incident_id"],
            incidents[1].as_str()
        );
        assert_ne!(items[1]["creator_id"], 0, "a move names who made it");
        assert_eq!(items[2]["detail"]["from"], "incident");

        // A type filter and paging.
        let only = common::ok(
            t.api(
                "/alert/feed",
                json!({"alert_id": cpu, "types": ["a_merge", "a_close"], "asc": true}),
            )
            .await,
        );
        assert_eq!(feed_types(&only), ["a_merge", "a_close"]);
        let first = common::ok(
            t.api(
                "/alert/feed",
                json!({"alert_id": disk, "asc": true, "limit": 2}),
            )
            .await,
        );
        assert_eq!(feed_types(&first), ["a_new", "a_update"]);
        assert_eq!(first["has_next_page"], true);
        let second = common::ok(
            t.api(
                "/alert/feed",
                json!({"alert_id": disk, "asc": true, "limit": 2, "p": 2}),
            )
            .await,
        );
        assert_eq!(feed_types(&second), ["a_close"]);
        assert_eq!(second["has_next_page"], false);

        // Bad requests: named errors.
        for (body, code, needle) in [
            (json!({}), "InvalidParameter", "alert_id"),
            (
                json!({"alert_id": disk, "types": ["i_ack"]}),
                "InvalidParameter",
                "types",
            ),
            (
                json!({"alert_id": "0123456789abcdef01234567"}),
                "ResourceNotFound",
                "alert",
            ),
        ] {
            let (s, b) = t.api("/alert/feed", body).await;
            assert_eq!(s, 400, "{b}");
            assert_eq!(b["error"]["code"], code, "{b}");
            assert!(
                b["error"]["message"].as_str().unwrap().contains(needle),
                "{b}"
            );
        }
        t.stop().await;
    }
);
