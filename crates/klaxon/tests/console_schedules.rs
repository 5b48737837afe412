//! The console's schedule tools in a real headless Chromium (docs/console.md): an override
//! made by dragging on a schedule's timeline (and by clicking a shift), the swap helper, and
//! the service calendar pages; bad input is refused next to its field with everything typed
//! kept. Screenshots of the pages at 1280 and 375 px go to
//! `$CARGO_TARGET_DIR/console-screenshots/`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::browser;

use browser::{
    Browser, accept_confirms, attr_of, browser_sign_in, click, clocked_server, exists, focus_ring,
    set_value, shoot, tab, text_of, type_into, unlabelled_inputs, until, value_of,
};
use common::{TestServer, get_page, sign_in};
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// `YYYY-MM-DDTHH:MM` in UTC, as a datetime-local input holds it.
fn local(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M")
        .to_string()
}

/// A datetime-local value read as UTC.
fn secs_of(local: &str) -> i64 {
    let dt: jiff::civil::DateTime = local.parse().unwrap();
    jiff::tz::TimeZone::UTC
        .to_ambiguous_timestamp(dt)
        .compatible()
        .unwrap()
        .as_second()
}

async fn invite(t: &TestServer, email: &str, name: &str) -> i64 {
    let (status, body) = t
        .api(
            "/member/invite",
            json!({"members": [{"email": email, "member_name": name}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["items"][0]["member_id"].as_i64().unwrap()
}

/// The left edge and width (CSS px) of the first element `css` matches.
async fn box_of(c: &Client, css: &str) -> (f64, f64) {
    let v = c
        .execute(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); \
             return [r.left, r.width]",
            vec![json!(css)],
        )
        .await
        .unwrap();
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

/// Drags the mouse across the element `css` from `a` to `b` (fractions of its width, at its
/// vertical middle) with the WebDriver actions API.
async fn drag_across(c: &Client, css: &str, a: f64, b: f64) {
    let track = c.find(Locator::Css(css)).await.unwrap();
    let (_, width) = box_of(c, css).await;
    // MoveToElement offsets are from the element's centre.
    let from = (a - 0.5) * width;
    let to = (b - 0.5) * width;
    let mouse = MouseActions::new("mouse".to_string())
        .then(PointerAction::MoveToElement {
            element: track,
            duration: None,
            x: from,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(std::time::Duration::from_millis(150)),
            x: (to - from) / 2.0,
            y: 0.0,
        })
        .then(PointerAction::MoveBy {
            duration: Some(std::time::Duration::from_millis(150)),
            x: (to - from) / 2.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(mouse).await.unwrap();
    c.release_actions().await.unwrap();
}

async fn overrides(t: &TestServer, sid: i64, now: i64) -> Vec<Value> {
    let (_, info) = t
        .api(
            "/schedule/info",
            json!({"schedule_id": sid, "start": now, "end": now + 3600}),
        )
        .await;
    info["data"]["overrides"].as_array().cloned().unwrap()
}

/// An override by dragging across the timeline and by clicking a shift, saved through the
/// override form; the swap helper; a refused swap next to its field.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_by_drag_and_swaps_in_the_browser() {
    drag_and_swap("").await;
    if let Some(url) = common::fresh_postgres().await {
        drag_and_swap(&url).await;
    }
}

async fn drag_and_swap(database_url: &str) {
    let (mut t, clock) = clocked_server(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    let now = clock.0.load(std::sync::atomic::Ordering::SeqCst) / 1000;
    let owner = t.server.as_ref().unwrap().bootstrap().owner_member_id;
    let bo = invite(&t, "bo@example.com", "Bo Berg").await;
    let cy = invite(&t, "cy@example.com", "Cy Chan").await;
    // A weekly rotation of the owner and Bo that began a day ago, in UTC: the owner until
    // now + 6 days, then Bo for a week.
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
    c.goto(&format!("{}/schedules/{sid}", t.base))
        .await
        .unwrap();
    until("the schedule page", || async {
        text_of(c, "h1").await == "Payments"
    })
    .await;
    let from: i64 = attr_of(c, "#timeline", "data-from")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let to: i64 = attr_of(c, "#timeline", "data-to")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(to - from, 14 * 86_400, "a 14-day timeline");

    // spec: RSP-212 — drag across the final row from 70 % to 85 % of the window: the
    // override form takes that range (to the nearest hour) and the focus moves to the
    // person picker, which then saves it like any typed override.
    drag_across(c, "#timeline-final .tl-track", 0.70, 0.85).await;
    until("the dragged range in the form", || async {
        text_of(c, "#drag-status").await.contains("choose who")
    })
    .await;
    let start = secs_of(&value_of(c, "#ov_start").await);
    let end = secs_of(&value_of(c, "#ov_end").await);
    let want_start = from + (to - from) * 70 / 100;
    let want_end = from + (to - from) * 85 / 100;
    assert!(
        (start - want_start).abs() <= 3600,
        "{start} vs {want_start}"
    );
    assert!((end - want_end).abs() <= 3600, "{end} vs {want_end}");
    assert_eq!(start % 3600, 0, "snapped to the hour");
    assert_eq!(end % 3600, 0, "snapped to the hour");
    assert!(
        exists(c, "#timeline-final .tl-sel").await,
        "the range is marked"
    );
    let (focused, _) = focus_ring(c).await;
    assert_eq!(focused, "ov_person", "the person picker has the focus");
    shoot(c, "schedule-drag").await;
    set_value(c, "ov_person", &cy.to_string()).await;
    click(c, "#override-form button[type=submit]").await;
    until("the dragged override on the timeline", || async {
        text_of(c, "#timeline-final").await.contains("Cy Chan")
    })
    .await;
    let saved = overrides(&t, sid, now).await;
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0]["person_id"], cy);
    assert_eq!(saved[0]["start"], start);
    assert_eq!(saved[0]["end"], end);

    // A click on a shift block (no drag) takes that shift as the timeline shows it, from now
    // on (it began before now).
    let bar = "#timeline .tl-row:not(.tl-scale):not(.tl-final) .tl-bar";
    let bar_start: i64 = attr_of(c, bar, "data-start")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let bar_end: i64 = attr_of(c, bar, "data-end").await.unwrap().parse().unwrap();
    let (left, width) = box_of(c, bar).await;
    let (track_left, track_width) = box_of(
        c,
        "#timeline .tl-row:not(.tl-scale):not(.tl-final) .tl-track",
    )
    .await;
    // Click inside the block (its visible middle).
    let x = ((left + width / 2.0) - track_left) / track_width;
    drag_across(
        c,
        "#timeline .tl-row:not(.tl-scale):not(.tl-final) .tl-track",
        x,
        x,
    )
    .await;
    until("the clicked shift in the form", || async {
        value_of(c, "#ov_start").await == local(bar_start.max(now))
    })
    .await;
    assert!(bar_start < now, "the owner's shift has begun");
    assert_eq!(value_of(c, "#ov_end").await, local(bar_end));

    // Every input of the page has a label (the drag's form and the swap form included).
    assert_eq!(unlabelled_inputs(c).await, 0);

    // spec: RSP-235 — a swap where the person giving up the first shift is not on call is
    // refused beside the first shift, with everything typed kept.
    let a_from = now + 3600 - now % 3600;
    let a_to = a_from + 2 * 3600;
    let b_from = a_from + 6 * 86_400 + 3600;
    let b_to = b_from + 2 * 3600;
    set_value(c, "sw_a", &bo.to_string()).await;
    set_value(c, "sw_a_start", &local(a_from)).await;
    set_value(c, "sw_a_end", &local(a_to)).await;
    set_value(c, "sw_b", &owner.to_string()).await;
    set_value(c, "sw_b_start", &local(b_from)).await;
    set_value(c, "sw_b_end", &local(b_to)).await;
    click(c, "#swap-form button[type=submit]").await;
    until("the swap refusal", || async {
        text_of(c, "#sw_a_start-error")
            .await
            .contains("Bo Berg is not on call")
    })
    .await;
    assert_eq!(value_of(c, "#sw_b_end").await, local(b_to));
    assert_eq!(
        attr_of(c, "#sw_a_start", "aria-describedby")
            .await
            .as_deref(),
        Some("sw_a_start-error")
    );
    assert_eq!(overrides(&t, sid, now).await.len(), 1, "nothing saved");
    shoot(c, "schedule-swap-error").await;

    // spec: RSP-235 — the owner gives up two hours of their shift to Bo and takes two hours
    // of Bo's in return: two overrides.
    set_value(c, "sw_a", &owner.to_string()).await;
    set_value(c, "sw_b", &bo.to_string()).await;
    click(c, "#swap-form button[type=submit]").await;
    until("the swap saved", || async {
        text_of(c, "#override-list").await.matches("swap").count() == 2
    })
    .await;
    let saved = overrides(&t, sid, now).await;
    assert_eq!(saved.len(), 3, "{saved:?}");
    let find = |s: i64| {
        saved
            .iter()
            .find(|o| o["start"] == s)
            .unwrap_or_else(|| panic!("an override from {s}: {saved:?}"))
            .clone()
    };
    assert_eq!(find(a_from)["person_id"], bo);
    assert_eq!(find(a_from)["end"], a_to);
    assert_eq!(find(b_from)["person_id"], owner);
    assert_eq!(find(b_from)["end"], b_to);

    browser.stop().await;
    t.stop().await;
}

/// The service calendar pages: the list from the header navigation, a refused create (the
/// error beside its field, everything typed kept), a create with bulk-marked weekdays and a
/// linked holiday set, the month of day types with a date toggled and toggled back, an edit,
/// and deletion refused while a schedule uses the calendar.
/// On SQLite, and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_calendars_in_the_browser() {
    calendars_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        calendars_in_the_browser(&url).await;
    }
}

async fn calendars_in_the_browser(database_url: &str) {
    let (mut t, clock) = clocked_server(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let c = &browser.client;
    let now = clock.0.load(std::sync::atomic::Ordering::SeqCst) / 1000;
    let today = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::from_second(now).unwrap())
        .date();
    // A holiday on a weekday (from the 15th on), so only the holiday set makes it a rest day.
    let mut holiday_day = today
        .first_of_month()
        .checked_add(jiff::Span::new().days(14))
        .unwrap();
    while matches!(
        holiday_day.weekday(),
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    ) {
        holiday_day = holiday_day.tomorrow().unwrap();
    }
    let holiday = holiday_day.to_string();
    let (status, body) = t
        .api(
            "/calendar/holiday/import",
            json!({"id": "test.holidays", "name": "Test holidays",
                   "entries": {holiday.clone(): "holiday"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    browser_sign_in(&t, c).await;

    // The header navigation leads to the list; the schedules page links to it, too.
    click(c, ".top nav a[href='/calendars']").await;
    until("the calendar list", || async {
        text_of(c, "h1").await == "Service calendars"
    })
    .await;
    assert!(
        text_of(c, "#calendar-list")
            .await
            .contains("No service calendars")
    );
    click(c, "a[href='/calendars/new']").await;
    until("the calendar form", || async {
        text_of(c, "h1").await == "New service calendar"
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0, "every input has a label");
    // Keyboard: Tab moves from the name to the description with a visible focus ring.
    c.execute(
        "document.getElementById('cal_name').focus(); return true",
        vec![],
    )
    .await
    .unwrap();
    tab(c).await;
    let (focused, ring) = focus_ring(c).await;
    assert_eq!(focused, "description");
    assert!(ring, "the focus must be visible");

    // spec: RSP-270 (§1.14) — an unknown zone is refused beside the zone, with the name, the
    // description and the unticked weekdays kept.
    type_into(c, "#cal_name", "Trading days").await;
    type_into(c, "#description", "Exchange sessions").await;
    type_into(c, "#timezone", "Mars/Olympus_Mons").await;
    click(c, "#workday-6").await;
    click(c, "#workday-0").await;
    c.find(Locator::Css(
        "input[name=extra_cal_ids][value='test.holidays']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    click(c, "#calendar-form button[type=submit]").await;
    until("the zone error", || async {
        text_of(c, "#timezone-error").await.contains("timezone")
    })
    .await;
    assert_eq!(value_of(c, "#cal_name").await, "Trading days");
    assert_eq!(value_of(c, "#description").await, "Exchange sessions");
    assert_eq!(value_of(c, "#timezone").await, "Mars/Olympus_Mons");
    assert_eq!(
        attr_of(c, "#timezone", "aria-describedby").await.as_deref(),
        Some("timezone-error")
    );
    let ticked = c
        .execute(
            "return [...document.querySelectorAll('input[name=workdays]:checked')].map(e => e.value).join(',')",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(ticked, json!("1,2,3,4,5"));
    let (_, listed) = t.api("/calendar/list", json!({})).await;
    assert_eq!(listed["data"]["total"], 0, "nothing saved");
    shoot(c, "calendar-error").await;

    // An empty name is refused beside the name.
    type_into(c, "#cal_name", " ").await;
    type_into(c, "#timezone", "UTC").await;
    click(c, "#calendar-form button[type=submit]").await;
    until("the name error", || async {
        text_of(c, "#cal_name-error").await.contains("cal_name")
    })
    .await;

    // spec: RSP-272 — bulk marking by weekday and linking a holiday set, saved.
    type_into(c, "#cal_name", "Trading days").await;
    click(c, "#calendar-form button[type=submit]").await;
    until("the calendar page", || async { exists(c, "#saved").await }).await;
    let (_, listed) = t.api("/calendar/list", json!({})).await;
    let cal = listed["data"]["items"][0].clone();
    let cal_id = cal["cal_id"].as_str().unwrap().to_string();
    assert_eq!(cal["cal_name"], "Trading days");
    assert_eq!(cal["description"], "Exchange sessions");
    assert_eq!(cal["timezone"], "UTC");
    assert_eq!(cal["workdays"], json!([1, 2, 3, 4, 5]));
    assert_eq!(cal["extra_cal_ids"], json!(["test.holidays"]));

    // spec: RSP-270 — the month shows the holiday as a rest day (step 2) and weekdays by
    // the working days of the week (step 3).
    // Read by script: the month is swapped in place, so an element handle can go stale.
    let class = |d: String| async move {
        c.execute(
            "const e = document.getElementById(arguments[0]); return e ? e.className : ''",
            vec![json!(format!("date-{d}"))],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or("")
        .to_string()
    };
    assert!(class(holiday.clone()).await.contains("rest"), "the holiday");
    let tenth = today
        .first_of_month()
        .checked_add(jiff::Span::new().days(9))
        .unwrap();
    let weekend = matches!(
        tenth.weekday(),
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    );
    let tenth_s = tenth.to_string();
    let natural = if weekend { "rest" } else { "work" };
    let other = if weekend { "work" } else { "rest" };
    assert!(class(tenth_s.clone()).await.contains(natural));
    assert_eq!(unlabelled_inputs(c).await, 0, "every input has a label");
    shoot(c, "calendar").await;

    // spec: RSP-272 — pressing a date marks it as the other kind of day; pressing it again
    // removes the mark. The focus stays on the date.
    click(c, &format!("#date-{tenth_s}")).await;
    until("the date marked", || async {
        let k = class(tenth_s.clone()).await;
        k.contains("marked") && k.contains(other)
    })
    .await;
    let (_, info) = t.api("/calendar/info", json!({"cal_id": cal_id})).await;
    let want = if weekend { "workday" } else { "restday" };
    assert_eq!(info["data"]["date_overrides"][&tenth_s], want, "{info}");
    click(c, &format!("#date-{tenth_s}")).await;
    until("the mark removed", || async {
        let k = class(tenth_s.clone()).await;
        !k.contains("marked") && k.contains(natural)
    })
    .await;
    let (_, info) = t.api("/calendar/info", json!({"cal_id": cal_id})).await;
    assert!(
        info["data"]["date_overrides"].get(&tenth_s).is_none(),
        "{info}"
    );
    let (focused, _) = focus_ring(c).await;
    assert_eq!(focused, format!("date-{tenth_s}"));

    // An edit of the settings: the weekend becomes working days again.
    click(c, "#workday-6").await;
    click(c, "#calendar-form button[type=submit]").await;
    until("the saved edit", || async {
        let (_, info) = t.api("/calendar/info", json!({"cal_id": cal_id})).await;
        info["data"]["workdays"] == json!([1, 2, 3, 4, 5, 6])
    })
    .await;

    // spec: RSP-273 — a calendar a schedule layer follows cannot be deleted; the refusal
    // names the schedule.
    let (status, body) = t
        .api(
            "/schedule/create",
            json!({
                "schedule_name": "Market hours",
                "time_zone": "UTC",
                "layers": [{
                    "layer_name": "Desk",
                    "groups": [{"members": [{"person_id": t.server.as_ref().unwrap().bootstrap().owner_member_id}]}],
                    "layer_start": now,
                    "rotation_unit": "week",
                    "rotation_value": 1,
                    "calendar_mask": {"cal_id": cal_id, "day_type": "workday"},
                }],
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    c.goto(&format!("{}/calendars/{cal_id}", t.base))
        .await
        .unwrap();
    until("the calendar page", || async {
        text_of(c, "h1").await == "Trading days"
    })
    .await;
    accept_confirms(c).await;
    click(c, "#delete-calendar").await;
    until("the deletion refusal", || async {
        text_of(c, "#console-error").await.contains("Market hours")
    })
    .await;
    let (_, listed) = t.api("/calendar/list", json!({})).await;
    assert_eq!(listed["data"]["total"], 1);
    c.goto(&format!("{}/calendars", t.base)).await.unwrap();
    until("the calendar list", || async {
        text_of(c, "#calendar-list").await.contains("Trading days")
    })
    .await;
    shoot(c, "calendars").await;

    // An unused calendar is deleted and leaves the list.
    let (status, body) = t
        .api("/calendar/create", json!({"cal_name": "Spare"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let spare = body["data"]["cal_id"].as_str().unwrap().to_string();
    c.goto(&format!("{}/calendars/{spare}", t.base))
        .await
        .unwrap();
    until("the spare calendar", || async {
        text_of(c, "h1").await == "Spare"
    })
    .await;
    accept_confirms(c).await;
    click(c, "#delete-calendar").await;
    until("back on the list", || async {
        c.current_url().await.unwrap().path() == "/calendars"
    })
    .await;
    assert!(!text_of(c, "#calendar-list").await.contains("Spare"));

    browser.stop().await;
    t.stop().await;
}

/// The calendar pages need a session and their saves the CSRF token; a month that is not
/// one and an id that is no calendar are refused plainly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_pages_need_a_session_and_saves_the_csrf_token() {
    let mut t = TestServer::start("").await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, next) in [
        ("/calendars", "%2Fcalendars"),
        ("/calendars/new", "%2Fcalendars%2Fnew"),
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
    let post = |path: &str, form: Vec<(&'static str, &'static str)>, token: Option<&str>| {
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
        ("cal_name", "Ops"),
        ("timezone", "UTC"),
        ("workdays", "1"),
        ("workdays", "2"),
    ];
    // Without the CSRF token nothing is saved.
    let resp = post("/calendars", form.clone(), None).await.unwrap();
    assert_eq!(resp.status(), 403);
    let (_, listed) = t.api("/calendar/list", json!({})).await;
    assert_eq!(listed["data"]["total"], 0);
    // spec: RSP-270 (§1.14) — a name over 39 characters is refused beside the name.
    let long = vec![("cal_name", "A name far longer than thirty-nine characters")];
    let resp = post("/calendars", long, Some(&csrf)).await.unwrap();
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"cal_name-error\""), "{html}");
    assert!(html.contains("A name far longer than thirty-nine characters"));
    // With it, the calendar is created and the answer leads to its page.
    let resp = post("/calendars", form, Some(&csrf)).await.unwrap();
    assert_eq!(resp.status(), 204);
    let to = resp.headers()["hx-redirect"].to_str().unwrap().to_string();
    assert!(to.starts_with("/calendars/"), "{to}");
    let (_, listed) = t.api("/calendar/list", json!({})).await;
    assert_eq!(listed["data"]["items"][0]["workdays"], json!([1, 2]));
    let cal_id = listed["data"]["items"][0]["cal_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A date toggle without the token changes nothing.
    let day = "2026-03-04";
    let resp = post(&format!("/calendars/{cal_id}/dates/{day}"), vec![], None)
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = post(
        &format!("/calendars/{cal_id}/dates/nope"),
        vec![],
        Some(&csrf),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let (_, info) = t.api("/calendar/info", json!({"cal_id": cal_id})).await;
    assert_eq!(info["data"]["date_overrides"], json!({}));
    for (path, status) in [
        (format!("/calendars/{cal_id}?month=2026-13"), 400),
        ("/calendars/not-a-calendar".to_string(), 404),
        ("/calendars/0123456789abcdef01234567".to_string(), 404),
    ] {
        let (got, _) = get_page(&t, &cookie, &path).await;
        assert_eq!(got, status, "{path}");
    }
    t.stop().await;
}
