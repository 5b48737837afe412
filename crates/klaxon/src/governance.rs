//! `klaxon admin legal-hold …` and `klaxon admin security-incident …` (service-agreement.md
//! SVC-192, SVC-194; docs/saas.md "Legal holds" and "Data-security incidents"). SaaS mode
//! only. Staff `legal` place and lift holds; any active staff member records an incident.
//! `klaxon admin closure …` closes a tenant whose owner asked by e-mail (SVC-010). The rules
//! are `klaxon_saas::governance`; the store queues the tenants' notices in the transaction of
//! each change.

use anyhow::bail;
use clap::Subcommand;
use jiff::Timestamp;
use jiff::civil::Date;
use klaxon_saas::governance::{self, AfterLift};
use klaxon_saas::grant::StaffRole;
use klaxon_store::Store;

use crate::Common;
use crate::staff::open;

#[derive(Subcommand)]
pub enum HoldCommand {
    /// Places a legal hold (SVC-192): the tenant cannot delete the held data and no purge
    /// runs while it is in force. The owner is told unless `--notice-forbidden`.
    Place {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: i64,
        /// The staff member (role `legal`) who places it.
        #[arg(long)]
        staff: i64,
        /// The authority and its reference (order, case number).
        #[arg(long)]
        authority_reference: String,
        /// What it holds, comma-separated: all, incidents, configuration, members.
        #[arg(long, default_value = "all")]
        scope: String,
        /// When it takes effect (RFC 3339); default now.
        #[arg(long)]
        start: Option<Timestamp>,
        /// When it is reviewed (YYYY-MM-DD), after the start.
        #[arg(long)]
        review: Date,
        /// The law forbids telling the tenant (SVC-225).
        #[arg(long)]
        notice_forbidden: bool,
    },
    /// Lifts a hold. If the tenant's purge date has passed and no other hold is in force,
    /// the next purge run (`klaxon admin tenant purge --due`) purges it at once.
    Lift {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: i64,
        /// The staff member (role `legal`) who lifts it.
        #[arg(long)]
        staff: i64,
        #[arg(long)]
        reason: String,
    },
    /// Lists the holds, with those whose review date has come marked.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum IncidentCommand {
    /// Records a data-security incident (SVC-194); each affected owner gets a critical
    /// notice at once.
    Record {
        #[command(flatten)]
        common: Common,
        /// The staff member who records it.
        #[arg(long)]
        staff: i64,
        /// Affected tenants, comma-separated account ids.
        #[arg(long, value_delimiter = ',', required = true)]
        accounts: Vec<i64>,
        /// Affected kinds of data, comma-separated (e.g. incidents,attachments).
        #[arg(long, value_delimiter = ',', required = true)]
        data_types: Vec<String>,
        /// Start of the time window (RFC 3339).
        #[arg(long)]
        from: Timestamp,
        /// End of the time window (RFC 3339).
        #[arg(long)]
        to: Timestamp,
        /// The likely impact.
        #[arg(long)]
        impact: String,
        /// What was and will be done.
        #[arg(long)]
        remediation: String,
    },
    /// Lists the incidents with their tenants and notice ids.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum ClosureCommand {
    /// Starts the closure a tenant's owner asked for by mail to the support address
    /// (SVC-010): the ticket must be triaged as `closure`, filed under the tenant and sent
    /// from the owner's contact e-mail address. A confirmation code goes to that address.
    Request {
        #[command(flatten)]
        common: Common,
        /// The support ticket carrying the request.
        #[arg(long)]
        ticket: i64,
        /// Keep the data for the buffer period instead of purging it after the undo window.
        #[arg(long)]
        keep_buffer: bool,
        /// Who does this, for the audit trail (default: `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Confirms a closure with the code the owner sent back: the tenant is released
    /// (`ended(released)`, SVC-186) at once. Five wrong codes void the request.
    Confirm {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        code: String,
        #[arg(long)]
        actor: Option<String>,
    },
    /// Lists the closure requests.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum OwnershipCommand {
    /// Starts a staff-assisted transfer (SVC-004: owner unreachable, succession, entity
    /// change). The owner is told at once; it takes effect 7 days later unless the owner
    /// objects, and the nodes carry it out then.
    Start {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: i64,
        /// The active member who becomes the owner.
        #[arg(long)]
        to_member: i64,
        /// References of the supporting documents.
        #[arg(long)]
        documents: String,
        /// The staff member who starts it.
        #[arg(long)]
        staff: i64,
    },
    /// The owner confirmed the transfer: it takes effect now.
    Confirm(TransferStep),
    /// The owner objected within the notice period: the transfer stops until reviewed.
    Object(TransferStep),
    /// Staff reviewed an objection and resume: a new notice, 7 more days.
    Resume(TransferStep),
    /// Lists the transfers.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: Option<i64>,
    },
}

