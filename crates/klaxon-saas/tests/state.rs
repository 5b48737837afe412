//! §2 service states, transitions, capabilities and answers.

use klaxon_saas::SaasError;
use klaxon_saas::state::{
    EndReason, OrderPurpose, ReadAccess, Restrictions, ServiceState as S, SuspendReason,
    Trigger as T, capabilities, in_force, inbound_event, open_api_write, order_allowed,
    outbound_allowed, transition,
};

#[test]
fn states_and_in_force() {
    // spec: SVC-020
    assert_eq!(
        S::Suspended(SuspendReason::AbnormalUse).to_string(),
        "suspended(abnormal_use)"
    );
    assert_eq!(
        S::Ended(EndReason::TerminatedForOutage).to_string(),
        "ended(terminated_for_outage)"
    );
    for s in [
        S::Trial,
        S::Active,
        S::Overdue,
        S::Suspended(SuspendReason::Breach),
    ] {
        assert!(in_force(s));
    }
    for s in [S::Ended(EndReason::Expired), S::Purging, S::Purged] {
        assert!(!in_force(s));
    }
}

#[test]
fn self_hosted_uses_only_a_few_states() {
    // spec: SVC-403 (§2 row: active, suspended(breach/legal_order), ended(released), purging, purged)
    // spec: SVC-402 (state always active: no trial clock, expiry, overdue or non-payment)
    use klaxon_saas::mode::{DeploymentMode, Regime};
    use klaxon_saas::state::state_allowed;
    let sh = Regime::for_new_tenant(DeploymentMode::SelfHosted);
    for s in [
        S::Active,
        S::Suspended(SuspendReason::LegalOrder),
        S::Ended(EndReason::Released),
        S::Purging,
        S::Purged,
    ] {
        assert!(state_allowed(sh, s), "{s}");
    }
    for s in [
        S::Trial,
        S::Overdue,
        S::Suspended(SuspendReason::Nonpayment),
        S::Ended(EndReason::Expired),
    ] {
        assert!(!state_allowed(sh, s), "{s}");
    }
    assert!(state_allowed(
        Regime::for_new_tenant(DeploymentMode::Cloud),
        S::Trial
    ));
}

#[test]
fn transition_table() {
    // spec: SVC-021
    // spec: SVC-139 (restoration; term ended meanwhile → ended(expired))
    // spec: SVC-236 (staff suspension for breach etc.; never nonpayment by staff)
    // spec: SVC-237 (lift after appeal)
    // spec: SVC-107 (renewal during the buffer, except after terminated_breach)
    // spec: SVC-186 (release from any state but purging/purged)
    let ok = |from, t| transition(from, t).unwrap();
    assert_eq!(ok(S::Trial, T::PaidActivation), S::Active);
    assert_eq!(
        ok(
            S::Trial,
            T::TermEnd {
                downgrade_to_free: false
            }
        ),
        S::Ended(EndReason::TrialEnded)
    );
    assert_eq!(
        ok(
            S::Trial,
            T::TermEnd {
                downgrade_to_free: true
            }
        ),
        S::Active
    );
    assert_eq!(ok(S::Active, T::OverdueItemExists), S::Overdue);
    assert_eq!(ok(S::Overdue, T::DebtPaid { term_ended: false }), S::Active);
    assert_eq!(
        ok(S::Overdue, T::GraceElapsed),
        S::Suspended(SuspendReason::Nonpayment)
    );
    let np = S::Suspended(SuspendReason::Nonpayment);
    assert_eq!(ok(np, T::DebtPaid { term_ended: false }), S::Active);
    assert_eq!(
        ok(np, T::DebtPaid { term_ended: true }),
        S::Ended(EndReason::Expired)
    );
    assert_eq!(ok(np, T::PurgeDateReached), S::Ended(EndReason::Nonpayment));
    assert_eq!(
        ok(S::Ended(EndReason::Nonpayment), T::PurgeDateReached),
        S::Purging
    );
    assert_eq!(ok(S::Purging, T::PurgeDone), S::Purged);
    assert_eq!(
        ok(
            S::Active,
            T::TermEnd {
                downgrade_to_free: false
            }
        ),
        S::Ended(EndReason::Expired)
    );
    assert_eq!(
        ok(
            S::Overdue,
            T::TermEnd {
                downgrade_to_free: true
            }
        ),
        S::Overdue
    );
    assert_eq!(
        ok(S::Active, T::StaffSuspend(SuspendReason::Breach)),
        S::Suspended(SuspendReason::Breach)
    );
    assert!(transition(S::Active, T::StaffSuspend(SuspendReason::Nonpayment)).is_err());
    assert_eq!(
        ok(
            S::Suspended(SuspendReason::LegalOrder),
            T::StaffLift { overdue: true }
        ),
        S::Overdue
    );
    assert_eq!(
        ok(
            S::Suspended(SuspendReason::Breach),
            T::Terminate(EndReason::TerminatedBreach)
        ),
        S::Ended(EndReason::TerminatedBreach)
    );
    assert_eq!(
        ok(S::Overdue, T::Terminate(EndReason::RefusedTerms)),
        S::Ended(EndReason::RefusedTerms)
    );
    assert_eq!(ok(S::Ended(EndReason::Expired), T::Restore), S::Active);
    assert_eq!(
        ok(S::Ended(EndReason::Expired), T::Release),
        S::Ended(EndReason::Released)
    );
    assert_eq!(ok(S::Ended(EndReason::Released), T::Restore), S::Active);
    let e = transition(S::Ended(EndReason::TerminatedBreach), T::Restore).unwrap_err();
    assert!(matches!(e, SaasError::IllegalTransition { .. }));
    assert!(e.to_string().contains("ended(terminated_breach)"));
    assert!(transition(S::Purged, T::Release).is_err());
    assert!(
        transition(
            S::Ended(EndReason::Expired),
            T::Terminate(EndReason::TerminatedMutual)
        )
        .is_err()
    );
    assert!(transition(S::Trial, T::GraceElapsed).is_err());
}

