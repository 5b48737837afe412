//! Validation of a schedule on save (RSP-228 and the limits of §1.13). The first problem
//! found is returned, naming its field; a valid schedule is exactly one the resolver can
//! evaluate.

use std::collections::BTreeSet;

use super::calendar::Calendars;
use super::error::ScheduleError;
use super::model::{DirectChannel, Layer, RestrictMode, RotationUnit, Schedule};
use super::zone::{self, parse_hhmm};
use crate::model::Millis;

pub const SCHEDULE_NAME_MAX: usize = 40;
pub const SCHEDULE_DESCRIPTION_MAX: usize = 500;
/// DECISION in §1.13.
pub const LAYERS_MAX: usize = 20;
pub const LAYER_NAME_MAX: usize = 40;
pub const GROUPS_MAX: usize = 50;
pub const GROUP_NAME_MAX: usize = 40;
pub const GROUP_MEMBERS_MAX: usize = 20;
pub const ROTATION_VALUE_MAX: i64 = 30;
pub const RESTRICT_PERIODS_MAX: usize = 10;
pub const OVERRIDE_NOTE_MAX: usize = 200;
/// `advance_in_time`: 0, or a multiple of 300 s in 300..86400.
pub const ADVANCE_STEP_SECS: i64 = 300;
pub const ADVANCE_MAX_SECS: i64 = 86_400;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScheduleError {
    ScheduleError::invalid(field, message)
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A name: trimmed, then 1..max characters (response.md §0.2).
fn name(field: &str, value: &str, max: usize) -> Result<(), ScheduleError> {
    let n = chars(value.trim());
    if n == 0 || n > max {
        return Err(invalid(field, format!("must be 1..{max} characters")));
    }
    Ok(())
}

fn hhmm(field: String, value: &str) -> Result<(), ScheduleError> {
    match parse_hhmm(value) {
        Some(_) => Ok(()),
        None => Err(invalid(
            field,
            format!("{value:?} is not a time HH:MM (00:00-23:59)"),
        )),
    }
}

fn weekday(field: String, value: i64) -> Result<(), ScheduleError> {
    if (0..=6).contains(&value) {
        Ok(())
    } else {
        Err(invalid(field, "must be a weekday 0..6 (0 = Sunday)"))
    }
}

fn instant(field: String, value: Millis) -> Result<(), ScheduleError> {
    zone::timestamp(value, &field).map(|_| ())
}

/// Validates a schedule as saved (create, update or preview). `calendars` are the account's
/// calendars, for `calendar_mask.cal_id`. Name uniqueness needs the store and is its job.
pub fn validate_schedule(s: &Schedule, calendars: Calendars<'_>) -> Result<(), ScheduleError> {
    name("schedule_name", &s.schedule_name, SCHEDULE_NAME_MAX)?;
    if chars(&s.description) > SCHEDULE_DESCRIPTION_MAX {
        return Err(invalid(
            "description",
            format!("must be at most {SCHEDULE_DESCRIPTION_MAX} characters"),
        ));
    }
    zone::zone(&s.time_zone, "time_zone")?;
    if s.layers.len() > LAYERS_MAX {
        return Err(invalid("layers", format!("at most {LAYERS_MAX} layers")));
    }
    let mut layer_ids = BTreeSet::new();
    for (i, layer) in s.layers.iter().enumerate() {
        let path = format!("layers[{i}]");
        if layer.layer_id <= 0 || !layer_ids.insert(layer.layer_id) {
            return Err(invalid(
                format!("{path}.layer_id"),
                "must be a positive id, unique within the schedule",
            ));
        }
        validate_layer(layer, &path, calendars)?;
    }
    let mut override_ids = BTreeSet::new();
    for (i, o) in s.overrides.iter().enumerate() {
        let path = format!("overrides[{i}]");
        if o.override_id <= 0 || !override_ids.insert(o.override_id) {
            return Err(invalid(
                format!("{path}.override_id"),
                "must be a positive id, unique within the schedule",
            ));
        }
        if o.person_id <= 0 {
            return Err(invalid(format!("{path}.person_id"), "must be a person id"));
        }
        instant(format!("{path}.start"), o.start)?;
        instant(format!("{path}.end"), o.end)?;
        if o.end <= o.start {
            return Err(invalid(format!("{path}.end"), "must be after start"));
        }
        if chars(&o.note) > OVERRIDE_NOTE_MAX {
            return Err(invalid(
                format!("{path}.note"),
                format!("must be at most {OVERRIDE_NOTE_MAX} characters"),
            ));
        }
    }
    validate_notify(s)
}

fn validate_layer(l: &Layer, path: &str, calendars: Calendars<'_>) -> Result<(), ScheduleError> {
    name(&format!("{path}.layer_name"), &l.layer_name, LAYER_NAME_MAX)?;
    if l.groups.is_empty() || l.groups.len() > GROUPS_MAX {
        return Err(invalid(
            format!("{path}.groups"),
            format!("must hold 1..{GROUPS_MAX} groups"),
        ));
    }
    for (g, group) in l.groups.iter().enumerate() {
        let gpath = format!("{path}.groups[{g}]");
        if chars(group.group_name.trim()) > GROUP_NAME_MAX {
            return Err(invalid(
                format!("{gpath}.group_name"),
                format!("must be at most {GROUP_NAME_MAX} characters"),
            ));
        }
        if group.members.is_empty() || group.members.len() > GROUP_MEMBERS_MAX {
            return Err(invalid(
                format!("{gpath}.members"),
                format!("must hold 1..{GROUP_MEMBERS_MAX} members"),
            ));
        }
        let mut persons = BTreeSet::new();
        for (m, member) in group.members.iter().enumerate() {
            let mpath = format!("{gpath}.members[{m}]");
            if member.person_id <= 0 {
                return Err(invalid(format!("{mpath}.person_id"), "must be a person id"));
            }
            if !persons.insert(member.person_id) {
                return Err(invalid(
                    format!("{mpath}.person_id"),
                    format!("person {} appears twice in the group", member.person_id),
                ));
            }
            if member.role_id < 0 {
                return Err(invalid(
                    format!("{mpath}.role_id"),
                    "must be a role id, or 0 for no particular role",
                ));
            }
        }
    }
    // `0` means "unset" (§0.2), and the start is required.
    if l.layer_start <= 0 {
        return Err(invalid(format!("{path}.layer_start"), "is required"));
    }
    instant(format!("{path}.layer_start"), l.layer_start)?;
    if let Some(end) = l.layer_end {
        instant(format!("{path}.layer_end"), end)?;
        if end <= l.layer_start {
            return Err(invalid(
                format!("{path}.layer_end"),
                "must be after layer_start",
            ));
        }
    }
    if !(1..=ROTATION_VALUE_MAX).contains(&l.rotation_value) {
        return Err(invalid(
            format!("{path}.rotation_value"),
            format!("must be 1..{ROTATION_VALUE_MAX}"),
        ));
    }
    if let Some(h) = &l.handoff {
        let seven_days = matches!(
            (l.rotation_unit, l.rotation_value),
            (RotationUnit::Week, 1) | (RotationUnit::Day, 7)
        );
        if !seven_days {
            return Err(invalid(
                format!("{path}.handoff"),
                "a handoff is allowed only when the cycle is exactly 7 days (week x 1 or day x 7)",
            ));
        }
        weekday(format!("{path}.handoff.weekday"), h.weekday)?;
        hhmm(format!("{path}.handoff.time"), &h.time)?;
    }
    if let Some(mask) = &l.day_mask {
        if mask.is_empty() {
            return Err(invalid(
                format!("{path}.day_mask"),
                "must list at least one weekday (or be null to turn the mask off)",
            ));
        }
        for (i, d) in mask.iter().enumerate() {
            weekday(format!("{path}.day_mask[{i}]"), *d)?;
        }
    } else if l.mask_continuous_enabled {
        return Err(invalid(
            format!("{path}.mask_continuous_enabled"),
            "continuous rotation requires day_mask",
        ));
    }
    if l.restrict_mode == RestrictMode::Weekly && l.day_mask.is_some() {
        return Err(invalid(
            format!("{path}.restrict_mode"),
            "weekly restriction cannot be combined with day_mask",
        ));
    }
    if l.restrict_mode != RestrictMode::None {
        if l.restrict_periods.is_empty() || l.restrict_periods.len() > RESTRICT_PERIODS_MAX {
            return Err(invalid(
                format!("{path}.restrict_periods"),
                format!("must hold 1..{RESTRICT_PERIODS_MAX} periods"),
            ));
        }
        let weekly = l.restrict_mode == RestrictMode::Weekly;
        for (i, p) in l.restrict_periods.iter().enumerate() {
            let ppath = format!("{path}.restrict_periods[{i}]");
            hhmm(format!("{ppath}.start"), &p.start)?;
            hhmm(format!("{ppath}.end"), &p.end)?;
            for (field, value) in [
                ("start_weekday", p.start_weekday),
                ("end_weekday", p.end_weekday),
            ] {
                match (weekly, value) {
                    (true, Some(d)) => weekday(format!("{ppath}.{field}"), d)?,
                    (true, None) => {
                        return Err(invalid(
                            format!("{ppath}.{field}"),
                            "is required for a weekly restriction",
                        ));
                    }
                    (false, Some(_)) => {
                        return Err(invalid(
                            format!("{ppath}.{field}"),
                            "is only allowed for a weekly restriction",
                        ));
                    }
                    (false, None) => {}
                }
            }
        }
    }
    if let Some(mask) = &l.calendar_mask
        && calendars.get(&mask.cal_id).is_none()
    {
        return Err(invalid(
            format!("{path}.calendar_mask.cal_id"),
            format!("unknown service calendar {:?}", mask.cal_id),
        ));
    }
    Ok(())
}

fn validate_notify(s: &Schedule) -> Result<(), ScheduleError> {
    let n = &s.notify;
    let a = n.advance_in_time;
    if a != 0
        && !(a % ADVANCE_STEP_SECS == 0 && (ADVANCE_STEP_SECS..=ADVANCE_MAX_SECS).contains(&a))
    {
        return Err(invalid(
            "notify.advance_in_time",
            "must be 0 (off) or a multiple of 300 seconds between 300 and 86400",
        ));
    }
    if let Some(f) = &n.fixed_time {
        hhmm("notify.fixed_time.start".to_string(), &f.start)?;
    }
    if let Some(by) = &n.by
        && let Some(i) = by
            .personal_channels
            .iter()
            .position(|c| *c == DirectChannel::Voice)
    {
        return Err(invalid(
            format!("notify.by.personal_channels[{i}]"),
            "voice is not offered for shift reminders",
        ));
    }
    Ok(())
}

/// RSP-234: a schedule referenced by any escalation rule level cannot be deleted; the refusal
/// lists the referring rules, which the store collects.
pub fn check_schedule_deletable(referring_rules: &[String]) -> Result<(), ScheduleError> {
    if referring_rules.is_empty() {
        return Ok(());
    }
    Err(ScheduleError::referenced(
        "schedule_id",
        format!(
            "the schedule is used by escalation rules: {}",
            referring_rules.join(", ")
        ),
    ))
}
