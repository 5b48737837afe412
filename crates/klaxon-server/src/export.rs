//! Full export archives (service-agreement.md SVC-182; docs/data-export.md).
//!
//! [`build_archive`] turns the store's snapshot (`Store::export_snapshot`) into one gzipped
//! tar: `data/<table>.jsonl` per exported table (one JSON object per line, in the store's
//! column names) and `manifest.json` with the object count, byte size and SHA-256 of every
//! file, the export time, the schema version, and what was left out (secrets, operator
//! records). `GET /account/export/download/{token}` serves a ready archive to whoever holds
//! the link — the token is the credential, shown once at creation and valid for 7 days — and
//! audits every download. [`sweep`] deletes archives whose link expired.

use std::io::Write;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::Extensions;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_core::model::Millis;
use klaxon_store::{EXPORT_TABLES, ExportedTable, TableClass};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// The archive layout's version: bumped when a file's meaning changes.
pub const SCHEMA_VERSION: u32 = 1;

pub fn routes() -> Router<AppState> {
    Router::new().route("/account/export/download/{token}", get(download))
}

/// The download URL of `token` under the node's base URL.
pub fn download_url(state: &AppState, token: &str) -> String {
    format!("{}/account/export/download/{token}", state.base_url)
}

/// A new download token (returned once) and the hash that is stored.
pub fn new_token() -> (String, String) {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let hash = token_hash(&token);
    (token, hash)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who and what an archive is for, written into its manifest.
pub struct ArchiveMeta {
    pub account_id: i64,
    pub export_id: i64,
    pub exported_at: Millis,
    /// A cross-region transfer package (SVC-215): the region it leaves and the region it is
    /// for, so the import can refuse a package that arrives at the wrong deployment. `None`
    /// for a tenant's own export.
    pub transfer: Option<TransferRegions>,
}

/// The regions a transfer package names in its manifest (`transfer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRegions {
    pub source_region: String,
    pub destination_region: String,
}

/// A built archive: gzipped tar bytes and their SHA-256.
pub struct Archive {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

fn iso(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// What the manifest lists as left out: every secret column and secret table, and the
/// operator records (SVC-180), so the reader knows the archive is complete otherwise.
fn left_out() -> (Vec<Value>, Vec<&'static str>) {
    let mut redacted = Vec::new();
    let mut operator = Vec::new();
    for (table, class) in EXPORT_TABLES {
        match class {
            TableClass::Exported { redacted: cols } => {
                for col in *cols {
                    redacted.push(json!({"table": table, "column": col, "reason": "secret"}));
                }
            }
            TableClass::Secret => {
                redacted.push(json!({"table": table, "column": "*", "reason": "secret"}));
            }
            TableClass::OperatorRecord => operator.push(*table),
            TableClass::Internal => {}
        }
    }
    (redacted, operator)
}

/// Builds the archive. Pure apart from memory: the same snapshot and meta give the same
/// files (the tar headers carry the export time as their modification time).
pub fn build_archive(tables: &[ExportedTable], meta: &ArchiveMeta) -> std::io::Result<Archive> {
    let mtime = u64::try_from(meta.exported_at / 1000).unwrap_or(0);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut files = Vec::new();
    for t in tables {
        let mut body = Vec::new();
        for row in &t.rows {
            serde_json::to_writer(&mut body, row)?;
            body.push(b'\n');
        }
        let path = format!("data/{}.jsonl", t.table);
        files.push(json!({
            "path": path,
            "table": t.table,
            "objects": t.rows.len(),
            "bytes": body.len(),
            "sha256": hex::encode(Sha256::digest(&body)),
        }));
        append(&mut tar, &path, &body, mtime)?;
    }
    let (redacted, operator_records) = left_out();
    let mut manifest = json!({
        "format": "klaxon-export",
        "schema_version": SCHEMA_VERSION,
        "klaxon_version": env!("CARGO_PKG_VERSION"),
        "account_id": meta.account_id,
        "export_id": meta.export_id,
        "exported_at": meta.exported_at,
        "exported_at_iso": iso(meta.exported_at),
        "files": files,
        "attachments": [],
        "redacted": redacted,
        "operator_records_not_included": operator_records,
    });
    if let (Some(t), Some(m)) = (&meta.transfer, manifest.as_object_mut()) {
        m.insert(
            "transfer".into(),
            json!({"source_region": t.source_region, "destination_region": t.destination_region}),
        );
    }
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    manifest_bytes.push(b'\n');
    append(&mut tar, "manifest.json", &manifest_bytes, mtime)?;
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    let bytes = gz.finish()?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(Archive { bytes, sha256 })
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    body: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, body)
}

async fn download(
    State(state): State<AppState>,
    Path(token): Path<String>,
    extensions: Extensions,
) -> Response {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            "no such export, or its link expired\n",
        )
            .into_response()
    };
    // Issued tokens are 64 hex digits; anything else cannot match, so the store is not asked.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return not_found();
    }
    let found = match state
        .store
        .export_archive(&token_hash(&token), state.clock.now())
        .await
    {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read an export archive");
            return (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n").into_response();
        }
    };
    let ip = crate::openapi::client_ip(&extensions);
    crate::audit::record_export_download(&state, found.account_id, found.export_id, &ip).await;
    let name = format!(
        "klaxon-export-{}-{}.tar.gz",
        found.account_id, found.export_id
    );
    (
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (
                header::HeaderName::from_static("x-klaxon-sha256"),
                found.sha256,
            ),
        ],
        found.archive,
    )
        .into_response()
}

