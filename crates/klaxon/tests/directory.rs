//! Members and teams over the Open API (openapi-compat.md 2.9, 2.10; response.md §1.3, §1.4,
//! §2.30): teams CRUD, invitations, the member list, deletion and profile resets, person
//! lookups, validation errors that name the field, and isolation between accounts.
//! SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs};
use klaxon_store::{BootstrapSeed, Store, StoreOptions};
use serde_json::{Value, json};

fn ok(status: u16, body: &Value) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn err(status: u16, body: &Value, code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "{body}");
    let expected = match code {
        "Unauthorized" => 401,
        _ => 400,
    };
    assert_eq!(status, expected, "{body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// A fresh 32-hex APP key (unique within the test process).
fn hex_key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{nanos:016x}{:016x}",
        N.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id())
    )
}

/// A second handle on the server's database, for arranging what the API cannot (another
/// account, a member's APP key).
async fn store_of(ts: &TestServer) -> Store {
    let url = common::test_config(ts.dir.path(), &ts.database_url).effective_database_url();
    Store::connect(&url, StoreOptions::default()).await.unwrap()
}

/// Creates a second account; returns (its APP key, its owner's member id).
async fn second_account(ts: &TestServer) -> (String, i64) {
    let store = store_of(ts).await;
    let seed = BootstrapSeed {
        account_name: "Other".into(),
        owner_email: "boss@other.example".into(),
        owner_name: "Boss".into(),
        owner_password: "another long password".into(),
        app_key: hex_key(),
        integration_key: hex_key(),
    };
    let b = store
        .create_account(&seed, now_secs() * 1000)
        .await
        .unwrap();
    store.close().await;
    (b.app_key, b.owner_member_id)
}

