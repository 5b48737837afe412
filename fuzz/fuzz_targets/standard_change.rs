#![no_main]
//! Fuzz target: the standard change event (§2.20).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    match klaxon_core::change::parse_standard_change(&body, 7, NOW) {
        Ok(c) => {
            assert!(!c.change_key.is_empty());
            assert!(c.change_key.chars().count() <= klaxon_core::change::CHANGE_KEY_MAX_CHARS);
            assert!(c.link.chars().count() <= klaxon_core::change::LINK_MAX_CHARS);
        }
        Err(e) => check_refusal(&e),
    }
});
