#![no_main]
//! Fuzz target: the Alertmanager webhook (ingest.md §3.2).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    check(klaxon_sources::alertmanager::parse_webhook(&body, &ctx(&q)));
});
