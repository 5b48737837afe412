//! Ending a tenant's service early, end to end (docs/saas.md "Termination and refunds"):
//! `klaxon admin tenant terminate` for the operator with notice, serious breach, mutual
//! agreement and a removed paid feature, and the tenant's own release — each with its state
//! change, its SVC-234 refunds in the ledger, its buffer and its notices. Also the
//! communication packs and the funds check before an overage unit (SVC-072, SVC-074).
//! Time is a ManualClock; the CLI posts at the same instants with `--at`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::saas::{cli, cli_config, ms, saas};
use common::smtp_sink::Smtp as Sink;
use common::{ManualClock, test_config};
use klaxon_notify::{SmtpConfig, SmtpSecurity};
use klaxon_server::Server;
use serde_json::{Value, json};

/// Price list and communication items shared by the node and the CLI.
const PRICES: &str = "[deployment.licence_prices]\npro_monthly = \"199.00\"\npro_annual = \"2388.00\"\n\
[deployment.communication]\nemail_price = \"25.00\"\n\
[[deployment.communication.packs]]\nunit = \"email\"\nunits = 2\nprice = \"30.00\"\nmonths = 1\n";

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    config_file: std::path::PathBuf,
    acct: String,
    id: i64,
    _sink: Option<Sink>,
    plan: klaxon_store::CommPlan,
}

