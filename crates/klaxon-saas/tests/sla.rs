//! §18 SLA: cycles, rates, exclusions, fee, compensation, claims.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, book, day, tz};
use jiff::{SignedDuration, Timestamp};
use klaxon_saas::calendar::WorkingDays;
use klaxon_saas::ledger::{BonusSource, ChargeKind};
use klaxon_saas::licence::Edition;
use klaxon_saas::mode::{BillingProfile, DeploymentMode, Regime};
use klaxon_saas::money::Currency;
use klaxon_saas::params::{Params, SlaParams};
use klaxon_saas::sla::{
    Exclusion, ExclusionCategory, IncidentRecord, MaintenanceWindow, PaidTerm, Records,
    ReportStatus, RequestRecord, Unreachable, availability, check_claim, check_sla_version,
    claim_window, compensation, covered, cycle_start, evaluate_cycle, evaluate_month,
    failed_minutes, grant_compensation, maintenance_exclusion, monthly_fee, report_status,
};
use klaxon_saas::state::{ServiceState, SuspendReason};
use rust_decimal::{Decimal, dec};

fn req(at: Timestamp, status: u16) -> RequestRecord {
    RequestRecord {
        at,
        status,
        platform_generated: true,
        beta_endpoint: false,
        refused_for_state: false,
        tenant_over_limit: false,
    }
}

fn inc(at: Timestamp, handed_off_after_secs: Option<i64>) -> IncidentRecord {
    IncidentRecord {
        triggered_at: at,
        notification_due: true,
        configured_delay: SignedDuration::ZERO,
        handed_off_at: handed_off_after_secs
            .map(|s| at.checked_add(SignedDuration::from_secs(s)).unwrap()),
        late_caused_by_platform: true,
        beta_feature: false,
    }
}

fn records<'a>(
    requests: &'a [RequestRecord],
    incidents: &'a [IncidentRecord],
    exclusions: &'a [Exclusion],
) -> Records<'a> {
    Records {
        requests,
        incidents,
        unreachable: &[],
        avg_requests_per_minute: Decimal::ZERO,
        exclusions,
    }
}

fn requests(start: Timestamp, total: usize, failed: usize) -> Vec<RequestRecord> {
    (0..total)
        .map(|i| {
            req(
                start
                    .checked_add(SignedDuration::from_millis(i as i64))
                    .unwrap(),
                if i < failed { 500 } else { 200 },
            )
        })
        .collect()
}

#[test]
fn cycle_verdict_examples() {
    // spec: SVC-275 (all four examples; "reaches" = ≥; empty denominator = 0 %)
    // spec: SVC-271 (5-minute cycles aligned on :00, :05 … UTC)
    // spec: SVC-240 (unplanned interruptions count unless excluded)
    let sla = SlaParams::default();
    let c = at(2025, 3, 3, 10, 5);
    assert_eq!(
        cycle_start(c.checked_add(SignedDuration::from_secs(299)).unwrap(), &sla).unwrap(),
        c
    );
    let r = requests(c, 2000, 2);
    assert!(
        evaluate_cycle(c, &records(&r, &[], &[]), &sla)
            .unwrap()
            .failed
    );
    let r = requests(c, 2000, 1);
    let s = evaluate_cycle(c, &records(&r, &[], &[]), &sla).unwrap();
    assert_eq!(s.error_rate, dec!(0.0005));
    assert!(!s.failed);
    let mut incs: Vec<_> = (0..39).map(|_| inc(c, Some(10))).collect();
    incs.push(inc(c, Some(360)));
    let s = evaluate_cycle(c, &records(&[], &incs, &[]), &sla).unwrap();
    assert_eq!(s.delay_rate, dec!(0.025));
    assert!(s.failed);
    let r = requests(c, 10, 1);
    assert!(
        evaluate_cycle(c, &records(&r, &[], &[]), &sla)
            .unwrap()
            .failed
    );
    let empty = evaluate_cycle(c, &records(&[], &[], &[]), &sla).unwrap();
    assert!(!empty.failed && empty.error_rate.is_zero());
}

