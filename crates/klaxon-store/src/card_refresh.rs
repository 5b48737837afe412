//! RSP-312: every IM card already sent for an incident follows its changes, whatever made
//! them — a press on any platform, the console, the Open API, an SMS or voice answer, a
//! timer. [`enqueue`] runs inside the transaction that writes an incident change
//! (`response::write_changes`): when the change moves progress, assignment, snooze or
//! severity and the incident has app cards that were sent, it queues one outbox row
//! (`fire_type = card_refresh`). The delivery worker re-renders the incident as it is when
//! the row is sent and updates every card on every platform, with the same claims, retries
//! and restarts as every notification. A row per change, not a timer, so a card never waits
//! for a poll; a later row re-renders the state of its own time, so the last one wins.

use std::collections::BTreeSet;

use klaxon_core::model::Millis;
use serde_json::json;
use sqlx::AnyConnection;

use crate::Result;
use crate::db::Sql;
use crate::response::Change;
use crate::rows::get_str;
use crate::war_rooms::{STATE_KINDS, queue_follow_up, state_events};

/// The outbox `fire_type` (and `reason`, and `channel`) of a card refresh row.
pub const CARD_REFRESH: &str = "card_refresh";

/// The delivery channels whose sent messages are interactive cards that can be updated.
pub const CARD_CHANNELS: [&str; 5] = [
    "slack_app",
    "feishu_app",
    "dingtalk_app",
    "wecom_app",
    "teams_app",
];

/// Queues a card refresh for each change in `changes` that moves what a card shows, on an
/// incident with at least one card sent.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    changes: &[Change<'_>],
    now: Millis,
) -> Result<()> {
    let relevant: Vec<&Change<'_>> = changes
        .iter()
        .filter(|c| {
            c.outcome
                .timeline
                .iter()
                .any(|e| STATE_KINDS.contains(&e.kind))
        })
        .collect();
    if relevant.is_empty() {
        return Ok(());
    }
    // Which of these incidents have cards out, per account (a batch may span accounts).
    let accounts: BTreeSet<i64> = relevant.iter().map(|c| c.incident.account_id).collect();
    let mut with_cards: BTreeSet<(i64, String)> = BTreeSet::new();
    for account_id in accounts {
        let ids: Vec<String> = relevant
            .iter()
            .filter(|c| c.incident.account_id == account_id)
            .map(|c| c.incident.incident_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for chunk in ids.chunks(64) {
            let mut sql =
                Sql::new("SELECT DISTINCT incident_id FROM notifications WHERE account_id = ");
            sql.bind(account_id)
                .and_in_padded("incident_id", chunk)
                .push(" AND status = 'sent' AND provider_message_id <> ''")
                .and_in("channel", &CARD_CHANNELS);
            for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
                with_cards.insert((account_id, get_str(&row, "incident_id")?));
            }
        }
    }
    for c in relevant {
        let inc = c.incident;
        if !with_cards.contains(&(inc.account_id, inc.incident_id.clone())) {
            continue;
        }
        let events = state_events(c);
        let last = c
            .outcome
            .timeline
            .last()
            .map_or("", |e| e.entry_id.as_str());
        let rid = format!("cr-{}-{last}", inc.incident_id);
        let target = json!({"events": events});
        queue_follow_up(conn, &rid, inc, CARD_REFRESH, &target, now).await?;
    }
    Ok(())
}
