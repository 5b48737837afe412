//! Two `klaxon serve` processes on one PostgreSQL database, one of them killed with SIGKILL
//! while incident steps are falling due: every step still happens exactly once, within the
//! claim period of its due time (response.md §2.14; issue "durable timers"). PostgreSQL only:
//! skipped without `KLAXON_TEST_DATABASE_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Incidents pushed.
const N: usize = 40;
/// The rule's delay window (seconds): the first assignment of each incident is a timer.
const DELAY_S: i64 = 3;
/// The claim period of a timer step (klaxon_store::TIMER_CLAIM_MS) plus scheduling slack.
const CLAIM_SLACK_MS: i64 = 30_000 + 3_000;

struct Node {
    child: Child,
    base: String,
    push_url: String,
    app_key: String,
}

async fn start_node(database_url: &str, data_dir: &std::path::Path) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND", "0")
        .env("KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE", "0")
        .env("KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND", "0")
        .env("KLAXON_API_LIMITS_PER_ACCOUNT_PER_SECOND", "0")
        .env("KLAXON_API_LIMITS_PER_ACCOUNT_PER_MINUTE", "0")
        .env("KLAXON_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut base, mut push_url, mut key) = (String::new(), String::new(), String::new());
    while let Some(line) = lines.next_line().await.unwrap() {
        let line = line.trim().to_string();
        if let Some(rest) = line.strip_prefix("Klaxon is listening on ") {
            base = rest.to_string();
        } else if let Some(rest) = line.strip_prefix("APP key:") {
            key = rest.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(rest) = line.strip_prefix("Push alerts:") {
            push_url = rest.trim().to_string();
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert!(!base.is_empty() && !push_url.is_empty(), "banner not read");
    Node {
        child,
        base,
        push_url,
        app_key: key,
    }
}

async fn api(http: &reqwest::Client, base: &str, key: &str, path: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}{path}?app_key={key}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v.get("error").is_none(), "{path}: {v}");
    v["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steps_happen_once_when_a_node_dies() {
    // spec: RSP-150, RSP-160, RSP-163 under failure: a crashed node loses no step and no step
    // runs twice.
    let Some(url) = common::fresh_postgres().await else {
        eprintln!("KLAXON_TEST_DATABASE_URL not set: two-node test skipped");
        return;
    };
    // TLS clients need the process's rustls provider (ring) before they are built.
    klaxon_notify::install_crypto_provider();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let mut a = start_node(&url, dir_a.path()).await;
    let b = start_node(&url, dir_b.path()).await;
    assert!(!a.app_key.is_empty());
    let key = a.app_key.clone();
    let http = reqwest::Client::new();

    let me = api(&http, &b.base, &key, "/member/info", json!({})).await;
    let owner = me["member_id"].as_i64().unwrap();
    let channels = api(&http, &b.base, &key, "/channel/list", json!({})).await;
    let channel = channels["items"][0]["channel_id"].as_i64().unwrap();
    let level = json!({"target": {"person_ids": [owner], "by": {"follow_preference": true}},
                       "escalate_window": 1});
    api(
        &http,
        &a.base,
        &key,
        "/channel/escalate/rule/create",
        json!({"channel_id": channel, "rule_name": "Two levels", "aggr_window": DELAY_S,
               "layers": [level, level]}),
    )
    .await;

    // Pushes go to both nodes; both process the inbox and both run timers.
    let started = Instant::now();
    for i in 0..N {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = http
            .post(&node.push_url)
            .json(
                &json!({"event_status": "Critical", "title_rule": format!("two nodes {i}"),
                          "alert_key": format!("two-nodes-{i}")}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Kill A while the delayed assignments fall due.
    let kill_at = Duration::from_millis(DELAY_S as u64 * 1000 + 200);
    tokio::time::sleep(kill_at.saturating_sub(started.elapsed())).await;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();

    // Everything left is B's: the first assignments, then the escalations a minute later.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut feeds: Vec<Vec<Value>> = Vec::new();
    // Each incident's start (ms): the delayed assignment is due exactly DELAY_S after it.
    let mut starts: Vec<i64> = Vec::new();
    loop {
        let list = api(
            &http,
            &b.base,
            &key,
            "/incident/list",
            json!({"start_time": now - 600, "end_time": now + 600, "limit": 100}),
        )
        .await;
        let items = list["items"].as_array().unwrap().clone();
        feeds.clear();
        starts.clear();
        for inc in &items {
            starts.push(inc["start_time"].as_i64().unwrap() * 1000);
            let feed = api(
                &http,
                &b.base,
                &key,
                "/incident/feed",
                json!({"incident_id": inc["incident_id"], "asc": true, "limit": 100}),
            )
            .await;
            feeds.push(feed["items"].as_array().unwrap().clone());
        }
        let done = items.len() == N
            && feeds
                .iter()
                .all(|f| f.iter().filter(|e| e["type"] == "i_assign").count() >= 2);
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(feeds.len(), N, "every pushed alert has its incident");
    let (mut worst_assign, mut worst_escalate) = (0_i64, 0_i64);
    for (feed, start) in feeds.iter().zip(&starts) {
        let kinds: Vec<&str> = feed.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            vec!["i_new", "i_assign", "i_notify", "i_assign", "i_notify"],
            "each step exactly once: {feed:?}"
        );
        let assigned = feed[1]["created_at"].as_i64().unwrap();
        let escalated = feed[3]["created_at"].as_i64().unwrap();
        assert_eq!(feed[1]["detail"]["type"], "assign");
        assert_eq!(feed[3]["detail"]["type"], "escalate");
        // On time: not before it was due (start + delay; event times are whole seconds, so
        // the wire's start_time is exact), and within the claim period after.
        let late = assigned - (start + DELAY_S * 1000);
        assert!(
            (0..=CLAIM_SLACK_MS).contains(&late),
            "assignment {late} ms after it was due"
        );
        worst_assign = worst_assign.max(late);
        let gap = escalated - assigned;
        worst_escalate = worst_escalate.max(gap - 60_000);
        assert!(
            (60_000..=60_000 + CLAIM_SLACK_MS).contains(&gap),
            "escalation {gap} ms after assignment"
        );
    }
    eprintln!(
        "two nodes, one killed: worst lateness {worst_assign} ms (delayed assignment), \
         {worst_escalate} ms (escalation)"
    );
}
