//! Postpaid billing (service-agreement.md SVC-120 … SVC-125; migration 0066): enabling it,
//! the cycle-end licence charge for the cycle's active members, the cycle statement and the
//! warning before a cycle end the funds will not cover.
//!
//! A postpaid tenant's licence pool is unlimited and its monthly cycles are anchored on the
//! instant postpaid took effect (`licences::frame`). The billing job
//! ([`super::renewals`]) settles every ended cycle once — a `saas_job_runs` row `postpaid_cycle`
//! keyed by the cycle's start, whose `ran_at` is the settlement instant — and a cycle's
//! statement covers the ledger entries posted after the previous cycle's settlement up to and
//! including its own, so consecutive statements never overlap and never change.

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_saas::calendar::{add_24h_days, date_of};
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::notice::Category;
use klaxon_saas::order::PriceListVersion;
use klaxon_saas::postpaid::{EnableFacts, Statement, check_enable, postpaid_starts_at, statement};
use klaxon_saas::state::{OrderPurpose, Restrictions, ServiceState, Trigger, order_allowed};
use klaxon_saas::tenant::{Change, Standing};
use rust_decimal::Decimal;
use sqlx::AnyConnection;

use super::licences::{active_users, invalid, load_orders};
use super::{
    Result, SaasSettings, TenantRow, apply_on, audit, load_book, lock_tenant, ms, notice_outbox,
    regime, save_standing, ts,
};
use crate::Store;
use crate::db::Sql;
use crate::rows::get_i64;

/// The price-list item of one postpaid active user of `edition` for one cycle (SVC-080).
pub fn postpaid_sku(edition: &str) -> String {
    format!("licence.{edition}.postpaid")
}

fn per_user_price(prices: &PriceListVersion, edition: &str) -> Result<Decimal> {
    let sku = postpaid_sku(edition);
    prices.price(&sku).ok_or_else(|| {
        invalid(
            "price_list",
            format!("price list {} has no postpaid price {sku}", prices.id),
        )
        .into()
    })
}

/// One settled postpaid cycle, as the statement command lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleStatement {
    pub cycle: (Timestamp, Timestamp),
    pub settled_at: Timestamp,
    pub active_members: u64,
    pub statement: Statement,
}

/// The ended postpaid cycles not settled yet, oldest first (at most a year of them).
pub(super) async fn cycles_due(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    t: &TenantRow,
    account_id: i64,
    now: Timestamp,
) -> Result<Vec<(Timestamp, Timestamp)>> {
    let Some(from) = t.postpaid_from else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for k in 0..1200 {
        let c = klaxon_saas::pricing::licence_cycle(from, k, &settings.billing_tz)?;
        if c.1 > now {
            break;
        }
        if !settled(conn, account_id, c.0).await? {
            out.push(c);
        }
    }
    // A node down for longer than a year leaves the older cycles to the operator.
    let keep = out.len().saturating_sub(12);
    Ok(out.split_off(keep))
}

async fn settled(
    conn: &mut AnyConnection,
    account_id: i64,
    cycle_start: Timestamp,
) -> Result<bool> {
    let mut q = Sql::new("SELECT 1 AS one FROM saas_job_runs WHERE account_id = ");
    q.bind(account_id)
        .push(" AND job = 'postpaid_cycle' AND run_for = ")
        .bind(ms(cycle_start).to_string());
    Ok(q.query_on(conn).fetch_optional(&mut *conn).await?.is_some())
}

