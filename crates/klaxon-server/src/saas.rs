//! SaaS mode on a node (docs/saas.md): the in-memory cache of tenants whose service state
//! refuses something, the checks pushes (ING-013) and Open API writes (SVC-023) make
//! against it, and the worker that refreshes the cache and runs the daily overdue job.
//!
//! Self-hosted nodes have no [`SaasRuntime`] at all (`AppState::saas` is `None`): no check,
//! no query, no worker.
//!
//! The cache holds only tenants that are not `trial`/`active`/`overdue`, so the common case
//! is one hash lookup that finds nothing. It is reloaded every [`REFRESH`] from the store and
//! at once after a change made through this node, so a suspension or a restoration made on
//! any node (or by `klaxon admin tenant …`) takes effect here within a second — well inside
//! SVC-139's 60 s.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_saas::state::{self as svc, ServiceState};
use klaxon_store::{LicenceGate, SaasSettings, Store};
use tokio::sync::watch;

use crate::state::AppState;

/// How often the cache is reloaded and the overdue job looks for due work.
const REFRESH: Duration = Duration::from_millis(500);

pub struct SaasRuntime {
    pub settings: SaasSettings,
    blocked: RwLock<HashMap<i64, ServiceState>>,
    /// Versions and decisions for acceptance by continued use (SVC-037), reloaded with the
    /// states.
    pub deemed: crate::agreements::DeemedCache,
    /// This node's SLA request counts not yet in the store (SVC-272).
    pub sla: crate::sla::Recorder,
}

impl SaasRuntime {
    pub fn new(settings: SaasSettings) -> Self {
        SaasRuntime {
            settings,
            blocked: RwLock::new(HashMap::new()),
            deemed: crate::agreements::DeemedCache::default(),
            sla: crate::sla::Recorder::default(),
        }
    }

    /// The tenant's state as this node knows it; tenants not in the cache are serving.
    pub fn state_of(&self, account_id: i64) -> ServiceState {
        self.blocked
            .read()
            .ok()
            .and_then(|m| m.get(&account_id).copied())
            .unwrap_or(ServiceState::Active)
    }

    pub async fn refresh(&self, store: &Store) -> Result<(), klaxon_store::SaasFailure> {
        let states = store.saas_blocked_states().await?;
        if let Ok(mut m) = self.blocked.write() {
            *m = states.into_iter().collect();
        }
        self.deemed.refresh(store).await
    }
}

fn rejection(r: svc::Rejection, unknown_key: &str) -> ApiError {
    let code = match r.code {
        "ServiceSuspended" => ErrorCode::ServiceSuspended,
        "ResourceNotFound" => ErrorCode::ResourceNotFound,
        _ => ErrorCode::InvalidParameter,
    };
    let mut e = match code {
        ErrorCode::ServiceSuspended => ApiError::new(
            code,
            "the service of this account is suspended; events are not accepted",
        ),
        ErrorCode::ResourceNotFound => ApiError::new(code, "the service of this account has ended"),
        // Purging or purged: exactly the unknown-key answer, without a reason (ING-013).
        _ => return ApiError::invalid(unknown_key),
    };
    // ING-013: `error.reason` = `<state>:<reason>`, e.g. `suspended:nonpayment`.
    e.reason = r.reason.map(|reason| {
        let state = if code == ErrorCode::ServiceSuspended {
            "suspended"
        } else {
            "ended"
        };
        format!("{state}:{reason}")
    });
    e
}

/// ING-013 / SVC-023: may this account's push be accepted? Always yes when self-hosted.
pub fn check_inbound(state: &AppState, account_id: i64) -> Result<(), ApiError> {
    let Some(saas) = &state.saas else {
        return Ok(());
    };
    svc::inbound_event(saas.state_of(account_id))
        .map_err(|r| rejection(r, "integration_key is not a valid one"))?;
    // SVC-272: the request is the tenant's and its state let it through, so it counts.
    crate::sla::attribute(account_id);
    Ok(())
}

