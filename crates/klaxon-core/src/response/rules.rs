//! Escalation rules (response.md 1.12, §2.12): the model, validation on save, and matching
//! (RSP-132 to RSP-134).
//!
//! The serde shape is the wire shape of `/channel/escalate/rule/*` (openapi-compat.md 2.7), so
//! the API deserialises straight into it and then calls [`validate_rule`].

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::condition::{self, Condition, Context, Filter, Key, Subject};
use crate::model::{Incident, Millis, Severity};
use crate::schedule::{Calendars, DayType, ServiceCalendar, day_type};

pub const RULE_NAME_MAX: usize = 39;
pub const RULE_DESCRIPTION_MAX: usize = 500;
pub const PRIORITY_MAX: i64 = 200;
pub const AGGR_WINDOW_MAX_SECS: i64 = 3600;
pub const LAYERS_MAX: usize = 10;
pub const ESCALATE_WINDOW_MAX_MINS: i64 = 720;
pub const MAX_TIMES_MAX: i64 = 6;
pub const NOTIFY_STEP_MAX_MINS: f64 = 120.0;
pub const CHAT_IDS_MAX: usize = 20;

/// The direct channels a level may name (response.md 1.1 `DirectChannel`).
pub const DIRECT_CHANNELS: [&str; 9] = [
    "voice",
    "sms",
    "email",
    "app",
    "feishu_app",
    "dingtalk_app",
    "wecom_app",
    "slack_app",
    "teams_app",
];

/// Group-chat targets (response.md 1.1 `GroupChatType`).
pub const GROUP_CHAT_TYPES: [&str; 10] = [
    "feishu_app",
    "dingtalk_app",
    "slack_app",
    "teams_app",
    "feishu",
    "dingtalk",
    "wecom",
    "slack",
    "telegram",
    "zoom",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    #[default]
    Enabled,
    Disabled,
}

/// One escalation rule of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationRule {
    #[serde(default)]
    pub rule_id: String,
    #[serde(default)]
    pub account_id: i64,
    #[serde(default)]
    pub channel_id: i64,
    pub rule_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub status: RuleStatus,
    #[serde(default)]
    pub template_id: String,
    /// Seconds (RSP-160).
    #[serde(default)]
    pub aggr_window: i64,
    #[serde(default)]
    pub time_filters: Vec<TimeFilter>,
    #[serde(default)]
    pub filters: Vec<Vec<Condition>>,
    pub layers: Vec<Level>,
    #[serde(default)]
    pub updated_by: i64,
    #[serde(default)]
    pub created_at: Millis,
    #[serde(default)]
    pub updated_at: Millis,
}

/// `{start: HH:MM, end: HH:MM, repeat: [0..6], cal_id?, is_off?}`; weekday 0 is Sunday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeFilter {
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub repeat: Vec<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cal_id: String,
    #[serde(default)]
    pub is_off: bool,
}

/// One level (`layers[k]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub target: Target,
    /// Minutes, 1..720.
    #[serde(default = "default_escalate_window")]
    pub escalate_window: i64,
    #[serde(default)]
    pub force_escalate: bool,
    /// Repeat notifications within the level, 0..6.
    #[serde(default)]
    pub max_times: i64,
    /// Minutes between repeats, 0.5..120 in steps of 0.5.
    #[serde(default = "default_notify_step")]
    pub notify_step: f64,
}

fn default_escalate_window() -> i64 {
    30
}

fn default_notify_step() -> f64 {
    10.0
}

impl Level {
    pub fn escalate_window_ms(&self) -> Millis {
        self.escalate_window.saturating_mul(60_000)
    }

    /// `notify_step` is validated to a multiple of half a minute, so this is exact.
    pub fn notify_step_ms(&self) -> Millis {
        (self.notify_step * 2.0).round() as i64 * 30_000
    }
}

/// Who a level reaches and how (response.md 1.12 `target`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Target {
    #[serde(default)]
    pub person_ids: Vec<i64>,
    #[serde(default)]
    pub team_ids: Vec<i64>,
    #[serde(default)]
    pub schedule_to_role_ids: BTreeMap<i64, Vec<i64>>,
    #[serde(default)]
    pub by: Option<By>,
    #[serde(default)]
    pub webhooks: Vec<GroupChatTarget>,
}

/// Direct-message settings of a level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct By {
    #[serde(default)]
    pub follow_preference: bool,
    #[serde(default)]
    pub critical: Vec<String>,
    #[serde(default)]
    pub warning: Vec<String>,
    #[serde(default)]
    pub info: Vec<String>,
}

