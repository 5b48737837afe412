//! Self-service registration in SaaS mode (docs/registration.md): the one-time code arrives
//! by real SMTP (a local sink), the registration creates a `trial` tenant with its owner,
//! directory entry, legal entity, contact record and acceptance records; an expired or wrong
//! code, a missing acceptance or another region's registration creates nothing; an existing
//! identity gets an additional tenant; a self-hosted node has no such routes. Time is a
//! ManualClock. SQLite, and PostgreSQL when configured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::browser;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use browser::{Browser, click, exists, shoot, text_of, type_into, unlabelled_inputs, until};
use common::saas::{ms, saas};
use common::smtp_sink::Smtp as Sink;
use common::{ManualClock, test_config};
use klaxon_notify::{SmtpConfig, SmtpSecurity};
use klaxon_saas::agreement::DocumentType;
use klaxon_server::config::RegionConfig;
use klaxon_server::{Config, Server};
use klaxon_store::NewDocument;
use serde_json::{Value, json};

const EMAIL: &str = "Ann@Example.com";
const PASSWORD: &str = "correct horse battery";

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    sink: Sink,
    dir: tempfile::TempDir,
    url: String,
}

impl Node {
    async fn start(database_url: &str, at: &str) -> Node {
        Self::start_with(database_url, at, saas).await
    }

    async fn start_with(database_url: &str, at: &str, tweak: impl FnOnce(&mut Config)) -> Node {
        let sink = Sink::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        tweak(&mut config);
        // The node-wide sign-in rate counts every step; the manual clock never moves a
        // second on its own, so the tests switch it off (the per-address limit stays).
        config.auth.attempts_per_second = 0;
        config.deployment.regions = vec![
            RegionConfig {
                id: "cn-north".into(),
                name: "China North".into(),
                base_url: "https://cn.example.com".into(),
            },
            RegionConfig {
                id: "eu-west".into(),
                name: "Europe West".into(),
                base_url: "https://eu.example.com/".into(),
            },
        ];
        config.notify.email = Some(SmtpConfig {
            host: sink.addr.ip().to_string(),
            port: sink.addr.port(),
            security: SmtpSecurity::None,
            from: "Example Cloud <noreply@example.com>".into(),
            ..SmtpConfig::default()
        });
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(at))));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        Node {
            server,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            sink,
            dir,
            url: database_url.to_string(),
        }
    }

    fn set(&self, at: &str) {
        self.clock.0.store(ms(at), Ordering::SeqCst);
    }

    fn now(&self) -> i64 {
        self.clock.0.load(Ordering::SeqCst)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.server.base_url()))
            .header("user-agent", "registration-test/1.0")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.server.base_url()))
            .header("user-agent", "registration-browser/1.0")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// Publishes a document version directly through the store (the CLI is tested in
    /// saas_agreements.rs).
    async fn publish(&self, t: DocumentType, version: &str, effective: &str) -> i64 {
        let settings = self.server.saas_settings().unwrap();
        let (v, _) = self
            .server
            .store()
            .saas_publish_document(
                settings,
                &NewDocument {
                    doc_type: t,
                    version: version.into(),
                    language: "en-US".into(),
                    body: format!("{} version {version}\n", t.as_str()),
                    summary: "first version".into(),
                    material: false,
                    justification: String::new(),
                    published_at: self.now(),
                    effective_at: ms(effective),
                    author: "legal".into(),
                },
                |_| Vec::new(),
            )
            .await
            .unwrap();
        v.version_id
    }

    /// ToS, DPP and UA in force now, and a ToS version taking effect later.
    async fn publish_registration_set(&self, now: &str) -> Vec<i64> {
        vec![
            self.publish(DocumentType::TermsOfService, "2025-01", now)
                .await,
            self.publish(
                DocumentType::TermsOfService,
                "2025-09",
                "2025-09-01T00:00:00Z",
            )
            .await,
            self.publish(DocumentType::DataProtection, "2025-01", now)
                .await,
            self.publish(DocumentType::UserAgreement, "2025-01", now)
                .await,
        ]
    }

    /// The code in the latest mail to `to`.
    fn code_for(&self, to: &str) -> String {
        let mails = self.sink.mails();
        let mail = mails
            .iter()
            .rev()
            .find(|m| {
                m.rcpt
                    .iter()
                    .any(|r| r.to_lowercase().contains(&to.to_lowercase()))
            })
            .unwrap_or_else(|| panic!("no mail to {to}: {mails:?}"));
        mail.data
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no code in {}", mail.data))
            .to_string()
    }

    async fn request_code(&self, email: &str) -> (u16, Value) {
        self.post(
            "/auth/register/code",
            json!({"email": email, "region": "cn-north"}),
        )
        .await
    }

    fn body(email: &str, code: &str, accept: &[i64]) -> Value {
        json!({
            "email": email,
            "code": code,
            "password": PASSWORD,
            "organisation": "Example Ops",
            "legal_entity_type": "organisation",
            "legal_name": "Example Operations Ltd",
            "region": "cn-north",
            "accept": accept,
        })
    }

    async fn accounts_of(&self, email: &str) -> Vec<i64> {
        self.server
            .store()
            .login_candidates(email)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.account_id)
            .collect()
    }

    /// Runs one statement on the node's database with the backend's own client.
    async fn sql(&self, sql: &str) -> std::process::Output {
        if self.url.is_empty() {
            tokio::process::Command::new("sqlite3")
                .arg(self.dir.path().join("klaxon.db"))
                .arg(format!("PRAGMA busy_timeout = 5000; {sql}"))
                .output()
                .await
                .unwrap()
        } else {
            tokio::process::Command::new("psql")
                .arg(&self.url)
                .arg("-v")
                .arg("ON_ERROR_STOP=1")
                .arg("-qc")
                .arg(sql)
                .output()
                .await
                .unwrap()
        }
    }

    async fn stop(self) {
        self.server.shutdown().await;
    }
}

