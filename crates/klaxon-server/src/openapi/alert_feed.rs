//! `/alert/feed`: one alert's timeline (openapi-compat.md 2.3), in the shape of
//! `/incident/feed` entries, with the alert webhook's event types (ING-250) as entry types:
//!
//! - `a_new`: the event that opened the alert (its ING-262 outcome `new_alert`), with the
//!   incident it opened or joined and any silence or inhibit mark;
//! - `a_update`: a later event that changed it (`merged`, `merged_nonsignificant`); events that
//!   changed nothing (`duplicate`) are not listed;
//! - `a_merge`: a manual move into another incident (RSP-101), with who moved it;
//! - `a_close`: a recovery event (`resolved`), the expiry of ING-113, or the close of its
//!   incident.
//!
//! Nothing is stored twice for this: the entries are read from the event outcomes the
//! pipeline records for every event (kept at least 7 days, ING-262), the `a_merge` entries of
//! the incidents' timelines, and the alert itself for closes without an event. An alert older
//! than the outcomes' retention therefore shows its moves and its close only.

use std::collections::HashSet;

use klaxon_core::error::ApiError;
use klaxon_core::model::{Alert, Millis, ResolvedBy};
use klaxon_store::{EventOutcome, OutcomeFilter, Paging};
use serde_json::{Value, json};

use super::handlers::{not_found, store_err};
use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &["/alert/feed"];

/// Entry types of the alert feed, in the order a filter names them.
const TYPES: &[&str] = &["a_new", "a_update", "a_merge", "a_close"];

/// The deepest a page may reach (the incident feed's limit).
const MAX_OFFSET: i64 = 10_000;

/// The most manual moves followed back through the incidents' timelines.
const MAX_MOVES: usize = 100;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/alert/feed" => Some(feed(state, caller, args).await.map(Some)),
        _ => None,
    }
}

/// One timeline entry before it is rendered.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    entry_id: String,
    kind: &'static str,
    ref_id: String,
    creator_id: i64,
    created_at: Millis,
    detail: Value,
}

async fn feed(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let alert_id = args
        .str("alert_id")?
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::invalid("alert_id is required"))?;
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args.i64("limit")?.filter(|l| *l > 0).unwrap_or(20).min(100);
    let asc = args.bool("asc")?.unwrap_or(false);
    let types = args.str_list("types")?;
    if let Some(bad) = types.iter().find(|t| !TYPES.contains(&t.as_str())) {
        return Err(ApiError::invalid(format!(
            "types: unknown alert feed type {bad:?}; one of {}",
            TYPES.join(", ")
        )));
    }
    let wanted = |kind: &str| types.is_empty() || types.iter().any(|t| t == kind);
    let offset = (p - 1).saturating_mul(limit);
    if offset > MAX_OFFSET {
        return Err(ApiError::invalid("p × limit must not exceed 10000"));
    }
    let alert = state
        .store
        .alert(caller.account_id, &alert_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| not_found("alert"))?;

    // The events, read up to the end of the page in the requested order; the few other
    // entries are merged in by time, so the page is exact.
    let outcomes: Vec<&str> = [
        ("a_new", "new_alert"),
        ("a_update", "merged"),
        ("a_update", "merged_nonsignificant"),
        ("a_close", "resolved"),
    ]
    .into_iter()
    .filter(|(kind, _)| wanted(kind))
    .map(|(_, outcome)| outcome)
    .collect();
    let mut entries = Vec::new();
    let mut more_events = false;
    if !outcomes.is_empty() {
        let reach = offset + limit + 1;
        let page = state
            .store
            .event_outcomes(
                caller.account_id,
                &OutcomeFilter {
                    paging: Paging {
                        p: 1,
                        limit: reach,
                        asc,
                        search_after_ctx: None,
                    },
                    alert_id: Some(alert.alert_id.clone()),
                    outcomes: outcomes.iter().map(|o| (*o).to_string()).collect(),
                    ..OutcomeFilter::default()
                },
            )
            .await
            .map_err(store_err)?;
        more_events = page.items.len() as i64 >= reach;
        entries.extend(page.items.iter().filter_map(event_entry));
    }
    if wanted("a_merge") {
        entries.extend(moves(state, caller, &alert).await?);
    }
    if wanted("a_close") {
        entries.extend(close_without_event(&alert));
    }
    entries.sort_by(|a, b| {
        let order = (a.created_at, &a.entry_id).cmp(&(b.created_at, &b.entry_id));
        if asc { order } else { order.reverse() }
    });
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(limit).unwrap_or(100));
    let has_next_page = entries.len() > end || more_events;
    let items: Vec<Value> = entries
        .into_iter()
        .skip(start)
        .take(end - start)
        .map(|e| {
            json!({
                "entry_id": e.entry_id,
                "alert_id": alert.alert_id,
                "type": e.kind,
                "ref_id": e.ref_id,
                "creator_id": e.creator_id,
                "detail": e.detail,
                "created_at": e.created_at,
                "updated_at": e.created_at,
            })
        })
        .collect();
    Ok(json!({"items": items, "has_next_page": has_next_page, "p": p, "limit": limit}))
}

