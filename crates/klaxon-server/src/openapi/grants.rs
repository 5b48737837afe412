//! Access grants, the tenant's side (service-agreement.md SVC-221; docs/saas.md "Operator
//! access"): the owner or an Admin lets the operator's staff read (or do named writes on)
//! the tenant's data for a purpose, a ticket and a limited time, and may revoke it at any
//! moment. Klaxon routes: Flashduty documents no such API.
//!
//! Creation and revocation are recorded in the tenant's audit log by the common hook (the
//! routes are `AccountAdmin` writes); expiry is recorded by the SaaS worker
//! (`saas::record_expiries`). Self-hosted installs have no staff (SVC-4xx), so every route
//! answers that grants do not apply and changes nothing.

use jiff::Timestamp;
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_saas::grant::{self, GrantRequest, Grantee, Scope};
use klaxon_store::GrantRecord;
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/account/access-grant/create",
    "/account/access-grant/revoke",
    "/account/access-grant/list",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    let run = match path {
        "/account/access-grant/create" => create(state, caller, args).await,
        "/account/access-grant/revoke" => revoke(state, caller, args).await,
        "/account/access-grant/list" => list(state, caller).await,
        _ => return None,
    };
    Some(run.map(Some))
}

fn store_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("access grants: {e}"))
}

fn saas_only(state: &AppState) -> Result<&crate::saas::SaasRuntime, ApiError> {
    state.saas.as_deref().ok_or_else(|| {
        ApiError::invalid(
            "access grants exist only in SaaS mode: a self-hosted install has no operator staff",
        )
    })
}

fn secs_to_ts(field: &str, secs: Option<i64>) -> Result<Option<Timestamp>, ApiError> {
    match secs {
        None | Some(0) => Ok(None),
        Some(s) => Timestamp::from_second(s)
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{field}: not a valid time"))),
    }
}

/// The wire shape of a grant (times in Unix seconds).
pub(crate) fn render(g: &GrantRecord, now: Timestamp) -> Value {
    let t = &g.grant.terms;
    json!({
        "grant_id": g.grant.grant_id,
        "grantee_staff_id": match t.grantee { Grantee::Staff(id) => id, Grantee::SupportTeam => 0 },
        "grantee": match t.grantee { Grantee::Staff(_) => "staff", Grantee::SupportTeam => "support_team" },
        "scope": t.scope.as_text(),
        "channel_ids": t.channel_ids,
        "purpose": t.purpose,
        "ticket_id": t.ticket_id,
        "start_time": t.starts_at.as_second(),
        "end_time": t.ends_at.as_second(),
        "status": g.grant.status(now).as_str(),
        "created_at": g.created_at / 1000,
        "creator_id": g.created_by,
        "revoked_at": g.grant.revoked_at.map_or(0, |r| r.as_second()),
        "revoker_id": g.revoked_by,
    })
}

fn now_ts(state: &AppState) -> Result<Timestamp, ApiError> {
    Timestamp::from_millisecond(state.clock.now())
        .map_err(|e| ApiError::internal(format!("clock: {e}")))
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let saas = saas_only(state)?;
    let now = now_ts(state)?;
    let grantee = match args.i64("grantee_staff_id")? {
        None | Some(0) => Grantee::SupportTeam,
        Some(id) => Grantee::Staff(id),
    };
    let scope = Scope::parse(
        &args
            .str("scope")?
            .ok_or_else(|| ApiError::invalid("scope is required"))?,
    )
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    let req = GrantRequest {
        grantee,
        scope,
        channel_ids: args.i64_list("channel_ids")?,
        purpose: args.str("purpose")?.unwrap_or_default(),
        ticket_id: args.str("ticket_id")?.unwrap_or_default(),
        start: secs_to_ts("start_time", args.i64("start_time")?)?,
        end: secs_to_ts("end_time", args.i64("end_time")?)?,
    };
    // `params` carries the tenant's contract override of `access_grant_max` (SVC-012).
    let terms = grant::terms(req, now, &saas.settings.params)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    if let Grantee::Staff(id) = terms.grantee {
        let staff = state.store.staff(id).await.map_err(store_err)?;
        if staff.is_none_or(|s| s.revoked_at != 0) {
            return Err(ApiError::invalid(format!(
                "grantee_staff_id: {id} is not a staff member of the operator"
            )));
        }
    }
    for ch in &terms.channel_ids {
        let found = state
            .store
            .channel_settings(caller.account_id, *ch)
            .await
            .map_err(store_err)?;
        if found.is_none() {
            return Err(ApiError::invalid(format!(
                "channel_ids: {ch} is not a channel of this account"
            )));
        }
    }
    let g = state
        .store
        .grant_create(
            caller.account_id,
            &terms,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?;
    // SVC-221: the owner's notice was queued with the grant (`notices` gives it).
    Ok(render(&g, now))
}

async fn revoke(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    saas_only(state)?;
    let now = now_ts(state)?;
    let id = args.required_id("grant_id")?;
    let g = state
        .store
        .grant_revoke(caller.account_id, id, caller.member_id, state.clock.now())
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("grant_id: no grant {id} in this account"),
            )
        })?;
    Ok(render(&g, now))
}

async fn list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    saas_only(state)?;
    let now = now_ts(state)?;
    let grants = state
        .store
        .grants(caller.account_id)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = grants.iter().map(|g| render(g, now)).collect();
    Ok(json!({"items": items, "total": items.len()}))
}