#[test]
fn what_counts_as_a_valid_and_a_failed_request() {
    // spec: SVC-272
    // spec: SVC-164 (beta endpoints left out of SLA counts)
    let sla = SlaParams::default();
    let c = at(2025, 3, 3, 10, 0);
    let mut r = vec![
        req(c, 404),
        req(c, 400),
        req(c, 503),
        req(c, 504),
        req(c, 502),
    ];
    r.push(RequestRecord {
        beta_endpoint: true,
        ..req(c, 500)
    });
    r.push(RequestRecord {
        refused_for_state: true,
        ..req(c, 403)
    });
    r.push(RequestRecord {
        tenant_over_limit: true,
        ..req(c, 429)
    });
    r.push(RequestRecord {
        platform_generated: false,
        ..req(c, 500)
    });
    let s = evaluate_cycle(c, &records(&r, &[], &[]), &sla).unwrap();
    assert_eq!(s.valid_requests, dec!(6));
    assert_eq!(s.failed_requests, dec!(3));
}

#[test]
fn unreachable_minutes_are_estimated_from_the_seven_day_average() {
    // spec: SVC-273 (12/min, fully unreachable → 60 failed of 60 → 100 %)
    let sla = SlaParams::default();
    let c = at(2025, 3, 3, 10, 0);
    let down = [Unreachable {
        start: at(2025, 3, 3, 9, 0),
        end: at(2025, 3, 3, 11, 0),
    }];
    let rec = Records {
        requests: &[],
        incidents: &[],
        unreachable: &down,
        avg_requests_per_minute: dec!(12),
        exclusions: &[],
    };
    let s = evaluate_cycle(c, &rec, &sla).unwrap();
    assert_eq!(
        (s.failed_requests, s.valid_requests, s.error_rate),
        (dec!(60), dec!(60), dec!(1))
    );
}

#[test]
fn notification_delay_counts_from_the_due_time() {
    // spec: SVC-274
    let sla = SlaParams::default();
    let c = at(2025, 3, 3, 10, 0);
    let delayed = IncidentRecord {
        configured_delay: SignedDuration::from_secs(600),
        ..inc(c, Some(800))
    };
    let nothing_due = IncidentRecord {
        notification_due: false,
        ..inc(c, None)
    };
    let on_time = inc(c, Some(300));
    let tenant_caused = IncidentRecord {
        late_caused_by_platform: false,
        ..inc(c, None)
    };
    let s = evaluate_cycle(
        c,
        &records(&[], &[delayed, nothing_due, on_time, tenant_caused], &[]),
        &sla,
    )
    .unwrap();
    assert_eq!((s.valid_incidents, s.failed_incidents), (3, 0));
    let never = inc(c, None);
    let s = evaluate_cycle(c, &records(&[], &[never], &[]), &sla).unwrap();
    assert_eq!(s.failed_incidents, 1);
}

#[test]
fn exclusions_need_half_the_cycle() {
    // spec: SVC-276 (excluded when an exclusion covers ≥ 150 s of the cycle)
    let sla = SlaParams::default();
    let c = at(2025, 3, 3, 10, 0);
    let r = requests(c, 10, 10);
    let ex = |secs: i64| Exclusion {
        category: ExclusionCategory::ForceMajeure,
        start: c
            .checked_add(SignedDuration::from_secs(300 - secs))
            .unwrap(),
        end: c.checked_add(SignedDuration::from_secs(900)).unwrap(),
        evidence: "storm".into(),
        author: "sre".into(),
    };
    let s = evaluate_cycle(c, &records(&r, &[], &[ex(150)]), &sla).unwrap();
    assert_eq!(s.excluded, Some(ExclusionCategory::ForceMajeure));
    assert!(s.over_threshold && !s.failed);
    assert!(
        evaluate_cycle(c, &records(&r, &[], &[ex(149)]), &sla)
            .unwrap()
            .failed
    );
}