impl Node {
    async fn start(url: &str, at: &str, mail: bool) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), url);
        saas(&mut config);
        config.deployment.licence_prices.pro_annual = "2388.00".into();
        let c = &mut config.deployment.communication;
        c.email_price = "25.00".into();
        c.packs = vec![klaxon_server::config::PackConfig {
            unit: "email".into(),
            units: 2,
            price: "30.00".into(),
            months: 1,
        }];
        let sink = if mail {
            let sink = Sink::start().await;
            config.notify.email = Some(SmtpConfig {
                host: sink.addr.ip().to_string(),
                port: sink.addr.port(),
                security: SmtpSecurity::None,
                from: "Example Cloud <noreply@example.com>".into(),
                ..SmtpConfig::default()
            });
            Some(sink)
        } else {
            None
        };
        let plan = config.deployment.communication_plan().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(at))));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        common::saas::publish_terms(&server).await;
        let config_file = cli_config(dir.path(), url);
        let mut text = std::fs::read_to_string(&config_file).unwrap();
        text.push_str(PRICES);
        std::fs::write(&config_file, text).unwrap();
        let id = server.bootstrap().account_id;
        Node {
            server,
            http: reqwest::Client::new(),
            clock,
            _dir: dir,
            config_file,
            acct: id.to_string(),
            id,
            _sink: sink,
            plan,
        }
    }

    fn set(&self, at: &str) {
        self.clock.0.store(ms(at), Ordering::SeqCst);
    }

    fn now(&self) -> i64 {
        self.clock.0.load(Ordering::SeqCst)
    }

    /// `klaxon admin tenant <args> --account <id> --at <now>`.
    async fn cli(&self, args: &[&str]) -> (bool, String) {
        // The node's own jobs catch up to the clock first (they are idempotent), so the
        // command does not race a burst of the worker's catch-up writes.
        let settings = self.server.saas_settings().unwrap();
        let store = self.server.store();
        let plan = self.plan.clone();
        store
            .saas_settle_usage_due(settings, &plan, self.now())
            .await
            .unwrap();
        store.saas_settle_due(settings, self.now()).await.unwrap();
        let at = jiff::Timestamp::from_millisecond(self.now())
            .unwrap()
            .to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--account", &self.acct, "--at", &at, "--actor", "ops"]);
        // SQLite: a command whose transaction meets a write the node committed meanwhile is
        // refused whole ("database is locked") and changes nothing; it is simply run again.
        let mut out = cli(&self.config_file, &all).await;
        for _ in 0..10 {
            if !out.1.contains("database is locked") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            out = cli(&self.config_file, &all).await;
        }
        out
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.cli(args).await;
        assert!(ok, "{args:?}: {out}");
        out
    }

    async fn tenant(&self) -> klaxon_store::TenantBilling {
        let settings = self.server.saas_settings().unwrap();
        self.server
            .store()
            .saas_tenant(settings, self.id, self.now())
            .await
            .unwrap()
            .unwrap()
    }

    async fn cash(&self) -> String {
        let t = self.tenant().await;
        t.currency.format(t.book.ledger().cash())
    }

    /// Waits until the worker has given notices of `template` about `related` (a prefix);
    /// returns the channels they went on.
    async fn notices(&self, template: &str, related: &str) -> Vec<String> {
        let mut channels = Vec::new();
        for _ in 0..200 {
            channels = self
                .server
                .store()
                .saas_notices(self.id, 0, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.template_id == template && r.related.starts_with(related))
                .map(|r| r.channel)
                .collect();
            if !channels.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        channels.sort();
        channels.dedup();
        channels
    }

    async fn push(&self, key: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}/event/push/alert/standard?integration_key={}",
                self.server.base_url(),
                self.server.bootstrap().integration_key
            ))
            .json(&json!({"event_status": "Critical", "title_rule": "disk full", "alert_key": key}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn api(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}{path}?app_key={}",
                self.server.base_url(),
                self.server.bootstrap().app_key
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn stop(self) {
        self.server.shutdown().await;
    }
}

on_both_backends!(
    operator_termination_gives_notice_and_refunds_unused_terms,
    |url: String| async move {
        let n = Node::start(&url, "2025-01-01T09:00:00Z", false).await;
        // An annual Pro term of 10 licences from 1 January (365 days) and an add-on of 2
        // bought on 1 April (275 days left): 2388 × 2 × 275 / 365 = 3598.36.
        n.ok(&["pay", "--amount", "23880.00", "--reference", "bank-1"])
            .await;
        n.ok(&[
            "licence",
            "buy",
            "--accepted-by",
            "owner@klaxon.local",
            "--accepted-from",
            "203.0.113.7",
            "--edition",
            "pro",
            "--quantity",
            "10",
            "--months",
            "12",
        ])
        .await;
        n.set("2025-04-01T10:00:00Z");
        n.ok(&["pay", "--amount", "3598.36", "--reference", "bank-2"])
            .await;
        let out = n
            .ok(&[
                "licence",
                "buy",
                "--accepted-by",
                "owner@klaxon.local",
                "--accepted-from",
                "203.0.113.7",
                "--edition",
                "pro",
                "--quantity",
                "2",
            ])
            .await;
        assert!(out.contains("3598.36"), "{out}");
        assert_eq!(n.cash().await, "0.00");

        // spec: SVC-233
        // spec: SVC-314
        // Notice sent 1 June 15:00 → effective no earlier than 1 July 00:00; an earlier date
        // is refused and nothing is recorded.
        n.set("2025-06-01T15:00:00Z");
        let (ok, out) = n
            .cli(&[
                "terminate",
                "operator",
                "--reference",
                "ops-17",
                "--effective",
                "2025-06-30T00:00:00Z",
            ])
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-233"), "{out}");
        // Terminations take effect at 00:00.
        let (ok, out) = n
            .cli(&[
                "terminate",
                "operator",
                "--reference",
                "ops-17",
                "--effective",
                "2025-07-01T12:00:00Z",
            ])
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("00:00"), "{out}");
        let store = n.server.store();
        assert!(store.saas_terminations(n.id).await.unwrap().is_empty());
        let out = n
            .ok(&[
                "terminate",
                "operator",
                "--reference",
                "ops-17",
                "--effective",
                "2025-07-01T00:00:00Z",
            ])
            .await;
        assert!(out.contains("termination 1 (operator): scheduled"), "{out}");
        // The notice goes out at once (in-app and e-mail from the platform; SMS and post
        // are sent outside it).
        let related = format!("termination:{}:1", n.id);
        let channels = n.notices("operator_termination", &related).await;
        for ch in ["email", "in_app"] {
            assert!(channels.iter().any(|c| c == ch), "{channels:?}");
        }
        // Until then the service runs on.
        assert_eq!(n.tenant().await.state.to_string(), "active");
        // A second termination while one is scheduled is refused.
        let (ok, out) = n.cli(&["terminate", "breach", "--reference", "x"]).await;
        assert!(!ok, "{out}");

        // spec: SVC-234
        // At 1 July 00:00: 184 of the term's 365 days are unused → 23880 × 184 / 365 =
        // 12038.14; the add-on: 3598.36 × 184 / 275 = 2407.63. Both to the cash balance.
        n.set("2025-07-01T00:00:30Z");
        let settings = n.server.saas_settings().unwrap();
        store
            .saas_terminations_due(settings, n.now())
            .await
            .unwrap();
        let recs = store.saas_terminations(n.id).await.unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].state, "done", "{:?}", recs[0]);
        assert!(
            recs[0]
                .outcome
                .contains("licence-order:1 184/365 days: cash 12038.14"),
            "{}",
            recs[0].outcome
        );
        assert!(
            recs[0]
                .outcome
                .contains("licence-order:2 184/275 days: cash 2407.63"),
            "{}",
            recs[0].outcome
        );
        let t = n.tenant().await;
        assert_eq!(t.state.to_string(), "ended(terminated_by_operator)");
        assert_eq!(t.currency.format(t.book.ledger().cash()), "14445.77");
        assert!(t.book.ledger().check().is_empty());
        // spec: SVC-187
        // The buffer starts at the effective date: purge 30 days later.
        assert_eq!(t.since.to_string(), "2025-07-01T00:00:00Z");
        assert_eq!(t.purge_at.unwrap().to_string(), "2025-07-31T00:00:00Z");
        let refunds: Vec<_> = t
            .book
            .ledger()
            .entries()
            .iter()
            .filter(|e| e.kind == klaxon_saas::ledger::EntryKind::Refund)
            .collect();
        assert_eq!(refunds.len(), 2);
        assert!(
            refunds
                .iter()
                .all(|e| e.to == klaxon_saas::ledger::Account::Cash)
        );
        // A second run does nothing again.
        assert!(
            store
                .saas_terminations_due(settings, n.now())
                .await
                .unwrap()
                .is_empty()
        );
        // spec: SVC-316
        // The end of service is a critical notice.
        let channels = n.notices("service_ended", "service_state:").await;
        for ch in ["email", "in_app"] {
            assert!(channels.iter().any(|c| c == ch), "{channels:?}");
        }
        // spec: SVC-023
        n.server.refresh_tenant_states().await.unwrap();
        let (status, body) = n.push("after-end").await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "ResourceNotFound", "{body}");
        n.stop().await;
    }
);

