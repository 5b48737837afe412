//! SaaS mode end to end (docs/saas.md): a tenant that does not pay becomes overdue, accrues
//! the daily penalty, is suspended, has its pushes refused and not queued, pays through
//! `klaxon admin tenant pay`, and is restored; and a self-hosted install meets none of it.
//! Time is a ManualClock; the CLI posts at the same instants with `--at`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::saas::{cli, cli_config, ms, saas};
use common::{ManualClock, test_config};
use jiff::Timestamp;
use klaxon_server::{Config, Server};
use serde_json::{Value, json};

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    config_file: std::path::PathBuf,
    account: String,
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
        let config_file = cli_config(dir.path(), database_url);
        let account = server.bootstrap().account_id.to_string();
        Node {
            server,
            http: reqwest::Client::new(),
            clock,
            _dir: dir,
            config_file,
            account,
        }
    }

    fn set(&self, at: &str) {
        self.clock.0.store(ms(at), Ordering::SeqCst);
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

    async fn accepted_total(&self) -> f64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.server.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("klaxon_push_events_accepted_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    async fn payable(&self, at: &str) -> (String, String) {
        let settings = self.server.saas_settings().unwrap();
        let t = self
            .server
            .store()
            .saas_tenant(settings, self.server.bootstrap().account_id, ms(at))
            .await
            .unwrap()
            .unwrap();
        (t.state.to_string(), t.currency.format(t.payable_total))
    }
}

