//! Alert → incident grouping (ingest.md §2.13): rule-based grouping with unified or
//! fine-grained dimensions, intelligent (similarity) grouping on the `similarity_keys` text
//! (ING-157, [`similarity`]), the sliding or tumbling window, strict grouping and the
//! 1 000-alert cap. Pure: the store reads the channel's [`GroupingConfig`] and its eligible
//! incidents once per batch, and for each new alert asks [`ChannelGrouping::choose`] where it
//! goes, then applies the answer with [`join`] or [`keep_own`]. The side-effect-free preview
//! of ING-160 ([`preview`]) replays stored events through the same `choose`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::condition::{self, Context, Filter, FilterGroups, Key, Subject};
use crate::merge::{Effects, Members, derive_from_members};
use crate::model::{Alert, AlertSummary, Incident, Millis, Progress};
use crate::response::rules::RuleError;
use crate::standard::hash_parts;

/// ING-151, ING-158: an incident with this many alerts takes no more.
pub const MAX_ALERTS_PER_INCIDENT: i64 = 1000;
/// §1.3.6: 1–10 dims per list.
pub const MAX_DIMS: usize = 10;
/// §1.3.6 / §1.5.1: `window_minutes` 0 (no window) or 1–1440.
pub const MAX_WINDOW_MINUTES: i64 = 1440;
/// §1.3.6: 0–5 storm thresholds, each 1–10 000, strictly increasing.
pub const MAX_STORM_THRESHOLDS: usize = 5;
pub const MAX_STORM_THRESHOLD: i64 = 10_000;

/// `GroupMethod` of an incident grouped by rules.
pub const METHOD_RULE: &str = "p";
/// `GroupMethod` of an incident grouped by similarity (ING-157).
pub const METHOD_INTELLIGENT: &str = "i";
/// §1.3.6: `similarity_threshold` 0.50–1.00, default 0.80, in ten-thousandths.
pub const DEFAULT_SIMILARITY_THRESHOLD: f64 = 0.80;
pub const MIN_SIMILARITY_THRESHOLD: f64 = 0.50;
pub const MAX_SIMILARITY_THRESHOLD: f64 = 1.00;

pub mod preview;
pub mod similarity;

/// Rule-based (`p`) or intelligent (`i`) grouping (§1.3.6 `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Rule,
    Intelligent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Unified,
    FineGrained,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowType {
    #[default]
    Sliding,
    Tumbling,
}

/// One fine-grained rule (ING-154).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineRule {
    pub id: String,
    pub conditions: FilterGroups,
    pub dims: Vec<String>,
}

/// A channel's grouping policy (ingest.md §1.3.6). `enabled = false` (the default) means every
/// alert opens its own incident (ING-150).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupingConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub unified_dims: Vec<String>,
    #[serde(default)]
    pub fine_rules: Vec<FineRule>,
    #[serde(default)]
    pub default_dims: Vec<String>,
    #[serde(default)]
    pub window_minutes: i64,
    #[serde(default)]
    pub window_type: WindowType,
    #[serde(default)]
    pub strict: bool,
    /// Intelligent mode: the lowest similarity that joins (0.50–1.00).
    #[serde(default = "default_threshold")]
    pub similarity_threshold: f64,
    /// Intelligent mode: the dims whose values, joined with spaces, are compared (ING-157).
    #[serde(default = "default_similarity_keys")]
    pub similarity_keys: Vec<String>,
}

fn default_threshold() -> f64 {
    DEFAULT_SIMILARITY_THRESHOLD
}

fn default_similarity_keys() -> Vec<String> {
    vec!["title".to_string()]
}

impl Default for GroupingConfig {
    fn default() -> Self {
        GroupingConfig {
            enabled: false,
            mode: Mode::Rule,
            scope: Scope::Unified,
            unified_dims: Vec::new(),
            fine_rules: Vec::new(),
            default_dims: Vec::new(),
            window_minutes: 0,
            window_type: WindowType::Sliding,
            strict: false,
            similarity_threshold: DEFAULT_SIMILARITY_THRESHOLD,
            similarity_keys: default_similarity_keys(),
        }
    }
}

/// The threshold in ten-thousandths (0.80 → 8000), so comparisons are exact.
fn threshold_bp(t: f64) -> u32 {
    (t.clamp(0.0, 1.0) * 10_000.0).round() as u32
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError {
        field: field.into(),
        message: message.into(),
    }
}

/// One grouping dimension (§1.3.6 Dim).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dim {
    Title,
    Description,
    Severity,
    IntegrationId,
    Label(String),
}

fn parse_dim(s: &str) -> Option<Dim> {
    match s {
        "title" => Some(Dim::Title),
        "description" => Some(Dim::Description),
        "severity" => Some(Dim::Severity),
        "integration_id" => Some(Dim::IntegrationId),
        _ => s
            .strip_prefix("labels.")
            .filter(|n| !n.is_empty())
            .map(|n| Dim::Label(n.to_string())),
    }
}

