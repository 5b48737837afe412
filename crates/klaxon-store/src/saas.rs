//! SaaS mode: each tenant's billing book (ledger + overdue items) and service state as rows
//! (migration 0019), and the one way to change them: [`Store::saas_apply`] loads the book in
//! a transaction, lets a `klaxon-saas` operation run on it, appends the entries and items it
//! produced, moves the service state by the overdue rules, audits, and commits — or changes
//! nothing. Self-hosted installs never call into this module.
//!
//! Concurrency: the tenant's `saas_tenants` row is locked first (`FOR UPDATE` on PostgreSQL;
//! SQLite has one writer), so two writers never both apply to the same book. The primary
//! key (account_id, entry_id) would refuse a second writer with a stale book anyway.
//!
//! Amounts are decimal text on SQLite and NUMERIC on PostgreSQL (bound as text, read back
//! with `::text`), so no amount ever passes through a float.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::book::{Book, ItemRecord};
use klaxon_saas::codec;
use klaxon_saas::ledger::{BonusLotTerms, Entry};
use klaxon_saas::mode::{BillingProfile, DeploymentMode, Regime, RuleGroup};
use klaxon_saas::money::Currency;
use klaxon_saas::overdue::PenaltyTerms;
use klaxon_saas::params::Params;
use klaxon_saas::state::ServiceState;
use klaxon_saas::tenant::{Change, Standing, advance};
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool};

use crate::db::{Sql, is_sqlite};
use crate::rows::{get_i64, get_str};
use crate::{Store, StoreError};

mod access;
mod agreements;
mod comm;
mod dormant;
mod export_block;
mod governance;
mod licences;
mod metering;
mod notice_outbox;
mod notices;
mod ownership;
mod postpaid;
mod providers;
mod purchase;
mod registration;
mod renewals;
mod sla;
mod terminations;
mod transfer_import;
mod transfers;
pub use access::{
    Disclosure, GrantRecord, LawfulRequest, NewLawfulRequest, StaffAccess, StaffRecord, staff_actor,
};
pub use agreements::{AcceptanceRecord, Decided, DocumentVersion, NewDecision, NewDocument};
pub use comm::{MeterDecision, PackRecord, pack_sku};
pub use dormant::{DORMANT_NOTICE_DAYS, DormantAction};
pub use export_block::{ExportBlockLift, LiftExportBlock};
pub use governance::{ClosureRequest, LegalHoldRecord, SecurityIncidentRecord};
pub use licences::{
    ActiveUser, BuyLicences, LicenceGate, LicenceHolder, LicenceOrder, LicencePoolView, licence_sku,
};
pub use metering::{CommPack, CommPlan, CommUnit, UsageRun};
pub use notice_outbox::QueuedNotice;
pub(crate) use notice_outbox::enqueue as enqueue_notice;
pub use notices::{NewNotice, NoticeRecord};
pub use ownership::OwnershipTransfer;
pub use postpaid::{CycleStatement, postpaid_sku};
pub use providers::RegionProvider;
pub(crate) use purchase::accept_for_order;
pub use purchase::{OrderAcceptance, PurchaseAcceptance};
pub use registration::{CodeIssue, DirectoryEntry, NewRegistration, Registered};
pub use renewals::{BillingSettings, Renew};
pub use sla::{NewSlaClaim, SLA_TEXT_MAX, SlaClaim, SlaExclusion, SlaIncident, SlaUnreachable};
pub use terminations::{BREACH_CATEGORIES, NewTermination, TerminationKind, TerminationRecord};
pub use transfer_import::{TransferImport, TransferImportRecord};
pub use transfers::{NewTransferConsent, TransferConsent, TransferRecord, TransferRequest};

/// The deployment's billing settings, from the server configuration.
#[derive(Debug, Clone)]
pub struct SaasSettings {
    pub params: Params,
    pub billing_tz: TimeZone,
    pub currency: Currency,
    /// The region this deployment serves; a tenant created here is kept in it (§14).
    pub region: String,
    /// Edition of a tenant whose billing row is created by an operator action.
    pub default_edition: String,
}

