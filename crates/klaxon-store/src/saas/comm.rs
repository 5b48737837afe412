//! Communication packs (service-agreement.md SVC-072, migration 0068) and the funds check
//! before an overage unit (SVC-074).
//!
//! A pack is a price-list item (`deployment.communication.packs`) bought like any order:
//! paid from the funds at once (bonus, then cash; refused unchanged when they do not cover
//! it, SVC-100), recorded with its units and expiry.
//!
//! Before a metered notification row (`sms`, `voice`, and `email` when priced) is handed to
//! its provider, the delivery worker asks [`Store::saas_meter_unit`] where its unit comes
//! from. Under the tenant's row lock, once per row (a retry gets the same answer): the
//! cycle's allowance first, then the pack of that type with the earliest expiry that has
//! units left, then overage — for which the unit's price is reserved against the funds
//! (`klaxon_saas::quota::FundsCheck`: cash + eligible bonus − overage reserved and not yet
//! settled + the overdraft limit). When nothing covers it the unit is `skipped`: the row
//! fails with `quota_exhausted` on the incident timeline, the step's other rows (app push,
//! IM, unpriced e-mail) go out as usual, and the owner gets one `communication_skipped`
//! notice per cycle. A trial never pays overage (SVC-162). A row the provider refused is
//! released ([`Store::saas_unit_not_sent`]) and never counts (SVC-070).

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_saas::calendar::{add_months, date_of, start_of};
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::notice::Category;
use klaxon_saas::quota::{AllowanceBasis, FundsCheck, UnitType, allowance_pool};
use klaxon_saas::state::{OrderPurpose, Restrictions, ServiceState, order_allowed};
use rust_decimal::Decimal;
use sqlx::AnyConnection;

use super::licences::{frame, invalid, load_orders};
use super::metering::{CommPlan, channel};
use super::{
    Applied, Result, SaasSettings, amount_col, apply_on, bind_amount, decimal, lock_tenant, ms,
    notice_outbox, regime, ts,
};
use crate::Store;
use crate::db::{Sql, is_sqlite};
use crate::rows::{get_i64, get_str};

/// A pack the tenant bought, with the units drawn from it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRecord {
    pub account_id: i64,
    pub pack_id: i64,
    pub unit: UnitType,
    pub units: u64,
    pub used: u64,
    pub price: Decimal,
    pub bought_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Where a metered row's unit comes from (SVC-072/074).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeterDecision {
    /// Not a metered unit (unpriced e-mail, an exempt tenant, a type the plan does not meter).
    NotMetered,
    Allowance,
    Pack(i64),
    /// Overage with its price reserved against the funds.
    Overage(Decimal),
    /// Not sent: no allowance, pack or funds (`quota_exhausted`).
    Skipped(String),
}

fn unit_of(channel_name: &str) -> Option<UnitType> {
    match channel_name {
        "sms" => Some(UnitType::Sms),
        "voice" => Some(UnitType::Voice),
        "email" => Some(UnitType::Email),
        _ => None,
    }
}

/// The price-list item of a pack (SVC-080).
pub fn pack_sku(unit: UnitType, units: u64) -> String {
    format!("pack.{}.{units}", channel(unit))
}

async fn count(conn: &mut AnyConnection, sql: &mut Sql) -> Result<u64> {
    let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
    u64::try_from(get_i64(&row, "n")?).map_err(|e| super::corrupt("count", e))
}

