//! Early terminations and the tenant's cancellation (service-agreement.md SVC-230 … SVC-238,
//! migration 0067): mutual agreement (SVC-231), serious breach (SVC-232), the operator with
//! notice (SVC-233), the tenant leaving after a paid feature was removed (SVC-238) and the
//! tenant's own release of the service (SVC-235, SVC-186).
//!
//! [`Store::saas_terminate`] checks the request with the pure rules of
//! `klaxon_saas::termination` and records it; one that is effective now is carried out in
//! the same transaction, a later one (a mutual end instant, the operator's notice period)
//! by [`Store::saas_terminations_due`], which the nodes' worker runs. Carrying out is one
//! transaction: the SVC-234 refunds (computed by `klaxon_saas::refund`, the cash share to
//! the cash balance and a bonus share back to its own lot, never to cash), the state change
//! `ended(<reason>)` with its end-of-service notice, the buffer (SVC-187: a buffer already
//! running keeps its purge date) and the record's outcome. A termination whose tenant is no
//! longer in force when it comes due is recorded `void` and changes nothing else.

use jiff::Timestamp;
use jiff::civil::Date;
use klaxon_core::model::Millis;
use klaxon_saas::book::Book;
use klaxon_saas::calendar::{date_of, earliest_effective_after_notice};
use klaxon_saas::ledger::{Account, LotId};
use klaxon_saas::money::Currency;
use klaxon_saas::notice::Category;
use klaxon_saas::refund::{
    ChargeRefund, PackPurchase, PrepaidCharge, StopCause, check_mutual_refund, pack_refund,
    pro_rata, refunds_unused_terms,
};
use klaxon_saas::state::{EndReason, Trigger, in_force, transition};
use klaxon_saas::tenant::{Change, Standing};
use klaxon_saas::termination::{
    Buffer, BufferStart, check_breach_termination, check_operator_termination,
    feature_removal_termination_until,
};
use rust_decimal::Decimal;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::comm::{PackRecord, load_packs};
use super::licences::{LicenceOrder, invalid, load_orders};
use super::{
    Result, SaasFailure, SaasSettings, apply_on, audit, lock_tenant, ms, notice_outbox, regime,
    save_standing, ts,
};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// Which rule ends the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminationKind {
    /// SVC-231: staff record an agreement the owner confirmed; ends at the agreed instant.
    Mutual,
    /// SVC-232: two staff members; effective at once; no refund of unused terms.
    Breach,
    /// SVC-233: effective at 00:00 at least 30 days after the notice's deemed delivery.
    Operator,
    /// SVC-238: the tenant leaves within 30 days after a paid feature was removed.
    FeatureRemoval,
    /// SVC-235 / SVC-186: the tenant releases the service without cause.
    Cancel,
}

impl TerminationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TerminationKind::Mutual => "mutual",
            TerminationKind::Breach => "breach",
            TerminationKind::Operator => "operator",
            TerminationKind::FeatureRemoval => "feature_removal",
            TerminationKind::Cancel => "cancel",
        }
    }

    pub fn parse(text: &str) -> Option<TerminationKind> {
        [
            TerminationKind::Mutual,
            TerminationKind::Breach,
            TerminationKind::Operator,
            TerminationKind::FeatureRemoval,
            TerminationKind::Cancel,
        ]
        .into_iter()
        .find(|k| k.as_str() == text.trim().replace('-', "_"))
    }

    fn rule(self) -> &'static str {
        match self {
            TerminationKind::Mutual => "SVC-231",
            TerminationKind::Breach => "SVC-232",
            TerminationKind::Operator => "SVC-233",
            TerminationKind::FeatureRemoval => "SVC-238",
            TerminationKind::Cancel => "SVC-235",
        }
    }

    fn trigger(self) -> Trigger {
        match self {
            TerminationKind::Mutual => Trigger::Terminate(EndReason::TerminatedMutual),
            TerminationKind::Breach => Trigger::Terminate(EndReason::TerminatedBreach),
            // SVC-238: leaving over a removed feature is an early termination for which the
            // operator is answerable, like SVC-233 (refund included).
            TerminationKind::Operator | TerminationKind::FeatureRemoval => {
                Trigger::Terminate(EndReason::TerminatedByOperator)
            }
            TerminationKind::Cancel => Trigger::Release,
        }
    }

    fn cause(self) -> StopCause {
        match self {
            TerminationKind::Mutual => StopCause::Mutual,
            TerminationKind::Breach => StopCause::SeriousBreach,
            TerminationKind::Operator => StopCause::OperatorWithNotice,
            TerminationKind::FeatureRemoval => StopCause::PaidFeatureRemoved,
            TerminationKind::Cancel => StopCause::CustomerCancel,
        }
    }
}

