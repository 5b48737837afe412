//! Field mapping, value mapping and batch push over HTTP (ingest.md §2.3, ING-040…049): the
//! settings on `/integration/create|update`, pushes of objects and arrays, all-or-nothing
//! failures, batch limits, and the dry run `/integration/field-mapping/preview`; on SQLite and
//! (with `KLAXON_TEST_DATABASE_URL`) PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::TestServer;
use serde_json::{Value, json};

/// A mapping for a monitoring tool that sends `{"host", "check", "level", "tags", "id"}`.
fn tool_mapping() -> Value {
    json!({
        "field_mapping": {
            "event_status": "{{level}}",
            "title": "{{host}} - {{check}}",
            "alert_key": "{{id}}",
            "description": "{{detail.text}}",
            "labels": {"host": "{{host}}", "env": "{{tags.env}}"}
        },
        "value_mapping": {"level": {"high": "Critical", "low": "Info", "ok": "Ok"}}
    })
}

fn tool_item(id: &str, level: &str) -> Value {
    json!({"id": id, "host": format!("web-{id}"), "check": "cpu", "level": level,
           "tags": {"env": "prod"}, "detail": {"text": "load is high"},
           "event_status": "Warning", "title": "ignored"})
}

/// Creates a dedicated `type` integration with `settings`; returns (status, body).
async fn create(t: &TestServer, integration_type: &str, settings: Value) -> (u16, Value) {
    let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
    t.api(
        "/integration/create",
        json!({"integration_name": format!("{integration_type} mapped"),
               "type": integration_type, "kind": "dedicated", "channel_id": channel_id,
               "settings": settings}),
    )
    .await
}

/// A mapped standard integration; returns (id, key).
async fn mapped(t: &TestServer, settings: Value) -> (i64, String) {
    let (s, b) = create(t, "standard", settings).await;
    assert_eq!(s, 200, "{b}");
    (
        b["data"]["integration_id"].as_i64().unwrap(),
        b["data"]["integration_key"].as_str().unwrap().to_string(),
    )
}

async fn push_to(t: &TestServer, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let resp = t
        .http
        .post(format!("{}{path}?integration_key={key}", t.base))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn push(t: &TestServer, key: &str, body: &Value) -> (u16, Value) {
    push_to(t, "/event/push/alert/standard", key, body).await
}

async fn events(t: &TestServer) -> Vec<Value> {
    let (s, b) = t.api("/alert-event/list", json!({"limit": 100})).await;
    assert_eq!(s, 200, "{b}");
    b["data"]["items"].as_array().cloned().unwrap_or_default()
}

fn error(b: &Value) -> (&str, &str) {
    (
        b["error"]["code"].as_str().unwrap_or(""),
        b["error"]["message"].as_str().unwrap_or(""),
    )
}

// spec: ING-040, ING-043, ING-045, ING-046, ING-048 — an object body is one mapped event; the
// response is the single-event one of ING-031.
on_both_backends!(object_body_is_one_mapped_event, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (_, key) = mapped(&t, tool_mapping()).await;
    let (s, b) = push(&t, &key, &tool_item("1", "high")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"], json!({"alert_key": "1"}));
    t.drained().await;
    let alerts = t.alerts().await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["alert_key"], "1");
    assert_eq!(a["title"], "web-1 - cpu");
    // ING-045: "high" became Critical; ING-040: the raw "event_status" was ignored.
    assert_eq!(a["alert_severity"], "Critical");
    assert_eq!(a["description"], "load is high");
    assert_eq!(a["labels"]["host"], "web-1");
    assert_eq!(a["labels"]["env"], "prod");
    // ING-054: the body as received is kept.
    let ev = events(&t).await;
    assert!(
        ev[0]["raw"]
            .as_str()
            .unwrap()
            .contains("\"level\":\"high\"")
    );
    // The same mapping resolves the alert with a mapped recovery.
    let (s, b) = push(&t, &key, &tool_item("1", "ok")).await;
    assert_eq!(s, 200, "{b}");
    t.drained().await;
    assert_eq!(t.alerts().await[0]["alert_status"], "Ok");
    t.stop().await;
});