/// SVC-023: Open API calls that change state are refused in `suspended` and `ended`. Reads,
/// removing members and revoking keys stay allowed (SVC-022). Always allowed self-hosted.
pub fn check_write(state: &AppState, account_id: i64, path: &str) -> Result<(), ApiError> {
    let Some(saas) = &state.saas else {
        return Ok(());
    };
    if !is_read_or_always_allowed(path) {
        svc::open_api_write(saas.state_of(account_id))
            .map_err(|r| rejection(r, "app_key is invalid"))?;
    }
    // SVC-272: the request is the tenant's and its state let it through, so it counts.
    crate::sla::attribute(account_id);
    Ok(())
}

/// SVC-188 / SVC-022: during the buffer (`ended`) the data is read-only and only the owner
/// and admins reach it (403 `AccessDenied` for other members). Agreements and the notice
/// inbox stay reachable for every member (SVC-022 "Agreements, contacts, notice inbox"), as
/// does the member's own profile. Always allowed self-hosted.
pub fn check_buffer_reader(
    state: &AppState,
    account_id: i64,
    actor: &klaxon_core::permissions::Actor,
    path: &str,
) -> Result<(), ApiError> {
    let Some(saas) = &state.saas else {
        return Ok(());
    };
    if !matches!(saas.state_of(account_id), ServiceState::Ended(_))
        || actor.is_owner
        || actor.is_admin
        || path.starts_with("/account/agreement/")
        || path == "/member/info"
    {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::AccessDenied,
        "the service of this account has ended: during the buffer period only the owner and \
         admins can read, export or delete its data (SVC-188)",
    ))
}

/// SVC-192: a legal hold in force blocks the tenant deleting the data it holds (400
/// `BadRequest` naming the rule; nothing is deleted). Only deletion paths look at the
/// holds, so every other call costs nothing. Always allowed self-hosted.
pub async fn check_hold(state: &AppState, account_id: i64, path: &str) -> Result<(), ApiError> {
    if state.saas.is_none() {
        return Ok(());
    }
    let Some(target) = klaxon_saas::governance::deletion_target(path) else {
        return Ok(());
    };
    let holds = state
        .store
        .legal_holds_unlifted(account_id)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read the legal holds: {e}")))?;
    let now = jiff::Timestamp::from_millisecond(state.clock.now())
        .map_err(|e| ApiError::internal(format!("clock: {e}")))?;
    klaxon_saas::governance::deletion_allowed(&holds, target, now)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))
}

/// RSP-008 / SVC-055: the member must hold or obtain a licence for a licensed action; none
/// free → 400 `NoLicense`, and nothing was changed. Self-hosted: never checked (OQ-01).
/// The caller decides which paths are licensed (`openapi::access::licensed`).
pub async fn check_licence(
    state: &AppState,
    account_id: i64,
    member_id: i64,
) -> Result<(), ApiError> {
    let Some(saas) = &state.saas else {
        return Ok(());
    };
    // SVC-025 / SVC-188: in the buffer the owner and admins read, export and delete without
    // a licence (nothing else is allowed then).
    if matches!(saas.state_of(account_id), ServiceState::Ended(_)) {
        return Ok(());
    }
    let gate = state
        .store
        .saas_licence_gate(&saas.settings, account_id, member_id, state.clock.now())
        .await
        .map_err(|e| ApiError::internal(format!("cannot check the licence: {e}")))?;
    match gate {
        LicenceGate::Refused { pool } => Err(ApiError::new(
            ErrorCode::NoLicense,
            format!(
                "this action needs a licence and none of the account's {pool} licences is free; the owner or an Admin can buy licences or free one"
            ),
        )),
        LicenceGate::NotNeeded | LicenceGate::Held | LicenceGate::Obtained => Ok(()),
    }
}

fn is_read_or_always_allowed(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    matches!(
        last,
        "info" | "infos" | "list" | "feed" | "preview" | "self"
    ) || path == "/member/delete"
        // SVC-022: deleting data stays possible while suspended or ended.
        || path == "/incident/bulk-delete"
        // SVC-182: exporting works in every state before the purge (checked by the route).
        || path == "/account/export/create"
        || path.starts_with("/app-key/delete")
        // §2: agreements stay reachable in every state until the purge; refusing is how a
        // tenant leaves (SVC-038).
        || path.starts_with("/account/agreement/")
        // SVC-021: revoking access grants stays possible in every state.
        || path == "/account/access-grant/revoke"
        // SVC-212/215: consenting to (or revoking) a move out of the region is how a tenant
        // may leave to another region, in any state before the purge.
        || path.starts_with("/account/transfer-consent/")
        // SVC-281: the SLA report and compensation claims for past months stay reachable.
        || path.starts_with("/account/sla/")
}

