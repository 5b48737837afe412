//! `klaxon admin tenant …`: the operator's billing tools of SaaS mode (docs/saas.md), and
//! the purge of a tenant with its certificate (both modes, docs/backup.md).
//!
//! Each command opens the store with the node's configuration, refuses to run unless
//! `deployment.mode = "saas"`, applies one `klaxon-saas` operation through
//! `Store::saas_apply` (one transaction: the book, the state, the audit row), and prints the
//! result. Every action is audited with the operator's name (`--actor`, default the login).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use jiff::civil::Date;
use klaxon_saas::ledger::{BonusScope, BonusSource, ChargeKind};
use klaxon_saas::money::parse_decimal;
use klaxon_store::{
    NewTermination, SaasSettings, Store, TenantBilling, TerminationKind, TerminationRecord,
};

use crate::Common;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Billing of one tenant (SaaS mode only).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Support tickets opened by mail to the support address (SaaS mode only).
    #[command(subcommand)]
    Ticket(crate::support::TicketCommand),
    /// Agreement document versions (SaaS mode only).
    #[command(subcommand)]
    Documents(crate::documents::DocumentsCommand),
    /// The notification providers of each region (SaaS mode only).
    #[command(subcommand)]
    Providers(crate::providers::ProvidersCommand),
    /// Checks a purge certificate offline (SVC-191): its digest and the operator's
    /// signature. Exits non-zero when it was altered, is unsigned or the signature fails.
    VerifyCertificate {
        /// The certificate, as `klaxon admin tenant certificates` or the e-mail gives it.
        file: std::path::PathBuf,
        /// The operator's published public key (hex). Without it the key the certificate
        /// names is used, and printed to compare with the published one.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// The operator's public signing key(s), making the key on first use (SaaS mode only).
    SigningKey {
        #[command(flatten)]
        common: Common,
        /// Retire the key that signs now and make a new one. Retired keys stay published,
        /// so the certificates they signed still verify.
        #[arg(long)]
        rotate: bool,
    },
    /// The operator's staff identities (SaaS mode only).
    #[command(subcommand)]
    Staff(crate::staff::StaffCommand),
    /// The lawful-request register (SaaS mode only).
    #[command(subcommand)]
    LawfulRequest(crate::staff::LawfulCommand),
    /// Legal holds on tenants' data (SaaS mode only).
    #[command(subcommand)]
    LegalHold(crate::governance::HoldCommand),
    /// Data-security incidents and the notices to the affected tenants (SaaS mode only).
    #[command(subcommand)]
    SecurityIncident(crate::governance::IncidentCommand),
    /// Closing a tenant its owner asked for by e-mail (SaaS mode only).
    #[command(subcommand)]
    Closure(crate::governance::ClosureCommand),
    /// Staff-assisted ownership transfers (SaaS mode only).
    #[command(subcommand)]
    Ownership(crate::governance::OwnershipCommand),
    /// SLA reports, exclusions, unreachable periods and compensation claims (SaaS mode only).
    #[command(subcommand)]
    Sla(crate::sla::SlaCommand),
}

#[derive(Args)]
pub struct Target {
    #[command(flatten)]
    pub common: Common,
    /// The tenant's account id.
    #[arg(long)]
    pub account: i64,
    /// Who does this, for the audit trail (default: `cli:$USER`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Posting instant (RFC 3339), e.g. the value date of a bank payment; default now.
    /// Never in the future, never before the tenant's last ledger entry.
    #[arg(long)]
    pub at: Option<Timestamp>,
}

/// SVC-033: the explicit acceptance of the terms in force that every order carries: who
/// accepted for the tenant (the owner or an admin, by login) and from where.
#[derive(Args, Clone)]
pub struct Acceptance {
    /// Login (e-mail address) of the owner or admin who accepted the terms in force for this
    /// order. Without it the order is refused.
    #[arg(long)]
    pub accepted_by: Option<String>,
    /// Where they accepted: their client IP address, or the reference of the signed order
    /// form.
    #[arg(long)]
    pub accepted_from: Option<String>,
}

