//! Tests of routing (ingest.md §2.8, ING-090…097, and ING-010's "no target at all").

use super::*;
use crate::condition::Condition;
use crate::model::{EventOrigin, NewEvent, Status};

fn rule(id: &str, conditions: FilterGroups, channels: &[i64], flow: RouteFlow) -> RouteRule {
    RouteRule {
        id: id.into(),
        conditions,
        channel_ids: channels.to_vec(),
        flow,
        ..RouteRule::default()
    }
}

fn when(key: &str, value: &str) -> FilterGroups {
    vec![vec![Condition::is_in(key, [value])]]
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn event<'a>(labels: &'a Labels, severity: Severity) -> EventFields<'a> {
    EventFields {
        title: "disk full",
        severity: Some(severity),
        labels,
        integration_id: 7,
        integration_type: "standard",
        ..EventFields::default()
    }
}

const A: i64 = 1;
const B: i64 = 2;
const C: i64 = 3;
const D: i64 = 4;

/// The configuration of ING-092.
fn example() -> RouteConfig {
    RouteConfig {
        rules: vec![
            rule(
                "R1",
                when("labels.group_name", "db"),
                &[A],
                RouteFlow::Continue,
            ),
            rule("R2", when("severity", "Critical"), &[B], RouteFlow::Stop),
            rule("R3", when("labels.env", "prod"), &[C], RouteFlow::Continue),
        ],
        default_channel_ids: vec![D],
        ..RouteConfig::default()
    }
}

#[test]
fn the_evaluation_example_table() {
    // spec: ING-092, ING-091
    let router = Router::compile(&example()).unwrap();
    // (group_name, severity, env, matching rules, targets)
    type Row = (
        &'static str,
        Severity,
        &'static str,
        &'static [usize],
        &'static [i64],
    );
    let rows: [Row; 5] = [
        ("db", Severity::Critical, "prod", &[0, 1], &[A, B]),
        ("db", Severity::Warning, "prod", &[0, 2], &[A, C]),
        ("web", Severity::Critical, "prod", &[1], &[B]),
        ("web", Severity::Warning, "prod", &[2], &[C]),
        ("web", Severity::Warning, "dev", &[], &[D]),
    ];
    for (group, severity, env, matched, targets) in rows {
        let l = labels(&[("group_name", group), ("env", env)]);
        let e = router.evaluate(&event(&l, severity));
        assert_eq!(e.matched, matched, "{group} {severity} {env}");
        assert_eq!(e.targets, targets, "{group} {severity} {env}");
        assert_eq!(e.by_default, matched.is_empty());
    }
}

#[test]
fn the_default_route_is_only_a_fallback() {
    // spec: ING-091 step 3 — a stop rule does not bring the default in, and a match keeps
    // it out even when it adds no new channel.
    let config = RouteConfig {
        rules: vec![rule("r", when("severity", "Info"), &[D], RouteFlow::Stop)],
        default_channel_ids: vec![A],
        ..RouteConfig::default()
    };
    let router = Router::compile(&config).unwrap();
    let l = labels(&[]);
    assert_eq!(router.evaluate(&event(&l, Severity::Info)).targets, vec![D]);
    assert_eq!(
        router.evaluate(&event(&l, Severity::Warning)).targets,
        vec![A]
    );
}

#[test]
fn disabled_rules_are_skipped_and_empty_conditions_match_everything() {
    // spec: ING-091 step 2, §1.3.2
    let mut off = rule("off", Vec::new(), &[A], RouteFlow::Stop);
    off.enabled = false;
    let config = RouteConfig {
        rules: vec![off, rule("all", Vec::new(), &[B], RouteFlow::Continue)],
        default_channel_ids: vec![D],
        ..RouteConfig::default()
    };
    let l = labels(&[]);
    let e = Router::compile(&config)
        .unwrap()
        .evaluate(&event(&l, Severity::Info));
    assert_eq!(e.matched, vec![1]);
    assert_eq!(e.targets, vec![B]);
}

