//! The service-state machine of §2 (SVC-020 … SVC-025) and what each state allows.

use std::fmt;

use serde::Serialize;

use crate::error::{Result, SaasError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuspendReason {
    Nonpayment,
    Breach,
    AbnormalUse,
    LegalOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    TrialEnded,
    Expired,
    Released,
    TerminatedMutual,
    TerminatedBreach,
    TerminatedByOperator,
    TerminatedForOutage,
    RefusedTerms,
    Nonpayment,
}

/// SVC-020: exactly one state per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum ServiceState {
    Trial,
    Active,
    Overdue,
    Suspended(SuspendReason),
    Ended(EndReason),
    Purging,
    Purged,
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceState::Trial => write!(f, "trial"),
            ServiceState::Active => write!(f, "active"),
            ServiceState::Overdue => write!(f, "overdue"),
            ServiceState::Suspended(r) => write!(f, "suspended({})", snake(r)),
            ServiceState::Ended(r) => write!(f, "ended({})", snake(r)),
            ServiceState::Purging => write!(f, "purging"),
            ServiceState::Purged => write!(f, "purged"),
        }
    }
}

fn snake<T: fmt::Debug>(v: &T) -> String {
    let mut out = String::new();
    for (i, c) in format!("{v:?}").chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The state's reason as carried in `error.reason` (SVC-023).
pub fn reason_text(state: ServiceState) -> Option<String> {
    match state {
        ServiceState::Suspended(r) => Some(snake(&r)),
        ServiceState::Ended(r) => Some(snake(&r)),
        _ => None,
    }
}

/// Restriction flags, independent of state (SVC-020, SVC-236).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Restrictions {
    pub no_sms_voice: bool,
    pub ingest_rate_limited: bool,
    pub no_purchases: bool,
    pub no_new_members: bool,
    pub funds_frozen: bool,
    pub export_blocked: bool,
}

/// Triggers of the SVC-021 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Paid order activated or postpaid enabled (SVC-100, SVC-120).
    PaidActivation,
    /// Trial end (SVC-162) or prepaid term end unrenewed (SVC-106); `downgrade_to_free`
    /// only when the Free edition is offered and chosen.
    TermEnd { downgrade_to_free: bool },
    /// An overdue item exists (SVC-130).
    OverdueItemExists,
    /// All overdue debt paid (SVC-139). `term_ended` = a prepaid term ended meanwhile.
    DebtPaid { term_ended: bool },
    /// Grace elapsed with unpaid principal (SVC-137).
    GraceElapsed,
    /// Purge date reached (SVC-140, SVC-189).
    PurgeDateReached,
    /// Staff suspension for breach, abnormal use, legal order (SVC-236).
    StaffSuspend(SuspendReason),
    /// Staff lift the measure after appeal (SVC-237).
    StaffLift { overdue: bool },
    /// A termination rule takes effect (SVC-231 … 233, 263) or a refusal (SVC-038).
    Terminate(EndReason),
    /// Release (SVC-186).
    Release,
    /// Paid order during the buffer (SVC-107) or release cancelled while a paid term runs
    /// (SVC-186).
    Restore,
    /// The purge procedure finished (SVC-190).
    PurgeDone,
}