on_both_backends!(
    nonpayment_suspends_and_full_payment_restores,
    |url: String| async move {
        let n = Node::start(&url, "2025-05-31T00:30:00Z", saas).await;
        let acct = n.account.clone();
        let store = n.server.store();
        let settings = n.server.saas_settings().unwrap().clone();
        let account_id = n.server.bootstrap().account_id;

        // spec: SVC-121
        // spec: SVC-130
        // A postpaid cycle charge the tenant cannot pay (no cash, no bonus) becomes an overdue
        // item due that day, and the tenant is `overdue` at once.
        let (ok, out) = cli(
            &n.config_file,
            &[
                "charge",
                "--account",
                &acct,
                "--amount",
                "1990.00",
                "--kind",
                "licence_cycle",
                "--reference",
                "cycle-2025-05",
                "--due",
                "2025-05-31",
                "--at",
                "2025-05-31T00:30:00Z",
                "--actor",
                "billing-bot",
            ],
        )
        .await;
        assert!(ok, "{out}");
        assert!(out.contains("state: active -> overdue"), "{out}");
        assert!(
            out.contains("overdue item 1: cycle-2025-05 due 2025-05-31, unpaid 1990.00 CNY"),
            "{out}"
        );

        // spec: SVC-022
        // Overdue still serves: pushes are accepted.
        n.server.refresh_tenant_states().await.unwrap();
        assert_eq!(n.push("a-1").await.0, 200);

        // spec: SVC-132
        // spec: SVC-133
        // 0.05 % a day of the unpaid principal, simple interest, weekends included; the payable
        // total carries the rounded accrual up to the end of yesterday.
        assert_eq!(n.payable("2025-06-01T12:00:00Z").await.1, "1990.00");
        assert_eq!(n.payable("2025-06-02T00:00:00Z").await.1, "1991.00"); // 0.995
        assert_eq!(n.payable("2025-06-04T00:00:00Z").await.1, "1992.99"); // 2.985
        assert_eq!(n.payable("2025-06-08T09:00:00Z").await.1, "1996.97"); // 7 × 0.995 = 6.965

        // spec: SVC-137
        // The last grace day does not suspend, and a day runs once.
        n.set("2025-06-07T23:59:00Z");
        let run = store
            .saas_settle(
                &settings,
                account_id,
                "2025-06-07".parse().unwrap(),
                ms("2025-06-07T23:59:00Z"),
                "test",
            )
            .await
            .unwrap();
        assert!(run.ran_now);
        assert!(run.outcome.contains("state overdue"), "{}", run.outcome);
        let again = store
            .saas_settle(
                &settings,
                account_id,
                "2025-06-07".parse().unwrap(),
                ms("2025-06-07T23:59:00Z"),
                "test",
            )
            .await
            .unwrap();
        assert!(!again.ran_now);

        // spec: SVC-137
        // spec: SVC-140
        // Due 31 May + 7 days of grace → suspended at 8 June 00:00, purge date 8 July 00:00. The
        // job runs late (09:00) and still suspends at the scheduled instant.
        n.set("2025-06-08T09:00:00Z");
        let runs = store
            .saas_settle_due(&settings, ms("2025-06-08T09:00:00Z"))
            .await
            .unwrap();
        assert_eq!(runs.len(), 1);
        let t = store
            .saas_tenant(&settings, account_id, ms("2025-06-08T09:00:00Z"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.state.to_string(), "suspended(nonpayment)");
        assert_eq!(
            t.since,
            "2025-06-08T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            t.purge_at,
            Some("2025-07-08T00:00:00Z".parse::<Timestamp>().unwrap())
        );
        let (ok, out) = cli(
            &n.config_file,
            &["settle", "--account", &acct, "--date", "2025-06-08"],
        )
        .await;
        assert!(ok, "{out}");
        assert!(out.contains("already run"), "{out}");

        // spec: SVC-023
        // spec: SVC-138
        // spec: ING-013
        // Pushes are refused with 403 ServiceSuspended, reason suspended:nonpayment, and nothing
        // is queued; Open API writes are refused, reads still work.
        n.server.refresh_tenant_states().await.unwrap();
        // Let the inbox worker finish the push accepted while overdue, so depth 0 afterwards
        // means the refused push was not queued.
        for _ in 0..200 {
            if store.inbox_depth().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.inbox_depth().await.unwrap(), 0);
        let before = n.accepted_total().await;
        let (status, body) = n.push("a-2").await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "ServiceSuspended");
        assert_eq!(body["error"]["reason"], "suspended:nonpayment");
        assert_eq!(
            n.accepted_total().await,
            before,
            "a refused push is not queued"
        );
        assert_eq!(store.inbox_depth().await.unwrap(), 0);
        let (status, body) = n
            .api(
                "/incident/create",
                json!({"title": "manual", "incident_severity": "Critical"}),
            )
            .await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "ServiceSuspended");
        assert_eq!(body["error"]["reason"], "suspended:nonpayment");
        let (status, body) = n.api("/account/info", json!({})).await;
        assert_eq!(status, 200, "{body}");

        // spec: SVC-134
        // spec: SVC-139
        // Paying the principal alone does not lift the suspension; the penalty (¥6.97, posted
        // when the principal is paid) must be paid too.
        n.set("2025-06-08T11:00:00Z");
        let (ok, out) = cli(
            &n.config_file,
            &[
                "pay",
                "--account",
                &acct,
                "--amount",
                "1990.00",
                "--reference",
                "bank-1",
                "--at",
                "2025-06-08T11:00:00Z",
                "--actor",
                "finance:alice",
            ],
        )
        .await;
        assert!(ok, "{out}");
        assert!(out.contains("principal 1990.00, penalty 0"), "{out}");
        assert!(
            out.contains("state:          suspended(nonpayment)"),
            "{out}"
        );
        assert!(out.contains("payable total:  6.97 CNY"), "{out}");
        let (ok, out) = cli(
            &n.config_file,
            &[
                "pay",
                "--account",
                &acct,
                "--amount",
                "6.97",
                "--reference",
                "bank-2",
                "--at",
                "2025-06-08T11:00:00Z",
                "--actor",
                "finance:alice",
            ],
        )
        .await;
        assert!(ok, "{out}");
        assert!(
            out.contains("state: suspended(nonpayment) -> active"),
            "{out}"
        );
        assert!(out.contains("payable total:  0.00 CNY"), "{out}");

        // spec: SVC-139
        // Restored within a minute of the posting: this node's worker reloads the state the CLI
        // wrote (every 500 ms) without being told.
        let mut status = 0;
        for _ in 0..120 {
            status = n.push("a-3").await.0;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, 200, "pushes are accepted again after restoration");

        // spec: SVC-085
        // The ledger was reloaded from rows for every operation and still balances; the audit
        // trail names the operators and the rules of every state change.
        let t = store
            .saas_tenant(&settings, account_id, ms("2025-06-08T11:00:00Z"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            t.book.ledger().check().is_empty(),
            "{:?}",
            t.book.ledger().check()
        );
        assert_eq!(t.book.ledger().cash().to_string(), "0.00");
        let audit = store.saas_audit(account_id).await.unwrap();
        let actions: Vec<String> = audit
            .iter()
            .map(|a| format!("{} {} {}", a.1, a.2, a.3))
            .collect();
        assert!(
            actions.iter().any(|a| a.starts_with("billing-bot charge")),
            "{actions:?}"
        );
        assert!(
            actions
                .iter()
                .any(|a| a.starts_with("finance:alice payment")),
            "{actions:?}"
        );
        assert!(
            actions
                .iter()
                .any(|a| a.contains("overdue -> suspended(nonpayment)") && a.contains("SVC-137")),
            "{actions:?}"
        );
        assert!(
            actions
                .iter()
                .any(|a| a.contains("-> active") && a.contains("SVC-139")),
            "{actions:?}"
        );

        // spec: SVC-136 (at overdue, at suspension), SVC-139 (restoration notice), SVC-312
        // Each change was queued with its notice; the node gives them in-app to the owner,
        // and records the owner's e-mail as failed because this node has no e-mail sender.
        let mut given = Vec::new();
        for _ in 0..200 {
            given = store
                .saas_notices(account_id, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|n| (n.template_id, n.channel, n.status))
                .collect::<Vec<_>>();
            if given.len() >= 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        given.sort();
        let expected: Vec<(String, String, String)> = ["overdue", "restoration", "suspension"]
            .iter()
            .flat_map(|t| {
                [
                    (t.to_string(), "email".to_string(), "failed".to_string()),
                    (t.to_string(), "in_app".to_string(), "sent".to_string()),
                ]
            })
            .collect();
        assert_eq!(given, expected);

        // A bonus never pays a penalty or turns into cash, and the CLI refuses bad amounts
        // naming the field without changing anything.
        // spec: SVC-152
        let (ok, out) = cli(
            &n.config_file,
            &[
                "bonus",
                "--account",
                &acct,
                "--amount",
                "50.00",
                "--reference",
                "goodwill",
                "--at",
                "2025-06-08T11:00:00Z",
            ],
        )
        .await;
        assert!(ok, "{out}");
        assert!(out.contains("bonus:          50.00 CNY"), "{out}");
        let (ok, out) = cli(
            &n.config_file,
            &[
                "pay",
                "--account",
                &acct,
                "--amount",
                "1e3",
                "--reference",
                "x",
                "--at",
                "2025-06-08T11:00:00Z",
            ],
        )
        .await;
        assert!(!ok);
        assert!(out.contains("amount"), "{out}");
        let (ok, out) = cli(&n.config_file, &["show", "--account", "999999"]).await;
        assert!(!ok);
        assert!(out.contains("unknown account 999999"), "{out}");

        n.server.shutdown().await;
    }
);

on_both_backends!(
    self_hosted_has_no_billing_and_never_checks_pushes,
    |url: String| async move {
        // spec: SVC-400
        // spec: SVC-402
        // spec: SVC-403
        let n = Node::start(&url, "2025-06-08T09:00:00Z", |_| {}).await;
        assert!(n.server.saas_settings().is_none());
        // A billing row left in the database (e.g. a deployment switched back from SaaS, SVC-405)
        // that says `suspended` is never consulted: self-hosted pushes are not checked at all.
        let settings = {
            let mut c = Config::default();
            saas(&mut c);
            c.deployment.saas_settings().unwrap().unwrap()
        };
        let store = n.server.store();
        let account_id = n.server.bootstrap().account_id;
        store
            .saas_apply(
                &settings,
                account_id,
                ms("2025-05-31T00:30:00Z"),
                "test",
                "charge",
                |b, at| {
                    b.charge(
                        at,
                        klaxon_saas::ledger::ChargeKind::Usage,
                        "10.00".parse().unwrap(),
                        true,
                        "2025-05-31".parse().unwrap(),
                        "usage",
                        "test",
                    )?;
                    Ok("charge".into())
                },
            )
            .await
            .unwrap();
        store
            .saas_settle_due(&settings, ms("2025-06-08T09:00:00Z"))
            .await
            .unwrap();
        assert_eq!(store.saas_blocked_states().await.unwrap().len(), 1);
        n.server.refresh_tenant_states().await.unwrap();
        let (status, body) = n.push("sh-1").await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = n
            .api(
                "/incident/create",
                json!({"title": "manual", "incident_severity": "Critical"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");

        // The operator tools refuse to run self-hosted.
        let cfg = n._dir.path().join("self-hosted.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = {:?}\n{}",
                n._dir.path().display().to_string(),
                if url.is_empty() {
                    String::new()
                } else {
                    format!("database_url = {url:?}\n")
                }
            ),
        )
        .unwrap();
        let (ok, out) = cli(&cfg, &["show", "--account", &n.account]).await;
        assert!(!ok);
        assert!(out.contains("self-hosted"), "{out}");
        n.server.shutdown().await;
    }
);

#[tokio::test]
async fn saas_mode_refuses_to_start_without_its_settings() {
    // spec: SVC-400
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), "");
    saas(&mut config);
    config.deployment.documents.sla = String::new();
    let err = klaxon_server::start(config)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("sla"), "{err}");
}

