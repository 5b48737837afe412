//! Communication quota metering (service-agreement.md SVC-070 … SVC-075, SVC-121): the units
//! a tenant used, counted from its real delivery records, against the allowance pool of its
//! licence cycle; the overage posted to the ledger by the daily usage settlement; the 80 %
//! and 100 % usage notices.
//!
//! A unit is a row of the notification outbox (`notifications`, response.md 1.17) on a
//! metered channel — `sms`, `voice`, and `email` when e-mail is priced — that the provider
//! accepted (`status = 'sent'`), counted on the day of its `sent_at`. Rejected and failed
//! sends never count; a platform retry updates the same row, so it is never counted twice
//! (SVC-070). Operator notices go through the notice outbox, not here, so they are never
//! metered (SVC-076). The delivery records carry neither SMS segments nor call durations:
//! each accepted SMS and each accepted call counts one unit.
//!
//! The settlement of billing day D (run from 00:30 of D) rates day D − 1: units of the cycle
//! through D − 1 beyond the pool, minus those already beyond it through D − 2, priced at the
//! unit price and posted as one `usage` charge — bonus, then cash, the uncovered rest an
//! overdue item due on D (SVC-121, SVC-130). It runs once per tenant and day (a
//! `saas_job_runs` row), and the job resumes after each tenant's last settled day, so days
//! missed while no node ran are caught up (at most [`CATCH_UP_DAYS`] back).

use jiff::Timestamp;
use jiff::civil::Date;
use klaxon_core::model::Millis;
use klaxon_saas::calendar::{add_days, date_of, start_of};
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::notice::Category;
use klaxon_saas::quota::{AllowanceBasis, UnitType, allowance_pool, overage_charge};
use klaxon_saas::state::ServiceState;
use rust_decimal::Decimal;
use sqlx::{AnyConnection, Row};

use super::licences::{frame, load_orders};
use super::{Result, SaasFailure, SaasSettings, apply_on, lock_tenant, ms, notice_outbox, ts};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// How many missed billing days a settlement run catches up.
pub const CATCH_UP_DAYS: i64 = 62;

/// The settlement of day D runs from D 00:30 (SVC-121).
const SETTLE_AFTER_MS: Millis = 30 * 60_000;

/// One unit type of the price list's communication items (SVC-071, SVC-073).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommUnit {
    pub unit: UnitType,
    /// Allowance per licence and cycle.
    pub per_licence: u64,
    /// The trial's fixed allowance (SVC-160).
    pub trial: u64,
    /// Unit price of overage; 0 = not charged (and e-mail at 0 is not metered, SVC-070).
    pub price: Decimal,
}

/// A communication pack of the price list (SVC-072, SVC-080): `units` units of one type
/// for `price`, usable for `months` months from the purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommPack {
    pub unit: UnitType,
    pub units: u64,
    pub price: Decimal,
    pub months: i32,
}

/// The communication part of the price list in force.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommPlan {
    pub units: Vec<CommUnit>,
    /// Packs on sale; none = the price list sells no packs.
    pub packs: Vec<CommPack>,
}

pub(super) fn channel(unit: UnitType) -> &'static str {
    match unit {
        UnitType::Sms => "sms",
        UnitType::Voice => "voice",
        UnitType::Email => "email",
    }
}

/// One unit type's usage as of the end of a rated day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitUsage {
    pub unit: UnitType,
    pub pool: u64,
    /// Units of the cycle through the rated day.
    pub used: u64,
    /// Units beyond the pool sent on the rated day.
    pub overage: u64,
    pub charge: Decimal,
}

/// What the usage settlement of one billing day did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRun {
    pub account_id: i64,
    /// The billing day; the rated day is the one before.
    pub day: Date,
    pub ran_now: bool,
    pub outcome: String,
}

