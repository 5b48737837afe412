//! Channel management (openapi-compat.md 2.5 `/channel/{create,update,info,delete,enable,
//! disable}`) and the channel settings the inbox batch reads: status (ING-100) and grouping
//! (ING-150…159). Storm thresholds (RSP-200) live in `channels.storm_thresholds` (0011), the
//! grouping policy in `channels.grouping` (0012), the flapping settings (ING-180) in
//! `channels.flapping` (0016), all JSON.

use std::collections::{BTreeSet, HashMap, HashSet};

use klaxon_core::flapping::{FlappingConfig, FlappingMode};
use klaxon_core::grouping::{ChannelGrouping, GroupingConfig, MAX_ALERTS_PER_INCIDENT, WindowType};
use klaxon_core::model::{Alert, ChannelStatus, Incident, Millis, QueuedEvent, StoredEvent};
use sqlx::AnyConnection;

use crate::db::Sql;
use crate::records::Channel;
use crate::rows::{self, get_i64, get_str};
use crate::{Result, StoreError};

/// A channel with its grouping policy, storm thresholds and flapping settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSettings {
    pub channel: Channel,
    pub grouping: GroupingConfig,
    pub storm_thresholds: Vec<i64>,
    pub flapping: FlappingConfig,
}

/// The writable fields of a channel, validated by the API layer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelDraft {
    pub channel_name: String,
    pub description: String,
    pub team_id: i64,
    pub auto_resolve_timeout: i64,
    pub auto_resolve_mode: String,
    pub grouping: GroupingConfig,
    pub storm_thresholds: Vec<i64>,
    pub flapping: FlappingConfig,
    /// RSP-526.
    pub is_private: bool,
    /// OQ-47: ≤ 3 extra managing teams.
    pub managing_team_ids: Vec<i64>,
}

impl ChannelSettings {
    /// The writable fields, for an update that changes only some of them.
    pub fn draft(&self) -> ChannelDraft {
        ChannelDraft {
            channel_name: self.channel.channel_name.clone(),
            description: self.channel.description.clone(),
            team_id: self.channel.team_id,
            auto_resolve_timeout: self.channel.auto_resolve_timeout,
            auto_resolve_mode: self.channel.auto_resolve_mode.clone(),
            grouping: self.grouping.clone(),
            storm_thresholds: self.storm_thresholds.clone(),
            flapping: self.flapping,
            is_private: self.channel.is_private,
            managing_team_ids: self.channel.managing_team_ids.clone(),
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("channel settings: {e}")))
}

fn settings_row(row: &sqlx::any::AnyRow) -> Result<ChannelSettings> {
    let channel = rows::channel(row)?;
    let id = channel.channel_id;
    let grouping: GroupingConfig = serde_json::from_str(&get_str(row, "grouping")?)
        .map_err(|e| StoreError::Corrupt(format!("channels.grouping {id}: {e}")))?;
    let storm_thresholds: Vec<i64> = serde_json::from_str(&get_str(row, "storm_thresholds")?)
        .map_err(|e| StoreError::Corrupt(format!("channels.storm_thresholds {id}: {e}")))?;
    let flapping = flapping_json(&get_str(row, "flapping")?, id)?;
    Ok(ChannelSettings {
        channel,
        grouping,
        storm_thresholds,
        flapping,
    })
}

pub(crate) fn flapping_json(text: &str, channel_id: i64) -> Result<FlappingConfig> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("channels.flapping {channel_id}: {e}")))
}

async fn settings(
    conn: &mut AnyConnection,
    account_id: i64,
    channel_id: i64,
) -> Result<Option<ChannelSettings>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::CHANNEL_COLUMNS)
        .push(", grouping, storm_thresholds, flapping FROM channels WHERE status <> 'deleted' AND account_id = ")
        .bind(account_id)
        .push(" AND channel_id = ")
        .bind(channel_id);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(settings_row(&row)?)),
        None => Ok(None),
    }
}

async fn settings_of(
    conn: &mut AnyConnection,
    account_id: i64,
    ids: &[i64],
) -> Result<Vec<ChannelSettings>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::CHANNEL_COLUMNS)
        .push(", grouping, storm_thresholds, flapping FROM channels WHERE account_id = ")
        .bind(account_id);
    sql.and_in("channel_id", ids);
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(settings_row)
        .collect()
}