#[test]
fn maintenance_windows_exclude_only_when_announced_48_hours_ahead() {
    // spec: SVC-239 (54 h ahead → 02:00–04:00 excluded, overrun counts; 40 h → nothing)
    let p = Params::cloud_defaults();
    let sla = &p.sla;
    let w = MaintenanceWindow {
        published_at: at(2025, 9, 9, 20, 0),
        start: at(2025, 9, 12, 2, 0),
        end: at(2025, 9, 12, 4, 0),
    };
    let ex = maintenance_exclusion(&w, &p).unwrap().unwrap();
    let r = requests(at(2025, 9, 12, 3, 55), 1, 1);
    let r2 = requests(at(2025, 9, 12, 4, 10), 1, 1);
    let all: Vec<_> = r.into_iter().chain(r2).collect();
    let exs = [ex];
    let s = evaluate_cycle(at(2025, 9, 12, 3, 55), &records(&all, &[], &exs), sla).unwrap();
    assert!(s.excluded.is_some() && !s.failed);
    let s = evaluate_cycle(at(2025, 9, 12, 4, 10), &records(&all, &[], &exs), sla).unwrap();
    assert!(s.excluded.is_none() && s.failed, "the overrun counts");
    let late = MaintenanceWindow {
        published_at: at(2025, 9, 10, 10, 0),
        ..w
    };
    assert_eq!(maintenance_exclusion(&late, &p).unwrap(), None);
}

#[test]
fn monthly_fee_and_compensation_examples() {
    // spec: SVC-277 (annual ¥19,900 → F(March) = 19,900 × 31 / 365)
    // spec: SVC-278 (¥6.91, ¥663.33, ¥1,990.00 cap, annual 25 min → ¥9.78)
    // spec: SVC-155 (bonus-paid parts are not fees: only cash_paid enters F)
    let sla = SlaParams::default();
    let annual = PaidTerm {
        start: day(2025, 1, 1),
        end: day(2026, 1, 1),
        cash_paid: dec!(19900),
    };
    let f_march = monthly_fee(
        day(2025, 3, 1),
        std::slice::from_ref(&annual),
        dec!(0),
        dec!(0),
    )
    .unwrap();
    assert_eq!(f_march, dec!(19900) * dec!(31) / dec!(365));
    assert_eq!(compensation(25, f_march, &sla, Currency::CNY), dec!(9.78));
    let monthly = PaidTerm {
        start: day(2025, 3, 1),
        end: day(2025, 4, 1),
        cash_paid: dec!(1990),
    };
    let f = monthly_fee(day(2025, 3, 15), &[monthly], dec!(0), dec!(0)).unwrap();
    assert_eq!(f, dec!(1990));
    assert_eq!(compensation(15, f, &sla, Currency::CNY), dec!(6.91));
    assert_eq!(compensation(1440, f, &sla, Currency::CNY), dec!(663.33));
    assert_eq!(compensation(4320, f, &sla, Currency::CNY), dec!(1990.00));
    assert_eq!(compensation(10_000, f, &sla, Currency::CNY), dec!(1990.00));
    // Postpaid and overage paid in cash add; refunds subtract.
    assert_eq!(
        monthly_fee(day(2025, 3, 1), &[], dec!(45.30), dec!(5.30)).unwrap(),
        dec!(40.00)
    );
}

