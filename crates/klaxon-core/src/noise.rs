//! Channel noise rules (ingest.md §2.9, §2.11, §2.12): drop, silence and inhibit, and the
//! explanation of what happened to each event (ING-262).
//!
//! Pure stages over the event or candidate alert, the channel's rules, the state a stage reads
//! (the channel's incidents, for inhibition) and `now`:
//! - [`ChannelNoise::drop_rule`]: ING-101, before event → alert;
//! - [`ChannelNoise::silence_rule`]: ING-130/131, on a candidate new alert;
//! - [`ChannelNoise::inhibit_rule`]: ING-140/141, on a candidate new alert that was not silenced;
//! - [`process`]: the event → alert decision of [`crate::merge::process_event`] with the three
//!   stages around it, including the re-evaluation of marked alerts (ING-123).
//!
//! Recovery events never meet any of these rules (ING-086): drop applies to trigger events
//! only, and silence and inhibit only on the new-alert path and after merged trigger events.
//!
//! Rules are validated on save ([`validate_rule`]) and compiled once per channel and batch
//! ([`ChannelNoise::compile`]).

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::condition::{self, Context, Filter, FilterGroups, Key, Subject};
use crate::ids::IdSource;
use crate::merge::{self, Candidate, Effects, Outcome};
use crate::model::{Alert, DAY_MS, Incident, Mark, Millis, Progress, QueuedEvent};
use crate::response::rules::{MatchContext, RuleError, RuleStatus, TimeFilter, parse_hhmm};

/// `rule_name`: 1–39 characters (ingest.md §1.3.7).
pub const RULE_NAME_MAX: usize = 39;
/// `description`: at most 500 characters.
pub const RULE_DESCRIPTION_MAX: usize = 500;
/// ING-131: 1–10 recurring time filters.
pub const TIME_FILTERS_MAX: usize = 10;

/// Which rule set of a channel a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// ING-101 (the Open API's `/channel/unsubscribe/rule/*`).
    #[default]
    Drop,
    /// ING-130 (`/channel/silence/rule/*`).
    Silence,
    /// ING-140 (`/channel/inhibit/rule/*`).
    Inhibit,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Drop => "drop",
            RuleKind::Silence => "silence",
            RuleKind::Inhibit => "inhibit",
        }
    }
}

impl std::str::FromStr for RuleKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "drop" => Ok(RuleKind::Drop),
            "silence" => Ok(RuleKind::Silence),
            "inhibit" => Ok(RuleKind::Inhibit),
            _ => Err(()),
        }
    }
}

/// A one-off silence window `[start_time, end_time)` in Unix seconds (ING-131).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneOff {
    pub start_time: i64,
    pub end_time: i64,
}

/// One drop, silence or inhibit rule of a channel (ingest.md §1.3.7), in its wire field names
/// (openapi-compat.md 2.5). Fields that do not belong to `kind` stay empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseRule {
    #[serde(default)]
    pub rule_id: String,
    #[serde(default)]
    pub account_id: i64,
    #[serde(default)]
    pub channel_id: i64,
    #[serde(default)]
    pub kind: RuleKind,
    #[serde(default)]
    pub rule_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub status: RuleStatus,
    /// Lower is evaluated first; ties: the older rule first.
    #[serde(default)]
    pub priority: i64,
    /// Drop `conditions` and silence `filters` (empty = everything; drop rules need some).
    #[serde(default)]
    pub filters: FilterGroups,
    /// Silence: one-off window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_filter: Option<OneOff>,
    /// Silence: recurring windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_filters: Vec<TimeFilter>,
    /// Silence and inhibit: behaviour `drop` (true) or `mark` (false).
    #[serde(default)]
    pub is_directly_discard: bool,
    /// Silence: the incident a quick silence was made from (RSP-120).
    #[serde(default)]
    pub from_incident_id: String,
    /// Inhibit: conditions on the active source incident.
    #[serde(default)]
    pub source_filters: FilterGroups,
    /// Inhibit: conditions on the new alert.
    #[serde(default)]
    pub target_filters: FilterGroups,
    /// Inhibit: `title`, `description`, `severity` or `labels.<name>` that must be equal.
    #[serde(default)]
    pub equals: Vec<String>,
    #[serde(default)]
    pub creator_id: i64,
    #[serde(default)]
    pub updated_by: i64,
    #[serde(default)]
    pub created_at: Millis,
    #[serde(default)]
    pub updated_at: Millis,
}

