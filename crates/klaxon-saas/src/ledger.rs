//! The tenant ledger (SVC-085): append-only, double-entry, with an explanation on every entry.
//!
//! Every entry moves a non-negative amount `from` one account `to` another. The tenant-side
//! sub-accounts are `Cash`, one `Bonus(lot)` per bonus lot, `Receivable` (unpaid overdue
//! principal, carried as a negative balance = what the tenant owes) and `PenaltyReceivable`
//! (posted, unpaid penalty, also negative). The other side are operator accounts (`World`
//! for money entering or leaving, `Sales`, `PenaltyIncome`, `Promotions`, `Losses`).
//!
//! Balances are never stored: they are sums over entries, so "balance = Σ entries" holds by
//! construction and `check` can recompute everything (the nightly check of SVC-085).
//!
//! The invariants, checked before an entry is appended (a refused posting changes nothing):
//! - cash ≥ 0 and every bonus lot ≥ 0;
//! - receivables ≤ 0 (a payment never turns debt into credit);
//! - bonus only ever flows to `Sales` (paying a service charge) or back to `Promotions`
//!   (expiry): it never becomes cash, never leaves to `World`, never pays a penalty
//!   (SVC-152, SVC-153);
//! - promotions and complimentary items are memo entries of amount 0 (SVC-150/151): nothing
//!   flows from `Promotions` except into a bonus lot.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{Result, SaasError};
use crate::money::Currency;

pub type EntryId = u64;
/// A bonus lot is identified by the id of its `bonus_grant` entry.
pub type LotId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    Cash,
    Bonus(LotId),
    Receivable,
    PenaltyReceivable,
    World,
    Sales,
    PenaltyIncome,
    Promotions,
    Losses,
}

impl Account {
    pub fn is_tenant_side(&self) -> bool {
        matches!(
            self,
            Account::Cash | Account::Bonus(_) | Account::Receivable | Account::PenaltyReceivable
        )
    }
}

/// SVC-085 entry types. `debt_payment` and `penalty_payment` are added because the spec's
/// list has no type for cash settling a receivable (decision, see docs/saas.md);
/// `complimentary` is the zero-amount memo of SVC-150.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    TopUp,
    OrderPayment,
    UsageCharge,
    LicenceCycleCharge,
    DebtPayment,
    PenaltyPayment,
    Refund,
    BonusGrant,
    BonusSpend,
    BonusExpiry,
    PenaltyPost,
    PenaltyWaiver,
    WriteOff,
    Withdrawal,
    Reversal,
    Complimentary,
}

/// SVC-152 lot source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BonusSource {
    SlaCompensation,
    OperatorGrant,
    Campaign,
}

/// What a bonus lot may pay for (SVC-152: by default the service's orders and usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BonusScope {
    OrdersAndUsage,
    OrdersOnly,
    UsageOnly,
}

/// The kind of service charge a payment is for, used for bonus scope and liability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeKind {
    /// A prepaid order (base term, renewal, add-on, upgrade, packs, support services).
    Order,
    /// Metered usage, settled daily (SVC-121).
    Usage,
    /// Postpaid cycle-end licence charge (SVC-122).
    LicenceCycle,
}

