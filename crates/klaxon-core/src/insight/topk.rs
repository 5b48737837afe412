//! The top alert label values of a period (response.md RSP-482): the global view ranks the
//! values of the `check` and the `resource` labels of the population's alerts by their alert
//! events. Pure: the store hands over each alert's labels and event count.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::Labels;

/// `k` runs from 1 to this.
pub const MAX_K: i64 = 100;
/// The global view shows this many values (RSP-482).
pub const DEFAULT_K: i64 = 20;

/// The labels a ranking may be taken over.
pub const LABELS: &[&str] = &["check", "resource"];

/// What the ranking sorts by, descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Alerts,
    /// The default (RSP-482: "by alert events").
    Events,
}

impl Order {
    pub fn parse(s: &str) -> Option<Order> {
        match s {
            "total_alert_cnt" => Some(Order::Alerts),
            "total_alert_event_cnt" => Some(Order::Events),
            _ => None,
        }
    }
}

/// One value of the label and what carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelCount {
    pub value: String,
    pub total_alert_cnt: i64,
    pub total_alert_event_cnt: i64,
}

/// The `k` values of `label` over `alerts` (labels, event count) with the most alerts or
/// events; ties go to the smaller value so the ranking is stable. Alerts without the label,
/// or with it empty, are not ranked.
pub fn topk(alerts: &[(Labels, i64)], label: &str, k: usize, order: Order) -> Vec<LabelCount> {
    let mut by: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (labels, events) in alerts {
        let Some(value) = labels.get(label).filter(|v| !v.is_empty()) else {
            continue;
        };
        let e = by.entry(value.as_str()).or_default();
        e.0 += 1;
        e.1 += events;
    }
    let mut out: Vec<LabelCount> = by
        .into_iter()
        .map(|(value, (alerts, events))| LabelCount {
            value: value.to_string(),
            total_alert_cnt: alerts,
            total_alert_event_cnt: events,
        })
        .collect();
    // `out` is in value order; a stable sort keeps it within equal counts.
    out.sort_by(|a, b| match order {
        Order::Alerts => b.total_alert_cnt.cmp(&a.total_alert_cnt),
        Order::Events => b.total_alert_event_cnt.cmp(&a.total_alert_event_cnt),
    });
    out.truncate(k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(check: &str, resource: &str, events: i64) -> (Labels, i64) {
        let mut l = Labels::new();
        if !check.is_empty() {
            l.insert("check".into(), check.into());
        }
        if !resource.is_empty() {
            l.insert("resource".into(), resource.into());
        }
        (l, events)
    }

    #[test]
    fn values_rank_by_events_or_alerts() {
        // spec: RSP-482
        let alerts = [
            alert("cpu", "web-1", 10),
            alert("cpu", "web-2", 1),
            alert("disk", "web-1", 30),
            alert("mem", "", 1),
            alert("", "db-1", 7),
        ];
        let by_events = topk(&alerts, "check", 20, Order::Events);
        let pairs: Vec<(&str, i64, i64)> = by_events
            .iter()
            .map(|c| (c.value.as_str(), c.total_alert_cnt, c.total_alert_event_cnt))
            .collect();
        assert_eq!(
            pairs,
            vec![("disk", 1, 30), ("cpu", 2, 11), ("mem", 1, 1)],
            "the alert without a check is not ranked"
        );
        let by_alerts = topk(&alerts, "check", 20, Order::Alerts);
        assert_eq!(by_alerts[0].value, "cpu");
        // Ties keep the value order: disk before mem.
        assert_eq!(by_alerts[1].value, "disk");
        let resources = topk(&alerts, "resource", 1, Order::Events);
        assert_eq!(resources.len(), 1, "k caps the list");
        assert_eq!(resources[0].value, "web-1");
        assert_eq!(resources[0].total_alert_event_cnt, 40);
        assert!(topk(&[], "check", 20, Order::Events).is_empty());
    }

    #[test]
    fn orderby_names_a_count() {
        // spec: RSP-482
        assert_eq!(Order::parse("total_alert_cnt"), Some(Order::Alerts));
        assert_eq!(Order::parse("total_alert_event_cnt"), Some(Order::Events));
        assert_eq!(Order::parse("value"), None);
    }
}
