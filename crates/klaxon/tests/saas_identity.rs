//! Login identifiers in SaaS mode, end to end (docs/saas.md "Dormant login identifiers"):
//! the last interactive sign-in is recorded, and a person who has not signed in for 12
//! months, with no tenant in service, is told 30 days ahead and then loses the sign-in —
//! never the tenant's data. Time is a ManualClock; the daily sweep is also run directly at
//! each instant (it runs once per billing day, whichever caller comes first).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::saas::{ms, saas};
use common::{ManualClock, test_config};
use klaxon_server::Server;
use serde_json::{Value, json};

struct Node {
    server: Server,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(url: &str, at: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), url);
        saas(&mut config);
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(at))));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        Node {
            server,
            clock,
            _dir: dir,
        }
    }

    fn set(&self, at: &str) {
        self.clock.0.store(ms(at), Ordering::SeqCst);
    }

    fn email(&self) -> String {
        self.server.bootstrap().owner_email.to_lowercase()
    }

    /// The console's password sign-in: true when it opened a session.
    async fn sign_in(&self) -> bool {
        let form = [
            ("email", self.server.bootstrap().owner_email.clone()),
            (
                "password",
                self.server.owner_password().unwrap().to_string(),
            ),
        ];
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/signin", self.server.base_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        resp.status().as_u16() == 303
    }

    /// The tenant releases its service now (SVC-186): no tenant of the owner is in force.
    async fn release(&self) {
        let settings = self.server.saas_settings().unwrap();
        let rec = self
            .server
            .store()
            .saas_terminate(
                settings,
                self.server.bootstrap().account_id,
                &klaxon_store::NewTermination {
                    kind: klaxon_store::TerminationKind::Cancel,
                    effective_at: None,
                    reference: "owner-request-1".into(),
                    category: String::new(),
                    evidence: Vec::new(),
                    proposer: String::new(),
                    approver: String::new(),
                    agreed_refund: None,
                    removed_at: None,
                    delete_early: false,
                    export_block_basis: String::new(),
                },
                self.clock.0.load(Ordering::SeqCst),
                "owner",
            )
            .await
            .unwrap();
        assert_eq!(rec.state, "done", "{}", rec.outcome);
    }

    async fn sweep(&self) {
        let settings = self.server.saas_settings().unwrap();
        self.server
            .store()
            .saas_dormant_logins_due(settings, self.clock.0.load(Ordering::SeqCst))
            .await
            .unwrap();
    }

    /// (noticed_at, deactivate_at, deactivated_at) of the owner's login identifier.
    async fn records(&self) -> Vec<(i64, i64, i64)> {
        self.server
            .store()
            .saas_dormant_login_records(&self.email())
            .await
            .unwrap()
    }

    async fn api(&self, path: &str, body: Value) -> Value {
        let resp = reqwest::Client::new()
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
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.get("error").is_none(), "{path}: {body}");
        body["data"].clone()
    }

    /// Pushes a Critical alert and waits (bounded) for its incident's notification entry;
    /// returns the persons it lists. Used once per node.
    async fn notified(&self, key: &str) -> Vec<Value> {
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/event/push/alert/standard?integration_key={}",
                self.server.base_url(),
                self.server.bootstrap().integration_key
            ))
            .json(&json!({"event_status": "Critical", "title_rule": "db down", "alert_key": key}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let now = self.clock.0.load(Ordering::SeqCst) / 1000;
        for _ in 0..200 {
            let list = self
                .api(
                    "/incident/list",
                    json!({"start_time": now - 86_400, "end_time": now + 86_400, "limit": 100}),
                )
                .await;
            // One incident per test: the first with the title is the one.
            let found = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["title"].as_str() == Some("db down"));
            if let Some(id) = found.and_then(|i| i["incident_id"].as_str()) {
                let feed = self
                    .api(
                        "/incident/feed",
                        json!({"incident_id": id, "asc": true, "limit": 100}),
                    )
                    .await;
                if let Some(e) = feed["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["type"] == "i_notify")
                {
                    return e["detail"]["persons"].as_array().unwrap().clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no notification entry for {key}");
    }

    async fn stop(self) {
        self.server.shutdown().await;
    }
}

on_both_backends!(
    dormant_identifier_is_told_then_deactivated_without_touching_tenant_data,
    |url: String| async move {
        let n = Node::start(&url, "2025-01-01T09:00:00Z").await;
        let store = n.server.store();
        let account_id = n.server.bootstrap().account_id;
        let owner = n.server.bootstrap().owner_member_id;
        // spec: SVC-009
        // The interactive sign-in is recorded on the membership.
        assert!(n.sign_in().await);

        // 11½ months later the tenant is still in service: nothing happens.
        n.set("2025-12-15T10:00:00Z");
        n.sweep().await;
        assert!(n.records().await.is_empty());

        // Once no tenant of the person is in force, the 30-day notice goes out; the
        // deactivation is never sooner than 30 days after it, even though the 12 months
        // end on 1 January.
        n.release().await;
        n.set("2025-12-16T10:00:00Z");
        n.sweep().await;
        let records = n.records().await;
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].0, ms("2025-12-16T10:00:00Z"));
        assert_eq!(records[0].1, ms("2026-01-15T10:00:00Z"));
        assert_eq!(records[0].2, 0);
        // The notice is the person's: it is e-mailed to the login identifier itself.
        let mut given = Vec::new();
        for _ in 0..200 {
            given = store
                .saas_notices(account_id, 0, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.template_id == "dormant_login")
                .collect();
            if !given.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(given.len(), 1, "{given:?}");
        assert_eq!(given[0].channel, "email");
        assert_eq!(given[0].recipient.to_lowercase(), n.email());
        assert!(
            given[0].content.contains("2026-01-15 10:00 UTC"),
            "{}",
            given[0].content
        );

        // The day before, the sign-in still exists; a second sweep sends no second notice.
        n.set("2026-01-14T10:00:00Z");
        n.sweep().await;
        assert_eq!(n.records().await.len(), 1);
        assert_eq!(store.login_candidates(&n.email()).await.unwrap().len(), 1);

        // On the day the identifier is deactivated: no password, no sign-in code, and the
        // address is free for a new registration (no identity holds it any more).
        n.set("2026-01-15T11:00:00Z");
        n.sweep().await;
        let records = n.records().await;
        assert_eq!(records[0].2, ms("2026-01-15T11:00:00Z"), "{records:?}");
        assert!(!n.sign_in().await);
        assert!(store.login_candidates(&n.email()).await.unwrap().is_empty());
        assert!(store.code_candidates(&n.email()).await.unwrap().is_empty());
        // The tenant's data is untouched: the member, its address and the account remain.
        let member = store.member(account_id, owner).await.unwrap().unwrap();
        assert_eq!(member.email.to_lowercase(), n.email());
        assert!(store.account(account_id).await.unwrap().is_some());
        n.stop().await;
    }
);

on_both_backends!(
    a_sign_in_after_the_notice_keeps_the_identifier,
    |url: String| async move {
        let n = Node::start(&url, "2025-01-01T09:00:00Z").await;
        assert!(n.sign_in().await);
        n.release().await;
        // spec: SVC-009
        n.set("2025-12-10T10:00:00Z");
        n.sweep().await;
        assert_eq!(n.records().await.len(), 1);
        // The person signs in before the deadline: the notice lapses.
        n.set("2025-12-20T10:00:00Z");
        assert!(n.sign_in().await);
        n.set("2026-01-20T10:00:00Z");
        n.sweep().await;
        let records = n.records().await;
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].2, 0, "not deactivated: {records:?}");
        assert!(n.sign_in().await);
        n.stop().await;
    }
);