#[derive(clap::Args)]
pub struct TransferStep {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    id: i64,
    /// The staff member who records it.
    #[arg(long)]
    staff: i64,
    /// What the owner wrote, or the review's outcome.
    #[arg(long, default_value = "")]
    note: String,
}

fn print_transfer(t: &klaxon_store::OwnershipTransfer) {
    println!(
        "transfer {} account {}: member {} -> member {} {} (notice {}, effective {}){}",
        t.transfer_id,
        t.account_id,
        t.from_member,
        t.to_member,
        t.status.as_str(),
        iso(t.notice_at),
        iso(t.effective_at),
        if t.objection.is_empty() {
            String::new()
        } else {
            format!("; objection: {}", t.objection)
        }
    );
}

pub async fn ownership(cmd: OwnershipCommand) -> anyhow::Result<()> {
    use klaxon_saas::ownership::Action;
    let (step, action) = match cmd {
        OwnershipCommand::Start {
            common,
            account,
            to_member,
            documents,
            staff,
        } => {
            let (store, _) = open(&common).await?;
            let result = async {
                active_staff(&store, staff).await?;
                let t = store
                    .ownership_transfer_start(
                        account,
                        to_member,
                        &documents,
                        staff,
                        Timestamp::now().as_millisecond(),
                    )
                    .await?;
                print_transfer(&t);
                anyhow::Ok(())
            }
            .await;
            store.close().await;
            return result;
        }
        OwnershipCommand::List { common, account } => {
            let (store, _) = open(&common).await?;
            let result = store.ownership_transfers(account).await;
            store.close().await;
            for t in result? {
                print_transfer(&t);
            }
            return Ok(());
        }
        OwnershipCommand::Confirm(s) => (s, Action::Confirm),
        OwnershipCommand::Object(s) => (s, Action::Object),
        OwnershipCommand::Resume(s) => (s, Action::Resume),
    };
    if action == Action::Object && step.note.trim().is_empty() {
        bail!("--note: record what the owner's objection says");
    }
    let (store, _) = open(&step.common).await?;
    let result = async {
        active_staff(&store, step.staff).await?;
        let t = store
            .ownership_transfer_act(
                step.id,
                action,
                step.note.trim(),
                step.staff,
                Timestamp::now().as_millisecond(),
            )
            .await?;
        print_transfer(&t);
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

fn actor_of(given: &Option<String>) -> anyhow::Result<String> {
    let actor = given.clone().unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        )
    });
    if actor.trim().is_empty() {
        bail!("--actor must not be empty");
    }
    Ok(actor)
}

