//! Hop 2: the inbox consumer (ING-011). One main-database transaction per batch: take or
//! renew the lease, read events in `seq` order, decide each with
//! `klaxon_core::merge::process_event`, write the effects, mark the events processed, commit. A
//! crash before the commit leaves everything as it was: the next lease holder redoes the batch
//! (no loss, no doubles).
//!
//! Marking processed differs per backend (see `inbox.rs`):
//! - PostgreSQL: the processed inbox rows are DELETEd in the same transaction.
//! - SQLite: the inbox is another file, read through its own read pool (a WAL reader: it never
//!   waits for the group committer nor holds it up) for `seq > processed_seq`; the transaction
//!   moves `inbox_progress.processed_seq` to the batch's last seq, and after the commit the
//!   group committer is told it may delete the rows up to there. The same transaction sets
//!   `integrations.last_event_time` (ING-260) from the batch's receive times: on SQLite the
//!   group commit must not write the main file (that is the whole point of the second file),
//!   so the processor, which writes it anyway, does.
//!
//! Within a batch the state lives in a [`Batch`] cache: the active alerts of every identity the
//! batch touches, their incidents and the aggregates of those incidents' alerts (`members.rs`)
//! are read with a few bulk queries up front; each event is decided against the cache (so it sees the effects of the earlier
//! events of its batch) and its effects are applied to the cache; at the end every changed row
//! is written once, with multi-row statements, in the same transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use klaxon_core::ids::IdSource;
use klaxon_core::merge::{Candidate, Effects, Members};
use klaxon_core::model::{
    Alert, AlertSummary, EventOrigin, Incident, Millis, NewEvent, QueuedEvent, StoredEvent,
};
use sqlx::{AnyConnection, AnyPool};

use crate::db::Sql;
use crate::inbox::{self, InboxFile};
use crate::rows::{self, get_i64, get_str};
use crate::webhooks::WebhookEvent;
use crate::{Result, StoreError};

/// How long a lease lives without renewal.
pub const LEASE_TTL_MS: Millis = 10_000;

/// The inbox lease's row in `leases`.
const INBOX_LEASE: &str = "inbox";

/// Most values in one `IN (…)` list. Lists are padded to a power of two (see
/// `Sql::and_in_padded`), so the statements of a batch come from a small, cached set.
const IN_CHUNK: usize = 512;

/// Random ids for new alerts, incidents and events (`rand`'s thread-local CSPRNG).
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn random8(&mut self) -> [u8; 8] {
        rand::random()
    }
}

/// Whether a batch is committed, or rolled back at the very end as if the node had crashed
/// just before its COMMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Commit,
    Rollback,
}

/// What one processing attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// This many events were processed and committed (0: nothing to do, or no lease).
    Done(usize),
    /// The batch needs these mapping-service calls first (ING-072): nothing was written and
    /// the transaction is rolled back; make the calls and process again with their answers.
    NeedCalls(Vec<klaxon_core::enrichment::ApiCall>),
}

