use std::collections::BTreeMap;

use super::*;
use crate::condition::Condition;
use crate::ids::CountingIds;
use crate::merge::process_event;
use crate::model::{EventOrigin, Labels, NewEvent, QueuedEvent, Status};

const T0: Millis = 1_700_000_000_000;
const MIN: Millis = 60_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ev(key: &str, pairs: &[(&str, &str)]) -> QueuedEvent {
    QueuedEvent {
        seq: 1,
        origin: EventOrigin {
            request_id: "0123456789abcdef0123456789abcdef".to_string(),
            account_id: 1,
            integration_id: 10,
            integration_type: "standard".to_string(),
            integration_name: "Std".to_string(),
            channel_id: 100,
            received_at: T0,
        },
        event: NewEvent {
            alert_key: key.to_string(),
            event_status: Status::Warning,
            event_severity: Some(crate::model::Severity::Warning),
            title: format!("problem {key}"),
            title_rule: String::new(),
            description: String::new(),
            labels: labels(pairs),
            images: Vec::new(),
            event_time: T0,
            raw: String::new(),
        },
    }
}

fn unified(dims: &[&str]) -> GroupingConfig {
    GroupingConfig {
        enabled: true,
        unified_dims: dims.iter().map(|d| d.to_string()).collect(),
        ..GroupingConfig::default()
    }
}

/// An in-memory channel: incidents and their alerts, fed one new alert at a time through
/// `process_event`, then `choose` and `join` / `keep_own`, as the inbox batch does.
#[derive(Default)]
struct Channel {
    incidents: BTreeMap<String, Incident>,
    members: BTreeMap<String, Vec<AlertSummary>>,
    ids: CountingIds,
}

impl Channel {
    /// Returns the incident the alert ended in.
    fn push(&mut self, g: &ChannelGrouping, q: &QueuedEvent, now: Millis) -> String {
        let mut fx = process_event(q, None, now, &mut self.ids);
        let new_id = fx.incidents[0].incident_id.clone();
        let alert = opened_alert(&fx, &new_id).unwrap();
        let refs: Vec<&Incident> = self.incidents.values().collect();
        let choice = g.choose(&alert, &refs, now);
        match &choice.target {
            Some(t) => {
                let target = self.incidents[t].clone();
                assert!(join(&mut fx, &new_id, &target, &self.members[t], now));
            }
            None => keep_own(&mut fx, &new_id, &choice.group_key),
        }
        let a = &fx.alerts[0];
        for i in fx.incidents {
            self.incidents.insert(i.incident_id.clone(), i);
        }
        self.members
            .entry(a.incident_id.clone())
            .or_default()
            .push(AlertSummary::from(a));
        a.incident_id.clone()
    }
}

// spec: ING-152
// spec: ING-151
#[test]
fn sliding_window_example() {
    let mut cfg = unified(&["labels.check"]);
    cfg.window_minutes = 10;
    let g = ChannelGrouping::compile(&cfg);
    let mut ch = Channel::default();
    let at = |m: i64| T0 + m * MIN;
    let i1 = ch.push(&g, &ev("a", &[("check", "cpu")]), at(0));
    assert_eq!(ch.push(&g, &ev("b", &[("check", "cpu")]), at(8)), i1);
    assert_eq!(
        ch.push(&g, &ev("c", &[("check", "cpu")]), at(17)),
        i1,
        "9 min after the last join"
    );
    let i2 = ch.push(&g, &ev("d", &[("check", "cpu")]), at(30));
    assert_ne!(i2, i1, "a 13 min gap opens a new incident");
    let inc = &ch.incidents[&i1];
    assert_eq!(inc.alert_cnt, 3);
    assert_eq!(inc.last_merge_time, at(17));
    assert_eq!(inc.created_at, at(0));
    assert_eq!(inc.group_method, "p");
}

// spec: ING-151
#[test]
fn tumbling_window_is_fixed_at_creation() {
    let mut cfg = unified(&["labels.check"]);
    cfg.window_minutes = 10;
    cfg.window_type = WindowType::Tumbling;
    let g = ChannelGrouping::compile(&cfg);
    let mut ch = Channel::default();
    let at = |m: i64| T0 + m * MIN;
    let i1 = ch.push(&g, &ev("a", &[("check", "cpu")]), at(0));
    assert_eq!(ch.push(&g, &ev("b", &[("check", "cpu")]), at(8)), i1);
    assert_eq!(ch.push(&g, &ev("x", &[("check", "cpu")]), at(10)), i1);
    assert_ne!(
        ch.push(&g, &ev("c", &[("check", "cpu")]), at(17)),
        i1,
        "17 min after creation: outside a 10 min tumbling window"
    );
}

