//! §16 termination and refunds; §13 buffer dates.

mod common;

use common::{at, day, tz};
use klaxon_saas::money::Currency;
use klaxon_saas::params::{CancelRefund, Params};
use klaxon_saas::refund::{
    PackPurchase, PrepaidCharge, StopCause, check_mutual_refund, pack_refund, pro_rata,
    refunds_unused_terms, total_cash,
};
use klaxon_saas::termination::{
    Buffer, BufferStart, check_adverse_change, check_breach_termination,
    check_operator_termination, refusal_end,
};
use rust_decimal::dec;

fn annual_example() -> Vec<PrepaidCharge> {
    vec![
        PrepaidCharge {
            reference: "annual".into(),
            start: day(2025, 1, 1),
            end: day(2026, 1, 1),
            cash_paid: dec!(19900.00),
            bonus_paid: vec![],
        },
        PrepaidCharge {
            reference: "add-on".into(),
            start: day(2025, 4, 1),
            end: day(2026, 1, 1),
            cash_paid: dec!(3598.36),
            bonus_paid: vec![],
        },
    ]
}

#[test]
fn pro_rata_refund_example() {
    // spec: SVC-234 (¥10,031.78 + ¥2,407.63 = ¥12,439.41)
    let r = pro_rata(day(2025, 7, 1), &annual_example(), Currency::CNY).unwrap();
    assert_eq!(
        (r[0].unused_days, r[0].term_days, r[0].cash),
        (184, 365, dec!(10031.78))
    );
    assert_eq!(
        (r[1].unused_days, r[1].term_days, r[1].cash),
        (184, 275, dec!(2407.63))
    );
    assert_eq!(total_cash(&r), dec!(12439.41));
}

#[test]
fn refund_edge_cases() {
    // spec: SVC-234 (a term not yet started is refunded in full; packs by unused units)
    // spec: SVC-154 (bonus share computed the same way, returned as bonus)
    // spec: SVC-151 (refund on cash actually paid after the promotion)
    let future = PrepaidCharge {
        reference: "renewal".into(),
        start: day(2026, 1, 1),
        end: day(2027, 1, 1),
        cash_paid: dec!(15000.00),
        bonus_paid: vec![(3, dec!(900.00))],
    };
    let r = pro_rata(day(2025, 7, 1), &[future], Currency::CNY).unwrap();
    assert_eq!(r[0].cash, dec!(15000.00));
    assert_eq!(r[0].bonus, vec![(3, dec!(900.00))]);
    let ended = PrepaidCharge {
        reference: "old".into(),
        start: day(2024, 1, 1),
        end: day(2025, 1, 1),
        cash_paid: dec!(1.00),
        bonus_paid: vec![],
    };
    assert_eq!(
        pro_rata(day(2025, 7, 1), &[ended], Currency::CNY).unwrap()[0].cash,
        dec!(0)
    );
    assert_eq!(
        pack_refund(
            &PackPurchase {
                cash_paid: dec!(100.00),
                total_units: 1000,
                unused_units: 333
            },
            Currency::CNY
        )
        .unwrap(),
        dec!(33.30)
    );
    assert!(
        pack_refund(
            &PackPurchase {
                cash_paid: dec!(100.00),
                total_units: 10,
                unused_units: 11
            },
            Currency::CNY
        )
        .is_err()
    );
}

#[test]
fn which_stops_refund_unused_terms() {
    // spec: SVC-235 (default none on customer cancel; operator setting pro_rata)
    // spec: SVC-232 (no refund on serious breach)
    // spec: SVC-233 (operator termination refunds)
    // spec: SVC-238 (paid feature removed)
    // spec: SVC-263 (extended outage)
    // spec: SVC-038 (material refusal before effect refunds; after = cancellation)
    let p = Params::cloud_defaults();
    assert!(!refunds_unused_terms(StopCause::CustomerCancel, &p));
    assert!(!refunds_unused_terms(StopCause::RefusedAfterEffect, &p));
    assert!(!refunds_unused_terms(StopCause::SeriousBreach, &p));
    for c in [
        StopCause::OperatorWithNotice,
        StopCause::PaidFeatureRemoved,
        StopCause::ExtendedOutage,
        StopCause::RefusedMaterialBeforeEffect,
    ] {
        assert!(refunds_unused_terms(c, &p), "{c:?}");
    }
    let pro = Params {
        refund_on_customer_cancel: CancelRefund::ProRata,
        ..Params::cloud_defaults()
    };
    assert!(refunds_unused_terms(StopCause::CustomerCancel, &pro));
}

#[test]
fn mutual_refund_is_bounded_by_unused_terms() {
    // spec: SVC-231
    let r = pro_rata(day(2025, 7, 1), &annual_example(), Currency::CNY).unwrap();
    assert!(check_mutual_refund(dec!(12439.41), dec!(0), &r).is_ok());
    assert!(check_mutual_refund(dec!(12439.42), dec!(0), &r).is_err());
    assert!(check_mutual_refund(dec!(0), dec!(0.01), &r).is_err());
}

#[test]
fn operator_termination_needs_thirty_days_notice() {
    // spec: SVC-233 (notice 2025-06-01 15:00 → earliest 2025-07-01 00:00)
    let p = Params::cloud_defaults();
    let tz = tz();
    assert!(
        check_operator_termination(at(2025, 6, 1, 15, 0), at(2025, 7, 1, 0, 0), &p, &tz).is_ok()
    );
    let e = check_operator_termination(at(2025, 6, 1, 15, 0), at(2025, 6, 30, 0, 0), &p, &tz)
        .unwrap_err();
    assert!(e.to_string().contains("SVC-233"));
    assert!(
        check_operator_termination(at(2025, 6, 1, 15, 0), at(2025, 7, 2, 9, 0), &p, &tz).is_err(),
        "00:00 only"
    );
}

