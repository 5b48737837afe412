//! E-mail intake over a real SMTP conversation (ingest.md §2.18, §3.8) and change pushes
//! listed by `/change/list` (§2.20, §3.10; openapi-compat.md §2.13), on SQLite and (with
//! `KLAXON_TEST_DATABASE_URL`) PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

async fn start(url: &str) -> TestServer {
    TestServer::start_with(url, |c| {
        c.smtp.listen = Some("127.0.0.1:0".parse().unwrap());
        c.smtp.domain = "alerts.example.org".into();
        c.smtp.max_message_bytes = 64 * 1024;
    })
    .await
}

/// Creates an `email` integration on the default channel; returns (id, address).
async fn email_integration(t: &TestServer, settings: Value) -> (i64, String) {
    let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
    let (status, body) = t
        .api(
            "/integration/create",
            json!({"integration_name": "mail", "type": "email", "kind": "dedicated",
                   "channel_id": channel_id, "settings": settings}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    let key = data["integration_key"].as_str().unwrap();
    let address = data["email_address"].as_str().unwrap().to_string();
    // spec: ING-210 (one address per integration at the deployment's mail domain)
    assert_eq!(address, format!("{key}@alerts.example.org"));
    assert!(data.get("push_url").is_none(), "{data}");
    (data["integration_id"].as_i64().unwrap(), address)
}

struct Smtp {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Smtp {
    async fn connect(t: &TestServer) -> Smtp {
        let addr = t.server.as_ref().unwrap().smtp_addr().unwrap();
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut s = Smtp {
            r: BufReader::new(r),
            w,
        };
        assert!(s.reply().await.starts_with("220 "));
        s
    }

    /// One (possibly multi-line) reply; the last line.
    async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).await.unwrap();
            assert!(!line.is_empty(), "connection closed");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_string();
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    /// A whole transaction; the reply to the end of DATA (or the first refusal).
    async fn send(&mut self, from: &str, to: &[&str], message: &str) -> String {
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        if !r.starts_with("250") {
            return r;
        }
        for rcpt in to {
            let r = self.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            if !r.starts_with("250") {
                return r;
            }
        }
        let r = self.cmd("DATA").await;
        assert!(r.starts_with("354"), "{r}");
        let mut body = String::new();
        for line in message.split("\r\n") {
            if line.starts_with('.') {
                body.push('.');
            }
            body.push_str(line);
            body.push_str("\r\n");
        }
        body.push_str(".\r\n");
        self.w.write_all(body.as_bytes()).await.unwrap();
        self.reply().await
    }
}

fn mail(subject: &str, body: &str, message_id: &str) -> String {
    format!(
        "From: Monitor <monitor@example.com>\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\r\n{body}"
    )
}

on_both_backends!(
    smtp_conversation_opens_and_resolves_an_incident,
    |url: String| async move {
        // spec: ING-211, ING-216 (by_rules), ING-217, ING-215
        let mut t = start(&url).await;
        let (integration_id, address) = email_integration(
        &t,
        json!({
            "push_mode": "by_rules",
            "rules": [
                {"conditions": [[{"key": "content", "oper": "IN", "vals": ["/RESOLVED/"]}]], "action": "close"},
                {"conditions": [], "action": "trigger"}
            ],
            "key_rule": {"source": "subject", "pattern": "/(.*)/"}
        }),
    )
    .await;
        let mut s = Smtp::connect(&t).await;
        assert!(s.cmd("EHLO client.example").await.starts_with("250 "));
        // Local parts are matched case-insensitively.
        let upper = address.to_uppercase();
        let r = s
            .send(
                "monitor@example.com",
                &[&upper],
                &mail("DB down", "db-1 is down\r\n.dotted line", "m1@example.com"),
            )
            .await;
        assert!(r.starts_with("250 "), "{r}");
        // 250 means committed: the event is in the inbox before the reply.
        t.drained().await;
        let incidents = t.incidents().await;
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        assert_eq!(incidents[0]["title"], "DB down");
        assert_eq!(incidents[0]["incident_severity"], "Warning");
        assert_eq!(incidents[0]["progress"], "Triggered");
        let alerts = t.alerts().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["alert_key"], "DB down");
        assert_eq!(alerts[0]["labels"]["from"], "monitor@example.com");
        assert_eq!(alerts[0]["labels"]["to"], address);
        assert_eq!(alerts[0]["integration_id"], integration_id);
        assert!(
            alerts[0]["description"]
                .as_str()
                .unwrap()
                .contains("\n.dotted line")
        );

        // The recovery mail: same subject, body says RESOLVED.
        let r = s
            .send(
                "monitor@example.com",
                &[&address],
                &mail("DB down", "RESOLVED at 10:02", "m2@example.com"),
            )
            .await;
        assert!(r.starts_with("250 "), "{r}");
        t.drained().await;
        let incidents = t.incidents().await;
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0]["incident_status"], "Ok", "{}", incidents[0]);
        assert!(s.cmd("QUIT").await.starts_with("221"));
        t.stop().await;
    }
);