/// Calls `path` with another APP key.
async fn api_as(ts: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = ts
        .http
        .post(format!("{}{path}?app_key={key}", ts.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Invites `members` and returns their ids in order.
async fn invite(ts: &TestServer, members: Value) -> Vec<i64> {
    let (s, b) = ts
        .api("/member/invite", json!({ "members": members }))
        .await;
    ok(s, &b)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member_id"].as_i64().unwrap())
        .collect()
}

async fn member_total(ts: &TestServer) -> i64 {
    let (s, b) = ts.api("/member/list", json!({})).await;
    ok(s, &b)["total"].as_i64().unwrap()
}

async fn owner_id(ts: &TestServer) -> i64 {
    let (s, b) = ts.api("/member/info", json!({})).await;
    ok(s, &b)["member_id"].as_i64().unwrap()
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

// spec: openapi-compat 2.9, RSP §1.4, RSP-554, RSP-556
on_both_backends!(teams_upsert_info_list_delete, |url: String| async move {
    let ts = TestServer::start(&url).await;
    let owner = owner_id(&ts).await;
    let people = invite(
        &ts,
        json!([
            {"email": "ann@example.com"},
            {"email": "bob@example.com", "phone": "+14155550100"}
        ]),
    )
    .await;
    let (ann, bob) = (people[0], people[1]);

    // Create with person_ids; members by email and phone (countryCode camelCase) join them.
    let (s, b) = ts
        .api(
            "/team/upsert",
            json!({"team_name": "Ops", "description": "first line", "person_ids": [ann],
                   "phones": ["4155550100"], "countryCode": "US", "ref_id": "ext-ops"}),
        )
        .await;
    let created = ok(s, &b);
    let ops = created["team_id"].as_i64().unwrap();
    assert_eq!(created["team_name"], "Ops");

    let (s, b) = ts.api("/team/info", json!({"team_id": ops})).await;
    let info = ok(s, &b);
    assert_eq!(ids(&info["person_ids"]), vec![ann, bob]);
    assert_eq!(info["description"], "first line");
    assert_eq!(info["ref_id"], "ext-ops");
    assert_eq!(info["creator_id"], owner);
    assert_eq!(info["creator_name"], "Owner");
    let created_at = info["created_at"].as_i64().unwrap();
    assert!((created_at - now_secs()).abs() < 60, "seconds on the wire");
    // By name and by ref_id (team_id > team_name > ref_id).
    for body in [json!({"team_name": "Ops"}), json!({"ref_id": "ext-ops"})] {
        let (s, b) = ts.api("/team/info", body).await;
        assert_eq!(ok(s, &b)["team_id"], ops);
    }

    // spec: RSP §1.4 — names unique in the account; reset_if_name_exist updates instead.
    let (s, b) = ts.api("/team/upsert", json!({"team_name": "Ops"})).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("team_name"));
    let (s, b) = ts
        .api(
            "/team/upsert",
            json!({"team_name": "Ops", "reset_if_name_exist": true,
                   "emails": ["BOB@example.com"], "person_ids": []}),
        )
        .await;
    assert_eq!(ok(s, &b)["team_id"], ops);
    let (s, b) = ts.api("/team/info", json!({"team_id": ops})).await;
    let info = ok(s, &b);
    assert_eq!(
        ids(&info["person_ids"]),
        vec![bob],
        "person_ids replaces the list"
    );
    assert_eq!(info["description"], "first line", "absent fields are kept");

    // Update by id: rename; without person_ids the members stay.
    let (s, b) = ts
        .api(
            "/team/upsert",
            json!({"team_id": ops, "team_name": "Operations"}),
        )
        .await;
    assert_eq!(ok(s, &b)["team_name"], "Operations");

    // List: p and limit echoed, query, person_id, orderby.
    for name in ["Dev", "QA"] {
        let (s, b) = ts
            .api(
                "/team/upsert",
                json!({"team_name": name, "person_ids": [ann]}),
            )
            .await;
        ok(s, &b);
    }
    let (s, b) = ts
        .api(
            "/team/list",
            json!({"p": 1, "limit": 2, "orderby": "team_name", "asc": true}),
        )
        .await;
    let page = ok(s, &b);
    assert_eq!(
        (page["p"].as_i64(), page["limit"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(page["total"], 3);
    assert_eq!(page["has_next_page"], true);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Dev", "Operations"]);
    let (s, b) = ts.api("/team/list", json!({"query": "erat"})).await;
    assert_eq!(ok(s, &b)["items"][0]["team_id"], ops);
    let (s, b) = ts.api("/team/list", json!({"person_id": bob})).await;
    let mine = ok(s, &b);
    assert_eq!(
        (mine["total"].as_i64(), &mine["items"][0]["team_id"]),
        (Some(1), &json!(ops))
    );
    // Paging values ≤ 0 take the defaults (openapi-compat 1.3).
    let (s, b) = ts.api("/team/list", json!({"p": -1, "limit": 0})).await;
    let page = ok(s, &b);
    assert_eq!(
        (page["p"].as_i64(), page["limit"].as_i64()),
        (Some(1), Some(20))
    );

    // Infos: unknown ids are left out.
    let (s, b) = ts
        .api("/team/infos", json!({"team_ids": [ops, 987_654]}))
        .await;
    let items = ok(s, &b)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["team_name"], "Operations");

    // Delete by name; then it is gone everywhere.
    let (s, b) = ts
        .api("/team/delete", json!({"team_name": "Operations"}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["data"].is_null(), "{b}");
    let (s, b) = ts.api("/team/info", json!({"team_id": ops})).await;
    assert!(err(s, &b, "ResourceNotFound").starts_with("team_id"));
    let (s, b) = ts.api("/team/delete", json!({"team_id": ops})).await;
    err(s, &b, "ResourceNotFound");
    let (s, b) = ts.api("/team/list", json!({})).await;
    assert_eq!(ok(s, &b)["total"], 2);
});

// spec: openapi-compat 2.9, RSP §1.4 (validation names the field and changes nothing)
on_both_backends!(teams_validation, |url: String| async move {
    let ts = TestServer::start(&url).await;
    let cases = [
        (json!({}), "team_name is required"),
        (
            json!({"team_name": "x".repeat(40)}),
            "team_name must be at most 39",
        ),
        (
            json!({"team_name": "A", "description": "d".repeat(501)}),
            "description must be at most 500",
        ),
        (
            json!({"team_name": "A", "person_ids": "1"}),
            "person_ids must be an array",
        ),
        (
            json!({"team_name": "A", "person_ids": [-3]}),
            "person_ids must hold positive ids",
        ),
        (
            json!({"team_name": "A", "emails": ["not-an-email"]}),
            "emails[0] is not a valid email",
        ),
        (
            json!({"team_name": "A", "phones": ["5550100"]}),
            "phones[0] must be in E.164 form",
        ),
        (
            json!({"team_name": "A", "team_id": -1}),
            "team_id must be a positive id",
        ),
    ];
    for (body, expected) in cases {
        let (s, b) = ts.api("/team/upsert", body.clone()).await;
        let msg = err(s, &b, "InvalidParameter");
        assert!(msg.starts_with(expected), "{body}: {msg}");
    }
    // Unknown references are ResourceNotFound naming the field.
    let (s, b) = ts
        .api(
            "/team/upsert",
            json!({"team_name": "A", "person_ids": [424_242]}),
        )
        .await;
    assert!(err(s, &b, "ResourceNotFound").contains("424242"));
    let (s, b) = ts
        .api(
            "/team/upsert",
            json!({"team_name": "A", "emails": ["ghost@example.com"]}),
        )
        .await;
    assert!(err(s, &b, "ResourceNotFound").starts_with("emails"));
    let (s, b) = ts
        .api(
            "/team/upsert",
            json!({"team_id": 424_242, "team_name": "A"}),
        )
        .await;
    assert!(err(s, &b, "ResourceNotFound").starts_with("team_id"));
    let (s, b) = ts.api("/team/info", json!({})).await;
    assert_eq!(
        err(s, &b, "InvalidParameter"),
        "team_id, team_name or ref_id is required"
    );
    let (s, b) = ts.api("/team/infos", json!({})).await;
    assert_eq!(err(s, &b, "InvalidParameter"), "team_ids is required");
    let (s, b) = ts.api("/team/list", json!({"orderby": "size"})).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("orderby"));
    let (s, b) = ts.api("/team/list", json!({})).await;
    assert_eq!(ok(s, &b)["total"], 0, "nothing was created");
});

// spec: RSP-550, RSP-551, RSP-552, openapi-compat 2.10 (/member/invite, /member/list)
on_both_backends!(members_invite_and_list, |url: String| async move {
    let ts = TestServer::start(&url).await;
    let (s, b) = ts.api("/member/info", json!({})).await;
    let owner_email = ok(s, &b)["email"].as_str().unwrap().to_string();
    let (s, b) = ts
        .api(
            "/member/invite",
            json!({"members": [
                {"email": "jane.doe@example.com"},
                {"member_name": "Li Lei", "phone": "13800138000", "country_code": "CN",
                 "role_ids": [6], "locale": "zh-CN", "time_zone": "Asia/Shanghai",
                 "ref_id": "hr-42"}
            ]}),
        )
        .await;
    let items = ok(s, &b)["items"].as_array().unwrap().clone();
    // The name defaults to the email's local part (RSP-550).
    assert_eq!(items[0]["member_name"], "jane.doe");
    assert_eq!(items[1]["member_name"], "Li Lei");
    let (jane, li) = (
        items[0]["member_id"].as_i64().unwrap(),
        items[1]["member_id"].as_i64().unwrap(),
    );

    let (s, b) = ts
        .api(
            "/member/list",
            json!({"orderby": "created_at", "asc": true}),
        )
        .await;
    let page = ok(s, &b);
    // /member/list defaults to 100 per page and echoes p and limit (openapi-compat 1.6).
    assert_eq!(
        (page["p"].as_i64(), page["limit"].as_i64()),
        (Some(1), Some(100))
    );
    assert_eq!(page["total"], 3);
    let list = page["items"].as_array().unwrap();
    assert_eq!(list[0]["status"], "enabled", "the owner");
    assert_eq!(list[0]["is_account_owner"], true);
    let j = list.iter().find(|m| m["member_id"] == jane).unwrap();
    // RSP-551: invited members are pending; API invitations without roles get Viewer.
    assert_eq!(j["status"], "pending");
    assert_eq!(j["account_role_ids"], json!([8]));
    assert_eq!(j["email_verified"], false);
    let l = list.iter().find(|m| m["member_id"] == li).unwrap();
    // The phone is stored in E.164 and shown masked.
    assert_eq!(l["phone"], "+86*******8000");
    assert_eq!(l["country_code"], "CN");
    assert_eq!(l["account_role_ids"], json!([6]));
    assert_eq!(
        (l["locale"].as_str(), l["time_zone"].as_str()),
        (Some("zh-CN"), Some("Asia/Shanghai"))
    );
    assert_eq!(l["ref_id"], "hr-42");

    // Query on name, email or phone; role filter; paging.
    for (q, who) in [("JANE.DOE", jane), ("li lei", li), ("1380013", li)] {
        let (s, b) = ts.api("/member/list", json!({"query": q})).await;
        let page = ok(s, &b);
        assert_eq!(page["total"], 1, "{q}");
        assert_eq!(page["items"][0]["member_id"], who, "{q}");
        // openapi-compat.md 1.3: one id space, so a list item's person_id is its member_id.
        assert_eq!(page["items"][0]["person_id"], who, "{q}");
    }
    let (s, b) = ts.api("/member/list", json!({"role_id": 8})).await;
    assert_eq!(ok(s, &b)["items"][0]["member_id"], jane);
    let (s, b) = ts.api("/member/list", json!({"p": 2, "limit": 2})).await;
    let page = ok(s, &b);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["has_next_page"], false);

    // spec: RSP-552 — duplicates are refused (case-insensitive email, E.164 phone), and a
    // refused request invites nobody.
    let dups = [
        json!([{"email": "new@example.com"}, {"email": "JANE.DOE@example.com"}]),
        json!([{"member_name": "Dup", "phone": "+86 138 0013 8000"}]),
        json!([{"email": "a@example.com"}, {"email": "A@example.com"}]),
        json!([{"email": owner_email.to_uppercase()}]),
    ];
    for members in dups {
        let (s, b) = ts
            .api("/member/invite", json!({ "members": members }))
            .await;
        let msg = err(s, &b, "InvalidParameter");
        assert!(msg.starts_with("members["), "{msg}");
    }
    assert_eq!(member_total(&ts).await, 3);
});

// spec: RSP-550, RSP §1.3, openapi-compat 2.10 (invitation validation names the field)
on_both_backends!(members_invite_validation, |url: String| async move {
    let ts = TestServer::start(&url).await;
    let twenty_one: Vec<Value> = (0..21)
        .map(|i| json!({"email": format!("p{i}@example.com")}))
        .collect();
    let long_email = format!("{}@{}.com", "a".repeat(60), "b".repeat(200));
    let cases = [
        (json!({}), "members is required"),
        (json!({"members": []}), "members is required"),
        (
            json!({"members": twenty_one}),
            "members must hold at most 20",
        ),
        (
            json!({"members": [{}]}),
            "members[0]: email or phone is required",
        ),
        (
            json!({"members": [{"email": "nope"}]}),
            "members[0].email is not a valid email",
        ),
        (
            json!({"members": [{"email": long_email}]}),
            "members[0].email must be at most 254",
        ),
        (
            json!({"members": [{"email": "ok@example.com", "member_name": "n".repeat(41)}]}),
            "members[0].member_name must be at most 40",
        ),
        (
            json!({"members": [{"phone": "+14155550100"}]}),
            "members[0].member_name is required for a phone invitation",
        ),
        (
            json!({"members": [{"email": "ok@example.com"}, {"email": "ok2@example.com", "role_ids": [3]}]}),
            "members[1].role_ids has an unknown role id 3",
        ),
        (
            json!({"members": [{"email": "ok@example.com", "locale": "fr-FR"}]}),
            "members[0].locale must be en-US or zh-CN",
        ),
        (
            json!({"members": [{"email": "ok@example.com", "time_zone": "Mars/Base"}]}),
            "members[0].time_zone is not a known IANA time zone",
        ),
        (
            json!({"members": [{"member_name": "P", "phone": "12ab"}]}),
            "members[0].phone must contain only digits",
        ),
    ];
    for (body, expected) in cases {
        let (s, b) = ts.api("/member/invite", body.clone()).await;
        let msg = err(s, &b, "InvalidParameter");
        assert!(msg.starts_with(expected), "{body}: {msg}");
    }
    assert_eq!(member_total(&ts).await, 1, "only the owner");
});

// spec: RSP-553, RSP-523, RSP-611, openapi-compat 2.10 (/member/delete, /member/info/reset)
on_both_backends!(members_delete_and_reset, |url: String| async move {
    let ts = TestServer::start(&url).await;
    let owner = owner_id(&ts).await;
    let people = invite(
        &ts,
        json!([
            {"email": "ann@example.com", "member_name": "Ann"},
            {"email": "bob@example.com", "member_name": "Bob", "phone": "+14155550100"},
            {"email": "t1@example.com", "member_name": "Twin"},
            {"email": "t2@example.com", "member_name": "Twin"}
        ]),
    )
    .await;
    let (ann, bob) = (people[0], people[1]);
    let (s, b) = ts
        .api(
            "/team/upsert",
            json!({"team_name": "Ops", "person_ids": [ann, bob]}),
        )
        .await;
    let team = ok(s, &b)["team_id"].as_i64().unwrap();
    // Ann holds an APP key of her own.
    let ann_key = hex_key();
    let store = store_of(&ts).await;
    let (s, b) = ts.api("/account/info", json!({})).await;
    let account = ok(s, &b)["account_id"].as_i64().unwrap();
    store
        .add_app_key(account, ann, "ann", &ann_key, now_secs() * 1000)
        .await
        .unwrap()
        .unwrap();
    store.close().await;
    let (s, b) = api_as(&ts, &ann_key, "/member/info", json!({})).await;
    assert_eq!(ok(s, &b)["member_id"], ann);

    // Reset by email: name, phone (E.164 from a region), locale, time zone, ref_id.
    let (s, b) = ts
        .api(
            "/member/info/reset",
            json!({"email": "ANN@example.com", "updates": {
                "member_name": "Ann Lee", "phone": "4155550123", "country_code": "US",
                "locale": "zh-CN", "time_zone": "Europe/Berlin", "ref_id": "hr-1"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = ts.api("/member/list", json!({"query": "ann lee"})).await;
    let m = ok(s, &b)["items"][0].clone();
    assert_eq!(m["member_id"], ann);
    assert_eq!(m["phone"], "+14*****0123");
    assert_eq!(
        (
            m["locale"].as_str(),
            m["time_zone"].as_str(),
            m["ref_id"].as_str()
        ),
        (Some("zh-CN"), Some("Europe/Berlin"), Some("hr-1"))
    );
    // Lookup precedence: member_id wins over a member_name that names someone else.
    let (s, b) = ts
        .api(
            "/member/info/reset",
            json!({"member_id": bob, "member_name": "Ann Lee", "updates": {"member_name": "Bobby"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = ts
        .api("/person/infos", json!({"person_ids": [bob, ann]}))
        .await;
    let items = ok(s, &b)["items"].as_array().unwrap().clone();
    assert_eq!(items[0]["person_name"], "Ann Lee");
    assert_eq!(items[1]["person_name"], "Bobby");

    // Reset errors: each names its field and changes nothing.
    let cases = [
        (
            json!({"member_id": ann}),
            "InvalidParameter",
            "updates is required",
        ),
        (
            json!({"member_id": ann, "updates": {}}),
            "InvalidParameter",
            "updates must change",
        ),
        (
            json!({"updates": {"member_name": "X"}}),
            "InvalidParameter",
            "member_id, member_name",
        ),
        (
            json!({"member_id": ann, "updates": {"email": "BOB@example.com"}}),
            "InvalidParameter",
            "updates.email",
        ),
        (
            json!({"member_id": ann, "updates": {"phone": "+14155550100"}}),
            "InvalidParameter",
            "updates.phone",
        ),
        (
            json!({"member_id": ann, "updates": {"member_name": "y".repeat(41)}}),
            "InvalidParameter",
            "updates.member_name",
        ),
        (
            json!({"member_id": ann, "updates": {"email": "bad"}}),
            "InvalidParameter",
            "updates.email",
        ),
        (
            json!({"member_name": "Twin", "updates": {"locale": "en-US"}}),
            "InvalidParameter",
            "member_name: several members",
        ),
        (
            json!({"member_id": 515_151, "updates": {"locale": "en-US"}}),
            "ResourceNotFound",
            "member_id",
        ),
        (
            json!({"ref_id": "nobody", "updates": {"locale": "en-US"}}),
            "ResourceNotFound",
            "ref_id",
        ),
    ];
    for (body, code, expected) in cases {
        let (s, b) = ts.api("/member/info/reset", body.clone()).await;
        let msg = err(s, &b, code);
        assert!(msg.starts_with(expected), "{body}: {msg}");
    }
    let (s, b) = ts.api("/person/infos", json!({"person_ids": [ann]})).await;
    assert_eq!(ok(s, &b)["items"][0]["email"], "ann@example.com");

    // Ann and Bob take turns in a schedule.
    let (s, b) = ts
        .api(
            "/schedule/create",
            json!({"schedule_name": "Primary", "time_zone": "UTC", "layers": [{
                "layer_name": "Daily",
                "groups": [{"members": [{"person_id": ann}]}, {"members": [{"person_id": bob}]}],
                "layer_start": now_secs() - 86_400, "rotation_unit": "day", "rotation_value": 1}]}),
        )
        .await;
    let schedule = ok(s, &b)["schedule_id"].as_i64().unwrap();

    // spec: RSP-523 — the owner cannot be deleted.
    let (s, b) = ts.api("/member/delete", json!({"member_id": owner})).await;
    assert!(err(s, &b, "BadRequest").contains("owner"));

    // spec: RSP-553 — delete by phone: status deleted, out of teams, APP keys revoked.
    let (s, b) = ts
        .api("/member/delete", json!({"phone": "+1 415 555 0123"}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["data"].is_null());
    let (s, b) = api_as(&ts, &ann_key, "/member/info", json!({})).await;
    err(s, &b, "Unauthorized");
    let (s, b) = ts.api("/team/info", json!({"team_id": team})).await;
    assert_eq!(ids(&ok(s, &b)["person_ids"]), vec![bob]);
    let (s, b) = ts.api("/member/list", json!({})).await;
    let listed = ok(s, &b);
    assert_eq!(listed["total"], 4);
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["member_id"] != ann)
    );
    // spec: RSP-226 — Ann has left the schedule's groups; her group stays, empty.
    let (s, b) = ts
        .api(
            "/schedule/info",
            json!({"schedule_id": schedule, "start": now_secs(), "end": now_secs() + 3600}),
        )
        .await;
    let groups = ok(s, &b)["layers"][0]["groups"].clone();
    assert_eq!(groups[0]["members"], json!([]), "{groups}");
    assert_eq!(groups[1]["members"][0]["person_id"], bob, "{groups}");
    // History still resolves the person by id, shown by name with status deleted.
    let (s, b) = ts.api("/person/infos", json!({"person_ids": [ann]})).await;
    let p = ok(s, &b)["items"][0].clone();
    assert_eq!(
        (p["person_name"].as_str(), p["status"].as_str()),
        (Some("Ann Lee"), Some("deleted"))
    );
    // Deleting again, or by another key of the gone member, finds nothing.
    let (s, b) = ts.api("/member/delete", json!({"member_id": ann})).await;
    err(s, &b, "ResourceNotFound");
    let (s, b) = ts.api("/member/delete", json!({"ref_id": "hr-1"})).await;
    err(s, &b, "ResourceNotFound");
    // The address may be invited again, as a new member.
    let again = invite(&ts, json!([{"email": "ann@example.com"}])).await;
    assert_ne!(again[0], ann);
});

// spec: openapi-compat 2.10 (/person/infos)
on_both_backends!(person_infos, |url: String| async move {
    let ts = TestServer::start(&url).await;
    let owner = owner_id(&ts).await;
    let people = invite(
        &ts,
        json!([{"member_name": "Pat", "phone": "+4930123456789"}]),
    )
    .await;
    let (s, b) = ts
        .api(
            "/person/infos",
            json!({"person_ids": [people[0], owner, 999_999]}),
        )
        .await;
    let items = ok(s, &b)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "unknown ids are left out");
    assert_eq!(items[0]["person_id"], owner);
    assert_eq!(items[0]["person_name"], "Owner");
    assert_eq!(items[0]["status"], "enabled");
    assert_eq!(items[1]["person_name"], "Pat");
    assert_eq!(items[1]["email"], "");
    assert_eq!(items[1]["phone"], "+49*******6789");
    assert_eq!(items[1]["status"], "pending");
    let (s, b) = ts.api("/person/infos", json!({})).await;
    assert_eq!(err(s, &b, "InvalidParameter"), "person_ids is required");
    let (s, b) = ts.api("/person/infos", json!({"person_ids": ["x"]})).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("person_ids"));
});

// spec: DESIGN.md principle 6, openapi-compat 2.9 and 2.10 — another account's ids behave as
// unknown on every endpoint, and nothing of theirs changes.
on_both_backends!(cross_account_isolation, |url: String| async move {
    let ts = TestServer::start(&url).await;
    let (b_key, b_owner) = second_account(&ts).await;
    // Account B: a member and a team.
    let (s, b) = api_as(
        &ts,
        &b_key,
        "/member/invite",
        json!({"members": [{"email": "bea@other.example", "member_name": "Bea",
                            "phone": "+14155550177", "ref_id": "b-ref"}]}),
    )
    .await;
    let bea = ok(s, &b)["items"][0]["member_id"].as_i64().unwrap();
    let (s, b) = api_as(
        &ts,
        &b_key,
        "/team/upsert",
        json!({"team_name": "B-Team", "person_ids": [bea], "ref_id": "b-team"}),
    )
    .await;
    let b_team = ok(s, &b)["team_id"].as_i64().unwrap();

    // Through account A's key, B's ids are unknown.
    let not_found = [
        ("/team/info", json!({"team_id": b_team})),
        ("/team/info", json!({"team_name": "B-Team"})),
        ("/team/info", json!({"ref_id": "b-team"})),
        ("/team/delete", json!({"team_id": b_team})),
        ("/team/delete", json!({"team_name": "B-Team"})),
        (
            "/team/upsert",
            json!({"team_id": b_team, "team_name": "Hijacked"}),
        ),
        (
            "/team/upsert",
            json!({"team_name": "Poach", "person_ids": [bea]}),
        ),
        (
            "/team/upsert",
            json!({"team_name": "Poach", "emails": ["bea@other.example"]}),
        ),
        ("/member/delete", json!({"member_id": bea})),
        ("/member/delete", json!({"member_id": b_owner})),
        ("/member/delete", json!({"email": "bea@other.example"})),
        ("/member/delete", json!({"phone": "+14155550177"})),
        ("/member/delete", json!({"ref_id": "b-ref"})),
        (
            "/member/info/reset",
            json!({"member_id": bea, "updates": {"member_name": "Hijacked"}}),
        ),
        (
            "/member/info/reset",
            json!({"member_name": "Bea", "updates": {"member_name": "Hijacked"}}),
        ),
    ];
    for (path, body) in not_found {
        let (s, b) = ts.api(path, body.clone()).await;
        let msg = err(s, &b, "ResourceNotFound");
        assert!(!msg.is_empty(), "{path} {body}");
    }
    let (s, b) = ts.api("/team/infos", json!({"team_ids": [b_team]})).await;
    assert_eq!(ok(s, &b)["items"], json!([]));
    let (s, b) = ts
        .api("/person/infos", json!({"person_ids": [bea, b_owner]}))
        .await;
    assert_eq!(ok(s, &b)["items"], json!([]));
    let (s, b) = ts.api("/team/list", json!({})).await;
    assert_eq!(ok(s, &b)["total"], 0);
    let (s, b) = ts.api("/team/list", json!({"person_id": bea})).await;
    assert_eq!(ok(s, &b)["total"], 0);
    let (s, b) = ts.api("/member/list", json!({"query": "bea"})).await;
    assert_eq!(ok(s, &b)["total"], 0);
    assert_eq!(member_total(&ts).await, 1);
    // A's own invitation of the same address and phone is fine: uniqueness is per account.
    let mine = invite(
        &ts,
        json!([{"email": "bea@other.example", "member_name": "Bea", "phone": "+14155550177"}]),
    )
    .await;
    assert_ne!(mine[0], bea);

    // Nothing of B's changed.
    let (s, b) = api_as(&ts, &b_key, "/team/info", json!({"team_id": b_team})).await;
    let team = ok(s, &b);
    assert_eq!(team["team_name"], "B-Team");
    assert_eq!(ids(&team["person_ids"]), vec![bea]);
    let (s, b) = api_as(&ts, &b_key, "/member/list", json!({"asc": true})).await;
    let list = ok(s, &b);
    assert_eq!(list["total"], 2);
    let bea_now = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member_id"] == bea)
        .unwrap()
        .clone();
    assert_eq!(
        (bea_now["member_name"].as_str(), bea_now["status"].as_str()),
        (Some("Bea"), Some("pending"))
    );
    // And B's key cannot reach A's data either.
    let (s, b) = api_as(&ts, &b_key, "/member/delete", json!({"member_id": mine[0]})).await;
    err(s, &b, "ResourceNotFound");
    let (s, b) = api_as(
        &ts,
        &b_key,
        "/person/infos",
        json!({"person_ids": [mine[0]]}),
    )
    .await;
    assert_eq!(ok(s, &b)["items"], json!([]));
});

// spec: RSP-556 — fuzzy name search (every word, any order, any case), "my teams", and any
// member may leave a team they belong to.
on_both_backends!(teams_search_mine_and_leave, |url: String| async move {
    let ts = TestServer::start(&url).await;
    let owner = owner_id(&ts).await;
    let people = invite(
        &ts,
        json!([{"email": "ann@example.com", "role_ids": [8]},
               {"email": "bob@example.com", "role_ids": [8]}]),
    )
    .await;
    let (ann, bob) = (people[0], people[1]);
    let mut team_ids = Vec::new();
    for (name, members) in [
        ("DB & SRE on-call", json!([ann, bob])),
        ("SRE Core", json!([bob])),
        ("Database Admins", json!([owner])),
    ] {
        let (s, b) = ts
            .api(
                "/team/upsert",
                json!({"team_name": name, "person_ids": members}),
            )
            .await;
        team_ids.push(ok(s, &b)["team_id"].as_i64().unwrap());
    }
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["team_name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let (s, b) = ts.api("/team/list", json!({"query": "sre db"})).await;
    assert_eq!(names(&ok(s, &b)), vec!["DB & SRE on-call"]);
    let (s, b) = ts.api("/team/list", json!({"query": "  sre  "})).await;
    assert_eq!(names(&ok(s, &b)), vec!["DB & SRE on-call", "SRE Core"]);
    let (s, b) = ts.api("/team/list", json!({"query": "ADMIN data"})).await;
    assert_eq!(names(&ok(s, &b)), vec!["Database Admins"]);
    let (s, b) = ts.api("/team/list", json!({"query": "sre ops"})).await;
    assert_eq!(ok(s, &b)["total"], 0);

    // A member's own key: "my teams" and leaving.
    let store = store_of(&ts).await;
    let (s, b) = ts.api("/account/info", json!({})).await;
    let account_id = ok(s, &b)["account_id"].as_i64().unwrap();
    let ann_key = hex_key();
    store
        .add_app_key(account_id, ann, "ann", &ann_key, now_secs() * 1000)
        .await
        .unwrap()
        .unwrap();
    store.close().await;
    let (s, b) = api_as(&ts, &ann_key, "/team/list", json!({"is_my_team": true})).await;
    assert_eq!(names(&ok(s, &b)), vec!["DB & SRE on-call"]);
    let (s, b) = ts.api("/team/list", json!({"is_my_team": true})).await;
    assert_eq!(names(&ok(s, &b)), vec!["Database Admins"]);
    let (s, b) = api_as(
        &ts,
        &ann_key,
        "/team/list",
        json!({"is_my_team": true, "person_id": bob}),
    )
    .await;
    assert!(err(s, &b, "InvalidParameter").starts_with("is_my_team"));

    // A Viewer holds no Teams Manage, yet leaves a team of their own.
    let (s, b) = api_as(
        &ts,
        &ann_key,
        "/team/upsert",
        json!({"team_id": team_ids[0], "team_name": "DB & SRE on-call", "person_ids": [bob]}),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = api_as(
        &ts,
        &ann_key,
        "/team/leave",
        json!({"team_name": "DB & SRE on-call"}),
    )
    .await;
    assert_eq!(ok(s, &b)["team_id"].as_i64().unwrap(), team_ids[0]);
    let (s, b) = ts.api("/team/info", json!({"team_id": team_ids[0]})).await;
    assert_eq!(ids(&ok(s, &b)["person_ids"]), vec![bob]);
    let (s, b) = api_as(&ts, &ann_key, "/team/list", json!({"is_my_team": true})).await;
    assert_eq!(ok(s, &b)["total"], 0);

    // Leaving a team one does not belong to, or an unknown one, changes nothing.
    let (s, b) = api_as(
        &ts,
        &ann_key,
        "/team/leave",
        json!({"team_id": team_ids[1]}),
    )
    .await;
    assert!(err(s, &b, "BadRequest").contains("not a member"));
    let (s, b) = ts.api("/team/info", json!({"team_id": team_ids[1]})).await;
    assert_eq!(ids(&ok(s, &b)["person_ids"]), vec![bob]);
    let (s, b) = api_as(&ts, &ann_key, "/team/leave", json!({"team_id": 987_654})).await;
    err(s, &b, "ResourceNotFound");
    let (s, b) = api_as(&ts, &ann_key, "/team/leave", json!({})).await;
    assert!(err(s, &b, "InvalidParameter").starts_with("team_id"));
});
