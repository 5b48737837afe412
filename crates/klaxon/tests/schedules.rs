//! On-call schedules over the Open API (openapi-compat.md 2.8, response.md §1.13): create,
//! info with the computed views, update, list, delete, and validation errors that name the
//! field. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs};
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn ok(status: u16, body: &Value) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn err(body: &Value, code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// The persons of a wire `{start, end, group{members[]{role_id, person_ids[]}}}`.
fn persons(segment: &Value) -> Vec<i64> {
    let mut out: Vec<i64> = segment["group"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["person_ids"].as_array().unwrap().clone())
        .map(|p| p.as_i64().unwrap())
        .collect();
    out.sort_unstable();
    out
}

/// A weekly rotation (one person per group) that started three days ago, in UTC.
fn weekly_body(name: &str, first: i64, second: i64, layer_start: i64) -> Value {
    json!({
        "schedule_name": name,
        "description": "primary on-call",
        "time_zone": "UTC",
        "layers": [{
            "layer_name": "Weekly",
            "groups": [
                {"group_name": "A", "members": [{"person_id": first}]},
                // The wire form of a member list is accepted too.
                {"group_name": "B", "members": [{"role_id": 0, "person_ids": [second]}]}
            ],
            "layer_start": layer_start,
            "rotation_unit": "week",
            "rotation_value": 1,
            "restrict_mode": 0
        }]
    })
}

// spec: RSP-210, RSP-214, RSP-217, RSP-225, RSP-227, RSP-228
on_both_backends!(
    schedule_lifecycle_and_on_call_views,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let (s, b) = t.api("/member/info", json!({})).await;
        let owner = ok(s, &b)["member_id"].as_i64().unwrap();
        assert!(owner > 0);
        // Validation does not check that a person exists; any positive id is a member here.
        let other = 424_242;
        let now = now_secs();
        let layer_start = now - 3 * DAY;

        let (s, b) = t
            .api(
                "/schedule/create",
                weekly_body("Ops", owner, other, layer_start),
            )
            .await;
        let created = ok(s, &b);
        let id = created["schedule_id"].as_i64().unwrap();
        assert!(id > 0);
        assert_eq!(created["schedule_name"], "Ops");

        // spec: RSP-214, RSP-217, RSP-227 — the first week is group A (the owner), then B.
        let window = json!({"schedule_id": id, "start": now - 3600, "end": now + 14 * DAY});
        let (s, b) = t.api("/schedule/info", window.clone()).await;
        let info = ok(s, &b);
        assert_eq!(info["schedule_id"], id);
        assert_eq!(info["schedule_name"], "Ops");
        assert_eq!(info["time_zone"], "UTC");
        assert_eq!(info["layers"][0]["layer_start"], layer_start);
        assert_eq!(info["layers"][0]["restrict_mode"], 0);
        assert_eq!(persons(&info["cur_oncall"]), [owner]);
        assert_eq!(info["cur_oncall"]["start"], now - 3600);
        assert_eq!(info["cur_oncall"]["end"], layer_start + 7 * DAY);
        assert_eq!(persons(&info["next_oncall"]), [other]);
        assert_eq!(info["next_oncall"]["start"], layer_start + 7 * DAY);
        let finals = info["final_schedule"]["schedules"].as_array().unwrap();
        assert!(finals.len() >= 2, "{info}");
        assert_eq!(info["schedule_layers"], info["layer_schedules"]);

        // spec: RSP-225 — swapping the group order at e puts B on call from e on.
        let mut edit = weekly_body("Ops renamed", other, owner, layer_start);
        edit["schedule_id"] = json!(id);
        let (s, b) = t.api("/schedule/update", edit).await;
        assert_eq!(ok(s, &b)["schedule_id"], id);
        let (s, b) = t.api("/schedule/info", window.clone()).await;
        let info = ok(s, &b);
        assert_eq!(info["schedule_name"], "Ops renamed");
        assert_eq!(persons(&info["cur_oncall"]), [other]);
        assert_eq!(persons(&info["next_oncall"]), [owner]);
        // A partial update keeps the fields it leaves out.
        let (s, b) = t
            .api(
                "/schedule/update",
                json!({"schedule_id": id, "description": "changed"}),
            )
            .await;
        ok(s, &b);
        let (s, b) = t.api("/schedule/info", window.clone()).await;
        let info = ok(s, &b);
        assert_eq!(info["description"], "changed");
        assert_eq!(info["schedule_name"], "Ops renamed");
        assert_eq!(info["layers"].as_array().unwrap().len(), 1);

        // "Who is on call now": /schedule/list with a short window (openapi-compat.md 2.8).
        let (s, b) = t
            .api(
                "/schedule/create",
                weekly_body("Database", owner, other, layer_start),
            )
            .await;
        let db_id = ok(s, &b)["schedule_id"].as_i64().unwrap();
        let (s, b) = t
            .api("/schedule/list", json!({"start": now, "end": now + 3600}))
            .await;
        let list = ok(s, &b);
        assert_eq!(list["total"], 2);
        let items = list["items"].as_array().unwrap();
        assert_eq!(items[0]["schedule_id"], db_id);
        assert_eq!(items[1]["schedule_id"], id);
        assert_eq!(persons(&items[0]["cur_oncall"]), [owner]);
        assert_eq!(persons(&items[1]["cur_oncall"]), [other]);
        // Without a window, no computed views; `query` filters by name.
        let (s, b) = t.api("/schedule/list", json!({"query": "renamed"})).await;
        let list = ok(s, &b);
        assert_eq!(list["total"], 1);
        assert_eq!(list["items"][0]["schedule_id"], id);
        assert!(list["items"][0].get("cur_oncall").is_none());

        // Delete: gone from info and list; unknown ids are ResourceNotFound.
        let (s, b) = t
            .api("/schedule/delete", json!({"schedule_ids": [id]}))
            .await;
        ok(s, &b);
        let (_, b) = t.api("/schedule/info", window.clone()).await;
        err(&b, "ResourceNotFound");
        let (_, b) = t
            .api("/schedule/delete", json!({"schedule_ids": [id]}))
            .await;
        err(&b, "ResourceNotFound");
        let (_, b) = t
            .api(
                "/schedule/update",
                json!({"schedule_id": id, "description": "x"}),
            )
            .await;
        err(&b, "ResourceNotFound");
        let (s, b) = t.api("/schedule/list", json!({})).await;
        let list = ok(s, &b);
        assert_eq!(list["total"], 1);
        assert_eq!(list["items"][0]["schedule_id"], db_id);
        t.stop().await;
    }
);

