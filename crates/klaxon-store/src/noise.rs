//! Channel drop, silence and inhibit rules (ingest.md §2.9, §2.11, §2.12) and the event
//! outcome record (ING-262).
//!
//! Rules are one table for the three kinds, the core `NoiseRule` as JSON in `definition`.
//! The inbox batch reads the rules of every channel it touches once ([`load_for_channels`]),
//! and the inhibit sources of the channels that have inhibit rules ([`inhibit_sources`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::tz::TimeZone;
use klaxon_core::ids::IdSource;
use klaxon_core::merge::Candidate;
use klaxon_core::model::{DAY_MS, Incident, Millis, QueuedEvent};
use klaxon_core::noise::{
    ChannelNoise, Decision, Explanation, Gate, NoiseRule, RuleKind, expires_at,
};
use klaxon_core::response::{MatchContext, RuleStatus};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::calendars::AccountCalendars;
use crate::db::Sql;
use crate::records::{Page, Paging};
use crate::rows::{self, get_i64, get_str};
use crate::{Result, StoreError};

/// Most values in one `IN (…)` list.
const IN_CHUNK: usize = 512;

/// Why a rule write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoiseRefusal {
    ChannelNotFound,
    RuleNotFound,
}

fn status_str(s: RuleStatus) -> &'static str {
    match s {
        RuleStatus::Enabled => "enabled",
        RuleStatus::Disabled => "disabled",
    }
}

/// ING-134: a quick-silence rule past its end no longer exists.
fn not_expired(sql: &mut Sql, now: Millis) {
    sql.push(" AND (expires_at = 0 OR expires_at > ")
        .bind(now)
        .push(")");
}

/// ING-134: deletes the quick-silence rules whose window has ended, without a record.
pub(crate) async fn delete_expired(conn: &mut AnyConnection, now: Millis) -> Result<()> {
    let mut sql = Sql::new("DELETE FROM channel_rules WHERE expires_at > 0 AND expires_at <= ");
    sql.bind(now);
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

fn rule_row(row: &sqlx::any::AnyRow) -> Result<NoiseRule> {
    let id = get_str(row, "rule_id")?;
    let text = get_str(row, "definition")?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("channel_rules.definition {id}: {e}")))
}

/// The channel's rules of `kind`, in evaluation order (priority, then age).
pub(crate) async fn list_rules(
    pool: &sqlx::AnyPool,
    account_id: i64,
    channel_id: i64,
    kind: RuleKind,
    now: Millis,
) -> Result<Vec<NoiseRule>> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("SELECT rule_id, definition FROM channel_rules WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id)
        .push(" AND kind = ")
        .bind(kind.as_str());
    not_expired(&mut sql, now);
    sql.push(" ORDER BY priority, created_at, rule_id");
    sql.query_on(&conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rule_row)
        .collect()
}

pub(crate) async fn get_rule(
    pool: &sqlx::AnyPool,
    account_id: i64,
    rule_id: &str,
    now: Millis,
) -> Result<Option<NoiseRule>> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("SELECT rule_id, definition FROM channel_rules WHERE account_id = ");
    sql.bind(account_id).push(" AND rule_id = ").bind(rule_id);
    not_expired(&mut sql, now);
    match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(rule_row(&row)?)),
        None => Ok(None),
    }
}

/// The quick-silence rule made from `incident_id` (RSP-120), if it still exists.
pub(crate) async fn rule_from_incident(
    pool: &sqlx::AnyPool,
    account_id: i64,
    channel_id: i64,
    incident_id: &str,
    now: Millis,
) -> Result<Option<NoiseRule>> {
    Ok(
        list_rules(pool, account_id, channel_id, RuleKind::Silence, now)
            .await?
            .into_iter()
            .find(|r| r.from_incident_id == incident_id),
    )
}