impl NoiseRule {
    /// An empty rule of `kind` (behaviour defaults of Q-13: silence marks, inhibit drops).
    pub fn new(kind: RuleKind) -> NoiseRule {
        NoiseRule {
            rule_id: String::new(),
            account_id: 0,
            channel_id: 0,
            kind,
            rule_name: String::new(),
            description: String::new(),
            status: RuleStatus::Enabled,
            priority: 0,
            filters: Vec::new(),
            time_filter: None,
            time_filters: Vec::new(),
            is_directly_discard: kind == RuleKind::Inhibit,
            from_incident_id: String::new(),
            source_filters: Vec::new(),
            target_filters: Vec::new(),
            equals: Vec::new(),
            creator_id: 0,
            updated_by: 0,
            created_at: 0,
            updated_at: 0,
        }
    }
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError {
        field: field.into(),
        message: message.into(),
    }
}

/// One `equals` entry of an inhibit rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Equal {
    Title,
    Description,
    Severity,
    Label(String),
}

fn parse_equal(s: &str) -> Option<Equal> {
    match s {
        "title" => Some(Equal::Title),
        "description" => Some(Equal::Description),
        "severity" => Some(Equal::Severity),
        _ => s
            .strip_prefix("labels.")
            .filter(|n| !n.is_empty())
            .map(|n| Equal::Label(n.to_string())),
    }
}

/// Save-time checks (ING-101, ING-133, §1.3.7, §4.5). Trims the name. A calendar named by
/// `cal_id` must also exist: that is the caller's check (it needs the account's calendars).
/// Errors name the bad part the way the API reports it (`filters[0][1].vals[2]: …`).
pub fn validate_rule(rule: &mut NoiseRule) -> Result<(), RuleError> {
    rule.rule_name = rule.rule_name.trim().to_string();
    let name_len = rule.rule_name.chars().count();
    if name_len == 0 || name_len > RULE_NAME_MAX {
        return Err(bad("rule_name", "must be 1 to 39 characters"));
    }
    if rule.description.chars().count() > RULE_DESCRIPTION_MAX {
        return Err(bad("description", "must be at most 500 characters"));
    }
    if rule.priority < 0 {
        return Err(bad("priority", "must not be negative"));
    }
    match rule.kind {
        RuleKind::Drop => {
            if rule.filters.is_empty() {
                return Err(bad(
                    "filters",
                    "a drop rule needs at least one condition group",
                ));
            }
            check_filters(&rule.filters, Context::Drop, "filters")?;
        }
        RuleKind::Silence => {
            check_time(rule)?;
            check_filters(&rule.filters, Context::Silence, "filters")?;
        }
        RuleKind::Inhibit => {
            check_filters(
                &rule.source_filters,
                Context::InhibitSource,
                "source_filters",
            )?;
            check_filters(
                &rule.target_filters,
                Context::InhibitTarget,
                "target_filters",
            )?;
            // ING-141: at least one equal attribute or label.
            if rule.equals.is_empty() {
                return Err(bad(
                    "equals",
                    "at least one of title, description, severity or labels.<name> is required",
                ));
            }
            let mut seen = BTreeSet::new();
            for (i, e) in rule.equals.iter().enumerate() {
                if parse_equal(e).is_none() {
                    return Err(bad(
                        format!("equals[{i}]"),
                        format!("{e:?} is not title, description, severity or labels.<name>"),
                    ));
                }
                if !seen.insert(e.as_str()) {
                    return Err(bad(format!("equals[{i}]"), format!("{e:?} is repeated")));
                }
            }
        }
    }
    Ok(())
}

fn check_filters(
    groups: &FilterGroups,
    ctx: Context,
    field: &'static str,
) -> Result<(), RuleError> {
    condition::validate(groups, ctx).map_err(|e| {
        let e = e.in_field(field);
        let text = e.to_string();
        // "filters[0][1].vals[2]: problem" → field and message.
        match text.split_once(": ") {
            Some((f, m)) => bad(f, m),
            None => bad(field, text),
        }
    })
}

