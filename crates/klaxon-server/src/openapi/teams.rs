//! Teams over the Open API (openapi-compat.md 2.9; response.md §1.4, RSP-554, RSP-556):
//! `/team/list`, `/team/info`, `/team/infos`, `/team/upsert`, `/team/delete` and
//! `/team/leave` (any member leaves a team they belong to, RSP-556).
//!
//! A team is addressed by `team_id`, else `team_name`, else `ref_id`. Another account's ids
//! behave exactly like unknown ones (the store scopes every statement by account).

use std::collections::HashMap;

use klaxon_core::directory as rules;
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{
    MemberBrief, Page, Refusal, StoreError, Team, TeamFilter, TeamKey, TeamOrder, TeamWrite,
};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

/// openapi-compat.md 1.6: offset paging stops at p × limit = 10 000.
const MAX_OFFSET: i64 = 10_000;
/// Most ids one batch lookup (`/team/infos`, `/person/infos`) takes.
pub(super) const MAX_BATCH: usize = 1000;

pub(super) fn store_err(e: StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// A store refusal as the wire error (openapi-compat.md 1.5: `not_found` →
/// `ResourceNotFound`, `conflict` and `limit_exceeded` → `InvalidParameter`,
/// `failed_precondition` → `BadRequest`).
pub(super) fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::NotFound(m) => ApiError::new(ErrorCode::ResourceNotFound, m),
        Refusal::Conflict(m) | Refusal::Invalid(m) => ApiError::invalid(m),
        Refusal::Precondition(m) => ApiError::new(ErrorCode::BadRequest, m),
    }
}

/// `p` and `limit` clamped (≤ 0 → defaults, `limit` ≤ 100; openapi-compat.md 1.3, 1.6).
pub(super) fn paging(args: &Args, default_limit: i64) -> Result<(i64, i64), ApiError> {
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args
        .i64("limit")?
        .filter(|l| *l > 0)
        .unwrap_or(default_limit)
        .min(100);
    if p.saturating_mul(limit) > MAX_OFFSET {
        return Err(ApiError::invalid("p × limit must not exceed 10000"));
    }
    Ok((p, limit))
}

/// The list payload with `p` and `limit` echoed (openapi-compat.md 1.6).
pub(super) fn page_json<T>(page: &Page<T>, items: Vec<Value>, p: i64, limit: i64) -> Value {
    json!({
        "items": items,
        "total": page.total,
        "has_next_page": page.has_next_page,
        "p": p,
        "limit": limit,
    })
}

/// A positive id, or absent; 0 reads as absent (openapi-compat.md 1.3).
pub(super) fn optional_id(args: &Args, name: &str) -> Result<Option<i64>, ApiError> {
    match args.i64(name)? {
        None | Some(0) => Ok(None),
        Some(id) if id > 0 => Ok(Some(id)),
        Some(_) => Err(ApiError::invalid(format!("{name} must be a positive id"))),
    }
}

/// A list of positive ids.
pub(super) fn id_list(args: &Args, name: &str) -> Result<Vec<i64>, ApiError> {
    let ids = args.i64_list(name)?;
    if let Some(bad) = ids.iter().find(|id| **id <= 0) {
        return Err(ApiError::invalid(format!(
            "{name} must hold positive ids, not {bad}"
        )));
    }
    Ok(ids)
}

/// `team_id` > `team_name` > `ref_id`.
fn team_key(args: &Args) -> Result<TeamKey, ApiError> {
    if let Some(id) = optional_id(args, "team_id")? {
        return Ok(TeamKey::Id(id));
    }
    if let Some(name) = args.str("team_name")? {
        return Ok(TeamKey::Name(rules::team_name("team_name", &name)?));
    }
    if let Some(r) = args.str("ref_id")? {
        return Ok(TeamKey::RefId(rules::ref_id("ref_id", &r)?));
    }
    Err(ApiError::invalid(
        "team_id, team_name or ref_id is required",
    ))
}

fn not_found(key: &TeamKey) -> ApiError {
    let what = match key {
        TeamKey::Id(id) => format!("team_id: team {id} not found"),
        TeamKey::Name(n) => format!("team_name: team {n:?} not found"),
        TeamKey::RefId(r) => format!("ref_id: team {r:?} not found"),
    };
    ApiError::new(ErrorCode::ResourceNotFound, what)
}

/// Names of the creators and last editors of `teams`, in one query.
async fn people(
    state: &AppState,
    caller: &Caller,
    teams: &[Team],
) -> Result<HashMap<i64, MemberBrief>, ApiError> {
    let ids: Vec<i64> = teams
        .iter()
        .flat_map(|t| [t.creator_id, t.updated_by])
        .filter(|id| *id > 0)
        .collect();
    state
        .store
        .members_status(caller.account_id, &ids)
        .await
        .map_err(store_err)
}

/// The wire Team (openapi-compat.md 2.9); times in seconds.
fn team_json(t: &Team, people: &HashMap<i64, MemberBrief>) -> Value {
    let name = |id: i64| people.get(&id).map_or("", |p| p.member_name.as_str());
    json!({
        "team_id": t.team_id,
        "team_name": t.team_name,
        "description": t.description,
        "status": "enabled",
        "person_ids": t.person_ids,
        "ref_id": t.ref_id,
        "creator_id": t.creator_id,
        "creator_name": name(t.creator_id),
        "updated_by": t.updated_by,
        "updated_by_name": name(t.updated_by),
        "created_at": wire::secs(t.created_at),
        "updated_at": wire::secs(t.updated_at),
    })
}

