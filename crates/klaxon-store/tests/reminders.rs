//! Shift reminders into the outbox (response.md RSP-230 … RSP-233), on SQLite and (with
//! `KLAXON_TEST_DATABASE_URL`) PostgreSQL, with explicit instants instead of a running clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::Db;

use klaxon_core::model::Millis;
use klaxon_core::schedule::{
    self, Calendars, DirectChannel, FixedTime, FixedTimeCycle, Group, GroupMember, Layer, Override,
    ReminderBy, ReminderChat, ReminderChatType, RotationUnit, Schedule, ScheduleNotify,
};
use serde_json::{Value, json};

both!(
    advance_reminders_reach_incoming_and_outgoing_once,
    reminders_follow_the_schedule_as_it_is_at_send_time,
    a_daily_reminder_lists_who_is_and_will_be_on_call,
    overdue_reminders_are_dropped_not_sent_late,
);

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
/// Mon 2025-06-02 09:00 UTC: the layer's start, a handoff every day at 09:00.
const L: Millis = 1_748_854_800_000;
const A: i64 = 101;
const B: i64 = 102;

fn daily_layer() -> Layer {
    let group = |p| Group {
        group_name: String::new(),
        members: vec![GroupMember {
            person_id: p,
            role_id: 0,
        }],
    };
    Layer {
        layer_id: 1,
        layer_name: "Daily".into(),
        groups: vec![group(A), group(B)],
        layer_start: L,
        rotation_unit: RotationUnit::Day,
        rotation_value: 1,
        ..Layer::default()
    }
}

fn with_notify(notify: ScheduleNotify) -> Schedule {
    Schedule {
        schedule_name: "Ops".into(),
        time_zone: "UTC".into(),
        layers: vec![daily_layer()],
        notify,
        ..Schedule::default()
    }
}

fn advance_notify() -> ScheduleNotify {
    let mut settings = serde_json::Map::new();
    settings.insert(
        "webhook_url".into(),
        json!("https://hooks.slack.test/services/T/B/X"),
    );
    ScheduleNotify {
        advance_in_time: 3600,
        by: Some(ReminderBy {
            follow_preference: true,
            personal_channels: vec![],
        }),
        webhooks: vec![ReminderChat {
            chat_type: ReminderChatType::Slack,
            settings,
        }],
        ..ScheduleNotify::default()
    }
}

async fn create(db: &Db, account_id: i64, s: Schedule, at: Millis) -> Schedule {
    let s = schedule::create_schedule(s, at, Calendars::default()).unwrap();
    let id = db
        .store
        .create_schedule(account_id, &s)
        .await
        .unwrap()
        .unwrap();
    db.store.schedule(account_id, id).await.unwrap().unwrap()
}

type Row = (String, String, i64, String, Value);

async fn rows(db: &Db, account_id: i64) -> Vec<Row> {
    db.store.shift_reminder_rows(account_id).await.unwrap()
}

/// (channel, person_id) of each row, sorted.
fn sends(rows: &[Row]) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = rows.iter().map(|r| (r.1.clone(), r.2)).collect();
    v.sort();
    v
}

// spec: RSP-230, RSP-232 — A = 1 h before the 09:00 handoff B takes over from A: both get the
// reminder on their Info-level channel (e-mail by default), and the Slack bot gets one message
// mentioning both. Sweeping again, or from an older watermark (another node), adds nothing.
async fn advance_reminders_reach_incoming_and_outgoing_once(db: &Db) {
    let b = db.boot(L - 2 * DAY).await;
    create(db, b.account_id, with_notify(advance_notify()), L - DAY).await;

    // The first sweep only sets the watermark: nothing is sent for the past.
    let first = db.store.sweep_shift_reminders(L + HOUR).await.unwrap();
    assert_eq!((first.schedules, first.queued), (1, 0));
    // One millisecond before h − A: nothing yet.
    let early = db
        .store
        .sweep_shift_reminders(L + DAY - HOUR - 1)
        .await
        .unwrap();
    assert_eq!(early.queued, 0);
    assert!(rows(db, b.account_id).await.is_empty());

    let due = db
        .store
        .sweep_shift_reminders(L + DAY - HOUR)
        .await
        .unwrap();
    assert_eq!((due.reminders, due.queued), (1, 3));
    let got = rows(db, b.account_id).await;
    assert_eq!(
        sends(&got),
        [
            ("email".to_string(), A),
            ("email".to_string(), B),
            ("slack".to_string(), 0)
        ]
    );
    let chat = got.iter().find(|r| r.1 == "slack").unwrap();
    assert_eq!(chat.4["mentions"], json!([B, A]));
    assert_eq!(
        chat.4["settings"]["webhook_url"],
        "https://hooks.slack.test/services/T/B/X"
    );
    let reminder = &chat.4["reminder"];
    assert_eq!(reminder["schedule_name"], "Ops");
    assert_eq!(reminder["kind"]["type"], "advance");
    assert_eq!(reminder["kind"]["handoff_at"], L + DAY);
    assert_eq!(reminder["kind"]["incoming"], json!([B]));
    assert_eq!(reminder["kind"]["outgoing"], json!([A]));
    // RSP-232: the message gives the incoming shift's end.
    assert_eq!(reminder["shift_ends"][B.to_string()], L + 2 * DAY);
    assert!(got.iter().all(|r| r.3 == "queued"));

    // Idempotent: the same instant again, and a sweep from an older watermark.
    let again = db
        .store
        .sweep_shift_reminders(L + DAY - HOUR)
        .await
        .unwrap();
    assert_eq!(again.queued, 0);
    db.exec("UPDATE schedule_reminder_runs SET swept_to = 0")
        .await;
    let rerun = db
        .store
        .sweep_shift_reminders(L + DAY - HOUR + 1)
        .await
        .unwrap();
    assert_eq!(rerun.queued, 0, "{rerun:?}");
    assert_eq!(rows(db, b.account_id).await.len(), 3);
}

