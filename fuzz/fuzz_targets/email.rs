#![no_main]
//! Fuzz target: raw e-mail messages (§2.18, §3.8), in every push mode.
use std::sync::LazyLock;

use klaxon_fuzz::*;
use klaxon_sources::email::{EmailSettings, MailOutcome, parse_mail, to_event};
use libfuzzer_sys::fuzz_target;

/// The settings are compiled once: compiling their patterns per input would dominate the run.
static SETTINGS: LazyLock<Vec<EmailSettings>> = LazyLock::new(|| {
    let by_rules = serde_json::json!({
        "push_mode": "by_rules",
        "rules": [
            {"conditions": [[{"key": "content", "oper": "IN", "vals": ["/RESOLVED/"]}]], "action": "close"},
            {"conditions": [[{"key": "from", "oper": "IN", "vals": ["*@example.com"]}]], "action": "trigger"}
        ],
        "drop_unmatched": true,
        "key_rule": {"source": "subject", "pattern": "/host=(\\S+)/"}
    });
    [
        serde_json::json!({}),
        serde_json::json!({"push_mode": "by_subject"}),
        by_rules,
    ]
    .iter()
    .filter_map(|s| EmailSettings::from_json(s).ok())
    .collect()
});

fuzz_target!(|data: &[u8]| {
    // The message bytes as the SMTP receiver hands them over.
    let mail = match parse_mail(data) {
        Ok(m) => m,
        Err(e) => return check_refusal(&e),
    };
    assert_eq!(SETTINGS.len(), 3, "fixed settings are valid");
    for s in SETTINGS.iter() {
        if let MailOutcome::Event(e) = to_event(&mail, data, 7, "k@alerts.example", s, NOW, RANDOM)
        {
            check_event(&e, klaxon_sources::email::BODY_MAX_BYTES);
        }
    }
});