impl Acceptance {
    fn record(&self) -> Option<klaxon_store::PurchaseAcceptance> {
        self.accepted_by
            .as_ref()
            .map(|by| klaxon_store::PurchaseAcceptance {
                accepted_by: by.clone(),
                accepted_from: self.accepted_from.clone().unwrap_or_default(),
                user_agent: String::new(),
                client_type: "staff".into(),
                request_id: String::new(),
            })
    }
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// State, balances, overdue items and the payable total.
    Show(Target),
    /// Records cash received (SVC-086); it pays debts first (SVC-134) and restores a tenant
    /// suspended for non-payment once the payable total is 0 (SVC-139).
    Pay {
        #[command(flatten)]
        target: Target,
        /// Amount as a decimal string, e.g. 1996.97.
        #[arg(long)]
        amount: String,
        /// Payment reference (bank transfer id, receipt number).
        #[arg(long)]
        reference: String,
    },
    /// Grants bonus credit (SVC-152): pays service charges only, never penalties, never cash.
    Bonus {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reference: String,
        /// Expiry instant (RFC 3339); default 12 months after the grant.
        #[arg(long)]
        expires: Option<Timestamp>,
    },
    /// Posts a usage or postpaid cycle charge (SVC-121/122): paid from bonus, then cash; the
    /// uncovered rest becomes an overdue item due on `--due` (default the posting day).
    Charge {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reference: String,
        /// `usage` or `licence_cycle`.
        #[arg(long, default_value = "usage")]
        kind: String,
        /// Due date (YYYY-MM-DD in billing_tz).
        #[arg(long)]
        due: Option<Date>,
    },
    /// Licences: buy, list, assign, release (SVC-051 … SVC-061).
    #[command(subcommand)]
    Licence(LicenceCommand),
    /// Purges a tenant (SVC-190): deletes every row of its data, destroys its data key (so its
    /// encrypted backups can never be read again) and prints the purge certificate (SVC-191).
    /// SaaS mode: only a tenant that is `ended` with its purge date passed, or `purging`;
    /// `--due` purges every such tenant (the purge job). Self-hosted: any account, on request.
    Purge(PurgeArgs),
    /// Prints the purge certificates issued for a tenant (operator records, SVC-191).
    Certificates {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: i64,
    },
    /// Renews the latest prepaid term from the funds (SVC-103): before its end the new term
    /// follows it without a gap; later (also during the buffer) it starts now (SVC-107).
    Renew {
        #[command(flatten)]
        target: Target,
        /// Term length in months, 1 or 12; default the latest term's.
        #[arg(long)]
        months: Option<i32>,
        /// Licences; default the pool at the end of the latest term. Never fewer than the
        /// fixed licences assigned (SVC-061).
        #[arg(long)]
        quantity: Option<u32>,
        /// `standard` or `pro`; default the latest term's.
        #[arg(long)]
        edition: Option<String>,
        #[command(flatten)]
        acceptance: Acceptance,
    },
    /// Opt-in auto-renew (SVC-104): `on` or `off`.
    AutoRenew {
        #[command(flatten)]
        target: Target,
        #[arg(value_parser = ["on", "off"])]
        value: String,
    },
    /// The balance alert (SVC-087): a notice when cash + bonus fall below `--threshold`,
    /// once until they rise above it again; `--off` removes it.
    BalanceAlert {
        #[command(flatten)]
        target: Target,
        #[arg(long, required_unless_present = "off", conflicts_with = "off")]
        threshold: Option<String>,
        #[arg(long)]
        off: bool,
    },
    /// Runs the billing job once for every tenant: ends trials and terms that ran out,
    /// queues expiry reminders, makes due auto-renew attempts, fires balance alerts. The
    /// SaaS nodes run it continuously; this is for catching up by hand.
    BillingRun {
        #[command(flatten)]
        common: Common,
        /// The instant to run at (RFC 3339); default now. Never in the future.
        #[arg(long)]
        at: Option<Timestamp>,
    },
    /// Enables postpaid billing (SVC-120): refused with debt, with funds below the minimum
    /// balance, without the explicit acceptance of the terms in force (`--accepted-by`,
    /// SVC-033), or without a postpaid price. From a prepaid term it takes effect at the
    /// term's end (SVC-125).
    Postpaid {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        acceptance: Acceptance,
    },
    /// The billing profile (SVC-401/405): `exempt` with `--reason` (the operator's own
    /// tenants), or `commercial` — converting an exempt tenant needs the explicit acceptance
    /// of the terms in force (`--accepted-by`, SVC-033) and either paid service in force (a
    /// prepaid term or postpaid billing) or `--start-trial`.
    Profile {
        #[command(flatten)]
        target: Target,
        #[arg(value_parser = ["exempt", "commercial"])]
        profile: String,
        /// Why (required for `exempt`).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        acceptance: Acceptance,
        /// Converting an exempt tenant without paid service in force: start its trial now
        /// (SVC-405). Without a purchase or this, the conversion is refused.
        #[arg(long)]
        start_trial: bool,
    },
    /// The acceptances recorded with the tenant's orders (SVC-033).
    OrderAcceptances(Target),
    /// Hands the tenant's full export package to another region (SVC-212, SVC-215): only
    /// under the owner's consent to that purpose and destination for every data category,
    /// or under a lawful order on the register (`--lawful-request`). Checked and recorded in
    /// one transaction and written to the tenant's audit log; the package is written to
    /// `--out` only once the transfer is recorded.
    Transfer {
        #[command(flatten)]
        target: Target,
        /// `region_migration` (a staff-assisted move, SVC-215) or `export`.
        #[arg(long)]
        purpose: String,
        /// The destination region's id.
        #[arg(long)]
        to_region: String,
        /// The lawful request this rests on instead of a consent (SVC-224).
        #[arg(long)]
        lawful_request: Option<i64>,
        /// Where to write the package (gzipped tar, as `/account/export/create` builds it).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// The tenant's cross-region transfers and the consents they rest on.
    Transfers(Target),
    /// Run at the destination region: imports a package `transfer` wrote as a new tenant of
    /// this region (SVC-215), after checking it against the SHA-256 the source recorded.
    /// Refused, with nothing written, for a package imported before or one from this region.
    Import(crate::transfer::ImportArgs),
    /// Run at the source once the destination reports the import done: marks the transfer
    /// complete and purges the source tenant at once, with a certificate naming the transfer
    /// (SVC-215, SVC-190, SVC-191).
    TransferComplete(crate::transfer::CompleteArgs),
    /// Lifts the export block a termination for serious breach set (SVC-232, SVC-237): two
    /// staff members, written reasons, the decision it rests on. Not once the tenant is
    /// `purging`. The tenant's export works again at once.
    LiftExportBlock {
        #[command(flatten)]
        target: Target,
        /// The written reasons.
        #[arg(long)]
        reason: String,
        /// The decision it rests on (appeal ticket, the authority's release).
        #[arg(long)]
        reference: String,
        /// The staff member proposing the lift and the one approving it (two people).
        #[arg(long)]
        proposer: String,
        #[arg(long)]
        approver: String,
    },
    /// The statements of the settled postpaid cycles (SVC-124).
    Statements(Target),
    /// Runs the daily usage settlement of one billing day (SVC-121): rates the day before
    /// from the delivery records against the allowance and posts the overage (once per
    /// tenant and day).
    Usage {
        #[command(flatten)]
        target: Target,
        /// The billing day (YYYY-MM-DD); default today.
        #[arg(long)]
        date: Option<Date>,
    },
    /// Ends the service early (SVC-231 … SVC-234, SVC-238): `mutual` at the agreed instant
    /// with the agreed refund, `breach` at once (two staff members, no refund), `operator` at
    /// 00:00 at least 30 days after its notice (queued now) with a pro-rata refund,
    /// `feature-removal` at once within 30 days after a paid feature was removed, with a
    /// pro-rata refund. Refunds go to the cash balance; a bonus share back to its lot.
    Terminate(Box<TerminateArgs>),
    /// The tenant's release of its service (SVC-235, SVC-186), e.g. asked for by the owner
    /// through the support address: `ended(released)` now; the data is kept for the buffer,
    /// or deleted after the 24 h undo window with `--delete`. No refund unless the operator
    /// refunds customer cancellations pro rata.
    Release {
        #[command(flatten)]
        target: Target,
        /// The owner's request (ticket or console action).
        #[arg(long)]
        reference: String,
        /// Delete after the undo window instead of keeping the normal buffer.
        #[arg(long)]
        delete: bool,
    },
    /// The tenant's terminations: scheduled, carried out or void, with what was done.
    Terminations(Target),
    /// Buys a communication pack of the price list (SVC-072), paid from the funds at once
    /// (bonus, then cash; refused unchanged if they do not cover it).
    BuyPack {
        #[command(flatten)]
        target: Target,
        /// `sms`, `voice` or `email`.
        #[arg(long, value_parser = ["sms", "voice", "email"])]
        unit: String,
        /// The pack's size, as the price list sells it.
        #[arg(long)]
        units: u64,
        #[command(flatten)]
        acceptance: Acceptance,
    },
    /// The tenant's packs, earliest expiry first, with the units used.
    Packs(Target),
    /// Runs the daily overdue job for one billing day (once per tenant and day).
    Settle {
        #[command(flatten)]
        target: Target,
        /// The billing day (YYYY-MM-DD); default today.
        #[arg(long)]
        date: Option<Date>,
    },
}

#[derive(Args)]
pub struct TerminateArgs {
    #[command(flatten)]
    pub target: Target,
    #[arg(value_parser = ["mutual", "breach", "operator", "feature-removal"])]
    pub kind: String,
    /// The agreement, ticket or change record this rests on.
    #[arg(long)]
    pub reference: String,
    /// Mutual: the agreed end instant (default now); operator: the effective 00:00.
    #[arg(long)]
    pub effective: Option<Timestamp>,
    /// Mutual: the agreed cash refund (at most what was paid for unused terms).
    #[arg(long)]
    pub refund: Option<String>,
    /// Mutual: the reference of the owner's confirmation.
    #[arg(long)]
    pub owner_confirmation: Option<String>,
    /// Breach: unlawful_content, attacks, fraud, sanctions or other.
    #[arg(long)]
    pub category: Option<String>,
    /// Breach: evidence references (repeatable).
    #[arg(long)]
    pub evidence: Vec<String>,
    /// Breach: the staff member proposing and the one approving (two people).
    #[arg(long)]
    pub proposer: Option<String>,
    #[arg(long)]
    pub approver: Option<String>,
    /// Feature removal: when the change that removed the feature took effect.
    #[arg(long)]
    pub removed_at: Option<Timestamp>,
    /// Breach: block the tenant's export, on this legal basis (e.g. the content itself is
    /// unlawful). Without it the export stays allowed through the buffer (SVC-232).
    #[arg(long)]
    pub block_export: Option<String>,
}

#[derive(Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub common: Common,
    /// The tenant's account id.
    #[arg(long, required_unless_present = "due", conflicts_with = "due")]
    pub account: Option<i64>,
    /// Purge every SaaS tenant whose purge date has passed (run it from a daily timer).
    #[arg(long)]
    pub due: bool,
    /// Confirms an irreversible purge.
    #[arg(long)]
    pub yes: bool,
    /// Why, for the certificate (default: the trigger).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who does this, for the audit trail and the certificate (default: `cli:$USER`).
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Subcommand)]
pub enum LicenceCommand {
    /// Buys licences, paid from the balance at once (bonus, then cash). Without a prepaid
    /// term in force it starts one now (SVC-101); with one it adds licences to it, priced
    /// pro rata and ending with it (SVC-061).
    Buy {
        #[command(flatten)]
        target: Target,
        /// How many licences.
        #[arg(long)]
        quantity: u32,
        /// `standard` or `pro`; default the term in force's edition, else the tenant's.
        #[arg(long)]
        edition: Option<String>,
        /// Length of a new term in months: 1 or 12 (ignored for an add-on).
        #[arg(long, default_value_t = 1)]
        months: i32,
        #[command(flatten)]
        acceptance: Acceptance,
    },
    /// The pool, the holders, the cycle's active users and the licence orders.
    List(Target),
    /// Assigns a member a fixed licence (until the term ends), or a temporary one with
    /// `--temporary` (until the licence cycle ends) (SVC-054/055).
    Assign {
        #[command(flatten)]
        target: Target,
        /// The member's id.
        #[arg(long)]
        member: i64,
        #[arg(long)]
        temporary: bool,
    },
    /// Frees a member's licence at once (SVC-054).
    Release {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        member: i64,
    },
}