fn check_dims(dims: &[String], field: &str, min: usize) -> Result<(), RuleError> {
    if dims.len() < min || dims.len() > MAX_DIMS {
        return Err(bad(
            field,
            format!("must have {min} to {MAX_DIMS} dimensions"),
        ));
    }
    for (i, d) in dims.iter().enumerate() {
        if parse_dim(d).is_none() {
            return Err(bad(
                format!("{field}[{i}]"),
                format!(
                    "{d:?} is not title, description, severity, integration_id or labels.<name>"
                ),
            ));
        }
    }
    Ok(())
}

/// Save-time checks of §1.3.6, errors named by their wire field (§1.5.1).
pub fn validate(cfg: &GroupingConfig) -> Result<(), RuleError> {
    if !(0..=MAX_WINDOW_MINUTES).contains(&cfg.window_minutes) {
        return Err(bad(
            "group.time_window",
            "must be 0 (no window) to 1440 minutes",
        ));
    }
    if !cfg.enabled {
        return Ok(());
    }
    if cfg.mode == Mode::Intelligent {
        let t = cfg.similarity_threshold;
        if !t.is_finite() || !(MIN_SIMILARITY_THRESHOLD..=MAX_SIMILARITY_THRESHOLD).contains(&t) {
            return Err(bad("group.i_score_threshold", "must be 0.50 to 1.00"));
        }
        return check_dims(&cfg.similarity_keys, "group.i_keys", 1);
    }
    match cfg.scope {
        Scope::Unified => check_dims(&cfg.unified_dims, "group.equals[0]", 1),
        Scope::FineGrained => {
            check_dims(&cfg.default_dims, "group.equals[0]", 0)?;
            for (i, r) in cfg.fine_rules.iter().enumerate() {
                let field = format!("group.cases[{i}]");
                if r.conditions.iter().all(Vec::is_empty) {
                    return Err(bad(format!("{field}.if"), "needs at least one condition"));
                }
                condition::validate(&r.conditions, Context::FineGrouping).map_err(|e| {
                    let text = e.in_field(format!("{field}.if")).to_string();
                    match text.split_once(": ") {
                        Some((f, m)) => bad(f, m),
                        None => bad(format!("{field}.if"), text),
                    }
                })?;
                check_dims(&r.dims, &format!("{field}.equals"), 1)?;
            }
            Ok(())
        }
    }
}

/// §1.3.6 / RSP-200: 0–5 strictly increasing thresholds in 1–10 000.
pub fn validate_storm_thresholds(t: &[i64]) -> Result<(), RuleError> {
    let field = "group.storm_thresholds";
    if t.len() > MAX_STORM_THRESHOLDS {
        return Err(bad(field, "must have at most 5 thresholds"));
    }
    for (i, v) in t.iter().enumerate() {
        if !(1..=MAX_STORM_THRESHOLD).contains(v) {
            return Err(bad(format!("{field}[{i}]"), "must be 1 to 10000"));
        }
        if i > 0 && t[i - 1] >= *v {
            return Err(bad(
                format!("{field}[{i}]"),
                "thresholds must strictly increase",
            ));
        }
    }
    Ok(())
}

/// The alert seen by fine-grained rule conditions (keys as ING-130).
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

/// A channel's grouping policy compiled for a batch.
#[derive(Debug, Clone, Default)]
pub struct ChannelGrouping {
    cfg: GroupingConfig,
    fine: Vec<(String, Filter, Vec<String>)>,
    /// Intelligent mode: the key every incident of this configuration carries.
    intelligent_key: String,
    threshold_bp: u32,
}

/// Where a new alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// `p` or `i`: the method of the incident the alert opens.
    pub group_method: &'static str,
    /// The alert's group key (ING-155); "" = nothing may ever join its incident. In
    /// intelligent mode, the key of the configuration's `similarity_keys` ([`intelligent_key`]).
    pub group_key: String,
    /// Intelligent mode: the alert's compared text, the `group_text` of an incident it opens
    /// (ING-157); "" in rule mode.
    pub group_text: String,
    /// The eligible incident to join, if any (ING-151).
    pub target: Option<String>,
}

/// The `group_key` of incidents opened by intelligent grouping: `H("i", keys joined by 0x1E)`.
/// Only incidents with the current key are eligible, so changing `similarity_keys` means new
/// alerts never join incidents whose reference text was built from other values (as ING-155
/// does for rule dims).
pub fn intelligent_key(similarity_keys: &[String]) -> String {
    hash_parts(&[METHOD_INTELLIGENT, &similarity_keys.join("\u{1e}")])
}

