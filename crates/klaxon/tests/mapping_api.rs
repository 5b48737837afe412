//! Label mapping services over HTTP (ingest.md ING-063, ING-072…075; openapi-compat.md
//! `/enrichment/mapping/api/*`): the service object and its checks on save, map rules with
//! `source = api`, and the calls the worker makes for pushed events, against a local fake
//! mapping service that records every request. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use common::TestServer;
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

// ---- the fake mapping service ----

#[derive(Debug, Clone)]
struct Seen {
    /// Path and query as received (still percent-encoded).
    target: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    base: Arc<Mutex<String>>,
}

/// The label `mode` of the event says how to answer.
async fn answer(State(fake): State<Fake>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mode = body["event"]["labels"]["mode"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let key = body["event"]["alert_key"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let earlier = {
        let mut seen = fake.seen.lock().unwrap();
        let earlier = seen
            .iter()
            .filter(|s| s.body["event"]["alert_key"] == key.as_str())
            .count();
        seen.push(Seen {
            target: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: body.clone(),
        });
        earlier
    };
    let labels = json!({"result_labels": {
        "owner": "dba", "tier": "", "n": 3, "unlisted": "x", "env": "staging"}});
    let json_reply = |v: Value| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response()
    };
    match mode.as_str() {
        "ok" => json_reply(labels),
        "none" => StatusCode::NOT_FOUND.into_response(),
        "bad" => StatusCode::BAD_REQUEST.into_response(),
        "boom" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "flaky" if earlier == 0 => StatusCode::BAD_GATEWAY.into_response(),
        "flaky" => json_reply(labels),
        "slow" => {
            // The fake service is slow; the caller's 1 s timeout is what ends the request.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            json_reply(labels)
        }
        "html" => (StatusCode::OK, "<html>nope</html>").into_response(),
        "big" => json_reply(json!({
            "result_labels": {"owner": "dba"},
            "pad": "x".repeat(1024 * 1024),
        })),
        "redirect" => {
            let to = format!("{}/elsewhere", fake.base.lock().unwrap());
            (StatusCode::FOUND, [(header::LOCATION, to)], "").into_response()
        }
        _ => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

impl Fake {
    async fn start() -> Fake {
        let fake = Fake::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *fake.base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        fake
    }

    fn base(&self) -> String {
        self.base.lock().unwrap().clone()
    }

    fn seen_for(&self, alert_key: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.body["event"]["alert_key"] == alert_key)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn services(t: &TestServer) -> Value {
    ok(t.api("/enrichment/mapping/api/list", json!({})).await)
}

/// Pushes one event per `(alert_key, mode)`; returns request ids by alert key.
async fn push_all(t: &TestServer, modes: &[(&str, &str)]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (key, mode) in modes {
        let (status, body) = t
            .push(json!({
                "title": format!("disk full on {key}"),
                "description": "disk / is 97% full",
                "event_status": "Warning",
                "alert_key": key,
                "labels": {"mode": mode, "host": "web 1/a", "q": "x&y=z", "env": "prod"},
                "images": [{"src": "https://img.example/1.png", "alt": "graph"}],
            }))
            .await;
        assert_eq!(status, 200, "{body}");
        out.insert(
            key.to_string(),
            body["request_id"].as_str().unwrap().to_string(),
        );
    }
    out
}

async fn outcome(t: &TestServer, request_id: &str) -> Value {
    let list = ok(t
        .api(
            "/alert-event/outcome/list",
            json!({"request_id": request_id}),
        )
        .await);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    list["items"][0].clone()
}

fn labels_of(alerts: &[Value], key: &str) -> Value {
    alerts
        .iter()
        .find(|a| a["alert_key"] == key)
        .unwrap_or_else(|| panic!("no alert {key}"))["labels"]
        .clone()
}

on_both_backends!(mapping_services_end_to_end, |url: String| async move {
    let fake = Fake::start().await;
    let mut t = TestServer::start_with(&url, |c| {
        // The fake service listens on loopback, which the address guard refuses otherwise.
        c.notify.allow_private_targets = true;
    })
    .await;
    let base = fake.base();
    let good = json!({
        "api_name": "CMDB",
        "url": format!("{base}/host/{{{{.Labels.host}}}}?q={{{{.Labels.q}}}}&sev={{{{.EventSeverity}}}}"),
        "headers": {"X-Custom-Token": "s3cret", "X-Team": "ops"},
        "timeout": 1,
        "retry_count": 1,
    });
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };

    // spec: ING-074 — each refusal names the field and changes nothing.
    let refusals = [
        (
            with("headers", json!({"authorization": "Bearer x"})),
            "headers.authorization: this header may not be set",
        ),
        (
            with("headers", json!({"X-Forwarded-For": "1.2.3.4"})),
            "headers.X-Forwarded-For: this header may not be set",
        ),
        (
            with("headers", json!({"X-Custom-A": "a\r\nHost: evil"})),
            "headers.X-Custom-A: CR and LF are not allowed",
        ),
        (
            with("headers", json!({"X-Custom-A": "v".repeat(4097)})),
            "headers.X-Custom-A: the value is longer than 4096 bytes",
        ),
        (
            with("headers", json!({"X-Custom-A": 1})),
            "headers.X-Custom-A must be a string",
        ),
        (with("timeout", json!(4)), "timeout: 1–3 seconds, got 4"),
        (with("timeout", json!(0)), "timeout: 1–3 seconds, got 0"),
        (with("retry_count", json!(2)), "retry_count: 0–1, got 2"),
        (
            with("url", json!("ftp://cmdb.example/{{.Labels.host}}")),
            "url: \"ftp://cmdb.example/sample\" (rendered with a sample event) is not an http or https URL",
        ),
        (with("api_name", json!(" ")), "api_name: 1–100 characters"),
    ];
    for (body, message) in refusals {
        let m = err(
            t.api("/enrichment/mapping/api/create", body).await,
            "InvalidParameter",
        );
        assert_eq!(m, message);
    }
    assert_eq!(services(&t).await["total"], 0);

    // A header name outside X-Custom-/X-Enrich- is saved with a warning.
    let created = ok(t.api("/enrichment/mapping/api/create", good.clone()).await);
    let api_id = created["api_id"].as_str().unwrap().to_string();
    assert_eq!(api_id.len(), 24);
    assert_eq!(
        created["warnings"],
        json!(["headers.X-Team: custom header names should start with X-Custom- or X-Enrich-"])
    );
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["insecure_skip_verify"], false);
    let info = ok(t
        .api("/enrichment/mapping/api/info", json!({"api_id": api_id}))
        .await);
    assert_eq!(info["headers"], good["headers"]);
    assert_eq!(info["timeout"], 1);
    assert_eq!(info["retry_count"], 1);

    // An update with a refused field changes nothing; a good one keeps absent fields.
    err(
        t.api(
            "/enrichment/mapping/api/update",
            json!({"api_id": api_id, "timeout": 9}),
        )
        .await,
        "InvalidParameter",
    );
    let updated = ok(t
        .api(
            "/enrichment/mapping/api/update",
            json!({"api_id": api_id, "description": "hosts"}),
        )
        .await);
    assert_eq!(updated["description"], "hosts");
    assert_eq!(updated["timeout"], 1);
    assert_eq!(updated["url"], info["url"]);
    let m = err(
        t.api(
            "/enrichment/mapping/api/info",
            json!({"api_id": "000000000000000000000000"}),
        )
        .await,
        "ResourceNotFound",
    );
    assert!(m.contains("not found"), "{m}");

    // spec: ING-063 — an api map rule names an existing service and 1–20 result keys.
    let integration = ok(t.api("/integration/list", json!({})).await)["items"][0].clone();
    let iid = integration["integration_id"].as_i64().unwrap();
    let rule = |service: &str| {
        json!({"type": "map", "source": "api", "service_id": service,
               "result_label_keys": ["owner", "tier", "env"]})
    };
    let m = err(
        t.api(
            "/enrichment/upsert",
            json!({"integration_id": iid, "rules": [rule("nope")]}),
        )
        .await,
        "InvalidParameter",
    );
    assert_eq!(m, "rules[0].service_id: mapping service nope not found");
    ok(t.api(
        "/enrichment/upsert",
        json!({"integration_id": iid, "rules": [rule(&api_id)]}),
    )
    .await);

    let modes = [
        ("k-ok", "ok"),
        ("k-none", "none"),
        ("k-bad", "bad"),
        ("k-boom", "boom"),
        ("k-flaky", "flaky"),
        ("k-slow", "slow"),
        ("k-html", "html"),
        ("k-big", "big"),
        ("k-redirect", "redirect"),
    ];
    let requests = push_all(&t, &modes).await;
    t.drained().await;
    let alerts = t.alerts().await;
    let plain = json!({"mode": "", "host": "web 1/a", "q": "x&y=z", "env": "prod"});
    let unenriched = |mode: &str| {
        let mut l = plain.clone();
        l["mode"] = json!(mode);
        l
    };

    // spec: ING-072 — the exact body, the service's headers, JSON content type.
    let seen = fake.seen_for("k-ok");
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.headers["content-type"], "application/json");
    assert_eq!(s.headers["x-custom-token"], "s3cret");
    assert_eq!(s.headers["x-team"], "ops");
    let event = &s.body["event"];
    let channel = integration["channel_id"].as_i64().unwrap_or(0);
    assert_eq!(
        s.body,
        json!({
            "result_label_keys": ["owner", "tier", "env"],
            "event": {
                "account_id": event["account_id"],
                "channel_id": channel,
                "data_source_id": iid,
                "data_source_type": event["data_source_type"],
                "title": "disk full on k-ok",
                "title_rule": event["title_rule"],
                "description": "disk / is 97% full",
                "alert_key": "k-ok",
                "alert_id": "",
                "event_severity": "Warning",
                "event_status": "Warning",
                "event_time": event["event_time"],
                "labels": unenriched("ok"),
                "images": ["https://img.example/1.png"],
            }
        })
    );
    assert!(event["account_id"].as_i64().unwrap() > 0);
    assert!(event["event_time"].as_i64().unwrap() > 1_600_000_000);
    assert!(event["event_time"].as_i64().unwrap() < 10_000_000_000);
    // spec: ING-075 — substituted values are percent-encoded, the literal text kept.
    assert_eq!(s.target, "/host/web%201%2Fa?q=x%26y%3Dz&sev=Warning");

    // spec: ING-073, ING-065 — only listed keys with non-empty string values; an existing
    // label (env) is kept without override.
    let mut expected = unenriched("ok");
    expected["owner"] = json!("dba");
    assert_eq!(labels_of(&alerts, "k-ok"), expected);
    assert_eq!(outcome(&t, &requests["k-ok"]).await["enrich_error"], false);

    // spec: ING-072 — a dedicated integration's event whose alert is active carries its id.
    assert!(channel > 0, "the bootstrap integration is dedicated");
    let alert_id = alerts.iter().find(|a| a["alert_key"] == "k-ok").unwrap()["alert_id"]
        .as_str()
        .unwrap()
        .to_string();
    push_all(&t, &[("k-ok", "ok")]).await;
    t.drained().await;
    let seen = fake.seen_for("k-ok");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body["event"]["alert_id"], alert_id.as_str());

    // spec: ING-073 — 404 is no result and no failure.
    assert_eq!(labels_of(&alerts, "k-none"), unenriched("none"));
    assert_eq!(
        outcome(&t, &requests["k-none"]).await["enrich_error"],
        false
    );
    assert_eq!(fake.seen_for("k-none").len(), 1);

    // spec: ING-073 — 400 fails without retry; 5xx is retried once, then fails.
    assert_eq!(fake.seen_for("k-bad").len(), 1);
    assert_eq!(fake.seen_for("k-boom").len(), 2);
    for key in ["k-bad", "k-boom"] {
        let o = outcome(&t, &requests[key]).await;
        assert_eq!(o["enrich_error"], true, "{key}");
        assert_eq!(o["outcome"], "new_alert", "{key}: the event goes on");
    }
    assert_eq!(labels_of(&alerts, "k-boom"), unenriched("boom"));

    // spec: ING-073 — the retry's answer counts.
    assert_eq!(fake.seen_for("k-flaky").len(), 2);
    assert_eq!(labels_of(&alerts, "k-flaky")["owner"], "dba");
    assert_eq!(
        outcome(&t, &requests["k-flaky"]).await["enrich_error"],
        false
    );

    // spec: ING-073 — a timeout is retried, then fails; non-JSON and > 1 MiB bodies fail
    // without retry; a redirect is not followed and fails.
    assert_eq!(fake.seen_for("k-slow").len(), 2);
    assert_eq!(fake.seen_for("k-html").len(), 1);
    assert_eq!(fake.seen_for("k-big").len(), 1);
    assert_eq!(fake.seen_for("k-redirect").len(), 1);
    assert!(!fake.all().iter().any(|s| s.target == "/elsewhere"));
    for key in ["k-slow", "k-html", "k-big", "k-redirect"] {
        let o = outcome(&t, &requests[key]).await;
        assert_eq!(o["enrich_error"], true, "{key}");
        assert!(labels_of(&alerts, key).get("owner").is_none(), "{key}");
    }

    // A service in use cannot be deleted; once no rule names it, it can.
    let m = err(
        t.api("/enrichment/mapping/api/delete", json!({"api_id": api_id}))
            .await,
        "ReferenceExist",
    );
    assert!(m.contains(&iid.to_string()), "{m}");
    ok(t.api(
        "/enrichment/upsert",
        json!({"integration_id": iid, "rules": []}),
    )
    .await);
    ok(
        t.api("/enrichment/mapping/api/delete", json!({"api_id": api_id}))
            .await,
    );
    assert_eq!(services(&t).await["total"], 0);
    t.stop().await;
});