on_both_backends!(
    termination_for_breach_needs_two_staff_and_refunds_nothing,
    |url: String| async move {
        let n = Node::start(&url, "2025-03-01T09:00:00Z", false).await;
        n.ok(&["pay", "--amount", "500.00", "--reference", "bank-1"])
            .await;
        n.ok(&[
            "licence",
            "buy",
            "--accepted-by",
            "owner@klaxon.local",
            "--accepted-from",
            "203.0.113.7",
            "--edition",
            "pro",
            "--quantity",
            "1",
        ])
        .await;
        assert_eq!(n.cash().await, "301.00");

        // spec: SVC-232
        // One person cannot both propose and approve; nothing changes.
        n.set("2025-03-10T12:00:00Z");
        let breach = |proposer: &'static str, category: &'static str| {
            [
                "terminate",
                "breach",
                "--reference",
                "case-4",
                "--category",
                category,
                "--evidence",
                "report-77",
                "--proposer",
                proposer,
                "--approver",
                "bob",
            ]
        };
        let (ok, out) = n.cli(&breach("bob", "fraud")).await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-232"), "{out}");
        let (ok, out) = n.cli(&breach("alice", "rudeness")).await;
        assert!(!ok, "{out}");
        assert!(out.contains("category"), "{out}");
        assert_eq!(n.tenant().await.state.to_string(), "active");
        assert!(
            n.server
                .store()
                .saas_terminations(n.id)
                .await
                .unwrap()
                .is_empty()
        );

        // Effective at once; no refund of the unused term; the cash stays withdrawable.
        let out = n.ok(&breach("alice", "fraud")).await;
        assert!(out.contains("termination 1 (breach): done"), "{out}");
        assert!(out.contains("no refund"), "{out}");
        let t = n.tenant().await;
        assert_eq!(t.state.to_string(), "ended(terminated_breach)");
        assert_eq!(n.cash().await, "301.00");
        assert_eq!(t.purge_at.unwrap().to_string(), "2025-04-09T12:00:00Z");
        // spec: SVC-316
        let channels = n.notices("service_ended", "service_state:").await;
        for ch in ["email", "in_app"] {
            assert!(channels.iter().any(|c| c == ch), "{channels:?}");
        }
        // spec: SVC-107
        // No renewal after a termination for breach until staff lift it.
        n.set("2025-03-11T12:00:00Z");
        let (ok, out) = n
            .cli(&[
                "renew",
                "--accepted-by",
                "owner@klaxon.local",
                "--accepted-from",
                "203.0.113.7",
            ])
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-107"), "{out}");
        n.stop().await;
    }
);

