//! Agreement documents and notices in SaaS mode (docs/saas.md "Agreements and notices"):
//! `klaxon admin documents publish` with its SVC-031 preconditions, the notices of SVC-035
//! (announcement, in-app, and a real e-mail through SMTP for a material version) as records
//! in the tenant's inbox, acceptance by continued use at the first push after the effective
//! date (the spec's example), explicit acceptance, refusal ending the service at the
//! effective date, retraction, the evidence bundle, and a self-hosted install meeting none
//! of it. Time is a ManualClock; the CLI publishes at the same instants with `--at`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::saas::{cli_config, ms, saas};
use common::smtp_sink::Smtp as Sink;
use common::{ManualClock, test_config};
use klaxon_server::{Config, Server};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    config_file: std::path::PathBuf,
}

impl Node {
    async fn start(database_url: &str, at: &str, tweak: impl FnOnce(&mut Config)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        tweak(&mut config);
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(at))));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let config_file = cli_config(dir.path(), database_url);
        Node {
            server,
            http: reqwest::Client::new(),
            clock,
            dir,
            config_file,
        }
    }

    /// The CLI's configuration also names the SMTP server the notices go through.
    fn with_smtp(self, sink: &Sink) -> Node {
        let mut text = std::fs::read_to_string(&self.config_file).unwrap();
        text.push_str(&format!(
            "[notify.email]\nhost = \"{}\"\nport = {}\nsecurity = \"none\"\nfrom = \"Example Cloud <notices@cloud.test>\"\n",
            sink.addr.ip(),
            sink.addr.port()
        ));
        std::fs::write(&self.config_file, text).unwrap();
        self
    }

    fn set(&self, at: &str) {
        self.clock.0.store(ms(at), Ordering::SeqCst);
    }

    async fn push(&self, key: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}/event/push/alert/standard?integration_key={}",
                self.server.base_url(),
                self.server.bootstrap().integration_key
            ))
            .json(&json!({"event_status": "Critical", "title_rule": "disk full", "alert_key": key}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}{path}?app_key={}",
                self.server.base_url(),
                self.server.bootstrap().app_key
            ))
            .header("user-agent", "agreements-test/1.0")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn documents(&self, args: &[&str]) -> (bool, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .env("KLAXON_LOG", "warn")
            .env_remove("KLAXON_DATABASE_URL")
            .env_remove("KLAXON_DEPLOYMENT_MODE")
            .arg("admin")
            .arg("documents")
            .args(args)
            .arg("--config")
            .arg(&self.config_file)
            .output()
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn body_file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// The version id printed by `publish`.
    fn version_id(out: &str) -> i64 {
        out.split("as version_id ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no version id in {out}"))
    }

    async fn agreements(&self) -> Vec<Value> {
        let (s, b) = self.api("/account/agreement/list", json!({})).await;
        assert_eq!(s, 200, "{b}");
        b["data"]["items"].as_array().unwrap().clone()
    }

    async fn decision(&self, version_id: i64) -> Value {
        self.agreements()
            .await
            .into_iter()
            .find(|v| v["version_id"] == version_id)
            .unwrap()["decision"]
            .clone()
    }

    async fn notices(&self) -> Vec<Value> {
        let (s, b) = self
            .api("/account/notice/list", json!({"limit": 100}))
            .await;
        assert_eq!(s, 200, "{b}");
        b["data"]["items"].as_array().unwrap().clone()
    }

    async fn state(&self) -> (String, Option<String>) {
        let settings = self.server.saas_settings().unwrap();
        let t = self
            .server
            .store()
            .saas_tenant(
                settings,
                self.server.bootstrap().account_id,
                self.clock.0.load(Ordering::SeqCst),
            )
            .await
            .unwrap();
        // No billing row yet: the tenant is `active` (docs/saas.md "Billing rows").
        match t {
            Some(t) => (t.state.to_string(), t.purge_at.map(|p| p.to_string())),
            None => ("active".into(), None),
        }
    }
}

fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

