//! The Halt of response.md RSP-008 / service-agreement.md SVC-024: a tenant that stops being
//! served (`suspended`, `ended`, and the later `purging`/`purged`) gets no firing, reminder or
//! escalation step from then on.
//!
//! Three places enforce it, so no path slips through:
//! - [`halt_tenant`] runs in the same transaction as the state change: it deletes every pending
//!   timer of the tenant's incidents (delay window, escalation deadline, repeat, snooze end,
//!   auto-close), withholds every queued notification that is not an incident's first firing,
//!   and writes one system `i_comm` (creator 0, `mute_reply = true`) on each open incident it
//!   touched, naming the state and reason. Timeline rows are written directly: no incident
//!   webhook is fired for them.
//! - [`tenant_blocked`] is checked by the timer runner, so a timer written after the change
//!   (for an incident created from an event accepted before it, SVC-023) ends without effect.
//! - [`withhold_claimed`] is applied to every delivery claim, so a notification queued after
//!   the change is sent only if it is its incident's first firing (SVC-023's exception).
//!
//! Restoration replays nothing: cancelled timers are not re-armed and withheld notifications
//! stay `failed`; automation restarts with new incidents, reopen or manual actions.
//! Self-hosted installs have no `saas_tenants` rows, so every check finds nothing.

use std::collections::BTreeSet;

use klaxon_core::ids::IdSource;
use klaxon_core::model::Millis;
use klaxon_core::response::TimelineEntry;
use serde_json::json;
use sqlx::AnyConnection;

use crate::Result;
use crate::db::Sql;
use crate::delivery::{PendingDelivery, note_failure};
use crate::process::RandomIds;
use crate::rows::{get_i64, get_str};

/// The states in which nothing goes out (SVC-024; purging/purged serve even less).
const NOT_SERVING: &str = "('suspended', 'ended', 'purging', 'purged')";

/// `Some("suspended:nonpayment")` when the tenant is not being served, else `None`.
pub(crate) async fn tenant_blocked(
    conn: &mut AnyConnection,
    account_id: i64,
) -> Result<Option<String>> {
    let mut sql = Sql::new("SELECT state, reason FROM saas_tenants WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND state IN ")
        .push(NOT_SERVING);
    let Some(row) = sql.query_on(conn).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    state_text(&row).map(Some)
}

/// `state` or `state:reason` of a `saas_tenants` row.
fn state_text(row: &sqlx::any::AnyRow) -> Result<String> {
    let (state, reason) = (get_str(row, "state")?, get_str(row, "reason")?);
    Ok(if reason.is_empty() {
        state
    } else {
        format!("{state}:{reason}")
    })
}

/// The `failed_reason` of a notification withheld because of the tenant's state.
fn withheld_reason(state: &str) -> String {
    format!("service_{}", state.replace(':', "_"))
}

/// Is `firing_id` the first firing of its incident (the lowest outbox row of the incident)?
async fn is_first_firing(
    conn: &mut AnyConnection,
    account_id: i64,
    incident_id: &str,
    firing_id: &str,
) -> Result<bool> {
    let mut sql = Sql::new("SELECT firing_id FROM notifications WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND incident_id = ")
        .bind(incident_id)
        .push(" ORDER BY seq LIMIT 1");
    let row = sql.query_on(conn).fetch_optional(&mut *conn).await?;
    Ok(match row {
        Some(r) => get_str(&r, "firing_id")? == firing_id,
        None => false,
    })
}

/// Marks one queued row `failed` with the withheld reason and notes it on its `i_notify`.
async fn withhold(
    conn: &mut AnyConnection,
    seq: i64,
    account_id: i64,
    incident_id: &str,
    firing_id: &str,
    rid: &str,
    reason: &str,
) -> Result<()> {
    let mut sql = Sql::new("UPDATE notifications SET status = 'failed', failed_reason = ");
    sql.bind(reason)
        .push(", claimed_by = '', claim_until = 0 WHERE seq = ")
        .bind(seq)
        .push(" AND status = 'queued'");
    if sql
        .query_on(conn)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1
    {
        note_failure(conn, account_id, incident_id, firing_id, rid, reason).await?;
    }
    Ok(())
}

