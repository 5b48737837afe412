//! Source adapters over HTTP (ingest.md §3.2–§3.7), the Alertmanager-compatible
//! `/api/v2/alerts`, and the `/integration/*` management extension (openapi-compat.md
//! §2.6.1), on SQLite and (with `KLAXON_TEST_DATABASE_URL`) PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs};
use serde_json::{Value, json};

/// Creates a dedicated integration of `kind` on the default channel; returns (id, key).
async fn create(t: &TestServer, integration_type: &str) -> (i64, String) {
    let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
    let (status, body) = t
        .api(
            "/integration/create",
            json!({
                "integration_name": format!("{integration_type} test"),
                "type": integration_type,
                "kind": "dedicated",
                "channel_id": channel_id,
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    let key = data["integration_key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 32);
    assert_eq!(
        data["push_url"],
        format!(
            "{}/event/push/alert/{integration_type}?integration_key={key}",
            t.base
        )
        .as_str()
    );
    (data["integration_id"].as_i64().unwrap(), key)
}

async fn post(t: &TestServer, path: &str, key: &str, body: &Value) -> (u16, Value) {
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

fn webhook(status: &str, alerts: Vec<Value>) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"HighCPU\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "klaxon",
        "groupLabels": {"alertname": "HighCPU"},
        "commonLabels": {"alertname": "HighCPU"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts
    })
}

fn am_alert(status: &str, instance: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "HighCPU", "instance": instance, "severity": "critical"},
        "annotations": {"description": format!("CPU high on {instance}")},
        "startsAt": "2024-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": format!("fp-{instance}")
    })
}

/// The events of the last day, newest first.
async fn events(t: &TestServer) -> Vec<Value> {
    let (status, body) = t.api("/alert-event/list", json!({"limit": 100})).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

// spec: ING-001, ING-008, ING-011, ING-053 — an Alertmanager webhook with two firing alerts
// opens two alerts (one request, two events, committed together); the resolved webhook closes
// them and their incidents.
on_both_backends!(
    alertmanager_webhook_opens_and_closes_incidents,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let (integration_id, key) = create(&t, "prometheus").await;
        let path = "/event/push/alert/prometheus";
        let firing = webhook(
            "firing",
            vec![am_alert("firing", "web-1"), am_alert("firing", "web-2")],
        );
        let (status, body) = post(&t, path, &key, &firing).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["request_id"].is_string());
        assert!(
            body.get("data").is_none(),
            "adapters answer without data (§3.0)"
        );
        t.drained().await;

        let alerts = t.alerts().await;
        assert_eq!(alerts.len(), 2);
        for a in &alerts {
            assert_eq!(a["alert_severity"], "Critical");
            assert_eq!(a["title"], "HighCPU");
            assert_eq!(a["integration_id"], integration_id);
            assert_eq!(a["labels"]["check"], "HighCPU");
        }
        let incidents = t.incidents().await;
        assert_eq!(incidents.len(), 2);
        assert!(incidents.iter().all(|i| i["progress"] == "Triggered"));
        let evs = events(&t).await;
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0]["request_id"], evs[1]["request_id"]);

        let resolved = webhook(
            "resolved",
            vec![am_alert("resolved", "web-1"), am_alert("resolved", "web-2")],
        );
        let (status, body) = post(&t, path, &key, &resolved).await;
        assert_eq!(status, 200, "{body}");
        t.drained().await;
        let incidents = t.incidents().await;
        assert_eq!(incidents.len(), 2);
        for i in &incidents {
            assert_eq!(i["progress"], "Closed", "{i}");
            assert_eq!(i["incident_status"], "Ok");
        }
        t.stop().await;
    }
);

