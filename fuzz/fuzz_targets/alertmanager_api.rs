#![no_main]
//! Fuzz target: the Alertmanager-compatible POST /api/v2/alerts body (§3.2).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    check(klaxon_sources::alertmanager::parse_postable(
        &body,
        &ctx(&q),
    ));
});