/// RSP-008 Halt, in the caller's transaction (the tenant row is already locked). `state` is
/// the new state as `state:reason`. Returns the incidents that got the `i_comm` entry.
pub(crate) async fn halt_tenant(
    conn: &mut AnyConnection,
    account_id: i64,
    state: &str,
    now: Millis,
) -> Result<Vec<String>> {
    let mut touched: BTreeSet<String> = BTreeSet::new();

    // Every pending timer of the tenant's incidents.
    let mut sql = Sql::new("DELETE FROM timers WHERE account_id = ");
    sql.bind(account_id).push(" RETURNING incident_id");
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        touched.insert(get_str(&row, "incident_id")?);
    }

    // Every queued send that is not an incident's first firing (SVC-023 lets those go).
    let reason = withheld_reason(state);
    let mut sql = Sql::new(
        "SELECT n.seq, n.incident_id, n.firing_id, n.rid FROM notifications n WHERE n.account_id = ",
    );
    sql.bind(account_id).push(
        " AND n.status = 'queued' AND n.firing_id <> (SELECT f.firing_id FROM notifications f \
         WHERE f.account_id = n.account_id AND f.incident_id = n.incident_id \
         ORDER BY f.seq LIMIT 1) ORDER BY n.seq",
    );
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let incident_id = get_str(&row, "incident_id")?;
        withhold(
            conn,
            get_i64(&row, "seq")?,
            account_id,
            &incident_id,
            &get_str(&row, "firing_id")?,
            &get_str(&row, "rid")?,
            &reason,
        )
        .await?;
        touched.insert(incident_id);
    }

    // One system comment per affected open incident, without a webhook.
    let mut open = Vec::new();
    for id in touched {
        let mut sql = Sql::new("SELECT progress FROM incidents WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND incident_id = ")
            .bind(id.as_str());
        if let Some(row) = sql.query_on(conn).fetch_optional(&mut *conn).await?
            && get_str(&row, "progress")? != "Closed"
        {
            open.push(id);
        }
    }
    let text = format!(
        "The service of this account is {state}: pending escalations, repeats and delayed \
         assignments were cancelled and no further notifications are sent."
    );
    let mut ids = RandomIds;
    let entries: Vec<TimelineEntry> = open
        .iter()
        .map(|id| TimelineEntry {
            entry_id: ids.object_id(now),
            incident_id: id.clone(),
            ref_id: id.clone(),
            kind: "i_comm",
            creator_id: 0,
            created_at: now,
            detail: json!({"comment": text, "mute_reply": true}),
        })
        .collect();
    let refs: Vec<(i64, &TimelineEntry)> = entries.iter().map(|e| (account_id, e)).collect();
    crate::response::insert_timeline(conn, &refs).await?;
    Ok(open)
}

/// Drops from a fresh delivery claim every row of a tenant that is not being served, except
/// its incident's first firing; the dropped rows end `failed` with the withheld reason. One
/// query when no tenant is blocked (always, self-hosted).
pub(crate) async fn withhold_claimed(
    conn: &mut AnyConnection,
    claimed: Vec<PendingDelivery>,
) -> Result<Vec<PendingDelivery>> {
    if claimed.is_empty() {
        return Ok(claimed);
    }
    let mut sql = Sql::new("SELECT account_id, state, reason FROM saas_tenants WHERE state IN ");
    sql.push(NOT_SERVING);
    let mut blocked = std::collections::BTreeMap::new();
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        blocked.insert(get_i64(&row, "account_id")?, state_text(&row)?);
    }
    if blocked.is_empty() {
        return Ok(claimed);
    }
    let mut out = Vec::with_capacity(claimed.len());
    for d in claimed {
        if let Some(state) = blocked.get(&d.account_id)
            && !is_first_firing(conn, d.account_id, &d.incident_id, &d.firing_id).await?
        {
            withhold(
                conn,
                d.seq,
                d.account_id,
                &d.incident_id,
                &d.firing_id,
                &d.rid,
                &withheld_reason(state),
            )
            .await?;
            continue;
        }
        out.push(d);
    }
    Ok(out)
}