// spec: ING-002, ING-011, ING-047 — one malformed alert in a batch refuses the whole request: 400
// naming the field, nothing queued; ING-001 — a key of another type is refused.
on_both_backends!(
    bad_batch_or_wrong_type_writes_nothing,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let (_, key) = create(&t, "prometheus").await;
        let mut bad = am_alert("firing", "web-2");
        bad["labels"] = json!("not an object");
        let (status, body) = post(
            &t,
            "/event/push/alert/prometheus",
            &key,
            &webhook("firing", vec![am_alert("firing", "web-1"), bad]),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "InvalidParameter");
        assert_eq!(
            body["error"]["message"],
            "alerts[1].labels must be an object"
        );

        // A prometheus key on the grafana path, and the standard key on the prometheus path.
        let ok = webhook("firing", vec![am_alert("firing", "web-1")]);
        let (status, body) = post(&t, "/event/push/alert/grafana", &key, &ok).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["message"], "integration type mismatch");
        let std_key = t.integration_key.clone();
        let (status, body) = post(&t, "/event/push/alert/prometheus", &std_key, &ok).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["message"], "integration type mismatch");
        // ING-004: adapter paths do not check the Content-Type; ING-006: JSON is required.
        let resp = t
            .http
            .post(format!(
                "{}/event/push/alert/prometheus?integration_key={key}",
                t.base
            ))
            .header("content-type", "text/plain")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["message"], "invalid JSON");

        // ING-002: another method on an adapter path is a 400 MethodNotAllowed; on the
        // Alertmanager API a 405, as Alertmanager answers.
        let resp = t
            .http
            .get(format!(
                "{}/event/push/alert/prometheus?integration_key={key}",
                t.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "MethodNotAllowed");
        let resp = t
            .http
            .get(format!("{}/api/v2/alerts", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405);
        t.drained().await;
        assert!(t.alerts().await.is_empty());
        assert!(events(&t).await.is_empty());
        t.stop().await;
    }
);

fn postable(ends_at: &str) -> Value {
    json!([{
        "labels": {"alertname": "InstanceDown", "instance": "db:9100", "job": "node", "severity": "warning"},
        "annotations": {"summary": "db is down"},
        "startsAt": "2024-01-01T00:00:00Z",
        "endsAt": ends_at,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up"
    }])
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

// spec: ING-005, ING-053 — Prometheus posts straight to /api/v2/alerts with the integration
// key as bearer token: firing opens an incident, endsAt in the past resolves it; answers
// like Alertmanager (200 with an empty body; 400/401 with a JSON string).
on_both_backends!(api_v2_alerts_with_bearer_key, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (_, key) = create(&t, "prometheus").await;
    let am = format!("{}/api/v2/alerts", t.base);
    let send = |auth: Option<String>, body: Value| {
        let mut req = t.http.post(&am).json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };

    // Wrong, missing, disabled-type keys: nothing accepted.
    let resp = send(
        Some("Bearer 0123456789abcdef0123456789abcdef".into()),
        postable(""),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.json::<Value>().await.unwrap().is_string());
    let resp = send(None, postable("")).await.unwrap();
    assert_eq!(resp.status(), 401);
    let std_key = t.integration_key.clone();
    let resp = send(Some(format!("Bearer {std_key}")), postable(""))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!("integration type mismatch")
    );
    let resp = send(Some(format!("Bearer {key}")), json!([{"labels": {}}]))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!("[0].labels: at least one label pair required")
    );
    t.drained().await;
    assert!(t.alerts().await.is_empty());

    // Firing: endsAt in the future (as Prometheus sends it).
    let resp = send(
        Some(format!("Bearer {key}")),
        postable(&rfc3339(now_secs() + 240)),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().len(), 0);
    t.drained().await;
    let incidents = t.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["progress"], "Triggered");
    assert_eq!(incidents[0]["incident_severity"], "Warning");
    assert_eq!(incidents[0]["title"], "InstanceDown");
    assert_eq!(incidents[0]["labels"]["resource"], "db:9100");

    // Resolved: endsAt in the past. The key may also be given as integration_key.
    let resp = t
        .http
        .post(format!("{am}?integration_key={key}"))
        .json(&postable(&rfc3339(now_secs() - 5)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    t.drained().await;
    let incidents = t.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["progress"], "Closed");
    t.stop().await;
});

