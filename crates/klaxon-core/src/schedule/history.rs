//! Edits never change the past (RSP-225, RSP-226, OQ-17).
//!
//! Saving a changed definition at instant e keeps the old one as a [`PastDefinition`] that
//! governs every instant before e; the new one governs e onwards, evaluated with its own
//! parameters as though it had always existed. Overrides are protected by the rules in
//! `overrides.rs` instead.

use super::calendar::Calendars;
use super::error::ScheduleError;
use super::model::{Layer, PastDefinition, PersonId, Schedule};
use super::overrides::merge_override_edits;
use super::validation::validate_schedule;
use crate::model::Millis;

/// Prepares a new schedule for storage, created at `at`: validates it (RSP-228), drops any
/// `history` a client sent (the past is the server's to write) and stamps the creation
/// instant on the schedule and on every layer's `version_from`.
pub fn create_schedule(
    mut schedule: Schedule,
    at: Millis,
    calendars: Calendars<'_>,
) -> Result<Schedule, ScheduleError> {
    validate_schedule(&schedule, calendars)?;
    schedule.history.clear();
    schedule.created_at = at;
    schedule.updated_at = at;
    for layer in &mut schedule.layers {
        layer.version_from = at;
    }
    Ok(schedule)
}

/// Applies a client's edited schedule, saved at `at`, to the stored one. Validates the edit
/// (RSP-228), enforces the override rules, records the previous definition when the zone, the
/// status or any layer changed, and stamps `version_from` on the layers that changed.
/// Identity and history come from `current`; whatever the client sent for them is ignored.
pub fn apply_edit(
    current: &Schedule,
    edited: Schedule,
    at: Millis,
    calendars: Calendars<'_>,
) -> Result<Schedule, ScheduleError> {
    validate_schedule(&edited, calendars)?;
    let mut next = edited;
    next.overrides = merge_override_edits(&current.overrides, next.overrides, at)?;
    Ok(record(current, next, at))
}

/// RSP-226: a member deleted from the account leaves every group at `at`. This is an edit
/// like any other (the past keeps them), and a group left empty keeps its turns, which become
/// empty shifts (OQ-48). Not validated: the emptied group is exactly what the spec wants.
/// Overrides naming the person stay (they are never deleted automatically); target
/// resolution skips deleted members (RSP-152).
pub fn remove_member(schedule: &Schedule, person_id: PersonId, at: Millis) -> Schedule {
    let mut next = schedule.clone();
    for layer in &mut next.layers {
        for group in &mut layer.groups {
            group.members.retain(|m| m.person_id != person_id);
        }
    }
    record(schedule, next, at)
}

fn record(current: &Schedule, mut next: Schedule, at: Millis) -> Schedule {
    next.schedule_id = current.schedule_id;
    next.creator_id = current.creator_id;
    next.created_at = current.created_at;
    next.updated_at = at;
    next.history = current.history.clone();
    for layer in &mut next.layers {
        layer.version_from = match current.layers.iter().find(|l| l.layer_id == layer.layer_id) {
            Some(old) if same_layer(old, layer) => old.version_from,
            _ => at,
        };
    }
    let changed = current.time_zone != next.time_zone
        || current.status != next.status
        || current.layers.len() != next.layers.len()
        || current
            .layers
            .iter()
            .zip(&next.layers)
            .any(|(a, b)| !same_layer(a, b));
    // A definition that was in force for no time at all (two edits at the same instant, or a
    // clock behind the last edit) leaves nothing to keep: the new one simply replaces it from
    // the last recorded switch on.
    let last_until = next.history.iter().map(|p| p.until).max();
    if changed && last_until.is_none_or(|u| u < at) {
        next.history.push(PastDefinition {
            until: at,
            time_zone: current.time_zone.clone(),
            status: current.status,
            layers: current.layers.clone(),
        });
    }
    next
}

/// Equal apart from `version_from`, which is bookkeeping, not definition.
fn same_layer(a: &Layer, b: &Layer) -> bool {
    let mut a = a.clone();
    a.version_from = b.version_from;
    a == *b
}
