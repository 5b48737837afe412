#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use super::*;
use crate::condition::Condition;
use crate::model::{Labels, ResolvedBy, Status};

const T0: Millis = 1_700_000_000_000;
const HOUR: Millis = 3_600_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn origin() -> EventOrigin {
    EventOrigin {
        request_id: "r".into(),
        account_id: 1,
        integration_id: 10,
        integration_type: "standard".into(),
        integration_name: "Std".into(),
        channel_id: 100,
        received_at: T0,
    }
}

fn event(status: Status, pairs: &[(&str, &str)]) -> NewEvent {
    NewEvent {
        alert_key: "k1".into(),
        event_status: status,
        event_severity: status.severity(),
        title: "disk full".into(),
        title_rule: String::new(),
        description: "90% used".into(),
        labels: labels(pairs),
        images: Vec::new(),
        event_time: T0,
        raw: String::new(),
    }
}

fn alert(id: &str, pairs: &[(&str, &str)]) -> Alert {
    Alert {
        alert_id: id.into(),
        account_id: 1,
        channel_id: 100,
        integration_id: 10,
        integration_type: "standard".into(),
        integration_name: "Std".into(),
        alert_key: "other".into(),
        title: "host down".into(),
        title_rule: String::new(),
        description: "no ping".into(),
        alert_severity: Severity::Critical,
        alert_status: Status::Critical,
        labels: labels(pairs),
        images: Vec::new(),
        start_time: T0 - HOUR,
        last_time: T0 - HOUR,
        end_time: 0,
        created_at: T0 - HOUR,
        updated_at: T0 - HOUR,
        event_cnt: 1,
        incident_id: String::new(),
        closed: false,
        close_time: 0,
        resolved_by: ResolvedBy::None,
        ever_muted: false,
        mark: Default::default(),
        mark_rule_id: String::new(),
    }
}

fn act(id: &str, action: Action) -> PipelineAction {
    PipelineAction {
        id: id.into(),
        enabled: true,
        condition: Vec::new(),
        action,
    }
}

fn when(mut a: PipelineAction, conditions: Vec<Condition>) -> PipelineAction {
    a.condition = vec![conditions];
    a
}

fn title(t: &str) -> Action {
    Action::UpdateTitle { template: t.into() }
}

fn description(t: &str) -> Action {
    Action::UpdateDescription { template: t.into() }
}

fn severity(s: Severity) -> Action {
    Action::UpdateSeverity { severity: s }
}

fn inhibit(source: Vec<Condition>, attrs: &[Attribute], labels: &[&str]) -> Action {
    Action::Inhibit(InhibitSpec {
        source_conditions: if source.is_empty() {
            Vec::new()
        } else {
            vec![source]
        },
        equal_attributes: attrs.to_vec(),
        equal_labels: labels.iter().map(|l| l.to_string()).collect(),
    })
}

fn run(actions: &[PipelineAction], e: &mut NewEvent, active: &[Alert]) -> Verdict {
    Pipeline::compile(actions)
        .unwrap()
        .run(e, &origin(), active, T0)
}

// --- ING-080: order, disabled actions, conditions --------------------------------------

#[test]
fn actions_run_in_order_and_each_sees_the_earlier_ones() {
    // spec: ING-080 — the second action's condition matches the title the first one wrote.
    let actions = vec![
        act("t", title("db: $host")),
        when(
            act("s", severity(Severity::Critical)),
            vec![Condition::is_in("title", ["db: *"])],
        ),
    ];
    let mut e = event(Status::Warning, &[("host", "db-1")]);
    assert_eq!(run(&actions, &mut e, &[]), Verdict::Keep);
    assert_eq!(e.title, "db: db-1");
    assert_eq!(e.event_status, Status::Critical);
}

#[test]
fn disabled_and_non_matching_actions_are_skipped() {
    // spec: ING-080 — a disabled drop and a drop whose condition fails do nothing.
    let mut off = act("off", Action::Drop);
    off.enabled = false;
    let other = when(
        act("other", Action::Drop),
        vec![Condition::is_in("labels.env", ["prod"])],
    );
    let actions = vec![off, other, act("t", title("kept"))];
    let mut e = event(Status::Critical, &[("env", "dev")]);
    assert_eq!(run(&actions, &mut e, &[]), Verdict::Keep);
    assert_eq!(e.title, "kept");
    assert!(
        !Pipeline::compile(&actions[..1]).unwrap().inhibits(),
        "nothing enabled"
    );
    assert!(Pipeline::compile(&actions[..1]).unwrap().is_empty());
}

