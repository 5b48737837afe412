//! Per-tenant data keys, per-account backup archives and purge certificates
//! (service-agreement.md SVC-185, SVC-190, SVC-191, §21; docs/backup.md).
//!
//! - [`Kek`] and [`DataKey`] (klaxon_store::sealing, shared with the sealing of stored
//!   credentials): the deployment's key-encryption key (`deployment.key_encryption_key`,
//!   required in SaaS mode) wraps each tenant's 256-bit data key; only wrapped keys are stored
//!   (`tenant_keys`).
//! - [`build_archive`] / [`read_archive`]: a per-account backup is a gzipped tar of
//!   `data/<table>.jsonl` plus `manifest.json` (the layout of the export archive, but with
//!   every column and the secret tables: it is meant to be restored).
//! - [`seal`] / [`open`]: in SaaS mode the archive is encrypted under the tenant's data key:
//!   `KLXENC01`, a 4-byte big-endian header length, a JSON header (`format`, `account_id`,
//!   `key_id`, `alg`), a 12-byte nonce, then the AES-256-GCM ciphertext with its tag; the
//!   magic, length and header are authenticated as associated data. Destroying the key at
//!   purge makes every such archive unreadable.
//! - [`certificate`]: the purge certificate (SVC-191) with its SHA-256 digest.

use std::io::{Read, Write};

use klaxon_core::model::Millis;
pub use klaxon_store::sealing::{DataKey, Kek};
use klaxon_store::sealing::{KeyError, random};
use klaxon_store::{
    BackupTable, EXPORT_TABLES, PurgeCertificateRecord, PurgeOutcome, Store, TableClass,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Magic bytes of an encrypted per-account archive.
pub const SEALED_MAGIC: &[u8; 8] = b"KLXENC01";
/// The archive layout's version.
pub const BACKUP_SCHEMA_VERSION: u32 = 1;

/// Why a key, archive or certificate operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the data key of account {0} was destroyed by its purge: this archive can never be read again"
    )]
    KeyDestroyed(i64),
    #[error("account {0} has no data key in this database: the archive cannot be decrypted here")]
    NoKey(i64),
    #[error("decryption failed: wrong key or the archive was altered")]
    Decrypt,
    #[error(transparent)]
    Store(#[from] klaxon_store::StoreError),
    #[error("archive: {0}")]
    Io(#[from] std::io::Error),
}

impl From<KeyError> for BackupError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Invalid(m) => BackupError::Invalid(m),
            KeyError::KeyDestroyed(account) => BackupError::KeyDestroyed(account),
            KeyError::Decrypt => BackupError::Decrypt,
        }
    }
}

/// The tenant's data key, created (and stored wrapped) on first use.
pub async fn tenant_data_key(
    store: &Store,
    kek: &Kek,
    account_id: i64,
    now: Millis,
) -> Result<DataKey, BackupError> {
    let rec = match store.tenant_key(account_id).await? {
        Some(rec) => rec,
        None => {
            store
                .create_tenant_key(&kek.new_tenant_key(account_id, now)?)
                .await?
        }
    };
    Ok(kek.unwrap(&rec)?)
}

/// Is `bytes` an encrypted archive?
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(SEALED_MAGIC)
}

