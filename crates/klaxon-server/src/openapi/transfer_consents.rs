//! Consent to cross-region transfers, the tenant's side (service-agreement.md SVC-212,
//! SVC-215; docs/saas.md "Cross-region transfers"): the owner consents to a transfer of the
//! tenant's data out of its region for a purpose, to a destination region, for named data
//! categories, and may revoke the consent at any time. Klaxon routes: Flashduty documents no
//! such API. Creation and revocation reach the tenant's audit log through the common hook
//! (these are `AccountAdmin` writes); the transfers themselves are audited by the store.
//! Self-hosted installs have no regions to move between: every route refuses.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{NewTransferConsent, SaasFailure, TransferConsent};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/account/transfer-consent/create",
    "/account/transfer-consent/revoke",
    "/account/transfer-consent/list",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    let run = match path {
        "/account/transfer-consent/create" => create(state, caller, args).await,
        "/account/transfer-consent/revoke" => revoke(state, caller, args).await,
        "/account/transfer-consent/list" => list(state, caller).await,
        _ => return None,
    };
    Some(run.map(Some))
}

fn saas_only(state: &AppState) -> Result<&crate::saas::SaasRuntime, ApiError> {
    state.saas.as_deref().ok_or_else(|| {
        ApiError::invalid(
            "cross-region transfers exist only in SaaS mode: a self-hosted install has no regions",
        )
    })
}

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
        other => ApiError::internal(format!("transfer consents: {other}")),
    }
}

/// SVC-003: consenting to data leaving the region is the owner's decision, like releasing
/// the service; an account-level key acts for no person and cannot give it.
fn owner_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.actor.is_owner && !caller.account_key {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::AccessDenied,
            "only the account owner can give or revoke consent to a cross-region transfer",
        ))
    }
}

/// The wire shape of a consent (times in Unix seconds).
fn render(c: &TransferConsent) -> Value {
    json!({
        "consent_id": c.consent_id,
        "purpose": c.purpose,
        "destination_region": c.destination_region,
        "categories": c.categories,
        "given_by": c.given_by,
        "given_by_login": c.given_by_login,
        "given_at": c.given_at / 1000,
        "status": if c.revoked_at == 0 { "in_force" } else { "revoked" },
        "revoked_at": c.revoked_at / 1000,
        "revoked_by": c.revoked_by,
    })
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let saas = saas_only(state)?;
    owner_only(caller)?;
    let known: Vec<String> = state
        .config
        .deployment
        .regions
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let c = NewTransferConsent {
        account_id: caller.account_id,
        purpose: args
            .str("purpose")?
            .ok_or_else(|| ApiError::invalid("purpose is required"))?,
        destination_region: args
            .str("destination_region")?
            .ok_or_else(|| ApiError::invalid("destination_region is required"))?,
        categories: args.str_list("categories")?,
        member_id: caller.member_id,
        login: String::new(),
        client_ip: caller.origin.ip.clone(),
        user_agent: caller.origin.user_agent.clone(),
        request_id: caller.origin.request_id.clone(),
    };
    let rec = state
        .store
        .saas_give_transfer_consent(&saas.settings.region, &known, &c, state.clock.now())
        .await
        .map_err(failure)?;
    Ok(render(&rec))
}

async fn revoke(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    saas_only(state)?;
    owner_only(caller)?;
    let id = args.required_id("consent_id")?;
    // Another account's consent does not exist for this one.
    let own = state
        .store
        .saas_transfer_consents(caller.account_id)
        .await
        .map_err(failure)?;
    if !own.iter().any(|c| c.consent_id == id) {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("consent_id: no transfer consent {id} in this account"),
        ));
    }
    let rec = state
        .store
        .saas_revoke_transfer_consent(caller.account_id, id, caller.member_id, state.clock.now())
        .await
        .map_err(failure)?;
    Ok(render(&rec))
}

async fn list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    saas_only(state)?;
    let items: Vec<Value> = state
        .store
        .saas_transfer_consents(caller.account_id)
        .await
        .map_err(failure)?
        .iter()
        .map(render)
        .collect();
    Ok(json!({"total": items.len(), "items": items}))
}
