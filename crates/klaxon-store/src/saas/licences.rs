//! SaaS licences (service-agreement.md §4, migration 0024): licence orders paid from the
//! balance, the pool they make, who holds a licence (fixed or temporary) and the active
//! users of each licence cycle. The decisions are `klaxon_saas::licence::LicencePool`'s; this
//! module loads its inputs, runs it under the tenant's row lock and stores what it decided.
//!
//! Time is passed in (`now`), never read here. Nothing expires by a job: a temporary
//! licence's row ends at its cycle's end (`held_until`) and a fixed one at the term's end,
//! so "released at the end of each cycle" (SVC-055) holds at every instant on every node.

use std::collections::BTreeMap;

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::calendar::{add_24h_days, date_of};
use klaxon_saas::ledger::ChargeKind;
use klaxon_saas::licence::{Action, Actor, Grant, Kind, LicencePool, PoolSize};
use klaxon_saas::mode::BillingProfile;
use klaxon_saas::order::{LineInput, PriceListVersion, quote};
use klaxon_saas::pricing::{Term, add_on_price};
use klaxon_saas::state::{OrderPurpose, Restrictions, ServiceState, Trigger, order_allowed};
use klaxon_saas::tenant::{Change, Standing};
use rust_decimal::Decimal;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{
    Applied, Result, SaasFailure, SaasSettings, TENANT_COLUMNS, TenantRow, amount_col, apply_on,
    audit, bind_amount, corrupt, decimal, lock_tenant, ms, regime, save_standing, tenant_row, ts,
};
use crate::Store;
use crate::db::{Sql, is_sqlite};
use crate::rows::{get_i64, get_str};

/// The editions a licence order can buy (SVC-050: Trial and Free are not sold, Unlimited is
/// the exempt tenants').
pub(super) const SOLD_EDITIONS: [&str; 2] = ["standard", "pro"];

/// The price-list item of one licence of `edition` for a term of `months` (SVC-080).
pub fn licence_sku(edition: &str, months: i32) -> String {
    format!("licence.{edition}.{months}m")
}

/// A licence purchase as the operator (or later the billing centre) asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyLicences {
    /// `standard` or `pro`; default the term in force's edition, else the tenant's.
    pub edition: Option<String>,
    pub quantity: u32,
    /// Term length of a new term: 1 or 12. An add-on always ends with the term in force.
    pub months: i32,
    /// SVC-033: the explicit acceptance of the terms in force; without it the order is
    /// refused.
    pub acceptance: Option<super::PurchaseAcceptance>,
}

/// One paid licence order (SVC-082: paid from the balance at once, so `fulfilled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceOrder {
    pub order_id: i64,
    /// `term` (starts a prepaid term, SVC-101), `renewal` (a term continuing or replacing
    /// an earlier one, SVC-103/107) or `add_on` (SVC-061).
    pub kind: String,
    pub edition: String,
    pub quantity: u32,
    pub months: i32,
    pub unit_price: Decimal,
    pub total: Decimal,
    pub price_list: String,
    pub paid_at: Timestamp,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// SVC-101: the anchor of a continuous renewal (`None`: the order's own start date)
    /// and the months from the anchor to the term's start.
    pub anchor: Option<jiff::civil::Date>,
    pub offset_months: i32,
}

impl LicenceOrder {
    /// `term` and `renewal` orders each make a prepaid term; `add_on` orders do not.
    pub fn is_term(&self) -> bool {
        self.kind == "term" || self.kind == "renewal"
    }

    /// The prepaid term this order made (SVC-101/103), with its anchor kept.
    pub fn term(&self, tz: &jiff::tz::TimeZone) -> Result<Term> {
        let Some(anchor) = self.anchor else {
            return Ok(Term::first(self.starts_at, self.months, tz)?);
        };
        let start_date = date_of(self.starts_at, tz);
        let end_date = date_of(self.ends_at, tz);
        Ok(Term {
            starts_at: self.starts_at,
            start_date,
            anchor,
            offset_months: self.offset_months,
            months: self.months,
            ends_at: self.ends_at,
            end_date,
            term_days: klaxon_saas::calendar::days_between(start_date, end_date)?,
        })
    }
}

