//! Save-time validation errors (ingest.md §4.5): what is wrong, and where.

use std::borrow::Cow;
use std::fmt;

use super::{MAX_CONDITIONS, MAX_GROUPS, MAX_VALUE_CHARS, MAX_VALUES};
use crate::error::ApiError;

/// Where in a FilterGroups value a problem sits. `None` parts are not rendered, so a
/// position can name the whole value, a group, a condition, or one field of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub group: Option<usize>,
    pub condition: Option<usize>,
    pub part: Option<Part>,
}

/// A field of one condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Key,
    Oper,
    Vals,
    Val(usize),
}

impl Position {
    pub(super) fn group(group: usize) -> Position {
        Position {
            group: Some(group),
            ..Position::default()
        }
    }

    pub(super) fn condition(group: usize, condition: usize) -> Position {
        Position {
            group: Some(group),
            condition: Some(condition),
            part: None,
        }
    }

    pub(super) fn with(self, part: Part) -> Position {
        Position {
            part: Some(part),
            ..self
        }
    }

    /// The path of this position under the wire field `field`, e.g.
    /// `filters[0][1].vals[2]`.
    pub fn path(&self, field: &str) -> String {
        let mut out = field.to_owned();
        if let Some(g) = self.group {
            out.push_str(&format!("[{g}]"));
        }
        if let Some(c) = self.condition {
            out.push_str(&format!("[{c}]"));
        }
        match self.part {
            None => {}
            Some(Part::Key) => out.push_str(".key"),
            Some(Part::Oper) => out.push_str(".oper"),
            Some(Part::Vals) => out.push_str(".vals"),
            Some(Part::Val(v)) => out.push_str(&format!(".vals[{v}]")),
        }
        out
    }
}

/// What is wrong with a condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("too many groups ({0}; at most {MAX_GROUPS})")]
    TooManyGroups(usize),
    #[error("a group needs at least one condition")]
    EmptyGroup,
    #[error("too many conditions in a group ({0}; at most {MAX_CONDITIONS})")]
    TooManyConditions(usize),
    /// Unknown, or not allowed in this context; `allowed` lists the keys that are.
    #[error("unknown key {key:?} (allowed here: {allowed})")]
    UnknownKey { key: String, allowed: String },
    #[error("label name missing after \"labels.\"")]
    EmptyLabelName,
    #[error("oper must be IN or NOTIN, not {0:?}")]
    InvalidOper(String),
    #[error("a condition needs at least one value")]
    NoValues,
    #[error("too many values ({0}; at most {MAX_VALUES})")]
    TooManyValues(usize),
    #[error("value too long ({0} characters; at most {MAX_VALUE_CHARS})")]
    ValueTooLong(usize),
    #[error("invalid regular expression: {0}")]
    InvalidRegex(String),
    #[error("wildcard pattern too complex: {0}")]
    WildcardTooComplex(String),
    #[error(
        "invalid numeric pattern: expected num:gt:, num:ge:, num:lt: or num:le: followed by a decimal number"
    )]
    InvalidNumeric,
    #[error(
        "invalid CIDR pattern: expected cidr: followed by an IPv4/IPv6 address or network such as 10.0.0.0/24"
    )]
    InvalidCidr,
}

/// A refused FilterGroups value. Renders as `filters[0][1].vals[2]: invalid regular
/// expression: …`; callers whose wire field has another name (route rules call it
/// `conditions`) rename it with [`ConditionError::in_field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    field: Cow<'static, str>,
    position: Position,
    problem: Problem,
}

impl ConditionError {
    pub(super) fn new(position: Position, problem: Problem) -> ConditionError {
        ConditionError {
            field: Cow::Borrowed("filters"),
            position,
            problem,
        }
    }

    /// Name the wire field the conditions came from (default `filters`), e.g.
    /// `conditions`, `source_conditions`, `rules[2].conditions`.
    pub fn in_field(mut self, field: impl Into<Cow<'static, str>>) -> ConditionError {
        self.field = field.into();
        self
    }

    pub fn position(&self) -> Position {
        self.position
    }

    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position.path(&self.field), self.problem)
    }
}

impl std::error::Error for ConditionError {}

/// §4.5: refused with 400 `InvalidParameter`, naming the position.
impl From<ConditionError> for ApiError {
    fn from(err: ConditionError) -> ApiError {
        ApiError::invalid(err.to_string())
    }
}

/// An editor hint (§4.2: editors SHOULD warn when a `cidr:` or `num:` value is entered where
/// it is plain text). Not an error: the value is valid and compared as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub position: Position,
    pub message: &'static str,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.position.path("filters"), self.message)
    }
}
