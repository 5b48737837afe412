//! Stage 5 of ingest.md §1.4, the alert pipeline (§2.7): the stored action list of each alert
//! integration (table `alert_pipelines`, migration 0030), and its run inside the processing
//! transaction.
//!
//! A save replaces an integration's whole list (the Open API's upsert has no version). The
//! inbox batch reads the lists of the integrations it carries once, and, only for lists with
//! an enabled inhibit action, the active alerts of those integrations created in the last
//! 24 h with one query per account (ING-085); every event is then decided in memory by
//! `klaxon_core::pipeline`. Events the pipeline discards get their outcome here
//! (`dropped_by_pipeline`, `inhibited_by_pipeline`, channel 0, ING-262) and leave the batch
//! before routing.
//!
//! The inhibit sources are read once per run of the stages. A batch whose later trigger could
//! be inhibited by an alert an earlier event of the same integration may open, change or
//! resolve is cut there ([`BatchPipelines::segment_len`]): the stages run on the first part,
//! and the rest sees its alerts in the same transaction, so a batch decides as the same
//! events pushed one at a time would.
//!
//! Every statement is scoped by `account_id` (DESIGN.md principle 6).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use klaxon_core::ids::IdSource;
use klaxon_core::merge::Outcome;
use klaxon_core::model::{Alert, DAY_MS, Millis, QueuedEvent};
use klaxon_core::noise::Explanation;
use klaxon_core::pipeline::{Pipeline, PipelineAction, Verdict};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::db::Sql;
use crate::noise::EventOutcome;
use crate::rows::{self, get_i64, get_str};
use crate::{Result, Store, StoreError};

/// Most values in one `IN (…)` list.
const IN_CHUNK: usize = 512;

/// An integration's saved pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRecord {
    pub integration_id: i64,
    /// In evaluation order.
    pub actions: Vec<PipelineAction>,
    /// Member who saved the first list, and when.
    pub creator_id: i64,
    pub created_at: Millis,
    /// Member who saved the current list, and when.
    pub updated_by: i64,
    pub updated_at: Millis,
}

const COLUMNS: &str = "integration_id, rules, creator_id, updated_by, created_at, updated_at";

fn record(row: &AnyRow) -> Result<PipelineRecord> {
    let integration_id = get_i64(row, "integration_id")?;
    let text = get_str(row, "rules")?;
    let actions = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("alert_pipelines.rules {integration_id}: {e}")))?;
    Ok(PipelineRecord {
        integration_id,
        actions,
        creator_id: get_i64(row, "creator_id")?,
        updated_by: get_i64(row, "updated_by")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    })
}

/// The saved pipelines of the listed integrations (those that have one).
async fn load(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_ids: &[i64],
) -> Result<HashMap<i64, PipelineRecord>> {
    let mut out = HashMap::new();
    for chunk in integration_ids.chunks(IN_CHUNK) {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM alert_pipelines WHERE account_id = ")
            .bind(account_id);
        sql.and_in_padded("integration_id", chunk);
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            let r = record(&row)?;
            out.insert(r.integration_id, r);
        }
    }
    Ok(out)
}

impl Store {
    /// The saved pipeline of the integration, if one was ever saved.
    pub async fn pipeline(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Option<PipelineRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        Ok(load(&mut conn, account_id, &[integration_id])
            .await?
            .remove(&integration_id))
    }

    /// The saved pipelines of the listed integrations (those that have one).
    pub async fn pipelines(
        &self,
        account_id: i64,
        integration_ids: &[i64],
    ) -> Result<HashMap<i64, PipelineRecord>> {
        let mut conn = self.inner.read.acquire().await?;
        load(&mut conn, account_id, integration_ids).await
    }

    /// Replaces the integration's whole action list with `actions`, validated by the caller
    /// (`klaxon_core::pipeline::validate`). `None` (nothing written) when the account has no
    /// such live integration. The first save's author and time are kept.
    pub async fn save_pipeline(
        &self,
        account_id: i64,
        integration_id: i64,
        actions: &[PipelineAction],
        author: i64,
        now: Millis,
    ) -> Result<Option<PipelineRecord>> {
        let rules = serde_json::to_string(actions)
            .map_err(|e| StoreError::Corrupt(format!("pipeline json: {e}")))?;
        let mut tx = self.inner.write.begin().await?;
        let mut live = Sql::new("SELECT integration_id FROM integrations WHERE account_id = ");
        live.bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND deleted = 0");
        if live.query_on(&tx).fetch_optional(&mut *tx).await?.is_none() {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut sql = Sql::new(
            "INSERT INTO alert_pipelines (account_id, integration_id, rules, creator_id, \
             updated_by, created_at, updated_at) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(integration_id)
            .push(", ")
            .bind(rules)
            .push(", ")
            .bind(author)
            .push(", ")
            .bind(author)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(
                ") ON CONFLICT (account_id, integration_id) DO UPDATE SET \
                 rules = excluded.rules, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at",
            );
        sql.query_on(&tx).execute(&mut *tx).await?;
        let saved = load(&mut tx, account_id, &[integration_id])
            .await?
            .remove(&integration_id);
        tx.commit().await?;
        Ok(saved)
    }
}

/// ING-085: the active alerts created after `since` of the listed integrations of one account.
async fn active_alerts(
    conn: &mut AnyConnection,
    account_id: i64,
    integration_ids: &[i64],
    since: Millis,
) -> Result<Vec<Alert>> {
    let mut out = Vec::new();
    for chunk in integration_ids.chunks(IN_CHUNK) {
        let mut sql = Sql::new("SELECT ");
        sql.push(rows::ALERT_COLUMNS)
            .push(" FROM alerts WHERE account_id = ")
            .bind(account_id)
            // Literal terms, so the partial index `alerts_pipeline_inhibit` applies.
            .push(" AND closed = 0 AND alert_status <> 'Ok' AND created_at > ")
            .bind(since);
        sql.and_in_padded("integration_id", chunk);
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            out.push(rows::alert(&row)?);
        }
    }
    Ok(out)
}

/// The compiled pipelines of the integrations a batch carries, read once per batch.
#[derive(Debug, Default)]
pub(crate) struct BatchPipelines {
    pipelines: HashMap<(i64, i64), Pipeline>,
}

impl BatchPipelines {
    pub(crate) async fn load(conn: &mut AnyConnection, queued: &[QueuedEvent]) -> Result<Self> {
        let mut integrations: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for q in queued {
            integrations
                .entry(q.origin.account_id)
                .or_default()
                .insert(q.origin.integration_id);
        }
        let mut pipelines = HashMap::new();
        for (account, set) in &integrations {
            let list: Vec<i64> = set.iter().copied().collect();
            for (integration, record) in load(conn, *account, &list).await? {
                let (pipeline, broken) = Pipeline::compile_skipping(&record.actions);
                for e in broken {
                    tracing::warn!(
                        account = account,
                        integration = integration,
                        error = %e,
                        "a stored pipeline action no longer compiles; it is skipped"
                    );
                }
                if !pipeline.is_empty() {
                    pipelines.insert((*account, integration), pipeline);
                }
            }
        }
        Ok(BatchPipelines { pipelines })
    }

