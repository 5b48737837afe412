//! Operator actions on a tenant's service over HTTP (docs/saas.md "Operator API"): the
//! terminations and communication packs that `klaxon admin tenant terminate | release |
//! terminations | buy-pack | packs` also carry out, for an operator's back office. Same
//! staff-token authentication and `saas_audit` record as the rest of the operator API
//! (`operator.rs`), and the same store calls as the CLI, so both paths apply the same rules
//! (SVC-072, SVC-231 … SVC-235, SVC-238) and a refused request changes nothing.
//!
//! None of these read tenant data, so no access grant is involved (SVC-220 concerns data);
//! the actor recorded for each change is `staff:<id>`.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_saas::money::{Currency, parse_decimal};
use klaxon_saas::quota::UnitType;
use klaxon_store::{
    NewTermination, PackRecord, PurchaseAcceptance, SaasFailure, TerminationKind, TerminationRecord,
};
use serde_json::{Value, json};

use crate::openapi::Args;
use crate::state::AppState;

/// The operator paths of this module.
pub const PATHS: &[&str] = &[
    "/operator/tenant/terminate",
    "/operator/tenant/release",
    "/operator/tenant/termination/list",
    "/operator/tenant/pack/buy",
    "/operator/tenant/pack/list",
    "/operator/tenant/export-block/lift",
    "/operator/tenant/transfer",
    "/operator/tenant/transfer/list",
    "/operator/tenant/transfer/complete",
];

/// Runs one of [`PATHS`]; `None` for any other path.
pub async fn dispatch(
    state: &AppState,
    path: &str,
    account_id: i64,
    args: &Args,
    actor: &str,
) -> Option<Result<Value, ApiError>> {
    let result = match path {
        "/operator/tenant/terminate" => terminate(state, account_id, args, actor).await,
        "/operator/tenant/release" => release(state, account_id, args, actor).await,
        "/operator/tenant/termination/list" => terminations(state, account_id).await,
        "/operator/tenant/pack/buy" => buy_pack(state, account_id, args, actor).await,
        "/operator/tenant/pack/list" => packs(state, account_id).await,
        "/operator/tenant/export-block/lift" => {
            lift_export_block(state, account_id, args, actor).await
        }
        "/operator/tenant/transfer" => transfer(state, account_id, args, actor).await,
        "/operator/tenant/transfer/list" => transfers(state, account_id).await,
        "/operator/tenant/transfer/complete" => {
            complete_transfer(state, account_id, args, actor).await
        }
        _ => return None,
    };
    Some(result)
}

fn saas(state: &AppState) -> Result<&crate::saas::SaasRuntime, ApiError> {
    state
        .saas
        .as_deref()
        .ok_or_else(|| ApiError::internal("the operator API runs in SaaS mode only"))
}

/// A refusal names the rule or field (400); anything else is the server's fault.
fn failure(e: SaasFailure) -> ApiError {
    match e {
        SaasFailure::Rule(r) => {
            let (_, code) = r.api_answer();
            let code = match code {
                "InvalidParameter" => ErrorCode::InvalidParameter,
                _ => ErrorCode::BadRequest,
            };
            ApiError::new(code, r.to_string())
        }
        SaasFailure::UnknownAccount(id) => ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("account_id: no account {id}"),
        ),
        other => ApiError::internal(format!("operator api: {other}")),
    }
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// An instant given in Unix seconds, as milliseconds.
fn instant(args: &Args, name: &str) -> Result<Option<i64>, ApiError> {
    match args.i64(name)? {
        None => Ok(None),
        Some(s) if s > 0 => s
            .checked_mul(1000)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(format!("{name} is out of range"))),
        Some(_) => Err(ApiError::invalid(format!(
            "{name} must be a positive Unix time in seconds"
        ))),
    }
}

fn wire_termination(r: &TerminationRecord) -> Value {
    json!({
        "termination_id": r.termination_id,
        "kind": r.kind.as_str(),
        "state": r.state,
        "effective_at": secs(r.effective_at),
        "reference": r.reference,
        "category": r.category,
        "evidence": r.evidence,
        "proposer": r.proposer,
        "approver": r.approver,
        "agreed_refund": r.agreed_refund.map(|d| d.to_string()),
        "delete_early": r.delete_early,
        "export_block_basis": r.export_block_basis,
        "created_at": secs(r.created_at),
        "actor": r.actor,
        "done_at": secs(r.done_at),
        "outcome": r.outcome,
    })
}

fn unit_name(u: UnitType) -> &'static str {
    match u {
        UnitType::Sms => "sms",
        UnitType::Voice => "voice",
        UnitType::Email => "email",
    }
}

