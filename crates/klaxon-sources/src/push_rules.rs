//! Push modes of the message-based integrations (ingest.md ING-216): e-mail (§2.18, §3.8) and
//! the chat-bot integrations (ING-218) decide the same way whether a message triggers, closes
//! or is dropped, and which alert key it carries. What differs is the vocabulary — the rule
//! fields, the key sources and the modes a type offers — which each caller passes as a
//! [`Flavor`].

use klaxon_core::condition::{Context as FilterContext, Filter, FilterGroups, Subject};
use klaxon_core::error::ApiError;
use klaxon_core::standard::hash_parts;
use regex::Regex;
use serde_json::Value;

/// ING-216: a key longer than this is replaced by a hash.
const KEY_MAX_CHARS: usize = 255;

/// ING-216 push modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    AlwaysNew,
    /// Keyed on the mail subject or the chat message title.
    BySubject,
    ByRules,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Trigger,
    Close,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub filter: Filter,
    pub action: RuleAction,
}

/// The vocabulary of one integration type.
pub(crate) struct Flavor {
    /// Which keys rule conditions may test.
    pub filter: FilterContext,
    /// Wire names of the modes the type offers; the first is the default.
    pub modes: &'static [(&'static str, PushMode)],
    /// Wire names of the `key_rule.source` values, in the caller's index order.
    pub key_sources: &'static [&'static str],
}

/// Validated settings; `key_rule.0` indexes [`Flavor::key_sources`].
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub push_mode: PushMode,
    pub rules: Vec<Rule>,
    pub key_rule: Option<(usize, Regex)>,
    pub drop_unmatched: bool,
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Validates an integration's `settings` (on save and on receipt). Unknown members are the
/// caller's business.
pub(crate) fn parse(settings: &Value, flavor: &Flavor) -> Result<Parsed, ApiError> {
    let default_mode = flavor
        .modes
        .first()
        .map_or(PushMode::AlwaysNew, |(_, m)| *m);
    let mut out = Parsed {
        push_mode: default_mode,
        rules: Vec::new(),
        key_rule: None,
        drop_unmatched: false,
    };
    let Some(obj) = settings.as_object() else {
        return Ok(out);
    };
    match obj.get("push_mode") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => {
            out.push_mode = flavor
                .modes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, m)| *m)
                .ok_or_else(|| {
                    let names: Vec<&str> = flavor.modes.iter().map(|(n, _)| *n).collect();
                    ApiError::invalid(format!(
                        "settings.push_mode {name} is invalid ({})",
                        one_of(&names)
                    ))
                })?;
        }
        Some(_) => return Err(ApiError::invalid("settings.push_mode must be a string")),
    }
    out.drop_unmatched = match obj.get("drop_unmatched") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("settings.drop_unmatched must be a bool")),
    };
    if out.push_mode != PushMode::ByRules {
        if obj.contains_key("rules") || obj.contains_key("key_rule") {
            return Err(ApiError::invalid(
                "settings.rules and settings.key_rule need push_mode by_rules",
            ));
        }
        return Ok(out);
    }
    let rules = obj
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("settings.rules is required for by_rules"))?;
    for (i, rule) in rules.iter().enumerate() {
        let conditions: FilterGroups = match rule.get("conditions") {
            None | Some(Value::Null) => Vec::new(),
            Some(c) => serde_json::from_value(c.clone()).map_err(|e| {
                ApiError::invalid(format!("settings.rules[{i}].conditions is invalid: {e}"))
            })?,
        };
        let filter = Filter::compile(&conditions, flavor.filter)
            .map_err(|e| ApiError::invalid(format!("settings.rules[{i}].conditions: {e}")))?;
        let action = match rule.get("action").and_then(Value::as_str) {
            Some("trigger") => RuleAction::Trigger,
            Some("close") => RuleAction::Close,
            _ => {
                return Err(ApiError::invalid(format!(
                    "settings.rules[{i}].action must be trigger or close"
                )));
            }
        };
        out.rules.push(Rule { filter, action });
    }
    if !out.rules.iter().any(|r| r.action == RuleAction::Trigger) {
        return Err(ApiError::invalid(
            "settings.rules needs at least one rule with action trigger",
        ));
    }
    let key_rule = obj
        .get("key_rule")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::invalid("settings.key_rule is required for by_rules"))?;
    let source = key_rule
        .get("source")
        .and_then(Value::as_str)
        .and_then(|s| flavor.key_sources.iter().position(|k| *k == s))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "settings.key_rule.source must be {}",
                one_of(flavor.key_sources)
            ))
        })?;
    let pattern = key_rule
        .get("pattern")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::invalid("settings.key_rule.pattern is required"))?;
    // RE2 patterns may come wrapped in slashes, like condition values.
    let pattern = pattern
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix('/'))
        .filter(|p| !p.is_empty())
        .unwrap_or(pattern);
    let regex = Regex::new(pattern).map_err(|e| {
        ApiError::invalid(format!(
            "settings.key_rule.pattern is not a valid regex: {e}"
        ))
    })?;
    out.key_rule = Some((source, regex));
    Ok(out)
}

/// What `by_rules` decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No rule matched and `drop_unmatched` is set.
    Drop,
    /// The action and the extracted key; `None` when extraction gave nothing, so the caller
    /// applies its fallback.
    Act(RuleAction, Option<String>),
}

/// ING-216 `by_rules`: the first matching rule decides the action; the key is the pattern's
/// first capture group (or whole match) on `key` = (pattern, text of the key source), hashed
/// as `H(hash_tag, integration_id, key)` when too long.
pub(crate) fn by_rules(
    rules: &[Rule],
    drop_unmatched: bool,
    message: &dyn Subject,
    key: Option<(&Regex, &str)>,
    hash_tag: &str,
    integration: &str,
) -> Decision {
    let action = match rules.iter().find(|r| r.filter.matches(message)) {
        Some(rule) => rule.action,
        None if drop_unmatched => return Decision::Drop,
        None => RuleAction::Trigger,
    };
    let key = key.and_then(|(re, text)| {
        let caps = re.captures(text)?;
        let m = caps.get(1).or_else(|| caps.get(0))?;
        Some(m.as_str().to_owned()).filter(|k| !k.is_empty())
    });
    let key = key.map(|k| {
        if k.chars().count() > KEY_MAX_CHARS {
            hash_parts(&[hash_tag, integration, &k])
        } else {
            k
        }
    });
    Decision::Act(action, key)
}
