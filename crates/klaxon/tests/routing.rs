//! Shared integrations and their routes end to end (ingest.md §2.8, §1.5.3, ING-010,
//! ING-262 `no_route`; openapi-compat.md 2.6, 2.6.1): creating a shared integration with its
//! default route, saving versions under the optimistic lock, pushing events and seeing them
//! reach the right channels, recoveries, no-route outcomes, history, rollback, diff and
//! preview. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

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

async fn new_channel(t: &TestServer, name: &str) -> i64 {
    ok(t.api("/channel/create", json!({"channel_name": name}))
        .await)["channel_id"]
        .as_i64()
        .unwrap()
}

/// Creates a shared integration of `type` with the default route `defaults`; returns (id, key).
async fn shared(t: &TestServer, kind: &str, defaults: &[i64]) -> (i64, String) {
    let data = ok(t
        .api(
            "/integration/create",
            json!({"integration_name": format!("shared {kind}"), "type": kind, "kind": "shared",
                   "default_channel_ids": defaults}),
        )
        .await);
    (
        data["integration_id"].as_i64().unwrap(),
        data["integration_key"].as_str().unwrap().to_string(),
    )
}

async fn push_to(t: &TestServer, key: &str, body: Value) -> (u16, Value) {
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
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Pushes one event, waits until it is processed, returns the request id.
async fn push(t: &TestServer, key: &str, body: Value) -> String {
    let (status, resp) = push_to(t, key, body).await;
    assert_eq!(status, 200, "{resp}");
    t.drained().await;
    resp["request_id"].as_str().unwrap().to_string()
}

/// The alert keys in channel `ch` (`active`: only those not recovered).
async fn keys_in(t: &TestServer, ch: i64, active: Option<bool>) -> Vec<String> {
    let now = now_secs();
    let mut body = json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 100,
                          "channel_ids": [ch]});
    if let Some(a) = active {
        body["is_active"] = json!(a);
    }
    let mut keys: Vec<String> = ok(t.api("/alert/list", body).await)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alert_key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