// spec: ING-153
// spec: ING-155
// spec: ING-159
#[test]
fn unified_dims_group_a_storm_across_hosts_and_derive_fields() {
    let g = ChannelGrouping::compile(&unified(&["labels.check"]));
    let mut ch = Channel::default();
    let first = ch.push(&g, &ev("h0", &[("check", "disk"), ("host", "h0")]), T0);
    for n in 1..20 {
        let host = format!("h{n}");
        let got = ch.push(
            &g,
            &ev(&host, &[("check", "disk"), ("host", &host)]),
            T0 + n * 1000,
        );
        assert_eq!(got, first);
    }
    let other = ch.push(&g, &ev("z", &[("check", "cpu")]), T0 + 30_000);
    assert_ne!(other, first);
    let inc = &ch.incidents[&first];
    assert_eq!((inc.alert_cnt, inc.active_alert_cnt), (20, 20));
    assert_eq!(inc.title, "problem h0", "the first alert's title");
    assert_eq!(inc.labels.get("host").map(String::as_str), Some("h0"));
    assert_eq!(inc.last_merge_time, T0 + 19_000);
    assert_eq!(ch.incidents.len(), 2);
}

// spec: ING-156
// spec: ING-155
#[test]
fn strict_grouping_example() {
    let dims = ["labels.check", "labels.cluster"];
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    let rows: [(Pairs, Pairs, bool, bool); 3] = [
        (&[("check", "cpu")], &[("check", "cpu")], true, false),
        (
            &[("check", "cpu"), ("cluster", "nj")],
            &[("check", "cpu"), ("cluster", "nj")],
            true,
            true,
        ),
        (
            &[("check", "cpu"), ("cluster", "nj")],
            &[("check", "cpu")],
            false,
            false,
        ),
    ];
    for (n, (first, new, loose_joins, strict_joins)) in rows.into_iter().enumerate() {
        for (strict, want) in [(false, loose_joins), (true, strict_joins)] {
            let mut cfg = unified(&dims);
            cfg.strict = strict;
            let g = ChannelGrouping::compile(&cfg);
            let mut ch = Channel::default();
            let i = ch.push(&g, &ev("a", first), T0);
            let j = ch.push(&g, &ev("b", new), T0 + MIN);
            assert_eq!(i == j, want, "row {n}, strict = {strict}");
        }
    }
    // Strict with a missing value: the incident's key is "", so nothing can join it.
    let mut cfg = unified(&dims);
    cfg.strict = true;
    let g = ChannelGrouping::compile(&cfg);
    let mut ch = Channel::default();
    let i = ch.push(&g, &ev("a", &[("check", "cpu")]), T0);
    assert_eq!(ch.incidents[&i].group_key, "");
    assert_eq!(ch.incidents[&i].group_method, "p");
}

// spec: ING-154
#[test]
fn fine_grained_rules_then_default_dims() {
    let cfg = GroupingConfig {
        enabled: true,
        scope: Scope::FineGrained,
        fine_rules: vec![FineRule {
            id: "0".to_string(),
            conditions: vec![vec![Condition::is_in("labels.check", ["cpu"])]],
            dims: vec!["labels.cluster".to_string()],
        }],
        default_dims: Vec::new(),
        ..GroupingConfig::default()
    };
    let g = ChannelGrouping::compile(&cfg);
    let mut ch = Channel::default();
    let a = ch.push(&g, &ev("a", &[("check", "cpu"), ("cluster", "nj")]), T0);
    let b = ch.push(&g, &ev("b", &[("check", "cpu"), ("cluster", "nj")]), T0 + 1);
    assert_eq!(a, b, "the matching rule's dims group them");
    let c = ch.push(&g, &ev("c", &[("check", "mem"), ("cluster", "nj")]), T0 + 2);
    let d = ch.push(&g, &ev("d", &[("check", "mem"), ("cluster", "nj")]), T0 + 3);
    assert_ne!(c, d, "no rule matches and no default dims: not grouped");
    assert_eq!(ch.incidents[&c].group_key, "");

    let mut with_default = cfg.clone();
    with_default.default_dims = vec!["labels.cluster".to_string()];
    let g = ChannelGrouping::compile(&with_default);
    let mut ch = Channel::default();
    let a = ch.push(&g, &ev("a", &[("check", "cpu"), ("cluster", "nj")]), T0);
    let c = ch.push(&g, &ev("c", &[("check", "mem"), ("cluster", "nj")]), T0 + 1);
    let d = ch.push(
        &g,
        &ev("d", &[("check", "disk"), ("cluster", "nj")]),
        T0 + 2,
    );
    assert_ne!(a, c, "rule_ref fine:0 and default make different keys");
    assert_eq!(c, d, "both use the default dims");
}

