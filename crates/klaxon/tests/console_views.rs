//! The incident views and editors of the console (docs/console.md) in a real headless
//! Chromium and over plain HTTP: the incident list's columns chosen per person (RSP-506), the
//! incident page in tabs (RSP-508), the channel and global incident lists (RSP-500), a shared
//! integration's default route and section dividers (ingest.md §1.3.2, ING-095), and
//! rule-based grouping cases (ING-154). Screenshots at 1280 and 375 px go to
//! `$CARGO_TARGET_DIR/console-screenshots/`.
//!
//! The browser tests need Debian's `chromium` and `chromium-driver`; without them they fail
//! when `CI=true` and are skipped with a printed reason otherwise. Every test runs on SQLite,
//! and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::browser;

use browser::{
    Browser, attr_of, browser_sign_in, choose, click, exists, low_contrast, mark, redrawn, shoot,
    text_of, tick, type_into, unlabelled_inputs, until, value_of,
};
use common::{TestServer, ok};
use fantoccini::Client;
use serde_json::json;

/// [`common::get_page`] with `/` read back: templates escape it in values as `&#x2f;`, and a
/// browser reads both the same.
async fn get_page(t: &TestServer, cookie: &str, path: &str) -> (u16, String) {
    let (status, html) = common::get_page(t, cookie, path).await;
    (status, html.replace("&#x2f;", "/"))
}

/// The texts of the list's column headings, in order (read in one step: the list redraws
/// itself every few seconds).
async fn headings(c: &Client) -> Vec<String> {
    let v = c
        .execute(
            "return [...document.querySelectorAll('#results table.incidents thead th')] \
             .map(e => e.textContent.trim())",
            vec![],
        )
        .await
        .unwrap();
    v.as_array()
        .into_iter()
        .flatten()
        .map(|h| h.as_str().unwrap_or("").to_string())
        .collect()
}

async fn cell(c: &Client, incident_id: &str, column: &str) -> String {
    text_of(c, &format!("#row-{incident_id} td[data-column='{column}']")).await
}

// --- RSP-506: list columns ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_list_columns_are_chosen_per_person() {
    list_columns("").await;
    if let Some(url) = common::fresh_postgres().await {
        list_columns(&url).await;
    }
}

