//! Text forms of the crate's values for storage (one column each), and their parsers.
//!
//! The store keeps ledger entries, overdue items and the tenant's state as plain rows so an
//! operator can read them with SQL; these functions are the one place that says how each
//! value is spelled, so writing and reading can never disagree. Every parser names what it
//! could not read.

use crate::error::{Result, SaasError};
use crate::ledger::{Account, BonusScope, BonusSource, ChargeKind, EntryKind};
use crate::money::Currency;
use crate::state::{EndReason, ServiceState, SuspendReason};

fn bad(field: &'static str, text: &str) -> SaasError {
    SaasError::invalid(field, format!("{text:?} is not a known value"))
}

pub fn currency(code: &str) -> Result<Currency> {
    match code {
        "CNY" => Ok(Currency::CNY),
        "USD" => Ok(Currency::USD),
        "JPY" => Ok(Currency::JPY),
        _ => Err(bad("currency", code)),
    }
}

pub fn account_text(a: Account) -> String {
    match a {
        Account::Cash => "cash".into(),
        Account::Bonus(lot) => format!("bonus:{lot}"),
        Account::Receivable => "receivable".into(),
        Account::PenaltyReceivable => "penalty_receivable".into(),
        Account::World => "world".into(),
        Account::Sales => "sales".into(),
        Account::PenaltyIncome => "penalty_income".into(),
        Account::Promotions => "promotions".into(),
        Account::Losses => "losses".into(),
    }
}

pub fn account(text: &str) -> Result<Account> {
    Ok(match text {
        "cash" => Account::Cash,
        "receivable" => Account::Receivable,
        "penalty_receivable" => Account::PenaltyReceivable,
        "world" => Account::World,
        "sales" => Account::Sales,
        "penalty_income" => Account::PenaltyIncome,
        "promotions" => Account::Promotions,
        "losses" => Account::Losses,
        other => match other.strip_prefix("bonus:").map(str::parse::<u64>) {
            Some(Ok(lot)) => Account::Bonus(lot),
            _ => return Err(bad("account", text)),
        },
    })
}

const KINDS: [(EntryKind, &str); 16] = [
    (EntryKind::TopUp, "top_up"),
    (EntryKind::OrderPayment, "order_payment"),
    (EntryKind::UsageCharge, "usage_charge"),
    (EntryKind::LicenceCycleCharge, "licence_cycle_charge"),
    (EntryKind::DebtPayment, "debt_payment"),
    (EntryKind::PenaltyPayment, "penalty_payment"),
    (EntryKind::Refund, "refund"),
    (EntryKind::BonusGrant, "bonus_grant"),
    (EntryKind::BonusSpend, "bonus_spend"),
    (EntryKind::BonusExpiry, "bonus_expiry"),
    (EntryKind::PenaltyPost, "penalty_post"),
    (EntryKind::PenaltyWaiver, "penalty_waiver"),
    (EntryKind::WriteOff, "write_off"),
    (EntryKind::Withdrawal, "withdrawal"),
    (EntryKind::Reversal, "reversal"),
    (EntryKind::Complimentary, "complimentary"),
];

pub fn entry_kind_text(k: EntryKind) -> &'static str {
    KINDS
        .iter()
        .find(|(x, _)| *x == k)
        .map_or("unknown", |(_, t)| t)
}

pub fn entry_kind(text: &str) -> Result<EntryKind> {
    KINDS
        .iter()
        .find(|(_, t)| *t == text)
        .map(|(k, _)| *k)
        .ok_or_else(|| bad("kind", text))
}

pub fn charge_kind_text(k: ChargeKind) -> &'static str {
    match k {
        ChargeKind::Order => "order",
        ChargeKind::Usage => "usage",
        ChargeKind::LicenceCycle => "licence_cycle",
    }
}

pub fn charge_kind(text: &str) -> Result<ChargeKind> {
    match text {
        "order" => Ok(ChargeKind::Order),
        "usage" => Ok(ChargeKind::Usage),
        "licence_cycle" => Ok(ChargeKind::LicenceCycle),
        _ => Err(bad("charge", text)),
    }
}

pub fn bonus_source_text(s: BonusSource) -> &'static str {
    match s {
        BonusSource::SlaCompensation => "sla_compensation",
        BonusSource::OperatorGrant => "operator_grant",
        BonusSource::Campaign => "campaign",
    }
}

pub fn bonus_source(text: &str) -> Result<BonusSource> {
    match text {
        "sla_compensation" => Ok(BonusSource::SlaCompensation),
        "operator_grant" => Ok(BonusSource::OperatorGrant),
        "campaign" => Ok(BonusSource::Campaign),
        _ => Err(bad("bonus source", text)),
    }
}