on_both_backends!(private_targets_are_refused, |url: String| async move {
    let fake = Fake::start().await;
    // Default configuration: private addresses are refused (the webhook guard).
    let mut t = TestServer::start(&url).await;
    let base = fake.base();
    let created = ok(t
        .api(
            "/enrichment/mapping/api/create",
            json!({"api_name": "CMDB", "url": format!("{base}/x"), "timeout": 1}),
        )
        .await);
    let api_id = created["api_id"].as_str().unwrap().to_string();
    assert_eq!(created["retry_count"], 1);
    let iid = ok(t.api("/integration/list", json!({})).await)["items"][0]["integration_id"]
        .as_i64()
        .unwrap();
    ok(t.api(
        "/enrichment/upsert",
        json!({"integration_id": iid, "rules": [{"type": "map", "source": "api",
               "service_id": api_id, "override": true, "result_label_keys": ["env"]}]}),
    )
    .await);
    let requests = push_all(&t, &[("k-private", "ok")]).await;
    t.drained().await;
    // spec: ING-073 — a refused target is a failure; nothing reached the fake service.
    assert!(fake.all().is_empty());
    let o = outcome(&t, &requests["k-private"]).await;
    assert_eq!(o["enrich_error"], true);
    let alerts = t.alerts().await;
    assert_eq!(labels_of(&alerts, "k-private")["env"], "prod");
    t.stop().await;
});

