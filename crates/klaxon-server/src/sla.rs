//! SLA measurement on a SaaS node (service-agreement.md §18; docs/sla.md).
//!
//! Recording (SVC-272): the push and Open API routers run behind [`count`]. A request is
//! attributed to a tenant only once its key or session resolved *and* the tenant's state let
//! it through (`saas::check_inbound`, `saas::check_write` call [`attribute`]), so requests
//! refused for the tenant's state are never counted, nor are requests with an unknown key.
//! A 429 is always the tenant exceeding its own limits here and is left out. Every other
//! answer is a valid request; a 5xx is a failed one (every 5xx this server answers is the
//! platform's, OQ-14). Counts are summed in memory per (tenant, 5-minute cycle) and added to
//! the store by [`run`] every [`FLUSH_EVERY`] and at shutdown — never a row per request.
//!
//! Evaluation ([`month_report`]) reads the counts, the operator's exclusions and unreachable
//! periods, and derives each incident's first due notification and its hand-off from the
//! notification outbox, then applies `klaxon_saas::sla`. Self-hosted nodes have no
//! `SaasRuntime`, so nothing is recorded and the report does not exist.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use klaxon_core::model::Millis;
use klaxon_saas::calendar::{WorkingDays, add_days, date_of, start_of};
use klaxon_saas::ledger::{Account, EntryKind};
use klaxon_saas::mode::{BillingProfile, DeploymentMode, Regime, RuleGroup};
use klaxon_saas::sla::{
    CycleCounts, CycleStats, Exclusion, ExclusionCategory, IncidentRecord, MaintenanceWindow,
    PaidTerm, Records, ReportStatus, Unreachable, claim_window, compensation, evaluate_cycle_with,
    evaluate_month_counted, failed_minutes, maintenance_exclusion, month_range, monthly_fee,
    report_status,
};
use klaxon_saas::state::ServiceState;
use klaxon_store::{SaasFailure, SaasSettings, SlaExclusion, Store, TenantBilling};
use rust_decimal::Decimal;
use tokio::sync::watch;

use crate::state::AppState;

/// How often a node adds its counts to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Beta endpoints are outside the SLA (SVC-272). No served path is beta today; a path
/// added here stops counting.
const BETA_PATHS: &[&str] = &[];

tokio::task_local! {
    /// The tenant the current request was attributed to (0 = none yet).
    static TENANT: Arc<AtomicI64>;
}

/// Attributes the request being served to `account_id` (no-op outside [`count`]).
pub fn attribute(account_id: i64) {
    let _ = TENANT.try_with(|t| t.store(account_id, Ordering::Relaxed));
}

/// Request counts of this node not yet in the store: (tenant, cycle start) → (valid, failed).
#[derive(Default)]
pub struct Recorder {
    counts: Mutex<HashMap<(i64, Millis), (u64, u64)>>,
}

impl Recorder {
    /// Counts one answered request (SVC-272).
    pub fn record(&self, account_id: i64, at: Millis, status: u16) {
        if status == 429 {
            return;
        }
        let cycle = at - at.rem_euclid(CYCLE_MS);
        let failed = (500..600).contains(&status);
        if let Ok(mut m) = self.counts.lock() {
            let e = m.entry((account_id, cycle)).or_insert((0, 0));
            e.0 += 1;
            if failed {
                e.1 += 1;
            }
        }
    }

