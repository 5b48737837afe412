//! §7 prepaid terms, cycles, renewals, reminders; §6 price list, quotes and orders.

mod common;

use common::{at, day, tz};
use jiff::civil::time;
use klaxon_saas::money::Currency;
use klaxon_saas::order::{
    LineInput, Order, OrderState, PaymentMethod, PriceListVersion, in_force_at, quote,
};
use klaxon_saas::params::Params;
use klaxon_saas::pricing::{
    Term, add_on_price, auto_renew_attempts, check_renewal_quantity, expiry_reminders,
    licence_cycle, upgrade_price,
};
use rust_decimal::dec;

#[test]
fn first_terms_and_anchored_renewals() {
    // spec: SVC-101 (all three examples)
    // spec: SVC-103 (a continuous renewal keeps the anchor)
    let tz = tz();
    let m = Term::first(at(2025, 3, 15, 14, 23), 1, &tz).unwrap();
    assert_eq!(m.ends_at, at(2025, 4, 15, 0, 0));
    assert_eq!(m.term_days, 31);
    let y = Term::first(at(2025, 1, 1, 9, 0), 12, &tz).unwrap();
    assert_eq!(y.ends_at, at(2026, 1, 1, 0, 0));
    assert_eq!(y.term_days, 365);
    let t1 = Term::first(at(2025, 1, 31, 8, 0), 1, &tz).unwrap();
    assert_eq!(t1.end_date, day(2025, 3, 1));
    let t2 = t1.renewal(at(2025, 2, 20, 8, 0), 1, &tz).unwrap();
    assert_eq!((t2.starts_at, t2.end_date), (t1.ends_at, day(2025, 3, 31)));
    let t3 = t2.renewal(at(2025, 3, 30, 8, 0), 1, &tz).unwrap();
    assert_eq!(t3.end_date, day(2025, 5, 1));
    assert_eq!(t3.anchor, day(2025, 1, 31));
    assert!(Term::first(at(2025, 1, 1, 0, 0), 0, &tz).is_err());
}

#[test]
fn late_renewal_starts_a_new_anchor_and_the_gap_is_free() {
    // spec: SVC-107
    // spec: SVC-103 (paid at or after ends_at: late renewal)
    let tz = tz();
    let t = Term::first(at(2025, 3, 15, 14, 23), 1, &tz).unwrap();
    let late = t.renewal(at(2025, 4, 20, 9, 0), 1, &tz).unwrap();
    assert_eq!(late.starts_at, at(2025, 4, 20, 9, 0));
    assert_eq!(late.anchor, day(2025, 4, 20));
    assert_eq!(late.ends_at, at(2025, 5, 20, 0, 0));
    // Paid between the deadline and ends_at: still seamless.
    let deadline = t.seamless_deadline(24).unwrap();
    assert_eq!(deadline, at(2025, 4, 14, 0, 0));
    let seamless = t.renewal(at(2025, 4, 14, 23, 0), 12, &tz).unwrap();
    assert_eq!(seamless.starts_at, t.ends_at);
    assert_eq!(seamless.end_date, day(2026, 4, 15));
}

#[test]
fn cycles_inside_terms_and_licence_cycles() {
    // spec: SVC-056 (paid 2025-03-15 14:23 → [03-15 14:23, 04-15 00:00), [04-15, 05-15))
    // spec: SVC-102 (an annual term has 12 cycles)
    let tz = tz();
    assert_eq!(
        licence_cycle(at(2025, 3, 15, 14, 23), 0, &tz).unwrap(),
        (at(2025, 3, 15, 14, 23), at(2025, 4, 15, 0, 0))
    );
    assert_eq!(
        licence_cycle(at(2025, 3, 15, 14, 23), 1, &tz).unwrap(),
        (at(2025, 4, 15, 0, 0), at(2025, 5, 15, 0, 0))
    );
    let y = Term::first(at(2025, 1, 31, 9, 0), 12, &tz).unwrap();
    assert_eq!(
        y.cycle(0, &tz).unwrap(),
        (at(2025, 1, 31, 9, 0), at(2025, 3, 1, 0, 0))
    );
    assert_eq!(
        y.cycle(1, &tz).unwrap(),
        (at(2025, 3, 1, 0, 0), at(2025, 3, 31, 0, 0))
    );
    assert_eq!(y.cycle(11, &tz).unwrap().1, y.ends_at);
    assert!(y.cycle(12, &tz).is_err());
}

