//! Label enrichment and mapping tables over HTTP (ingest.md §2.5, §2.6; openapi-compat.md
//! `/enrichment/*`): schemas, CSV upload and download, single rows, rule validation on save,
//! and a pushed event whose enriched labels reach the alert. SQLite always, PostgreSQL when
//! `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::TestServer;
use serde_json::{Value, json};

fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    assert!(body.get("error").is_none(), "{body}");
    body["data"].clone()
}

fn err((status, body): (u16, Value), code: &str) -> String {
    assert_eq!(body["error"]["code"], code, "{status} {body}");
    assert_eq!(status, 400, "{body}");
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

async fn default_integration(t: &TestServer) -> i64 {
    ok(t.api("/integration/list", json!({})).await)["items"][0]["integration_id"]
        .as_i64()
        .unwrap()
}

async fn download(t: &TestServer, schema_id: &str) -> (String, String) {
    let resp = t
        .http
        .post(format!(
            "{}/enrichment/mapping/data/download?app_key={}",
            t.base, t.app_key
        ))
        .json(&json!({ "schema_id": schema_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (ct, resp.text().await.unwrap())
}

on_both_backends!(
    mapping_tables_and_enrichment_end_to_end,
    |url: String| async move {
        let mut t = TestServer::start(&url).await;

        // spec: ING-070 — schemas: 1–5 source keys, 1–20 result keys, disjoint.
        let m = err(
            t.api(
                "/enrichment/mapping/schema/create",
                json!({"name": "t", "source_label_keys": ["ID"], "result_label_keys": ["ID"]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.contains("disjoint"), "{m}");
        let schema = ok(t
            .api(
                "/enrichment/mapping/schema/create",
                json!({"name": "resource types", "source_label_keys": ["ID"],
                       "result_label_keys": ["Type"]}),
            )
            .await);
        let sid = schema["schema_id"].as_str().unwrap().to_string();
        assert_eq!(sid.len(), 24);
        assert_eq!(schema["row_count"], 0);

        // spec: ING-071 — a missing column refuses the upload and changes nothing; a good one
        // replaces the table (BOM, extra column, empty source skipped, last duplicate wins).
        let m = err(
            t.api(
                "/enrichment/mapping/data/upload",
                json!({"schema_id": sid, "csv": "ID,Kind\nA,server\n"}),
            )
            .await,
            "InvalidParameter",
        );
        assert_eq!(m, "csv: the header lacks the column(s) Type");
        let up = ok(t
            .api(
                "/enrichment/mapping/data/upload",
                json!({"schema_id": sid,
                       "csv": "\u{feff}ID,Type,note\r\nA,server,x\r\nB,switch,y\r\n,gateway,z\r\nB,router,w\r\n"}),
            )
            .await);
        assert_eq!(up, json!({"row_count": 2, "skipped": 1}));
        ok(t.api(
            "/enrichment/mapping/data/upsert",
            json!({"schema_id": sid, "row": {"ID": "C", "Type": "gateway, edge"}}),
        )
        .await);
        let m = err(
            t.api(
                "/enrichment/mapping/data/upsert",
                json!({"schema_id": sid, "row": {"ID": "D", "Typo": "x"}}),
            )
            .await,
            "InvalidParameter",
        );
        assert_eq!(m, "row.Typo: not a key of the schema");
        let list = ok(t
            .api(
                "/enrichment/mapping/data/list",
                json!({"schema_id": sid, "search": "B"}),
            )
            .await);
        assert_eq!(list["items"], json!([{"ID": "B", "Type": "router"}]));
        assert_eq!(list["total"], 1);
        let (ct, body) = download(&t, &sid).await;
        assert!(ct.starts_with("text/csv"), "{ct}");
        assert_eq!(
            body,
            "ID,Type\r\nA,server\r\nB,router\r\nC,\"gateway, edge\"\r\n"
        );

        // spec: ING-071 — more than 100 000 rows refuse the upload as a whole (the body, over
        // 1 MiB, is accepted on this path) and the table keeps its rows.
        let mut big = String::from("ID,Type\n");
        for i in 0..100_001 {
            big.push_str(&format!("resource-{i},t\n"));
        }
        assert!(big.len() > 1024 * 1024);
        let m = err(
            t.api(
                "/enrichment/mapping/data/upload",
                json!({"schema_id": sid, "csv": big}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.starts_with("csv: more than 100000 rows"), "{m}");
        let info = ok(t
            .api("/enrichment/mapping/schema/info", json!({"schema_id": sid}))
            .await);
        assert_eq!(info["row_count"], 3);

        // spec: ING-061, ING-063, ING-064 — rules are validated whole, naming rule and field.
        let iid = default_integration(&t).await;
        let m = err(
            t.api(
                "/enrichment/upsert",
                json!({"integration_id": iid, "rules": [
                    {"type": "delete", "label_names": ["x"]},
                    {"type": "extract", "source": "title", "pattern": "(?<=a)b", "result_label": "x"}]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(
            m.starts_with("rules[1].pattern: invalid regular expression"),
            "{m}"
        );
        let m = err(
            t.api(
                "/enrichment/upsert",
                json!({"integration_id": iid, "rules": [{"type": "map", "source": "table",
                                                           "schema_id": "000000000000000000000000"}]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.starts_with("rules[0].schema_id: mapping schema"), "{m}");
        let m = err(
            t.api(
                "/enrichment/upsert",
                json!({"integration_id": iid, "rules": [{"type": "rename"}]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.starts_with("rules[0]:"), "{m}");
        let saved = ok(t
            .api(
                "/enrichment/upsert",
                json!({"integration_id": iid, "rules": [
                    {"type": "extract", "source": "title", "pattern": "/^res-(?P<ID>[A-Z])/"},
                    {"type": "map", "source": "table", "schema_id": sid},
                    {"type": "compose", "result_label": "summary",
                     "template": "{{.Labels.ID}} is a {{.Labels.Type | upper}}"},
                    {"type": "delete", "label_names": ["secret"], "enabled": true},
                    {"type": "compose", "result_label": "off", "template": "x", "enabled": false}]}),
            )
            .await);
        assert_eq!(saved["rules"].as_array().unwrap().len(), 5);
        let info = ok(t
            .api("/enrichment/info", json!({"integration_id": iid}))
            .await);
        assert_eq!(info["rules"], saved["rules"]);
        assert_eq!(info["rules"][1]["override"], false);
        let listed = ok(t.api("/enrichment/list", json!({})).await);
        assert_eq!(listed["items"][0]["integration_id"], iid);

        // spec: ING-060 — the pushed event's enriched labels reach the alert.
        let (status, body) = t
            .push(json!({"title": "res-B down", "event_status": "Critical",
                         "alert_key": "k1", "labels": {"secret": "s", "env": "prod"}}))
            .await;
        assert_eq!(status, 200, "{body}");
        let request_id = body["request_id"].as_str().unwrap().to_string();
        t.drained().await;
        let alerts = t.alerts().await;
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            alerts[0]["labels"],
            json!({"ID": "B", "Type": "router", "env": "prod", "summary": "B is a ROUTER"})
        );
        let outcomes = ok(t
            .api(
                "/alert-event/outcome/list",
                json!({"request_id": request_id}),
            )
            .await);
        let o = &outcomes["items"][0];
        assert_eq!(o["outcome"], "new_alert");
        assert_eq!(o["labels_truncated"], false);
        assert_eq!(o["enrich_error"], false);

        // A schema in use cannot be deleted; keys of a schema with rows cannot change.
        let m = err(
            t.api(
                "/enrichment/mapping/schema/delete",
                json!({"schema_id": sid}),
            )
            .await,
            "ReferenceExist",
        );
        assert!(m.contains(&iid.to_string()), "{m}");
        let m = err(
            t.api(
                "/enrichment/mapping/schema/update",
                json!({"schema_id": sid, "result_label_keys": ["Kind"]}),
            )
            .await,
            "InvalidParameter",
        );
        assert!(m.contains("cannot change"), "{m}");
        let renamed = ok(t
            .api(
                "/enrichment/mapping/schema/update",
                json!({"schema_id": sid, "name": "types"}),
            )
            .await);
        assert_eq!(renamed["name"], "types");
        assert_eq!(renamed["row_count"], 3);
        ok(t.api(
            "/enrichment/upsert",
            json!({"integration_id": iid, "rules": []}),
        )
        .await);
        ok(t.api(
            "/enrichment/mapping/schema/delete",
            json!({"schema_id": sid}),
        )
        .await);
        let m = err(
            t.api("/enrichment/mapping/schema/info", json!({"schema_id": sid}))
                .await,
            "ResourceNotFound",
        );
        assert!(m.contains("not found"), "{m}");
        t.stop().await;
    }
);
