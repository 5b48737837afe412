//! `klaxon-loadgen`: pushes Klaxon standard alert events at a running server and reports
//! throughput, errors, latency percentiles and (optionally) the server's memory.
//!
//! Every request is `POST {url}/event/push/alert/standard?integration_key={key}` with
//! `Content-Type: application/json` and a body such as
//!
//! ```json
//! {"event_status":"Critical","title_rule":"loadgen alert 1a2b3c4d-3-17","alert_key":"lg-1a2b3c4d-3-17",
//!  "description":"synthetic event from klaxon-loadgen","labels":{"source":"klaxon-loadgen","service":"svc-1","host":"host-3"}}
//! ```
//!
//! # Usage
//!
//! ```text
//! klaxon-loadgen --integration-key KEY [--url http://127.0.0.1:8080]
//!     [--connections 32] [--duration 10] [--requests N] [--rate 0] [--warmup 1]
//!     [--mix new=80,repeat=15,recover=5] [--server-pid PID] [--keys-out FILE]
//!     [--timeout 10] [--threads 1] [--json]
//! ```
//!
//! * `--connections N`: N tasks, each owning one HTTP/1.1 keep-alive connection and sending one
//!   request at a time. A connection the server closes is reopened.
//! * `--duration SECS` / `--requests N`: the measured part stops after SECS seconds or after N
//!   requests, whichever comes first. With neither, `--duration 10`. Requests still in flight at
//!   the end are awaited (bounded by `--timeout`) and counted.
//! * `--warmup SECS` (default 1): load is sent the same way before the measured part, and not
//!   counted in the report (its keys do go to `--keys-out` and can be repeated/recovered later).
//! * `--rate R`: R events/s across all connections on a fixed schedule (slot k is due at
//!   `start + k/R`, taken by whichever connection is free). Latency is measured from a slot's
//!   due time, not from when it was sent, so a slow server cannot hide its queueing
//!   (no coordinated omission). If every connection is busy the schedule falls behind; slots
//!   still unsent at the end are reported as `unsent_slots` (use more connections). `0`
//!   (default) is flat out: each connection sends its next request as soon as it has the answer.
//! * `--mix new=A,repeat=B,recover=C` (percentages adding up to 100, a missing kind is 0):
//!   `new` is a fresh alert key (`lg-{run}-{conn}-{seq}`, `run` random per run), `repeat`
//!   re-sends an earlier new alert of the same connection (same key, title and status: a de-dup),
//!   `recover` sends `event_status: Ok` for an earlier key. The first event of a connection is
//!   always new. Statuses of new alerts cycle Critical/Warning/Info.
//! * `--server-pid PID`: samples `VmRSS` of `/proc/PID/status` every 100 ms; reports the value at
//!   start, the peak and the last value.
//! * `--keys-out FILE`: appends the alert_key of every event answered 2xx (warmup included, so
//!   a key may appear more than once), one per line, written as each answer arrives. This is the
//!   crash-test mode: transport errors never abort the run, they are counted (`connect_error`,
//!   `timeout`) and the connection is retried. Without it, failing to (re)connect to the server
//!   aborts the run with an error.
//! * `--timeout SECS` (default 10): per request (connect included); a request without an answer
//!   by then counts as `timeout` and its connection is dropped.
//! * `--threads N` (default 1): generator threads. 1 runs everything on one core, leaving the
//!   other cores to the server.
//! * `--json`: print the report as one JSON object on stdout instead of text.
//!
//! Errors are counted per HTTP status and the `error.code` of the JSON body
//! (`{"error":{"code":"InvalidParameter",...}}`); a body without one counts as `unknown`.
//! Latency covers every request that got an HTTP answer (2xx or not).
//!
//! * `--protocol alertmanager --batch N`: instead of standard events, each request is
//!   `POST {url}/api/v2/alerts` with a JSON array of N Prometheus postable alerts (what Prometheus
//!   sends to an Alertmanager) and `Authorization: Bearer {key}`. The same generator then loads
//!   Klaxon's Alertmanager-compatible endpoint (a `prometheus` integration's key) or a real
//!   Alertmanager (which ignores the header), so both can be measured side by side
//!   (`bench/alertmanager.sh`). `new` alerts fire, `repeat` re-sends them, `recover` sends them
//!   with `endsAt` in the past. The report adds alerts per second (accepted requests × N).
//!
//! Subcommands: `setup-noise` (noise.rs, the rules of `bench/noise.sh`) and `notify-latency`
//! (notify.rs: accept-to-notification latency through a local receiver, `bench/notify.sh`).
//!
//! Example: `klaxon-loadgen --integration-key $KEY --connections 64 --rate 5000 --duration 30
//! --server-pid $(pgrep -n klaxon) --json`.

mod hist;
mod mix;
mod noise;
mod notify;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