async fn list_columns(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    ok(t.api(
        "/field/create",
        json!({"field_name": "region", "display_name": "Region",
               "field_type": "single_select", "options": ["eu", "us"]}),
    )
    .await);
    let (s, b) = t
        .push(json!({"event_status": "Critical", "alert_key": "disk-db-1",
                     "title_rule": "Disk full on db-1", "labels": {"host": "db-1"}}))
        .await;
    assert_eq!(s, 200, "{b}");
    t.drained().await;
    let pushed = t.incidents().await[0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(t.api(
        "/incident/field/reset",
        json!({"incident_id": pushed, "field_name": "region", "field_value": "eu"}),
    )
    .await);
    let by_hand = ok(t
        .api(
            "/incident/create",
            json!({"title": "Checkout slow", "incident_severity": "Warning"}),
        )
        .await)["incident_id"]
        .as_str()
        .unwrap()
        .to_string();

    browser_sign_in(&t, c).await;
    let list = format!("{}/incidents?who=all&range=7d", t.base);
    c.goto(&list).await.unwrap();
    until("the list", || async {
        exists(c, &format!("#row-{pushed}")).await
    })
    .await;
    // Someone who never chose sees the list as it always was.
    assert_eq!(
        headings(c).await[1..],
        [
            "Incident", "Severity", "Progress", "Channel", "Started", "Alerts"
        ]
    );

    // spec: RSP-506 — basic attributes, a custom field and labels, chosen in the form.
    click(c, "#column-picker summary").await;
    tick(c, "#col-duration", true).await;
    tick(c, "#col-responders", true).await;
    tick(c, "#col-alerts", false).await;
    tick(c, "#col-field-region", true).await;
    type_into(c, "#col-labels", "host, rack").await;
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every column input has a label"
    );
    click(c, "#save-columns").await;
    until("the chosen columns", || async {
        headings(c).await.iter().any(|h| h == "Duration")
    })
    .await;
    assert_eq!(
        headings(c).await[1..],
        [
            "Incident",
            "Severity",
            "Progress",
            "Channel",
            "Started",
            "Duration",
            "Responders",
            "Region",
            "host",
            "rack"
        ]
    );
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("who=all"),
        "back on the list with its filters"
    );
    assert_eq!(cell(c, &pushed, "field.region").await, "eu");
    assert_eq!(cell(c, &pushed, "label.host").await, "db-1");
    // spec: RSP-506 — a missing value is shown as `-`.
    assert_eq!(cell(c, &pushed, "label.rack").await, "-");
    assert_eq!(cell(c, &by_hand, "field.region").await, "-");
    assert_eq!(cell(c, &by_hand, "label.host").await, "-");
    assert!(!cell(c, &pushed, "duration").await.is_empty());
    shoot(c, "incident-list-columns").await;
    assert_eq!(
        low_contrast(c).await,
        Vec::<String>::new(),
        "the incident list"
    );

    // spec: RSP-506 — the choice is stored for the person, not in this browser: another
    // session of the same member sees the same columns.
    let (cookie, _) = common::console_session(t.server.as_ref().unwrap()).await;
    let (status, html) = get_page(&t, &cookie, "/incidents?who=all&range=7d").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(">Duration</th>") && html.contains(">rack</th>"),
        "{html}"
    );
    assert!(!html.contains(">Alerts</th>"), "{html}");

    // A refused choice is named beside the labels, with what was typed kept; nothing changes.
    click(c, "#column-picker summary").await;
    let long = format!("host, {}", "x".repeat(129));
    type_into(c, "#col-labels", &long).await;
    click(c, "#save-columns").await;
    until("the column error", || async {
        text_of(c, "#col-labels-error")
            .await
            .contains("longer than")
    })
    .await;
    assert_eq!(value_of(c, "#col-labels").await, long);
    let (_, html) = get_page(&t, &cookie, "/incidents?who=all&range=7d").await;
    assert!(html.contains(">rack</th>"), "nothing saved");

    browser.stop().await;
    t.stop().await;
}

// --- RSP-508: the incident page in tabs ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_page_is_in_tabs() {
    detail_tabs("").await;
    if let Some(url) = common::fresh_postgres().await {
        detail_tabs(&url).await;
    }
}

