//! Real clients (DESIGN.md "Testing"): a real Prometheus evaluates a rule that fires and stops
//! firing, and sends its alerts both straight to Klaxon's `/api/v2/alerts` (bearer key) and
//! through a real Alertmanager, whose webhook posts to `/event/push/alert/prometheus`.
//!
//! Needs the `prometheus` and `prometheus-alertmanager` binaries (Debian packages of those
//! names; `.ci/run` installs them). Without them the test says so and passes as skipped.
//! Time is bounded by 1 s scrape/evaluation intervals, a 1 s resend delay, 1 s Alertmanager
//! grouping, and a 60 s ceiling on every wait.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// The first of `names` that runs with `--version`.
async fn binary(names: &[&'static str]) -> Option<&'static str> {
    for name in names {
        let ok = Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if ok {
            return Some(name);
        }
    }
    None
}

/// A port that was free a moment ago (Prometheus and Alertmanager need a fixed one).
async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Serves `klaxon_test_flag 0|1` in the Prometheus text format; the rule fires on 1.
async fn flag_exporter(flag: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let flag = flag.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = format!(
                    "# TYPE klaxon_test_flag gauge\nklaxon_test_flag {}\n",
                    u8::from(flag.load(Ordering::SeqCst))
                );
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

async fn create_prometheus_integration(t: &TestServer, name: &str) -> (i64, String) {
    let channel_id = t.server.as_ref().unwrap().bootstrap().channel_id;
    let (status, body) = t
        .api(
            "/integration/create",
            json!({"integration_name": name, "type": "prometheus", "kind": "dedicated",
                   "channel_id": channel_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (
        body["data"]["integration_id"].as_i64().unwrap(),
        body["data"]["integration_key"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

fn spawn(bin: &str, args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Command::new(bin)
        .args(args)
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
}

/// Polls Klaxon's alerts until `done` holds for them, for at most 60 s.
async fn wait_for(
    t: &TestServer,
    logs: &[&Path],
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        t.drained().await;
        let alerts = t.alerts().await;
        if done(&alerts) {
            return alerts;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let mut out = String::new();
            for log in logs {
                out.push_str(&format!(
                    "--- {}\n{}\n",
                    log.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                ));
            }
            panic!("timed out waiting for {what}; alerts: {alerts:#?}\n{out}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// spec: ING-005, ING-053, §3.2 — real Prometheus → /api/v2/alerts and real Prometheus →
// Alertmanager → webhook both open an alert and incident while the rule fires and resolve them
// when it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_and_alertmanager_fire_and_resolve() {
    let Some(prometheus) = binary(&["prometheus"]).await else {
        eprintln!("SKIPPED: the prometheus binary is not installed (apt-get install prometheus)");
        return;
    };
    let Some(alertmanager) = binary(&["prometheus-alertmanager", "alertmanager"]).await else {
        eprintln!(
            "SKIPPED: the alertmanager binary is not installed \
             (apt-get install prometheus-alertmanager)"
        );
        return;
    };

    let mut t = TestServer::start("").await;
    let (direct_id, direct_key) = create_prometheus_integration(&t, "prometheus direct").await;
    let (am_id, am_key) = create_prometheus_integration(&t, "via alertmanager").await;
    let klaxon = t.base.trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let flag = Arc::new(AtomicBool::new(true));
    let exporter = flag_exporter(flag.clone()).await;
    let am_port = free_port().await;
    let prom_port = free_port().await;

    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "global:\n  resolve_timeout: 5s\n\
             route:\n  receiver: klaxon\n  group_by: [alertname]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: klaxon\n    webhook_configs:\n      - url: \
             'http://{klaxon}/event/push/alert/prometheus?integration_key={am_key}'\n        \
             send_resolved: true\n"
        ),
    )
    .unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: klaxon\n    interval: 1s\n    rules:\n      - alert: KlaxonTestFlag\n        \
         expr: klaxon_test_flag == 1\n        labels:\n          severity: critical\n        \
         annotations:\n          summary: the test flag is up\n",
    )
    .unwrap();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: ['{}']\n\
             scrape_configs:\n  - job_name: flag\n    static_configs:\n      - targets: \
             ['127.0.0.1:{exporter}']\n\
             alerting:\n  alertmanagers:\n    - api_version: v2\n      authorization:\n        \
             type: Bearer\n        credentials: '{direct_key}'\n      static_configs:\n        \
             - targets: ['{klaxon}']\n    - api_version: v2\n      static_configs:\n        \
             - targets: ['127.0.0.1:{am_port}']\n",
            rules.display()
        ),
    )
    .unwrap();

    let am_log = dir.path().join("alertmanager.log");
    let prom_log = dir.path().join("prometheus.log");
    let _am = spawn(
        alertmanager,
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.path().join("am-data").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
        &am_log,
    );
    let _prom = spawn(
        prometheus,
        &[
            format!("--config.file={}", prom_config.display()),
            format!(
                "--storage.tsdb.path={}",
                dir.path().join("prom-data").display()
            ),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
            "--rules.alert.resend-delay=1s".into(),
        ],
        &prom_log,
    );
    let logs = [prom_log.as_path(), am_log.as_path()];

    // Firing: one alert per path, both Critical and active, each with an incident.
    let firing = wait_for(&t, &logs, "two firing alerts", |alerts| {
        [direct_id, am_id].iter().all(|id| {
            alerts.iter().any(|a| {
                a["integration_id"] == *id
                    && a["alert_status"] == "Critical"
                    && a["title"] == "KlaxonTestFlag"
            })
        })
    })
    .await;
    assert_eq!(firing.len(), 2, "{firing:#?}");
    for a in &firing {
        assert_eq!(a["labels"]["summary"], "the test flag is up");
        assert_eq!(a["labels"]["check"], "KlaxonTestFlag");
        assert_eq!(a["labels"]["job"], "flag");
    }
    let incidents = t.incidents().await;
    assert_eq!(incidents.len(), 2);
    assert!(incidents.iter().all(|i| i["progress"] == "Triggered"));

    // The rule stops firing: both alerts recover and both incidents close.
    flag.store(false, Ordering::SeqCst);
    let resolved = wait_for(&t, &logs, "both alerts resolved", |alerts| {
        alerts.len() == 2 && alerts.iter().all(|a| a["alert_status"] == "Ok")
    })
    .await;
    assert_eq!(resolved.len(), 2);
    let incidents = t.incidents().await;
    assert_eq!(incidents.len(), 2);
    for i in &incidents {
        assert_eq!(i["progress"], "Closed", "{i}");
    }
    t.stop().await;
}
