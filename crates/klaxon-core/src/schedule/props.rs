//! Property tests for the resolver: random schedules, random instants.
//!
//! The worked examples in `tests.rs` pin down what the spec says for chosen cases; these
//! check the invariants that must hold for *every* schedule:
//! - the timeline for a range and the point query agree at every instant (RSP-210, RSP-227);
//! - an override always wins over every layer (RSP-210 step 2);
//! - no shift starts at or after its end;
//! - across DST changes, in zones with one-hour and thirty-minute shifts, cycle boundaries sit
//!   exactly where RSP-214/RSP-215/RSP-216 put them, computed here independently with jiff's
//!   "compatible" disambiguation (a gap moves forward by its length, a fold takes the earlier
//!   instant), so a rotation has no gap and no overlap other than those the spec decides.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::model::Millis;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;

/// Zones with whole-hour DST (New York, London), a thirty-minute DST shift (Lord Howe), a
/// half-hour offset with DST (Adelaide), a half-hour offset without DST (Kolkata) and none.
const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Adelaide",
    "Asia/Kolkata",
];

/// 2025-01-01T00:00Z; random instants are drawn from the two years after it.
const BASE: Millis = 1_735_689_600_000;

fn zone_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(ZONES)
}

fn unit() -> impl Strategy<Value = RotationUnit> {
    prop::sample::select(vec![
        RotationUnit::Hour,
        RotationUnit::Day,
        RotationUnit::Week,
        RotationUnit::Month,
    ])
}

/// `HH:MM` on a quarter-hour grid, so restriction edges meet DST gaps and folds often.
fn hhmm() -> impl Strategy<Value = String> {
    (0i64..24, prop::sample::select(vec![0i64, 15, 30, 45]))
        .prop_map(|(h, m)| format!("{h:02}:{m:02}"))
}

fn restrictions() -> impl Strategy<Value = (RestrictMode, Vec<RestrictPeriod>)> {
    prop_oneof![
        3 => Just((RestrictMode::None, Vec::new())),
        1 => prop::collection::vec((hhmm(), hhmm()), 1..3).prop_map(|ps| {
            let periods = ps
                .into_iter()
                .map(|(start, end)| RestrictPeriod { start_weekday: None, start, end_weekday: None, end })
                .collect();
            (RestrictMode::Daily, periods)
        }),
        1 => prop::collection::vec((0i64..7, hhmm(), 0i64..7, hhmm()), 1..3).prop_map(|ps| {
            let periods = ps
                .into_iter()
                .map(|(sw, start, ew, end)| RestrictPeriod {
                    start_weekday: Some(sw),
                    start,
                    end_weekday: Some(ew),
                    end,
                })
                .collect();
            (RestrictMode::Weekly, periods)
        }),
    ]
}

fn groups() -> impl Strategy<Value = Vec<Group>> {
    prop::collection::vec(prop::collection::btree_set(1i64..9, 1..3), 1..5).prop_map(|gs| {
        gs.into_iter()
            .map(|members| Group {
                group_name: String::new(),
                members: members
                    .into_iter()
                    .map(|person_id| GroupMember {
                        person_id,
                        role_id: 0,
                    })
                    .collect(),
            })
            .collect()
    })
}

prop_compose! {
    fn layer(id: i64)(
        groups in groups(),
        start_minutes in 0i64..(2 * 365 * 24 * 60),
        unit in unit(),
        value in 1i64..5,
        end_after_days in prop::option::of(1i64..120),
        mask in prop::option::of(prop::collection::btree_set(0i64..7, 1..7)),
        continuous in any::<bool>(),
        (restrict_mode, restrict_periods) in restrictions(),
    ) -> Layer {
        let layer_start = BASE + start_minutes * 60_000;
        Layer {
            layer_id: id,
            layer_name: format!("L{id}"),
            groups,
            layer_start,
            layer_end: end_after_days.map(|d| layer_start + d * DAY),
            rotation_unit: unit,
            rotation_value: value,
            day_mask: mask.map(|m| m.into_iter().collect()),
            mask_continuous_enabled: continuous,
            restrict_mode,
            restrict_periods,
            ..Layer::default()
        }
    }
}

prop_compose! {
    fn overrides(window_from: Millis)(
        raw in prop::collection::vec((0i64..(20 * 24 * 4), 1i64..(3 * 24 * 4), 1i64..9), 0..5),
    ) -> Vec<Override> {
        raw.into_iter()
            .enumerate()
            .map(|(i, (start_q, len_q, person_id))| {
                // Quarter hours from the window's start, so overrides overlap each other and
                // the window's edges.
                let start = window_from - DAY + start_q * 15 * 60_000;
                Override {
                    override_id: i as i64 + 1,
                    start,
                    end: start + len_q * 15 * 60_000,
                    person_id,
                    ..Override::default()
                }
            })
            .collect()
    }
}