// spec: RSP-230, RSP-233 — saving a schedule sends nothing; the change points are those of the
// schedule as stored when the reminder is due. An override that keeps A on across the next
// handoff removes that reminder and creates one for the override's start instead.
async fn reminders_follow_the_schedule_as_it_is_at_send_time(db: &Db) {
    let b = db.boot(L - 2 * DAY).await;
    let s = create(db, b.account_id, with_notify(advance_notify()), L - DAY).await;
    db.store.sweep_shift_reminders(L + HOUR).await.unwrap();

    // Day 2's handoff B → A at L + 2 DAY: A takes over two hours early by an override.
    let mut edited = s.clone();
    edited.overrides = vec![Override {
        override_id: 1,
        start: L + 2 * DAY - 2 * HOUR,
        end: L + 2 * DAY + 2 * HOUR,
        person_id: A,
        ..Override::default()
    }];
    let edited = schedule::apply_edit(&s, edited, L + 2 * HOUR, Calendars::default()).unwrap();
    db.store
        .update_schedule(b.account_id, &edited)
        .await
        .unwrap()
        .unwrap();
    // RSP-233: the save itself queued nothing.
    assert!(rows(db, b.account_id).await.is_empty());

    // Through day 1's handoff (A → B at L + DAY) up to just after day 2's.
    db.store
        .sweep_shift_reminders(L + DAY - HOUR)
        .await
        .unwrap();
    let day1 = rows(db, b.account_id).await.len();
    assert_eq!(day1, 3);
    // A = 1 h before the override's start.
    let sweep = db
        .store
        .sweep_shift_reminders(L + 2 * DAY - 3 * HOUR)
        .await
        .unwrap();
    assert_eq!((sweep.reminders, sweep.queued), (1, 3), "{sweep:?}");
    // 08:00, an hour before the old handoff time: nothing, since A stays on at 09:00.
    let later = db
        .store
        .sweep_shift_reminders(L + 2 * DAY + HOUR)
        .await
        .unwrap();
    assert_eq!(later.reminders, 0, "{later:?}");
    let got = rows(db, b.account_id).await;
    let chat = got.iter().rfind(|r| r.1 == "slack").unwrap();
    let kind = &chat.4["reminder"]["kind"];
    // The set changes when the override starts (B → A), not at 09:00 (A stays on).
    assert_eq!(kind["handoff_at"], L + 2 * DAY - 2 * HOUR);
    assert_eq!(kind["incoming"], json!([A]));
    assert_eq!(kind["outgoing"], json!([B]));
}

// spec: RSP-231, RSP-232 — the daily reminder at 08:00 goes to whoever is on call then and to
// whoever comes on within 24 hours, on the listed personal channels only.
async fn a_daily_reminder_lists_who_is_and_will_be_on_call(db: &Db) {
    let b = db.boot(L - 2 * DAY).await;
    let notify = ScheduleNotify {
        fixed_time: Some(FixedTime {
            cycle: FixedTimeCycle::Day,
            start: "08:00".into(),
        }),
        by: Some(ReminderBy {
            follow_preference: false,
            personal_channels: vec![DirectChannel::Sms, DirectChannel::Email],
        }),
        ..ScheduleNotify::default()
    };
    create(db, b.account_id, with_notify(notify), L - DAY).await;
    db.store.sweep_shift_reminders(L).await.unwrap();

    // Day 0 (from L) is A's, day 1 (from L + DAY) is B's: at 08:00 on day 1, A is on until
    // 09:00, and B comes on then.
    let sweep = db
        .store
        .sweep_shift_reminders(L + DAY - HOUR)
        .await
        .unwrap();
    assert_eq!((sweep.reminders, sweep.queued), (1, 4));
    let got = rows(db, b.account_id).await;
    assert_eq!(
        sends(&got),
        [
            ("email".to_string(), A),
            ("email".to_string(), B),
            ("sms".to_string(), A),
            ("sms".to_string(), B)
        ]
    );
    let kind = &got[0].4["reminder"]["kind"];
    assert_eq!(kind["type"], "daily");
    assert_eq!(kind["on_call"], json!([{"person_id": A, "until": L + DAY}]));
    assert_eq!(kind["upcoming"], json!([{"person_id": B, "from": L + DAY}]));
    assert_eq!(
        kind["handoffs"],
        json!([{"at": L + DAY, "incoming": [B], "outgoing": [A]}])
    );
}

// A node that was down for hours does not page people with reminders for handoffs long past:
// reminders more than an hour overdue are counted as stale and not queued.
async fn overdue_reminders_are_dropped_not_sent_late(db: &Db) {
    let b = db.boot(L - 2 * DAY).await;
    create(db, b.account_id, with_notify(advance_notify()), L - DAY).await;
    db.store.sweep_shift_reminders(L + HOUR).await.unwrap();
    // Down until day 3, 08:30: day 1's and day 2's reminders are stale; day 3's (due 08:00) is
    // half an hour late and still useful.
    let sweep = db
        .store
        .sweep_shift_reminders(L + 3 * DAY - 30 * 60_000)
        .await
        .unwrap();
    assert_eq!((sweep.reminders, sweep.stale), (3, 2), "{sweep:?}");
    let got = rows(db, b.account_id).await;
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|r| r.4["reminder"]["kind"]["handoff_at"] == L + 3 * DAY)
    );
}
