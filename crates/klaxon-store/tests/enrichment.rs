//! Label enrichment in the processing batch and mapping tables in the store (ingest.md §2.5,
//! §2.6): enriched labels reach the alert, routing sees them, table rows are looked up per
//! batch (chained map rules included), uploads replace atomically, the 100 000-row limit, and
//! the outcome flags. SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use std::collections::BTreeMap;

use harness::{Db, random_hex};

use klaxon_core::condition::Condition;
use klaxon_core::enrichment::{
    ApiAnswer, EnrichmentRule, MAX_ROWS, MappingSchema, MappingService, RuleType, TableUpload,
    validate_schema, validate_service,
};
use klaxon_core::model::{EventOrigin, Millis, NewEvent, Status};
use klaxon_core::routing::{RouteConfig, RouteFlow, RouteRule};
use klaxon_store::{
    AlertFilter, ApiAnswers, Bootstrap, MappingRefusal, MappingRow, NewIntegration, OutcomeFilter,
    Paging, Processed,
};

const T0: Millis = 1_750_000_000_000;
const A: i64 = 9101;
const D: i64 = 9104;

both!(
    enriched_labels_reach_the_alert,
    routing_sees_enriched_labels,
    chained_table_lookups_in_one_batch,
    uploads_replace_rows_atomically_and_rows_are_managed,
    a_table_holds_at_most_100000_rows,
    outcomes_record_truncation_and_errors,
    api_calls_are_made_outside_the_batch,
    mapping_services_are_stored_and_guarded,
);

fn paging() -> Paging {
    Paging {
        p: 1,
        limit: 100,
        asc: true,
        search_after_ctx: None,
    }
}

fn origin(b: &Bootstrap, integration_id: i64, channel_id: i64) -> EventOrigin {
    EventOrigin {
        request_id: random_hex(16),
        account_id: b.account_id,
        integration_id,
        integration_type: "standard".into(),
        integration_name: "std".into(),
        channel_id,
        received_at: T0,
    }
}

