//! Durability of the real binary: `kill -9` during a load of several thousand pushes loses no
//! event that got a 2xx and doubles none; SIGTERM lets in-flight pushes finish and commit.
//! (DESIGN.md principle 4; ING-008: a 200 means committed; ING-011: processed exactly once.)

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

struct Node {
    child: Child,
    base: String,
    push_url: String,
    app_key: String,
}

/// Starts `klaxon serve` on a free port with push limits switched off, and reads its banner.
async fn start_node(data_dir: &std::path::Path, app_key: Option<&str>) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND", "0")
        .env("KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE", "0")
        .env("KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND", "0")
        .env("KLAXON_STORAGE_SQLITE_SYNCHRONOUS_FULL", "false")
        .env("KLAXON_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut base, mut push_url, mut key) = (
        String::new(),
        String::new(),
        app_key.unwrap_or("").to_string(),
    );
    while let Some(line) = lines.next_line().await.unwrap() {
        let line = line.trim().to_string();
        if let Some(rest) = line.strip_prefix("Klaxon is listening on ") {
            base = rest.to_string();
        } else if let Some(rest) = line.strip_prefix("APP key:") {
            key = rest.split_whitespace().next().unwrap().to_string();
        } else if let Some(rest) = line.strip_prefix("Push alerts:") {
            push_url = rest.trim().to_string();
            break;
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert!(
        !base.is_empty() && !push_url.is_empty() && !key.is_empty(),
        "banner not read"
    );
    Node {
        child,
        base,
        push_url,
        app_key: key,
    }
}

/// Pushes unique alerts from `workers` tasks until `stop_after` got a 200 or `max` were sent;
/// returns the acknowledged keys. Connection errors (the node died) end a worker.
async fn load(
    push_url: &str,
    workers: usize,
    max: usize,
    acked_count: Arc<AtomicUsize>,
) -> Vec<String> {
    // TLS clients need the process's rustls provider (ring) before they are built.
    klaxon_notify::install_crypto_provider();
    let http = reqwest::Client::new();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (http, acked, next, counter, url) = (
            http.clone(),
            acked.clone(),
            next.clone(),
            acked_count.clone(),
            push_url.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= max {
                    break;
                }
                let key = format!("crash-{i}");
                let body = json!({"event_status": "Critical", "title_rule": format!("crash test {i}"), "alert_key": key});
                match http.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 200 => {
                        acked.lock().await.push(key);
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    acked.lock().await.clone()
}

async fn api(http: &reqwest::Client, node: &Node, path: &str, body: Value) -> Value {
    let r = http
        .post(format!("{}{path}?app_key={}", node.base, node.app_key))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Every alert of the account, following the cursor.
async fn all_alerts(http: &reqwest::Client, node: &Node) -> Vec<Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api(
            http,
            node,
            "/alert/list",
            json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 100, "search_after_ctx": cursor}),
        )
        .await;
        out.extend(page["data"]["items"].as_array().unwrap().iter().cloned());
        match page["data"]["search_after_ctx"].as_str() {
            Some(c) if page["data"]["has_next_page"] == true => cursor = c.to_string(),
            _ => break,
        }
    }
    out
}

async fn wait_drained(http: &reqwest::Client, node: &Node) {
    for _ in 0..1500 {
        let text = http
            .get(format!("{}/metrics", node.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| l == "klaxon_inbox_depth 0") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("inbox did not drain");
}

/// After a restart: each acknowledged key has exactly one alert, each alert its own incident,
/// and nothing unacknowledged-but-invented appears.
async fn check_consistent(node: &Node, acked: &[String], sent_upper_bound: usize) {
    // TLS clients need the process's rustls provider (ring) before they are built.
    klaxon_notify::install_crypto_provider();
    let http = reqwest::Client::new();
    wait_drained(&http, node).await;
    let alerts = all_alerts(&http, node).await;
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for a in &alerts {
        *by_key
            .entry(a["alert_key"].as_str().unwrap().to_string())
            .or_default() += 1;
        assert_eq!(
            a["incident"]["incident_id"], a["incident_id"],
            "alert without its incident: {a}"
        );
        assert_eq!(a["event_cnt"], 1);
    }
    for key in acked {
        assert_eq!(
            by_key.get(key),
            Some(&1),
            "acknowledged {key} must be present exactly once"
        );
    }
    assert!(by_key.values().all(|n| *n == 1), "no alert doubled");
    assert!(alerts.len() <= sent_upper_bound);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let incidents = api(
        &http,
        node,
        "/incident/list",
        json!({"start_time": now - 3600, "end_time": now + 3600, "limit": 1}),
    )
    .await;
    assert_eq!(
        incidents["data"]["total"].as_u64().unwrap() as usize,
        alerts.len(),
        "one incident per alert"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node(dir.path(), None).await;
    let counter = Arc::new(AtomicUsize::new(0));
    let max = 6000;
    let load_task = {
        let (url, counter) = (node.push_url.clone(), counter.clone());
        tokio::spawn(async move { load(&url, 32, max, counter).await })
    };
    // Kill once a few thousand pushes have been acknowledged, in the middle of the stream.
    while counter.load(Ordering::SeqCst) < 2500 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    node.child.start_kill().unwrap(); // SIGKILL
    node.child.wait().await.unwrap();
    let acked = load_task.await.unwrap();
    assert!(acked.len() >= 2500);

    let app_key = node.app_key.clone();
    let mut node = start_node(dir.path(), Some(&app_key)).await;
    check_consistent(&node, &acked, max).await;
    node.child.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_pushes_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start_node(dir.path(), None).await;
    let counter = Arc::new(AtomicUsize::new(0));
    let load_task = {
        let (url, counter) = (node.push_url.clone(), counter.clone());
        tokio::spawn(async move { load(&url, 16, 4000, counter).await })
    };
    while counter.load(Ordering::SeqCst) < 1000 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let pid = node.child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = node.child.wait().await.unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    let acked = load_task.await.unwrap();

    let app_key = node.app_key.clone();
    let mut node = start_node(dir.path(), Some(&app_key)).await;
    check_consistent(&node, &acked, 4000).await;
    node.child.start_kill().unwrap();
}
