use jiff::tz::TimeZone;

use super::*;
use crate::condition::Condition;
use crate::ids::CountingIds;
use crate::model::{EventOrigin, Labels, NewEvent, Severity, Status};
use crate::schedule::Calendars;

/// 2023-11-14 22:13:20 UTC, a Tuesday.
const T0: Millis = 1_700_000_000_000;
const MIN: Millis = 60_000;
const HOUR: Millis = 60 * MIN;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A trigger (or recovery) on channel 100, integration 10, key "k1", at `T0`.
fn ev(status: Status, pairs: &[(&str, &str)]) -> QueuedEvent {
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
            alert_key: "k1".to_string(),
            event_status: status,
            event_severity: status.severity(),
            title: "disk full".to_string(),
            title_rule: String::new(),
            description: "90% used".to_string(),
            labels: labels(pairs),
            images: Vec::new(),
            event_time: T0,
            raw: String::new(),
        },
    }
}

fn rule(kind: RuleKind, id: &str) -> NoiseRule {
    let mut r = NoiseRule::new(kind);
    r.rule_id = id.to_string();
    r.rule_name = id.to_string();
    r.account_id = 1;
    r.channel_id = 100;
    r
}

fn drop_rule(id: &str, filters: FilterGroups) -> NoiseRule {
    let mut r = rule(RuleKind::Drop, id);
    r.filters = filters;
    r
}

/// A one-off silence `[from, to)` (milliseconds) over `filters`.
fn silence(id: &str, from: Millis, to: Millis, filters: FilterGroups, discard: bool) -> NoiseRule {
    let mut r = rule(RuleKind::Silence, id);
    r.time_filter = Some(OneOff {
        start_time: from / 1000,
        end_time: to / 1000,
    });
    r.filters = filters;
    r.is_directly_discard = discard;
    r
}

/// The rule of the ING-142 example.
fn example_inhibit(discard: bool) -> NoiseRule {
    let mut r = rule(RuleKind::Inhibit, "inh");
    r.source_filters = vec![vec![Condition::is_in("severity", ["Critical"])]];
    r.target_filters = vec![vec![Condition::is_in("severity", ["Warning", "Info"])]];
    r.equals = vec!["labels.check".to_string()];
    r.is_directly_discard = discard;
    r
}

fn incident(id: &str, sev: Severity, pairs: &[(&str, &str)], created: Millis) -> Incident {
    let mut ids = CountingIds::default();
    let mut q = ev(Status::from(sev), pairs);
    q.event.alert_key = format!("src-{id}");
    let fx = merge::process_event(&q, None, created, &mut ids);
    let mut i = fx.incidents[0].clone();
    i.incident_id = id.to_string();
    i
}

fn run(
    q: &QueuedEvent,
    candidate: Option<Candidate>,
    rules: &[NoiseRule],
    incidents: &[Incident],
    now: Millis,
) -> Decision {
    let tz = TimeZone::UTC;
    let compiled = ChannelNoise::compile(rules);
    let incidents = incidents.to_vec();
    let gate = Gate {
        rules: &compiled,
        incidents: &incidents,
        matching: MatchContext {
            tz: &tz,
            calendars: Calendars::default(),
        },
    };
    process(q, candidate, &gate, now, &mut CountingIds::default())
}

fn sev_is(vals: &[&str]) -> FilterGroups {
    vec![vec![Condition::is_in("severity", vals.iter().copied())]]
}

// --- drop rules --------------------------------------------------------------------------