/// A current licence holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceHolder {
    pub member_id: i64,
    pub kind: Kind,
    pub held_from: Timestamp,
    pub held_until: Timestamp,
}

/// SVC-053: a member active in the cycle, with their first licensed action (none for a
/// fixed holder who has not acted yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveUser {
    pub member_id: i64,
    pub first_licensed_action: Option<Timestamp>,
}

/// The tenant's licences at an instant (SVC-058: pool, holders, free count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicencePoolView {
    /// False for exempt tenants (SVC-402): every member is licensed.
    pub enforced: bool,
    pub state: ServiceState,
    /// The edition of the term in force, else the tenant's.
    pub edition: String,
    /// `None` = unlimited.
    pub size: Option<u32>,
    pub in_use: u32,
    /// The prepaid term in force (start, end).
    pub term: Option<(Timestamp, Timestamp)>,
    /// The licence cycle containing the instant (SVC-056); none without a term or trial.
    pub cycle: Option<(Timestamp, Timestamp)>,
    pub holders: Vec<LicenceHolder>,
    /// Active users of `cycle` so far (SVC-053).
    pub active: Vec<ActiveUser>,
    pub orders: Vec<LicenceOrder>,
}

impl LicencePoolView {
    pub fn free(&self) -> Option<u32> {
        self.size.map(|s| s.saturating_sub(self.in_use))
    }
}

/// What the licence gate decided for one licensed action (SVC-052/055).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenceGate {
    /// The tenant is exempt (SVC-402): licence enforcement off.
    NotNeeded,
    /// The member already held a licence.
    Held,
    /// A free licence was taken as a temporary licence before the action ran (SVC-055).
    Obtained,
    /// No free licence: the action must be refused with `NoLicense`; nothing was written.
    Refused { pool: u32 },
}

/// Bad input, naming the field (the rules crate keeps its constructor to itself).
pub(super) fn invalid(field: &'static str, message: impl Into<String>) -> SaasError {
    SaasError::Invalid {
        field,
        message: message.into(),
    }
}

fn kind_text(k: Kind) -> &'static str {
    match k {
        Kind::Fixed => "fixed",
        Kind::Temporary => "temporary",
    }
}

fn kind_of(s: &str) -> Result<Kind> {
    match s {
        "fixed" => Ok(Kind::Fixed),
        "temporary" => Ok(Kind::Temporary),
        other => Err(corrupt("kind", other)),
    }
}

fn count(n: i64, what: &str) -> Result<u32> {
    u32::try_from(n).map_err(|e| corrupt(what, e))
}

fn order_row(row: &AnyRow) -> Result<LicenceOrder> {
    Ok(LicenceOrder {
        order_id: get_i64(row, "order_id")?,
        kind: get_str(row, "kind")?,
        edition: get_str(row, "edition")?,
        quantity: count(get_i64(row, "quantity")?, "quantity")?,
        months: i32::try_from(get_i64(row, "months")?).map_err(|e| corrupt("months", e))?,
        unit_price: decimal(row, "unit_price")?,
        total: decimal(row, "total")?,
        price_list: get_str(row, "price_list")?,
        paid_at: ts(get_i64(row, "paid_at")?)?,
        starts_at: ts(get_i64(row, "starts_at")?)?,
        ends_at: ts(get_i64(row, "ends_at")?)?,
        anchor: match get_str(row, "anchor")?.as_str() {
            "" => None,
            a => Some(a.parse().map_err(|e| corrupt("anchor", e))?),
        },
        offset_months: i32::try_from(get_i64(row, "offset_months")?)
            .map_err(|e| corrupt("offset_months", e))?,
    })
}

