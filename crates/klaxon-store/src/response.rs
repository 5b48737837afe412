//! The response side's persistence: escalation rules, incident actions, the timeline, durable
//! timers and the notification outbox (response.md §1.7–§1.17, §2.1–§2.14).
//!
//! Every change to an incident runs in one transaction that writes the incident, its timeline
//! entries, the notification decisions and the timers its new state asks for. Timers carry the
//! instant they were scheduled for, so a stale or replayed timer does nothing (see
//! `klaxon_core::response::engine`).
//!
//! Concurrency: on SQLite there is one writer connection, which serialises everything. On
//! PostgreSQL every response-side transaction first locks the `inbox` lease row, which the
//! ingestion batch also holds for its whole transaction; so an incident is never written by a
//! manual action, a timer and an ingestion batch at the same time, and none of them works from
//! a stale read.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::tz::TimeZone;
use klaxon_core::ids::IdSource;
use klaxon_core::model::{Incident, Millis, Progress};
use klaxon_core::response::engine::MemberStatus;
use klaxon_core::response::{
    ActionError, Directory, Engine, EscalationRule, MatchContext, Notification, Outcome,
    RuleStatus, TimelineEntry, TimerKind, auto_close_at, check_invariants, pending_timers,
};
use klaxon_core::schedule::{self, Schedule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::db::{Sql, is_sqlite};
use crate::process::RandomIds;
use crate::rows::{self, get_i64, get_str};
use crate::webhooks::WebhookEvent;
use crate::{Result, StoreError};
use klaxon_core::webhook;

/// A claim on a due timer lasts this long; a node that dies mid-step loses its claim after it
/// and another node runs the step.
pub const TIMER_CLAIM_MS: Millis = 30_000;

// ---- the directory: members, teams and schedules of one account ----

/// Members, teams and schedules of one account, read once per transaction.
#[derive(Debug, Default)]
pub struct StoreDirectory {
    members: HashMap<i64, (MemberStatus, String)>,
    by_email: HashMap<String, i64>,
    teams: HashMap<i64, Vec<i64>>,
    team_names: HashMap<String, i64>,
    schedules: HashMap<i64, Schedule>,
    /// Service calendars: schedule calendar masks and rule time filters read them.
    calendars: crate::calendars::AccountCalendars,
    /// Stored personal preferences (1.15); members not in it have the OQ-24 defaults.
    preferences: HashMap<i64, klaxon_core::response::NotificationPreference>,
}

impl Directory for StoreDirectory {
    fn member_status(&self, person_id: i64) -> Option<MemberStatus> {
        self.members.get(&person_id).map(|(s, _)| *s)
    }

    fn member_by_email(&self, email: &str) -> Option<i64> {
        let id = self.by_email.get(&email.to_lowercase()).copied()?;
        (self.member_status(id) == Some(MemberStatus::Enabled)).then_some(id)
    }

    fn team_members(&self, team_id: i64) -> Option<Vec<i64>> {
        self.teams.get(&team_id).cloned()
    }

    fn team_by_name(&self, name: &str) -> Option<i64> {
        self.team_names.get(name).copied()
    }

    fn on_call(&self, schedule_id: i64, role_ids: &[i64], at: Millis) -> Vec<i64> {
        self.schedules
            .get(&schedule_id)
            .and_then(|s| schedule::on_call_at(s, self.calendars.view(), at).ok())
            .map(|oc| oc.persons_for_roles(role_ids))
            .unwrap_or_default()
    }

    fn preference(
        &self,
        person_id: i64,
        sev: klaxon_core::model::Severity,
    ) -> Vec<klaxon_core::response::PrefChannel> {
        match self.preferences.get(&person_id) {
            Some(p) => p.for_severity(sev).to_vec(),
            None => klaxon_core::response::NotificationPreference::default()
                .for_severity(sev)
                .to_vec(),
        }
    }
}

async fn load_directory(conn: &mut AnyConnection, account_id: i64) -> Result<StoreDirectory> {
    let mut dir = StoreDirectory::default();
    let mut sql = Sql::new("SELECT member_id, email, status FROM members WHERE account_id = ");
    sql.bind(account_id);
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let id = get_i64(&row, "member_id")?;
        let email = get_str(&row, "email")?;
        let status = match get_str(&row, "status")?.as_str() {
            "enabled" => MemberStatus::Enabled,
            "pending" => MemberStatus::Pending,
            _ => MemberStatus::Deleted,
        };
        if !email.is_empty() {
            dir.by_email.insert(email.to_lowercase(), id);
        }
        dir.members.insert(id, (status, email));
    }
    let mut sql = Sql::new(
        "SELECT schedule_id, definition FROM schedules WHERE deleted = 0 AND account_id = ",
    );
    sql.bind(account_id);
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let id = get_i64(&row, "schedule_id")?;
        let text = get_str(&row, "definition")?;
        let mut s: Schedule = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("schedules.definition {id}: {e}")))?;
        s.schedule_id = id;
        dir.schedules.insert(id, s);
    }
    load_teams(conn, account_id, &mut dir).await?;
    dir.calendars = crate::calendars::load(conn, account_id).await?;
    dir.preferences = crate::preferences::load(conn, account_id).await?;
    Ok(dir)
}

async fn load_teams(
    conn: &mut AnyConnection,
    account_id: i64,
    dir: &mut StoreDirectory,
) -> Result<()> {
    let mut sql = Sql::new("SELECT team_id, team_name FROM teams WHERE account_id = ");
    sql.bind(account_id);
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let id = get_i64(&row, "team_id")?;
        dir.team_names.insert(get_str(&row, "team_name")?, id);
        dir.teams.insert(id, Vec::new());
    }
    let mut sql = Sql::new("SELECT team_id, member_id FROM team_members WHERE account_id = ");
    sql.bind(account_id).push(" ORDER BY team_id, member_id");
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let team = get_i64(&row, "team_id")?;
        if let Some(list) = dir.teams.get_mut(&team) {
            list.push(get_i64(&row, "member_id")?);
        }
    }
    Ok(())
}

// ---- what an incident's channel and account contribute ----

/// The account zone, the channel's rules and its auto-close settings.
pub(crate) struct IncidentContext {
    pub tz: TimeZone,
    pub rules: Vec<EscalationRule>,
    pub auto_close: (i64, String),
    /// The channel's storm thresholds (RSP-200).
    pub storm_thresholds: Vec<i64>,
    /// The channel's flapping settings: flagged incidents of a `remind_suppress` channel
    /// are created muted (RSP-204).
    pub flapping: klaxon_core::flapping::FlappingConfig,
}

async fn account_zone(conn: &mut AnyConnection, account_id: i64) -> Result<TimeZone> {
    let mut sql = Sql::new("SELECT time_zone FROM accounts WHERE account_id = ");
    sql.bind(account_id);
    let zone = match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => get_str(&row, "time_zone")?,
        None => "UTC".to_string(),
    };
    Ok(TimeZone::get(&zone).unwrap_or(TimeZone::UTC))
}

async fn channel_rules(
    conn: &mut AnyConnection,
    account_id: i64,
    channel_id: i64,
) -> Result<Vec<EscalationRule>> {
    let mut sql = Sql::new("SELECT rule_id, definition FROM escalation_rules WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id)
        .push(" ORDER BY priority");
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rule_row)
        .collect()
}

fn rule_row(row: &sqlx::any::AnyRow) -> Result<EscalationRule> {
    let id = get_str(row, "rule_id")?;
    let text = get_str(row, "definition")?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("escalation_rules.definition {id}: {e}")))
}

async fn channel_storm_thresholds(
    conn: &mut AnyConnection,
    account_id: i64,
    channel_id: i64,
) -> Result<Vec<i64>> {
    let mut sql = Sql::new("SELECT storm_thresholds FROM channels WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id);
    Ok(match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => serde_json::from_str(&get_str(&row, "storm_thresholds")?).map_err(|e| {
            StoreError::Corrupt(format!("channels.storm_thresholds {channel_id}: {e}"))
        })?,
        None => Vec::new(),
    })
}