on_both_backends!(
    a_suspended_tenant_is_warned_seven_days_and_one_day_before_the_purge,
    |url: String| async move {
        let n = Node::start(&url, "2025-05-31T00:30:00Z", saas).await;
        let store = n.server.store();
        let settings = n.server.saas_settings().unwrap().clone();
        let account_id = n.server.bootstrap().account_id;
        let (ok, out) = cli(
            &n.config_file,
            &[
                "charge",
                "--account",
                &n.account,
                "--amount",
                "1990.00",
                "--kind",
                "licence_cycle",
                "--reference",
                "cycle-2025-05",
                "--due",
                "2025-05-31",
                "--at",
                "2025-05-31T00:30:00Z",
                "--actor",
                "billing-bot",
            ],
        )
        .await;
        assert!(ok, "{out}");
        // Suspended 8 June 00:00 UTC, purge date 8 July 00:00 UTC (SVC-137, SVC-140).
        n.set("2025-06-08T09:00:00Z");
        store
            .saas_settle_due(&settings, ms("2025-06-08T09:00:00Z"))
            .await
            .unwrap();

        // spec: SVC-136 — a warning 7 days and 1 day before the purge date, each once, by the
        // daily job; days further out warn of nothing.
        let mut warnings = Vec::new();
        for (day, given) in [
            ("2025-06-30", 0),
            ("2025-07-01", 2),
            ("2025-07-02", 2),
            ("2025-07-06", 2),
            ("2025-07-07", 4),
        ] {
            let at = format!("{day}T09:00:00Z");
            n.set(&at);
            let run = store
                .saas_settle(&settings, account_id, day.parse().unwrap(), ms(&at), "test")
                .await
                .unwrap();
            assert!(run.ran_now, "{day}");
            assert!(run.outcome.contains("suspended"), "{day}: {}", run.outcome);
            // The node gives what the day queued (in-app and e-mail records) before the
            // clock moves on.
            for _ in 0..200 {
                warnings = store
                    .saas_notices(account_id, 0, 100)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|r| r.category == "purge_warning")
                    .map(|r| (r.template_id, r.channel, r.related, r.sent_at / 86_400_000))
                    .collect::<Vec<_>>();
                if store.saas_notice_outbox_len().await.unwrap() == 0 && warnings.len() >= given {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(warnings.len(), given, "{day}: {warnings:?}");
        }
        warnings.sort();
        let purge_ms = ms("2025-07-08T00:00:00Z");
        let day = |d: &str| ms(&format!("{d}T09:00:00Z")) / 86_400_000;
        let expected: Vec<(String, String, String, i64)> = [
            ("purge_warning_1d", "2025-07-07", "1d"),
            ("purge_warning_7d", "2025-07-01", "7d"),
        ]
        .iter()
        .flat_map(|(t, d, k)| {
            ["email", "in_app"].map(|c| {
                (
                    t.to_string(),
                    c.to_string(),
                    format!("purge_warning:{k}:{purge_ms}"),
                    day(d),
                )
            })
        })
        .collect();
        assert_eq!(warnings, expected);
        assert_eq!(store.saas_notice_outbox_len().await.unwrap(), 0);
        n.server.shutdown().await;
    }
);

on_both_backends!(self_hosted_depends_on_no_vendor, |url: String| async move {
    // spec: SVC-404
    // There is no licence key to configure: such a setting is refused as unknown.
    for text in [
        "licence_key = \"K-1\"\n",
        "license_key = \"K-1\"\n",
        "[deployment]\nlicence_key = \"K-1\"\n",
        "[deployment]\nusage_reporting_url = \"https://vendor.example\"\n",
    ] {
        assert!(Config::from_toml(text).is_err(), "{text}");
    }
    // The defaults name nothing outside the install: self-hosted, no notification provider,
    // no other region to route to. Providers and integrations exist only when the company
    // configures them.
    let c = Config::default();
    assert_eq!(c.deployment.mode, klaxon_server::config::Mode::SelfHosted);
    assert!(c.notify.email.is_none() && c.notify.email_backup.is_none());
    assert!(c.notify.twilio.is_none() && c.notify.twilio_backup.is_none());
    assert!(c.deployment.regions.is_empty());
    assert!(c.public_url.is_empty());
    // A node started with them has no SaaS runtime (no metering, reporting or switch-off),
    // and the operator API is not there at all.
    let n = Node::start(&url, "2025-06-08T09:00:00Z", |_| {}).await;
    assert!(n.server.saas_settings().is_none());
    for path in [
        "/operator/tenant/info",
        "/operator/tenant/terminate",
        "/operator/tenant/pack/buy",
    ] {
        let resp = n
            .http
            .post(format!("{}{path}", n.server.base_url()))
            .bearer_auth("kst_anything")
            .json(&json!({"account_id": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
    // A year without any contact with anyone changes nothing: pushes are accepted.
    n.set("2026-06-08T09:00:00Z");
    let (status, body) = n.push("sh-404").await;
    assert_eq!(status, 200, "{body}");
    n.server.shutdown().await;
});
