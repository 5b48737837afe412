//! The Slack app (response.md §2.19 RSP-286, §2.20 RSP-310/RSP-311, RSP-045): the
//! interactive card a direct message carries, the button values the interactivity endpoint
//! reads back, and the check of Slack's request signature.
//!
//! The card is a message with one attachment: the attachment's colour bar is the only place
//! Slack shows a colour, so the severity colour (RSP-286) needs it; its Block Kit blocks carry
//! the header, the rendered `slack_app` template and the buttons.

use hmac::{KeyInit, Mac};
use klaxon_core::model::Millis;
use serde_json::{Value, json};

use crate::card::snooze_end;
pub use crate::card::{Action, Card, SNOOZE_MENU_MINUTES, SNOOZE_ONE_CLICK_MINUTES, colour};

/// Slack refuses requests whose timestamp is more than five minutes from its own clock, and
/// so do we: an older request may be a replay.
pub const MAX_SKEW_SECS: i64 = 300;

/// Block Kit limits: a header's text, a section's text.
const HEADER_MAX_CHARS: usize = 150;
const SECTION_MAX_CHARS: usize = 3000;

/// The `action_id`s of the card's controls.
pub const ACTION_ACK: &str = "klaxon_ack";
pub const ACTION_CLOSE: &str = "klaxon_close";
pub const ACTION_SNOOZE: &str = "klaxon_snooze";
pub const ACTION_SNOOZE_MENU: &str = "klaxon_snooze_menu";
pub const ACTION_DETAILS: &str = "klaxon_details";

/// Slack asks for `&`, `<` and `>` to be escaped in text it formats.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

fn chars(s: &str, max: usize) -> String {
    crate::render::truncate_chars(s, max, "…")
}

/// `body` cut into pieces of at most `max` characters, at line ends where possible.
fn sections(body: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0usize;
    for line in body.lines() {
        let mut line = line.to_string();
        loop {
            let n = line.chars().count();
            let need = if cur.is_empty() { n } else { n + 1 };
            if cur_len + need <= max {
                if !cur.is_empty() {
                    cur.push('\n');
                }
                cur.push_str(&line);
                cur_len += need;
                break;
            }
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                cur_len = 0;
                continue;
            }
            // A single line longer than a section: cut it.
            let head: String = line.chars().take(max).collect();
            line = line.chars().skip(max).collect();
            out.push(head);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The state line under the header: severity, progress, snooze, outlier.
fn state_line(card: &Card) -> String {
    let mut parts = vec![format!("*{}*", card.severity), card.progress.clone()];
    if card.snoozed_before > 0 && card.progress != "Closed" {
        parts.push(card.texts().snoozed_until(&snooze_end(card)));
    }
    parts.join(" · ")
}

/// The message body of a card, without the `channel` (chat.postMessage adds it; a
/// `response_url` update sends it as is): `text` is the notification fallback, the
/// attachment carries the colour and the blocks.
pub fn message(card: &Card) -> Value {
    let headline = format!("INC #{} {}", card.num, card.title);
    // RSP-286 / RSP-453: the outlier marker belongs to the header.
    let t = card.texts();
    let header = if card.outlier {
        format!("{} {headline}", t.outlier)
    } else {
        headline.clone()
    };
    let mut blocks = vec![
        json!({"type": "header", "text": plain(&chars(&crate::render::one_line(&header), HEADER_MAX_CHARS))}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": state_line(card)}]}),
    ];
    for piece in sections(&escape(&card.body), SECTION_MAX_CHARS) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": piece}}));
    }
    if !card.note.is_empty() {
        blocks.push(
            json!({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(&card.note)}]}),
        );
    }
    let details = json!({
        "type": "button",
        "action_id": ACTION_DETAILS,
        "text": plain(t.details),
        "url": card.detail_url,
    });
    // RSP-311: a closed incident offers no action, only the link.
    let elements = if card.progress == "Closed" {
        vec![details]
    } else {
        let id = &card.incident_id;
        let menu: Vec<Value> = SNOOZE_MENU_MINUTES
            .iter()
            .map(|m| json!({"text": plain(&t.hours(m / 60)), "value": format!("{id}:{m}")}))
            .collect();
        vec![
            json!({"type": "button", "action_id": ACTION_ACK, "text": plain(t.acknowledge),
                   "style": "primary", "value": id}),
            json!({"type": "button", "action_id": ACTION_CLOSE, "text": plain(t.close),
                   "style": "danger", "value": id}),
            json!({"type": "button", "action_id": ACTION_SNOOZE, "text": plain(t.snooze_one_click),
                   "value": format!("{id}:{SNOOZE_ONE_CLICK_MINUTES}")}),
            json!({"type": "static_select", "action_id": ACTION_SNOOZE_MENU,
                   "placeholder": plain(t.snooze_longer), "options": menu}),
            details,
        ]
    };
    blocks.push(json!({"type": "actions", "block_id": "klaxon_actions", "elements": elements}));
    json!({
        "text": escape(&headline),
        "attachments": [{"color": colour(&card.severity, &card.progress), "blocks": blocks}],
    })
}

