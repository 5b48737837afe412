//! Support tickets end to end (service-agreement.md §12, docs/saas.md "Support"): mail to
//! the support address reaches the node's SMTP receiver and becomes a ticket in the
//! sender's tenant (or the unverified queue), the acknowledgement with the ticket id goes
//! out through a real SMTP exchange, replies thread on the id, and `klaxon admin ticket`
//! triages, answers and closes (a fault only with its cause). A self-hosted node has no desk.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use common::saas::{TEST_KEK, ms, saas};
use common::smtp_sink::{Mail, Smtp};
use common::{ManualClock, test_config};
use klaxon_notify::{SmtpConfig, SmtpSecurity};
use klaxon_server::Server;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SUPPORT: &str = "support@example.com";
const OWNER: &str = "owner@klaxon.local";

struct Desk {
    server: Server,
    sink: Smtp,
    _dir: tempfile::TempDir,
    config_file: std::path::PathBuf,
}

impl Desk {
    /// A SaaS node with its SMTP receiver on, sending mail to a local SMTP sink; the clock
    /// stands at `at`.
    async fn start(database_url: &str, at: &str) -> Desk {
        let dir = tempfile::tempdir().unwrap();
        let sink = Smtp::start().await;
        let mut config = test_config(dir.path(), database_url);
        saas(&mut config);
        config.deployment.support_tz = "Asia/Shanghai".into();
        config.smtp.listen = Some("127.0.0.1:0".parse().unwrap());
        config.smtp.domain = "alerts.example.org".into();
        config.notify.email = Some(SmtpConfig {
            host: sink.addr.ip().to_string(),
            port: sink.addr.port(),
            security: SmtpSecurity::None,
            from: "Example Cloud <noreply@example.com>".into(),
            ..SmtpConfig::default()
        });
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(at))));
        let server = klaxon_server::start_with_clock(config, clock)
            .await
            .unwrap();
        let config_file = write_cli_config(dir.path(), database_url, "saas");
        Desk {
            server,
            sink,
            _dir: dir,
            config_file,
        }
    }

    fn smtp(&self) -> SocketAddr {
        self.server.smtp_addr().unwrap()
    }

    /// Waits (bounded) until the sink holds `n` mails: the node sends them in the background.
    async fn mails(&self, n: usize) -> Vec<Mail> {
        for _ in 0..200 {
            let mails = self.sink.mails();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} mails, got {:?}", self.sink.mails());
    }

    async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// The TOML the CLI reads: the node's database and deployment settings.
