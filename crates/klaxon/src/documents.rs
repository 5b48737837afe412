//! `klaxon admin documents …`: the operator publishes, retracts and lists agreement document
//! versions (service-agreement.md SVC-030, SVC-031, SVC-035; docs/saas.md "Agreements and
//! notices"). SaaS mode only. Publication writes the version and its announcement and in-app
//! notices in one transaction; a material version is also e-mailed to each tenant's owner
//! through the configured SMTP sender, every sending recorded as a notice.

use anyhow::{Context, bail};
use clap::Subcommand;
use jiff::Timestamp;
use klaxon_saas::agreement::{DocumentType, VersionFacts, status_at};
use klaxon_store::{NewDocument, SaasSettings, Store};

use crate::Common;

#[derive(Subcommand)]
pub enum DocumentsCommand {
    /// Publishes a new version (SVC-031): effective ≥ published; an `sla` version needs 30
    /// days from the notice's delivery date; a `--material` version effective within 14 days
    /// needs `--justification`.
    Publish {
        #[command(flatten)]
        common: Common,
        /// terms_of_service, data_protection, sla, user_agreement or privacy_policy.
        #[arg(long = "type")]
        doc_type: String,
        /// Version label, e.g. 2025-08-15.
        #[arg(long)]
        version: String,
        /// File holding the exact text shown to tenants (UTF-8); its SHA-256 is recorded.
        #[arg(long)]
        body_file: std::path::PathBuf,
        /// Change summary, sent in every notice about the version.
        #[arg(long)]
        summary: String,
        /// When it takes effect (RFC 3339).
        #[arg(long)]
        effective: Timestamp,
        /// A material change: also e-mailed to each tenant's owner (SVC-035).
        #[arg(long)]
        material: bool,
        /// Why a material version takes effect less than 14 days after publication.
        #[arg(long, default_value = "")]
        justification: String,
        /// Language of the text.
        #[arg(long, default_value = "en-US")]
        language: String,
        /// Who publishes, for the record (default: `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
        /// Publication instant (RFC 3339), never in the future; default now.
        #[arg(long)]
        at: Option<Timestamp>,
    },
    /// Retracts a published version that is not yet effective, with a retraction notice.
    Retract {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        version_id: i64,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        at: Option<Timestamp>,
    },
    /// Lists every version with its status now.
    List {
        #[command(flatten)]
        common: Common,
    },
}

async fn open(common: &Common) -> anyhow::Result<(klaxon_server::Config, SaasSettings, Store)> {
    let config = common.load()?;
    let Some(settings) = config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?
    else {
        bail!(
            "agreement documents do not exist in self-hosted mode (set deployment.mode = \"saas\"; see docs/saas.md)"
        );
    };
    let store = klaxon_server::open_store(&config).await?;
    Ok((config, settings, store))
}

fn instant(at: Option<Timestamp>) -> anyhow::Result<Timestamp> {
    let now = Timestamp::now();
    let at = at.unwrap_or(now);
    if at > now {
        bail!("--at {at} is in the future");
    }
    Ok(at)
}

fn actor(actor: Option<String>) -> anyhow::Result<String> {
    let actor = actor.unwrap_or_else(|| {
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

fn ms_text(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub async fn run(cmd: DocumentsCommand) -> anyhow::Result<()> {
    match cmd {
        DocumentsCommand::Publish {
            common,
            doc_type,
            version,
            body_file,
            summary,
            effective,
            material,
            justification,
            language,
            actor: who,
            at,
        } => {
            let doc_type =
                DocumentType::parse(&doc_type).map_err(|e| anyhow::anyhow!("--type: {e}"))?;
            let at = instant(at)?;
            let author = actor(who)?;
            let body = std::fs::read_to_string(&body_file)
                .with_context(|| format!("--body-file {}", body_file.display()))?;
            let (config, settings, store) = open(&common).await?;
            let doc = NewDocument {
                doc_type,
                version,
                language,
                body,
                summary,
                material,
                justification,
                published_at: at.as_millisecond(),
                effective_at: effective.as_millisecond(),
                author,
            };
            let p = klaxon_server::agreements::publish(
                &store,
                &settings,
                config.notify.email.as_ref(),
                config.notify.timeout_ms,
                &doc,
            )
            .await?;
            println!(
                "published {} {} as version_id {} (effective {}, sha256 {})",
                p.version.doc_type.as_str(),
                p.version.version,
                p.version.version_id,
                ms_text(p.version.effective_at),
                p.version.body_sha256
            );
            println!("announcement and in-app notices: {}", p.platform_notices);
            if material {
                println!("e-mails sent: {}", p.emails_sent);
                for f in &p.emails_failed {
                    println!("e-mail failed (recorded): {f}");
                }
            }
        }
        DocumentsCommand::Retract {
            common,
            version_id,
            actor: who,
            at,
        } => {
            let at = instant(at)?;
            let who = actor(who)?;
            let (_, settings, store) = open(&common).await?;
            let (v, notices) = klaxon_server::agreements::retract(
                &store,
                &settings,
                version_id,
                at.as_millisecond(),
                &who,
            )
            .await?;
            println!(
                "retracted {} {} (version_id {}); retraction notices: {notices}",
                v.doc_type.as_str(),
                v.version,
                v.version_id
            );
        }
        DocumentsCommand::List { common } => {
            let (_, _, store) = open(&common).await?;
            let versions = store.saas_documents().await?;
            let facts: Vec<VersionFacts> = versions
                .iter()
                .map(klaxon_store::DocumentVersion::facts)
                .collect::<Result<_, _>>()?;
            let now = Timestamp::now();
            for (v, f) in versions.iter().zip(&facts) {
                println!(
                    "{} {} {} {} [{}] published {} effective {}{} sha256 {}",
                    v.version_id,
                    v.doc_type.as_str(),
                    v.version,
                    v.language,
                    status_at(f, &facts, now).as_str(),
                    ms_text(v.published_at),
                    ms_text(v.effective_at),
                    if v.material { " material" } else { "" },
                    v.body_sha256
                );
            }
            if versions.is_empty() {
                println!("no document version has been published");
            }
        }
    }
    Ok(())
}