// spec: §3.3, §3.4, §3.5, §3.7, ING-001 — each adapter's push path ingests its payload into
// the integration's channel.
on_both_backends!(every_adapter_path_ingests, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (_, grafana) = create(&t, "grafana").await;
    let (_, zabbix) = create(&t, "zabbix").await;
    let (_, n9e) = create(&t, "n9e").await;
    let (_, kuma) = create(&t, "uptimekuma").await;

    let g = json!({
        "receiver": "klaxon", "status": "firing", "orgId": 1, "externalURL": "http://grafana/",
        "title": "[FIRING:1] DiskFull",
        "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "severity": "critical"},
                    "annotations": {"summary": "disk 95%"}, "fingerprint": "g1",
                    "dashboardURL": "http://grafana/d/1"}]
    });
    let (s, b) = post(&t, "/event/push/alert/grafana", &grafana, &g).await;
    assert_eq!(s, 200, "{b}");
    let z = json!({"event_id": "1", "event_name": "Zabbix agent unreachable", "event_severity": "Average",
                       "event_value": "1", "trigger_id": "42", "host_name": "db-1"});
    let (s, b) = post(&t, "/event/push/alert/zabbix", &zabbix, &z).await;
    assert_eq!(s, 200, "{b}");
    let n = json!([{"rule_name": "cpu high", "cluster": "c1", "target_ident": "h1", "severity": 3,
                        "hash": "n9e-1", "tags": ["app=shop"], "is_recovered": false}]);
    let (s, b) = post(&t, "/event/push/alert/n9e", &n9e, &n).await;
    assert_eq!(s, 200, "{b}");
    let k = json!({"title": "shop is DOWN", "event_status": "Critical", "alert_key": "12",
                       "labels": {"check": "shop"}});
    // Kuma posts to the standard path with its own key (standard family).
    let (s, b) = post(&t, "/event/push/alert/standard", &kuma, &k).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["alert_key"], "12");
    t.drained().await;

    let alerts = t.alerts().await;
    let by_title = |title: &str| {
        alerts
            .iter()
            .find(|a| a["title"] == title)
            .unwrap_or_else(|| panic!("no alert {title}: {alerts:?}"))
            .clone()
    };
    let a = by_title("DiskFull");
    assert_eq!(a["alert_severity"], "Critical");
    assert_eq!(a["labels"]["dashboard_url"], "http://grafana/d/1");
    let a = by_title("Zabbix agent unreachable");
    assert_eq!(a["alert_severity"], "Warning");
    assert_eq!(a["labels"]["resource"], "db-1");
    let a = by_title("cpu high / c1 - h1");
    assert_eq!(a["alert_severity"], "Info");
    assert_eq!(a["labels"]["app"], "shop");
    let a = by_title("shop is DOWN");
    assert_eq!(a["alert_severity"], "Critical");
    assert_eq!(alerts.len(), 4);
    t.stop().await;
});

// spec: §3.6 — PagerDuty v2 and v1 in PagerDuty's own response shapes, the key from the
// body, both alias paths; acknowledge is accepted and ignored.
on_both_backends!(pagerduty_events_api, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (_, key) = create(&t, "pagerduty").await;
    let v2 = json!({
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": "srv01/HTTP",
        "payload": {"summary": "HTTP down on srv01", "source": "srv01", "severity": "critical"}
    });
    let resp = t
        .http
        .post(format!("{}/event/push/alert/pagerduty/v2/enqueue", t.base))
        .json(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "success", "message": "Event processed", "dedup_key": "srv01/HTTP"})
    );

    let ack = json!({"routing_key": key, "event_action": "acknowledge", "dedup_key": "srv01/HTTP"});
    let resp = t
        .http
        .post(format!("{}/event/push/alert/pagerduty", t.base))
        .json(&ack)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    let bad = json!({"routing_key": "0123456789abcdef0123456789abcdef", "event_action": "trigger"});
    let resp = t
        .http
        .post(format!("{}/event/push/alert/pagerduty", t.base))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "invalid event");
    assert_eq!(body["errors"][0], "integration_key is not a valid one");

    t.drained().await;
    let incidents = t.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["incident_severity"], "Critical");

    let v1 = json!({"service_key": key, "event_type": "resolve", "incident_key": "srv01/HTTP"});
    let resp = t
        .http
        .post(format!(
            "{}/event/push/alert/pagerduty/generic/2010-04-15/create_event.json",
            t.base
        ))
        .json(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["incident_key"], "srv01/HTTP");
    t.drained().await;
    let incidents = t.incidents().await;
    assert_eq!(incidents[0]["progress"], "Closed");
    assert_eq!(events(&t).await.len(), 2, "the acknowledge made no event");
    t.stop().await;
});