impl ChannelGrouping {
    /// Compiles a stored, validated config. A fine rule whose conditions no longer compile is
    /// left out (it then matches nothing).
    pub fn compile(cfg: &GroupingConfig) -> ChannelGrouping {
        let fine = cfg
            .fine_rules
            .iter()
            .filter_map(|r| {
                Filter::compile(&r.conditions, Context::FineGrouping)
                    .ok()
                    .map(|f| (r.id.clone(), f, r.dims.clone()))
            })
            .collect();
        ChannelGrouping {
            cfg: cfg.clone(),
            fine,
            intelligent_key: intelligent_key(&cfg.similarity_keys),
            threshold_bp: threshold_bp(cfg.similarity_threshold),
        }
    }

    /// Intelligent mode: the `group_key` of the incidents it opens and may join.
    pub fn intelligent_key(&self) -> Option<&str> {
        (self.cfg.mode == Mode::Intelligent).then_some(self.intelligent_key.as_str())
    }

    /// The method of the incidents this policy opens and may join.
    pub fn method(&self) -> &'static str {
        match self.cfg.mode {
            Mode::Rule => METHOD_RULE,
            Mode::Intelligent => METHOD_INTELLIGENT,
        }
    }

    /// ING-157: the alert's compared text, the values of `similarity_keys` joined with single
    /// spaces.
    pub fn compared_text(&self, alert: &Alert) -> String {
        self.cfg
            .similarity_keys
            .iter()
            .map(|d| dim_value(d, alert))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// True when new alerts are grouped (ING-150: otherwise each opens its own incident).
    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    pub fn config(&self) -> &GroupingConfig {
        &self.cfg
    }

    /// ING-153…155: the rule reference and dims that apply, then the key.
    pub fn group_key(&self, alert: &Alert) -> String {
        let (rule_ref, dims): (Cow<'_, str>, &[String]) = match self.cfg.scope {
            Scope::Unified => (Cow::Borrowed("unified"), &self.cfg.unified_dims),
            Scope::FineGrained => {
                let subject = AlertSubject(alert);
                match self.fine.iter().find(|(_, f, _)| f.matches(&subject)) {
                    Some((id, _, dims)) => (Cow::Owned(format!("fine:{id}")), dims),
                    None => (Cow::Borrowed("default"), &self.cfg.default_dims),
                }
            }
        };
        if dims.is_empty() {
            // ING-154: no matching rule and no default dims → not grouped.
            return String::new();
        }
        let values: Vec<String> = dims.iter().map(|d| dim_value(d, alert)).collect();
        if self.cfg.strict && values.iter().any(String::is_empty) {
            return String::new();
        }
        let joined = dims.join("\u{1e}");
        let mut parts: Vec<&str> = vec!["p", &rule_ref, &joined];
        parts.extend(values.iter().map(String::as_str));
        hash_parts(&parts)
    }

    /// ING-151, ING-158: `incident` may receive `alert` at `now`.
    pub fn eligible(&self, incident: &Incident, alert: &Alert, now: Millis) -> bool {
        if incident.account_id != alert.account_id
            || incident.channel_id != alert.channel_id
            || incident.progress == Progress::Closed
            || incident.group_method != self.method()
            || incident.group_key.is_empty()
            || incident.first_alert_id.is_empty()
            || incident.creator_id != 0
            || incident.alert_cnt >= MAX_ALERTS_PER_INCIDENT
        {
            return false;
        }
        if self.cfg.window_minutes > 0 {
            let since = match self.cfg.window_type {
                WindowType::Sliding => incident.last_merge_time,
                WindowType::Tumbling => incident.created_at,
            };
            if now.saturating_sub(since) > self.cfg.window_minutes.saturating_mul(60_000) {
                return false;
            }
        }
        true
    }

    /// ING-151, ING-153, ING-157: where `alert` goes. Rule mode: the eligible incident with
    /// the alert's key and the latest `last_merge_time` (ties: latest `created_at`, then
    /// greatest id). Intelligent mode: the eligible incident whose `group_text` is most similar
    /// to the alert's compared text, if at least `similarity_threshold` (ties as above).
    pub fn choose(&self, alert: &Alert, incidents: &[&Incident], now: Millis) -> Choice {
        if self.cfg.mode == Mode::Intelligent {
            return self.choose_similar(alert, incidents, now);
        }
        let group_key = self.group_key(alert);
        let target = if group_key.is_empty() {
            None
        } else {
            incidents
                .iter()
                .filter(|i| i.group_key == group_key && self.eligible(i, alert, now))
                .max_by(|a, b| {
                    (a.last_merge_time, a.created_at, &a.incident_id).cmp(&(
                        b.last_merge_time,
                        b.created_at,
                        &b.incident_id,
                    ))
                })
                .map(|i| i.incident_id.clone())
        };
        Choice {
            group_method: METHOD_RULE,
            group_key,
            group_text: String::new(),
            target,
        }
    }

    /// ING-157 with ING-151's eligibility and tie-breaks.
    fn choose_similar(&self, alert: &Alert, incidents: &[&Incident], now: Millis) -> Choice {
        let group_text = self.compared_text(alert);
        let mine = similarity::tokens(&group_text);
        let mut best: Option<(similarity::Similarity, &Incident)> = None;
        for i in incidents {
            if i.group_key != self.intelligent_key || !self.eligible(i, alert, now) {
                continue;
            }
            let s = similarity::jaccard(&mine, &similarity::tokens(&i.group_text));
            if !s.at_least(self.threshold_bp) {
                continue;
            }
            let better = match &best {
                None => true,
                Some((bs, b)) => {
                    s.cmp_value(bs).then_with(|| {
                        (i.last_merge_time, i.created_at, &i.incident_id).cmp(&(
                            b.last_merge_time,
                            b.created_at,
                            &b.incident_id,
                        ))
                    }) == std::cmp::Ordering::Greater
                }
            };
            if better {
                best = Some((s, i));
            }
        }
        Choice {
            group_method: METHOD_INTELLIGENT,
            group_key: self.intelligent_key.clone(),
            group_text,
            target: best.map(|(_, i)| i.incident_id.clone()),
        }
    }
}

