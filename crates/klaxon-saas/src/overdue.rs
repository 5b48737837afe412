//! Overdue items, the late-payment penalty, suspension and restoration (§9, SVC-130 … 141).
//!
//! Penalty accrual is simple interest on unpaid principal only (OQ-02): for each calendar day
//! D after the due date, accrual(D) = unpaid principal at the end of D × the rate in force
//! that day, kept exact; it is rounded once, when posted, as "rounded cumulative minus
//! already posted" so repeated postings never drift (SVC-133).

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::{add_24h_days, add_days, start_of};
use crate::error::{Result, SaasError};
use crate::money::round_half_up;
use crate::params::Params;

pub type ItemId = u64;

/// SVC-131/039: whether penalties run, the daily rate per period (the rate of the ToS
/// version binding the tenant on that day, or a contract's), and the optional cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PenaltyTerms {
    pub enabled: bool,
    /// (first day the rate applies, rate), sorted by day. The first entry applies to every
    /// earlier day too.
    pub rates: Vec<(Date, Decimal)>,
    /// An item's total penalty never exceeds `cap_ratio × principal`.
    pub cap_ratio: Option<Decimal>,
}

impl PenaltyTerms {
    pub fn from_params(p: &Params) -> Self {
        PenaltyTerms {
            enabled: p.late_penalty_enabled,
            rates: vec![(Date::MIN, p.late_penalty_rate_per_day)],
            cap_ratio: p.late_penalty_cap_ratio,
        }
    }

    /// The rate for day `d`.
    pub fn rate_on(&self, d: Date) -> Decimal {
        let mut rate = self.rates.first().map(|r| r.1).unwrap_or(Decimal::ZERO);
        for (from, r) in &self.rates {
            if *from <= d {
                rate = *r;
            }
        }
        rate
    }

    pub fn validate(&self) -> Result<()> {
        if self
            .rates
            .iter()
            .any(|(_, r)| r.is_sign_negative() && !r.is_zero())
        {
            return Err(SaasError::invalid(
                "late_penalty_rate_per_day",
                "negative rate",
            ));
        }
        if self.rates.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(SaasError::invalid(
                "rates",
                "periods must be sorted by first day",
            ));
        }
        if let Some(c) = self.cap_ratio
            && c.is_sign_negative()
            && !c.is_zero()
        {
            return Err(SaasError::invalid("late_penalty_cap_ratio", "negative cap"));
        }
        Ok(())
    }
}

/// SVC-130: the unpaid part of a posted charge after its due date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverdueItem {
    pub id: ItemId,
    /// The charge it came from (order, daily settlement, cycle charge, contract receivable).
    pub origin: String,
    pub principal: Decimal,
    pub due_date: Date,
    pub created_at: Timestamp,
    /// Principal reductions (payments and write-offs) by calendar day in `billing_tz`.
    reductions: Vec<(Date, Decimal)>,
    /// Penalty posted to `penalty_receivable` so far (rounded amounts).
    pub posted_penalty: Decimal,
}

impl OverdueItem {
    pub fn new(
        id: ItemId,
        origin: impl Into<String>,
        principal: Decimal,
        due_date: Date,
        created_at: Timestamp,
    ) -> Result<Self> {
        if principal <= Decimal::ZERO {
            return Err(SaasError::invalid(
                "principal",
                "an overdue item has a positive principal",
            ));
        }
        Ok(OverdueItem {
            id,
            origin: origin.into(),
            principal,
            due_date,
            created_at,
            reductions: Vec::new(),
            posted_penalty: Decimal::ZERO,
        })
    }

    pub fn unpaid_principal(&self) -> Decimal {
        self.principal - self.reductions.iter().map(|r| r.1).sum::<Decimal>()
    }

    /// Unpaid principal at the end of day `d` (a payment posted on D counts for D).
    pub fn unpaid_at_end_of(&self, d: Date) -> Decimal {
        self.principal
            - self
                .reductions
                .iter()
                .filter(|r| r.0 <= d)
                .map(|r| r.1)
                .sum::<Decimal>()
    }

    /// Records a principal reduction on day `on`.
    pub(crate) fn reduce(&mut self, on: Date, amount: Decimal) -> Result<()> {
        if amount <= Decimal::ZERO || amount > self.unpaid_principal() {
            return Err(SaasError::invalid(
                "amount",
                format!(
                    "{amount} is not within the unpaid principal {}",
                    self.unpaid_principal()
                ),
            ));
        }
        if let Some(last) = self.reductions.last()
            && on < last.0
        {
            return Err(SaasError::invalid(
                "on",
                "payments are recorded in date order",
            ));
        }
        self.reductions.push((on, amount));
        Ok(())
    }

    /// SVC-132: the exact (unrounded) penalty accrued for the days after the due date up to
    /// and including `last_day`. Weekends count; penalties never earn penalties; the cap,
    /// when set, bounds the total.
    pub fn exact_accrual_through(&self, last_day: Date, terms: &PenaltyTerms) -> Result<Decimal> {
        if !terms.enabled {
            return Ok(Decimal::ZERO);
        }
        let cap = terms.cap_ratio.map(|c| c * self.principal);
        let mut total = Decimal::ZERO;
        let mut d = add_days(self.due_date, 1)?;
        while d <= last_day {
            let base = self.unpaid_at_end_of(d);
            if base.is_zero() {
                // Reductions only ever lower the base: nothing accrues from here on.
                break;
            }
            total += base * terms.rate_on(d);
            if let Some(cap) = cap
                && total >= cap
            {
                return Ok(cap);
            }
            d = add_days(d, 1)?;
        }
        Ok(total)
    }

