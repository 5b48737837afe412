//! The Feishu/Lark app (response.md §2.19 RSP-286/RSP-289/RSP-300/RSP-302, §2.20
//! RSP-310/RSP-311, RSP-045): the interactive card its messages carry, the button values the
//! callback endpoint reads back, the callbacks' encryption and proofs, and the cache of the
//! tenant access token every API call needs.
//!
//! The card uses Feishu's message card JSON: a header whose `template` colour is the severity
//! (RSP-286), `div` elements in `lark_md` for the state line, the mentions and the rendered
//! `feishu_app` template, and an `action` element with the buttons (RSP-311). `update_multi`
//! makes the card shared, so one update (a callback's answer or a PATCH) changes it for
//! everyone who sees it, which is what RSP-312 wants for group chats.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use serde_json::{Value, json};
use sha1::Digest as _;

use crate::card::{Action, Card, SNOOZE_MENU_MINUTES, SNOOZE_ONE_CLICK_MINUTES, snooze_end};

/// Feishu's open platform (mainland China); Lark's is `https://open.larksuite.com`.
pub const DEFAULT_API_BASE: &str = "https://open.feishu.cn";

/// The `action` values the card's controls carry back.
pub const ACTION_ACK: &str = "ack";
pub const ACTION_CLOSE: &str = "close";
pub const ACTION_SNOOZE: &str = "snooze";
pub const ACTION_SNOOZE_MENU: &str = "snooze_menu";

/// Feishu's header colours (`template`) for the severity colours of [`crate::card::colour`]:
/// Feishu offers a fixed palette, not arbitrary colours.
pub fn header_template(severity: &str, progress: &str) -> &'static str {
    if progress == "Closed" {
        return "green";
    }
    match severity {
        "Critical" => "red",
        "Warning" => "orange",
        _ => "purple",
    }
}

/// `lark_md` reads `<at …>`, `<font …>` and other tags: `&`, `<` and `>` from incident data
/// are written as entities so a title cannot mention everyone or restyle the card.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn plain(text: &str) -> Value {
    json!({"tag": "plain_text", "content": text})
}

fn lark_md(text: &str) -> Value {
    json!({"tag": "div", "text": {"tag": "lark_md", "content": text}})
}

/// The state line: severity, progress, snooze.
fn state_line(card: &Card) -> String {
    let mut parts = vec![format!("**{}**", card.severity), card.progress.clone()];
    if card.snoozed_before > 0 && card.progress != "Closed" {
        parts.push(card.texts().snoozed_until(&snooze_end(card)));
    }
    parts.join(" · ")
}

fn button(label: &str, kind: &str, value: Value) -> Value {
    json!({"tag": "button", "text": plain(label), "type": kind, "value": value})
}

/// The card of a direct message (RSP-286): header, state, body, the note of what was just
/// done, and the buttons (RSP-311; a closed incident keeps only the Details link).
pub fn card(card: &Card) -> Value {
    card_with(card, &[])
}

/// The card posted into a group chat (RSP-288, RSP-289): the direct-message card with the
/// mentions (already formatted by [`mention`]) on a line under the state.
pub fn chat_card(card: &Card, mentions: &[String]) -> Value {
    card_with(card, mentions)
}

