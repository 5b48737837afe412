//! Who is on call at an instant (RSP-210 … RSP-213, RSP-224), and where that answer can
//! change (the breakpoints the timeline is cut at).
//!
//! A schedule is first compiled ([`Engine::new`]: zones looked up, `HH:MM` parsed, virtual
//! starts computed) and then evaluated many times; the public functions in `mod.rs` wrap both.

use std::collections::BTreeSet;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::calendar::Calendars;
use super::error::ScheduleError;
use super::model::{Layer, Override, PersonId, RoleId, Schedule, ScheduleStatus};
use super::overrides::active_overrides;
use super::restrictions::Filters;
use super::rotation::{Rotation, group_index};
use super::validation::ROTATION_VALUE_MAX;
use super::zone::{self, parse_hhmm};
use crate::model::Millis;

/// The role of an on-call slot. Layer members carry their group's `role_id` (0 = no
/// particular role); override persons carry `Any`, which matches every role filter (RSP-224).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftRole {
    Any,
    Role(RoleId),
}

impl ShiftRole {
    /// RSP-151/RSP-224: an empty filter or one containing 0 means everyone; otherwise the slot
    /// role must be listed, and `Any` always matches.
    pub fn matches(self, role_ids: &[RoleId]) -> bool {
        if role_ids.is_empty() || role_ids.contains(&0) {
            return true;
        }
        match self {
            ShiftRole::Any => true,
            ShiftRole::Role(r) => role_ids.contains(&r),
        }
    }
}

/// Where an on-call slot comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShiftSource {
    /// A rotation layer, identified by `layer_id` (stable across edits, unlike its index),
    /// and the index of the group serving.
    Layer {
        layer_id: i64,
        group_index: usize,
    },
    Override {
        override_id: i64,
    },
}

/// One (person, role) pair of the on-call set O(s, t), with its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallSlot {
    pub person_id: PersonId,
    pub role: ShiftRole,
    pub source: ShiftSource,
}

/// The on-call set at one instant (RSP-210). Slots are ordered: overrides by start, then
/// layers in definition order and members in group order. Pending members are included; the
/// escalation side drops them when it resolves targets (RSP-152).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OnCall {
    pub slots: Vec<OnCallSlot>,
}

impl OnCall {
    /// Nobody on call: an empty shift (RSP-211).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Everyone on call, each once, in slot order.
    pub fn persons(&self) -> Vec<PersonId> {
        self.persons_for_roles(&[])
    }

    /// The persons an escalation target `schedule_to_role_ids: [roles]` reaches (RSP-151):
    /// a person matches when any of their current slots matches (RSP-224).
    pub fn persons_for_roles(&self, role_ids: &[RoleId]) -> Vec<PersonId> {
        let mut out: Vec<PersonId> = Vec::new();
        for slot in self.slots.iter().filter(|s| s.role.matches(role_ids)) {
            if !out.contains(&slot.person_id) {
                out.push(slot.person_id);
            }
        }
        out
    }

    /// The persons per role, roles in ascending order (`Any` first).
    pub fn by_role(&self) -> Vec<(ShiftRole, Vec<PersonId>)> {
        let roles: BTreeSet<ShiftRole> = self.slots.iter().map(|s| s.role).collect();
        roles
            .into_iter()
            .map(|role| {
                let mut persons: Vec<PersonId> = Vec::new();
                for s in self.slots.iter().filter(|s| s.role == role) {
                    if !persons.contains(&s.person_id) {
                        persons.push(s.person_id);
                    }
                }
                (role, persons)
            })
            .collect()
    }
}

/// A compiled layer.
#[derive(Debug, Clone)]
pub(crate) struct CompiledLayer<'a> {
    pub(crate) layer: &'a Layer,
    rotation: Rotation,
    filters: Filters<'a>,
}

/// A layer's turn at an instant, before overrides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<'a> {
    pub(crate) layer: &'a Layer,
    pub(crate) group_index: usize,
    pub(crate) cycle_index: i64,
}

impl<'a> CompiledLayer<'a> {
    fn new(
        layer: &'a Layer,
        tz: &TimeZone,
        calendars: Calendars<'a>,
        path: &str,
    ) -> Result<Self, ScheduleError> {
        let handoff = match &layer.handoff {
            None => None,
            Some(h) => Some((
                h.weekday,
                parse_hhmm(&h.time).ok_or_else(|| {
                    ScheduleError::invalid(format!("{path}.handoff.time"), "must be HH:MM")
                })?,
            )),
        };
        // Bounded here too (not only on save) so no cycle arithmetic can overflow, whatever
        // the stored data holds.
        if !(1..=ROTATION_VALUE_MAX).contains(&layer.rotation_value) {
            return Err(ScheduleError::invalid(
                format!("{path}.rotation_value"),
                "must be 1..30",
            ));
        }
        let rotation = Rotation::new(
            tz,
            layer.layer_start,
            layer.rotation_unit,
            layer.rotation_value,
            handoff,
        )?;
        Ok(CompiledLayer {
            layer,
            rotation,
            filters: Filters::new(layer, calendars, path)?,
        })
    }