#[test]
fn inbound_event_and_open_api_answers() {
    // spec: SVC-023
    // spec: SVC-138 (suspended for non-payment: 403 ServiceSuspended, reason nonpayment)
    assert!(inbound_event(S::Overdue).is_ok());
    let r = inbound_event(S::Suspended(SuspendReason::Nonpayment)).unwrap_err();
    assert_eq!(
        (r.http, r.code, r.reason.as_deref()),
        (403, "ServiceSuspended", Some("nonpayment"))
    );
    let r = inbound_event(S::Ended(EndReason::Expired)).unwrap_err();
    assert_eq!(
        (r.http, r.code, r.reason.as_deref()),
        (400, "ResourceNotFound", Some("expired"))
    );
    for s in [S::Purging, S::Purged] {
        let r = inbound_event(s).unwrap_err();
        assert_eq!((r.http, r.code, r.reason), (400, "InvalidParameter", None));
    }
    let w = open_api_write(S::Ended(EndReason::Released)).unwrap_err();
    assert_eq!(
        (w.http, w.code, w.reason.as_deref()),
        (403, "ServiceSuspended", Some("released"))
    );
    assert!(open_api_write(S::Trial).is_ok());
}

#[test]
fn capability_matrix() {
    // spec: SVC-022
    // spec: SVC-024 (nothing outbound while suspended or ended)
    // spec: SVC-025 (administration reachable until purging)
    // spec: SVC-182 (export in any state unless export_blocked)
    let none = Restrictions::default();
    let a = capabilities(S::Active, none, false);
    assert!(a.accept_events && a.outbound && a.write && a.export && a.billing_centre);
    assert_eq!(a.read, ReadAccess::LicenceRules);
    let s = capabilities(S::Suspended(SuspendReason::Nonpayment), none, false);
    assert!(!s.accept_events && !s.outbound && !s.write);
    assert_eq!(s.read, ReadAccess::LicenceHoldersAndAdminsReadOnly);
    assert!(s.export && s.billing_centre && s.remove_members_revoke_keys && s.delete_or_release);
    assert!(!capabilities(S::Suspended(SuspendReason::LegalOrder), none, true).delete_or_release);
    let e = capabilities(S::Ended(EndReason::Expired), none, false);
    assert_eq!(e.read, ReadAccess::OwnerAndAdminsReadOnly);
    assert!(e.export && e.agreements_contacts_inbox && e.billing_centre);
    let blocked = Restrictions {
        export_blocked: true,
        ..none
    };
    assert!(!capabilities(S::Ended(EndReason::TerminatedBreach), blocked, false).export);
    let p = capabilities(S::Purged, none, false);
    assert!(!p.export && !p.billing_centre && !p.agreements_contacts_inbox && !p.delete_or_release);
    assert_eq!(p.read, ReadAccess::Nobody);
    assert!(
        p.operator_notices,
        "purge certificate and debt notices still go out"
    );
    assert!(outbound_allowed(S::Overdue));
    assert!(!outbound_allowed(S::Suspended(SuspendReason::Breach)));
    assert!(!outbound_allowed(S::Ended(EndReason::Released)));
}

#[test]
fn which_orders_each_state_accepts() {
    // spec: SVC-022 (new orders row)
    // spec: SVC-137 (overdue: only renewals and debt payment)
    // spec: SVC-138 (suspended for non-payment: paying and renewing)
    // spec: SVC-107 (buffer: renewal or repurchase, not after terminated_breach)
    // spec: SVC-013 (a linked tenant past grace blocks new orders)
    // spec: SVC-236 (no_purchases restriction)
    let none = Restrictions::default();
    let ok = |s, p| order_allowed(s, p, none, false).is_ok();
    assert!(ok(S::Active, OrderPurpose::Other));
    assert!(ok(S::Overdue, OrderPurpose::Renewal));
    assert!(!ok(S::Overdue, OrderPurpose::Other));
    assert!(ok(
        S::Suspended(SuspendReason::Nonpayment),
        OrderPurpose::Renewal
    ));
    assert!(!ok(
        S::Suspended(SuspendReason::Breach),
        OrderPurpose::Renewal
    ));
    assert!(ok(
        S::Suspended(SuspendReason::Breach),
        OrderPurpose::DebtPayment
    ));
    assert!(ok(S::Ended(EndReason::Expired), OrderPurpose::Repurchase));
    assert!(!ok(S::Ended(EndReason::Expired), OrderPurpose::Other));
    assert!(!ok(
        S::Ended(EndReason::TerminatedBreach),
        OrderPurpose::Renewal
    ));
    assert!(!ok(S::Purged, OrderPurpose::Renewal));
    let e = order_allowed(S::Active, OrderPurpose::Other, none, true).unwrap_err();
    assert!(e.to_string().contains("SVC-013"));
    assert!(order_allowed(S::Active, OrderPurpose::DebtPayment, none, true).is_ok());
    let r = Restrictions {
        no_purchases: true,
        ..none
    };
    assert!(order_allowed(S::Active, OrderPurpose::Renewal, r, false).is_err());
}
