//! Permissions over HTTP (response.md §2.29; openapi-compat.md 1.2, 1.5): feature permission
//! points checked per route, incident visibility of private channels, and member roles
//! assigned through the Open API taking effect on the next request — on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, now_secs, test_config};
use serde_json::{Value, json};

struct Members {
    ts: TestServer,
    account_id: i64,
}

/// Keys of invited members (they have no password yet, so the test gives them keys through
/// a second handle on the database, as tests/signin.rs does).
impl Members {
    async fn start(url: &str) -> Members {
        let ts = TestServer::start(url).await;
        let store = store_of(&ts).await;
        let account_id = store
            .app_key(&ts.app_key)
            .await
            .unwrap()
            .unwrap()
            .account_id;
        Members { ts, account_id }
    }

    async fn api_with(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .ts
            .http
            .post(format!("{}{path}?app_key={key}", self.ts.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Invites a member with `role_ids` and gives them an APP key; returns (member_id, key).
    async fn member(&self, email: &str, role_ids: &[i64]) -> (i64, String) {
        let (s, b) = self
            .ts
            .api(
                "/member/invite",
                json!({"members": [{"email": email, "role_ids": role_ids}]}),
            )
            .await;
        let id = ok(s, &b)["items"][0]["member_id"].as_i64().unwrap();
        let key = format!("{:0>32}", format!("k{id}"));
        store_of(&self.ts)
            .await
            .add_app_key(self.account_id, id, "test", &key, now_secs() * 1000)
            .await
            .unwrap()
            .unwrap();
        (id, key)
    }

    async fn incident(&self, id: &str) -> Value {
        let (s, b) = self
            .ts
            .api("/incident/info", json!({"incident_id": id}))
            .await;
        ok(s, &b).clone()
    }

    async fn create_incident(&self, channel_id: i64, title: &str) -> String {
        let (s, b) = self
            .ts
            .api(
                "/incident/create",
                json!({"title": title, "incident_severity": "Warning", "channel_id": channel_id}),
            )
            .await;
        ok(s, &b)["incident_id"].as_str().unwrap().to_string()
    }

    /// Incident ids `key` finds in `/incident/list` with `extra` filters.
    async fn listed(&self, key: &str, extra: Value) -> (Vec<String>, i64) {
        let now = now_secs();
        let mut body = json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 100});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let (s, b) = self.api_with(key, "/incident/list", body).await;
        let data = ok(s, &b);
        let ids = data["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["incident_id"].as_str().unwrap().to_string())
            .collect();
        (ids, data["total"].as_i64().unwrap())
    }

    async fn roles_of(&self, member_id: i64) -> Value {
        let (s, b) = self.ts.api("/member/list", json!({"limit": 100})).await;
        ok(s, &b)["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["member_id"] == member_id)
            .unwrap()["account_role_ids"]
            .clone()
    }
}

async fn store_of(ts: &TestServer) -> klaxon_store::Store {
    let url = test_config(ts.dir.path(), &ts.database_url).effective_database_url();
    klaxon_store::Store::connect(&url, klaxon_store::StoreOptions::default())
        .await
        .unwrap()
}

fn ok(status: u16, body: &Value) -> &Value {
    assert_eq!(status, 200, "{body}");
    &body["data"]
}

/// A refusal with `code`; returns its message.
fn refused(status: u16, body: &Value, code: &str, http: u16) -> String {
    assert_eq!(status, http, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

async fn channel(m: &Members, body: Value) -> i64 {
    let (s, b) = m.ts.api("/channel/create", body).await;
    ok(s, &b)["channel_id"].as_i64().unwrap()
}

on_both_backends!(
    acting_on_incidents_needs_incidents_manage,
    |url: String| async move {
        let m = Members::start(&url).await;
        let ch = channel(&m, json!({"channel_name": "web"})).await;
        let id = m.create_incident(ch, "disk full").await;
        let (_, viewer) = m.member("viewer@example.com", &[8]).await;
        let (_, admin) = m.member("admin@example.com", &[2]).await;

        // spec: RSP-001, RSP-521, RSP-529 — a Viewer may look but not act: 403 AccessDenied
        // naming the missing point, and the incident is unchanged.
        let (s, b) = m
            .api_with(&viewer, "/incident/ack", json!({"incident_ids": [id]}))
            .await;
        let msg = refused(s, &b, "AccessDenied", 403);
        assert!(msg.contains("Incidents Manage"), "{msg}");
        let after = m.incident(&id).await;
        assert_eq!(after["progress"], "Triggered");
        let (s, b) =
            m.ts.api("/incident/feed", json!({"incident_id": id, "limit": 100}))
                .await;
        assert!(
            !ok(s, &b)["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "i_ack"),
            "{b}"
        );
        for (path, body) in [
            (
                "/incident/comment",
                json!({"incident_id": id, "comment": "x"}),
            ),
            ("/incident/resolve", json!({"incident_ids": [id]})),
            (
                "/incident/create",
                json!({"title": "t", "incident_severity": "Info"}),
            ),
            ("/channel/create", json!({"channel_name": "nope"})),
            ("/app-key/create", json!({"key_name": "mine"})),
        ] {
            let (s, b) = m.api_with(&viewer, path, body).await;
            refused(s, &b, "AccessDenied", 403);
        }
        let (ids, _) = m.listed(&viewer, json!({})).await;
        assert_eq!(
            ids,
            vec![id.clone()],
            "a Viewer still reads (Incidents Read)"
        );
        let (s, b) = m
            .api_with(&viewer, "/incident/info", json!({"incident_id": id}))
            .await;
        ok(s, &b);

        // spec: RSP-522 — an Admin acts.
        let (s, b) = m
            .api_with(&admin, "/incident/ack", json!({"incident_ids": [id]}))
            .await;
        ok(s, &b);
        assert_eq!(m.incident(&id).await["progress"], "Processing");

        // spec: RSP-522 — a member without any role acts as a Responder.
        let (roleless, roleless_key) = m.member("nobody@example.com", &[6]).await;
        let (s, b) =
            m.ts.api(
                "/member/role/update",
                json!({"member_id": roleless, "role_ids": []}),
            )
            .await;
        ok(s, &b);
        assert_eq!(m.roles_of(roleless).await, json!([]));
        let (s, b) = m
            .api_with(
                &roleless_key,
                "/incident/resolve",
                json!({"incident_ids": [id]}),
            )
            .await;
        ok(s, &b);
        assert_eq!(m.incident(&id).await["progress"], "Closed");
    }
);

on_both_backends!(
    private_channel_incidents_are_listed_only_for_their_people,
    |url: String| async move {
        let m = Members::start(&url).await;
        let (insider, insider_key) = m.member("insider@example.com", &[8]).await;
        let (_, outsider_key) = m.member("outsider@example.com", &[6]).await;
        let (_, admin_key) = m.member("admin@example.com", &[2]).await;
        let (s, b) =
            m.ts.api(
                "/team/upsert",
                json!({"team_name": "db", "person_ids": [insider]}),
            )
            .await;
        let team = ok(s, &b)["team_id"].as_i64().unwrap();
        let private = channel(
            &m,
            json!({"channel_name": "secret", "is_private": true, "team_id": team}),
        )
        .await;
        let public = channel(&m, json!({"channel_name": "open"})).await;
        let (s, b) =
            m.ts.api("/channel/info", json!({"channel_id": private}))
                .await;
        assert_eq!(ok(s, &b)["is_private"], true);
        let hidden = m.create_incident(private, "secret outage").await;
        let open = m.create_incident(public, "open outage").await;
        let global = m.create_incident(0, "global outage").await;

        // spec: RSP-526, RSP-507 — an outsider's list, search and count leave it out…
        let (ids, total) = m.listed(&outsider_key, json!({})).await;
        assert!(!ids.contains(&hidden), "{ids:?}");
        assert!(ids.contains(&open) && ids.contains(&global), "{ids:?}");
        assert_eq!(total, 2);
        let (ids, total) = m.listed(&outsider_key, json!({"query": hidden})).await;
        assert!(ids.is_empty() && total == 0, "search by id: {ids:?}");
        let (ids, _) = m
            .listed(&outsider_key, json!({"incident_ids": [hidden]}))
            .await;
        assert!(ids.is_empty(), "filter by id: {ids:?}");
        let (ids, _) = m
            .listed(&outsider_key, json!({"channel_ids": [private]}))
            .await;
        assert!(ids.is_empty(), "filter by channel: {ids:?}");
        // …but opening it directly is the shared-link case (RSP-526, OQ-35).
        let (s, b) = m
            .api_with(
                &outsider_key,
                "/incident/info",
                json!({"incident_id": hidden}),
            )
            .await;
        assert_eq!(ok(s, &b)["incident_id"], hidden.as_str());

        // spec: RSP-526 — its team's members, Admins and the owner see it listed.
        for key in [&insider_key, &admin_key, &m.ts.app_key] {
            let (ids, total) = m.listed(key, json!({})).await;
            assert!(ids.contains(&hidden), "{ids:?}");
            assert_eq!(total, 3);
        }
        // Making the channel public lists it for everyone.
        let (s, b) =
            m.ts.api(
                "/channel/update",
                json!({"channel_id": private, "is_private": false}),
            )
            .await;
        ok(s, &b);
        let (ids, _) = m.listed(&outsider_key, json!({})).await;
        assert!(ids.contains(&hidden), "{ids:?}");
        // Bad input names the field and changes nothing.
        let (s, b) =
            m.ts.api(
                "/channel/update",
                json!({"channel_id": public, "managing_team_ids": [team, 999_999]}),
            )
            .await;
        assert!(refused(s, &b, "InvalidParameter", 400).contains("managing_team_ids"));
    }
);

on_both_backends!(
    role_assignment_takes_effect_at_once,
    |url: String| async move {
        let m = Members::start(&url).await;
        let ch = channel(&m, json!({"channel_name": "web"})).await;
        let id = m.create_incident(ch, "cpu").await;
        let (viewer, viewer_key) = m.member("viewer@example.com", &[8]).await;
        let (responder, responder_key) = m.member("resp@example.com", &[6]).await;
        let (_, admin_key) = m.member("admin@example.com", &[2]).await;
        let ack = json!({"incident_ids": [id]});
        let unack = json!({"incident_ids": [id]});

        // spec: RSP-525 — nobody adds a role to themselves, and the refusal changes nothing.
        let (s, b) = m
            .api_with(
                &viewer_key,
                "/member/role/grant",
                json!({"member_id": viewer, "role_ids": [2]}),
            )
            .await;
        refused(s, &b, "AccessDenied", 403);
        assert_eq!(m.roles_of(viewer).await, json!([8]));
        // A Viewer dropping their only role would become a Responder (RSP-522): refused.
        let (s, b) = m
            .api_with(
                &viewer_key,
                "/member/role/revoke",
                json!({"member_id": viewer, "role_ids": [8]}),
            )
            .await;
        refused(s, &b, "AccessDenied", 403);
        // A Responder cannot give roles to others (Members Manage).
        let (s, b) = m
            .api_with(
                &responder_key,
                "/member/role/grant",
                json!({"member_id": viewer, "role_ids": [6]}),
            )
            .await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("Members Manage"));

        // spec: RSP-525, RSP-611 — an Admin grants Responder; the very next call may act.
        let (s, b) = m.api_with(&viewer_key, "/incident/ack", ack.clone()).await;
        refused(s, &b, "AccessDenied", 403);
        let (s, b) = m
            .api_with(
                &admin_key,
                "/member/role/grant",
                json!({"member_id": viewer, "role_ids": [6]}),
            )
            .await;
        ok(s, &b);
        assert_eq!(m.roles_of(viewer).await, json!([6, 8]));
        let (s, b) = m.api_with(&viewer_key, "/incident/ack", ack.clone()).await;
        ok(s, &b);
        assert_eq!(m.incident(&id).await["progress"], "Processing");
        // Revoked: refused again at once.
        let (s, b) = m
            .api_with(
                &admin_key,
                "/member/role/revoke",
                json!({"member_id": viewer, "role_ids": [6]}),
            )
            .await;
        ok(s, &b);
        let (s, b) = m
            .api_with(&viewer_key, "/incident/unack", unack.clone())
            .await;
        refused(s, &b, "AccessDenied", 403);
        assert_eq!(m.incident(&id).await["progress"], "Processing");

        // spec: RSP-524 — a custom role of points; disabling it takes its points away.
        let (s, b) =
            m.ts.api(
                "/role/upsert",
                json!({"role_name": "Ackers", "permissions": ["incidents_manage"]}),
            )
            .await;
        let role = ok(s, &b)["role_id"].as_i64().unwrap();
        assert!(role > 8, "custom ids never take a built-in id: {role}");
        let (s, b) =
            m.ts.api(
                "/role/member/grant",
                json!({"role_id": role, "member_ids": [viewer]}),
            )
            .await;
        ok(s, &b);
        // An invitation may grant a custom role too.
        let (invited, _) = m.member("acker@example.com", &[role]).await;
        assert_eq!(m.roles_of(invited).await, json!([role]));
        let (s, b) = m
            .api_with(&viewer_key, "/incident/unack", unack.clone())
            .await;
        ok(s, &b);
        let (s, b) = m.ts.api("/role/disable", json!({"role_id": role})).await;
        ok(s, &b);
        let (s, b) = m.api_with(&viewer_key, "/incident/ack", ack.clone()).await;
        refused(s, &b, "AccessDenied", 403);
        // Built-in roles cannot be changed; unknown points are refused by name.
        let (s, b) =
            m.ts.api(
                "/role/upsert",
                json!({"role_id": 8, "role_name": "X", "permissions": []}),
            )
            .await;
        assert!(refused(s, &b, "InvalidParameter", 400).contains("role_id"));
        let (s, b) =
            m.ts.api(
                "/role/upsert",
                json!({"role_name": "Y", "permissions": ["incidents_delete"]}),
            )
            .await;
        assert!(refused(s, &b, "InvalidParameter", 400).contains("permissions[0]"));
        let (s, b) = m
            .api_with(
                &responder_key,
                "/role/upsert",
                json!({"role_name": "Z", "permissions": []}),
            )
            .await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("Roles Manage"));
        // Deleting the role takes it from its members.
        let (s, b) = m.ts.api("/role/delete", json!({"role_id": role})).await;
        ok(s, &b);
        assert_eq!(m.roles_of(viewer).await, json!([8]));
        let (s, b) = m.ts.api("/role/list", json!({})).await;
        let names: Vec<Value> = ok(s, &b)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["role_name"].clone())
            .collect();
        assert_eq!(
            names,
            vec![json!("Admin"), json!("Responder"), json!("Viewer")]
        );

        // spec: RSP-523 — the owner cannot be demoted, not even by an Admin.
        let (s, b) = m.ts.api("/member/info", json!({})).await;
        let owner = ok(s, &b)["member_id"].as_i64().unwrap();
        let (s, b) = m
            .api_with(
                &admin_key,
                "/member/role/update",
                json!({"member_id": owner, "role_ids": [8]}),
            )
            .await;
        assert!(refused(s, &b, "BadRequest", 400).contains("owner"));
        assert_eq!(m.roles_of(owner).await, json!([2]));
        // A member may drop a role they hold beside another (a downgrade).
        let (s, b) = m
            .api_with(
                &admin_key,
                "/member/role/grant",
                json!({"member_id": responder, "role_ids": [8]}),
            )
            .await;
        ok(s, &b);
        let (s, b) = m
            .api_with(
                &responder_key,
                "/member/role/revoke",
                json!({"member_id": responder, "role_ids": [6]}),
            )
            .await;
        ok(s, &b);
        assert_eq!(m.roles_of(responder).await, json!([8]));
    }
);

on_both_backends!(
    changing_a_channel_needs_its_data_permission,
    |url: String| async move {
        let m = Members::start(&url).await;
        let (creator, creator_key) = m.member("creator@example.com", &[6]).await;
        let (mate, mate_key) = m.member("mate@example.com", &[6]).await;
        let (_, admin_key) = m.member("admin@example.com", &[2]).await;
        // spec: RSP-528 — any Responder may create a channel and becomes its creator.
        let (s, b) = m
            .api_with(
                &creator_key,
                "/channel/create",
                json!({"channel_name": "mine"}),
            )
            .await;
        let ch = ok(s, &b)["channel_id"].as_i64().unwrap();

        // spec: RSP-527, RSP-529 — a channel without a team: only its creator and the owner;
        // an Admin does not get the right automatically. The refusal changes nothing.
        for key in [&admin_key, &mate_key] {
            let (s, b) = m
                .api_with(
                    key,
                    "/channel/update",
                    json!({"channel_id": ch, "channel_name": "x"}),
                )
                .await;
            assert!(refused(s, &b, "AccessDenied", 403).contains("data permission"));
            let (s, b) = m
                .api_with(key, "/channel/disable", json!({"channel_id": ch}))
                .await;
            refused(s, &b, "AccessDenied", 403);
        }
        let (s, b) = m.ts.api("/channel/info", json!({"channel_id": ch})).await;
        assert_eq!(ok(s, &b)["channel_name"], "mine");
        assert_eq!(ok(s, &b)["status"], "enabled");
        let (s, b) = m
            .api_with(
                &creator_key,
                "/channel/update",
                json!({"channel_id": ch, "channel_name": "renamed"}),
            )
            .await;
        ok(s, &b);
        // spec: RSP-527 — the same holds for what is configured inside the channel: the
        // creator's silence rule can be neither made nor changed by the Admin, even when
        // the body names another channel.
        let now = now_secs();
        let rule = json!({
            "channel_id": ch,
            "rule_name": "maintenance",
            "time_filter": {"start_time": now, "end_time": now + 3600},
            "filters": [[{"key": "labels.env", "oper": "IN", "vals": ["test"]}]],
        });
        let (s, b) = m
            .api_with(&admin_key, "/channel/silence/rule/create", rule.clone())
            .await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("data permission"));
        let (s, b) = m
            .api_with(&creator_key, "/channel/silence/rule/create", rule.clone())
            .await;
        let rule_id = ok(s, &b)["rule_id"].as_str().unwrap().to_string();
        let (s, b) = m
            .api_with(
                &admin_key,
                "/channel/create",
                json!({"channel_name": "admins"}),
            )
            .await;
        let admins_channel = ok(s, &b)["channel_id"].as_i64().unwrap();
        let (s, b) = m
            .api_with(
                &admin_key,
                "/channel/silence/rule/disable",
                json!({"rule_id": rule_id, "channel_id": admins_channel}),
            )
            .await;
        refused(s, &b, "AccessDenied", 403);
        let (s, b) =
            m.ts.api("/channel/silence/rule/info", json!({"rule_id": rule_id}))
                .await;
        assert_eq!(ok(s, &b)["status"], "enabled", "{b}");
        // spec: RSP-130, RSP-137 — reordering escalation rules needs the same right.
        let (s, b) = m
            .api_with(
                &creator_key,
                "/channel/escalate/rule/create",
                json!({"channel_id": ch, "rule_name": "first", "layers": [
                    {"target": {"person_ids": [creator], "by": {"follow_preference": true}},
                     "escalate_window": 30}]}),
            )
            .await;
        let escalation = ok(s, &b)["rule_id"].as_str().unwrap().to_string();
        let reorder = json!({"channel_id": ch, "rule_ids": [escalation]});
        let (s, b) = m
            .api_with(
                &admin_key,
                "/channel/escalate/rule/reorder",
                reorder.clone(),
            )
            .await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("data permission"));
        let (s, b) = m
            .api_with(&creator_key, "/channel/escalate/rule/reorder", reorder)
            .await;
        ok(s, &b);

        // A managing team's member may change it once the team manages it.
        let (s, b) =
            m.ts.api(
                "/team/upsert",
                json!({"team_name": "crew", "person_ids": [mate]}),
            )
            .await;
        let team = ok(s, &b)["team_id"].as_i64().unwrap();
        let (s, b) = m
            .api_with(
                &creator_key,
                "/channel/update",
                json!({"channel_id": ch, "managing_team_ids": [team]}),
            )
            .await;
        ok(s, &b);
        let (s, b) = m
            .api_with(
                &mate_key,
                "/channel/update",
                json!({"channel_id": ch, "description": "d"}),
            )
            .await;
        ok(s, &b);
        // spec: RSP-523 — the owner may always.
        let (s, b) =
            m.ts.api(
                "/channel/update",
                json!({"channel_id": ch, "description": "o"}),
            )
            .await;
        ok(s, &b);
    }
);

// spec: RSP-521, RSP-527 (shared integrations), openapi-compat.md 2.6.1 — a shared
// integration and its routes need Integrations Manage, a dedicated one Channels Manage.
on_both_backends!(
    shared_integrations_and_routes_need_integrations_manage,
    |url: String| async move {
        let m = Members::start(&url).await;
        let ch = channel(&m, json!({"channel_name": "web"})).await;
        let mut keys = Vec::new();
        for (name, points) in [
            (
                "Channel keepers",
                json!(["channels_read", "channels_manage"]),
            ),
            ("Integrators", json!(["integrations_manage"])),
        ] {
            let (s, b) =
                m.ts.api(
                    "/role/upsert",
                    json!({"role_name": name, "permissions": points}),
                )
                .await;
            let role = ok(s, &b)["role_id"].as_i64().unwrap();
            let email = format!("{}@example.com", name.replace(' ', "-").to_lowercase());
            keys.push(m.member(&email, &[role]).await.1);
        }
        let (keeper, integrator) = (&keys[0], &keys[1]);
        let shared = json!({"integration_name": "s", "type": "standard", "kind": "shared",
                            "default_channel_ids": [ch]});
        let dedicated = json!({"integration_name": "d", "type": "standard",
                               "kind": "dedicated", "channel_id": ch});

        let (s, b) = m
            .api_with(keeper, "/integration/create", shared.clone())
            .await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("Integrations Manage"));
        let (s, b) = m
            .api_with(keeper, "/integration/create", dedicated.clone())
            .await;
        ok(s, &b);
        let (s, b) = m
            .api_with(integrator, "/integration/create", dedicated)
            .await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("Channels Manage"));
        let (s, b) = m.api_with(integrator, "/integration/create", shared).await;
        let id = ok(s, &b)["integration_id"].as_i64().unwrap();