pub(super) async fn load_orders(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<Vec<LicenceOrder>> {
    let pg = !is_sqlite(conn);
    let mut sql = Sql::new(&format!(
        "SELECT order_id, kind, edition, quantity, months, {}, {}, price_list, paid_at, starts_at, ends_at, anchor, offset_months FROM saas_licence_orders WHERE account_id = ",
        amount_col(pg, "unit_price"),
        amount_col(pg, "total"),
    ));
    sql.bind(account_id).push(" ORDER BY order_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter().map(order_row).collect()
}

/// Licences of members who were deleted or disabled are free (SVC-054); their rows are
/// closed at the member's last update, the time of the removal.
async fn close_removed_members(conn: &mut AnyConnection, account_id: i64) -> Result<()> {
    let mut sql = Sql::new(
        "UPDATE saas_licence_holdings SET released_at = (SELECT m.updated_at FROM members m WHERE m.member_id = saas_licence_holdings.member_id), released_by = 'member removed' WHERE account_id = ",
    );
    sql.bind(account_id).push(
        " AND released_at = 0 AND member_id IN (SELECT member_id FROM members WHERE account_id = ",
    );
    sql.bind(account_id)
        .push(" AND status IN ('deleted', 'disabled'))");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// The holdings current at `now`, of members still enabled.
pub(super) async fn load_holders(
    conn: &mut AnyConnection,
    account_id: i64,
    now: Millis,
) -> Result<Vec<LicenceHolder>> {
    let mut sql = Sql::new(
        "SELECT h.member_id, h.kind, h.held_from, h.held_until FROM saas_licence_holdings h JOIN members m ON m.member_id = h.member_id AND m.account_id = h.account_id WHERE h.account_id = ",
    );
    sql.bind(account_id)
        .push(" AND h.released_at = 0 AND h.held_from <= ")
        .bind(now)
        .push(" AND h.held_until > ")
        .bind(now)
        .push(" AND m.status NOT IN ('deleted', 'disabled') ORDER BY h.held_from, h.member_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(LicenceHolder {
                member_id: get_i64(r, "member_id")?,
                kind: kind_of(&get_str(r, "kind")?)?,
                held_from: ts(get_i64(r, "held_from")?)?,
                held_until: ts(get_i64(r, "held_until")?)?,
            })
        })
        .collect()
}

/// The billing row without a lock; a tenant without one is `active` and commercial with
/// no licences (SVC-401), like everywhere else in SaaS mode.
async fn read_tenant(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    account_id: i64,
    now: Millis,
) -> Result<TenantRow> {
    let mut sel = Sql::new(&format!(
        "SELECT {TENANT_COLUMNS} FROM saas_tenants WHERE account_id = "
    ));
    sel.bind(account_id);
    match sel.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => tenant_row(&row),
        None => Ok(TenantRow {
            profile: BillingProfile::Commercial,
            standing: Standing {
                state: ServiceState::Active,
                since: ts(now)?,
                purge_at: None,
            },
            edition: settings.default_edition.clone(),
            region: settings.region.clone(),
            currency: settings.currency,
            funds_frozen: false,
            postpaid_from: None,
        }),
    }
}

/// Where the tenant's licences stand at an instant: the pool size, the licence cycle, and
/// until when a new licence is held.
pub(super) struct Frame {
    pub(super) size: u32,
    /// SVC-051: a postpaid pool is unlimited.
    pub(super) unlimited: bool,
    /// The prepaid term in force (its `term` order).
    pub(super) term: Option<Term>,
    pub(super) edition: String,
    pub(super) cycle: Option<(Timestamp, Timestamp)>,
}

impl Frame {
    /// Until when a licence taken at the frame's instant is held: a temporary one to the
    /// cycle's end (SVC-055), a fixed one to the term's end (SVC-054).
    fn until(&self, kind: Kind) -> Option<Timestamp> {
        match kind {
            Kind::Temporary => self.cycle.map(|c| c.1),
            Kind::Fixed => self
                .term
                .as_ref()
                .map(|t| t.ends_at)
                .or(self.cycle.map(|c| c.1)),
        }
    }
}