on_both_backends!(
    registration_through_a_real_code_creates_a_trial_tenant,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-01T10:00:00Z").await;
        let ids = n.publish_registration_set("2025-06-01T10:00:00Z").await;

        // spec: SVC-032
        // The form shows the versions in force and the one published but not yet in force.
        let (s, b) = n.post("/auth/register/info", json!({})).await;
        assert_eq!(s, 200, "{b}");
        let shown: Vec<i64> = b["data"]["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["version_id"].as_i64().unwrap())
            .collect();
        let mut expected = ids.clone();
        expected.sort();
        let mut got = shown.clone();
        got.sort();
        assert_eq!(got, expected);
        assert_eq!(b["data"]["region"], "cn-north");

        // spec: SVC-001
        // The code arrives by SMTP; the database keeps only a salted hash of it.
        let (s, b) = n.request_code(EMAIL).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["code_valid_minutes"], 10);
        let code = n.code_for(EMAIL);
        let rows = n
            .server
            .store()
            .saas_registration_code_rows(EMAIL)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].0.contains(&code));
        assert_eq!(rows[0].0.len(), 64);

        // spec: SVC-001
        // A wrong code is refused, naming the field, and counts as an attempt.
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let (s, b) = n
            .post("/auth/register/complete", Node::body(EMAIL, wrong, &ids))
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().starts_with("code:"),
            "{b}"
        );
        assert!(n.accounts_of(EMAIL).await.is_empty());

        // spec: SVC-001, SVC-032
        // Without acceptance nothing is created (and the code is not spent).
        let (s, b) = n
            .post("/auth/register/complete", Node::body(EMAIL, &code, &[]))
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("accept:"),
            "{b}"
        );
        // Accepting only part of the shown set is no acceptance either.
        let (s, b) = n
            .post(
                "/auth/register/complete",
                Node::body(EMAIL, &code, &ids[..2]),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("accept:"),
            "{b}"
        );
        assert!(n.accounts_of(EMAIL).await.is_empty());
        let rows = n
            .server
            .store()
            .saas_registration_code_rows(EMAIL)
            .await
            .unwrap();
        assert_eq!((rows[0].1, rows[0].2), (1, 0), "one attempt, not used");

        // spec: SVC-001, SVC-160, SVC-210
        n.set("2025-06-01T10:05:00Z");
        let (s, b) = n
            .post("/auth/register/complete", Node::body(EMAIL, &code, &ids))
            .await;
        assert_eq!(s, 200, "{b}");
        let d = &b["data"];
        assert_eq!(d["registered"], true);
        assert_eq!(d["existing_identity"], false);
        assert_eq!(d["state"], "trial");
        assert_eq!(d["region"], "cn-north");
        assert_eq!(d["currency"], "CNY");
        let account_id = d["account_id"].as_i64().unwrap();
        assert_ne!(account_id, n.server.bootstrap().account_id);
        assert_eq!(
            d["trial_ends_at"].as_i64().unwrap(),
            ms("2025-06-15T10:05:00Z") / 1000
        );
        let store = n.server.store();
        let settings = n.server.saas_settings().unwrap();
        let t = store
            .saas_tenant(settings, account_id, n.now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.state.to_string(), "trial");
        assert_eq!(t.region, "cn-north");
        assert_eq!(t.currency.code, "CNY");
        // spec: SVC-213
        let dir = store
            .saas_directory_entry(account_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (dir.region.as_str(), dir.source.as_str()),
            ("cn-north", "registration")
        );
        // spec: SVC-002, SVC-005
        let (etype, legal, verification, contact) = store
            .saas_entity_and_contact(account_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (etype.as_str(), legal.as_str(), verification.as_str()),
            ("organisation", "Example Operations Ltd", "unverified")
        );
        assert_eq!(contact, EMAIL);

        // spec: SVC-032
        // One acceptance record per version shown, with the request's evidence.
        let acc = store.saas_acceptances(account_id).await.unwrap();
        assert_eq!(acc.len(), 4);
        for a in &acc {
            assert_eq!(a.method, "explicit_registration");
            assert_eq!(a.role, "owner");
            assert_eq!(a.decision, "accepted");
            assert_eq!(a.client_ip, "127.0.0.1");
            assert_eq!(a.user_agent, "registration-test/1.0");
            assert_eq!(a.client_type, "api");
            assert_eq!(a.login, EMAIL);
            assert_eq!(a.decided_at, ms("2025-06-01T10:05:00Z"));
            assert!(
                a.evidence.contains("consent_label_sha256"),
                "{}",
                a.evidence
            );
            assert_eq!(a.content_sha256.len(), 64);
        }

        // spec: RSP-600
        // The new tenant's audit log starts with the registration, with the client's IP.
        let page = store
            .search_audit(
                account_id,
                &klaxon_store::AuditFilter {
                    start: 0,
                    end: n.now() + 1,
                    operations: vec!["member:write:register".into()],
                    limit: 10,
                    now: n.now(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].ip, "127.0.0.1");

        // The code is spent: it does not register a second tenant.
        let (s, b) = n
            .post("/auth/register/complete", Node::body(EMAIL, &code, &ids))
            .await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(n.accounts_of(EMAIL).await, vec![account_id]);

        // The owner signs in with the chosen password, and the APP key shown once works.
        let (s, b) = n
            .post("/auth/login", json!({"email": EMAIL, "password": PASSWORD}))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["account_id"], account_id);
        let resp = n
            .http
            .post(format!(
                "{}/account/agreement/list?app_key={}",
                n.server.base_url(),
                d["app_key"].as_str().unwrap()
            ))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let list: Value = resp.json().await.unwrap();
        let items = list["data"]["items"].as_array().unwrap();
        assert!(
            items
                .iter()
                .filter(|v| ids.contains(&v["version_id"].as_i64().unwrap()))
                .all(|v| v["decision"]["method"] == "explicit_registration"),
            "{list}"
        );
        n.stop().await;
    }
);

