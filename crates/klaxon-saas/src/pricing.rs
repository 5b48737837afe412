//! Prepaid terms, cycles, renewals and reminders as computed dates (SVC-056, SVC-101 …
//! SVC-107), and the prices of mid-term changes (SVC-060, SVC-061).

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::{add_days, add_hours, add_months, at_local, date_of, days_between, start_of};
use crate::error::{Result, SaasError};
use crate::money::Currency;

/// A prepaid term (SVC-101): start instant, anchor, `ends_at`, and its length in days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Term {
    pub starts_at: Timestamp,
    /// Start date S (the date of `starts_at`).
    pub start_date: Date,
    /// Anchor A: kept across continuous renewals.
    pub anchor: Date,
    /// Months since the anchor at which this term starts (0 for the first term).
    pub offset_months: i32,
    pub months: i32,
    pub ends_at: Timestamp,
    /// The date of `ends_at`; the last day of service is the day before.
    pub end_date: Date,
    /// Days from S to `ends_at`, S counting as a whole day.
    pub term_days: i64,
}

fn check_months(months: i32) -> Result<()> {
    if months <= 0 {
        return Err(SaasError::invalid(
            "months",
            "a term lasts at least one month",
        ));
    }
    Ok(())
}

impl Term {
    /// SVC-101: the first term starts at the payment instant; A = S; `ends_at` = 00:00 of
    /// `add_months(A, N)`.
    pub fn first(paid_at: Timestamp, months: i32, tz: &TimeZone) -> Result<Term> {
        check_months(months)?;
        let s = date_of(paid_at, tz);
        let end = add_months(s, months)?;
        Ok(Term {
            starts_at: paid_at,
            start_date: s,
            anchor: s,
            offset_months: 0,
            months,
            ends_at: start_of(end, tz)?,
            end_date: end,
            term_days: days_between(s, end)?,
        })
    }

    /// SVC-103: a renewal paid before `ends_at` starts exactly at `ends_at` and keeps the
    /// anchor (the k-th boundary is always `add_months(A, k)`). Paid at or after `ends_at`
    /// it is a late renewal (SVC-107): a new first term with a new anchor, gap uncharged.
    pub fn renewal(&self, paid_at: Timestamp, months: i32, tz: &TimeZone) -> Result<Term> {
        check_months(months)?;
        if paid_at >= self.ends_at {
            return Term::first(paid_at, months, tz);
        }
        let offset = self.offset_months + self.months;
        let end = add_months(self.anchor, offset + months)?;
        Ok(Term {
            starts_at: self.ends_at,
            start_date: self.end_date,
            anchor: self.anchor,
            offset_months: offset,
            months,
            ends_at: start_of(end, tz)?,
            end_date: end,
            term_days: days_between(self.end_date, end)?,
        })
    }

    /// SVC-103: seamless-renewal deadline = `ends_at` − `renewal_lead` (24 h).
    pub fn seamless_deadline(&self, renewal_lead_hours: i64) -> Result<Timestamp> {
        add_hours(self.ends_at, -renewal_lead_hours)
    }

    /// SVC-102/056: the k-th monthly cycle of the term, [start, end). The term's first cycle
    /// starts at its start instant; boundaries at 00:00 of `add_months(A, k)`.
    pub fn cycle(&self, k: i32, tz: &TimeZone) -> Result<(Timestamp, Timestamp)> {
        if k < 0 || k >= self.months {
            return Err(SaasError::invalid(
                "cycle",
                format!("{k} is outside 0..{}", self.months),
            ));
        }
        let m = self.offset_months + k;
        let start = if k == 0 {
            self.starts_at
        } else {
            start_of(add_months(self.anchor, m)?, tz)?
        };
        Ok((start, start_of(add_months(self.anchor, m + 1)?, tz)?))
    }

    /// Days from `from` (inclusive) to the last day of the term: `remaining_days` of
    /// SVC-060/061.
    pub fn remaining_days(&self, from: Date) -> Result<i64> {
        Ok(days_between(from.max(self.start_date), self.end_date)?.max(0))
    }
}

