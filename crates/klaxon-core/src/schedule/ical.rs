//! feature: iCalendar feed — an RFC 5545 calendar of a schedule's shifts, served as a
//! secret-token subscription URL that Google Calendar, Outlook and Apple Calendar accept.
//!
//! Every instant is written in UTC (`…Z`), so the calendar needs no VTIMEZONE; the schedule's
//! zone is only advertised through `X-WR-TIMEZONE` for display. Each shift of the merged
//! timeline (overrides included) becomes one VEVENT whose UID is derived from the schedule id,
//! the shift's source (layer or override), its role and its start: re-exporting the same
//! shift gives the same UID, so subscribed clients update events in place instead of
//! duplicating them.
//!
//! Pure: the caller passes `now` and a lookup of person names.

use sha2::{Digest, Sha256};

use super::Calendars;
use super::error::ScheduleError;
use super::model::{ROLE_BACKUP, ROLE_NONE, ROLE_PRIMARY, Schedule};
use super::resolve::{ShiftRole, ShiftSource};
use super::timeline::Shift;
use super::zone::DAY_MS;
use crate::model::Millis;

/// How far back a feed shows shifts (feature: iCalendar feed).
pub const FEED_PAST_MS: Millis = 7 * DAY_MS;
/// How far ahead a feed shows shifts.
pub const FEED_FUTURE_MS: Millis = 60 * DAY_MS;
/// Extra history computed before the feed window so that a shift already running at its
/// start keeps its real start (and so its UID) instead of being clipped to the window.
pub const FEED_LOOKBACK_MS: Millis = 31 * DAY_MS;

/// The longest line RFC 5545 §3.1 allows, in octets, without the CRLF.
const LINE_MAX: usize = 75;

/// The shifts a feed shows at `now`: every shift of the merged timeline (overrides included)
/// that overlaps `[now − 7 d, now + 60 d)`. The timeline is computed from further back so
/// that shift starts, and therefore UIDs, do not move as the window slides.
pub fn feed_shifts(
    schedule: &Schedule,
    calendars: Calendars<'_>,
    now: Millis,
) -> Result<Vec<Shift>, ScheduleError> {
    let from = now.saturating_sub(FEED_PAST_MS);
    let to = now.saturating_add(FEED_FUTURE_MS);
    let shifts = super::timeline(
        schedule,
        calendars,
        from.saturating_sub(FEED_LOOKBACK_MS),
        to,
    )?;
    Ok(shifts.into_iter().filter(|s| s.end > from).collect())
}

/// The VCALENDAR of `shifts` of `schedule` (feature: iCalendar feed). `person_names` names a
/// `person_id`; `now` is the DTSTAMP.
pub fn schedule_feed(
    schedule: &Schedule,
    shifts: &[Shift],
    now: Millis,
    person_names: &dyn Fn(i64) -> String,
) -> String {
    let mut out = String::new();
    let mut line = |text: &str| push_folded(&mut out, text);
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//Klaxon//On-call schedule//EN");
    line("CALSCALE:GREGORIAN");
    line("METHOD:PUBLISH");
    line(&format!(
        "X-WR-CALNAME:{}",
        escape_text(&format!("On call: {}", schedule.schedule_name))
    ));
    if !schedule.time_zone.is_empty() {
        line(&format!(
            "X-WR-TIMEZONE:{}",
            escape_text(&schedule.time_zone)
        ));
    }
    line("REFRESH-INTERVAL;VALUE=DURATION:PT1H");
    line("X-PUBLISHED-TTL:PT1H");
    let stamp = utc(now);
    for shift in shifts {
        let names: Vec<String> = shift.members.iter().map(|&p| person_names(p)).collect();
        let mut summary = if names.is_empty() {
            "Nobody on call".to_string()
        } else {
            format!("On call: {}", names.join(", "))
        };
        if let Some(role) = role_name(shift.role) {
            summary.push_str(&format!(" ({role})"));
        }
        let description = format!(
            "Schedule: {}\n{}",
            schedule.schedule_name,
            source_text(schedule, shift)
        );
        line("BEGIN:VEVENT");
        line(&format!("UID:{}", shift_uid(schedule.schedule_id, shift)));
        line(&format!("DTSTAMP:{stamp}"));
        line(&format!("DTSTART:{}", utc(shift.start)));
        line(&format!("DTEND:{}", utc(shift.end)));
        line(&format!("SUMMARY:{}", escape_text(&summary)));
        line(&format!("DESCRIPTION:{}", escape_text(&description)));
        line("TRANSP:TRANSPARENT");
        line("END:VEVENT");
    }
    line("END:VCALENDAR");
    out
}

