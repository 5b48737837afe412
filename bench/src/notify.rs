//! `klaxon-loadgen notify-latency`: how long after an event is accepted its first notification
//! request reaches a receiver (issue 7: p50 under 5 ms, p99 under 50 ms while 500 other
//! events/s are ingested; `bench/notify.sh` runs it beside the background load).
//!
//! It configures the running server through the Open API with an APP key:
//!
//! * a channel `notify-latency` with its own standard integration (the probes' key);
//! * an escalation rule on it whose first level notifies the account owner by e-mail (no SMTP
//!   is configured, so that send fails at once without network) and a Slack bot whose
//!   `webhook_url` is this process's receiver (`/bot`): the escalation's notification;
//! * an incident webhook (`i_new`) for that channel to the receiver (`/hook`): the outbound
//!   webhook of the same incident.
//!
//! Then it sends one probe event every `--interval-ms` (a new alert key, so a new incident)
//! and records, per probe, the instant the push was answered 200 (accepted, ING-011) and the
//! instants its bot message and its webhook reached the receiver (matched by the probe's
//! title in the request body). The report gives p50/p90/p99/max per path, for the first of the
//! two, the probes that never arrived within `--timeout`, and the server's memory
//! (`--server-pid`).
//!
//! ```text
//! klaxon-loadgen notify-latency --app-key KEY [--url http://127.0.0.1:8080] [--duration 30]
//!     [--warmup 3] [--interval-ms 100] [--timeout 10] [--server-pid PID] [--json]
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::noise::Api;

#[derive(Parser, Debug)]
#[command(
    name = "klaxon-loadgen notify-latency",
    about = "Measure accept-to-notification latency through a local receiver"
)]
struct NotifyArgs {
    /// Base URL of the Klaxon server (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An APP key of the account (printed at the first start).
    #[arg(long)]
    app_key: String,
    /// Measured seconds of probes.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds of probes before measuring (not counted).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Milliseconds between two probes.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Seconds to wait for a probe's notifications after the last probe.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Sample this process's VmRSS every 100 ms.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Entry point of the subcommand; `args` excludes the program name and `notify-latency`.
pub fn main(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let args = NotifyArgs::parse_from(std::iter::once("notify-latency".to_owned()).chain(args));
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("--duration must be a number of seconds > 0");
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        bail!("--warmup must be a number of seconds >= 0");
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a number of seconds > 0");
    }
    if args.interval_ms == 0 {
        bail!("--interval-ms must be at least 1");
    }
    // Two threads: the receiver's timestamps must not wait behind the probe sender.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(run(&args))?;
    if args.json {
        println!("{report}");
    } else {
        print!("{}", text(&report));
    }
    Ok(())
}

/// Per probe number: when it was accepted, and when each path's request arrived.
#[derive(Default, Clone, Copy)]
struct Probe {
    accepted: Option<Instant>,
    bot: Option<Instant>,
    hook: Option<Instant>,
    measured: bool,
}

type Probes = Arc<Mutex<HashMap<u64, Probe>>>;

fn lock(p: &Probes) -> std::sync::MutexGuard<'_, HashMap<u64, Probe>> {
    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const TITLE: &str = "notify-probe-";