// spec: RSP-227, RSP-228 — InvalidParameter names the offending field.
on_both_backends!(
    schedule_validation_names_the_field,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        let now = now_secs();
        let bad = |f: &dyn Fn(&mut Value)| {
            let mut body = weekly_body("Ops", 1, 2, now);
            f(&mut body);
            body
        };

        let (_, b) = t
            .api(
                "/schedule/create",
                bad(&|b| b["layers"][0]["rotation_value"] = json!(0)),
            )
            .await;
        assert!(
            err(&b, "InvalidParameter").contains("layers[0].rotation_value"),
            "{b}"
        );
        let (_, b) = t
            .api(
                "/schedule/create",
                bad(&|b| b["schedule_name"] = json!("x".repeat(41))),
            )
            .await;
        assert!(err(&b, "InvalidParameter").contains("schedule_name"), "{b}");
        let (_, b) = t
            .api(
                "/schedule/create",
                bad(&|b| b["time_zone"] = json!("Mars/Olympus")),
            )
            .await;
        assert!(err(&b, "InvalidParameter").contains("time_zone"), "{b}");
        let (_, b) = t
            .api(
                "/schedule/create",
                bad(&|b| b["layers"][0]["layer_end"] = json!(now - DAY)),
            )
            .await;
        assert!(
            err(&b, "InvalidParameter").contains("layers[0].layer_end"),
            "{b}"
        );
        let (_, b) = t
            .api(
                "/schedule/create",
                bad(&|b| b["layers"][0]["groups"] = json!([])),
            )
            .await;
        assert!(
            err(&b, "InvalidParameter").contains("layers[0].groups"),
            "{b}"
        );
        let (_, b) = t
            .api(
                "/schedule/create",
                bad(&|b| b["layers"][0]["restrict_mode"] = json!(7)),
            )
            .await;
        assert!(
            err(&b, "InvalidParameter").contains("layers[0].restrict_mode"),
            "{b}"
        );
        let (_, b) = t
            .api(
                "/schedule/create",
                bad(&|b| b["layers"][0]["rotation_unit"] = json!("year")),
            )
            .await;
        assert!(err(&b, "InvalidParameter").contains("layers[0]"), "{b}");

        let (s, b) = t
            .api("/schedule/create", weekly_body("Ok", 1, 2, now))
            .await;
        let id = ok(s, &b)["schedule_id"].as_i64().unwrap();
        // /schedule/info needs schedule_id, start and end; the window is < 45 days (RSP-227).
        let (_, b) = t
            .api("/schedule/info", json!({"start": now, "end": now + 60}))
            .await;
        assert!(err(&b, "InvalidParameter").contains("schedule_id"), "{b}");
        let (_, b) = t
            .api("/schedule/info", json!({"schedule_id": id, "end": now}))
            .await;
        assert!(err(&b, "InvalidParameter").contains("start"), "{b}");
        let (_, b) = t
            .api(
                "/schedule/info",
                json!({"schedule_id": id, "start": now, "end": now + 45 * DAY}),
            )
            .await;
        assert!(err(&b, "InvalidParameter").contains("end"), "{b}");
        let (s, b) = t
            .api(
                "/schedule/info",
                json!({"schedule_id": id, "start": now, "end": now + 45 * DAY - 1}),
            )
            .await;
        ok(s, &b);
        let (_, b) = t
            .api(
                "/schedule/info",
                json!({"schedule_id": id + 1000, "start": now, "end": now + 60}),
            )
            .await;
        err(&b, "ResourceNotFound");
        let (_, b) = t.api("/schedule/delete", json!({})).await;
        assert!(err(&b, "InvalidParameter").contains("schedule_ids"), "{b}");
        let (_, b) = t
            .api(
                "/schedule/update",
                json!({"schedule_id": id, "layers": [{"layer_name": "x"}]}),
            )
            .await;
        assert!(err(&b, "InvalidParameter").contains("layers[0]"), "{b}");
        t.stop().await;
    }
);