/// SVC-122/124: posts the cycle's licence charge (active members × the per-user price;
/// bonus, then cash, the rest an overdue item due on the cycle-end date), records the
/// settlement, and queues the statement notice. Inside the caller's transaction.
pub(super) async fn settle_cycle(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    prices: &PriceListVersion,
    account_id: i64,
    edition: &str,
    cycle: (Timestamp, Timestamp),
    now: Millis,
) -> Result<String> {
    let tz = &settings.billing_tz;
    let active = active_users(conn, account_id, cycle).await?.len() as u64;
    let price = per_user_price(prices, edition)?;
    let currency = settings.currency;
    let amount = currency.round(price * Decimal::from(active));
    let due = date_of(cycle.1, tz);
    let reference = format!("postpaid-cycle:{}", date_of(cycle.0, tz));
    let detail = if amount.is_zero() {
        format!("{reference}: no active member, nothing charged")
    } else {
        let applied = apply_on(
            conn,
            settings,
            account_id,
            now,
            "system",
            "postpaid_cycle",
            |book, at| {
                let out = book.charge(
                    at,
                    ChargeKind::LicenceCycle,
                    amount,
                    true,
                    due,
                    &reference,
                    "system",
                )?;
                Ok(format!(
                    "{reference}: {active} active × {} = {} {}: bonus {}, cash {}, overdue {}",
                    currency.format(price),
                    currency.format(amount),
                    currency.code,
                    out.bonus_paid,
                    out.cash_paid,
                    out.overdue.map_or("none".to_string(), |(id, a)| format!(
                        "item {id} of {a} due {due}"
                    ))
                ))
            },
        )
        .await?;
        applied.value
    };
    let from = after_last_settlement(conn, account_id)
        .await?
        .unwrap_or(cycle.0);
    let mut ins =
        Sql::new("INSERT INTO saas_job_runs (account_id, job, run_for, ran_at, outcome) VALUES (");
    ins.bind(account_id)
        .push(", 'postpaid_cycle', ")
        .bind(ms(cycle.0).to_string())
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(detail.as_str())
        .push(")");
    ins.query_on(conn).execute(&mut *conn).await?;
    // SVC-124: the statement, to the owner and the billing contact.
    let t = lock_tenant(conn, settings, account_id, now).await?;
    let book = load_book(conn, settings, account_id, &t).await?;
    let s = statement(book.ledger(), from, ts(now + 1)?);
    let c = currency;
    notice_outbox::enqueue(
        conn,
        account_id,
        Category::Statement,
        "statement",
        (
            format!(
                "Statement for {} … {}",
                date_of(cycle.0, tz),
                klaxon_saas::calendar::add_days(due, -1)?
            ),
            format!(
                "Charges {}, cash received {}, bonus used {}, new overdue {}, penalties {}, \
                 refunds {}; closing cash {}, closing debt {} ({}). Active members this cycle: \
                 {active}. `klaxon admin tenant statement` or the billing centre gives the \
                 entries.\n",
                c.format(s.charges),
                c.format(s.cash_received),
                c.format(s.bonus_used),
                c.format(s.new_overdue),
                c.format(s.penalties_posted),
                c.format(s.refunds),
                c.format(s.closing_cash),
                c.format(s.closing_debt),
                c.code
            ),
        ),
        &format!("statement:{}", ms(cycle.0)),
        now,
    )
    .await?;
    Ok(detail)
}

