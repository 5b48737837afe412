//! The inbox worker (hop 2 of DESIGN.md): processes accepted events in arrival order under the
//! store's lease, woken at once by this node's pushes and by a short poll for other nodes'.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::state::AppState;

/// How often an idle worker looks for events queued by other nodes (or left by a crash).
const POLL: Duration = Duration::from_millis(500);

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let holder = format!("node-{}", crate::state::random_hex(6));
    let batch = state.config.storage.process_batch.max(1);
    let mut failures: u32 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let started = Instant::now();
        match state
            .store
            .process_inbox(&holder, batch, state.clock.now())
            .await
        {
            Ok(n) if n > 0 => {
                failures = 0;
                state.delivery_ready.notify_one();
                metrics::counter!("klaxon_inbox_events_processed_total").increment(n as u64);
                metrics::histogram!("klaxon_store_process_seconds")
                    .record(started.elapsed().as_secs_f64());
                continue;
            }
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %e, "inbox processing failed; the batch will be retried");
            }
        }
        // Back off on repeated failures (up to 5 s) so a broken database is not hammered.
        let wait = if failures > 0 {
            POLL * failures.min(10)
        } else {
            POLL
        };
        tokio::select! {
            _ = state.inbox_ready.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}
