//! The Open API's `rules[]` of `/alert/pipeline/{info,list,upsert}` ↔ [`PipelineAction`]s
//! (ingest.md §1.5.4). One wire rule per action, in order:
//!
//! | wire | model |
//! |---|---|
//! | `kind` `title_reset`, `settings.title` | `update_title`, `template` |
//! | `kind` `description_reset`, `settings.description` | `update_description`, `template` |
//! | `kind` `severity_reset`, `settings.severity` | `update_severity`, `severity` |
//! | `kind` `alert_drop` | `drop` |
//! | `kind` `alert_inhibit`, `settings.source_filters`, `settings.equals` | `inhibit`, `source_conditions`, `equal_attributes` + `equal_labels` |
//! | `if` | `condition` |
//! | `id`, `enabled` (Klaxon extensions, optional) | `id`, `enabled` |
//!
//! `if` and `source_filters` are flat AND lists (one group) as Flashduty's clients send them;
//! a list of lists is read as OR-ed groups, and written back the same way. `settings` is an
//! object, or a string holding one (Terraform's `jsonencode`). An `equals` entry is `title`,
//! `description`, `severity` or `labels.<name>`. A rule without `id` takes the id of the
//! stored rule at the same position when that rule has the same kind and no other rule of
//! the request names its id, else a new one: clients that never send ids keep stable ids,
//! which the outcome records cite (ING-262).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::{Action, Attribute, InhibitSpec, PipelineAction, PipelineError, validate};
use crate::condition::{Condition, FilterGroups};
use crate::model::Severity;

/// Wire kinds, in the order of [`Action`].
pub const TITLE_RESET: &str = "title_reset";
pub const DESCRIPTION_RESET: &str = "description_reset";
pub const SEVERITY_RESET: &str = "severity_reset";
pub const ALERT_DROP: &str = "alert_drop";
pub const ALERT_INHIBIT: &str = "alert_inhibit";
const KINDS: &str = "title_reset, description_reset, severity_reset, alert_drop or alert_inhibit";

fn err(field: impl Into<String>, message: impl Into<String>) -> PipelineError {
    PipelineError::new(field, message)
}

/// The wire kind of an action.
pub fn kind_of(action: &Action) -> &'static str {
    match action {
        Action::UpdateTitle { .. } => TITLE_RESET,
        Action::UpdateDescription { .. } => DESCRIPTION_RESET,
        Action::UpdateSeverity { .. } => SEVERITY_RESET,
        Action::Drop => ALERT_DROP,
        Action::Inhibit(_) => ALERT_INHIBIT,
    }
}

/// Reads and validates an upsert's `rules` (see the module docs). `previous` is the stored
/// list, whose ids id-less rules inherit by position; `new_id` makes a fresh id.
pub fn read(
    rules: Option<&Value>,
    previous: &[PipelineAction],
    new_id: &mut dyn FnMut() -> String,
) -> Result<Vec<PipelineAction>, PipelineError> {
    let items = match rules {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            return Err(err(
                "rules",
                "is required (an empty list removes every rule)",
            ));
        }
        Some(_) => return Err(err("rules", "must be a list")),
    };
    if items.len() > super::MAX_ACTIONS {
        return Err(err(
            "rules",
            format!(
                "too many rules ({}; at most {})",
                items.len(),
                super::MAX_ACTIONS
            ),
        ));
    }
    let parsed: Vec<(Option<String>, PipelineAction)> = items
        .iter()
        .enumerate()
        .map(|(i, raw)| parse_rule(i, raw))
        .collect::<Result<_, _>>()?;
    let explicit: HashSet<String> = parsed.iter().filter_map(|(id, _)| id.clone()).collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(parsed.len());
    for (i, (id, mut action)) in parsed.into_iter().enumerate() {
        action.id = match id {
            Some(id) => id,
            None => match previous.get(i) {
                Some(old)
                    if kind_of(&old.action) == kind_of(&action.action)
                        && !explicit.contains(&old.id)
                        && !taken.contains(&old.id) =>
                {
                    old.id.clone()
                }
                _ => new_id(),
            },
        };
        taken.insert(action.id.clone());
        out.push(action);
    }
    validate(&out)?;
    Ok(out)
}

