//! The alert pipeline (ingest.md §2.7, stage 5 of §1.4): an integration's ordered actions that
//! rewrite an event's title, description or severity, or discard it (drop, integration-level
//! inhibit), after enrichment and before routing.
//!
//! Pure: the caller supplies the integration's active alerts for the inhibit action (ING-085)
//! and `now`. The store keeps one action list per integration and runs [`Pipeline::run`] on
//! every event of a batch; the Open API's `rules[]` wire form is read and written by
//! [`wire`].
//!
//! ```
//! use klaxon_core::pipeline::{Action, Pipeline, PipelineAction, Verdict};
//! use klaxon_core::condition::Condition;
//! use klaxon_core::model::{EventOrigin, NewEvent, Severity, Status};
//!
//! let actions = vec![PipelineAction {
//!     id: "raise".into(),
//!     enabled: true,
//!     condition: vec![vec![Condition::is_in("labels.host", ["demo-01"])]],
//!     action: Action::UpdateSeverity { severity: Severity::Critical },
//! }];
//! let pipeline = Pipeline::compile(&actions)?;
//! let mut event = NewEvent {
//!     alert_key: "k".into(),
//!     event_status: Status::Info,
//!     event_severity: Some(Severity::Info),
//!     title: "cpu idle".into(),
//!     title_rule: String::new(),
//!     description: String::new(),
//!     labels: [("host".to_string(), "demo-01".to_string())].into_iter().collect(),
//!     images: Vec::new(),
//!     event_time: 0,
//!     raw: String::new(),
//! };
//! let origin = EventOrigin {
//!     request_id: String::new(),
//!     account_id: 1,
//!     integration_id: 7,
//!     integration_type: "standard".into(),
//!     integration_name: "std".into(),
//!     channel_id: 3,
//!     received_at: 0,
//! };
//! assert_eq!(pipeline.run(&mut event, &origin, &[], 0), Verdict::Keep);
//! assert_eq!(event.event_status, Status::Critical);
//! # Ok::<(), klaxon_core::pipeline::PipelineError>(())
//! ```

#[cfg(test)]
mod tests;
pub mod wire;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::condition::{ConditionError, Context, Filter, FilterGroups, Key, Part, Subject};
use crate::model::{Alert, DAY_MS, EventOrigin, Millis, NewEvent, Severity, cut_bytes};
use crate::standard::{RuleVars, render_rule, truncate};

/// openapi-compat.md / ingest.md §1.5.4: at most 50 actions per integration.
pub const MAX_ACTIONS: usize = 50;
/// Action ids are generated when absent; a supplied one is kept if it is this short.
pub const MAX_ID_CHARS: usize = 64;
/// A title template becomes the event's `title_rule` (ING-081), which holds 512 characters;
/// a longer one would be stored cut, so it is refused instead.
pub const MAX_TITLE_TEMPLATE_CHARS: usize = 512;
/// The spec sets no bound on description templates; this one keeps a configuration's size
/// predictable while leaving room for `if`/`else` around a 2048-character result.
pub const MAX_DESCRIPTION_TEMPLATE_CHARS: usize = 4096;
/// `equals` entries of an inhibit action (attributes and labels together).
pub const MAX_EQUALS: usize = 50;
/// ING-081 / §1.3.3: title and title_rule limits.
pub const TITLE_MAX: usize = 512;
/// ING-082: description limit (characters), and the e-mail integrations' one (bytes, Q-36).
pub const DESCRIPTION_MAX: usize = 2048;
pub const EMAIL_DESCRIPTION_MAX_BYTES: usize = 32 * 1024;

/// One ordered action (§1.3.7 PipelineAction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineAction {
    pub id: String,
    pub enabled: bool,
    /// Empty = every event (ING-080).
    #[serde(default)]
    pub condition: FilterGroups,
    pub action: Action,
}

/// What an action does, with its own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// ING-081: `template` in the title-rule syntax of ING-023.
    UpdateTitle { template: String },
    /// ING-082: same syntax, for the description.
    UpdateDescription { template: String },
    /// ING-083.
    UpdateSeverity { severity: Severity },
    /// ING-084.
    Drop,
    /// ING-085.
    Inhibit(InhibitSpec),
}