/// A random valid schedule and a window of up to 20 days around its layers.
fn schedule_and_window() -> impl Strategy<Value = (Schedule, Millis, Millis)> {
    (
        zone_name(),
        prop::collection::vec(0i64..3, 1..4),
        0i64..40,
        1i64..(20 * 24),
    )
        .prop_flat_map(|(zone, layer_ids, from_days, len_hours)| {
            let layers: Vec<_> = layer_ids
                .iter()
                .enumerate()
                .map(|(i, _)| layer(i as i64 + 1))
                .collect();
            (Just(zone), layers, Just((from_days, len_hours)))
        })
        .prop_flat_map(|(zone, layers, (from_days, len_hours))| {
            // The window starts near the first layer's start so that shifts exist in it.
            let from = layers[0].layer_start - 5 * DAY + from_days * DAY / 2;
            let to = from + len_hours * HOUR;
            let schedule = Schedule {
                schedule_id: 1,
                schedule_name: "Props".into(),
                time_zone: zone.into(),
                layers,
                ..Schedule::default()
            };
            (Just(schedule), overrides(from), Just((from, to)))
        })
        .prop_map(|(mut schedule, overrides, (from, to))| {
            schedule.overrides = overrides;
            (schedule, from, to)
        })
        .prop_filter("the schedule must be valid", |(s, _, _)| {
            validate_schedule(s, Calendars::default()).is_ok()
        })
}

fn who(s: &Schedule, t: Millis) -> Vec<PersonId> {
    let mut p = on_call_at(s, Calendars::default(), t).unwrap().persons();
    p.sort_unstable();
    p
}

fn from_shifts(shifts: &[Shift], t: Millis) -> Vec<PersonId> {
    let mut p: Vec<PersonId> = shifts
        .iter()
        .filter(|sh| sh.start <= t && t < sh.end)
        .flat_map(|sh| sh.members.iter().copied())
        .collect();
    p.sort_unstable();
    p.dedup();
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    // spec: RSP-210, RSP-227 — the final timeline and the point query give one answer, at
    // every shift edge, just before it, and anywhere in between; no shift is empty or reversed.
    #[test]
    fn timeline_agrees_with_point_queries(
        (s, from, to) in schedule_and_window(),
        probes in prop::collection::vec(0.0f64..1.0, 24),
    ) {
        let shifts = timeline(&s, Calendars::default(), from, to).unwrap();
        for sh in &shifts {
            prop_assert!(sh.start < sh.end, "shift {sh:?} does not start before it ends");
            prop_assert!(from <= sh.start && sh.end <= to, "shift {sh:?} outside the window");
        }
        let mut instants: Vec<Millis> = shifts
            .iter()
            .flat_map(|sh| [sh.start, sh.start - 1, sh.end - 1, sh.end])
            .filter(|&t| from <= t && t < to)
            .collect();
        instants.extend(probes.iter().map(|p| from + ((to - from) as f64 * p) as Millis));
        for t in instants {
            prop_assert_eq!(from_shifts(&shifts, t), who(&s, t), "at {}", t);
        }
    }

    // spec: RSP-210 — while any override is active, exactly the override persons are on call,
    // whatever the layers say.
    #[test]
    fn an_override_always_wins(
        (s, _from, _to) in schedule_and_window(),
        probes in prop::collection::vec(0.0f64..1.0, 8),
    ) {
        for o in &s.overrides {
            for p in &probes {
                let t = o.start + ((o.end - o.start) as f64 * p) as Millis;
                let mut expected: Vec<PersonId> = s
                    .overrides
                    .iter()
                    .filter(|x| x.start <= t && t < x.end)
                    .map(|x| x.person_id)
                    .collect();
                expected.sort_unstable();
                expected.dedup();
                prop_assert_eq!(who(&s, t), expected, "at {}", t);
            }
        }
    }
}

/// The 2025 DST changes of the zones that have them, as UTC instants.
fn transitions(zone: &str) -> Vec<Millis> {
    let tz = TimeZone::get(zone).unwrap();
    let mut out = Vec::new();
    let mut t = Timestamp::from_millisecond(BASE).unwrap();
    let end = Timestamp::from_millisecond(BASE + 365 * DAY).unwrap();
    while let Some(next) = tz.following(t).next() {
        if next.timestamp() > end {
            break;
        }
        out.push(next.timestamp().as_millisecond());
        t = next.timestamp();
    }
    out
}

