//! A tenant's life in SaaS mode, end to end (docs/saas.md): it registers and starts a trial,
//! is reminded before the trial ends, orders licences, pushes alerts that page its owner,
//! falls behind on a usage charge, becomes overdue, is suspended (its pushes refused), pays,
//! is restored, renews seamlessly, lets auto-renew fail for lack of funds, reaches the end
//! of its term, sits in the buffer and is purged — with the ledger, the states and the
//! notices checked at each step. Time is a ManualClock; the CLI posts at the same instants
//! with `--at`; the node's own worker runs the periodic jobs, and the test calls the same
//! jobs directly too (they are idempotent, so whichever runs first does the work).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::saas::{cli, cli_config, ms, saas};
use common::smtp_sink::Smtp as Sink;
use common::{ManualClock, test_config};
use jiff::Timestamp;
use klaxon_notify::{SmtpConfig, SmtpSecurity};
use klaxon_saas::agreement::DocumentType;
use klaxon_server::Server;
use klaxon_store::NewDocument;
use serde_json::{Value, json};

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
    config_file: std::path::PathBuf,
    prices: klaxon_saas::order::PriceListVersion,
    plan: klaxon_store::CommPlan,
    _sink: Sink,
}

/// The registered tenant: its account and the keys shown once at registration.
struct Tenant {
    id: i64,
    owner: i64,
    acct: String,
    app_key: String,
    integration_key: String,
}

impl Node {
    async fn start(url: &str, at: &str) -> Node {
        Node::start_with(url, at, |_| {}).await
    }

