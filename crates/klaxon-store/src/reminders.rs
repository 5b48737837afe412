//! Shift reminders into the notification outbox (response.md RSP-230 … RSP-233; migration
//! 0031).
//!
//! The core decides *what* is due ([`klaxon_core::schedule::reminders`]); this module decides
//! *when it is looked at* and writes the result where the delivery engine picks it up:
//!
//! - Each schedule with reminders has a watermark `swept_to`. A sweep at `now` asks the core for
//!   the reminders with `swept_to ≤ send_at < now + 1`, from the schedule **as stored now**
//!   (RSP-230: change points are computed at send time; a handoff that disappeared is never
//!   found, one that appears too late has its send instant behind the watermark). Saving a
//!   schedule writes nothing here (RSP-233).
//! - The first sweep of a schedule starts at `now`: nothing is sent for the past.
//! - A reminder more than [`STALE_MS`] overdue (the node was down) is skipped and logged: "you
//!   are on call in 15 minutes" an hour after the handoff helps nobody.
//! - Each recipient gets one outbox row per personal channel (RSP-232: the Info preference
//!   without voice when `follow_preference`, else the listed channels), and each configured
//!   chat one row that @-mentions every recipient. Rows carry `fire_type = shift_reminder`,
//!   no incident, and the reminder itself in `target.reminder`; the delivery engine renders the
//!   built-in text from it.
//! - Rows and the watermark are written in one transaction, and each row's `rid` is derived from
//!   (schedule, send instant, kind, recipient or chat, channel): two nodes sweeping the same
//!   window write every reminder once (`ON CONFLICT (rid) DO NOTHING`).
//! - Tenants that are not served (RSP-008 Halt) are skipped.

use std::collections::{BTreeMap, HashMap, HashSet};

use klaxon_core::model::{Millis, Severity};
use klaxon_core::response::NotificationPreference;
use klaxon_core::schedule::{self, Calendars, DirectChannel, Reminder, ReminderKind, Schedule};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// Reminders overdue by more than this are not sent.
pub const STALE_MS: Millis = 60 * 60 * 1000;

/// The `fire_type` (and `reason`) of reminder rows in the outbox.
pub const SHIFT_REMINDER: &str = "shift_reminder";

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReminderSweep {
    /// Schedules with reminders configured that were looked at.
    pub schedules: usize,
    /// Reminders due in the swept windows.
    pub reminders: usize,
    /// Outbox rows written (one per recipient and channel, and one per chat).
    pub queued: usize,
    /// Reminders skipped as stale.
    pub stale: usize,
}

impl Store {
    /// Queues every shift reminder that has come due up to `now` (see the module docs).
    /// Safe to run on several nodes at once and as often as wanted.
    pub async fn sweep_shift_reminders(&self, now: Millis) -> Result<ReminderSweep> {
        let mut tx = self.inner.write.begin().await?;
        let mut out = ReminderSweep::default();
        let rows = Sql::new(
            "SELECT s.account_id, s.schedule_id, s.definition, r.swept_to FROM schedules s \
             LEFT JOIN schedule_reminder_runs r ON r.account_id = s.account_id AND \
             r.schedule_id = s.schedule_id WHERE s.deleted = 0 ORDER BY s.account_id, s.schedule_id",
        );
        let rows = rows.query_on(&tx).fetch_all(&mut *tx).await?;
        let mut blocked: Option<(i64, bool)> = None;
        for row in &rows {
            let account_id = get_i64(row, "account_id")?;
            let s = crate::schedules::schedule(row)?;
            if s.notify.advance_in_time <= 0 && s.notify.fixed_time.is_none() {
                continue;
            }
            let is_blocked = match blocked {
                Some((a, b)) if a == account_id => b,
                _ => {
                    let b = crate::halt::tenant_blocked(&mut tx, account_id)
                        .await?
                        .is_some();
                    blocked = Some((account_id, b));
                    b
                }
            };
            // A NULL watermark (LEFT JOIN, first sweep) reads as absent.
            let swept_to: Option<Millis> = sqlx::Row::try_get::<i64, _>(row, "swept_to").ok();
            let to = now.saturating_add(1);
            let from = swept_to.unwrap_or(now).min(to);
            set_watermark(&mut tx, account_id, s.schedule_id, to).await?;
            if is_blocked {
                continue;
            }
            out.schedules += 1;
            let calendars = crate::calendars::load(&mut tx, account_id).await?;
            let due = match schedule::reminders(&s, calendars.view(), from, to) {
                Ok(due) => due,
                Err(e) => {
                    // A schedule the resolver refuses (say, a calendar it masks by was
                    // deleted) must not stop every other schedule's reminders.
                    tracing::warn!(account_id, schedule_id = s.schedule_id, error = %e,
                        "shift reminders skipped: the schedule cannot be resolved");
                    continue;
                }
            };
            for r in &due {
                out.reminders += 1;
                if now.saturating_sub(r.send_at) > STALE_MS {
                    out.stale += 1;
                    tracing::warn!(
                        account_id,
                        schedule_id = s.schedule_id,
                        send_at = r.send_at,
                        "shift reminder skipped: more than an hour overdue"
                    );
                    continue;
                }
                let ends = shift_ends(&s, calendars.view(), r);
                out.queued += queue(&mut tx, account_id, &s, r, &ends, now).await?;
            }
        }
        tx.commit().await?;
        Ok(out)
    }
}

