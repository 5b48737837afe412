//! Backups, restores and the purge with its certificate, through the `klaxon` binary
//! (service-agreement.md SVC-184…SVC-191, §21; docs/backup.md): a per-account archive round
//! trip restores the same rows; in SaaS mode the archive is encrypted under the tenant's data
//! key, and after the purge destroys that key a backup taken before it cannot be read and no
//! row of the tenant remains; a self-hosted purge works without keys and says so in its
//! certificate; a SQLite snapshot taken while events arrive restores into a database that
//! is intact and keeps working. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL`
//! is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use common::saas::{TEST_KEK, saas};
use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_server::Clock;
use klaxon_store::{BackupTable, BootstrapSeed, NO_TENANT_COLUMN, Store};
use serde_json::{Value, json};

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    account_id: i64,
    config_file: PathBuf,
}

impl Node {
    async fn start(database_url: &str, saas_mode: bool) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.timers = false;
        config.workers.delivery = false;
        // The snapshot test pushes faster than the default push limits allow.
        config.limits.per_integration_per_second = 0;
        config.limits.per_integration_per_minute = 0;
        config.limits.per_account_per_second = 0;
        if saas_mode {
            saas(&mut config);
        }
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let account_id = server.bootstrap().account_id;
        let config_file = write_cli_config(dir.path(), database_url, saas_mode);
        let ts = TestServer {
            base: server.base_url().to_string(),
            app_key: server.bootstrap().app_key.clone(),
            integration_key: server.bootstrap().integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: database_url.to_string(),
        };
        Node {
            ts,
            clock,
            account_id,
            config_file,
        }
    }

    fn store(&self) -> &Store {
        self.ts.server.as_ref().unwrap().store()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.ts.dir.path().join(name)
    }

    /// Another tenant with a team of its own.
    async fn second_account(&self) -> i64 {
        let key = |c: char| std::iter::repeat_n(c, 32).collect::<String>();
        let seed = BootstrapSeed {
            account_name: "Tenant B".into(),
            owner_email: "owner@tenant-b.example".into(),
            owner_name: "B Owner".into(),
            owner_password: "another long password".into(),
            app_key: key('b'),
            integration_key: key('c'),
        };
        let b = self
            .store()
            .create_account(&seed, self.clock.now())
            .await
            .unwrap();
        let resp = self
            .ts
            .http
            .post(format!(
                "{}/team/upsert?app_key={}",
                self.ts.base, b.app_key
            ))
            .json(&json!({"team_name": "B team"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        b.account_id
    }

    /// Data of the first account: incidents with alerts and events, and a team.
    async fn fill(&self) {
        for i in 0..3 {
            let (code, body) = self
                .ts
                .push(json!({"event_status": "Critical",
                              "title_rule": format!("disk full on db-{i} (backup test)"),
                              "alert_key": format!("bk-{i}"), "labels": {"host": format!("db-{i}")}}))
                .await;
            assert_eq!(code, 200, "{body}");
        }
        self.ts.drained().await;
        let (code, body) = self
            .ts
            .api("/team/upsert", json!({"team_name": "A payments"}))
            .await;
        assert_eq!(code, 200, "{body}");
    }

    async fn rows(&self, account: i64) -> u64 {
        self.store()
            .tenant_row_counts(account)
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum()
    }

    async fn snapshot(&self, account: i64) -> Vec<BackupTable> {
        self.store()
            .backup_snapshot(account, |_, _| {})
            .await
            .unwrap()
    }
}

fn write_cli_config(dir: &Path, database_url: &str, saas_mode: bool) -> PathBuf {
    let path = dir.join("klaxon.toml");
    let mut text = format!("data_dir = {:?}\n", dir.display().to_string());
    if !database_url.is_empty() {
        text.push_str(&format!("database_url = {database_url:?}\n"));
    }
    if saas_mode {
        text.push_str(&format!(
            "[deployment]\nmode = \"saas\"\nregion = \"cn-north\"\n\
             operator_identity = \"Example Cloud Ltd\"\nbilling_tz = \"UTC\"\ncurrency = \"CNY\"\n\
             support_address = \"support@example.com\"\nkey_encryption_key = \"{TEST_KEK}\"\n\
             [deployment.documents]\nterms_of_service = \"2025-01\"\nuser_agreement = \"2025-01\"\n\
             data_protection = \"2025-01\"\nsla = \"2025-01\"\nprice_list = \"2025-01\"\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the binary with `args` and `--config`; returns (success, stdout, stderr).
async fn klaxon(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .env("KLAXON_LOG", "warn")
        .env_remove("KLAXON_DATABASE_URL")
        .env_remove("KLAXON_DEPLOYMENT_MODE")
        .env_remove("KLAXON_DEPLOYMENT_KEY_ENCRYPTION_KEY")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Ends a SaaS tenant with its purge date just passed, as a release or an unrenewed term
/// leaves it (SVC-186/187): the precondition of the purge job.
async fn end_tenant(n: &Node, account: i64, ended_at: i64, purge_at: i64) {
    let sql = format!(
        "INSERT INTO saas_tenants (account_id, profile, state, reason, since, purge_at, edition, \
         currency, region, created_at, updated_at) VALUES ({account}, 'commercial', 'ended', \
         'released', {ended_at}, {purge_at}, 'pro', 'CNY', 'cn-north', {ended_at}, {ended_at}) \
         ON CONFLICT (account_id) DO UPDATE SET state = 'ended', reason = 'released', \
         since = {ended_at}, purge_at = {purge_at}"
    );
    let status = if n.ts.database_url.is_empty() {
        tokio::process::Command::new("sqlite3")
            .arg(n.path("klaxon.db"))
            .arg(format!("PRAGMA busy_timeout = 5000; {sql}"))
            .status()
            .await
            .unwrap()
    } else {
        tokio::process::Command::new("psql")
            .arg(&n.ts.database_url)
            .arg("-qc")
            .arg(&sql)
            .status()
            .await
            .unwrap()
    };
    assert!(status.success());
}

fn certificate(stdout: &str) -> Value {
    let cert: Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert!(
        klaxon_server::backup::verify_certificate(stdout),
        "the digest covers the document"
    );
    cert
}

on_both_backends!(
    every_table_a_purge_empties_names_the_tenant,
    |url: String| async move {
        // spec: SVC-190 (step 2 and the step-4 verification scan reach every table): a table
        // outside the operator records without an account id would escape the purge.
        let n = Node::start(&url, false).await;
        let mut expected: Vec<String> = NO_TENANT_COLUMN
            .iter()
            .map(|(t, _)| t.to_string())
            .collect();
        expected.sort();
        let mut found = n.store().tables_without_tenant_column().await.unwrap();
        found.sort();
        assert_eq!(
            found, expected,
            "give these tables an account_id or list them in NO_TENANT_COLUMN"
        );
    }
);

on_both_backends!(
    a_backup_taken_before_a_purge_cannot_be_read_after_it,
    |url: String| async move {
        // spec: SVC-185 (per-tenant data key, backups encrypted under it), SVC-189/190 (the
        // purge of a tenant whose purge date passed: rows deleted, key destroyed, verified),
        // SVC-191 (certificate), SVC-180 (operator records kept, another tenant untouched)
        let n = Node::start(&url, true).await;
        let a = n.account_id;
        n.fill().await;
        let b = n.second_account().await;
        let b_rows = n.rows(b).await;
        assert!(n.rows(a).await > 0 && b_rows > 0);

        // Backups of both tenants, encrypted under their own keys.
        let a_file = n.path("a.kbk");
        let (ok, out, err) = klaxon(
            &n.config_file,
            &[
                "backup",
                "--account",
                &a.to_string(),
                "--out",
                a_file.to_str().unwrap(),
            ],
        )
        .await;
        assert!(ok, "{out}{err}");
        assert!(
            out.contains("encrypted under the tenant's data key"),
            "{out}"
        );
        assert!(err.contains("backup:"), "progress on stderr: {err}");
        let a_bytes = std::fs::read(&a_file).unwrap();
        assert!(a_bytes.starts_with(b"KLXENC01"));
        let b_file = n.path("b.kbk");
        let (ok, out, err) = klaxon(
            &n.config_file,
            &[
                "backup",
                "--account",
                &b.to_string(),
                "--out",
                b_file.to_str().unwrap(),
            ],
        )
        .await;
        assert!(ok, "{out}{err}");
        let a_key = n.store().tenant_key(a).await.unwrap().unwrap();
        let b_key = n.store().tenant_key(b).await.unwrap().unwrap();
        assert_ne!(a_key.key_id, b_key.key_id, "one key per tenant");
        assert!(!a_key.wrapped_key.is_empty() && a_key.destroyed_at == 0);
        // Writing over an existing file is refused.
        let (ok, _, err) = klaxon(
            &n.config_file,
            &[
                "backup",
                "--account",
                &a.to_string(),
                "--out",
                a_file.to_str().unwrap(),
            ],
        )
        .await;
        assert!(!ok && err.contains("exists"), "{err}");

        // An active tenant is not purged.
        let (ok, _, err) = klaxon(
            &n.config_file,
            &[
                "admin",
                "tenant",
                "purge",
                "--account",
                &a.to_string(),
                "--yes",
            ],
        )
        .await;
        assert!(!ok && err.contains("purge date"), "{err}");
        // Ended with the purge date still ahead: kept (SVC-187).
        let now = wall_ms();
        end_tenant(&n, a, now - 30 * 86_400_000, now + 86_400_000).await;
        let (ok, _, err) = klaxon(
            &n.config_file,
            &[
                "admin",
                "tenant",
                "purge",
                "--account",
                &a.to_string(),
                "--yes",
            ],
        )
        .await;
        assert!(!ok && err.contains("purge date"), "{err}");
        assert!(n.rows(a).await > 0, "a refused purge deletes nothing");

        // The purge date passes: the job purges the tenant.
        end_tenant(&n, a, now - 30 * 86_400_000, now - 1000).await;
        let (ok, out, err) = klaxon(
            &n.config_file,
            &["admin", "tenant", "purge", "--due", "--yes"],
        )
        .await;
        assert!(ok, "{out}{err}");
        let cert = certificate(&out);
        assert_eq!(cert["tenant_id"], a);
        assert_eq!(cert["region"], "cn-north");
        assert_eq!(cert["deployment_mode"], "saas");
        assert_eq!(cert["trigger"], "purge_date_reached");
        assert!(cert["certificate_id"].as_str().unwrap().starts_with("pc-"));
        assert!(cert["buffer_start"].is_string() && cert["buffer_end"].is_string());
        assert!(cert["purge_started_at"].is_string() && cert["purge_finished_at"].is_string());
        assert_eq!(cert["data_key"]["key_id"], a_key.key_id.as_str());
        assert_eq!(cert["data_key"]["destroyed"], true);
        assert_eq!(cert["data_key"]["receipt"].as_str().unwrap().len(), 64);
        assert_eq!(cert["backups"]["crypto_shredded"], true);
        let store = &cert["stores"][0];
        assert_eq!(store["verified"], true);
        assert!(store["rows_deleted"].as_u64().unwrap() > 0);
        let tables = store["tables"].as_array().unwrap();
        assert!(tables.iter().all(|t| t["rows_remaining"] == 0));
        let deleted = |name: &str| {
            tables.iter().find(|t| t["table"] == name).unwrap()["rows_deleted"]
                .as_u64()
                .unwrap()
        };
        assert!(deleted("incidents") >= 3 && deleted("alerts") >= 3 && deleted("accounts") == 1);
        assert_eq!(cert["software_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(cert["job_log_sha256"].as_str().unwrap().len(), 64);
        let kept = cert["operator_records_kept"].as_array().unwrap();
        assert!(
            kept.contains(&json!("purge_certificates"))
                && kept.contains(&json!("saas_ledger_entries"))
        );

        // No row of the tenant remains; its key is gone; the other tenant is untouched.
        assert_eq!(n.rows(a).await, 0);
        let gone = n.store().tenant_key(a).await.unwrap().unwrap();
        assert!(gone.wrapped_key.is_empty() && gone.destroyed_at > 0);
        assert_eq!(n.rows(b).await, b_rows);

        // The backup taken before the purge can no longer be read, by anyone.
        let (ok, _, err) = klaxon(&n.config_file, &["restore", a_file.to_str().unwrap()]).await;
        assert!(!ok && err.contains("destroyed"), "{err}");
        assert_eq!(n.rows(a).await, 0, "nothing came back");
        // B's archive still decrypts (and is refused only because B still exists).
        let (ok, _, err) = klaxon(&n.config_file, &["restore", b_file.to_str().unwrap()]).await;
        assert!(!ok && err.contains("already has"), "{err}");

        // The certificate is kept (an operator record) and the tenant is purged for good.
        let (ok, out, err) = klaxon(
            &n.config_file,
            &[
                "admin",
                "tenant",
                "certificates",
                "--account",
                &a.to_string(),
            ],
        )
        .await;
        assert!(ok, "{err}");
        assert_eq!(certificate(&out)["certificate_id"], cert["certificate_id"]);
        let (ok, _, err) = klaxon(
            &n.config_file,
            &[
                "admin",
                "tenant",
                "purge",
                "--account",
                &a.to_string(),
                "--yes",
            ],
        )
        .await;
        assert!(!ok && err.contains("already purged"), "{err}");
        let (ok, out, _) = klaxon(
            &n.config_file,
            &["admin", "tenant", "purge", "--due", "--yes"],
        )
        .await;
        assert!(ok && out.contains("no tenant is due"), "{out}");
    }
);

on_both_backends!(
    an_account_archive_round_trips_and_a_self_hosted_purge_needs_no_key,
    |url: String| async move {
        // spec: SVC-403 (§13 export, deletion, purge and certificate apply self-hosted;
        // without a KMS the certificate says backups are not crypto-shredded), SVC-190,
        // SVC-191
        let n = Node::start(&url, false).await;
        let a = n.account_id;
        n.fill().await;
        let b = n.second_account().await;
        let b_rows = n.rows(b).await;
        let before = n.snapshot(a).await;
        assert!(
            before
                .iter()
                .any(|t| t.table == "members" && !t.rows.is_empty())
        );

        let file = n.path("a.tar.gz");
        let (ok, out, err) = klaxon(
            &n.config_file,
            &[
                "backup",
                "--account",
                &a.to_string(),
                "--out",
                file.to_str().unwrap(),
            ],
        )
        .await;
        assert!(ok, "{out}{err}");
        assert!(out.contains("not encrypted"), "{out}");
        assert!(std::fs::read(&file).unwrap().starts_with(&[0x1f, 0x8b]));

        // A purge must be confirmed.
        let (ok, _, err) = klaxon(
            &n.config_file,
            &["admin", "tenant", "purge", "--account", &a.to_string()],
        )
        .await;
        assert!(!ok && err.contains("--yes"), "{err}");
        assert!(n.rows(a).await > 0);
        let (ok, out, err) = klaxon(
            &n.config_file,
            &[
                "admin",
                "tenant",
                "purge",
                "--account",
                &a.to_string(),
                "--yes",
                "--reason",
                "the team left the company",
            ],
        )
        .await;
        assert!(ok, "{out}{err}");
        let cert = certificate(&out);
        assert_eq!(cert["deployment_mode"], "self_hosted");
        assert_eq!(cert["region"], "self-hosted");
        assert_eq!(cert["trigger"], "operator_request");
        assert_eq!(cert["reason"], "the team left the company");
        assert!(cert["data_key"].is_null());
        assert_eq!(cert["backups"]["crypto_shredded"], false);
        assert_eq!(cert["stores"][0]["verified"], true);
        assert_eq!(n.rows(a).await, 0);
        assert_eq!(n.rows(b).await, b_rows);

        // Restoring the archive brings back exactly the rows it held.
        let (ok, out, err) = klaxon(&n.config_file, &["restore", file.to_str().unwrap()]).await;
        assert!(ok, "{out}{err}");
        assert!(out.contains("rows restored"), "{out}");
        assert_eq!(n.snapshot(a).await, before);
        assert_eq!(n.rows(b).await, b_rows);
        // Restore never merges into an account that has rows.
        let (ok, _, err) = klaxon(&n.config_file, &["restore", file.to_str().unwrap()]).await;
        assert!(!ok && err.contains("already has"), "{err}");
        assert_eq!(n.snapshot(a).await, before);
        // A damaged archive is refused with nothing written.
        let mut bytes = std::fs::read(&file).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        let bad = n.path("bad.tar.gz");
        std::fs::write(&bad, &bytes).unwrap();
        let (ok, _, _) = klaxon(&n.config_file, &["restore", bad.to_str().unwrap()]).await;
        assert!(!ok);
        // The whole-database backup of PostgreSQL is pg_dump's job.
        if !url.is_empty() {
            let out_file = n.path("whole.tar");
            let (ok, _, err) = klaxon(
                &n.config_file,
                &["backup", "--out", out_file.to_str().unwrap()],
            )
            .await;
            assert!(!ok && err.contains("pg_dump"), "{err}");
        }
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_snapshot_taken_while_events_arrive_restores_consistently() {
    // spec: SVC-184 (backups), SVC-211 (the copy stays in the install); ING-011 (no accepted
    // event is processed twice or lost across the two database files)
    let n = Node::start("", false).await;
    let pushes = {
        let http = n.ts.http.clone();
        let url = n.ts.push_url();
        tokio::spawn(async move {
            let mut accepted = 0;
            for i in 0..90 {
                let resp = http
                    .post(&url)
                    .json(
                        &json!({"event_status": "Warning", "title_rule": format!("load {i}"),
                                  "alert_key": format!("snap-{i}")}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status().as_u16(), 200);
                accepted += 1;
            }
            accepted
        })
    };
    let snap = n.path("snap.tar");
    let (ok, out, err) = klaxon(&n.config_file, &["backup", "--out", snap.to_str().unwrap()]).await;
    assert!(ok, "{out}{err}");
    assert_eq!(pushes.await.unwrap(), 90);
    n.ts.drained().await;

    // Restore refuses a data directory in use unless forced.
    let (ok, _, err) = klaxon(&n.config_file, &["restore", snap.to_str().unwrap()]).await;
    assert!(!ok && err.contains("not empty"), "{err}");
    let target = tempfile::tempdir().unwrap();
    let restored_dir = target.path().join("data");
    let restore_config = write_cli_config(target.path(), "", false);
    let (ok, out, err) = klaxon(
        &restore_config,
        &[
            "restore",
            snap.to_str().unwrap(),
            "--data-dir",
            restored_dir.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{out}{err}");
    for file in ["klaxon.db", "klaxon-inbox.db"] {
        let check = tokio::process::Command::new("sqlite3")
            .arg(restored_dir.join(file))
            .arg("PRAGMA integrity_check")
            .output()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&check.stdout).trim(),
            "ok",
            "{file}"
        );
    }

    // A node on the restored copy processes what was waiting, has one alert per key, each in
    // an incident it knows, and keeps accepting events.
    let mut restored = TestServer::start_with("", |c| {
        c.data_dir = restored_dir.clone();
        c.workers.delivery = false;
    })
    .await;
    // The copy holds the original account, keys included (stored hashed, so not echoed).
    restored.app_key = n.ts.app_key.clone();
    restored.integration_key = n.ts.integration_key.clone();
    restored.drained().await;
    let alerts = restored.alerts().await;
    let incidents = restored.incidents().await;
    let keys: std::collections::BTreeSet<String> = alerts
        .iter()
        .map(|a| a["alert_key"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(keys.len(), alerts.len(), "no alert twice");
    assert!(
        alerts.len() < 100 && incidents.len() < 100,
        "the lists are complete"
    );
    for a in &alerts {
        let inc = a["incident_id"].as_str().unwrap_or_default();
        assert!(
            inc.is_empty() || incidents.iter().any(|i| i["incident_id"] == inc),
            "alert {a} points at an incident the copy has"
        );
    }
    let (code, body) = restored
        .push(
            json!({"event_status": "Critical", "title_rule": "after restore",
                     "alert_key": "after-restore"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    restored.drained().await;
    let after = restored.alerts().await;
    assert!(
        after.iter().any(|a| a["alert_key"] == "after-restore"),
        "new events are processed"
    );
    restored.stop().await;
}