/// SVC-051/056: a prepaid term in force gives the pool (base + add-ons in force) and the
/// monthly cycles anchored on it; otherwise a trial gives `trial_licences` for one cycle
/// (the trial); otherwise the pool is empty.
pub(super) fn frame(
    settings: &SaasSettings,
    t: &TenantRow,
    orders: &[LicenceOrder],
    now: Timestamp,
) -> Result<Frame> {
    let tz = &settings.billing_tz;
    let in_force = |o: &&LicenceOrder| o.starts_at <= now && now < o.ends_at;
    if let Some(base) = orders
        .iter()
        .filter(in_force)
        .filter(|o| o.is_term())
        .max_by_key(|o| o.starts_at)
    {
        let term = base.term(tz)?;
        let size = orders.iter().filter(in_force).map(|o| o.quantity).sum();
        let mut cycle = None;
        for k in 0..term.months {
            let (s, e) = term.cycle(k, tz)?;
            if s <= now && now < e {
                cycle = Some((s, e));
            }
        }
        return Ok(Frame {
            size,
            unlimited: false,
            edition: base.edition.clone(),
            term: Some(term),
            cycle,
        });
    }
    // SVC-051/056/120: once postpaid is in effect the pool is unlimited and the monthly
    // cycles are anchored on its start.
    if let Some(from) = t.postpaid_from
        && from <= now
    {
        return Ok(Frame {
            size: 0,
            unlimited: true,
            term: None,
            edition: t.edition.clone(),
            cycle: Some(postpaid_cycle(from, now, tz)?),
        });
    }
    if t.standing.state == ServiceState::Trial {
        // SVC-056: the trial is one cycle; SVC-160: 14 × 24 h from its start.
        let ends = add_24h_days(t.standing.since, settings.params.trial_days)?;
        return Ok(Frame {
            size: settings.params.trial_licences,
            unlimited: false,
            term: None,
            edition: t.edition.clone(),
            cycle: (now < ends).then_some((t.standing.since, ends)),
        });
    }
    Ok(Frame {
        size: 0,
        unlimited: false,
        term: None,
        edition: t.edition.clone(),
        cycle: None,
    })
}

/// SVC-056: the postpaid cycle containing `now` (postpaid started at `from` ≤ `now`).
pub(super) fn postpaid_cycle(
    from: Timestamp,
    now: Timestamp,
    tz: &jiff::tz::TimeZone,
) -> Result<(Timestamp, Timestamp)> {
    let mut k = 0;
    loop {
        let c = klaxon_saas::pricing::licence_cycle(from, k, tz)?;
        if now < c.1 || k > 12 * 100 {
            return Ok(c);
        }
        k += 1;
    }
}

/// The pure pool with the current holders in it.
fn pool(t: &TenantRow, f: &Frame, holders: &[LicenceHolder]) -> Result<LicencePool> {
    let size = if f.unlimited {
        PoolSize::Unlimited
    } else {
        PoolSize::Limited(f.size)
    };
    let mut p = LicencePool::new(size, regime(t.profile)?, true);
    for h in holders {
        let member = h.member_id.to_string();
        // Every holding ends with its cycle or term, so holders never outnumber the pool;
        // if stored rows ever said otherwise the extra holder is simply not counted.
        let _ = match h.kind {
            Kind::Fixed => p.assign_fixed(&member, h.held_from),
            Kind::Temporary => p.assign_temporary(&member, h.held_from),
        };
    }
    Ok(p)
}