/// One batch on `store`'s write pool and inbox; rows it queues are handed off as
/// `store.handoff` says (`crate::delivery::Handoff`).
pub(crate) async fn process_inbox(
    store: &crate::Inner,
    holder: &str,
    limit: usize,
    now: Millis,
    finish: Finish,
    answers: &crate::mapping_services::ApiAnswers,
) -> Result<Processed> {
    let (pool, file, handoff) = (&store.write, store.inbox.as_ref(), &store.handoff);
    let mut tx = pool.begin().await?;
    if !take_lease(&mut tx, holder, now).await? {
        tx.rollback().await?;
        return Ok(Processed::Done(0));
    }
    let mut queued = match file {
        None => read_batch(&mut tx, None, limit).await?,
        Some(file) => {
            // Read under the lease, in this transaction: no one else moves it meanwhile.
            let processed = inbox::watermark(&mut tx).await?;
            let mut conn = file.read.acquire().await?;
            read_batch(&mut conn, Some(processed), limit).await?
        }
    };
    let Some(last_seq) = queued.last().map(|q| q.seq) else {
        // Nothing to do: leave the lease as it was rather than pay a commit (an fsync on
        // SQLite) on every idle poll.
        tx.rollback().await?;
        return Ok(Processed::Done(0));
    };
    let seqs: Vec<i64> = queued.iter().map(|q| q.seq).collect();
    // ING-260 (SQLite): the receive times of the batch as read, one per event.
    let latest = inbox::latest_per_integration(queued.iter().map(|q| {
        (
            q.origin.account_id,
            q.origin.integration_id,
            q.origin.received_at,
        )
    }));
    // Stage 4 (ING-060): label enrichment, in place, before the pipeline and routing.
    let enriched = crate::enrichment::apply(&mut tx, &mut queued, answers).await?;
    if !enriched.calls.is_empty() {
        // No HTTP call while the transaction is open: hand the calls to the caller.
        tx.rollback().await?;
        return Ok(Processed::NeedCalls(enriched.calls));
    }
    // Stages 5 and after run on runs of events that cannot see each other's alerts through a
    // pipeline inhibit action (see `pipeline::BatchPipelines::segment_len`); almost always
    // the whole batch is one run.
    let pipelines = crate::pipeline::BatchPipelines::load(&mut tx, &queued).await?;
    let mut outcomes = Vec::new();
    let mut rest = queued;
    while !rest.is_empty() {
        let tail = rest.split_off(pipelines.segment_len(&rest));
        let run = std::mem::replace(&mut rest, tail);
        outcomes.extend(process_run(&mut tx, &pipelines, run, now).await?);
    }
    // ING-262 detail flags of stage 4.
    enriched.mark(&mut outcomes);
    crate::noise::insert_outcomes(&mut tx, &outcomes).await?;
    match file {
        None => {
            for chunk in seqs.chunks(IN_CHUNK) {
                let mut sql = Sql::new("DELETE FROM inbox WHERE 1 = 1");
                sql.and_in_padded("seq", chunk);
                sql.query_on(&tx).execute(&mut *tx).await?;
            }
        }
        Some(_) => {
            // ING-011: these events are processed iff this transaction commits.
            inbox::set_watermark(&mut tx, last_seq).await?;
            // ING-260, SQLite: see the module docs.
            inbox::touch_integrations(&mut tx, &latest).await?;
        }
    }
    // The notifications this batch queued (and any others due) are claimed for this node's
    // delivery worker in the same commit, and handed to it once that commit is done.
    let claimed = handoff.claim_in(&mut tx, now).await?;
    match finish {
        Finish::Commit => {
            tx.commit().await?;
            if let Some(file) = file {
                file.trim.processed_up_to(last_seq);
            }
            handoff.put(claimed);
        }
        Finish::Rollback => tx.rollback().await?,
    }
    Ok(Processed::Done(seqs.len()))
}