/// ING-155: a dim's value for the alert ("" when a label is absent).
fn dim_value(dim: &str, alert: &Alert) -> String {
    match parse_dim(dim) {
        Some(Dim::Title) => alert.title.clone(),
        Some(Dim::Description) => alert.description.clone(),
        Some(Dim::Severity) => alert.alert_severity.as_str().to_string(),
        Some(Dim::IntegrationId) => alert.integration_id.to_string(),
        Some(Dim::Label(name)) => alert.labels.get(&name).cloned().unwrap_or_default(),
        None => String::new(),
    }
}

/// The new incident an event's effects opened for one alert (ING-170), if any: the incident
/// `incident_id` in `fx` and its first alert.
pub fn opened_alert(fx: &Effects, incident_id: &str) -> Option<Alert> {
    let inc = fx.incidents.iter().find(|i| i.incident_id == incident_id)?;
    fx.alerts
        .iter()
        .find(|a| a.alert_id == inc.first_alert_id && a.incident_id == incident_id)
        .cloned()
}

/// The alert opened its own incident under grouping: it carries the group method, key
/// (ING-153; "" = nothing may join it) and, in intelligent mode, the reference text
/// (ING-157), fixed from now on.
pub fn keep_own(fx: &mut Effects, incident_id: &str, choice: &Choice) {
    if let Some(i) = fx
        .incidents
        .iter_mut()
        .find(|i| i.incident_id == incident_id)
    {
        i.group_method = choice.group_method.to_string();
        i.group_key = choice.group_key.clone();
        i.group_text = choice.group_text.clone();
    }
}

/// ING-159: the alert of the new incident `new_incident_id` joins `target` instead. The new
/// incident is dropped from the effects, the alert points at `target`, and `target` is
/// re-derived from `members` (the aggregate of its current alerts, without the joining one,
/// with this event's changes to them applied) plus the alert, with `last_merge_time = now`.
/// Returns false (and changes nothing) when `fx` holds no such new incident.
pub fn join(
    fx: &mut Effects,
    new_incident_id: &str,
    target: &Incident,
    members: &Members,
    now: Millis,
) -> bool {
    let Some(alert) = opened_alert(fx, new_incident_id) else {
        return false;
    };
    fx.incidents.retain(|i| i.incident_id != new_incident_id);
    // ING-113: the same event may have resolved the expired alert of `target` (re-deriving it,
    // possibly auto-resolving it). The new alert is grouped first, so `target` is derived
    // again from its state before this event; an auto-resolution by this event is undone,
    // since the joining alert keeps the incident open.
    if let Some(pos) = fx
        .incidents
        .iter()
        .position(|i| i.incident_id == target.incident_id)
    {
        let rederived = fx.incidents.remove(pos);
        if target.progress != Progress::Closed && rederived.progress == Progress::Closed {
            for a in fx.alerts.iter_mut() {
                if a.incident_id == target.incident_id && a.closed && a.close_time == now {
                    a.closed = false;
                    a.close_time = 0;
                }
            }
            fx.close_incident_id.clear();
            fx.close_time = 0;
        }
    }
    let mut after = members.clone();
    after.add(&AlertSummary::from(&alert));
    let mut joined = derive_from_members(target, &after, now);
    joined.last_merge_time = now;
    joined.updated_at = now;
    for a in fx.alerts.iter_mut() {
        if a.alert_id == alert.alert_id {
            a.incident_id = target.incident_id.clone();
        }
    }
    fx.incidents.push(joined);
    true
}

#[cfg(test)]
mod tests;