// spec: ING-101
#[test]
fn a_matching_drop_rule_discards_a_trigger_without_trace_and_names_the_rule() {
    let rules = [drop_rule("d1", sev_is(&["Info"]))];
    let d = run(&ev(Status::Info, &[]), None, &rules, &[], T0);
    assert_eq!(d.effects.outcome, Some(Outcome::DroppedByChannelRule));
    assert!(d.effects.alerts.is_empty());
    assert!(d.effects.incidents.is_empty());
    assert!(d.effects.stored_event.is_none());
    assert_eq!(d.why.outcome, Some(Outcome::DroppedByChannelRule));
    assert_eq!(d.why.rule_id, "d1");
    assert_eq!(
        Outcome::DroppedByChannelRule.as_str(),
        "dropped_by_channel_rule"
    );
    // Not matching: an ordinary new alert.
    let d = run(&ev(Status::Critical, &[]), None, &rules, &[], T0);
    assert_eq!(d.effects.outcome, Some(Outcome::NewAlert));
    assert_eq!(d.effects.incidents.len(), 1);
}

// spec: ING-101
#[test]
fn drop_rules_are_tried_in_priority_order_and_disabled_ones_are_skipped() {
    let mut first = drop_rule(
        "second-by-id",
        vec![vec![Condition::is_in("labels.host", ["a*"])]],
    );
    first.priority = 1;
    let mut earlier = drop_rule("zz", vec![vec![Condition::is_in("title", ["/disk/"])]]);
    earlier.priority = 0;
    let mut off = drop_rule("off", sev_is(&["Critical"]));
    off.status = RuleStatus::Disabled;
    let rules = [first, off, earlier];
    let d = run(
        &ev(Status::Critical, &[("host", "a1")]),
        None,
        &rules,
        &[],
        T0,
    );
    assert_eq!(d.why.rule_id, "zz");
    // Drop-rule keys include integration_type and integration_id (event context).
    let by_type = [drop_rule(
        "t",
        vec![vec![
            Condition::is_in("integration_type", ["standard"]),
            Condition::is_in("integration_id", ["10"]),
        ]],
    )];
    let d = run(&ev(Status::Warning, &[]), None, &by_type, &[], T0);
    assert_eq!(d.why.rule_id, "t");
}

// spec: ING-086
#[test]
fn recovery_events_skip_drop_rules() {
    let rules = [drop_rule(
        "everything",
        vec![vec![Condition::is_in("title", ["*"])]],
    )];
    // Open the alert without rules, then recover it with a drop rule that matches everything.
    let opened = run(&ev(Status::Warning, &[]), None, &[], &[], T0);
    let alert = opened.effects.alerts[0].clone();
    let inc = opened.effects.incidents[0].clone();
    let c = Candidate::with_siblings(alert, Some(inc), &[]);
    let d = run(&ev(Status::Ok, &[]), Some(c), &rules, &[], T0 + MIN);
    assert_eq!(d.effects.outcome, Some(Outcome::Resolved));
    assert_eq!(d.effects.incidents[0].progress, Progress::Closed);
}

// --- silence rules -----------------------------------------------------------------------

// spec: ING-130
#[test]
fn a_mark_silence_keeps_the_alert_marked_without_an_incident() {
    let rules = [silence(
        "s1",
        T0 - HOUR,
        T0 + HOUR,
        sev_is(&["Warning"]),
        false,
    )];
    let d = run(&ev(Status::Warning, &[]), None, &rules, &[], T0);
    assert_eq!(d.effects.outcome, Some(Outcome::NewAlert));
    assert!(
        d.effects.incidents.is_empty(),
        "no incident, so no notification"
    );
    assert_eq!(d.effects.alerts.len(), 1);
    let a = &d.effects.alerts[0];
    assert_eq!(a.mark, Mark::Silenced);
    assert_eq!(a.mark_rule_id, "s1");
    assert!(a.ever_muted);
    assert_eq!(a.incident_id, "");
    assert!(
        d.effects.stored_event.is_some(),
        "the event is stored on the marked alert"
    );
    assert_eq!(d.why.mark, Mark::Silenced);
    assert_eq!(d.why.rule_id, "s1");
    assert_eq!(d.why.incident_id, "");
    assert_eq!(d.why.alert_id, a.alert_id);
}

