//! The alert pipeline end to end (ingest.md §2.7, ING-262; openapi-compat.md
//! `/alert/pipeline/{info,list,upsert}`): saving an integration's rules through the Open API,
//! refused saves that change nothing, pushed events rewritten before they become alerts and
//! incidents, dropped and inhibited events with their outcomes, and recoveries that always get
//! through. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

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
    assert_eq!(body["error"]["code"], "InvalidParameter", "{status} {body}");
    assert_eq!(status, 400, "{body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// The account's first (dedicated, standard) integration.
async fn default_integration(t: &TestServer) -> i64 {
    let items = ok(t.api("/integration/list", json!({})).await)["items"].clone();
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "dedicated")
        .and_then(|i| i["integration_id"].as_i64())
        .unwrap()
}

/// Pushes one event, waits until it is processed, returns the request id.
async fn push(t: &TestServer, body: Value) -> String {
    let (status, resp) = t.push(body).await;
    assert_eq!(status, 200, "{resp}");
    t.drained().await;
    resp["request_id"].as_str().unwrap().to_string()
}

/// (channel_id, outcome, rule_id) of the events of one request.
async fn outcomes(t: &TestServer, request_id: &str) -> Vec<(i64, String, String)> {
    ok(t.api(
        "/alert-event/outcome/list",
        json!({"request_id": request_id}),
    )
    .await)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["channel_id"].as_i64().unwrap(),
                o["outcome"].as_str().unwrap().to_string(),
                o["rule_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn alert<'a>(alerts: &'a [Value], key: &str) -> Option<&'a Value> {
    alerts.iter().find(|a| a["alert_key"] == key)
}

const TITLE: &str = "[TPL]${ident} cpu idle {{.Labels.trigger_value}}";

// spec: ING-080, ING-081, ING-083, ING-084, ING-086, ING-262
on_both_backends!(
    pipeline_rewrites_and_drops_events_and_lets_recoveries_through,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let id = default_integration(&t).await;

        // Nothing saved yet: no rules.
        let info = ok(t
            .api("/alert/pipeline/info", json!({"integration_id": id}))
            .await);
        assert_eq!(info["rules"], json!([]));

        // Refused saves name the bad part and change nothing.
        let m = invalid(
            t.api(
                "/alert/pipeline/upsert",
                json!({"integration_id": id, "rules": [
                    {"kind": "alert_drop"},
                    {"kind": "severity_reset", "settings": {"severity": "critical"}}]}),
            )
            .await,
        );
        assert!(
            m.starts_with("rules[1].settings.severity: \"critical\" is not a severity"),
            "{m}"
        );
        let many: Vec<Value> = (0..51).map(|_| json!({"kind": "alert_drop"})).collect();
        let m = invalid(
            t.api(
                "/alert/pipeline/upsert",
                json!({"integration_id": id, "rules": many}),
            )
            .await,
        );
        assert_eq!(m, "rules: too many rules (51; at most 50)");
        let m = invalid(
            t.api(
                "/alert/pipeline/upsert",
                json!({"integration_id": id, "rules": [{"kind": "alert_drop",
                    "if": [{"key": "title", "oper": "IN", "vals": ["/(/"]}]}]}),
            )
            .await,
        );
        assert!(
            m.starts_with("rules[0].if[0].vals[0]: invalid regular expression"),
            "{m}"
        );
        let m = invalid(
            t.api(
                "/alert/pipeline/upsert",
                json!({"integration_id": id, "rules": [{"kind": "route_it"}]}),
            )
            .await,
        );
        assert!(
            m.starts_with("rules[0].kind: \"route_it\" is not a rule kind"),
            "{m}"
        );
        let (status, body) = t
            .api(
                "/alert/pipeline/upsert",
                json!({"integration_id": 987_654, "rules": []}),
            )
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("ResourceNotFound"))
        );
        let info = ok(t
            .api("/alert/pipeline/info", json!({"integration_id": id}))
            .await);
        assert_eq!(info["rules"], json!([]));

        // Title from the labels, severity raised for one host, test events dropped.
        let saved = ok(t
            .api(
                "/alert/pipeline/upsert",
                json!({"integration_id": id, "rules": [
                    {"kind": "title_reset", "if": [{"key": "labels.ident", "oper": "IN", "vals": ["*"]}],
                     "settings": {"title": TITLE}},
                    {"kind": "severity_reset", "if": [{"key": "labels.ident", "oper": "IN", "vals": ["demo-01"]}],
                     "settings": {"severity": "Critical"}},
                    {"id": "no-tests", "kind": "alert_drop",
                     "if": [{"key": "labels.env", "oper": "IN", "vals": ["test"]}]},
                ]}),
            )
            .await);
        let rules = saved["rules"].as_array().unwrap().clone();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0]["kind"], "title_reset");
        assert_eq!(rules[1]["settings"], json!({"severity": "Critical"}));
        assert_eq!(rules[2]["id"], "no-tests");
        let info = ok(t
            .api("/alert/pipeline/info", json!({"integration_id": id}))
            .await);
        assert_eq!(info["rules"], json!(rules));
        let listed = ok(t.api("/alert/pipeline/list", json!({})).await);
        assert!(
            listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["integration_id"] == id && i["rules"] == json!(rules)),
            "{listed}"
        );

        // ING-081 (the Nightingale example) and ING-083 reach the alert and its incident.
        push(
            &t,
            json!({"title": "hm-test-alert-rule-name / Cluster-01 - demo-01", "event_status": "Info",
                   "alert_key": "k1", "labels": {"ident": "demo-01", "trigger_value": "29.27852"}}),
        )
        .await;
        let alerts = t.alerts().await;
        let a = alert(&alerts, "k1").unwrap();
        assert_eq!(a["title"], "demo-01 cpu idle 29.27852");
        assert_eq!(a["title_rule"], TITLE);
        assert_eq!(a["alert_severity"], "Critical");
        let incidents = t.incidents().await;
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0]["title"], "demo-01 cpu idle 29.27852");
        assert_eq!(incidents[0]["incident_severity"], "Critical");

        // ING-084: a dropped event leaves no alert; its outcome says why (channel 0).
        let dropped = push(
            &t,
            json!({"title": "a test", "event_status": "Critical", "alert_key": "k2",
                   "labels": {"env": "test"}}),
        )
        .await;
        assert!(alert(&t.alerts().await, "k2").is_none());
        assert_eq!(t.incidents().await.len(), 1);
        assert_eq!(
            outcomes(&t, &dropped).await,
            vec![(0, "dropped_by_pipeline".to_string(), "no-tests".to_string())]
        );
        let by_outcome = ok(t
            .api(
                "/alert-event/outcome/list",
                json!({"outcomes": "dropped_by_pipeline"}),
            )
            .await);
        assert_eq!(by_outcome["total"], 1, "{by_outcome}");

        // ING-086: with a drop of everything, a recovery still resolves its alert, while a
        // new trigger is dropped.
        ok(t.api(
            "/alert/pipeline/upsert",
            json!({"integration_id": id, "rules": [{"id": "all", "kind": "alert_drop"}]}),
        )
        .await);
        let recovery = push(&t, json!({"event_status": "Ok", "alert_key": "k1"})).await;
        let o = outcomes(&t, &recovery).await;
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].1, "resolved");
        assert_eq!(
            alert(&t.alerts().await, "k1").unwrap()["alert_status"],
            "Ok"
        );
        let again = push(
            &t,
            json!({"title": "new", "event_status": "Warning", "alert_key": "k3"}),
        )
        .await;
        assert_eq!(
            outcomes(&t, &again).await,
            vec![(0, "dropped_by_pipeline".to_string(), "all".to_string())]
        );
        assert!(alert(&t.alerts().await, "k3").is_none());
        t.stop().await;
    }
);

