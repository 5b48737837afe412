//! `klaxon admin ticket …`: the support desk's tickets (SaaS mode, service-agreement.md §12,
//! docs/saas.md "Support"). Tickets are opened by mail to `deployment.support_address`;
//! these commands triage, answer and close them, and show each ticket's clock in service
//! minutes of its edition's hours (SVC-172, SVC-173).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;
use klaxon_saas::support::{Category, FaultCause, ServiceHours};
use klaxon_server::Config;
use klaxon_store::{Store, SupportDesk, Ticket};

use crate::Common;

#[derive(Subcommand)]
pub enum TicketCommand {
    /// Open tickets, newest first (all of them with `--all`).
    List {
        #[command(flatten)]
        common: Common,
        /// Only this queue: `tenant`, `ambiguous` or `unverified`.
        #[arg(long)]
        queue: Option<String>,
        /// Only this tenant's tickets.
        #[arg(long)]
        account: Option<i64>,
        /// Closed tickets too.
        #[arg(long)]
        all: bool,
    },
    /// One ticket: its messages and its clock in service minutes.
    Show(TicketTarget),
    /// Set a ticket's category and/or its tenant.
    Triage {
        #[command(flatten)]
        target: TicketTarget,
        /// consultation, fault, billing, formal_notice, data_request, access_grant, appeal
        /// or closure.
        #[arg(long)]
        category: Option<String>,
        /// The tenant the ticket is about (for the ambiguous and unverified queues).
        #[arg(long)]
        account: Option<i64>,
    },
    /// Answer the sender (sent by the node's e-mail sender, Reply-To the support address).
    Reply {
        #[command(flatten)]
        target: TicketTarget,
        /// The answer's text.
        #[arg(long, conflicts_with = "file")]
        body: Option<String>,
        /// Read the answer's text from a file.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Who answers (default `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Close a ticket; a fault ticket needs `--cause` (SVC-174).
    Close {
        #[command(flatten)]
        target: TicketTarget,
        /// platform, customer_operation, third_party_network, force_majeure or unknown.
        #[arg(long)]
        cause: Option<String>,
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Args)]
pub struct TicketTarget {
    #[command(flatten)]
    pub common: Common,
    /// The ticket id (the number in `[#…]`).
    #[arg(long)]
    pub ticket: i64,
}

struct Desk {
    config: Config,
    store: Store,
    desk: SupportDesk,
}

async fn open(common: &Common) -> anyhow::Result<Desk> {
    let config = common.load()?;
    if config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?
        .is_none()
    {
        bail!(
            "support tickets exist in SaaS mode only (set deployment.mode = \"saas\"; see docs/saas.md)"
        );
    }
    let address = config
        .deployment
        .support_address
        .trim()
        .to_ascii_lowercase();
    let desk = SupportDesk {
        address,
        default_edition: config.deployment.default_edition.clone(),
    };
    let store = klaxon_server::open_store(&config).await?;
    Ok(Desk {
        config,
        store,
        desk,
    })
}

fn actor(given: &Option<String>) -> anyhow::Result<String> {
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

fn when(ms: i64) -> String {
    if ms == 0 {
        return "-".into();
    }
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn line(t: &Ticket) {
    let tenant = if t.account_id == 0 {
        "-".to_string()
    } else {
        t.account_id.to_string()
    };
    println!(
        "#{:<6} {:<7} {:<10} {:<13} account {:<8} {}  {}  {}",
        t.ticket_id,
        t.status,
        t.queue,
        t.category,
        tenant,
        when(t.received_at),
        t.sender,
        t.subject
    );
}

/// SVC-173: the ticket's clock in service minutes: first response, and resolution (or the
/// time open so far).
fn clock(d: &Desk, t: &Ticket) -> anyhow::Result<()> {
    let (tz, holidays) = d
        .config
        .deployment
        .support_calendar()
        .map_err(anyhow::Error::msg)?;
    let hours = ServiceHours::for_edition_named(&t.edition, tz, holidays)?;
    let received = Timestamp::from_millisecond(t.received_at)?;
    let Some(start) = hours.clock_start(received)? else {
        println!(
            "service hours:  none for edition {} (no commitment)",
            t.edition
        );
        return Ok(());
    };
    println!("service hours:  edition {} ({:?})", t.edition, hours.days);
    println!("clock starts:   {start}");
    if t.first_response_at > 0 {
        let first = Timestamp::from_millisecond(t.first_response_at)?;
        println!(
            "first response: {} service minutes",
            hours.service_minutes(start, first)?
        );
    } else {
        println!("first response: none yet");
    }
    let (label, end) = if t.closed_at > 0 {
        ("resolution:", Timestamp::from_millisecond(t.closed_at)?)
    } else {
        ("open for:", Timestamp::now())
    };
    println!(
        "{label:<15} {} service minutes",
        hours.service_minutes(start, end)?
    );
    Ok(())
}

pub async fn run(cmd: TicketCommand) -> anyhow::Result<()> {
    match cmd {
        TicketCommand::List {
            common,
            queue,
            account,
            all,
        } => {
            if let Some(q) = &queue
                && !["tenant", "ambiguous", "unverified"].contains(&q.as_str())
            {
                bail!("--queue {q:?} is not tenant, ambiguous or unverified");
            }
            let d = open(&common).await?;
            let tickets = d
                .store
                .support_tickets(account, queue.as_deref(), all)
                .await?;
            if tickets.is_empty() {
                println!("no tickets");
            }
            for t in &tickets {
                line(t);
            }
        }
        TicketCommand::Show(target) => {
            let d = open(&target.common).await?;
            let Some((t, messages)) = d.store.support_ticket(target.ticket).await? else {
                bail!("no ticket {}", target.ticket);
            };
            line(&t);
            if !t.candidates.is_empty() {
                println!("sender is a member of accounts {:?}", t.candidates);
            }
            if t.status == "closed" {
                let cause = if t.cause.is_empty() { "-" } else { &t.cause };
                println!(
                    "closed:         {} by {} (cause {cause})",
                    when(t.closed_at),
                    t.closed_by
                );
            }
            clock(&d, &t)?;
            for m in messages {
                let state = match (m.direction.as_str(), m.sent_at) {
                    ("out", 0) if m.last_error.is_empty() => "queued".to_string(),
                    ("out", 0) => format!("not sent yet: {}", m.last_error),
                    ("out", at) => format!("sent {}", when(at)),
                    _ => "received".to_string(),
                };
                println!(
                    "\n--- {} {} {} → {} ({state})\nSubject: {}\n\n{}",
                    when(m.at),
                    m.kind,
                    m.author,
                    m.recipient,
                    m.subject,
                    m.body.trim_end()
                );
            }
        }
        TicketCommand::Triage {
            target,
            category,
            account,
        } => {
            if category.is_none() && account.is_none() {
                bail!("give --category and/or --account");
            }
            let category = category.as_deref().map(Category::parse).transpose()?;
            let d = open(&target.common).await?;
            let t = d
                .store
                .support_triage(&d.desk, target.ticket, category, account)
                .await?;
            line(&t);
        }
        TicketCommand::Reply {
            target,
            body,
            file,
            actor: who,
        } => {
            let text = match (body, file) {
                (Some(b), None) => b,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                _ => bail!("give --body or --file"),
            };
            let who = actor(&who)?;
            let d = open(&target.common).await?;
            let m = d
                .store
                .support_reply(
                    target.ticket,
                    &who,
                    &text,
                    Timestamp::now().as_millisecond(),
                )
                .await?;
            println!(
                "reply queued to {} (message {}): {}",
                m.recipient, m.message_id, m.subject
            );
        }
        TicketCommand::Close {
            target,
            cause,
            actor: who,
        } => {
            let cause = cause.as_deref().map(FaultCause::parse).transpose()?;
            let who = actor(&who)?;
            let d = open(&target.common).await?;
            let t = d
                .store
                .support_close(
                    target.ticket,
                    cause,
                    &who,
                    Timestamp::now().as_millisecond(),
                )
                .await?;
            line(&t);
        }
    }
    Ok(())
}
