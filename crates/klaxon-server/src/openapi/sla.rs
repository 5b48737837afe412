//! The tenant's SLA report and compensation claims (service-agreement.md SVC-280…SVC-282;
//! docs/sla.md). Klaxon routes: Flashduty has no documented equivalent.
//!
//! The owner and the account's Admins only (the route table's `AccountAdmin`; Klaxon has no
//! separate finance role). Self-hosted installs have no SLA (SVC-270): the report and a
//! claim are refused naming the mode, the claim list is empty. Times are Unix seconds;
//! rates and amounts are decimal strings, so nothing passes through a float.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_saas::sla::{CycleStats, ReportStatus};
use klaxon_store::{NewSlaClaim, SaasFailure, SlaClaim};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::sla::MonthReport;
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/account/sla/report",
    "/account/sla/claim/submit",
    "/account/sla/claim/list",
];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    let result = match path {
        "/account/sla/report" => report(state, caller, args).await,
        "/account/sla/claim/submit" => submit(state, caller, args).await,
        "/account/sla/claim/list" => list(state, caller).await,
        _ => return None,
    };
    Some(result.map(Some))
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
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
        other => ApiError::internal(format!("cannot compute the SLA figures: {other}")),
    }
}

fn self_hosted() -> ApiError {
    ApiError::invalid(
        "the SLA does not apply to a self-hosted install (deployment.mode = \"self_hosted\")",
    )
}

fn month_arg(args: &Args) -> Result<jiff::civil::Date, ApiError> {
    let text = args
        .str("month")?
        .ok_or_else(|| ApiError::invalid("month is required, e.g. \"2025-03\""))?;
    crate::sla::parse_month(&text).map_err(|e| ApiError::invalid(format!("month: {e}")))
}

async fn compute(state: &AppState, caller: &Caller, args: &Args) -> Result<MonthReport, ApiError> {
    let Some(saas) = &state.saas else {
        return Err(self_hosted());
    };
    let month = month_arg(args)?;
    let calendar = state
        .config
        .deployment
        .working_days()
        .map_err(ApiError::internal)?;
    crate::sla::month_report(
        &state.store,
        &saas.settings,
        &calendar,
        caller.account_id,
        month,
        state.clock.now(),
    )
    .await
    .map_err(failure)
}

fn cycle_json(c: &CycleStats) -> Value {
    json!({
        "start_time": c.start.as_second(),
        "valid_requests": c.valid_requests.normalize().to_string(),
        "failed_requests": c.failed_requests.normalize().to_string(),
        "error_rate": c.error_rate.normalize().to_string(),
        "valid_incidents": c.valid_incidents,
        "failed_incidents": c.failed_incidents,
        "delay_rate": c.delay_rate.normalize().to_string(),
        "category": c.excluded.map(|x| x.as_str()),
    })
}

/// The report as JSON (SVC-282); the operator's CLI prints the same figures.
pub fn report_json(r: &MonthReport) -> Value {
    let c = r.currency;
    json!({
        "month": format!("{:04}-{:02}", r.month.year(), r.month.month()),
        "covered": r.covered,
        "provisional": r.status == ReportStatus::Provisional,
        "claim_window": {
            "opens_at": r.window.0.as_second(),
            "closes_at": r.window.1.as_second(),
        },
        "currency": c.code,
        "monthly_fee": c.format(r.fee),
        "failed_minutes": r.failed_minutes,
        "compensation": c.format(r.compensation),
        "failed_cycles": r.failed.iter().map(cycle_json).collect::<Vec<_>>(),
        "excluded_cycles": r.excluded.iter().map(cycle_json).collect::<Vec<_>>(),
        "exclusions": r.exclusions.iter().map(|x| json!({
            "exclusion_id": x.exclusion_id,
            "scope": if x.account_id == 0 { "region" } else { "tenant" },
            "category": x.category,
            "start_time": secs(x.starts_at),
            "end_time": secs(x.ends_at),
            "published_at": (x.published_at != 0).then(|| secs(x.published_at)),
            "evidence": x.evidence,
        })).collect::<Vec<_>>(),
    })
}

pub fn claim_json(c: &SlaClaim, currency: klaxon_saas::money::Currency) -> Value {
    json!({
        "claim_id": c.claim_id,
        "month": c.month,
        "attempt": c.attempt,
        "status": c.status,
        "submitted_at": secs(c.submitted_at),
        "submitted_by": c.submitted_by,
        "failed_minutes": c.failed_minutes,
        "monthly_fee": currency.format(c.fee),
        "compensation": currency.format(c.amount),
        "decided_at": (c.decided_at != 0).then(|| secs(c.decided_at)),
        "reason": c.reason,
        "granted": c.granted.map(|g| currency.format(g)),
    })
}

async fn report(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let r = compute(state, caller, args).await?;
    Ok(report_json(&r))
}

/// SVC-280/281: a claim for a month, inside its window, one per month (once more after a
/// rejection). The figures are those of the report at submission.
async fn submit(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let r = compute(state, caller, args).await?;
    let Some(saas) = &state.saas else {
        return Err(self_hosted());
    };
    if !r.covered {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "the account is not covered by the SLA (SVC-270: paid Standard or Pro editions only)",
        ));
    }
    let by = if caller.account_key {
        "account key".to_string()
    } else {
        format!("member:{}", caller.member_id)
    };
    let claim = state
        .store
        .sla_submit_claim(
            &saas.settings,
            &NewSlaClaim {
                account_id: caller.account_id,
                month: format!("{:04}-{:02}", r.month.year(), r.month.month()),
                submitted_by: by,
                failed_minutes: r.failed_minutes,
                fee: r.fee,
                amount: r.compensation,
                window: r.window,
            },
            state.clock.now(),
        )
        .await
        .map_err(failure)?;
    let mut out = claim_json(&claim, r.currency);
    out["failed_cycles"] = json!(r.failed.iter().map(cycle_json).collect::<Vec<_>>());
    Ok(out)
}

async fn list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let Some(saas) = &state.saas else {
        return Ok(json!({"mode": "self_hosted", "items": []}));
    };
    let claims = state
        .store
        .sla_claims(Some(caller.account_id), false)
        .await
        .map_err(failure)?;
    let currency = saas.settings.currency;
    Ok(json!({
        "items": claims.iter().map(|c| claim_json(c, currency)).collect::<Vec<_>>(),
    }))
}