struct Ctx {
    store: Store,
    settings: SaasSettings,
    account: i64,
    actor: String,
    now: i64,
}

async fn open(t: &Target) -> anyhow::Result<Ctx> {
    let config = t.common.load()?;
    let Some(settings) = config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?
    else {
        bail!(
            "tenant billing does not exist in self-hosted mode (set deployment.mode = \"saas\"; see docs/saas.md)"
        );
    };
    let store = klaxon_server::open_store(&config).await?;
    let real_now = Timestamp::now();
    let at = t.at.unwrap_or(real_now);
    if at > real_now {
        bail!("--at {at} is in the future");
    }
    let actor = t.actor.clone().unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        )
    });
    if actor.trim().is_empty() {
        bail!("--actor must not be empty");
    }
    Ok(Ctx {
        store,
        settings,
        account: t.account,
        actor,
        now: at.as_millisecond(),
    })
}

fn print(t: &TenantBilling) {
    let c = t.currency;
    let l = t.book.ledger();
    println!("account:        {}", t.account_id);
    println!("region:         {}", t.region);
    println!("edition:        {}", t.edition);
    println!(
        "profile:        {}",
        match t.profile {
            klaxon_saas::mode::BillingProfile::Commercial => "commercial",
            klaxon_saas::mode::BillingProfile::Exempt => "exempt",
        }
    );
    println!("state:          {} (since {})", t.state, t.since);
    if let Some(p) = t.purge_at {
        println!("purge date:     {p}");
    }
    println!("cash:           {} {}", c.format(l.cash()), c.code);
    println!("bonus:          {} {}", c.format(l.bonus_total()), c.code);
    println!(
        "principal owed: {} {}",
        c.format(l.debt_principal()),
        c.code
    );
    println!("penalty posted: {} {}", c.format(l.debt_penalty()), c.code);
    println!("payable total:  {} {}", c.format(t.payable_total), c.code);
    for i in t.book.items() {
        println!(
            "overdue item {}: {} due {}, unpaid {} {}",
            i.id,
            i.origin,
            i.due_date,
            c.format(i.unpaid_principal()),
            c.code
        );
    }
    println!("ledger entries: {}", l.entries().len());
}