#[test]
fn conditions_see_integration_and_event_severity() {
    // spec: ING-080 — keys integration_id and integration_type, severity = event severity.
    let actions = vec![when(
        act("d", Action::Drop),
        vec![
            Condition::is_in("integration_id", ["10"]),
            Condition::is_in("integration_type", ["standard"]),
            Condition::is_in("severity", ["Info"]),
        ],
    )];
    let mut info = event(Status::Info, &[]);
    assert!(matches!(
        run(&actions, &mut info, &[]),
        Verdict::Dropped { .. }
    ));
    let mut warning = event(Status::Warning, &[]);
    assert_eq!(run(&actions, &mut warning, &[]), Verdict::Keep);
}

// --- ING-081: update title -------------------------------------------------------------

#[test]
fn nightingale_title_example() {
    // spec: ING-081 — the Nightingale sample of the pipeline page: template
    // `[TPL]${ident} cpu idle {{.Labels.trigger_value}}` → `demo-01 cpu idle 29.27852`.
    let sample = [
        ("__name__", "cpu_usage_idle"),
        ("cate", "prometheus"),
        ("check", "hm-test-alert-rule-name"),
        ("cluster", "Cluster-01"),
        ("cpu", "cpu-total"),
        ("ident", "demo-01"),
        ("resource", "demo-01"),
        ("trigger_value", "29.27852"),
    ];
    let mut e = event(Status::Info, &sample);
    e.title = "hm-test-alert-rule-name / Cluster-01 - demo-01".into();
    let template = "[TPL]${ident} cpu idle {{.Labels.trigger_value}}";
    assert_eq!(
        run(&[act("t", title(template))], &mut e, &[]),
        Verdict::Keep
    );
    assert_eq!(e.title, "demo-01 cpu idle 29.27852");
    assert_eq!(e.title_rule, template);
}

#[test]
fn title_forms_use_current_fields() {
    // spec: ING-081 — template form with the current title and severity, legacy `$name`
    // (absent labels kept literally), literal text.
    let mut e = event(Status::Warning, &[("host", "h1")]);
    let t = "[TPL]{{.Title}} on {{.Labels.host}} ({{.EventSeverity}}, {{.Labels.nope}})";
    run(&[act("t", title(t))], &mut e, &[]);
    assert_eq!(e.title, "disk full on h1 (Warning, <no value>)");

    let mut e = event(Status::Warning, &[("host", "h1")]);
    run(&[act("t", title("$host::$missing"))], &mut e, &[]);
    assert_eq!(e.title, "h1::$missing");

    let mut e = event(Status::Warning, &[]);
    run(&[act("t", title("  Fixed title  "))], &mut e, &[]);
    assert_eq!(e.title, "Fixed title");
    assert_eq!(e.title_rule, "  Fixed title  ");
}

#[test]
fn title_is_truncated_and_an_empty_result_changes_nothing() {
    // spec: ING-081 — cut to 512 characters; an empty result leaves title and title_rule.
    let mut e = event(Status::Critical, &[("long", &"é".repeat(600))]);
    run(&[act("t", title("$long"))], &mut e, &[]);
    assert_eq!(e.title.chars().count(), 512);

    let mut e = event(Status::Critical, &[]);
    e.title_rule = "original".into();
    run(
        &[act("t", title("[TPL]{{if .Labels.x}}x{{end}}  "))],
        &mut e,
        &[],
    );
    assert_eq!(e.title, "disk full");
    assert_eq!(e.title_rule, "original");
}

#[test]
fn a_broken_template_gives_the_rule_text() {
    // spec: ING-081 (ING-023 1) — a template that does not parse renders as its text.
    let mut e = event(Status::Critical, &[]);
    run(&[act("t", title("[TPL]oops {{.Title"))], &mut e, &[]);
    assert_eq!(e.title, "oops {{.Title");
}

// --- ING-082: update description -------------------------------------------------------

