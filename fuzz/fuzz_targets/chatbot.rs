#![no_main]
//! Fuzz target: the DingTalk, Feishu and WeCom bot messages (ING-218), in two push modes.
use std::sync::LazyLock;

use klaxon_fuzz::*;
use klaxon_sources::chatbot::{Bot, ChatOutcome, ChatSettings, parse_message, to_event};
use libfuzzer_sys::fuzz_target;

const BOTS: [Bot; 3] = [Bot::DingTalk, Bot::Feishu, Bot::WeCom];

/// Per bot, the settings compiled once (compiling patterns per input would dominate the run).
static SETTINGS: LazyLock<Vec<Vec<ChatSettings>>> = LazyLock::new(|| {
    let by_rules = serde_json::json!({"push_mode": "by_rules",
        "rules": [{"conditions": [[{"key": "content", "oper": "IN", "vals": ["/RESOLVED/"]}]], "action": "close"},
                  {"conditions": [], "action": "trigger"}],
        "key_rule": {"source": "title", "pattern": "/(.*)/"}});
    BOTS.iter()
        .map(|bot| {
            [serde_json::json!({}), by_rules.clone()]
                .iter()
                .filter_map(|s| ChatSettings::from_json(*bot, s).ok())
                .collect()
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some(body) = json(data) else { return };
    let q = query();
    for (bot, settings) in BOTS.iter().zip(SETTINGS.iter()) {
        assert_eq!(settings.len(), 2, "fixed settings are valid");
        let message = match parse_message(*bot, &body) {
            Ok(m) => m,
            Err(e) => {
                check_refusal(e.error());
                continue;
            }
        };
        for s in settings {
            if let ChatOutcome::Event(e) = to_event(*bot, &message, "{}", s, &ctx(&q), RANDOM) {
                check_event(&e, klaxon_core::standard::DESCRIPTION_MAX_CHARS);
            }
        }
    }
});
