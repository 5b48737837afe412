//! Credentials sealed at rest under the tenant's data key (service-agreement.md SVC-185,
//! SVC-190, SVC-182; response.md 1.21, 1.23, 1.24 and RSP-302 "credentials are stored
//! encrypted", RSP-380 custom headers carry the receivers' credentials; docs/security.md).
//!
//! Each test reads the raw rows with `sqlite3` or `psql`, so what is checked is what the
//! database holds, and drives the features over the Open API and the nodes' dispatchers (a
//! fake ServiceDesk Plus, a local webhook receiver). SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
// Only part of the fake's recording is used here.
#[allow(dead_code)]
use crate::common::sdp_fake;

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use common::{ManualClock, test_config, wall_ms};
use klaxon_server::config::SecretText;
use klaxon_server::ticket_sync::TicketDispatcher;
use klaxon_server::webhooks::WebhookDispatcher;
use klaxon_server::{Clock, Config, Server};
use klaxon_store::StoreError;
use klaxon_store::sealing::{SEALED_PREFIX, SecretSlot};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEK: &str = "5f3c8a1e9b7d2c4f6a8e0b1d3f5a7c9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a";

// ---- a webhook receiver: records each request's headers and body, answers 200 ----

#[derive(Clone, Debug)]
struct Req {
    headers: HashMap<String, String>,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    reqs: Arc<Mutex<Vec<Req>>>,
    url: String,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            reqs: Arc::default(),
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
        };
        let reqs = r.reqs.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let reqs = reqs.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, length) = loop {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (i + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = socket.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let headers = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                        .collect();
                    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                    reqs.lock().unwrap().push(Req { headers, body });
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        r
    }

    fn take(&self) -> Vec<Req> {
        std::mem::take(&mut *self.reqs.lock().unwrap())
    }
}

/// `v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>` computed by openssl, independently of
/// Klaxon's code.
fn openssl_signature(secret: &str, ts: &str, body: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{ts}.{body}").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("v1={}", text.trim().rsplit(' ').next().unwrap())
}

// ---- a node whose workers are off: the test runs the dispatchers itself ----

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    app_key: String,
    integration_key: String,
    account: i64,
    tickets: TicketDispatcher,
    hooks: WebhookDispatcher,
    url: String,
    dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path, url: &str, kek: Option<&str>) -> Config {
    let mut config: Config = test_config(dir, url);
    config.workers.delivery = false;
    config.workers.timers = false;
    config.notify.allow_private_targets = true;
    if let Some(kek) = kek {
        config.deployment.key_encryption_key = SecretText(kek.to_string());
    }
    config
}