fn write_cli_config(dir: &std::path::Path, database_url: &str, mode: &str) -> std::path::PathBuf {
    let path = dir.join("klaxon.toml");
    let db = if database_url.is_empty() {
        String::new()
    } else {
        format!("database_url = {database_url:?}\n")
    };
    let text = format!(
        "data_dir = {:?}\n{db}[deployment]\nmode = \"{mode}\"\nregion = \"cn-north\"\n\
         operator_identity = \"Example Cloud Ltd\"\nbilling_tz = \"UTC\"\ncurrency = \"CNY\"\n\
         support_address = \"{SUPPORT}\"\nsupport_tz = \"Asia/Shanghai\"\n\
         key_encryption_key = \"{TEST_KEK}\"\n\
         [deployment.documents]\n\
         terms_of_service = \"2025-01\"\nuser_agreement = \"2025-01\"\n\
         data_protection = \"2025-01\"\nsla = \"2025-01\"\nprice_list = \"2025-01\"\n",
        dir.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `klaxon admin ticket <args>`: (success, stdout + stderr).
async fn ticket(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .env("KLAXON_LOG", "warn")
        .env_remove("KLAXON_DATABASE_URL")
        .env_remove("KLAXON_DEPLOYMENT_MODE")
        .args(["admin", "ticket"])
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// One SMTP conversation with the node: the reply to RCPT and, if accepted, to the data.
async fn send_mail(addr: SocketAddr, from: &str, to: &str, subject: &str, body: &str) -> String {
    let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    async fn reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> String {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            assert!(!line.is_empty(), "connection closed");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_string();
            }
        }
    }
    assert!(reply(&mut r).await.starts_with("220"));
    for (line, want) in [
        ("EHLO client.example".to_string(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
    ] {
        w.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
        let got = reply(&mut r).await;
        assert!(got.starts_with(want), "{line}: {got}");
    }
    w.write_all(format!("RCPT TO:<{to}>\r\n").as_bytes())
        .await
        .unwrap();
    let rcpt = reply(&mut r).await;
    if !rcpt.starts_with("250") {
        return rcpt;
    }
    w.write_all(b"DATA\r\n").await.unwrap();
    assert!(reply(&mut r).await.starts_with("354"));
    let message = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@client.example>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n.\r\n",
        rand_id()
    );
    w.write_all(message.as_bytes()).await.unwrap();
    let answer = reply(&mut r).await;
    w.write_all(b"QUIT\r\n").await.unwrap();
    answer
}

fn rand_id() -> String {
    format!("{:x}", std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos())
}

/// The ticket id in `250 2.0.0 OK filed as ticket N`.
fn filed(answer: &str) -> i64 {
    answer
        .strip_prefix("250 2.0.0 OK filed as ticket ")
        .unwrap_or_else(|| panic!("not filed: {answer}"))
        .trim()
        .parse()
        .unwrap()
}

// spec: SVC-171 — mail to the support address becomes a ticket of the sender's tenant; the
// acknowledgement carries the ticket id; a reply threads on it; a stranger lands in the
// unverified queue and cannot write into another sender's ticket.
on_both_backends!(
    mail_becomes_a_ticket_and_is_acknowledged,
    |url: String| async move {
        // 2025-06-06 08:30 UTC is Friday 16:30 in the support time zone.
        let desk = Desk::start(&url, "2025-06-06T08:30:00Z").await;
        let account = desk.server.bootstrap().account_id;

        let first = send_mail(
            desk.smtp(),
            OWNER,
            SUPPORT,
            "Pages stopped",
            "No calls since 09:00.",
        )
        .await;
        let id = filed(&first);

        // The acknowledgement goes out by SMTP to the sender, with the id and Reply-To the desk.
        let mails = desk.mails(1).await;
        let ack = &mails[0];
        assert_eq!(ack.rcpt, vec![format!("<{OWNER}>")]);
        assert!(
            ack.data
                .contains(&format!("Subject: [#{id}] Pages stopped")),
            "{}",
            ack.data
        );
        assert!(
            ack.data.contains(&format!("Reply-To: {SUPPORT}")),
            "{}",
            ack.data
        );
        assert!(ack.data.contains(&format!("ticket #{id}")), "{}", ack.data);

        // A reply naming the ticket is added to it, not filed as a new one.
        let reply = send_mail(
            desk.smtp(),
            OWNER,
            SUPPORT,
            &format!("Re: [#{id}] Pages stopped"),
            "Still nothing.",
        )
        .await;
        assert_eq!(filed(&reply), id);

        // A stranger: the unverified queue, and an acknowledgement saying the address is unknown.
        let stranger = "someone@elsewhere.org";
        let other = filed(&send_mail(desk.smtp(), stranger, SUPPORT, "Question", "Pricing?").await);
        assert_ne!(other, id);
        let mails = desk.mails(2).await;
        let ack2 = mails
            .iter()
            .find(|m| m.rcpt == vec![format!("<{stranger}>")])
            .unwrap();
        assert!(
            ack2.data.contains("does not belong to any account"),
            "{}",
            ack2.data
        );

        // The stranger naming the owner's ticket does not get into it: a new ticket.
        let hijack = filed(
            &send_mail(
                desk.smtp(),
                stranger,
                SUPPORT,
                &format!("[#{id}] me too"),
                "x",
            )
            .await,
        );
        assert!(hijack != id && hijack != other);

        let cfg = &desk.config_file;
        let (ok, out) = ticket(cfg, &["list", "--queue", "unverified"]).await;
        assert!(ok, "{out}");
        assert!(out.contains(stranger) && !out.contains(OWNER), "{out}");

        let (ok, out) = ticket(cfg, &["show", "--ticket", &id.to_string()]).await;
        assert!(ok, "{out}");
        assert!(out.contains(&format!("account {account}")), "{out}");
        assert!(out.contains("tenant"), "{out}");
        assert!(
            out.contains("No calls since 09:00.") && out.contains("Still nothing."),
            "{out}"
        );
        // SVC-172: received inside Friday's hours, so the clock starts at receipt.
        assert!(
            out.contains("clock starts:   2025-06-06T08:30:00Z"),
            "{out}"
        );
        assert!(out.contains("first response: none yet"), "{out}");

        desk.stop().await;
    }
);

// spec: SVC-171, SVC-172, SVC-173, SVC-174 — staff triage a ticket to its tenant and
// category, answer it (the answer is mailed, and is the first response), and close it: a
// fault only with its cause. A ticket arriving on Saturday starts its Standard clock on
// Monday at 09:00.
on_both_backends!(staff_triage_answer_and_close, |url: String| async move {
    // Saturday 2025-06-07 11:00 in Asia/Shanghai.
    let desk = Desk::start(&url, "2025-06-07T03:00:00Z").await;
    let account = desk.server.bootstrap().account_id;
    let stranger = "cto@partner.example";
    let id = filed(&send_mail(desk.smtp(), stranger, SUPPORT, "Outage?", "All red.").await);
    let cfg = &desk.config_file;
    let t = id.to_string();

    let (ok, out) = ticket(cfg, &["triage", "--ticket", &t, "--category", "urgent"]).await;
    assert!(!ok && out.contains("category"), "{out}");
    let (ok, out) = ticket(cfg, &["triage", "--ticket", &t, "--account", "999999"]).await;
    assert!(!ok && out.contains("no account 999999"), "{out}");
    let (ok, out) = ticket(
        cfg,
        &[
            "triage",
            "--ticket",
            &t,
            "--category",
            "fault",
            "--account",
            &account.to_string(),
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("fault") && out.contains("tenant"), "{out}");

    let (ok, out) = ticket(cfg, &["show", "--ticket", &t]).await;
    assert!(ok, "{out}");
    // The tenant has no billing row: the deployment's default edition (Standard, 5×8).
    assert!(out.contains("edition standard"), "{out}");
    assert!(
        out.contains("clock starts:   2025-06-09T01:00:00Z"),
        "{out}"
    );

    let (ok, out) = ticket(cfg, &["reply", "--ticket", &t, "--body", "We are on it."]).await;
    assert!(ok, "{out}");
    let mails = desk.mails(2).await;
    let answer = mails
        .iter()
        .find(|m| m.data.contains("We are on it."))
        .unwrap();
    assert_eq!(answer.rcpt, vec![format!("<{stranger}>")]);
    assert!(
        answer.data.contains(&format!("Subject: [#{id}] Outage?")),
        "{}",
        answer.data
    );

    let (ok, out) = ticket(cfg, &["close", "--ticket", &t]).await;
    assert!(!ok && out.contains("cause"), "{out}");
    let (ok, out) = ticket(cfg, &["close", "--ticket", &t, "--cause", "weather"]).await;
    assert!(!ok && out.contains("cause"), "{out}");
    let (ok, out) = ticket(cfg, &["close", "--ticket", &t, "--cause", "platform"]).await;
    assert!(ok, "{out}");
    let (ok, out) = ticket(cfg, &["close", "--ticket", &t, "--cause", "platform"]).await;
    assert!(!ok && out.contains("already closed"), "{out}");
    let (ok, out) = ticket(cfg, &["show", "--ticket", &t]).await;
    assert!(ok, "{out}");
    assert!(out.contains("cause platform"), "{out}");
    assert!(
        out.contains("first response:") && !out.contains("none yet"),
        "{out}"
    );
    let (ok, out) = ticket(cfg, &["list"]).await;
    assert!(ok && !out.contains(&format!("#{id} ")), "{out}");
    let (ok, out) = ticket(cfg, &["list", "--all"]).await;
    assert!(ok && out.contains(&format!("#{id} ")), "{out}");

    // A reply to a closed ticket opens it again.
    let again = send_mail(
        desk.smtp(),
        stranger,
        SUPPORT,
        &format!("Re: [#{id}]"),
        "Back.",
    )
    .await;
    assert_eq!(filed(&again), id);
    let (ok, out) = ticket(cfg, &["list"]).await;
    assert!(ok && out.contains(&format!("#{id} ")), "{out}");

    desk.stop().await;
});

/// Entries in the tenant's ledger (0 without a billing row).
async fn ledger_len(desk: &Desk, at: &str) -> usize {
    let settings = desk.server.saas_settings().unwrap();
    desk.server
        .store()
        .saas_tenant(settings, desk.server.bootstrap().account_id, ms(at))
        .await
        .unwrap()
        .map_or(0, |t| t.book.ledger().entries().len())
}

// spec: SVC-170 — e-mail consultation and fault support cost the tenant nothing: a ticket
// mailed, triaged as a fault, answered and closed leaves the tenant's ledger as it was.
// spec: SVC-315 — a formal notice sent to the published support address is recorded as a
// ticket of category `formal_notice` with the instant it was received.
on_both_backends!(
    support_is_included_and_formal_notices_are_recorded,
    |url: String| async move {
        let desk = Desk::start(&url, "2025-06-06T08:30:00Z").await;
        let before = ledger_len(&desk, "2025-06-06T08:30:00Z").await;
        let cfg = &desk.config_file;
        let id = filed(&send_mail(desk.smtp(), OWNER, SUPPORT, "Pages stopped", "None.").await);
        let t = id.to_string();
        let (ok, out) = ticket(cfg, &["triage", "--ticket", &t, "--category", "fault"]).await;
        assert!(ok, "{out}");
        let (ok, out) = ticket(cfg, &["reply", "--ticket", &t, "--body", "Fixed."]).await;
        assert!(ok, "{out}");
        let (ok, out) = ticket(cfg, &["close", "--ticket", &t, "--cause", "platform"]).await;
        assert!(ok, "{out}");
        assert_eq!(ledger_len(&desk, "2025-06-06T08:30:00Z").await, before);

        let notice = filed(
            &send_mail(
                desk.smtp(),
                OWNER,
                SUPPORT,
                "Objection to the new price list",
                "We object to the change announced on 1 June.",
            )
            .await,
        );
        let n = notice.to_string();
        let (ok, out) = ticket(
            cfg,
            &["triage", "--ticket", &n, "--category", "formal_notice"],
        )
        .await;
        assert!(ok, "{out}");
        let (ok, out) = ticket(cfg, &["list", "--all"]).await;
        assert!(ok, "{out}");
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("#{notice} ")))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains("formal_notice"), "{line}");
        assert!(line.contains("2025-06-06"), "{line}");
        assert_eq!(ledger_len(&desk, "2025-06-06T08:30:00Z").await, before);
        desk.stop().await;
    }
);

// spec: SVC-401 — a self-hosted node has no support desk: the address is an unknown mailbox
// and the commands refuse to run.
on_both_backends!(self_hosted_has_no_support_desk, |url: String| async move {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), &url);
    config.deployment.support_address = SUPPORT.into();
    config.smtp.listen = Some("127.0.0.1:0".parse().unwrap());
    config.smtp.domain = "alerts.example.org".into();
    let clock = Arc::new(ManualClock(AtomicI64::new(ms("2025-06-06T08:30:00Z"))));
    let server = klaxon_server::start_with_clock(config, clock)
        .await
        .unwrap();
    let answer = send_mail(server.smtp_addr().unwrap(), OWNER, SUPPORT, "Hi", "x").await;
    assert!(answer.starts_with("550 5.1.1"), "{answer}");
    let cfg = write_cli_config(dir.path(), &url, "self_hosted");
    let (ok, out) = ticket(&cfg, &["list"]).await;
    assert!(!ok && out.contains("SaaS mode only"), "{out}");
    server.shutdown().await;
});
