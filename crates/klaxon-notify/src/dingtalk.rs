//! The DingTalk app (response.md §2.19 RSP-286/RSP-288/RSP-302, §2.20 RSP-310–RSP-312,
//! RSP-045; docs/dingtalk-app.md): the interactive card its direct and group messages carry,
//! the button ids the callback URL reads back, and what the callback URL receives and
//! answers.
//!
//! The card is DingTalk's built-in `StandardCard` template, whose whole layout travels as one
//! JSON string in the card parameter `sys_full_json_obj`: the header with `INC #num title`,
//! a coloured state line, the rendered `dingtalk_app` template, what was just done from the
//! card, then two rows of buttons. `request` buttons call back to the app with their id;
//! Details is an `openLink` button. Button ids carry the incident (`ack_<incident_id>`), so a
//! press names what it acts on without any lookup. The standard card has no drop-down, so
//! the snooze menu of RSP-311 is the second row: 4 h, 12 h and 24 h.
//!
//! Callbacks use the message crypto DingTalk shares with WeCom ([`crate::msgcrypt`]): the
//! body is `{"encrypt": …}`, the query carries `msg_signature` (or `signature`), `timestamp`
//! in milliseconds and `nonce`; every answer is the encrypted word `success`, signed the
//! same way.

use klaxon_core::model::Millis;
use serde_json::{Value, json};

use crate::card::{Action, Card, SNOOZE_MENU_MINUTES, SNOOZE_ONE_CLICK_MINUTES, snooze_end};
use crate::msgcrypt::{self, Unverified};

/// The origin of DingTalk's current server API (tokens, cards).
pub const DEFAULT_API_BASE: &str = "https://api.dingtalk.com";
/// The origin of DingTalk's older server API, which still hosts the user look-up by mobile.
pub const DEFAULT_OAPI_BASE: &str = "https://oapi.dingtalk.com";
/// DingTalk's built-in card template whose layout is the `sys_full_json_obj` parameter.
pub const CARD_TEMPLATE: &str = "StandardCard";

/// The prefixes of the request buttons' ids (`<kind>_<incident_id>`).
const ACK: &str = "ack";
const CLOSE: &str = "close";
const SNOOZE: &str = "snooze";

/// `conversationType` of the card send API.
pub const SINGLE_CHAT: i64 = 0;
pub const GROUP_CHAT: i64 = 1;

/// The route key cards of an integration name for their button callbacks; the developer
/// console binds it to the integration's callback URL (docs/dingtalk-app.md).
pub fn callback_route_key(integration_id: i64) -> String {
    format!("klaxon_{integration_id}")
}

/// An `outTrackId` DingTalk accepts (letters, digits, `_-`, at most 64) made from a delivery
/// id and, for a group row, the chat's position.
pub fn track_id(rid: &str, chat: Option<usize>) -> String {
    let mut t: String = rid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(56)
        .collect();
    if t.is_empty() {
        t.push('0');
    }
    if let Some(i) = chat {
        t.push_str(&format!("-{i}"));
    }
    t
}

fn state_line(card: &Card) -> String {
    let mut parts = vec![card.severity.clone(), card.progress.clone()];
    if card.snoozed_before > 0 && card.progress != "Closed" {
        parts.push(card.texts().snoozed_until(&snooze_end(card)));
    }
    format!(
        "<font color={}>**{}**</font>",
        crate::card::colour(&card.severity, &card.progress),
        parts.join(" · ")
    )
}

fn request_button(id: String, text: &str, status: &str) -> Value {
    json!({
        "type": "button",
        "label": {"type": "text", "text": text, "id": format!("{id}_label")},
        "actionType": "request",
        "status": status,
        "id": id,
    })
}

