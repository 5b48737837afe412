//! Service calendars over the Open API (openapi-compat.md 2.8; response.md §1.14, §2.18) and
//! what they change in schedules: `/calendar/*`, holiday-set files, layer calendar masks in
//! the views and the .ics feeds, the reference checks of RSP-234 and RSP-273, and the schedule
//! endpoints added with them (`/schedule/infos`, `/schedule/self`, `/schedule/preview`,
//! `mode = 1` layers, `handoff_time`, team filters, the per-member feed).
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs};
use klaxon_store::{Store, StoreOptions};
use serde_json::{Value, json};

const DAY: i64 = 86_400;
/// Mon 2025-10-06 00:00 UTC.
const MON: i64 = 1_759_708_800;

/// 00:00 UTC of the first Monday after today.
fn next_monday() -> i64 {
    // 1970-01-01 was a Thursday (weekday 4, 0 = Sunday).
    let mut day = now_secs() / DAY + 1;
    while (day + 4) % 7 != 1 {
        day += 1;
    }
    day * DAY
}

fn ok(status: u16, body: &Value) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn err(status: u16, body: &Value, code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "{body}");
    let expected = match code {
        "AccessDenied" => 403,
        _ => 400,
    };
    assert_eq!(status, expected, "{body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

async fn owner(t: &TestServer) -> i64 {
    let (s, b) = t.api("/member/info", json!({})).await;
    ok(s, &b)["member_id"].as_i64().unwrap()
}

/// A second handle on the server's database, for what the API cannot arrange (a member's
/// APP key).
async fn store_of(t: &TestServer) -> Store {
    let url = common::test_config(t.dir.path(), &t.database_url).effective_database_url();
    Store::connect(&url, StoreOptions::default()).await.unwrap()
}

/// Invites a member as a Responder (an API invitation without roles grants Viewer, who may
/// not change calendars, RSP-522) and gives them an APP key; returns (member id, key).
async fn member_with_key(t: &TestServer, email: &str) -> (i64, String) {
    let (s, b) = t
        .api(
            "/member/invite",
            json!({"members": [{"email": email, "role_ids": [6]}]}),
        )
        .await;
    let id = ok(s, &b)["items"][0]["member_id"].as_i64().unwrap();
    let (s, b) = t.api("/account/info", json!({})).await;
    let account = ok(s, &b)["account_id"].as_i64().unwrap();
    let key = format!("{:032x}", id as u128 * 7919 + now_secs() as u128);
    let store = store_of(t).await;
    store
        .add_app_key(account, id, "test", &key, now_secs() * 1000)
        .await
        .unwrap()
        .unwrap();
    store.close().await;
    (id, key)
}

async fn api_as(t: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = t
        .http
        .post(format!("{}{path}?app_key={key}", t.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The persons of the final segment covering instant `at` (seconds); empty when none does or
/// it is an empty shift.
fn on_call_at(info: &Value, at: i64) -> Vec<i64> {
    let segs = info["final_schedule"]["schedules"].as_array().unwrap();
    let Some(seg) = segs
        .iter()
        .find(|s| s["start"].as_i64().unwrap() <= at && at < s["end"].as_i64().unwrap())
    else {
        return Vec::new();
    };
    let mut out: Vec<i64> = seg["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["person_ids"].as_array().unwrap().clone())
        .map(|p| p.as_i64().unwrap())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Who is on call at noon of each day of the week from `MON`.
fn week_at_noon(info: &Value) -> Vec<Vec<i64>> {
    (0..7)
        .map(|d| on_call_at(info, MON + d * DAY + DAY / 2))
        .collect()
}

/// A daily rotation of `a` and `b` from `MON`, its layer masked by `cal_id` (when given).
fn daily_body(name: &str, a: i64, b: i64, cal_id: Option<&str>) -> Value {
    let mut layer = json!({
        "layer_name": "Daily",
        "groups": [
            {"members": [{"person_id": a}]},
            {"members": [{"person_id": b}]}
        ],
        "layer_start": MON,
        "rotation_unit": "day",
        "rotation_value": 1
    });
    if let Some(c) = cal_id {
        layer["calendar_mask"] = json!({"cal_id": c, "day_type": "workday"});
    }
    json!({"schedule_name": name, "time_zone": "UTC", "layers": [layer]})
}

// spec: RSP-270, RSP-271, RSP-272 (response.md §1.14 fields and limits; openapi-compat.md 2.8
// `/calendar/{create,update,info,list}` and `/calendar/event/*`)
on_both_backends!(
    calendar_lifecycle_and_validation,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let me = owner(&t).await;

        // Defaults: the account zone (UTC) and every day a workday.
        let (s, b) = t
            .api("/calendar/create", json!({"cal_name": "  Plain  "}))
            .await;
        let plain = ok(s, &b);
        let plain_id = plain["cal_id"].as_str().unwrap().to_string();
        assert_eq!(plain_id.len(), 24);
        assert_eq!(plain["cal_name"], "Plain");
        let (s, b) = t.api("/calendar/info", json!({"cal_id": plain_id})).await;
        let info = ok(s, &b);
        assert_eq!(info["timezone"], "UTC");
        assert_eq!(info["workdays"], json!([0, 1, 2, 3, 4, 5, 6]));
        assert_eq!(info["status"], "enabled");
        assert_eq!(info["creator_id"], me);

        // The calendar of ESC-5.
        let mut overrides = serde_json::Map::new();
        for d in 1..=7 {
            overrides.insert(format!("2025-10-{d:02}"), json!("restday"));
        }
        overrides.insert("2025-10-11".into(), json!("workday"));
        let (s, b) = t
            .api(
                "/calendar/create",
                json!({"cal_name": "CAL", "description": "trading days",
                   "timezone": "Asia/Shanghai", "workdays": [5, 1, 2, 3, 4, 4],
                   "date_overrides": overrides}),
            )
            .await;
        let cal_id = ok(s, &b)["cal_id"].as_str().unwrap().to_string();
        let (s, b) = t
            .api(
                "/calendar/info",
                json!({"cal_id": cal_id, "start_date": "2025-09-30", "end_date": "2025-10-13"}),
            )
            .await;
        let info = ok(s, &b);
        assert_eq!(info["workdays"], json!([1, 2, 3, 4, 5]));
        let days: Vec<(String, String)> = info["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["date"].as_str().unwrap().to_string(),
                    d["day_type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(days.len(), 14);
        let kind = |date: &str| days.iter().find(|(d, _)| d == date).unwrap().1.clone();
        // spec: RSP-270 — marks first, then weekdays
        assert_eq!(kind("2025-09-30"), "workday");
        assert_eq!(kind("2025-10-01"), "restday");
        assert_eq!(kind("2025-10-09"), "workday");
        assert_eq!(kind("2025-10-11"), "workday");
        assert_eq!(kind("2025-10-12"), "restday");

        // Per-date marks as events (RSP-272): upsert, list, delete.
        let (s, b) = t
            .api(
                "/calendar/event/upsert",
                json!({"cal_id": cal_id, "events": [
                {"date": "2025-10-12", "day_type": "workday"},
                {"date": "2025-10-13", "day_type": "restday"}]}),
            )
            .await;
        ok(s, &b);
        let (s, b) = t
            .api(
                "/calendar/event/list",
                json!({"cal_id": cal_id, "start_date": "2025-10-10", "end_date": "2025-10-31"}),
            )
            .await;
        let events = ok(s, &b);
        assert_eq!(
            events["items"],
            json!([{"date": "2025-10-11", "day_type": "workday"},
               {"date": "2025-10-12", "day_type": "workday"},
               {"date": "2025-10-13", "day_type": "restday"}])
        );
        let (s, b) = t
            .api(
                "/calendar/event/delete",
                json!({"cal_id": cal_id, "dates": ["2025-10-13"]}),
            )
            .await;
        ok(s, &b);
        let (s, b) = t
            .api(
                "/calendar/info",
                json!({"cal_id": cal_id, "start_date": "2025-10-12", "end_date": "2025-10-13"}),
            )
            .await;
        assert_eq!(
            ok(s, &b)["days"],
            json!([{"date": "2025-10-12", "day_type": "workday"},
               {"date": "2025-10-13", "day_type": "workday"}])
        );

        // Update keeps what it leaves out; list filters by name.
        let (s, b) = t
            .api(
                "/calendar/update",
                json!({"cal_id": cal_id, "cal_name": "CAL trading"}),
            )
            .await;
        ok(s, &b);
        let (s, b) = t.api("/calendar/info", json!({"cal_id": cal_id})).await;
        let info = ok(s, &b);
        assert_eq!(info["cal_name"], "CAL trading");
        assert_eq!(info["timezone"], "Asia/Shanghai");
        assert_eq!(info["description"], "trading days");
        let (s, b) = t.api("/calendar/list", json!({})).await;
        let list = ok(s, &b);
        assert_eq!(list["total"], 2);
        assert_eq!(list["items"][0]["cal_id"], cal_id, "newest first");
        let (s, b) = t.api("/calendar/list", json!({"query": "TRAD"})).await;
        assert_eq!(ok(s, &b)["total"], 1);

        // Validation names the field and changes nothing.
        let before = t.api("/calendar/info", json!({"cal_id": cal_id})).await.1["data"].clone();
        for (body, field) in [
            (
                json!({"cal_id": cal_id, "cal_name": "x".repeat(40)}),
                "cal_name",
            ),
            (
                json!({"cal_id": cal_id, "timezone": "Mars/Olympus"}),
                "timezone",
            ),
            (json!({"cal_id": cal_id, "workdays": [1, 7]}), "workdays"),
            (
                json!({"cal_id": cal_id, "date_overrides": {"2025-13-01": "workday"}}),
                "date_overrides.2025-13-01",
            ),
            (
                json!({"cal_id": cal_id, "date_overrides": {"2025-10-01": "holiday"}}),
                "date_overrides.2025-10-01",
            ),
            (
                json!({"cal_id": cal_id, "extra_cal_ids": ["no.such.set"]}),
                "extra_cal_ids[0]",
            ),
            (
                json!({"cal_id": cal_id, "description": "d".repeat(500)}),
                "description",
            ),
            (json!({"cal_id": cal_id, "team_id": 999_999}), "team_id"),
        ] {
            let (s, b) = t.api("/calendar/update", body).await;
            let msg = err(s, &b, "InvalidParameter");
            assert!(msg.starts_with(field), "{field}: {msg}");
        }
        let (s, b) = t
        .api(
            "/calendar/event/upsert",
            json!({"cal_id": cal_id, "events": [{"date": "10/12/2025", "day_type": "workday"}]}),
        )
        .await;
        assert!(err(s, &b, "InvalidParameter").starts_with("events[0].date"));
        let (s, b) = t
            .api("/calendar/create", json!({"description": "no name"}))
            .await;
        assert!(err(s, &b, "InvalidParameter").starts_with("cal_name"));
        let (s, b) = t
            .api(
                "/calendar/info",
                json!({"cal_id": cal_id, "start_date": "2025-01-01", "end_date": "2026-12-31"}),
            )
            .await;
        err(s, &b, "InvalidParameter");
        assert_eq!(
            t.api("/calendar/info", json!({"cal_id": cal_id})).await.1["data"],
            before
        );
        let (s, b) = t
            .api(
                "/calendar/info",
                json!({"cal_id": "650000000000000000000000"}),
            )
            .await;
        err(s, &b, "ResourceNotFound");

        // Deleting an unused calendar is final.
        let (s, b) = t.api("/calendar/delete", json!({"cal_id": plain_id})).await;
        ok(s, &b);
        let (s, b) = t.api("/calendar/info", json!({"cal_id": plain_id})).await;
        err(s, &b, "ResourceNotFound");
        t.stop().await;
    }
);

// spec: RSP-270 (linked holiday sets, restday wins), RSP-272, OQ-18 (holiday sets are files
// an administrator loads)
on_both_backends!(holiday_sets_from_files, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let file = json!({
        "id": "cn.official.2025",
        "name": "China public holidays 2025",
        "entries": {"2025-10-01": "holiday", "2025-10-02": "holiday",
                    "2025-09-28": "workday", "2025-10-11": "workday"}
    });
    let (s, b) = t.api("/calendar/holiday/import", file.clone()).await;
    let loaded = ok(s, &b);
    assert_eq!(loaded["created"], true);
    assert_eq!(loaded["entries"], 4);
    assert_eq!(loaded["holidays"], 2);
    assert_eq!(loaded["first_date"], "2025-09-28");
    // A second load of the same id replaces the set.
    let (s, b) = t.api("/calendar/holiday/import", file).await;
    assert_eq!(ok(s, &b)["created"], false);
    let other = json!({"id": "other", "entries": {"2025-10-11": "holiday"}});
    let (s, b) = t.api("/calendar/holiday/import", other).await;
    ok(s, &b);
    let (s, b) = t.api("/calendar/holiday/list", json!({})).await;
    assert_eq!(ok(s, &b)["total"], 2);

    let (s, b) = t
        .api(
            "/calendar/create",
            json!({"cal_name": "CN", "workdays": [1, 2, 3, 4, 5],
                   "extra_cal_ids": ["cn.official.2025", "other"]}),
        )
        .await;
    let cal_id = ok(s, &b)["cal_id"].as_str().unwrap().to_string();
    let (s, b) = t
        .api(
            "/calendar/info",
            json!({"cal_id": cal_id, "start_date": "2025-09-28", "end_date": "2025-10-11"}),
        )
        .await;
    let days = ok(s, &b)["days"].clone();
    let kind = |date: &str| {
        days.as_array()
            .unwrap()
            .iter()
            .find(|d| d["date"] == date)
            .unwrap()["day_type"]
            .clone()
    };
    assert_eq!(kind("2025-09-28"), "workday", "an adjusted working Sunday");
    assert_eq!(kind("2025-10-01"), "restday", "a holiday on a Wednesday");
    assert_eq!(
        kind("2025-10-11"),
        "restday",
        "two sets disagree: restday wins"
    );
    assert_eq!(kind("2025-10-10"), "workday");

    // A linked set cannot be removed; an unlinked one can.
    let (s, b) = t
        .api("/calendar/holiday/delete", json!({"id": "other"}))
        .await;
    assert!(err(s, &b, "ReferenceExist").contains(&cal_id));
    let (s, b) = t
        .api(
            "/calendar/update",
            json!({"cal_id": cal_id, "extra_cal_ids": ["cn.official.2025"]}),
        )
        .await;
    ok(s, &b);
    let (s, b) = t
        .api("/calendar/holiday/delete", json!({"id": "other"}))
        .await;
    ok(s, &b);
    let (s, b) = t
        .api("/calendar/holiday/delete", json!({"id": "other"}))
        .await;
    err(s, &b, "ResourceNotFound");

    // A bad file names what is wrong and loads nothing.
    for (body, needle) in [
        (
            json!({"id": "Bad Id!", "entries": {"2025-01-01": "holiday"}}),
            "id",
        ),
        (
            json!({"id": "x", "entries": {"2025-02-30": "holiday"}}),
            "entries.2025-02-30",
        ),
        (
            json!({"id": "x", "entries": {"2025-01-01": "off"}}),
            "entries.2025-01-01",
        ),
        (json!({"id": "x"}), "entries"),
    ] {
        let (s, b) = t.api("/calendar/holiday/import", body).await;
        let msg = err(s, &b, "InvalidParameter");
        assert!(msg.starts_with(needle), "{needle}: {msg}");
    }
    let (s, b) = t.api("/calendar/holiday/list", json!({})).await;
    assert_eq!(ok(s, &b)["total"], 1);
    t.stop().await;
});

// spec: RSP-223, RSP-272, RSP-273 — a layer masked by a calendar skips its rest days, edits
// to the calendar apply at once, and a calendar in use cannot be deleted
on_both_backends!(schedule_calendar_mask, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let me = owner(&t).await;
    let other = 424_242;
    let (s, b) = t
        .api(
            "/calendar/create",
            json!({"cal_name": "Weekdays", "timezone": "UTC", "workdays": [1, 2, 3, 4, 5]}),
        )
        .await;
    let cal_id = ok(s, &b)["cal_id"].as_str().unwrap().to_string();

    // An unknown calendar is refused, naming the field.
    let (s, b) = t
        .api(
            "/schedule/create",
            daily_body("Desk", me, other, Some("650000000000000000000000")),
        )
        .await;
    let msg = err(s, &b, "InvalidParameter");
    assert!(msg.starts_with("layers[0].calendar_mask.cal_id"), "{msg}");

    let (s, b) = t
        .api(
            "/schedule/create",
            daily_body("Desk", me, other, Some(&cal_id)),
        )
        .await;
    let id = ok(s, &b)["schedule_id"].as_i64().unwrap();
    let window = json!({"schedule_id": id, "start": MON, "end": MON + 7 * DAY});
    let (s, b) = t.api("/schedule/info", window.clone()).await;
    let info = ok(s, &b);
    assert_eq!(info["layers"][0]["calendar_mask"]["cal_id"], cal_id);
    // Masked days still use up turns (OQ-14): Saturday would have been `other`'s.
    let e: Vec<i64> = vec![];
    assert_eq!(
        week_at_noon(&info),
        vec![
            vec![me],
            vec![other],
            vec![me],
            vec![other],
            vec![me],
            e.clone(),
            e.clone()
        ]
    );

    // spec: RSP-272 — marking Saturday a workday and Wednesday a rest day changes the shifts.
    let (s, b) = t
        .api(
            "/calendar/event/upsert",
            json!({"cal_id": cal_id, "events": [
                {"date": "2025-10-11", "day_type": "workday"},
                {"date": "2025-10-08", "day_type": "restday"}]}),
        )
        .await;
    ok(s, &b);
    let (s, b) = t.api("/schedule/info", window.clone()).await;
    let info = ok(s, &b);
    assert_eq!(
        week_at_noon(&info),
        vec![
            vec![me],
            vec![other],
            e.clone(),
            vec![other],
            vec![me],
            vec![other],
            e.clone()
        ]
    );
    // The list computes with the calendars too.
    let (s, b) = t
        .api(
            "/schedule/list",
            json!({"start": MON, "end": MON + 7 * DAY}),
        )
        .await;
    assert_eq!(week_at_noon(&ok(s, &b)["items"][0]), week_at_noon(&info));

    // spec: RSP-273 — the calendar is in use.
    let (s, b) = t.api("/calendar/delete", json!({"cal_id": cal_id})).await;
    let msg = err(s, &b, "ReferenceExist");
    assert!(msg.contains("Desk"), "{msg}");
    let (s, b) = t.api("/calendar/info", json!({"cal_id": cal_id})).await;
    ok(s, &b);
    // Unmasking the layer frees it.
    let (s, b) = t
        .api(
            "/schedule/update",
            json!({"schedule_id": id, "layers": daily_body("Desk", me, other, None)["layers"]}),
        )
        .await;
    ok(s, &b);
    let (s, b) = t.api("/calendar/delete", json!({"cal_id": cal_id})).await;
    ok(s, &b);
    t.stop().await;
});

// spec: RSP-223 in the subscription feed — a calendar with no workday leaves a masked layer
// nobody on call, so the schedule's .ics has no events; without the mask it has some
on_both_backends!(feed_honours_calendar_masks, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let me = owner(&t).await;
    let (s, b) = t
        .api(
            "/calendar/create",
            json!({"cal_name": "Never", "timezone": "UTC", "workdays": []}),
        )
        .await;
    let cal_id = ok(s, &b)["cal_id"].as_str().unwrap().to_string();
    let mut body = daily_body("Masked", me, 424_242, Some(&cal_id));
    body["layers"][0]["layer_start"] = json!(now_secs() - 3 * DAY);
    let (s, b) = t.api("/schedule/create", body.clone()).await;
    let id = ok(s, &b)["schedule_id"].as_i64().unwrap();
    let (s, b) = t
        .api("/schedule/feed/reset", json!({"schedule_id": id}))
        .await;
    let url_masked = ok(s, &b)["feed_url"].as_str().unwrap().to_string();
    let text = t
        .http
        .get(&url_masked)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR"), "{text}");
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 0, "{text}");

    body["layers"][0]
        .as_object_mut()
        .unwrap()
        .remove("calendar_mask");
    let (s, b) = t
        .api(
            "/schedule/update",
            json!({"schedule_id": id, "layers": body["layers"]}),
        )
        .await;
    ok(s, &b);
    let text = t
        .http
        .get(&url_masked)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.matches("BEGIN:VEVENT").count() > 0, "{text}");
    t.stop().await;
});

// spec: RSP-234 — a schedule an escalation rule targets cannot be deleted
on_both_backends!(
    referenced_schedule_is_not_deleted,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let me = owner(&t).await;
        let (s, b) = t.api("/channel/list", json!({})).await;
        let channel = ok(s, &b)["items"][0]["channel_id"].as_i64().unwrap();
        let (s, b) = t
            .api("/schedule/create", daily_body("Primary", me, 424_242, None))
            .await;
        let used = ok(s, &b)["schedule_id"].as_i64().unwrap();
        let (s, b) = t
            .api("/schedule/create", daily_body("Spare", me, 424_242, None))
            .await;
        let spare = ok(s, &b)["schedule_id"].as_i64().unwrap();
        let (s, b) = t
            .api(
                "/channel/escalate/rule/create",
                json!({"channel_id": channel, "rule_name": "Page primary",
                   "layers": [{"target": {"schedule_to_role_ids": {used.to_string(): []},
                                          "by": {"follow_preference": true}}}]}),
            )
            .await;
        let rule_id = ok(s, &b)["rule_id"].as_str().unwrap().to_string();

        // Refused as a whole: the spare schedule is not deleted either.
        let (s, b) = t
            .api("/schedule/delete", json!({"schedule_ids": [spare, used]}))
            .await;
        let msg = err(s, &b, "ReferenceExist");
        assert!(
            msg.contains("Page primary") && msg.contains(&rule_id),
            "{msg}"
        );
        let (s, b) = t
            .api("/schedule/infos", json!({"schedule_ids": [used, spare]}))
            .await;
        assert_eq!(ok(s, &b)["items"].as_array().unwrap().len(), 2);

        let (s, b) = t
            .api(
                "/channel/escalate/rule/delete",
                json!({"channel_id": channel, "rule_id": rule_id}),
            )
            .await;
        ok(s, &b);
        let (s, b) = t
            .api("/schedule/delete", json!({"schedule_ids": [spare, used]}))
            .await;
        ok(s, &b);
        let (s, b) = t
            .api("/schedule/infos", json!({"schedule_ids": [used, spare]}))
            .await;
        assert_eq!(ok(s, &b)["items"], json!([]));
        t.stop().await;
    }
);

// openapi-compat.md 2.8: `/schedule/infos`, `/schedule/preview`, `mode = 1` override layers and
// `handoff_time`; spec: RSP-212, RSP-214, RSP-225, RSP-227, RSP-228
on_both_backends!(schedule_wire_mappings, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let me = owner(&t).await;
    let sub = 777;
    // Next week, so the override has not begun and may still be removed (RSP-225).
    let mon = next_monday();
    // A weekly layer handing off Monday 10:00 (handoff_time = 1·86400 + 10·3600), and an
    // override layer putting `sub` on for Wednesday.
    let wed = mon + 2 * DAY;
    let body = json!({
        "schedule_name": "Wire", "time_zone": "UTC",
        "layers": [
            {"layer_name": "Weekly", "mode": 0,
             "groups": [{"members": [{"role_id": 0, "person_ids": [me]}]},
                        {"members": [{"role_id": 0, "person_ids": [424_242]}]}],
             "layer_start": mon, "rotation_unit": "week", "rotation_value": 1,
             "handoff_time": 86_400 + 36_000, "restrict_mode": 0},
            {"layer_name": "Dentist swap", "mode": 1, "layer_start": wed,
             "layer_end": wed + DAY,
             "groups": [{"members": [{"role_id": 0, "person_ids": [sub]}]}]}
        ]
    });

    // spec: RSP-227 — preview computes without storing.
    let mut preview = body.clone();
    preview["start"] = json!(mon);
    preview["end"] = json!(mon + 14 * DAY);
    let (s, b) = t.api("/schedule/preview", preview.clone()).await;
    let view = ok(s, &b);
    // spec: RSP-214 — a partial first cycle until the first Monday 10:00, then weekly.
    assert_eq!(on_call_at(&view, mon + 3600), vec![me]);
    assert_eq!(on_call_at(&view, mon + DAY), vec![424_242]);
    assert_eq!(on_call_at(&view, wed + 3600), vec![sub], "RSP-212");
    assert_eq!(on_call_at(&view, mon + 7 * DAY + 9 * 3600), vec![424_242]);
    assert_eq!(
        on_call_at(&view, mon + 7 * DAY + 11 * 3600),
        vec![me],
        "Monday 10:00"
    );
    let (s, b) = t.api("/schedule/list", json!({})).await;
    assert_eq!(ok(s, &b)["total"], 0, "preview stores nothing");
    let mut bad = preview.clone();
    bad["layers"][0]["rotation_value"] = json!(31);
    let (s, b) = t.api("/schedule/preview", bad).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("layers[0].rotation_value"));
    let mut bad = preview.clone();
    bad["layers"][0]["handoff_time"] = json!(61);
    let (s, b) = t.api("/schedule/preview", bad).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("layers[0].handoff_time"));
    let mut bad = preview.clone();
    bad["layers"][1]
        .as_object_mut()
        .unwrap()
        .remove("layer_end");
    let (s, b) = t.api("/schedule/preview", bad).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("layers[1].layer_end"));
    let mut bad = preview.clone();
    bad["layers"][1]["layer_end"] = json!(wed);
    let (s, b) = t.api("/schedule/preview", bad).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("layers[1].layer_end"));
    let (s, b) = t.api("/schedule/preview", body.clone()).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("start"));

    let (s, b) = t.api("/schedule/create", body).await;
    let id = ok(s, &b)["schedule_id"].as_i64().unwrap();
    let (s, b) = t
        .api(
            "/schedule/info",
            json!({"schedule_id": id, "start": mon, "end": mon + 14 * DAY}),
        )
        .await;
    let info = ok(s, &b);
    assert_eq!(
        info["layers"][0]["handoff"],
        json!({"weekday": 1, "time": "10:00"})
    );
    assert_eq!(info["layers"][0]["handoff_time"], 86_400 + 36_000);
    assert_eq!(info["overrides"][0]["person_id"], sub);
    assert_eq!(info["overrides"][0]["note"], "Dentist swap");
    assert_eq!(info["overrides"][0]["created_by"], me);
    let layers = info["layers"].as_array().unwrap().clone();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1]["mode"], 1);
    assert_eq!(layers[1]["layer_start"], wed);
    assert_eq!(on_call_at(&info, wed + 3600), vec![sub]);

    // Sending the layers back as read changes nothing (the override keeps its id).
    let override_id = info["overrides"][0]["override_id"].clone();
    let (s, b) = t
        .api(
            "/schedule/update",
            json!({"schedule_id": id, "layers": layers, "overrides": []}),
        )
        .await;
    ok(s, &b);
    let (s, b) = t
        .api("/schedule/infos", json!({"schedule_ids": [id, 999_999]}))
        .await;
    let items = ok(s, &b)["items"].clone();
    assert_eq!(
        items.as_array().unwrap().len(),
        1,
        "unknown ids are left out"
    );
    assert_eq!(items[0]["overrides"].as_array().unwrap().len(), 1);
    assert_eq!(items[0]["overrides"][0]["override_id"], override_id);
    // Without mode-1 layers, `overrides: []` clears a future override.
    let (s, b) = t
        .api(
            "/schedule/update",
            json!({"schedule_id": id, "overrides": []}),
        )
        .await;
    ok(s, &b);
    let (s, b) = t
        .api("/schedule/infos", json!({"schedule_ids": [id]}))
        .await;
    let items = ok(s, &b)["items"].clone();
    assert_eq!(items[0]["overrides"], json!([]));
    assert_eq!(items[0]["layers"].as_array().unwrap().len(), 1);
    let (s, b) = t.api("/schedule/infos", json!({})).await;
    err(s, &b, "InvalidParameter");
    t.stop().await;
});

