//! The Open API endpoints of this release (openapi-compat.md 2.1, 2.3, 2.5, 2.8, 2.9, 2.10).

use std::collections::HashMap;
use std::str::FromStr;

use klaxon_core::condition;
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::model::{Incident, Progress, Severity};
use klaxon_core::permissions;
use klaxon_store::{
    AlertFilter, ChannelFilter, EventFilter, IncidentFilter, Page, Paging, StoreError,
};
use serde_json::{Value, json};

use super::{Args, Caller, integrations, members, schedules, teams};
use crate::state::AppState;
use crate::wire;

/// Every Open API path this release serves; `dispatch` below must handle each one.
pub const PATHS: &[&str] = &[
    "/account/info",
    "/account/reset",
    "/member/info",
    "/channel/list",
    "/incident/list",
    "/incident/info",
    "/incident/alert/list",
    "/alert/list",
    "/alert/info",
    "/alert-event/list",
    "/schedule/create",
    "/schedule/update",
    "/schedule/delete",
    "/schedule/info",
    "/schedule/list",
    "/schedule/feed/reset",
    "/schedule/infos",
    "/schedule/self",
    "/schedule/preview",
    "/schedule/self/feed/reset",
    "/team/list",
    "/team/info",
    "/team/infos",
    "/team/upsert",
    "/team/delete",
    "/team/leave",
    "/member/list",
    "/member/invite",
    "/member/delete",
    "/member/info/reset",
    "/member/self/reset",
    "/person/infos",
    "/integration/create",
    "/integration/list",
    "/integration/info",
    "/integration/update",
    "/integration/delete",
    "/integration/enable",
    "/integration/disable",
    "/integration/rotate-key",
];

/// openapi-compat.md 1.7: list windows must be shorter than 31 days.
const MAX_WINDOW_SECS: i64 = 31 * 86_400;
/// openapi-compat.md 1.6: offset paging stops at p × limit = 10 000; use the cursor beyond.
const MAX_OFFSET: i64 = 10_000;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Result<Option<Value>, ApiError> {
    match path {
        "/account/info" => account_info(state, caller).await.map(Some),
        "/member/info" => member_info(state, caller).await.map(Some),
        "/channel/list" => channel_list(state, caller, args).await.map(Some),
        "/incident/list" => incident_list(state, caller, args).await.map(Some),
        "/incident/info" => incident_info(state, caller, args).await.map(Some),
        "/incident/alert/list" => incident_alert_list(state, caller, args).await.map(Some),
        "/alert/list" => alert_list(state, caller, args).await.map(Some),
        "/alert/info" => alert_info(state, caller, args).await.map(Some),
        "/alert-event/list" => event_list(state, caller, args).await.map(Some),
        "/schedule/create" => schedules::create(state, caller, args).await.map(Some),
        "/schedule/update" => schedules::update(state, caller, args).await.map(Some),
        "/schedule/delete" => schedules::delete(state, caller, args).await.map(|_| None),
        "/schedule/info" => schedules::info(state, caller, args).await.map(Some),
        "/schedule/list" => schedules::list(state, caller, args).await.map(Some),
        "/schedule/feed/reset" => schedules::feed_reset(state, caller, args).await.map(Some),
        "/schedule/infos" => schedules::infos(state, caller, args).await.map(Some),
        "/schedule/self" => schedules::my_schedules(state, caller, args).await.map(Some),
        "/schedule/preview" => schedules::preview(state, caller, args).await.map(Some),
        "/schedule/self/feed/reset" => schedules::self_feed_reset(state, caller).await.map(Some),
        "/team/list" => teams::list(state, caller, args).await.map(Some),
        "/team/info" => teams::info(state, caller, args).await.map(Some),
        "/team/infos" => teams::infos(state, caller, args).await.map(Some),
        "/team/upsert" => teams::upsert(state, caller, args).await.map(Some),
        "/team/delete" => teams::delete(state, caller, args).await.map(|_| None),
        "/team/leave" => teams::leave(state, caller, args).await.map(Some),
        "/member/list" => members::list(state, caller, args).await.map(Some),
        "/member/invite" => members::invite(state, caller, args).await.map(Some),
        "/member/delete" => members::delete(state, caller, args).await.map(|_| None),
        "/member/info/reset" => members::reset(state, caller, args).await.map(|_| None),
        "/member/self/reset" => members::self_reset(state, caller, args).await.map(|_| None),
        "/account/reset" => account_reset(state, caller, args).await.map(Some),
        "/person/infos" => members::person_infos(state, caller, args).await.map(Some),
        p if p.starts_with("/integration/") => integrations::dispatch(state, caller, p, args).await,
        _ => Err(ApiError::new(ErrorCode::RouteNotFound, "no such route")),
    }
}

