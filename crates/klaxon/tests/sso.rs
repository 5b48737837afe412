//! Single sign-on with OpenID Connect against a real OpenID provider run locally (the
//! `oidc-provider` package, `tests/oidc/provider.mjs`; `npm ci` in `tests/oidc` installs it).
//! The test drives the whole browser flow over HTTP: Klaxon's sign-in page, the provider's
//! login and consent forms, the callback, and the console session it opens.
//!
//! Skipped when node or the provider's modules are missing, except under `CI=true`, where
//! that is a failure. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{ManualClock, test_config, wall_ms};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const CLIENT_ID: &str = "klaxon-test";
const CLIENT_SECRET: &str = "klaxon-test-client-secret";
const DOMAIN: &str = "acme";

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// The provider's modules and node, or `None` (a skip) outside CI.
fn provider_available() -> bool {
    let modules = provider_dir().join("node_modules/oidc-provider/package.json");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if modules.exists() && node {
        return true;
    }
    let why = if node {
        "tests/oidc/node_modules is missing (run `npm ci` in crates/klaxon/tests/oidc)"
    } else {
        "node is not installed"
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the OpenID provider cannot run: {why}");
    }
    eprintln!("SSO test skipped: {why}");
    false
}

struct Provider {
    _child: tokio::process::Child,
    issuer: String,
}

async fn start_provider(redirect_uri: &str) -> Provider {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new("node")
        .current_dir(provider_dir())
        .arg("provider.mjs")
        .arg(port.to_string())
        .arg(CLIENT_ID)
        .arg(CLIENT_SECRET)
        .arg(redirect_uri)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // A guard against a provider that never comes up, not a timing assertion.
    let issuer = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(issuer) = line.strip_prefix("listening ") {
                return issuer.trim().to_string();
            }
        }
        panic!("the OpenID provider exited before listening");
    })
    .await
    .unwrap();
    // Keep reading, so the provider never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Provider {
        _child: child,
        issuer,
    }
}

/// A browser: follows nothing by itself, keeps cookies by name (Klaxon's and the provider's
/// names differ, and both run on 127.0.0.1).
struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
}

struct Page {
    url: reqwest::Url,
    status: u16,
    location: Option<reqwest::Url>,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, url: reqwest::Url) -> Page {
        let resp = req
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let mut parts = v.split(';');
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            // Only the attributes say whether a cookie is removed: a random value may well
            // contain "1970" or "max-age=0" itself.
            let expired = value.is_empty()
                || parts.any(|attr| {
                    let attr = attr.trim().to_ascii_lowercase();
                    attr == "max-age=0" || (attr.starts_with("expires=") && attr.contains("1970"))
                });
            if expired {
                self.jar.remove(name.trim());
            } else {
                self.jar.insert(name.trim().to_string(), value.to_string());
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| url.join(l.to_str().unwrap()).unwrap());
        let body = resp.text().await.unwrap_or_default();
        Page {
            url,
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let url = reqwest::Url::parse(url).unwrap();
        let req = self.http.get(url.clone());
        self.send(req, url).await
    }

    async fn post_form(&mut self, url: reqwest::Url, form: &[(&str, &str)]) -> Page {
        let req = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        self.send(req, url).await
    }
}

/// The `action` of the first form of a page.
fn form_action(page: &Page) -> reqwest::Url {
    let start = page.body.find("action=\"").expect("a form") + "action=\"".len();
    let end = start + page.body[start..].find('"').unwrap();
    let action = page.body[start..end].replace("&amp;", "&");
    page.url.join(&action).unwrap()
}

