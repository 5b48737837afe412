//! Per-incident insight figures (response.md §2.27) for `/insight/incident/list` and the
//! incident export: the same quantities the team, channel and account rows add up (RSP-472
//! to RSP-478), kept per incident so the list of a period sums to its totals. Pure: the store
//! hands over the incident's timeline facts and its sends.

use jiff::tz::TimeZone;
use serde::Serialize;

use super::responder::{Send, interruptions};
use super::{Facts, Hours, seconds};
use crate::model::Progress;

/// How often an incident moved away from its responders, from its timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moves {
    /// `escalate` assignments (by a timer or by hand).
    pub escalations: i64,
    /// `reassign` assignments.
    pub reassignments: i64,
}

/// The figures of one incident of the population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentMetrics {
    /// RSP-473: `None` while unacknowledged.
    pub seconds_to_ack: Option<i64>,
    /// RSP-474: `None` unless Closed now.
    pub seconds_to_close: Option<i64>,
    /// RSP-477: the effort of everyone who acknowledged it, once it is Closed.
    pub engaged_seconds: i64,
    /// The people who acknowledged it.
    pub acknowledgements: i64,
    pub escalations: i64,
    pub reassignments: i64,
    /// Every send addressed to a person for it (RSP-479 `total_notifications`).
    pub notifications: i64,
    /// RSP-478, summed over the people it interrupted.
    pub interruptions: i64,
    /// RSP-480: the part of the day it started in.
    pub hours: Hours,
}

/// The figures of `f`, given its moves and the sends addressed to people for it.
pub fn metrics(f: &Facts<'_>, moves: Moves, sends: &[&Send], tz: &TimeZone) -> IncidentMetrics {
    let inc = f.incident;
    let closed = inc.progress == Progress::Closed;
    let engaged_seconds: i64 = if closed {
        f.first_acks
            .iter()
            .map(|(_, at)| seconds(inc.close_time - at))
            .sum()
    } else {
        0
    };
    // Interruptions are a person's (RSP-478): one firing to two people interrupts both.
    let mut people: Vec<i64> = sends.iter().map(|s| s.person_id).collect();
    people.sort_unstable();
    people.dedup();
    let interruptions: i64 = people
        .iter()
        .map(|p| {
            let theirs: Vec<&Send> = sends
                .iter()
                .copied()
                .filter(|s| s.person_id == *p)
                .collect();
            interruptions(&theirs)
        })
        .sum();
    IncidentMetrics {
        seconds_to_ack: (inc.ack_time > 0).then(|| seconds(inc.ack_time - inc.start_time)),
        seconds_to_close: closed.then(|| seconds(inc.close_time - inc.start_time)),
        engaged_seconds,
        acknowledgements: f.first_acks.len() as i64,
        escalations: moves.escalations,
        reassignments: moves.reassignments,
        notifications: sends.len() as i64,
        interruptions,
        hours: Hours::of(inc.start_time, tz),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insight::tests::incident;
    use crate::insight::totals;
    use crate::model::Millis;

    const MIN: Millis = 60_000;

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
    fn an_incident_carries_the_figures_its_rows_add_up() {
        // spec: RSP-473, RSP-474, RSP-477, RSP-478 (INS-1: I1 acknowledged after 240 s,
        // closed after 1800 s, A engaged 1560 s)
        let mut i1 = incident("i1", 1, 10);
        let t0 = i1.start_time;
        i1.ack_time = t0 + 4 * MIN;
        i1.progress = Progress::Closed;
        i1.close_time = t0 + 30 * MIN;
        let f = Facts {
            incident: &i1,
            escalated: true,
            reassigned: false,
            merged_away: false,
            first_acks: vec![(1, t0 + 4 * MIN)],
        };
        let sends = [
            send(1, "sms", t0),
            send(1, "voice", t0),
            send(2, "sms", t0),
            send(1, "email", t0 + MIN),
        ];
        let refs: Vec<&Send> = sends.iter().collect();
        let moves = Moves {
            escalations: 2,
            reassignments: 0,
        };
        let m = metrics(&f, moves, &refs, &TimeZone::UTC);
        assert_eq!(m.seconds_to_ack, Some(240));
        assert_eq!(m.seconds_to_close, Some(1800));
        assert_eq!(m.engaged_seconds, 1560);
        assert_eq!((m.acknowledgements, m.escalations), (1, 2));
        // Person 1's sms and voice share a firing (one interruption); person 2 is
        // interrupted too.
        assert_eq!((m.notifications, m.interruptions), (4, 2));
        // The incident's figures agree with the totals of a population of one.
        let t = totals(std::slice::from_ref(&f));
        assert_eq!(t.total_seconds_to_ack, m.seconds_to_ack.unwrap());
        assert_eq!(t.total_seconds_to_close, m.seconds_to_close.unwrap());
        assert_eq!(t.total_engaged_seconds, m.engaged_seconds);
    }

    #[test]
    fn open_and_unacknowledged_incidents_have_no_durations() {
        // spec: RSP-473, RSP-474, RSP-477
        let open = incident("o", 1, 1);
        let f = Facts {
            incident: &open,
            escalated: false,
            reassigned: false,
            merged_away: false,
            first_acks: vec![(1, open.start_time + MIN)],
        };
        let m = metrics(&f, Moves::default(), &[], &TimeZone::UTC);
        assert_eq!((m.seconds_to_ack, m.seconds_to_close), (None, None));
        assert_eq!(
            m.engaged_seconds, 0,
            "effort counts once the incident is closed"
        );
        assert_eq!((m.notifications, m.interruptions), (0, 0));
    }
}
