//! The WeCom (WeChat Work) app (response.md §2.19 RSP-286/RSP-302, §2.20 RSP-310–RSP-313,
//! RSP-045): the button card its direct messages carry, the button keys the callback URL
//! reads back, the callback message crypto, and the cache of the access token every API call
//! needs.
//!
//! The card is WeCom's `template_card` of type `button_interaction`: the severity in the
//! source line (WeCom offers four colours, not arbitrary ones), `INC #num title` as the main
//! title with the state under it, the rendered `wecom_app` template as the sub-title text,
//! what was just done in the quote area, a snooze duration picker (`button_selection`) and
//! the buttons (RSP-311). WeCom has no group chat for apps (RSP-300): every card is a direct
//! message, seen by its one recipient.
//!
//! Callbacks use WeCom's message crypto: `msg_signature` is the SHA-1 of the sorted Token,
//! timestamp, nonce and ciphertext; the ciphertext is AES-256-CBC under the EncodingAESKey
//! (base64, 43 characters), IV = the key's first 16 bytes, PKCS#7 padding to 32 bytes, over
//! 16 random bytes, the message length (4 bytes, big-endian), the message and the corp ID.

use klaxon_core::model::Millis;
use serde_json::{Value, json};

use crate::card::{Action, Card, SNOOZE_MENU_MINUTES, SNOOZE_ONE_CLICK_MINUTES, snooze_end};

/// WeCom's API origin; a private deployment has its own.
pub const DEFAULT_API_BASE: &str = "https://qyapi.weixin.qq.com";

/// The button keys (`key:<incident_id>`) and the picker's question key.
pub const KEY_ACK: &str = "ack";
pub const KEY_CLOSE: &str = "close";
pub const KEY_SNOOZE: &str = "snooze";
pub const KEY_REFRESH: &str = "refresh";
pub const SNOOZE_QUESTION: &str = "snooze_minutes";

/// The source line's colour (`desc_color`: 0 grey, 1 black, 2 red, 3 green) for the severity
/// colours of [`crate::card::colour`].
pub fn desc_color(severity: &str, progress: &str) -> i64 {
    if progress == "Closed" {
        return 3;
    }
    match severity {
        "Critical" => 2,
        "Warning" => 1,
        _ => 0,
    }
}

fn state_line(card: &Card) -> String {
    let mut parts = vec![card.severity.clone(), card.progress.clone()];
    if card.snoozed_before > 0 && card.progress != "Closed" {
        parts.push(card.texts().snoozed_until(&snooze_end(card)));
    }
    parts.join(" · ")
}

/// The `template_card` for `card`. `task_id` identifies the card in callbacks (and must stay
/// the same across its updates). `refresh` adds the Refresh button (RSP-313): a card pushed
/// with a spent response code cannot be updated again until someone presses it.
pub fn card(card: &Card, task_id: &str, refresh: bool) -> Value {
    let t = card.texts();
    let headline = format!("INC #{} {}", card.num, card.title);
    // RSP-453: the outlier marker belongs to the header.
    let title = if card.outlier {
        format!("{} {headline}", t.outlier)
    } else {
        headline
    };
    let id = &card.incident_id;
    let key = |k: &str| format!("{k}:{id}");
    let details = json!({"text": t.details, "type": 1, "url": card.detail_url});
    let mut buttons = Vec::new();
    let closed = card.progress == "Closed";
    if !closed {
        buttons.push(json!({"text": t.start_processing, "style": 1, "key": key(KEY_ACK)}));
        buttons.push(json!({"text": t.close_directly, "style": 3, "key": key(KEY_CLOSE)}));
        buttons.push(json!({"text": t.snooze, "style": 2, "key": key(KEY_SNOOZE)}));
    }
    buttons.push(details);
    if refresh {
        buttons.push(json!({"text": t.refresh, "style": 4, "key": key(KEY_REFRESH)}));
    }
    let mut v = json!({
        "card_type": "button_interaction",
        "source": {"desc": card.severity, "desc_color": desc_color(&card.severity, &card.progress)},
        "main_title": {"title": crate::render::one_line(&title), "desc": state_line(card)},
        "card_action": {"type": 1, "url": card.detail_url},
        "task_id": task_id,
        "button_list": buttons,
    });
    if !card.body.is_empty() {
        v["sub_title_text"] = json!(card.body);
    }
    if !card.note.is_empty() {
        v["quote_area"] = json!({"type": 0, "quote_text": card.note});
    }
    if !closed {
        // RSP-045: 2 hours is preselected, so one press of Snooze is the one-click snooze.
        let mut options = vec![json!({"id": SNOOZE_ONE_CLICK_MINUTES.to_string(),
                                      "text": t.hours(SNOOZE_ONE_CLICK_MINUTES / 60)})];
        options.extend(
            SNOOZE_MENU_MINUTES
                .iter()
                .map(|m| json!({"id": m.to_string(), "text": t.hours(m / 60)})),
        );
        v["button_selection"] = json!({
            "question_key": SNOOZE_QUESTION,
            "title": t.snooze_for,
            "option_list": options,
            "selected_id": SNOOZE_ONE_CLICK_MINUTES.to_string(),
        });
    }
    v
}

