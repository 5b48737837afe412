//! Property tests of the ledger invariants (SVC-085, SVC-134, SVC-150 … SVC-154).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{at, book};
use jiff::{SignedDuration, Timestamp};
use klaxon_saas::book::Book;
use klaxon_saas::ledger::{Account, BonusScope, BonusSource, ChargeKind, EntryKind, Ledger};
use proptest::prelude::*;
use rust_decimal::Decimal;

#[derive(Debug, Clone)]
enum Op {
    Cash(i64),
    Charge(u8, i64, bool),
    Grant(i64, u8, i64),
    Expire,
    Withdraw(i64),
    Refund(i64, i64),
    PostPenalties,
    Waive(u64, i64),
    WriteOff(u64),
    Reverse(u64),
    Freeze(bool),
}

fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0i64..50_000).prop_map(Op::Cash),
        (0u8..3, 0i64..50_000, any::<bool>()).prop_map(|(k, a, b)| Op::Charge(k, a, b)),
        (0i64..20_000, 0u8..3, 1i64..400).prop_map(|(a, s, d)| Op::Grant(a, s, d)),
        Just(Op::Expire),
        (0i64..50_000).prop_map(Op::Withdraw),
        (0i64..20_000, 0i64..5_000).prop_map(|(c, b)| Op::Refund(c, b)),
        Just(Op::PostPenalties),
        (1u64..6, 0i64..500).prop_map(|(i, a)| Op::Waive(i, a)),
        (1u64..6).prop_map(Op::WriteOff),
        (1u64..40).prop_map(Op::Reverse),
        any::<bool>().prop_map(Op::Freeze),
    ]
}

/// Balances recomputed independently of the ledger's own code.
fn fold(ledger: &Ledger, acct: Account) -> Decimal {
    let mut b = Decimal::ZERO;
    for e in ledger.entries() {
        if e.to == acct {
            b += e.amount;
        }
        if e.from == acct {
            b -= e.amount;
        }
    }
    b
}