on_both_backends!(override_replaces_labels, |url: String| async move {
    // spec: ING-065 — with override = true the service's value replaces the existing label.
    let fake = Fake::start().await;
    let mut t = TestServer::start_with(&url, |c| c.notify.allow_private_targets = true).await;
    let created = ok(t
        .api(
            "/enrichment/mapping/api/create",
            json!({"api_name": "CMDB", "url": format!("{}/x", fake.base()), "timeout": 1}),
        )
        .await);
    let api_id = created["api_id"].as_str().unwrap().to_string();
    let iid = ok(t.api("/integration/list", json!({})).await)["items"][0]["integration_id"]
        .as_i64()
        .unwrap();
    ok(t.api(
        "/enrichment/upsert",
        json!({"integration_id": iid, "rules": [{"type": "map", "source": "api",
               "service_id": api_id, "override": true, "result_label_keys": ["env"]}]}),
    )
    .await);
    push_all(&t, &[("k-over", "ok")]).await;
    t.drained().await;
    let alerts = t.alerts().await;
    assert_eq!(labels_of(&alerts, "k-over")["env"], "staging");
    t.stop().await;
});

// ---- a mapping service behind TLS with a self-signed certificate ----

/// An HTTPS mapping service whose certificate no client trusts: every request it reads is
/// recorded (as its JSON body) and answered with one result label. Plain HTTP/1.1 over
/// rustls, one request per connection, enough for the caller's POST.
struct TlsFake {
    base: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    _dir: tempfile::TempDir,
}