/// The probe number in a request body: the digits after the first `notify-probe-`.
fn probe_number(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find(TITLE)? + TITLE.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The receiver: answers every request 200 `ok` (what a Slack incoming webhook says) and
/// stamps the arrival of each probe's first request per path.
async fn receive(listener: TcpListener, probes: Probes) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let probes = probes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let probes = probes.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    let body = req.into_body().collect().await.map(|b| b.to_bytes());
                    // Stamped once the whole request is in: that is when a receiver could act.
                    let at = Instant::now();
                    if let Ok(body) = body
                        && let Some(n) = probe_number(&body)
                    {
                        let mut map = lock(&probes);
                        let p = map.entry(n).or_default();
                        let slot = if path.starts_with("/bot") {
                            &mut p.bot
                        } else {
                            &mut p.hook
                        };
                        slot.get_or_insert(at);
                    }
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"ok",
                    ))))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn setup(api: &Api, receiver: SocketAddr) -> anyhow::Result<String> {
    let members = api.call("/member/list", &json!({"limit": 1})).await?;
    let owner = members["items"][0]["member_id"]
        .as_i64()
        .ok_or_else(|| anyhow!("no member to notify: {members}"))?;
    let channel = api
        .call(
            "/channel/create",
            &json!({"channel_name": format!("notify-latency {}", std::process::id())}),
        )
        .await?;
    let channel_id = channel["channel_id"]
        .as_i64()
        .ok_or_else(|| anyhow!("channel without an id: {channel}"))?;
    let integration = api
        .call(
            "/integration/create",
            &json!({"integration_name": "notify-latency probes", "type": "standard",
                    "kind": "dedicated", "channel_id": channel_id}),
        )
        .await?;
    let key = integration["integration_key"]
        .as_str()
        .ok_or_else(|| anyhow!("integration without a key: {integration}"))?
        .to_owned();
    api.call(
        "/channel/escalate/rule/create",
        &json!({"channel_id": channel_id, "rule_name": "notify-latency",
                "layers": [{"target": {"person_ids": [owner],
                    "by": {"follow_preference": false, "critical": ["email"]},
                    "webhooks": [{"type": "slack",
                                  "settings": {"webhook_url": format!("http://{receiver}/bot")}}]},
                            "escalate_window": 30}]}),
    )
    .await
    .context("escalation rule")?;
    api.call(
        "/webhook/create",
        &json!({"kind": "incident_webhook", "name": "notify-latency",
                "endpoint": format!("http://{receiver}/hook"),
                "event_types": ["i_new"], "channel_ids": [channel_id]}),
    )
    .await
    .context("incident webhook")?;
    Ok(key)
}

