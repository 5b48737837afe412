#![no_main]
//! Fuzz target: Uptime Kuma (§3.7).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    check(klaxon_sources::uptimekuma::parse(&body, &ctx(&q)).map(|e| vec![e]));
});
