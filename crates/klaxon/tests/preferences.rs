//! Personal notification preferences end to end (response.md 1.15, §2.21 RSP-330 … RSP-332,
//! RSP-157, RSP-232, OQ-24): `/member/preference/info` and `/member/preference/update`, and
//! what a stored preference changes in the notification outbox — direct assignments follow
//! it, unified level settings ignore it, a change applies from the next firing, shift
//! reminders use its Info list without voice. The outbox is read as decided; delivery has its
//! own tests (slack.rs covers RSP-332 with a linked and an unlinked member). Time is an
//! injected clock. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{ManualClock, TestServer, test_config, wall_ms};
use klaxon_server::Clock;
use serde_json::{Value, json};

const MIN: i64 = 60_000;

struct Node {
    ts: TestServer,
    clock: Arc<ManualClock>,
    owner: i64,
    account: i64,
    channel: i64,
}

impl Node {
    async fn start(database_url: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), database_url);
        config.workers.timers = false;
        config.workers.delivery = false;
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let b = server.bootstrap().clone();
        let ts = TestServer {
            base: server.base_url().to_string(),
            app_key: b.app_key.clone(),
            integration_key: b.integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: database_url.to_string(),
        };
        Node {
            owner: b.owner_member_id,
            account: b.account_id,
            channel: b.channel_id,
            ts,
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn store(&self) -> &klaxon_store::Store {
        self.ts.server.as_ref().unwrap().store()
    }

    /// Moves the clock by `minutes` and runs every step that fell due, in order.
    async fn advance(&self, minutes: i64) {
        let to = self.now() + minutes * MIN;
        self.clock.0.store(to, Ordering::SeqCst);
        self.store()
            .run_due_timers("test-driver", to)
            .await
            .unwrap();
    }

    async fn api(&self, path: &str, body: Value) -> Value {
        let (status, b) = self.ts.api(path, body).await;
        assert_eq!(status, 200, "{path}: {b}");
        assert!(b.get("error").is_none(), "{path}: {b}");
        b["data"].clone()
    }

    /// A direct assignment to the owner (RSP-157): a manual incident of `severity`.
    async fn direct(&self, severity: &str) -> String {
        let created = self
            .api(
                "/incident/create",
                json!({"title": "by hand", "incident_severity": severity,
                       "assigned_to": {"person_ids": [self.owner]}}),
            )
            .await;
        created["incident_id"].as_str().unwrap().to_string()
    }

    /// The channels the outbox holds for `incident_id` (`""`: shift reminders) and `person`,
    /// in the order they were decided.
    async fn channels(&self, incident_id: &str, person: i64) -> Vec<String> {
        self.store()
            .delivery_states(self.account, incident_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.person_id == person)
            .map(|d| d.channel)
            .collect()
    }

    async fn set(&self, preference: Value) -> Value {
        self.api("/member/preference/update", preference).await
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap().to_string())
        .collect()
}