async fn set_watermark(
    conn: &mut AnyConnection,
    account_id: i64,
    schedule_id: i64,
    to: Millis,
) -> Result<()> {
    let mut sql =
        Sql::new("INSERT INTO schedule_reminder_runs (account_id, schedule_id, swept_to) VALUES (");
    sql.bind(account_id)
        .push(", ")
        .bind(schedule_id)
        .push(", ")
        .bind(to)
        .push(
            ") ON CONFLICT (account_id, schedule_id) DO UPDATE SET swept_to = \
             CASE WHEN schedule_reminder_runs.swept_to > excluded.swept_to \
             THEN schedule_reminder_runs.swept_to ELSE excluded.swept_to END",
        );
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// The wire name of a direct channel (`sms`, `feishu_app`, …).
fn channel_name(c: DirectChannel) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// RSP-232 with `follow_preference`: the recipient's Info-level list, stored (1.15) or the
/// OQ-24 default, read when the reminder is queued. An entry naming one IM integration counts
/// as its channel: reminders go to the member's linked instance.
fn info_preference(
    stored: &HashMap<i64, NotificationPreference>,
    person: i64,
) -> Vec<DirectChannel> {
    let default = NotificationPreference::default();
    stored
        .get(&person)
        .unwrap_or(&default)
        .for_severity(Severity::Info)
        .iter()
        .filter_map(|c| serde_json::from_value(Value::String(c.channel.clone())).ok())
        .collect()
}

/// RSP-232 wants the shift's start and end in the message. An advance reminder knows the
/// start (the handoff); the end of each incoming person's shift is the first instant after it
/// when they are no longer on call, looked up to [`schedule::DAILY_UNTIL_HORIZON_MS`] ahead
/// (absent when they are still on call then).
fn shift_ends(s: &Schedule, calendars: Calendars<'_>, r: &Reminder) -> BTreeMap<i64, Millis> {
    let ReminderKind::Advance {
        handoff_at,
        incoming,
        ..
    } = &r.kind
    else {
        return BTreeMap::new();
    };
    let horizon = handoff_at.saturating_add(schedule::DAILY_UNTIL_HORIZON_MS);
    let Ok(shifts) = schedule::timeline(s, calendars, *handoff_at, horizon) else {
        return BTreeMap::new();
    };
    let mut ends = BTreeMap::new();
    for &person in incoming {
        // Follow the person's shifts from the handoff while they touch or overlap.
        let mut mine: Vec<(Millis, Millis)> = shifts
            .iter()
            .filter(|sh| sh.members.contains(&person))
            .map(|sh| (sh.start, sh.end))
            .collect();
        mine.sort_unstable();
        let mut end = *handoff_at;
        for (start, stop) in mine {
            if start <= end {
                end = end.max(stop);
            } else {
                break;
            }
        }
        if end > *handoff_at && end < horizon {
            ends.insert(person, end);
        }
    }
    ends
}

fn rid(account_id: i64, schedule_id: i64, r: &Reminder, who: &str, channel: &str) -> String {
    let kind = match r.kind {
        ReminderKind::Advance { handoff_at, .. } => format!("advance@{handoff_at}"),
        ReminderKind::Daily { .. } => "daily".to_string(),
    };
    let key = format!(
        "{account_id}/{schedule_id}/{}/{kind}/{who}/{channel}",
        r.send_at
    );
    let digest = Sha256::digest(key.as_bytes());
    format!("rem-{}", &hex::encode(digest)[..24])
}

/// Writes the outbox rows of one reminder; returns how many were new.
async fn queue(
    conn: &mut AnyConnection,
    account_id: i64,
    s: &Schedule,
    r: &Reminder,
    ends: &BTreeMap<i64, Millis>,
    now: Millis,
) -> Result<usize> {
    let mut recipients = r.recipients();
    let mut seen = HashSet::new();
    recipients.retain(|p| seen.insert(*p));
    let reminder = json!({
        "schedule_id": s.schedule_id,
        "schedule_name": s.schedule_name,
        "time_zone": s.time_zone,
        "send_at": r.send_at,
        "kind": r.kind,
        "shift_ends": ends,
    });
    // (rid, channel, person_id, target)
    let mut rows: Vec<(String, String, i64, Value)> = Vec::new();
    let stored = if s.notify.by.as_ref().is_some_and(|b| b.follow_preference) {
        crate::preferences::load(conn, account_id).await?
    } else {
        HashMap::new()
    };
    for &person in &recipients {
        let preference = info_preference(&stored, person);
        for c in schedule::reminder_channels(s.notify.by.as_ref(), &preference) {
            let channel = channel_name(c);
            rows.push((
                rid(
                    account_id,
                    s.schedule_id,
                    r,
                    &format!("p{person}"),
                    &channel,
                ),
                channel,
                person,
                json!({ "reminder": reminder }),
            ));
        }
    }
    for (i, chat) in s.notify.webhooks.iter().enumerate() {
        let channel = serde_json::to_value(chat.chat_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        rows.push((
            rid(account_id, s.schedule_id, r, &format!("c{i}"), &channel),
            channel,
            0,
            json!({
                "reminder": reminder,
                "settings": Value::Object(chat.settings.clone()),
                "mentions": recipients,
            }),
        ));
    }
    let mut written = 0;
    for (rid, channel, person_id, target) in rows {
        let mut sql = Sql::new(
            "INSERT INTO notifications (rid, account_id, incident_id, firing_id, reason, \
             fire_type, escalate_rule_id, layer_idx, channel, person_id, target, severity, \
             created_at) VALUES (",
        );
        sql.bind(rid.as_str())
            .push(", ")
            .bind(account_id)
            .push(", '', '', ")
            .bind(SHIFT_REMINDER)
            .push(", ")
            .bind(SHIFT_REMINDER)
            .push(", '', 0, ")
            .bind(channel.as_str())
            .push(", ")
            .bind(person_id)
            .push(", ")
            .bind(target.to_string())
            .push(", 'Info', ")
            .bind(now)
            .push(") ON CONFLICT (rid) DO NOTHING");
        written += sql
            .query_on(conn)
            .execute(&mut *conn)
            .await?
            .rows_affected() as usize;
    }
    Ok(written)
}

impl Store {
    /// The shift reminders in the outbox of an account, oldest first, as
    /// `(rid, channel, person_id, status, target)`.
    pub async fn shift_reminder_rows(
        &self,
        account_id: i64,
    ) -> Result<Vec<(String, String, i64, String, Value)>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT rid, channel, person_id, status, target FROM notifications WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" AND fire_type = ")
            .bind(SHIFT_REMINDER)
            .push(" ORDER BY seq");
        let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                Ok((
                    get_str(row, "rid")?,
                    get_str(row, "channel")?,
                    get_i64(row, "person_id")?,
                    get_str(row, "status")?,
                    serde_json::from_str(&get_str(row, "target")?).unwrap_or(Value::Null),
                ))
            })
            .collect()
    }
}