/// The VCALENDAR of one member's own shifts across several schedules (feature: iCalendar
/// feed, per member). `schedules` pairs each schedule with its feed shifts
/// ([`feed_shifts`]); only the shifts `person_id` is part of become events, titled with the
/// schedule's name and listing who else is on call with them. UIDs are stable across exports
/// and differ from the schedule feed's, so subscribing to both never merges events.
pub fn member_feed(
    person_id: i64,
    member_name: &str,
    schedules: &[(&Schedule, Vec<Shift>)],
    now: Millis,
    person_names: &dyn Fn(i64) -> String,
) -> String {
    let mut out = String::new();
    let mut line = |text: &str| push_folded(&mut out, text);
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//Klaxon//On-call schedule//EN");
    line("CALSCALE:GREGORIAN");
    line("METHOD:PUBLISH");
    line(&format!(
        "X-WR-CALNAME:{}",
        escape_text(&format!("My on-call: {member_name}"))
    ));
    line("REFRESH-INTERVAL;VALUE=DURATION:PT1H");
    line("X-PUBLISHED-TTL:PT1H");
    let stamp = utc(now);
    let mut events: Vec<(&Schedule, &Shift)> = schedules
        .iter()
        .flat_map(|(s, shifts)| shifts.iter().map(move |sh| (*s, sh)))
        .filter(|(_, sh)| sh.members.contains(&person_id))
        .collect();
    events.sort_by_key(|(s, sh)| (sh.start, s.schedule_id));
    for (schedule, shift) in events {
        let mut summary = format!("On call: {}", schedule.schedule_name);
        if let Some(role) = role_name(shift.role) {
            summary.push_str(&format!(" ({role})"));
        }
        let others: Vec<String> = shift
            .members
            .iter()
            .filter(|p| **p != person_id)
            .map(|&p| person_names(p))
            .collect();
        let mut description = format!(
            "Schedule: {}\n{}",
            schedule.schedule_name,
            source_text(schedule, shift)
        );
        if !others.is_empty() {
            description.push_str(&format!("\nAlso on call: {}", others.join(", ")));
        }
        line("BEGIN:VEVENT");
        line(&format!(
            "UID:m{person_id}-{}",
            shift_uid(schedule.schedule_id, shift)
        ));
        line(&format!("DTSTAMP:{stamp}"));
        line(&format!("DTSTART:{}", utc(shift.start)));
        line(&format!("DTEND:{}", utc(shift.end)));
        line(&format!("SUMMARY:{}", escape_text(&summary)));
        line(&format!("DESCRIPTION:{}", escape_text(&description)));
        line("TRANSP:OPAQUE");
        line("END:VEVENT");
    }
    line("END:VCALENDAR");
    out
}

/// A UID stable across exports: a hash of the schedule id, the shift's source (layer id or
/// override id), its role and its start (feature: iCalendar feed).
pub fn shift_uid(schedule_id: i64, shift: &Shift) -> String {
    let source = match shift.source {
        ShiftSource::Layer {
            layer_id,
            group_index,
        } => format!("layer:{layer_id}:{group_index}"),
        ShiftSource::Override { override_id } => format!("override:{override_id}"),
    };
    let role = match shift.role {
        ShiftRole::Any => "any".to_string(),
        ShiftRole::Role(r) => r.to_string(),
    };
    let key = format!("klaxon-shift|{schedule_id}|{source}|{role}|{}", shift.start);
    let digest = Sha256::digest(key.as_bytes());
    format!(
        "{}@klaxon",
        hex::encode(digest.get(..16).unwrap_or_default())
    )
}

