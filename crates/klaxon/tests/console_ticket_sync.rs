//! The console's ticket-sync integrations (docs/ticket-sync.md, "In the console"): the list,
//! the create and edit form and deletion, over plain HTTP for exact answers (what a save
//! stores is what the Open API then reads; a secret is never shown back and an empty secret
//! input keeps the stored one), and end to end in a headless Chromium with desktop and 375-px
//! screenshots in `$CARGO_TARGET_DIR/console-screenshots`.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver`; without them it fails
//! when `CI=true` and is skipped with a printed reason otherwise. Every test runs on SQLite,
//! and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::browser;

use browser::{
    Browser, accept_confirms, browser_sign_in, click, exists, shoot, text_of, type_into,
    unlabelled_inputs, until, value_of,
};
use common::{TestServer, ok};
use fantoccini::Locator;
use serde_json::json;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn channel(t: &TestServer) -> i64 {
    let channels = ok(t.api("/channel/list", json!({})).await);
    channels["items"][0]["channel_id"].as_i64().unwrap()
}

async fn get(t: &TestServer, cookie: &str, path: &str) -> (u16, String) {
    let resp = no_redirects()
        .get(format!("{}{path}", t.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn post(
    t: &TestServer,
    cookie: &str,
    csrf: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    no_redirects()
        .post(format!("{}{path}", t.base))
        .header("cookie", cookie)
        .header("hx-request", "true")
        .header("x-klaxon-csrf", csrf)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap()
}

/// RSP-403 through the console: a refused save names its field with the typed values kept
/// and nothing stored; a save stores what the form shows; the secret is never in a page and
/// an empty secret input keeps it; deleting removes the integration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_syncs_are_managed_through_their_pages() {
    over_http("").await;
    if let Some(url) = common::fresh_postgres().await {
        over_http(&url).await;
    }
}

async fn over_http(database_url: &str) {
    // spec: RSP-403, RSP-405, RSP-407
    let mut t = TestServer::start(database_url).await;
    let cid = channel(&t).await;
    let cid_s = cid.to_string();
    let (cookie, csrf) = common::console_session(t.server.as_ref().unwrap()).await;
    let (status, html) = get(&t, &cookie, "/settings").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/settings/ticket-sync\""), "{html}");
    let (status, html) = get(&t, &cookie, "/settings/ticket-sync/new").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"ticket-sync-form\""), "{html}");

    // Refused: no project key. Named beside the field, typed values kept, nothing stored.
    let mut form = vec![
        ("system", "jira"),
        ("name", "Ops Jira"),
        ("channel_id", cid_s.as_str()),
        ("trigger", "manual"),
        ("direction", "to"),
        ("status", "enabled"),
        ("platform", "cloud"),
        ("base_url", "https://acme.atlassian.net"),
        ("username", "ops@example.com"),
        ("secret", "tok-SECRET-1"),
        ("issue_type", "Bug"),
        ("sev_Critical", "Highest"),
        ("field_mapping", "labels.host=customfield_1"),
    ];
    let resp = post(&t, &cookie, &csrf, "/settings/ticket-sync", &form).await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"project_key-error\""), "{html}");
    assert!(html.contains("value=\"Ops Jira\""), "{html}");
    assert!(
        !html.contains("tok-SECRET-1"),
        "a secret is never sent back"
    );
    assert_eq!(ok(t.api("/ticket-sync/list", json!({})).await)["total"], 0);

    form.push(("project_key", "OPS"));
    let resp = post(&t, &cookie, &csrf, "/settings/ticket-sync", &form).await;
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let list = ok(t.api("/ticket-sync/list", json!({})).await);
    let item = &list["items"][0];
    let id = item["integration_id"].as_i64().unwrap();
    assert_eq!(item["name"], "Ops Jira");
    assert_eq!(item["channel_ids"], json!([cid]));
    assert_eq!(item["severity_mapping"], json!({"Critical": "Highest"}));
    assert_eq!(
        item["field_mapping"],
        json!([{"source": "labels.host", "target_field": "customfield_1"}])
    );

    let (_, html) = get(&t, &cookie, "/settings/ticket-sync").await;
    assert!(html.contains(&format!("id=\"sync-{id}\"")), "{html}");
    let (_, html) = get(&t, &cookie, &format!("/settings/ticket-sync/{id}")).await;
    assert!(html.contains("value=\"OPS\""), "{html}");
    assert!(html.contains("leave empty to keep it"), "{html}");
    assert!(!html.contains("tok-SECRET-1"), "{html}");

    // An edit with an empty secret keeps the stored one (the sync still authenticates).
    let edit: Vec<(&str, &str)> = form
        .iter()
        .map(|(k, v)| match *k {
            "secret" => (*k, ""),
            "name" => (*k, "Ops Jira 2"),
            _ => (*k, *v),
        })
        .collect();
    let resp = post(
        &t,
        &cookie,
        &csrf,
        &format!("/settings/ticket-sync/{id}"),
        &edit,
    )
    .await;
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let info = ok(t
        .api("/ticket-sync/info", json!({"integration_id": id}))
        .await);
    assert_eq!(info["name"], "Ops Jira 2");
    assert_eq!(info["secret_set"], true);
    let server = t.server.as_ref().unwrap();
    let stored = server
        .store()
        .ticket_sync(server.bootstrap().account_id, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.secret, "tok-SECRET-1");

    // A ServiceDesk Plus integration with its own settings.
    let sdp = [
        ("system", "servicedeskplus"),
        ("name", "Desk"),
        ("channel_id", cid_s.as_str()),
        ("trigger", "manual"),
        ("direction", "two_way"),
        ("status", "enabled"),
        ("platform", "onprem"),
        ("base_url", "https://sdp.example.com"),
        ("secret", "sdp-key"),
        ("template", "Incident Template"),
        ("requester", "ops@example.com"),
        ("priority_source", "labels.prio"),
        ("sev_Critical", ""),
        ("assignee_label", "team"),
        ("assignee_kind", "group"),
        ("assignee_mapping", "dba=Database Team\nnet=Network"),
    ];
    let resp = post(&t, &cookie, &csrf, "/settings/ticket-sync", &sdp).await;
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let list = ok(t.api("/ticket-sync/list", json!({})).await);
    let desk = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "Desk")
        .unwrap()
        .clone();
    assert_eq!(desk["system"], "servicedeskplus");
    assert_eq!(desk["priority_source"], "labels.prio");
    assert_eq!(
        desk["assignee_mapping"],
        json!({"dba": "Database Team", "net": "Network"})
    );
    let desk_id = desk["integration_id"].as_i64().unwrap();
    let (_, html) = get(&t, &cookie, &format!("/settings/ticket-sync/{desk_id}")).await;
    // The push URL is shown (HTML-escaped: `/` is `&#x2f;`).
    assert!(
        html.contains("&#x2f;ticket-sync&#x2f;servicedeskplus&#x2f;push?integration_key="),
        "{html}"
    );
    assert!(!html.contains("sdp-key"), "{html}");

    // spec: RSP-405 — an automatic trigger's conditions are edited as condition rows: a
    // refused pattern is named beside its row with everything typed kept; "Add condition
    // rows" redraws the form with more rows and saves nothing; then the filter is stored as
    // groups and shown back as rows.
    let mut auto = vec![
        ("system", "jira"),
        ("name", "Auto Jira"),
        ("channel_id", cid_s.as_str()),
        ("trigger", "auto"),
        ("direction", "to"),
        ("status", "enabled"),
        ("platform", "cloud"),
        ("base_url", "https://acme.atlassian.net"),
        ("username", "ops@example.com"),
        ("secret", "tok-2"),
        ("project_key", "OPS"),
        ("issue_type", "Bug"),
        ("c0_group", "1"),
        ("c0_key", "severity"),
        ("c0_oper", "IN"),
        ("c0_vals", "Critical"),
        ("c1_group", "1"),
        ("c1_key", "labels.service"),
        ("c1_oper", "IN"),
        ("c1_vals", "/pay(/"),
    ];
    let before = ok(t.api("/ticket-sync/list", json!({})).await)["total"].clone();
    let resp = post(&t, &cookie, &csrf, "/settings/ticket-sync", &auto).await;
    assert_eq!(resp.status(), 400);
    // Templates escape `/` in text as `&#x2f;`; a browser reads both the same.
    let html = resp.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("id=\"c1_vals-error\""), "{html}");
    assert!(html.contains("/pay(/"), "{html}");
    assert_eq!(
        ok(t.api("/ticket-sync/list", json!({})).await)["total"],
        before
    );
    let mut more = auto.clone();
    more.push(("more_rows", "c"));
    let resp = post(&t, &cookie, &csrf, "/settings/ticket-sync", &more).await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"c6_key\""), "three more rows: {html}");
    assert_eq!(
        ok(t.api("/ticket-sync/list", json!({})).await)["total"],
        before
    );
    auto.retain(|(k, _)| *k != "c1_vals");
    auto.push(("c1_vals", "payments\ncheckout"));
    auto.extend([
        ("c2_group", "2"),
        ("c2_key", "title"),
        ("c2_oper", "IN"),
        ("c2_vals", "db*"),
    ]);
    let resp = post(&t, &cookie, &csrf, "/settings/ticket-sync", &auto).await;
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let list = ok(t.api("/ticket-sync/list", json!({})).await);
    let stored = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "Auto Jira")
        .unwrap()
        .clone();
    assert_eq!(
        stored["filters"],
        json!([[{"key": "severity", "oper": "IN", "vals": ["Critical"]},
                 {"key": "labels.service", "oper": "IN", "vals": ["payments", "checkout"]}],
                [{"key": "title", "oper": "IN", "vals": ["db*"]}]])
    );
    let auto_id = stored["integration_id"].as_i64().unwrap();
    let (_, html) = get(&t, &cookie, &format!("/settings/ticket-sync/{auto_id}")).await;
    assert!(html.contains("value=\"labels.service\""), "{html}");
    assert!(html.contains("payments\ncheckout"), "{html}");

    // Delete.
    let resp = post(
        &t,
        &cookie,
        &csrf,
        &format!("/settings/ticket-sync/{desk_id}/delete"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(ok(t.api("/ticket-sync/list", json!({})).await)["total"], 2);
    t.stop().await;
}

/// From the settings page: a new ticket sync refused beside its field, then created; edited
/// without retyping the secret; deleted after a confirmation. Every page fits 375 px.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_syncs_in_the_browser() {
    in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        in_the_browser(&url).await;
    }
}