fn wire_pack(p: &PackRecord, c: Currency) -> Value {
    json!({
        "pack_id": p.pack_id,
        "unit": unit_name(p.unit),
        "units": p.units,
        "used": p.used,
        "price": c.format(p.price),
        "currency": c.code,
        "bought_at": p.bought_at.as_second(),
        "expires_at": p.expires_at.as_second(),
    })
}

/// Carries out or schedules the termination, then reloads this node's state cache so the
/// change applies here at once (other nodes follow within their refresh).
async fn record(
    state: &AppState,
    account_id: i64,
    new: &NewTermination,
    actor: &str,
) -> Result<Value, ApiError> {
    let saas = saas(state)?;
    let rec = state
        .store
        .saas_terminate(&saas.settings, account_id, new, state.clock.now(), actor)
        .await
        .map_err(failure)?;
    if let Err(e) = saas.refresh(&state.store).await {
        tracing::error!(error = %e, "reloading tenant states failed");
    }
    Ok(wire_termination(&rec))
}

/// `kind`: `mutual`, `breach`, `operator` or `feature_removal`, with the fields of
/// `klaxon admin tenant terminate`.
async fn terminate(
    state: &AppState,
    account_id: i64,
    args: &Args,
    actor: &str,
) -> Result<Value, ApiError> {
    let kind_text = args
        .str("kind")?
        .ok_or_else(|| ApiError::invalid("kind is required"))?;
    let kind = match TerminationKind::parse(&kind_text) {
        Some(TerminationKind::Cancel) | None => {
            return Err(ApiError::invalid(format!(
                "kind {kind_text:?}: one of mutual, breach, operator, feature_removal (a release is /operator/tenant/release)"
            )));
        }
        Some(k) => k,
    };
    let mut evidence = args.str_list("evidence")?;
    let confirmation = args.str("owner_confirmation")?;
    if kind == TerminationKind::Mutual {
        if !evidence.is_empty() {
            return Err(ApiError::invalid(
                "evidence belongs to a termination for breach; a mutual one takes owner_confirmation",
            ));
        }
        evidence.extend(confirmation);
    } else if confirmation.is_some() {
        return Err(ApiError::invalid(
            "owner_confirmation belongs to a mutual termination",
        ));
    }
    let agreed_refund = match args.str("refund")? {
        Some(r) => Some(parse_decimal("refund", &r).map_err(|e| failure(e.into()))?),
        None => None,
    };
    let new = NewTermination {
        kind,
        effective_at: instant(args, "effective_at")?,
        reference: args.str("reference")?.unwrap_or_default(),
        category: args.str("category")?.unwrap_or_default(),
        evidence,
        proposer: args.str("proposer")?.unwrap_or_default(),
        approver: args.str("approver")?.unwrap_or_default(),
        agreed_refund,
        removed_at: instant(args, "removed_at")?,
        delete_early: false,
        export_block_basis: args.str("block_export")?.unwrap_or_default(),
    };
    record(state, account_id, &new, actor).await
}

/// The tenant's release asked for through the operator (SVC-235, SVC-186).
async fn release(
    state: &AppState,
    account_id: i64,
    args: &Args,
    actor: &str,
) -> Result<Value, ApiError> {
    let new = NewTermination {
        kind: TerminationKind::Cancel,
        effective_at: None,
        reference: args.str("reference")?.unwrap_or_default(),
        category: String::new(),
        evidence: Vec::new(),
        proposer: String::new(),
        approver: String::new(),
        agreed_refund: None,
        removed_at: None,
        delete_early: args.bool("delete")?.unwrap_or(false),
        export_block_basis: String::new(),
    };
    record(state, account_id, &new, actor).await
}

async fn terminations(state: &AppState, account_id: i64) -> Result<Value, ApiError> {
    saas(state)?;
    let items: Vec<Value> = state
        .store
        .saas_terminations(account_id)
        .await
        .map_err(failure)?
        .iter()
        .map(wire_termination)
        .collect();
    Ok(json!({"total": items.len(), "items": items}))
}

/// SVC-033: the acceptance an order keyed in by staff carries: `accepted_by` (the login of
/// the owner or admin who accepted the terms in force) and `accepted_from` (their client IP
/// or the signed order form's reference). The store refuses the order without it.
fn purchase_acceptance(args: &Args) -> Result<Option<PurchaseAcceptance>, ApiError> {
    let Some(by) = args.str("accepted_by")? else {
        return Ok(None);
    };
    Ok(Some(PurchaseAcceptance {
        accepted_by: by,
        accepted_from: args.str("accepted_from")?.unwrap_or_default(),
        user_agent: String::new(),
        client_type: "staff".into(),
        request_id: String::new(),
    }))
}

