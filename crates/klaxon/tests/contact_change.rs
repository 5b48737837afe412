//! A member's own change of e-mail address and phone number (response.md RSP-333,
//! docs/members-and-teams.md): the code goes to the new address by SMTP (a real local
//! receiver) or to the new number by SMS (a local Twilio-compatible fake that checks the
//! request as Twilio does), and only the right code within 10 minutes and 5 tries changes
//! the member — verified. Refusals change nothing. Then the same in the console, in a real
//! headless Chromium. Time is an injected clock. SQLite, and PostgreSQL when configured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::browser;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use browser::{
    Browser, browser_sign_in, click, clocked_server_with, shoot, text_of, type_into, until,
};
use common::TestServer;
use common::smtp_sink::Smtp;
use klaxon_notify::{SmtpConfig, SmtpSecurity, TwilioConfig};
use serde_json::{Value, json};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token";
const FROM: &str = "+15005550006";
const MIN: i64 = 60_000;

/// A Twilio-compatible SMS endpoint that keeps the form of every message it accepted.
#[derive(Clone, Default)]
struct Sms {
    sent: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

impl Sms {
    async fn start(&self) -> SocketAddr {
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                axum::routing::post(sms_answer),
            )
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn bodies(&self) -> Vec<String> {
        let sent = self.sent.lock().unwrap();
        sent.iter().map(|m| m["Body"].clone()).collect()
    }
}

/// Checks what Twilio checks: basic auth of the account, a form with `To`, `From`, `Body`.
async fn sms_answer(
    State(sms): State<Sms>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(auth.as_str()) {
        return (StatusCode::UNAUTHORIZED, json!({"code": 20003}).to_string());
    }
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    if form.get("From").map(String::as_str) != Some(FROM)
        || form.get("To").is_none_or(|t| !t.starts_with('+'))
        || form.get("Body").is_none_or(String::is_empty)
    {
        return (StatusCode::BAD_REQUEST, json!({"code": 21604}).to_string());
    }
    let n = {
        let mut sent = sms.sent.lock().unwrap();
        sent.push(form);
        sent.len()
    };
    (
        StatusCode::CREATED,
        json!({"sid": format!("SM{n:032}")}).to_string(),
    )
}

/// The 6-digit code after "code" in a message text (an SMS, or a mail's text part).
fn code_in(text: &str) -> String {
    let at = text.find("code").expect("the message names the code");
    text[at..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("a 6-digit code in {text:?}"))
        .to_string()
}

struct Setup {
    t: TestServer,
    clock: Arc<common::ManualClock>,
    smtp: Smtp,
    sms: Sms,
}

async fn setup(database_url: &str) -> Setup {
    let smtp = Smtp::start().await;
    let sms = Sms::default();
    let sms_addr = sms.start().await;
    let smtp_addr = smtp.addr;
    let (t, clock) = clocked_server_with(database_url, move |c| {
        c.notify.allow_private_targets = true;
        c.notify.email = Some(SmtpConfig {
            host: smtp_addr.ip().to_string(),
            port: smtp_addr.port(),
            security: SmtpSecurity::None,
            from: "Klaxon <klaxon@example.org>".into(),
            ..SmtpConfig::default()
        });
        c.notify.twilio = Some(TwilioConfig {
            api_base: format!("http://{sms_addr}"),
            account_sid: SID.into(),
            auth_token: TOKEN.into(),
            from: FROM.into(),
            sms: true,
            voice: false,
        });
    })
    .await;
    Setup {
        t,
        clock,
        smtp,
        sms,
    }
}

impl Setup {
    fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }

    async fn me(&self) -> Value {
        let (status, b) = self.t.api("/member/info", json!({})).await;
        assert_eq!(status, 200, "{b}");
        b["data"].clone()
    }

    /// The codes mailed to `to`, oldest first.
    fn mailed_codes(&self, to: &str) -> Vec<String> {
        self.smtp
            .mails()
            .iter()
            .filter(|m| m.rcpt.iter().any(|r| r.contains(to)))
            .map(|m| code_in(&m.data[m.data.find("verification code is").unwrap()..]))
            .collect()
    }

    async fn error(&self, path: &str, body: Value) -> (u16, String, String) {
        let (status, b) = self.t.api(path, body).await;
        assert!(b.get("error").is_some(), "{path}: {b}");
        (
            status,
            b["error"]["code"].as_str().unwrap().to_string(),
            b["error"]["message"].as_str().unwrap().to_string(),
        )
    }
}