fn parse_rule(i: usize, raw: &Value) -> Result<(Option<String>, PipelineAction), PipelineError> {
    let at = format!("rules[{i}]");
    let Value::Object(rule) = raw else {
        return Err(err(at, "must be an object"));
    };
    let kind = match rule.get("kind") {
        Some(Value::String(k)) if !k.trim().is_empty() => k.trim(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(err(format!("{at}.kind"), format!("is required ({KINDS})")));
        }
        Some(_) => return Err(err(format!("{at}.kind"), "must be a string")),
    };
    let id = match rule.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(_) => return Err(err(format!("{at}.id"), "must be a string")),
    };
    let enabled = match rule.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(err(format!("{at}.enabled"), "must be true or false")),
    };
    let condition = read_groups(rule.get("if"), &format!("{at}.if"))?;
    let settings = read_settings(rule.get("settings"), &format!("{at}.settings"))?;
    let field = |name: &str| format!("{at}.settings.{name}");
    let action = match kind {
        TITLE_RESET => Action::UpdateTitle {
            template: setting_str(&settings, "title", &field("title"))?,
        },
        DESCRIPTION_RESET => Action::UpdateDescription {
            template: setting_str(&settings, "description", &field("description"))?,
        },
        SEVERITY_RESET => {
            let f = field("severity");
            let raw = match settings.get("severity") {
                Some(Value::String(s)) => s.as_str(),
                None | Some(Value::Null) => {
                    return Err(err(f, "is required (Critical, Warning or Info)"));
                }
                Some(_) => return Err(err(f, "must be a string (Critical, Warning or Info)")),
            };
            let severity = raw.parse::<Severity>().map_err(|()| {
                err(
                    f,
                    format!("{raw:?} is not a severity (Critical, Warning or Info)"),
                )
            })?;
            Action::UpdateSeverity { severity }
        }
        ALERT_DROP => Action::Drop,
        ALERT_INHIBIT => {
            let source_conditions =
                read_groups(settings.get("source_filters"), &field("source_filters"))?;
            let (equal_attributes, equal_labels) =
                read_equals(settings.get("equals"), &field("equals"))?;
            Action::Inhibit(InhibitSpec {
                source_conditions,
                equal_attributes,
                equal_labels,
            })
        }
        other => {
            return Err(err(
                format!("{at}.kind"),
                format!("{other:?} is not a rule kind ({KINDS})"),
            ));
        }
    };
    Ok((
        id,
        PipelineAction {
            id: String::new(),
            enabled,
            condition,
            action,
        },
    ))
}

fn read_settings(raw: Option<&Value>, field: &str) -> Result<Map<String, Value>, PipelineError> {
    match raw {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(err(
                field,
                "must be an object (or a string holding a JSON object)",
            )),
        },
        Some(_) => Err(err(field, "must be an object")),
    }
}

fn setting_str(
    settings: &Map<String, Value>,
    name: &str,
    field: &str,
) -> Result<String, PipelineError> {
    match settings.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(err(field, "is required")),
        Some(_) => Err(err(field, "must be a string")),
    }
}

/// A flat list of conditions (one group; empty = none), or a list of lists (groups).
fn read_groups(raw: Option<&Value>, field: &str) -> Result<FilterGroups, PipelineError> {
    let items = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(err(field, "must be a list of conditions")),
    };
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let condition = |path: String, v: &Value| {
        serde_json::from_value::<Condition>(v.clone())
            .map_err(|e| err(path, format!("must be {{key, oper, vals: [string]}}: {e}")))
    };
    if items.iter().all(Value::is_array) {
        items
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let list = group.as_array().map(Vec::as_slice).unwrap_or_default();
                list.iter()
                    .enumerate()
                    .map(|(c, v)| condition(format!("{field}[{g}][{c}]"), v))
                    .collect()
            })
            .collect()
    } else {
        let group = items
            .iter()
            .enumerate()
            .map(|(c, v)| condition(format!("{field}[{c}]"), v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![group])
    }
}

fn read_equals(
    raw: Option<&Value>,
    field: &str,
) -> Result<(Vec<Attribute>, Vec<String>), PipelineError> {
    let items = match raw {
        None | Some(Value::Null) => return Ok((Vec::new(), Vec::new())),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(err(field, "must be a list of strings")),
    };
    let mut attributes = Vec::new();
    let mut labels = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Some(s) = item.as_str() else {
            return Err(err(at, "must be a string"));
        };
        match s {
            "title" => attributes.push(Attribute::Title),
            "description" => attributes.push(Attribute::Description),
            "severity" => attributes.push(Attribute::Severity),
            _ => match s.strip_prefix("labels.") {
                Some(name) if !name.is_empty() => labels.push(name.to_owned()),
                _ => {
                    return Err(err(
                        at,
                        format!("{s:?} is not title, description, severity or labels.<name>"),
                    ));
                }
            },
        }
    }
    Ok((attributes, labels))
}

fn render_groups(groups: &FilterGroups) -> Value {
    match groups.as_slice() {
        [] => json!([]),
        [one] => json!(one),
        many => json!(many),
    }
}

/// The wire rules of `actions` (see the module docs).
pub fn render(actions: &[PipelineAction]) -> Vec<Value> {
    actions
        .iter()
        .map(|a| {
            let settings = match &a.action {
                Action::UpdateTitle { template } => json!({ "title": template }),
                Action::UpdateDescription { template } => json!({ "description": template }),
                Action::UpdateSeverity { severity } => json!({ "severity": severity.as_str() }),
                Action::Drop => json!({}),
                Action::Inhibit(spec) => {
                    let equals: Vec<String> = spec
                        .equal_attributes
                        .iter()
                        .map(|a| a.as_str().to_owned())
                        .chain(spec.equal_labels.iter().map(|l| format!("labels.{l}")))
                        .collect();
                    json!({
                        "source_filters": render_groups(&spec.source_conditions),
                        "equals": equals,
                    })
                }
            };
            json!({
                "id": a.id,
                "kind": kind_of(&a.action),
                "enabled": a.enabled,
                "if": render_groups(&a.condition),
                "settings": settings,
            })
        })
        .collect()
}
