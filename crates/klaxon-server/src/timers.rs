//! The timer worker: runs due incident steps (escalations, repeats, snooze ends, delayed
//! assignments, auto-close) from the durable `timers` table (response.md §2.14).
//!
//! Every node may run it. A step is claimed by one node for `TIMER_CLAIM_MS` and applied in the
//! same transaction that deletes its row, so a node that dies mid-step loses only its claim:
//! another node runs the step once the claim expires, and no step runs twice.
//!
//! It is also the escalation auditor: each step's lateness (now − due) is recorded in
//! `klaxon_timer_lateness_seconds`, and a step later than 30 s is logged and counted in
//! `klaxon_timer_late_total`.
//!
//! It also starts the HTTP pulls that have come due (ingest.md ING-221, `crate::pull`).

use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

/// The longest an idle worker sleeps: bounds the lateness of a step scheduled meanwhile (by
/// another node, or one due sooner than anything the worker knew of).
const MAX_IDLE: Duration = Duration::from_millis(250);
/// The shortest sleep, so a worker never spins.
const MIN_IDLE: Duration = Duration::from_millis(5);

/// Lateness beyond which the auditor complains.
const LATE_MS: i64 = 30_000;

/// Steps claimed per round trip.
const CLAIM: i64 = 64;

/// How often the worker sweeps shift reminders (RSP-230, RSP-231) into the outbox: a
/// reminder goes out at most this late.
const REMINDER_SWEEP_MS: i64 = 15_000;

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let holder = format!("timers-{}", crate::state::random_hex(6));
    let mut failures: u32 = 0;
    let mut last_sweep: i64 = i64::MIN;
    let mut last_pull_sweep: i64 = i64::MIN;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = state.clock.now();
        if now.saturating_sub(last_pull_sweep) >= crate::pull::SWEEP_MS {
            last_pull_sweep = now;
            crate::pull::sweep(&state, now, &holder).await;
        }
        if now.saturating_sub(last_sweep) >= REMINDER_SWEEP_MS {
            last_sweep = now;
            sweep_reminders(&state, now).await;
        }
        match state.store.claim_due_timers(&holder, now, CLAIM).await {
            Ok(due) if !due.is_empty() => {
                failures = 0;
                for timer in &due {
                    let now = state.clock.now();
                    match state.store.run_timer(&holder, timer, now).await {
                        Ok(true) => {
                            audit(timer, now);
                            state.wake_senders();
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(error = %e, incident_id = %timer.incident_id,
                                kind = %timer.kind, "timer step failed; it will be retried");
                        }
                    }
                }
                continue;
            }
            Ok(_) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::error!(error = %e, "claiming due timers failed");
            }
        }
        let wait = if failures > 0 {
            MAX_IDLE * failures.min(20)
        } else {
            idle_wait(&state).await
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Queues the shift reminders that have come due; they are delivered like any notification.
async fn sweep_reminders(state: &AppState, now: i64) {
    match state.store.sweep_shift_reminders(now).await {
        Ok(sweep) => {
            if sweep.queued > 0 {
                metrics::counter!("klaxon_shift_reminders_total").increment(sweep.queued as u64);
                state.wake_senders();
            }
            if sweep.stale > 0 {
                metrics::counter!("klaxon_shift_reminders_stale_total")
                    .increment(sweep.stale as u64);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "sweeping shift reminders failed; the next sweep retries")
        }
    }
}

/// Sleeps until the earliest pending step is due, within [`MIN_IDLE`, `MAX_IDLE`].
async fn idle_wait(state: &AppState) -> Duration {
    match state.store.next_timer_due().await {
        Ok(Some(due)) => {
            let ms = due.saturating_sub(state.clock.now()).max(0);
            Duration::from_millis(u64::try_from(ms).unwrap_or(0)).clamp(MIN_IDLE, MAX_IDLE)
        }
        _ => MAX_IDLE,
    }
}

fn audit(timer: &klaxon_store::DueTimer, now: i64) {
    let late_ms = now.saturating_sub(timer.due_at).max(0);
    metrics::histogram!("klaxon_timer_lateness_seconds").record(late_ms as f64 / 1000.0);
    metrics::counter!("klaxon_timer_steps_total", "kind" => timer.kind.clone()).increment(1);
    if late_ms > LATE_MS {
        metrics::counter!("klaxon_timer_late_total").increment(1);
        tracing::warn!(
            incident_id = %timer.incident_id,
            kind = %timer.kind,
            late_seconds = late_ms / 1000,
            "an incident step ran more than 30 s after it was due"
        );
    }
}
