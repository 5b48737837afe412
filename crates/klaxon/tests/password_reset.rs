//! Password reset by e-mail over HTTP (docs/sign-in.md): the request answers the same for
//! known and unknown addresses, the code arrives by SMTP (a local sink here), works once,
//! sets the password and ends every session; requests are rate-limited per member; each
//! step is in the audit log (RSP-600). SQLite, and PostgreSQL when configured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestServer, now_secs};
use klaxon_notify::{SmtpConfig, SmtpSecurity};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One received message: its recipients and its data.
type Mail = (Vec<String>, String);

/// A plain SMTP receiver that keeps every message.
#[derive(Clone)]
struct Sink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl Sink {
    async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Sink {
            addr: listener.local_addr().unwrap(),
            mails: Arc::default(),
        };
        let s = sink.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move { s.session(sock).await });
            }
        });
        sink
    }

    async fn session(&self, sock: tokio::net::TcpStream) {
        let (r, mut w) = sock.into_split();
        let mut r = BufReader::new(r);
        let say = |s: &'static str| s.as_bytes();
        w.write_all(say("220 localhost ESMTP\r\n")).await.unwrap();
        let mut rcpt = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let upper = line.trim_end().to_uppercase();
            let reply: &str = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250-localhost\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("RCPT TO:") {
                rcpt.push(line.trim_end()[8..].trim().to_string());
                "250 OK\r\n"
            } else if upper == "DATA" {
                w.write_all(b"354 go on\r\n").await.unwrap();
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                self.mails
                    .lock()
                    .unwrap()
                    .push((std::mem::take(&mut rcpt), data));
                "250 queued\r\n"
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").await.unwrap();
                return;
            } else {
                "250 OK\r\n"
            };
            w.write_all(reply.as_bytes()).await.unwrap();
        }
    }

    /// Waits (for the server's background send, not a timer) until `n` mails arrived.
    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..200 {
            let mails = self.mails.lock().unwrap().clone();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "expected {n} mails, got {}",
            self.mails.lock().unwrap().len()
        );
    }
}

/// The 64-hex reset code of a mail.
fn code_of(data: &str) -> String {
    data.lines()
        .map(str::trim)
        .find(|l| l.len() == 64 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no reset code in {data}"))
        .to_string()
}

async fn post(
    ts: &TestServer,
    path: &str,
    body: Value,
    cookie: Option<&str>,
) -> (u16, Value, Vec<String>) {
    let mut req = ts.http.post(format!("{}{path}", ts.base)).json(&body);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("klaxon_session={c}"));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    (status, resp.json().await.unwrap_or(Value::Null), cookies)
}

fn session_cookie(cookies: &[String]) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix("klaxon_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap()
}

on_both_backends!(reset_by_email_end_to_end, |url: String| async move {
    let sink = Sink::start().await;
    let ts = TestServer::start_with(&url, |c| {
        c.notify.email = Some(SmtpConfig {
            host: sink.addr.ip().to_string(),
            port: sink.addr.port(),
            security: SmtpSecurity::None,
            from: "Klaxon <klaxon@klaxon.test>".into(),
            ..SmtpConfig::default()
        });
        c.auth.attempts_per_second = 0;
    })
    .await;
    let server = ts.server.as_ref().unwrap();
    let email = server.bootstrap().owner_email.clone();
    let old_password = server.owner_password().unwrap().to_string();
    let (s, b, cookies) = post(
        &ts,
        "/auth/login",
        json!({"email": email, "password": old_password}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let session = session_cookie(&cookies);
    assert_eq!(
        post(&ts, "/auth/session", json!({}), Some(&session))
            .await
            .0,
        200
    );

    // The same answer for an unknown address (no account enumeration), and no mail for it.
    let (s1, b1, _) = post(
        &ts,
        "/auth/password/reset/request",
        json!({"email": "nobody@example.com"}),
        None,
    )
    .await;
    let (s2, b2, _) = post(
        &ts,
        "/auth/password/reset/request",
        json!({"email": email.to_uppercase()}),
        None,
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    assert_eq!(strip(b1), strip(b2));
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].0[0].contains(&email), "{:?}", mails[0].0);
    let code = code_of(&mails[0].1);

    // Bad input names the field and changes nothing.
    let (s, b, _) = post(&ts, "/auth/password/reset/request", json!({}), None).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().starts_with("email"));
    let (s, b, _) = post(
        &ts,
        "/auth/password/reset/confirm",
        json!({"token": code, "password": "short"}),
        None,
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("password")
    );
    let wrong = "0".repeat(64);
    let (s, b, _) = post(
        &ts,
        "/auth/password/reset/confirm",
        json!({"token": wrong, "password": "brand-new-pass"}),
        None,
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().starts_with("token"));
    assert_eq!(
        post(&ts, "/auth/session", json!({}), Some(&session))
            .await
            .0,
        200,
        "nothing changed"
    );

    // The code sets the password and ends every session.
    let (s, b, _) = post(
        &ts,
        "/auth/password/reset/confirm",
        json!({"token": code, "password": "brand-new-pass"}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        post(&ts, "/auth/session", json!({}), Some(&session))
            .await
            .0,
        401
    );
    let (s, _, _) = post(
        &ts,
        "/auth/login",
        json!({"email": email, "password": old_password}),
        None,
    )
    .await;
    assert_eq!(s, 401);
    let (s, b, _) = post(
        &ts,
        "/auth/login",
        json!({"email": email, "password": "brand-new-pass"}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // Single use.
    let (s, _, _) = post(
        &ts,
        "/auth/password/reset/confirm",
        json!({"token": code, "password": "another-pass-2"}),
        None,
    )
    .await;
    assert_eq!(s, 400);

    // Three mails per member per hour: two more arrive, the third request sends none and
    // still answers 200.
    for _ in 0..3 {
        let (s, _, _) = post(
            &ts,
            "/auth/password/reset/request",
            json!({"email": email}),
            None,
        )
        .await;
        assert_eq!(s, 200);
    }
    sink.wait_for(3).await;

    // spec: RSP-600
    let now = now_secs();
    let (s, b) = ts
        .api(
            "/audit/search",
            json!({"start_time": now - 600, "end_time": now + 60, "limit": 99,
                   "operations": ["member:write:password_reset_request", "member:write:password_reset"]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let results: Vec<(String, String)> = b["data"]["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["operation"].as_str().unwrap().to_string(),
                d["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let req = "member:write:password_reset_request".to_string();
    assert_eq!(
        results,
        vec![
            (req.clone(), "RequestTooFrequently".to_string()),
            (req.clone(), "ok".to_string()),
            (req.clone(), "ok".to_string()),
            ("member:write:password_reset".to_string(), "ok".to_string()),
            (req, "ok".to_string()),
        ]
    );
    assert_eq!(
        sink.mails.lock().unwrap().len(),
        3,
        "the limited request sent nothing"
    );
});
