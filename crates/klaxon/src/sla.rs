//! `klaxon admin sla …`: the operator's SLA tools (SaaS mode, service-agreement.md §18,
//! docs/sla.md): a tenant's monthly report, exclusions and maintenance windows (SVC-276,
//! SVC-239), unreachable periods (SVC-273), and the review of compensation claims
//! (SVC-281). Every change is written to the tenant's audit trail with `--actor`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use klaxon_saas::calendar::WorkingDays;
use klaxon_saas::sla::ExclusionCategory;
use klaxon_store::{SaasSettings, SlaClaim, Store};

use crate::Common;

#[derive(Subcommand)]
pub enum SlaCommand {
    /// A tenant's SLA figures for a month: failed and excluded cycles, F(M), C(M).
    Report {
        #[command(flatten)]
        op: Op,
        #[arg(long)]
        account: i64,
        /// The month, e.g. 2025-03.
        #[arg(long)]
        month: String,
    },
    /// Exclusions and maintenance windows (SVC-276, SVC-239).
    #[command(subcommand)]
    Exclusion(ExclusionCommand),
    /// Periods when the API was unreachable because of the operator (SVC-273).
    #[command(subcommand)]
    Unreachable(UnreachableCommand),
    /// Compensation claims (SVC-281).
    #[command(subcommand)]
    Claim(ClaimCommand),
}

/// Options every command shares: configuration, who acts and when.
#[derive(Args)]
pub struct Op {
    #[command(flatten)]
    pub common: Common,
    /// Who does this, for the audit trail (default: `cli:$USER`).
    #[arg(long)]
    pub actor: Option<String>,
    /// The instant the action is recorded at (RFC 3339); default now, never in the future.
    #[arg(long)]
    pub at: Option<Timestamp>,
}

/// Which tenants a record applies to: one, or the whole region of this deployment.
#[derive(Args)]
pub struct Scope {
    /// The tenant's account id.
    #[arg(long, conflicts_with = "region", required_unless_present = "region")]
    pub account: Option<i64>,
    /// Every tenant of this deployment's region.
    #[arg(long)]
    pub region: bool,
}

impl Scope {
    fn account_id(&self) -> i64 {
        self.account.unwrap_or(0)
    }
}

#[derive(Subcommand)]
pub enum ExclusionCommand {
    /// Records an exclusion; category `announced_maintenance` needs `--published`.
    Add {
        #[command(flatten)]
        op: Op,
        #[command(flatten)]
        scope: Scope,
        /// announced_maintenance, external_network, attack_on_tenant,
        /// tenant_credential_loss, tenant_negligence, not_following_documentation,
        /// carrier_or_handset or force_majeure.
        #[arg(long)]
        category: String,
        #[arg(long)]
        start: Timestamp,
        #[arg(long)]
        end: Timestamp,
        /// When a maintenance window was announced (it excludes only if ≥ 48 h ahead).
        #[arg(long)]
        published: Option<Timestamp>,
        /// What shows it (ticket, incident report, announcement); the tenant sees it.
        #[arg(long)]
        evidence: String,
    },
    /// The exclusions that apply to a tenant in a month.
    List {
        #[command(flatten)]
        op: Op,
        #[arg(long)]
        account: i64,
        #[arg(long)]
        month: String,
    },
}

#[derive(Subcommand)]
pub enum UnreachableCommand {
    /// Records an unreachable period (from probes and edge logs).
    Add {
        #[command(flatten)]
        op: Op,
        #[command(flatten)]
        scope: Scope,
        #[arg(long)]
        start: Timestamp,
        #[arg(long)]
        end: Timestamp,
        #[arg(long)]
        evidence: String,
    },
}

#[derive(Subcommand)]
pub enum ClaimCommand {
    /// Claims, newest first (only open ones with `--open`).
    List {
        #[command(flatten)]
        op: Op,
        #[arg(long)]
        account: Option<i64>,
        #[arg(long)]
        open: bool,
    },
    /// Approves a claim: recomputes C(M) with the exclusions recorded so far and posts it
    /// as a bonus lot of source `sla_compensation` (SVC-279).
    Approve {
        #[command(flatten)]
        op: Op,
        #[arg(long)]
        claim: i64,
    },
    /// Rejects a claim with the reason the tenant will see.
    Reject {
        #[command(flatten)]
        op: Op,
        #[arg(long)]
        claim: i64,
        #[arg(long)]
        reason: String,
    },
}