async fn detail_tabs(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    let owner_id = ok(t.api("/member/info", json!({})).await)["member_id"]
        .as_i64()
        .unwrap();
    let channels = ok(t.api("/channel/list", json!({})).await);
    let channel_id = channels["items"][0]["channel_id"].as_i64().unwrap();
    ok(t.api(
        "/channel/update",
        json!({"channel_id": channel_id, "group": {"method": "n"}}),
    )
    .await);
    // Two levels, so a new incident has a pending escalation to count down to.
    let level = json!({"target": {"person_ids": [owner_id], "by": {"follow_preference": true}},
                       "escalate_window": 30});
    ok(t.api(
        "/channel/escalate/rule/create",
        json!({"channel_id": channel_id, "rule_name": "Primary", "layers": [level, level]}),
    )
    .await);
    // An earlier, closed incident like the new one: a past incident of it.
    for key in ["disk-db-7-a", "disk-db-7-b"] {
        let (s, b) = t
            .push(json!({"event_status": "Critical", "alert_key": key,
                         "title_rule": "Disk full on db-7", "labels": {"host": "db-7"}}))
            .await;
        assert_eq!(s, 200, "{b}");
        t.drained().await;
        if key.ends_with('a') {
            let first = t.incidents().await[0]["incident_id"]
                .as_str()
                .unwrap()
                .to_string();
            ok(t.api(
                "/incident/reset",
                json!({"incident_id": first, "root_cause": "Old WAL files",
                       "resolution": "Removed them"}),
            )
            .await);
            ok(t.api("/incident/close", json!({"incident_ids": [first]}))
                .await);
        }
    }
    let incidents = t.incidents().await;
    let open = incidents
        .iter()
        .find(|i| i["progress"] != "Closed")
        .unwrap()["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    let closed = incidents
        .iter()
        .find(|i| i["progress"] == "Closed")
        .unwrap();
    let closed_id = closed["incident_id"].as_str().unwrap().to_string();
    ok(t.api(
        "/incident/reset",
        json!({"incident_id": open, "impact": "Writes fail on db-7"}),
    )
    .await);

    browser_sign_in(&t, c).await;
    c.goto(&format!("{}/incident/detail/{open}", t.base))
        .await
        .unwrap();
    // spec: RSP-508 — the tabs, the overview first: key information, description, impact,
    // labels, custom fields and the assignment with its countdown to the next escalation.
    let tabs = text_of(c, "nav.tabs").await;
    for name in [
        "Overview",
        "Alerts",
        "Timeline",
        "Change history",
        "Past incidents",
    ] {
        assert!(tabs.contains(name), "{tabs}");
    }
    assert!(
        !tabs.contains("Root cause"),
        "an open incident has no outcome tab"
    );
    assert_eq!(
        attr_of(c, "#tab-overview", "aria-current").await.as_deref(),
        Some("page")
    );
    let overview = text_of(c, "#tab-panel").await;
    for part in [
        "Key information",
        "Description",
        "Impact",
        "Assignment",
        "Labels",
    ] {
        assert!(overview.contains(part), "{overview}");
    }
    let countdown = text_of(c, "#escalation-countdown").await;
    assert!(
        countdown.contains("Escalates to the next level in"),
        "{countdown}"
    );
    shoot(c, "incident-tab-overview").await;
    // WCAG 2.1 AA: every text of the page against its background.
    assert_eq!(
        low_contrast(c).await,
        Vec::<String>::new(),
        "the incident page"
    );

    // With the keyboard: focus the Alerts tab and press Enter; htmx swaps the tab in, the
    // address follows and the focus stays on the tab.
    mark(c, "incident").await;
    c.execute(
        "document.getElementById('tab-alerts').focus(); return true",
        vec![],
    )
    .await
    .unwrap();
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    redrawn(c, "incident").await;
    assert!(exists(c, "#tab-panel.tab-alerts ul.alerts").await);
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("tab=alerts"),
        "the address names the tab"
    );
    let focused = c
        .execute("return document.activeElement.id", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("tab-alerts"));
    shoot(c, "incident-tab-alerts").await;

    // The timeline, where a comment lands and the tab stays.
    click(c, "#tab-timeline").await;
    until("the timeline tab", || async {
        exists(c, "#tab-panel.tab-timeline #comment").await
    })
    .await;
    type_into(c, "#comment", "Looking at the WAL volume").await;
    click(c, "form.comment button[type=submit]").await;
    until("the comment in the timeline", || async {
        text_of(c, "#tab-panel .timeline")
            .await
            .contains("Looking at the WAL volume")
    })
    .await;
    shoot(c, "incident-tab-timeline").await;

    // The change history: the impact edit and the assignment, nothing else.
    click(c, "#tab-history").await;
    until("the history tab", || async {
        exists(c, "#tab-panel.tab-history").await
    })
    .await;
    let history = text_of(c, "#tab-panel").await;
    assert!(history.contains("Impact changed"), "{history}");
    assert!(history.contains("Writes fail on db-7"), "{history}");
    assert!(history.contains("Assigned"), "{history}");
    assert!(!history.contains("Looking at the WAL volume"), "{history}");
    shoot(c, "incident-tab-history").await;

    // Past incidents: the closed one like it, with its root cause.
    click(c, "#tab-past").await;
    until("the past tab", || async {
        exists(c, "#tab-panel.tab-past").await
    })
    .await;
    let past = text_of(c, "#tab-panel").await;
    // spec: RSP-451 — the closed incident with the same title is listed with its root cause
    // and resolution, also when the new one came within the same second (event times are
    // whole seconds, so both have one start time).
    let listed = ok(t
        .api("/incident/past/list", json!({"incident_id": open}))
        .await);
    assert_eq!(
        listed["items"][0]["incident_id"],
        closed_id.as_str(),
        "{listed}"
    );
    let num = closed["num"].as_str().unwrap();
    assert!(past.contains(&format!("#{num}")), "{past}");
    assert!(
        past.contains("Old WAL files") && past.contains("Removed them"),
        "{past}"
    );
    assert!(!past.contains("No similar past incidents"), "{past}");
    assert!(
        exists(
            c,
            &format!("#tab-panel ul.past a[href='/incident/detail/{closed_id}']")
        )
        .await
    );
    shoot(c, "incident-tab-past").await;

    // Without script the tabs are links: each one is a page of its own.
    let (cookie, _) = common::console_session(t.server.as_ref().unwrap()).await;
    let (status, html) =
        get_page(&t, &cookie, &format!("/incident/detail/{open}?tab=history")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<!doctype html") || html.contains("<!DOCTYPE html"),
        "a whole page"
    );
    assert!(html.contains("class=\"tab-panel tab-history\""), "{html}");
    assert!(html.contains(&format!("href=\"/incident/detail/{open}?tab=timeline\"")));
    // A closed incident has the root cause and resolution tab.
    let (_, html) = get_page(
        &t,
        &cookie,
        &format!("/incident/detail/{closed_id}?tab=outcome"),
    )
    .await;
    assert!(html.contains("class=\"tab-panel tab-outcome\""), "{html}");
    assert!(html.contains("Old WAL files") && html.contains("Removed them"));
    // An open incident asked for it shows the overview.
    let (_, html) = get_page(&t, &cookie, &format!("/incident/detail/{open}?tab=outcome")).await;
    assert!(html.contains("class=\"tab-panel tab-overview\""));

    browser.stop().await;
    t.stop().await;
}