fn card_with(card: &Card, mentions: &[String]) -> Value {
    let headline = format!("INC #{} {}", card.num, card.title);
    // RSP-453: the outlier marker belongs to the header.
    let t = card.texts();
    let header = if card.outlier {
        format!("{} {headline}", t.outlier)
    } else {
        headline
    };
    let mut elements = vec![lark_md(&state_line(card))];
    if !mentions.is_empty() {
        elements.push(lark_md(&mentions.join(" ")));
    }
    if !card.body.is_empty() {
        elements.push(lark_md(&escape(&card.body)));
    }
    if !card.note.is_empty() {
        elements.push(json!({"tag": "note", "elements": [plain(&card.note)]}));
    }
    let details = json!({"tag": "button", "text": plain(t.details), "type": "default",
                         "url": card.detail_url});
    let actions = if card.progress == "Closed" {
        vec![details]
    } else {
        let id = &card.incident_id;
        let options: Vec<Value> = SNOOZE_MENU_MINUTES
            .iter()
            .map(|m| json!({"text": plain(&t.hours(m / 60)), "value": m.to_string()}))
            .collect();
        vec![
            button(
                t.acknowledge,
                "primary",
                json!({"action": ACTION_ACK, "incident_id": id}),
            ),
            button(
                t.close,
                "danger",
                json!({"action": ACTION_CLOSE, "incident_id": id}),
            ),
            button(
                t.snooze_one_click,
                "default",
                json!({"action": ACTION_SNOOZE, "incident_id": id,
                       "minutes": SNOOZE_ONE_CLICK_MINUTES.to_string()}),
            ),
            json!({"tag": "select_static", "placeholder": plain(t.snooze_longer),
                   "value": {"action": ACTION_SNOOZE_MENU, "incident_id": id},
                   "options": options}),
            details,
        ]
    };
    elements.push(json!({"tag": "action", "actions": actions}));
    json!({
        "config": {"wide_screen_mode": true, "update_multi": true},
        "header": {
            "template": header_template(&card.severity, &card.progress),
            "title": plain(&crate::render::one_line(&header)),
        },
        "elements": elements,
    })
}

/// How a group card names a responder (RSP-289): the linked Feishu user (`open_id`) as a real
/// mention, which notifies them; without a link only the name, as plain `@name` text.
pub fn mention(open_id: Option<&str>, name: &str) -> String {
    match open_id {
        Some(u) if !u.is_empty() => format!("<at id={}></at>", escape(u)),
        _ => format!("@{}", escape(name)),
    }
}

/// A shift reminder posted into a group chat (RSP-232): a card with the text and the
/// recipients mentioned under it, and no buttons.
pub fn reminder_card(text: &str, mentions: &[String]) -> Value {
    let mut elements = vec![lark_md(&escape(text))];
    if !mentions.is_empty() {
        elements.push(lark_md(&mentions.join(" ")));
    }
    json!({"config": {"wide_screen_mode": true}, "elements": elements})
}

/// Feishu's code for a chat the app cannot post to (RSP-300 `chat_unavailable`): the bot is
/// not in the chat (a disbanded chat is also known from its event).
pub fn chat_unavailable(code: i64) -> bool {
    matches!(code, 230002)
}

/// Feishu's codes for a tenant access token it no longer accepts: the cached token is
/// dropped and the send retried with a fresh one.
pub fn token_rejected(code: i64) -> bool {
    matches!(code, 99991661 | 99991663)
}

/// Feishu's "too many requests" codes (RSP-292).
pub fn rate_limited(code: i64) -> bool {
    matches!(code, 99991400 | 230020)
}

/// Reads the `action` object of a card callback (both callback versions carry the control's
/// `value` and, for a menu, the chosen `option`). `None` for anything the card does not
/// contain (an unknown control, a snooze duration not offered).
pub fn parse_action(action: &Value) -> Option<Action> {
    // The old callback may carry the value as a JSON string.
    let value = match action.get("value") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok()?,
        Some(v) => v.clone(),
        None => return None,
    };
    let kind = value.get("action").and_then(Value::as_str)?;
    let incident_id = value
        .get("incident_id")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty() && v.len() <= 64)?
        .to_string();
    let minutes = |v: Option<&Value>| -> Option<i64> {
        match v? {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    };
    match kind {
        ACTION_ACK => Some(Action::Ack { incident_id }),
        ACTION_CLOSE => Some(Action::Close { incident_id }),
        ACTION_SNOOZE => {
            let m = minutes(value.get("minutes"))?;
            (m == SNOOZE_ONE_CLICK_MINUTES).then_some(Action::Snooze {
                incident_id,
                minutes: m,
            })
        }
        ACTION_SNOOZE_MENU => {
            let m = minutes(action.get("option"))?;
            SNOOZE_MENU_MINUTES.contains(&m).then_some(Action::Snooze {
                incident_id,
                minutes: m,
            })
        }
        _ => None,
    }
}