/// Whose events [`crate::Store::recent_event_labels`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    Channel(i64),
    Integration(i64),
}

impl crate::Store {
    /// ING-160: what the grouping preview replays — the channel's most recent `limit` stored
    /// events received since `since`, oldest first, and the alerts they belong to. Reads only.
    pub async fn grouping_replay_input(
        &self,
        account_id: i64,
        channel_id: i64,
        since: Millis,
        limit: usize,
    ) -> Result<(Vec<StoredEvent>, Vec<Alert>)> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(rows::EVENT_COLUMNS)
            .push(" FROM events WHERE account_id = ")
            .bind(account_id)
            .push(" AND channel_id = ")
            .bind(channel_id)
            .push(" AND received_at >= ")
            .bind(since)
            .push(" ORDER BY received_at DESC, event_id DESC LIMIT ")
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let mut events = sql
            .query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(rows::event)
            .collect::<Result<Vec<StoredEvent>>>()?;
        events.reverse();
        let ids: Vec<String> = events
            .iter()
            .map(|e| e.alert_id.clone())
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        let mut alerts = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(256) {
            let mut sql = Sql::new("SELECT ");
            sql.push(rows::ALERT_COLUMNS)
                .push(" FROM alerts WHERE account_id = ")
                .bind(account_id);
            sql.and_in_padded("alert_id", chunk);
            for row in sql.query_on(&conn).fetch_all(&mut *conn).await? {
                alerts.push(rows::alert(&row)?);
            }
        }
        Ok((events, alerts))
    }

    /// ING-261: the labels of the most recent `limit` events of a channel or an integration
    /// whose event time is at or after `since`, newest first. Reads only the label column.
    pub async fn recent_event_labels(
        &self,
        account_id: i64,
        source: EventSource,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<klaxon_core::model::Labels>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT labels FROM events WHERE account_id = ");
        sql.bind(account_id);
        match source {
            EventSource::Channel(id) => sql.push(" AND channel_id = ").bind(id),
            EventSource::Integration(id) => sql.push(" AND integration_id = ").bind(id),
        };
        sql.push(" AND event_time >= ")
            .bind(since)
            .push(" ORDER BY event_time DESC, event_id DESC LIMIT ")
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| {
                serde_json::from_str(&get_str(row, "labels")?)
                    .map_err(|e| StoreError::Corrupt(format!("event labels: {e}")))
            })
            .collect()
    }

    /// A channel that is not deleted, with its settings.
    pub async fn channel_settings(
        &self,
        account_id: i64,
        channel_id: i64,
    ) -> Result<Option<ChannelSettings>> {
        let mut conn = self.inner.read.acquire().await?;
        settings(&mut conn, account_id, channel_id).await
    }

    /// Settings of the listed channels (deleted ones included), for rendering lists.
    pub async fn channel_settings_of(
        &self,
        account_id: i64,
        ids: &[i64],
    ) -> Result<Vec<ChannelSettings>> {
        let mut conn = self.inner.read.acquire().await?;
        settings_of(&mut conn, account_id, ids).await
    }

    /// Creates an enabled channel; returns its id.
    pub async fn create_channel(
        &self,
        account_id: i64,
        creator_id: i64,
        d: &ChannelDraft,
        now: Millis,
    ) -> Result<i64> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "INSERT INTO channels (account_id, channel_name, description, team_id, creator_id, \
             status, auto_resolve_timeout, auto_resolve_mode, grouping, storm_thresholds, \
             flapping, is_private, managing_team_ids, created_at, updated_at) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(d.channel_name.as_str())
            .push(", ")
            .bind(d.description.as_str())
            .push(", ")
            .bind(d.team_id)
            .push(", ")
            .bind(creator_id)
            .push(", 'enabled', ")
            .bind(d.auto_resolve_timeout)
            .push(", ")
            .bind(d.auto_resolve_mode.as_str())
            .push(", ")
            .bind(json(&d.grouping)?)
            .push(", ")
            .bind(json(&d.storm_thresholds)?)
            .push(", ")
            .bind(json(&d.flapping)?)
            .push(", ")
            .bind(d.is_private)
            .push(", ")
            .bind(json(&d.managing_team_ids)?)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(") RETURNING channel_id");
        let row = sql.query_on(&conn).fetch_one(&mut *conn).await?;
        get_i64(&row, "channel_id")
    }

    /// Replaces the writable fields of a channel that is not deleted; false when there is none.
    pub async fn update_channel(
        &self,
        account_id: i64,
        channel_id: i64,
        d: &ChannelDraft,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("UPDATE channels SET channel_name = ");
        sql.bind(d.channel_name.as_str())
            .push(", description = ")
            .bind(d.description.as_str())
            .push(", team_id = ")
            .bind(d.team_id)
            .push(", auto_resolve_timeout = ")
            .bind(d.auto_resolve_timeout)
            .push(", auto_resolve_mode = ")
            .bind(d.auto_resolve_mode.as_str())
            .push(", grouping = ")
            .bind(json(&d.grouping)?)
            .push(", storm_thresholds = ")
            .bind(json(&d.storm_thresholds)?)
            .push(", flapping = ")
            .bind(json(&d.flapping)?)
            .push(", is_private = ")
            .bind(d.is_private)
            .push(", managing_team_ids = ")
            .bind(json(&d.managing_team_ids)?)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE status <> 'deleted' AND account_id = ")
            .bind(account_id)
            .push(" AND channel_id = ")
            .bind(channel_id);
        if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        crate::response::reschedule_auto_close(
            &mut tx,
            account_id,
            channel_id,
            d.auto_resolve_timeout,
            &d.auto_resolve_mode,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// `enabled` or `disabled` (ING-100); false when the channel does not exist (or is
    /// deleted). Idempotent.
    pub async fn set_channel_status(
        &self,
        account_id: i64,
        channel_id: i64,
        status: ChannelStatus,
        now: Millis,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new("UPDATE channels SET status = ");
        sql.bind(status.as_str())
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE status <> 'deleted' AND account_id = ")
            .bind(account_id)
            .push(" AND channel_id = ")
            .bind(channel_id);
        let done = sql.query_on(&conn).execute(&mut *conn).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks the channel deleted (its incidents and alerts stay, response.md 1.6) and deletes
    /// its dedicated integrations (ingest.md §1.3.1). Returns those integrations' ids, or
    /// `None` when the channel does not exist.
    pub async fn delete_channel(
        &self,
        account_id: i64,
        channel_id: i64,
        now: Millis,
    ) -> Result<Option<Vec<i64>>> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("UPDATE channels SET status = 'deleted', updated_at = ");
        sql.bind(now)
            .push(" WHERE status <> 'deleted' AND account_id = ")
            .bind(account_id)
            .push(" AND channel_id = ")
            .bind(channel_id);
        if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut sql = Sql::new("SELECT integration_id FROM integrations WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND kind = 'dedicated' AND deleted = 0 AND channel_id = ")
            .bind(channel_id);
        let ids = sql
            .query_on(&tx)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| get_i64(r, "integration_id"))
            .collect::<Result<Vec<i64>>>()?;
        let mut sql = Sql::new("UPDATE integrations SET deleted = 1, updated_at = ");
        sql.bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND kind = 'dedicated' AND channel_id = ")
            .bind(channel_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(ids))
    }
}