/// SVC-232's categories of serious breach.
pub const BREACH_CATEGORIES: [&str; 5] =
    ["unlawful_content", "attacks", "fraud", "sanctions", "other"];

/// A termination as staff record it (or the tenant asks for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTermination {
    pub kind: TerminationKind,
    /// Mutual: the agreed end instant (default now); operator: the effective 00:00.
    /// The other kinds take effect now.
    pub effective_at: Option<Millis>,
    /// The agreement (mutual), the change record (feature removal), the request or ticket
    /// (breach, operator, cancel). Required.
    pub reference: String,
    /// Breach: one of [`BREACH_CATEGORIES`].
    pub category: String,
    /// Evidence references (breach); the owner's confirmation (mutual).
    pub evidence: Vec<String>,
    /// Breach: the two staff members (SVC-232).
    pub proposer: String,
    pub approver: String,
    /// Mutual: the agreed cash refund (SVC-231), at most what was paid for unused terms.
    pub agreed_refund: Option<Decimal>,
    /// Feature removal: the `effective_at` of the change that removed the feature.
    pub removed_at: Option<Millis>,
    /// Cancel: delete after the undo window instead of keeping the normal buffer (SVC-186).
    pub delete_early: bool,
    /// Breach: the legal basis on which staff block the export (SVC-232, e.g. the content
    /// itself is unlawful); empty = the export stays allowed, as for every termination.
    pub export_block_basis: String,
}

/// A stored termination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminationRecord {
    pub account_id: i64,
    pub termination_id: i64,
    pub kind: TerminationKind,
    /// `scheduled`, `done` or `void`.
    pub state: String,
    pub effective_at: Millis,
    pub reference: String,
    pub category: String,
    pub evidence: Vec<String>,
    pub proposer: String,
    pub approver: String,
    pub agreed_refund: Option<Decimal>,
    pub delete_early: bool,
    /// SVC-232: the legal basis of the export block it set ('' = none).
    pub export_block_basis: String,
    pub created_at: Millis,
    pub actor: String,
    pub done_at: Millis,
    pub outcome: String,
}

impl TerminationRecord {
    /// How notices name it.
    pub fn related(&self) -> String {
        format!("termination:{}:{}", self.account_id, self.termination_id)
    }
}

const COLUMNS: &str = "account_id, termination_id, kind, state, effective_at, reference, category, evidence, proposer, approver, agreed_refund, delete_early, created_at, actor, done_at, outcome, export_block_basis";

fn record(row: &AnyRow) -> Result<TerminationRecord> {
    let kind = get_str(row, "kind")?;
    let refund = get_str(row, "agreed_refund")?;
    let evidence = get_str(row, "evidence")?;
    Ok(TerminationRecord {
        account_id: get_i64(row, "account_id")?,
        termination_id: get_i64(row, "termination_id")?,
        kind: TerminationKind::parse(&kind).ok_or_else(|| super::corrupt("kind", &kind))?,
        state: get_str(row, "state")?,
        effective_at: get_i64(row, "effective_at")?,
        reference: get_str(row, "reference")?,
        category: get_str(row, "category")?,
        evidence: evidence
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        proposer: get_str(row, "proposer")?,
        approver: get_str(row, "approver")?,
        agreed_refund: if refund.is_empty() {
            None
        } else {
            Some(
                refund
                    .parse()
                    .map_err(|e| super::corrupt("agreed_refund", e))?,
            )
        },
        delete_early: get_i64(row, "delete_early")? != 0,
        export_block_basis: get_str(row, "export_block_basis")?,
        created_at: get_i64(row, "created_at")?,
        actor: get_str(row, "actor")?,
        done_at: get_i64(row, "done_at")?,
        outcome: get_str(row, "outcome")?,
    })
}