// spec: ING-130
#[test]
fn a_drop_silence_discards_the_candidate_alert() {
    let rules = [silence("s1", T0 - HOUR, T0 + HOUR, Vec::new(), true)];
    let d = run(&ev(Status::Critical, &[]), None, &rules, &[], T0);
    assert_eq!(d.effects.outcome, Some(Outcome::SilencedDrop));
    assert!(d.effects.alerts.is_empty());
    assert!(d.effects.incidents.is_empty());
    assert!(d.effects.stored_event.is_none());
    assert_eq!(d.why.rule_id, "s1");
    assert_eq!(Outcome::SilencedDrop.as_str(), "silenced_drop");
}

// spec: ING-131
#[test]
fn a_one_off_window_is_half_open() {
    let rules = [silence("s1", T0, T0 + HOUR, Vec::new(), true)];
    let at = |now| {
        run(&ev(Status::Critical, &[]), None, &rules, &[], now)
            .effects
            .outcome
    };
    assert_eq!(at(T0 - 1000), Some(Outcome::NewAlert), "before start");
    assert_eq!(at(T0), Some(Outcome::SilencedDrop), "start is inside");
    assert_eq!(at(T0 + HOUR - 1000), Some(Outcome::SilencedDrop));
    // ING-132: an expired one-off rule simply stops applying.
    assert_eq!(at(T0 + HOUR), Some(Outcome::NewAlert), "end is outside");
}

// spec: ING-131
#[test]
fn recurring_windows_follow_weekdays_and_overnight_windows_belong_to_their_start_day() {
    // Monday 22:00–06:00 covers Monday 22:00 to Tuesday 06:00.
    let mut r = rule(RuleKind::Silence, "night");
    r.time_filters = vec![TimeFilter {
        start: "22:00".into(),
        end: "06:00".into(),
        repeat: vec![1],
        cal_id: String::new(),
        is_off: false,
    }];
    r.is_directly_discard = true;
    let rules = [r];
    // T0 is Tuesday 22:13 UTC: Tuesday is not eligible.
    let at = |now| {
        run(&ev(Status::Critical, &[]), None, &rules, &[], now)
            .effects
            .outcome
    };
    assert_eq!(at(T0), Some(Outcome::NewAlert), "Tuesday 22:13");
    assert_eq!(
        at(T0 - 24 * HOUR),
        Some(Outcome::SilencedDrop),
        "Monday 22:13"
    );
    assert_eq!(
        at(T0 - 24 * HOUR + 7 * HOUR),
        Some(Outcome::SilencedDrop),
        "Tuesday 05:13, the Monday window's morning"
    );
    assert_eq!(
        at(T0 - 24 * HOUR + 8 * HOUR),
        Some(Outcome::NewAlert),
        "Tuesday 06:13"
    );
}

// spec: ING-130
#[test]
fn silence_rules_apply_in_priority_order_and_filters_see_the_alert() {
    let mut late = silence("late", T0 - HOUR, T0 + HOUR, Vec::new(), true);
    late.priority = 5;
    let mut early = silence(
        "early",
        T0 - HOUR,
        T0 + HOUR,
        vec![vec![Condition::is_in("labels.host", ["cidr:10.0.0.0/24"])]],
        false,
    );
    early.priority = 1;
    let rules = [late, early];
    let d = run(
        &ev(Status::Critical, &[("host", "10.0.0.7:9100")]),
        None,
        &rules,
        &[],
        T0,
    );
    assert_eq!(d.why.rule_id, "early");
    assert_eq!(d.why.mark, Mark::Silenced);
    let d = run(
        &ev(Status::Critical, &[("host", "10.0.1.7")]),
        None,
        &rules,
        &[],
        T0,
    );
    assert_eq!(d.why.rule_id, "late");
    assert_eq!(d.effects.outcome, Some(Outcome::SilencedDrop));
}

