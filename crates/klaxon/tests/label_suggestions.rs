//! Label suggestions in the console's condition editors (ingest.md ING-261): a rule form's
//! key list loads the label keys, with a few values, of at most the 500 most recent events of
//! the last 24 h of the channel or integration being edited. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{ManualClock, TestServer, console_session, test_config, wall_ms};
use serde_json::json;

const HOUR: i64 = 3_600_000;

on_both_backends!(
    condition_editors_suggest_recent_label_keys,
    |url: String| async move {
        // spec: ING-261
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path(), &url);
        let clock = Arc::new(ManualClock(AtomicI64::new(wall_ms())));
        let server = klaxon_server::start_with_clock(config, clock.clone())
            .await
            .unwrap();
        let b = server.bootstrap().clone();
        let mut t = TestServer {
            base: server.base_url().to_string(),
            app_key: b.app_key.clone(),
            integration_key: b.integration_key.clone(),
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            database_url: url.clone(),
        };
        // Redirects are not followed: a signed-out request must not pass for a page.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let (cookie, _) = console_session(t.server.as_ref().unwrap()).await;
        let cookie = std::sync::Mutex::new(cookie);
        let get = |path: String| {
            let http = http.clone();
            let cookie = cookie.lock().unwrap().clone();
            let base = t.base.clone();
            async move {
                let resp = http
                    .get(format!("{base}{path}"))
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            }
        };

        // Nothing received yet: nothing to suggest, and that is not an error.
        let (s, html) = get(format!("/label-suggestions?channel_id={}", b.channel_id)).await;
        assert_eq!(s, 200, "{html}");
        assert!(!html.contains("<option"), "{html}");

        for (i, host) in ["web-1", "web-2", "web-1"].iter().enumerate() {
            let (s, body) = t
                .push(
                    json!({"event_status": "Warning", "alert_key": format!("ls-{i}"),
                         "title_rule": "disk", "labels": {"host": host, "env": "prod"}}),
                )
                .await;
            assert_eq!(s, 200, "{body}");
        }
        t.drained().await;

        for query in [
            format!("channel_id={}", b.channel_id),
            format!("integration_id={}", b.integration_id),
        ] {
            let (s, html) = get(format!("/label-suggestions?{query}")).await;
            assert_eq!(s, 200, "{html}");
            assert!(html.contains(r#"value="labels.host""#), "{query}: {html}");
            assert!(
                html.contains("web-1, web-2"),
                "most frequent value first: {html}"
            );
            assert!(html.contains(r#"value="labels.env""#), "{html}");
            // The most frequent key first (host and env are tied, then by name).
            assert!(html.find("labels.env") < html.find("labels.host"), "{html}");
        }

        // The rule forms load them into their key list.
        let (s, form) = get(format!("/channels/{}/silence-rules/new", b.channel_id)).await;
        assert_eq!(s, 200);
        assert!(
            form.contains(&format!(
                r#"hx-get="/label-suggestions?channel_id={}""#,
                b.channel_id
            )),
            "{form}"
        );
        let (s, form) = get(format!("/integrations/{}/pipeline", b.integration_id)).await;
        assert_eq!(s, 200);
        assert!(
            form.contains(&format!(
                r#"hx-get="/label-suggestions?integration_id={}""#,
                b.integration_id
            )),
            "{form}"
        );

        // Events older than 24 h are not looked at.
        clock.0.fetch_add(25 * HOUR, Ordering::SeqCst);
        // The session has expired by then: sign in again.
        *cookie.lock().unwrap() = console_session(t.server.as_ref().unwrap()).await.0;
        let (s, html) = get(format!("/label-suggestions?channel_id={}", b.channel_id)).await;
        assert_eq!(s, 200);
        assert!(!html.contains("labels.host"), "{html}");

        // Exactly one source; an unknown one is refused as the Open API refuses it.
        let (s, _) = get("/label-suggestions".to_string()).await;
        assert_ne!(s, 200);
        let (s, _) = get("/label-suggestions?channel_id=999999".to_string()).await;
        assert_ne!(s, 200);
        t.stop().await;
    }
);
