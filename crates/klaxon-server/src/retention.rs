//! The incident retention worker (docs/data-retention.md; service-agreement.md SVC-184,
//! response.md RSP-454): deletes closed incidents older than their account's
//! `incident_retention_days`, through `Store::sweep_incident_retention` with this node's
//! clock.
//!
//! It runs on the nodes that run the timer worker (`workers.timers`). Each sweep deletes a
//! bounded chunk per account in one transaction, so event processing waits at most one chunk;
//! while chunks come back full the next follows at once, otherwise the worker looks again
//! after [`EVERY`]. Several nodes may sweep at once: each chunk takes the incident lock, so
//! they take turns and never delete a row twice.

use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

/// How often an idle worker looks for incidents that passed their retention. Retention is
/// counted in days, so a few minutes of delay change nothing.
const EVERY: Duration = Duration::from_secs(300);

/// Incidents (and unattached alerts) per account and transaction.
pub const CHUNK: i64 = 500;

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let more = match sweep(&state).await {
            Ok(more) => more,
            Err(e) => {
                tracing::error!(error = %e, "the incident retention sweep failed; it will be retried");
                false
            }
        };
        let wait = if more {
            Duration::from_millis(10)
        } else {
            EVERY
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One sweep at the node's `now`; true when some account may have more due.
pub async fn sweep(state: &AppState) -> Result<bool, klaxon_store::StoreError> {
    let sweeps = state
        .store
        .sweep_incident_retention(state.clock.now(), CHUNK)
        .await?;
    for s in &sweeps {
        metrics::counter!("klaxon_retention_incidents_deleted_total")
            .increment(u64::try_from(s.counts.incidents).unwrap_or(0));
        metrics::counter!("klaxon_retention_alerts_deleted_total")
            .increment(u64::try_from(s.counts.alerts).unwrap_or(0));
        tracing::info!(
            account_id = s.account_id,
            closed_before = s.cutoff,
            incidents = s.counts.incidents,
            alerts = s.counts.alerts,
            "incident retention deleted closed incidents"
        );
    }
    // SVC-182: export archives are deleted when their download link expires.
    crate::export::sweep(state).await?;
    // SMS reply codes are useless once expired (docs/notifications.md).
    state.store.purge_reply_codes(state.clock.now()).await?;
    // So are one-click action links.
    state.store.purge_action_links(state.clock.now()).await?;
    Ok(sweeps.iter().any(|s| s.more))
}