// spec: ING-005 (openapi-compat.md §2.6.1) — create, list, info, disable/enable, rotate-key,
// delete; validation failures are InvalidParameter and create nothing.
on_both_backends!(integration_management, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
    let (id, key) = create(&t, "prometheus").await;

    let (status, info) = t
        .api("/integration/info", json!({"integration_id": id}))
        .await;
    assert_eq!(status, 200, "{info}");
    let d = &info["data"];
    assert_eq!(d["type"], "prometheus");
    assert_eq!(d["kind"], "dedicated");
    assert_eq!(d["category"], "alert");
    assert_eq!(d["channel_id"], channel_id);
    assert_eq!(d["enabled"], true);
    assert_eq!(d["integration_key"], key.as_str());

    let (status, list) = t
        .api("/integration/list", json!({"types": ["prometheus"]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"]["total"], 1);
    assert_eq!(list["data"]["items"][0]["integration_id"], id);
    assert!(list["data"]["items"][0].get("integration_key").is_none());
    let (_, all) = t.api("/integration/list", json!({})).await;
    assert_eq!(
        all["data"]["total"], 2,
        "the bootstrap standard integration too"
    );

    let ok = webhook("firing", vec![am_alert("firing", "web-1")]);
    let path = "/event/push/alert/prometheus";
    // Disabled → 403 AccessDenied; enabled again → accepted.
    let (s, _) = t
        .api("/integration/disable", json!({"integration_id": id}))
        .await;
    assert_eq!(s, 200);
    let (s, b) = post(&t, path, &key, &ok).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (403, Some("AccessDenied"))
    );
    let (s, _) = t
        .api("/integration/enable", json!({"integration_id": id}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = post(&t, path, &key, &ok).await;
    assert_eq!(s, 200);

    // Rotation: the old key is at once unknown, the new one works.
    let (s, r) = t
        .api("/integration/rotate-key", json!({"integration_id": id}))
        .await;
    assert_eq!(s, 200);
    let new_key = r["data"]["integration_key"].as_str().unwrap().to_string();
    let (s, b) = post(&t, path, &key, &ok).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["message"], "integration_key is not a valid one");
    let (s, _) = post(&t, path, &new_key, &ok).await;
    assert_eq!(s, 200);

    // Delete: gone from info and list, key unknown.
    let (s, _) = t
        .api("/integration/delete", json!({"integration_id": id}))
        .await;
    assert_eq!(s, 200);
    let (s, b) = t
        .api("/integration/info", json!({"integration_id": id}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("ResourceNotFound"))
    );
    let (s, b) = post(&t, path, &new_key, &ok).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["message"], "integration_key is not a valid one");

    // Validation.
    let refuse = |body: Value, message: &'static str| {
        let t = &t;
        async move {
            let (s, b) = t.api("/integration/create", body).await;
            assert_eq!(s, 400, "{b}");
            assert_eq!(b["error"]["code"], "InvalidParameter");
            assert_eq!(b["error"]["message"], message);
        }
    };
    let base = |extra: Value| {
        let mut v = json!({"integration_name": "x", "type": "prometheus", "kind": "dedicated",
                               "channel_id": channel_id});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    refuse(
        base(json!({"type": "nonesuch"})),
        "type nonesuch is invalid",
    )
    .await;
    refuse(
        base(json!({"type": "nagios"})),
        "type nagios has no receiver in this version",
    )
    .await;
    refuse(
        base(json!({"type": "monit"})),
        "type monit is system-managed and cannot be created",
    )
    .await;
    refuse(
        base(json!({"integration_name": ""})),
        "integration_name is required",
    )
    .await;
    refuse(
        base(json!({"integration_name": "n".repeat(101)})),
        "integration_name must be at most 100 characters",
    )
    .await;
    refuse(
        base(json!({"channel_id": 0})),
        "channel_id is required for a dedicated integration",
    )
    .await;
    // spec: ING-096 — a shared integration routes; it has no channel, but default channels.
    refuse(
        base(json!({"kind": "shared"})),
        "channel_id is not allowed for a shared integration: its events are routed (default_channel_ids, /route/upsert)",
    )
    .await;
    refuse(
        base(json!({"kind": "shared", "channel_id": 0})),
        "default_channel_ids is required for a shared integration: at least one channel",
    )
    .await;
    refuse(
        base(json!({"default_channel_ids": [channel_id]})),
        "default_channel_ids is only for shared integrations",
    )
    .await;
    refuse(
        base(json!({"settings": {"field_mapping": {}}})),
        "settings.field_mapping is not supported for type prometheus",
    )
    .await;
    refuse(
        base(json!({"type": "n9e", "settings": {"console_url": "ftp://x"}})),
        "settings.console_url must be an http(s) URL",
    )
    .await;
    let (s, b) = t
        .api("/integration/create", base(json!({"channel_id": 999_999})))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("ResourceNotFound"))
    );
    let (_, all) = t.api("/integration/list", json!({})).await;
    assert_eq!(
        all["data"]["total"], 1,
        "only the bootstrap integration is left"
    );
    t.stop().await;
});

