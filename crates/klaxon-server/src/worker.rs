//! The inbox worker (hop 2 of DESIGN.md): processes accepted events in arrival order under the
//! store's lease, woken at once by this node's pushes and by a short poll for other nodes'.
//!
//! A batch whose enrichment rules call label mapping services (ING-072) comes back from the
//! store with the calls it needs and nothing written; the worker makes them with no
//! transaction open (`crate::mapping_api`) and runs the batch again with the answers. A chain
//! of api rules may need a few rounds; past [`MAX_CALL_ROUNDS`] the requests still
//! unanswered count as failed, so a batch always finishes.

use std::time::{Duration, Instant};

use klaxon_store::{ApiAnswers, Processed};
use tokio::sync::watch;

use crate::state::AppState;

/// Rounds of mapping-service calls for one batch before unanswered requests count as failed.
const MAX_CALL_ROUNDS: u32 = 8;

/// How often an idle worker looks for events queued by other nodes (or left by a crash).
const POLL: Duration = Duration::from_millis(500);

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let holder = format!("node-{}", crate::state::random_hex(6));
    let batch = state.config.storage.process_batch.max(1);
    let mut failures: u32 = 0;
    let callers = match crate::mapping_api::Callers::new(state.config.notify.allow_private_targets)
    {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "label mapping service calls are off on this node");
            None
        }
    };
    let fresh = || match &callers {
        Some(_) => ApiAnswers::new(),
        None => ApiAnswers::failing_missing(),
    };
    let mut answers = fresh();
    let mut rounds: u32 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let started = Instant::now();
        let result = state
            .store
            .process_inbox_with(&holder, batch, state.clock.now(), &answers)
            .await;
        let result = match result {
            Ok(Processed::NeedCalls(mut calls)) => {
                // ING-072: the calls are made here, with no transaction open.
                rounds += 1;
                // The services' headers (sealed at rest) are opened only for the calls.
                if let Err(e) = state.store.open_call_headers(&mut calls).await {
                    tracing::error!(error = %e,
                        "cannot open a mapping service's headers; its calls count as failed");
                    answers.fail_missing();
                } else if let Some(c) = &callers {
                    c.call_all(calls, &mut answers).await;
                }
                if rounds >= MAX_CALL_ROUNDS {
                    answers.fail_missing();
                }
                continue;
            }
            Ok(Processed::Done(n)) => {
                answers = fresh();
                rounds = 0;
                Ok(n)
            }
            Err(e) => {
                answers = fresh();
                rounds = 0;
                Err(e)
            }
        };
        match result {
            Ok(n) if n > 0 => {
                failures = 0;
                state.wake_senders();
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
