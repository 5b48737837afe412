//! Postpaid enablement, keeping the balance sufficient, statements, balance alerts and
//! switching billing mode (SVC-087, SVC-120, SVC-123 … SVC-125).

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::add_24h_days;
use crate::error::{Result, SaasError};
use crate::ledger::{Account, ChargeKind, EntryKind, Ledger};
use crate::params::Params;

/// SVC-120 preconditions, as facts the caller gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnableFacts {
    pub has_overdue_item: bool,
    /// SVC-013: a linked tenant has an overdue item past its grace period.
    pub linked_overdue_past_grace: bool,
    /// SVC-007: the operator requires a verified entity for purchases.
    pub verification_required: bool,
    pub entity_verified: bool,
    /// Cash + eligible bonus.
    pub funds: Decimal,
    /// SVC-033: explicit acceptance recorded with the request.
    pub explicit_acceptance: bool,
}

/// SVC-120: checks the preconditions; the error names the first one that fails.
pub fn check_enable(f: &EnableFacts, p: &Params) -> Result<()> {
    if f.has_overdue_item {
        return Err(SaasError::refused(
            "SVC-120",
            "the tenant has an overdue item",
        ));
    }
    if f.linked_overdue_past_grace {
        return Err(SaasError::refused(
            "SVC-013",
            "a linked tenant has an overdue item past its grace period",
        ));
    }
    if f.verification_required && !f.entity_verified {
        return Err(SaasError::refused(
            "SVC-007",
            "the legal entity must be verified first",
        ));
    }
    if f.funds < p.postpaid_min_balance {
        return Err(SaasError::refused(
            "SVC-120",
            format!(
                "funds {} are below the postpaid minimum balance {}",
                f.funds, p.postpaid_min_balance
            ),
        ));
    }
    if !f.explicit_acceptance {
        return Err(SaasError::refused(
            "SVC-033",
            "enabling postpaid needs explicit acceptance of the terms",
        ));
    }
    Ok(())
}

/// SVC-120/125: postpaid starts at once, or — coming from prepaid — at the current term's
/// `ends_at` (no refund of the remainder). The returned instant is also the new anchor.
pub fn postpaid_starts_at(
    requested_at: Timestamp,
    prepaid_ends_at: Option<Timestamp>,
) -> Timestamp {
    match prepaid_ends_at {
        Some(end) if end > requested_at => end,
        _ => requested_at,
    }
}

/// SVC-125: postpaid → prepaid: the prepaid term starts at its payment instant and the
/// running postpaid cycle is settled at once for the members active so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchToPrepaid {
    pub prepaid_starts_at: Timestamp,
    pub settle_cycle_now_for_active: usize,
}

pub fn switch_to_prepaid(paid_at: Timestamp, active_so_far: usize) -> SwitchToPrepaid {
    SwitchToPrepaid {
        prepaid_starts_at: paid_at,
        settle_cycle_now_for_active: active_so_far,
    }
}

/// SVC-087: notifies once when available funds fall below T, and again only after they
/// have risen above T.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceAlert {
    pub threshold: Decimal,
    armed: bool,
}

impl BalanceAlert {
    pub fn new(threshold: Decimal) -> Result<Self> {
        if threshold.is_sign_negative() {
            return Err(SaasError::invalid("threshold", "must not be negative"));
        }
        Ok(BalanceAlert {
            threshold,
            armed: true,
        })
    }

    /// The alert as stored: its threshold and whether it may fire (it has not fired since
    /// the funds last rose above the threshold).
    pub fn restore(threshold: Decimal, armed: bool) -> Result<Self> {
        let mut a = BalanceAlert::new(threshold)?;
        a.armed = armed;
        Ok(a)
    }

    pub fn armed(&self) -> bool {
        self.armed
    }

    /// Feed the funds after every change; true = send the notice now.
    pub fn observe(&mut self, available: Decimal) -> bool {
        if available < self.threshold {
            let fire = self.armed;
            self.armed = false;
            fire
        } else {
            if available > self.threshold {
                self.armed = true;
            }
            false
        }
    }
}