/// Encrypts an archive under the tenant's data key (format in the module documentation).
pub fn seal(key: &DataKey, archive: &[u8]) -> Result<Vec<u8>, BackupError> {
    let header = serde_json::to_vec(&json!({
        "format": "klaxon-backup-sealed",
        "account_id": key.account_id,
        "key_id": key.key_id,
        "alg": "AES-256-GCM",
    }))
    .map_err(|e| BackupError::Invalid(e.to_string()))?;
    let len =
        u32::try_from(header.len()).map_err(|_| BackupError::Invalid("header too long".into()))?;
    let mut aad = SEALED_MAGIC.to_vec();
    aad.extend_from_slice(&len.to_be_bytes());
    aad.extend_from_slice(&header);
    let body = key.encrypt(&aad, archive)?;
    let mut out = aad;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The header of an encrypted archive: whose it is and under which key.
pub struct SealedHeader {
    pub account_id: i64,
    pub key_id: String,
    header_end: usize,
}

pub fn sealed_header(bytes: &[u8]) -> Result<SealedHeader, BackupError> {
    let bad = || BackupError::Invalid("not an encrypted Klaxon archive".into());
    if !is_sealed(bytes) || bytes.len() < 12 {
        return Err(bad());
    }
    let len_bytes: [u8; 4] = bytes[8..12].try_into().map_err(|_| bad())?;
    let len = u32::from_be_bytes(len_bytes) as usize;
    let header_end = 12usize.checked_add(len).ok_or_else(bad)?;
    let header: Value =
        serde_json::from_slice(bytes.get(12..header_end).ok_or_else(bad)?).map_err(|_| bad())?;
    Ok(SealedHeader {
        account_id: header["account_id"].as_i64().ok_or_else(bad)?,
        key_id: header["key_id"].as_str().ok_or_else(bad)?.to_string(),
        header_end,
    })
}

/// Decrypts an archive with the tenant's key as stored in `store`: fails with
/// [`BackupError::KeyDestroyed`] once the tenant was purged.
pub async fn open(store: &Store, kek: &Kek, bytes: &[u8]) -> Result<Vec<u8>, BackupError> {
    let header = sealed_header(bytes)?;
    let rec = store
        .tenant_key(header.account_id)
        .await?
        .ok_or(BackupError::NoKey(header.account_id))?;
    if rec.destroyed_at != 0 {
        return Err(BackupError::KeyDestroyed(header.account_id));
    }
    if rec.key_id != header.key_id {
        return Err(BackupError::Invalid(format!(
            "the archive was sealed with key {}, the account's key is {}",
            header.key_id, rec.key_id
        )));
    }
    let key = kek.unwrap(&rec)?;
    let (aad, body) = bytes.split_at(header.header_end);
    Ok(key.decrypt(aad, body)?)
}

/// Builds the gzipped tar of a per-account backup.
pub fn build_archive(
    account_id: i64,
    tables: &[BackupTable],
    taken_at: Millis,
) -> Result<Vec<u8>, BackupError> {
    let mtime = u64::try_from(taken_at / 1000).unwrap_or(0);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut files = Vec::new();
    for t in tables {
        let mut body = Vec::new();
        for row in &t.rows {
            serde_json::to_writer(&mut body, row).map_err(std::io::Error::from)?;
            body.push(b'\n');
        }
        let path = format!("data/{}.jsonl", t.table);
        files.push(json!({
            "path": path,
            "table": t.table,
            "objects": t.rows.len(),
            "sha256": hex::encode(Sha256::digest(&body)),
        }));
        append(&mut tar, &path, &body, mtime)?;
    }
    let manifest = json!({
        "format": "klaxon-backup",
        "schema_version": BACKUP_SCHEMA_VERSION,
        "klaxon_version": env!("CARGO_PKG_VERSION"),
        "account_id": account_id,
        "taken_at": taken_at,
        "files": files,
    });
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::from)?;
    manifest_bytes.push(b'\n');
    append(&mut tar, "manifest.json", &manifest_bytes, mtime)?;
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    Ok(gz.finish()?)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    body: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, body)
}

/// A read per-account archive.
pub struct ReadArchive {
    pub account_id: i64,
    pub tables: Vec<BackupTable>,
    /// When it was taken (`exported_at` of an export package; 0 for a backup).
    pub taken_at: i64,
    /// The regions a transfer package names (`manifest.transfer`); `None` otherwise.
    pub transfer: Option<crate::export::TransferRegions>,
}

/// Reads a (decrypted) per-account archive, checking every file against the manifest.
pub fn read_archive(bytes: &[u8]) -> Result<ReadArchive, BackupError> {
    read_tables(bytes, "klaxon-backup", BACKUP_SCHEMA_VERSION, "backup")
}

/// Reads a full export package (`/account/export/create`, `klaxon admin tenant transfer`),
/// checking every file against its manifest: what `klaxon admin tenant import` writes into
/// a new tenant (SVC-215).
pub fn read_export_archive(bytes: &[u8]) -> Result<ReadArchive, BackupError> {
    read_tables(
        bytes,
        "klaxon-export",
        crate::export::SCHEMA_VERSION,
        "export package",
    )
}