// spec: ING-086
// spec: ING-123
#[test]
fn a_recovery_resolves_a_silenced_alert_and_never_opens_an_incident() {
    let rules = [silence("s1", T0 - HOUR, T0 + HOUR, Vec::new(), false)];
    let d = run(&ev(Status::Critical, &[]), None, &rules, &[], T0);
    let marked = d.effects.alerts[0].clone();
    let c = Candidate::with_siblings(marked.clone(), None, &[]);
    let d = run(&ev(Status::Ok, &[]), Some(c), &rules, &[], T0 + MIN);
    assert_eq!(d.effects.outcome, Some(Outcome::Resolved));
    assert!(d.effects.incidents.is_empty());
    let a = &d.effects.alerts[0];
    assert_eq!(a.alert_status, Status::Ok);
    assert_eq!(a.incident_id, "");
    assert!(
        d.effects.stored_event.is_some(),
        "the recovery is stored, not silenced"
    );
}

// spec: ING-123
#[test]
fn a_marked_alert_stays_marked_while_a_rule_applies_and_is_unmuted_after() {
    let rules = [silence("s1", T0 - HOUR, T0 + HOUR, Vec::new(), false)];
    let first = run(&ev(Status::Warning, &[]), None, &rules, &[], T0);
    let marked = first.effects.alerts[0].clone();
    let cand = |a: &Alert| Some(Candidate::with_siblings(a.clone(), None, &[]));
    // Significant merge inside the window: still marked, still no incident.
    let d = run(
        &ev(Status::Critical, &[]),
        cand(&marked),
        &rules,
        &[],
        T0 + MIN,
    );
    assert_eq!(d.effects.outcome, Some(Outcome::Merged));
    assert!(d.effects.incidents.is_empty());
    let still = d.effects.alerts[0].clone();
    assert_eq!(still.mark, Mark::Silenced);
    assert_eq!(d.why.mark, Mark::Silenced);
    // A duplicate inside the window writes nothing and still explains the mark.
    let d = run(
        &ev(Status::Critical, &[]),
        cand(&still),
        &rules,
        &[],
        T0 + 2 * MIN,
    );
    assert_eq!(d.effects.outcome, Some(Outcome::Duplicate));
    assert!(d.effects.alerts.is_empty());
    assert_eq!(d.why.alert_id, still.alert_id);
    assert_eq!(d.why.mark, Mark::Silenced);
    // After the window: the next trigger un-mutes it into its own incident.
    let d = run(
        &ev(Status::Critical, &[]),
        cand(&still),
        &rules,
        &[],
        T0 + 2 * HOUR,
    );
    assert_eq!(d.effects.outcome, Some(Outcome::Duplicate));
    assert_eq!(d.effects.incidents.len(), 1);
    let a = &d.effects.alerts[0];
    assert_eq!(a.mark, Mark::None);
    assert_eq!(a.mark_rule_id, "");
    assert!(a.ever_muted, "ever_muted stays true after an un-mute");
    let inc = &d.effects.incidents[0];
    assert_eq!(a.incident_id, inc.incident_id);
    assert_eq!(
        inc.start_time, marked.start_time,
        "keeps its original start_time"
    );
    assert_eq!(inc.first_alert_id, a.alert_id);
    assert_eq!(inc.alert_event_cnt, a.event_cnt);
    assert_eq!(d.why.incident_id, inc.incident_id);
}

