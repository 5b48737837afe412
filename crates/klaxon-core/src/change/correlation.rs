//! Changes that may explain an incident (ING-244): the changes whose active period overlaps
//! the two hours before the incident started, ranked by how many of a few identifying labels
//! they share with the incident, then by recency. The ranking is a hint for the person
//! looking at the incident; nothing acts on it.

use crate::model::{Labels, Millis};

/// How far before the incident's `start_time` a change still counts as related.
pub const LOOKBACK_MS: Millis = 2 * 60 * 60 * 1000;

/// The label keys compared between a change and an incident, in the order they are shown.
pub const KEYS: [&str; 6] = ["service", "app", "cluster", "resource", "host", "env"];

/// The window `[start, end]` (milliseconds, inclusive) a change's active period must overlap.
pub fn window(incident_start: Millis) -> (Millis, Millis) {
    (incident_start.saturating_sub(LOOKBACK_MS), incident_start)
}

/// Does a change active from `start` until `end` (0 while not ended: active until `now`)
/// overlap the window of an incident that started at `incident_start`?
pub fn overlaps(incident_start: Millis, start: Millis, end: Millis, now: Millis) -> bool {
    let (from, to) = window(incident_start);
    let until = if end > 0 { end } else { now };
    start <= to && until >= from
}

/// The keys of [`KEYS`] on which the change and the incident carry the same value.
pub fn shared_keys(incident: &Labels, change: &Labels) -> Vec<&'static str> {
    KEYS.iter()
        .copied()
        .filter(|k| match (incident.get(*k), change.get(*k)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        })
        .collect()
}

/// A change as the ranking sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<T> {
    pub item: T,
    pub labels: Labels,
    pub start_time: Millis,
    pub end_time: Millis,
}

/// A related change with the keys it shares with the incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Related<T> {
    pub item: T,
    pub shared: Vec<&'static str>,
}

/// ING-244: keeps the candidates whose active period overlaps the incident's window and
/// orders them by the number of shared keys (most first), then by recency (latest start
/// first). The sort is stable, so equal changes keep their given order.
pub fn rank<T>(
    incident_start: Millis,
    incident_labels: &Labels,
    candidates: Vec<Candidate<T>>,
    now: Millis,
) -> Vec<Related<T>> {
    let mut kept: Vec<(Millis, Related<T>)> = candidates
        .into_iter()
        .filter(|c| overlaps(incident_start, c.start_time, c.end_time, now))
        .map(|c| {
            let shared = shared_keys(incident_labels, &c.labels);
            (
                c.start_time,
                Related {
                    item: c.item,
                    shared,
                },
            )
        })
        .collect();
    kept.sort_by(|(a_start, a), (b_start, b)| {
        b.shared
            .len()
            .cmp(&a.shared.len())
            .then(b_start.cmp(a_start))
    });
    kept.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 60 * 60 * 1000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn change(id: &str, pairs: &[(&str, &str)], start: Millis, end: Millis) -> Candidate<String> {
        Candidate {
            item: id.to_string(),
            labels: labels(pairs),
            start_time: start,
            end_time: end,
        }
    }

    #[test]
    fn the_window_is_the_two_hours_before_the_start() {
        // spec: ING-244
        let start = 10 * H;
        let now = 11 * H;
        assert!(
            overlaps(start, 8 * H, 8 * H, now),
            "ended exactly at the window's start"
        );
        assert!(
            !overlaps(start, 7 * H, 8 * H - 1, now),
            "ended before the window"
        );
        assert!(
            overlaps(start, 10 * H, 0, now),
            "started at the incident's start"
        );
        assert!(
            !overlaps(start, 10 * H + 1, 0, now),
            "started after the incident"
        );
        assert!(
            overlaps(start, 2 * H, 0, now),
            "still running: active until now"
        );
        assert!(
            overlaps(start, 7 * H, 12 * H, now),
            "spans the whole window"
        );
    }

    #[test]
    fn shared_identifying_labels_rank_first_then_recency() {
        // spec: ING-244
        let incident = labels(&[
            ("service", "checkout"),
            ("host", "web-1"),
            ("env", "prod"),
            ("team", "payments"),
        ]);
        let start = 10 * H;
        let ranked = rank(
            start,
            &incident,
            vec![
                // Shares only a key that is not compared.
                change("team-only", &[("team", "payments")], 9 * H, 0),
                change("one", &[("env", "prod")], 8 * H + 1, 9 * H),
                change(
                    "three",
                    &[("service", "checkout"), ("host", "web-1"), ("env", "prod")],
                    8 * H,
                    0,
                ),
                change("one-later", &[("env", "prod"), ("host", "web-2")], 9 * H, 0),
                change("outside", &[("service", "checkout")], 3 * H, 5 * H),
            ],
            11 * H,
        );
        let order: Vec<&str> = ranked.iter().map(|r| r.item.as_str()).collect();
        assert_eq!(order, ["three", "one-later", "one", "team-only"]);
        assert_eq!(ranked[0].shared, ["service", "host", "env"]);
        assert_eq!(ranked[1].shared, ["env"]);
        assert!(ranked[3].shared.is_empty());
    }

    #[test]
    fn a_different_value_is_not_shared() {
        // spec: ING-244
        let incident = labels(&[("cluster", "eu-1")]);
        assert!(shared_keys(&incident, &labels(&[("cluster", "eu-2")])).is_empty());
        assert_eq!(
            shared_keys(&incident, &labels(&[("cluster", "eu-1")])),
            ["cluster"]
        );
    }
}