/// Stages 5 to the end of ingest.md §1.4 for one run of a batch's events, in the batch's
/// transaction: pipeline, routing, channel rules, merge and grouping, flapping, the response
/// side, and the writes. Returns every event's outcome (ING-262).
async fn process_run(
    tx: &mut AnyConnection,
    pipelines: &crate::pipeline::BatchPipelines,
    mut queued: Vec<QueuedEvent>,
    now: Millis,
) -> Result<Vec<crate::noise::EventOutcome>> {
    // A fresh record per run: an id it made is a row new to the database, and the rows of
    // the runs before are written by now.
    let mut ids = Recording {
        inner: RandomIds,
        made: HashSet::new(),
    };
    // Stage 5 (ING-080…086): the integrations' pipelines rewrite events in place; those they
    // drop or inhibit are recorded and go no further.
    let discarded = pipelines
        .apply(tx, &mut queued, &mut ids.inner, now)
        .await?;
    // Stage 6 (ING-090…094): shared integrations' events become one copy per target
    // channel; those reaching none are recorded as `no_route` and go no further.
    let routed = crate::routing::route_batch(tx, queued, &mut ids.inner, now).await?;
    let queued = routed.work;
    let mut batch = Batch::default();
    batch.prefetch(tx, &queued).await?;
    // Drop, silence and inhibit rules (ING-101, ING-130, ING-140): read once per batch.
    let noise = crate::noise::BatchNoise::load(tx, &queued, now).await?;
    // Channel status (ING-100) and grouping policies (ING-150…159): read once per batch.
    let channels = crate::channels::BatchChannels::load(tx, &queued, now).await?;
    let mut outcomes = Vec::with_capacity(queued.len() + discarded.len() + routed.no_route.len());
    outcomes.extend(discarded);
    outcomes.extend(routed.no_route);
    for q in &queued {
        let decision = if channels.is_closed(q) {
            channel_disabled()
        } else {
            let candidate = batch.candidate(tx, q).await?;
            let mut decision = noise.decide(q, candidate, &batch.incidents, now, &mut ids);
            group(&mut batch, tx, &channels, q, &mut decision, &ids.made, now).await?;
            decision
        };
        // ING-262: every event records its outcome.
        let outcome_id = klaxon_core::ids::object_id(now, ids.inner.random8());
        outcomes.push(crate::noise::EventOutcome::new(
            q,
            &decision.why,
            outcome_id,
            now,
        ));
        batch
            .apply(tx, q.origin.account_id, decision.effects, &ids.made)
            .await?;
    }
    // ING-180: flag the new incidents before the response side sees them (RSP-204), and say
    // so in the outcome of the event that opened each (ING-262).
    let flagged =
        crate::flapping::mark(tx, &channels, &mut batch.incidents, &batch.created, now).await?;
    if !flagged.is_empty() {
        for o in &mut outcomes {
            o.is_flapping = o.outcome == "new_alert" && flagged.contains(&o.incident_id);
        }
    }
    crate::response::after_ingest(
        tx,
        &mut batch.incidents,
        &batch.created,
        &batch.event_closed,
        &batch.grown,
        now,
    )
    .await?;
    let relabeled: Vec<&Incident> = batch
        .relabeled
        .iter()
        .filter(|id| !batch.created.contains(id))
        .filter_map(|id| batch.incidents.get(id).and_then(Option::as_ref))
        .collect();
    if !relabeled.is_empty() {
        crate::ticket_sync::enqueue_relabeled(tx, &relabeled, now).await?;
    }
    batch.write(tx, now).await?;
    Ok(outcomes)
}

/// ING-100: an event for a channel that is not enabled is discarded.
fn channel_disabled() -> klaxon_core::noise::Decision {
    let outcome = Some(klaxon_core::merge::Outcome::ChannelDisabled);
    klaxon_core::noise::Decision {
        effects: Effects {
            outcome,
            ..Effects::default()
        },
        why: klaxon_core::noise::Explanation {
            outcome,
            ..Default::default()
        },
    }
}

/// ING-150…159: when the event opened a new incident for an unmarked alert in a channel that
/// groups, the alert joins the eligible incident the policy chooses (same group key, or the
/// most similar reference text, ING-157) instead, or its new incident carries the method, key
/// and reference text. The incident it opened is one made by this event (its id is new
/// and not yet in the cache). The expired alert's incident of ING-113, re-derived by the same
/// event, may be the target: the new alert is grouped first and keeps it open.
async fn group(
    batch: &mut Batch,
    conn: &mut AnyConnection,
    channels: &crate::channels::BatchChannels,
    q: &QueuedEvent,
    decision: &mut klaxon_core::noise::Decision,
    made: &HashSet<String>,
    now: Millis,
) -> Result<()> {
    use klaxon_core::grouping;
    let Some(policy) = channels.grouping(q) else {
        return Ok(());
    };
    let fx = &mut decision.effects;
    let Some(new_id) = fx
        .incidents
        .iter()
        .map(|i| i.incident_id.clone())
        .find(|id| made.contains(id) && !batch.incidents.contains_key(id))
    else {
        return Ok(());
    };
    let Some(alert) = grouping::opened_alert(fx, &new_id) else {
        return Ok(());
    };
    // The cache still holds the state before this event, which is what grouping compares
    // against (ING-113: the new alert is grouped before the expired alert resolves).
    let skip: HashSet<String> = HashSet::from([new_id.clone()]);
    let pool = channels.candidates(q, &batch.incidents, &skip);
    let refs: Vec<&Incident> = pool.iter().collect();
    let choice = policy.choose(&alert, &refs, now);
    let Some(target_id) = choice.target.clone() else {
        grouping::keep_own(fx, &new_id, &choice);
        return Ok(());
    };
    if !batch.members.contains_key(&target_id) || !batch.incidents.contains_key(&target_id) {
        let ids = [target_id.clone()];
        batch.load_incidents(conn, alert.account_id, &ids).await?;
    }
    let Some(target) = batch.incidents.get(&target_id).cloned().flatten() else {
        grouping::keep_own(fx, &new_id, &choice);
        return Ok(());
    };
    let mut members = batch.members.get(&target_id).cloned().unwrap_or_default();
    // This event's changes to the target's alerts (the expired alert of ING-113) count.
    for a in fx.alerts.iter().filter(|a| a.incident_id == target_id) {
        if let Some(before) = batch.alerts.get(&a.alert_id)
            && before.incident_id == target_id
        {
            members.replace(&AlertSummary::from(before), &AlertSummary::from(a));
        }
    }
    if grouping::join(fx, &new_id, &target, &members, now) && decision.why.incident_id == new_id {
        decision.why.incident_id = target_id;
    }
    Ok(())
}