#[test]
fn a_channel_named_by_several_rules_is_reached_once() {
    // spec: ING-091 step 4, Q-10
    let config = RouteConfig {
        rules: vec![
            rule("x", Vec::new(), &[A, B], RouteFlow::Continue),
            rule("y", Vec::new(), &[B, A, C], RouteFlow::Continue),
        ],
        ..RouteConfig::default()
    };
    let l = labels(&[]);
    let e = Router::compile(&config)
        .unwrap()
        .evaluate(&event(&l, Severity::Info));
    assert_eq!(e.targets, vec![A, B, C]);
}

#[test]
fn vanished_channels_are_dropped_silently() {
    // spec: ING-091 step 5
    let router = Router::compile(&example()).unwrap();
    let l = labels(&[("group_name", "db"), ("env", "prod")]);
    let routed = router.route(&event(&l, Severity::Critical), &[], |id| id != A);
    assert_eq!(routed.evaluation.targets, vec![A, B]);
    assert_eq!(routed.targets, vec![B]);
}

#[test]
fn recoveries_also_reach_the_channels_holding_their_alert() {
    // spec: ING-093, Q-12 — the rule that sent the trigger to A no longer matches the
    // recovery (no severity), but A holds the alert; the default route D also applies.
    let router = Router::compile(&example()).unwrap();
    let l = labels(&[("group_name", "web"), ("env", "dev")]);
    let recovery = EventFields {
        severity: None,
        ..event(&l, Severity::Info)
    };
    let routed = router.route(&recovery, &[B, D], |_| true);
    assert_eq!(routed.targets, vec![D, B]);
    // A holder channel that was deleted is not a target either.
    let routed = router.route(&recovery, &[B], |id| id != B);
    assert_eq!(routed.targets, vec![D]);
}

#[test]
fn no_target_leaves_the_event_without_a_channel() {
    // spec: ING-094 — no rule matched and the default route is empty.
    let config = RouteConfig {
        rules: vec![rule(
            "r",
            when("severity", "Critical"),
            &[A],
            RouteFlow::Stop,
        )],
        ..RouteConfig::default()
    };
    let router = Router::compile(&config).unwrap();
    let l = labels(&[]);
    let routed = router.route(&event(&l, Severity::Info), &[], |_| true);
    assert!(routed.targets.is_empty());
    assert!(routed.evaluation.by_default);
    // Every target gone counts the same.
    let routed = router.route(&event(&l, Severity::Critical), &[], |_| false);
    assert!(routed.targets.is_empty());
}

#[test]
fn a_configuration_without_any_channel_has_no_targets() {
    // spec: ING-010, ING-094
    assert!(example().has_targets());
    let empty = RouteConfig::default();
    assert!(!empty.has_targets());
    let default_only = RouteConfig {
        default_channel_ids: vec![A],
        ..RouteConfig::default()
    };
    assert!(default_only.has_targets());
    let mut disabled = rule("r", Vec::new(), &[A], RouteFlow::Stop);
    disabled.enabled = false;
    let rules_only = RouteConfig {
        rules: vec![disabled],
        ..RouteConfig::default()
    };
    assert!(rules_only.has_targets());
    assert_eq!(example().channel_ids(), vec![A, B, C, D]);
}

#[test]
fn the_route_context_allows_event_keys_and_active_patterns() {
    // spec: ING-091 (keys title, description, severity, labels, integration_id,
    // integration_type), §4.2 route context
    let config = RouteConfig {
        rules: vec![
            rule("id", when("integration_id", "7"), &[A], RouteFlow::Continue),
            rule(
                "type",
                when("integration_type", "standard"),
                &[B],
                RouteFlow::Continue,
            ),
            rule("title", when("title", "/disk/"), &[C], RouteFlow::Continue),
            rule(
                "ip",
                when("labels.ip", "cidr:10.0.0.0/24"),
                &[D],
                RouteFlow::Continue,
            ),
        ],
        ..RouteConfig::default()
    };
    let l = labels(&[("ip", "10.0.0.9:9100")]);
    let e = Router::compile(&config)
        .unwrap()
        .evaluate(&event(&l, Severity::Info));
    assert_eq!(e.targets, vec![A, B, C, D]);
}