/// A `task_id` WeCom accepts (letters, digits, `_-@`, at most 128) made from a delivery id.
pub fn task_id(rid: &str) -> String {
    let mut t: String = rid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    if t.is_empty() {
        t.push('0');
    }
    t
}

/// What a button press asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Press {
    Act(Action),
    /// Re-render the card as the incident is now (RSP-313).
    Refresh {
        incident_id: String,
    },
}

/// Reads a button's key and the picked snooze duration back. `None` for anything the card
/// does not offer.
pub fn parse_press(event_key: &str, snooze_option: Option<&str>) -> Option<Press> {
    let (kind, incident_id) = event_key.split_once(':')?;
    if incident_id.is_empty()
        || incident_id.len() > 64
        || !incident_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    let incident_id = incident_id.to_string();
    match kind {
        KEY_ACK => Some(Press::Act(Action::Ack { incident_id })),
        KEY_CLOSE => Some(Press::Act(Action::Close { incident_id })),
        KEY_REFRESH => Some(Press::Refresh { incident_id }),
        KEY_SNOOZE => {
            let minutes = match snooze_option {
                None => SNOOZE_ONE_CLICK_MINUTES,
                Some(m) => m.trim().parse().ok()?,
            };
            (minutes == SNOOZE_ONE_CLICK_MINUTES || SNOOZE_MENU_MINUTES.contains(&minutes))
                .then_some(Press::Act(Action::Snooze {
                    incident_id,
                    minutes,
                }))
        }
        _ => None,
    }
}

// ---- callbacks: message crypto (shared with DingTalk) ----

pub use crate::msgcrypt::{Unverified, aes_key, decrypt, encrypt, signature};

/// The query of a callback request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    pub msg_signature: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
}

/// Proves and decrypts a ciphertext: the signature must match, the timestamp (seconds) must
/// be within five minutes of `now`, and the message must name the integration's corp ID as
/// its receiver.
pub fn open(
    token: &str,
    encoding_aes_key: &str,
    corp_id: &str,
    q: Query<'_>,
    encrypted: &str,
    now: Millis,
) -> Result<Vec<u8>, Unverified> {
    crate::msgcrypt::open(
        token,
        encoding_aes_key,
        &[corp_id],
        (q.msg_signature, q.timestamp, q.nonce),
        encrypted,
        (1000, now),
    )
}

/// The text of the first element named `name` under the root.
fn child_text(root: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    root.children()
        .find(|n| n.has_tag_name(name))
        .map(|n| n.text().unwrap_or_default().trim().to_string())
}

/// The `Encrypt` field of a callback POST body.
pub fn encrypted_field(body: &str) -> Result<String, Unverified> {
    let doc = roxmltree::Document::parse(body).map_err(|_| Unverified::Unreadable)?;
    child_text(doc.root_element(), "Encrypt")
        .filter(|e| !e.is_empty())
        .ok_or(Unverified::Unreadable)
}

/// What a decrypted callback message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `template_card_event`: a button of card `task_id` was pressed by `user_id`.
    /// `press` is `None` for a key the card does not offer.
    CardPress {
        user_id: String,
        task_id: String,
        response_code: String,
        press: Option<Press>,
    },
    /// Anything else: acknowledged, nothing to do.
    Other,
}