pub(super) fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::InvalidCursor => ApiError::invalid("search_after_ctx is invalid"),
        other => ApiError::internal(other.to_string()),
    }
}

pub(super) fn not_found(what: &str) -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, format!("{what} not found"))
}

/// Clamps `p` and `limit` (values ≤ 0 take the defaults, `limit` is capped; openapi-compat.md
/// 1.3, 1.6) and refuses offsets past 10 000.
pub(super) fn paging(args: &Args, default_limit: i64, max_limit: i64) -> Result<Paging, ApiError> {
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args
        .i64("limit")?
        .filter(|l| *l > 0)
        .unwrap_or(default_limit)
        .min(max_limit);
    let search_after_ctx = args.str("search_after_ctx")?;
    if search_after_ctx.is_none() && p.saturating_mul(limit) > MAX_OFFSET {
        return Err(ApiError::invalid(
            "p × limit must not exceed 10000; continue with search_after_ctx",
        ));
    }
    Ok(Paging {
        p,
        limit,
        asc: args.bool("asc")?.unwrap_or(false),
        search_after_ctx,
    })
}

/// `start_time` and `end_time` (Unix seconds), both required, `end − start` under 31 days.
fn required_window(args: &Args) -> Result<(i64, i64), ApiError> {
    let start = args
        .i64("start_time")?
        .ok_or_else(|| ApiError::invalid("start_time is required"))?;
    let end = args
        .i64("end_time")?
        .ok_or_else(|| ApiError::invalid("end_time is required"))?;
    check_window(start, end)?;
    // Seconds far past any real date must not overflow into milliseconds.
    Ok((start.saturating_mul(1000), end.saturating_mul(1000)))
}

fn check_window(start: i64, end: i64) -> Result<(), ApiError> {
    if start < 0 || end < 0 {
        return Err(ApiError::invalid(
            "start_time and end_time must not be negative",
        ));
    }
    if end <= start {
        return Err(ApiError::invalid("end_time must be after start_time"));
    }
    if end - start >= MAX_WINDOW_SECS {
        return Err(ApiError::invalid(
            "end_time - start_time must be less than 31 days",
        ));
    }
    Ok(())
}

fn parse_all<T: FromStr>(name: &str, values: Vec<String>) -> Result<Vec<T>, ApiError> {
    values
        .into_iter()
        .map(|v| {
            T::from_str(&v)
                .map_err(|_| ApiError::invalid(format!("{name} has an invalid value: {v}")))
        })
        .collect()
}

pub(super) fn page_json<T>(page: &Page<T>, items: Vec<Value>) -> Value {
    let mut v = json!({
        "items": items,
        "total": page.total,
        "has_next_page": page.has_next_page,
    });
    if let (Some(ctx), Some(obj)) = (&page.search_after_ctx, v.as_object_mut()) {
        obj.insert("search_after_ctx".into(), Value::String(ctx.clone()));
    }
    v
}

pub(super) async fn channel_names(
    state: &AppState,
    caller: &Caller,
    ids: Vec<i64>,
) -> Result<HashMap<i64, String>, ApiError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut ids = ids;
    ids.sort_unstable();
    ids.dedup();
    let limit = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let filter = ChannelFilter {
        paging: Paging {
            p: 1,
            limit,
            asc: true,
            search_after_ctx: None,
        },
        channel_ids: ids,
        ..ChannelFilter::default()
    };
    let page = state
        .store
        .list_channels(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    Ok(page
        .items
        .into_iter()
        .map(|c| (c.channel_id, c.channel_name))
        .collect())
}