#[test]
fn a_month_of_cycles_gives_failed_minutes() {
    // spec: SVC-275 (failed minutes = 5 × failed non-excluded cycles)
    // spec: SVC-278 (cycles belong to the month they start in)
    let sla = SlaParams::default();
    let tz = tz();
    let r: Vec<_> = [
        at(2025, 3, 3, 10, 1),
        at(2025, 3, 3, 10, 7),
        at(2025, 3, 31, 23, 59),
        at(2025, 4, 1, 0, 1),
    ]
    .into_iter()
    .map(|t| req(t, 500))
    .collect();
    let cycles = evaluate_month(day(2025, 3, 1), &tz, &records(&r, &[], &[]), &sla).unwrap();
    assert_eq!(cycles.len(), 31 * 288);
    assert_eq!(failed_minutes(&cycles, &sla), 15);
    // spec: SVC-271 (monthly availability against the 99.9 % target)
    let (a, meets) = availability(&cycles, &sla).unwrap();
    assert_eq!(a, Decimal::from(8925) / Decimal::from(8928));
    assert!(meets);
    let bad = records(&r, &[], &[]);
    let many: Vec<_> = (0..10)
        .map(|i| {
            req(
                at(2025, 3, 4, 0, 0)
                    .checked_add(SignedDuration::from_mins(5 * i))
                    .unwrap(),
                500,
            )
        })
        .collect();
    let all: Vec<_> = r.iter().copied().chain(many).collect();
    let cycles2 = evaluate_month(
        day(2025, 3, 1),
        &tz,
        &Records {
            requests: &all,
            ..bad
        },
        &sla,
    )
    .unwrap();
    assert!(
        !availability(&cycles2, &sla).unwrap().1,
        "13 failed cycles of 8,928 is below 99.9 %"
    );
}

#[test]
fn claim_window_example() {
    // spec: SVC-280 (March 2025 → 8 April 00:00 – 31 May 24:00; 4 April holiday → opens 9 April)
    // spec: SVC-281 (outside the window refused; one claim per month)
    let sla = SlaParams::default();
    let tz = tz();
    let mut cal = WorkingDays::monday_to_friday();
    let w = claim_window(day(2025, 3, 1), &cal, &sla, &tz).unwrap();
    assert_eq!(w, (at(2025, 4, 8, 0, 0), at(2025, 6, 1, 0, 0)));
    cal.holidays.insert(day(2025, 4, 4));
    assert_eq!(
        claim_window(day(2025, 3, 1), &cal, &sla, &tz).unwrap().0,
        at(2025, 4, 9, 0, 0)
    );
    assert!(check_claim(at(2025, 4, 7, 23, 59), w, false).is_err());
    assert!(check_claim(at(2025, 4, 8, 0, 0), w, false).is_ok());
    assert!(check_claim(at(2025, 5, 31, 23, 59), w, false).is_ok());
    assert!(check_claim(at(2025, 6, 1, 0, 0), w, false).is_err());
    assert!(
        check_claim(at(2025, 4, 9, 0, 0), w, true)
            .unwrap_err()
            .to_string()
            .contains("SVC-281")
    );
    // spec: SVC-282 (figures are provisional until the window opens)
    assert_eq!(
        report_status(at(2025, 4, 7, 12, 0), w),
        ReportStatus::Provisional
    );
    assert_eq!(report_status(at(2025, 4, 8, 0, 0), w), ReportStatus::Final);
}

#[test]
fn new_sla_versions_need_thirty_days_notice() {
    // spec: SVC-283
    // spec: SVC-031 (for `sla`, effective_at ≥ deemed delivery + 30 days)
    let p = Params::cloud_defaults();
    let tz = tz();
    assert!(check_sla_version(at(2025, 6, 1, 15, 0), at(2025, 7, 1, 0, 0), &p, &tz).is_ok());
    assert!(check_sla_version(at(2025, 6, 1, 15, 0), at(2025, 6, 30, 23, 0), &p, &tz).is_err());
}

