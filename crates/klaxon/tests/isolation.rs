//! Tenant isolation through the Open API (DESIGN.md principle 6): several accounts share one
//! database, and an account's APP key must never read or change another account's objects.
//! Account A creates one object of each kind; account B, with its own key, calls each
//! `info`/`list`/`update`/`delete`/action endpoint with A's ids (one table row per endpoint).
//! Every answer must be the one an unknown id gets (not-found, an empty list, an unknown
//! reference), A's objects must read the same afterwards with A's key, and A's own key must be
//! served on every row (the control that each request is well-formed).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs};
use klaxon_store::BootstrapSeed;
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn ok(s: u16, b: &Value) -> Value {
    assert_eq!(s, 200, "{b}");
    b["data"].clone()
}

/// 32 lower-case hex, unique in this process (APP and integration keys are global).
fn hex_key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!(
        "{nanos:016x}{:016x}",
        N.fetch_add(1, Ordering::Relaxed) ^ u64::from(std::process::id())
    )
}

/// Another tenant in the same database: (its APP key, its integration key).
async fn second_account(ts: &TestServer) -> (String, String) {
    let seed = BootstrapSeed {
        account_name: "Tenant B".into(),
        owner_email: "owner@tenant-b.example".into(),
        owner_name: "B Owner".into(),
        owner_password: "another long password".into(),
        app_key: hex_key(),
        integration_key: hex_key(),
    };
    let b = ts
        .server
        .as_ref()
        .unwrap()
        .store()
        .create_account(&seed, now_secs() * 1000)
        .await
        .unwrap();
    (b.app_key, b.integration_key)
}

/// A server whose API rate limit does not get in the way of ~120 calls per account in a
/// fraction of a second (the limit is no part of what this suite checks).
async fn start(url: &str) -> TestServer {
    TestServer::start_with(url, |c| {
        c.api_limits.per_account_per_second = 100_000;
        c.api_limits.per_account_per_minute = 100_000;
    })
    .await
}

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