on_both_backends!(
    material_version_notices_and_acceptance_by_continued_use,
    |url: String| async move {
        let sink = Sink::start().await;
        let n = Node::start(&url, "2025-08-01T10:00:00Z", saas)
            .await
            .with_smtp(&sink);
        let owner_email = n.server.bootstrap().owner_email.clone();
        let body = "Terms of Service, version 2025-08-15.\nSection 1 …\n";
        let file = n.body_file("tos.txt", body);
        let publish = |extra: &'static [&'static str]| {
            let mut args = vec![
                "publish",
                "--type",
                "terms_of_service",
                "--version",
                "2025-08-15",
                "--body-file",
                &file,
                "--summary",
                "Liability clause rewritten",
                "--effective",
                "2025-08-15T00:00:00Z",
                "--material",
                "--at",
                "2025-08-01T10:00:00Z",
            ];
            args.extend_from_slice(extra);
            args.into_iter().map(str::to_string).collect::<Vec<_>>()
        };

        // spec: SVC-031
        // A material version 13 days 14 hours ahead needs a justification; refused, nothing
        // is published and nothing is sent.
        let args = publish(&[]);
        let (ok, out) = n
            .documents(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("justification"), "{out}");
        let (ok, out) = n.documents(&["list"]).await;
        assert!(ok, "{out}");
        assert!(out.contains("no document version"), "{out}");
        assert!(sink.mails().is_empty());

        // spec: SVC-035
        // spec: SVC-316
        // Published with a justification: the announcement and the owner's in-app notice are
        // recorded with the version, and the owner really gets an e-mail.
        let args = publish(&["--justification", "regulator deadline"]);
        let (ok, out) = n
            .documents(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
        assert!(ok, "{out}");
        assert!(out.contains("e-mails sent: 1"), "{out}");
        assert!(out.contains(&sha256(body)), "{out}");
        let version_id = Node::version_id(&out);
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        assert!(
            mails[0].rcpt[0].contains(&owner_email),
            "{:?}",
            mails[0].rcpt
        );
        assert!(mails[0].data.contains("2025-08-15"), "{}", mails[0].data);

        // spec: SVC-312
        // spec: SVC-311
        // The inbox holds every notice sent to the tenant, whatever the channel, each with
        // its content hash and deemed delivery date.
        let notices = n.notices().await;
        let channels: Vec<&str> = notices
            .iter()
            .map(|x| x["channel"].as_str().unwrap())
            .collect();
        assert!(channels.contains(&"announcement"), "{channels:?}");
        assert!(channels.contains(&"in_app"), "{channels:?}");
        assert!(channels.contains(&"email"), "{channels:?}");
        for x in &notices {
            assert_eq!(x["category"], "agreement_version_material");
            assert_eq!(x["critical"], true);
            assert_eq!(x["related"], format!("document_version:{version_id}"));
            assert_eq!(
                x["content_sha256"],
                sha256(x["content"].as_str().unwrap()),
                "{x}"
            );
            assert_eq!(x["status"], "sent");
        }
        let in_app = notices.iter().find(|x| x["channel"] == "in_app").unwrap();
        assert_eq!(in_app["deemed_delivered_on"], "2025-08-01");
        assert_eq!(in_app["sent_at"], ms("2025-08-01T10:00:00Z") / 1000);
        assert_eq!(in_app["recipient"], owner_email);
        let email = notices.iter().find(|x| x["channel"] == "email").unwrap();
        assert_eq!(email["recipient"], owner_email);
        assert!(
            email["provider_message_id"]
                .as_str()
                .unwrap()
                .contains("@cloud.test"),
            "{email}"
        );

        // spec: SVC-030
        // Before the effective date the version is published, not in force, and undecided.
        n.server.refresh_tenant_states().await.unwrap();
        let v = n
            .agreements()
            .await
            .into_iter()
            .find(|v| v["version_id"] == version_id)
            .unwrap();
        assert_eq!(v["status"], "published");
        assert_eq!(v["body_sha256"], sha256(body));
        assert_eq!(v["decision"], Value::Null);

        // spec: SVC-037
        // A push the second before the effective date binds nothing.
        n.set("2025-08-14T23:59:59Z");
        assert_eq!(n.push("before").await.0, 200);
        assert_eq!(n.decision(version_id).await, Value::Null);

        // spec: SVC-037 (example: published 2025-08-01 10:00, effective 2025-08-15 00:00, the
        // tenant's push at 00:03:12 → deemed acceptance at 00:03:12 with that request id)
        n.set("2025-08-15T00:03:12Z");
        let (s, pushed) = n.push("after").await;
        assert_eq!(s, 200, "{pushed}");
        let request_id = pushed["request_id"].as_str().unwrap().to_string();
        let d = n.decision(version_id).await;
        assert_eq!(d["decision"], "accepted");
        assert_eq!(d["method"], "deemed_continued_use");
        assert_eq!(d["decided_at_ms"], ms("2025-08-15T00:03:12Z"));
        assert_eq!(d["request_id"], request_id);
        assert_eq!(d["event_type"], "inbound_event");
        assert_eq!(d["content_sha256"], sha256(body));
        let evidence: Value = serde_json::from_str(d["evidence"].as_str().unwrap()).unwrap();
        let cited: Vec<i64> = evidence["notice_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        let sent: Vec<i64> = notices
            .iter()
            .map(|x| x["notice_id"].as_i64().unwrap())
            .filter(|id| cited.contains(id))
            .collect();
        assert!(
            sent.len() >= 2,
            "the announcement and in-app notice are cited: {cited:?}"
        );

        // spec: SVC-036
        // Later use and an explicit acceptance record nothing new: the first record stands.
        n.set("2025-08-15T00:05:00Z");
        assert_eq!(n.push("later").await.0, 200);
        let (s, b) = n
            .api(
                "/account/agreement/accept",
                json!({"version_id": version_id}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["recorded_now"], false);
        assert_eq!(b["data"]["decision"]["request_id"], request_id);
        let v = n
            .agreements()
            .await
            .into_iter()
            .find(|v| v["version_id"] == version_id)
            .unwrap();
        assert_eq!(v["status"], "in_force");

        // spec: SVC-040
        // The evidence bundle holds the record, the exact text and its hash.
        let (s, b) = n.api("/account/agreement/evidence", json!({})).await;
        assert_eq!(s, 200, "{b}");
        let bundle_text = b["data"]["bundle"].as_str().unwrap();
        assert_eq!(b["data"]["bundle_sha256"], sha256(bundle_text));
        let bundle: Value = serde_json::from_str(bundle_text).unwrap();
        assert_eq!(bundle["records"].as_array().unwrap().len(), 1);
        assert_eq!(bundle["documents"][0]["body"], body);
        assert_eq!(bundle["documents"][0]["hash_verified"], true);

        n.server.shutdown().await;
    }
);

on_both_backends!(
    refusal_before_effect_ends_service_at_effective_date,
    |url: String| async move {
        let n = Node::start(&url, "2025-08-01T10:00:00Z", saas).await;
        let file = n.body_file("dpp.txt", "Data Protection Protocol 2025-08-15\n");
        let (ok, out) = n
            .documents(&[
                "publish",
                "--type",
                "data_protection",
                "--version",
                "2025-08-15",
                "--body-file",
                &file,
                "--summary",
                "New sub-processor list",
                "--effective",
                "2025-08-15T00:00:00Z",
                "--at",
                "2025-08-01T10:00:00Z",
            ])
            .await;
        assert!(ok, "{out}");
        // Not material: no e-mail (and none is configured).
        assert!(!out.contains("e-mails"), "{out}");
        let version_id = Node::version_id(&out);
        n.server.refresh_tenant_states().await.unwrap();

        // spec: SVC-038
        // Bad input names the field and changes nothing.
        let (s, b) = n.api("/account/agreement/refuse", json!({})).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("version_id")
        );
        let (s, b) = n
            .api("/account/agreement/refuse", json!({"version_id": 999}))
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("version_id")
        );

        // spec: SVC-038 (example: refusal on 2025-08-10 → service ends 2025-08-15 00:00;
        // buffer until 2025-09-14 00:00)
        // spec: SVC-032 (evidence: person, time, version, hash, method, IP, user agent,
        // request id)
        n.set("2025-08-10T09:00:00Z");
        let (s, b) = n
            .api(
                "/account/agreement/refuse",
                json!({"version_id": version_id}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let d = &b["data"]["decision"];
        assert_eq!(d["decision"], "refused");
        assert_eq!(d["method"], "refusal");
        assert_eq!(d["role"], "owner");
        assert_eq!(d["login"], n.server.bootstrap().owner_email);
        assert_eq!(d["decided_at_ms"], ms("2025-08-10T09:00:00Z"));
        assert_eq!(d["service_ends_at"], ms("2025-08-15T00:00:00Z") / 1000);
        assert_eq!(d["user_agent"], "agreements-test/1.0");
        assert_eq!(d["client_ip"], "127.0.0.1");
        assert_eq!(d["request_id"], b["request_id"]);
        assert_eq!(d["client_type"], "api");

        // The current version governs until then: the service runs.
        n.set("2025-08-14T23:59:59Z");
        n.server.end_refused_due().await.unwrap();
        assert_eq!(n.state().await.0, "active");
        assert_eq!(n.push("still-served").await.0, 200);

        // spec: SVC-021 (terminate: refused terms)
        n.set("2025-08-15T00:00:00Z");
        n.server.end_refused_due().await.unwrap();
        let (state, purge) = n.state().await;
        assert_eq!(state, "ended(refused_terms)");
        assert_eq!(purge.as_deref(), Some("2025-09-14T00:00:00Z"));
        let (s, b) = n.push("ended").await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["error"]["reason"], "ended:refused_terms");
        // Ending is applied once: a second run changes nothing.
        n.server.end_refused_due().await.unwrap();
        assert_eq!(n.state().await.0, "ended(refused_terms)");

        // spec: SVC-036
        // A decision is final; the agreements stay reachable while ended.
        let (s, b) = n
            .api(
                "/account/agreement/accept",
                json!({"version_id": version_id}),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("already refused"),
            "{b}"
        );

        n.server.shutdown().await;
    }
);

on_both_backends!(
    publication_preconditions_and_retraction,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-01T15:00:00Z", saas).await;
        let file = n.body_file("sla.txt", "SLA 2025-07\n");
        let sla = |effective: &'static str, version: &'static str| {
            vec![
                "publish".to_string(),
                "--type".into(),
                "sla".into(),
                "--version".into(),
                version.into(),
                "--body-file".into(),
                file.clone(),
                "--summary".into(),
                "Targets unchanged".into(),
                "--effective".into(),
                effective.into(),
                "--at".into(),
                "2025-06-01T15:00:00Z".into(),
            ]
        };
        let run = |args: Vec<String>| {
            let n = &n;
            async move {
                n.documents(&args.iter().map(String::as_str).collect::<Vec<_>>())
                    .await
            }
        };

        // spec: SVC-031
        // spec: SVC-314 (sent 2025-06-01 15:00 → 30 days' notice → effective no earlier than
        // 2025-07-01 00:00)
        let (ok, out) = run(sla("2025-06-30T23:59:59Z", "2025-07")).await;
        assert!(!ok, "{out}");
        assert!(out.contains("30 days"), "{out}");
        let (ok, out) = run(sla("2025-05-31T00:00:00Z", "2025-07")).await;
        assert!(!ok, "{out}");
        assert!(out.contains("before published_at"), "{out}");
        let (ok, out) = run(sla("2025-07-01T00:00:00Z", "2025-07")).await;
        assert!(ok, "{out}");
        let version_id = Node::version_id(&out);

        // spec: SVC-030
        // A published version is never replaced: a correction is a new version.
        let (ok, out) = run(sla("2025-07-02T00:00:00Z", "2025-07")).await;
        assert!(!ok, "{out}");
        assert!(out.contains("already published"), "{out}");
        let mut bad = sla("2025-07-02T00:00:00Z", "2025-07b");
        bad[2] = "cookie_policy".into();
        let (ok, out) = run(bad).await;
        assert!(!ok, "{out}");
        assert!(out.contains("type"), "{out}");

        // spec: SVC-031
        // A published, not yet effective version may be retracted, with a notice; its
        // status says so and it never binds.
        let (ok, out) = n
            .documents(&[
                "retract",
                "--version-id",
                &version_id.to_string(),
                "--at",
                "2025-06-02T00:00:00Z",
            ])
            .await;
        assert!(ok, "{out}");
        assert!(out.contains("retraction notices: 2"), "{out}");
        let (ok, out) = n
            .documents(&["retract", "--version-id", &version_id.to_string()])
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("already retracted"), "{out}");
        let (ok, out) = n.documents(&["list"]).await;
        assert!(ok, "{out}");
        assert!(out.contains("[retracted]"), "{out}");
        let notices = n.notices().await;
        assert!(
            notices
                .iter()
                .any(|x| x["category"] == "agreement_retracted" && x["channel"] == "in_app"),
            "{notices:?}"
        );
        n.server.refresh_tenant_states().await.unwrap();
        n.set("2025-07-02T00:00:00Z");
        assert_eq!(n.push("after-retraction").await.0, 200);
        let v = n
            .agreements()
            .await
            .into_iter()
            .find(|v| v["version_id"] == version_id)
            .unwrap();
        assert_eq!(v["status"], "retracted");
        assert_eq!(v["decision"], Value::Null);
        let (s, b) = n
            .api(
                "/account/agreement/accept",
                json!({"version_id": version_id}),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("retracted")
        );

        // An in-force version cannot be retracted.
        let (ok, out) = run(sla("2025-07-01T00:00:00Z", "2025-07c")).await;
        assert!(ok, "{out}");
        let in_force = Node::version_id(&out);
        let (ok, out) = n
            .documents(&["retract", "--version-id", &in_force.to_string()])
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("only a version not yet effective"), "{out}");

        n.server.shutdown().await;
    }
);