/// The entry of one recorded event outcome, if the feed lists it.
fn event_entry(o: &EventOutcome) -> Option<Entry> {
    let (kind, detail) = match o.outcome.as_str() {
        "new_alert" => (
            "a_new",
            json!({
                "event_id": o.event_id, "event_status": o.event_status, "title": o.title,
                "incident_id": o.incident_id, "mark": o.mark, "rule_id": o.rule_id,
                "is_flapping": o.is_flapping,
            }),
        ),
        "merged" | "merged_nonsignificant" => (
            "a_update",
            json!({
                "event_id": o.event_id, "event_status": o.event_status, "title": o.title,
                "significant": o.outcome == "merged", "incident_id": o.incident_id,
            }),
        ),
        "resolved" => (
            "a_close",
            json!({"from": "event", "event_id": o.event_id, "incident_id": o.incident_id}),
        ),
        _ => return None,
    };
    Some(Entry {
        entry_id: o.outcome_id.clone(),
        kind,
        ref_id: o.event_id.clone(),
        creator_id: 0,
        created_at: o.received_at,
        detail,
    })
}

/// The alert's manual moves (RSP-101): each move is an `a_merge` entry on the timeline of the
/// incident it went to, naming the incident it came from, so the chain is followed back from
/// the alert's incident.
async fn moves(state: &AppState, caller: &Caller, alert: &Alert) -> Result<Vec<Entry>, ApiError> {
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut incident = alert.incident_id.clone();
    while !incident.is_empty() && seen.insert(incident.clone()) && out.len() < MAX_MOVES {
        let (entries, _) = state
            .store
            .incident_feed(
                caller.account_id,
                &incident,
                &["a_merge".to_string()],
                false,
                0,
                10_000,
            )
            .await
            .map_err(store_err)?;
        // The newest move of this alert into this incident.
        let Some(e) = entries
            .into_iter()
            .find(|e| e.detail["alert_id"].as_str() == Some(alert.alert_id.as_str()))
        else {
            break;
        };
        let from = e.detail["from_incident_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        out.push(Entry {
            entry_id: e.entry_id,
            kind: "a_merge",
            ref_id: e.incident_id.clone(),
            creator_id: e.creator_id,
            created_at: e.created_at,
            detail: json!({
                "incident_id": e.incident_id, "from_incident_id": from,
                "comment": e.detail["comment"].as_str().unwrap_or_default(),
            }),
        });
        incident = from;
    }
    Ok(out)
}

/// A close no event explains: the expiry of ING-113 (at `end_time`), or the close of the
/// alert's incident (at `close_time`). A recovery event has its own entry.
fn close_without_event(alert: &Alert) -> Option<Entry> {
    let (from, at) = match alert.resolved_by {
        ResolvedBy::Expiry if alert.end_time > 0 => ("expiry", alert.end_time),
        ResolvedBy::None if alert.closed && alert.close_time > 0 => ("incident", alert.close_time),
        _ => return None,
    };
    Some(Entry {
        entry_id: format!("{}-close", alert.alert_id),
        kind: "a_close",
        ref_id: alert.alert_id.clone(),
        creator_id: 0,
        created_at: at,
        detail: json!({"from": from, "incident_id": alert.incident_id}),
    })
}