/// ING-131, ING-133: exactly one of `time_filter` and `time_filters`.
fn check_time(rule: &NoiseRule) -> Result<(), RuleError> {
    match (&rule.time_filter, rule.time_filters.is_empty()) {
        (Some(_), false) => Err(bad(
            "time_filter",
            "give either time_filter (one-off) or time_filters (recurring), not both",
        )),
        (None, true) => Err(bad(
            "time_filter",
            "a silence rule needs time_filter {start_time, end_time} or time_filters[]",
        )),
        (Some(w), true) => {
            if w.start_time <= 0 {
                return Err(bad("time_filter.start_time", "is required"));
            }
            if w.end_time <= 0 {
                return Err(bad("time_filter.end_time", "is required"));
            }
            if w.end_time <= w.start_time {
                return Err(bad("time_filter.end_time", "must be after start_time"));
            }
            Ok(())
        }
        (None, false) => {
            if rule.time_filters.len() > TIME_FILTERS_MAX {
                return Err(bad("time_filters", "must have 1 to 10 entries"));
            }
            for (i, tf) in rule.time_filters.iter().enumerate() {
                let field = format!("time_filters[{i}]");
                if parse_hhmm(&tf.start).is_none() {
                    return Err(bad(format!("{field}.start"), "must be HH:MM (00:00–23:59)"));
                }
                if parse_hhmm(&tf.end).is_none() {
                    return Err(bad(format!("{field}.end"), "must be HH:MM (00:00–23:59)"));
                }
                let mut days = BTreeSet::new();
                for d in &tf.repeat {
                    if !(0..=6).contains(d) {
                        return Err(bad(
                            format!("{field}.repeat"),
                            format!("{d} is not a weekday (0 = Sunday … 6 = Saturday)"),
                        ));
                    }
                    if !days.insert(*d) {
                        return Err(bad(
                            format!("{field}.repeat"),
                            format!("weekday {d} is repeated"),
                        ));
                    }
                }
                if tf.is_off && tf.cal_id.is_empty() {
                    return Err(bad(
                        format!("{field}.is_off"),
                        "is only allowed with cal_id",
                    ));
                }
            }
            Ok(())
        }
    }
}

// --- quick silence (RSP-120, ING-134) ---------------------------------------------------

/// The quick-silence window: 24 hours from now.
pub const QUICK_SILENCE_MS: Millis = 86_400_000;
/// Labels with longer values are left out of a quick silence.
const QUICK_LABEL_MAX_CHARS: usize = 200;

/// RSP-120 / ING-134: the one-off silence rule a quick silence from `incident` starts from:
/// named `Quick Silence - #<num>`, described by the incident title, in the incident's channel,
/// window `[now, now + 24 h)`, behaviour mark, and one condition group: `severity` equal to
/// the incident severity and each label equal to its exact value, leaving out labels whose
/// value is purely numeric or longer than 200 characters, or whose key starts with `__`.
///
/// DECISION: a group holds at most 20 conditions (§4.1), so after the severity condition only
/// the first 19 eligible labels (in key order) are kept; the severity condition is always
/// there, so the rule never silences a whole channel.
pub fn quick_silence(incident: &Incident, now: Millis) -> NoiseRule {
    let mut rule = NoiseRule::new(RuleKind::Silence);
    rule.account_id = incident.account_id;
    rule.channel_id = incident.channel_id;
    let name = format!("Quick Silence - #{}", incident.num);
    rule.rule_name = name.chars().take(RULE_NAME_MAX).collect();
    rule.description = incident.title.chars().take(RULE_DESCRIPTION_MAX).collect();
    let start = now.div_euclid(1000);
    rule.time_filter = Some(OneOff {
        start_time: start,
        end_time: start + QUICK_SILENCE_MS / 1000,
    });
    let mut group = vec![condition::Condition::is_in(
        "severity",
        [incident.incident_severity.as_str()],
    )];
    group.extend(
        incident
            .labels
            .iter()
            .filter(|(k, v)| {
                !k.starts_with("__")
                    && v.chars().count() <= QUICK_LABEL_MAX_CHARS
                    && !purely_numeric(v)
            })
            .take(condition::MAX_CONDITIONS - 1)
            .map(|(k, v)| {
                condition::Condition::is_in(format!("labels.{k}"), [condition::exact_value(v)])
            }),
    );
    rule.filters = vec![group];
    rule.from_incident_id = incident.incident_id.clone();
    rule
}

