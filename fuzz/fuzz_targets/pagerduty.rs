#![no_main]
//! Fuzz target: PagerDuty Events API v1 and v2 (§3.6).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    let _ = klaxon_sources::pagerduty::body_key(&body, klaxon_sources::pagerduty::Version::V2);
    match klaxon_sources::pagerduty::detect(&body) {
        Ok(version) => match klaxon_sources::pagerduty::parse(&body, version, &ctx(&q), RANDOM) {
            Ok(outcome) => {
                assert!(!outcome.key.is_empty());
                check(Ok(outcome.event.into_iter().collect()));
            }
            Err(e) => check_refusal(&e),
        },
        Err(e) => check_refusal(&e),
    }
});
