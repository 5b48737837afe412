//! LDAP sign-in (RSP-577, RSP-578) against a real OpenLDAP `slapd` started by the test as an
//! unprivileged process in a temporary directory: an mdb database under `dc=example,dc=org`
//! loaded with `slapadd` before start, listening on `ldap://127.0.0.1:<free port>`.
//!
//! Skipped when slapd is not installed (Debian packages `slapd` and `ldap-utils`), except
//! under `CI=true`, where that is a failure. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{ManualClock, test_config, wall_ms};
use serde_json::{Value, json};

const DOMAIN: &str = "acme";
const SUFFIX: &str = "dc=example,dc=org";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PW: &str = "directory-admin-secret";
const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";

/// slapd and slapadd, or `false` (a skip) outside CI.
fn slapd_available() -> bool {
    if Path::new(SLAPD).exists() && Path::new(SLAPADD).exists() {
        return true;
    }
    let why = "slapd is not installed (apt-get install slapd ldap-utils)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the LDAP server cannot run: {why}");
    }
    eprintln!("LDAP test skipped: {why}");
    false
}

const LDIF: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=contractors,dc=example,dc=org
objectClass: organizationalUnit
ou: contractors

dn: uid=ann,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: ann
cn: Ann Lee
sn: Lee
mail: Ann.Lee@example.org
telephoneNumber: +1 415 555 0100
departmentNumber: sre
departmentNumber: platform
userPassword: ann-directory-pw

dn: uid=noemail,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: noemail
cn: No Email
sn: Email
userPassword: noemail-pw

dn: uid=dup,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dup
cn: Dup One
sn: One
mail: dup1@example.org
userPassword: dup-pw

dn: uid=dup,ou=contractors,dc=example,dc=org
objectClass: inetOrgPerson
uid: dup
cn: Dup Two
sn: Two
mail: dup2@example.org
userPassword: dup-pw
";

