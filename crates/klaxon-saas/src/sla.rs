//! SLA measurement, monthly fee, compensation and claims (SVC-270 … SVC-282, SVC-239).
//!
//! Everything is computed from records given as input: requests with their HTTP status,
//! incidents with their first due notification hand-off, unreachable periods, exclusions.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::{WorkingDays, add_days, add_hours, add_months, days_between, start_of};
use crate::error::{Result, SaasError};
use crate::licence::Edition;
use crate::mode::{Regime, RuleGroup};
use crate::money::Currency;
use crate::params::{Params, SlaParams};
use crate::state::ServiceState;

/// SVC-270/163: a tenant is covered by the SLA only when billed in cloud, on a paid edition,
/// with service in force and not suspended.
pub fn covered(regime: Regime, edition: Edition, state: ServiceState) -> bool {
    regime.require(RuleGroup::SlaCompensation, "SLA").is_ok()
        && edition.sla_eligible()
        && matches!(state, ServiceState::Active | ServiceState::Overdue)
}

/// One request to the tenant's public API endpoints (SVC-272).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRecord {
    pub at: Timestamp,
    pub status: u16,
    /// A 5xx the platform generated (not a tenant-side proxy, say).
    pub platform_generated: bool,
    pub beta_endpoint: bool,
    /// Refused because of the tenant's state (SVC-023).
    pub refused_for_state: bool,
    /// 429 because the tenant exceeded its own limits.
    pub tenant_over_limit: bool,
}

/// One triggered incident (SVC-274).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentRecord {
    pub triggered_at: Timestamp,
    /// False when nothing was due (silenced, inhibited, no assignee).
    pub notification_due: bool,
    /// Delay the tenant configured before the first notification.
    pub configured_delay: SignedDuration,
    /// When the first due notification was accepted by a channel provider's API.
    pub handed_off_at: Option<Timestamp>,
    /// A late hand-off caused by the tenant (e.g. its own misconfiguration) is not failed.
    pub late_caused_by_platform: bool,
    pub beta_feature: bool,
}

/// SVC-276 categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionCategory {
    AnnouncedMaintenance,
    ExternalNetwork,
    AttackOnTenant,
    TenantCredentialLoss,
    TenantNegligence,
    NotFollowingDocumentation,
    CarrierOrHandset,
    ForceMajeure,
}

impl ExclusionCategory {
    pub const ALL: [ExclusionCategory; 8] = [
        ExclusionCategory::AnnouncedMaintenance,
        ExclusionCategory::ExternalNetwork,
        ExclusionCategory::AttackOnTenant,
        ExclusionCategory::TenantCredentialLoss,
        ExclusionCategory::TenantNegligence,
        ExclusionCategory::NotFollowingDocumentation,
        ExclusionCategory::CarrierOrHandset,
        ExclusionCategory::ForceMajeure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExclusionCategory::AnnouncedMaintenance => "announced_maintenance",
            ExclusionCategory::ExternalNetwork => "external_network",
            ExclusionCategory::AttackOnTenant => "attack_on_tenant",
            ExclusionCategory::TenantCredentialLoss => "tenant_credential_loss",
            ExclusionCategory::TenantNegligence => "tenant_negligence",
            ExclusionCategory::NotFollowingDocumentation => "not_following_documentation",
            ExclusionCategory::CarrierOrHandset => "carrier_or_handset",
            ExclusionCategory::ForceMajeure => "force_majeure",
        }
    }

    /// The category named `text`; the error lists the accepted names.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == t)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
                SaasError::invalid(
                    "category",
                    format!("{t:?} is not one of {}", names.join(", ")),
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclusion {
    pub category: ExclusionCategory,
    pub start: Timestamp,
    pub end: Timestamp,
    pub evidence: String,
    pub author: String,
}

/// SVC-239 maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub published_at: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// SVC-239: cycles within [start, end) are excluded only if the window was published at
/// least `maintenance_notice` before the start; overruns and late windows count normally.
pub fn maintenance_exclusion(w: &MaintenanceWindow, p: &Params) -> Result<Option<Exclusion>> {
    if w.end <= w.start {
        return Err(SaasError::invalid(
            "end",
            "a maintenance window ends after it starts",
        ));
    }
    if add_hours(w.published_at, p.maintenance_notice_hours)? > w.start {
        return Ok(None);
    }
    Ok(Some(Exclusion {
        category: ExclusionCategory::AnnouncedMaintenance,
        start: w.start,
        end: w.end,
        evidence: format!("maintenance published {}", w.published_at),
        author: "system".into(),
    }))
}

/// SVC-273: a period when the API was unreachable because of the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Per-cycle result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleStats {
    pub start: Timestamp,
    pub valid_requests: Decimal,
    pub failed_requests: Decimal,
    pub valid_incidents: u64,
    pub failed_incidents: u64,
    pub error_rate: Decimal,
    pub delay_rate: Decimal,
    pub excluded: Option<ExclusionCategory>,
    /// Rate ≥ threshold on either measure (regardless of exclusion).
    pub over_threshold: bool,
    /// Counts as SLA-failed: over the threshold and not excluded.
    pub failed: bool,
    /// The tenant had requests or incidents in the cycle.
    pub had_traffic: bool,
}