on_both_backends!(self_hosted_has_no_agreements, |url: String| async move {
    // spec: SVC-403 (§3 off by default in a self-hosted install)
    let n = Node::start(&url, "2025-08-01T10:00:00Z", |_| {}).await;
    let (s, b) = n.api("/account/agreement/list", json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["mode"], "self_hosted");
    let (s, b) = n.api("/account/notice/list", json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["items"], json!([]));
    let (s, b) = n
        .api("/account/agreement/accept", json!({"version_id": 1}))
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("self-hosted")
    );
    // The CLI reads a self-hosted configuration and refuses.
    let path = n.dir.path().join("self.toml");
    std::fs::write(
        &path,
        format!("data_dir = {:?}\n", n.dir.path().display().to_string()),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .env_remove("KLAXON_DATABASE_URL")
        .env_remove("KLAXON_DEPLOYMENT_MODE")
        .args(["admin", "documents", "list", "--config"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("self-hosted"));
    n.server.shutdown().await;
});

// spec: SVC-037, SVC-221 — operator staff reading the tenant's data under an access grant act
// as the owner but are not the tenant using the service: their reads after the effective
// date bind nothing, and the tenant's own next push still does.
on_both_backends!(
    staff_reads_under_a_grant_are_not_continued_use,
    |url: String| async move {
        let n = Node::start(&url, "2025-08-01T10:00:00Z", saas).await;
        let file = n.body_file("tos.txt", "Terms of Service 2025-08-15\n");
        let (ok, out) = n
            .documents(&[
                "publish",
                "--type",
                "terms_of_service",
                "--version",
                "2025-08-15",
                "--body-file",
                &file,
                "--summary",
                "Clarified support hours",
                "--effective",
                "2025-08-15T00:00:00Z",
                "--at",
                "2025-08-01T10:00:00Z",
            ])
            .await;
        assert!(ok, "{out}");
        let version_id = Node::version_id(&out);
        n.server.refresh_tenant_states().await.unwrap();

        // A support staff member and the owner's grant to them, made before the date.
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .env("KLAXON_LOG", "warn")
            .env_remove("KLAXON_DATABASE_URL")
            .env_remove("KLAXON_DEPLOYMENT_MODE")
            .args([
                "admin", "staff", "add", "--name", "Ann", "--role", "support",
            ])
            .arg("--config")
            .arg(&n.config_file)
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text}");
        let staff_id: i64 = text
            .split_whitespace()
            .nth(2)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("no staff id in {text}"));
        let token = text
            .lines()
            .find_map(|l| l.strip_prefix("token: "))
            .unwrap_or_else(|| panic!("no token in {text}"))
            .to_string();
        let (s, g) = n
            .api(
                "/account/access-grant/create",
                json!({"grantee_staff_id": staff_id, "scope": "read_all",
                       "purpose": "pages missing", "ticket_id": "T-7",
                       "end_time": ms("2025-08-20T00:00:00Z") / 1000}),
            )
            .await;
        assert_eq!(s, 200, "{g}");
        let grant_id = g["data"]["grant_id"].as_i64().unwrap();

        // After the effective date staff read channels and incidents under the grant …
        n.set("2025-08-15T00:05:00Z");
        let account = n.server.bootstrap().account_id;
        for path in ["/operator/channel/list", "/operator/incident/list"] {
            let resp = n
                .http
                .post(format!("{}{path}", n.server.base_url()))
                .bearer_auth(&token)
                .json(&json!({"account_id": account, "grant_id": grant_id,
                              "start_time": ms("2025-08-14T00:00:00Z") / 1000,
                              "end_time": ms("2025-08-15T00:05:00Z") / 1000}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{path}");
        }
        // … and the tenant is still undecided.
        assert_eq!(n.decision(version_id).await, Value::Null);

        // The tenant's own push is the use event.
        n.set("2025-08-15T00:07:00Z");
        assert_eq!(n.push("after").await.0, 200);
        let d = n.decision(version_id).await;
        assert_eq!(d["method"], "deemed_continued_use", "{d}");
        assert_eq!(d["decided_at_ms"], ms("2025-08-15T00:07:00Z"));

        n.server.shutdown().await;
    }
);