pub async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let (p, limit) = paging(args, 20)?;
    let orderby = match args.str("orderby")?.as_deref() {
        None | Some("created_at") => TeamOrder::CreatedAt,
        Some("updated_at") => TeamOrder::UpdatedAt,
        Some("team_name") => TeamOrder::TeamName,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "orderby must be created_at, updated_at or team_name, not {other:?}"
            )));
        }
    };
    let mut person_id = optional_id(args, "person_id")?;
    // RSP-556: "my teams" — the teams the caller belongs to.
    if args.bool("is_my_team")?.unwrap_or(false) {
        if caller.account_key {
            return Err(ApiError::invalid(
                "is_my_team: an account-level APP key belongs to no team; call with a member's key",
            ));
        }
        if person_id.is_some_and(|p| p != caller.member_id) {
            return Err(ApiError::invalid(
                "is_my_team: cannot be combined with another member's person_id",
            ));
        }
        person_id = Some(caller.member_id);
    }
    let filter = TeamFilter {
        p,
        limit,
        query: args.str("query")?.map(|q| q.trim().to_string()),
        person_id,
        orderby,
        asc: args.bool("asc")?.unwrap_or(false),
    };
    let page = state
        .store
        .list_teams(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let people = people(state, caller, &page.items).await?;
    let items = page.items.iter().map(|t| team_json(t, &people)).collect();
    Ok(page_json(&page, items, p, limit))
}

pub async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let key = team_key(args)?;
    let team = state
        .store
        .team(caller.account_id, &key)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found(&key))?;
    let people = people(state, caller, std::slice::from_ref(&team)).await?;
    Ok(team_json(&team, &people))
}

pub async fn infos(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let ids = id_list(args, "team_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid("team_ids is required"));
    }
    if ids.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "team_ids must hold at most {MAX_BATCH} ids"
        )));
    }
    let teams = state
        .store
        .teams(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let people = people(state, caller, &teams).await?;
    let items: Vec<Value> = teams.iter().map(|t| team_json(t, &people)).collect();
    Ok(json!({ "items": items }))
}

pub async fn upsert(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let team_id = match args.i64("team_id")? {
        None => 0,
        Some(id) if id >= 0 => id,
        Some(_) => {
            return Err(ApiError::invalid(
                "team_id must be a positive id, or 0 to create",
            ));
        }
    };
    let team_name = rules::team_name("team_name", &args.str("team_name")?.unwrap_or_default())?;
    let description = match args.str("description")? {
        Some(d) => Some(rules::team_description("description", &d)?),
        None => None,
    };
    let ref_id = match args.str("ref_id")? {
        Some(r) => Some(rules::ref_id("ref_id", &r)?),
        None => None,
    };
    // `person_ids` replaces the member list when it is sent (an explicit `[]` empties it).
    let person_ids = match args.raw().get("person_ids") {
        None | Some(Value::Null) => None,
        Some(_) => Some(id_list(args, "person_ids")?),
    };
    let emails = args
        .str_list("emails")?
        .iter()
        .enumerate()
        .map(|(i, e)| rules::email(&format!("emails[{i}]"), e))
        .collect::<Result<Vec<_>, _>>()?;
    let country_code = args.str("countryCode")?.unwrap_or_default();
    let phones = args
        .str_list("phones")?
        .iter()
        .enumerate()
        .map(|(i, p)| rules::phone(&format!("phones[{i}]"), p, &country_code).map(|p| p.e164))
        .collect::<Result<Vec<_>, _>>()?;
    let write = TeamWrite {
        team_id,
        team_name,
        description,
        ref_id,
        person_ids,
        emails,
        phones,
        reset_if_name_exist: args.bool("reset_if_name_exist")?.unwrap_or(false),
    };
    let team = state
        .store
        .upsert_team(
            caller.account_id,
            caller.member_id,
            &write,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    Ok(json!({ "team_id": team.team_id, "team_name": team.team_name }))
}

pub async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let key = team_key(args)?;
    state
        .store
        .delete_team(caller.account_id, &key)
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            Refusal::NotFound(_) => not_found(&key),
            other => refused(other),
        })?;
    Ok(())
}

/// RSP-556: the caller leaves a team it belongs to. Needs no permission point: a member
/// acts on their own membership only.
pub async fn leave(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    if caller.account_key {
        return Err(ApiError::invalid(
            "an account-level APP key belongs to no team; call with a member's key",
        ));
    }
    let key = team_key(args)?;
    let team = state
        .store
        .leave_team(caller.account_id, caller.member_id, &key, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| match r {
            Refusal::NotFound(_) => not_found(&key),
            other => refused(other),
        })?;
    tracing::info!(
        account_id = caller.account_id,
        member_id = caller.member_id,
        team_id = team.team_id,
        "left the team"
    );
    Ok(json!({ "team_id": team.team_id, "team_name": team.team_name }))
}
