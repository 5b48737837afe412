//! The web console (docs/console.md): end to end in a real headless Chromium driven over
//! WebDriver (chromedriver), plus server-rendered pages checked over plain HTTP.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver` (/usr/bin/chromium,
//! /usr/bin/chromedriver). Without them it fails when `CI=true` and is skipped with a printed
//! reason otherwise. It writes screenshots of the main pages at desktop (1280 px) and phone
//! (375 px) widths into `$CARGO_TARGET_DIR/console-screenshots` and prints the path.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::TestServer;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium behind its own chromedriver, with a fresh profile.
struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` (after printing why) when Chromium is not installed and this is not CI.
    async fn start() -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            let why = format!(
                "{} not installed (apt-get install chromium chromium-driver)",
                missing.join(" and ")
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the console browser test cannot run in CI: {why}");
            }
            eprintln!("SKIPPED console browser test: {why}");
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{url}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--hide-scrollbars".to_string(),
            "--window-size=1280,900".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_string(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a WebDriver session");
        Some(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// Where the screenshots go: `$CARGO_TARGET_DIR/console-screenshots`, else the workspace's
/// `target/console-screenshots`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshots of the current page at desktop and phone widths.
async fn shoot(c: &Client, name: &str) {
    let dir = screenshot_dir();
    for (label, width, height) in [("desktop", 1280, 900), ("phone", 375, 812)] {
        c.set_window_size(width, height).await.unwrap();
        // Let the layout settle at the new width.
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The page must fit the width: nothing wider than the viewport (no sideways scroll).
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{name} is wider than {width} px by {overflow}"
        );
        // The whole page, not just the first screen: grow the window to the page's height.
        let full = c
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0)
            .min(4000) as u32;
        let chrome = c
            .execute("return window.outerHeight - window.innerHeight", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0) as u32;
        if full > height - chrome {
            c.set_window_size(width, full + chrome).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let png = c.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
    }
    c.set_window_size(1280, 900).await.unwrap();
}

/// Waits (polling, no page reload) until `check` holds.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn value_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// How many visible form controls of the page have neither a `<label>` nor an `aria-label`.
async fn unlabelled_inputs(c: &Client) -> i64 {
    c.execute(
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')] \
         .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).length",
        vec![],
    )
    .await
    .unwrap()
    .as_i64()
    .unwrap()
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

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

    // An empty comment is refused next to the field; a real one lands in the timeline.
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

/// Signs in through the form with the first-start owner credentials.
async fn browser_sign_in(t: &TestServer, c: &Client) {
    let server = t.server.as_ref().unwrap();
    let email = server.bootstrap().owner_email.clone();
    let password = server.owner_password().unwrap().to_string();
    c.goto(&format!("{}/signin", t.base)).await.unwrap();
    type_into(c, "#email", &email).await;
    type_into(c, "#password", &password).await;
    click(c, "form button[type=submit]").await;
    until("the incident list", || async {
        c.current_url().await.unwrap().path() == "/incidents"
    })
    .await;
}

/// Sets a form control's value by script (date and time inputs take keys by locale).
async fn set_value(c: &Client, id: &str, value: &str) {
    c.execute(
        "document.getElementById(arguments[0]).value = arguments[1]; return true",
        vec![json!(id), json!(value)],
    )
    .await
    .unwrap();
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

/// A signed-in HTTP client (reqwest keeps no cookies itself here): the session cookie and
/// its CSRF token.
async fn sign_in(t: &TestServer) -> (String, String) {
    let server = t.server.as_ref().unwrap();
    let form = [
        ("email", server.bootstrap().owner_email.clone()),
        ("password", server.owner_password().unwrap().to_string()),
    ];
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/signin", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("klaxon_csrf="))
        .unwrap()
        .to_string();
    (cookies.join("; "), csrf)
}

async fn get_page(t: &TestServer, cookie: &str, path: &str) -> (u16, String) {
    let resp = t
        .http
        .get(format!("{}{path}", t.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
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
