//! The worked examples of response.md §3.1 (SCH-1 … SCH-11) verbatim, and one or more tests
//! for every rule of §2.17 and §2.18.

use std::collections::BTreeMap;

use jiff::civil::{DateTime, date};
use jiff::tz::TimeZone;

use super::*;
use crate::model::Millis;

const A: PersonId = 1;
const B: PersonId = 2;
const C: PersonId = 3;
const D: PersonId = 4;
const E: PersonId = 5;
const X: PersonId = 24;
const M1: PersonId = 31;
const D1: PersonId = 41;
const D2: PersonId = 42;
const S1: PersonId = 51;
const S2: PersonId = 52;

type Persons = &'static [PersonId];
type Mutation = Box<dyn Fn(&mut Schedule)>;

const MIN: Millis = 60_000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

const SHANGHAI: &str = "Asia/Shanghai";
const NEW_YORK: &str = "America/New_York";
const UTC: &str = "UTC";

/// A local wall-clock time in `zone`, converted with RSP-215.
fn at(zone_name: &str, s: &str) -> Millis {
    let tz = TimeZone::get(zone_name).unwrap();
    let dt: DateTime = s.replace(' ', "T").parse().unwrap();
    zone::to_instant(&tz, dt).unwrap()
}

/// A UTC instant, `2025-03-09T12:30Z`.
fn z(s: &str) -> Millis {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn groups(gs: &[&[PersonId]]) -> Vec<Group> {
    gs.iter()
        .map(|members| Group {
            group_name: String::new(),
            members: members
                .iter()
                .map(|&person_id| GroupMember {
                    person_id,
                    role_id: 0,
                })
                .collect(),
        })
        .collect()
}

fn layer(id: i64, gs: &[&[PersonId]], unit: RotationUnit, value: i64, start: Millis) -> Layer {
    Layer {
        layer_id: id,
        layer_name: format!("L{id}"),
        groups: groups(gs),
        layer_start: start,
        rotation_unit: unit,
        rotation_value: value,
        ..Layer::default()
    }
}

fn sched(zone_name: &str, layers: Vec<Layer>) -> Schedule {
    Schedule {
        schedule_id: 1,
        schedule_name: "Ops".into(),
        time_zone: zone_name.into(),
        layers,
        ..Schedule::default()
    }
}

fn ovr(id: i64, start: Millis, end: Millis, person_id: PersonId) -> Override {
    Override {
        override_id: id,
        start,
        end,
        person_id,
        ..Override::default()
    }
}

fn daily(start: &str, end: &str) -> RestrictPeriod {
    RestrictPeriod {
        start_weekday: None,
        start: start.into(),
        end_weekday: None,
        end: end.into(),
    }
}

fn weekly(sw: i64, start: &str, ew: i64, end: &str) -> RestrictPeriod {
    RestrictPeriod {
        start_weekday: Some(sw),
        start: start.into(),
        end_weekday: Some(ew),
        end: end.into(),
    }
}

fn who_in(s: &Schedule, cals: Calendars<'_>, t: Millis) -> Vec<PersonId> {
    let mut p = on_call_at(s, cals, t).unwrap().persons();
    p.sort_unstable();
    p
}

fn who(s: &Schedule, t: Millis) -> Vec<PersonId> {
    who_in(s, Calendars::default(), t)
}

fn check(s: &Schedule, zone_name: &str, table: &[(&str, &[PersonId])]) {
    for (when, expected) in table {
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        assert_eq!(who(s, at(zone_name, when)), expected, "at {when}");
    }
}

fn check_z(s: &Schedule, table: &[(&str, &[PersonId])]) {
    for (when, expected) in table {
        assert_eq!(who(s, z(when)), expected.to_vec(), "at {when}");
    }
}

/// The persons the timeline puts on call at t must be exactly `on_call_at(t)`: a missing
/// breakpoint would show up as a difference somewhere inside a piece.
fn assert_timeline_matches_point_queries(
    s: &Schedule,
    cals: Calendars<'_>,
    from: Millis,
    to: Millis,
    step: Millis,
) {
    let shifts = timeline(s, cals, from, to).unwrap();
    let mut t = from;
    while t < to {
        let mut from_shifts: Vec<PersonId> = shifts
            .iter()
            .filter(|sh| sh.start <= t && t < sh.end)
            .flat_map(|sh| sh.members.clone())
            .collect();
        from_shifts.sort_unstable();
        from_shifts.dedup();
        assert_eq!(from_shifts, who_in(s, cals, t), "at {t}");
        t += step;
    }
}

// --- SCH-1 ---------------------------------------------------------------------------------

fn sch1(start: &str) -> Schedule {
    let mut l = layer(
        1,
        &[&[A], &[B], &[C]],
        RotationUnit::Week,
        1,
        at(SHANGHAI, start),
    );
    l.handoff = Some(Handoff {
        weekday: 1,
        time: "10:00".into(),
    });
    sched(SHANGHAI, vec![l])
}

// spec: SCH-1, RSP-214, RSP-217
#[test]
fn sch_1_weekly_rotation_with_monday_handoff() {
    let s = sch1("2025-01-06 10:00");
    validate_schedule(&s, Calendars::default()).unwrap();
    check(
        &s,
        SHANGHAI,
        &[
            ("2025-01-08 15:00", &[A]),
            ("2025-01-13 09:59", &[A]),
            ("2025-01-13 10:00", &[B]),
            ("2025-01-20 10:00", &[C]),
            ("2025-01-27 10:00", &[A]),
            ("2025-02-04 12:00", &[B]),
        ],
    );
}

// spec: SCH-1, RSP-214 (partial first cycle, OQ-12), RSP-213
#[test]
fn sch_1b_partial_first_cycle() {
    let s = sch1("2025-01-08 00:00");
    check(
        &s,
        SHANGHAI,
        &[
            ("2025-01-07 23:00", &[]),
            ("2025-01-08 00:00", &[A]),
            ("2025-01-13 09:59", &[A]),
            ("2025-01-13 10:00", &[B]),
            ("2025-01-20 10:00", &[C]),
        ],
    );
    // Cycle 0 is [S, first handoff) and the per-layer view numbers it 0.
    let v = view(
        &s,
        Calendars::default(),
        at(SHANGHAI, "2025-01-08 00:00"),
        at(SHANGHAI, "2025-01-21 00:00"),
        at(SHANGHAI, "2025-01-08 00:00"),
    )
    .unwrap();
    let segs: Vec<(Millis, Millis, usize, i64)> = v.layers[0]
        .segments
        .iter()
        .map(|s| (s.start, s.end, s.group_index, s.cycle_index))
        .collect();
    assert_eq!(
        segs,
        [
            (
                at(SHANGHAI, "2025-01-08 00:00"),
                at(SHANGHAI, "2025-01-13 10:00"),
                0,
                0
            ),
            (
                at(SHANGHAI, "2025-01-13 10:00"),
                at(SHANGHAI, "2025-01-20 10:00"),
                1,
                1
            ),
            (
                at(SHANGHAI, "2025-01-20 10:00"),
                at(SHANGHAI, "2025-01-21 00:00"),
                2,
                2
            ),
        ]
    );
}

// --- SCH-2 ---------------------------------------------------------------------------------

fn sch2() -> Schedule {
    sched(
        SHANGHAI,
        vec![layer(
            1,
            &[&[A], &[B]],
            RotationUnit::Day,
            1,
            at(SHANGHAI, "2025-03-01 00:00"),
        )],
    )
}

// spec: SCH-2, RSP-214, RSP-217
#[test]
fn sch_2_two_people_alternating_daily() {
    check(
        &sch2(),
        SHANGHAI,
        &[
            ("2025-03-01 08:00", &[A]),
            ("2025-03-02 00:00", &[B]),
            ("2025-03-10 12:00", &[B]),
            ("2025-03-31 23:59", &[A]),
        ],
    );
}

// --- SCH-3 ---------------------------------------------------------------------------------

fn sch3() -> Schedule {
    let monday_9 = Some(Handoff {
        weekday: 1,
        time: "09:00".into(),
    });
    let start = at(SHANGHAI, "2025-01-06 09:00");
    let mut l1 = layer(1, &[&[D1], &[D2]], RotationUnit::Week, 1, start);
    l1.layer_name = "Dev day".into();
    l1.handoff = monday_9.clone();
    l1.day_mask = Some(vec![1, 2, 3, 4, 5]);
    l1.restrict_mode = RestrictMode::Daily;
    l1.restrict_periods = vec![daily("09:00", "18:00")];
    let mut l2 = layer(2, &[&[S1], &[S2]], RotationUnit::Week, 1, start);
    l2.layer_name = "SRE night".into();
    l2.handoff = monday_9;
    l2.day_mask = Some(vec![1, 2, 3, 4, 5]);
    l2.mask_continuous_enabled = true;
    l2.restrict_mode = RestrictMode::Daily;
    l2.restrict_periods = vec![daily("18:00", "09:00")];
    let mut l3 = layer(
        3,
        &[&[M1]],
        RotationUnit::Week,
        1,
        at(SHANGHAI, "2025-01-04 00:00"),
    );
    l3.layer_name = "Weekend".into();
    l3.restrict_mode = RestrictMode::Weekly;
    l3.restrict_periods = vec![weekly(6, "00:00", 1, "00:00")];
    sched(SHANGHAI, vec![l1, l2, l3])
}

// spec: SCH-3, RSP-219, RSP-220, RSP-221, RSP-222, RSP-224, RSP-211
#[test]
fn sch_3_day_night_weekend_with_overlap_and_gap() {
    let s = sch3();
    validate_schedule(&s, Calendars::default()).unwrap();
    check(
        &s,
        SHANGHAI,
        &[
            ("2025-01-08 10:00", &[D1]),
            ("2025-01-08 20:00", &[S1]),
            ("2025-01-09 03:00", &[S1]),
            ("2025-01-10 17:59", &[D1]),
            ("2025-01-10 18:00", &[S1]),
            ("2025-01-11 03:00", &[M1, S1]),
            ("2025-01-11 12:00", &[M1]),
            ("2025-01-12 23:00", &[M1]),
            ("2025-01-13 05:00", &[]),
            ("2025-01-13 10:00", &[D2]),
            ("2025-01-13 19:00", &[S2]),
        ],
    );
    // The empty shift is a real gap in the final view (RSP-211).
    let on_call = on_call_at(&s, Calendars::default(), at(SHANGHAI, "2025-01-13 05:00")).unwrap();
    assert!(on_call.is_empty());
}

// spec: RSP-227 — the timeline agrees with point queries everywhere (breakpoints complete)
#[test]
fn sch_3_timeline_agrees_with_point_queries() {
    let s = sch3();
    let from = at(SHANGHAI, "2025-01-03 00:00");
    assert_timeline_matches_point_queries(&s, Calendars::default(), from, from + 12 * DAY, 7 * MIN);
}

// --- SCH-4 ---------------------------------------------------------------------------------

fn sch4() -> Schedule {
    let mut l = layer(1, &[], RotationUnit::Day, 1, at(UTC, "2025-05-05 09:00"));
    let member = |person_id, role_id| GroupMember { person_id, role_id };
    l.groups = vec![
        Group {
            group_name: "G0".into(),
            members: vec![member(A, ROLE_PRIMARY), member(B, ROLE_BACKUP)],
        },
        Group {
            group_name: "G1".into(),
            members: vec![member(C, ROLE_PRIMARY), member(D, ROLE_BACKUP)],
        },
    ];
    let mut s = sched(UTC, vec![l]);
    s.overrides = vec![ovr(
        1,
        at(UTC, "2025-05-05 14:00"),
        at(UTC, "2025-05-05 16:00"),
        E,
    )];
    s
}

// spec: SCH-4, RSP-151, RSP-212, RSP-224
#[test]
fn sch_4_primary_backup_roles_and_an_override() {
    let s = sch4();
    validate_schedule(&s, Calendars::default()).unwrap();
    let table: [(&str, Persons, Persons, Persons); 4] = [
        ("2025-05-05 12:00", &[A], &[B], &[A, B]),
        ("2025-05-05 15:00", &[E], &[E], &[E]),
        ("2025-05-05 16:00", &[A], &[B], &[A, B]),
        ("2025-05-06 09:00", &[C], &[D], &[C, D]),
    ];
    for (when, primary, backup, all) in table {
        let o = on_call_at(&s, Calendars::default(), at(UTC, when)).unwrap();
        assert_eq!(o.persons_for_roles(&[ROLE_PRIMARY]), primary, "{when}");
        assert_eq!(o.persons_for_roles(&[ROLE_BACKUP]), backup, "{when}");
        assert_eq!(o.persons_for_roles(&[]), all, "{when}");
        assert_eq!(o.persons_for_roles(&[ROLE_NONE]), all, "{when}");
    }
    // Per role, with sources.
    let o = on_call_at(&s, Calendars::default(), at(UTC, "2025-05-05 12:00")).unwrap();
    assert_eq!(
        o.by_role(),
        [
            (ShiftRole::Role(ROLE_PRIMARY), vec![A]),
            (ShiftRole::Role(ROLE_BACKUP), vec![B])
        ]
    );
    assert!(o.slots.iter().all(|s| s.source
        == ShiftSource::Layer {
            layer_id: 1,
            group_index: 0
        }));
    let o = on_call_at(&s, Calendars::default(), at(UTC, "2025-05-05 15:00")).unwrap();
    assert_eq!(
        o.slots,
        [OnCallSlot {
            person_id: E,
            role: ShiftRole::Any,
            source: ShiftSource::Override { override_id: 1 }
        }]
    );
}

// spec: SCH-4, RSP-212 — the timeline cuts the layer around the override and names sources
#[test]
fn sch_4_timeline_has_sources_and_roles() {
    let s = sch4();
    let shifts = timeline(
        &s,
        Calendars::default(),
        at(UTC, "2025-05-05 09:00"),
        at(UTC, "2025-05-05 18:00"),
    )
    .unwrap();
    let layer0 = ShiftSource::Layer {
        layer_id: 1,
        group_index: 0,
    };
    let shift = |start, end, role, members: &[PersonId], source| Shift {
        start: at(UTC, start),
        end: at(UTC, end),
        role,
        members: members.to_vec(),
        source,
    };
    assert_eq!(
        shifts,
        [
            shift(
                "2025-05-05 09:00",
                "2025-05-05 14:00",
                ShiftRole::Role(1),
                &[A],
                layer0
            ),
            shift(
                "2025-05-05 09:00",
                "2025-05-05 14:00",
                ShiftRole::Role(2),
                &[B],
                layer0
            ),
            shift(
                "2025-05-05 14:00",
                "2025-05-05 16:00",
                ShiftRole::Any,
                &[E],
                ShiftSource::Override { override_id: 1 }
            ),
            shift(
                "2025-05-05 16:00",
                "2025-05-05 18:00",
                ShiftRole::Role(1),
                &[A],
                layer0
            ),
            shift(
                "2025-05-05 16:00",
                "2025-05-05 18:00",
                ShiftRole::Role(2),
                &[B],
                layer0
            ),
        ]
    );
}

// --- SCH-5 ---------------------------------------------------------------------------------

const P: [PersonId; 7] = [100, 101, 102, 103, 104, 105, 106];

fn sch5(fair: bool) -> Schedule {
    let gs: Vec<&[PersonId]> = P.iter().map(std::slice::from_ref).collect();
    let mut l = layer(1, &gs, RotationUnit::Day, 1, at(UTC, "2025-06-02 00:00"));
    l.fair_rotation = fair;
    sched(UTC, vec![l])
}

// spec: SCH-5, RSP-218, RSP-217
#[test]
fn sch_5_fair_rotation() {
    let plain = sch5(false);
    let fair = sch5(true);
    for (i, day) in (2..=8).enumerate() {
        let t = at(UTC, &format!("2025-06-{day:02} 12:00"));
        assert_eq!(who(&plain, t), [P[i]]);
        assert_eq!(who(&fair, t), [P[i]]);
    }
    for (when, without, with) in [
        ("2025-06-09 12:00", 0, 1),
        ("2025-06-14 12:00", 5, 6),
        ("2025-06-15 12:00", 6, 0),
        ("2025-06-16 12:00", 0, 2),
        ("2025-06-22 12:00", 6, 1),
    ] {
        assert_eq!(who(&plain, at(UTC, when)), [P[without]], "{when}");
        assert_eq!(who(&fair, at(UTC, when)), [P[with]], "{when}");
    }
}

// spec: SCH-5, RSP-218 (12-hour day/night swap)
#[test]
fn sch_5b_twelve_hour_swap() {
    let mut l = layer(
        1,
        &[&[A], &[B]],
        RotationUnit::Hour,
        12,
        at(UTC, "2025-06-02 08:00"),
    );
    l.fair_rotation = true;
    let s = sched(UTC, vec![l]);
    check(
        &s,
        UTC,
        &[
            ("2025-06-02 09:00", &[A]),
            ("2025-06-02 21:00", &[B]),
            ("2025-06-08 21:00", &[B]),
            ("2025-06-09 09:00", &[B]),
            ("2025-06-09 21:00", &[A]),
            ("2025-06-16 09:00", &[A]),
        ],
    );
}

// spec: SCH-5, RSP-218 (gcd = 1: no effect)
#[test]
fn sch_5c_fair_rotation_changes_nothing_when_already_fair() {
    let four: Vec<&[PersonId]> = P[..4].iter().map(std::slice::from_ref).collect();
    let mut fair = layer(1, &four, RotationUnit::Day, 1, at(UTC, "2025-06-02 00:00"));
    fair.fair_rotation = true;
    let fair = sched(UTC, vec![fair]);
    for k in 0..60 {
        let t = at(UTC, "2025-06-02 12:00") + k * DAY;
        assert_eq!(who(&fair, t), [P[(k % 4) as usize]], "k = {k}");
    }
}

// --- SCH-6 ---------------------------------------------------------------------------------

// spec: SCH-6, RSP-214, RSP-215 (day cycles keep the wall clock: cycle 0 lasts 23 h)
#[test]
fn sch_6a_day_cycles_keep_wall_clock_across_dst() {
    let start = at(NEW_YORK, "2025-03-08 09:00");
    assert_eq!(start, z("2025-03-08T14:00Z"));
    let s = sched(
        NEW_YORK,
        vec![layer(1, &[&[A], &[B]], RotationUnit::Day, 1, start)],
    );
    check_z(
        &s,
        &[
            ("2025-03-09T12:30Z", &[A]),
            ("2025-03-09T13:00Z", &[B]),
            ("2025-03-10T12:59Z", &[B]),
            ("2025-03-10T13:00Z", &[A]),
        ],
    );
    let shifts = timeline(&s, Calendars::default(), start, start + 2 * DAY).unwrap();
    assert_eq!(shifts[0].end - shifts[0].start, 23 * HOUR);
}

// spec: SCH-6, RSP-214, RSP-215 (hour cycles count elapsed time, OQ-13)
#[test]
fn sch_6b_hour_cycles_count_elapsed_time() {
    let s = sched(
        NEW_YORK,
        vec![layer(
            1,
            &[&[A], &[B]],
            RotationUnit::Hour,
            12,
            at(NEW_YORK, "2025-03-08 09:00"),
        )],
    );
    check_z(
        &s,
        &[
            ("2025-03-09T01:59Z", &[A]),
            ("2025-03-09T02:00Z", &[B]),
            ("2025-03-09T13:30Z", &[B]),
            ("2025-03-09T14:00Z", &[A]),
        ],
    );
}

// spec: SCH-6, RSP-215 (a boundary in the spring-forward gap moves forward by the gap)
#[test]
fn sch_6c_boundary_in_a_gap() {
    let start = at(NEW_YORK, "2025-03-08 02:30");
    assert_eq!(start, z("2025-03-08T07:30Z"));
    let s = sched(
        NEW_YORK,
        vec![layer(1, &[&[A], &[B]], RotationUnit::Day, 1, start)],
    );
    check_z(
        &s,
        &[
            ("2025-03-09T07:29Z", &[A]),
            ("2025-03-09T07:30Z", &[B]),
            ("2025-03-10T06:29Z", &[B]),
            ("2025-03-10T06:30Z", &[A]),
        ],
    );
    let starts: Vec<Millis> = timeline(&s, Calendars::default(), start, start + 3 * DAY)
        .unwrap()
        .iter()
        .map(|sh| sh.start)
        .collect();
    assert_eq!(
        starts,
        [
            start,
            z("2025-03-09T07:30Z"),
            z("2025-03-10T06:30Z"),
            z("2025-03-11T06:30Z")
        ]
    );
}

// spec: SCH-6, RSP-215 (an ambiguous boundary takes the earlier instant)
#[test]
fn sch_6d_ambiguous_boundary_takes_the_earlier_instant() {
    assert_eq!(at(NEW_YORK, "2025-11-02 01:30"), z("2025-11-02T05:30Z"));
    let s = sched(
        NEW_YORK,
        vec![layer(
            1,
            &[&[A], &[B]],
            RotationUnit::Day,
            1,
            at(NEW_YORK, "2025-11-01 01:30"),
        )],
    );
    check_z(
        &s,
        &[
            ("2025-11-02T05:29Z", &[A]),
            ("2025-11-02T05:30Z", &[B]),
            // 01:30 EST, the second pass through the folded hour: no second handoff.
            ("2025-11-02T06:30Z", &[B]),
            ("2025-11-03T06:29Z", &[B]),
            ("2025-11-03T06:30Z", &[A]),
        ],
    );
}

// spec: RSP-215, RSP-220, RSP-221 — filters across DST days agree between timeline and points
#[test]
fn dst_filters_timeline_agrees_with_point_queries() {
    let mut l = layer(
        1,
        &[&[A], &[B], &[C]],
        RotationUnit::Day,
        1,
        at(NEW_YORK, "2025-03-01 02:30"),
    );
    l.day_mask = Some(vec![0, 1, 3, 5]);
    l.mask_continuous_enabled = true;
    l.restrict_mode = RestrictMode::Daily;
    l.restrict_periods = vec![daily("01:15", "02:45"), daily("22:00", "03:30")];
    let mut hourly = layer(
        2,
        &[&[D], &[E]],
        RotationUnit::Hour,
        5,
        at(NEW_YORK, "2025-03-01 00:00"),
    );
    hourly.restrict_mode = RestrictMode::Daily;
    hourly.restrict_periods = vec![daily("01:30", "01:45")];
    let s = sched(NEW_YORK, vec![l.clone(), hourly.clone()]);
    let from = at(NEW_YORK, "2025-03-07 00:00");
    assert_timeline_matches_point_queries(&s, Calendars::default(), from, from + 4 * DAY, 5 * MIN);
    let from = at(NEW_YORK, "2025-10-31 00:00");
    assert_timeline_matches_point_queries(&s, Calendars::default(), from, from + 4 * DAY, 5 * MIN);
}

// --- SCH-7 ---------------------------------------------------------------------------------

fn sch7() -> Schedule {
    let start = at(SHANGHAI, "2025-01-06 00:00");
    let mut s = sched(
        SHANGHAI,
        vec![
            layer(1, &[&[A], &[B]], RotationUnit::Week, 1, start),
            layer(2, &[&[X]], RotationUnit::Day, 1, start),
        ],
    );
    s.overrides = vec![
        ovr(
            1,
            at(SHANGHAI, "2025-01-08 00:00"),
            at(SHANGHAI, "2025-01-09 00:00"),
            C,
        ),
        ovr(
            2,
            at(SHANGHAI, "2025-01-08 12:00"),
            at(SHANGHAI, "2025-01-08 13:00"),
            D,
        ),
    ];
    s.notify.advance_in_time = 1800;
    s
}

// spec: SCH-7, RSP-212, RSP-230
#[test]
fn sch_7_overrides_replace_every_layer_and_their_reminders() {
    let s = sch7();
    validate_schedule(&s, Calendars::default()).unwrap();
    check(
        &s,
        SHANGHAI,
        &[
            ("2025-01-07 23:59", &[A, X]),
            ("2025-01-08 00:00", &[C]),
            ("2025-01-08 12:30", &[C, D]),
            ("2025-01-08 23:59", &[C]),
            ("2025-01-09 00:00", &[A, X]),
        ],
    );
    let got = reminders(
        &s,
        Calendars::default(),
        at(SHANGHAI, "2025-01-07 00:00"),
        at(SHANGHAI, "2025-01-10 00:00"),
    )
    .unwrap();
    let advance =
        |sent: &str, handoff: &str, incoming: &[PersonId], outgoing: &[PersonId]| Reminder {
            send_at: at(SHANGHAI, sent),
            kind: ReminderKind::Advance {
                handoff_at: at(SHANGHAI, handoff),
                incoming: incoming.to_vec(),
                outgoing: outgoing.to_vec(),
            },
        };
    assert_eq!(
        got,
        [
            advance("2025-01-07 23:30", "2025-01-08 00:00", &[C], &[A, X]),
            advance("2025-01-08 11:30", "2025-01-08 12:00", &[D], &[]),
            advance("2025-01-08 12:30", "2025-01-08 13:00", &[], &[D]),
            advance("2025-01-08 23:30", "2025-01-09 00:00", &[A, X], &[C]),
        ]
    );
}

// spec: SCH-7, RSP-233 — creating the overrides sends nothing at that moment
#[test]
fn sch_7_creating_overrides_sends_nothing() {
    let created = at(SHANGHAI, "2025-01-07 12:00");
    let mut before = sch7();
    before.overrides.clear();
    let after = apply_edit(&before, sch7(), created, Calendars::default()).unwrap();
    assert_eq!(after.overrides.len(), 2);
    let now = reminders(&after, Calendars::default(), created, created + MIN).unwrap();
    assert!(now.is_empty());
}

// --- SCH-8 ---------------------------------------------------------------------------------

fn sch8(continuous: bool) -> Schedule {
    let mut l = layer(
        1,
        &[&[A], &[B], &[C]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-01-06 20:00"),
    );
    l.day_mask = Some(vec![1, 2, 3, 4, 5]);
    l.mask_continuous_enabled = continuous;
    sched(UTC, vec![l])
}

// spec: SCH-8, RSP-219, RSP-220 (masked cycles still use up turns, OQ-14)
#[test]
fn sch_8_date_mask_with_and_without_continuous_rotation() {
    let table: [(&str, &[PersonId], &[PersonId]); 6] = [
        ("2025-01-06 10:00", &[], &[]),
        ("2025-01-10 23:00", &[B], &[B]),
        ("2025-01-11 02:00", &[], &[B]),
        ("2025-01-11 21:00", &[], &[]),
        ("2025-01-13 10:00", &[A], &[]),
        ("2025-01-13 20:00", &[B], &[B]),
    ];
    let (plain, continuous) = (sch8(false), sch8(true));
    for (when, non_continuous, cont) in table {
        assert_eq!(who(&plain, at(UTC, when)), non_continuous, "{when}");
        assert_eq!(who(&continuous, at(UTC, when)), cont, "{when}");
    }
    // A shift crossing midnight is cut at 00:00 without continuous rotation.
    let shifts = timeline(
        &plain,
        Calendars::default(),
        at(UTC, "2025-01-10 20:00"),
        at(UTC, "2025-01-11 20:00"),
    )
    .unwrap();
    assert_eq!(shifts.len(), 1);
    assert_eq!(shifts[0].end, at(UTC, "2025-01-11 00:00"));
}

// --- SCH-9 ---------------------------------------------------------------------------------

// spec: SCH-9, RSP-216
#[test]
fn sch_9_monthly_rotation_at_the_end_of_the_month() {
    let s = sched(
        UTC,
        vec![layer(
            1,
            &[&[A], &[B]],
            RotationUnit::Month,
            1,
            at(UTC, "2025-01-31 09:00"),
        )],
    );
    check(
        &s,
        UTC,
        &[
            ("2025-02-28 08:59", &[A]),
            ("2025-02-28 09:00", &[B]),
            ("2025-03-31 09:00", &[A]),
            ("2025-04-15 12:00", &[A]),
            ("2025-04-30 09:00", &[B]),
        ],
    );
}

// --- SCH-10 --------------------------------------------------------------------------------

// spec: SCH-10, RSP-225
#[test]
fn sch_10_editing_never_changes_the_past() {
    let original = sched(
        UTC,
        vec![layer(
            1,
            &[&[A], &[B], &[C]],
            RotationUnit::Day,
            1,
            at(UTC, "2025-01-06 00:00"),
        )],
    );
    let mut edited = original.clone();
    edited.layers[0].groups = groups(&[&[C], &[B], &[A]]);
    let edit_at = at(UTC, "2025-01-08 12:00");
    let s = apply_edit(&original, edited, edit_at, Calendars::default()).unwrap();
    assert_eq!(s.history.len(), 1);
    assert_eq!(s.layers[0].version_from, edit_at);
    check(
        &s,
        UTC,
        &[
            ("2025-01-07 10:00", &[B]),
            ("2025-01-08 11:59", &[C]),
            ("2025-01-08 12:00", &[A]),
            ("2025-01-09 00:00", &[C]),
        ],
    );
    // The handoff at the moment of the edit shows in the timeline.
    let shifts = timeline(
        &s,
        Calendars::default(),
        at(UTC, "2025-01-08 00:00"),
        at(UTC, "2025-01-09 00:00"),
    )
    .unwrap();
    let cuts: Vec<(Millis, Vec<PersonId>)> = shifts
        .iter()
        .map(|s| (s.start, s.members.clone()))
        .collect();
    assert_eq!(
        cuts,
        [(at(UTC, "2025-01-08 00:00"), vec![C]), (edit_at, vec![A])]
    );
}

// --- SCH-11 --------------------------------------------------------------------------------

// spec: SCH-11, RSP-231, RSP-232
#[test]
fn sch_11_fixed_time_reminder() {
    let mut s = sch1("2025-01-06 10:00");
    s.notify.fixed_time = Some(FixedTime {
        cycle: FixedTimeCycle::Day,
        start: "08:00".into(),
    });
    s.notify.by = Some(ReminderBy {
        follow_preference: true,
        personal_channels: vec![],
    });
    validate_schedule(&s, Calendars::default()).unwrap();
    let eight = at(SHANGHAI, "2025-01-13 08:00");
    let got = reminders(&s, Calendars::default(), eight, eight + MIN).unwrap();
    let ten = at(SHANGHAI, "2025-01-13 10:00");
    assert_eq!(
        got,
        [Reminder {
            send_at: eight,
            kind: ReminderKind::Daily {
                on_call: vec![CurrentShift {
                    person_id: A,
                    until: Some(ten)
                }],
                upcoming: vec![UpcomingShift {
                    person_id: B,
                    from: ten
                }],
                handoffs: vec![ReminderHandoff {
                    at: ten,
                    incoming: vec![B],
                    outgoing: vec![A]
                }],
            },
        }]
    );
    assert_eq!(got[0].recipients(), [A, B]);
    let by = s.notify.by.as_ref();
    assert_eq!(
        reminder_channels(by, &[DirectChannel::Email, DirectChannel::Voice]),
        [DirectChannel::Email]
    );
    assert_eq!(
        reminder_channels(by, &[DirectChannel::App]),
        [DirectChannel::App]
    );
    // One a day: the window over a whole day holds just this one.
    let day = reminders(&s, Calendars::default(), eight - HOUR, eight + 23 * HOUR).unwrap();
    assert_eq!(day.len(), 1);
}

// --- Rules of §2.17 ------------------------------------------------------------------------

// spec: RSP-210
#[test]
fn disabled_schedule_has_nobody_on_call_not_even_overrides() {
    let mut s = sch4();
    s.status = ScheduleStatus::Disabled;
    assert!(who(&s, at(UTC, "2025-05-05 12:00")).is_empty());
    assert!(who(&s, at(UTC, "2025-05-05 15:00")).is_empty());
    assert!(
        timeline(
            &s,
            Calendars::default(),
            at(UTC, "2025-05-05 00:00"),
            at(UTC, "2025-05-07 00:00")
        )
        .unwrap()
        .is_empty()
    );
}

// spec: RSP-211
#[test]
fn no_layers_means_an_empty_shift() {
    let s = sched(UTC, vec![]);
    assert!(
        on_call_at(&s, Calendars::default(), z("2025-01-01T00:00Z"))
            .unwrap()
            .is_empty()
    );
}

// spec: RSP-212
#[test]
fn overlapping_overrides_union_and_layers_return_afterwards() {
    let s = sch7();
    let o = on_call_at(&s, Calendars::default(), at(SHANGHAI, "2025-01-08 12:30")).unwrap();
    assert!(o.slots.iter().all(|s| s.role == ShiftRole::Any));
    assert_eq!(o.persons(), [C, D]);
    // Nothing needs to happen when the window ends.
    assert_eq!(who(&s, at(SHANGHAI, "2025-01-09 00:00")), [A, X]);
}

// spec: RSP-213
#[test]
fn layer_contributes_only_between_start_and_end() {
    let mut l = layer(
        1,
        &[&[A]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-02-03 00:00"),
    );
    l.layer_end = Some(at(UTC, "2025-02-10 00:00"));
    let s = sched(UTC, vec![l]);
    check(
        &s,
        UTC,
        &[
            ("2025-02-02 23:59", &[]),
            ("2025-02-03 00:00", &[A]),
            ("2025-02-09 23:59", &[A]),
            ("2025-02-10 00:00", &[]),
        ],
    );
}

// spec: RSP-214 — a handoff on a day × 7 cycle, and a start exactly on the handoff point
#[test]
fn handoff_on_a_seven_day_cycle() {
    let mut l = layer(
        1,
        &[&[A], &[B]],
        RotationUnit::Day,
        7,
        at(UTC, "2025-01-01 00:00"),
    );
    l.handoff = Some(Handoff {
        weekday: 5,
        time: "17:30".into(),
    });
    let s = sched(UTC, vec![l]);
    validate_schedule(&s, Calendars::default()).unwrap();
    check(
        &s,
        UTC,
        &[
            ("2025-01-01 00:00", &[A]),
            ("2025-01-03 17:29", &[A]),
            ("2025-01-03 17:30", &[B]),
            ("2025-01-10 17:30", &[A]),
        ],
    );
}

// spec: RSP-221
#[test]
fn daily_restriction_periods() {
    let mut l = layer(
        1,
        &[&[A]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-01-01 00:00"),
    );
    l.restrict_mode = RestrictMode::Daily;
    l.restrict_periods = vec![daily("22:00", "02:00"), daily("12:00", "13:00")];
    let mut always = layer(
        2,
        &[&[B]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-01-01 00:00"),
    );
    always.restrict_mode = RestrictMode::Daily;
    always.restrict_periods = vec![daily("10:00", "10:00")];
    let s = sched(UTC, vec![l, always]);
    check(
        &s,
        UTC,
        &[
            ("2025-01-02 21:59", &[B]),
            ("2025-01-02 22:00", &[A, B]),
            ("2025-01-03 01:59", &[A, B]),
            ("2025-01-03 02:00", &[B]),
            ("2025-01-03 12:30", &[A, B]),
            ("2025-01-03 13:00", &[B]),
        ],
    );
}

// spec: RSP-222
#[test]
fn weekly_restriction_periods() {
    let start = at(UTC, "2025-01-01 00:00");
    let mut wraps = layer(1, &[&[A]], RotationUnit::Week, 1, start);
    wraps.restrict_mode = RestrictMode::Weekly;
    wraps.restrict_periods = vec![weekly(5, "18:00", 1, "09:00")];
    let mut inside = layer(2, &[&[B]], RotationUnit::Week, 1, start);
    inside.restrict_mode = RestrictMode::Weekly;
    inside.restrict_periods = vec![weekly(2, "09:00", 4, "17:00")];
    let mut whole = layer(3, &[&[C]], RotationUnit::Week, 1, start);
    whole.restrict_mode = RestrictMode::Weekly;
    whole.restrict_periods = vec![weekly(3, "08:00", 3, "08:00")];
    let s = sched(UTC, vec![wraps, inside, whole]);
    validate_schedule(&s, Calendars::default()).unwrap();
    check(
        &s,
        UTC,
        &[
            ("2025-01-10 17:59", &[C]),    // Fri
            ("2025-01-10 18:00", &[A, C]), // Fri
            ("2025-01-12 12:00", &[A, C]), // Sun
            ("2025-01-13 08:59", &[A, C]), // Mon
            ("2025-01-13 09:00", &[C]),    // Mon
            ("2025-01-14 09:00", &[B, C]), // Tue
            ("2025-01-16 16:59", &[B, C]), // Thu
            ("2025-01-16 17:00", &[C]),    // Thu
        ],
    );
}

fn trading_calendar() -> ServiceCalendar {
    let mut overrides = BTreeMap::new();
    for d in 1..=7 {
        overrides.insert(format!("2025-10-{d:02}"), DayType::Restday);
    }
    overrides.insert("2025-10-11".into(), DayType::Workday);
    ServiceCalendar {
        cal_id: "0123456789abcdef01234567".into(),
        cal_name: "CAL".into(),
        description: String::new(),
        team_id: 0,
        timezone: SHANGHAI.into(),
        workdays: vec![1, 2, 3, 4, 5],
        extra_cal_ids: vec![],
        date_overrides: overrides,
        status: CalendarStatus::Enabled,
        creator_id: 0,
    }
}

fn cal_mask(day_type: DayType) -> Option<CalendarMask> {
    Some(CalendarMask {
        cal_id: trading_calendar().cal_id,
        day_type,
    })
}

// spec: RSP-223, RSP-271 — the date of t in the calendar's zone
#[test]
fn calendar_mask_reads_the_date_in_the_calendar_zone() {
    let cals = [trading_calendar()];
    let calendars = Calendars::new(&cals, &[]);
    let mut l = layer(
        1,
        &[&[A]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-09-29 00:00"),
    );
    l.calendar_mask = cal_mask(DayType::Workday);
    let mut rest = layer(
        2,
        &[&[B]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-09-29 00:00"),
    );
    rest.calendar_mask = cal_mask(DayType::Restday);
    let s = sched(UTC, vec![l, rest]);
    validate_schedule(&s, calendars).unwrap();
    // 2025-09-30 17:00Z is already 10-01 (a rest day) in Shanghai, although the UTC date is a
    // Tuesday; 10-07 17:00Z is Wednesday 10-08 there (a workday) though 10-07 is a rest day.
    assert_eq!(who_in(&s, calendars, z("2025-09-30T15:59Z")), [A]);
    assert_eq!(who_in(&s, calendars, z("2025-09-30T17:00Z")), [B]);
    assert_eq!(who_in(&s, calendars, z("2025-10-07T17:00Z")), [A]);
    assert_eq!(who_in(&s, calendars, z("2025-10-11T04:00Z")), [A]); // adjusted working Saturday
    assert_eq!(who_in(&s, calendars, z("2025-10-12T04:00Z")), [B]);
    let from = z("2025-09-29T00:00Z");
    assert_timeline_matches_point_queries(&s, calendars, from, from + 16 * DAY, 17 * MIN);
}

// spec: RSP-223, RSP-220 — a continuous layer judges the mask day
#[test]
fn calendar_mask_with_continuous_rotation_uses_the_mask_day() {
    let cals = [trading_calendar()];
    let calendars = Calendars::new(&cals, &[]);
    let mut l = layer(
        1,
        &[&[A]],
        RotationUnit::Day,
        1,
        at(SHANGHAI, "2025-10-10 20:00"),
    );
    l.day_mask = Some(vec![0, 1, 2, 3, 4, 5, 6]);
    l.mask_continuous_enabled = true;
    l.calendar_mask = cal_mask(DayType::Workday);
    let s = sched(SHANGHAI, vec![l]);
    for (when, expected) in [
        ("2025-10-10 20:00", &[A][..]),
        ("2025-10-11 02:00", &[A]), // mask day Friday
        ("2025-10-11 21:00", &[A]), // Saturday 10-11 is an adjusted workday
        ("2025-10-12 03:00", &[A]), // still Saturday's cycle
        ("2025-10-12 21:00", &[]),  // Sunday
        ("2025-10-13 03:00", &[]),  // mask day Sunday
        ("2025-10-13 20:00", &[A]),
    ] {
        assert_eq!(
            who_in(&s, calendars, at(SHANGHAI, when)),
            expected,
            "{when}"
        );
    }
}

// spec: RSP-223 — a calendar that has disappeared turns the mask off instead of emptying it
#[test]
fn missing_calendar_fails_open() {
    let mut l = layer(
        1,
        &[&[A]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-09-29 00:00"),
    );
    l.calendar_mask = cal_mask(DayType::Workday);
    let s = sched(UTC, vec![l]);
    assert_eq!(who(&s, z("2025-10-01T12:00Z")), [A]);
    let err = validate_schedule(&s, Calendars::default()).unwrap_err();
    assert_eq!(err.field, "layers[0].calendar_mask.cal_id");
}

// spec: RSP-224 — union across layers, weight has no effect, a person in two layers is once
#[test]
fn layers_combine_by_union_whatever_their_weight() {
    let start = at(UTC, "2025-01-01 00:00");
    let mut l1 = layer(1, &[&[A, B]], RotationUnit::Day, 1, start);
    l1.weight = 100;
    let mut l2 = layer(2, &[&[B, C]], RotationUnit::Day, 1, start);
    l2.weight = -5;
    let s = sched(UTC, vec![l1, l2]);
    let o = on_call_at(&s, Calendars::default(), start + HOUR).unwrap();
    assert_eq!(o.persons(), [A, B, C]);
    assert_eq!(o.slots.len(), 4);
}

// spec: RSP-225 — override edit rules (OQ-17)
#[test]
fn begun_overrides_can_only_be_ended_early() {
    let base = sch7();
    let now = at(SHANGHAI, "2025-01-08 06:00"); // O1 has begun, O2 is in the future
    let cals = Calendars::default();

    let mut deleted = base.clone();
    deleted.overrides.retain(|o| o.override_id != 1);
    let err = apply_edit(&base, deleted, now, cals).unwrap_err();
    assert_eq!(err.kind, ScheduleErrorKind::FailedPrecondition);

    let mut moved = base.clone();
    moved.overrides[0].person_id = E;
    assert!(apply_edit(&base, moved, now, cals).is_err());

    let mut ended = base.clone();
    ended.overrides[0].end = now - 5_000; // a client clock a little behind
    let s = apply_edit(&base, ended, now, cals).unwrap();
    assert_eq!(s.overrides[0].end, now);
    assert_eq!(who(&s, now - MIN), [C]); // the past is intact
    assert_eq!(who(&s, now), [A, X]);

    let mut future_deleted = base.clone();
    future_deleted.overrides.retain(|o| o.override_id != 2);
    let s = apply_edit(&base, future_deleted, now, cals).unwrap();
    assert_eq!(s.overrides.len(), 1);

    // A new override cannot reach into the past: it starts at the edit at the earliest.
    let mut added = base.clone();
    added.overrides.push(ovr(3, now - HOUR, now + HOUR, E));
    let s = apply_edit(&base, added, now, cals).unwrap();
    assert_eq!(s.overrides[2].start, now);
    let mut past = base.clone();
    past.overrides.push(ovr(3, now - 2 * HOUR, now - HOUR, E));
    let err = apply_edit(&base, past, now, cals).unwrap_err();
    assert_eq!(err.field, "overrides[2].end");
}

// spec: RSP-225 — a deleted layer stops at the edit; edits to other fields keep no history
#[test]
fn deleted_layer_contributes_nothing_from_the_edit() {
    let base = sch7();
    let mut edited = base.clone();
    edited.overrides.clear();
    let e = at(SHANGHAI, "2025-01-06 12:00"); // before both overrides
    edited.layers.remove(1);
    let s = apply_edit(&base, edited, e, Calendars::default()).unwrap();
    assert_eq!(who(&s, e - MIN), [A, X]);
    assert_eq!(who(&s, e), [A]);

    let mut renamed = s.clone();
    renamed.schedule_name = "Renamed".into();
    let again = apply_edit(&s, renamed, e + HOUR, Calendars::default()).unwrap();
    assert_eq!(again.history.len(), s.history.len());
    assert_eq!(again.layers[0].version_from, s.layers[0].version_from);
}

// spec: RSP-225 — changing the zone re-reads wall clocks from the edit on only
#[test]
fn zone_change_is_versioned_too() {
    let mut l = layer(
        1,
        &[&[A]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-01-01 00:00"),
    );
    l.restrict_mode = RestrictMode::Daily;
    l.restrict_periods = vec![daily("09:00", "17:00")];
    let base = sched(UTC, vec![l]);
    let mut edited = base.clone();
    edited.time_zone = SHANGHAI.into();
    let e = at(UTC, "2025-01-10 00:00");
    let s = apply_edit(&base, edited, e, Calendars::default()).unwrap();
    assert_eq!(s.history[0].time_zone, UTC);
    // Before the edit 09:00-17:00 is read in UTC, afterwards in Shanghai (UTC+8).
    assert_eq!(who(&s, z("2025-01-05T10:00Z")), [A]);
    assert!(who(&s, z("2025-01-05T02:00Z")).is_empty());
    assert!(who(&s, z("2025-01-11T10:00Z")).is_empty());
    assert_eq!(who(&s, z("2025-01-11T02:00Z")), [A]);
}

// spec: RSP-226
#[test]
fn deleted_member_leaves_groups_and_the_empty_group_keeps_its_turn() {
    let base = sched(
        UTC,
        vec![layer(
            1,
            &[&[A], &[B], &[C]],
            RotationUnit::Day,
            1,
            at(UTC, "2025-01-06 00:00"),
        )],
    );
    let e = at(UTC, "2025-01-07 12:00");
    let s = remove_member(&base, B, e);
    check(
        &s,
        UTC,
        &[
            ("2025-01-07 10:00", &[B]), // the past keeps B
            ("2025-01-07 13:00", &[]),  // B's turn is now an empty shift
            ("2025-01-08 00:00", &[C]),
            ("2025-01-09 00:00", &[A]),
            ("2025-01-10 00:00", &[]),
        ],
    );
    // The per-layer view still shows the empty group's turn.
    let v = view(
        &s,
        Calendars::default(),
        at(UTC, "2025-01-10 00:00"),
        at(UTC, "2025-01-11 00:00"),
        0,
    )
    .unwrap();
    assert_eq!(v.layers[0].segments.len(), 1);
    assert!(v.layers[0].segments[0].members.is_empty());
    assert!(v.final_segments.is_empty());
}

// spec: RSP-227
#[test]
fn views_for_a_window() {
    let s = sch2();
    let from = at(SHANGHAI, "2025-03-01 00:00");
    let now = at(SHANGHAI, "2025-03-02 08:00");
    let v = view(&s, Calendars::default(), from, from + 4 * DAY, now).unwrap();
    assert_eq!(v.layers[0].segments.len(), 4);
    assert_eq!(v.final_segments.len(), 4);
    let cur = v.cur_oncall.unwrap();
    assert_eq!((cur.start, cur.persons()), (from + DAY, vec![B]));
    let next = v.next_oncall.unwrap();
    assert_eq!((next.start, next.persons()), (from + 2 * DAY, vec![A]));

    // Adjacent segments with the same persons merge; the layer view keeps the cycles.
    let solo = sched(
        UTC,
        vec![layer(
            1,
            &[&[A]],
            RotationUnit::Day,
            1,
            at(UTC, "2025-03-01 00:00"),
        )],
    );
    let v = view(
        &solo,
        Calendars::default(),
        at(UTC, "2025-03-01 00:00"),
        at(UTC, "2025-03-04 00:00"),
        at(UTC, "2025-03-01 00:00"),
    )
    .unwrap();
    assert_eq!(v.layers[0].segments.len(), 3);
    assert_eq!(v.final_segments.len(), 1);
    assert_eq!(v.next_oncall, None);

    // The window must be under 45 days.
    assert!(view(&s, Calendars::default(), from, from + 45 * DAY, now).is_err());
    assert!(view(&s, Calendars::default(), from, from + 45 * DAY - 1, now).is_ok());
    assert_eq!(
        view(&s, Calendars::default(), from, from, now)
            .unwrap_err()
            .field,
        "end"
    );
}

// spec: RSP-227 — the preview of an override shows layers untouched and the final list
// replaced
#[test]
fn per_layer_segments_ignore_overrides() {
    let s = sch7();
    let from = at(SHANGHAI, "2025-01-08 00:00");
    let v = view(&s, Calendars::default(), from, from + DAY, from).unwrap();
    assert_eq!(v.layers.len(), 2);
    assert_eq!(v.layers[0].segments.len(), 1);
    let persons: Vec<Vec<PersonId>> = v.final_segments.iter().map(|f| f.persons()).collect();
    assert_eq!(persons, [vec![C], vec![C, D], vec![C]]);
    assert_eq!(v.final_segments[1].members[0].roles, [ShiftRole::Any]);
}

// spec: RSP-228
#[test]
fn validation_names_the_bad_field() {
    let cals = Calendars::default();
    let ok = sch3();
    validate_schedule(&ok, cals).unwrap();
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "schedule_name",
            Box::new(|s| s.schedule_name = "   ".into()),
        ),
        (
            "schedule_name",
            Box::new(|s| s.schedule_name = "x".repeat(41)),
        ),
        ("description", Box::new(|s| s.description = "x".repeat(501))),
        ("time_zone", Box::new(|s| s.time_zone = "+08:00".into())),
        (
            "layers",
            Box::new(|s| {
                s.layers = (1..=21)
                    .map(|i| layer(i, &[&[A]], RotationUnit::Day, 1, 1))
                    .collect()
            }),
        ),
        ("layers[1].layer_id", Box::new(|s| s.layers[1].layer_id = 1)),
        (
            "layers[0].layer_name",
            Box::new(|s| s.layers[0].layer_name = String::new()),
        ),
        (
            "layers[0].rotation_value",
            Box::new(|s| s.layers[0].rotation_value = 31),
        ),
        (
            "layers[0].rotation_value",
            Box::new(|s| s.layers[0].rotation_value = 0),
        ),
        (
            "layers[0].handoff",
            Box::new(|s| s.layers[0].rotation_unit = RotationUnit::Day),
        ),
        (
            "layers[0].handoff.time",
            Box::new(|s| s.layers[0].handoff.as_mut().unwrap().time = "9:00".into()),
        ),
        (
            "layers[0].handoff.weekday",
            Box::new(|s| s.layers[0].handoff.as_mut().unwrap().weekday = 7),
        ),
        (
            "layers[0].restrict_periods",
            Box::new(|s| s.layers[0].restrict_periods.clear()),
        ),
        (
            "layers[0].restrict_periods",
            Box::new(|s| s.layers[0].restrict_periods = vec![daily("09:00", "18:00"); 11]),
        ),
        (
            "layers[0].restrict_periods[0].end",
            Box::new(|s| s.layers[0].restrict_periods[0].end = "24:00".into()),
        ),
        (
            "layers[0].restrict_periods[0].start_weekday",
            Box::new(|s| s.layers[0].restrict_periods[0].start_weekday = Some(1)),
        ),
        (
            "layers[2].restrict_periods[0].end_weekday",
            Box::new(|s| s.layers[2].restrict_periods[0].end_weekday = None),
        ),
        (
            "layers[0].restrict_mode",
            Box::new(|s| s.layers[0].restrict_mode = RestrictMode::Weekly),
        ),
        (
            "layers[2].mask_continuous_enabled",
            Box::new(|s| s.layers[2].mask_continuous_enabled = true),
        ),
        (
            "layers[0].day_mask",
            Box::new(|s| s.layers[0].day_mask = Some(vec![])),
        ),
        (
            "layers[0].day_mask[1]",
            Box::new(|s| s.layers[0].day_mask = Some(vec![1, 9])),
        ),
        (
            "layers[0].layer_end",
            Box::new(|s| s.layers[0].layer_end = Some(s.layers[0].layer_start)),
        ),
        (
            "layers[0].layer_start",
            Box::new(|s| s.layers[0].layer_start = 0),
        ),
        ("layers[0].groups", Box::new(|s| s.layers[0].groups.clear())),
        (
            "layers[0].groups",
            Box::new(|s| s.layers[0].groups = groups(&[&[A] as &[PersonId]; 51])),
        ),
        (
            "layers[0].groups[1].members",
            Box::new(|s| s.layers[0].groups[1].members.clear()),
        ),
        (
            "layers[0].groups[0].members",
            Box::new(|s| {
                s.layers[0].groups[0].members = (1..=21)
                    .map(|p| GroupMember {
                        person_id: p,
                        role_id: 0,
                    })
                    .collect()
            }),
        ),
        (
            "layers[0].groups[0].members[1].person_id",
            Box::new(|s| {
                s.layers[0].groups[0].members = vec![
                    GroupMember {
                        person_id: A,
                        role_id: 1,
                    },
                    GroupMember {
                        person_id: A,
                        role_id: 2,
                    },
                ]
            }),
        ),
        (
            "layers[0].groups[0].group_name",
            Box::new(|s| s.layers[0].groups[0].group_name = "g".repeat(41)),
        ),
        (
            "overrides[0].end",
            Box::new(|s| s.overrides = vec![ovr(1, 10_000, 10_000, A)]),
        ),
        (
            "overrides[1].override_id",
            Box::new(|s| s.overrides = vec![ovr(1, 1, 2, A), ovr(1, 3, 4, A)]),
        ),
        (
            "overrides[0].note",
            Box::new(|s| {
                s.overrides = vec![ovr(1, 1, 2, A)];
                s.overrides[0].note = "n".repeat(201);
            }),
        ),
        (
            "notify.advance_in_time",
            Box::new(|s| s.notify.advance_in_time = 600 + 1),
        ),
        (
            "notify.advance_in_time",
            Box::new(|s| s.notify.advance_in_time = 86_400 + 300),
        ),
        (
            "notify.fixed_time.start",
            Box::new(|s| {
                s.notify.fixed_time = Some(FixedTime {
                    cycle: FixedTimeCycle::Day,
                    start: "8am".into(),
                })
            }),
        ),
        (
            "notify.by.personal_channels[1]",
            Box::new(|s| {
                s.notify.by = Some(ReminderBy {
                    follow_preference: false,
                    personal_channels: vec![DirectChannel::Sms, DirectChannel::Voice],
                })
            }),
        ),
    ];
    for (field, mutate) in cases {
        let mut s = ok.clone();
        mutate(&mut s);
        let err = validate_schedule(&s, cals).unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert_eq!(err.kind, ScheduleErrorKind::InvalidArgument);
        let api: crate::error::ApiError = err.into();
        assert_eq!(api.code, crate::error::ErrorCode::InvalidParameter);
    }
    // day × 7 may carry a handoff, and 0/300/86400 are valid advance times.
    let mut s = ok.clone();
    s.layers[0].rotation_unit = RotationUnit::Day;
    s.layers[0].rotation_value = 7;
    s.notify.advance_in_time = 86_400;
    validate_schedule(&s, cals).unwrap();
}

// spec: RSP-229
#[test]
fn my_schedules_now_and_within_the_look_ahead() {
    let now = at(UTC, "2025-01-06 12:00");
    let mut s1 = sched(
        UTC,
        vec![layer(
            1,
            &[&[A], &[B]],
            RotationUnit::Day,
            1,
            at(UTC, "2025-01-06 00:00"),
        )],
    );
    s1.schedule_id = 11;
    let mut s2 = sched(
        UTC,
        vec![layer(
            1,
            &[&[B], &[C], &[C], &[A]],
            RotationUnit::Day,
            1,
            at(UTC, "2025-01-06 00:00"),
        )],
    );
    s2.schedule_id = 12;
    let all = [s1, s2];
    let one_day = my_schedules(&all, Calendars::default(), A, now, LookAhead::OneDay).unwrap();
    assert_eq!(
        one_day,
        MySchedules {
            on_call_now: vec![11],
            on_call_within: vec![11]
        }
    );
    let default = my_schedules(&all, Calendars::default(), A, now, LookAhead::default()).unwrap();
    assert_eq!(default.on_call_within, [11, 12]);
    assert_eq!(LookAhead::OneMonth.millis(), 30 * DAY);
}

// spec: RSP-230 — persons on both sides and role-only changes get nothing; the window is
// the send instant, so a handoff that appears less than A ahead is never reminded
#[test]
fn advance_reminders_only_for_changed_persons() {
    let start = at(UTC, "2025-01-06 00:00");
    let member = |person_id, role_id| GroupMember { person_id, role_id };
    let mut l = layer(1, &[], RotationUnit::Day, 1, start);
    l.groups = vec![
        Group {
            group_name: String::new(),
            members: vec![member(A, 1), member(B, 2)],
        },
        Group {
            group_name: String::new(),
            members: vec![member(A, 2), member(B, 1)],
        },
        Group {
            group_name: String::new(),
            members: vec![member(A, 1), member(C, 2)],
        },
    ];
    let mut s = sched(UTC, vec![l]);
    s.notify.advance_in_time = 3600;
    let got = reminders(&s, Calendars::default(), start, start + 3 * DAY).unwrap();
    assert_eq!(
        got,
        [
            Reminder {
                send_at: start + 2 * DAY - HOUR,
                kind: ReminderKind::Advance {
                    handoff_at: start + 2 * DAY,
                    incoming: vec![C],
                    outgoing: vec![B]
                },
            },
            Reminder {
                send_at: start + 3 * DAY - HOUR,
                kind: ReminderKind::Advance {
                    handoff_at: start + 3 * DAY,
                    incoming: vec![B],
                    outgoing: vec![C]
                },
            },
        ]
    );
    // A run starting after a send instant does not find it again.
    assert!(
        reminders(
            &s,
            Calendars::default(),
            start + 2 * DAY - HOUR + 1,
            start + 2 * DAY
        )
        .unwrap()
        .is_empty()
    );
    // No advance reminders when the setting is off.
    s.notify.advance_in_time = 0;
    assert!(
        reminders(&s, Calendars::default(), start, start + 3 * DAY)
            .unwrap()
            .is_empty()
    );
}

// spec: RSP-232
#[test]
fn reminder_channels_follow_the_notify_setting() {
    let info = [
        DirectChannel::Voice,
        DirectChannel::Sms,
        DirectChannel::Email,
    ];
    assert_eq!(reminder_channels(None, &info), []);
    let fixed = ReminderBy {
        follow_preference: false,
        personal_channels: vec![DirectChannel::App, DirectChannel::SlackApp],
    };
    assert_eq!(
        reminder_channels(Some(&fixed), &info),
        [DirectChannel::App, DirectChannel::SlackApp]
    );
    let follow = ReminderBy {
        follow_preference: true,
        personal_channels: vec![],
    };
    assert_eq!(
        reminder_channels(Some(&follow), &info),
        [DirectChannel::Sms, DirectChannel::Email]
    );
}

// spec: RSP-234
#[test]
fn referenced_schedule_cannot_be_deleted() {
    assert!(check_schedule_deletable(&[]).is_ok());
    let err = check_schedule_deletable(&["Payments / Default".into()]).unwrap_err();
    assert_eq!(err.kind, ScheduleErrorKind::Referenced);
    assert!(err.message.contains("Payments / Default"));
    let api: crate::error::ApiError = err.into();
    assert_eq!(api.code, crate::error::ErrorCode::ReferenceExist);
}

// spec: RSP-235
#[test]
fn swaps_are_overrides() {
    // A plain swap between A and B: B over A's window, A over B's window.
    let mut s = sch2();
    let d1 = at(SHANGHAI, "2025-03-01 00:00");
    s.overrides = vec![ovr(1, d1, d1 + DAY, B), ovr(2, d1 + DAY, d1 + 2 * DAY, A)];
    assert_eq!(who(&s, d1 + HOUR), [B]);
    assert_eq!(who(&s, d1 + DAY + HOUR), [A]);

    // In a multi-person schedule everybody who stays needs an override too.
    let start = at(UTC, "2025-01-06 00:00");
    let mut team = sched(
        UTC,
        vec![
            layer(1, &[&[A, B]], RotationUnit::Day, 1, start),
            layer(2, &[&[X]], RotationUnit::Week, 1, start),
        ],
    );
    let drafts = swap_overrides(
        &team,
        Calendars::default(),
        start + HOUR,
        start + 3 * HOUR,
        A,
        C,
    )
    .unwrap();
    let persons: Vec<PersonId> = drafts.iter().map(|d| d.person_id).collect();
    assert_eq!(persons, [B, C, X]);
    assert!(
        drafts
            .iter()
            .all(|d| d.start == start + HOUR && d.end == start + 3 * HOUR)
    );
    team.overrides = drafts
        .iter()
        .zip(1..)
        .map(|(d, id)| ovr(id, d.start, d.end, d.person_id))
        .collect();
    assert_eq!(who(&team, start + 2 * HOUR), [B, C, X]);
    assert_eq!(who(&team, start + 4 * HOUR), [A, B, X]);
}

// --- Rules of §2.18 ------------------------------------------------------------------------

fn holiday_sets() -> Vec<HolidaySet> {
    let set = |id: &str, entries: &[(&str, HolidayMark)]| HolidaySet {
        id: id.into(),
        name: id.into(),
        entries: entries.iter().map(|(d, m)| (d.to_string(), *m)).collect(),
    };
    vec![
        set(
            "cn",
            &[
                ("2025-10-01", HolidayMark::Holiday),
                ("2025-09-28", HolidayMark::Workday),
                ("2025-10-02", HolidayMark::Workday),
            ],
        ),
        set(
            "other",
            &[
                ("2025-10-02", HolidayMark::Holiday),
                ("2025-10-03", HolidayMark::Holiday),
            ],
        ),
        set("unlinked", &[("2025-10-06", HolidayMark::Holiday)]),
    ]
}

// spec: RSP-270
#[test]
fn day_type_precedence() {
    let sets = holiday_sets();
    let mut cal = trading_calendar();
    cal.date_overrides = BTreeMap::from([("2025-10-01".to_string(), DayType::Workday)]);
    cal.extra_cal_ids = vec!["cn".into(), "other".into()];
    validate_calendar(&cal, &sets).unwrap();
    // 1. the manual mark beats the holiday set
    assert_eq!(day_type(&cal, &sets, date(2025, 10, 1)), DayType::Workday);
    // 2. an adjusted working Sunday; and restday wins when two sets disagree
    assert_eq!(day_type(&cal, &sets, date(2025, 9, 28)), DayType::Workday);
    assert_eq!(day_type(&cal, &sets, date(2025, 10, 2)), DayType::Restday);
    assert_eq!(day_type(&cal, &sets, date(2025, 10, 3)), DayType::Restday);
    // 3. weekdays; an unlinked set is not read
    assert_eq!(day_type(&cal, &sets, date(2025, 10, 6)), DayType::Workday);
    assert_eq!(day_type(&cal, &sets, date(2025, 10, 5)), DayType::Restday);
    // A new calendar treats every day as a workday.
    let fresh: ServiceCalendar = serde_json::from_value(serde_json::json!({
        "cal_id": "x", "cal_name": "x", "timezone": "UTC"
    }))
    .unwrap();
    assert_eq!(day_type(&fresh, &sets, date(2025, 10, 5)), DayType::Workday);
}

// spec: RSP-270, RSP-271 — the calendar CAL of ESC-5 (zone Asia/Shanghai, Mon–Fri, the
// October holiday 10-01…10-07 marked rest days, Saturday 10-11 an adjusted workday): the day
// types behind every row of its table.
#[test]
fn esc5_calendar_day_types() {
    let cal = trading_calendar();
    validate_calendar(&cal, &[]).unwrap();
    for (when, expected) in [
        ("2025-10-09 10:00", DayType::Workday), // Thursday
        ("2025-10-01 10:00", DayType::Restday), // a marked rest day (a Wednesday)
        ("2025-10-11 10:00", DayType::Workday), // the adjusted working Saturday
        ("2025-10-10 23:30", DayType::Workday), // Friday
        ("2025-10-11 02:00", DayType::Workday),
        ("2025-10-12 10:00", DayType::Restday), // Sunday
        ("2025-10-13 02:00", DayType::Workday), // Monday
    ] {
        assert_eq!(
            day_type_at(&cal, &[], at(SHANGHAI, when)).unwrap(),
            expected,
            "{when}"
        );
    }
}

// spec: RSP-223, RSP-273 — a deleted calendar is absent: a mask naming it is refused on save
// and, in data that still names it, turns the mask off
#[test]
fn deleted_calendar_is_absent() {
    let mut cal = trading_calendar();
    cal.status = CalendarStatus::Deleted;
    let cals = [cal];
    let calendars = Calendars::new(&cals, &[]);
    assert!(calendars.get(&trading_calendar().cal_id).is_none());
    let mut l = layer(
        1,
        &[&[A]],
        RotationUnit::Day,
        1,
        at(UTC, "2025-09-29 00:00"),
    );
    l.calendar_mask = cal_mask(DayType::Workday);
    let s = sched(UTC, vec![l]);
    let err = validate_schedule(&s, calendars).unwrap_err();
    assert_eq!(err.field, "layers[0].calendar_mask.cal_id");
    assert_eq!(who_in(&s, calendars, z("2025-10-01T04:00Z")), [A]);
}

// spec: RSP-271
#[test]
fn calendar_date_is_local_to_the_calendar_zone() {
    let cal = trading_calendar();
    assert_eq!(
        date_at(&cal, z("2025-09-30T16:00Z")).unwrap(),
        date(2025, 10, 1)
    );
    assert_eq!(
        date_at(&cal, z("2025-09-30T15:59Z")).unwrap(),
        date(2025, 9, 30)
    );
    assert_eq!(
        day_type_at(&cal, &[], z("2025-09-30T16:00Z")).unwrap(),
        DayType::Restday
    );
}

// spec: RSP-272 — edits apply to every later evaluation, schedule masks included
#[test]
fn calendar_edits_apply_immediately() {
    let mut cal = trading_calendar();
    let monday = date(2025, 10, 13);
    toggle_date(&mut cal, &[], monday);
    assert_eq!(day_type(&cal, &[], monday), DayType::Restday);
    assert_eq!(
        cal.date_overrides.get("2025-10-13"),
        Some(&DayType::Restday)
    );
    toggle_date(&mut cal, &[], monday);
    assert_eq!(day_type(&cal, &[], monday), DayType::Workday);
    assert_eq!(cal.date_overrides.get("2025-10-13"), None);
    // A holiday toggles to an adjusted workday.
    toggle_date(&mut cal, &[], date(2025, 10, 1));
    assert_eq!(day_type(&cal, &[], date(2025, 10, 1)), DayType::Workday);

    let mut l = layer(
        1,
        &[&[A]],
        RotationUnit::Day,
        1,
        at(SHANGHAI, "2025-10-13 00:00"),
    );
    l.calendar_mask = cal_mask(DayType::Workday);
    let s = sched(SHANGHAI, vec![l]);
    let sunday = at(SHANGHAI, "2025-10-19 12:00");
    let before = [cal.clone()];
    assert!(who_in(&s, Calendars::new(&before, &[]), sunday).is_empty());
    set_workdays(&mut cal, &[0, 1, 2, 3, 4, 5, 6]).unwrap();
    let after = [cal.clone()];
    assert_eq!(who_in(&s, Calendars::new(&after, &[]), sunday), [A]);
    assert_eq!(set_workdays(&mut cal, &[7]).unwrap_err().field, "workdays");
}

// spec: RSP-273
#[test]
fn referenced_calendar_cannot_be_deleted() {
    assert!(check_calendar_deletable(&[]).is_ok());
    let err =
        check_calendar_deletable(&["schedule Ops".into(), "silence rule 3".into()]).unwrap_err();
    assert_eq!(err.kind, ScheduleErrorKind::Referenced);
    assert!(err.message.contains("schedule Ops, silence rule 3"));
}

// spec: RSP-274
#[test]
fn calendar_edit_rights() {
    let mut cal = trading_calendar();
    cal.creator_id = 7;
    cal.team_id = 70;
    assert!(can_edit_calendar(&cal, 7, &[], false));
    assert!(can_edit_calendar(&cal, 8, &[70], false));
    assert!(can_edit_calendar(&cal, 8, &[], true));
    assert!(!can_edit_calendar(&cal, 8, &[71], false));
}

// --- Model ---------------------------------------------------------------------------------

#[test]
fn schedule_round_trips_as_json_with_spec_field_names() {
    let mut s = sch3();
    s.overrides = vec![ovr(9, 1, 2, A)];
    s.notify.webhooks = vec![ReminderChat {
        chat_type: ReminderChatType::Feishu,
        settings: serde_json::Map::from_iter([(
            "token_or_url".to_string(),
            serde_json::json!("t"),
        )]),
    }];
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["layers"][1]["restrict_mode"], "daily");
    assert_eq!(json["layers"][1]["mask_continuous_enabled"], true);
    assert_eq!(json["layers"][2]["restrict_periods"][0]["start_weekday"], 6);
    assert_eq!(json["layers"][0]["rotation_unit"], "week");
    assert_eq!(json["notify"]["webhooks"][0]["type"], "feishu");
    assert!(json.get("history").is_none());
    let back: Schedule = serde_json::from_value(json).unwrap();
    assert_eq!(back, s);
}

// spec: RSP-225 — a client cannot write the past on create either
#[test]
fn create_drops_client_history_and_stamps_versions() {
    let mut s = sch2();
    s.history.push(PastDefinition {
        until: at(SHANGHAI, "2025-03-05 00:00"),
        time_zone: UTC.into(),
        status: ScheduleStatus::Disabled,
        layers: vec![],
    });
    let created = at(SHANGHAI, "2025-02-01 00:00");
    let s = create_schedule(s, created, Calendars::default()).unwrap();
    assert!(s.history.is_empty());
    assert_eq!((s.created_at, s.layers[0].version_from), (created, created));
    assert_eq!(who(&s, at(SHANGHAI, "2025-03-01 08:00")), [A]);
}

#[test]
fn extreme_instants_are_errors_not_panics() {
    let s = sch3();
    let cals = Calendars::default();
    for t in [Millis::MIN, Millis::MAX, -1] {
        let _ = on_call_at(&s, cals, t);
    }
    assert!(timeline(&s, cals, Millis::MAX - DAY, Millis::MAX).is_err());
    assert!(timeline(&s, cals, 5, 4).is_err());
    let mut r = sch7();
    r.notify.fixed_time = Some(FixedTime {
        cycle: FixedTimeCycle::Day,
        start: "08:00".into(),
    });
    assert!(reminders(&r, cals, Millis::MAX - DAY, Millis::MAX).is_err());
    let mut huge = sch2();
    huge.layers[0].rotation_value = i64::MAX;
    assert!(on_call_at(&huge, cals, at(SHANGHAI, "2025-03-02 00:00")).is_err());
}

/// A tiny deterministic generator (no extra dev-dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
    fn hhmm(&mut self) -> String {
        format!(
            "{:02}:{:02}",
            self.next(24),
            self.next(4) * 15 + self.next(2)
        )
    }
}

// spec: RSP-214 … RSP-224, RSP-227 — for random layers in zones with DST, the final timeline
// agrees with point queries throughout (no change point is missed), including just before
// every shift ends.
#[test]
fn random_schedules_timeline_agrees_with_point_queries() {
    let mut rng = Lcg(7);
    let zones = [
        NEW_YORK,
        "Europe/London",
        "Australia/Lord_Howe",
        SHANGHAI,
        "Pacific/Apia",
    ];
    let units = [
        RotationUnit::Hour,
        RotationUnit::Day,
        RotationUnit::Week,
        RotationUnit::Month,
    ];
    for round in 0..24 {
        let zone_name = zones[rng.next(zones.len() as u64) as usize];
        let windows = [
            "2025-03-06 00:00",
            "2025-10-02 00:00",
            "2025-11-01 00:00",
            "2011-12-28 00:00",
        ];
        let window_start = at(zone_name, windows[rng.next(windows.len() as u64) as usize]);
        let mut layers = Vec::new();
        for id in 1..=1 + rng.next(3) as i64 {
            let unit = units[rng.next(4) as usize];
            let value = 1 + rng.next(if unit == RotationUnit::Hour { 13 } else { 2 }) as i64;
            let start =
                window_start - (rng.next(20) as i64) * DAY + (rng.next(96) as i64) * 15 * MIN;
            let people: Vec<Vec<PersonId>> = (0..1 + rng.next(3))
                .map(|g| vec![id * 10 + g as i64])
                .collect();
            let refs: Vec<&[PersonId]> = people.iter().map(Vec::as_slice).collect();
            let mut l = layer(id, &refs, unit, value, start);
            if unit == RotationUnit::Week && value == 1 && rng.next(2) == 0 {
                l.handoff = Some(Handoff {
                    weekday: rng.next(7) as i64,
                    time: rng.hhmm(),
                });
            }
            if rng.next(2) == 0 {
                l.day_mask = Some((0..7).filter(|_| rng.next(3) > 0).collect());
                if l.day_mask.as_ref().is_some_and(Vec::is_empty) {
                    l.day_mask = Some(vec![3]);
                }
                l.mask_continuous_enabled = rng.next(2) == 0;
            }
            match rng.next(3) {
                0 => {}
                1 => {
                    l.restrict_mode = RestrictMode::Daily;
                    l.restrict_periods = (0..1 + rng.next(2))
                        .map(|_| daily(&rng.hhmm(), &rng.hhmm()))
                        .collect();
                }
                _ if l.day_mask.is_none() => {
                    l.restrict_mode = RestrictMode::Weekly;
                    l.restrict_periods = vec![weekly(
                        rng.next(7) as i64,
                        &rng.hhmm(),
                        rng.next(7) as i64,
                        &rng.hhmm(),
                    )];
                }
                _ => {}
            }
            if rng.next(3) == 0 {
                l.layer_end = Some(window_start + (rng.next(72) as i64) * HOUR + 1);
            }
            layers.push(l);
        }
        let mut s = sched(zone_name, layers);
        if rng.next(2) == 0 {
            let o = window_start + (rng.next(48) as i64) * HOUR + 7 * MIN;
            s.overrides
                .push(ovr(1, o, o + (1 + rng.next(10) as i64) * HOUR, 99));
        }
        validate_schedule(&s, Calendars::default())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let to = window_start + 4 * DAY;
        assert_timeline_matches_point_queries(
            &s,
            Calendars::default(),
            window_start,
            to,
            13 * MIN + 17_000,
        );
        for sh in timeline(&s, Calendars::default(), window_start, to).unwrap() {
            let last = on_call_at(&s, Calendars::default(), sh.end - 1).unwrap();
            assert!(
                last.slots.iter().any(|slot| slot.source == sh.source
                    && slot.role == sh.role
                    && sh.members.contains(&slot.person_id)),
                "round {round}: shift {sh:?} is not on call just before its end"
            );
        }
    }
}