fn overlap_secs(a0: Timestamp, a1: Timestamp, b0: Timestamp, b1: Timestamp) -> i64 {
    let s = a0.max(b0);
    let e = a1.min(b1);
    if e > s {
        s.duration_until(e).as_secs()
    } else {
        0
    }
}

/// SVC-271: the cycle containing `at`, aligned on :00, :05 … UTC.
pub fn cycle_start(at: Timestamp, sla: &SlaParams) -> Result<Timestamp> {
    let len = sla.cycle_minutes * 60;
    let s = at.as_second();
    Ok(Timestamp::from_second(s - s.rem_euclid(len))?)
}

fn rate(failed: Decimal, valid: Decimal) -> Decimal {
    if valid.is_zero() {
        Decimal::ZERO
    } else {
        failed / valid
    }
}

/// Inputs for evaluating cycles.
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    pub requests: &'a [RequestRecord],
    pub incidents: &'a [IncidentRecord],
    pub unreachable: &'a [Unreachable],
    /// The tenant's average requests per minute over the previous 7 calendar days.
    pub avg_requests_per_minute: Decimal,
    pub exclusions: &'a [Exclusion],
}

/// Request counts of one cycle as a server aggregates them (SVC-272): the requests SVC-272
/// leaves out are already left out, and `failed` counts the platform's 5xx answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleCounts {
    pub start: Timestamp,
    pub valid: u64,
    pub failed: u64,
}

/// SVC-272 … SVC-276 for one cycle.
pub fn evaluate_cycle(start: Timestamp, r: &Records<'_>, sla: &SlaParams) -> Result<CycleStats> {
    evaluate_cycle_with(start, None, r, sla)
}

/// [`evaluate_cycle`] with the cycle's aggregated request counts added to the requests
/// of `r` (a server keeps counts, not one record per request).
pub fn evaluate_cycle_with(
    start: Timestamp,
    counts: Option<&CycleCounts>,
    r: &Records<'_>,
    sla: &SlaParams,
) -> Result<CycleStats> {
    let end = start.checked_add(SignedDuration::from_mins(sla.cycle_minutes))?;
    let mut valid = Decimal::ZERO;
    let mut failed = Decimal::ZERO;
    let mut had_traffic = false;
    if let Some(c) = counts.filter(|c| c.valid > 0) {
        had_traffic = true;
        valid += Decimal::from(c.valid);
        failed += Decimal::from(c.failed.min(c.valid));
    }
    for q in r.requests.iter().filter(|q| q.at >= start && q.at < end) {
        had_traffic = true;
        if q.beta_endpoint || q.refused_for_state || (q.status == 429 && q.tenant_over_limit) {
            continue;
        }
        valid += Decimal::ONE;
        if (500..600).contains(&q.status) && q.platform_generated {
            failed += Decimal::ONE;
        }
    }
    // SVC-273: requests that never arrived, estimated from the 7-day average.
    let down_secs: i64 = r
        .unreachable
        .iter()
        .map(|u| overlap_secs(start, end, u.start, u.end))
        .sum();
    if down_secs > 0 {
        let est = r.avg_requests_per_minute * Decimal::from(down_secs) / Decimal::from(60);
        valid += est;
        failed += est;
    }
    let deadline = SignedDuration::from_secs(sla.delivery_deadline_secs);
    let mut vi = 0u64;
    let mut fi = 0u64;
    for i in r
        .incidents
        .iter()
        .filter(|i| i.triggered_at >= start && i.triggered_at < end)
    {
        had_traffic = true;
        if !i.notification_due || i.beta_feature {
            continue;
        }
        vi += 1;
        let due = i.triggered_at.checked_add(i.configured_delay)?;
        let late = match i.handed_off_at {
            Some(h) => h > due.checked_add(deadline)?,
            None => true,
        };
        if late && i.late_caused_by_platform {
            fi += 1;
        }
    }
    let error_rate = rate(failed, valid);
    let delay_rate = rate(Decimal::from(fi), Decimal::from(vi));
    let over = error_rate >= sla.failure_threshold || delay_rate >= sla.failure_threshold;
    let excluded = r
        .exclusions
        .iter()
        .find(|x| overlap_secs(start, end, x.start, x.end) >= sla.exclusion_min_overlap_secs)
        .map(|x| x.category);
    Ok(CycleStats {
        start,
        valid_requests: valid,
        failed_requests: failed,
        valid_incidents: vi,
        failed_incidents: fi,
        error_rate,
        delay_rate,
        excluded,
        over_threshold: over,
        failed: over && excluded.is_none(),
        had_traffic,
    })
}