async fn channel_flapping(
    conn: &mut AnyConnection,
    account_id: i64,
    channel_id: i64,
) -> Result<klaxon_core::flapping::FlappingConfig> {
    let mut sql = Sql::new("SELECT flapping FROM channels WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => crate::channels::flapping_json(&get_str(&row, "flapping")?, channel_id),
        None => Ok(klaxon_core::flapping::FlappingConfig::default()),
    }
}

async fn channel_auto_close(
    conn: &mut AnyConnection,
    account_id: i64,
    channel_id: i64,
) -> Result<(i64, String)> {
    let mut sql = Sql::new(
        "SELECT auto_resolve_timeout, auto_resolve_mode FROM channels WHERE account_id = ",
    );
    sql.bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id);
    Ok(match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => (
            get_i64(&row, "auto_resolve_timeout")?,
            get_str(&row, "auto_resolve_mode")?,
        ),
        None => (0, "trigger".to_string()),
    })
}

pub(crate) async fn incident_context(
    conn: &mut AnyConnection,
    account_id: i64,
    channel_id: i64,
) -> Result<IncidentContext> {
    Ok(IncidentContext {
        tz: account_zone(conn, account_id).await?,
        rules: if channel_id == 0 {
            Vec::new()
        } else {
            channel_rules(conn, account_id, channel_id).await?
        },
        auto_close: channel_auto_close(conn, account_id, channel_id).await?,
        storm_thresholds: channel_storm_thresholds(conn, account_id, channel_id).await?,
        flapping: channel_flapping(conn, account_id, channel_id).await?,
    })
}

/// The rule the incident is (or is about to be) assigned under, from the channel's rules.
fn current_rule<'r>(inc: &Incident, rules: &'r [EscalationRule]) -> Option<&'r EscalationRule> {
    let id = inc
        .response
        .escalation
        .as_ref()
        .map(|e| e.rule_id.as_str())
        .or_else(|| {
            inc.response
                .assigned_to
                .as_ref()
                .map(|a| a.escalate_rule_id.as_str())
        })
        .filter(|id| !id.is_empty())?;
    rules.iter().find(|r| r.rule_id == id)
}

/// The rule by id from any channel of the account (an incident merged across channels may
/// be assigned under another channel's rule).
async fn rule_by_id(
    conn: &mut AnyConnection,
    account_id: i64,
    rule_id: &str,
) -> Result<Option<EscalationRule>> {
    let mut sql = Sql::new("SELECT rule_id, definition FROM escalation_rules WHERE account_id = ");
    sql.bind(account_id).push(" AND rule_id = ").bind(rule_id);
    sql.query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(rule_row)
        .transpose()
}

// ---- writing an outcome ----

