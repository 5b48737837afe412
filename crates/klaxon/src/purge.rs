//! `klaxon admin tenant purge` and `certificates` (service-agreement.md SVC-189…191, §21;
//! docs/backup.md).
//!
//! SaaS mode purges only a tenant whose buffer is over (`ended` with its purge date passed,
//! or `purging` after an interrupted run); `--due` purges every such tenant and is what a
//! daily timer runs. Self-hosted installs purge an account on the installation admin's
//! request (there are no purge dates without billing). Either way: the store deletes every
//! row of the tenant outside the operator records and destroys its data key in one
//! transaction, the verification scan must find nothing left, and only then is the
//! certificate issued, stored and printed.

use anyhow::bail;
use jiff::Timestamp;
use klaxon_server::backup;
use klaxon_store::{SaasSettings, Store};

use crate::Common;
use crate::admin::PurgeArgs;
use crate::backup::Progress;

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

pub async fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    let saas = config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?;
    let actor = actor_of(&args.actor)?;
    if !args.yes {
        bail!("a purge deletes the tenant's data for good: pass --yes to confirm");
    }
    let store = klaxon_server::open_store(&config).await?;
    let now = Timestamp::now().as_millisecond();
    // SVC-191: in SaaS mode certificates are signed with the operator's key (made on first
    // use, sealed under the key-encryption key). A self-hosted install has no operator key.
    let kek = config.deployment.kek().map_err(anyhow::Error::msg)?;
    let result = async {
        let signer = match (&saas, &kek) {
            (Some(_), Some(kek)) => Some(store.operator_signer(kek, now).await?),
            _ => None,
        };
        let targets = match (args.account, args.due) {
            (Some(account), _) => vec![account],
            (None, true) => {
                if saas.is_none() {
                    bail!(
                        "--due: a self-hosted install has no purge dates; purge an account with \
                         --account"
                    );
                }
                let due = store.due_purges(now).await?;
                if due.is_empty() {
                    println!("no tenant is due for purge");
                }
                due
            }
            (None, false) => bail!("--account or --due is required"),
        };
        let region = match &saas {
            Some(s) => s.region.clone(),
            None if config.deployment.region.trim().is_empty() => "self-hosted".to_string(),
            None => config.deployment.region.trim().to_string(),
        };
        for account in targets {
            let trigger = if args.due {
                "purge_date_reached"
            } else {
                "operator_request"
            };
            let reason = args.reason.clone().unwrap_or_else(|| match trigger {
                "purge_date_reached" => "the buffer period ended (SVC-189)".to_string(),
                _ => "purge requested by the operator".to_string(),
            });
            purge_one(
                &store,
                saas.as_ref(),
                signer.as_ref(),
                account,
                &actor,
                &region,
                trigger,
                &reason,
            )
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

/// Purges one tenant with the shared purge of `klaxon_server::backup` (the operator API and
/// `transfer-complete` run the same), showing progress, and prints the certificate.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn purge_one(
    store: &Store,
    saas: Option<&SaasSettings>,
    signer: Option<&klaxon_store::signing::OperatorSigner>,
    account: i64,
    actor: &str,
    region: &str,
    trigger: &str,
    reason: &str,
) -> anyhow::Result<()> {
    let total = klaxon_store::EXPORT_TABLES
        .iter()
        .filter(|(_, c)| !matches!(c, klaxon_store::TableClass::OperatorRecord))
        .count()
        .saturating_sub(klaxon_store::NO_TENANT_COLUMN.len());
    let mut progress = Progress::new("purge", total);
    let cert = backup::purge_and_certify(
        store,
        saas,
        signer,
        account,
        &backup::PurgeJob {
            actor,
            region,
            trigger,
            reason,
        },
        || Timestamp::now().as_millisecond(),
        |table, n| progress.step(table, format!("{n} rows deleted")),
    )
    .await;
    progress.finish();
    println!("{}", cert?.body);
    Ok(())
}

pub async fn certificates(common: &Common, account: i64) -> anyhow::Result<()> {
    let config = common.load()?;
    let store = klaxon_server::open_store(&config).await?;
    let found = store.purge_certificates(account).await;
    store.close().await;
    let found = found?;
    if found.is_empty() {
        bail!("no purge certificate for account {account}");
    }
    for c in found {
        println!("{}", c.body);
    }
    Ok(())
}