pub fn bonus_scope_text(s: BonusScope) -> &'static str {
    match s {
        BonusScope::OrdersAndUsage => "orders_and_usage",
        BonusScope::OrdersOnly => "orders_only",
        BonusScope::UsageOnly => "usage_only",
    }
}

pub fn bonus_scope(text: &str) -> Result<BonusScope> {
    match text {
        "orders_and_usage" => Ok(BonusScope::OrdersAndUsage),
        "orders_only" => Ok(BonusScope::OrdersOnly),
        "usage_only" => Ok(BonusScope::UsageOnly),
        _ => Err(bad("bonus scope", text)),
    }
}

const SUSPEND: [(SuspendReason, &str); 4] = [
    (SuspendReason::Nonpayment, "nonpayment"),
    (SuspendReason::Breach, "breach"),
    (SuspendReason::AbnormalUse, "abnormal_use"),
    (SuspendReason::LegalOrder, "legal_order"),
];

const END: [(EndReason, &str); 9] = [
    (EndReason::TrialEnded, "trial_ended"),
    (EndReason::Expired, "expired"),
    (EndReason::Released, "released"),
    (EndReason::TerminatedMutual, "terminated_mutual"),
    (EndReason::TerminatedBreach, "terminated_breach"),
    (EndReason::TerminatedByOperator, "terminated_by_operator"),
    (EndReason::TerminatedForOutage, "terminated_for_outage"),
    (EndReason::RefusedTerms, "refused_terms"),
    (EndReason::Nonpayment, "nonpayment"),
];

/// The state as two columns: its name and, for `suspended`/`ended`, its reason ("" else).
pub fn state_text(s: ServiceState) -> (&'static str, &'static str) {
    match s {
        ServiceState::Trial => ("trial", ""),
        ServiceState::Active => ("active", ""),
        ServiceState::Overdue => ("overdue", ""),
        ServiceState::Suspended(r) => (
            "suspended",
            SUSPEND.iter().find(|(x, _)| *x == r).map_or("", |(_, t)| t),
        ),
        ServiceState::Ended(r) => (
            "ended",
            END.iter().find(|(x, _)| *x == r).map_or("", |(_, t)| t),
        ),
        ServiceState::Purging => ("purging", ""),
        ServiceState::Purged => ("purged", ""),
    }
}

pub fn state(name: &str, reason: &str) -> Result<ServiceState> {
    Ok(match name {
        "trial" => ServiceState::Trial,
        "active" => ServiceState::Active,
        "overdue" => ServiceState::Overdue,
        "purging" => ServiceState::Purging,
        "purged" => ServiceState::Purged,
        "suspended" => ServiceState::Suspended(
            SUSPEND
                .iter()
                .find(|(_, t)| *t == reason)
                .map(|(r, _)| *r)
                .ok_or_else(|| bad("reason", reason))?,
        ),
        "ended" => ServiceState::Ended(
            END.iter()
                .find(|(_, t)| *t == reason)
                .map(|(r, _)| *r)
                .ok_or_else(|| bad("reason", reason))?,
        ),
        _ => return Err(bad("state", name)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips() {
        for a in [
            Account::Cash,
            Account::Bonus(7),
            Account::Receivable,
            Account::PenaltyReceivable,
            Account::World,
            Account::Sales,
            Account::PenaltyIncome,
            Account::Promotions,
            Account::Losses,
        ] {
            assert_eq!(account(&account_text(a)).unwrap(), a);
        }
        for (k, _) in KINDS {
            assert_eq!(entry_kind(entry_kind_text(k)).unwrap(), k);
        }
        for (r, _) in SUSPEND {
            let (n, t) = state_text(ServiceState::Suspended(r));
            assert_eq!(state(n, t).unwrap(), ServiceState::Suspended(r));
        }
        for (r, _) in END {
            let (n, t) = state_text(ServiceState::Ended(r));
            assert_eq!(state(n, t).unwrap(), ServiceState::Ended(r));
        }
        for s in [
            ServiceState::Trial,
            ServiceState::Active,
            ServiceState::Overdue,
        ] {
            let (n, t) = state_text(s);
            assert_eq!(state(n, t).unwrap(), s);
        }
        assert!(
            account("bonus:x")
                .unwrap_err()
                .to_string()
                .contains("account")
        );
        assert!(state("suspended", "").is_err());
        assert!(currency("EUR").is_err());
    }
}