/// b_k of RSP-214…216, computed independently: the local date-time of V moved by k cycles on
/// the civil calendar (months clamped from V's day each time) and converted with jiff's
/// "compatible" rule, which is RSP-215; hour cycles are plain elapsed time.
fn expected_boundary(tz: &TimeZone, v: Millis, unit: RotationUnit, value: i64, k: i64) -> Millis {
    if unit == RotationUnit::Hour {
        return v + k * value * HOUR;
    }
    let v_local: DateTime = tz.to_datetime(Timestamp::from_millisecond(v).unwrap());
    let span = match unit {
        RotationUnit::Day => Span::new().days(k * value),
        RotationUnit::Week => Span::new().weeks(k * value),
        RotationUnit::Month => Span::new().months(k * value),
        RotationUnit::Hour => unreachable!(),
    };
    let local = v_local.checked_add(span).unwrap();
    compatible(tz, local)
}

/// jiff's "compatible" disambiguation: a gap moves forward by its length, a fold takes the
/// earlier instant — RSP-215 word for word.
fn compatible(tz: &TimeZone, local: DateTime) -> Millis {
    tz.to_ambiguous_timestamp(local)
        .compatible()
        .unwrap()
        .as_millisecond()
}

const DST_ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Australia/Adelaide",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // spec: RSP-214, RSP-215, RSP-216 — a rotation that spans a DST change in a zone with a
    // one-hour or a thirty-minute shift hands over exactly at b_k: shifts are back to back (no
    // gap, no overlap), day/week/month cycles keep their wall-clock time (23/25-hour or
    // 23.5/24.5-hour days where the clock moves), hour cycles keep their length.
    #[test]
    fn rotations_across_dst_have_no_gap_or_overlap(
        zone in prop::sample::select(DST_ZONES),
        which in 0usize..2,
        days_before in 0i64..10,
        minute_of_day in 0i64..(24 * 60),
        unit in unit(),
        value in 1i64..4,
    ) {
        let tz = TimeZone::get(zone).unwrap();
        let change = transitions(zone)[which];
        // V: a local time of day on a date shortly before the change (often 01:00-03:00, the
        // hours DST moves), converted like any user input.
        let change_local = tz.to_datetime(Timestamp::from_millisecond(change).unwrap());
        let date = change_local.date().checked_sub(Span::new().days(days_before)).unwrap();
        let tod = jiff::civil::Time::new(
            (minute_of_day / 60) as i8, (minute_of_day % 60) as i8, 0, 0,
        ).unwrap();
        let v = compatible(&tz, date.to_datetime(tod));
        let cycles: i64 = match unit {
            RotationUnit::Hour => 24 * 12 / value + 2,
            RotationUnit::Day => 14,
            RotationUnit::Week => 4,
            RotationUnit::Month => 3,
        };
        let persons: [PersonId; 3] = [1, 2, 3];
        let s = Schedule {
            schedule_id: 1,
            schedule_name: "DST".into(),
            time_zone: zone.into(),
            layers: vec![Layer {
                layer_id: 1,
                layer_name: "L1".into(),
                groups: persons
                    .iter()
                    .map(|&person_id| Group {
                        group_name: String::new(),
                        members: vec![GroupMember { person_id, role_id: 0 }],
                    })
                    .collect(),
                layer_start: v,
                rotation_unit: unit,
                rotation_value: value,
                ..Layer::default()
            }],
            ..Schedule::default()
        };
        validate_schedule(&s, Calendars::default()).unwrap();
        let bounds: Vec<Millis> = (0..=cycles)
            .map(|k| expected_boundary(&tz, v, unit, value, k))
            .collect();
        let shifts = timeline(&s, Calendars::default(), bounds[0], bounds[cycles as usize]).unwrap();
        prop_assert_eq!(shifts.len(), cycles as usize);
        for (k, sh) in shifts.iter().enumerate() {
            prop_assert_eq!(sh.start, bounds[k], "start of cycle {}", k);
            prop_assert_eq!(sh.end, bounds[k + 1], "end of cycle {}", k);
            prop_assert_eq!(&sh.members, &vec![persons[k % 3]], "cycle {}", k);
            prop_assert_eq!(who(&s, sh.start), vec![persons[k % 3]]);
            prop_assert_eq!(who(&s, sh.end - 1), vec![persons[k % 3]]);
        }
    }
}

#[test]
fn the_dst_zones_really_change_in_2025() {
    // The DST property is only meaningful if each zone has two changes in the year; Lord Howe
    // moves by thirty minutes.
    for zone in DST_ZONES {
        assert_eq!(transitions(zone).len(), 2, "{zone}");
    }
    let tz = TimeZone::get("Australia/Lord_Howe").unwrap();
    let [a, b] = transitions("Australia/Lord_Howe")[..] else {
        unreachable!()
    };
    let offset = |t: Millis| {
        tz.to_offset(Timestamp::from_millisecond(t).unwrap())
            .seconds()
    };
    assert_eq!((offset(a) - offset(a - 1)).abs(), 1800);
    assert_eq!((offset(b) - offset(b - 1)).abs(), 1800);
}