/// An id source that remembers the ids it made: a row with such an id is new to the database,
/// so the batch needs not look for it there.
struct Recording {
    inner: RandomIds,
    made: HashSet<String>,
}

impl IdSource for Recording {
    fn random8(&mut self) -> [u8; 8] {
        self.inner.random8()
    }

    fn object_id(&mut self, now: Millis) -> String {
        let id = klaxon_core::ids::object_id(now, self.inner.random8());
        self.made.insert(id.clone());
        id
    }
}

/// Takes the lease if it is free or expired, renews it if `holder` has it. On PostgreSQL the
/// row lock taken by the UPDATE also serialises two nodes until the first one commits.
async fn take_lease(conn: &mut AnyConnection, holder: &str, now: Millis) -> Result<bool> {
    let mut sql = Sql::new("UPDATE leases SET holder = ");
    sql.bind(holder)
        .push(", expires_at = ")
        .bind(now.saturating_add(LEASE_TTL_MS))
        .push(" WHERE name = ")
        .bind(INBOX_LEASE)
        .push(" AND (holder = ")
        .bind(holder)
        .push(" OR expires_at < ")
        .bind(now)
        .push(")");
    let done = sql.query_on(conn).execute(&mut *conn).await?;
    Ok(done.rows_affected() > 0)
}

/// The first `limit` queued (not yet processed) events in `seq` order, without taking them.
pub(crate) async fn peek(
    pool: &AnyPool,
    file: Option<&InboxFile>,
    limit: usize,
) -> Result<Vec<QueuedEvent>> {
    match file {
        None => {
            let mut conn = pool.acquire().await?;
            read_batch(&mut conn, None, limit).await
        }
        Some(file) => {
            // The watermark first: read the other way round, a batch committed in between
            // would show events that were processed already.
            let processed = {
                let mut conn = pool.acquire().await?;
                inbox::watermark(&mut conn).await?
            };
            let mut conn = file.read.acquire().await?;
            read_batch(&mut conn, Some(processed), limit).await
        }
    }
}

/// Number of events waiting: PostgreSQL, the inbox rows; SQLite, the rows above the
/// watermark (processed rows may wait a moment for their delete).
///
/// On SQLite that count is `MAX(seq) - watermark`, one b-tree descent instead of a scan of
/// every waiting row (a `COUNT(*)` reads all their pages: tens of MB with a backlog, on every
/// `/metrics` scrape). It is exact: the seqs above the watermark have no gaps, since the single
/// writer appends them with AUTOINCREMENT (a rolled-back batch gives its seqs back), and only
/// rows at or below the watermark are ever deleted.
pub(crate) async fn depth(pool: &AnyPool, file: Option<&InboxFile>) -> Result<i64> {
    let Some(file) = file else {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM inbox")
            .fetch_one(pool)
            .await?;
        return get_i64(&row, "n");
    };
    // The watermark first (see `peek`): a stale one can only over-count.
    let processed = {
        let mut conn = pool.acquire().await?;
        inbox::watermark(&mut conn).await?
    };
    let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM inbox")
        .fetch_one(&file.read)
        .await?;
    Ok((get_i64(&row, "n")? - processed).max(0))
}

