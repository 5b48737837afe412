//! §9 overdue items, penalty accrual and posting, suspension and restoration.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, book, day, tz};
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::overdue::{
    DebtStatus, OverdueDecision, OverdueFacts, OverdueItem, PenaltyTerms, decide, nonpayment_purge,
    suspension_instant,
};
use klaxon_saas::params::Params;
use rust_decimal::dec;

fn usage_debt(amount: rust_decimal::Decimal, due: jiff::civil::Date) -> klaxon_saas::book::Book {
    let mut b = book();
    // A usage charge the tenant cannot cover becomes an overdue item due on `due`.
    let out = b
        .charge(
            at(due.year(), due.month(), due.day(), 0, 30),
            ChargeKind::Usage,
            amount,
            true,
            due,
            "settlement",
            "system",
        )
        .unwrap();
    assert_eq!(out.overdue.map(|o| o.1), Some(amount));
    b
}

#[test]
fn example_a_paid_in_full_after_seven_days() {
    // spec: SVC-132
    // spec: SVC-133 (Example A)
    let mut b = usage_debt(dec!(1990.00), day(2025, 5, 31));
    // Payable on 06-08 before paying: principal + rounded accrual through 06-07.
    assert_eq!(
        b.payable_total(at(2025, 6, 8, 11, 0)).unwrap(),
        dec!(1996.97)
    );
    let app = b
        .receive_cash(at(2025, 6, 8, 11, 0), dec!(1996.97), "bank-1", "finance")
        .unwrap();
    assert_eq!(app.principal, dec!(1990.00));
    assert_eq!(app.penalty, dec!(6.97));
    assert_eq!(app.to_balance, dec!(0));
    assert_eq!(b.payable_total(at(2025, 6, 9, 0, 0)).unwrap(), dec!(0));
    assert_eq!(b.items()[0].posted_penalty, dec!(6.97));
    assert!(b.ledger().check().is_empty());
}

#[test]
fn example_b_partial_payment_lowers_the_base_from_that_day() {
    // spec: SVC-132
    // spec: SVC-133 (Example B)
    // spec: SVC-134 (Example B continued)
    let mut b = usage_debt(dec!(1000.00), day(2025, 5, 31));
    let first = b
        .receive_cash(at(2025, 6, 4, 15, 0), dec!(400.00), "pay-1", "owner")
        .unwrap();
    assert_eq!(first.principal, dec!(400.00));
    assert_eq!(first.penalty, dec!(0));
    let item = &b.items()[0];
    let terms = b.penalty_terms().clone();
    assert_eq!(
        item.exact_accrual_through(day(2025, 6, 9), &terms).unwrap(),
        dec!(3.30)
    );
    // 603.30 on 06-10: 600 principal, 3.30 penalty, nothing to balance.
    let app = b
        .receive_cash(at(2025, 6, 10, 9, 0), dec!(603.30), "pay-2", "owner")
        .unwrap();
    assert_eq!(
        (app.principal, app.penalty, app.to_balance),
        (dec!(600.00), dec!(3.30), dec!(0))
    );
    assert_eq!(b.ledger().cash(), dec!(0));
    assert_eq!(b.payable_total(at(2025, 6, 11, 0, 0)).unwrap(), dec!(0));
}

#[test]
fn accrual_is_simple_and_counts_every_day() {
    // spec: SVC-132 (penalties never earn penalties; weekends count)
    // spec: SVC-131
    let terms = PenaltyTerms::from_params(&Params::cloud_defaults());
    let item = OverdueItem::new(
        1,
        "x",
        dec!(1000.00),
        day(2025, 1, 31),
        at(2025, 2, 1, 0, 30),
    )
    .unwrap();
    // Three months unpaid (Feb 28 + Mar 31 + Apr 30 = 89 days): 89 × 0.50, no compounding.
    assert_eq!(
        item.exact_accrual_through(day(2025, 4, 30), &terms)
            .unwrap(),
        dec!(44.50)
    );
    assert_eq!(
        item.penalty_to_post(day(2025, 4, 30), &terms, 2).unwrap(),
        dec!(44.50)
    );
    // Switched off by the operator: nothing accrues.
    let off = PenaltyTerms {
        enabled: false,
        ..terms.clone()
    };
    assert_eq!(
        item.exact_accrual_through(day(2025, 4, 30), &off).unwrap(),
        dec!(0)
    );
}

