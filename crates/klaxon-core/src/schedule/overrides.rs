//! Overrides (RSP-212, RSP-225, RSP-235).
//!
//! Overrides are not versioned like layers. The past stays intact because the edit rules
//! below forbid changing any part of an override that has already taken effect: a begun
//! override can only be ended early, and a new or moved one can only start from the edit
//! instant on.

use super::error::ScheduleError;
use super::model::{Override, PersonId};
use crate::model::Millis;

/// The overrides whose window `[start, end)` contains t, by start then id (RSP-210 step 2).
pub(crate) fn active_overrides(overrides: &[Override], t: Millis) -> Vec<&Override> {
    let mut active: Vec<&Override> = overrides
        .iter()
        .filter(|o| o.start <= t && t < o.end)
        .collect();
    active.sort_by_key(|o| (o.start, o.override_id));
    active
}

/// RSP-225 for overrides, applied when a schedule edit is saved at `at`:
/// - an override that has begun (`start < at`) cannot be deleted, nor its start or person
///   changed (`failed_precondition`); it can be ended early, never before `at` (an `end`
///   slightly in the past, from a client clock, is raised to `at`). One that has already
///   finished cannot change at all, apart from its note;
/// - any other override (new, or still in the future) takes effect from `at` at the
///   earliest: its start is raised to `at`, and one that would end by `at` is refused.
///
/// `created_by`/`created_at` of existing overrides are kept from the stored version.
pub(crate) fn merge_override_edits(
    current: &[Override],
    edited: Vec<Override>,
    at: Millis,
) -> Result<Vec<Override>, ScheduleError> {
    for old in current.iter().filter(|o| o.start < at) {
        if !edited.iter().any(|o| o.override_id == old.override_id) {
            return Err(ScheduleError::precondition(
                "overrides",
                format!(
                    "override {} has already begun; it can only be ended early (end = now), not deleted",
                    old.override_id
                ),
            ));
        }
    }
    let mut out = Vec::with_capacity(edited.len());
    for (i, mut new) in edited.into_iter().enumerate() {
        let path = format!("overrides[{i}]");
        match current.iter().find(|o| o.override_id == new.override_id) {
            Some(old) if old.start < at => {
                if new.start != old.start || new.person_id != old.person_id {
                    return Err(ScheduleError::precondition(
                        path,
                        "an override that has begun cannot change its start or person; end it early and create a new one",
                    ));
                }
                if old.end <= at {
                    if new.end != old.end {
                        return Err(ScheduleError::precondition(
                            format!("{path}.end"),
                            "the override has already ended",
                        ));
                    }
                } else {
                    new.end = new.end.max(at);
                }
                new.created_by = old.created_by;
                new.created_at = old.created_at;
            }
            old => {
                if new.end <= at {
                    return Err(ScheduleError::invalid(
                        format!("{path}.end"),
                        "the override window lies entirely in the past",
                    ));
                }
                new.start = new.start.max(at);
                if let Some(old) = old {
                    new.created_by = old.created_by;
                    new.created_at = old.created_at;
                }
            }
        }
        out.push(new);
    }
    Ok(out)
}

/// An override for the console's swap helper to create (ids are the store's job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OverrideDraft {
    pub start: Millis,
    pub end: Millis,
    pub person_id: PersonId,
}

/// RSP-235: the overrides that take `out` off call during `[from, to)` and put `replacement`
/// on instead, given the on-call person sets of that window (`segments`, ascending and
/// non-overlapping, as the timeline yields). Because an override
/// replaces every layer, everybody else who is on call alongside `out` needs an override
/// too, or they would drop off. Where `out` is not on call nothing is created.
///
/// Existing overrides in the window are part of the segments; if one of them names `out`,
/// `out` stays on call through it (overlapping overrides combine by union), so the console
/// should end that override instead.
pub(crate) fn swap_drafts(
    segments: &[(Millis, Millis, Vec<PersonId>)],
    out: PersonId,
    replacement: PersonId,
) -> Vec<OverrideDraft> {
    let mut drafts: Vec<OverrideDraft> = Vec::new();
    for (start, end, persons) in segments {
        if !persons.contains(&out) {
            continue;
        }
        let mut stay: Vec<PersonId> = persons.iter().copied().filter(|p| *p != out).collect();
        if !stay.contains(&replacement) {
            stay.push(replacement);
        }
        for person in stay {
            // Extend this person's draft when it ends exactly where this segment starts.
            match drafts
                .iter_mut()
                .find(|d| d.person_id == person && d.end == *start)
            {
                Some(d) => d.end = *end,
                None => drafts.push(OverrideDraft {
                    start: *start,
                    end: *end,
                    person_id: person,
                }),
            }
        }
    }
    drafts.sort_by_key(|d| (d.start, d.person_id));
    drafts
}