// ---- the inbox batch's view ----

/// What one inbox batch reads of its channels: which are not enabled (ING-100), the
/// grouping policy and eligible incidents of those that group (ING-151), and the flapping
/// settings of those that detect flapping (ING-180). Read once per batch.
#[derive(Default)]
pub(crate) struct BatchChannels {
    closed: HashSet<(i64, i64)>,
    flapping: HashMap<(i64, i64), FlappingConfig>,
    grouping: HashMap<(i64, i64), ChannelGrouping>,
    /// Incidents that were eligible when the batch started (ING-151, prefiltered by method,
    /// progress, cap and window); the batch cache wins over these.
    eligible: HashMap<(i64, i64), Vec<Incident>>,
}

impl BatchChannels {
    pub(crate) async fn load(
        conn: &mut AnyConnection,
        queued: &[QueuedEvent],
        now: Millis,
    ) -> Result<BatchChannels> {
        let mut by_account: HashMap<i64, BTreeSet<i64>> = HashMap::new();
        for q in queued {
            by_account
                .entry(q.origin.account_id)
                .or_default()
                .insert(q.origin.channel_id);
        }
        let mut out = BatchChannels::default();
        for (account, ids) in by_account {
            let ids: Vec<i64> = ids.into_iter().collect();
            let found = settings_of(conn, account, &ids).await?;
            let known: HashSet<i64> = found.iter().map(|s| s.channel.channel_id).collect();
            for id in ids.iter().filter(|id| !known.contains(id)) {
                out.closed.insert((account, *id));
            }
            for s in found {
                let key = (account, s.channel.channel_id);
                if s.channel.status != ChannelStatus::Enabled {
                    out.closed.insert(key);
                    continue;
                }
                if s.flapping.mode != FlappingMode::Off {
                    out.flapping.insert(key, s.flapping);
                }
                if !s.grouping.enabled {
                    continue;
                }
                let policy = ChannelGrouping::compile(&s.grouping);
                let incidents = eligible_incidents(conn, key, &policy, now).await?;
                out.eligible.insert(key, incidents);
                out.grouping.insert(key, policy);
            }
        }
        Ok(out)
    }

