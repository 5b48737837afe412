//! The console's Account page of a SaaS tenant (docs/saas.md "The Account page") over plain
//! HTTP: it lists what the Open API lists (licences, agreements, notices, delivery providers,
//! access grants, transfer consents); accepting an agreement, granting and revoking operator
//! access, giving and revoking transfer consent, claiming SLA compensation and taking an
//! export store what the Open API then reads, with
//! the console as the audited source; bad input is refused beside its field with what was
//! typed kept and nothing stored; the API's permissions decide who sees and does what; a
//! self-hosted install has no such page. Time is a ManualClock. Every test runs on SQLite,
//! and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use common::saas::{cli, cli_config, ms, saas, tenant_audit};
use common::{ManualClock, console_session, test_config};
use klaxon_server::Server;
use klaxon_server::config::RegionConfig;
use serde_json::{Value, json};

const AT: &str = "2025-06-02T09:00:00Z";

struct Node {
    server: Server,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    account: i64,
}

impl Node {
    async fn start(database_url: &str, saas_mode: bool) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        if saas_mode {
            saas(&mut config);
            config.deployment.regions = ["cn-north", "eu-west"]
                .into_iter()
                .map(|id| RegionConfig {
                    id: id.into(),
                    name: id.into(),
                    base_url: format!("https://{id}.example.com"),
                })
                .collect();
        }
        let clock = Arc::new(ManualClock(AtomicI64::new(ms(AT))));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let account = server.bootstrap().account_id;
        Node {
            server,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            clock,
            dir,
            account,
        }
    }

    async fn stop(self) {
        self.server.shutdown().await;
    }

    /// An Open API call with the owner's APP key: its `data`.
    async fn api(&self, path: &str, body: Value) -> Value {
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
        assert_eq!(resp.status(), 200, "{path}");
        let b: Value = resp.json().await.unwrap();
        assert!(b.get("error").is_none(), "{path}: {b}");
        b["data"].clone()
    }

    async fn get(&self, cookie: &str, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.server.base_url()))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// An htmx form POST with the session's CSRF token.
    async fn post(
        &self,
        (cookie, csrf): &(String, String),
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.server.base_url()))
            .header("cookie", cookie)
            .header("hx-request", "true")
            .header("x-klaxon-csrf", csrf)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// A member with `role_ids` and a console session: (member id, (cookie, CSRF token)).
    async fn member(&self, name: &str, role_ids: &[i64]) -> (i64, (String, String)) {
        let b = self
            .api(
                "/member/invite",
                json!({"members": [{"email": format!("{name}@example.com"), "role_ids": role_ids}]}),
            )
            .await;
        let id = b["items"][0]["member_id"].as_i64().unwrap();
        let s = self
            .server
            .store()
            .create_session(self.account, id, 3_600_000, ms(AT))
            .await
            .unwrap();
        (
            id,
            (
                format!("klaxon_session={}", s.token),
                s.session.csrf_token.clone(),
            ),
        )
    }

    async fn grants(&self) -> Vec<Value> {
        self.api("/account/access-grant/list", json!({})).await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn consents(&self) -> Vec<Value> {
        self.api("/account/transfer-consent/list", json!({})).await["items"]
            .as_array()
            .unwrap()
            .clone()
    }
}

/// A terms-of-service version published now and in force from July: the tenant has not
/// decided on it yet.
async fn publish_pending_terms(server: &Server) -> i64 {
    let settings = server.saas_settings().unwrap();
    let (v, _) = server
        .store()
        .saas_publish_document(
            settings,
            &klaxon_store::NewDocument {
                doc_type: klaxon_saas::agreement::DocumentType::TermsOfService,
                version: "2025-07".into(),
                language: "en-US".into(),
                body: "The terms of service, July edition.".into(),
                summary: "Clearer wording.".into(),
                material: false,
                justification: String::new(),
                published_at: ms(AT),
                effective_at: ms("2025-07-01T00:00:00Z"),
                author: "legal".into(),
            },
            |_| Vec::new(),
        )
        .await
        .unwrap();
    v.version_id
}