// spec: RSP-229 (`/schedule/self`), openapi-compat.md 2.8 list filters `team_ids`,
// `is_my_team`, `is_my_manage`; feature: the per-member iCalendar feed
on_both_backends!(
    my_schedules_teams_and_member_feed,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let me = owner(&t).await;
        let now = now_secs();
        let (s, b) = t
            .api(
                "/team/upsert",
                json!({"team_name": "Ops", "person_ids": [me]}),
            )
            .await;
        let ops = ok(s, &b)["team_id"].as_i64().unwrap();

        // I am on call today in "Mine" (day 2 of an alternating rotation), never in "Theirs".
        let mut mine = daily_body("Mine", me, 424_242, None);
        mine["layers"][0]["layer_start"] = json!(now - 2 * DAY - 60);
        mine["team_id"] = json!(ops);
        let (s, b) = t.api("/schedule/create", mine).await;
        let mine_id = ok(s, &b)["schedule_id"].as_i64().unwrap();
        let mut theirs = daily_body("Theirs", 424_242, 515_151, None);
        theirs["layers"][0]["layer_start"] = json!(now - DAY);
        let (s, b) = t.api("/schedule/create", theirs).await;
        let theirs_id = ok(s, &b)["schedule_id"].as_i64().unwrap();

        let (s, b) = t.api("/schedule/self", json!({})).await;
        let me_view = ok(s, &b);
        let items = me_view["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["schedule_id"], mine_id);
        assert_ne!(items[0]["schedule_id"], theirs_id);
        assert_eq!(items[0]["on_call_now"], true);
        assert_eq!(me_view["on_call_now_ids"], json!([mine_id]));
        // Every other day over the two weeks ahead.
        let shifts = items[0]["my_shifts"].as_array().unwrap();
        assert!((7..=8).contains(&shifts.len()), "{shifts:?}");
        let (s, b) = t
            .api(
                "/schedule/self",
                json!({"start": now, "end": now + 31 * DAY}),
            )
            .await;
        err(s, &b, "InvalidParameter");

        // Team filters.
        let total = |v: Value| v["total"].as_i64().unwrap();
        let (s, b) = t.api("/schedule/list", json!({"team_ids": [ops]})).await;
        let list = ok(s, &b);
        assert_eq!(total(list.clone()), 1);
        assert_eq!(list["items"][0]["schedule_id"], mine_id);
        let (s, b) = t.api("/schedule/list", json!({"is_my_team": true})).await;
        assert_eq!(total(ok(s, &b)), 1);
        let (s, b) = t.api("/schedule/list", json!({"is_my_manage": true})).await;
        assert_eq!(total(ok(s, &b)), 2, "the owner manages everything");
        let (ann, ann_key) = member_with_key(&t, "ann@example.com").await;
        let (s, b) = api_as(&t, &ann_key, "/schedule/list", json!({"is_my_team": true})).await;
        assert_eq!(total(ok(s, &b)), 0);
        let (s, b) = api_as(
            &t,
            &ann_key,
            "/schedule/list",
            json!({"is_my_manage": true}),
        )
        .await;
        assert_eq!(total(ok(s, &b)), 0);
        let (s, b) = api_as(
            &t,
            &ann_key,
            "/schedule/create",
            daily_body("Ann's", ann, me, None),
        )
        .await;
        let anns = ok(s, &b)["schedule_id"].as_i64().unwrap();
        let (s, b) = api_as(
            &t,
            &ann_key,
            "/schedule/list",
            json!({"is_my_manage": true}),
        )
        .await;
        let managed = ok(s, &b);
        assert_eq!(total(managed.clone()), 1);
        assert_eq!(managed["items"][0]["schedule_id"], anns);
        let (s, b) = t.api("/schedule/list", json!({})).await;
        assert_eq!(total(ok(s, &b)), 3);

        // The member feed: my shifts only, across schedules; a download on request.
        let (s, b) = t.api("/schedule/self/feed/reset", json!({})).await;
        let feed_url = ok(s, &b)["feed_url"].as_str().unwrap().to_string();
        assert!(feed_url.contains("/calendar/member/"), "{feed_url}");
        let resp = t.http.get(&feed_url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/calendar; charset=utf-8"
        );
        let text = resp.text().await.unwrap();
        assert!(text.contains("SUMMARY:On call: Mine\r\n"), "{text}");
        assert!(!text.contains("Theirs"), "{text}");
        assert!(text.matches("BEGIN:VEVENT").count() >= 7, "{text}");
        let resp = t
            .http
            .get(format!("{feed_url}?download=1"))
            .send()
            .await
            .unwrap();
        assert!(
            resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        // Rotating retires the old URL.
        let (s, b) = t.api("/schedule/self/feed/reset", json!({})).await;
        let fresh = ok(s, &b)["feed_url"].as_str().unwrap().to_string();
        assert_ne!(fresh, feed_url);
        let resp = t.http.get(&feed_url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404);
        // A deleted member's feed stops working.
        let (s, b) = api_as(&t, &ann_key, "/schedule/self/feed/reset", json!({})).await;
        let anns_feed = ok(s, &b)["feed_url"].as_str().unwrap().to_string();
        let resp = t.http.get(&anns_feed).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp.text().await.unwrap().contains("My on-call: "));
        let (s, b) = t.api("/member/delete", json!({"member_id": ann})).await;
        ok(s, &b);
        let resp = t.http.get(&anns_feed).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404);
        t.stop().await;
    }
);

