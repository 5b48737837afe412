//! `/insight/{incident,team,channel,responder}/export` (openapi-compat.md 2.14, 1.4;
//! response.md RSP-483): the incident list (without labels) or the team, channel or
//! responder rows of a query as a CSV file, with the columns `export_fields` picks (all by
//! default), at most 100,000 rows. The rows are those the list endpoints return; the file is
//! written by `klaxon_core::insight::export`.

use klaxon_core::error::ApiError;
use klaxon_core::insight::export::{self, Refusal};
use klaxon_notify::render::html_to_text;
use serde_json::{Value, json};

use super::super::{Args, Caller};
use super::incidents::{self, Population};
use super::{Dimension, METRICS, aggregate, responder};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/insight/incident/export",
    "/insight/team/export",
    "/insight/channel/export",
    "/insight/responder/export",
];

/// The columns of the incident export: what `/insight/incident/list` shows but the labels
/// (RSP-483) and the nested lists a spreadsheet cannot use.
const INCIDENT_COLUMNS: &[&str] = &[
    "incident_id",
    "num",
    "title",
    "description",
    "incident_severity",
    "incident_status",
    "progress",
    "channel_id",
    "channel_name",
    "start_time",
    "ack_time",
    "close_time",
    "close_source",
    "creator_id",
    "closer_id",
    "impact",
    "root_cause",
    "resolution",
    "frequency",
    "alert_cnt",
    "alert_event_cnt",
    "seconds_to_ack",
    "seconds_to_close",
    "engaged_seconds",
    "acknowledgements",
    "escalations",
    "reassignments",
    "notifications",
    "interruptions",
    "hours",
    "detail_url",
];

/// The columns that name a row of each dimension, before its metrics.
const TEAM_KEYS: &[&str] = &["team_id", "team_name", "hours", "ts"];
const CHANNEL_KEYS: &[&str] = &["channel_id", "channel_name", "hours", "ts"];
const RESPONDER_KEYS: &[&str] = &["responder_id", "responder_name"];

fn refused(r: Refusal) -> ApiError {
    ApiError::invalid(r.to_string())
}

pub async fn export(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Result<Value, ApiError> {
    let asked = args.str_list("export_fields")?;
    let (name, known, rows): (&str, Vec<&str>, Vec<Value>) = match path {
        "/insight/incident/export" => {
            let columns = export::columns(&asked, INCIDENT_COLUMNS).map_err(refused)?;
            let pop = Population::read(state, caller, args).await?;
            let facts = pop.facts(args.bool("asc")?.unwrap_or(false));
            // Refused before the sends of every incident are read.
            export::check_rows(facts.len()).map_err(refused)?;
            let mut rows = incidents::rows(state, caller, &pop, &facts).await?;
            if args.bool("description_html_to_text")? == Some(true) {
                for row in &mut rows {
                    if let Some(d) = row.get("description").and_then(Value::as_str) {
                        let text = html_to_text(d);
                        row["description"] = json!(text);
                    }
                }
            }
            return Ok(file("insight-incidents.csv", &columns, &rows));
        }
        "/insight/team/export" => {
            let known = [TEAM_KEYS, METRICS].concat();
            export::columns(&asked, &known).map_err(refused)?;
            let data = aggregate(state, caller, args, Dimension::Team).await?;
            ("insight-teams.csv", known, items(data))
        }
        "/insight/channel/export" => {
            let known = [CHANNEL_KEYS, METRICS].concat();
            export::columns(&asked, &known).map_err(refused)?;
            let data = aggregate(state, caller, args, Dimension::Channel).await?;
            ("insight-channels.csv", known, items(data))
        }
        _ => {
            let known = [RESPONDER_KEYS, responder::METRICS].concat();
            export::columns(&asked, &known).map_err(refused)?;
            let data = responder::rows(state, caller, args).await?;
            ("insight-responders.csv", known, items(data))
        }
    };
    export::check_rows(rows.len()).map_err(refused)?;
    // Without a choice, the columns a split or a series did not fill are left out.
    let known: Vec<&str> = if asked.is_empty() {
        known
            .into_iter()
            .filter(|c| !matches!(*c, "hours" | "ts") || rows.iter().any(|r| r.get(*c).is_some()))
            .collect()
    } else {
        known
    };
    let columns = export::columns(&asked, &known).map_err(refused)?;
    Ok(file(name, &columns, &rows))
}

fn items(data: Value) -> Vec<Value> {
    match data {
        Value::Object(mut m) => match m.remove("items") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// What `csv_response` turns into the file.
fn file(name: &str, columns: &[String], rows: &[Value]) -> Value {
    json!({ "csv": export::csv(columns, rows), "file_name": name })
}