use hist::Histogram;
use mix::{Kind, Mix};

#[derive(Parser, Debug)]
#[command(
    name = "klaxon-loadgen",
    version,
    about = "Push standard alert events at a Klaxon server and report throughput and latency"
)]
struct Args {
    /// Base URL of the Klaxon server (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Integration key of the standard alert integration to push to.
    #[arg(long)]
    integration_key: String,
    /// Concurrent keep-alive connections, each sending one request at a time.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured duration in seconds (default 10 when --requests is not given either).
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after this many measured requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Events per second across all connections on a fixed schedule; 0 = flat out.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Percentages of new alerts, repeats (de-dups) and recoveries.
    #[arg(long, default_value = "new=80,repeat=15,recover=5")]
    mix: Mix,
    /// Sample this process's VmRSS every 100 ms and report start and peak.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds of load before measuring (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Append every alert_key answered 2xx to this file; transport errors don't abort the run.
    #[arg(long)]
    keys_out: Option<PathBuf>,
    /// Per-request timeout in seconds (connect included).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Generator threads (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// What the requests are: standard events, or Alertmanager `/api/v2/alerts` batches.
    #[arg(long, value_enum, default_value_t = Protocol::Standard)]
    protocol: Protocol,
    /// Alerts per request with `--protocol alertmanager` (1–1000).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Labels of standard events: `basic` (source, service, host) or `noise` (the label mix
    /// the rules of `setup-noise` look at).
    #[arg(long, value_enum, default_value_t = Labels::Basic)]
    labels: Labels,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Labels {
    /// `source`, `service` (8 values), `host` (one per connection).
    Basic,
    /// Also `check` (20 values), `region` (4), `env` (prod, 2 % staging); hosts spread over
    /// `host-0` … `host-9999`; an address in the description.
    Noise,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// `POST /event/push/alert/standard?integration_key=…`, one event per request.
    Standard,
    /// `POST /api/v2/alerts` with a bearer key, `--batch` postable alerts per request.
    Alertmanager,
}

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1).peekable();
    if argv.peek().map(String::as_str) == Some("setup-noise") {
        return noise::main(argv.skip(1));
    }
    if argv.peek().map(String::as_str) == Some("notify-latency") {
        return notify::main(argv.skip(1));
    }
    let args = Args::parse();
    validate(&args)?;
    let rt = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let report = rt.block_on(run(&args))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn validate(args: &Args) -> anyhow::Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        bail!("--rate must be a number >= 0");
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        bail!("--warmup must be a number of seconds >= 0");
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a number of seconds > 0");
    }
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        bail!("--duration must be a number of seconds > 0");
    }
    if args.requests == Some(0) {
        bail!("--requests must be at least 1");
    }
    if !(1..=1000).contains(&args.batch) {
        bail!("--batch must be 1–1000");
    }
    if args.labels == Labels::Noise && args.protocol != Protocol::Standard {
        bail!("--labels noise is for standard events");
    }
    if args.batch > 1 && args.protocol == Protocol::Standard {
        bail!("--batch needs --protocol alertmanager (standard pushes carry one event)");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Target

/// Where the requests go, prepared once.
struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    /// Origin-form path and query of the push endpoint.
    uri: Uri,
    protocol: Protocol,
    batch: usize,
    /// `Bearer {key}` for the Alertmanager protocol.
    authorization: Option<HeaderValue>,
}

async fn resolve_target(
    url: &str,
    integration_key: &str,
    protocol: Protocol,
    batch: usize,
) -> anyhow::Result<Target> {
    let (hostport, host, mut path) = split_url(url, integration_key)?;
    let mut authorization = None;
    if protocol == Protocol::Alertmanager {
        let base = path.split("/event/push/").next().unwrap_or("");
        path = format!("{base}/api/v2/alerts");
        authorization = Some(
            HeaderValue::from_str(&format!("Bearer {integration_key}"))
                .context("the integration key cannot be a header value")?,
        );
    }
    let addr = tokio::net::lookup_host(&hostport)
        .await
        .with_context(|| format!("cannot resolve {hostport}"))?
        .next()
        .ok_or_else(|| anyhow!("{hostport} resolves to no address"))?;
    Ok(Target {
        addr,
        host: HeaderValue::from_str(&host).context("bad host in --url")?,
        uri: path.parse().context("bad push path")?,
        protocol,
        batch,
        authorization,
    })
}

/// `http://host[:port][/base]` → (`host:port`, Host header, push path and query).
fn split_url(url: &str, integration_key: &str) -> anyhow::Result<(String, String, String)> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("--url {url:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => bail!("--url scheme {other:?} is not supported (plain http only)"),
        None => bail!("--url {url:?} needs a scheme (http://)"),
    }
    if uri.query().is_some() {
        bail!("--url must not have a query");
    }
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow!("--url {url:?} has no host"))?;
    let hostport = match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.host()),
    };
    let base = uri.path().trim_end_matches('/');
    let path = format!(
        "{base}/event/push/alert/standard?integration_key={}",
        percent_encode(integration_key)
    );
    Ok((hostport, authority.as_str().to_owned(), path))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

