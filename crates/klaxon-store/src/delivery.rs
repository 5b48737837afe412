//! Delivery of the notification outbox (response.md 1.17, RSP-290, RSP-291; migration 0007).
//!
//! A queued row whose `next_attempt_at` has come is claimed by one delivery worker for
//! [`DELIVERY_CLAIM_MS`] (PostgreSQL skips rows another node is claiming at this moment). The
//! worker then records the outcome with [`Store::finish_delivery`] or schedules the next
//! attempt with [`Store::retry_delivery`]; both apply only while the claim is still the
//! worker's, so a node whose claim ran out (and whose row another node took) writes nothing.
//! A node that dies mid-send leaves a claim that simply expires: the row is sent again by
//! someone else. Delivery is therefore at least once, and the row's `rid` is the idempotency
//! key the providers are given.

use klaxon_core::model::Millis;
use serde_json::Value;
use sqlx::AnyConnection;

use crate::db::{Sql, is_sqlite};
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// How long a claim on a notification lasts. It must outlast one send including the
/// provider timeouts (the notify crate keeps its timeouts well under this).
pub const DELIVERY_CLAIM_MS: Millis = 60_000;

/// Notifications a processing batch claimed for this node's delivery worker in its own
/// transaction, waiting to be picked up.
///
/// Without it, a notification made by the inbox worker waits for the delivery worker to wake,
/// take the write lock and commit a claim before its first attempt. With it, the batch that
/// queues the row also claims it (same rules as [`Store::claim_deliveries`], same lease) and,
/// once that batch has committed, hands it over in memory: one commit less on the path from
/// an event to the first page (issue 7's latency target). A node that stops before sending
/// leaves a claim that expires like any other, so nothing is lost.
#[derive(Debug, Default)]
pub(crate) struct Handoff {
    /// The delivery worker's holder name and the most rows it takes at once, once enabled.
    target: std::sync::Mutex<Option<(String, i64)>>,
    ready: std::sync::Mutex<Vec<PendingDelivery>>,
    arrived: tokio::sync::Notify,
    /// Rows handed over and not yet reported done: a batch claims only what the worker's
    /// limit leaves, so a slow provider cannot pile up claims that would expire unsent.
    in_flight: std::sync::atomic::AtomicI64,
}

impl Handoff {
    pub(crate) fn target(&self) -> Option<(String, i64)> {
        self.target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Claims, in `conn`'s open transaction, up to the delivery worker's limit of the rows
    /// due at `now` (RSP-008 halts applied as in [`Store::claim_deliveries`]). Nothing when
    /// the hand-off is off.
    pub(crate) async fn claim_in(
        &self,
        conn: &mut AnyConnection,
        now: Millis,
    ) -> Result<Vec<PendingDelivery>> {
        let Some((holder, limit)) = self.target() else {
            return Ok(Vec::new());
        };
        let room = limit - self.in_flight.load(std::sync::atomic::Ordering::Acquire);
        if room <= 0 {
            return Ok(Vec::new());
        }
        let claimed = claim(conn, &holder, now, room).await?;
        crate::halt::withhold_claimed(conn, claimed).await
    }

    /// After the commit of the transaction that claimed `rows`.
    pub(crate) fn put(&self, rows: Vec<PendingDelivery>) {
        if rows.is_empty() {
            return;
        }
        self.in_flight.fetch_add(
            i64::try_from(rows.len()).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::AcqRel,
        );
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(rows);
        self.arrived.notify_one();
    }

    fn take(&self) -> Vec<PendingDelivery> {
        std::mem::take(
            &mut *self
                .ready
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// A claimed outbox row, with what a sender needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub seq: i64,
    pub rid: String,
    pub account_id: i64,
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
    pub created_at: Millis,
    /// Attempts made before this one.
    pub attempts: i64,
    /// RSP-343 `RepeatIndex`: 0 for a level's first firing, i for its i-th repeat.
    pub repeat_index: i64,
}

/// The delivery columns of one outbox row (for the API and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    pub rid: String,
    pub channel: String,
    pub person_id: i64,
    pub status: String,
    pub failed_reason: String,
    pub attempts: i64,
    pub next_attempt_at: Millis,
    pub provider_message_id: String,
    pub sent_at: Millis,
    /// The IM integration the row names: the one a group-chat row posts through
    /// (`target.settings.integration_id`), or the one a preference entry picked for a direct
    /// message (`target.integration_id`, response.md 1.15); 0 otherwise. Updating the cards
    /// it posted needs that integration's token.
    pub chat_integration_id: i64,
}

/// What a sender needs to know about one member (response.md 1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberContact {
    pub member_id: i64,
    pub name: String,
    /// `enabled`, `pending` or `deleted`.
    pub status: String,
    pub email: String,
    pub email_verified: bool,
    /// E.164, "" = none.
    pub phone: String,
    pub phone_verified: bool,
}

/// How a claimed send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent {
        provider_message_id: String,
    },
    /// A `failed_reason` of response.md 1.17.
    Failed {
        reason: String,
    },
}