/// The first `limit` inbox rows in `seq` order, above `after` if given.
async fn read_batch(
    conn: &mut AnyConnection,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<QueuedEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut sql = Sql::new(
        "SELECT seq, account_id, channel_id, integration_id, integration_type, \
         integration_name, request_id, received_at, event FROM inbox",
    );
    if let Some(after) = after {
        sql.push(" WHERE seq > ").bind(after);
    }
    sql.push(" ORDER BY seq LIMIT ").bind(limit);
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq = get_i64(row, "seq")?;
        let json = get_str(row, "event")?;
        // A row that no longer decodes stops the consumer rather than being dropped silently:
        // nothing accepted is lost (DESIGN.md principle 4).
        let event: NewEvent = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("inbox seq {seq}: {e}")))?;
        out.push(QueuedEvent {
            seq,
            origin: EventOrigin {
                request_id: get_str(row, "request_id")?,
                account_id: get_i64(row, "account_id")?,
                integration_id: get_i64(row, "integration_id")?,
                integration_type: get_str(row, "integration_type")?,
                integration_name: get_str(row, "integration_name")?,
                channel_id: get_i64(row, "channel_id")?,
                received_at: get_i64(row, "received_at")?,
            },
            event,
        });
    }
    Ok(out)
}

/// Alert identity (ING-110): (account, channel, integration, alert_key).
type Identity = (i64, i64, i64, String);

fn identity_of(q: &QueuedEvent) -> Identity {
    (
        q.origin.account_id,
        q.origin.channel_id,
        q.origin.integration_id,
        q.event.alert_key.clone(),
    )
}

/// The batch's view of the rows it reads and writes.
#[derive(Default)]
struct Batch {
    /// Full alert rows: the active alerts of the batch's identities, and every alert the
    /// batch wrote.
    alerts: HashMap<String, Alert>,
    /// The stored state (incident, summary) of the alerts in `alerts` read from the database:
    /// what a stored aggregate counts for them, to be replaced by what the batch holds.
    stored: HashMap<String, (String, AlertSummary)>,
    /// Per identity, the ids of its alerts that were active when loaded or made in the batch.
    by_identity: HashMap<Identity, Vec<String>>,
    /// Incidents read (`None`: not in the database) or written.
    incidents: HashMap<String, Option<Incident>>,
    /// The aggregate of an incident's alerts (ING-172…175), where known: the stored alerts,
    /// those in `alerts` as the batch holds them.
    members: HashMap<String, Members>,
    /// Incidents auto-resolved by the batch (ING-200): (account, incident, close time); their
    /// alerts outside the cache are closed by one statement per incident at the end.
    closes: Vec<(i64, String, Millis)>,
    /// Changed rows, in first-change order.
    dirty_alerts: Vec<String>,
    dirty_alert_set: HashSet<String>,
    dirty_incidents: Vec<String>,
    dirty_incident_set: HashSet<String>,
    events: Vec<StoredEvent>,
    /// Incidents this batch created, and those it closed because every alert recovered: the
    /// response side writes their `i_new` / assignment and `i_rslv` (RSP-010, RSP-053).
    created: Vec<String>,
    event_closed: Vec<String>,
    /// Incidents whose `alert_cnt` grew in this batch (storm warnings, RSP-200).
    grown: Vec<String>,
    /// Existing incidents whose labels followed their first alert to new values in this
    /// batch: ticket-sync auto triggers look at them again (RSP-405).
    relabeled: Vec<String>,
    /// Alert webhook events (ING-250), in the order they happened.
    webhooks: Vec<WebhookEvent>,
}