// spec: ING-155
#[test]
fn key_depends_on_rule_and_dims() {
    let q = ev("a", &[("check", "cpu"), ("host", "h1")]);
    let mut ids = CountingIds::default();
    let fx = process_event(&q, None, T0, &mut ids);
    let a = &fx.alerts[0];
    let k1 = ChannelGrouping::compile(&unified(&["labels.check"])).group_key(a);
    let k2 = ChannelGrouping::compile(&unified(&["labels.check", "labels.nope"])).group_key(a);
    let k3 = ChannelGrouping::compile(&unified(&["labels.host"])).group_key(a);
    assert_eq!(k1.len(), 32);
    assert_ne!(k1, k2);
    assert_ne!(k1, k3);
    assert_eq!(
        k1,
        hash_parts(&["p", "unified", "labels.check", "cpu"]),
        "H(\"p\", rule_ref, dims, values)"
    );
}

// spec: ING-158
#[test]
fn full_incident_is_not_eligible_and_the_new_one_takes_over() {
    let g = ChannelGrouping::compile(&unified(&["labels.check"]));
    let mut ch = Channel::default();
    let i1 = ch.push(&g, &ev("a", &[("check", "cpu")]), T0);
    if let Some(i) = ch.incidents.get_mut(&i1) {
        i.alert_cnt = MAX_ALERTS_PER_INCIDENT - 1;
    }
    assert_eq!(ch.push(&g, &ev("b", &[("check", "cpu")]), T0 + 1), i1);
    // alert_cnt is derived from the members (2 here); put it at the cap.
    if let Some(i) = ch.incidents.get_mut(&i1) {
        i.alert_cnt = MAX_ALERTS_PER_INCIDENT;
    }
    let i2 = ch.push(&g, &ev("c", &[("check", "cpu")]), T0 + 2);
    assert_ne!(i2, i1);
    assert_eq!(ch.push(&g, &ev("d", &[("check", "cpu")]), T0 + 3), i2);
}

// spec: ING-151
#[test]
fn closed_manual_and_other_method_incidents_are_not_eligible() {
    let g = ChannelGrouping::compile(&unified(&["labels.check"]));
    type Spoil = fn(&mut Incident);
    let spoilers: [(&str, Spoil); 5] = [
        ("closed", |i| i.progress = Progress::Closed),
        ("manual", |i| i.creator_id = 7),
        ("method n", |i| i.group_method = "n".to_string()),
        ("other channel", |i| i.channel_id = 101),
        ("no key", |i| i.group_key = String::new()),
    ];
    for (name, spoil) in spoilers {
        let mut ch = Channel::default();
        let i1 = ch.push(&g, &ev("a", &[("check", "cpu")]), T0);
        if let Some(i) = ch.incidents.get_mut(&i1) {
            spoil(i);
        }
        assert_ne!(
            ch.push(&g, &ev("b", &[("check", "cpu")]), T0 + MIN),
            i1,
            "{name}"
        );
    }
    // Processing (acknowledged) incidents still take alerts.
    let mut ch = Channel::default();
    let i1 = ch.push(&g, &ev("a", &[("check", "cpu")]), T0);
    if let Some(i) = ch.incidents.get_mut(&i1) {
        i.progress = Progress::Processing;
    }
    assert_eq!(ch.push(&g, &ev("b", &[("check", "cpu")]), T0 + MIN), i1);
}

// spec: ING-151
#[test]
fn latest_last_merge_time_wins() {
    let g = ChannelGrouping::compile(&unified(&["labels.check"]));
    let mut ids = CountingIds::default();
    let fx = process_event(&ev("a", &[("check", "cpu")]), None, T0, &mut ids);
    let alert = fx.alerts[0].clone();
    let key = g.group_key(&alert);
    let mk = |id: &str, merged: Millis, created: Millis| {
        let mut i = fx.incidents[0].clone();
        i.incident_id = id.to_string();
        i.group_method = "p".to_string();
        i.group_key = key.clone();
        i.last_merge_time = merged;
        i.created_at = created;
        i
    };
    let a = mk("aaaa", T0 - 5 * MIN, T0 - 9 * MIN);
    let b = mk("bbbb", T0 - 2 * MIN, T0 - 9 * MIN);
    let c = mk("cccc", T0 - 2 * MIN, T0 - 8 * MIN);
    let d = mk("dddd", T0 - 2 * MIN, T0 - 8 * MIN);
    let choice = g.choose(&alert, &[&a, &b, &c, &d], T0);
    assert_eq!(choice.target.as_deref(), Some("dddd"));
    let choice = g.choose(&alert, &[&a, &b], T0);
    assert_eq!(choice.target.as_deref(), Some("bbbb"));
}

// spec: ING-150
#[test]
fn disabled_config_reports_disabled() {
    assert!(!ChannelGrouping::compile(&GroupingConfig::default()).enabled());
    assert!(validate(&GroupingConfig::default()).is_ok());
}

