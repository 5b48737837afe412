#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use super::*;
use crate::condition::Condition;
use crate::model::{EventOrigin, Labels, NewEvent, Status};

fn event(title: &str, description: &str, labels: &[(&str, &str)], status: Status) -> QueuedEvent {
    QueuedEvent {
        seq: 1,
        origin: EventOrigin {
            request_id: "r".into(),
            account_id: 1,
            integration_id: 7,
            integration_type: "standard".into(),
            integration_name: "std".into(),
            channel_id: 0,
            received_at: 0,
        },
        event: NewEvent {
            alert_key: "k".into(),
            event_status: status,
            event_severity: status.severity(),
            title: title.into(),
            title_rule: String::new(),
            description: description.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            images: Vec::new(),
            event_time: 0,
            raw: String::new(),
        },
    }
}

fn labels(q: &QueuedEvent) -> Vec<(String, String)> {
    q.event.labels.clone().into_iter().collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    let l: Labels = p
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.into_iter().collect()
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

fn delete(names: &[&str]) -> EnrichmentRule {
    EnrichmentRule {
        label_names: names.iter().map(|s| s.to_string()).collect(),
        ..EnrichmentRule::new(RuleType::Delete)
    }
}

fn map(schema: &str) -> EnrichmentRule {
    EnrichmentRule {
        source: "table".into(),
        schema_id: schema.into(),
        ..EnrichmentRule::new(RuleType::Map)
    }
}

fn compile(rules: &[EnrichmentRule]) -> RuleSet {
    RuleSet::compile(rules, |_| true).unwrap()
}

fn refusal(rules: &[EnrichmentRule]) -> String {
    RuleSet::compile(rules, |id| id != "gone")
        .unwrap_err()
        .message
}

/// In-memory tables for the tests: every row is "loaded".
#[derive(Default)]
struct Mem {
    schemas: HashMap<String, MappingSchema>,
    rows: HashMap<(String, Vec<String>), Vec<String>>,
    /// Keys answered `NotLoaded` (to test the batch protocol).
    unloaded: bool,
}

impl Tables for Mem {
    fn schema(&self, id: &str) -> Option<&MappingSchema> {
        self.schemas.get(id)
    }
    fn lookup(&self, id: &str, values: &[String]) -> Lookup<'_> {
        if !self.schemas.contains_key(id) {
            return Lookup::NoSchema;
        }
        if self.unloaded {
            return Lookup::NotLoaded;
        }
        match self.rows.get(&(id.to_string(), values.to_vec())) {
            Some(r) => Lookup::Row(r),
            None => Lookup::NoRow,
        }
    }
}

fn resource_types() -> Mem {
    // The docs' example table: resource type id → type name.
    let mut m = Mem::default();
    m.schemas.insert(
        "s1".into(),
        MappingSchema {
            schema_id: "s1".into(),
            account_id: 1,
            name: "types".into(),
            description: String::new(),
            team_id: 0,
            source_label_keys: vec!["ID".into()],
            result_label_keys: vec!["Type".into()],
        },
    );
    for (id, ty) in [
        ("A", "server"),
        ("B", "router"),
        ("C", "gateway"),
        ("D", "database"),
        ("E", "MQ"),
    ] {
        m.rows
            .insert(("s1".into(), vec![id.into()]), vec![ty.into()]);
    }
    m
}

#[test]
fn extract_worked_example() {
    // spec: ING-061 — description `host 10.1.2.3 cpu 97%`, pattern `host (\d+\.\d+\.\d+\.\d+)`,
    // result_label `ip` → `ip=10.1.2.3`.
    let set = compile(&[extract("description", r"host (\d+\.\d+\.\d+\.\d+)", "ip")]);
    let mut q = event("cpu", "host 10.1.2.3 cpu 97%", &[], Status::Critical);
    let r = set.apply(&mut q, &NoTables);
    assert_eq!(labels(&q), pairs(&[("ip", "10.1.2.3")]));
    assert_eq!(r, Report::default());
}