    fn take(&self) -> Vec<(i64, Millis, u64, u64)> {
        match self.counts.lock() {
            Ok(mut m) => std::mem::take(&mut *m)
                .into_iter()
                .map(|((a, c), (v, f))| (a, c, v, f))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Puts counts back after a failed flush, so the next flush adds them.
    fn restore(&self, rows: Vec<(i64, Millis, u64, u64)>) {
        if let Ok(mut m) = self.counts.lock() {
            for (a, c, v, f) in rows {
                let e = m.entry((a, c)).or_insert((0, 0));
                e.0 += v;
                e.1 += f;
            }
        }
    }
}

const CYCLE_MS: Millis = 5 * 60 * 1000;

/// The layer around the push and Open API routers (SaaS mode only).
pub async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(saas) = state.saas.clone() else {
        return next.run(req).await;
    };
    if BETA_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let slot = Arc::new(AtomicI64::new(0));
    let resp = TENANT.scope(slot.clone(), next.run(req)).await;
    let account_id = slot.load(Ordering::Relaxed);
    // SVC-270: only a tenant being served is measured; a suspended tenant's reads are not.
    if account_id != 0
        && matches!(
            saas.state_of(account_id),
            ServiceState::Active | ServiceState::Overdue | ServiceState::Trial
        )
    {
        saas.sla
            .record(account_id, state.clock.now(), resp.status().as_u16());
    }
    resp
}

/// Adds this node's counts to the store; on failure they stay for the next flush.
pub async fn flush(state: &AppState) {
    let Some(saas) = &state.saas else {
        return;
    };
    let rows = saas.sla.take();
    if rows.is_empty() {
        return;
    }
    if let Err(e) = state.store.sla_add_counts(&rows).await {
        tracing::error!(error = %e, "recording SLA request counts failed; they will be retried");
        saas.sla.restore(rows);
    }
}

/// Flushes every [`FLUSH_EVERY`] until shutdown, then once more.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if state.saas.is_none() {
        return;
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        flush(&state).await;
        tokio::select! {
            _ = tokio::time::sleep(FLUSH_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
    flush(&state).await;
}

/// The SLA figures of one tenant and month (SVC-282).
#[derive(Debug, Clone)]
pub struct MonthReport {
    pub account_id: i64,
    pub month: Date,
    /// SVC-270: a commercial tenant on a paid edition.
    pub covered: bool,
    pub status: ReportStatus,
    pub window: (Timestamp, Timestamp),
    pub failed: Vec<CycleStats>,
    pub excluded: Vec<CycleStats>,
    /// The exclusions that apply to the month, with their evidence (SVC-281: the tenant
    /// sees the reasons).
    pub exclusions: Vec<SlaExclusion>,
    pub failed_minutes: i64,
    pub fee: Decimal,
    pub compensation: Decimal,
    pub currency: klaxon_saas::money::Currency,
}

fn ts(ms: Millis) -> Result<Timestamp, SaasFailure> {
    Ok(Timestamp::from_millisecond(ms).map_err(klaxon_saas::SaasError::from)?)
}

/// `YYYY-MM` → the first of that month.
pub fn parse_month(text: &str) -> Result<Date, String> {
    let t = text.trim();
    let ok = t.len() == 7 && t.as_bytes()[4] == b'-';
    ok.then(|| format!("{t}-01").parse::<Date>().ok())
        .flatten()
        .ok_or_else(|| format!("{t:?} is not a month like 2025-03"))
}

/// The exclusion a recorded row amounts to: a maintenance window only when announced in
/// time (SVC-239), anything else as recorded.
fn as_exclusion(
    x: &SlaExclusion,
    settings: &SaasSettings,
) -> Result<Option<Exclusion>, SaasFailure> {
    let category = ExclusionCategory::parse(&x.category)?;
    let start = ts(x.starts_at)?;
    let end = ts(x.ends_at)?;
    if category == ExclusionCategory::AnnouncedMaintenance {
        let w = MaintenanceWindow {
            published_at: ts(x.published_at)?,
            start,
            end,
        };
        return Ok(maintenance_exclusion(&w, &settings.params)?);
    }
    Ok(Some(Exclusion {
        category,
        start,
        end,
        evidence: x.evidence.clone(),
        author: x.author.clone(),
    }))
}

/// F(M) (SVC-277) from the tenant's licence orders and ledger: the cash paid for each
/// prepaid term (less its cash refunds) spread over the term's days, plus usage and
/// postpaid licence charges paid from cash in M. Bonus-paid parts never count (SVC-155).
async fn fee(
    store: &Store,
    settings: &SaasSettings,
    t: &TenantBilling,
    month: Date,
    now: Millis,
) -> Result<Decimal, SaasFailure> {
    let account_id = t.account_id;
    let tz = &settings.billing_tz;
    let (m0, m1) = month_range(month, tz)?;
    let entries = t.book.ledger().entries();
    let orders = store.saas_licences(settings, account_id, now).await?.orders;
    let mut terms = Vec::new();
    for o in &orders {
        let reference = format!("licence-order:{}", o.order_id);
        let paid: Decimal = entries
            .iter()
            .filter(|e| e.reference == reference)
            .map(|e| match (e.kind, e.from, e.to) {
                (EntryKind::OrderPayment, Account::Cash, _) => e.amount,
                (EntryKind::Refund, _, Account::Cash) => -e.amount,
                _ => Decimal::ZERO,
            })
            .sum();
        if paid > Decimal::ZERO {
            terms.push(PaidTerm {
                start: date_of(o.starts_at, tz),
                end: date_of(o.ends_at, tz),
                cash_paid: paid,
            });
        }
    }
    let usage_cash: Decimal = entries
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EntryKind::UsageCharge | EntryKind::LicenceCycleCharge
            ) && e.from == Account::Cash
                && e.posted_at >= m0
                && e.posted_at < m1
        })
        .map(|e| e.amount)
        .sum();
    Ok(monthly_fee(month, &terms, usage_cash, Decimal::ZERO)?)
}

/// Whether the tenant is covered by the SLA (SVC-270): a commercial cloud tenant on a paid
/// edition that is past its trial.
fn covered(t: &TenantBilling) -> bool {
    let regime = match t.profile {
        BillingProfile::Commercial => Regime::for_new_tenant(DeploymentMode::Cloud),
        BillingProfile::Exempt => return false,
    };
    regime.require(RuleGroup::SlaCompensation, "SLA").is_ok()
        && matches!(t.edition.as_str(), "standard" | "pro")
        && t.state != ServiceState::Trial
}

