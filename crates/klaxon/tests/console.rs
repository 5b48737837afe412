//! The web console (docs/console.md): end to end in a real headless Chromium driven over
//! WebDriver (chromedriver), plus server-rendered pages checked over plain HTTP.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver` (/usr/bin/chromium,
//! /usr/bin/chromedriver). Without them it fails when `CI=true` and is skipped with a printed
//! reason otherwise. It writes screenshots of the main pages at desktop (1280 px) and phone
//! (375 px) widths into `$CARGO_TARGET_DIR/console-screenshots` and prints the path.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::browser;

use browser::{
    Browser, accept_confirms, attr_of, browser_sign_in, click, clocked_server, exists,
    screenshot_dir, set_value, shoot, text_of, type_into, unlabelled_inputs, until, value_of,
};
use common::{TestServer, get_page, sign_in};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// Sign in with the first-start owner credentials, see a pushed alert appear in the list
/// without a reload, open it, acknowledge, comment, close; a bad sign-in and a bad comment
/// show their errors next to the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_handles_an_incident_in_the_browser() {
    // The server first: its start installs the TLS crypto provider the HTTP clients need.
    let mut t = TestServer::start("").await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let password = t
        .server
        .as_ref()
        .unwrap()
        .owner_password()
        .unwrap()
        .to_string();
    let email = t.server.as_ref().unwrap().bootstrap().owner_email.clone();
    let c = &browser.client;

    // Signed out, a console page leads to the sign-in form.
    c.goto(&format!("{}/incidents", t.base)).await.unwrap();
    assert!(c.current_url().await.unwrap().path() == "/signin");
    shoot(c, "signin").await;

    // Keyboard: the e-mail field has the focus on arrival, Tab moves to the password, and
    // the focus is visible.
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focus = c
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e); \
             return [e.id, s.outlineStyle, s.outlineWidth]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focus[0], "password", "{focus}");
    assert_eq!(focus[1], "solid", "the focus must be visible: {focus}");
    // Every input of the form has a label.
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every sign-in input has a label"
    );

    // A wrong password: the error sits next to the field and the typed e-mail stays.
    type_into(c, "#email", &email).await;
    type_into(c, "#password", "not-the-password").await;
    click(c, "form button[type=submit]").await;
    until("the sign-in error", || async {
        text_of(c, "#password-error").await.contains("incorrect")
    })
    .await;
    assert_eq!(value_of(c, "#email").await, email);
    let described = c
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .attr("aria-describedby")
        .await
        .unwrap();
    assert_eq!(described.as_deref(), Some("password-error"));
    shoot(c, "signin-error").await;

    // The first-start owner credentials sign in and land on the incident list.
    type_into(c, "#password", &password).await;
    click(c, "form button[type=submit]").await;
    until("the incident list", || async {
        c.current_url().await.unwrap().path() == "/incidents"
    })
    .await;
    // Everyone's incidents (the default is "assigned to me", RSP-501).
    c.find(Locator::Css("#who"))
        .await
        .unwrap()
        .select_by_value("all")
        .await
        .unwrap();
    until("the filter to apply", || async {
        c.current_url()
            .await
            .unwrap()
            .query()
            .is_some_and(|q| q.contains("who=all"))
    })
    .await;

    // A marker that a reload would wipe.
    c.execute("window.klaxonNoReload = 42; return true", vec![])
        .await
        .unwrap();
    let (status, body) = t
        .push(json!({
            "event_status": "Critical",
            "title_rule": "Disk full on db-7",
            "alert_key": "disk-db-7",
            "description": "/var is at 100%",
            "labels": {"host": "db-7", "service": "billing"},
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    until("the pushed alert in the list", || async {
        text_of(c, "#results").await.contains("Disk full on db-7")
    })
    .await;
    let kept = c
        .execute("return window.klaxonNoReload === 42", vec![])
        .await
        .unwrap();
    assert_eq!(kept, Value::Bool(true), "the list was reloaded");
    shoot(c, "incidents").await;
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every list input has a label"
    );

    // Open it.
    c.find(Locator::LinkText("Disk full on db-7"))
        .await
        .or(c.find(Locator::Css("#results td.title a")).await)
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the detail page", || async {
        text_of(c, "#incident h1")
            .await
            .contains("Disk full on db-7")
    })
    .await;
    assert!(text_of(c, "#incident").await.contains("db-7"));
    assert_eq!(text_of(c, "#progress").await, "Triggered");

    // Acknowledge.
    click(c, "#incident button[hx-post$='/ack']").await;
    until("the acknowledgement", || async {
        text_of(c, "#progress").await == "Processing"
    })
    .await;

    // An empty comment is refused next to the field; a real one lands in the timeline (its
    // own tab, RSP-508).
    click(c, "#tab-timeline").await;
    until("the timeline tab", || async {
        c.find(Locator::Css("#tab-panel.tab-timeline #comment"))
            .await
            .is_ok()
    })
    .await;
    type_into(c, "#comment", "   ").await;
    click(c, "form.comment button[type=submit]").await;
    until("the comment error", || async {
        text_of(c, "#comment-error").await.contains("comment")
    })
    .await;
    type_into(c, "#comment", "Cleaning up old WAL files").await;
    click(c, "form.comment button[type=submit]").await;
    until("the comment in the timeline", || async {
        text_of(c, ".timeline")
            .await
            .contains("Cleaning up old WAL files")
    })
    .await;
    shoot(c, "incident").await;
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every detail input has a label"
    );

    // Close it.
    click(c, "#incident button[hx-post$='/close']").await;
    until("the close", || async {
        text_of(c, "#progress").await == "Closed"
    })
    .await;
    shoot(c, "incident-closed").await;

    // The API sees the same incident: closed, with the comment in its feed.
    let incidents = t.incidents().await;
    let inc = incidents
        .iter()
        .find(|i| i["title"] == "Disk full on db-7")
        .unwrap();
    assert_eq!(inc["progress"], "Closed");
    assert!(inc["ack_time"].as_i64().unwrap() > 0);
    let (_, feed) = t
        .api(
            "/incident/feed",
            json!({"incident_id": inc["incident_id"], "types": ["i_comm"]}),
        )
        .await;
    assert_eq!(
        feed["data"]["items"][0]["detail"]["comment"],
        "Cleaning up old WAL files"
    );

    // Batch: tick an incident in the list and close it from there.
    c.goto(&format!("{}/incidents?who=all", t.base))
        .await
        .unwrap();
    let (status, body) = t
        .push(json!({
            "event_status": "Warning",
            "title_rule": "Queue backlog on mq-2",
            "alert_key": "mq-2-backlog",
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    until("the second incident in the list", || async {
        text_of(c, "#results")
            .await
            .contains("Queue backlog on mq-2")
    })
    .await;
    let row = c
        .find(Locator::XPath(
            "//tr[.//a[contains(., 'Queue backlog on mq-2')]]//input[@name='incident_ids']",
        ))
        .await
        .unwrap();
    row.click().await.unwrap();
    click(c, "#batch button[value=close]").await;
    until("the batch outcome", || async {
        text_of(c, "#results .banner.ok").await == "1 incident closed."
    })
    .await;
    let closed = t
        .incidents()
        .await
        .into_iter()
        .find(|i| i["title"] == "Queue backlog on mq-2")
        .unwrap();
    assert_eq!(closed["progress"], "Closed");

    // Sign out ends the session: a console page asks to sign in again.
    click(c, ".top button.link").await;
    until("the sign-in page", || async {
        c.current_url().await.unwrap().path() == "/signin"
    })
    .await;
    c.goto(&format!("{}/incidents", t.base)).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/signin");

    println!(
        "console screenshots written to {}",
        screenshot_dir().display()
    );
    browser.stop().await;
    t.stop().await;
}

/// The channels page shows each integration's push URL with a copy button; a schedule and an
/// escalation rule are created through their forms, and bad input is refused next to the
/// field with everything typed kept; an incident is reassigned and merged from its page. The
/// header navigation reaches every page.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_a_schedule_and_an_escalation_rule_in_the_browser() {
    set_up_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        set_up_in_the_browser(&url).await;
    }
}