on_both_backends!(
    mutual_termination_books_the_agreed_refund_at_the_agreed_end,
    |url: String| async move {
        let n = Node::start(&url, "2025-01-01T09:00:00Z", false).await;
        n.ok(&["pay", "--amount", "2388.00", "--reference", "bank-1"])
            .await;
        n.ok(&[
            "licence",
            "buy",
            "--accepted-by",
            "owner@klaxon.local",
            "--accepted-from",
            "203.0.113.7",
            "--edition",
            "pro",
            "--quantity",
            "1",
            "--months",
            "12",
        ])
        .await;

        // spec: SVC-231
        // The owner's confirmation is required; the agreed refund may not exceed what was
        // paid for the unused days (2388 × 292 / 365 = 1910.40 at 15 March).
        n.set("2025-03-01T10:00:00Z");
        let mutual = |refund: &'static str| {
            vec![
                "terminate",
                "mutual",
                "--reference",
                "agreement-3",
                "--effective",
                "2025-03-15T00:00:00Z",
                "--refund",
                refund,
            ]
        };
        let (ok, out) = n.cli(&mutual("1000.00")).await;
        assert!(!ok, "{out}");
        assert!(out.contains("owner"), "{out}");
        let mut args = mutual("1910.41");
        args.extend(["--owner-confirmation", "ticket-88"]);
        let (ok, out) = n.cli(&args).await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-231"), "{out}");
        let mut args = mutual("1000.00");
        args.extend(["--owner-confirmation", "ticket-88"]);
        let out = n.ok(&args).await;
        assert!(out.contains("termination 1 (mutual): scheduled"), "{out}");
        assert_eq!(n.tenant().await.state.to_string(), "active");

        // At the agreed end: `ended(terminated_mutual)`, the agreed amount to cash, buffer.
        n.set("2025-03-15T00:00:10Z");
        let mut run = cli(
            &n.config_file,
            &["billing-run", "--at", "2025-03-15T00:00:10Z"],
        )
        .await;
        for _ in 0..10 {
            if !run.1.contains("database is locked") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            run = cli(
                &n.config_file,
                &["billing-run", "--at", "2025-03-15T00:00:10Z"],
            )
            .await;
        }
        assert!(run.0, "{}", run.1);
        let recs = n.server.store().saas_terminations(n.id).await.unwrap();
        assert_eq!(recs[0].state, "done", "{:?}", recs[0]);
        let t = n.tenant().await;
        assert_eq!(t.state.to_string(), "ended(terminated_mutual)");
        assert_eq!(n.cash().await, "1000.00");
        assert_eq!(t.purge_at.unwrap().to_string(), "2025-04-14T00:00:00Z");
        n.stop().await;
    }
);

on_both_backends!(
    leaving_after_a_paid_feature_was_removed_refunds_pro_rata,
    |url: String| async move {
        let n = Node::start(&url, "2025-01-01T09:00:00Z", false).await;
        n.ok(&["pay", "--amount", "2388.00", "--reference", "bank-1"])
            .await;
        n.ok(&[
            "licence",
            "buy",
            "--accepted-by",
            "owner@klaxon.local",
            "--accepted-from",
            "203.0.113.7",
            "--edition",
            "pro",
            "--quantity",
            "1",
            "--months",
            "12",
        ])
        .await;

        // spec: SVC-238
        // The right lasts until 24:00 of the 30th day after the removal took effect.
        n.set("2025-06-01T10:00:00Z");
        let args = [
            "terminate",
            "feature-removal",
            "--reference",
            "change-12",
            "--removed-at",
            "2025-05-01T00:00:00Z",
        ];
        let (ok, out) = n.cli(&args).await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-238"), "{out}");
        assert_eq!(n.tenant().await.state.to_string(), "active");

        // spec: SVC-234
        // Within it: ended now, unused days from today refunded: 2388 × 215 / 365 = 1406.63.
        n.set("2025-05-31T10:00:00Z");
        let out = n.ok(&args).await;
        assert!(out.contains("done"), "{out}");
        assert!(out.contains("cash 1406.63"), "{out}");
        assert_eq!(n.cash().await, "1406.63");
        assert_eq!(
            n.tenant().await.state.to_string(),
            "ended(terminated_by_operator)"
        );
        n.stop().await;
    }
);