#[test]
fn posting_is_rounded_cumulative_minus_posted_and_never_drifts() {
    // spec: SVC-133 (accruals posted as rounded cumulative minus already posted)
    let mut b = usage_debt(dec!(33.33), day(2025, 5, 31));
    // 33.33 × 0.0005 = 0.016665/day; posting day by day must equal posting once.
    let mut posted = dec!(0);
    for d in 1..=30 {
        posted += b
            .post_penalties(at(2025, 6, d, 1, 0), day(2025, 6, d), "statement")
            .unwrap();
    }
    let exact = dec!(33.33) * dec!(0.0005) * dec!(30);
    assert_eq!(posted, klaxon_saas::money::round_half_up(exact, 2));
    assert_eq!(b.ledger().debt_penalty(), posted);
}

#[test]
fn rate_follows_the_version_in_force_each_day_and_the_cap_bounds_it() {
    // spec: SVC-039 (a penalty day uses the ToS in force that day)
    // spec: SVC-131 (optional cap)
    let terms = PenaltyTerms {
        enabled: true,
        rates: vec![
            (day(2000, 1, 1), dec!(0.0005)),
            (day(2025, 6, 6), dec!(0.0001)),
        ],
        cap_ratio: None,
    };
    let item = OverdueItem::new(
        1,
        "x",
        dec!(1000.00),
        day(2025, 5, 31),
        at(2025, 6, 1, 0, 0),
    )
    .unwrap();
    // 06-01..06-05 at 0.50, 06-06..06-10 at 0.10.
    assert_eq!(
        item.exact_accrual_through(day(2025, 6, 10), &terms)
            .unwrap(),
        dec!(3.00)
    );
    let capped = PenaltyTerms {
        cap_ratio: Some(dec!(0.001)),
        ..terms
    };
    assert_eq!(
        item.exact_accrual_through(day(2025, 12, 31), &capped)
            .unwrap(),
        dec!(1.00)
    );
    let bad = PenaltyTerms {
        rates: vec![(day(2025, 1, 1), dec!(-0.1))],
        enabled: true,
        cap_ratio: None,
    };
    assert!(bad.validate().is_err());
}

#[test]
fn suspension_after_grace_and_purge_dates() {
    // spec: SVC-137 (due 2025-05-31, grace 7 → suspended 2025-06-08 00:00)
    // spec: SVC-140 (purge 2025-07-08 00:00; warnings 07-01 and 07-07)
    // spec: SVC-136 (warnings 7 days and 1 day before the purge date)
    let tz = tz();
    let s = suspension_instant(day(2025, 5, 31), 7, &tz).unwrap();
    assert_eq!(s, at(2025, 6, 8, 0, 0));
    assert_eq!(
        suspension_instant(day(2025, 5, 31), 0, &tz).unwrap(),
        at(2025, 6, 1, 0, 0)
    );
    let (purge, warn) = nonpayment_purge(s, 30).unwrap();
    assert_eq!(purge, at(2025, 7, 8, 0, 0));
    assert_eq!(warn, [at(2025, 7, 1, 0, 0), at(2025, 7, 7, 0, 0)]);
}

fn facts(
    b: &klaxon_saas::book::Book,
    now: jiff::Timestamp,
    status: DebtStatus,
) -> OverdueFacts<'_> {
    OverdueFacts {
        items: b.items(),
        payable_total: b.payable_total(now).unwrap(),
        status,
        prepaid_ends_at: None,
    }
}

