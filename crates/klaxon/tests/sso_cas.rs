//! Single sign-on with CAS (response.md RSP-576, RSP-570…RSP-573) against a small CAS server
//! run in the test: it speaks the CAS protocol's browser side (`/login` with `service`, a
//! login form, the redirect back with a single-use service ticket) and its validation side
//! (`/p3/serviceValidate` of CAS 3.0 with attributes, `/serviceValidate` of CAS 2.0), with the
//! XML `cas:serviceResponse` documents of the CAS protocol specification. A second mode has
//! only the CAS 2.0 endpoint, as older servers do. The test drives the browser flow over HTTP:
//! Klaxon's sign-in page, the CAS login, the callback, and the console session it opens.
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use common::{ManualClock, test_config, wall_ms};
use serde_json::{Value, json};

const DOMAIN: &str = "campus";
const CAS_NS: &str = "http://www.yale.edu/tp/cas";

/// A directory entry of the CAS server: the attributes it releases.
#[derive(Clone)]
struct CasUser {
    attributes: Vec<(&'static str, &'static str)>,
}

#[derive(Default)]
struct CasState {
    users: HashMap<String, CasUser>,
    /// Live service tickets: ticket → (user, service it was issued for).
    tickets: HashMap<String, (String, String)>,
    next_ticket: AtomicU64,
    /// The validation endpoints called, in order.
    validations: Vec<String>,
}

#[derive(Clone)]
struct Cas {
    state: Arc<Mutex<CasState>>,
    /// `http://127.0.0.1:port/cas`
    url: String,
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn login_form(Query(q): Query<HashMap<String, String>>) -> Response {
    let service = q.get("service").cloned().unwrap_or_default();
    if service.is_empty() {
        return (StatusCode::BAD_REQUEST, "service required").into_response();
    }
    Html(format!(
        "<form method=\"post\" action=\"/cas/login\">\
         <input type=\"hidden\" name=\"service\" value=\"{}\">\
         <input name=\"username\"><input name=\"password\" type=\"password\"></form>",
        xml_escape(&service)
    ))
    .into_response()
}

/// Authenticates (any password: the directory is not what is tested) and redirects back to the
/// service with a fresh service ticket, as a CAS server does.
async fn login_submit(State(cas): State<Cas>, Form(f): Form<HashMap<String, String>>) -> Response {
    let user = f.get("username").cloned().unwrap_or_default();
    let service = f.get("service").cloned().unwrap_or_default();
    let mut st = cas.state.lock().unwrap();
    if !st.users.contains_key(&user) {
        return (StatusCode::UNAUTHORIZED, "unknown user").into_response();
    }
    let n = st.next_ticket.fetch_add(1, Ordering::SeqCst);
    let ticket = format!("ST-{n}-cas-test");
    st.tickets.insert(ticket.clone(), (user, service.clone()));
    let sep = if service.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{service}{sep}ticket={ticket}")).into_response()
}

/// The validation of both protocol versions: the ticket is consumed whatever the outcome
/// (CAS protocol 3.0, section 3.1.1); a CAS 3.0 answer releases the attributes.
fn validate(cas: &Cas, q: &HashMap<String, String>, endpoint: &str, attributes: bool) -> Response {
    let mut st = cas.state.lock().unwrap();
    st.validations.push(endpoint.to_string());
    let ticket = q.get("ticket").cloned().unwrap_or_default();
    let service = q.get("service").cloned().unwrap_or_default();
    let failure = |code: &str, msg: &str| {
        format!(
            "<cas:serviceResponse xmlns:cas=\"{CAS_NS}\">\n  <cas:authenticationFailure code=\"{code}\">\n    {}\n  </cas:authenticationFailure>\n</cas:serviceResponse>\n",
            xml_escape(msg)
        )
    };
    let body = match st.tickets.remove(&ticket) {
        None => failure("INVALID_TICKET", &format!("Ticket {ticket} not recognized")),
        Some((_, issued_for)) if issued_for != service => failure(
            "INVALID_SERVICE",
            &format!("Ticket {ticket} does not match supplied service"),
        ),
        Some((user, _)) => {
            let mut out = format!(
                "<cas:serviceResponse xmlns:cas=\"{CAS_NS}\">\n  <cas:authenticationSuccess>\n    <cas:user>{}</cas:user>\n",
                xml_escape(&user)
            );
            if attributes {
                out.push_str("    <cas:attributes>\n");
                out.push_str(
                    "      <cas:authenticationDate>2026-11-27T10:00:00Z</cas:authenticationDate>\n",
                );
                for (k, v) in &st.users[&user].attributes {
                    out.push_str(&format!("      <cas:{k}>{}</cas:{k}>\n", xml_escape(v)));
                }
                out.push_str("    </cas:attributes>\n");
            }
            out.push_str("  </cas:authenticationSuccess>\n</cas:serviceResponse>\n");
            out
        }
    };
    ([("content-type", "application/xml;charset=UTF-8")], body).into_response()
}

async fn p3_validate(State(cas): State<Cas>, Query(q): Query<HashMap<String, String>>) -> Response {
    validate(&cas, &q, "p3/serviceValidate", true)
}

async fn v2_validate(State(cas): State<Cas>, Query(q): Query<HashMap<String, String>>) -> Response {
    // CAS 2.0 releases no attributes.
    validate(&cas, &q, "serviceValidate", false)
}

/// Starts the CAS server; `with_p3 = false` is a CAS 2.0 server (no `/p3/` endpoints: 404).
async fn start_cas(with_p3: bool, users: Vec<(&str, CasUser)>) -> Cas {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cas = Cas {
        state: Arc::default(),
        url: format!("http://{}/cas", listener.local_addr().unwrap()),
    };
    {
        let mut st = cas.state.lock().unwrap();
        for (name, user) in users {
            st.users.insert(name.to_string(), user);
        }
    }
    let mut app = Router::new()
        .route("/cas/login", get(login_form).post(login_submit))
        .route("/cas/serviceValidate", get(v2_validate));
    if with_p3 {
        app = app.route("/cas/p3/serviceValidate", get(p3_validate));
    }
    let app = app.with_state(cas.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    cas
}

/// A browser: follows nothing by itself, keeps cookies by name.
struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
}

struct Page {
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