/// The `StandardCard` layout of `card` (RSP-286, RSP-311), `mentions` (already written as
/// `@name`) under the body in a group chat (RSP-289).
pub fn card_layout(card: &Card, mentions: &[String]) -> Value {
    let t = card.texts();
    let headline = format!("INC #{} {}", card.num, card.title);
    // RSP-453: the outlier marker belongs to the header.
    let title = if card.outlier {
        format!("{} {headline}", t.outlier)
    } else {
        headline
    };
    let id = &card.incident_id;
    let mut contents = vec![json!({"type": "markdown", "text": state_line(card), "id": "state"})];
    if !card.body.is_empty() {
        contents.push(json!({"type": "markdown", "text": card.body, "id": "body"}));
    }
    if !mentions.is_empty() {
        contents.push(json!({"type": "markdown", "text": mentions.join(" "), "id": "mentions"}));
    }
    if !card.note.is_empty() {
        contents
            .push(json!({"type": "markdown", "text": format!("> {}", card.note), "id": "note"}));
    }
    let details = json!({
        "type": "button",
        "label": {"type": "text", "text": t.details, "id": "details_label"},
        "actionType": "openLink",
        "url": {"all": card.detail_url},
        "status": "normal",
        "id": "details",
    });
    if card.progress == "Closed" {
        // RSP-311: a closed incident keeps only the link.
        contents.push(json!({"type": "action", "actions": [details], "id": "actions"}));
    } else {
        contents.push(json!({"type": "action", "id": "actions", "actions": [
            request_button(format!("{ACK}_{id}"), t.acknowledge, "primary"),
            request_button(format!("{CLOSE}_{id}"), t.close, "warning"),
            request_button(
                format!("{SNOOZE}{SNOOZE_ONE_CLICK_MINUTES}_{id}"),
                t.snooze_one_click,
                "normal",
            ),
            details,
        ]}));
        let menu: Vec<Value> = SNOOZE_MENU_MINUTES
            .iter()
            .map(|m| {
                request_button(
                    format!("{SNOOZE}{m}_{id}"),
                    &format!("{} {}", t.snooze, t.hours(m / 60)),
                    "normal",
                )
            })
            .collect();
        contents.push(json!({"type": "action", "actions": menu, "id": "snooze_menu"}));
    }
    json!({
        "config": {"autoLayout": true, "enableForward": true},
        "header": {"title": {"type": "text", "text": crate::render::one_line(&title)}},
        "contents": contents,
    })
}

/// The `cardData` of a send or update: the layout as the template's one parameter.
pub fn card_data(layout: &Value) -> Value {
    json!({"cardParamMap": {"sys_full_json_obj": layout.to_string()}})
}

/// Reads a request button's id back. `None` for anything the card does not offer.
pub fn parse_press(action_id: &str) -> Option<Action> {
    let (kind, incident_id) = action_id.split_once('_')?;
    if incident_id.is_empty()
        || incident_id.len() > 64
        || !incident_id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    let incident_id = incident_id.to_string();
    match kind {
        ACK => Some(Action::Ack { incident_id }),
        CLOSE => Some(Action::Close { incident_id }),
        _ => {
            let minutes: i64 = kind.strip_prefix(SNOOZE)?.parse().ok()?;
            (minutes == SNOOZE_ONE_CLICK_MINUTES || SNOOZE_MENU_MINUTES.contains(&minutes))
                .then_some(Action::Snooze {
                    incident_id,
                    minutes,
                })
        }
    }
}

// ---- the callback URL ----

/// The query of a callback request. DingTalk names the signature `msg_signature` in event
/// pushes and `signature` in some older ones; either is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    pub signature: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
}

/// The `encrypt` field of a callback body.
pub fn encrypted_field(body: &[u8]) -> Result<String, Unverified> {
    let v: Value = serde_json::from_slice(body).map_err(|_| Unverified::Unreadable)?;
    v.get("encrypt")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .ok_or(Unverified::Unreadable)
}

/// Proves and decrypts a callback: the signature over the integration's Signature Token
/// must match, the timestamp (milliseconds) must be within five minutes of `now`, and the
/// message must name the app (its Client ID) or the organisation (its CorpId) as receiver.
pub fn open(
    signature_token: &str,
    aes_key: &str,
    receivers: &[&str],
    q: Query<'_>,
    encrypted: &str,
    now: Millis,
) -> Result<Vec<u8>, Unverified> {
    let receivers: Vec<&str> = receivers
        .iter()
        .copied()
        .filter(|r| !r.is_empty())
        .collect();
    msgcrypt::open(
        signature_token,
        aes_key,
        &receivers,
        (q.signature, q.timestamp, q.nonce),
        encrypted,
        (1, now),
    )
}

