//! The computed views of a schedule over a window (RSP-227, RSP-229): the merged timeline of
//! shifts with their sources, the per-layer segments, the final person segments, and
//! `cur_oncall`/`next_oncall`.
//!
//! All of them are read off one list of elementary intervals: the window cut at every
//! breakpoint ([`Engine::breakpoints`]), with what holds at the start of each piece. Nothing
//! changes inside a piece, so evaluating its first instant is exact.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::ScheduleError;
use super::model::{GroupMember, PersonId, Schedule};
use super::resolve::{Engine, Moment, ShiftRole, ShiftSource};
use super::zone::DAY_MS;
use crate::model::Millis;

/// Views for the API must cover less than 45 days (`end − start < 45 d`, openapi-compat 1.7).
pub const VIEW_WINDOW_MAX_MS: Millis = 45 * DAY_MS;
/// The longest window [`super::timeline`] computes in one call. Far beyond any API view; it
/// only bounds the work one call can cause.
pub const TIMELINE_WINDOW_MAX_MS: Millis = 400 * DAY_MS;

/// A stretch of time during which one source puts the same members on call in one role. The
/// escalation engine and the calendar feed read these. Consecutive cycles served by the same
/// group are one shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub start: Millis,
    pub end: Millis,
    pub role: ShiftRole,
    pub members: Vec<PersonId>,
    pub source: ShiftSource,
}

/// One turn of one layer inside the window, before overrides (RSP-227 "per layer").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSegment {
    pub start: Millis,
    pub end: Millis,
    pub group_index: usize,
    /// The cycle index k (RSP-214).
    pub cycle_index: i64,
    pub group_name: String,
    /// The group as it was defined for this segment (an older version, after an edit).
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerView {
    pub layer_id: i64,
    pub segments: Vec<LayerSegment>,
}

/// A person in a final segment, with every role they hold in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMember {
    pub person_id: PersonId,
    pub roles: Vec<ShiftRole>,
}

/// A piece of the final list after overrides (RSP-227): adjacent pieces with the same set of
/// persons are merged (a role change alone does not cut). Stretches with nobody on call are
/// left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalSegment {
    pub start: Millis,
    pub end: Millis,
    /// Ascending `person_id`.
    pub members: Vec<SegmentMember>,
}

impl FinalSegment {
    pub fn persons(&self) -> Vec<PersonId> {
        self.members.iter().map(|m| m.person_id).collect()
    }
}

/// Everything `/schedule/info` and `/schedule/preview` show for a window (RSP-227).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleView {
    pub layers: Vec<LayerView>,
    pub final_segments: Vec<FinalSegment>,
    /// The segment containing `now`.
    pub cur_oncall: Option<FinalSegment>,
    /// The next segment whose set of persons differs from the current one.
    pub next_oncall: Option<FinalSegment>,
}

/// A piece `[start, end)` of the window and what holds throughout it.
pub(crate) struct Interval<'a> {
    pub(crate) start: Millis,
    pub(crate) end: Millis,
    pub(crate) moment: Moment<'a>,
}

pub(crate) fn intervals<'a>(
    engine: &Engine<'a>,
    from: Millis,
    to: Millis,
) -> Result<Vec<Interval<'a>>, ScheduleError> {
    if from >= to {
        return Ok(Vec::new());
    }
    let points = engine.breakpoints(from, to)?;
    let mut out = Vec::with_capacity(points.len());
    for (i, &start) in points.iter().enumerate() {
        let end = points.get(i + 1).copied().unwrap_or(to);
        out.push(Interval {
            start,
            end,
            moment: engine.moment(start)?,
        });
    }
    Ok(out)
}