// spec: ING-053, §3.5 — a Nightingale integration's console_url setting yields detail_url
// labels; /integration/update changes it (openapi-compat.md §2.6.1).
on_both_backends!(n9e_console_url_setting, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
    let (s, b) = t
            .api(
                "/integration/create",
                json!({"integration_name": "n9e", "type": "n9e", "kind": "dedicated",
                       "channel_id": channel_id, "settings": {"console_url": "https://n9e.example/"}}),
            )
            .await;
    assert_eq!(s, 200, "{b}");
    let key = b["data"]["integration_key"].as_str().unwrap().to_string();
    let id = b["data"]["integration_id"].as_i64().unwrap();
    let (_, info) = t
        .api("/integration/info", json!({"integration_id": id}))
        .await;
    assert_eq!(
        info["data"]["settings"]["console_url"],
        "https://n9e.example"
    );
    let n = json!({"id": 77, "rule_name": "mem", "severity": 1, "hash": "h77"});
    let (s, _) = post(&t, "/event/push/alert/n9e", &key, &n).await;
    assert_eq!(s, 200);
    t.drained().await;
    let alerts = t.alerts().await;
    assert_eq!(
        alerts[0]["labels"]["detail_url"],
        "https://n9e.example/alert-his-events/77"
    );

    // /integration/update changes the name and settings; immutable fields are refused.
    let (s, b) = t
        .api(
            "/integration/update",
            json!({"integration_id": id, "integration_name": "n9e prod",
                   "settings": {"console_url": "https://n9e2.example"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, info) = t
        .api("/integration/info", json!({"integration_id": id}))
        .await;
    assert_eq!(info["data"]["integration_name"], "n9e prod");
    assert_eq!(
        info["data"]["settings"]["console_url"],
        "https://n9e2.example"
    );
    let (s, b) = t
        .api(
            "/integration/update",
            json!({"integration_id": id, "type": "zabbix"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["message"], "type cannot be changed");
    let (s, b) = t
        .api(
            "/integration/update",
            json!({"integration_id": id, "settings": {"field_mapping": {}}}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "settings.field_mapping is not supported for type n9e"
    );
    let n = json!({"id": 78, "rule_name": "mem", "severity": 1, "hash": "h78"});
    let (s, _) = post(&t, "/event/push/alert/n9e", &key, &n).await;
    assert_eq!(s, 200);
    t.drained().await;
    let alerts = t.alerts().await;
    let a = alerts.iter().find(|a| a["alert_key"] == "h78").unwrap();
    assert_eq!(
        a["labels"]["detail_url"],
        "https://n9e2.example/alert-his-events/78"
    );
    t.stop().await;
});