async fn set_up_in_the_browser(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    let (status, body) = t
        .push(json!({"event_status": "Warning", "title_rule": "Ping", "alert_key": "ping"}))
        .await;
    assert_eq!(status, 200, "{body}");
    t.drained().await;

    // Channels, from the header: the integration's push URL carries its key, with a copy
    // button, and the last event time is shown.
    click(c, ".top nav a[href='/channels']").await;
    until("the channels page", || async {
        c.current_url().await.unwrap().path() == "/channels"
    })
    .await;
    let push = value_of(c, ".copyline input").await;
    assert!(push.contains(&t.integration_key), "{push}");
    assert!(push.contains("/event/push/alert/standard"), "{push}");
    assert!(!text_of(c, ".integrations").await.contains("never"));
    click(c, "button[data-copy]").await;
    until("the copy confirmation", || async {
        text_of(c, "#copy-status").await.contains("Copied")
    })
    .await;
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every channels input has a label"
    );
    shoot(c, "channels").await;

    // A schedule through its form. A turn of 0 weeks is refused next to its field, with the
    // name and the ticked member kept.
    click(c, ".top nav a[href='/schedules']").await;
    until("the schedules page", || async {
        c.current_url().await.unwrap().path() == "/schedules"
    })
    .await;
    shoot(c, "schedules-empty").await;
    click(c, "a[href='/schedules/new']").await;
    until("the schedule form", || async {
        text_of(c, "h1").await == "New schedule"
    })
    .await;
    type_into(c, "#schedule_name", "Ops primary").await;
    click(c, "input[name=members]").await;
    type_into(c, "#rotation_value", "0").await;
    set_value(c, "time_zone", "UTC").await;
    set_value(c, "handoff", "00:00").await;
    click(c, "#schedule-form button[type=submit]").await;
    until("the rotation error", || async {
        text_of(c, "#rotation_value-error")
            .await
            .contains("rotation_value")
    })
    .await;
    assert_eq!(value_of(c, "#schedule_name").await, "Ops primary");
    assert_eq!(value_of(c, "#rotation_value").await, "0");
    let kept = c
        .execute(
            "return document.querySelector('input[name=members]').checked",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, Value::Bool(true), "the ticked member was lost");
    let described = c
        .find(Locator::Css("#rotation_value"))
        .await
        .unwrap()
        .attr("aria-describedby")
        .await
        .unwrap();
    assert_eq!(described.as_deref(), Some("rotation_value-error"));
    shoot(c, "schedule-error").await;
    type_into(c, "#rotation_value", "1").await;
    click(c, "#schedule-form button[type=submit]").await;
    until("the schedule page", || async {
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/schedules/")
            && text_of(c, "h1").await == "Ops primary"
    })
    .await;
    let on_call = text_of(c, "#on-call-now").await;
    assert!(!on_call.contains("Nobody"), "{on_call}");
    assert!(text_of(c, "table.shifts").await.contains("UTC"));
    shoot(c, "schedule").await;
    let (_, listed) = t.api("/schedule/list", json!({})).await;
    let schedule = &listed["data"]["items"][0];
    assert_eq!(schedule["schedule_name"], "Ops primary");
    assert_eq!(schedule["layers"][0]["rotation_unit"], "week");
    let schedule_id = schedule["schedule_id"].as_i64().unwrap();
    c.goto(&format!("{}/schedules", t.base)).await.unwrap();
    assert!(text_of(c, ".cards").await.contains("Ops primary"));
    shoot(c, "schedules").await;

    // An escalation rule through its form: level 1 a member, level 2 the schedule. A
    // timeout of 0 minutes is refused next to that level's field, everything typed kept.
    let (_, channels) = t.api("/channel/list", json!({})).await;
    let channel_id = channels["data"]["items"][0]["channel_id"].as_i64().unwrap();
    c.goto(&format!("{}/channels", t.base)).await.unwrap();
    click(c, &format!("a[href='/channels/{channel_id}/rules/new']")).await;
    until("the rule form", || async {
        c.find(Locator::Css("#rule-form")).await.is_ok()
    })
    .await;
    type_into(c, "#rule_name", "Primary").await;
    click(c, "input[name=l0_person]").await;
    type_into(c, "#l0_window", "0").await;
    click(
        c,
        &format!("input[name=l1_schedule][value='{schedule_id}']"),
    )
    .await;
    click(c, "#rule-form button[type=submit]").await;
    until("the timeout error", || async {
        text_of(c, "#l0_window-error")
            .await
            .contains("escalate_window")
    })
    .await;
    assert_eq!(value_of(c, "#rule_name").await, "Primary");
    assert_eq!(value_of(c, "#l0_window").await, "0");
    let kept = c
        .execute(
            "return [document.querySelector('input[name=l0_person]').checked, \
             document.querySelector('input[name=l1_schedule]').checked]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, json!([true, true]), "the ticked targets were lost");
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every rule input has a label"
    );
    shoot(c, "rule-error").await;
    type_into(c, "#l0_window", "15").await;
    click(c, "#rule-form button[type=submit]").await;
    until("the channels page again", || async {
        c.current_url().await.unwrap().path() == "/channels"
            && text_of(c, ".rules").await.contains("Primary")
    })
    .await;
    let (_, rules) = t
        .api(
            "/channel/escalate/rule/list",
            json!({"channel_id": channel_id}),
        )
        .await;
    let rule = &rules["data"]["items"][0];
    assert_eq!(rule["rule_name"], "Primary");
    assert_eq!(rule["layers"][0]["escalate_window"], 15);
    assert_eq!(
        rule["layers"][0]["target"]["person_ids"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        rule["layers"][1]["target"]["schedule_to_role_ids"]
            .get(schedule_id.to_string())
            .is_some(),
        "{rule}"
    );
    assert_eq!(rule["layers"].as_array().unwrap().len(), 2);
    shoot(c, "channels-with-rule").await;

    // Edit it: the form comes back filled; a longer timeout is saved.
    click(c, ".rules a").await;
    until("the filled rule form", || async {
        value_of(c, "#rule_name").await == "Primary"
    })
    .await;
    assert_eq!(value_of(c, "#l0_window").await, "15");
    shoot(c, "rule").await;
    type_into(c, "#l0_window", "20").await;
    click(c, "#rule-form button[type=submit]").await;
    until("the channels page after the edit", || async {
        c.current_url().await.unwrap().path() == "/channels"
    })
    .await;
    let (_, rules) = t
        .api(
            "/channel/escalate/rule/list",
            json!({"channel_id": channel_id}),
        )
        .await;
    assert_eq!(
        rules["data"]["items"][0]["layers"][0]["escalate_window"],
        20
    );
    assert_eq!(rules["data"]["items"].as_array().unwrap().len(), 1);

    // Reassign and merge on the incident page: an empty choice is refused beside the field.
    // spec: RSP-100 (the merged-away incident is closed)
    let (status, body) = t
        .push(json!({"event_status": "Warning", "title_rule": "Pong", "alert_key": "pong"}))
        .await;
    assert_eq!(status, 200, "{body}");
    t.drained().await;
    let incidents = t.incidents().await;
    let id_of = |title: &str| {
        incidents.iter().find(|i| i["title"] == title).unwrap()["incident_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ping, pong) = (id_of("Ping"), id_of("Pong"));
    c.goto(&format!("{}/incident/detail/{ping}", t.base))
        .await
        .unwrap();
    click(c, ".more-actions summary").await;
    click(c, "form.reassign button[type=submit]").await;
    until("the reassign error", || async {
        text_of(c, "#assigned_to-error")
            .await
            .contains("assigned_to")
    })
    .await;
    click(c, "form.reassign input[name=person_ids]").await;
    click(c, "form.reassign button[type=submit]").await;
    until("the reassignment", || async {
        text_of(c, "#incident .banner.ok").await == "Reassigned."
    })
    .await;
    let (_, info) = t.api("/incident/info", json!({"incident_id": ping})).await;
    assert_eq!(
        info["data"]["responders"].as_array().unwrap().len(),
        1,
        "{info}"
    );
    click(c, ".more-actions summary").await;
    click(c, "form.merge button[type=submit]").await;
    until("the merge error", || async {
        text_of(c, "#target_incident_id-error")
            .await
            .contains("target_incident_id")
    })
    .await;
    shoot(c, "incident-merge-error").await;
    c.find(Locator::Css("#target_incident_id"))
        .await
        .unwrap()
        .select_by_value(&pong)
        .await
        .unwrap();
    click(c, "form.merge button[type=submit]").await;
    until("the merged-into incident", || async {
        c.current_url().await.unwrap().path() == format!("/incident/detail/{pong}")
    })
    .await;
    let (_, info) = t.api("/incident/info", json!({"incident_id": ping})).await;
    assert_eq!(info["data"]["progress"], "Closed", "{info}");

    println!(
        "console screenshots written to {}",
        screenshot_dir().display()
    );
    browser.stop().await;
    t.stop().await;
}

async fn list_of_a_thousand(database_url: &str) {
    let mut t = TestServer::start_with(database_url, |c| {
        c.api_limits.per_account_per_second = 1_000_000;
        c.api_limits.per_account_per_minute = 1_000_000;
        c.workers.delivery = false;
    })
    .await;
    for n in 0..1001 {
        let (status, body) = t
            .api(
                "/incident/create",
                json!({"title": format!("Load test incident {n}"), "incident_severity": "Warning"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (cookie, _) = sign_in(&t).await;

    let (status, html) = get_page(&t, &cookie, "/incidents?who=all").await;
    assert_eq!(status, 200);
    // spec: RSP-504 (more than 1000 matches show as 1000+, paged through the first 1000)
    assert!(html.contains("<strong>1000+</strong> incidents"), "{html}");
    assert!(html.contains("page 1 of 10"));
    assert_eq!(html.matches("id=\"row-").count(), 100);
    assert!(html.contains("Load test incident 1000"));

    let (status, html) = get_page(&t, &cookie, "/incidents/results?who=all&p=10").await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("id=\"row-").count(), 100);
    assert!(html.contains("page 10 of 10"));
    assert!(!html.contains("Older →"));

    // spec: RSP-501 (the default list shows only incidents assigned to me)
    let (_, html) = get_page(&t, &cookie, "/incidents").await;
    assert!(html.contains("<strong>0</strong> incidents"), "{html}");
    assert!(html.contains("show everyone&#x27;s") || html.contains("show everyone's"));

    // A bad filter value is named by the API's own check.
    let (_, html) = get_page(&t, &cookie, "/incidents/results?who=all&progress=Sleeping").await;
    assert!(
        html.contains("progress has an invalid value: Sleeping"),
        "{html}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_renders_a_thousand_incidents() {
    list_of_a_thousand("").await;
    if let Some(url) = common::fresh_postgres().await {
        list_of_a_thousand(&url).await;
    }
}

/// Pages need a session, actions need the CSRF token, and the vendored assets are served
/// with long cache lifetimes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_actions_the_csrf_token() {
    let mut t = TestServer::start("").await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .get(format!("{}/incidents", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/signin?next=%2Fincidents");

    // `/` signed out: the sign-in form, with the node's status for operators.
    let (status, html) = get_page(&t, "", "/").await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"password\""));
    assert!(html.contains("/event/push/alert/standard"));

    // A bad sign-in keeps the e-mail and names the problem next to the field.
    let resp = t
        .http
        .post(format!("{}/signin", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([("email", "owner@klaxon.local"), ("password", "nope")])
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let html = resp.text().await.unwrap();
    assert!(html.contains("value=\"owner@klaxon.local\""));
    assert!(html.contains("id=\"password-error\" role=\"alert\">email or password is incorrect"));
    let resp = t
        .http
        .post(format!("{}/signin", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("email", ""), ("password", "x")]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("id=\"email-error\" role=\"alert\">email: required")
    );

    let (cookie, csrf) = sign_in(&t).await;
    let (status, body) = t
        .api(
            "/incident/create",
            json!({"title": "Needs a token", "incident_severity": "Info"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["incident_id"].as_str().unwrap().to_string();

    // Without the CSRF header an action changes nothing.
    let resp = t
        .http
        .post(format!("{}/incident/detail/{id}/ack", t.base))
        .header("cookie", &cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("X-Klaxon-CSRF"));
    let (_, html) = get_page(&t, &cookie, &format!("/incident/detail/{id}")).await;
    assert!(html.contains("id=\"progress\">Triggered"));

    // With it, the same action goes through the Open API's acknowledge.
    let resp = t
        .http
        .post(format!("{}/incident/detail/{id}/ack", t.base))
        .header("cookie", &cookie)
        .header("x-klaxon-csrf", &csrf)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("id=\"progress\">Processing")
    );

    // A bad snooze length is refused by the API's own check, shown next to the field.
    let resp = t
        .http
        .post(format!("{}/incident/detail/{id}/snooze", t.base))
        .header("cookie", &cookie)
        .header("x-klaxon-csrf", &csrf)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("minutes", "0")]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("id=\"minutes-error\" role=\"alert\">minutes must be between 1 and 1440"),
        "{html}"
    );
    assert!(html.contains("value=\"0\""), "the typed value stays");

    // Batch actions over the list: one incident each, through /incident/ack and
    // /incident/close; a failure of one is reported without stopping the others (RSP-121).
    let (_, body) = t
        .api(
            "/incident/create",
            json!({"title": "Batch two", "incident_severity": "Info"}),
        )
        .await;
    let second = body["data"]["incident_id"].as_str().unwrap().to_string();
    // A notification's `?ack=1` link asks for one click; opening it changes nothing.
    let (_, html) = get_page(&t, &cookie, &format!("/incident/detail/{second}?ack=1")).await;
    assert!(html.contains("id=\"ask-ack\""));
    assert!(html.contains("id=\"progress\">Triggered"));
    let batch = |form: Vec<(&'static str, String)>| {
        t.http
            .post(format!("{}/incidents/batch?who=all", t.base))
            .header("cookie", &cookie)
            .header("x-klaxon-csrf", &csrf)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
    };
    let resp = batch(vec![
        ("action", "ack".to_string()),
        ("incident_ids", id.clone()),
        ("incident_ids", second.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("2 incidents acknowledged.")
    );
    let missing = "000000000000000000000000";
    let resp = batch(vec![
        ("action", "close".to_string()),
        ("incident_ids", second.clone()),
        ("incident_ids", missing.to_string()),
    ])
    .await
    .unwrap();
    let html = resp.text().await.unwrap();
    assert!(html.contains("1 of 2 incidents closed."), "{html}");
    assert!(
        html.contains(&format!("{missing}: incident {missing} not found")),
        "{html}"
    );
    // Reopen, snooze and wake on the detail page, each through its Open API action.
    let act = |action: &'static str, form: &'static str| {
        t.http
            .post(format!("{}/incident/detail/{second}/{action}", t.base))
            .header("cookie", &cookie)
            .header("x-klaxon-csrf", &csrf)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let html = act("reopen", "").await.unwrap().text().await.unwrap();
    assert!(
        html.contains("Reopened.") && html.contains("id=\"progress\">Triggered"),
        "{html}"
    );
    let html = act("snooze", "minutes=30")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Snoozed.") && html.contains("snoozed until"),
        "{html}"
    );
    let html = act("wake", "").await.unwrap().text().await.unwrap();
    assert!(
        html.contains("Woken.") && !html.contains("snoozed until"),
        "{html}"
    );
    let resp = act("explode", "").await.unwrap();
    assert_eq!(resp.status(), 404);

    let resp = batch(vec![("action", "close".to_string())]).await.unwrap();
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Select one or more incidents first.")
    );

    // An unknown incident is a clear 404 page.
    let (status, html) = get_page(&t, &cookie, "/incident/detail/000000000000000000000000").await;
    assert_eq!(status, 404);
    assert!(html.contains("not found"));

    // Assets: hashed names, a year of caching; unknown names are 404.
    let css = html
        .split("href=\"")
        .find_map(|s| {
            s.split('"')
                .next()
                .filter(|h| h.starts_with("/assets/console."))
        })
        .unwrap()
        .to_string();
    let resp = t.http.get(format!("{}{css}", t.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    let resp = t
        .http
        .get(format!("{}/assets/htmx.js", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    t.stop().await;
}

/// The channels and schedules pages need a session, their saves the CSRF token; a refused
/// save names the field beside its input and keeps what was typed; unknown ids are 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_and_schedule_pages_need_a_session_and_saves_the_csrf_token() {
    let mut t = TestServer::start("").await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, next) in [
        ("/channels", "%2Fchannels"),
        ("/schedules", "%2Fschedules"),
        ("/schedules/new", "%2Fschedules%2Fnew"),
        ("/channels/1/rules/new", "%2Fchannels%2F1%2Frules%2Fnew"),
    ] {
        let resp = no_redirects
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(resp.headers()["location"], format!("/signin?next={next}"));
    }
    let (cookie, csrf) = sign_in(&t).await;
    let (_, channels) = t.api("/channel/list", json!({})).await;
    let cid = channels["data"]["items"][0]["channel_id"].as_i64().unwrap();
    let (_, me) = get_page(&t, &cookie, "/schedules/new").await;
    let owner = me
        .split("name=\"members\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let post = |path: String, form: Vec<(&'static str, String)>, token: Option<&str>| {
        let mut req = t
            .http
            .post(format!("{}{path}", t.base))
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(token) = token {
            req = req.header("x-klaxon-csrf", token);
        }
        req.send()
    };
    let rule = vec![
        ("rule_name", "Night".to_string()),
        ("l0_person", owner.clone()),
        ("l0_window", "10".to_string()),
    ];
    let schedule = vec![
        ("schedule_name", "Ops".to_string()),
        ("members", owner.clone()),
        ("rotation_value", "1".to_string()),
        ("rotation_unit", "day".to_string()),
        ("start_date", "2026-01-05".to_string()),
        ("handoff", "09:00".to_string()),
        ("time_zone", "UTC".to_string()),
    ];

    // Without the CSRF token nothing is saved.
    let resp = post(format!("/channels/{cid}/rules"), rule.clone(), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = post("/schedules".to_string(), schedule.clone(), None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let (_, rules) = t
        .api("/channel/escalate/rule/list", json!({"channel_id": cid}))
        .await;
    assert_eq!(rules["data"]["total"], 0);
    let (_, listed) = t.api("/schedule/list", json!({})).await;
    assert_eq!(listed["data"]["total"], 0);

    // An empty rule name: the API's message beside the name, the ticked member kept.
    let mut unnamed = rule.clone();
    unnamed[0].1 = "  ".to_string();
    let resp = post(format!("/channels/{cid}/rules"), unnamed, Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("id=\"rule_name-error\" role=\"alert\">rule_name"),
        "{html}"
    );
    assert!(html.contains(&format!("name=\"l0_person\" value=\"{owner}\" checked")));
    // A level with nobody to notify, between two used ones, is named by its level.
    let gap = vec![
        ("rule_name", "Gap".to_string()),
        ("l0_person", owner.clone()),
        ("l2_person", owner.clone()),
    ];
    let html = post(format!("/channels/{cid}/rules"), gap, Some(&csrf))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"l1_target-error\" role=\"alert\">layers[1].target"),
        "{html}"
    );
    // An unknown time zone is the API's to refuse, beside the zone.
    let mut zoned = schedule.clone();
    zoned[6].1 = "Mars/Olympus".to_string();
    let resp = post("/schedules".to_string(), zoned, Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"time_zone-error\""), "{html}");
    // minijinja escapes `/` as `&#x2f;`.
    assert!(html.contains("value=\"Mars&#x2f;Olympus\""), "{html}");

    // spec: RSP-135 (no rule yet: the channel is flagged; a rule for every incident clears it)
    let (_, html) = get_page(&t, &cookie, "/channels").await;
    assert!(html.contains("class=\"banner warn\""), "{html}");

    // With the token both are saved and the browser is sent on.
    let resp = post(format!("/channels/{cid}/rules"), rule, Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["hx-redirect"],
        format!("/channels#channel-{cid}")
    );
    let resp = post("/schedules".to_string(), schedule, Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let to = resp.headers()["hx-redirect"].to_str().unwrap().to_string();
    assert!(to.starts_with("/schedules/"), "{to}");
    let (status, html) = get_page(&t, &cookie, &to).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"on-call-now\""));
    let (_, html) = get_page(&t, &cookie, "/channels").await;
    assert!(html.contains(">Night</a>"), "{html}");
    assert!(!html.contains("class=\"banner warn\""), "{html}");
    assert!(html.contains(&t.integration_key));

    // Unknown ids are clear 404 pages.
    for path in [
        "/schedules/999999",
        "/schedules/abc",
        "/channels/abc/rules/new",
    ] {
        let (status, _) = get_page(&t, &cookie, path).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = get_page(&t, &cookie, &format!("/channels/{cid}/rules/nope")).await;
    assert_eq!(status, 404);
    t.stop().await;
}

/// A second handle on the test server's database, for what no page or API does: opening a
/// session for an invited member (their first sign-in, which makes them `enabled`).
async fn store_of(t: &TestServer) -> klaxon_store::Store {
    let url = common::test_config(t.dir.path(), &t.database_url).effective_database_url();
    klaxon_store::Store::connect(&url, klaxon_store::StoreOptions::default())
        .await
        .unwrap()
}

/// Personal settings, members and teams through their pages: a refused value is shown beside
/// its field with everything typed kept, then saved; an APP key is shown once, used, listed
/// with its last use and revoked; a member is invited, put in a team and deactivated.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_members_and_teams_in_the_browser() {
    people_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        people_in_the_browser(&url).await;
    }
}

async fn people_in_the_browser(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    let (_, me) = t.api("/member/info", json!({})).await;
    let owner_id = me["data"]["member_id"].as_i64().unwrap();
    let owner_email = me["data"]["email"].as_str().unwrap().to_string();

    // Settings, from one's name in the header: the contact methods with their verification.
    click(c, ".top a.me").await;
    until("the settings page", || async {
        c.current_url().await.unwrap().path() == "/settings"
    })
    .await;
    assert!(text_of(c, ".contacts").await.contains(&owner_email));
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every settings input has a label"
    );
    shoot(c, "settings").await;

    // An unknown time zone is the API's to refuse, beside the zone; the typed name and zone
    // stay, and nothing is saved.
    type_into(c, "#member_name", "Olga Owner").await;
    type_into(c, "#time_zone", "Mars/Olympus").await;
    click(c, "#profile-form button[type=submit]").await;
    until("the time zone error", || async {
        text_of(c, "#time_zone-error").await.contains("time_zone")
    })
    .await;
    assert_eq!(value_of(c, "#member_name").await, "Olga Owner");
    assert_eq!(value_of(c, "#time_zone").await, "Mars/Olympus");
    assert_eq!(
        attr_of(c, "#time_zone", "aria-describedby")
            .await
            .as_deref(),
        Some("time_zone-error")
    );
    let (_, me) = t.api("/member/info", json!({})).await;
    assert_ne!(me["data"]["member_name"], "Olga Owner");
    shoot(c, "settings-error").await;
    type_into(c, "#time_zone", "Europe/Berlin").await;
    click(c, "#profile-form button[type=submit]").await;
    until("the saved profile", || async {
        text_of(c, "#profile .banner.ok").await == "Saved."
    })
    .await;
    let (_, me) = t.api("/member/info", json!({})).await;
    assert_eq!(me["data"]["member_name"], "Olga Owner");
    assert_eq!(me["data"]["time_zone"], "Europe/Berlin");

    // How one is notified. spec: OQ-24 (the defaults until saved), RSP-330, RSP-332 (an IM app
    // without a linked identity is flagged); a severity left without a channel is refused
    // beside it with every tick kept, and nothing is saved.
    assert!(exists(c, "#preference-default").await);
    assert!(exists(c, "#pref-critical-voice:checked").await);
    assert!(!exists(c, "#pref-critical-slack_app:checked").await);
    click(c, "#pref-warning-email").await;
    click(c, "#pref-warning-sms").await;
    click(c, "#pref-critical-slack_app").await;
    click(c, "#preference-form button[type=submit]").await;
    until("the warning-level error", || async {
        text_of(c, "#warning-error").await.starts_with("warning:")
    })
    .await;
    assert!(exists(c, "#pref-critical-slack_app:checked").await);
    assert!(!exists(c, "#pref-warning-email:checked").await);
    assert_eq!(
        attr_of(c, "#warning", "aria-describedby").await.as_deref(),
        Some("warning-error")
    );
    let (_, pref) = t.api("/member/preference/info", json!({})).await;
    assert_eq!(pref["data"]["is_default"], true, "{pref}");
    shoot(c, "settings-preference-error").await;
    click(c, "#pref-warning-sms").await;
    click(c, "#preference-form button[type=submit]").await;
    until("the saved preference", || async {
        text_of(c, "#preference .banner.ok").await == "Saved."
    })
    .await;
    assert!(
        text_of(c, "#critical").await.contains("not linked"),
        "the Slack app is flagged under Critical"
    );
    assert!(!exists(c, "#preference-default").await);
    let (_, pref) = t.api("/member/preference/info", json!({})).await;
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| e["channel"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&pref["data"]["critical"]),
        ["voice", "sms", "email", "slack_app"]
    );
    assert_eq!(names(&pref["data"]["warning"]), ["sms"]);
    shoot(c, "settings-preference").await;

    // APP keys. spec: RSP-610 (a refused name is named beside the box; the secret is shown
    // once), RSP-612 (the list shows the last use), RSP-611 (a revoked key stops at once).
    let long = "k".repeat(40);
    type_into(c, "#key_name", &long).await;
    click(c, "#key-form button[type=submit]").await;
    until("the key name error", || async {
        text_of(c, "#key_name-error").await.contains("key_name")
    })
    .await;
    assert_eq!(value_of(c, "#key_name").await, long);
    type_into(c, "#key_name", "ci-bot").await;
    click(c, "#key-form button[type=submit]").await;
    until("the new key", || async { exists(c, "#new-key").await }).await;
    let secret = value_of(c, "#new-key").await;
    assert!(secret.len() >= 16, "{secret}");
    let ci_row = text_of(c, "#app-keys tbody").await;
    assert!(ci_row.contains("ci-bot"), "{ci_row}");
    assert!(!ci_row.contains(&secret), "the list never shows a secret");
    shoot(c, "settings-new-key").await;
    let use_key = |key: String| {
        let http = t.http.clone();
        let url = format!("{}/member/info?app_key={key}", t.base);
        async move { http.post(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(use_key(secret.clone()).await, 200);
    c.goto(&format!("{}/settings", t.base)).await.unwrap();
    assert!(!exists(c, "#new-key").await, "a secret is shown only once");
    let (_, keys) = t.api("/app-key/list", json!({})).await;
    let ci = keys["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_name"] == "ci-bot")
        .unwrap()
        .clone();
    let ci_id = ci["key_id"].as_i64().unwrap();
    assert!(ci["last_used_at"].as_i64().unwrap() > 0, "{ci}");
    let row = text_of(c, &format!("#key-{ci_id}")).await;
    assert!(row.contains("ago") && !row.contains("never"), "{row}");
    accept_confirms(c).await;
    click(c, &format!("#key-{ci_id} button")).await;
    until("the revocation", || async {
        text_of(c, "#app-keys .banner.ok").await.contains("revoked")
    })
    .await;
    assert!(!exists(c, &format!("#key-{ci_id}")).await);
    assert_eq!(use_key(secret).await, 401);
    shoot(c, "settings-keys").await;

    // Members. A bad address is refused beside it with the name kept; a good one invites
    // a pending Responder (spec: RSP-550, the console's default role) shown unverified
    // (spec: RSP-551).
    click(c, ".top nav a[href='/members']").await;
    until("the members page", || async {
        c.current_url().await.unwrap().path() == "/members"
    })
    .await;
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every members input has a label"
    );
    // The owner cannot be deactivated: no button on their row.
    assert!(!exists(c, &format!("#member-{owner_id} button")).await);
    type_into(c, "#email", "ann-at-example").await;
    type_into(c, "#member_name", "Ann").await;
    click(c, "#invite-form button[type=submit]").await;
    until("the address error", || async {
        text_of(c, "#email-error").await.contains("email")
    })
    .await;
    assert_eq!(value_of(c, "#member_name").await, "Ann");
    assert_eq!(value_of(c, "#email").await, "ann-at-example");
    assert_eq!(
        attr_of(c, "#email", "aria-describedby").await.as_deref(),
        Some("email-error")
    );
    shoot(c, "members-error").await;
    type_into(c, "#email", "ann@example.com").await;
    click(c, "#invite-form button[type=submit]").await;
    until("the invited member", || async {
        text_of(c, "#member-list").await.contains("ann@example.com")
    })
    .await;
    let (_, members) = t.api("/member/list", json!({})).await;
    let ann = members["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "ann@example.com")
        .unwrap()
        .clone();
    let ann_id = ann["member_id"].as_i64().unwrap();
    assert_eq!(ann["member_name"], "Ann");
    assert_eq!(ann["status"], "pending");
    assert_eq!(ann["account_role_ids"], json!([6]), "{ann}");
    let row = text_of(c, &format!("#member-{ann_id}")).await;
    assert!(
        row.contains("Responder") && row.contains("pending") && row.contains("unverified"),
        "{row}"
    );
    shoot(c, "members").await;

    // Teams: an unnamed team is refused beside the name with the ticked member kept; then it
    // is created, and edited to hold the owner too.
    click(c, ".top nav a[href='/teams']").await;
    until("the teams page", || async {
        c.current_url().await.unwrap().path() == "/teams"
    })
    .await;
    shoot(c, "teams-empty").await;
    click(c, "a[href='/teams/new']").await;
    until("the team form", || async {
        text_of(c, "h1").await == "New team"
    })
    .await;
    click(c, &format!("input[name=members][value='{ann_id}']")).await;
    click(c, "#team-form button[type=submit]").await;
    until("the team name error", || async {
        text_of(c, "#team_name-error").await.contains("team_name")
    })
    .await;
    let kept = c
        .execute(
            "return document.querySelector('input[name=members][value=\"' + arguments[0] + '\"]').checked",
            vec![json!(ann_id.to_string())],
        )
        .await
        .unwrap();
    assert_eq!(kept, Value::Bool(true), "the ticked member was lost");
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every team input has a label"
    );
    shoot(c, "team-error").await;
    type_into(c, "#team_name", "DBA").await;
    click(c, "#team-form button[type=submit]").await;
    until("the teams page with the team", || async {
        c.current_url().await.unwrap().path() == "/teams"
            && text_of(c, ".cards").await.contains("DBA")
    })
    .await;
    let (_, teams) = t.api("/team/list", json!({})).await;
    let team = teams["data"]["items"][0].clone();
    let team_id = team["team_id"].as_i64().unwrap();
    assert_eq!(team["team_name"], "DBA");
    assert_eq!(team["person_ids"], json!([ann_id]));
    click(c, "a[aria-label='Edit DBA']").await;
    until("the filled team form", || async {
        value_of(c, "#team_name").await == "DBA"
    })
    .await;
    click(c, &format!("input[name=members][value='{owner_id}']")).await;
    click(c, "#team-form button[type=submit]").await;
    until("the teams page after the edit", || async {
        c.current_url().await.unwrap().path() == "/teams"
    })
    .await;
    let (_, info) = t.api("/team/info", json!({"team_id": team_id})).await;
    let mut people: Vec<i64> = info["data"]["person_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    people.sort_unstable();
    let mut want = vec![owner_id, ann_id];
    want.sort_unstable();
    assert_eq!(people, want);
    assert!(text_of(c, ".cards").await.contains("Ann"));
    shoot(c, "teams").await;

    // Deactivate Ann. spec: RSP-553 (gone from the list and from her team).
    click(c, ".top nav a[href='/members']").await;
    until("the members page again", || async {
        c.current_url().await.unwrap().path() == "/members"
    })
    .await;
    accept_confirms(c).await;
    click(c, &format!("#member-{ann_id} button")).await;
    until("the deactivation", || async {
        text_of(c, "#member-list .banner.ok")
            .await
            .contains("deactivated")
    })
    .await;
    assert!(!text_of(c, "#member-list").await.contains("ann@example.com"));
    let (_, info) = t.api("/team/info", json!({"team_id": team_id})).await;
    assert_eq!(info["data"]["person_ids"], json!([owner_id]));

    println!(
        "console screenshots written to {}",
        screenshot_dir().display()
    );
    browser.stop().await;
    t.stop().await;
}

/// The incident page offers "Escalate" only for an open incident whose assignment names an
/// escalation rule that exists, and "Reassign" and "Add responders" only while it is open;
/// a rare incident carries the outlier badge in the list and a banner on its page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalate_add_responders_and_outliers_in_the_browser() {
    let mut t = TestServer::start("").await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    let (_, me) = t.api("/member/info", json!({})).await;
    let owner_id = me["data"]["member_id"].as_i64().unwrap();
    let (_, channels) = t.api("/channel/list", json!({})).await;
    let channel_id = channels["data"]["items"][0]["channel_id"].as_i64().unwrap();
    let level = json!({"target": {"person_ids": [owner_id], "by": {"follow_preference": true}},
                       "escalate_window": 30});
    let (status, body) = t
        .api(
            "/channel/escalate/rule/create",
            json!({"channel_id": channel_id, "rule_name": "Primary", "layers": [level, level]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A second, enabled member to add (an invitee is pending until their first sign-in,
    // and pending members are never responders, RSP-152).
    let (status, body) = t
        .api(
            "/member/invite",
            json!({"members": [{"email": "bo@example.com", "member_name": "Bo"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let bo = body["data"]["items"][0]["member_id"].as_i64().unwrap();
    let store = store_of(&t).await;
    let account_id = store.app_key(&t.app_key).await.unwrap().unwrap().account_id;
    store
        .create_session(account_id, bo, 60_000, common::now_secs() * 1000)
        .await
        .unwrap();

    // The first incident of the channel is rare; one just like it afterwards is not.
    let (status, body) = t
        .push(
            json!({"event_status": "Critical", "title_rule": "Disk full on db-7",
                     "alert_key": "disk-db-7"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    t.drained().await;
    let rare = t.incidents().await[0]["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = t
        .api(
            "/incident/create",
            json!({"title": "Disk full on db-7", "incident_severity": "Warning",
                   "channel_id": channel_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let frequent = body["data"]["incident_id"].as_str().unwrap().to_string();
    let (_, info) = t.api("/incident/info", json!({"incident_id": rare})).await;
    assert_eq!(info["data"]["frequency"], "rare", "{info}");
    let (_, info) = t
        .api("/incident/info", json!({"incident_id": frequent}))
        .await;
    assert_eq!(info["data"]["frequency"], "frequent", "{info}");

    // spec: RSP-453 (the badge in the list, on the rare incident only)
    c.goto(&format!("{}/incidents?who=all", t.base))
        .await
        .unwrap();
    until("both incidents in the list", || async {
        exists(c, &format!("#row-{rare}")).await && exists(c, &format!("#row-{frequent}")).await
    })
    .await;
    assert_eq!(
        text_of(c, &format!("#row-{rare} .tag.outlier")).await,
        "Outlier"
    );
    assert!(!exists(c, &format!("#row-{frequent} .tag.outlier")).await);
    shoot(c, "incidents-outlier").await;

    // spec: RSP-453 (the banner with its explanation on the detail page)
    c.goto(&format!("{}/incident/detail/{rare}", t.base))
        .await
        .unwrap();
    assert!(text_of(c, "#outlier").await.contains("30 days"));
    // spec: RSP-114 (a rule-based assignment whose rule exists: Escalate is offered)
    assert!(exists(c, "form.escalate").await);
    click(c, ".more-actions summary").await;
    click(c, "form.escalate button[type=submit]").await;
    until("the level error", || async {
        text_of(c, "#layer_idx-error").await.contains("layer_idx")
    })
    .await;
    assert_eq!(
        attr_of(c, "#layer_idx", "aria-describedby")
            .await
            .as_deref(),
        Some("layer_idx-error")
    );
    // spec: RSP-113 (every level but the current one)
    let offered = c
        .execute(
            "return [...document.querySelectorAll('#layer_idx option')].map(o => o.value)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(offered, json!(["", "1"]));
    c.find(Locator::Css("#layer_idx"))
        .await
        .unwrap()
        .select_by_value("1")
        .await
        .unwrap();
    click(c, "form.escalate button[type=submit]").await;
    until("the escalation", || async {
        text_of(c, "#incident .banner.ok").await == "Escalated."
    })
    .await;
    let (_, info) = t.api("/incident/info", json!({"incident_id": rare})).await;
    assert_eq!(info["data"]["assigned_to"]["layer_idx"], 1, "{info}");
    assert_eq!(info["data"]["assigned_to"]["type"], "escalate", "{info}");

    // spec: RSP-112 (add responders keeps the current ones); nobody ticked is refused beside
    // the list.
    click(c, ".more-actions summary").await;
    click(c, "form.add-responders button[type=submit]").await;
    until("the add-responders error", || async {
        text_of(c, "#person_ids-error").await.contains("person_ids")
    })
    .await;
    shoot(c, "incident-add-error").await;
    click(c, &format!("form.add-responders input[value='{bo}']")).await;
    click(c, "form.add-responders button[type=submit]").await;
    until("the added responder", || async {
        text_of(c, "#incident .banner.ok").await == "Responders added."
    })
    .await;
    let (_, info) = t.api("/incident/info", json!({"incident_id": rare})).await;
    let responders: Vec<i64> = info["data"]["responders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["person_id"].as_i64().unwrap())
        .collect();
    assert!(
        responders.contains(&bo) && responders.contains(&owner_id),
        "{info}"
    );
    assert_eq!(
        info["data"]["assigned_to"]["layer_idx"], 1,
        "assigned_to unchanged"
    );

    // spec: RSP-111 (after a reassignment "Escalate" is no longer offered)
    click(c, ".more-actions summary").await;
    click(c, &format!("form.reassign input[value='{owner_id}']")).await;
    click(c, "form.reassign button[type=submit]").await;
    until("the reassignment", || async {
        text_of(c, "#incident .banner.ok").await == "Reassigned."
    })
    .await;
    assert!(!exists(c, "form.escalate").await);
    assert!(exists(c, "form.add-responders").await);
    assert!(
        !text_of(c, ".more-actions summary")
            .await
            .contains("escalate")
    );
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every detail input has a label"
    );
    shoot(c, "incident-outlier").await;

    // spec: RSP-114 (a closed incident offers none of reassign, add responders, escalate)
    click(c, "#incident button[hx-post$='/close']").await;
    until("the close", || async {
        text_of(c, "#progress").await == "Closed"
    })
    .await;
    assert!(!exists(c, ".more-actions").await);
    assert!(!exists(c, "form.add-responders").await);

    // A manual incident without a rule: no Escalate; not rare: no banner.
    c.goto(&format!("{}/incident/detail/{frequent}", t.base))
        .await
        .unwrap();
    assert!(exists(c, "form.reassign").await);
    assert!(!exists(c, "form.escalate").await);
    assert!(!exists(c, "#outlier").await);

    println!(
        "console screenshots written to {}",
        screenshot_dir().display()
    );
    browser.stop().await;
    t.stop().await;
}

/// The members, teams and settings pages need a session and their saves the CSRF token;
/// `/member/self/reset` changes only one's own name, language and time zone (RSP-333: not
/// email or phone) and is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_pages_need_a_session_and_saves_the_csrf_token() {
    let mut t = TestServer::start("").await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, next) in [
        ("/members", "%2Fmembers"),
        ("/teams", "%2Fteams"),
        ("/teams/new", "%2Fteams%2Fnew"),
        ("/settings", "%2Fsettings"),
    ] {
        let resp = no_redirects
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(resp.headers()["location"], format!("/signin?next={next}"));
    }
    let (cookie, csrf) = sign_in(&t).await;
    let post =
        |path: &'static str, form: Vec<(&'static str, &'static str)>, token: Option<&str>| {
            let mut req = t
                .http
                .post(format!("{}{path}", t.base))
                .header("cookie", &cookie)
                .header("hx-request", "true")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(form).unwrap());
            if let Some(token) = token {
                req = req.header("x-klaxon-csrf", token);
            }
            req.send()
        };
    // Without the token nothing is saved.
    for (path, form) in [
        ("/members", vec![("email", "cy@example.com")]),
        ("/teams", vec![("team_name", "Ops")]),
        ("/settings/keys", vec![("key_name", "x")]),
        (
            "/settings/profile",
            vec![
                ("member_name", "X"),
                ("time_zone", "UTC"),
                ("locale", "en-US"),
            ],
        ),
        (
            "/settings/preference",
            vec![("critical", "sms"), ("warning", "sms"), ("info", "sms")],
        ),
    ] {
        let resp = post(path, form, None).await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
    }
    let (_, pref) = t.api("/member/preference/info", json!({})).await;
    assert_eq!(pref["data"]["is_default"], true, "{pref}");
    let (_, members) = t.api("/member/list", json!({})).await;
    assert_eq!(members["data"]["total"], 1);
    let (_, teams) = t.api("/team/list", json!({})).await;
    assert_eq!(teams["data"]["total"], 0);
    let (_, keys) = t.api("/app-key/list", json!({})).await;
    assert_eq!(keys["data"]["items"].as_array().unwrap().len(), 1);

    // With it: an invitation redirects to the list; a duplicate is refused beside the address.
    let resp = post("/members", vec![("email", "cy@example.com")], Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(
        resp.headers()["hx-redirect"]
            .to_str()
            .unwrap()
            .starts_with("/members?invited=")
    );
    let resp = post("/members", vec![("email", "CY@example.com")], Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    // spec: RSP-552 (email is unique, case-insensitive)
    assert!(
        html.contains(
            "id=\"email-error\" role=\"alert\">members[0].email: a member with the email"
        ),
        "{html}"
    );
    assert!(html.contains("value=\"CY@example.com\""), "{html}");
    // An empty name in the settings is refused beside it before anything is sent.
    let resp = post(
        "/settings/profile",
        vec![
            ("member_name", " "),
            ("time_zone", "UTC"),
            ("locale", "en-US"),
        ],
        Some(&csrf),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("id=\"member_name-error\" role=\"alert\">updates.member_name: required")
    );
    // Unknown ids are clear 404 pages.
    for path in ["/teams/999999", "/teams/abc"] {
        let (status, _) = get_page(&t, &cookie, path).await;
        assert_eq!(status, 404, "{path}");
    }

    // `/member/self/reset`: one's own time zone and language; spec: RSP-333 (never email or
    // phone without a verification code).
    let (status, body) = t
        .api(
            "/member/self/reset",
            json!({"updates": {"time_zone": "Asia/Tokyo", "locale": "zh-CN"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, me) = t.api("/member/info", json!({})).await;
    assert_eq!(me["data"]["time_zone"], "Asia/Tokyo");
    assert_eq!(me["data"]["locale"], "zh-CN");
    assert_eq!(me["data"]["email_verified"], true, "{me}");
    let before = me["data"]["email"].clone();
    let (status, body) = t
        .api(
            "/member/self/reset",
            json!({"updates": {"email": "new@example.com", "time_zone": "UTC"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("updates.email:"),
        "{body}"
    );
    let (_, me) = t.api("/member/info", json!({})).await;
    assert_eq!(me["data"]["email"], before);
    assert_eq!(me["data"]["time_zone"], "Asia/Tokyo", "nothing changed");
    // spec: RSP-600 (a write: audited, by whoever made it)
    let (_, audit) = t
        .api(
            "/audit/search",
            json!({"start_time": common::now_secs() - 3600, "end_time": common::now_secs() + 60}),
        )
        .await;
    let text = audit.to_string();
    assert!(text.contains("member_self:write:reset"), "{text}");
    t.stop().await;
}

/// The routes of a shared integration in the browser: the integrations page (reached from the
/// channels page) lists it with its push URL; its routing page shows the current rules in
/// order with their conditions, channels and flow, the default route and the history newest
/// first; a diff of an older version against the current one; a rollback refused by the
/// version lock (someone saved meanwhile) says so and changes nothing; a rollback then makes a
/// new version that is a copy of the old one; a rule is added through the form, a bad value
/// shown beside its input with what was typed kept.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_of_a_shared_integration_in_the_browser() {
    routing_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        routing_in_the_browser(&url).await;
    }
}

async fn routing_in_the_browser(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    let (status, body) = t
        .api("/channel/create", json!({"channel_name": "Databases"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let db = body["data"]["channel_id"].as_i64().unwrap();
    let (status, body) = t
        .api("/channel/create", json!({"channel_name": "Web"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let web = body["data"]["channel_id"].as_i64().unwrap();
    let (status, body) = t
        .api(
            "/integration/create",
            json!({"integration_name": "Prometheus (all teams)", "type": "prometheus",
                   "kind": "shared", "default_channel_ids": [web]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let iid = body["data"]["integration_id"].as_i64().unwrap();
    // Version 2: databases first (continue), then a catch-all for web (stop).
    let (status, body) = t
        .api(
            "/route/upsert",
            json!({"integration_id": iid, "version": 1,
                   "cases": [
                     {"if": [{"key": "labels.team", "oper": "IN", "vals": ["db", "pg"]}],
                      "channel_ids": [db], "fallthrough": true, "name": "Database team"},
                     {"if": [{"key": "severity", "oper": "NOTIN", "vals": ["Info"]}],
                      "channel_ids": [web]}],
                   "default": {"channel_ids": [db]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], 2);

    // The channels page links to the shared integrations, which show the push URL.
    c.goto(&format!("{}/channels", t.base)).await.unwrap();
    click(c, "#shared-integrations-link").await;
    until("the integrations page", || async {
        c.current_url().await.unwrap().path() == "/integrations"
    })
    .await;
    let push = value_of(c, &format!("#push-{iid}")).await;
    assert!(
        push.contains("/event/push/alert/prometheus?integration_key="),
        "{push}"
    );
    assert_eq!(unlabelled_inputs(c).await, 0);
    shoot(c, "integrations").await;

    // ING-095: the current version's rules in order, conditions as text, flow; the default
    // route; the history newest first with its author.
    click(c, &format!("#integration-{iid} a.button")).await;
    until("the routing page", || async {
        c.current_url().await.unwrap().path() == format!("/integrations/{iid}/routing")
    })
    .await;
    assert_eq!(text_of(c, "#current-version").await, "version 2");
    let rules = text_of(c, "#route-rules").await;
    assert!(
        rules.contains("Database team · When labels.team is db or pg"),
        "{rules}"
    );
    assert!(rules.contains("→ Databases continue"), "{rules}");
    assert!(rules.contains("When severity is not Info"), "{rules}");
    assert!(rules.contains("→ Web stop"), "{rules}");
    assert!(
        rules.find("Database team").unwrap() < rules.find("severity").unwrap(),
        "rules in order: {rules}"
    );
    assert!(text_of(c, "#default-route").await.contains("Databases"));
    let history = text_of(c, ".route-history").await;
    assert!(
        history.find("Version 2").unwrap() < history.find("Version 1").unwrap(),
        "{history}"
    );
    assert!(history.contains("current"), "{history}");
    let owner = t.api("/member/info", json!({})).await.1["data"]["member_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(history.contains(&format!("by {owner}")), "{history}");

    // The diff of version 1 against the current one (rendered from /route/diff).
    click(c, "#version-1 a[href*='diff=1']").await;
    until("the diff", || async { exists(c, "#diff").await }).await;
    let diff = text_of(c, "#diff").await;
    assert!(diff.contains("from version 1 to version 2"), "{diff}");
    assert!(diff.contains("added"), "{diff}");
    assert!(diff.contains("Default route adds Databases"), "{diff}");
    assert!(diff.contains("Default route drops Web"), "{diff}");
    shoot(c, "routing-diff").await;

    // ING-095 (version lock): someone saves version 3 while the page shows version 2; the
    // rollback based on version 2 is refused with a clear message and nothing changes.
    let (status, body) = t
        .api(
            "/route/upsert",
            json!({"integration_id": iid, "version": 2, "cases": [],
                   "default": {"channel_ids": [web]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    accept_confirms(c).await;
    click(c, "#version-1 form.rollback button").await;
    until("the conflict message", || async {
        text_of(c, "#route-message")
            .await
            .contains("changed by someone else")
    })
    .await;
    assert!(
        text_of(c, "#route-message")
            .await
            .contains("version conflict")
    );
    shoot(c, "routing-conflict").await;
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["version"], 3);

    // From the current page, roll back to version 2: version 4 is a copy of it.
    c.goto(&format!("{}/integrations/{iid}/routing", t.base))
        .await
        .unwrap();
    accept_confirms(c).await;
    click(c, "#version-2 form.rollback button").await;
    until("version 4", || async {
        text_of(c, "#current-version").await == "version 4"
    })
    .await;
    assert!(text_of(c, "#route-rules").await.contains("Database team"));
    assert!(
        text_of(c, "#version-4")
            .await
            .contains("rollback to version 2")
    );
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["version"], 4);
    assert_eq!(info["data"]["cases"].as_array().unwrap().len(), 2);
    assert_eq!(info["data"]["default"]["channel_ids"], json!([db]));
    assert_eq!(unlabelled_inputs(c).await, 0);

    // Adding a rule: a bad regular expression is refused beside the value, what was typed
    // is kept and nothing is saved; corrected, it is saved as version 5 after the others.
    type_into(c, "#rule-key", "labels.host").await;
    type_into(c, "#rule-value", "/(db/").await;
    click(c, &format!("#rule-channels input[value='{web}']")).await;
    click(c, "#add-rule input[name=flow][value=continue]").await;
    click(c, "#add-rule button[type=submit]").await;
    until("the error beside the value", || async {
        exists(c, "#value-error").await
    })
    .await;
    assert!(
        text_of(c, "#value-error")
            .await
            .contains("cases[2].if[0].vals[0]")
    );
    assert_eq!(value_of(c, "#rule-key").await, "labels.host");
    assert_eq!(value_of(c, "#rule-value").await, "/(db/");
    assert!(
        c.find(Locator::Css(&format!(
            "#rule-channels input[value='{web}']"
        )))
        .await
        .unwrap()
        .is_selected()
        .await
        .unwrap()
    );
    shoot(c, "routing-add-rule-error").await;
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["version"], 4);
    type_into(c, "#rule-value", "/^db-/").await;
    click(c, "#add-rule button[type=submit]").await;
    until("version 5", || async {
        text_of(c, "#current-version").await == "version 5"
    })
    .await;
    let rules = text_of(c, "#route-rules").await;
    assert!(
        rules.contains("When labels.host is /^db-/\n→ Web continue"),
        "{rules}"
    );
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    let cases = info["data"]["cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[2]["channel_ids"], json!([web]));
    assert_eq!(cases[2]["fallthrough"], true);
    // The rules already there keep their ids (ING-095: a new version, same rules).
    assert_eq!(cases[0]["name"], "Database team");
    shoot(c, "routing").await;

    println!(
        "console screenshots written to {}",
        screenshot_dir().display()
    );
    browser.stop().await;
    t.stop().await;
}

/// The routing pages need a session, a rollback the CSRF token (without it nothing changes),
/// and a rollback to a version that does not exist is refused with the API's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_pages_need_a_session_and_rollback_the_csrf_token() {
    let mut t = TestServer::start("").await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, next) in [
        ("/integrations", "%2Fintegrations"),
        ("/integrations/5/routing", "%2Fintegrations%2F5%2Frouting"),
    ] {
        let resp = no_redirects
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(resp.headers()["location"], format!("/signin?next={next}"));
    }
    let (_, channels) = t.api("/channel/list", json!({})).await;
    let cid = channels["data"]["items"][0]["channel_id"].as_i64().unwrap();
    let (status, body) = t
        .api(
            "/integration/create",
            json!({"integration_name": "Shared", "type": "standard", "kind": "shared",
                   "default_channel_ids": [cid]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let iid = body["data"]["integration_id"].as_i64().unwrap();
    let (status, body) = t
        .api(
            "/route/upsert",
            json!({"integration_id": iid, "version": 1, "cases": [],
                   "default": {"channel_ids": []}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (cookie, csrf) = sign_in(&t).await;
    let (status, page) = get_page(&t, &cookie, &format!("/integrations/{iid}/routing")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("version 2"), "{page}");
    let rollback = |form: Vec<(&'static str, &'static str)>, token: Option<&str>| {
        let mut req = t
            .http
            .post(format!("{}/integrations/{iid}/routing/rollback", t.base))
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(token) = token {
            req = req.header("x-klaxon-csrf", token);
        }
        req.send()
    };
    let resp = rollback(vec![("version", "1"), ("base_version", "2")], None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["version"], 2);

    // A version that does not exist: the API's refusal, nothing changed.
    let resp = rollback(vec![("version", "9"), ("base_version", "2")], Some(&csrf))
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let text = resp.text().await.unwrap();
    assert!(text.contains("version 9"), "{text}");
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["version"], 2);

    // With the token: version 3, a copy of version 1; the browser is sent to the page.
    let resp = rollback(vec![("version", "1"), ("base_version", "2")], Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["hx-redirect"],
        format!("/integrations/{iid}/routing")
    );
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["version"], 3);
    assert_eq!(info["data"]["default"]["channel_ids"], json!([cid]));

    // A dedicated integration has no routes: the page says so.
    let (status, body) = t
        .api(
            "/integration/create",
            json!({"integration_name": "Own", "type": "standard", "kind": "dedicated",
                   "channel_id": cid}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let d = body["data"]["integration_id"].as_i64().unwrap();
    let (status, page) = get_page(&t, &cookie, &format!("/integrations/{d}/routing")).await;
    assert_eq!(status, 400);
    assert!(page.contains("not a shared alert integration"), "{page}");
    t.stop().await;
}

/// The titles `/incident/list` finds for everyone over the last day with the filters `extra`.
async fn incidents_found(t: &TestServer, extra: Value) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut body = json!({"start_time": now - 86_400, "end_time": now + 3600, "limit": 100});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    let (status, list) = t.api("/incident/list", body).await;
    assert_eq!(status, 200, "{list}");
    list["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap_or("").to_string())
        .collect()
}

/// A channel's silence and inhibit rules through their pages (reached from the channels
/// page): a silence rule with a bad regex is refused beside the condition row with everything
/// typed kept and nothing saved, then created and listed with its window and its conditions as
/// text, then disabled; an inhibit rule without equal attributes is refused beside them, then
/// created. The incident list filters by a label (wildcard, then regex), and a bad pattern
/// shows the API's message.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_and_inhibit_rules_and_label_filters_in_the_browser() {
    noise_rules_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        noise_rules_in_the_browser(&url).await;
    }
}

async fn noise_rules_in_the_browser(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    let (_, channels) = t.api("/channel/list", json!({})).await;
    let cid = channels["data"]["items"][0]["channel_id"].as_i64().unwrap();

    // The channels page links to the channel's silence rules.
    c.goto(&format!("{}/channels", t.base)).await.unwrap();
    click(c, &format!("#silence-link-{cid}")).await;
    until("the silence rules page", || async {
        c.current_url().await.unwrap().path() == format!("/channels/{cid}/silence-rules")
    })
    .await;
    assert!(text_of(c, "main").await.contains("No silence rules"));
    click(c, "#new-rule").await;
    until("the silence rule form", || async {
        exists(c, "#noise-form").await
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0);

    // spec: ING-133, §4.5 — a regex that does not compile is refused beside its row, what was
    // typed stays, nothing is saved.
    type_into(c, "#rule_name", "Database maintenance").await;
    set_value(c, "start_time", "2026-11-26T22:00").await;
    set_value(c, "end_time", "2026-11-27T06:00").await;
    type_into(c, "#c0_key", "severity").await;
    type_into(c, "#c0_vals", "Warning").await;
    type_into(c, "#c1_key", "labels.host").await;
    type_into(c, "#c1_vals", "/(db/").await;
    // "Add condition rows" redraws the form with three more empty rows, keeping what was
    // typed; nothing is saved (the list is still empty below).
    assert!(!exists(c, "#c6_key").await);
    click(c, "#c-rows button.add-rows").await;
    until("more condition rows", || async {
        exists(c, "#c6_key").await
    })
    .await;
    assert_eq!(value_of(c, "#c1_vals").await, "/(db/");
    assert_eq!(value_of(c, "#rule_name").await, "Database maintenance");
    click(c, "#noise-form input[name=behaviour][value=drop]").await;
    click(c, "#noise-form button[type=submit]").await;
    until("the error beside the values", || async {
        exists(c, "#c1_vals-error").await
    })
    .await;
    assert!(
        text_of(c, "#c1_vals-error")
            .await
            .contains("filters[0][1].vals[0]"),
        "{}",
        text_of(c, "#c1_vals-error").await
    );
    assert_eq!(
        attr_of(c, "#c1_vals", "aria-describedby").await.as_deref(),
        Some("c1_vals-error")
    );
    assert_eq!(value_of(c, "#rule_name").await, "Database maintenance");
    assert_eq!(value_of(c, "#c1_vals").await, "/(db/");
    assert_eq!(value_of(c, "#start_time").await, "2026-11-26T22:00");
    assert!(
        c.find(Locator::Css(
            "#noise-form input[name=behaviour][value=drop]"
        ))
        .await
        .unwrap()
        .is_selected()
        .await
        .unwrap()
    );
    shoot(c, "silence-rule-error").await;
    let (_, listed) = t
        .api("/channel/silence/rule/list", json!({"channel_id": cid}))
        .await;
    assert_eq!(listed["data"]["total"], 0, "{listed}");

    // Corrected, it is created and listed: window, behaviour, conditions as text (§4.6).
    type_into(c, "#c1_vals", "/^db-/").await;
    click(c, "#noise-form button[type=submit]").await;
    until("the silence rule list", || async {
        exists(c, "#noise-rules").await
    })
    .await;
    let list = text_of(c, "#noise-rules").await;
    assert!(list.contains("Database maintenance"), "{list}");
    assert!(list.contains("enabled"), "{list}");
    assert!(
        list.contains("from 2026-11-26 22:00 UTC to 2026-11-27 06:00 UTC"),
        "{list}"
    );
    assert!(
        list.contains("( severity == Warning && labels.host == /^db-/ )"),
        "{list}"
    );
    assert!(list.contains("drop"), "{list}");
    let (_, listed) = t
        .api("/channel/silence/rule/list", json!({"channel_id": cid}))
        .await;
    let rule = listed["data"]["items"][0].clone();
    assert_eq!(rule["is_directly_discard"], true, "{rule}");
    assert_eq!(rule["time_filter"]["start_time"], 1_795_730_400);
    assert_eq!(
        rule["filters"],
        json!([[{"key": "severity", "oper": "IN", "vals": ["Warning"]},
                {"key": "labels.host", "oper": "IN", "vals": ["/^db-/"]}]])
    );
    shoot(c, "silence-rules").await;

    // Disable from the list.
    let rid = rule["rule_id"].as_str().unwrap().to_string();
    click(c, &format!("#rule-{rid} button.disable")).await;
    until("the rule disabled", || async {
        exists(c, &format!("#rule-{rid} button.enable")).await
    })
    .await;
    let (_, info) = t
        .api("/channel/silence/rule/info", json!({"rule_id": rid}))
        .await;
    assert_eq!(info["data"]["status"], "disabled");

    // The editor reads the rule back as it was saved.
    c.goto(&format!("{}/channels/{cid}/silence-rules/{rid}", t.base))
        .await
        .unwrap();
    assert_eq!(value_of(c, "#c1_key").await, "labels.host");
    assert_eq!(value_of(c, "#c1_vals").await, "/^db-/");
    assert_eq!(value_of(c, "#end_time").await, "2026-11-27T06:00");

    // spec: ING-141 — an inhibit rule needs an equal attribute or label: refused beside them.
    c.goto(&format!("{}/channels/{cid}/inhibit-rules/new", t.base))
        .await
        .unwrap();
    assert_eq!(unlabelled_inputs(c).await, 0);
    type_into(c, "#rule_name", "Disk follows critical").await;
    type_into(c, "#s0_key", "severity").await;
    type_into(c, "#s0_vals", "Critical").await;
    type_into(c, "#t0_key", "severity").await;
    type_into(c, "#t0_vals", "Warning\nInfo").await;
    click(c, "#noise-form button[type=submit]").await;
    until("the error beside the equal attributes", || async {
        exists(c, "#equals-error").await
    })
    .await;
    assert!(text_of(c, "#equals-error").await.contains("equals"));
    assert_eq!(value_of(c, "#t0_vals").await, "Warning\nInfo");
    shoot(c, "inhibit-rule-error").await;
    type_into(c, "#equal_labels", "check").await;
    click(c, "#noise-form button[type=submit]").await;
    until("the inhibit rule list", || async {
        exists(c, "#noise-rules").await
    })
    .await;
    let list = text_of(c, "#noise-rules").await;
    assert!(list.contains("Disk follows critical"), "{list}");
    assert!(list.contains("( severity == Critical )"), "{list}");
    assert!(list.contains("( severity == Warning|Info )"), "{list}");
    assert!(list.contains("labels.check"), "{list}");
    let (_, listed) = t
        .api("/channel/inhibit/rule/list", json!({"channel_id": cid}))
        .await;
    assert_eq!(
        listed["data"]["items"][0]["equals"],
        json!(["labels.check"])
    );
    assert_eq!(listed["data"]["items"][0]["is_directly_discard"], true);
    shoot(c, "inhibit-rules").await;

    // spec: RSP-503 — a team (it owns no channel yet) and a select field to filter by.
    let (status, body) = t.api("/team/upsert", json!({"team_name": "DBA"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = t
        .api(
            "/field/create",
            json!({"field_name": "region", "display_name": "Region",
                   "field_type": "single_select", "options": ["eu", "us"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // spec: RSP-503 — the incident list by a label: a wildcard, then a regex.
    for (title, host) in [
        ("Disk full on db-7", "db-7"),
        ("CPU high on web-3", "web-3"),
    ] {
        let (status, body) = t
            .push(json!({"event_status": "Critical", "title_rule": title,
                         "alert_key": host, "labels": {"host": host}}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    until("both incidents", || async {
        incidents_found(&t, json!({})).await.len() == 2
    })
    .await;
    c.goto(&format!("{}/incidents?who=all", t.base))
        .await
        .unwrap();
    until("both in the list", || async {
        let r = text_of(c, "#results").await;
        r.contains("db-7") && r.contains("web-3")
    })
    .await;
    type_into(c, "#label-new", "host=db-*\u{E007}").await;
    until("the label filter to apply", || async {
        let r = text_of(c, "#results").await;
        r.contains("Disk full on db-7") && !r.contains("web-3")
    })
    .await;
    let query = c
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .to_string();
    assert!(query.contains("label=host%3Ddb-*"), "{query}");
    shoot(c, "incidents-label-filter").await;
    assert_eq!(unlabelled_inputs(c).await, 0);

    // Custom field and team filters, on top of the label filter.
    let now = common::now_secs();
    let (_, found) = t
        .api(
            "/incident/list",
            json!({"start_time": now - 3600, "end_time": now + 3600, "query": "db-7"}),
        )
        .await;
    let db7 = found["data"]["items"][0]["incident_id"].clone();
    let (status, body) = t
        .api(
            "/incident/field/reset",
            json!({"incident_id": db7, "field_name": "region", "field_value": "eu"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    c.find(Locator::Css("#field-region"))
        .await
        .unwrap()
        .select_by_value("us")
        .await
        .unwrap();
    until("no incident in us", || async {
        !text_of(c, "#results").await.contains("db-7")
    })
    .await;
    c.find(Locator::Css("#field-region"))
        .await
        .unwrap()
        .select_by_value("eu")
        .await
        .unwrap();
    until("db-7 in eu", || async {
        text_of(c, "#results").await.contains("Disk full on db-7")
    })
    .await;
    let query = c
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .to_string();
    assert!(query.contains("field.region=eu"), "{query}");
    let team = c
        .find(Locator::Css("#team option:nth-child(2)"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    c.find(Locator::Css("#team"))
        .await
        .unwrap()
        .select_by_value(&team)
        .await
        .unwrap();
    until("nothing in a team without channels", || async {
        !text_of(c, "#results").await.contains("db-7")
    })
    .await;
    let query = c
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .to_string();
    assert!(query.contains(&format!("team={team}")), "{query}");
    shoot(c, "incidents-filters").await;
    // The filter is in the address: a reload keeps it, with a box for it and a new one.
    c.refresh().await.unwrap();
    assert_eq!(
        value_of(c, "#label-filters input[name=label]").await,
        "host=db-*"
    );
    assert!(!text_of(c, "#results").await.contains("web-3"));
    c.goto(&format!(
        "{}/incidents?who=all&label=host%3D%2F%5Eweb-%5B0-9%5D%2B%24%2F",
        t.base
    ))
    .await
    .unwrap();
    until("the regex filter", || async {
        let r = text_of(c, "#results").await;
        r.contains("CPU high on web-3") && !r.contains("db-7")
    })
    .await;
    // A regex that does not compile: the API's message, naming the label.
    c.goto(&format!(
        "{}/incidents?who=all&label=host%3D%2F(%2F",
        t.base
    ))
    .await
    .unwrap();
    let r = text_of(c, "#results").await;
    assert!(r.contains("labels.host"), "{r}");
    assert_eq!(
        incidents_found(&t, json!({"labels": {"host": ["db-*", "/^web-/"]}}))
            .await
            .len(),
        2
    );

    println!(
        "console screenshots written to {}",
        screenshot_dir().display()
    );
    browser.stop().await;
    t.stop().await;
}

/// The rule pages need a session, their saves and actions the CSRF token (without it nothing
/// changes); a refused save answers the form with the API's message beside the field; delete
/// removes the rule and sends the browser back to the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_rule_pages_need_a_session_and_saves_the_csrf_token() {
    let mut t = TestServer::start("").await;
    let (_, channels) = t.api("/channel/list", json!({})).await;
    let cid = channels["data"]["items"][0]["channel_id"].as_i64().unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .get(format!("{}/channels/{cid}/inhibit-rules", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        format!("/signin?next=%2Fchannels%2F{cid}%2Finhibit-rules")
    );
    let (cookie, csrf) = sign_in(&t).await;
    let post = |path: String, form: Vec<(&'static str, &'static str)>, token: Option<&str>| {
        let mut req = t
            .http
            .post(format!("{}{path}", t.base))
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(token) = token {
            req = req.header("x-klaxon-csrf", token);
        }
        req.send()
    };
    let form = vec![
        ("rule_name", "Weekend"),
        ("window", "weekly"),
        ("w0_start", "00:00"),
        ("w0_end", "00:00"),
        ("w0_day", "6"),
        ("w0_day", "0"),
    ];
    let path = format!("/channels/{cid}/silence-rules");
    let resp = post(path.clone(), form.clone(), None).await.unwrap();
    assert_eq!(resp.status(), 403);
    let (_, listed) = t
        .api("/channel/silence/rule/list", json!({"channel_id": cid}))
        .await;
    assert_eq!(listed["data"]["total"], 0);

    // spec: ING-133 — a weekday out of 0–6 is the API's refusal, beside the window's days.
    let resp = post(
        path.clone(),
        vec![
            ("rule_name", "Weekend"),
            ("window", "weekly"),
            ("w0_start", "00:00"),
            ("w0_end", "00:00"),
            ("w0_day", "9"),
        ],
        Some(&csrf),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"w0_days-error\""), "{html}");
    assert!(html.contains("time_filters[0].repeat"), "{html}");
    let (_, listed) = t
        .api("/channel/silence/rule/list", json!({"channel_id": cid}))
        .await;
    assert_eq!(listed["data"]["total"], 0);

    let resp = post(path.clone(), form, Some(&csrf)).await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["hx-redirect"], path);
    let (_, listed) = t
        .api("/channel/silence/rule/list", json!({"channel_id": cid}))
        .await;
    let rule = listed["data"]["items"][0].clone();
    assert_eq!(
        rule["time_filters"],
        json!([{"start": "00:00", "end": "00:00", "repeat": [6, 0], "is_off": false}])
    );
    let rid = rule["rule_id"].as_str().unwrap().to_string();
    let (status, page) = get_page(&t, &cookie, &path).await;
    assert_eq!(status, 200);
    assert!(page.contains("Sat, Sun 00:00–00:00"), "{page}");

    // An unknown action changes nothing; delete without the token neither; with it, gone.
    let resp = post(format!("{path}/{rid}/purge"), vec![], Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = post(format!("{path}/{rid}/delete"), vec![], None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = post(format!("{path}/{rid}/delete"), vec![], Some(&csrf))
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (_, listed) = t
        .api("/channel/silence/rule/list", json!({"channel_id": cid}))
        .await;
    assert_eq!(listed["data"]["total"], 0);
    // A rule that is not there: the API's message for the page's message region.
    let resp = post(format!("{path}/{rid}/enable"), vec![], Some(&csrf))
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(resp.text().await.unwrap().contains("not found"));
    t.stop().await;
}

/// Selects `value` in the `<select>` with id `id` by script (like a person picking it).
async fn select_value(c: &Client, id: &str, value: &str) {
    set_value(c, id, value).await;
}

/// A schedule's page: the timeline of each layer and the final on-call, the layer editor
/// (a bad value is refused next to its field with everything typed kept; a layer is edited
/// and one added), an override added by form that changes the final row, the month calendar
/// with its previous/next links, and the calendar-feed link with its copy button.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_timeline_month_layers_and_overrides_in_the_browser() {
    schedule_pages_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        schedule_pages_in_the_browser(&url).await;
    }
}

async fn schedule_pages_in_the_browser(database_url: &str) {
    let (mut t, clock) = clocked_server(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    let now = clock.0.load(std::sync::atomic::Ordering::SeqCst) / 1000;
    let owner = t.server.as_ref().unwrap().bootstrap().owner_member_id;
    let mut ids = Vec::new();
    for (email, name) in [
        ("bo@example.com", "Bo Berg"),
        ("cy@example.com", "Cy Chan"),
        ("dee@example.com", "Dee Diaz"),
    ] {
        let (status, body) = t
            .api(
                "/member/invite",
                json!({"members": [{"email": email, "member_name": name}]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["data"]["items"][0]["member_id"].as_i64().unwrap());
    }
    let (bo, cy, dee) = (ids[0], ids[1], ids[2]);
    // A weekly rotation of the owner and Bo that began a day ago, in UTC.
    let (status, body) = t
        .api(
            "/schedule/create",
            json!({
                "schedule_name": "Payments",
                "time_zone": "UTC",
                "layers": [{
                    "layer_name": "Primary",
                    "groups": [{"members": [{"person_id": owner}]},
                               {"members": [{"person_id": bo}]}],
                    "layer_start": now - 86_400,
                    "rotation_unit": "week",
                    "rotation_value": 1,
                }],
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sid = body["data"]["schedule_id"].as_i64().unwrap();
    browser_sign_in(&t, c).await;

    // spec: RSP-227 — the timeline: one row per layer, then the final on-call.
    c.goto(&format!("{}/schedules/{sid}", t.base))
        .await
        .unwrap();
    until("the schedule page", || async {
        text_of(c, "h1").await == "Payments"
    })
    .await;
    let layer_rows = c
        .find_all(Locator::Css("#timeline .tl-row:not(.tl-scale)"))
        .await
        .unwrap()
        .len();
    assert_eq!(layer_rows, 2, "one layer and the final row");
    let final_row = text_of(c, "#timeline-final").await;
    assert!(final_row.contains("Bo Berg"), "{final_row}");
    assert!(!final_row.contains("Dee Diaz"), "{final_row}");
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every schedule input has a label"
    );
    click(c, "a[href$='?days=7']").await;
    until("the 7-day timeline", || async {
        text_of(c, "#timeline-h").await.contains("7 days")
    })
    .await;
    assert_eq!(
        c.find_all(Locator::Css("#timeline .tl-scale .tl-tick"))
            .await
            .unwrap()
            .len(),
        7
    );

    // spec: RSP-228 — the layer editor: a turn of 0 weeks is refused beside its field, with
    // the edited name and the new layer's values kept.
    click(c, "#edit-layers").await;
    until("the layer editor", || async {
        text_of(c, "h1").await == "Layers of Payments"
    })
    .await;
    assert_eq!(
        unlabelled_inputs(c).await,
        0,
        "every editor input has a label"
    );
    type_into(c, "#l0_name", "Primary week").await;
    type_into(c, "#l0_rotation_value", "0").await;
    type_into(c, "#l1_name", "Backup").await;
    select_value(c, "l1_t0_person", &cy.to_string()).await;
    set_value(c, "l1_handoff", "00:00").await;
    click(c, "#layers-form button[type=submit]").await;
    until("the rotation error", || async {
        text_of(c, "#l0_rotation_value-error")
            .await
            .contains("rotation_value")
    })
    .await;
    assert_eq!(value_of(c, "#l0_rotation_value").await, "0");
    assert_eq!(value_of(c, "#l0_name").await, "Primary week");
    assert_eq!(value_of(c, "#l1_name").await, "Backup");
    assert_eq!(value_of(c, "#l1_t0_person").await, cy.to_string());
    assert_eq!(
        attr_of(c, "#l0_rotation_value", "aria-describedby")
            .await
            .as_deref(),
        Some("l0_rotation_value-error")
    );
    shoot(c, "schedule-layers-error").await;
    type_into(c, "#l0_rotation_value", "2").await;
    click(c, "#layers-form button[type=submit]").await;
    until("the schedule page again", || async {
        text_of(c, "h1").await == "Payments"
    })
    .await;
    let (_, info) = t
        .api(
            "/schedule/info",
            json!({"schedule_id": sid, "start": now, "end": now + 3600}),
        )
        .await;
    let layers: Vec<&Value> = info["data"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mode"] == 0)
        .collect();
    assert_eq!(layers.len(), 2, "{info}");
    assert_eq!(layers[0]["layer_name"], "Primary week");
    assert_eq!(layers[0]["rotation_value"], 2);
    assert_eq!(layers[1]["layer_name"], "Backup");
    assert_eq!(layers[1]["groups"][0]["members"][0]["person_id"], cy);
    let rows = c
        .find_all(Locator::Css("#timeline .tl-row:not(.tl-scale)"))
        .await
        .unwrap()
        .len();
    assert_eq!(rows, 3, "two layers and the final row");
    assert!(text_of(c, "#timeline-final").await.contains("Cy Chan"));

    // spec: RSP-212 — an override by form. Without a person it is refused beside the field,
    // with the note kept; with Dee from now on, Dee alone is on call in the final row.
    type_into(c, "#ov_note", "covering").await;
    click(c, "#override-form button[type=submit]").await;
    until("the person error", || async {
        !text_of(c, "#ov_person-error").await.is_empty()
    })
    .await;
    assert_eq!(value_of(c, "#ov_note").await, "covering");
    let start = jiff::Timestamp::from_second(now - 3600)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M")
        .to_string();
    let end = jiff::Timestamp::from_second(now + 2 * 86_400)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M")
        .to_string();
    select_value(c, "ov_person", &dee.to_string()).await;
    set_value(c, "ov_start", &start).await;
    set_value(c, "ov_end", &end).await;
    click(c, "#override-form button[type=submit]").await;
    until("the override on the timeline", || async {
        text_of(c, "#timeline-final").await.contains("Dee Diaz")
    })
    .await;
    assert!(text_of(c, "#on-call-now").await.contains("Dee Diaz"));
    assert!(text_of(c, "#override-list").await.contains("covering"));
    shoot(c, "schedule-timeline").await;

    // The calendar-feed link, issued on demand, with a copy button; it serves the feed.
    accept_confirms(c).await;
    click(c, "#feed-button").await;
    until("the feed link", || async { exists(c, "#feed-url").await }).await;
    let feed = value_of(c, "#feed-url").await;
    assert!(
        feed.contains("/calendar/schedule/") && feed.ends_with(".ics"),
        "{feed}"
    );
    let ics = t.http.get(&feed).send().await.unwrap();
    assert_eq!(ics.status().as_u16(), 200);
    assert!(ics.text().await.unwrap().contains("BEGIN:VCALENDAR"));
    click(c, "button[data-copy=feed-url]").await;
    until("the copy confirmation", || async {
        text_of(c, "#copy-status").await.contains("Copied")
    })
    .await;

    // The month calendar: a cell per day with today's final on-call, and the next month.
    click(c, "#month-link").await;
    until("the month view", || async { exists(c, "#month").await }).await;
    let today = jiff::Timestamp::from_second(now)
        .unwrap()
        .strftime("%Y-%m-%d")
        .to_string();
    let cell = text_of(c, &format!("#day-{today}")).await;
    assert!(cell.contains("Dee Diaz"), "{cell}");
    let days_in_month = jiff::civil::Date::strptime("%Y-%m-%d", &today)
        .unwrap()
        .days_in_month();
    assert_eq!(
        c.find_all(Locator::Css("#month .month-day"))
            .await
            .unwrap()
            .len(),
        usize::try_from(days_in_month).unwrap()
    );
    shoot(c, "schedule-month").await;
    let month_title = text_of(c, "h1").await;
    click(c, "#next-month").await;
    until("the next month", || async {
        let h = text_of(c, "h1").await;
        !h.is_empty() && h != month_title
    })
    .await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("view=month")
    );
    // A month that is not one is refused plainly.
    c.goto(&format!(
        "{}/schedules/{sid}?view=month&month=2026-13",
        t.base
    ))
    .await
    .unwrap();
    until("the month error", || async {
        text_of(c, "main").await.contains("is not a month")
    })
    .await;

    // spec: RSP-225 — the running override can only be ended early; then the layers apply.
    c.goto(&format!("{}/schedules/{sid}", t.base))
        .await
        .unwrap();
    until("the schedule page", || async {
        text_of(c, "h1").await == "Payments"
    })
    .await;
    // A minute later (the clock is the test's), the override has begun.
    clock
        .0
        .fetch_add(60_000, std::sync::atomic::Ordering::SeqCst);
    accept_confirms(c).await;
    click(c, "#override-list button[hx-post$='/end']").await;
    until("the override ended", || async {
        let now_on = text_of(c, "#on-call-now").await;
        !now_on.is_empty() && !now_on.contains("Dee Diaz")
    })
    .await;
    let (_, info) = t
        .api(
            "/schedule/info",
            json!({"schedule_id": sid, "start": now, "end": now + 3600}),
        )
        .await;
    assert_eq!(info["data"]["overrides"][0]["end"], now + 60);
    browser.stop().await;
    t.stop().await;
}

/// The group view of the incident list: the current filters' matches counted by severity,
/// then by a label (a label choice without a key is refused beside the key, with the choice
/// kept), each group linking to the list narrowed to it.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_list_is_grouped_in_the_browser() {
    incident_groups_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        incident_groups_in_the_browser(&url).await;
    }
}

/// The text of an element with its white space (cell separators) made single spaces.
async fn words_of(c: &Client, css: &str) -> String {
    text_of(c, css)
        .await
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

async fn incident_groups_in_the_browser(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    for (sev, host, key) in [
        ("Critical", "db-1", "a"),
        ("Critical", "db-2", "b"),
        ("Warning", "db-1", "c"),
    ] {
        let (status, body) = t
            .push(
                json!({"event_status": sev, "title_rule": format!("Disk full {key}"),
                         "alert_key": key, "labels": {"host": host}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    t.drained().await;
    assert_eq!(t.incidents().await.len(), 3);

    c.goto(&format!("{}/incidents?who=all&range=24h", t.base))
        .await
        .unwrap();
    until("the list", || async {
        text_of(c, "#results").await.contains("Disk full c")
    })
    .await;
    click(c, "#group-view").await;
    until("the group view", || async {
        c.current_url().await.unwrap().path() == "/incidents/groups"
    })
    .await;
    // spec: RSP-505 — by severity (the default), largest group first, with counts.
    let groups = text_of(c, "#groups").await;
    assert!(groups.contains("3 matching incidents"), "{groups}");
    assert_eq!(words_of(c, "tr.group:nth-child(1)").await, "Critical 2");
    assert_eq!(words_of(c, "tr.group:nth-child(2)").await, "Warning 1");
    assert_eq!(unlabelled_inputs(c).await, 0);
    shoot(c, "incident-groups-severity").await;

    // A label without its key is refused beside the key; the choice stays.
    select_value(c, "group", "label").await;
    click(c, "#group-form button[type=submit]").await;
    until("the error beside the label key", || async {
        exists(c, "#group_label-error").await
    })
    .await;
    assert!(
        text_of(c, "#group_label-error")
            .await
            .contains("group_label")
    );
    assert_eq!(
        attr_of(c, "#group_label", "aria-describedby")
            .await
            .as_deref(),
        Some("group_label-error")
    );
    assert_eq!(value_of(c, "#group").await, "label");
    shoot(c, "incident-groups-error").await;

    // By the label `host`; the filters of the list are kept in the page's address.
    type_into(c, "#group_label", "host").await;
    click(c, "#group-form button[type=submit]").await;
    until("the label groups", || async {
        text_of(c, "#groups-h").await == "Label host"
    })
    .await;
    assert_eq!(words_of(c, "tr.group:nth-child(1)").await, "db-1 2");
    assert_eq!(words_of(c, "tr.group:nth-child(2)").await, "db-2 1");
    let query = c
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .to_string();
    assert!(query.contains("range=24h"), "{query}");
    shoot(c, "incident-groups").await;

    // A group links to the list narrowed to it (its label), other filters kept.
    click(c, "tr.group:nth-child(1) a").await;
    until("the narrowed list", || async {
        c.current_url().await.unwrap().path() == "/incidents"
    })
    .await;
    let query = c
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or("")
        .to_string();
    assert!(query.contains("label=host%3Ddb-1"), "{query}");
    assert!(query.contains("range=24h"), "{query}");
    until("two incidents", || async {
        text_of(c, "#results .count")
            .await
            .starts_with("2 incidents")
    })
    .await;
    let results = text_of(c, "#results").await;
    assert!(results.contains("Disk full a") && results.contains("Disk full c"));
    assert!(!results.contains("Disk full b"), "{results}");
    browser.stop().await;
    t.stop().await;
}

/// A channel's drop rules through their pages: a rule without conditions is refused beside
/// its condition rows with what was typed kept and nothing saved; "Add condition rows" adds
/// rows; the rule is created, discards a matching event, is disabled, edited (a priority that
/// is no number is refused beside it) and deleted.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_rules_in_the_browser() {
    drop_rules_pages_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        drop_rules_pages_in_the_browser(&url).await;
    }
}

async fn drop_rules_pages_in_the_browser(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    let (_, channels) = t.api("/channel/list", json!({})).await;
    let cid = channels["data"]["items"][0]["channel_id"].as_i64().unwrap();

    c.goto(&format!("{}/channels", t.base)).await.unwrap();
    click(c, &format!("#drop-link-{cid}")).await;
    until("the drop rules page", || async {
        c.current_url().await.unwrap().path() == format!("/channels/{cid}/drop-rules")
    })
    .await;
    assert!(text_of(c, "main").await.contains("No drop rules"));
    click(c, "#new-rule").await;
    until("the drop rule form", || async {
        exists(c, "#noise-form").await
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0);
    // A drop rule always discards: no behaviour, no window.
    assert!(!exists(c, "#noise-form input[name=behaviour]").await);
    assert!(!exists(c, "#start_time").await);

    // spec: ING-101 — a drop rule needs a condition: refused beside the rows, typed text kept.
    type_into(c, "#rule_name", "Test environments").await;
    type_into(c, "#description", "Nobody is paged for env=test").await;
    click(c, "#noise-form button[type=submit]").await;
    until("the error beside the conditions", || async {
        exists(c, "#c_rows-error").await
    })
    .await;
    assert!(
        text_of(c, "#c_rows-error").await.contains("filters"),
        "{}",
        text_of(c, "#c_rows-error").await
    );
    assert_eq!(
        attr_of(c, "#c-rows", "aria-describedby").await.as_deref(),
        Some("c_rows-error")
    );
    assert_eq!(value_of(c, "#rule_name").await, "Test environments");
    assert_eq!(
        value_of(c, "#description").await,
        "Nobody is paged for env=test"
    );
    shoot(c, "drop-rule-error").await;
    let (_, listed) = t
        .api("/channel/unsubscribe/rule/list", json!({"channel_id": cid}))
        .await;
    assert_eq!(listed["data"]["total"], 0, "{listed}");

    // "Add condition rows" adds empty rows and keeps the typed ones; nothing is saved.
    type_into(c, "#c0_key", "labels.env").await;
    type_into(c, "#c0_vals", "test").await;
    assert!(!exists(c, "#c5_key").await);
    click(c, "#c-rows button.add-rows").await;
    until("more condition rows", || async {
        exists(c, "#c5_key").await
    })
    .await;
    assert_eq!(value_of(c, "#c0_vals").await, "test");
    click(c, "#noise-form button[type=submit]").await;
    until("the drop rule list", || async {
        exists(c, "#noise-rules").await
    })
    .await;
    let list = text_of(c, "#noise-rules").await;
    assert!(list.contains("Test environments"), "{list}");
    assert!(list.contains("enabled"), "{list}");
    assert!(list.contains("labels.env == test"), "{list}");
    let (_, listed) = t
        .api("/channel/unsubscribe/rule/list", json!({"channel_id": cid}))
        .await;
    let rule = listed["data"]["items"][0].clone();
    assert_eq!(
        rule["filters"],
        json!([[{"key": "labels.env", "oper": "IN", "vals": ["test"]}]])
    );
    assert_eq!(unlabelled_inputs(c).await, 0);
    shoot(c, "drop-rules").await;

    // The rule made in the console discards a matching event (ING-101), not another one.
    for (env, title) in [("test", "Dropped event"), ("prod", "Kept event")] {
        let (status, body) = t
            .push(json!({"event_status": "Warning", "title_rule": title,
                         "alert_key": env, "labels": {"env": env}}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    t.drained().await;
    let titles: Vec<String> = t
        .incidents()
        .await
        .iter()
        .map(|i| i["title"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(titles, vec!["Kept event".to_string()]);

    // Disable from the list.
    let rid = rule["rule_id"].as_str().unwrap().to_string();
    click(c, &format!("#rule-{rid} button.disable")).await;
    until("the rule disabled", || async {
        exists(c, &format!("#rule-{rid} button.enable")).await
    })
    .await;
    let (_, info) = t
        .api(
            "/channel/unsubscribe/rule/info",
            json!({"channel_id": cid, "rule_id": rid}),
        )
        .await;
    assert_eq!(info["data"]["status"], "disabled", "{info}");

    // Edit: a priority that is no number is refused beside it; corrected, it is saved.
    click(c, &format!("#rule-{rid} h2 a")).await;
    until("the editor", || async { exists(c, "#noise-form").await }).await;
    assert_eq!(value_of(c, "#c0_key").await, "labels.env");
    type_into(c, "#priority", "first").await;
    click(c, "#noise-form button[type=submit]").await;
    until("the error beside the priority", || async {
        exists(c, "#priority-error").await
    })
    .await;
    assert_eq!(value_of(c, "#priority").await, "first");
    type_into(c, "#priority", "5").await;
    type_into(c, "#c0_vals", "test\nstaging").await;
    click(c, "#noise-form button[type=submit]").await;
    until("the list again", || async {
        exists(c, "#noise-rules").await
    })
    .await;
    let (_, info) = t
        .api(
            "/channel/unsubscribe/rule/info",
            json!({"channel_id": cid, "rule_id": rid}),
        )
        .await;
    assert_eq!(info["data"]["priority"], 5, "{info}");
    assert_eq!(
        info["data"]["filters"][0][0]["vals"],
        json!(["test", "staging"])
    );

    // Delete, after the confirmation.
    accept_confirms(c).await;
    click(c, &format!("#rule-{rid} button.delete")).await;
    until("the rule gone", || async {
        text_of(c, "main").await.contains("No drop rules")
    })
    .await;
    let (_, listed) = t
        .api("/channel/unsubscribe/rule/list", json!({"channel_id": cid}))
        .await;
    assert_eq!(listed["data"]["total"], 0, "{listed}");
    browser.stop().await;
    t.stop().await;
}

/// Editing the rules of a shared integration's routes: a rule's conditions and channels are
/// edited (a bad regex is refused beside its row with what was typed kept and nothing saved),
/// a rule is moved up and another deleted, each a new version of the history; a change based
/// on a version someone else replaced meanwhile is refused and changes nothing.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_rules_are_edited_in_the_browser() {
    route_edit_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        route_edit_in_the_browser(&url).await;
    }
}

async fn route_edit_in_the_browser(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    browser_sign_in(&t, c).await;
    let mut ids = Vec::new();
    for name in ["Databases", "Web"] {
        let (status, body) = t
            .api("/channel/create", json!({"channel_name": name}))
            .await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["data"]["channel_id"].as_i64().unwrap());
    }
    let (db, web) = (ids[0], ids[1]);
    let (status, body) = t
        .api(
            "/integration/create",
            json!({"integration_name": "Prometheus (all teams)", "type": "prometheus",
                   "kind": "shared", "default_channel_ids": [web]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let iid = body["data"]["integration_id"].as_i64().unwrap();
    let (status, body) = t
        .api(
            "/route/upsert",
            json!({"integration_id": iid, "version": 1,
                   "cases": [
                     {"if": [{"key": "labels.team", "oper": "IN", "vals": ["db", "pg"]}],
                      "channel_ids": [db], "fallthrough": true, "name": "Database team"},
                     {"if": [{"key": "severity", "oper": "NOTIN", "vals": ["Info"]}],
                      "channel_ids": [web]}],
                   "default": {"channel_ids": [db]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    let db_rule_id = info["data"]["cases"][0]["id"].clone();

    c.goto(&format!("{}/integrations/{iid}/routing", t.base))
        .await
        .unwrap();
    click(c, "#route-rule-1 a.edit").await;
    until("the rule editor", || async {
        exists(c, "#edit-rule").await
    })
    .await;
    assert_eq!(value_of(c, "#name").await, "Database team");
    assert_eq!(value_of(c, "#c0_key").await, "labels.team");
    assert_eq!(value_of(c, "#c0_vals").await, "db\npg");
    assert_eq!(unlabelled_inputs(c).await, 0);
    shoot(c, "route-rule-edit").await;

    // spec: ING-096, §4.5 — a regex that does not compile is refused beside its row; what was
    // typed stays and nothing is saved.
    type_into(c, "#c1_key", "labels.host").await;
    type_into(c, "#c1_vals", "/(db/").await;
    click(c, &format!("#rule-channels input[value='{web}']")).await;
    click(c, "#edit-rule button[type=submit]").await;
    until("the error beside the values", || async {
        exists(c, "#c1_vals-error").await
    })
    .await;
    assert!(
        text_of(c, "#c1_vals-error")
            .await
            .contains("cases[0].if[1].vals[0]"),
        "{}",
        text_of(c, "#c1_vals-error").await
    );
    assert_eq!(value_of(c, "#c1_vals").await, "/(db/");
    assert!(
        c.find(Locator::Css(&format!(
            "#rule-channels input[value='{web}']"
        )))
        .await
        .unwrap()
        .is_selected()
        .await
        .unwrap()
    );
    shoot(c, "route-rule-edit-error").await;
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["version"], 2);

    // Corrected: version 3, the rule keeps its id and place (ING-095).
    type_into(c, "#c1_vals", "/^db-/").await;
    click(c, "#edit-rule button[type=submit]").await;
    until("version 3", || async {
        text_of(c, "#current-version").await == "version 3"
    })
    .await;
    let rules = text_of(c, "#route-rules").await;
    assert!(
        rules.contains("When labels.team is db or pg and labels.host is /^db-/"),
        "{rules}"
    );
    // The channels in the order the form lists them.
    assert!(
        rules.contains("→ Databases, Web continue") || rules.contains("→ Web, Databases continue"),
        "{rules}"
    );
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    let cases = info["data"]["cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0]["id"], db_rule_id);
    let mut chosen: Vec<i64> = cases[0]["channel_ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    chosen.sort_unstable();
    assert_eq!(chosen, vec![db.min(web), db.max(web)]);
    assert_eq!(cases[0]["if"][1]["vals"], json!(["/^db-/"]));
    assert_eq!(info["data"]["default"]["channel_ids"], json!([db]));

    // Move the second rule up: version 4.
    click(c, "#route-rule-2 button.up").await;
    until("version 4", || async {
        text_of(c, "#current-version").await == "version 4"
    })
    .await;
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["cases"][0]["if"][0]["key"], "severity");
    assert_eq!(info["data"]["cases"][1]["id"], db_rule_id);
    assert!(!exists(c, "#route-rule-1 button.up").await);
    assert!(!exists(c, "#route-rule-2 button.down").await);

    // Delete the first rule (after the confirmation): version 5.
    accept_confirms(c).await;
    click(c, "#route-rule-1 button.delete").await;
    until("version 5", || async {
        text_of(c, "#current-version").await == "version 5"
    })
    .await;
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    let cases = info["data"]["cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["name"], "Database team");
    // Every change is a version of the history, so it can be compared and rolled back.
    let history = text_of(c, ".route-history").await;
    assert!(
        history.contains("Version 5") && history.contains("Version 3"),
        "{history}"
    );
    shoot(c, "routing-edited").await;

    // spec: ING-095 — someone saves version 6 while the page shows version 5: a delete based
    // on version 5 is refused with a clear message and nothing changes.
    let (status, body) = t
        .api(
            "/route/upsert",
            json!({"integration_id": iid, "version": 5, "cases": cases,
                   "default": {"channel_ids": [web]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    accept_confirms(c).await;
    click(c, "#route-rule-1 button.delete").await;
    until("the conflict message", || async {
        text_of(c, "#rule-message")
            .await
            .contains("changed by someone else")
    })
    .await;
    let (_, info) = t.api("/route/info", json!({"integration_id": iid})).await;
    assert_eq!(info["data"]["version"], 6);
    assert_eq!(info["data"]["cases"].as_array().unwrap().len(), 1);
    shoot(c, "routing-edit-conflict").await;
    browser.stop().await;
    t.stop().await;
}

async fn progress_of(t: &TestServer, id: &str) -> String {
    let (_, body) = t.api("/incident/info", json!({"incident_id": id})).await;
    body["data"]["progress"].as_str().unwrap().to_string()
}

/// The acknowledge link of a notification (`detail_url?ack=1`) acknowledges as the viewer once
/// the page is shown, reports it, and on a Closed incident only shows a notice.
async fn the_ack_link(database_url: &str) {
    // spec: RSP-316
    let t = TestServer::start(database_url).await;
    let (cookie, csrf) = sign_in(&t).await;
    let (status, body) = t
        .api(
            "/incident/create",
            json!({"title": "From the e-mail", "incident_severity": "Critical"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["data"]["incident_id"].as_str().unwrap().to_string();

    // Signed out, the link goes through sign-in and comes back to itself.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .get(format!("{}/incident/detail/{id}?ack=1", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("/signin?next=") && location.contains("ack%3D1"),
        "{location}"
    );

    // The page posts the acknowledgement on load; fetching the link alone changes nothing
    // (a mail scanner runs no script).
    let (status, html) = get_page(&t, &cookie, &format!("/incident/detail/{id}?ack=1")).await;
    assert_eq!(status, 200);
    let post = format!("hx-post=\"/incident/detail/{id}/ack\" hx-trigger=\"load\"");
    assert!(html.contains(&post), "{html}");
    assert!(html.contains("Acknowledging this incident as you"));
    assert_eq!(progress_of(&t, &id).await, "Triggered");
    // Without `?ack=1` nothing is posted.
    let (_, plain) = get_page(&t, &cookie, &format!("/incident/detail/{id}")).await;
    assert!(!plain.contains("hx-trigger=\"load\""));

    // What the page posts: the console's acknowledge, as the signed-in member.
    let resp = t
        .http
        .post(format!("{}/incident/detail/{id}/ack", t.base))
        .header("cookie", &cookie)
        .header("x-klaxon-csrf", &csrf)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(progress_of(&t, &id).await, "Processing");
    let (_, feed) = t
        .api(
            "/incident/feed",
            json!({"incident_id": id, "types": ["i_ack"]}),
        )
        .await;
    let acks = feed["data"]["items"].as_array().unwrap().clone();
    assert_eq!(acks.len(), 1, "{feed}");
    let owner = t.server.as_ref().unwrap().bootstrap().owner_member_id;
    assert_eq!(acks[0]["creator_id"], owner, "{feed}");
    assert_eq!(acks[0]["detail"]["from"], "console", "{feed}");

    // Opened again by the same member: already acknowledged, nothing is posted.
    let (_, html) = get_page(&t, &cookie, &format!("/incident/detail/{id}?ack=1")).await;
    assert!(!html.contains("hx-trigger=\"load\""), "{html}");

    // Closed: only a notice.
    let (status, body) = t
        .api("/incident/close", json!({"incident_ids": [id]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, html) = get_page(&t, &cookie, &format!("/incident/detail/{id}?ack=1")).await;
    assert!(html.contains("id=\"ack-closed\""), "{html}");
    assert!(html.contains("This incident is closed"));
    assert!(!html.contains("hx-trigger=\"load\""));
    assert_eq!(progress_of(&t, &id).await, "Closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ack_link_acknowledges_as_the_viewer() {
    the_ack_link("").await;
    if let Some(url) = common::fresh_postgres().await {
        the_ack_link(&url).await;
    }
}