pub async fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    let cmd = match cmd {
        AdminCommand::Tenant(cmd) => cmd,
        AdminCommand::Ticket(cmd) => return crate::support::run(cmd).await,
        AdminCommand::Documents(cmd) => return crate::documents::run(cmd).await,
        AdminCommand::Providers(cmd) => return crate::providers::run(cmd).await,
        AdminCommand::VerifyCertificate { file, public_key } => {
            return verify_certificate(&file, public_key.as_deref());
        }
        AdminCommand::SigningKey { common, rotate } => return signing_key(&common, rotate).await,
        AdminCommand::Staff(cmd) => return crate::staff::staff(cmd).await,
        AdminCommand::LawfulRequest(cmd) => return crate::staff::lawful_request(cmd).await,
        AdminCommand::Sla(cmd) => return crate::sla::run(cmd).await,
        AdminCommand::LegalHold(cmd) => return crate::governance::hold(cmd).await,
        AdminCommand::SecurityIncident(cmd) => return crate::governance::incident(cmd).await,
        AdminCommand::Closure(cmd) => return crate::governance::closure(cmd).await,
        AdminCommand::Ownership(cmd) => return crate::governance::ownership(cmd).await,
    };
    match cmd {
        TenantCommand::Purge(args) => crate::purge::purge(args).await?,
        TenantCommand::Import(args) => crate::transfer::import(args).await?,
        TenantCommand::TransferComplete(args) => crate::transfer::complete(args).await?,
        TenantCommand::Certificates { common, account } => {
            crate::purge::certificates(&common, account).await?
        }
        TenantCommand::Show(t) => {
            let ctx = open(&t).await?;
            match ctx
                .store
                .saas_tenant(&ctx.settings, ctx.account, ctx.now)
                .await?
            {
                Some(b) => {
                    print(&b);
                    let s = ctx.store.saas_billing_settings(ctx.account).await?;
                    println!(
                        "auto-renew:     {}",
                        if s.auto_renew { "on" } else { "off" }
                    );
                    match s.balance_alert {
                        Some(t) => println!(
                            "balance alert:  below {} {}",
                            b.currency.format(t),
                            b.currency.code
                        ),
                        None => println!("balance alert:  off"),
                    }
                }
                None => {
                    if ctx.store.account(ctx.account).await?.is_none() {
                        bail!("unknown account {}", ctx.account);
                    }
                    println!(
                        "account {}: no billing yet (active, empty ledger)",
                        ctx.account
                    );
                }
            }
            ctx.store.close().await;
        }
        TenantCommand::Pay {
            target,
            amount,
            reference,
        } => {
            let ctx = open(&target).await?;
            let amount = parse_decimal("amount", &amount)?;
            let applied = ctx
                .store
                .saas_apply(
                    &ctx.settings,
                    ctx.account,
                    ctx.now,
                    &ctx.actor,
                    "payment",
                    |book, at| {
                        let app = book.receive_cash(at, amount, &reference, &ctx.actor)?;
                        Ok(format!(
                            "cash {amount} ({reference}): principal {}, penalty {}, to balance {}",
                            app.principal, app.penalty, app.to_balance
                        ))
                    },
                )
                .await?;
            report(&ctx, &applied).await?;
        }
        TenantCommand::Bonus {
            target,
            amount,
            reference,
            expires,
        } => {
            let ctx = open(&target).await?;
            let amount = parse_decimal("amount", &amount)?;
            let applied = ctx
                .store
                .saas_apply(
                    &ctx.settings,
                    ctx.account,
                    ctx.now,
                    &ctx.actor,
                    "bonus_grant",
                    |book, at| {
                        let lot = book.grant_bonus(
                            at,
                            amount,
                            BonusSource::OperatorGrant,
                            BonusScope::OrdersAndUsage,
                            expires,
                            &reference,
                            &ctx.actor,
                        )?;
                        Ok(format!("bonus {amount} ({reference}) as lot {lot}"))
                    },
                )
                .await?;
            report(&ctx, &applied).await?;
        }
        TenantCommand::Charge {
            target,
            amount,
            reference,
            kind,
            due,
        } => {
            let ctx = open(&target).await?;
            let amount = parse_decimal("amount", &amount)?;
            let kind = match kind.as_str() {
                "usage" => ChargeKind::Usage,
                "licence_cycle" => ChargeKind::LicenceCycle,
                other => bail!(
                    "--kind {other:?}: only usage and licence_cycle charges are posted here (orders are paid in full, SVC-100)"
                ),
            };
            let applied = ctx
                .store
                .saas_apply(
                    &ctx.settings,
                    ctx.account,
                    ctx.now,
                    &ctx.actor,
                    "charge",
                    |book, at| {
                        let due = due.unwrap_or_else(|| {
                            klaxon_saas::calendar::date_of(at, &ctx.settings.billing_tz)
                        });
                        let out =
                            book.charge(at, kind, amount, true, due, &reference, &ctx.actor)?;
                        Ok(format!(
                            "charge {amount} ({reference}): bonus {}, cash {}, overdue {}",
                            out.bonus_paid,
                            out.cash_paid,
                            out.overdue.map_or("none".to_string(), |(id, a)| format!(
                                "item {id} of {a} due {due}"
                            ))
                        ))
                    },
                )
                .await?;
            report(&ctx, &applied).await?;
        }
        TenantCommand::Licence(cmd) => licence(cmd).await?,
        TenantCommand::Renew {
            target,
            months,
            quantity,
            edition,
            acceptance,
        } => {
            let config = target.common.load()?;
            let prices = config
                .deployment
                .licence_price_list()
                .map_err(anyhow::Error::msg)?;
            let ctx = open(&target).await?;
            let (order, applied) = ctx
                .store
                .saas_renew(
                    &ctx.settings,
                    &prices,
                    ctx.account,
                    &klaxon_store::Renew {
                        months,
                        quantity,
                        edition,
                        acceptance: acceptance.record(),
                    },
                    ctx.now,
                    &ctx.actor,
                )
                .await?;
            println!(
                "renewal order {}: {} {} licences, paid {} {}, term {} .. {}",
                order.order_id,
                order.quantity,
                order.edition,
                ctx.settings.currency.format(order.total),
                ctx.settings.currency.code,
                order.starts_at,
                order.ends_at
            );
            report(&ctx, &applied).await?;
        }
        TenantCommand::AutoRenew { target, value } => {
            let ctx = open(&target).await?;
            let on = value == "on";
            ctx.store
                .saas_set_auto_renew(&ctx.settings, ctx.account, on, ctx.now, &ctx.actor)
                .await?;
            println!("account {}: auto-renew {value}", ctx.account);
            ctx.store.close().await;
        }
        TenantCommand::BalanceAlert {
            target,
            threshold,
            off,
        } => {
            let ctx = open(&target).await?;
            let threshold = match (off, threshold) {
                (true, _) => None,
                (false, Some(t)) => Some(parse_decimal("threshold", &t)?),
                (false, None) => bail!("--threshold or --off is required"),
            };
            ctx.store
                .saas_set_balance_alert(&ctx.settings, ctx.account, threshold, ctx.now, &ctx.actor)
                .await?;
            match threshold {
                Some(t) => println!(
                    "account {}: balance alert below {} {}",
                    ctx.account,
                    ctx.settings.currency.format(t),
                    ctx.settings.currency.code
                ),
                None => println!("account {}: balance alert off", ctx.account),
            }
            ctx.store.close().await;
        }
        TenantCommand::BillingRun { common, at } => {
            let config = common.load()?;
            let Some(settings) = config
                .deployment
                .saas_settings()
                .map_err(anyhow::Error::msg)?
            else {
                bail!("the billing job exists in SaaS mode only (see docs/saas.md)");
            };
            let prices = config.deployment.licence_price_list().ok();
            let real_now = Timestamp::now();
            let at = at.unwrap_or(real_now);
            if at > real_now {
                bail!("--at {at} is in the future");
            }
            let store = klaxon_server::open_store(&config).await?;
            let mut done = store
                .saas_billing_due(&settings, prices.as_ref(), at.as_millisecond())
                .await?;
            // SVC-231/233: scheduled terminations whose instant has come.
            done.extend(
                store
                    .saas_terminations_due(&settings, at.as_millisecond())
                    .await?,
            );
            if done.is_empty() {
                println!("nothing due at {at}");
            }
            for (account, what) in done {
                println!("account {account}: {what}");
            }
            store.close().await;
        }
        TenantCommand::Postpaid { target, acceptance } => {
            let config = target.common.load()?;
            let prices = config
                .deployment
                .licence_price_list()
                .map_err(anyhow::Error::msg)?;
            let ctx = open(&target).await?;
            let from = ctx
                .store
                .saas_enable_postpaid(
                    &ctx.settings,
                    &prices,
                    ctx.account,
                    acceptance.record().as_ref(),
                    ctx.now,
                    &ctx.actor,
                )
                .await?;
            println!("account {}: postpaid from {from}", ctx.account);
            ctx.store.close().await;
        }
        TenantCommand::Profile {
            target,
            profile,
            reason,
            acceptance,
            start_trial,
        } => {
            let ctx = open(&target).await?;
            let p = if profile == "exempt" {
                klaxon_saas::mode::BillingProfile::Exempt
            } else {
                klaxon_saas::mode::BillingProfile::Commercial
            };
            ctx.store
                .saas_set_profile(
                    &ctx.settings,
                    ctx.account,
                    p,
                    &reason,
                    acceptance.record().as_ref(),
                    start_trial,
                    ctx.now,
                    &ctx.actor,
                )
                .await?;
            println!(
                "account {}: profile {profile}{}",
                ctx.account,
                if start_trial { ", trial started" } else { "" }
            );
            ctx.store.close().await;
        }
        TenantCommand::OrderAcceptances(target) => {
            let ctx = open(&target).await?;
            for a in ctx.store.saas_order_acceptances(ctx.account).await? {
                println!(
                    "{} {} {}: {} {} (sha256 {}) accepted by {} ({}) at {} from {} [{}]",
                    a.order_acceptance_id,
                    a.order_kind,
                    a.order_ref,
                    a.doc_type,
                    a.version,
                    a.content_sha256,
                    a.login,
                    a.role,
                    Timestamp::from_millisecond(a.accepted_at)?,
                    a.client_ip,
                    a.client_type
                );
            }
            ctx.store.close().await;
        }
        TenantCommand::Transfer {
            target,
            purpose,
            to_region,
            lawful_request,
            out,
        } => {
            let ctx = open(&target).await?;
            let req = klaxon_store::TransferRequest {
                account_id: ctx.account,
                purpose,
                destination_region: to_region,
                lawful_request_id: lawful_request.unwrap_or(0),
            };
            let region = ctx.settings.region.clone();
            // Checked before the package is built, and again when it is recorded.
            ctx.store.saas_authorise_transfer(&region, &req).await?;
            let tables = ctx.store.export_snapshot(ctx.account).await?;
            let archive = klaxon_server::build_archive(
                &tables,
                &klaxon_server::ArchiveMeta {
                    account_id: ctx.account,
                    export_id: 0,
                    exported_at: ctx.now,
                    transfer: Some(klaxon_server::TransferRegions {
                        source_region: region.clone(),
                        destination_region: req.destination_region.clone(),
                    }),
                },
            )?;
            let rec = ctx
                .store
                .saas_record_transfer(&region, &req, &archive.sha256, &ctx.actor, ctx.now)
                .await?;
            std::fs::write(&out, &archive.bytes)
                .with_context(|| format!("writing the package to {}", out.display()))?;
            println!(
                "transfer {}: {} to {} under {}, package {} (sha256 {})",
                rec.transfer_id,
                rec.purpose,
                rec.destination_region,
                if rec.consent_id != 0 {
                    format!("consent {}", rec.consent_id)
                } else {
                    format!("lawful request {}", rec.lawful_request_id)
                },
                out.display(),
                rec.package_sha256
            );
            ctx.store.close().await;
        }
        TenantCommand::Transfers(target) => {
            let ctx = open(&target).await?;
            for c in ctx.store.saas_transfer_consents(ctx.account).await? {
                println!(
                    "consent {}: {} to {} of {} by {} at {}{}",
                    c.consent_id,
                    c.purpose,
                    c.destination_region,
                    c.categories.join(", "),
                    c.given_by_login,
                    Timestamp::from_millisecond(c.given_at)?,
                    if c.revoked_at == 0 {
                        String::new()
                    } else {
                        format!(
                            ", revoked at {}",
                            Timestamp::from_millisecond(c.revoked_at)?
                        )
                    }
                );
            }
            for t in ctx.store.saas_transfers(ctx.account).await? {
                println!(
                    "transfer {}: {} to {} at {} by {} (consent {}, lawful request {}), sha256 {}",
                    t.transfer_id,
                    t.purpose,
                    t.destination_region,
                    Timestamp::from_millisecond(t.at)?,
                    t.actor,
                    t.consent_id,
                    t.lawful_request_id,
                    t.package_sha256
                );
                if t.completed_at != 0 {
                    println!(
                        "  completed at {} by {}: account {} in {}",
                        Timestamp::from_millisecond(t.completed_at)?,
                        t.completed_by,
                        t.destination_account_id,
                        t.destination_region
                    );
                }
            }
            ctx.store.close().await;
        }
        TenantCommand::LiftExportBlock {
            target,
            reason,
            reference,
            proposer,
            approver,
        } => {
            let ctx = open(&target).await?;
            let rec = ctx
                .store
                .saas_lift_export_block(
                    &ctx.settings,
                    ctx.account,
                    &klaxon_store::LiftExportBlock {
                        reason,
                        reference,
                        proposer,
                        approver,
                    },
                    ctx.now,
                    &ctx.actor,
                )
                .await?;
            println!(
                "account {}: export block lifted (lift {}; was: {})",
                ctx.account, rec.lift_id, rec.basis
            );
            ctx.store.close().await;
        }
        TenantCommand::Statements(target) => {
            let ctx = open(&target).await?;
            let c = ctx.settings.currency;
            for st in ctx
                .store
                .saas_statements(&ctx.settings, ctx.account)
                .await?
            {
                let s = &st.statement;
                println!(
                    "cycle {} .. {} (settled {}): active {}, charges {}, cash received {}, bonus used {}, new overdue {}, penalties {}, refunds {}, closing cash {}, closing debt {} {}",
                    st.cycle.0,
                    st.cycle.1,
                    st.settled_at,
                    st.active_members,
                    c.format(s.charges),
                    c.format(s.cash_received),
                    c.format(s.bonus_used),
                    c.format(s.new_overdue),
                    c.format(s.penalties_posted),
                    c.format(s.refunds),
                    c.format(s.closing_cash),
                    c.format(s.closing_debt),
                    c.code
                );
            }
            ctx.store.close().await;
        }
        TenantCommand::Usage { target, date } => {
            let config = target.common.load()?;
            let plan = config
                .deployment
                .communication_plan()
                .map_err(anyhow::Error::msg)?;
            let ctx = open(&target).await?;
            let day = date.unwrap_or_else(|| {
                klaxon_saas::calendar::date_of(
                    Timestamp::from_millisecond(ctx.now).unwrap_or(Timestamp::UNIX_EPOCH),
                    &ctx.settings.billing_tz,
                )
            });
            let run = ctx
                .store
                .saas_settle_usage(&ctx.settings, &plan, ctx.account, day, ctx.now)
                .await?;
            if run.ran_now {
                println!("{day}: {}", run.outcome);
            } else {
                println!("{day}: already run ({})", run.outcome);
            }
            ctx.store.close().await;
        }
        TenantCommand::Terminate(args) => {
            let TerminateArgs {
                target,
                kind,
                reference,
                effective,
                refund,
                owner_confirmation,
                category,
                evidence,
                proposer,
                approver,
                removed_at,
                block_export,
            } = *args;
            let Some(kind) = TerminationKind::parse(&kind) else {
                bail!("unknown termination kind {kind:?}");
            };
            let ctx = open(&target).await?;
            let mut evidence = evidence;
            if kind == TerminationKind::Mutual {
                if !evidence.is_empty() {
                    bail!(
                        "--evidence belongs to a termination for breach; a mutual one takes --owner-confirmation"
                    );
                }
                evidence.extend(owner_confirmation);
            } else if owner_confirmation.is_some() {
                bail!("--owner-confirmation belongs to a mutual termination");
            }
            let new = NewTermination {
                kind,
                effective_at: effective.map(|t| t.as_millisecond()),
                reference,
                category: category.unwrap_or_default(),
                evidence,
                proposer: proposer.unwrap_or_default(),
                approver: approver.unwrap_or_default(),
                agreed_refund: refund.map(|r| parse_decimal("refund", &r)).transpose()?,
                removed_at: removed_at.map(|t| t.as_millisecond()),
                delete_early: false,
                export_block_basis: block_export.unwrap_or_default(),
            };
            let rec = ctx
                .store
                .saas_terminate(&ctx.settings, ctx.account, &new, ctx.now, &ctx.actor)
                .await?;
            print_termination(&rec);
            ctx.store.close().await;
        }
        TenantCommand::Release {
            target,
            reference,
            delete,
        } => {
            let ctx = open(&target).await?;
            let new = NewTermination {
                kind: TerminationKind::Cancel,
                effective_at: None,
                reference,
                category: String::new(),
                evidence: Vec::new(),
                proposer: String::new(),
                approver: String::new(),
                agreed_refund: None,
                removed_at: None,
                delete_early: delete,
                export_block_basis: String::new(),
            };
            let rec = ctx
                .store
                .saas_terminate(&ctx.settings, ctx.account, &new, ctx.now, &ctx.actor)
                .await?;
            print_termination(&rec);
            ctx.store.close().await;
        }
        TenantCommand::BuyPack {
            target,
            unit,
            units,
            acceptance,
        } => {
            let config = target.common.load()?;
            let plan = config
                .deployment
                .communication_plan()
                .map_err(anyhow::Error::msg)?;
            let ctx = open(&target).await?;
            let unit = match unit.as_str() {
                "sms" => klaxon_saas::quota::UnitType::Sms,
                "voice" => klaxon_saas::quota::UnitType::Voice,
                _ => klaxon_saas::quota::UnitType::Email,
            };
            let (pack, applied) = ctx
                .store
                .saas_buy_pack(
                    &ctx.settings,
                    &plan,
                    config.deployment.documents.price_list.trim(),
                    ctx.account,
                    unit,
                    units,
                    acceptance.record().as_ref(),
                    ctx.now,
                    &ctx.actor,
                )
                .await?;
            println!(
                "pack {}: {} units until {}",
                pack.pack_id, pack.units, pack.expires_at
            );
            report(&ctx, &applied).await?;
        }
        TenantCommand::Packs(target) => {
            let ctx = open(&target).await?;
            let c = ctx.settings.currency;
            for p in ctx.store.saas_packs(ctx.account).await? {
                println!(
                    "pack {}: {} {:?}, used {}, bought {}, expires {}, {} {}",
                    p.pack_id,
                    p.units,
                    p.unit,
                    p.used,
                    p.bought_at,
                    p.expires_at,
                    c.format(p.price),
                    c.code
                );
            }
            ctx.store.close().await;
        }
        TenantCommand::Terminations(target) => {
            let ctx = open(&target).await?;
            for rec in ctx.store.saas_terminations(ctx.account).await? {
                print_termination(&rec);
            }
            ctx.store.close().await;
        }
        TenantCommand::Settle { target, date } => {
            let ctx = open(&target).await?;
            let day = date.unwrap_or_else(|| {
                klaxon_saas::calendar::date_of(
                    Timestamp::from_millisecond(ctx.now).unwrap_or(Timestamp::UNIX_EPOCH),
                    &ctx.settings.billing_tz,
                )
            });
            let run = ctx
                .store
                .saas_settle(&ctx.settings, ctx.account, day, ctx.now, &ctx.actor)
                .await?;
            if run.ran_now {
                println!("{day}: {}", run.outcome);
            } else {
                println!("{day}: already run ({})", run.outcome);
            }
            ctx.store.close().await;
        }
    }
    Ok(())
}