/// PostgreSQL: waits for (and then blocks) the ingestion batch, see the module docs.
pub(crate) async fn lock_incidents(conn: &mut AnyConnection) -> Result<()> {
    if !is_sqlite(conn) {
        Sql::new("SELECT name FROM leases WHERE name = 'inbox' FOR UPDATE")
            .query_on(conn)
            .fetch_optional(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(crate) async fn insert_timeline(
    conn: &mut AnyConnection,
    entries: &[(i64, &TimelineEntry)],
) -> Result<()> {
    for chunk in entries.chunks(64) {
        let mut sql = Sql::new(
            "INSERT INTO incident_timeline (entry_id, account_id, incident_id, ref_id, kind, \
             creator_id, created_at, detail) VALUES ",
        );
        for (i, (account_id, e)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(e.entry_id.as_str())
                .push(", ")
                .bind(*account_id)
                .push(", ")
                .bind(e.incident_id.as_str())
                .push(", ")
                .bind(e.ref_id.as_str())
                .push(", ")
                .bind(e.kind)
                .push(", ")
                .bind(e.creator_id)
                .push(", ")
                .bind(e.created_at)
                .push(", ")
                .bind(e.detail.to_string())
                .push(")");
        }
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_notifications(
    conn: &mut AnyConnection,
    list: &[(i64, &Notification)],
) -> Result<()> {
    for chunk in list.chunks(32) {
        let mut sql = Sql::new(
            "INSERT INTO notifications (rid, account_id, incident_id, firing_id, reason, \
             fire_type, escalate_rule_id, layer_idx, channel, person_id, target, severity, \
             created_at, repeat_index) VALUES ",
        );
        for (i, (account_id, n)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(n.rid.as_str())
                .push(", ")
                .bind(*account_id)
                .push(", ")
                .bind(n.incident_id.as_str())
                .push(", ")
                .bind(n.firing_id.as_str())
                .push(", ")
                .bind(n.reason)
                .push(", ")
                .bind(n.fire_type)
                .push(", ")
                .bind(n.escalate_rule_id.as_str())
                .push(", ")
                .bind(n.layer_idx)
                .push(", ")
                .bind(n.channel.as_str())
                .push(", ")
                .bind(n.person_id)
                .push(", ")
                .bind(n.target.to_string())
                .push(", ")
                .bind(n.severity.as_str())
                .push(", ")
                .bind(n.created_at)
                .push(", ")
                .bind(n.repeat_index)
                .push(")");
        }
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The timers an incident's state asks for, with the channel's auto-close timeout.
fn wanted_timers(inc: &Incident, auto_close: &(i64, String)) -> Vec<(TimerKind, Millis)> {
    let mut timers = pending_timers(inc);
    if let Some(at) = auto_close_at(inc, auto_close.0, &auto_close.1) {
        timers.push((TimerKind::AutoClose, at));
    }
    timers
}

/// Inserts timers; one that exists already (same incident, kind and instant) stays as it is.
async fn insert_timers(
    conn: &mut AnyConnection,
    timers: &[(&Incident, TimerKind, Millis)],
    now: Millis,
) -> Result<()> {
    let rows: Vec<TimerRow<'_>> = timers
        .iter()
        .map(|(inc, kind, due)| (inc.account_id, inc.incident_id.as_str(), *kind, *due))
        .collect();
    insert_timer_rows(conn, &rows, now).await
}

/// A timer to insert: account, incident, kind and due instant.
type TimerRow<'a> = (i64, &'a str, TimerKind, Millis);

/// Inserts timers by incident id; the token (incident, kind, instant) makes a repeat a no-op.
async fn insert_timer_rows(
    conn: &mut AnyConnection,
    timers: &[TimerRow<'_>],
    now: Millis,
) -> Result<()> {
    for chunk in timers.chunks(64) {
        let mut sql = Sql::new(
            "INSERT INTO timers (account_id, incident_id, kind, rank, due_at, token, created_at) \
             VALUES ",
        );
        for (i, (account_id, incident_id, kind, due)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" })
                .bind(*account_id)
                .push(", ")
                .bind(*incident_id)
                .push(", ")
                .bind(kind.as_str())
                .push(", ")
                .bind(kind.rank())
                .push(", ")
                .bind(*due)
                .push(", ")
                .bind(format!("{}:{}:{}", incident_id, kind.as_str(), due))
                .push(", ")
                .bind(now)
                .push(")");
        }
        sql.push(" ON CONFLICT (token) DO NOTHING");
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_timer(
    conn: &mut AnyConnection,
    inc: &Incident,
    kind: TimerKind,
    due: Millis,
    now: Millis,
) -> Result<()> {
    insert_timers(conn, &[(inc, kind, due)], now).await
}

/// ING-202, RSP-055: after a channel's auto-close settings change, every open incident of the
/// channel gets an auto-close timer at the instant the new settings give. Timers set under
/// the old settings stay: each checks the settings in force when it fires (`run_timer`), so a
/// later one closes nothing twice and an earlier one moves itself to the new instant.
pub(crate) async fn reschedule_auto_close(
    conn: &mut AnyConnection,
    account_id: i64,
    channel_id: i64,
    timeout_secs: i64,
    mode: &str,
    now: Millis,
) -> Result<()> {
    if timeout_secs <= 0 {
        return Ok(());
    }
    let mut sql = Sql::new(
        "SELECT incident_id, start_time, last_merge_time FROM incidents WHERE account_id = ",
    );
    sql.bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id)
        .push(" AND progress <> 'Closed'");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let mut open: Vec<(String, Millis)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let due = klaxon_core::response::engine::auto_close_due(
            get_i64(row, "start_time")?,
            get_i64(row, "last_merge_time")?,
            timeout_secs,
            mode,
        );
        if let Some(due) = due {
            open.push((get_str(row, "incident_id")?, due));
        }
    }
    let timers: Vec<TimerRow<'_>> = open
        .iter()
        .map(|(id, due)| (account_id, id.as_str(), TimerKind::AutoClose, *due))
        .collect();
    insert_timer_rows(conn, &timers, now).await
}

/// One incident's change, ready to be written.
pub(crate) struct Change<'a> {
    pub incident: &'a Incident,
    pub outcome: &'a Outcome,
    pub auto_close: &'a (i64, String),
}

/// Writes incidents' changes with a few multi-row statements: the rows (when `upsert`; the
/// inbox batch writes its incidents itself), the timeline, the outbox, the timers, and (for a
/// close) their open alerts (RSP-052). Refuses a change that breaks RSP-021.
pub(crate) async fn write_changes(
    conn: &mut AnyConnection,
    changes: &[Change<'_>],
    now: Millis,
    upsert: bool,
) -> Result<()> {
    for c in changes {
        check_invariants(c.incident, now).map_err(|e| {
            StoreError::Corrupt(format!(
                "incident {} would break RSP-021: {e}",
                c.incident.incident_id
            ))
        })?;
    }
    if upsert {
        let rows: Vec<&Incident> = changes.iter().map(|c| c.incident).collect();
        rows::upsert_incidents(conn, &rows).await?;
    }
    let entries: Vec<(i64, &TimelineEntry)> = changes
        .iter()
        .flat_map(|c| {
            c.outcome
                .timeline
                .iter()
                .map(|e| (c.incident.account_id, e))
        })
        .collect();
    insert_timeline(conn, &entries).await?;
    let sends: Vec<(i64, &Notification)> = changes
        .iter()
        .flat_map(|c| {
            c.outcome
                .notifications
                .iter()
                .map(|n| (c.incident.account_id, n))
        })
        .collect();
    insert_notifications(conn, &sends).await?;
    let timers: Vec<(&Incident, TimerKind, Millis)> = changes
        .iter()
        .flat_map(|c| {
            wanted_timers(c.incident, c.auto_close)
                .into_iter()
                .map(|(k, due)| (c.incident, k, due))
        })
        .collect();
    insert_timers(conn, &timers, now).await?;
    let mut hooks = webhook_events(changes);
    for c in changes.iter().filter(|c| c.outcome.close_alerts) {
        let mut sql = Sql::new("UPDATE alerts SET closed = 1, close_time = ");
        sql.bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(c.incident.account_id)
            .push(" AND incident_id = ")
            .bind(c.incident.incident_id.as_str())
            .push(" AND closed = 0 RETURNING alert_id, channel_id");
        // ING-250 `a_close`: each alert this close closed, with the closer if a person.
        let closer = c
            .outcome
            .timeline
            .iter()
            .rev()
            .find(|e| e.kind == "i_rslv")
            .map_or(0, |e| e.creator_id);
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            hooks.push(WebhookEvent {
                account_id: c.incident.account_id,
                event_type: "a_close",
                subject_id: get_str(&row, "alert_id")?,
                channel_id: Some(get_i64(&row, "channel_id")?),
                event_time: now,
                person_id: closer,
            });
        }
    }
    // Incident events carry the incident as this change left it (RSP-373); alert events
    // from here (a manual move, a close) read the alert when they are sent.
    crate::webhooks::enqueue(conn, &hooks, now, |e| {
        e.event_type
            .starts_with("i_")
            .then(|| {
                changes
                    .iter()
                    .find(|c| c.incident.incident_id == e.subject_id)
            })
            .flatten()
            .and_then(|c| serde_json::to_string(c.incident).ok())
    })
    .await?;
    // RSP-405 / RSP-406: the ticket-sync steps the same changes ask for.
    crate::ticket_sync::enqueue(conn, changes, now).await?;
    // RSP-433 / RSP-434: member and state sync of the incidents' active war rooms.
    crate::war_rooms::enqueue(conn, changes, now).await?;
    // RSP-312: the IM cards already sent follow the change, whatever made it.
    crate::card_refresh::enqueue(conn, changes, now).await?;
    Ok(())
}

/// The webhook events of incidents' timeline entries, in order (RSP-002, RSP-371, RSP-372):
/// incident events on the incident, and `a_merge` for each alert moved in by hand.
fn webhook_events(changes: &[Change<'_>]) -> Vec<WebhookEvent> {
    let mut out = Vec::new();
    for c in changes {
        for e in &c.outcome.timeline {
            if let Some(t) = webhook::incident_event_for_timeline(e.kind, &e.detail) {
                out.push(WebhookEvent {
                    account_id: c.incident.account_id,
                    event_type: t,
                    subject_id: c.incident.incident_id.clone(),
                    channel_id: Some(c.incident.channel_id),
                    event_time: e.created_at,
                    person_id: e.creator_id,
                });
            }
            if let Some((t, alert_id)) = webhook::alert_event_for_timeline(e.kind, &e.detail) {
                out.push(WebhookEvent {
                    account_id: c.incident.account_id,
                    event_type: t,
                    subject_id: alert_id,
                    channel_id: None,
                    event_time: e.created_at,
                    person_id: e.creator_id,
                });
            }
        }
    }
    out
}

/// [`write_changes`] for one incident.
pub(crate) async fn write_change(
    conn: &mut AnyConnection,
    inc: &Incident,
    out: &Outcome,
    auto_close: &(i64, String),
    now: Millis,
    upsert: bool,
) -> Result<()> {
    let change = Change {
        incident: inc,
        outcome: out,
        auto_close,
    };
    write_changes(conn, &[change], now, upsert).await
}

// ---- ingestion hooks ----

/// Called by the inbox batch for the incidents it created and those it closed (all alerts
/// recovered), before it writes them: RSP-010 steps 4–5 and RSP-053.
pub(crate) async fn after_ingest(
    conn: &mut AnyConnection,
    incidents: &mut HashMap<String, Option<Incident>>,
    created: &[String],
    event_closed: &[String],
    grown: &[String],
    now: Millis,
) -> Result<()> {
    let mut contexts: HashMap<(i64, i64), IncidentContext> = HashMap::new();
    let mut directories: HashMap<i64, StoreDirectory> = HashMap::new();
    let mut field_defs: HashMap<i64, Vec<klaxon_core::response::FieldDefinition>> = HashMap::new();
    let mut ids = RandomIds;
    mark_frequency(conn, incidents, created).await?;
    let touched: BTreeSet<&String> = created.iter().chain(event_closed).chain(grown).collect();
    // Set look-ups: a storm batch creates hundreds of incidents.
    let (created, event_closed, grown): (HashSet<&String>, HashSet<&String>, HashSet<&String>) = (
        created.iter().collect(),
        event_closed.iter().collect(),
        grown.iter().collect(),
    );
    let mut outcomes: Vec<(String, Outcome, (i64, String))> = Vec::new();
    for id in touched {
        let Some(Some(inc)) = incidents.get_mut(id) else {
            continue;
        };
        let key = (inc.account_id, inc.channel_id);
        if let std::collections::hash_map::Entry::Vacant(slot) = contexts.entry(key) {
            slot.insert(incident_context(conn, key.0, key.1).await?);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = directories.entry(key.0) {
            slot.insert(load_directory(conn, key.0).await?);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = field_defs.entry(key.0) {
            slot.insert(crate::fields::all(conn, key.0).await?);
        }
        if created.contains(id)
            && let Some(defs) = field_defs.get(&key.0)
        {
            klaxon_core::response::apply_field_defaults(inc, defs); // RSP-010 step 2
        }
        let (Some(ctx), Some(dir)) = (contexts.get(&key), directories.get(&key.0)) else {
            continue;
        };
        // The engine borrows the directory through `dyn` references, which are not `Send`:
        // it must be gone before the next `.await`.
        let out = {
            let mut engine = Engine::new(now, dir, &mut ids);
            let matching = MatchContext {
                tz: &ctx.tz,
                calendars: dir.calendars.view(),
            };
            if created.contains(id) {
                // RSP-204: ingestion flagged it (ING-180) in a remind_suppress channel.
                let mute = ctx.flapping.mute(inc.is_flapping);
                if inc.progress == Progress::Closed {
                    // Created and recovered in one batch: recorded, never assigned (RSP-056).
                    engine.on_auto_created(inc, &[], &matching, mute);
                } else {
                    engine.on_auto_created(inc, &ctx.rules, &matching, mute);
                }
            }
            if event_closed.contains(id) {
                engine.on_event_closed(inc);
            }
            if grown.contains(id) && !ctx.storm_thresholds.is_empty() {
                // RSP-200: alerts merged in by ingestion may cross a storm threshold.
                let rule = current_rule(inc, &ctx.rules).cloned();
                engine.check_storm(inc, &ctx.storm_thresholds, rule.as_ref());
            }
            engine.out
        };
        outcomes.push((id.clone(), out, ctx.auto_close.clone()));
    }
    // One set of multi-row statements for the whole batch.
    let changes: Vec<Change<'_>> = outcomes
        .iter()
        .filter_map(|(id, out, auto_close)| {
            incidents
                .get(id)
                .and_then(Option::as_ref)
                .map(|inc| Change {
                    incident: inc,
                    outcome: out,
                    auto_close,
                })
        })
        .collect();
    write_changes(conn, &changes, now, false).await
}

/// Stored candidates scored per search (title signature, or token-count range) and batch at
/// most, newest first; see `docs/incidents.md`.
const OUTLIER_CANDIDATES: i64 = 200;

/// One indexed look-up of stored outlier candidates: same channel, and either the same title
/// signature or (for titles of 6+ tokens) a similar token count.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum OutlierSearch {
    Signature(String),
    TokenCounts(i64, i64),
}

/// RSP-452: each new incident of a channel is `rare` when no incident of that channel started
/// in the 30 days before it with a similarity above 0.9, else `frequent`; evaluated once.
///
/// Candidates, cheapest first: the incidents created earlier in the same batch; then stored
/// incidents with the same title signature; then, for titles of 6+ tokens, stored incidents
/// with a similar token count. A storm of look-alike alerts shares one search, so each search
/// is read once per batch (one query, the few columns the score needs, fingerprinted once) and
/// every new incident of the batch is scored against it in memory: the cost per batch is one
/// query per distinct search, not one per new incident.
async fn mark_frequency(
    conn: &mut AnyConnection,
    incidents: &mut HashMap<String, Option<Incident>>,
    created: &[String],
) -> Result<()> {
    use klaxon_core::response::similarity::{Candidate, similar_token_counts};
    // `created` is in creation order, and the batch's incidents share one `created_at`: their
    // place in it breaks a tie of start second and creation time.
    let batch: Vec<(i64, Candidate)> = created
        .iter()
        .filter_map(|id| incidents.get(id).and_then(Option::as_ref))
        .filter(|i| i.channel_id != 0)
        .enumerate()
        .map(|(place, i)| {
            let mut c = Candidate::of(i);
            c.created.1 = place + 1;
            (i.account_id, c)
        })
        .collect();
    let searches_of = |x: &Candidate| {
        let mut out = vec![OutlierSearch::Signature(x.sig.clone())];
        if x.tokens >= 6 {
            let (lo, hi) = similar_token_counts(x.tokens);
            out.push(OutlierSearch::TokenCounts(lo, hi));
        }
        out
    };
    // The window each search must cover: from the earliest start minus 30 days to the latest
    // start of the batch incidents that use it.
    let mut windows: HashMap<(i64, i64, OutlierSearch), (Millis, Millis)> = HashMap::new();
    for (account_id, x) in &batch {
        for search in searches_of(x) {
            let w = windows
                .entry((*account_id, x.channel_id, search))
                .or_insert((x.start_time, x.start_time));
            w.0 = w.0.min(x.start_time);
            w.1 = w.1.max(x.start_time);
        }
    }
    let mut stored: HashMap<(i64, i64, OutlierSearch), Vec<Candidate>> = HashMap::new();
    for (key, (earliest, latest)) in windows {
        let found = stored_candidates(conn, &key, earliest, latest).await?;
        stored.insert(key, found);
    }
    for (account_id, x) in &batch {
        let similar_in_batch = batch.iter().any(|(_, y)| x.is_similar_predecessor(y));
        let similar_stored = || {
            searches_of(x).into_iter().any(|search| {
                stored
                    .get(&(*account_id, x.channel_id, search))
                    .is_some_and(|ys| ys.iter().any(|y| x.is_similar_predecessor(y)))
            })
        };
        let freq = if similar_in_batch || similar_stored() {
            "frequent"
        } else {
            "rare"
        };
        if let Some(Some(inc)) = incidents.get_mut(&x.incident_id) {
            inc.response.frequency = freq.to_string();
        }
    }
    Ok(())
}

/// The newest stored candidates of one search that started in the 30 days before `earliest`
/// up to and including `latest`, fingerprinted for scoring.
async fn stored_candidates(
    conn: &mut AnyConnection,
    (account_id, channel_id, search): &(i64, i64, OutlierSearch),
    earliest: Millis,
    latest: Millis,
) -> Result<Vec<klaxon_core::response::similarity::Candidate>> {
    use klaxon_core::response::similarity::{
        Candidate, Fingerprint, PAST_WINDOW_MS, title_signature,
    };
    let mut sql = Sql::new(
        "SELECT incident_id, channel_id, title, description, labels, start_time, created_at \
         FROM incidents WHERE account_id = ",
    );
    sql.bind(*account_id)
        .push(" AND channel_id = ")
        .bind(*channel_id);
    match search {
        OutlierSearch::Signature(sig) => {
            sql.push(" AND title_sig = ").bind(sig.as_str());
        }
        OutlierSearch::TokenCounts(lo, hi) => {
            sql.push(" AND title_tokens BETWEEN ")
                .bind(*lo)
                .push(" AND ")
                .bind(*hi);
        }
    }
    sql.push(" AND start_time >= ")
        .bind(earliest.saturating_sub(PAST_WINDOW_MS))
        // `latest` itself is in: a stored incident of the same second was created before the
        // batch, so it precedes the batch's incidents of that second.
        .push(" AND start_time <= ")
        .bind(latest)
        .push(" ORDER BY start_time DESC LIMIT ")
        .bind(OUTLIER_CANDIDATES);
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let labels: klaxon_core::model::Labels = serde_json::from_str(&get_str(row, "labels")?)
            .map_err(|e| StoreError::Corrupt(format!("incidents.labels: {e}")))?;
        let title = get_str(row, "title")?;
        let description = get_str(row, "description")?;
        let (sig, tokens) = title_signature(&title);
        out.push(Candidate {
            incident_id: get_str(row, "incident_id")?,
            channel_id: get_i64(row, "channel_id")?,
            start_time: get_i64(row, "start_time")?,
            created: (get_i64(row, "created_at")?, 0),
            sig,
            tokens,
            fingerprint: Fingerprint::parts(&title, &description, &labels),
        });
    }
    Ok(out)
}

// ---- actions ----

/// What the action closure sees besides the incident.
pub struct ActionContext<'a> {
    /// The current configuration of the incident's rule (RSP-138), if it still exists.
    pub rule: Option<&'a EscalationRule>,
    /// The incident channel's rules, for re-matching on reopen (RSP-071).
    pub rules: &'a [EscalationRule],
    /// The account zone and service calendars rule matching reads.
    pub matching: MatchContext<'a>,
}

/// The result of an action on one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionResult {
    Done,
    NotFound,
    Refused(ActionError),
}

pub(crate) async fn act<F>(
    pool: &sqlx::AnyPool,
    account_id: i64,
    incident_id: &str,
    now: Millis,
    f: F,
) -> Result<ActionResult>
where
    F: FnOnce(
        &mut Engine<'_>,
        &mut Incident,
        &ActionContext<'_>,
    ) -> std::result::Result<(), ActionError>,
{
    let mut tx = pool.begin().await?;
    lock_incidents(&mut tx).await?;
    let Some(mut inc) = load_incident(&mut tx, account_id, incident_id).await? else {
        tx.rollback().await?;
        return Ok(ActionResult::NotFound);
    };
    let ctx = incident_context(&mut tx, account_id, inc.channel_id).await?;
    let dir = load_directory(&mut tx, account_id).await?;
    let mut rule = current_rule(&inc, &ctx.rules).cloned();
    if rule.is_none()
        && let Some(a) = inc
            .response
            .assigned_to
            .as_ref()
            .filter(|a| a.is_rule_based())
    {
        rule = rule_by_id(&mut tx, account_id, &a.escalate_rule_id).await?;
    }
    let result = {
        let mut ids = RandomIds;
        let mut engine = Engine::new(now, &dir, &mut ids);
        let actx = ActionContext {
            rule: rule.as_ref(),
            rules: &ctx.rules,
            matching: MatchContext {
                tz: &ctx.tz,
                calendars: dir.calendars.view(),
            },
        };
        f(&mut engine, &mut inc, &actx).map(|()| engine.out)
    };
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            tx.rollback().await?;
            return Ok(ActionResult::Refused(e));
        }
    };
    if out.timeline.is_empty() {
        // A no-op (0.2): nothing to write.
        tx.rollback().await?;
        return Ok(ActionResult::Done);
    }
    write_change(&mut tx, &inc, &out, &ctx.auto_close, now, true).await?;
    tx.commit().await?;
    Ok(ActionResult::Done)
}

/// Inserts a manual incident and runs its creation steps (RSP-011, RSP-012) in one
/// transaction. `f` performs the assignment; on refusal nothing is written.
pub(crate) async fn create_incident<F>(
    pool: &sqlx::AnyPool,
    mut inc: Incident,
    now: Millis,
    f: F,
) -> Result<std::result::Result<Incident, ActionError>>
where
    F: FnOnce(
        &mut Engine<'_>,
        &mut Incident,
        &ActionContext<'_>,
    ) -> std::result::Result<(), ActionError>,
{
    let mut tx = pool.begin().await?;
    lock_incidents(&mut tx).await?;
    let ctx = incident_context(&mut tx, inc.account_id, inc.channel_id).await?;
    let dir = load_directory(&mut tx, inc.account_id).await?;
    // RSP-012 → RSP-014: explicit values (already on the incident) win over defaults.
    let defs = crate::fields::all(&mut tx, inc.account_id).await?;
    klaxon_core::response::apply_field_defaults(&mut inc, &defs);
    // RSP-010 step 3 (RSP-452) for a manual incident of a channel.
    let id = inc.incident_id.clone();
    let mut one = HashMap::from([(id.clone(), Some(inc))]);
    mark_frequency(&mut tx, &mut one, std::slice::from_ref(&id)).await?;
    let Some(Some(mut inc)) = one.remove(&id) else {
        return Err(StoreError::Corrupt("the new incident went missing".into()));
    };
    let result = {
        let mut ids = RandomIds;
        let mut engine = Engine::new(now, &dir, &mut ids);
        let actx = ActionContext {
            rule: None,
            rules: &ctx.rules,
            matching: MatchContext {
                tz: &ctx.tz,
                calendars: dir.calendars.view(),
            },
        };
        f(&mut engine, &mut inc, &actx).map(|()| engine.out)
    };
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            tx.rollback().await?;
            return Ok(Err(e));
        }
    };
    write_change(&mut tx, &inc, &out, &ctx.auto_close, now, true).await?;
    tx.commit().await?;
    Ok(Ok(inc))
}

// ---- timers ----

/// A claimed timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimer {
    pub timer_id: i64,
    pub account_id: i64,
    pub incident_id: String,
    pub kind: String,
    pub due_at: Millis,
}