fn read_tables(
    bytes: &[u8],
    format: &str,
    schema_version: u32,
    what: &str,
) -> Result<ReadArchive, BackupError> {
    let bad = |m: String| BackupError::Invalid(format!("not a valid Klaxon {what}: {m}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.display().to_string();
        let mut body = Vec::new();
        entry.read_to_end(&mut body)?;
        files.push((path, body));
    }
    let manifest = files
        .iter()
        .find(|(p, _)| p == "manifest.json")
        .ok_or_else(|| bad("no manifest.json".into()))?;
    let manifest: Value =
        serde_json::from_slice(&manifest.1).map_err(|e| bad(format!("manifest: {e}")))?;
    if manifest["format"] != format {
        return Err(bad(format!("manifest.format is not {format}")));
    }
    if manifest["schema_version"].as_u64() != Some(u64::from(schema_version)) {
        return Err(bad(format!(
            "schema_version {} is not {schema_version}",
            manifest["schema_version"]
        )));
    }
    let account_id = manifest["account_id"]
        .as_i64()
        .ok_or_else(|| bad("manifest.account_id".into()))?;
    let mut tables = Vec::new();
    for f in manifest["files"].as_array().into_iter().flatten() {
        let (Some(path), Some(table), Some(sha)) = (
            f["path"].as_str(),
            f["table"].as_str(),
            f["sha256"].as_str(),
        ) else {
            return Err(bad(
                "manifest.files: an entry lacks path, table or sha256".into()
            ));
        };
        let body = files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b)
            .ok_or_else(|| bad(format!("{path} is missing")))?;
        if hex::encode(Sha256::digest(body)) != sha {
            return Err(bad(format!("{path}: SHA-256 differs from the manifest")));
        }
        let mut rows = Vec::new();
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let row: Map<String, Value> =
                serde_json::from_slice(line).map_err(|e| bad(format!("{path}: {e}")))?;
            rows.push(row);
        }
        tables.push(BackupTable {
            table: table.to_string(),
            rows,
        });
    }
    let t = &manifest["transfer"];
    let transfer = match (
        t["source_region"].as_str(),
        t["destination_region"].as_str(),
    ) {
        (Some(s), Some(d)) => Some(crate::export::TransferRegions {
            source_region: s.to_string(),
            destination_region: d.to_string(),
        }),
        _ => None,
    };
    Ok(ReadArchive {
        account_id,
        tables,
        taken_at: manifest["exported_at"].as_i64().unwrap_or(0),
        transfer,
    })
}

/// What the certificate says about where the purge came from and the tenant's buffer.
pub struct PurgeContext {
    pub region: String,
    /// `saas` or `self_hosted`.
    pub mode: &'static str,
    /// `purge_date_reached` (the job) or `operator_request` (the CLI).
    pub trigger: String,
    pub reason: String,
    pub actor: String,
    pub buffer_start: Option<Millis>,
    pub buffer_end: Option<Millis>,
    pub started_at: Millis,
    pub finished_at: Millis,
    /// The purge's log lines, hashed into the certificate.
    pub log: Vec<String>,
}

fn iso(ms: Millis) -> Value {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| Value::from(t.to_string()))
        .unwrap_or(Value::Null)
}

/// Who purges, where, and why: what a purge certificate states besides the counts.
pub struct PurgeJob<'a> {
    pub actor: &'a str,
    pub region: &'a str,
    /// `purge_date_reached` (the job), `operator_request` (the CLI) or `region_transfer`
    /// (the source copy of a tenant moved to another region, SVC-215).
    pub trigger: &'a str,
    pub reason: &'a str,
}