/// `12`, `-3`, `0.5`: digits with an optional sign and one decimal point.
fn purely_numeric(v: &str) -> bool {
    let body = v.strip_prefix('-').unwrap_or(v);
    let mut parts = body.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
}

/// When a quick-silence rule is deleted (ING-134: at the end of its window); 0 for every other
/// rule, which is never deleted by time (ING-132).
pub fn expires_at(rule: &NoiseRule) -> Millis {
    match (&rule.time_filter, rule.from_incident_id.is_empty()) {
        (Some(w), false) => w.end_time.saturating_mul(1000),
        _ => 0,
    }
}

// --- subjects ----------------------------------------------------------------------------

/// An event seen by a drop rule (§4.2: `severity` = event severity).
struct EventSubject<'a>(&'a QueuedEvent);

impl Subject for EventSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        let (o, e) = (&self.0.origin, &self.0.event);
        match key {
            Key::Title => Some(Cow::Borrowed(e.title.as_str())),
            Key::Description => Some(Cow::Borrowed(e.description.as_str())),
            Key::Severity => e
                .event_status
                .severity()
                .or(e.event_severity)
                .map(|s| Cow::Borrowed(s.as_str())),
            Key::IntegrationId => Some(Cow::Owned(o.integration_id.to_string())),
            Key::IntegrationType => Some(Cow::Borrowed(o.integration_type.as_str())),
            Key::Label(name) => e.labels.get(name).map(|v| Cow::Borrowed(v.as_str())),
            _ => None,
        }
    }
}

/// A candidate alert seen by silence rules and inhibit targets (`severity` = alert severity).
struct AlertSubject<'a>(&'a Alert);

impl Subject for AlertSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        let a = self.0;
        match key {
            Key::Title => Some(Cow::Borrowed(a.title.as_str())),
            Key::Description => Some(Cow::Borrowed(a.description.as_str())),
            Key::Severity => Some(Cow::Borrowed(a.alert_severity.as_str())),
            Key::IntegrationId => Some(Cow::Owned(a.integration_id.to_string())),
            Key::IntegrationType => Some(Cow::Borrowed(a.integration_type.as_str())),
            Key::Label(name) => a.labels.get(name).map(|v| Cow::Borrowed(v.as_str())),
            _ => None,
        }
    }
}

/// An active incident seen by inhibit sources (`severity` = incident severity).
struct IncidentSubject<'a>(&'a Incident);

impl Subject for IncidentSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        let i = self.0;
        match key {
            Key::Title => Some(Cow::Borrowed(i.title.as_str())),
            Key::Description => Some(Cow::Borrowed(i.description.as_str())),
            Key::Severity => Some(Cow::Borrowed(i.incident_severity.as_str())),
            Key::Label(name) => i.labels.get(name).map(|v| Cow::Borrowed(v.as_str())),
            _ => None,
        }
    }
}

// --- compiled rule sets ------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Compiled {
    rule: NoiseRule,
    /// Drop `filters`, silence `filters`, inhibit `target_filters`.
    filter: Filter,
    /// Inhibit `source_filters`.
    source: Filter,
    equals: Vec<Equal>,
}

/// A channel's enabled rules, compiled and in evaluation order (ascending `priority`, ties:
/// the older rule first).
#[derive(Debug, Clone, Default)]
pub struct ChannelNoise {
    drop: Vec<Compiled>,
    silence: Vec<Compiled>,
    inhibit: Vec<Compiled>,
}

