//! Mapping services: checks on save, the request, the response, and the rule (ING-072…075).

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::super::api::{self, Attempt, classify, request_body, validate_service};
use super::super::*;
use super::{event, labels, pairs};
use crate::model::{Image, Status};

fn service(url: &str) -> MappingService {
    MappingService {
        service_id: "svc".into(),
        account_id: 1,
        name: "CMDB".into(),
        description: String::new(),
        team_id: 0,
        url: url.into(),
        headers: BTreeMap::new(),
        timeout: 2,
        retry_count: 1,
        insecure_skip_verify: false,
        enabled: true,
    }
}

fn with_header(name: &str, value: &str) -> MappingService {
    let mut s = service("https://cmdb.example.com/api");
    s.headers.insert(name.into(), value.into());
    s
}

fn refused(s: MappingService) -> String {
    validate_service(s).unwrap_err().0
}

#[test]
fn header_blacklist_is_case_insensitive() {
    // spec: ING-074 — every listed header is refused whatever its case; the error names it.
    for name in api::HEADER_BLACKLIST {
        let upper = name.to_ascii_uppercase();
        let m = refused(with_header(&upper, "v"));
        assert_eq!(m, format!("headers.{upper}: this header may not be set"));
    }
    let m = refused(with_header("Authorization", "Bearer x"));
    assert_eq!(m, "headers.Authorization: this header may not be set");
}

#[test]
fn header_sizes_and_line_breaks() {
    // spec: ING-074 — name ≤ 1024 bytes, value ≤ 4096 bytes, no CR or LF in either.
    let long_name = format!("X-Custom-{}", "a".repeat(1016));
    assert!(refused(with_header(&long_name, "v")).contains("longer than 1024 bytes"));
    let ok_name = format!("X-Custom-{}", "a".repeat(1015));
    assert!(validate_service(with_header(&ok_name, "v")).is_ok());
    let m = refused(with_header("X-Custom-A", &"v".repeat(4097)));
    assert_eq!(m, "headers.X-Custom-A: the value is longer than 4096 bytes");
    assert!(validate_service(with_header("X-Custom-A", &"v".repeat(4096))).is_ok());
    let m = refused(with_header("X-Custom-A", "a\r\nX-Evil: 1"));
    assert_eq!(m, "headers.X-Custom-A: CR and LF are not allowed");
    assert!(refused(with_header("X-Custom\nB", "v")).contains("CR and LF"));
    assert!(refused(with_header("X Custom", "v")).contains("not a valid header name"));
}

#[test]
fn header_prefix_is_a_warning_only() {
    // spec: ING-074 — names should start with X-Custom- or X-Enrich-: a warning, not a refusal.
    let mut s = with_header("X-Custom-Token", "t");
    s.headers.insert("x-enrich-tenant".into(), "a".into());
    assert!(validate_service(s).unwrap().warnings.is_empty());
    let checked = validate_service(with_header("X-Team", "ops")).unwrap();
    assert_eq!(
        checked.warnings,
        vec!["headers.X-Team: custom header names should start with X-Custom- or X-Enrich-"]
    );
    assert_eq!(checked.service.headers["X-Team"], "ops");
}

#[test]
fn ranges_and_url() {
    // spec: ING-074 — timeout 1–3, retry_count 0–1, url http(s) after rendering with a sample
    // event.
    for t in [0, 4] {
        let mut s = service("https://a.example/x");
        s.timeout = t;
        assert_eq!(
            refused(s),
            format!("timeout: 1–3 seconds, got {t}"),
            "timeout {t}"
        );
    }
    let mut s = service("https://a.example/x");
    s.retry_count = 2;
    assert_eq!(refused(s), "retry_count: 0–1, got 2");
    for (t, r) in [(1, 0), (3, 1)] {
        let mut s = service("https://a.example/x");
        s.timeout = t;
        s.retry_count = r;
        assert!(validate_service(s).is_ok());
    }
    assert!(refused(service("ftp://a.example/x")).starts_with("url: \"ftp://a.example/x\""));
    assert!(refused(service("{{.Labels.scheme}}://a.example/x")).contains("not an http"));
    assert!(refused(service("https://a.example/{{.Labels.x")).contains("does not parse"));
    assert_eq!(refused(service("  ")), "url is required");
    assert!(validate_service(service("https://cmdb/api/host/{{.Labels.host}}")).is_ok());
    assert!(validate_service(service("http://{{.Labels.host}}.example/x")).is_ok());
    let mut s = service("https://a.example/x");
    s.name = " ".into();
    assert!(refused(s).starts_with("api_name:"));
}