/// What a decrypted callback says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The developer console checks the URL when it is saved.
    CheckUrl,
    /// A request button of card `out_track_id` was pressed by DingTalk user `user_id`.
    /// `press` is `None` for a button the card does not offer.
    CardPress {
        user_id: String,
        out_track_id: String,
        press: Option<Action>,
    },
    /// Anything else: acknowledged, nothing to do.
    Other,
}

/// Reads a decrypted callback message.
pub fn parse_event(msg: &[u8]) -> Result<Event, Unverified> {
    let v: Value = serde_json::from_slice(msg).map_err(|_| Unverified::Unreadable)?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    if text("EventType") == "check_url" {
        return Ok(Event::CheckUrl);
    }
    let out_track_id = text("outTrackId");
    if out_track_id.is_empty() {
        return Ok(Event::Other);
    }
    // `content` is itself JSON, as a string: the private data of the press.
    let content: Value = match v.get("content") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(other) => other.clone(),
        None => Value::Null,
    };
    let press = content["cardPrivateData"]["actionIds"]
        .as_array()
        .and_then(|ids| ids.first())
        .and_then(Value::as_str)
        .and_then(parse_press);
    Ok(Event::CardPress {
        user_id: text("userId").to_string(),
        out_track_id: out_track_id.to_string(),
        press,
    })
}

/// The answer every proved callback gets: `success`, encrypted for `receiver` and signed,
/// with the timestamp and nonce it was signed with.
pub fn success_answer(
    signature_token: &str,
    aes_key: &str,
    receiver: &str,
    now: Millis,
    random: [u8; 16],
) -> Value {
    let encrypted = msgcrypt::encrypt(aes_key, b"success", receiver, random);
    let timestamp = now.to_string();
    let nonce: String = random
        .iter()
        .take(8)
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    json!({
        "msg_signature": msgcrypt::signature(signature_token, &timestamp, &nonce, &encrypted),
        "timeStamp": timestamp,
        "nonce": nonce,
        "encrypt": encrypted,
    })
}

// ---- answers of the server API ----

/// DingTalk's error codes for too many calls (RSP-292).
pub fn rate_limited(code: &str) -> bool {
    code.starts_with("Forbidden.AccessDenied.QpsLimit") || code == "Throttling"
}