async fn load(
    conn: &mut AnyConnection,
    account_id: i64,
    termination_id: i64,
) -> Result<Option<TerminationRecord>> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM saas_terminations WHERE account_id = "
    ));
    sql.bind(account_id)
        .push(" AND termination_id = ")
        .bind(termination_id);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(record(&row)?)),
        None => Ok(None),
    }
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// SVC-234: each paid prepaid charge of the tenant (licence orders: terms, renewals,
/// add-ons) with the cash and bonus actually paid for it and not refunded yet, read from
/// the ledger entries that name the order (SVC-151: after promotions, never list price).
fn prepaid_charges(
    book: &Book,
    orders: &[LicenceOrder],
    tz: &jiff::tz::TimeZone,
) -> Vec<PrepaidCharge> {
    let entries = book.ledger().entries();
    orders
        .iter()
        .filter_map(|o| {
            let reference = format!("licence-order:{}", o.order_id);
            let flow = |from: Account, to: Account| -> Decimal {
                entries
                    .iter()
                    .filter(|e| e.reference == reference && e.from == from && e.to == to)
                    .map(|e| e.amount)
                    .sum()
            };
            let cash = flow(Account::Cash, Account::Sales) - flow(Account::Sales, Account::Cash);
            let mut lots: Vec<LotId> = entries
                .iter()
                .filter(|e| e.reference == reference)
                .filter_map(|e| match e.from {
                    Account::Bonus(lot) => Some(lot),
                    _ => None,
                })
                .collect();
            lots.dedup();
            let bonus: Vec<(LotId, Decimal)> = lots
                .into_iter()
                .map(|lot| {
                    (
                        lot,
                        flow(Account::Bonus(lot), Account::Sales)
                            - flow(Account::Sales, Account::Bonus(lot)),
                    )
                })
                .filter(|(_, b)| *b > Decimal::ZERO)
                .collect();
            if cash <= Decimal::ZERO && bonus.is_empty() {
                return None;
            }
            Some(PrepaidCharge {
                reference,
                start: date_of(o.starts_at, tz),
                end: date_of(o.ends_at, tz),
                cash_paid: cash.max(Decimal::ZERO),
                bonus_paid: bonus,
            })
        })
        .collect()
}

/// The refunds a termination books (SVC-231, SVC-234, SVC-235): pro rata for the causes
/// that refund unused terms, the agreed amount spread over the unused terms for a mutual
/// end (cash only), nothing otherwise.
fn refunds(
    book: &Book,
    orders: &[LicenceOrder],
    packs: &[PackRecord],
    rec: &TerminationRecord,
    t: Date,
    settings: &SaasSettings,
    currency: Currency,
) -> klaxon_saas::Result<Vec<ChargeRefund>> {
    let charges = prepaid_charges(book, orders, &settings.billing_tz);
    let unused = pro_rata(t, &charges, currency)?;
    if rec.kind == TerminationKind::Mutual {
        let Some(agreed) = rec.agreed_refund else {
            return Ok(Vec::new());
        };
        check_mutual_refund(agreed, Decimal::ZERO, &unused)?;
        let mut left = agreed;
        let mut out = Vec::new();
        for mut r in unused {
            let take = r.cash.min(left);
            left -= take;
            r.cash = take;
            r.bonus.clear();
            out.push(r);
        }
        return Ok(out);
    }
    if !refunds_unused_terms(rec.kind.cause(), &settings.params) {
        return Ok(Vec::new());
    }
    let mut out = unused;
    // SVC-234: an unexpired pack refunds paid × unused units / total units (cash share).
    let end = settings_start(t, settings)?;
    for p in packs
        .iter()
        .filter(|p| p.expires_at > end && p.used < p.units)
    {
        let reference = format!("pack-order:{}", p.pack_id);
        let paid: Decimal = book
            .ledger()
            .entries()
            .iter()
            .filter(|e| e.reference == reference && e.from == Account::Cash)
            .map(|e| e.amount)
            .sum();
        if paid.is_zero() {
            continue;
        }
        let cash = pack_refund(
            &PackPurchase {
                cash_paid: paid,
                total_units: p.units,
                unused_units: p.units - p.used,
            },
            currency,
        )?;
        out.push(ChargeRefund {
            reference,
            unused_days: 0,
            term_days: 0,
            cash,
            bonus: Vec::new(),
        });
    }
    Ok(out)
}

fn settings_start(t: Date, settings: &SaasSettings) -> klaxon_saas::Result<Timestamp> {
    klaxon_saas::calendar::start_of(t, &settings.billing_tz)
}