impl ChannelNoise {
    /// Compiles the enabled rules among `rules` (any kinds, any order). A stored rule that no
    /// longer compiles (validated on save, so only after a language change) is left out: it
    /// then decides nothing, rather than everything.
    pub fn compile(rules: &[NoiseRule]) -> ChannelNoise {
        let mut ordered: Vec<&NoiseRule> = rules
            .iter()
            .filter(|r| r.status == RuleStatus::Enabled)
            .collect();
        ordered.sort_by(|a, b| {
            (a.priority, a.created_at, &a.rule_id).cmp(&(b.priority, b.created_at, &b.rule_id))
        });
        let mut out = ChannelNoise::default();
        for r in ordered {
            let compiled = match r.kind {
                RuleKind::Drop => Filter::compile(&r.filters, Context::Drop).map(|f| (f, None)),
                RuleKind::Silence => {
                    Filter::compile(&r.filters, Context::Silence).map(|f| (f, None))
                }
                RuleKind::Inhibit => Filter::compile(&r.target_filters, Context::InhibitTarget)
                    .and_then(|t| {
                        Filter::compile(&r.source_filters, Context::InhibitSource)
                            .map(|s| (t, Some(s)))
                    }),
            };
            let Ok((filter, source)) = compiled else {
                continue;
            };
            let c = Compiled {
                rule: r.clone(),
                filter,
                source: source.unwrap_or_default(),
                equals: r.equals.iter().filter_map(|e| parse_equal(e)).collect(),
            };
            match r.kind {
                RuleKind::Drop => out.drop.push(c),
                RuleKind::Silence => out.silence.push(c),
                RuleKind::Inhibit => {
                    // ING-141: a rule without equals would inhibit on any source; never.
                    if !c.equals.is_empty() {
                        out.inhibit.push(c)
                    }
                }
            }
        }
        out
    }

    /// True when no rule can decide anything (the batch then skips reading inhibit sources).
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.silence.is_empty() && self.inhibit.is_empty()
    }

    pub fn has_inhibit(&self) -> bool {
        !self.inhibit.is_empty()
    }

    /// ING-101: the first enabled drop rule whose conditions match a trigger event. Recovery
    /// events are never dropped (ING-086).
    pub fn drop_rule(&self, event: &QueuedEvent) -> Option<&NoiseRule> {
        if !event.event.event_status.is_trigger() {
            return None;
        }
        let subject = EventSubject(event);
        self.drop
            .iter()
            .find(|c| c.filter.matches(&subject))
            .map(|c| &c.rule)
    }

    /// ING-130, ING-131: the first silence rule whose time specification is active at `now`
    /// and whose filters match the alert.
    pub fn silence_rule(
        &self,
        alert: &Alert,
        matching: &MatchContext<'_>,
        now: Millis,
    ) -> Option<&NoiseRule> {
        let subject = AlertSubject(alert);
        self.silence
            .iter()
            .find(|c| time_active(&c.rule, matching, now) && c.filter.matches(&subject))
            .map(|c| &c.rule)
    }

    /// ING-140, ING-141: the first inhibit rule whose target conditions match the alert and
    /// for which a source incident exists among `incidents` (any incidents; only those of the
    /// alert's channel, `Triggered` and created less than 24 h before `now` count), with the
    /// source incident found (the most recently created one).
    pub fn inhibit_rule<'a>(
        &'a self,
        alert: &Alert,
        incidents: &'a dyn InhibitSources,
        now: Millis,
    ) -> Option<(&'a NoiseRule, &'a Incident)> {
        let target = AlertSubject(alert);
        // Most alerts match no rule's target: then the sources are not even looked at (a
        // channel may have thousands of active incidents).
        let mut rules = self
            .inhibit
            .iter()
            .filter(|c| c.filter.matches(&target))
            .peekable();
        rules.peek()?;
        let mut sources: Vec<&Incident> = incidents
            .inhibit_sources()
            .into_iter()
            .filter(|s| {
                s.channel_id == alert.channel_id
                    && s.account_id == alert.account_id
                    && s.progress == Progress::Triggered
                    && now - s.created_at < DAY_MS
            })
            .collect();
        sources.sort_by(|a, b| (b.created_at, &b.incident_id).cmp(&(a.created_at, &a.incident_id)));
        rules.find_map(|c| {
            sources
                .iter()
                .find(|s| {
                    c.source.matches(&IncidentSubject(s))
                        && c.equals.iter().all(|e| equal(e, alert, s))
                })
                .map(|s| (&c.rule, *s))
        })
    }
}

/// The incidents inhibit rules may find as sources (ING-140), produced only when an alert
/// matches some rule's target conditions.
pub trait InhibitSources {
    fn inhibit_sources(&self) -> Vec<&Incident>;
}

impl InhibitSources for Vec<Incident> {
    fn inhibit_sources(&self) -> Vec<&Incident> {
        self.iter().collect()
    }
}