/// The merged timeline: one [`Shift`] per maximal stretch of (source, role, members).
pub(crate) fn shifts(intervals: &[Interval<'_>]) -> Vec<Shift> {
    let mut done: Vec<Shift> = Vec::new();
    let mut open: Vec<Shift> = Vec::new();
    for iv in intervals {
        // Group this piece's slots by (source, role), members in slot order.
        let mut groups: Vec<(ShiftSource, ShiftRole, Vec<PersonId>)> = Vec::new();
        for slot in iv.moment.on_call().slots {
            match groups
                .iter_mut()
                .find(|(s, r, _)| *s == slot.source && *r == slot.role)
            {
                Some((_, _, members)) => {
                    if !members.contains(&slot.person_id) {
                        members.push(slot.person_id);
                    }
                }
                None => groups.push((slot.source, slot.role, vec![slot.person_id])),
            }
        }
        let mut still_open = Vec::with_capacity(groups.len());
        for mut shift in open.drain(..) {
            let same = groups.iter().position(|(s, r, m)| {
                *s == shift.source && *r == shift.role && *m == shift.members
            });
            match same {
                Some(pos) if shift.end == iv.start => {
                    groups.remove(pos);
                    shift.end = iv.end;
                    still_open.push(shift);
                }
                _ => done.push(shift),
            }
        }
        for (source, role, members) in groups {
            still_open.push(Shift {
                start: iv.start,
                end: iv.end,
                role,
                members,
                source,
            });
        }
        open = still_open;
    }
    done.extend(open);
    done.sort_by(|a, b| {
        (a.start, a.source, a.role, a.end).cmp(&(b.start, b.source, b.role, b.end))
    });
    done
}

/// The final set of persons over the window, adjacent equal sets merged, empty stretches
/// included (reminders need the changes to and from "nobody").
pub(crate) fn person_sets(intervals: &[Interval<'_>]) -> Vec<(Millis, Millis, BTreeSet<PersonId>)> {
    let mut out: Vec<(Millis, Millis, BTreeSet<PersonId>)> = Vec::new();
    for iv in intervals {
        let persons: BTreeSet<PersonId> = iv.moment.on_call().persons().into_iter().collect();
        match out.last_mut() {
            Some((_, end, last)) if *end == iv.start && *last == persons => *end = iv.end,
            _ => out.push((iv.start, iv.end, persons)),
        }
    }
    out
}

pub(crate) fn final_segments(intervals: &[Interval<'_>]) -> Vec<FinalSegment> {
    let mut out: Vec<FinalSegment> = Vec::new();
    for iv in intervals {
        let on_call = iv.moment.on_call();
        if on_call.is_empty() {
            continue;
        }
        let mut members: Vec<SegmentMember> = Vec::new();
        for slot in &on_call.slots {
            match members.iter_mut().find(|m| m.person_id == slot.person_id) {
                Some(m) => {
                    if !m.roles.contains(&slot.role) {
                        m.roles.push(slot.role);
                    }
                }
                None => members.push(SegmentMember {
                    person_id: slot.person_id,
                    roles: vec![slot.role],
                }),
            }
        }
        members.sort_by_key(|m| m.person_id);
        if let Some(last) = out.last_mut()
            && last.end == iv.start
            && last.persons() == members.iter().map(|m| m.person_id).collect::<Vec<_>>()
        {
            last.end = iv.end;
            for (into, from) in last.members.iter_mut().zip(members) {
                for role in from.roles {
                    if !into.roles.contains(&role) {
                        into.roles.push(role);
                    }
                }
            }
            continue;
        }
        out.push(FinalSegment {
            start: iv.start,
            end: iv.end,
            members,
        });
    }
    for seg in &mut out {
        for m in &mut seg.members {
            m.roles.sort();
        }
    }
    out
}

/// Per-layer segments, layers in the order of the current definition and then any layer only
/// older versions had (by id).
pub(crate) fn layer_views(schedule: &Schedule, intervals: &[Interval<'_>]) -> Vec<LayerView> {
    let mut views: Vec<LayerView> = schedule
        .layers
        .iter()
        .map(|l| LayerView {
            layer_id: l.layer_id,
            segments: Vec::new(),
        })
        .collect();
    let mut extra: Vec<LayerView> = Vec::new();
    for iv in intervals {
        for hit in &iv.moment.hits {
            let id = hit.layer.layer_id;
            let view = match views.iter().position(|v| v.layer_id == id) {
                Some(i) => views.get_mut(i),
                None => match extra.iter().position(|v| v.layer_id == id) {
                    Some(i) => extra.get_mut(i),
                    None => {
                        extra.push(LayerView {
                            layer_id: id,
                            segments: Vec::new(),
                        });
                        extra.last_mut()
                    }
                },
            };
            let Some(view) = view else { continue };
            let group = hit.layer.groups.get(hit.group_index);
            let members = group.map(|g| g.members.clone()).unwrap_or_default();
            if let Some(last) = view.segments.last_mut()
                && last.end == iv.start
                && last.group_index == hit.group_index
                && last.cycle_index == hit.cycle_index
                && last.members == members
            {
                last.end = iv.end;
                continue;
            }
            view.segments.push(LayerSegment {
                start: iv.start,
                end: iv.end,
                group_index: hit.group_index,
                cycle_index: hit.cycle_index,
                group_name: group.map(|g| g.group_name.clone()).unwrap_or_default(),
                members,
            });
        }
    }
    extra.sort_by_key(|v| v.layer_id);
    views.extend(extra);
    views
}

/// `cur_oncall` and `next_oncall` of RSP-227.
pub(crate) fn current_and_next(
    segments: &[FinalSegment],
    now: Millis,
) -> (Option<FinalSegment>, Option<FinalSegment>) {
    let cur = segments.iter().find(|s| s.start <= now && now < s.end);
    let next = match cur {
        Some(c) => segments
            .iter()
            .find(|s| s.start >= c.end && s.persons() != c.persons()),
        None => segments.iter().find(|s| s.start > now),
    };
    (cur.cloned(), next.cloned())
}

/// The look-ahead choices of "my schedule" (RSP-229).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookAhead {
    OneDay,
    FourDays,
    OneWeek,
    #[default]
    TwoWeeks,
    /// 30 days, the API's limit.
    OneMonth,
}

impl LookAhead {
    pub fn millis(self) -> Millis {
        DAY_MS
            * match self {
                LookAhead::OneDay => 1,
                LookAhead::FourDays => 4,
                LookAhead::OneWeek => 7,
                LookAhead::TwoWeeks => 14,
                LookAhead::OneMonth => 30,
            }
    }
}

/// RSP-229: the schedules in which a person is on call during the look-ahead, and those in
/// which they are on call right now (both by `schedule_id`, in input order).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MySchedules {
    pub on_call_now: Vec<i64>,
    pub on_call_within: Vec<i64>,
}