// spec: response.md §1.13 (`schedule_name` 1..40 characters, unique within the account)
on_both_backends!(schedule_names_are_unique, |url: String| async move {
    let mut t = TestServer::start(&url).await;
    let now = now_secs();
    let (s, b) = t
        .api("/schedule/create", weekly_body("Ops", 1, 2, now))
        .await;
    let ops = ok(s, &b)["schedule_id"].as_i64().unwrap();
    let (s, b) = t
        .api("/schedule/create", weekly_body("Database", 3, 4, now))
        .await;
    let database = ok(s, &b)["schedule_id"].as_i64().unwrap();
    let count = |b: &Value| b["data"]["total"].as_i64().unwrap();

    // A duplicate is refused, naming the field, and nothing is created.
    let (s, b) = t
        .api("/schedule/create", weekly_body("Ops", 5, 6, now))
        .await;
    assert_ne!(s, 200);
    assert!(err(&b, "InvalidParameter").contains("schedule_name"), "{b}");
    let (_, b) = t.api("/schedule/list", json!({})).await;
    assert_eq!(count(&b), 2, "{b}");

    // Renaming onto another schedule's name is refused; the schedule keeps its name and
    // its other fields (the same update also changes the description).
    let (s, b) = t
        .api(
            "/schedule/update",
            json!({"schedule_id": database, "schedule_name": "Ops", "description": "x"}),
        )
        .await;
    assert_ne!(s, 200);
    assert!(err(&b, "InvalidParameter").contains("schedule_name"), "{b}");
    let (s, b) = t
        .api(
            "/schedule/info",
            json!({"schedule_id": database, "start": now, "end": now + 60}),
        )
        .await;
    let kept = ok(s, &b);
    assert_eq!(kept["schedule_name"], "Database");
    assert_eq!(kept["description"], "primary on-call");

    // Keeping one's own name is fine.
    let (s, b) = t
        .api(
            "/schedule/update",
            json!({"schedule_id": database, "schedule_name": "Database", "description": "db"}),
        )
        .await;
    ok(s, &b);

    // Deleting a schedule frees its name.
    let (s, b) = t
        .api("/schedule/delete", json!({"schedule_ids": [ops]}))
        .await;
    ok(s, &b);
    let (s, b) = t
        .api("/schedule/create", weekly_body("Ops", 5, 6, now))
        .await;
    ok(s, &b);

    // The other bounds of the name: empty and over 40 characters are refused.
    for name in [String::new(), "x".repeat(41)] {
        let (s, b) = t
            .api("/schedule/create", weekly_body(&name, 1, 2, now))
            .await;
        assert_ne!(s, 200, "{name}");
        assert!(err(&b, "InvalidParameter").contains("schedule_name"), "{b}");
    }
    let (s, b) = t
        .api("/schedule/create", weekly_body(&"y".repeat(40), 1, 2, now))
        .await;
    ok(s, &b);
    t.stop().await;
});