impl By {
    pub fn for_severity(&self, sev: Severity) -> &[String] {
        match sev {
            Severity::Critical => &self.critical,
            Severity::Warning => &self.warning,
            Severity::Info => &self.info,
        }
    }
}

/// A group chat or bot (response.md 1.12 `GroupChatTarget`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupChatTarget {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub settings: Value,
}

/// A rule that fails validation, naming the bad part as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> RuleError {
    RuleError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a rule on save (response.md 1.12 and openapi-compat.md 2.7 bounds) and normalises it:
/// `teams` becomes `teams_app`, bare bot tokens are kept as given (expanded when sent).
/// Uniqueness of name and priority within the channel is the store's check.
pub fn validate_rule(rule: &mut EscalationRule) -> Result<(), RuleError> {
    rule.rule_name = rule.rule_name.trim().to_string();
    let name_len = rule.rule_name.chars().count();
    if name_len == 0 || name_len > RULE_NAME_MAX {
        return Err(bad("rule_name", "must be 1 to 39 characters"));
    }
    if rule.description.chars().count() > RULE_DESCRIPTION_MAX {
        return Err(bad("description", "must be at most 500 characters"));
    }
    if !(0..=PRIORITY_MAX).contains(&rule.priority) {
        return Err(bad("priority", "must be between 0 and 200"));
    }
    if !(0..=AGGR_WINDOW_MAX_SECS).contains(&rule.aggr_window) {
        return Err(bad("aggr_window", "must be between 0 and 3600 seconds"));
    }
    for (i, tf) in rule.time_filters.iter().enumerate() {
        let field = format!("time_filters[{i}]");
        if parse_hhmm(&tf.start).is_none() {
            return Err(bad(format!("{field}.start"), "must be HH:MM"));
        }
        if parse_hhmm(&tf.end).is_none() {
            return Err(bad(format!("{field}.end"), "must be HH:MM"));
        }
        if let Some(d) = tf.repeat.iter().find(|d| !(0..=6).contains(*d)) {
            return Err(bad(
                format!("{field}.repeat"),
                format!("{d} is not a weekday (0 = Sunday … 6 = Saturday)"),
            ));
        }
    }
    condition::validate(&rule.filters, Context::Escalation)
        .map_err(|e| bad("filters", e.to_string()))?;
    if rule.layers.is_empty() || rule.layers.len() > LAYERS_MAX {
        return Err(bad("layers", "must have 1 to 10 levels"));
    }
    for (k, level) in rule.layers.iter_mut().enumerate() {
        validate_level(k, level)?;
    }
    Ok(())
}

fn validate_level(k: usize, level: &mut Level) -> Result<(), RuleError> {
    let field = format!("layers[{k}]");
    if !(1..=ESCALATE_WINDOW_MAX_MINS).contains(&level.escalate_window) {
        return Err(bad(
            format!("{field}.escalate_window"),
            "must be between 1 and 720 minutes",
        ));
    }
    if !(0..=MAX_TIMES_MAX).contains(&level.max_times) {
        return Err(bad(format!("{field}.max_times"), "must be between 0 and 6"));
    }
    let step = level.notify_step;
    if !(0.5..=NOTIFY_STEP_MAX_MINS).contains(&step) || (step * 2.0).fract() != 0.0 {
        return Err(bad(
            format!("{field}.notify_step"),
            "must be 0.5 to 120 minutes in steps of 0.5",
        ));
    }
    let t = &mut level.target;
    let mut seen = BTreeSet::new();
    if let Some(dup) = t.person_ids.iter().find(|p| !seen.insert(**p)) {
        return Err(bad(
            format!("{field}.target.person_ids"),
            format!("{dup} is listed twice"),
        ));
    }
    if t.person_ids.iter().chain(&t.team_ids).any(|id| *id <= 0)
        || t.schedule_to_role_ids.keys().any(|id| *id <= 0)
    {
        return Err(bad(format!("{field}.target"), "ids must be positive"));
    }
    if t.person_ids.is_empty() && t.team_ids.is_empty() && t.schedule_to_role_ids.is_empty() {
        return Err(bad(
            format!("{field}.target"),
            "needs at least one person, team or schedule",
        ));
    }
    if t.by.is_none() && t.webhooks.is_empty() {
        return Err(bad(
            format!("{field}.target"),
            "needs a notification method: by or webhooks",
        ));
    }
    if let Some(by) = &t.by {
        for (sev, list) in [
            ("critical", &by.critical),
            ("warning", &by.warning),
            ("info", &by.info),
        ] {
            if let Some(c) = list.iter().find(|c| !DIRECT_CHANNELS.contains(&c.as_str())) {
                return Err(bad(
                    format!("{field}.target.by.{sev}"),
                    format!("{c} is not a direct channel"),
                ));
            }
        }
    }
    for (i, hook) in t.webhooks.iter_mut().enumerate() {
        validate_chat(&format!("{field}.target.webhooks[{i}]"), hook)?;
    }
    Ok(())
}