async fn account_info(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let account = state
        .store
        .account(caller.account_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("account"))?;
    Ok(wire::account(&account))
}

/// `/account/reset` (a Klaxon extension): the account's settings. `time_zone`, the default
/// zone of schedules, calendars, rule time filters, template dates and insights (response.md
/// 1.1, OQ-40: `UTC` unless configured); `incident_retention_days`, how long closed incidents
/// are kept (0 = forever; docs/data-retention.md); `locale` (`en-US` or `zh-CN`), the
/// language of notifications' system texts (RSP-293). At least one is required; all are
/// checked before any is saved, so a bad value changes nothing. Answers the account as
/// `/account/info` does.
async fn account_reset(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let zone = args
        .str("time_zone")?
        .map(|z| klaxon_core::directory::time_zone("time_zone", &z))
        .transpose()?;
    let retention = args
        .i64("incident_retention_days")?
        .map(klaxon_core::retention::retention_days)
        .transpose()?;
    // The language of system texts in notifications (RSP-293).
    let locale = args
        .str("locale")?
        .map(|l| klaxon_core::directory::locale("locale", &l))
        .transpose()?;
    if zone.is_none() && retention.is_none() && locale.is_none() {
        return Err(ApiError::invalid(
            "time_zone, incident_retention_days or locale is required",
        ));
    }
    let changed = state
        .store
        .set_account_settings(
            caller.account_id,
            zone.as_deref(),
            retention,
            locale.as_deref(),
            state.clock.now(),
        )
        .await
        .map_err(store_err)?;
    if !changed {
        return Err(not_found("account"));
    }
    account_info(state, caller).await
}

async fn member_info(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let account = state
        .store
        .account(caller.account_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("account"))?;
    let member = state
        .store
        .member(caller.account_id, caller.member_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("member"))?;
    let mut out = wire::member(&member, &account);
    // The caller's own contact methods and their verification (the console's settings page).
    if let (Value::Object(out), Value::Object(contacts)) =
        (&mut out, members::own_contacts(state, caller).await?)
    {
        out.extend(contacts);
    }
    Ok(out)
}

async fn channel_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let filter = ChannelFilter {
        paging: paging(args, 100, 100)?,
        query: args.str("query")?,
        channel_name: args.str("channel_name")?,
        channel_ids: args.i64_list("channel_ids")?,
    };
    let page = state
        .store
        .list_channels(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    // `group{}` from the stored grouping policy and storm thresholds (ingest.md §1.5.1).
    let ids: Vec<i64> = page.items.iter().map(|c| c.channel_id).collect();
    let settings: HashMap<i64, klaxon_store::ChannelSettings> = state
        .store
        .channel_settings_of(caller.account_id, &ids)
        .await
        .map_err(store_err)?
        .into_iter()
        .map(|s| (s.channel.channel_id, s))
        .collect();
    let items = page
        .items
        .iter()
        .map(|c| match settings.get(&c.channel_id) {
            Some(s) => super::channels::render(s),
            None => wire::channel(c),
        })
        .collect();
    Ok(page_json(&page, items))
}

/// `fields{name: value | [values] | bool}` of `/incident/list` (RSP-503): select and checkbox
/// fields only (RSP-086); a list means any of its values.
pub(super) async fn field_filters(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let Some(Value::Object(given)) = args.raw().get("fields") else {
        return Ok(Vec::new());
    };
    if given.is_empty() {
        return Ok(Vec::new());
    }
    let defs = state
        .store
        .custom_fields(caller.account_id)
        .await
        .map_err(store_err)?;
    let mut out = Vec::new();
    for (name, value) in given {
        let def = defs
            .iter()
            .find(|d| &d.field_name == name)
            .ok_or_else(|| ApiError::invalid(format!("fields.{name}: no such custom field")))?;
        if def.field_type == klaxon_core::response::FieldType::Text {
            return Err(ApiError::invalid(format!(
                "fields.{name}: text fields cannot be used as filters"
            )));
        }
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let values: Vec<String> = match value {
            Value::Array(items) => items.iter().filter_map(text).collect(),
            other => text(other).into_iter().collect(),
        };
        if values.is_empty() {
            return Err(ApiError::invalid(format!(
                "fields.{name}: give a value or a list of values"
            )));
        }
        out.push((name.clone(), values));
    }
    Ok(out)
}