impl TlsFake {
    async fn start() -> TlsFake {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let (acceptor, _pem) = common::smtp_sink::test_tls(dir.path());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let seen = bodies.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_len, body_len) = loop {
                        let n = tls.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while buf.len() < head_len + body_len {
                        let n = tls.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = serde_json::from_slice(&buf[head_len..head_len + body_len])
                        .unwrap_or(Value::Null);
                    seen.lock().unwrap().push(body);
                    let reply = json!({"result_labels": {"owner": "dba"}}).to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsFake {
            base,
            bodies,
            _dir: dir,
        }
    }

    fn keys(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["event"]["alert_key"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

on_both_backends!(
    insecure_skip_verify_is_the_only_way_to_a_self_signed_service,
    |url: String| async move {
        let fake = TlsFake::start().await;
        let mut t = TestServer::start_with(&url, |c| {
            c.notify.allow_private_targets = true;
        })
        .await;
        // spec: ING-074 — `insecure_skip_verify` defaults to false: the certificate is checked.
        let created = ok(t
            .api(
                "/enrichment/mapping/api/create",
                json!({"api_name": "CMDB over TLS",
                       "url": format!("{}/host/{{{{.Labels.host}}}}", fake.base),
                       "timeout": 1, "retry_count": 0}),
            )
            .await);
        assert_eq!(created["insecure_skip_verify"], false);
        let api_id = created["api_id"].as_str().unwrap().to_string();
        let integration = ok(t.api("/integration/list", json!({})).await)["items"][0].clone();
        let iid = integration["integration_id"].as_i64().unwrap();
        ok(t.api(
            "/enrichment/upsert",
            json!({"integration_id": iid, "rules": [{"type": "map", "source": "api",
                   "service_id": api_id, "result_label_keys": ["owner"]}]}),
        )
        .await);

        // spec: ING-073 — an untrusted certificate fails the call like any transport error:
        // the event goes on unenriched, marked, and the service never sees the request.
        let requests = push_all(&t, &[("k-verified", "ok")]).await;
        t.drained().await;
        let o = outcome(&t, &requests["k-verified"]).await;
        assert_eq!(o["enrich_error"], true, "{o}");
        assert_eq!(o["outcome"], "new_alert");
        assert!(fake.keys().is_empty(), "{:?}", fake.keys());
        let alerts = t.alerts().await;
        assert!(labels_of(&alerts, "k-verified").get("owner").is_none());

        // spec: ING-074 — with `insecure_skip_verify` the same service answers.
        let updated = ok(t
            .api(
                "/enrichment/mapping/api/update",
                json!({"api_id": api_id, "insecure_skip_verify": true}),
            )
            .await);
        assert_eq!(updated["insecure_skip_verify"], true);
        let requests = push_all(&t, &[("k-skipped", "ok")]).await;
        t.drained().await;
        let o = outcome(&t, &requests["k-skipped"]).await;
        assert_eq!(o["enrich_error"], false, "{o}");
        assert_eq!(fake.keys(), vec!["k-skipped".to_string()]);
        let alerts = t.alerts().await;
        assert_eq!(labels_of(&alerts, "k-skipped")["owner"], "dba");
        t.stop().await;
    }
);