struct Ctx {
    settings: SaasSettings,
    calendar: WorkingDays,
    store: Store,
    actor: String,
    now: i64,
}

async fn open(op: &Op) -> anyhow::Result<Ctx> {
    let config = op.common.load()?;
    let Some(settings) = config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?
    else {
        bail!(
            "the SLA does not exist in self-hosted mode (set deployment.mode = \"saas\"; see docs/sla.md)"
        );
    };
    let calendar = config
        .deployment
        .working_days()
        .map_err(anyhow::Error::msg)?;
    let real_now = Timestamp::now();
    let at = op.at.unwrap_or(real_now);
    if at > real_now {
        bail!("--at {at} is in the future");
    }
    let actor = op.actor.clone().unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        )
    });
    if actor.trim().is_empty() {
        bail!("--actor must not be empty");
    }
    let store = klaxon_server::open_store(&config).await?;
    Ok(Ctx {
        settings,
        calendar,
        store,
        actor,
        now: at.as_millisecond(),
    })
}

fn month(text: &str) -> anyhow::Result<jiff::civil::Date> {
    klaxon_server::sla::parse_month(text).map_err(|e| anyhow::anyhow!("--month: {e}"))
}

fn show_time(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn print_claim(c: &SlaClaim, currency: klaxon_saas::money::Currency) {
    println!(
        "claim {} account {} month {} attempt {}: {} (submitted {} by {}), {} failed minutes, fee {} {}, compensation {} {}",
        c.claim_id,
        c.account_id,
        c.month,
        c.attempt,
        c.status,
        show_time(c.submitted_at),
        c.submitted_by,
        c.failed_minutes,
        currency.format(c.fee),
        currency.code,
        currency.format(c.amount),
        currency.code,
    );
    if c.decided_at != 0 {
        let what = match c.granted {
            Some(g) => format!(
                "granted {} {} as bonus lot {}",
                currency.format(g),
                currency.code,
                c.lot_id
            ),
            None => format!("reason: {}", c.reason),
        };
        println!(
            "  decided {} by {}: {what}",
            show_time(c.decided_at),
            c.decided_by
        );
    }
}

pub async fn run(cmd: SlaCommand) -> anyhow::Result<()> {
    match cmd {
        SlaCommand::Report {
            op,
            account,
            month: m,
        } => {
            let ctx = open(&op).await?;
            let m = month(&m)?;
            let r = klaxon_server::sla::month_report(
                &ctx.store,
                &ctx.settings,
                &ctx.calendar,
                account,
                m,
                ctx.now,
            )
            .await?;
            let c = r.currency;
            println!("account:        {account}");
            println!("month:          {}", &m.to_string()[..7]);
            println!(
                "covered:        {}",
                if r.covered { "yes" } else { "no (SVC-270)" }
            );
            println!(
                "status:         {}",
                match r.status {
                    klaxon_saas::sla::ReportStatus::Provisional => "provisional",
                    klaxon_saas::sla::ReportStatus::Final => "final",
                }
            );
            println!("claim window:   {} – {}", r.window.0, r.window.1);
            println!("monthly fee:    {} {}", c.format(r.fee), c.code);
            println!("failed minutes: {}", r.failed_minutes);
            println!("compensation:   {} {}", c.format(r.compensation), c.code);
            for s in &r.failed {
                println!(
                    "failed cycle {}: error rate {} ({} of {} requests), delay rate {} ({} of {} incidents)",
                    s.start,
                    s.error_rate.normalize(),
                    s.failed_requests.normalize(),
                    s.valid_requests.normalize(),
                    s.delay_rate.normalize(),
                    s.failed_incidents,
                    s.valid_incidents
                );
            }
            for s in &r.excluded {
                println!(
                    "excluded cycle {}: {}",
                    s.start,
                    s.excluded.map_or("", |x| x.as_str())
                );
            }
            ctx.store.close().await;
        }
        SlaCommand::Exclusion(ExclusionCommand::Add {
            op,
            scope,
            category,
            start,
            end,
            published,
            evidence,
        }) => {
            let ctx = open(&op).await?;
            let cat = ExclusionCategory::parse(&category)?;
            let published_at = match (cat, published) {
                (ExclusionCategory::AnnouncedMaintenance, Some(p)) => p.as_millisecond(),
                (ExclusionCategory::AnnouncedMaintenance, None) => {
                    bail!("--published is required for an announced maintenance window (SVC-239)")
                }
                (_, Some(_)) => bail!("--published applies to announced_maintenance only"),
                (_, None) => 0,
            };
            let x = ctx
                .store
                .sla_add_exclusion(
                    scope.account_id(),
                    cat.as_str(),
                    start.as_millisecond(),
                    end.as_millisecond(),
                    published_at,
                    &evidence,
                    &ctx.actor,
                    ctx.now,
                )
                .await?;
            println!(
                "exclusion {}: {} {} – {} ({})",
                x.exclusion_id,
                x.category,
                start,
                end,
                if x.account_id == 0 {
                    "whole region".to_string()
                } else {
                    format!("account {}", x.account_id)
                }
            );
            ctx.store.close().await;
        }
        SlaCommand::Exclusion(ExclusionCommand::List {
            op,
            account,
            month: m,
        }) => {
            let ctx = open(&op).await?;
            let m = month(&m)?;
            let (m0, m1) = klaxon_saas::sla::month_range(m, &ctx.settings.billing_tz)?;
            let list = ctx
                .store
                .sla_exclusions(account, m0.as_millisecond(), m1.as_millisecond())
                .await?;
            if list.is_empty() {
                println!("no exclusions");
            }
            for x in list {
                println!(
                    "exclusion {}: {} {} – {}{} ({}) by {}: {}",
                    x.exclusion_id,
                    x.category,
                    show_time(x.starts_at),
                    show_time(x.ends_at),
                    if x.published_at != 0 {
                        format!(", published {}", show_time(x.published_at))
                    } else {
                        String::new()
                    },
                    if x.account_id == 0 {
                        "region"
                    } else {
                        "tenant"
                    },
                    x.author,
                    x.evidence
                );
            }
            ctx.store.close().await;
        }
        SlaCommand::Unreachable(UnreachableCommand::Add {
            op,
            scope,
            start,
            end,
            evidence,
        }) => {
            let ctx = open(&op).await?;
            let u = ctx
                .store
                .sla_add_unreachable(
                    scope.account_id(),
                    start.as_millisecond(),
                    end.as_millisecond(),
                    &evidence,
                    &ctx.actor,
                    ctx.now,
                )
                .await?;
            println!("unreachable {}: {start} – {end}", u.unreachable_id);
            ctx.store.close().await;
        }
        SlaCommand::Claim(ClaimCommand::List {
            op,
            account,
            open: only_open,
        }) => {
            let ctx = open(&op).await?;
            let claims = ctx.store.sla_claims(account, only_open).await?;
            if claims.is_empty() {
                println!("no claims");
            }
            for c in &claims {
                print_claim(c, ctx.settings.currency);
            }
            ctx.store.close().await;
        }
        SlaCommand::Claim(ClaimCommand::Approve { op, claim }) => {
            let ctx = open(&op).await?;
            let c = ctx
                .store
                .sla_claim(claim)
                .await?
                .with_context(|| format!("no claim {claim}"))?;
            // SVC-281: exclusions added during the review count, so C(M) is computed again.
            let r = klaxon_server::sla::month_report(
                &ctx.store,
                &ctx.settings,
                &ctx.calendar,
                c.account_id,
                month(&c.month)?,
                ctx.now,
            )
            .await?;
            let (c, applied) = ctx
                .store
                .sla_approve_claim(&ctx.settings, claim, r.compensation, &ctx.actor, ctx.now)
                .await?;
            println!("{}", applied.value);
            print_claim(&c, r.currency);
            ctx.store.close().await;
        }
        SlaCommand::Claim(ClaimCommand::Reject { op, claim, reason }) => {
            let ctx = open(&op).await?;
            let c = ctx
                .store
                .sla_reject_claim(claim, &reason, &ctx.actor, ctx.now)
                .await?;
            print_claim(&c, ctx.settings.currency);
            ctx.store.close().await;
        }
    }
    Ok(())
}
