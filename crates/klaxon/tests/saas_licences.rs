//! SaaS licences end to end (docs/saas.md "Licences"): a commercial tenant without licences
//! gets `NoLicense` on an incident action and nothing changes; the operator buys licences
//! with `klaxon admin tenant licence buy`; members obtain them by acting; the next member is
//! refused until one is freed; an account-level key never needs one; and a self-hosted
//! install never checks. Time is a ManualClock; the CLI posts at the same instants (`--at`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use common::saas::{cli, cli_config, ms, saas};
use common::{ManualClock, test_config};
use klaxon_server::{Config, Server};
use serde_json::{Value, json};

struct Node {
    server: Server,
    http: reqwest::Client,
    _clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
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
        common::saas::publish_terms(&server).await;
        let account = server.bootstrap().account_id.to_string();
        Node {
            server,
            http: reqwest::Client::new(),
            _clock: clock,
            dir,
            account,
        }
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

    /// Invites a Responder through the owner and gives them a personal APP key.
    async fn member(&self, name: &str) -> (i64, String) {
        let (s, b) = self
            .api(
                &self.owner_key(),
                "/member/invite",
                json!({"members": [{"email": format!("{name}@example.com"), "role_ids": [6]}]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let id = b["data"]["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("k{id}"));
        self.server
            .store()
            .add_app_key(
                self.server.bootstrap().account_id,
                id,
                "test",
                &key,
                ms("2025-06-02T08:00:00Z"),
            )
            .await
            .unwrap()
            .unwrap();
        (id, key)
    }

    async fn account_key(&self) -> String {
        let (s, b) = self
            .api(
                &self.owner_key(),
                "/app-key/create",
                json!({"key_name": "automation", "account_level": true}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b["data"]["app_key"].as_str().unwrap().to_string()
    }

    async fn progress(&self, key: &str, id: &str) -> String {
        let (s, b) = self
            .api(key, "/incident/info", json!({"incident_id": id}))
            .await;
        assert_eq!(s, 200, "{b}");
        b["data"]["progress"].as_str().unwrap().to_string()
    }
}

fn no_licence(status: u16, body: &Value) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "NoLicense", "{body}");
}

on_both_backends!(
    members_need_licences_and_account_keys_do_not,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-02T09:00:00Z", saas).await;
        let cfg = cli_config(n.dir.path(), &url);
        let acct = n.account.clone();
        let (a, key_a) = n.member("ann").await;
        let (b, key_b) = n.member("ben").await;
        let (c, key_c) = n.member("cai").await;

        // spec: RSP-008
        // spec: SVC-052
        // An account-level key never needs a licence: it creates an incident although the
        // tenant has bought none.
        let account_key = n.account_key().await;
        let (s, body) = n
            .api(
                &account_key,
                "/incident/create",
                json!({"title": "disk full", "incident_severity": "Critical"}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let id = body["data"]["incident_id"].as_str().unwrap().to_string();

        // spec: SVC-055
        // spec: RSP-008
        // A commercial tenant without licences: a member's ack is refused with NoLicense and
        // the incident is unchanged; viewing needs a licence too, even the owner's own key.
        let (s, body) = n
            .api(&key_a, "/incident/ack", json!({"incident_ids": [id]}))
            .await;
        no_licence(s, &body);
        assert_eq!(n.progress(&account_key, &id).await, "Triggered");
        let (s, body) = n.api(&n.owner_key(), "/incident/list", json!({})).await;
        no_licence(s, &body);
        // spec: SVC-052
        // Administration and reading the licences need none.
        let (s, body) = n.api(&key_a, "/account/licence/info", json!({})).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["data"]["enforced"], true);
        assert_eq!(body["data"]["pool"], 0);
        assert_eq!(body["data"]["holders"], json!([]));
        let (s, body) = n.api(&n.owner_key(), "/member/list", json!({})).await;
        assert_eq!(s, 200, "{body}");

        // spec: SVC-082
        // spec: SVC-084
        // The operator records a payment and buys two Pro licences from the balance.
        let (ok, out) = cli(
            &cfg,
            &[
                "pay",
                "--account",
                &acct,
                "--amount",
                "500.00",
                "--reference",
                "bank-1",
                "--at",
                "2025-06-02T09:00:00Z",
            ],
        )
        .await;
        assert!(ok, "{out}");
        let (ok, out) = cli(
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
                "2",
                "--edition",
                "pro",
                "--at",
                "2025-06-02T09:00:00Z",
                "--actor",
                "sales:eve",
            ],
        )
        .await;
        assert!(ok, "{out}");
        assert!(
            out.contains("term 2 pro licences, paid 398.00 CNY, until 2025-07-02T00:00:00Z"),
            "{out}"
        );
        assert!(
            out.contains("pool:           2 (in use 0, free 2)"),
            "{out}"
        );

        // spec: SVC-055
        // Members obtain a temporary licence by acting; the third is refused and nothing
        // changes.
        let (s, body) = n
            .api(&key_a, "/incident/ack", json!({"incident_ids": [id]}))
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(n.progress(&account_key, &id).await, "Processing");
        let (s, body) = n
            .api(&key_b, "/incident/info", json!({"incident_id": id}))
            .await;
        assert_eq!(s, 200, "{body}");
        let (s, body) = n
            .api(&key_c, "/incident/resolve", json!({"incident_ids": [id]}))
            .await;
        no_licence(s, &body);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("buy licences or free one"),
            "{body}"
        );
        assert_eq!(n.progress(&account_key, &id).await, "Processing");

        // spec: SVC-054
        // The operator frees Ann's licence; Cai retries and gets it.
        let (ok, out) = cli(
            &cfg,
            &[
                "licence",
                "release",
                "--account",
                &acct,
                "--member",
                &a.to_string(),
                "--at",
                "2025-06-02T09:00:00Z",
            ],
        )
        .await;
        assert!(ok, "{out}");
        let (s, body) = n
            .api(&key_c, "/incident/resolve", json!({"incident_ids": [id]}))
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(n.progress(&account_key, &id).await, "Closed");

        // spec: SVC-053
        // spec: SVC-058
        // The pool, its holders and the cycle's active users (Ann counts although freed).
        let (s, body) = n.api(&key_c, "/account/licence/info", json!({})).await;
        assert_eq!(s, 200, "{body}");
        let d = &body["data"];
        assert_eq!(d["pool"], 2);
        assert_eq!(d["in_use"], 2);
        assert_eq!(d["free"], 0);
        assert_eq!(d["edition"], "pro");
        let holders: Vec<i64> = d["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["member_id"].as_i64().unwrap())
            .collect();
        assert_eq!(holders, vec![b, c]);
        let mut active: Vec<i64> = d["active_members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["member_id"].as_i64().unwrap())
            .collect();
        active.sort();
        assert_eq!(active, vec![a, b, c]);

        // The operator's view, and a fixed assignment that needs a free licence.
        let (ok, out) = cli(
            &cfg,
            &[
                "licence",
                "assign",
                "--account",
                &acct,
                "--member",
                &a.to_string(),
                "--at",
                "2025-06-02T09:00:00Z",
            ],
        )
        .await;
        assert!(!ok, "{out}");
        assert!(out.contains("NoLicense"), "{out}");
        let (ok, out) = cli(
            &cfg,
            &[
                "licence",
                "list",
                "--account",
                &acct,
                "--at",
                "2025-06-02T09:00:00Z",
            ],
        )
        .await;
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!("holder:         member {b} temporary")),
            "{out}"
        );
        n.server.shutdown().await;
    }
);

on_both_backends!(
    self_hosted_never_checks_licences,
    |url: String| async move {
        // spec: SVC-402
        // spec: SVC-403
        // spec: RSP-001
        // Self-hosted: no licence is ever checked or emitted; every member may act.
        let n = Node::start(&url, "2025-06-02T09:00:00Z", |_| {}).await;
        let (_, key) = n.member("sam").await;
        let (s, body) = n
            .api(
                &key,
                "/incident/create",
                json!({"title": "self-hosted", "incident_severity": "Warning"}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let id = body["data"]["incident_id"].as_str().unwrap().to_string();
        let (s, body) = n
            .api(&key, "/incident/ack", json!({"incident_ids": [id]}))
            .await;
        assert_eq!(s, 200, "{body}");
        let (s, body) = n.api(&key, "/account/licence/info", json!({})).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(
            body["data"],
            json!({"mode": "self_hosted", "enforced": false})
        );
        n.server.shutdown().await;
    }
);

on_both_backends!(
    every_order_records_the_owner_s_acceptance_of_the_terms_or_is_refused,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-02T09:00:00Z", saas).await;
        let cfg = cli_config(n.dir.path(), &url);
        let acct = n.account.clone();
        let id = n.server.bootstrap().account_id;
        let store = n.server.store();
        let at = "2025-06-02T09:00:00Z";
        let (ok, out) = cli(
            &cfg,
            &[
                "pay",
                "--account",
                &acct,
                "--amount",
                "1000.00",
                "--reference",
                "bank-1",
                "--at",
                at,
            ],
        )
        .await;
        assert!(ok, "{out}");
        let buy = |extra: &'static [&'static str]| {
            let mut args: Vec<&str> = vec![
                "licence",
                "buy",
                "--account",
                &acct,
                "--quantity",
                "1",
                "--edition",
                "pro",
                "--at",
                at,
                "--actor",
                "sales:eve",
            ];
            args.extend_from_slice(extra);
            let cfg = cfg.clone();
            let args: Vec<String> = args.into_iter().map(String::from).collect();
            async move {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                cli(&cfg, &refs).await
            }
        };

        // spec: SVC-033
        // An order without the explicit acceptance of the terms in force is refused, naming
        // the field, and nothing is bought or recorded.
        let (ok, out) = buy(&[]).await;
        assert!(!ok, "{out}");
        assert!(out.contains("accepted_by"), "{out}");
        // Only a member of the tenant who is its owner or an admin accepts for it, and the
        // evidence of where is required.
        let (ok, out) = buy(&[
            "--accepted-by",
            "stranger@example.com",
            "--accepted-from",
            "203.0.113.7",
        ])
        .await;
        assert!(!ok, "{out}");
        assert!(out.contains("not a member"), "{out}");
        let (ok, out) = buy(&[
            "--accepted-by",
            "ann@example.com",
            "--accepted-from",
            "203.0.113.7",
        ])
        .await;
        assert!(!ok, "{out}");
        assert!(out.contains("not a member"), "{out}");
        n.member("ann").await;
        let (ok, out) = buy(&[
            "--accepted-by",
            "ann@example.com",
            "--accepted-from",
            "203.0.113.7",
        ])
        .await;
        assert!(!ok, "{out}");
        assert!(out.contains("owner or an admin"), "{out}");
        let (ok, out) = buy(&["--accepted-by", "owner@klaxon.local"]).await;
        assert!(!ok, "{out}");
        assert!(out.contains("accepted_from"), "{out}");
        let settings = n.server.saas_settings().unwrap();
        let t = store
            .saas_tenant(settings, id, ms(at))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.book.ledger().cash().to_string(), "1000.00");
        assert!(store.saas_order_acceptances(id).await.unwrap().is_empty());

        // With the owner's acceptance the order goes through, and the acceptance is on
        // record: who, when, which version (with its text's hash), from where, for which
        // order, citing the tenant's decision on that version (the owner's API calls above
        // already bound it by continued use, SVC-037; a first decision would be recorded
        // as `explicit_purchase`, which the store tests check).
        let (ok, out) = buy(&common::saas::ACCEPTED).await;
        assert!(ok, "{out}");
        let terms = store.saas_documents().await.unwrap().remove(0);
        let recs = store.saas_order_acceptances(id).await.unwrap();
        assert_eq!(recs.len(), 1, "{recs:?}");
        let r = &recs[0];
        assert_eq!(r.order_kind, "licence");
        assert_eq!(r.order_ref, "licence-order:1");
        assert_eq!(
            (
                r.doc_type.as_str(),
                r.version.as_str(),
                r.content_sha256.as_str()
            ),
            ("terms_of_service", "2024-01", terms.body_sha256.as_str())
        );
        assert_eq!(
            (r.login.as_str(), r.role.as_str(), r.member_id),
            (
                "owner@klaxon.local",
                "owner",
                n.server.bootstrap().owner_member_id
            )
        );
        assert_eq!(r.accepted_at, ms(at));
        assert_eq!(r.client_ip, "203.0.113.7");
        assert_eq!(r.client_type, "staff");
        assert_eq!(r.recorded_by, "sales:eve");
        let decisions = store.saas_acceptances(id).await.unwrap();
        let d = decisions
            .iter()
            .find(|d| d.acceptance_id == r.acceptance_id)
            .unwrap();
        assert_eq!(
            (d.decision.as_str(), d.version_id),
            ("accepted", terms.version_id)
        );

        // A second order records its own acceptance, citing the same standing decision.
        let (ok, out) = buy(&common::saas::ACCEPTED).await;
        assert!(ok, "{out}");
        let recs = store.saas_order_acceptances(id).await.unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].order_ref, "licence-order:2");
        assert_eq!(recs[1].acceptance_id, r.acceptance_id);
        let (ok, out) = cli(&cfg, &["order-acceptances", "--account", &acct]).await;
        assert!(ok, "{out}");
        assert!(
            out.contains("licence licence-order:2: terms_of_service 2024-01"),
            "{out}"
        );
        assert!(
            out.contains("accepted by owner@klaxon.local (owner)"),
            "{out}"
        );