fn print_termination(rec: &TerminationRecord) {
    let at = |ms: i64| {
        Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
    };
    println!(
        "termination {} ({}): {}, effective {}, reference {}",
        rec.termination_id,
        rec.kind.as_str(),
        rec.state,
        at(rec.effective_at),
        rec.reference
    );
    if !rec.outcome.is_empty() {
        println!("  {}", rec.outcome);
    }
}

async fn report(ctx: &Ctx, applied: &klaxon_store::Applied<String>) -> anyhow::Result<()> {
    println!("{}", applied.value);
    for c in &applied.changes {
        println!("state: {} -> {} at {} ({})", c.from, c.to, c.at, c.rule);
    }
    let b = ctx
        .store
        .saas_tenant(&ctx.settings, ctx.account, ctx.now)
        .await
        .context("reading the tenant back")?;
    if let Some(b) = b {
        print(&b);
    }
    ctx.store.close().await;
    Ok(())
}

fn kind_text(k: klaxon_saas::licence::Kind) -> &'static str {
    match k {
        klaxon_saas::licence::Kind::Fixed => "fixed",
        klaxon_saas::licence::Kind::Temporary => "temporary",
    }
}

async fn print_licences(ctx: &Ctx) -> anyhow::Result<()> {
    let v = ctx
        .store
        .saas_licences(&ctx.settings, ctx.account, ctx.now)
        .await?;
    println!("account:        {}", ctx.account);
    println!("state:          {}", v.state);
    if !v.enforced {
        println!("licences:       not enforced (exempt tenant: every member is licensed)");
        return Ok(());
    }
    println!("edition:        {}", v.edition);
    match v.term {
        Some((s, e)) => println!("term:           {s} .. {e}"),
        None => println!("term:           none in force"),
    }
    if let Some((s, e)) = v.cycle {
        println!("cycle:          {s} .. {e}");
    }
    match v.size {
        Some(size) => println!(
            "pool:           {} (in use {}, free {})",
            size,
            v.in_use,
            v.free().unwrap_or(0)
        ),
        None => println!("pool:           unlimited (postpaid, in use {})", v.in_use),
    }
    for h in &v.holders {
        println!(
            "holder:         member {} {} since {} until {}",
            h.member_id,
            kind_text(h.kind),
            h.held_from,
            h.held_until
        );
    }
    for a in &v.active {
        match a.first_licensed_action {
            Some(t) => println!(
                "active:         member {} first licensed action {t}",
                a.member_id
            ),
            None => println!(
                "active:         member {} (held, no action yet)",
                a.member_id
            ),
        }
    }
    for o in &v.orders {
        println!(
            "order {}:        {} {} x{} {} {} paid {} ({} .. {})",
            o.order_id,
            o.kind,
            o.edition,
            o.quantity,
            ctx.settings.currency.format(o.total),
            ctx.settings.currency.code,
            o.paid_at,
            o.starts_at,
            o.ends_at
        );
    }
    Ok(())
}

