//! `/insight/account`, `/insight/team` and `/insight/channel` (openapi-compat.md 2.14;
//! response.md §2.27): how the account, each team and each channel responded to the incidents
//! that started in a period — counts, MTTA, MTTR, acknowledgement and noise reduction rates,
//! response effort — optionally split by time of day (`split_hours`) or into a time series
//! (`aggregate_unit`). The incidents are read through the same filter as `/incident/list`
//! (teams, channels, severities, labels, custom fields, responders, private channels the caller
//! may not see, RSP-507); the figures are computed by `klaxon_core::insight`.

use std::collections::{BTreeMap, HashMap};

use jiff::tz::TimeZone;
use klaxon_core::error::ApiError;
use klaxon_core::insight::{self, Facts, Hours, MAX_POINTS, MAX_RANGE_DAYS, Totals, Unit};
use klaxon_core::model::{Incident, Millis, Severity};
use klaxon_store::{ChannelFilter, IncidentFilter, Paging, TimelineFacts};
use serde_json::{Value, json};

use super::handlers::{field_filters, hidden_channels, label_filter, store_err};
use super::{Args, Caller};
use crate::state::AppState;

mod export;
mod incidents;
mod responder;
mod topk;

pub const PATHS: &[&str] = &[
    "/insight/account",
    "/insight/team",
    "/insight/channel",
    "/insight/responder",
    "/insight/incident/list",
    "/insight/alert/topk-by-label",
    "/insight/incident/export",
    "/insight/team/export",
    "/insight/channel/export",
    "/insight/responder/export",
];

/// An export's success response is its CSV (openapi-compat.md 1.4); None for other paths.
pub(crate) fn csv_response(
    path: &str,
    request_id: &str,
    data: &Option<Value>,
) -> Option<axum::response::Response> {
    if !export::PATHS.contains(&path) {
        return None;
    }
    super::enrichment::csv_file(request_id, data, "insight.csv")
}

/// Incidents one query may read; a longer range has to be split.
const MAX_INCIDENTS: usize = 200_000;
/// Incidents read per store call.
const READ_PAGE: i64 = 1_000;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    let dim = match path {
        "/insight/account" => Dimension::Account,
        "/insight/team" => Dimension::Team,
        "/insight/channel" => Dimension::Channel,
        "/insight/responder" => return Some(responder::rows(state, caller, args).await.map(Some)),
        "/insight/incident/list" => {
            return Some(incidents::list(state, caller, args).await.map(Some));
        }
        "/insight/alert/topk-by-label" => {
            return Some(topk::list(state, caller, args).await.map(Some));
        }
        p if export::PATHS.contains(&p) => {
            return Some(export::export(state, caller, p, args).await.map(Some));
        }
        _ => return None,
    };
    Some(aggregate(state, caller, args, dim).await.map(Some))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Account,
    Team,
    Channel,
}

/// The query as read from the common filter block.
struct Query {
    filter: IncidentFilter,
    tz: TimeZone,
    split_hours: bool,
    unit: Option<Unit>,
    ack_secs: (Option<i64>, Option<i64>),
    close_secs: (Option<i64>, Option<i64>),
    orderby: Option<String>,
    asc: bool,
}

/// The metrics `orderby` may name.
pub(super) const METRICS: &[&str] = &[
    "total_incident_cnt",
    "total_incidents_acknowledged",
    "total_incidents_closed",
    "total_incidents_auto_closed",
    "total_incidents_manually_closed",
    "total_incidents_timeout_closed",
    "total_incidents_escalated",
    "total_incidents_reassigned",
    "total_alert_cnt",
    "total_alert_event_cnt",
    "total_seconds_to_ack",
    "total_seconds_to_close",
    "total_engaged_seconds",
    "mean_seconds_to_ack",
    "mean_seconds_to_close",
    "acknowledgement_pct",
    "noise_reduction_pct",
];

