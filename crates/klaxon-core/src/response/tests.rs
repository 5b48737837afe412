//! The escalation scenarios ESC-1 … ESC-9 and the lifecycle scenarios of response.md §3 with a
//! driven clock: every step is applied at its due instant by [`Scenario::advance`], which plays
//! the timers the state asks for in due order (RSP-165), exactly as the store's timer worker
//! does.

use std::collections::{BTreeMap, HashMap};

use jiff::tz::TimeZone;

use super::engine::*;
use super::rules::*;
use super::state::*;
use crate::condition::Condition;
use crate::ids::CountingIds;
use crate::model::{Incident, Labels, Millis, Progress, Severity, Status};
use crate::schedule::{Calendars, ServiceCalendar};

const A: i64 = 1;
const B: i64 = 2;
const C: i64 = 3;
const D: i64 = 4;
const E: i64 = 5;
const LEAD: i64 = 9;
const P: i64 = 20;
const S: i64 = 100;
const S2: i64 = 101;
const TEAM_T: i64 = 500;
const TEAM_EMPTY: i64 = 501;
const TEAM_DBA: i64 = 502;
const MIN: Millis = 60_000;

/// 2025-04-01 10:00:00 in Asia/Shanghai (Tuesday), the shared setup of §3.2.
fn ten() -> Millis {
    let tz = TimeZone::get("Asia/Shanghai").unwrap();
    tz.to_ambiguous_timestamp(jiff::civil::date(2025, 4, 1).at(10, 0, 0, 0))
        .compatible()
        .unwrap()
        .as_millisecond()
}

#[derive(Default)]
struct Dir {
    status: HashMap<i64, MemberStatus>,
    emails: HashMap<String, i64>,
    teams: HashMap<i64, Vec<i64>>,
    team_names: HashMap<String, i64>,
    on_call: HashMap<i64, Vec<i64>>,
    prefs: HashMap<(i64, Severity), Vec<String>>,
    /// Preference entries that name an IM integration; they win over `prefs`.
    pref_entries: HashMap<(i64, Severity), Vec<super::PrefChannel>>,
}

impl Directory for Dir {
    fn member_status(&self, p: i64) -> Option<MemberStatus> {
        self.status.get(&p).copied()
    }
    fn member_by_email(&self, email: &str) -> Option<i64> {
        self.emails.get(&email.to_lowercase()).copied()
    }
    fn team_members(&self, t: i64) -> Option<Vec<i64>> {
        self.teams.get(&t).cloned()
    }
    fn team_by_name(&self, n: &str) -> Option<i64> {
        self.team_names.get(n).copied()
    }
    fn on_call(&self, s: i64, _roles: &[i64], _at: Millis) -> Vec<i64> {
        self.on_call.get(&s).cloned().unwrap_or_default()
    }
    fn preference(&self, p: i64, sev: Severity) -> Vec<super::PrefChannel> {
        if let Some(entries) = self.pref_entries.get(&(p, sev)) {
            return entries.clone();
        }
        self.prefs
            .get(&(p, sev))
            .cloned()
            .unwrap_or_else(|| default_preference(sev))
            .into_iter()
            .map(super::PrefChannel::new)
            .collect()
    }
}

impl Dir {
    fn clone_prefs(&self) -> Dir {
        let mut d = dir();
        d.prefs = self.prefs.clone();
        d.pref_entries = self.pref_entries.clone();
        d
    }
}

fn dir() -> Dir {
    let mut d = Dir::default();
    for p in [A, B, C, D, E, LEAD, P] {
        d.status.insert(p, MemberStatus::Enabled);
    }
    d.emails.insert("guo@ex.com".into(), C);
    d.emails.insert("yu@ex.com".into(), D);
    d.teams.insert(TEAM_T, vec![B, C]);
    d.teams.insert(TEAM_EMPTY, vec![]);
    d.teams.insert(TEAM_DBA, vec![E]);
    d.team_names.insert("DBA".into(), TEAM_DBA);
    d.on_call.insert(S, vec![A]);
    d.on_call.insert(S2, vec![]);
    d
}

fn persons(ids: &[i64]) -> Target {
    Target {
        person_ids: ids.to_vec(),
        by: Some(By {
            follow_preference: true,
            ..By::default()
        }),
        ..Target::default()
    }
}

fn level(target: Target, window: i64) -> Level {
    Level {
        target,
        escalate_window: window,
        force_escalate: false,
        max_times: 0,
        notify_step: 10.0,
    }
}

fn rule(layers: Vec<Level>) -> EscalationRule {
    EscalationRule {
        rule_id: "rule000000000000000000001".into(),
        account_id: 1,
        channel_id: 7,
        rule_name: "Payments".into(),
        description: String::new(),
        priority: 0,
        status: RuleStatus::Enabled,
        template_id: String::new(),
        aggr_window: 0,
        time_filters: vec![],
        filters: vec![],
        layers,
        updated_by: 0,
        created_at: 0,
        updated_at: 0,
    }
}

fn incident(start: Millis) -> Incident {
    Incident {
        incident_id: "6800000000000000000000aa".into(),
        num: "0000AA".into(),
        account_id: 1,
        channel_id: 7,
        title: "payments down".into(),
        description: String::new(),
        incident_severity: Severity::Critical,
        incident_status: Status::Critical,
        progress: Progress::Triggered,
        start_time: start,
        last_time: start,
        end_time: 0,
        ack_time: 0,
        close_time: 0,
        created_at: start,
        updated_at: start,
        creator_id: 0,
        closer_id: 0,
        close_source: String::new(),
        labels: Labels::new(),
        alert_cnt: 1,
        active_alert_cnt: 1,
        alert_event_cnt: 1,
        group_method: "n".into(),
        group_key: String::new(),
        group_text: String::new(),
        last_merge_time: start,
        first_alert_id: String::new(),
        first_alert_key: String::new(),
        integration_id: 1,
        integration_type: "standard".into(),
        is_flapping: false,
        storm_level: 0,
        manual_overrides: vec![],
        response: Response::default(),
    }
}

/// One incident under one rule, with a clock the test drives.
struct Scenario {
    inc: Incident,
    rule: EscalationRule,
    dir: Dir,
    ids: CountingIds,
    now: Millis,
    /// Everything that happened, in order.
    log: Vec<TimelineEntry>,
    sent: Vec<Notification>,
}

impl Scenario {
    fn start(rule: EscalationRule, dir: Dir) -> Scenario {
        let t = ten();
        let mut s = Scenario {
            inc: incident(t),
            rule,
            dir,
            ids: CountingIds::default(),
            now: t,
            log: vec![],
            sent: vec![],
        };
        let rules = vec![s.rule.clone()];
        s.act(|e, inc, _| {
            let tz = TimeZone::get("Asia/Shanghai").unwrap();
            e.on_auto_created(
                inc,
                &rules,
                &MatchContext {
                    tz: &tz,
                    calendars: Calendars::default(),
                },
                None,
            );
            Ok(())
        })
        .unwrap();
        s
    }