/// Claims up to `limit` due, unclaimed (or claim-expired) timers for `holder`, in due order
/// and RSP-165 order. PostgreSQL skips rows another node is claiming at this moment.
pub(crate) async fn claim_due(
    pool: &sqlx::AnyPool,
    holder: &str,
    now: Millis,
    limit: i64,
) -> Result<Vec<DueTimer>> {
    let mut conn = pool.acquire().await?;
    let lock = if is_sqlite(&conn) {
        ""
    } else {
        " FOR UPDATE SKIP LOCKED"
    };
    let mut sql = Sql::new("UPDATE timers SET claimed_by = ");
    sql.bind(holder)
        .push(", claim_until = ")
        .bind(now.saturating_add(TIMER_CLAIM_MS))
        .push(" WHERE timer_id IN (SELECT timer_id FROM timers WHERE due_at <= ")
        .bind(now)
        .push(" AND claim_until < ")
        .bind(now)
        .push(" ORDER BY due_at, rank LIMIT ")
        .bind(limit)
        .push(lock)
        .push(") RETURNING timer_id, account_id, incident_id, kind, due_at, rank");
    let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
    let mut out: Vec<(i64, DueTimer)> = rows
        .iter()
        .map(|row| {
            Ok((
                get_i64(row, "rank")?,
                DueTimer {
                    timer_id: get_i64(row, "timer_id")?,
                    account_id: get_i64(row, "account_id")?,
                    incident_id: get_str(row, "incident_id")?,
                    kind: get_str(row, "kind")?,
                    due_at: get_i64(row, "due_at")?,
                },
            ))
        })
        .collect::<Result<_>>()?;
    out.sort_by_key(|(rank, t)| (t.due_at, *rank, t.timer_id));
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

/// Runs one claimed timer: deletes it and applies its step in one transaction. Returns false
/// when the claim was lost (another node took the timer after this claim expired), in which
/// case nothing is written.
pub(crate) async fn run_timer(
    pool: &sqlx::AnyPool,
    holder: &str,
    timer: &DueTimer,
    now: Millis,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    lock_incidents(&mut tx).await?;
    let mut sql = Sql::new("DELETE FROM timers WHERE timer_id = ");
    sql.bind(timer.timer_id)
        .push(" AND claimed_by = ")
        .bind(holder);
    if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    // RSP-008 Halt: a tenant that is not served runs no step; the timer just ends.
    if crate::halt::tenant_blocked(&mut tx, timer.account_id)
        .await?
        .is_some()
    {
        tx.commit().await?;
        return Ok(true);
    }
    let (Some(mut inc), Some(kind)) = (
        load_incident(&mut tx, timer.account_id, &timer.incident_id).await?,
        TimerKind::parse(&timer.kind),
    ) else {
        tx.commit().await?; // the incident is gone: the timer just ends
        return Ok(true);
    };
    let ctx = incident_context(&mut tx, timer.account_id, inc.channel_id).await?;
    if kind == TimerKind::AutoClose {
        // RSP-055: the channel's settings at evaluation time decide.
        match auto_close_at(&inc, ctx.auto_close.0, &ctx.auto_close.1) {
            Some(at) if at > now => {
                insert_timer(&mut tx, &inc, kind, at, now).await?;
                tx.commit().await?;
                return Ok(true);
            }
            Some(_) => {}
            None => {
                tx.commit().await?;
                return Ok(true);
            }
        }
    }
    let dir = load_directory(&mut tx, timer.account_id).await?;
    let mut rule = current_rule(&inc, &ctx.rules).cloned();
    if rule.is_none()
        && let Some(id) = inc.response.escalation.as_ref().map(|e| e.rule_id.clone())
    {
        rule = rule_by_id(&mut tx, timer.account_id, &id).await?;
    }
    let (changed, out) = {
        let mut ids = RandomIds;
        let mut engine = Engine::new(now, &dir, &mut ids);
        let changed = engine.on_timer(&mut inc, kind, timer.due_at, rule.as_ref());
        (changed, engine.out)
    };
    if changed {
        write_change(&mut tx, &inc, &out, &ctx.auto_close, now, true).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Pending timers of an incident (for tests and the API's debugging view).
pub(crate) async fn incident_timers(
    pool: &sqlx::AnyPool,
    account_id: i64,
    incident_id: &str,
) -> Result<Vec<(String, Millis)>> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("SELECT kind, due_at FROM timers WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND incident_id = ")
        .bind(incident_id)
        .push(" ORDER BY due_at, rank");
    sql.query_on(&conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((get_str(r, "kind")?, get_i64(r, "due_at")?)))
        .collect()
}

/// The earliest due instant of any timer, for the worker's sleep.
pub(crate) async fn next_due(pool: &sqlx::AnyPool) -> Result<Option<Millis>> {
    let mut conn = pool.acquire().await?;
    let row = Sql::new("SELECT MIN(due_at) AS due FROM timers")
        .query_on(&conn)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<Option<i64>, _>("due").ok().flatten())
}

// ---- rules ----

/// Why a rule write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleRefusal {
    ChannelNotFound,
    RuleNotFound,
    NameTaken,
    PriorityTaken,
    /// `template_id` names no template of the account (response.md 1.12).
    TemplateNotFound,
}

pub(crate) async fn list_rules(
    pool: &sqlx::AnyPool,
    account_id: i64,
    channel_id: i64,
) -> Result<Vec<EscalationRule>> {
    let mut conn = pool.acquire().await?;
    channel_rules(&mut conn, account_id, channel_id).await
}

pub(crate) async fn get_rule(
    pool: &sqlx::AnyPool,
    account_id: i64,
    rule_id: &str,
) -> Result<Option<EscalationRule>> {
    let mut conn = pool.acquire().await?;
    rule_by_id(&mut conn, account_id, rule_id).await
}

/// Creates (`rule.rule_id` empty) or replaces a rule. `priority < 0` means "last place".
pub(crate) async fn save_rule(
    pool: &sqlx::AnyPool,
    mut rule: EscalationRule,
    now: Millis,
    ids: &mut (dyn IdSource + Send),
) -> Result<std::result::Result<EscalationRule, RuleRefusal>> {
    let mut tx = pool.begin().await?;
    if !crate::query::channel_exists(&mut tx, rule.account_id, rule.channel_id).await? {
        tx.rollback().await?;
        return Ok(Err(RuleRefusal::ChannelNotFound));
    }
    // An empty id or one of the default's ids is the built-in default template; anything else
    // must exist, checked under a row lock so a concurrent delete cannot slip in between.
    if !rule.template_id.is_empty()
        && !klaxon_core::template::is_default_id(&rule.template_id)
        && crate::templates::get_on(&mut tx, rule.account_id, &rule.template_id, true)
            .await?
            .is_none()
    {
        tx.rollback().await?;
        return Ok(Err(RuleRefusal::TemplateNotFound));
    }
    let existing = channel_rules(&mut tx, rule.account_id, rule.channel_id).await?;
    let creating = rule.rule_id.is_empty();
    if creating {
        rule.rule_id = ids.object_id(now);
        rule.created_at = now;
    } else {
        match existing.iter().find(|r| r.rule_id == rule.rule_id) {
            Some(old) => rule.created_at = old.created_at,
            None => {
                tx.rollback().await?;
                return Ok(Err(RuleRefusal::RuleNotFound));
            }
        }
    }
    rule.updated_at = now;
    if rule.priority < 0 {
        rule.priority = existing.iter().map(|r| r.priority + 1).max().unwrap_or(0);
    }
    let others = existing.iter().filter(|r| r.rule_id != rule.rule_id);
    for other in others {
        if other.rule_name == rule.rule_name {
            tx.rollback().await?;
            return Ok(Err(RuleRefusal::NameTaken));
        }
        if other.priority == rule.priority {
            tx.rollback().await?;
            return Ok(Err(RuleRefusal::PriorityTaken));
        }
    }
    let definition =
        serde_json::to_string(&rule).map_err(|e| StoreError::Corrupt(format!("rule: {e}")))?;
    let status = match rule.status {
        RuleStatus::Enabled => "enabled",
        RuleStatus::Disabled => "disabled",
    };
    let sql = if creating {
        let mut sql = Sql::new(
            "INSERT INTO escalation_rules (rule_id, account_id, channel_id, rule_name, priority, \
             status, definition, created_at, updated_at) VALUES (",
        );
        sql.bind(rule.rule_id.as_str())
            .push(", ")
            .bind(rule.account_id)
            .push(", ")
            .bind(rule.channel_id)
            .push(", ")
            .bind(rule.rule_name.as_str())
            .push(", ")
            .bind(rule.priority)
            .push(", ")
            .bind(status)
            .push(", ")
            .bind(definition)
            .push(", ")
            .bind(rule.created_at)
            .push(", ")
            .bind(now)
            .push(")");
        sql
    } else {
        let mut sql = Sql::new("UPDATE escalation_rules SET rule_name = ");
        sql.bind(rule.rule_name.as_str())
            .push(", priority = ")
            .bind(rule.priority)
            .push(", status = ")
            .bind(status)
            .push(", definition = ")
            .bind(definition)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(rule.account_id)
            .push(" AND rule_id = ")
            .bind(rule.rule_id.as_str());
        sql
    };
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(rule))
}