impl BonusScope {
    pub fn covers(&self, kind: ChargeKind) -> bool {
        match self {
            BonusScope::OrdersAndUsage => true,
            BonusScope::OrdersOnly => kind == ChargeKind::Order,
            BonusScope::UsageOnly => kind != ChargeKind::Order,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BonusLotTerms {
    pub source: BonusSource,
    pub scope: BonusScope,
    pub expires_at: Timestamp,
    pub granted_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: EntryId,
    pub posted_at: Timestamp,
    pub kind: EntryKind,
    pub from: Account,
    pub to: Account,
    pub amount: Decimal,
    pub currency: &'static str,
    /// Order, charge, overdue item, claim … the entry is about.
    pub reference: String,
    pub actor: String,
    /// Why the entry exists, in words a tenant can read on the statement.
    pub explanation: String,
    /// For a `reversal`: the entry it undoes.
    pub reverses: Option<EntryId>,
    /// For a `bonus_grant`: the lot's terms.
    pub lot: Option<BonusLotTerms>,
    /// For charge payments: the kind of charge (bonus scope, liability figure).
    pub charge: Option<ChargeKind>,
    /// For a `complimentary` memo: the list value, information only (SVC-150).
    pub list_value: Option<Decimal>,
}

/// An entry before it gets its id and currency.
#[derive(Debug, Clone)]
pub struct Draft {
    pub posted_at: Timestamp,
    pub kind: EntryKind,
    pub from: Account,
    pub to: Account,
    pub amount: Decimal,
    pub reference: String,
    pub actor: String,
    pub explanation: String,
    pub reverses: Option<EntryId>,
    pub lot: Option<BonusLotTerms>,
    pub charge: Option<ChargeKind>,
    pub list_value: Option<Decimal>,
}

impl Draft {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        posted_at: Timestamp,
        kind: EntryKind,
        from: Account,
        to: Account,
        amount: Decimal,
        reference: impl Into<String>,
        actor: impl Into<String>,
        explanation: impl Into<String>,
    ) -> Self {
        Draft {
            posted_at,
            kind,
            from,
            to,
            amount,
            reference: reference.into(),
            actor: actor.into(),
            explanation: explanation.into(),
            reverses: None,
            lot: None,
            charge: None,
            list_value: None,
        }
    }
}

/// A bonus lot as derived from the entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotView {
    pub id: LotId,
    pub granted_at: Timestamp,
    pub terms: BonusLotTerms,
    pub remaining: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    currency: Currency,
    entries: Vec<Entry>,
}

impl Ledger {
    pub fn new(currency: Currency) -> Self {
        Ledger {
            currency,
            entries: Vec::new(),
        }
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Balance of an account: Σ amounts in − Σ amounts out.
    pub fn balance(&self, account: Account) -> Decimal {
        self.entries.iter().fold(Decimal::ZERO, |acc, e| {
            let mut acc = acc;
            if e.to == account {
                acc += e.amount;
            }
            if e.from == account {
                acc -= e.amount;
            }
            acc
        })
    }

    pub fn cash(&self) -> Decimal {
        self.balance(Account::Cash)
    }

    /// Unpaid overdue principal the tenant owes (≥ 0).
    pub fn debt_principal(&self) -> Decimal {
        -self.balance(Account::Receivable)
    }

    /// Posted, unpaid penalty the tenant owes (≥ 0).
    pub fn debt_penalty(&self) -> Decimal {
        -self.balance(Account::PenaltyReceivable)
    }

    pub fn lots(&self) -> Vec<LotView> {
        self.entries
            .iter()
            .filter_map(|e| match (&e.kind, &e.to, &e.lot) {
                (EntryKind::BonusGrant, Account::Bonus(id), Some(terms)) => Some(LotView {
                    id: *id,
                    granted_at: e.posted_at,
                    terms: terms.clone(),
                    remaining: self.balance(Account::Bonus(*id)),
                }),
                _ => None,
            })
            .collect()
    }

    pub fn bonus_total(&self) -> Decimal {
        self.lots().iter().map(|l| l.remaining).sum()
    }

    /// Lots that may pay a charge of `kind` at `at`: in scope, not expired, non-empty,
    /// earliest expiry first (SVC-153).
    pub fn eligible_lots(&self, at: Timestamp, kind: ChargeKind) -> Vec<LotView> {
        let mut lots: Vec<LotView> = self
            .lots()
            .into_iter()
            .filter(|l| l.terms.scope.covers(kind) && l.terms.expires_at > at)
            .filter(|l| l.remaining > Decimal::ZERO)
            .collect();
        lots.sort_by_key(|l| (l.terms.expires_at, l.id));
        lots
    }

    /// All balances, derived from the entries.
    pub fn balances(&self) -> BTreeMap<Account, Decimal> {
        let mut m = BTreeMap::new();
        for e in &self.entries {
            *m.entry(e.from).or_insert(Decimal::ZERO) -= e.amount;
            *m.entry(e.to).or_insert(Decimal::ZERO) += e.amount;
        }
        m
    }

    /// Appends an entry if, and only if, every invariant still holds afterwards.
    pub(crate) fn post(&mut self, d: Draft) -> Result<EntryId> {
        self.check_draft(&d)?;
        let id = self.entries.len() as EntryId + 1;
        let to = match d.to {
            // A grant opens a new lot named after its own entry id.
            Account::Bonus(0) if d.kind == EntryKind::BonusGrant => Account::Bonus(id),
            other => other,
        };
        self.entries.push(Entry {
            id,
            posted_at: d.posted_at,
            kind: d.kind,
            from: d.from,
            to,
            amount: d.amount,
            currency: self.currency.code,
            reference: d.reference,
            actor: d.actor,
            explanation: d.explanation,
            reverses: d.reverses,
            lot: d.lot,
            charge: d.charge,
            list_value: d.list_value,
        });
        Ok(id)
    }

    fn check_draft(&self, d: &Draft) -> Result<()> {
        self.currency.check_posted("amount", d.amount)?;
        if d.explanation.trim().is_empty() {
            return Err(SaasError::invalid(
                "explanation",
                "every entry must say why it exists",
            ));
        }
        if let Some(last) = self.entries.last()
            && d.posted_at < last.posted_at
        {
            return Err(SaasError::LedgerInvariant(format!(
                "entries are append-only in time: {} is before the last entry at {}",
                d.posted_at, last.posted_at
            )));
        }
        if d.kind == EntryKind::Complimentary {
            if !d.amount.is_zero() || d.from != Account::Promotions || d.to != Account::Promotions {
                return Err(SaasError::LedgerInvariant(
                    "complimentary items are memo entries of amount 0 (SVC-150)".into(),
                ));
            }
            return Ok(());
        }
        if d.amount.is_zero() {
            return Err(SaasError::invalid("amount", "must be greater than 0"));
        }
        if d.from == d.to {
            return Err(SaasError::LedgerInvariant(
                "an entry must move between two accounts".into(),
            ));
        }
        if let Account::Bonus(_) = d.from
            && !matches!(d.to, Account::Sales | Account::Promotions)
        {
            return Err(SaasError::LedgerInvariant(
                "bonus may only pay service charges or expire; it never becomes cash or pays penalties (SVC-152)".into(),
            ));
        }
        if d.from == Account::Promotions && !matches!(d.to, Account::Bonus(_)) {
            return Err(SaasError::LedgerInvariant(
                "promotions never turn into cash or payment power (SVC-151)".into(),
            ));
        }
        if d.kind == EntryKind::BonusGrant {
            if d.lot.is_none() || d.to != Account::Bonus(0) {
                return Err(SaasError::LedgerInvariant(
                    "a bonus grant opens a new lot".into(),
                ));
            }
        } else if let Account::Bonus(lot) = d.to
            && !self
                .entries
                .iter()
                .any(|e| e.kind == EntryKind::BonusGrant && e.to == Account::Bonus(lot))
        {
            return Err(SaasError::Unknown {
                what: "bonus lot",
                id: lot,
            });
        }
        // Balance constraints after the entry.
        for acct in [d.from, d.to] {
            if !acct.is_tenant_side() {
                continue;
            }
            let mut after = self.balance(acct);
            if acct == d.to {
                after += d.amount;
            }
            if acct == d.from {
                after -= d.amount;
            }
            let ok = match acct {
                Account::Cash | Account::Bonus(_) => after >= Decimal::ZERO,
                Account::Receivable | Account::PenaltyReceivable => after <= Decimal::ZERO,
                _ => true,
            };
            if !ok {
                return Err(match acct {
                    Account::Cash => SaasError::InsufficientFunds {
                        needed: d.amount,
                        available: self.cash(),
                    },
                    _ => SaasError::LedgerInvariant(format!(
                        "{acct:?} would be {after}, outside its allowed sign"
                    )),
                });
            }
        }
        Ok(())
    }

    /// Reverses an entry (SVC-085: mistakes are fixed only by reversal entries). Refused
    /// when the entry was already reversed, is itself a reversal, or when undoing it would
    /// break an invariant (e.g. cash already spent).
    pub(crate) fn reverse(
        &mut self,
        at: Timestamp,
        id: EntryId,
        actor: &str,
        reason: &str,
    ) -> Result<EntryId> {
        let e = self
            .entry(id)
            .cloned()
            .ok_or(SaasError::Unknown { what: "entry", id })?;
        if e.kind == EntryKind::Reversal || e.kind == EntryKind::Complimentary {
            return Err(SaasError::invalid(
                "entry",
                format!("entry {id} cannot be reversed"),
            ));
        }
        if self.entries.iter().any(|x| x.reverses == Some(id)) {
            return Err(SaasError::invalid(
                "entry",
                format!("entry {id} is already reversed"),
            ));
        }
        if e.kind == EntryKind::BonusGrant {
            // Reversing a grant empties the lot back to promotions; only the unspent part.
            if self.balance(e.to) != e.amount {
                return Err(SaasError::invalid(
                    "entry",
                    format!("bonus lot {id} was partly used; reverse the spends first"),
                ));
            }
        }
        let mut d = Draft::new(
            at,
            EntryKind::Reversal,
            e.to,
            e.from,
            e.amount,
            e.reference.clone(),
            actor,
            format!("reversal of entry {id}: {reason}"),
        );
        d.reverses = Some(id);
        d.charge = e.charge;
        // The flow rules of `check_draft` apply to the reversal too: undoing a spend puts
        // bonus back in its lot, but nothing can route bonus into cash this way.
        self.post(d)
    }

    /// SVC-085 nightly check: recompute every balance from the entries and verify the
    /// invariants. Returns the list of problems (empty when consistent).
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let balances = self.balances();
        let total: Decimal = balances.values().copied().sum();
        if !total.is_zero() {
            problems.push(format!("double entry does not balance: Σ = {total}"));
        }
        for (acct, bal) in &balances {
            let ok = match acct {
                Account::Cash | Account::Bonus(_) => *bal >= Decimal::ZERO,
                Account::Receivable | Account::PenaltyReceivable => *bal <= Decimal::ZERO,
                _ => true,
            };
            if !ok {
                problems.push(format!("{acct:?} balance {bal} has the wrong sign"));
            }
        }
        for e in &self.entries {
            if let Account::Bonus(_) = e.from
                && !matches!(e.to, Account::Sales | Account::Promotions)
            {
                problems.push(format!("entry {} moves bonus to {:?}", e.id, e.to));
            }
        }
        problems
    }
}
