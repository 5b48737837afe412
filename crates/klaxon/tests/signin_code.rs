//! Sign-in with a code sent by e-mail (response.md RSP-578, docs/sign-in.md), over HTTP with
//! a real SMTP receiver: the code arrives by mail, works once, for 10 minutes, dies after 5
//! wrong tries; a member gets at most 5 codes an hour; while SSO is on only the owner gets
//! codes (break-glass), and members fall back to codes when SSO is turned off. The console's
//! sign-in page runs the same two steps. SQLite, and PostgreSQL when configured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::smtp_sink::{Mail, Smtp};
use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_notify::{SmtpConfig, SmtpSecurity};
use serde_json::{Value, json};

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    smtp: Smtp,
    owner_email: String,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let smtp = Smtp::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.delivery = false;
        config.notify.email = Some(SmtpConfig {
            host: smtp.addr.ip().to_string(),
            port: smtp.addr.port(),
            security: SmtpSecurity::None,
            from: "Klaxon <klaxon@klaxon.test>".into(),
            ..SmtpConfig::default()
        });
        // The node-wide attempt rate is tested with password sign-in; here it would only
        // make the test depend on how fast it runs.
        config.auth.attempts_per_second = 0;
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let owner_email = server.bootstrap().owner_email.clone();
        let ts = TestServer {
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
            smtp,
            owner_email,
        }
    }

    fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// An unauthenticated JSON call: status, body and the session cookie it set, if any.
    async fn post(&self, path: &str, body: Value) -> (u16, Value, Option<String>) {
        let resp = self
            .ts
            .http
            .post(format!("{}{path}", self.ts.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let session = session_of(&resp);
        (status, resp.json().await.unwrap_or(Value::Null), session)
    }

    async fn request(&self, email: &str) {
        let (status, body, _) = self
            .post("/auth/code/request", json!({"email": email}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn login(&self, email: &str, code: &str) -> (u16, Value, Option<String>) {
        self.post("/auth/code/login", json!({"email": email, "code": code}))
            .await
    }

    /// Waits (for the server's background send, not a timer) until `n` mails arrived.
    async fn mails(&self, n: usize) -> Vec<Mail> {
        for _ in 0..400 {
            let mails = self.smtp.mails();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} mails, got {}", self.smtp.mails().len());
    }

    async fn invite(&self, email: &str) -> i64 {
        let (status, body) = self
            .ts
            .api("/member/invite", json!({"members": [{"email": email}]}))
            .await;
        assert_eq!(status, 200, "{body}");
        self.member(email).await["member_id"].as_i64().unwrap()
    }

    async fn member(&self, email: &str) -> Value {
        let (_, body) = self.ts.api("/member/list", json!({"limit": 100})).await;
        body["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"].as_str().unwrap().eq_ignore_ascii_case(email))
            .cloned()
            .unwrap_or_else(|| panic!("no member {email}"))
    }

    /// The member of a session cookie (`/auth/session`).
    async fn session_member(&self, session: &str) -> i64 {
        let resp = self
            .ts
            .http
            .get(format!("{}/auth/session", self.ts.base))
            .header("cookie", format!("klaxon_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body: Value = resp.json().await.unwrap();
        body["data"]["member_id"].as_i64().unwrap()
    }

    async fn sso(&self, enabled: bool) {
        let (status, body) = self
            .ts
            .api(
                "/account/sso/update",
                json!({"enabled": enabled, "protocol": "oidc", "login_domain": "acme",
                       "oidc": {"issuer": "https://id.example.com", "client_id": "k",
                                "client_secret": "s"}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

fn session_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("klaxon_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .filter(|c| !c.is_empty())
}

/// The six-digit code of a mail.
fn code_of(mail: &Mail) -> String {
    mail.data
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {}", mail.data))
        .to_string()
}

/// A six-digit code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

fn to(mail: &Mail, email: &str) -> bool {
    mail.rcpt.iter().any(|r| r.contains(email))
}

on_both_backends!(code_sign_in_end_to_end, |url: String| async move {
    // spec: RSP-578 — an invited member without a password signs in with a code.
    let node = Node::start(&url).await;
    let ann = node.invite("ann@example.com").await;
    assert_eq!(node.member("ann@example.com").await["status"], "pending");

    // The same answer for an unknown address, and no mail for it.
    let (s1, b1, _) = node
        .post("/auth/code/request", json!({"email": "nobody@example.com"}))
        .await;
    let (s2, b2, _) = node
        .post("/auth/code/request", json!({"email": "ANN@example.com"}))
        .await;
    assert_eq!((s1, s2), (200, 200));
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(b1), strip(b2));
    let mails = node.mails(1).await;
    assert_eq!(mails.len(), 1);
    assert!(to(&mails[0], "ann@example.com"), "{:?}", mails[0].rcpt);
    let code = code_of(&mails[0]);

    // Bad input names the field.
    let (s, b, _) = node.post("/auth/code/request", json!({})).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().starts_with("email"));
    let (s, b, _) = node.login("ann@example.com", "12ab").await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().starts_with("code"));

    // Four wrong codes are refused without ending the code's life; the right one signs in.
    for _ in 0..4 {
        let (s, b, session) = node.login("ann@example.com", &other_than(&code)).await;
        assert_eq!(s, 401, "{b}");
        assert_eq!(b["error"]["code"], "Unauthorized", "{b}");
        assert!(session.is_none());
    }
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let (s, b, session) = node.login("Ann@Example.com", &spaced).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["member_id"].as_i64().unwrap(), ann);
    assert_eq!(node.session_member(&session.unwrap()).await, ann);
    // RSP-551: the first sign-in activates the invited member.
    assert_eq!(node.member("ann@example.com").await["status"], "enabled");
    // A code works once.
    let (s, _, _) = node.login("ann@example.com", &code).await;
    assert_eq!(s, 401);

    // The fifth wrong try spends the code: the right one no longer works after it.
    node.request("ann@example.com").await;
    let code = code_of(&node.mails(2).await[1]);
    for _ in 0..5 {
        let (s, _, _) = node.login("ann@example.com", &other_than(&code)).await;
        assert_eq!(s, 401);
    }
    let (s, _, _) = node.login("ann@example.com", &code).await;
    assert_eq!(s, 401, "spent after five wrong tries");

    // A code works for 10 minutes.
    node.request("ann@example.com").await;
    let code = code_of(&node.mails(3).await[2]);
    node.advance(10 * 60_000);
    let (s, _, _) = node.login("ann@example.com", &code).await;
    assert_eq!(s, 401, "expired");

    // A new code voids the earlier one.
    node.request("ann@example.com").await;
    let first = code_of(&node.mails(4).await[3]);
    node.request("ann@example.com").await;
    let second = code_of(&node.mails(5).await[4]);
    if first != second {
        let (s, _, _) = node.login("ann@example.com", &first).await;
        assert_eq!(s, 401, "voided by the newer code");
    }
    let (s, b, _) = node.login("ann@example.com", &second).await;
    assert_eq!(s, 200, "{b}");

    // At most 5 codes an hour: the sixth request answers the same and sends nothing; an hour
    // after the first, codes are sent again.
    node.request("ann@example.com").await;
    node.request(&node.owner_email).await;
    let mails = node.mails(6).await;
    assert!(to(&mails[5], &node.owner_email), "{:?}", mails[5].rcpt);
    assert_eq!(mails.iter().filter(|m| to(m, "ann@example.com")).count(), 5);
    node.advance(50 * 60_000 + 1);
    node.request("ann@example.com").await;
    let mails = node.mails(7).await;
    assert!(to(&mails[6], "ann@example.com"));

    // Requests and sign-ins are audited (RSP-600).
    let now = node.clock.0.load(Ordering::SeqCst) / 1000;
    let (s, b) = node
        .ts
        .api(
            "/audit/search",
            json!({"start_time": now - 7200, "end_time": now + 60,
                   "operations": ["member:write:login_code", "member:write:login_code_request"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let ops: Vec<String> = b["data"]["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["operation"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ops.iter().any(|o| o == "member:write:login_code"),
        "{ops:?}"
    );
    assert!(
        ops.iter().any(|o| o == "member:write:login_code_request"),
        "{ops:?}"
    );
});

on_both_backends!(codes_and_single_sign_on, |url: String| async move {
    // spec: RSP-578
    let node = Node::start(&url).await;
    let bob = node.invite("bob@example.com").await;
    // A code sent while SSO is off stops working when SSO is turned on before it is used.
    node.request("bob@example.com").await;
    let early = code_of(&node.mails(1).await[0]);
    node.sso(true).await;
    let (s, b, session) = node.login("bob@example.com", &early).await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("acme"),
        "{b}"
    );
    assert!(session.is_none());

    // With SSO on, a member gets no code; the owner does (break-glass).
    node.request("bob@example.com").await;
    node.request(&node.owner_email).await;
    let mails = node.mails(2).await;
    assert!(to(&mails[1], &node.owner_email), "{:?}", mails[1].rcpt);
    let owner_code = code_of(&mails[1]);
    let (s, b, session) = node.login(&node.owner_email, &owner_code).await;
    assert_eq!(s, 200, "{b}");
    assert!(session.is_some());
    assert_eq!(
        node.smtp
            .mails()
            .iter()
            .filter(|m| to(m, "bob@example.com"))
            .count(),
        1,
        "only the code sent before SSO was on"
    );
    let now = node.clock.0.load(Ordering::SeqCst) / 1000;
    let (_, b) = node
        .ts
        .api(
            "/audit/search",
            json!({"start_time": now - 60, "end_time": now + 60,
                   "operations": ["member:write:login_code_request"]}),
        )
        .await;
    let refused = b["data"]["docs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["member_id"].as_i64() == Some(bob) && d["result"] == "AccessDenied")
        .count();
    assert_eq!(refused, 1, "{b}");

    // spec: RSP-578 — with SSO on, a password signs in only the owner; a member with a
    // password is sent to SSO (after the password is checked, so nothing leaks).
    let server = node.ts.server.as_ref().unwrap();
    let account = server.bootstrap().account_id;
    let store = server.store();
    let token = store
        .create_password_reset(
            account,
            bob,
            klaxon_store::ResetPolicy {
                ttl_ms: 600_000,
                max_per_window: 5,
                window_ms: 3_600_000,
            },
            node.clock.0.load(Ordering::SeqCst),
        )
        .await
        .unwrap()
        .unwrap();
    let hash = store.hash_password("bob-has-a-password").await.unwrap();
    store
        .use_password_reset(&token, &hash, node.clock.0.load(Ordering::SeqCst))
        .await
        .unwrap()
        .unwrap();
    let (s, b, session) = node
        .post(
            "/auth/login",
            json!({"email": "bob@example.com", "password": "bob-has-a-password"}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("acme"),
        "{b}"
    );
    assert!(session.is_none());
    let password = server.owner_password().unwrap().to_string();
    let (s, b, session) = node
        .post(
            "/auth/login",
            json!({"email": node.owner_email, "password": password}),
        )
        .await;
    assert_eq!(s, 200, "the owner's break-glass password: {b}");
    assert!(session.is_some());

    // Turning SSO off deletes nobody, and members fall back to codes.
    node.sso(false).await;
    node.request("bob@example.com").await;
    let mails = node.mails(3).await;
    assert!(to(&mails[2], "bob@example.com"));
    let (s, b, session) = node.login("bob@example.com", &code_of(&mails[2])).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(node.session_member(&session.unwrap()).await, bob);
    // And to their password.
    let (s, b, _) = node
        .post(
            "/auth/login",
            json!({"email": "bob@example.com", "password": "bob-has-a-password"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
});

on_both_backends!(console_code_sign_in, |url: String| async move {
    // spec: RSP-578 — the console's sign-in page offers the code and runs both steps.
    let node = Node::start(&url).await;
    let carol = node.invite("carol@example.com").await;
    let form = |path: &str, pairs: &[(&str, &str)]| {
        node.ts
            .http
            .post(format!("{}{path}", node.ts.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(pairs).unwrap())
            .send()
    };
    let page = node
        .ts
        .http
        .get(format!("{}/signin", node.ts.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("action=\"/signin/code/request\""), "{page}");

    let resp = form(
        "/signin/code/request",
        &[("email", "carol@example.com"), ("next", "/incidents")],
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("action=\"/signin/code\""), "{page}");
    assert!(page.contains("name=\"code\""), "{page}");
    let code = code_of(&node.mails(1).await[0]);

    // A wrong code shows the form again with the error beside the field.
    let resp = form(
        "/signin/code",
        &[("email", "carol@example.com"), ("code", &other_than(&code))],
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let page = resp.text().await.unwrap();
    assert!(page.contains("email or code is incorrect"), "{page}");

    let resp = form(
        "/signin/code",
        &[
            ("email", "carol@example.com"),
            ("code", &code),
            ("next", "/incidents"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/incidents");
    let session = session_of(&resp).unwrap();
    assert_eq!(node.session_member(&session).await, carol);

    // An empty address is refused on the page, naming the field.
    let resp = form("/signin/code/request", &[("email", "")])
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("email: required"));
});
