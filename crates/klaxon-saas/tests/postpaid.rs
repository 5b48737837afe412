//! §8 postpaid mechanics, balance alert, statements; SVC-012 contract overrides.

mod common;

use common::{at, book, day};
use klaxon_saas::contract::{Override, apply};
use klaxon_saas::ledger::{BonusScope, BonusSource, ChargeKind};
use klaxon_saas::params::Params;
use klaxon_saas::postpaid::{
    BalanceAlert, EnableFacts, check_enable, forecast, postpaid_starts_at, statement,
    switch_to_prepaid,
};
use rust_decimal::dec;

fn facts() -> EnableFacts {
    EnableFacts {
        has_overdue_item: false,
        linked_overdue_past_grace: false,
        verification_required: false,
        entity_verified: false,
        funds: dec!(0),
        explicit_acceptance: true,
    }
}

#[test]
fn enabling_postpaid_checks_its_preconditions() {
    // spec: SVC-120
    // spec: SVC-007 (verification required by the operator)
    let p = Params::cloud_defaults();
    assert!(check_enable(&facts(), &p).is_ok());
    let e = check_enable(
        &EnableFacts {
            has_overdue_item: true,
            ..facts()
        },
        &p,
    )
    .unwrap_err();
    assert!(e.to_string().contains("overdue"));
    assert!(
        check_enable(
            &EnableFacts {
                linked_overdue_past_grace: true,
                ..facts()
            },
            &p
        )
        .unwrap_err()
        .to_string()
        .contains("SVC-013")
    );
    assert!(
        check_enable(
            &EnableFacts {
                verification_required: true,
                ..facts()
            },
            &p
        )
        .is_err()
    );
    assert!(
        check_enable(
            &EnableFacts {
                explicit_acceptance: false,
                ..facts()
            },
            &p
        )
        .is_err()
    );
    let strict = Params {
        postpaid_min_balance: dec!(100),
        ..Params::cloud_defaults()
    };
    assert!(
        check_enable(
            &EnableFacts {
                funds: dec!(99.99),
                ..facts()
            },
            &strict
        )
        .is_err()
    );
    // Immediately, or at the end of the running prepaid term.
    assert_eq!(
        postpaid_starts_at(at(2025, 3, 1, 9, 0), None),
        at(2025, 3, 1, 9, 0)
    );
    assert_eq!(
        postpaid_starts_at(at(2025, 3, 1, 9, 0), Some(at(2025, 4, 15, 0, 0))),
        at(2025, 4, 15, 0, 0)
    );
}

#[test]
fn switching_billing_mode() {
    // spec: SVC-125
    let s = switch_to_prepaid(at(2025, 3, 20, 11, 0), 4);
    assert_eq!(s.prepaid_starts_at, at(2025, 3, 20, 11, 0));
    assert_eq!(s.settle_cycle_now_for_active, 4);
}

#[test]
fn balance_alert_fires_once_until_funds_recover() {
    // spec: SVC-087
    let mut a = BalanceAlert::new(dec!(100)).unwrap();
    assert!(!a.observe(dec!(150)));
    assert!(a.observe(dec!(99.99)));
    assert!(!a.observe(dec!(50)));
    assert!(!a.observe(dec!(100)));
    assert!(
        !a.observe(dec!(80)),
        "not re-armed: funds only reached T, not above"
    );
    assert!(!a.observe(dec!(100.01)));
    assert!(a.observe(dec!(10)));
    assert!(BalanceAlert::new(dec!(-1)).is_err());
}

#[test]
fn forecast_and_cycle_end_warning() {
    // spec: SVC-123
    let mut b = book();
    b.receive_cash(at(2025, 3, 15, 9, 0), dec!(1000.00), "t", "owner")
        .unwrap();
    for d in 16..=22 {
        b.charge(
            at(2025, 3, d, 0, 30),
            ChargeKind::Usage,
            dec!(10.00),
            true,
            day(2025, 3, d),
            &format!("usage-{d}"),
            "system",
        )
        .unwrap();
    }
    let now = at(2025, 3, 22, 12, 0);
    let f = forecast(
        b.ledger(),
        b.available_funds(now, ChargeKind::Usage),
        (at(2025, 3, 15, 0, 0), at(2025, 4, 15, 0, 0)),
        now,
        7,
        dec!(219),
    )
    .unwrap();
    assert_eq!(f.charges_so_far, dec!(70.00));
    assert_eq!(f.estimated_licence_charge, dec!(1533));
    assert_eq!(f.days_of_funds_left, Some(dec!(93.0)));
    assert_eq!(f.warn_at, Some(at(2025, 4, 12, 0, 0)));
}

#[test]
fn statement_lists_the_cycle() {
    // spec: SVC-124
    let mut b = book();
    b.receive_cash(at(2025, 3, 1, 9, 0), dec!(50.00), "t", "owner")
        .unwrap();
    b.grant_bonus(
        at(2025, 3, 2, 9, 0),
        dec!(5.00),
        BonusSource::Campaign,
        BonusScope::OrdersAndUsage,
        None,
        "c",
        "staff",
    )
    .unwrap();
    b.charge(
        at(2025, 3, 3, 0, 30),
        ChargeKind::Usage,
        dec!(80.00),
        true,
        day(2025, 3, 3),
        "usage-03-02",
        "system",
    )
    .unwrap();
    b.receive_cash(at(2025, 3, 12, 9, 0), dec!(30.00), "t2", "owner")
        .unwrap();
    let s = statement(b.ledger(), at(2025, 3, 1, 0, 0), at(2025, 4, 1, 0, 0));
    assert_eq!(s.charges, dec!(80.00));
    assert_eq!(s.bonus_used, dec!(5.00));
    assert_eq!(s.new_overdue, dec!(25.00));
    assert_eq!(s.cash_received, dec!(80.00));
    // 25 due 03-03, paid 03-12: 03-04..03-11 = 8 days × 0.0125 = 0.10 posted.
    assert_eq!(s.penalties_posted, dec!(0.10));
    assert_eq!(s.closing_cash, dec!(4.90));
    assert_eq!(s.closing_debt, dec!(0));
}

#[test]
fn contract_overrides_follow_the_whitelist_and_floors() {
    // spec: SVC-012 (whitelisted overrides; notice lead times only longer)
    let base = Params::cloud_defaults();
    let p = apply(
        &base,
        &[
            Override::BufferDays(90),
            Override::LatePenaltyRatePerDay(dec!(0.0001)),
            Override::OperatorTerminationNoticeDays(60),
        ],
    )
    .unwrap();
    assert_eq!(
        (
            p.buffer_days,
            p.late_penalty_rate_per_day,
            p.operator_termination_notice_days
        ),
        (90, dec!(0.0001), 60)
    );
    let e = apply(&base, &[Override::OperatorTerminationNoticeDays(10)]).unwrap_err();
    assert!(e.to_string().contains("operator_termination_notice_days"));
    assert!(
        apply(&base, &[Override::BufferDays(3)])
            .unwrap_err()
            .to_string()
            .contains("buffer_days")
    );
    assert!(apply(&base, &[Override::MaintenanceNoticeHours(24)]).is_err());
}