async fn insert_holding(
    conn: &mut AnyConnection,
    account_id: i64,
    member_id: i64,
    kind: Kind,
    from: Millis,
    until: Millis,
    by: &str,
) -> Result<()> {
    let mut sql = Sql::new(
        "INSERT INTO saas_licence_holdings (account_id, member_id, kind, held_from, held_until, assigned_by) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(member_id)
        .push(", ")
        .bind(kind_text(kind))
        .push(", ")
        .bind(from)
        .push(", ")
        .bind(until)
        .push(", ")
        .bind(by)
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Frees the member's current licence(s); returns how many rows were closed.
async fn release_holdings(
    conn: &mut AnyConnection,
    account_id: i64,
    member_id: i64,
    now: Millis,
    by: &str,
) -> Result<u64> {
    let mut sql = Sql::new("UPDATE saas_licence_holdings SET released_at = ");
    sql.bind(now)
        .push(", released_by = ")
        .bind(by)
        .push(" WHERE account_id = ")
        .bind(account_id)
        .push(" AND member_id = ")
        .bind(member_id)
        .push(" AND released_at = 0 AND held_from <= ")
        .bind(now)
        .push(" AND held_until > ")
        .bind(now);
    Ok(sql
        .query_on(conn)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// SVC-053: remembers the member's first licensed action of the cycle.
async fn note_action(
    conn: &mut AnyConnection,
    account_id: i64,
    cycle_start: Millis,
    member_id: i64,
    now: Millis,
) -> Result<()> {
    let mut sql = Sql::new(
        "INSERT INTO saas_licence_actions (account_id, cycle_start, member_id, first_action_at) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(cycle_start)
        .push(", ")
        .bind(member_id)
        .push(", ")
        .bind(now)
        .push(") ON CONFLICT (account_id, cycle_start, member_id) DO NOTHING");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

async fn action_noted(
    conn: &mut AnyConnection,
    account_id: i64,
    cycle_start: Millis,
    member_id: i64,
) -> Result<bool> {
    let mut sql = Sql::new("SELECT member_id FROM saas_licence_actions WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND cycle_start = ")
        .bind(cycle_start)
        .push(" AND member_id = ")
        .bind(member_id);
    Ok(sql
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// SVC-053: everyone who held a licence at some moment of the cycle, with the first
/// licensed action noted in it.
pub(super) async fn active_users(
    conn: &mut AnyConnection,
    account_id: i64,
    cycle: (Timestamp, Timestamp),
) -> Result<Vec<ActiveUser>> {
    let (s, e) = (ms(cycle.0), ms(cycle.1));
    let mut sql =
        Sql::new("SELECT DISTINCT member_id FROM saas_licence_holdings WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND held_from < ")
        .bind(e)
        .push(" AND held_until > ")
        .bind(s)
        .push(" AND (released_at = 0 OR released_at > ")
        .bind(s)
        .push(")");
    let mut out: BTreeMap<i64, Option<Timestamp>> = BTreeMap::new();
    for r in sql.query_on(conn).fetch_all(&mut *conn).await? {
        out.insert(get_i64(&r, "member_id")?, None);
    }
    let mut sql =
        Sql::new("SELECT member_id, first_action_at FROM saas_licence_actions WHERE account_id = ");
    sql.bind(account_id).push(" AND cycle_start = ").bind(s);
    for r in sql.query_on(conn).fetch_all(&mut *conn).await? {
        out.insert(
            get_i64(&r, "member_id")?,
            Some(ts(get_i64(&r, "first_action_at")?)?),
        );
    }
    Ok(out
        .into_iter()
        .map(|(member_id, first_licensed_action)| ActiveUser {
            member_id,
            first_licensed_action,
        })
        .collect())
}

async fn member_enabled(conn: &mut AnyConnection, account_id: i64, member_id: i64) -> Result<bool> {
    let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND member_id = ")
        .bind(member_id)
        .push(" AND status NOT IN ('deleted', 'disabled')");
    Ok(sql
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

impl Store {
    /// The licence gate (SVC-052/055, response.md RSP-008) for a member about to perform a
    /// licensed action at `now`. A holder passes (one read); otherwise, under the tenant's
    /// row lock, a free licence becomes the member's temporary licence until the cycle
    /// ends, or the gate refuses and writes nothing. Two members racing for the last
    /// licence are serialised by the lock: exactly one gets it. Only SaaS nodes call this,
    /// and only for a member's own credentials (account-level keys never need a licence).
    pub async fn saas_licence_gate(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        member_id: i64,
        now: Millis,
    ) -> Result<LicenceGate> {
        let at = ts(now)?;
        {
            let mut conn = self.inner.read.acquire().await?;
            let conn: &mut AnyConnection = &mut conn;
            let t = read_tenant(conn, settings, account_id, now).await?;
            if t.profile == BillingProfile::Exempt {
                return Ok(LicenceGate::NotNeeded);
            }
            let holders = load_holders(conn, account_id, now).await?;
            if holders.iter().any(|h| h.member_id == member_id) {
                let orders = load_orders(conn, account_id).await?;
                let f = frame(settings, &t, &orders, at)?;
                match f.cycle {
                    Some((s, _)) if !action_noted(conn, account_id, ms(s), member_id).await? => {}
                    _ => return Ok(LicenceGate::Held),
                }
            }
        }
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        close_removed_members(conn, account_id).await?;
        let orders = load_orders(conn, account_id).await?;
        let f = frame(settings, &t, &orders, at)?;
        let holders = load_holders(conn, account_id, now).await?;
        let mut p = pool(&t, &f, &holders)?;
        let member = member_id.to_string();
        let grant = match p.authorize(&Actor::Member(member), Action::Licensed, at) {
            Ok(g) => g,
            Err(SaasError::NoLicense { .. }) => {
                // Dropping the transaction rolls back the billing row lock_tenant may
                // have created: a refusal changes nothing.
                return Ok(LicenceGate::Refused { pool: f.size });
            }
            Err(e) => return Err(e.into()),
        };
        let gate = match grant {
            Grant::NotNeeded => LicenceGate::NotNeeded,
            Grant::AlreadyHeld => LicenceGate::Held,
            Grant::Temporary => {
                let Some(until) = f.until(Kind::Temporary) else {
                    return Ok(LicenceGate::Refused { pool: f.size });
                };
                insert_holding(
                    conn,
                    account_id,
                    member_id,
                    Kind::Temporary,
                    now,
                    ms(until),
                    "auto",
                )
                .await?;
                LicenceGate::Obtained
            }
        };
        if let Some((s, _)) = f.cycle {
            note_action(conn, account_id, ms(s), member_id, now).await?;
        }
        tx.commit().await?;
        Ok(gate)
    }

    /// The tenant's licences at `now` (SVC-058): pool, holders, free count, the cycle's
    /// active users (SVC-053) and the licence orders.
    pub async fn saas_licences(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        now: Millis,
    ) -> Result<LicencePoolView> {
        let at = ts(now)?;
        let mut conn = self.inner.read.acquire().await?;
        let conn: &mut AnyConnection = &mut conn;
        if !super::account_exists(conn, account_id).await? {
            return Err(SaasFailure::UnknownAccount(account_id));
        }
        let t = read_tenant(conn, settings, account_id, now).await?;
        let orders = load_orders(conn, account_id).await?;
        let f = frame(settings, &t, &orders, at)?;
        let holders = load_holders(conn, account_id, now).await?;
        let active = match f.cycle {
            Some(c) => active_users(conn, account_id, c).await?,
            None => Vec::new(),
        };
        let enforced = t.profile == BillingProfile::Commercial;
        Ok(LicencePoolView {
            enforced,
            state: t.standing.state,
            edition: f.edition,
            size: (enforced && !f.unlimited).then_some(f.size),
            in_use: holders.len() as u32,
            term: f.term.as_ref().map(|t| (t.starts_at, t.ends_at)),
            cycle: f.cycle,
            holders,
            active,
            orders,
        })
    }

    /// Buys licences, paid from the balance at once (SVC-082/084: bonus first, then cash;
    /// an order the funds cannot cover is refused unchanged, SVC-100). Without a prepaid
    /// term in force this starts one at `now` (SVC-101) priced at the price list's unit
    /// price × quantity; with one it is an add-on ending with that term, priced pro rata
    /// (SVC-061). A trial tenant becomes `active` (SVC-021). One transaction with the
    /// ledger entries and the audit row.
    pub async fn saas_buy_licences(
        &self,
        settings: &SaasSettings,
        prices: &PriceListVersion,
        account_id: i64,
        buy: &BuyLicences,
        now: Millis,
        actor: &str,
    ) -> Result<(LicenceOrder, Applied<String>)> {
        let at = ts(now)?;
        let tz = &settings.billing_tz;
        if buy.quantity == 0 || buy.quantity > 100_000 {
            return Err(invalid("quantity", "must be between 1 and 100000").into());
        }
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "licence orders")?;
        order_allowed(
            t.standing.state,
            OrderPurpose::Other,
            Restrictions::default(),
            false,
        )?;
        let orders = load_orders(conn, account_id).await?;
        let f = frame(settings, &t, &orders, at)?;
        let edition = match (&buy.edition, &f.term) {
            (Some(e), _) => e.trim().to_lowercase(),
            (None, Some(_)) => f.edition.clone(),
            (None, None) => t.edition.clone(),
        };
        if !SOLD_EDITIONS.contains(&edition.as_str()) {
            return Err(invalid(
                "edition",
                format!("{edition:?}: licences are sold for standard or pro"),
            )
            .into());
        }
        let currency = t.currency;
        let (kind, months, starts_at, ends_at, unit, total) = match &f.term {
            Some(term) => {
                // SVC-060: an edition change inside a term is an upgrade, not an add-on.
                if edition != f.edition {
                    return Err(invalid(
                        "edition",
                        format!(
                            "the term in force is {}; add-on licences are of the same edition",
                            f.edition
                        ),
                    )
                    .into());
                }
                let unit = unit_price(prices, &edition, term.months)?;
                let total = add_on_price(term, unit, buy.quantity, date_of(at, tz), currency)?;
                ("add_on", term.months, at, term.ends_at, unit, total)
            }
            None => {
                if buy.months != 1 && buy.months != 12 {
                    return Err(invalid("months", "a term lasts 1 or 12 months").into());
                }
                let term = Term::first(at, buy.months, tz)?;
                let unit = unit_price(prices, &edition, buy.months)?;
                let q = quote(
                    &prices.id,
                    &[LineInput {
                        sku: licence_sku(&edition, buy.months),
                        unit_price: unit,
                        quantity: Decimal::from(buy.quantity),
                        factor: Decimal::ONE,
                        promotion_fraction: None,
                        promotion_amount: None,
                    }],
                    currency,
                )?;
                ("term", buy.months, at, term.ends_at, unit, q.total)
            }
        };
        let order_id = orders.iter().map(|o| o.order_id).max().unwrap_or(0) + 1;
        let reference = format!("licence-order:{order_id}");
        let detail = format!(
            "{kind} order {order_id}: {} {edition} licences until {ends_at}, {} {}",
            buy.quantity,
            currency.format(total),
            currency.code
        );
        let applied = apply_on(
            conn,
            settings,
            account_id,
            now,
            actor,
            "licence_order",
            |book, at| {
                if !total.is_zero() {
                    let due = date_of(at, tz);
                    book.charge(at, ChargeKind::Order, total, true, due, &reference, actor)?;
                }
                Ok(detail)
            },
        )
        .await?;
        let pg = !is_sqlite(conn);
        let mut sql = Sql::new(
            "INSERT INTO saas_licence_orders (account_id, order_id, kind, edition, quantity, months, unit_price, total, price_list, state, paid_at, starts_at, ends_at, actor) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(order_id)
            .push(", ")
            .bind(kind)
            .push(", ")
            .bind(edition.as_str())
            .push(", ")
            .bind(i64::from(buy.quantity))
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
            .bind(ms(starts_at))
            .push(", ")
            .bind(ms(ends_at))
            .push(", ")
            .bind(actor)
            .push(")");
        sql.query_on(conn).execute(&mut *conn).await?;
        super::accept_for_order(
            conn,
            account_id,
            buy.acceptance.as_ref(),
            "licence",
            &format!("licence-order:{order_id}"),
            now,
            actor,
        )
        .await?;
        let mut applied = applied;
        if kind == "term" {
            let mut upd = Sql::new("UPDATE saas_tenants SET edition = ");
            upd.bind(edition.as_str())
                .push(" WHERE account_id = ")
                .bind(account_id);
            upd.query_on(conn).execute(&mut *conn).await?;
            // SVC-021/100: the paid order activates a trial tenant.
            if applied.state == ServiceState::Trial {
                let to =
                    klaxon_saas::state::transition(ServiceState::Trial, Trigger::PaidActivation)?;
                let change = Change {
                    from: ServiceState::Trial,
                    to,
                    at,
                    rule: "SVC-100",
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
        }
        tx.commit().await?;
        let order = LicenceOrder {
            order_id,
            kind: kind.to_string(),
            edition,
            quantity: buy.quantity,
            months,
            unit_price: unit,
            total,
            price_list: prices.id.clone(),
            paid_at: at,
            starts_at,
            ends_at,
            anchor: None,
            offset_months: 0,
        };
        Ok((order, applied))
    }

    /// SVC-054/055: the owner or an Admin assigns a fixed licence (held until the term
    /// ends; a temporary holder is converted) or a temporary one (held until the cycle
    /// ends). No free licence → `NoLicense`, nothing changes.
    pub async fn saas_assign_licence(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        member_id: i64,
        kind: Kind,
        now: Millis,
        actor: &str,
    ) -> Result<LicenceHolder> {
        let at = ts(now)?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "licences")?;
        if !member_enabled(conn, account_id, member_id).await? {
            return Err(invalid(
                "member",
                format!("member {member_id} is not an enabled member of account {account_id}"),
            )
            .into());
        }
        close_removed_members(conn, account_id).await?;
        let orders = load_orders(conn, account_id).await?;
        let f = frame(settings, &t, &orders, at)?;
        let holders = load_holders(conn, account_id, now).await?;
        let current = holders.iter().find(|h| h.member_id == member_id).cloned();
        let mut p = pool(&t, &f, &holders)?;
        let m = member_id.to_string();
        match kind {
            Kind::Fixed => p.assign_fixed(&m, at)?,
            Kind::Temporary => p.assign_temporary(&m, at)?,
        }
        let holder = match current {
            // Already held as asked (or fixed when a temporary one is asked): unchanged.
            Some(h) if h.kind == kind || h.kind == Kind::Fixed => h,
            _ => {
                let until = f
                    .until(kind)
                    .ok_or(SaasError::NoLicense { capacity: f.size })?;
                // A temporary holder's licence is converted: the old row ends now.
                release_holdings(conn, account_id, member_id, now, actor).await?;
                insert_holding(conn, account_id, member_id, kind, now, ms(until), actor).await?;
                audit(
                    conn,
                    account_id,
                    now,
                    actor,
                    "licence_assign",
                    &format!(
                        "member {member_id}: {} licence until {until}",
                        kind_text(kind)
                    ),
                )
                .await?;
                LicenceHolder {
                    member_id,
                    kind,
                    held_from: at,
                    held_until: until,
                }
            }
        };
        tx.commit().await?;
        Ok(holder)
    }

    /// SVC-054: revokes the member's licence at once (the member stays active for the
    /// cycle). Returns false when the member held none (nothing changed).
    pub async fn saas_release_licence(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        member_id: i64,
        now: Millis,
        actor: &str,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "licences")?;
        let n = release_holdings(conn, account_id, member_id, now, actor).await?;
        if n == 0 {
            return Ok(false);
        }
        audit(
            conn,
            account_id,
            now,
            actor,
            "licence_release",
            &format!("member {member_id}: licence freed"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The price list's unit price of one licence for the term length, or an error naming the
/// missing item.
pub(super) fn unit_price(prices: &PriceListVersion, edition: &str, months: i32) -> Result<Decimal> {
    let sku = licence_sku(edition, months);
    prices.price(&sku).ok_or_else(|| {
        SaasFailure::Rule(invalid(
            "price_list",
            format!("price list {} has no price for {sku}", prices.id),
        ))
    })
}
