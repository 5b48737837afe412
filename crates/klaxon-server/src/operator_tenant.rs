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
use klaxon_store::{NewTermination, PackRecord, SaasFailure, TerminationKind, TerminationRecord};
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