    /// ING-100: the event's channel is not enabled (disabled, deleted or unknown).
    pub(crate) fn is_closed(&self, q: &QueuedEvent) -> bool {
        self.closed
            .contains(&(q.origin.account_id, q.origin.channel_id))
    }

    /// The channel's flapping settings, when it detects flapping (mode not off).
    pub(crate) fn flapping(&self, account_id: i64, channel_id: i64) -> Option<&FlappingConfig> {
        self.flapping.get(&(account_id, channel_id))
    }

    /// The channel's grouping policy, when it groups.
    pub(crate) fn grouping(&self, q: &QueuedEvent) -> Option<&ChannelGrouping> {
        self.grouping
            .get(&(q.origin.account_id, q.origin.channel_id))
    }

    /// The channel's candidate incidents as currently known: the ones read at the start of
    /// the batch, overridden and extended by the batch's cache; `skip` ids are left out.
    pub(crate) fn candidates(
        &self,
        q: &QueuedEvent,
        cache: &HashMap<String, Option<Incident>>,
        skip: &HashSet<String>,
    ) -> Vec<Incident> {
        let key = (q.origin.account_id, q.origin.channel_id);
        let method = self.grouping.get(&key).map(ChannelGrouping::method);
        let mut by_id: HashMap<&str, &Incident> = HashMap::new();
        if let Some(loaded) = self.eligible.get(&key) {
            for i in loaded {
                by_id.insert(i.incident_id.as_str(), i);
            }
        }
        for i in cache.values().flatten() {
            if i.account_id == key.0
                && i.channel_id == key.1
                && Some(i.group_method.as_str()) == method
            {
                by_id.insert(i.incident_id.as_str(), i);
            }
        }
        by_id
            .into_values()
            .filter(|i| !skip.contains(&i.incident_id))
            .cloned()
            .collect()
    }
}

/// ING-151: the channel's open, automatic incidents grouped by the policy's method (rules, or
/// similarity with the policy's keys: ING-157 compares their `group_text` in memory) below
/// the cap and inside the window at `now`.
async fn eligible_incidents(
    conn: &mut AnyConnection,
    (account, channel): (i64, i64),
    policy: &ChannelGrouping,
    now: Millis,
) -> Result<Vec<Incident>> {
    let cfg: &GroupingConfig = policy.config();
    let mut sql = Sql::new("SELECT ");
    sql.push(rows::INCIDENT_COLUMNS)
        .push(" FROM incidents WHERE account_id = ")
        .bind(account)
        .push(" AND channel_id = ")
        .bind(channel)
        .push(" AND group_method = ")
        .bind(policy.method());
    match policy.intelligent_key() {
        Some(key) => sql.push(" AND group_key = ").bind(key.to_string()),
        None => sql.push(" AND group_key <> ''"),
    };
    sql.push(" AND progress <> 'Closed' AND alert_cnt < ")
        .bind(MAX_ALERTS_PER_INCIDENT);
    if cfg.window_minutes > 0 {
        let since = now.saturating_sub(cfg.window_minutes.saturating_mul(60_000));
        let column = match cfg.window_type {
            WindowType::Sliding => " AND last_merge_time >= ",
            WindowType::Tumbling => " AND created_at >= ",
        };
        sql.push(column).bind(since);
    }
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::incident)
        .collect()
}
