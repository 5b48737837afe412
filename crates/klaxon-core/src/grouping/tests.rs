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

/// [`join`] given the target's alerts as they were before this event (`members`, without the
/// joining one), as a list: this event's changes to them (the expired alert of ING-113) win.
fn join_listed(
    fx: &mut Effects,
    new_incident_id: &str,
    target: &Incident,
    members: &[AlertSummary],
    now: Millis,
) -> bool {
    let summaries: Vec<AlertSummary> = members
        .iter()
        .map(|s| {
            fx.alerts
                .iter()
                .find(|a| a.alert_id == s.alert_id)
                .map(AlertSummary::from)
                .unwrap_or_else(|| s.clone())
        })
        .collect();
    join(fx, new_incident_id, target, &Members::of(&summaries), now)
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
                assert!(join_listed(
                    &mut fx,
                    &new_id,
                    &target,
                    &self.members[t],
                    now
                ));
            }
            None => keep_own(&mut fx, &new_id, &choice),
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
    let candidate = Candidate::with_siblings(old_alert.clone(), Some(incident.clone()), &[]);
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
    assert!(join_listed(
        &mut fx,
        &new_id,
        &incident,
        &ch.members[&first],
        now
    ));
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
    assert!(fx.close_incident_id.is_empty());
    assert!(
        fx.alerts
            .iter()
            .any(|a| a.alert_id == alert.alert_id && a.incident_id == first)
    );
}

// ---- intelligent (similarity) grouping, ING-157 ----

fn intelligent(threshold: f64, keys: &[&str]) -> GroupingConfig {
    GroupingConfig {
        enabled: true,
        mode: Mode::Intelligent,
        similarity_threshold: threshold,
        similarity_keys: keys.iter().map(|d| d.to_string()).collect(),
        ..GroupingConfig::default()
    }
}

fn titled(key: &str, title: &str, pairs: &[(&str, &str)]) -> QueuedEvent {
    let mut q = ev(key, pairs);
    q.event.title = title.to_string();
    q
}

fn set(words: &[&str]) -> std::collections::BTreeSet<String> {
    words.iter().map(|w| w.to_string()).collect()
}

// spec: ING-157
#[test]
fn tokens_are_lower_cased_runs_with_digit_runs_as_hash() {
    use similarity::tokens;
    assert_eq!(
        tokens("cpu idle < 20% / es.nj.03"),
        set(&["cpu", "idle", "#", "es", "nj"])
    );
    // Mixed runs keep their digits; only all-digit runs become `#`.
    assert_eq!(tokens("web12 on 10.0.0.1"), set(&["web12", "on", "#"]));
    assert_eq!(tokens("Disk FULL disk full"), set(&["disk", "full"]));
    // Unicode letters and digits: Cyrillic, accented Latin, CJK runs, Arabic-Indic digits.
    assert_eq!(
        tokens("Ошибка диска: 95% — Größe"),
        set(&["ошибка", "диска", "#", "größe"])
    );
    assert_eq!(tokens("磁盘已满 主机٣"), set(&["磁盘已满", "主机٣"]));
    assert_eq!(tokens("٣٤ ١"), set(&["#"]));
    // Only separators, or nothing: the empty set.
    assert!(tokens("").is_empty());
    assert!(tokens(" -_/%.!  ").is_empty());
}

// spec: ING-157
#[test]
fn jaccard_is_exact_and_empty_sets_score_zero() {
    use similarity::{Similarity, similarity};
    let s = similarity("cpu idle < 20% / es.nj.03", "disk full / es.nj.03");
    assert_eq!(
        s,
        Similarity {
            shared: 3,
            total: 7
        }
    );
    assert!((s.value() - 3.0 / 7.0).abs() < 1e-12);
    assert_eq!(similarity("", "").value(), 0.0);
    assert_eq!(similarity("---", "").value(), 0.0);
    assert!(!similarity("", "").at_least(5000));
    assert_eq!(similarity("a b", "").value(), 0.0);
    // 4 of 5: exactly 0.80, which passes 0.80 and fails 0.81.
    let s = similarity("a b c d", "a b c d e");
    assert!(s.at_least(8000));
    assert!(!s.at_least(8100));
    assert_eq!(
        s.cmp_value(&Similarity {
            shared: 8,
            total: 10
        }),
        std::cmp::Ordering::Equal
    );
}