    async fn start_with(
        url: &str,
        at: &str,
        tweak: impl FnOnce(&mut klaxon_server::Config),
    ) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), url);
        saas(&mut config);
        // Owners are paged by e-mail through a local SMTP sink; e-mail is priced 25.00 a
        // message with no allowance, so every page is an overage unit (SVC-070/073).
        let sink = Sink::start().await;
        config.notify.email = Some(SmtpConfig {
            host: sink.addr.ip().to_string(),
            port: sink.addr.port(),
            security: SmtpSecurity::None,
            from: "Example Cloud <noreply@example.com>".into(),
            ..SmtpConfig::default()
        });
        config.deployment.communication.email_price = "25.00".into();
        // SVC-074: overage units may take the funds down to -100.00, so the tenant can fall
        // behind on usage (with the default 0 an unfunded unit is skipped instead).
        config.deployment.communication.overdraft_limit = "100.00".into();
        tweak(&mut config);
        let prices = config.deployment.licence_price_list().unwrap();
        let plan = config.deployment.communication_plan().unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(at))));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let config_file = cli_config(dir.path(), url);
        Node {
            server,
            http: reqwest::Client::new(),
            clock,
            _dir: dir,
            config_file,
            prices,
            plan,
            _sink: sink,
        }
    }

    fn set(&self, at: &str) {
        self.clock.0.store(ms(at), Ordering::SeqCst);
    }

    fn now(&self) -> i64 {
        self.clock.0.load(Ordering::SeqCst)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.server.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn publish(&self, t: DocumentType) -> i64 {
        let settings = self.server.saas_settings().unwrap();
        let (v, _) = self
            .server
            .store()
            .saas_publish_document(
                settings,
                &NewDocument {
                    doc_type: t,
                    version: "2025-01".into(),
                    language: "en-US".into(),
                    body: format!("{} version 2025-01\n", t.as_str()),
                    summary: "first version".into(),
                    material: false,
                    justification: String::new(),
                    published_at: self.now(),
                    effective_at: self.now(),
                    author: "legal".into(),
                },
                |_| Vec::new(),
            )
            .await
            .unwrap();
        v.version_id
    }

    /// Registers a new organisation through the public registration endpoint.
    async fn register(&self) -> Tenant {
        let ids = vec![
            self.publish(DocumentType::TermsOfService).await,
            self.publish(DocumentType::DataProtection).await,
            self.publish(DocumentType::UserAgreement).await,
        ];
        let email = "owner@month.example.com";
        self.server
            .store()
            .saas_issue_registration_code(email, "424242", "127.0.0.1", self.now())
            .await
            .unwrap();
        let (s, b) = self
            .post(
                "/auth/register/complete",
                json!({
                    "email": email,
                    "code": "424242",
                    "password": "correct horse battery",
                    "organisation": "Month Ops",
                    "legal_entity_type": "organisation",
                    "legal_name": "Month Operations Ltd",
                    "region": "cn-north",
                    "accept": ids,
                }),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let d = &b["data"];
        assert_eq!(d["state"], "trial", "{b}");
        let id = d["account_id"].as_i64().unwrap();
        Tenant {
            id,
            owner: d["member_id"].as_i64().unwrap(),
            acct: id.to_string(),
            app_key: d["app_key"].as_str().unwrap().to_string(),
            integration_key: d["integration_key"].as_str().unwrap().to_string(),
        }
    }

    async fn push(&self, t: &Tenant, key: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}/event/push/alert/standard?integration_key={}",
                self.server.base_url(),
                t.integration_key
            ))
            .json(&json!({"event_status": "Critical", "title_rule": "disk full", "alert_key": key}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn api(&self, t: &Tenant, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!(
                "{}{path}?app_key={}",
                self.server.base_url(),
                t.app_key
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn tenant(&self, t: &Tenant) -> klaxon_store::TenantBilling {
        let settings = self.server.saas_settings().unwrap();
        self.server
            .store()
            .saas_tenant(settings, t.id, self.now())
            .await
            .unwrap()
            .unwrap()
    }

    /// The tenant's state, cash, principal owed and payable total, as text.
    async fn books(&self, t: &Tenant) -> (String, String, String, String) {
        let b = self.tenant(t).await;
        let l = b.book.ledger();
        assert!(l.check().is_empty(), "{:?}", l.check());
        // A sum of zero can carry a negative sign ("-0.00"); it is still zero.
        let c = |d| b.currency.format(d).replace("-0.00", "0.00");
        (
            b.state.to_string(),
            c(l.cash()),
            c(l.debt_principal()),
            c(b.payable_total),
        )
    }

    /// Runs the billing and overdue jobs at the clock's instant (the worker may have run
    /// them already) and reloads this node's state cache.
    async fn jobs(&self) {
        let settings = self.server.saas_settings().unwrap();
        let store = self.server.store();
        store
            .saas_settle_usage_due(settings, &self.plan, self.now())
            .await
            .unwrap();
        store.saas_settle_due(settings, self.now()).await.unwrap();
        store
            .saas_billing_due(settings, Some(&self.prices), self.now())
            .await
            .unwrap();
        self.server.refresh_tenant_states().await.unwrap();
    }

    /// Waits until the worker has given the in-app notice `template` about `related`
    /// (a prefix), and returns how many such in-app notices there are.
    async fn in_app(&self, t: &Tenant, template: &str, related: &str) -> usize {
        let mut n = 0;
        for _ in 0..200 {
            n = self
                .server
                .store()
                .saas_notices(t.id, 0, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| {
                    r.account_id == t.id
                        && r.channel == "in_app"
                        && r.template_id == template
                        && r.related.starts_with(related)
                })
                .count();
            if n > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        n
    }

    /// E-mails of the tenant's incidents the SMTP server accepted on `day`, once the
    /// delivery worker has nothing left to send.
    async fn emails_sent(&self, t: &Tenant, day: &str) -> (usize, Vec<String>) {
        let from = ms(&format!("{day}T00:00:00Z"));
        let to = from + 86_400_000;
        let store = self.server.store();
        let mut n = 0;
        let mut all = Vec::new();
        for _ in 0..300 {
            let (s, b) = self
                .api(
                    t,
                    "/incident/list",
                    json!({"start_time": from / 1000 - 86_400 * 20, "end_time": to / 1000, "limit": 100}),
                )
                .await;
            assert_eq!(s, 200, "{b}");
            let ids: Vec<String> = b["data"]["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|i| i["incident_id"].as_str().unwrap().to_string())
                .collect();
            n = 0;
            all = ids.clone();
            for i in &ids {
                n += store
                    .delivery_states(t.id, i)
                    .await
                    .unwrap()
                    .iter()
                    .filter(|d| {
                        d.channel == "email"
                            && d.status == "sent"
                            && d.sent_at >= from
                            && d.sent_at < to
                    })
                    .count();
            }
            if n > 0
                && store.inbox_depth().await.unwrap() == 0
                && store.delivery_backlog().await.unwrap() == 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (n, all)
    }

    /// Runs `klaxon admin tenant …`. On SQLite the CLI is a second process beside the node's
    /// workers: a transaction that read before it writes can find the database changed and
    /// be refused ("database is locked") with nothing written, so it is run again.
    async fn cli(&self, args: &[&str]) -> String {
        for _ in 0..10 {
            let (ok, out) = cli(&self.config_file, args).await;
            if !ok && out.contains("database is locked") {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            assert!(ok, "{args:?}: {out}");
            return out;
        }
        panic!("{args:?}: the database stayed locked");
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// "123.45" → 12345 (amounts are decimal strings with two decimals in CNY).
fn cents(s: &str) -> i64 {
    let (units, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac = format!("{frac:0<2}");
    units.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap()
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

on_both_backends!(a_month_in_the_life_of_a_tenant, |url: String| async move {
    let n = Node::start(&url, "2025-05-01T10:00:00Z").await;
    let store = n.server.store();

    // spec: SVC-160
    // Registration starts a 14 × 24 h trial: it ends 2025-05-15 10:00.
    let t = n.register().await;
    let acct = t.acct.clone();
    assert_eq!(n.books(&t).await.0, "trial");
    assert_eq!(n.push(&t, "trial-1").await.0, 200);

    // spec: SVC-105
    // spec: SVC-162
    // The trial's end is announced at 10:00 on each of the 5 days before it.
    n.set("2025-05-10T10:00:00Z");
    n.jobs().await;
    let reminder = format!(
        "expiry_reminder:{}:{}",
        ms("2025-05-15T10:00:00Z"),
        ms("2025-05-10T10:00:00Z")
    );
    assert_eq!(n.in_app(&t, "expiry_reminder", &reminder).await, 1);
    // Running the job again the same day gives nothing twice.
    n.jobs().await;
    assert_eq!(n.in_app(&t, "expiry_reminder", &reminder).await, 1);

    // spec: SVC-084
    // spec: SVC-100
    // spec: SVC-101
    // The order: cash in, then ten Pro licences for a month from the balance. The payment
    // instant starts the term (2025-05-12 → 2025-06-12 00:00) and ends the trial.
    n.set("2025-05-12T09:00:00Z");
    let out = n
        .cli(&[
            "pay",
            "--account",
            &acct,
            "--amount",
            "2000.00",
            "--reference",
            "bank-1",
            "--at",
            "2025-05-12T09:00:00Z",
        ])
        .await;
    assert!(out.contains("cash:           2000.00 CNY"), "{out}");
    let out = n
        .cli(&[
            "licence",
            "buy",
            "--accepted-by",
            "owner@month.example.com",
            "--accepted-from",
            "203.0.113.7",
            "--account",
            &acct,
            "--quantity",
            "10",
            "--edition",
            "pro",
            "--at",
            "2025-05-12T09:00:00Z",
        ])
        .await;
    assert!(out.contains("paid 1990.00 CNY"), "{out}");
    assert!(out.contains("until 2025-06-12T00:00:00Z"), "{out}");
    assert!(out.contains("state: trial -> active"), "{out}");
    assert_eq!(
        n.books(&t).await,
        (
            "active".into(),
            "10.00".into(),
            "0.00".into(),
            "0.00".into()
        )
    );

    // spec: SVC-162
    // The trial's end passes without a charge or a state change: the order made it active.
    n.set("2025-05-15T11:00:00Z");
    n.jobs().await;
    assert_eq!(
        n.books(&t).await,
        (
            "active".into(),
            "10.00".into(),
            "0.00".into(),
            "0.00".into()
        )
    );

    // spec: SVC-022
    // spec: SVC-070
    // Usage: an escalation rule pages the owner by e-mail; alerts pushed on 19 May open
    // incidents, and the e-mails the SMTP server accepted are the day's metered units.
    let (s, b) = n.api(&t, "/channel/list", json!({})).await;
    assert_eq!(s, 200, "{b}");
    let channel = b["data"]["items"][0]["channel_id"].as_i64().unwrap();
    let (s, b) = n
        .api(
            &t,
            "/channel/escalate/rule/create",
            json!({
                "channel_id": channel,
                "rule_name": "Owner",
                "layers": [{"target": {"person_ids": [t.owner],
                                       "by": {"follow_preference": false, "critical": ["email"]}},
                            "escalate_window": 30}],
            }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.get("error").is_none(), "{b}");
    n.set("2025-05-19T12:00:00Z");
    assert_eq!(n.push(&t, "u-1").await.0, 200);
    let (sent, incidents) = n.emails_sent(&t, "2025-05-19").await;
    assert_eq!(sent, 1, "the owner was paged by e-mail");
    // Resolved, so no escalation timer pages again when the clock jumps ahead.
    let (s, b) = n
        .api(&t, "/incident/resolve", json!({"incident_ids": incidents}))
        .await;
    assert_eq!(s, 200, "{b}");

    // spec: SVC-073
    // spec: SVC-121
    // spec: SVC-130
    // The usage settlement of 20 May (00:30) rates 19 May: no e-mail allowance, so every
    // e-mail is overage at 25.00. The 10.00 of cash pays part; the rest is an overdue item
    // due that day, and the tenant is overdue at once.
    n.set("2025-05-20T00:30:00Z");
    n.jobs().await;
    let charge = 2500 * sent as i64; // cents
    let b = n.tenant(&t).await;
    assert_eq!(b.state.to_string(), "overdue");
    assert_eq!(b.book.ledger().cash().to_string(), "0.00");
    assert_eq!(
        cents(&b.book.ledger().debt_principal().to_string()),
        charge - 1000
    );
    let item = &b.book.items()[0];
    assert_eq!(item.origin, "usage:2025-05-19");
    assert_eq!(item.due_date.to_string(), "2025-05-20");
    let run = store
        .saas_settle_usage(
            n.server.saas_settings().unwrap(),
            &n.plan,
            t.id,
            "2025-05-20".parse().unwrap(),
            n.now(),
        )
        .await
        .unwrap();
    assert!(!run.ran_now, "a day is settled once");
    assert!(run.outcome.contains("email"), "{}", run.outcome);
    assert_eq!(n.in_app(&t, "overdue", "service_state:overdue").await, 1);

    // spec: SVC-137
    // spec: SVC-138
    // spec: ING-013
    // Due 20 May + 7 days of grace → suspended 28 May 00:00; pushes get the explicit error.
    n.set("2025-05-28T00:05:00Z");
    n.jobs().await;
    let b = n.tenant(&t).await;
    assert_eq!(b.state.to_string(), "suspended(nonpayment)");
    assert_eq!(b.since, at("2025-05-28T00:00:00Z"));
    assert_eq!(b.purge_at, Some(at("2025-06-27T00:00:00Z")));
    let (s, body) = n.push(&t, "u-4").await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "ServiceSuspended");
    assert_eq!(body["error"]["reason"], "suspended:nonpayment");
    assert_eq!(
        n.in_app(&t, "suspension", "service_state:suspended").await,
        1
    );

    // spec: SVC-132
    // spec: SVC-134
    // spec: SVC-139
    // 0.05 % a day of the unpaid principal for 21 … 27 May. Paying the payable total (and
    // 100.00 more, which stays as cash for later usage) restores at once.
    n.set("2025-05-28T09:00:00Z");
    let principal = charge - 1000;
    // principal × 0.0005 × 7, rounded half up to the cent.
    let penalty = (principal * 35 + 5000) / 10_000;
    let payable = n.books(&t).await.3;
    assert_eq!(cents(&payable), principal + penalty);
    let paid = money(principal + penalty + 10_000);
    let out = n
        .cli(&[
            "pay",
            "--account",
            &acct,
            "--amount",
            &paid,
            "--reference",
            "bank-2",
            "--at",
            "2025-05-28T09:00:00Z",
        ])
        .await;
    assert!(
        out.contains("state: suspended(nonpayment) -> active"),
        "{out}"
    );
    assert_eq!(
        n.books(&t).await,
        (
            "active".into(),
            "100.00".into(),
            "0.00".into(),
            "0.00".into()
        )
    );
    n.server.refresh_tenant_states().await.unwrap();
    assert_eq!(n.push(&t, "u-5").await.0, 200);
    assert_eq!(n.in_app(&t, "restoration", "service_state:active").await, 1);
    let (_, incidents) = n.emails_sent(&t, "2025-05-28").await;
    let (s, b) = n
        .api(&t, "/incident/resolve", json!({"incident_ids": incidents}))
        .await;
    assert_eq!(s, 200, "{b}");

    // spec: SVC-105
    // The term ends 2025-06-12 00:00: reminders from 7 June.
    n.set("2025-06-07T10:00:00Z");
    n.jobs().await;
    let first = format!(
        "expiry_reminder:{}:{}",
        ms("2025-06-12T00:00:00Z"),
        ms("2025-06-07T10:00:00Z")
    );
    assert_eq!(n.in_app(&t, "expiry_reminder", &first).await, 1);

    // spec: SVC-103
    // spec: SVC-081
    // A renewal paid before the end follows the term without a gap, keeping the anchor:
    // 2025-06-12 → 2025-07-12, at the price in force when paid.
    n.set("2025-06-08T09:00:00Z");
    let before = cents(&n.tenant(&t).await.book.ledger().cash().to_string());
    assert!(before <= 10_000, "usage was paid from the cash");
    n.cli(&[
        "pay",
        "--account",
        &acct,
        "--amount",
        "1990.00",
        "--reference",
        "bank-3",
        "--at",
        "2025-06-08T09:00:00Z",
    ])
    .await;
    let out = n
        .cli(&[
            "renew",
            "--accepted-by",
            "owner@month.example.com",
            "--accepted-from",
            "203.0.113.7",
            "--account",
            &acct,
            "--at",
            "2025-06-08T09:00:00Z",
        ])
        .await;
    assert!(
        out.contains(
            "renewal order 2: 10 pro licences, paid 1990.00 CNY, term 2025-06-12T00:00:00Z .. 2025-07-12T00:00:00Z"
        ),
        "{out}"
    );
    let b = n.books(&t).await;
    assert_eq!((b.0.as_str(), b.2.as_str()), ("active", "0.00"));
    assert_eq!(cents(&b.1), before, "the renewal took the 1990.00 paid in");
    // spec: SVC-105
    // Reminders stop once a renewal is paid: none for the old end on 9 … 11 June.
    for day in ["2025-06-09", "2025-06-10", "2025-06-11"] {
        n.set(&format!("{day}T10:00:00Z"));
        n.jobs().await;
    }
    let old_end = format!("expiry_reminder:{}:", ms("2025-06-12T00:00:00Z"));
    assert_eq!(n.in_app(&t, "expiry_reminder", &old_end).await, 1);
    n.set("2025-06-12T00:00:00Z");
    n.jobs().await;
    assert_eq!(n.books(&t).await.0, "active", "the renewed term runs on");

    // spec: SVC-104
    // Auto-renew is opt-in; at the seamless deadline (11 July 00:00) it finds no funds: one
    // notice, and another attempt every 6 h until the end, without a second notice.
    n.cli(&[
        "auto-renew",
        "--account",
        &acct,
        "on",
        "--at",
        "2025-06-12T00:00:00Z",
    ])
    .await;
    n.set("2025-07-11T00:00:00Z");
    n.jobs().await;
    let failed = format!("auto_renew_failed:{}", ms("2025-07-12T00:00:00Z"));
    assert_eq!(n.in_app(&t, "auto_renew_failed", &failed).await, 1);
    n.set("2025-07-11T06:00:00Z");
    n.jobs().await;
    let audit = store.saas_audit(t.id).await.unwrap();
    let attempts = audit.iter().filter(|a| a.2 == "auto_renew_attempt").count();
    assert_eq!(attempts, 2, "{audit:?}");
    assert!(
        audit
            .iter()
            .filter(|a| a.2 == "auto_renew_attempt")
            .all(|a| a.3.starts_with("auto-renew failed")),
        "{audit:?}"
    );
    assert_eq!(n.in_app(&t, "auto_renew_failed", &failed).await, 1);
    let orders = store
        .saas_licences(n.server.saas_settings().unwrap(), t.id, n.now())
        .await
        .unwrap()
        .orders;
    assert_eq!(orders.len(), 2, "no order was made by the failed attempts");

    // spec: SVC-106
    // spec: SVC-187
    // The term ends unrenewed: `ended(expired)` at 12 July 00:00, the buffer runs to
    // 11 August 00:00; pushes are refused, reading still works.
    n.set("2025-07-12T00:10:00Z");
    n.jobs().await;
    let b = n.tenant(&t).await;
    assert_eq!(b.state.to_string(), "ended(expired)");
    assert_eq!(b.since, at("2025-07-12T00:00:00Z"));
    assert_eq!(b.purge_at, Some(at("2025-08-11T00:00:00Z")));
    let (s, body) = n.push(&t, "u-6").await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"]["code"], "ResourceNotFound");
    assert_eq!(body["error"]["reason"], "ended:expired");
    let (s, body) = n.api(&t, "/account/info", json!({})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        n.in_app(&t, "service_ended", "service_state:ended").await,
        1
    );

    // spec: SVC-141
    // spec: SVC-190
    // The purge date passes: the purge job deletes the tenant's data; its ledger stays as the
    // operator's record and still balances.
    n.set("2025-08-11T00:10:00Z");
    let out = n.cli(&["purge", "--due", "--yes"]).await;
    assert!(out.contains(&acct), "{out}");
    let b = n.tenant(&t).await;
    assert_eq!(b.state.to_string(), "purged");
    assert!(b.book.ledger().check().is_empty());
    assert!(b.book.ledger().entries().len() >= 6);
    let (s, _) = n.push(&t, "u-7").await;
    assert_ne!(s, 200);

    n.server.shutdown().await;
});

/// A Twilio-compatible SMS API that records the form of every `Messages.json` request and
/// answers with a message sid.
#[derive(Clone, Default)]
struct SmsFake {
    sent: Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>,
}

impl SmsFake {
    async fn start() -> (SmsFake, String) {
        let fake = SmsFake::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                axum::routing::post(
                    |axum::extract::State(f): axum::extract::State<SmsFake>,
                     axum::extract::Form(form): axum::extract::Form<
                        std::collections::HashMap<String, String>,
                    >| async move {
                        let n = {
                            let mut sent = f.sent.lock().unwrap();
                            sent.push(form);
                            sent.len()
                        };
                        (
                            axum::http::StatusCode::CREATED,
                            axum::Json(json!({"sid": format!("SM{n:032}"), "status": "queued"})),
                        )
                    },
                ),
            )
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (fake, base)
    }

    fn sent(&self) -> Vec<std::collections::HashMap<String, String>> {
        self.sent.lock().unwrap().clone()
    }
}

on_both_backends!(
    expiry_reminders_reach_the_owners_verified_mobile_by_sms,
    |url: String| async move {
        // spec: SVC-316 (the expiry reminder goes by SMS, e-mail and in-app), SVC-313 (to
        // the owner), SVC-312 (each sending recorded with its channel, address and the
        // provider's message id)
        let (fake, base) = SmsFake::start().await;
        let n = Node::start_with(&url, "2025-05-01T10:00:00Z", |c| {
            c.notify.allow_private_targets = true;
            c.notify.twilio = Some(klaxon_notify::TwilioConfig {
                api_base: base.clone(),
                account_sid: "AC0123".into(),
                auth_token: "secret".into(),
                from: "+15550001111".into(),
                ..klaxon_notify::TwilioConfig::default()
            });
        })
        .await;
        let t = n.register().await;
        // The owner proves a mobile number (RSP-333).
        let store = n.server.store();
        let target = klaxon_store::ContactTarget {
            kind: klaxon_store::ContactKind::Phone,
            value: "+8613800138000".into(),
            country_code: "CN".into(),
        };
        store
            .issue_contact_code(t.id, t.owner, &target, "246810", n.now())
            .await
            .unwrap();
        store
            .confirm_contact_code(
                t.id,
                t.owner,
                klaxon_store::ContactKind::Phone,
                "246810",
                n.now(),
            )
            .await
            .unwrap();

        // Five days before the trial ends, the reminder is given in-app, by e-mail and by
        // SMS to that number.
        n.set("2025-05-10T10:00:00Z");
        n.jobs().await;
        let reminder = format!(
            "expiry_reminder:{}:{}",
            ms("2025-05-15T10:00:00Z"),
            ms("2025-05-10T10:00:00Z")
        );
        assert_eq!(n.in_app(&t, "expiry_reminder", &reminder).await, 1);
        let records = store.saas_notices(t.id, 0, 1000).await.unwrap();
        let sms: Vec<_> = records
            .iter()
            .filter(|r| r.channel == "sms" && r.related.starts_with(&reminder))
            .collect();
        assert_eq!(sms.len(), 1, "{records:?}");
        assert_eq!(sms[0].recipient, "+8613800138000");
        assert_eq!(sms[0].status, "sent");
        assert_eq!(sms[0].provider_message_id, format!("SM{:032}", 1));
        let sent = fake.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["To"], "+8613800138000");
        assert_eq!(sent[0]["From"], "+15550001111");
        assert!(sent[0]["Body"].contains(&sms[0].subject), "{sent:?}");
        assert!(
            records
                .iter()
                .any(|r| r.channel == "email" && r.related.starts_with(&reminder)),
            "{records:?}"
        );
    }
);