    /// SVC-133: the amount to post now = round_half_up(total exact accrual, 2) − posted.
    pub fn penalty_to_post(
        &self,
        last_day: Date,
        terms: &PenaltyTerms,
        scale: u32,
    ) -> Result<Decimal> {
        let total = round_half_up(self.exact_accrual_through(last_day, terms)?, scale);
        Ok((total - self.posted_penalty).max(Decimal::ZERO))
    }
}

/// SVC-137: the instant a still-unpaid item suspends the tenant: 00:00 of the day after
/// due date + grace (grace 0 = the start of day 1).
pub fn suspension_instant(due_date: Date, grace_days: i64, tz: &TimeZone) -> Result<Timestamp> {
    start_of(add_days(due_date, grace_days + 1)?, tz)
}

/// SVC-140: purge date = suspension instant + `buffer_days` × 24 h, with warnings 7 days and
/// 1 day before (SVC-136/189).
pub fn nonpayment_purge(
    suspended_at: Timestamp,
    buffer_days: i64,
) -> Result<(Timestamp, [Timestamp; 2])> {
    let purge = add_24h_days(suspended_at, buffer_days)?;
    Ok((purge, [add_24h_days(purge, -7)?, add_24h_days(purge, -1)?]))
}

/// What the daily overdue job should do for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverdueDecision {
    Nothing,
    /// SVC-130: debt exists → `overdue`.
    BecomeOverdue,
    /// SVC-137, effective at the scheduled instant even when the job runs late (§0.3).
    Suspend {
        at: Timestamp,
    },
    /// SVC-139: everything paid → back to `active`.
    Restore,
    /// SVC-139: everything paid, but the prepaid term ended during the suspension.
    EndExpired,
    /// SVC-140: purge date reached while still suspended.
    EndForNonpayment {
        at: Timestamp,
    },
}

/// Inputs of the overdue decision, all plain data.
#[derive(Debug, Clone)]
pub struct OverdueFacts<'a> {
    pub items: &'a [OverdueItem],
    /// SVC-133 payable total (principal + posted + rounded unposted penalty).
    pub payable_total: Decimal,
    /// Current state, reduced to what the rule needs.
    pub status: DebtStatus,
    /// `ends_at` of the prepaid term in force, if any.
    pub prepaid_ends_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebtStatus {
    /// `trial` or `active`.
    Serving,
    Overdue,
    /// `suspended(nonpayment)` since this instant.
    SuspendedForNonpayment {
        since: Timestamp,
    },
    /// Anything else (other suspensions, ended, purging): the overdue job does nothing.
    Other,
}

/// SVC-130/137/139/140 as one decision. Penalty-only debt never suspends (SVC-137) but keeps
/// the tenant `overdue`; restoration needs the whole payable total paid (SVC-139).
pub fn decide(
    facts: &OverdueFacts<'_>,
    now: Timestamp,
    p: &Params,
    tz: &TimeZone,
) -> Result<OverdueDecision> {
    let earliest_suspension = facts
        .items
        .iter()
        .filter(|i| i.unpaid_principal() > Decimal::ZERO)
        .map(|i| suspension_instant(i.due_date, p.overdue_grace_days, tz))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .min();
    let debt = facts.payable_total > Decimal::ZERO;
    Ok(match facts.status {
        // A serving tenant with debt first becomes `overdue` (SVC-021 has no direct
        // active → suspended edge); a catching-up job simply decides again afterwards and
        // then suspends with the scheduled instant.
        DebtStatus::Serving if debt => OverdueDecision::BecomeOverdue,
        DebtStatus::Serving => OverdueDecision::Nothing,
        DebtStatus::Overdue => match earliest_suspension {
            Some(at) if at <= now => OverdueDecision::Suspend { at },
            _ if !debt => OverdueDecision::Restore,
            _ => OverdueDecision::Nothing,
        },
        DebtStatus::SuspendedForNonpayment { since } => {
            let (purge, _) = nonpayment_purge(since, p.buffer_days)?;
            if !debt {
                match facts.prepaid_ends_at {
                    Some(end) if end <= now => OverdueDecision::EndExpired,
                    _ => OverdueDecision::Restore,
                }
            } else if now >= purge {
                OverdueDecision::EndForNonpayment { at: purge }
            } else {
                OverdueDecision::Nothing
            }
        }
        DebtStatus::Other => OverdueDecision::Nothing,
    })
}

/// SVC-136 notice kinds for one overdue item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverdueNotice {
    ItemCreated,
    GraceReminder,
    Suspension,
    PurgeWarning,
}

/// SVC-136: when the overdue notices of an item that stays unpaid go out: at creation;
/// daily at `reminder_time` during the grace days; at suspension; 7 days and 1 day before
/// the purge date. A paid item stops the schedule (the caller drops later entries).
pub fn overdue_notice_schedule(
    item: &OverdueItem,
    p: &Params,
    tz: &TimeZone,
) -> Result<Vec<(Timestamp, OverdueNotice)>> {
    let mut out = vec![(item.created_at, OverdueNotice::ItemCreated)];
    for k in 1..=p.overdue_grace_days {
        let when = crate::calendar::at_local(add_days(item.due_date, k)?, p.reminder_time, tz)?;
        if when > item.created_at {
            out.push((when, OverdueNotice::GraceReminder));
        }
    }
    let suspended = suspension_instant(item.due_date, p.overdue_grace_days, tz)?;
    out.push((suspended, OverdueNotice::Suspension));
    let (_, warnings) = nonpayment_purge(suspended, p.buffer_days)?;
    out.extend(warnings.iter().map(|w| (*w, OverdueNotice::PurgeWarning)));
    Ok(out)
}