#[test]
fn adverse_changes_need_notice_unless_the_law_says_otherwise() {
    // spec: SVC-238
    // spec: SVC-165 (charging for something free needs 30 days)
    let p = Params::cloud_defaults();
    let tz = tz();
    assert!(
        check_adverse_change(at(2025, 6, 1, 15, 0), at(2025, 6, 20, 0, 0), None, &p, &tz).is_err()
    );
    assert!(
        check_adverse_change(
            at(2025, 6, 1, 15, 0),
            at(2025, 6, 20, 0, 0),
            Some("regulator order 12"),
            &p,
            &tz
        )
        .is_ok()
    );
    assert!(
        check_adverse_change(at(2025, 6, 1, 15, 0), at(2025, 7, 1, 0, 0), None, &p, &tz).is_ok()
    );
}

#[test]
fn breach_termination_needs_two_staff() {
    // spec: SVC-232
    assert!(check_breach_termination("ann", "ann", &["ev-1".into()]).is_err());
    assert!(check_breach_termination("ann", "bo", &[]).is_err());
    assert!(check_breach_termination("ann", "bo", &["ev-1".into()]).is_ok());
}

#[test]
fn refusal_example_and_buffer() {
    // spec: SVC-038 (refusal 2025-08-10 → ends 2025-08-15 00:00; buffer until 2025-09-14 00:00)
    // spec: SVC-187
    let p = Params::cloud_defaults();
    let end = refusal_end(at(2025, 8, 10, 12, 0), at(2025, 8, 15, 0, 0));
    assert_eq!(end, at(2025, 8, 15, 0, 0));
    assert_eq!(
        Buffer::start(end, BufferStart::Normal, &p)
            .unwrap()
            .purge_at,
        at(2025, 9, 14, 0, 0)
    );
    // After effect: ends at once.
    assert_eq!(
        refusal_end(at(2025, 8, 20, 12, 0), at(2025, 8, 15, 0, 0)),
        at(2025, 8, 20, 12, 0)
    );
}

#[test]
fn buffer_end_example_and_triggers() {
    // spec: SVC-189 (term ends 2025-04-15 → purge 2025-05-15; notices 05-08 and 05-14)
    // spec: SVC-187 (a later trigger never moves the date; release-with-deletion brings it forward)
    // spec: SVC-186 (release: purge after the 24 h undo window)
    let p = Params::cloud_defaults();
    let b = Buffer::start(at(2025, 4, 15, 0, 0), BufferStart::Normal, &p).unwrap();
    assert_eq!(b.purge_at, at(2025, 5, 15, 0, 0));
    assert_eq!(
        b.warnings().unwrap(),
        [at(2025, 5, 8, 0, 0), at(2025, 5, 14, 0, 0)]
    );
    assert_eq!(
        b.later_trigger(at(2025, 4, 20, 0, 0), BufferStart::Normal, &p)
            .unwrap(),
        b
    );
    let fwd = b
        .later_trigger(
            at(2025, 4, 20, 9, 0),
            BufferStart::ReleaseDeleteAfterUndo,
            &p,
        )
        .unwrap();
    assert_eq!(fwd.purge_at, at(2025, 4, 21, 9, 0));
    let r = Buffer::start(
        at(2025, 4, 20, 9, 0),
        BufferStart::ReleaseDeleteAfterUndo,
        &p,
    )
    .unwrap();
    assert_eq!(r.purge_at, at(2025, 4, 21, 9, 0));
}

#[test]
fn new_charges_need_notice_to_recent_users() {
    // spec: SVC-165 (≥ 30 days after notice to every tenant that used the item in 90 days)
    use klaxon_saas::order::check_new_charge;
    use std::collections::BTreeMap;
    let p = Params::cloud_defaults();
    let tz = tz();
    let mut notices = BTreeMap::new();
    notices.insert(1u64, at(2025, 6, 1, 15, 0));
    assert!(check_new_charge(at(2025, 7, 1, 0, 0), &[1], &notices, true, &p, &tz).is_ok());
    assert!(check_new_charge(at(2025, 7, 1, 0, 0), &[1], &notices, false, &p, &tz).is_err());
    assert!(check_new_charge(at(2025, 6, 30, 0, 0), &[1], &notices, true, &p, &tz).is_err());
    let e = check_new_charge(at(2025, 7, 1, 0, 0), &[1, 2], &notices, true, &p, &tz).unwrap_err();
    assert!(e.to_string().contains("tenant 2"));
}

#[test]
fn paid_feature_removal_gives_thirty_days_to_leave() {
    // spec: SVC-238 (terminate within 30 days after effective_at, with a refund)
    use klaxon_saas::termination::feature_removal_termination_until;
    assert_eq!(
        feature_removal_termination_until(at(2025, 6, 1, 0, 0), &tz()).unwrap(),
        at(2025, 7, 2, 0, 0)
    );
}

#[test]
fn automatic_restrictions_lapse_after_72_hours() {
    // spec: SVC-236 (automatic flags expire after 72 h unless staff confirm)
    use klaxon_saas::termination::automatic_flag_active;
    let set = at(2025, 6, 1, 3, 0);
    assert!(automatic_flag_active(set, false, at(2025, 6, 4, 2, 59)).unwrap());
    assert!(!automatic_flag_active(set, false, at(2025, 6, 4, 3, 0)).unwrap());
    assert!(automatic_flag_active(set, true, at(2025, 7, 1, 0, 0)).unwrap());
}