async fn read_query(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    metrics: &[&str],
) -> Result<Query, ApiError> {
    let start = args
        .i64("start_time")?
        .ok_or_else(|| ApiError::invalid("start_time is required"))?;
    let end = args
        .i64("end_time")?
        .ok_or_else(|| ApiError::invalid("end_time is required"))?;
    if start < 0 || end <= start {
        return Err(ApiError::invalid(
            "end_time must be after start_time, both Unix seconds",
        ));
    }
    // RSP-470: at most 180 days.
    if end - start > MAX_RANGE_DAYS * 86_400 {
        return Err(ApiError::invalid(format!(
            "end_time - start_time must be at most {MAX_RANGE_DAYS} days"
        )));
    }
    let (from, to) = (start.saturating_mul(1000), end.saturating_mul(1000));
    let zone = match args.str("time_zone")?.filter(|z| !z.trim().is_empty()) {
        Some(z) => z,
        None => state
            .store
            .account(caller.account_id)
            .await
            .map_err(store_err)?
            .map(|a| a.time_zone)
            .unwrap_or_default(),
    };
    let tz = if zone.is_empty() {
        TimeZone::UTC
    } else {
        TimeZone::get(&zone).map_err(|_| {
            ApiError::invalid(format!("time_zone is not a known IANA time zone: {zone:?}"))
        })?
    };
    let unit = match args.str("aggregate_unit")?.filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => {
            let unit = Unit::parse(&u).ok_or_else(|| {
                ApiError::invalid(format!(
                    "aggregate_unit must be hour, day, week or month, not {u:?}"
                ))
            })?;
            // RSP-481: at most 31 points.
            if unit.points(from, to, &tz) > MAX_POINTS {
                return Err(ApiError::invalid(format!(
                    "aggregate_unit {u} gives more than {MAX_POINTS} points over this range; \
                     choose a longer unit or a shorter range"
                )));
            }
            Some(unit)
        }
    };
    // `severities` is an array here (openapi-compat.md 1.3).
    let severities = args
        .str_list("severities")?
        .into_iter()
        .map(|s| {
            s.parse::<Severity>()
                .map_err(|_| ApiError::invalid(format!("severities has an invalid value: {s}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut team_ids = args.i64_list("team_ids")?;
    if args.bool("is_my_team")? == Some(true) {
        let mine = state
            .store
            .member_team_ids(caller.account_id, caller.member_id)
            .await
            .map_err(store_err)?;
        team_ids = if team_ids.is_empty() {
            mine
        } else {
            team_ids.into_iter().filter(|t| mine.contains(t)).collect()
        };
        if team_ids.is_empty() {
            // A member of no team has no team's incidents.
            team_ids.push(-1);
        }
    }
    let mut channel_ids = args.i64_list("channel_ids")?;
    if !team_ids.is_empty() {
        let of_teams: Vec<i64> = channels(state, caller)
            .await?
            .into_iter()
            .filter(|(_, c)| c.teams.iter().any(|t| team_ids.contains(t)))
            .map(|(id, _)| id)
            .collect();
        channel_ids = if channel_ids.is_empty() {
            of_teams
        } else {
            channel_ids.retain(|c| of_teams.contains(c));
            channel_ids
        };
        if channel_ids.is_empty() {
            channel_ids.push(-1); // no channel of those teams: nothing matches
        }
    }
    let orderby = args.str("orderby")?.filter(|o| !o.is_empty());
    if let Some(o) = &orderby
        && !metrics.contains(&o.as_str())
    {
        return Err(ApiError::invalid(format!(
            "orderby must name a metric such as total_incident_cnt, not {o:?}"
        )));
    }
    let secs = |name: &str| -> Result<Option<i64>, ApiError> {
        let v = args.i64(name)?;
        if v.is_some_and(|v| v < 0) {
            return Err(ApiError::invalid(format!("{name} must not be negative")));
        }
        Ok(v)
    };
    Ok(Query {
        filter: IncidentFilter {
            paging: Paging {
                p: 1,
                limit: READ_PAGE,
                asc: true,
                search_after_ctx: None,
            },
            start_time: from,
            // `[from, to)` (RSP-470), as the store reads its window.
            end_time: to,
            severities,
            channel_ids,
            incident_ids: args.str_list("incident_ids")?,
            query: args.str("query")?,
            now: state.clock.now(),
            responder_ids: args.i64_list("responder_ids")?,
            fields: field_filters(state, caller, args).await?,
            labels: label_filter(args)?,
            hidden_channel_ids: hidden_channels(state, caller).await?,
            ..IncidentFilter::default()
        },
        tz,
        split_hours: args.bool("split_hours")?.unwrap_or(false),
        unit,
        ack_secs: (secs("seconds_to_ack_from")?, secs("seconds_to_ack_to")?),
        close_secs: (secs("seconds_to_close_from")?, secs("seconds_to_close_to")?),
        orderby,
        asc: args.bool("asc")?.unwrap_or(false),
    })
}

/// A channel as insights group by it.
struct ChannelInfo {
    name: String,
    /// Its team and managing teams (RSP-470).
    teams: Vec<i64>,
}

async fn channels(
    state: &AppState,
    caller: &Caller,
) -> Result<HashMap<i64, ChannelInfo>, ApiError> {
    let mut out = HashMap::new();
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
        for c in &page.items {
            let mut teams: Vec<i64> = c.managing_team_ids.clone();
            if c.team_id > 0 {
                teams.push(c.team_id);
            }
            teams.sort_unstable();
            teams.dedup();
            out.insert(
                c.channel_id,
                ChannelInfo {
                    name: c.channel_name.clone(),
                    teams,
                },
            );
        }
        if !page.has_next_page {
            break;
        }
        p += 1;
    }
    Ok(out)
}

/// Every incident the filter matches, in pages.
async fn incidents(
    state: &AppState,
    caller: &Caller,
    filter: &mut IncidentFilter,
) -> Result<Vec<Incident>, ApiError> {
    let mut out = Vec::new();
    loop {
        let page = state
            .store
            .list_incidents(caller.account_id, filter)
            .await
            .map_err(store_err)?;
        out.extend(page.items);
        if out.len() > MAX_INCIDENTS {
            return Err(ApiError::invalid(format!(
                "more than {MAX_INCIDENTS} incidents match; choose a shorter range"
            )));
        }
        if !page.has_next_page {
            return Ok(out);
        }
        filter.paging.p += 1;
    }
}

fn within(v: Option<i64>, (from, to): (Option<i64>, Option<i64>)) -> bool {
    if from.is_none() && to.is_none() {
        return true;
    }
    v.is_some_and(|v| from.is_none_or(|f| v >= f) && to.is_none_or(|t| v <= t))
}

/// The grouping key of one row: the dimension's id, then the time-of-day part and the
/// bucket when asked for.
type RowKey = (i64, Option<Hours>, Option<Millis>);

/// The timeline facts of the incidents found.
async fn timeline_of(
    state: &AppState,
    caller: &Caller,
    found: &[Incident],
) -> Result<HashMap<String, TimelineFacts>, ApiError> {
    let ids: Vec<String> = found.iter().map(|i| i.incident_id.clone()).collect();
    state
        .store
        .insight_timeline_facts(caller.account_id, &ids)
        .await
        .map_err(store_err)
}

/// The incidents found with their timeline facts, within the acknowledgement and close
/// windows of the query.
fn facts_of<'a>(
    found: &'a [Incident],
    timeline: &HashMap<String, TimelineFacts>,
    q: &Query,
) -> Vec<Facts<'a>> {
    let none = TimelineFacts::default();
    found
        .iter()
        .filter(|i| {
            let ack = (i.ack_time > 0).then(|| (i.ack_time - i.start_time) / 1000);
            let close = (i.close_time > 0).then(|| (i.close_time - i.start_time) / 1000);
            within(ack, q.ack_secs) && within(close, q.close_secs)
        })
        .map(|i| {
            let t = timeline.get(&i.incident_id).unwrap_or(&none);
            Facts {
                incident: i,
                escalated: t.escalated,
                reassigned: t.reassigned,
                merged_away: t.merged_away,
                first_acks: t.first_acks.clone(),
            }
        })
        .collect()
}

async fn aggregate(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    dim: Dimension,
) -> Result<Value, ApiError> {
    let mut q = read_query(state, caller, args, METRICS).await?;
    let found = incidents(state, caller, &mut q.filter).await?;
    let timeline = timeline_of(state, caller, &found).await?;
    let facts = facts_of(&found, &timeline, &q);
    let chans = channels(state, caller).await?;

    let tz = q.tz.clone();
    let (split, unit) = (q.split_hours, q.unit);
    let rows: BTreeMap<RowKey, Totals> = insight::grouped(&facts, |f| {
        let inc = f.incident;
        let hours = split.then(|| Hours::of(inc.start_time, &tz));
        let ts = unit.map(|u| u.bucket(inc.start_time, &tz));
        let ids: Vec<i64> = match dim {
            Dimension::Account => vec![caller.account_id],
            Dimension::Channel => vec![inc.channel_id],
            Dimension::Team => chans
                .get(&inc.channel_id)
                .map(|c| c.teams.clone())
                .unwrap_or_default(),
        };
        ids.into_iter().map(|id| (id, hours, ts)).collect()
    });
    let team_names: HashMap<i64, String> = if dim == Dimension::Team {
        let ids: Vec<i64> = rows.keys().map(|k| k.0).collect();
        state
            .store
            .teams(caller.account_id, &ids)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|t| (t.team_id, t.team_name))
            .collect()
    } else {
        HashMap::new()
    };
    let mut items: Vec<Value> = rows
        .into_iter()
        .map(|((id, hours, ts), totals)| {
            let mut v = serde_json::to_value(&totals).unwrap_or(Value::Null);
            if let Some(obj) = v.as_object_mut() {
                match dim {
                    Dimension::Account => {
                        obj.insert("account_id".into(), json!(id));
                    }
                    Dimension::Team => {
                        obj.insert("team_id".into(), json!(id));
                        obj.insert(
                            "team_name".into(),
                            json!(team_names.get(&id).cloned().unwrap_or_default()),
                        );
                    }
                    Dimension::Channel => {
                        obj.insert("channel_id".into(), json!(id));
                        // RSP-471: global incidents count under channel "none".
                        let name = if id == 0 {
                            "none".to_string()
                        } else {
                            chans.get(&id).map(|c| c.name.clone()).unwrap_or_default()
                        };
                        obj.insert("channel_name".into(), json!(name));
                    }
                }
                if let Some(h) = hours {
                    obj.insert("hours".into(), json!(h));
                }
                if let Some(ts) = ts {
                    obj.insert("ts".into(), json!(ts / 1000));
                }
            }
            v
        })
        .collect();
    sort_rows(&mut items, q.orderby.as_deref(), q.asc);
    Ok(json!({ "items": items }))
}

/// Sorts rows by a metric, descending unless `asc`; nulls (no acknowledgement, no events)
/// sort last either way.
fn sort_rows(items: &mut [Value], orderby: Option<&str>, asc: bool) {
    if let Some(metric) = orderby {
        // Nulls (no acknowledgement, no events) sort last either way.
        items.sort_by(|a, b| {
            let (x, y) = (a[metric].as_f64(), b[metric].as_f64());
            match (x, y) {
                (Some(x), Some(y)) => {
                    let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                    if asc { o } else { o.reverse() }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        });
    }
}