impl Batch {
    /// Reads, with a few bulk queries, the active alerts of every identity in `queued`, their
    /// incidents and those incidents' alerts.
    async fn prefetch(&mut self, conn: &mut AnyConnection, queued: &[QueuedEvent]) -> Result<()> {
        let mut groups: BTreeMap<(i64, i64, i64), BTreeSet<String>> = BTreeMap::new();
        for q in queued {
            let id = identity_of(q);
            groups
                .entry((id.0, id.1, id.2))
                .or_default()
                .insert(id.3.clone());
            self.by_identity.entry(id).or_default();
        }
        let mut incident_ids: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for ((account, channel, integration), keys) in groups {
            let keys: Vec<String> = keys.into_iter().collect();
            for chunk in keys.chunks(IN_CHUNK) {
                let mut sql = Sql::new("SELECT ");
                sql.push(rows::ALERT_COLUMNS)
                    .push(" FROM alerts WHERE account_id = ")
                    .bind(account)
                    .push(" AND channel_id = ")
                    .bind(channel)
                    .push(" AND integration_id = ")
                    .bind(integration)
                    // Literal terms, so the partial index `alerts_candidate` applies.
                    .push(" AND closed = 0 AND alert_status <> 'Ok'");
                sql.and_in_padded("alert_key", chunk);
                for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
                    let alert = rows::alert(&row)?;
                    if !alert.incident_id.is_empty() {
                        incident_ids
                            .entry(alert.account_id)
                            .or_default()
                            .insert(alert.incident_id.clone());
                    }
                    let id = (
                        alert.account_id,
                        alert.channel_id,
                        alert.integration_id,
                        alert.alert_key.clone(),
                    );
                    self.by_identity
                        .entry(id)
                        .or_default()
                        .push(alert.alert_id.clone());
                    self.stored.insert(
                        alert.alert_id.clone(),
                        (alert.incident_id.clone(), AlertSummary::from(&alert)),
                    );
                    self.alerts.insert(alert.alert_id.clone(), alert);
                }
            }
        }
        for (account, ids) in incident_ids {
            let ids: Vec<String> = ids.into_iter().collect();
            for chunk in ids.chunks(IN_CHUNK) {
                self.load_incidents(conn, account, chunk).await?;
            }
        }
        Ok(())
    }

    /// Loads the incidents and complete alert lists of `ids` that the batch does not hold
    /// yet. What the batch holds wins over the database.
    async fn load_incidents(
        &mut self,
        conn: &mut AnyConnection,
        account: i64,
        ids: &[String],
    ) -> Result<()> {
        let need_incidents: Vec<String> = ids
            .iter()
            .filter(|id| !self.incidents.contains_key(*id))
            .cloned()
            .collect();
        if !need_incidents.is_empty() {
            let mut sql = Sql::new("SELECT ");
            sql.push(rows::INCIDENT_COLUMNS)
                .push(" FROM incidents WHERE account_id = ")
                .bind(account);
            sql.and_in_padded("incident_id", &need_incidents);
            let mut found: HashMap<String, Incident> = HashMap::new();
            for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
                let incident = rows::incident(&row)?;
                found.insert(incident.incident_id.clone(), incident);
            }
            for id in need_incidents {
                let incident = found.remove(&id);
                self.incidents.insert(id, incident);
            }
        }

        let need_members: Vec<String> = ids
            .iter()
            .filter(|id| !self.members.contains_key(*id))
            .cloned()
            .collect();
        if need_members.is_empty() {
            return Ok(());
        }
        let mut aggregates = crate::members::aggregate(conn, account, &need_members).await?;
        let mut stale = Vec::new();
        for id in need_members {
            let mut m = aggregates.remove(&id).unwrap_or_default();
            self.count_cached(&id, &mut m);
            if m.is_exact() {
                self.members.insert(id, m);
            } else {
                stale.push(id);
            }
        }
        // The batch moved an alert that may have held the latest time out of the incident:
        // only then are its alerts read one by one.
        let mut lists = crate::members::listed(conn, account, &stale).await?;
        for id in stale {
            let list = lists.remove(&id).unwrap_or_default();
            let mut m = Members::of(
                list.iter()
                    .filter(|s| !self.alerts.contains_key(&s.alert_id)),
            );
            for alert in self.alerts.values().filter(|a| a.incident_id == id) {
                m.add(&AlertSummary::from(alert));
            }
            self.members.insert(id, m);
        }
        Ok(())
    }

    /// Turns the stored aggregate `m` of incident `id` into the batch's: the alerts the batch
    /// holds count as it holds them, not as stored.
    fn count_cached(&self, id: &str, m: &mut Members) {
        for alert in self.alerts.values() {
            let was = self
                .stored
                .get(&alert.alert_id)
                .filter(|(incident, _)| incident == id)
                .map(|(_, s)| s);
            let is = alert.incident_id == id;
            match (was, is) {
                (Some(old), true) => {
                    let new = AlertSummary::from(alert);
                    if *old != new {
                        m.replace(old, &new);
                    }
                }
                (Some(old), false) => m.remove(old),
                (None, true) => m.add(&AlertSummary::from(alert)),
                (None, false) => {}
            }
        }
    }

    /// ING-110: the most recently created active alert with the event's identity, its
    /// incident and the aggregate of that incident's alerts.
    async fn candidate(
        &mut self,
        conn: &mut AnyConnection,
        q: &QueuedEvent,
    ) -> Result<Option<Candidate>> {
        let identity = identity_of(q);
        let best = self.by_identity.get(&identity).and_then(|ids| {
            ids.iter()
                .filter_map(|id| self.alerts.get(id))
                .filter(|a| a.is_active())
                .max_by(|a, b| (a.created_at, &a.alert_id).cmp(&(b.created_at, &b.alert_id)))
                .cloned()
        });
        let Some(alert) = best else {
            return Ok(None);
        };
        if alert.incident_id.is_empty() {
            return Ok(Some(Candidate {
                alert,
                incident: None,
                members: Members::default(),
            }));
        }
        if !self.incidents.contains_key(&alert.incident_id)
            || !self.members.contains_key(&alert.incident_id)
        {
            let ids = [alert.incident_id.clone()];
            self.load_incidents(conn, alert.account_id, &ids).await?;
        }
        let incident = self.incidents.get(&alert.incident_id).cloned().flatten();
        let members = self
            .members
            .get(&alert.incident_id)
            .cloned()
            .unwrap_or_default();
        Ok(Some(Candidate {
            alert,
            incident,
            members,
        }))
    }

    /// Applies one event's effects to the cache.
    async fn apply(
        &mut self,
        conn: &mut AnyConnection,
        account: i64,
        effects: Effects,
        made: &HashSet<String>,
    ) -> Result<()> {
        for alert in effects.alerts {
            self.note_webhooks(&alert, made);
            self.put_alert(conn, alert, made).await?;
        }
        for incident in effects.incidents {
            let id = incident.incident_id.clone();
            let was_open = match self.incidents.get(&id) {
                Some(Some(old)) => {
                    if incident.alert_cnt > old.alert_cnt && !self.grown.contains(&id) {
                        self.grown.push(id.clone());
                    }
                    if incident.labels != old.labels && !self.relabeled.contains(&id) {
                        self.relabeled.push(id.clone());
                    }
                    old.progress != klaxon_core::model::Progress::Closed
                }
                _ => {
                    if made.contains(&id) && !self.created.contains(&id) {
                        self.created.push(id.clone());
                    }
                    true
                }
            };
            if was_open
                && incident.progress == klaxon_core::model::Progress::Closed
                && !self.event_closed.contains(&id)
            {
                self.event_closed.push(id.clone());
            }
            if !self.members.contains_key(&id) && made.contains(&id) {
                // A new incident none of whose alerts the batch holds: it has none yet.
                self.members.insert(id.clone(), Members::default());
            }
            self.incidents.insert(id.clone(), Some(incident));
            if self.dirty_incident_set.insert(id.clone()) {
                self.dirty_incidents.push(id);
            }
        }
        if !effects.close_incident_id.is_empty() {
            // An alert already closed keeps its own close_time.
            let incident_id = effects.close_incident_id;
            for a in self.alerts.values_mut() {
                if a.incident_id == incident_id && !a.closed {
                    a.closed = true;
                    a.close_time = effects.close_time;
                    if self.dirty_alert_set.insert(a.alert_id.clone()) {
                        self.dirty_alerts.push(a.alert_id.clone());
                    }
                }
            }
            self.closes.push((account, incident_id, effects.close_time));
        }
        if let Some(event) = effects.stored_event {
            self.events.push(event);
        }
        Ok(())
    }

    /// ING-250: what an alert row written by an event fires, judged against the row as the
    /// batch knew it before. A new alert is `a_new`; an existing one an event changed is
    /// `a_update`; either is also `a_merge` when it joined an incident (a new incident, an
    /// existing one, or an un-mute; ING-170, ING-159, ING-123).
    fn note_webhooks(&mut self, alert: &Alert, made: &HashSet<String>) {
        let prior = self.alerts.get(&alert.alert_id);
        let mut fire = |event_type: &'static str| {
            self.webhooks.push(WebhookEvent {
                account_id: alert.account_id,
                event_type,
                subject_id: alert.alert_id.clone(),
                channel_id: Some(alert.channel_id),
                event_time: alert.updated_at,
                person_id: 0,
            });
        };
        let joined = match prior {
            None if made.contains(&alert.alert_id) => {
                let joined = !alert.incident_id.is_empty();
                fire("a_new");
                joined
            }
            None => !alert.incident_id.is_empty(),
            Some(before) => {
                let joined =
                    !alert.incident_id.is_empty() && before.incident_id != alert.incident_id;
                // Only the incident link (and its `updated_at`) changed: no `a_update`.
                let mut same = before.clone();
                same.incident_id.clone_from(&alert.incident_id);
                same.updated_at = alert.updated_at;
                if same != *alert {
                    fire("a_update");
                }
                joined
            }
        };
        if joined {
            fire("a_merge");
        }
    }

    async fn put_alert(
        &mut self,
        conn: &mut AnyConnection,
        alert: Alert,
        made: &HashSet<String>,
    ) -> Result<()> {
        let id = alert.alert_id.clone();
        let incident_id = alert.incident_id.clone();
        let new = AlertSummary::from(&alert);
        let prior = self
            .alerts
            .get(&id)
            .map(|a| (a.incident_id.clone(), AlertSummary::from(a)));
        match prior {
            // Changed within its incident.
            Some((previous, old)) if previous == incident_id => {
                if let Some(m) = self.members.get_mut(&incident_id) {
                    m.replace(&old, &new);
                    if !m.is_exact() {
                        self.members.remove(&incident_id);
                    }
                }
            }
            prior => {
                // Leaving the incident it was in: if it may have held the latest time, that
                // incident's aggregate is read again when next needed.
                if let Some((previous, old)) = prior
                    && let Some(m) = self.members.get_mut(&previous)
                {
                    m.remove(&old);
                    if !m.is_exact() {
                        self.members.remove(&previous);
                    }
                }
                if !incident_id.is_empty() {
                    if let Some(m) = self.members.get_mut(&incident_id) {
                        m.add(&new);
                    } else if made.contains(&incident_id) {
                        self.members
                            .insert(incident_id.clone(), Members::of([&new]));
                    } else {
                        // Joining an incident whose aggregate is not known yet: load it (it
                        // then counts this alert's new state, since the cache wins).
                        self.alerts.insert(id.clone(), alert.clone());
                        let ids = [incident_id.clone()];
                        self.load_incidents(conn, alert.account_id, &ids).await?;
                    }
                }
            }
        }
        let identity = (
            alert.account_id,
            alert.channel_id,
            alert.integration_id,
            alert.alert_key.clone(),
        );
        let known = self.by_identity.entry(identity).or_default();
        if !known.contains(&id) {
            known.push(id.clone());
        }
        self.alerts.insert(id.clone(), alert);
        if self.dirty_alert_set.insert(id.clone()) {
            self.dirty_alerts.push(id);
        }
        Ok(())
    }

    /// Writes every changed row once.
    async fn write(&self, conn: &mut AnyConnection, now: Millis) -> Result<()> {
        let alerts: Vec<&Alert> = self
            .dirty_alerts
            .iter()
            .filter_map(|id| self.alerts.get(id))
            .collect();
        rows::upsert_alerts(conn, &alerts).await?;
        let incidents: Vec<&Incident> = self
            .dirty_incidents
            .iter()
            .filter_map(|id| self.incidents.get(id).and_then(Option::as_ref))
            .collect();
        rows::upsert_incidents(conn, &incidents).await?;
        // ING-200: the other alerts of an auto-resolved incident, all Ok; those the batch holds
        // were closed in the cache and written above.
        for (account, incident_id, at) in &self.closes {
            let mut sql = Sql::new("UPDATE alerts SET closed = 1, close_time = ");
            sql.bind(*at)
                .push(" WHERE account_id = ")
                .bind(*account)
                .push(" AND incident_id = ")
                .bind(incident_id.as_str())
                .push(" AND closed = 0 AND alert_status = 'Ok'");
            sql.query_on(conn).execute(&mut *conn).await?;
        }
        let events: Vec<&StoredEvent> = self.events.iter().collect();
        rows::insert_events(conn, &events).await?;
        // Alert events carry the alert as this batch leaves it (ING-251).
        crate::webhooks::enqueue(conn, &self.webhooks, now, |e| {
            self.alerts
                .get(&e.subject_id)
                .and_then(|a| serde_json::to_string(a).ok())
        })
        .await?;
        Ok(())
    }
}
