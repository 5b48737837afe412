//! The condition (filter) language of ingest.md §4, shared by routing, enrichment, pipeline,
//! drop, silence, inhibit, grouping, e-mail rules and escalation filters.
//!
//! Three steps:
//! 1. the wire form ([`FilterGroups`] of [`Condition`]s, openapi-compat.md 1.9) is what rules
//!    store and the API exchanges;
//! 2. [`Filter::compile`] validates it for a [`Context`] (§4.5: keys, limits, patterns) and
//!    compiles every value once (§4.3);
//! 3. [`Filter::matches`] evaluates the compiled filter against anything that implements
//!    [`Subject`], so the language never depends on the event, alert or incident types.
//!
//! ```
//! use std::borrow::Cow;
//! use klaxon_core::condition::{Condition, Context, Filter, Key, Subject};
//!
//! struct Alert { severity: &'static str, host: &'static str }
//!
//! impl Subject for Alert {
//!     fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
//!         match key {
//!             Key::Severity => Some(Cow::Borrowed(self.severity)),
//!             Key::Label(name) if name == "host" => Some(Cow::Borrowed(self.host)),
//!             _ => None,
//!         }
//!     }
//! }
//!
//! let groups = vec![vec![
//!     Condition::is_in("severity", ["Critical", "Warning"]),
//!     Condition::is_in("labels.host", ["cidr:10.0.0.0/24"]),
//! ]];
//! let filter = Filter::compile(&groups, Context::Silence)?;
//! assert!(filter.matches(&Alert { severity: "Critical", host: "10.0.0.7:9100" }));
//! assert!(!filter.matches(&Alert { severity: "Info", host: "10.0.0.7" }));
//! assert_eq!(
//!     filter.to_string(),
//!     "( severity == Critical|Warning && labels.host == cidr:10.0.0.0/24 )"
//! );
//! # Ok::<(), klaxon_core::condition::ConditionError>(())
//! ```

mod error;
mod key;
mod pattern;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use error::{ConditionError, Part, Position, Problem, Warning};
pub use key::{Context, Key};

use key::LABEL_PREFIX;
use pattern::Pattern;

/// §4.1 limits: groups per FilterGroups, conditions per group, values per condition, and
/// characters (Unicode scalar values) per value.
pub const MAX_GROUPS: usize = 20;
pub const MAX_CONDITIONS: usize = 20;
pub const MAX_VALUES: usize = 100;
pub const MAX_VALUE_CHARS: usize = 1024;

// --- wire form ---------------------------------------------------------------------------

/// OR of AND groups (`[[cond, …], …]`); empty = no restriction.
pub type FilterGroups = Vec<Vec<Condition>>;

/// `{key, oper: IN|NOTIN, vals: [string]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub key: String,
    pub oper: Oper,
    pub vals: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Oper {
    /// "Match": at least one value matches.
    #[serde(rename = "IN")]
    In,
    /// "Not Match": no value matches.
    #[serde(rename = "NOTIN")]
    NotIn,
    /// Any other string read from the wire. It is kept rather than failing deserialisation
    /// so that validation can name its position (§4.5); it never compiles.
    #[serde(untagged)]
    Invalid(String),
}

impl Condition {
    pub fn new(
        key: impl Into<String>,
        oper: Oper,
        vals: impl IntoIterator<Item = impl Into<String>>,
    ) -> Condition {
        Condition {
            key: key.into(),
            oper,
            vals: vals.into_iter().map(Into::into).collect(),
        }
    }

    /// `key IN vals`.
    pub fn is_in(
        key: impl Into<String>,
        vals: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Condition::new(key, Oper::In, vals)
    }

    /// `key NOTIN vals`.
    pub fn not_in(
        key: impl Into<String>,
        vals: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Condition::new(key, Oper::NotIn, vals)
    }
}

// --- subjects ----------------------------------------------------------------------------

/// The object a filter is evaluated on (an event, alert, incident or message), seen through
/// the keys of §4.2. Implemented by the callers, so the language knows nothing of their
/// types.
pub trait Subject {
    /// The text of `key`: title, description, severity (`Critical`/`Warning`/`Info`, the
    /// severity the context means), decimal integration id, integration type, a label's
    /// value, or an e-mail field. `None` when the object has no such value. `Some("")` is
    /// treated as absent too (§4.4), so implementations need not filter empty strings.
    fn value(&self, key: &Key) -> Option<Cow<'_, str>>;
}

// --- compiled filter ---------------------------------------------------------------------

/// A validated, compiled FilterGroups value: immutable, cheap to evaluate, and shareable
/// between threads. `Filter::default()` is the empty filter, which matches everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    groups: Vec<Vec<CompiledCondition>>,
    /// The conditions as entered, for rendering (§4.6) and for giving them back.
    source: FilterGroups,
}

#[derive(Debug, Clone)]
struct CompiledCondition {
    key: Key,
    /// `NOTIN`: true when no value matches.
    negated: bool,
    patterns: Vec<Pattern>,
}

impl Filter {
    /// Validate `groups` for `context` (§4.5) and compile every value (§4.3). The first
    /// problem found, in wire order, is returned with its position.
    pub fn compile(groups: &[Vec<Condition>], context: Context) -> Result<Filter, ConditionError> {
        check_count(groups.len(), 0, MAX_GROUPS, Position::default(), |n| {
            Problem::TooManyGroups(n)
        })?;
        let compiled = groups
            .iter()
            .enumerate()
            .map(|(g, group)| compile_group(g, group, context))
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            groups: compiled,
            source: groups.to_vec(),
        })
    }

    /// §4.1: an empty filter matches; otherwise at least one group must match (OR), and a
    /// group matches when all its conditions do (AND).
    pub fn matches<S: Subject + ?Sized>(&self, subject: &S) -> bool {
        self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|group| group.iter().all(|condition| condition.matches(subject)))
    }

    /// True for the empty filter (no restriction).
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The conditions as entered.
    pub fn source(&self) -> &[Vec<Condition>] {
        &self.source
    }
}