/// SVC-232/237: lifts the tenant's export block (two staff members, written reasons).
async fn lift_export_block(
    state: &AppState,
    account_id: i64,
    args: &Args,
    actor: &str,
) -> Result<Value, ApiError> {
    let saas = saas(state)?;
    let lift = klaxon_store::LiftExportBlock {
        reason: args.str("reason")?.unwrap_or_default(),
        reference: args.str("reference")?.unwrap_or_default(),
        proposer: args.str("proposer")?.unwrap_or_default(),
        approver: args.str("approver")?.unwrap_or_default(),
    };
    let rec = state
        .store
        .saas_lift_export_block(&saas.settings, account_id, &lift, state.clock.now(), actor)
        .await
        .map_err(failure)?;
    Ok(json!({
        "lift_id": rec.lift_id,
        "basis": rec.basis,
        "reason": rec.reason,
        "reference": rec.reference,
        "proposer": rec.proposer,
        "approver": rec.approver,
        "lifted_at": secs(rec.lifted_at),
    }))
}

/// SVC-072: a pack of the price list, paid from the funds at once.
async fn buy_pack(
    state: &AppState,
    account_id: i64,
    args: &Args,
    actor: &str,
) -> Result<Value, ApiError> {
    let saas = saas(state)?;
    let unit = match args.str("unit")?.as_deref() {
        Some("sms") => UnitType::Sms,
        Some("voice") => UnitType::Voice,
        Some("email") => UnitType::Email,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unit {other:?}: one of sms, voice, email"
            )));
        }
        None => return Err(ApiError::invalid("unit is required")),
    };
    let units = match args.i64("units")? {
        Some(n) if n > 0 => n as u64,
        Some(_) => return Err(ApiError::invalid("units must be a positive integer")),
        None => return Err(ApiError::invalid("units is required")),
    };
    let deployment = &state.config.deployment;
    // Validated at start, like the worker's copy.
    let plan = deployment
        .communication_plan()
        .map_err(|e| ApiError::internal(format!("communication price list: {e}")))?;
    let (pack, applied) = state
        .store
        .saas_buy_pack(
            &saas.settings,
            &plan,
            deployment.documents.price_list.trim(),
            account_id,
            unit,
            units,
            purchase_acceptance(args)?.as_ref(),
            state.clock.now(),
            actor,
        )
        .await
        .map_err(failure)?;
    if let Err(e) = saas.refresh(&state.store).await {
        tracing::error!(error = %e, "reloading tenant states failed");
    }
    let mut out = wire_pack(&pack, saas.settings.currency);
    out["outcome"] = json!(applied.value);
    out["state"] = json!(applied.state.to_string());
    Ok(out)
}

async fn packs(state: &AppState, account_id: i64) -> Result<Value, ApiError> {
    let currency = saas(state)?.settings.currency;
    let items: Vec<Value> = state
        .store
        .saas_packs(account_id)
        .await
        .map_err(failure)?
        .iter()
        .map(|p| wire_pack(p, currency))
        .collect();
    Ok(json!({"total": items.len(), "items": items}))
}

fn wire_transfer(t: &klaxon_store::TransferRecord) -> Value {
    json!({
        "transfer_id": t.transfer_id,
        "purpose": t.purpose,
        "destination_region": t.destination_region,
        "categories": t.categories,
        "consent_id": t.consent_id,
        "lawful_request_id": t.lawful_request_id,
        "actor": t.actor,
        "at": secs(t.at),
        "package_sha256": t.package_sha256,
        "completed_at": secs(t.completed_at),
        "completed_by": t.completed_by,
        "destination_account_id": t.destination_account_id,
    })
}