#[test]
fn queued_events_are_seen_with_their_event_severity() {
    // spec: ING-091, §4.2 (route rule: severity = event severity)
    let mut q = QueuedEvent {
        seq: 1,
        origin: EventOrigin {
            request_id: "r".into(),
            account_id: 1,
            integration_id: 7,
            integration_type: "standard".into(),
            integration_name: "shared".into(),
            channel_id: 0,
            received_at: 0,
        },
        event: NewEvent {
            alert_key: "k".into(),
            event_status: Status::Warning,
            event_severity: None,
            title: "t".into(),
            title_rule: String::new(),
            description: String::new(),
            labels: Labels::new(),
            images: Vec::new(),
            event_time: 0,
            raw: String::new(),
        },
    };
    assert_eq!(EventFields::of_queued(&q).severity, Some(Severity::Warning));
    q.event.event_status = Status::Ok;
    assert_eq!(EventFields::of_queued(&q).severity, None);
    q.event.event_severity = Some(Severity::Critical);
    assert_eq!(
        EventFields::of_queued(&q).severity,
        Some(Severity::Critical)
    );
    // spec: ING-090 — only an event queued without a channel is routed.
    assert!(needs_routing(&q.origin));
    q.origin.channel_id = 5;
    assert!(!needs_routing(&q.origin));
}

#[test]
fn validation_names_the_bad_part() {
    // spec: ING-096, §4.5
    let exists = |id: i64| id < 100;
    assert_eq!(validate(&example(), exists), Ok(()));

    let mut no_channels = example();
    no_channels.rules[1].channel_ids.clear();
    let e = validate(&no_channels, exists).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules[1].channel_ids: at least one channel is required"
    );

    let mut too_many = example();
    too_many.rules[0].channel_ids = (1..=51).collect();
    assert_eq!(
        validate(&too_many, exists).unwrap_err().to_string(),
        "rules[0].channel_ids: too many channels (51; at most 50)"
    );
    too_many.rules[0].channel_ids = (1..=50).collect();
    assert_eq!(validate(&too_many, exists), Ok(()));

    let mut unknown = example();
    unknown.rules[2].channel_ids = vec![C, 100];
    assert_eq!(
        validate(&unknown, exists).unwrap_err().to_string(),
        "rules[2].channel_ids: channel 100 does not exist"
    );

    let mut unknown_default = example();
    unknown_default.default_channel_ids = vec![0];
    assert_eq!(
        validate(&unknown_default, exists).unwrap_err().to_string(),
        "default_channel_ids: 0 is not a valid channel id"
    );

    let mut bad_regex = example();
    bad_regex.rules[1].conditions = vec![vec![Condition::is_in("title", ["/(?<=x)y/"])]];
    let e = validate(&bad_regex, exists).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("rules[1].conditions[0][0].vals[0]: invalid regular expression"),
        "{e}"
    );
    assert_eq!(e.place, Place::Rule(1));

    let mut bad_key = example();
    bad_key.rules[0].conditions = vec![vec![Condition::is_in("subject", ["x"])]];
    assert!(
        validate(&bad_key, exists)
            .unwrap_err()
            .to_string()
            .starts_with("rules[0].conditions[0][0].key: unknown key \"subject\"")
    );

    let mut bad_num = example();
    bad_num.rules[0].conditions = vec![vec![Condition::is_in("labels.v", ["num:abc"])]];
    assert!(
        validate(&bad_num, exists)
            .unwrap_err()
            .to_string()
            .starts_with("rules[0].conditions[0][0].vals[0]: invalid numeric pattern")
    );

    let mut long_name = example();
    long_name.rules[0].name = "n".repeat(101);
    assert_eq!(
        validate(&long_name, exists).unwrap_err().to_string(),
        "rules[0].name: name too long (101 characters; at most 100)"
    );

    let mut twice = example();
    twice.rules[2].id = "R1".into();
    assert_eq!(
        validate(&twice, exists).unwrap_err().to_string(),
        "rules[2].id: id \"R1\" is used by another rule"
    );
}

