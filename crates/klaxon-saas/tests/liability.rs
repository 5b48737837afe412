//! §19 liability cap figure.

mod common;

use common::{at, book, day, tz};
use klaxon_saas::ledger::{BonusScope, BonusSource, ChargeKind};
use klaxon_saas::liability::figure;
use rust_decimal::dec;

#[test]
fn liability_figure_example() {
    // spec: SVC-300 (D = 2025-06-15 → ¥23,543.66; outside-window, bonus, penalty, unspent top-up excluded)
    // spec: SVC-301 (contributing entries and lifetime total)
    // spec: SVC-155 (bonus-paid amounts are not fees paid)
    let mut b = book();
    b.receive_cash(at(2024, 1, 1, 9, 0), dec!(18000.00), "t0", "owner")
        .unwrap();
    b.charge(
        at(2024, 1, 1, 9, 5),
        ChargeKind::Order,
        dec!(18000.00),
        true,
        day(2024, 1, 1),
        "annual-2024",
        "owner",
    )
    .unwrap();
    // A debt whose principal was paid before the window; its ¥3.30 penalty is paid inside it.
    b.charge(
        at(2024, 6, 1, 0, 30),
        ChargeKind::Usage,
        dec!(1000.00),
        true,
        day(2024, 5, 31),
        "usage-2024-05",
        "system",
    )
    .unwrap();
    b.receive_cash(at(2024, 6, 4, 15, 0), dec!(400.00), "p1", "owner")
        .unwrap();
    b.receive_cash(at(2024, 6, 10, 9, 0), dec!(600.00), "p2", "owner")
        .unwrap();
    assert_eq!(b.ledger().debt_penalty(), dec!(3.30));
    let app = b
        .receive_cash(at(2025, 1, 1, 9, 0), dec!(19903.30), "t1", "owner")
        .unwrap();
    assert_eq!(app.penalty, dec!(3.30));
    b.charge(
        at(2025, 1, 1, 9, 5),
        ChargeKind::Order,
        dec!(19900.00),
        false,
        day(2025, 1, 1),
        "annual-2025",
        "owner",
    )
    .unwrap();
    b.grant_bonus(
        at(2025, 3, 10, 0, 0),
        dec!(6.91),
        BonusSource::SlaCompensation,
        BonusScope::OrdersAndUsage,
        None,
        "claim",
        "staff",
    )
    .unwrap();
    b.receive_cash(at(2025, 4, 1, 9, 0), dec!(3598.36), "t2", "owner")
        .unwrap();
    b.charge(
        at(2025, 4, 1, 9, 5),
        ChargeKind::Order,
        dec!(3598.36),
        false,
        day(2025, 4, 1),
        "add-on",
        "owner",
    )
    .unwrap();
    b.charge(
        at(2025, 5, 2, 0, 30),
        ChargeKind::Usage,
        dec!(6.91),
        true,
        day(2025, 5, 2),
        "usage-05-01",
        "system",
    )
    .unwrap();
    b.receive_cash(at(2025, 5, 20, 9, 0), dec!(545.30), "t3", "owner")
        .unwrap();
    b.charge(
        at(2025, 5, 21, 0, 30),
        ChargeKind::Usage,
        dec!(45.30),
        true,
        day(2025, 5, 21),
        "usage-05-20",
        "system",
    )
    .unwrap();
    assert_eq!(b.ledger().cash(), dec!(500.00));
    let r = figure(b.ledger(), day(2025, 6, 15), 12, &tz()).unwrap();
    assert_eq!((r.from, r.to), (day(2024, 6, 15), day(2025, 6, 14)));
    assert_eq!(r.total, dec!(23543.66));
    assert_eq!(r.contributing.len(), 3);
    assert_eq!(r.lifetime, dec!(18000.00) + dec!(1000.00) + dec!(23543.66));
    // A cash refund inside the window lowers the figure.
    b.refund(
        at(2025, 6, 20, 0, 0),
        dec!(1000.00),
        &[],
        "annual-2025",
        "staff",
    )
    .unwrap();
    assert_eq!(
        figure(b.ledger(), day(2025, 7, 1), 12, &tz())
            .unwrap()
            .total,
        dec!(22543.66)
    );
}
