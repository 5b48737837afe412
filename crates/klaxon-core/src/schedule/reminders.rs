//! Shift reminders, decided purely (RSP-230 … RSP-233); delivery is the notifier's job.
//!
//! RSP-230 wants the change points "computed at send time from the configuration current at
//! that moment". The shell therefore calls [`super::reminders`] with the schedule as stored
//! *now* and a window that starts no earlier than its last run: a handoff that disappeared is
//! simply not found, and one that appears less than A before it happens has its send instant
//! before the window and is never sent. Saving a schedule sends nothing by itself (RSP-233).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::ScheduleError;
use super::model::{DirectChannel, PersonId, ReminderBy, Schedule};
use super::resolve::Engine;
use super::timeline::{intervals, person_sets};
use super::zone::{self, DAY_MS, parse_hhmm};
use crate::model::Millis;

/// How far a daily reminder looks for the end of the current shifts. A person on call beyond
/// it is reported with `until = None`.
pub const DAILY_UNTIL_HORIZON_MS: Millis = 45 * DAY_MS;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// When the reminder is due (it must not be sent before, §0.2).
    pub send_at: Millis,
    pub kind: ReminderKind,
}

impl Reminder {
    /// Everyone the reminder goes to, each once.
    pub fn recipients(&self) -> Vec<PersonId> {
        match &self.kind {
            ReminderKind::Advance {
                incoming, outgoing, ..
            } => incoming.iter().chain(outgoing).copied().collect(),
            ReminderKind::Daily {
                on_call, upcoming, ..
            } => on_call
                .iter()
                .map(|c| c.person_id)
                .chain(upcoming.iter().map(|u| u.person_id))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReminderKind {
    /// RSP-230: A seconds before a change of the final set of persons.
    Advance {
        handoff_at: Millis,
        /// `Y \ X`, ascending.
        incoming: Vec<PersonId>,
        /// `X \ Y`, ascending.
        outgoing: Vec<PersonId>,
    },
    /// RSP-231: the daily reminder at local time F.
    Daily {
        /// Who is on call at `send_at`, and until when.
        on_call: Vec<CurrentShift>,
        /// Who comes on call within the next 24 hours (and is not on call now), and from when.
        upcoming: Vec<UpcomingShift>,
        /// Every change of the set of persons within the next 24 hours.
        handoffs: Vec<Handoff>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentShift {
    pub person_id: PersonId,
    /// When the person goes off call; `None` if still on call after
    /// [`DAILY_UNTIL_HORIZON_MS`].
    pub until: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingShift {
    pub person_id: PersonId,
    pub from: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub at: Millis,
    pub incoming: Vec<PersonId>,
    pub outgoing: Vec<PersonId>,
}

/// Reminders with `from ≤ send_at < to`, by `send_at` (advance before daily on a tie).
pub(crate) fn due(
    schedule: &Schedule,
    engine: &Engine<'_>,
    from: Millis,
    to: Millis,
) -> Result<Vec<Reminder>, ScheduleError> {
    let mut out = Vec::new();
    if from >= to {
        return Ok(out);
    }
    let advance = schedule.notify.advance_in_time.saturating_mul(1000);
    if advance > 0 {
        out.extend(advance_reminders(engine, from, to, advance)?);
    }
    if let Some(fixed) = &schedule.notify.fixed_time {
        let f = parse_hhmm(&fixed.start)
            .ok_or_else(|| ScheduleError::invalid("notify.fixed_time.start", "must be HH:MM"))?;
        let tz = zone::zone(&schedule.time_zone, "time_zone")?;
        let last = zone::add_date_days(zone::local(&tz, to)?.date(), 1)?;
        let mut d = zone::add_date_days(zone::local(&tz, from)?.date(), -1)?;
        while d <= last {
            // "Every day at local time F": converted with RSP-215, so once a day even when F
            // falls into a DST gap or fold.
            let s = zone::to_instant(&tz, d.to_datetime(f))?;
            if from <= s
                && s < to
                && let Some(r) = daily_reminder(engine, s)?
            {
                out.push(r);
            }
            d = zone::add_date_days(d, 1)?;
        }
    }
    out.sort_by_key(|r| (r.send_at, matches!(r.kind, ReminderKind::Daily { .. })));
    Ok(out)
}

/// RSP-230: for every change point h with `from ≤ h − A < to`, where the set of persons just
/// before h (X) differs from the set at h (Y), remind `Y \ X` and `X \ Y` at h − A. Persons on
/// both sides, and role changes, produce nothing.
fn advance_reminders(
    engine: &Engine<'_>,
    from: Millis,
    to: Millis,
    advance: Millis,
) -> Result<Vec<Reminder>, ScheduleError> {
    // Start one millisecond early so the set just before the first candidate h is known.
    let sets = person_sets(&intervals(
        engine,
        from.saturating_add(advance - 1),
        to.saturating_add(advance),
    )?);
    let mut out = Vec::new();
    for pair in sets.windows(2) {
        let [(_, _, before), (h, _, after)] = pair else {
            continue;
        };
        let send_at = h - advance;
        if send_at < from || send_at >= to || before == after {
            continue;
        }
        out.push(Reminder {
            send_at,
            kind: ReminderKind::Advance {
                handoff_at: *h,
                incoming: after.difference(before).copied().collect(),
                outgoing: before.difference(after).copied().collect(),
            },
        });
    }
    Ok(out)
}

/// RSP-231: at s, everyone on call now and everyone who comes on call within 24 hours. With
/// nobody to remind there is no reminder (a disabled schedule never sends one).
fn daily_reminder(engine: &Engine<'_>, s: Millis) -> Result<Option<Reminder>, ScheduleError> {
    let sets = person_sets(&intervals(
        engine,
        s,
        s.saturating_add(DAILY_UNTIL_HORIZON_MS),
    )?);
    let Some((_, _, now)) = sets.first() else {
        return Ok(None);
    };
    let on_call: Vec<CurrentShift> = now
        .iter()
        .map(|&person_id| CurrentShift {
            person_id,
            until: sets
                .iter()
                .find(|(_, _, persons)| !persons.contains(&person_id))
                .map(|(start, _, _)| *start),
        })
        .collect();
    let day_end = s.saturating_add(DAY_MS);
    let mut upcoming: Vec<UpcomingShift> = Vec::new();
    let mut seen: BTreeSet<PersonId> = now.clone();
    for (start, _, persons) in sets.iter().filter(|(start, _, _)| *start < day_end) {
        for &person_id in persons {
            if seen.insert(person_id) {
                upcoming.push(UpcomingShift {
                    person_id,
                    from: *start,
                });
            }
        }
    }
    let handoffs = sets
        .windows(2)
        .filter_map(|pair| match pair {
            [(_, _, before), (at, _, after)] if *at < day_end && before != after => Some(Handoff {
                at: *at,
                incoming: after.difference(before).copied().collect(),
                outgoing: before.difference(after).copied().collect(),
            }),
            _ => None,
        })
        .collect();
    if on_call.is_empty() && upcoming.is_empty() {
        return Ok(None);
    }
    Ok(Some(Reminder {
        send_at: s,
        kind: ReminderKind::Daily {
            on_call,
            upcoming,
            handoffs,
        },
    }))
}

/// RSP-232, personal channels of one recipient: with `follow_preference`, their Info-level
/// preference list without `voice` (OQ-19); otherwise `personal_channels` (voice is never
/// offered for reminders); no `by` → no personal reminders. Each channel once, in order.
pub fn reminder_channels(
    by: Option<&ReminderBy>,
    info_preference: &[DirectChannel],
) -> Vec<DirectChannel> {
    let Some(by) = by else {
        return Vec::new();
    };
    let source = if by.follow_preference {
        info_preference
    } else {
        by.personal_channels.as_slice()
    };
    let mut out: Vec<DirectChannel> = Vec::new();
    for &c in source {
        if c != DirectChannel::Voice && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}
