#![no_main]
//! Fuzz target: HTTP pull pages (§2.19).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A pulled page as the source answers it (ING-223) and its cursor (ING-224).
    let content_type = if data.first().is_some_and(|b| b % 2 == 0) {
        Some("application/json; charset=utf-8")
    } else {
        Some("text/plain")
    };
    if let Ok(page) = klaxon_sources::http_pull::check_page(200, content_type, data) {
        assert!(page.get("items").is_some_and(|i| i.is_array()));
        for path in ["next", "data.cursor", "a.b.c.d", ""] {
            let _ = klaxon_sources::http_pull::next_cursor(&page, path);
        }
    }
});
