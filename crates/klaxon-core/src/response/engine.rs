//! Incident actions and timed steps (response.md §2.2–§2.14) as pure functions over an incident,
//! the rule it is assigned under, a [`Directory`] and `now`.
//!
//! Every function mutates the incident in place and appends what happened to
//! [`Engine::out`]: timeline entries (1.10) and notification decisions (1.17). Timers are not
//! returned: they are derived from the state afterwards by [`pending_timers`], and each timer
//! carries the instant it was scheduled for, so a timer whose instant the state no longer holds
//! is stale and [`Engine::on_timer`] ignores it. That makes every step idempotent.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::fields::{FieldDefinition, check_value};
use super::preference::{NotificationPreference, PrefChannel};
use super::rules::{EscalationRule, Level, MatchContext, RuleStatus, bot_url};
use super::state::{AssignType, Assignment, EscalationState, Responder, ResponderAs};
use crate::ids::IdSource;
use crate::model::{Incident, Millis, Progress, Severity, Status};

/// Member status as the response side needs it (response.md 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Enabled,
    Deleted,
}

/// What target resolution reads: members, teams and who is on call.
pub trait Directory {
    /// `None` for an id that is not a member of the account.
    fn member_status(&self, person_id: i64) -> Option<MemberStatus>;
    /// An enabled member with this e-mail, case-insensitively (RSP-190).
    fn member_by_email(&self, email: &str) -> Option<i64>;
    /// The team's members, ascending; `None` if there is no such team.
    fn team_members(&self, team_id: i64) -> Option<Vec<i64>>;
    fn team_by_name(&self, name: &str) -> Option<i64>;
    /// Who is on call in the schedule at `at`, filtered by role (RSP-151); empty for an unknown
    /// schedule.
    fn on_call(&self, schedule_id: i64, role_ids: &[i64], at: Millis) -> Vec<i64>;
    /// The person's preference list for a severity (response.md 1.15), read at firing time
    /// so a change affects the next firing only (RSP-331). A member who never set one has
    /// the defaults of OQ-24.
    fn preference(&self, _person_id: i64, sev: Severity) -> Vec<PrefChannel> {
        NotificationPreference::default().for_severity(sev).to_vec()
    }
}

/// OQ-24: Critical `[email, sms, voice]`, Warning `[email, sms]`, Info `[email]`, as channel
/// names.
pub fn default_preference(sev: Severity) -> Vec<String> {
    NotificationPreference::default()
        .for_severity(sev)
        .iter()
        .map(|c| c.channel.clone())
        .collect()
}

/// One timeline entry (response.md 1.10).
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub entry_id: String,
    pub incident_id: String,
    pub ref_id: String,
    pub kind: &'static str,
    pub creator_id: i64,
    pub created_at: Millis,
    pub detail: Value,
}

/// One send decided by a firing (response.md 1.17), written to the outbox in the same
/// transaction as the state change. Delivery is the notification side's job.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub rid: String,
    pub incident_id: String,
    pub firing_id: String,
    pub reason: &'static str,
    pub fire_type: &'static str,
    pub escalate_rule_id: String,
    pub layer_idx: i64,
    /// A DirectChannel, or a GroupChatType for chats.
    pub channel: String,
    /// 0 for a group chat.
    pub person_id: i64,
    /// For chats: the chat settings and the persons to mention.
    pub target: Value,
    pub severity: Severity,
    pub created_at: Millis,
    /// RSP-343 `RepeatIndex`: 0 for a level's first firing, i for its i-th loop repeat.
    pub repeat_index: i64,
}

/// Everything one action produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    pub timeline: Vec<TimelineEntry>,
    pub notifications: Vec<Notification>,
    /// RSP-052: the incident closed in a way that closes its still-open alerts.
    pub close_alerts: bool,
}

/// Why an action was refused; the API maps these onto its error table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    InvalidArgument(String),
}

fn precondition(msg: impl Into<String>) -> ActionError {
    ActionError::FailedPrecondition(msg.into())
}

/// The channel's flapping settings that mute an incident (RSP-204), as `i_m_flapping` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlappingMute {
    pub max_changes: i64,
    pub in_mins: i64,
    pub mute_mins: i64,
}

/// Timer kinds, in the order RSP-165 applies them when several fall due at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    AutoClose,
    SnoozeEnd,
    Delay,
    Escalate,
    Refire,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::AutoClose => "auto_close",
            TimerKind::SnoozeEnd => "snooze_end",
            TimerKind::Delay => "delay",
            TimerKind::Escalate => "escalate",
            TimerKind::Refire => "refire",
        }
    }

    pub fn parse(s: &str) -> Option<TimerKind> {
        Some(match s {
            "auto_close" => TimerKind::AutoClose,
            "snooze_end" => TimerKind::SnoozeEnd,
            "delay" => TimerKind::Delay,
            "escalate" => TimerKind::Escalate,
            "refire" => TimerKind::Refire,
            _ => return None,
        })
    }

    /// RSP-165 rank, stored with the timer so claims come out in this order.
    pub fn rank(self) -> i64 {
        self as i64
    }
}

/// The timers the incident's state asks for, except the auto-close timeout, which depends on
/// the channel ([`auto_close_at`]).
pub fn pending_timers(inc: &Incident) -> Vec<(TimerKind, Millis)> {
    let mut out = Vec::new();
    if inc.progress == Progress::Closed {
        return out;
    }
    if inc.response.snoozed_before > 0 {
        out.push((TimerKind::SnoozeEnd, inc.response.snoozed_before));
    }
    if let Some(esc) = &inc.response.escalation {
        if esc.pending_delay_until > 0 {
            out.push((TimerKind::Delay, esc.pending_delay_until));
        }
        if esc.escalate_deadline > 0 {
            out.push((TimerKind::Escalate, esc.escalate_deadline));
        }
        if esc.next_refire_at > 0 {
            out.push((TimerKind::Refire, esc.next_refire_at));
        }
    }
    out
}

/// RSP-055: when the channel's auto-close timeout closes this incident; `None` without a
/// timeout, for global incidents (RSP-007) and closed ones.
pub fn auto_close_at(inc: &Incident, timeout_secs: i64, mode: &str) -> Option<Millis> {
    if inc.channel_id == 0 || inc.progress == Progress::Closed {
        return None;
    }
    auto_close_due(inc.start_time, inc.last_merge_time, timeout_secs, mode)
}

/// ING-202: the instant an open channel incident that started at `start_time` and last took
/// an alert at `last_merge_time` closes under a timeout of `timeout_secs` (0: never) measured
/// from its start (`trigger`) or from its last merge (`update`).
pub fn auto_close_due(
    start_time: Millis,
    last_merge_time: Millis,
    timeout_secs: i64,
    mode: &str,
) -> Option<Millis> {
    if timeout_secs <= 0 {
        return None;
    }
    let from = if mode == "update" {
        last_merge_time.max(start_time)
    } else {
        start_time
    };
    Some(from.saturating_add(timeout_secs.saturating_mul(1000)))
}