fn event(key: &str, status: Status, title: &str, labels: &[(&str, &str)]) -> NewEvent {
    NewEvent {
        alert_key: key.into(),
        event_status: status,
        event_severity: status.severity(),
        title: title.into(),
        title_rule: String::new(),
        description: String::new(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        images: Vec::new(),
        event_time: T0,
        raw: String::new(),
    }
}

async fn schema(db: &Db, b: &Bootstrap, source: &[&str], result: &[&str]) -> String {
    let s = validate_schema(MappingSchema {
        schema_id: String::new(),
        account_id: b.account_id,
        name: "table".into(),
        description: String::new(),
        team_id: 0,
        source_label_keys: source.iter().map(|s| s.to_string()).collect(),
        result_label_keys: result.iter().map(|s| s.to_string()).collect(),
    })
    .unwrap();
    db.store
        .save_mapping_schema(s, b.owner_member_id, T0)
        .await
        .unwrap()
        .unwrap()
        .schema
        .schema_id
}

async fn upload(db: &Db, b: &Bootstrap, id: &str, csv: &str) -> TableUpload {
    let s = db
        .store
        .mapping_schema(b.account_id, id)
        .await
        .unwrap()
        .unwrap()
        .schema;
    let up = TableUpload::parse(&s, csv).unwrap();
    db.store
        .replace_mapping_rows(b.account_id, id, &up, T0)
        .await
        .unwrap()
        .unwrap();
    up
}

fn map(schema_id: &str) -> EnrichmentRule {
    EnrichmentRule {
        source: "table".into(),
        schema_id: schema_id.into(),
        ..EnrichmentRule::new(RuleType::Map)
    }
}

fn extract(source: &str, pattern: &str, result: &str) -> EnrichmentRule {
    EnrichmentRule {
        source: source.into(),
        pattern: pattern.into(),
        result_label: result.into(),
        ..EnrichmentRule::new(RuleType::Extract)
    }
}

fn compose(result: &str, template: &str) -> EnrichmentRule {
    EnrichmentRule {
        result_label: result.into(),
        template: template.into(),
        ..EnrichmentRule::new(RuleType::Compose)
    }
}

async fn alert_labels(db: &Db, b: &Bootstrap) -> Vec<BTreeMap<String, String>> {
    let filter = AlertFilter {
        paging: paging(),
        ..AlertFilter::default()
    };
    let mut alerts = db
        .store
        .list_alerts(b.account_id, &filter)
        .await
        .unwrap()
        .items;
    alerts.sort_by(|x, y| x.alert_key.cmp(&y.alert_key));
    alerts.into_iter().map(|a| a.labels).collect()
}

async fn enriched_labels_reach_the_alert(db: &Db) {
    // spec: ING-060, ING-061, ING-070 — on a dedicated integration, an extracted label feeds a
    // table look-up; both labels, and a delete, are on the stored alert. The recovery is
    // enriched too and resolves the alert.
    let b = db.boot(T0).await;
    let types = schema(db, &b, &["ID"], &["Type"]).await;
    upload(db, &b, &types, "ID,Type\nA,server\nB,router\n").await;
    let saved = db
        .store
        .save_enrichment_rules(
            b.account_id,
            b.integration_id,
            vec![
                extract("title", r"^res-(?P<ID>[A-Z])", ""),
                map(&types),
                EnrichmentRule {
                    label_names: vec!["secret".into()],
                    ..EnrichmentRule::new(RuleType::Delete)
                },
            ],
            b.owner_member_id,
            T0,
        )
        .await
        .unwrap();
    assert!(saved.rules.iter().all(|r| r.id.len() == 24));
    let got = db
        .store
        .enrichment_rules(b.account_id, b.integration_id)
        .await
        .unwrap();
    assert_eq!(got, saved);

    let o = origin(&b, b.integration_id, b.channel_id);
    db.store
        .enqueue(vec![
            (
                o.clone(),
                event("k1", Status::Critical, "res-B down", &[("secret", "x")]),
            ),
            (o.clone(), event("k2", Status::Warning, "res-Q down", &[])),
        ])
        .await
        .unwrap();
    assert_eq!(db.store.process_inbox("n", 100, T0 + 10).await.unwrap(), 2);
    let labels = alert_labels(db, &b).await;
    let want1: BTreeMap<String, String> = [("ID", "B"), ("Type", "router")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let want2: BTreeMap<String, String> = [("ID", "Q")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(labels, vec![want1, want2]);

    db.store
        .enqueue(vec![(o.clone(), event("k1", Status::Ok, "res-A ok", &[]))])
        .await
        .unwrap();
    db.store.process_inbox("n", 100, T0 + 20).await.unwrap();
    let filter = AlertFilter {
        paging: paging(),
        ..AlertFilter::default()
    };
    let alerts = db
        .store
        .list_alerts(b.account_id, &filter)
        .await
        .unwrap()
        .items;
    let k1 = alerts.iter().find(|a| a.alert_key == "k1").unwrap();
    assert_eq!(k1.alert_status, Status::Ok);
}

async fn shared(db: &Db, b: &Bootstrap) -> i64 {
    for (id, name) in [(A, "A"), (D, "D")] {
        db.exec(&format!(
            "INSERT INTO channels (channel_id, account_id, channel_name, created_at, updated_at) \
             VALUES ({id}, {}, '{name}', {T0}, {T0})",
            b.account_id
        ))
        .await;
    }
    let new = NewIntegration {
        integration_name: "shared".into(),
        integration_type: "standard".into(),
        kind: "shared".into(),
        channel_id: 0,
        integration_key: random_hex(16),
        enabled: true,
        settings: "{}".into(),
        now: T0,
    };
    db.store
        .create_shared_integration(b.account_id, &new, &[D], b.owner_member_id)
        .await
        .unwrap()
}

async fn routing_sees_enriched_labels(db: &Db) {
    // spec: ING-060, Q-08 — enrichment runs before routing: a route on a label that only
    // enrichment produces sends the event to A; without the label it takes the default D.
    let b = db.boot(T0).await;
    let id = shared(db, &b).await;
    let config = RouteConfig {
        rules: vec![RouteRule {
            id: "team".into(),
            conditions: vec![vec![Condition::is_in("labels.team", ["db"])]],
            channel_ids: vec![A],
            flow: RouteFlow::Stop,
            ..RouteRule::default()
        }],
        default_channel_ids: vec![D],
        ..RouteConfig::default()
    };
    db.store
        .save_routes(b.account_id, id, 1, &config, b.owner_member_id, T0)
        .await
        .unwrap()
        .unwrap();
    let rule = EnrichmentRule {
        condition: Some(vec![vec![Condition::is_in("title", ["/mysql/"])]]),
        ..compose("team", "db")
    };
    db.store
        .save_enrichment_rules(b.account_id, id, vec![rule], b.owner_member_id, T0)
        .await
        .unwrap();
    let o = origin(&b, id, 0);
    db.store
        .enqueue(vec![
            (o.clone(), event("m", Status::Critical, "mysql down", &[])),
            (o.clone(), event("w", Status::Critical, "web down", &[])),
        ])
        .await
        .unwrap();
    db.store.process_inbox("n", 100, T0 + 10).await.unwrap();
    let filter = AlertFilter {
        paging: paging(),
        ..AlertFilter::default()
    };
    let mut got: Vec<(String, i64, Option<String>)> = db
        .store
        .list_alerts(b.account_id, &filter)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| (a.alert_key, a.channel_id, a.labels.get("team").cloned()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("m".to_string(), A, Some("db".to_string())),
            ("w".to_string(), D, None),
        ]
    );
}

async fn chained_table_lookups_in_one_batch(db: &Db) {
    // spec: ING-070, ING-060 — a second map rule keyed on a label the first one produced: the
    // batch loads the rows it needs in rounds and every event gets both results; a row
    // uploaded later applies to events processed after it.
    let b = db.boot(T0).await;
    let hosts = schema(db, &b, &["host"], &["app"]).await;
    let apps = schema(db, &b, &["app", "env"], &["team", "owner"]).await;
    upload(db, &b, &hosts, "host,app\nh1,shop\nh2,blog\nh3,wiki\n").await;
    upload(
        db,
        &b,
        &apps,
        "app,env,team,owner\nshop,prod,web,ann\nblog,prod,content,\n",
    )
    .await;
    db.store
        .save_enrichment_rules(
            b.account_id,
            b.integration_id,
            vec![map(&hosts), map(&apps)],
            b.owner_member_id,
            T0,
        )
        .await
        .unwrap();
    let o = origin(&b, b.integration_id, b.channel_id);
    let batch: Vec<_> = [("k1", "h1"), ("k2", "h2"), ("k3", "h3"), ("k4", "h4")]
        .iter()
        .map(|(k, h)| {
            (
                o.clone(),
                event(k, Status::Critical, "t", &[("host", h), ("env", "prod")]),
            )
        })
        .collect();
    db.store.enqueue(batch).await.unwrap();
    db.store.process_inbox("n", 100, T0 + 10).await.unwrap();
    let got: Vec<Vec<(String, String)>> = alert_labels(db, &b)
        .await
        .into_iter()
        .map(|l| {
            l.into_iter()
                .filter(|(k, _)| k != "env" && k != "host")
                .collect()
        })
        .collect();
    let p = |x: &[(&str, &str)]| -> Vec<(String, String)> {
        x.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        got,
        vec![
            p(&[("app", "shop"), ("owner", "ann"), ("team", "web")]),
            p(&[("app", "blog"), ("team", "content")]),
            p(&[("app", "wiki")]),
            p(&[]),
        ]
    );
}

async fn uploads_replace_rows_atomically_and_rows_are_managed(db: &Db) {
    // spec: ING-071 — an upload replaces every row; single rows are added, edited (same
    // source values), deleted and searched; keys of a schema with rows are fixed; a schema in
    // use cannot be deleted.
    let b = db.boot(T0).await;
    let id = schema(db, &b, &["app", "env"], &["team"]).await;
    let up = upload(
        db,
        &b,
        &id,
        "env,app,team\nprod,shop,web\nprod,shop,payments\n,blog,x\ndev,blog,content\n",
    )
    .await;
    assert_eq!((up.rows.len(), up.skipped), (2, 1));
    let rows = |search: &'static str| {
        let store = db.store.clone();
        let account = b.account_id;
        let id = id.clone();
        async move {
            store
                .mapping_rows(account, &id, search, 1, 0)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|r| (r.source_values, r.result_values))
                .collect::<Vec<_>>()
        }
    };
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    assert_eq!(
        rows("").await,
        vec![
            (v(&["blog", "dev"]), v(&["content"])),
            (v(&["shop", "prod"]), v(&["payments"])),
        ]
    );
    // Replace: the old rows are gone.
    upload(db, &b, &id, "app,env,team\nwiki,prod,docs\n").await;
    assert_eq!(rows("").await, vec![(v(&["wiki", "prod"]), v(&["docs"]))]);
    // Single rows.
    for (src, res) in [(["wiki", "prod"], "kb"), (["shop", "dev"], "web")] {
        db.store
            .upsert_mapping_row(
                b.account_id,
                &id,
                &MappingRow {
                    source_values: v(&src),
                    result_values: v(&[res]),
                },
                T0,
            )
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        rows("").await,
        vec![
            (v(&["shop", "dev"]), v(&["web"])),
            (v(&["wiki", "prod"]), v(&["kb"])),
        ]
    );
    assert_eq!(rows("ik").await, vec![(v(&["wiki", "prod"]), v(&["kb"]))]);
    assert_eq!(rows("%").await, vec![]);
    db.store
        .delete_mapping_row(b.account_id, &id, &v(&["wiki", "prod"]), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db.store
            .delete_mapping_row(b.account_id, &id, &v(&["wiki", "prod"]), T0)
            .await
            .unwrap(),
        Err(MappingRefusal::RowNotFound)
    );
    let record = db
        .store
        .mapping_schema(b.account_id, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.row_count, 1);
    let mut changed = record.schema.clone();
    changed.result_label_keys = v(&["owner"]);
    assert_eq!(
        db.store
            .save_mapping_schema(changed, b.owner_member_id, T0)
            .await
            .unwrap(),
        Err(MappingRefusal::KeysFixed)
    );
    let mut renamed = record.schema.clone();
    renamed.name = "renamed".into();
    let saved = db
        .store
        .save_mapping_schema(renamed, b.owner_member_id, T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.schema.name, "renamed");
    // In use by a rule: refused; once no live integration names it, deleted with its rows.
    db.store
        .save_enrichment_rules(
            b.account_id,
            b.integration_id,
            vec![map(&id)],
            b.owner_member_id,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        db.store
            .delete_mapping_schema(b.account_id, &id)
            .await
            .unwrap(),
        Err(MappingRefusal::InUse(vec![b.integration_id]))
    );
    // A deleted integration's rules no longer hold the schema (they cannot be edited any more).
    assert!(
        db.store
            .delete_integration(b.account_id, b.integration_id, T0 + 6)
            .await
            .unwrap()
    );
    db.store
        .delete_mapping_schema(b.account_id, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        db.store
            .mapping_schema(b.account_id, &id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(rows("").await.is_empty());
    // Another account sees nothing of it.
    assert_eq!(
        db.store
            .replace_mapping_rows(b.account_id + 1, &id, &up, T0)
            .await
            .unwrap(),
        Err(MappingRefusal::SchemaNotFound)
    );
}

async fn a_table_holds_at_most_100000_rows(db: &Db) {
    // spec: ING-071 — 100 000 rows are stored; a single new row beyond that is refused, while
    // editing an existing row still works; look-ups work at that size.
    let b = db.boot(T0).await;
    let id = schema(db, &b, &["k"], &["v"]).await;
    let mut csv = String::from("k,v\n");
    for i in 0..MAX_ROWS {
        csv.push_str(&format!("key{i},val{i}\n"));
    }
    let up = upload(db, &b, &id, &csv).await;
    assert_eq!(up.rows.len(), MAX_ROWS);
    let count = db
        .store
        .mapping_schema(b.account_id, &id)
        .await
        .unwrap()
        .unwrap()
        .row_count;
    assert_eq!(count, 100_000);
    let row = |k: &str, v: &str| MappingRow {
        source_values: vec![k.to_string()],
        result_values: vec![v.to_string()],
    };
    assert_eq!(
        db.store
            .upsert_mapping_row(b.account_id, &id, &row("new", "x"), T0)
            .await
            .unwrap(),
        Err(MappingRefusal::Full)
    );
    db.store
        .upsert_mapping_row(b.account_id, &id, &row("key7", "edited"), T0)
        .await
        .unwrap()
        .unwrap();
    db.store
        .save_enrichment_rules(
            b.account_id,
            b.integration_id,
            vec![map(&id)],
            b.owner_member_id,
            T0,
        )
        .await
        .unwrap();
    let o = origin(&b, b.integration_id, b.channel_id);
    db.store
        .enqueue(vec![
            (
                o.clone(),
                event("a", Status::Critical, "t", &[("k", "key7")]),
            ),
            (
                o.clone(),
                event("b", Status::Critical, "t", &[("k", "key99999")]),
            ),
        ])
        .await
        .unwrap();
    db.store.process_inbox("n", 100, T0 + 10).await.unwrap();
    let got: Vec<Option<String>> = alert_labels(db, &b)
        .await
        .into_iter()
        .map(|l| l.get("v").cloned())
        .collect();
    assert_eq!(
        got,
        vec![Some("edited".to_string()), Some("val99999".to_string())]
    );
}

async fn outcomes_record_truncation_and_errors(db: &Db) {
    // spec: ING-065, ING-062, ING-262 — an event pushed with 50 labels grows to 100 and no
    // further (`labels_truncated`); a compose template that fails records `enrich_error`;
    // an untouched event has neither flag.
    let b = db.boot(T0).await;
    let mut rules: Vec<EnrichmentRule> = (0..60)
        .map(|i| EnrichmentRule {
            condition: Some(vec![vec![Condition::is_in("title", ["many"])]]),
            ..compose(&format!("add{i:02}"), "v")
        })
        .collect();
    rules.push(EnrichmentRule {
        condition: Some(vec![vec![Condition::is_in("title", ["broken"])]]),
        ..compose("bad", "{{.Labels.host.name}}")
    });
    db.store
        .save_enrichment_rules(b.account_id, b.integration_id, rules, b.owner_member_id, T0)
        .await
        .unwrap();
    let fifty: Vec<(String, String)> = (0..50).map(|i| (format!("l{i:02}"), "x".into())).collect();
    let refs: Vec<(&str, &str)> = fifty
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let o = origin(&b, b.integration_id, b.channel_id);
    db.store
        .enqueue(vec![
            (o.clone(), event("a", Status::Critical, "many", &refs)),
            (
                o.clone(),
                event("b", Status::Critical, "broken", &[("host", "h")]),
            ),
            (o.clone(), event("c", Status::Critical, "plain", &[])),
        ])
        .await
        .unwrap();
    db.store.process_inbox("n", 100, T0 + 10).await.unwrap();
    let counts: Vec<usize> = alert_labels(db, &b).await.iter().map(|l| l.len()).collect();
    assert_eq!(counts, vec![100, 1, 0]);
    let f = OutcomeFilter {
        paging: paging(),
        request_id: Some(o.request_id.clone()),
        ..OutcomeFilter::default()
    };
    let mut got: Vec<(String, bool, bool)> = db
        .store
        .event_outcomes(b.account_id, &f)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| (o.alert_key, o.labels_truncated, o.enrich_error))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a".to_string(), true, false),
            ("b".to_string(), false, true),
            ("c".to_string(), false, false),
        ]
    );
}

