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
use klaxon_saas::state::ServiceState;
use klaxon_server::backup::{self, PurgeContext};
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

fn iso(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
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
    let result = async {
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

async fn purge_one(
    store: &Store,
    saas: Option<&SaasSettings>,
    account: i64,
    actor: &str,
    region: &str,
    trigger: &str,
    reason: &str,
) -> anyhow::Result<()> {
    let started = Timestamp::now().as_millisecond();
    let (buffer_start, buffer_end) = match saas {
        Some(settings) => {
            let Some(t) = store.saas_tenant(settings, account, started).await? else {
                if store.account(account).await?.is_none() {
                    bail!("unknown account {account}");
                }
                bail!(
                    "account {account} is active: a tenant is purged only after its purge date \
                     (release or termination sets it, SVC-186/187)"
                );
            };
            match t.state {
                ServiceState::Ended(_) => match t.purge_at {
                    Some(p) if p.as_millisecond() <= started => {
                        (Some(t.since.as_millisecond()), Some(p.as_millisecond()))
                    }
                    Some(p) => bail!(
                        "account {account} is {}: its purge date is {p}; the data is kept until \
                         then (SVC-187, SVC-189)",
                        t.state
                    ),
                    None => bail!("account {account} is {} without a purge date", t.state),
                },
                ServiceState::Purging => (
                    Some(t.since.as_millisecond()),
                    t.purge_at.map(|p| p.as_millisecond()),
                ),
                ServiceState::Purged => bail!(
                    "account {account} is already purged (`klaxon admin tenant certificates \
                     --account {account}` prints its certificate)"
                ),
                other => bail!(
                    "account {account} is {other}: a tenant is purged only after its purge date \
                     (SVC-189)"
                ),
            }
        }
        None => {
            if store.account(account).await?.is_none() {
                bail!("unknown account {account}");
            }
            (None, None)
        }
    };
    // SVC-192: a legal hold in force pauses the purge, in either mode.
    let holds = store.legal_holds_unlifted(account).await?;
    if klaxon_saas::governance::purge_paused(&holds, Timestamp::from_millisecond(started)?) {
        let ids: Vec<String> = holds.iter().map(|h| h.hold_id.to_string()).collect();
        bail!(
            "account {account} is under a legal hold ({}): its purge waits until the hold is \
             lifted (SVC-192)",
            ids.join(", ")
        );
    }
    let mut log = vec![format!(
        "{} purge of account {account} started by {actor} ({trigger})",
        iso(started)
    )];
    let total = klaxon_store::EXPORT_TABLES
        .iter()
        .filter(|(_, c)| !matches!(c, klaxon_store::TableClass::OperatorRecord))
        .count()
        .saturating_sub(klaxon_store::NO_TENANT_COLUMN.len());
    let mut progress = Progress::new("purge", total);
    let outcome = store
        .purge_tenant(account, started, actor, |table, n| {
            progress.step(table, format!("{n} rows deleted"));
            log.push(format!("deleted {n} rows of {table}"));
        })
        .await?;
    progress.finish();
    match &outcome.key {
        Some(k) => log.push(format!(
            "data key {} destroyed at {}",
            k.key_id,
            iso(k.destroyed_at)
        )),
        None => log.push("no data key existed".to_string()),
    }
    if !outcome.verified() {
        let left: Vec<String> = outcome
            .tables
            .iter()
            .filter(|t| t.remaining > 0)
            .map(|t| format!("{} ({})", t.table, t.remaining))
            .collect();
        bail!(
            "purge of account {account} incomplete, rows remain in: {}; run it again",
            left.join(", ")
        );
    }
    log.push("verification scan: no row of the tenant remains".to_string());
    let finished = Timestamp::now().as_millisecond().max(started);
    let ctx = PurgeContext {
        region: region.to_string(),
        mode: if saas.is_some() {
            "saas"
        } else {
            "self_hosted"
        },
        trigger: trigger.to_string(),
        reason: reason.to_string(),
        actor: actor.to_string(),
        buffer_start,
        buffer_end,
        started_at: started,
        finished_at: finished,
        log,
    };
    let cert = backup::certificate(&outcome, &ctx)?;
    store.insert_purge_certificate(&cert).await?;
    println!("{}", cert.body);
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
