//! Incremental derivation (an incident's aggregate plus the changed alert) against the full
//! one ([`derive_incident`] over every alert) over random event sequences: joins (ING-159),
//! significant and non-significant merges that raise or lower the status (ING-116…120),
//! resolutions (ING-121), expiries with and without grouping into the same incident (ING-113),
//! auto-resolution (ING-200) and manual severity overrides (ING-172).

use proptest::prelude::*;

use super::*;
use crate::grouping::join;
use crate::ids::CountingIds;
use crate::model::{DAY_MS, EventOrigin, Labels, NewEvent};

const T0: Millis = 1_700_000_000_000;
const MIN: Millis = 60_000;

#[derive(Debug, Clone)]
enum Op {
    /// A new alert of this status (1–3) joins the incident.
    Join { status: usize, dt: i64 },
    /// An event for an active alert: status 0 resolves it, 1–3 trigger.
    Event {
        pick: usize,
        status: usize,
        retitle: bool,
        relabel: bool,
        dt: i64,
    },
    /// The alert's key fires again a day later: it expires and a new alert opens, which joins
    /// the incident (grouping) or keeps its own.
    Expire {
        pick: usize,
        status: usize,
        rejoin: bool,
    },
    /// A person sets the incident's severity.
    Override { severity: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..4, -120i64..120).prop_map(|(status, dt)| Op::Join { status, dt }),
        6 => (0usize..64, 0usize..4, any::<bool>(), any::<bool>(), -120i64..120).prop_map(
            |(pick, status, retitle, relabel, dt)| Op::Event {
                pick,
                status,
                retitle,
                relabel,
                dt,
            }
        ),
        1 => (0usize..64, 1usize..4, any::<bool>())
            .prop_map(|(pick, status, rejoin)| Op::Expire { pick, status, rejoin }),
        1 => (0usize..3).prop_map(|severity| Op::Override { severity }),
    ]
}

fn status(i: usize) -> Status {
    [Status::Ok, Status::Info, Status::Warning, Status::Critical][i % 4]
}

fn ev(key: &str, status: Status, title: &str, host: &str, at: Millis) -> QueuedEvent {
    QueuedEvent {
        seq: 1,
        origin: EventOrigin {
            request_id: "0123456789abcdef0123456789abcdef".to_string(),
            account_id: 1,
            integration_id: 10,
            integration_type: "standard".to_string(),
            integration_name: "Std".to_string(),
            channel_id: 100,
            received_at: at,
        },
        event: NewEvent {
            alert_key: key.to_string(),
            event_status: status,
            event_severity: status.severity(),
            title: title.to_string(),
            title_rule: String::new(),
            description: String::new(),
            labels: Labels::from([("host".to_string(), host.to_string())]),
            images: Vec::new(),
            event_time: at,
            raw: String::new(),
        },
    }
}

/// One incident and every alert in it, driven like the inbox batch drives them.
struct Sim {
    incident: Incident,
    alerts: Vec<Alert>,
    /// Maintained one change at a time, never rebuilt.
    members: Members,
    now: Millis,
    ids: CountingIds,
    keys: usize,
}

impl Sim {
    fn new() -> Sim {
        let mut ids = CountingIds::default();
        let fx = process_event(&ev("k0", Status::Warning, "t", "a", T0), None, T0, &mut ids);
        let alert = fx.alerts[0].clone();
        Sim {
            incident: fx.incidents[0].clone(),
            members: Members::of([&AlertSummary::from(&alert)]),
            alerts: vec![alert],
            now: T0,
            ids,
            keys: 1,
        }
    }

    fn summaries(&self) -> Vec<AlertSummary> {
        self.alerts.iter().map(AlertSummary::from).collect()
    }

    fn active(&self, pick: usize) -> Option<usize> {
        let active: Vec<usize> = (0..self.alerts.len())
            .filter(|i| self.alerts[*i].is_active())
            .collect();
        (!active.is_empty()).then(|| active[pick % active.len()])
    }

    fn new_key(&mut self) -> String {
        self.keys += 1;
        format!("k{}", self.keys)
    }