on_both_backends!(
    the_tenants_release_refunds_nothing_by_default,
    |url: String| async move {
        let n = Node::start(&url, "2025-03-01T09:00:00Z", false).await;
        n.ok(&["pay", "--amount", "199.00", "--reference", "bank-1"])
            .await;
        n.ok(&[
            "licence",
            "buy",
            "--accepted-by",
            "owner@klaxon.local",
            "--accepted-from",
            "203.0.113.7",
            "--edition",
            "pro",
            "--quantity",
            "1",
        ])
        .await;
        n.ok(&["auto-renew", "on"]).await;

        // spec: SVC-235
        // spec: SVC-186
        // The owner's release ends the service at once; with the operator's default
        // (`refund_on_customer_cancel = none`) the unused remainder is not refunded; the
        // data is kept for the normal buffer.
        n.set("2025-03-10T12:00:00Z");
        let out = n.ok(&["release", "--reference", "ticket-9"]).await;
        assert!(out.contains("termination 1 (cancel): done"), "{out}");
        assert!(out.contains("no refund"), "{out}");
        let t = n.tenant().await;
        assert_eq!(t.state.to_string(), "ended(released)");
        assert_eq!(n.cash().await, "0.00");
        assert_eq!(t.purge_at.unwrap().to_string(), "2025-04-09T12:00:00Z");

        // spec: SVC-187
        // Releasing again with deletion brings the purge date forward to the undo window;
        // nothing else moves it.
        n.set("2025-03-11T08:00:00Z");
        n.ok(&["release", "--reference", "ticket-10", "--delete"])
            .await;
        let t = n.tenant().await;
        assert_eq!(t.state.to_string(), "ended(released)");
        assert_eq!(t.purge_at.unwrap().to_string(), "2025-03-12T08:00:00Z");

        // Bad input changes nothing.
        let (ok, out) = n.cli(&["release", "--reference", " "]).await;
        assert!(!ok, "{out}");
        assert!(out.contains("reference"), "{out}");
        assert_eq!(
            n.server
                .store()
                .saas_terminations(n.id)
                .await
                .unwrap()
                .len(),
            2
        );
        n.stop().await;
    }
);

on_both_backends!(
    a_cancellation_is_refunded_pro_rata_when_the_operator_says_so,
    |url: String| async move {
        let n = Node::start(&url, "2025-01-01T09:00:00Z", false).await;
        n.ok(&["pay", "--amount", "2388.00", "--reference", "bank-1"])
            .await;
        n.ok(&[
            "licence",
            "buy",
            "--accepted-by",
            "owner@klaxon.local",
            "--accepted-from",
            "203.0.113.7",
            "--edition",
            "pro",
            "--quantity",
            "1",
            "--months",
            "12",
        ])
        .await;
        // spec: SVC-235
        // With `refund_on_customer_cancel = pro_rata` the release refunds the unused days
        // (from 1 July: 2388 × 184 / 365 = 1203.81) to cash.
        let mut settings = n.server.saas_settings().unwrap().clone();
        settings.params.refund_on_customer_cancel = klaxon_saas::params::CancelRefund::ProRata;
        let rec = n
            .server
            .store()
            .saas_terminate(
                &settings,
                n.id,
                &klaxon_store::NewTermination {
                    kind: klaxon_store::TerminationKind::Cancel,
                    effective_at: None,
                    reference: "console-release".into(),
                    category: String::new(),
                    evidence: Vec::new(),
                    proposer: String::new(),
                    approver: String::new(),
                    agreed_refund: None,
                    removed_at: None,
                    delete_early: false,
                    export_block_basis: String::new(),
                },
                ms("2025-07-01T00:00:00Z"),
                "owner",
            )
            .await
            .unwrap();
        assert_eq!(rec.state, "done");
        assert!(rec.outcome.contains("cash 1203.81"), "{}", rec.outcome);
        n.set("2025-07-01T00:00:00Z");
        assert_eq!(n.cash().await, "1203.81");
        n.stop().await;
    }
);