// spec: ING-113
#[test]
fn an_expired_alert_still_resolves_when_its_successor_is_silenced_away() {
    let opened = run(&ev(Status::Warning, &[]), None, &[], &[], T0);
    let old = opened.effects.alerts[0].clone();
    let c = Candidate::with_siblings(old.clone(), Some(opened.effects.incidents[0].clone()), &[]);
    let later = T0 + 25 * HOUR;
    let rules = [silence("s1", later - HOUR, later + HOUR, Vec::new(), true)];
    let d = run(&ev(Status::Warning, &[]), Some(c), &rules, &[], later);
    assert_eq!(d.effects.outcome, Some(Outcome::SilencedDrop));
    assert_eq!(d.effects.alerts.len(), 1);
    assert_eq!(d.effects.alerts[0].alert_id, old.alert_id);
    assert_eq!(d.effects.alerts[0].alert_status, Status::Ok);
    assert_eq!(d.effects.incidents.len(), 1, "the old incident re-derives");
    assert_eq!(d.effects.incidents[0].progress, Progress::Closed);
    // ING-262: the discarded event concerns no alert, not the expired one.
    assert_eq!(d.why.alert_id, "");
    assert_eq!(d.why.incident_id, "");
    assert_eq!(d.why.rule_id, "s1");
}

// spec: ING-262
#[test]
fn merges_explain_the_alert_they_went_into() {
    let opened = run(&ev(Status::Warning, &[]), None, &[], &[], T0);
    let (a, i) = (
        opened.effects.alerts[0].clone(),
        opened.effects.incidents[0].clone(),
    );
    assert_eq!(opened.why.alert_id, a.alert_id);
    assert_eq!(opened.why.incident_id, i.incident_id);
    assert_eq!(
        opened.why.event_id,
        opened.effects.stored_event.as_ref().unwrap().event_id
    );
    let c = || Some(Candidate::with_siblings(a.clone(), Some(i.clone()), &[]));
    // A label-only change: not stored (ING-120), still explained.
    let d = run(
        &ev(Status::Warning, &[("host", "b")]),
        c(),
        &[],
        &[],
        T0 + MIN,
    );
    assert_eq!(d.why.outcome, Some(Outcome::MergedNonSignificant));
    assert_eq!(d.why.event_id, "");
    assert_eq!(d.why.alert_id, a.alert_id);
    assert_eq!(d.why.incident_id, i.incident_id);
    let d = run(&ev(Status::Warning, &[]), c(), &[], &[], T0);
    assert_eq!(d.why.outcome, Some(Outcome::Duplicate));
    assert_eq!(d.why.alert_id, a.alert_id);
    assert_eq!(d.why.incident_id, i.incident_id);
    let d = run(&ev(Status::Ok, &[]), None, &[], &[], T0);
    assert_eq!(d.why.outcome, Some(Outcome::OkWithoutAlert));
    assert_eq!(d.why.alert_id, "");
}

// --- inhibit rules -----------------------------------------------------------------------

// spec: ING-142
#[test]
fn the_inhibit_example_table() {
    let rules = [example_inhibit(true)];
    let s1 = incident(
        "s1",
        Severity::Critical,
        &[("check", "disk")],
        T0 - 10 * MIN,
    );
    let now = T0;
    let outcome = |incidents: &[Incident], sev: Status, pairs: &[(&str, &str)]| {
        run(&ev(sev, pairs), None, &rules, incidents, now)
            .effects
            .outcome
    };
    let inhibited = Some(Outcome::InhibitedDrop);
    let new = Some(Outcome::NewAlert);
    // Row 1: dropped.
    assert_eq!(
        outcome(
            std::slice::from_ref(&s1),
            Status::Warning,
            &[("check", "disk"), ("host", "b")]
        ),
        inhibited
    );
    // Row 2: other check.
    assert_eq!(
        outcome(
            std::slice::from_ref(&s1),
            Status::Warning,
            &[("check", "cpu")]
        ),
        new
    );
    // Row 3: S1 acknowledged.
    let mut acked = s1.clone();
    acked.progress = Progress::Processing;
    assert_eq!(
        outcome(&[acked], Status::Warning, &[("check", "disk")]),
        new
    );
    // Row 4: S1 created 25 h ago, still Triggered.
    let old = incident(
        "s1",
        Severity::Critical,
        &[("check", "disk")],
        now - 25 * HOUR,
    );
    assert_eq!(outcome(&[old], Status::Warning, &[("check", "disk")]), new);
    // Row 5: target condition fails.
    assert_eq!(
        outcome(
            std::slice::from_ref(&s1),
            Status::Critical,
            &[("check", "disk")]
        ),
        new
    );
    // Row 6: S1 without a check label.
    let bare = incident("s1", Severity::Critical, &[], T0 - 10 * MIN);
    assert_eq!(outcome(&[bare], Status::Warning, &[("check", "disk")]), new);
}

