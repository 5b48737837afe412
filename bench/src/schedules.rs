//! Schedule resolver benchmark (targets from the schedules work: on-call at an instant for a
//! schedule with 3 layers, 20 members and 50 overrides under 20 µs; a one-year timeline of
//! that schedule under 10 ms; 1,000 schedules resolved at one instant under 20 ms).
//!
//! Pure CPU: the resolver in `klaxon-core` is called directly, with no store, exactly as the
//! escalation engine and the Open API call it. The schedules are realistic rather than
//! trivial: three layers (a weekly primary rotation with a Monday handoff in New York, a daily
//! backup rotation with a weekday mask, and a weekend layer restricted to Saturday and Sunday),
//! twenty members, and fifty overrides spread over the year.
//!
//! `klaxon-schedbench [--point-queries 200000] [--timelines 50] [--schedules 1000]
//! [--rounds 20] [--json]` — run with `--release`.

#[allow(dead_code)] // the load generator uses the rest of it
#[path = "hist.rs"]
mod hist;

use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use klaxon_core::schedule::{
    self, Calendars, Group, GroupMember, Handoff, Layer, Override, RestrictMode, RestrictPeriod,
    RotationUnit, Schedule,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
struct Args {
    /// Point queries ("who is on call at t?") on the 3-layer schedule, at random instants.
    #[arg(long, default_value_t = 200_000)]
    point_queries: usize,
    /// One-year timelines of the 3-layer schedule.
    #[arg(long, default_value_t = 50)]
    timelines: usize,
    /// Schedules resolved at one instant, per round.
    #[arg(long, default_value_t = 1_000)]
    schedules: usize,
    /// Rounds of the many-schedules measurement.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Mon 2025-01-06 10:00 in New York.
const START: i64 = 1_736_175_600_000;

fn member(person_id: i64) -> GroupMember {
    GroupMember {
        person_id,
        role_id: 0,
    }
}

fn group(persons: &[i64]) -> Group {
    Group {
        group_name: String::new(),
        members: persons.iter().copied().map(member).collect(),
    }
}

/// The benchmark's schedule: 3 layers, 20 members (ids offset by `base`), 50 overrides.
fn schedule(id: i64, base: i64, rng: &mut SmallRng) -> Schedule {
    let p = |i: i64| base + i;
    let primary = Layer {
        layer_id: 1,
        layer_name: "Primary".into(),
        groups: (1..=10).map(|i| group(&[p(i)])).collect(),
        layer_start: START,
        rotation_unit: RotationUnit::Week,
        rotation_value: 1,
        handoff: Some(Handoff {
            weekday: 1,
            time: "10:00".into(),
        }),
        ..Layer::default()
    };
    let backup = Layer {
        layer_id: 2,
        layer_name: "Backup".into(),
        groups: (11..=16).map(|i| group(&[p(i)])).collect(),
        layer_start: START,
        rotation_unit: RotationUnit::Day,
        rotation_value: 1,
        day_mask: Some(vec![1, 2, 3, 4, 5]),
        ..Layer::default()
    };
    let weekend = Layer {
        layer_id: 3,
        layer_name: "Weekend".into(),
        groups: vec![group(&[p(17), p(18)]), group(&[p(19), p(20)])],
        layer_start: START,
        rotation_unit: RotationUnit::Week,
        rotation_value: 1,
        restrict_mode: RestrictMode::Weekly,
        restrict_periods: vec![RestrictPeriod {
            start_weekday: Some(6),
            start: "09:00".into(),
            end_weekday: Some(0),
            end: "21:00".into(),
        }],
        ..Layer::default()
    };
    let overrides = (0..50)
        .map(|i| {
            let start = START + rng.random_range(0..365 * 24) * HOUR;
            Override {
                override_id: i + 1,
                start,
                end: start + rng.random_range(1..48) * HOUR,
                person_id: p(rng.random_range(1..=20)),
                ..Override::default()
            }
        })
        .collect();
    Schedule {
        schedule_id: id,
        schedule_name: format!("Ops {id}"),
        time_zone: "America/New_York".into(),
        layers: vec![primary, backup, weekend],
        overrides,
        ..Schedule::default()
    }
}

fn micros(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

fn millis(ns: u64) -> f64 {
    ns as f64 / 1_000_000.0
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut rng = SmallRng::seed_from_u64(7);
    let cals = Calendars::default();
    let one = schedule(1, 0, &mut rng);
    schedule::validate_schedule(&one, cals)?;

    // 1. Point queries, each timed on its own (nanoseconds).
    let mut point = hist::Histogram::default();
    let mut on_call_total = 0usize;
    for _ in 0..args.point_queries {
        let t = START + rng.random_range(0..365 * DAY);
        let began = Instant::now();
        let who = schedule::on_call_at(black_box(&one), cals, t)?;
        point.record(began.elapsed().as_nanos() as u64);
        on_call_total += who.slots.len();
    }

    // 2. One-year timelines.
    let mut year = hist::Histogram::default();
    let mut shifts = 0usize;
    for _ in 0..args.timelines {
        let began = Instant::now();
        let tl = schedule::timeline(black_box(&one), cals, START, START + 365 * DAY)?;
        year.record(began.elapsed().as_nanos() as u64);
        shifts = tl.len();
    }

    // 3. Many schedules at one instant (what an escalation storm across teams does).
    let many: Vec<Schedule> = (0..args.schedules as i64)
        .map(|i| schedule(i + 1, i * 100, &mut rng))
        .collect();
    let mut fleet = hist::Histogram::default();
    for round in 0..args.rounds {
        let t = START + (round as i64 + 1) * 13 * DAY + 7 * HOUR;
        let began = Instant::now();
        let mut reached = 0usize;
        for s in &many {
            reached += schedule::on_call_at(black_box(s), cals, t)?.slots.len();
        }
        fleet.record(began.elapsed().as_nanos() as u64);
        black_box(reached);
    }

    let p = |h: &hist::Histogram, q: f64| h.percentile(q).unwrap_or(0);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "point_query_us": {"p50": micros(p(&point, 50.0)), "p99": micros(p(&point, 99.0)),
                    "max": micros(point.max().unwrap_or(0)), "count": point.count()},
                "year_timeline_ms": {"p50": millis(p(&year, 50.0)), "max": millis(year.max().unwrap_or(0)),
                    "shifts": shifts, "count": year.count()},
                "fleet_ms": {"schedules": args.schedules, "p50": millis(p(&fleet, 50.0)),
                    "max": millis(fleet.max().unwrap_or(0)), "rounds": fleet.count()},
                "mean_on_call": on_call_total as f64 / args.point_queries.max(1) as f64,
            })
        );
    } else {
        println!("schedule: 3 layers, 20 members, 50 overrides, America/New_York");
        println!(
            "on call at an instant   : p50 {:.2} µs  p99 {:.2} µs  max {:.1} µs  ({} queries, {:.2} on call on average)  target < 20 µs",
            micros(p(&point, 50.0)),
            micros(p(&point, 99.0)),
            micros(point.max().unwrap_or(0)),
            point.count(),
            on_call_total as f64 / args.point_queries.max(1) as f64,
        );
        println!(
            "one-year timeline       : p50 {:.2} ms  max {:.2} ms  ({} shifts, {} runs)  target < 10 ms",
            millis(p(&year, 50.0)),
            millis(year.max().unwrap_or(0)),
            shifts,
            year.count(),
        );
        println!(
            "{:>5} schedules at t : p50 {:.2} ms  max {:.2} ms  ({} rounds)  target < 20 ms",
            args.schedules,
            millis(p(&fleet, 50.0)),
            millis(fleet.max().unwrap_or(0)),
            fleet.count(),
        );
    }
    Ok(())
}