async fn run(args: &NotifyArgs) -> anyhow::Result<Value> {
    let api = Api::new(&args.url, &args.app_key).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let receiver = listener.local_addr()?;
    let probes: Probes = Arc::default();
    tokio::spawn(receive(listener, probes.clone()));
    let key = setup(&api, receiver).await?;
    let target = crate::resolve_target(&args.url, &key, crate::Protocol::Standard, 1).await?;

    let rss_start = args.server_pid.and_then(crate::read_rss_kib);
    let (stop_rss, stop_rx) = tokio::sync::oneshot::channel();
    let rss_task = match (args.server_pid, rss_start) {
        (Some(pid), Some(kib)) => Some(tokio::spawn(crate::sample_rss(pid, kib, stop_rx))),
        _ => None,
    };

    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let end = measure_start + Duration::from_secs_f64(args.duration);
    let every = Duration::from_millis(args.interval_ms);
    let mut sender = crate::connect(target.addr, Duration::from_secs(10))
        .await
        .map_err(|e| anyhow!("cannot connect to {}: {e:?}", target.addr))?;
    let mut rejected = 0u64;
    let mut n: u64 = 0;
    let run_id = std::process::id();
    loop {
        let due = start + every * u32::try_from(n).unwrap_or(u32::MAX);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        let body = json!({"event_status": "Critical", "title_rule": format!("{TITLE}{n}"),
                          "alert_key": format!("probe-{run_id}-{n}"),
                          "description": "klaxon-loadgen notify-latency probe"});
        let mut req = Request::new(Full::new(Bytes::from(serde_json::to_vec(&body)?)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = target.uri.clone();
        req.headers_mut().insert(HOST, target.host.clone());
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let answer = match crate::send(&mut sender, req).await {
            Ok(a) => Ok(a),
            Err(_) => {
                // The server closed the keep-alive connection: reconnect once and resend.
                sender = crate::connect(target.addr, Duration::from_secs(10))
                    .await
                    .map_err(|e| anyhow!("cannot reconnect: {e:?}"))?;
                Err(())
            }
        };
        let measured = due >= measure_start;
        match answer {
            Ok((200, _)) => {
                let at = Instant::now();
                let mut map = lock(&probes);
                let p = map.entry(n).or_default();
                p.accepted = Some(at);
                p.measured = measured;
            }
            _ => rejected += u64::from(measured),
        }
        n += 1;
    }
    // Wait for the stragglers, bounded.
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    while Instant::now() < deadline {
        let missing = lock(&probes)
            .values()
            .any(|p| p.accepted.is_some() && (p.bot.is_none() || p.hook.is_none()));
        if !missing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_rss.send(());
    let rss = match rss_task {
        Some(t) => Some(t.await?),
        None => None,
    };

    let map = lock(&probes).clone();
    let measured: Vec<Probe> = map
        .values()
        .filter(|p| p.measured && p.accepted.is_some())
        .copied()
        .collect();
    let since = |p: &Probe, at: Option<Instant>| -> Option<u64> {
        let accepted = p.accepted?;
        // A request can arrive before the push's answer has been read: that is 0 after
        // acceptance, not a negative latency.
        at.map(|t| t.saturating_duration_since(accepted).as_micros() as u64)
    };
    let bot: Vec<u64> = measured.iter().filter_map(|p| since(p, p.bot)).collect();
    let hook: Vec<u64> = measured.iter().filter_map(|p| since(p, p.hook)).collect();
    let first: Vec<u64> = measured
        .iter()
        .filter_map(|p| {
            let t = match (p.bot, p.hook) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            since(p, t)
        })
        .collect();
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    Ok(json!({
        "probes": measured.len(),
        "rejected": rejected,
        "interval_ms": args.interval_ms,
        "first": summary(first, measured.len()),
        "bot": summary(bot, measured.len()),
        "webhook": summary(hook, measured.len()),
        "server_rss_mib": rss.map(|r| json!({
            "start": crate::round3(crate::mib(r.start_kib)),
            "peak": crate::round3(crate::mib(r.peak_kib)),
            "end": crate::round3(crate::mib(r.last_kib)),
        })),
        "loadavg_1m": loadavg,
    }))
}

/// Exact percentiles (nearest rank) in milliseconds of `micros`, and how many of `total`
/// probes never arrived.
fn summary(mut micros: Vec<u64>, total: usize) -> Value {
    micros.sort_unstable();
    let ms = |v: u64| crate::round3(v as f64 / 1000.0);
    let pct = |q: f64| -> Value {
        if micros.is_empty() {
            return Value::Null;
        }
        let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
        json!(ms(micros[rank - 1]))
    };
    json!({
        "arrived": micros.len(),
        "missing": total.saturating_sub(micros.len()),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": micros.last().map(|v| ms(*v)),
    })
}

fn text(r: &Value) -> String {
    let mut out = format!(
        "probes {} (rejected {}), one every {} ms; load average {}\n",
        r["probes"], r["rejected"], r["interval_ms"], r["loadavg_1m"]
    );
    for (name, key) in [
        ("first request", "first"),
        ("escalation bot", "bot"),
        ("incident webhook", "webhook"),
    ] {
        let s = &r[key];
        out.push_str(&format!(
            "{name:<17} p50 {} ms  p90 {} ms  p99 {} ms  max {} ms  (arrived {}, missing {})\n",
            s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"], s["arrived"], s["missing"]
        ));
    }
    if let Some(rss) = r["server_rss_mib"].as_object() {
        out.push_str(&format!(
            "server RSS: start {} MiB, peak {} MiB, end {} MiB\n",
            rss["start"], rss["peak"], rss["end"]
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_numbers_are_found_in_any_body() {
        assert_eq!(
            probe_number(br#"{"text":"INC #12 notify-probe-42\n"}"#),
            Some(42)
        );
        assert_eq!(probe_number(br#"{"title":"notify-probe-7"}"#), Some(7));
        assert_eq!(probe_number(b"nothing here"), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = summary((1..=100).map(|v| v * 1000).collect(), 101);
        assert_eq!(s["p50_ms"], json!(50.0));
        assert_eq!(s["p99_ms"], json!(99.0));
        assert_eq!(s["max_ms"], json!(100.0));
        assert_eq!(s["missing"], json!(1));
    }
}
