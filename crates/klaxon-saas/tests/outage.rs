//! §17 seventy-two consecutive hours of unavailability.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, tz};
use jiff::SignedDuration;
use klaxon_saas::params::Params;
use klaxon_saas::sla::{CycleStats, ExclusionCategory};
use klaxon_saas::unavailability::{
    Detector, OutageEvent, Usability, classify, may_terminate_for_outage, termination_right_until,
};
use rust_decimal::{Decimal, dec};

fn stats(error_rate: Decimal, had_traffic: bool, excluded: bool) -> CycleStats {
    CycleStats {
        start: at(2025, 8, 1, 2, 0),
        valid_requests: dec!(10),
        failed_requests: dec!(5),
        valid_incidents: 0,
        failed_incidents: 0,
        error_rate,
        delay_rate: dec!(0),
        excluded: excluded.then_some(ExclusionCategory::ForceMajeure),
        over_threshold: true,
        failed: !excluded,
        had_traffic,
    }
}

#[test]
fn unusable_cycles() {
    // spec: SVC-260
    let p = Params::cloud_defaults();
    assert_eq!(
        classify(&stats(dec!(0.5), true, false), 0, &p),
        Usability::Unusable
    );
    assert_eq!(
        classify(&stats(dec!(0.49), true, false), 5, &p),
        Usability::Usable
    );
    assert_eq!(
        classify(&stats(dec!(0.9), true, true), 5, &p),
        Usability::Excluded
    );
    // Idle tenant: the regional probe decides (≥ 3 of 5 runs failed).
    assert_eq!(
        classify(&stats(dec!(0), false, false), 3, &p),
        Usability::Unusable
    );
    assert_eq!(
        classify(&stats(dec!(0), false, false), 2, &p),
        Usability::Usable
    );
}

#[test]
fn seventy_two_hours_example() {
    // spec: SVC-261 (864 consecutive unusable cycles; record at the end of the 864th)
    // spec: SVC-262 (record: first cycle, detection, end)
    // spec: SVC-263 (unusable from 08-01 02:00, usable from 08-04 03:10 → right until 09-03 24:00)
    let p = Params::cloud_defaults();
    let tz = tz();
    let mut d = Detector::default();
    let five = SignedDuration::from_mins(5);
    let mut t = at(2025, 8, 1, 2, 0);
    let mut detected = None;
    let mut ended = None;
    while t < at(2025, 8, 4, 3, 15) {
        let u = if t < at(2025, 8, 4, 3, 10) {
            Usability::Unusable
        } else {
            Usability::Usable
        };
        match d.observe(t, u, &p).unwrap() {
            Some(OutageEvent::Detected(o)) => detected = Some(o),
            Some(OutageEvent::Ended(o)) => ended = Some(o),
            None => {}
        }
        t = t.checked_add(five).unwrap();
    }
    let det = detected.unwrap();
    assert_eq!(det.first_cycle_start, at(2025, 8, 1, 2, 0));
    assert_eq!(det.detected_at, at(2025, 8, 4, 2, 0));
    let o = ended.unwrap();
    assert_eq!(o.ended_at, Some(at(2025, 8, 4, 3, 10)));
    assert_eq!(
        termination_right_until(&o, &p, &tz).unwrap(),
        Some(at(2025, 9, 4, 0, 0))
    );
    assert!(!may_terminate_for_outage(&o, at(2025, 8, 4, 1, 0), &p, &tz).unwrap());
    assert!(may_terminate_for_outage(&det, at(2025, 8, 4, 2, 5), &p, &tz).unwrap());
    assert!(may_terminate_for_outage(&o, at(2025, 9, 3, 23, 59), &p, &tz).unwrap());
    assert!(!may_terminate_for_outage(&o, at(2025, 9, 4, 0, 0), &p, &tz).unwrap());
}

#[test]
fn excluded_time_breaks_the_chain() {
    // spec: SVC-261 (any usable or excluded cycle resets the count)
    let p = Params::cloud_defaults();
    let mut d = Detector::default();
    let five = SignedDuration::from_mins(5);
    let mut t = at(2025, 8, 1, 0, 0);
    let mut events = 0;
    for i in 0..1000 {
        let u = if i == 500 {
            Usability::Excluded
        } else {
            Usability::Unusable
        };
        if d.observe(t, u, &p).unwrap().is_some() {
            events += 1;
        }
        t = t.checked_add(five).unwrap();
    }
    assert_eq!(
        events, 0,
        "neither 500 nor 499 consecutive cycles reach 864"
    );
    assert!(
        d.observe(at(2025, 7, 1, 0, 0), Usability::Unusable, &p)
            .is_err(),
        "cycles come in order"
    );
}