fn validate_chat(field: &str, hook: &mut GroupChatTarget) -> Result<(), RuleError> {
    if hook.kind == "teams" {
        hook.kind = "teams_app".into();
    }
    match hook.kind.as_str() {
        "wecom_app" => {
            return Err(bad(
                format!("{field}.type"),
                "wecom_app has no group chat; use the wecom bot",
            ));
        }
        "custom" => {
            return Err(bad(
                format!("{field}.type"),
                "custom webhook targets are not supported",
            ));
        }
        k if !GROUP_CHAT_TYPES.contains(&k) => {
            return Err(bad(
                format!("{field}.type"),
                format!("{k} is not a group chat type"),
            ));
        }
        _ => {}
    }
    let s = &hook.settings;
    let text = |key: &str| s.get(key).and_then(Value::as_str).filter(|v| !v.is_empty());
    let need = |key: &str| {
        text(key)
            .map(|_| ())
            .ok_or_else(|| bad(format!("{field}.settings.{key}"), "is required"))
    };
    match hook.kind.as_str() {
        "feishu" | "dingtalk" | "wecom" => need("token_or_url")?,
        "slack" => need("webhook_url")?,
        "telegram" => {
            need("bot_token")?;
            if s.get("chat_id").is_none_or(Value::is_null) {
                return Err(bad(format!("{field}.settings.chat_id"), "is required"));
            }
        }
        "zoom" => {
            need("endpoint")?;
            need("verify_token")?;
        }
        _ => {
            // IM apps: an integration and 1..20 chats.
            if s.get("integration_id")
                .and_then(Value::as_i64)
                .is_none_or(|id| id <= 0)
            {
                return Err(bad(
                    format!("{field}.settings.integration_id"),
                    "is required",
                ));
            }
            let n = s
                .get("chat_ids")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if n == 0 || n > CHAT_IDS_MAX {
                return Err(bad(
                    format!("{field}.settings.chat_ids"),
                    "must list 1 to 20 chats",
                ));
            }
        }
    }
    Ok(())
}

/// RSP-137: the new priorities of a channel's rules when `order` lists them first to last.
/// `order` must name every rule in `current` exactly once and nothing else; the answer is
/// `(rule_id, priority)` with priorities 0, 1, 2, … (unique, and within 0..=200 because a
/// channel cannot hold more rules than that range has values). The error names the problem.
pub fn reorder_priorities(
    current: &[EscalationRule],
    order: &[String],
) -> Result<Vec<(String, i64)>, String> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for id in order {
        if !seen.insert(id.as_str()) {
            return Err(format!("rule_ids: {id} is listed twice"));
        }
        if !current.iter().any(|r| &r.rule_id == id) {
            return Err(format!("rule_ids: {id} is not a rule of this channel"));
        }
    }
    if let Some(missing) = current.iter().find(|r| !seen.contains(r.rule_id.as_str())) {
        return Err(format!(
            "rule_ids must list every rule of the channel; {} is missing",
            missing.rule_id
        ));
    }
    Ok(order
        .iter()
        .zip(0i64..)
        .map(|(id, p)| (id.clone(), p))
        .collect())
}

/// A bare bot token expands to the vendor's standard webhook URL (response.md 1.12).
pub fn bot_url(kind: &str, token_or_url: &str) -> String {
    if token_or_url.starts_with("http://") || token_or_url.starts_with("https://") {
        return token_or_url.to_string();
    }
    match kind {
        "dingtalk" => format!("https://oapi.dingtalk.com/robot/send?access_token={token_or_url}"),
        "wecom" => format!("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={token_or_url}"),
        "feishu" => format!("https://open.feishu.cn/open-apis/bot/v2/hook/{token_or_url}"),
        _ => token_or_url.to_string(),
    }
}

