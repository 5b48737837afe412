//! Timer benchmark (issue "durable timers", target: with 100 000 pending timers, due steps fire
//! with p99 lateness under 1 s and p50 under 100 ms).
//!
//! 1. Ingests `--pending` alerts through the real inbox path under a rule whose first level
//!    escalates after 12 h: every incident is assigned at once and leaves one pending timer.
//!    The ingest rate with assignment is reported too.
//! 2. Snoozes `--due` of those incidents for one minute, spread evenly over `--spread` seconds,
//!    so their snooze-end steps fall due at that steady rate a minute later, among all the
//!    pending timers.
//! 3. Runs the same loop as the node's timer worker (claim due steps, run each) against the
//!    wall clock and records each step's lateness (run time − due time) until every snooze has
//!    ended; then prints the percentiles and the process's peak memory.
//!
//! `klaxon-timerbench --database-url sqlite:///tmp/x/klaxon.db` (default: a temporary SQLite
//! file) or `--database-url postgres://…/fresh_db`.

#[allow(dead_code)] // the load generator uses the rest of it
#[path = "hist.rs"]
mod hist;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use klaxon_core::model::{EventOrigin, Labels, NewEvent, Status};
use klaxon_core::response::rules::By;
use klaxon_core::response::{EscalationRule, Level, RuleStatus, Target};
use klaxon_store::{ActionResult, BootstrapSeed, IncidentFilter, Paging, Store, StoreOptions};

#[derive(Parser)]
struct Args {
    /// `sqlite://path` or `postgres://…`; empty = a temporary SQLite file.
    #[arg(long, default_value = "")]
    database_url: String,
    /// Incidents (and so pending timers) created first.
    #[arg(long, default_value_t = 100_000)]
    pending: usize,
    /// Steps that fall due during the measurement.
    #[arg(long, default_value_t = 3_000)]
    due: usize,
    /// Seconds over which the due steps are spread.
    #[arg(long, default_value_t = 30)]
    spread: u64,
}

