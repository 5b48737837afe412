//! SAML 2.0 sign-in against a real SAML identity provider run locally (the `samlify`
//! package, `tests/saml/idp.mjs`; `npm ci` in `tests/saml` installs it). The IdP reads
//! Klaxon's SP metadata, checks Klaxon's AuthnRequest against the SAML schema and answers
//! with responses signed by xml-crypto, genuine or forged on request (see idp.mjs). The test
//! drives the browser's part over HTTP: Klaxon's sign-in form, the redirect to the IdP, the
//! IdP's login form, and the auto-posted response at Klaxon's ACS.
//!
//! Only built with the `saml` feature (on by default). The IdP tests skip when node or the
//! IdP's modules are missing, except under `CI=true`, where that is a failure. SQLite always,
//! PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.
#![cfg(feature = "saml")]
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

const DOMAIN: &str = "acme";

fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/saml")
}

/// The IdP's modules and node, or `None` (a skip) outside CI.
fn idp_available() -> bool {
    let modules = idp_dir().join("node_modules/samlify/package.json");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if modules.exists() && node {
        return true;
    }
    let why = if node {
        "tests/saml/node_modules is missing (run `npm ci` in crates/klaxon/tests/saml)"
    } else {
        "node is not installed"
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the SAML identity provider cannot run: {why}");
    }
    eprintln!("SAML test skipped: {why}");
    false
}

struct Idp {
    _child: tokio::process::Child,
    base: String,
}

async fn start_idp(sp_metadata_url: &str) -> Idp {
    start_idp_with(sp_metadata_url, None).await
}

/// The IdP, with an option of idp.mjs (`want-signed-requests`).
async fn start_idp_with(sp_metadata_url: &str, option: Option<&str>) -> Idp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new("node")
        .current_dir(idp_dir())
        .arg("idp.mjs")
        .arg(port.to_string())
        .arg(sp_metadata_url)
        .args(option)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // A guard against an IdP that never comes up, not a timing assertion.
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(base) = line.strip_prefix("listening ") {
                return base.trim().to_string();
            }
        }
        panic!("the SAML IdP exited before listening");
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Idp {
        _child: child,
        base,
    }
}

/// A browser: follows nothing by itself, keeps cookies by name.
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

    async fn send(&mut self, req: reqwest::RequestBuilder, url: reqwest::Url) -> Page {
        let cookies = self
            .jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let resp = req.header("cookie", cookies).send().await.unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (name, value) = v.split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() || v.to_ascii_lowercase().contains("max-age=0") {
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

    /// The console's sign-out, as its button sends it (with the CSRF token of the cookie).
    async fn sign_out(&mut self, base: &str) -> Page {
        let url = reqwest::Url::parse(&format!("{base}/signout")).unwrap();
        let csrf = self.jar.get("klaxon_csrf").expect("a CSRF cookie").clone();
        let req = self.http.post(url.clone()).header("x-klaxon-csrf", csrf);
        self.send(req, url).await
    }

    /// The JSON API's sign-out, `POST /auth/logout` with the CSRF header.
    async fn api_sign_out(&mut self, base: &str) -> Page {
        let url = reqwest::Url::parse(&format!("{base}/auth/logout")).unwrap();
        let csrf = self.jar.get("klaxon_csrf").expect("a CSRF cookie").clone();
        let req = self.http.post(url.clone()).header("x-klaxon-csrf", csrf);
        self.send(req, url).await
    }

    async fn post_form(&mut self, url: reqwest::Url, form: &[(String, String)]) -> Page {
        let req = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        self.send(req, url).await
    }
}

/// The `action` of the page's form and its hidden fields.
fn form(page: &Page) -> (reqwest::Url, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + tag[start..].find('"')?;
        Some(
            tag[start..end]
                .replace("&amp;", "&")
                .replace("&quot;", "\""),
        )
    };
    let form_start = page.body.find("<form").expect("a form");
    let form_tag = &page.body[form_start..form_start + page.body[form_start..].find('>').unwrap()];
    let action = page.url.join(&attr(form_tag, "action").unwrap()).unwrap();
    let mut fields = Vec::new();
    for piece in page.body.split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap()];
        if attr(tag, "type").as_deref() == Some("hidden") {
            fields.push((
                attr(tag, "name").unwrap(),
                attr(tag, "value").unwrap_or_default(),
            ));
        }
    }
    (action, fields)
}