        // Routes: Integrations Read (implied by Manage) to look, Manage to save.
        let upsert = json!({"integration_id": id, "version": 1, "default": {"channel_ids": [ch]}});
        let (s, b) = m.api_with(keeper, "/route/upsert", upsert.clone()).await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("Integrations Manage"));
        let (s, b) = m.api_with(integrator, "/route/upsert", upsert).await;
        assert_eq!(ok(s, &b)["version"], 2);
        let (s, b) = m
            .api_with(integrator, "/route/info", json!({"integration_id": id}))
            .await;
        assert_eq!(ok(s, &b)["version"], 2);
        // Changing the shared integration itself follows its kind too.
        let (s, b) = m
            .api_with(
                keeper,
                "/integration/disable",
                json!({"integration_id": id}),
            )
            .await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("Integrations Manage"));
        let (s, b) = m
            .api_with(
                integrator,
                "/integration/disable",
                json!({"integration_id": id}),
            )
            .await;
        ok(s, &b);
    }
);

on_both_backends!(
    the_account_time_zone_is_set_by_administrators,
    |url: String| async move {
        // spec: response.md 1.1 `time_zone` (OQ-40: UTC unless configured), RSP-521/522 (an
        // account setting is administration: Members Manage), RSP-529.
        let m = Members::start(&url).await;
        let (s, b) = m.ts.api("/account/info", json!({})).await;
        assert_eq!(ok(s, &b)["time_zone"], "UTC");
        let (s, b) =
            m.ts.api("/account/reset", json!({"time_zone": "Asia/Kolkata"}))
                .await;
        assert_eq!(ok(s, &b)["time_zone"], "Asia/Kolkata");
        // A bad zone or none is refused and changes nothing.
        for body in [json!({"time_zone": "Mars/Olympus"}), json!({})] {
            let (s, b) = m.ts.api("/account/reset", body).await;
            assert!(refused(s, &b, "InvalidParameter", 400).contains("time_zone"));
        }
        // A Responder (no Members Manage) may read the zone but not change it.
        let (_, responder) = m.member("responder@example.com", &[6]).await;
        let (s, b) = m
            .api_with(&responder, "/account/reset", json!({"time_zone": "UTC"}))
            .await;
        assert!(refused(s, &b, "AccessDenied", 403).contains("Members Manage"));
        let (s, b) = m.api_with(&responder, "/account/info", json!({})).await;
        assert_eq!(ok(s, &b)["time_zone"], "Asia/Kolkata");
    }
);