on_both_backends!(
    the_preference_api_reads_defaults_validates_and_saves,
    |url: String| async move {
        let mut n = Node::start(&url).await;
        // spec: OQ-24, response.md 1.15 (defaults for a member who never saved one)
        let info = n.api("/member/preference/info", json!({})).await;
        assert_eq!(info["is_default"], true, "{info}");
        assert_eq!(info["member_id"], n.owner);
        assert_eq!(names(&info["critical"]), ["email", "sms", "voice"]);
        assert_eq!(names(&info["warning"]), ["email", "sms"]);
        assert_eq!(names(&info["info"]), ["email"]);
        // The bootstrap owner has a verified e-mail and no phone: SMS and voice are flagged.
        let reasons: Vec<(String, String)> = info["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["field"].as_str().unwrap().to_string(),
                    w["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(
            reasons.contains(&("critical[2]".into(), "contact_missing".into())),
            "{info}"
        );
        assert!(!reasons.iter().any(|(f, _)| f == "critical[0]"), "{info}");

        // Bad input names the field and changes nothing.
        let ok = json!(["email"]);
        for (body, field) in [
            (json!({"critical": ok, "warning": ok}), "info"),
            (
                json!({"critical": ok, "warning": [], "info": ok}),
                "warning",
            ),
            (
                json!({"critical": ["email", "pager"], "warning": ok, "info": ok}),
                "critical[1].channel",
            ),
            (
                json!({"critical": ["sms", "sms"], "warning": ok, "info": ok}),
                "critical[1]",
            ),
            (
                json!({"critical": [{"channel": "email", "integration_id": 5}],
                       "warning": ok, "info": ok}),
                "critical[0].integration_id",
            ),
        ] {
            let (status, b) = n.ts.api("/member/preference/update", body.clone()).await;
            assert_eq!(status, 400, "{body}: {b}");
            assert_eq!(b["error"]["code"], "InvalidParameter", "{b}");
            let message = b["error"]["message"].as_str().unwrap();
            assert!(message.starts_with(&format!("{field}:")), "{message}");
        }
        // An IM integration that does not exist in the account.
        let (status, b) =
            n.ts.api(
                "/member/preference/update",
                json!({"critical": [{"channel": "slack_app", "integration_id": 424242}],
                       "warning": ok, "info": ok}),
            )
            .await;
        assert_eq!(status, 400, "{b}");
        assert_eq!(b["error"]["code"], "ResourceNotFound", "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("critical[0].integration_id:"),
            "{b}"
        );
        // Only the member themself: naming someone else is refused.
        let (status, b) =
            n.ts.api(
                "/member/preference/update",
                json!({"member_id": n.owner + 1000, "critical": ok, "warning": ok, "info": ok}),
            )
            .await;
        assert_eq!(status, 403, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("member_id:")
        );
        let info = n.api("/member/preference/info", json!({})).await;
        assert_eq!(info["is_default"], true, "nothing was saved: {info}");

        // A good one is saved and read back; an IM app without a linked identity is flagged
        // (spec: RSP-332).
        let saved = n
            .set(
                json!({"critical": ["voice", "slack_app"], "warning": [{"channel": "sms"}],
                        "info": ["email"], "member_id": n.owner}),
            )
            .await;
        assert_eq!(saved["is_default"], false);
        let info = n.api("/member/preference/info", json!({})).await;
        assert_eq!(info["is_default"], false);
        assert_eq!(names(&info["critical"]), ["voice", "slack_app"]);
        assert_eq!(names(&info["warning"]), ["sms"]);
        let slack = info["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["field"] == "critical[1]")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(slack["reason"], "app_not_linked", "{info}");
        assert_eq!(slack["channel"], "slack_app");

        // spec: RSP-600 (a write, audited); the read is not.
        let now = n.now() / 1000;
        let audit = n
            .api(
                "/audit/search",
                json!({"start_time": now - 3600, "end_time": now + 60}),
            )
            .await;
        let text = audit.to_string();
        assert!(text.contains("member_preference:write:update"), "{text}");
        assert!(!text.contains("member_preference:write:info"), "{text}");
        n.ts.stop().await;
    }
);

on_both_backends!(
    a_stored_preference_decides_direct_assignments_but_not_unified_levels,
    |url: String| async move {
        // spec: RSP-157, RSP-330, RSP-155 (a)
        let mut n = Node::start(&url).await;
        // Defaults first (OQ-24).
        let id = n.direct("Critical").await;
        assert_eq!(n.channels(&id, n.owner).await, ["email", "sms", "voice"]);
        n.set(json!({"critical": ["voice", "app"], "warning": ["sms"], "info": ["sms"]}))
            .await;
        let id = n.direct("Critical").await;
        assert_eq!(n.channels(&id, n.owner).await, ["voice", "app"]);
        let id = n.direct("Warning").await;
        assert_eq!(n.channels(&id, n.owner).await, ["sms"]);
        // Reassigning and adding responders are direct assignments too.
        let id = n.direct("Info").await;
        n.api(
            "/incident/assign",
            json!({"incident_id": id, "assigned_to": {"person_ids": [n.owner]}}),
        )
        .await;
        assert_eq!(n.channels(&id, n.owner).await, ["sms", "sms"]);

        // A level with unified settings ignores the preference; one that follows it uses it.
        let rule = n
            .api(
                "/channel/escalate/rule/create",
                json!({"channel_id": n.channel, "rule_name": "Unified",
                       "layers": [{"target": {"person_ids": [n.owner],
                                              "by": {"follow_preference": false,
                                                     "critical": ["email"]}},
                                   "escalate_window": 30},
                                  {"target": {"person_ids": [n.owner],
                                              "by": {"follow_preference": true}},
                                   "escalate_window": 30}]}),
            )
            .await;
        let rule_id = rule["rule_id"].as_str().unwrap().to_string();
        let created = n
            .api(
                "/incident/create",
                json!({"title": "by rule", "incident_severity": "Critical",
                       "channel_id": n.channel,
                       "assigned_to": {"escalate_rule_id": rule_id, "layer_idx": 0}}),
            )
            .await;
        let id = created["incident_id"].as_str().unwrap().to_string();
        assert_eq!(n.channels(&id, n.owner).await, ["email"]);
        // Level 2 follows preferences: at its deadline the escalation notifies by them.
        n.advance(30).await;
        assert_eq!(n.channels(&id, n.owner).await, ["email", "voice", "app"]);
        n.ts.stop().await;
    }
);

on_both_backends!(
    a_preference_change_applies_from_the_next_firing,
    |url: String| async move {
        // spec: RSP-331
        let mut n = Node::start(&url).await;
        n.set(json!({"critical": ["sms"], "warning": ["sms"], "info": ["email"]}))
            .await;
        let rule = n
            .api(
                "/channel/escalate/rule/create",
                json!({"channel_id": n.channel, "rule_name": "Repeats",
                       "layers": [{"target": {"person_ids": [n.owner],
                                              "by": {"follow_preference": true}},
                                   "escalate_window": 60, "max_times": 2,
                                   "notify_step": 10}]}),
            )
            .await;
        let rule_id = rule["rule_id"].as_str().unwrap().to_string();
        let created = n
            .api(
                "/incident/create",
                json!({"title": "repeats", "incident_severity": "Critical",
                       "channel_id": n.channel,
                       "assigned_to": {"escalate_rule_id": rule_id, "layer_idx": 0}}),
            )
            .await;
        let id = created["incident_id"].as_str().unwrap().to_string();
        let first = n.store().delivery_states(n.account, &id).await.unwrap();
        assert_eq!(n.channels(&id, n.owner).await, ["sms"]);
        // The member changes their Critical list; the firing already decided keeps its rows.
        n.set(json!({"critical": ["email", "voice"], "warning": ["sms"], "info": ["email"]}))
            .await;
        let now = n.store().delivery_states(n.account, &id).await.unwrap();
        assert_eq!(now, first, "the dispatched firing is untouched");
        // The repeat 10 minutes later is the next firing: it uses the new list.
        n.advance(10).await;
        assert_eq!(n.channels(&id, n.owner).await, ["sms", "email", "voice"]);
        n.ts.stop().await;
    }
);

on_both_backends!(
    shift_reminders_that_follow_preferences_use_the_info_list_without_voice,
    |url: String| async move {
        // spec: RSP-232 (Info-level list without voice, OQ-19), RSP-330
        use klaxon_core::schedule::{
            self, Calendars, Group, GroupMember, Layer, ReminderBy, RotationUnit, Schedule,
            ScheduleNotify,
        };
        const HOUR: i64 = 3_600_000;
        let mut n = Node::start(&url).await;
        n.set(json!({"critical": ["email"], "warning": ["email"],
                     "info": ["voice", "sms", "email"]}))
            .await;
        let other = n
            .api(
                "/member/invite",
                json!({"members": [{"member_name": "Bo", "email": "bo@example.com"}]}),
            )
            .await["items"][0]["member_id"]
            .as_i64()
            .unwrap();
        // A handoff from `other` (who keeps the defaults) to the owner, 3 hours ahead.
        let handoff = (n.now() / HOUR + 3) * HOUR;
        n.clock
            .0
            .fetch_add(handoff - 2 * HOUR - n.now(), Ordering::SeqCst);
        let group = |p| Group {
            group_name: String::new(),
            members: vec![GroupMember {
                person_id: p,
                role_id: 0,
            }],
        };
        let schedule_with = |name: &str, by: ReminderBy| Schedule {
            schedule_name: name.into(),
            time_zone: "UTC".into(),
            layers: vec![Layer {
                layer_id: 1,
                layer_name: "Weekly".into(),
                groups: vec![group(other), group(n.owner)],
                layer_start: handoff - 7 * 24 * HOUR,
                rotation_unit: RotationUnit::Week,
                rotation_value: 1,
                ..Layer::default()
            }],
            notify: ScheduleNotify {
                advance_in_time: 1800,
                by: Some(by),
                ..ScheduleNotify::default()
            },
            ..Schedule::default()
        };
        for (name, by) in [
            (
                "Follows preferences",
                ReminderBy {
                    follow_preference: true,
                    personal_channels: vec![],
                },
            ),
            (
                "Unified",
                ReminderBy {
                    follow_preference: false,
                    personal_channels: vec![schedule::DirectChannel::Sms],
                },
            ),
        ] {
            let s =
                schedule::create_schedule(schedule_with(name, by), n.now(), Calendars::default())
                    .unwrap();
            n.store()
                .create_schedule(n.account, &s)
                .await
                .unwrap()
                .unwrap();
        }
        let store = n.store().clone();
        store.sweep_shift_reminders(n.now()).await.unwrap();
        // Half an hour before the handoff: one advance reminder per schedule.
        n.clock.0.fetch_add(90 * MIN, Ordering::SeqCst);
        let sweep = store.sweep_shift_reminders(n.now()).await.unwrap();
        assert_eq!(sweep.reminders, 2, "{sweep:?}");
        let mut mine = n.channels("", n.owner).await;
        mine.sort();
        // Following preferences: sms and e-mail (voice dropped); the unified one: sms.
        assert_eq!(mine, ["email", "sms", "sms"]);
        let mut theirs = n.channels("", other).await;
        theirs.sort();
        // `other` never saved a preference: the default Info list, e-mail.
        assert_eq!(theirs, ["email", "sms"]);
        n.ts.stop().await;
    }
);