const PENDING_COLUMNS: &str = "seq, rid, account_id, incident_id, firing_id, reason, fire_type, \
     escalate_rule_id, layer_idx, channel, person_id, target, severity, created_at, attempts, repeat_index";

fn pending_row(row: &sqlx::any::AnyRow) -> Result<PendingDelivery> {
    let target = get_str(row, "target")?;
    Ok(PendingDelivery {
        seq: get_i64(row, "seq")?,
        rid: get_str(row, "rid")?,
        account_id: get_i64(row, "account_id")?,
        incident_id: get_str(row, "incident_id")?,
        firing_id: get_str(row, "firing_id")?,
        reason: get_str(row, "reason")?,
        fire_type: get_str(row, "fire_type")?,
        escalate_rule_id: get_str(row, "escalate_rule_id")?,
        layer_idx: get_i64(row, "layer_idx")?,
        channel: get_str(row, "channel")?,
        person_id: get_i64(row, "person_id")?,
        target: serde_json::from_str(&target).unwrap_or(Value::Null),
        severity: get_str(row, "severity")?,
        created_at: get_i64(row, "created_at")?,
        attempts: get_i64(row, "attempts")?,
        repeat_index: get_i64(row, "repeat_index")?,
    })
}

async fn claim(
    conn: &mut AnyConnection,
    holder: &str,
    now: Millis,
    limit: i64,
) -> Result<Vec<PendingDelivery>> {
    let lock = if is_sqlite(conn) {
        ""
    } else {
        " FOR UPDATE SKIP LOCKED"
    };
    let mut sql = Sql::new("UPDATE notifications SET claimed_by = ");
    sql.bind(holder)
        .push(", claim_until = ")
        .bind(now.saturating_add(DELIVERY_CLAIM_MS))
        .push(
            " WHERE seq IN (SELECT seq FROM notifications WHERE status = 'queued' AND \
             next_attempt_at <= ",
        )
        .bind(now)
        .push(" AND claim_until < ")
        .bind(now)
        .push(" ORDER BY next_attempt_at, seq LIMIT ")
        .bind(limit)
        .push(lock)
        .push(") RETURNING ")
        .push(PENDING_COLUMNS);
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    let mut out = rows.iter().map(pending_row).collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|d| d.seq);
    Ok(out)
}

/// Sets `failed_reason` on the element with this `rid` in the firing's `i_notify` entry.
pub(crate) async fn note_failure(
    conn: &mut AnyConnection,
    account_id: i64,
    incident_id: &str,
    firing_id: &str,
    rid: &str,
    reason: &str,
) -> Result<()> {
    edit_firing_entry(conn, account_id, incident_id, firing_id, |detail| {
        let mut found = false;
        for list in ["persons", "chats", "robots"] {
            if let Some(items) = detail.get_mut(list).and_then(Value::as_array_mut) {
                for item in items {
                    if item.get("rid").and_then(Value::as_str) == Some(rid)
                        && let Some(obj) = item.as_object_mut()
                    {
                        obj.insert("failed_reason".into(), Value::String(reason.to_string()));
                        found = true;
                    }
                }
            }
        }
        found
    })
    .await
}