// --- RSP-500: the channel list and the global list ---------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_list_and_the_global_list() {
    two_lists("").await;
    if let Some(url) = common::fresh_postgres().await {
        two_lists(&url).await;
    }
}

async fn two_lists(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let channel = |name: &'static str| {
        let t = &t;
        async move {
            ok(t.api("/channel/create", json!({"channel_name": name}))
                .await)["channel_id"]
                .as_i64()
                .unwrap()
        }
    };
    let db = channel("Databases").await;
    let web = channel("Web").await;
    let mut made = std::collections::HashMap::new();
    for (title, cid) in [("DB open", db), ("DB closed", db), ("Web open", web)] {
        let id = ok(t
            .api(
                "/incident/create",
                json!({"title": title, "incident_severity": "Critical", "channel_id": cid}),
            )
            .await)["incident_id"]
            .as_str()
            .unwrap()
            .to_string();
        made.insert(title, id);
    }
    ok(t.api(
        "/incident/close",
        json!({"incident_ids": [made["DB closed"]]}),
    )
    .await);
    let (cookie, _) = common::console_session(t.server.as_ref().unwrap()).await;
    let rows = |html: &str| -> Vec<&'static str> {
        ["DB open", "DB closed", "Web open"]
            .into_iter()
            .filter(|title| html.contains(&format!("id=\"row-{}\"", made[title])))
            .collect()
    };

    // spec: RSP-500 — the channel list: one channel, opened on its open incidents
    // (RSP-501), with the channel fixed.
    let (status, html) = get_page(&t, &cookie, &format!("/channels/{db}/incidents")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Incidents of Databases"), "{html}");
    assert_eq!(rows(&html), ["DB open"]);
    assert!(
        !html.contains("id=\"channel\""),
        "no channel choice on a channel's list"
    );
    assert!(html.contains(&format!("hx-get=\"/channels/{db}/incidents/results\"")));
    // Filtered (here: closed ones), still only this channel — a channel in the query is
    // not taken over the list's own.
    let (_, html) = get_page(
        &t,
        &cookie,
        &format!("/channels/{db}/incidents?who=all&range=7d&progress=Closed&channel={web}"),
    )
    .await;
    assert_eq!(rows(&html), ["DB closed"]);
    let (_, html) = get_page(
        &t,
        &cookie,
        &format!("/channels/{web}/incidents/results?who=all&range=7d"),
    )
    .await;
    assert_eq!(rows(&html), ["Web open"]);
    // spec: RSP-500 — the global list: any number of channels, or the whole account.
    let (_, html) = get_page(&t, &cookie, "/incidents?who=all&range=7d").await;
    assert_eq!(rows(&html), ["DB open", "DB closed", "Web open"]);
    let (_, html) = get_page(
        &t,
        &cookie,
        &format!("/incidents?who=all&range=7d&channel={web}"),
    )
    .await;
    assert_eq!(rows(&html), ["Web open"]);
    let (_, html) = get_page(
        &t,
        &cookie,
        "/incidents?who=all&range=7d&progress=Triggered",
    )
    .await;
    assert_eq!(rows(&html), ["DB open", "Web open"]);
    // An unknown channel has no list.
    let (status, _) = get_page(&t, &cookie, "/channels/999999/incidents").await;
    assert_eq!(status, 404);
    t.stop().await;
}