/// DingTalk's error codes for an access token it no longer accepts.
pub fn token_rejected(code: &str) -> bool {
    matches!(
        code,
        "InvalidAuthentication" | "Unauthorized" | "invalidAuthentication"
    )
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

    fn button_ids(layout: &Value) -> Vec<String> {
        layout["contents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "action")
            .flat_map(|c| c["actions"].as_array().unwrap().clone())
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_card_has_the_header_state_body_and_buttons() {
        // spec: RSP-286, RSP-311, RSP-045
        let l = card_layout(&card_of(), &[]);
        assert_eq!(l["header"]["title"]["text"], "INC #293A4B db down");
        assert_eq!(
            l["contents"][0]["text"],
            "<font color=#C80000>**Critical · Triggered**</font>"
        );
        assert_eq!(l["contents"][1]["text"], "Severity: Critical");
        let id = "65a1b2c3d4e5f60718293a4b";
        assert_eq!(
            button_ids(&l),
            [
                format!("ack_{id}"),
                format!("close_{id}"),
                format!("snooze120_{id}"),
                "details".to_string(),
                format!("snooze240_{id}"),
                format!("snooze720_{id}"),
                format!("snooze1440_{id}"),
            ]
        );
        let data = card_data(&l);
        let inner: Value =
            serde_json::from_str(data["cardParamMap"]["sys_full_json_obj"].as_str().unwrap())
                .unwrap();
        assert_eq!(inner, l);
    }

    #[test]
    fn closed_cards_keep_only_the_link() {
        // spec: RSP-311
        let l = card_layout(
            &Card {
                progress: "Closed".into(),
                note: "Closed by Ann".into(),
                locale: "zh-CN".into(),
                ..card_of()
            },
            &["@Ann".into()],
        );
        assert_eq!(button_ids(&l), ["details"]);
        let texts: Vec<&str> = l["contents"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["text"].as_str())
            .collect();
        assert!(texts.contains(&"@Ann"));
        assert!(texts.contains(&"> Closed by Ann"));
        assert_eq!(
            l["contents"].as_array().unwrap().last().unwrap()["actions"][0]["label"]["text"],
            "详情"
        );
    }

    #[test]
    fn only_offered_presses_are_read_back() {
        // spec: RSP-045, RSP-311
        let id = "65a1b2c3d4e5f60718293a4b";
        assert_eq!(
            parse_press(&format!("snooze720_{id}")),
            Some(Action::Snooze {
                incident_id: id.into(),
                minutes: 720
            })
        );
        assert_eq!(
            parse_press(&format!("ack_{id}")),
            Some(Action::Ack {
                incident_id: id.into()
            })
        );
        assert_eq!(parse_press(&format!("snooze60_{id}")), None);
        assert_eq!(parse_press("ack_"), None);
        assert_eq!(parse_press("ack_a'b"), None);
        assert_eq!(parse_press("details"), None);
        assert_eq!(parse_press(&format!("delete_{id}")), None);
    }

    #[test]
    fn callbacks_are_read() {
        // spec: RSP-310, RSP-302
        assert_eq!(
            parse_event(br#"{"EventType":"check_url"}"#),
            Ok(Event::CheckUrl)
        );
        let press = json!({
            "outTrackId": "r1", "userId": "manager4220", "corpId": "ding1",
            "content": json!({"cardPrivateData": {"actionIds": ["close_abc123"], "params": {}}}).to_string(),
        });
        assert_eq!(
            parse_event(press.to_string().as_bytes()),
            Ok(Event::CardPress {
                user_id: "manager4220".into(),
                out_track_id: "r1".into(),
                press: Some(Action::Close {
                    incident_id: "abc123".into()
                }),
            })
        );
        assert_eq!(
            parse_event(br#"{"EventType":"user_add_org"}"#),
            Ok(Event::Other)
        );
        assert_eq!(parse_event(b"nope"), Err(Unverified::Unreadable));
        assert_eq!(encrypted_field(br#"{"encrypt":"abc"}"#), Ok("abc".into()));
        assert_eq!(encrypted_field(b"{}"), Err(Unverified::Unreadable));
    }

    #[test]
    fn the_answer_is_encrypted_success_signed_with_the_token() {
        // spec: RSP-302
        let now = 1_700_000_000_000;
        let a = success_answer("tok", KEY, "dingapp", now, [7u8; 16]);
        let enc = a["encrypt"].as_str().unwrap();
        assert_eq!(
            msgcrypt::decrypt(KEY, enc).unwrap(),
            (b"success".to_vec(), "dingapp".to_string())
        );
        let q = Query {
            signature: a["msg_signature"].as_str().unwrap(),
            timestamp: a["timeStamp"].as_str().unwrap(),
            nonce: a["nonce"].as_str().unwrap(),
        };
        assert_eq!(
            open("tok", KEY, &["dingapp"], q, enc, now),
            Ok(b"success".to_vec())
        );
        // Milliseconds: ten minutes later the same request is stale.
        assert_eq!(
            open("tok", KEY, &["dingapp"], q, enc, now + 600_000),
            Err(Unverified::Stale)
        );
    }

    #[test]
    fn track_ids_use_only_what_dingtalk_accepts() {
        assert_eq!(track_id("r:1.2", None), "r_1_2");
        assert_eq!(track_id("r1", Some(2)), "r1-2");
        assert_eq!(track_id("", None), "0");
    }
}