on_both_backends!(
    an_expired_or_guessed_code_creates_nothing,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-01T10:00:00Z").await;
        let ids = n.publish_registration_set("2025-06-01T10:00:00Z").await;
        let (s, b) = n.request_code(EMAIL).await;
        assert_eq!(s, 200, "{b}");
        let code = n.code_for(EMAIL);

        // spec: SVC-001
        // Ten minutes after sending, the right code is expired.
        n.set("2025-06-01T10:10:00Z");
        let (s, b) = n
            .post("/auth/register/complete", Node::body(EMAIL, &code, &ids))
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("expired"),
            "{b}"
        );
        assert!(n.accounts_of(EMAIL).await.is_empty());

        // spec: SVC-001 (decision: 5 attempts per code)
        // Five wrong guesses void a fresh code: then even the right one fails.
        let (s, b) = n.request_code(EMAIL).await;
        assert_eq!(s, 200, "{b}");
        let code = n.code_for(EMAIL);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            let (s, _) = n
                .post("/auth/register/complete", Node::body(EMAIL, wrong, &ids))
                .await;
            assert_eq!(s, 400);
        }
        let (s, b) = n
            .post("/auth/register/complete", Node::body(EMAIL, &code, &ids))
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("too many"),
            "{b}"
        );
        assert!(n.accounts_of(EMAIL).await.is_empty());

        // Codes per address are limited: five an hour, the sixth is refused with 429 and
        // no mail is sent.
        for _ in 0..3 {
            assert_eq!(n.request_code(EMAIL).await.0, 200);
        }
        let before = n.sink.mails().len();
        let (s, b) = n.request_code(EMAIL).await;
        assert_eq!(s, 429, "{b}");
        assert_eq!(n.sink.mails().len(), before);
        // Another address is not affected.
        assert_eq!(n.request_code("bob@example.com").await.0, 200);

        // Bad input names the field and sends nothing.
        let (s, b) = n
            .post(
                "/auth/register/code",
                json!({"email": "not-an-address", "region": "cn-north"}),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("email:"),
            "{b}"
        );
        let mut bad = Node::body("bob@example.com", "123456", &ids);
        bad["legal_entity_type"] = json!("company");
        let (s, b) = n.post("/auth/register/complete", bad).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("legal_entity_type:"),
            "{b}"
        );
        n.stop().await;
    }
);