async fn sent_units(
    conn: &mut AnyConnection,
    account_id: i64,
    unit: UnitType,
    from: Millis,
    to: Millis,
) -> Result<u64> {
    if to <= from {
        return Ok(0);
    }
    // SVC-072: units drawn from a pack are paid for already; they neither use the
    // allowance nor count as overage.
    let mut sql = Sql::new("SELECT COUNT(*) AS n FROM notifications WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND channel = ")
        .bind(channel(unit))
        .push(" AND status = 'sent' AND sent_at >= ")
        .bind(from)
        .push(" AND sent_at < ")
        .bind(to)
        .push(
            " AND NOT EXISTS (SELECT 1 FROM saas_comm_units u WHERE u.account_id = notifications.account_id AND u.seq = notifications.seq AND u.source = 'pack')",
        );
    let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
    u64::try_from(get_i64(&row, "n")?).map_err(|e| super::corrupt("count", e))
}

async fn ran(conn: &mut AnyConnection, account_id: i64, day: Date) -> Result<Option<String>> {
    let mut q = Sql::new("SELECT outcome FROM saas_job_runs WHERE account_id = ");
    q.bind(account_id)
        .push(" AND job = 'usage' AND run_for = ")
        .bind(day.to_string());
    Ok(match q.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Some(get_str(&row, "outcome")?),
        None => None,
    })
}

