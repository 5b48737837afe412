//! Per-responder insights (response.md §2.27, RSP-478, RSP-479): who was a responder of each
//! incident of the population, how quickly they acknowledged after being assigned, how often
//! the incident moved away from them, how many sends reached them and how many of those
//! interrupted them. Pure: the store hands over the timeline entries and the sends.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::{Facts, round2, seconds};
use crate::model::{Millis, Progress};

/// RSP-478: a send within this long after a counted interruption does not count again.
pub const INTERRUPTION_GAP: Millis = 60_000;

/// RSP-478: the channels that interrupt a person.
pub const INTERRUPTING: &[&str] = &["sms", "voice", "app"];

/// One timeline entry of the kinds that shape the responder list (`i_assign`, `i_a_rspd`,
/// `i_ack`), in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: String,
    pub creator_id: i64,
    pub created_at: Millis,
    pub detail: Value,
}

/// What one person did on one incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Part {
    /// When they last became a responder before acknowledging (or at all, if they never did).
    pub assigned_at: Millis,
    /// Their first acknowledgement.
    pub first_ack: Option<Millis>,
    pub reassigned: bool,
    pub timeout_escalated: bool,
    pub manually_escalated: bool,
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// RSP-479: the people who were ever responders of an incident through an assignment or
/// add responders, from its timeline entries in order.
pub fn parts(entries: &[Entry]) -> BTreeMap<i64, Part> {
    let mut out: BTreeMap<i64, Part> = BTreeMap::new();
    // The responders right now.
    let mut current: Vec<i64> = Vec::new();
    for e in entries {
        match e.kind.as_str() {
            "i_assign" => {
                // The incident moves away from the responders it had (RSP-479).
                let kind = e.detail["type"].as_str().unwrap_or_default();
                for p in &current {
                    let part = out.entry(*p).or_default();
                    match kind {
                        "reassign" => part.reassigned = true,
                        // A timer escalates as nobody; a person escalates by hand.
                        "escalate" if e.creator_id > 0 => part.manually_escalated = true,
                        "escalate" => part.timeout_escalated = true,
                        _ => {}
                    }
                }
                // The new set replaces the old list; people in both stay assigned since then.
                let to = ids(&e.detail["to"]);
                for p in &to {
                    if !current.contains(p) {
                        let part = out.entry(*p).or_default();
                        if part.first_ack.is_none() {
                            part.assigned_at = e.created_at;
                        }
                    }
                }
                current = to;
            }
            "i_a_rspd" => {
                for p in ids(&e.detail["to"]) {
                    if !current.contains(&p) {
                        let part = out.entry(p).or_default();
                        if part.first_ack.is_none() {
                            part.assigned_at = e.created_at;
                        }
                        current.push(p);
                    }
                }
            }
            "i_ack" => {
                if let Some(part) = out.get_mut(&e.creator_id)
                    && part.first_ack.is_none()
                {
                    part.first_ack = Some(e.created_at);
                }
            }
            _ => {}
        }
    }
    out
}

/// One send addressed to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    pub incident_id: String,
    pub person_id: i64,
    pub channel: String,
    pub failed: bool,
    pub created_at: Millis,
}

/// RSP-478: the interruptions among one person's sends: `sms`, `voice` and `app` sends not
/// failed, each counting unless one was already counted in the 60 s before it (sends of one
/// firing share their instant, so they count once).
pub fn interruptions(sends: &[&Send]) -> i64 {
    let mut times: Vec<Millis> = sends
        .iter()
        .filter(|s| !s.failed && INTERRUPTING.contains(&s.channel.as_str()))
        .map(|s| s.created_at)
        .collect();
    times.sort_unstable();
    let mut last: Option<Millis> = None;
    let mut n = 0;
    for t in times {
        if last.is_none_or(|l| t - l >= INTERRUPTION_GAP) {
            n += 1;
            last = Some(t);
        }
    }
    n
}