// spec: ING-157
#[test]
fn worked_example_of_ing_157() {
    let g = ChannelGrouping::compile(&intelligent(0.80, &["title"]));
    let mut ch = Channel::default();
    let i1 = ch.push(&g, &titled("a", "cpu idle < 20% / es.nj.03", &[]), T0);
    let inc = &ch.incidents[&i1];
    assert_eq!(inc.group_method, "i");
    assert_eq!(inc.group_text, "cpu idle < 20% / es.nj.03");
    assert_eq!(inc.group_key, intelligent_key(&["title".to_string()]));
    assert_eq!(
        ch.push(&g, &titled("b", "cpu idle < 20% / es.nj.01", &[]), T0 + MIN),
        i1,
        "same token set: similarity 1.00 joins"
    );
    let i2 = ch.push(&g, &titled("c", "disk full / es.nj.03", &[]), T0 + 2 * MIN);
    assert_ne!(i2, i1, "3/7 = 0.43 < 0.80 opens a new incident");
    assert_eq!(ch.incidents[&i2].group_text, "disk full / es.nj.03");
    assert_eq!(ch.incidents[&i1].alert_cnt, 2);
    // The reference text is the first alert's and stays so.
    assert_eq!(ch.incidents[&i1].group_text, "cpu idle < 20% / es.nj.03");
}

// spec: ING-157
#[test]
fn threshold_edge_joins_at_equality_only() {
    // "a b c d" vs "a b c d e": 4/5 = 0.80.
    for (threshold, joins) in [(0.80, true), (0.81, false), (0.50, true), (1.00, false)] {
        let g = ChannelGrouping::compile(&intelligent(threshold, &["title"]));
        let mut ch = Channel::default();
        let i1 = ch.push(&g, &titled("a", "a b c d e", &[]), T0);
        let got = ch.push(&g, &titled("b", "a b c d", &[]), T0 + MIN);
        assert_eq!(got == i1, joins, "threshold {threshold}");
    }
}

// spec: ING-157
// spec: ING-151
#[test]
fn highest_similarity_wins_then_ing_151_ties() {
    let g = ChannelGrouping::compile(&intelligent(0.60, &["title"]));
    let mut ch = Channel::default();
    // 4/8 = 0.50 apart: two incidents.
    let older = ch.push(&g, &titled("k1", "a b c d e f", &[]), T0);
    let newer = ch.push(&g, &titled("k2", "a b c d x y", &[]), T0 + MIN);
    assert_ne!(older, newer);
    // 6/7 with the older, 5/8 with the newer: both pass 0.60, the more similar wins.
    assert_eq!(
        ch.push(&g, &titled("k3", "a b c d e f x", &[]), T0 + 2 * MIN),
        older
    );
    // Equal similarity: the latest last_merge_time wins.
    let fx = process_event(&titled("z", "p q", &[]), None, T0, &mut ch.ids);
    let alert = fx.alerts[0].clone();
    let key = intelligent_key(&["title".to_string()]);
    let mk = |id: &str, text: &str, merged: Millis| {
        let mut i = fx.incidents[0].clone();
        i.incident_id = id.to_string();
        i.group_method = "i".to_string();
        i.group_key = key.clone();
        i.group_text = text.to_string();
        i.last_merge_time = merged;
        i
    };
    let a = mk("aaaa", "p q", T0 - 5 * MIN);
    let b = mk("bbbb", "q p", T0 - 2 * MIN);
    let c = mk("cccc", "p q r", T0 - MIN);
    let choice = g.choose(&alert, &[&a, &b, &c], T0);
    assert_eq!(choice.target.as_deref(), Some("bbbb"), "1.00 beats 0.67");
    let choice = g.choose(&alert, &[&a, &c], T0);
    assert_eq!(choice.target.as_deref(), Some("aaaa"));
    assert_eq!(choice.group_method, "i");
    assert_eq!(choice.group_text, "p q");
}