#[test]
fn overdue_decisions_follow_the_debt() {
    // spec: SVC-130 (debt makes the tenant overdue)
    // spec: SVC-137 (penalty-only debt never suspends)
    // spec: SVC-139 (restoration needs the whole payable total)
    // spec: SVC-140
    let p = Params::cloud_defaults();
    let tz = tz();
    let mut b = usage_debt(dec!(1990.00), day(2025, 5, 31));
    let now = at(2025, 6, 1, 10, 0);
    assert_eq!(
        decide(&facts(&b, now, DebtStatus::Serving), now, &p, &tz).unwrap(),
        OverdueDecision::BecomeOverdue
    );
    let now = at(2025, 6, 7, 23, 59);
    assert_eq!(
        decide(&facts(&b, now, DebtStatus::Overdue), now, &p, &tz).unwrap(),
        OverdueDecision::Nothing
    );
    // The job runs late at 06-08 05:00: the suspension is effective at the scheduled instant.
    let now = at(2025, 6, 8, 5, 0);
    // A tenant still marked serving first becomes overdue (no direct active → suspended).
    assert_eq!(
        decide(&facts(&b, now, DebtStatus::Serving), now, &p, &tz).unwrap(),
        OverdueDecision::BecomeOverdue
    );
    assert_eq!(
        decide(&facts(&b, now, DebtStatus::Overdue), now, &p, &tz).unwrap(),
        OverdueDecision::Suspend {
            at: at(2025, 6, 8, 0, 0)
        }
    );
    let since = at(2025, 6, 8, 0, 0);
    // Principal alone does not lift the suspension.
    b.receive_cash(at(2025, 6, 8, 11, 0), dec!(1990.00), "pay", "owner")
        .unwrap();
    let now = at(2025, 6, 8, 11, 0);
    assert_eq!(b.ledger().debt_penalty(), dec!(6.97));
    assert_eq!(
        decide(
            &facts(&b, now, DebtStatus::SuspendedForNonpayment { since }),
            now,
            &p,
            &tz
        )
        .unwrap(),
        OverdueDecision::Nothing
    );
    // Penalty-only debt in `overdue` never suspends, even long after grace.
    let later = at(2025, 7, 30, 0, 0);
    assert_eq!(
        decide(&facts(&b, later, DebtStatus::Overdue), later, &p, &tz).unwrap(),
        OverdueDecision::Nothing
    );
    // Paying the penalty restores.
    b.receive_cash(at(2025, 6, 8, 11, 5), dec!(6.97), "pay2", "owner")
        .unwrap();
    let now = at(2025, 6, 8, 11, 5);
    assert_eq!(
        decide(
            &facts(&b, now, DebtStatus::SuspendedForNonpayment { since }),
            now,
            &p,
            &tz
        )
        .unwrap(),
        OverdueDecision::Restore
    );
    // …unless the prepaid term ended meanwhile.
    let mut f = facts(&b, now, DebtStatus::SuspendedForNonpayment { since });
    f.prepaid_ends_at = Some(at(2025, 6, 1, 0, 0));
    assert_eq!(
        decide(&f, now, &p, &tz).unwrap(),
        OverdueDecision::EndExpired
    );
}

#[test]
fn unpaid_until_the_purge_date_ends_for_nonpayment() {
    // spec: SVC-140
    // spec: SVC-141 (debts survive; penalties keep accruing)
    let p = Params::cloud_defaults();
    let tz = tz();
    let b = usage_debt(dec!(100.00), day(2025, 5, 31));
    let since = at(2025, 6, 8, 0, 0);
    let now = at(2025, 7, 8, 0, 0);
    let f = OverdueFacts {
        items: b.items(),
        payable_total: b.payable_total(now).unwrap(),
        status: DebtStatus::SuspendedForNonpayment { since },
        prepaid_ends_at: None,
    };
    assert_eq!(
        decide(&f, now, &p, &tz).unwrap(),
        OverdueDecision::EndForNonpayment { at: now }
    );
    // Long after the end the debt is still there and still accruing.
    assert!(b.payable_total(at(2026, 1, 1, 0, 0)).unwrap() > b.payable_total(now).unwrap());
}