fn refund_text(r: &[ChargeRefund], c: Currency) -> String {
    let parts: Vec<String> = r
        .iter()
        .filter(|r| !r.cash.is_zero() || r.bonus.iter().any(|b| !b.1.is_zero()))
        .map(|r| {
            let mut s = if r.term_days == 0 {
                format!("{} unused units: cash {}", r.reference, c.format(r.cash))
            } else {
                format!(
                    "{} {}/{} days: cash {}",
                    r.reference,
                    r.unused_days,
                    r.term_days,
                    c.format(r.cash)
                )
            };
            for (lot, b) in &r.bonus {
                s.push_str(&format!(", bonus lot {lot} {}", c.format(*b)));
            }
            s
        })
        .collect();
    if parts.is_empty() {
        "no refund".to_string()
    } else {
        format!("refunded {}", parts.join("; "))
    }
}

/// Carries out a due termination under the tenant's lock (see the module comment);
/// returns the outcome recorded. A record already carried out is left alone.
async fn carry_out(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    account_id: i64,
    termination_id: i64,
    now: Millis,
) -> Result<Option<String>> {
    let t = lock_tenant(conn, settings, account_id, now).await?;
    let Some(rec) = load(conn, account_id, termination_id).await? else {
        return Ok(None);
    };
    if rec.state != "scheduled" || rec.effective_at > now {
        return Ok(None);
    }
    let tz = &settings.billing_tz;
    let effective = ts(rec.effective_at)?;
    // SVC-233/314: the notice counts from the day it was actually given; if it went out
    // later than planned, the effective date moves to the end of the real notice period.
    if rec.kind == TerminationKind::Operator {
        let mut q = Sql::new(
            "SELECT COALESCE(MIN(sent_at), 0) AS sent FROM saas_notices WHERE account_id = ",
        );
        q.bind(account_id)
            .push(" AND related = ")
            .bind(rec.related());
        let row = q.query_on(conn).fetch_one(&mut *conn).await?;
        let sent = get_i64(&row, "sent")?;
        if sent == 0 {
            // Not given yet: it is still in the notice outbox; try again on the next run.
            return Ok(None);
        }
        let earliest = earliest_effective_after_notice(
            ts(sent)?,
            settings.params.operator_termination_notice_days,
            tz,
        )?;
        if earliest > effective {
            let mut upd = Sql::new("UPDATE saas_terminations SET effective_at = ");
            upd.bind(ms(earliest))
                .push(" WHERE account_id = ")
                .bind(account_id)
                .push(" AND termination_id = ")
                .bind(termination_id);
            upd.query_on(conn).execute(&mut *conn).await?;
            let detail = format!(
                "termination {termination_id} moved from {} to {}: the notice was given on {}",
                utc(effective),
                utc(earliest),
                utc(ts(sent)?)
            );
            notice_outbox::enqueue(
                conn,
                account_id,
                Category::OperatorTermination,
                "operator_termination_moved",
                (
                    "Service termination date moved".into(),
                    format!(
                        "The termination of your organisation's service takes effect at {} \
                         instead of {}, so that the notice period of {} days is complete.\n",
                        utc(earliest),
                        utc(effective),
                        settings.params.operator_termination_notice_days
                    ),
                ),
                &format!("{}:moved", rec.related()),
                now,
            )
            .await?;
            audit(
                conn,
                account_id,
                now,
                "system",
                "termination_moved",
                &detail,
            )
            .await?;
            return Ok(Some(detail));
        }
    }
    let trigger = rec.kind.trigger();
    let outcome = match transition(t.standing.state, trigger) {
        Err(_) => {
            let outcome = format!("void: the tenant is {}", t.standing.state);
            finish(conn, &rec, "void", &outcome, now).await?;
            audit(conn, account_id, now, &rec.actor, "termination", &outcome).await?;
            return Ok(Some(outcome));
        }
        Ok(_) => {
            // Refunds first, while the service is still in force; a tenant already ended
            // (a release during the buffer) has no unused term left to refund.
            let refund_detail = if in_force(t.standing.state) {
                let orders = load_orders(conn, account_id).await?;
                let packs = load_packs(conn, account_id, None).await?;
                let day = date_of(effective, tz);
                let currency = t.currency;
                let rec2 = rec.clone();
                let actor = rec.actor.clone();
                let applied = apply_on(
                    conn,
                    settings,
                    account_id,
                    now,
                    &rec.actor,
                    "termination_refund",
                    |book, at| {
                        let list = refunds(book, &orders, &packs, &rec2, day, settings, currency)?;
                        for r in &list {
                            let bonus: Vec<(LotId, Decimal)> =
                                r.bonus.iter().filter(|b| !b.1.is_zero()).copied().collect();
                            if r.cash.is_zero() && bonus.is_empty() {
                                continue;
                            }
                            book.refund(at, r.cash, &bonus, &r.reference, &actor)?;
                        }
                        Ok(refund_text(&list, currency))
                    },
                )
                .await?;
                applied.value
            } else {
                "no refund".to_string()
            };
            // The standing after the refunds (they never change it; read it again all the
            // same, under the lock this transaction holds).
            let t2 = lock_tenant(conn, settings, account_id, now).await?;
            let to = transition(t2.standing.state, trigger)?;
            let kind = if rec.kind == TerminationKind::Cancel && rec.delete_early {
                BufferStart::ReleaseDeleteAfterUndo
            } else {
                BufferStart::Normal
            };
            // SVC-187: a buffer already running keeps its purge date; only a release with
            // deletion may bring it forward.
            let buffer = match t2.standing.purge_at {
                Some(purge_at) => Buffer {
                    started_at: t2.standing.since,
                    purge_at,
                }
                .later_trigger(effective, kind, &settings.params)?,
                None => Buffer::start(effective, kind, &settings.params)?,
            };
            let change = Change {
                from: t2.standing.state,
                to,
                at: effective,
                rule: rec.kind.rule(),
            };
            let standing = Standing {
                state: to,
                since: effective,
                purge_at: Some(buffer.purge_at),
            };
            save_standing(
                conn,
                account_id,
                &standing,
                std::slice::from_ref(&change),
                now,
            )
            .await?;
            // SVC-232: the export stays allowed through the buffer unless staff gave a
            // legal basis for blocking it; the block is the tenant's, so the export route
            // sees it whichever node serves it.
            let basis = rec.export_block_basis.trim();
            let block = if basis.is_empty() {
                String::new()
            } else {
                let mut upd = Sql::new("UPDATE saas_tenants SET export_blocked = ");
                upd.bind(basis)
                    .push(" WHERE account_id = ")
                    .bind(account_id);
                upd.query_on(conn).execute(&mut *conn).await?;
                format!("; export blocked: {basis}")
            };
            format!(
                "{} -> {to} at {} ({}); {refund_detail}; purge date {}{block}",
                change.from,
                utc(effective),
                rec.kind.rule(),
                utc(buffer.purge_at)
            )
        }
    };
    finish(conn, &rec, "done", &outcome, now).await?;
    audit(conn, account_id, now, &rec.actor, "termination", &outcome).await?;
    Ok(Some(outcome))
}