/// Why a billing operation did not happen. Nothing was changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum SaasFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A service-agreement rule refused it (names the field or rule).
    #[error(transparent)]
    Rule(#[from] SaasError),
    #[error("unknown account {0}")]
    UnknownAccount(i64),
    #[error("no billing run for a future day: {0} has not started yet")]
    FutureDay(Date),
}

impl From<sqlx::Error> for SaasFailure {
    fn from(e: sqlx::Error) -> Self {
        SaasFailure::Store(e.into())
    }
}

type Result<T> = std::result::Result<T, SaasFailure>;

/// A tenant's billing standing as operators see it.
#[derive(Debug, Clone)]
pub struct TenantBilling {
    pub account_id: i64,
    pub profile: BillingProfile,
    pub state: ServiceState,
    pub since: Timestamp,
    pub purge_at: Option<Timestamp>,
    pub edition: String,
    pub region: String,
    pub currency: Currency,
    pub funds_frozen: bool,
    pub book: Book,
    /// SVC-133 payable total at the time of reading.
    pub payable_total: Decimal,
}

/// What one applied operation did.
#[derive(Debug, Clone)]
pub struct Applied<T> {
    pub value: T,
    pub entries: Vec<Entry>,
    pub changes: Vec<Change>,
    pub state: ServiceState,
}

/// One run of the daily overdue job for a tenant and billing day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRun {
    pub account_id: i64,
    pub day: Date,
    /// False when the day had already been run: nothing was done again.
    pub ran_now: bool,
    pub outcome: String,
}

fn ts(ms: Millis) -> Result<Timestamp> {
    Ok(Timestamp::from_millisecond(ms).map_err(SaasError::from)?)
}

fn ms(t: Timestamp) -> Millis {
    t.as_millisecond()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> SaasFailure {
    SaasFailure::Store(StoreError::Corrupt(format!("{what}: {e}")))
}

fn decimal(row: &AnyRow, col: &str) -> Result<Decimal> {
    let text = get_str(row, col)?;
    text.parse::<Decimal>().map_err(|e| corrupt(col, e))
}

/// `$n` for a decimal amount: text on SQLite, NUMERIC on PostgreSQL.
fn bind_amount(sql: &mut Sql, pg: bool, amount: Decimal) {
    sql.bind(amount.to_string());
    if pg {
        sql.push("::numeric");
    }
}

fn amount_col(pg: bool, col: &str) -> String {
    if pg {
        format!("{col}::text AS {col}")
    } else {
        col.to_string()
    }
}

struct TenantRow {
    profile: BillingProfile,
    standing: Standing,
    edition: String,
    region: String,
    currency: Currency,
    funds_frozen: bool,
    /// SVC-120/125: postpaid since (or from) this instant; `None` while prepaid.
    postpaid_from: Option<Timestamp>,
}

fn regime(profile: BillingProfile) -> Result<Regime> {
    let cloud = Regime::for_new_tenant(DeploymentMode::Cloud);
    Ok(match profile {
        BillingProfile::Commercial => cloud,
        BillingProfile::Exempt => cloud.set_profile(BillingProfile::Exempt, "stored")?,
    })
}

fn profile_text(p: BillingProfile) -> &'static str {
    match p {
        BillingProfile::Commercial => "commercial",
        BillingProfile::Exempt => "exempt",
    }
}

fn tenant_row(row: &AnyRow) -> Result<TenantRow> {
    let profile = match get_str(row, "profile")?.as_str() {
        "commercial" => BillingProfile::Commercial,
        "exempt" => BillingProfile::Exempt,
        other => return Err(corrupt("profile", other)),
    };
    let state = codec::state(&get_str(row, "state")?, &get_str(row, "reason")?)?;
    let purge = get_i64(row, "purge_at")?;
    Ok(TenantRow {
        profile,
        standing: Standing {
            state,
            since: ts(get_i64(row, "since")?)?,
            purge_at: if purge == 0 { None } else { Some(ts(purge)?) },
        },
        edition: get_str(row, "edition")?,
        region: get_str(row, "region")?,
        currency: codec::currency(&get_str(row, "currency")?)?,
        funds_frozen: get_i64(row, "funds_frozen")? != 0,
        postpaid_from: if get_str(row, "billing_mode")? == "postpaid" {
            Some(ts(get_i64(row, "postpaid_from")?)?)
        } else {
            None
        },
    })
}