/// Deletes expired archives (and fails abandoned builds) at the node's `now`.
pub async fn sweep(state: &AppState) -> Result<u64, klaxon_store::StoreError> {
    let deleted = state.store.sweep_exports(state.clock.now()).await?;
    if deleted > 0 {
        tracing::info!(archives = deleted, "expired export archives deleted");
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;
    use std::io::Read;

    fn row(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect()
    }

    fn unpack(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        if let Ok(entries) = archive.entries() {
            for mut e in entries.flatten() {
                let path = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let mut body = Vec::new();
                if e.read_to_end(&mut body).is_ok() {
                    out.push((path, body));
                }
            }
        }
        out
    }

    #[test]
    fn the_manifest_counts_and_hashes_every_file() {
        // spec: SVC-182 (JSON Lines per object type, manifest with counts and SHA-256 per file,
        // export time, schema version; secrets listed as redacted)
        let tables = vec![
            ExportedTable {
                table: "channels",
                rows: vec![
                    row(&[("channel_id", json!(1)), ("channel_name", json!("Web"))]),
                    row(&[("channel_id", json!(2)), ("channel_name", json!("数据库"))]),
                ],
            },
            ExportedTable {
                table: "incidents",
                rows: vec![],
            },
        ];
        let meta = ArchiveMeta {
            account_id: 7,
            export_id: 42,
            exported_at: 1_780_000_000_000,
            transfer: None,
        };
        let archive = build_archive(&tables, &meta).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(archive.sha256, hex::encode(Sha256::digest(&archive.bytes)));
        let files = unpack(&archive.bytes);
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "data/channels.jsonl",
                "data/incidents.jsonl",
                "manifest.json"
            ]
        );
        let channels = &files[0].1;
        let lines: Vec<Value> = channels
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap_or(Value::Null))
            .collect();
        assert_eq!(lines[1]["channel_name"], "数据库");
        let manifest: Value = serde_json::from_slice(&files[2].1).unwrap_or(Value::Null);
        assert_eq!(manifest["schema_version"], SCHEMA_VERSION);
        assert_eq!(manifest["account_id"], 7);
        assert_eq!(manifest["exported_at"], 1_780_000_000_000i64);
        assert_eq!(manifest["files"][0]["objects"], 2);
        assert_eq!(manifest["files"][0]["bytes"], channels.len());
        assert_eq!(
            manifest["files"][0]["sha256"],
            hex::encode(Sha256::digest(channels))
        );
        assert_eq!(manifest["files"][1]["objects"], 0);
        let redacted = manifest["redacted"].as_array().cloned().unwrap_or_default();
        assert!(redacted.contains(
            &json!({"table": "integrations", "column": "integration_key", "reason": "secret"})
        ));
        assert!(
            redacted.contains(&json!({"table": "app_keys", "column": "*", "reason": "secret"}))
        );
        assert!(
            manifest["operator_records_not_included"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("saas_ledger_entries")))
        );
        // Same snapshot, same archive: nothing in it depends on the wall clock.
        let again = build_archive(&tables, &meta).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(again.sha256, archive.sha256);
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash_a, token_hash(&a));
        assert_ne!(hash_a, a);
    }
}