/// Direct targets of an assignment (RSP-110, RSP-112, RSP-157).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectTargets {
    pub person_ids: Vec<i64>,
    /// Members addressed by e-mail (the API's `emails[]`), resolved case-insensitively.
    pub emails: Vec<String>,
    pub schedule_to_role_ids: BTreeMap<i64, Vec<i64>>,
}

impl DirectTargets {
    pub fn is_empty(&self) -> bool {
        self.person_ids.is_empty() && self.emails.is_empty() && self.schedule_to_role_ids.is_empty()
    }
}

/// Resolved responders of a level or a direct target set: the active ones in order, and the
/// members left out because they are pending or deleted (RSP-152).
#[derive(Debug, Default)]
struct Resolved {
    persons: Vec<i64>,
    inactive: Vec<i64>,
    /// Bot replacements from dynamic assignment (RSP-190), by bot type.
    bots: BTreeMap<String, Vec<String>>,
}

impl Resolved {
    fn push(&mut self, dir: &dyn Directory, p: i64) {
        if self.persons.contains(&p) || self.inactive.contains(&p) {
            return;
        }
        match dir.member_status(p) {
            Some(MemberStatus::Enabled) => self.persons.push(p),
            Some(MemberStatus::Pending | MemberStatus::Deleted) => self.inactive.push(p),
            None => {}
        }
    }
}

/// Runs actions against one incident at `now`.
pub struct Engine<'a> {
    pub now: Millis,
    pub directory: &'a dyn Directory,
    pub ids: &'a mut dyn IdSource,
    pub out: Outcome,
}

impl<'a> Engine<'a> {
    pub fn new(now: Millis, directory: &'a dyn Directory, ids: &'a mut dyn IdSource) -> Self {
        Engine {
            now,
            directory,
            ids,
            out: Outcome::default(),
        }
    }

    fn entry(
        &mut self,
        inc: &Incident,
        kind: &'static str,
        creator: i64,
        at: Millis,
        detail: Value,
    ) {
        let entry_id = self.ids.object_id(at);
        self.out.timeline.push(TimelineEntry {
            entry_id,
            incident_id: inc.incident_id.clone(),
            ref_id: inc.incident_id.clone(),
            kind,
            creator_id: creator,
            created_at: at,
            detail,
        });
    }

    fn touch(&self, inc: &mut Incident) {
        inc.updated_at = inc.updated_at.max(self.now);
    }

    // ---- creation (§2.2) ----

    /// RSP-010 steps 4–5 for an incident ingestion just created: `i_new`, then rule matching
    /// (RSP-132) at `start_time`, then assignment now or after the delay window (RSP-160).
    ///
    /// `flapping`: the channel's flapping settings when ingestion created the incident as
    /// flapping under mode `remind_suppress` (RSP-204): the incident is muted for its whole
    /// life — responders are still resolved and recorded, but nothing is sent and no repeat or
    /// escalation is scheduled — and `i_m_flapping` is written once.
    pub fn on_auto_created(
        &mut self,
        inc: &mut Incident,
        rules: &[EscalationRule],
        ctx: &MatchContext<'_>,
        flapping: Option<FlappingMute>,
    ) {
        let detail = json!({"severity": inc.incident_severity.as_str(), "title": inc.title});
        self.entry(inc, "i_new", 0, self.now, detail);
        let muted = flapping.is_some();
        if let Some(f) = flapping {
            inc.response.ever_muted = true;
            let detail = json!({
                "max_changes": f.max_changes,
                "in_mins": f.in_mins,
                "mute_mins": f.mute_mins,
            });
            self.entry(inc, "i_m_flapping", 0, self.now, detail);
        }
        let Some(rule) = super::rules::select_rule(rules, inc, ctx, inc.start_time) else {
            return; // RSP-132: no assignment, nobody notified.
        };
        if rule.aggr_window > 0 {
            inc.response.escalation = Some(EscalationState {
                rule_id: rule.rule_id.clone(),
                layer_idx: 0,
                pending_delay_until: inc.start_time.saturating_add(rule.aggr_window * 1000),
                muted,
                ..EscalationState::default()
            });
            return;
        }
        if muted {
            // Level entry reads the mute from the state it replaces.
            inc.response.escalation = Some(EscalationState {
                rule_id: rule.rule_id.clone(),
                muted,
                ..EscalationState::default()
            });
        }
        self.enter_level(inc, rule, 0, AssignType::Assign, 0, "assign");
    }

    /// RSP-012: a manual incident's first entry and assignment. With a rule, level entry at
    /// `layer_idx` without time filters, filters or delay (RSP-013); otherwise direct.
    pub fn on_manual_created(
        &mut self,
        inc: &mut Incident,
        rule: Option<(&EscalationRule, usize)>,
        direct: &DirectTargets,
    ) -> Result<(), ActionError> {
        let detail = json!({"severity": inc.incident_severity.as_str(), "title": inc.title});
        self.entry(inc, "i_new", inc.creator_id, self.now, detail);
        match rule {
            Some((rule, k)) => {
                self.enter_level(inc, rule, k, AssignType::Assign, inc.creator_id, "assign");
                Ok(())
            }
            None => {
                let creator = inc.creator_id;
                self.assign_direct(inc, direct, AssignType::Assign, creator, true)
            }
        }
    }

    // ---- level entry and firing (§2.13) ----

