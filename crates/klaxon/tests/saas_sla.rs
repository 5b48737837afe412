//! The SLA end to end (docs/sla.md): the node counts real requests to the push and Open API
//! endpoints per tenant and 5-minute cycle; the operator records exclusions, maintenance
//! windows and unreachable periods with `klaxon admin sla …`; the tenant's owner reads the
//! monthly report and claims compensation inside the window; the operator rejects and
//! approves, and approval posts a bonus lot that never becomes cash.
//!
//! Platform failures (5xx) cannot be provoked from outside a healthy node, so the failure
//! cases are request counts written through the store API — the same upsert the node's
//! flush uses — while the recording test proves that real 2xx, 4xx and 429 answers are
//! counted as SVC-272 says. Time is a ManualClock; the CLI acts at the same instants (`--at`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::saas::{cli_config, ms, saas};
use common::{ManualClock, test_config};
use klaxon_saas::ledger::BonusSource;
use klaxon_server::{Config, Server};
use serde_json::{Value, json};

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    account: i64,
}

impl Node {
    async fn start(database_url: &str, at: &str, tweak: impl FnOnce(&mut Config)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        tweak(&mut config);
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(at))));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        common::saas::publish_terms(&server).await;
        let account = server.bootstrap().account_id;
        Node {
            server,
            http: reqwest::Client::new(),
            clock,
            dir,
            account,
        }
    }

    fn set(&self, at: &str) {
        self.clock.0.store(ms(at), Ordering::SeqCst);
    }

    fn owner_key(&self) -> String {
        self.server.bootstrap().app_key.clone()
    }

    async fn api(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}?app_key={key}", self.server.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn push(&self, key: &str, body: Value) -> u16 {
        self.http
            .post(format!(
                "{}/event/push/alert/standard?integration_key={key}",
                self.server.base_url()
            ))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// (cycle start, valid, failed) rows the node has recorded for the tenant.
    async fn counts(&self) -> Vec<(i64, i64, i64)> {
        self.server.flush_sla_counts().await;
        self.server
            .store()
            .sla_counts(self.account, 0, i64::MAX)
            .await
            .unwrap()
    }

    async fn report(&self, month: &str) -> Value {
        let (s, b) = self
            .api(
                &self.owner_key(),
                "/account/sla/report",
                json!({"month": month}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b["data"].clone()
    }
}

/// `klaxon admin sla …` with the node's configuration.
async fn sla_cli(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .env("KLAXON_LOG", "warn")
        .env_remove("KLAXON_DATABASE_URL")
        .env_remove("KLAXON_DEPLOYMENT_MODE")
        .arg("admin")
        .arg("sla")
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

async fn tenant_cli(config: &std::path::Path, args: &[&str]) {
    let (ok, out) = common::saas::cli(config, args).await;
    assert!(ok, "{out}");
}

fn event(n: usize) -> Value {
    json!({"event_status": "Warning", "title_rule": format!("disk {n}"), "alert_key": format!("disk-{n}")})
}

on_both_backends!(
    counts_real_requests_per_tenant_and_cycle,
    |url: String| async move {
        let n = Node::start(&url, "2025-03-03T10:00:10Z", |c| {
            saas(c);
            // A low API limit so some calls get the tenant's own 429.
            c.api_limits.per_account_per_second = 3;
        })
        .await;
        let key = n.server.bootstrap().integration_key.clone();

        // spec: SVC-272
        // Pushes answered 200 and a malformed push answered 400 are all valid requests of
        // the tenant; a push with an unknown key belongs to no tenant and is not counted.
        for i in 0..3 {
            assert_eq!(n.push(&key, event(i)).await, 200);
        }
        let bad = n
            .http
            .post(format!(
                "{}/event/push/alert/standard?integration_key={key}",
                n.server.base_url()
            ))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(bad, 400);
        assert_eq!(
            n.push("00000000000000000000000000000000", event(9)).await,
            400
        );

        // spec: SVC-272
        // Open API calls count too, except the 429s of the tenant's own limit (the clock
        // does not move, so the per-second limit is reached).
        let mut counted = 0;
        let mut throttled = 0;
        for _ in 0..6 {
            let (s, b) = n.api(&n.owner_key(), "/account/info", json!({})).await;
            match s {
                200 => counted += 1,
                429 => throttled += 1,
                _ => panic!("{s} {b}"),
            }
        }
        assert!(throttled > 0, "the limit was never reached");
        let rows = n.counts().await;
        assert_eq!(
            rows,
            vec![(ms("2025-03-03T10:00:00Z"), 4 + counted, 0)],
            "3 pushes + 1 bad push + {counted} API calls, no failures"
        );

        // spec: SVC-271
        // The next 5-minute cycle (aligned on :05 UTC) gets its own row; flushing adds to
        // the stored counts rather than replacing them.
        n.set("2025-03-03T10:05:00Z");
        assert_eq!(n.push(&key, event(5)).await, 200);
        n.set("2025-03-03T10:09:59Z");
        assert_eq!(n.push(&key, event(6)).await, 200);
        n.server.flush_sla_counts().await;
        n.set("2025-03-03T10:00:30Z");
        assert_eq!(n.push(&key, event(7)).await, 200);
        let rows = n.counts().await;
        assert_eq!(
            rows,
            vec![
                (ms("2025-03-03T10:00:00Z"), 5 + counted, 0),
                (ms("2025-03-03T10:05:00Z"), 2, 0),
            ]
        );
        n.server.shutdown().await;
    }
);

on_both_backends!(self_hosted_records_nothing, |url: String| async move {
    let n = Node::start(&url, "2025-03-03T10:00:00Z", |_| {}).await;
    let key = n.server.bootstrap().integration_key.clone();
    // spec: SVC-270
    // Self-hosted installs are outside the SLA: nothing is counted and the tenant API says
    // why.
    assert_eq!(n.push(&key, event(1)).await, 200);
    assert_eq!(n.counts().await, vec![]);
    let (s, b) = n
        .api(
            &n.owner_key(),
            "/account/sla/report",
            json!({"month": "2025-03"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("self-hosted"),
        "{b}"
    );
    let (s, b) = n
        .api(&n.owner_key(), "/account/sla/claim/list", json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["items"], json!([]));
    n.server.shutdown().await;
});

on_both_backends!(report_claim_and_compensation, |url: String| async move {
    let n = Node::start(&url, "2025-03-01T00:00:00Z", |c| {
        saas(c);
        // SVC-280: a holiday in the operator's calendar moves the claim window.
        c.deployment.working_holidays = vec!["2025-04-04".into()];
    })
    .await;
    let cfg = cli_config(n.dir.path(), &url);
    let acct = n.account.to_string();
    let store = n.server.store().clone();

    // spec: SVC-278
    // The worked example's tenant: a monthly package paid 2025-03-01 with ¥1,990 of
    // cash (ten Pro licences at ¥199), ends_at 2025-04-01, so F(March) = 1,990.
    tenant_cli(
        &cfg,
        &[
            "pay",
            "--account",
            &acct,
            "--amount",
            "1990.00",
            "--reference",
            "bank-1",
            "--at",
            "2025-03-01T00:00:00Z",
        ],
    )
    .await;
    tenant_cli(
        &cfg,
        &[
            "licence",
            "buy",
            "--accepted-by",
            "owner@klaxon.local",
            "--accepted-from",
            "203.0.113.7",
            "--account",
            &acct,
            "--quantity",
            "10",
            "--edition",
            "pro",
            "--at",
            "2025-03-01T00:00:00Z",
        ],
    )
    .await;

    // spec: SVC-275
    // Recorded cycles: 2,000 requests with 2 failed (0.1 % → failed), 2,000 with 1
    // (0.05 % → passes), 10 with 1 (10 % → failed).
    store
        .sla_add_counts(&[
            (n.account, ms("2025-03-10T01:00:00Z"), 2000, 2),
            (n.account, ms("2025-03-10T01:05:00Z"), 2000, 1),
            (n.account, ms("2025-03-10T01:10:00Z"), 10, 1),
            // Inside the force-majeure exclusion below.
            (n.account, ms("2025-03-12T06:00:00Z"), 5000, 100),
            // Inside the announced maintenance window, and in its overrun.
            (n.account, ms("2025-03-12T02:30:00Z"), 100, 50),
            (n.account, ms("2025-03-12T04:05:00Z"), 100, 1),
            // A cycle that starts in February belongs to February.
            (n.account, ms("2025-02-28T23:55:00Z"), 10, 5),
        ])
        .await
        .unwrap();

    // spec: SVC-276
    // An exclusion covering 180 s (≥ 150 s) of a cycle excludes it; bad input is
    // refused naming the field and records nothing.
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "exclusion",
            "add",
            "--account",
            &acct,
            "--category",
            "force_majeure",
            "--start",
            "2025-03-12T06:00:00Z",
            "--end",
            "2025-03-12T06:03:00Z",
            "--evidence",
            "regional power failure, ticket 17",
            "--actor",
            "ops:ann",
            "--at",
            "2025-03-12T05:00:00Z",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "exclusion",
            "add",
            "--account",
            &acct,
            "--category",
            "bad_luck",
            "--start",
            "2025-03-12T03:00:00Z",
            "--end",
            "2025-03-12T03:03:00Z",
            "--evidence",
            "x",
            "--at",
            "2025-03-12T05:00:00Z",
        ],
    )
    .await;
    assert!(!ok && out.contains("category"), "{out}");
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "exclusion",
            "add",
            "--account",
            &acct,
            "--category",
            "external_network",
            "--start",
            "2025-03-12T03:00:00Z",
            "--end",
            "2025-03-12T02:00:00Z",
            "--evidence",
            "x",
            "--at",
            "2025-03-12T05:00:00Z",
        ],
    )
    .await;
    assert!(!ok && out.contains("end"), "{out}");

    // spec: SVC-239
    // The worked example: published 54 h before a 02:00–04:00 window → excluded; the
    // work overran to 04:20, and 04:00–04:20 counts normally. A window published only
    // 40 h ahead excludes nothing.
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "exclusion",
            "add",
            "--region",
            "--category",
            "announced_maintenance",
            "--start",
            "2025-03-12T02:00:00Z",
            "--end",
            "2025-03-12T04:00:00Z",
            "--published",
            "2025-03-09T20:00:00Z",
            "--evidence",
            "announcement 12",
            "--at",
            "2025-03-09T20:00:00Z",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "exclusion",
            "add",
            "--region",
            "--category",
            "announced_maintenance",
            "--start",
            "2025-03-10T01:00:00Z",
            "--end",
            "2025-03-10T02:00:00Z",
            "--published",
            "2025-03-08T09:00:00Z",
            "--evidence",
            "announcement 11 (late)",
            "--at",
            "2025-03-08T09:00:00Z",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "exclusion",
            "list",
            "--account",
            &acct,
            "--month",
            "2025-03",
            "--at",
            "2025-03-13T00:00:00Z",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out.matches("exclusion ").count(), 3, "{out}");

    // spec: SVC-282
    // Before the window opens the figures are provisional: 3 failed cycles = 15 min →
    // 15 × 1,990 / 43,200 × 10 = 6.9097… → ¥6.91 (SVC-278); excluded cycles carry
    // their category.
    n.set("2025-03-20T00:00:00Z");
    // A Responder with an APP key of their own, invited while the term is in force (once
    // it has ended, the suspended tenant refuses writes such as an invitation).
    let (s, b) = n
        .api(
            &n.owner_key(),
            "/member/invite",
            json!({"members": [{"email": "ren@example.com", "role_ids": [6]}]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let member = b["data"]["items"][0]["member_id"].as_i64().unwrap();
    let responder_key = format!("{:0>32}", format!("r{member}"));
    store
        .add_app_key(
            n.account,
            member,
            "test",
            &responder_key,
            ms("2025-03-20T00:00:00Z"),
        )
        .await
        .unwrap()
        .unwrap();
    let r = n.report("2025-03").await;
    assert_eq!(r["provisional"], true, "{r}");
    assert_eq!(r["covered"], true, "{r}");
    assert_eq!(r["monthly_fee"], "1990.00", "{r}");
    assert_eq!(r["failed_minutes"], 15, "{r}");
    assert_eq!(r["compensation"], "6.91", "{r}");
    let failed: Vec<i64> = r["failed_cycles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["start_time"].as_i64().unwrap())
        .collect();
    assert_eq!(
        failed,
        vec![
            ms("2025-03-10T01:00:00Z") / 1000,
            ms("2025-03-10T01:10:00Z") / 1000,
            ms("2025-03-12T04:05:00Z") / 1000,
        ],
        "{r}"
    );
    assert_eq!(r["failed_cycles"][0]["error_rate"], "0.001", "{r}");
    assert_eq!(r["failed_cycles"][1]["error_rate"], "0.1", "{r}");
    let excluded: Vec<(i64, String)> = r["excluded_cycles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["error_rate"] != "0")
        .map(|c| {
            (
                c["start_time"].as_i64().unwrap(),
                c["category"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        excluded,
        vec![
            (
                ms("2025-03-12T02:30:00Z") / 1000,
                "announced_maintenance".into()
            ),
            (ms("2025-03-12T06:00:00Z") / 1000, "force_majeure".into()),
        ],
        "{r}"
    );
    // 24 cycles of the 2-hour window are excluded, one by the force majeure.
    assert_eq!(r["excluded_cycles"].as_array().unwrap().len(), 25, "{r}");
    assert_eq!(
        r["exclusions"][2]["evidence"], "regional power failure, ticket 17",
        "{r}"
    );

    // spec: SVC-280
    // With 4 April a holiday, the 5th working day of April is 8 April: the window opens
    // 9 April 00:00 and closes 31 May 24:00. A claim before it is refused, and nothing
    // is recorded.
    assert_eq!(
        r["claim_window"]["opens_at"],
        ms("2025-04-09T00:00:00Z") / 1000,
        "{r}"
    );
    assert_eq!(
        r["claim_window"]["closes_at"],
        ms("2025-06-01T00:00:00Z") / 1000,
        "{r}"
    );
    n.set("2025-04-08T23:59:59Z");
    let (s, b) = n
        .api(
            &n.owner_key(),
            "/account/sla/claim/submit",
            json!({"month": "2025-03"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("SVC-280"),
        "{b}"
    );
    let (_, b) = n
        .api(&n.owner_key(), "/account/sla/claim/list", json!({}))
        .await;
    assert_eq!(b["data"]["items"], json!([]));
    // A month that is not one is refused naming the field.
    let (s, b) = n
        .api(
            &n.owner_key(),
            "/account/sla/claim/submit",
            json!({"month": "March"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("month"),
        "{b}"
    );

    // spec: SVC-281
    // Only the owner and Admins see the report and claim: a Responder is refused.
    let (s, b) = n
        .api(
            &responder_key,
            "/account/sla/report",
            json!({"month": "2025-03"}),
        )
        .await;
    assert_eq!(s, 403, "{b}");

    // spec: SVC-280
    // spec: SVC-281
    // At the opening instant the claim is accepted with the report's figures and
    // cycle list; a second claim for the month is refused.
    n.set("2025-04-09T00:00:00Z");
    let (s, b) = n
        .api(
            &n.owner_key(),
            "/account/sla/claim/submit",
            json!({"month": "2025-03"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let claim1 = b["data"]["claim_id"].as_i64().unwrap();
    assert_eq!(b["data"]["compensation"], "6.91", "{b}");
    assert_eq!(b["data"]["status"], "open", "{b}");
    assert_eq!(
        b["data"]["failed_cycles"].as_array().unwrap().len(),
        3,
        "{b}"
    );
    let (s, b) = n
        .api(
            &n.owner_key(),
            "/account/sla/claim/submit",
            json!({"month": "2025-03"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("one claim"),
        "{b}"
    );
    // spec: SVC-282
    // From the window's opening the report is final.
    assert_eq!(n.report("2025-03").await["provisional"], false);

    // spec: SVC-281
    // Rejection gives reasons; the tenant may resubmit once.
    let c1 = claim1.to_string();
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "claim",
            "reject",
            "--claim",
            &c1,
            "--reason",
            "the account's invoices are unpaid",
            "--actor",
            "fin:bo",
            "--at",
            "2025-04-09T01:00:00Z",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "claim",
            "reject",
            "--claim",
            &c1,
            "--reason",
            "again",
            "--at",
            "2025-04-09T01:00:00Z",
        ],
    )
    .await;
    assert!(!ok && out.contains("already rejected"), "{out}");
    n.set("2025-04-10T00:00:00Z");
    let (s, b) = n
        .api(
            &n.owner_key(),
            "/account/sla/claim/submit",
            json!({"month": "2025-03"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["attempt"], 2, "{b}");
    let c2 = b["data"]["claim_id"].as_i64().unwrap().to_string();

    // spec: SVC-279
    // Approval posts the compensation as a bonus lot of source `sla_compensation`;
    // the cash balance does not change, and the bonus can never be withdrawn as cash.
    let (ok, out) = sla_cli(
        &cfg,
        &[
            "claim",
            "approve",
            "--claim",
            &c2,
            "--actor",
            "fin:bo",
            "--at",
            "2025-04-10T01:00:00Z",
        ],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("approved"), "{out}");
    let settings = n.server.saas_settings().unwrap().clone();
    let t = store
        .saas_tenant(&settings, n.account, ms("2025-04-10T01:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    let lots = t.book.ledger().lots();
    assert_eq!(lots.len(), 1, "{lots:?}");
    assert_eq!(lots[0].terms.source, BonusSource::SlaCompensation);
    assert_eq!(lots[0].remaining.to_string(), "6.91");
    let bonus = lots[0].remaining;
    assert!(t.book.ledger().cash().is_zero());
    let refused = store
        .saas_apply(
            &settings,
            n.account,
            ms("2025-04-10T02:00:00Z"),
            "fin:bo",
            "withdrawal",
            |book, at| {
                book.withdraw(at, bonus, "w-1", "fin:bo")?;
                Ok("withdrawn".into())
            },
        )
        .await;
    assert!(refused.is_err(), "bonus became cash");
    let audit = store.saas_audit(n.account).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|(_, actor, action, _)| actor == "fin:bo" && action == "sla_claim_approve"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|(_, actor, action, _)| actor == "ops:ann" && action == "sla_exclusion"),
        "{audit:?}"
    );

    // spec: SVC-281
    // One claim per month: after approval nothing more for March.
    let (s, b) = n
        .api(
            &n.owner_key(),
            "/account/sla/claim/submit",
            json!({"month": "2025-03"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (_, b) = n
        .api(&n.owner_key(), "/account/sla/claim/list", json!({}))
        .await;
    let statuses: Vec<&str> = b["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["approved", "rejected"], "{b}");
    assert_eq!(b["data"]["items"][0]["granted"], "6.91", "{b}");
    assert_eq!(
        b["data"]["items"][1]["reason"], "the account's invoices are unpaid",
        "{b}"
    );

    // Another tenant of the same deployment sees none of this account's cycles, claims
    // or exclusions (only the region-wide maintenance windows apply to it too).
    let other = store
        .create_account(
            &klaxon_store::BootstrapSeed {
                account_name: "Tenant B".into(),
                owner_email: "owner@tenant-b.example".into(),
                owner_name: "B Owner".into(),
                owner_password: "another long password".into(),
                app_key: "b0000000000000000000000000000001".into(),
                integration_key: "b0000000000000000000000000000002".into(),
            },
            ms("2025-04-10T00:00:00Z"),
        )
        .await
        .unwrap();
    let (s, b) = n
        .api(&other.app_key, "/account/sla/claim/list", json!({}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["items"], json!([]), "{b}");
    let (s, b) = n
        .api(
            &other.app_key,
            "/account/sla/report",
            json!({"month": "2025-03"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["failed_cycles"], json!([]), "{b}");
    let categories: Vec<&str> = b["data"]["exclusions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["category"].as_str().unwrap())
        .collect();
    assert_eq!(
        categories,
        vec!["announced_maintenance", "announced_maintenance"],
        "{b}"
    );

    n.server.shutdown().await;
});

on_both_backends!(
    unreachable_periods_are_estimated_from_the_week_before,
    |url: String| async move {
        let n = Node::start(&url, "2025-02-01T00:00:00Z", saas).await;
        let cfg = cli_config(n.dir.path(), &url);
        let acct = n.account.to_string();
        // spec: SVC-273
        // The worked example: an average of 12 requests a minute over the 7 calendar days
        // before, and a cycle fully unreachable → 60 failed of 60 → 100 %.
        n.server
            .store()
            .sla_add_counts(&[(n.account, ms("2025-02-15T00:00:00Z"), 12 * 7 * 1440, 0)])
            .await
            .unwrap();
        let (ok, out) = sla_cli(
            &cfg,
            &[
                "unreachable",
                "add",
                "--account",
                &acct,
                "--start",
                "2025-02-20T05:00:00Z",
                "--end",
                "2025-02-20T05:05:00Z",
                "--evidence",
                "probe outage 4",
                "--at",
                "2025-02-20T06:00:00Z",
            ],
        )
        .await;
        assert!(ok, "{out}");
        n.set("2025-02-21T00:00:00Z");
        let r = n.report("2025-02").await;
        let cycles = r["failed_cycles"].as_array().unwrap();
        assert_eq!(cycles.len(), 1, "{r}");
        assert_eq!(cycles[0]["start_time"], ms("2025-02-20T05:00:00Z") / 1000);
        assert_eq!(cycles[0]["valid_requests"], "60", "{r}");
        assert_eq!(cycles[0]["failed_requests"], "60", "{r}");
        assert_eq!(cycles[0]["error_rate"], "1", "{r}");
        // spec: SVC-270
        // The tenant has bought nothing (no paid edition): not covered, so nothing is owed
        // however many cycles failed.
        assert_eq!(r["covered"], false, "{r}");
        assert_eq!(r["compensation"], "0.00", "{r}");
        n.server.shutdown().await;
    }
);

on_both_backends!(
    delay_rate_comes_from_the_notification_outbox,
    |url: String| async move {
        let n = Node::start(&url, "2025-03-01T00:00:00Z", |c| {
            saas(c);
            // The test hands notifications to the "provider" itself, at chosen instants.
            c.workers.delivery = false;
        })
        .await;
        let cfg = cli_config(n.dir.path(), &url);
        let acct = n.account.to_string();
        let store = n.server.store().clone();
        tenant_cli(
            &cfg,
            &[
                "pay",
                "--account",
                &acct,
                "--amount",
                "1990.00",
                "--reference",
                "bank-1",
                "--at",
                "2025-03-01T00:00:00Z",
            ],
        )
        .await;
        tenant_cli(
            &cfg,
            &[
                "licence",
                "buy",
                "--accepted-by",
                "owner@klaxon.local",
                "--accepted-from",
                "203.0.113.7",
                "--account",
                &acct,
                "--quantity",
                "10",
                "--edition",
                "pro",
                "--at",
                "2025-03-01T00:00:00Z",
            ],
        )
        .await;
        n.set("2025-03-05T08:00:00Z");
        let (s, b) = n
            .api(
                &n.owner_key(),
                "/channel/escalate/rule/create",
                json!({
                    "channel_id": n.server.bootstrap().channel_id,
                    "rule_name": "Primary",
                    "layers": [{"target": {"person_ids": [n.server.bootstrap().owner_member_id],
                        "webhooks": [{"type": "slack",
                        "settings": {"webhook_url": "https://hooks.example.com/sla"}}]},
                        "escalate_window": 30}],
                }),
            )
            .await;
        assert_eq!(s, 200, "{b}");

        // Two incidents triggered at 08:00:10, each with one notification due at once.
        n.set("2025-03-05T08:00:10Z");
        let key = n.server.bootstrap().integration_key.clone();
        for alert in ["db-1", "web-1"] {
            let s = n
                .push(
                    &key,
                    json!({"event_status": "Critical", "title_rule": alert, "alert_key": alert}),
                )
                .await;
            assert_eq!(s, 200);
        }
        let mut due = Vec::new();
        for _ in 0..500 {
            due = store.sla_incidents(n.account, 0, i64::MAX).await.unwrap();
            if due.len() == 2 && due.iter().all(|i| i.due_at.is_some()) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(due.len(), 2, "{due:?}");

        // spec: SVC-274
        // The first incident's notification is accepted by the provider within 300 s of
        // its due time; the second only after 6 minutes.
        n.set("2025-03-05T08:02:00Z");
        let claimed = store
            .claim_deliveries("sla-test", ms("2025-03-05T08:02:00Z"), 100)
            .await
            .unwrap();
        assert!(claimed.len() >= 2, "{claimed:?}");
        let sent = klaxon_store::DeliveryOutcome::Sent {
            provider_message_id: "m-1".into(),
        };
        for d in claimed
            .iter()
            .filter(|d| d.incident_id == due[0].incident_id)
        {
            assert!(
                store
                    .finish_delivery("sla-test", d.seq, &sent, ms("2025-03-05T08:02:00Z"))
                    .await
                    .unwrap()
            );
        }
        let late = ms("2025-03-05T08:06:30Z");
        let claimed = store.claim_deliveries("sla-test", late, 100).await.unwrap();
        assert!(!claimed.is_empty());
        for d in &claimed {
            assert_eq!(d.incident_id, due[1].incident_id);
            assert!(
                store
                    .finish_delivery("sla-test", d.seq, &sent, late)
                    .await
                    .unwrap()
            );
        }

        // spec: SVC-275
        // 1 of 2 incidents handed off late → delay rate 50 % → the cycle fails.
        n.set("2025-03-20T00:00:00Z");
        let r = n.report("2025-03").await;
        let cycles = r["failed_cycles"].as_array().unwrap();
        assert_eq!(cycles.len(), 1, "{r}");
        assert_eq!(cycles[0]["start_time"], ms("2025-03-05T08:00:00Z") / 1000);
        assert_eq!(cycles[0]["valid_incidents"], 2, "{r}");
        assert_eq!(cycles[0]["failed_incidents"], 1, "{r}");
        assert_eq!(cycles[0]["delay_rate"], "0.5", "{r}");
        assert_eq!(r["failed_minutes"], 5, "{r}");
        n.server.shutdown().await;
    }
);
