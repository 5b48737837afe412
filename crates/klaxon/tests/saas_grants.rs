//! Operator access end to end (docs/saas.md "Operator access"; service-agreement.md §15):
//! staff identities from `klaxon admin staff`, the tenant's access grants through the Open
//! API, the operator API under `/operator/` (metadata without a grant, tenant data only
//! inside a grant's scope, filter and time, every read in the tenant's audit log), expiry and
//! revocation, the lawful-request register with its non-disclosure order, and a self-hosted
//! install without any of it. Time is a ManualClock starting at the wall clock (the CLI
//! stamps its records with the real time).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::saas::{cli_config, saas};
use common::{ManualClock, test_config, wall_ms};
use klaxon_server::{Config, Server};
use klaxon_store::BootstrapSeed;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    account: i64,
}

impl Node {
    async fn start(database_url: &str, tweak: impl FnOnce(&mut Config)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        tweak(&mut config);
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let account = server.bootstrap().account_id;
        Node {
            server,
            http: reqwest::Client::new(),
            clock,
            dir,
            account,
        }
    }

    fn now(&self) -> i64 {
        self.clock.0.load(Ordering::SeqCst)
    }

    fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
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

    async fn ok(&self, key: &str, path: &str, body: Value) -> Value {
        let (s, b) = self.api(key, path, body).await;
        assert_eq!(s, 200, "{path}: {b}");
        b["data"].clone()
    }