/// A wrong code that is not the one sent: shifts every digit of the right one.
fn wrong(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

on_both_backends!(
    a_member_changes_their_email_and_phone_after_a_code,
    |url: String| async move {
        let s = setup(&url).await;
        let before = s.me().await;
        let old_email = before["email"].as_str().unwrap().to_string();

        // spec: RSP-333 — a code to the new address; nothing changes until it comes back.
        let (status, b) =
            s.t.api(
                "/member/self/contact/code",
                json!({"email": " New.Owner@Example.org "}),
            )
            .await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["data"]["kind"], "email");
        assert_eq!(b["data"]["target"], "New.Owner@Example.org");
        assert_eq!(b["data"]["expires_in_seconds"], 600);
        let codes = s.mailed_codes("New.Owner@Example.org");
        assert_eq!(codes.len(), 1);
        assert_eq!(s.me().await["email"], old_email.as_str());

        // A wrong code counts a try and changes nothing.
        let (status, code, message) = s
            .error(
                "/member/self/contact/verify",
                json!({"kind": "email", "code": wrong(&codes[0])}),
            )
            .await;
        assert_eq!((status, code.as_str()), (400, "InvalidParameter"));
        assert!(message.starts_with("code: "), "{message}");
        assert!(message.contains("4 more tries"), "{message}");
        assert_eq!(s.me().await["email"], old_email.as_str());

        // Not a code at all: named, and not counted.
        let (_, _, message) = s
            .error(
                "/member/self/contact/verify",
                json!({"kind": "email", "code": "12ab"}),
            )
            .await;
        assert!(message.starts_with("code: "), "{message}");
        let (_, _, message) = s
            .error(
                "/member/self/contact/verify",
                json!({"kind": "fax", "code": "123456"}),
            )
            .await;
        assert!(message.starts_with("kind "), "{message}");

        // The right code: the new address is the member's, verified.
        let (status, b) =
            s.t.api(
                "/member/self/contact/verify",
                json!({"kind": "email", "code": codes[0]}),
            )
            .await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["data"]["email"], "New.Owner@Example.org");
        assert_eq!(b["data"]["verified"], true);
        let me = s.me().await;
        assert_eq!(me["email"], "New.Owner@Example.org", "{me}");
        assert_eq!(me["email_verified"], true, "{me}");

        // A code works once.
        let (_, _, message) = s
            .error(
                "/member/self/contact/verify",
                json!({"kind": "email", "code": codes[0]}),
            )
            .await;
        assert!(message.contains("already used"), "{message}");

        // The audit log has both calls, with the code hidden (RSP-601).
        let (_, audit) =
            s.t.api(
                "/audit/search",
                json!({"operations": ["member_self_contact:write:verify"],
                       "start_time": common::now_secs() - 3600,
                       "end_time": common::now_secs() + 60}),
            )
            .await;
        let text = audit.to_string();
        assert_eq!(
            audit["data"]["total"], 5,
            "four refused tries and the change: {audit}"
        );
        assert!(
            !text.contains(&codes[0]),
            "the code is not in the audit log: {audit}"
        );

        // spec: RSP-333 — a code lasts 10 minutes.
        s.t.api(
            "/member/self/contact/code",
            json!({"email": "later@example.org"}),
        )
        .await;
        let late = s.mailed_codes("later@example.org").pop().unwrap();
        s.advance(10 * MIN);
        let (_, _, message) = s
            .error(
                "/member/self/contact/verify",
                json!({"kind": "email", "code": late}),
            )
            .await;
        assert!(message.contains("expired"), "{message}");
        assert_eq!(s.me().await["email"], "New.Owner@Example.org");

        // 5 tries, then the code is void even when right.
        s.t.api(
            "/member/self/contact/code",
            json!({"email": "tries@example.org"}),
        )
        .await;
        let right = s.mailed_codes("tries@example.org").pop().unwrap();
        for _ in 0..5 {
            s.error(
                "/member/self/contact/verify",
                json!({"kind": "email", "code": wrong(&right)}),
            )
            .await;
        }
        let (_, _, message) = s
            .error(
                "/member/self/contact/verify",
                json!({"kind": "email", "code": right}),
            )
            .await;
        assert!(message.contains("too many wrong codes"), "{message}");

        // 5 codes an hour per member (and per address): this member had 3, so 2 more go out
        // and the 6th is refused.
        for i in 0..2 {
            let (status, b) =
                s.t.api(
                    "/member/self/contact/code",
                    json!({"email": "tries@example.org"}),
                )
                .await;
            assert_eq!(status, 200, "code {i}: {b}");
        }
        let (status, code, message) = s
            .error(
                "/member/self/contact/code",
                json!({"email": "tries@example.org"}),
            )
            .await;
        assert_eq!((status, code.as_str()), (429, "RequestTooFrequently"));
        assert!(message.starts_with("email: 5 codes an hour"), "{message}");
        s.advance(61 * MIN);

        // Another member's address is refused before any code is sent.
        let (status, b) =
            s.t.api(
                "/member/invite",
                json!({"members": [{"email": "bo@example.org", "member_name": "Bo"}]}),
            )
            .await;
        assert_eq!(status, 200, "{b}");
        let mails = s.smtp.mails().len();
        let (_, _, message) = s
            .error(
                "/member/self/contact/code",
                json!({"email": "BO@example.org"}),
            )
            .await;
        assert!(message.contains("another member"), "{message}");
        assert_eq!(s.smtp.mails().len(), mails, "no code was sent");

        // Bad input is named.
        let (_, _, message) = s
            .error(
                "/member/self/contact/code",
                json!({"email": "not-an-address"}),
            )
            .await;
        assert!(message.starts_with("email "), "{message}");
        let (_, _, message) = s.error("/member/self/contact/code", json!({})).await;
        assert!(message.contains("email or phone is required"), "{message}");

        // The phone: a code by SMS, then the number is the member's, verified, masked.
        let (status, b) =
            s.t.api(
                "/member/self/contact/code",
                json!({"phone": "+1 (415) 555-0100"}),
            )
            .await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["data"]["kind"], "phone");
        assert_ne!(b["data"]["target"], "+14155550100", "masked on the wire");
        let sms = s.sms.bodies();
        assert_eq!(sms.len(), 1, "{sms:?}");
        let (status, b) =
            s.t.api(
                "/member/self/contact/verify",
                json!({"kind": "phone", "code": code_in(&sms[0])}),
            )
            .await;
        assert_eq!(status, 200, "{b}");
        let me = s.me().await;
        assert_eq!(me["phone_verified"], true, "{me}");
        let people =
            s.t.server
                .as_ref()
                .unwrap()
                .store()
                .persons(
                    s.t.server.as_ref().unwrap().bootstrap().account_id,
                    &[s.t.server.as_ref().unwrap().bootstrap().owner_member_id],
                )
                .await
                .unwrap();
        assert_eq!(people[0].phone, "+14155550100");

        // Asking again for the verified address itself: nothing to prove.
        let (_, _, message) = s
            .error(
                "/member/self/contact/code",
                json!({"email": "new.owner@example.org"}),
            )
            .await;
        assert!(message.contains("already your email"), "{message}");

        // /member/self/reset still refuses the contacts, pointing here.
        let (_, _, message) = s
            .error(
                "/member/self/reset",
                json!({"updates": {"email": "x@example.org"}}),
            )
            .await;
        assert!(message.contains("/member/self/contact/code"), "{message}");
    }
);

