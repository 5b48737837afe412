//! `/account/export/{create,list,info}` (Klaxon routes; service-agreement.md SVC-182, §21
//! keeps them for self-hosted installs; docs/data-export.md): an account administrator takes
//! a full export of everything the account owns.
//!
//! `create` builds the archive at once from one consistent snapshot and answers its download
//! link, which is shown only here and is valid for 7 days; `list` and `info` show the
//! account's exports without it. One export is built at a time and at most three are started
//! in any 24 hours (refused with `RequestTooFrequently`, nothing started). Exporting is a
//! floor of the agreement: it works in every service state before the purge (SVC-022), so
//! `saas::check_write` lets it through and the only refusals are a purging or purged tenant
//! and an export block staff set with a termination for serious breach (SVC-232).
//! The audit hook records every `create`; downloads are audited by the download route.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_saas::state::ServiceState;
use klaxon_store::{BeginExport, ExportRecord, ExportRefusal};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::export::{ArchiveMeta, build_archive, download_url, new_token};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/account/export/create",
    "/account/export/list",
    "/account/export/info",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/account/export/create" => Some(create(state, caller).await.map(Some)),
        "/account/export/list" => Some(list(state, caller).await.map(Some)),
        "/account/export/info" => Some(info(state, caller, args).await.map(Some)),
        _ => None,
    }
}

/// Times in the Open API's Unix seconds.
fn wire(r: &ExportRecord) -> Value {
    json!({
        "export_id": r.export_id,
        "status": r.status,
        "requested_by": r.requested_by,
        "created_at": r.created_at / 1000,
        "finished_at": r.finished_at / 1000,
        "expires_at": r.expires_at / 1000,
        "size_bytes": r.size_bytes,
        "sha256": r.sha256,
        "error": r.error,
    })
}

fn failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("cannot export the account: {e}"))
}

async fn create(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    if let Some(saas) = &state.saas {
        let service = saas.state_of(caller.account_id);
        // SVC-232: staff may block the export of a tenant terminated for serious breach,
        // with a legal basis; read from the store, exports are rare.
        let blocked = state
            .store
            .saas_export_blocked(caller.account_id)
            .await
            .map_err(failed)?;
        let flags = klaxon_saas::state::Restrictions {
            export_blocked: blocked.is_some(),
            ..Default::default()
        };
        let caps = klaxon_saas::state::capabilities(service, flags, false);
        if !caps.export {
            let message = match blocked {
                Some(basis) if !matches!(service, ServiceState::Purging | ServiceState::Purged) => {
                    format!(
                        "the operator has blocked the export of this account (SVC-232): {basis}"
                    )
                }
                _ => "the account's data is being purged; it can no longer be exported".into(),
            };
            return Err(ApiError::new(ErrorCode::AccessDenied, message));
        }
    }
    let now = state.clock.now();
    let export_id = match state
        .store
        .begin_export(caller.account_id, caller.member_id, now)
        .await
    {
        Ok(id) => id,
        Err(BeginExport::Refused(ExportRefusal::InProgress)) => {
            return Err(ApiError::new(
                ErrorCode::RequestTooFrequently,
                "an export of this account is being built; wait for it to finish",
            ));
        }
        Err(BeginExport::Refused(ExportRefusal::DailyLimit { retry_at })) => {
            return Err(ApiError::new(
                ErrorCode::RequestTooFrequently,
                format!(
                    "at most {} exports may be started in 24 hours; the next can start at {}",
                    klaxon_store::EXPORTS_PER_DAY,
                    retry_at / 1000
                ),
            ));
        }
        Err(BeginExport::Store(e)) => return Err(failed(e)),
    };
    match build(state, caller.account_id, export_id, now).await {
        Ok(answer) => Ok(answer),
        Err(e) => {
            // The row says why, so `list` explains the failure; a new export may start.
            let _ = state
                .store
                .fail_export(caller.account_id, export_id, &e.message, state.clock.now())
                .await;
            Err(e)
        }
    }
}

async fn build(
    state: &AppState,
    account_id: i64,
    export_id: i64,
    now: klaxon_core::model::Millis,
) -> Result<Value, ApiError> {
    let tables = state
        .store
        .export_snapshot(account_id)
        .await
        .map_err(failed)?;
    let meta = ArchiveMeta {
        account_id,
        export_id,
        exported_at: now,
        transfer: None,
    };
    // Compressing a large account takes a while: off the request threads.
    let archive = tokio::task::spawn_blocking(move || build_archive(&tables, &meta))
        .await
        .map_err(failed)?
        .map_err(failed)?;
    let (token, token_hash) = new_token();
    let record = state
        .store
        .finish_export(
            account_id,
            export_id,
            &archive.bytes,
            &archive.sha256,
            &token_hash,
            state.clock.now(),
        )
        .await
        .map_err(failed)?;
    tracing::info!(
        account_id,
        export_id,
        bytes = archive.bytes.len(),
        "full export built"
    );
    let mut answer = wire(&record);
    answer["download_url"] = json!(download_url(state, &token));
    Ok(answer)
}

async fn list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let items: Vec<Value> = state
        .store
        .list_exports(caller.account_id)
        .await
        .map_err(failed)?
        .iter()
        .map(wire)
        .collect();
    Ok(json!({ "items": items, "total": items.len() }))
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let export_id = args.required_id("export_id")?;
    match state
        .store
        .export_record(caller.account_id, export_id)
        .await
        .map_err(failed)?
    {
        Some(r) => Ok(wire(&r)),
        None => Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("export {export_id} not found"),
        )),
    }
}