fn role_name(role: ShiftRole) -> Option<String> {
    match role {
        ShiftRole::Any | ShiftRole::Role(ROLE_NONE) => None,
        ShiftRole::Role(ROLE_PRIMARY) => Some("Primary".into()),
        ShiftRole::Role(ROLE_BACKUP) => Some("Backup".into()),
        ShiftRole::Role(r) => Some(format!("role {r}")),
    }
}

fn source_text(schedule: &Schedule, shift: &Shift) -> String {
    match shift.source {
        ShiftSource::Layer {
            layer_id,
            group_index,
        } => {
            let layer = schedule.layers.iter().find(|l| l.layer_id == layer_id);
            let name = layer
                .map(|l| l.layer_name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("layer {layer_id}"));
            let group = layer
                .and_then(|l| l.groups.get(group_index))
                .map(|g| g.group_name.clone())
                .filter(|n| !n.is_empty());
            match group {
                Some(g) => format!("Layer: {name}\nGroup: {g}"),
                None => format!("Layer: {name}"),
            }
        }
        ShiftSource::Override { override_id } => {
            let note = schedule
                .overrides
                .iter()
                .find(|o| o.override_id == override_id)
                .map(|o| o.note.clone())
                .unwrap_or_default();
            if note.is_empty() {
                format!("Override {override_id}")
            } else {
                format!("Override {override_id}: {note}")
            }
        }
    }
}

/// `YYYYMMDDTHHMMSSZ`.
fn utc(t: Millis) -> String {
    match jiff::Timestamp::from_millisecond(t) {
        // A bare timestamp formats in UTC.
        Ok(ts) => ts.strftime("%Y%m%dT%H%M%SZ").to_string(),
        Err(_) => "19700101T000000Z".to_string(),
    }
}

/// RFC 5545 §3.3.11 TEXT escaping: backslash, semicolon, comma and newline.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` folded at 75 octets (RFC 5545 §3.1) without splitting a UTF-8 character;
/// continuation lines start with one space, which counts towards their 75. CRLF after each.
fn push_folded(out: &mut String, line: &str) {
    let mut budget = LINE_MAX;
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > budget {
            out.push_str("\r\n ");
            budget = LINE_MAX - 1;
            used = 0;
        }
        out.push(c);
        used += n;
    }
    out.push_str("\r\n");
}

