#![no_main]
//! Fuzz target: Grafana unified and legacy alerting (§3.3).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    check(klaxon_sources::grafana::parse(&body, &ctx(&q)));
});