fn iso_text(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Purges one tenant and issues its certificate (SVC-190, SVC-191): the one purge behind
/// `klaxon admin tenant purge`, `klaxon admin tenant transfer-complete` and the operator
/// API. In SaaS mode only a tenant that is `ended` with its purge date passed, or
/// `purging`; a legal hold in force pauses it (SVC-192). The store deletes every row of the
/// tenant outside the operator records and destroys its data key in one transaction, the
/// verification scan must find nothing left, and only then is the certificate signed (when
/// `signer` is given), stored (with the notice to the owner) and returned. `now` is read at
/// the start and at the end; `progress` gets each table with its deleted rows.
pub async fn purge_and_certify(
    store: &Store,
    saas: Option<&klaxon_store::SaasSettings>,
    signer: Option<&klaxon_store::signing::OperatorSigner>,
    account: i64,
    job: &PurgeJob<'_>,
    now: impl Fn() -> Millis,
    mut progress: impl FnMut(&str, u64),
) -> Result<PurgeCertificateRecord, BackupError> {
    use klaxon_saas::state::ServiceState;
    let refuse = |m: String| Err(BackupError::Invalid(m));
    let started = now();
    let (buffer_start, buffer_end) = match saas {
        Some(settings) => {
            let tenant = store
                .saas_tenant(settings, account, started)
                .await
                .map_err(|e| BackupError::Invalid(e.to_string()))?;
            let Some(t) = tenant else {
                if store.account(account).await?.is_none() {
                    return refuse(format!("unknown account {account}"));
                }
                return refuse(format!(
                    "account {account} is active: a tenant is purged only after its purge date \
                     (release or termination sets it, SVC-186/187)"
                ));
            };
            match t.state {
                ServiceState::Ended(_) => match t.purge_at {
                    Some(p) if p.as_millisecond() <= started => {
                        (Some(t.since.as_millisecond()), Some(p.as_millisecond()))
                    }
                    Some(p) => {
                        return refuse(format!(
                            "account {account} is {}: its purge date is {p}; the data is kept \
                             until then (SVC-187, SVC-189)",
                            t.state
                        ));
                    }
                    None => {
                        return refuse(format!(
                            "account {account} is {} without a purge date",
                            t.state
                        ));
                    }
                },
                ServiceState::Purging => (
                    Some(t.since.as_millisecond()),
                    t.purge_at.map(|p| p.as_millisecond()),
                ),
                ServiceState::Purged => {
                    return refuse(format!(
                        "account {account} is already purged (`klaxon admin tenant certificates \
                         --account {account}` prints its certificate)"
                    ));
                }
                other => {
                    return refuse(format!(
                        "account {account} is {other}: a tenant is purged only after its purge \
                         date (SVC-189)"
                    ));
                }
            }
        }
        None => {
            if store.account(account).await?.is_none() {
                return refuse(format!("unknown account {account}"));
            }
            (None, None)
        }
    };
    // SVC-192: a legal hold in force pauses the purge, in either mode.
    let holds = store
        .legal_holds_unlifted(account)
        .await
        .map_err(|e| BackupError::Invalid(e.to_string()))?;
    let at = jiff::Timestamp::from_millisecond(started)
        .map_err(|e| BackupError::Invalid(format!("clock: {e}")))?;
    if klaxon_saas::governance::purge_paused(&holds, at) {
        let ids: Vec<String> = holds.iter().map(|h| h.hold_id.to_string()).collect();
        return refuse(format!(
            "account {account} is under a legal hold ({}): its purge waits until the hold is \
             lifted (SVC-192)",
            ids.join(", ")
        ));
    }
    let mut log = vec![format!(
        "{} purge of account {account} started by {} ({})",
        iso_text(started),
        job.actor,
        job.trigger
    )];
    let outcome = store
        .purge_tenant(account, started, job.actor, |table, n| {
            progress(table, n);
            log.push(format!("deleted {n} rows of {table}"));
        })
        .await?;
    match &outcome.key {
        Some(k) => log.push(format!(
            "data key {} destroyed at {}",
            k.key_id,
            iso_text(k.destroyed_at)
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
        return refuse(format!(
            "purge of account {account} incomplete, rows remain in: {}; run it again",
            left.join(", ")
        ));
    }
    log.push("verification scan: no row of the tenant remains".to_string());
    let finished = now().max(started);
    let ctx = PurgeContext {
        region: job.region.to_string(),
        mode: if saas.is_some() {
            "saas"
        } else {
            "self_hosted"
        },
        trigger: job.trigger.to_string(),
        reason: job.reason.to_string(),
        actor: job.actor.to_string(),
        buffer_start,
        buffer_end,
        started_at: started,
        finished_at: finished,
        log,
    };
    let mut cert = certificate(&outcome, &ctx)?;
    if let Some(signer) = signer {
        sign_certificate(&mut cert, signer)?;
    }
    store.insert_purge_certificate(&cert).await?;
    Ok(cert)
}

/// The purge certificate (SVC-191) as stored and printed: the JSON document with a
/// `digest` member, the SHA-256 of the document without it.
pub fn certificate(
    outcome: &PurgeOutcome,
    ctx: &PurgeContext,
) -> Result<PurgeCertificateRecord, BackupError> {
    let certificate_id = format!("pc-{}-{}", outcome.account_id, hex::encode(random::<8>()?));
    let tables: Vec<Value> = outcome
        .tables
        .iter()
        .map(
            |t| json!({"table": t.table, "rows_deleted": t.deleted, "rows_remaining": t.remaining}),
        )
        .collect();
    let operator_records: Vec<&str> = EXPORT_TABLES
        .iter()
        .filter(|(_, c)| matches!(c, TableClass::OperatorRecord))
        .map(|(t, _)| *t)
        .collect();
    let key = match &outcome.key {
        Some(k) => json!({
            "key_id": k.key_id,
            "key_encryption_key_id": k.kek_id,
            "created_at": iso(k.created_at),
            "destroyed_at": iso(k.destroyed_at),
            "destroyed": k.destroyed_at != 0 && k.wrapped_key.is_empty(),
            "receipt": hex::encode(Sha256::digest(
                format!("{}:{}:{}:destroyed:{}", k.account_id, k.key_id, k.kek_id, k.destroyed_at)
                    .as_bytes()
            )),
        }),
        None => Value::Null,
    };
    let backups = match (&outcome.key, ctx.mode) {
        (Some(_), _) => json!({
            "per_account_archives": "encrypted under the destroyed data key: unreadable from now on",
            "crypto_shredded": true,
            "whole_database_snapshots": "not encrypted per tenant: they expire on the operator's backup schedule",
        }),
        (None, "saas") => json!({
            "per_account_archives": "none was taken (the tenant never had a data key)",
            "crypto_shredded": true,
            "whole_database_snapshots": "not encrypted per tenant: they expire on the operator's backup schedule",
        }),
        (None, _) => json!({
            "per_account_archives": "not encrypted (self-hosted mode has no key-encryption key): they are not crypto-shredded and stay readable until the installation deletes them",
            "crypto_shredded": false,
            "whole_database_snapshots": "not crypto-shredded: they expire on the installation's backup schedule",
        }),
    };
    let log_sha = hex::encode(Sha256::digest(ctx.log.join("\n").as_bytes()));
    let mut doc = json!({
        "format": "klaxon-purge-certificate",
        "version": 1,
        "certificate_id": certificate_id,
        "tenant_id": outcome.account_id,
        "region": ctx.region,
        "deployment_mode": ctx.mode,
        "trigger": ctx.trigger,
        "reason": ctx.reason,
        "actor": ctx.actor,
        "buffer_start": ctx.buffer_start.map_or(Value::Null, iso),
        "buffer_end": ctx.buffer_end.map_or(Value::Null, iso),
        "purge_started_at": iso(ctx.started_at),
        "purge_finished_at": iso(ctx.finished_at),
        "stores": [{
            "store": "primary database",
            "tables": tables,
            "rows_deleted": outcome.tables.iter().map(|t| t.deleted).sum::<u64>(),
            "verified": outcome.verified(),
        }],
        "data_key": key,
        "backups": backups,
        "software_version": env!("CARGO_PKG_VERSION"),
        "job_log_sha256": log_sha,
        "operator_records_kept": operator_records,
    });
    let body_without_digest = serde_json::to_string(&doc).map_err(std::io::Error::from)?;
    let digest = hex::encode(Sha256::digest(body_without_digest.as_bytes()));
    if let Value::Object(map) = &mut doc {
        map.insert("digest".into(), Value::from(digest.clone()));
    }
    let body = serde_json::to_string_pretty(&doc).map_err(std::io::Error::from)?;
    Ok(PurgeCertificateRecord {
        certificate_id,
        account_id: outcome.account_id,
        issued_at: ctx.finished_at,
        body,
        sha256: digest,
        signature: String::new(),
        signing_key_id: String::new(),
    })
}

/// SVC-191: signs a certificate with the operator's key. The signature is of the
/// certificate's `digest` (the SHA-256 of the document without `digest` and `signature`), so
/// any change to any field breaks either the digest or the signature. It is added to the
/// document as `signature` {algorithm, key_id, public_key, value}.
pub fn sign_certificate(
    cert: &mut PurgeCertificateRecord,
    signer: &klaxon_store::signing::OperatorSigner,
) -> Result<(), BackupError> {
    let mut doc: Value = serde_json::from_str(&cert.body).map_err(std::io::Error::from)?;
    let value = signer.sign(cert.sha256.as_bytes());
    if let Value::Object(map) = &mut doc {
        map.insert(
            "signature".into(),
            json!({
                "algorithm": klaxon_store::signing::ALGORITHM,
                "key_id": signer.key_id,
                "public_key": signer.public_key,
                "value": value,
            }),
        );
    }
    cert.body = serde_json::to_string_pretty(&doc).map_err(std::io::Error::from)?;
    cert.signature = value;
    cert.signing_key_id = signer.key_id.clone();
    Ok(())
}

/// What an offline check of a certificate found (`klaxon admin verify-certificate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateCheck {
    /// The digest matches and the signature is the given (or, without one, the named) key's.
    Valid { key_id: String, public_key: String },
    /// Not a certificate, or its digest does not match its contents: it was altered.
    Altered,
    /// The document carries no signature (issued unsigned, e.g. by a self-hosted install).
    Unsigned,
    /// The signature does not verify under the key.
    BadSignature { key_id: String },
}

/// SVC-191: checks a certificate offline: its digest, then its signature under
/// `public_key` (hex) — the operator's published key — or, when none is given, under the key
/// the certificate names (which the caller must still compare with the published one).
pub fn check_certificate(body: &str, public_key: Option<&str>) -> CertificateCheck {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(body) else {
        return CertificateCheck::Altered;
    };
    let signature = map.remove("signature");
    let Some(Value::String(digest)) = map.remove("digest") else {
        return CertificateCheck::Altered;
    };
    let recomputed = serde_json::to_string(&Value::Object(map))
        .map(|text| hex::encode(Sha256::digest(text.as_bytes())))
        .unwrap_or_default();
    if recomputed != digest {
        return CertificateCheck::Altered;
    }
    let Some(Value::Object(sig)) = signature else {
        return CertificateCheck::Unsigned;
    };
    let field = |k: &str| sig.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let key_id = field("key_id");
    let key = public_key.map_or_else(|| field("public_key"), |k| k.trim().to_string());
    if field("algorithm") != klaxon_store::signing::ALGORITHM
        || !klaxon_store::signing::verify(&key, digest.as_bytes(), &field("value"))
    {
        return CertificateCheck::BadSignature { key_id };
    }
    CertificateCheck::Valid {
        key_id,
        public_key: key,
    }
}

/// Checks a certificate's digest: the SHA-256 of the document without its `digest` and
/// `signature` members (the signature is checked by [`check_certificate`]).
pub fn verify_certificate(body: &str) -> bool {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    map.remove("signature");
    let Some(Value::String(digest)) = map.remove("digest") else {
        return false;
    };
    serde_json::to_string(&Value::Object(map))
        .map(|text| hex::encode(Sha256::digest(text.as_bytes())) == digest)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::parse(&"11".repeat(32)).unwrap()
    }

    // spec: SVC-185
    #[test]
    fn a_sealed_archive_names_its_tenant_and_detects_tampering() {
        let key = kek().unwrap(&kek().new_tenant_key(9, 1).unwrap()).unwrap();
        let sealed = seal(&key, b"archive bytes").unwrap();
        assert!(is_sealed(&sealed));
        let h = sealed_header(&sealed).unwrap();
        assert_eq!(h.account_id, 9);
        let (aad, body) = sealed.split_at(h.header_end);
        assert_eq!(key.decrypt(aad, body).unwrap(), b"archive bytes");
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let (aad, body) = tampered.split_at(h.header_end);
        assert!(key.decrypt(aad, body).is_err());
    }

    #[test]
    fn an_archive_round_trips_and_is_checked_against_its_manifest() {
        let mut row = Map::new();
        row.insert("account_id".into(), Value::from(3));
        row.insert("name".into(), Value::from("ops"));
        let tables = vec![BackupTable {
            table: "teams".into(),
            rows: vec![row],
        }];
        let bytes = build_archive(3, &tables, 1_700_000_000_000).unwrap();
        let back = read_archive(&bytes).unwrap();
        assert_eq!(back.account_id, 3);
        assert_eq!(back.tables, tables);
        assert!(read_archive(b"not a tarball").is_err());
    }
}