pub(crate) async fn delete_rule(
    pool: &sqlx::AnyPool,
    account_id: i64,
    channel_id: i64,
    rule_id: &str,
) -> Result<bool> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("DELETE FROM escalation_rules WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id)
        .push(" AND rule_id = ")
        .bind(rule_id);
    Ok(sql
        .query_on(&conn)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

/// Why a reorder was refused (RSP-137).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReorderRefusal {
    ChannelNotFound,
    /// `rule_ids` is not exactly the channel's rules; the text names the problem.
    Mismatch(String),
}

/// RSP-137: rewrites the priorities of a channel's rules to the order of `order`, all in one
/// transaction. Incidents keep the rule they were assigned; only later matching sees the new
/// order (RSP-131).
pub(crate) async fn reorder_rules(
    pool: &sqlx::AnyPool,
    account_id: i64,
    channel_id: i64,
    order: &[String],
    actor: i64,
    now: Millis,
) -> Result<std::result::Result<(), ReorderRefusal>> {
    let mut tx = pool.begin().await?;
    if !crate::query::channel_exists(&mut tx, account_id, channel_id).await? {
        tx.rollback().await?;
        return Ok(Err(ReorderRefusal::ChannelNotFound));
    }
    let existing = channel_rules(&mut tx, account_id, channel_id).await?;
    let priorities = match klaxon_core::response::reorder_priorities(&existing, order) {
        Ok(p) => p,
        Err(e) => {
            tx.rollback().await?;
            return Ok(Err(ReorderRefusal::Mismatch(e)));
        }
    };
    // Priorities are unique per channel (a unique index), so every rule first steps aside to
    // a negative value no real rule holds, then takes its new place.
    for (i, (rule_id, _)) in (1i64..).zip(&priorities) {
        let mut sql = Sql::new("UPDATE escalation_rules SET priority = ");
        sql.bind(-i)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND channel_id = ")
            .bind(channel_id)
            .push(" AND rule_id = ")
            .bind(rule_id.as_str());
        sql.query_on(&tx).execute(&mut *tx).await?;
    }
    for (rule_id, priority) in &priorities {
        let Some(mut rule) = existing.iter().find(|r| &r.rule_id == rule_id).cloned() else {
            continue;
        };
        let changed = rule.priority != *priority;
        rule.priority = *priority;
        if changed {
            rule.updated_at = now;
            rule.updated_by = actor;
        }
        let definition =
            serde_json::to_string(&rule).map_err(|e| StoreError::Corrupt(format!("rule: {e}")))?;
        let mut sql = Sql::new("UPDATE escalation_rules SET priority = ");
        sql.bind(*priority)
            .push(", definition = ")
            .bind(definition)
            .push(", updated_at = ")
            .bind(rule.updated_at)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND channel_id = ")
            .bind(channel_id)
            .push(" AND rule_id = ")
            .bind(rule_id.as_str());
        sql.query_on(&tx).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

// ---- reads: timeline and outbox ----

/// One stored timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub entry_id: String,
    pub incident_id: String,
    pub ref_id: String,
    pub kind: String,
    pub creator_id: i64,
    pub created_at: Millis,
    pub detail: Value,
}

pub(crate) async fn feed(
    pool: &sqlx::AnyPool,
    account_id: i64,
    incident_id: &str,
    kinds: &[String],
    asc: bool,
    offset: i64,
    limit: i64,
) -> Result<(Vec<FeedEntry>, bool)> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new(
        "SELECT entry_id, incident_id, ref_id, kind, creator_id, created_at, detail FROM \
         incident_timeline WHERE account_id = ",
    );
    sql.bind(account_id)
        .push(" AND incident_id = ")
        .bind(incident_id);
    if !kinds.is_empty() {
        sql.and_in("kind", kinds);
    }
    sql.push(if asc {
        " ORDER BY created_at, seq"
    } else {
        " ORDER BY created_at DESC, seq DESC"
    })
    .push(" LIMIT ")
    .bind(limit + 1)
    .push(" OFFSET ")
    .bind(offset);
    let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
    let mut out: Vec<FeedEntry> = rows
        .iter()
        .map(|r| {
            let detail = get_str(r, "detail")?;
            Ok(FeedEntry {
                entry_id: get_str(r, "entry_id")?,
                incident_id: get_str(r, "incident_id")?,
                ref_id: get_str(r, "ref_id")?,
                kind: get_str(r, "kind")?,
                creator_id: get_i64(r, "creator_id")?,
                created_at: get_i64(r, "created_at")?,
                detail: serde_json::from_str(&detail)
                    .map_err(|e| StoreError::Corrupt(format!("timeline detail: {e}")))?,
            })
        })
        .collect::<Result<_>>()?;
    let more = out.len() as i64 > limit;
    out.truncate(usize::try_from(limit).unwrap_or(0));
    Ok((out, more))
}

/// One outbox row (response.md 1.17).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub rid: String,
    pub incident_id: String,
    pub firing_id: String,
    pub reason: String,
    pub fire_type: String,
    pub escalate_rule_id: String,
    pub layer_idx: i64,
    pub channel: String,
    pub person_id: i64,
    pub target: Value,
    pub severity: String,
    pub status: String,
    pub failed_reason: String,
    pub created_at: Millis,
    pub sent_at: Millis,
    /// RSP-343 `RepeatIndex` of the firing.
    pub repeat_index: i64,
    /// RSP-346: the custom template failed and the default body was sent.
    pub template_fallback: bool,
}