impl Action {
    /// The spec's type name (§1.3.7).
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::UpdateTitle { .. } => "update_title",
            Action::UpdateDescription { .. } => "update_description",
            Action::UpdateSeverity { .. } => "update_severity",
            Action::Drop => "drop",
            Action::Inhibit(_) => "inhibit",
        }
    }
}

/// ING-085 fields: which active alerts inhibit, and what must be equal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InhibitSpec {
    /// Evaluated on the active alert (§4.2 "pipeline inhibit source"); empty = any.
    #[serde(default)]
    pub source_conditions: FilterGroups,
    #[serde(default)]
    pub equal_attributes: Vec<Attribute>,
    #[serde(default)]
    pub equal_labels: Vec<String>,
}

/// An attribute an inhibit action compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attribute {
    Title,
    Description,
    Severity,
}

impl Attribute {
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::Title => "title",
            Attribute::Description => "description",
            Attribute::Severity => "severity",
        }
    }
}

// --- validation -------------------------------------------------------------------------

/// A refused action list (400 `InvalidParameter`). `field` is the path in wire terms
/// (`rules[2].settings.severity`), so the message names the bad part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    pub field: String,
    pub message: String,
}

impl PipelineError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> PipelineError {
        PipelineError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for PipelineError {}

impl From<PipelineError> for crate::error::ApiError {
    fn from(e: PipelineError) -> Self {
        crate::error::ApiError::invalid(e.to_string())
    }
}

/// A condition error at its wire path under `field`. A single group is written on the wire
/// as a flat list (`if: [cond, …]`), so its group index is left out of the path.
fn condition_error(field: &str, single_group: bool, e: &ConditionError) -> PipelineError {
    let at = e.position();
    let mut path = field.to_owned();
    if let Some(g) = at.group
        && !single_group
    {
        path.push_str(&format!("[{g}]"));
    }
    if let Some(c) = at.condition {
        path.push_str(&format!("[{c}]"));
    }
    match at.part {
        None => {}
        Some(Part::Key) => path.push_str(".key"),
        Some(Part::Oper) => path.push_str(".oper"),
        Some(Part::Vals) => path.push_str(".vals"),
        Some(Part::Val(v)) => path.push_str(&format!(".vals[{v}]")),
    }
    PipelineError::new(path, e.problem().to_string())
}

fn compile_filter(
    groups: &FilterGroups,
    context: Context,
    field: &str,
) -> Result<Filter, PipelineError> {
    Filter::compile(groups, context).map_err(|e| condition_error(field, groups.len() == 1, &e))
}

/// Save-time checks (§1.5.4, §1.3.7, §4.5): at most 50 actions, ids present, short and
/// unique, valid conditions in their contexts, templates within their limits, and for an
/// inhibit action at least one equal attribute or label (ING-085), none repeated. The first
/// problem in list order is returned, in wire terms.
pub fn validate(actions: &[PipelineAction]) -> Result<(), PipelineError> {
    compile(actions).map(drop)
}

fn compile(actions: &[PipelineAction]) -> Result<Vec<CompiledAction>, PipelineError> {
    if actions.len() > MAX_ACTIONS {
        return Err(PipelineError::new(
            "rules",
            format!("too many rules ({}; at most {MAX_ACTIONS})", actions.len()),
        ));
    }
    let mut ids = HashSet::new();
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let at = format!("rules[{i}]");
            if a.id.trim().is_empty() {
                return Err(PipelineError::new(format!("{at}.id"), "a rule needs an id"));
            }
            let len = a.id.chars().count();
            if len > MAX_ID_CHARS {
                return Err(PipelineError::new(
                    format!("{at}.id"),
                    format!("id too long ({len} characters; at most {MAX_ID_CHARS})"),
                ));
            }
            if !ids.insert(a.id.as_str()) {
                return Err(PipelineError::new(
                    format!("{at}.id"),
                    format!("id {:?} is used by another rule", a.id),
                ));
            }
            compile_action(a, &at)
        })
        .collect()
}