/// Reads a decrypted callback message.
pub fn parse_event(msg: &[u8]) -> Result<Event, Unverified> {
    let text = std::str::from_utf8(msg).map_err(|_| Unverified::Unreadable)?;
    let doc = roxmltree::Document::parse(text).map_err(|_| Unverified::Unreadable)?;
    let root = doc.root_element();
    let get = |name: &str| child_text(root, name).unwrap_or_default();
    if get("MsgType") != "event" || get("Event") != "template_card_event" {
        return Ok(Event::Other);
    }
    // The picked snooze duration: the option of the picker's question, if any.
    let option = root
        .descendants()
        .filter(|n| n.has_tag_name("SelectedItem"))
        .find(|item| child_text(*item, "QuestionKey").as_deref() == Some(SNOOZE_QUESTION))
        .and_then(|item| {
            item.descendants()
                .find(|n| n.has_tag_name("OptionId"))
                .map(|n| n.text().unwrap_or_default().trim().to_string())
        });
    Ok(Event::CardPress {
        user_id: get("FromUserName"),
        task_id: get("TaskId"),
        response_code: get("ResponseCode"),
        press: parse_press(&get("EventKey"), option.as_deref()),
    })
}

// ---- the access token ----

/// WeCom answers a token with its lifetime (two hours); it is kept in the cache the other
/// platforms' tokens share, keyed by the API origin, the corp ID and the app's Secret.
pub use crate::app_tokens::{TOKEN_REFRESH_MARGIN_MS, cached_token, forget_token, remember_token};

/// WeCom's codes for an access token it no longer accepts.
pub fn token_rejected(code: i64) -> bool {
    matches!(code, 40014 | 42001)
}