/// SVC-021: the next state, or an error naming the state and trigger.
pub fn transition(from: ServiceState, trigger: Trigger) -> Result<ServiceState> {
    use ServiceState as S;
    use Trigger as T;
    let illegal = || SaasError::IllegalTransition {
        from: from.to_string(),
        event: format!("{trigger:?}"),
    };
    let in_force = in_force(from);
    Ok(match (from, trigger) {
        (S::Trial, T::PaidActivation) => S::Active,
        (
            S::Trial,
            T::TermEnd {
                downgrade_to_free: true,
            },
        ) => S::Active,
        (
            S::Trial,
            T::TermEnd {
                downgrade_to_free: false,
            },
        ) => S::Ended(EndReason::TrialEnded),
        (S::Active, T::OverdueItemExists) => S::Overdue,
        (S::Overdue, T::DebtPaid { term_ended: false }) => S::Active,
        (S::Overdue, T::DebtPaid { term_ended: true }) => S::Ended(EndReason::Expired),
        (S::Overdue, T::GraceElapsed) => S::Suspended(SuspendReason::Nonpayment),
        (S::Suspended(SuspendReason::Nonpayment), T::DebtPaid { term_ended: false }) => S::Active,
        (S::Suspended(SuspendReason::Nonpayment), T::DebtPaid { term_ended: true }) => {
            S::Ended(EndReason::Expired)
        }
        (S::Suspended(SuspendReason::Nonpayment), T::PurgeDateReached) => {
            S::Ended(EndReason::Nonpayment)
        }
        (
            S::Active | S::Overdue,
            T::TermEnd {
                downgrade_to_free: false,
            },
        ) => S::Ended(EndReason::Expired),
        (
            S::Active | S::Overdue,
            T::TermEnd {
                downgrade_to_free: true,
            },
        ) => from,
        (S::Active | S::Overdue, T::StaffSuspend(r)) if r != SuspendReason::Nonpayment => {
            S::Suspended(r)
        }
        (S::Suspended(r), T::StaffLift { overdue }) if r != SuspendReason::Nonpayment => {
            if overdue { S::Overdue } else { S::Active }
        }
        (_, T::Terminate(r))
            if in_force
                && matches!(
                    r,
                    EndReason::TerminatedMutual
                        | EndReason::TerminatedBreach
                        | EndReason::TerminatedByOperator
                        | EndReason::TerminatedForOutage
                        | EndReason::RefusedTerms
                ) =>
        {
            S::Ended(r)
        }
        (S::Purging | S::Purged, T::Release) => return Err(illegal()),
        (_, T::Release) => S::Ended(EndReason::Released),
        (S::Ended(r), T::Restore) if r != EndReason::TerminatedBreach => S::Active,
        (S::Ended(_), T::PurgeDateReached) => S::Purging,
        (S::Purging, T::PurgeDone) => S::Purged,
        _ => return Err(illegal()),
    })
}

/// SVC-403: a self-hosted install (or an exempt tenant, SVC-402) only ever uses `active`,
/// `suspended(breach | legal_order)` set by the installation admin, `ended(released)`,
/// `purging` and `purged`.
pub fn state_allowed(regime: crate::mode::Regime, state: ServiceState) -> bool {
    if regime.is_billed() {
        return true;
    }
    matches!(
        state,
        ServiceState::Active
            | ServiceState::Suspended(SuspendReason::Breach | SuspendReason::LegalOrder)
            | ServiceState::Ended(EndReason::Released)
            | ServiceState::Purging
            | ServiceState::Purged
    )
}

/// SVC-020 "service in force": `trial`, `active`, `overdue`, `suspended`.
pub fn in_force(s: ServiceState) -> bool {
    matches!(
        s,
        ServiceState::Trial
            | ServiceState::Active
            | ServiceState::Overdue
            | ServiceState::Suspended(_)
    )
}

/// A rejection as the API answers it (SVC-023).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub http: u16,
    pub code: &'static str,
    pub reason: Option<String>,
}

/// SVC-022/023: may an inbound alert or change event be accepted?
pub fn inbound_event(state: ServiceState) -> std::result::Result<(), Rejection> {
    match state {
        ServiceState::Trial | ServiceState::Active | ServiceState::Overdue => Ok(()),
        ServiceState::Suspended(_) => Err(Rejection {
            http: 403,
            code: "ServiceSuspended",
            reason: reason_text(state),
        }),
        ServiceState::Ended(_) => Err(Rejection {
            http: 400,
            code: "ResourceNotFound",
            reason: reason_text(state),
        }),
        // Keys no longer resolve: identical to an unknown key, no reason.
        ServiceState::Purging | ServiceState::Purged => Err(Rejection {
            http: 400,
            code: "InvalidParameter",
            reason: None,
        }),
    }
}

/// SVC-023: Open API calls that change state (incident actions, configuration,
/// invitations) are refused in `suspended` and `ended` with 403 `ServiceSuspended`.
pub fn open_api_write(state: ServiceState) -> std::result::Result<(), Rejection> {
    match state {
        ServiceState::Trial | ServiceState::Active | ServiceState::Overdue => Ok(()),
        ServiceState::Suspended(_) | ServiceState::Ended(_) => Err(Rejection {
            http: 403,
            code: "ServiceSuspended",
            reason: reason_text(state),
        }),
        ServiceState::Purging | ServiceState::Purged => Err(Rejection {
            http: 400,
            code: "InvalidParameter",
            reason: None,
        }),
    }
}