on_both_backends!(
    overage_units_need_funds_or_a_pack,
    |url: String| async move {
        let n = Node::start(&url, "2025-03-01T09:00:00Z", true).await;
        n.ok(&["pay", "--amount", "199.00", "--reference", "bank-1"])
            .await;
        n.ok(&[
            "licence",
            "buy",
            "--accepted-by",
            "owner@klaxon.local",
            "--accepted-from",
            "203.0.113.7",
            "--edition",
            "pro",
            "--quantity",
            "1",
        ])
        .await;
        assert_eq!(n.cash().await, "0.00");
        // The owner is paged by e-mail, priced 25.00 with no allowance.
        let (s, b) = n
            .api(
                "/channel/escalate/rule/create",
                json!({
                    "channel_id": n.server.bootstrap().channel_id,
                    "rule_name": "Owner",
                    "layers": [{"target": {"person_ids": [n.server.bootstrap().owner_member_id],
                                           "by": {"follow_preference": false, "critical": ["email"]}},
                                "escalate_window": 30}],
                }),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert!(b.get("error").is_none(), "{b}");

        // spec: SVC-074
        // No allowance, no pack, no funds: the e-mail is not sent; the timeline says why
        // (`quota_exhausted`) and the owner is told once in the cycle.
        n.set("2025-03-02T10:00:00Z");
        assert_eq!(n.push("o-1").await.0, 200);
        let store = n.server.store();
        let mut rows = Vec::new();
        for _ in 0..300 {
            rows = store
                .notification_outbox(n.id, None, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.channel == "email" && r.status != "queued")
                .collect();
            if !rows.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].status, "failed");
        assert_eq!(rows[0].failed_reason, "quota_exhausted");
        let channels = n
            .notices("communication_skipped", "communication_skipped:")
            .await;
        for ch in ["email", "in_app"] {
            assert!(channels.iter().any(|c| c == ch), "{channels:?}");
        }
        let (s, b) = n
            .api(
                "/incident/resolve",
                json!({"incident_ids": [rows[0].incident_id]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");

        // spec: SVC-072
        // A pack is bought through the order path (paid from the funds; refused unchanged
        // when they do not cover it), and its units are used before any overage.
        let (ok, out) = n
            .cli(&[
                "buy-pack",
                "--accepted-by",
                "owner@klaxon.local",
                "--accepted-from",
                "203.0.113.7",
                "--unit",
                "email",
                "--units",
                "2",
            ])
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("insufficient funds"), "{out}");
        let (ok, out) = n
            .cli(&[
                "buy-pack",
                "--accepted-by",
                "owner@klaxon.local",
                "--accepted-from",
                "203.0.113.7",
                "--unit",
                "sms",
                "--units",
                "5",
            ])
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("pack"), "{out}");
        n.ok(&["pay", "--amount", "30.00", "--reference", "bank-2"])
            .await;
        let out = n
            .ok(&[
                "buy-pack",
                "--accepted-by",
                "owner@klaxon.local",
                "--accepted-from",
                "203.0.113.7",
                "--unit",
                "email",
                "--units",
                "2",
            ])
            .await;
        assert!(out.contains("pack 1: 2 units"), "{out}");
        assert_eq!(n.cash().await, "0.00");
        n.set("2025-03-02T11:00:00Z");
        assert_eq!(n.push("o-2").await.0, 200);
        let mut sent = Vec::new();
        for _ in 0..300 {
            sent = store
                .notification_outbox(n.id, None, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.channel == "email" && r.status == "sent")
                .collect();
            if !sent.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(sent.len(), 1, "the pack paid for the e-mail");
        let packs = store.saas_packs(n.id).await.unwrap();
        assert_eq!(packs[0].used, 1);

        // spec: SVC-073
        // The next day's settlement charges nothing: the unit came from the pack.
        n.set("2025-03-03T00:30:00Z");
        let out = n.ok(&["usage", "--date", "2025-03-03"]).await;
        assert!(out.contains("nothing to charge"), "{out}");
        assert_eq!(n.cash().await, "0.00");
        n.stop().await;
    }
);

on_both_backends!(
    breach_termination_may_block_the_export_other_endings_keep_it,
    |url: String| async move {
        let n = Node::start(&url, "2025-03-01T09:00:00Z", false).await;
        n.set("2025-03-10T12:00:00Z");
        // spec: SVC-232
        // Only a termination for serious breach may block the export: any other is refused
        // and nothing is recorded.
        let (ok, out) = n
            .cli(&[
                "terminate",
                "mutual",
                "--reference",
                "agreement-3",
                "--owner-confirmation",
                "mail-5",
                "--block-export",
                "court order 12/2025",
            ])
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-232"), "{out}");
        assert!(
            n.server
                .store()
                .saas_terminations(n.id)
                .await
                .unwrap()
                .is_empty()
        );
        // With a legal basis the breach termination sets `export_blocked`.
        let out = n
            .ok(&[
                "terminate",
                "breach",
                "--reference",
                "case-9",
                "--category",
                "unlawful_content",
                "--evidence",
                "report-12",
                "--proposer",
                "alice",
                "--approver",
                "bob",
                "--block-export",
                "court order 12/2025: the content itself is unlawful",
            ])
            .await;
        assert!(out.contains("termination 1 (breach): done"), "{out}");
        assert!(out.contains("export blocked"), "{out}");
        assert_eq!(
            n.tenant().await.state.to_string(),
            "ended(terminated_breach)"
        );
        n.server.refresh_tenant_states().await.unwrap();
        // spec: SVC-182
        // The export is refused with the reason and nothing is started.
        let (status, body) = n.api("/account/export/create", json!({})).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "AccessDenied", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("SVC-232"), "{message}");
        assert!(message.contains("court order 12/2025"), "{message}");
        let (status, body) = n.api("/account/export/list", json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["items"].as_array().unwrap().len(), 0, "{body}");

        // spec: SVC-237
        // spec: SVC-232
        // Lifting the block takes two staff members and written reasons; a lift without
        // them is refused and the block stays.
        n.set("2025-03-12T10:00:00Z");
        let lift = |extra: &[&'static str]| {
            let mut args = vec!["lift-export-block", "--reference", "appeal-ticket-31"];
            args.extend_from_slice(extra);
            args
        };
        let (ok, out) = n
            .cli(&lift(&[
                "--reason",
                "appeal upheld",
                "--proposer",
                "alice",
                "--approver",
                "alice",
            ]))
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("two staff members"), "{out}");
        let (ok, out) = n
            .cli(&lift(&[
                "--reason",
                " ",
                "--proposer",
                "alice",
                "--approver",
                "carol",
            ]))
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("reason"), "{out}");
        assert!(
            n.server
                .store()
                .saas_export_block_lifts(n.id)
                .await
                .unwrap()
                .is_empty()
        );
        let (status, _) = n.api("/account/export/create", json!({})).await;
        assert_eq!(status, 403);
        // The lift: recorded with the basis it lifted, audited for the operator and in the
        // tenant's own audit log; the export works again at once.
        let out = n
            .ok(&lift(&[
                "--reason",
                "appeal upheld: the content was lawful",
                "--proposer",
                "alice",
                "--approver",
                "carol",
            ]))
            .await;
        assert!(out.contains("export block lifted"), "{out}");
        let lifts = n
            .server
            .store()
            .saas_export_block_lifts(n.id)
            .await
            .unwrap();
        assert_eq!(lifts.len(), 1);
        assert_eq!(
            lifts[0].basis,
            "court order 12/2025: the content itself is unlawful"
        );
        assert_eq!(
            (
                lifts[0].proposer.as_str(),
                lifts[0].approver.as_str(),
                lifts[0].actor.as_str()
            ),
            ("alice", "carol", "ops")
        );
        assert_eq!(lifts[0].lifted_at, n.now());
        assert_eq!(
            n.server.store().saas_export_blocked(n.id).await.unwrap(),
            None
        );
        let audit = n.server.store().saas_audit(n.id).await.unwrap();
        assert!(
            audit.iter().any(|(_, actor, action, detail)| actor == "ops"
                && action == "export_block_lift"
                && detail.contains("appeal-ticket-31")),
            "{audit:?}"
        );
        let log = common::saas::tenant_audit(n.server.store(), n.id, n.now()).await;
        let entry = log
            .iter()
            .find(|r| r.operation == "export_block:lift")
            .expect("the lift is in the tenant's audit log");
        assert_eq!(
            (entry.source.as_str(), entry.member_name.as_str()),
            ("staff", "ops")
        );
        assert!(entry.body.contains("appeal upheld"), "{}", entry.body);
        let (status, body) = n.api("/account/export/create", json!({})).await;
        assert_eq!(status, 200, "{body}");
        // Nothing is left to lift.
        let (ok, out) = n
            .cli(&lift(&[
                "--reason",
                "again",
                "--proposer",
                "alice",
                "--approver",
                "carol",
            ]))
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("not blocked"), "{out}");
        n.stop().await;
    }
);