struct Node {
    ts: common::TestServer,
    clock: Arc<ManualClock>,
    password: String,
    email: String,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.delivery = false;
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let password = server.owner_password().unwrap().to_string();
        let email = server.bootstrap().owner_email.clone();
        let ts = common::TestServer {
            base: server.base_url().to_string(),
            app_key: server.bootstrap().app_key.clone(),
            integration_key: server.bootstrap().integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: database_url.to_string(),
        };
        Node {
            ts,
            clock,
            password,
            email,
        }
    }

    fn redirect_uri(&self) -> String {
        format!("{}/sso/oidc/callback/{DOMAIN}", self.ts.base)
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    async fn member(&self, email: &str) -> Option<Value> {
        let (status, body) = self.api("/member/list", json!({"limit": 100})).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"].as_str().unwrap().eq_ignore_ascii_case(email))
            .cloned()
    }

    async fn member_count(&self) -> usize {
        let (_, body) = self.api("/member/list", json!({"limit": 100})).await;
        body["data"]["items"].as_array().unwrap().len()
    }

    /// Signs in through the provider as `login`: Klaxon's SSO form, the provider's login and
    /// consent pages, back to the callback. Returns the last page and the browser.
    async fn sso_login(&self, login: &str) -> (Page, Browser) {
        // The provider stamps its tokens with the wall clock: Klaxon's clock is set to it.
        self.clock.0.store(wall_ms(), Ordering::SeqCst);
        let mut b = Browser::new();
        let mut page = b
            .get(&format!(
                "{}/sso/start?login_domain={DOMAIN}&next=%2Fincidents",
                self.ts.base
            ))
            .await;
        for _ in 0..20 {
            if let Some(next) = page.location.clone() {
                // Back at Klaxon with a session: the sign-in is done.
                if next.path() == "/incidents" {
                    return (page, b);
                }
                page = b.get(next.as_str()).await;
                continue;
            }
            if page.status == 200 && page.body.contains("name=\"login\"") {
                let action = form_action(&page);
                page = b
                    .post_form(
                        action,
                        &[("prompt", "login"), ("login", login), ("password", "any")],
                    )
                    .await;
                continue;
            }
            if page.status == 200 && page.body.contains("value=\"consent\"") {
                let action = form_action(&page);
                page = b.post_form(action, &[("prompt", "consent")]).await;
                continue;
            }
            return (page, b);
        }
        panic!("the sign-in did not settle: {} {}", page.status, page.url);
    }

    /// The member of the browser's session (`/auth/session`).
    async fn session_member(&self, b: &Browser) -> i64 {
        let token = b.jar.get("klaxon_session").expect("a session cookie");
        let resp = self
            .ts
            .http
            .get(format!("{}/auth/session", self.ts.base))
            .header("cookie", format!("klaxon_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body: Value = resp.json().await.unwrap();
        body["data"]["member_id"].as_i64().unwrap()
    }

    async fn account_id(&self) -> i64 {
        let (_, body) = self.api("/account/info", json!({})).await;
        body["data"]["account_id"].as_i64().unwrap()
    }

    async fn configure(&self, body: Value) -> (u16, Value) {
        self.api("/account/sso/update", body).await
    }
}

on_both_backends!(oidc_sign_in_end_to_end, |url: String| async move {
    if !provider_available() {
        return;
    }
    let node = Node::start(&url).await;
    let provider = start_provider(&node.redirect_uri()).await;

    // spec: RSP-570 — the configuration, read back without the client secret.
    let (status, body) = node
        .configure(json!({
            "enabled": true,
            "protocol": "oidc",
            "login_domain": DOMAIN,
            "oidc": {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    let info = &info["data"];
    assert_eq!(info["login_domain"], DOMAIN);
    assert_eq!(info["oidc"]["has_client_secret"], true);
    assert_eq!(info["oidc"]["redirect_url"], node.redirect_uri());
    assert_eq!(info["default_role_ids"], json!([8]));
    assert!(!info.to_string().contains(CLIENT_SECRET), "{info}");

    // spec: RSP-571 — the sign-in page offers SSO by login domain.
    let page = node
        .ts
        .http
        .get(format!("{}/signin", node.ts.base))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in with SSO"), "{html}");
    assert!(html.contains("name=\"login_domain\""), "{html}");

    // Team mapping: the `groups` claim's "oncall-sre" puts the member into the SRE team.
    let (status, body) = node.api("/team/upsert", json!({"team_name": "SRE"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node
        .configure(json!({"team_mapping": {"attribute": "groups",
                          "rules": [{"value": "oncall-sre", "team_name": "SRE"}]}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["team_mapping"]["attribute"], "groups",
        "{body}"
    );

    // spec: RSP-572, RSP-573, RSP-575 — a first sign-in creates the member just in time with
    // the mapped fields (the name and phone come from the userinfo endpoint, the provider
    // leaves them out of the ID token) and the default role.
    let before = node.member_count().await;
    let (page, browser) = node.sso_login("ann").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let ann_id = node.session_member(&browser).await;
    assert_eq!(node.member_count().await, before + 1);
    let ann = node
        .member("ann.lee@example.com")
        .await
        .expect("ann was created");
    assert_eq!(ann["member_id"].as_i64().unwrap(), ann_id);
    assert_eq!(ann["member_name"], "Ann Lee");
    assert_eq!(ann["email"], "Ann.Lee@example.com");
    assert_eq!(ann["status"], "enabled");
    assert_eq!(ann["account_role_ids"], json!([8]));
    assert_eq!(ann["email_verified"], true);
    assert_eq!(ann["phone_verified"], false);
    assert!(ann["phone"].as_str().unwrap().starts_with("+14"), "{ann}");
    assert!(ann["phone"].as_str().unwrap().ends_with("0100"), "{ann}");
    let (status, sre) = node.api("/team/info", json!({"team_name": "SRE"})).await;
    assert_eq!(status, 200, "{sre}");
    assert_eq!(sre["data"]["person_ids"], json!([ann_id]), "{sre}");
    // The signed-in console works with the session.
    let token = browser.jar.get("klaxon_session").unwrap().clone();
    let resp = node
        .ts
        .http
        .get(format!("{}/incidents", node.ts.base))
        .header("cookie", format!("klaxon_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // spec: RSP-573 — a later sign-in logs the same member in and overwrites nothing.
    let (status, body) = node
        .api(
            "/member/info/reset",
            json!({"member_id": ann_id, "updates": {"member_name": "Ann Changed Here"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (page, browser) = node.sso_login("ann").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(node.session_member(&browser).await, ann_id);
    assert_eq!(node.member_count().await, before + 1);
    let again = node.member("ann.lee@example.com").await.unwrap();
    assert_eq!(again["member_name"], "Ann Changed Here");

    // spec: RSP-572 — an invited (pending) member is matched by email, case-insensitively,
    // becomes enabled and keeps the name Klaxon has.
    let (status, body) = node
        .api(
            "/member/invite",
            json!({"members": [{"email": "INVITED@example.com", "member_name": "Invited Here"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        node.member("invited@example.com").await.unwrap()["status"],
        "pending"
    );
    let (page, browser) = node.sso_login("invited").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let invited = node.member("invited@example.com").await.unwrap();
    assert_eq!(
        node.session_member(&browser).await,
        invited["member_id"].as_i64().unwrap()
    );
    assert_eq!(invited["status"], "enabled");
    assert_eq!(invited["member_name"], "Invited Here");

    // spec: RSP-572 — without an email the sign-in is refused and no member is created.
    let count = node.member_count().await;
    let (page, browser) = node.sso_login("noemail").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("no email address"), "{}", page.body);
    assert!(!browser.jar.contains_key("klaxon_session"));
    assert_eq!(node.member_count().await, count);

    // spec: RSP-572 — with create_account_on_login = false an unknown user is "not invited".
    let (status, body) = node
        .configure(json!({"create_account_on_login": false}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (page, browser) = node.sso_login("bob").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("not invited"), "{}", page.body);
    assert!(!browser.jar.contains_key("klaxon_session"));
    assert!(node.member("bob@example.com").await.is_none());
    // An existing member still signs in.
    let (page, browser) = node.sso_login("ann").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(node.session_member(&browser).await, ann_id);

    // spec: RSP-578 — the owner's password sign-in still works with SSO on.
    let resp = node
        .ts
        .http
        .post(format!("{}/auth/login", node.ts.base))
        .json(&json!({"email": node.email, "password": node.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
});

on_both_backends!(oidc_state_is_checked, |url: String| async move {
    if !provider_available() {
        return;
    }
    let node = Node::start(&url).await;
    let provider = start_provider(&node.redirect_uri()).await;
    let (status, body) = node
        .configure(json!({
            "enabled": true, "login_domain": DOMAIN,
            "oidc": {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        }))
        .await;
    assert_eq!(status, 200, "{body}");

    // spec: RSP-575 — the start redirects to the provider's authorization endpoint with
    // state, nonce and PKCE (S256) and the scopes of the rule.
    let mut b = Browser::new();
    let page = b
        .get(&format!("{}/sso/oidc/start/{DOMAIN}", node.ts.base))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let to = page.location.unwrap();
    assert!(
        to.as_str()
            .starts_with(&format!("{}/auth?", provider.issuer)),
        "{to}"
    );
    let q: BTreeMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "openid email phone");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], node.redirect_uri());
    assert_eq!(q["client_id"], CLIENT_ID);
    assert!(q["nonce"].len() >= 32 && q["state"].len() >= 32);
    assert!(b.jar.contains_key("klaxon_sso_state"));

    // A made-up state is refused, and so is the right state from another browser.
    let forged = b
        .get(&format!(
            "{}/sso/oidc/callback/{DOMAIN}?code=abc&state=forged",
            node.ts.base
        ))
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.body.contains("state"), "{}", forged.body);
    let mut other = Browser::new();
    let stolen = other
        .get(&format!(
            "{}/sso/oidc/callback/{DOMAIN}?code=abc&state={}",
            node.ts.base, q["state"]
        ))
        .await;
    assert_eq!(stolen.status, 400, "{}", stolen.body);
    assert!(!other.jar.contains_key("klaxon_session"));

    // An unknown login domain gets a clear answer on the sign-in page.
    let mut b = Browser::new();
    let page = b
        .get(&format!("{}/sso/start?login_domain=nosuch", node.ts.base))
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("no single sign-on"), "{}", page.body);
});

on_both_backends!(sso_configuration_is_validated, |url: String| async move {
    let node = Node::start(&url).await;
    let bad = [
        (json!({"login_domain": "Not A Domain"}), "login_domain"),
        (json!({"login_domain": "-x"}), "login_domain"),
        (
            json!({"login_domain": "acme", "oidc": {"issuer": "https://id.example.com/?tenant=1"}}),
            "oidc.issuer",
        ),
        (
            json!({"login_domain": "acme", "protocol": "kerberos"}),
            "protocol",
        ),
        (
            json!({"login_domain": "acme", "enabled": true}),
            "oidc.issuer",
        ),
        (
            json!({"login_domain": "acme", "default_role_ids": [987654]}),
            "default_role_ids",
        ),
        (
            json!({"login_domain": "acme", "field_mapping": {"email": ""}}),
            "field_mapping.email",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = node.configure(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "InvalidParameter", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{body} -> {message}");
    }
    // Nothing was stored by the refused updates.
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    assert_eq!(info["data"]["configured"], false, "{info}");

    let (status, body) = node
        .configure(json!({"login_domain": "acme", "oidc": {"issuer": "https://id.example.com", "client_id": "c", "client_secret": "s"}}))
        .await;
    assert_eq!(status, 200, "{body}");

    // spec: RSP-571 — the login domain is unique across the installation: a second account
    // of the same installation cannot take it, and keeps none of the first one's settings.
    let seed = klaxon_store::BootstrapSeed {
        account_name: "Tenant B".into(),
        owner_email: "owner@tenant-b.example".into(),
        owner_name: "B Owner".into(),
        owner_password: "another long password".into(),
        app_key: "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0".into(),
        integration_key: "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1".into(),
    };
    let b = node
        .ts
        .server
        .as_ref()
        .unwrap()
        .store()
        .create_account(&seed, wall_ms())
        .await
        .unwrap();
    let as_b = |body: Value| {
        let http = node.ts.http.clone();
        let url = format!("{}/account/sso/update?app_key={}", node.ts.base, b.app_key);
        async move {
            let resp = http.post(url).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) = as_b(json!({"login_domain": "acme"})).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{answer}"
    );
    let (status, answer) = as_b(json!({"login_domain": "tenant-b"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["data"]["oidc"]["has_client_secret"], false,
        "{answer}"
    );
    // The first account's configuration is untouched.
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    assert_eq!(info["data"]["login_domain"], "acme");
    assert_eq!(info["data"]["oidc"]["has_client_secret"], true);
});

on_both_backends!(sso_permissions, |url: String| async move {
    // spec: RSP-570 — reading needs SSO Read, changing needs SSO Manage: a Viewer (holds
    // every Read point) reads but cannot change; a Responder (no SSO Manage) cannot change.
    let node = Node::start(&url).await;
    let (status, body) = node
        .api(
            "/member/invite",
            json!({"members": [
                {"email": "viewer@example.com", "role_ids": [8]},
                {"email": "responder@example.com", "role_ids": [6]},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for (email, may_read) in [
        ("viewer@example.com", true),
        ("responder@example.com", true),
    ] {
        let member_id = node.member(email).await.unwrap()["member_id"]
            .as_i64()
            .unwrap();
        let key = format!("{:032x}", member_id + 0x5550);
        let account_id = node.account_id().await;
        node.ts
            .server
            .as_ref()
            .unwrap()
            .store()
            .add_app_key(account_id, member_id, "sso test", &key, wall_ms())
            .await
            .unwrap()
            .unwrap();
        let call = |path: &str, body: Value| {
            let http = node.ts.http.clone();
            let url = format!("{}{path}?app_key={key}", node.ts.base);
            async move {
                let resp = http.post(url).json(&body).send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap())
            }
        };
        let (status, body) = call("/account/sso/info", json!({})).await;
        assert_eq!(status == 200, may_read, "{email}: {body}");
        let (status, body) = call("/account/sso/update", json!({"login_domain": "acme"})).await;
        assert_eq!(status, 403, "{email}: {body}");
        assert_eq!(body["error"]["code"], "AccessDenied", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("SSO Manage"),
            "{body}"
        );
    }
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    assert_eq!(info["data"]["configured"], false, "{info}");
});
