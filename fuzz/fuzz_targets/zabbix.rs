#![no_main]
//! Fuzz target: Zabbix (§3.4).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    check(klaxon_sources::zabbix::parse(&body, &ctx(&q)));
});