type Sender = SendRequest<Full<Bytes>>;

#[derive(Debug)]
enum TransportError {
    Connect(String),
    Timeout,
}

impl TransportError {
    fn code(&self) -> &'static str {
        match self {
            TransportError::Connect(_) => "connect_error",
            TransportError::Timeout => "timeout",
        }
    }
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Sender, TransportError> {
    let attempt = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TransportError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| TransportError::Connect(format!("connect timed out after {timeout:?}")))?
}

// ---------------------------------------------------------------------------------------------
// Schedule and workers

/// What a worker does next.
enum Slot {
    /// A warmup request, due at the given time (None: flat out, now).
    Warmup(Option<Instant>),
    /// A measured request.
    Measured(Option<Instant>),
    Done,
}

struct Shared {
    target: Target,
    mix: Mix,
    labels: Labels,
    run_id: u32,
    /// Nanoseconds between two slots; None = flat out.
    slot_ns: Option<f64>,
    start: Instant,
    measure_start: Instant,
    measure_end: Option<Instant>,
    max_requests: Option<u64>,
    timeout: Duration,
    /// Crash-test mode: keep going through transport errors, log accepted keys here.
    keys_out: Option<File>,
    tolerate_transport_errors: bool,
    stop: AtomicBool,
    warm_slots: AtomicU64,
    slots: AtomicU64,
}

fn after(base: Instant, k: u64, ns: f64) -> Instant {
    base + Duration::from_nanos((k as f64 * ns) as u64)
}

impl Shared {
    fn next_slot(&self, now: Instant) -> Slot {
        if self.stop.load(Ordering::Relaxed) {
            return Slot::Done;
        }
        if now < self.measure_start {
            match self.slot_ns {
                None => return Slot::Warmup(None),
                Some(ns) => {
                    let k = self.warm_slots.fetch_add(1, Ordering::Relaxed);
                    let due = after(self.start, k, ns);
                    if due < self.measure_start {
                        return Slot::Warmup(Some(due));
                    }
                }
            }
        }
        if self.measure_end.is_some_and(|end| now >= end) {
            return Slot::Done;
        }
        let k = self.slots.fetch_add(1, Ordering::Relaxed);
        if self.max_requests.is_some_and(|n| k >= n) {
            return Slot::Done;
        }
        match self.slot_ns {
            None => Slot::Measured(None),
            Some(ns) => {
                let due = after(self.measure_start, k, ns);
                if self.measure_end.is_some_and(|end| due >= end) {
                    Slot::Done
                } else {
                    Slot::Measured(Some(due))
                }
            }
        }
    }
}

/// What one worker saw in the measured part.
struct Stats {
    sent: [u64; 3],
    accepted: [u64; 3],
    /// (HTTP status or None for transport errors, error code) → count.
    errors: HashMap<(Option<u16>, String), u64>,
    latency_us: Histogram,
    last_done: Option<Instant>,
    warmup_sent: u64,
    warmup_accepted: u64,
}

impl Stats {
    fn new() -> Self {
        Stats {
            sent: [0; 3],
            accepted: [0; 3],
            errors: HashMap::new(),
            latency_us: Histogram::default(),
            last_done: None,
            warmup_sent: 0,
            warmup_accepted: 0,
        }
    }

    fn merge(&mut self, o: Stats) {
        for i in 0..3 {
            self.sent[i] += o.sent[i];
            self.accepted[i] += o.accepted[i];
        }
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.latency_us.merge(&o.latency_us);
        self.last_done = self.last_done.max(o.last_done);
        self.warmup_sent += o.warmup_sent;
        self.warmup_accepted += o.warmup_accepted;
    }
}

const STATUSES: [&str; 3] = ["Critical", "Warning", "Info"];
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);
/// Sleep this much less than a slot's due time: tokio's timer rounds wake-ups up to the next
/// millisecond, so the request leaves at or just before its due time rather than up to 1 ms
/// late (latency then counts from the real send time).
const EARLY_WAKE: Duration = Duration::from_millis(1);

