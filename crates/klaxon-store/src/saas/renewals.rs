//! Renewals and the ends of terms and trials (service-agreement.md SVC-101 … SVC-107,
//! SVC-162; migration 0065), and the balance alert (SVC-087).
//!
//! A renewal is a licence order of kind `renewal`: paid from the funds at once like any
//! prepaid order (SVC-100), it continues the latest term seamlessly when paid before that
//! term's `ends_at` (same anchor, SVC-103) or starts a new term at its payment instant when
//! paid later (SVC-107, which also restores an `ended` tenant). The dates are
//! `klaxon_saas::pricing::Term`'s.
//!
//! [`Store::saas_billing_due`] is the periodic job: it ends trials and terms that ran out
//! (`ended(trial_ended | expired)` with the buffer's purge date, SVC-106/162/187), queues the
//! expiry reminders (SVC-105), makes the opt-in auto-renew attempts (SVC-104) and fires the
//! balance alert (SVC-087). Everything it does is keyed so a second run (another node, a
//! restart) does nothing again: reminders by their instant, attempts by a job-run row, the
//! alert by its armed flag. A late run acts at the scheduled instant, but only the latest
//! reminder that came due is sent: the earlier ones are past news.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use klaxon_core::model::Millis;
use klaxon_saas::calendar::{add_24h_days, date_of};
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::licence::Kind;
use klaxon_saas::notice::Category;
use klaxon_saas::order::{LineInput, PriceListVersion, quote};
use klaxon_saas::postpaid::BalanceAlert;
use klaxon_saas::pricing::{Term, auto_renew_attempts, check_renewal_quantity, expiry_reminders};
use klaxon_saas::state::{OrderPurpose, Restrictions, ServiceState, Trigger, order_allowed};
use klaxon_saas::tenant::{Change, Standing};
use klaxon_saas::termination::{Buffer, BufferStart};
use rust_decimal::Decimal;
use sqlx::AnyConnection;

use super::licences::{
    LicenceOrder, SOLD_EDITIONS, invalid, licence_sku, load_holders, load_orders, unit_price,
};
use super::{
    Applied, Result, SaasFailure, SaasSettings, apply_on, audit, bind_amount, lock_tenant, ms,
    notice_outbox, regime, save_standing, ts,
};
use crate::Store;
use crate::db::{Sql, is_sqlite};
use crate::rows::{get_i64, get_str};

/// A renewal as the operator (or the auto-renew job) asks for it; each field defaults to
/// the latest term's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renew {
    /// 1 or 12.
    pub months: Option<i32>,
    /// Licences of the new term; default the pool at the end of the latest term (its base
    /// and the add-ons ending with it).
    pub quantity: Option<u32>,
    /// `standard` or `pro` (SVC-103: a renewal may change the edition).
    pub edition: Option<String>,
    /// SVC-033: the explicit acceptance of the terms in force. A renewal asked for now needs
    /// it; the auto-renew job's charge rests on the owner's opt-in (SVC-104) and has none.
    pub acceptance: Option<super::PurchaseAcceptance>,
}

/// The tenant's billing settings of migration 0065.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingSettings {
    pub auto_renew: bool,
    pub balance_alert: Option<Decimal>,
    pub balance_alert_armed: bool,
}