pub(crate) async fn outbox(
    pool: &sqlx::AnyPool,
    account_id: i64,
    incident_id: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxEntry>> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new(
        "SELECT rid, incident_id, firing_id, reason, fire_type, escalate_rule_id, layer_idx, \
         channel, person_id, target, severity, status, failed_reason, created_at, sent_at, \
         repeat_index, template_fallback FROM notifications WHERE account_id = ",
    );
    sql.bind(account_id);
    if let Some(id) = incident_id {
        sql.push(" AND incident_id = ").bind(id);
    }
    sql.push(" ORDER BY created_at, seq LIMIT ").bind(limit);
    sql.query_on(&conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            let target = get_str(r, "target")?;
            Ok(OutboxEntry {
                rid: get_str(r, "rid")?,
                incident_id: get_str(r, "incident_id")?,
                firing_id: get_str(r, "firing_id")?,
                reason: get_str(r, "reason")?,
                fire_type: get_str(r, "fire_type")?,
                escalate_rule_id: get_str(r, "escalate_rule_id")?,
                layer_idx: get_i64(r, "layer_idx")?,
                channel: get_str(r, "channel")?,
                person_id: get_i64(r, "person_id")?,
                target: serde_json::from_str(&target).unwrap_or(Value::Null),
                severity: get_str(r, "severity")?,
                status: get_str(r, "status")?,
                failed_reason: get_str(r, "failed_reason")?,
                created_at: get_i64(r, "created_at")?,
                sent_at: get_i64(r, "sent_at")?,
                repeat_index: get_i64(r, "repeat_index")?,
                template_fallback: get_i64(r, "template_fallback")? != 0,
            })
        })
        .collect()
}