/// Writes the body of one event into `body` and its key into `key`.
fn build_event(
    body: &mut String,
    key: &mut String,
    run_id: u32,
    conn: usize,
    kind: Kind,
    seq: u64,
) {
    key.clear();
    let _ = write!(key, "lg-{run_id:08x}-{conn}-{seq}");
    let status = match kind {
        Kind::Recover => "Ok",
        Kind::New | Kind::Repeat => STATUSES[(seq % 3) as usize],
    };
    body.clear();
    let _ = write!(
        body,
        concat!(
            r#"{{"event_status":"{status}","title_rule":"loadgen alert {run_id:08x}-{conn}-{seq}","#,
            r#""alert_key":"{key}","description":"synthetic event from klaxon-loadgen","#,
            r#""labels":{{"source":"klaxon-loadgen","service":"svc-{svc}","host":"host-{conn}"}}}}"#
        ),
        status = status,
        run_id = run_id,
        conn = conn,
        seq = seq,
        key = key,
        svc = seq % 8,
    );
}

/// Like `build_event`, with the label mix the noise-reduction rules look at (`--labels noise`):
/// a repeat of `seq` is byte for byte the same event.
fn build_noise_event(
    body: &mut String,
    key: &mut String,
    run_id: u32,
    conn: usize,
    kind: Kind,
    seq: u64,
) {
    key.clear();
    let _ = write!(key, "lg-{run_id:08x}-{conn}-{seq}");
    let status = match kind {
        Kind::Recover => "Ok",
        Kind::New | Kind::Repeat => STATUSES[(seq % 3) as usize],
    };
    // Spread the hosts over the mapping table's 10,000 rows, and the checks over 20 groups.
    let mix = (conn as u64)
        .wrapping_mul(7919)
        .wrapping_add(seq.wrapping_mul(104_729));
    let host = mix % noise::MAPPING_ROWS as u64;
    let env = if seq % 50 == 7 { "staging" } else { "prod" };
    body.clear();
    let _ = write!(
        body,
        concat!(
            r#"{{"event_status":"{status}","title_rule":"loadgen alert {run_id:08x}-{conn}-{seq}","#,
            r#""alert_key":"{key}","description":"synthetic event from klaxon-loadgen, ip 10.{a}.{b}.{c}","#,
            r#""labels":{{"source":"klaxon-loadgen","service":"svc-{svc}","host":"host-{host}","#,
            r#""check":"check-{check}","region":"region-{region}","env":"{env}"}}}}"#
        ),
        status = status,
        run_id = run_id,
        conn = conn,
        seq = seq,
        key = key,
        a = host / 256 % 256,
        b = host % 256,
        c = seq % 250 + 1,
        svc = seq % 8,
        host = host,
        check = mix / 7 % 20,
        region = conn % 4,
        env = env,
    );
}

/// Writes a JSON array of `batch` Prometheus postable alerts into `body`; the alert names are
/// keyed like standard events (`key` gets the first one's), so repeats and recoveries address
/// the same alerts. A recovery carries `endsAt` in the past, as Prometheus sends it.
#[allow(clippy::too_many_arguments)]
fn build_postable(
    body: &mut String,
    key: &mut String,
    run_id: u32,
    conn: usize,
    kind: Kind,
    seq: u64,
    batch: usize,
) {
    key.clear();
    let _ = write!(key, "lg-{run_id:08x}-{conn}-{seq}");
    let ends = match kind {
        Kind::Recover => r#","endsAt":"2020-01-01T00:00:00Z""#,
        Kind::New | Kind::Repeat => "",
    };
    body.clear();
    body.push('[');
    for i in 0..batch {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            concat!(
                r#"{{"labels":{{"alertname":"LoadgenAlert","instance":"{key}-{i}","#,
                r#""severity":"{severity}","job":"klaxon-loadgen","service":"svc-{svc}"}},"#,
                r#""annotations":{{"summary":"synthetic alert from klaxon-loadgen"}},"#,
                r#""startsAt":"2026-01-01T00:00:00Z"{ends},"generatorURL":"http://loadgen/graph"}}"#
            ),
            key = key,
            i = i,
            severity = ["critical", "warning", "info"][(seq % 3) as usize],
            svc = seq % 8,
            ends = ends,
        );
    }
    body.push(']');
}

/// `error.code` of a JSON error body, or `unknown`.
fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.get("code")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

enum Outcome {
    Http { status: u16, body: Bytes },
    Transport(TransportError),
}

async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