        // spec: SVC-405
        // Converting an exempt tenant to commercial needs the same explicit acceptance.
        let (ok, out) = cli(
            &cfg,
            &[
                "profile",
                "exempt",
                "--reason",
                "pilot",
                "--account",
                &acct,
                "--at",
                at,
            ],
        )
        .await;
        assert!(ok, "{out}");
        let (ok, out) = cli(
            &cfg,
            &[
                "profile",
                "commercial",
                "--reason",
                "order form 17",
                "--account",
                &acct,
                "--at",
                at,
            ],
        )
        .await;
        assert!(!ok, "{out}");
        assert!(out.contains("accepted_by"), "{out}");
        let mut args = vec![
            "profile",
            "commercial",
            "--reason",
            "order form 17",
            "--account",
            &acct,
            "--at",
            at,
        ];
        args.extend(common::saas::ACCEPTED);
        let (ok, out) = cli(&cfg, &args).await;
        assert!(ok, "{out}");
        let recs = store.saas_order_acceptances(id).await.unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2].order_kind, "conversion");
        n.server.shutdown().await;
    }
);

on_both_backends!(
    converting_an_exempt_tenant_needs_a_purchase_or_a_trial_start,
    |url: String| async move {
        let n = Node::start(&url, "2025-06-02T09:00:00Z", saas).await;
        let cfg = cli_config(n.dir.path(), &url);
        let acct = n.account.clone();
        let id = n.server.bootstrap().account_id;
        let store = n.server.store();
        let settings = n.server.saas_settings().unwrap();
        let at = "2025-06-02T09:00:00Z";
        let profile = |extra: &'static [&'static str]| {
            let mut args: Vec<&str> = vec!["profile", "--account", &acct, "--at", at];
            args.extend_from_slice(extra);
            args
        };
        let (ok, out) = cli(&cfg, &profile(&["exempt", "--reason", "pilot"])).await;
        assert!(ok, "{out}");
        // spec: SVC-405
        // Accepted terms alone do not convert a tenant without paid service: refused, and
        // it stays exempt with no acceptance recorded.
        let mut args = profile(&["commercial", "--reason", "order form 17"]);
        args.extend(common::saas::ACCEPTED);
        let (ok, out) = cli(&cfg, &args).await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-405"), "{out}");
        let t = store
            .saas_tenant(settings, id, ms(at))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.profile, klaxon_saas::mode::BillingProfile::Exempt);
        assert!(store.saas_order_acceptances(id).await.unwrap().is_empty());
        // A trial without the acceptance is refused too (SVC-033).
        let (ok, out) = cli(
            &cfg,
            &profile(&["commercial", "--reason", "trial", "--start-trial"]),
        )
        .await;
        assert!(!ok, "{out}");
        assert!(out.contains("accepted_by"), "{out}");
        // With the acceptance and a trial that starts now, it converts: commercial, in trial.
        let mut args = profile(&["commercial", "--reason", "trial", "--start-trial"]);
        args.extend(common::saas::ACCEPTED);
        let (ok, out) = cli(&cfg, &args).await;
        assert!(ok, "{out}");
        assert!(out.contains("trial started"), "{out}");
        let t = store
            .saas_tenant(settings, id, ms(at))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.profile, klaxon_saas::mode::BillingProfile::Commercial);
        assert_eq!(t.state.to_string(), "trial");
        assert_eq!(store.saas_order_acceptances(id).await.unwrap().len(), 1);
        // A trial belongs to a conversion only.
        let mut args = profile(&["commercial", "--reason", "again", "--start-trial"]);
        args.extend(common::saas::ACCEPTED);
        let (ok, out) = cli(&cfg, &args).await;
        assert!(!ok, "{out}");
        assert!(out.contains("start_trial"), "{out}");
        n.server.shutdown().await;
    }
);