fn check_template(template: &str, max: usize, field: String) -> Result<(), PipelineError> {
    let len = template.chars().count();
    if len > max {
        return Err(PipelineError::new(
            field,
            format!("template too long ({len} characters; at most {max})"),
        ));
    }
    Ok(())
}

fn compile_action(a: &PipelineAction, at: &str) -> Result<CompiledAction, PipelineError> {
    let filter = compile_filter(&a.condition, Context::PipelineAction, &format!("{at}.if"))?;
    let op = match &a.action {
        Action::UpdateTitle { template } => {
            let field = format!("{at}.settings.title");
            if template.trim().is_empty() {
                return Err(PipelineError::new(field, "a title template is required"));
            }
            check_template(template, MAX_TITLE_TEMPLATE_CHARS, field)?;
            Op::Title(template.clone())
        }
        Action::UpdateDescription { template } => {
            check_template(
                template,
                MAX_DESCRIPTION_TEMPLATE_CHARS,
                format!("{at}.settings.description"),
            )?;
            Op::Description(template.clone())
        }
        Action::UpdateSeverity { severity } => Op::Severity(*severity),
        Action::Drop => Op::Drop,
        Action::Inhibit(spec) => {
            let source = compile_filter(
                &spec.source_conditions,
                Context::PipelineInhibitSource,
                &format!("{at}.settings.source_filters"),
            )?;
            let field = format!("{at}.settings.equals");
            let count = spec.equal_attributes.len() + spec.equal_labels.len();
            if count == 0 {
                return Err(PipelineError::new(
                    field,
                    "at least one of title, description, severity or labels.<name> is required",
                ));
            }
            if count > MAX_EQUALS {
                return Err(PipelineError::new(
                    field,
                    format!("too many entries ({count}; at most {MAX_EQUALS})"),
                ));
            }
            let mut seen = HashSet::new();
            let mut equals = Vec::with_capacity(count);
            for attr in &spec.equal_attributes {
                if !seen.insert(Cow::Borrowed(attr.as_str())) {
                    return Err(PipelineError::new(
                        field,
                        format!("{:?} is repeated", attr.as_str()),
                    ));
                }
                equals.push(Equal::Attribute(*attr));
            }
            for name in &spec.equal_labels {
                if name.is_empty() {
                    return Err(PipelineError::new(
                        field,
                        "label name missing after \"labels.\"",
                    ));
                }
                if !seen.insert(Cow::Owned(format!("labels.{name}"))) {
                    return Err(PipelineError::new(
                        field,
                        format!("\"labels.{name}\" is repeated"),
                    ));
                }
                equals.push(Equal::Label(name.clone()));
            }
            Op::Inhibit { source, equals }
        }
    };
    Ok(CompiledAction {
        id: a.id.clone(),
        enabled: a.enabled,
        filter,
        op,
    })
}

// --- evaluation --------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Equal {
    Attribute(Attribute),
    Label(String),
}

#[derive(Debug, Clone)]
enum Op {
    Title(String),
    Description(String),
    Severity(Severity),
    Drop,
    Inhibit { source: Filter, equals: Vec<Equal> },
}

#[derive(Debug, Clone)]
struct CompiledAction {
    id: String,
    enabled: bool,
    filter: Filter,
    op: Op,
}

/// A compiled action list, ready to run on many events.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    actions: Vec<CompiledAction>,
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Goes on to routing, possibly rewritten.
    Keep,
    /// ING-084: discarded by the drop action `action_id`.
    Dropped { action_id: String },
    /// ING-085: discarded by the inhibit action `action_id` because of the active alert
    /// `source_alert_id`.
    Inhibited {
        action_id: String,
        source_alert_id: String,
    },
}

impl Pipeline {
    /// Validates (see [`validate`]) and compiles the list.
    pub fn compile(actions: &[PipelineAction]) -> Result<Pipeline, PipelineError> {
        Ok(Pipeline {
            actions: compile(actions)?,
        })
    }