// spec: ING-041, ING-048 — an array body is a batch; the keys come back in input order and
// every item is queued, each with its own source text.
on_both_backends!(array_body_is_a_batch, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (_, key) = mapped(&t, tool_mapping()).await;
    let batch = json!([
        tool_item("c", "high"),
        tool_item("a", "low"),
        tool_item("b", "high")
    ]);
    let (s, b) = push(&t, &key, &batch).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"], json!({"alert_keys": ["c", "a", "b"]}));
    assert_eq!(b["request_id"].as_str().unwrap().len(), 32);
    t.drained().await;
    let mut alerts: Vec<(String, String)> = t
        .alerts()
        .await
        .iter()
        .map(|a| {
            (
                a["alert_key"].as_str().unwrap().to_string(),
                a["alert_severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    alerts.sort();
    assert_eq!(
        alerts,
        vec![
            ("a".to_string(), "Info".to_string()),
            ("b".to_string(), "Critical".to_string()),
            ("c".to_string(), "Critical".to_string()),
        ]
    );
    let ev = events(&t).await;
    assert_eq!(ev.len(), 3);
    let request_ids: Vec<&Value> = ev.iter().map(|e| &e["request_id"]).collect();
    assert!(request_ids.iter().all(|r| **r == b["request_id"]));
    for e in &ev {
        let raw: Value = serde_json::from_str(e["raw"].as_str().unwrap()).unwrap();
        assert_eq!(
            raw["id"], e["alert_key"],
            "each item keeps its own raw text"
        );
    }
    // ING-001: an alias path of the standard family takes the same mapped payload; a batch
    // counts as one request and generated keys follow ING-026 (same item, same key).
    let m = json!({"field_mapping": {"event_status": "Warning", "title": "{{name}}"}});
    let (s, b) = create(&t, "uptimekuma", m).await;
    assert_eq!(s, 200, "{b}");
    let key2 = b["data"]["integration_key"].as_str().unwrap().to_string();
    let (s, b1) = push_to(
        &t,
        "/event/push/alert/uptimekuma",
        &key2,
        &json!([{"name": "x"}, {"name": "y"}, {"name": "x"}]),
    )
    .await;
    assert_eq!(s, 200, "{b1}");
    let keys = b1["data"]["alert_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0], keys[2]);
    assert_ne!(keys[0], keys[1]);
    t.stop().await;
});

// spec: ING-044, ING-047 — one bad item fails the whole request; nothing is queued.
on_both_backends!(a_bad_item_fails_the_whole_batch, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (_, key) = mapped(&t, tool_mapping()).await;
    let mut missing = tool_item("d", "high");
    missing.as_object_mut().unwrap().remove("tags");
    let batch = json!([
        tool_item("a", "high"),
        tool_item("b", "high"),
        tool_item("c", "high"),
        missing
    ]);
    let (s, b) = push(&t, &key, &batch).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        error(&b),
        ("InvalidParameter", "item 3: variable tags.env not found")
    );
    // Validation after mapping (ING-047): an unmapped level is no event_status.
    let batch = json!([tool_item("a", "high"), tool_item("b", "medium")]);
    let (s, b) = push(&t, &key, &batch).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        error(&b),
        ("InvalidParameter", "item 1: event_status is invalid")
    );
    // A non-object element.
    let (s, b) = push(&t, &key, &json!([tool_item("a", "high"), 5])).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        error(&b),
        ("InvalidParameter", "item 1: must be a JSON object")
    );
    t.drained().await;
    assert!(events(&t).await.is_empty(), "nothing was ingested");
    assert!(t.alerts().await.is_empty());
    t.stop().await;
});

// spec: ING-041 — a batch has 1–100 items.
on_both_backends!(batch_limits, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (_, key) = mapped(&t, tool_mapping()).await;
    let (s, b) = push(&t, &key, &json!([])).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        error(&b),
        ("InvalidParameter", "batch must contain at least one item")
    );
    let items = |n: usize| -> Value {
        Value::Array((0..n).map(|i| tool_item(&i.to_string(), "high")).collect())
    };
    let (s, b) = push(&t, &key, &items(101)).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        error(&b),
        ("InvalidParameter", "batch has too many items (101 > 100)")
    );
    t.drained().await;
    assert!(events(&t).await.is_empty());
    let (s, b) = push(&t, &key, &items(100)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["alert_keys"].as_array().unwrap().len(), 100);
    assert_eq!(b["data"]["alert_keys"][99], "99");
    t.drained().await;
    assert_eq!(events(&t).await.len(), 100);
    t.stop().await;
});