/// Just after the latest settlement so far: where the next statement starts.
async fn after_last_settlement(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<Option<Timestamp>> {
    let mut q = Sql::new(
        "SELECT COALESCE(MAX(ran_at), 0) AS ran_at FROM saas_job_runs WHERE job = 'postpaid_cycle' AND account_id = ",
    );
    q.bind(account_id);
    let row = q.query_on(conn).fetch_one(&mut *conn).await?;
    match get_i64(&row, "ran_at")? {
        0 => Ok(None),
        t => Ok(Some(ts(t + 1)?)),
    }
}

/// SVC-123: the warning owed 3 days before the current cycle's end when the funds are
/// below the estimated licence charge (active so far × price): its related key.
pub(super) async fn forecast_warning(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    prices: &PriceListVersion,
    t: &TenantRow,
    account_id: i64,
    now: Timestamp,
) -> Result<Option<(String, Decimal, Decimal)>> {
    let Some(from) = t.postpaid_from.filter(|f| *f <= now) else {
        return Ok(None);
    };
    let cycle = super::licences::postpaid_cycle(from, now, &settings.billing_tz)?;
    if now < add_24h_days(cycle.1, -3)? {
        return Ok(None);
    }
    let related = format!("postpaid_forecast:{}", ms(cycle.1));
    if notice_outbox::queued_or_given(conn, account_id, &related).await? {
        return Ok(None);
    }
    let active = active_users(conn, account_id, cycle).await?.len() as u64;
    let estimate = per_user_price(prices, &t.edition)? * Decimal::from(active);
    let book = load_book(conn, settings, account_id, t).await?;
    let funds = book.ledger().cash() + book.ledger().bonus_total();
    Ok((funds < estimate).then_some((related, funds, settings.currency.round(estimate))))
}

impl Store {
    /// SVC-120/125: enables postpaid after the checks of `check_enable` (no debt, funds ≥
    /// the minimum balance, explicit acceptance) and only with a postpaid price for the
    /// tenant's edition. Takes effect now — a trial tenant becomes `active` — or, with a
    /// prepaid term in force, at its end (no refund of the remainder). Returns the instant
    /// postpaid takes effect, the anchor of its cycles. Refusals change nothing.
    pub async fn saas_enable_postpaid(
        &self,
        settings: &SaasSettings,
        prices: &PriceListVersion,
        account_id: i64,
        acceptance: Option<&super::PurchaseAcceptance>,
        now: Millis,
        actor: &str,
    ) -> Result<Timestamp> {
        let at = ts(now)?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "postpaid")?;
        if t.postpaid_from.is_some() {
            return Err(invalid("billing_mode", "the tenant is already postpaid").into());
        }
        order_allowed(
            t.standing.state,
            OrderPurpose::Other,
            Restrictions::default(),
            false,
        )?;
        let book = load_book(conn, settings, account_id, &t).await?;
        check_enable(
            &EnableFacts {
                has_overdue_item: book.payable_total(at)? > Decimal::ZERO,
                linked_overdue_past_grace: false,
                verification_required: false,
                entity_verified: true,
                funds: book.ledger().cash() + book.ledger().bonus_total(),
                explicit_acceptance: acceptance.is_some_and(|a| !a.accepted_by.trim().is_empty()),
            },
            &settings.params,
        )?;
        per_user_price(prices, &t.edition)?;
        let term_end = load_orders(conn, account_id)
            .await?
            .iter()
            .filter(|o| o.is_term() && o.starts_at <= at && at < o.ends_at)
            .map(|o| o.ends_at)
            .max();
        let starts = postpaid_starts_at(at, term_end);
        let mut sql =
            Sql::new("UPDATE saas_tenants SET billing_mode = 'postpaid', postpaid_from = ");
        sql.bind(ms(starts))
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id);
        sql.query_on(conn).execute(&mut *conn).await?;
        if t.standing.state == ServiceState::Trial && starts == at {
            let to = klaxon_saas::state::transition(ServiceState::Trial, Trigger::PaidActivation)?;
            let change = Change {
                from: ServiceState::Trial,
                to,
                at,
                rule: "SVC-120",
            };
            let standing = Standing {
                state: to,
                since: at,
                purge_at: None,
            };
            save_standing(
                conn,
                account_id,
                &standing,
                std::slice::from_ref(&change),
                now,
            )
            .await?;
        }
        super::accept_for_order(
            conn,
            account_id,
            acceptance,
            "postpaid",
            &format!("postpaid:{}", ms(starts)),
            now,
            actor,
        )
        .await?;
        audit(
            conn,
            account_id,
            now,
            actor,
            "enable_postpaid",
            &format!("postpaid from {starts} (terms accepted explicitly)"),
        )
        .await?;
        tx.commit().await?;
        Ok(starts)
    }

    /// SVC-124: the statements of the tenant's settled postpaid cycles, oldest first.
    pub async fn saas_statements(
        &self,
        settings: &SaasSettings,
        account_id: i64,
    ) -> Result<Vec<CycleStatement>> {
        let mut conn = self.inner.read.acquire().await?;
        let conn: &mut AnyConnection = &mut conn;
        let mut sel = Sql::new(&format!(
            "SELECT {} FROM saas_tenants WHERE account_id = ",
            super::TENANT_COLUMNS
        ));
        sel.bind(account_id);
        let Some(row) = sel.query_on(conn).fetch_optional(&mut *conn).await? else {
            return Ok(Vec::new());
        };
        let t = super::tenant_row(&row)?;
        let Some(from) = t.postpaid_from else {
            return Ok(Vec::new());
        };
        let book = load_book(conn, settings, account_id, &t).await?;
        let mut q = Sql::new(
            "SELECT run_for, ran_at FROM saas_job_runs WHERE job = 'postpaid_cycle' AND account_id = ",
        );
        q.bind(account_id).push(" ORDER BY ran_at");
        let rows = q.query_on(conn).fetch_all(&mut *conn).await?;
        let mut out = Vec::new();
        let mut previous: Option<Timestamp> = None;
        for r in &rows {
            let start = ts(crate::rows::get_str(r, "run_for")?
                .parse::<i64>()
                .map_err(|e| super::corrupt("run_for", e))?)?;
            let settled_at = ts(get_i64(r, "ran_at")?)?;
            let mut cycle = None;
            for k in 0..1200 {
                let c = klaxon_saas::pricing::licence_cycle(from, k, &settings.billing_tz)?;
                if c.0 >= start {
                    cycle = Some(c);
                    break;
                }
            }
            let cycle = cycle.unwrap_or((start, settled_at));
            let begin = previous.unwrap_or(cycle.0);
            let end = ts(ms(settled_at) + 1)?;
            out.push(CycleStatement {
                cycle,
                settled_at,
                active_members: active_users(conn, account_id, cycle).await?.len() as u64,
                statement: statement(book.ledger(), begin, end),
            });
            previous = Some(end);
        }
        Ok(out)
    }
}