on_both_backends!(
    an_existing_identity_gets_an_additional_tenant,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-01T10:00:00Z").await;
        let ids = n.publish_registration_set("2025-06-01T10:00:00Z").await;
        n.request_code(EMAIL).await;
        let (s, b) = n
            .post(
                "/auth/register/complete",
                Node::body(EMAIL, &n.code_for(EMAIL), &ids),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let first = b["data"]["account_id"].as_i64().unwrap();

        // spec: SVC-008
        // The same address registers again: it must sign in with its password …
        n.set("2025-06-01T11:00:00Z");
        n.request_code(EMAIL).await;
        let code = n.code_for(EMAIL);
        let mut other = Node::body(EMAIL, &code, &ids);
        other["organisation"] = json!("Second Org");
        other["password"] = json!("a different password");
        let (s, b) = n.post("/auth/register/complete", other.clone()).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("password:"),
            "{b}"
        );
        assert_eq!(n.accounts_of(EMAIL).await, vec![first]);
        // A wrong password costs one of the code's five tries, so a code is no way around
        // the sign-in lockout.
        let rows = n
            .server
            .store()
            .saas_registration_code_rows(EMAIL)
            .await
            .unwrap();
        assert_eq!(rows.last().unwrap().1, 1);

        // … and then gets one more tenant, with no duplicate identity: the same password
        // signs in to both, and sign-in asks which one.
        other["password"] = json!(PASSWORD);
        let (s, b) = n.post("/auth/register/complete", other).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["existing_identity"], true);
        let second = b["data"]["account_id"].as_i64().unwrap();
        assert_ne!(first, second);
        assert_eq!(n.accounts_of(EMAIL).await, vec![first, second]);
        let (s, b) = n
            .post("/auth/login", json!({"email": EMAIL, "password": PASSWORD}))
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("several accounts"),
            "{b}"
        );
        let (s, b) = n
            .post(
                "/auth/login",
                json!({"email": EMAIL, "password": PASSWORD, "account_id": second}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        // Tenant-level acceptances are per tenant (SVC-008).
        let acc = n.server.store().saas_acceptances(second).await.unwrap();
        assert_eq!(acc.len(), 4);
        n.stop().await;
    }
);