#[test]
fn section_names_are_unique_and_dividers_precede_rules() {
    // spec: §1.3.2 (sections), ING-096
    let exists = |_| true;
    let mut config = example();
    config.sections = vec![
        Section {
            name: "Databases".into(),
            position: 0,
        },
        Section {
            name: "Rest".into(),
            position: 3,
        },
    ];
    assert_eq!(validate(&config, exists), Ok(()));
    config.sections[1].name = "Databases".into();
    assert_eq!(
        validate(&config, exists).unwrap_err().to_string(),
        "sections[1].name: section name \"Databases\" is used twice"
    );
    config.sections[1].name = " ".into();
    assert_eq!(
        validate(&config, exists).unwrap_err().to_string(),
        "sections[1].name: a section needs a name"
    );
    config.sections[1] = Section {
        name: "Late".into(),
        position: 4,
    };
    assert_eq!(
        validate(&config, exists).unwrap_err().to_string(),
        "sections[1].position: position 4 is past the last rule (there are 3 rules)"
    );
}

#[test]
fn nightingale_channel_ids_parse_leniently() {
    // spec: ING-097 — unknown (here: malformed) entries are ignored.
    assert_eq!(parse_channel_ids("3, 5,x,,3,-1,0,7"), vec![3, 5, 7]);
    assert!(parse_channel_ids("").is_empty());
}

#[test]
fn preview_finds_the_matching_groups_of_a_rule() {
    // spec: §1.5.3 (a rule with k groups is k cases on the wire)
    let r = rule(
        "multi",
        vec![
            vec![Condition::is_in("severity", ["Critical"])],
            vec![Condition::is_in("labels.env", ["prod"])],
        ],
        &[A],
        RouteFlow::Stop,
    );
    let l = labels(&[("env", "prod")]);
    assert_eq!(matching_groups(&r, &event(&l, Severity::Info)), vec![1]);
    assert_eq!(
        matching_groups(&r, &event(&l, Severity::Critical)),
        vec![0, 1]
    );
    let all = rule("all", Vec::new(), &[A], RouteFlow::Stop);
    assert_eq!(matching_groups(&all, &event(&l, Severity::Info)), vec![0]);
}

#[test]
fn the_diff_between_versions_is_structured() {
    // spec: ING-095 (history), Klaxon's /route/diff
    let mut from = example();
    from.version = 3;
    let mut to = example();
    to.version = 4;
    to.rules.remove(0); // R1 removed
    to.rules[0].channel_ids = vec![B, C]; // R2 changed (and moved from 1 to 0)
    to.rules
        .push(rule("R4", Vec::new(), &[D], RouteFlow::Continue));
    to.default_channel_ids = vec![A];
    let d = diff(&from, &to);
    assert_eq!((d.from_version, d.to_version), (3, 4));
    assert!(!d.identical);
    assert_eq!(d.rules.len(), 4);
    assert!(matches!(&d.rules[0], RuleChange::Removed { id, position: 0, .. } if id == "R1"));
    assert!(matches!(
        &d.rules[1],
        RuleChange::Changed { id, from_position: 1, to_position: 0, fields, .. }
            if id == "R2" && fields == &vec!["channel_ids", "position"]
    ));
    assert!(matches!(
        &d.rules[2],
        RuleChange::Changed { id, fields, .. } if id == "R3" && fields == &vec!["position"]
    ));
    assert!(matches!(&d.rules[3], RuleChange::Added { id, position: 2, .. } if id == "R4"));
    assert_eq!(d.default_channel_ids.added, vec![A]);
    assert_eq!(d.default_channel_ids.removed, vec![D]);
    assert!(!d.sections_changed);
    let same = diff(&from, &from);
    assert!(same.identical);
    assert!(same.rules.is_empty());
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["rules"][0]["change"], "removed");
    assert_eq!(json["rules"][3]["rule"]["flow"], "continue");
}

#[test]
fn the_configuration_round_trips_as_json() {
    // spec: ING-095 (a version holds the complete rules and default route)
    let mut config = example();
    config.rules[0].name = "Databases".into();
    config.rules[1].enabled = false;
    let text = serde_json::to_string(&config.rules).unwrap();
    let back: Vec<RouteRule> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, config.rules);
    // Stored rules written before a field existed read with its default.
    let old: RouteRule = serde_json::from_str(r#"{"id":"x","channel_ids":[1]}"#).unwrap();
    assert!(old.enabled);
    assert_eq!(old.flow, RouteFlow::Continue);
}
