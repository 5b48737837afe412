//! `klaxon` — one binary: `serve` runs the API, ingestion and workers; `migrate` only applies
//! database migrations; `admin` holds the operator's tools; `backup` and `restore` save and
//! bring back the database or one account (docs/backup.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

mod admin;
mod backup;
mod documents;
mod governance;
mod providers;
mod purge;
mod sla;
mod staff;
mod support;
mod transfer;

use clap::{Args, Parser, Subcommand};
use klaxon_server::Config;
use tracing_subscriber::EnvFilter;

// glibc's allocator spent a fifth of the server's CPU under push load (many small,
// short-lived allocations across threads); mimalloc handles that pattern far better.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "klaxon",
    version,
    about = "Self-hosted incident response: alerts in, people paged."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: HTTP API, alert intake and workers.
    Serve(Common),
    /// Apply database migrations and exit.
    Migrate(Common),
    /// Operator tools of SaaS mode (docs/saas.md).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Write a backup: a snapshot of the SQLite database, or one account with --account
    /// (encrypted under the tenant's data key in SaaS mode); see docs/backup.md.
    Backup(backup::BackupArgs),
    /// Restore a file written by `klaxon backup`.
    Restore(backup::RestoreArgs),
    /// Print the OpenAPI 3.1 document of the server (as served at /openapi.json).
    Openapi,
}

/// Settings shared by every command. Precedence: defaults, then the TOML file, then `KLAXON_*`
/// environment variables, then these flags.
#[derive(Args)]
pub(crate) struct Common {
    /// TOML configuration file.
    #[arg(long, short = 'c', env = "KLAXON_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for the embedded SQLite database (default ./klaxon-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of embedded SQLite (also KLAXON_DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,
}

impl Common {
    pub(crate) fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(std::env::vars())?;
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            config.database_url = url.clone();
        }
        Ok(config)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("KLAXON_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("klaxon: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(common) => serve(common.load()?).await,
            Command::Migrate(common) => migrate(common.load()?).await,
            Command::Admin(cmd) => admin::run(cmd).await,
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
            Command::Openapi => {
                print!("{}", klaxon_server::openapi_document());
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("klaxon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = klaxon_server::start(config).await?;
    println!("{}", server.banner());
    wait_for_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = klaxon_server::open_store(&config).await?;
    store.close().await;
    println!(
        "migrations applied to {}",
        redact(&config.effective_database_url())
    );
    Ok(())
}

/// Hides a password in a database URL before printing it.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// SIGTERM or Ctrl-C.
async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("sqlite://klaxon-data/klaxon.db"),
            "sqlite://klaxon-data/klaxon.db"
        );
    }
}