#[test]
fn extract_named_groups_slashes_and_no_group() {
    // spec: ING-061 — named groups each make a label; result_label then gets the first group;
    // `/…/` is stripped; without a group the whole match is the value; a missing source label
    // is no match.
    let set = compile(&[
        extract(
            "title",
            r"/(?P<host>[a-z]+-\d+) (?P<check>\w+)(?P<empty>x?)/",
            "first",
        ),
        extract("labels.url", r"[a-z]+\.example\.com", "domain"),
        extract("labels.absent", r".*", "never"),
    ]);
    let mut q = event(
        "db-01 disk full",
        "",
        &[("url", "https://api.example.com/x")],
        Status::Warning,
    );
    set.apply(&mut q, &NoTables);
    assert_eq!(
        labels(&q),
        pairs(&[
            ("host", "db-01"),
            ("check", "disk"),
            ("first", "db-01"),
            ("url", "https://api.example.com/x"),
            ("domain", "api.example.com"),
        ])
    );
}

#[test]
fn extract_validation() {
    // spec: ING-061 — result_label is required without named groups; a bad RE2 pattern or a
    // Perl-only construct is refused naming the rule.
    assert_eq!(
        refusal(&[extract("title", r"(\d+)", "")]),
        "rules[0].result_label: required when the pattern has no named capture groups"
    );
    assert!(
        refusal(&[compose("a", "x"), extract("title", r"(?<=a)b", "x")])
            .starts_with("rules[1].pattern: invalid regular expression")
    );
    assert!(refusal(&[extract("title", r"(", "x")]).starts_with("rules[0].pattern: invalid"));
    assert!(refusal(&[extract("body", r"x", "x")]).starts_with("rules[0].source:"));
    assert!(refusal(&[extract("labels.", r"x", "x")]).starts_with("rules[0].source:"));
    assert_eq!(
        refusal(&[extract("title", "", "x")]),
        "rules[0].pattern: a pattern is required"
    );
    let long = "k".repeat(129);
    assert!(refusal(&[extract("title", "x", &long)]).starts_with("rules[0].result_label:"));
}

#[test]
fn compose_worked_example() {
    // spec: ING-062 — template `https://logs.example.com/{{.Labels.event_id}}?t={{.Labels.ts}}`
    // → one URL label; the rendered text is trimmed.
    let set = compile(&[compose(
        "log_url",
        "  https://logs.example.com/{{.Labels.event_id}}?t={{.Labels.ts}}  ",
    )]);
    let mut q = event(
        "t",
        "",
        &[("event_id", "e-42"), ("ts", "1700000000")],
        Status::Critical,
    );
    let r = set.apply(&mut q, &NoTables);
    assert_eq!(
        q.event.labels.get("log_url").map(String::as_str),
        Some("https://logs.example.com/e-42?t=1700000000")
    );
    assert!(!r.enrich_error);
}

#[test]
fn compose_empty_result_error_and_validation() {
    // spec: ING-062 — an empty result sets nothing; a template error sets nothing and records
    // `enrich_error`; templates over 1024 characters or that do not parse are refused on save.
    let set = compile(&[
        compose("empty", "{{if .Labels.nope}}x{{end}}  "),
        compose("sev", "{{.EventSeverity | lower}}/{{.AlertKey}}"),
        // Parses, and runs on the empty sample of the save check; fails only when `host`
        // exists (a field of a string).
        compose("bad", "{{.Labels.host.name}}"),
    ]);
    let mut q = event("t", "", &[("host", "h")], Status::Critical);
    let r = set.apply(&mut q, &NoTables);
    assert_eq!(labels(&q), pairs(&[("host", "h"), ("sev", "critical/k")]));
    assert!(r.enrich_error);

    assert_eq!(
        refusal(&[compose("x", &"a".repeat(1025))]),
        "rules[0].template: at most 1024 characters"
    );
    assert!(
        refusal(&[compose("x", "{{.Title")])
            .starts_with("rules[0].template: the template does not parse")
    );
    assert!(refusal(&[compose("x", "{{nosuchfunc .Title}}")]).starts_with("rules[0].template:"));
    assert_eq!(
        refusal(&[compose("", "x")]),
        "rules[0].result_label: a result label is required"
    );
}