    /// ING-159: `fx` opened a new alert; it joins the incident. Checks the result against
    /// [`derive_incident`] over every alert and takes it.
    fn join(&mut self, mut fx: Effects) -> Result<(), TestCaseError> {
        let new_id = fx.incidents[0].incident_id.clone();
        // The store's view: the aggregate with this event's changes to the incident's alerts.
        let mut members = self.members.clone();
        let mut after: Vec<Alert> = self.alerts.clone();
        for a in fx
            .alerts
            .iter()
            .filter(|a| a.incident_id == self.incident.incident_id)
        {
            if let Some(pos) = after.iter().position(|b| b.alert_id == a.alert_id) {
                members.replace(&AlertSummary::from(&after[pos]), &AlertSummary::from(a));
                after[pos] = a.clone();
            }
        }
        let before = self.incident.clone();
        prop_assert!(join(&mut fx, &new_id, &before, &members, self.now));
        // The rows as the event leaves them (join undoes an auto-resolution by the expiry).
        let mut joined = None;
        for a in &fx.alerts {
            match after.iter().position(|b| b.alert_id == a.alert_id) {
                Some(pos) => after[pos] = a.clone(),
                None if a.incident_id == before.incident_id => joined = Some(a.clone()),
                None => {}
            }
        }
        let Some(joined) = joined else {
            return Err(TestCaseError::fail("the new alert did not join"));
        };
        after.push(joined.clone());
        let full: Vec<AlertSummary> = after.iter().map(AlertSummary::from).collect();
        let mut want = derive_incident(&before, &full, self.now);
        want.last_merge_time = self.now;
        want.updated_at = self.now;
        prop_assert_eq!(&fx.incidents, &vec![want.clone()]);
        prop_assert!(fx.close_incident_id.is_empty());
        members.add(&AlertSummary::from(&joined));
        self.members = members;
        self.alerts = after;
        self.incident = want;
        Ok(())
    }

    /// The incident's re-derivation in `fx` (if any) after alert `pos` changed.
    fn settled(&mut self, fx: &Effects, pos: usize) -> Result<(), TestCaseError> {
        let old = self.alerts[pos].clone();
        let Some(new) = fx
            .alerts
            .iter()
            .find(|a| a.alert_id == old.alert_id)
            .cloned()
        else {
            // An exact duplicate: nothing changes.
            prop_assert!(
                fx.incidents
                    .iter()
                    .all(|i| i.incident_id != old.incident_id)
            );
            return Ok(());
        };
        let mut full = self.summaries();
        full[pos] = AlertSummary::from(&new);
        let before = self.incident.clone();
        let mut want = derive_incident(&follow_first_alert(&before, &new), &full, self.now);
        let got: Vec<&Incident> = fx
            .incidents
            .iter()
            .filter(|i| i.incident_id == before.incident_id)
            .collect();
        if want == before {
            prop_assert!(got.is_empty(), "unchanged, yet re-derived: {:?}", got);
        } else {
            want.updated_at = self.now;
            prop_assert_eq!(got, vec![&want]);
            self.incident = want.clone();
        }
        let resolved =
            before.progress != Progress::Closed && self.incident.progress == Progress::Closed;
        prop_assert_eq!(new.closed, resolved || old.closed);
        let others_close = resolved && full.len() > 1;
        prop_assert_eq!(fx.close_incident_id.is_empty(), !others_close);
        if others_close {
            prop_assert_eq!(&fx.close_incident_id, &before.incident_id);
            for a in &mut self.alerts {
                if !a.closed {
                    a.closed = true;
                    a.close_time = fx.close_time;
                }
            }
        }
        self.members
            .replace(&AlertSummary::from(&old), &AlertSummary::from(&new));
        self.alerts[pos] = new;
        Ok(())
    }

