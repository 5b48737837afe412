//! Property tests of the money rules: penalty posting never drifts, compensation never
//! exceeds the fee, refunds never exceed what was paid.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, book, day};
use klaxon_saas::calendar::add_days;
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::money::{Currency, round_half_up};
use klaxon_saas::overdue::{OverdueItem, PenaltyTerms};
use klaxon_saas::params::{Params, SlaParams};
use klaxon_saas::refund::{PrepaidCharge, pro_rata};
use klaxon_saas::sla::compensation;
use proptest::prelude::*;
use rust_decimal::Decimal;

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn penalty_posting_is_the_same_daily_or_at_once(principal in 1i64..10_000_000, days in 1i64..120) {
        // spec: SVC-133 (rounded cumulative minus posted: repeated postings never drift)
        // spec: SVC-132 (simple interest on principal only)
        let amount = Decimal::new(principal, 2);
        let mut daily = book();
        daily.charge(at(2025, 1, 1, 0, 30), ChargeKind::Usage, amount, true, day(2024, 12, 31), "s", "system").unwrap();
        let once = daily.clone();
        // Each day's accrual is posted just after that day ends.
        let after = |d: jiff::civil::Date| {
            let n = add_days(d, 1).unwrap();
            at(n.year(), n.month(), n.day(), 0, 40)
        };
        let mut posted = Decimal::ZERO;
        let mut d = day(2025, 1, 1);
        for _ in 0..days {
            posted += daily.post_penalties(after(d), d, "job").unwrap();
            d = add_days(d, 1).unwrap();
        }
        let last = add_days(day(2024, 12, 31), days).unwrap();
        let mut once = once;
        let single = once.post_penalties(after(last), last, "job").unwrap();
        prop_assert_eq!(daily.ledger().debt_penalty(), once.ledger().debt_penalty());
        prop_assert_eq!(posted, single);
        let exact = amount * Decimal::new(5, 4) * Decimal::from(days);
        prop_assert_eq!(single, round_half_up(exact, 2));
    }

    #[test]
    fn accrual_never_exceeds_the_cap_and_grows_with_time(principal in 1i64..1_000_000, d1 in 1i64..200, d2 in 0i64..200, cap in 0i64..200) {
        // spec: SVC-131 (optional cap per item)
        let terms = PenaltyTerms { cap_ratio: Some(Decimal::new(cap, 2)), ..PenaltyTerms::from_params(&Params::cloud_defaults()) };
        let p = Decimal::new(principal, 2);
        let item = OverdueItem::new(1, "x", p, day(2025, 1, 31), at(2025, 2, 1, 0, 0)).unwrap();
        let a = item.exact_accrual_through(add_days(day(2025, 1, 31), d1).unwrap(), &terms).unwrap();
        let b = item.exact_accrual_through(add_days(day(2025, 1, 31), d1 + d2).unwrap(), &terms).unwrap();
        prop_assert!(a <= b);
        prop_assert!(b <= Decimal::new(cap, 2) * p);
    }

    #[test]
    fn compensation_is_capped_and_monotone(fee in 0i64..10_000_000, m1 in 0i64..10_000, m2 in 0i64..10_000) {
        // spec: SVC-278 (C(M) = min(minutes × F / 43,200 × 10, F))
        let sla = SlaParams::default();
        let f = Decimal::new(fee, 2);
        let c1 = compensation(m1, f, &sla, Currency::CNY);
        let c2 = compensation(m1 + m2, f, &sla, Currency::CNY);
        prop_assert!(c1 <= c2);
        prop_assert!(c2 <= Currency::CNY.round(f));
        prop_assert!(c1 >= Decimal::ZERO);
    }

    #[test]
    fn refunds_never_exceed_the_cash_paid(paid in 0i64..10_000_000, start in 0i64..700, len in 1i64..800, t in 0i64..1500) {
        // spec: SVC-234
        let s = add_days(day(2024, 1, 1), start).unwrap();
        let c = PrepaidCharge { reference: "c".into(), start: s, end: add_days(s, len).unwrap(), cash_paid: Decimal::new(paid, 2), bonus_paid: vec![] };
        let r = pro_rata(add_days(day(2024, 1, 1), t).unwrap(), std::slice::from_ref(&c), Currency::CNY).unwrap();
        prop_assert!(r[0].cash <= c.cash_paid);
        prop_assert!(r[0].cash >= Decimal::ZERO);
        prop_assert!(r[0].unused_days <= r[0].term_days);
    }
}