/// A running slapd; killed when dropped.
struct Slapd {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    url: String,
    /// With TLS: `ldaps://` on a second port (a self-signed certificate for 127.0.0.1).
    ldaps_url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_slapd() -> Slapd {
    start_slapd_with(false).await
}

/// `tls`: also serve `ldaps://`, offer StartTLS, and refuse any operation that is not
/// protected by TLS (`security tls=1`), so a client that does not use TLS fails.
async fn start_slapd_with(tls: bool) -> Slapd {
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().to_path_buf();
    std::fs::create_dir(root.join("data")).unwrap();
    let mut tls_conf = String::new();
    if tls {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(root.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(root.join("key.pem"), key.serialize_pem()).unwrap();
        tls_conf = format!(
            "TLSCertificateFile {root}/cert.pem\n\
             TLSCertificateKeyFile {root}/key.pem\n\
             security tls=1\n",
            root = root.display()
        );
    }
    let conf = format!(
        "include /etc/ldap/schema/core.schema\n\
         include /etc/ldap/schema/cosine.schema\n\
         include /etc/ldap/schema/inetorgperson.schema\n\
         include /etc/ldap/schema/nis.schema\n\
         {tls_conf}\
         pidfile {root}/slapd.pid\n\
         argsfile {root}/slapd.args\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         database mdb\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"{ADMIN_DN}\"\n\
         rootpw {ADMIN_PW}\n\
         directory {root}/data\n\
         maxsize 10485760\n",
        root = root.display()
    );
    std::fs::write(root.join("slapd.conf"), conf).unwrap();
    std::fs::write(root.join("data.ldif"), LDIF).unwrap();
    let out = std::process::Command::new(SLAPADD)
        .arg("-f")
        .arg(root.join("slapd.conf"))
        .arg("-l")
        .arg(root.join("data.ldif"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "slapadd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let url = format!("ldap://127.0.0.1:{port}");
    let tls_port = free_port();
    let ldaps_url = format!("ldaps://127.0.0.1:{tls_port}");
    let listen = if tls {
        format!("{url}/ {ldaps_url}/")
    } else {
        format!("{url}/")
    };
    // `-d 0`: stay in the foreground (no fork), so the child is slapd itself.
    let child = tokio::process::Command::new(SLAPD)
        .arg("-f")
        .arg(root.join("slapd.conf"))
        .arg("-h")
        .arg(listen)
        .arg("-d")
        .arg("0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait until it accepts connections (a guard against a server that never comes up).
    let mut up = false;
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "slapd did not start listening on {url}");
    Slapd {
        _child: child,
        _dir: dir,
        url,
        ldaps_url,
    }
}

struct Node {
    ts: common::TestServer,
    clock: Arc<ManualClock>,
    password: String,
    email: String,
}

struct Answer {
    status: u16,
    location: String,
    body: String,
    session: Option<String>,
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
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            database_url: database_url.to_string(),
        };
        Node {
            ts,
            clock,
            password,
            email,
        }
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    async fn configure(&self, body: Value) -> (u16, Value) {
        self.api("/account/sso/update", body).await
    }

    async fn info(&self) -> Value {
        let (status, body) = self.api("/account/sso/info", json!({})).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
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

    async fn team_people(&self, team: &str) -> Vec<i64> {
        let (status, body) = self.api("/team/info", json!({"team_name": team})).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["person_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect()
    }

    /// One step past the node-wide sign-in throttle (a second of the injected clock).
    fn tick(&self) {
        self.clock.0.fetch_add(1_000, Ordering::SeqCst);
    }

    async fn send_form(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.tick();
        let resp = self
            .ts
            .http
            .post(format!("{}{path}", self.ts.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        let session = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|p| p.split_once('='))
            .find(|(k, v)| *k == "klaxon_session" && !v.is_empty())
            .map(|(_, v)| v.to_string());
        let body = resp.text().await.unwrap_or_default();
        Answer {
            status,
            location,
            body,
            session,
        }
    }

    async fn ldap_login(&self, username: &str, password: &str) -> Answer {
        self.send_form(
            &format!("/sso/ldap/{DOMAIN}"),
            &[
                ("username", username),
                ("password", password),
                ("next", "/incidents"),
            ],
        )
        .await
    }

    /// The member of a session token (`/auth/session`).
    async fn session_member(&self, token: &str) -> i64 {
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

    async fn get(&self, path: &str) -> (u16, String, String) {
        let resp = self
            .ts
            .http
            .get(format!("{}{path}", self.ts.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, location, resp.text().await.unwrap_or_default())
    }
}

fn ldap_config(url: &str) -> Value {
    json!({
        "enabled": true,
        "protocol": "ldap",
        "login_domain": DOMAIN,
        "ldap": {
            "url": url,
            "bind_dn": ADMIN_DN,
            "bind_password": ADMIN_PW,
            "user_dn": SUFFIX,
            "auth_filter": "(&(objectClass=inetOrgPerson)(uid=%s))",
        },
        "team_mapping": {
            "attribute": "departmentNumber",
            "rules": [
                {"value": "SRE", "team_name": "SRE"},
                {"value": "dba", "team_name": "DBA"},
                {"value": "platform", "team_name": "No Such Team"},
            ],
        },
    })
}

on_both_backends!(ldap_sign_in_end_to_end, |url: String| async move {
    if !slapd_available() {
        return;
    }
    let slapd = start_slapd().await;
    let node = Node::start(&url).await;
    for team in ["SRE", "DBA"] {
        let (status, body) = node.api("/team/upsert", json!({"team_name": team})).await;
        assert_eq!(status, 200, "{body}");
    }

    // spec: RSP-577 — saving an enabled LDAP configuration tests the connection; the bind
    // password is never answered.
    let (status, body) = node.configure(ldap_config(&slapd.url)).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains(ADMIN_PW), "{body}");
    let info = node.info().await;
    assert!(!info.to_string().contains(ADMIN_PW), "{info}");
    assert_eq!(info["protocol"], "ldap");
    assert_eq!(info["ldap"]["has_bind_password"], true, "{info}");
    assert_eq!(info["ldap"]["bind_dn"], ADMIN_DN);
    assert_eq!(info["ldap"]["url"], slapd.url.as_str());
    assert_eq!(info["field_mapping"]["email"], "mail", "{info}");
    assert_eq!(info["team_mapping"]["attribute"], "departmentNumber");
    assert_eq!(info["oidc"]["has_client_secret"], false);

    // The sign-in page's SSO form sends an LDAP domain to Klaxon's own user-name form.
    let (status, location, _) = node
        .get(&format!(
            "/sso/start?login_domain={DOMAIN}&next=%2Fincidents"
        ))
        .await;
    assert_eq!(status, 303);
    assert!(
        location.starts_with(&format!("/sso/ldap/{DOMAIN}")),
        "{location}"
    );
    let (status, _, html) = node.get(&location).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("name=\"username\""), "{html}");
    assert!(
        html.contains(&format!("action=\"/sso/ldap/{DOMAIN}\"")),
        "{html}"
    );

    // spec: RSP-577, RSP-572 — a good login provisions the member and opens a session.
    let before = node.members().await.len();
    let ok = node.ldap_login("ann", "ann-directory-pw").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location, "/incidents");
    let token = ok.session.expect("a session cookie");
    let ann = node
        .member("ann.lee@example.org")
        .await
        .expect("ann created");
    let ann_id = ann["member_id"].as_i64().unwrap();
    assert_eq!(node.session_member(&token).await, ann_id);
    assert_eq!(node.members().await.len(), before + 1);
    assert_eq!(ann["member_name"], "Ann Lee");
    assert_eq!(ann["email"], "Ann.Lee@example.org");
    assert_eq!(ann["status"], "enabled");
    assert_eq!(ann["account_role_ids"], json!([8]));
    assert!(ann["phone"].as_str().unwrap().ends_with("0100"), "{ann}");

    // Team mapping: departmentNumber "sre" matches the rule "SRE" (case-insensitive); the
    // rule naming a team that does not exist is skipped; DBA is not mapped.
    assert_eq!(node.team_people("SRE").await, vec![ann_id]);
    assert!(node.team_people("DBA").await.is_empty());

    // A second sign-in finds the same member and adds nothing twice.
    let again = node.ldap_login("ann", "ann-directory-pw").await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(node.session_member(&again.session.unwrap()).await, ann_id);
    assert_eq!(node.members().await.len(), before + 1);
    assert_eq!(node.team_people("SRE").await, vec![ann_id]);

    // A member taken off a mapped team by hand is added back at the next sign-in; teams the
    // mapping does not name are never touched (no removal by sign-in).
    let (status, body) = node
        .api(
            "/team/upsert",
            json!({"team_name": "SRE", "person_ids": [], "reset_if_name_exist": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node
        .api(
            "/team/upsert",
            json!({"team_name": "DBA", "person_ids": [ann_id], "reset_if_name_exist": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let third = node.ldap_login("ann", "ann-directory-pw").await;
    assert_eq!(third.status, 303, "{}", third.body);
    assert_eq!(node.team_people("SRE").await, vec![ann_id]);
    assert_eq!(node.team_people("DBA").await, vec![ann_id]);

    // Unknown user and wrong password: the same refusal, no session, nobody created.
    let unknown = node.ldap_login("nobody", "whatever").await;
    assert_eq!(unknown.status, 401, "{}", unknown.body);
    assert!(unknown.body.contains("user name or password is incorrect"));
    assert!(unknown.session.is_none());

    // spec: RSP-577 — the login name is escaped (RFC 4515): wildcards and filter syntax in
    // it match nothing, so ann's password does not sign in "an*" or "*)(uid=*" as ann, and
    // "*" does not match every entry.
    for name in ["an*", "*)(uid=*", "*", "ann)(|(uid=*"] {
        let a = node.ldap_login(name, "ann-directory-pw").await;
        assert_eq!(a.status, 401, "{name}: {}", a.body);
        assert!(a.session.is_none(), "{name}");
    }

    // spec: RSP-577 — a filter that matches two entries is refused.
    let dup = node.ldap_login("dup", "dup-pw").await;
    assert_eq!(dup.status, 403, "{}", dup.body);
    assert!(
        dup.body.contains("several directory entries"),
        "{}",
        dup.body
    );
    assert!(dup.session.is_none());
    assert!(node.member("dup1@example.org").await.is_none());

    // spec: RSP-572 — an entry without the mapped email attribute is refused.
    let noemail = node.ldap_login("noemail", "noemail-pw").await;
    assert_eq!(noemail.status, 403, "{}", noemail.body);
    assert!(
        noemail.body.contains("no email address"),
        "{}",
        noemail.body
    );
    assert_eq!(node.members().await.len(), before + 1);

    // An empty password never reaches the directory (no unauthenticated bind).
    let empty = node.ldap_login("ann", "").await;
    assert_eq!(empty.status, 400, "{}", empty.body);
    assert!(empty.session.is_none());

    // Wrong passwords count toward the lockout of password sign-ins (5 in the window):
    // the fifth locks the user name, and then even the right password is refused until
    // the lock ends.
    for i in 1..=4 {
        let wrong = node.ldap_login("ann", "not-the-password").await;
        assert_eq!(wrong.status, 401, "attempt {i}: {}", wrong.body);
    }
    let locked = node.ldap_login("ann", "not-the-password").await;
    assert_eq!(locked.status, 423, "{}", locked.body);
    // spec: RSP-600 — refused directory sign-ins are audited with the typed user name and
    // never the password; the unknown user above was refused the same way.
    let now_s = node.clock.0.load(Ordering::SeqCst) / 1000;
    let (s, b) = node
        .api(
            "/audit/search",
            json!({"start_time": now_s - 3600, "end_time": now_s + 60,
                   "limit": 99, "operations": ["member:write:ldap_login"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let docs = b["data"]["docs"].as_array().unwrap().clone();
    let refused: Vec<&Value> = docs
        .iter()
        .filter(|d| d["result"] == "Unauthorized")
        .collect();
    let names: Vec<String> = refused
        .iter()
        .map(|d| d["body"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(names.iter().any(|b| b.contains("\"nobody\"")), "{names:?}");
    assert!(
        names.iter().filter(|b| b.contains("\"ann\"")).count() >= 5,
        "{names:?}"
    );
    assert!(
        names.iter().all(|b| !b.contains("not-the-password")),
        "{names:?}"
    );
    assert!(docs.iter().any(|d| d["result"] == "ok"), "{docs:?}");
    let still = node.ldap_login("ann", "ann-directory-pw").await;
    assert_eq!(still.status, 423, "{}", still.body);
    assert!(still.session.is_none());
    node.clock.0.fetch_add(16 * 60_000, Ordering::SeqCst);
    let after = node.ldap_login("ann", "ann-directory-pw").await;
    assert_eq!(after.status, 303, "{}", after.body);

    // spec: RSP-578 — the owner's local password keeps working with LDAP on.
    let owner = node
        .send_form(
            "/signin",
            &[
                ("email", node.email.as_str()),
                ("password", node.password.as_str()),
                ("next", "/incidents"),
            ],
        )
        .await;
    assert_eq!(owner.status, 303, "{}", owner.body);
    assert!(owner.session.is_some());

    // With create_account_on_login off, an uninvited directory user is refused.
    let (status, body) = node
        .configure(json!({"create_account_on_login": false}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node
        .api("/member/delete", json!({"member_id": ann_id}))
        .await;
    assert_eq!(status, 200, "{body}");
    let refused = node.ldap_login("ann", "ann-directory-pw").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("not invited"), "{}", refused.body);
});

on_both_backends!(ldap_configuration_is_validated, |url: String| async move {
    if !slapd_available() {
        return;
    }
    let slapd = start_slapd().await;
    let node = Node::start(&url).await;
    let with = |ldap: Value| {
        let mut c = ldap_config(&slapd.url);
        for (k, v) in ldap.as_object().unwrap() {
            c["ldap"][k] = v.clone();
        }
        c
    };
    // spec: RSP-577 — each refusal names its field and changes nothing.
    let bad = [
        (with(json!({"url": "http://127.0.0.1:389"})), "ldap.url"),
        (with(json!({"url": "ldap://"})), "ldap.url"),
        (with(json!({"auth_filter": "uid=%s"})), "ldap.auth_filter"),
        (with(json!({"auth_filter": "(uid=%s"})), "ldap.auth_filter"),
        (
            with(json!({"auth_filter": "(uid=ann)"})),
            "ldap.auth_filter",
        ),
        (with(json!({"user_dn": ""})), "ldap.user_dn"),
        (
            with(json!({"url": "ldaps://127.0.0.1:636", "start_tls": true})),
            "ldap.start_tls",
        ),
        // The connection test: a wrong bind password, a search base that does not exist,
        // and a port nobody listens on.
        (
            with(json!({"bind_password": "wrong"})),
            "ldap: test connection failed",
        ),
        (
            with(json!({"user_dn": "ou=nowhere,dc=example,dc=org"})),
            "ldap: test connection failed",
        ),
        (
            with(json!({"url": "ldap://127.0.0.1:1"})),
            "ldap: test connection failed",
        ),
        (
            json!({"login_domain": DOMAIN, "ldap": {"url": slapd.url}}),
            "ldap:",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = node.configure(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "InvalidParameter", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{body} -> {message}");
        assert!(!message.contains(ADMIN_PW), "{message}");
    }
    let info = node.info().await;
    assert_eq!(info["configured"], false, "{info}");

    // A good configuration saves; an empty bind_password keeps the stored one.
    let (status, body) = node.configure(ldap_config(&slapd.url)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node
        .configure(json!({"ldap": {"bind_password": "", "bind_dn": ADMIN_DN}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let info = node.info().await;
    assert_eq!(info["ldap"]["has_bind_password"], true, "{info}");
    assert!(!info.to_string().contains(ADMIN_PW), "{info}");
    // A refused change leaves the stored configuration as it was.
    let (status, _) = node
        .configure(json!({"ldap": {"auth_filter": "broken"}}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        node.info().await["ldap"]["auth_filter"],
        "(&(objectClass=inetOrgPerson)(uid=%s))"
    );
});

on_both_backends!(ldap_over_tls, |url: String| async move {
    if !slapd_available() {
        return;
    }
    // spec: RSP-577 — start_tls and tls_skip_verify are honoured. This slapd refuses every
    // operation that is not protected by TLS, and its certificate is self-signed.
    let slapd = start_slapd_with(true).await;
    let node = Node::start(&url).await;
    let mut config = ldap_config(&slapd.url);
    config["team_mapping"] = json!({"attribute": "", "rules": []});
    let with = |ldap: Value| {
        let mut c = config.clone();
        for (k, v) in ldap.as_object().unwrap() {
            c["ldap"][k] = v.clone();
        }
        c
    };
    let refused = [
        // Plain LDAP: the server requires TLS.
        with(json!({})),
        // TLS with a certificate nobody trusts.
        with(json!({"url": slapd.ldaps_url})),
        with(json!({"start_tls": true})),
    ];
    for body in refused {
        let (status, answer) = node.configure(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("ldap: test connection failed"),
            "{body} -> {message}"
        );
    }
    assert_eq!(node.info().await["configured"], false);

    // ldaps:// and StartTLS, each with the certificate check skipped: both sign in.
    for ldap in [
        json!({"url": slapd.ldaps_url, "tls_skip_verify": true, "start_tls": false}),
        json!({"url": slapd.url, "tls_skip_verify": true, "start_tls": true}),
    ] {
        let (status, body) = node.configure(with(ldap.clone())).await;
        assert_eq!(status, 200, "{ldap} -> {body}");
        let info = node.info().await;
        assert_eq!(info["ldap"]["tls_skip_verify"], true, "{info}");
        let ok = node.ldap_login("ann", "ann-directory-pw").await;
        assert_eq!(ok.status, 303, "{ldap}: {}", ok.body);
        assert!(ok.session.is_some());
        let wrong = node.ldap_login("ann", "wrong").await;
        assert_eq!(wrong.status, 401, "{ldap}: {}", wrong.body);
    }
});
