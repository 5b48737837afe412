//! §5 communication quota.

mod common;

use common::at;
use klaxon_saas::money::Currency;
use klaxon_saas::quota::{
    AllowanceBasis, FundsCheck, Meter, Pack, ProviderOutcome, Source, UnitType, allowance_pool,
    counted_units, is_metered, overage_charge, voice_units,
};
use rust_decimal::dec;

#[test]
fn metered_units() {
    // spec: SVC-070
    assert_eq!(voice_units(true, 0), 1);
    assert_eq!(voice_units(true, 60), 1);
    assert_eq!(voice_units(true, 61), 2);
    assert_eq!(voice_units(true, 185), 4);
    assert_eq!(voice_units(false, 300), 0);
    assert_eq!(counted_units(ProviderOutcome::Accepted), 1);
    assert_eq!(counted_units(ProviderOutcome::Rejected), 0);
    assert_eq!(counted_units(ProviderOutcome::PlatformRetry), 0);
    assert_eq!(counted_units(ProviderOutcome::CallUnconnected), 0);
    assert_eq!(
        counted_units(ProviderOutcome::CallConnected { duration_secs: 90 }),
        2
    );
}

#[test]
fn pooled_allowance_example() {
    // spec: SVC-071 (10 licences → 200 SMS, 100 voice; +2 mid-cycle → 240, 120)
    let sms = allowance_pool(AllowanceBasis::Prepaid {
        per_licence: 20,
        largest_pool_in_cycle: 10,
    });
    let voice = allowance_pool(AllowanceBasis::Prepaid {
        per_licence: 10,
        largest_pool_in_cycle: 10,
    });
    assert_eq!((sms, voice), (200, 100));
    let mut meter = Meter::new(UnitType::Sms, sms);
    meter.raise_pool(allowance_pool(AllowanceBasis::Prepaid {
        per_licence: 20,
        largest_pool_in_cycle: 12,
    }));
    assert_eq!(meter.pool, 240);
    assert_eq!(
        allowance_pool(AllowanceBasis::Postpaid {
            per_licence: 20,
            active_so_far: 3
        }),
        60
    );
    assert_eq!(
        allowance_pool(AllowanceBasis::Fixed { allowance: 100 }),
        100
    );
}

#[test]
fn allowance_then_packs_by_expiry_then_overage_and_the_overage_example() {
    // spec: SVC-072
    // spec: SVC-073 (230 SMS against 200 at ¥0.10 → ¥3.00)
    let now = at(2025, 3, 10, 0, 0);
    let mut meter = Meter::new(UnitType::Sms, 200);
    let mut packs = vec![
        Pack {
            id: 1,
            unit: UnitType::Sms,
            remaining: 0,
            expires_at: at(2025, 12, 1, 0, 0),
        },
        Pack {
            id: 2,
            unit: UnitType::Voice,
            remaining: 50,
            expires_at: at(2025, 4, 1, 0, 0),
        },
    ];
    let sources: Vec<Source> = (0..230).map(|_| meter.consume(now, &mut packs)).collect();
    assert!(sources[..200].iter().all(|s| *s == Source::Allowance));
    assert!(sources[200..].iter().all(|s| *s == Source::Overage));
    assert_eq!(meter.overage, 30);
    assert_eq!(
        overage_charge(&[(meter.overage, dec!(0.10))], Currency::CNY),
        dec!(3.00)
    );
    let mut packs = vec![
        Pack {
            id: 7,
            unit: UnitType::Sms,
            remaining: 1,
            expires_at: at(2025, 12, 1, 0, 0),
        },
        Pack {
            id: 8,
            unit: UnitType::Sms,
            remaining: 1,
            expires_at: at(2025, 6, 1, 0, 0),
        },
        Pack {
            id: 9,
            unit: UnitType::Sms,
            remaining: 5,
            expires_at: at(2025, 3, 1, 0, 0),
        },
    ];
    let mut m2 = Meter::new(UnitType::Sms, 0);
    assert!(!m2.next_is_overage(now, &packs));
    assert_eq!(m2.consume(now, &mut packs), Source::Pack(8));
    assert_eq!(m2.consume(now, &mut packs), Source::Pack(7));
    assert!(m2.next_is_overage(now, &packs), "pack 9 expired");
    assert_eq!(m2.consume(now, &mut packs), Source::Overage);
}

#[test]
fn funds_check_reserves_and_skips() {
    // spec: SVC-074
    let mut f = FundsCheck {
        cash: dec!(0.25),
        eligible_bonus: dec!(0.10),
        unsettled: dec!(0.05),
        overdraft_limit: dec!(0),
        trial: false,
    };
    assert_eq!(f.available(), dec!(0.30));
    f.reserve(dec!(0.10)).unwrap();
    f.reserve(dec!(0.10)).unwrap();
    f.reserve(dec!(0.10)).unwrap();
    let e = f.reserve(dec!(0.10)).unwrap_err().to_string();
    assert!(e.contains("quota_exhausted"), "{e}");
    // A contract overdraft lets a few more through.
    f.overdraft_limit = dec!(0.10);
    f.reserve(dec!(0.10)).unwrap();
    // Trial tenants never incur overage, whatever their funds.
    let mut t = FundsCheck {
        cash: dec!(100),
        eligible_bonus: dec!(0),
        unsettled: dec!(0),
        overdraft_limit: dec!(0),
        trial: true,
    };
    assert_eq!(t.available(), dec!(0));
    assert!(t.reserve(dec!(0.10)).is_err());
}

#[test]
fn usage_notices_once_per_threshold() {
    // spec: SVC-075
    let now = at(2025, 3, 10, 0, 0);
    let mut meter = Meter::new(UnitType::Voice, 10);
    let mut seen = Vec::new();
    for _ in 0..12 {
        meter.consume(now, &mut []);
        seen.extend(meter.usage_notices());
    }
    assert_eq!(seen, [80, 100]);
}

#[test]
fn operator_messages_are_free() {
    // spec: SVC-076
    assert!(!is_metered(true, UnitType::Sms, dec!(0)));
    assert!(is_metered(false, UnitType::Sms, dec!(0)));
    assert!(!is_metered(false, UnitType::Email, dec!(0)));
    assert!(is_metered(false, UnitType::Email, dec!(0.01)));
}
