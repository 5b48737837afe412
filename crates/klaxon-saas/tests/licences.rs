//! §4 editions, licences, active users; §11 trial.

mod common;

use std::collections::BTreeMap;

use common::at;
use klaxon_saas::SaasError;
use klaxon_saas::licence::{
    Action, Actor, Edition, Grant, Kind, LicencePool, PoolBasis, PoolSize,
    chargeable_active_members, pool_size,
};
use klaxon_saas::mode::{DeploymentMode, Regime};
use klaxon_saas::params::Params;
use klaxon_saas::state::{EndReason, ServiceState};
use klaxon_saas::trial::{Trial, at_trial_end};

fn cloud() -> Regime {
    Regime::for_new_tenant(DeploymentMode::Cloud)
}

fn m(s: &str) -> Actor {
    Actor::Member(s.into())
}

#[test]
fn worked_licence_example() {
    // spec: SVC-057
    // spec: SVC-053 (active = held a licence at any moment of the cycle)
    // spec: SVC-054 (revoking frees at once; still active this cycle)
    // spec: SVC-055 (temporary licences, NoLicense, released at cycle end)
    // spec: SVC-058 (admins told once per cycle that someone was refused)
    let mut pool = LicencePool::new(PoolSize::Limited(5), cloud(), true);
    let t = at(2025, 3, 20, 9, 0);
    pool.assign_fixed("alice", t).unwrap();
    pool.assign_fixed("bob", t).unwrap();
    assert_eq!(
        pool.authorize(&m("carol"), Action::Licensed, t).unwrap(),
        Grant::Temporary
    );
    assert_eq!(pool.in_use(), 3);
    assert_eq!(
        pool.authorize(&m("dan"), Action::Licensed, t).unwrap(),
        Grant::Temporary
    );
    assert_eq!(
        pool.authorize(&m("erin"), Action::Licensed, t).unwrap(),
        Grant::Temporary
    );
    assert_eq!(pool.free(), Some(0));
    let e = pool
        .authorize(&m("frank"), Action::Licensed, t)
        .unwrap_err();
    assert_eq!(e, SaasError::NoLicense { capacity: 5 });
    assert!(e.to_string().starts_with("NoLicense"));
    assert!(pool.shortage_seen());
    assert!(pool.release("bob"));
    assert_eq!(
        pool.authorize(&m("frank"), Action::Licensed, at(2025, 3, 21, 9, 0))
            .unwrap(),
        Grant::Temporary
    );
    let report = pool.end_cycle();
    let names: Vec<_> = report.iter().map(|a| a.member.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol", "dan", "erin", "frank"]);
    assert_eq!(
        report
            .iter()
            .find(|a| a.member == "frank")
            .unwrap()
            .first_licensed_action,
        Some(at(2025, 3, 21, 9, 0))
    );
    // Temporary licences are gone; Alice keeps her fixed one into the next cycle.
    assert_eq!(pool.holder("carol"), None);
    assert_eq!(pool.holder("alice"), Some(Kind::Fixed));
    assert_eq!(pool.in_use(), 1);
    assert!(!pool.shortage_seen());
}

#[test]
fn receiving_notifications_and_tenant_keys_need_no_licence() {
    // spec: SVC-052
    let mut pool = LicencePool::new(PoolSize::Limited(0), cloud(), true);
    assert_eq!(
        pool.authorize(&m("x"), Action::Unlicensed, at(2025, 1, 1, 0, 0))
            .unwrap(),
        Grant::NotNeeded
    );
    assert_eq!(
        pool.authorize(&Actor::TenantKey, Action::Licensed, at(2025, 1, 1, 0, 0))
            .unwrap(),
        Grant::NotNeeded
    );
    assert!(pool.end_cycle().is_empty(), "nobody became active");
}

#[test]
fn last_licence_goes_to_exactly_one_member() {
    // spec: SVC-055 (two members racing for the last licence: exactly one succeeds)
    let mut pool = LicencePool::new(PoolSize::Limited(1), cloud(), true);
    let a = pool.authorize(&m("a"), Action::Licensed, at(2025, 1, 1, 0, 0));
    let b = pool.authorize(&m("b"), Action::Licensed, at(2025, 1, 1, 0, 0));
    assert!(a.is_ok() ^ b.is_ok());
    // Without auto-assignment the action is refused even with a free licence.
    let mut manual = LicencePool::new(PoolSize::Limited(3), cloud(), false);
    assert!(
        manual
            .authorize(&m("a"), Action::Licensed, at(2025, 1, 1, 0, 0))
            .is_err()
    );
    manual.assign_temporary("a", at(2025, 1, 1, 0, 0)).unwrap();
    assert_eq!(
        manual
            .authorize(&m("a"), Action::Licensed, at(2025, 1, 1, 0, 0))
            .unwrap(),
        Grant::AlreadyHeld
    );
}

#[test]
fn pool_sizes_by_billing_situation() {
    // spec: SVC-051
    // spec: SVC-050 (SLA eligibility by edition)
    assert_eq!(
        pool_size(PoolBasis::Prepaid {
            licences_in_force: 12
        }),
        PoolSize::Limited(12)
    );
    assert_eq!(
        pool_size(PoolBasis::Postpaid { cap: None }),
        PoolSize::Unlimited
    );
    assert_eq!(
        pool_size(PoolBasis::Postpaid { cap: Some(30) }),
        PoolSize::Limited(30)
    );
    assert_eq!(
        pool_size(PoolBasis::Trial {
            trial_licences: Params::cloud_defaults().trial_licences
        }),
        PoolSize::Limited(50)
    );
    assert_eq!(
        pool_size(PoolBasis::Free { edition_limit: 5 }),
        PoolSize::Limited(5)
    );
    assert!(Edition::Pro.sla_eligible() && Edition::Standard.sla_eligible());
    assert!(!Edition::Trial.sla_eligible() && !Edition::Free.sla_eligible());
    let mut pool = LicencePool::new(PoolSize::Limited(2), cloud(), true);
    pool.assign_fixed("a", at(2025, 1, 1, 0, 0)).unwrap();
    pool.assign_fixed("b", at(2025, 1, 1, 0, 0)).unwrap();
    assert!(pool.resize(PoolSize::Limited(1)).is_err());
    pool.resize(PoolSize::Limited(4)).unwrap();
    assert_eq!(pool.free(), Some(2));
}

#[test]
fn exempt_tenants_license_everyone_but_still_report_active_users() {
    // spec: SVC-402
    let mut pool = LicencePool::new(
        PoolSize::Limited(1),
        Regime::for_new_tenant(DeploymentMode::SelfHosted),
        true,
    );
    for who in ["a", "b", "c"] {
        assert_eq!(
            pool.authorize(&m(who), Action::Licensed, at(2025, 1, 1, 0, 0))
                .unwrap(),
            Grant::AlreadyHeld
        );
    }
    assert_eq!(pool.size(), PoolSize::Unlimited);
    assert_eq!(pool.end_cycle().len(), 3);
}

#[test]
fn licences_held_only_while_not_serving_are_not_charged() {
    // spec: SVC-059 (edge case: held only while suspended or ended)
    let serving = [(at(2025, 3, 1, 0, 0), at(2025, 3, 10, 0, 0))];
    let mut h = BTreeMap::new();
    h.insert(
        "a".to_string(),
        vec![(at(2025, 3, 5, 0, 0), at(2025, 3, 6, 0, 0))],
    );
    h.insert(
        "b".to_string(),
        vec![(at(2025, 3, 12, 0, 0), at(2025, 3, 20, 0, 0))],
    );
    let c = chargeable_active_members(&h, &serving);
    assert_eq!(c.into_iter().collect::<Vec<_>>(), ["a"]);
    assert!(
        chargeable_active_members(&h, &[]).is_empty(),
        "a cycle spent suspended costs nothing"
    );
}

#[test]
fn downgrade_to_free_releases_temporaries_then_newest_fixed() {
    // spec: SVC-106 (licences above the Free limit are released)
    let mut pool = LicencePool::new(PoolSize::Limited(5), cloud(), true);
    pool.assign_fixed("old", at(2025, 1, 1, 0, 0)).unwrap();
    pool.assign_fixed("new", at(2025, 2, 1, 0, 0)).unwrap();
    pool.authorize(&m("temp"), Action::Licensed, at(2025, 3, 1, 0, 0))
        .unwrap();
    let released = pool.shrink_to(1);
    assert_eq!(released, ["temp", "new"]);
    assert_eq!(pool.holder("old"), Some(Kind::Fixed));
}

#[test]
fn trial_lasts_exactly_fourteen_days_and_extensions_are_capped() {
    // spec: SVC-160 (created 2025-05-01 15:00 → ends 2025-05-15 15:00)
    // spec: SVC-161
    let p = Params::cloud_defaults();
    let mut t = Trial::start(at(2025, 5, 1, 15, 0), &p, false, false).unwrap();
    assert_eq!(t.ends_at().unwrap(), at(2025, 5, 15, 15, 0));
    // Reminders 05-10 … 05-14 at 10:00 (SVC-105 applies to trials).
    let r = klaxon_saas::pricing::expiry_reminders(
        t.ends_at().unwrap(),
        5,
        p.reminder_time,
        at(2025, 5, 1, 15, 0),
        &common::tz(),
    )
    .unwrap();
    assert_eq!(r.first(), Some(&at(2025, 5, 10, 10, 0)));
    assert_eq!(r.last(), Some(&at(2025, 5, 14, 10, 0)));
    assert_eq!(
        t.extend(30, "evaluation", "staff-1", &p).unwrap(),
        at(2025, 6, 14, 15, 0)
    );
    let e = t.extend(17, "more", "staff-1", &p).unwrap_err();
    assert!(e.to_string().contains("SVC-161"), "{e}");
    assert!(t.extend(16, "", "staff-1", &p).is_err());
    t.extend(16, "last", "staff-2", &p).unwrap();
    assert_eq!(t.total_days(), 60);
    assert!(Trial::start(at(2025, 5, 1, 15, 0), &p, true, true).is_err());
    assert!(Trial::start(at(2025, 5, 1, 15, 0), &p, true, false).is_ok());
}

#[test]
fn trial_end_never_charges() {
    // spec: SVC-162
    assert_eq!(
        at_trial_end(ServiceState::Trial, false).unwrap(),
        ServiceState::Ended(EndReason::TrialEnded)
    );
    assert_eq!(
        at_trial_end(ServiceState::Trial, true).unwrap(),
        ServiceState::Active
    );
    // A paid order already made the tenant active: nothing happens at the trial end.
    assert_eq!(
        at_trial_end(ServiceState::Active, false).unwrap(),
        ServiceState::Active
    );
}

#[test]
fn expiry_policy() {
    // spec: SVC-106 (stop → ended(expired); downgrade_to_free only when Free is offered)
    use klaxon_saas::trial::{OnExpiry, at_term_end};
    assert_eq!(
        at_term_end(ServiceState::Active, OnExpiry::Stop, false).unwrap(),
        ServiceState::Ended(EndReason::Expired)
    );
    assert_eq!(
        at_term_end(ServiceState::Active, OnExpiry::DowngradeToFree, true).unwrap(),
        ServiceState::Active
    );
    let e = at_term_end(ServiceState::Active, OnExpiry::DowngradeToFree, false).unwrap_err();
    assert!(e.to_string().contains("on_expiry"));
}

#[test]
fn refusals_map_to_open_api_answers() {
    // spec: SVC-055 (Open API answers 400 NoLicense)
    let mut pool = LicencePool::new(PoolSize::Limited(0), cloud(), true);
    let e = pool
        .authorize(&m("x"), Action::Licensed, at(2025, 1, 1, 0, 0))
        .unwrap_err();
    assert_eq!(e.api_answer(), (400, "NoLicense"));
    let bad =
        Trial::start(at(2025, 1, 1, 0, 0), &Params::cloud_defaults(), true, true).unwrap_err();
    assert_eq!(bad.api_answer(), (400, "BadRequest"));
    let mut t = Trial::start(
        at(2025, 1, 1, 0, 0),
        &Params::cloud_defaults(),
        false,
        false,
    )
    .unwrap();
    assert_eq!(
        t.extend(0, "r", "s", &Params::cloud_defaults())
            .unwrap_err()
            .api_answer(),
        (400, "InvalidParameter")
    );
}