/// SVC-212/215: the tenant's full export package handed to another region, as `klaxon admin
/// tenant transfer` does: the basis (a consent of the owner, or `lawful_request_id`) checked
/// before the package is built and again when the transfer is recorded. The package comes
/// back in the answer (`package`, base64), with the SHA-256 the destination's import checks.
async fn transfer(
    state: &AppState,
    account_id: i64,
    args: &Args,
    actor: &str,
) -> Result<Value, ApiError> {
    use base64::Engine;
    let saas = saas(state)?;
    let req = klaxon_store::TransferRequest {
        account_id,
        purpose: args.str("purpose")?.unwrap_or_default(),
        destination_region: args.str("to_region")?.unwrap_or_default(),
        lawful_request_id: args.i64("lawful_request_id")?.unwrap_or(0),
    };
    let region = saas.settings.region.clone();
    state
        .store
        .saas_authorise_transfer(&region, &req)
        .await
        .map_err(failure)?;
    let now = state.clock.now();
    let tables = state
        .store
        .export_snapshot(account_id)
        .await
        .map_err(|e| ApiError::internal(format!("reading the tenant's data: {e}")))?;
    let archive = crate::export::build_archive(
        &tables,
        &crate::export::ArchiveMeta {
            account_id,
            export_id: 0,
            exported_at: now,
            transfer: Some(crate::export::TransferRegions {
                source_region: region.clone(),
                destination_region: req.destination_region.clone(),
            }),
        },
    )
    .map_err(|e| ApiError::internal(format!("building the package: {e}")))?;
    let rec = state
        .store
        .saas_record_transfer(&region, &req, &archive.sha256, actor, now)
        .await
        .map_err(failure)?;
    let mut out = wire_transfer(&rec);
    out["package"] = json!(base64::engine::general_purpose::STANDARD.encode(&archive.bytes));
    out["package_bytes"] = json!(archive.bytes.len());
    Ok(out)
}

/// The tenant's consents and transfers.
async fn transfers(state: &AppState, account_id: i64) -> Result<Value, ApiError> {
    saas(state)?;
    let consents: Vec<Value> = state
        .store
        .saas_transfer_consents(account_id)
        .await
        .map_err(failure)?
        .iter()
        .map(|c| {
            json!({
                "consent_id": c.consent_id,
                "purpose": c.purpose,
                "destination_region": c.destination_region,
                "categories": c.categories,
                "given_by_login": c.given_by_login,
                "given_at": secs(c.given_at),
                "revoked_at": secs(c.revoked_at),
            })
        })
        .collect();
    let items: Vec<Value> = state
        .store
        .saas_transfers(account_id)
        .await
        .map_err(failure)?
        .iter()
        .map(wire_transfer)
        .collect();
    Ok(json!({"total": items.len(), "items": items, "consents": consents}))
}

/// SVC-215: the destination reported the import of `transfer_id` done as
/// `destination_account_id`: the transfer is marked complete and the tenant purged at once,
/// with the same purge and signed certificate as `klaxon admin tenant transfer-complete`.
async fn complete_transfer(
    state: &AppState,
    account_id: i64,
    args: &Args,
    actor: &str,
) -> Result<Value, ApiError> {
    let saas = saas(state)?;
    let transfer_id = args.required_id("transfer_id")?;
    let destination = args.required_id("destination_account_id")?;
    // Another tenant's transfer is unknown here.
    let found = state
        .store
        .saas_transfer(transfer_id)
        .await
        .map_err(failure)?
        .filter(|t| t.account_id == account_id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("transfer_id: no transfer {transfer_id} of account {account_id}"),
            )
        })?;
    let signer = match state.config.deployment.kek() {
        Ok(Some(kek)) => Some(
            state
                .store
                .operator_signer(&kek, state.clock.now())
                .await
                .map_err(|e| ApiError::internal(format!("the operator signing key: {e}")))?,
        ),
        Ok(None) => None,
        Err(e) => return Err(ApiError::internal(format!("key-encryption key: {e}"))),
    };
    let rec = state
        .store
        .saas_complete_transfer(
            &saas.settings,
            found.transfer_id,
            destination,
            actor,
            state.clock.now(),
        )
        .await
        .map_err(failure)?;
    if let Err(e) = saas.refresh(&state.store).await {
        tracing::error!(error = %e, "reloading tenant states failed");
    }
    let reason = format!(
        "moved to region {} by transfer {} (account {} there), SVC-215",
        rec.destination_region, rec.transfer_id, rec.destination_account_id
    );
    let clock = state.clock.clone();
    let cert = crate::backup::purge_and_certify(
        &state.store,
        Some(&saas.settings),
        signer.as_ref(),
        account_id,
        &crate::backup::PurgeJob {
            actor,
            region: &saas.settings.region,
            trigger: "region_transfer",
            reason: &reason,
        },
        move || clock.now(),
        |_, _| {},
    )
    .await
    .map_err(|e| {
        ApiError::internal(format!(
            "transfer {transfer_id} is complete and the tenant is purging, but the purge stopped: {e}"
        ))
    })?;
    if let Err(e) = saas.refresh(&state.store).await {
        tracing::error!(error = %e, "reloading tenant states failed");
    }
    let mut out = wire_transfer(&rec);
    out["certificate"] = json!({
        "certificate_id": cert.certificate_id,
        "sha256": cert.sha256,
        "signature": cert.signature,
        "signing_key_id": cert.signing_key_id,
        "body": cert.body,
    });
    Ok(out)
}
