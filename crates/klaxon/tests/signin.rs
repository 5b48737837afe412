//! APP keys done right (response.md §1.26, RSP-610 … RSP-612) and password sign-in with
//! server-side sessions, lockout and the CSRF check (docs/sign-in.md), over real HTTP.
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_server::{Clock, Config};
use serde_json::{Value, json};

const MIN: i64 = 60_000;

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    password: String,
    email: String,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        Self::start_with(database_url, |_| {}).await
    }

    async fn start_with(database_url: &str, tweak: impl FnOnce(&mut Config)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.delivery = false;
        tweak(&mut config);
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let password = server.owner_password().unwrap().to_string();
        let email = server.bootstrap().owner_email.clone();
        let ts = TestServer {
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

    fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    async fn api_with(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .ts
            .http
            .post(format!("{}{path}?app_key={key}", self.ts.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn bearer(&self, key: &str, path: &str) -> (u16, Value) {
        let resp = self
            .ts
            .http
            .post(format!("{}{path}", self.ts.base))
            .bearer_auth(key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST /auth/login`; returns (status, body, Set-Cookie headers).
    async fn login(&self, email: &str, password: &str) -> (u16, Value, Vec<String>) {
        let resp = self
            .ts
            .http
            .post(format!("{}/auth/login", self.ts.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let cookies = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        (status, resp.json().await.unwrap_or(Value::Null), cookies)
    }

    /// A signed-in session: (cookie value, CSRF token).
    async fn session(&self) -> (String, String) {
        let (status, body, cookies) = self.login(&self.email, &self.password).await;
        assert_eq!(status, 200, "{body}");
        let token = cookie_value(&cookies, "klaxon_session");
        (
            token,
            body["data"]["csrf_token"].as_str().unwrap().to_string(),
        )
    }

    /// An Open API call with the session cookie and, when given, the CSRF header.
    async fn cookie_api(&self, token: &str, csrf: Option<&str>, path: &str) -> (u16, Value) {
        let mut req = self
            .ts
            .http
            .post(format!("{}{path}", self.ts.base))
            .header("cookie", format!("klaxon_session={token}"))
            .json(&json!({}));
        if let Some(c) = csrf {
            req = req.header("x-klaxon-csrf", c);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Every byte the database holds, as text: the SQLite files, or a dump of the PostgreSQL
    /// tables that could hold a key or a session.
    async fn database_text(&self) -> String {
        if self.ts.database_url.is_empty() {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(self.ts.dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    all.extend(std::fs::read(&path).unwrap());
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        } else {
            let out = tokio::process::Command::new("psql")
                .arg(&self.ts.database_url)
                .arg("-At")
                .arg("-c")
                .arg("SELECT a::text FROM app_keys a UNION ALL SELECT s::text FROM sessions s")
                .output()
                .await
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    }
}

fn cookie_value(set_cookies: &[String], name: &str) -> String {
    set_cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"))
        .to_string()
}

fn ok(status: u16, body: &Value) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn err(status: u16, body: &Value, code: &str, http: u16) -> String {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(status, http, "{body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

fn sha256_hex(s: &str) -> String {
    klaxon_store::hash_secret(s)
}

on_both_backends!(
    app_keys_are_stored_hashed_and_shown_once,
    |url: String| async move {
        let n = Node::start(&url).await;
        // The bootstrap key works, by query and by Bearer (openapi-compat.md 1.2).
        ok_pair(n.api_with(&n.ts.app_key, "/member/info", json!({})).await);
        ok_pair(n.bearer(&n.ts.app_key, "/member/info").await);

        // spec: RSP-610 — the secret is shown once, at creation.
        let (s, b) = n
            .api_with(&n.ts.app_key, "/app-key/create", json!({"key_name": "ci"}))
            .await;
        let created = ok(s, &b);
        let secret = created["app_key"].as_str().unwrap().to_string();
        assert_eq!(secret.len(), 32);
        assert_eq!(created["key_name"], "ci");
        ok_pair(n.api_with(&secret, "/member/info", json!({})).await);

        let (s, b) = n.api_with(&secret, "/app-key/list", json!({})).await;
        let list = ok(s, &b);
        assert_eq!(list["total"], 2);
        let text = list.to_string();
        assert!(
            !text.contains(&secret),
            "a list never shows a secret: {text}"
        );
        assert!(!text.contains(&n.ts.app_key), "{text}");
        assert!(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k.get("app_key").is_none())
        );
        assert_eq!(
            list["items"][1]["key_hint"],
            format!("…{}", &secret[secret.len() - 4..])
        );

        // spec: RSP-610 (§1.26 "stored hashed") — the database never holds a plain key, only
        // its SHA-256.
        let db = n.database_text().await;
        assert!(!db.contains(&secret), "the new key is stored in plain text");
        assert!(
            !db.contains(&n.ts.app_key),
            "the bootstrap key is stored in plain text"
        );
        assert!(db.contains(&sha256_hex(&secret)));
        assert!(db.contains(&sha256_hex(&n.ts.app_key)));

        // Bad input changes nothing.
        let (s, b) = n
            .api_with(&secret, "/app-key/create", json!({"key_name": ""}))
            .await;
        assert!(err(s, &b, "InvalidParameter", 400).contains("key_name"));
        let (s, b) = n
            .api_with(
                &secret,
                "/app-key/create",
                json!({"key_name": "x".repeat(40)}),
            )
            .await;
        assert!(err(s, &b, "InvalidParameter", 400).contains("key_name"));
        let (s, b) = n.api_with(&secret, "/app-key/list", json!({})).await;
        assert_eq!(ok(s, &b)["total"], 2);
    }
);

fn ok_pair((s, b): (u16, Value)) -> Value {
    ok(s, &b)
}

on_both_backends!(
    five_keys_per_member_and_delete_frees_a_slot,
    |url: String| async move {
        let n = Node::start(&url).await;
        let key = n.ts.app_key.clone();
        // spec: RSP-610 — the bootstrap key is the first of five.
        let mut ids = Vec::new();
        for i in 2..=5 {
            let (s, b) = n
                .api_with(
                    &key,
                    "/app-key/create",
                    json!({"key_name": format!("k{i}")}),
                )
                .await;
            ids.push(ok(s, &b)["key_id"].as_i64().unwrap());
        }
        let (s, b) = n
            .api_with(&key, "/app-key/create", json!({"key_name": "k6"}))
            .await;
        assert!(err(s, &b, "InvalidParameter", 400).contains("limit_exceeded"));
        let (s, b) = n.api_with(&key, "/app-key/list", json!({})).await;
        assert_eq!(
            ok(s, &b)["total"],
            5,
            "the refused sixth key was not stored"
        );

        // spec: RSP-611 — deleting a key frees its slot.
        ok_pair(
            n.api_with(&key, "/app-key/delete", json!({"key_id": ids[0]}))
                .await,
        );
        ok_pair(
            n.api_with(&key, "/app-key/create", json!({"key_name": "k6"}))
                .await,
        );

        // §1.26 — an account-level key does not count toward the owner's five, acts as the
        // owner, and /member/info fails with invalid_argument.
        let (s, b) = n
            .api_with(
                &key,
                "/app-key/create",
                json!({"key_name": "terraform", "account_level": true}),
            )
            .await;
        let account_key = ok(s, &b);
        assert_eq!(account_key["account_level"], true);
        assert_eq!(account_key["member_id"], 0);
        let secret = account_key["app_key"].as_str().unwrap();
        let (s, b) = n.api_with(secret, "/member/info", json!({})).await;
        err(s, &b, "InvalidParameter", 400);
        ok_pair(n.api_with(secret, "/account/info", json!({})).await);
        ok_pair(n.api_with(secret, "/channel/list", json!({})).await);

        // Deleting an unknown key is a clear not-found.
        let (s, b) = n
            .api_with(&key, "/app-key/delete", json!({"key_id": 999_999}))
            .await;
        err(s, &b, "ResourceNotFound", 400);
        let (s, b) = n.api_with(&key, "/app-key/delete", json!({})).await;
        assert!(err(s, &b, "InvalidParameter", 400).contains("key_id"));
    }
);

on_both_backends!(
    a_deleted_key_stops_working_at_once,
    |url: String| async move {
        let n = Node::start(&url).await;
        let (s, b) = n
            .api_with(
                &n.ts.app_key,
                "/app-key/create",
                json!({"key_name": "temp"}),
            )
            .await;
        let created = ok(s, &b);
        let secret = created["app_key"].as_str().unwrap().to_string();
        ok_pair(n.api_with(&secret, "/channel/list", json!({})).await);
        // spec: RSP-611 — it stops working at once when it is deleted.
        ok_pair(
            n.api_with(
                &n.ts.app_key,
                "/app-key/delete",
                json!({"key_id": created["key_id"]}),
            )
            .await,
        );
        let (s, b) = n.api_with(&secret, "/channel/list", json!({})).await;
        err(s, &b, "Unauthorized", 401);
        let (s, b) = n.bearer(&secret, "/member/info").await;
        err(s, &b, "Unauthorized", 401);
    }
);

on_both_backends!(
    last_used_is_written_at_most_once_a_minute,
    |url: String| async move {
        let n = Node::start(&url).await;
        let key = n.ts.app_key.clone();
        let last_used = |list: Value| list["items"][0]["last_used_at"].as_i64().unwrap();

        // spec: RSP-612 — every authenticated use updates last_used_at, at most once a minute.
        let t0 = n.now();
        let (s, b) = n.api_with(&key, "/app-key/list", json!({})).await;
        assert_eq!(last_used(ok(s, &b)), t0 / 1000, "the first use is recorded");
        n.advance(30_000);
        let (s, b) = n.api_with(&key, "/app-key/list", json!({})).await;
        assert_eq!(
            last_used(ok(s, &b)),
            t0 / 1000,
            "not rewritten within the minute"
        );
        n.advance(31_000);
        let t1 = n.now();
        let (s, b) = n.api_with(&key, "/app-key/list", json!({})).await;
        assert_eq!(last_used(ok(s, &b)), t1 / 1000, "rewritten after a minute");
    }
);

on_both_backends!(
    login_sets_an_http_only_session_cookie,
    |url: String| async move {
        let n = Node::start(&url).await;
        // Wrong password and unknown address: the same 401, nothing reveals which.
        let (s, b, cookies) = n.login(&n.email, "not the password").await;
        assert!(err(s, &b, "Unauthorized", 401).contains("incorrect"));
        assert!(cookies.is_empty());
        let (s, b, _) = n.login("nobody@example.com", "whatever").await;
        assert!(err(s, &b, "Unauthorized", 401).contains("incorrect"));
        let (s, b, _) = n.login("", "x").await;
        assert!(err(s, &b, "InvalidParameter", 400).contains("email"));
        let (s, b, _) = n.login(&n.email, "").await;
        assert!(err(s, &b, "InvalidParameter", 400).contains("password"));

        // Success: the address is matched case-insensitively.
        let (s, b, cookies) = n.login(&n.email.to_uppercase(), &n.password).await;
        let data = ok(s, &b);
        let session = cookies
            .iter()
            .find(|c| c.starts_with("klaxon_session="))
            .unwrap();
        assert!(session.contains("HttpOnly"), "{session}");
        assert!(session.contains("SameSite=Lax"), "{session}");
        assert!(
            !session.contains("Secure"),
            "plain http test server: {session}"
        );
        let token = cookie_value(&cookies, "klaxon_session");
        assert_eq!(cookie_value(&cookies, "klaxon_csrf"), data["csrf_token"]);
        let csrf = data["csrf_token"].as_str().unwrap();

        // The session authenticates the Open API as the member.
        let (s, b) = n.cookie_api(&token, Some(csrf), "/member/info").await;
        assert_eq!(ok(s, &b)["member_id"], data["member_id"]);
        // The cookie holds a random token; the database holds only its hash.
        let db = n.database_text().await;
        assert!(!db.contains(&token));
        assert!(db.contains(&sha256_hex(&token)));

        // Sign-out ends the session at once.
        let resp =
            n.ts.http
                .post(format!("{}/auth/logout", n.ts.base))
                .header("cookie", format!("klaxon_session={token}"))
                .header("x-klaxon-csrf", csrf)
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let cleared = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Max-Age=0"));
        assert!(cleared);
        let (s, b) = n.cookie_api(&token, Some(csrf), "/member/info").await;
        err(s, &b, "Unauthorized", 401);
    }
);

on_both_backends!(secure_cookie_can_be_forced, |url: String| async move {
    let n = Node::start_with(&url, |c| c.auth.secure_cookie = Some(true)).await;
    let (s, b, cookies) = n.login(&n.email, &n.password).await;
    ok(s, &b);
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
});

on_both_backends!(
    cookie_requests_without_the_csrf_token_are_refused,
    |url: String| async move {
        let n = Node::start(&url).await;
        let (token, csrf) = n.session().await;
        // A cookie-authenticated POST without the header, or with a wrong one, is refused and
        // changes nothing.
        let (s, b) = n.cookie_api(&token, None, "/app-key/create").await;
        assert!(err(s, &b, "AccessDenied", 403).contains("CSRF"));
        let (s, b) = n
            .cookie_api(&token, Some(&"0".repeat(64)), "/app-key/create")
            .await;
        err(s, &b, "AccessDenied", 403);
        let (s, b) = n.api_with(&n.ts.app_key, "/app-key/list", json!({})).await;
        assert_eq!(ok(s, &b)["total"], 1, "no key was created");
        // With the token it goes through.
        let resp =
            n.ts.http
                .post(format!("{}/app-key/create", n.ts.base))
                .header("cookie", format!("klaxon_session={token}"))
                .header("x-klaxon-csrf", &csrf)
                .json(&json!({"key_name": "from the console"}))
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        // Logging out also needs the token.
        let resp =
            n.ts.http
                .post(format!("{}/auth/logout", n.ts.base))
                .header("cookie", format!("klaxon_session={token}"))
                .send()
                .await
                .unwrap();
        assert_eq!(resp.status().as_u16(), 403);
        ok_pair(n.cookie_api(&token, Some(&csrf), "/member/info").await);
    }
);

on_both_backends!(sessions_expire, |url: String| async move {
    let n = Node::start_with(&url, |c| c.auth.session_ttl_minutes = 30).await;
    let (token, csrf) = n.session().await;
    ok_pair(n.cookie_api(&token, Some(&csrf), "/member/info").await);
    n.advance(29 * MIN);
    ok_pair(n.cookie_api(&token, Some(&csrf), "/member/info").await);
    n.advance(MIN);
    let (s, b) = n.cookie_api(&token, Some(&csrf), "/member/info").await;
    assert!(err(s, &b, "Unauthorized", 401).contains("expired"));
});

on_both_backends!(
    repeated_failures_lock_the_address,
    |url: String| async move {
        // The clock stands still: the per-node attempt throttle (tested below) is off.
        let n = Node::start_with(&url, |c| c.auth.attempts_per_second = 0).await;
        // Four failures, then a success, resets the count.
        for _ in 0..4 {
            let (s, b, _) = n.login(&n.email, "wrong").await;
            err(s, &b, "Unauthorized", 401);
        }
        let (s, b, _) = n.login(&n.email, &n.password).await;
        ok(s, &b);
        // Five failures within 15 minutes lock the address for 15 minutes (423 RequestLocked,
        // openapi-compat.md 1.5), even for the right password.
        for i in 0..5 {
            let (s, b, _) = n.login(&n.email, "wrong").await;
            if i < 4 {
                err(s, &b, "Unauthorized", 401);
            } else {
                assert!(err(s, &b, "RequestLocked", 423).contains("try again"));
            }
        }
        let (s, b, cookies) = n.login(&n.email, &n.password).await;
        err(s, &b, "RequestLocked", 423);
        assert!(cookies.is_empty());
        n.advance(14 * MIN);
        let (s, b, _) = n.login(&n.email, &n.password).await;
        err(s, &b, "RequestLocked", 423);
        n.advance(MIN + 1000);
        let (s, b, _) = n.login(&n.email, &n.password).await;
        ok(s, &b);
        // Failures spread over more than the window never lock.
        for _ in 0..8 {
            let (s, b, _) = n.login(&n.email, "wrong").await;
            err(s, &b, "Unauthorized", 401);
            n.advance(4 * MIN);
        }
    }
);

/// A second handle on the server's database, to give an invited member an APP key (invitees
/// have no password yet, so they cannot sign in and create one themselves).
async fn store_of(n: &Node) -> klaxon_store::Store {
    let url = test_config(n.ts.dir.path(), &n.ts.database_url).effective_database_url();
    klaxon_store::Store::connect(&url, klaxon_store::StoreOptions::default())
        .await
        .unwrap()
}

on_both_backends!(
    members_manage_only_their_own_keys,
    |url: String| async move {
        let n = Node::start(&url).await;
        let owner = n.ts.app_key.clone();
        // An API invitation without roles grants Viewer (RSP-550); with role 6, Responder.
        let (s, b) = n
            .api_with(
                &owner,
                "/member/invite",
                json!({"members": [{"email": "viewer@example.com"},
                               {"email": "resp@example.com", "role_ids": [6]}]}),
            )
            .await;
        let items = ok(s, &b)["items"].as_array().unwrap().clone();
        let (viewer, responder) = (
            items[0]["member_id"].as_i64().unwrap(),
            items[1]["member_id"].as_i64().unwrap(),
        );
        let store = store_of(&n).await;
        let account = store.app_key(&owner).await.unwrap().unwrap().account_id;
        let viewer_key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";
        let responder_key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2";
        store
            .add_app_key(account, viewer, "v", viewer_key, n.now())
            .await
            .unwrap()
            .unwrap();
        store
            .add_app_key(account, responder, "r", responder_key, n.now())
            .await
            .unwrap()
            .unwrap();

        // spec: RSP-610, RSP-521 — creating a key needs API Keys Manage, which a Viewer lacks.
        let (s, b) = n
            .api_with(viewer_key, "/app-key/create", json!({"key_name": "mine"}))
            .await;
        assert!(err(s, &b, "AccessDenied", 403).contains("API Keys Manage"));
        // A Responder holds it, for personal keys only: account-level keys are the owner's.
        ok_pair(
            n.api_with(
                responder_key,
                "/app-key/create",
                json!({"key_name": "mine"}),
            )
            .await,
        );
        let (s, b) = n
            .api_with(
                responder_key,
                "/app-key/create",
                json!({"key_name": "acct", "account_level": true}),
            )
            .await;
        err(s, &b, "AccessDenied", 403);

        // A member lists only their own keys; the owner sees all of the account.
        let (s, b) = n.api_with(responder_key, "/app-key/list", json!({})).await;
        let mine = ok(s, &b);
        assert_eq!(mine["total"], 2);
        assert!(
            mine["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k["member_id"] == responder)
        );
        let (s, b) = n.api_with(&owner, "/app-key/list", json!({})).await;
        assert_eq!(ok(s, &b)["total"], 4);

        // Another member's key cannot be deleted (not even seen) by a member…
        let (s, b) = n
            .api_with(responder_key, "/app-key/delete", json!({"key_id": 1}))
            .await;
        err(s, &b, "ResourceNotFound", 400);
        ok_pair(n.api_with(&owner, "/member/info", json!({})).await);
        // …but the owner may delete any key; it stops working at once (RSP-611).
        let (s, b) = n.api_with(&owner, "/app-key/list", json!({})).await;
        let viewer_key_id = ok(s, &b)["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["member_id"] == viewer)
            .unwrap()["key_id"]
            .clone();
        ok_pair(
            n.api_with(&owner, "/app-key/delete", json!({"key_id": viewer_key_id}))
                .await,
        );
        let (s, b) = n.api_with(viewer_key, "/app-key/list", json!({})).await;
        err(s, &b, "Unauthorized", 401);
        store.close().await;
    }
);

on_both_backends!(
    sign_in_attempts_are_throttled_per_node,
    |url: String| async move {
        let n = Node::start_with(&url, |c| c.auth.attempts_per_second = 3).await;
        // Three attempts in one second (the clock stands still), whatever the address…
        for who in ["a@example.com", "b@example.com", "c@example.com"] {
            let (s, b, _) = n.login(who, "wrong").await;
            err(s, &b, "Unauthorized", 401);
        }
        // …then 429 with Retry-After, before any password is checked: even the right one.
        let (s, b, cookies) = n.login(&n.email, &n.password).await;
        err(s, &b, "RequestTooFrequently", 429);
        assert!(cookies.is_empty());
        n.advance(1000);
        let (s, b, _) = n.login(&n.email, &n.password).await;
        ok(s, &b);
    }
);