// spec: ING-157
// spec: ING-155
#[test]
fn similarity_keys_build_the_compared_text_and_a_key_change_starts_over() {
    let cfg = intelligent(0.80, &["title", "labels.host"]);
    let g = ChannelGrouping::compile(&cfg);
    let mut ch = Channel::default();
    let i1 = ch.push(&g, &titled("a", "disk full", &[("host", "db-1")]), T0);
    assert_eq!(ch.incidents[&i1].group_text, "disk full db-1");
    // "disk full db-2" → {disk, full, db, #}: same set → joins.
    assert_eq!(
        ch.push(&g, &titled("b", "disk full", &[("host", "db-2")]), T0 + MIN),
        i1
    );
    // {disk, full, web, #} vs {disk, full, db, #}: 3/5 → new incident.
    assert_ne!(
        ch.push(
            &g,
            &titled("c", "disk full", &[("host", "web-2")]),
            T0 + MIN
        ),
        i1
    );
    // An absent label contributes "".
    let i3 = ch.push(&g, &titled("d", "cpu", &[]), T0 + 2 * MIN);
    assert_eq!(ch.incidents[&i3].group_text, "cpu ");
    // Other keys: nothing of the old configuration is eligible, even with the same text.
    let g2 = ChannelGrouping::compile(&intelligent(0.80, &["title"]));
    assert_ne!(
        ch.push(&g2, &titled("e", "cpu", &[]), T0 + 3 * MIN),
        i3,
        "i_keys changed"
    );
    // Rule mode never joins similarity incidents, and the other way round.
    let rule = ChannelGrouping::compile(&unified(&["title"]));
    let ir = ch.push(
        &rule,
        &titled("f", "disk full", &[("host", "db-1")]),
        T0 + 4 * MIN,
    );
    assert_ne!(ir, i1);
    assert_eq!(ch.incidents[&ir].group_method, "p");
    assert_eq!(ch.incidents[&ir].group_text, "");
    assert_ne!(
        ch.push(
            &g,
            &titled("g", "disk full", &[("host", "db-1")]),
            T0 + 5 * MIN
        ),
        ir
    );
}

// spec: ING-157
// spec: ING-151
// spec: ING-158
#[test]
fn window_cap_and_strict_in_intelligent_mode() {
    let mut cfg = intelligent(0.80, &["title"]);
    cfg.window_minutes = 10;
    cfg.strict = true; // ignored in intelligent mode
    let g = ChannelGrouping::compile(&cfg);
    let mut ch = Channel::default();
    let i1 = ch.push(&g, &titled("a", "disk full", &[]), T0);
    assert_eq!(
        ch.push(&g, &titled("b", "disk full", &[]), T0 + 8 * MIN),
        i1
    );
    let i2 = ch.push(&g, &titled("c", "disk full", &[]), T0 + 19 * MIN);
    assert_ne!(i2, i1, "11 min after the last join");
    if let Some(i) = ch.incidents.get_mut(&i2) {
        i.alert_cnt = MAX_ALERTS_PER_INCIDENT;
    }
    assert_ne!(
        ch.push(&g, &titled("d", "disk full", &[]), T0 + 20 * MIN),
        i2,
        "a full incident takes no more"
    );
}