pub async fn closure(cmd: ClosureCommand) -> anyhow::Result<()> {
    match cmd {
        ClosureCommand::Request {
            common,
            ticket,
            keep_buffer,
            actor,
        } => {
            let actor = actor_of(&actor)?;
            let (store, _) = open(&common).await?;
            let result = async {
                let Some((t, _)) = store.support_ticket(ticket).await? else {
                    bail!("--ticket {ticket}: no such ticket");
                };
                if t.account_id == 0 {
                    bail!("--ticket {ticket}: the ticket is not filed under a tenant; triage it first");
                }
                let owner = store
                    .saas_contacts(t.account_id)
                    .await?
                    .owner
                    .map(|(_, e)| e)
                    .unwrap_or_default();
                governance::closure_ticket(&t.category, t.account_id, t.account_id, &t.sender, &owner)?;
                let r = store
                    .saas_closure_start(
                        t.account_id,
                        ticket,
                        keep_buffer,
                        &actor,
                        Timestamp::now().as_millisecond(),
                    )
                    .await?;
                println!(
                    "closure request {} for account {}: a confirmation code was sent to the owner's contact address; it is valid until {}",
                    r.request_id,
                    r.account_id,
                    iso(r.expires_at)
                );
                anyhow::Ok(())
            }
            .await;
            store.close().await;
            result?;
        }
        ClosureCommand::Confirm {
            common,
            id,
            code,
            actor,
        } => {
            let actor = actor_of(&actor)?;
            let (store, settings) = open(&common).await?;
            let result = store
                .saas_closure_confirm(
                    &settings,
                    id,
                    &code,
                    &actor,
                    Timestamp::now().as_millisecond(),
                )
                .await;
            store.close().await;
            let (r, standing) = result?;
            println!(
                "account {} closed: {}, purge date {}",
                r.account_id,
                standing.state,
                standing.purge_at.map(|p| p.to_string()).unwrap_or_default()
            );
        }
        ClosureCommand::List { common, account } => {
            let (store, _) = open(&common).await?;
            let result = store.saas_closure_requests(account).await;
            store.close().await;
            for r in result? {
                println!(
                    "closure request {} account {} ticket {} {} requested {} expires {} tries {} {}",
                    r.request_id,
                    r.account_id,
                    r.ticket_id,
                    if r.keep_buffer {
                        "keep-buffer"
                    } else {
                        "undo-window"
                    },
                    iso(r.created_at),
                    iso(r.expires_at),
                    r.attempts,
                    if r.confirmed_at == 0 {
                        "not confirmed".to_string()
                    } else {
                        format!("confirmed {}", iso(r.confirmed_at))
                    }
                );
            }
        }
    }
    Ok(())
}