on_both_backends!(smtp_refusals_ingest_nothing, |url: String| async move {
    // spec: ING-211 (550 5.1.1 unknown, 550 5.7.1 disabled, 552 5.3.4 oversize)
    let mut t = start(&url).await;
    let (id, address) = email_integration(&t, json!({})).await;
    let mut s = Smtp::connect(&t).await;
    assert!(s.cmd("HELO client").await.starts_with("250"));

    // Unknown recipients: a wrong key, another domain, a non-email integration's key.
    for to in [
        "ffffffffffffffffffffffffffffffff@alerts.example.org".to_string(),
        address.replace("alerts.example.org", "other.example"),
        format!("{}@alerts.example.org", t.integration_key),
    ] {
        let r = s.send("a@b.c", &[&to], "Subject: x\r\n\r\ny").await;
        assert!(r.starts_with("550 5.1.1"), "{to}: {r}");
        assert!(s.cmd("RSET").await.starts_with("250"));
    }
    // Oversize (the test limit is 64 KiB): declared with SIZE, and sent anyway.
    let r = s.cmd("MAIL FROM:<a@b.c> SIZE=9999999").await;
    assert!(r.starts_with("552 5.3.4"), "{r}");
    let big = format!("Subject: big\r\n\r\n{}", "x".repeat(70 * 1024));
    let r = s.send("a@b.c", &[&address], &big).await;
    assert!(r.starts_with("552 5.3.4"), "{r}");
    // Sequencing errors.
    assert!(s.cmd("DATA").await.starts_with("503"));
    assert!(s.cmd("RCPT TO:<x@y>").await.starts_with("503"));

    // Disabled integration.
    let (st, b) = t
        .api("/integration/disable", json!({"integration_id": id}))
        .await;
    assert_eq!(st, 200, "{b}");
    let r = s.send("a@b.c", &[&address], "Subject: x\r\n\r\ny").await;
    assert!(r.starts_with("550 5.7.1"), "{r}");
    assert!(s.cmd("QUIT").await.starts_with("221"));

    t.drained().await;
    assert!(t.alerts().await.is_empty(), "nothing is ingested");
    t.stop().await;
});

on_both_backends!(
    email_settings_are_validated_on_save,
    |url: String| async move {
        // spec: ING-216 (refused on save), openapi-compat §2.6.1 (email_address read only)
        let mut t = start(&url).await;
        let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
        let (s, b) = t
            .api(
                "/integration/create",
                json!({"integration_name": "m", "type": "email", "kind": "dedicated",
                   "channel_id": channel_id,
                   "settings": {"push_mode": "by_rules", "rules": [{"action": "close"}],
                                "key_rule": {"source": "subject", "pattern": "x"}}}),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["error"]["code"], "InvalidParameter");
        assert_eq!(
            b["error"]["message"],
            "settings.rules needs at least one rule with action trigger"
        );
        let (id, address) = email_integration(&t, json!({"push_mode": "by_subject"})).await;
        let (_, info) = t
            .api("/integration/info", json!({"integration_id": id}))
            .await;
        assert_eq!(info["data"]["email_address"], address);
        assert_eq!(info["data"]["settings"]["push_mode"], "by_subject");
        assert_eq!(info["data"]["category"], "alert");
        t.stop().await;
    }
);