async fn worker(id: usize, sh: Arc<Shared>, mut conn: Option<Sender>) -> anyhow::Result<Stats> {
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let mut stats = Stats::new();
    let mut new_count: u64 = 0;
    let mut body = String::with_capacity(384);
    let mut key = String::with_capacity(48);
    let content_type = HeaderValue::from_static("application/json");
    loop {
        let (measured, due) = match sh.next_slot(Instant::now()) {
            Slot::Done => break,
            Slot::Warmup(due) => (false, due),
            Slot::Measured(due) => (true, due),
        };
        if let Some(due) = due {
            let wake = due.checked_sub(EARLY_WAKE).unwrap_or(due);
            if wake > Instant::now() {
                tokio::time::sleep_until(wake).await;
            }
        }

        let mut kind = sh.mix.pick(rng.random_range(0..100));
        if new_count == 0 {
            kind = Kind::New;
        }
        let seq = match kind {
            Kind::New => {
                new_count += 1;
                new_count - 1
            }
            Kind::Repeat | Kind::Recover => rng.random_range(0..new_count),
        };
        match sh.target.protocol {
            Protocol::Standard if sh.labels == Labels::Noise => {
                build_noise_event(&mut body, &mut key, sh.run_id, id, kind, seq)
            }
            Protocol::Standard => build_event(&mut body, &mut key, sh.run_id, id, kind, seq),
            Protocol::Alertmanager => build_postable(
                &mut body,
                &mut key,
                sh.run_id,
                id,
                kind,
                seq,
                sh.target.batch,
            ),
        }

        let mut started = Instant::now();
        let mut connect_failed = false;
        let outcome = match conn.take().filter(|c| !c.is_closed()) {
            Some(c) => Ok(c),
            None => connect(sh.target.addr, sh.timeout).await,
        };
        let outcome = match outcome {
            Err(e) => {
                connect_failed = true;
                Outcome::Transport(e)
            }
            Ok(mut sender) => {
                let mut req = Request::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
                *req.method_mut() = Method::POST;
                *req.uri_mut() = sh.target.uri.clone();
                let headers = req.headers_mut();
                headers.insert(HOST, sh.target.host.clone());
                headers.insert(CONTENT_TYPE, content_type.clone());
                if let Some(auth) = &sh.target.authorization {
                    headers.insert(AUTHORIZATION, auth.clone());
                }
                started = Instant::now();
                match tokio::time::timeout(sh.timeout, send(&mut sender, req)).await {
                    Ok(Ok((status, body))) => {
                        conn = Some(sender);
                        Outcome::Http { status, body }
                    }
                    Ok(Err(e)) => Outcome::Transport(TransportError::Connect(e)),
                    Err(_) => Outcome::Transport(TransportError::Timeout),
                }
            }
        };
        let done = Instant::now();
        let ok = matches!(outcome, Outcome::Http { status, .. } if (200..300).contains(&status));
        if ok && let Some(f) = &sh.keys_out {
            key.push('\n');
            (&*f)
                .write_all(key.as_bytes())
                .context("writing --keys-out")?;
        }

        if !measured {
            stats.warmup_sent += 1;
            stats.warmup_accepted += u64::from(ok);
        } else {
            stats.sent[kind.index()] += 1;
            stats.last_done = Some(done);
            match &outcome {
                Outcome::Http { status, body } => {
                    // Measured from the due time when late: the wait is part of the latency.
                    let from = due.map_or(started, |d| d.min(started));
                    stats
                        .latency_us
                        .record(done.duration_since(from).as_micros() as u64);
                    if ok {
                        stats.accepted[kind.index()] += 1;
                    } else {
                        *stats
                            .errors
                            .entry((Some(*status), error_code(body)))
                            .or_default() += 1;
                    }
                }
                Outcome::Transport(e) => {
                    *stats.errors.entry((None, e.code().to_owned())).or_default() += 1;
                }
            }
        }

        if let Outcome::Transport(e) = outcome {
            // The connection is gone (or in an unknown state after a timeout): reopen it next
            // time. Only a failed (re)connect is fatal, and only outside crash-test mode.
            conn = None;
            if let TransportError::Connect(msg) = &e
                && connect_failed
                && !sh.tolerate_transport_errors
            {
                sh.stop.store(true, Ordering::Relaxed);
                bail!(
                    "connection {id} to {} failed: {msg} (use --keys-out to keep going through \
                     transport errors)",
                    sh.target.addr
                );
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
    Ok(stats)
}

// ---------------------------------------------------------------------------------------------
// Server memory

fn read_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[derive(Clone, Copy, Debug)]
struct Rss {
    start_kib: u64,
    peak_kib: u64,
    last_kib: u64,
    /// The process went away (or stopped being readable) during the run.
    gone: bool,
}

async fn sample_rss(pid: u32, start_kib: u64, stop: tokio::sync::oneshot::Receiver<()>) -> Rss {
    let mut rss = Rss {
        start_kib,
        peak_kib: start_kib,
        last_kib: start_kib,
        gone: false,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => match read_rss_kib(pid) {
                Some(kib) => {
                    rss.last_kib = kib;
                    rss.peak_kib = rss.peak_kib.max(kib);
                }
                None => {
                    rss.gone = true;
                    break;
                }
            },
        }
    }
    rss
}

// ---------------------------------------------------------------------------------------------
// Run and report

async fn run(args: &Args) -> anyhow::Result<Report> {
    let target =
        resolve_target(&args.url, &args.integration_key, args.protocol, args.batch).await?;
    let keys_out = match &args.keys_out {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open --keys-out {}", path.display()))?,
        ),
        None => None,
    };
    let tolerate = keys_out.is_some();
    let timeout = Duration::from_secs_f64(args.timeout);

    let rss_task = match args.server_pid {
        Some(pid) => {
            let start = read_rss_kib(pid)
                .ok_or_else(|| anyhow!("cannot read VmRSS from /proc/{pid}/status"))?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            Some((tx, tokio::spawn(sample_rss(pid, start, rx))))
        }
        None => None,
    };

    // Open every connection before the clock starts.
    let mut handshakes = tokio::task::JoinSet::new();
    for id in 0..args.connections {
        let addr = target.addr;
        handshakes.spawn(async move { (id, connect(addr, timeout).await) });
    }
    let mut conns: Vec<Option<Sender>> = (0..args.connections).map(|_| None).collect();
    while let Some(joined) = handshakes.join_next().await {
        let (id, res) = joined?;
        match res {
            Ok(sender) => conns[id] = Some(sender),
            Err(TransportError::Connect(msg)) if !tolerate => {
                bail!("cannot connect to {}: {msg}", target.addr)
            }
            Err(_) => {}
        }
    }

    let duration = match (args.duration, args.requests) {
        (None, None) => Some(10.0),
        (d, _) => d,
    };
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let shared = Arc::new(Shared {
        target,
        mix: args.mix,
        labels: args.labels,
        run_id: rand::rng().random(),
        slot_ns: (args.rate > 0.0).then(|| 1e9 / args.rate),
        start,
        measure_start,
        measure_end: duration.map(|d| measure_start + Duration::from_secs_f64(d)),
        max_requests: args.requests,
        timeout,
        keys_out,
        tolerate_transport_errors: tolerate,
        stop: AtomicBool::new(false),
        warm_slots: AtomicU64::new(0),
        slots: AtomicU64::new(0),
    });

    {
        let shared = shared.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                shared.stop.store(true, Ordering::Relaxed);
            }
        });
    }

    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(id, conn)| tokio::spawn(worker(id, shared.clone(), conn)))
        .collect();
    let mut total = Stats::new();
    let mut failure = None;
    for w in workers {
        match w.await? {
            Ok(s) => total.merge(s),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }

    let rss = match rss_task {
        Some((tx, task)) => {
            let _ = tx.send(());
            Some(task.await?)
        }
        None => None,
    };
    if let Some(e) = failure {
        return Err(e);
    }

    let elapsed = total.last_done.map_or(0.0, |t| {
        t.saturating_duration_since(measure_start).as_secs_f64()
    });
    let expected_slots = shared.slot_ns.map(|ns| {
        let by_time = duration.map(|d| (d * 1e9 / ns).ceil() as u64);
        match (by_time, args.requests) {
            (Some(t), Some(n)) => t.min(n),
            (Some(t), None) => t,
            (None, Some(n)) => n,
            (None, None) => 0,
        }
    });
    Ok(Report {
        url: args.url.clone(),
        connections: args.connections,
        rate: args.rate,
        mix: args.mix,
        warmup: args.warmup,
        elapsed,
        expected_slots,
        stats: total,
        rss,
        keys_out: args.keys_out.clone(),
        batch: args.batch,
    })
}