#[test]
fn who_the_sla_covers() {
    // spec: SVC-270
    // spec: SVC-163 (trial and Free: no commitment)
    let cloud = Regime::for_new_tenant(DeploymentMode::Cloud);
    assert!(covered(cloud, Edition::Pro, ServiceState::Active));
    assert!(covered(cloud, Edition::Standard, ServiceState::Overdue));
    assert!(!covered(cloud, Edition::Trial, ServiceState::Trial));
    assert!(!covered(cloud, Edition::Free, ServiceState::Active));
    assert!(!covered(
        cloud,
        Edition::Pro,
        ServiceState::Suspended(SuspendReason::Nonpayment)
    ));
    let exempt = cloud.set_profile(BillingProfile::Exempt, "own").unwrap();
    assert!(!covered(exempt, Edition::Pro, ServiceState::Active));
    assert!(!covered(
        Regime::for_new_tenant(DeploymentMode::SelfHosted),
        Edition::Unlimited,
        ServiceState::Active
    ));
}

#[test]
fn compensation_is_paid_as_bonus_that_only_buys_service() {
    // spec: SVC-279
    let mut b = book();
    assert_eq!(
        grant_compensation(&mut b, at(2025, 4, 19, 0, 0), dec!(0), "claim-0", "staff").unwrap(),
        None
    );
    let c = compensation(15, dec!(1990), &SlaParams::default(), Currency::CNY);
    let lot = grant_compensation(&mut b, at(2025, 4, 20, 0, 0), c, "claim-2025-03", "staff")
        .unwrap()
        .unwrap();
    let view = b.ledger().lots().into_iter().find(|l| l.id == lot).unwrap();
    assert_eq!(view.terms.source, BonusSource::SlaCompensation);
    assert_eq!(view.remaining, dec!(6.91));
    assert!(
        b.withdraw(at(2025, 4, 21, 0, 0), dec!(0.01), "w", "owner")
            .is_err()
    );
    let out = b
        .charge(
            at(2025, 5, 2, 0, 30),
            ChargeKind::Usage,
            dec!(6.91),
            true,
            day(2025, 5, 2),
            "usage-05-01",
            "system",
        )
        .unwrap();
    assert_eq!(out.bonus_paid, dec!(6.91));
    assert_eq!(
        b.ledger().balance(klaxon_saas::ledger::Account::Bonus(lot)),
        dec!(0)
    );
}

// spec: SVC-275
// Aggregated counts (what a server records) give the same verdicts as the requests one by
// one: 2 of 2,000 fails, 1 of 2,000 passes; a cycle without counts passes.
#[test]
fn counted_cycles_match_the_examples() {
    use klaxon_saas::sla::{CycleCounts, evaluate_month_counted};
    let sla = SlaParams::default();
    let counts = [
        CycleCounts {
            start: at(2025, 3, 10, 9, 0),
            valid: 2000,
            failed: 2,
        },
        CycleCounts {
            start: at(2025, 3, 10, 9, 5),
            valid: 2000,
            failed: 1,
        },
    ];
    let cycles = evaluate_month_counted(
        day(2025, 3, 1),
        &tz(),
        &counts,
        &records(&[], &[], &[]),
        &sla,
    )
    .unwrap();
    assert_eq!(cycles.len(), 31 * 288);
    let failed: Vec<Timestamp> = cycles
        .iter()
        .filter(|c| c.failed)
        .map(|c| c.start)
        .collect();
    assert_eq!(failed, vec![at(2025, 3, 10, 9, 0)]);
    let passed = cycles
        .iter()
        .find(|c| c.start == at(2025, 3, 10, 9, 5))
        .unwrap();
    assert_eq!(passed.error_rate, dec!(0.0005));
    assert!(passed.had_traffic && !passed.failed);
    assert_eq!(failed_minutes(&cycles, &sla), 5);
}

// spec: SVC-276
// Categories are stored by name; an unknown one is refused naming the field.
#[test]
fn exclusion_categories_round_trip() {
    for c in ExclusionCategory::ALL {
        assert_eq!(ExclusionCategory::parse(c.as_str()).unwrap(), c);
    }
    let e = ExclusionCategory::parse("bad_luck").unwrap_err();
    assert!(e.to_string().contains("category"), "{e}");
}