/// Who may read incidents and configuration (SVC-022 row 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAccess {
    /// Licence rules apply (SVC-052).
    LicenceRules,
    LicenceHoldersAndAdminsReadOnly,
    OwnerAndAdminsReadOnly,
    Nobody,
}

/// The SVC-022 matrix for one state (plus restriction flags and legal hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub accept_events: bool,
    /// Create incidents, notify, escalate, shift reminders, outbound webhooks (SVC-024).
    pub outbound: bool,
    pub read: ReadAccess,
    /// Incident actions, configuration changes, invite/add members.
    pub write: bool,
    pub remove_members_revoke_keys: bool,
    pub export: bool,
    pub delete_or_release: bool,
    pub billing_centre: bool,
    pub agreements_contacts_inbox: bool,
    /// Only purge certificate and debt notices once purged.
    pub operator_notices: bool,
}

pub fn capabilities(state: ServiceState, flags: Restrictions, legal_hold: bool) -> Capabilities {
    use ServiceState as S;
    let serving = matches!(state, S::Trial | S::Active | S::Overdue);
    let purged = matches!(state, S::Purging | S::Purged);
    Capabilities {
        accept_events: serving,
        outbound: serving,
        read: match state {
            S::Trial | S::Active | S::Overdue => ReadAccess::LicenceRules,
            S::Suspended(_) => ReadAccess::LicenceHoldersAndAdminsReadOnly,
            S::Ended(_) => ReadAccess::OwnerAndAdminsReadOnly,
            S::Purging | S::Purged => ReadAccess::Nobody,
        },
        write: serving,
        remove_members_revoke_keys: !purged,
        // SVC-182: any state before purging, unless staff blocked it (SVC-232).
        export: !purged && !flags.export_blocked,
        delete_or_release: !purged && (serving || !legal_hold),
        billing_centre: !purged,
        agreements_contacts_inbox: !purged,
        operator_notices: true,
    }
}

/// What a new order is for (SVC-022 "New orders" row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderPurpose {
    Renewal,
    DebtPayment,
    /// A new purchase while ended (buffer).
    Repurchase,
    /// Anything else: add-ons, upgrades, packs, support services, a first purchase.
    Other,
}

/// SVC-022/137/138/107/013: may this order be placed now?
pub fn order_allowed(
    state: ServiceState,
    purpose: OrderPurpose,
    flags: Restrictions,
    linked_tenant_overdue_past_grace: bool,
) -> Result<()> {
    use OrderPurpose as P;
    use ServiceState as S;
    let refuse = |rule: &'static str, why: &str| {
        Err(SaasError::refused(
            rule,
            format!("{purpose:?} order refused in {state}: {why}"),
        ))
    };
    if purpose == P::DebtPayment {
        return if matches!(state, S::Purged) {
            refuse("SVC-022", "the tenant is purged")
        } else {
            Ok(())
        };
    }
    if flags.no_purchases {
        return refuse("SVC-236", "purchases are restricted");
    }
    if linked_tenant_overdue_past_grace {
        return refuse(
            "SVC-013",
            "a linked tenant has an overdue item past its grace period",
        );
    }
    match (state, purpose) {
        (S::Trial | S::Active, _) if purpose != P::Repurchase => Ok(()),
        (S::Overdue, P::Renewal) => Ok(()),
        (S::Overdue, _) => refuse("SVC-137", "only renewals and debt payment while overdue"),
        (S::Suspended(SuspendReason::Nonpayment), P::Renewal) => Ok(()),
        (S::Suspended(_), _) => refuse(
            "SVC-138",
            "only debt payment (and renewal when suspended for non-payment)",
        ),
        (S::Ended(EndReason::TerminatedBreach), _) => {
            refuse("SVC-107", "terminated for breach: staff must lift it first")
        }
        (S::Ended(_), P::Renewal | P::Repurchase) => Ok(()),
        (S::Ended(_), _) => refuse("SVC-022", "only renewal or repurchase during the buffer"),
        _ => refuse("SVC-022", "not available in this state"),
    }
}

/// SVC-024: outbound activity (notifications, escalations, shift reminders, webhooks,
/// reports) runs only while serving; operator notices are not affected.
pub fn outbound_allowed(state: ServiceState) -> bool {
    matches!(
        state,
        ServiceState::Trial | ServiceState::Active | ServiceState::Overdue
    )
}