on_both_backends!(
    an_invited_member_is_activated_by_the_first_sign_in_and_not_notified_before,
    |url: String| async move {
        let n = Node::start(&url, "2025-01-01T09:00:00Z").await;
        let store = n.server.store();
        let account_id = n.server.bootstrap().account_id;
        // Licences are not what this test is about: an exempt tenant needs none (SVC-401).
        store
            .saas_set_profile(
                n.server.saas_settings().unwrap(),
                account_id,
                klaxon_saas::mode::BillingProfile::Exempt,
                "internal test tenant",
                None,
                false,
                n.clock.0.load(Ordering::SeqCst),
                "test",
            )
            .await
            .unwrap();
        // spec: SVC-034
        let invited = n
            .api(
                "/member/invite",
                json!({"members": [{"member_name": "New Hire", "email": "new.hire@example.com"}]}),
            )
            .await;
        let hire = invited["items"][0]["member_id"].as_i64().unwrap();
        assert_eq!(
            store
                .member(account_id, hire)
                .await
                .unwrap()
                .unwrap()
                .status,
            "pending"
        );
        n.api(
            "/channel/escalate/rule/create",
            json!({
                "channel_id": n.server.bootstrap().channel_id,
                "rule_name": "New hire",
                "layers": [{"target": {"person_ids": [hire], "by": {"follow_preference": true}},
                            "escalate_window": 15}],
            }),
        )
        .await;
        // Not activated: reported, never notified.
        let persons = n.notified("svc-034-a").await;
        assert!(
            persons
                .iter()
                .any(|p| p["person_id"] == hire && p["failed_reason"] == "member_inactive"),
            "{persons:?}"
        );
        // The first interactive sign-in (every sign-in path opens its session this way)
        // activates the member and is recorded as the last sign-in (SVC-009).
        let now = n.clock.0.load(Ordering::SeqCst);
        store
            .create_session(account_id, hire, 3_600_000, now)
            .await
            .unwrap();
        assert_eq!(
            store
                .member(account_id, hire)
                .await
                .unwrap()
                .unwrap()
                .status,
            "enabled"
        );
        n.stop().await;
    }
);