on_both_backends!(
    another_region_is_answered_with_its_address,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-01T10:00:00Z").await;
        let ids = n.publish_registration_set("2025-06-01T10:00:00Z").await;

        // spec: SVC-210, SVC-211
        // A code for another region: that region's address, nothing sent or stored here.
        let (s, b) = n
            .post(
                "/auth/register/code",
                json!({"email": EMAIL, "region": "eu-west"}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["registered"], false);
        assert_eq!(
            b["data"]["register_url"],
            "https://eu.example.com/register?region=eu-west"
        );
        assert_eq!(b["data"]["region"]["name"], "Europe West");
        assert!(n.sink.mails().is_empty());
        assert!(
            n.server
                .store()
                .saas_registration_code_rows(EMAIL)
                .await
                .unwrap()
                .is_empty()
        );
        // The registration step answers the same and creates nothing.
        let mut body = Node::body(EMAIL, "123456", &ids);
        body["region"] = json!("eu-west");
        let (s, b) = n.post("/auth/register/complete", body).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["registered"], false);
        assert!(n.accounts_of(EMAIL).await.is_empty());
        // The console sends the browser there.
        let resp = n
            .form("/register/code", &[("email", EMAIL), ("region", "eu-west")])
            .await;
        assert_eq!(resp.status().as_u16(), 303);
        assert_eq!(
            resp.headers()["location"],
            "https://eu.example.com/register?region=eu-west"
        );
        // An unknown region names the field and the regions there are.
        let (s, b) = n
            .post(
                "/auth/register/code",
                json!({"email": EMAIL, "region": "us-east"}),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        let m = b["error"]["message"].as_str().unwrap();
        assert!(
            m.starts_with("region:") && m.contains("cn-north, eu-west"),
            "{m}"
        );

        // spec: SVC-215
        // A registered tenant keeps its region: moving it is refused.
        n.request_code(EMAIL).await;
        let (s, b) = n
            .post(
                "/auth/register/complete",
                Node::body(EMAIL, &n.code_for(EMAIL), &ids),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let account_id = b["data"]["account_id"].as_i64().unwrap();
        let err = n
            .server
            .store()
            .saas_set_region(account_id, "eu-west")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("SVC-215"), "{err}");
        n.server
            .store()
            .saas_set_region(account_id, "cn-north")
            .await
            .unwrap();
        // The database itself refuses to move the directory entry, on both backends.
        let sql = format!(
            "UPDATE saas_tenant_directory SET region = 'eu-west' WHERE account_id = {account_id}"
        );
        let out = n.sql(&sql).await;
        assert!(!out.status.success(), "the region was changed");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("SVC-215"), "{err}");
        let dir = n
            .server
            .store()
            .saas_directory_entry(account_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(dir.region, "cn-north");
        n.stop().await;
    }
);

on_both_backends!(
    the_console_page_registers_and_signs_in,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-01T10:00:00Z").await;
        n.publish_registration_set("2025-06-01T10:00:00Z").await;
        let page = n
            .http
            .get(format!("{}/register", n.server.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("action=\"/register/code\""), "{html}");
        assert!(html.contains("Europe West"), "{html}");

        // Step 1 with a bad address: the error is beside the e-mail field, the value kept.
        let resp = n
            .form(
                "/register/code",
                &[("email", "ann@"), ("region", "cn-north")],
            )
            .await;
        assert_eq!(resp.status().as_u16(), 400);
        let html = resp.text().await.unwrap();
        assert!(html.contains("id=\"email-error\""), "{html}");
        assert!(html.contains("value=\"ann@\""), "{html}");

        let resp = n
            .form(
                "/register/code",
                &[("email", EMAIL), ("region", "cn-north")],
            )
            .await;
        assert_eq!(resp.status().as_u16(), 200);
        let html = resp.text().await.unwrap();
        // spec: SVC-032
        // Step 2 lists the documents and an unticked consent checkbox.
        assert!(html.contains("Terms of Service"), "{html}");
        assert!(html.contains("Data Protection Agreement"), "{html}");
        assert!(html.contains("User Agreement"), "{html}");
        assert!(html.contains("name=\"accept\" value=\"yes\""), "{html}");
        assert!(!html.contains("checked"), "{html}");
        let versions: Vec<String> = html
            .split("name=\"version\" value=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect();
        assert_eq!(versions.len(), 4);
        let code = n.code_for(EMAIL);
        let mut fields: Vec<(&str, &str)> = vec![
            ("email", EMAIL),
            ("region", "cn-north"),
            ("code", &code),
            ("password", PASSWORD),
            ("organisation", "Console Org"),
            ("legal_entity_type", "individual"),
            ("legal_name", "Ann Example"),
        ];
        for v in &versions {
            fields.push(("version", v));
        }

        // spec: SVC-001, SVC-032
        // Unticked: the error is beside the checkbox, the values are kept, nothing created.
        let resp = n.form("/register", &fields).await;
        assert_eq!(resp.status().as_u16(), 400);
        let html = resp.text().await.unwrap();
        assert!(html.contains("id=\"accept-error\""), "{html}");
        assert!(html.contains("value=\"Console Org\""), "{html}");
        assert!(html.contains("value=\"Ann Example\""), "{html}");
        assert!(!html.contains(PASSWORD), "the password is never sent back");
        assert!(n.accounts_of(EMAIL).await.is_empty());

        // Ticked: the tenant exists and the browser is signed in to it.
        fields.push(("accept", "yes"));
        let resp = n.form("/register", &fields).await;
        assert_eq!(resp.status().as_u16(), 303);
        assert_eq!(resp.headers()["location"], "/incidents");
        let cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with("klaxon_session=") && !c.starts_with("klaxon_session=;")),
            "{cookies:?}"
        );
        let accounts = n.accounts_of(EMAIL).await;
        assert_eq!(accounts.len(), 1);
        let acc = n
            .server
            .store()
            .saas_acceptances(accounts[0])
            .await
            .unwrap();
        assert_eq!(acc.len(), 4);
        assert!(
            acc.iter()
                .all(|a| a.client_type == "web" && a.user_agent == "registration-browser/1.0")
        );
        let (etype, ..) = n
            .server
            .store()
            .saas_entity_and_contact(accounts[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(etype, "individual");
        n.stop().await;
    }
);

on_both_backends!(
    registration_is_closed_without_published_documents,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-01T10:00:00Z").await;
        // spec: SVC-032
        // No published registration documents: nothing could be accepted, so nothing is
        // created.
        n.request_code(EMAIL).await;
        let (s, b) = n
            .post(
                "/auth/register/complete",
                Node::body(EMAIL, &n.code_for(EMAIL), &[1]),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("not open"),
            "{b}"
        );
        assert!(n.accounts_of(EMAIL).await.is_empty());
        n.stop().await;
    }
);