/// WeCom's "too many requests" codes (RSP-292).
pub fn rate_limited(code: i64) -> bool {
    matches!(code, 45009 | 45033 | 45047)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    fn card_of() -> Card {
        Card {
            incident_id: "65a1b2c3d4e5f60718293a4b".into(),
            num: "293A4B".into(),
            title: "db down".into(),
            severity: "Critical".into(),
            progress: "Triggered".into(),
            snoozed_before: 0,
            outlier: false,
            body: "Severity: Critical".into(),
            detail_url: "https://k.example/incident/detail/65a1b2c3d4e5f60718293a4b".into(),
            time_zone: "UTC".into(),
            note: String::new(),
            locale: "en-US".into(),
        }
    }

    #[test]
    fn the_card_has_wecom_labels_and_the_snooze_picker() {
        // spec: RSP-311 (Start processing, Close directly, Snooze, Details), RSP-045, RSP-286
        let c = card(&card_of(), "t1", false);
        assert_eq!(c["card_type"], "button_interaction");
        assert_eq!(c["task_id"], "t1");
        assert_eq!(c["main_title"]["title"], "INC #293A4B db down");
        assert_eq!(c["main_title"]["desc"], "Critical · Triggered");
        assert_eq!(c["source"]["desc_color"], 2);
        assert_eq!(c["sub_title_text"], "Severity: Critical");
        let labels: Vec<&str> = c["button_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            labels,
            ["Start processing", "Close directly", "Snooze", "Details"]
        );
        assert_eq!(c["button_list"][0]["key"], "ack:65a1b2c3d4e5f60718293a4b");
        assert_eq!(c["button_selection"]["selected_id"], "120");
        let ids: Vec<&str> = c["button_selection"]["option_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["120", "240", "720", "1440"]);
    }

    #[test]
    fn closed_cards_keep_the_link_and_refresh() {
        // spec: RSP-311 (no action buttons when closed), RSP-313 (Refresh)
        let c = card(
            &Card {
                progress: "Closed".into(),
                note: "Closed by Ann".into(),
                ..card_of()
            },
            "t1",
            true,
        );
        assert_eq!(c["source"]["desc_color"], 3);
        assert!(c.get("button_selection").is_none());
        assert_eq!(c["quote_area"]["quote_text"], "Closed by Ann");
        let keys: Vec<Value> = c["button_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["key"].clone())
            .collect();
        assert_eq!(
            keys,
            [Value::Null, json!("refresh:65a1b2c3d4e5f60718293a4b")]
        );
    }

    #[test]
    fn the_labels_follow_the_locale() {
        // spec: RSP-293, RSP-311
        let c = card(
            &Card {
                locale: "zh-CN".into(),
                ..card_of()
            },
            "t1",
            true,
        );
        let labels: Vec<&str> = c["button_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["text"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["开始处理", "直接关闭", "暂缓", "详情", "刷新"]);
    }

    #[test]
    fn only_offered_presses_are_read_back() {
        // spec: RSP-045, RSP-311, RSP-313
        let id = "65a1b2c3d4e5f60718293a4b";
        assert_eq!(
            parse_press(&format!("snooze:{id}"), Some("720")),
            Some(Press::Act(Action::Snooze {
                incident_id: id.into(),
                minutes: 720
            }))
        );
        assert_eq!(
            parse_press(&format!("snooze:{id}"), None),
            Some(Press::Act(Action::Snooze {
                incident_id: id.into(),
                minutes: 120
            }))
        );
        assert_eq!(parse_press(&format!("snooze:{id}"), Some("60")), None);
        assert_eq!(
            parse_press(&format!("refresh:{id}"), None),
            Some(Press::Refresh {
                incident_id: id.into()
            })
        );
        assert_eq!(parse_press("ack:", None), None);
        assert_eq!(parse_press("ack:a'b", None), None);
        assert_eq!(parse_press(&format!("delete:{id}"), None), None);
    }

    #[test]
    fn messages_round_trip_and_are_signed() {
        // spec: RSP-302 (Token + EncodingAESKey)
        assert_eq!(aes_key(KEY).map(|k| k.len()), Some(32));
        assert_eq!(aes_key("short"), None);
        let e = encrypt(KEY, b"<xml>hi</xml>", "ww1234", [9u8; 16]);
        assert_eq!(
            decrypt(KEY, &e).unwrap(),
            (b"<xml>hi</xml>".to_vec(), "ww1234".to_string())
        );
        let q = Query {
            msg_signature: &signature("tok", "1700000000", "n1", &e),
            timestamp: "1700000000",
            nonce: "n1",
        };
        assert_eq!(
            open("tok", KEY, "ww1234", q, &e, 1_700_000_000_000),
            Ok(b"<xml>hi</xml>".to_vec())
        );
        assert_eq!(
            open("other", KEY, "ww1234", q, &e, 1_700_000_000_000),
            Err(Unverified::BadSignature)
        );
        // Another corp's message is not ours.
        assert_eq!(
            open("tok", KEY, "ww9999", q, &e, 1_700_000_000_000),
            Err(Unverified::Unreadable)
        );
        let other_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        assert_ne!(
            decrypt(other_key, &e).ok().map(|(_, r)| r),
            Some("ww1234".to_string())
        );
    }

    #[test]
    fn the_signature_sorts_its_parts() {
        // The four parts are sorted as strings before hashing.
        assert_eq!(signature("b", "a", "d", "c"), signature("a", "b", "c", "d"));
    }

    #[test]
    fn card_events_are_read() {
        // spec: RSP-310, RSP-313
        let xml = "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[zhang]]></FromUserName>\
            <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>\
            <Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[snooze:abc123]]></EventKey>\
            <TaskId><![CDATA[t1]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>\
            <ResponseCode><![CDATA[rc-1]]></ResponseCode><AgentID>1000002</AgentID>\
            <SelectedItems><SelectedItem><QuestionKey><![CDATA[snooze_minutes]]></QuestionKey>\
            <OptionIds><OptionId><![CDATA[1440]]></OptionId></OptionIds></SelectedItem></SelectedItems></xml>";
        assert_eq!(
            parse_event(xml.as_bytes()),
            Ok(Event::CardPress {
                user_id: "zhang".into(),
                task_id: "t1".into(),
                response_code: "rc-1".into(),
                press: Some(Press::Act(Action::Snooze {
                    incident_id: "abc123".into(),
                    minutes: 1440
                })),
            })
        );
        assert_eq!(
            parse_event(b"<xml><MsgType>text</MsgType></xml>"),
            Ok(Event::Other)
        );
        assert_eq!(parse_event(b"not xml"), Err(Unverified::Unreadable));
        assert_eq!(
            encrypted_field(
                "<xml><ToUserName>ww1</ToUserName><Encrypt><![CDATA[abc]]></Encrypt></xml>"
            ),
            Ok("abc".to_string())
        );
        assert_eq!(encrypted_field("<xml/>"), Err(Unverified::Unreadable));
    }

    #[test]
    fn task_ids_use_only_what_wecom_accepts() {
        assert_eq!(task_id("r:1.2"), "r_1_2");
        assert_eq!(task_id(""), "0");
    }
}