/// One row of `/insight/responder` (RSP-479). No MTTR per responder.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponderTotals {
    pub total_incident_cnt: i64,
    pub total_incidents_acknowledged: i64,
    pub total_seconds_to_ack: i64,
    /// `None` when they acknowledged nothing.
    pub mean_seconds_to_ack: Option<f64>,
    pub total_incidents_reassigned: i64,
    pub total_incidents_timeout_escalated: i64,
    pub total_incidents_manually_escalated: i64,
    pub total_notifications: i64,
    pub total_interruptions: i64,
    pub total_engaged_seconds: i64,
}

/// The rows per responder over the population of `facts` (RSP-471): `parts` gives each
/// incident's responders, `sends` every send addressed to a person for those incidents.
pub fn responders(
    facts: &[Facts<'_>],
    parts_of: impl Fn(&str) -> Option<BTreeMap<i64, Part>>,
    sends: &[Send],
) -> BTreeMap<i64, ResponderTotals> {
    let mut out: BTreeMap<i64, ResponderTotals> = BTreeMap::new();
    let mut counted: BTreeSet<&str> = BTreeSet::new();
    for f in facts.iter().filter(|f| f.counts()) {
        let inc = f.incident;
        counted.insert(&inc.incident_id);
        let Some(parts) = parts_of(&inc.incident_id) else {
            continue;
        };
        for (person, part) in parts {
            let row = out.entry(person).or_default();
            row.total_incident_cnt += 1;
            if let Some(ack) = part.first_ack {
                row.total_incidents_acknowledged += 1;
                row.total_seconds_to_ack += seconds(ack - part.assigned_at);
                // RSP-477: close minus their first acknowledgement.
                if inc.progress == Progress::Closed {
                    row.total_engaged_seconds += seconds(inc.close_time - ack);
                }
            }
            row.total_incidents_reassigned += i64::from(part.reassigned);
            row.total_incidents_timeout_escalated += i64::from(part.timeout_escalated);
            row.total_incidents_manually_escalated += i64::from(part.manually_escalated);
        }
    }
    let mut by_person: BTreeMap<i64, Vec<&Send>> = BTreeMap::new();
    for s in sends {
        if out.contains_key(&s.person_id) && counted.contains(s.incident_id.as_str()) {
            by_person.entry(s.person_id).or_default().push(s);
        }
    }
    for (person, list) in by_person {
        if let Some(row) = out.get_mut(&person) {
            row.total_notifications = list.len() as i64;
            row.total_interruptions = interruptions(&list);
        }
    }
    for row in out.values_mut() {
        row.mean_seconds_to_ack = (row.total_incidents_acknowledged > 0).then(|| {
            round2(row.total_seconds_to_ack as f64 / row.total_incidents_acknowledged as f64)
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: Millis = 1_000;
    const MIN: Millis = 60_000;

    fn entry(kind: &str, creator: i64, at: Millis, detail: Value) -> Entry {
        Entry {
            kind: kind.into(),
            creator_id: creator,
            created_at: at,
            detail,
        }
    }

    fn send(person: i64, channel: &str, at: Millis) -> Send {
        Send {
            incident_id: "i".into(),
            person_id: person,
            channel: channel.into(),
            failed: false,
            created_at: at,
        }
    }

    #[test]
    fn mtta_runs_from_the_assignment_that_made_them_responders() {
        // spec: RSP-479 (INS-1: A assigned 10:00 acks 10:04; B assigned 12:05 after an
        // escalation acks 12:10)
        let (a, b) = (1, 2);
        let es = [
            entry("i_assign", 0, 0, json!({"type": "assign", "to": [a]})),
            entry("i_ack", a, 4 * MIN, json!({})),
        ];
        let p = parts(&es);
        assert_eq!(p[&a].first_ack, Some(4 * MIN));
        assert_eq!(p[&a].first_ack.unwrap() - p[&a].assigned_at, 240 * S);
        let es = [
            entry("i_assign", 0, 0, json!({"type": "assign", "to": [a]})),
            entry(
                "i_assign",
                0,
                5 * MIN,
                json!({"type": "escalate", "to": [b]}),
            ),
            entry("i_ack", b, 10 * MIN, json!({})),
            entry(
                "i_assign",
                9,
                20 * MIN,
                json!({"type": "reassign", "to": [a, b]}),
            ),
            entry(
                "i_assign",
                9,
                30 * MIN,
                json!({"type": "escalate", "to": [a]}),
            ),
            entry("i_a_rspd", 9, 40 * MIN, json!({"to": [3]})),
            // Somebody who was never a responder acknowledging is not a row.
            entry("i_ack", 7, 41 * MIN, json!({})),
        ];
        let p = parts(&es);
        assert_eq!(p.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(p[&b].assigned_at, 5 * MIN);
        assert_eq!(p[&b].first_ack.unwrap() - p[&b].assigned_at, 300 * S);
        // A: moved away by the timer at 5 min, then by hand at 30 min.
        assert!(p[&a].timeout_escalated && p[&a].manually_escalated);
        // A came back at 20 min (reassign) and was not acknowledged: assigned since then.
        assert_eq!(p[&a].assigned_at, 20 * MIN);
        assert!(p[&b].reassigned && p[&b].manually_escalated && !p[&b].timeout_escalated);
        assert_eq!(p[&3].assigned_at, 40 * MIN);
        assert_eq!(
            p[&3],
            Part {
                assigned_at: 40 * MIN,
                ..Part::default()
            }
        );
    }

    #[test]
    fn interruptions_count_once_per_minute() {
        // spec: RSP-478 (INS-2)
        let t = 0;
        let sends = [
            send(1, "sms", t),
            send(1, "voice", t),
            send(1, "sms", t + 40 * S),
            send(1, "voice", t + 70 * S),
            send(1, "email", t + 90 * S),
        ];
        let refs: Vec<&Send> = sends.iter().collect();
        assert_eq!(interruptions(&refs), 2);
        // A failed send never interrupts; the next one counts.
        let mut failed = send(1, "voice", t);
        failed.failed = true;
        let later = send(1, "app", t + 30 * S);
        assert_eq!(interruptions(&[&failed, &later]), 1);
        assert_eq!(interruptions(&[]), 0);
    }

    #[test]
    fn rows_cover_the_population_only() {
        // spec: RSP-471, RSP-477, RSP-479 (INS-1: engaged seconds A = 1560; no MTTR)
        use crate::insight::tests::incident;
        let mut i1 = incident("i1", 1, 3);
        i1.progress = Progress::Closed;
        i1.close_time = i1.start_time + 30 * MIN;
        let mut muted = incident("m", 1, 3);
        muted.response.ever_muted = true;
        let f = |inc| Facts {
            incident: inc,
            escalated: false,
            reassigned: false,
            merged_away: false,
            first_acks: Vec::new(),
        };
        let facts = [f(&i1), f(&muted)];
        let t0 = i1.start_time;
        // Every incident had the same responder history.
        let parts_of = |_: &str| {
            let es = vec![
                entry("i_assign", 0, t0, json!({"type": "assign", "to": [1]})),
                entry("i_ack", 1, t0 + 4 * MIN, json!({})),
            ];
            Some(parts(&es))
        };
        let mut on_muted = send(1, "sms", t0);
        on_muted.incident_id = "m".into();
        let mut s1 = send(1, "voice", t0);
        s1.incident_id = "i1".into();
        let mut s2 = send(1, "email", t0);
        s2.incident_id = "i1".into();
        let rows = responders(&facts, parts_of, &[s1, s2, on_muted]);
        let a = &rows[&1];
        assert_eq!(a.total_incident_cnt, 1, "the muted incident is left out");
        assert_eq!(a.mean_seconds_to_ack, Some(240.0));
        assert_eq!(a.total_engaged_seconds, 1560);
        assert_eq!((a.total_notifications, a.total_interruptions), (2, 1));
    }
}