// --- Routing: the default route and section dividers --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_route_and_sections_are_edited_in_the_console() {
    route_layout("").await;
    if let Some(url) = common::fresh_postgres().await {
        route_layout(&url).await;
    }
}

async fn route_layout(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    let db = ok(t
        .api("/channel/create", json!({"channel_name": "Databases"}))
        .await)["channel_id"]
        .as_i64()
        .unwrap();
    let web = ok(t
        .api("/channel/create", json!({"channel_name": "Web"}))
        .await)["channel_id"]
        .as_i64()
        .unwrap();
    let iid = ok(t
        .api(
            "/integration/create",
            json!({"integration_name": "Prometheus (all teams)", "type": "prometheus",
                   "kind": "shared", "default_channel_ids": [web]}),
        )
        .await)["integration_id"]
        .as_i64()
        .unwrap();
    let v2 = ok(t
        .api(
            "/route/upsert",
            json!({"integration_id": iid, "version": 1,
                   "cases": [
                     {"if": [{"key": "labels.team", "oper": "IN", "vals": ["db"]}],
                      "channel_ids": [db], "fallthrough": true, "name": "Database team"},
                     {"if": [{"key": "severity", "oper": "NOTIN", "vals": ["Info"]}],
                      "channel_ids": [web]}],
                   "default": {"channel_ids": [web]}}),
        )
        .await);
    assert_eq!(v2["version"], 2);

    browser_sign_in(&t, c).await;
    c.goto(&format!("{}/integrations/{iid}/routing", t.base))
        .await
        .unwrap();
    until("the layout form", || async {
        exists(c, "#route-layout").await
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0);
    // spec: ING-091 — the default route; §1.3.2 — named dividers between the rules.
    tick(c, &format!("#default-{db}"), true).await;
    tick(c, &format!("#default-{web}"), false).await;
    type_into(c, "#s0_name", "Databases").await;
    choose(c, "#s0_before", "1").await;
    type_into(c, "#s1_name", "Everything else").await;
    choose(c, "#s1_before", "2").await;
    click(c, "#save-layout").await;
    // spec: ING-095 — saved as a new version through the same upsert as the API.
    until("version 3", || async {
        text_of(c, "#current-version").await == "version 3"
    })
    .await;
    let route = ok(t.api("/route/info", json!({"integration_id": iid})).await);
    assert_eq!(route["version"], 3);
    assert_eq!(route["default"]["channel_ids"], json!([db]));
    assert_eq!(
        route["sections"],
        json!([{"name": "Databases", "position": 0}, {"name": "Everything else", "position": 1}])
    );
    assert_eq!(
        route["cases"].as_array().unwrap().len(),
        2,
        "the rules are kept"
    );
    let history = ok(t
        .api("/route/history/list", json!({"integration_id": iid}))
        .await);
    assert_eq!(history["items"][0]["version"], 3);
    let dividers = text_of(c, "#route-rules").await;
    assert!(
        dividers.find("Databases").unwrap() < dividers.find("Everything else").unwrap(),
        "{dividers}"
    );
    assert!(text_of(c, "#default-route").await.contains("Databases"));
    shoot(c, "routing-layout").await;

    // A refused save (two sections of one name) is named beside the field, with what was
    // typed kept, and nothing saved.
    mark(c, "route-layout").await;
    type_into(c, "#s1_name", "Databases").await;
    click(c, "#save-layout").await;
    redrawn(c, "route-layout").await;
    let error = text_of(c, "#s1_name-error").await;
    assert!(error.contains("sections[1].name"), "{error}");
    assert_eq!(value_of(c, "#s1_name").await, "Databases");
    assert_eq!(
        ok(t.api("/route/info", json!({"integration_id": iid})).await)["version"],
        3
    );
    shoot(c, "routing-layout-error").await;

    // Based on an old version, a save is refused (the version lock) and says so.
    ok(t.api(
        "/route/upsert",
        json!({"integration_id": iid, "version": 3, "cases": route["cases"],
               "default": {"channel_ids": [web]}}),
    )
    .await);
    mark(c, "route-layout").await;
    type_into(c, "#s1_name", "Web").await;
    click(c, "#save-layout").await;
    redrawn(c, "route-layout").await;
    assert!(
        text_of(c, "#_form-error")
            .await
            .contains("changed by someone else"),
        "the conflict is explained"
    );
    assert_eq!(
        ok(t.api("/route/info", json!({"integration_id": iid})).await)["version"],
        4
    );

    // spec: §1.3.2, ING-095 — a rule moves to another section from its own edit page: it
    // goes to the end of that section, as a new version.
    let route = ok(t.api("/route/info", json!({"integration_id": iid})).await);
    let db_rule = route["cases"][0]["id"].clone();
    ok(t.api(
        "/route/upsert",
        json!({"integration_id": iid, "version": 4, "cases": route["cases"],
               "sections": [{"name": "Databases", "position": 0},
                            {"name": "Everything else", "position": 1}],
               "default": {"channel_ids": [web]}}),
    )
    .await);
    c.goto(&format!("{}/integrations/{iid}/routing/rules/1", t.base))
        .await
        .unwrap();
    until("the rule editor", || async {
        exists(c, "#edit-rule").await
    })
    .await;
    assert_eq!(value_of(c, "#section").await, "0", "in Databases");
    let choices = text_of(c, "#section").await;
    assert!(
        choices.contains("None") && choices.contains("Everything else"),
        "{choices}"
    );
    assert_eq!(unlabelled_inputs(c).await, 0);
    shoot(c, "route-rule-sections").await;
    assert_eq!(low_contrast(c).await, Vec::<String>::new(), "a route rule");

    // A section the route does not have is refused beside the choice; nothing is saved.
    c.execute(
        "document.querySelector('#section option').value = '9'; \
         document.getElementById('section').value = '9'; return true",
        vec![],
    )
    .await
    .unwrap();
    type_into(c, "#name", "Database team (moved)").await;
    mark(c, "edit-rule").await;
    click(c, "#edit-rule button[type=submit]").await;
    redrawn(c, "edit-rule").await;
    let error = text_of(c, "#section-error").await;
    assert!(error.contains("not one of the route's sections"), "{error}");
    assert_eq!(value_of(c, "#name").await, "Database team (moved)");
    assert_eq!(
        ok(t.api("/route/info", json!({"integration_id": iid})).await)["version"],
        5
    );

    choose(c, "#section", "1").await;
    click(c, "#edit-rule button[type=submit]").await;
    until("version 6", || async {
        text_of(c, "#current-version").await == "version 6"
    })
    .await;
    let route = ok(t.api("/route/info", json!({"integration_id": iid})).await);
    assert_eq!(route["cases"][0]["if"][0]["key"], "severity");
    assert_eq!(route["cases"][1]["id"], db_rule, "the rule keeps its id");
    assert_eq!(route["cases"][1]["name"], "Database team (moved)");
    assert_eq!(
        route["sections"],
        json!([{"name": "Databases", "position": 0}, {"name": "Everything else", "position": 0}])
    );
    let listed = text_of(c, "#route-rules").await;
    assert!(
        listed.find("Everything else").unwrap() < listed.find("Database team (moved)").unwrap(),
        "{listed}"
    );

    browser.stop().await;
    t.stop().await;
}

// --- ING-154: rule-based grouping cases ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping_cases_are_edited_in_the_noise_settings() {
    grouping_cases("").await;
    if let Some(url) = common::fresh_postgres().await {
        grouping_cases(&url).await;
    }
}