#[test]
fn oldest_principal_first_then_penalties_then_balance() {
    // spec: SVC-134
    let mut b = book();
    b.charge(
        at(2025, 5, 1, 0, 30),
        ChargeKind::Usage,
        dec!(100.00),
        true,
        day(2025, 5, 1),
        "s1",
        "system",
    )
    .unwrap();
    b.charge(
        at(2025, 5, 10, 0, 30),
        ChargeKind::Usage,
        dec!(50.00),
        true,
        day(2025, 5, 10),
        "s2",
        "system",
    )
    .unwrap();
    // 120 pays item 1 in full (posting its penalty), then 20 of item 2; nothing for penalty.
    let app = b
        .receive_cash(at(2025, 5, 21, 12, 0), dec!(120.00), "pay", "owner")
        .unwrap();
    assert_eq!(app.principal, dec!(120.00));
    assert_eq!(app.penalty, dec!(0));
    assert_eq!(b.items()[0].unpaid_principal(), dec!(0));
    assert_eq!(b.items()[1].unpaid_principal(), dec!(30.00));
    // Item 1: 05-02..05-20 = 19 days × 0.05 = 0.95 posted.
    assert_eq!(b.items()[0].posted_penalty, dec!(0.95));
    let app = b
        .receive_cash(at(2025, 5, 22, 12, 0), dec!(100.00), "pay2", "owner")
        .unwrap();
    assert_eq!(app.principal, dec!(30.00));
    // Item 2: 05-11..05-20 at 50 → 0.25; 05-21 at 30 → 0.015; total 0.265 → 0.27. Plus 0.95.
    assert_eq!(app.penalty, dec!(1.22));
    assert_eq!(app.to_balance, dec!(68.78));
    assert_eq!(b.ledger().cash(), dec!(68.78));
}

#[test]
fn waivers_and_write_offs_are_visible_entries() {
    // spec: SVC-135
    // spec: SVC-132 (accrual stops at write-off)
    let mut b = usage_debt(dec!(1000.00), day(2025, 5, 31));
    assert!(
        b.waive_penalty(at(2025, 6, 5, 9, 0), 1, dec!(1.00), " ", "fin")
            .is_err()
    );
    b.waive_penalty(at(2025, 6, 5, 9, 0), 1, dec!(1.00), "goodwill", "fin")
        .unwrap();
    // 4 days × 0.50 = 2.00 posted, 1.00 waived.
    assert_eq!(b.ledger().debt_penalty(), dec!(1.00));
    assert!(
        b.waive_penalty(at(2025, 6, 5, 9, 0), 1, dec!(5.00), "too much", "fin")
            .is_err()
    );
    let w = b
        .write_off(at(2025, 6, 6, 9, 0), 1, "uncollectable", "fin")
        .unwrap();
    assert_eq!(w, dec!(1000.00) + dec!(1.50));
    assert_eq!(b.payable_total(at(2025, 9, 1, 0, 0)).unwrap(), dec!(0));
    let kinds: Vec<_> = b.ledger().entries().iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&klaxon_saas::ledger::EntryKind::PenaltyWaiver));
    assert!(kinds.contains(&klaxon_saas::ledger::EntryKind::WriteOff));
}

#[test]
fn overdue_notice_schedule() {
    // spec: SVC-136 (at creation; daily 10:00 in grace; at suspension; 7 d and 1 d before purge)
    use klaxon_saas::overdue::{OverdueNotice, overdue_notice_schedule};
    let p = Params::cloud_defaults();
    let item =
        OverdueItem::new(1, "s", dec!(10.00), day(2025, 5, 31), at(2025, 6, 1, 0, 30)).unwrap();
    let s = overdue_notice_schedule(&item, &p, &tz()).unwrap();
    assert_eq!(s[0], (at(2025, 6, 1, 0, 30), OverdueNotice::ItemCreated));
    let grace: Vec<_> = s
        .iter()
        .filter(|n| n.1 == OverdueNotice::GraceReminder)
        .map(|n| n.0)
        .collect();
    assert_eq!(grace.len(), 7);
    assert_eq!(grace[0], at(2025, 6, 1, 10, 0));
    assert_eq!(grace[6], at(2025, 6, 7, 10, 0));
    assert!(s.contains(&(at(2025, 6, 8, 0, 0), OverdueNotice::Suspension)));
    assert!(s.contains(&(at(2025, 7, 1, 0, 0), OverdueNotice::PurgeWarning)));
    assert!(s.contains(&(at(2025, 7, 7, 0, 0), OverdueNotice::PurgeWarning)));
}