/// The SLA report of `account_id` for `month` at `now` (SVC-282), with the claim window
/// from the operator's working-day calendar (SVC-280).
pub async fn month_report(
    store: &Store,
    settings: &SaasSettings,
    calendar: &WorkingDays,
    account_id: i64,
    month: Date,
    now: Millis,
) -> Result<MonthReport, SaasFailure> {
    if store.account(account_id).await?.is_none() {
        return Err(SaasFailure::UnknownAccount(account_id));
    }
    let tz = &settings.billing_tz;
    let sla = &settings.params.sla;
    let month = month.first_of_month();
    let (m0, m1) = month_range(month, tz)?;
    // Counts from 7 calendar days before the month, for the SVC-273 averages.
    let history_from = start_of(add_days(month, -7)?, tz)?;
    let counts: Vec<CycleCounts> = store
        .sla_counts(
            account_id,
            history_from.as_millisecond(),
            m1.as_millisecond(),
        )
        .await?
        .into_iter()
        .map(|(start, valid, failed)| {
            Ok(CycleCounts {
                start: ts(start)?,
                valid: u64::try_from(valid).unwrap_or(0),
                failed: u64::try_from(failed).unwrap_or(0),
            })
        })
        .collect::<Result<_, SaasFailure>>()?;
    let recorded = store
        .sla_exclusions(account_id, m0.as_millisecond(), m1.as_millisecond())
        .await?;
    let mut exclusions = Vec::new();
    for x in &recorded {
        if let Some(e) = as_exclusion(x, settings)? {
            exclusions.push(e);
        }
    }
    let unreachable: Vec<Unreachable> = store
        .sla_unreachable(account_id, m0.as_millisecond(), m1.as_millisecond())
        .await?
        .iter()
        .map(|u| {
            Ok(Unreachable {
                start: ts(u.starts_at)?,
                end: ts(u.ends_at)?,
            })
        })
        .collect::<Result<_, SaasFailure>>()?;
    let incidents: Vec<IncidentRecord> = store
        .sla_incidents(account_id, m0.as_millisecond(), m1.as_millisecond())
        .await?
        .iter()
        .map(|i| {
            let due = i.due_at.unwrap_or(i.triggered_at);
            Ok(IncidentRecord {
                triggered_at: ts(i.triggered_at)?,
                notification_due: i.due_at.is_some(),
                // The outbox row is written when the notification is due, after any delay
                // the tenant configured.
                configured_delay: SignedDuration::from_millis((due - i.triggered_at).max(0)),
                handed_off_at: i.handed_off_at.map(ts).transpose()?,
                late_caused_by_platform: !i.refused_by_provider,
                beta_feature: false,
            })
        })
        .collect::<Result<_, SaasFailure>>()?;
    let mut records = Records {
        requests: &[],
        incidents: &incidents,
        unreachable: &unreachable,
        avg_requests_per_minute: Decimal::ZERO,
        exclusions: &exclusions,
    };
    let mut cycles = evaluate_month_counted(month, tz, &counts, &records, sla)?;
    // SVC-273: a cycle with an unreachable period is evaluated again with the tenant's
    // average over the 7 calendar days before the cycle's day.
    if !unreachable.is_empty() {
        let step = SignedDuration::from_mins(sla.cycle_minutes);
        for c in cycles.iter_mut() {
            let end = c
                .start
                .checked_add(step)
                .map_err(klaxon_saas::SaasError::from)?;
            if !unreachable.iter().any(|u| u.start < end && u.end > c.start) {
                continue;
            }
            let day = date_of(c.start, tz);
            let (h0, h1) = (start_of(add_days(day, -7)?, tz)?, start_of(day, tz)?);
            let total: u64 = counts
                .iter()
                .filter(|k| k.start >= h0 && k.start < h1)
                .map(|k| k.valid)
                .sum();
            let minutes = h0.duration_until(h1).as_secs() / 60;
            records.avg_requests_per_minute = if minutes > 0 {
                Decimal::from(total) / Decimal::from(minutes)
            } else {
                Decimal::ZERO
            };
            let own = counts.iter().find(|k| k.start == c.start);
            *c = evaluate_cycle_with(c.start, own, &records, sla)?;
        }
    }
    // A tenant without a billing row has bought nothing: not covered, nothing paid.
    let tenant = store.saas_tenant(settings, account_id, now).await?;
    let covered = tenant.as_ref().is_some_and(covered);
    let currency = tenant.as_ref().map_or(settings.currency, |t| t.currency);
    let fee = match &tenant {
        Some(t) if covered => fee(store, settings, t, month, now).await?,
        _ => Decimal::ZERO,
    };
    let minutes = if covered {
        failed_minutes(&cycles, sla)
    } else {
        0
    };
    let window = claim_window(month, calendar, sla, tz)?;
    Ok(MonthReport {
        account_id,
        month,
        covered,
        status: report_status(ts(now)?, window),
        window,
        failed: cycles.iter().filter(|c| c.failed).cloned().collect(),
        excluded: cycles
            .iter()
            .filter(|c| c.excluded.is_some())
            .cloned()
            .collect(),
        exclusions: recorded,
        failed_minutes: minutes,
        fee,
        compensation: compensation(minutes, fee, sla, currency),
        currency,
    })
}