// spec: RSP-221, RSP-222 with the wire's integer restriction fields (openapi-compat.md 2.8;
// response.md §1.13 leaves their encoding to us): `restrict_start`/`restrict_end` become one
// period, round-trip in responses, decide who is on call, and are refused when they cannot be
// read — never silently dropped.
on_both_backends!(
    restrict_start_and_end_make_one_period,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;
        // Midnight UTC two days ago: a daily 09:00–17:00 restriction is then easy to probe.
        let now = now_secs();
        let midnight = now - now % DAY - 2 * DAY;
        let mut body = weekly_body("Office hours", 1, 2, midnight);
        body["layers"][0]["restrict_mode"] = json!(1);
        body["layers"][0]["restrict_start"] = json!(9 * 3600);
        body["layers"][0]["restrict_end"] = json!(17 * 3600);
        let (s, b) = t.api("/schedule/create", body).await;
        let id = ok(s, &b)["schedule_id"].as_i64().unwrap();
        let day = midnight + 2 * DAY; // today, 00:00 UTC
        let (s, b) = t
            .api(
                "/schedule/info",
                json!({"schedule_id": id, "start": day, "end": day + DAY}),
            )
            .await;
        let info = ok(s, &b);
        let layer = &info["layers"][0];
        assert_eq!(layer["restrict_mode"], 1);
        assert_eq!(
            layer["restrict_periods"],
            json!([{"start": "09:00", "end": "17:00"}])
        );
        assert_eq!(
            (
                layer["restrict_start"].clone(),
                layer["restrict_end"].clone()
            ),
            (json!(32_400), json!(61_200))
        );
        let finals = info["final_schedule"]["schedules"].as_array().unwrap();
        assert_eq!(finals.len(), 1, "{info}");
        assert_eq!(finals[0]["start"], day + 9 * 3600);
        assert_eq!(finals[0]["end"], day + 17 * 3600);

        // Weekly: Saturday 10:00 → Sunday 18:00 as seconds from Sunday 00:00.
        let mut body = weekly_body("Weekend", 1, 2, midnight);
        body["layers"][0]["restrict_mode"] = json!(2);
        body["layers"][0]["restrict_start"] = json!(6 * DAY + 10 * 3600);
        body["layers"][0]["restrict_end"] = json!(18 * 3600);
        let (s, b) = t.api("/schedule/create", body).await;
        let id = ok(s, &b)["schedule_id"].as_i64().unwrap();
        let (s, b) = t
            .api(
                "/schedule/info",
                json!({"schedule_id": id, "start": now, "end": now + 60}),
            )
            .await;
        let layer = ok(s, &b)["layers"][0].clone();
        assert_eq!(
            layer["restrict_periods"],
            json!([{"start_weekday": 6, "start": "10:00", "end_weekday": 0, "end": "18:00"}])
        );
        assert_eq!(layer["restrict_start"], 6 * DAY + 10 * 3600);

        // The zeros a read renders for a layer without a restriction are accepted back.
        let mut body = weekly_body("Zeros", 1, 2, midnight);
        body["layers"][0]["restrict_start"] = json!(0);
        body["layers"][0]["restrict_end"] = json!(0);
        let (s, b) = t.api("/schedule/create", body).await;
        ok(s, &b);

        // Refused, naming the field: no mode, off the minute, out of range.
        let cases = [
            (json!(0), json!(9 * 3600), json!(17 * 3600), "restrict_mode"),
            (
                json!(1),
                json!(9 * 3600 + 1),
                json!(17 * 3600),
                "restrict_start",
            ),
            (json!(1), json!(9 * 3600), json!(DAY), "restrict_end"),
        ];
        for (mode, start, end, field) in cases {
            let mut body = weekly_body("Bad", 1, 2, midnight);
            body["layers"][0]["restrict_mode"] = mode;
            body["layers"][0]["restrict_start"] = start;
            body["layers"][0]["restrict_end"] = end;
            let (_, b) = t.api("/schedule/create", body).await;
            let msg = err(&b, "InvalidParameter");
            assert!(
                msg.contains(&format!("layers[0].{field}")) || msg.contains(field),
                "{b}"
            );
        }
        t.stop().await;
    }
);