    /// Compiles a stored list, leaving out actions that no longer compile (a stricter
    /// validation after an upgrade, say) rather than stopping ingestion; their errors are
    /// returned so the caller can log them.
    pub fn compile_skipping(actions: &[PipelineAction]) -> (Pipeline, Vec<PipelineError>) {
        let mut out = Vec::with_capacity(actions.len());
        let mut broken = Vec::new();
        for (i, a) in actions.iter().enumerate() {
            match compile_action(a, &format!("rules[{i}]")) {
                Ok(c) => out.push(c),
                Err(e) => broken.push(e),
            }
        }
        (Pipeline { actions: out }, broken)
    }

    /// No action would do anything.
    pub fn is_empty(&self) -> bool {
        !self.actions.iter().any(|a| a.enabled)
    }

    /// Whether an enabled inhibit action exists: only then does the caller need the
    /// integration's active alerts.
    pub fn inhibits(&self) -> bool {
        self.actions
            .iter()
            .any(|a| a.enabled && matches!(a.op, Op::Inhibit { .. }))
    }

    /// ING-080…086: runs the enabled actions in order on `event`, each seeing the event as the
    /// earlier ones left it and skipped when its condition does not match. `active` are
    /// alerts that may inhibit (ING-085); only those of the event's integration that are
    /// active and less than 24 h old at `now` count, whatever else the caller passes. Drop
    /// and inhibit never apply to a recovery (ING-086), so a recovery is always kept.
    pub fn run(
        &self,
        event: &mut NewEvent,
        origin: &EventOrigin,
        active: &[Alert],
        now: Millis,
    ) -> Verdict {
        self.walk(event, origin, |action_id, source, equals, event| {
            let alert = active.iter().find(|alert| {
                alert.integration_id == origin.integration_id
                    && alert.is_active()
                    && now.saturating_sub(alert.created_at) < DAY_MS
                    && source.matches(&AlertSubject(alert))
                    && equals.iter().all(|e| equal(e, event, alert))
            })?;
            Some(Verdict::Inhibited {
                action_id: action_id.to_owned(),
                source_alert_id: alert.alert_id.clone(),
            })
        })
    }

    /// What the list would do to `event` whatever the active alerts are, without changing it:
    /// whether it is dropped, and whether an inhibit action would look for a source (its
    /// condition matched a trigger). The batch processor uses it to decide when an alert
    /// opened earlier in the same batch must be visible to a later event (ING-085).
    pub fn dry_run(&self, event: &NewEvent, origin: &EventOrigin) -> DryRun {
        let mut copy = event.clone();
        let mut looks_for_source = false;
        let verdict = self.walk(&mut copy, origin, |_, _, _, _| {
            looks_for_source = true;
            None
        });
        DryRun {
            dropped: matches!(verdict, Verdict::Dropped { .. }),
            looks_for_source,
        }
    }

    /// The one evaluation loop behind [`Pipeline::run`] and [`Pipeline::dry_run`]: `inhibit`
    /// is asked at each inhibit action whose condition matched a trigger, and ends the run
    /// with the verdict it returns.
    fn walk(
        &self,
        event: &mut NewEvent,
        origin: &EventOrigin,
        mut inhibit: impl FnMut(&str, &Filter, &[Equal], &NewEvent) -> Option<Verdict>,
    ) -> Verdict {
        let trigger = event.event_status.is_trigger();
        for a in self.actions.iter().filter(|a| a.enabled) {
            if !a.filter.matches(&EventSubject { event, origin }) {
                continue;
            }
            match &a.op {
                Op::Title(template) => update_title(event, template),
                Op::Description(template) => update_description(event, origin, template),
                Op::Severity(severity) => {
                    // ING-083: a recovery stays `Ok`; only its severity changes.
                    if trigger {
                        event.event_status = (*severity).into();
                    }
                    event.event_severity = Some(*severity);
                }
                Op::Drop if trigger => {
                    return Verdict::Dropped {
                        action_id: a.id.clone(),
                    };
                }
                Op::Inhibit { source, equals } if trigger => {
                    if let Some(verdict) = inhibit(&a.id, source, equals, event) {
                        return verdict;
                    }
                }
                // ING-086: recoveries pass drop and inhibit actions untouched.
                Op::Drop | Op::Inhibit { .. } => {}
            }
        }
        Verdict::Keep
    }
}