/// The channels an IM app direct message falls back to (RSP-287).
const FALLBACK_CHANNELS: [&str; 2] = ["sms", "email"];

/// RSP-287: a failed IM app direct message to person p queues an `sms` and an `email` to p for
/// the same firing (reason `fallback`), except a channel p already had in this firing (or a
/// fallback already queued by another failed IM message of the firing), and lists them in the
/// firing's `i_notify` entry with `fallback: true`.
async fn im_fallback(conn: &mut AnyConnection, d: &PendingDelivery, now: Millis) -> Result<()> {
    let mut sql = Sql::new("SELECT channel FROM notifications WHERE account_id = ");
    sql.bind(d.account_id)
        .push(" AND incident_id = ")
        .bind(d.incident_id.as_str())
        .push(" AND firing_id = ")
        .bind(d.firing_id.as_str())
        .push(" AND person_id = ")
        .bind(d.person_id);
    let had: Vec<String> = sql
        .query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| get_str(r, "channel"))
        .collect::<Result<_>>()?;
    let mut added: Vec<Value> = Vec::new();
    for channel in FALLBACK_CHANNELS {
        if had.iter().any(|c| c == channel) {
            continue;
        }
        let rid = klaxon_core::ids::object_id(now, rand::random());
        let mut sql = Sql::new(
            "INSERT INTO notifications (rid, account_id, incident_id, firing_id, reason, \
             fire_type, escalate_rule_id, layer_idx, channel, person_id, target, severity, \
             created_at, repeat_index) VALUES (",
        );
        sql.bind(rid.as_str())
            .push(", ")
            .bind(d.account_id)
            .push(", ")
            .bind(d.incident_id.as_str())
            .push(", ")
            .bind(d.firing_id.as_str())
            .push(", 'fallback', ")
            .bind(d.fire_type.as_str())
            .push(", ")
            .bind(d.escalate_rule_id.as_str())
            .push(", ")
            .bind(d.layer_idx)
            .push(", ")
            .bind(channel)
            .push(", ")
            .bind(d.person_id)
            .push(", 'null', ")
            .bind(d.severity.as_str())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(d.repeat_index)
            .push(")");
        sql.query_on(conn).execute(&mut *conn).await?;
        added.push(serde_json::json!({
            "person_id": d.person_id,
            "channel": channel,
            "rid": rid,
            "fallback": true,
        }));
    }
    if added.is_empty() {
        return Ok(());
    }
    edit_firing_entry(
        conn,
        d.account_id,
        &d.incident_id,
        &d.firing_id,
        |detail| match detail.get_mut("persons").and_then(Value::as_array_mut) {
            Some(persons) => {
                persons.extend(added);
                true
            }
            None => false,
        },
    )
    .await
}

/// Applies `edit` to the detail of the firing's `i_notify` entry and stores it when `edit`
/// reports a change.
async fn edit_firing_entry(
    conn: &mut AnyConnection,
    account_id: i64,
    incident_id: &str,
    firing_id: &str,
    edit: impl FnOnce(&mut Value) -> bool,
) -> Result<()> {
    let lock = if is_sqlite(conn) { "" } else { " FOR UPDATE" };
    let mut sql = Sql::new("SELECT seq, detail FROM incident_timeline WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND incident_id = ")
        .bind(incident_id)
        .push(" AND kind = 'i_notify'")
        .push(lock);
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let text = get_str(&row, "detail")?;
        let Ok(mut detail) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if detail.get("rid").and_then(Value::as_str) != Some(firing_id) {
            continue;
        }
        if edit(&mut detail) {
            let mut sql = Sql::new("UPDATE incident_timeline SET detail = ");
            sql.bind(detail.to_string())
                .push(" WHERE seq = ")
                .bind(get_i64(&row, "seq")?);
            sql.query_on(conn).execute(&mut *conn).await?;
        }
        return Ok(());
    }
    Ok(())
}