/// Creates (empty `rule_id`) or replaces a validated rule. The kind, channel and creation
/// time of an existing rule never change.
pub(crate) async fn save_rule(
    pool: &sqlx::AnyPool,
    mut rule: NoiseRule,
    now: Millis,
    ids: &mut (dyn IdSource + Send),
) -> Result<std::result::Result<NoiseRule, NoiseRefusal>> {
    let mut tx = pool.begin().await?;
    if !crate::query::channel_exists(&mut tx, rule.account_id, rule.channel_id).await? {
        tx.rollback().await?;
        return Ok(Err(NoiseRefusal::ChannelNotFound));
    }
    let creating = rule.rule_id.is_empty();
    if creating {
        rule.rule_id = ids.object_id(now);
        rule.created_at = now;
    } else {
        let mut sql = Sql::new("SELECT rule_id, definition FROM channel_rules WHERE account_id = ");
        sql.bind(rule.account_id)
            .push(" AND rule_id = ")
            .bind(rule.rule_id.as_str());
        not_expired(&mut sql, now);
        let old = match sql.query_on(&tx).fetch_optional(&mut *tx).await? {
            Some(row) => rule_row(&row)?,
            None => {
                tx.rollback().await?;
                return Ok(Err(NoiseRefusal::RuleNotFound));
            }
        };
        if old.kind != rule.kind || old.channel_id != rule.channel_id {
            tx.rollback().await?;
            return Ok(Err(NoiseRefusal::RuleNotFound));
        }
        rule.created_at = old.created_at;
        rule.creator_id = old.creator_id;
    }
    rule.updated_at = now;
    let definition =
        serde_json::to_string(&rule).map_err(|e| StoreError::Corrupt(format!("rule: {e}")))?;
    let sql = if creating {
        let mut sql = Sql::new(
            "INSERT INTO channel_rules (rule_id, account_id, channel_id, kind, rule_name, \
             priority, status, definition, expires_at, created_at, updated_at) VALUES (",
        );
        sql.bind(rule.rule_id.as_str())
            .push(", ")
            .bind(rule.account_id)
            .push(", ")
            .bind(rule.channel_id)
            .push(", ")
            .bind(rule.kind.as_str())
            .push(", ")
            .bind(rule.rule_name.as_str())
            .push(", ")
            .bind(rule.priority)
            .push(", ")
            .bind(status_str(rule.status))
            .push(", ")
            .bind(definition)
            .push(", ")
            .bind(expires_at(&rule))
            .push(", ")
            .bind(rule.created_at)
            .push(", ")
            .bind(now)
            .push(")");
        sql
    } else {
        let mut sql = Sql::new("UPDATE channel_rules SET rule_name = ");
        sql.bind(rule.rule_name.as_str())
            .push(", priority = ")
            .bind(rule.priority)
            .push(", status = ")
            .bind(status_str(rule.status))
            .push(", definition = ")
            .bind(definition)
            .push(", expires_at = ")
            .bind(expires_at(&rule))
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
    rule_id: &str,
) -> Result<bool> {
    let mut conn = pool.acquire().await?;
    let mut sql = Sql::new("DELETE FROM channel_rules WHERE account_id = ");
    sql.bind(account_id).push(" AND rule_id = ").bind(rule_id);
    Ok(sql
        .query_on(&conn)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

/// The rules of every `(account, channel)` in `channels`, one query per account.
pub(crate) async fn load_for_channels(
    conn: &mut AnyConnection,
    channels: &BTreeSet<(i64, i64)>,
    now: Millis,
) -> Result<HashMap<(i64, i64), Vec<NoiseRule>>> {
    let mut by_account: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (account, channel) in channels {
        by_account.entry(*account).or_default().push(*channel);
    }
    let mut out: HashMap<(i64, i64), Vec<NoiseRule>> = HashMap::new();
    for (account, ids) in by_account {
        for chunk in ids.chunks(IN_CHUNK) {
            let mut sql =
                Sql::new("SELECT rule_id, definition FROM channel_rules WHERE account_id = ");
            sql.bind(account);
            sql.and_in_padded("channel_id", chunk);
            not_expired(&mut sql, now);
            for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
                let rule = rule_row(&row)?;
                out.entry((account, rule.channel_id))
                    .or_default()
                    .push(rule);
            }
        }
    }
    Ok(out)
}

/// ING-140: the channel's `Triggered` incidents created less than 24 h before `now`.
pub(crate) async fn inhibit_sources(
    conn: &mut AnyConnection,
    account_id: i64,
    channel_id: i64,
    now: Millis,
) -> Result<Vec<Incident>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::INCIDENT_COLUMNS)
        .push(" FROM incidents WHERE account_id = ")
        .bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id)
        .push(" AND created_at > ")
        .bind(now.saturating_sub(DAY_MS))
        .push(" AND progress = 'Triggered'");
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::incident)
        .collect()
}