#[test]
fn description_is_rendered_cut_and_may_become_empty() {
    // spec: ING-082 — same syntax; cut to 2048; an empty result empties the description.
    let mut e = event(Status::Critical, &[("host", "h1")]);
    run(
        &[act("d", description("[TPL]{{.Description}} on ${host}"))],
        &mut e,
        &[],
    );
    assert_eq!(e.description, "90% used on h1");

    let mut e = event(Status::Critical, &[("big", &"x".repeat(3000))]);
    run(&[act("d", description("$big"))], &mut e, &[]);
    assert_eq!(e.description.chars().count(), 2048);

    let mut e = event(Status::Critical, &[]);
    run(
        &[act(
            "d",
            description("[TPL]{{.Labels.none | default \"\"}}"),
        )],
        &mut e,
        &[],
    );
    assert_eq!(e.description, "");
    let mut e = event(Status::Critical, &[]);
    run(&[act("d", description(""))], &mut e, &[]);
    assert_eq!(e.description, "");
}

#[test]
fn email_descriptions_keep_32_kib() {
    // spec: ING-082 — e-mail integrations keep up to 32 KiB (Q-36).
    let mut e = event(Status::Critical, &[("big", &"x".repeat(40_000))]);
    let mut o = origin();
    o.integration_type = "email".into();
    Pipeline::compile(&[act("d", description("$big"))])
        .unwrap()
        .run(&mut e, &o, &[], T0);
    assert_eq!(e.description.len(), 32 * 1024);
}

// --- ING-083: update severity ----------------------------------------------------------

#[test]
fn severity_update_sets_status_and_severity_of_triggers_only() {
    // spec: ING-083 — a trigger takes the severity as status too; a recovery stays Ok.
    let actions = vec![act("s", severity(Severity::Critical))];
    let mut e = event(Status::Info, &[]);
    run(&actions, &mut e, &[]);
    assert_eq!(
        (e.event_status, e.event_severity),
        (Status::Critical, Some(Severity::Critical))
    );
    let mut r = event(Status::Ok, &[]);
    run(&actions, &mut r, &[]);
    assert_eq!(
        (r.event_status, r.event_severity),
        (Status::Ok, Some(Severity::Critical))
    );
}

// --- ING-084: drop ---------------------------------------------------------------------

#[test]
fn drop_discards_and_stops_the_pipeline() {
    // spec: ING-084 — the outcome names the action; later actions do not run.
    let actions = vec![act("d1", Action::Drop), act("t", title("never"))];
    let mut e = event(Status::Critical, &[]);
    assert_eq!(
        run(&actions, &mut e, &[]),
        Verdict::Dropped {
            action_id: "d1".into()
        }
    );
    assert_eq!(e.title, "disk full");
}

// --- ING-085: integration-level inhibit ------------------------------------------------

fn host_inhibit() -> Vec<PipelineAction> {
    vec![act(
        "inh",
        inhibit(
            vec![Condition::is_in("severity", ["Critical"])],
            &[],
            &["host"],
        ),
    )]
}

#[test]
fn a_dry_run_tells_whether_an_inhibit_action_looks_for_a_source() {
    // spec: ING-085, ING-084, ING-086 — the batch processor's question: does this event's
    // fate depend on the integration's active alerts, and can it open one?
    let p = Pipeline::compile(&[
        when(
            act("drop", Action::Drop),
            vec![Condition::is_in("labels.env", ["dev"])],
        ),
        when(
            act(
                "inh",
                inhibit(
                    vec![Condition::is_in("severity", ["Critical"])],
                    &[],
                    &["host"],
                ),
            ),
            vec![Condition::is_in("severity", ["Warning"])],
        ),
    ])
    .unwrap();
    let o = origin();
    let warning = event(Status::Warning, &[("host", "h1")]);
    let dry = p.dry_run(&warning, &o);
    assert!(dry.looks_for_source && !dry.dropped);
    // The event itself is left as it was.
    assert_eq!(warning, event(Status::Warning, &[("host", "h1")]));

    let critical = event(Status::Critical, &[("host", "h1")]);
    let dry = p.dry_run(&critical, &o);
    assert!(!dry.looks_for_source && !dry.dropped);

    let dev = event(Status::Warning, &[("host", "h1"), ("env", "dev")]);
    let dry = p.dry_run(&dev, &o);
    assert!(dry.dropped && !dry.looks_for_source);

    // A recovery passes drop and inhibit untouched (ING-086).
    let ok = event(Status::Ok, &[("host", "h1"), ("env", "dev")]);
    let dry = p.dry_run(&ok, &o);
    assert!(!dry.dropped && !dry.looks_for_source);
}