async fn push_with(ts: &TestServer, integration_key: &str, body: Value) -> (u16, Value) {
    let resp = ts
        .http
        .post(format!(
            "{}/event/push/alert/standard?integration_key={integration_key}",
            ts.base
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What B must get back for one row. After B's pass, A replays every row with its own key
/// and must succeed (and see its objects in the lists), which proves each body is one the
/// endpoint serves: B's not-found is about the account, not about a malformed request.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// `ResourceNotFound`: A's object does not exist for B.
    Missing,
    /// A successful list with nothing in it (A's own call lists its objects).
    Empty,
    /// A successful list that is empty for A too (nothing has happened to list yet).
    EmptyForBoth,
    /// A successful bulk operation that found nothing to act on (A's own finds its objects).
    NothingCounted,
    /// A list where B has objects of its own: none of A's appear (A's own call shows them).
    NotListed,
    /// A list of integrations' settings: none of A's integrations in B's (A's own lists one).
    NoIntegrationOfA,
    /// B creates an object of its own under an id A also uses: `created` for B, a
    /// replacement of its own for A.
    OwnCopy,
    /// B creates something of its own that points at A's object: refused as an unknown
    /// reference (`ResourceNotFound` or `InvalidParameter`), nothing created.
    BadReference,
}

/// The id of A's holiday set.
const HOLIDAYS: &str = "a.holidays.2025";

/// Names and addresses A's objects carry; none may appear in anything B is answered.
const A_MARKS: &[&str] = &[
    "A payments",
    "A std",
    "A shared",
    "ann@tenant-a.example",
    "A ackers",
    "A ci",
    "A hosts",
    "A holidays",
    "A cmdb",
    "A token",
];

fn shows_a(b: &Value) -> bool {
    let text = b["data"].to_string();
    A_MARKS.iter().any(|m| text.contains(m))
}

/// Whether a list's items name one of A's integrations.
fn lists_integration(b: &Value, o: &Owned) -> bool {
    items(b).is_some_and(|items| {
        items.iter().any(|i| {
            let id = i["integration_id"].as_i64();
            id == Some(o.dedicated) || id == Some(o.shared)
        })
    })
}

/// The ids of every object A created.
struct Owned {
    channel: i64,
    dedicated: i64,
    shared: i64,
    /// An http_pull integration (its target refuses connections; one pull a day).
    pull: i64,
    rule: String,
    silence: String,
    inhibit: String,
    drop: String,
    schedule: i64,
    team: i64,
    member: i64,
    owner: i64,
    template: String,
    webhook: i64,
    custom_action: i64,
    link: i64,
    ticket_sync: i64,
    field: String,
    calendar: String,
    schema: String,
    mapping_api: String,
    role: i64,
    incident: String,
    /// A second incident of A, merged into the first by A's replay.
    incident2: String,
    alert: String,
    app_key_id: i64,
    export: i64,
    /// A's Slack integration with war rooms enabled; `incident2` has a war room on it.
    im: i64,
}

/// Account A creates one object of each kind the Open API manages.
async fn populate(ts: &TestServer) -> Owned {
    let a = |path: &'static str, body: Value| async move {
        let (s, b) = ts.api(path, body).await;
        ok(s, &b)
    };
    let now = now_secs();
    let channel = a(
        "/channel/create",
        json!({"channel_name": "A payments", "description": "tenant A"}),
    )
    .await["channel_id"]
        .as_i64()
        .unwrap();
    let dedicated = a(
        "/integration/create",
        json!({"integration_name": "A std", "type": "standard", "kind": "dedicated",
               "channel_id": channel}),
    )
    .await;
    let dedicated_key = dedicated["integration_key"].as_str().unwrap().to_string();
    let dedicated = dedicated["integration_id"].as_i64().unwrap();
    let shared = a(
        "/integration/create",
        json!({"integration_name": "A shared", "type": "prometheus", "kind": "shared",
               "default_channel_ids": [channel]}),
    )
    .await["integration_id"]
        .as_i64()
        .unwrap();
    let pull = a(
        "/integration/create",
        json!({"integration_name": "A pull", "type": "http_pull", "kind": "dedicated",
               "channel_id": channel,
               "settings": {"url": "http://127.0.0.1:9/alerts", "cycle_seconds": 86_400}}),
    )
    .await["integration_id"]
        .as_i64()
        .unwrap();
    // The node's worker runs a new pull integration's first pull at once (ING-228). Let it
    // finish, so A's own manual trigger later is not refused as `pull in progress`.
    for _ in 0..200 {
        let h = a(
            "/integration/pull/history",
            json!({"integration_id": pull, "limit": 1}),
        )
        .await;
        if h["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    a(
        "/route/upsert",
        json!({"integration_id": shared, "version": 1,
               "cases": [{"if": [{"key": "labels.team", "oper": "IN", "vals": ["db"]}],
                          "channel_ids": [channel], "name": "Database team"}],
               "default": {"channel_ids": [channel]}}),
    )
    .await;
    let member = a(
        "/member/invite",
        json!({"members": [{"email": "ann@tenant-a.example", "member_name": "Ann"}]}),
    )
    .await["items"][0]["member_id"]
        .as_i64()
        .unwrap();
    let owner = a("/member/info", json!({})).await["member_id"]
        .as_i64()
        .unwrap();
    let team = a(
        "/team/upsert",
        json!({"team_name": "A ops", "person_ids": [owner]}),
    )
    .await["team_id"]
        .as_i64()
        .unwrap();
    let schedule = a(
        "/schedule/create",
        json!({"schedule_name": "A primary", "time_zone": "UTC",
               "layers": [{"layer_name": "Weekly",
                           "groups": [{"group_name": "A", "members": [{"person_id": owner}]}],
                           "layer_start": now - 3 * DAY, "rotation_unit": "week",
                           "rotation_value": 1, "restrict_mode": 0}]}),
    )
    .await["schedule_id"]
        .as_i64()
        .unwrap();
    let rule = a(
        "/channel/escalate/rule/create",
        json!({"channel_id": channel, "rule_name": "Page A",
               "layers": [{"target": {"person_ids": [owner], "by": {"follow_preference": true}}}]}),
    )
    .await["rule_id"]
        .as_str()
        .unwrap()
        .to_string();
    let silence = a(
        "/channel/silence/rule/create",
        json!({"channel_id": channel, "rule_name": "A maintenance",
               "time_filter": {"start_time": now - 60, "end_time": now + 3600},
               "filters": [[{"key": "labels.env", "oper": "IN", "vals": ["test"]}]]}),
    )
    .await["rule_id"]
        .as_str()
        .unwrap()
        .to_string();
    let inhibit = a(
        "/channel/inhibit/rule/create",
        json!({"channel_id": channel, "rule_name": "A disk",
               "source_filters": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
               "target_filters": [[{"key": "severity", "oper": "IN", "vals": ["Info"]}]],
               "equals": ["labels.host"]}),
    )
    .await["rule_id"]
        .as_str()
        .unwrap()
        .to_string();
    let drop = a(
        "/channel/unsubscribe/rule/create",
        json!({"channel_id": channel, "rule_name": "A no info",
               "filters": [[{"key": "severity", "oper": "IN", "vals": ["Info"]}]]}),
    )
    .await["rule_id"]
        .as_str()
        .unwrap()
        .to_string();
    let template = a(
        "/template/create",
        json!({"template_name": "A template", "sms": "A {{.Title}}"}),
    )
    .await["template_id"]
        .as_str()
        .unwrap()
        .to_string();
    let webhook = a(
        "/webhook/create",
        json!({"kind": "incident_webhook", "name": "A hook",
               "endpoint": "https://hooks.tenant-a.example/incident"}),
    )
    .await["integration_id"]
        .as_i64()
        .unwrap();
    let custom_action = a(
        "/custom-action/create",
        json!({"name": "A heal", "endpoint": "https://hooks.tenant-a.example/heal",
               "channel_ids": [channel]}),
    )
    .await["integration_id"]
        .as_i64()
        .unwrap();
    let link = a(
        "/link/create",
        json!({"name": "A runbook", "url_template": "https://wiki.tenant-a.example/?q=${title}",
               "channel_ids": [channel]}),
    )
    .await["integration_id"]
        .as_i64()
        .unwrap();
    let ticket_sync = a(
        "/ticket-sync/create",
        json!({"system": "jira", "name": "A Jira", "channel_ids": [channel],
               "base_url": "https://jira.tenant-a.invalid", "username": "a@tenant-a.example",
               "secret": "token", "project_key": "OPS", "issue_type": "Bug"}),
    )
    .await["integration_id"]
        .as_i64()
        .unwrap();
    let field = a(
        "/field/create",
        json!({"field_name": "env", "display_name": "Environment", "field_type": "text"}),
    )
    .await["field_id"]
        .as_str()
        .unwrap()
        .to_string();
    let calendar = a("/calendar/create", json!({"cal_name": "A trading days"})).await["cal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let schema = a(
        "/enrichment/mapping/schema/create",
        json!({"name": "A hosts", "source_label_keys": ["host"], "result_label_keys": ["owner"]}),
    )
    .await["schema_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mapping_api = a(
        "/enrichment/mapping/api/create",
        json!({"api_name": "A cmdb", "url": "https://cmdb.tenant-a.example/{{.Labels.host}}",
               "headers": {"X-Custom-Token": "A token"}}),
    )
    .await["api_id"]
        .as_str()
        .unwrap()
        .to_string();
    let role = a(
        "/role/upsert",
        json!({"role_name": "A ackers", "permissions": ["incidents_manage"]}),
    )
    .await["role_id"]
        .as_i64()
        .unwrap();
    // Holiday set ids are chosen by the account, so another account may reuse this one.
    a(
        "/calendar/holiday/import",
        json!({"id": HOLIDAYS, "name": "A holidays",
               "entries": {"2025-10-01": "holiday", "2025-10-11": "workday"}}),
    )
    .await;
    let app_key_id = a("/app-key/create", json!({"key_name": "A ci"})).await["key_id"]
        .as_i64()
        .unwrap();

    // An incident through A's own dedicated integration.
    let (s, b) = push_with(
        ts,
        &dedicated_key,
        json!({"event_status": "Critical", "title_rule": "A disk full", "alert_key": "a-1"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    ts.drained().await;
    let incidents = ts.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = incidents[0]["incident_id"].as_str().unwrap().to_string();
    let alerts = ts.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = alerts[0]["alert_id"].as_str().unwrap().to_string();
    let incident2 = a(
        "/incident/create",
        json!({"title": "A manual", "incident_severity": "Warning", "channel_id": channel}),
    )
    .await["incident_id"]
        .as_str()
        .unwrap()
        .to_string();
    let export = a("/account/export/create", json!({})).await["export_id"]
        .as_i64()
        .unwrap();
    // A war room on A's second incident, recorded as creation would after the platform
    // answered (the platform calls themselves are tested in war_room.rs).
    let im = a(
        "/im/integration/create",
        json!({"type": "slack", "name": "A slack", "bot_token": "xoxb-a-token",
               "signing_secret": "a-signing-secret", "war_room_enabled": true}),
    )
    .await["integration_id"]
        .as_i64()
        .unwrap();
    a(
        "/im/person/link",
        json!({"integration_id": im, "person_id": owner, "im_user_id": "UAOWNER1"}),
    )
    .await;
    let store = ts.server.as_ref().unwrap().store();
    let inc2 = store
        .incident(
            ts.server.as_ref().unwrap().bootstrap().account_id,
            &incident2,
        )
        .await
        .unwrap()
        .unwrap();
    store
        .record_war_room(
            &klaxon_store::WarRoom {
                room_id: "a-room-1".into(),
                account_id: inc2.account_id,
                incident_id: incident2.clone(),
                integration_id: im,
                plugin_type: "slack".into(),
                chat_id: "CAROOM1".into(),
                chat_name: "inc-a-manual".into(),
                share_link: "https://app.slack.com/client/TA/CAROOM1".into(),
                card_ref: String::new(),
                status: "active".into(),
                created_by: owner,
                created_at: 0,
                dissolved_at: 0,
            },
            "A slack",
            &klaxon_store::WarRoomInvitations::default(),
            now * 1000,
        )
        .await
        .unwrap()
        .unwrap();

    Owned {
        channel,
        dedicated,
        shared,
        pull,
        rule,
        silence,
        inhibit,
        drop,
        schedule,
        team,
        member,
        owner,
        template,
        webhook,
        custom_action,
        link,
        ticket_sync,
        field,
        calendar,
        schema,
        mapping_api,
        role,
        incident,
        incident2,
        alert,
        app_key_id,
        export,
        im,
    }
}

/// The reads of A's objects that must answer the same before and after B's calls.
fn witness_reads(o: &Owned) -> Vec<(&'static str, Value)> {
    let now = now_secs();
    vec![
        ("/channel/info", json!({"channel_id": o.channel})),
        ("/integration/info", json!({"integration_id": o.dedicated})),
        ("/integration/info", json!({"integration_id": o.shared})),
        ("/route/info", json!({"integration_id": o.shared})),
        (
            "/channel/escalate/rule/info",
            json!({"channel_id": o.channel, "rule_id": o.rule}),
        ),
        (
            "/channel/silence/rule/info",
            json!({"channel_id": o.channel, "rule_id": o.silence}),
        ),
        (
            "/channel/inhibit/rule/info",
            json!({"channel_id": o.channel, "rule_id": o.inhibit}),
        ),
        (
            "/channel/unsubscribe/rule/info",
            json!({"channel_id": o.channel, "rule_id": o.drop}),
        ),
        (
            "/schedule/info",
            json!({"schedule_id": o.schedule, "start": now - DAY, "end": now + DAY}),
        ),
        ("/team/info", json!({"team_id": o.team})),
        ("/template/info", json!({"template_id": o.template})),
        ("/webhook/info", json!({"integration_id": o.webhook})),
        (
            "/custom-action/info",
            json!({"integration_id": o.custom_action}),
        ),
        ("/link/info", json!({"integration_id": o.link})),
        (
            "/ticket-sync/info",
            json!({"integration_id": o.ticket_sync}),
        ),
        ("/field/info", json!({"field_id": o.field})),
        ("/calendar/info", json!({"cal_id": o.calendar})),
        ("/calendar/holiday/list", json!({})),
        (
            "/enrichment/mapping/schema/info",
            json!({"schema_id": o.schema}),
        ),
        (
            "/enrichment/mapping/api/info",
            json!({"api_id": o.mapping_api}),
        ),
        ("/enrichment/info", json!({"integration_id": o.dedicated})),
        (
            "/alert/pipeline/info",
            json!({"integration_id": o.dedicated}),
        ),
        ("/role/info", json!({"role_id": o.role})),
        ("/incident/info", json!({"incident_id": o.incident})),
        ("/incident/info", json!({"incident_id": o.incident2})),
        (
            "/incident/war-room/detail",
            json!({"incident_id": o.incident2}),
        ),
        ("/alert/info", json!({"alert_id": o.alert})),
        ("/member/list", json!({})),
        ("/app-key/list", json!({})),
    ]
}

async fn snapshot(ts: &TestServer, reads: &[(&'static str, Value)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (path, body) in reads {
        let (s, b) = ts.api(path, body.clone()).await;
        assert_eq!(s, 200, "A reads its own {path}: {b}");
        out.push(b["data"].clone());
    }
    out
}

/// One row per endpoint: B calls it with A's ids. Reads first, then changes and actions,
/// then deletions in dependency order, so that A's replay of the same rows succeeds row by
/// row.
fn attacks(o: &Owned) -> Vec<(&'static str, Value, Expect)> {
    use Expect::{
        BadReference, Empty, EmptyForBoth, Missing, NoIntegrationOfA, NotListed, NothingCounted,
        OwnCopy,
    };
    let now = now_secs();
    let ch = o.channel;
    let window = json!({"start_time": now - DAY, "end_time": now + 3600});
    vec![
        // Reads by id.
        ("/channel/info", json!({"channel_id": ch}), Missing),
        (
            "/channel/grouping/preview",
            json!({"channel_id": ch, "group": {"method": "i"}}),
            Missing,
        ),
        (
            "/integration/info",
            json!({"integration_id": o.dedicated}),
            Missing,
        ),
        (
            "/integration/field-mapping/preview",
            json!({"integration_id": o.dedicated, "sample": {"x": "y"},
                   "field_mapping": {"event_status": "Info", "title": "{{x}}"}}),
            Missing,
        ),
        ("/route/info", json!({"integration_id": o.shared}), Missing),
        (
            "/route/history/list",
            json!({"integration_id": o.shared}),
            Missing,
        ),
        (
            "/enrichment/info",
            json!({"integration_id": o.dedicated}),
            Missing,
        ),
        (
            "/alert/pipeline/info",
            json!({"integration_id": o.dedicated}),
            Missing,
        ),
        (
            "/channel/escalate/rule/info",
            json!({"channel_id": ch, "rule_id": o.rule}),
            Missing,
        ),
        (
            "/channel/silence/rule/info",
            json!({"channel_id": ch, "rule_id": o.silence}),
            Missing,
        ),
        (
            "/channel/inhibit/rule/info",
            json!({"channel_id": ch, "rule_id": o.inhibit}),
            Missing,
        ),
        (
            "/channel/unsubscribe/rule/info",
            json!({"channel_id": ch, "rule_id": o.drop}),
            Missing,
        ),
        (
            "/schedule/info",
            json!({"schedule_id": o.schedule, "start": now - DAY, "end": now + DAY}),
            Missing,
        ),
        ("/team/info", json!({"team_id": o.team}), Missing),
        ("/role/info", json!({"role_id": o.role}), Missing),
        (
            "/template/info",
            json!({"template_id": o.template}),
            Missing,
        ),
        (
            "/webhook/info",
            json!({"integration_id": o.webhook}),
            Missing,
        ),
        (
            "/custom-action/info",
            json!({"integration_id": o.custom_action}),
            Missing,
        ),
        ("/link/info", json!({"integration_id": o.link}), Missing),
        (
            "/ticket-sync/info",
            json!({"integration_id": o.ticket_sync}),
            Missing,
        ),
        ("/field/info", json!({"field_id": o.field}), Missing),
        ("/calendar/info", json!({"cal_id": o.calendar}), Missing),
        (
            "/calendar/event/list",
            json!({"cal_id": o.calendar, "start_date": "2025-10-10", "end_date": "2025-10-31"}),
            Missing,
        ),
        (
            "/enrichment/mapping/schema/info",
            json!({"schema_id": o.schema}),
            Missing,
        ),
        (
            "/enrichment/mapping/data/list",
            json!({"schema_id": o.schema}),
            Missing,
        ),
        (
            "/enrichment/mapping/api/info",
            json!({"api_id": o.mapping_api}),
            Missing,
        ),
        (
            "/incident/info",
            json!({"incident_id": o.incident}),
            Missing,
        ),
        (
            "/incident/alert/list",
            json!({"incident_id": o.incident, "limit": 100}),
            Missing,
        ),
        (
            "/incident/feed",
            json!({"incident_id": o.incident}),
            Missing,
        ),
        ("/alert/info", json!({"alert_id": o.alert}), Missing),
        (
            "/incident/past/list",
            json!({"incident_id": o.incident}),
            Missing,
        ),
        (
            "/incident/notification/list",
            json!({"incident_id": o.incident}),
            Missing,
        ),
        // Lists: scoped to the caller's account, so A's objects are not in B's.
        (
            "/channel/escalate/rule/list",
            json!({"channel_id": ch}),
            Empty,
        ),
        (
            "/channel/silence/rule/list",
            json!({"channel_id": ch}),
            Empty,
        ),
        ("/incident/list", window.clone(), Empty),
        ("/alert/list", window.clone(), Empty),
        ("/template/list", json!({}), Empty),
        ("/webhook/list", json!({}), Empty),
        ("/custom-action/list", json!({}), Empty),
        ("/link/list", json!({}), Empty),
        ("/ticket-sync/list", json!({}), Empty),
        ("/field/list", json!({}), Empty),
        ("/calendar/list", json!({}), Empty),
        ("/enrichment/mapping/schema/list", json!({}), Empty),
        ("/enrichment/mapping/api/list", json!({}), Empty),
        ("/schedule/list", json!({}), Empty),
        ("/team/list", json!({}), Empty),
        ("/account/export/list", json!({}), Empty),
        // SVC-214: a self-hosted install publishes no provider list to either account (the
        // SaaS side, with consents to transfers, is checked in saas_transfers.rs).
        ("/account/delivery-provider/list", json!({}), EmptyForBoth),
        (
            "/account/export/info",
            json!({"export_id": o.export}),
            Missing,
        ),
        ("/alert-event/list", json!({}), Empty),
        ("/route/list", json!({"integration_ids": [o.shared]}), Empty),
        ("/channel/list", json!({}), NotListed),
        ("/integration/list", json!({}), NotListed),
        ("/member/list", json!({}), NotListed),
        ("/role/list", json!({}), NotListed),
        ("/app-key/list", json!({}), NotListed),
        (
            "/alert-event/outcome/list",
            json!({"channel_ids": [ch]}),
            Empty,
        ),
        (
            "/schedule/infos",
            json!({"schedule_ids": [o.schedule]}),
            Empty,
        ),
        ("/team/infos", json!({"team_ids": [o.team]}), Empty),
        (
            "/incident/list-by-ids",
            json!({"incident_ids": [o.incident]}),
            Empty,
        ),
        ("/alert/list-by-ids", json!({"alert_ids": [o.alert]}), Empty),
        ("/alert/event/list", json!({"alert_id": o.alert}), Missing),
        ("/alert/feed", json!({"alert_id": o.alert}), Missing),
        ("/channel/infos", json!({"channel_ids": [ch]}), Empty),
        ("/person/infos", json!({"person_ids": [o.member]}), Empty),
        (
            "/webhook/history/list",
            json!({"integration_id": o.webhook, "start_time": (now - DAY) * 1000,
                   "end_time": (now + 60) * 1000}),
            EmptyForBoth,
        ),
        // Changes and actions.
        (
            "/channel/update",
            json!({"channel_id": ch, "channel_name": "taken by B"}),
            Missing,
        ),
        ("/channel/disable", json!({"channel_id": ch}), Missing),
        ("/channel/enable", json!({"channel_id": ch}), Missing),
        (
            "/integration/update",
            json!({"integration_id": o.dedicated, "integration_name": "B's now"}),
            Missing,
        ),
        (
            "/integration/disable",
            json!({"integration_id": o.dedicated}),
            Missing,
        ),
        (
            "/integration/enable",
            json!({"integration_id": o.dedicated}),
            Missing,
        ),
        (
            "/integration/rotate-key",
            json!({"integration_id": o.dedicated}),
            Missing,
        ),
        (
            "/integration/pull/history",
            json!({"integration_id": o.pull}),
            Missing,
        ),
        (
            "/integration/pull/trigger",
            json!({"integration_id": o.pull}),
            Missing,
        ),
        (
            "/route/upsert",
            json!({"integration_id": o.shared, "version": 2, "cases": [],
                   "default": {"channel_ids": [ch]}}),
            Missing,
        ),
        (
            "/route/diff",
            json!({"integration_id": o.shared, "from_version": 1, "to_version": 2}),
            Missing,
        ),
        (
            "/route/rollback",
            json!({"integration_id": o.shared, "version": 2, "base_version": 3}),
            Missing,
        ),
        (
            "/enrichment/upsert",
            json!({"integration_id": o.dedicated,
                   "rules": [{"type": "delete", "label_names": ["x"]}]}),
            Missing,
        ),
        (
            "/alert/pipeline/upsert",
            json!({"integration_id": o.dedicated, "rules": [{"kind": "alert_drop"}]}),
            Missing,
        ),
        // Account-wide lists by integration (A's replay has just configured one of each).
        ("/enrichment/list", json!({}), NoIntegrationOfA),
        ("/alert/pipeline/list", json!({}), NoIntegrationOfA),
        (
            "/channel/escalate/rule/update",
            json!({"channel_id": ch, "rule_id": o.rule, "rule_name": "B's",
                   "layers": [{"target": {"person_ids": [o.member],
                                          "by": {"follow_preference": true}}}]}),
            Missing,
        ),
        (
            "/channel/escalate/rule/disable",
            json!({"channel_id": ch, "rule_id": o.rule}),
            Missing,
        ),
        (
            "/channel/escalate/rule/enable",
            json!({"channel_id": ch, "rule_id": o.rule}),
            Missing,
        ),
        (
            "/channel/escalate/rule/reorder",
            json!({"channel_id": ch, "rule_ids": [o.rule]}),
            Missing,
        ),
        (
            "/channel/silence/rule/update",
            json!({"channel_id": ch, "rule_id": o.silence, "rule_name": "B's",
                   "time_filter": {"start_time": now, "end_time": now + 60},
                   "filters": [[{"key": "labels.env", "oper": "IN", "vals": ["prod"]}]]}),
            Missing,
        ),
        (
            "/channel/silence/rule/disable",
            json!({"channel_id": ch, "rule_id": o.silence}),
            Missing,
        ),
        (
            "/channel/silence/rule/enable",
            json!({"channel_id": ch, "rule_id": o.silence}),
            Missing,
        ),
        (
            "/channel/inhibit/rule/update",
            json!({"channel_id": ch, "rule_id": o.inhibit, "rule_name": "B's"}),
            Missing,
        ),
        (
            "/channel/inhibit/rule/enable",
            json!({"channel_id": ch, "rule_id": o.inhibit}),
            Missing,
        ),
        (
            "/channel/unsubscribe/rule/update",
            json!({"channel_id": ch, "rule_id": o.drop, "rule_name": "B's"}),
            Missing,
        ),
        (
            "/channel/unsubscribe/rule/enable",
            json!({"channel_id": ch, "rule_id": o.drop}),
            Missing,
        ),
        (
            "/channel/inhibit/rule/disable",
            json!({"channel_id": ch, "rule_id": o.inhibit}),
            Missing,
        ),
        (
            "/channel/unsubscribe/rule/disable",
            json!({"channel_id": ch, "rule_id": o.drop}),
            Missing,
        ),
        (
            "/schedule/update",
            json!({"schedule_id": o.schedule, "schedule_name": "B's", "time_zone": "UTC",
                   "layers": []}),
            Missing,
        ),
        (
            "/schedule/feed/reset",
            json!({"schedule_id": o.schedule}),
            Missing,
        ),
        (
            "/team/upsert",
            json!({"team_id": o.team, "team_name": "B's team"}),
            Missing,
        ),
        (
            "/member/info/reset",
            json!({"member_id": o.member, "updates": {"member_name": "Mallory"}}),
            Missing,
        ),
        (
            "/member/role/grant",
            json!({"member_id": o.member, "role_ids": [2]}),
            Missing,
        ),
        (
            "/role/upsert",
            json!({"role_id": o.role, "role_name": "B's", "permissions": []}),
            Missing,
        ),
        ("/role/disable", json!({"role_id": o.role}), Missing),
        ("/role/enable", json!({"role_id": o.role}), Missing),
        // These two take the role as a reference ("unknown role id"), like role_ids.
        (
            "/role/member/grant",
            json!({"role_id": o.role, "member_ids": [o.member]}),
            BadReference,
        ),
        (
            "/role/member/revoke",
            json!({"role_id": o.role, "member_ids": [o.member]}),
            BadReference,
        ),
        (
            "/member/role/revoke",
            json!({"member_id": o.member, "role_ids": [2]}),
            Missing,
        ),
        (
            "/member/role/update",
            json!({"member_id": o.member, "role_ids": [2]}),
            Missing,
        ),
        (
            "/template/update",
            json!({"template_id": o.template, "template_name": "B's", "sms": "B"}),
            Missing,
        ),
        (
            "/webhook/update",
            json!({"integration_id": o.webhook, "name": "B's",
                   "endpoint": "https://evil.example/steal"}),
            Missing,
        ),
        (
            "/custom-action/update",
            json!({"integration_id": o.custom_action, "name": "B's",
                   "endpoint": "https://evil.example/steal"}),
            Missing,
        ),
        (
            "/ticket-sync/update",
            json!({"integration_id": o.ticket_sync, "name": "B's",
                   "base_url": "https://evil.example/"}),
            Missing,
        ),
        (
            "/ticket-sync/log/list",
            json!({"integration_id": o.ticket_sync}),
            Missing,
        ),
        (
            "/incident/ticket-sync/do",
            json!({"incident_id": o.incident2, "integration_id": o.ticket_sync}),
            Missing,
        ),
        // War rooms (RSP-430…438): B has no war-room integration, so B is told so; A's
        // own calls read A's room. Creating, dissolving and inviting call the IM platform
        // and are checked across accounts in war_room.rs.
        (
            "/incident/war-room/list",
            json!({"incident_id": o.incident2}),
            BadReference,
        ),
        (
            "/incident/war-room/detail",
            json!({"incident_id": o.incident2}),
            BadReference,
        ),
        (
            "/incident/war-room/default-observers",
            json!({}),
            BadReference,
        ),
        (
            "/datasource/im/war-room-enabled/list",
            json!({}),
            BadReference,
        ),
        (
            "/datasource/im/person/try-link",
            json!({"integration_id": o.im, "person_ids": [o.owner]}),
            BadReference,
        ),
        (
            "/datasource/im/war-room-enabled/set",
            json!({"integration_id": o.im, "war_room_enabled": true}),
            Missing,
        ),
        (
            "/link/update",
            json!({"integration_id": o.link, "url_template": "https://evil.example/"}),
            Missing,
        ),
        (
            "/field/update",
            json!({"field_id": o.field, "display_name": "B's"}),
            Missing,
        ),
        (
            "/calendar/update",
            json!({"cal_id": o.calendar, "cal_name": "B's"}),
            Missing,
        ),
        (
            "/calendar/event/upsert",
            json!({"cal_id": o.calendar,
                   "events": [{"date": "2025-10-12", "day_type": "restday"}]}),
            Missing,
        ),
        (
            "/calendar/event/delete",
            json!({"cal_id": o.calendar, "dates": ["2025-10-12"]}),
            Missing,
        ),
        (
            "/enrichment/mapping/schema/update",
            json!({"schema_id": o.schema, "name": "B's"}),
            Missing,
        ),
        (
            "/enrichment/mapping/data/upload",
            json!({"schema_id": o.schema, "csv": "host,owner\nh1,B\n"}),
            Missing,
        ),
        (
            "/enrichment/mapping/data/upsert",
            json!({"schema_id": o.schema, "row": {"host": "h1", "owner": "B"}}),
            Missing,
        ),
        (
            "/enrichment/mapping/data/download",
            json!({"schema_id": o.schema}),
            Missing,
        ),
        (
            "/enrichment/mapping/api/update",
            json!({"api_id": o.mapping_api, "api_name": "B's", "url": "https://b.example/"}),
            Missing,
        ),
        ("/calendar/holiday/list", json!({}), NotListed),
        // B importing a set under A's id makes B's own set; A's stays as it was (the
        // snapshot) and A's replay replaces its own.
        (
            "/calendar/holiday/import",
            json!({"id": HOLIDAYS, "name": "B holidays", "entries": {"2025-12-25": "holiday"}}),
            OwnCopy,
        ),
        // Incident actions, in an order A's replay can follow (open ones before closing).
        (
            "/incident/comment",
            json!({"incident_ids": [o.incident], "comment": "B was here"}),
            Missing,
        ),
        (
            "/incident/reset",
            json!({"incident_id": o.incident, "title": "B's title"}),
            Missing,
        ),
        (
            "/incident/responder/add",
            json!({"incident_id": o.incident, "person_ids": [o.member]}),
            Missing,
        ),
        (
            "/incident/assign",
            json!({"incident_id": o.incident, "assigned_to": {"person_ids": [o.owner]}}),
            Missing,
        ),
        (
            "/incident/field/reset",
            json!({"incident_id": o.incident, "field_name": "env", "field_value": "B"}),
            Missing,
        ),
        (
            "/incident/quick-silence",
            json!({"incident_id": o.incident}),
            Missing,
        ),
        (
            "/incident/ack",
            json!({"incident_ids": [o.incident]}),
            Missing,
        ),
        (
            "/incident/snooze",
            json!({"incident_ids": [o.incident], "minutes": 60}),
            Missing,
        ),
        (
            "/incident/wake",
            json!({"incident_ids": [o.incident]}),
            Missing,
        ),
        (
            "/incident/unack",
            json!({"incident_ids": [o.incident]}),
            Missing,
        ),
        (
            "/incident/resolve",
            json!({"incident_ids": [o.incident]}),
            Missing,
        ),
        (
            "/incident/reopen",
            json!({"incident_ids": [o.incident], "reason": "B says so"}),
            Missing,
        ),
        (
            "/incident/close",
            json!({"incident_ids": [o.incident]}),
            Missing,
        ),
        // Merging moves A's alert and then A's closed incident into A's open second one.
        (
            "/alert/merge",
            json!({"incident_id": o.incident2, "alert_ids": [o.alert]}),
            Missing,
        ),
        (
            "/incident/merge",
            json!({"target_incident_id": o.incident2, "source_incident_ids": [o.incident]}),
            Missing,
        ),
        // B's own new objects may not point at A's.
        (
            "/incident/create",
            json!({"title": "B into A", "incident_severity": "Warning", "channel_id": ch}),
            BadReference,
        ),
        (
            "/integration/create",
            json!({"integration_name": "B into A", "type": "standard", "kind": "dedicated",
                   "channel_id": ch}),
            BadReference,
        ),
        (
            "/channel/escalate/rule/create",
            json!({"channel_id": ch, "rule_name": "B into A",
                   "layers": [{"target": {"person_ids": [o.member],
                                          "by": {"follow_preference": true}}}]}),
            BadReference,
        ),
        (
            "/channel/silence/rule/create",
            json!({"channel_id": ch, "rule_name": "B into A",
                   "time_filter": {"start_time": now, "end_time": now + 60},
                   "filters": [[{"key": "labels.env", "oper": "IN", "vals": ["prod"]}]]}),
            BadReference,
        ),
        (
            "/team/upsert",
            json!({"team_name": "B with A's member", "person_ids": [o.member]}),
            BadReference,
        ),
        // Deletions, dependents first.
        (
            "/channel/escalate/rule/delete",
            json!({"channel_id": ch, "rule_id": o.rule}),
            Missing,
        ),
        (
            "/channel/silence/rule/delete",
            json!({"channel_id": ch, "rule_id": o.silence}),
            Missing,
        ),
        (
            "/channel/inhibit/rule/delete",
            json!({"channel_id": ch, "rule_id": o.inhibit}),
            Missing,
        ),
        (
            "/channel/unsubscribe/rule/delete",
            json!({"channel_id": ch, "rule_id": o.drop}),
            Missing,
        ),
        (
            "/schedule/delete",
            json!({"schedule_ids": [o.schedule]}),
            Missing,
        ),
        ("/team/delete", json!({"team_id": o.team}), Missing),
        ("/member/delete", json!({"member_id": o.member}), Missing),
        ("/role/delete", json!({"role_id": o.role}), Missing),
        ("/app-key/delete", json!({"key_id": o.app_key_id}), Missing),
        (
            "/template/delete",
            json!({"template_id": o.template}),
            Missing,
        ),
        (
            "/webhook/delete",
            json!({"integration_id": o.webhook}),
            Missing,
        ),
        (
            "/custom-action/delete",
            json!({"integration_id": o.custom_action}),
            Missing,
        ),
        ("/link/delete", json!({"integration_id": o.link}), Missing),
        (
            "/ticket-sync/delete",
            json!({"integration_id": o.ticket_sync}),
            Missing,
        ),
        ("/field/delete", json!({"field_id": o.field}), Missing),
        ("/calendar/delete", json!({"cal_id": o.calendar}), Missing),
        (
            "/enrichment/mapping/data/delete",
            json!({"schema_id": o.schema, "source": {"host": "h1"}}),
            Missing,
        ),
        (
            "/enrichment/mapping/schema/delete",
            json!({"schema_id": o.schema}),
            Missing,
        ),
        (
            "/enrichment/mapping/api/delete",
            json!({"api_id": o.mapping_api}),
            Missing,
        ),
        // A time-range deletion, not by id: over the window of A's incident it must count
        // and delete nothing, since B has no incident of its own.
        (
            "/incident/bulk-delete",
            json!({"start_time": now - DAY, "end_time": now + 60}),
            NothingCounted,
        ),
        (
            "/integration/delete",
            json!({"integration_id": o.dedicated}),
            Missing,
        ),
        (
            "/integration/delete",
            json!({"integration_id": o.shared}),
            Missing,
        ),
        ("/channel/delete", json!({"channel_id": ch}), Missing),
    ]
}

fn items(b: &Value) -> Option<&Vec<Value>> {
    b["data"]["items"].as_array()
}

// DESIGN.md principle 6: one account never reads or changes another's objects.
on_both_backends!(
    another_account_cannot_reach_an_accounts_objects,
    |url: String| async move {
        let mut ts = start(&url).await;
        let owned = populate(&ts).await;
        let (b_key, _) = second_account(&ts).await;
        let reads = witness_reads(&owned);
        let before = snapshot(&ts, &reads).await;
        let rows = attacks(&owned);

        let mut wrong = Vec::new();
        for (path, body, expect) in &rows {
            let (s, b) = api_as(&ts, &b_key, path, body.clone()).await;
            let good = match expect {
                Expect::Missing => s != 200 && b["error"]["code"] == "ResourceNotFound",
                Expect::Empty | Expect::EmptyForBoth => {
                    s == 200 && items(&b).is_some_and(|items| items.is_empty())
                }
                Expect::NothingCounted => s == 200 && b["data"]["objects"] == 0,
                Expect::NotListed => s == 200 && !shows_a(&b),
                Expect::OwnCopy => s == 200 && b["data"]["created"] == true,
                Expect::NoIntegrationOfA => s == 200 && !lists_integration(&b, &owned),
                Expect::BadReference => {
                    s != 200
                        && (b["error"]["code"] == "ResourceNotFound"
                            || b["error"]["code"] == "InvalidParameter")
                }
            };
            if !good {
                wrong.push(format!("{path} {body} -> {s} {b}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "B reached A's objects:\n{}",
            wrong.join("\n")
        );
        // B's refused creations left nothing behind in B's own account either.
        let now = now_secs();
        let window = json!({"start_time": now - DAY, "end_time": now + 3600});
        for (path, body) in [("/incident/list", window), ("/team/list", json!({}))] {
            let (s, b) = api_as(&ts, &b_key, path, body).await;
            assert_eq!(ok(s, &b)["items"], json!([]), "B's {path}");
        }
        let (s, b) = api_as(&ts, &b_key, "/integration/list", json!({})).await;
        assert!(!ok(s, &b).to_string().contains("B into A"), "{b}");

        // Every object of A reads exactly as before B's calls.
        let after = snapshot(&ts, &reads).await;
        for (((path, _), was), is) in reads.iter().zip(&before).zip(&after) {
            assert_eq!(was, is, "{path} changed by B's calls");
        }

        // The control: A's own key is served on every row (so the rows are well-formed and
        // B's not-found comes from the account boundary alone).
        let mut refused = Vec::new();
        for (path, body, expect) in &rows {
            let (s, b) = ts.api(path, body.clone()).await;
            let good = match expect {
                Expect::Missing | Expect::EmptyForBoth | Expect::BadReference => s == 200,
                Expect::Empty => s == 200 && items(&b).is_some_and(|items| !items.is_empty()),
                Expect::NothingCounted => {
                    s == 200 && b["data"]["objects"].as_i64().is_some_and(|n| n > 0)
                }
                Expect::NotListed => s == 200 && shows_a(&b),
                Expect::OwnCopy => s == 200 && b["data"]["created"] == false,
                Expect::NoIntegrationOfA => s == 200 && lists_integration(&b, &owned),
            };
            if !good {
                refused.push(format!("{path} {body} -> {s} {b}"));
            }
        }
        assert!(
            refused.is_empty(),
            "A's own calls failed:\n{}",
            refused.join("\n")
        );
        ts.stop().await;
    }
);

// DESIGN.md principle 6: integration keys are global, so a push with A's key lands in A
// only, whoever sends it; B's own key lands in B only.
on_both_backends!(
    a_push_lands_in_the_key_owners_account_only,
    |url: String| async move {
        let mut ts = start(&url).await;
        let (b_key, b_integration) = second_account(&ts).await;
        let (s, b) = push_with(
            &ts,
            &ts.integration_key,
            json!({"event_status": "Critical", "title_rule": "A only", "alert_key": "a"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = push_with(
            &ts,
            &b_integration,
            json!({"event_status": "Warning", "title_rule": "B only", "alert_key": "b"}),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        ts.drained().await;

        let titles = |items: Vec<Value>| -> Vec<String> {
            items
                .iter()
                .map(|i| i["title"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(titles(ts.incidents().await), vec!["A only"]);
        assert_eq!(titles(ts.alerts().await), vec!["A only"]);
        let now = now_secs();
        let window = json!({"start_time": now - DAY, "end_time": now + 3600, "limit": 100});
        for path in ["/incident/list", "/alert/list"] {
            let (s, b) = api_as(&ts, &b_key, path, window.clone()).await;
            let items = ok(s, &b)["items"].as_array().cloned().unwrap();
            assert_eq!(titles(items), vec!["B only"], "{path}");
        }
        ts.stop().await;
    }
);