/// ING-140 item 3: the alert's value equals the source incident's; a label missing on either
/// side is never equal.
fn equal(e: &Equal, alert: &Alert, s: &Incident) -> bool {
    match e {
        Equal::Title => alert.title == s.title,
        Equal::Description => alert.description == s.description,
        Equal::Severity => alert.alert_severity == s.incident_severity,
        Equal::Label(name) => match (alert.labels.get(name), s.labels.get(name)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    }
}

/// ING-131: a one-off window is active when `start_time ≤ now < end_time`; recurring windows
/// as escalation time conditions (RSP-133).
pub fn time_active(rule: &NoiseRule, matching: &MatchContext<'_>, now: Millis) -> bool {
    match &rule.time_filter {
        Some(w) => {
            w.start_time.saturating_mul(1000) <= now && now < w.end_time.saturating_mul(1000)
        }
        None => {
            !rule.time_filters.is_empty()
                && crate::response::rules::time_matches(&rule.time_filters, matching, now)
        }
    }
}

// --- the stage pipeline ------------------------------------------------------------------

/// What the noise stages read besides the event and its candidate alert.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    /// The event's channel's rules.
    pub rules: &'a ChannelNoise,
    /// Inhibit source candidates: the channel's recent incidents, as currently known (the
    /// batch's own changes included). Filtered by [`ChannelNoise::inhibit_rule`].
    pub incidents: &'a dyn InhibitSources,
    /// Account zone and service calendars, for recurring silence windows.
    pub matching: MatchContext<'a>,
}

/// Why an event ended as it did (ING-262): the outcome, and the rule, incident and alert it
/// concerns where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Explanation {
    /// `None` only when nothing was decided (never returned by [`process`]).
    pub outcome: Option<Outcome>,
    /// `silenced` / `inhibited` for a new alert kept with a mark, or a merge into an alert
    /// that stays marked.
    pub mark: Mark,
    pub rule_id: String,
    pub rule_name: String,
    /// The incident that inhibited the alert (ING-140).
    pub source_incident_id: String,
    pub event_id: String,
    pub alert_id: String,
    pub incident_id: String,
}

/// What [`process`] decided: the rows to write and the explanation to record.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub effects: Effects,
    pub why: Explanation,
}

/// Silence or inhibit applying to an alert.
struct Mute<'a> {
    mark: Mark,
    rule: &'a NoiseRule,
    source_incident_id: String,
}

/// ING-130 then ING-140 on the alert's current values.
fn mute<'a>(gate: &Gate<'a>, alert: &Alert, now: Millis) -> Option<Mute<'a>> {
    if let Some(rule) = gate.rules.silence_rule(alert, &gate.matching, now) {
        return Some(Mute {
            mark: Mark::Silenced,
            rule,
            source_incident_id: String::new(),
        });
    }
    gate.rules
        .inhibit_rule(alert, gate.incidents, now)
        .map(|(rule, s)| Mute {
            mark: Mark::Inhibited,
            rule,
            source_incident_id: s.incident_id.clone(),
        })
}

/// Stages 7–9 of ingest.md §1.4 for one event in its channel: drop rules (ING-101), event →
/// alert ([`merge::process_event`]), and on the new-alert path silence (ING-130) and inhibit
/// (ING-140) before the alert's own incident is opened; after a trigger merged into a marked
/// alert, the same re-evaluation (ING-123), un-muting the alert into a new incident when no
/// rule applies any more.
pub fn process(
    queued: &QueuedEvent,
    candidate: Option<Candidate>,
    gate: &Gate<'_>,
    now: Millis,
    ids: &mut dyn IdSource,
) -> Decision {
    if let Some(rule) = gate.rules.drop_rule(queued) {
        return Decision {
            effects: Effects {
                outcome: Some(Outcome::DroppedByChannelRule),
                ..Effects::default()
            },
            why: Explanation {
                outcome: Some(Outcome::DroppedByChannelRule),
                rule_id: rule.rule_id.clone(),
                rule_name: rule.rule_name.clone(),
                ..Explanation::default()
            },
        };
    }
    let before = candidate.as_ref().map(|c| c.alert.clone());
    let mut fx = merge::process_event(queued, candidate, now, ids);
    let mut why = Explanation {
        outcome: fx.outcome,
        ..Explanation::default()
    };
    match fx.outcome {
        Some(Outcome::NewAlert) => new_alert(&mut fx, &mut why, gate, now),
        Some(Outcome::Merged | Outcome::MergedNonSignificant | Outcome::Duplicate) => {
            if let Some(old) = before.as_ref().filter(|a| a.mark != Mark::None) {
                re_evaluate(&mut fx, &mut why, gate, old.clone(), now, ids);
            }
        }
        _ => {}
    }
    why.outcome = fx.outcome;
    if let Some(e) = &fx.stored_event {
        why.event_id = e.event_id.clone();
        why.alert_id = e.alert_id.clone();
    }
    // A merge that stored no event (ING-120) still concerns the candidate alert; a discarded
    // event concerns no alert (the expired alert of ING-113 is not its alert).
    let merged_into = before.filter(|_| {
        matches!(
            fx.outcome,
            Some(Outcome::Merged | Outcome::MergedNonSignificant | Outcome::Duplicate)
        )
    });
    if why.alert_id.is_empty()
        && let Some(c) = &merged_into
    {
        why.alert_id = c.alert_id.clone();
    }
    let row = fx
        .alerts
        .iter()
        .find(|a| a.alert_id == why.alert_id)
        .or(merged_into.as_ref().filter(|c| c.alert_id == why.alert_id));
    if let Some(a) = row {
        why.incident_id = a.incident_id.clone();
    }
    Decision { effects: fx, why }
}