fn wall() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile_dir()?;
    let url = if args.database_url.is_empty() {
        format!("sqlite://{}/klaxon.db", tmp.display())
    } else {
        args.database_url.clone()
    };
    let store = Store::connect(&url, StoreOptions::default()).await?;
    store.migrate().await?;
    let boot = store
        .bootstrap(
            &BootstrapSeed {
                account_name: "bench".into(),
                owner_email: "owner@bench.local".into(),
                owner_name: "Owner".into(),
                owner_password: "bench-password".into(),
                app_key: "b".repeat(32),
                integration_key: "c".repeat(32),
            },
            wall(),
        )
        .await?;
    let level = |window| Level {
        target: Target {
            person_ids: vec![boot.owner_member_id],
            by: Some(By {
                follow_preference: true,
                ..By::default()
            }),
            ..Target::default()
        },
        escalate_window: window,
        force_escalate: false,
        max_times: 0,
        notify_step: 10.0,
    };
    let rule = EscalationRule {
        rule_id: String::new(),
        account_id: boot.account_id,
        channel_id: boot.channel_id,
        rule_name: "bench".into(),
        description: String::new(),
        priority: 0,
        status: RuleStatus::Enabled,
        template_id: String::new(),
        aggr_window: 0,
        time_filters: vec![],
        filters: vec![],
        layers: vec![level(720), level(720)],
        updated_by: 0,
        created_at: 0,
        updated_at: 0,
    };
    if store.save_escalation_rule(rule, wall()).await?.is_err() {
        bail!("cannot create the rule");
    }

    // 1. Pending timers through the real ingest path.
    let started = Instant::now();
    let origin = |i: usize| EventOrigin {
        request_id: format!("bench-{i}"),
        account_id: boot.account_id,
        integration_id: boot.integration_id,
        integration_type: "standard".into(),
        integration_name: "bench".into(),
        channel_id: boot.channel_id,
        received_at: wall(),
    };
    let event = |i: usize| NewEvent {
        alert_key: format!("timer-bench-{i}"),
        event_status: Status::Critical,
        event_severity: None,
        title: format!("timer bench {i}"),
        title_rule: format!("timer bench {i}"),
        description: String::new(),
        labels: Labels::new(),
        images: vec![],
        event_time: wall() / 1000 * 1000,
        raw: String::new(),
    };
    let mut i = 0;
    while i < args.pending {
        let n = (args.pending - i).min(1000);
        store
            .enqueue((i..i + n).map(|k| (origin(k), event(k))).collect())
            .await?;
        i += n;
        while store.process_inbox("bench", 512, wall()).await? > 0 {}
    }
    let ingest = started.elapsed();
    println!(
        "ingest with assignment: {} incidents in {:.1} s = {:.0}/s (each: i_new, i_assign, i_notify, 3 outbox rows, 1 timer)",
        args.pending,
        ingest.as_secs_f64(),
        args.pending as f64 / ingest.as_secs_f64()
    );

    // 2. Pick the incidents to snooze.
    let now = wall();
    let mut ids: Vec<String> = Vec::new();
    let mut p = 1;
    while ids.len() < args.due {
        let page = store
            .list_incidents(
                boot.account_id,
                &IncidentFilter {
                    paging: Paging {
                        p,
                        limit: 100,
                        asc: true,
                        search_after_ctx: None,
                    },
                    start_time: now - 86_400_000,
                    end_time: now + 60_000,
                    ..IncidentFilter::default()
                },
            )
            .await?;
        if page.items.is_empty() {
            break;
        }
        ids.extend(page.items.into_iter().map(|i| i.incident_id));
        p += 1;
    }
    ids.truncate(args.due);
    let due = ids.len();

    // 3. The worker loop, as in the node (crates/klaxon-server/src/timers.rs).
    let worker_store = store.clone();
    let worker = tokio::spawn(async move {
        let mut lateness = hist::Histogram::default();
        let mut ran = 0usize;
        let deadline = Instant::now() + Duration::from_secs(600);
        while ran < due && Instant::now() < deadline {
            let claimed = worker_store
                .claim_due_timers("bench-worker", wall(), 64)
                .await?;
            if claimed.is_empty() {
                // As the node's worker: sleep until the next due step, 5–250 ms.
                let wait = match worker_store.next_timer_due().await? {
                    Some(due) => {
                        Duration::from_millis(u64::try_from((due - wall()).max(0)).unwrap_or(0))
                            .clamp(Duration::from_millis(5), Duration::from_millis(250))
                    }
                    None => Duration::from_millis(250),
                };
                tokio::time::sleep(wait).await;
                continue;
            }
            for t in &claimed {
                let at = wall();
                if worker_store.run_timer("bench-worker", t, at).await? {
                    lateness.record(u64::try_from(at - t.due_at).unwrap_or(0));
                    if t.kind == "snooze_end" {
                        ran += 1;
                    }
                }
            }
        }
        anyhow::Ok((lateness, ran))
    });

    let gap = Duration::from_secs_f64(args.spread as f64 / due.max(1) as f64);
    let snooze_started = Instant::now();
    for (k, id) in ids.iter().enumerate() {
        let target = snooze_started + gap * u32::try_from(k).unwrap_or(u32::MAX);
        tokio::time::sleep_until(target.into()).await;
        let r = store
            .incident_action(boot.account_id, id, wall(), |e, inc, ctx| {
                e.snooze(inc, boot.owner_member_id, 1, "console", ctx.rule)
            })
            .await?;
        if r != ActionResult::Done {
            bail!("snooze of {id} failed: {r:?}");
        }
    }
    let (lateness, ran) = worker.await.context("worker")??;
    println!(
        "timers: {} pending, {ran} snooze ends due over {} s; lateness ms p50 {} p90 {} p99 {} max {}",
        args.pending,
        args.spread,
        lateness.percentile(50.0).unwrap_or(0),
        lateness.percentile(90.0).unwrap_or(0),
        lateness.percentile(99.0).unwrap_or(0),
        lateness.max().unwrap_or(0),
    );
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS {rss:.0} MiB");
    }
    store.close().await;
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("klaxon-timerbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