    async fn send(&mut self, req: reqwest::RequestBuilder, url: &reqwest::Url) -> Page {
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
        Page {
            status,
            location,
            body: resp.text().await.unwrap_or_default(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let url = reqwest::Url::parse(url).unwrap();
        let req = self.http.get(url.clone());
        self.send(req, &url).await
    }

    async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let url = reqwest::Url::parse(url).unwrap();
        let req = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        self.send(req, &url).await
    }
}

struct Node {
    ts: common::TestServer,
    password: String,
    email: String,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.delivery = false;
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock)
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
            password,
            email,
        }
    }

    fn service_url(&self) -> String {
        format!("{}/sso/cas/callback/{DOMAIN}", self.ts.base)
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        self.ts.api(path, body).await
    }

    async fn configure(&self, body: Value) -> (u16, Value) {
        self.api("/account/sso/update", body).await
    }

    async fn member(&self, email: &str) -> Option<Value> {
        let (_, body) = self.api("/member/list", json!({"limit": 100})).await;
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

    /// Signs in as `user` from the sign-in page's SSO form through the CAS login. Returns the
    /// last page (Klaxon's answer to the callback) and the browser.
    async fn cas_login(&self, cas: &Cas, user: &str) -> (Page, Browser) {
        let mut b = Browser::new();
        let page = b
            .get(&format!(
                "{}/sso/start?login_domain={DOMAIN}&next=%2Fincidents",
                self.ts.base
            ))
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let start = page.location.unwrap();
        assert_eq!(start.path(), format!("/sso/cas/start/{DOMAIN}"));
        let page = b.get(start.as_str()).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let to_cas = page.location.unwrap();
        // spec: RSP-576 — {server_url}{login_path}?service=<the service URL>.
        assert!(
            to_cas.as_str().starts_with(&format!("{}/login?", cas.url)),
            "{to_cas}"
        );
        let q: BTreeMap<String, String> = to_cas.query_pairs().into_owned().collect();
        assert_eq!(q["service"], self.service_url());
        let form = b.get(to_cas.as_str()).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let back = b
            .post_form(
                &format!("{}/login", cas.url),
                &[
                    ("service", &q["service"]),
                    ("username", user),
                    ("password", "x"),
                ],
            )
            .await;
        assert_eq!(back.status, 303, "{}", back.body);
        let callback = back.location.unwrap();
        assert!(
            callback.as_str().starts_with(&self.service_url()),
            "{callback}"
        );
        let page = b.get(callback.as_str()).await;
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
}

fn directory() -> Vec<(&'static str, CasUser)> {
    vec![
        (
            "ann",
            CasUser {
                attributes: vec![
                    ("mail", "Ann.Lee@example.edu"),
                    ("displayName", "Ann Lee"),
                    ("telephoneNumber", "+14155550100"),
                    ("memberOf", "staff"),
                    ("memberOf", "oncall-sre"),
                ],
            },
        ),
        (
            "nomail",
            CasUser {
                attributes: vec![("displayName", "No Mail")],
            },
        ),
        (
            "bob",
            CasUser {
                attributes: vec![("mail", "bob@example.edu")],
            },
        ),
        ("carl@example.edu", CasUser { attributes: vec![] }),
    ]
}

on_both_backends!(cas_sign_in_end_to_end, |url: String| async move {
    let cas = start_cas(true, directory()).await;
    let node = Node::start(&url).await;

    // spec: RSP-570, RSP-576 — CAS is configured through the same settings; the answer shows
    // the service URL to register at the CAS server.
    let (status, body) = node
        .configure(json!({
            "enabled": true,
            "protocol": "cas",
            "login_domain": DOMAIN,
            "cas": {"server_url": cas.url},
            "field_mapping": {"email": "mail", "name": "displayName", "phone": "telephoneNumber"},
            "team_mapping": {"attribute": "memberOf",
                             "rules": [{"value": "oncall-sre", "team_name": "SRE"}]},
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    let info = &info["data"];
    assert_eq!(info["protocol"], "cas");
    assert_eq!(info["cas"]["server_url"], cas.url);
    assert_eq!(info["cas"]["login_path"], "/login");
    assert_eq!(info["cas"]["service_url"], node.service_url());
    let (status, body) = node.api("/team/upsert", json!({"team_name": "SRE"})).await;
    assert_eq!(status, 200, "{body}");

    // spec: RSP-572, RSP-573, RSP-576 — the first sign-in validates the ticket with CAS 3.0
    // and creates the member from the released attributes.
    let before = node.member_count().await;
    let (page, browser) = node.cas_login(&cas, "ann").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.unwrap().path(), "/incidents");
    let ann_id = node.session_member(&browser).await;
    assert_eq!(node.member_count().await, before + 1);
    let ann = node.member("ann.lee@example.edu").await.expect("created");
    assert_eq!(ann["member_id"].as_i64().unwrap(), ann_id);
    assert_eq!(ann["member_name"], "Ann Lee");
    assert_eq!(ann["email"], "Ann.Lee@example.edu");
    // Lists show phones masked.
    assert_eq!(ann["phone"], "+14*****0100");
    assert_eq!(ann["email_verified"], true);
    assert_eq!(ann["phone_verified"], false);
    assert_eq!(ann["account_role_ids"], json!([8]));
    let (_, sre) = node.api("/team/info", json!({"team_name": "SRE"})).await;
    assert_eq!(sre["data"]["person_ids"], json!([ann_id]), "{sre}");
    assert_eq!(
        cas.state.lock().unwrap().validations,
        vec!["p3/serviceValidate".to_string()]
    );

    // A later sign-in logs the same member in and overwrites nothing (RSP-573).
    let (status, body) = node
        .api(
            "/member/info/reset",
            json!({"member_id": ann_id, "updates": {"member_name": "Ann Renamed"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (page, browser) = node.cas_login(&cas, "ann").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(node.session_member(&browser).await, ann_id);
    assert_eq!(
        node.member("ann.lee@example.edu").await.unwrap()["member_name"],
        "Ann Renamed"
    );

    // spec: RSP-572 — no email among the attributes: refused, nobody created.
    let count = node.member_count().await;
    let (page, browser) = node.cas_login(&cas, "nomail").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("no email address"), "{}", page.body);
    assert!(!browser.jar.contains_key("klaxon_session"));
    assert_eq!(node.member_count().await, count);

    // spec: RSP-576 — a ticket the CAS server refuses (here: replayed, so already spent)
    // ends the sign-in with the server's code.
    let mut b = Browser::new();
    let start = b
        .get(&format!("{}/sso/cas/start/{DOMAIN}", node.ts.base))
        .await;
    assert_eq!(start.status, 303);
    let replay = b
        .get(&format!("{}?ticket=ST-0-cas-test", node.service_url()))
        .await;
    assert_eq!(replay.status, 403, "{}", replay.body);
    assert!(replay.body.contains("INVALID_TICKET"), "{}", replay.body);
    assert!(!b.jar.contains_key("klaxon_session"));

    // A callback in a browser that did not start a sign-in is refused before any ticket is
    // sent to the CAS server.
    let calls = cas.state.lock().unwrap().validations.len();
    let mut stranger = Browser::new();
    let page = stranger
        .get(&format!("{}?ticket=ST-9-cas-test", node.service_url()))
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("not started in this browser"),
        "{}",
        page.body
    );
    assert_eq!(cas.state.lock().unwrap().validations.len(), calls);

    // spec: RSP-572 — create_account_on_login off: an unknown user is "not invited".
    let (status, body) = node
        .configure(json!({"create_account_on_login": false}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (page, _) = node.cas_login(&cas, "bob").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("not invited"), "{}", page.body);
    assert!(node.member("bob@example.edu").await.is_none());

    // spec: RSP-578 — the owner's password keeps working with CAS on.
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

on_both_backends!(cas2_server_without_p3, |url: String| async move {
    // spec: RSP-576 — a CAS 2.0 server has no p3/serviceValidate: Klaxon falls back to
    // serviceValidate. Such a server releases no attributes, so the e-mail comes from the CAS
    // user name (`user`).
    let cas = start_cas(false, directory()).await;
    let node = Node::start(&url).await;
    let (status, body) = node
        .configure(json!({
            "enabled": true, "protocol": "cas", "login_domain": DOMAIN,
            "cas": {"server_url": format!("{}/", cas.url), "login_path": "/login"},
            "field_mapping": {"email": "user"},
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["cas"]["server_url"], cas.url, "{body}");
    let (page, browser) = node.cas_login(&cas, "carl@example.edu").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let carl = node.member("carl@example.edu").await.expect("created");
    assert_eq!(
        node.session_member(&browser).await,
        carl["member_id"].as_i64().unwrap()
    );
    // No name released: the e-mail's local part.
    assert_eq!(carl["member_name"], "carl");
    assert_eq!(
        cas.state.lock().unwrap().validations,
        vec!["serviceValidate".to_string()],
        "the p3 request got a 404 from the server's router, which the test server does not record"
    );

    // A CAS 2.0 refusal is reported the same way.
    let mut b = Browser::new();
    b.get(&format!("{}/sso/cas/start/{DOMAIN}", node.ts.base))
        .await;
    let page = b
        .get(&format!("{}?ticket=ST-77-unknown", node.service_url()))
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("INVALID_TICKET"), "{}", page.body);
});

on_both_backends!(cas_configuration_is_validated, |url: String| async move {
    // spec: RSP-576 — bad CAS settings are refused naming the field, and nothing is stored.
    let node = Node::start(&url).await;
    let bad = [
        (
            json!({"login_domain": DOMAIN, "protocol": "cas", "enabled": true}),
            "cas.server_url",
        ),
        (
            json!({"login_domain": DOMAIN, "protocol": "cas", "cas": {"server_url": "cas.example.edu"}}),
            "cas.server_url",
        ),
        (
            json!({"login_domain": DOMAIN, "protocol": "cas", "cas": {"server_url": "https://cas.example.edu/cas?x=1"}}),
            "cas.server_url",
        ),
        (
            json!({"login_domain": DOMAIN, "protocol": "cas", "cas": {"server_url": "https://cas.example.edu", "login_path": "login"}}),
            "cas.login_path",
        ),
        (
            json!({"login_domain": DOMAIN, "cas": {"server_url": "https://cas.example.edu"}}),
            "cas",
        ),
        (
            json!({"login_domain": DOMAIN, "protocol": "kerberos"}),
            "protocol",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = node.configure(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "InvalidParameter", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{body} -> {message}");
    }
    let (_, info) = node.api("/account/sso/info", json!({})).await;
    assert_eq!(info["data"]["configured"], false, "{info}");

    // spec: RSP-570 — one protocol at a time: switching from CAS to OIDC leaves the CAS
    // domain's sign-in on OIDC, and the CAS start refuses it.
    let (status, body) = node
        .configure(
            json!({"enabled": true, "protocol": "cas", "login_domain": DOMAIN,
                          "cas": {"server_url": "https://cas.example.edu/cas"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = node
        .configure(
            json!({"protocol": "oidc", "oidc": {"issuer": "https://id.example.edu",
                          "client_id": "k", "client_secret": "s"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["cas"]["service_url"], "", "{body}");
    let mut b = Browser::new();
    let page = b
        .get(&format!("{}/sso/cas/start/{DOMAIN}", node.ts.base))
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("does not sign in with CAS"),
        "{}",
        page.body
    );
});