#[test]
fn intelligent_validation_names_the_field() {
    assert!(validate(&intelligent(0.80, &["title"])).is_ok());
    assert!(validate(&intelligent(0.50, &["title", "labels.host"])).is_ok());
    assert!(validate(&intelligent(1.00, &["title"])).is_ok());
    for t in [0.49, 1.01, f64::NAN, 0.0] {
        assert_eq!(
            validate(&intelligent(t, &["title"])).unwrap_err().field,
            "group.i_score_threshold",
            "{t}"
        );
    }
    assert_eq!(
        validate(&intelligent(0.8, &[])).unwrap_err().field,
        "group.i_keys"
    );
    assert_eq!(
        validate(&intelligent(0.8, &["host"])).unwrap_err().field,
        "group.i_keys[0]"
    );
    // A stored config from before intelligent grouping reads with the defaults.
    let old: GroupingConfig =
        serde_json::from_str(r#"{"enabled":true,"unified_dims":["title"]}"#).unwrap();
    assert_eq!(old.mode, Mode::Rule);
    assert_eq!(old.similarity_threshold, 0.80);
    assert_eq!(old.similarity_keys, vec!["title".to_string()]);
}

// ---- preview, ING-160 ----

fn stored(alert_id: &str, title: &str, status: Status, at: Millis) -> StoredEvent {
    StoredEvent {
        event_id: format!("e-{alert_id}-{at}"),
        request_id: String::new(),
        account_id: 1,
        channel_id: 100,
        integration_id: 10,
        integration_type: "standard".to_string(),
        alert_id: alert_id.to_string(),
        alert_key: format!("k-{alert_id}"),
        event_status: status,
        event_severity: crate::model::Severity::Warning,
        event_time: at,
        received_at: at,
        title: title.to_string(),
        title_rule: String::new(),
        description: String::new(),
        labels: Labels::new(),
        images: Vec::new(),
        raw: String::new(),
    }
}

fn alert_row(alert_id: &str) -> Alert {
    let mut ids = CountingIds::default();
    let fx = process_event(&ev(alert_id, &[]), None, T0, &mut ids);
    let mut a = fx.alerts[0].clone();
    a.alert_id = alert_id.to_string();
    a
}

use crate::model::StoredEvent;

// spec: ING-160
// spec: ING-157
#[test]
fn preview_replays_events_into_a_tree() {
    use preview::replay;
    let events = vec![
        stored("a1", "cpu idle < 20% / es.nj.03", Status::Warning, T0),
        stored("a2", "cpu idle < 20% / es.nj.01", Status::Warning, T0 + MIN),
        stored("a3", "disk full / es.nj.03", Status::Warning, T0 + 2 * MIN),
        stored("a1", "cpu idle < 20% / es.nj.03", Status::Ok, T0 + 3 * MIN),
        stored("a2", "cpu idle < 20% / es.nj.01", Status::Ok, T0 + 4 * MIN),
        // The first incident is closed (all alerts Ok): a new one opens.
        stored(
            "a4",
            "cpu idle < 20% / es.nj.07",
            Status::Warning,
            T0 + 5 * MIN,
        ),
        stored("a5", "disk full / es.nj.03", Status::Warning, T0 + 6 * MIN),
        stored("zz", "no such alert", Status::Warning, T0 + 7 * MIN),
    ];
    let mut alerts: Vec<Alert> = ["a1", "a2", "a3", "a4", "a5"]
        .iter()
        .map(|id| alert_row(id))
        .collect();
    let p = replay(&intelligent(0.80, &["title"]), &events, &alerts);
    assert_eq!(p.event_cnt, 7);
    type Shape<'a> = (i64, bool, Vec<(&'a str, usize)>);
    let shape: Vec<Shape<'_>> = p
        .incidents
        .iter()
        .map(|i| {
            (
                i.preview_id,
                i.closed,
                i.alerts
                    .iter()
                    .map(|a| (a.alert_id.as_str(), a.events.len()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (1, true, vec![("a1", 2), ("a2", 2)]),
            (2, false, vec![("a3", 1), ("a5", 1)]),
            (3, false, vec![("a4", 1)]),
        ]
    );
    assert_eq!(p.incidents[0].group_method, "i");
    assert_eq!(p.incidents[0].group_text, "cpu idle < 20% / es.nj.03");
    assert_eq!(p.incidents[1].last_merge_time, T0 + 6 * MIN);
    // Without grouping every alert opens its own incident.
    let p = replay(&GroupingConfig::default(), &events, &alerts);
    assert_eq!(p.incidents.len(), 5);
    assert!(p.incidents.iter().all(|i| i.group_method == "n"));
    // Rule grouping on the title: only identical titles share an incident.
    let p = replay(&unified(&["title"]), &events, &alerts);
    assert_eq!(p.incidents.len(), 4);
    // A silenced alert without incident is never grouped.
    alerts[2].mark = crate::model::Mark::Silenced;
    alerts[2].incident_id = String::new();
    let p = replay(&intelligent(0.80, &["title"]), &events, &alerts);
    assert_eq!(p.unassigned_alerts.len(), 1);
    assert_eq!(p.unassigned_alerts[0].alert_id, "a3");
    // a4 follows the closed first incident; a5 opens the disk incident a3 would have opened.
    assert_eq!(p.incidents.len(), 3);
    assert_eq!(p.incidents[2].alerts[0].alert_id, "a5");
}

// spec: ING-160
#[test]
fn preview_replays_at_most_500_events() {
    let events: Vec<StoredEvent> = (0..600)
        .map(|n| stored(&format!("a{n}"), "same", Status::Warning, T0 + n))
        .collect();
    let alerts: Vec<Alert> = (0..600).map(|n| alert_row(&format!("a{n}"))).collect();
    let p = preview::replay(&intelligent(0.80, &["title"]), &events, &alerts);
    assert_eq!(p.event_cnt, preview::MAX_EVENTS);
    assert_eq!(p.incidents.len(), 1);
    assert_eq!(p.incidents[0].alerts.len(), 500);
}