fn iso(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Holds are placed and lifted by an active staff member with the `legal` role (SVC-192).
async fn legal_staff(store: &Store, id: i64) -> anyhow::Result<()> {
    match store.staff(id).await? {
        Some(s) if s.revoked_at != 0 => bail!("--staff {id}: this staff member is revoked"),
        Some(s) if s.role == StaffRole::Legal => Ok(()),
        Some(_) => {
            bail!("--staff {id}: legal holds are placed and lifted by staff with role legal")
        }
        None => bail!("--staff {id}: no such staff member"),
    }
}

async fn active_staff(store: &Store, id: i64) -> anyhow::Result<()> {
    match store.staff(id).await? {
        Some(s) if s.revoked_at == 0 => Ok(()),
        Some(_) => bail!("--staff {id}: this staff member is revoked"),
        None => bail!("--staff {id}: no such staff member"),
    }
}

pub async fn hold(cmd: HoldCommand) -> anyhow::Result<()> {
    match cmd {
        HoldCommand::Place {
            common,
            account,
            staff,
            authority_reference,
            scope,
            start,
            review,
            notice_forbidden,
        } => {
            let (store, settings) = open(&common).await?;
            let result = async {
                let now = Timestamp::now();
                let terms = governance::hold_terms(
                    &authority_reference,
                    &scope,
                    start.unwrap_or(now),
                    review,
                    notice_forbidden,
                    &settings.billing_tz,
                )?;
                legal_staff(&store, staff).await?;
                if store.account(account).await?.is_none() {
                    bail!("--account {account}: unknown account");
                }
                let id = store
                    .legal_hold_place(account, &terms, staff, now.as_millisecond())
                    .await?;
                println!(
                    "legal hold {id} placed on account {account}: scope {}, from {}, review {}",
                    terms.scope.as_text(),
                    terms.starts_at,
                    terms.review_on
                );
                println!(
                    "{}",
                    if notice_forbidden {
                        "the tenant is not told (the law forbids it)"
                    } else {
                        "the owner's notice is queued"
                    }
                );
                anyhow::Ok(())
            }
            .await;
            store.close().await;
            result?;
        }
        HoldCommand::Lift {
            common,
            id,
            staff,
            reason,
        } => {
            let reason = klaxon_saas::lawful::required("reason", &reason, 2000)?;
            let (store, settings) = open(&common).await?;
            let result = async {
                legal_staff(&store, staff).await?;
                let now = Timestamp::now();
                let Some(rec) = store
                    .legal_hold_lift(id, staff, &reason, now.as_millisecond())
                    .await?
                else {
                    bail!("--id {id}: no legal hold in force with this id");
                };
                let account = rec.hold.account_id;
                println!("legal hold {id} on account {account} lifted");
                let others = store.legal_holds_unlifted(account).await?;
                let purge_at = store
                    .saas_tenant(&settings, account, now.as_millisecond())
                    .await?
                    .and_then(|t| t.purge_at);
                match governance::after_lift(purge_at, governance::purge_paused(&others, now), now)
                {
                    AfterLift::NoPurge => {}
                    AfterLift::StillHeld => {
                        println!("another hold still pauses the purge of account {account}")
                    }
                    AfterLift::Now => println!(
                        "the purge date has passed: the next purge run purges account {account}"
                    ),
                    AfterLift::At(p) => println!("account {account} is purged on {p}"),
                }
                anyhow::Ok(())
            }
            .await;
            store.close().await;
            result?;
        }
        HoldCommand::List { common, account } => {
            let (store, settings) = open(&common).await?;
            let result = store.legal_holds(account).await;
            store.close().await;
            let now = Timestamp::now();
            let today = klaxon_saas::calendar::date_of(now, &settings.billing_tz);
            for r in result? {
                let h = &r.hold;
                let status = match h.lifted_at {
                    Some(l) => format!("lifted {l} by staff {}: {}", r.lifted_by, r.lift_reason),
                    None if h.active(now) => "in force".to_string(),
                    None => "not started".to_string(),
                };
                println!(
                    "hold {} account {} reference {:?} scope {} from {} review {}{} placed by staff {}: {status}{}",
                    h.hold_id,
                    h.account_id,
                    h.terms.authority_reference,
                    h.terms.scope.as_text(),
                    h.terms.starts_at,
                    h.terms.review_on,
                    if h.lifted_at.is_none() && h.terms.review_on <= today {
                        " (review due)"
                    } else {
                        ""
                    },
                    r.placed_by,
                    if h.terms.notice_forbidden {
                        "; tenant not told"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(())
}

pub async fn incident(cmd: IncidentCommand) -> anyhow::Result<()> {
    match cmd {
        IncidentCommand::Record {
            common,
            staff,
            accounts,
            data_types,
            from,
            to,
            impact,
            remediation,
        } => {
            let now = Timestamp::now();
            let report = governance::incident_report(
                &accounts,
                &data_types,
                from,
                to,
                &impact,
                &remediation,
                now,
            )?;
            let (store, _) = open(&common).await?;
            let result = async {
                active_staff(&store, staff).await?;
                for a in &report.accounts {
                    if store.account(*a).await?.is_none() {
                        bail!("--accounts: unknown account {a}");
                    }
                }
                let id = store
                    .security_incident_record(&report, staff, now.as_millisecond())
                    .await?;
                println!(
                    "security incident {id} recorded; critical notices queued for {} tenant(s)",
                    report.accounts.len()
                );
                anyhow::Ok(())
            }
            .await;
            store.close().await;
            result?;
        }
        IncidentCommand::List { common, account } => {
            let (store, _) = open(&common).await?;
            let result = store.security_incidents(account).await;
            store.close().await;
            for i in result? {
                let r = &i.report;
                println!(
                    "incident {} recorded {} by staff {}",
                    i.incident_id,
                    iso(i.created_at),
                    i.recorded_by
                );
                let accounts: Vec<String> = r.accounts.iter().map(i64::to_string).collect();
                println!("  tenants: {}", accounts.join(","));
                println!("  data types: {}", r.data_types.join(","));
                println!("  window: {} .. {}", r.window_start, r.window_end);
                println!("  likely impact: {}", r.impact);
                println!("  remediation: {}", r.remediation);
                let ids: Vec<String> = i.notice_ids.iter().map(i64::to_string).collect();
                println!(
                    "  notices: {} (pending {})",
                    if ids.is_empty() {
                        "none yet".to_string()
                    } else {
                        ids.join(",")
                    },
                    i.notices_pending
                );
            }
        }
    }
    Ok(())
}