/// A staff identity for the operator API: (id, token).
async fn staff(n: &Node) -> (i64, String) {
    n.server
        .store()
        .staff_add(
            "Ann",
            klaxon_saas::grant::StaffRole::Support,
            "test",
            n.now(),
        )
        .await
        .unwrap()
}

/// A call of the operator API.
async fn op(n: &Node, token: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = n
        .http
        .post(format!("{}{path}", n.server.base_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

on_both_backends!(
    operator_api_sells_packs_and_ends_the_service_like_the_cli,
    |url: String| async move {
        let n = Node::start(&url, "2025-03-01T09:00:00Z", false).await;
        n.ok(&["pay", "--amount", "100.00", "--reference", "bank-1"])
            .await;
        let (staff_id, token) = staff(&n).await;
        let id = n.id;
        // spec: SVC-220
        // The operator endpoints need a staff token.
        let (status, _) = op(
            &n,
            "",
            "/operator/tenant/pack/list",
            json!({"account_id": id}),
        )
        .await;
        assert_eq!(status, 401);

        // spec: SVC-072
        // A pack of the price list, paid from the funds at once.
        // spec: SVC-033
        // An order keyed in by staff without the owner's acceptance of the terms in force
        // is refused, naming the field; nothing is bought.
        let (status, body) = op(
            &n,
            &token,
            "/operator/tenant/pack/buy",
            json!({"account_id": id, "unit": "email", "units": 2}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "InvalidParameter", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("accepted_by"),
            "{body}"
        );
        assert_eq!(n.cash().await, "100.00");
        let (status, body) = op(
            &n,
            &token,
            "/operator/tenant/pack/buy",
            json!({"account_id": id, "unit": "email", "units": 2,
                   "accepted_by": "owner@klaxon.local", "accepted_from": "order-form-17"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["units"], 2, "{body}");
        assert_eq!(body["data"]["price"], "30.00", "{body}");
        assert_eq!(n.cash().await, "70.00");
        // A size the price list does not sell is refused; nothing is bought.
        let (status, body) = op(
            &n,
            &token,
            "/operator/tenant/pack/buy",
            json!({"account_id": id, "unit": "email", "units": 3,
                   "accepted_by": "owner@klaxon.local", "accepted_from": "order-form-17"}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = op(
            &n,
            &token,
            "/operator/tenant/pack/list",
            json!({"account_id": id}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["total"], 1, "{body}");
        assert_eq!(body["data"]["items"][0]["unit"], "email", "{body}");
        assert_eq!(n.cash().await, "70.00");

        // spec: SVC-232
        // The same rules as the CLI: one person cannot propose and approve.
        let (status, body) = op(
            &n,
            &token,
            "/operator/tenant/terminate",
            json!({"account_id": id, "kind": "breach", "reference": "case-1",
                   "category": "fraud", "evidence": ["r-1"], "proposer": "bob",
                   "approver": "bob"}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("SVC-232"),
            "{body}"
        );
        let (_, body) = op(
            &n,
            &token,
            "/operator/tenant/termination/list",
            json!({"account_id": id}),
        )
        .await;
        assert_eq!(body["data"]["total"], 0, "{body}");
        assert_eq!(n.tenant().await.state.to_string(), "active");

        // spec: SVC-235
        // spec: SVC-186
        // The tenant's release asked for through the operator: ended(released) at once.
        let (status, body) = op(
            &n,
            &token,
            "/operator/tenant/release",
            json!({"account_id": id, "reference": "ticket-9"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["kind"], "cancel", "{body}");
        assert_eq!(body["data"]["state"], "done", "{body}");
        assert_eq!(body["data"]["actor"], format!("staff:{staff_id}"), "{body}");
        assert_eq!(n.tenant().await.state.to_string(), "ended(released)");
        let (_, body) = op(
            &n,
            &token,
            "/operator/tenant/termination/list",
            json!({"account_id": id}),
        )
        .await;
        assert_eq!(body["data"]["total"], 1, "{body}");
        assert_eq!(body["data"]["items"][0]["reference"], "ticket-9", "{body}");

        // spec: SVC-182
        // Every ending other than a blocked breach keeps the export.
        let (status, body) = n.api("/account/export/create", json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["status"], "ready", "{body}");
        n.stop().await;
    }
);
