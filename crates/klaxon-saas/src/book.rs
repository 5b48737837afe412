//! A tenant's billing book: the ledger plus its overdue items, and the operations of §6, §8,
//! §9 and §10 that move money. Each operation validates first and either appends its
//! entries or changes nothing.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;

use crate::calendar::{add_days, add_months, date_of, start_of};
use crate::error::{Result, SaasError};
use crate::ledger::{
    Account, BonusLotTerms, BonusScope, BonusSource, ChargeKind, Draft, EntryId, EntryKind, Ledger,
    LotId,
};
use crate::money::Currency;
use crate::overdue::{ItemId, OverdueItem, PenaltyTerms};

/// How incoming cash was applied (SVC-134).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CashApplication {
    pub principal: Decimal,
    pub penalty: Decimal,
    pub to_balance: Decimal,
}

/// How a charge was paid (SVC-121/122/153).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChargeOutcome {
    pub bonus_paid: Decimal,
    pub cash_paid: Decimal,
    /// Uncovered remainder that became an overdue item.
    pub overdue: Option<(ItemId, Decimal)>,
}

#[derive(Debug, Clone)]
pub struct Book {
    ledger: Ledger,
    items: Vec<OverdueItem>,
    tz: TimeZone,
    penalty: PenaltyTerms,
    bonus_validity_months: i32,
    funds_frozen: bool,
}