// spec: ING-140
#[test]
fn an_inhibiting_rule_names_itself_and_the_source_incident_and_can_mark() {
    let s1 = incident(
        "s1",
        Severity::Critical,
        &[("check", "disk")],
        T0 - 10 * MIN,
    );
    let d = run(
        &ev(Status::Warning, &[("check", "disk")]),
        None,
        &[example_inhibit(false)],
        &[s1],
        T0,
    );
    assert_eq!(d.effects.outcome, Some(Outcome::NewAlert));
    assert!(d.effects.incidents.is_empty());
    let a = &d.effects.alerts[0];
    assert_eq!(a.mark, Mark::Inhibited);
    assert_eq!(a.mark_rule_id, "inh");
    assert!(a.ever_muted);
    assert_eq!(d.why.mark, Mark::Inhibited);
    assert_eq!(d.why.rule_id, "inh");
    assert_eq!(d.why.source_incident_id, "s1");
}

// spec: ING-140
#[test]
fn inhibition_only_looks_at_its_own_channel_and_compares_equal_attributes() {
    let mut other = incident(
        "s1",
        Severity::Critical,
        &[("check", "disk")],
        T0 - 10 * MIN,
    );
    other.channel_id = 200;
    let d = run(
        &ev(Status::Warning, &[("check", "disk")]),
        None,
        &[example_inhibit(true)],
        &[other],
        T0,
    );
    assert_eq!(d.effects.outcome, Some(Outcome::NewAlert));
    // equals = [title]: incident title "disk full" equals the alert's.
    let mut r = example_inhibit(true);
    r.equals = vec!["title".into()];
    let s = incident("s2", Severity::Critical, &[], T0 - MIN);
    let d = run(
        &ev(Status::Info, &[]),
        None,
        &[r.clone()],
        std::slice::from_ref(&s),
        T0,
    );
    assert_eq!(d.effects.outcome, Some(Outcome::InhibitedDrop));
    let mut q = ev(Status::Info, &[]);
    q.event.title = "other".into();
    let d = run(&q, None, &[r], &[s], T0);
    assert_eq!(d.effects.outcome, Some(Outcome::NewAlert));
}

// spec: ING-141
#[test]
fn cidr_and_num_are_literal_text_in_source_conditions() {
    let mut r = example_inhibit(true);
    r.source_filters = vec![vec![Condition::is_in("labels.value", ["num:gt:90"])]];
    let literal = incident(
        "s1",
        Severity::Critical,
        &[("check", "disk"), ("value", "num:gt:90")],
        T0 - MIN,
    );
    let numeric = incident(
        "s2",
        Severity::Critical,
        &[("check", "disk"), ("value", "95")],
        T0 - MIN,
    );
    let q = ev(Status::Warning, &[("check", "disk")]);
    assert_eq!(
        run(&q, None, &[r.clone()], &[numeric], T0).effects.outcome,
        Some(Outcome::NewAlert)
    );
    assert_eq!(
        run(&q, None, &[r], &[literal], T0).effects.outcome,
        Some(Outcome::InhibitedDrop)
    );
}

// spec: ING-140
#[test]
fn silence_is_checked_before_inhibition() {
    let s1 = incident(
        "s1",
        Severity::Critical,
        &[("check", "disk")],
        T0 - 10 * MIN,
    );
    let rules = [
        example_inhibit(true),
        silence("s", T0 - HOUR, T0 + HOUR, Vec::new(), false),
    ];
    let d = run(
        &ev(Status::Warning, &[("check", "disk")]),
        None,
        &rules,
        &[s1],
        T0,
    );
    assert_eq!(d.why.mark, Mark::Silenced);
    assert_eq!(d.why.rule_id, "s");
}

