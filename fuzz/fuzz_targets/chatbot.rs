#![no_main]
//! Fuzz target: the DingTalk, Feishu and WeCom bot messages (ING-218).
use klaxon_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use klaxon_sources::chatbot::{Bot, ChatOutcome, ChatSettings, parse_message, to_event};
    let Some(body) = json(data) else { return };
    let q = query();
    for bot in [Bot::DingTalk, Bot::Feishu, Bot::WeCom] {
        let message = match parse_message(bot, &body) {
            Ok(m) => m,
            Err(e) => {
                check_refusal(e.error());
                continue;
            }
        };
        for settings in [
            serde_json::json!({}),
            serde_json::json!({"push_mode": "by_rules",
                "rules": [{"conditions": [[{"key": "content", "oper": "IN", "vals": ["/RESOLVED/"]}]], "action": "close"},
                          {"conditions": [], "action": "trigger"}],
                "key_rule": {"source": "title", "pattern": "/(.*)/"}}),
        ] {
            let Ok(s) = ChatSettings::from_json(bot, &settings) else {
                panic!("fixed settings are valid")
            };
            if let ChatOutcome::Event(e) = to_event(bot, &message, "{}", &s, &ctx(&q), RANDOM) {
                check_event(&e, klaxon_core::standard::DESCRIPTION_MAX_CHARS);
            }
        }
    }
});
