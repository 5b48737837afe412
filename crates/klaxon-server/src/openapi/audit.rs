//! Reading the audit log over the Open API (openapi-compat.md 2.15; response.md §1.25, RSP-602,
//! RSP-604): `/audit/search` and `/audit/operation/list`. Both need `Audit Read`, checked by
//! the route table. The records are written by `crate::audit`.
//!
//! - search: `start_time*`, `end_time*` (seconds, at most 90 days apart), `limit` (0–99; 0
//!   means 20), `search_after_ctx`, `operations[]`, `person_id`, `request_id`,
//!   `is_dangerous`, `is_write`. Answers `docs[]` newest first, `total`, and
//!   `search_after_ctx` (`""` at the end).
//! - operation/list: the catalogue of recorded operations, from the route table.

use klaxon_core::error::ApiError;
use klaxon_store::{AuditFilter, AuditRecord};
use serde_json::{Value, json};

use super::teams::store_err;
use super::{Args, Caller, access};
use crate::state::AppState;

pub const PATHS: &[&str] = &["/audit/search", "/audit/operation/list"];

/// openapi-compat.md 2.15: the API allows queries over at most 90 days.
const MAX_RANGE_SECS: i64 = 90 * 86_400;
const MAX_LIMIT: i64 = 99;
const DEFAULT_LIMIT: i64 = 20;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/audit/search" => search(state, caller, args).await.map(Some),
        "/audit/operation/list" => Ok(Some(operations())),
        _ => return None,
    })
}

fn parse_cursor(text: &str) -> Result<(i64, i64), ApiError> {
    text.split_once('-')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| ApiError::invalid("search_after_ctx is invalid"))
}

fn doc(r: &AuditRecord) -> Value {
    // Staff reads of SVC-222 are `resource:read:action`.
    let (resource, action) = r
        .operation
        .split_once(":write:")
        .or_else(|| r.operation.split_once(":read:"))
        .unwrap_or((r.operation.as_str(), ""));
    json!({
        "request_id": r.request_id,
        "operation": r.operation,
        "operation_name": format!("{resource} {action}").trim().to_string(),
        "member_id": r.member_id,
        "member_name": r.member_name,
        "account_id": r.account_id,
        "ip": r.ip,
        "body": r.body,
        "params": [],
        "is_write": r.is_write,
        "is_dangerous": r.is_dangerous,
        "created_at": r.created_at,
        "resource_type": r.resource_type,
        "resource_id": r.resource_id,
        "source": r.source,
        "app_key_id": r.app_key_id,
        "result": r.result,
    })
}

async fn search(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let start = args
        .i64("start_time")?
        .ok_or_else(|| ApiError::invalid("start_time: required (seconds)"))?;
    let end = args
        .i64("end_time")?
        .ok_or_else(|| ApiError::invalid("end_time: required (seconds)"))?;
    if end < start {
        return Err(ApiError::invalid("end_time: must not be before start_time"));
    }
    if end.saturating_sub(start) > MAX_RANGE_SECS {
        return Err(ApiError::invalid(
            "end_time: the range may cover at most 90 days",
        ));
    }
    let limit = args.i64("limit")?.unwrap_or(0);
    if !(0..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit: must be between 0 and 99"));
    }
    let filter = AuditFilter {
        start: start.saturating_mul(1000),
        end: end.saturating_mul(1000).saturating_add(999),
        operations: args.str_list("operations")?,
        member_id: args.i64("person_id")?,
        request_id: args.str("request_id")?,
        is_dangerous: args.bool("is_dangerous")?,
        is_write: args.bool("is_write")?,
        before: match args.str("search_after_ctx")? {
            Some(c) => Some(parse_cursor(&c)?),
            None => None,
        },
        limit: if limit == 0 { DEFAULT_LIMIT } else { limit },
        now: state.clock.now(),
    };
    let page = state
        .store
        .search_audit(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let next = match (page.has_next, page.records.last()) {
        (true, Some(last)) => format!("{}-{}", last.created_at, last.seq),
        _ => String::new(),
    };
    Ok(json!({
        "docs": page.records.iter().map(doc).collect::<Vec<_>>(),
        "total": page.total,
        "search_after_ctx": next,
    }))
}

/// Every recorded operation: the write routes of the table, plus sign-in events.
fn operations() -> Value {
    let mut items: Vec<Value> = access::ROUTES
        .iter()
        .filter(|(p, _)| access::is_write(p))
        .map(|(p, _)| {
            json!({
                "operation": crate::audit::operation_of(p),
                "path": p,
            })
        })
        .collect();
    for action in [
        "login",
        "logout",
        // RSP-574: single logout, started at Klaxon's sign-out or by the IdP.
        "saml_logout",
        "saml_idp_logout",
        "password_reset_request",
        "password_reset",
    ] {
        items.push(json!({"operation": format!("member:write:{action}"), "path": ""}));
    }
    json!({ "items": items })
}