fn is_service_charge(kind: Option<ChargeKind>, to: Account) -> bool {
    to == Account::Sales && kind.is_some()
}

/// Service charges posted in [from, to) (bonus, cash and uncovered parts alike), net of
/// refunds and reversals.
pub fn charges_between(ledger: &Ledger, from: Timestamp, to: Timestamp) -> Decimal {
    ledger
        .entries()
        .iter()
        .filter(|e| e.posted_at >= from && e.posted_at < to)
        .map(|e| {
            if is_service_charge(e.charge, e.to) && e.kind != EntryKind::Reversal {
                e.amount
            } else if e.from == Account::Sales && e.to != Account::Receivable {
                -e.amount
            } else {
                Decimal::ZERO
            }
        })
        .sum()
}

/// SVC-123: what the billing centre shows for a postpaid cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forecast {
    pub charges_so_far: Decimal,
    pub estimated_licence_charge: Decimal,
    /// Funds ÷ trailing 7-day average daily spend; `None` when nothing was spent.
    pub days_of_funds_left: Option<Decimal>,
    /// SVC-123 warning instant: 3 days before the cycle end, when funds are below the
    /// estimate.
    pub warn_at: Option<Timestamp>,
}

pub fn forecast(
    ledger: &Ledger,
    funds: Decimal,
    cycle: (Timestamp, Timestamp),
    now: Timestamp,
    active_so_far: usize,
    per_user_price: Decimal,
) -> Result<Forecast> {
    let charges_so_far = charges_between(ledger, cycle.0, now);
    let estimate = per_user_price * Decimal::from(active_so_far as u64);
    let week = charges_between(ledger, add_24h_days(now, -7)?, now);
    let daily = week / Decimal::from(7);
    let days_of_funds_left = if daily > Decimal::ZERO {
        Some((funds / daily).round_dp(1))
    } else {
        None
    };
    let warn_at = if funds < estimate {
        Some(add_24h_days(cycle.1, -3)?)
    } else {
        None
    };
    Ok(Forecast {
        charges_so_far,
        estimated_licence_charge: estimate,
        days_of_funds_left,
        warn_at,
    })
}

/// SVC-124: a cycle statement, computed from the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub from: Timestamp,
    pub to: Timestamp,
    pub charges: Decimal,
    pub cash_received: Decimal,
    pub bonus_used: Decimal,
    pub new_overdue: Decimal,
    pub penalties_posted: Decimal,
    pub refunds: Decimal,
    pub closing_cash: Decimal,
    pub closing_debt: Decimal,
}

pub fn statement(ledger: &Ledger, from: Timestamp, to: Timestamp) -> Statement {
    let mut s = Statement {
        from,
        to,
        charges: Decimal::ZERO,
        cash_received: Decimal::ZERO,
        bonus_used: Decimal::ZERO,
        new_overdue: Decimal::ZERO,
        penalties_posted: Decimal::ZERO,
        refunds: Decimal::ZERO,
        closing_cash: Decimal::ZERO,
        closing_debt: Decimal::ZERO,
    };
    let mut cash = Decimal::ZERO;
    let mut debt = Decimal::ZERO;
    for e in ledger.entries().iter().filter(|e| e.posted_at < to) {
        let flow = |a: Account| -> Decimal {
            (if e.to == a { e.amount } else { Decimal::ZERO })
                - (if e.from == a { e.amount } else { Decimal::ZERO })
        };
        cash += flow(Account::Cash);
        debt -= flow(Account::Receivable) + flow(Account::PenaltyReceivable);
        if e.posted_at < from {
            continue;
        }
        match e.kind {
            EntryKind::TopUp => s.cash_received += e.amount,
            EntryKind::BonusSpend => s.bonus_used += e.amount,
            EntryKind::PenaltyPost => s.penalties_posted += e.amount,
            EntryKind::Refund => s.refunds += e.amount,
            _ => {}
        }
        if is_service_charge(e.charge, e.to) && e.kind != EntryKind::Reversal {
            s.charges += e.amount;
            if e.from == Account::Receivable {
                s.new_overdue += e.amount;
            }
        }
    }
    s.closing_cash = cash;
    s.closing_debt = debt;
    s
}
