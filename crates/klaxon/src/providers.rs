//! `klaxon admin providers …`: the notification providers of each region (service-agreement.md
//! SVC-214; docs/saas.md "Delivery providers"). SaaS mode only. A change is written with its
//! `provider_change` notice to every tenant of the region in one transaction (SVC-238);
//! tenants read the list at `/account/delivery-provider/list`.

use anyhow::bail;
use clap::Subcommand;
use jiff::Timestamp;
use klaxon_saas::providers::{Change, in_force_at};
use klaxon_store::{SaasSettings, Store};

use crate::Common;

#[derive(Subcommand)]
pub enum ProvidersCommand {
    /// Adds a provider of a channel in a region, or moves it to another location, from
    /// `--effective` (default now; never in the past).
    Set {
        #[command(flatten)]
        common: Common,
        /// The region's id (default: the one this deployment serves).
        #[arg(long)]
        region: Option<String>,
        /// sms, voice, email, im or push.
        #[arg(long)]
        channel: String,
        /// The provider's name, e.g. "Example SMS Ltd".
        #[arg(long)]
        provider: String,
        /// Where it processes messages, e.g. "Frankfurt, Germany".
        #[arg(long)]
        location: String,
        #[arg(long)]
        effective: Option<Timestamp>,
        /// Who makes the change, for the record (default: `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Removes a provider of a channel in a region from `--effective` (default now).
    Remove {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        channel: String,
        #[arg(long)]
        provider: String,
        #[arg(long)]
        effective: Option<Timestamp>,
        #[arg(long)]
        actor: Option<String>,
    },
    /// The list in force now, then every entry with its dates.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        region: Option<String>,
    },
}

async fn open(common: &Common) -> anyhow::Result<(SaasSettings, Store)> {
    let config = common.load()?;
    let Some(settings) = config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?
    else {
        bail!(
            "the providers list is published in SaaS mode only (set deployment.mode = \"saas\"; see docs/saas.md)"
        );
    };
    let store = klaxon_server::open_store(&config).await?;
    Ok((settings, store))
}

fn actor(actor: Option<String>) -> String {
    actor.unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        )
    })
}

async fn change(
    common: Common,
    region: Option<String>,
    mut c: Change,
    effective: Option<Timestamp>,
    who: Option<String>,
) -> anyhow::Result<()> {
    let (settings, store) = open(&common).await?;
    let now = Timestamp::now();
    c.region = region.unwrap_or_else(|| settings.region.clone());
    c.effective_at = effective.unwrap_or(now);
    let (entry, told) = store
        .saas_change_region_provider(&settings, &c, now.as_millisecond(), &actor(who))
        .await?;
    println!(
        "{} {} {} in {} from {}; provider_change notices queued for {told} tenants",
        if c.remove { "removed" } else { "set" },
        entry.channel,
        entry.provider,
        entry.region,
        c.effective_at
    );
    store.close().await;
    Ok(())
}

pub async fn run(cmd: ProvidersCommand) -> anyhow::Result<()> {
    match cmd {
        ProvidersCommand::Set {
            common,
            region,
            channel,
            provider,
            location,
            effective,
            actor: who,
        } => {
            let c = Change {
                region: String::new(),
                channel,
                provider,
                location,
                remove: false,
                effective_at: Timestamp::UNIX_EPOCH,
            };
            change(common, region, c, effective, who).await
        }
        ProvidersCommand::Remove {
            common,
            region,
            channel,
            provider,
            effective,
            actor: who,
        } => {
            let c = Change {
                region: String::new(),
                channel,
                provider,
                location: String::new(),
                remove: true,
                effective_at: Timestamp::UNIX_EPOCH,
            };
            change(common, region, c, effective, who).await
        }
        ProvidersCommand::List { common, region } => {
            let (settings, store) = open(&common).await?;
            let region = region.unwrap_or_else(|| settings.region.clone());
            let rows = store.saas_region_providers(Some(&region)).await?;
            let entries = rows
                .iter()
                .map(|r| r.entry())
                .collect::<Result<Vec<_>, _>>()?;
            println!("in force in {region} now:");
            for e in in_force_at(&entries, &region, Timestamp::now()) {
                println!("  {:<6} {} ({})", e.channel, e.provider, e.location);
            }
            println!("history:");
            for e in &entries {
                println!(
                    "  {:<6} {} ({}) from {}{}",
                    e.channel,
                    e.provider,
                    e.location,
                    e.effective_at,
                    e.removed_at
                        .map(|r| format!(" until {r}"))
                        .unwrap_or_default()
                );
            }
            store.close().await;
            Ok(())
        }
    }
}