/// (channel, outcome) of the events of one request, sorted.
async fn outcomes(t: &TestServer, request_id: &str) -> Vec<(i64, String)> {
    let items = ok(t
        .api(
            "/alert-event/outcome/list",
            json!({"request_id": request_id}),
        )
        .await)["items"]
        .as_array()
        .unwrap()
        .clone();
    let mut out: Vec<(i64, String)> = items
        .iter()
        .map(|o| {
            (
                o["channel_id"].as_i64().unwrap(),
                o["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn case(key: &str, val: &str, channels: &[i64], fallthrough: bool) -> Value {
    json!({"if": [{"key": key, "oper": "IN", "vals": [val]}], "channel_ids": channels,
           "fallthrough": fallthrough})
}

fn event(key: &str, status: &str, group: &str, env: &str) -> Value {
    json!({"title": format!("event {key}"), "event_status": status, "alert_key": key,
           "labels": {"group_name": group, "env": env}})
}

// spec: ING-091, ING-092, ING-093, ING-094, ING-095, ING-096, ING-010, ING-262, Q-10, Q-12
on_both_backends!(
    shared_integration_routes_events_by_the_latest_version,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let a = new_channel(&t, "A").await;
        let b = new_channel(&t, "B").await;
        let c = new_channel(&t, "C").await;
        let d = new_channel(&t, "D").await;
        let me = ok(t.api("/member/info", json!({})).await)["member_id"].clone();

        // ING-096: a shared integration needs a default route of existing channels.
        let base = json!({"integration_name": "s", "type": "standard", "kind": "shared"});
        let mut without = base.clone();
        without["default_channel_ids"] = json!([]);
        let m = err(
            t.api("/integration/create", without).await,
            "InvalidParameter",
        );
        assert!(m.starts_with("default_channel_ids is required"), "{m}");
        let mut unknown = base.clone();
        unknown["default_channel_ids"] = json!([d, 999_999]);
        let m = err(
            t.api("/integration/create", unknown).await,
            "InvalidParameter",
        );
        assert_eq!(m, "default_channel_ids: channel 999999 does not exist");
        let mut with_channel = base.clone();
        with_channel["default_channel_ids"] = json!([d]);
        with_channel["channel_id"] = json!(a);
        let m = err(
            t.api("/integration/create", with_channel).await,
            "InvalidParameter",
        );
        assert!(m.starts_with("channel_id is not allowed"), "{m}");
        let (id, key) = shared(&t, "standard", &[d]).await;
        let listed = ok(t
            .api("/integration/info", json!({"integration_id": id}))
            .await);
        assert_eq!(listed["kind"], "shared");
        assert_eq!(listed["channel_id"], 0);

        // Version 1 holds the default route, written with the integration.
        let info = ok(t.api("/route/info", json!({"integration_id": id})).await);
        assert_eq!(info["version"], 1);
        assert_eq!(info["cases"], json!([]));
        assert_eq!(info["default"]["channel_ids"], json!([d]));
        assert_eq!(info["status"], "enabled");
        assert_eq!(info["creator_id"], me);

        // The optimistic lock: a save must be based on the latest version.
        let m = err(
            t.api(
                "/route/upsert",
                json!({"integration_id": id, "version": 0, "default": {"channel_ids": [d]}}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.starts_with("route version conflict"), "{m}");

        // Checks name the bad part in wire terms (ING-096, §4.5, openapi-compat 5.2 #17).
        let bad = |cases: Value| json!({"integration_id": id, "version": 1, "cases": cases});
        let m = err(
            t.api("/route/upsert", bad(json!([{"if": [], "channel_ids": []}])))
                .await,
            "InvalidParameter",
        );
        assert_eq!(m, "cases[0].channel_ids: at least one channel is required");
        let m = err(
            t.api(
                "/route/upsert",
                bad(json!([
                    case("severity", "Critical", &[a], false),
                    case("title", "/(?<=x)y/", &[b], false)
                ])),
            )
            .await,
            "InvalidParameter",
        );
        assert!(
            m.starts_with("cases[1].if[0].vals[0]: invalid regular expression"),
            "{m}"
        );
        let m = err(
            t.api(
                "/route/upsert",
                bad(
                    json!([{"if": [], "channel_ids": [a], "routing_mode": "name_mapping",
                            "name_mapping_label": "team"}]),
                ),
            )
            .await,
            "InvalidParameter",
        );
        assert_eq!(
            m,
            "cases[0].routing_mode name_mapping is not supported (only standard)"
        );
        let m = err(
            t.api(
                "/route/upsert",
                bad(json!([case("severity", "Info", &[a, 999_999], false)])),
            )
            .await,
            "InvalidParameter",
        );
        assert_eq!(m, "cases[0].channel_ids: channel 999999 does not exist");
        // Nothing was saved by the refused calls.
        let info = ok(t.api("/route/info", json!({"integration_id": id})).await);
        assert_eq!(info["version"], 1);

        // ING-092's configuration as version 2.
        let saved = ok(t
            .api(
                "/route/upsert",
                json!({"integration_id": id, "version": 1,
                       "cases": [case("labels.group_name", "db", &[a], true),
                                 case("severity", "Critical", &[b], false),
                                 case("labels.env", "prod", &[c], true)],
                       "sections": [{"name": "Databases", "position": 0}],
                       "default": {"channel_ids": [d]}}),
            )
            .await);
        assert_eq!(saved["version"], 2);

        // ING-092's events: each reaches exactly its channels, once per channel.
        let r1 = push(&t, &key, event("e1", "Critical", "db", "prod")).await;
        push(&t, &key, event("e2", "Warning", "db", "prod")).await;
        push(&t, &key, event("e3", "Critical", "web", "prod")).await;
        push(&t, &key, event("e4", "Warning", "web", "prod")).await;
        push(&t, &key, event("e5", "Warning", "web", "dev")).await;
        assert_eq!(keys_in(&t, a, None).await, ["e1", "e2"]);
        assert_eq!(keys_in(&t, b, None).await, ["e1", "e3"]);
        assert_eq!(keys_in(&t, c, None).await, ["e2", "e4"]);
        assert_eq!(keys_in(&t, d, None).await, ["e5"]);
        assert_eq!(
            outcomes(&t, &r1).await,
            [(a, "new_alert".to_string()), (b, "new_alert".to_string())]
        );

        // ING-093: after R1 is removed, e1's recovery still reaches A (which holds its
        // alert) besides B (holder) and C (R3 still matches).
        let saved = ok(t
            .api(
                "/route/upsert",
                json!({"integration_id": id, "version": 2,
                       "cases": [case("severity", "Critical", &[b], false),
                                 case("labels.env", "prod", &[c], true)],
                       "default": {"channel_ids": [d]}}),
            )
            .await);
        assert_eq!(saved["version"], 3);
        let rec = push(&t, &key, event("e1", "Ok", "db", "prod")).await;
        assert_eq!(
            outcomes(&t, &rec).await,
            [
                (a, "resolved".to_string()),
                (b, "resolved".to_string()),
                (c, "ok_without_alert".to_string())
            ]
        );
        assert!(!keys_in(&t, a, Some(true)).await.contains(&"e1".to_string()));
        assert!(!keys_in(&t, b, Some(true)).await.contains(&"e1".to_string()));

        // ING-094: targets exist, but none applies to this event: accepted, then dropped
        // with outcome no_route (channel 0), filterable by outcome.
        ok(t.api(
            "/route/upsert",
            json!({"integration_id": id, "version": 3,
                   "cases": [case("severity", "Critical", &[b], false)]}),
        )
        .await);
        let lost = push(&t, &key, event("e6", "Warning", "web", "dev")).await;
        assert_eq!(outcomes(&t, &lost).await, [(0, "no_route".to_string())]);
        let by_outcome = ok(t
            .api(
                "/alert-event/outcome/list",
                json!({"outcomes": "no_route", "integration_ids": [id]}),
            )
            .await);
        assert_eq!(by_outcome["total"], 1);
        assert_eq!(by_outcome["items"][0]["alert_key"], "e6");

        // ING-010: no channel anywhere → every push is refused, nothing is queued.
        ok(t.api(
            "/route/upsert",
            json!({"integration_id": id, "version": 4, "cases": [], "default": {"channel_ids": []}}),
        )
        .await);
        let (status, body) = push_to(&t, &key, event("e7", "Warning", "web", "dev")).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "InvalidParameter");
        assert_eq!(
            body["error"]["message"],
            "no route configured for this integration"
        );

        // ING-095: history, newest first; every version kept.
        let h = ok(t
            .api("/route/history/list", json!({"integration_id": id}))
            .await);
        assert_eq!(h["total"], 5);
        let versions: Vec<i64> = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, [5, 4, 3, 2, 1]);
        assert_eq!(h["items"][3]["cases"].as_array().unwrap().len(), 3);
        assert_eq!(
            h["items"][3]["sections"],
            json!([{"name": "Databases", "position": 0}])
        );
        assert_eq!(h["items"][0]["updated_by"], me);
        let page = ok(t
            .api(
                "/route/history/list",
                json!({"integration_id": id, "p": 2, "limit": 2, "asc": true}),
            )
            .await);
        assert_eq!(page["items"][0]["version"], 3);
        assert_eq!(page["has_next_page"], true);

        // Rollback copies version 2 into a new version 6; a stale base is refused.
        let m = err(
            t.api(
                "/route/rollback",
                json!({"integration_id": id, "version": 2, "base_version": 4}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.starts_with("route version conflict"), "{m}");
        let (s, b404) = t
            .api(
                "/route/rollback",
                json!({"integration_id": id, "version": 42}),
            )
            .await;
        assert_eq!(
            (s, b404["error"]["code"].as_str()),
            (400, Some("ResourceNotFound"))
        );
        let back = ok(t
            .api(
                "/route/rollback",
                json!({"integration_id": id, "version": 2, "base_version": 5}),
            )
            .await);
        assert_eq!(back["version"], 6);
        assert_eq!(back["rolled_back_from"], 2);
        let info = ok(t.api("/route/info", json!({"integration_id": id})).await);
        assert_eq!(info["version"], 6);
        assert_eq!(info["cases"], h["items"][3]["cases"]);
        assert_eq!(info["created_at"], h["items"][4]["updated_at"]);
        // Events are routed with the latest version again.
        push(&t, &key, event("e8", "Warning", "db", "dev")).await;
        assert!(keys_in(&t, a, None).await.contains(&"e8".to_string()));

        // A structured diff between two versions (Klaxon extension).
        let d56 = ok(t
            .api(
                "/route/diff",
                json!({"integration_id": id, "from_version": 5, "to_version": 6}),
            )
            .await);
        assert_eq!(d56["rules"].as_array().unwrap().len(), 3);
        assert_eq!(d56["rules"][0]["change"], "added");
        assert_eq!(d56["default_channel_ids"]["added"], json!([d]));
        assert_eq!(d56["sections_changed"], true);
        let d23 = ok(t
            .api(
                "/route/diff",
                json!({"integration_id": id, "to_version": 3}),
            )
            .await);
        assert_eq!(d23["from_version"], 2);
        // Cases without ids inherit the ids of the rules at their positions, so the two
        // remaining cases show as changed and the third place as removed.
        let kinds: Vec<&str> = d23["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["change"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["removed", "changed", "changed"]);

        // Concurrent editors: the second save based on version 6 is refused.
        let save = json!({"integration_id": id, "version": 6, "default": {"channel_ids": [d]}});
        ok(t.api("/route/upsert", save.clone()).await);
        let m = err(t.api("/route/upsert", save).await, "InvalidParameter");
        assert!(m.starts_with("route version conflict"), "{m}");

        // /route/list finds it; a dedicated integration has no routes.
        let list = ok(t.api("/route/list", json!({"integration_ids": [id]})).await);
        assert_eq!(list["items"][0]["version"], 7);
        let all = ok(t.api("/route/list", json!({})).await);
        assert_eq!(all["total"], 1);
        let dedicated = ok(t
            .api("/integration/list", json!({"kinds": ["dedicated"]}))
            .await)["items"][0]["integration_id"]
            .clone();
        let m = err(
            t.api("/route/info", json!({"integration_id": dedicated}))
                .await,
            "InvalidParameter",
        );
        assert!(m.contains("is not a shared alert integration"), "{m}");
        t.stop().await;
    }
);

// spec: ING-090 — a dedicated integration's events go to its own channel, never routed.
on_both_backends!(
    dedicated_integrations_are_not_routed,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let own = ok(t.api("/channel/list", json!({})).await)["items"][0]["channel_id"]
            .as_i64()
            .unwrap();
        let other = new_channel(&t, "other").await;
        let (_, _) = shared(&t, "standard", &[other]).await;
        let (s, _) = t
            .push(json!({"title": "x", "event_status": "Warning", "alert_key": "d1"}))
            .await;
        assert_eq!(s, 200);
        t.drained().await;
        assert_eq!(keys_in(&t, own, None).await, ["d1"]);
        assert!(keys_in(&t, other, None).await.is_empty());
        t.stop().await;
    }
);

/// Pushes one Nightingale event with `channel_ids=ids`.
async fn n9e(t: &TestServer, key: &str, ids: &str, hash: &str) -> (u16, Value) {
    let url = format!(
        "{}/event/push/alert/n9e?integration_key={key}&channel_ids={ids}",
        t.base
    );
    let body = json!([{"rule_name": "cpu high", "severity": 2, "hash": hash,
                       "tags": ["app=shop"], "is_recovered": false}]);
    let resp = t.http.post(url).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().await.unwrap_or(Value::Null))
}

// spec: ING-097, Q-26, ING-010 — Nightingale's channel_ids picks channels directly.
on_both_backends!(
    nightingale_channel_ids_target_channels_directly,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let a = new_channel(&t, "A").await;
        let d = new_channel(&t, "D").await;
        let (id, key) = shared(&t, "n9e", &[d]).await;
        // A valid id (and an unknown one, ignored): exactly that channel, no routing.
        let (s, b) = n9e(&t, &key, "999999,x", "n1").await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = n9e(&t, &key, &format!("{a},999999"), "n2").await;
        assert_eq!(s, 200, "{b}");
        t.drained().await;
        // No valid id: routed normally (default route D).
        assert_eq!(keys_in(&t, d, None).await, ["n1"]);
        assert_eq!(keys_in(&t, a, None).await, ["n2"]);
        // channel_ids never becomes a label.
        let now = now_secs();
        let alerts = ok(t
            .api(
                "/alert/list",
                json!({"start_time": now - 3600, "end_time": now + 3600, "channel_ids": [a]}),
            )
            .await);
        assert!(alerts["items"][0]["labels"].get("channel_ids").is_none());

        // ING-010's exception: without targets, only requests naming a valid channel pass.
        ok(t.api(
            "/route/upsert",
            json!({"integration_id": id, "version": 1, "default": {"channel_ids": []}}),
        )
        .await);
        let (s, b) = n9e(&t, &key, "999999", "n3").await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(
            b["error"]["message"],
            "no route configured for this integration"
        );
        let (s, b) = n9e(&t, &key, &a.to_string(), "n4").await;
        assert_eq!(s, 200, "{b}");
        t.drained().await;
        assert_eq!(keys_in(&t, a, None).await, ["n2", "n4"]);
        t.stop().await;
    }
);

// spec: §1.5.3 (multi-group rules as consecutive cases, sections), ING-091 (preview)
on_both_backends!(
    cases_sharing_an_id_form_one_rule_and_preview_explains,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let a = new_channel(&t, "A").await;
        let b = new_channel(&t, "B").await;
        let d = new_channel(&t, "D").await;
        let (id, key) = shared(&t, "standard", &[d]).await;
        let multi = |val: &str| {
            json!({"id": "hot", "name": "Hot", "if": [{"key": "labels.env", "oper": "IN",
                   "vals": [val]}], "channel_ids": [a], "fallthrough": false})
        };
        // Cases repeating an id must agree on targets and flow.
        let mut differs = multi("stage");
        differs["channel_ids"] = json!([b]);
        let m = err(
            t.api(
                "/route/upsert",
                json!({"integration_id": id, "version": 1, "cases": [multi("prod"), differs]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(
            m.starts_with("cases[1].channel_ids: the case repeats the id"),
            "{m}"
        );
        ok(t.api(
            "/route/upsert",
            json!({"integration_id": id, "version": 1,
                   "cases": [multi("prod"), multi("stage"), case("severity", "Info", &[b], true)],
                   "sections": [{"name": "Hot", "position": 0}, {"name": "Rest", "position": 2}],
                   "default": {"channel_ids": [d]}}),
        )
        .await);
        // Read back: the same cases and case positions (one rule of two groups in the model).
        let info = ok(t.api("/route/info", json!({"integration_id": id})).await);
        let cases = info["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[1]["id"], "hot");
        assert_eq!(cases[1]["if"][0]["vals"], json!(["stage"]));
        assert_eq!(cases[2]["fallthrough"], true);
        assert_eq!(
            info["sections"],
            json!([{"name": "Hot", "position": 0}, {"name": "Rest", "position": 2}])
        );
        let m = err(
            t.api(
                "/route/upsert",
                json!({"integration_id": id, "version": 2, "cases": info["cases"],
                       "sections": [{"name": "Mid", "position": 1}]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.contains("falls inside a rule"), "{m}");

        // Preview of an event against the saved routes: the second group of "hot" matches
        // and stops; nothing is stored.
        let p = ok(t
            .api(
                "/route/preview",
                json!({"integration_id": id,
                       "event": {"title": "t", "severity": "Info", "labels": {"env": "stage"}}}),
            )
            .await);
        assert_eq!(p["items"][0]["matched_cases"], json!(["1"]));
        assert_eq!(p["items"][0]["channel_ids"], json!([a]));
        assert_eq!(p["items"][0]["by_default"], false);
        // …and stored alerts against an unsaved route (Terraform's request shape).
        push(
            &t,
            &key,
            json!({"title": "x", "event_status": "Warning", "alert_key": "k1",
                   "labels": {"env": "dev"}}),
        )
        .await;
        let alert_id = ok(t
            .api(
                "/alert/list",
                json!({"start_time": now_secs() - 3600, "end_time": now_secs() + 3600}),
            )
            .await)["items"][0]["alert_id"]
            .clone();
        let p = ok(t
            .api(
                "/route/preview",
                json!({"alert_ids": [alert_id],
                       "route": {"cases": [case("labels.env", "dev", &[b], true)],
                                 "default": {"channel_ids": [d]}}}),
            )
            .await);
        assert_eq!(p["items"][0]["alert_id"], alert_id);
        assert_eq!(p["items"][0]["matched_cases"], json!(["0"]));
        assert_eq!(p["items"][0]["channel_ids"], json!([b]));
        // Without alert ids or event: the integration's recent alerts.
        let p = ok(t.api("/route/preview", json!({"integration_id": id})).await);
        assert_eq!(p["items"].as_array().unwrap().len(), 1);
        assert_eq!(p["items"][0]["by_default"], true);
        assert_eq!(p["items"][0]["channel_ids"], json!([d]));
        let info_after = ok(t.api("/route/info", json!({"integration_id": id})).await);
        assert_eq!(info_after["version"], 2, "preview saves nothing");
        t.stop().await;
    }
);