    fn resolve_level(&self, inc: &Incident, level: &Level, k: usize, t: Millis) -> Resolved {
        let dir = self.directory;
        let mut r = Resolved::default();
        // RSP-190: dynamic replacements read from the labels; a key none of whose items
        // resolves is ignored (RSP-193).
        let label = |suffix: &str| {
            inc.labels
                .get(&format!("layer_person_reset_{k}_{suffix}"))
                .map(|v| split_items(v))
        };
        let persons = label("emails")
            .map(|emails| {
                emails
                    .iter()
                    .filter_map(|e| dir.member_by_email(e))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| level.target.person_ids.clone());
        let teams = label("team_names")
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| dir.team_by_name(n))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| level.target.team_ids.clone());
        for p in persons {
            r.push(dir, p);
        }
        for team in teams {
            for p in dir.team_members(team).unwrap_or_default() {
                r.push(dir, p);
            }
        }
        for (schedule, roles) in &level.target.schedule_to_role_ids {
            let roles: Vec<i64> = if roles.contains(&0) {
                Vec::new()
            } else {
                roles.clone()
            };
            for p in dir.on_call(*schedule, &roles, t) {
                r.push(dir, p);
            }
        }
        for kind in ["wecom", "dingtalk", "feishu"] {
            if let Some(v) = inc.labels.get(&format!("layer_webhook_reset_{k}_{kind}s")) {
                let tokens = split_items(v);
                if !tokens.is_empty() {
                    r.bots.insert(kind.to_string(), tokens);
                }
            }
        }
        r
    }

    fn resolve_direct(&self, targets: &DirectTargets) -> Resolved {
        let dir = self.directory;
        let mut r = Resolved::default();
        for p in &targets.person_ids {
            r.push(dir, *p);
        }
        for p in targets.emails.iter().filter_map(|e| dir.member_by_email(e)) {
            r.push(dir, p);
        }
        for (schedule, roles) in &targets.schedule_to_role_ids {
            let roles: Vec<i64> = if roles.contains(&0) {
                Vec::new()
            } else {
                roles.clone()
            };
            for p in dir.on_call(*schedule, &roles, self.now) {
                r.push(dir, p);
            }
        }
        r
    }

    /// RSP-150 step 2 / RSP-110 step 2: the responders become `r`; acknowledged people in `r`
    /// keep their acknowledgement; with `keep_acked`, acknowledged people outside `r` stay too.
    fn set_responders(&self, inc: &mut Incident, r: &[i64], keep_acked: bool, t: Millis) {
        let old = std::mem::take(&mut inc.response.responders);
        let mut next: Vec<Responder> = old
            .iter()
            .filter(|o| o.acknowledged_at > 0 && (keep_acked || r.contains(&o.person_id)))
            .cloned()
            .collect();
        for p in r {
            if !next.iter().any(|n| n.person_id == *p) {
                next.push(Responder {
                    person_id: *p,
                    assigned_at: t,
                    acknowledged_at: 0,
                    as_: ResponderAs::Assignee,
                });
            }
        }
        inc.response.responders = next;
    }

    /// RSP-021: progress follows the acknowledgements; a return to Triggered ends a snooze.
    fn settle_progress(&mut self, inc: &mut Incident, actor: i64) {
        if inc.progress == Progress::Closed {
            return;
        }
        if inc.response.any_acknowledged() {
            inc.progress = Progress::Processing;
        } else {
            inc.progress = Progress::Triggered;
            if inc.response.snoozed_before > 0 {
                let old = inc.response.snoozed_before;
                inc.response.snoozed_before = 0;
                self.entry(
                    inc,
                    "i_wake",
                    actor,
                    self.now,
                    json!({"snoozedBefore": old / 1000}),
                );
            }
        }
    }

    /// RSP-150: level entry for level `k` of `rule`.
    pub fn enter_level(
        &mut self,
        inc: &mut Incident,
        rule: &EscalationRule,
        k: usize,
        kind: AssignType,
        creator: i64,
        reason: &'static str,
    ) {
        let Some(level) = rule.layers.get(k) else {
            return;
        };
        let t = self.now;
        let resolved = self.resolve_level(inc, level, k, t);
        self.set_responders(inc, &resolved.persons, kind == AssignType::Assign, t);
        let assignment = Assignment {
            id: self.ids.object_id(t),
            kind,
            escalate_rule_id: rule.rule_id.clone(),
            escalate_rule_name: rule.rule_name.clone(),
            layer_idx: k as i64,
            person_ids: Vec::new(),
            schedule_to_role_ids: BTreeMap::new(),
            assigned_at: t,
            creator_id: creator,
        };
        inc.response.assigned_to = Some(assignment.clone());
        self.settle_progress(inc, creator);
        let muted = inc.response.escalation.as_ref().is_some_and(|e| e.muted);
        let last = k + 1 >= rule.layers.len();
        let arm_deadline = !last && (level.force_escalate || inc.progress == Progress::Triggered);
        inc.response.escalation = Some(EscalationState {
            rule_id: rule.rule_id.clone(),
            layer_idx: k as i64,
            level_entered_at: t,
            escalate_deadline: if arm_deadline && !muted {
                t.saturating_add(level.escalate_window_ms())
            } else {
                0
            },
            refire_count: 0,
            next_refire_at: if level.max_times > 0 && !muted {
                t.saturating_add(level.notify_step_ms())
            } else {
                0
            },
            muted,
            pending_delay_until: 0,
        });
        self.entry(
            inc,
            "i_assign",
            creator,
            t,
            assign_detail(&assignment, &resolved.persons),
        );
        self.touch(inc);
        if !muted {
            let unacked = unacknowledged(inc, &resolved.persons);
            self.fire(
                inc,
                Some((rule, level)),
                &unacked,
                &resolved.persons,
                &resolved.inactive,
                &resolved.bots,
                "fire",
                reason,
            );
        }
    }

    /// RSP-155: one firing — direct messages to `notify`, group chats mentioning `mention`,
    /// then the `i_notify` summary. Without a level, personal preferences and no chats
    /// (RSP-157).
    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        inc: &Incident,
        level: Option<(&EscalationRule, &Level)>,
        notify: &[i64],
        mention: &[i64],
        inactive: &[i64],
        bots: &BTreeMap<String, Vec<String>>,
        fire_type: &'static str,
        reason: &'static str,
    ) {
        let t = self.now;
        let firing_id = self.ids.object_id(t);
        let sev = inc.incident_severity;
        let (rule_id, rule_name, layer_idx) = match level {
            Some((rule, _)) => (
                rule.rule_id.clone(),
                rule.rule_name.clone(),
                inc.response.assigned_to.as_ref().map_or(0, |a| a.layer_idx),
            ),
            None => (String::new(), String::new(), -1),
        };
        // The repeat step bumps `refire_count` before it fires, so it is the repeat's number.
        let repeat_index = if fire_type == "refire" {
            inc.response
                .escalation
                .as_ref()
                .map_or(0, |e| e.refire_count)
        } else {
            0
        };
        let mut persons = Vec::new();
        let mut chats = Vec::new();
        let mut robots = Vec::new();
        for p in notify {
            // RSP-330: preferences only for direct assignments (no level, RSP-157) and for
            // levels that follow them; a level's unified settings ignore them.
            let channels: Vec<PrefChannel> = match level.map(|(_, l)| l.target.by.as_ref()) {
                // A level without `by` sends no direct messages (1.12).
                Some(None) => Vec::new(),
                Some(Some(by)) if !by.follow_preference => {
                    by.for_severity(sev).iter().map(PrefChannel::new).collect()
                }
                _ => self.directory.preference(*p, sev),
            };
            let mut seen: Vec<PrefChannel> = Vec::new();
            for entry in channels {
                if seen.contains(&entry) {
                    continue; // RSP-156: each channel once per person per firing.
                }
                seen.push(entry.clone());
                // 1.15: a preference naming one IM integration sends through that one.
                let target = match entry.integration_id {
                    Some(id) => json!({"integration_id": id}),
                    None => Value::Null,
                };
                let channel = entry.channel;
                let rid = self.ids.object_id(t);
                persons.push(json!({"person_id": p, "channel": channel, "rid": rid}));
                self.out.notifications.push(Notification {
                    rid,
                    incident_id: inc.incident_id.clone(),
                    firing_id: firing_id.clone(),
                    reason,
                    fire_type,
                    escalate_rule_id: rule_id.clone(),
                    layer_idx,
                    channel,
                    person_id: *p,
                    target,
                    severity: sev,
                    created_at: t,
                    repeat_index,
                });
            }
        }
        for p in inactive {
            persons
                .push(json!({"person_id": p, "channel": "", "failed_reason": "member_inactive"}));
        }
        if let Some((_, level)) = level {
            let mut hooks: Vec<(String, Value, bool)> = Vec::new();
            for hook in &level.target.webhooks {
                if bots.contains_key(&hook.kind) {
                    continue; // RSP-192: replaced below.
                }
                hooks.push((hook.kind.clone(), hook.settings.clone(), false));
            }
            for (kind, tokens) in bots {
                for token in tokens {
                    hooks.push((
                        kind.clone(),
                        json!({"token_or_url": token, "alias": "dynamic"}),
                        true,
                    ));
                }
            }
            for (kind, mut settings, _dynamic) in hooks {
                if let Some(tok) = settings.get("token_or_url").and_then(Value::as_str) {
                    let url = bot_url(&kind, tok);
                    if let Some(obj) = settings.as_object_mut() {
                        obj.insert("url".into(), Value::String(url));
                    }
                }
                let rid = self.ids.object_id(t);
                let is_app = kind.ends_with("_app");
                let summary = json!({
                    "rid": rid,
                    "type": kind,
                    "alias": settings.get("alias").cloned().unwrap_or(Value::String(String::new())),
                    "mentions": mention,
                });
                if is_app {
                    chats.push(summary);
                } else {
                    robots.push(summary);
                }
                self.out.notifications.push(Notification {
                    rid,
                    incident_id: inc.incident_id.clone(),
                    firing_id: firing_id.clone(),
                    reason,
                    fire_type,
                    escalate_rule_id: rule_id.clone(),
                    layer_idx,
                    channel: kind,
                    person_id: 0,
                    target: json!({"settings": settings, "mentions": mention}),
                    severity: sev,
                    created_at: t,
                    repeat_index,
                });
            }
        }
        let by = level
            .and_then(|(_, l)| l.target.by.as_ref())
            .map_or(Value::Null, |b| {
                serde_json::to_value(b).unwrap_or(Value::Null)
            });
        let detail = json!({
            "rid": firing_id,
            "fire_type": fire_type,
            "escalate_rule_id": rule_id,
            "escalate_rule_name": rule_name,
            "layer_idx": layer_idx,
            "by": by,
            "persons": persons,
            "chats": chats,
            "robots": robots,
            "reason": reason,
        });
        self.entry(inc, "i_notify", 0, t, detail);
    }

    // ---- direct assignment (RSP-110, RSP-112, RSP-157) ----

    fn assign_direct(
        &mut self,
        inc: &mut Incident,
        targets: &DirectTargets,
        kind: AssignType,
        actor: i64,
        allow_empty: bool,
    ) -> Result<(), ActionError> {
        let resolved = self.resolve_direct(targets);
        if resolved.persons.is_empty() && !allow_empty {
            return Err(ActionError::InvalidArgument("nobody to assign".into()));
        }
        let t = self.now;
        self.set_responders(inc, &resolved.persons, false, t);
        let assignment = Assignment {
            id: self.ids.object_id(t),
            kind,
            escalate_rule_id: String::new(),
            escalate_rule_name: String::new(),
            layer_idx: -1,
            // E-mail targets are recorded as the members they named, so a later reopen or
            // wake re-resolves the same people.
            person_ids: {
                let mut ids = targets.person_ids.clone();
                for p in targets
                    .emails
                    .iter()
                    .filter_map(|e| self.directory.member_by_email(e))
                {
                    if !ids.contains(&p) {
                        ids.push(p);
                    }
                }
                ids
            },
            schedule_to_role_ids: targets.schedule_to_role_ids.clone(),
            assigned_at: t,
            creator_id: actor,
        };
        inc.response.assigned_to = Some(assignment.clone());
        inc.response.escalation = None;
        self.settle_progress(inc, actor);
        self.entry(
            inc,
            "i_assign",
            actor,
            t,
            assign_detail(&assignment, &resolved.persons),
        );
        self.touch(inc);
        let unacked = unacknowledged(inc, &resolved.persons);
        self.fire(
            inc,
            None,
            &unacked,
            &resolved.persons,
            &resolved.inactive,
            &BTreeMap::new(),
            "fire",
            "assign",
        );
        Ok(())
    }

    /// RSP-110: reassign to persons and/or schedules.
    pub fn reassign(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        targets: &DirectTargets,
    ) -> Result<(), ActionError> {
        not_closed(inc, "reassign")?;
        if targets.is_empty() {
            return Err(ActionError::InvalidArgument(
                "assigned_to needs person_ids or schedules".into(),
            ));
        }
        self.assign_direct(inc, targets, AssignType::Reassign, actor, false)
    }

    /// RSP-112: add responders; a no-op if nobody new.
    pub fn add_responders(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        targets: &DirectTargets,
    ) -> Result<(), ActionError> {
        not_closed(inc, "add responders to")?;
        let resolved = self.resolve_direct(targets);
        let fresh: Vec<i64> = resolved
            .persons
            .iter()
            .copied()
            .filter(|p| inc.response.responder(*p).is_none())
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let t = self.now;
        for p in &fresh {
            inc.response.responders.push(Responder {
                person_id: *p,
                assigned_at: t,
                acknowledged_at: 0,
                as_: ResponderAs::Added,
            });
        }
        self.entry(inc, "i_a_rspd", actor, t, json!({"to": fresh}));
        self.touch(inc);
        self.fire(
            inc,
            None,
            &fresh,
            &fresh,
            &resolved.inactive,
            &BTreeMap::new(),
            "fire",
            "assign",
        );
        Ok(())
    }

    /// RSP-113: manual escalation to level `j` of the current rule.
    pub fn escalate_to(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        rule: Option<&EscalationRule>,
        rule_id: &str,
        j: i64,
    ) -> Result<(), ActionError> {
        not_closed(inc, "escalate")?;
        let current = inc
            .response
            .assigned_to
            .as_ref()
            .filter(|a| a.is_rule_based())
            .ok_or_else(|| {
                ActionError::InvalidArgument("the incident has no escalation rule".into())
            })?;
        if current.escalate_rule_id != rule_id {
            return Err(ActionError::InvalidArgument(
                "escalate_rule_id must be the incident's current rule".into(),
            ));
        }
        let current_level = current.layer_idx;
        let rule = rule.ok_or_else(|| {
            ActionError::InvalidArgument("the incident's escalation rule no longer exists".into())
        })?;
        let valid = usize::try_from(j).ok().filter(|k| *k < rule.layers.len());
        let Some(k) = valid.filter(|_| j != current_level) else {
            return Err(ActionError::InvalidArgument(format!(
                "layer_idx {j} is not another level of the rule"
            )));
        };
        // RSP-206: a manual escalation clears the mute.
        if let Some(esc) = inc.response.escalation.as_mut() {
            esc.muted = false;
        }
        self.enter_level(inc, rule, k, AssignType::Escalate, actor, "assign");
        Ok(())
    }

    // ---- acknowledge, snooze (§2.4, §2.5) ----

    /// RSP-030, RSP-031, RSP-032.
    pub fn acknowledge(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        from: &str,
        rule: Option<&EscalationRule>,
    ) -> Result<(), ActionError> {
        not_closed(inc, "acknowledge")?;
        let t = self.now;
        match inc
            .response
            .responders
            .iter_mut()
            .find(|r| r.person_id == actor)
        {
            Some(r) if r.acknowledged_at > 0 => return Ok(()),
            Some(r) => r.acknowledged_at = t,
            None => inc.response.responders.push(Responder {
                person_id: actor,
                assigned_at: t,
                acknowledged_at: t,
                as_: ResponderAs::Acker,
            }),
        }
        if inc.ack_time == 0 {
            inc.ack_time = t;
        }
        inc.progress = Progress::Processing;
        // RSP-031: repeats stop; the deadline stops unless the level escalates regardless.
        let force = current_level(inc, rule).is_some_and(|l| l.force_escalate);
        if let Some(esc) = inc.response.escalation.as_mut() {
            esc.next_refire_at = 0;
            if !force {
                esc.escalate_deadline = 0;
            }
        }
        self.entry(inc, "i_ack", actor, t, json!({"from": from}));
        self.touch(inc);
        Ok(())
    }

    /// RSP-033, RSP-034.
    pub fn unacknowledge(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        from: &str,
        rule: Option<&EscalationRule>,
    ) -> Result<(), ActionError> {
        not_closed(inc, "unacknowledge")?;
        let Some(r) = inc
            .response
            .responders
            .iter_mut()
            .find(|r| r.person_id == actor && r.acknowledged_at > 0)
        else {
            return Err(precondition("you have not acknowledged this incident"));
        };
        r.acknowledged_at = 0;
        let t = self.now;
        self.entry(inc, "i_unack", actor, t, json!({"from": from}));
        if !inc.response.any_acknowledged() {
            inc.ack_time = 0;
            self.settle_progress(inc, actor);
            self.rearm_deadline(inc, rule, false);
        }
        self.touch(inc);
        Ok(())
    }

    /// Re-arms the current level's deadline at `now + escalate_window` for a rule-based
    /// assignment whose level is not the last, when the level's `force_escalate` equals
    /// `force` (RSP-034 with false, RSP-042 with true).
    fn rearm_deadline(&mut self, inc: &mut Incident, rule: Option<&EscalationRule>, force: bool) {
        let Some(rule) = rule else { return };
        let Some(esc) = inc.response.escalation.as_mut() else {
            return;
        };
        if esc.rule_id != rule.rule_id || esc.muted || esc.pending_delay_until > 0 {
            return;
        }
        let Ok(k) = usize::try_from(esc.layer_idx) else {
            return;
        };
        let Some(level) = rule.layers.get(k) else {
            return;
        };
        if level.force_escalate == force && k + 1 < rule.layers.len() {
            esc.escalate_deadline = self.now.saturating_add(level.escalate_window_ms());
        }
    }

    /// RSP-040, RSP-041: snooze for `minutes`; from Triggered the actor acknowledges first.
    pub fn snooze(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        minutes: i64,
        from: &str,
        rule: Option<&EscalationRule>,
    ) -> Result<(), ActionError> {
        if !(1..=1440).contains(&minutes) {
            return Err(ActionError::InvalidArgument(
                "minutes must be between 1 and 1440".into(),
            ));
        }
        not_closed(inc, "snooze")?;
        if inc.progress == Progress::Triggered {
            self.acknowledge(inc, actor, from, rule)?;
        }
        inc.response.snoozed_before = self.now.saturating_add(minutes * 60_000);
        if let Some(esc) = inc.response.escalation.as_mut() {
            esc.escalate_deadline = 0;
            esc.next_refire_at = 0;
        }
        self.entry(
            inc,
            "i_snooze",
            actor,
            self.now,
            json!({"minutes": minutes}),
        );
        self.touch(inc);
        Ok(())
    }

    /// RSP-042: manual wake; a no-op when not snoozed.
    pub fn wake(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        rule: Option<&EscalationRule>,
    ) -> Result<(), ActionError> {
        if !inc.response.is_snoozed(self.now) {
            return Ok(());
        }
        let old = inc.response.snoozed_before;
        inc.response.snoozed_before = 0;
        self.entry(
            inc,
            "i_wake",
            actor,
            self.now,
            json!({"snoozedBefore": old / 1000}),
        );
        self.rearm_deadline(inc, rule, true);
        self.touch(inc);
        Ok(())
    }

    // ---- close and reopen (§2.6, §2.7) ----

    /// RSP-051 (and the automatic closes with `from` = `autorslv`): a no-op when closed.
    pub fn close(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        from: &str,
        root_cause: Option<String>,
        resolution: Option<String>,
    ) {
        if inc.progress == Progress::Closed {
            return;
        }
        let t = self.now;
        inc.progress = Progress::Closed;
        inc.close_time = t;
        inc.closer_id = actor;
        inc.close_source = from.to_string();
        let mut detail = json!({"from": from});
        if let Some(rc) = root_cause {
            detail["root_cause"] = Value::String(rc.clone());
            inc.response.root_cause = rc;
        }
        if let Some(res) = resolution {
            detail["resolution"] = Value::String(res.clone());
            inc.response.resolution = res;
        }
        inc.response.snoozed_before = 0;
        inc.response.escalation = None;
        self.entry(inc, "i_rslv", actor, t, detail);
        self.out.close_alerts = from != "event";
        self.touch(inc);
    }

    /// RSP-053 from the response side: ingestion closed the incident because every alert
    /// recovered. Writes `i_rslv {from: event}` and clears the escalation state.
    pub fn on_event_closed(&mut self, inc: &mut Incident) {
        inc.response.snoozed_before = 0;
        inc.response.escalation = None;
        self.entry(
            inc,
            "i_rslv",
            0,
            inc.close_time.max(0),
            json!({"from": "event"}),
        );
    }

    /// RSP-070, RSP-071.
    pub fn reopen(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        reason: &str,
        rule: Option<&EscalationRule>,
        rules: &[EscalationRule],
        ctx: &MatchContext<'_>,
    ) -> Result<(), ActionError> {
        if inc.progress != Progress::Closed {
            return Err(precondition("only a closed incident can be reopened"));
        }
        if reason.chars().count() > 1024 {
            return Err(ActionError::InvalidArgument(
                "reason must be at most 1024 characters".into(),
            ));
        }
        inc.progress = Progress::Triggered;
        inc.close_time = 0;
        inc.closer_id = 0;
        inc.close_source = String::new();
        inc.response.snoozed_before = 0;
        for r in &mut inc.response.responders {
            r.acknowledged_at = 0;
        }
        self.entry(inc, "i_reopen", actor, self.now, json!({"reason": reason}));
        self.touch(inc);
        let last = inc.response.assigned_to.clone();
        match last {
            Some(a) if !a.is_rule_based() => {
                let targets = DirectTargets {
                    person_ids: a.person_ids,
                    emails: Vec::new(),
                    schedule_to_role_ids: a.schedule_to_role_ids,
                };
                self.assign_direct(inc, &targets, AssignType::Reopen, actor, true)?;
            }
            _ => {
                let usable = rule.filter(|r| {
                    r.status == RuleStatus::Enabled
                        && last
                            .as_ref()
                            .is_some_and(|a| a.escalate_rule_id == r.rule_id)
                });
                let chosen = match usable {
                    Some(r) => Some(r),
                    None if inc.channel_id != 0 => {
                        super::rules::select_rule(rules, inc, ctx, self.now)
                    }
                    None => None,
                };
                if let Some(r) = chosen {
                    self.enter_level(inc, r, 0, AssignType::Reopen, actor, "assign");
                }
            }
        }
        Ok(())
    }

    // ---- comments and edits (§2.8) ----

    /// RSP-080.
    pub fn comment(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        text: &str,
        mute_reply: bool,
    ) -> Result<(), ActionError> {
        let text = text.trim();
        let n = text.chars().count();
        if n == 0 || n > 1024 {
            return Err(ActionError::InvalidArgument(
                "comment must be 1 to 1024 characters".into(),
            ));
        }
        self.entry(
            inc,
            "i_comm",
            actor,
            self.now,
            json!({"comment": text, "mute_reply": mute_reply}),
        );
        self.touch(inc);
        Ok(())
    }

    /// RSP-402: a custom action's endpoint accepted the call. Only the record is written: the
    /// incident itself did not change, so `updated_at` stays.
    pub fn custom_action_done(
        &mut self,
        inc: &Incident,
        actor: i64,
        integration_id: i64,
        integration_name: &str,
    ) {
        self.entry(
            inc,
            "i_custom",
            actor,
            self.now,
            json!({"integration_id": integration_id, "integration_name": integration_name}),
        );
    }

    /// RSP-081, RSP-083: edit one text field; the same value is a no-op.
    pub fn edit_text(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        field: &str,
        value: &str,
    ) -> Result<(), ActionError> {
        let (max, min, kind) = match field {
            "title" => (512, 1, "i_r_title"),
            "description" => (6144, 0, "i_r_desc"),
            "impact" => (6144, 0, "i_r_impact"),
            "root_cause" => (6144, 0, "i_r_rc"),
            "resolution" => (6144, 0, "i_r_rsltn"),
            _ => {
                return Err(ActionError::InvalidArgument(format!(
                    "{field} cannot be edited"
                )));
            }
        };
        let n = value.chars().count();
        if n < min || n > max {
            return Err(ActionError::InvalidArgument(format!(
                "{field} must be {min} to {max} characters"
            )));
        }
        let slot = match field {
            "title" => &mut inc.title,
            "description" => &mut inc.description,
            "impact" => &mut inc.response.impact,
            "root_cause" => &mut inc.response.root_cause,
            _ => &mut inc.response.resolution,
        };
        if slot == value {
            return Ok(());
        }
        let from = std::mem::replace(slot, value.to_string());
        if (field == "title" || field == "description")
            && !inc.manual_overrides.iter().any(|f| f == field)
        {
            inc.manual_overrides.push(field.to_string());
        }
        self.entry(
            inc,
            kind,
            actor,
            self.now,
            json!({"from": from, "to": value}),
        );
        self.touch(inc);
        Ok(())
    }

    /// RSP-082.
    pub fn edit_severity(&mut self, inc: &mut Incident, actor: i64, sev: Severity) {
        if inc.incident_severity == sev {
            return;
        }
        let from = inc.incident_severity;
        inc.incident_severity = sev;
        if !inc
            .manual_overrides
            .iter()
            .any(|f| f == "incident_severity")
        {
            inc.manual_overrides.push("incident_severity".into());
        }
        if inc.alert_cnt == 0 {
            inc.incident_status = Status::from(sev); // RSP-004
        }
        self.entry(
            inc,
            "i_r_severity",
            actor,
            self.now,
            json!({"from": from.as_str(), "to": sev.as_str()}),
        );
        self.touch(inc);
    }

    /// RSP-084: set (or with `Null` remove) a custom field value; the same value is a no-op.
    pub fn set_field(
        &mut self,
        inc: &mut Incident,
        actor: i64,
        def: &FieldDefinition,
        value: &Value,
    ) -> Result<(), ActionError> {
        let value =
            check_value(def, value).map_err(|e| ActionError::InvalidArgument(e.to_string()))?;
        let current = inc
            .response
            .fields
            .get(&def.field_name)
            .cloned()
            .unwrap_or(Value::Null);
        if current == value {
            return Ok(());
        }
        if value.is_null() {
            inc.response.fields.remove(&def.field_name);
        } else {
            inc.response
                .fields
                .insert(def.field_name.clone(), value.clone());
        }
        self.entry(
            inc,
            "i_r_field",
            actor,
            self.now,
            json!({"field_name": def.field_name, "to": value}),
        );
        self.touch(inc);
        Ok(())
    }

    // ---- storm warnings (§2.16) ----

    /// RSP-200, RSP-201: after `alert_cnt` changed, every threshold in
    /// `(storm_level, alert_cnt]` is crossed in ascending order (one `i_storm` each, never twice
    /// for an incident), and one storm firing goes out for the highest — if the incident is not
    /// closed, not muted and assigned — to every responder, acknowledged or not. Progress and
    /// timers do not change; a snooze does not hold it back.
    pub fn check_storm(
        &mut self,
        inc: &mut Incident,
        thresholds: &[i64],
        rule: Option<&EscalationRule>,
    ) {
        let mut crossed: Vec<i64> = thresholds
            .iter()
            .copied()
            .filter(|t| *t > inc.storm_level && *t <= inc.alert_cnt)
            .collect();
        crossed.sort_unstable();
        crossed.dedup();
        let Some(highest) = crossed.last().copied() else {
            return;
        };
        for t in &crossed {
            self.entry(inc, "i_storm", 0, self.now, json!({"threshold": t}));
        }
        inc.storm_level = highest;
        self.touch(inc);
        let muted = inc.response.escalation.as_ref().is_some_and(|e| e.muted);
        let Some(assigned) = inc.response.assigned_to.clone() else {
            return;
        };
        if inc.progress == Progress::Closed || muted {
            return;
        }
        let everyone: Vec<i64> = inc
            .response
            .responders
            .iter()
            .map(|r| r.person_id)
            .collect();
        let level = if assigned.is_rule_based() {
            usable_rule(rule, &assigned.escalate_rule_id).and_then(|r| {
                usize::try_from(assigned.layer_idx)
                    .ok()
                    .and_then(|k| r.layers.get(k))
                    .map(|l| (r, l))
            })
        } else {
            None
        };
        self.fire(
            inc,
            level,
            &everyone,
            &everyone,
            &[],
            &BTreeMap::new(),
            "fire",
            "storm",
        );
    }

    // ---- merging (§2.9) ----

    /// RSP-100 (b): `source` was merged into `target` (its alerts already moved): `i_merge`,
    /// then a console close by the actor if it was open. Its alerts are not closed: they now
    /// belong to the target.
    pub fn merged_away(&mut self, source: &mut Incident, actor: i64, target: &Incident) {
        let detail = json!({"target_incident": {
            "incident_id": target.incident_id,
            "num": target.num,
            "title": target.title,
        }});
        self.entry(source, "i_merge", actor, self.now, detail);
        self.close(source, actor, "console", None, None);
        self.out.close_alerts = false;
        self.touch(source);
    }

    /// RSP-100 (c) on the target, after its alerts were re-derived: the sources' responders
    /// join unacknowledged (`as: merged`, not notified), an optional title edit, and `i_merge`.
    /// Progress, assignment and escalation stay as they are.
    pub fn merge_target(
        &mut self,
        target: &mut Incident,
        actor: i64,
        sources: &[&Incident],
        title: Option<&str>,
        comment: &str,
    ) -> Result<(), ActionError> {
        not_closed(target, "merge into")?;
        let mut joined = Vec::new();
        for source in sources {
            for r in &source.response.responders {
                if target.response.responder(r.person_id).is_none() {
                    target.response.responders.push(Responder {
                        person_id: r.person_id,
                        assigned_at: self.now,
                        acknowledged_at: 0,
                        as_: ResponderAs::Merged,
                    });
                    joined.push(r.person_id);
                }
            }
        }
        if let Some(t) = title {
            self.edit_text(target, actor, "title", t)?;
        }
        let list: Vec<Value> = sources
            .iter()
            .map(|s| json!({"incident_id": s.incident_id, "num": s.num, "title": s.title}))
            .collect();
        let mut detail = json!({
            "comment": comment,
            "source_incidents": list,
            "source_responders": joined,
        });
        if let Some(t) = title {
            detail["title"] = Value::String(t.to_string());
        }
        self.entry(target, "i_merge", actor, self.now, detail);
        self.touch(target);
        Ok(())
    }

    /// RSP-101 on the target, once per alert moved in from another incident: `a_merge
    /// {alert_id, from_incident_id}` (with the caller's comment when one was given).
    pub fn alert_merged_in(
        &mut self,
        target: &mut Incident,
        actor: i64,
        alert_id: &str,
        from_incident_id: &str,
        comment: &str,
    ) -> Result<(), ActionError> {
        not_closed(target, "merge an alert into")?;
        let mut detail = json!({"alert_id": alert_id, "from_incident_id": from_incident_id});
        if !comment.is_empty() {
            detail["comment"] = Value::String(comment.to_string());
        }
        self.entry(target, "a_merge", actor, self.now, detail);
        self.touch(target);
        Ok(())
    }

    /// RSP-101 on the target, after its alerts were re-derived: an optional title edit
    /// (RSP-081), as a merge of incidents does (RSP-100 c).
    pub fn alert_merge_title(
        &mut self,
        target: &mut Incident,
        actor: i64,
        title: Option<&str>,
    ) -> Result<(), ActionError> {
        not_closed(target, "merge an alert into")?;
        if let Some(t) = title {
            self.edit_text(target, actor, "title", t)?;
        }
        Ok(())
    }

    // ---- timed steps (§2.5, §2.14, RSP-055) ----

    /// Applies the timer `kind` scheduled for `due`. Returns false when the timer was stale
    /// (the state no longer holds `due`) and nothing happened. `rule` is the current
    /// configuration of the incident's rule (RSP-138), `None` if it is gone.
    pub fn on_timer(
        &mut self,
        inc: &mut Incident,
        kind: TimerKind,
        due: Millis,
        rule: Option<&EscalationRule>,
    ) -> bool {
        if inc.progress == Progress::Closed {
            return false; // RSP-056 and every "not Closed" condition of §2.14.
        }
        match kind {
            TimerKind::AutoClose => {
                self.close(inc, 0, "autorslv", None, None);
                true
            }
            TimerKind::SnoozeEnd => self.snooze_expired(inc, due, rule),
            TimerKind::Delay => {
                let Some(esc) = inc.response.escalation.as_mut() else {
                    return false;
                };
                if esc.pending_delay_until != due {
                    return false;
                }
                esc.pending_delay_until = 0;
                match usable_rule(rule, &esc.rule_id) {
                    Some(rule) => {
                        self.enter_level(inc, rule, 0, AssignType::Assign, 0, "assign");
                    }
                    None => inc.response.escalation = None, // RSP-139
                }
                true
            }
            TimerKind::Escalate => self.escalate_due(inc, due, rule),
            TimerKind::Refire => self.refire_due(inc, due, rule),
        }
    }

    /// RSP-043.
    fn snooze_expired(
        &mut self,
        inc: &mut Incident,
        due: Millis,
        rule: Option<&EscalationRule>,
    ) -> bool {
        if inc.response.snoozed_before != due || due > self.now {
            return false;
        }
        inc.response.snoozed_before = 0;
        self.entry(
            inc,
            "i_wake",
            0,
            self.now,
            json!({"snoozedBefore": due / 1000}),
        );
        for r in &mut inc.response.responders {
            r.acknowledged_at = 0;
        }
        inc.progress = Progress::Triggered;
        self.touch(inc);
        let Some(a) = inc.response.assigned_to.clone() else {
            return true;
        };
        if a.is_rule_based() {
            match usable_rule(rule, &a.escalate_rule_id) {
                Some(rule) => {
                    let k = usize::try_from(a.layer_idx).unwrap_or(0);
                    if k < rule.layers.len() {
                        self.enter_level(inc, rule, k, a.kind, 0, "wake");
                    }
                }
                None => inc.response.escalation = None,
            }
        } else {
            let targets = DirectTargets {
                person_ids: a.person_ids,
                emails: Vec::new(),
                schedule_to_role_ids: a.schedule_to_role_ids,
            };
            // An empty re-resolution still records the assignment.
            let _ = self.assign_direct(inc, &targets, a.kind, 0, true);
        }
        true
    }

    /// RSP-163, RSP-164.
    fn escalate_due(
        &mut self,
        inc: &mut Incident,
        due: Millis,
        rule: Option<&EscalationRule>,
    ) -> bool {
        let Some(esc) = inc.response.escalation.clone() else {
            return false;
        };
        if esc.escalate_deadline != due {
            return false;
        }
        if let Some(e) = inc.response.escalation.as_mut() {
            e.escalate_deadline = 0;
        }
        let Some(rule) = usable_rule(rule, &esc.rule_id) else {
            inc.response.escalation = None; // RSP-139
            return true;
        };
        let Ok(k) = usize::try_from(esc.layer_idx) else {
            return true;
        };
        let Some(level) = rule.layers.get(k) else {
            return true; // RSP-138: the level is gone.
        };
        if inc.response.is_snoozed(self.now) || esc.muted {
            return true;
        }
        if !level.force_escalate && inc.progress != Progress::Triggered {
            return true;
        }
        if k + 1 >= rule.layers.len() {
            return true; // RSP-164: never wraps.
        }
        self.enter_level(inc, rule, k + 1, AssignType::Escalate, 0, "assign");
        true
    }

    /// RSP-162.
    fn refire_due(
        &mut self,
        inc: &mut Incident,
        due: Millis,
        rule: Option<&EscalationRule>,
    ) -> bool {
        let Some(esc) = inc.response.escalation.clone() else {
            return false;
        };
        if esc.next_refire_at != due {
            return false;
        }
        let drop_rest = |inc: &mut Incident| {
            if let Some(e) = inc.response.escalation.as_mut() {
                e.next_refire_at = 0;
            }
        };
        let Some(rule) = usable_rule(rule, &esc.rule_id) else {
            inc.response.escalation = None;
            return true;
        };
        let level = usize::try_from(esc.layer_idx)
            .ok()
            .and_then(|k| rule.layers.get(k));
        let Some(level) = level else {
            drop_rest(inc);
            return true;
        };
        let before_deadline = esc.escalate_deadline == 0 || due < esc.escalate_deadline;
        if inc.progress != Progress::Triggered
            || inc.response.is_snoozed(self.now)
            || esc.muted
            || !before_deadline
        {
            drop_rest(inc);
            return true;
        }
        let count = esc.refire_count + 1;
        let next = if count < level.max_times {
            esc.level_entered_at
                .saturating_add((count + 1).saturating_mul(level.notify_step_ms()))
        } else {
            0
        };
        if let Some(e) = inc.response.escalation.as_mut() {
            e.refire_count = count;
            e.next_refire_at = next;
        }
        let persons: Vec<i64> = inc
            .response
            .responders
            .iter()
            .map(|r| r.person_id)
            .collect();
        self.fire(
            inc,
            Some((rule, level)),
            &persons,
            &persons,
            &[],
            &BTreeMap::new(),
            "refire",
            "refire",
        );
        true
    }
}