// ---- callbacks: encryption and proofs ----

fn cipher_key(encrypt_key: &str) -> [u8; 32] {
    let digest = sha2_11::Sha256::digest(encrypt_key.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(&digest[..]);
    key
}

/// Decrypts the `encrypt` field of a callback: base64 of a 16-byte IV followed by the
/// AES-256-CBC ciphertext (PKCS#7 padding) of the JSON, keyed with SHA-256 of the Encrypt Key.
pub fn decrypt(encrypt_key: &str, encrypted: &str) -> Result<Vec<u8>, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encrypted.trim())
        .map_err(|_| "encrypt: not base64".to_string())?;
    if raw.len() < 32 || raw.len() % 16 != 0 {
        return Err("encrypt: not an AES-CBC message".into());
    }
    let (iv, data) = raw.split_at(16);
    let key = cipher_key(encrypt_key);
    cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, iv)
        .map_err(|_| "encrypt: bad key or IV".to_string())?
        .decrypt_padded_vec_mut::<Pkcs7>(data)
        .map_err(|_| "encrypt: cannot be decrypted with this Encrypt Key".to_string())
}

/// The `encrypt` field Feishu would send for `plain` with this IV: what [`decrypt`] reads.
/// Tests build encrypted callbacks with it.
pub fn encrypt(encrypt_key: &str, plain: &[u8], iv: [u8; 16]) -> String {
    let key = cipher_key(encrypt_key);
    let Ok(enc) = cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &iv) else {
        return String::new();
    };
    let mut out = iv.to_vec();
    out.extend(enc.encrypt_padded_vec_mut::<Pkcs7>(plain));
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Compares in constant time; an empty expected value never matches.
fn same(expected: &str, got: &str) -> bool {
    let (a, b) = (expected.as_bytes(), got.as_bytes());
    if a.is_empty() || a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signature of an old-style card callback (`card.action.trigger_v1`, which carries no
/// verification token in its body): hex SHA-1 of timestamp, nonce, Verification Token and
/// raw body, in that order, sent as `X-Lark-Signature`.
pub fn card_signature(
    verification_token: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    let mut h = sha1::Sha1::new();
    h.update(timestamp.as_bytes());
    h.update(nonce.as_bytes());
    h.update(verification_token.as_bytes());
    h.update(body);
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// What a (decrypted) callback asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// Feishu checks the request URL: answer the challenge.
    Challenge(String),
    /// A card control was used. `v2` = the `card.action.trigger` callback (schema 2.0),
    /// else the old one. `message_id` is the card's message.
    CardAction {
        v2: bool,
        open_id: String,
        message_id: String,
        action: Option<Action>,
    },
    /// `im.chat.disbanded_v1`: the chat is gone.
    ChatDisbanded { chat_id: String },
    /// Anything else (for example `im.message.receive_v1`): acknowledged, nothing to do.
    Other,
}

/// Why a callback was not accepted as coming from Feishu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// Not JSON, or encrypted while no Encrypt Key is configured (or the reverse).
    Unreadable,
    BadToken,
    BadSignature,
}

/// The headers of an old-style card callback's signature.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignatureHeaders<'a> {
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Decrypts (when the integration has an Encrypt Key: then every callback must be encrypted,
/// a plain one is refused) and proves a callback: the Verification Token in its body (`token`
/// for the URL check, `header.token` for schema 2.0), or for an old card callback the
/// `X-Lark-Signature` over the raw body. Ok = the callback, read.
pub fn verify(
    verification_token: &str,
    encrypt_key: &str,
    body: &[u8],
    sig: SignatureHeaders<'_>,
) -> Result<Callback, Unverified> {
    let outer: Value = serde_json::from_slice(body).map_err(|_| Unverified::Unreadable)?;
    let encrypted = outer
        .get("encrypt")
        .and_then(Value::as_str)
        .map(str::to_string);
    let v: Value = match (encrypt_key.is_empty(), encrypted) {
        (false, Some(e)) => {
            let plain = decrypt(encrypt_key, &e).map_err(|_| Unverified::Unreadable)?;
            serde_json::from_slice(&plain).map_err(|_| Unverified::Unreadable)?
        }
        (true, None) => outer,
        _ => return Err(Unverified::Unreadable),
    };
    let schema2 = v.get("schema").and_then(Value::as_str) == Some("2.0");
    if schema2 {
        let token = v["header"]["token"].as_str().unwrap_or_default();
        if !same(verification_token, token) {
            return Err(Unverified::BadToken);
        }
        let event = &v["event"];
        return Ok(
            match v["header"]["event_type"].as_str().unwrap_or_default() {
                "card.action.trigger" => Callback::CardAction {
                    v2: true,
                    open_id: event["operator"]["open_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    message_id: event["context"]["open_message_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    action: parse_action(&event["action"]),
                },
                "im.chat.disbanded_v1" => match event["chat_id"].as_str() {
                    Some(c) if !c.is_empty() => Callback::ChatDisbanded {
                        chat_id: c.to_string(),
                    },
                    _ => Callback::Other,
                },
                _ => Callback::Other,
            },
        );
    }
    if v.get("type").and_then(Value::as_str) == Some("url_verification") {
        let token = v["token"].as_str().unwrap_or_default();
        if !same(verification_token, token) {
            return Err(Unverified::BadToken);
        }
        return Ok(Callback::Challenge(
            v["challenge"].as_str().unwrap_or_default().to_string(),
        ));
    }
    // The old card callback: its `token` is the card's update token, not the Verification
    // Token; the proof is the signature header over the raw body.
    let (Some(ts), Some(nonce), Some(got)) = (sig.timestamp, sig.nonce, sig.signature) else {
        return Err(Unverified::BadSignature);
    };
    if verification_token.is_empty()
        || !same(
            &card_signature(verification_token, ts, nonce, body),
            got.trim(),
        )
    {
        return Err(Unverified::BadSignature);
    }
    if v.get("action").is_none() {
        return Ok(Callback::Other);
    }
    Ok(Callback::CardAction {
        v2: false,
        open_id: v["open_id"].as_str().unwrap_or_default().to_string(),
        message_id: v["open_message_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        action: parse_action(&v["action"]),
    })
}

/// The answer to a card callback: a toast for the clicking user and, when `card` is given,
/// the card that replaces the pressed one. The old callback takes the card itself as the
/// answer; the new one wraps both.
pub fn callback_answer(v2: bool, ok: bool, toast: &str, card: Option<Value>) -> Value {
    let toast = json!({"type": if ok { "success" } else { "error" }, "content": toast});
    match (v2, card) {
        (true, Some(c)) => json!({"toast": toast, "card": {"type": "raw", "data": c}}),
        (false, Some(c)) => c,
        (_, None) => json!({ "toast": toast }),
    }
}

// ---- the tenant access token ----

/// Feishu answers a token with its lifetime (two hours); tokens are cached with the other
/// IM apps' ([`crate::app_tokens`]), by API origin, App ID and App Secret.
pub use crate::app_tokens::{TOKEN_REFRESH_MARGIN_MS, cached_token, forget_token, remember_token};

#[cfg(test)]
mod tests {
    use super::*;

    fn card_of() -> Card {
        Card {
            incident_id: "65a1b2c3d4e5f60718293a4b".into(),
            num: "293A4B".into(),
            title: "db <down>".into(),
            severity: "Warning".into(),
            progress: "Triggered".into(),
            snoozed_before: 0,
            outlier: false,
            body: "Severity: Warning\nChannel: <at id=all></at>".into(),
            detail_url: "https://k.example/incident/detail/65a1b2c3d4e5f60718293a4b".into(),
            time_zone: "UTC".into(),
            note: String::new(),
            locale: "en-US".into(),
        }
    }

    #[test]
    fn the_card_has_the_header_body_and_buttons() {
        // spec: RSP-286, RSP-311, RSP-045
        let c = card(&card_of());
        assert_eq!(c["header"]["template"], "orange");
        assert_eq!(c["header"]["title"]["content"], "INC #293A4B db <down>");
        assert_eq!(c["config"]["update_multi"], true);
        let el = c["elements"].as_array().unwrap();
        assert_eq!(el[0]["text"]["content"], "**Warning** · Triggered");
        // The template cannot mention everyone.
        assert_eq!(
            el[1]["text"]["content"],
            "Severity: Warning\nChannel: &lt;at id=all&gt;&lt;/at&gt;"
        );
        let actions = el[2]["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 5);
        assert_eq!(actions[0]["value"]["action"], "ack");
        assert_eq!(actions[2]["value"]["minutes"], "120");
        let opts: Vec<&str> = actions[3]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(opts, ["240", "720", "1440"]);
        assert_eq!(actions[4]["url"], card_of().detail_url);
    }

    #[test]
    fn closed_cards_keep_only_the_link() {
        // spec: RSP-311 (no action buttons when closed), RSP-453
        let c = card(&Card {
            progress: "Closed".into(),
            outlier: true,
            ..card_of()
        });
        assert_eq!(c["header"]["template"], "green");
        assert_eq!(
            c["header"]["title"]["content"],
            "[Outlier] INC #293A4B db <down>"
        );
        let last = c["elements"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["actions"].as_array().unwrap().len(), 1);
        assert_eq!(last["actions"][0]["text"]["content"], "Details");
    }

    #[test]
    fn the_buttons_speak_the_accounts_locale() {
        // spec: RSP-293
        let c = card(&Card {
            locale: "zh-CN".into(),
            snoozed_before: 1_700_007_200_000,
            outlier: true,
            ..card_of()
        });
        assert_eq!(
            c["header"]["title"]["content"],
            "[罕见] INC #293A4B db <down>"
        );
        let el = c["elements"].as_array().unwrap();
        assert_eq!(
            el[0]["text"]["content"],
            "**Warning** · Triggered · 暂缓至 2023-11-15 00:13 UTC"
        );
        let actions = el.last().unwrap()["actions"].as_array().unwrap().clone();
        let labels: Vec<&str> = actions
            .iter()
            .map(|a| {
                a["text"]["content"]
                    .as_str()
                    .or(a["placeholder"]["content"].as_str())
                    .unwrap()
            })
            .collect();
        assert_eq!(labels, ["认领", "关闭", "暂缓 2 小时", "暂缓更久", "详情"]);
        assert_eq!(actions[3]["options"][0]["text"]["content"], "4 小时");
    }

    #[test]
    fn mentions_use_the_linked_open_id() {
        // spec: RSP-289
        assert_eq!(mention(Some("ou_1"), "Ann"), "<at id=ou_1></at>");
        assert_eq!(mention(None, "Bo <b>"), "@Bo &lt;b&gt;");
        let c = chat_card(&card_of(), &["<at id=ou_1></at>".to_string()]);
        assert_eq!(c["elements"][1]["text"]["content"], "<at id=ou_1></at>");
        assert_eq!(chat_card(&card_of(), &[]), card(&card_of()));
    }

    #[test]
    fn only_offered_actions_are_read_back() {
        // spec: RSP-045 (2 h one click; 4/12/24 h in the menu)
        let id = "65a1b2c3d4e5f60718293a4b";
        let snooze = |v: Value| parse_action(&v);
        assert_eq!(
            snooze(json!({"value": {"action": "ack", "incident_id": id}, "tag": "button"})),
            Some(Action::Ack {
                incident_id: id.into()
            })
        );
        assert_eq!(
            snooze(json!({"value": {"action": "snooze", "incident_id": id, "minutes": "120"}})),
            Some(Action::Snooze {
                incident_id: id.into(),
                minutes: 120
            })
        );
        assert_eq!(
            snooze(json!({"value": {"action": "snooze", "incident_id": id, "minutes": "240"}})),
            None
        );
        assert_eq!(
            snooze(json!({"value": {"action": "snooze_menu", "incident_id": id}, "option": "720"})),
            Some(Action::Snooze {
                incident_id: id.into(),
                minutes: 720
            })
        );
        assert_eq!(
            snooze(json!({"value": {"action": "snooze_menu", "incident_id": id}, "option": "5"})),
            None
        );
        // The old callback may send the value as a string.
        assert_eq!(
            snooze(json!({"value": format!("{{\"action\":\"close\",\"incident_id\":\"{id}\"}}")})),
            Some(Action::Close {
                incident_id: id.into()
            })
        );
        assert_eq!(snooze(json!({"value": {"action": "ack"}})), None);
    }

    #[test]
    fn encrypted_callbacks_round_trip() {
        // spec: RSP-302 (Encrypt Key: AES-256-CBC keyed with SHA-256 of the key)
        let e = encrypt("test key", br#"{"a":1}"#, [7u8; 16]);
        assert_eq!(decrypt("test key", &e).unwrap(), br#"{"a":1}"#.to_vec());
        assert_ne!(decrypt("other key", &e).ok(), Some(br#"{"a":1}"#.to_vec()));
        assert!(decrypt("test key", "not base64!").is_err());
    }

    #[test]
    fn feishus_documented_decryption_sample() {
        // The sample of Feishu's encryption guide: key "test key", plaintext "hello world".
        assert_eq!(
            decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=").unwrap(),
            b"hello world".to_vec()
        );
    }

    #[test]
    fn callbacks_are_proved() {
        // spec: RSP-310 (only verified callbacks act)
        let url_check = br#"{"challenge":"c-1","token":"vt","type":"url_verification"}"#;
        assert_eq!(
            verify("vt", "", url_check, SignatureHeaders::default()),
            Ok(Callback::Challenge("c-1".into()))
        );
        assert_eq!(
            verify("other", "", url_check, SignatureHeaders::default()),
            Err(Unverified::BadToken)
        );
        // With an Encrypt Key, a plain callback is refused.
        assert_eq!(
            verify("vt", "k", url_check, SignatureHeaders::default()),
            Err(Unverified::Unreadable)
        );
        let enc = json!({"encrypt": encrypt("k", url_check, [1u8; 16])}).to_string();
        assert_eq!(
            verify("vt", "k", enc.as_bytes(), SignatureHeaders::default()),
            Ok(Callback::Challenge("c-1".into()))
        );
        // The old card callback is proved by its signature header.
        let old = br#"{"open_id":"ou_1","open_message_id":"om_1","token":"c-x","action":{"value":{"action":"ack","incident_id":"i1"},"tag":"button"}}"#;
        let sig = card_signature("vt", "1700000000", "n1", old);
        let headers = SignatureHeaders {
            timestamp: Some("1700000000"),
            nonce: Some("n1"),
            signature: Some(&sig),
        };
        assert_eq!(
            verify("vt", "", old, headers),
            Ok(Callback::CardAction {
                v2: false,
                open_id: "ou_1".into(),
                message_id: "om_1".into(),
                action: Some(Action::Ack {
                    incident_id: "i1".into()
                }),
            })
        );
        assert_eq!(
            verify("other", "", old, headers),
            Err(Unverified::BadSignature)
        );
        assert_eq!(
            verify("vt", "", old, SignatureHeaders::default()),
            Err(Unverified::BadSignature)
        );
    }

    #[test]
    fn tokens_are_cached_until_shortly_before_they_end() {
        let base = "http://tokens.test";
        remember_token(base, "cli_1", "s1", "t-1", 7200, 1_000_000);
        assert_eq!(
            cached_token(base, "cli_1", "s1", 1_000_000).as_deref(),
            Some("t-1")
        );
        // Another secret, or too close to the end: not used.
        assert_eq!(cached_token(base, "cli_1", "s2", 1_000_000), None);
        let late = 1_000_000 + 7_200_000 - TOKEN_REFRESH_MARGIN_MS;
        assert_eq!(cached_token(base, "cli_1", "s1", late), None);
        forget_token(base, "cli_1", "s1");
        assert_eq!(cached_token(base, "cli_1", "s1", 1_000_000), None);
    }
}
