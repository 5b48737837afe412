//! Label suggestions for condition editors (ING-261): the label keys, and a few values of
//! each, seen in the most recent events of an integration or channel. Suggestions only make
//! typing easier; any key can still be typed by hand, so an empty answer is normal for a new
//! or quiet source.

use std::collections::HashMap;

use crate::model::{Labels, Millis};

/// At most this many of the most recent events are looked at.
pub const EVENTS_READ: usize = 500;
/// Only events received this long before now count.
pub const WINDOW_MS: Millis = 24 * 60 * 60 * 1000;
/// Values offered per key, the most frequent first.
pub const VALUES_PER_KEY: usize = 5;

/// One suggested key with its most frequent values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub key: String,
    /// In how many of the events read the key appeared.
    pub seen: usize,
    pub values: Vec<String>,
}

/// The keys of `events` (each an event's labels), the most frequent first (then by name),
/// each with its [`VALUES_PER_KEY`] most frequent values (then by value).
pub fn suggest<'a>(events: impl IntoIterator<Item = &'a Labels>) -> Vec<Suggestion> {
    let mut keys: HashMap<&'a str, (usize, HashMap<&'a str, usize>)> = HashMap::new();
    for labels in events {
        for (k, v) in labels {
            let entry = keys.entry(k.as_str()).or_default();
            entry.0 += 1;
            *entry.1.entry(v.as_str()).or_default() += 1;
        }
    }
    let mut out: Vec<Suggestion> = keys
        .into_iter()
        .map(|(key, (seen, values))| {
            let mut values: Vec<(&str, usize)> = values.into_iter().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            Suggestion {
                key: key.to_string(),
                seen,
                values: values
                    .into_iter()
                    .take(VALUES_PER_KEY)
                    .map(|(v, _)| v.to_string())
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.seen.cmp(&a.seen).then(a.key.cmp(&b.key)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keys_by_frequency_with_their_common_values() {
        // spec: ING-261
        let events = [
            labels(&[("host", "web-1"), ("env", "prod")]),
            labels(&[("host", "web-2"), ("env", "prod")]),
            labels(&[("host", "web-1")]),
            labels(&[("check", "cpu")]),
        ];
        let s = suggest(&events);
        let keys: Vec<&str> = s.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["host", "env", "check"]);
        assert_eq!(s[0].seen, 3);
        assert_eq!(s[0].values, ["web-1", "web-2"]);
        assert_eq!(s[1].values, ["prod"]);
    }

    #[test]
    fn values_are_capped_and_no_events_suggest_nothing() {
        // spec: ING-261
        let events: Vec<Labels> = (0..8)
            .map(|i| labels(&[("pod", &format!("p{i}"))]))
            .collect();
        let s = suggest(&events);
        assert_eq!(s[0].values.len(), VALUES_PER_KEY);
        assert_eq!(s[0].values, ["p0", "p1", "p2", "p3", "p4"]);
        assert!(suggest(&[]).is_empty());
    }
}