impl Store {
    /// From now on, every inbox batch this handle processes also claims the due outbox rows
    /// (up to `limit`) for `holder`, the delivery worker of this node, in its own transaction;
    /// the worker takes them with [`Store::next_handed_off`]. See [`Handoff`].
    pub fn hand_off_deliveries_to(&self, holder: &str, limit: usize) {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        *self
            .inner
            .handoff
            .target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((holder.to_string(), limit));
    }

    /// The rows handed off since the last call; waits until there is at least one.
    pub async fn next_handed_off(&self) -> Vec<PendingDelivery> {
        loop {
            let rows = self.inner.handoff.take();
            if !rows.is_empty() {
                return rows;
            }
            self.inner.handoff.arrived.notified().await;
        }
    }

    /// Reports `n` handed-off rows as finished (sent, failed, retried or lost), making room for
    /// the next batches' claims.
    pub fn handed_off_done(&self, n: usize) {
        self.inner.handoff.in_flight.fetch_sub(
            i64::try_from(n).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::AcqRel,
        );
    }

    /// The rows handed off since the last call, without waiting (possibly none).
    pub fn take_handed_off(&self) -> Vec<PendingDelivery> {
        self.inner.handoff.take()
    }

    /// Claims up to `limit` queued notifications that are due at `now` for `holder`, oldest
    /// first (see [`DELIVERY_CLAIM_MS`]).
    pub async fn claim_deliveries(
        &self,
        holder: &str,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<PendingDelivery>> {
        let mut conn = self.inner.write.acquire().await?;
        let claimed = claim(&mut conn, holder, now, limit).await?;
        // RSP-008 Halt: a tenant that is not served gets only its incidents' first firings.
        crate::halt::withhold_claimed(&mut conn, claimed).await
    }

    /// Records the end of a claimed send: `sent` or `failed` with its reason. A failure is
    /// also written into the firing's `i_notify` timeline entry, on the person, chat or robot
    /// the row was for (response.md 1.10, RSP-290), in the same transaction. False (and
    /// nothing written) when `holder` no longer holds the claim or the row already ended.
    pub async fn finish_delivery(
        &self,
        holder: &str,
        seq: i64,
        outcome: &DeliveryOutcome,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("UPDATE notifications SET attempts = attempts + 1, status = ");
        match outcome {
            DeliveryOutcome::Sent {
                provider_message_id,
            } => {
                sql.bind("sent")
                    .push(", failed_reason = '', sent_at = ")
                    .bind(now)
                    .push(", provider_message_id = ")
                    .bind(provider_message_id.as_str());
            }
            DeliveryOutcome::Failed { reason } => {
                sql.bind("failed")
                    .push(", failed_reason = ")
                    .bind(reason.as_str());
            }
        }
        sql.push(", claimed_by = '', claim_until = 0 WHERE seq = ")
            .bind(seq)
            .push(" AND status = 'queued' AND claimed_by = ")
            .bind(holder)
            .push(" AND claim_until >= ")
            .bind(now)
            .push(" RETURNING ")
            .push(PENDING_COLUMNS);
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        if let DeliveryOutcome::Failed { reason } = outcome {
            let d = pending_row(&row)?;
            note_failure(
                &mut tx,
                d.account_id,
                &d.incident_id,
                &d.firing_id,
                &d.rid,
                reason,
            )
            .await?;
            // RSP-287: decided with the failure, so a crash cannot lose the fallback.
            if d.channel.ends_with("_app") && d.person_id != 0 {
                im_fallback(&mut tx, &d, now).await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// RSP-346: records on a claimed row that its custom template failed to render and the
    /// default template's body is what was sent, and sets `template_fallback: true` on the
    /// firing's `i_notify` entry, in one transaction. False (nothing written) when `holder` no
    /// longer holds the claim.
    pub async fn note_template_fallback(
        &self,
        holder: &str,
        seq: i64,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("UPDATE notifications SET template_fallback = 1 WHERE seq = ");
        sql.bind(seq)
            .push(" AND status = 'queued' AND claimed_by = ")
            .bind(holder)
            .push(" AND claim_until >= ")
            .bind(now)
            .push(" RETURNING account_id, incident_id, firing_id");
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        edit_firing_entry(
            &mut tx,
            get_i64(&row, "account_id")?,
            &get_str(&row, "incident_id")?,
            &get_str(&row, "firing_id")?,
            |detail| match detail.as_object_mut() {
                Some(obj) => {
                    obj.insert("template_fallback".into(), Value::Bool(true));
                    true
                }
                None => false,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// RSP-282: a voice call the provider accepted (the row is `sent`) and that then ended
    /// unanswered (busy, no answer, failed) becomes `failed` with `reason`, and the firing's
    /// `i_notify` entry says so. Only a `sent` row of `account_id` changes; false otherwise
    /// (unknown rid, or the outcome was recorded already). Nothing is redialled.
    pub async fn fail_sent_delivery(
        &self,
        account_id: i64,
        rid: &str,
        reason: &str,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("UPDATE notifications SET status = 'failed', failed_reason = ");
        sql.bind(reason)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND rid = ")
            .bind(rid)
            .push(" AND status = 'sent' RETURNING ")
            .push(PENDING_COLUMNS);
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let d = pending_row(&row)?;
        note_failure(
            &mut tx,
            d.account_id,
            &d.incident_id,
            &d.firing_id,
            &d.rid,
            reason,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Puts a claimed row back in the queue for another attempt at `next_attempt_at`, noting
    /// the last error in `failed_reason` (the status stays `queued`). False when the claim
    /// was lost.
    pub async fn retry_delivery(
        &self,
        holder: &str,
        seq: i64,
        last_error: &str,
        next_attempt_at: Millis,
        now: Millis,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut sql = Sql::new(
            "UPDATE notifications SET attempts = attempts + 1, claimed_by = '', claim_until = 0, \
             failed_reason = ",
        );
        sql.bind(last_error)
            .push(", next_attempt_at = ")
            .bind(next_attempt_at)
            .push(" WHERE seq = ")
            .bind(seq)
            .push(" AND status = 'queued' AND claimed_by = ")
            .bind(holder)
            .push(" AND claim_until >= ")
            .bind(now);
        Ok(sql
            .query_on(&conn)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1)
    }

    /// Queued rows (due or in back-off), for metrics and readiness.
    pub async fn delivery_backlog(&self) -> Result<i64> {
        let mut conn = self.inner.read.acquire().await?;
        let row = Sql::new("SELECT COUNT(*) AS n FROM notifications WHERE status = 'queued'")
            .query_on(&conn)
            .fetch_one(&mut *conn)
            .await?;
        get_i64(&row, "n")
    }

    /// The earliest `next_attempt_at` of a queued row, for the worker's sleep.
    pub async fn next_delivery_due(&self) -> Result<Option<Millis>> {
        let mut conn = self.inner.read.acquire().await?;
        let row = Sql::new(
            "SELECT MIN(next_attempt_at) AS due FROM notifications WHERE status = 'queued'",
        )
        .query_on(&conn)
        .fetch_one(&mut *conn)
        .await?;
        Ok(sqlx::Row::try_get::<Option<i64>, _>(&row, "due")
            .ok()
            .flatten())
    }

    /// The delivery state of an incident's notifications, oldest first.
    pub async fn delivery_states(
        &self,
        account_id: i64,
        incident_id: &str,
    ) -> Result<Vec<DeliveryState>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new(
            "SELECT rid, channel, person_id, status, failed_reason, attempts, next_attempt_at, \
             provider_message_id, sent_at, target FROM notifications WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" AND incident_id = ")
            .bind(incident_id)
            .push(" ORDER BY created_at, seq");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok(DeliveryState {
                    rid: get_str(r, "rid")?,
                    channel: get_str(r, "channel")?,
                    person_id: get_i64(r, "person_id")?,
                    status: get_str(r, "status")?,
                    failed_reason: get_str(r, "failed_reason")?,
                    attempts: get_i64(r, "attempts")?,
                    next_attempt_at: get_i64(r, "next_attempt_at")?,
                    provider_message_id: get_str(r, "provider_message_id")?,
                    sent_at: get_i64(r, "sent_at")?,
                    chat_integration_id: serde_json::from_str::<serde_json::Value>(&get_str(
                        r, "target",
                    )?)
                    .ok()
                    .and_then(|t| {
                        t["settings"]["integration_id"]
                            .as_i64()
                            .or_else(|| t["integration_id"].as_i64())
                    })
                    .unwrap_or(0),
                })
            })
            .collect()
    }

    /// Contacts of the given members of one account (missing ids are left out).
    pub async fn member_contacts(
        &self,
        account_id: i64,
        member_ids: &[i64],
    ) -> Result<Vec<MemberContact>> {
        let mut out = Vec::new();
        let mut conn = self.inner.read.acquire().await?;
        for chunk in member_ids.chunks(500) {
            let mut sql = Sql::new(
                "SELECT member_id, member_name, status, email, email_verified, phone, \
                 phone_verified FROM members WHERE account_id = ",
            );
            sql.bind(account_id).push(" AND member_id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(*id);
            }
            sql.push(")");
            for r in sql.query_on(&conn).fetch_all(&mut *conn).await? {
                out.push(MemberContact {
                    member_id: get_i64(&r, "member_id")?,
                    name: get_str(&r, "member_name")?,
                    status: get_str(&r, "status")?,
                    email: get_str(&r, "email")?,
                    email_verified: get_i64(&r, "email_verified")? != 0,
                    phone: get_str(&r, "phone")?,
                    phone_verified: get_i64(&r, "phone_verified")? != 0,
                });
            }
        }
        Ok(out)
    }

    /// Marks a member's current email and/or phone as verified: what the verification-code
    /// flow (RSP-333, a later slice) records once the member has entered the code. False when
    /// the member does not exist or has no such contact.
    pub async fn mark_contact_verified(
        &self,
        account_id: i64,
        member_id: i64,
        email: bool,
        phone: bool,
    ) -> Result<bool> {
        let mut conn = self.inner.write.acquire().await?;
        let mut changed = false;
        for (flag, column, value) in [
            (email, "email_verified", "email"),
            (phone, "phone_verified", "phone"),
        ] {
            if !flag {
                continue;
            }
            let mut sql = Sql::new("UPDATE members SET ");
            sql.push(column)
                .push(" = 1 WHERE account_id = ")
                .bind(account_id)
                .push(" AND member_id = ")
                .bind(member_id)
                .push(" AND ")
                .push(value)
                .push(" <> ''");
            changed |= sql
                .query_on(&conn)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                == 1;
        }
        Ok(changed)
    }

    /// The name of a channel of the account; `None` when it does not exist.
    pub async fn channel_name(&self, account_id: i64, channel_id: i64) -> Result<Option<String>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT channel_name FROM channels WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND channel_id = ")
            .bind(channel_id);
        match sql.query_on(&conn).fetch_optional(&mut *conn).await? {
            Some(r) => Ok(Some(get_str(&r, "channel_name")?)),
            None => Ok(None),
        }
    }
}