    fn act(
        &mut self,
        f: impl FnOnce(&mut Engine<'_>, &mut Incident, &EscalationRule) -> Result<(), ActionError>,
    ) -> Result<(), ActionError> {
        let mut e = Engine::new(self.now, &self.dir, &mut self.ids);
        let mut inc = self.inc.clone();
        f(&mut e, &mut inc, &self.rule)?;
        check_invariants(&inc, self.now).unwrap();
        let out = e.out;
        self.inc = inc;
        self.log.extend(out.timeline);
        self.sent.extend(out.notifications);
        Ok(())
    }

    /// Moves the clock to `to`, applying every timer that falls due on the way at its own
    /// instant, in due order and RSP-165 order within an instant.
    fn advance(&mut self, to: Millis) {
        loop {
            let mut due = pending_timers(&self.inc);
            due.sort_by_key(|(k, at)| (*at, *k));
            let Some((kind, at)) = due.into_iter().find(|(_, at)| *at <= to) else {
                break;
            };
            self.now = at;
            let rule = self.rule.clone();
            self.act(|e, inc, _| {
                e.on_timer(inc, kind, at, Some(&rule));
                Ok(())
            })
            .unwrap();
        }
        self.now = to;
    }

    fn at(&mut self, minutes: f64) {
        self.advance(ten() + (minutes * MIN as f64) as Millis);
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.log.iter().map(|e| e.kind).collect()
    }

    fn responders(&self) -> Vec<i64> {
        self.inc
            .response
            .responders
            .iter()
            .map(|r| r.person_id)
            .collect()
    }

    /// Persons notified directly, per firing, with the firing's instant.
    fn firings(&self) -> Vec<(Millis, &'static str, Vec<i64>)> {
        let mut out: Vec<(Millis, &'static str, Vec<i64>)> = Vec::new();
        let mut last_firing = String::new();
        for n in &self.sent {
            if n.person_id == 0 {
                continue;
            }
            if n.firing_id != last_firing {
                out.push((n.created_at, n.fire_type, vec![]));
                last_firing = n.firing_id.clone();
            }
            if let Some(f) = out.last_mut()
                && !f.2.contains(&n.person_id)
            {
                f.2.push(n.person_id);
            }
        }
        out
    }

    fn assigns(&self) -> Vec<(Millis, String, i64, Vec<i64>)> {
        self.log
            .iter()
            .filter(|e| e.kind == "i_assign")
            .map(|e| {
                let to = e.detail["to"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                (
                    e.created_at,
                    e.detail["type"].as_str().unwrap().to_string(),
                    e.detail["layer_idx"].as_i64().unwrap(),
                    to,
                )
            })
            .collect()
    }
}

fn m(minutes: f64) -> Millis {
    ten() + (minutes * MIN as f64) as Millis
}

fn sched(ids: &[(i64, Vec<i64>)]) -> BTreeMap<i64, Vec<i64>> {
    ids.iter().cloned().collect()
}

fn esc1() -> EscalationRule {
    let l0 = Target {
        schedule_to_role_ids: sched(&[(S, vec![])]),
        by: Some(By {
            follow_preference: true,
            ..By::default()
        }),
        ..Target::default()
    };
    rule(vec![level(l0, 15), level(persons(&[LEAD]), 30)])
}

#[test]
fn esc_1_two_levels_nobody_acknowledges() {
    // spec: RSP-150, RSP-163 (ESC-1)
    let mut s = Scenario::start(esc1(), dir());
    assert_eq!(s.kinds(), vec!["i_new", "i_assign", "i_notify"]);
    assert_eq!(s.assigns(), vec![(m(0.0), "assign".into(), 0, vec![A])]);
    assert_eq!(s.inc.progress, Progress::Triggered);
    s.at(15.0);
    assert_eq!(s.assigns()[1], (m(15.0), "escalate".into(), 1, vec![LEAD]));
    assert_eq!(s.responders(), vec![LEAD]);
    assert_eq!(
        s.firings().iter().map(|f| f.2.clone()).collect::<Vec<_>>(),
        vec![vec![A], vec![LEAD]]
    );
    // The last level arms no deadline (RSP-164).
    assert_eq!(
        s.inc
            .response
            .escalation
            .as_ref()
            .unwrap()
            .escalate_deadline,
        0
    );
    s.at(120.0);
    assert_eq!(s.assigns().len(), 2);
}

#[test]
fn esc_1b_acknowledged_stops_escalation() {
    // spec: RSP-031, RSP-032 (ESC-1b)
    let mut s = Scenario::start(esc1(), dir());
    s.at(5.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    assert_eq!(s.inc.progress, Progress::Processing);
    assert_eq!(s.inc.ack_time, m(5.0));
    s.at(15.0);
    assert_eq!(s.assigns().len(), 1);
    assert_eq!(s.responders(), vec![A]);
}

#[test]
fn esc_1c_withdrawn_ack_rearms_the_deadline() {
    // spec: RSP-034 (ESC-1c)
    let mut s = Scenario::start(esc1(), dir());
    s.at(5.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.at(20.0);
    let sent_before = s.sent.len();
    s.act(|e, inc, r| e.unacknowledge(inc, A, "console", Some(r)))
        .unwrap();
    assert_eq!(s.inc.progress, Progress::Triggered);
    assert_eq!(s.inc.ack_time, 0);
    assert_eq!(s.sent.len(), sent_before, "nobody is notified at 10:20");
    assert_eq!(
        s.inc
            .response
            .escalation
            .as_ref()
            .unwrap()
            .escalate_deadline,
        m(35.0)
    );
    s.at(35.0);
    assert_eq!(s.assigns()[1], (m(35.0), "escalate".into(), 1, vec![LEAD]));
}

fn esc2(window: i64, max_times: i64, step: f64) -> EscalationRule {
    let mut l0 = level(persons(&[A]), window);
    l0.max_times = max_times;
    l0.notify_step = step;
    rule(vec![l0, level(persons(&[B]), 30)])
}

#[test]
fn esc_2_repeats_then_escalation() {
    // spec: RSP-162 (ESC-2)
    let mut s = Scenario::start(esc2(12, 2, 5.0), dir());
    s.at(60.0);
    let f = s.firings();
    let got: Vec<(Millis, &str, Vec<i64>)> =
        f.iter().map(|(t, k, p)| (*t, *k, p.clone())).collect();
    assert_eq!(
        got,
        vec![
            (m(0.0), "fire", vec![A]),
            (m(5.0), "refire", vec![A]),
            (m(10.0), "refire", vec![A]),
            (m(12.0), "fire", vec![B]),
        ]
    );
}

#[test]
fn repeat_index_counts_the_repeats_of_a_level() {
    // spec: RSP-343 (`RepeatIndex`), RSP-355: 0 for the level's first firing, i for the i-th
    // repeat, and 0 again for the next level's first firing.
    let mut s = Scenario::start(esc2(12, 2, 5.0), dir());
    s.at(60.0);
    // Every row of one firing (one per channel) carries the same index.
    let mut got: Vec<(Millis, &str, i64)> = s
        .sent
        .iter()
        .map(|n| (n.created_at, n.fire_type, n.repeat_index))
        .collect();
    got.dedup();
    assert_eq!(
        got,
        vec![
            (m(0.0), "fire", 0),
            (m(5.0), "refire", 1),
            (m(10.0), "refire", 2),
            (m(12.0), "fire", 0),
        ]
    );
}

#[test]
fn esc_2b_repeat_at_the_deadline_is_dropped() {
    // spec: RSP-162 (ESC-2b): a repeat must be strictly earlier than the deadline
    let mut s = Scenario::start(esc2(10, 2, 5.0), dir());
    s.at(60.0);
    let got: Vec<(Millis, Vec<i64>)> = s.firings().into_iter().map(|(t, _, p)| (t, p)).collect();
    assert_eq!(
        got,
        vec![(m(0.0), vec![A]), (m(5.0), vec![A]), (m(10.0), vec![B])]
    );
}

#[test]
fn esc_2c_ack_cancels_repeats() {
    // spec: RSP-031 (ESC-2c)
    let mut s = Scenario::start(esc2(12, 2, 5.0), dir());
    s.at(7.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.at(60.0);
    assert_eq!(s.firings().len(), 2); // 10:00 and 10:05 only
    assert_eq!(s.assigns().len(), 1);
}

#[test]
fn esc_2d_half_minute_steps() {
    // spec: RSP-162 (ESC-2d)
    let mut s = Scenario::start(esc2(30, 6, 0.5), dir());
    s.at(31.0);
    let times: Vec<Millis> = s.firings().into_iter().map(|(t, _, _)| t).collect();
    let mut want = vec![m(0.0)];
    for i in 1..=6 {
        want.push(m(0.5 * f64::from(i)));
    }
    want.push(m(30.0));
    assert_eq!(times, want);
}

fn esc3(team: Vec<i64>) -> (EscalationRule, Dir) {
    let mut d = dir();
    d.teams.insert(TEAM_T, team);
    let mut l0 = level(persons(&[A]), 30);
    l0.force_escalate = true;
    let l1 = Target {
        team_ids: vec![TEAM_T],
        by: Some(By {
            follow_preference: true,
            ..By::default()
        }),
        ..Target::default()
    };
    (rule(vec![l0, level(l1, 30)]), d)
}

#[test]
fn esc_3_force_escalate_replaces_acknowledged_responder() {
    // spec: RSP-150 step 2, RSP-163 (ESC-3 case 1)
    let (r, d) = esc3(vec![B, C]);
    let mut s = Scenario::start(r, d);
    s.at(2.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.at(30.0);
    assert_eq!(s.responders(), vec![B, C]);
    assert_eq!(s.inc.progress, Progress::Triggered);
    assert_eq!(s.firings().last().unwrap().2, vec![B, C]);
}

#[test]
fn esc_3_force_escalate_keeps_acknowledged_member_of_next_level() {
    // spec: RSP-150 step 2 (ESC-3 case 2)
    let (r, d) = esc3(vec![A, B]);
    let mut s = Scenario::start(r, d);
    s.at(2.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.at(30.0);
    assert_eq!(s.responders(), vec![A, B]);
    assert_eq!(s.inc.progress, Progress::Processing);
    assert_eq!(s.firings().last().unwrap().2, vec![B]);
}

#[test]
fn esc_3_closed_before_deadline() {
    // spec: RSP-163 (ESC-3 case 3)
    let (r, d) = esc3(vec![B, C]);
    let mut s = Scenario::start(r, d);
    s.at(20.0);
    s.act(|e, inc, _| {
        e.close(inc, P, "console", None, None);
        Ok(())
    })
    .unwrap();
    s.at(60.0);
    assert_eq!(s.assigns().len(), 1);
    assert!(pending_timers(&s.inc).is_empty());
}

#[test]
fn esc_3_snoozed_then_expiry_reenters_level_0() {
    // spec: RSP-041, RSP-043 (ESC-3 case 4)
    let (r, d) = esc3(vec![B, C]);
    let mut s = Scenario::start(r, d);
    s.at(2.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.at(3.0);
    s.act(|e, inc, r| e.snooze(inc, A, 60, "console", Some(r)))
        .unwrap();
    s.at(30.0);
    assert_eq!(s.assigns().len(), 1, "nothing at 10:30 while snoozed");
    s.at(63.0);
    assert_eq!(s.responders(), vec![A]);
    assert_eq!(s.inc.progress, Progress::Triggered);
    assert_eq!(s.assigns()[1].2, 0);
    assert_eq!(
        s.inc
            .response
            .escalation
            .as_ref()
            .unwrap()
            .escalate_deadline,
        m(93.0)
    );
}

#[test]
fn esc_4_snooze_from_triggered_and_expiry() {
    // spec: RSP-040, RSP-041, RSP-043 (ESC-4)
    let mut l0 = level(persons(&[A]), 15);
    l0.max_times = 1;
    l0.notify_step = 10.0;
    let mut s = Scenario::start(rule(vec![l0, level(persons(&[LEAD]), 30)]), dir());
    s.at(3.0);
    s.act(|e, inc, r| e.snooze(inc, A, 60, "card", Some(r)))
        .unwrap();
    let tail: Vec<&str> = s.kinds()[3..].to_vec();
    assert_eq!(tail, vec!["i_ack", "i_snooze"]);
    assert_eq!(s.log[3].detail["from"], "card");
    assert_eq!(s.inc.response.snoozed_before, m(63.0));
    s.at(62.0);
    assert_eq!(s.firings().len(), 1, "nothing at 10:10 or 10:15");
    s.at(63.0);
    assert_eq!(s.inc.ack_time, m(3.0), "ack_time stays (RSP-032)");
    assert_eq!(s.inc.progress, Progress::Triggered);
    let wake = s.log.iter().find(|e| e.kind == "i_wake").unwrap();
    assert_eq!(wake.creator_id, 0);
    assert_eq!(wake.detail["snoozedBefore"], m(63.0) / 1000);
    assert_eq!(s.assigns()[1], (m(63.0), "assign".into(), 0, vec![A]));
    s.at(100.0);
    let got: Vec<(Millis, Vec<i64>)> = s.firings().into_iter().map(|(t, _, p)| (t, p)).collect();
    assert_eq!(
        got,
        vec![
            (m(0.0), vec![A]),
            (m(63.0), vec![A]),
            (m(73.0), vec![A]),
            (m(78.0), vec![LEAD]),
        ]
    );
    let wake_fire = s.sent.iter().find(|n| n.created_at == m(63.0)).unwrap();
    assert_eq!(wake_fire.reason, "wake");
}

#[test]
fn esc_5_time_filters_and_priority() {
    // spec: RSP-132, RSP-133, RSP-270 (ESC-5)
    let tz = TimeZone::get("Asia/Shanghai").unwrap();
    let mut overrides = BTreeMap::new();
    for day in 1..=7 {
        overrides.insert(
            format!("2025-10-{day:02}"),
            crate::schedule::DayType::Restday,
        );
    }
    overrides.insert("2025-10-11".to_string(), crate::schedule::DayType::Workday);
    let cals = vec![ServiceCalendar {
        cal_id: "cal000000000000000000001".into(),
        cal_name: "CAL".into(),
        description: String::new(),
        team_id: 0,
        timezone: "Asia/Shanghai".into(),
        workdays: vec![1, 2, 3, 4, 5],
        extra_cal_ids: vec![],
        date_overrides: overrides,
        status: Default::default(),
        creator_id: 0,
    }];
    let at = |y, mo, d, h, mi| {
        tz.to_ambiguous_timestamp(jiff::civil::date(y, mo, d).at(h, mi, 0, 0))
            .compatible()
            .unwrap()
            .as_millisecond()
    };
    let mut r1 = rule(vec![level(persons(&[A]), 30)]);
    r1.rule_id = "r1".into();
    r1.time_filters = vec![TimeFilter {
        start: "09:00".into(),
        end: "15:00".into(),
        repeat: vec![],
        cal_id: "cal000000000000000000001".into(),
        is_off: false,
    }];
    r1.filters = vec![vec![Condition::is_in("severity", ["Critical"])]];
    let mut r2 = rule(vec![level(persons(&[A]), 30)]);
    r2.rule_id = "r2".into();
    r2.priority = 1;
    r2.time_filters = vec![TimeFilter {
        start: "18:00".into(),
        end: "09:00".into(),
        repeat: vec![1, 2, 3, 4, 5],
        cal_id: String::new(),
        is_off: false,
    }];
    let mut r3 = rule(vec![level(persons(&[A]), 30)]);
    r3.rule_id = "r3".into();
    r3.priority = 2;
    let rules = vec![r3.clone(), r2.clone(), r1.clone()]; // any order: priority decides
    let pick = |t: Millis, sev: Severity, rules: &[EscalationRule]| {
        let mut inc = incident(t);
        inc.incident_severity = sev;
        let ctx = MatchContext {
            tz: &tz,
            calendars: Calendars::new(&cals, &[]),
        };
        select_rule(rules, &inc, &ctx, t).map(|r| r.rule_id.clone())
    };
    assert_eq!(
        pick(at(2025, 10, 9, 10, 0), Severity::Critical, &rules).as_deref(),
        Some("r1")
    );
    assert_eq!(
        pick(at(2025, 10, 9, 10, 0), Severity::Warning, &rules).as_deref(),
        Some("r3")
    );
    // A rest day of CAL, and an adjusted working day.
    assert_eq!(
        pick(at(2025, 10, 1, 10, 0), Severity::Critical, &rules).as_deref(),
        Some("r3")
    );
    assert_eq!(
        pick(at(2025, 10, 11, 10, 0), Severity::Critical, &rules).as_deref(),
        Some("r1")
    );
    assert_eq!(
        pick(at(2025, 10, 10, 23, 30), Severity::Info, &rules).as_deref(),
        Some("r2")
    );
    assert_eq!(
        pick(at(2025, 10, 11, 2, 0), Severity::Info, &rules).as_deref(),
        Some("r2")
    );
    assert_eq!(
        pick(at(2025, 10, 13, 2, 0), Severity::Info, &rules).as_deref(),
        Some("r3")
    );
    let mut disabled = rules.clone();
    disabled[2].status = RuleStatus::Disabled;
    assert_eq!(
        pick(at(2025, 10, 9, 10, 0), Severity::Critical, &disabled).as_deref(),
        Some("r3")
    );
    // No rule at all: no assignment (RSP-132).
    assert_eq!(pick(at(2025, 10, 9, 10, 0), Severity::Critical, &[]), None);
}

#[test]
fn esc_6_dedup_preferences_and_chats() {
    // spec: RSP-151, RSP-155, RSP-156 (ESC-6)
    let mut d = dir();
    d.teams.insert(TEAM_T, vec![A, B]);
    d.on_call.insert(S, vec![B]);
    d.prefs
        .insert((A, Severity::Critical), vec!["sms".into(), "email".into()]);
    d.prefs
        .insert((B, Severity::Critical), vec!["voice".into()]);
    let l0 = Target {
        person_ids: vec![A],
        team_ids: vec![TEAM_T],
        schedule_to_role_ids: sched(&[(S, vec![])]),
        by: Some(By {
            follow_preference: true,
            ..By::default()
        }),
        webhooks: vec![
            GroupChatTarget {
                kind: "feishu".into(),
                settings: serde_json::json!({"token_or_url": "abc"}),
            },
            GroupChatTarget {
                kind: "dingtalk_app".into(),
                settings: serde_json::json!({"integration_id": 3, "chat_ids": ["c1"]}),
            },
        ],
    };
    let s = Scenario::start(rule(vec![level(l0, 15)]), d);
    assert_eq!(s.responders(), vec![A, B]);
    let direct: Vec<(i64, String)> = s
        .sent
        .iter()
        .filter(|n| n.person_id != 0)
        .map(|n| (n.person_id, n.channel.clone()))
        .collect();
    assert_eq!(
        direct,
        vec![(A, "sms".into()), (A, "email".into()), (B, "voice".into())]
    );
    let chats: Vec<&Notification> = s.sent.iter().filter(|n| n.person_id == 0).collect();
    assert_eq!(chats.len(), 2);
    for c in &chats {
        assert_eq!(c.target["mentions"], serde_json::json!([A, B]));
    }
    assert_eq!(
        chats[0].target["settings"]["url"],
        "https://open.feishu.cn/open-apis/bot/v2/hook/abc"
    );
    let notify: Vec<&TimelineEntry> = s.log.iter().filter(|e| e.kind == "i_notify").collect();
    assert_eq!(notify.len(), 1, "a single i_notify per firing");
    assert_eq!(notify[0].detail["persons"].as_array().unwrap().len(), 3);
    assert_eq!(notify[0].detail["robots"].as_array().unwrap().len(), 1);
    assert_eq!(notify[0].detail["chats"].as_array().unwrap().len(), 1);
}

#[test]
fn esc_6b_empty_shift_still_escalates() {
    // spec: RSP-153 (ESC-6b)
    let l0 = Target {
        schedule_to_role_ids: sched(&[(S2, vec![])]),
        webhooks: vec![GroupChatTarget {
            kind: "wecom".into(),
            settings: serde_json::json!({"token_or_url": "k"}),
        }],
        ..Target::default()
    };
    let mut s = Scenario::start(
        rule(vec![level(l0, 15), level(persons(&[LEAD]), 30)]),
        dir(),
    );
    assert_eq!(s.assigns()[0].3, Vec::<i64>::new());
    assert!(s.responders().is_empty());
    assert_eq!(s.inc.progress, Progress::Triggered);
    let bot: Vec<&Notification> = s.sent.iter().filter(|n| n.person_id == 0).collect();
    assert_eq!(bot.len(), 1);
    assert_eq!(bot[0].target["mentions"], serde_json::json!([]));
    s.at(15.0);
    assert_eq!(s.assigns()[1].3, vec![LEAD]);
}

#[test]
fn esc_6c_pending_member_is_reported_not_notified() {
    // spec: RSP-152 (ESC-6c)
    let mut d = dir();
    d.status.insert(B, MemberStatus::Pending);
    let s = Scenario::start(rule(vec![level(persons(&[A, B]), 15)]), d);
    assert_eq!(s.responders(), vec![A]);
    let notify = s.log.iter().find(|e| e.kind == "i_notify").unwrap();
    let failed: Vec<&serde_json::Value> = notify.detail["persons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["failed_reason"] == "member_inactive")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["person_id"], B);
}

fn esc7_rule() -> EscalationRule {
    let mut l0 = persons(&[LEAD]);
    l0.webhooks = vec![GroupChatTarget {
        kind: "wecom".into(),
        settings: serde_json::json!({"token_or_url": "old-5b96"}),
    }];
    let l1 = Target {
        team_ids: vec![TEAM_T],
        by: Some(By {
            follow_preference: true,
            ..By::default()
        }),
        ..Target::default()
    };
    rule(vec![level(l0, 15), level(l1, 15)])
}

fn with_labels(mut s: Scenario, labels: &[(&str, &str)]) -> Scenario {
    // Labels are set before creation, so restart the scenario on a labelled incident.
    let mut inc = incident(ten());
    for (k, v) in labels {
        inc.labels.insert((*k).into(), (*v).into());
    }
    s.inc = inc;
    s.log.clear();
    s.sent.clear();
    let rules = vec![s.rule.clone()];
    s.act(|e, inc, _| {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        e.on_auto_created(
            inc,
            &rules,
            &MatchContext {
                tz: &tz,
                calendars: Calendars::default(),
            },
            None,
        );
        Ok(())
    })
    .unwrap();
    s
}

#[test]
fn esc_7_dynamic_assignment() {
    // spec: RSP-190, RSP-191, RSP-192, RSP-193, RSP-194 (ESC-7)
    let s = Scenario::start(esc7_rule(), dir());
    let mut s = with_labels(
        s,
        &[
            (
                "layer_person_reset_0_emails",
                "guo@ex.com, yu@ex.com, nobody@ex.com",
            ),
            (
                "layer_webhook_reset_0_wecoms",
                "90dbb66b-af39-4235-956c-636a9c1ed9c0",
            ),
            ("layer_person_reset_1_team_names", "DBA"),
        ],
    );
    assert_eq!(s.responders(), vec![C, D]);
    let bots: Vec<&Notification> = s.sent.iter().filter(|n| n.person_id == 0).collect();
    assert_eq!(bots.len(), 1);
    assert_eq!(
        bots[0].target["settings"]["url"],
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=90dbb66b-af39-4235-956c-636a9c1ed9c0"
    );
    assert_eq!(bots[0].target["settings"]["alias"], "dynamic");
    // RSP-194: the timeline shows the replaced responders and the replacement bot.
    assert_eq!(s.assigns()[0].3, vec![C, D]);
    let notify = s.log.iter().find(|e| e.kind == "i_notify").unwrap();
    let robots = notify.detail["robots"].as_array().unwrap();
    assert_eq!(robots.len(), 1);
    assert_eq!(robots[0]["alias"], "dynamic");
    s.at(15.0);
    assert_eq!(s.responders(), vec![E]);
    assert_eq!(s.assigns()[1].3, vec![E]);
}

#[test]
fn esc_7b_unresolvable_key_is_ignored() {
    // spec: RSP-193 (ESC-7b, ESC-7c)
    let s = Scenario::start(esc7_rule(), dir());
    let s = with_labels(s, &[("layer_person_reset_0_emails", "nobody@ex.com")]);
    assert_eq!(s.responders(), vec![LEAD]);
    let s = Scenario::start(esc7_rule(), dir());
    let s = with_labels(s, &[("layer_person_reset_3_emails", "guo@ex.com")]);
    assert_eq!(s.responders(), vec![LEAD]);
}

fn esc8() -> Scenario {
    Scenario::start(
        rule(vec![
            level(persons(&[A]), 30),
            level(persons(&[B]), 30),
            level(persons(&[C]), 30),
        ]),
        dir(),
    )
}

#[test]
fn esc_8_manual_escalation_reassign_add_responders() {
    // spec: RSP-110, RSP-111, RSP-112, RSP-113 (ESC-8)
    let mut s = esc8();
    s.at(2.0);
    let rid = s.rule.rule_id.clone();
    s.act(|e, inc, r| e.escalate_to(inc, P, Some(r), &rid, 2))
        .unwrap();
    let last = s.log.iter().rev().find(|e| e.kind == "i_assign").unwrap();
    assert_eq!(last.creator_id, P);
    assert_eq!(last.detail["type"], "escalate");
    assert_eq!(s.responders(), vec![C]);
    assert_eq!(
        s.inc
            .response
            .escalation
            .as_ref()
            .unwrap()
            .escalate_deadline,
        0
    );
    s.at(5.0);
    let d = DirectTargets {
        person_ids: vec![D],
        ..DirectTargets::default()
    };
    s.act(|e, inc, _| e.reassign(inc, P, &d)).unwrap();
    let a = s.inc.response.assigned_to.clone().unwrap();
    assert_eq!(
        (a.kind, a.layer_idx, a.escalate_rule_id.as_str()),
        (AssignType::Reassign, -1, "")
    );
    assert_eq!(s.responders(), vec![D]);
    assert!(s.inc.response.escalation.is_none());
    // RSP-111: manual escalation is no longer available.
    let err = s.act(|e, inc, r| e.escalate_to(inc, P, Some(r), &rid, 1));
    assert!(matches!(err, Err(ActionError::InvalidArgument(_))));
    s.at(6.0);
    let add = DirectTargets {
        person_ids: vec![E, D],
        ..DirectTargets::default()
    };
    s.act(|e, inc, _| e.add_responders(inc, P, &add)).unwrap();
    assert_eq!(s.responders(), vec![D, E]);
    let rspd = s.log.iter().rev().find(|e| e.kind == "i_a_rspd").unwrap();
    assert_eq!(rspd.detail["to"], serde_json::json!([E]));
    assert_eq!(s.firings().last().unwrap().2, vec![E]);
    assert_eq!(
        s.inc.response.assigned_to.as_ref().unwrap().kind,
        AssignType::Reassign
    );
}

#[test]
fn esc_8b_reassign_keeps_acknowledgement() {
    // spec: RSP-110 step 2–3 (ESC-8b)
    let mut s = esc8();
    s.at(1.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.at(5.0);
    let ad = DirectTargets {
        person_ids: vec![A, D],
        ..DirectTargets::default()
    };
    s.act(|e, inc, _| e.reassign(inc, P, &ad)).unwrap();
    assert_eq!(s.inc.progress, Progress::Processing);
    assert_eq!(s.firings().last().unwrap().2, vec![D]);
    let only_d = DirectTargets {
        person_ids: vec![D],
        ..DirectTargets::default()
    };
    s.act(|e, inc, _| e.reassign(inc, P, &only_d)).unwrap();
    assert_eq!(s.inc.progress, Progress::Triggered);
    // Nobody resolvable: refused, nothing changes (RSP-110 step 1).
    let nobody = DirectTargets {
        schedule_to_role_ids: sched(&[(S2, vec![])]),
        ..DirectTargets::default()
    };
    let before = s.inc.clone();
    assert!(matches!(
        s.act(|e, inc, _| e.reassign(inc, P, &nobody)),
        Err(ActionError::InvalidArgument(_))
    ));
    assert_eq!(s.inc, before);
}

fn esc9() -> EscalationRule {
    let mut r = rule(vec![level(persons(&[A]), 15), level(persons(&[LEAD]), 15)]);
    r.aggr_window = 120;
    r
}

#[test]
fn esc_9_delay_window_then_assignment() {
    // spec: RSP-160 (ESC-9 case 2)
    let mut s = Scenario::start(esc9(), dir());
    assert_eq!(s.kinds(), vec!["i_new"]);
    s.at(2.0);
    assert_eq!(s.assigns(), vec![(m(2.0), "assign".into(), 0, vec![A])]);
    assert_eq!(
        s.inc
            .response
            .escalation
            .as_ref()
            .unwrap()
            .escalate_deadline,
        m(17.0)
    );
}

#[test]
fn esc_9_closed_during_window_is_never_assigned() {
    // spec: RSP-056, RSP-160 (ESC-9 case 1)
    let mut s = Scenario::start(esc9(), dir());
    s.at(1.5);
    s.inc.progress = Progress::Closed;
    s.inc.close_time = s.now;
    s.inc.close_source = "event".into();
    s.act(|e, inc, _| {
        e.on_event_closed(inc);
        Ok(())
    })
    .unwrap();
    s.at(200.0);
    assert!(s.assigns().is_empty());
    assert!(s.sent.is_empty());
}

#[test]
fn esc_9_early_acknowledgement_is_kept() {
    // spec: RSP-150 step 2, RSP-160 (ESC-9 case 3)
    let mut s = Scenario::start(esc9(), dir());
    s.at(1.0);
    s.act(|e, inc, r| e.acknowledge(inc, B, "console", Some(r)))
        .unwrap();
    assert_eq!(s.inc.response.responders[0].as_, ResponderAs::Acker);
    s.at(2.0);
    assert_eq!(s.responders(), vec![B, A]);
    assert_eq!(s.inc.progress, Progress::Processing);
    assert_eq!(s.firings(), vec![(m(2.0), "fire", vec![A])]);
    assert_eq!(
        s.inc
            .response
            .escalation
            .as_ref()
            .unwrap()
            .escalate_deadline,
        0
    );
}

#[test]
fn life_3_reopen_reassigns_level_0() {
    // spec: RSP-070, RSP-071, RSP-032 (LIFE-3)
    let mut s = Scenario::start(esc1(), dir());
    s.at(4.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.act(|e, inc, r| e.unacknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.at(60.0);
    s.act(|e, inc, _| {
        e.close(inc, P, "console", Some("disk".into()), None);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.inc.close_source, "console");
    assert_eq!(s.inc.response.root_cause, "disk");
    s.at(120.0);
    let tz = TimeZone::get("Asia/Shanghai").unwrap();
    let ctx = MatchContext {
        tz: &tz,
        calendars: Calendars::default(),
    };
    s.act(|e, inc, r| e.reopen(inc, P, "recurred", Some(r), &[], &ctx))
        .unwrap();
    assert_eq!(s.inc.progress, Progress::Triggered);
    assert_eq!(s.inc.close_time, 0);
    assert_eq!(s.inc.ack_time, m(4.0));
    assert_eq!(
        s.assigns().last().unwrap(),
        &(m(120.0), "reopen".into(), 0, vec![A])
    );
    let reopen = s.log.iter().find(|e| e.kind == "i_reopen").unwrap();
    assert_eq!(reopen.detail["reason"], "recurred");
    // Reopening an open incident is refused.
    assert!(matches!(
        s.act(|e, inc, r| e.reopen(inc, P, "", Some(r), &[], &ctx)),
        Err(ActionError::FailedPrecondition(_))
    ));
}

#[test]
fn life_4_unack_while_snoozed_cancels_the_snooze() {
    // spec: RSP-021, RSP-034 (LIFE-4)
    let mut s = Scenario::start(esc1(), dir());
    s.at(1.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    s.at(2.0);
    s.act(|e, inc, r| e.snooze(inc, A, 30, "console", Some(r)))
        .unwrap();
    s.at(10.0);
    let sent = s.sent.len();
    s.act(|e, inc, r| e.unacknowledge(inc, A, "console", Some(r)))
        .unwrap();
    let tail: Vec<&str> = s.kinds().into_iter().rev().take(2).collect();
    assert_eq!(tail, vec!["i_wake", "i_unack"]);
    let wake = s.log.last().unwrap();
    assert_eq!(wake.creator_id, A);
    assert_eq!(s.inc.response.snoozed_before, 0);
    assert_eq!(s.inc.progress, Progress::Triggered);
    assert_eq!(s.inc.ack_time, 0);
    assert_eq!(
        s.inc
            .response
            .escalation
            .as_ref()
            .unwrap()
            .escalate_deadline,
        m(25.0)
    );
    assert_eq!(s.sent.len(), sent);
}

#[test]
fn closed_incident_refuses_actions() {
    // spec: RSP-022, RSP-035, RSP-040
    let mut s = esc8();
    s.act(|e, inc, _| {
        e.close(inc, P, "console", None, None);
        Ok(())
    })
    .unwrap();
    let before = s.inc.clone();
    for res in [
        s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r))),
        s.act(|e, inc, r| e.unacknowledge(inc, A, "console", Some(r))),
        s.act(|e, inc, r| e.snooze(inc, A, 10, "console", Some(r))),
    ] {
        assert!(matches!(res, Err(ActionError::FailedPrecondition(_))));
    }
    assert_eq!(s.inc, before);
    // Comments and edits stay allowed (RSP-022).
    s.act(|e, inc, _| e.comment(inc, P, " looked at it ", true))
        .unwrap();
    assert_eq!(s.log.last().unwrap().detail["comment"], "looked at it");
    // Closing again is a no-op (RSP-051).
    let n = s.log.len();
    s.act(|e, inc, _| {
        e.close(inc, P, "console", None, None);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.log.len(), n);
}

#[test]
fn unack_without_ack_is_refused() {
    // spec: RSP-033
    let mut s = esc8();
    assert!(matches!(
        s.act(|e, inc, r| e.unacknowledge(inc, B, "console", Some(r))),
        Err(ActionError::FailedPrecondition(_))
    ));
}

#[test]
fn edits_set_manual_overrides_and_noop_on_same_value() {
    // spec: RSP-081, RSP-082, RSP-083, RSP-004
    let mut s = esc8();
    s.act(|e, inc, _| e.edit_text(inc, P, "title", "new title"))
        .unwrap();
    assert_eq!(s.inc.manual_overrides, vec!["title".to_string()]);
    let n = s.log.len();
    s.act(|e, inc, _| e.edit_text(inc, P, "title", "new title"))
        .unwrap();
    assert_eq!(s.log.len(), n);
    assert!(s.act(|e, inc, _| e.edit_text(inc, P, "title", "")).is_err());
    s.act(|e, inc, _| {
        e.edit_severity(inc, P, Severity::Info);
        Ok(())
    })
    .unwrap();
    let last = s.log.last().unwrap();
    assert_eq!(
        (
            last.kind,
            last.detail["from"].as_str(),
            last.detail["to"].as_str()
        ),
        ("i_r_severity", Some("Critical"), Some("Info"))
    );
    s.act(|e, inc, _| e.edit_text(inc, P, "impact", "checkout"))
        .unwrap();
    assert_eq!(s.inc.response.impact, "checkout");
    assert_eq!(s.log.last().unwrap().kind, "i_r_impact");
}

#[test]
fn wake_with_force_escalate_rearms() {
    // spec: RSP-042
    let (r, d) = esc3(vec![B]);
    let mut s = Scenario::start(r, d);
    s.at(1.0);
    s.act(|e, inc, r| e.snooze(inc, A, 60, "console", Some(r)))
        .unwrap();
    s.at(10.0);
    s.act(|e, inc, r| e.wake(inc, A, Some(r))).unwrap();
    assert_eq!(s.inc.response.snoozed_before, 0);
    assert_eq!(
        s.inc
            .response
            .escalation
            .as_ref()
            .unwrap()
            .escalate_deadline,
        m(40.0)
    );
    // Waking again is a no-op.
    let n = s.log.len();
    s.act(|e, inc, r| e.wake(inc, A, Some(r))).unwrap();
    assert_eq!(s.log.len(), n);
}

#[test]
fn deleted_rule_clears_the_state() {
    // spec: RSP-139
    let mut s = Scenario::start(esc1(), dir());
    s.rule.status = RuleStatus::Disabled;
    s.at(60.0);
    assert_eq!(s.assigns().len(), 1);
    assert!(s.inc.response.escalation.is_none());
    assert_eq!(s.responders(), vec![A]);
}

#[test]
fn stale_timers_do_nothing() {
    // Idempotency: a timer whose instant the state no longer holds is ignored, so a step
    // replayed after a crash cannot fire twice.
    let mut s = Scenario::start(esc1(), dir());
    s.at(15.0);
    let before = s.inc.clone();
    let mut e = Engine::new(s.now, &s.dir, &mut s.ids);
    let mut inc = s.inc.clone();
    assert!(!e.on_timer(&mut inc, TimerKind::Escalate, m(15.0), Some(&s.rule)));
    assert!(e.out.timeline.is_empty());
    assert_eq!(inc, before);
}

#[test]
fn auto_close_timeout_modes() {
    // spec: RSP-055 (LIFE-2), RSP-050 (`autorslv`)
    let mut inc = incident(m(0.0));
    inc.last_merge_time = m(30.0);
    assert_eq!(auto_close_at(&inc, 3600, "update"), Some(m(90.0)));
    assert_eq!(auto_close_at(&inc, 3600, "trigger"), Some(m(60.0)));
    assert_eq!(auto_close_at(&inc, 7200, "trigger"), Some(m(120.0)));
    assert_eq!(auto_close_at(&inc, 0, "trigger"), None);
    inc.channel_id = 0;
    assert_eq!(auto_close_at(&inc, 3600, "trigger"), None, "RSP-007");
    let mut s = esc8();
    s.act(|e, inc, _| {
        e.on_timer(inc, TimerKind::AutoClose, m(60.0), None);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.inc.close_source, "autorslv");
    assert_eq!(s.inc.closer_id, 0);
}

#[test]
fn rule_validation_names_the_bad_part() {
    // spec: response.md 1.12 validation
    let mut ok = esc8().rule;
    assert!(validate_rule(&mut ok).is_ok());
    type Mutation = Box<dyn Fn(&mut EscalationRule)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|r| r.rule_name = String::new()), "rule_name"),
        (Box::new(|r| r.rule_name = "x".repeat(40)), "rule_name"),
        (Box::new(|r| r.aggr_window = 3601), "aggr_window"),
        (Box::new(|r| r.priority = 201), "priority"),
        (Box::new(|r| r.layers.clear()), "layers"),
        (
            Box::new(|r| r.layers[0].escalate_window = 0),
            "layers[0].escalate_window",
        ),
        (
            Box::new(|r| r.layers[1].max_times = 7),
            "layers[1].max_times",
        ),
        (
            Box::new(|r| r.layers[0].notify_step = 0.7),
            "layers[0].notify_step",
        ),
        (
            Box::new(|r| r.layers[0].target.person_ids = vec![]),
            "layers[0].target",
        ),
        (
            Box::new(|r| r.layers[0].target.person_ids = vec![1, 1]),
            "layers[0].target.person_ids",
        ),
        (
            Box::new(|r| r.layers[0].target.by = None),
            "layers[0].target",
        ),
        (
            Box::new(|r| {
                r.layers[0].target.webhooks = vec![GroupChatTarget {
                    kind: "wecom_app".into(),
                    settings: serde_json::json!({}),
                }]
            }),
            "layers[0].target.webhooks[0].type",
        ),
        (
            Box::new(|r| r.filters = vec![vec![Condition::is_in("nope", ["x"])]]),
            "filters",
        ),
        (
            Box::new(|r| {
                r.time_filters = vec![TimeFilter {
                    start: "25:00".into(),
                    end: "09:00".into(),
                    repeat: vec![],
                    cal_id: String::new(),
                    is_off: false,
                }]
            }),
            "time_filters[0].start",
        ),
    ];
    for (mutate, field) in cases {
        let mut r = esc8().rule;
        mutate(&mut r);
        let err = validate_rule(&mut r).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    // `teams` is read as `teams_app` (1.12).
    let mut r = esc8().rule;
    r.layers[0].target.webhooks = vec![GroupChatTarget {
        kind: "teams".into(),
        settings: serde_json::json!({"integration_id": 1, "chat_ids": ["x"]}),
    }];
    validate_rule(&mut r).unwrap();
    assert_eq!(r.layers[0].target.webhooks[0].kind, "teams_app");
}

#[test]
fn outlier_candidates_of_the_same_second_follow_creation_order() {
    // spec: RSP-452 (with RSP-451's tie-break: event times are whole seconds)
    use super::similarity::Candidate;
    let mut x = incident(m(0.0));
    x.incident_id = "x".into();
    x.title = "payments down".into();
    let mut y = x.clone();
    y.incident_id = "y".into();
    // A stored incident of the same second was created before x: it precedes x.
    y.created_at = x.created_at - 300;
    let (cx, cy) = (Candidate::of(&x), Candidate::of(&y));
    assert!(cx.is_similar_predecessor(&cy));
    assert!(!cy.is_similar_predecessor(&cx));
    // Two incidents of one batch share their creation time: the batch order decides.
    y.created_at = x.created_at;
    let (mut first, mut second) = (Candidate::of(&y), Candidate::of(&x));
    first.created.1 = 1;
    second.created.1 = 2;
    assert!(second.is_similar_predecessor(&first));
    assert!(!first.is_similar_predecessor(&second));
    // A later start second is never a predecessor, whatever the creation order.
    let mut later = Candidate::of(&y);
    later.start_time += 1_000;
    later.created = (x.created_at - 300, 0);
    assert!(!cx.is_similar_predecessor(&later));
}

#[test]
fn past_incidents_order_and_window() {
    // spec: RSP-451
    use super::similarity::past_incidents;
    let x = incident(m(0.0));
    let day = 86_400_000;
    let past = |id: &str, days_ago: i64, title: &str, rc: &str, res: &str| {
        let mut y = incident(m(0.0) - days_ago * day);
        y.incident_id = id.into();
        y.title = title.into();
        y.progress = Progress::Closed;
        y.close_time = y.start_time + 1;
        y.response.root_cause = rc.into();
        y.response.resolution = res.into();
        y
    };
    let mut open = past("open", 1, "payments down", "", "");
    open.progress = Progress::Triggered;
    open.close_time = 0;
    let mut other_channel = past("other", 1, "payments down", "", "");
    other_channel.channel_id = 99;
    let candidates = vec![
        past("recent", 1, "payments down", "", ""),
        past("older", 2, "payments down", "", ""),
        past("documented", 3, "payments down", "disk", "grew it"),
        past("half", 4, "payments down", "disk", ""),
        past("too-old", 31, "payments down", "", ""),
        past("unlike", 1, "checkout latency high", "", ""),
        open,
        other_channel,
    ];
    let got: Vec<&str> = past_incidents(&x, &candidates)
        .iter()
        .map(|(y, _)| y.incident_id.as_str())
        .collect();
    assert_eq!(got, vec!["documented", "half", "recent", "older"]);
    let mut global = x.clone();
    global.channel_id = 0;
    assert!(past_incidents(&global, &candidates).is_empty(), "RSP-007");

    // Event times are whole seconds: an incident of the same second created before x is a
    // past one of it, one created after it is not.
    let mut same_second = past("same-second", 0, "payments down", "", "");
    same_second.created_at = x.created_at - 300;
    let mut later = past("later", 0, "payments down", "", "");
    later.created_at = x.created_at + 300;
    let candidates = vec![same_second, later];
    let got: Vec<&str> = past_incidents(&x, &candidates)
        .iter()
        .map(|(y, _)| y.incident_id.as_str())
        .collect();
    assert_eq!(got, vec!["same-second"]);
}

#[test]
fn life_1_merge() {
    // spec: RSP-100 (LIFE-1)
    let d = dir();
    let mut ids = CountingIds::default();
    let t = m(60.0);
    let mut i1 = incident(m(0.0));
    i1.response.responders = vec![Responder {
        person_id: A,
        assigned_at: m(0.0),
        acknowledged_at: 0,
        as_: ResponderAs::Assignee,
    }];
    let mut i2 = incident(m(1.0));
    i2.incident_id = "6800000000000000000000bb".into();
    i2.num = "0000BB".into();
    i2.progress = Progress::Processing;
    i2.response.responders = vec![Responder {
        person_id: B,
        assigned_at: m(1.0),
        acknowledged_at: m(2.0),
        as_: ResponderAs::Assignee,
    }];
    let mut source_engine = Engine::new(t, &d, &mut ids);
    source_engine.merged_away(&mut i2, P, &i1);
    let src = source_engine.out;
    let kinds: Vec<&str> = src.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["i_merge", "i_rslv"]);
    assert_eq!(src.timeline[1].detail["from"], "console");
    assert!(!src.close_alerts, "the alerts moved to the target");
    assert_eq!((i2.progress, i2.closer_id), (Progress::Closed, P));

    let mut target_engine = Engine::new(t, &d, &mut ids);
    target_engine
        .merge_target(&mut i1, P, &[&i2], None, "same root cause")
        .unwrap();
    let out = target_engine.out;
    assert!(out.notifications.is_empty(), "nobody is notified");
    assert_eq!(out.timeline.len(), 1);
    assert_eq!(
        out.timeline[0].detail["source_responders"],
        serde_json::json!([B])
    );
    assert_eq!(out.timeline[0].detail["comment"], "same root cause");
    let rs: Vec<(i64, ResponderAs, Millis)> = i1
        .response
        .responders
        .iter()
        .map(|r| (r.person_id, r.as_, r.acknowledged_at))
        .collect();
    assert_eq!(
        rs,
        vec![(A, ResponderAs::Assignee, 0), (B, ResponderAs::Merged, 0)]
    );
    assert_eq!(i1.progress, Progress::Triggered);
    check_invariants(&i1, t).unwrap();
    check_invariants(&i2, t).unwrap();
    // A closed target is refused (RSP-100 a).
    let mut closed = i2.clone();
    let mut e = Engine::new(t, &d, &mut ids);
    assert!(matches!(
        e.merge_target(&mut closed, P, &[&i1], None, ""),
        Err(ActionError::FailedPrecondition(_))
    ));
}

#[test]
fn esc_10_storm_warnings() {
    // spec: RSP-200, RSP-201 (ESC-10)
    let mut l0 = persons(&[A]);
    l0.webhooks = vec![GroupChatTarget {
        kind: "feishu".into(),
        settings: serde_json::json!({"token_or_url": "t"}),
    }];
    let mut s = Scenario::start(rule(vec![level(l0, 30)]), dir());
    s.at(5.0);
    s.act(|e, inc, r| e.acknowledge(inc, A, "console", Some(r)))
        .unwrap();
    let thresholds = [50, 200];
    let before = s.sent.len();
    s.at(20.0);
    s.inc.alert_cnt = 50;
    s.act(|e, inc, r| {
        e.check_storm(inc, &thresholds, Some(r));
        Ok(())
    })
    .unwrap();
    let storms: Vec<i64> = s
        .log
        .iter()
        .filter(|e| e.kind == "i_storm")
        .map(|e| e.detail["threshold"].as_i64().unwrap())
        .collect();
    assert_eq!(storms, vec![50]);
    assert_eq!(s.inc.storm_level, 50);
    let fired: Vec<&Notification> = s.sent[before..].iter().collect();
    assert!(fired.iter().all(|n| n.reason == "storm"));
    assert!(
        fired.iter().any(|n| n.person_id == A),
        "even though A acknowledged"
    );
    assert!(
        fired.iter().any(|n| n.channel == "feishu"),
        "the level's chats too"
    );
    assert_eq!(s.inc.progress, Progress::Processing, "progress unchanged");

    // 120 → 230 at once: one entry, one firing.
    s.at(40.0);
    s.inc.alert_cnt = 230;
    let firings_before = s.log.iter().filter(|e| e.kind == "i_notify").count();
    s.act(|e, inc, r| {
        e.check_storm(inc, &thresholds, Some(r));
        Ok(())
    })
    .unwrap();
    assert_eq!(s.log.iter().filter(|e| e.kind == "i_storm").count(), 2);
    assert_eq!(
        s.log.iter().filter(|e| e.kind == "i_notify").count(),
        firings_before + 1
    );
    // Down to 40 and back to 60: nothing new.
    for cnt in [40, 60] {
        s.inc.alert_cnt = cnt;
        s.act(|e, inc, r| {
            e.check_storm(inc, &thresholds, Some(r));
            Ok(())
        })
        .unwrap();
    }
    assert_eq!(s.log.iter().filter(|e| e.kind == "i_storm").count(), 2);
}

#[test]
fn flapping_incident_is_muted_for_life() {
    // spec: RSP-204, RSP-206
    let mut l0 = level(persons(&[A]), 15);
    l0.max_times = 2;
    let r = rule(vec![l0, level(persons(&[B]), 15)]);
    let d = dir();
    let mut ids = CountingIds::default();
    let mut inc = incident(ten());
    inc.is_flapping = true;
    let tz = TimeZone::get("Asia/Shanghai").unwrap();
    let mut e = Engine::new(ten(), &d, &mut ids);
    e.on_auto_created(
        &mut inc,
        std::slice::from_ref(&r),
        &MatchContext {
            tz: &tz,
            calendars: Calendars::default(),
        },
        Some(FlappingMute {
            max_changes: 4,
            in_mins: 60,
            mute_mins: 120,
        }),
    );
    let out = e.out;
    let kinds: Vec<&str> = out.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec!["i_new", "i_m_flapping", "i_assign"]);
    assert_eq!(out.timeline[1].detail["mute_mins"], 120);
    assert!(out.notifications.is_empty(), "nothing is sent");
    assert!(inc.response.ever_muted);
    assert_eq!(inc.response.responders.len(), 1, "responders are recorded");
    assert!(pending_timers(&inc).is_empty(), "no repeat, no escalation");
    // A manual escalation notifies and clears the mute (RSP-206).
    let mut e = Engine::new(ten() + MIN, &d, &mut ids);
    let rid = r.rule_id.clone();
    e.escalate_to(&mut inc, P, Some(&r), &rid, 1).unwrap();
    assert!(!e.out.notifications.is_empty());
    assert!(!inc.response.escalation.as_ref().unwrap().muted);
}

#[test]
fn same_instant_steps_apply_in_rsp_165_order() {
    // spec: RSP-165
    // The order itself: auto-close, snooze expiry, delayed assignment, escalation, repeat; the
    // stored rank follows it, so claims come out in this order within an instant.
    let mut kinds = vec![
        TimerKind::Refire,
        TimerKind::Escalate,
        TimerKind::Delay,
        TimerKind::SnoozeEnd,
        TimerKind::AutoClose,
    ];
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            TimerKind::AutoClose,
            TimerKind::SnoozeEnd,
            TimerKind::Delay,
            TimerKind::Escalate,
            TimerKind::Refire,
        ]
    );
    assert!(kinds.windows(2).all(|w| w[0].rank() < w[1].rank()));

    // An auto-close timeout falling due at the escalation deadline runs first; the
    // escalation then re-checks its conditions, finds the incident Closed, and does nothing.
    let mut s = Scenario::start(esc1(), dir());
    s.now = m(15.0);
    let rule = s.rule.clone();
    let mut due = vec![
        (TimerKind::Escalate, m(15.0)),
        (TimerKind::AutoClose, m(15.0)),
    ];
    due.sort_by_key(|(k, at)| (*at, k.rank()));
    for (kind, at) in due {
        s.act(|e, inc, _| {
            e.on_timer(inc, kind, at, Some(&rule));
            Ok(())
        })
        .unwrap();
    }
    assert_eq!(s.inc.progress, Progress::Closed);
    assert_eq!(s.inc.close_source, "autorslv");
    assert_eq!(s.assigns().len(), 1, "no level-1 entry after the close");
    assert_eq!(s.firings().len(), 1);

    // A repeat due at the same instant as a delayed assignment runs after it: the delayed
    // assignment fires level 0 once, and the repeat (not yet armed) adds nothing.
    let mut r = esc9();
    r.layers[0].max_times = 2;
    let mut s = Scenario::start(r, dir());
    s.at(2.0);
    assert_eq!(s.firings().len(), 1);
    assert_eq!(s.assigns(), vec![(m(2.0), "assign".into(), 0, vec![A])]);
}

#[test]
fn snooze_suppresses_no_comment_action_or_auto_close() {
    // spec: RSP-044
    let mut s = Scenario::start(esc1(), dir());
    s.at(1.0);
    s.act(|e, inc, r| e.snooze(inc, A, 60, "console", Some(r)))
        .unwrap();
    assert!(s.inc.response.is_snoozed(s.now));
    // Comments and edits while snoozed are recorded as usual.
    s.at(5.0);
    s.act(|e, inc, _| e.comment(inc, A, "looking", false))
        .unwrap();
    s.act(|e, inc, _| e.edit_text(inc, A, "title", "payments still down"))
        .unwrap();
    assert_eq!(s.inc.title, "payments still down");
    // A manual action (adding a responder) is not held back by the snooze: B is notified now.
    s.act(|e, inc, _| {
        e.add_responders(
            inc,
            A,
            &DirectTargets {
                person_ids: vec![B],
                ..DirectTargets::default()
            },
        )
    })
    .unwrap();
    assert!(
        s.firings()
            .iter()
            .any(|(t, _, p)| *t == m(5.0) && p == &vec![B])
    );
    // The auto-close timeout closes a snoozed incident.
    s.now = m(30.0);
    s.act(|e, inc, _| {
        e.on_timer(inc, TimerKind::AutoClose, m(30.0), None);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.inc.progress, Progress::Closed);
    let kinds = s.kinds();
    assert!(kinds.contains(&"i_comm"));
    assert!(kinds.contains(&"i_rslv"));
}

#[test]
fn comments_and_edits_never_move_the_deadline_or_repeats() {
    // spec: RSP-166
    let plain = {
        let mut s = Scenario::start(esc2(12, 2, 5.0), dir());
        s.at(60.0);
        s.firings()
    };
    let mut s = Scenario::start(esc2(12, 2, 5.0), dir());
    s.at(3.0);
    let before = s.inc.response.escalation.clone();
    s.act(|e, inc, _| e.comment(inc, B, "on it soon", false))
        .unwrap();
    s.act(|e, inc, _| e.edit_text(inc, B, "description", "card declines"))
        .unwrap();
    assert_eq!(s.inc.response.escalation, before);
    s.at(60.0);
    assert_eq!(s.firings(), plain);
}

#[test]
fn delay_window_applies_to_the_first_assignment_only() {
    // spec: RSP-161
    let mut s = Scenario::start(esc9(), dir());
    s.at(2.0);
    assert_eq!(s.assigns().len(), 1);
    // A manual escalation to level 1 fires at once, without a new delay window.
    s.at(3.0);
    let rule = s.rule.clone();
    s.act(|e, inc, _| e.escalate_to(inc, P, Some(&rule), &rule.rule_id, 1))
        .unwrap();
    assert_eq!(s.assigns()[1], (m(3.0), "escalate".into(), 1, vec![LEAD]));
    assert!(
        s.firings()
            .iter()
            .any(|(t, _, p)| *t == m(3.0) && p == &vec![LEAD])
    );
    // A reassignment does not wait either.
    s.at(4.0);
    s.act(|e, inc, _| {
        e.reassign(
            inc,
            P,
            &DirectTargets {
                person_ids: vec![B],
                ..DirectTargets::default()
            },
        )
    })
    .unwrap();
    assert_eq!(s.assigns()[2].0, m(4.0));
    assert!(
        s.firings()
            .iter()
            .any(|(t, _, p)| *t == m(4.0) && p == &vec![B])
    );
}

#[test]
fn manual_close_keeps_status_and_end_time() {
    // spec: RSP-054
    let mut s = Scenario::start(esc1(), dir());
    s.at(5.0);
    s.act(|e, inc, _| {
        e.close(inc, P, "console", None, None);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.inc.progress, Progress::Closed);
    assert_eq!(
        s.inc.incident_status,
        Status::Critical,
        "a closed incident can be unresolved"
    );
    assert_eq!(s.inc.end_time, 0);
    assert_eq!(s.inc.close_source, "console");
}

#[test]
fn removed_level_stops_repeats_and_escalations() {
    // spec: RSP-138
    let mut r = esc1();
    r.layers[1].max_times = 3;
    r.layers[1].notify_step = 5.0;
    let mut s = Scenario::start(r, dir());
    s.at(15.0);
    assert_eq!(s.assigns().last().unwrap().2, 1, "escalated to level 1");
    let fired = s.firings().len();
    // Level 1 is removed from the rule: the steps read the current rule and stop.
    s.rule.layers.truncate(1);
    s.at(120.0);
    assert_eq!(s.firings().len(), fired);
}

#[test]
fn direct_assignment_fires_by_preference_without_chats() {
    // spec: RSP-157
    let mut d = dir();
    d.prefs
        .insert((B, Severity::Critical), vec!["sms".into(), "email".into()]);
    // The rule's level sends voice only and posts to a group chat.
    let l0 = Target {
        person_ids: vec![A],
        by: Some(By {
            follow_preference: false,
            critical: vec!["voice".into()],
            ..By::default()
        }),
        webhooks: vec![GroupChatTarget {
            kind: "feishu".into(),
            settings: serde_json::json!({"token_or_url": "abc"}),
        }],
        ..Target::default()
    };
    let mut s = Scenario::start(rule(vec![level(l0, 15)]), d);
    let first = s.sent.len();
    assert!(s.sent.iter().any(|n| n.person_id == 0), "the rule's chat");
    s.at(1.0);
    s.act(|e, inc, _| {
        e.reassign(
            inc,
            P,
            &DirectTargets {
                person_ids: vec![B],
                ..DirectTargets::default()
            },
        )
    })
    .unwrap();
    let direct: Vec<(i64, String)> = s.sent[first..]
        .iter()
        .map(|n| (n.person_id, n.channel.clone()))
        .collect();
    assert_eq!(direct, vec![(B, "sms".into()), (B, "email".into())]);
    let notify = s.log.iter().rfind(|e| e.kind == "i_notify").unwrap();
    assert!(notify.detail["chats"].as_array().unwrap().is_empty());
    assert!(notify.detail["robots"].as_array().unwrap().is_empty());
}

#[test]
fn later_changes_never_rematch_the_rules() {
    // spec: RSP-131
    // The only rule matches Info incidents; this one is created Critical and stays unassigned.
    let mut r = rule(vec![level(persons(&[A]), 15)]);
    r.filters = vec![vec![Condition::is_in("severity", ["Info"])]];
    let mut s = Scenario::start(r, dir());
    assert!(s.assigns().is_empty());
    assert!(s.sent.is_empty());
    // Its severity is edited to Info and time passes: no new matching, nobody notified.
    s.at(1.0);
    s.act(|e, inc, _| {
        e.edit_severity(inc, P, Severity::Info);
        Ok(())
    })
    .unwrap();
    assert_eq!(s.inc.incident_severity, Severity::Info);
    s.at(120.0);
    assert!(s.assigns().is_empty());
    assert!(s.sent.is_empty());
    assert!(s.inc.response.assigned_to.is_none());
}

#[test]
fn an_empty_team_level_notifies_only_group_chats() {
    // spec: RSP-154, RSP-153
    let l0 = Target {
        team_ids: vec![TEAM_EMPTY],
        by: Some(By {
            follow_preference: true,
            ..By::default()
        }),
        webhooks: vec![GroupChatTarget {
            kind: "feishu".into(),
            settings: serde_json::json!({"token_or_url": "abc"}),
        }],
        ..Target::default()
    };
    let s = Scenario::start(rule(vec![level(l0, 15)]), dir());
    assert!(s.responders().is_empty());
    assert!(s.sent.iter().all(|n| n.person_id == 0), "no direct message");
    assert_eq!(s.sent.len(), 1, "the group chat is posted to");
    assert_eq!(s.sent[0].channel, "feishu");
    assert_eq!(s.assigns().len(), 1, "the level is entered all the same");
}

#[test]
fn reopened_recovered_incident_stays_ok() {
    // spec: RSP-072 (first sentence; the old alerts absorbing nothing is merge.rs
    // `closed_or_resolved_candidate_absorbs_nothing`)
    let mut s = Scenario::start(esc1(), dir());
    s.at(10.0);
    // Every alert recovered: ingestion set Ok and closed it; the response side records it.
    s.inc.incident_status = Status::Ok;
    s.inc.end_time = m(10.0);
    s.inc.progress = Progress::Closed;
    s.inc.close_time = m(10.0);
    s.inc.close_source = "event".into();
    s.act(|e, inc, _| {
        e.on_event_closed(inc);
        Ok(())
    })
    .unwrap();
    s.at(30.0);
    let tz = TimeZone::get("Asia/Shanghai").unwrap();
    let ctx = MatchContext {
        tz: &tz,
        calendars: Calendars::default(),
    };
    s.act(|e, inc, r| e.reopen(inc, P, "recurred", Some(r), &[], &ctx))
        .unwrap();
    assert_eq!(s.inc.progress, Progress::Triggered);
    assert_eq!(s.inc.incident_status, Status::Ok);
    assert_eq!(s.inc.end_time, m(10.0));
}

#[test]
fn reorder_lists_every_rule_once() {
    // spec: RSP-137
    let rules: Vec<EscalationRule> = ["a", "b", "c"]
        .iter()
        .zip([0, 5, 9])
        .map(|(id, p)| {
            let mut r = rule(vec![]);
            r.rule_id = (*id).into();
            r.priority = p;
            r
        })
        .collect();
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        reorder_priorities(&rules, &ids(&["c", "a", "b"])),
        Ok(vec![("c".into(), 0), ("a".into(), 1), ("b".into(), 2)])
    );
    let missing = reorder_priorities(&rules, &ids(&["c", "a"])).unwrap_err();
    assert!(missing.contains("b is missing"), "{missing}");
    let twice = reorder_priorities(&rules, &ids(&["c", "a", "a", "b"])).unwrap_err();
    assert!(twice.contains("a is listed twice"), "{twice}");
    let foreign = reorder_priorities(&rules, &ids(&["c", "a", "b", "x"])).unwrap_err();
    assert!(foreign.contains("x is not a rule"), "{foreign}");
    assert_eq!(reorder_priorities(&[], &[]), Ok(vec![]));
}

/// The channels of each direct send from `from` on, in order.
fn direct_sends(s: &Scenario, from: usize) -> Vec<(i64, String)> {
    s.sent[from..]
        .iter()
        .filter(|n| n.person_id != 0)
        .map(|n| (n.person_id, n.channel.clone()))
        .collect()
}

#[test]
fn unified_settings_ignore_preferences() {
    // spec: RSP-330, RSP-155 (a)
    let mut d = dir();
    d.prefs.insert((A, Severity::Critical), vec!["sms".into()]);
    let unified = Target {
        person_ids: vec![A],
        by: Some(By {
            follow_preference: false,
            critical: vec!["voice".into(), "email".into()],
            ..By::default()
        }),
        ..Target::default()
    };
    let s = Scenario::start(rule(vec![level(unified, 15)]), d.clone_prefs());
    assert_eq!(
        direct_sends(&s, 0),
        vec![(A, "voice".into()), (A, "email".into())]
    );
    // The same member under a level that follows preferences gets their list.
    let s = Scenario::start(rule(vec![level(persons(&[A]), 15)]), d);
    assert_eq!(direct_sends(&s, 0), vec![(A, "sms".into())]);
}

#[test]
fn a_preference_change_affects_the_next_firing_only() {
    // spec: RSP-331
    let mut l0 = level(persons(&[A]), 0);
    l0.max_times = 2;
    l0.notify_step = 10.0;
    let mut s = Scenario::start(rule(vec![l0]), dir());
    let first: Vec<(i64, String)> = direct_sends(&s, 0);
    assert_eq!(
        first,
        vec![(A, "email".into()), (A, "sms".into()), (A, "voice".into())],
        "OQ-24 defaults before any change"
    );
    // A changes their Critical list after the first firing was dispatched.
    s.at(5.0);
    s.dir
        .prefs
        .insert((A, Severity::Critical), vec!["voice".into()]);
    let before = s.sent.len();
    s.at(10.0);
    assert_eq!(direct_sends(&s, before), vec![(A, "voice".into())]);
    // What the first firing decided is untouched.
    assert_eq!(direct_sends(&s, 0)[..3], first[..]);
}

#[test]
fn a_preference_naming_an_integration_sends_through_it() {
    // spec: response.md 1.15 (integration_id picks one IM instance), RSP-157
    let mut d = dir();
    d.pref_entries.insert(
        (B, Severity::Critical),
        vec![
            super::PrefChannel {
                channel: "slack_app".into(),
                integration_id: Some(42),
            },
            super::PrefChannel::new("slack_app"),
            super::PrefChannel::new("email"),
        ],
    );
    let mut s = Scenario::start(rule(vec![level(persons(&[A]), 15)]), d);
    let first = s.sent.len();
    s.at(1.0);
    s.act(|e, inc, _| {
        e.reassign(
            inc,
            P,
            &DirectTargets {
                person_ids: vec![B],
                ..DirectTargets::default()
            },
        )
    })
    .unwrap();
    let sent: Vec<(String, serde_json::Value)> = s.sent[first..]
        .iter()
        .map(|n| (n.channel.clone(), n.target.clone()))
        .collect();
    assert_eq!(
        sent,
        vec![
            (
                "slack_app".into(),
                serde_json::json!({"integration_id": 42})
            ),
            ("slack_app".into(), serde_json::Value::Null),
            ("email".into(), serde_json::Value::Null),
        ]
    );
}