/// The new-alert path: silence, then inhibit, decide the fate of the alert just built.
fn new_alert(fx: &mut Effects, why: &mut Explanation, gate: &Gate<'_>, now: Millis) {
    let Some(alert_id) = fx.stored_event.as_ref().map(|e| e.alert_id.clone()) else {
        return;
    };
    let Some(pos) = fx.alerts.iter().position(|a| a.alert_id == alert_id) else {
        return;
    };
    let Some(m) = mute(gate, &fx.alerts[pos], now) else {
        return;
    };
    why.rule_id = m.rule.rule_id.clone();
    why.rule_name = m.rule.rule_name.clone();
    why.source_incident_id = m.source_incident_id;
    let own_incident = fx.alerts[pos].incident_id.clone();
    fx.incidents.retain(|i| i.incident_id != own_incident);
    if m.rule.is_directly_discard {
        // Behaviour drop: no alert, no incident, no event (the expired alert of ING-113, if
        // any, still resolves).
        fx.alerts.remove(pos);
        fx.stored_event = None;
        fx.outcome = Some(match m.mark {
            Mark::Inhibited => Outcome::InhibitedDrop,
            _ => Outcome::SilencedDrop,
        });
        return;
    }
    let a = &mut fx.alerts[pos];
    a.incident_id = String::new();
    a.mark = m.mark;
    a.mark_rule_id = m.rule.rule_id.clone();
    a.ever_muted = true;
    why.mark = m.mark;
}

/// ING-123: a trigger merged into a marked alert; some rule still applies → the mark follows
/// that rule; none does → the alert is un-muted into its own new incident.
fn re_evaluate(
    fx: &mut Effects,
    why: &mut Explanation,
    gate: &Gate<'_>,
    old: Alert,
    now: Millis,
    ids: &mut dyn IdSource,
) {
    let pos = match fx.alerts.iter().position(|a| a.alert_id == old.alert_id) {
        Some(p) => p,
        None => {
            fx.alerts.push(old.clone());
            fx.alerts.len() - 1
        }
    };
    let current = fx.alerts[pos].clone();
    let mut next = current.clone();
    match mute(gate, &current, now) {
        Some(m) => {
            next.mark = m.mark;
            next.mark_rule_id = m.rule.rule_id.clone();
            why.mark = m.mark;
            why.rule_id = m.rule.rule_id.clone();
            why.rule_name = m.rule.rule_name.clone();
            why.source_incident_id = m.source_incident_id;
        }
        None => {
            next.mark = Mark::None;
            next.mark_rule_id = String::new();
            let incident_id = ids.object_id(now);
            next.incident_id = incident_id.clone();
            next.updated_at = now;
            fx.incidents
                .push(merge::incident_for(&next, incident_id, now));
        }
    }
    if next == old {
        // Nothing to write (a duplicate that stays marked by the same rule).
        fx.alerts.remove(pos);
    } else {
        fx.alerts[pos] = next;
    }
}

#[cfg(test)]
mod tests;