    /// C(L, t) of RSP-210 step 3, as the group index: `None` outside [S, E) (RSP-213) or when
    /// a filter rejects t (RSP-219 … RSP-223).
    fn hit(&self, tz: &TimeZone, t: Millis) -> Result<Option<Hit<'a>>, ScheduleError> {
        let layer = self.layer;
        if t < layer.layer_start || layer.layer_end.is_some_and(|e| t >= e) {
            return Ok(None);
        }
        if layer.groups.is_empty() {
            return Ok(None);
        }
        let Some(cycle) = self.rotation.cycle_at(tz, t)? else {
            return Ok(None);
        };
        let lt = zone::local(tz, t)?;
        if !self.filters.passes(lt, t, self.rotation.handoff_time())? {
            return Ok(None);
        }
        Ok(Some(Hit {
            layer,
            group_index: group_index(
                cycle.index,
                layer.groups.len(),
                layer.rotation_unit,
                layer.rotation_value,
                layer.fair_rotation,
            ),
            cycle_index: cycle.index,
        }))
    }

    /// Adds to `points` every instant in (lo, hi) where this layer's turn can change.
    fn breakpoints(
        &self,
        tz: &TimeZone,
        lo: Millis,
        hi: Millis,
        points: &mut Points,
    ) -> Result<(), ScheduleError> {
        let layer = self.layer;
        points.add(layer.layer_start);
        if let Some(e) = layer.layer_end {
            points.add(e);
        }
        let first = lo.max(layer.layer_start);
        if layer.layer_end.is_some_and(|e| first >= e) || first >= hi {
            return Ok(());
        }
        if let Some(cycle) = self.rotation.cycle_at(tz, first)? {
            let mut k = cycle.index + 1;
            loop {
                let b = self.rotation.boundary(tz, k)?;
                if b >= hi {
                    break;
                }
                points.add(b);
                k += 1;
            }
        }
        if let Some(cal_tz) = self.filters.calendar_zone() {
            zone_points(cal_tz, lo, hi, &[Time::midnight()], points)?;
        }
        Ok(())
    }
}

/// One definition of the schedule and the instants it governs: `[from, until)`.
#[derive(Debug, Clone)]
struct Version<'a> {
    until: Option<Millis>,
    tz: TimeZone,
    enabled: bool,
    layers: Vec<CompiledLayer<'a>>,
}

/// What holds at one instant: the pieces the on-call set, the per-layer view and the
/// timeline are all built from.
#[derive(Debug, Clone)]
pub(crate) struct Moment<'a> {
    pub(crate) enabled: bool,
    pub(crate) overrides: Vec<&'a Override>,
    pub(crate) hits: Vec<Hit<'a>>,
}

impl Moment<'_> {
    /// RSP-210: disabled → nobody; any override → the union of the override persons, layers
    /// ignored (RSP-212); otherwise the union of every layer's group (RSP-224).
    pub(crate) fn on_call(&self) -> OnCall {
        if !self.enabled {
            return OnCall::default();
        }
        let slots = if !self.overrides.is_empty() {
            self.overrides
                .iter()
                .map(|o| OnCallSlot {
                    person_id: o.person_id,
                    role: ShiftRole::Any,
                    source: ShiftSource::Override {
                        override_id: o.override_id,
                    },
                })
                .collect()
        } else {
            self.hits
                .iter()
                .flat_map(|hit| {
                    let members = hit
                        .layer
                        .groups
                        .get(hit.group_index)
                        .map(|g| g.members.as_slice())
                        .unwrap_or_default();
                    members.iter().map(move |m| OnCallSlot {
                        person_id: m.person_id,
                        role: ShiftRole::Role(m.role_id),
                        source: ShiftSource::Layer {
                            layer_id: hit.layer.layer_id,
                            group_index: hit.group_index,
                        },
                    })
                })
                .collect()
        };
        OnCall { slots }
    }
}

/// A compiled schedule, history included.
#[derive(Debug, Clone)]
pub(crate) struct Engine<'a> {
    overrides: &'a [Override],
    /// Ascending; the last one is the current definition (`until = None`).
    versions: Vec<Version<'a>>,
}

impl<'a> Engine<'a> {
    pub(crate) fn new(
        schedule: &'a Schedule,
        calendars: Calendars<'a>,
    ) -> Result<Self, ScheduleError> {
        let mut past: Vec<_> = schedule.history.iter().collect();
        past.sort_by_key(|p| p.until);
        let mut versions = Vec::with_capacity(past.len() + 1);
        for (i, p) in past.iter().enumerate() {
            let path = format!("history[{i}]");
            versions.push(Version {
                until: Some(p.until),
                tz: zone::zone(&p.time_zone, &format!("{path}.time_zone"))?,
                enabled: p.status == ScheduleStatus::Enabled,
                layers: compile_layers(&p.layers, &p.time_zone, calendars, &format!("{path}."))?,
            });
        }
        versions.push(Version {
            until: None,
            tz: zone::zone(&schedule.time_zone, "time_zone")?,
            enabled: schedule.status == ScheduleStatus::Enabled,
            layers: compile_layers(&schedule.layers, &schedule.time_zone, calendars, "")?,
        });
        Ok(Engine {
            overrides: &schedule.overrides,
            versions,
        })
    }