#[test]
fn inhibit_needs_an_active_young_alert_of_the_same_integration() {
    // spec: ING-085 — same integration (any channel), active, created < 24 h ago.
    let mut e = event(Status::Warning, &[("host", "h1")]);
    let mut other_channel = alert("a1", &[("host", "h1")]);
    other_channel.channel_id = 999;
    assert_eq!(
        run(&host_inhibit(), &mut e, &[other_channel]),
        Verdict::Inhibited {
            action_id: "inh".into(),
            source_alert_id: "a1".into()
        }
    );

    let mut foreign = alert("a2", &[("host", "h1")]);
    foreign.integration_id = 11;
    let mut closed = alert("a3", &[("host", "h1")]);
    closed.closed = true;
    let mut resolved = alert("a4", &[("host", "h1")]);
    resolved.alert_status = Status::Ok;
    let mut old = alert("a5", &[("host", "h1")]);
    old.created_at = T0 - 24 * HOUR;
    let mut e = event(Status::Warning, &[("host", "h1")]);
    assert_eq!(
        run(&host_inhibit(), &mut e, &[foreign, closed, resolved, old]),
        Verdict::Keep
    );
    let mut young = alert("a6", &[("host", "h1")]);
    young.created_at = T0 - 24 * HOUR + 1;
    assert!(matches!(
        run(&host_inhibit(), &mut e, &[young]),
        Verdict::Inhibited { .. }
    ));
}

#[test]
fn inhibit_source_conditions_and_equal_values() {
    // spec: ING-085 — the source must match source_conditions (alert severity here); every
    // listed label and attribute must be equal; a label missing on either side is not equal.
    let mut warning_source = alert("w", &[("host", "h1")]);
    warning_source.alert_severity = Severity::Warning;
    let mut e = event(Status::Warning, &[("host", "h1")]);
    assert_eq!(
        run(&host_inhibit(), &mut e, &[warning_source]),
        Verdict::Keep
    );
    assert_eq!(
        run(&host_inhibit(), &mut e, &[alert("x", &[("host", "h2")])]),
        Verdict::Keep
    );
    assert_eq!(
        run(&host_inhibit(), &mut e, &[alert("x", &[])]),
        Verdict::Keep
    );
    let mut bare = event(Status::Warning, &[]);
    assert_eq!(
        run(&host_inhibit(), &mut bare, &[alert("x", &[])]),
        Verdict::Keep
    );

    let by_title = vec![act(
        "t",
        inhibit(Vec::new(), &[Attribute::Title, Attribute::Severity], &[]),
    )];
    let mut same = event(Status::Critical, &[]);
    same.title = "host down".into();
    assert!(matches!(
        run(&by_title, &mut same, &[alert("x", &[])]),
        Verdict::Inhibited { .. }
    ));
    let mut weaker = same.clone();
    weaker.event_status = Status::Warning;
    weaker.event_severity = Some(Severity::Warning);
    assert_eq!(
        run(&by_title, &mut weaker, &[alert("x", &[])]),
        Verdict::Keep
    );
}

#[test]
fn inhibit_sources_compare_cidr_and_num_as_text() {
    // spec: ING-085 — `cidr:` and `num:` are literal text in source_conditions (§4.2).
    let actions = vec![act(
        "i",
        inhibit(
            vec![Condition::is_in("labels.ip", ["cidr:10.0.0.0/8"])],
            &[],
            &["host"],
        ),
    )];
    let mut e = event(Status::Warning, &[("host", "h1")]);
    let in_net = alert("a", &[("host", "h1"), ("ip", "10.1.2.3")]);
    assert_eq!(run(&actions, &mut e, &[in_net]), Verdict::Keep);
    let literal = alert("b", &[("host", "h1"), ("ip", "cidr:10.0.0.0/8")]);
    assert!(matches!(
        run(&actions, &mut e, &[literal]),
        Verdict::Inhibited { .. }
    ));
}

#[test]
fn the_action_condition_is_the_target_condition() {
    // spec: ING-085 — only events matching the action's own condition are inhibited.
    let mut actions = host_inhibit();
    actions[0].condition = vec![vec![Condition::is_in("severity", ["Info"])]];
    let mut e = event(Status::Warning, &[("host", "h1")]);
    assert_eq!(
        run(&actions, &mut e, &[alert("a", &[("host", "h1")])]),
        Verdict::Keep
    );
}