#[test]
fn expiry_reminders_on_the_five_days_before_at_ten() {
    // spec: SVC-105 (ends_at 2025-04-15 → 04-10 … 04-14 at 10:00; fewer days when late)
    let tz = tz();
    let p = Params::cloud_defaults();
    let r = expiry_reminders(
        at(2025, 4, 15, 0, 0),
        p.expiry_reminder_days,
        p.reminder_time,
        at(2025, 3, 15, 14, 23),
        &tz,
    )
    .unwrap();
    assert_eq!(
        r,
        vec![
            at(2025, 4, 10, 10, 0),
            at(2025, 4, 11, 10, 0),
            at(2025, 4, 12, 10, 0),
            at(2025, 4, 13, 10, 0),
            at(2025, 4, 14, 10, 0)
        ]
    );
    let r = expiry_reminders(
        at(2025, 4, 15, 0, 0),
        5,
        time(10, 0, 0, 0),
        at(2025, 4, 12, 11, 0),
        &tz,
    )
    .unwrap();
    assert_eq!(r, vec![at(2025, 4, 13, 10, 0), at(2025, 4, 14, 10, 0)]);
}

#[test]
fn auto_renew_runs_at_the_deadline_then_every_six_hours() {
    // spec: SVC-104
    let t = Term::first(at(2025, 3, 15, 14, 23), 1, &tz()).unwrap();
    let a = auto_renew_attempts(&t, 24).unwrap();
    assert_eq!(
        a,
        vec![
            at(2025, 4, 14, 0, 0),
            at(2025, 4, 14, 6, 0),
            at(2025, 4, 14, 12, 0),
            at(2025, 4, 14, 18, 0)
        ]
    );
}

#[test]
fn add_on_example_and_upgrade_price() {
    // spec: SVC-061 (199 × 2 × 14 / 31 = 179.7419… → ¥179.74)
    // spec: SVC-060
    let t = Term::first(at(2025, 3, 15, 14, 23), 1, &tz()).unwrap();
    assert_eq!(t.remaining_days(day(2025, 4, 1)).unwrap(), 14);
    assert_eq!(
        add_on_price(&t, dec!(199), 2, day(2025, 4, 1), Currency::CNY).unwrap(),
        dec!(179.74)
    );
    // Standard 99 → Pro 199 for 10 licences with 14 of 31 days left: 100 × 10 × 14 / 31.
    assert_eq!(
        upgrade_price(&t, dec!(99), dec!(199), 10, day(2025, 4, 1), Currency::CNY).unwrap(),
        dec!(451.61)
    );
    assert!(upgrade_price(&t, dec!(199), dec!(99), 10, day(2025, 4, 1), Currency::CNY).is_err());
    assert!(add_on_price(&t, dec!(199), 0, day(2025, 4, 1), Currency::CNY).is_err());
    // The annual add-on of the SVC-234 example: 2,388 × 2 × 275 / 365 = ¥3,598.36.
    let y = Term::first(at(2025, 1, 1, 9, 0), 12, &tz()).unwrap();
    assert_eq!(
        add_on_price(&y, dec!(2388), 2, day(2025, 4, 1), Currency::CNY).unwrap(),
        dec!(3598.36)
    );
}

#[test]
fn renewal_quantity_cannot_drop_below_fixed_assignments() {
    // spec: SVC-061 (refused with the list of assignments to revoke)
    let fixed = vec!["alice".to_string(), "bob".to_string(), "carol".to_string()];
    assert!(check_renewal_quantity(3, &fixed).is_ok());
    let e = check_renewal_quantity(2, &fixed).unwrap_err().to_string();
    assert!(
        e.contains("SVC-061") && e.contains("alice, bob, carol"),
        "{e}"
    );
}