/// How a group message names a responder (RSP-289): the linked Slack user as a real mention,
/// which notifies them; without a link only the name, as plain `@name` text.
pub fn mention(slack_user: Option<&str>, name: &str) -> String {
    match slack_user {
        Some(u) if !u.is_empty() => format!("<@{u}>"),
        _ => format!("@{}", escape(name)),
    }
}

/// The card posted into a Slack channel (RSP-288): the direct-message card, with the
/// mentions (already formatted by [`mention`]) added to the message `text`. Slack shows that
/// text above the card and notifies the mentioned users from it.
pub fn chat_message(card: &Card, mentions: &[String]) -> Value {
    let mut m = message(card);
    if !mentions.is_empty() {
        let text = format!(
            "{}\n{}",
            m["text"].as_str().unwrap_or_default(),
            mentions.join(" ")
        );
        m["text"] = Value::String(text);
    }
    m
}

/// A shift reminder posted into a Slack channel (RSP-232): plain text without buttons, the
/// recipients mentioned under it.
pub fn reminder_message(text: &str, mentions: &[String]) -> Value {
    let mut s = escape(text);
    if !mentions.is_empty() {
        s.push_str("\n\n");
        s.push_str(&mentions.join(" "));
    }
    json!({ "text": s })
}

/// Slack's errors for a channel the app can no longer post to (archived, deleted, or the app
/// removed from it): RSP-300's `chat_unavailable`.
pub fn chat_unavailable(error: &str) -> bool {
    matches!(
        error,
        "channel_not_found" | "not_in_channel" | "is_archived"
    )
}

/// Reads one entry of a `block_actions` payload's `actions`. `None` for anything the card
/// does not contain (an unknown control, a snooze duration not offered).
pub fn parse_action(action: &Value) -> Option<Action> {
    let id = action.get("action_id").and_then(Value::as_str)?;
    let value = match id {
        ACTION_SNOOZE_MENU => action
            .get("selected_option")
            .and_then(|o| o.get("value"))
            .and_then(Value::as_str),
        _ => action.get("value").and_then(Value::as_str),
    };
    let incident = |v: &str| (!v.is_empty() && v.len() <= 64).then(|| v.to_string());
    match id {
        ACTION_ACK => Some(Action::Ack {
            incident_id: incident(value?)?,
        }),
        ACTION_CLOSE => Some(Action::Close {
            incident_id: incident(value?)?,
        }),
        ACTION_SNOOZE | ACTION_SNOOZE_MENU => {
            let (inc, minutes) = value?.rsplit_once(':')?;
            let minutes: i64 = minutes.parse().ok()?;
            let offered = if id == ACTION_SNOOZE {
                minutes == SNOOZE_ONE_CLICK_MINUTES
            } else {
                SNOOZE_MENU_MINUTES.contains(&minutes)
            };
            offered.then_some(Action::Snooze {
                incident_id: incident(inc)?,
                minutes,
            })
        }
        ACTION_DETAILS => Some(Action::Details),
        _ => None,
    }
}

/// `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<body>` keyed with the signing secret: the
/// `X-Slack-Signature` of a request.
pub fn signature(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2_11::Sha256>::new_from_slice(signing_secret.as_bytes())
    else {
        return String::new();
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + bytes.len() * 2);
    out.push_str("v0=");
    for b in bytes.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Why a request was not accepted as coming from Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    Missing,
    Stale,
    BadSignature,
}