#[test]
fn inhibit_needs_an_equal_attribute_or_label() {
    // spec: ING-085 — at least one equal attribute or label must be configured.
    let e = validate(&[act("i", inhibit(Vec::new(), &[], &[]))]).unwrap_err();
    assert_eq!(e.field, "rules[0].settings.equals");
    assert!(e.message.contains("at least one"), "{e}");
}

// --- ING-086: recoveries ---------------------------------------------------------------

#[test]
fn recoveries_are_never_dropped_or_inhibited() {
    // spec: ING-086 — drop and inhibit do not apply to a recovery; the actions after them
    // still run on it.
    let mut actions = host_inhibit();
    actions.push(act("d", Action::Drop));
    actions.push(act("t", title("recovered $host")));
    let mut r = event(Status::Ok, &[("host", "h1")]);
    assert_eq!(
        run(&actions, &mut r, &[alert("a", &[("host", "h1")])]),
        Verdict::Keep
    );
    assert_eq!(r.title, "recovered h1");
}

// --- validation and the wire form ------------------------------------------------------

fn no_ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("new{n}")
    }
}

fn read(rules: serde_json::Value) -> Result<Vec<PipelineAction>, PipelineError> {
    wire::read(Some(&rules), &[], &mut no_ids())
}

#[test]
fn at_most_fifty_rules() {
    // spec: ING-080 (§1.5.4) — rules[] holds at most 50 actions.
    let fifty: Vec<_> = (0..50).map(|_| json!({"kind": "alert_drop"})).collect();
    assert_eq!(read(json!(fifty)).unwrap().len(), 50);
    let fifty_one: Vec<_> = (0..51).map(|_| json!({"kind": "alert_drop"})).collect();
    let e = read(json!(fifty_one)).unwrap_err();
    assert_eq!(e.to_string(), "rules: too many rules (51; at most 50)");
    let many: Vec<_> = (0..51)
        .map(|i| act(&format!("a{i}"), Action::Drop))
        .collect();
    assert_eq!(validate(&many).unwrap_err().field, "rules");
}

#[test]
fn bad_rules_are_refused_naming_the_bad_part() {
    // spec: ING-080 — validation on save names the wire field (§4.5 for conditions).
    let cases = [
        (
            json!([{"kind": "explode"}]),
            "rules[0].kind: \"explode\" is not a rule kind",
        ),
        (json!([{}]), "rules[0].kind: is required"),
        (
            json!([{"kind": "severity_reset", "settings": {"severity": "critical"}}]),
            "rules[0].settings.severity: \"critical\" is not a severity",
        ),
        (
            json!([{"kind": "severity_reset", "settings": {}}]),
            "rules[0].settings.severity: is required",
        ),
        (
            json!([{"kind": "alert_drop"}, {"kind": "alert_drop", "if": [
                {"key": "title", "oper": "IN", "vals": ["ok", "/(/"]}]}]),
            "rules[1].if[0].vals[1]: invalid regular expression",
        ),
        (
            json!([{"kind": "alert_drop", "if": [{"key": "subject", "oper": "IN", "vals": ["x"]}]}]),
            "rules[0].if[0].key: unknown key \"subject\"",
        ),
        (
            json!([{"kind": "alert_drop", "if": [{"key": "labels.x", "oper": "IN", "vals": ["num:abc"]}]}]),
            "rules[0].if[0].vals[0]: invalid numeric pattern",
        ),
        (
            json!([{"kind": "alert_inhibit", "settings": {"equals": ["labels.host"],
                "source_filters": [{"key": "integration_id", "oper": "IN", "vals": ["1"]}]}}]),
            "rules[0].settings.source_filters[0].key: unknown key \"integration_id\"",
        ),
        (
            json!([{"kind": "alert_inhibit", "settings": {"equals": ["host"]}}]),
            "rules[0].settings.equals[0]: \"host\" is not title, description, severity or labels.<name>",
        ),
        (
            json!([{"kind": "alert_inhibit", "settings": {"equals": ["title", "title"]}}]),
            "rules[0].settings.equals: \"title\" is repeated",
        ),
        (
            json!([{"kind": "title_reset", "settings": {"title": "  "}}]),
            "rules[0].settings.title: a title template is required",
        ),
        (
            json!([{"kind": "title_reset", "settings": {"title": "x".repeat(513)}}]),
            "rules[0].settings.title: template too long (513 characters; at most 512)",
        ),
        (
            json!([{"id": "a", "kind": "alert_drop"}, {"id": "a", "kind": "alert_drop"}]),
            "rules[1].id: id \"a\" is used by another rule",
        ),
        (json!({"kind": "alert_drop"}), "rules: must be a list"),
        (
            json!([{"kind": "alert_drop", "enabled": "yes"}]),
            "rules[0].enabled: must be true or false",
        ),
    ];
    for (body, want) in cases {
        let got = read(body.clone()).unwrap_err().to_string();
        assert!(got.starts_with(want), "{body}: got {got:?}, want {want:?}");
    }
    assert!(
        wire::read(None, &[], &mut no_ids())
            .unwrap_err()
            .to_string()
            .starts_with("rules: is required")
    );
}