// spec: ING-030 — without a mapping an array is still refused; ING-040 — an empty mapping
// leaves the standard payload in force.
on_both_backends!(
    without_mapping_the_standard_payload_applies,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let (s, b) = t
            .push(json!([{"event_status": "Info", "title": "x"}]))
            .await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(
            error(&b),
            ("InvalidParameter", "batch push requires field mapping")
        );
        let (_, key) = mapped(&t, json!({"field_mapping": {}})).await;
        let (s, b) = push(
            &t,
            &key,
            &json!({"event_status": "Info", "title": "plain", "alert_key": "p"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"], json!({"alert_key": "p"}));
        t.stop().await;
    }
);

// spec: ING-042, ING-045, ING-046, ING-049 — refused on save, naming the bad key; nothing
// changes.
on_both_backends!(bad_mappings_are_refused_on_save, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let fm = |extra: Value| {
        let mut m = json!({"event_status": "{{level}}", "title": "{{host}}"});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"field_mapping": m})
    };
    let cases = [
        (
            fm(json!({"severity": "x"})),
            "settings.field_mapping.severity is not a mapping target",
        ),
        (
            json!({"field_mapping": {"title": "t"}}),
            "settings.field_mapping.event_status is required",
        ),
        (
            json!({"field_mapping": {"event_status": "Info"}}),
            "settings.field_mapping.title or field_mapping.title_rule is required",
        ),
        (
            fm(json!({"alert_key": 1})),
            "settings.field_mapping.alert_key must be a string",
        ),
        (
            fm(json!({"description": "{{a"})),
            "settings.field_mapping.description: a variable is not closed",
        ),
        (
            fm(json!({"labels": "a {{b}}"})),
            "settings.field_mapping.labels must be one variable",
        ),
        (
            fm(json!({"labels": {"env": 3}})),
            "settings.field_mapping.labels.env must be a string",
        ),
        (
            {
                let mut s = fm(json!({}));
                s["value_mapping"] = json!({"level": "Critical"});
                s
            },
            "settings.value_mapping.level must be an object",
        ),
        (
            json!({"field_mapping": "x"}),
            "settings.field_mapping must be an object",
        ),
    ];
    for (settings, want) in &cases {
        let (s, b) = create(&t, "standard", settings.clone()).await;
        assert_eq!(s, 400, "{settings}: {b}");
        let (code, msg) = error(&b);
        assert_eq!(code, "InvalidParameter");
        assert!(msg.starts_with(want), "{settings}: {msg}");
    }
    // Outside the standard family the members are not settings at all.
    let (s, b) = create(&t, "grafana", tool_mapping()).await;
    assert_eq!(s, 400, "{b}");
    assert!(
        error(&b).1.contains("is not supported for type grafana"),
        "{b}"
    );
    // Nothing was created by the refusals.
    let (_, b) = t.api("/integration/list", json!({})).await;
    assert!(!b.to_string().contains("mapped"), "{b}");

    // Update: a bad mapping is refused and the saved one stays in force.
    let (id, key) = mapped(&t, tool_mapping()).await;
    let (s, b) = t
        .api(
            "/integration/update",
            json!({"integration_id": id, "settings": {"field_mapping": {"title": "x"}}}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        error(&b).1,
        "settings.field_mapping.event_status is required"
    );
    let (s, b) = t
        .api("/integration/info", json!({"integration_id": id}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["settings"], tool_mapping());
    let (s, b) = push(&t, &key, &tool_item("u", "low")).await;
    assert_eq!(s, 200, "{b}");
    t.stop().await;
});

// spec: ING-049 — a mapping added by /integration/update applies to the next push.
on_both_backends!(update_sets_a_mapping, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (id, key) = mapped(&t, json!({})).await;
    let (s, b) = t
        .api(
            "/integration/update",
            json!({"integration_id": id, "settings": tool_mapping()}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = push(&t, &key, &json!([tool_item("x", "high")])).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"], json!({"alert_keys": ["x"]}));
    t.stop().await;
});

// spec: ING-049 — the dry run returns the standard events or the first error and stores
// nothing.
on_both_backends!(dry_run_previews_the_mapping, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (id, key) = mapped(&t, tool_mapping()).await;
    // The saved mapping of an integration.
    let (s, b) = t
        .api(
            "/integration/field-mapping/preview",
            json!({"integration_id": id,
                   "sample": [tool_item("a", "high"), tool_item("b", "low")]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let d = &b["data"];
    assert_eq!(d["ok"], true, "{b}");
    assert_eq!(d["error"], "");
    let evs = d["events"].as_array().unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0]["alert_key"], "a");
    assert_eq!(evs[0]["event_status"], "Critical");
    assert_eq!(evs[0]["event_severity"], "Critical");
    assert_eq!(evs[0]["title"], "web-a - cpu");
    assert_eq!(evs[0]["description"], "load is high");
    assert_eq!(evs[0]["labels"], json!({"env": "prod", "host": "web-a"}));
    assert_eq!(evs[1]["event_status"], "Info");
    assert!(evs[0]["event_time"].as_i64().unwrap() > 1_700_000_000);
    // The first error, as a push would answer it.
    let mut bad = tool_item("c", "high");
    bad.as_object_mut().unwrap().remove("host");
    let (s, b) = t
        .api(
            "/integration/field-mapping/preview",
            json!({"integration_id": id, "sample": [tool_item("a", "high"), bad]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["data"],
        json!({"ok": false, "events": [], "error": "item 1: variable host not found"})
    );
    // A mapping not saved yet, tried on a sample; generated keys are those a push gets.
    let m = json!({"event_status": "{{s}}", "title": "{{t}}"});
    let (s, b) = t
        .api(
            "/integration/field-mapping/preview",
            json!({"integration_id": id, "field_mapping": m.clone(),
                   "value_mapping": {"s": {"1": "Warning"}}, "sample": {"s": 1, "t": "T"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let previewed = b["data"]["events"][0].clone();
    assert_eq!(previewed["event_status"], "Warning");
    assert_eq!(previewed["title"], "T");
    assert_eq!(previewed["alert_key"].as_str().unwrap().len(), 32);
    let (s, b) = t
        .api(
            "/integration/update",
            json!({"integration_id": id, "settings": {
                "field_mapping": m, "value_mapping": {"s": {"1": "Warning"}}}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = push(&t, &key, &json!({"s": 1, "t": "T"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["alert_key"], previewed["alert_key"]);
    // Without an integration.
    let (s, b) = t
        .api(
            "/integration/field-mapping/preview",
            json!({"field_mapping": {"event_status": "Info", "title": "{{x}}"},
                   "sample": {"x": "only a preview"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["events"][0]["title"], "only a preview");
    // Bad requests name the field.
    for (body, want) in [
        (
            json!({"sample": {}}),
            "field_mapping or integration_id is required",
        ),
        (
            json!({"field_mapping": {"event_status": "Info"}, "sample": {}}),
            "field_mapping.title or field_mapping.title_rule is required",
        ),
        (
            json!({"field_mapping": {"event_status": "Info", "title": "t"}}),
            "sample is required",
        ),
    ] {
        let (s, b) = t
            .api("/integration/field-mapping/preview", body.clone())
            .await;
        assert_eq!(s, 400, "{body}: {b}");
        assert_eq!(error(&b), ("InvalidParameter", want), "{body}");
    }
    let (s, b) = t
        .api(
            "/integration/field-mapping/preview",
            json!({"integration_id": 999_999_999, "sample": {}}),
        )
        .await;
    assert_ne!(s, 200, "{b}");
    assert_eq!(error(&b).0, "ResourceNotFound");
    // The dry run stored and queued nothing (only the one real push above).
    t.drained().await;
    assert_eq!(events(&t).await.len(), 1);
    t.stop().await;
});
