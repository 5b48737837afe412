//! Full export of an account end to end (service-agreement.md SVC-180, SVC-182; §21;
//! docs/data-export.md): `/account/export/create` for account administrators, the archive
//! downloaded through its link and unpacked here (manifest counts and SHA-256 per file, JSON
//! Lines per table, secrets left out and listed, nothing of another account), the one-at-a-
//! time and three-a-day limits, the audit records, and the link expiring after 7 days with
//! the archive deleted by the node's sweep. Every table of the schema is classified for the
//! export. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_server::Clock;
use klaxon_store::BootstrapSeed;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const DAY: i64 = 86_400_000;

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    account_id: i64,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        Node::start_in(tempfile::tempdir().unwrap(), database_url, wall_ms(), false).await
    }

    /// `timers`: whether the node runs the timer worker and, with it, the sweep that deletes
    /// expired archives (it sweeps once at start).
    async fn start_in(dir: tempfile::TempDir, database_url: &str, at: i64, timers: bool) -> Node {
        let mut config = test_config(dir.path(), database_url);
        config.workers.timers = timers;
        config.workers.delivery = false;
        let clock = Arc::new(ManualClock(AtomicI64::new(at)));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let account_id = server.bootstrap().account_id;
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
        }
    }

    fn store(&self) -> &klaxon_store::Store {
        self.ts.server.as_ref().unwrap().store()
    }

    async fn api_with(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .ts
            .http
            .post(format!("{}{path}?app_key={key}", self.ts.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Invites a member with `role_ids` and gives them an APP key.
    async fn member_key(&self, email: &str, role_ids: &[i64]) -> String {
        let data = ok(self
            .ts
            .api(
                "/member/invite",
                json!({"members": [{"email": email, "role_ids": role_ids}]}),
            )
            .await);
        let id = data["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("k{id}"));
        self.store()
            .add_app_key(self.account_id, id, "test", &key, self.clock.now())
            .await
            .unwrap()
            .unwrap();
        key
    }

    async fn download(&self, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let resp = self.ts.http.get(url).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }
}

fn ok(r: (u16, Value)) -> Value {
    assert_eq!(r.0, 200, "{}", r.1);
    r.1["data"].clone()
}

fn refused(r: (u16, Value), code: &str, status: u16) -> String {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["error"]["code"], code, "{}", r.1);
    r.1["error"]["message"].as_str().unwrap().to_string()
}

/// The files of a gzipped tar, by path.
fn unpack(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        out.insert(path, body);
    }
    out
}

fn lines(body: &[u8]) -> Vec<Value> {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

/// Another tenant in the same database, with data of its own.
async fn second_account(n: &Node) -> (i64, String) {
    let key = |c: char| std::iter::repeat_n(c, 32).collect::<String>();
    let seed = BootstrapSeed {
        account_name: "Tenant B".into(),
        owner_email: "owner@tenant-b.example".into(),
        owner_name: "B Owner".into(),
        owner_password: "another long password".into(),
        app_key: key('b'),
        integration_key: key('c'),
    };
    let b = n
        .store()
        .create_account(&seed, n.clock.now())
        .await
        .unwrap();
    (b.account_id, b.app_key)
}

on_both_backends!(
    every_table_is_classified_for_the_export,
    |url: String| async move {
        // spec: SVC-180 (UBD vs operator records), SVC-182 (secrets left out and listed): a
        // table nobody classified would silently escape the export or leak into it.
        let n = Node::start(&url).await;
        let tables = n.store().schema_tables().await.unwrap();
        assert!(tables.iter().any(|t| t == "incidents"), "{tables:?}");
        assert_eq!(
            n.store().unclassified_tables().await.unwrap(),
            Vec::<String>::new(),
            "add these tables to klaxon_store::EXPORT_TABLES"
        );
    }
);

on_both_backends!(
    an_administrator_exports_everything_the_account_owns,
    |url: String| async move {
        // spec: SVC-182 (full export: JSON Lines per object type, manifest with counts,
        // SHA-256 per file, export time and schema version; secrets left out and listed;
        // download link; audited), SVC-180 (what is the tenant's data), SVC-181
        let n = Node::start(&url).await;
        let (b_account, b_key) = second_account(&n).await;
        // A's data: an incident with its alert and event, a team.
        let (code, body) =
            n.ts.push(
                json!({"event_status": "Critical", "title_rule": "disk full on db-1 ✓",
                         "alert_key": "ex-1", "labels": {"host": "db-1"}}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        n.ts.drained().await;
        ok(n.ts
            .api("/team/upsert", json!({"team_name": "A payments"}))
            .await);
        // An HTTP pull integration whose request header is the source's credential.
        let channel_id = n.ts.server.as_ref().unwrap().bootstrap().channel_id;
        ok(n.ts
            .api(
                "/integration/create",
                json!({"integration_name": "Legacy monitor", "type": "http_pull",
                       "kind": "dedicated", "channel_id": channel_id,
                       "settings": {"url": "http://127.0.0.1:9/alerts",
                                    "headers": {"X-Custom-Token": "pull-s3cr3t"}}}),
            )
            .await);
        // B's data, which must not appear in A's archive.
        ok(n.api_with(
            &b_key,
            "/team/upsert",
            json!({"team_name": "B secret team"}),
        )
        .await);

        // A Responder may not export; an Admin may.
        let responder = n.member_key("responder@example.com", &[6]).await;
        let msg = refused(
            n.api_with(&responder, "/account/export/create", json!({}))
                .await,
            "AccessDenied",
            403,
        );
        assert!(msg.contains("Admin"), "{msg}");
        let admin = n.member_key("admin@example.com", &[2]).await;
        let created = ok(n
            .api_with(&admin, "/account/export/create", json!({}))
            .await);
        assert_eq!(created["status"], "ready", "{created}");
        let export_id = created["export_id"].as_i64().unwrap();
        let url_ = created["download_url"].as_str().unwrap().to_string();
        assert!(
            url_.starts_with(&format!("{}/account/export/download/", n.ts.base)),
            "{url_}"
        );
        assert_eq!(
            created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap(),
            7 * 86_400
        );

        let (status, headers, bytes) = n.download(&url_).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/gzip");
        let sha = hex::encode(Sha256::digest(&bytes));
        assert_eq!(headers["x-klaxon-sha256"], sha.as_str());
        assert_eq!(created["sha256"], sha);
        assert_eq!(created["size_bytes"], bytes.len());

        let files = unpack(&bytes);
        let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        assert_eq!(manifest["format"], "klaxon-export");
        assert_eq!(manifest["schema_version"], 1);
        assert_eq!(manifest["account_id"], n.account_id);
        assert_eq!(manifest["export_id"], export_id);
        assert!(manifest["exported_at"].as_i64().unwrap() > 0);
        // Every listed file is in the archive with the stated count, size and hash.
        for f in manifest["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let body = files.get(path).unwrap_or_else(|| panic!("{path} missing"));
            assert_eq!(f["bytes"], body.len(), "{path}");
            assert_eq!(f["sha256"], hex::encode(Sha256::digest(body)), "{path}");
            assert_eq!(f["objects"], lines(body).len(), "{path}");
        }
        assert_eq!(files.len(), manifest["files"].as_array().unwrap().len() + 1);

        let table = |name: &str| lines(&files[&format!("data/{name}.jsonl")]);
        let incidents = table("incidents");
        assert_eq!(incidents.len(), 1);
        assert_eq!(incidents[0]["title"], "disk full on db-1 ✓");
        assert_eq!(table("alerts").len(), 1);
        assert_eq!(table("alerts")[0]["alert_key"], "ex-1");
        assert!(!table("events").is_empty());
        assert!(!table("incident_timeline").is_empty());
        assert!(
            table("teams")
                .iter()
                .any(|t| t["team_name"] == "A payments")
        );
        assert_eq!(table("accounts").len(), 1);
        assert_eq!(table("accounts")[0]["account_id"], n.account_id);
        // Every row of every file belongs to A.
        for (path, body) in files.iter().filter(|(p, _)| p.starts_with("data/")) {
            for row in lines(body) {
                assert_eq!(row["account_id"], n.account_id, "{path}: {row}");
            }
        }
        let everything = String::from_utf8_lossy(&bytes).to_string()
            + &files
                .values()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .collect::<String>();
        assert!(!everything.contains("B secret team"));
        assert!(!everything.contains("owner@tenant-b.example"));
        assert_ne!(b_account, n.account_id);
        // Secrets are left out and listed: the integration key, the APP keys, passwords.
        assert!(!everything.contains(&n.ts.integration_key));
        assert!(!everything.contains(&n.ts.app_key));
        assert!(!everything.contains(&admin));
        assert!(!everything.contains("$argon2"));
        assert!(table("integrations")[0].get("integration_key").is_none());
        assert!(table("members")[0].get("password_hash").is_none());
        assert!(!everything.contains("pull-s3cr3t"));
        let pull = table("integrations")
            .into_iter()
            .find(|i| i["integration_type"] == "http_pull")
            .unwrap();
        let settings: Value = serde_json::from_str(pull["settings"].as_str().unwrap()).unwrap();
        assert_eq!(
            settings["url"], "http://127.0.0.1:9/alerts",
            "the rest is exported"
        );
        assert!(settings.get("headers").is_none());
        assert!(!files.contains_key("data/app_keys.jsonl"));
        let redacted = manifest["redacted"].as_array().unwrap();
        for (t, c) in [
            ("integrations", "integration_key"),
            ("integrations", "settings.headers"),
            ("members", "password_hash"),
            ("app_keys", "*"),
            ("webhook_integrations", "headers"),
            ("im_integrations", "bot_token"),
        ] {
            assert!(
                redacted.iter().any(|r| r["table"] == t && r["column"] == c),
                "{t}.{c} not listed as redacted"
            );
        }
        // Operator records are not the tenant's data (SVC-180) and are named as such.
        assert!(!files.contains_key("data/saas_ledger_entries.jsonl"));
        assert!(
            manifest["operator_records_not_included"]
                .as_array()
                .unwrap()
                .contains(&json!("saas_ledger_entries"))
        );

        // The history lists it without the link; B sees none of A's exports.
        let listed = ok(n.ts.api("/account/export/list", json!({})).await);
        assert_eq!(listed["total"], 1);
        assert_eq!(listed["items"][0]["export_id"], export_id);
        assert!(listed["items"][0].get("download_url").is_none());
        assert!(
            !listed
                .to_string()
                .contains(url_.rsplit('/').next().unwrap())
        );
        let info = ok(n
            .ts
            .api("/account/export/info", json!({"export_id": export_id}))
            .await);
        assert_eq!(info["status"], "ready");
        assert_eq!(
            ok(n.api_with(&b_key, "/account/export/list", json!({})).await)["total"],
            0
        );
        refused(
            n.api_with(
                &b_key,
                "/account/export/info",
                json!({"export_id": export_id}),
            )
            .await,
            "ResourceNotFound",
            400,
        );
        let msg = refused(
            n.ts.api("/account/export/info", json!({})).await,
            "InvalidParameter",
            400,
        );
        assert!(msg.contains("export_id"), "{msg}");

        // Audited: the creation (by the admin) and the download.
        let now = n.clock.now() / 1000;
        let audit = ok(n
            .ts
            .api(
                "/audit/search",
                json!({"start_time": now - 3600, "end_time": now + 3600}),
            )
            .await);
        let docs = audit["docs"].as_array().unwrap();
        assert!(
            docs.iter()
                .any(|d| d["operation"] == "account_export:write:create" && d["result"] == "ok"),
            "{audit}"
        );
        assert!(
            docs.iter()
                .any(|d| d["operation"] == "account_export:read:download"
                    && d["resource_id"] == json!(export_id.to_string())),
            "{audit}"
        );
        // A wrong token is a plain 404.
        let (status, _, _) = n
            .download(&format!(
                "{}/account/export/download/{}",
                n.ts.base,
                "0".repeat(64)
            ))
            .await;
        assert_eq!(status, 404);
    }
);

on_both_backends!(
    three_exports_a_day_and_the_link_expires_after_seven_days,
    |url: String| async move {
        // spec: SVC-182 (at most 3 per day; download link valid 7 days, then the archive is
        // deleted)
        let dir = tempfile::tempdir().unwrap();
        let start = wall_ms();
        let n = Node::start_in(dir, &url, start, false).await;
        let mut links = Vec::new();
        for _ in 0..3 {
            let created = ok(n.ts.api("/account/export/create", json!({})).await);
            links.push(created["download_url"].as_str().unwrap().to_string());
            n.clock.0.fetch_add(3_600_000, Ordering::SeqCst);
        }
        let msg = refused(
            n.ts.api("/account/export/create", json!({})).await,
            "RequestTooFrequently",
            429,
        );
        assert!(msg.contains("24 hours"), "{msg}");
        assert_eq!(
            ok(n.ts.api("/account/export/list", json!({})).await)["total"],
            3,
            "the refused request started nothing"
        );
        // A day after the first, one more may start.
        n.clock.0.store(start + DAY + 1, Ordering::SeqCst);
        ok(n.ts.api("/account/export/create", json!({})).await);

        // Within 7 days the first link works; past them it does not, and the sweep of a node
        // running the timer worker deletes the archive (the row stays as history).
        let (status, _, _) = n.download(&links[0]).await;
        assert_eq!(status, 200);
        n.clock.0.store(start + 7 * DAY + 1, Ordering::SeqCst);
        let (status, _, _) = n.download(&links[0]).await;
        assert_eq!(status, 404, "an expired link no longer downloads");
        let (status, _, _) = n.download(&links[2]).await;
        assert_eq!(status, 200, "the third export's link is still valid");

        let mut n = n;
        n.ts.stop().await;
        let dir = std::mem::replace(&mut n.ts.dir, tempfile::tempdir().unwrap());
        let later = start + 8 * DAY;
        let mut m = Node::start_in(dir, &url, later, true).await;
        // A later start does not show the key again.
        m.ts.app_key = n.ts.app_key.clone();
        let mut statuses = Vec::new();
        for _ in 0..500 {
            let listed = ok(m.ts.api("/account/export/list", json!({})).await);
            statuses = listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["status"].as_str().unwrap().to_string())
                .collect();
            if statuses.iter().filter(|s| *s == "expired").count() == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Newest first: the fourth (a day later) is still valid; the first three expired.
        assert_eq!(statuses, ["ready", "expired", "expired", "expired"]);
        // The restarted node listens on another port; the link's path is the same.
        let path = links[2].strip_prefix(&n.ts.base).unwrap();
        let (status, _, _) = m.download(&format!("{}{path}", m.ts.base)).await;
        assert_eq!(status, 404);
        assert_eq!(
            m.store().sweep_exports(later).await.unwrap(),
            0,
            "already swept"
        );
    }
);