impl Node {
    async fn start(url: &str, kek: Option<&str>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config(dir.path(), url, kek), clock.clone())
            .await
            .unwrap();
        let b = server.bootstrap().clone();
        Node::with(
            server,
            clock,
            (b.app_key.clone(), b.integration_key.clone()),
            url,
            dir,
        )
    }

    fn with(
        server: Server,
        clock: Arc<ManualClock>,
        keys: (String, String),
        url: &str,
        dir: tempfile::TempDir,
    ) -> Node {
        let store = server.store().clone();
        let tickets =
            TicketDispatcher::new(store.clone(), &format!("t-{}", wall_ms()), true).unwrap();
        let hooks =
            WebhookDispatcher::new(store, server.base_url(), &format!("w-{}", wall_ms()), true)
                .unwrap();
        Node {
            account: server.bootstrap().account_id,
            server,
            http: reqwest::Client::new(),
            clock,
            app_key: keys.0,
            integration_key: keys.1,
            tickets,
            hooks,
            url: url.to_string(),
            dir,
        }
    }

    /// Stops this node and starts another on the same data, with or without a KEK.
    async fn restart(self, kek: Option<&str>) -> Node {
        let Node {
            server,
            clock,
            app_key,
            integration_key,
            url,
            dir,
            ..
        } = self;
        server.shutdown().await;
        let server = klaxon_server::start_with_clock(config(dir.path(), &url, kek), clock.clone())
            .await
            .unwrap();
        Node::with(server, clock, (app_key, integration_key), &url, dir)
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!(
                "{}{path}?app_key={}",
                self.server.base_url(),
                self.app_key
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn api(&self, path: &str, body: Value) -> Value {
        let out = self.call(path, body).await;
        assert!(out.get("error").is_none(), "{path}: {out}");
        out["data"].clone()
    }

    /// Runs one statement on the node's database; the rows as `a|b` lines.
    async fn sql(&self, sql: &str) -> String {
        let out = if self.url.is_empty() {
            tokio::process::Command::new("sqlite3")
                .arg("-cmd")
                .arg(".timeout 5000")
                .arg(self.dir.path().join("klaxon.db"))
                .arg(sql)
                .output()
                .await
                .unwrap()
        } else {
            tokio::process::Command::new("psql")
                .arg(&self.url)
                .arg("-Atc")
                .arg(sql)
                .output()
                .await
                .unwrap()
        };
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Moves the injected clock on (past the API's per-minute window, and tokens' hour).
    fn advance(&self, ms: i64) {
        self.clock
            .0
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Pushes one Critical alert; returns (incident id, channel id) once it exists.
    async fn alert(&self, key: &str) -> (String, i64) {
        self.advance(61_000);
        let push = format!(
            "{}/event/push/alert/standard?integration_key={}",
            self.server.base_url(),
            self.integration_key
        );
        let resp = self
            .http
            .post(push)
            .json(
                &json!({"event_status": "Critical", "title_rule": format!("{key} down"),
                          "description": "disk full", "alert_key": key}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let now = self.clock.now() / 1000;
        for _ in 0..500 {
            self.advance(1_000);
            let data = self
                .api(
                    "/alert/list",
                    json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 100}),
                )
                .await;
            if let Some(a) = data["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["alert_key"] == key && a["incident_id"] != "")
            {
                return (
                    a["incident_id"].as_str().unwrap().to_string(),
                    a["channel_id"].as_i64().unwrap(),
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no alert for {key}");
    }

    /// Creates the credentials of every kind this test checks; returns their ids.
    async fn configure(&self, sdp: &sdp_fake::FakeSdp, receiver: &Receiver) -> Ids {
        let (_, channel) = self.alert("setup").await;
        let hook = self
            .api(
                "/webhook/create",
                json!({"kind": "incident_webhook", "name": "Hook", "endpoint": receiver.url,
                       "headers": {"Authorization": "Bearer hook-credential-1"}}),
            )
            .await;
        let onprem = self
            .api(
                "/ticket-sync/create",
                json!({"system": "servicedeskplus", "name": "SDP", "channel_ids": [channel],
                       "platform": "onprem", "base_url": sdp.url, "secret": sdp_fake::API_KEY,
                       "template": "Incident Template"}),
            )
            .await;
        let cloud = self
            .api(
                "/ticket-sync/create",
                json!({"system": "servicedeskplus", "name": "SDP cloud", "channel_ids": [channel],
                       "platform": "cloud", "base_url": sdp.url, "auth_url": sdp.url,
                       "client_id": sdp_fake::CLIENT_ID, "secret": sdp_fake::CLIENT_SECRET,
                       "oauth_code": sdp_fake::CODE}),
            )
            .await;
        let im = self
            .api(
                "/im/integration/create",
                json!({"type": "slack", "name": "Slack", "bot_token": "xoxb-bot-credential",
                       "signing_secret": "slack-signing-credential"}),
            )
            .await;
        let action = self
            .api(
                "/custom-action/create",
                json!({"name": "Restart", "endpoint": receiver.url, "channel_ids": [channel],
                       "headers": {"X-Api-Key": "action-credential-1"}}),
            )
            .await;
        self.api(
            "/account/sso/update",
            json!({"enabled": false, "protocol": "oidc", "login_domain": "sealed-acme",
                   "oidc": {"issuer": "https://id.example.com", "client_id": "c",
                            "client_secret": "oidc-client-credential"}}),
        )
        .await;
        Ids {
            hook: hook["integration_id"].as_i64().unwrap(),
            hook_secret: hook["signing_secret"].as_str().unwrap().to_string(),
            onprem: onprem["integration_id"].as_i64().unwrap(),
            cloud: cloud["integration_id"].as_i64().unwrap(),
            im: im["integration_id"].as_i64().unwrap(),
            action: action["integration_id"].as_i64().unwrap(),
        }
    }

    /// Every stored credential column this test wrote, as the database holds it.
    async fn raw_credentials(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (table, columns) in [
            ("webhook_integrations", "headers, signing_secret"),
            ("ticket_sync_integrations", "secret"),
            ("ticket_sync_tokens", "access_token, refresh_token"),
            ("im_integrations", "bot_token, signing_secret"),
            ("custom_integrations", "headers"),
            ("sso_configs", "secret"),
        ] {
            for line in self
                .sql(&format!("SELECT {columns} FROM {table} ORDER BY 1"))
                .await
                .lines()
            {
                out.extend(line.split('|').map(str::to_string));
            }
        }
        out
    }

    /// The features still work with the stored credentials: the webhook carries its custom
    /// header and a signature that verifies, ServiceDesk Plus is called with its API key and
    /// with the OAuth token, the IM and SSO secrets read back as given.
    async fn check_features(&self, ids: &Ids, sdp: &sdp_fake::FakeSdp, receiver: &Receiver) {
        let (inc, _) = self.alert(&format!("db-{}", wall_ms())).await;
        let round = self.hooks.drain(self.clock.now()).await.unwrap();
        assert_eq!(round.failed + round.retried, 0, "{round:?}");
        let reqs = receiver.take();
        let req = reqs.last().expect("the webhook was delivered");
        assert_eq!(req.headers["authorization"], "Bearer hook-credential-1");
        let ts = &req.headers["x-klaxon-timestamp"];
        assert_eq!(
            req.headers["x-klaxon-signature"],
            openssl_signature(&ids.hook_secret, ts, &req.body)
        );

        self.api(
            "/incident/ticket-sync/do",
            json!({"incident_id": inc, "integration_id": ids.onprem}),
        )
        .await;
        let round = self.tickets.drain(self.clock.now()).await.unwrap();
        assert_eq!(round.succeeded, 1, "{round:?}");
        assert_eq!(sdp.take()[0].auth, sdp_fake::API_KEY);
        self.api(
            "/incident/ticket-sync/do",
            json!({"incident_id": inc, "integration_id": ids.cloud}),
        )
        .await;
        let round = self.tickets.drain(self.clock.now()).await.unwrap();
        assert_eq!(round.succeeded, 1, "{round:?}");
        assert_eq!(
            sdp.take()[0].auth,
            format!("Zoho-oauthtoken {}", sdp.access())
        );

        let store = self.server.store();
        let im = store
            .im_integration(self.account, ids.im)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(im.bot_token, "xoxb-bot-credential");
        assert_eq!(im.signing_secret, "slack-signing-credential");
        assert_eq!(
            store.sso_secret(self.account).await.unwrap(),
            "oidc-client-credential"
        );
        let action = self
            .api("/custom-action/info", json!({"integration_id": ids.action}))
            .await;
        assert_eq!(action["headers"]["X-Api-Key"], "action-credential-1");
        let hook = self
            .api("/webhook/info", json!({"integration_id": ids.hook}))
            .await;
        assert_eq!(hook["headers"]["Authorization"], "Bearer hook-credential-1");
    }
}

impl Node {
    /// The tenant's export snapshot, and all of it as one JSON text.
    async fn export(&self) -> (Vec<klaxon_store::ExportedTable>, String) {
        let tables = self
            .server
            .store()
            .export_snapshot(self.account)
            .await
            .unwrap();
        let text = serde_json::to_string(
            &tables
                .iter()
                .map(|t| (t.table, &t.rows))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        (tables, text)
    }
}

struct Ids {
    hook: i64,
    hook_secret: String,
    onprem: i64,
    cloud: i64,
    im: i64,
    action: i64,
}

/// The clear credentials the test configures; none may appear in a sealed column.
fn clear_values(ids: &Ids) -> Vec<String> {
    [
        "hook-credential-1",
        sdp_fake::API_KEY,
        sdp_fake::CLIENT_SECRET,
        "at-1",
        "xoxb-bot-credential",
        "slack-signing-credential",
        "action-credential-1",
        "oidc-client-credential",
        ids.hook_secret.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn assert_sealed(raw: &[String], ids: &Ids) {
    assert!(raw.len() >= 10, "{raw:?}");
    for value in raw {
        assert!(value.starts_with(SEALED_PREFIX), "not sealed: {value}");
        for clear in clear_values(ids) {
            assert!(!value.contains(&clear), "{clear} in {value}");
        }
    }
}

on_both_backends!(
    credentials_are_sealed_at_rest_and_the_features_still_work,
    |url: String| async move {
        // spec: SVC-185 (the tenant's data encrypted under its data key), RSP-302 (IM
        // credentials stored encrypted), RSP-407 (ticket-sync credentials and OAuth tokens),
        // RSP-570 (SSO secret), RSP-380 (webhook and custom-action headers carry the
        // receivers' credentials), RSP-370 (the webhook signature still verifies)
        let sdp = sdp_fake::FakeSdp::start().await;
        let receiver = Receiver::start().await;
        let node = Node::start(&url, Some(KEK)).await;
        let ids = node.configure(&sdp, &receiver).await;
        let raw = node.raw_credentials().await;
        assert_sealed(&raw, &ids);
        assert_eq!(
            node.sql("SELECT COUNT(*) FROM tenant_keys WHERE destroyed_at = 0")
                .await,
            "1",
            "one data key for the account"
        );
        node.check_features(&ids, &sdp, &receiver).await;
        // A refreshed token is sealed too.
        node.advance(2 * 3_600_000);
        let (inc, _) = node.alert("later").await;
        node.api(
            "/incident/ticket-sync/do",
            json!({"incident_id": inc, "integration_id": ids.cloud}),
        )
        .await;
        node.tickets.drain(node.clock.now()).await.unwrap();
        assert_eq!(sdp.access(), "at-2");
        let tokens = node
            .sql("SELECT access_token FROM ticket_sync_tokens")
            .await;
        assert!(
            tokens.starts_with(SEALED_PREFIX) && !tokens.contains("at-2"),
            "{tokens}"
        );

        // The tenant export never carries them, clear or sealed (SVC-182).
        let (tables, text) = node.export().await;
        assert!(text.contains("SDP cloud"), "the tables are exported");
        assert!(!text.contains(SEALED_PREFIX));
        for clear in clear_values(&ids) {
            let holders: Vec<&str> = tables
                .iter()
                .filter(|t| serde_json::to_string(&t.rows).unwrap().contains(&clear))
                .map(|t| t.table)
                .collect();
            assert!(holders.is_empty(), "{clear} in {holders:?}");
        }
    }
);

on_both_backends!(
    clear_credentials_are_sealed_once_when_a_key_is_configured,
    |url: String| async move {
        // spec: SVC-185 (existing rows are encrypted by the start-up pass, once), RSP-302,
        // RSP-407, RSP-570, RSP-380
        let sdp = sdp_fake::FakeSdp::start().await;
        let receiver = Receiver::start().await;
        // Self-hosted without a key-encryption key: stored as given.
        let node = Node::start(&url, None).await;
        let ids = node.configure(&sdp, &receiver).await;
        let raw = node.raw_credentials().await;
        assert!(raw.iter().all(|v| !v.starts_with(SEALED_PREFIX)), "{raw:?}");
        assert!(raw.iter().any(|v| v == "xoxb-bot-credential"), "{raw:?}");
        assert_eq!(node.sql("SELECT COUNT(*) FROM tenant_keys").await, "0");
        node.check_features(&ids, &sdp, &receiver).await;

        // The key is configured: the next start seals every clear value.
        let node = node.restart(Some(KEK)).await;
        let sealed = node.raw_credentials().await;
        assert_sealed(&sealed, &ids);
        node.check_features(&ids, &sdp, &receiver).await;

        // Idempotent: another start changes nothing.
        let before = node.raw_credentials().await;
        let node = node.restart(Some(KEK)).await;
        assert_eq!(node.raw_credentials().await, before);
        node.check_features(&ids, &sdp, &receiver).await;

        // Started without the key again, sealed values cannot be read: the read fails
        // rather than handing out ciphertext as a credential.
        let node = node.restart(None).await;
        let err = node
            .server
            .store()
            .im_integration(node.account, ids.im)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Secret(_)), "{err}");
    }
);

on_both_backends!(
    a_sealed_value_opens_only_in_its_own_row_and_never_after_the_purge,
    |url: String| async move {
        // spec: SVC-185 (values bound to account, table, column and row), SVC-190 (the purge
        // destroys the data key: nothing sealed under it can be read again)
        let node = Node::start(&url, Some(KEK)).await;
        let (_, channel) = node.alert("setup").await;
        let mut ids = Vec::new();
        for key in ["action-credential-a", "action-credential-b"] {
            let a = node
                .api(
                    "/custom-action/create",
                    json!({"name": key, "endpoint": "http://127.0.0.1:9/x",
                           "channel_ids": [channel], "headers": {"X-Api-Key": key}}),
                )
                .await;
            ids.push(a["integration_id"].as_i64().unwrap());
        }
        let raw_a = node
            .sql(&format!(
                "SELECT headers FROM custom_integrations WHERE integration_id = {}",
                ids[0]
            ))
            .await;
        assert!(raw_a.starts_with(SEALED_PREFIX), "{raw_a}");
        let store = node.server.store().clone();
        let slot = |id: i64| SecretSlot::new(node.account, "custom_integrations", "headers", id);
        assert_eq!(
            store.open_secret(slot(ids[0]), &raw_a).await.unwrap(),
            r#"{"X-Api-Key":"action-credential-a"}"#
        );
        // Wrong associated data: another row, column or account refuses to open.
        for wrong in [
            slot(ids[1]),
            SecretSlot::new(node.account, "custom_integrations", "endpoint", ids[0]),
            SecretSlot::new(node.account, "webhook_integrations", "headers", ids[0]),
        ] {
            let err = store.open_secret(wrong, &raw_a).await.unwrap_err();
            assert!(matches!(err, StoreError::Secret(_)), "{err}");
        }
        // A value copied into another row is refused when read, not handed out.
        node.sql(&format!(
            "UPDATE custom_integrations SET headers = '{raw_a}' WHERE integration_id = {}",
            ids[1]
        ))
        .await;
        let err = store
            .custom_integration(node.account, ids[1])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Secret(_)), "{err}");
        let answer = node
            .call("/custom-action/info", json!({"integration_id": ids[1]}))
            .await;
        assert!(answer.get("error").is_some(), "{answer}");
        assert!(
            !answer.to_string().contains("action-credential"),
            "{answer}"
        );

        // The purge destroys the key: a copy of the sealed value (a backup's) never opens.
        let outcome = store
            .purge_tenant(node.account, node.clock.now(), "test", |_, _| {})
            .await
            .unwrap();
        assert!(outcome.key_destroyed_now);
        let err = store.open_secret(slot(ids[0]), &raw_a).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Secret(m) if m.contains("destroyed")),
            "{err}"
        );
    }
);

impl Node {
    /// An HTTP-pull integration and a label mapping service, each with a credential header,
    /// both aimed at `receiver`; the mapping service is called for every event of the default
    /// integration. Returns (pull integration id, mapping service id).
    async fn configure_pull_and_mapping(&self, receiver: &Receiver, tag: &str) -> (i64, String) {
        let (_, channel) = self.alert(&format!("setup-{tag}")).await;
        let pull = self
            .api(
                "/integration/create",
                json!({"integration_name": format!("pull {tag}"), "type": "http_pull",
                       "kind": "dedicated", "channel_id": channel,
                       "settings": {"url": receiver.url, "cycle_seconds": 60,
                                    "headers": {"X-Custom-Token": format!("pull-credential-{tag}")}}}),
            )
            .await;
        let service = self
            .api(
                "/enrichment/mapping/api/create",
                json!({"api_name": format!("CMDB {tag}"), "url": receiver.url,
                       "headers": {"X-Custom-Token": format!("mapping-credential-{tag}")},
                       "timeout": 1}),
            )
            .await;
        let api_id = service["api_id"].as_str().unwrap().to_string();
        let integrations = self.api("/integration/list", json!({"limit": 100})).await;
        let standard = integrations["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "standard")
            .unwrap()["integration_id"]
            .as_i64()
            .unwrap();
        self.api(
            "/enrichment/upsert",
            json!({"integration_id": standard, "rules": [
                {"type": "map", "source": "api", "service_id": api_id,
                 "result_label_keys": ["owner"]}]}),
        )
        .await;
        (pull["integration_id"].as_i64().unwrap(), api_id)
    }

    /// The stored pull settings and mapping-service headers, as the database holds them.
    async fn raw_pull_and_mapping(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .sql(
                "SELECT settings FROM integrations WHERE integration_type = 'http_pull' ORDER BY 1",
            )
            .await
            .lines()
            .map(str::to_string)
            .collect();
        out.extend(
            self.sql("SELECT headers FROM mapping_services ORDER BY 1")
                .await
                .lines()
                .map(str::to_string),
        );
        out
    }

    /// Both features still send their credential: a pull and a mapping call reach
    /// `receiver` with their header, and the Open API shows the headers as given.
    async fn check_pull_and_mapping(
        &self,
        receiver: &Receiver,
        tag: &str,
        (pull, api_id): (i64, &str),
    ) {
        receiver.take();
        self.advance(3_600_000);
        assert!(self.server.run_due_pulls().await >= 1);
        self.alert(&format!("enriched-{tag}-{}", wall_ms())).await;
        let tokens: Vec<String> = receiver
            .take()
            .iter()
            .filter_map(|r| r.headers.get("x-custom-token").cloned())
            .collect();
        assert!(
            tokens.contains(&format!("pull-credential-{tag}")),
            "{tokens:?}"
        );
        assert!(
            tokens.contains(&format!("mapping-credential-{tag}")),
            "{tokens:?}"
        );
        let info = self
            .api("/integration/info", json!({"integration_id": pull}))
            .await;
        assert_eq!(
            info["settings"]["headers"]["X-Custom-Token"],
            format!("pull-credential-{tag}")
        );
        let info = self
            .api("/enrichment/mapping/api/info", json!({"api_id": api_id}))
            .await;
        assert_eq!(
            info["headers"]["X-Custom-Token"],
            format!("mapping-credential-{tag}")
        );
    }
}

/// A stored pull settings text or mapping-service headers value is sealed: the headers are
/// the sealed member (or value) and no credential is readable.
fn assert_headers_sealed(raw: &[String]) {
    assert!(raw.len() >= 2, "{raw:?}");
    for value in raw {
        let sealed = match serde_json::from_str::<Value>(value) {
            // A pull's settings: the other members stay readable, the headers are sealed.
            Ok(Value::Object(settings)) => {
                assert!(settings.contains_key("url"), "{value}");
                settings["headers"].as_str().unwrap_or_default().to_string()
            }
            _ => value.clone(),
        };
        assert!(sealed.starts_with(SEALED_PREFIX), "not sealed: {value}");
        assert!(!value.contains("credential"), "{value}");
    }
}

on_both_backends!(
    pull_and_mapping_service_headers_are_sealed_at_rest,
    |url: String| async move {
        // spec: SVC-185 (the tenant's data encrypted under its data key), ING-220 (HTTP-pull
        // headers carry the source's credentials), ING-074 (a mapping service's custom
        // headers), ING-072 (the call carries them)
        let receiver = Receiver::start().await;
        // Without a key-encryption key the headers are stored as given.
        let node = Node::start(&url, None).await;
        let (pull, api_id) = node.configure_pull_and_mapping(&receiver, "a").await;
        let raw = node.raw_pull_and_mapping().await;
        assert!(raw.iter().all(|v| !v.contains(SEALED_PREFIX)), "{raw:?}");
        assert!(
            raw.iter().any(|v| v.contains("pull-credential-a")),
            "{raw:?}"
        );
        node.check_pull_and_mapping(&receiver, "a", (pull, &api_id))
            .await;

        // The key is configured: the start-up pass seals both, once.
        let node = node.restart(Some(KEK)).await;
        let sealed = node.raw_pull_and_mapping().await;
        assert_headers_sealed(&sealed);
        node.check_pull_and_mapping(&receiver, "a", (pull, &api_id))
            .await;
        let node = node.restart(Some(KEK)).await;
        assert_eq!(node.raw_pull_and_mapping().await, sealed, "idempotent");

        // Created and updated with the key on: sealed as they are written.
        let (pull_b, api_b) = node.configure_pull_and_mapping(&receiver, "b").await;
        assert_headers_sealed(&node.raw_pull_and_mapping().await);
        node.api(
            "/integration/update",
            json!({"integration_id": pull_b, "integration_name": "renamed pull"}),
        )
        .await;
        node.api(
            "/enrichment/mapping/api/update",
            json!({"api_id": api_b, "api_name": "CMDB b", "url": receiver.url,
                   "headers": {"X-Custom-Token": "mapping-credential-b"}, "timeout": 1}),
        )
        .await;
        assert_headers_sealed(&node.raw_pull_and_mapping().await);
        node.check_pull_and_mapping(&receiver, "b", (pull_b, &api_b))
            .await;

        // The tenant export carries neither (SVC-182).
        let (_, text) = node.export().await;
        assert!(text.contains("renamed pull"), "the tables are exported");
        assert!(!text.contains("credential-") && !text.contains(SEALED_PREFIX));

        // Without the key, a pull whose headers cannot be opened is skipped, not sent bare.
        let node = node.restart(None).await;
        receiver.take();
        node.advance(3_600_000);
        assert_eq!(node.server.run_due_pulls().await, 0);
        assert!(receiver.take().is_empty());
    }
);
