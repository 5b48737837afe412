//! §6 ledger and §10 bonus/promotions through the tenant book.

mod common;

use common::{at, book, day};
use klaxon_saas::SaasError;
use klaxon_saas::ledger::{Account, BonusScope, BonusSource, ChargeKind, EntryKind};
use klaxon_saas::licence::{Edition, postpaid_licence_charge};
use rust_decimal::dec;

#[test]
fn every_entry_explains_itself_and_balances_come_from_entries() {
    // spec: SVC-085
    let mut b = book();
    b.receive_cash(at(2025, 1, 1, 9, 0), dec!(500.00), "topup-1", "owner")
        .unwrap();
    b.charge(
        at(2025, 1, 2, 9, 0),
        ChargeKind::Order,
        dec!(199.00),
        true,
        day(2025, 1, 2),
        "order-1",
        "owner",
    )
    .unwrap();
    for e in b.ledger().entries() {
        assert!(!e.explanation.is_empty());
        assert_eq!(e.currency, "CNY");
    }
    assert_eq!(b.ledger().cash(), dec!(301.00));
    assert!(b.ledger().check().is_empty());
    // Amounts must already be rounded to the minor unit: the ledger never rounds silently.
    let e = b
        .receive_cash(at(2025, 1, 3, 9, 0), dec!(1.005), "x", "owner")
        .unwrap_err();
    assert!(
        matches!(
            e,
            SaasError::Invalid {
                field: "amount",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn top_ups_reach_the_balance_only_after_debts() {
    // spec: SVC-086
    // spec: SVC-134
    let mut b = book();
    b.charge(
        at(2025, 1, 1, 0, 30),
        ChargeKind::Usage,
        dec!(10.00),
        true,
        day(2024, 12, 31),
        "s",
        "system",
    )
    .unwrap();
    let app = b
        .receive_cash(at(2025, 1, 1, 9, 0), dec!(100.00), "topup", "owner")
        .unwrap();
    assert_eq!(app.principal, dec!(10.00));
    assert_eq!(app.to_balance, dec!(90.00) - app.penalty);
}

#[test]
fn prepaid_orders_need_full_funds_and_never_become_debt() {
    // spec: SVC-100
    // spec: SVC-130 (prepaid orders never create overdue items)
    let mut b = book();
    b.receive_cash(at(2025, 1, 1, 9, 0), dec!(100.00), "t", "owner")
        .unwrap();
    let before = b.ledger().clone();
    let e = b
        .charge(
            at(2025, 1, 1, 10, 0),
            ChargeKind::Order,
            dec!(199.00),
            true,
            day(2025, 1, 1),
            "order",
            "owner",
        )
        .unwrap_err();
    assert!(matches!(e, SaasError::InsufficientFunds { .. }));
    assert_eq!(b.ledger(), &before);
    assert!(b.items().is_empty());
}

#[test]
fn daily_settlement_pays_bonus_then_cash_and_leaves_an_overdue_item() {
    // spec: SVC-121
    // spec: SVC-153 (eligible bonus first, earliest-expiring lot first)
    let mut b = book();
    let late = b
        .grant_bonus(
            at(2025, 1, 1, 0, 0),
            dec!(5.00),
            BonusSource::Campaign,
            BonusScope::OrdersAndUsage,
            Some(at(2025, 12, 1, 0, 0)),
            "c",
            "staff",
        )
        .unwrap();
    let early = b
        .grant_bonus(
            at(2025, 1, 1, 0, 0),
            dec!(3.00),
            BonusSource::OperatorGrant,
            BonusScope::OrdersAndUsage,
            Some(at(2025, 6, 1, 0, 0)),
            "g",
            "staff",
        )
        .unwrap();
    let orders_only = b
        .grant_bonus(
            at(2025, 1, 1, 0, 0),
            dec!(50.00),
            BonusSource::Campaign,
            BonusScope::OrdersOnly,
            Some(at(2025, 3, 1, 0, 0)),
            "o",
            "staff",
        )
        .unwrap();
    b.receive_cash(at(2025, 1, 1, 1, 0), dec!(10.00), "t", "owner")
        .unwrap();
    let out = b
        .charge(
            at(2025, 1, 2, 0, 30),
            ChargeKind::Usage,
            dec!(20.00),
            true,
            day(2025, 1, 2),
            "settlement-01-01",
            "system",
        )
        .unwrap();
    assert_eq!(out.bonus_paid, dec!(8.00));
    assert_eq!(out.cash_paid, dec!(10.00));
    assert_eq!(out.overdue.map(|o| o.1), Some(dec!(2.00)));
    assert_eq!(b.ledger().balance(Account::Bonus(early)), dec!(0));
    assert_eq!(b.ledger().balance(Account::Bonus(late)), dec!(0));
    assert_eq!(b.ledger().balance(Account::Bonus(orders_only)), dec!(50.00));
    assert_eq!(b.items()[0].due_date, day(2025, 1, 2));
}

#[test]
fn billing_actor_may_opt_out_of_bonus() {
    // spec: SVC-153 (unless the billing actor opts out on that order)
    let mut b = book();
    b.grant_bonus(
        at(2025, 1, 1, 0, 0),
        dec!(5.00),
        BonusSource::Campaign,
        BonusScope::OrdersAndUsage,
        None,
        "c",
        "staff",
    )
    .unwrap();
    b.receive_cash(at(2025, 1, 1, 1, 0), dec!(10.00), "t", "owner")
        .unwrap();
    let out = b
        .charge(
            at(2025, 1, 1, 2, 0),
            ChargeKind::Order,
            dec!(10.00),
            false,
            day(2025, 1, 1),
            "o",
            "owner",
        )
        .unwrap();
    assert_eq!((out.bonus_paid, out.cash_paid), (dec!(0), dec!(10.00)));
}

#[test]
fn postpaid_cycle_end_example() {
    // spec: SVC-122 (7 active × ¥219 = ¥1,533.00; ¥1,000 funds → ¥533.00 overdue)
    // spec: SVC-059
    let charge = postpaid_licence_charge(7, &[Edition::Standard, Edition::Pro], |e| match e {
        Edition::Pro => Some(dec!(219)),
        _ => Some(dec!(99)),
    })
    .unwrap();
    assert_eq!(charge, dec!(1533));
    let mut b = book();
    b.receive_cash(at(2025, 4, 1, 9, 0), dec!(1000.00), "t", "owner")
        .unwrap();
    let out = b
        .charge(
            at(2025, 4, 15, 0, 0),
            ChargeKind::LicenceCycle,
            charge,
            true,
            day(2025, 4, 15),
            "cycle-2025-03-15",
            "system",
        )
        .unwrap();
    assert_eq!(out.cash_paid, dec!(1000.00));
    assert_eq!(out.overdue, Some((1, dec!(533.00))));
    assert_eq!(b.ledger().debt_principal(), dec!(533.00));
}

#[test]
fn bonus_never_pays_penalties_nor_becomes_cash() {
    // spec: SVC-152
    // spec: SVC-153 (penalties: cash only)
    // spec: SVC-088 (withdrawal: cash, never bonus, minus debt)
    let mut b = book();
    b.charge(
        at(2025, 5, 1, 0, 30),
        ChargeKind::Usage,
        dec!(100.00),
        true,
        day(2025, 5, 1),
        "s",
        "system",
    )
    .unwrap();
    b.grant_bonus(
        at(2025, 5, 10, 0, 0),
        dec!(500.00),
        BonusSource::OperatorGrant,
        BonusScope::OrdersAndUsage,
        None,
        "g",
        "staff",
    )
    .unwrap();
    // Principal paid in cash; penalty stays owed although bonus is plentiful.
    b.receive_cash(at(2025, 5, 11, 9, 0), dec!(100.00), "p", "owner")
        .unwrap();
    assert_eq!(b.ledger().debt_penalty(), dec!(0.45)); // 05-02..05-10: 9 × 0.05
    assert_eq!(b.ledger().bonus_total(), dec!(500.00));
    for e in b.ledger().entries() {
        if matches!(e.from, Account::Bonus(_)) {
            assert!(matches!(e.to, Account::Sales | Account::Promotions));
        }
    }
    // Withdrawal: no cash → nothing, whatever the bonus.
    assert!(matches!(
        b.withdraw(at(2025, 5, 12, 9, 0), dec!(0.01), "w", "owner"),
        Err(SaasError::InsufficientFunds { .. })
    ));
    b.receive_cash(at(2025, 5, 12, 9, 0), dec!(50.00), "t", "owner")
        .unwrap();
    // 50 came in; 0.45 went to the penalty; 49.55 is withdrawable.
    assert!(
        b.withdraw(at(2025, 5, 12, 10, 0), dec!(49.56), "w", "owner")
            .is_err()
    );
    b.withdraw(at(2025, 5, 12, 10, 0), dec!(49.55), "w", "owner")
        .unwrap();
    assert_eq!(b.ledger().cash(), dec!(0));
}

#[test]
fn frozen_funds_block_withdrawals_and_spending_but_not_debt_payment() {
    // spec: SVC-089
    let mut b = book();
    b.charge(
        at(2025, 5, 1, 0, 30),
        ChargeKind::Usage,
        dec!(10.00),
        true,
        day(2025, 5, 1),
        "s",
        "system",
    )
    .unwrap();
    b.set_funds_frozen(true);
    let app = b
        .receive_cash(at(2025, 5, 1, 9, 0), dec!(100.00), "t", "owner")
        .unwrap();
    assert_eq!(app.principal, dec!(10.00));
    assert_eq!(
        b.withdraw(at(2025, 5, 1, 10, 0), dec!(1.00), "w", "owner"),
        Err(SaasError::FundsFrozen)
    );
    assert_eq!(
        b.charge(
            at(2025, 5, 1, 10, 0),
            ChargeKind::Order,
            dec!(1.00),
            true,
            day(2025, 5, 1),
            "o",
            "owner"
        )
        .map(|_| ()),
        Err(SaasError::FundsFrozen)
    );
}

#[test]
fn bonus_lots_expire_after_twelve_months_with_a_warning() {
    // spec: SVC-152 (default expiry grant + 12 months; notice 30 days before; bonus_expiry entry)
    let mut b = book();
    let lot = b
        .grant_bonus(
            at(2025, 3, 10, 15, 0),
            dec!(20.00),
            BonusSource::SlaCompensation,
            BonusScope::OrdersAndUsage,
            None,
            "claim-1",
            "staff",
        )
        .unwrap();
    let view = b.ledger().lots().into_iter().find(|l| l.id == lot).unwrap();
    assert_eq!(view.terms.expires_at, at(2026, 3, 10, 15, 0));
    assert!(b.lots_to_warn(at(2026, 2, 1, 0, 0)).unwrap().is_empty());
    assert_eq!(b.lots_to_warn(at(2026, 2, 9, 15, 0)).unwrap(), vec![lot]);
    assert_eq!(
        b.expire_bonus(at(2026, 3, 10, 14, 59), "job").unwrap(),
        dec!(0)
    );
    assert_eq!(
        b.expire_bonus(at(2026, 3, 10, 15, 0), "job").unwrap(),
        dec!(20.00)
    );
    assert_eq!(b.ledger().bonus_total(), dec!(0));
    assert_eq!(
        b.ledger().entries().last().unwrap().kind,
        EntryKind::BonusExpiry
    );
    // Expired bonus pays nothing.
    assert_eq!(
        b.available_funds(at(2026, 3, 11, 0, 0), ChargeKind::Order),
        dec!(0)
    );
}

#[test]
fn refunds_of_mixed_payments_split_back_into_cash_and_the_original_lot() {
    // spec: SVC-154
    // spec: SVC-155 (bonus share is not cash)
    let mut b = book();
    let lot = b
        .grant_bonus(
            at(2025, 1, 1, 0, 0),
            dec!(100.00),
            BonusSource::OperatorGrant,
            BonusScope::OrdersAndUsage,
            Some(at(2025, 12, 31, 0, 0)),
            "g",
            "staff",
        )
        .unwrap();
    b.receive_cash(at(2025, 1, 1, 1, 0), dec!(300.00), "t", "owner")
        .unwrap();
    let out = b
        .charge(
            at(2025, 1, 1, 2, 0),
            ChargeKind::Order,
            dec!(400.00),
            true,
            day(2025, 1, 1),
            "order-9",
            "owner",
        )
        .unwrap();
    assert_eq!(
        (out.bonus_paid, out.cash_paid),
        (dec!(100.00), dec!(300.00))
    );
    // Half refunded: 150 cash, 50 bonus back to the same lot with its expiry.
    b.refund(
        at(2025, 7, 1, 0, 0),
        dec!(150.00),
        &[(lot, dec!(50.00))],
        "order-9",
        "staff",
    )
    .unwrap();
    assert_eq!(b.ledger().cash(), dec!(150.00));
    let v = b.ledger().lots().into_iter().find(|l| l.id == lot).unwrap();
    assert_eq!(v.remaining, dec!(50.00));
    // Never more than was paid and not yet refunded.
    assert!(
        b.refund(at(2025, 7, 2, 0, 0), dec!(150.01), &[], "order-9", "staff")
            .is_err()
    );
    assert!(
        b.refund(
            at(2025, 7, 2, 0, 0),
            dec!(0),
            &[(lot, dec!(50.01))],
            "order-9",
            "staff"
        )
        .is_err()
    );
    assert!(
        b.refund(
            at(2025, 7, 2, 0, 0),
            dec!(1.00),
            &[],
            "other-order",
            "staff"
        )
        .is_err()
    );
    assert_eq!(v.terms.expires_at, at(2025, 12, 31, 0, 0));
}

#[test]
fn complimentary_items_and_promotions_are_worth_nothing_in_the_ledger() {
    // spec: SVC-150
    // spec: SVC-151
    let mut b = book();
    let id = b
        .complimentary(
            at(2025, 1, 1, 0, 0),
            "2 free licences for March",
            dec!(398.00),
            "staff",
        )
        .unwrap();
    let e = b.ledger().entry(id).unwrap();
    assert_eq!(e.amount, dec!(0));
    assert_eq!(e.list_value, Some(dec!(398.00)));
    assert_eq!(b.ledger().cash(), dec!(0));
    assert_eq!(
        b.available_funds(at(2025, 1, 2, 0, 0), ChargeKind::Order),
        dec!(0)
    );
    assert!(
        b.reverse(at(2025, 1, 2, 0, 0), id, "oops", "staff")
            .is_err()
    );
}

#[test]
fn mistakes_are_fixed_only_by_reversal_entries() {
    // spec: SVC-085 (reversal entries; nothing is edited)
    let mut b = book();
    let app = b
        .receive_cash(
            at(2025, 1, 1, 9, 0),
            dec!(100.00),
            "mistaken-transfer",
            "finance",
        )
        .unwrap();
    assert_eq!(app.to_balance, dec!(100.00));
    let top_up = b.ledger().entries()[0].id;
    assert!(
        b.reverse(at(2025, 1, 1, 10, 0), top_up, "", "finance")
            .is_err()
    );
    b.reverse(at(2025, 1, 1, 10, 0), top_up, "wrong tenant", "finance")
        .unwrap();
    assert_eq!(b.ledger().cash(), dec!(0));
    assert_eq!(b.ledger().entries().len(), 2);
    assert!(
        b.reverse(at(2025, 1, 1, 11, 0), top_up, "again", "finance")
            .is_err()
    );
    // A reversal that would make cash negative is refused.
    b.receive_cash(at(2025, 1, 2, 9, 0), dec!(50.00), "t2", "owner")
        .unwrap();
    b.charge(
        at(2025, 1, 2, 10, 0),
        ChargeKind::Order,
        dec!(50.00),
        true,
        day(2025, 1, 2),
        "o",
        "owner",
    )
    .unwrap();
    let t2 = b.ledger().entries()[2].id;
    assert!(matches!(
        b.reverse(at(2025, 1, 2, 11, 0), t2, "x", "finance"),
        Err(SaasError::InsufficientFunds { .. })
    ));
}

#[test]
fn entries_are_append_only_in_time() {
    // spec: SVC-085 (append-only)
    let mut b = book();
    b.receive_cash(at(2025, 1, 2, 9, 0), dec!(1.00), "t", "owner")
        .unwrap();
    assert!(matches!(
        b.receive_cash(at(2025, 1, 1, 9, 0), dec!(1.00), "t", "owner"),
        Err(SaasError::LedgerInvariant(_))
    ));
}