/// `labels{name: pattern | [patterns]}` of `/incident/list` (RSP-503): every named label must
/// match one of its patterns, read as exact text, a wildcard or a regex (§4.3; `cidr:` and
/// `num:` are plain text in a search, §4.2). Errors name the label (`labels.host: …`).
pub(super) fn label_filter(args: &Args) -> Result<condition::Filter, ApiError> {
    let Some(given) = args.raw().get("labels").filter(|v| !v.is_null()) else {
        return Ok(condition::Filter::default());
    };
    let Value::Object(given) = given else {
        return Err(ApiError::invalid(
            "labels must be an object of label names to a pattern or a list of patterns",
        ));
    };
    let mut group = Vec::with_capacity(given.len());
    for (name, value) in given {
        if name.trim().is_empty() {
            return Err(ApiError::invalid("labels: a label name is required"));
        }
        let values: Vec<String> = match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ApiError::invalid(format!("labels.{name}: every pattern must be a string"))
                })?,
            _ => {
                return Err(ApiError::invalid(format!(
                    "labels.{name}: give a pattern or a list of patterns"
                )));
            }
        };
        let c = condition::Condition::is_in(format!("labels.{name}"), values);
        condition::Filter::compile(&[vec![c.clone()]], condition::Context::LabelSearch)
            .map_err(|e| ApiError::invalid(format!("labels.{name}: {}", e.problem())))?;
        group.push(c);
    }
    if group.is_empty() {
        return Ok(condition::Filter::default());
    }
    condition::Filter::compile(&[group], condition::Context::LabelSearch)
        .map_err(|e| ApiError::invalid(format!("labels: {}", e.problem())))
}