    /// How many events from the front of `queued` can go through the stages together (at
    /// least one). The inhibit sources (ING-085) are read once per run of the stages, so a
    /// trigger whose inhibit action looks for a source must not share a run with an earlier
    /// event of its integration that may open, change or resolve one of those alerts: the
    /// run ends before it, and the next run reads the alerts as the earlier events left them
    /// (same transaction). One batch then decides exactly as the same events pushed one by
    /// one would. Integrations without an inhibit action never split a batch.
    pub(crate) fn segment_len(&self, queued: &[QueuedEvent]) -> usize {
        let mut touched: HashSet<(i64, i64)> = HashSet::new();
        for (i, q) in queued.iter().enumerate() {
            let key = (q.origin.account_id, q.origin.integration_id);
            let Some(pipeline) = self.pipelines.get(&key) else {
                continue;
            };
            if !pipeline.inhibits() {
                continue;
            }
            let dry = pipeline.dry_run(&q.event, &q.origin);
            if i > 0 && dry.looks_for_source && touched.contains(&key) {
                return i;
            }
            if !dry.dropped {
                touched.insert(key);
            }
        }
        queued.len()
    }

    /// Runs each event's integration pipeline on `queued` in place (ING-080…086): kept events
    /// stay, in order, possibly rewritten; discarded ones are removed and their outcomes
    /// returned. The inhibit sources are read once per call (see [`Self::segment_len`]).
    pub(crate) async fn apply(
        &self,
        conn: &mut AnyConnection,
        queued: &mut Vec<QueuedEvent>,
        ids: &mut impl IdSource,
        now: Millis,
    ) -> Result<Vec<EventOutcome>> {
        if self.pipelines.is_empty() {
            return Ok(Vec::new());
        }
        // Only integrations with an inhibit action and a trigger in the batch can inhibit
        // anything (ING-086).
        let mut inhibiting: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for q in queued.iter() {
            let key = (q.origin.account_id, q.origin.integration_id);
            if q.event.event_status.is_trigger()
                && self.pipelines.get(&key).is_some_and(Pipeline::inhibits)
            {
                inhibiting.entry(key.0).or_default().insert(key.1);
            }
        }
        let mut sources: HashMap<(i64, i64), Vec<Alert>> = HashMap::new();
        for (account, set) in &inhibiting {
            let list: Vec<i64> = set.iter().copied().collect();
            for alert in active_alerts(conn, *account, &list, now - DAY_MS).await? {
                sources
                    .entry((alert.account_id, alert.integration_id))
                    .or_default()
                    .push(alert);
            }
        }
        let mut outcomes = Vec::new();
        let mut kept = Vec::with_capacity(queued.len());
        for mut q in queued.drain(..) {
            let key = (q.origin.account_id, q.origin.integration_id);
            let Some(pipeline) = self.pipelines.get(&key) else {
                kept.push(q);
                continue;
            };
            let active = sources.get(&key).map(Vec::as_slice).unwrap_or_default();
            let (outcome, rule_id) = match pipeline.run(&mut q.event, &q.origin, active, now) {
                Verdict::Keep => {
                    kept.push(q);
                    continue;
                }
                Verdict::Dropped { action_id } => (Outcome::DroppedByPipeline, action_id),
                Verdict::Inhibited { action_id, .. } => (Outcome::InhibitedByPipeline, action_id),
            };
            let why = Explanation {
                outcome: Some(outcome),
                rule_id,
                ..Explanation::default()
            };
            let id = klaxon_core::ids::object_id(now, ids.random8());
            let mut record = EventOutcome::new(&q, &why, id, now);
            // ING-262: integration-level discards happen before routing (channel 0).
            record.channel_id = 0;
            outcomes.push(record);
        }
        *queued = kept;
        Ok(outcomes)
    }
}