/// Renders the conditions as text (§4.6).
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(&self.source))
    }
}

impl CompiledCondition {
    fn matches<S: Subject + ?Sized>(&self, subject: &S) -> bool {
        let hit = match subject.value(&self.key) {
            Some(text) if !text.is_empty() => self.patterns.iter().any(|p| p.matches(&text)),
            // §4.4: an absent subject fails every pattern, so IN fails and NOTIN holds.
            _ => false,
        };
        hit != self.negated
    }
}

fn compile_group(
    g: usize,
    group: &[Condition],
    context: Context,
) -> Result<Vec<CompiledCondition>, ConditionError> {
    check_count(group.len(), 1, MAX_CONDITIONS, Position::group(g), |n| {
        if n == 0 {
            Problem::EmptyGroup
        } else {
            Problem::TooManyConditions(n)
        }
    })?;
    group
        .iter()
        .enumerate()
        .map(|(c, condition)| compile_condition(Position::condition(g, c), condition, context))
        .collect()
}

fn compile_condition(
    at: Position,
    condition: &Condition,
    context: Context,
) -> Result<CompiledCondition, ConditionError> {
    let key = compile_key(&condition.key, context)
        .map_err(|p| ConditionError::new(at.with(Part::Key), p))?;
    let negated = match &condition.oper {
        Oper::In => false,
        Oper::NotIn => true,
        Oper::Invalid(other) => {
            return Err(ConditionError::new(
                at.with(Part::Oper),
                Problem::InvalidOper(other.clone()),
            ));
        }
    };
    check_count(
        condition.vals.len(),
        1,
        MAX_VALUES,
        at.with(Part::Vals),
        |n| {
            if n == 0 {
                Problem::NoValues
            } else {
                Problem::TooManyValues(n)
            }
        },
    )?;
    let patterns = condition
        .vals
        .iter()
        .enumerate()
        .map(|(v, value)| {
            compile_value(value, context).map_err(|p| ConditionError::new(at.with(Part::Val(v)), p))
        })
        .collect::<Result<_, _>>()?;
    Ok(CompiledCondition {
        key,
        negated,
        patterns,
    })
}

fn compile_key(raw: &str, context: Context) -> Result<Key, Problem> {
    if raw == LABEL_PREFIX {
        return Err(Problem::EmptyLabelName);
    }
    match Key::parse(raw) {
        Some(key) if context.allows(&key) => Ok(key),
        _ => Err(Problem::UnknownKey {
            key: raw.to_owned(),
            allowed: context.keys().join(", "),
        }),
    }
}

fn compile_value(value: &str, context: Context) -> Result<Pattern, Problem> {
    let chars = value.chars().count();
    if chars > MAX_VALUE_CHARS {
        return Err(Problem::ValueTooLong(chars));
    }
    Pattern::compile(value, context.cidr_and_num_active())
}

/// A `min..=max` count check; `problem` builds the error from the actual count.
fn check_count(
    n: usize,
    min: usize,
    max: usize,
    at: Position,
    problem: impl Fn(usize) -> Problem,
) -> Result<(), ConditionError> {
    if (min..=max).contains(&n) {
        Ok(())
    } else {
        Err(ConditionError::new(at, problem(n)))
    }
}

// --- helpers for callers -----------------------------------------------------------------

/// Save-time validation only (§4.5), for callers that store the wire form and compile later.
pub fn validate(groups: &[Vec<Condition>], context: Context) -> Result<(), ConditionError> {
    Filter::compile(groups, context).map(drop)
}

/// Editor hints (§4.2): `cidr:`/`num:` values entered where they are plain text.
pub fn warnings(groups: &[Vec<Condition>], context: Context) -> Vec<Warning> {
    if context.cidr_and_num_active() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for (c, condition) in group.iter().enumerate() {
            for (v, value) in condition.vals.iter().enumerate() {
                if pattern::has_inactive_prefix(value) {
                    out.push(Warning {
                        position: Position::condition(g, c).with(Part::Val(v)),
                        message: "cidr: and num: have no special meaning here; the value is compared as text",
                    });
                }
            }
        }
    }
    out
}

/// A value that matches exactly `text` in every context: `text` itself when §4.3 reads it as
/// exact text, otherwise an anchored, fully escaped regex `/^…$/` (quick silence, ING-134).
pub fn exact_value(text: &str) -> String {
    if pattern::is_special(text) {
        format!("/^{}$/", regex::escape(text))
    } else {
        text.to_owned()
    }
}

// --- text rendering (§4.6) ---------------------------------------------------------------

/// Groups joined by ` or `, each as `( c1 && c2 … )`; the empty filter renders as "".
pub fn render(groups: &[Vec<Condition>]) -> String {
    groups
        .iter()
        .map(|group| {
            let conditions: Vec<String> = group.iter().map(Condition::to_string).collect();
            format!("( {} )", conditions.join(" && "))
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `key == v1|v2|…` for IN, `key != v1|v2|…` for NOTIN, values as entered.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.key, self.oper, self.vals.join("|"))
    }
}

impl fmt::Display for Oper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Oper::In => f.write_str("=="),
            Oper::NotIn => f.write_str("!="),
            Oper::Invalid(other) => f.write_str(other),
        }
    }
}