/// The end of the latest prepaid term the tenant paid for, if it ever had one.
pub(super) async fn last_term_end(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<Option<Timestamp>> {
    // A postpaid tenant's service does not end with its last prepaid term (SVC-125).
    let mut sql = Sql::new(
        "SELECT COALESCE(MAX(ends_at), 0) AS ends_at FROM saas_licence_orders WHERE kind IN ('term', 'renewal') AND account_id = ",
    );
    sql.bind(account_id).push(
        " AND NOT EXISTS (SELECT 1 FROM saas_tenants WHERE billing_mode = 'postpaid' AND account_id = ",
    );
    sql.bind(account_id).push(")");
    let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
    let end = get_i64(&row, "ends_at")?;
    Ok(if end == 0 { None } else { Some(ts(end)?) })
}

async fn read_settings(conn: &mut AnyConnection, account_id: i64) -> Result<BillingSettings> {
    let mut sql = Sql::new(
        "SELECT auto_renew, balance_alert, balance_alert_armed FROM saas_tenants WHERE account_id = ",
    );
    sql.bind(account_id);
    let Some(row) = sql.query_on(conn).fetch_optional(&mut *conn).await? else {
        return Ok(BillingSettings {
            auto_renew: false,
            balance_alert: None,
            balance_alert_armed: true,
        });
    };
    let threshold = get_str(&row, "balance_alert")?;
    Ok(BillingSettings {
        auto_renew: get_i64(&row, "auto_renew")? != 0,
        balance_alert: if threshold.is_empty() {
            None
        } else {
            Some(
                threshold
                    .parse()
                    .map_err(|e| super::corrupt("balance_alert", e))?,
            )
        },
        balance_alert_armed: get_i64(&row, "balance_alert_armed")? != 0,
    })
}

/// The latest term (the chain's tail): the one a renewal continues.
fn tail(orders: &[LicenceOrder]) -> Option<&LicenceOrder> {
    orders
        .iter()
        .filter(|o| o.is_term())
        .max_by_key(|o| (o.ends_at, o.order_id))
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Renews inside the caller's transaction; a refusal has written nothing (the checks and
/// the charge come before any row is written).
#[allow(clippy::too_many_arguments)]
async fn renew_on(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    prices: &PriceListVersion,
    account_id: i64,
    renew: &Renew,
    now: Millis,
    actor: &str,
    action: &str,
) -> Result<(LicenceOrder, Applied<String>)> {
    let at = ts(now)?;
    let tz = &settings.billing_tz;
    let t = lock_tenant(conn, settings, account_id, now).await?;
    regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "renewals")?;
    order_allowed(
        t.standing.state,
        OrderPurpose::Renewal,
        Restrictions::default(),
        false,
    )?;
    let orders = load_orders(conn, account_id).await?;
    let Some(last) = tail(&orders).cloned() else {
        return Err(invalid(
            "term",
            "the tenant has no prepaid term to renew; buy licences to start one",
        )
        .into());
    };
    let last_term = last.term(tz)?;
    let months = renew.months.unwrap_or(last.months);
    if months != 1 && months != 12 {
        return Err(invalid("months", "a term lasts 1 or 12 months").into());
    }
    let quantity = match renew.quantity {
        Some(q) => q,
        None => orders
            .iter()
            .filter(|o| o.starts_at < last.ends_at && o.ends_at == last.ends_at)
            .map(|o| o.quantity)
            .sum(),
    };
    if quantity == 0 || quantity > 100_000 {
        return Err(invalid("quantity", "must be between 1 and 100000").into());
    }
    let edition = renew
        .edition
        .as_deref()
        .map_or_else(|| last.edition.clone(), |e| e.trim().to_lowercase());
    if !SOLD_EDITIONS.contains(&edition.as_str()) {
        return Err(invalid(
            "edition",
            format!("{edition:?}: licences are sold for standard or pro"),
        )
        .into());
    }
    // SVC-061: never fewer licences than the fixed assignments that carry over.
    let fixed: Vec<String> = load_holders(conn, account_id, now)
        .await?
        .into_iter()
        .filter(|h| h.kind == Kind::Fixed)
        .map(|h| format!("member {}", h.member_id))
        .collect();
    check_renewal_quantity(quantity, &fixed)?;
    // SVC-103/107: seamless before `ends_at` (anchor kept), otherwise a new first term.
    let term: Term = last_term.renewal(at, months, tz)?;
    let seamless = at < last.ends_at;
    // SVC-081: priced at the price in force at the payment instant.
    let unit = unit_price(prices, &edition, months)?;
    let q = quote(
        &prices.id,
        &[LineInput {
            sku: licence_sku(&edition, months),
            unit_price: unit,
            quantity: Decimal::from(quantity),
            factor: Decimal::ONE,
            promotion_fraction: None,
            promotion_amount: None,
        }],
        t.currency,
    )?;
    let total = q.total;
    let order_id = orders.iter().map(|o| o.order_id).max().unwrap_or(0) + 1;
    let reference = format!("licence-order:{order_id}");
    let detail = format!(
        "renewal order {order_id} ({}): {quantity} {edition} licences {} .. {}, {} {}",
        if seamless { "seamless" } else { "late" },
        term.starts_at,
        term.ends_at,
        t.currency.format(total),
        t.currency.code
    );
    let mut applied = apply_on(
        conn,
        settings,
        account_id,
        now,
        actor,
        action,
        |book, at| {
            book.charge(
                at,
                ChargeKind::Order,
                total,
                true,
                date_of(at, tz),
                &reference,
                actor,
            )?;
            Ok(detail)
        },
    )
    .await?;
    let pg = !is_sqlite(conn);
    let mut sql = Sql::new(
        "INSERT INTO saas_licence_orders (account_id, order_id, kind, edition, quantity, months, unit_price, total, price_list, state, paid_at, starts_at, ends_at, actor, anchor, offset_months) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(order_id)
        .push(", 'renewal', ")
        .bind(edition.as_str())
        .push(", ")
        .bind(i64::from(quantity))
        .push(", ")
        .bind(i64::from(months))
        .push(", ");
    bind_amount(&mut sql, pg, unit);
    sql.push(", ");
    bind_amount(&mut sql, pg, total);
    sql.push(", ")
        .bind(prices.id.as_str())
        .push(", 'fulfilled', ")
        .bind(now)
        .push(", ")
        .bind(ms(term.starts_at))
        .push(", ")
        .bind(ms(term.ends_at))
        .push(", ")
        .bind(actor)
        .push(", ")
        .bind(if seamless {
            term.anchor.to_string()
        } else {
            String::new()
        })
        .push(", ")
        .bind(i64::from(if seamless { term.offset_months } else { 0 }))
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    if seamless {
        // SVC-054: fixed licences are held for the term; a seamless renewal carries them on.
        let mut upd = Sql::new("UPDATE saas_licence_holdings SET held_until = ");
        upd.bind(ms(term.ends_at))
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND kind = 'fixed' AND released_at = 0 AND held_until = ")
            .bind(ms(last.ends_at));
        upd.query_on(conn).execute(&mut *conn).await?;
    }
    let mut upd = Sql::new("UPDATE saas_tenants SET edition = ");
    upd.bind(edition.as_str())
        .push(" WHERE account_id = ")
        .bind(account_id);
    upd.query_on(conn).execute(&mut *conn).await?;
    // SVC-107: a renewal paid during the buffer restores the service at the payment instant.
    if let ServiceState::Ended(_) = applied.state {
        let to = klaxon_saas::state::transition(applied.state, Trigger::Restore)?;
        let change = Change {
            from: applied.state,
            to,
            at,
            rule: "SVC-107",
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
        applied.changes.push(change);
        applied.state = to;
    }
    let order = LicenceOrder {
        order_id,
        kind: "renewal".into(),
        edition,
        quantity,
        months,
        unit_price: unit,
        total,
        price_list: prices.id.clone(),
        paid_at: at,
        starts_at: term.starts_at,
        ends_at: term.ends_at,
        anchor: seamless.then_some(term.anchor),
        offset_months: if seamless { term.offset_months } else { 0 },
    };
    Ok((order, applied))
}

/// What the periodic job finds due for one tenant at one instant.
#[derive(Debug, Default)]
struct Due {
    /// SVC-106/162: the trial or the last term ended at this instant, unrenewed.
    end: Option<(Timestamp, ServiceState, &'static str)>,
    /// SVC-105: the latest reminder that came due and was not given: (related key, ends_at,
    /// reminder instant).
    reminder: Option<(String, Timestamp, Timestamp)>,
    /// SVC-104: the auto-renew attempt that came due and was not made (its instant) and
    /// the term it renews.
    attempt: Option<(Timestamp, Term)>,
    /// SVC-087: the alert's new armed flag and whether to send the notice now.
    alert: Option<(bool, bool)>,
    /// SVC-122: ended postpaid cycles not settled yet.
    cycles: Vec<(Timestamp, Timestamp)>,
    /// SVC-123: the forecast warning owed (related key, funds, estimate).
    forecast: Option<(String, Decimal, Decimal)>,
}

impl Due {
    fn is_empty(&self) -> bool {
        self.end.is_none()
            && self.reminder.is_none()
            && self.attempt.is_none()
            && self.alert.is_none()
            && self.cycles.is_empty()
            && self.forecast.is_none()
    }
}

async fn job_ran(
    conn: &mut AnyConnection,
    account_id: i64,
    job: &str,
    run_for: &str,
) -> Result<bool> {
    let mut q = Sql::new("SELECT 1 AS one FROM saas_job_runs WHERE account_id = ");
    q.bind(account_id)
        .push(" AND job = ")
        .bind(job)
        .push(" AND run_for = ")
        .bind(run_for);
    Ok(q.query_on(conn).fetch_optional(&mut *conn).await?.is_some())
}

async fn record_run(
    conn: &mut AnyConnection,
    account_id: i64,
    job: &str,
    run_for: &str,
    now: Millis,
    outcome: &str,
) -> Result<()> {
    let mut ins =
        Sql::new("INSERT INTO saas_job_runs (account_id, job, run_for, ran_at, outcome) VALUES (");
    ins.bind(account_id)
        .push(", ")
        .bind(job)
        .push(", ")
        .bind(run_for)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(outcome)
        .push(")");
    ins.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Decides what is due for the tenant at `now`, reading only; run once without a lock to
/// skip idle tenants and again under the row lock before acting.
async fn due(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    prices: Option<&PriceListVersion>,
    account_id: i64,
    now: Timestamp,
) -> Result<Due> {
    let tz = &settings.billing_tz;
    let p = &settings.params;
    let mut sel = Sql::new(&format!(
        "SELECT {} FROM saas_tenants WHERE account_id = ",
        super::TENANT_COLUMNS
    ));
    sel.bind(account_id);
    let Some(row) = sel.query_on(conn).fetch_optional(&mut *conn).await? else {
        return Ok(Due::default());
    };
    let t = super::tenant_row(&row)?;
    if !regime(t.profile)?.billing_applies() {
        return Ok(Due::default());
    }
    let state = t.standing.state;
    let mut d = Due::default();
    let billing = read_settings(conn, account_id).await?;
    // SVC-087: available funds = cash + bonus, against the tenant's threshold.
    if let Some(threshold) = billing.balance_alert
        && matches!(
            state,
            ServiceState::Trial | ServiceState::Active | ServiceState::Overdue
        )
    {
        let book = super::load_book(conn, settings, account_id, &t).await?;
        let funds = book.ledger().cash() + book.ledger().bonus_total();
        let mut alert = BalanceAlert::restore(threshold, billing.balance_alert_armed)?;
        let fire = alert.observe(funds);
        if fire || alert.armed() != billing.balance_alert_armed {
            d.alert = Some((alert.armed(), fire));
        }
    }
    if t.postpaid_from.is_some() {
        // SVC-120 … 125: postpaid runs on with its cycles; nothing expires.
        if let Some(prices) = prices
            && matches!(state, ServiceState::Active | ServiceState::Overdue)
        {
            d.cycles = super::postpaid::cycles_due(conn, settings, &t, account_id, now).await?;
            d.forecast =
                super::postpaid::forecast_warning(conn, settings, prices, &t, account_id, now)
                    .await?;
        }
        return Ok(d);
    }
    // What ends when, and since when the tenant is owed reminders of it.
    let ending: Option<(Timestamp, Timestamp, Option<Term>)> = match state {
        ServiceState::Trial => {
            let end = add_24h_days(t.standing.since, p.trial_days)?;
            Some((end, t.standing.since, None))
        }
        ServiceState::Active | ServiceState::Overdue => {
            let orders = load_orders(conn, account_id).await?;
            match tail(&orders) {
                Some(last) => Some((last.ends_at, last.paid_at, Some(last.term(tz)?))),
                None => None,
            }
        }
        _ => None,
    };
    let Some((ends_at, obligation_from, term)) = ending else {
        return Ok(d);
    };
    if now >= ends_at {
        // SVC-106 `stop` (the only expiry policy while Free is not offered) and SVC-162.
        let (to, rule) = if state == ServiceState::Trial {
            (klaxon_saas::trial::at_trial_end(state, false)?, "SVC-162")
        } else {
            (
                klaxon_saas::trial::at_term_end(state, klaxon_saas::trial::OnExpiry::Stop, false)?,
                "SVC-106",
            )
        };
        d.end = Some((ends_at, to, rule));
        return Ok(d);
    }
    let reminders = expiry_reminders(
        ends_at,
        p.expiry_reminder_days,
        p.reminder_time,
        obligation_from,
        tz,
    )?;
    if let Some(r) = reminders.into_iter().rfind(|r| *r <= now) {
        let related = format!("expiry_reminder:{}:{}", ms(ends_at), ms(r));
        if !notice_outbox::queued_or_given(conn, account_id, &related).await? {
            d.reminder = Some((related, ends_at, r));
        }
    }
    if let Some(term) = term
        && billing.auto_renew
    {
        let attempts = auto_renew_attempts(&term, p.renewal_lead_hours)?;
        if let Some(a) = attempts.into_iter().rfind(|a| *a <= now)
            && !job_ran(conn, account_id, "auto_renew", &ms(a).to_string()).await?
        {
            d.attempt = Some((a, term));
        }
    }
    Ok(d)
}

fn reminder_text(
    ends_at: Timestamp,
    at: Timestamp,
    deadline: Timestamp,
    trial: bool,
) -> (String, String) {
    let what = if trial { "free trial" } else { "service term" };
    let subject = format!("Your {what} ends on {}", utc(ends_at));
    let mut content = format!(
        "Your organisation's {what} ends at {}. To keep the service without a gap, renew \
         (or, for a trial, place an order) before {}.\n",
        utc(ends_at),
        utc(deadline)
    );
    if at >= deadline {
        content.push_str(&format!(
            "The seamless-renewal deadline has passed, but renewing is still possible until {}.\n",
            utc(ends_at)
        ));
    }
    (subject, content)
}

impl Store {
    /// SVC-103/107: renews the latest prepaid term from the funds (bonus, then cash; an
    /// order the funds cannot cover is refused unchanged, SVC-100). Before that term's
    /// `ends_at` the new term starts exactly there with the anchor kept; later it starts
    /// now with a new anchor and restores an `ended` tenant (SVC-107). The quantity may not
    /// drop below the fixed licences assigned (SVC-061). One transaction.
    pub async fn saas_renew(
        &self,
        settings: &SaasSettings,
        prices: &PriceListVersion,
        account_id: i64,
        renew: &Renew,
        now: Millis,
        actor: &str,
    ) -> Result<(LicenceOrder, Applied<String>)> {
        let mut tx = self.inner.write.begin().await?;
        let out = renew_on(
            &mut tx, settings, prices, account_id, renew, now, actor, "renewal",
        )
        .await?;
        super::accept_for_order(
            &mut tx,
            account_id,
            renew.acceptance.as_ref(),
            "renewal",
            &format!("licence-order:{}", out.0.order_id),
            now,
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The tenant's auto-renew and balance-alert settings.
    pub async fn saas_billing_settings(&self, account_id: i64) -> Result<BillingSettings> {
        let mut conn = self.inner.read.acquire().await?;
        read_settings(&mut conn, account_id).await
    }

    /// SVC-104: turns the opt-in auto-renew on or off; audited.
    pub async fn saas_set_auto_renew(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        on: bool,
        now: Millis,
        actor: &str,
    ) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "auto-renew")?;
        let mut sql = Sql::new("UPDATE saas_tenants SET auto_renew = ");
        sql.bind(i64::from(on))
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id);
        sql.query_on(conn).execute(&mut *conn).await?;
        audit(
            conn,
            account_id,
            now,
            actor,
            "auto_renew",
            if on { "on" } else { "off" },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// SVC-087: sets (or with `None` removes) the balance-alert threshold; a new threshold
    /// starts armed. A negative threshold is refused naming the field.
    pub async fn saas_set_balance_alert(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        threshold: Option<Decimal>,
        now: Millis,
        actor: &str,
    ) -> Result<()> {
        if let Some(t) = threshold {
            BalanceAlert::new(t)?;
            settings.currency.check_posted("threshold", t)?;
        }
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "balance alerts")?;
        let mut sql = Sql::new("UPDATE saas_tenants SET balance_alert = ");
        sql.bind(threshold.map_or(String::new(), |t| t.to_string()))
            .push(", balance_alert_armed = 1, updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id);
        sql.query_on(conn).execute(&mut *conn).await?;
        audit(
            conn,
            account_id,
            now,
            actor,
            "balance_alert",
            &threshold.map_or("off".to_string(), |t| format!("below {t}")),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The periodic renewal job at `now` for every commercial tenant (see the module
    /// comment). `prices` is the price list in force, for auto-renewals; without one no
    /// auto-renew attempt is made. Returns what it did, per tenant.
    pub async fn saas_billing_due(
        &self,
        settings: &SaasSettings,
        prices: Option<&PriceListVersion>,
        now: Millis,
    ) -> Result<Vec<(i64, String)>> {
        let at = ts(now)?;
        let rows = Sql::new(
            "SELECT account_id FROM saas_tenants WHERE profile = 'commercial' AND state IN ('trial', 'active', 'overdue') ORDER BY account_id",
        )
        .query()
        .fetch_all(&self.inner.read)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let account_id = get_i64(row, "account_id")?;
            let idle = {
                let mut conn = self.inner.read.acquire().await?;
                due(&mut conn, settings, prices, account_id, at)
                    .await?
                    .is_empty()
            };
            if idle {
                continue;
            }
            for what in self
                .billing_due_one(settings, prices, account_id, now)
                .await?
            {
                out.push((account_id, what));
            }
        }
        Ok(out)
    }

    async fn billing_due_one(
        &self,
        settings: &SaasSettings,
        prices: Option<&PriceListVersion>,
        account_id: i64,
        now: Millis,
    ) -> Result<Vec<String>> {
        let at = ts(now)?;
        let tz: &TimeZone = &settings.billing_tz;
        let mut done = Vec::new();
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        let d = due(conn, settings, prices, account_id, at).await?;
        if let Some((armed, fire)) = d.alert {
            let mut sql = Sql::new("UPDATE saas_tenants SET balance_alert_armed = ");
            sql.bind(i64::from(armed))
                .push(" WHERE account_id = ")
                .bind(account_id);
            sql.query_on(conn).execute(&mut *conn).await?;
            if fire {
                let b = read_settings(conn, account_id).await?;
                let threshold = b.balance_alert.unwrap_or_default();
                let c = settings.currency;
                notice_outbox::enqueue(
                    conn,
                    account_id,
                    Category::BalanceLow,
                    "balance_low",
                    (
                        "Your balance is below your alert threshold".into(),
                        format!(
                            "The available funds of your organisation (cash and bonus) fell below \
                             {} {} at {}. Top up to keep paying for the service.\n",
                            c.format(threshold),
                            c.code,
                            utc(at)
                        ),
                    ),
                    &format!("balance_low:{now}"),
                    now,
                )
                .await?;
                done.push(format!("balance alert below {}", c.format(threshold)));
            }
        }
        if let Some(prices) = prices {
            for cycle in &d.cycles {
                let what = super::postpaid::settle_cycle(
                    conn, settings, prices, account_id, &t.edition, *cycle, now,
                )
                .await?;
                done.push(what);
            }
        }
        if let Some((related, funds, estimate)) = &d.forecast {
            let c = settings.currency;
            notice_outbox::enqueue(
                conn,
                account_id,
                Category::BalanceLow,
                "postpaid_forecast",
                (
                    "Your funds may not cover this cycle".into(),
                    format!(
                        "The estimated licence charge at the end of the current cycle is {} {} \
                         (active members so far × the per-user price); the available funds are \
                         {} {}. Top up to avoid an overdue amount.\n",
                        c.format(*estimate),
                        c.code,
                        c.format(*funds),
                        c.code
                    ),
                ),
                related,
                now,
            )
            .await?;
            done.push(format!("forecast warning: funds {funds} below {estimate}"));
        }
        if let Some((ends_at, to, rule)) = d.end {
            // SVC-187: the buffer starts when the service ends.
            let buffer = Buffer::start(ends_at, BufferStart::Normal, &settings.params)?;
            let change = Change {
                from: t.standing.state,
                to,
                at: ends_at,
                rule,
            };
            let standing = Standing {
                state: to,
                since: ends_at,
                purge_at: matches!(to, ServiceState::Ended(_)).then_some(buffer.purge_at),
            };
            save_standing(
                conn,
                account_id,
                &standing,
                std::slice::from_ref(&change),
                now,
            )
            .await?;
            done.push(format!("{} -> {to} at {ends_at} ({rule})", change.from));
        }
        if let Some((related, ends_at, r)) = &d.reminder {
            let trial = t.standing.state == ServiceState::Trial;
            let deadline =
                klaxon_saas::calendar::add_hours(*ends_at, -settings.params.renewal_lead_hours)?;
            notice_outbox::enqueue(
                conn,
                account_id,
                Category::ExpiryReminder,
                "expiry_reminder",
                reminder_text(*ends_at, *r, deadline, trial),
                related,
                now,
            )
            .await?;
            done.push(format!(
                "expiry reminder for {ends_at} ({})",
                date_of(*r, tz)
            ));
        }
        if let (Some((attempt, term)), Some(prices)) = (&d.attempt, prices) {
            let key = ms(*attempt).to_string();
            // SVC-104: same edition, quantity and term length, at the in-force price. A
            // refusal wrote nothing, so the same transaction records the attempt.
            let outcome = match renew_on(
                conn,
                settings,
                prices,
                account_id,
                &Renew {
                    months: Some(term.months),
                    ..Renew::default()
                },
                now,
                "system",
                "auto_renewal",
            )
            .await
            {
                Ok((order, _)) => format!(
                    "auto-renewed: order {} until {}",
                    order.order_id, order.ends_at
                ),
                Err(SaasFailure::Rule(e)) => {
                    let related = format!("auto_renew_failed:{}", ms(term.ends_at));
                    if !notice_outbox::queued_or_given(conn, account_id, &related).await? {
                        notice_outbox::enqueue(
                            conn,
                            account_id,
                            Category::AutoRenewFailed,
                            "auto_renew_failed",
                            (
                                "Automatic renewal failed".into(),
                                format!(
                                    "The automatic renewal of your organisation's service term \
                                     ending {} could not be paid: {e}. It is tried again every \
                                     6 hours until the term ends; top up or renew manually to \
                                     keep the service without a gap.\n",
                                    utc(term.ends_at)
                                ),
                            ),
                            &related,
                            now,
                        )
                        .await?;
                    }
                    format!("auto-renew failed: {e}")
                }
                Err(other) => return Err(other),
            };
            record_run(conn, account_id, "auto_renew", &key, now, &outcome).await?;
            audit(
                conn,
                account_id,
                now,
                "system",
                "auto_renew_attempt",
                &outcome,
            )
            .await?;
            done.push(outcome);
        }
        tx.commit().await?;
        Ok(done)
    }
}