/// The instant range of calendar month M in `billing_tz`.
pub fn month_range(month: Date, tz: &TimeZone) -> Result<(Timestamp, Timestamp)> {
    let first = month.first_of_month();
    Ok((start_of(first, tz)?, start_of(add_months(first, 1)?, tz)?))
}

/// Every cycle that starts in month M (cycles belong to the month they start in).
pub fn evaluate_month(
    month: Date,
    tz: &TimeZone,
    r: &Records<'_>,
    sla: &SlaParams,
) -> Result<Vec<CycleStats>> {
    evaluate_month_counted(month, tz, &[], r, sla)
}

/// [`evaluate_month`] with per-cycle request counts (cycles without a count had no
/// recorded request). `counts` may come in any order.
pub fn evaluate_month_counted(
    month: Date,
    tz: &TimeZone,
    counts: &[CycleCounts],
    r: &Records<'_>,
    sla: &SlaParams,
) -> Result<Vec<CycleStats>> {
    let by_start: std::collections::HashMap<Timestamp, &CycleCounts> =
        counts.iter().map(|c| (c.start, c)).collect();
    let (m0, m1) = month_range(month, tz)?;
    let step = SignedDuration::from_mins(sla.cycle_minutes);
    let mut c = cycle_start(m0, sla)?;
    if c < m0 {
        c = c.checked_add(step)?;
    }
    let mut out = Vec::new();
    while c < m1 {
        out.push(evaluate_cycle_with(c, by_start.get(&c).copied(), r, sla)?);
        c = c.checked_add(step)?;
    }
    Ok(out)
}

/// SVC-275: SLA-failed minutes = cycle length × failed, non-excluded cycles.
pub fn failed_minutes(cycles: &[CycleStats], sla: &SlaParams) -> i64 {
    cycles.iter().filter(|c| c.failed).count() as i64 * sla.cycle_minutes
}

/// A prepaid charge for the fee allocation: its term and the cash actually paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidTerm {
    pub start: Date,
    pub end: Date,
    pub cash_paid: Decimal,
}

/// SVC-277: F(M) = Σ cash_paid × (days of the term inside M) / term_days + postpaid and
/// overage charges for usage in M paid in cash − refunds of those. Exact, not rounded.
pub fn monthly_fee(
    month: Date,
    terms: &[PaidTerm],
    usage_cash: Decimal,
    refunds: Decimal,
) -> Result<Decimal> {
    let m0 = month.first_of_month();
    let m1 = add_months(m0, 1)?;
    let mut f = usage_cash - refunds;
    for t in terms {
        let term_days = days_between(t.start, t.end)?;
        if term_days <= 0 {
            return Err(SaasError::invalid("end", "a term ends after it starts"));
        }
        let inside = days_between(t.start.max(m0), t.end.min(m1))?.max(0);
        f += t.cash_paid * Decimal::from(inside) / Decimal::from(term_days);
    }
    Ok(f.max(Decimal::ZERO))
}

