//! The liability cap figure (SVC-300/301, SVC-155).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::{add_months, date_of};
use crate::error::Result;
use crate::ledger::{Account, EntryId, EntryKind, Ledger};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiabilityReport {
    /// First day of the window (inclusive).
    pub from: Date,
    /// Last day of the window (inclusive): the day before D.
    pub to: Date,
    pub contributing: Vec<(EntryId, Decimal)>,
    pub total: Decimal,
    /// All cash ever applied to service charges, net of refunds (shown beside it, DPP 7.2).
    pub lifetime: Decimal,
}

/// Signed contribution of one entry: cash applied to a service charge (paid directly or as
/// principal of an overdue service charge) counts +, cash refunded or reversed back counts −.
/// Bonus, penalties, unspent top-ups and withdrawals never count (SVC-155).
fn contribution(kind: EntryKind, from: Account, to: Account, amount: Decimal) -> Decimal {
    match (from, to) {
        (Account::Cash, Account::Sales) => amount,
        (Account::Cash, Account::Receivable) if kind == EntryKind::DebtPayment => amount,
        (Account::Sales, Account::Cash) => -amount,
        (Account::Receivable, Account::Cash) if kind == EntryKind::Reversal => -amount,
        _ => Decimal::ZERO,
    }
}

/// SVC-300: L(tenant, D) = cash applied to service charges posted in [D − 12 months, D),
/// minus cash refunds posted in that window.
pub fn figure(
    ledger: &Ledger,
    d: Date,
    lookback_months: i32,
    tz: &TimeZone,
) -> Result<LiabilityReport> {
    let from = add_months(d, -lookback_months)?;
    let mut contributing = Vec::new();
    let mut total = Decimal::ZERO;
    let mut lifetime = Decimal::ZERO;
    for e in ledger.entries() {
        let c = contribution(e.kind, e.from, e.to, e.amount);
        if c.is_zero() {
            continue;
        }
        lifetime += c;
        let day = date_of(e.posted_at, tz);
        if day >= from && day < d {
            contributing.push((e.id, c));
            total += c;
        }
    }
    Ok(LiabilityReport {
        from,
        to: d.yesterday()?,
        contributing,
        total,
        lifetime,
    })
}