/// Closed incidents of a channel that started in `[from, to)`, newest first, at most `limit`:
/// the candidates for past incidents (RSP-451).
pub(crate) async fn closed_in_window(
    pool: &sqlx::AnyPool,
    account_id: i64,
    channel_id: i64,
    from: Millis,
    to: Millis,
    limit: i64,
) -> Result<Vec<Incident>> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::INCIDENT_COLUMNS)
        .push(" FROM incidents WHERE account_id = ")
        .bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id)
        .push(" AND progress = 'Closed' AND start_time >= ")
        .bind(from)
        // `to` itself is in: an incident of the same second may have been created earlier
        // (the caller orders those by creation, RSP-451).
        .push(" AND start_time <= ")
        .bind(to)
        .push(" ORDER BY start_time DESC LIMIT ")
        .bind(limit);
    sql.query_on(&conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::incident)
        .collect()
}

/// Why a merge was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeRefusal {
    /// This incident id does not exist in the account.
    NotFound(String),
    /// This alert id does not exist in the account (RSP-101).
    AlertNotFound(String),
    Refused(ActionError),
}

/// The summaries of every alert an incident holds now, for RSP-003/RSP-004 derivation.
async fn incident_alert_summaries(
    conn: &mut AnyConnection,
    account_id: i64,
    incident_id: &str,
) -> Result<Vec<klaxon_core::model::AlertSummary>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::ALERT_SUMMARY_COLUMNS)
        .push(" FROM alerts WHERE account_id = ")
        .bind(account_id)
        .push(" AND incident_id = ")
        .bind(incident_id);
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::alert_summary)
        .collect()
}

/// RSP-101: moves `alert_ids` into `target_id` in one transaction. The target must exist and
/// not be Closed; every alert must exist (else nothing changes). Each moved alert writes
/// `a_merge {alert_id, from_incident_id}` on the target. Each incident an alert left is then
/// closed as a merged-away source when it holds no alert any more (RSP-100 b), or else derived
/// again from the alerts it kept, which auto-resolves it (RSP-053) when only recovered ones
/// remain. Its title, description and labels are never re-derived here, so an incident that
/// lost its first alert keeps them frozen (`follow_first_alert` ignores an alert that left).
/// An alert already in the target is left alone.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn merge_alerts(
    pool: &sqlx::AnyPool,
    account_id: i64,
    target_id: &str,
    alert_ids: &[String],
    actor: i64,
    title: Option<&str>,
    comment: &str,
    now: Millis,
) -> Result<std::result::Result<(), MergeRefusal>> {
    let mut tx = pool.begin().await?;
    let mut target = match open_merge_target(
        &mut tx,
        account_id,
        target_id,
        "cannot merge an alert into a closed incident",
    )
    .await?
    {
        Ok(target) => target,
        Err(refusal) => {
            tx.rollback().await?;
            return Ok(Err(refusal));
        }
    };
    // Every alert is looked up before anything moves, so an unknown id changes nothing.
    let mut moves: Vec<(String, String)> = Vec::new();
    for alert_id in alert_ids {
        if moves.iter().any(|(a, _)| a == alert_id) {
            continue;
        }
        let mut sql = Sql::new("SELECT incident_id FROM alerts WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND alert_id = ")
            .bind(alert_id.as_str());
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            tx.rollback().await?;
            return Ok(Err(MergeRefusal::AlertNotFound(alert_id.clone())));
        };
        let from = get_str(&row, "incident_id")?;
        if from != target_id {
            moves.push((alert_id.clone(), from));
        }
    }
    let dir = load_directory(&mut tx, account_id).await?;
    let mut ids_source = RandomIds;
    let mut target_out = Outcome::default();
    for (alert_id, from) in &moves {
        let mut sql = Sql::new("UPDATE alerts SET incident_id = ");
        sql.bind(target_id)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND alert_id = ")
            .bind(alert_id.as_str());
        sql.query_on(&tx).execute(&mut *tx).await?;
        let moved = {
            let mut engine = Engine::new(now, &dir, &mut ids_source);
            engine
                .alert_merged_in(&mut target, actor, alert_id, from, comment)
                .map(|()| engine.out)
        };
        match moved {
            Ok(mut out) => target_out.timeline.append(&mut out.timeline),
            Err(e) => {
                tx.rollback().await?;
                return Ok(Err(MergeRefusal::Refused(e)));
            }
        }
    }
    // The incidents the alerts left, each once, in the order first seen.
    let mut olds: Vec<&str> = Vec::new();
    for (_, from) in &moves {
        if !olds.contains(&from.as_str()) {
            olds.push(from);
        }
    }
    let mut changes: Vec<(Incident, Outcome, (i64, String))> = Vec::new();
    for old_id in olds {
        let Some(mut old) = load_incident(&mut tx, account_id, old_id).await? else {
            // An alert whose incident row is gone: nothing to derive.
            continue;
        };
        let summaries = incident_alert_summaries(&mut tx, account_id, old_id).await?;
        let out = {
            let mut engine = Engine::new(now, &dir, &mut ids_source);
            if summaries.is_empty() {
                // RSP-100 b: left without alerts, it closes as a merged-away source.
                engine.merged_away(&mut old, actor, &target);
            } else {
                let was_open = old.progress != Progress::Closed;
                old = klaxon_core::merge::derive_incident(&old, &summaries, now);
                if was_open && old.progress == Progress::Closed {
                    // Only recovered alerts are left (RSP-053).
                    engine.on_event_closed(&mut old);
                }
            }
            engine.out
        };
        let auto_close = channel_auto_close(&mut tx, account_id, old.channel_id).await?;
        changes.push((old, out, auto_close));
    }
    // The target, derived again from every alert it now has.
    let summaries = incident_alert_summaries(&mut tx, account_id, target_id).await?;
    target = klaxon_core::merge::derive_incident(&target, &summaries, now);
    let target_ctx = incident_context(&mut tx, account_id, target.channel_id).await?;
    let result = {
        let mut engine = Engine::new(now, &dir, &mut ids_source);
        let r = if target.progress == Progress::Closed {
            // Every alert it now holds had recovered (RSP-053); a title edit no longer applies.
            engine.on_event_closed(&mut target);
            Ok(())
        } else {
            engine.alert_merge_title(&mut target, actor, title)
        };
        if r.is_ok() && !moves.is_empty() && !target_ctx.storm_thresholds.is_empty() {
            let rule = current_rule(&target, &target_ctx.rules).cloned();
            engine.check_storm(&mut target, &target_ctx.storm_thresholds, rule.as_ref());
        }
        r.map(|()| engine.out)
    };
    let out = match result {
        Ok(mut out) => {
            target_out.timeline.append(&mut out.timeline);
            target_out.notifications.append(&mut out.notifications);
            target_out.close_alerts |= out.close_alerts;
            target_out
        }
        Err(e) => {
            tx.rollback().await?;
            return Ok(Err(MergeRefusal::Refused(e)));
        }
    };
    let auto_close = channel_auto_close(&mut tx, account_id, target.channel_id).await?;
    changes.push((target, out, auto_close));
    let list: Vec<Change<'_>> = changes
        .iter()
        .map(|(inc, out, auto_close)| Change {
            incident: inc,
            outcome: out,
            auto_close,
        })
        .collect();
    write_changes(&mut tx, &list, now, true).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

