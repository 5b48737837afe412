//! The wire form of routes (`cases`, `sections`, `default`, `version`) ↔ RouteConfig, as
//! ingest.md §1.5.3 maps it.
//!
//! - One case per rule, in order; a case's flat `if` list is the rule's single condition group
//!   (empty = match everything); `fallthrough: true` is `continue`, anything else `stop`.
//! - On read, a rule with k > 1 groups is shown as k consecutive cases with the same `id`,
//!   targets and flow; on write, consecutive cases sharing an `id` are joined back into that
//!   rule, so a configuration read and written back is unchanged.
//! - `routing_mode` must be `standard` (or absent): `name_mapping` is refused
//!   (openapi-compat.md 5.2 item 17).
//! - A case without `id` takes the id of the rule at the same position in the version the
//!   save is based on when no other case uses it, else a new one: clients that never send
//!   ids (Terraform) still get a meaningful `/route/diff`.
//! - Section positions are case positions on the wire and rule positions in the model.

use std::collections::HashSet;

use klaxon_core::condition::{Condition, Part, Position};
use klaxon_core::error::ApiError;
use klaxon_core::routing::{
    Place, RouteConfig, RouteError, RouteFlow, RouteProblem, RouteRule, Section,
};
use serde_json::{Map, Value, json};

use crate::state::random_hex;

/// A configuration read from the wire, with where each rule came from.
pub struct WireRoutes {
    pub config: RouteConfig,
    /// The first case of each rule.
    first_case: Vec<usize>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(msg.into())
}

fn channel_list(v: Option<&Value>, field: &str) -> Result<Vec<i64>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_i64()
                    .ok_or_else(|| invalid(format!("{field} must be a list of channel ids")))
            })
            .collect(),
        Some(_) => Err(invalid(format!("{field} must be a list of channel ids"))),
    }
}

fn opt_str(case: &Map<String, Value>, name: &str, field: &str) -> Result<String, ApiError> {
    match case.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.trim().to_owned()),
        Some(_) => Err(invalid(format!("{field}.{name} must be a string"))),
    }
}

fn opt_bool(case: &Map<String, Value>, name: &str, field: &str) -> Result<Option<bool>, ApiError> {
    match case.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("{field}.{name} must be true or false"))),
    }
}

/// One wire case, parsed.
struct Case {
    id: String,
    name: String,
    enabled: bool,
    conditions: Vec<Condition>,
    channel_ids: Vec<i64>,
    flow: RouteFlow,
}

fn parse_case(i: usize, raw: &Value) -> Result<Case, ApiError> {
    let field = format!("cases[{i}]");
    let Value::Object(case) = raw else {
        return Err(invalid(format!("{field} must be an object")));
    };
    match case.get("routing_mode") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m.is_empty() || m == "standard" => {}
        Some(Value::String(m)) if m == "name_mapping" => {
            return Err(invalid(format!(
                "{field}.routing_mode name_mapping is not supported (only standard)"
            )));
        }
        Some(other) => {
            return Err(invalid(format!(
                "{field}.routing_mode {other} is invalid (standard)"
            )));
        }
    }
    let conditions = match case.get("if") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(c, item)| {
                serde_json::from_value::<Condition>(item.clone()).map_err(|e| {
                    invalid(format!(
                        "{field}.if[{c}] must be {{key, oper, vals: [string]}}: {e}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid(format!("{field}.if must be a list of conditions"))),
    };
    let flow = match opt_bool(case, "fallthrough", &field)? {
        Some(true) => RouteFlow::Continue,
        _ => RouteFlow::Stop,
    };
    Ok(Case {
        id: opt_str(case, "id", &field)?,
        name: opt_str(case, "name", &field)?,
        enabled: opt_bool(case, "enabled", &field)?.unwrap_or(true),
        conditions,
        channel_ids: channel_list(case.get("channel_ids"), &format!("{field}.channel_ids"))?,
        flow,
    })
}

/// Reads `cases`, `sections` and `default` of an upsert (or a preview's `route`). `based_on`
/// is the version the save is based on, whose rule ids id-less cases inherit by position.
pub fn read(
    body: &Map<String, Value>,
    based_on: Option<&RouteConfig>,
) -> Result<WireRoutes, ApiError> {
    let cases: Vec<Case> = match body.get("cases") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, c)| parse_case(i, c))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("cases must be a list")),
    };
    // Ids that inherit: those no case names explicitly.
    let explicit: HashSet<&str> = cases
        .iter()
        .map(|c| c.id.as_str())
        .filter(|id| !id.is_empty())
        .collect();
    let mut rules: Vec<RouteRule> = Vec::new();
    let mut first_case: Vec<usize> = Vec::new();
    let mut inherited: HashSet<String> = HashSet::new();
    for (i, case) in cases.iter().enumerate() {
        // Join a case into the previous rule when it repeats its id.
        if !case.id.is_empty()
            && let Some(last) = rules.last_mut()
            && last.id == case.id
        {
            let differs = if last.channel_ids != case.channel_ids {
                Some("channel_ids")
            } else if last.flow != case.flow {
                Some("fallthrough")
            } else if last.name != case.name {
                Some("name")
            } else if last.enabled != case.enabled {
                Some("enabled")
            } else {
                None
            };
            if let Some(what) = differs {
                return Err(invalid(format!(
                    "cases[{i}].{what}: the case repeats the id {:?} of the case before it, so it must have the same {what}",
                    case.id
                )));
            }
            // A case matching everything makes the whole rule match everything.
            if case.conditions.is_empty() || last.conditions.is_empty() {
                last.conditions.clear();
            } else {
                last.conditions.push(case.conditions.clone());
            }
            continue;
        }
        let id = if case.id.is_empty() {
            based_on
                .and_then(|b| b.rules.get(rules.len()))
                .map(|r| r.id.clone())
                .filter(|id| !explicit.contains(id.as_str()) && !inherited.contains(id))
                .unwrap_or_else(|| random_hex(8))
        } else {
            case.id.clone()
        };
        inherited.insert(id.clone());
        first_case.push(i);
        rules.push(RouteRule {
            id,
            name: case.name.clone(),
            enabled: case.enabled,
            conditions: if case.conditions.is_empty() {
                Vec::new()
            } else {
                vec![case.conditions.clone()]
            },
            channel_ids: case.channel_ids.clone(),
            flow: case.flow,
        });
    }
    let sections = read_sections(body.get("sections"), &first_case, cases.len())?;
    let default_channel_ids = match body.get("default") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(d)) => channel_list(d.get("channel_ids"), "default.channel_ids")?,
        Some(_) => return Err(invalid("default must be an object {channel_ids}")),
    };
    Ok(WireRoutes {
        config: RouteConfig {
            rules,
            default_channel_ids,
            sections,
            ..RouteConfig::default()
        },
        first_case,
    })
}

