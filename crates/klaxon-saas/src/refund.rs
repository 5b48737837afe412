//! Pro-rata refunds (SVC-234) and when they apply (SVC-038, SVC-150/151/154, SVC-232, SVC-233,
//! SVC-235, SVC-238, SVC-263).

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::days_between;
use crate::error::{Result, SaasError};
use crate::ledger::LotId;
use crate::money::Currency;
use crate::params::{CancelRefund, Params};

/// One prepaid charge (base term, renewal, add-on, upgrade) as paid: its own start date and
/// end, the cash actually paid after promotions (SVC-151) and the bonus shares by lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrepaidCharge {
    pub reference: String,
    pub start: Date,
    pub end: Date,
    pub cash_paid: Decimal,
    pub bonus_paid: Vec<(LotId, Decimal)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChargeRefund {
    pub reference: String,
    pub unused_days: i64,
    pub term_days: i64,
    pub cash: Decimal,
    pub bonus: Vec<(LotId, Decimal)>,
}

/// A communication pack bought and partly used (SVC-234).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackPurchase {
    pub cash_paid: Decimal,
    pub total_units: u64,
    pub unused_units: u64,
}

/// SVC-234: for termination effective at 00:00 of `t`: each charge refunds
/// round(paid × unused_days / term_days) where unused_days = days from max(T, S) to its end;
/// a term not yet started is refunded in full. The bonus share is computed the same way and
/// goes back as bonus (SVC-154). Complimentary items and list values never count (SVC-150).
pub fn pro_rata(
    t: Date,
    charges: &[PrepaidCharge],
    currency: Currency,
) -> Result<Vec<ChargeRefund>> {
    charges
        .iter()
        .map(|c| {
            let term_days = days_between(c.start, c.end)?;
            if term_days <= 0 {
                return Err(SaasError::invalid(
                    "end",
                    format!("{}: ends before it starts", c.reference),
                ));
            }
            let unused = days_between(t.max(c.start), c.end)?.max(0);
            let share = |paid: Decimal| {
                currency.round(paid * Decimal::from(unused) / Decimal::from(term_days))
            };
            Ok(ChargeRefund {
                reference: c.reference.clone(),
                unused_days: unused,
                term_days,
                cash: share(c.cash_paid),
                bonus: c
                    .bonus_paid
                    .iter()
                    .map(|(lot, b)| (*lot, share(*b)))
                    .collect(),
            })
        })
        .collect()
}

/// SVC-234: unused packs refund paid × unused units / total units.
pub fn pack_refund(p: &PackPurchase, currency: Currency) -> Result<Decimal> {
    if p.total_units == 0 || p.unused_units > p.total_units {
        return Err(SaasError::invalid(
            "unused_units",
            "must be within the pack's units",
        ));
    }
    Ok(currency.round(p.cash_paid * Decimal::from(p.unused_units) / Decimal::from(p.total_units)))
}

pub fn total_cash(refunds: &[ChargeRefund]) -> Decimal {
    refunds.iter().map(|r| r.cash).sum()
}

/// Why prepaid service stops early; decides whether unused terms are refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// SVC-235: the tenant cancels or releases without cause.
    CustomerCancel,
    /// SVC-038: refusal of a material version recorded before it takes effect.
    RefusedMaterialBeforeEffect,
    /// SVC-038: refusal after effect = customer cancellation.
    RefusedAfterEffect,
    /// SVC-231: mutual agreement, refund as agreed (bounded by `max_agreed_refund`).
    Mutual,
    /// SVC-232: no refund of unused prepaid terms.
    SeriousBreach,
    /// SVC-233.
    OperatorWithNotice,
    /// SVC-238: removal of a paid feature, terminated within 30 days.
    PaidFeatureRemoved,
    /// SVC-263.
    ExtendedOutage,
}

/// SVC-235 and the refund cases it lists: is the unused prepaid remainder refunded pro rata?
pub fn refunds_unused_terms(cause: StopCause, p: &Params) -> bool {
    match cause {
        StopCause::CustomerCancel | StopCause::RefusedAfterEffect => {
            p.refund_on_customer_cancel == CancelRefund::ProRata
        }
        StopCause::RefusedMaterialBeforeEffect
        | StopCause::OperatorWithNotice
        | StopCause::PaidFeatureRemoved
        | StopCause::ExtendedOutage => true,
        // Mutual: whatever was agreed, capped by SVC-231; breach: nothing.
        StopCause::Mutual | StopCause::SeriousBreach => false,
    }
}

/// SVC-231: an agreed mutual refund may not exceed what was paid for unused terms (cash,
/// and bonus likewise).
pub fn check_mutual_refund(
    agreed_cash: Decimal,
    agreed_bonus: Decimal,
    unused: &[ChargeRefund],
) -> Result<()> {
    let max_cash = total_cash(unused);
    let max_bonus: Decimal = unused
        .iter()
        .flat_map(|r| r.bonus.iter().map(|b| b.1))
        .sum();
    if agreed_cash > max_cash {
        return Err(SaasError::refused(
            "SVC-231",
            format!("agreed cash refund {agreed_cash} exceeds {max_cash} paid for unused terms"),
        ));
    }
    if agreed_bonus > max_bonus {
        return Err(SaasError::refused(
            "SVC-231",
            format!("agreed bonus refund {agreed_bonus} exceeds {max_bonus} paid for unused terms"),
        ));
    }
    Ok(())
}