pub(crate) async fn load_incident(
    conn: &mut AnyConnection,
    account_id: i64,
    incident_id: &str,
) -> Result<Option<Incident>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::INCIDENT_COLUMNS)
        .push(" FROM incidents WHERE account_id = ")
        .bind(account_id)
        .push(" AND incident_id = ")
        .bind(incident_id);
    sql.query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(rows::incident)
        .transpose()
}

/// Takes the incident lock and loads a merge target (RSP-100, RSP-101): it must exist and
/// not be Closed.
async fn open_merge_target(
    conn: &mut AnyConnection,
    account_id: i64,
    target_id: &str,
    closed_message: &str,
) -> Result<std::result::Result<Incident, MergeRefusal>> {
    lock_incidents(conn).await?;
    Ok(match load_incident(conn, account_id, target_id).await? {
        None => Err(MergeRefusal::NotFound(target_id.to_string())),
        Some(target) if target.progress == Progress::Closed => Err(MergeRefusal::Refused(
            ActionError::FailedPrecondition(closed_message.to_string()),
        )),
        Some(target) => Ok(target),
    })
}

/// RSP-100: merges `sources` into `target` in one transaction: every source's alerts move to
/// the target, each source gets `i_merge` and closes (console, by the actor) if open, and the
/// target is derived again from all its alerts (RSP-003, RSP-004), takes the sources'
/// responders unacknowledged, and gets `i_merge`. Nobody is notified.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn merge(
    pool: &sqlx::AnyPool,
    account_id: i64,
    target_id: &str,
    source_ids: &[String],
    actor: i64,
    title: Option<&str>,
    comment: &str,
    now: Millis,
) -> Result<std::result::Result<(), MergeRefusal>> {
    let mut tx = pool.begin().await?;
    let mut target = match open_merge_target(
        &mut tx,
        account_id,
        target_id,
        "cannot merge into a closed incident",
    )
    .await?
    {
        Ok(target) => target,
        Err(refusal) => {
            tx.rollback().await?;
            return Ok(Err(refusal));
        }
    };
    // RSP-100 (a): the target among the sources is dropped; each source once, in order.
    let mut ids: Vec<&String> = Vec::new();
    for id in source_ids {
        if id != target_id && !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut sources = Vec::new();
    for id in ids {
        match load_incident(&mut tx, account_id, id).await? {
            Some(inc) => sources.push(inc),
            None => {
                tx.rollback().await?;
                return Ok(Err(MergeRefusal::NotFound(id.clone())));
            }
        }
    }
    let dir = load_directory(&mut tx, account_id).await?;
    let mut ids_source = RandomIds;
    let mut changes: Vec<(Incident, Outcome, (i64, String))> = Vec::new();
    for mut source in sources {
        let mut sql = Sql::new("UPDATE alerts SET incident_id = ");
        sql.bind(target.incident_id.as_str())
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND incident_id = ")
            .bind(source.incident_id.as_str());
        sql.query_on(&tx).execute(&mut *tx).await?;
        let out = {
            let mut engine = Engine::new(now, &dir, &mut ids_source);
            engine.merged_away(&mut source, actor, &target);
            engine.out
        };
        let auto_close = channel_auto_close(&mut tx, account_id, source.channel_id).await?;
        changes.push((source, out, auto_close));
    }
    // The target, derived again from every alert it now has.
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::ALERT_SUMMARY_COLUMNS)
        .push(" FROM alerts WHERE account_id = ")
        .bind(account_id)
        .push(" AND incident_id = ")
        .bind(target.incident_id.as_str());
    let summaries = sql
        .query_on(&tx)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(rows::alert_summary)
        .collect::<Result<Vec<_>>>()?;
    let was_open = target.progress != Progress::Closed;
    target = klaxon_core::merge::derive_incident(&target, &summaries, now);
    let target_ctx = incident_context(&mut tx, account_id, target.channel_id).await?;
    let merged_sources: Vec<Incident> = changes.iter().map(|(s, _, _)| s.clone()).collect();
    let source_refs: Vec<&Incident> = merged_sources.iter().collect();
    let result = {
        let mut engine = Engine::new(now, &dir, &mut ids_source);
        let r = engine.merge_target(&mut target, actor, &source_refs, title, comment);
        if r.is_ok() && was_open && target.progress == Progress::Closed {
            // Every alert it now holds had recovered (RSP-053).
            engine.on_event_closed(&mut target);
        }
        if r.is_ok() && !target_ctx.storm_thresholds.is_empty() {
            // RSP-100 (c): storm thresholds are checked again.
            let rule = current_rule(&target, &target_ctx.rules).cloned();
            engine.check_storm(&mut target, &target_ctx.storm_thresholds, rule.as_ref());
        }
        r.map(|()| engine.out)
    };
    let out = match result {
        Ok(out) => out,
        Err(e) => {
            tx.rollback().await?;
            return Ok(Err(MergeRefusal::Refused(e)));
        }
    };
    let auto_close = channel_auto_close(&mut tx, account_id, target.channel_id).await?;
    changes.push((target, out, auto_close));
    let list: Vec<Change<'_>> = changes
        .iter()
        .map(|(inc, out, auto_close)| Change {
            incident: inc,
            outcome: out,
            auto_close,
        })
        .collect();
    write_changes(&mut tx, &list, now, true).await?;
    tx.commit().await?;
    Ok(Ok(()))
}
