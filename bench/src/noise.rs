//! `klaxon-loadgen setup-noise`: configures a running Klaxon server's channel with the
//! noise-reduction workload of the ingest benchmark (`bench/noise.sh`), through the Open API
//! with an APP key:
//!
//! * rule-based grouping of the channel by `labels.check` (60-minute sliding window, storm
//!   thresholds 100 and 1000);
//! * 50 silence rules and 20 inhibit rules whose conditions use every kind of value (exact,
//!   wildcard, regular expression, number, network) over the labels the load carries; almost
//!   all of them miss the load, so every event is evaluated against all of them and still flows.
//!   Two silence rules (`labels.env = staging`, about 2 % of the events) and one inhibit rule
//!   (Info events of `svc-7` in `region-3`, about 1 %, while a Critical incident of the same check is open) match;
//! * 10 enrichment rules on the integration (extract, compose, map, delete), one of which maps
//!   `labels.host` through a 10,000-row mapping table uploaded as CSV.
//!
//! The load it is meant for is `klaxon-loadgen --labels noise` (see `build_event` in main.rs):
//! hosts `host-0` … `host-9999` (all in the table), checks `check-0` … `check-19`, regions
//! `region-0` … `region-3`, `env` prod or staging, an address in the description.
//!
//! ```text
//! klaxon-loadgen setup-noise --app-key KEY --integration-key KEY [--url http://127.0.0.1:8080]
//! ```

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use serde_json::{Value, json};

/// Rows of the mapping table (hosts `host-0` … `host-{ROWS-1}`).
pub const MAPPING_ROWS: usize = 10_000;
pub const SILENCE_RULES: usize = 50;
pub const INHIBIT_RULES: usize = 20;

#[derive(Parser, Debug)]
#[command(
    name = "klaxon-loadgen setup-noise",
    about = "Configure grouping, silence, inhibit and enrichment rules for the noise benchmark"
)]
struct SetupArgs {
    /// Base URL of the Klaxon server (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An APP key of the account (printed at the first start).
    #[arg(long)]
    app_key: String,
    /// Integration key of the dedicated standard integration the load pushes to.
    #[arg(long)]
    integration_key: String,
}

/// Entry point of the subcommand; `args` excludes the program name and `setup-noise`.
pub fn main(args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let args = SetupArgs::parse_from(std::iter::once("setup-noise".to_owned()).chain(args));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(setup(&args))
}

/// An Open API client with an APP key (also used by `notify-latency`).
pub(crate) struct Api {
    addr: SocketAddr,
    host: HeaderValue,
    base: String,
    app_key: String,
}

impl Api {
    /// The client of the server at `url` (plain http, optional base path).
    pub(crate) async fn new(url: &str, app_key: &str) -> anyhow::Result<Api> {
        let (hostport, host, path) = super::split_url(url, "x")?;
        let base = path
            .split("/event/push/")
            .next()
            .unwrap_or_default()
            .to_owned();
        let addr = tokio::net::lookup_host(&hostport)
            .await
            .with_context(|| format!("cannot resolve {hostport}"))?
            .next()
            .ok_or_else(|| anyhow!("{hostport} resolves to no address"))?;
        Ok(Api {
            addr,
            host: HeaderValue::from_str(&host).context("bad host in --url")?,
            base,
            app_key: app_key.to_owned(),
        })
    }