on_both_backends!(
    a_self_hosted_node_has_no_registration,
    |url: String| async move {
        // spec: SVC-401
        let n = Node::start_with(&url, "2025-06-01T10:00:00Z", |_| {}).await;
        for path in ["/register", "/auth/register/info"] {
            let resp = n
                .http
                .get(format!("{}{path}", n.server.base_url()))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 404, "{path}");
        }
        for path in ["/auth/register/code", "/auth/register/complete"] {
            let (s, _) = n.post(path, json!({"email": EMAIL})).await;
            assert_eq!(s, 404, "{path}");
        }
        assert!(n.sink.mails().is_empty());
        n.stop().await;
    }
);

/// The console page end to end in a real browser (SQLite: the store paths are covered on
/// both backends above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_in_the_browser() {
    // The node first: its start installs the TLS crypto provider the HTTP clients use.
    let n = Node::start("", "2025-06-01T10:00:00Z").await;
    let Some(b) = Browser::start().await else {
        return;
    };
    n.publish_registration_set("2025-06-01T10:00:00Z").await;
    let base = n.server.base_url().to_string();
    let c = &b.client;

    c.goto(&format!("{base}/register")).await.unwrap();
    assert_eq!(unlabelled_inputs(c).await, 0);
    shoot(c, "register").await;
    type_into(c, "#email", EMAIL).await;
    click(c, "button[type=submit]").await;
    until("#code", || exists(c, "#code")).await;

    // spec: SVC-032
    // Step 2 shows the documents and an unticked consent box; every control is labelled.
    let html = c.source().await.unwrap();
    assert!(html.contains("Data Protection Agreement"), "{html}");
    assert_eq!(unlabelled_inputs(c).await, 0);
    let ticked = c
        .find(fantoccini::Locator::Css("input[name=accept]"))
        .await
        .unwrap()
        .prop("checked")
        .await
        .unwrap();
    assert_eq!(ticked.as_deref(), Some("false"));
    shoot(c, "register-documents").await;
    type_into(c, "#code", &n.code_for(EMAIL)).await;
    type_into(c, "#password", PASSWORD).await;
    type_into(c, "#organisation", "Browser Org").await;
    type_into(c, "#legal_name", "Browser Org Ltd").await;

    // spec: SVC-001
    // Submitted without ticking: the error is beside the box, the values are kept.
    click(c, "button[type=submit]").await;
    until("#accept-error", || exists(c, "#accept-error")).await;
    assert!(
        text_of(c, "#accept-error")
            .await
            .contains("must be accepted"),
        "{}",
        c.source().await.unwrap()
    );
    let kept = c
        .find(fantoccini::Locator::Css("#organisation"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some("Browser Org"));
    assert!(n.accounts_of(EMAIL).await.is_empty());
    shoot(c, "register-error").await;

    // Ticked: registered, signed in, and on the incident list of the new tenant.
    type_into(c, "#password", PASSWORD).await;
    click(c, "input[name=accept]").await;
    click(c, "button[type=submit]").await;
    // The main navigation, shown to a signed-in person: the redirect was followed.
    until("a[href=\"/incidents\"][aria-current=page]", || {
        exists(c, "a[href=\"/incidents\"][aria-current=page]")
    })
    .await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/incidents", "{}", c.source().await.unwrap());
    assert_eq!(n.accounts_of(EMAIL).await.len(), 1);
    b.stop().await;
    n.stop().await;
}