impl Store {
    /// The daily usage settlement of billing `day` for one tenant (see the module comment).
    /// Runs once per tenant and day; a day whose 00:30 has not come is refused.
    pub async fn saas_settle_usage(
        &self,
        settings: &SaasSettings,
        plan: &CommPlan,
        account_id: i64,
        day: Date,
        now_ms: Millis,
    ) -> Result<UsageRun> {
        let tz = &settings.billing_tz;
        let day_start = start_of(day, tz)?;
        if ms(day_start) + SETTLE_AFTER_MS > now_ms {
            return Err(SaasFailure::FutureDay(day));
        }
        let rated = add_days(day, -1)?;
        let rated_start = start_of(rated, tz)?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now_ms).await?;
        if let Some(outcome) = ran(conn, account_id, day).await? {
            return Ok(UsageRun {
                account_id,
                day,
                ran_now: false,
                outcome,
            });
        }
        // The pool is the one of the licence cycle in force at the end of the rated day.
        let orders = load_orders(conn, account_id).await?;
        let last_instant =
            Timestamp::from_millisecond(ms(day_start) - 1).map_err(klaxon_saas::SaasError::from)?;
        let f = frame(settings, &t, &orders, last_instant)?;
        let trial = t.standing.state == ServiceState::Trial;
        let cycle_start = f.cycle.map_or(rated_start, |c| c.0);
        let mut usage = Vec::new();
        for u in &plan.units {
            // SVC-070: e-mail priced 0 is not metered.
            if u.unit == UnitType::Email && u.price.is_zero() {
                continue;
            }
            let pool = allowance_pool(if trial {
                AllowanceBasis::Fixed { allowance: u.trial }
            } else {
                AllowanceBasis::Prepaid {
                    per_licence: u.per_licence,
                    largest_pool_in_cycle: f.size,
                }
            });
            let from = ms(cycle_start);
            let before = sent_units(conn, account_id, u.unit, from, ms(rated_start)).await?;
            let through = sent_units(conn, account_id, u.unit, from, ms(day_start)).await?;
            let overage = through.saturating_sub(pool) - before.saturating_sub(pool);
            // SVC-162: a trial never pays overage.
            let charge = if trial {
                Decimal::ZERO
            } else {
                overage_charge(&[(overage, u.price)], t.currency)
            };
            usage.push(UnitUsage {
                unit: u.unit,
                pool,
                used: through,
                overage,
                charge,
            });
            // SVC-075: 80 % and 100 % of the pool, once per threshold and cycle.
            for pct in [80u64, 100] {
                let crossed = |n: u64| pool > 0 && n * 100 >= pool * pct;
                if crossed(through) {
                    let related =
                        format!("allowance:{}:{}:{pct}", channel(u.unit), ms(cycle_start));
                    if !notice_outbox::queued_or_given(conn, account_id, &related).await? {
                        notice_outbox::enqueue(
                            conn,
                            account_id,
                            Category::AllowanceThreshold,
                            "allowance_threshold",
                            (
                                format!("{pct} % of your {} allowance used", channel(u.unit)),
                                format!(
                                    "Your organisation has used {through} of the {pool} {} units \
                                     of its allowance in the cycle that started {}. Units beyond \
                                     the allowance are charged at {} {} each.\n",
                                    channel(u.unit),
                                    cycle_start.strftime("%Y-%m-%d %H:%M UTC"),
                                    t.currency.format(u.price),
                                    t.currency.code
                                ),
                            ),
                            &related,
                            now_ms,
                        )
                        .await?;
                    }
                }
            }
        }
        let total: Decimal = usage.iter().map(|u| u.charge).sum();
        let summary = usage
            .iter()
            .map(|u| {
                format!(
                    "{} {}/{} (+{} over)",
                    channel(u.unit),
                    u.used,
                    u.pool,
                    u.overage
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let outcome = if total.is_zero() {
            format!("{rated}: {summary}; nothing to charge")
        } else {
            // SVC-121: paid from bonus, then cash; the rest is an overdue item due on `day`.
            // A late run posts now (the ledger only grows forward) with the item still due
            // on the scheduled day.
            let reference = format!("usage:{rated}");
            let applied = apply_on(
                conn,
                settings,
                account_id,
                now_ms,
                "system",
                "usage_charge",
                |book, at| {
                    let out = book.charge(
                        at,
                        ChargeKind::Usage,
                        total,
                        true,
                        day,
                        &reference,
                        "system",
                    )?;
                    Ok(format!(
                        "usage {rated}: {summary}; charge {total}: bonus {}, cash {}, overdue {}",
                        out.bonus_paid,
                        out.cash_paid,
                        out.overdue
                            .map_or("none".to_string(), |(id, a)| format!("item {id} of {a}"))
                    ))
                },
            )
            .await?;
            applied.value
        };
        let mut ins = Sql::new(
            "INSERT INTO saas_job_runs (account_id, job, run_for, ran_at, outcome) VALUES (",
        );
        ins.bind(account_id)
            .push(", 'usage', ")
            .bind(day.to_string())
            .push(", ")
            .bind(now_ms)
            .push(", ")
            .bind(outcome.as_str())
            .push(")");
        ins.query_on(conn).execute(&mut *conn).await?;
        tx.commit().await?;
        Ok(UsageRun {
            account_id,
            day,
            ran_now: true,
            outcome,
        })
    }

    /// The worker's pass: every missed usage settlement up to today's (once 00:30 has come),
    /// for every commercial tenant that is served, at most [`CATCH_UP_DAYS`] back.
    pub async fn saas_settle_usage_due(
        &self,
        settings: &SaasSettings,
        plan: &CommPlan,
        now: Millis,
    ) -> Result<Vec<UsageRun>> {
        if plan.units.is_empty() {
            return Ok(Vec::new());
        }
        let tz = &settings.billing_tz;
        let mut today = date_of(ts(now)?, tz);
        if ms(start_of(today, tz)?) + SETTLE_AFTER_MS > now {
            today = add_days(today, -1)?;
        }
        // Each tenant resumes after its last settled day (or from the day after its billing
        // row was created), at most CATCH_UP_DAYS back.
        let mut sql = Sql::new(
            "SELECT t.account_id, t.created_at, (SELECT MAX(r.run_for) FROM saas_job_runs r WHERE r.account_id = t.account_id AND r.job = 'usage') AS last_run FROM saas_tenants t WHERE t.profile = 'commercial' AND t.state IN ('trial', 'active', 'overdue') AND NOT EXISTS (SELECT 1 FROM saas_job_runs r WHERE r.account_id = t.account_id AND r.job = 'usage' AND r.run_for = ",
        );
        sql.bind(today.to_string()).push(") ORDER BY t.account_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        let earliest = add_days(today, -CATCH_UP_DAYS)?;
        let mut out = Vec::new();
        for row in &rows {
            let account_id = get_i64(row, "account_id")?;
            let last: Option<String> = row
                .try_get("last_run")
                .map_err(|e| super::corrupt("last_run", e))?;
            let first = match last {
                Some(d) => add_days(d.parse().map_err(|e| super::corrupt("run_for", e))?, 1)?,
                None => add_days(date_of(ts(get_i64(row, "created_at")?)?, tz), 1)?,
            };
            let mut day = first.max(earliest);
            while day <= today {
                let run = self
                    .saas_settle_usage(settings, plan, account_id, day, now)
                    .await?;
                if run.ran_now {
                    out.push(run);
                }
                day = add_days(day, 1)?;
            }
        }
        Ok(out)
    }
}