impl Book {
    pub fn new(
        currency: Currency,
        billing_tz: TimeZone,
        penalty: PenaltyTerms,
        bonus_validity_months: i32,
    ) -> Result<Self> {
        penalty.validate()?;
        Ok(Book {
            ledger: Ledger::new(currency),
            items: Vec::new(),
            tz: billing_tz,
            penalty,
            bonus_validity_months,
            funds_frozen: false,
        })
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn items(&self) -> &[OverdueItem] {
        &self.items
    }

    pub fn item(&self, id: ItemId) -> Option<&OverdueItem> {
        self.items.iter().find(|i| i.id == id)
    }

    pub fn penalty_terms(&self) -> &PenaltyTerms {
        &self.penalty
    }

    /// SVC-089: staff freeze or unfreeze funds.
    pub fn set_funds_frozen(&mut self, frozen: bool) {
        self.funds_frozen = frozen;
    }

    pub fn funds_frozen(&self) -> bool {
        self.funds_frozen
    }

    fn scale(&self) -> u32 {
        self.ledger.currency().scale
    }

    fn day(&self, at: Timestamp) -> Date {
        date_of(at, &self.tz)
    }

    /// SVC-086 + SVC-134: cash comes in and pays, in order, (1) unpaid principal of overdue
    /// items, oldest due date first; (2) penalties, oldest first; (3) the rest stays as cash.
    pub fn receive_cash(
        &mut self,
        at: Timestamp,
        amount: Decimal,
        reference: &str,
        actor: &str,
    ) -> Result<CashApplication> {
        let mut staged = self.clone();
        let app = staged.receive_cash_inner(at, amount, reference, actor)?;
        *self = staged;
        Ok(app)
    }

    fn receive_cash_inner(
        &mut self,
        at: Timestamp,
        amount: Decimal,
        reference: &str,
        actor: &str,
    ) -> Result<CashApplication> {
        self.ledger.currency().check_posted("amount", amount)?;
        if amount.is_zero() {
            return Err(SaasError::invalid("amount", "must be greater than 0"));
        }
        self.ledger.post(Draft::new(
            at,
            EntryKind::TopUp,
            Account::World,
            Account::Cash,
            amount,
            reference,
            actor,
            "cash received",
        ))?;
        let mut app = self.pay_debts_from_cash(at, actor)?;
        app.to_balance = amount - app.principal - app.penalty;
        Ok(app)
    }

    /// Applies the cash balance to debts in the SVC-134 order. Paying debt is allowed even
    /// while funds are frozen (SVC-089).
    pub fn pay_debts_from_cash(&mut self, at: Timestamp, actor: &str) -> Result<CashApplication> {
        let today = self.day(at);
        let mut app = CashApplication::default();
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        order.sort_by_key(|&i| (self.items[i].due_date, self.items[i].id));
        for &i in &order {
            let cash = self.ledger.cash();
            let unpaid = self.items[i].unpaid_principal();
            let pay = cash.min(unpaid);
            if pay <= Decimal::ZERO {
                continue;
            }
            let id = self.items[i].id;
            self.ledger.post(Draft::new(
                at,
                EntryKind::DebtPayment,
                Account::Cash,
                Account::Receivable,
                pay,
                format!("overdue-item:{id}"),
                actor,
                format!("principal of overdue item {id} paid"),
            ))?;
            self.items[i].reduce(today, pay)?;
            app.principal += pay;
            if self.items[i].unpaid_principal().is_zero() {
                // SVC-133: accrual is posted when the principal is fully paid.
                self.post_item_penalty(i, today, at, actor)?;
            }
        }
        for &i in &order {
            let cash = self.ledger.cash();
            let owed = self.item_penalty_outstanding(i);
            let pay = cash.min(owed);
            if pay <= Decimal::ZERO {
                continue;
            }
            let id = self.items[i].id;
            self.ledger.post(Draft::new(
                at,
                EntryKind::PenaltyPayment,
                Account::Cash,
                Account::PenaltyReceivable,
                pay,
                format!("overdue-item:{id}"),
                actor,
                format!("late-payment penalty of overdue item {id} paid"),
            ))?;
            app.penalty += pay;
        }
        Ok(app)
    }

    /// Posted penalty of one item not yet paid, waived or written off. Derived from the
    /// ledger entries that reference the item, so there is no second tally to drift.
    fn item_penalty_outstanding(&self, i: usize) -> Decimal {
        let r = format!("overdue-item:{}", self.items[i].id);
        let settled: Decimal = self
            .ledger
            .entries()
            .iter()
            .filter(|e| e.reference == r && e.to == Account::PenaltyReceivable)
            .map(|e| e.amount)
            .sum();
        self.items[i].posted_penalty - settled
    }

    fn post_item_penalty(
        &mut self,
        i: usize,
        last_day: Date,
        at: Timestamp,
        actor: &str,
    ) -> Result<Decimal> {
        let amount = self.items[i].penalty_to_post(last_day, &self.penalty, self.scale())?;
        if amount.is_zero() {
            return Ok(amount);
        }
        let id = self.items[i].id;
        self.ledger.post(Draft::new(
            at,
            EntryKind::PenaltyPost,
            Account::PenaltyReceivable,
            Account::PenaltyIncome,
            amount,
            format!("overdue-item:{id}"),
            actor,
            format!(
                "late-payment penalty on overdue item {id} (simple daily interest on unpaid principal) through {last_day}"
            ),
        ))?;
        self.items[i].posted_penalty += amount;
        Ok(amount)
    }

    /// SVC-133: posts accrued penalty of every item up to and including `last_day` (at each
    /// statement and at termination). Returns the total posted now.
    pub fn post_penalties(
        &mut self,
        at: Timestamp,
        last_day: Date,
        actor: &str,
    ) -> Result<Decimal> {
        let mut staged = self.clone();
        let mut total = Decimal::ZERO;
        for i in 0..staged.items.len() {
            total += staged.post_item_penalty(i, last_day, at, actor)?;
        }
        *self = staged;
        Ok(total)
    }

    /// SVC-133: payable total at `now` = unpaid principal + posted unpaid penalty + rounded
    /// unposted accrual up to the end of yesterday.
    pub fn payable_total(&self, now: Timestamp) -> Result<Decimal> {
        let yesterday = add_days(self.day(now), -1)?;
        let mut total = self.ledger.debt_principal() + self.ledger.debt_penalty();
        for item in &self.items {
            total += item.penalty_to_post(yesterday, &self.penalty, self.scale())?;
        }
        Ok(total)
    }

    /// Pays a service charge (SVC-121/122/153): eligible bonus first (earliest-expiring lot
    /// first) unless `use_bonus` is false, then cash. For usage and cycle charges an
    /// uncovered remainder becomes an overdue item due on `due_date` (SVC-121, SVC-130).
    /// A prepaid order must be covered in full — unpaid orders never start and never create
    /// debt (SVC-100, SVC-130) — so an order the funds cannot cover is refused unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn charge(
        &mut self,
        at: Timestamp,
        kind: ChargeKind,
        amount: Decimal,
        use_bonus: bool,
        due_date: Date,
        reference: &str,
        actor: &str,
    ) -> Result<ChargeOutcome> {
        self.ledger.currency().check_posted("amount", amount)?;
        if amount.is_zero() {
            return Err(SaasError::invalid("amount", "must be greater than 0"));
        }
        if self.funds_frozen && kind == ChargeKind::Order {
            return Err(SaasError::FundsFrozen);
        }
        let mut staged = self.clone();
        let out = staged.charge_inner(at, kind, amount, use_bonus, due_date, reference, actor)?;
        *self = staged;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn charge_inner(
        &mut self,
        at: Timestamp,
        kind: ChargeKind,
        amount: Decimal,
        use_bonus: bool,
        due_date: Date,
        reference: &str,
        actor: &str,
    ) -> Result<ChargeOutcome> {
        let mut left = amount;
        let mut out = ChargeOutcome::default();
        if use_bonus {
            for lot in self.ledger.eligible_lots(at, kind) {
                if left.is_zero() {
                    break;
                }
                let pay = lot.remaining.min(left);
                let mut d = Draft::new(
                    at,
                    EntryKind::BonusSpend,
                    Account::Bonus(lot.id),
                    Account::Sales,
                    pay,
                    reference,
                    actor,
                    format!("bonus lot {} applied to {reference}", lot.id),
                );
                d.charge = Some(kind);
                self.ledger.post(d)?;
                left -= pay;
                out.bonus_paid += pay;
            }
        }
        let cash_pay = self.ledger.cash().min(left);
        if kind == ChargeKind::Order && cash_pay < left {
            return Err(SaasError::InsufficientFunds {
                needed: left,
                available: self.ledger.cash(),
            });
        }
        if cash_pay > Decimal::ZERO {
            let entry_kind = match kind {
                ChargeKind::Order => EntryKind::OrderPayment,
                ChargeKind::Usage => EntryKind::UsageCharge,
                ChargeKind::LicenceCycle => EntryKind::LicenceCycleCharge,
            };
            let mut d = Draft::new(
                at,
                entry_kind,
                Account::Cash,
                Account::Sales,
                cash_pay,
                reference,
                actor,
                format!("{reference} paid from cash"),
            );
            d.charge = Some(kind);
            self.ledger.post(d)?;
            left -= cash_pay;
            out.cash_paid = cash_pay;
        }
        if left > Decimal::ZERO {
            let id = self.items.len() as ItemId + 1;
            let entry_kind = match kind {
                ChargeKind::Usage => EntryKind::UsageCharge,
                _ => EntryKind::LicenceCycleCharge,
            };
            let mut d = Draft::new(
                at,
                entry_kind,
                Account::Receivable,
                Account::Sales,
                left,
                format!("overdue-item:{id}"),
                actor,
                format!("unpaid part of {reference}, due {due_date}, is now overdue item {id}"),
            );
            d.charge = Some(kind);
            self.ledger.post(d)?;
            self.items
                .push(OverdueItem::new(id, reference, left, due_date, at)?);
            out.overdue = Some((id, left));
        }
        Ok(out)
    }

    /// SVC-100 exception: a contract receivable becomes an overdue item after its net days
    /// if unpaid. It is posted as debt at once.
    pub fn contract_receivable(
        &mut self,
        at: Timestamp,
        amount: Decimal,
        due_date: Date,
        reference: &str,
        actor: &str,
    ) -> Result<ItemId> {
        self.ledger.currency().check_posted("amount", amount)?;
        let mut staged = self.clone();
        let id = staged.items.len() as ItemId + 1;
        let mut d = Draft::new(
            at,
            EntryKind::OrderPayment,
            Account::Receivable,
            Account::Sales,
            amount,
            format!("overdue-item:{id}"),
            actor,
            format!("{reference} activated before payment by contract, due {due_date}"),
        );
        d.charge = Some(ChargeKind::Order);
        staged.ledger.post(d)?;
        staged
            .items
            .push(OverdueItem::new(id, reference, amount, due_date, at)?);
        *self = staged;
        Ok(id)
    }

    /// SVC-152: grants a bonus lot. Expiry defaults to grant + `bonus_validity` months.
    #[allow(clippy::too_many_arguments)]
    pub fn grant_bonus(
        &mut self,
        at: Timestamp,
        amount: Decimal,
        source: BonusSource,
        scope: BonusScope,
        expires_at: Option<Timestamp>,
        reference: &str,
        granted_by: &str,
    ) -> Result<LotId> {
        let expires_at = match expires_at {
            Some(e) => e,
            None => {
                let d = self.day(at);
                let exp_day = add_months(d, self.bonus_validity_months)?;
                // Same time of day, 12 months later.
                let offset = at.duration_since(start_of(d, &self.tz)?);
                start_of(exp_day, &self.tz)?.checked_add(offset)?
            }
        };
        if expires_at <= at {
            return Err(SaasError::invalid(
                "expires_at",
                "a lot must expire after its grant",
            ));
        }
        let mut d = Draft::new(
            at,
            EntryKind::BonusGrant,
            Account::Promotions,
            Account::Bonus(0),
            amount,
            reference,
            granted_by,
            match source {
                BonusSource::SlaCompensation => "SLA compensation granted as bonus credit",
                BonusSource::OperatorGrant => "bonus credit granted by the operator",
                BonusSource::Campaign => "campaign bonus credit",
            },
        );
        d.lot = Some(BonusLotTerms {
            source,
            scope,
            expires_at,
            granted_by: granted_by.to_string(),
        });
        self.ledger.post(d)
    }

    /// SVC-152: removes the remainder of every lot expired at `now`.
    pub fn expire_bonus(&mut self, now: Timestamp, actor: &str) -> Result<Decimal> {
        let mut staged = self.clone();
        let mut total = Decimal::ZERO;
        for lot in self.ledger.lots() {
            if lot.terms.expires_at <= now && lot.remaining > Decimal::ZERO {
                staged.ledger.post(Draft::new(
                    now,
                    EntryKind::BonusExpiry,
                    Account::Bonus(lot.id),
                    Account::Promotions,
                    lot.remaining,
                    format!("bonus-lot:{}", lot.id),
                    actor,
                    format!("bonus lot {} expired at {}", lot.id, lot.terms.expires_at),
                ))?;
                total += lot.remaining;
            }
        }
        *self = staged;
        Ok(total)
    }

    /// Lots expiring within the next 30 days that still hold bonus (SVC-152 notice).
    pub fn lots_to_warn(&self, now: Timestamp) -> Result<Vec<LotId>> {
        let horizon = crate::calendar::add_24h_days(now, 30)?;
        Ok(self
            .ledger
            .lots()
            .into_iter()
            .filter(|l| {
                l.remaining > Decimal::ZERO
                    && l.terms.expires_at > now
                    && l.terms.expires_at <= horizon
            })
            .map(|l| l.id)
            .collect())
    }

    /// SVC-088: the owner withdraws cash (never bonus) minus any debt. Blocked by
    /// `funds_frozen` (SVC-089).
    pub fn withdraw(
        &mut self,
        at: Timestamp,
        amount: Decimal,
        reference: &str,
        actor: &str,
    ) -> Result<EntryId> {
        if self.funds_frozen {
            return Err(SaasError::FundsFrozen);
        }
        self.ledger.currency().check_posted("amount", amount)?;
        let available = (self.ledger.cash() - self.payable_total(at)?).max(Decimal::ZERO);
        if amount > available {
            return Err(SaasError::InsufficientFunds {
                needed: amount,
                available,
            });
        }
        self.ledger.post(Draft::new(
            at,
            EntryKind::Withdrawal,
            Account::Cash,
            Account::World,
            amount,
            reference,
            actor,
            "cash balance returned to the original payment route",
        ))
    }

    /// SVC-154 / SVC-234: a refund credits the cash share to the cash balance and each bonus
    /// share back into its original lot (keeping that lot's expiry).
    pub fn refund(
        &mut self,
        at: Timestamp,
        cash: Decimal,
        bonus: &[(LotId, Decimal)],
        reference: &str,
        actor: &str,
    ) -> Result<()> {
        // A refund returns what was actually paid for this reference, never more: cash
        // against cash payments (SVC-151: after promotions), bonus to the lot that paid.
        let flow = |from: Account, to: Account| -> Decimal {
            self.ledger
                .entries()
                .iter()
                .filter(|e| e.reference == reference && e.from == from && e.to == to)
                .map(|e| e.amount)
                .sum()
        };
        let cash_left = flow(Account::Cash, Account::Sales) - flow(Account::Sales, Account::Cash);
        if cash > cash_left {
            return Err(SaasError::invalid(
                "cash",
                format!(
                    "refund {cash} exceeds the {cash_left} cash paid for {reference} and not yet refunded"
                ),
            ));
        }
        for (lot, amount) in bonus {
            let left = flow(Account::Bonus(*lot), Account::Sales)
                - flow(Account::Sales, Account::Bonus(*lot));
            if *amount > left {
                return Err(SaasError::invalid(
                    "bonus",
                    format!(
                        "refund {amount} to lot {lot} exceeds the {left} it paid for {reference}"
                    ),
                ));
            }
        }
        let mut staged = self.clone();
        if cash > Decimal::ZERO {
            staged.ledger.post(Draft::new(
                at,
                EntryKind::Refund,
                Account::Sales,
                Account::Cash,
                cash,
                reference,
                actor,
                format!("refund of {reference} to the cash balance"),
            ))?;
        }
        for (lot, amount) in bonus {
            if amount.is_zero() {
                continue;
            }
            staged.ledger.post(Draft::new(
                at,
                EntryKind::Refund,
                Account::Sales,
                Account::Bonus(*lot),
                *amount,
                reference,
                actor,
                format!("bonus share of {reference} returned to lot {lot}"),
            ))?;
        }
        *self = staged;
        Ok(())
    }

    /// SVC-135: finance waives posted penalty of an item, fully or partly, with a reason.
    /// Accrual up to yesterday is posted first so the waiver applies to a known figure.
    pub fn waive_penalty(
        &mut self,
        at: Timestamp,
        item: ItemId,
        amount: Decimal,
        reason: &str,
        actor: &str,
    ) -> Result<()> {
        if reason.trim().is_empty() {
            return Err(SaasError::invalid("reason", "a waiver needs a reason"));
        }
        let i = self.index(item)?;
        let mut staged = self.clone();
        let yesterday = add_days(staged.day(at), -1)?;
        staged.post_item_penalty(i, yesterday, at, actor)?;
        let outstanding = staged.item_penalty_outstanding(i);
        if amount > outstanding {
            return Err(SaasError::invalid(
                "amount",
                format!("{amount} exceeds the outstanding penalty {outstanding}"),
            ));
        }
        staged.ledger.post(Draft::new(
            at,
            EntryKind::PenaltyWaiver,
            Account::Losses,
            Account::PenaltyReceivable,
            amount,
            format!("overdue-item:{item}"),
            actor,
            format!("penalty waived: {reason}"),
        ))?;
        *self = staged;
        Ok(())
    }

    /// SVC-135: finance writes off an item's unpaid principal (accrual stops that day,
    /// SVC-132) and its outstanding posted penalty.
    pub fn write_off(
        &mut self,
        at: Timestamp,
        item: ItemId,
        reason: &str,
        actor: &str,
    ) -> Result<Decimal> {
        if reason.trim().is_empty() {
            return Err(SaasError::invalid("reason", "a write-off needs a reason"));
        }
        let i = self.index(item)?;
        let mut staged = self.clone();
        let today = staged.day(at);
        let yesterday = add_days(today, -1)?;
        staged.post_item_penalty(i, yesterday, at, actor)?;
        let principal = staged.items[i].unpaid_principal();
        let mut total = Decimal::ZERO;
        if principal > Decimal::ZERO {
            staged.ledger.post(Draft::new(
                at,
                EntryKind::WriteOff,
                Account::Losses,
                Account::Receivable,
                principal,
                format!("overdue-item:{item}"),
                actor,
                format!("principal written off: {reason}"),
            ))?;
            staged.items[i].reduce(today, principal)?;
            total += principal;
        }
        let penalty = staged.item_penalty_outstanding(i);
        if penalty > Decimal::ZERO {
            staged.ledger.post(Draft::new(
                at,
                EntryKind::WriteOff,
                Account::Losses,
                Account::PenaltyReceivable,
                penalty,
                format!("overdue-item:{item}"),
                actor,
                format!("penalty written off: {reason}"),
            ))?;
            total += penalty;
        }
        *self = staged;
        Ok(total)
    }

    /// SVC-085: fixes a mistake with a reversal entry.
    pub fn reverse(
        &mut self,
        at: Timestamp,
        entry: EntryId,
        reason: &str,
        actor: &str,
    ) -> Result<EntryId> {
        if reason.trim().is_empty() {
            return Err(SaasError::invalid("reason", "a reversal needs a reason"));
        }
        let e = self.ledger.entry(entry).ok_or(SaasError::Unknown {
            what: "entry",
            id: entry,
        })?;
        // Entries that changed an overdue item's principal or penalty are settled through
        // waivers and write-offs, not reversals, so the item and the ledger never disagree.
        if e.reference.starts_with("overdue-item:") {
            return Err(SaasError::invalid(
                "entry",
                "entries of overdue items are corrected by waiver or write-off",
            ));
        }
        self.ledger.reverse(at, entry, actor, reason)
    }

    /// SVC-150: records a complimentary item as a zero-amount memo with its list value.
    pub fn complimentary(
        &mut self,
        at: Timestamp,
        what: &str,
        list_value: Decimal,
        actor: &str,
    ) -> Result<EntryId> {
        let mut d = Draft::new(
            at,
            EntryKind::Complimentary,
            Account::Promotions,
            Account::Promotions,
            Decimal::ZERO,
            what,
            actor,
            format!(
                "complimentary: {what} (list value for information only, never cash or balance)"
            ),
        );
        d.list_value = Some(list_value);
        self.ledger.post(d)
    }

    /// Funds available for spending on a charge of `kind` (cash + eligible bonus).
    pub fn available_funds(&self, at: Timestamp, kind: ChargeKind) -> Decimal {
        self.ledger.cash()
            + self
                .ledger
                .eligible_lots(at, kind)
                .iter()
                .map(|l| l.remaining)
                .sum::<Decimal>()
    }

    fn index(&self, item: ItemId) -> Result<usize> {
        self.items
            .iter()
            .position(|i| i.id == item)
            .ok_or(SaasError::Unknown {
                what: "overdue item",
                id: item,
            })
    }
}

/// One overdue item as stored: the facts fixed at creation. Everything that changes later
/// (principal reductions, posted penalty) is derived from the ledger entries that reference
/// the item, so a reloaded book cannot disagree with its ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub id: ItemId,
    pub origin: String,
    pub principal: Decimal,
    pub due_date: Date,
    pub created_at: Timestamp,
}