/// SVC-278: C(M) = min(failed_minutes × F / 43,200 × 10, F), rounded half-up at payout.
pub fn compensation(
    failed_minutes: i64,
    fee: Decimal,
    sla: &SlaParams,
    currency: Currency,
) -> Decimal {
    let raw = Decimal::from(failed_minutes) * fee / sla.period_minutes * sla.multiplier;
    currency.round(raw.min(fee))
}

/// SVC-280: claims for M open at 00:00 of the day after the 5th working day of M+1 and close
/// at 24:00 of the last day of M+2.
pub fn claim_window(
    month: Date,
    cal: &WorkingDays,
    sla: &SlaParams,
    tz: &TimeZone,
) -> Result<(Timestamp, Timestamp)> {
    let next = add_months(month.first_of_month(), 1)?;
    let nth = cal.nth_working_day(next, sla.claim_opens_after_working_day)?;
    let opens = start_of(add_days(nth, 1)?, tz)?;
    let closes = start_of(
        add_months(month.first_of_month(), sla.claim_months + 1)?,
        tz,
    )?;
    Ok((opens, closes))
}

/// SVC-281: claims outside the window are refused automatically; one claim per month
/// (a rejected one may be resubmitted).
pub fn check_claim(
    submitted_at: Timestamp,
    window: (Timestamp, Timestamp),
    earlier_claim_open_or_approved: bool,
) -> Result<()> {
    if submitted_at < window.0 || submitted_at >= window.1 {
        return Err(SaasError::refused(
            "SVC-280",
            format!(
                "the claim window is [{}, {}); submitted {submitted_at}",
                window.0, window.1
            ),
        ));
    }
    if earlier_claim_open_or_approved {
        return Err(SaasError::refused(
            "SVC-281",
            "one claim per tenant per month",
        ));
    }
    Ok(())
}

/// SVC-282: before the claim window opens the figures are shown as provisional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    Provisional,
    Final,
}

pub fn report_status(now: Timestamp, window: (Timestamp, Timestamp)) -> ReportStatus {
    if now < window.0 {
        ReportStatus::Provisional
    } else {
        ReportStatus::Final
    }
}

/// SVC-283/031: a new SLA version takes effect no earlier than the deemed delivery date
/// of its notice + 30 days.
pub fn check_sla_version(
    notice_sent_at: Timestamp,
    effective_at: Timestamp,
    p: &Params,
    tz: &TimeZone,
) -> Result<()> {
    let earliest = crate::calendar::earliest_effective_after_notice(
        notice_sent_at,
        p.adverse_change_notice_days,
        tz,
    )?;
    if effective_at < earliest {
        return Err(SaasError::refused(
            "SVC-283",
            format!("an SLA version needs 30 days' notice: effective no earlier than {earliest}"),
        ));
    }
    Ok(())
}

/// SVC-271: availability of a month = share of non-excluded cycles that did not fail, and
/// whether it meets the target (99.9 %). `None` when every cycle was excluded.
pub fn availability(cycles: &[CycleStats], sla: &SlaParams) -> Option<(Decimal, bool)> {
    let counted = cycles.iter().filter(|c| c.excluded.is_none()).count();
    if counted == 0 {
        return None;
    }
    let failed = cycles.iter().filter(|c| c.failed).count();
    let a = Decimal::from((counted - failed) as u64) / Decimal::from(counted as u64);
    Some((a, a >= sla.availability_target))
}

/// SVC-279: approved compensation becomes a bonus lot of source `sla_compensation`, usable
/// only to buy the service (never cash). A zero compensation grants nothing.
pub fn grant_compensation(
    book: &mut crate::book::Book,
    at: Timestamp,
    amount: Decimal,
    claim_reference: &str,
    approved_by: &str,
) -> Result<Option<crate::ledger::LotId>> {
    if amount.is_zero() {
        return Ok(None);
    }
    book.grant_bonus(
        at,
        amount,
        crate::ledger::BonusSource::SlaCompensation,
        crate::ledger::BonusScope::OrdersAndUsage,
        None,
        claim_reference,
        approved_by,
    )
    .map(Some)
}