on_both_backends!(
    data_permission_factors_are_listed_for_every_member,
    |url: String| async move {
        // spec: RSP-527 (data permission per object), RSP-520, openapi-compat.md 2.10
        // (`/role/permission/factor/list`)
        let m = Members::start(&url).await;
        let (_, viewer_key) = m.member("viewer@example.com", &[8]).await;
        let (s, b) = m
            .api_with(&viewer_key, "/role/permission/factor/list", json!({}))
            .await;
        let data = ok(s, &b);
        let items = data["items"].as_array().unwrap();
        assert_eq!(data["total"], items.len());
        let of = |object: &str| {
            items
                .iter()
                .find(|i| i["object"] == object)
                .unwrap_or_else(|| panic!("no {object} in {data}"))
                .clone()
        };
        // The Admin role does not change a channel (RSP-527), but does a shared integration.
        let channel = of("channel");
        assert_eq!(channel["permission"], "channels_manage");
        let factors = channel["factors"].as_array().unwrap();
        assert!(factors.contains(&json!("creator")) && factors.contains(&json!("owner")));
        assert!(!factors.contains(&json!("admin_role")), "{channel}");
        assert!(
            of("shared_integration")["factors"]
                .as_array()
                .unwrap()
                .contains(&json!("admin_role"))
        );
        for object in [
            "team",
            "schedule",
            "template",
            "service_calendar",
            "mapping_table",
        ] {
            let factors = of(object)["factors"].as_array().unwrap().clone();
            assert!(factors.contains(&json!("owner")), "{object}: RSP-523");
        }
        // Every point named is one `/role/permission/list` knows.
        let (s, b) = m
            .api_with(&viewer_key, "/role/permission/list", json!({}))
            .await;
        let points: Vec<Value> = ok(s, &b)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["permission"].clone())
            .collect();
        for i in items {
            assert!(points.contains(&i["permission"]), "{i}");
        }
    }
);