/// `line` folded at 75 octets, with its CRLF.
pub fn fold(line: &str) -> String {
    let mut out = String::new();
    push_folded(&mut out, line);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::schedule::{Group, GroupMember, Layer, Override, RotationUnit};

    const HOUR: Millis = 3_600_000;
    // Mon 2025-01-06 00:00 UTC.
    const T0: Millis = 1_736_121_600_000;

    fn sched() -> Schedule {
        let member = |person_id| GroupMember {
            person_id,
            role_id: 0,
        };
        Schedule {
            schedule_id: 7,
            schedule_name: "Ops, core; team".into(),
            time_zone: "UTC".into(),
            layers: vec![Layer {
                layer_id: 1,
                layer_name: "Daily".into(),
                groups: vec![
                    Group {
                        group_name: String::new(),
                        members: vec![member(101)],
                    },
                    Group {
                        group_name: String::new(),
                        members: vec![member(102)],
                    },
                ],
                layer_start: T0,
                rotation_unit: RotationUnit::Day,
                rotation_value: 1,
                ..Layer::default()
            }],
            ..Schedule::default()
        }
    }

    fn names(p: i64) -> String {
        match p {
            101 => "Alice".into(),
            102 => "Bob".into(),
            103 => "Zoë Ångström-Øresund".into(),
            _ => format!("Person {p}"),
        }
    }

    fn export(s: &Schedule, now: Millis) -> String {
        let shifts = feed_shifts(s, Calendars::default(), now).unwrap();
        schedule_feed(s, &shifts, now, &names)
    }

    fn uids(feed: &str) -> Vec<String> {
        feed.split("\r\n")
            .filter_map(|l| l.strip_prefix("UID:"))
            .map(str::to_string)
            .collect()
    }

    // feature: iCalendar feed, per member — only the member's shifts, across schedules, with
    // UIDs that differ from the schedule feed's and stay stable.
    #[test]
    fn member_feed_lists_only_the_members_shifts() {
        let a = sched();
        let mut b = sched();
        b.schedule_id = 8;
        b.schedule_name = "Database".into();
        b.layers[0].groups.swap(0, 1);
        let now = T0 + 3 * DAY_MS + HOUR;
        let sa = feed_shifts(&a, Calendars::default(), now).unwrap();
        let sb = feed_shifts(&b, Calendars::default(), now).unwrap();
        let feed = member_feed(
            101,
            "Alice",
            &[(&a, sa.clone()), (&b, sb.clone())],
            now,
            &names,
        );
        assert!(
            feed.contains("X-WR-CALNAME:My on-call: Alice\r\n"),
            "{feed}"
        );
        let mine_a = sa.iter().filter(|s| s.members.contains(&101)).count();
        let mine_b = sb.iter().filter(|s| s.members.contains(&101)).count();
        assert!(mine_a > 0 && mine_b > 0);
        assert_eq!(feed.matches("BEGIN:VEVENT").count(), mine_a + mine_b);
        assert!(
            feed.contains("SUMMARY:On call: Ops\\, core\\; team\r\n"),
            "{feed}"
        );
        assert!(feed.contains("SUMMARY:On call: Database\r\n"), "{feed}");
        // Alice and Bob alternate, so nobody shares her shift.
        assert!(!feed.contains("Also on call"));
        let schedule_uids = uids(&schedule_feed(&a, &sa, now, &names));
        let member_uids = uids(&feed);
        assert!(member_uids.iter().all(|u| !schedule_uids.contains(u)));
        let again = member_feed(101, "Alice", &[(&a, sa), (&b, sb)], now + HOUR, &names);
        assert_eq!(uids(&again), member_uids);
        // Nobody else's shifts.
        let empty = member_feed(
            999,
            "Nobody",
            &[(&a, feed_shifts(&a, Calendars::default(), now).unwrap())],
            now,
            &names,
        );
        assert!(!empty.contains("BEGIN:VEVENT"));
    }

    // feature: iCalendar feed — folding at 75 octets never splits a UTF-8 character.
    #[test]
    fn folds_at_75_octets_on_char_boundaries() {
        let line = format!("SUMMARY:{}", "Zoë Ångström 日本語 ".repeat(20));
        let folded = fold(&line);
        assert!(folded.ends_with("\r\n"));
        let parts: Vec<&str> = folded.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(parts.len() > 3);
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= 75, "{} octets: {p}", p.len());
            if i > 0 {
                assert!(p.starts_with(' '));
            }
        }
        // Unfolding gives back the line.
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, line);
        // Short lines are untouched.
        assert_eq!(fold("VERSION:2.0"), "VERSION:2.0\r\n");
        // Exactly 75 octets is not folded, 76 is.
        assert_eq!(fold(&"a".repeat(75)).split("\r\n").count(), 2);
        assert_eq!(fold(&"a".repeat(76)).split("\r\n").count(), 3);
    }

    #[test]
    fn escapes_text_values() {
        assert_eq!(escape_text("a\\b;c,d\ne"), "a\\\\b\\;c\\,d\\ne");
        let feed = export(&sched(), T0 + 12 * HOUR);
        assert!(feed.contains("X-WR-CALNAME:On call: Ops\\, core\\; team\r\n"));
        assert!(feed.contains("DESCRIPTION:Schedule: Ops\\, core\\; team\\nLayer: Daily\r\n"));
    }

    #[test]
    fn calendar_shape_and_crlf() {
        let feed = export(&sched(), T0 + 12 * HOUR);
        assert!(feed.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(feed.ends_with("END:VCALENDAR\r\n"));
        assert!(feed.contains("CALSCALE:GREGORIAN\r\n"));
        assert!(feed.contains("METHOD:PUBLISH\r\n"));
        assert!(feed.contains("X-WR-TIMEZONE:UTC\r\n"));
        assert!(!feed.contains("VTIMEZONE"));
        // Every line ends with CRLF: no bare LF.
        assert_eq!(feed.matches('\n').count(), feed.matches("\r\n").count());
        for l in feed.split("\r\n") {
            assert!(l.len() <= 75);
        }
        // The layer started at T0: the first shift is Alice's, in UTC.
        assert!(feed.contains("DTSTART:20250106T000000Z\r\nDTEND:20250107T000000Z\r\n"));
        assert!(feed.contains("SUMMARY:On call: Alice\r\n"));
        assert!(feed.contains("SUMMARY:On call: Bob\r\n"));
        assert!(feed.contains("DTSTAMP:20250106T120000Z\r\n"));
        // 1 past day + 60 future days of daily shifts.
        assert_eq!(feed.matches("BEGIN:VEVENT").count(), 61);
    }

    #[test]
    fn uids_are_stable_across_exports_and_change_with_the_shift() {
        let s = sched();
        let a = uids(&export(&s, T0 + 10 * 24 * HOUR));
        // A day later the window slides, but the shifts still in it keep their UIDs,
        // including the first one (no clipping at the window start).
        let b = uids(&export(&s, T0 + 11 * 24 * HOUR));
        assert_eq!(a.len(), b.len());
        assert_eq!(a.get(1..), b.get(..b.len() - 1));
        // Same input, same output.
        assert_eq!(a, uids(&export(&s, T0 + 10 * 24 * HOUR)));
        let unique: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(unique.len(), a.len());
        // Moving the rotation by an hour changes every shift, and so every UID.
        let mut moved = s.clone();
        moved.layers[0].layer_start += HOUR;
        let c = uids(&export(&moved, T0 + 10 * 24 * HOUR));
        assert!(c.iter().all(|u| !a.contains(u)));
        // Another schedule, other UIDs.
        let mut other = s.clone();
        other.schedule_id = 8;
        let d = uids(&export(&other, T0 + 10 * 24 * HOUR));
        assert!(d.iter().all(|u| !a.contains(u)));
        assert!(
            a.iter()
                .all(|u| u.ends_with("@klaxon") && u.len() == 32 + 7)
        );
    }

    #[test]
    fn an_override_is_its_own_event() {
        let mut s = sched();
        let now = T0 + 12 * HOUR;
        let before = export(&s, now);
        s.overrides.push(Override {
            override_id: 5,
            start: T0 + 2 * 24 * HOUR + 6 * HOUR,
            end: T0 + 2 * 24 * HOUR + 18 * HOUR,
            person_id: 103,
            note: "swap, dentist".into(),
            ..Override::default()
        });
        let after = export(&s, now);
        assert!(after.contains("SUMMARY:On call: Zoë Ångström-Øresund\r\n"));
        assert!(after.contains("Override 5: swap\\, dentist"));
        assert!(after.contains("DTSTART:20250108T060000Z\r\nDTEND:20250108T180000Z\r\n"));
        let old = uids(&before);
        let new = uids(&after);
        // The override's own UID, plus the split layer day after it.
        let added: Vec<_> = new.iter().filter(|u| !old.contains(u)).collect();
        assert_eq!(added.len(), 2, "{added:?}");
        // The override cuts Alice's third day in two; the first piece keeps its UID.
        assert_eq!(new.len(), old.len() + 2);
    }

    #[test]
    fn role_is_named_when_not_default() {
        let mut s = sched();
        s.layers[0].groups[0].members[0].role_id = ROLE_PRIMARY;
        let feed = export(&s, T0 + 12 * HOUR);
        assert!(feed.contains("SUMMARY:On call: Alice (Primary)\r\n"));
        assert!(feed.contains("SUMMARY:On call: Bob\r\n"));
    }
}