#[test]
fn wire_round_trip_and_terraform_shapes() {
    // spec: ING-080 (§1.5.4) — the Terraform example reads as its four actions; settings may
    // be a JSON string; render gives back what was read.
    let body = json!([
        {"kind": "title_reset", "if": [{"key": "labels.source", "oper": "IN", "vals": ["prometheus"]}],
         "settings": {"title": "[Prometheus] ${title}"}},
        {"kind": "severity_reset", "settings": "{\"severity\": \"Warning\"}"},
        {"kind": "alert_drop", "if": [[{"key": "title", "oper": "IN", "vals": ["a"]}],
                                      [{"key": "title", "oper": "IN", "vals": ["b"]}]]},
        {"kind": "alert_inhibit", "enabled": false, "settings": {
            "source_filters": [{"key": "severity", "oper": "IN", "vals": ["Critical"]}],
            "equals": ["labels.host", "severity"]}},
        {"kind": "description_reset", "settings": {"description": ""}},
    ]);
    let actions = read(body).unwrap();
    assert_eq!(actions.len(), 5);
    assert_eq!(actions[0].condition.len(), 1);
    assert_eq!(
        actions[1].action,
        Action::UpdateSeverity {
            severity: Severity::Warning
        }
    );
    assert_eq!(actions[2].condition.len(), 2);
    assert!(!actions[3].enabled);
    assert_eq!(
        actions[3].action,
        Action::Inhibit(InhibitSpec {
            source_conditions: vec![vec![Condition::is_in("severity", ["Critical"])]],
            equal_attributes: vec![Attribute::Severity],
            equal_labels: vec!["host".into()],
        })
    );
    let rendered = wire::render(&actions);
    assert_eq!(rendered[1]["settings"], json!({"severity": "Warning"}));
    assert_eq!(
        rendered[3]["settings"]["equals"],
        json!(["severity", "labels.host"])
    );
    let again = wire::read(Some(&json!(rendered)), &actions, &mut no_ids()).unwrap();
    assert_eq!(again, actions);
}

#[test]
fn ids_are_kept_by_position_and_kind() {
    // spec: ING-080 — a client that never sends ids (Terraform) keeps stable action ids.
    let first =
        read(json!([{"kind": "alert_drop"}, {"kind": "title_reset", "settings": {"title": "x"}}]))
            .unwrap();
    assert_eq!(
        (first[0].id.as_str(), first[1].id.as_str()),
        ("new1", "new2")
    );
    let mut ids = || "fresh".to_string();
    let second = wire::read(
        Some(&json!([{"kind": "alert_drop"}, {"kind": "alert_drop"}, {"id": "mine", "kind": "alert_drop"}])),
        &first,
        &mut ids,
    )
    .unwrap();
    assert_eq!(second[0].id, "new1");
    assert_eq!(
        second[1].id, "fresh",
        "the stored rule there has another kind"
    );
    assert_eq!(second[2].id, "mine");
}

#[test]
fn stored_actions_that_no_longer_compile_are_skipped() {
    // spec: ING-080 — a broken stored action is left out; the others still run.
    let broken = PipelineAction {
        condition: vec![vec![Condition::is_in("title", ["/(/"])]],
        ..act("bad", Action::Drop)
    };
    let (pipeline, errors) = Pipeline::compile_skipping(&[broken, act("t", title("ok"))]);
    assert_eq!(errors.len(), 1);
    let mut e = event(Status::Critical, &[]);
    assert_eq!(pipeline.run(&mut e, &origin(), &[], T0), Verdict::Keep);
    assert_eq!(e.title, "ok");
}
