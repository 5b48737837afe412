//! `klaxon backup` and `klaxon restore` (docs/backup.md).
//!
//! - Without `--account`, on SQLite: a consistent online snapshot of both database files
//!   (`VACUUM INTO`, safe while a node writes), packed in a tar with a manifest. Restore
//!   unpacks it into an empty data directory (`--force` replaces an existing database).
//!   PostgreSQL installs use `pg_dump`/`pg_restore` for the whole database (documented).
//! - With `--account ID`, on either backend: every row of that account in a gzipped tar of
//!   JSON Lines; in SaaS mode encrypted under the tenant's data key (SVC-185), so the purge
//!   that destroys the key makes it unreadable. Restore writes it into a database where the
//!   account has no row.
//!
//! Progress goes to stderr: one updating line on a terminal, plain lines otherwise.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;
use klaxon_server::backup::{self, BackupError};
use sha2::{Digest, Sha256};

use crate::Common;

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: Common,
    /// Where to write the backup (refused if the file exists).
    #[arg(long)]
    pub out: PathBuf,
    /// Back up one account's rows (both backends; encrypted in SaaS mode) instead of the
    /// whole SQLite database.
    #[arg(long)]
    pub account: Option<i64>,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: Common,
    /// A file written by `klaxon backup`.
    pub file: PathBuf,
    /// Whole-database snapshots: replace the database in a non-empty data directory.
    #[arg(long)]
    pub force: bool,
}

/// Progress of a long operation on stderr.
pub struct Progress {
    label: &'static str,
    total: usize,
    done: usize,
    tty: bool,
}

