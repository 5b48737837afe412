//! The delivery worker (hop 3 of DESIGN.md): sends the notification outbox through
//! `klaxon-notify`. Every node may run it; each row is claimed by one node at a time under a
//! lease, and retries wait as rows (`next_attempt_at`), so stopping or losing a node loses
//! nothing: its claims expire and another node (or the same one after a restart) sends them.
//!
//! The first attempt of a notification the inbox worker queues does not wait for a claim of
//! its own: the processing batch claims it for this node in the same commit and hands it
//! over in memory ([`take_handed_off`]); everything else is found by [`poll`].
//!
//! Metrics: `klaxon_notifications_total{channel,outcome}`, `klaxon_notify_attempt_seconds`,
//! `klaxon_notify_delay_seconds` (decision to sent), `klaxon_notify_claims_lost_total` and the
//! gauge `klaxon_notify_backlog` (queued rows, retries included).

use std::time::{Duration, Instant};

use klaxon_notify::Deliverer;
use tokio::sync::watch;

use crate::state::AppState;

/// How often the backlog gauge is refreshed.
const BACKLOG_EVERY: Duration = Duration::from_secs(10);

pub async fn run(state: AppState, deliverer: Deliverer, shutdown: watch::Receiver<bool>) {
    tokio::join!(
        poll(state.clone(), deliverer.clone(), shutdown.clone()),
        take_handed_off(state, deliverer, shutdown),
    );
}

/// Sends the rows this node's inbox batches claimed in their own commit (see
/// `klaxon_store::Store::hand_off_deliveries_to`) as soon as each batch has committed, each
/// hand-off in a task of its own so a slow provider in [`poll`]'s round does not hold a new
/// page back.
async fn take_handed_off(
    state: AppState,
    deliverer: Deliverer,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let rows = tokio::select! {
            rows = state.store.next_handed_off() => rows,
            _ = shutdown.changed() => break,
        };
        if *shutdown.borrow() {
            // Claimed but not sent: the claims expire and `poll` (here or on another node)
            // sends the rows then.
            break;
        }
        let deliverer = deliverer.clone();
        let store = state.store.clone();
        let now = state.clock.now();
        tokio::spawn(async move {
            let n = rows.len();
            if let Err(e) = deliverer.deliver_claimed(rows, now).await {
                tracing::error!(error = %e, "recording a handed-off delivery failed; the row will be retried after its claim");
            }
            store.handed_off_done(n);
        });
    }
}

/// Claims and sends the due rows nobody handed over: retries coming due, rows queued by the
/// timer worker, by incident actions or by other nodes.
async fn poll(state: AppState, deliverer: Deliverer, mut shutdown: watch::Receiver<bool>) {
    let mut failures: u32 = 0;
    let mut backlog_at: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if backlog_at.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
            backlog_at = Some(Instant::now());
            if let Ok(n) = state.store.delivery_backlog().await {
                metrics::gauge!("klaxon_notify_backlog").set(n as f64);
            }
        }
        match deliverer.run_once(state.clock.now()).await {
            Ok(round) if round.claimed > 0 => {
                failures = 0;
                continue;
            }
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %e, "claiming notifications failed");
            }
        }
        // Idle: `workers.idle_poll_ms` looks for rows of other nodes and retries coming due;
        // this node's own commits wake the worker at once.
        let wait = state.config.workers.idle_poll() * failures.clamp(1, 25);
        tokio::select! {
            _ = state.delivery_ready.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}