#[test]
fn validation_names_the_field() {
    let cases: Vec<(GroupingConfig, &str)> = vec![
        (unified(&[]), "group.equals[0]"),
        (unified(&["host"]), "group.equals[0][0]"),
        (unified(&["labels."]), "group.equals[0][0]"),
        (
            unified(&[
                "title", "title", "title", "title", "title", "title", "title", "title", "title",
                "title", "title",
            ]),
            "group.equals[0]",
        ),
        (
            GroupingConfig {
                window_minutes: 1441,
                ..unified(&["title"])
            },
            "group.time_window",
        ),
        (
            GroupingConfig {
                scope: Scope::FineGrained,
                fine_rules: vec![FineRule {
                    id: "0".to_string(),
                    conditions: vec![vec![Condition::is_in("labels.check", ["cpu"])]],
                    dims: Vec::new(),
                }],
                ..unified(&[])
            },
            "group.cases[0].equals",
        ),
        (
            GroupingConfig {
                scope: Scope::FineGrained,
                fine_rules: vec![FineRule {
                    id: "0".to_string(),
                    conditions: vec![vec![Condition::is_in("nonsense", ["cpu"])]],
                    dims: vec!["title".to_string()],
                }],
                ..unified(&[])
            },
            "group.cases[0].if",
        ),
    ];
    for (cfg, field) in cases {
        let e = validate(&cfg).unwrap_err();
        assert!(e.field.starts_with(field), "{field}: {e:?}");
    }
}

// spec: ING-192
#[test]
fn storm_thresholds_validation() {
    assert!(validate_storm_thresholds(&[]).is_ok());
    assert!(validate_storm_thresholds(&[5, 20, 10_000]).is_ok());
    assert_eq!(
        validate_storm_thresholds(&[5, 5]).unwrap_err().field,
        "group.storm_thresholds[1]"
    );
    assert_eq!(
        validate_storm_thresholds(&[0]).unwrap_err().field,
        "group.storm_thresholds[0]"
    );
    assert_eq!(
        validate_storm_thresholds(&[1, 2, 3, 4, 5, 6])
            .unwrap_err()
            .field,
        "group.storm_thresholds"
    );
    assert!(validate_storm_thresholds(&[10_001]).is_err());
}

// spec: ING-113
// spec: ING-159
#[test]
fn new_alert_joins_the_incident_of_the_alert_it_expires_and_keeps_it_open() {
    use crate::merge::Candidate;
    let g = ChannelGrouping::compile(&unified(&["labels.check"]));
    let mut ch = Channel::default();
    let q = ev("a", &[("check", "disk")]);
    let first = ch.push(&g, &q, T0);
    let old_alert = {
        let mut ids = CountingIds(99);
        let mut fx = process_event(&q, None, T0, &mut ids);
        let mut a = fx.alerts.remove(0);
        a.incident_id = first.clone();
        a.alert_id = ch.members[&first][0].alert_id.clone();
        a
    };
    let incident = ch.incidents[&first].clone();
    // 25 h later the same key fires again: the old alert expires (ING-113).
    let now = T0 + 25 * 60 * MIN;
    let candidate = Candidate {
        alert: old_alert.clone(),
        incident: Some(incident.clone()),
        sibling_alerts: Vec::new(),
    };
    let mut fx = process_event(&q, Some(candidate), now, &mut ch.ids);
    let new_id = fx.incidents[0].incident_id.clone();
    assert_eq!(
        fx.incidents.len(),
        2,
        "the new incident and the re-derived one"
    );
    assert_eq!(
        fx.incidents[1].progress,
        Progress::Closed,
        "alone, the expiry auto-resolves it"
    );
    let alert = opened_alert(&fx, &new_id).unwrap();
    let choice = g.choose(&alert, &[&incident], now);
    assert_eq!(choice.target.as_deref(), Some(first.as_str()));
    assert!(join(&mut fx, &new_id, &incident, &ch.members[&first], now));
    assert_eq!(fx.incidents.len(), 1);
    let joined = &fx.incidents[0];
    assert_eq!(joined.incident_id, first);
    assert_eq!(joined.progress, Progress::Triggered, "kept open");
    assert_eq!((joined.alert_cnt, joined.active_alert_cnt), (2, 1));
    assert_eq!(joined.incident_status, Status::Warning);
    assert_eq!(joined.last_merge_time, now);
    let expired = fx
        .alerts
        .iter()
        .find(|a| a.alert_id == old_alert.alert_id)
        .unwrap();
    assert_eq!(expired.alert_status, Status::Ok);
    assert!(
        !expired.closed,
        "no auto-resolution, so the alert is not closed"
    );
    assert!(fx.close_alert_ids.is_empty());
    assert!(
        fx.alerts
            .iter()
            .any(|a| a.alert_id == alert.alert_id && a.incident_id == first)
    );
}