/// `team_ids[]` of `/incident/list` (RSP-503): the channels those teams own (`team_id`) or
/// manage (`managing_team_ids`); `None` when no team is given.
async fn team_channels(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<Option<Vec<i64>>, ApiError> {
    let teams = args.i64_list("team_ids")?;
    if teams.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut p = 1;
    loop {
        let filter = ChannelFilter {
            paging: Paging {
                p,
                limit: 100,
                asc: true,
                search_after_ctx: None,
            },
            ..ChannelFilter::default()
        };
        let page = state
            .store
            .list_channels(caller.account_id, &filter)
            .await
            .map_err(store_err)?;
        out.extend(
            page.items
                .iter()
                .filter(|c| {
                    teams.contains(&c.team_id)
                        || c.managing_team_ids.iter().any(|t| teams.contains(t))
                })
                .map(|c| c.channel_id),
        );
        if !page.has_next_page {
            break;
        }
        p += 1;
    }
    Ok(Some(out))
}

async fn incident_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let (start_time, end_time) = required_window(args)?;
    let mut channel_ids = args.i64_list("channel_ids")?;
    if let Some(of_teams) = team_channels(state, caller, args).await? {
        channel_ids = if channel_ids.is_empty() {
            of_teams
        } else {
            channel_ids.retain(|c| of_teams.contains(c));
            channel_ids
        };
        // No channel of those teams (or none of the given ones is theirs): nothing matches.
        if channel_ids.is_empty() {
            let empty: Page<Incident> = Page {
                items: Vec::new(),
                total: 0,
                has_next_page: false,
                search_after_ctx: None,
            };
            return Ok(page_json(&empty, Vec::new()));
        }
    }
    let filter = IncidentFilter {
        paging: paging(args, 20, 100)?,
        start_time,
        end_time,
        progress: parse_all::<Progress>("progress", args.comma_list("progress")?)?,
        severities: parse_all::<Severity>(
            "incident_severity",
            args.comma_list("incident_severity")?,
        )?,
        channel_ids,
        incident_ids: args.str_list("incident_ids")?,
        nums: args.str_list("nums")?,
        query: args.str("query")?,
        creator_ids: args.i64_list("creator_ids")?,
        closer_ids: args.i64_list("closer_ids")?,
        is_snoozed: args.bool("is_snoozed")?,
        ever_muted: args.bool("ever_muted")?,
        now: state.clock.now(),
        responder_ids: args.i64_list("responder_ids")?,
        acker_ids: args.i64_list("acker_ids")?,
        fields: field_filters(state, caller, args).await?,
        labels: label_filter(args)?,
        hidden_channel_ids: hidden_channels(state, caller).await?,
    };
    let page = state
        .store
        .list_incidents(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let names = channel_names(
        state,
        caller,
        page.items.iter().map(|i| i.channel_id).collect(),
    )
    .await?;
    let items = page
        .items
        .iter()
        .map(|i| wire::incident(i, &names, &state.base_url))
        .collect();
    Ok(page_json(&page, items))
}

/// RSP-526, RSP-507: the private channels whose incidents `caller` may not list, search or
/// count. Owners and Admins see every channel and need no query; everyone else needs their
/// teams and the account's private channels (usually few).
pub(super) async fn hidden_channels(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<i64>, ApiError> {
    if !permissions::visibility_needs_teams(&caller.actor) {
        return Ok(Vec::new());
    }
    let private = state
        .store
        .private_channels(caller.account_id)
        .await
        .map_err(store_err)?;
    if private.is_empty() {
        return Ok(Vec::new());
    }
    let my_teams = state
        .store
        .member_team_ids(caller.account_id, caller.member_id)
        .await
        .map_err(store_err)?;
    Ok(private
        .iter()
        .filter(|c| !permissions::listed(&caller.actor, &my_teams, Some(c)))
        .map(|c| c.channel_id)
        .collect())
}

/// RSP-526: opening an incident by its id needs only `Incidents Read` (checked by the route
/// table): the shared-link case, even for a private channel the caller is not part of.
async fn incident_info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args
        .str("incident_id")?
        .ok_or_else(|| ApiError::invalid("incident_id is required"))?;
    let incident = state
        .store
        .incident(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("incident"))?;
    let names = channel_names(state, caller, vec![incident.channel_id]).await?;
    let mut out = wire::incident(&incident, &names, &state.base_url);
    // RSP-400, RSP-404: what the detail page offers for this incident's channel.
    let actions = super::custom_actions::incident_actions(state, &incident).await?;
    let links = super::custom_actions::incident_links(state, &incident).await?;
    // RSP-405, RSP-406: manual ticket syncs and the incident's tickets.
    let (ticket_syncs, tickets) = super::ticket_sync::incident_tickets(state, &incident).await?;
    if let Value::Object(m) = &mut out {
        m.insert("custom_actions".into(), Value::Array(actions));
        m.insert("links".into(), Value::Array(links));
        m.insert("ticket_syncs".into(), Value::Array(ticket_syncs));
        m.insert("tickets".into(), Value::Array(tickets));
        // 1.22 / RSP-431: the active war room (its share link is the "View war room").
        let room = state
            .store
            .active_war_room(caller.account_id, &incident.incident_id)
            .await
            .map_err(store_err)?;
        m.insert(
            "war_room".into(),
            room.as_ref()
                .map_or(Value::Null, super::war_room::room_json),
        );
    }
    Ok(out)
}

/// The incidents of a page of alerts, in one query (not one per alert).
pub(super) async fn incidents_by_id(
    state: &AppState,
    caller: &Caller,
    ids: Vec<String>,
) -> Result<HashMap<String, Incident>, ApiError> {
    let mut ids: Vec<String> = ids.into_iter().filter(|id| !id.is_empty()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let limit = i64::try_from(ids.len()).unwrap_or(i64::MAX);
    let filter = IncidentFilter {
        paging: Paging {
            p: 1,
            limit,
            asc: true,
            search_after_ctx: None,
        },
        // No time bounds: an alert's incident may have started before the listed window.
        incident_ids: ids,
        ..IncidentFilter::default()
    };
    let page = state
        .store
        .list_incidents(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    Ok(page
        .items
        .into_iter()
        .map(|i| (i.incident_id.clone(), i))
        .collect())
}

async fn alert_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let (start_time, end_time) = required_window(args)?;
    let filter = AlertFilter {
        paging: paging(args, 20, 100)?,
        start_time,
        end_time,
        is_active: args.bool("is_active")?,
        severities: parse_all::<Severity>("alert_severity", args.comma_list("alert_severity")?)?,
        channel_ids: args.i64_list("channel_ids")?,
        integration_ids: args.i64_list("integration_ids")?,
        alert_ids: args.str_list("alert_ids")?,
        alert_keys: args.str_list("alert_keys")?,
        incident_id: args.str("incident_id")?,
        ever_muted: args.bool("ever_muted")?,
        mark_rule_id: args.str("mark_rule_id")?,
    };
    let page = state
        .store
        .list_alerts(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let names = channel_names(
        state,
        caller,
        page.items.iter().map(|a| a.channel_id).collect(),
    )
    .await?;
    let incidents = incidents_by_id(
        state,
        caller,
        page.items.iter().map(|a| a.incident_id.clone()).collect(),
    )
    .await?;
    let items = page
        .items
        .iter()
        .map(|a| wire::alert(a, &names, &incidents))
        .collect();
    Ok(page_json(&page, items))
}

/// `/incident/alert/list` (openapi-compat.md 2.1): the alerts of one incident, newest first,
/// `limit` up to 1000, optionally only the active ones.
async fn incident_alert_list(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<Value, ApiError> {
    let id = args
        .str("incident_id")?
        .ok_or_else(|| ApiError::invalid("incident_id is required"))?;
    let incident = state
        .store
        .incident(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("incident"))?;
    let filter = AlertFilter {
        paging: paging(args, 20, 1000)?,
        is_active: args.bool("is_active")?,
        incident_id: Some(id),
        ..AlertFilter::default()
    };
    let page = state
        .store
        .list_alerts(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let names = channel_names(
        state,
        caller,
        page.items.iter().map(|a| a.channel_id).collect(),
    )
    .await?;
    let incidents: HashMap<String, Incident> =
        std::iter::once((incident.incident_id.clone(), incident)).collect();
    let items = page
        .items
        .iter()
        .map(|a| wire::alert(a, &names, &incidents))
        .collect();
    Ok(page_json(&page, items))
}

async fn alert_info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args
        .str("alert_id")?
        .ok_or_else(|| ApiError::invalid("alert_id is required"))?;
    let alert = state
        .store
        .alert(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("alert"))?;
    let names = channel_names(state, caller, vec![alert.channel_id]).await?;
    let incidents = incidents_by_id(state, caller, vec![alert.incident_id.clone()]).await?;
    let mut out = wire::alert(&alert, &names, &incidents);
    // RSP-404: an alert's page shows its channel's links, with the alert placeholders.
    let links =
        super::custom_actions::alert_links(state, &alert, incidents.get(&alert.incident_id))
            .await?;
    if let Value::Object(m) = &mut out {
        m.insert("links".into(), Value::Array(links));
    }
    Ok(out)
}

async fn event_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let start = args.i64("start_time")?.unwrap_or(0);
    let end = args.i64("end_time")?.unwrap_or(0);
    if start > 0 && end > 0 {
        check_window(start, end)?;
    }
    let filter = EventFilter {
        paging: paging(args, 20, 100)?,
        start_time: start.saturating_mul(1000),
        end_time: end.saturating_mul(1000),
        integration_ids: args.i64_list("integration_ids")?,
        integration_types: args.str_list("integration_types")?,
        channel_ids: args.i64_list("channel_ids")?,
        severities: parse_all::<Severity>("severities", args.comma_list("severities")?)?,
        alert_id: args.str("alert_id")?,
        statuses: Vec::new(),
    };
    let page = state
        .store
        .list_events(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let items = page.items.iter().map(wire::event).collect();
    Ok(page_json(&page, items))
}