// spec: RSP-274 — the creator, the management team and the owner may edit a calendar; others
// only read it. Holiday sets are the owner's to load.
on_both_backends!(calendar_edit_rights, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let (ann, ann_key) = member_with_key(&t, "ann@example.com").await;
    let (s, b) = t.api("/team/upsert", json!({"team_name": "Desk"})).await;
    let desk = ok(s, &b)["team_id"].as_i64().unwrap();
    let (s, b) = t
        .api(
            "/calendar/create",
            json!({"cal_name": "Owner's", "team_id": desk}),
        )
        .await;
    let cal_id = ok(s, &b)["cal_id"].as_str().unwrap().to_string();

    // Ann reads but may not change it.
    let (s, b) = api_as(&t, &ann_key, "/calendar/info", json!({"cal_id": cal_id})).await;
    ok(s, &b);
    let (s, b) = api_as(
        &t,
        &ann_key,
        "/calendar/update",
        json!({"cal_id": cal_id, "cal_name": "Ann's now"}),
    )
    .await;
    err(s, &b, "AccessDenied");
    let (s, b) = api_as(&t, &ann_key, "/calendar/delete", json!({"cal_id": cal_id})).await;
    err(s, &b, "AccessDenied");
    let (s, b) = api_as(
        &t,
        &ann_key,
        "/calendar/event/upsert",
        json!({"cal_id": cal_id, "events": [{"date": "2025-10-01", "day_type": "restday"}]}),
    )
    .await;
    err(s, &b, "AccessDenied");
    let (s, b) = t.api("/calendar/info", json!({"cal_id": cal_id})).await;
    let info = ok(s, &b);
    assert_eq!(info["cal_name"], "Owner's");
    assert_eq!(info["date_overrides"], json!({}));

    // In the management team she may.
    let (s, b) = t
        .api(
            "/team/upsert",
            json!({"team_id": desk, "team_name": "Desk", "person_ids": [ann]}),
        )
        .await;
    ok(s, &b);
    let (s, b) = api_as(
        &t,
        &ann_key,
        "/calendar/update",
        json!({"cal_id": cal_id, "cal_name": "Desk days"}),
    )
    .await;
    ok(s, &b);
    // Her own calendar is hers to edit.
    let (s, b) = api_as(&t, &ann_key, "/calendar/create", json!({"cal_name": "Ann"})).await;
    let anns = ok(s, &b)["cal_id"].as_str().unwrap().to_string();
    let (s, b) = api_as(&t, &ann_key, "/calendar/delete", json!({"cal_id": anns})).await;
    ok(s, &b);

    let (s, b) = api_as(
        &t,
        &ann_key,
        "/calendar/holiday/import",
        json!({"id": "x", "entries": {"2025-01-01": "holiday"}}),
    )
    .await;
    err(s, &b, "AccessDenied");
    t.stop().await;
});

