#![no_main]
//! Fuzz target: Jira issue events (§3.10).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    match klaxon_sources::jira::parse(&body, NOW) {
        Ok(Some(c)) => {
            assert!(!c.change_key.is_empty());
            assert!(c.change_key.chars().count() <= klaxon_core::change::CHANGE_KEY_MAX_CHARS);
        }
        Ok(None) => {}
        Err(e) => check_refusal(&e),
    }
});