/// See [`Pipeline::dry_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DryRun {
    /// A drop action discards the event (so it opens or changes no alert).
    pub dropped: bool,
    /// An inhibit action's condition matched the trigger, so its verdict depends on the
    /// active alerts.
    pub looks_for_source: bool,
}

/// The event's severity as conditions and templates see it: a trigger's status, or the
/// severity a recovery carries (ING-050; none when its source gave none).
fn severity_of(event: &NewEvent) -> Option<Severity> {
    event.event_status.severity().or(event.event_severity)
}

fn render(event: &NewEvent, template: &str) -> String {
    let vars = RuleVars {
        title: &event.title,
        description: &event.description,
        event_severity: severity_of(event).map_or("", Severity::as_str),
        event_status: event.event_status.as_str(),
        alert_key: &event.alert_key,
        labels: &event.labels,
        pull: None,
        url_encode: false,
    };
    render_rule(template, &vars)
}

/// ING-081: the rendered template, trimmed and cut to 512, replaces the title and the
/// template replaces `title_rule`; an empty result changes nothing.
fn update_title(event: &mut NewEvent, template: &str) {
    let title = truncate(render(event, template).trim(), TITLE_MAX);
    if title.is_empty() {
        return;
    }
    event.title = title;
    event.title_rule = truncate(template, TITLE_MAX);
}

/// ING-082: as ING-081 for the description, cut to 2048 characters (e-mail integrations: 32
/// KiB, Q-36); an empty result empties the description.
fn update_description(event: &mut NewEvent, origin: &EventOrigin, template: &str) {
    let rendered = render(event, template);
    let text = rendered.trim();
    event.description = if origin.integration_type == "email" {
        cut_bytes(text, EMAIL_DESCRIPTION_MAX_BYTES).to_owned()
    } else {
        truncate(text, DESCRIPTION_MAX)
    };
}

/// ING-085: the event's value equals the alert's. A label missing on either side is never
/// equal; severities compare the event's severity with the alert's.
fn equal(e: &Equal, event: &NewEvent, alert: &Alert) -> bool {
    match e {
        Equal::Attribute(Attribute::Title) => event.title == alert.title,
        Equal::Attribute(Attribute::Description) => event.description == alert.description,
        Equal::Attribute(Attribute::Severity) => severity_of(event) == Some(alert.alert_severity),
        Equal::Label(name) => match (event.labels.get(name), alert.labels.get(name)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

/// The event as a pipeline condition sees it (§4.2: `severity` = event severity).
struct EventSubject<'a> {
    event: &'a NewEvent,
    origin: &'a EventOrigin,
}

impl Subject for EventSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        let e = self.event;
        match key {
            Key::Title => Some(Cow::Borrowed(e.title.as_str())),
            Key::Description => Some(Cow::Borrowed(e.description.as_str())),
            Key::Severity => severity_of(e).map(|s| Cow::Borrowed(s.as_str())),
            Key::IntegrationId => Some(Cow::Owned(self.origin.integration_id.to_string())),
            Key::IntegrationType => Some(Cow::Borrowed(self.origin.integration_type.as_str())),
            Key::Label(name) => e.labels.get(name).map(|v| Cow::Borrowed(v.as_str())),
            _ => None,
        }
    }
}

/// An active alert as an inhibit action's `source_conditions` see it (§4.2: `severity` =
/// alert severity; `cidr:`/`num:` are plain text there, which the context fixes).
struct AlertSubject<'a>(&'a Alert);

impl Subject for AlertSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        let a = self.0;
        match key {
            Key::Title => Some(Cow::Borrowed(a.title.as_str())),
            Key::Description => Some(Cow::Borrowed(a.description.as_str())),
            Key::Severity => Some(Cow::Borrowed(a.alert_severity.as_str())),
            Key::Label(name) => a.labels.get(name).map(|v| Cow::Borrowed(v.as_str())),
            _ => None,
        }
    }
}
