//! Notification templates (response.md §2.22).
//!
//! Flashduty's templates are Go templates, and RSP-341 / OQ-26 decide that Klaxon's engine is
//! Go-`text/template` compatible rather than Jinja: stored Flashduty templates keep working.
//! This module is that engine (a small parser and evaluator over the RSP-341 subset, with the
//! functions of RSP-344), plus the channel rules around it: the default bodies (RSP-351),
//! post-processing (RSP-347), size limits (RSP-348), the render-time fallback (RSP-346) and
//! save-time validation against the mock incident (RSP-345). Pure: `now` and the account time
//! zone come in through [`Env`].

mod channel;
mod defaults;
mod exec;
mod funcs;
mod parse;
mod value;
mod vars;

#[cfg(test)]
mod tests;

use std::fmt;

pub use channel::{Channel, Outcome, render as render_channel};
pub use defaults::default_body;
pub use exec::escape_html;
pub use funcs::go_duration;
pub use value::V;
pub use vars::{AlertVars, AssignedTo, ImageVars, MAX_ALERTS, Person, Responder, Vars};

/// The built-in default template's ids (response.md 1.16): the docs' id and the CLI's preset id.
pub const DEFAULT_TEMPLATE_ID: &str = "000000000000000000000001";
pub const DEFAULT_TEMPLATE_ALT_ID: &str = "6321aad26c12104586a88916";

/// Is this id the immutable default template?
pub fn is_default_id(id: &str) -> bool {
    id == DEFAULT_TEMPLATE_ID || id == DEFAULT_TEMPLATE_ALT_ID
}

/// A body may be at most 64 KiB (response.md 1.16).
pub const MAX_BODY_BYTES: usize = 65_536;

/// What rendering needs besides the data: the clock and the account zone (RSP-344 `date`,
/// `ago`, `now`), and whether printed values are HTML-escaped (email only, RSP-342).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// Unix seconds.
    pub now: i64,
    /// IANA zone of the account (response.md `time_zone`); unknown zones render in UTC.
    pub time_zone: String,
    pub escape_html: bool,
}

/// A parse or execution error, with where it happened (RSP-345 names the position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pos: usize,
    /// 1-based; 0 until [`TemplateError::locate`] has run.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl TemplateError {
    pub(crate) fn at(pos: usize, msg: impl Into<String>) -> Self {
        TemplateError {
            pos,
            line: 0,
            column: 0,
            message: msg.into(),
        }
    }

    fn locate(mut self, src: &str) -> Self {
        let upto = src.get(..self.pos.min(src.len())).unwrap_or(src);
        self.line = upto.matches('\n').count() + 1;
        self.column = upto
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        self
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TemplateError {}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        match parse::parse(src) {
            Ok(nodes) => Ok(Template {
                src: src.to_string(),
                nodes,
            }),
            Err(e) => Err(e.locate(src)),
        }
    }

    pub fn execute(&self, root: &V, env: &Env) -> Result<String, TemplateError> {
        exec::run(&self.nodes, root, env).map_err(|e| e.locate(&self.src))
    }
}

/// Parse and execute in one step.
pub fn render_str(src: &str, vars: &Vars, env: &Env) -> Result<String, TemplateError> {
    Template::parse(src)?.execute(&vars.to_value(), env)
}

/// RSP-355: the prefix saying why a message is sent.
pub fn fire_reason(notify_reason: &str, repeat_index: i64, assign_type: &str) -> String {
    match notify_reason {
        "refire" => format!("[Repeat {}] ", repeat_index.max(1)),
        "storm" => "[Alert storm] ".to_string(),
        "wake" => "[Snooze ended] ".to_string(),
        _ => match assign_type {
            "escalate" => "[Escalated] ".to_string(),
            "reassign" => "[Reassigned] ".to_string(),
            "reopen" => "[Reopened] ".to_string(),
            _ => String::new(),
        },
    }
}

/// RSP-345: a body is valid when it parses and renders against the mock incident; a
/// `feishu` body that renders to text starting with `{` must be valid JSON, and a `zoom` body
/// must render to Zoom's message object (RSP-350). The
/// error names the channel and the position.
pub fn validate(channel: Channel, body: &str, env: &Env) -> Result<(), String> {
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "{}: body is longer than {MAX_BODY_BYTES} bytes",
            channel.key()
        ));
    }
    if body.is_empty() {
        return Ok(());
    }
    let env = Env {
        escape_html: channel == Channel::Email,
        ..env.clone()
    };
    let text = render_str(body, &Vars::mock(env.now), &env)
        .map_err(|e| format!("{}: {e}", channel.key()))?;
    if matches!(channel, Channel::Feishu | Channel::Zoom)
        && text.trim_start().starts_with('{')
        && let Err(e) = serde_json::from_str::<serde_json::Value>(text.trim())
    {
        return Err(format!(
            "{}: rendered text starts with {{ but is not valid JSON: {e}",
            channel.key()
        ));
    }
    // RSP-350: a Zoom body is always the JSON message object.
    if let Some(e) = channel::shape_error(channel, &text) {
        return Err(e);
    }
    Ok(())
}

/// A stored notification template (response.md 1.16). `bodies` maps a `TemplateChannel` key
/// to its source; a missing or empty body means the default's body (RSP-340).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TemplateRecord {
    pub template_id: String,
    #[serde(default)]
    pub account_id: i64,
    pub template_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub team_id: i64,
    /// `enabled` or `disabled` (RSP-354).
    pub status: String,
    #[serde(default)]
    pub bodies: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub creator_id: i64,
    #[serde(default)]
    pub updated_by: i64,
    /// Milliseconds.
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

impl TemplateRecord {
    /// The custom body for `channel`, if it has a non-empty one.
    pub fn body(&self, channel: Channel) -> Option<&str> {
        self.bodies
            .get(channel.key())
            .map(String::as_str)
            .filter(|b| !b.is_empty())
    }
}

/// Name 1..39 characters (response.md 1.16).
pub const NAME_MAX_CHARS: usize = 39;
/// Description at most 500 characters (response.md 1.16).
pub const DESCRIPTION_MAX_CHARS: usize = 500;

/// Checks a template before it is saved: the name, the description, and every non-empty body
/// (RSP-345). The error names the field, or the channel and position.
pub fn validate_record(t: &TemplateRecord, env: &Env) -> Result<(), String> {
    let n = t.template_name.trim().chars().count();
    if n == 0 || n > NAME_MAX_CHARS {
        return Err(format!(
            "template_name must be 1..{NAME_MAX_CHARS} characters"
        ));
    }
    if t.description.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(format!(
            "description must be at most {DESCRIPTION_MAX_CHARS} characters"
        ));
    }
    if !matches!(t.status.as_str(), "enabled" | "disabled") {
        return Err("status must be enabled or disabled".into());
    }
    for (key, body) in &t.bodies {
        let Some(ch) = Channel::from_key(key) else {
            return Err(format!("{key}: not a template channel"));
        };
        validate(ch, body, env)?;
    }
    Ok(())
}