    /// A call of the operator API with a staff token.
    async fn op(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.server.base_url()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn account_key(&self) -> String {
        self.ok(
            &self.owner_key(),
            "/app-key/create",
            json!({"key_name": "automation", "account_level": true}),
        )
        .await["app_key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A member with `role_ids` and a personal APP key.
    async fn member(&self, name: &str, role_ids: &[i64]) -> String {
        let b = self
            .ok(
                &self.owner_key(),
                "/member/invite",
                json!({"members": [{"email": format!("{name}@example.com"), "role_ids": role_ids}]}),
            )
            .await;
        let id = b["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("m{id}"));
        self.server
            .store()
            .add_app_key(self.account, id, "test", &key, self.now())
            .await
            .unwrap()
            .unwrap();
        key
    }

    /// The tenant's audit log as its owner sees it, oldest first.
    async fn audit(&self) -> Vec<Value> {
        let now = self.now() / 1000;
        let d = self
            .ok(
                &self.owner_key(),
                "/audit/search",
                json!({"start_time": now - 80 * 86_400, "end_time": now + 86_400, "limit": 99}),
            )
            .await;
        let mut docs = d["docs"].as_array().unwrap().clone();
        docs.reverse();
        docs
    }

    async fn audit_ops(&self, operation: &str) -> Vec<Value> {
        self.audit()
            .await
            .into_iter()
            .filter(|d| d["operation"] == operation)
            .collect()
    }
}

/// `klaxon admin <args> --config <cfg>`.
async fn admin(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .env("KLAXON_LOG", "warn")
        .env_remove("KLAXON_DATABASE_URL")
        .env_remove("KLAXON_DEPLOYMENT_MODE")
        .arg("admin")
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

/// Adds a staff member with the CLI: (id, token).
async fn add_staff(config: &std::path::Path, name: &str, role: &str) -> (i64, String) {
    let (ok, out) = admin(config, &["staff", "add", "--name", name, "--role", role]).await;
    assert!(ok, "{out}");
    let id = out
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no staff id in {out}"));
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token in {out}"))
        .to_string();
    (id, token)
}

fn refused(status: u16, body: &Value, http: u16, code: &str, words: &str) {
    assert_eq!(status, http, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message:?} should say {words:?}");
}

on_both_backends!(
    grants_decide_what_staff_may_read,
    |url: String| async move {
        let n = Node::start(&url, saas).await;
        let cfg = cli_config(n.dir.path(), &url);
        let acct = n.account;
        let owner = n.owner_key();
        let key = n.account_key().await;
        let web = n
            .ok(&key, "/channel/create", json!({"channel_name": "web"}))
            .await["channel_id"]
            .as_i64()
            .unwrap();
        let db = n
            .ok(&key, "/channel/create", json!({"channel_name": "db"}))
            .await["channel_id"]
            .as_i64()
            .unwrap();
        let inc_web = n
            .ok(
                &key,
                "/incident/create",
                json!({"title": "web down", "incident_severity": "Critical", "channel_id": web}),
            )
            .await["incident_id"]
            .as_str()
            .unwrap()
            .to_string();
        let inc_db = n
            .ok(
                &key,
                "/incident/create",
                json!({"title": "db slow", "incident_severity": "Warning", "channel_id": db}),
            )
            .await["incident_id"]
            .as_str()
            .unwrap()
            .to_string();
        let (ann, ann_token) = add_staff(&cfg, "Ann", "support").await;
        let (_ben, ben_token) = add_staff(&cfg, "Ben", "support").await;
        let (ok, out) = admin(
            &cfg,
            &["staff", "add", "--name", "Eve", "--role", "finance"],
        )
        .await;
        assert!(!ok && out.contains("role"), "{out}");
        let (ok, out) = admin(&cfg, &["staff", "list"]).await;
        assert!(ok && out.contains("Ann") && out.contains("Ben"), "{out}");
        assert!(!out.contains(&ann_token), "tokens are never listed: {out}");
        let at = |id: i64| json!({"account_id": acct, "grant_id": id});

        // spec: SVC-223
        // Without a grant: the metadata, and nothing of the tenant's data.
        let (s, b) = n
            .op(
                &ann_token,
                "/operator/tenant/info",
                json!({"account_id": acct}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["billing"]["state"], "active", "{b}");
        // The bootstrap made the account's first channel.
        let first = i64::from(n.server.bootstrap().channel_id > 0);
        assert_eq!(b["data"]["usage"]["channels"], 2 + first, "{b}");
        assert_eq!(b["data"]["usage"]["incidents"], 2, "{b}");
        assert_eq!(b["data"]["grants"], json!([]), "{b}");
        // spec: SVC-220
        let (s, b) = n
            .op(
                &ann_token,
                "/operator/channel/list",
                json!({"account_id": acct}),
            )
            .await;
        refused(s, &b, 403, "AccessDenied", "no grant selected");
        let (s, b) = n
            .op(
                "kst_not_a_token",
                "/operator/tenant/info",
                json!({"account_id": acct}),
            )
            .await;
        refused(s, &b, 401, "Unauthorized", "staff token");
        // Tenant keys are not staff tokens.
        let (s, b) = n
            .op(&owner, "/operator/tenant/info", json!({"account_id": acct}))
            .await;
        refused(s, &b, 401, "Unauthorized", "staff token");

        // spec: SVC-221 (created by the owner or an Admin only)
        let responder = n.member("rita", &[6]).await;
        let (s, b) = n
            .api(
                &responder,
                "/account/access-grant/create",
                json!({"scope": "read_all", "purpose": "debug"}),
            )
            .await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(b["error"]["code"], "AccessDenied", "{b}");
        // Bad input names the field and creates nothing.
        let now_s = n.now() / 1000;
        for (body, field) in [
            (
                json!({"scope": "read_all", "purpose": "x", "end_time": now_s + 31 * 86_400}),
                "end_time",
            ),
            (json!({"scope": "read_everything", "purpose": "x"}), "scope"),
            (json!({"scope": "read_all"}), "purpose"),
            (
                json!({"scope": "read_all", "purpose": "x", "channel_ids": [999_999]}),
                "channel_ids",
            ),
            (
                json!({"scope": "read_all", "purpose": "x", "grantee_staff_id": 999_999}),
                "grantee_staff_id",
            ),
        ] {
            let (s, b) = n.api(&owner, "/account/access-grant/create", body).await;
            refused(s, &b, 400, "InvalidParameter", field);
        }
        let list = n.ok(&owner, "/account/access-grant/list", json!({})).await;
        assert_eq!(list["items"], json!([]), "{list}");

        // spec: SVC-221 (grantee, scope, filter, purpose, ticket, end default 7 days)
        let g1 = n
            .ok(
                &owner,
                "/account/access-grant/create",
                json!({"grantee_staff_id": ann, "scope": "read_config", "channel_ids": [web],
                       "purpose": "webhook misfires", "ticket_id": "T-100"}),
            )
            .await;
        assert_eq!(g1["status"], "active", "{g1}");
        assert_eq!(
            g1["end_time"].as_i64().unwrap() - g1["start_time"].as_i64().unwrap(),
            7 * 86_400
        );
        let g1 = g1["grant_id"].as_i64().unwrap();
        // The staff member sees the grant to select.
        let (_, b) = n
            .op(
                &ann_token,
                "/operator/grant/list",
                json!({"account_id": acct}),
            )
            .await;
        assert_eq!(b["data"]["items"][0]["grant_id"], g1, "{b}");

        // Inside scope and filter: the web channel only.
        let (s, b) = n.op(&ann_token, "/operator/channel/list", at(g1)).await;
        assert_eq!(s, 200, "{b}");
        let ids: Vec<i64> = b["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["channel_id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![web]);
        let mut body = at(g1);
        body["channel_id"] = json!(web);
        let (s, b) = n
            .op(&ann_token, "/operator/channel/info", body.clone())
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["channel_name"], "web", "{b}");
        // Outside the filter, the scope, the grantee: 403 with the reason.
        body["channel_id"] = json!(db);
        let (s, b) = n.op(&ann_token, "/operator/channel/info", body).await;
        refused(
            s,
            &b,
            403,
            "AccessDenied",
            &format!("does not cover channel {db}"),
        );
        let mut body = at(g1);
        body["channel_ids"] = json!([db]);
        let (s, b) = n.op(&ann_token, "/operator/channel/list", body).await;
        refused(
            s,
            &b,
            403,
            "AccessDenied",
            &format!("does not cover channel {db}"),
        );
        let mut window = at(g1);
        window["start_time"] = json!(now_s - 3600);
        window["end_time"] = json!(now_s + 3600);
        let (s, b) = n
            .op(&ann_token, "/operator/incident/list", window.clone())
            .await;
        refused(s, &b, 403, "AccessDenied", "does not cover read_incidents");
        let (s, b) = n.op(&ben_token, "/operator/channel/list", at(g1)).await;
        refused(s, &b, 403, "AccessDenied", "not given to staff member");

        // spec: SVC-222
        // Each read is in the tenant's audit log: object, action, time, staff id, grant id.
        let reads = n.audit_ops("channel:read:list").await;
        assert_eq!(reads.len(), 1, "{reads:?}");
        assert_eq!(reads[0]["source"], "staff");
        assert_eq!(reads[0]["resource_type"], "channel");
        assert_eq!(reads[0]["resource_id"], web.to_string());
        assert_eq!(reads[0]["member_name"], format!("staff:{ann}"));
        let detail: Value = serde_json::from_str(reads[0]["body"].as_str().unwrap()).unwrap();
        assert_eq!(detail["grant_id"], g1);
        assert_eq!(detail["staff_id"], ann);
        assert_eq!(detail["action"], "read");
        assert_eq!(n.audit_ops("channel:read:info").await.len(), 1);
        // The creation is in the tenant's audit log too.
        let created = n.audit_ops("account_access_grant:write:create").await;
        assert_eq!(created.iter().filter(|d| d["result"] == "ok").count(), 1);

        // A support-team grant for incidents, no filter: any support staff member may use it.
        let g2 = n
            .ok(
                &owner,
                "/account/access-grant/create",
                json!({"scope": "read_incidents", "purpose": "missed calls", "ticket_id": "T-101"}),
            )
            .await["grant_id"]
            .as_i64()
            .unwrap();
        window["grant_id"] = json!(g2);
        for token in [&ann_token, &ben_token] {
            let (s, b) = n.op(token, "/operator/incident/list", window.clone()).await;
            assert_eq!(s, 200, "{b}");
            assert_eq!(b["data"]["total"], 2, "{b}");
        }
        let mut info = at(g2);
        info["incident_id"] = json!(inc_db);
        let (s, b) = n.op(&ann_token, "/operator/incident/info", info).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["data"]["title"], "db slow");
        // read_all with the web channel: the db incident is refused, its data not returned.
        let g3 = n
            .ok(
                &owner,
                "/account/access-grant/create",
                json!({"grantee_staff_id": ann, "scope": "read_all", "channel_ids": [web],
                       "purpose": "web outage review"}),
            )
            .await["grant_id"]
            .as_i64()
            .unwrap();
        let mut info = at(g3);
        info["incident_id"] = json!(inc_db);
        let (s, b) = n
            .op(&ann_token, "/operator/incident/info", info.clone())
            .await;
        refused(
            s,
            &b,
            403,
            "AccessDenied",
            &format!("does not cover channel {db}"),
        );
        assert!(b.get("data").is_none(), "{b}");
        info["incident_id"] = json!(inc_web);
        let (s, b) = n.op(&ann_token, "/operator/incident/info", info).await;
        assert_eq!(s, 200, "{b}");
        let mut w3 = window.clone();
        w3["grant_id"] = json!(g3);
        let (_, b) = n.op(&ann_token, "/operator/incident/list", w3).await;
        assert_eq!(b["data"]["total"], 1, "{b}");

        // spec: SVC-221 (revocable at any time, effective on the next call)
        let r = n
            .ok(
                &owner,
                "/account/access-grant/revoke",
                json!({"grant_id": g2}),
            )
            .await;
        assert_eq!(r["status"], "revoked", "{r}");
        let (s, b) = n
            .op(&ann_token, "/operator/incident/list", window.clone())
            .await;
        refused(s, &b, 403, "AccessDenied", "revoked");
        let revoked = n.audit_ops("account_access_grant:write:revoke").await;
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0]["resource_id"], g2.to_string());
        assert_eq!(revoked[0]["is_dangerous"], true);

        // Another tenant can neither see nor revoke these grants.
        let seed = BootstrapSeed {
            account_name: "Tenant B".into(),
            owner_email: "owner@tenant-b.example".into(),
            owner_name: "B Owner".into(),
            owner_password: "another long password".into(),
            app_key: format!("{:0>32}", "b0"),
            integration_key: format!("{:0>32}", "b1"),
        };
        let other = n
            .server
            .store()
            .create_account(&seed, n.now())
            .await
            .unwrap();
        let (s, b) = n
            .api(
                &other.app_key,
                "/account/access-grant/revoke",
                json!({"grant_id": g3}),
            )
            .await;
        refused(s, &b, 400, "ResourceNotFound", "grant_id");
        let list = n
            .ok(&other.app_key, "/account/access-grant/list", json!({}))
            .await;
        assert_eq!(list["items"], json!([]), "{list}");
        // A grant of tenant A opens nothing of tenant B.
        let b_account = other.account_id;
        let (s, b) = n
            .op(
                &ann_token,
                "/operator/channel/list",
                json!({"account_id": b_account, "grant_id": g1}),
            )
            .await;
        refused(s, &b, 403, "AccessDenied", "not a grant of this tenant");

        // spec: SVC-221 (expires automatically)
        n.advance(7 * DAY_MS);
        let (s, b) = n.op(&ann_token, "/operator/channel/list", at(g1)).await;
        refused(s, &b, 403, "AccessDenied", "expired");
        let store = n.server.store();
        let recorded = store.record_grant_expiries(n.now()).await.unwrap();
        // g1 and g3 ended; a concurrent worker pass may have recorded some already.
        assert!(recorded.iter().all(|(a, _)| *a == acct), "{recorded:?}");
        assert!(
            store
                .record_grant_expiries(n.now())
                .await
                .unwrap()
                .is_empty()
        );
        let expired = n.audit_ops("account_access_grant:write:expire").await;
        let mut ids: Vec<String> = expired
            .iter()
            .map(|d| d["resource_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        let mut want = vec![g1.to_string(), g3.to_string()];
        want.sort();
        assert_eq!(
            ids, want,
            "each expiry once; the revoked grant does not expire"
        );
        let list = n.ok(&owner, "/account/access-grant/list", json!({})).await;
        let statuses: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, vec!["expired", "revoked", "expired"]);

        // Every operator call is an operator record, refusals included.
        let ops = store.saas_audit(acct).await.unwrap();
        let staff_calls = ops
            .iter()
            .filter(|(_, actor, action, _)| {
                actor == &format!("staff:{ann}") && action.starts_with("/operator/")
            })
            .count();
        assert!(
            staff_calls >= 14,
            "{staff_calls} operator calls recorded: {ops:?}"
        );
        assert!(
            ops.iter()
                .any(|(_, _, action, detail)| action == "/operator/channel/list"
                    && detail.contains("AccessDenied"))
        );

        // A revoked staff member's token stops working.
        let (ok, out) = admin(&cfg, &["staff", "revoke", "--id", &ann.to_string()]).await;
        assert!(ok, "{out}");
        let (s, b) = n
            .op(
                &ann_token,
                "/operator/tenant/info",
                json!({"account_id": acct}),
            )
            .await;
        refused(s, &b, 401, "Unauthorized", "invalid");
        n.server.shutdown().await;
    }
);

on_both_backends!(
    lawful_disclosures_stay_hidden_while_an_order_holds,
    |url: String| async move {
        let n = Node::start(&url, saas).await;
        let cfg = cli_config(n.dir.path(), &url);
        let acct = n.account.to_string();
        let key = n.account_key().await;
        let ch = n
            .ok(&key, "/channel/create", json!({"channel_name": "web"}))
            .await["channel_id"]
            .as_i64()
            .unwrap();
        let inc = n
            .ok(
                &key,
                "/incident/create",
                json!({"title": "web down", "incident_severity": "Critical", "channel_id": ch}),
            )
            .await["incident_id"]
            .as_str()
            .unwrap()
            .to_string();
        let (lee, _) = add_staff(&cfg, "Lee", "legal").await;
        let (sam, _) = add_staff(&cfg, "Sam", "support").await;
        let lee = lee.to_string();
        let record = |staff: String, extra: Vec<&'static str>| {
            let cfg = cfg.clone();
            let acct = acct.clone();
            async move {
                let mut args = vec![
                    "lawful-request",
                    "record",
                    "--account",
                    acct.as_str(),
                    "--staff",
                    staff.as_str(),
                    "--authority",
                    "District Court",
                    "--legal-basis",
                    "Code 123 §4",
                    "--reference",
                    "DC-2025-7",
                    "--received",
                    "2025-01-01",
                    "--scope-requested",
                    "incidents of January",
                ]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
                args.extend(extra.into_iter().map(String::from));
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                admin(&cfg, &refs).await
            }
        };

        // spec: SVC-224 (staff legal record)
        let (ok, out) = record(sam.to_string(), vec!["--notice", "before"]).await;
        assert!(!ok && out.contains("role legal"), "{out}");
        let (ok, out) = record(lee.clone(), vec!["--notice", "sometime"]).await;
        assert!(!ok && out.contains("notice"), "{out}");
        let (ok, out) = record(
            lee.clone(),
            vec!["--nondisclosure", "--notice", "forbidden"],
        )
        .await;
        assert!(ok, "{out}");
        assert!(out.contains("lawful request 1 "), "{out}");

        // spec: SVC-225 (review date every 90 days when notice is forbidden)
        let (ok, out) = admin(&cfg, &["lawful-request", "list", "--account", &acct]).await;
        assert!(ok, "{out}");
        assert!(out.contains("in force (no end date)"), "{out}");
        assert!(out.contains("next review: "), "{out}");
        assert!(out.contains("not disclosed"), "{out}");

        // spec: SVC-224 (disclosure as an export job, logged as in SVC-222)
        let package = n.dir.path().join("package.json");
        let disclose = |id: &'static str| {
            let cfg = cfg.clone();
            let lee = lee.clone();
            let package = package.clone();
            async move {
                admin(
                    &cfg,
                    &[
                        "lawful-request",
                        "disclose",
                        "--id",
                        id,
                        "--staff",
                        &lee,
                        "--tables",
                        "incidents",
                        "--approvers",
                        "Lee,Counsel",
                        "--method",
                        "encrypted media",
                        "--out",
                        package.to_str().unwrap(),
                    ],
                )
                .await
            }
        };
        let (ok, out) = disclose("1").await;
        assert!(ok, "{out}");
        let bytes = std::fs::read(&package).unwrap();
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        assert!(out.contains(&sha), "{out}");
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["tables"]["incidents"][0]["incident_id"], inc.as_str());
        let (ok, out) = disclose("1").await;
        assert!(!ok && out.contains("already disclosed"), "{out}");

        // Hidden from the tenant while the order is in force; kept in the operator records.
        let op = "incidents:read:lawful_disclosure";
        assert!(n.audit_ops(op).await.is_empty());
        let ops = n.server.store().saas_audit(n.account).await.unwrap();
        assert!(ops.iter().any(|(_, _, action, _)| action == op), "{ops:?}");
        let (ok, out) = admin(&cfg, &["lawful-request", "list"]).await;
        assert!(
            ok && out.contains(&sha) && out.contains("incidents 1"),
            "{out}"
        );

        // Revealed once the order lapses.
        let (ok, out) = admin(&cfg, &["lawful-request", "lapse", "--id", "1"]).await;
        assert!(ok, "{out}");
        // The CLI stamps the lapse with the real time; the server's clock passes it.
        n.advance(60_000);
        let shown = n.audit_ops(op).await;
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert_eq!(shown[0]["resource_id"], inc.as_str());
        assert_eq!(shown[0]["source"], "staff");
        let (ok, out) = admin(&cfg, &["lawful-request", "lapse", "--id", "1"]).await;
        assert!(!ok, "{out}");

        // An order with an end date hides until then, by the server's clock.
        let until = jiff::Timestamp::from_millisecond(n.now() + 2 * DAY_MS)
            .unwrap()
            .to_string();
        let until: &'static str = Box::leak(until.into_boxed_str());
        let (ok, out) = record(
            lee.clone(),
            vec![
                "--nondisclosure",
                "--nondisclosure-until",
                until,
                "--notice",
                "after",
            ],
        )
        .await;
        assert!(ok, "{out}");
        let (ok, out) = disclose("2").await;
        assert!(ok, "{out}");
        assert_eq!(n.audit_ops(op).await.len(), 1);
        n.advance(2 * DAY_MS);
        assert_eq!(n.audit_ops(op).await.len(), 2);

        // spec: SVC-225 (the owner is told before the disclosure, or promptly after it;
        // never while the law forbids it)
        let (ok, out) = record(lee.clone(), vec!["--notice", "before"]).await;
        assert!(ok && out.contains("lawful request 3 "), "{out}");
        let (ok, out) = record(lee.clone(), vec!["--notice", "after"]).await;
        assert!(ok && out.contains("lawful request 4 "), "{out}");
        let (ok, out) = disclose("4").await;
        assert!(ok, "{out}");
        let store = n.server.store();
        let mut told = Vec::new();
        for _ in 0..200 {
            told = store
                .saas_notices(n.account, 0, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.category == "lawful_disclosure")
                .map(|r| (r.related, r.template_id, r.channel))
                .collect::<Vec<_>>();
            if told.len() >= 2 && store.saas_notice_outbox_len().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        told.sort();
        assert_eq!(
            told,
            vec![
                (
                    "lawful_request:3".to_string(),
                    "lawful_request_before".to_string(),
                    "email".to_string()
                ),
                (
                    "lawful_request:4".to_string(),
                    "lawful_request_after".to_string(),
                    "email".to_string()
                ),
            ],
            "requests 1 and 2 were under a non-disclosure order: no notice"
        );
        n.server.shutdown().await;
    }
);

on_both_backends!(
    self_hosted_has_no_staff_and_no_operator_api,
    |url: String| async move {
        let n = Node::start(&url, |_| {}).await;
        // spec: SVC-403
        let (s, b) = n
            .op(
                "kst_anything",
                "/operator/tenant/info",
                json!({"account_id": n.account}),
            )
            .await;
        assert_eq!(s, 404, "{b}");
        let (s, b) = n
            .api(&n.owner_key(), "/account/access-grant/list", json!({}))
            .await;
        refused(s, &b, 400, "InvalidParameter", "SaaS mode");
        let path = n.dir.path().join("self.toml");
        let db = if url.is_empty() {
            String::new()
        } else {
            format!("database_url = {url:?}\n")
        };
        std::fs::write(&path, format!("data_dir = {:?}\n{db}", n.dir.path())).unwrap();
        let (ok, out) = admin(
            &path,
            &["staff", "add", "--name", "Ann", "--role", "support"],
        )
        .await;
        assert!(!ok && out.contains("self-hosted"), "{out}");
        n.server.shutdown().await;
    }
);

/// Waits (bounded) until the sink holds `n` mails: the node gives notices in the background.
async fn mails(sink: &common::smtp_sink::Smtp, n: usize) -> Vec<common::smtp_sink::Mail> {
    for _ in 0..200 {
        let got = sink.mails();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("expected {n} mails, got {:?}", sink.mails());
}

/// (template, channel, status) of the tenant's access-grant notices.
async fn grant_notices(n: &Node, owner: &str) -> Vec<(String, String, String)> {
    n.ok(owner, "/account/notice/list", json!({"limit": 100}))
        .await["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["category"] == "access_grant")
        .map(|i| {
            (
                i["template_id"].as_str().unwrap().to_string(),
                i["channel"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The access-grant notices once `count` are recorded (the records follow the e-mails).
async fn recorded(n: &Node, owner: &str, count: usize) -> Vec<(String, String, String)> {
    for _ in 0..200 {
        let got = grant_notices(n, owner).await;
        if got.len() >= count {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "expected {count} notices, got {:?}",
        grant_notices(n, owner).await
    );
}

on_both_backends!(
    the_owner_is_told_of_each_grant_made_revoked_and_expired,
    |url: String| async move {
        let sink = common::smtp_sink::Smtp::start().await;
        let (host, port) = (sink.addr.ip().to_string(), sink.addr.port());
        let n = Node::start(&url, |c| {
            saas(c);
            c.notify.email = Some(klaxon_notify::SmtpConfig {
                host,
                port,
                security: klaxon_notify::SmtpSecurity::None,
                from: "Example Cloud <noreply@example.com>".into(),
                ..klaxon_notify::SmtpConfig::default()
            });
        })
        .await;
        let owner = n.owner_key();
        // spec: SVC-221, SVC-316 (access_grant: in-app and e-mail) — a grant made.
        let g1 = n
            .ok(
                &owner,
                "/account/access-grant/create",
                json!({"scope": "read_incidents", "purpose": "ticket 42: missing pages",
                       "ticket_id": "42"}),
            )
            .await["grant_id"]
            .as_i64()
            .unwrap();
        let got = mails(&sink, 1).await;
        assert!(
            got[0]
                .data
                .contains(&format!("Operator access granted (grant {g1})")),
            "{}",
            got[0].data
        );
        assert!(got[0].data.contains("Purpose: ticket 42: missing pages"));
        // spec: SVC-312 — each sending is recorded, the in-app copy in the owner's inbox.
        let mut seen = recorded(&n, &owner, 2).await;
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("access_grant_created".into(), "email".into(), "sent".into()),
                (
                    "access_grant_created".into(),
                    "in_app".into(),
                    "sent".into()
                ),
            ]
        );

        // Revoked.
        n.ok(
            &owner,
            "/account/access-grant/revoke",
            json!({"grant_id": g1}),
        )
        .await;
        let got = mails(&sink, 2).await;
        assert!(
            got[1]
                .data
                .contains(&format!("Operator access revoked (grant {g1})"))
        );
        // Revoking again changes nothing and tells nobody twice.
        n.ok(
            &owner,
            "/account/access-grant/revoke",
            json!({"grant_id": g1}),
        )
        .await;

        // Expired: a one-hour grant, then the clock moves past its end.
        let end = n.now() / 1000 + 3600;
        let g2 = n
            .ok(
                &owner,
                "/account/access-grant/create",
                json!({"scope": "read_config", "purpose": "config review", "end_time": end}),
            )
            .await["grant_id"]
            .as_i64()
            .unwrap();
        mails(&sink, 3).await;
        n.advance(2 * 3_600_000);
        let got = mails(&sink, 4).await;
        assert!(
            got[3]
                .data
                .contains(&format!("Operator access ended (grant {g2})"))
        );
        let seen = recorded(&n, &owner, 8).await;
        assert_eq!(seen.len(), 8, "{seen:?}");
        assert_eq!(
            seen.iter()
                .filter(|(t, c, _)| t == "access_grant_expired" && c == "email")
                .count(),
            1
        );
        assert_eq!(sink.mails().len(), 4, "the second revoke told nobody");
        assert_eq!(n.server.store().saas_notice_outbox_len().await.unwrap(), 0);
        n.server.shutdown().await;
    }
);