/// Checks `X-Slack-Request-Timestamp` (within [`MAX_SKEW_SECS`] of `now_ms`, either way) and
/// `X-Slack-Signature` over the raw body, comparing in constant time.
pub fn verify(
    signing_secret: &str,
    timestamp: Option<&str>,
    sig: Option<&str>,
    body: &[u8],
    now_ms: Millis,
) -> Result<(), Unverified> {
    let (Some(ts), Some(sig)) = (timestamp, sig) else {
        return Err(Unverified::Missing);
    };
    if signing_secret.is_empty() {
        return Err(Unverified::BadSignature);
    }
    let secs: i64 = ts.trim().parse().map_err(|_| Unverified::Stale)?;
    if (now_ms.div_euclid(1000) - secs).abs() > MAX_SKEW_SECS {
        return Err(Unverified::Stale);
    }
    let expected = signature(signing_secret, ts.trim(), body);
    let (a, b) = (expected.as_bytes(), sig.trim().as_bytes());
    if a.len() != b.len() {
        return Err(Unverified::BadSignature);
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if diff == 0 {
        Ok(())
    } else {
        Err(Unverified::BadSignature)
    }
}

/// The provider message id of a posted card: `<channel>/<ts>`, what `chat.update` would need.
pub fn message_ref(channel: &str, ts: &str) -> String {
    format!("{channel}/{ts}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> Card {
        Card {
            incident_id: "65a1b2c3d4e5f60718293a4b".into(),
            num: "293A4B".into(),
            title: "db <down>".into(),
            severity: "Critical".into(),
            progress: "Triggered".into(),
            snoozed_before: 0,
            outlier: false,
            body: "Severity: Critical\nChannel: Payments".into(),
            detail_url: "https://k.example/incident/detail/65a1b2c3d4e5f60718293a4b".into(),
            time_zone: "UTC".into(),
            note: String::new(),
            locale: "en-US".into(),
        }
    }

    #[test]
    fn signature_matches_slacks_documented_recipe() {
        // Known value computed independently (Python's hmac module) for v0:<ts>:<body>.
        assert_eq!(
            signature(
                "8f742231b10e8888abcd99yyyzzz85a5",
                "1531420618",
                b"token=xyz&team_id=T1"
            ),
            "v0=71b0a7e79a0e37393adc80ac96f8aeffcbcdbf0ff8a0506259cf6bd02e6e13f2"
        );
    }

    #[test]
    fn requests_are_checked_for_signature_and_age() {
        let body = b"payload=%7B%7D";
        let now = 1_700_000_000_000;
        let ts = "1700000000";
        let good = signature("s3cret", ts, body);
        assert_eq!(verify("s3cret", Some(ts), Some(&good), body, now), Ok(()));
        // Within five minutes either way, not beyond.
        assert_eq!(
            verify("s3cret", Some(ts), Some(&good), body, now + 300_000),
            Ok(())
        );
        let old = "1699999699";
        let old_sig = signature("s3cret", old, body);
        assert_eq!(
            verify("s3cret", Some(old), Some(&old_sig), body, now),
            Err(Unverified::Stale)
        );
        assert_eq!(
            verify("s3cret", Some(ts), Some(&good), b"payload=x", now),
            Err(Unverified::BadSignature)
        );
        assert_eq!(
            verify("other", Some(ts), Some(&good), body, now),
            Err(Unverified::BadSignature)
        );
        assert_eq!(
            verify("s3cret", None, Some(&good), body, now),
            Err(Unverified::Missing)
        );
        assert_eq!(
            verify("s3cret", Some(ts), None, body, now),
            Err(Unverified::Missing)
        );
        assert_eq!(
            verify("s3cret", Some("soon"), Some(&good), body, now),
            Err(Unverified::Stale)
        );
    }

    #[test]
    fn the_card_has_the_header_body_and_buttons() {
        // spec: RSP-286, RSP-311, RSP-045
        let m = message(&card());
        let att = &m["attachments"][0];
        assert_eq!(att["color"], "#C80000");
        let blocks = att["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["text"]["text"], "INC #293A4B db <down>");
        assert_eq!(blocks[1]["elements"][0]["text"], "*Critical* · Triggered");
        assert_eq!(
            blocks[2]["text"]["text"],
            "Severity: Critical\nChannel: Payments"
        );
        let elements = blocks[3]["elements"].as_array().unwrap();
        let labels: Vec<&str> = elements
            .iter()
            .map(|e| {
                e["text"]["text"]
                    .as_str()
                    .or(e["placeholder"]["text"].as_str())
                    .unwrap()
            })
            .collect();
        assert_eq!(
            labels,
            [
                "Acknowledge",
                "Close",
                "Snooze 2 hours",
                "Snooze longer",
                "Details"
            ]
        );
        let menu: Vec<&str> = elements[3]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            menu,
            [
                "65a1b2c3d4e5f60718293a4b:240",
                "65a1b2c3d4e5f60718293a4b:720",
                "65a1b2c3d4e5f60718293a4b:1440"
            ]
        );
        assert_eq!(m["text"], "INC #293A4B db &lt;down&gt;");
    }

    #[test]
    fn the_buttons_speak_the_accounts_locale() {
        // spec: RSP-293
        let m = message(&Card {
            locale: "zh-CN".into(),
            ..card()
        });
        let blocks = m["attachments"][0]["blocks"].as_array().unwrap();
        let labels: Vec<&str> = blocks.last().unwrap()["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["text"]["text"]
                    .as_str()
                    .or(e["placeholder"]["text"].as_str())
                    .unwrap()
            })
            .collect();
        assert_eq!(labels, ["认领", "关闭", "暂缓 2 小时", "暂缓更久", "详情"]);
    }

    #[test]
    fn outliers_snoozes_and_closed_incidents() {
        // spec: RSP-453 (outlier marker), RSP-311 (no actions when closed)
        let c = Card {
            outlier: true,
            snoozed_before: 1_700_007_200_000,
            progress: "Processing".into(),
            ..card()
        };
        let m = message(&c);
        let blocks = &m["attachments"][0]["blocks"];
        assert_eq!(blocks[0]["text"]["text"], "[Outlier] INC #293A4B db <down>");
        assert_eq!(
            blocks[1]["elements"][0]["text"],
            "*Critical* · Processing · Snoozed until 2023-11-15 00:13 UTC"
        );
        let closed = message(&Card {
            progress: "Closed".into(),
            ..card()
        });
        assert_eq!(closed["attachments"][0]["color"], "#84CC16");
        let actions = closed["attachments"][0]["blocks"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(actions["elements"].as_array().unwrap().len(), 1);
        assert_eq!(actions["elements"][0]["action_id"], ACTION_DETAILS);
    }

    #[test]
    fn channel_cards_and_reminders_mention_the_recipients() {
        // spec: RSP-289 (linked identity, else plain @name), RSP-288, RSP-232
        let mentions = vec![mention(Some("U0ANN"), "Ann"), mention(None, "Bo <b>")];
        assert_eq!(mentions, ["<@U0ANN>", "@Bo &lt;b&gt;"]);
        let m = chat_message(&card(), &mentions);
        assert_eq!(
            m["text"],
            "INC #293A4B db &lt;down&gt;\n<@U0ANN> @Bo &lt;b&gt;"
        );
        // Everything else is the direct-message card.
        assert_eq!(m["attachments"], message(&card())["attachments"]);
        assert_eq!(chat_message(&card(), &[]), message(&card()));
        assert_eq!(
            reminder_message("On call: A & B", &mentions),
            json!({"text": "On call: A &amp; B\n\n<@U0ANN> @Bo &lt;b&gt;"})
        );
        assert_eq!(reminder_message("x", &[]), json!({"text": "x"}));
        assert!(chat_unavailable("not_in_channel"));
        assert!(!chat_unavailable("invalid_auth"));
    }

    #[test]
    fn long_bodies_are_split_into_sections() {
        let body = format!("{}\n{}", "a".repeat(2000), "b".repeat(4500));
        let parts = sections(&body, 3000);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "a".repeat(2000));
        assert_eq!(parts[1], "b".repeat(3000));
        assert_eq!(parts[2], "b".repeat(1500));
        assert!(sections("", 3000).is_empty());
    }

    #[test]
    fn only_offered_actions_are_read_back() {
        // spec: RSP-045 (2 h one click; 4/12/24 h in the menu)
        let id = "65a1b2c3d4e5f60718293a4b";
        assert_eq!(
            parse_action(&json!({"action_id": ACTION_ACK, "value": id})),
            Some(Action::Ack {
                incident_id: id.into()
            })
        );
        assert_eq!(
            parse_action(&json!({"action_id": ACTION_SNOOZE, "value": format!("{id}:120")})),
            Some(Action::Snooze {
                incident_id: id.into(),
                minutes: 120
            })
        );
        for m in [240, 720, 1440] {
            assert_eq!(
                parse_action(&json!({"action_id": ACTION_SNOOZE_MENU,
                    "selected_option": {"value": format!("{id}:{m}")}})),
                Some(Action::Snooze {
                    incident_id: id.into(),
                    minutes: m
                })
            );
        }
        assert_eq!(
            parse_action(&json!({"action_id": ACTION_SNOOZE, "value": format!("{id}:1440")})),
            None
        );
        assert_eq!(
            parse_action(&json!({"action_id": ACTION_SNOOZE_MENU,
                "selected_option": {"value": format!("{id}:5")}})),
            None
        );
        assert_eq!(
            parse_action(&json!({"action_id": "other", "value": id})),
            None
        );
        assert_eq!(parse_action(&json!({"action_id": ACTION_ACK})), None);
    }
}