    fn candidate(&self, pos: usize) -> Candidate {
        Candidate {
            alert: self.alerts[pos].clone(),
            incident: Some(self.incident.clone()),
            members: self.members.clone(),
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.now += MIN;
        match *op {
            Op::Join { status: s, dt } => {
                let key = self.new_key();
                let q = ev(&key, status(s), "t", "a", self.now + dt * MIN);
                let fx = process_event(&q, None, self.now, &mut self.ids);
                self.join(fx)?;
            }
            Op::Event {
                pick,
                status: s,
                retitle,
                relabel,
                dt,
            } => {
                let Some(pos) = self.active(pick) else {
                    return Ok(());
                };
                let a = &self.alerts[pos];
                let title = if retitle {
                    format!("{}+", a.title)
                } else {
                    a.title.clone()
                };
                let host = if relabel { "b" } else { "a" };
                let q = ev(
                    &a.alert_key.clone(),
                    status(s),
                    &title,
                    host,
                    self.now + dt * MIN,
                );
                let c = self.candidate(pos);
                if c.alert.is_expired(self.now) {
                    return Ok(());
                }
                let fx = process_event(&q, Some(c), self.now, &mut self.ids);
                self.settled(&fx, pos)?;
            }
            Op::Expire {
                pick,
                status: s,
                rejoin,
            } => {
                let Some(pos) = self.active(pick) else {
                    return Ok(());
                };
                self.now = self.now.max(self.alerts[pos].created_at + DAY_MS);
                let key = self.alerts[pos].alert_key.clone();
                let q = ev(&key, status(s), "t", "a", self.now);
                let fx = process_event(&q, Some(self.candidate(pos)), self.now, &mut self.ids);
                if rejoin {
                    // ING-113: the new alert is grouped into the expired alert's incident.
                    self.join(fx)?;
                } else {
                    self.settled(&fx, pos)?;
                }
            }
            Op::Override { severity } => {
                let sev = [Severity::Info, Severity::Warning, Severity::Critical][severity % 3];
                self.incident.incident_severity = sev;
                if !self
                    .incident
                    .manual_overrides
                    .iter()
                    .any(|o| o == OVERRIDE_SEVERITY)
                {
                    self.incident
                        .manual_overrides
                        .push(OVERRIDE_SEVERITY.to_string());
                }
            }
        }
        // The aggregate kept by changes equals the one of the alerts, and derives the same.
        prop_assert!(self.members.is_exact());
        prop_assert_eq!(&self.members, &Members::of(&self.summaries()));
        prop_assert_eq!(
            derive_from_members(&self.incident, &self.members, self.now),
            derive_incident(&self.incident, &self.summaries(), self.now)
        );
        Ok(())
    }
}

/// A change to one alert of an arbitrary list, including the ones ingestion never makes
/// (times going down, an alert leaving).
#[derive(Debug, Clone)]
enum Change {
    Add(AlertSummary),
    Replace(usize, AlertSummary),
    Remove(usize),
}

fn summary() -> impl Strategy<Value = AlertSummary> {
    (0usize..4, 0usize..3, 0i64..50, 0i64..50, 0i64..5).prop_map(|(s, v, last, end, n)| {
        AlertSummary {
            alert_id: String::new(),
            alert_status: status(s),
            alert_severity: [Severity::Info, Severity::Warning, Severity::Critical][v],
            last_time: T0 + last,
            end_time: if s == 0 { T0 + end } else { 0 },
            event_cnt: n,
        }
    })
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => summary().prop_map(Change::Add),
        3 => (0usize..32, summary()).prop_map(|(i, s)| Change::Replace(i, s)),
        1 => (0usize..32).prop_map(Change::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    // spec: ING-172
    // spec: ING-173
    // spec: ING-175
    // spec: ING-159
    // spec: ING-113
    // spec: ING-200
    #[test]
    fn incremental_derivation_equals_full_derivation(ops in prop::collection::vec(op(), 1..60)) {
        let mut sim = Sim::new();
        for op in &ops {
            sim.step(op)?;
        }
    }

    // spec: ING-172
    // spec: ING-173
    // spec: ING-175
    #[test]
    fn an_exact_aggregate_derives_what_the_alerts_derive(
        changes in prop::collection::vec(change(), 1..80),
        closed in any::<bool>(),
        was_ok in any::<bool>(),
    ) {
        let (_, mut incident) = {
            let mut ids = CountingIds::default();
            let fx = process_event(&ev("k0", Status::Warning, "t", "a", T0), None, T0, &mut ids);
            (fx.alerts[0].clone(), fx.incidents[0].clone())
        };
        if closed {
            incident.progress = Progress::Closed;
        }
        if was_ok {
            incident.incident_status = Status::Ok;
        }
        let mut list: Vec<AlertSummary> = Vec::new();
        let mut m = Members::default();
        for c in changes {
            match c {
                Change::Add(s) => {
                    m.add(&s);
                    list.push(s);
                }
                Change::Replace(i, s) if !list.is_empty() => {
                    let i = i % list.len();
                    m.replace(&list[i], &s);
                    list[i] = s;
                }
                Change::Remove(i) if !list.is_empty() => {
                    let old = list.remove(i % list.len());
                    m.remove(&old);
                }
                _ => {}
            }
            let full = Members::of(&list);
            // Counts and sums are always exact; maxima are, unless flagged.
            prop_assert_eq!((m.total(), m.active(), m.event_cnt()), (full.total(), full.active(), full.event_cnt()));
            prop_assert_eq!((m.status(), m.severity()), (full.status(), full.severity()));
            if m.is_exact() {
                prop_assert_eq!(
                    derive_from_members(&incident, &m, T0 + 99),
                    derive_incident(&incident, &list, T0 + 99)
                );
            } else {
                prop_assert!(m.last_time() >= full.last_time() && m.end_time() >= full.end_time());
            }
        }
    }
}
