//! Helpers shared by the integration tests: a real server on port 0 with a temporary data
//! directory, optionally on a fresh PostgreSQL database.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod im_app;
pub mod saas;
#[path = "../ticket_sync/sdp_fake.rs"]
pub mod sdp_fake;
pub mod smtp_sink;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use klaxon_server::{Clock, Config, Server};
use serde_json::{Value, json};

/// A clock the test moves by hand (time is injected; tests never sleep for a timer).
pub struct ManualClock(pub AtomicI64);

impl ManualClock {
    /// Moves the clock `ms` forward and returns the new time.
    pub fn advance_ms(&self, ms: i64) -> i64 {
        self.0.fetch_add(ms, Ordering::SeqCst) + ms
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The wall clock in Unix milliseconds, where a test's ManualClock starts.
pub fn wall_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub struct TestServer {
    pub server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub base: String,
    pub app_key: String,
    pub integration_key: String,
    pub database_url: String,
}

/// A PostgreSQL database of this test's own when `KLAXON_TEST_DATABASE_URL` is set, migrated
/// and empty (see the `klaxon-testdb` crate: a copy of a migrated template, or the emptied
/// database of a test that has ended), so the server's own migration at start has nothing to
/// do.
pub async fn fresh_postgres() -> Option<String> {
    let base = std::env::var("KLAXON_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    match klaxon_testdb::fresh_database(&base).await {
        Ok(url) => Some(url),
        Err(e) => panic!("a PostgreSQL database for this test: {e}"),
    }
}

pub fn test_config(dir: &std::path::Path, database_url: &str) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        database_url: database_url.to_string(),
        ..Config::default()
    };
    // NORMAL still survives a crash of the process, which is all these tests check.
    config.storage.sqlite_synchronous_full = false;
    config
}

impl TestServer {
    pub async fn start(database_url: &str) -> TestServer {
        Self::start_with(database_url, |_| {}).await
    }

    pub async fn start_with(database_url: &str, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        tweak(&mut config);
        let server = klaxon_server::start(config).await.unwrap();
        let base = server.base_url().to_string();
        let app_key = server.bootstrap().app_key.clone();
        let integration_key = server.bootstrap().integration_key.clone();
        TestServer {
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            base,
            app_key,
            integration_key,
            database_url: database_url.to_string(),
        }
    }

    pub fn push_url(&self) -> String {
        format!(
            "{}/event/push/alert/standard?integration_key={}",
            self.base, self.integration_key
        )
    }

    /// POSTs a standard event; returns (status, body).
    pub async fn push(&self, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.push_url())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Calls an Open API path with the APP key; returns (status, body).
    pub async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}?app_key={}", self.base, self.app_key))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the inbox worker has processed everything accepted so far (asynchronous
    /// processing, ING-011): polls the inbox depth exposed on /metrics.
    pub async fn drained(&self) {
        for _ in 0..500 {
            let text = self.metrics().await;
            let depth = text
                .lines()
                .find(|l| l.starts_with("klaxon_inbox_depth "))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok());
            if depth == Some(0.0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the inbox did not drain");
    }

    /// The items of a windowed list (`/incident/list`, `/alert/list`) over the last day.
    async fn recent(&self, path: &str) -> Vec<Value> {
        let now = now_secs();
        let (status, body) = self
            .api(
                path,
                json!({"start_time": now - 86_400, "end_time": now + 3600, "limit": 100}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn incidents(&self) -> Vec<Value> {
        self.recent("/incident/list").await
    }

    pub async fn alerts(&self) -> Vec<Value> {
        self.recent("/alert/list").await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

pub fn now_secs() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs `body` against SQLite, and against PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = $body;
                f(String::new()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match common::fresh_postgres().await {
                    Some(url) => {
                        let f = $body;
                        f(url).await;
                    }
                    None => {
                        eprintln!("KLAXON_TEST_DATABASE_URL not set: PostgreSQL variant skipped")
                    }
                }
            }
        }
    };
}

/// Signs the server's first-start owner in through the console form: the session cookie
/// header and the CSRF token an htmx POST must carry.
pub async fn console_session(server: &Server) -> (String, String) {
    let form = [
        ("email", server.bootstrap().owner_email.clone()),
        ("password", server.owner_password().unwrap().to_string()),
    ];
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/signin", server.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("klaxon_csrf="))
        .unwrap()
        .to_string();
    (cookies.join("; "), csrf)
}

/// [`console_session`] for a test server: the session cookie header and its CSRF token.
pub async fn sign_in(t: &TestServer) -> (String, String) {
    console_session(t.server.as_ref().unwrap()).await
}

/// A console page fetched with a session cookie: its status and HTML as served.
pub async fn get_page(t: &TestServer, cookie: &str, path: &str) -> (u16, String) {
    let resp = t
        .http
        .get(format!("{}{path}", t.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The `data` of a successful Open API answer.
pub fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}