async fn service(db: &Db, b: &Bootstrap, url: &str) -> String {
    let s = validate_service(MappingService {
        service_id: String::new(),
        account_id: b.account_id,
        name: "CMDB".into(),
        description: String::new(),
        team_id: 0,
        url: url.into(),
        headers: BTreeMap::from([("X-Custom-Token".to_string(), "t".to_string())]),
        timeout: 2,
        retry_count: 1,
        insecure_skip_verify: false,
        enabled: true,
    })
    .unwrap()
    .service;
    db.store
        .save_mapping_service(s, b.owner_member_id, T0)
        .await
        .unwrap()
        .unwrap()
        .service
        .service_id
}

fn api(service_id: &str, keys: &[&str]) -> EnrichmentRule {
    EnrichmentRule {
        source: "api".into(),
        service_id: service_id.into(),
        result_label_keys: keys.iter().map(|k| k.to_string()).collect(),
        ..EnrichmentRule::new(RuleType::Map)
    }
}

async fn api_calls_are_made_outside_the_batch(db: &Db) {
    // spec: ING-072, ING-073 — a batch that needs calls writes nothing and returns them (one
    // per distinct request); with the answers it runs in one pass: a 200 answer's labels
    // reach the alert, a 404 adds nothing, a failure records `enrich_error`. A label an api
    // rule produced feeds a table look-up after it, in the same batch.
    let b = db.boot(T0).await;
    let svc = service(db, &b, "https://cmdb.example/host/{{.Labels.host}}").await;
    let types = schema(db, &b, &["owner"], &["team"]).await;
    upload(db, &b, &types, "owner,team\ndba,databases\n").await;
    db.store
        .save_enrichment_rules(
            b.account_id,
            b.integration_id,
            vec![api(&svc, &["owner"]), map(&types)],
            b.owner_member_id,
            T0,
        )
        .await
        .unwrap();
    let o = origin(&b, b.integration_id, b.channel_id);
    db.store
        .enqueue(vec![
            (
                o.clone(),
                event("a", Status::Critical, "t", &[("host", "db1")]),
            ),
            (
                o.clone(),
                event("b", Status::Critical, "t", &[("host", "db1")]),
            ),
            (
                o.clone(),
                event("c", Status::Critical, "t", &[("host", "gone")]),
            ),
            (
                o.clone(),
                event("d", Status::Critical, "t", &[("host", "bad")]),
            ),
        ])
        .await
        .unwrap();
    let mut answers = ApiAnswers::new();
    let Processed::NeedCalls(calls) = db
        .store
        .process_inbox_with("n", 100, T0 + 10, &answers)
        .await
        .unwrap()
    else {
        panic!("calls expected");
    };
    // Events a and b send the same request body except their alert key: three hosts, four
    // requests.
    assert_eq!(calls.len(), 4);
    assert_eq!(
        db.store.inbox_depth().await.unwrap(),
        4,
        "nothing was processed"
    );
    assert!(alert_labels(db, &b).await.is_empty());
    for c in &calls {
        assert_eq!(c.service.headers["X-Custom-Token"], "t");
        let answer = if c.url.ends_with("/db1") {
            ApiAnswer::Labels(BTreeMap::from([("owner".to_string(), "dba".to_string())]))
        } else if c.url.ends_with("/gone") {
            ApiAnswer::NoResult
        } else {
            ApiAnswer::Failed("HTTP 400".into())
        };
        answers.insert(c.key(), answer);
    }
    let done = db
        .store
        .process_inbox_with("n", 100, T0 + 20, &answers)
        .await
        .unwrap();
    assert_eq!(done, Processed::Done(4));
    let labels = alert_labels(db, &b).await;
    let l = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        labels,
        vec![
            l(&[("host", "db1"), ("owner", "dba"), ("team", "databases")]),
            l(&[("host", "db1"), ("owner", "dba"), ("team", "databases")]),
            l(&[("host", "gone")]),
            l(&[("host", "bad")]),
        ]
    );
    let f = OutcomeFilter {
        paging: paging(),
        request_id: Some(o.request_id.clone()),
        ..OutcomeFilter::default()
    };
    let mut got: Vec<(String, bool)> = db
        .store
        .event_outcomes(b.account_id, &f)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| (o.alert_key, o.enrich_error))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a".to_string(), false),
            ("b".to_string(), false),
            ("c".to_string(), false),
            ("d".to_string(), true),
        ]
    );

    // spec: ING-072 — on a dedicated integration, the active alert's id is in the request.
    let alert_a = db
        .store
        .list_alerts(
            b.account_id,
            &AlertFilter {
                paging: paging(),
                ..AlertFilter::default()
            },
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|x| x.alert_key == "a")
        .unwrap()
        .alert_id;
    db.store
        .enqueue(vec![(
            o.clone(),
            event("a", Status::Critical, "t", &[("host", "db1")]),
        )])
        .await
        .unwrap();
    let Processed::NeedCalls(calls) = db
        .store
        .process_inbox_with("n", 100, T0 + 25, &ApiAnswers::new())
        .await
        .unwrap()
    else {
        panic!("a call expected");
    };
    let body: serde_json::Value = serde_json::from_str(&calls[0].body).unwrap();
    assert_eq!(body["event"]["alert_id"], alert_a.as_str());
    assert_eq!(
        db.store.process_inbox("n", 100, T0 + 26).await.unwrap(),
        1,
        "without answers the request fails and the event goes on"
    );

    // process_inbox (no caller to make calls): each request fails, nothing waits.
    db.store
        .enqueue(vec![(
            o.clone(),
            event("e", Status::Critical, "t", &[("host", "db1")]),
        )])
        .await
        .unwrap();
    assert_eq!(db.store.process_inbox("n", 100, T0 + 30).await.unwrap(), 1);
    assert_eq!(alert_labels(db, &b).await[4], l(&[("host", "db1")]));
}