fn read_sections(
    raw: Option<&Value>,
    first_case: &[usize],
    case_count: usize,
) -> Result<Vec<Section>, ApiError> {
    let items = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("sections must be a list")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(s) = item else {
                return Err(invalid(format!("sections[{i}] must be an object {{name, position}}")));
            };
            let name = match s.get("name") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(n)) => n.trim().to_owned(),
                Some(_) => return Err(invalid(format!("sections[{i}].name must be a string"))),
            };
            let position = match s.get("position") {
                None | Some(Value::Null) => 0,
                Some(v) => v
                    .as_u64()
                    .and_then(|p| usize::try_from(p).ok())
                    .ok_or_else(|| {
                        invalid(format!("sections[{i}].position must be a case position"))
                    })?,
            };
            // A case position → the rule starting there (or the end of the list).
            let rule = if position >= case_count {
                // Past the end stays past the end, so validation names it.
                first_case.len() + (position - case_count)
            } else {
                first_case
                    .iter()
                    .position(|c| *c == position)
                    .ok_or_else(|| {
                        invalid(format!(
                            "sections[{i}].position {position} falls inside a rule shown as several cases"
                        ))
                    })?
            };
            Ok(Section {
                name,
                position: rule,
            })
        })
        .collect()
}

impl WireRoutes {
    /// A validation error in wire terms: `cases[3].channel_ids: …`, `cases[1].if[0].vals[2]: …`.
    pub fn error(&self, e: &RouteError) -> ApiError {
        invalid(wire_message(e, &self.first_case))
    }
}

fn wire_message(e: &RouteError, first_case: &[usize]) -> String {
    match (&e.place, &e.problem) {
        (Place::Rule(r), RouteProblem::Conditions(c)) => {
            let base = first_case.get(*r).copied().unwrap_or(*r);
            let at: Position = c.position();
            let mut path = format!("cases[{}].if", base + at.group.unwrap_or(0));
            if let Some(cond) = at.condition {
                path.push_str(&format!("[{cond}]"));
            }
            match at.part {
                None => {}
                Some(Part::Key) => path.push_str(".key"),
                Some(Part::Oper) => path.push_str(".oper"),
                Some(Part::Vals) => path.push_str(".vals"),
                Some(Part::Val(v)) => path.push_str(&format!(".vals[{v}]")),
            }
            format!("{path}: {}", c.problem())
        }
        (Place::Rule(r), p) => {
            let case = first_case.get(*r).copied().unwrap_or(*r);
            format!("cases[{case}].{}: {p}", p.field())
        }
        (Place::Default, p) => format!("default.channel_ids: {p}"),
        (Place::Section(s), p) => format!("sections[{s}].{}: {p}", p.field()),
    }
}

/// The cases of `config` (§1.5.3 rendering) and, per rule, its first case position.
pub fn cases(config: &RouteConfig) -> (Vec<Value>, Vec<usize>) {
    let mut out = Vec::new();
    let mut first = Vec::with_capacity(config.rules.len());
    for rule in &config.rules {
        first.push(out.len());
        let everything: &[Condition] = &[];
        let groups: Vec<&[Condition]> = if rule.conditions.is_empty() {
            vec![everything]
        } else {
            rule.conditions.iter().map(Vec::as_slice).collect()
        };
        for group in groups {
            out.push(json!({
                "id": rule.id,
                "name": rule.name,
                "enabled": rule.enabled,
                "if": group,
                "channel_ids": rule.channel_ids,
                "fallthrough": rule.flow == RouteFlow::Continue,
                "routing_mode": "standard",
            }));
        }
    }
    (out, first)
}

/// `cases`, `sections` (in case positions) and `default` of a version.
pub fn render(config: &RouteConfig) -> Map<String, Value> {
    let (cases, first) = cases(config);
    let total = cases.len();
    let sections: Vec<Value> = config
        .sections
        .iter()
        .map(|s| {
            let position = first.get(s.position).copied().unwrap_or(total);
            json!({"name": s.name, "position": position})
        })
        .collect();
    let mut out = Map::new();
    out.insert("cases".into(), Value::Array(cases));
    out.insert("sections".into(), Value::Array(sections));
    out.insert(
        "default".into(),
        json!({"channel_ids": config.default_channel_ids}),
    );
    out
}