struct Report {
    url: String,
    connections: usize,
    rate: f64,
    mix: Mix,
    warmup: f64,
    elapsed: f64,
    expected_slots: Option<u64>,
    stats: Stats,
    rss: Option<Rss>,
    keys_out: Option<PathBuf>,
    /// Alerts per request (Alertmanager protocol; 1 for standard events).
    batch: usize,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Report {
    fn sent(&self) -> u64 {
        self.stats.sent.iter().sum()
    }

    fn accepted(&self) -> u64 {
        self.stats.accepted.iter().sum()
    }

    fn per_sec(&self, n: u64) -> f64 {
        if self.elapsed > 0.0 {
            n as f64 / self.elapsed
        } else {
            0.0
        }
    }

    fn unsent_slots(&self) -> Option<u64> {
        self.expected_slots.map(|e| e.saturating_sub(self.sent()))
    }

    /// Errors sorted by count, largest first.
    fn errors(&self) -> Vec<(Option<u16>, &str, u64)> {
        let mut v: Vec<_> = self
            .stats
            .errors
            .iter()
            .map(|((s, c), n)| (*s, c.as_str(), *n))
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(b.1)));
        v
    }

    /// (label, ms) for p50, p90, p99, p99.9, max.
    fn latencies(&self) -> Vec<(&'static str, Option<f64>)> {
        let h = &self.stats.latency_us;
        let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
        vec![
            ("p50", ms(h.percentile(50.0))),
            ("p90", ms(h.percentile(90.0))),
            ("p99", ms(h.percentile(99.0))),
            ("p99_9", ms(h.percentile(99.9))),
            ("max", ms(h.max())),
            ("mean", h.mean().map(|u| u / 1000.0)),
        ]
    }

    fn to_json(&self) -> Value {
        let by_kind: serde_json::Map<String, Value> = Kind::ALL
            .iter()
            .map(|k| {
                let i = k.index();
                (
                    k.as_str().to_owned(),
                    json!({"sent": self.stats.sent[i], "accepted": self.stats.accepted[i]}),
                )
            })
            .collect();
        let mut latency: serde_json::Map<String, Value> = self
            .latencies()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v.map(round3))))
            .collect();
        latency.insert("count".into(), json!(self.stats.latency_us.count()));
        json!({
            "url": self.url,
            "connections": self.connections,
            "target_rate": (self.rate > 0.0).then_some(self.rate),
            "mix": {"new": self.mix.new, "repeat": self.mix.repeat, "recover": self.mix.recover},
            "warmup_s": self.warmup,
            "warmup_sent": self.stats.warmup_sent,
            "warmup_accepted": self.stats.warmup_accepted,
            "elapsed_s": round3(self.elapsed),
            "sent": self.sent(),
            "accepted": self.accepted(),
            "sent_per_s": round3(self.per_sec(self.sent())),
            "accepted_per_s": round3(self.per_sec(self.accepted())),
            "batch": self.batch,
            "alerts_accepted_per_s": round3(self.per_sec(self.accepted() * self.batch as u64)),
            "unsent_slots": self.unsent_slots(),
            "by_kind": by_kind,
            "errors_total": self.stats.errors.values().sum::<u64>(),
            "errors": self.errors().into_iter().map(|(status, code, count)| {
                json!({"status": status, "code": code, "count": count})
            }).collect::<Vec<_>>(),
            "latency_ms": latency,
            "server_rss_mib": self.rss.map(|r| json!({
                "start": round3(mib(r.start_kib)),
                "peak": round3(mib(r.peak_kib)),
                "last": round3(mib(r.last_kib)),
                "process_gone": r.gone,
            })),
            "keys_out": self.keys_out.as_ref().map(|p| p.display().to_string()),
        })
    }

    fn to_text(&self) -> String {
        let mut s = String::new();
        let rate = if self.rate > 0.0 {
            format!("{}/s", self.rate)
        } else {
            "flat out".to_owned()
        };
        let _ = writeln!(
            s,
            "klaxon-loadgen {}  connections={}  rate={}  mix={}",
            self.url, self.connections, rate, self.mix
        );
        let _ = writeln!(
            s,
            "  elapsed    {:.3} s (after {} s warmup: {} sent, {} accepted)",
            self.elapsed, self.warmup, self.stats.warmup_sent, self.stats.warmup_accepted
        );
        let kinds = Kind::ALL
            .iter()
            .map(|k| format!("{}={}", k.as_str(), self.stats.sent[k.index()]))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            s,
            "  sent       {} ({:.1}/s; {})",
            self.sent(),
            self.per_sec(self.sent()),
            kinds
        );
        let _ = writeln!(
            s,
            "  accepted   {} ({:.1}/s)",
            self.accepted(),
            self.per_sec(self.accepted())
        );
        if self.batch > 1 {
            let _ = writeln!(
                s,
                "  alerts     {} accepted in batches of {} ({:.1}/s)",
                self.accepted() * self.batch as u64,
                self.batch,
                self.per_sec(self.accepted() * self.batch as u64)
            );
        }
        if let Some(unsent) = self.unsent_slots().filter(|&u| u > 0) {
            let _ = writeln!(
                s,
                "  unsent     {unsent} scheduled requests (the generator fell behind: add connections)"
            );
        }
        let errors = self.errors();
        let total: u64 = errors.iter().map(|e| e.2).sum();
        let _ = writeln!(s, "  errors     {total}");
        for (status, code, count) in errors {
            let status = status.map_or_else(|| "-".to_owned(), |st| st.to_string());
            let _ = writeln!(s, "    {status:>3} {code:<28} {count}");
        }
        let _ = write!(s, "  latency ms");
        for (label, v) in self.latencies() {
            match v {
                Some(v) => {
                    let _ = write!(s, "  {}={v:.3}", label.replace('_', "."));
                }
                None => {
                    let _ = write!(s, "  {}=-", label.replace('_', "."));
                }
            }
        }
        let _ = writeln!(s, "  (n={})", self.stats.latency_us.count());
        if let Some(r) = self.rss {
            let _ = writeln!(
                s,
                "  server RSS start={:.1} MiB  peak={:.1} MiB  last={:.1} MiB{}",
                mib(r.start_kib),
                mib(r.peak_kib),
                mib(r.last_kib),
                if r.gone { "  (process went away)" } else { "" }
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_url_is_built_from_base_and_key() {
        let (hp, host, path) = split_url("http://127.0.0.1:8080", "abc123").unwrap();
        assert_eq!(hp, "127.0.0.1:8080");
        assert_eq!(host, "127.0.0.1:8080");
        assert_eq!(path, "/event/push/alert/standard?integration_key=abc123");
        let (hp, _, path) = split_url("http://localhost/klaxon/", "a b&c").unwrap();
        assert_eq!(hp, "localhost:80");
        assert_eq!(
            path,
            "/klaxon/event/push/alert/standard?integration_key=a%20b%26c"
        );
        assert!(split_url("https://127.0.0.1", "k").is_err());
        assert!(split_url("127.0.0.1:8080", "k").is_err());
    }

    #[test]
    fn postable_batches_are_valid_json_and_recoveries_end() {
        let (mut body, mut key) = (String::new(), String::new());
        build_postable(&mut body, &mut key, 7, 2, Kind::New, 5, 3);
        let v: Value = serde_json::from_str(&body).unwrap();
        let alerts = v.as_array().unwrap();
        assert_eq!(alerts.len(), 3);
        assert_eq!(alerts[2]["labels"]["instance"], format!("{key}-2"));
        assert!(alerts[0].get("endsAt").is_none());
        build_postable(&mut body, &mut key, 7, 2, Kind::Recover, 5, 3);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["endsAt"], "2020-01-01T00:00:00Z");
        assert_eq!(v[0]["labels"]["instance"], format!("{key}-0"));
    }

    #[test]
    fn events_are_valid_json_and_repeats_match() {
        let (mut body, mut key) = (String::new(), String::new());
        build_event(&mut body, &mut key, 0xab, 3, Kind::New, 17);
        let new: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(new["alert_key"], "lg-000000ab-3-17");
        assert_eq!(key, "lg-000000ab-3-17");
        assert_eq!(new["labels"]["host"], "host-3");
        build_event(&mut body, &mut key, 0xab, 3, Kind::Repeat, 17);
        let repeat: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(new, repeat);
        build_event(&mut body, &mut key, 0xab, 3, Kind::Recover, 17);
        let recover: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(recover["event_status"], "Ok");
        assert_eq!(recover["alert_key"], new["alert_key"]);
        assert_eq!(recover["title_rule"], new["title_rule"]);
    }

    #[test]
    fn noise_events_carry_the_labels_the_rules_look_at() {
        let (mut body, mut key) = (String::new(), String::new());
        build_noise_event(&mut body, &mut key, 0xab, 3, Kind::New, 57);
        let new: Value = serde_json::from_str(&body).unwrap();
        let labels = &new["labels"];
        for name in ["host", "check", "region", "env", "service"] {
            assert!(labels[name].is_string(), "{name} in {body}");
        }
        let host: usize = labels["host"].as_str().unwrap()[5..].parse().unwrap();
        assert!(host < noise::MAPPING_ROWS);
        assert_eq!(labels["env"], "staging", "seq 57 is one of the 2 %");
        assert!(new["description"].as_str().unwrap().contains(", ip 10."));
        build_noise_event(&mut body, &mut key, 0xab, 3, Kind::Repeat, 57);
        assert_eq!(new, serde_json::from_str::<Value>(&body).unwrap());
        // The checks spread over 20 groups; a connection's hosts go round the whole table.
        let mut checks = std::collections::HashSet::new();
        let mut hosts = std::collections::HashSet::new();
        for seq in 0..1000 {
            build_noise_event(&mut body, &mut key, 1, 3, Kind::New, seq);
            let v: Value = serde_json::from_str(&body).unwrap();
            checks.insert(v["labels"]["check"].as_str().unwrap().to_owned());
            hosts.insert(v["labels"]["host"].as_str().unwrap().to_owned());
        }
        assert_eq!(checks.len(), 20);
        assert_eq!(hosts.len(), 1000);
    }

    #[test]
    fn noise_setup_has_the_advertised_rule_counts() {
        assert_eq!(noise::silence_rules(1, 1_000).len(), 50);
        assert_eq!(noise::inhibit_rules(1).len(), 20);
        assert_eq!(noise::enrichment_rules("s").as_array().unwrap().len(), 10);
        let csv = noise::mapping_csv();
        assert_eq!(csv.lines().count(), 1 + noise::MAPPING_ROWS);
        assert!(csv.starts_with("host,owner,team,rack\nhost-0,owner-0,team-0,rack-a0\n"));
    }

    #[test]
    fn error_codes_come_from_the_json_body() {
        assert_eq!(
            error_code(br#"{"error":{"code":"InvalidParameter","message":"x"}}"#),
            "InvalidParameter"
        );
        assert_eq!(error_code(b"<html>oops</html>"), "unknown");
        assert_eq!(error_code(br#"{"error":"flat"}"#), "unknown");
    }
}