on_both_backends!(
    no_sender_means_a_clear_refusal_and_nothing_stored,
    |url: String| async move {
        let t = TestServer::start(&url).await;
        // spec: RSP-333 — without a sender no code could ever arrive: say so.
        let (status, b) = t
            .api(
                "/member/self/contact/code",
                json!({"email": "x@example.org"}),
            )
            .await;
        assert_eq!(status, 400, "{b}");
        let message = b["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("email: "), "{message}");
        assert!(message.contains("notify.email"), "{message}");
        let (_, b) = t
            .api(
                "/member/self/contact/code",
                json!({"phone": "+14155550100"}),
            )
            .await;
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("notify.twilio"),
            "{b}"
        );
        let (_, b) = t
            .api(
                "/member/self/contact/verify",
                json!({"kind": "email", "code": "123456"}),
            )
            .await;
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no code was sent"),
            "{b}"
        );
    }
);

/// The console's settings page: a refused address beside its field, a code by mail, a wrong
/// code beside the code box (typed code kept), the right one, then the new address shown
/// verified. On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_change_in_the_browser() {
    change_in_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        change_in_browser(&url).await;
    }
}

async fn change_in_browser(database_url: &str) {
    let mut s = setup(database_url).await;
    let Some(browser) = Browser::start().await else {
        s.t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&s.t, c).await;
    c.goto(&format!("{}/settings", s.t.base)).await.unwrap();
    if !browser::exists(c, "#new_email").await {
        panic!("the settings page: {}", c.source().await.unwrap());
    }

    // spec: RSP-333
    type_into(c, "#new_email", "not-an-address").await;
    click(c, "#contact-email button[type=submit]").await;
    until("the refusal beside the address", || async {
        text_of(c, "#email-error").await.contains("not a valid")
    })
    .await;
    assert_eq!(
        browser::value_of(c, "#new_email").await,
        "not-an-address",
        "what was typed is kept"
    );

    type_into(c, "#new_email", "me@example.org").await;
    click(c, "#contact-email button[type=submit]").await;
    until("the code box", || async {
        browser::exists(c, "#email_code").await
    })
    .await;
    assert!(text_of(c, "#contact").await.contains("me@example.org"));
    let code = s.mailed_codes("me@example.org").pop().unwrap();
    shoot(c, "settings-contact-code").await;

    type_into(c, "#email_code", &wrong(&code)).await;
    click(c, "#contact-email button.primary").await;
    until("the refusal beside the code", || async {
        text_of(c, "#email_code-error")
            .await
            .contains("not the one sent")
    })
    .await;
    assert_eq!(browser::value_of(c, "#email_code").await, wrong(&code));

    type_into(c, "#email_code", &code).await;
    click(c, "#contact-email button.primary").await;
    until("the change confirmed", || async {
        text_of(c, "#contact .banner.ok")
            .await
            .contains("changed and verified")
    })
    .await;
    let contacts = text_of(c, "#contact .contacts").await;
    assert!(contacts.contains("me@example.org"), "{contacts}");
    assert_eq!(s.me().await["email"], "me@example.org");
    shoot(c, "settings-contact-done").await;
    browser.stop().await;
    s.t.stop().await;
}
