//! Cross-region transfers end to end (docs/saas.md "Cross-region transfers"): the owner
//! gives and revokes consent over the Open API; staff hand the tenant's package to another
//! region with `klaxon admin tenant transfer` only under a matching consent or a lawful
//! order on the register; every transfer is recorded and written to the tenant's audit log.
//! Time is a ManualClock; the CLI posts at the same instants (`--at`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use common::saas::{cli, cli_config, ms, saas};
use common::{ManualClock, test_config};
use klaxon_server::Server;
use klaxon_server::config::RegionConfig;
use serde_json::{Value, json};

const AT: &str = "2025-06-02T09:00:00Z";

struct Node {
    server: Server,
    http: reqwest::Client,
    _clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    account: i64,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        Node::start_at(tempfile::tempdir().unwrap(), database_url, "cn-north").await
    }

    /// A node of `region` over its data directory `dir` (the CLI config of
    /// [`region_config`] in `dir` matches it).
    async fn start_at(dir: tempfile::TempDir, database_url: &str, region: &str) -> Node {
        let mut config = test_config(dir.path(), database_url);
        saas(&mut config);
        config.deployment.region = region.into();
        config.deployment.regions = ["cn-north", "eu-west"]
            .into_iter()
            .map(|id| RegionConfig {
                id: id.into(),
                name: id.into(),
                base_url: format!("https://{id}.example.com"),
            })
            .collect();
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(AT))));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let account = server.bootstrap().account_id;
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

    /// An Admin (role 2) with a personal APP key.
    async fn admin(&self) -> String {
        let (s, b) = self
            .api(
                &self.owner_key(),
                "/member/invite",
                json!({"members": [{"email": "ada@example.com", "role_ids": [2]}]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let id = b["data"]["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("a{id}"));
        self.server
            .store()
            .add_app_key(self.account, id, "test", &key, ms(AT))
            .await
            .unwrap()
            .unwrap();
        key
    }

    /// `klaxon admin tenant transfer … --out <dir>/<file>`: (ok, output, package path).
    async fn transfer(
        &self,
        url: &str,
        extra: &[&str],
        file: &str,
    ) -> (bool, String, std::path::PathBuf) {
        let cfg = cli_config(self.dir.path(), url);
        let out = self.dir.path().join(file);
        let acct = self.account.to_string();
        let mut args = vec![
            "transfer",
            "--account",
            &acct,
            "--at",
            AT,
            "--actor",
            "staff:7",
        ];
        args.extend_from_slice(extra);
        let out_text = out.display().to_string();
        args.extend(["--out", &out_text]);
        let (ok, text) = cli(&cfg, &args).await;
        (ok, text, out)
    }
}

/// The CLI config of a deployment in `region` over `database_url`, in `dir`.
fn region_config(dir: &std::path::Path, database_url: &str, region: &str) -> std::path::PathBuf {
    let path = cli_config(dir, database_url);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("region = \"cn-north\"", &format!("region = {region:?}"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The rows of `table` in the account's export snapshot, without the account id (which an
/// import changes).
async fn rows_of(
    store: &klaxon_store::Store,
    account: i64,
    table: &str,
) -> Vec<serde_json::Map<String, Value>> {
    let tables = store.export_snapshot(account).await.unwrap();
    let t = tables.iter().find(|t| t.table == table).unwrap();
    t.rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.remove("account_id");
            r
        })
        .collect()
}

const ALL: [&str; 4] = [
    "configuration",
    "incidents_and_alerts",
    "members_and_contacts",
    "audit_log",
];

fn invalid(status: u16, body: &Value, needle: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "InvalidParameter", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(needle),
        "{needle}: {body}"
    );
}

on_both_backends!(
    data_leaves_the_region_only_under_consent_or_a_lawful_order,
    |url: String| async move {
        let n = Node::start(&url).await;
        let owner = n.owner_key();
        let store = n.server.store();

        // spec: SVC-212
        // The owner consents, naming purpose, destination and data categories. A
        // destination that is the tenant's own region or not one of the operator's, and an
        // unknown category, are refused and nothing is recorded.
        let consent = |dest: &str, cats: &[&str]| json!({"purpose": "region_migration", "destination_region": dest, "categories": cats});
        let (s, b) = n
            .api(
                &owner,
                "/account/transfer-consent/create",
                consent("cn-north", &ALL),
            )
            .await;
        invalid(s, &b, "own region");
        let (s, b) = n
            .api(
                &owner,
                "/account/transfer-consent/create",
                consent("mars-1", &ALL),
            )
            .await;
        invalid(s, &b, "not one of the operator's regions");
        let (s, b) = n
            .api(
                &owner,
                "/account/transfer-consent/create",
                consent("eu-west", &["payloads"]),
            )
            .await;
        invalid(s, &b, "categories");
        // spec: SVC-003
        // The consent is the owner's: an Admin may read it but not give it.
        let admin = n.admin().await;
        let (s, b) = n
            .api(
                &admin,
                "/account/transfer-consent/create",
                consent("eu-west", &ALL),
            )
            .await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(b["error"]["code"], "AccessDenied", "{b}");
        assert!(
            store
                .saas_transfer_consents(n.account)
                .await
                .unwrap()
                .is_empty()
        );

        // spec: SVC-215
        // Without a consent, a staff-assisted migration is refused: no package, no record.
        let (ok, out, file) = n
            .transfer(
                &url,
                &["--purpose", "region_migration", "--to-region", "eu-west"],
                "p0.tgz",
            )
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-212"), "{out}");
        assert!(!file.exists());
        assert!(store.saas_transfers(n.account).await.unwrap().is_empty());

        // spec: SVC-212
        // A consent to moving only the configuration does not cover the full package.
        let (s, b) = n
            .api(
                &owner,
                "/account/transfer-consent/create",
                consent("eu-west", &["configuration"]),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (ok, out, _) = n
            .transfer(
                &url,
                &["--purpose", "region_migration", "--to-region", "eu-west"],
                "p1.tgz",
            )
            .await;
        assert!(!ok, "{out}");
        // The full consent: recorded with who gave it and when.
        let (s, b) = n
            .api(
                &owner,
                "/account/transfer-consent/create",
                consent("eu-west", &ALL),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let consent_id = b["data"]["consent_id"].as_i64().unwrap();
        assert_eq!(b["data"]["status"], "in_force");
        assert_eq!(b["data"]["given_by_login"], "owner@klaxon.local");
        assert_eq!(b["data"]["given_at"], ms(AT) / 1000);
        let (s, b) = n
            .api(&admin, "/account/transfer-consent/list", json!({}))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["total"], 2, "{b}");

        // It covers a migration to that region, not an export or another destination.
        let (ok, out, _) = n
            .transfer(
                &url,
                &["--purpose", "export", "--to-region", "eu-west"],
                "p2.tgz",
            )
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-212"), "{out}");
        let (ok, out, file) = n
            .transfer(
                &url,
                &["--purpose", "region_migration", "--to-region", "eu-west"],
                "p3.tgz",
            )
            .await;
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!("under consent {consent_id}")),
            "{out}"
        );
        let package = std::fs::read(&file).unwrap();
        let transfers = store.saas_transfers(n.account).await.unwrap();
        assert_eq!(transfers.len(), 1);
        let t = &transfers[0];
        assert_eq!(
            (
                t.purpose.as_str(),
                t.destination_region.as_str(),
                t.consent_id,
                t.lawful_request_id
            ),
            ("region_migration", "eu-west", consent_id, 0)
        );
        assert_eq!((t.actor.as_str(), t.at), ("staff:7", ms(AT)));
        assert_eq!(t.package_sha256.len(), 64);
        assert!(!package.is_empty());
        // Every use is in the tenant's own audit log.
        let log = common::saas::tenant_audit(store, n.account, ms(AT)).await;
        let used: Vec<_> = log
            .iter()
            .filter(|r| r.operation == "transfer:cross_region")
            .collect();
        assert_eq!(used.len(), 1, "{log:?}");
        assert_eq!(used[0].member_name, "staff:7");
        assert!(used[0].body.contains(&t.package_sha256), "{}", used[0].body);

        // DESIGN.md principle 6: another tenant neither sees nor revokes the consent.
        let b = store
            .create_account(
                &klaxon_store::BootstrapSeed {
                    account_name: "Tenant B".into(),
                    owner_email: "owner@tenant-b.example".into(),
                    owner_name: "B Owner".into(),
                    owner_password: "another long password".into(),
                    app_key: format!("{:0>32}", "b1"),
                    integration_key: format!("{:0>32}", "b2"),
                },
                ms(AT),
            )
            .await
            .unwrap();
        let (s, body) = n
            .api(&b.app_key, "/account/transfer-consent/list", json!({}))
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(body["data"]["total"], 0, "{body}");
        let (s, body) = n
            .api(
                &b.app_key,
                "/account/transfer-consent/revoke",
                json!({"consent_id": consent_id}),
            )
            .await;
        assert_eq!(s, 400, "{body}");
        assert_eq!(body["error"]["code"], "ResourceNotFound", "{body}");
        assert_eq!(
            store.saas_transfer_consents(n.account).await.unwrap()[1].revoked_at,
            0
        );

        // Revoked, the consent covers nothing more.
        let (s, b) = n
            .api(
                &owner,
                "/account/transfer-consent/revoke",
                json!({"consent_id": consent_id}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["status"], "revoked");
        let (s, b) = n
            .api(
                &owner,
                "/account/transfer-consent/revoke",
                json!({"consent_id": consent_id}),
            )
            .await;
        invalid(s, &b, "already revoked");
        let (ok, out, _) = n
            .transfer(
                &url,
                &["--purpose", "region_migration", "--to-region", "eu-west"],
                "p4.tgz",
            )
            .await;
        assert!(!ok, "{out}");

        // spec: SVC-224
        // A lawful order on the register is a basis of its own; one of another tenant is not.
        let lawful = store
            .lawful_record(
                &klaxon_store::NewLawfulRequest {
                    account_id: n.account,
                    authority: "Court of Example".into(),
                    legal_basis: "mutual legal assistance".into(),
                    reference: "MLA-2025-9".into(),
                    received_on: "2025-06-01".into(),
                    scope_requested: "the tenant's data".into(),
                    nondisclosure: false,
                    nondisclosure_until: 0,
                    notice_decision: "before".into(),
                    notified_on: String::new(),
                    recorded_by: 1,
                },
                ms(AT),
            )
            .await
            .unwrap();
        let other = (lawful + 1000).to_string();
        let (ok, out, _) = n
            .transfer(
                &url,
                &[
                    "--purpose",
                    "export",
                    "--to-region",
                    "eu-west",
                    "--lawful-request",
                    &other,
                ],
                "p5.tgz",
            )
            .await;
        assert!(!ok, "{out}");
        assert!(out.contains("lawful_request_id"), "{out}");
        let id = lawful.to_string();
        let (ok, out, file) = n
            .transfer(
                &url,
                &[
                    "--purpose",
                    "export",
                    "--to-region",
                    "eu-west",
                    "--lawful-request",
                    &id,
                ],
                "p6.tgz",
            )
            .await;
        assert!(ok, "{out}");
        assert!(file.exists());
        let transfers = store.saas_transfers(n.account).await.unwrap();
        assert_eq!(transfers.len(), 2);
        assert_eq!(
            (transfers[1].consent_id, transfers[1].lawful_request_id),
            (0, lawful)
        );
        n.server.shutdown().await;
    }
);

fn lawful_order(account_id: i64) -> klaxon_store::NewLawfulRequest {
    klaxon_store::NewLawfulRequest {
        account_id,
        authority: "Court of Example".into(),
        legal_basis: "mutual legal assistance".into(),
        reference: "MLA-2025-11".into(),
        received_on: "2025-06-01".into(),
        scope_requested: "the tenant's data".into(),
        nondisclosure: false,
        nondisclosure_until: 0,
        notice_decision: "before".into(),
        notified_on: String::new(),
        recorded_by: 1,
    }
}

on_both_backends!(
    an_export_block_refuses_a_transfer_under_consent_not_under_a_lawful_order,
    |url: String| async move {
        let n = Node::start(&url).await;
        let store = n.server.store();
        let settings = n.server.saas_settings().unwrap();
        let (s, b) = n
            .api(
                &n.owner_key(),
                "/account/transfer-consent/create",
                json!({"purpose": "region_migration", "destination_region": "eu-west", "categories": ALL}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        // A termination for serious breach that blocks the export (SVC-232).
        let rec = store
            .saas_terminate(
                settings,
                n.account,
                &klaxon_store::NewTermination {
                    kind: klaxon_store::TerminationKind::Breach,
                    effective_at: None,
                    reference: "case-9".into(),
                    category: "unlawful_content".into(),
                    evidence: vec!["report-12".into()],
                    proposer: "alice".into(),
                    approver: "bob".into(),
                    agreed_refund: None,
                    removed_at: None,
                    delete_early: false,
                    export_block_basis: "court order 12/2025".into(),
                },
                ms(AT),
                "staff:7",
            )
            .await
            .unwrap();
        assert_eq!(rec.state, "done", "{}", rec.outcome);

        // spec: SVC-232
        // The consent covers the move, but the block refuses it: no package, no record, no
        // audit entry.
        let migrate = ["--purpose", "region_migration", "--to-region", "eu-west"];
        let (ok, out, file) = n.transfer(&url, &migrate, "blocked.tgz").await;
        assert!(!ok, "{out}");
        assert!(out.contains("SVC-232"), "{out}");
        assert!(out.contains("court order 12/2025"), "{out}");
        assert!(!file.exists());
        assert!(store.saas_transfers(n.account).await.unwrap().is_empty());
        let log = common::saas::tenant_audit(store, n.account, ms(AT)).await;
        assert!(
            !log.iter().any(|r| r.operation == "transfer:cross_region"),
            "{log:?}"
        );

        // spec: SVC-224
        // A lawful order is not the tenant's export: it still proceeds.
        let lawful = store
            .lawful_record(&lawful_order(n.account), ms(AT))
            .await
            .unwrap();
        let id = lawful.to_string();
        let mut args = migrate.to_vec();
        args.extend(["--lawful-request", &id]);
        let (ok, out, file) = n.transfer(&url, &args, "ordered.tgz").await;
        assert!(ok, "{out}");
        assert!(file.exists());
        let transfers = store.saas_transfers(n.account).await.unwrap();
        assert_eq!(transfers.len(), 1);
        assert_eq!(
            (transfers[0].consent_id, transfers[0].lawful_request_id),
            (0, lawful)
        );

        // spec: SVC-237
        // Once staff lift the block, the consent covers the move again.
        store
            .saas_lift_export_block(
                settings,
                n.account,
                &klaxon_store::LiftExportBlock {
                    reason: "appeal upheld".into(),
                    reference: "appeal-31".into(),
                    proposer: "alice".into(),
                    approver: "bob".into(),
                },
                ms(AT),
                "staff:7",
            )
            .await
            .unwrap();
        let (ok, out, file) = n.transfer(&url, &migrate, "lifted.tgz").await;
        assert!(ok, "{out}");
        assert!(file.exists());
        assert_eq!(store.saas_transfers(n.account).await.unwrap().len(), 2);
        n.server.shutdown().await;
    }
);

on_both_backends!(
    a_tenant_moves_to_another_region_and_its_source_copy_is_purged,
    |url: String| async move {
        let n = Node::start(&url).await;
        let store = n.server.store();
        let owner = n.owner_key();
        // Licences are not what this test is about: an exempt tenant needs none (SVC-401).
        store
            .saas_set_profile(
                n.server.saas_settings().unwrap(),
                n.account,
                klaxon_saas::mode::BillingProfile::Exempt,
                "the operator's own tenant",
                None,
                false,
                ms(AT),
                "ops",
            )
            .await
            .unwrap();
        // Some data of every kind: an incident, a second member, the audit log they leave.
        let channel_id = n.server.bootstrap().channel_id;
        let mut incident_ids = Vec::new();
        for title in ["disk full on db-1", "数据库连接超时"] {
            let (s, b) = n
                .api(
                    &owner,
                    "/incident/create",
                    json!({"title": title, "incident_severity": "Warning",
                           "channel_id": channel_id, "description": "seen at 09:00"}),
                )
                .await;
            assert_eq!(s, 200, "{b}");
            incident_ids.push(b["data"]["incident_id"].as_str().unwrap().to_string());
        }
        let _admin = n.admin().await;

        // spec: SVC-215
        // The owner consents to the move; staff transfer the package.
        let (s, b) = n
            .api(
                &owner,
                "/account/transfer-consent/create",
                json!({"purpose": "region_migration", "destination_region": "eu-west", "categories": ALL}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (ok, out, package) = n
            .transfer(
                &url,
                &["--purpose", "region_migration", "--to-region", "eu-west"],
                "move.tgz",
            )
            .await;
        assert!(ok, "{out}");
        let t = store.saas_transfers(n.account).await.unwrap().remove(0);
        let transfer_id = t.transfer_id.to_string();
        // What the package holds, as the destination must hold it.
        let in_package =
            klaxon_server::backup::read_export_archive(&std::fs::read(&package).unwrap()).unwrap();
        assert_eq!(in_package.account_id, n.account);
        let packaged = |table: &str| {
            in_package
                .tables
                .iter()
                .find(|t| t.table == table)
                .unwrap()
                .rows
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.remove("account_id");
                    r
                })
                .collect::<Vec<_>>()
        };
        let incidents = packaged("incidents");
        let members = packaged("members");
        assert_eq!(incidents.len(), 2);
        assert_eq!(members.len(), 2);

        // The destination: another deployment (eu-west) over a database of its own.
        let dest_url = if url.is_empty() {
            String::new()
        } else {
            common::fresh_postgres().await.unwrap()
        };
        let dest_dir = tempfile::tempdir().unwrap();
        let dest_cfg = region_config(dest_dir.path(), &dest_url, "eu-west");
        let package_text = package.display().to_string();
        let import = |sha: String, region: &'static str| {
            let cfg = dest_cfg.clone();
            let package_text = package_text.clone();
            let transfer_id = transfer_id.clone();
            async move {
                cli(
                    &cfg,
                    &[
                        "import",
                        "--package",
                        &package_text,
                        "--sha256",
                        &sha,
                        "--source-region",
                        region,
                        "--transfer",
                        &transfer_id,
                        "--actor",
                        "staff:9",
                    ],
                )
                .await
            }
        };
        // A package that is not the one transferred is refused.
        let wrong = format!("{:0>64}", "1");
        let (ok, out) = import(wrong, "cn-north").await;
        assert!(!ok, "{out}");
        assert!(out.contains("SHA-256"), "{out}");
        // The package names where it comes from: another claimed source is refused.
        let (ok, out) = import(t.package_sha256.clone(), "eu-west").await;
        assert!(!ok, "{out}");
        assert!(out.contains("transferred from \"cn-north\""), "{out}");
        // It names where it goes: another region's deployment refuses it.
        let other_dir = tempfile::tempdir().unwrap();
        let other_cfg = region_config(other_dir.path(), "", "ap-south");
        let (ok, out) = cli(
            &other_cfg,
            &[
                "import",
                "--package",
                &package_text,
                "--sha256",
                &t.package_sha256,
                "--source-region",
                "cn-north",
                "--transfer",
                &transfer_id,
                "--actor",
                "staff:9",
            ],
        )
        .await;
        assert!(!ok, "{out}");
        assert!(out.contains("transferred to region \"eu-west\""), "{out}");
        // The real one becomes a new tenant there.
        let (ok, out) = import(t.package_sha256.clone(), "cn-north").await;
        assert!(ok, "{out}");
        let new_account: i64 = out
            .split(" is account ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no new account in {out}"));
        // Imported once only.
        let (ok, out) = import(t.package_sha256.clone(), "cn-north").await;
        assert!(!ok, "{out}");
        assert!(out.contains("imported already"), "{out}");

        // The destination tenant holds the same incidents, members and configuration, under
        // its new account id; where it came from is recorded, and the move is in its audit log.
        let dest = Node::start_at(dest_dir, &dest_url, "eu-west").await;
        let dstore = dest.server.store();
        assert_eq!(
            dest.account, new_account,
            "the only tenant of the destination"
        );
        assert_eq!(rows_of(dstore, new_account, "incidents").await, incidents);
        let dest_members = rows_of(dstore, new_account, "members").await;
        assert_eq!(dest_members.len(), 2);
        for (a, b) in members.iter().zip(&dest_members) {
            assert_eq!(
                (&a["member_id"], &a["email"]),
                (&b["member_id"], &b["email"])
            );
        }
        assert_eq!(
            rows_of(dstore, new_account, "channels").await,
            packaged("channels")
        );
        assert_eq!(
            rows_of(dstore, new_account, "incident_timeline").await,
            packaged("incident_timeline")
        );
        let imports = dstore.saas_transfer_imports().await.unwrap();
        assert_eq!(imports.len(), 1);
        let i = &imports[0];
        assert_eq!(
            (
                i.account_id,
                i.source_region.as_str(),
                i.source_account_id,
                i.source_transfer_id,
                i.package_sha256.as_str(),
                i.actor.as_str()
            ),
            (
                new_account,
                "cn-north",
                n.account,
                t.transfer_id,
                t.package_sha256.as_str(),
                "staff:9"
            )
        );
        let log = common::saas::tenant_audit(dstore, new_account, common::wall_ms()).await;
        assert!(
            log.iter().any(|r| r.operation == "transfer:import"),
            "{log:?}"
        );
        // Secrets stayed out: the integration has a new key, no API key came along. With a
        // key the owner creates, the incidents read as they did at the source.
        assert!(
            dstore
                .integration_by_key(n.server.bootstrap().integration_key.as_str())
                .await
                .unwrap()
                .is_none()
        );
        let owner_member = dest_members
            .iter()
            .find(|m| m["is_owner"] == 1)
            .and_then(|m| m["member_id"].as_i64())
            .unwrap();
        // Billing is set up anew at the destination; here the tenant stays the operator's own.
        dstore
            .saas_set_profile(
                dest.server.saas_settings().unwrap(),
                new_account,
                klaxon_saas::mode::BillingProfile::Exempt,
                "the operator's own tenant",
                None,
                false,
                ms(AT),
                "ops",
            )
            .await
            .unwrap();
        let key = format!("{:0>32}", "d1");
        dstore
            .add_app_key(new_account, owner_member, "after the move", &key, ms(AT))
            .await
            .unwrap()
            .unwrap();
        let (s, b) = dest
            .api(
                &key,
                "/incident/info",
                json!({"incident_id": incident_ids[1]}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["title"], "数据库连接超时", "{b}");

        // spec: SVC-190
        // spec: SVC-191
        // Back at the source: once the import is reported done, the source copy is purged
        // with a signed certificate that names the transfer.
        let cfg = cli_config(n.dir.path(), &url);
        let new_id = new_account.to_string();
        let complete = [
            "transfer-complete",
            "--transfer",
            &transfer_id,
            "--destination-account",
            &new_id,
            "--actor",
            "staff:7",
        ];
        let (ok, out) = cli(&cfg, &complete).await;
        assert!(!ok, "{out}");
        assert!(out.contains("--yes"), "{out}");
        assert_eq!(
            store.saas_transfers(n.account).await.unwrap()[0].completed_at,
            0
        );
        let mut confirmed = complete.to_vec();
        confirmed.push("--yes");
        let (ok, out) = cli(&cfg, &confirmed).await;
        assert!(ok, "{out}");
        let done = store.saas_transfers(n.account).await.unwrap().remove(0);
        assert!(done.completed_at > 0);
        assert_eq!(
            (done.completed_by.as_str(), done.destination_account_id),
            ("staff:7", new_account)
        );
        assert!(
            store
                .tenant_row_counts(n.account)
                .await
                .unwrap()
                .iter()
                .all(|(_, rows)| *rows == 0)
        );
        let certs = store.purge_certificates(n.account).await.unwrap();
        assert_eq!(certs.len(), 1);
        let body = &certs[0].body;
        assert!(body.contains("region_transfer"), "{body}");
        assert!(
            body.contains(&format!("by transfer {}", t.transfer_id)),
            "{body}"
        );
        assert!(
            matches!(
                klaxon_server::backup::check_certificate(body, None),
                klaxon_server::backup::CertificateCheck::Valid { .. }
            ),
            "{body}"
        );
        // A transfer is completed once.
        let (ok, out) = cli(&cfg, &confirmed).await;
        assert!(!ok, "{out}");
        assert!(out.contains("completed already"), "{out}");
        // The destination is untouched by the source's purge.
        assert_eq!(rows_of(dstore, new_account, "incidents").await, incidents);
        dest.server.shutdown().await;
        n.server.shutdown().await;
    }
);

/// What [`populate`] made in a tenant, by the ids its own region gave them.
struct Made {
    owner: i64,
    channel: i64,
    member: i64,
    schedule: i64,
    rule_id: String,
    incident_id: String,
    manual_incident_id: String,
}

/// Waits until the node has processed every accepted event.
async fn drained(n: &Node) {
    for _ in 0..500 {
        let text = n
            .http
            .get(format!("{}/metrics", n.server.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let depth = text
            .lines()
            .find(|l| l.starts_with("klaxon_inbox_depth "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok());
        if depth == Some(0.0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the inbox did not drain");
}

fn data(status: u16, body: &Value) -> Value {
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["error"], Value::Null, "{body}");
    body["data"].clone()
}

/// The same kinds of data in a fresh tenant of either region: a channel, a member, a
/// schedule naming the member, an escalation rule naming both on the integration's channel,
/// an incident from an alert (assigned by the rule, with a comment) and one made by hand.
async fn populate(n: &Node, key: &str, tag: &str) -> Made {
    n.server
        .store()
        .saas_set_profile(
            n.server.saas_settings().unwrap(),
            n.account,
            klaxon_saas::mode::BillingProfile::Exempt,
            "the operator's own tenant",
            None,
            false,
            ms(AT),
            "ops",
        )
        .await
        .unwrap();
    let (s, b) = n.api(key, "/member/info", json!({})).await;
    let owner = data(s, &b)["member_id"].as_i64().unwrap();
    let (s, b) = n
        .api(
            key,
            "/channel/create",
            json!({"channel_name": format!("{tag} ops")}),
        )
        .await;
    let channel = data(s, &b)["channel_id"].as_i64().unwrap();
    let (s, b) = n
        .api(
            key,
            "/member/invite",
            json!({"members": [{"email": format!("oncall@{tag}.example"), "member_name": format!("{tag} on call")}]}),
        )
        .await;
    let member = data(s, &b)["items"][0]["member_id"].as_i64().unwrap();
    let (s, b) = n
        .api(
            key,
            "/schedule/create",
            json!({"schedule_name": format!("{tag} rota"), "time_zone": "UTC",
                   "layers": [{"layer_name": "Weekly",
                               "groups": [{"group_name": "A", "members": [{"person_id": member}]}],
                               "layer_start": ms(AT) / 1000, "rotation_unit": "week",
                               "rotation_value": 1, "restrict_mode": 0}]}),
        )
        .await;
    let schedule = data(s, &b)["schedule_id"].as_i64().unwrap();
    let home = n.server.bootstrap().channel_id;
    let (s, b) = n
        .api(
            key,
            "/channel/escalate/rule/create",
            json!({"channel_id": home, "rule_name": format!("{tag} page"),
                   "layers": [{"target": {"person_ids": [member, owner],
                                          "schedule_to_role_ids": {schedule.to_string(): []},
                                          "by": {"follow_preference": true}},
                               "escalate_window": 15}]}),
        )
        .await;
    let rule_id = data(s, &b)["rule_id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let resp = n
            .http
            .post(format!(
                "{}/event/push/alert/standard?integration_key={}",
                n.server.base_url(),
                n.server.bootstrap().integration_key
            ))
            .json(
                &json!({"event_status": "Critical", "title_rule": format!("{tag} db down"),
                          "alert_key": format!("{tag}-db")}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        drained(n).await;
    }
    let now = ms(AT) / 1000;
    let (s, b) = n
        .api(
            key,
            "/incident/list",
            json!({"start_time": now - 86_400, "end_time": now + 86_400, "limit": 100}),
        )
        .await;
    let incident_id = data(s, &b)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["dedup_key"] == format!("{tag}-db"))
        .unwrap_or_else(|| panic!("no incident from the alert: {b}"))["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = n
        .api(
            key,
            "/incident/comment",
            json!({"incident_ids": [incident_id], "comment": format!("{tag} looking")}),
        )
        .await;
    data(s, &b);
    let (s, b) = n
        .api(
            key,
            "/incident/create",
            json!({"title": format!("{tag} by hand"), "incident_severity": "Warning",
                   "channel_id": channel}),
        )
        .await;
    let manual_incident_id = data(s, &b)["incident_id"].as_str().unwrap().to_string();
    Made {
        owner,
        channel,
        member,
        schedule,
        rule_id,
        incident_id,
        manual_incident_id,
    }
}

/// What a tenant shows of the things [`populate`] made, through the Open API.
async fn shown(n: &Node, key: &str, m: &Made) -> Value {
    let (s, b) = n
        .api(key, "/incident/info", json!({"incident_id": m.incident_id}))
        .await;
    let incident = data(s, &b);
    let (s, b) = n
        .api(
            key,
            "/incident/alert/list",
            json!({"incident_id": m.incident_id, "limit": 100}),
        )
        .await;
    let alerts = data(s, &b);
    let (s, b) = n
        .api(
            key,
            "/incident/feed",
            json!({"incident_id": m.incident_id, "asc": true, "limit": 100}),
        )
        .await;
    let feed = data(s, &b);
    let (s, b) = n
        .api(
            key,
            "/channel/escalate/rule/info",
            json!({"channel_id": incident["channel_id"], "rule_id": m.rule_id}),
        )
        .await;
    let rule = data(s, &b);
    let (s, b) = n
        .api(
            key,
            "/incident/info",
            json!({"incident_id": m.manual_incident_id}),
        )
        .await;
    let manual = data(s, &b);
    json!({"incident": incident, "alerts": alerts, "feed": feed, "rule": rule, "manual": manual})
}

/// Every id of `space` the database holds, over all tenants (for collision checks).
async fn all_ids(
    store: &klaxon_store::Store,
    accounts: &[i64],
    table: &str,
    column: &str,
) -> Vec<i64> {
    let mut out = Vec::new();
    for a in accounts {
        for r in rows_of(store, *a, table).await {
            out.push(r[column].as_i64().unwrap());
        }
    }
    out
}

fn distinct(ids: &[i64]) -> bool {
    let set: std::collections::BTreeSet<_> = ids.iter().collect();
    set.len() == ids.len()
}

on_both_backends!(
    an_import_renumbers_into_a_region_whose_tenant_holds_the_same_ids,
    |url: String| async move {
        // spec: SVC-215
        // Both regions started fresh and made the same kinds of data: the source's tenant and
        // the destination's own tenant hold the same member, channel, schedule and integration
        // ids.
        let n = Node::start(&url).await;
        let src_key = n.owner_key();
        let src = populate(&n, &src_key, "north").await;
        let src_shown = shown(&n, &src_key, &src).await;
        let dest_url = if url.is_empty() {
            String::new()
        } else {
            common::fresh_postgres().await.unwrap()
        };
        let dest = Node::start_at(tempfile::tempdir().unwrap(), &dest_url, "eu-west").await;
        let dest_key = dest.owner_key();
        let mine = populate(&dest, &dest_key, "west").await;
        assert_eq!(
            (mine.channel, mine.member, mine.schedule),
            (src.channel, src.member, src.schedule),
            "both regions number from 1"
        );
        let dstore = dest.server.store();
        let mine_before = dstore.export_snapshot(dest.account).await.unwrap();
        let mine_shown = shown(&dest, &dest_key, &mine).await;

        let (s, b) = n
            .api(
                &src_key,
                "/account/transfer-consent/create",
                json!({"purpose": "region_migration", "destination_region": "eu-west", "categories": ALL}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (ok, out, package) = n
            .transfer(
                &url,
                &["--purpose", "region_migration", "--to-region", "eu-west"],
                "move.tgz",
            )
            .await;
        assert!(ok, "{out}");
        let t = n
            .server
            .store()
            .saas_transfers(n.account)
            .await
            .unwrap()
            .remove(0);
        let cfg = region_config(dest.dir.path(), &dest_url, "eu-west");
        let (ok, out) = cli(
            &cfg,
            &[
                "import",
                "--package",
                &package.display().to_string(),
                "--sha256",
                &t.package_sha256,
                "--source-region",
                "cn-north",
                "--transfer",
                &t.transfer_id.to_string(),
                "--actor",
                "staff:9",
            ],
        )
        .await;
        assert!(ok, "{out}");
        let new_account: i64 = out
            .split(" is account ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no new account in {out}"));
        assert_ne!(new_account, dest.account);

        // The destination's own tenant is untouched: every row as it was, and the Open API
        // shows it the same.
        let mine_after = dstore.export_snapshot(dest.account).await.unwrap();
        // The node's own delivery worker goes on recording how its pages went (notifications
        // and the details of `i_notify` entries): those are not the import's doing.
        let settled = |t: &klaxon_store::ExportedTable| {
            t.rows
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if r.get("kind").and_then(Value::as_str) == Some("i_notify") {
                        r.remove("detail");
                        r.remove("updated_at");
                    }
                    r
                })
                .collect::<Vec<_>>()
        };
        for (a, b) in mine_before.iter().zip(&mine_after) {
            if a.table == "notifications" {
                assert_eq!(a.rows.len(), b.rows.len());
                continue;
            }
            assert_eq!(
                settled(a),
                settled(b),
                "{} of the destination's tenant changed",
                a.table
            );
        }
        let without_notify = |mut v: Value| {
            if let Some(items) = v["feed"]["items"].as_array_mut() {
                items.retain(|e| e["type"] != "i_notify");
            }
            v
        };
        assert_eq!(
            without_notify(shown(&dest, &dest_key, &mine).await),
            without_notify(mine_shown.clone())
        );

        // The imported tenant, through the destination's Open API with a key of its owner.
        let members = rows_of(dstore, new_account, "members").await;
        let owner = members
            .iter()
            .find(|m| m["is_owner"] == 1)
            .and_then(|m| m["member_id"].as_i64())
            .unwrap();
        let oncall = members
            .iter()
            .find(|m| m["email"] == "oncall@north.example")
            .and_then(|m| m["member_id"].as_i64())
            .unwrap();
        // Billing is set up anew at the destination; here the tenant stays the operator's own.
        dstore
            .saas_set_profile(
                dest.server.saas_settings().unwrap(),
                new_account,
                klaxon_saas::mode::BillingProfile::Exempt,
                "the operator's own tenant",
                None,
                false,
                ms(AT),
                "ops",
            )
            .await
            .unwrap();
        let key = format!("{:0>32}", "e1");
        dstore
            .add_app_key(new_account, owner, "after the move", &key, ms(AT))
            .await
            .unwrap()
            .unwrap();
        let (s, b) = dest
            .api(
                &key,
                "/schedule/list",
                json!({"start": ms(AT) / 1000, "end": ms(AT) / 1000 + 3600}),
            )
            .await;
        let schedules = data(s, &b);
        let schedule = schedules["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["schedule_name"] == "north rota")
            .and_then(|s| s["schedule_id"].as_i64())
            .unwrap_or_else(|| panic!("{schedules}"));
        let (s, b) = dest.api(&key, "/channel/list", json!({"limit": 100})).await;
        let channels = data(s, &b);
        let channel = channels["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel_name"] == "north ops")
            .and_then(|c| c["channel_id"].as_i64())
            .unwrap_or_else(|| panic!("{channels}"));
        // Every numbered id is new: none is the destination tenant's.
        assert_ne!(oncall, mine.member);
        assert_ne!(owner, mine.owner);
        assert_ne!(schedule, mine.schedule);
        assert_ne!(channel, mine.channel);
        let moved = Made {
            owner,
            channel,
            member: oncall,
            schedule,
            rule_id: src.rule_id.clone(),
            incident_id: src.incident_id.clone(),
            manual_incident_id: src.manual_incident_id.clone(),
        };
        let got = shown(&dest, &key, &moved).await;
        // Its incident shows its own alerts and timeline.
        assert_eq!(got["incident"]["title"], "north db down", "{got}");
        assert_eq!(got["alerts"]["total"], 1, "{got}");
        assert_eq!(got["alerts"]["items"][0]["title"], "north db down", "{got}");
        assert_eq!(
            got["alerts"]["items"][0]["alert_id"],
            src_shown["alerts"]["items"][0]["alert_id"]
        );
        let kinds = |v: &Value| {
            v["feed"]["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&got), kinds(&src_shown), "{got}");
        let comment = got["feed"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "i_comm")
            .unwrap_or_else(|| panic!("{got}"));
        assert_eq!(comment["detail"]["comment"], "north looking");
        let assign = got["feed"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "i_assign")
            .unwrap_or_else(|| panic!("{got}"));
        // The assignment paged the imported owner (the on-call member is still invited, so
        // not paged), as the source's paged the source's owner.
        let src_assign = src_shown["feed"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "i_assign")
            .unwrap()
            .clone();
        assert_eq!(
            src_assign["detail"]["to"],
            json!([src.owner]),
            "{src_assign}"
        );
        assert_eq!(assign["detail"]["to"], json!([owner]), "{assign}");
        let by_schedule = |d: &Value, from: i64, to: i64| {
            d["detail"]["schedule_to_role_ids"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    (
                        if *k == from.to_string() {
                            to.to_string()
                        } else {
                            k.clone()
                        },
                        v.clone(),
                    )
                })
                .collect::<serde_json::Map<String, Value>>()
        };
        assert_eq!(
            by_schedule(assign, 0, 0),
            by_schedule(&src_assign, src.schedule, schedule),
            "{assign}"
        );
        // Its escalation rule names its own member and schedule.
        let target = &got["rule"]["layers"][0]["target"];
        assert_eq!(target["person_ids"], json!([oncall, owner]), "{got}");
        assert_eq!(
            target["schedule_to_role_ids"],
            json!({schedule.to_string(): []}),
            "{got}"
        );
        // The incident made by hand is in its own channel.
        assert_eq!(got["manual"]["channel_id"], channel, "{got}");
        assert_eq!(got["manual"]["title"], "north by hand");
        // Neither tenant sees the other's incidents.
        let (s, b) = dest
            .api(
                &dest_key,
                "/incident/info",
                json!({"incident_id": src.incident_id}),
            )
            .await;
        assert_ne!(s, 200, "{b}");
        let (s, b) = dest
            .api(
                &key,
                "/incident/info",
                json!({"incident_id": mine.incident_id}),
            )
            .await;
        assert_ne!(s, 200, "{b}");

        // New rows made after the import, in either tenant, collide with nothing.
        for (k, tag, incident) in [
            (&key, "north2", &src.incident_id),
            (&dest_key, "west2", &mine.incident_id),
        ] {
            let (s, b) = dest
                .api(
                    k,
                    "/channel/create",
                    json!({"channel_name": format!("{tag} ops")}),
                )
                .await;
            data(s, &b);
            let (s, b) = dest
                .api(
                    k,
                    "/member/invite",
                    json!({"members": [{"email": format!("new@{tag}.example")}]}),
                )
                .await;
            data(s, &b);
            let (s, b) = dest
                .api(
                    k,
                    "/incident/comment",
                    json!({"incident_ids": [incident], "comment": "after the move"}),
                )
                .await;
            data(s, &b);
        }
        let both = [dest.account, new_account];
        for (table, column) in [
            ("members", "member_id"),
            ("channels", "channel_id"),
            ("schedules", "schedule_id"),
            ("integrations", "integration_id"),
            ("incident_timeline", "seq"),
            ("audit_log", "seq"),
        ] {
            let ids = all_ids(dstore, &both, table, column).await;
            assert!(distinct(&ids), "{table}.{column}: {ids:?}");
        }
        assert_eq!(
            rows_of(dstore, dest.account, "channels").await.len(),
            rows_of(dstore, new_account, "channels").await.len()
        );
        dest.server.shutdown().await;
        n.server.shutdown().await;
    }
);

on_both_backends!(
    every_id_column_is_in_the_reference_catalogue,
    |url: String| async move {
        // spec: SVC-215
        // A reference column the import does not renumber would point at another tenant's
        // rows after a move: every `*_id` / `*_ids` column and identity of the exported tables
        // is declared in klaxon-store's src/id_map.rs.
        let n = Node::start(&url).await;
        assert_eq!(
            n.server.store().undeclared_id_columns().await.unwrap(),
            Vec::<String>::new(),
            "declare these columns in klaxon-store src/id_map.rs"
        );
        n.server.shutdown().await;
    }
);

/// A call of the operator API with a staff token.
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
    the_operator_api_transfers_lists_and_completes_a_move,
    |url: String| async move {
        let n = Node::start(&url).await;
        let store = n.server.store();
        let (_, token) = store
            .staff_add(
                "Ann",
                klaxon_saas::grant::StaffRole::Support,
                "test",
                ms(AT),
            )
            .await
            .unwrap();
        let id = n.account;
        // spec: SVC-212
        // Without the owner's consent the route refuses, naming the rule; nothing recorded.
        let (s, b) = op(
            &n,
            &token,
            "/operator/tenant/transfer",
            json!({"account_id": id, "purpose": "region_migration", "to_region": "eu-west"}),
        )
        .await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("SVC-212"),
            "{b}"
        );
        assert!(store.saas_transfers(id).await.unwrap().is_empty());
        let (s, b) = n
            .api(
                &n.owner_key(),
                "/account/transfer-consent/create",
                json!({"purpose": "region_migration", "destination_region": "eu-west", "categories": ALL}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        // spec: SVC-215
        // With it, the package comes back with its hash, and the transfer is recorded.
        let (s, b) = op(
            &n,
            &token,
            "/operator/tenant/transfer",
            json!({"account_id": id, "purpose": "region_migration", "to_region": "eu-west"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let d = &b["data"];
        let transfer_id = d["transfer_id"].as_i64().unwrap();
        let package = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(d["package"].as_str().unwrap())
                .unwrap()
        };
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&package))
        };
        assert_eq!(d["package_sha256"], sha.as_str(), "{d}");
        let read = klaxon_server::backup::read_export_archive(&package).unwrap();
        assert_eq!(read.account_id, id);
        assert!(d["actor"].as_str().unwrap().starts_with("staff:"), "{d}");
        let (s, b) = op(
            &n,
            &token,
            "/operator/tenant/transfer/list",
            json!({"account_id": id}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["total"], 1, "{b}");
        assert_eq!(b["data"]["items"][0]["completed_at"], 0, "{b}");
        assert_eq!(b["data"]["consents"].as_array().unwrap().len(), 1, "{b}");

        // Another tenant's transfer is unknown under this account; a missing destination
        // account is refused; nothing changes.
        let other = store
            .create_account(
                &klaxon_store::BootstrapSeed {
                    account_name: "Tenant B".into(),
                    owner_email: "owner@tenant-b.example".into(),
                    owner_name: "B Owner".into(),
                    owner_password: "another long password".into(),
                    app_key: format!("{:0>32}", "b1"),
                    integration_key: format!("{:0>32}", "b2"),
                },
                ms(AT),
            )
            .await
            .unwrap();
        let (s, b) = op(
            &n,
            &token,
            "/operator/tenant/transfer/complete",
            json!({"account_id": other.account_id, "transfer_id": transfer_id, "destination_account_id": 77}),
        )
        .await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["error"]["code"], "ResourceNotFound", "{b}");
        let (s, b) = op(
            &n,
            &token,
            "/operator/tenant/transfer/complete",
            json!({"account_id": id, "transfer_id": transfer_id}),
        )
        .await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(store.saas_transfers(id).await.unwrap()[0].completed_at, 0);

        // spec: SVC-191
        // Completed: the source is purged with a signed certificate naming the transfer.
        let (s, b) = op(
            &n,
            &token,
            "/operator/tenant/transfer/complete",
            json!({"account_id": id, "transfer_id": transfer_id, "destination_account_id": 77}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let d = &b["data"];
        assert_eq!(d["destination_account_id"], 77, "{d}");
        let body = d["certificate"]["body"].as_str().unwrap();
        assert!(body.contains("region_transfer"), "{body}");
        assert!(
            body.contains(&format!("by transfer {transfer_id}")),
            "{body}"
        );
        assert!(matches!(
            klaxon_server::backup::check_certificate(body, None),
            klaxon_server::backup::CertificateCheck::Valid { .. }
        ));
        assert!(store.account(id).await.unwrap().is_none());
        assert_eq!(store.purge_certificates(id).await.unwrap().len(), 1);
        // Every call, refusals included, is an operator record with its outcome.
        let calls = store.saas_audit(id).await.unwrap();
        let of = |path: &str| {
            calls
                .iter()
                .filter(|(_, _, action, _)| action == path)
                .map(|(_, _, _, detail)| detail.clone())
                .collect::<Vec<_>>()
        };
        let transfers = of("/operator/tenant/transfer");
        assert_eq!(transfers.len(), 2, "{calls:?}");
        assert!(transfers[0].contains("SVC-212"), "{transfers:?}");
        let completes = of("/operator/tenant/transfer/complete");
        assert_eq!(completes.len(), 2, "{calls:?}");
        assert!(completes[1].contains("\"result\":\"ok\""), "{completes:?}");
        n.server.shutdown().await;
    }
);

on_both_backends!(
    the_region_s_delivery_providers_are_published_and_changes_announced,
    |url: String| async move {
        let n = Node::start(&url).await;
        let store = n.server.store();
        let settings = n.server.saas_settings().unwrap();
        let now = ms(AT);
        let change = |channel: &str, provider: &str, location: &str, remove: bool, at: &str| {
            klaxon_saas::providers::Change {
                region: "cn-north".into(),
                channel: channel.into(),
                provider: provider.into(),
                location: location.into(),
                remove,
                effective_at: at.parse().unwrap(),
            }
        };

        // spec: SVC-214
        // The operator lists a provider for SMS in the region; the tenant reads it, with
        // where it processes messages.
        let (sms, told) = store
            .saas_change_region_provider(
                settings,
                &change("sms", "Example SMS Ltd", "Shanghai, China", false, AT),
                now,
                "ops",
            )
            .await
            .unwrap();
        assert_eq!(told, 1);
        assert_eq!(
            (sms.region.as_str(), sms.channel.as_str()),
            ("cn-north", "sms")
        );
        let responder_view = n
            .api(&n.owner_key(), "/account/delivery-provider/list", json!({}))
            .await;
        assert_eq!(responder_view.0, 200, "{}", responder_view.1);
        let d = &responder_view.1["data"];
        assert_eq!(d["region"], "cn-north");
        assert_eq!(d["total"], 1, "{d}");
        assert_eq!(d["items"][0]["provider"], "Example SMS Ltd");
        assert_eq!(d["items"][0]["location"], "Shanghai, China");

        // Bad changes are refused and nothing is written: an unknown channel, a missing
        // location, a change dated in the past, removing a provider that is not listed.
        for (bad, needle) in [
            (change("fax", "X", "Y", false, AT), "channel"),
            (change("email", "Mailer", " ", false, AT), "location"),
            (
                change("email", "Mailer", "Y", false, "2025-06-01T00:00:00Z"),
                "SVC-238",
            ),
            (change("voice", "Nobody", "", true, AT), "nothing to remove"),
        ] {
            let e = store
                .saas_change_region_provider(settings, &bad, now, "ops")
                .await
                .unwrap_err();
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
        assert_eq!(store.saas_region_providers(None).await.unwrap().len(), 1);

        // spec: SVC-238
        // A move announced for later: the tenant sees the list in force now and the
        // upcoming change, and every tenant of the region is told (in-app and e-mail).
        let later = "2025-06-20T00:00:00Z";
        let (moved, _) = store
            .saas_change_region_provider(
                settings,
                &change("sms", "Example SMS Ltd", "Frankfurt, Germany", false, later),
                now,
                "ops",
            )
            .await
            .unwrap();
        let (s, b) = n
            .api(&n.owner_key(), "/account/delivery-provider/list", json!({}))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["items"][0]["location"], "Shanghai, China", "{b}");
        let upcoming = b["data"]["upcoming"].as_array().unwrap();
        assert_eq!(upcoming.len(), 2, "{b}");
        assert!(upcoming.iter().any(|u| u["change"] == "added"
            && u["location"] == "Frankfurt, Germany"
            && u["effective_at"] == ms(later) / 1000));
        assert!(
            upcoming
                .iter()
                .any(|u| u["change"] == "removed" && u["location"] == "Shanghai, China")
        );
        let related = format!("region_provider:{}", moved.provider_row_id);
        let mut told = Vec::new();
        for _ in 0..200 {
            told = store.saas_notices_about(&related).await.unwrap();
            if told.iter().any(|r| r.channel == "in_app") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let in_app = told
            .iter()
            .find(|r| r.channel == "in_app")
            .expect("an in-app notice of the change");
        assert_eq!(in_app.category, "provider_change");
        assert_eq!(in_app.account_id, n.account);
        assert!(
            in_app.content.contains("Frankfurt, Germany"),
            "{}",
            in_app.content
        );
        assert!(told.iter().any(|r| r.channel == "email"));
        n.server.shutdown().await;
    }
);
