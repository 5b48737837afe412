//! `klaxon admin tenant import` and `transfer-complete` (service-agreement.md SVC-215;
//! docs/saas.md "Cross-region transfers"): the two steps of a staff-assisted move that follow
//! `klaxon admin tenant transfer`.
//!
//! - `import` runs against the destination deployment: it checks the package against the
//!   SHA-256 the source printed, reads it (every file against its manifest) and writes it as
//!   a new tenant of this region, recording where it came from.
//! - `transfer-complete` runs at the source once the destination reports the import done:
//!   the transfer is marked complete, the source tenant goes to `purging`, and the purge
//!   runs at once with a certificate that names the transfer (the same purge and certificate
//!   code as `klaxon admin tenant purge`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::Common;

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub common: Common,
    /// The package `klaxon admin tenant transfer` wrote at the source.
    #[arg(long)]
    pub package: PathBuf,
    /// The package's SHA-256 as the source recorded it (`klaxon admin tenant transfers`);
    /// a file that differs is refused.
    #[arg(long)]
    pub sha256: String,
    /// The region the package comes from.
    #[arg(long)]
    pub source_region: String,
    /// The transfer's id at the source.
    #[arg(long)]
    pub transfer: i64,
    /// Who does this, for the audit trail (default: `cli:$USER`).
    #[arg(long)]
    pub actor: Option<String>,
}

#[derive(Args)]
pub struct CompleteArgs {
    #[command(flatten)]
    pub common: Common,
    /// The transfer (a `region_migration`) whose import the destination reported done.
    #[arg(long)]
    pub transfer: i64,
    /// The tenant's new account id in the destination region, as `import` printed it.
    #[arg(long)]
    pub destination_account: i64,
    /// Confirms the purge of the source copy, which cannot be undone.
    #[arg(long)]
    pub yes: bool,
    /// Who does this, for the audit trail and the certificate (default: `cli:$USER`).
    #[arg(long)]
    pub actor: Option<String>,
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

fn saas_settings(config: &klaxon_server::Config) -> anyhow::Result<klaxon_store::SaasSettings> {
    match config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?
    {
        Some(s) => Ok(s),
        None => bail!(
            "cross-region transfers exist in SaaS mode only (set deployment.mode = \"saas\"; see docs/saas.md)"
        ),
    }
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    let settings = saas_settings(&config)?;
    let actor = actor_of(&args.actor)?;
    let bytes = std::fs::read(&args.package)
        .with_context(|| format!("--package {}", args.package.display()))?;
    let expected = args.sha256.trim().to_ascii_lowercase();
    let actual = hex::encode(Sha256::digest(&bytes));
    if expected != actual {
        bail!(
            "--package {}: its SHA-256 is {actual}, not the {expected} the source recorded; \
             the file is not the package that was transferred (nothing was imported)",
            args.package.display()
        );
    }
    let read = klaxon_server::backup::read_export_archive(&bytes)?;
    // The package says where it leaves from and where it is going (SVC-215): one that
    // arrives at another region's deployment, or claims another source, is not this move.
    match &read.transfer {
        Some(t) if t.destination_region != settings.region => bail!(
            "--package {}: it was transferred to region {:?}, and this deployment is {:?}; \
             import it there (nothing was imported)",
            args.package.display(),
            t.destination_region,
            settings.region
        ),
        Some(t) if t.source_region != args.source_region.trim() => bail!(
            "--source-region {:?}: the package was transferred from {:?} (nothing was imported)",
            args.source_region,
            t.source_region
        ),
        Some(_) => {}
        None => bail!(
            "--package {}: a tenant's own export, not a transfer package (it names no source \
             and destination region); staff make one with `klaxon admin tenant transfer` \
             (nothing was imported)",
            args.package.display()
        ),
    }
    let rows: usize = read.tables.iter().map(|t| t.rows.len()).sum();
    let store = klaxon_server::open_store(&config).await?;
    let result = store
        .saas_import_transfer(
            &settings,
            &klaxon_store::TransferImport {
                source_region: args.source_region.clone(),
                source_account_id: read.account_id,
                source_transfer_id: args.transfer,
                package_sha256: actual,
                exported_at: read.taken_at,
                tables: read.tables,
            },
            &actor,
            Timestamp::now().as_millisecond(),
        )
        .await;
    store.close().await;
    let rec = result?;
    println!(
        "import {}: transfer {} of {} (account {} there) is account {} in {} ({} of {rows} rows \
         written)",
        rec.import_id,
        rec.source_transfer_id,
        rec.source_region,
        rec.source_account_id,
        rec.account_id,
        settings.region,
        rec.rows_imported
    );
    println!(
        "the tenant's secrets were not in the package: members set a new password, and the \
         owner re-enters integration credentials and creates API keys (docs/saas.md)"
    );
    println!(
        "at the source, run: klaxon admin tenant transfer-complete --transfer {} \
         --destination-account {} --yes",
        rec.source_transfer_id, rec.account_id
    );
    Ok(())
}

pub async fn complete(args: CompleteArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    let settings = saas_settings(&config)?;
    let actor = actor_of(&args.actor)?;
    if !args.yes {
        bail!(
            "completing the transfer purges the source copy of the tenant for good: pass --yes \
             to confirm"
        );
    }
    let store = klaxon_server::open_store(&config).await?;
    let result = async {
        let kek = config.deployment.kek().map_err(anyhow::Error::msg)?;
        let now = Timestamp::now().as_millisecond();
        let signer = match &kek {
            Some(kek) => Some(store.operator_signer(kek, now).await?),
            None => None,
        };
        let rec = store
            .saas_complete_transfer(
                &settings,
                args.transfer,
                args.destination_account,
                &actor,
                now,
            )
            .await?;
        println!(
            "transfer {}: imported in {} as account {}; account {} is purging",
            rec.transfer_id, rec.destination_region, rec.destination_account_id, rec.account_id
        );
        crate::purge::purge_one(
            &store,
            Some(&settings),
            signer.as_ref(),
            rec.account_id,
            &actor,
            &settings.region,
            "region_transfer",
            &format!(
                "moved to region {} by transfer {} (account {} there), SVC-215",
                rec.destination_region, rec.transfer_id, rec.destination_account_id
            ),
        )
        .await
    }
    .await;
    store.close().await;
    result
}