#[test]
fn map_table_worked_example() {
    // spec: ING-070 — the docs' resource-type table: label ID=B gains Type=router; no row, a
    // missing source label or an empty result cell produce nothing.
    let mut tables = resource_types();
    tables
        .rows
        .insert(("s1".into(), vec!["Z".into()]), vec![String::new()]);
    let set = compile(&[map("s1")]);
    let mut q = event("t", "", &[("ID", "B")], Status::Critical);
    set.apply(&mut q, &tables);
    assert_eq!(labels(&q), pairs(&[("ID", "B"), ("Type", "router")]));
    for id in ["b", "Q", "Z"] {
        let mut q = event("t", "", &[("ID", id)], Status::Critical);
        let r = set.apply(&mut q, &tables);
        assert_eq!(labels(&q), pairs(&[("ID", id)]), "{id}");
        assert_eq!(r, Report::default());
    }
    let mut q = event("t", "", &[("other", "A")], Status::Critical);
    set.apply(&mut q, &tables);
    assert_eq!(labels(&q), pairs(&[("other", "A")]));
}

#[test]
fn map_reports_unloaded_keys_and_missing_schema() {
    // spec: ING-070 — the batch protocol: an unloaded key is reported, not guessed; a schema
    // deleted after the save records `enrich_error`. ING-063: an `api` source must name a
    // mapping service that exists.
    let mut tables = resource_types();
    tables.unloaded = true;
    let set = compile(&[map("s1"), map("s2")]);
    let mut q = event("t", "", &[("ID", "A")], Status::Critical);
    let r = set.apply(&mut q, &tables);
    assert_eq!(r.wanted, vec![("s1".to_string(), vec!["A".to_string()])]);
    assert!(r.enrich_error, "s2 does not exist");
    assert_eq!(labels(&q), pairs(&[("ID", "A")]));
    assert_eq!(
        refusal(&[map("gone")]),
        "rules[0].schema_id: mapping schema gone not found"
    );
    let api = EnrichmentRule {
        source: "api".into(),
        service_id: "x".into(),
        ..EnrichmentRule::new(RuleType::Map)
    };
    assert_eq!(
        refusal(&[api]),
        "rules[0].service_id: mapping service x not found"
    );
}

mod api;