    /// POSTs `body` to the Open API `path`; returns `data`, or fails with the error body.
    /// A 429 (the Open API's rate limit) is retried after a second, as `Retry-After` asks.
    pub(crate) async fn call(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        for _ in 0..30 {
            match self.call_once(path, body).await? {
                Some(data) => return Ok(data),
                None => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        bail!("{path}: still rate limited after 30 attempts")
    }

    /// One attempt: `None` when rate limited.
    async fn call_once(&self, path: &str, body: &Value) -> anyhow::Result<Option<Value>> {
        let mut sender = super::connect(self.addr, Duration::from_secs(10))
            .await
            .map_err(|e| anyhow!("cannot connect to {}: {e:?}", self.addr))?;
        let mut req = Request::new(Full::new(Bytes::from(serde_json::to_vec(body)?)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = format!(
            "{}{path}?app_key={}",
            self.base,
            super::percent_encode(&self.app_key)
        )
        .parse()
        .context("bad Open API path")?;
        req.headers_mut().insert(HOST, self.host.clone());
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let (status, answer) =
            tokio::time::timeout(Duration::from_secs(60), super::send(&mut sender, req))
                .await
                .map_err(|_| anyhow!("{path}: no answer within 60 s"))?
                .map_err(|e| anyhow!("{path}: {e}"))?;
        let v: Value = serde_json::from_slice(&answer)
            .with_context(|| format!("{path}: answer is not JSON (status {status})"))?;
        if status == 429 {
            return Ok(None);
        }
        if status != 200 || v.get("error").is_some() {
            bail!("{path}: status {status}: {v}");
        }
        Ok(Some(v.get("data").cloned().unwrap_or(Value::Null)))
    }
}

async fn setup(args: &SetupArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.url, &args.app_key).await?;

    // The integration the load pushes to (the list leaves keys out; `info` has them), and
    // its channel.
    let list = api
        .call("/integration/list", &json!({"limit": 100}))
        .await?;
    let mut found = None;
    for item in list["items"].as_array().map_or(&[][..], Vec::as_slice) {
        let info = api
            .call(
                "/integration/info",
                &json!({"integration_id": item["integration_id"]}),
            )
            .await?;
        if info["integration_key"] == args.integration_key.as_str() {
            found = Some(info);
            break;
        }
    }
    let integration =
        found.ok_or_else(|| anyhow!("no integration has the given --integration-key"))?;
    let integration_id = integration["integration_id"]
        .as_i64()
        .ok_or_else(|| anyhow!("integration without an id: {integration}"))?;
    let channel_id = integration["channel_id"]
        .as_i64()
        .filter(|&c| c != 0)
        .ok_or_else(|| anyhow!("the integration is not dedicated to a channel"))?;

    api.call(
        "/channel/update",
        &json!({"channel_id": channel_id, "group": {
            "method": "p", "equals": [["labels.check"]], "time_window": 60,
            "storm_thresholds": [100, 1000]}}),
    )
    .await?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for (i, rule) in silence_rules(channel_id, now).iter().enumerate() {
        api.call("/channel/silence/rule/create", rule)
            .await
            .with_context(|| format!("silence rule {i}"))?;
    }
    for (i, rule) in inhibit_rules(channel_id).iter().enumerate() {
        api.call("/channel/inhibit/rule/create", rule)
            .await
            .with_context(|| format!("inhibit rule {i}"))?;
    }

    let schema = api
        .call(
            "/enrichment/mapping/schema/create",
            &json!({"name": "hosts", "description": "host inventory for the noise benchmark",
                    "source_label_keys": ["host"],
                    "result_label_keys": ["owner", "team", "rack"]}),
        )
        .await?;
    let schema_id = schema["schema_id"]
        .as_str()
        .ok_or_else(|| anyhow!("schema without an id: {schema}"))?
        .to_owned();
    let uploaded = api
        .call(
            "/enrichment/mapping/data/upload",
            &json!({"schema_id": schema_id, "csv": mapping_csv()}),
        )
        .await?;
    if uploaded["row_count"] != MAPPING_ROWS {
        bail!("the mapping table holds {uploaded}, expected {MAPPING_ROWS} rows");
    }
    let rules = enrichment_rules(&schema_id);
    let n_rules = rules.as_array().map_or(0, Vec::len);
    api.call(
        "/enrichment/upsert",
        &json!({"integration_id": integration_id, "rules": rules}),
    )
    .await?;

    println!(
        "channel {channel_id}: grouping by labels.check, {SILENCE_RULES} silence rules, \
         {INHIBIT_RULES} inhibit rules; integration {integration_id}: {n_rules} enrichment \
         rules, mapping table {schema_id} with {MAPPING_ROWS} rows"
    );
    Ok(())
}

fn cond(key: &str, oper: &str, vals: &[&str]) -> Value {
    json!({"key": key, "oper": oper, "vals": vals})
}

/// 50 silence rules: 48 that miss the load (other environments, hosts, services, regions,
/// titles, networks, numbers) and 2 that mark `env = staging` events (about 2 % of them).
/// Half have a one-off window around now, half a daily recurring one; all are open during the
/// run, so every rule's conditions are evaluated for every new alert.
pub fn silence_rules(channel_id: i64, now: i64) -> Vec<Value> {
    (0..SILENCE_RULES)
        .map(|i| {
            let n = i.to_string();
            let filters = match i % 10 {
                0 => json!([[cond("labels.env", "IN", &["test", "dev", "qa"])]]),
                1 => json!([[cond("labels.host", "IN", &[&format!("batch-{i}-*")])]]),
                2 => json!([[cond(
                    "title",
                    "IN",
                    &[&format!("/maintenance window {i}\\b/")]
                )]]),
                3 => json!([[
                    cond("labels.region", "IN", &[&format!("eu-west-{n}")]),
                    cond("severity", "IN", &["Info"])
                ]]),
                4 => json!([
                    [cond("labels.service", "IN", &[&format!("legacy-{n}-*")])],
                    [cond("labels.check", "IN", &[&format!("backup-{n}")])]
                ]),
                5 => json!([[cond(
                    "labels.ip",
                    "IN",
                    &[&format!("cidr:192.168.{i}.0/24")]
                )]]),
                6 => json!([[cond("labels.load", "IN", &["num:gt:1000"])]]),
                7 => json!([[
                    cond(
                        "description",
                        "IN",
                        &[&format!("/planned (outage|reboot) {n}/")]
                    ),
                    cond("labels.env", "NOTIN", &["prod"])
                ]]),
                8 => json!([[cond("labels.team", "IN", &[&format!("sandbox-{n}")])]]),
                _ => json!([[cond("labels.owner", "IN", &[&format!("/^nobody-{n}$/")])]]),
            };
            let matching = i == 20 || i == 45;
            let filters = if matching {
                json!([[cond("labels.env", "IN", &["staging"])]])
            } else {
                filters
            };
            let mut rule = json!({
                "channel_id": channel_id,
                "rule_name": format!("silence {i}"),
                "description": "noise benchmark",
                "priority": i,
                "filters": filters,
            });
            if i % 2 == 0 {
                rule["time_filter"] =
                    json!({"start_time": now - 3600, "end_time": now + 7 * 86400});
            } else {
                rule["time_filters"] = json!([{"start": "00:00", "end": "00:00", "repeat": []}]);
            }
            rule
        })
        .collect()
}

/// 20 inhibit rules: 19 whose targets never occur in the load, and one that drops Info events
/// of `svc-7` in `region-3` (about 1 % of the new alerts) while a Critical incident of the same check is active.
pub fn inhibit_rules(channel_id: i64) -> Vec<Value> {
    (0..INHIBIT_RULES)
        .map(|i| {
            let n = i.to_string();
            let (source, target, equals) = match i {
                7 => (
                    json!([[cond("severity", "IN", &["Critical"])]]),
                    json!([[
                        cond("severity", "IN", &["Info"]),
                        cond("labels.region", "IN", &["region-3"]),
                        cond("labels.service", "IN", &["svc-7"])
                    ]]),
                    json!(["labels.check"]),
                ),
                _ if i % 4 == 0 => (
                    json!([[cond("labels.check", "IN", &["network-down"])]]),
                    json!([[cond("labels.check", "IN", &[&format!("net-{n}-*")])]]),
                    json!(["labels.region"]),
                ),
                _ if i % 4 == 1 => (
                    json!([[
                        cond("severity", "IN", &["Critical"]),
                        cond("labels.check", "IN", &["/^datacenter-/"])
                    ]]),
                    json!([[cond("labels.service", "IN", &[&format!("legacy-{n}")])]]),
                    json!(["labels.region", "labels.env"]),
                ),
                _ if i % 4 == 2 => (
                    json!([[cond("title", "IN", &["/power (loss|failure)/"])]]),
                    json!([[cond("labels.rack", "IN", &[&format!("rack-x{n}")])]]),
                    json!(["labels.rack"]),
                ),
                _ => (
                    json!([[cond("severity", "IN", &["Critical"])]]),
                    json!([[
                        cond("labels.env", "IN", &[&format!("canary-{n}")]),
                        cond("severity", "IN", &["Warning", "Info"])
                    ]]),
                    json!(["labels.check", "labels.host"]),
                ),
            };
            json!({
                "channel_id": channel_id,
                "rule_name": format!("inhibit {i}"),
                "description": "noise benchmark",
                "priority": i,
                "source_filters": source,
                "target_filters": target,
                "equals": equals,
                "is_directly_discard": true,
            })
        })
        .collect()
}

/// 10 enrichment rules: 4 extract (plain group, named groups, from a label, conditional),
/// 4 compose, 1 map through the host table, 1 delete.
pub fn enrichment_rules(schema_id: &str) -> Value {
    json!([
        {"type": "extract", "source": "description",
         "pattern": "ip (\\d+\\.\\d+\\.\\d+\\.\\d+)", "result_label": "ip"},
        {"type": "extract", "source": "title",
         "pattern": "^(?P<probe>\\S+) alert (?P<run>[0-9a-f]+)-"},
        {"type": "extract", "source": "labels.host", "pattern": "host-(\\d+)",
         "result_label": "host_no"},
        {"type": "map", "source": "table", "schema_id": schema_id},
        {"type": "compose", "result_label": "dc",
         "template": "{{.Labels.region}}-{{.Labels.env}}"},
        {"type": "compose", "result_label": "runbook",
         "template": "https://runbooks.example.com/{{.Labels.check}}?host={{.Labels.host}}"},
        {"type": "compose", "result_label": "tier",
         "template": "{{if eq .Labels.env \"prod\"}}tier-1{{else}}tier-2{{end}}"},
        {"type": "extract", "source": "labels.rack", "pattern": "rack-(?P<row>[a-z])\\d+",
         "condition": [[{"key": "labels.team", "oper": "IN", "vals": ["team-1*"]}]]},
        {"type": "compose", "result_label": "summary", "override": true,
         "template": "{{.Labels.check | upper}} on {{.Labels.host}} ({{default \"unowned\" .Labels.owner}})"},
        {"type": "delete", "label_names": ["source"]},
    ])
}

/// The mapping table: `host,owner,team,rack` for `host-0` … `host-9999`.
pub fn mapping_csv() -> String {
    let mut csv = String::with_capacity(MAPPING_ROWS * 40);
    csv.push_str("host,owner,team,rack\n");
    for h in 0..MAPPING_ROWS {
        csv.push_str(&format!(
            "host-{h},owner-{},team-{},rack-{}{}\n",
            h % 97,
            h % 23,
            char::from(b'a' + (h % 26) as u8),
            h % 40
        ));
    }
    csv
}
