#![no_main]
//! Fuzz target: Nightingale (§3.5).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    check(klaxon_sources::n9e::parse(&body, &ctx(&q)));
});