async fn change_integration(t: &TestServer, ty: &str) -> (i64, String) {
    let (s, b) = t
        .api(
            "/integration/create",
            json!({"integration_name": format!("{ty} changes"), "type": ty, "category": "change"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let d = &b["data"];
    let key = d["integration_key"].as_str().unwrap().to_string();
    assert_eq!(
        d["push_url"],
        format!("{}/event/push/change/{ty}?integration_key={key}", t.base)
    );
    (d["integration_id"].as_i64().unwrap(), key)
}

async fn push_change(t: &TestServer, ty: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = t
        .http
        .post(format!(
            "{}/event/push/change/{ty}?integration_key={key}",
            t.base
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn changes(t: &TestServer, extra: Value) -> Value {
    let now = now_secs();
    let mut body = json!({"start_time": now - 86_400, "end_time": now + 3600});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, b) = t.api("/change/list", body).await;
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

on_both_backends!(change_pushes_are_listed, |url: String| async move {
    // spec: ING-240, ING-241, ING-242, ING-243
    let mut t = start(&url).await;
    let (id, key) = change_integration(&t, "standard").await;
    let now = now_secs();
    let (s, b) = push_change(
        &t,
        "standard",
        &key,
        json!({
            "title": "Deploy api v2", "change_status": "Processing", "change_key": "dep-1",
            "labels": {"service": "api"}, "link": "https://ci.example/1", "event_time": now - 120,
        }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["change_key"], "dep-1");
    let (s, _) = push_change(&t, "standard", &key, json!({
        "title": "Deploy api v2 done", "change_status": "Done", "change_key": "dep-1", "event_time": now - 60,
    }))
    .await;
    assert_eq!(s, 200);
    // A non-terminal event after Done starts a new record.
    let (s, _) = push_change(&t, "standard", &key, json!({
        "title": "Deploy api v3", "change_status": "Planned", "change_key": "dep-1", "event_time": now - 30,
    }))
    .await;
    assert_eq!(s, 200);

    let data = changes(&t, json!({"include_events": true})).await;
    assert_eq!(data["total"], 2, "{data}");
    let items = data["items"].as_array().unwrap();
    // Newest first by start_time.
    assert_eq!(items[0]["change_status"], "Planned");
    assert_eq!(items[0]["end_time"], 0);
    let done = &items[1];
    assert_eq!(done["change_key"], "dep-1");
    assert_eq!(done["change_status"], "Done");
    assert_eq!(done["title"], "Deploy api v2 done");
    assert_eq!(done["start_time"], now - 120);
    assert_eq!(done["last_time"], now - 60);
    assert_eq!(done["end_time"], now - 60);
    assert_eq!(done["integration_id"], id);
    assert_eq!(done["integration_name"], "standard changes");
    assert_eq!(done["events"].as_array().unwrap().len(), 2);
    assert_eq!(done["change_id"].as_str().unwrap().len(), 24);
    assert!(items[0]["events"].as_array().unwrap().len() == 1);

    // Filters and bad input.
    assert_eq!(changes(&t, json!({"query": "v3"})).await["total"], 1);
    assert_eq!(
        changes(&t, json!({"integration_ids": [id + 1000]})).await["total"],
        0
    );
    let (s, b) = t
        .api(
            "/change/list",
            json!({"start_time": now - 40 * 86_400, "end_time": now}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (400, Some("InvalidParameter"))
    );
    let (s, b) = push_change(
        &t,
        "standard",
        &key,
        json!({"title": "x", "change_status": "done"}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"]["code"], "InvalidParameter");
    let (s, _) = push_change(
        &t,
        "standard",
        "0000",
        json!({"title": "x", "change_status": "Done"}),
    )
    .await;
    assert_eq!(s, 400);
    // The alert key cannot push changes and the change key cannot push alerts.
    let (s, _) = push_change(
        &t,
        "standard",
        &t.integration_key,
        json!({"title": "x", "change_status": "Done"}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        changes(&t, json!({})).await["total"],
        2,
        "bad input changed nothing"
    );

    // ING-243: no alerts, no incidents.
    t.drained().await;
    assert!(t.alerts().await.is_empty());
    assert!(t.incidents().await.is_empty());
    t.stop().await;
});

on_both_backends!(jira_issue_events_become_changes, |url: String| async move {
    // spec: §3.10, ING-242
    let mut t = start(&url).await;
    let (_, key) = change_integration(&t, "jira").await;
    let ts = now_secs() * 1000 - 5000;
    let issue = |event: &str, status: &str, ts: i64| {
        json!({
            "webhookEvent": event, "timestamp": ts,
            "issue": {"id": "10042", "key": "OPS-7",
                      "self": "https://acme.atlassian.net/rest/api/2/issue/10042",
                      "fields": {"summary": "Upgrade Postgres", "description": "plain text",
                                 "status": {"name": status}, "project": {"key": "OPS", "name": "Ops"},
                                 "labels": ["db"]}}
        })
    };
    let (s, b) = push_change(&t, "jira", &key, issue("jira:issue_created", "To Do", ts)).await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = push_change(
        &t,
        "jira",
        &key,
        issue("jira:issue_updated", "Under review", ts + 1000),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = push_change(
        &t,
        "jira",
        &key,
        issue("jira:issue_updated", "In Progress", ts + 2000),
    )
    .await;
    assert_eq!(s, 200);
    // Other webhook events are accepted and ignored.
    let (s, _) = push_change(&t, "jira", &key, json!({"webhookEvent": "comment_created"})).await;
    assert_eq!(s, 200);

    let data = changes(&t, json!({"include_events": true})).await;
    assert_eq!(data["total"], 1, "{data}");
    let c = &data["items"][0];
    assert_eq!(c["change_key"], "OPS-7");
    assert_eq!(c["title"], "[OPS-7] Upgrade Postgres");
    assert_eq!(c["change_status"], "Processing");
    assert_eq!(c["link"], "https://acme.atlassian.net/browse/OPS-7");
    assert_eq!(c["labels"]["project_key"], "OPS");
    let events = c["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    // The unlisted status kept the record's status.
    assert_eq!(events[1]["change_status"], "Planned");

    let (s, _) = push_change(
        &t,
        "jira",
        &key,
        issue("jira:issue_deleted", "In Progress", ts + 3000),
    )
    .await;
    assert_eq!(s, 200);
    let data = changes(&t, json!({})).await;
    assert_eq!(data["items"][0]["change_status"], "Canceled");
    assert_eq!(data["items"][0]["end_time"], (ts + 3000) / 1000);
    t.stop().await;
});

on_both_backends!(
    a_real_smtp_client_delivers_a_multipart_mail,
    |url: String| async move {
        // spec: ING-211, ING-212, ING-214 (lettre as the sending MTA: EHLO, pipelining, MIME)
        use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
        let mut t = start(&url).await;
        let (_, address) = email_integration(&t, json!({})).await;
        let smtp = t.server.as_ref().unwrap().smtp_addr().unwrap();
        let message = Message::builder()
            .from("Backup Job <backup@example.com>".parse().unwrap())
            .to(address.parse().unwrap())
            .subject("Sauvegarde échouée")
            .multipart(
                MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(
                        "Backup of db-1 failed: disk quota".to_string(),
                        "<p>Backup of <b>db-1</b> failed</p>".to_string(),
                    ))
                    .singlepart(
                        Attachment::new("log.txt".into())
                            .body(b"line 1\nline 2\n".to_vec(), ContentType::TEXT_PLAIN),
                    )
                    .singlepart(SinglePart::plain("ignored second text part".to_string())),
            )
            .unwrap();
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
                .port(smtp.port())
                .build();
        let response = transport.send(message).await.unwrap();
        assert_eq!(response.code().to_string(), "250");
        t.drained().await;
        let alerts = t.alerts().await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["title"], "Sauvegarde échouée");
        assert_eq!(
            alerts[0]["description"],
            "Backup of db-1 failed: disk quota"
        );
        assert_eq!(alerts[0]["labels"]["attachment_stripped"], "true");
        assert_eq!(alerts[0]["labels"]["from"], "backup@example.com");
        // lettre sends no Message-ID here: always_new keys the alert on 32 random hex (ING-216).
        assert!(alerts[0]["labels"].get("message_id").is_none());
        assert_eq!(alerts[0]["alert_key"].as_str().unwrap().len(), 32);

        // Refusals reach the client as permanent errors.
        let unknown = Message::builder()
            .from("a@example.com".parse().unwrap())
            .to("nobody@alerts.example.org".parse().unwrap())
            .subject("x")
            .body("y".to_string())
            .unwrap();
        let err = transport.send(unknown).await.unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(
            err.to_string().contains("5.1.1")
                || err.status().is_some_and(|c| c.to_string() == "550"),
            "{err}"
        );
        t.stop().await;
    }
);