pub fn parse_hhmm(s: &str) -> Option<Time> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i8 = h.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    Time::new(h, m, 0, 0).ok()
}

/// An incident seen by an escalation filter (RSP-134).
struct IncidentSubject<'a>(&'a Incident);

impl Subject for IncidentSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        match key {
            Key::Title => Some(Cow::Borrowed(self.0.title.as_str())),
            Key::Description => Some(Cow::Borrowed(self.0.description.as_str())),
            Key::Severity => Some(Cow::Borrowed(self.0.incident_severity.as_str())),
            Key::Label(name) => self.0.labels.get(name).map(|v| Cow::Borrowed(v.as_str())),
            _ => None,
        }
    }
}

/// RSP-134: the incident filter holds.
pub fn filter_matches(rule: &EscalationRule, incident: &Incident) -> bool {
    match Filter::compile(&rule.filters, Context::Escalation) {
        Ok(f) => f.matches(&IncidentSubject(incident)),
        // Validated on save; a rule that no longer compiles matches nothing rather than all.
        Err(_) => false,
    }
}

/// What matching reads besides the incident: the account zone and its service calendars.
#[derive(Clone, Copy)]
pub struct MatchContext<'a> {
    pub tz: &'a TimeZone,
    pub calendars: Calendars<'a>,
}

/// The rule's time filters that name a calendar the account does not have (or has disabled);
/// the API refuses such a rule on save (RSP-133 needs the calendar).
pub fn unknown_calendars(rule: &EscalationRule, calendars: Calendars<'_>) -> Vec<String> {
    rule.time_filters
        .iter()
        .filter(|f| !f.cal_id.is_empty() && calendars.get(&f.cal_id).is_none())
        .map(|f| f.cal_id.clone())
        .collect()
}

/// RSP-133: the time condition holds at `t`. An entry is read in its calendar's zone when it
/// names one, else in the account zone; a calendar that no longer exists matches nothing.
pub fn time_matches(filters: &[TimeFilter], ctx: &MatchContext<'_>, t: Millis) -> bool {
    if filters.is_empty() {
        return true;
    }
    let Ok(ts) = Timestamp::from_millisecond(t) else {
        return false;
    };
    filters.iter().any(|f| {
        if f.cal_id.is_empty() {
            let local = ctx.tz.to_datetime(ts);
            return entry_matches(f, local.date(), local.time(), None, ctx.calendars);
        }
        let Some(cal) = ctx.calendars.get(&f.cal_id) else {
            return false;
        };
        let Ok(zone) = TimeZone::get(&cal.timezone) else {
            return false;
        };
        let local = zone.to_datetime(ts);
        entry_matches(f, local.date(), local.time(), Some(cal), ctx.calendars)
    })
}

fn entry_matches(
    f: &TimeFilter,
    d: Date,
    tod: Time,
    cal: Option<&ServiceCalendar>,
    calendars: Calendars<'_>,
) -> bool {
    let (Some(start), Some(end)) = (parse_hhmm(&f.start), parse_hhmm(&f.end)) else {
        return false;
    };
    let eligible = |x: Date| {
        let weekday_ok = f.repeat.is_empty()
            || f.repeat
                .contains(&i64::from(x.weekday().to_sunday_zero_offset()));
        let wanted = if f.is_off {
            DayType::Restday
        } else {
            DayType::Workday
        };
        weekday_ok && cal.is_none_or(|c| day_type(c, calendars.holiday_sets, x) == wanted)
    };
    if start < end {
        return start <= tod && tod < end && eligible(d);
    }
    let yesterday = d.yesterday().ok();
    (tod >= start && eligible(d)) || (tod < end && yesterday.is_some_and(eligible))
}

/// RSP-132: the first enabled rule, in ascending priority, whose time condition and filter
/// hold at `t`. `rules` may be in any order.
pub fn select_rule<'a>(
    rules: &'a [EscalationRule],
    incident: &Incident,
    ctx: &MatchContext<'_>,
    t: Millis,
) -> Option<&'a EscalationRule> {
    let mut ordered: Vec<&EscalationRule> = rules
        .iter()
        .filter(|r| r.status == RuleStatus::Enabled && r.channel_id == incident.channel_id)
        .collect();
    ordered.sort_by_key(|r| r.priority);
    ordered
        .into_iter()
        .find(|r| time_matches(&r.time_filters, ctx, t) && filter_matches(r, incident))
}
