//! Flapping detection in the inbox batch (ingest.md §2.15, ING-180).
//!
//! Runs once per new incident, after grouping (so only incidents that really were created
//! count) and before the response side sees them (it mutes flagged incidents of
//! `remind_suppress` channels, RSP-204). The history of the key comes from the indexed
//! `incidents_flapping (account_id, channel_id, first_alert_key, created_at)` (0016); the
//! incidents created earlier in the same batch are not written yet and are added from the
//! batch's own list, in creation order.

use std::collections::{HashMap, HashSet};

use klaxon_core::flapping;
use klaxon_core::model::{Incident, Millis};
use sqlx::AnyConnection;

use crate::Result;
use crate::channels::BatchChannels;
use crate::db::Sql;
use crate::rows::get_i64;

/// Most stored incidents of one key read per detection. Only a key that opened thousands of
/// incidents within `in_mins + mute_mins` reaches it; the oldest are then left out, which can
/// only shorten a mute period that the newest ones would reopen anyway.
const HISTORY_LIMIT: i64 = 10_000;

/// Sets `is_flapping` on the incidents of `created` (in creation order) whose channel detects
/// flapping; returns the ids of those flagged.
pub(crate) async fn mark(
    conn: &mut AnyConnection,
    channels: &BatchChannels,
    incidents: &mut HashMap<String, Option<Incident>>,
    created: &[String],
    now: Millis,
) -> Result<HashSet<String>> {
    // Per (account, channel, key): the creation times seen so far, stored then batch.
    let mut history: HashMap<(i64, i64, String), Vec<Millis>> = HashMap::new();
    let mut flagged = HashSet::new();
    for id in created {
        let Some(Some(inc)) = incidents.get_mut(id) else {
            continue; // joined another incident while grouping: nothing was created
        };
        let Some(cfg) = channels.flapping(inc.account_id, inc.channel_id) else {
            continue;
        };
        if inc.first_alert_key.is_empty() {
            continue;
        }
        let key = (inc.account_id, inc.channel_id, inc.first_alert_key.clone());
        if !history.contains_key(&key) {
            let since = now.saturating_sub(cfg.lookback_ms());
            let times = stored_times(conn, &key, since).await?;
            history.insert(key.clone(), times);
        }
        let Some(times) = history.get_mut(&key) else {
            continue;
        };
        let verdict = flapping::detect(cfg, &inc.first_alert_key, times, inc.created_at);
        inc.is_flapping = verdict.is_flapping;
        if verdict.is_flapping {
            flagged.insert(id.clone());
        }
        times.push(inc.created_at);
    }
    Ok(flagged)
}

/// Creation times of the stored incidents of one key created after `since`, oldest first.
async fn stored_times(
    conn: &mut AnyConnection,
    (account, channel, key): &(i64, i64, String),
    since: Millis,
) -> Result<Vec<Millis>> {
    let mut sql = Sql::new("SELECT created_at FROM incidents WHERE account_id = ");
    sql.bind(*account)
        .push(" AND channel_id = ")
        .bind(*channel)
        .push(" AND first_alert_key = ")
        .bind(key.as_str())
        .push(" AND created_at > ")
        .bind(since)
        .push(" ORDER BY created_at DESC LIMIT ")
        .bind(HISTORY_LIMIT);
    let mut times = sql
        .query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| get_i64(r, "created_at"))
        .collect::<Result<Vec<Millis>>>()?;
    times.reverse();
    Ok(times)
}
