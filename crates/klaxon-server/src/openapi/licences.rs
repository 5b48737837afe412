//! `/account/licence/info`: the tenant's licences (service-agreement.md SVC-058: the pool,
//! the fixed and temporary holders, the free count; SVC-053: the cycle's active users). A
//! Klaxon route: Flashduty's `/oncall/license/list` is reserved and unanswered
//! (openapi-compat.md 2.16), its shape unknown. Any member may read it, so someone refused
//! for lack of a licence can see who holds them; reading it needs no licence (SVC-052).
//!
//! Self-hosted installs have no licences (SVC-402/403): the answer says so and nothing is
//! read. Times are Unix seconds, like the rest of the Open API.

use jiff::Timestamp;
use klaxon_core::error::ApiError;
use klaxon_saas::licence::Kind;
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &["/account/licence/info"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    _args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/account/licence/info" => Some(info(state, caller).await.map(Some)),
        _ => None,
    }
}

fn secs(t: Timestamp) -> i64 {
    t.as_second()
}

async fn info(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let Some(saas) = &state.saas else {
        return Ok(json!({"mode": "self_hosted", "enforced": false}));
    };
    let v = state
        .store
        .saas_licences(&saas.settings, caller.account_id, state.clock.now())
        .await
        .map_err(|e| ApiError::internal(format!("cannot read the licences: {e}")))?;
    let holders: Vec<Value> = v
        .holders
        .iter()
        .map(|h| {
            json!({
                "member_id": h.member_id,
                "kind": match h.kind { Kind::Fixed => "fixed", Kind::Temporary => "temporary" },
                "held_from": secs(h.held_from),
                "held_until": secs(h.held_until),
            })
        })
        .collect();
    let active: Vec<Value> = v
        .active
        .iter()
        .map(|a| {
            json!({
                "member_id": a.member_id,
                "first_licensed_action_at": a.first_licensed_action.map_or(0, secs),
            })
        })
        .collect();
    let orders: Vec<Value> = v
        .orders
        .iter()
        .map(|o| {
            json!({
                "order_id": o.order_id,
                "kind": o.kind,
                "edition": o.edition,
                "quantity": o.quantity,
                "total": o.total.to_string(),
                "paid_at": secs(o.paid_at),
                "starts_at": secs(o.starts_at),
                "ends_at": secs(o.ends_at),
            })
        })
        .collect();
    Ok(json!({
        "mode": "saas",
        "enforced": v.enforced,
        "state": v.state.to_string(),
        "edition": v.edition,
        "pool": v.size,
        "in_use": v.in_use,
        "free": v.free(),
        "term": v.term.map(|(s, e)| json!({"starts_at": secs(s), "ends_at": secs(e)})),
        "cycle": v.cycle.map(|(s, e)| json!({"start_time": secs(s), "end_time": secs(e)})),
        "holders": holders,
        "active_members": active,
        "orders": orders,
    }))
}