#[test]
fn url_values_are_percent_encoded() {
    // spec: ING-075 — every substituted value is percent-encoded as a path/query component;
    // the literal text is kept.
    let q = event(
        "t",
        "",
        &[("host", "web 1/a?b=c&d#e"), ("ü", "é")],
        Status::Critical,
    );
    let url = api::render_url(
        "https://cmdb/api/host/{{.Labels.host}}?x={{index .Labels \"ü\"}}&s={{.EventSeverity}}",
        &q,
    )
    .unwrap();
    assert_eq!(
        url,
        "https://cmdb/api/host/web%201%2Fa%3Fb%3Dc%26d%23e?x=%C3%A9&s=Critical"
    );
    assert!(api::render_url("https://x/{{.Labels.x", &q).is_err());
}

#[test]
fn the_request_body_is_exactly_the_documented_one() {
    // spec: ING-072 — the body's fields and types; channel 0 for a shared integration (Q-08),
    // event_time in seconds, images as their src.
    let mut q = event("disk full", "on db1", &[("host", "db1")], Status::Warning);
    q.origin.channel_id = 0;
    q.event.title_rule = "disk full".into();
    q.event.event_time = 1_678_886_400_000;
    q.event.images = vec![Image {
        alt: "a".into(),
        src: "https://img/1.png".into(),
        href: String::new(),
    }];
    let body = request_body(&["owner".to_string()], &q, "");
    assert_eq!(
        body,
        json!({
            "result_label_keys": ["owner"],
            "event": {
                "account_id": 1,
                "channel_id": 0,
                "data_source_id": 7,
                "data_source_type": "standard",
                "title": "disk full",
                "title_rule": "disk full",
                "description": "on db1",
                "alert_key": "k",
                "alert_id": "",
                "event_severity": "Warning",
                "event_status": "Warning",
                "event_time": 1_678_886_400,
                "labels": {"host": "db1"},
                "images": ["https://img/1.png"],
            }
        })
    );
}

#[test]
fn responses_are_classified() {
    // spec: ING-073 — 200 with result_labels (string members only), 404 no result, 400 and
    // non-JSON fail without retry, 5xx retried.
    let Attempt::Done(ApiAnswer::Labels(l)) = classify(
        200,
        br#"{"result_labels": {"owner": "db", "n": 3, "empty": ""}, "x": 1}"#,
    ) else {
        panic!("labels expected");
    };
    assert_eq!(
        l,
        BTreeMap::from([
            ("owner".to_string(), "db".to_string()),
            ("empty".to_string(), String::new())
        ])
    );
    assert_eq!(classify(404, b""), Attempt::Done(ApiAnswer::NoResult));
    assert!(matches!(
        classify(400, b""),
        Attempt::Done(ApiAnswer::Failed(_))
    ));
    assert!(matches!(
        classify(200, b"<html>"),
        Attempt::Done(ApiAnswer::Failed(_))
    ));
    assert!(matches!(
        classify(200, b"{}"),
        Attempt::Done(ApiAnswer::Failed(_))
    ));
    assert!(matches!(classify(503, b""), Attempt::Retry(_)));
    assert!(matches!(
        classify(302, b""),
        Attempt::Done(ApiAnswer::Failed(_))
    ));
}

/// Services and answers held in memory.
#[derive(Default)]
struct Answers {
    services: HashMap<String, MappingService>,
    answers: HashMap<ApiKey, ApiAnswer>,
}

impl Tables for Answers {
    fn schema(&self, _: &str) -> Option<&MappingSchema> {
        None
    }
    fn lookup(&self, _: &str, _: &[String]) -> Lookup<'_> {
        Lookup::NoSchema
    }
    fn service(&self, id: &str) -> Option<&MappingService> {
        self.services.get(id)
    }
    fn api_answer(&self, key: &ApiKey) -> ApiLookup<'_> {
        match self.answers.get(key) {
            Some(a) => ApiLookup::Answer(a),
            None => ApiLookup::NotLoaded,
        }
    }
}

fn api_rule(keys: &[&str], overwrite: bool) -> EnrichmentRule {
    EnrichmentRule {
        source: "api".into(),
        service_id: "svc".into(),
        result_label_keys: keys.iter().map(|k| k.to_string()).collect(),
        r#override: overwrite,
        ..EnrichmentRule::new(RuleType::Map)
    }
}

fn compile_api(rules: &[EnrichmentRule]) -> RuleSet {
    RuleSet::compile_with(rules, |_| true, |id| id == "svc").unwrap()
}

