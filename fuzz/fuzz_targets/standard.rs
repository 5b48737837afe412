#![no_main]
//! Fuzz target: the standard alert event (§2.2).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    let ctx = klaxon_core::standard::PushContext {
        integration_id: 7,
        query_labels: &q,
        received_at: NOW,
    };
    check(klaxon_core::standard::parse_standard(&body, &ctx).map(|e| vec![e]));
});