const TENANT_COLUMNS: &str = "profile, state, reason, since, purge_at, edition, region, currency, funds_frozen, billing_mode, postpaid_from";

async fn account_exists(conn: &mut AnyConnection, account_id: i64) -> Result<bool> {
    let mut sql = Sql::new("SELECT account_id FROM accounts WHERE account_id = ");
    sql.bind(account_id);
    Ok(sql
        .query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// The tenant's billing row as SVC-401 starts it (commercial, `active`, the default edition,
/// this region), unless it has one already.
pub(super) async fn insert_default_tenant(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    account_id: i64,
    now: Millis,
) -> Result<()> {
    let mut ins = Sql::new(
        "INSERT INTO saas_tenants (account_id, profile, state, reason, since, edition, currency, region, created_at, updated_at) VALUES (",
    );
    ins.bind(account_id)
        .push(", 'commercial', 'active', '', ")
        .bind(now)
        .push(", ")
        .bind(settings.default_edition.as_str())
        .push(", ")
        .bind(settings.currency.code)
        .push(", ")
        .bind(settings.region.as_str())
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(now)
        .push(") ON CONFLICT (account_id) DO NOTHING");
    ins.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Creates the tenant's billing row on first use (SVC-401: commercial, `active`), then
/// locks and reads it.
async fn lock_tenant(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    account_id: i64,
    now: Millis,
) -> Result<TenantRow> {
    if !account_exists(conn, account_id).await? {
        return Err(SaasFailure::UnknownAccount(account_id));
    }
    insert_default_tenant(conn, settings, account_id, now).await?;
    let mut sel = Sql::new(&format!(
        "SELECT {TENANT_COLUMNS} FROM saas_tenants WHERE account_id = "
    ));
    sel.bind(account_id);
    if !is_sqlite(conn) {
        sel.push(" FOR UPDATE");
    }
    let row = sel.query_on(conn).fetch_one(&mut *conn).await?;
    tenant_row(&row)
}

async fn load_book(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    account_id: i64,
    t: &TenantRow,
) -> Result<Book> {
    let pg = !is_sqlite(conn);
    let mut sql = Sql::new(&format!(
        "SELECT entry_id, posted_at, kind, from_account, to_account, {}, currency, reference, actor, explanation, reverses, charge, lot_source, lot_scope, lot_expires_at, lot_granted_by, COALESCE({}, '') AS list_value FROM saas_ledger_entries WHERE account_id = ",
        amount_col(pg, "amount"),
        if pg { "list_value::text" } else { "list_value" },
    ));
    sql.bind(account_id).push(" ORDER BY entry_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let currency = codec::currency(&get_str(row, "currency")?)?;
        let charge = get_str(row, "charge")?;
        let lot_source = get_str(row, "lot_source")?;
        let reverses = get_i64(row, "reverses")?;
        let list_value = get_str(row, "list_value")?;
        entries.push(Entry {
            id: u64::try_from(get_i64(row, "entry_id")?).map_err(|e| corrupt("entry_id", e))?,
            posted_at: ts(get_i64(row, "posted_at")?)?,
            kind: codec::entry_kind(&get_str(row, "kind")?)?,
            from: codec::account(&get_str(row, "from_account")?)?,
            to: codec::account(&get_str(row, "to_account")?)?,
            amount: decimal(row, "amount")?,
            currency: currency.code,
            reference: get_str(row, "reference")?,
            actor: get_str(row, "actor")?,
            explanation: get_str(row, "explanation")?,
            reverses: (reverses != 0)
                .then(|| u64::try_from(reverses).map_err(|e| corrupt("reverses", e)))
                .transpose()?,
            lot: if lot_source.is_empty() {
                None
            } else {
                Some(BonusLotTerms {
                    source: codec::bonus_source(&lot_source)?,
                    scope: codec::bonus_scope(&get_str(row, "lot_scope")?)?,
                    expires_at: ts(get_i64(row, "lot_expires_at")?)?,
                    granted_by: get_str(row, "lot_granted_by")?,
                })
            },
            charge: if charge.is_empty() {
                None
            } else {
                Some(codec::charge_kind(&charge)?)
            },
            list_value: if list_value.is_empty() {
                None
            } else {
                Some(list_value.parse().map_err(|e| corrupt("list_value", e))?)
            },
        });
    }
    let mut sql = Sql::new(&format!(
        "SELECT item_id, origin, {}, due_date, created_at FROM saas_overdue_items WHERE account_id = ",
        amount_col(pg, "principal")
    ));
    sql.bind(account_id).push(" ORDER BY item_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(ItemRecord {
            id: u64::try_from(get_i64(row, "item_id")?).map_err(|e| corrupt("item_id", e))?,
            origin: get_str(row, "origin")?,
            principal: decimal(row, "principal")?,
            due_date: get_str(row, "due_date")?
                .parse()
                .map_err(|e| corrupt("due_date", e))?,
            created_at: ts(get_i64(row, "created_at")?)?,
        });
    }
    Ok(Book::restore(
        t.currency,
        settings.billing_tz.clone(),
        PenaltyTerms::from_params(&settings.params),
        settings.params.bonus_validity_months,
        t.funds_frozen,
        entries,
        items,
    )?)
}

async fn insert_entry(conn: &mut AnyConnection, account_id: i64, e: &Entry) -> Result<()> {
    let pg = !is_sqlite(conn);
    let mut sql = Sql::new(
        "INSERT INTO saas_ledger_entries (account_id, entry_id, posted_at, kind, from_account, to_account, amount, currency, reference, actor, explanation, reverses, charge, lot_source, lot_scope, lot_expires_at, lot_granted_by, list_value) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(i64::try_from(e.id).map_err(|x| corrupt("entry_id", x))?)
        .push(", ")
        .bind(ms(e.posted_at))
        .push(", ")
        .bind(codec::entry_kind_text(e.kind))
        .push(", ")
        .bind(codec::account_text(e.from))
        .push(", ")
        .bind(codec::account_text(e.to))
        .push(", ");
    bind_amount(&mut sql, pg, e.amount);
    sql.push(", ")
        .bind(e.currency)
        .push(", ")
        .bind(e.reference.as_str())
        .push(", ")
        .bind(e.actor.as_str())
        .push(", ")
        .bind(e.explanation.as_str())
        .push(", ")
        .bind(
            e.reverses
                .map(i64::try_from)
                .transpose()
                .map_err(|x| corrupt("reverses", x))?
                .unwrap_or(0),
        )
        .push(", ")
        .bind(e.charge.map_or("", codec::charge_kind_text))
        .push(", ")
        .bind(
            e.lot
                .as_ref()
                .map_or("", |l| codec::bonus_source_text(l.source)),
        )
        .push(", ")
        .bind(
            e.lot
                .as_ref()
                .map_or("", |l| codec::bonus_scope_text(l.scope)),
        )
        .push(", ")
        .bind(e.lot.as_ref().map_or(0, |l| ms(l.expires_at)))
        .push(", ")
        .bind(e.lot.as_ref().map_or("", |l| l.granted_by.as_str()))
        .push(", ");
    match e.list_value {
        Some(v) => bind_amount(&mut sql, pg, v),
        None => {
            sql.push("NULL");
        }
    }
    sql.push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

async fn insert_item(
    conn: &mut AnyConnection,
    account_id: i64,
    item: &klaxon_saas::overdue::OverdueItem,
) -> Result<()> {
    let pg = !is_sqlite(conn);
    let mut sql = Sql::new(
        "INSERT INTO saas_overdue_items (account_id, item_id, origin, principal, due_date, created_at) VALUES (",
    );
    sql.bind(account_id)
        .push(", ")
        .bind(i64::try_from(item.id).map_err(|x| corrupt("item_id", x))?)
        .push(", ")
        .bind(item.origin.as_str())
        .push(", ");
    bind_amount(&mut sql, pg, item.principal);
    sql.push(", ")
        .bind(item.due_date.to_string())
        .push(", ")
        .bind(ms(item.created_at))
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

async fn audit(
    conn: &mut AnyConnection,
    account_id: i64,
    at: Millis,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<()> {
    let mut sql =
        Sql::new("INSERT INTO saas_audit (account_id, at, actor, action, detail) VALUES (");
    sql.bind(account_id)
        .push(", ")
        .bind(at)
        .push(", ")
        .bind(actor)
        .push(", ")
        .bind(action)
        .push(", ")
        .bind(detail)
        .push(")");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

/// Stores the new standing and audits every state change (actor `system`, with the rule).
async fn save_standing(
    conn: &mut AnyConnection,
    account_id: i64,
    standing: &Standing,
    changes: &[Change],
    now: Millis,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let (name, reason) = codec::state_text(standing.state);
    let mut sql = Sql::new("UPDATE saas_tenants SET state = ");
    sql.bind(name)
        .push(", reason = ")
        .bind(reason)
        .push(", since = ")
        .bind(ms(standing.since))
        .push(", purge_at = ")
        .bind(standing.purge_at.map_or(0, ms))
        .push(", updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(account_id);
    sql.query_on(conn).execute(&mut *conn).await?;
    // RSP-008 Halt: entering a state that is not served stops the tenant's automation in this
    // same transaction.
    if changes.iter().any(|c| !serving(c.to)) && !serving(standing.state) {
        let state = match reason {
            "" => name.to_string(),
            r => format!("{name}:{r}"),
        };
        crate::halt::halt_tenant(conn, account_id, &state, now).await?;
    }
    for c in changes {
        audit(
            conn,
            account_id,
            now,
            "system",
            "state_change",
            &format!("{} -> {} at {} ({})", c.from, c.to, c.at, c.rule),
        )
        .await?;
        // SVC-136, SVC-139: the tenant is told of the change; queued with it.
        if let Some(n) = klaxon_saas::tenant::notice_of(c, standing) {
            notice_outbox::enqueue(
                conn,
                account_id,
                n.category,
                n.template_id,
                (n.subject, n.content),
                &format!("service_state:{}", c.to),
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// Is the tenant served in this state (anything but `suspended`, `ended`, `purging`, `purged`)?
fn serving(s: ServiceState) -> bool {
    matches!(
        s,
        ServiceState::Trial | ServiceState::Active | ServiceState::Overdue
    )
}

async fn apply_in(
    write: &AnyPool,
    settings: &SaasSettings,
    account_id: i64,
    now_ms: Millis,
    actor: &str,
    action: &str,
    op: impl FnOnce(&mut Book, Timestamp) -> klaxon_saas::Result<String>,
) -> Result<Applied<String>> {
    let mut tx = write.begin().await?;
    let applied = apply_on(&mut tx, settings, account_id, now_ms, actor, action, op).await?;
    tx.commit().await?;
    Ok(applied)
}

/// [`apply_in`] inside a transaction the caller owns (and commits), so an operation can
/// write rows of its own beside the book's (a licence order and its licences, for one).
async fn apply_on(
    conn: &mut AnyConnection,
    settings: &SaasSettings,
    account_id: i64,
    now_ms: Millis,
    actor: &str,
    action: &str,
    op: impl FnOnce(&mut Book, Timestamp) -> klaxon_saas::Result<String>,
) -> Result<Applied<String>> {
    let now = ts(now_ms)?;
    let t = lock_tenant(conn, settings, account_id, now_ms).await?;
    regime(t.profile)?.require(RuleGroup::Commerce, "billing")?;
    let mut book = load_book(conn, settings, account_id, &t).await?;
    let before_entries = book.ledger().entries().len();
    let before_items = book.items().len();
    let detail = op(&mut book, now)?;
    let entries: Vec<Entry> = book.ledger().entries()[before_entries..].to_vec();
    for e in &entries {
        insert_entry(conn, account_id, e).await?;
    }
    for item in &book.items()[before_items..] {
        insert_item(conn, account_id, item).await?;
    }
    // SVC-130/139: a new debt makes the tenant overdue, a full payment restores it, at once
    // — or ends it as expired when its prepaid term ran out during the suspension.
    let term_end = renewals::last_term_end(conn, account_id).await?;
    let (standing, changes) = advance(
        &book,
        t.standing,
        now,
        &settings.params,
        &settings.billing_tz,
        term_end,
    )?;
    save_standing(conn, account_id, &standing, &changes, now_ms).await?;
    audit(conn, account_id, now_ms, actor, action, &detail).await?;
    Ok(Applied {
        value: detail,
        entries,
        changes,
        state: standing.state,
    })
}

impl Store {
    /// Loads the tenant's book, runs `op` on it at `now`, and in one transaction appends
    /// the entries and overdue items it produced, moves the service state by the overdue
    /// rules (so a payment that clears the payable total restores at once, SVC-139) and
    /// audits the action. `op` returns the audit detail. A refusal changes nothing.
    pub async fn saas_apply(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        now: Millis,
        actor: &str,
        action: &str,
        op: impl FnOnce(&mut Book, Timestamp) -> klaxon_saas::Result<String>,
    ) -> Result<Applied<String>> {
        apply_in(
            &self.inner.write,
            settings,
            account_id,
            now,
            actor,
            action,
            op,
        )
        .await
    }

    /// The tenant's billing standing and book; `None` when no billing row exists yet (the
    /// tenant is `active` with an empty book).
    pub async fn saas_tenant(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        now: Millis,
    ) -> Result<Option<TenantBilling>> {
        let mut conn = self.inner.read.acquire().await?;
        let conn: &mut AnyConnection = &mut conn;
        let mut sel = Sql::new(&format!(
            "SELECT {TENANT_COLUMNS} FROM saas_tenants WHERE account_id = "
        ));
        sel.bind(account_id);
        let Some(row) = sel.query_on(conn).fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let t = tenant_row(&row)?;
        let book = load_book(conn, settings, account_id, &t).await?;
        let payable_total = book.payable_total(ts(now)?)?;
        Ok(Some(TenantBilling {
            account_id,
            profile: t.profile,
            state: t.standing.state,
            since: t.standing.since,
            purge_at: t.standing.purge_at,
            edition: t.edition,
            region: t.region,
            currency: t.currency,
            funds_frozen: t.funds_frozen,
            book,
            payable_total,
        }))
    }

    /// Every tenant whose state refuses something (not `trial`/`active`/`overdue`), for the
    /// servers' in-memory state cache: pushes are checked against it without a query.
    pub async fn saas_blocked_states(&self) -> Result<Vec<(i64, ServiceState)>> {
        let rows = Sql::new(
            "SELECT account_id, state, reason FROM saas_tenants WHERE state NOT IN ('trial', 'active', 'overdue')",
        )
        .query()
        .fetch_all(&self.inner.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    get_i64(r, "account_id")?,
                    codec::state(&get_str(r, "state")?, &get_str(r, "reason")?)?,
                ))
            })
            .collect()
    }

    /// The daily overdue job for one tenant and billing `day` (SVC-130, SVC-137, SVC-139,
    /// SVC-140), evaluated at 00:00 of `day` in `billing_tz`, or at `now` for today. Runs at
    /// most once per tenant and day: a second run for the same day finds its record and
    /// does nothing. A day that has not started is refused.
    pub async fn saas_settle(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        day: Date,
        now_ms: Millis,
        actor: &str,
    ) -> Result<SettlementRun> {
        let now = ts(now_ms)?;
        let start = klaxon_saas::calendar::start_of(day, &settings.billing_tz)?;
        if start > now {
            return Err(SaasFailure::FutureDay(day));
        }
        let today = klaxon_saas::calendar::date_of(now, &settings.billing_tz);
        let at = if day == today { now } else { start };
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now_ms).await?;
        let mut q = Sql::new("SELECT outcome FROM saas_job_runs WHERE account_id = ");
        q.bind(account_id)
            .push(" AND job = 'overdue' AND run_for = ")
            .bind(day.to_string());
        if let Some(row) = q.query_on(conn).fetch_optional(&mut *conn).await? {
            return Ok(SettlementRun {
                account_id,
                day,
                ran_now: false,
                outcome: get_str(&row, "outcome")?,
            });
        }
        let outcome = if regime(t.profile)?.billing_applies() {
            let book = load_book(conn, settings, account_id, &t).await?;
            let term_end = renewals::last_term_end(conn, account_id).await?;
            let (standing, changes) = advance(
                &book,
                t.standing,
                at,
                &settings.params,
                &settings.billing_tz,
                term_end,
            )?;
            save_standing(conn, account_id, &standing, &changes, now_ms).await?;
            // SVC-136: the purge warnings, each once per purge date.
            if let Some((days, purge_at, n)) =
                klaxon_saas::tenant::purge_warning(&standing, at, &settings.billing_tz)?
            {
                let related = format!("purge_warning:{days}d:{}", ms(purge_at));
                if !notice_outbox::queued_or_given(conn, account_id, &related).await? {
                    notice_outbox::enqueue(
                        conn,
                        account_id,
                        n.category,
                        n.template_id,
                        (n.subject, n.content),
                        &related,
                        now_ms,
                    )
                    .await?;
                }
            }
            format!(
                "state {}, payable {} {}",
                standing.state,
                t.currency.format(book.payable_total(at)?),
                t.currency.code
            )
        } else {
            "exempt: not billed".to_string()
        };
        let mut ins = Sql::new(
            "INSERT INTO saas_job_runs (account_id, job, run_for, ran_at, outcome) VALUES (",
        );
        ins.bind(account_id)
            .push(", 'overdue', ")
            .bind(day.to_string())
            .push(", ")
            .bind(now_ms)
            .push(", ")
            .bind(outcome.as_str())
            .push(")");
        ins.query_on(conn).execute(&mut *conn).await?;
        audit(
            conn,
            account_id,
            now_ms,
            actor,
            "settle",
            &format!("{day}: {outcome}"),
        )
        .await?;
        tx.commit().await?;
        Ok(SettlementRun {
            account_id,
            day,
            ran_now: true,
            outcome,
        })
    }

    /// The worker's pass: today's overdue job for every tenant with debt or a non-payment
    /// suspension (the only tenants the overdue rules can move). Returns the runs done now.
    pub async fn saas_settle_due(
        &self,
        settings: &SaasSettings,
        now: Millis,
    ) -> Result<Vec<SettlementRun>> {
        let today = klaxon_saas::calendar::date_of(ts(now)?, &settings.billing_tz);
        let mut sql = Sql::new(
            "SELECT account_id FROM saas_tenants t WHERE profile = 'commercial' AND (state = 'overdue' OR (state = 'suspended' AND reason = 'nonpayment')) AND NOT EXISTS (SELECT 1 FROM saas_job_runs r WHERE r.account_id = t.account_id AND r.job = 'overdue' AND r.run_for = ",
        );
        sql.bind(today.to_string()).push(")");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        let mut out = Vec::new();
        for row in &rows {
            let run = self
                .saas_settle(settings, get_i64(row, "account_id")?, today, now, "system")
                .await?;
            if run.ran_now {
                out.push(run);
            }
        }
        Ok(out)
    }

    /// SVC-401: marks a tenant `exempt` (with a reason) or `commercial`; audited. Converting
    /// an exempt tenant to `commercial` needs the owner's (or an admin's) explicit acceptance
    /// of the terms in force, recorded like an order's (SVC-405, SVC-033).
    #[allow(clippy::too_many_arguments)]
    pub async fn saas_set_profile(
        &self,
        settings: &SaasSettings,
        account_id: i64,
        profile: BillingProfile,
        reason: &str,
        acceptance: Option<&PurchaseAcceptance>,
        start_trial: bool,
        now: Millis,
        actor: &str,
    ) -> Result<()> {
        // Validates the reason the way the rules do (an exemption needs one).
        Regime::for_new_tenant(DeploymentMode::Cloud).set_profile(profile, reason)?;
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let t = lock_tenant(conn, settings, account_id, now).await?;
        let converting =
            profile == BillingProfile::Commercial && t.profile == BillingProfile::Exempt;
        if start_trial && !converting {
            return Err(SaasError::Invalid {
                field: "start_trial",
                message: "a trial starts only with the conversion of an exempt tenant".into(),
            }
            .into());
        }
        if converting {
            // SVC-405: besides the acceptance, a purchase (a prepaid term in force, or
            // postpaid billing) or a trial that starts now.
            let mut term = Sql::new("SELECT 1 AS one FROM saas_licence_orders WHERE account_id = ");
            term.bind(account_id)
                .push(" AND starts_at <= ")
                .bind(now)
                .push(" AND ends_at > ")
                .bind(now);
            let paid = t.postpaid_from.is_some()
                || term
                    .query_on(conn)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some();
            match (paid, start_trial) {
                (false, false) => {
                    return Err(SaasError::Refused {
                        rule: "SVC-405",
                        message: "converting an exempt tenant needs a purchase (a prepaid term in force or postpaid billing) or a trial that starts now; nothing was changed".into(),
                    }
                    .into());
                }
                (true, true) => {
                    return Err(SaasError::Invalid {
                        field: "start_trial",
                        message: "the tenant has paid service in force: no trial".into(),
                    }
                    .into());
                }
                _ => {}
            }
            if start_trial && t.standing.state != klaxon_saas::state::ServiceState::Active {
                return Err(SaasError::Invalid {
                    field: "start_trial",
                    message: format!(
                        "a trial starts from an active tenant, not one that is {}",
                        t.standing.state
                    ),
                }
                .into());
            }
            accept_for_order(
                conn,
                account_id,
                acceptance,
                "conversion",
                &format!("conversion:{now}"),
                now,
                actor,
            )
            .await?;
        }
        let mut sql = Sql::new("UPDATE saas_tenants SET profile = ");
        sql.bind(profile_text(profile))
            .push(", profile_reason = ")
            .bind(reason)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id);
        sql.query_on(conn).execute(&mut *conn).await?;
        if start_trial {
            let mut sql =
                Sql::new("UPDATE saas_tenants SET state = 'trial', reason = '', since = ");
            sql.bind(now).push(" WHERE account_id = ").bind(account_id);
            sql.query_on(conn).execute(&mut *conn).await?;
            audit(
                conn,
                account_id,
                now,
                actor,
                "trial_start",
                "active -> trial (SVC-405)",
            )
            .await?;
        }
        audit(
            conn,
            account_id,
            now,
            actor,
            "set_profile",
            &format!("{}: {reason}", profile_text(profile)),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's audit trail (operator actions and state changes), oldest first:
    /// (at, actor, action, detail).
    pub async fn saas_audit(
        &self,
        account_id: i64,
    ) -> Result<Vec<(Millis, String, String, String)>> {
        let mut sql =
            Sql::new("SELECT at, actor, action, detail FROM saas_audit WHERE account_id = ");
        sql.bind(account_id).push(" ORDER BY audit_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    get_i64(r, "at")?,
                    get_str(r, "actor")?,
                    get_str(r, "action")?,
                    get_str(r, "detail")?,
                ))
            })
            .collect()
    }
}