#[test]
fn api_rule_reports_calls_then_uses_answers() {
    // spec: ING-072, ING-073, ING-065 — the call is reported, not guessed; the answer's listed
    // keys with non-empty string values are produced, existing labels kept unless override.
    let mut t = Answers::default();
    t.services
        .insert("svc".into(), service("https://cmdb/host/{{.Labels.host}}"));
    let set = compile_api(&[api_rule(&["owner", "tier", "env"], false)]);
    let mut q = event(
        "t",
        "",
        &[("host", "db 1"), ("env", "prod")],
        Status::Critical,
    );
    let r = set.apply(&mut q, &t);
    assert_eq!(r.calls.len(), 1);
    assert!(!r.enrich_error);
    let call = r.calls[0].clone();
    assert_eq!(call.url, "https://cmdb/host/db%201");
    assert_eq!(labels(&q), pairs(&[("host", "db 1"), ("env", "prod")]));

    t.answers.insert(
        call.key(),
        ApiAnswer::Labels(BTreeMap::from([
            ("owner".to_string(), "dba".to_string()),
            ("tier".to_string(), String::new()),
            ("env".to_string(), "staging".to_string()),
            ("unlisted".to_string(), "x".to_string()),
        ])),
    );
    let mut q = event(
        "t",
        "",
        &[("host", "db 1"), ("env", "prod")],
        Status::Critical,
    );
    let r = set.apply(&mut q, &t);
    assert!(r.calls.is_empty());
    assert_eq!(
        labels(&q),
        pairs(&[("host", "db 1"), ("env", "prod"), ("owner", "dba")])
    );

    // override = true replaces env.
    let set = compile_api(&[api_rule(&["owner", "tier", "env"], true)]);
    let mut q = event(
        "t",
        "",
        &[("host", "db 1"), ("env", "prod")],
        Status::Critical,
    );
    set.apply(&mut q, &t);
    assert_eq!(q.event.labels["env"], "staging");

    // 404: nothing, no error; a failure: nothing, enrich_error.
    t.answers.insert(call.key(), ApiAnswer::NoResult);
    let mut q = event(
        "t",
        "",
        &[("host", "db 1"), ("env", "prod")],
        Status::Critical,
    );
    let r = set.apply(&mut q, &t);
    assert!(!r.enrich_error);
    assert_eq!(q.event.labels.len(), 2);
    t.answers
        .insert(call.key(), ApiAnswer::Failed("HTTP 400".into()));
    let mut q = event(
        "t",
        "",
        &[("host", "db 1"), ("env", "prod")],
        Status::Critical,
    );
    let r = set.apply(&mut q, &t);
    assert!(r.enrich_error);
    assert_eq!(q.event.labels.len(), 2);
}

#[test]
fn api_rule_configuration() {
    // spec: ING-063 — service_id required and existing, result_label_keys 1–20 valid names.
    let refuse = |r: EnrichmentRule| {
        RuleSet::compile_with(&[r], |_| true, |id| id == "svc")
            .unwrap_err()
            .message
    };
    assert_eq!(
        refuse(api_rule(&[], false)),
        "rules[0].result_label_keys: 1–20 label names, got 0"
    );
    let many: Vec<String> = (0..21).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(refuse(api_rule(&refs, false)).contains("1–20"));
    assert!(refuse(api_rule(&["a", "a"], false)).contains("listed twice"));
    let mut r = api_rule(&["a"], false);
    r.service_id = "other".into();
    assert_eq!(
        refuse(r),
        "rules[0].service_id: mapping service other not found"
    );
    let mut r = api_rule(&["a"], false);
    r.service_id = String::new();
    assert_eq!(
        refuse(r),
        "rules[0].service_id: required for an api map rule"
    );
    assert_eq!(
        compile_api(&[api_rule(&["a"], false)]).service_ids(),
        vec!["svc"]
    );
}

#[test]
fn deleted_or_disabled_service() {
    // spec: ING-073 — a service gone since the save is a failure; a disabled one calls nothing.
    let set = compile_api(&[api_rule(&["owner"], false)]);
    let mut q = event("t", "", &[], Status::Critical);
    let r = set.apply(&mut q, &Answers::default());
    assert!(r.enrich_error);
    let mut t = Answers::default();
    let mut s = service("https://cmdb/x");
    s.enabled = false;
    t.services.insert("svc".into(), s);
    let r = set.apply(&mut q, &t);
    assert!(!r.enrich_error);
    assert!(r.calls.is_empty());
}