/// The SaaS worker: reloads the state cache, runs the billing job (renewals, ends of
/// terms and trials, reminders, balance alerts) and the day's overdue job for every
/// tenant that has debt (idempotent per tenant and billing day, see
/// `Store::saas_settle`). Runs on every SaaS node; the row lock makes concurrent runs
/// harmless.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let Some(saas) = state.saas.clone() else {
        return;
    };
    // SVC-104: auto-renewals are priced at the price list in force (validated at start).
    let prices = state.config.deployment.licence_price_list().ok();
    // SVC-073: overage is rated at the communication prices in force (validated at start).
    let plan = state
        .config
        .deployment
        .communication_plan()
        .unwrap_or_default();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = state.clock.now();
        // SVC-121: yesterday's metered usage first, so an uncovered charge is overdue today.
        match state
            .store
            .saas_settle_usage_due(&saas.settings, &plan, now)
            .await
        {
            Ok(runs) => {
                for r in runs {
                    tracing::info!(account_id = r.account_id, day = %r.day, outcome = %r.outcome,
                        "usage settlement ran");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "the usage settlement failed; it will be retried")
            }
        }
        match state.store.saas_settle_due(&saas.settings, now).await {
            Ok(runs) => {
                for r in runs {
                    tracing::info!(account_id = r.account_id, day = %r.day, outcome = %r.outcome,
                        "overdue job ran");
                }
            }
            Err(e) => tracing::error!(error = %e, "the overdue job failed; it will be retried"),
        }
        // SVC-038: refusals whose effective date has come end the service.
        match state.store.saas_end_refused_due(&saas.settings, now).await {
            Ok(ended) => {
                for (account_id, at) in ended {
                    tracing::info!(account_id, %at, "service ended: the terms were refused");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "ending refused tenants failed; it will be retried")
            }
        }
        // SVC-231/233: scheduled terminations whose instant has come.
        match state.store.saas_terminations_due(&saas.settings, now).await {
            Ok(done) => {
                for (account_id, what) in done {
                    tracing::info!(account_id, %what, "termination carried out");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "carrying out terminations failed; it will be retried")
            }
        }
        // SVC-087, SVC-104 … SVC-106, SVC-162: trial and term ends, expiry reminders,
        // auto-renew attempts, balance alerts.
        match state
            .store
            .saas_billing_due(&saas.settings, prices.as_ref(), now)
            .await
        {
            Ok(done) => {
                for (account_id, what) in done {
                    tracing::info!(account_id, %what, "billing job");
                }
            }
            Err(e) => tracing::error!(error = %e, "the billing job failed; it will be retried"),
        }
        record_expiries(&state, now).await;
        // SVC-004: staff-assisted ownership transfers whose notice period is over.
        match state.store.ownership_transfers_due(now).await {
            Ok(done) => {
                for (account_id, what) in done {
                    tracing::info!(account_id, %what, "ownership transfer");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "the ownership transfer job failed; it will be retried")
            }
        }
        // SVC-009: dormant login identifiers, once per billing day.
        match state
            .store
            .saas_dormant_logins_due(&saas.settings, now)
            .await
        {
            Ok(done) => {
                for (login, what) in done {
                    tracing::info!(%login, ?what, "dormant login identifier");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "the dormant login job failed; it will be retried")
            }
        }
        if let Err(e) = saas.refresh(&state.store).await {
            tracing::error!(error = %e, "reloading tenant states failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(REFRESH) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// SVC-221: a grant expires by itself (the check compares its end with the time); this
/// writes the expiry into the tenant's audit log once and queues the owner's notice of it.
async fn record_expiries(state: &AppState, now: klaxon_core::model::Millis) {
    match state.store.record_grant_expiries(now).await {
        Ok(done) => {
            for (account_id, grant_id) in done {
                tracing::info!(account_id, grant_id, "access grant expired");
            }
        }
        Err(e) => tracing::error!(error = %e, "recording expired access grants failed"),
    }
}
