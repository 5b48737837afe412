//! Changes shown beside an incident (ingest.md ING-244): the incident detail's "Related
//! changes" lists the changes active in the two hours before the incident started, those
//! sharing the most identifying labels first, then the most recent. SQLite always,
//! PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, console_session, now_secs};
use serde_json::{Value, json};

async fn change_integration(t: &TestServer) -> String {
    let (s, b) = t
        .api(
            "/integration/create",
            json!({"integration_name": "deploys", "type": "standard", "category": "change"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b["data"]["integration_key"].as_str().unwrap().to_string()
}

async fn push_change(t: &TestServer, key: &str, body: Value) {
    let resp = t
        .http
        .post(format!(
            "{}/event/push/change/standard?integration_key={key}",
            t.base
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}

on_both_backends!(
    related_changes_are_ranked_by_shared_labels,
    |url: String| async move {
        // spec: ING-244
        let mut t = TestServer::start(&url).await;
        let key = change_integration(&t).await;
        let now = now_secs();
        let change = |k: &str, title: &str, status: &str, at: i64, labels: Value| {
            json!({"change_key": k, "title": title, "change_status": status,
               "event_time": at, "labels": labels})
        };
        // Two identifying labels in common, still running.
        push_change(
            &t,
            &key,
            change(
                "c1",
                "Deploy checkout 4.2",
                "Processing",
                now - 3600,
                json!({"service": "checkout", "host": "web-1", "team": "pay"}),
            ),
        )
        .await;
        // One label in common, more recent.
        push_change(
            &t,
            &key,
            change(
                "c2",
                "Raise prod pool size",
                "Processing",
                now - 1800,
                json!({"env": "prod"}),
            ),
        )
        .await;
        push_change(
            &t,
            &key,
            change(
                "c2",
                "Raise prod pool size",
                "Done",
                now - 1700,
                json!({"env": "prod"}),
            ),
        )
        .await;
        // Nothing in common, the most recent of all.
        push_change(
            &t,
            &key,
            change(
                "c3",
                "Rotate certificates",
                "Processing",
                now - 600,
                json!({"service": "auth"}),
            ),
        )
        .await;
        // Ended before the two hours began: not related.
        push_change(
            &t,
            &key,
            change(
                "c4",
                "Old rollout",
                "Processing",
                now - 4 * 3600,
                json!({"service": "checkout", "host": "web-1", "env": "prod"}),
            ),
        )
        .await;
        push_change(
            &t,
            &key,
            change(
                "c4",
                "Old rollout",
                "Done",
                now - 3 * 3600,
                json!({"service": "checkout", "host": "web-1", "env": "prod"}),
            ),
        )
        .await;

        let (s, b) = t
            .push(
                json!({"event_status": "Critical", "title_rule": "checkout 5xx",
                     "alert_key": "rc-1",
                     "labels": {"service": "checkout", "host": "web-1", "env": "prod"}}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        t.drained().await;
        let incident = t.incidents().await[0]["incident_id"]
            .as_str()
            .unwrap()
            .to_string();

        let server = t.server.as_ref().unwrap();
        let (cookie, _) = console_session(server).await;
        let page = |path: String| {
            let http = t.http.clone();
            let cookie = cookie.clone();
            async move {
                let resp = http
                    .get(path)
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                resp.text().await.unwrap()
            }
        };
        let detail = page(format!("{}/incident/detail/{incident}", t.base)).await;
        assert!(
            detail.contains(&format!("hx-get=\"/incident/{incident}/changes\"")),
            "the detail page loads the related changes on demand"
        );
        let html = page(format!("{}/incident/{incident}/changes", t.base)).await;
        let at = |title: &str| html.find(title);
        let (c1, c2, c3) = (
            at("Deploy checkout 4.2").expect("c1 listed"),
            at("Raise prod pool size").expect("c2 listed"),
            at("Rotate certificates").expect("c3 listed"),
        );
        assert!(
            c1 < c2 && c2 < c3,
            "ranked by shared labels, then recency: {html}"
        );
        assert!(
            at("Old rollout").is_none(),
            "ended before the window: {html}"
        );
        assert!(html.contains("shares service, host"), "{html}");
        assert!(html.contains("shares env"), "{html}");

        // An unknown incident id is an error page, not an empty list.
        let resp = t
            .http
            .get(format!(
                "{}/incident/ffffffffffffffffffffffff/changes",
                t.base
            ))
            .header("cookie", cookie.clone())
            .send()
            .await
            .unwrap();
        assert_ne!(resp.status(), 200);
        t.stop().await;
    }
);
