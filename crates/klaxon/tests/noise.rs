//! Drop, silence and inhibit rules end to end (ingest.md §2.9, §2.11, §2.12, §2.22;
//! openapi-compat.md 2.5): the rule endpoints, their validation, their effect on pushed events,
//! and the outcome record that explains each event. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs};
use serde_json::{Value, json};

fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn err((status, body): (u16, Value), code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "{status} {body}");
    assert_eq!(status, 400, "{body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

async fn channel(t: &TestServer) -> i64 {
    ok(t.api("/channel/list", json!({})).await)["items"][0]["channel_id"]
        .as_i64()
        .unwrap()
}

async fn account(t: &TestServer) -> i64 {
    ok(t.api("/account/info", json!({})).await)["account_id"]
        .as_i64()
        .unwrap()
}

async fn owner(t: &TestServer) -> i64 {
    ok(t.api("/member/info", json!({})).await)["member_id"]
        .as_i64()
        .unwrap()
}

/// Pushes one event and waits until it is processed; returns the request id.
async fn push(t: &TestServer, body: Value) -> String {
    let (status, resp) = t.push(body).await;
    assert_eq!(status, 200, "{resp}");
    t.drained().await;
    resp["request_id"].as_str().unwrap().to_string()
}

/// The outcome recorded for the events of one push request.
async fn outcomes_of(t: &TestServer, request_id: &str) -> Vec<Value> {
    ok(t.api(
        "/alert-event/outcome/list",
        json!({"request_id": request_id}),
    )
    .await)["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn one_off(from: i64, to: i64) -> Value {
    json!({"start_time": from, "end_time": to})
}

async fn rule_count(t: &TestServer, set: &str, ch: i64) -> usize {
    ok(t.api(
        &format!("/channel/{set}/rule/list"),
        json!({"channel_id": ch}),
    )
    .await)["items"]
        .as_array()
        .unwrap()
        .len()
}

// spec: ING-130, ING-131, ING-133, openapi-compat.md 2.5
on_both_backends!(silence_rules_over_the_api, |url: String| async move {
    let t = TestServer::start(&url).await;
    let ch = channel(&t).await;
    let now = now_secs();
    let created = ok(t
        .api(
            "/channel/silence/rule/create",
            json!({
                "channel_id": ch,
                "rule_name": "Maintenance",
                "description": "db upgrade",
                "time_filter": one_off(now - 60, now + 3600),
                "filters": [[{"key": "labels.env", "oper": "IN", "vals": ["test"]}]],
            }),
        )
        .await);
    let id = created["rule_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 24);
    assert_eq!(created["rule_name"], "Maintenance");
    let info = ok(t
        .api(
            "/channel/silence/rule/info",
            json!({"channel_id": ch, "rule_id": id}),
        )
        .await);
    assert_eq!(info["status"], "enabled");
    assert_eq!(
        info["is_directly_discard"], false,
        "default behaviour: mark (Q-13)"
    );
    assert_eq!(info["time_filter"]["end_time"], now + 3600);
    assert_eq!(info["filters"][0][0]["key"], "labels.env");
    assert!(
        info.get("equals").is_none(),
        "inhibit fields are not on a silence rule"
    );

    // Update to a recurring window: the one-off window goes.
    ok(t.api(
        "/channel/silence/rule/update",
        json!({
            "channel_id": ch,
            "rule_id": id,
            "time_filters": [{"start": "22:00", "end": "06:00", "repeat": [1, 2, 3, 4, 5]}],
        }),
    )
    .await);
    let info = ok(t
        .api("/channel/silence/rule/info", json!({"rule_id": id}))
        .await);
    assert!(info.get("time_filter").is_none(), "{info}");
    assert_eq!(info["time_filters"][0]["start"], "22:00");
    assert_eq!(
        info["rule_name"], "Maintenance",
        "fields left out keep their value"
    );

    ok(
        t.api("/channel/silence/rule/disable", json!({"rule_id": id}))
            .await,
    );
    let list = ok(t
        .api("/channel/silence/rule/list", json!({"channel_id": ch}))
        .await);
    assert_eq!(list["items"][0]["status"], "disabled");
    ok(
        t.api("/channel/silence/rule/enable", json!({"rule_id": id}))
            .await,
    );

    // Refusals name the bad part and change nothing.
    let bad_regex = err(
        t.api(
            "/channel/silence/rule/create",
            json!({
                "channel_id": ch,
                "rule_name": "Bad",
                "time_filter": one_off(now, now + 60),
                "filters": [[{"key": "title", "oper": "IN", "vals": ["/(unclosed/"]}]],
            }),
        )
        .await,
        "InvalidParameter",
    );
    assert!(
        bad_regex.starts_with("filters[0][0].vals[0]: invalid regular expression"),
        "{bad_regex}"
    );
    let backwards = err(
        t.api(
            "/channel/silence/rule/create",
            json!({"channel_id": ch, "rule_name": "Bad", "time_filter": one_off(now, now - 60)}),
        )
        .await,
        "InvalidParameter",
    );
    assert_eq!(backwards, "time_filter.end_time: must be after start_time");
    let no_cal = err(
        t.api(
            "/channel/silence/rule/create",
            json!({"channel_id": ch, "rule_name": "Bad",
                   "time_filters": [{"start": "09:00", "end": "18:00", "cal_id": "0123456789abcdef01234567"}]}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(
        no_cal.starts_with("time_filters[0].cal_id: service calendar"),
        "{no_cal}"
    );
    let no_name = err(
        t.api(
            "/channel/silence/rule/create",
            json!({"channel_id": ch, "time_filter": one_off(now, now + 60)}),
        )
        .await,
        "InvalidParameter",
    );
    assert_eq!(no_name, "rule_name is required");
    let bad_update = err(
        t.api(
            "/channel/silence/rule/update",
            json!({"rule_id": id, "filters": [[{"key": "from", "oper": "IN", "vals": ["x"]}]]}),
        )
        .await,
        "InvalidParameter",
    );
    assert!(
        bad_update.starts_with("filters[0][0].key: unknown key"),
        "{bad_update}"
    );
    let info_after = ok(t
        .api("/channel/silence/rule/info", json!({"rule_id": id}))
        .await);
    assert!(
        info_after["filters"][0][0]["key"] == "labels.env",
        "the refused update changed nothing"
    );
    let missing = t
        .api(
            "/channel/silence/rule/create",
            json!({"channel_id": 999_999, "rule_name": "X", "time_filter": one_off(now, now + 60)}),
        )
        .await;
    assert_eq!(
        missing.1["error"]["code"], "ResourceNotFound",
        "{:?}",
        missing.1
    );
    assert_eq!(rule_count(&t, "silence", ch).await, 1);
    // A silence rule is not reachable as an inhibit rule.
    let wrong_set = t
        .api("/channel/inhibit/rule/info", json!({"rule_id": id}))
        .await;
    assert_eq!(wrong_set.1["error"]["code"], "ResourceNotFound");

    ok(t.api(
        "/channel/silence/rule/delete",
        json!({"channel_id": ch, "rule_id": id}),
    )
    .await);
    assert_eq!(rule_count(&t, "silence", ch).await, 0);
});

// spec: ING-130, ING-086, ING-123, ING-262, RSP-205
on_both_backends!(
    a_silenced_alert_creates_no_incident_and_no_notification,
    |url: String| async move {
        let t = TestServer::start(&url).await;
        let ch = channel(&t).await;
        let acct = account(&t).await;
        let me = owner(&t).await;
        // An escalation rule: any incident in this channel would be assigned and notified.
        ok(t.api(
            "/channel/escalate/rule/create",
            json!({"channel_id": ch, "rule_name": "Default",
                   "layers": [{"target": {"person_ids": [me], "by": {"follow_preference": true}},
                               "escalate_window": 15}]}),
        )
        .await);
        let now = now_secs();
        let rule = ok(t
            .api(
                "/channel/silence/rule/create",
                json!({
                    "channel_id": ch,
                    "rule_name": "Test env",
                    "time_filter": one_off(now - 60, now + 3600),
                    "filters": [[{"key": "labels.env", "oper": "IN", "vals": ["test"]}]],
                }),
            )
            .await)["rule_id"]
            .as_str()
            .unwrap()
            .to_string();

        let rid = push(
            &t,
            json!({"event_status": "Critical", "title_rule": "db down", "alert_key": "db-test",
                   "labels": {"env": "test"}}),
        )
        .await;
        assert!(
            t.incidents().await.is_empty(),
            "a silenced alert opens no incident"
        );
        let store = t.server.as_ref().unwrap().store();
        let outbox = store.notification_outbox(acct, None, 100).await.unwrap();
        assert!(outbox.is_empty(), "and sends no notification: {outbox:?}");
        let alerts = t.alerts().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["mark"], "silenced");
        assert_eq!(alerts[0]["mark_rule_id"], rule.as_str());
        assert_eq!(alerts[0]["ever_muted"], true);
        // ING-130: a filter on the silence rule finds the marked alert.
        let now = now_secs();
        let window = |extra: Value| {
            let mut body = json!({"start_time": now - 3600, "end_time": now + 3600});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            body
        };
        let by_rule = ok(t
            .api("/alert/list", window(json!({"mark_rule_id": rule})))
            .await);
        assert_eq!(by_rule["total"], 1);
        let muted = ok(t
            .api("/alert/list", window(json!({"ever_muted": true})))
            .await);
        assert_eq!(muted["total"], 1);
        let other_rule = ok(t
            .api(
                "/alert/list",
                window(json!({"mark_rule_id": "0123456789abcdef01234567"})),
            )
            .await);
        assert_eq!(other_rule["total"], 0);
        // Why no page: the outcome names the rule.
        let why = outcomes_of(&t, &rid).await;
        assert_eq!(why.len(), 1);
        assert_eq!(why[0]["outcome"], "new_alert");
        assert_eq!(why[0]["mark"], "silenced");
        assert_eq!(why[0]["rule_id"], rule.as_str());
        assert_eq!(why[0]["rule_name"], "Test env");
        assert_eq!(why[0]["alert_id"], alerts[0]["alert_id"]);
        assert_eq!(why[0]["incident_id"], "");

        // A recovery is never silenced: it resolves the marked alert.
        let rid = push(
            &t,
            json!({"event_status": "Ok", "title_rule": "db down", "alert_key": "db-test",
                   "labels": {"env": "test"}}),
        )
        .await;
        let why = outcomes_of(&t, &rid).await;
        assert_eq!(why[0]["outcome"], "resolved");
        assert_eq!(why[0]["rule_id"], "");
        let alerts = t.alerts().await;
        assert_eq!(alerts[0]["alert_status"], "Ok");
        assert!(
            t.incidents().await.is_empty(),
            "a marked alert that resolves never pages"
        );

        // Control: an alert the rule does not match pages as usual.
        let rid = push(
            &t,
            json!({"event_status": "Critical", "title_rule": "db down", "alert_key": "db-prod",
                   "labels": {"env": "prod"}}),
        )
        .await;
        let incidents = t.incidents().await;
        assert_eq!(incidents.len(), 1);
        let outbox = store.notification_outbox(acct, None, 100).await.unwrap();
        assert!(!outbox.is_empty(), "the unsilenced incident is notified");
        let why = outcomes_of(&t, &rid).await;
        assert_eq!(why[0]["outcome"], "new_alert");
        assert_eq!(why[0]["mark"], "none");
        assert_eq!(why[0]["incident_id"], incidents[0]["incident_id"]);
    }
);

// spec: ING-130 (behaviour drop), ING-101, ING-086, ING-262
on_both_backends!(
    drop_rules_and_drop_silences_leave_only_the_outcome,
    |url: String| async move {
        let t = TestServer::start(&url).await;
        let ch = channel(&t).await;
        // An alert opened before the rules exist.
        push(
            &t,
            json!({"event_status": "Info", "title_rule": "queue slow", "alert_key": "q1"}),
        )
        .await;
        assert_eq!(t.incidents().await.len(), 1);

        let drop = ok(t
            .api(
                "/channel/unsubscribe/rule/create",
                json!({"channel_id": ch, "rule_name": "No info",
                   "filters": [[{"key": "severity", "oper": "IN", "vals": ["Info"]}]]}),
            )
            .await)["rule_id"]
            .as_str()
            .unwrap()
            .to_string();
        let empty = err(
            t.api(
                "/channel/unsubscribe/rule/create",
                json!({"channel_id": ch, "rule_name": "Everything"}),
            )
            .await,
            "InvalidParameter",
        );
        assert_eq!(
            empty,
            "filters: a drop rule needs at least one condition group"
        );
        let now = now_secs();
        let silence = ok(t
            .api(
                "/channel/silence/rule/create",
                json!({"channel_id": ch, "rule_name": "Noisy host", "is_directly_discard": true,
                   "time_filter": one_off(now - 60, now + 3600),
                   "filters": [[{"key": "labels.host", "oper": "IN", "vals": ["noisy-*"]}]]}),
            )
            .await)["rule_id"]
            .as_str()
            .unwrap()
            .to_string();

        let dropped = push(
            &t,
            json!({"event_status": "Info", "title_rule": "disk 70%", "alert_key": "d1"}),
        )
        .await;
        let why = outcomes_of(&t, &dropped).await;
        assert_eq!(why[0]["outcome"], "dropped_by_channel_rule");
        assert_eq!(why[0]["rule_id"], drop.as_str());
        assert_eq!(why[0]["alert_id"], "");

        let silenced = push(
            &t,
            json!({"event_status": "Critical", "title_rule": "cpu", "alert_key": "c1",
               "labels": {"host": "noisy-7"}}),
        )
        .await;
        let why = outcomes_of(&t, &silenced).await;
        assert_eq!(why[0]["outcome"], "silenced_drop");
        assert_eq!(why[0]["rule_id"], silence.as_str());
        assert_eq!(
            t.alerts().await.len(),
            1,
            "no alert for dropped or silenced events"
        );
        assert_eq!(t.incidents().await.len(), 1);

        // ING-086: the Info recovery of the older alert passes the Info drop rule.
        let recovered = push(
            &t,
            json!({"event_status": "Ok", "title_rule": "queue slow", "alert_key": "q1",
               "event_severity": "Info"}),
        )
        .await;
        let why = outcomes_of(&t, &recovered).await;
        assert_eq!(why[0]["outcome"], "resolved");
        assert_eq!(t.incidents().await[0]["progress"], "Closed");

        // The outcome list filters by outcome and rule.
        let by_outcome = ok(t
            .api(
                "/alert-event/outcome/list",
                json!({"outcomes": "dropped_by_channel_rule,silenced_drop"}),
            )
            .await);
        assert_eq!(by_outcome["total"], 2);
        let by_rule = ok(t
            .api("/alert-event/outcome/list", json!({"rule_id": drop}))
            .await);
        assert_eq!(by_rule["total"], 1);
        let bad = err(
            t.api("/alert-event/outcome/list", json!({"outcomes": "lost"}))
                .await,
            "InvalidParameter",
        );
        assert!(
            bad.starts_with("outcomes has an invalid value: lost"),
            "{bad}"
        );
    }
);

// spec: ING-140, ING-141, ING-142, ING-262
on_both_backends!(
    inhibit_rules_suppress_alerts_under_an_active_incident,
    |url: String| async move {
        let t = TestServer::start(&url).await;
        let ch = channel(&t).await;
        let missing_equals = err(
            t.api(
                "/channel/inhibit/rule/create",
                json!({"channel_id": ch, "rule_name": "Disk",
                   "source_filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(
            missing_equals.starts_with("equals: at least one"),
            "{missing_equals}"
        );
        let cidr_in_source = err(
            t.api(
                "/channel/inhibit/rule/create",
                json!({"channel_id": ch, "rule_name": "Disk", "equals": ["labels.check"],
                   "source_filters": [[{"key": "integration_type", "oper": "IN", "vals": ["x"]}]]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(
            cidr_in_source.starts_with("source_filters[0][0].key: unknown key"),
            "{cidr_in_source}"
        );
        assert_eq!(rule_count(&t, "inhibit", ch).await, 0);

        let rule = ok(t
        .api(
            "/channel/inhibit/rule/create",
            json!({"channel_id": ch, "rule_name": "Disk",
                   "source_filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
                   "target_filters": [[{"key": "severity", "oper": "IN", "vals": ["Warning", "Info"]}]],
                   "equals": ["labels.check"]}),
        )
        .await)["rule_id"]
        .as_str()
        .unwrap()
        .to_string();
        let info = ok(t
            .api("/channel/inhibit/rule/info", json!({"rule_id": rule}))
            .await);
        assert_eq!(
            info["is_directly_discard"], true,
            "default behaviour: drop (Q-13)"
        );
        assert!(info.get("time_filter").is_none());
        // The spec's field names (ingest.md §1.3.7) are read as well.
        let spelled = ok(t
            .api(
                "/channel/inhibit/rule/create",
                json!({"channel_id": ch, "rule_name": "Spec names", "priority": 9,
                       "source_conditions": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
                       "equal_attributes": ["severity"], "equal_labels": ["check"],
                       "behaviour": "mark"}),
            )
            .await)["rule_id"]
            .as_str()
            .unwrap()
            .to_string();
        let info = ok(t
            .api("/channel/inhibit/rule/info", json!({"rule_id": spelled}))
            .await);
        assert_eq!(info["equals"], json!(["severity", "labels.check"]));
        assert_eq!(info["is_directly_discard"], false);
        assert_eq!(info["source_filters"][0][0]["vals"][0], "Critical");
        assert_eq!(
            err(
                t.api(
                    "/channel/inhibit/rule/update",
                    json!({"rule_id": spelled, "behaviour": "ignore"}),
                )
                .await,
                "InvalidParameter"
            ),
            "behaviour must be drop or mark"
        );
        ok(
            t.api("/channel/inhibit/rule/delete", json!({"rule_id": spelled}))
                .await,
        );

        push(
            &t,
            json!({"event_status": "Critical", "title_rule": "disk full", "alert_key": "s1",
               "labels": {"check": "disk"}}),
        )
        .await;
        let incidents = t.incidents().await;
        assert_eq!(incidents.len(), 1);
        let source = incidents[0]["incident_id"].as_str().unwrap().to_string();

        // Row 1 of the example: dropped, naming the rule and the source incident.
        let rid = push(
            &t,
            json!({"event_status": "Warning", "title_rule": "disk slow", "alert_key": "t1",
               "labels": {"check": "disk", "host": "b"}}),
        )
        .await;
        let why = outcomes_of(&t, &rid).await;
        assert_eq!(why[0]["outcome"], "inhibited_drop");
        assert_eq!(why[0]["rule_id"], rule.as_str());
        assert_eq!(why[0]["source_incident_id"], source.as_str());
        // Row 2: another check is not inhibited.
        let rid = push(
            &t,
            json!({"event_status": "Warning", "title_rule": "cpu", "alert_key": "t2",
               "labels": {"check": "cpu"}}),
        )
        .await;
        assert_eq!(outcomes_of(&t, &rid).await[0]["outcome"], "new_alert");
        assert_eq!(t.incidents().await.len(), 2);

        // Row 3: once the source is acknowledged it inhibits nothing.
        ok(t.api("/incident/ack", json!({"incident_ids": [source]}))
            .await);
        let rid = push(
            &t,
            json!({"event_status": "Warning", "title_rule": "disk slow", "alert_key": "t3",
               "labels": {"check": "disk"}}),
        )
        .await;
        assert_eq!(outcomes_of(&t, &rid).await[0]["outcome"], "new_alert");
        assert_eq!(t.incidents().await.len(), 3);
    }
);

// spec: RSP-120, ING-134
on_both_backends!(quick_silence_from_an_incident, |url: String| async move {
    let t = TestServer::start(&url).await;
    let ch = channel(&t).await;
    push(
        &t,
        json!({"event_status": "Warning", "title_rule": "disk full", "alert_key": "q1",
               "labels": {"host": "web-1", "port": "9100", "__meta": "x", "path": "/var/*"}}),
    )
    .await;
    let inc = t.incidents().await.remove(0);
    let id = inc["incident_id"].as_str().unwrap().to_string();
    let num = inc["num"].as_str().unwrap().to_string();
    let rule = ok(t
        .api("/incident/quick-silence", json!({"incident_id": id}))
        .await);
    assert_eq!(rule["created"], true);
    assert_eq!(rule["rule_name"], format!("Quick Silence - #{num}"));
    assert_eq!(rule["description"], "disk full");
    assert_eq!(rule["channel_id"], ch);
    assert_eq!(rule["from_incident_id"], id.as_str());
    assert_eq!(rule["is_directly_discard"], false);
    let window = &rule["time_filter"];
    assert_eq!(
        window["end_time"].as_i64().unwrap() - window["start_time"].as_i64().unwrap(),
        86_400
    );
    let keys: Vec<&str> = rule["filters"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["severity", "labels.host", "labels.path"]);
    assert_eq!(rule["filters"][0][0]["vals"][0], "Warning");
    assert_eq!(rule["filters"][0][2]["vals"][0], "/^/var/\\*$/");

    // Again: the same rule is opened, not a second one.
    let again = ok(t
        .api("/incident/quick-silence", json!({"incident_id": id}))
        .await);
    assert_eq!(again["created"], false);
    assert_eq!(again["rule_id"], rule["rule_id"]);
    let via_create = ok(t
        .api(
            "/channel/silence/rule/create",
            json!({"channel_id": ch, "from_incident_id": id}),
        )
        .await);
    assert_eq!(via_create["rule_id"], rule["rule_id"]);
    assert_eq!(rule_count(&t, "silence", ch).await, 1);

    // The same problem from another host is not silenced; from the same host it is.
    let rid = push(
        &t,
        json!({"event_status": "Warning", "title_rule": "disk full", "alert_key": "q2",
               "labels": {"host": "web-1", "path": "/var/*"}}),
    )
    .await;
    let why = outcomes_of(&t, &rid).await;
    assert_eq!(why[0]["mark"], "silenced");
    assert_eq!(why[0]["rule_id"], rule["rule_id"]);
    let rid = push(
        &t,
        json!({"event_status": "Warning", "title_rule": "disk full", "alert_key": "q3",
               "labels": {"host": "web-2", "path": "/var/*"}}),
    )
    .await;
    assert_eq!(outcomes_of(&t, &rid).await[0]["mark"], "none");

    let missing = t
        .api(
            "/incident/quick-silence",
            json!({"incident_id": "0123456789abcdef01234567"}),
        )
        .await;
    assert_eq!(missing.1["error"]["code"], "ResourceNotFound");
    assert_eq!(
        err(
            t.api("/incident/quick-silence", json!({})).await,
            "InvalidParameter"
        ),
        "incident_id is required"
    );
});

// spec: ING-143
on_both_backends!(
    inhibition_runs_before_grouping_and_leaves_incidents_alone,
    |url: String| async move {
        let t = TestServer::start(&url).await;
        let ch = channel(&t).await;
        // Everything with the same check would join one incident.
        ok(t.api(
            "/channel/update",
            json!({"channel_id": ch,
                   "group": {"method": "p", "equals": [["labels.check"]], "time_window": 60}}),
        )
        .await);
        let mark = ok(t
            .api(
                "/channel/inhibit/rule/create",
                json!({"channel_id": ch, "rule_name": "Disk", "is_directly_discard": false,
                       "source_filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
                       "target_filters": [[{"key": "severity", "oper": "IN", "vals": ["Warning"]}]],
                       "equals": ["labels.check"]}),
            )
            .await)["rule_id"]
            .as_str()
            .unwrap()
            .to_string();
        push(
            &t,
            json!({"event_status": "Critical", "title_rule": "disk full", "alert_key": "g1",
                   "labels": {"check": "disk", "host": "a"}}),
        )
        .await;
        let before = t.incidents().await;
        assert_eq!(before.len(), 1);
        let source = before[0].clone();
        assert_eq!(source["alert_cnt"], 1);

        // The Warning would join the source incident by grouping, but is inhibited first:
        // it is kept with a mark and joins no incident.
        let rid = push(
            &t,
            json!({"event_status": "Warning", "title_rule": "disk slow", "alert_key": "g2",
                   "labels": {"check": "disk", "host": "b"}}),
        )
        .await;
        let why = outcomes_of(&t, &rid).await;
        assert_eq!(why[0]["outcome"], "new_alert", "{why:?}");
        assert_eq!(why[0]["mark"], "inhibited", "{why:?}");
        assert_eq!(why[0]["rule_id"], mark.as_str());
        assert_eq!(why[0]["source_incident_id"], source["incident_id"]);
        assert_eq!(why[0]["incident_id"], "", "joined no incident");

        // The source incident is exactly as it was.
        let after = t.incidents().await;
        assert_eq!(after.len(), 1, "no incident for the inhibited alert");
        let inc = &after[0];
        for field in [
            "alert_cnt",
            "active_alert_cnt",
            "incident_severity",
            "title",
            "progress",
            "updated_at",
            "last_time",
        ] {
            assert_eq!(inc[field], source[field], "{field} changed");
        }
        let (s, alerts) = t
            .api(
                "/incident/alert/list",
                json!({"incident_id": source["incident_id"]}),
            )
            .await;
        assert_eq!(s, 200);
        let keys: Vec<&str> = alerts["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, vec!["g1"]);
    }
);
