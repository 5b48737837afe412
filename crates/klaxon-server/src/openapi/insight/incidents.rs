//! `/insight/incident/list` (openapi-compat.md 2.14, 1.6; response.md §2.27): the incidents
//! of a period's population (RSP-471), each with the figures the team, channel and account
//! rows add up, paged by `p`/`limit` or by the `search_after_ctx` cursor. The rows of the
//! incident export (RSP-483) are the same objects without labels.

use std::collections::HashMap;

use jiff::tz::TimeZone;
use klaxon_core::error::ApiError;
use klaxon_core::insight::Facts;
use klaxon_core::insight::incident::{self, Moves};
use klaxon_core::insight::responder::Send;
use klaxon_core::model::{Incident, Millis};
use klaxon_store::TimelineFacts;
use serde_json::{Value, json};

use super::super::handlers::{paging, store_err};
use super::super::{Args, Caller};
use super::{Query, channels, facts_of, incidents, read_query, timeline_of};
use crate::state::AppState;
use crate::wire;

/// The only order of the list: by start time (descending unless `asc`), then by id.
const ORDERS: &[&str] = &["start_time"];

/// The population of a query, read once, in list order.
pub(super) struct Population {
    pub(super) query: Query,
    found: Vec<Incident>,
    timeline: HashMap<String, TimelineFacts>,
}

impl Population {
    /// Reads the incidents the common filter block selects. `split_hours` and
    /// `aggregate_unit` shape rows, and a list has none to shape.
    pub(super) async fn read(
        state: &AppState,
        caller: &Caller,
        args: &Args,
    ) -> Result<Population, ApiError> {
        if let Some(o) = args.str("orderby")?.filter(|o| !o.is_empty())
            && !ORDERS.contains(&o.as_str())
        {
            return Err(ApiError::invalid(format!(
                "orderby must be start_time for the incident list, not {o:?}"
            )));
        }
        let mut query = read_query(state, caller, args, ORDERS).await?;
        if query.split_hours || query.unit.is_some() {
            return Err(ApiError::invalid(
                "split_hours and aggregate_unit are not available for the incident list; \
                 each incident carries its hours",
            ));
        }
        let found = incidents(state, caller, &mut query.filter).await?;
        let timeline = timeline_of(state, caller, &found).await?;
        Ok(Population {
            query,
            found,
            timeline,
        })
    }

    /// The incidents that count (RSP-471) within the acknowledgement and close windows,
    /// sorted by start time then id, ascending when `asc`.
    pub(super) fn facts(&self, asc: bool) -> Vec<Facts<'_>> {
        let mut facts: Vec<Facts<'_>> = facts_of(&self.found, &self.timeline, &self.query)
            .into_iter()
            .filter(Facts::counts)
            .collect();
        facts.sort_by(|a, b| {
            let o = key(a).cmp(&key(b));
            if asc { o } else { o.reverse() }
        });
        facts
    }
}

fn key<'a>(f: &Facts<'a>) -> (Millis, &'a str) {
    (f.incident.start_time, f.incident.incident_id.as_str())
}

/// The cursor after an incident: its place in the order, opaque to clients.
fn encode_cursor(f: &Facts<'_>) -> String {
    hex::encode(format!(
        "insight:{}:{}",
        f.incident.start_time, f.incident.incident_id
    ))
}

fn decode_cursor(ctx: &str) -> Result<(Millis, String), ApiError> {
    let bad = || ApiError::invalid("search_after_ctx is invalid");
    let text = String::from_utf8(hex::decode(ctx).map_err(|_| bad())?).map_err(|_| bad())?;
    let rest = text.strip_prefix("insight:").ok_or_else(bad)?;
    let (start, id) = rest.split_once(':').ok_or_else(bad)?;
    Ok((start.parse().map_err(|_| bad())?, id.to_string()))
}

/// The JSON objects of `facts`: each incident as `/incident/list` shows it plus its figures.
pub(super) async fn rows(
    state: &AppState,
    caller: &Caller,
    pop: &Population,
    facts: &[Facts<'_>],
) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<String> = facts
        .iter()
        .map(|f| f.incident.incident_id.clone())
        .collect();
    let sends = state
        .store
        .insight_sends(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let mut by_incident: HashMap<&str, Vec<&Send>> = HashMap::new();
    for s in &sends {
        by_incident
            .entry(s.incident_id.as_str())
            .or_default()
            .push(s);
    }
    let names: HashMap<i64, String> = channels(state, caller)
        .await?
        .into_iter()
        .map(|(id, c)| (id, c.name))
        .collect();
    let tz: &TimeZone = &pop.query.tz;
    let none = TimelineFacts::default();
    Ok(facts
        .iter()
        .map(|f| {
            let inc = f.incident;
            let t = pop.timeline.get(&inc.incident_id).unwrap_or(&none);
            let moves = Moves {
                escalations: t.escalations,
                reassignments: t.reassignments,
            };
            let its = by_incident
                .get(inc.incident_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let m = incident::metrics(f, moves, its, tz);
            let mut v = wire::incident(inc, &names, &state.base_url);
            if let (Some(obj), Value::Object(extra)) = (
                v.as_object_mut(),
                serde_json::to_value(&m).unwrap_or(Value::Null),
            ) {
                obj.extend(extra);
            }
            v
        })
        .collect())
}

pub async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let page = paging(args, 20, 100)?;
    let pop = Population::read(state, caller, args).await?;
    let facts = pop.facts(page.asc);
    let limit = usize::try_from(page.limit).unwrap_or(20);
    let start = match &page.search_after_ctx {
        Some(ctx) if !ctx.is_empty() => {
            let (at, id) = decode_cursor(ctx)?;
            let after = (at, id.as_str());
            // The first incident past the cursor in the list's order.
            facts.partition_point(|f| {
                if page.asc {
                    key(f) <= after
                } else {
                    key(f) >= after
                }
            })
        }
        _ => usize::try_from((page.p - 1).saturating_mul(page.limit)).unwrap_or(usize::MAX),
    };
    let start = start.min(facts.len());
    let end = start.saturating_add(limit).min(facts.len());
    let shown = &facts[start..end];
    let has_next_page = end < facts.len();
    let items = rows(state, caller, &pop, shown).await?;
    let mut out = json!({
        "items": items,
        "total": facts.len(),
        "has_next_page": has_next_page,
    });
    // A cursor only when there is another page (openapi-compat.md 1.6).
    if has_next_page && let (Some(last), Some(obj)) = (shown.last(), out.as_object_mut()) {
        obj.insert("search_after_ctx".into(), json!(encode_cursor(last)));
    }
    Ok(out)
}