async fn licence(cmd: LicenceCommand) -> anyhow::Result<()> {
    match cmd {
        LicenceCommand::Buy {
            target,
            quantity,
            edition,
            months,
            acceptance,
        } => {
            let config = target.common.load()?;
            let prices = config
                .deployment
                .licence_price_list()
                .map_err(anyhow::Error::msg)?;
            let ctx = open(&target).await?;
            let (order, applied) = ctx
                .store
                .saas_buy_licences(
                    &ctx.settings,
                    &prices,
                    ctx.account,
                    &klaxon_store::BuyLicences {
                        edition,
                        quantity,
                        months,
                        acceptance: acceptance.record(),
                    },
                    ctx.now,
                    &ctx.actor,
                )
                .await?;
            println!(
                "licence order {}: {} {} {} licences, paid {} {}, until {}",
                order.order_id,
                order.kind,
                order.quantity,
                order.edition,
                ctx.settings.currency.format(order.total),
                ctx.settings.currency.code,
                order.ends_at
            );
            for c in &applied.changes {
                println!("state: {} -> {} at {} ({})", c.from, c.to, c.at, c.rule);
            }
            print_licences(&ctx).await?;
            ctx.store.close().await;
        }
        LicenceCommand::List(target) => {
            let ctx = open(&target).await?;
            print_licences(&ctx).await?;
            ctx.store.close().await;
        }
        LicenceCommand::Assign {
            target,
            member,
            temporary,
        } => {
            let ctx = open(&target).await?;
            let kind = if temporary {
                klaxon_saas::licence::Kind::Temporary
            } else {
                klaxon_saas::licence::Kind::Fixed
            };
            let h = ctx
                .store
                .saas_assign_licence(
                    &ctx.settings,
                    ctx.account,
                    member,
                    kind,
                    ctx.now,
                    &ctx.actor,
                )
                .await?;
            println!(
                "member {}: {} licence until {}",
                h.member_id,
                kind_text(h.kind),
                h.held_until
            );
            print_licences(&ctx).await?;
            ctx.store.close().await;
        }
        LicenceCommand::Release { target, member } => {
            let ctx = open(&target).await?;
            let freed = ctx
                .store
                .saas_release_licence(&ctx.settings, ctx.account, member, ctx.now, &ctx.actor)
                .await?;
            if !freed {
                ctx.store.close().await;
                bail!(
                    "member {member} holds no licence of account {}",
                    ctx.account
                );
            }
            println!("member {member}: licence freed");
            print_licences(&ctx).await?;
            ctx.store.close().await;
        }
    }
    Ok(())
}