async fn in_the_browser(database_url: &str) {
    // spec: RSP-403, RSP-405
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let cid = channel(&t).await;
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    c.goto(&format!("{}/settings", t.base)).await.unwrap();
    click(c, "#ticket-sync-link").await;
    until("the ticket sync list", || async {
        c.current_url().await.unwrap().path() == "/settings/ticket-sync"
    })
    .await;
    click(c, "#new-ticket-sync").await;
    until("the form", || async {
        exists(c, "#ticket-sync-form").await
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0);
    c.find(Locator::Css(&format!("#channel_id option[value='{cid}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    type_into(c, "#name", "Browser Jira").await;
    type_into(c, "#base_url", "https://acme.atlassian.net").await;
    type_into(c, "#username", "ops@example.com").await;
    type_into(c, "#secret", "browser-secret").await;
    type_into(c, "#issue_type", "Bug").await;
    click(c, "#ticket-sync-form button[type=submit]").await;
    until("the project key error", || async {
        text_of(c, "#project_key-error")
            .await
            .contains("project_key")
    })
    .await;
    assert_eq!(value_of(c, "#name").await, "Browser Jira");
    assert_eq!(
        value_of(c, "#secret").await,
        "",
        "a secret is never shown back"
    );
    shoot(c, "ticket-sync-error").await;
    type_into(c, "#secret", "browser-secret").await;
    type_into(c, "#project_key", "OPS").await;
    click(c, "#ticket-sync-form button[type=submit]").await;
    until("the list with the new sync", || async {
        c.current_url().await.unwrap().path() == "/settings/ticket-sync"
            && text_of(c, ".cards").await.contains("Browser Jira")
    })
    .await;
    shoot(c, "ticket-sync-list").await;
    let id = ok(t.api("/ticket-sync/list", json!({})).await)["items"][0]["integration_id"]
        .as_i64()
        .unwrap();

    // Edit without retyping the secret.
    c.goto(&format!("{}/settings/ticket-sync/{id}", t.base))
        .await
        .unwrap();
    until("the edit form", || async {
        exists(c, "#ticket-sync-form").await
    })
    .await;
    assert_eq!(value_of(c, "#secret").await, "");
    type_into(c, "#name", "Browser Jira 2").await;
    click(c, "#ticket-sync-form button[type=submit]").await;
    until("the renamed sync", || async {
        text_of(c, ".cards").await.contains("Browser Jira 2")
    })
    .await;
    let info = ok(t
        .api("/ticket-sync/info", json!({"integration_id": id}))
        .await);
    assert_eq!(info["secret_set"], true);

    // Delete after the confirmation.
    accept_confirms(c).await;
    click(c, &format!("#sync-{id} button")).await;
    until("the empty list", || async {
        !exists(c, &format!("#sync-{id}")).await
    })
    .await;
    assert_eq!(ok(t.api("/ticket-sync/list", json!({})).await)["total"], 0);
    browser.stop().await;
    t.stop().await;
}