struct Node {
    ts: common::TestServer,
    clock: Arc<ManualClock>,
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
        let ts = common::TestServer {
            base: server.base_url().to_string(),
            app_key: server.bootstrap().app_key.clone(),
            integration_key: server.bootstrap().integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: database_url.to_string(),
        };
        Node { ts, clock }
    }

    fn metadata_url(&self) -> String {
        format!("{}/sso/saml/metadata/{DOMAIN}", self.ts.base)
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    async fn members(&self) -> Vec<Value> {
        let (status, body) = self.api("/member/list", json!({"limit": 100})).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["items"].as_array().unwrap().clone()
    }

    async fn member(&self, email: &str) -> Option<Value> {
        self.members()
            .await
            .into_iter()
            .find(|m| m["email"].as_str().unwrap().eq_ignore_ascii_case(email))
    }

    /// Starts a sign-in at Klaxon's SSO form and signs in at the IdP as `login`, which
    /// answers as `mode` says. Returns the browser, the ACS URL and the fields the IdP's
    /// page would auto-post there.
    async fn idp_response(
        &self,
        login: &str,
        mode: &str,
    ) -> (Browser, reqwest::Url, Vec<(String, String)>) {
        // The IdP stamps its assertions with the wall clock: Klaxon's clock is set to it.
        self.clock.0.store(wall_ms(), Ordering::SeqCst);
        let mut b = Browser::new();
        let mut page = b
            .get(&format!(
                "{}/sso/start?login_domain={DOMAIN}&next=%2Fincidents",
                self.ts.base
            ))
            .await;
        for _ in 0..5 {
            let Some(next) = page.location.clone() else {
                break;
            };
            page = b.get(next.as_str()).await;
        }
        assert_eq!(page.status, 200, "the IdP's login page: {}", page.body);
        let (action, mut fields) = form(&page);
        fields.push(("login".into(), login.into()));
        fields.push(("mode".into(), mode.into()));
        let answer = b.post_form(action, &fields).await;
        assert_eq!(answer.status, 200, "the IdP's answer: {}", answer.body);
        let (acs, fields) = form(&answer);
        (b, acs, fields)
    }

    /// A whole sign-in: the IdP's response posted to the ACS.
    async fn saml_login(&self, login: &str, mode: &str) -> (Page, Browser) {
        let (mut b, acs, fields) = self.idp_response(login, mode).await;
        let page = b.post_form(acs, &fields).await;
        (page, b)
    }

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

    /// Whether the session cookie `token` still opens a session.
    async fn session_alive(&self, token: &str) -> bool {
        let resp = self
            .ts
            .http
            .get(format!("{}/auth/session", self.ts.base))
            .header("cookie", format!("klaxon_session={token}"))
            .send()
            .await
            .unwrap();
        resp.status().as_u16() == 200
    }

    /// The audit records of one operation in the last hour.
    async fn audit(&self, operation: &str) -> (u16, Value) {
        let now = common::now_secs();
        self.api(
            "/audit/search",
            json!({"start_time": now - 3600, "end_time": now + 3600, "operations": [operation]}),
        )
        .await
    }

    /// Uploads the SP key pair (it decrypts and signs).
    async fn upload_sp_key(&self) {
        let (key, cert) = sp_encryption_pair();
        let (status, body) = self
            .api(
                "/account/sso/update",
                json!({"saml": {"sp_private_key": key, "sp_certificate": cert}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Configures SAML sign-in from the IdP's metadata, fetched as an administrator would.
    async fn configure_saml(&self, idp: &Idp) {
        self.configure_saml_from(idp, "").await;
    }

    /// The same from `/metadata{query}` of the IdP.
    async fn configure_saml_from(&self, idp: &Idp, query: &str) {
        let metadata = reqwest::get(format!("{}/metadata{query}", idp.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (status, body) = self
            .api(
                "/account/sso/update",
                json!({
                    "enabled": true,
                    "protocol": "saml2",
                    "login_domain": DOMAIN,
                    "saml": {"idp_metadata": metadata},
                    "field_mapping": {"email": "mail", "name": "displayName"},
                }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

on_both_backends!(saml_sign_in_end_to_end, |url: String| async move {
    if !idp_available() {
        return;
    }
    let node = Node::start(&url).await;
    let idp = start_idp(&node.metadata_url()).await;
    node.configure_saml(&idp).await;

    // spec: RSP-574 — the SP shows its entity ID (base_url), metadata URL and ACS URL, and
    // what it took from the IdP metadata.
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    let saml = &info["data"]["saml"];
    assert_eq!(saml["sp_entity_id"], node.ts.base, "{info}");
    assert_eq!(
        saml["acs_url"],
        format!("{}/sso/saml/acs/{DOMAIN}", node.ts.base)
    );
    assert_eq!(saml["metadata_url"], node.metadata_url());
    assert_eq!(saml["idp_entity_id"], format!("{}/metadata", idp.base));
    assert_eq!(saml["idp_sso_url"], format!("{}/sso", idp.base));
    assert_eq!(saml["idp_certificates"].as_array().unwrap().len(), 1);
    let md = reqwest::get(node.metadata_url()).await.unwrap();
    assert_eq!(md.status().as_u16(), 200);
    let md = md.text().await.unwrap();
    assert!(
        md.contains(&format!("entityID=\"{}\"", node.ts.base)),
        "{md}"
    );
    assert!(md.contains("AuthnRequestsSigned=\"false\""), "{md}");

    // Team mapping from the `groups` attribute.
    let (status, body) = node.api("/team/upsert", json!({"team_name": "SRE"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node
        .api(
            "/account/sso/update",
            json!({"team_mapping": {"attribute": "groups", "rules": [{"value": "oncall-sre", "team_name": "SRE"}]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // spec: RSP-572, RSP-573, RSP-574 — a signed assertion signs in; the first sign-in
    // creates the member just in time from the mapped attributes, with the default role.
    let before = node.members().await.len();
    let (mut b, acs, fields) = node.idp_response("ann", "ok").await;
    assert_eq!(
        acs.as_str(),
        format!("{}/sso/saml/acs/{DOMAIN}", node.ts.base)
    );
    let page = b.post_form(acs.clone(), &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.unwrap().path(), "/incidents");
    let ann_id = node.session_member(&b).await;
    assert_eq!(node.members().await.len(), before + 1);
    let ann = node
        .member("ann.saml@example.com")
        .await
        .expect("ann was created");
    assert_eq!(ann["member_id"].as_i64().unwrap(), ann_id);
    assert_eq!(ann["member_name"], "Ann Saml");
    assert_eq!(ann["email"], "Ann.Saml@example.com");
    assert_eq!(ann["status"], "enabled");
    assert_eq!(ann["account_role_ids"], json!([8]));
    assert_eq!(ann["email_verified"], true);
    let (_, sre) = node.api("/team/info", json!({"team_name": "SRE"})).await;
    assert_eq!(sre["data"]["person_ids"], json!([ann_id]), "{sre}");

    // spec: RSP-574 — the same response posted again finds no sign-in to finish (replay).
    let mut replayer = Browser::new();
    let replay = replayer.post_form(acs, &fields).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    assert!(!replayer.jar.contains_key("klaxon_session"));

    // spec: RSP-574 — a signed Response (assertion unsigned) signs the same member in.
    let (page, b) = node.saml_login("ann", "response").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(node.session_member(&b).await, ann_id);
    assert_eq!(node.members().await.len(), before + 1);

    // spec: RSP-574 — without a mail attribute the NameID (email format) is the email.
    let (page, b) = node.saml_login("nameidonly", "ok").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let created = node
        .member("nameid.only@example.com")
        .await
        .expect("created from the NameID");
    assert_eq!(
        node.session_member(&b).await,
        created["member_id"].as_i64().unwrap()
    );

    // spec: RSP-572 — no email at all: refused, nobody created.
    let count = node.members().await.len();
    let (page, b) = node.saml_login("noemail", "ok").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("no email address"), "{}", page.body);
    assert!(!b.jar.contains_key("klaxon_session"));
    assert_eq!(node.members().await.len(), count);
});

on_both_backends!(
    saml_forged_responses_are_refused,
    |url: String| async move {
        if !idp_available() {
            return;
        }
        let node = Node::start(&url).await;
        let idp = start_idp(&node.metadata_url()).await;
        node.configure_saml(&idp).await;
        let count = node.members().await.len();

        // spec: RSP-574 — each forged response is refused with its reason and signs nobody in.
        for (mode, reason) in [
            (
                "unsigned",
                "neither the SAML response nor its assertion is signed",
            ),
            ("tamper", "digest mismatch"),
            ("otherkey", "not by a certificate of the IdP metadata"),
            ("audience", "another audience"),
            ("wrap", "more than one assertion"),
        ] {
            let (page, b) = node.saml_login("ann", mode).await;
            assert_eq!(page.status, 403, "{mode}: {}", page.body);
            assert!(page.body.contains(reason), "{mode}: {}", page.body);
            assert!(!b.jar.contains_key("klaxon_session"), "{mode}");
        }

        // spec: RSP-574 — an expired assertion (NotOnOrAfter, checked with the injected clock)
        // is refused: the IdP's assertions are valid for 5 minutes, the clock moves 8.
        let (mut b, acs, fields) = node.idp_response("ann", "ok").await;
        node.clock.0.fetch_add(8 * 60_000, Ordering::SeqCst);
        let page = b.post_form(acs, &fields).await;
        assert_eq!(page.status, 403, "{}", page.body);
        assert!(page.body.contains("expired"), "{}", page.body);
        assert!(!b.jar.contains_key("klaxon_session"));

        // A response without our RelayState (IdP-initiated) is refused.
        let (mut b, acs, fields) = node.idp_response("ann", "ok").await;
        let without: Vec<(String, String)> = fields
            .into_iter()
            .filter(|(k, _)| k != "RelayState")
            .collect();
        let page = b.post_form(acs, &without).await;
        assert_eq!(page.status, 400, "{}", page.body);
        assert!(page.body.contains("RelayState"), "{}", page.body);

        assert_eq!(node.members().await.len(), count);
        assert!(node.member("mallory@example.com").await.is_none());
    }
);

fn sp_encryption_pair() -> (String, String) {
    let read = |name: &str| std::fs::read_to_string(idp_dir().join(name)).unwrap();
    (read("sp-enc-key.pem"), read("sp-enc-cert.pem"))
}

on_both_backends!(
    saml_encrypted_assertions_sign_in,
    |url: String| async move {
        if !idp_available() {
            return;
        }
        let node = Node::start(&url).await;
        let idp = start_idp(&node.metadata_url()).await;
        node.configure_saml(&idp).await;
        let (key, cert) = sp_encryption_pair();
        let (status, body) = node
            .api(
                "/account/sso/update",
                json!({"saml": {"sp_private_key": key, "sp_certificate": cert}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");

        // spec: RSP-570, RSP-574 — the key is never answered; its certificate is shown by
        // fingerprint and published in the SP metadata for encryption.
        let (_, info) = node.api("/account/sso/info", json!({})).await;
        assert!(!info.to_string().contains("PRIVATE KEY"), "{info}");
        let fingerprint = info["data"]["saml"]["sp_encryption_certificate"]["sha256_fingerprint"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(fingerprint.len(), 32 * 3 - 1, "{info}");
        let md = reqwest::get(node.metadata_url())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(md.contains("<md:KeyDescriptor use=\"encryption\">"), "{md}");
        let body_of_cert: String = cert.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(md.contains(&body_of_cert), "{md}");

        // spec: RSP-574 — the IdP encrypts the signed assertion for that certificate
        // (AES-256-CBC and AES-128-GCM, both with RSA-OAEP): each signs in.
        let mut ann_id = None;
        for mode in ["encrypted", "encrypted-gcm"] {
            let (mut b, acs, fields) = node.idp_response("ann", mode).await;
            let xml = String::from_utf8(
                base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    fields
                        .iter()
                        .find(|(k, _)| k == "SAMLResponse")
                        .unwrap()
                        .1
                        .as_bytes(),
                )
                .unwrap(),
            )
            .unwrap();
            assert!(xml.contains("EncryptedAssertion"), "{mode}: {xml}");
            assert!(!xml.contains("Ann.Saml@example.com"), "{mode}");
            let page = b.post_form(acs, &fields).await;
            assert_eq!(page.status, 303, "{mode}: {}", page.body);
            let member = node.session_member(&b).await;
            assert_eq!(*ann_id.get_or_insert(member), member, "{mode}");
        }
        let ann = node.member("ann.saml@example.com").await.expect("ann");
        assert_eq!(ann["member_name"], "Ann Saml");

        // spec: RSP-574 — with the key removed, an encrypted assertion is refused.
        let (mut b, acs, fields) = node.idp_response("ann", "encrypted").await;
        let (status, body) = node
            .api(
                "/account/sso/update",
                json!({"saml": {"sp_private_key": ""}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["data"]["saml"]["sp_encryption_certificate"],
            Value::Null
        );
        let page = b.post_form(acs, &fields).await;
        assert_eq!(page.status, 403, "{}", page.body);
        assert!(page.body.contains("no SP encryption key"), "{}", page.body);
        assert!(!b.jar.contains_key("klaxon_session"));
    }
);

on_both_backends!(saml_idp_initiated_sign_in, |url: String| async move {
    if !idp_available() {
        return;
    }
    let node = Node::start(&url).await;
    let idp = start_idp(&node.metadata_url()).await;
    node.configure_saml(&idp).await;
    let count = node.members().await.len();
    // The IdP's portal: an unsolicited response, auto-posted to the ACS.
    let initiate = |relay: &str| {
        let relay = relay.to_string();
        let base = idp.base.clone();
        let clock = node.clock.clone();
        async move {
            clock.0.store(wall_ms(), Ordering::SeqCst);
            let mut b = Browser::new();
            let page = b
                .get(&format!(
                    "{base}/initiate?login=ann&mode=ok&relay_state={}",
                    urlencoding(&relay)
                ))
                .await;
            assert_eq!(page.status, 200, "{}", page.body);
            let (acs, fields) = form(&page);
            (b, acs, fields)
        }
    };

    // spec: RSP-574 — off by default: refused, nobody signed in.
    let (mut b, acs, fields) = initiate("/schedules").await;
    let page = b.post_form(acs, &fields).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(!b.jar.contains_key("klaxon_session"));
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    assert_eq!(info["data"]["saml"]["allow_idp_initiated"], false, "{info}");

    // spec: RSP-574 — switched on, the unsolicited response signs in once, to its local
    // RelayState.
    let (status, body) = node
        .api(
            "/account/sso/update",
            json!({"saml": {"allow_idp_initiated": true}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["saml"]["allow_idp_initiated"], true, "{body}");
    let (mut b, acs, fields) = initiate("/schedules").await;
    let page = b.post_form(acs.clone(), &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.unwrap().path(), "/schedules");
    let ann_id = node.session_member(&b).await;
    assert_eq!(node.members().await.len(), count + 1);

    // spec: RSP-574 — the same response again is a replay: refused.
    let mut replayer = Browser::new();
    let replay = replayer.post_form(acs, &fields).await;
    assert_eq!(replay.status, 403, "{}", replay.body);
    assert!(replay.body.contains("already used"), "{}", replay.body);
    assert!(!replayer.jar.contains_key("klaxon_session"));

    // A RelayState that is not a local path goes to the start page.
    let (mut b, acs, fields) = initiate("https://evil.example.com/").await;
    let page = b.post_form(acs, &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.unwrap().path(), "/incidents");
    assert_eq!(node.session_member(&b).await, ann_id);

    // spec: RSP-574 — a solicited response replayed after its sign-in finished names a
    // request: not accepted as unsolicited either.
    let (mut b, acs, fields) = node.idp_response("ann", "ok").await;
    let page = b.post_form(acs.clone(), &fields).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let mut replayer = Browser::new();
    let replay = replayer.post_form(acs, &fields).await;
    assert_eq!(replay.status, 403, "{}", replay.body);
    assert!(replay.body.contains("InResponseTo"), "{}", replay.body);
    assert!(!replayer.jar.contains_key("klaxon_session"));
});

fn urlencoding(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap()[2..].to_string()
}

on_both_backends!(saml_configuration_is_validated, |url: String| async move {
    let node = Node::start(&url).await;
    let bad = [
        (
            json!({"login_domain": DOMAIN, "protocol": "saml2", "enabled": true}),
            "saml.idp_metadata: required",
        ),
        (
            json!({"login_domain": DOMAIN, "protocol": "saml2", "saml": {"idp_metadata": "<EntityDescriptor"}}),
            "saml.idp_metadata: not well-formed",
        ),
        (
            json!({"login_domain": DOMAIN, "protocol": "saml2", "saml": {"idp_metadata":
                "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"><SPSSODescriptor/></EntityDescriptor>"}}),
            "saml.idp_metadata: no EntityDescriptor with an IDPSSODescriptor",
        ),
        (
            json!({"login_domain": DOMAIN, "saml": {"idp_metadata": "<x/>"}}),
            "saml: only for protocol saml2",
        ),
    ];
    for (body, message) in bad {
        let (status, answer) = node.api("/account/sso/update", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{body} -> {answer}"
        );
    }
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    assert_eq!(info["data"]["configured"], false, "{info}");
    // The SP metadata exists once the login domain is set up for SAML, before it is enabled.
    let resp = reqwest::get(node.metadata_url()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let (status, body) = node
        .api(
            "/account/sso/update",
            json!({"login_domain": DOMAIN, "protocol": "saml2"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["saml"]["acs_url"],
        format!("{}/sso/saml/acs/{DOMAIN}", node.ts.base)
    );
    let resp = reqwest::get(node.metadata_url()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Sign-in stays off until the IdP metadata is uploaded and SAML enabled.
    let resp = node
        .ts
        .http
        .get(format!("{}/sso/saml/start/{DOMAIN}", node.ts.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
});

on_both_backends!(saml_signed_authn_requests, |url: String| async move {
    if !idp_available() {
        return;
    }
    let node = Node::start(&url).await;
    let idp = start_idp_with(&node.metadata_url(), Some("want-signed-requests")).await;
    node.configure_saml(&idp).await;
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    assert_eq!(
        info["data"]["saml"]["idp_wants_signed_requests"], true,
        "{info}"
    );

    // spec: RSP-574 — the IdP wants signed AuthnRequests and there is no SP key: the start
    // is refused with the reason, nothing is sent to the IdP.
    let mut b = Browser::new();
    let page = b
        .get(&format!("{}/sso/saml/start/{DOMAIN}", node.ts.base))
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("wants signed AuthnRequests"),
        "{}",
        page.body
    );
    assert!(page.location.is_none());

    // spec: RSP-574 — with the SP key pair the metadata says so and publishes the key for
    // signing; the redirect carries SigAlg (RSA-SHA256) and Signature.
    node.upload_sp_key().await;
    let md = reqwest::get(node.metadata_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(md.contains("AuthnRequestsSigned=\"true\""), "{md}");
    assert!(md.contains("<md:KeyDescriptor use=\"signing\">"), "{md}");
    let start = b
        .get(&format!("{}/sso/saml/start/{DOMAIN}", node.ts.base))
        .await;
    let to_idp = start.location.expect("a redirect to the IdP");
    let query = to_idp.query().unwrap().to_string();
    assert!(
        query.contains(
            "&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256&Signature="
        ),
        "{query}"
    );

    // spec: RSP-574 — a tampered signature is refused by the IdP.
    let (head, signature) = query.split_once("&Signature=").unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!(
        "{}?{head}&Signature={flipped}{}",
        idp_sso(&to_idp),
        &signature[1..]
    );
    let refused = Browser::new().get(&tampered).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("refused"), "{}", refused.body);

    // spec: RSP-574 — the genuine signed request is accepted by the IdP, and the sign-in
    // finishes.
    let (page, b) = node.saml_login("ann", "ok").await;
    assert_eq!(page.status, 303, "{}", page.body);
    node.session_member(&b).await;
});

fn idp_sso(url: &reqwest::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// The query parameter `name` of a URL, decoded.
fn query_param(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

on_both_backends!(saml_single_logout_sp_initiated, |url: String| async move {
    if !idp_available() {
        return;
    }
    let node = Node::start(&url).await;
    let idp = start_idp(&node.metadata_url()).await;
    node.configure_saml(&idp).await;
    node.upload_sp_key().await;
    let md = reqwest::get(node.metadata_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // spec: RSP-574 — the SP metadata publishes its single logout service.
    assert!(
        md.contains(&format!(
            "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{}/sso/saml/slo/{DOMAIN}\"/>",
            node.ts.base
        )),
        "{md}"
    );

    // spec: RSP-574 — signing out of the console ends Klaxon's session first, then sends the
    // member to the IdP with a signed LogoutRequest naming the NameID and SessionIndex; the
    // IdP (which requires the signature) answers Success, and Klaxon accepts its response.
    let (page, mut b) = node.saml_login("ann", "ok").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let ann_id = node.session_member(&b).await;
    let token = b.jar.get("klaxon_session").unwrap().clone();
    let out = b.sign_out(&node.ts.base).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(!node.session_alive(&token).await, "the session ended first");
    assert!(!b.jar.contains_key("klaxon_session"));
    let to_idp = out.location.unwrap();
    assert_eq!(idp_sso(&to_idp), format!("{}/slo", idp.base));
    assert!(query_param(&to_idp, "Signature").is_some());
    let at_idp = b.get(to_idp.as_str()).await;
    assert_eq!(at_idp.status, 302, "{}", at_idp.body);
    let back = at_idp.location.unwrap();
    assert_eq!(back.path(), format!("/sso/saml/slo/{DOMAIN}"));
    let landed = b.get(back.as_str()).await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert!(
        landed
            .body
            .contains("signed out of Klaxon and of your identity provider"),
        "{}",
        landed.body
    );
    // The same response again answers no logout of ours.
    let again = Browser::new().get(back.as_str()).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("answers no logout"), "{}", again.body);
    // The logout is in the account's audit log.
    let (status, audit) = node.audit("member:write:saml_logout").await;
    assert_eq!(status, 200, "{audit}");
    let docs = audit["data"]["docs"].as_array().unwrap();
    assert!(!docs.is_empty(), "{audit}");
    assert_eq!(docs[0]["member_id"].as_i64(), Some(ann_id), "{audit}");

    // spec: RSP-574 — without a SingleLogoutService in the IdP metadata, sign-out stays local.
    node.configure_saml_from(&idp, "?slo=none").await;
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    assert_eq!(info["data"]["saml"]["idp_slo_url"], "", "{info}");
    let (page, mut b) = node.saml_login("ann", "ok").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let token = b.jar.get("klaxon_session").unwrap().clone();
    let out = b.sign_out(&node.ts.base).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(
        out.location.unwrap().as_str(),
        format!("{}/signin", node.ts.base)
    );
    assert!(!node.session_alive(&token).await);
});

on_both_backends!(
    saml_single_logout_from_the_json_api,
    |url: String| async move {
        if !idp_available() {
            return;
        }
        let node = Node::start(&url).await;
        let idp = start_idp(&node.metadata_url()).await;
        node.configure_saml(&idp).await;
        node.upload_sp_key().await;

        // spec: RSP-574 — `POST /auth/logout` ends Klaxon's session and, for a SAML session,
        // answers with the IdP's logout address carrying a signed LogoutRequest; following it
        // ends the IdP session the same way the console's sign-out does.
        let (page, mut b) = node.saml_login("ann", "ok").await;
        assert_eq!(page.status, 303, "{}", page.body);
        let token = b.jar.get("klaxon_session").unwrap().clone();
        let out = b.api_sign_out(&node.ts.base).await;
        assert_eq!(out.status, 200, "{}", out.body);
        assert!(!node.session_alive(&token).await, "the session ended");
        assert!(!b.jar.contains_key("klaxon_session"));
        let body: Value = serde_json::from_str(&out.body).unwrap();
        let to_idp = reqwest::Url::parse(body["data"]["idp_logout_url"].as_str().unwrap()).unwrap();
        assert_eq!(idp_sso(&to_idp), format!("{}/slo", idp.base));
        assert!(query_param(&to_idp, "SAMLRequest").is_some());
        assert!(query_param(&to_idp, "Signature").is_some());
        let at_idp = b.get(to_idp.as_str()).await;
        assert_eq!(at_idp.status, 302, "{}", at_idp.body);
        let landed = b.get(at_idp.location.unwrap().as_str()).await;
        assert_eq!(landed.status, 200, "{}", landed.body);
        assert!(
            landed
                .body
                .contains("signed out of Klaxon and of your identity provider"),
            "{}",
            landed.body
        );

        // A password session has nothing to end elsewhere: no address in the answer.
        let mut local = Browser::new();
        let form = [
            (
                "email".to_string(),
                node.ts
                    .server
                    .as_ref()
                    .unwrap()
                    .bootstrap()
                    .owner_email
                    .clone(),
            ),
            (
                "password".to_string(),
                node.ts
                    .server
                    .as_ref()
                    .unwrap()
                    .owner_password()
                    .unwrap()
                    .to_string(),
            ),
        ];
        let url = reqwest::Url::parse(&format!("{}/signin", node.ts.base)).unwrap();
        let signed_in = local.post_form(url, &form).await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        let out = local.api_sign_out(&node.ts.base).await;
        assert_eq!(out.status, 200, "{}", out.body);
        let body: Value = serde_json::from_str(&out.body).unwrap();
        assert!(body.get("data").is_none(), "{body}");
    }
);

on_both_backends!(saml_single_logout_idp_initiated, |url: String| async move {
    if !idp_available() {
        return;
    }
    let node = Node::start(&url).await;
    let idp = start_idp(&node.metadata_url()).await;
    node.configure_saml(&idp).await;
    node.upload_sp_key().await;
    // Two browsers of ann, and one of another member.
    let (page, b1) = node.saml_login("nameidonly", "ok").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let other = b1.jar.get("klaxon_session").unwrap().clone();
    let (page, b2) = node.saml_login("ann", "ok").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let ann_id = node.session_member(&b2).await;
    let ann = b2.jar.get("klaxon_session").unwrap().clone();

    // spec: RSP-574 — a LogoutRequest signed with a key the metadata does not list is
    // refused and ends nothing.
    let logout = |mode: &'static str| {
        let base = idp.base.clone();
        async move {
            let page = Browser::new()
                .get(&format!("{base}/logout-initiate?login=ann&mode={mode}"))
                .await;
            assert_eq!(page.status, 302, "{}", page.body);
            page.location.unwrap()
        }
    };
    let forged = logout("otherkey").await;
    assert_eq!(forged.path(), format!("/sso/saml/slo/{DOMAIN}"));
    let page = Browser::new().get(forged.as_str()).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body
            .contains("not by a certificate of the IdP metadata"),
        "{}",
        page.body
    );
    assert!(node.session_alive(&ann).await);

    // spec: RSP-574 — a genuine but expired one (NotOnOrAfter, checked with the injected
    // clock) ends nothing and is answered with a Requester status.
    let expired = logout("expired").await;
    node.clock.0.fetch_add(5 * 60_000, Ordering::SeqCst);
    let page = Browser::new().get(expired.as_str()).await;
    node.clock.0.store(wall_ms(), Ordering::SeqCst);
    assert_eq!(page.status, 303, "{}", page.body);
    let answer = page.location.unwrap();
    assert_eq!(idp_sso(&answer), format!("{}/slo", idp.base));
    assert!(node.session_alive(&ann).await);
    let at_idp = Browser::new().get(answer.as_str()).await;
    assert!(at_idp.body.contains("Requester"), "{}", at_idp.body);

    // spec: RSP-574 — a genuine request ends ann's session (the old cookie is refused at
    // /auth/session), not the other member's, and Klaxon's signed LogoutResponse is
    // accepted by the IdP.
    let genuine = logout("ok").await;
    let mut browser = Browser::new();
    let page = browser.get(genuine.as_str()).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(!node.session_alive(&ann).await);
    assert!(node.session_alive(&other).await);
    let answer = page.location.unwrap();
    assert!(query_param(&answer, "Signature").is_some());
    assert_eq!(
        query_param(&answer, "RelayState").as_deref(),
        Some("idp-relay")
    );
    let at_idp = browser.get(answer.as_str()).await;
    assert_eq!(at_idp.status, 200, "{}", at_idp.body);
    assert!(
        at_idp.body.contains("logout accepted: Success"),
        "{}",
        at_idp.body
    );
    let (status, audit) = node.audit("member:write:saml_idp_logout").await;
    assert_eq!(status, 200, "{audit}");
    let docs = audit["data"]["docs"].as_array().unwrap();
    assert!(!docs.is_empty(), "{audit}");
    assert_eq!(docs[0]["member_id"].as_i64(), Some(ann_id), "{audit}");
});