// --- validation --------------------------------------------------------------------------

fn refused(mut r: NoiseRule) -> String {
    match validate_rule(&mut r) {
        Ok(()) => panic!("rule was accepted: {r:?}"),
        Err(e) => e.to_string(),
    }
}

// spec: ING-133
#[test]
fn invalid_silence_rules_are_refused_naming_the_bad_part() {
    let ok = silence("ok", T0, T0 + HOUR, Vec::new(), false);
    let mut good = ok.clone();
    assert_eq!(validate_rule(&mut good), Ok(()));

    let mut r = ok.clone();
    r.time_filter = Some(OneOff {
        start_time: 100,
        end_time: 100,
    });
    assert_eq!(refused(r), "time_filter.end_time: must be after start_time");

    let mut r = ok.clone();
    r.time_filter = None;
    assert!(refused(r).starts_with("time_filter: a silence rule needs"));

    let mut r = ok.clone();
    r.time_filters = vec![TimeFilter {
        start: "09:00".into(),
        end: "18:00".into(),
        repeat: vec![],
        cal_id: String::new(),
        is_off: false,
    }];
    assert!(refused(r).contains("not both"));

    let mut r = ok.clone();
    r.time_filter = None;
    r.time_filters = vec![TimeFilter {
        start: "24:00".into(),
        end: "06:00".into(),
        repeat: vec![1, 1],
        cal_id: String::new(),
        is_off: false,
    }];
    assert_eq!(
        refused(r.clone()),
        "time_filters[0].start: must be HH:MM (00:00–23:59)"
    );
    r.time_filters[0].start = "22:00".into();
    assert_eq!(
        refused(r.clone()),
        "time_filters[0].repeat: weekday 1 is repeated"
    );
    r.time_filters[0].repeat = vec![7];
    assert!(refused(r.clone()).starts_with("time_filters[0].repeat: 7 is not a weekday"));
    r.time_filters[0].repeat = vec![];
    r.time_filters[0].is_off = true;
    assert_eq!(
        refused(r),
        "time_filters[0].is_off: is only allowed with cal_id"
    );

    let mut r = ok.clone();
    r.rule_name = "x".repeat(40);
    assert_eq!(refused(r), "rule_name: must be 1 to 39 characters");
}

// spec: ING-133
#[test]
fn invalid_conditions_are_refused_naming_the_position() {
    let mut r = silence("s", T0, T0 + HOUR, Vec::new(), false);
    r.filters = vec![vec![
        Condition::is_in("severity", ["Critical"]),
        Condition::is_in("labels.host", ["ok", "/(a/"]),
    ]];
    let msg = refused(r.clone());
    assert!(
        msg.starts_with("filters[0][1].vals[1]: invalid regular expression"),
        "{msg}"
    );
    r.filters = vec![vec![Condition::is_in("subject", ["x"])]];
    assert!(refused(r.clone()).starts_with("filters[0][0].key: unknown key \"subject\""));
    r.filters = vec![vec![Condition::is_in("labels.v", ["num:abc"])]];
    assert!(refused(r).starts_with("filters[0][0].vals[0]: invalid numeric pattern"));
}

// spec: ING-101
#[test]
fn a_drop_rule_needs_conditions() {
    assert_eq!(
        refused(drop_rule("d", Vec::new())),
        "filters: a drop rule needs at least one condition group"
    );
}