/// The error paragraph drawn beside input `id`.
fn field_error(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}-error\""))
        .unwrap_or_else(|| panic!("no error beside {id} in {html}"));
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</p>").unwrap();
    rest[open..close].to_string()
}

on_both_backends!(
    the_page_shows_and_changes_what_the_open_api_holds,
    |url: String| async move {
        let n = Node::start(&url, true).await;
        let version_id = publish_pending_terms(&n.server).await;
        // spec: SVC-214
        // A delivery provider of the region (its change notice reaches the tenant).
        n.server
            .store()
            .saas_change_region_provider(
                n.server.saas_settings().unwrap(),
                &klaxon_saas::providers::Change {
                    region: "cn-north".into(),
                    channel: "sms".into(),
                    provider: "Example SMS Ltd".into(),
                    location: "Shanghai, China".into(),
                    remove: false,
                    effective_at: AT.parse().unwrap(),
                },
                ms(AT),
                "ops",
            )
            .await
            .unwrap();
        let owner = console_session(&n.server).await;

        // spec: SVC-058, SVC-030, SVC-312, SVC-214
        // The page draws what the API lists, section by section.
        let (s, html) = n.get(&owner.0, "/account").await;
        assert_eq!(s, 200, "{html}");
        assert!(html.contains("href=\"/account\" aria-current=\"page\">Account</a>"));
        let licence = n.api("/account/licence/info", json!({})).await;
        assert!(html.contains(&format!(
            "{} of {} in use, {} free",
            licence["in_use"], licence["pool"], licence["free"]
        )));
        let agreements = n.api("/account/agreement/list", json!({})).await;
        let agreements = agreements["items"].as_array().unwrap();
        assert!(!agreements.is_empty());
        for v in agreements {
            assert!(
                html.contains(&format!("id=\"agreement-{}\"", v["version_id"])),
                "{v}"
            );
        }
        assert!(html.contains(&format!(
            "hx-post=\"/account/agreement/{version_id}/accept\""
        )));
        assert!(html.contains(&format!(
            "hx-post=\"/account/agreement/{version_id}/refuse\""
        )));
        let providers = n.api("/account/delivery-provider/list", json!({})).await;
        assert_eq!(providers["total"], 1, "{providers}");
        assert!(html.contains("Example SMS Ltd"));
        assert!(html.contains("Shanghai, China"));
        assert!(html.contains("No access grants."));
        assert!(html.contains("No transfer consents."));

        // spec: SVC-036
        // Accepting from the page records the owner's explicit acceptance from the web.
        let (s, body) = n
            .post(
                &owner,
                &format!("/account/agreement/{version_id}/accept"),
                &[],
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("Acceptance recorded."));
        let v = n.api("/account/agreement/list", json!({})).await["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version_id"] == version_id)
            .cloned()
            .unwrap();
        assert_eq!(v["decision"]["decision"], "accepted", "{v}");
        assert!(
            v["decision"]["method"]
                .as_str()
                .unwrap()
                .starts_with("explicit"),
            "{v}"
        );
        assert_eq!(v["decision"]["client_type"], "web", "{v}");
        assert!(!body.contains(&format!("/account/agreement/{version_id}/accept")));

        // spec: SVC-221
        // Hours the API's limit refuses: the error beside the hours, everything typed kept,
        // no grant stored. A word for hours is refused the same way before any call.
        for (hours, needle) in [("100000", "days"), ("two", "whole number")] {
            let (s, body) = n
                .post(
                    &owner,
                    "/account/grant",
                    &[
                        ("scope", "read_incidents"),
                        ("hours", hours),
                        ("purpose", "Ticket 42: alerts missing"),
                        ("ticket_id", "T-42"),
                    ],
                )
                .await;
            assert_eq!(s, 400, "{body}");
            assert!(field_error(&body, "hours").contains(needle), "{body}");
            assert!(body.contains(&format!("value=\"{hours}\"")));
            assert!(body.contains("value=\"Ticket 42: alerts missing\""));
            assert!(body.contains("<option value=\"read_incidents\" selected>"));
            assert!(n.grants().await.is_empty());
        }
        // A missing purpose is the API's refusal, beside the purpose.
        let (s, body) = n
            .post(
                &owner,
                "/account/grant",
                &[("scope", "read_all"), ("hours", "4"), ("purpose", " ")],
            )
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(field_error(&body, "purpose").contains("purpose"), "{body}");
        assert!(n.grants().await.is_empty());

        // A grant made on the page is the API's grant: scope, purpose, end after 48 hours.
        let (s, body) = n
            .post(
                &owner,
                "/account/grant",
                &[
                    ("scope", "read_incidents"),
                    ("hours", "48"),
                    ("purpose", "Ticket 42: alerts missing"),
                    ("ticket_id", "T-42"),
                ],
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let grants = n.grants().await;
        assert_eq!(grants.len(), 1, "{grants:?}");
        let g = &grants[0];
        assert_eq!(g["scope"], "read_incidents");
        assert_eq!(g["purpose"], "Ticket 42: alerts missing");
        assert_eq!(g["ticket_id"], "T-42");
        assert_eq!(g["grantee"], "support_team");
        assert_eq!(g["end_time"], ms(AT) / 1000 + 48 * 3600);
        assert_eq!(g["status"], "active");
        let grant_id = g["grant_id"].as_i64().unwrap();
        assert!(body.contains(&format!("id=\"grant-{grant_id}\"")));
        // Revoking it on the page revokes it for the API.
        let (s, body) = n
            .post(&owner, &format!("/account/grant/{grant_id}/revoke"), &[])
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(n.grants().await[0]["status"], "revoked");
        // spec: SVC-312
        // The notices the API lists (the grant's notice to the owner among them once sent)
        // are the ones the page draws.
        let notices = n.api("/account/notice/list", json!({"limit": 20})).await;
        let notices = notices["items"].as_array().unwrap().clone();
        let (_, html) = n.get(&owner.0, "/account").await;
        for x in &notices {
            assert!(
                html.contains(&format!("id=\"notice-{}\"", x["notice_id"])),
                "{x}"
            );
        }
        assert_eq!(html.matches("id=\"notice-").count(), notices.len());
        assert_eq!(notices.is_empty(), html.contains("No notices yet."));
        // Revoking a grant that is not the account's is the API's refusal (400
        // ResourceNotFound, as the Open API answers), shown on the page.
        let (s, body) = n.post(&owner, "/account/grant/999999/revoke", &[]).await;
        assert_eq!(s, 400, "{body}");
        assert!(field_error(&body, "_grant").contains("999999"), "{body}");

        // spec: SVC-212
        // An unknown region: refused beside the region, typed values kept, nothing stored.
        let (s, body) = n
            .post(
                &owner,
                "/account/consent",
                &[
                    ("destination_region", "mars-1"),
                    ("consent_purpose", "export"),
                    ("categories", "configuration"),
                    ("categories", "audit_log"),
                ],
            )
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(
            field_error(&body, "destination_region").contains("is not one of the operator"),
            "{body}"
        );
        assert!(body.contains("value=\"mars-1\""));
        assert!(body.contains("<option value=\"export\" selected>"));
        assert!(body.contains("value=\"audit_log\" checked"));
        assert!(!body.contains("value=\"members_and_contacts\" checked"));
        assert!(n.consents().await.is_empty());
        // No category: refused beside the categories.
        let (s, body) = n
            .post(
                &owner,
                "/account/consent",
                &[
                    ("destination_region", "eu-west"),
                    ("consent_purpose", "region_migration"),
                ],
            )
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(
            field_error(&body, "categories").contains("at least one"),
            "{body}"
        );
        assert!(n.consents().await.is_empty());

        // A consent given on the page is the API's consent; revoking it on the page too.
        let (s, body) = n
            .post(
                &owner,
                "/account/consent",
                &[
                    ("destination_region", "eu-west"),
                    ("consent_purpose", "region_migration"),
                    ("categories", "configuration"),
                    ("categories", "audit_log"),
                ],
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let consents = n.consents().await;
        assert_eq!(consents.len(), 1, "{consents:?}");
        let c = &consents[0];
        assert_eq!(c["destination_region"], "eu-west");
        assert_eq!(c["purpose"], "region_migration");
        assert_eq!(c["categories"], json!(["audit_log", "configuration"]));
        assert_eq!(c["status"], "in_force");
        let consent_id = c["consent_id"].as_i64().unwrap();
        assert!(body.contains(&format!("id=\"consent-{consent_id}\"")));
        let (s, body) = n
            .post(
                &owner,
                &format!("/account/consent/{consent_id}/revoke"),
                &[],
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(n.consents().await[0]["status"], "revoked");

        // spec: RSP-600
        // Every write is in the tenant's audit log with the console as its source.
        let audit = tenant_audit(n.server.store(), n.account, ms(AT)).await;
        for (resource, action) in [
            ("account_agreement", "accept"),
            ("account_access_grant", "create"),
            ("account_access_grant", "revoke"),
            ("account_transfer_consent", "create"),
            ("account_transfer_consent", "revoke"),
        ] {
            assert!(
                audit.iter().any(|r| r.source == "console"
                    && r.operation == format!("{resource}:write:{action}")
                    && r.result == "ok"),
                "{resource} {action}: {:?}",
                audit
                    .iter()
                    .map(|r| (&r.source, &r.operation, &r.result))
                    .collect::<Vec<_>>()
            );
        }

        // A write without the session's CSRF token is refused and changes nothing.
        let (s, _) = n
            .post(
                &(owner.0.clone(), String::new()),
                "/account/grant",
                &[("scope", "read_all"), ("hours", "4"), ("purpose", "x")],
            )
            .await;
        assert_eq!(s, 403);
        assert_eq!(n.grants().await.len(), 1);
        n.stop().await;
    }
);

on_both_backends!(
    members_get_what_the_open_api_allows_them,
    |url: String| async move {
        let n = Node::start(&url, true).await;
        let version_id = publish_pending_terms(&n.server).await;

        // spec: RSP-520
        // An ordinary member (Responder) is refused like `/account/notice/list` refuses them,
        // sees no Account entry, and cannot write through the page's routes.
        let (_, member) = n.member("rita", &[6]).await;
        let (s, html) = n.get(&member.0, "/account").await;
        assert_eq!(s, 403, "{html}");
        let (s, html) = n.get(&member.0, "/incidents").await;
        assert_eq!(s, 200, "{html}");
        assert!(!html.contains("href=\"/account\""));
        let (s, _) = n
            .post(
                &member,
                "/account/grant",
                &[("scope", "read_all"), ("hours", "4"), ("purpose", "x")],
            )
            .await;
        assert_eq!(s, 403);
        let (s, _) = n
            .post(
                &member,
                &format!("/account/agreement/{version_id}/accept"),
                &[],
            )
            .await;
        assert_eq!(s, 403);
        assert!(n.grants().await.is_empty());

        // spec: SVC-221, SVC-038, SVC-003
        // An Admin reads the page and may grant access and accept, but refusing an agreement
        // and transfer consent are the owner's: no such controls, and the routes refuse.
        let (_, admin) = n.member("ada", &[2]).await;
        let (s, html) = n.get(&admin.0, "/incidents").await;
        assert_eq!(s, 200, "{html}");
        assert!(html.contains("href=\"/account\""));
        let (s, html) = n.get(&admin.0, "/account").await;
        assert_eq!(s, 200, "{html}");
        assert!(html.contains("id=\"grant-form\""));
        assert!(!html.contains("id=\"consent-form\""));
        assert!(html.contains(&format!("/account/agreement/{version_id}/accept")));
        assert!(!html.contains(&format!("/account/agreement/{version_id}/refuse")));
        let (s, body) = n
            .post(
                &admin,
                &format!("/account/agreement/{version_id}/refuse"),
                &[],
            )
            .await;
        assert_eq!(s, 403, "{body}");
        assert!(field_error(&body, "_agreements").contains("only the account owner"));
        let (s, body) = n
            .post(
                &admin,
                "/account/consent",
                &[
                    ("destination_region", "eu-west"),
                    ("consent_purpose", "region_migration"),
                    ("categories", "configuration"),
                ],
            )
            .await;
        assert_eq!(s, 403, "{body}");
        assert!(n.consents().await.is_empty());
        let (s, body) = n
            .post(
                &admin,
                "/account/grant",
                &[
                    ("scope", "read_config"),
                    ("hours", "2"),
                    ("purpose", "Routing help"),
                ],
            )
            .await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(n.grants().await.len(), 1);
        n.stop().await;
    }
);

on_both_backends!(self_hosted_has_no_account_page, |url: String| async move {
    // spec: SVC-403
    let n = Node::start(&url, false).await;
    let owner = console_session(&n.server).await;
    let (s, html) = n.get(&owner.0, "/account").await;
    assert_eq!(s, 404, "{html}");
    let (s, html) = n.get(&owner.0, "/incidents").await;
    assert_eq!(s, 200, "{html}");
    assert!(!html.contains("href=\"/account\""));
    let (s, _) = n
        .post(
            &owner,
            "/account/grant",
            &[("scope", "read_all"), ("hours", "4"), ("purpose", "x")],
        )
        .await;
    assert_eq!(s, 404);
    n.stop().await;
});

on_both_backends!(
    the_sla_report_claims_and_exports_from_the_page,
    |url: String| async move {
        let n = Node::start(&url, true).await;
        common::saas::publish_terms(&n.server).await;
        let cfg = cli_config(n.dir.path(), &url);
        let acct = n.account.to_string();
        // A paid Pro term from June (covered by the SLA, SVC-270) and two failed cycles in
        // June (SVC-275).
        for args in [
            vec![
                "pay",
                "--account",
                &acct,
                "--amount",
                "30000.00",
                "--reference",
                "bank-1",
                "--at",
                AT,
            ],
            vec![
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
                AT,
            ],
        ] {
            let (ok, out) = cli(&cfg, &args).await;
            assert!(ok, "{out}");
        }
        n.server
            .store()
            .sla_add_counts(&[
                (n.account, ms("2025-06-10T01:00:00Z"), 2000, 2),
                (n.account, ms("2025-06-10T01:10:00Z"), 10, 1),
            ])
            .await
            .unwrap();
        // Mid-July: June's claim window is open (SVC-280).
        n.clock.0.store(
            ms("2025-07-15T09:00:00Z"),
            std::sync::atomic::Ordering::SeqCst,
        );
        let owner = console_session(&n.server).await;

        // spec: SVC-282
        // The page shows the last full month's report first, with the API's figures.
        let report = n
            .api("/account/sla/report", json!({"month": "2025-06"}))
            .await;
        assert_eq!(report["covered"], true, "{report}");
        assert_eq!(report["failed_minutes"], 10, "{report}");
        let (s, html) = n.get(&owner.0, "/account").await;
        assert_eq!(s, 200, "{html}");
        assert!(html.contains("id=\"month\" name=\"month\" type=\"month\" value=\"2025-06\""));
        assert!(
            html.contains("<dd id=\"sla-failed-minutes\">10</dd>"),
            "{html}"
        );
        let compensation = report["compensation"].as_str().unwrap();
        assert_ne!(compensation, "0.00");
        assert!(html.contains(&format!(
            "<dd id=\"sla-compensation\">{compensation} {}</dd>",
            report["currency"].as_str().unwrap()
        )));
        assert_eq!(html.matches("data-label=\"Error rate\"").count(), 2);
        assert!(html.contains("hx-post=\"/account/sla/claim\""));
        assert!(html.contains("No claims."));
        // Another month by the month input; a month that is not one is said beside it.
        let (s, html) = n.get(&owner.0, "/account?month=2025-05").await;
        assert_eq!(s, 200);
        assert!(
            html.contains("<dd id=\"sla-failed-minutes\">0</dd>"),
            "{html}"
        );
        assert!(
            !html.contains("hx-post=\"/account/sla/claim\""),
            "nothing to claim"
        );
        let (s, html) = n.get(&owner.0, "/account?month=June").await;
        assert_eq!(s, 200);
        assert!(field_error(&html, "month").contains("month"), "{html}");
        assert!(!html.contains("id=\"sla-report\""));

        // spec: SVC-280, SVC-281
        // Claiming from the page records the claim with the report's figures; the claim
        // list shows it. A second claim for the month is refused beside the section and
        // records nothing.
        let (s, body) = n
            .post(&owner, "/account/sla/claim", &[("month", "2025-06")])
            .await;
        assert_eq!(s, 200, "{body}");
        assert!(body.contains("Claim for 2025-06 submitted"), "{body}");
        let claims = n.api("/account/sla/claim/list", json!({})).await;
        let claims = claims["items"].as_array().unwrap().clone();
        assert_eq!(claims.len(), 1, "{claims:?}");
        assert_eq!(claims[0]["compensation"], compensation);
        assert_eq!(
            claims[0]["submitted_by"],
            format!("member:{}", n.server.bootstrap().owner_member_id)
        );
        assert!(body.contains(&format!("id=\"claim-{}\"", claims[0]["claim_id"])));
        let (s, body) = n
            .post(&owner, "/account/sla/claim", &[("month", "2025-06")])
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(!field_error(&body, "_sla").is_empty(), "{body}");
        let again = n.api("/account/sla/claim/list", json!({})).await;
        assert_eq!(again["items"].as_array().unwrap().len(), 1);

        // spec: SVC-182
        // An export from the page: the link is shown once, downloads the archive, and the
        // list shows the export (without the link).
        let (s, html) = n.get(&owner.0, "/account").await;
        assert_eq!(s, 200);
        assert!(html.contains("No exports yet."));
        let (s, body) = n.post(&owner, "/account/export", &[]).await;
        assert_eq!(s, 200, "{body}");
        let prefix = "id=\"export-link\"><a href=\"";
        let start = body.find(prefix).unwrap() + prefix.len();
        let link = body[start..start + body[start..].find('"').unwrap()]
            .replace("&#x2f;", "/")
            .replace("&amp;", "&");
        let link = link.as_str();
        assert!(link.contains("/account/export/download/"), "{link}");
        let exports = n.api("/account/export/list", json!({})).await;
        let export_id = exports["items"][0]["export_id"].as_i64().unwrap();
        assert_eq!(exports["items"][0]["status"], "ready", "{exports}");
        assert!(body.contains(&format!("id=\"export-{export_id}\"")));
        let archive = n.http.get(link).send().await.unwrap();
        assert_eq!(archive.status(), 200);
        assert_eq!(
            &archive.bytes().await.unwrap()[..2],
            &[0x1f, 0x8b],
            "a gzip archive"
        );
        let (_, html) = n.get(&owner.0, "/account").await;
        let token = link.rsplit('/').next().unwrap();
        assert!(!html.contains(token), "the link is shown once");
        // The export is audited with the console as its source.
        let audit = tenant_audit(n.server.store(), n.account, ms("2025-07-15T09:00:00Z")).await;
        for (resource, action) in [
            ("account_sla_claim", "submit"),
            ("account_export", "create"),
        ] {
            assert!(
                audit.iter().any(|r| r.source == "console"
                    && r.operation == format!("{resource}:write:{action}")),
                "{resource} {action}: {audit:?}"
            );
        }
        n.stop().await;
    }
);