#[test]
fn delete_rule() {
    // spec: ING-064 — listed labels are removed, absent ones ignored; 1–50 names.
    let set = compile(&[delete(&["a", "zz"])]);
    let mut q = event("t", "", &[("a", "1"), ("b", "2")], Status::Critical);
    set.apply(&mut q, &NoTables);
    assert_eq!(labels(&q), pairs(&[("b", "2")]));
    assert!(refusal(&[delete(&[])]).starts_with("rules[0].label_names: 1–50"));
    let many: Vec<String> = (0..51).map(|i| format!("l{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(refusal(&[delete(&refs)]).starts_with("rules[0].label_names: 1–50"));
    assert!(refusal(&[delete(&["ok", " "])]).starts_with("rules[0].label_names[1]:"));
}

#[test]
fn override_flag() {
    // spec: ING-065 — without override an existing label is kept; with it, replaced.
    let keep = compile(&[compose("env", "new")]);
    let mut q = event("t", "", &[("env", "old")], Status::Critical);
    keep.apply(&mut q, &NoTables);
    assert_eq!(labels(&q), pairs(&[("env", "old")]));
    let replace = compile(&[EnrichmentRule {
        r#override: true,
        ..compose("env", "new")
    }]);
    replace.apply(&mut q, &NoTables);
    assert_eq!(labels(&q), pairs(&[("env", "new")]));
}

#[test]
fn value_truncation_and_the_hundred_label_cap() {
    // spec: ING-065 — values are truncated to 2048; an event may grow past 50 labels but
    // never past 100: further additions are ignored and `labels_truncated` is recorded, while
    // overriding an existing label still works at 100.
    let many: Vec<(String, String)> = (0..99).map(|i| (format!("l{i:02}"), "v".into())).collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut q = event(&"x".repeat(3000), "", &refs, Status::Critical);
    let set = compile(&[
        extract("title", "(x+)", "long"),
        compose("extra", "y"),
        EnrichmentRule {
            r#override: true,
            ..compose("l00", "changed")
        },
    ]);
    let r = set.apply(&mut q, &NoTables);
    assert_eq!(q.event.labels.len(), 100);
    assert_eq!(q.event.labels["long"].chars().count(), 2048);
    assert!(!q.event.labels.contains_key("extra"));
    assert_eq!(q.event.labels["l00"], "changed");
    assert!(r.labels_truncated);
}

#[test]
fn order_conditions_disabled_and_recoveries() {
    // spec: ING-060 — top to bottom, each rule sees the previous rules' labels; a disabled
    // rule is skipped; a non-matching condition changes nothing; recoveries are enriched too.
    let set = compile(&[
        extract("title", r"^(\S+)", "host"),
        EnrichmentRule {
            condition: Some(vec![vec![Condition::is_in("labels.host", ["db-*"])]]),
            ..compose("team", "dba")
        },
        EnrichmentRule {
            enabled: false,
            ..delete(&["host"])
        },
        EnrichmentRule {
            condition: Some(vec![vec![Condition::is_in("severity", ["Critical"])]]),
            ..compose("page", "yes")
        },
        compose("summary", "{{.Labels.host}}:{{.Labels.team}}"),
    ]);
    let mut q = event("db-01 down", "", &[], Status::Ok);
    set.apply(&mut q, &NoTables);
    assert_eq!(
        labels(&q),
        pairs(&[("host", "db-01"), ("team", "dba"), ("summary", "db-01:dba")])
    );
    let mut q = event("web-01 down", "", &[], Status::Critical);
    set.apply(&mut q, &NoTables);
    assert_eq!(
        labels(&q),
        pairs(&[
            ("host", "web-01"),
            ("page", "yes"),
            ("summary", "web-01:<no value>"),
        ])
    );
}

#[test]
fn condition_validation_names_the_rule() {
    // spec: ING-060 — conditions use the enrichment context of §4.2 and are validated (§4.5).
    let bad = EnrichmentRule {
        condition: Some(vec![vec![Condition::is_in("subject", ["x"])]]),
        ..compose("a", "b")
    };
    assert!(refusal(&[compose("a", "b"), bad]).starts_with("rules[1].condition[0][0]"));
    let bad_num = EnrichmentRule {
        condition: Some(vec![vec![Condition::is_in("labels.v", ["num:abc"])]]),
        ..compose("a", "b")
    };
    assert!(refusal(&[bad_num]).starts_with("rules[0].condition"));
    let too_many: Vec<EnrichmentRule> = (0..101).map(|_| compose("a", "b")).collect();
    assert!(refusal(&too_many).starts_with("rules: at most 100"));
}

#[test]
fn schema_validation() {
    // spec: ING-070 — 1–5 source keys, 1–20 result keys, disjoint.
    let s = MappingSchema {
        schema_id: String::new(),
        account_id: 1,
        name: " types ".into(),
        description: String::new(),
        team_id: 0,
        source_label_keys: vec!["ID".into()],
        result_label_keys: vec!["Type".into()],
    };
    assert_eq!(validate_schema(s.clone()).unwrap().name, "types");
    let both = MappingSchema {
        result_label_keys: vec!["ID".into()],
        ..s.clone()
    };
    assert!(validate_schema(both).unwrap_err().0.contains("disjoint"));
    let six = MappingSchema {
        source_label_keys: (0..6).map(|i| format!("k{i}")).collect(),
        ..s.clone()
    };
    assert!(
        validate_schema(six)
            .unwrap_err()
            .0
            .starts_with("source_label_keys: 1–5")
    );
    let none = MappingSchema {
        result_label_keys: vec![],
        ..s.clone()
    };
    assert!(
        validate_schema(none)
            .unwrap_err()
            .0
            .starts_with("result_label_keys: 1–20")
    );
    let twice = MappingSchema {
        result_label_keys: vec!["a".into(), "a".into()],
        ..s.clone()
    };
    assert!(validate_schema(twice).unwrap_err().0.contains("twice"));
    let unnamed = MappingSchema {
        name: "  ".into(),
        ..s
    };
    assert!(validate_schema(unnamed).unwrap_err().0.starts_with("name:"));
}

fn two_key_schema() -> MappingSchema {
    MappingSchema {
        schema_id: "s".into(),
        account_id: 1,
        name: "n".into(),
        description: String::new(),
        team_id: 0,
        source_label_keys: vec!["app".into(), "env".into()],
        result_label_keys: vec!["team".into(), "owner".into()],
    }
}

#[test]
fn csv_upload_edge_cases() {
    // spec: ING-071 — BOM and extra columns accepted, quoted fields, last duplicate wins, rows
    // with an empty source cell skipped, column order free.
    let text = "\u{feff}owner,env,ignored,app,team\r\n\
                \"Smith, J\",prod,x,shop,web\r\n\
                ann,dev,x,shop,web\r\n\
                ,prod,x,,db\r\n\
                \r\n\
                \"B \"\"bob\"\"\",prod,x,shop,payments\r\n\
                carl,prod,x,\"multi\nline\",ops";
    let up = TableUpload::parse(&two_key_schema(), text).unwrap();
    assert_eq!(up.skipped, 1);
    assert_eq!(
        up.rows,
        vec![
            (
                vec!["shop".to_string(), "dev".to_string()],
                vec!["web".to_string(), "ann".to_string()]
            ),
            (
                vec!["shop".to_string(), "prod".to_string()],
                vec!["payments".to_string(), "B \"bob\"".to_string()]
            ),
            (
                vec!["multi\nline".to_string(), "prod".to_string()],
                vec!["ops".to_string(), "carl".to_string()]
            ),
        ]
    );
}

#[test]
fn csv_upload_refusals() {
    // spec: ING-071 — a missing required column, an empty file, a broken quote or an
    // over-long row refuse the upload as a whole.
    let s = two_key_schema();
    assert_eq!(
        TableUpload::parse(&s, "app,env,team\nshop,prod,web").unwrap_err(),
        UploadError::MissingColumns(vec!["owner".into()])
    );
    assert_eq!(TableUpload::parse(&s, "").unwrap_err(), UploadError::Empty);
    assert!(matches!(
        TableUpload::parse(&s, "app,env,team,owner\n\"shop,prod,web,x").unwrap_err(),
        UploadError::Csv(CsvError { line: 2, .. })
    ));
    assert!(matches!(
        TableUpload::parse(&s, "app,env,team,owner\nshop,prod,web,x,extra").unwrap_err(),
        UploadError::TooManyFields {
            line: 2,
            got: 5,
            header: 4
        }
    ));
    assert!(matches!(
        TableUpload::parse(&s, "app,app,env,team,owner\n").unwrap_err(),
        UploadError::DuplicateColumn(_)
    ));
    // A header alone is a valid, empty table.
    assert!(
        TableUpload::parse(&s, "app,env,team,owner")
            .unwrap()
            .rows
            .is_empty()
    );
}

#[test]
fn csv_row_limit() {
    // spec: ING-071 — at most 100 000 rows: exactly 100 000 is accepted, one more refuses the
    // upload; duplicates do not count twice.
    let s = MappingSchema {
        source_label_keys: vec!["k".into()],
        result_label_keys: vec!["v".into()],
        ..two_key_schema()
    };
    let mut text = String::from("k,v\n");
    for i in 0..MAX_ROWS {
        text.push_str(&format!("{i},x\n"));
    }
    text.push_str("0,dup\n");
    let up = TableUpload::parse(&s, &text).unwrap();
    assert_eq!(up.rows.len(), MAX_ROWS);
    text.push_str("extra,x\n");
    assert!(matches!(
        TableUpload::parse(&s, &text).unwrap_err(),
        UploadError::TooManyRows(_)
    ));
}

#[test]
fn csv_round_trip() {
    // spec: ING-071 — downloads use the upload format: what is written reads back the same.
    let rows = vec![
        vec!["app".to_string(), "note".to_string()],
        vec!["a,b".to_string(), "say \"hi\"\nthere".to_string()],
        vec![" lead".to_string(), String::new()],
    ];
    let text = write_csv(rows.iter().map(Vec::as_slice));
    let back: Vec<Vec<String>> = parse_csv(&text).unwrap().into_iter().map(|r| r.1).collect();
    assert_eq!(back, rows);
}