impl Progress {
    pub fn new(label: &'static str, total: usize) -> Progress {
        Progress {
            label,
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// One step done: `what` with `n` rows.
    pub fn step(&mut self, what: &str, n: impl std::fmt::Display) {
        self.done += 1;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = 30;
            let filled = (self.done * width)
                .checked_div(self.total)
                .unwrap_or(width)
                .min(width);
            let _ = write!(
                err,
                "\r\x1b[2K{} [{}{}] {}/{} {what} ({n})",
                self.label,
                "#".repeat(filled),
                " ".repeat(width - filled),
                self.done,
                self.total
            );
        } else {
            let _ = writeln!(
                err,
                "{}: {}/{} {what} ({n})",
                self.label, self.done, self.total
            );
        }
        let _ = err.flush();
    }

    pub fn finish(&self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Tables a per-account backup visits (for the progress total).
fn backed_up_tables() -> usize {
    klaxon_store::EXPORT_TABLES
        .iter()
        .filter(|(_, c)| {
            matches!(
                c,
                klaxon_store::TableClass::Exported { .. } | klaxon_store::TableClass::Secret
            )
        })
        .count()
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("--out {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    if args.out.exists() {
        bail!(
            "--out {}: the file exists (refusing to overwrite)",
            args.out.display()
        );
    }
    // SaaS mode checks its settings (the key-encryption key among them) before anything.
    let _saas = config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?;
    let kek = config.deployment.kek().map_err(anyhow::Error::msg)?;
    let store = klaxon_server::open_store(&config).await?;
    let result = match args.account {
        Some(account) => {
            let now = Timestamp::now().as_millisecond();
            if store.account(account).await?.is_none() {
                store.close().await;
                bail!("--account {account}: no such account");
            }
            let mut progress = Progress::new("backup", backed_up_tables());
            let tables = store
                .backup_snapshot(account, |t, n| progress.step(t, format!("{n} rows")))
                .await?;
            progress.finish();
            let rows: usize = tables.iter().map(|t| t.rows.len()).sum();
            let archive = backup::build_archive(account, &tables, now)?;
            // Sealed whenever a key-encryption key is configured (always in SaaS mode): the
            // archive then falls under the tenant's data key like its sealed credentials.
            let (bytes, sealed) = match &kek {
                Some(kek) => {
                    let key = backup::tenant_data_key(&store, kek, account, now).await?;
                    (backup::seal(&key, &archive)?, Some(key.key_id))
                }
                None => (archive, None),
            };
            write_new(&args.out, &bytes)?;
            println!(
                "account {account}: {rows} rows in {} tables written to {} ({} bytes, sha256 {})",
                tables.len(),
                args.out.display(),
                bytes.len(),
                hex::encode(Sha256::digest(&bytes))
            );
            match sealed {
                Some(key_id) => {
                    println!("encrypted under the tenant's data key {key_id} (AES-256-GCM)")
                }
                None => println!(
                    "not encrypted (no key-encryption key is configured): keep the file safe"
                ),
            }
            Ok(())
        }
        None => sqlite_snapshot(&store, &config, &args.out).await,
    };
    store.close().await;
    result
}

async fn sqlite_snapshot(
    store: &klaxon_store::Store,
    config: &klaxon_server::Config,
    out: &Path,
) -> anyhow::Result<()> {
    if store.backend() != klaxon_store::Backend::Sqlite {
        bail!(
            "a whole-database backup of PostgreSQL is made with pg_dump (docs/backup.md); \
             `klaxon backup --account ID` backs up one account on either backend"
        );
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = dir.join(format!(
        ".klaxon-backup-{}-{}",
        std::process::id(),
        Timestamp::now().as_millisecond()
    ));
    std::fs::create_dir(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = async {
        let main = work.join("klaxon.db");
        let inbox = work.join("klaxon-inbox.db");
        let mut progress = Progress::new("backup", 3);
        store.sqlite_snapshot(&main, &inbox).await?;
        progress.step("snapshot of both database files", "VACUUM INTO");
        let manifest = serde_json::json!({
            "format": "klaxon-sqlite-snapshot",
            "schema_version": 1,
            "klaxon_version": env!("CARGO_PKG_VERSION"),
            "taken_at": Timestamp::now().to_string(),
            "source": config.effective_database_url(),
            "files": [
                {"path": "klaxon.db", "sha256": file_sha(&main)?},
                {"path": "klaxon-inbox.db", "sha256": file_sha(&inbox)?},
            ],
        });
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .with_context(|| format!("--out {}", out.display()))?;
        let mut tar = tar::Builder::new(file);
        let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest_bytes.len() as u64);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, "manifest.json", manifest_bytes.as_slice())?;
        for (name, path) in [("klaxon.db", &main), ("klaxon-inbox.db", &inbox)] {
            tar.append_path_with_name(path, name)?;
            let size = std::fs::metadata(path)?.len();
            progress.step(name, format!("{size} bytes"));
        }
        tar.into_inner()?.sync_all()?;
        progress.finish();
        println!("SQLite snapshot written to {}", out.display());
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&work);
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

fn file_sha(path: &Path) -> anyhow::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let config = args.common.load()?;
    let bytes = std::fs::read(&args.file).with_context(|| format!("{}", args.file.display()))?;
    if bytes.starts_with(&[0x1f, 0x8b]) || backup::is_sealed(&bytes) {
        restore_account(&config, &bytes).await
    } else {
        restore_snapshot(&config, &args.file, args.force)
    }
}

async fn restore_account(config: &klaxon_server::Config, bytes: &[u8]) -> anyhow::Result<()> {
    // SaaS mode checks its settings (the key-encryption key among them) first.
    let _saas = config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?;
    let store = klaxon_server::open_store(config).await?;
    let result = async {
        let archive = if backup::is_sealed(bytes) {
            let Some(kek) = config.deployment.kek().map_err(anyhow::Error::msg)? else {
                bail!(
                    "this archive is encrypted: set deployment.key_encryption_key (docs/backup.md)"
                );
            };
            match backup::open(&store, &kek, bytes).await {
                Ok(plain) => plain,
                Err(e @ BackupError::KeyDestroyed(_)) => bail!("{e}"),
                Err(e) => return Err(e.into()),
            }
        } else {
            bytes.to_vec()
        };
        let read = backup::read_archive(&archive)?;
        let mut progress = Progress::new(
            "restore",
            read.tables
                .iter()
                .filter(|t| !t.rows.is_empty())
                .count()
                .max(1),
        );
        let written = store
            .restore_snapshot(read.account_id, &read.tables, |t, n| {
                if n > 0 {
                    progress.step(t, format!("{n} rows"));
                }
            })
            .await?;
        progress.finish();
        let rows: u64 = written.iter().map(|(_, n)| n).sum();
        println!("account {}: {rows} rows restored", read.account_id);
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

fn restore_snapshot(
    config: &klaxon_server::Config,
    file: &Path,
    force: bool,
) -> anyhow::Result<()> {
    if !config.database_url.is_empty() {
        bail!(
            "this is a SQLite snapshot; the configuration names a PostgreSQL database \
             (restore PostgreSQL with pg_restore, docs/backup.md)"
        );
    }
    let dir = &config.data_dir;
    let main = dir.join("klaxon.db");
    let inbox = dir.join("klaxon-inbox.db");
    let existing: Vec<PathBuf> = ["klaxon.db", "klaxon-inbox.db"]
        .iter()
        .flat_map(|f| {
            ["", "-wal", "-shm"]
                .iter()
                .map(move |s| dir.join(format!("{f}{s}")))
        })
        .filter(|p| p.exists())
        .collect();
    let non_empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if non_empty && !force {
        bail!(
            "the data directory {} is not empty: restore refuses to overwrite it (stop the \
             node and pass --force to replace its database)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    let mut archive = tar::Archive::new(
        std::fs::File::open(file).with_context(|| format!("{}", file.display()))?,
    );
    let staging = dir.join(format!(".klaxon-restore-{}", std::process::id()));
    std::fs::create_dir_all(&staging)?;
    let result = (|| -> anyhow::Result<()> {
        let mut manifest: Option<serde_json::Value> = None;
        let mut progress = Progress::new("restore", 3);
        for entry in archive.entries().context("not a Klaxon backup")? {
            let mut entry = entry?;
            let name = entry.path()?.display().to_string();
            match name.as_str() {
                "manifest.json" => {
                    let mut text = String::new();
                    entry.read_to_string(&mut text)?;
                    manifest = Some(serde_json::from_str(&text).context("manifest.json")?);
                }
                "klaxon.db" | "klaxon-inbox.db" => {
                    entry.unpack(staging.join(&name))?;
                }
                other => bail!("unexpected file {other:?} in the snapshot"),
            }
            progress.step(&name, "unpacked");
        }
        progress.finish();
        let manifest = manifest.context("not a Klaxon backup: no manifest.json")?;
        if manifest["format"] != "klaxon-sqlite-snapshot" {
            bail!("not a Klaxon SQLite snapshot (manifest.format)");
        }
        for f in manifest["files"].as_array().into_iter().flatten() {
            let name = f["path"].as_str().unwrap_or_default();
            let path = staging.join(name);
            if !path.exists() || file_sha(&path)? != f["sha256"].as_str().unwrap_or_default() {
                bail!("{name}: missing or its SHA-256 differs from the manifest");
            }
        }
        for p in &existing {
            std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
        }
        std::fs::rename(staging.join("klaxon.db"), &main)?;
        std::fs::rename(staging.join("klaxon-inbox.db"), &inbox)?;
        println!("SQLite snapshot restored into {}", dir.display());
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}