// ---- outcomes (ING-262) ----

/// One recorded event outcome: what happened to one event in one channel, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventOutcome {
    pub outcome_id: String,
    pub account_id: i64,
    pub channel_id: i64,
    pub integration_id: i64,
    pub integration_type: String,
    pub request_id: String,
    pub alert_key: String,
    pub event_status: String,
    pub title: String,
    pub event_time: Millis,
    pub received_at: Millis,
    /// ING-262 outcome name (`new_alert`, `silenced_drop`, …).
    pub outcome: String,
    /// `none`, `silenced` or `inhibited`.
    pub mark: String,
    pub rule_id: String,
    pub rule_name: String,
    pub source_incident_id: String,
    pub event_id: String,
    pub alert_id: String,
    pub incident_id: String,
    /// Klaxon extension of ING-262's detail flags: the event opened `incident_id` and that
    /// incident was flagged as flapping (ING-180), which explains a missing notification in
    /// `remind_suppress` channels (RSP-204).
    pub is_flapping: bool,
    /// ING-262 detail flags set by enrichment (ING-065 label cap, ING-062 rule failure).
    pub labels_truncated: bool,
    pub enrich_error: bool,
    /// The inbox event this outcome is about (not stored: it ties the outcome to what the
    /// stages before routing learnt about the event).
    #[serde(skip)]
    pub seq: i64,
    pub created_at: Millis,
}

impl EventOutcome {
    pub(crate) fn new(q: &QueuedEvent, why: &Explanation, id: String, now: Millis) -> EventOutcome {
        EventOutcome {
            outcome_id: id,
            account_id: q.origin.account_id,
            channel_id: q.origin.channel_id,
            integration_id: q.origin.integration_id,
            integration_type: q.origin.integration_type.clone(),
            request_id: q.origin.request_id.clone(),
            alert_key: q.event.alert_key.clone(),
            event_status: q.event.event_status.as_str().to_string(),
            title: q.event.title.clone(),
            event_time: q.event.event_time,
            received_at: q.origin.received_at,
            outcome: why.outcome.map(|o| o.as_str()).unwrap_or("").to_string(),
            mark: why.mark.as_str().to_string(),
            rule_id: why.rule_id.clone(),
            rule_name: why.rule_name.clone(),
            source_incident_id: why.source_incident_id.clone(),
            event_id: why.event_id.clone(),
            alert_id: why.alert_id.clone(),
            incident_id: why.incident_id.clone(),
            is_flapping: false,
            labels_truncated: false,
            enrich_error: false,
            seq: q.seq,
            created_at: now,
        }
    }
}

const OUTCOME_COLUMNS: &str = "outcome_id, account_id, channel_id, integration_id, \
     integration_type, request_id, alert_key, event_status, title, event_time, received_at, \
     outcome, mark, rule_id, rule_name, source_incident_id, event_id, alert_id, incident_id, \
     is_flapping, labels_truncated, enrich_error, created_at";

/// Rows per INSERT (23 parameters each).
const OUTCOME_ROWS: usize = 32;

