#![no_main]
//! Fuzz target: raw e-mail messages (§2.18, §3.8).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The message bytes as the SMTP receiver hands them over, in every push mode.
    let mail = match klaxon_sources::email::parse_mail(data) {
        Ok(m) => m,
        Err(e) => return check_refusal(&e),
    };
    let by_rules = serde_json::json!({
        "push_mode": "by_rules",
        "rules": [
            {"conditions": [[{"key": "content", "oper": "IN", "vals": ["/RESOLVED/"]}]], "action": "close"},
            {"conditions": [[{"key": "from", "oper": "IN", "vals": ["*@example.com"]}]], "action": "trigger"}
        ],
        "drop_unmatched": true,
        "key_rule": {"source": "subject", "pattern": "/host=(\\\\S+)/"}
    });
    for settings in [
        serde_json::json!({}),
        serde_json::json!({"push_mode": "by_subject"}),
        by_rules,
    ] {
        let Ok(s) = klaxon_sources::email::EmailSettings::from_json(&settings) else {
            panic!("fixed settings are valid")
        };
        if let klaxon_sources::email::MailOutcome::Event(e) =
            klaxon_sources::email::to_event(&mail, data, 7, "k@alerts.example", &s, NOW, RANDOM)
        {
            check_event(&e, klaxon_sources::email::BODY_MAX_BYTES);
        }
    }
});