async fn grouping_cases(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    let channels = ok(t.api("/channel/list", json!({})).await);
    let cid = channels["items"][0]["channel_id"].as_i64().unwrap();
    ok(t.api(
        "/channel/update",
        json!({"channel_id": cid, "group": {"method": "n"}}),
    )
    .await);

    browser_sign_in(&t, c).await;
    c.goto(&format!("{}/channels/{cid}/noise", t.base))
        .await
        .unwrap();
    until("the settings form", || async {
        exists(c, "#noise-settings").await
    })
    .await;
    click(c, "#method-p").await;
    type_into(c, "#dims", "labels.host").await;
    // spec: ING-154 — a case: its conditions (all must match) and its dimensions.
    type_into(c, "#k0c0_key", "severity").await;
    type_into(c, "#k0c0_vals", "Critical").await;
    type_into(c, "#k0c1_key", "labels.env").await;
    choose(c, "#k0c1_oper", "NOTIN").await;
    type_into(c, "#k0c1_vals", "dev").await;
    type_into(c, "#k0_dims", "labels.check, labels.cluster").await;
    assert_eq!(unlabelled_inputs(c).await, 0);
    click(c, "#save-settings").await;
    until("the saved settings", || async {
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("saved")
    })
    .await;
    let group = ok(t.api("/channel/info", json!({"channel_id": cid})).await)["group"].clone();
    assert_eq!(group["method"], "p");
    assert_eq!(group["equals"], json!([["labels.host"]]));
    assert_eq!(
        group["cases"],
        json!([{"if": [{"key": "severity", "oper": "IN", "vals": ["Critical"]},
                       {"key": "labels.env", "oper": "NOTIN", "vals": ["dev"]}],
                "equals": [["labels.check", "labels.cluster"]]}])
    );
    // The saved case is drawn again, with an empty one after it to add another.
    assert_eq!(
        value_of(c, "#k0_dims").await,
        "labels.check, labels.cluster"
    );
    assert_eq!(value_of(c, "#k1_dims").await, "");
    shoot(c, "noise-grouping-cases").await;
    assert_eq!(
        low_contrast(c).await,
        Vec::<String>::new(),
        "the noise settings"
    );
    // The check itself finds a faint text (light grey on white, 1.6:1).
    c.execute(
        "const p = document.createElement('p'); p.id = 'faint'; p.style.color = '#cccccc'; \
         p.textContent = 'faint text'; document.querySelector('main').append(p); return true",
        vec![],
    )
    .await
    .unwrap();
    let faint = low_contrast(c).await;
    assert!(
        faint.iter().any(|f| f.starts_with("faint text")),
        "{faint:?}"
    );
    c.execute(
        "document.getElementById('faint').remove(); return true",
        vec![],
    )
    .await
    .unwrap();
    // The audit every screenshot runs finds a control without a name and a button pushed
    // past the right edge, and passes the page again once they are gone.
    c.execute(
        "const m = document.querySelector('main');          const i = document.createElement('input'); i.id = 'nameless'; m.append(i);          const b = document.createElement('button'); b.id = 'pushed'; b.textContent = 'Far';          b.style.position = 'absolute'; b.style.left = (innerWidth - 10) + 'px'; m.append(b);          return true",
        vec![],
    )
    .await
    .unwrap();
    let found = browser::audit(c).await;
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("no label: input#nameless")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|f| f.starts_with("outside the screen: button#pushed")),
        "{found:?}"
    );
    c.execute(
        "document.getElementById('nameless').remove();          document.getElementById('pushed').remove(); return true",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(browser::audit(c).await, Vec::<String>::new());

    // At a phone's 375 px: no sideways scroll, every control and its label in view, and the
    // text inputs wide enough to read what is typed.
    c.set_window_size(375, 812).await.unwrap();
    let problems = c
        .execute(
            "const w = document.documentElement.clientWidth; const out = []; \
             if (document.documentElement.scrollWidth > w) out.push('page scrolls sideways'); \
             for (const e of document.querySelectorAll('#noise-settings input:not([type=hidden]), \
                  #noise-settings select, #noise-settings textarea')) { \
               const r = e.getBoundingClientRect(); \
               if (r.left < 0 || r.right > w) out.push(e.id + ' outside the screen'); \
               const l = e.labels && e.labels[0]; \
               if (!l) { out.push(e.id + ' has no label'); continue; } \
               const lr = l.getBoundingClientRect(); \
               if (lr.width === 0 || lr.left < 0 || lr.right > w) out.push(e.id + ' label hidden'); \
               if ((e.type === 'text' && !e.hasAttribute('size') || e.tagName !== 'INPUT') \
                   && r.width < 250) out.push(e.id + ' narrow: ' + r.width); \
             } return out",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(problems, json!([]), "the grouping form at 375 px");
    c.set_window_size(1280, 900).await.unwrap();

    // The API's check, shown beside the case's field with everything typed kept; nothing
    // saved.
    mark(c, "noise-settings").await;
    type_into(c, "#k1c0_key", "labels.service").await;
    type_into(c, "#k1c0_vals", "checkout").await;
    type_into(c, "#k1_dims", "colour").await;
    click(c, "#save-settings").await;
    redrawn(c, "noise-settings").await;
    let error = text_of(c, "#k1_dims-error").await;
    assert!(error.contains("group.cases[1].equals"), "{error}");
    assert_eq!(value_of(c, "#k1_dims").await, "colour");
    assert_eq!(value_of(c, "#k1c0_vals").await, "checkout");
    assert_eq!(
        ok(t.api("/channel/info", json!({"channel_id": cid})).await)["group"]["cases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A case without conditions is refused beside its conditions.
    mark(c, "noise-settings").await;
    type_into(c, "#k1c0_key", "").await;
    type_into(c, "#k1c0_vals", "").await;
    type_into(c, "#k1_dims", "labels.service").await;
    click(c, "#save-settings").await;
    redrawn(c, "noise-settings").await;
    assert!(
        text_of(c, "#k1c_rows-error").await.contains("condition"),
        "{}",
        text_of(c, "#noise-settings").await
    );
    shoot(c, "noise-grouping-cases-error").await;

    browser.stop().await;
    t.stop().await;
}

// --- The pages no other browser test photographs -----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_insights_and_channel_list_pages_are_readable_on_a_phone() {
    insights_page("").await;
}

/// The insights page (RSP-482) with figures on it, and a channel's incident list, pass the
/// page audit every screenshot runs: WCAG AA contrast, every control named, nothing outside
/// a 375-px screen.
async fn insights_page(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    for (key, host) in [("cpu-web-1", "web-1"), ("cpu-web-2", "web-2")] {
        let (s, b) = t
            .push(json!({"event_status": "Warning", "alert_key": key,
                         "title_rule": "CPU high", "labels": {"host": host, "check": "cpu"}}))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    t.drained().await;
    let first = t.incidents().await[0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(t.api("/incident/ack", json!({"incident_ids": [first]}))
        .await);
    ok(t.api("/incident/close", json!({"incident_ids": [first]}))
        .await);
    browser_sign_in(&t, c).await;
    c.goto(&format!("{}/insights?range=week", t.base))
        .await
        .unwrap();
    until("the insight figures", || async {
        exists(c, "table.insights").await
    })
    .await;
    shoot(c, "insights").await;

    // A channel's own incident list (RSP-500), the page a channel's link opens.
    let channel_id = ok(t.api("/channel/list", json!({})).await)["items"][0]["channel_id"]
        .as_i64()
        .unwrap();
    c.goto(&format!("{}/channels/{channel_id}/incidents", t.base))
        .await
        .unwrap();
    until("the channel's incidents", || async {
        exists(c, "#results table.incidents").await
    })
    .await;
    shoot(c, "channel-incidents").await;
    browser.stop().await;
    t.stop().await;
}