pub(crate) async fn insert_outcomes(conn: &mut AnyConnection, rows: &[EventOutcome]) -> Result<()> {
    for chunk in rows.chunks(OUTCOME_ROWS) {
        let mut sql = Sql::new("INSERT INTO event_outcomes (");
        sql.push(OUTCOME_COLUMNS).push(") VALUES ");
        for (i, o) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(o.outcome_id.as_str())
                .push(", ")
                .bind(o.account_id)
                .push(", ")
                .bind(o.channel_id)
                .push(", ")
                .bind(o.integration_id)
                .push(", ")
                .bind(o.integration_type.as_str())
                .push(", ")
                .bind(o.request_id.as_str())
                .push(", ")
                .bind(o.alert_key.as_str())
                .push(", ")
                .bind(o.event_status.as_str())
                .push(", ")
                .bind(o.title.as_str())
                .push(", ")
                .bind(o.event_time)
                .push(", ")
                .bind(o.received_at)
                .push(", ")
                .bind(o.outcome.as_str())
                .push(", ")
                .bind(o.mark.as_str())
                .push(", ")
                .bind(o.rule_id.as_str())
                .push(", ")
                .bind(o.rule_name.as_str())
                .push(", ")
                .bind(o.source_incident_id.as_str())
                .push(", ")
                .bind(o.event_id.as_str())
                .push(", ")
                .bind(o.alert_id.as_str())
                .push(", ")
                .bind(o.incident_id.as_str())
                .push(", ")
                .bind(o.is_flapping)
                .push(", ")
                .bind(o.labels_truncated)
                .push(", ")
                .bind(o.enrich_error)
                .push(", ")
                .bind(o.created_at)
                .push(")");
        }
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// `/alert-event/outcome/list` filters. Times are epoch milliseconds of `received_at`; 0 =
/// unbounded.
#[derive(Debug, Clone, Default)]
pub struct OutcomeFilter {
    pub paging: Paging,
    pub start_time: Millis,
    pub end_time: Millis,
    pub request_id: Option<String>,
    pub channel_ids: Vec<i64>,
    pub integration_ids: Vec<i64>,
    pub outcomes: Vec<String>,
    pub alert_id: Option<String>,
    pub rule_id: Option<String>,
}

fn outcome_row(row: &sqlx::any::AnyRow) -> Result<EventOutcome> {
    Ok(EventOutcome {
        outcome_id: get_str(row, "outcome_id")?,
        account_id: get_i64(row, "account_id")?,
        channel_id: get_i64(row, "channel_id")?,
        integration_id: get_i64(row, "integration_id")?,
        integration_type: get_str(row, "integration_type")?,
        request_id: get_str(row, "request_id")?,
        alert_key: get_str(row, "alert_key")?,
        event_status: get_str(row, "event_status")?,
        title: get_str(row, "title")?,
        event_time: get_i64(row, "event_time")?,
        received_at: get_i64(row, "received_at")?,
        outcome: get_str(row, "outcome")?,
        mark: get_str(row, "mark")?,
        rule_id: get_str(row, "rule_id")?,
        rule_name: get_str(row, "rule_name")?,
        source_incident_id: get_str(row, "source_incident_id")?,
        event_id: get_str(row, "event_id")?,
        alert_id: get_str(row, "alert_id")?,
        incident_id: get_str(row, "incident_id")?,
        is_flapping: get_i64(row, "is_flapping")? != 0,
        labels_truncated: get_i64(row, "labels_truncated")? != 0,
        enrich_error: get_i64(row, "enrich_error")? != 0,
        seq: 0,
        created_at: get_i64(row, "created_at")?,
    })
}

/// Offset-paged, newest first unless `asc`.
pub(crate) async fn list_outcomes(
    pool: &sqlx::AnyPool,
    account_id: i64,
    f: &OutcomeFilter,
) -> Result<Page<EventOutcome>> {
    let mut conn = pool.acquire().await?;
    let where_ = |sql: &mut Sql| {
        sql.bind(account_id);
        if f.start_time > 0 {
            sql.push(" AND received_at >= ").bind(f.start_time);
        }
        if f.end_time > 0 {
            sql.push(" AND received_at < ").bind(f.end_time);
        }
        if let Some(r) = &f.request_id {
            sql.push(" AND request_id = ").bind(r.as_str());
        }
        if let Some(a) = &f.alert_id {
            sql.push(" AND alert_id = ").bind(a.as_str());
        }
        if let Some(r) = &f.rule_id {
            sql.push(" AND rule_id = ").bind(r.as_str());
        }
        if !f.channel_ids.is_empty() {
            sql.and_in("channel_id", &f.channel_ids);
        }
        if !f.integration_ids.is_empty() {
            sql.and_in("integration_id", &f.integration_ids);
        }
        if !f.outcomes.is_empty() {
            sql.and_in("outcome", &f.outcomes);
        }
    };
    let mut count = Sql::new("SELECT COUNT(*) AS n FROM event_outcomes WHERE account_id = ");
    where_(&mut count);
    let total = get_i64(&count.query_on(&conn).fetch_one(&mut *conn).await?, "n")?;
    let mut sql = Sql::new("SELECT ");
    sql.push(OUTCOME_COLUMNS)
        .push(" FROM event_outcomes WHERE account_id = ");
    where_(&mut sql);
    let dir = if f.paging.asc { "ASC" } else { "DESC" };
    let limit = f.paging.limit.max(1);
    let offset = (f.paging.p.max(1) - 1).saturating_mul(limit);
    sql.push(&format!(
        " ORDER BY received_at {dir}, outcome_id {dir} LIMIT "
    ))
    .bind(limit)
    .push(" OFFSET ")
    .bind(offset);
    let items = sql
        .query_on(&conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(outcome_row)
        .collect::<Result<Vec<_>>>()?;
    let seen = offset.saturating_add(i64::try_from(items.len()).unwrap_or(i64::MAX));
    Ok(Page {
        has_next_page: seen < total,
        items,
        total,
        search_after_ctx: None,
    })
}

// ---- the inbox batch's view ----

/// What the noise stages of one inbox batch read: each touched channel's compiled rules, the
/// inhibit sources of the channels with inhibit rules, and the zones and calendars of the
/// accounts with recurring silence windows. Read once per batch, not per event.
pub(crate) struct BatchNoise {
    rules: HashMap<(i64, i64), ChannelNoise>,
    sources: HashMap<(i64, i64), Vec<Incident>>,
    zones: HashMap<i64, (TimeZone, AccountCalendars)>,
    none: ChannelNoise,
    utc: TimeZone,
    no_calendars: AccountCalendars,
}

impl BatchNoise {
    pub(crate) async fn load(
        conn: &mut AnyConnection,
        queued: &[QueuedEvent],
        now: Millis,
    ) -> Result<BatchNoise> {
        let channels: BTreeSet<(i64, i64)> = queued
            .iter()
            .map(|q| (q.origin.account_id, q.origin.channel_id))
            .collect();
        delete_expired(conn, now).await?;
        let stored = load_for_channels(conn, &channels, now).await?;
        let mut out = BatchNoise {
            rules: HashMap::new(),
            sources: HashMap::new(),
            zones: HashMap::new(),
            none: ChannelNoise::default(),
            utc: TimeZone::UTC,
            no_calendars: AccountCalendars::default(),
        };
        for (key, rules) in stored {
            let compiled = ChannelNoise::compile(&rules);
            if compiled.is_empty() {
                continue;
            }
            if compiled.has_inhibit() {
                let sources = inhibit_sources(conn, key.0, key.1, now).await?;
                out.sources.insert(key, sources);
            }
            let recurring = rules.iter().any(|r| {
                r.kind == RuleKind::Silence
                    && r.status == RuleStatus::Enabled
                    && !r.time_filters.is_empty()
            });
            if recurring && !out.zones.contains_key(&key.0) {
                let zone = account_zone(conn, key.0).await?;
                let calendars = crate::calendars::load(conn, key.0).await?;
                out.zones.insert(key.0, (zone, calendars));
            }
            out.rules.insert(key, compiled);
        }
        Ok(out)
    }

    /// Drop, event → alert, silence and inhibit for one event (`klaxon_core::noise::process`).
    /// `incidents` is the batch's incident cache: the inhibit sources see the batch's own
    /// changes (an incident opened or acknowledged earlier in the batch).
    pub(crate) fn decide(
        &self,
        q: &QueuedEvent,
        candidate: Option<Candidate>,
        incidents: &HashMap<String, Option<Incident>>,
        now: Millis,
        ids: &mut dyn IdSource,
    ) -> Decision {
        let key = (q.origin.account_id, q.origin.channel_id);
        let rules = self.rules.get(&key).unwrap_or(&self.none);
        // Merged with the batch's cache only if an alert matches an inhibit target: doing it
        // for every event cost O(active incidents) each.
        let sources = Sources {
            loaded: match self.sources.get(&key) {
                Some(loaded) if rules.has_inhibit() => Some(loaded.as_slice()),
                _ => None,
            },
            batch: incidents,
            key,
        };
        let (tz, calendars) = match self.zones.get(&key.0) {
            Some((tz, c)) => (tz, c),
            None => (&self.utc, &self.no_calendars),
        };
        let gate = Gate {
            rules,
            incidents: &sources,
            matching: MatchContext {
                tz,
                calendars: calendars.view(),
            },
        };
        klaxon_core::noise::process(q, candidate, &gate, now, ids)
    }
}

/// The inhibit sources of one event's channel: the incidents loaded for the batch, overlaid
/// with the batch's own changes (an incident opened or acknowledged earlier in the batch).
struct Sources<'b> {
    /// None when the channel has no inhibit rule.
    loaded: Option<&'b [Incident]>,
    batch: &'b HashMap<String, Option<Incident>>,
    key: (i64, i64),
}

impl klaxon_core::noise::InhibitSources for Sources<'_> {
    fn inhibit_sources(&self) -> Vec<&Incident> {
        let Some(loaded) = self.loaded else {
            return Vec::new();
        };
        let mut by_id: BTreeMap<&str, &Incident> =
            loaded.iter().map(|i| (i.incident_id.as_str(), i)).collect();
        for inc in self.batch.values().flatten() {
            if inc.account_id == self.key.0 && inc.channel_id == self.key.1 {
                by_id.insert(inc.incident_id.as_str(), inc);
            }
        }
        by_id.into_values().collect()
    }
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

// ---- the Store API ----

impl crate::Store {
    /// The channel's rules of `kind`, in evaluation order.
    /// Quick-silence rules whose window ended before `now` are gone (ING-134).
    pub async fn noise_rules(
        &self,
        account_id: i64,
        channel_id: i64,
        kind: RuleKind,
        now: Millis,
    ) -> Result<Vec<NoiseRule>> {
        list_rules(&self.inner.read, account_id, channel_id, kind, now).await
    }

    pub async fn noise_rule(
        &self,
        account_id: i64,
        rule_id: &str,
        now: Millis,
    ) -> Result<Option<NoiseRule>> {
        get_rule(&self.inner.read, account_id, rule_id, now).await
    }

    /// The quick-silence rule made from an incident (RSP-120), while it exists.
    pub async fn quick_silence_rule(
        &self,
        account_id: i64,
        channel_id: i64,
        incident_id: &str,
        now: Millis,
    ) -> Result<Option<NoiseRule>> {
        rule_from_incident(&self.inner.read, account_id, channel_id, incident_id, now).await
    }

    /// Creates (empty `rule_id`) or replaces a validated rule.
    pub async fn save_noise_rule(
        &self,
        rule: NoiseRule,
        now: Millis,
    ) -> Result<std::result::Result<NoiseRule, NoiseRefusal>> {
        save_rule(&self.inner.write, rule, now, &mut crate::RandomIds).await
    }

    pub async fn delete_noise_rule(&self, account_id: i64, rule_id: &str) -> Result<bool> {
        delete_rule(&self.inner.write, account_id, rule_id).await
    }

    /// Recorded event outcomes (ING-262).
    pub async fn event_outcomes(
        &self,
        account_id: i64,
        filter: &OutcomeFilter,
    ) -> Result<Page<EventOutcome>> {
        list_outcomes(&self.inner.read, account_id, filter).await
    }
}