fn apply(b: &mut Book, now: Timestamp, op: &Op) -> bool {
    let d = klaxon_saas::calendar::date_of(now, &common::tz());
    let r = match op {
        Op::Cash(c) => b.receive_cash(now, cents(*c), "cash", "t").map(|_| ()),
        Op::Charge(k, a, use_bonus) => {
            let kind = [
                ChargeKind::Order,
                ChargeKind::Usage,
                ChargeKind::LicenceCycle,
            ][*k as usize];
            b.charge(now, kind, cents(*a), *use_bonus, d, "charge", "t")
                .map(|_| ())
        }
        Op::Grant(a, s, days) => {
            let scope = [
                BonusScope::OrdersAndUsage,
                BonusScope::OrdersOnly,
                BonusScope::UsageOnly,
            ][*s as usize];
            let exp = now
                .checked_add(SignedDuration::from_hours(24 * days))
                .unwrap();
            b.grant_bonus(
                now,
                cents(*a),
                BonusSource::Campaign,
                scope,
                Some(exp),
                "g",
                "staff",
            )
            .map(|_| ())
        }
        Op::Expire => b.expire_bonus(now, "job").map(|_| ()),
        Op::Withdraw(c) => b.withdraw(now, cents(*c), "w", "owner").map(|_| ()),
        Op::Refund(c, bonus) => {
            let lots: Vec<_> = b
                .ledger()
                .lots()
                .iter()
                .map(|l| (l.id, cents(*bonus)))
                .take(1)
                .collect();
            b.refund(now, cents(*c), &lots, "charge", "staff")
        }
        Op::PostPenalties => b.post_penalties(now, d, "statement").map(|_| ()),
        Op::Waive(i, a) => b.waive_penalty(now, *i, cents(*a), "goodwill", "fin"),
        Op::WriteOff(i) => b.write_off(now, *i, "bad debt", "fin").map(|_| ()),
        Op::Reverse(id) => b.reverse(now, *id, "fix", "fin").map(|_| ()),
        Op::Freeze(f) => {
            b.set_funds_frozen(*f);
            Ok(())
        }
    };
    r.is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn ledger_invariants_hold_after_any_sequence(ops in proptest::collection::vec((op(), 0i64..72), 1..40)) {
        // spec: SVC-085 (balances are derived from entries; nightly check finds nothing)
        // spec: SVC-152 (bonus never withdrawn, never cash, never pays penalties)
        // spec: SVC-153 (penalties: cash only)
        // spec: SVC-150 (complimentary items and promotions never become cash)
        let mut b = book();
        let mut now = at(2025, 1, 1, 0, 0);
        for (op, hours) in &ops {
            now = now.checked_add(SignedDuration::from_hours(*hours)).unwrap();
            let before_entries = b.ledger().clone();
            let before_items = b.items().to_vec();
            let ok = apply(&mut b, now, op);
            if !ok {
                // A refusal changes nothing.
                prop_assert_eq!(b.ledger(), &before_entries);
                prop_assert_eq!(b.items(), &before_items[..]);
            }
            let l = b.ledger();
            prop_assert!(l.check().is_empty(), "{:?}", l.check());
            // Balances always equal the sum of entries.
            prop_assert_eq!(l.cash(), fold(l, Account::Cash));
            prop_assert_eq!(l.debt_principal(), -fold(l, Account::Receivable));
            prop_assert_eq!(l.debt_penalty(), -fold(l, Account::PenaltyReceivable));
            let lots: Decimal = l.lots().iter().map(|x| fold(l, Account::Bonus(x.id))).sum();
            prop_assert_eq!(l.bonus_total(), lots);
            // Cash never negative; receivables never credit.
            prop_assert!(l.cash() >= Decimal::ZERO);
            prop_assert!(l.debt_principal() >= Decimal::ZERO);
            prop_assert!(l.debt_penalty() >= Decimal::ZERO);
            // Overdue items agree with the receivable.
            let unpaid: Decimal = b.items().iter().map(|i| i.unpaid_principal()).sum();
            prop_assert_eq!(unpaid, l.debt_principal());
            for e in l.entries() {
                // Bonus flows only to sales (service) or back to promotions (expiry).
                if let Account::Bonus(_) = e.from {
                    prop_assert!(matches!(e.to, Account::Sales | Account::Promotions), "{:?}", e);
                }
                // Penalties are paid by cash (or waived/written off by the operator).
                if e.to == Account::PenaltyReceivable {
                    prop_assert!(matches!(e.from, Account::Cash | Account::Losses), "{:?}", e);
                }
                // Nothing but bonus grants leaves promotions; complimentary memos are 0.
                if e.from == Account::Promotions {
                    prop_assert!(matches!(e.to, Account::Bonus(_) | Account::Promotions), "{:?}", e);
                }
                if e.kind == EntryKind::Complimentary {
                    prop_assert!(e.amount.is_zero());
                }
                // Money leaves to the world only from cash.
                if e.to == Account::World {
                    prop_assert_eq!(e.from, Account::Cash);
                }
                prop_assert!(e.amount >= Decimal::ZERO);
                prop_assert!(e.amount.normalize().scale() <= 2);
            }
        }
    }

    #[test]
    fn cash_application_order_is_principal_then_penalty_then_balance(
        debts in proptest::collection::vec(1i64..100_000, 1..4),
        days in 1i64..60,
        pay in 1i64..300_000,
    ) {
        // spec: SVC-134
        let mut b = book();
        let mut now = at(2025, 1, 1, 0, 30);
        for (n, c) in debts.iter().enumerate() {
            let d = klaxon_saas::calendar::date_of(now, &common::tz());
            b.charge(now, ChargeKind::Usage, cents(*c), true, d, &format!("s{n}"), "system").unwrap();
            now = now.checked_add(SignedDuration::from_hours(24)).unwrap();
        }
        now = now.checked_add(SignedDuration::from_hours(24 * days)).unwrap();
        let principal_before = b.ledger().debt_principal();
        let app = b.receive_cash(now, cents(pay), "p", "owner").unwrap();
        prop_assert_eq!(app.principal + app.penalty + app.to_balance, cents(pay));
        prop_assert_eq!(app.principal, principal_before.min(cents(pay)));
        if app.penalty > Decimal::ZERO {
            prop_assert_eq!(b.ledger().debt_principal(), Decimal::ZERO);
        }
        if app.to_balance > Decimal::ZERO {
            prop_assert_eq!(b.ledger().debt_penalty(), Decimal::ZERO);
            prop_assert_eq!(b.ledger().debt_principal(), Decimal::ZERO);
        }
        // Older items are paid before younger ones.
        let items = b.items();
        for j in 0..items.len() {
            if items[j].unpaid_principal() < items[j].principal {
                for older in &items[..j] {
                    prop_assert!(older.unpaid_principal().is_zero());
                }
            }
        }
    }
}