impl Book {
    /// Rebuilds a book from stored rows (entries in id order, items in id order). Every
    /// entry is re-checked against the ledger invariants as it is replayed, and ids must be
    /// 1, 2, 3 … exactly as the book issued them: a gap, a reordering or an entry the
    /// invariants refuse is reported as corrupt instead of being silently accepted.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        currency: Currency,
        billing_tz: TimeZone,
        penalty: PenaltyTerms,
        bonus_validity_months: i32,
        funds_frozen: bool,
        entries: Vec<crate::ledger::Entry>,
        items: Vec<ItemRecord>,
    ) -> Result<Self> {
        let mut book = Book::new(currency, billing_tz, penalty, bonus_validity_months)?;
        book.funds_frozen = funds_frozen;
        for (n, r) in items.into_iter().enumerate() {
            if r.id != n as ItemId + 1 {
                return Err(SaasError::LedgerInvariant(format!(
                    "overdue item ids must be consecutive: found {} at position {}",
                    r.id,
                    n + 1
                )));
            }
            book.items.push(OverdueItem::new(
                r.id,
                r.origin,
                r.principal,
                r.due_date,
                r.created_at,
            )?);
        }
        for e in entries {
            if e.currency != currency.code {
                return Err(SaasError::LedgerInvariant(format!(
                    "entry {} is in {}, the book in {}",
                    e.id, e.currency, currency.code
                )));
            }
            let to = match (e.kind, e.to) {
                (EntryKind::BonusGrant, Account::Bonus(_)) => Account::Bonus(0),
                (_, other) => other,
            };
            let mut d = Draft::new(
                e.posted_at,
                e.kind,
                e.from,
                to,
                e.amount,
                e.reference.clone(),
                e.actor,
                e.explanation,
            );
            d.reverses = e.reverses;
            d.lot = e.lot;
            d.charge = e.charge;
            d.list_value = e.list_value;
            let id = book.ledger.post(d)?;
            if id != e.id || book.ledger.entries().last().map(|x| x.to) != Some(e.to) {
                return Err(SaasError::LedgerInvariant(format!(
                    "entry ids must be consecutive: stored {} replayed as {id}",
                    e.id
                )));
            }
            // Derive the item's later facts from the entries that reference it.
            let Some(item_id) = e
                .reference
                .strip_prefix("overdue-item:")
                .and_then(|s| s.parse::<ItemId>().ok())
            else {
                continue;
            };
            let i = book.index(item_id)?;
            let day = date_of(e.posted_at, &book.tz);
            match (e.kind, e.from, e.to) {
                (EntryKind::DebtPayment, Account::Cash, Account::Receivable)
                | (EntryKind::WriteOff, Account::Losses, Account::Receivable) => {
                    book.items[i].reduce(day, e.amount)?;
                }
                (EntryKind::PenaltyPost, Account::PenaltyReceivable, Account::PenaltyIncome) => {
                    book.items[i].posted_penalty += e.amount;
                }
                _ => {}
            }
        }
        Ok(book)
    }
}