#[test]
fn quotes_round_each_line_once_and_promotions_stay_on_their_line() {
    // spec: SVC-082
    // spec: SVC-151 (a promotion is a reduction on specific lines of one order)
    let q = quote(
        "cn-2025-01",
        &[
            LineInput {
                sku: "pro-annual".into(),
                unit_price: dec!(2388),
                quantity: dec!(10),
                factor: dec!(1),
                promotion_fraction: None,
                promotion_amount: Some(dec!(3980)),
            },
            LineInput {
                sku: "sms-pack".into(),
                unit_price: dec!(0.0333),
                quantity: dec!(1000),
                factor: dec!(1),
                promotion_fraction: Some(dec!(0.1)),
                promotion_amount: None,
            },
        ],
        Currency::CNY,
    )
    .unwrap();
    assert_eq!(q.lines[0].total, dec!(19900.00));
    assert_eq!(q.lines[0].discount, dec!(3980.00));
    // 33.30 × 0.9 = 29.97
    assert_eq!(q.lines[1].total, dec!(29.97));
    assert_eq!(q.total, dec!(19929.97));
    assert!(quote("x", &[], Currency::CNY).is_err());
    let bad = LineInput {
        sku: "x".into(),
        unit_price: dec!(1),
        quantity: dec!(0),
        factor: dec!(1),
        promotion_fraction: None,
        promotion_amount: None,
    };
    assert!(
        quote("x", &[bad], Currency::CNY)
            .unwrap_err()
            .to_string()
            .contains("quantity")
    );
}

#[test]
fn price_lists_are_versioned_and_renewals_use_the_price_at_payment() {
    // spec: SVC-080
    // spec: SVC-081
    let v1 = PriceListVersion {
        id: "v1".into(),
        published_at: at(2024, 1, 1, 0, 0),
        effective_at: at(2024, 1, 1, 0, 0),
        items: vec![("pro-monthly".into(), dec!(199))],
    };
    let v2 = PriceListVersion {
        id: "v2".into(),
        published_at: at(2025, 5, 1, 0, 0),
        effective_at: at(2025, 6, 1, 0, 0),
        items: vec![("pro-monthly".into(), dec!(219))],
    };
    let all = [v1.clone(), v2.clone()];
    assert_eq!(
        in_force_at(&all, at(2025, 5, 31, 23, 59))
            .unwrap()
            .price("pro-monthly"),
        Some(dec!(199))
    );
    assert_eq!(in_force_at(&all, at(2025, 6, 1, 0, 0)).unwrap().id, "v2");
    let mut bad = v2;
    bad.items.push(("x".into(), dec!(0.00001)));
    assert!(bad.validate().is_err());
    assert!(v1.validate().is_ok());
}

#[test]
fn orders_expire_and_payments_post_surplus_to_cash() {
    // spec: SVC-083 (24 h; bank transfer 7 days)
    // spec: SVC-084 (overpayment surplus to cash; underpayment stays pending, money to cash)
    let p = Params::cloud_defaults();
    let q = quote(
        "v1",
        &[LineInput {
            sku: "pro-monthly".into(),
            unit_price: dec!(199),
            quantity: dec!(5),
            factor: dec!(1),
            promotion_fraction: None,
            promotion_amount: None,
        }],
        Currency::CNY,
    )
    .unwrap();
    let mut o = Order::submit(1, q.clone(), PaymentMethod::Gateway, at(2025, 3, 1, 10, 0));
    assert_eq!(o.expires_at(&p).unwrap(), at(2025, 3, 2, 10, 0));
    let under = o
        .post_payment(at(2025, 3, 1, 11, 0), dec!(500.00), &p)
        .unwrap();
    assert!(!under.paid);
    assert_eq!(under.to_cash, dec!(500.00));
    assert_eq!(o.state, OrderState::PendingPayment);
    let over = o
        .post_payment(at(2025, 3, 1, 12, 0), dec!(1000.00), &p)
        .unwrap();
    assert!(over.paid);
    assert_eq!(over.to_cash, dec!(5.00));
    assert_eq!(o.paid_at, Some(at(2025, 3, 1, 12, 0)));
    o.fulfil().unwrap();
    let mut bank = Order::submit(2, q, PaymentMethod::BankTransfer, at(2025, 3, 1, 10, 0));
    assert_eq!(bank.expires_at(&p).unwrap(), at(2025, 3, 8, 10, 0));
    assert!(!bank.expire_if_due(at(2025, 3, 8, 9, 59), &p).unwrap());
    assert!(bank.expire_if_due(at(2025, 3, 8, 10, 0), &p).unwrap());
    assert_eq!(bank.state, OrderState::Expired);
    // The frozen quote is not honoured afterwards: the money becomes cash.
    let r = bank
        .post_payment(at(2025, 3, 9, 0, 0), dec!(995.00), &p)
        .unwrap();
    assert!(!r.paid);
    assert_eq!(r.to_cash, dec!(995.00));
}