// spec: ING-085, ING-262
on_both_backends!(
    pipeline_inhibits_events_while_a_related_alert_is_active,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let id = default_integration(&t).await;
        ok(t.api(
            "/alert/pipeline/upsert",
            json!({"integration_id": id, "rules": [
                {"id": "quiet", "kind": "alert_inhibit",
                 "if": [{"key": "severity", "oper": "IN", "vals": ["Warning", "Info"]}],
                 "settings": {"source_filters": [{"key": "severity", "oper": "IN", "vals": ["Critical"]}],
                              "equals": ["labels.host"]}}]}),
        )
        .await);
        push(
            &t,
            json!({"title": "host down", "event_status": "Critical", "alert_key": "down",
                   "labels": {"host": "h1"}}),
        )
        .await;
        let same_host = push(
            &t,
            json!({"title": "disk slow", "event_status": "Warning", "alert_key": "disk",
                   "labels": {"host": "h1"}}),
        )
        .await;
        assert_eq!(
            outcomes(&t, &same_host).await,
            vec![(0, "inhibited_by_pipeline".to_string(), "quiet".to_string())]
        );
        let other_host = push(
            &t,
            json!({"title": "disk slow", "event_status": "Warning", "alert_key": "disk2",
                   "labels": {"host": "h2"}}),
        )
        .await;
        assert_eq!(outcomes(&t, &other_host).await[0].1, "new_alert");
        // Once the source recovers, nothing inhibits any more.
        push(&t, json!({"event_status": "Ok", "alert_key": "down"})).await;
        let later = push(
            &t,
            json!({"title": "disk slow", "event_status": "Warning", "alert_key": "disk",
                   "labels": {"host": "h1"}}),
        )
        .await;
        assert_eq!(outcomes(&t, &later).await[0].1, "new_alert");
        let alerts = t.alerts().await;
        let keys: Vec<&str> = alerts
            .iter()
            .map(|a| a["alert_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        t.stop().await;
    }
);

/// Invites a member with a new role of `points` and gives them an APP key (invited members
/// have no password; the key goes in through a second handle on the database, as
/// tests/permissions.rs does).
async fn member_with(t: &TestServer, name: &str, points: Value) -> String {
    let role = ok(t
        .api(
            "/role/upsert",
            json!({"role_name": name, "permissions": points}),
        )
        .await)["role_id"]
        .as_i64()
        .unwrap();
    let email = format!("{}@example.com", name.replace(' ', "-").to_lowercase());
    let id = ok(t
        .api(
            "/member/invite",
            json!({"members": [{"email": email, "role_ids": [role]}]}),
        )
        .await)["items"][0]["member_id"]
        .as_i64()
        .unwrap();
    let url = common::test_config(t.dir.path(), &t.database_url).effective_database_url();
    let store = klaxon_store::Store::connect(&url, klaxon_store::StoreOptions::default())
        .await
        .unwrap();
    let account_id = store.app_key(&t.app_key).await.unwrap().unwrap().account_id;
    let key = format!("{:0>32}", format!("k{id}"));
    store
        .add_app_key(account_id, id, "test", &key, common::now_secs() * 1000)
        .await
        .unwrap()
        .unwrap();
    key
}

async fn call(t: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = t
        .http
        .post(format!("{}{path}?app_key={key}", t.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn denied((status, body): (u16, Value)) -> String {
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("AccessDenied")),
        "{body}"
    );
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

// spec: RSP-521, RSP-527 — saving a pipeline is configuring its integration: Channels Manage
// for a dedicated one, Integrations Manage for a shared one; either Read point may look.
on_both_backends!(
    pipeline_permissions_follow_the_integration_kind,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let dedicated = default_integration(&t).await;
        let ch = ok(t
            .api("/channel/create", json!({"channel_name": "web"}))
            .await)["channel_id"]
            .as_i64()
            .unwrap();
        let shared = ok(t
            .api(
                "/integration/create",
                json!({"integration_name": "s", "type": "standard", "kind": "shared",
                       "default_channel_ids": [ch]}),
            )
            .await)["integration_id"]
            .as_i64()
            .unwrap();
        let keeper = member_with(
            &t,
            "Channel keepers",
            json!(["channels_read", "channels_manage"]),
        )
        .await;
        let integrator = member_with(&t, "Integrators", json!(["integrations_manage"])).await;
        let rules = |id: i64| json!({"integration_id": id, "rules": [{"kind": "alert_drop"}]});

        ok(call(&t, &keeper, "/alert/pipeline/upsert", rules(dedicated)).await);
        let m = denied(call(&t, &keeper, "/alert/pipeline/upsert", rules(shared)).await);
        assert!(m.contains("Integrations Manage"), "{m}");
        ok(call(&t, &integrator, "/alert/pipeline/upsert", rules(shared)).await);
        let m = denied(call(&t, &integrator, "/alert/pipeline/upsert", rules(dedicated)).await);
        assert!(m.contains("Channels Manage"), "{m}");
        for key in [&keeper, &integrator] {
            for id in [dedicated, shared] {
                let info = ok(call(
                    &t,
                    key,
                    "/alert/pipeline/info",
                    json!({"integration_id": id}),
                )
                .await);
                assert_eq!(info["rules"][0]["kind"], "alert_drop");
            }
        }
        t.stop().await;
    }
);