async fn finish(
    conn: &mut AnyConnection,
    rec: &TerminationRecord,
    state: &str,
    outcome: &str,
    now: Millis,
) -> Result<()> {
    let mut upd = Sql::new("UPDATE saas_terminations SET state = ");
    upd.bind(state)
        .push(", done_at = ")
        .bind(now)
        .push(", outcome = ")
        .bind(outcome)
        .push(" WHERE account_id = ")
        .bind(rec.account_id)
        .push(" AND termination_id = ")
        .bind(rec.termination_id);
    upd.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Checks a request against the rules; returns the effective instant.
fn check(new: &NewTermination, settings: &SaasSettings, now: Millis) -> Result<Millis> {
    if new.reference.trim().is_empty() {
        return Err(invalid(
            "reference",
            "required: the agreement, change record, ticket or request this termination rests on",
        )
        .into());
    }
    let at = ts(now)?;
    let tz = &settings.billing_tz;
    let effective = match new.kind {
        TerminationKind::Mutual => {
            if new.evidence.iter().all(|e| e.trim().is_empty()) {
                return Err(invalid(
                    "owner_confirmation",
                    "SVC-231: the owner's confirmation of the agreement is required",
                )
                .into());
            }
            let end = new.effective_at.unwrap_or(now);
            if end < now {
                return Err(invalid("effective_at", "the agreed end is in the past").into());
            }
            end
        }
        TerminationKind::Breach => {
            check_breach_termination(&new.proposer, &new.approver, &new.evidence)?;
            if !BREACH_CATEGORIES.contains(&new.category.as_str()) {
                return Err(invalid(
                    "category",
                    format!(
                        "{:?}: one of {}",
                        new.category,
                        BREACH_CATEGORIES.join(", ")
                    ),
                )
                .into());
            }
            now
        }
        TerminationKind::Operator => {
            let Some(effective) = new.effective_at else {
                return Err(invalid(
                    "effective_at",
                    "required: the date the termination takes effect (00:00, at least 30 days after the notice)",
                )
                .into());
            };
            // The notice is given now (queued with the record), so it counts from today.
            check_operator_termination(at, ts(effective)?, &settings.params, tz)?;
            effective
        }
        TerminationKind::FeatureRemoval => {
            let Some(removed) = new.removed_at else {
                return Err(invalid(
                    "removed_at",
                    "required: when the change removing the paid feature took effect",
                )
                .into());
            };
            let until = feature_removal_termination_until(ts(removed)?, tz)?;
            if now < removed || at >= until {
                return Err(klaxon_saas::SaasError::Refused {
                    rule: "SVC-238",
                    message: format!(
                        "a termination over a removed feature is open from {} until {}",
                        utc(ts(removed)?),
                        utc(until)
                    ),
                }
                .into());
            }
            now
        }
        TerminationKind::Cancel => now,
    };
    if new.kind != TerminationKind::Breach
        && (!new.proposer.is_empty() || !new.approver.is_empty() || !new.category.is_empty())
    {
        return Err(invalid(
            "category",
            "proposer, approver and category belong to a termination for breach",
        )
        .into());
    }
    if new.agreed_refund.is_some() && new.kind != TerminationKind::Mutual {
        return Err(invalid(
            "agreed_refund",
            "only a mutual termination has an agreed refund; the others follow SVC-234",
        )
        .into());
    }
    if let Some(r) = new.agreed_refund {
        settings.currency.check_posted("agreed_refund", r)?;
    }
    if !new.export_block_basis.trim().is_empty() && new.kind != TerminationKind::Breach {
        return Err(invalid(
            "export_block_basis",
            "SVC-232: only a termination for serious breach may block the export; every other ending keeps it",
        )
        .into());
    }
    if new.delete_early && new.kind != TerminationKind::Cancel {
        return Err(invalid(
            "delete_early",
            "only the tenant's release may delete after the undo window",
        )
        .into());
    }
    Ok(effective)
}

impl Store {
    /// Records a termination (see the module comment) and carries it out at once when it
    /// is effective now. A refused request changes nothing. An operator termination queues
    /// its notice (in-app, e-mail, SMS) with the record.
    pub async fn saas_terminate(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        new: &NewTermination,
        now: Millis,
        actor: &str,
    ) -> Result<TerminationRecord> {
        let effective = check(new, settings, now)?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        regime(t.profile)?.require(klaxon_saas::mode::RuleGroup::Commerce, "termination")?;
        // Refused up front when the tenant cannot be ended this way (SVC-021).
        transition(t.standing.state, new.kind.trigger())?;
        if new.kind != TerminationKind::Cancel && !in_force(t.standing.state) {
            return Err(invalid(
                "account",
                format!("the service is not in force ({})", t.standing.state),
            )
            .into());
        }
        // SVC-231: the agreed refund is checked now, against the terms as paid.
        if new.kind == TerminationKind::Mutual
            && let Some(agreed) = new.agreed_refund
        {
            let book = super::load_book(conn, settings, account_id, &t).await?;
            let orders = load_orders(conn, account_id).await?;
            let charges = prepaid_charges(&book, &orders, &settings.billing_tz);
            let day = date_of(ts(effective)?, &settings.billing_tz);
            let unused = pro_rata(day, &charges, t.currency)?;
            check_mutual_refund(agreed, Decimal::ZERO, &unused)?;
        }
        let mut pending = Sql::new(
            "SELECT termination_id FROM saas_terminations WHERE state = 'scheduled' AND account_id = ",
        );
        pending.bind(account_id);
        if let Some(row) = pending.query_on(conn).fetch_optional(&mut *conn).await? {
            return Err(invalid(
                "account",
                format!(
                    "termination {} is already scheduled for this tenant",
                    get_i64(&row, "termination_id")?
                ),
            )
            .into());
        }
        let mut next = Sql::new(
            "SELECT COALESCE(MAX(termination_id), 0) AS n FROM saas_terminations WHERE account_id = ",
        );
        next.bind(account_id);
        let id = get_i64(&next.query_on(conn).fetch_one(&mut *conn).await?, "n")? + 1;
        let mut ins = Sql::new(&format!(
            "INSERT INTO saas_terminations ({COLUMNS}) VALUES ("
        ));
        ins.bind(account_id)
            .push(", ")
            .bind(id)
            .push(", ")
            .bind(new.kind.as_str())
            .push(", 'scheduled', ")
            .bind(effective)
            .push(", ")
            .bind(new.reference.trim())
            .push(", ")
            .bind(new.category.as_str())
            .push(", ")
            .bind(
                new.evidence
                    .iter()
                    .map(|e| e.trim())
                    .filter(|e| !e.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
            .push(", ")
            .bind(new.proposer.trim())
            .push(", ")
            .bind(new.approver.trim())
            .push(", ")
            .bind(new.agreed_refund.map_or(String::new(), |r| r.to_string()))
            .push(", ")
            .bind(i64::from(new.delete_early))
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(actor)
            .push(", 0, '', ")
            .bind(new.export_block_basis.trim())
            .push(")");
        ins.query_on(conn).execute(&mut *conn).await?;
        let rec = load(conn, account_id, id)
            .await?
            .ok_or(SaasFailure::UnknownAccount(account_id))?;
        audit(
            conn,
            account_id,
            now,
            actor,
            "termination_recorded",
            &format!(
                "termination {id} ({}, {}) effective {}: {}",
                rec.kind.as_str(),
                rec.kind.rule(),
                utc(ts(effective)?),
                rec.reference
            ),
        )
        .await?;
        if rec.kind == TerminationKind::Operator {
            notice_outbox::enqueue(
                conn,
                account_id,
                Category::OperatorTermination,
                "operator_termination",
                (
                    format!("Your service ends on {}", utc(ts(effective)?)),
                    format!(
                        "The operator terminates your organisation's service with effect from {} \
                         ({}). The unused part of every prepaid term is then refunded to your \
                         cash balance, pro rata by days, and can be withdrawn. The data stays \
                         readable and exportable for {} days after the end, then it is purged.\n",
                        utc(ts(effective)?),
                        rec.reference,
                        settings.params.buffer_days
                    ),
                ),
                &rec.related(),
                now,
            )
            .await?;
        }
        if effective <= now {
            carry_out(conn, settings, account_id, id, now).await?;
        }
        let rec = load(conn, account_id, id)
            .await?
            .ok_or(SaasFailure::UnknownAccount(account_id))?;
        tx.commit().await?;
        Ok(rec)
    }

    /// The worker's pass: carries out every scheduled termination whose effective instant
    /// has come (once each; a second run finds it done). Returns (account, outcome).
    pub async fn saas_terminations_due(
        &self,
        settings: &SaasSettings,
        now: Millis,
    ) -> Result<Vec<(i64, String)>> {
        let mut sql = Sql::new(
            "SELECT account_id, termination_id FROM saas_terminations WHERE state = 'scheduled' AND effective_at <= ",
        );
        sql.bind(now).push(" ORDER BY account_id, termination_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        let mut out = Vec::new();
        for row in &rows {
            let account_id = get_i64(row, "account_id")?;
            let id = get_i64(row, "termination_id")?;
            let mut tx = self.inner.write.begin().await?;
            let done = carry_out(&mut tx, settings, account_id, id, now).await?;
            tx.commit().await?;
            if let Some(outcome) = done {
                out.push((account_id, outcome));
            }
        }
        Ok(out)
    }

    /// SVC-232: the legal basis of the tenant's export block, when there is one.
    pub async fn saas_export_blocked(&self, account_id: i64) -> Result<Option<String>> {
        let mut sql = Sql::new("SELECT export_blocked FROM saas_tenants WHERE account_id = ");
        sql.bind(account_id);
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => {
                let basis = get_str(&row, "export_blocked")?;
                Ok((!basis.is_empty()).then_some(basis))
            }
            None => Ok(None),
        }
    }

    /// The tenant's terminations, oldest first.
    pub async fn saas_terminations(&self, account_id: i64) -> Result<Vec<TerminationRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM saas_terminations WHERE account_id = "
        ));
        sql.bind(account_id).push(" ORDER BY termination_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(record).collect()
    }
}