    /// RSP-225: the definition that governs t — the first past one whose `until` is after t,
    /// else the current one.
    fn version_at(&self, t: Millis) -> Option<&Version<'a>> {
        self.versions.iter().find(|v| v.until.is_none_or(|u| t < u))
    }

    pub(crate) fn moment(&self, t: Millis) -> Result<Moment<'a>, ScheduleError> {
        let Some(version) = self.version_at(t) else {
            return Ok(Moment {
                enabled: false,
                overrides: Vec::new(),
                hits: Vec::new(),
            });
        };
        let mut hits = Vec::new();
        if version.enabled {
            for layer in &version.layers {
                if let Some(hit) = layer.hit(&version.tz, t)? {
                    hits.push(hit);
                }
            }
        }
        Ok(Moment {
            enabled: version.enabled,
            overrides: active_overrides(self.overrides, t),
            hits,
        })
    }

    pub(crate) fn on_call(&self, t: Millis) -> Result<OnCall, ScheduleError> {
        Ok(self.moment(t)?.on_call())
    }

    /// Every instant in [a, b) where the on-call set may change, always including `a`,
    /// ascending. Between two consecutive breakpoints nothing that any rule reads changes:
    /// no zone transition (so local time runs linearly), no configured wall-clock time or
    /// midnight is crossed, and no cycle boundary, layer start/end, override edge or version
    /// switch occurs. A superset is harmless; a missing point would hide a change.
    pub(crate) fn breakpoints(&self, a: Millis, b: Millis) -> Result<Vec<Millis>, ScheduleError> {
        let mut points = Points::new(a, b);
        for o in self.overrides {
            points.add(o.start);
            points.add(o.end);
        }
        let mut from = Millis::MIN;
        for version in &self.versions {
            let until = version.until.unwrap_or(Millis::MAX);
            if let Some(u) = version.until {
                points.add(u);
            }
            let (lo, hi) = (a.max(from), b.min(until));
            from = until;
            if lo >= hi || !version.enabled {
                continue;
            }
            let mut times = Vec::new();
            for layer in &version.layers {
                layer
                    .filters
                    .wall_times(layer.rotation.handoff_time(), &mut times);
                layer.breakpoints(&version.tz, lo, hi, &mut points)?;
            }
            times.sort_unstable();
            times.dedup();
            zone_points(&version.tz, lo, hi, &times, &mut points)?;
        }
        Ok(points.into_vec())
    }
}

fn compile_layers<'a>(
    layers: &'a [Layer],
    zone_name: &str,
    calendars: Calendars<'a>,
    prefix: &str,
) -> Result<Vec<CompiledLayer<'a>>, ScheduleError> {
    let tz = zone::zone(zone_name, &format!("{prefix}time_zone"))?;
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| CompiledLayer::new(l, &tz, calendars, &format!("{prefix}layers[{i}]")))
        .collect()
}

/// Adds the zone's transitions in [lo, hi) and every instant in (lo, hi) whose local time is
/// one of `times` on some date (both passes of a folded hour).
fn zone_points(
    tz: &TimeZone,
    lo: Millis,
    hi: Millis,
    times: &[Time],
    points: &mut Points,
) -> Result<(), ScheduleError> {
    for tr in tz.following(zone::timestamp(lo, "from")?) {
        let t = zone::millis(tr.timestamp());
        if t >= hi {
            break;
        }
        points.add(t);
    }
    if times.is_empty() {
        return Ok(());
    }
    let last = zone::add_date_days(zone::local(tz, hi)?.date(), 1)?;
    let mut d = zone::add_date_days(zone::local(tz, lo)?.date(), -1)?;
    while d <= last {
        for &time in times {
            for t in zone::instants_of(tz, d.to_datetime(time)) {
                points.add(t);
            }
        }
        d = zone::add_date_days(d, 1)?;
    }
    Ok(())
}

/// A set of breakpoints restricted to [a, b).
pub(crate) struct Points {
    a: Millis,
    b: Millis,
    set: BTreeSet<Millis>,
}

impl Points {
    fn new(a: Millis, b: Millis) -> Self {
        let mut set = BTreeSet::new();
        if a < b {
            set.insert(a);
        }
        Points { a, b, set }
    }

    fn add(&mut self, t: Millis) {
        if self.a < t && t < self.b {
            self.set.insert(t);
        }
    }

    fn into_vec(self) -> Vec<Millis> {
        self.set.into_iter().collect()
    }
}