pub(super) async fn load_packs(
    conn: &mut AnyConnection,
    account_id: i64,
    unit: Option<UnitType>,
) -> Result<Vec<PackRecord>> {
    let pg = !is_sqlite(conn);
    let mut sql = Sql::new(&format!(
        "SELECT p.pack_id, p.unit, p.units, {}, p.bought_at, p.expires_at, (SELECT COUNT(*) FROM saas_comm_units u WHERE u.account_id = p.account_id AND u.source = 'pack' AND u.pack_id = p.pack_id) AS used FROM saas_comm_packs p WHERE p.account_id = ",
        if pg {
            "p.price::text AS price"
        } else {
            "p.price"
        }
    ));
    sql.bind(account_id);
    if let Some(u) = unit {
        sql.push(" AND p.unit = ").bind(channel(u));
    }
    sql.push(" ORDER BY p.expires_at, p.pack_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            let unit_text = get_str(r, "unit")?;
            Ok(PackRecord {
                account_id,
                pack_id: get_i64(r, "pack_id")?,
                unit: unit_of(&unit_text).ok_or_else(|| super::corrupt("unit", &unit_text))?,
                units: u64::try_from(get_i64(r, "units")?)
                    .map_err(|e| super::corrupt("units", e))?,
                used: u64::try_from(get_i64(r, "used")?).map_err(|e| super::corrupt("used", e))?,
                price: decimal(r, "price")?,
                bought_at: ts(get_i64(r, "bought_at")?)?,
                expires_at: ts(get_i64(r, "expires_at")?)?,
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn insert_unit(
    conn: &mut AnyConnection,
    account_id: i64,
    seq: i64,
    channel_name: &str,
    source: &str,
    pack_id: i64,
    price: Decimal,
    now: Millis,
) -> Result<()> {
    let pg = !is_sqlite(conn);
    let mut sql = Sql::new(
        "INSERT INTO saas_comm_units (account_id, seq, channel, source, pack_id, price, decided_at) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(seq)
        .push(", ")
        .bind(channel_name)
        .push(", ")
        .bind(source)
        .push(", ")
        .bind(pack_id)
        .push(", ");
    bind_amount(&mut sql, pg, price);
    sql.push(", ").bind(now).push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

impl Store {
    /// SVC-072: buys a pack of the price list (`units` units of `unit`) from the funds;
    /// an order the funds cannot cover, a pack the price list does not sell, or one without
    /// the explicit acceptance of the terms in force (SVC-033) is refused unchanged.
    #[allow(clippy::too_many_arguments)]
    pub async fn saas_buy_pack(
        &self,
        settings: &SaasSettings,
        plan: &CommPlan,
        price_list: &str,
        account_id: i64,
        unit: UnitType,
        units: u64,
        acceptance: Option<&super::PurchaseAcceptance>,
        now: Millis,
        actor: &str,
    ) -> Result<(PackRecord, Applied<String>)> {
        let Some(item) = plan
            .packs
            .iter()
            .find(|p| p.unit == unit && p.units == units)
        else {
            let sold: Vec<String> = plan
                .packs
                .iter()
                .map(|p| format!("{} {}", p.units, channel(p.unit)))
                .collect();
            return Err(invalid(
                "pack",
                format!(
                    "the price list sells no pack of {units} {} units (on sale: {})",
                    channel(unit),
                    if sold.is_empty() {
                        "none".to_string()
                    } else {
                        sold.join(", ")
                    }
                ),
            )
            .into());
        };
        let at = ts(now)?;
        let tz = &settings.billing_tz;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "packs")?;
        // A pack is an `Other` order: not while overdue, suspended or ended (SVC-022).
        order_allowed(
            t.standing.state,
            OrderPurpose::Other,
            Restrictions {
                funds_frozen: t.funds_frozen,
                ..Restrictions::default()
            },
            false,
        )?;
        let mut next = Sql::new(
            "SELECT COALESCE(MAX(pack_id), 0) AS n FROM saas_comm_packs WHERE account_id = ",
        );
        next.bind(account_id);
        let pack_id = get_i64(&next.query_on(conn).fetch_one(&mut *conn).await?, "n")? + 1;
        let reference = format!("pack-order:{pack_id}");
        let expires_at = start_of(add_months(date_of(at, tz), item.months)?, tz)?;
        let price = item.price;
        let detail = format!(
            "pack order {pack_id}: {units} {} units until {expires_at}, {} {}",
            channel(unit),
            t.currency.format(price),
            t.currency.code
        );
        let applied = apply_on(
            conn,
            settings,
            account_id,
            now,
            actor,
            "pack_order",
            |book, at| {
                if !price.is_zero() {
                    book.charge(
                        at,
                        ChargeKind::Order,
                        price,
                        true,
                        date_of(at, tz),
                        &reference,
                        actor,
                    )?;
                }
                Ok(detail)
            },
        )
        .await?;
        let pg = !is_sqlite(conn);
        let mut sql = Sql::new(
            "INSERT INTO saas_comm_packs (account_id, pack_id, unit, units, price, price_list, bought_at, expires_at, actor) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(pack_id)
            .push(", ")
            .bind(channel(unit))
            .push(", ")
            .bind(i64::try_from(units).map_err(|e| super::corrupt("units", e))?)
            .push(", ");
        bind_amount(&mut sql, pg, price);
        sql.push(", ")
            .bind(price_list)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(ms(expires_at))
            .push(", ")
            .bind(actor)
            .push(")");
        sql.query_on(conn).execute(&mut *conn).await?;
        super::accept_for_order(conn, account_id, acceptance, "pack", &reference, now, actor)
            .await?;
        tx.commit().await?;
        Ok((
            PackRecord {
                account_id,
                pack_id,
                unit,
                units,
                used: 0,
                price,
                bought_at: at,
                expires_at,
            },
            applied,
        ))
    }

    /// The tenant's packs, earliest expiry first, with the units drawn from each.
    pub async fn saas_packs(&self, account_id: i64) -> Result<Vec<PackRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        load_packs(&mut conn, account_id, None).await
    }

    /// SVC-072/074: where the unit of notification row `seq` comes from (see the module
    /// comment). Decided once per row; asking again returns the first answer.
    pub async fn saas_meter_unit(
        &self,
        settings: &SaasSettings,
        plan: &CommPlan,
        account_id: i64,
        seq: i64,
        channel_name: &str,
        now: Millis,
    ) -> Result<MeterDecision> {
        let Some(unit) = unit_of(channel_name) else {
            return Ok(MeterDecision::NotMetered);
        };
        let Some(item) = plan.units.iter().find(|u| u.unit == unit) else {
            return Ok(MeterDecision::NotMetered);
        };
        // SVC-070: e-mail priced 0 is not metered.
        if unit == UnitType::Email && item.price.is_zero() {
            return Ok(MeterDecision::NotMetered);
        }
        let at = ts(now)?;
        let tz = &settings.billing_tz;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        if !regime(t.profile)?.billing_applies() {
            return Ok(MeterDecision::NotMetered);
        }
        let pg = !is_sqlite(conn);
        let mut existing = Sql::new(&format!(
            "SELECT source, pack_id, {} FROM saas_comm_units WHERE account_id = ",
            amount_col(pg, "price")
        ));
        existing.bind(account_id).push(" AND seq = ").bind(seq);
        if let Some(row) = existing.query_on(conn).fetch_optional(&mut *conn).await? {
            let source = get_str(&row, "source")?;
            return Ok(match source.as_str() {
                "allowance" => MeterDecision::Allowance,
                "pack" => MeterDecision::Pack(get_i64(&row, "pack_id")?),
                "overage" => MeterDecision::Overage(decimal(&row, "price")?),
                _ => MeterDecision::Skipped("quota_exhausted: decided before".into()),
            });
        }
        let trial = t.standing.state == ServiceState::Trial;
        let orders = load_orders(conn, account_id).await?;
        let f = frame(settings, &t, &orders, at)?;
        let cycle_start = match f.cycle {
            Some(c) => c.0,
            None => start_of(date_of(at, tz), tz)?,
        };
        let pool = allowance_pool(if trial {
            AllowanceBasis::Fixed {
                allowance: item.trial,
            }
        } else {
            AllowanceBasis::Prepaid {
                per_licence: item.per_licence,
                largest_pool_in_cycle: f.size,
            }
        });
        // 1. The cycle's allowance.
        let mut used = Sql::new("SELECT COUNT(*) AS n FROM saas_comm_units WHERE account_id = ");
        used.bind(account_id)
            .push(" AND channel = ")
            .bind(channel_name)
            .push(" AND source = 'allowance' AND decided_at >= ")
            .bind(ms(cycle_start));
        if count(conn, &mut used).await? < pool {
            insert_unit(
                conn,
                account_id,
                seq,
                channel_name,
                "allowance",
                0,
                Decimal::ZERO,
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(MeterDecision::Allowance);
        }
        // 2. Packs, earliest expiry first.
        if let Some(p) = load_packs(conn, account_id, Some(unit))
            .await?
            .into_iter()
            .find(|p| p.expires_at > at && p.used < p.units)
        {
            insert_unit(
                conn,
                account_id,
                seq,
                channel_name,
                "pack",
                p.pack_id,
                Decimal::ZERO,
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(MeterDecision::Pack(p.pack_id));
        }
        // 3. Overage, if the funds cover its price (SVC-074).
        let book = super::load_book(conn, settings, account_id, &t).await?;
        // Overage reserved since the last settled day is rated but not yet posted.
        let mut last = Sql::new(
            "SELECT COALESCE(MAX(run_for), '') AS d FROM saas_job_runs WHERE job = 'usage' AND account_id = ",
        );
        last.bind(account_id);
        let last_day = get_str(&last.query_on(conn).fetch_one(&mut *conn).await?, "d")?;
        let settled_until = if last_day.is_empty() {
            0
        } else {
            ms(start_of(
                last_day.parse().map_err(|e| super::corrupt("run_for", e))?,
                tz,
            )?)
        };
        let mut reserved = Sql::new(&format!(
            "SELECT {} FROM saas_comm_units WHERE source = 'overage' AND account_id = ",
            amount_col(pg, "price")
        ));
        reserved
            .bind(account_id)
            .push(" AND decided_at >= ")
            .bind(settled_until);
        let mut unsettled = Decimal::ZERO;
        for r in reserved.query_on(conn).fetch_all(&mut *conn).await? {
            unsettled += decimal(&r, "price")?;
        }
        let cash = book.ledger().cash();
        let mut check = FundsCheck {
            cash,
            eligible_bonus: book.available_funds(at, ChargeKind::Usage) - cash,
            unsettled,
            overdraft_limit: settings.params.comm_overdraft_limit,
            trial,
        };
        match check.reserve(item.price) {
            Ok(()) => {
                insert_unit(
                    conn,
                    account_id,
                    seq,
                    channel_name,
                    "overage",
                    0,
                    item.price,
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(MeterDecision::Overage(item.price))
            }
            Err(e) => {
                insert_unit(
                    conn,
                    account_id,
                    seq,
                    channel_name,
                    "skipped",
                    0,
                    Decimal::ZERO,
                    now,
                )
                .await?;
                // SVC-074, SVC-316: the owner is told the first time in the cycle.
                let related = format!("communication_skipped:{}", ms(cycle_start));
                if !notice_outbox::queued_or_given(conn, account_id, &related).await? {
                    notice_outbox::enqueue(
                        conn,
                        account_id,
                        Category::CommunicationSkipped,
                        "communication_skipped",
                        (
                            format!("{} messages are not being sent", channel(unit)),
                            format!(
                                "Your organisation has used its {} allowance for the cycle that \
                                 started {} and has no pack and not enough funds for further \
                                 units ({} {} each). Notifications still go out on the channels \
                                 that are not metered (app push, chat, unpriced e-mail); {} \
                                 units are skipped until you top up or buy a pack.\n",
                                channel(unit),
                                cycle_start.strftime("%Y-%m-%d %H:%M UTC"),
                                t.currency.format(item.price),
                                t.currency.code,
                                channel(unit)
                            ),
                        ),
                        &related,
                        now,
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(MeterDecision::Skipped(e.to_string()))
            }
        }
    }

    /// SVC-070: the provider refused the row (or the platform gave up on it): its unit does
    /// not count, so its allowance, pack unit or reserved funds are given back.
    pub async fn saas_unit_not_sent(&self, account_id: i64, seq: i64) -> Result<()> {
        let mut sql = Sql::new("DELETE FROM saas_comm_units WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND seq = ")
            .bind(seq)
            .push(" AND source <> 'skipped'");
        sql.query().execute(&self.inner.write).await?;
        Ok(())
    }
}