/// SVC-056: licence cycles for postpaid or any anchor: the k-th cycle of a monthly series
/// whose first cycle starts at `activated_at`.
pub fn licence_cycle(
    activated_at: Timestamp,
    k: i32,
    tz: &TimeZone,
) -> Result<(Timestamp, Timestamp)> {
    if k < 0 {
        return Err(SaasError::invalid("cycle", "cycles are counted from 0"));
    }
    let a = date_of(activated_at, tz);
    let start = if k == 0 {
        activated_at
    } else {
        start_of(add_months(a, k)?, tz)?
    };
    Ok((start, start_of(add_months(a, k + 1)?, tz)?))
}

/// SVC-105: reminder instants for a term (or trial) ending at `ends_at` with no paid
/// successor: 10:00 on each of the `days` days before the end date, skipping those already
/// past when the obligation arose.
pub fn expiry_reminders(
    ends_at: Timestamp,
    days: i64,
    at_time: Time,
    obligation_from: Timestamp,
    tz: &TimeZone,
) -> Result<Vec<Timestamp>> {
    let end_date = date_of(ends_at, tz);
    let mut out = Vec::new();
    for back in (1..=days).rev() {
        let when = at_local(add_days(end_date, -back)?, at_time, tz)?;
        if when >= obligation_from && when < ends_at {
            out.push(when);
        }
    }
    Ok(out)
}

/// SVC-060: upgrade price = (new − old unit price for the term length) × licences ×
/// remaining_days / term_days, rounded once.
pub fn upgrade_price(
    term: &Term,
    old_unit: Decimal,
    new_unit: Decimal,
    licences: u32,
    on: Date,
    currency: Currency,
) -> Result<Decimal> {
    if new_unit < old_unit {
        return Err(SaasError::refused(
            "SVC-060",
            "a downgrade takes effect only from the next term",
        ));
    }
    let remaining = term.remaining_days(on)?;
    Ok(currency.round(
        (new_unit - old_unit) * Decimal::from(licences) * Decimal::from(remaining)
            / Decimal::from(term.term_days),
    ))
}

/// SVC-061: licences added mid-term = unit price for the base term × added × remaining_days
/// / term_days, rounded once; add-ons end with the base term.
pub fn add_on_price(
    term: &Term,
    unit: Decimal,
    added: u32,
    on: Date,
    currency: Currency,
) -> Result<Decimal> {
    if added == 0 {
        return Err(SaasError::invalid("added", "must be at least 1"));
    }
    let remaining = term.remaining_days(on)?;
    Ok(currency.round(
        unit * Decimal::from(added) * Decimal::from(remaining) / Decimal::from(term.term_days),
    ))
}

/// SVC-061: a renewal may lower the quantity only down to the fixed licences assigned at
/// renewal time; otherwise it is refused with the assignments to revoke.
pub fn check_renewal_quantity(quantity: u32, fixed_holders: &[String]) -> Result<()> {
    if (quantity as usize) < fixed_holders.len() {
        return Err(SaasError::refused(
            "SVC-061",
            format!(
                "renewal for {quantity} licences but {} fixed licences are assigned; revoke {} of: {}",
                fixed_holders.len(),
                fixed_holders.len() - quantity as usize,
                fixed_holders.join(", ")
            ),
        ));
    }
    Ok(())
}

/// SVC-104 (opt-in auto-renew): the attempts — at the seamless deadline, then every 6 h
/// while funds are short, until `ends_at`.
pub fn auto_renew_attempts(term: &Term, renewal_lead_hours: i64) -> Result<Vec<Timestamp>> {
    let mut t = term.seamless_deadline(renewal_lead_hours)?;
    let mut out = Vec::new();
    while t < term.ends_at {
        out.push(t);
        t = add_hours(t, 6)?;
    }
    Ok(out)
}