/// The people of `persons` who have not acknowledged the incident: a firing notifies only them.
fn unacknowledged(inc: &Incident, persons: &[i64]) -> Vec<i64> {
    persons
        .iter()
        .copied()
        .filter(|p| {
            inc.response
                .responder(*p)
                .is_none_or(|r| r.acknowledged_at == 0)
        })
        .collect()
}

fn usable_rule<'r>(rule: Option<&'r EscalationRule>, rule_id: &str) -> Option<&'r EscalationRule> {
    rule.filter(|r| r.rule_id == rule_id && r.status == RuleStatus::Enabled)
}

fn current_level<'r>(inc: &Incident, rule: Option<&'r EscalationRule>) -> Option<&'r Level> {
    let esc = inc.response.escalation.as_ref()?;
    let rule = usable_rule(rule, &esc.rule_id)?;
    rule.layers.get(usize::try_from(esc.layer_idx).ok()?)
}

fn not_closed(inc: &Incident, what: &str) -> Result<(), ActionError> {
    if inc.progress == Progress::Closed {
        return Err(precondition(format!("cannot {what} a closed incident")));
    }
    Ok(())
}

fn split_items(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn assign_detail(a: &Assignment, to: &[i64]) -> Value {
    json!({
        "id": a.id,
        "type": a.kind.as_str(),
        "escalate_rule_id": a.escalate_rule_id,
        "escalate_rule_name": a.escalate_rule_name,
        "layer_idx": a.layer_idx,
        "person_ids": a.person_ids,
        "schedule_to_role_ids": a.schedule_to_role_ids,
        "assigned_at": a.assigned_at / 1000,
        "creator_id": a.creator_id,
        "to": to,
    })
}

/// RSP-014: every field with a default value gets it, unless the incident already has a value
/// for it (manual creation gives values explicitly). No timeline entry.
pub fn apply_field_defaults(inc: &mut Incident, defs: &[FieldDefinition]) {
    for def in defs {
        if !def.default_value.is_null() && !inc.response.fields.contains_key(&def.field_name) {
            inc.response
                .fields
                .insert(def.field_name.clone(), def.default_value.clone());
        }
    }
}

/// RSP-021: the invariants that hold after every action; the store checks them before it
/// commits a change, so a bug surfaces as a refused action rather than a corrupt incident.
pub fn check_invariants(inc: &Incident, now: Millis) -> Result<(), String> {
    let closed = inc.progress == Progress::Closed;
    let acked = inc.response.any_acknowledged();
    if !closed && (inc.progress == Progress::Processing) != acked {
        return Err(format!(
            "progress {:?} does not match the acknowledgements",
            inc.progress
        ));
    }
    if inc.response.snoozed_before > now && inc.progress != Progress::Processing {
        return Err("a snoozed incident must be Processing".into());
    }
    if closed != (inc.close_time > 0) {
        return Err("close_time must be set exactly when Closed".into());
    }
    Ok(())
}