// spec: ING-141
#[test]
fn an_inhibit_rule_needs_an_equal_attribute_or_label_and_valid_conditions() {
    let mut r = example_inhibit(true);
    assert_eq!(validate_rule(&mut r.clone()), Ok(()));
    r.equals.clear();
    assert!(refused(r.clone()).starts_with("equals: at least one"));
    r.equals = vec!["host".into()];
    assert_eq!(
        refused(r.clone()),
        "equals[0]: \"host\" is not title, description, severity or labels.<name>"
    );
    r.equals = vec!["title".into()];
    // Source conditions see incidents: no integration keys there.
    r.source_filters = vec![vec![Condition::is_in("integration_id", ["1"])]];
    assert!(refused(r.clone()).starts_with("source_filters[0][0].key: unknown key"));
    r.source_filters = Vec::new();
    r.target_filters = vec![vec![Condition::new(
        "title",
        crate::condition::Oper::Invalid("EQ".into()),
        ["x"],
    )]];
    assert!(refused(r).starts_with("target_filters[0][0].oper"));
}

// --- quick silence -----------------------------------------------------------------------

// spec: RSP-120, ING-134
#[test]
fn quick_silence_defaults_follow_the_incident() {
    let mut inc = incident(
        "0123456789abcdef01a2b3c4",
        Severity::Warning,
        &[
            ("host", "web-1"),
            ("__name__", "up"),
            ("port", "9100"),
            ("ratio", "-0.5"),
            ("path", "/var/*"),
            ("note", &"x".repeat(201)),
            ("version", "1.2.3"),
        ],
        T0,
    );
    inc.num = "A2B3C4".into();
    inc.title = "disk full on web-1".into();
    let r = quick_silence(&inc, T0 + 500);
    assert_eq!(r.rule_name, "Quick Silence - #A2B3C4");
    assert_eq!(r.description, "disk full on web-1");
    assert_eq!(r.channel_id, inc.channel_id);
    assert_eq!(r.kind, RuleKind::Silence);
    assert!(!r.is_directly_discard, "mark by default");
    assert_eq!(r.from_incident_id, inc.incident_id);
    assert_eq!(
        r.time_filter,
        Some(OneOff {
            start_time: T0 / 1000,
            end_time: T0 / 1000 + 86_400
        })
    );
    assert_eq!(expires_at(&r), T0 + 86_400_000);
    assert_eq!(
        condition::render(&r.filters),
        "( severity == Warning && labels.host == web-1 && labels.path == /^/var/\\*$/ \
         && labels.version == 1.2.3 )"
    );
    let mut v = r.clone();
    assert_eq!(validate_rule(&mut v), Ok(()));
    // It silences the incident's own alert again, and not one of another severity.
    let compiled = ChannelNoise::compile(std::slice::from_ref(&r));
    let tz = TimeZone::UTC;
    let m = MatchContext {
        tz: &tz,
        calendars: Calendars::default(),
    };
    let mut same = ev(
        Status::Warning,
        &[
            ("host", "web-1"),
            ("path", "/var/*"),
            ("version", "1.2.3"),
            ("x", "y"),
        ],
    );
    same.event.alert_key = "again".into();
    let fx = merge::process_event(&same, None, T0 + MIN, &mut CountingIds::default());
    assert!(compiled.silence_rule(&fx.alerts[0], &m, T0 + MIN).is_some());
    let mut other = fx.alerts[0].clone();
    other.alert_severity = Severity::Critical;
    assert!(compiled.silence_rule(&other, &m, T0 + MIN).is_none());
    // ING-131: the window is half-open.
    assert!(
        compiled
            .silence_rule(&fx.alerts[0], &m, T0 + 86_400_000)
            .is_none()
    );
}

// spec: ING-134
#[test]
fn quick_silence_keeps_at_most_twenty_conditions() {
    let pairs: Vec<(String, String)> = (0..30)
        .map(|i| (format!("k{i:02}"), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let inc = incident("0123456789abcdef01a2b3c4", Severity::Critical, &refs, T0);
    let mut r = quick_silence(&inc, T0);
    assert_eq!(r.filters[0].len(), 20);
    assert_eq!(r.filters[0][0].key, "severity");
    assert_eq!(validate_rule(&mut r), Ok(()));
}
