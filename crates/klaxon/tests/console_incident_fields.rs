//! The incident detail's custom fields and alert events in a real headless Chromium
//! (docs/console.md): a select, a checkbox and a text field set from their forms (a refused
//! value shown beside its field, with what was typed kept), and an alert's events shown when
//! its "Events" disclosure is opened. Screenshots at 1280 and 375 px go to
//! `$CARGO_TARGET_DIR/console-screenshots/`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::browser;

use browser::{
    Browser, browser_sign_in, choose, click, clocked_server, mark, redrawn, shoot, text_of, until,
    value_of,
};
use fantoccini::Locator;
use serde_json::{Value, json};

use common::TestServer;

async fn field(t: &TestServer, body: Value) {
    let (status, b) = t.api("/field/create", body).await;
    assert_eq!(status, 200, "{b}");
    assert!(b.get("error").is_none(), "{b}");
}

async fn info(t: &TestServer, id: &str) -> Value {
    let (_, b) = t.api("/incident/info", json!({"incident_id": id})).await;
    b["data"].clone()
}

/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_fields_and_alert_events_on_the_incident_page() {
    fields_and_events("").await;
    if let Some(url) = common::fresh_postgres().await {
        fields_and_events(&url).await;
    }
}

async fn fields_and_events(database_url: &str) {
    let (mut t, clock) = clocked_server(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    field(
        &t,
        json!({"field_name": "env", "display_name": "Environment",
               "field_type": "single_select", "options": ["prod", "staging"]}),
    )
    .await;
    field(
        &t,
        json!({"field_name": "customer_facing", "display_name": "Customer facing",
               "field_type": "checkbox"}),
    )
    .await;
    field(
        &t,
        json!({"field_name": "ticket", "display_name": "Ticket", "field_type": "text"}),
    )
    .await;
    // Two events of one alert, a minute apart.
    for (status, text) in [("Warning", "disk at 91%"), ("Critical", "disk at 97%")] {
        clock
            .0
            .fetch_add(60_000, std::sync::atomic::Ordering::SeqCst);
        let (s, b) = t
            .push(json!({"event_status": status, "alert_key": "disk-db-1",
                         "title_rule": "Disk filling on db-1", "description": text,
                         "labels": {"host": "db-1"}}))
            .await;
        assert_eq!(s, 200, "{b}");
    }
    t.drained().await;
    let incidents = t.incidents().await;
    let id = incidents[0]["incident_id"].as_str().unwrap().to_string();

    browser_sign_in(&t, c).await;
    c.goto(&format!("{}/incident/detail/{id}", t.base))
        .await
        .unwrap();

    // spec: RSP-084 — a select field, set from its form.
    choose(c, "#field-env", "prod").await;
    click(c, "form.field-form:has(#field-env) button[type=submit]").await;
    until("the field saved", || async {
        info(&t, &id).await["fields"]["env"] == "prod"
    })
    .await;
    until("the page redrawn", || async {
        text_of(c, ".banner.ok").await.contains("Field saved")
    })
    .await;
    assert_eq!(value_of(c, "#field-env").await, "prod");

    // A checkbox field: Yes.
    mark(c, "field-ticket").await;
    choose(c, "#field-customer_facing", "true").await;
    click(
        c,
        "form.field-form:has(#field-customer_facing) button[type=submit]",
    )
    .await;
    until("the checkbox saved", || async {
        info(&t, &id).await["fields"]["customer_facing"] == true
    })
    .await;
    redrawn(c, "field-ticket").await;

    // A text value over 500 characters is refused beside its field, kept, and not saved.
    let long = "x".repeat(501);
    c.execute(
        "const e = document.getElementById('field-ticket'); e.removeAttribute('maxlength'); \
         e.value = arguments[0]; return true",
        vec![json!(long)],
    )
    .await
    .unwrap();
    click(c, "form.field-form:has(#field-ticket) button[type=submit]").await;
    until("the refusal beside the text field", || async {
        text_of(c, "#field-ticket-error").await.contains("500")
    })
    .await;
    assert_eq!(
        value_of(c, "#field-ticket").await,
        long,
        "what was typed is kept"
    );
    assert!(info(&t, &id).await["fields"].get("ticket").is_none());
    shoot(c, "incident-custom-fields").await;

    // Then a good one, and clearing the select removes its value.
    mark(c, "field-env").await;
    browser::type_into(c, "#field-ticket", "OPS-42").await;
    click(c, "form.field-form:has(#field-ticket) button[type=submit]").await;
    until("the text saved", || async {
        info(&t, &id).await["fields"]["ticket"] == "OPS-42"
    })
    .await;
    redrawn(c, "field-env").await;
    mark(c, "field-ticket").await;
    choose(c, "#field-env", "").await;
    click(c, "form.field-form:has(#field-env) button[type=submit]").await;
    until("the select cleared", || async {
        info(&t, &id).await["fields"].get("env").is_none()
    })
    .await;
    redrawn(c, "field-ticket").await;

    // The alert's events, newest first, when its disclosure opens.
    // The alerts have their own tab (RSP-508).
    click(c, "#tab-alerts").await;
    until("the alerts tab", || async {
        c.find(Locator::Css("#tab-panel.tab-alerts details.alert-events"))
            .await
            .is_ok()
    })
    .await;
    click(c, "details.alert-events summary").await;
    until("the events drawn", || async {
        c.find_all(Locator::Css("details.alert-events ol.events > li"))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
            == 2
    })
    .await;
    let events = text_of(c, "details.alert-events ol.events").await;
    let newest = events.find("disk at 97%").unwrap();
    let oldest = events.find("disk at 91%").unwrap();
    assert!(newest < oldest, "newest first: {events}");
    shoot(c, "incident-alert-events").await;

    browser.stop().await;
    t.stop().await;
}