// spec: RSP-273, ING-133 — a silence rule whose time filter uses a calendar keeps it from
// being deleted, like a schedule mask or an escalation rule does
on_both_backends!(
    a_silence_rule_keeps_its_calendar,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let (s, b) = t
            .api("/calendar/create", json!({"cal_name": "Office hours"}))
            .await;
        let cal_id = ok(s, &b)["cal_id"].as_str().unwrap().to_string();
        let (s, b) = t
            .api("/channel/create", json!({"channel_name": "Quiet nights"}))
            .await;
        let ch = ok(s, &b)["channel_id"].as_i64().unwrap();
        let (s, b) = t
            .api(
                "/channel/silence/rule/create",
                json!({"channel_id": ch, "rule_name": "Out of hours",
                       "time_filters": [{"start": "18:00", "end": "09:00", "cal_id": cal_id}]}),
            )
            .await;
        let rule_id = ok(s, &b)["rule_id"].as_str().unwrap().to_string();
        let (s, b) = t.api("/calendar/delete", json!({"cal_id": cal_id})).await;
        let msg = err(s, &b, "ReferenceExist");
        assert!(msg.contains("silence rule \"Out of hours\""), "{msg}");
        let (s, b) = t.api("/calendar/info", json!({"cal_id": cal_id})).await;
        ok(s, &b);
        let (s, b) = t
            .api(
                "/channel/silence/rule/delete",
                json!({"channel_id": ch, "rule_id": rule_id}),
            )
            .await;
        ok(s, &b);
        let (s, b) = t.api("/calendar/delete", json!({"cal_id": cal_id})).await;
        ok(s, &b);
        t.stop().await;
    }
);