async fn mapping_services_are_stored_and_guarded(db: &Db) {
    // spec: ING-063 — services are per account; one an enrichment rule calls cannot be
    // deleted.
    let b = db.boot(T0).await;
    let svc = service(db, &b, "https://cmdb.example/x").await;
    let got = db
        .store
        .mapping_service(b.account_id, &svc)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.service.url, "https://cmdb.example/x");
    assert!(
        db.store
            .mapping_service(b.account_id + 1, &svc)
            .await
            .unwrap()
            .is_none()
    );
    let mut changed = got.service.clone();
    changed.timeout = 3;
    changed.enabled = false;
    let saved = db
        .store
        .save_mapping_service(changed, b.owner_member_id, T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.created_at, T0);
    assert_eq!(saved.updated_at, T0 + 5);
    let page = db
        .store
        .mapping_services(b.account_id, 1, 20)
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].service.timeout, 3);
    assert!(!page.items[0].service.enabled);
    db.store
        .save_enrichment_rules(
            b.account_id,
            b.integration_id,
            vec![api(&svc, &["owner"])],
            b.owner_member_id,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        db.store
            .delete_mapping_service(b.account_id, &svc)
            .await
            .unwrap(),
        Err(MappingRefusal::InUse(vec![b.integration_id]))
    );
    db.store
        .save_enrichment_rules(
            b.account_id,
            b.integration_id,
            vec![],
            b.owner_member_id,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        db.store
            .delete_mapping_service(b.account_id + 1, &svc)
            .await
            .unwrap(),
        Err(MappingRefusal::ServiceNotFound)
    );
    db.store
        .delete_mapping_service(b.account_id, &svc)
        .await
        .unwrap()
        .unwrap();
    assert!(
        db.store
            .mapping_service(b.account_id, &svc)
            .await
            .unwrap()
            .is_none()
    );
}