/// `klaxon admin verify-certificate`: needs neither the database nor the configuration.
fn verify_certificate(file: &std::path::Path, public_key: Option<&str>) -> anyhow::Result<()> {
    use klaxon_server::backup::CertificateCheck;
    let body =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match klaxon_server::backup::check_certificate(&body, public_key) {
        CertificateCheck::Valid {
            key_id,
            public_key: key,
        } => {
            println!("valid: digest matches, signed by key {key_id}");
            if public_key.is_none() {
                println!(
                    "checked against the key the certificate names ({key}): compare it with the operator's published key, or pass --public-key"
                );
            }
            Ok(())
        }
        CertificateCheck::Altered => {
            bail!("INVALID: the certificate's contents do not match its digest (it was altered)")
        }
        CertificateCheck::Unsigned => {
            bail!("UNSIGNED: the digest matches but the certificate carries no signature")
        }
        CertificateCheck::BadSignature { key_id } => bail!(
            "INVALID: the signature (key {key_id}) does not verify under {}",
            if public_key.is_some() {
                "the given public key"
            } else {
                "the key it names"
            }
        ),
    }
}

/// `klaxon admin signing-key [--rotate]`: the operator's public key(s), for publishing.
async fn signing_key(common: &Common, rotate: bool) -> anyhow::Result<()> {
    let config = common.load()?;
    if config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?
        .is_none()
    {
        bail!("the operator signing key exists in SaaS mode only (deployment.mode = \"saas\")");
    }
    let Some(kek) = config.deployment.kek().map_err(anyhow::Error::msg)? else {
        bail!("deployment.key_encryption_key is required to keep the signing key");
    };
    let store = klaxon_server::open_store(&config).await?;
    let result = async {
        let now = Timestamp::now().as_millisecond();
        if rotate {
            let signer = store.rotate_operator_signer(&kek, now).await?;
            eprintln!(
                "signing key {} now signs; the previous key is retired and stays published",
                signer.key_id
            );
        } else {
            store.operator_signer(&kek, now).await?;
        }
        for k in store.operator_signing_keys().await? {
            println!(
                "{} {} {} created {}{}",
                k.key_id,
                klaxon_store::signing::ALGORITHM,
                k.public_key,
                Timestamp::from_millisecond(k.created_at)?,
                if k.retired_at == 0 { "" } else { " (retired)" }
            );
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}
