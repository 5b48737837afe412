//! §14 delivery providers per region (SVC-214) and their changes (SVC-238).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::at;
use klaxon_saas::SaasError;
use klaxon_saas::providers::{Change, Entry, check_change, in_force_at, notice};

fn change(channel: &str, location: &str, remove: bool) -> Change {
    Change {
        region: " cn-north ".into(),
        channel: channel.into(),
        provider: "Example SMS Ltd".into(),
        location: location.into(),
        remove,
        effective_at: at(2025, 6, 20, 0, 0),
    }
}

fn field(e: SaasError) -> String {
    match e {
        SaasError::Invalid { field, .. } => field.into(),
        SaasError::Refused { rule, .. } => rule.into(),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_change_names_a_known_channel_a_provider_and_where_it_processes() {
    // spec: SVC-214
    let now = at(2025, 6, 2, 9, 0);
    let c = check_change(&change("SMS", "Frankfurt, Germany", false), now).unwrap();
    assert_eq!((c.region.as_str(), c.channel.as_str()), ("cn-north", "sms"));
    assert_eq!(
        field(check_change(&change("fax", "X", false), now).unwrap_err()),
        "channel"
    );
    assert_eq!(
        field(check_change(&change("sms", " ", false), now).unwrap_err()),
        "location"
    );
    // A removal needs no location.
    assert!(check_change(&change("sms", "", true), now).is_ok());
    // spec: SVC-238 (announced before it applies, never after)
    let late = check_change(&change("sms", "X", false), at(2025, 6, 21, 0, 0)).unwrap_err();
    assert_eq!(field(late), "SVC-238");
}

#[test]
fn the_list_in_force_follows_the_effective_times() {
    // spec: SVC-214
    let e = |provider: &str, from: (i8, i8), until: Option<(i8, i8)>| Entry {
        region: "cn-north".into(),
        channel: "sms".into(),
        provider: provider.into(),
        location: "somewhere".into(),
        effective_at: at(2025, from.0, from.1, 0, 0),
        removed_at: until.map(|u| at(2025, u.0, u.1, 0, 0)),
    };
    let entries = vec![
        e("Old", (1, 1), Some((6, 20))),
        e("New", (6, 20), None),
        e("Elsewhere", (1, 1), None),
    ];
    let mut entries = entries;
    entries[2].region = "eu-west".into();
    let names = |t| {
        in_force_at(&entries, "cn-north", t)
            .iter()
            .map(|e| e.provider.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(at(2025, 6, 19, 23, 59)), vec!["Old"]);
    assert_eq!(names(at(2025, 6, 20, 0, 0)), vec!["New"]);
    // spec: SVC-238 (the notice says what changes, from when, and where)
    let c = check_change(
        &change("sms", "Frankfurt, Germany", false),
        at(2025, 6, 2, 9, 0),
    )
    .unwrap();
    let (subject, text) = notice(&c);
    assert!(
        subject.contains("Example SMS Ltd") && subject.contains("cn-north"),
        "{subject}"
    );
    assert!(
        text.contains(&c.effective_at.to_string()) && text.contains("Frankfurt, Germany"),
        "{text}"
    );
}
