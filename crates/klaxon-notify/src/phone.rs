//! Acting from a call or an SMS (RSP-282, RSP-314; docs/notifications.md "Acting from a call
//! or an SMS"): the pure parts shared by the delivery engine, which puts them into calls and
//! messages, and the server's provider callbacks, which check them.
//!
//! - **Voice.** A call's TwiML plays the voice body inside a one-digit `<Gather>` whose
//!   `action` is Klaxon's keypress endpoint with a token naming (account, incident, member,
//!   notification) and an expiry, signed with HMAC-SHA256 under the provider account's auth
//!   token. The endpoint accepts a request only when Twilio's own signature
//!   (`X-Twilio-Signature`, [`twilio_signature_valid`]) and the token both check out.
//! - **SMS.** An incident SMS ends with a reply hint naming a four-digit code
//!   ([`sms_with_hint`], in the account's language); a reply is `<code> 1` (acknowledge) or `<code> 2` (close)
//!   ([`parse_reply`]). Codes are kept by the store, unique among one phone's live codes.
//! - **Generic gateways** that are not Twilio post JSON signed with HMAC-SHA256 of the raw
//!   body ([`gateway_signature_valid`]).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use klaxon_core::model::Millis;
use serde::{Deserialize, Serialize};

use crate::render::{self, escape_html};
use crate::texts::Texts;

/// How long the keypress of a call is accepted after the call was placed. Calls ring for a
/// minute at most and last a few; an hour leaves room for a slow provider queue.
pub const VOICE_TOKEN_TTL_MS: Millis = 60 * 60 * 1000;
/// How long an SMS reply code stays valid.
pub const REPLY_CODE_TTL_MS: Millis = 24 * 60 * 60 * 1000;
/// The keypress endpoint (the `<Gather>` action).
pub const GATHER_PATH: &str = "/voice/twilio/gather";
/// The call status callback endpoint.
pub const STATUS_PATH: &str = "/voice/twilio/status";
/// The header carrying a generic gateway's signature.
pub const GATEWAY_SIGNATURE_HEADER: &str = "x-klaxon-signature";

type HmacSha256 = hmac::Hmac<sha2_11::Sha256>;
type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// What a call's keypress may act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceToken {
    #[serde(rename = "a")]
    pub account_id: i64,
    #[serde(rename = "i")]
    pub incident_id: String,
    #[serde(rename = "m")]
    pub member_id: i64,
    /// The notification (outbox row) the call was placed for.
    #[serde(rename = "r")]
    pub rid: String,
    #[serde(rename = "e")]
    pub expires_at: Millis,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token, or its signature does not match (tampered or made with another key).
    Invalid,
    /// Genuine but past its expiry.
    Expired(VoiceToken),
}

fn mac256(key: &str) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(key.as_bytes()).ok()
}

const TOKEN_CONTEXT: &[u8] = b"klaxon-voice-v1.";

/// The token of `t`, signed with `key` (the provider account's auth token): URL-safe,
/// `<payload>.<signature>`.
pub fn sign_token(key: &str, t: &VoiceToken) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).unwrap_or_default());
    let sig = match mac256(key) {
        Some(mut mac) => {
            mac.update(TOKEN_CONTEXT);
            mac.update(payload.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{payload}.{sig}")
}

/// Checks a token made by [`sign_token`] with `key`, and its expiry at `now`.
pub fn verify_token(key: &str, token: &str, now: Millis) -> Result<VoiceToken, TokenError> {
    let (payload, sig) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| TokenError::Invalid)?;
    let mut mac = mac256(key).ok_or(TokenError::Invalid)?;
    mac.update(TOKEN_CONTEXT);
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Invalid)?;
    let t: VoiceToken = serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid)?;
    if now >= t.expires_at {
        return Err(TokenError::Expired(t));
    }
    Ok(t)
}

/// Twilio's request signature: base64 of HMAC-SHA1, keyed with the auth token, over the full
/// URL Twilio requested followed by every POST parameter's name and value, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let Some(mac) = twilio_mac(auth_token, url, params) else {
        return String::new();
    };
    STANDARD.encode(mac.finalize().into_bytes())
}

fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Option<HmacSha1> {
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).ok()?;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    Some(mac)
}

/// Whether `header` (the `X-Twilio-Signature` value) is Twilio's signature of the request,
/// compared in constant time. An empty token or header never matches.
pub fn twilio_signature_valid(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    if auth_token.is_empty() || header.is_empty() {
        return false;
    }
    let Ok(expected) = STANDARD.decode(header.trim()) else {
        return false;
    };
    twilio_mac(auth_token, url, params).is_some_and(|mac| mac.verify_slice(&expected).is_ok())
}

/// A generic gateway's signature of a JSON callback: `sha256=` and the lower-case hex of
/// HMAC-SHA256 of the raw body, keyed with the provider account's auth token.
pub fn gateway_signature(key: &str, body: &[u8]) -> String {
    match mac256(key) {
        Some(mut mac) => {
            mac.update(body);
            let bytes = mac.finalize().into_bytes();
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256={hex}")
        }
        None => String::new(),
    }
}

/// Whether `header` is [`gateway_signature`] of `body`, compared in constant time.
pub fn gateway_signature_valid(key: &str, body: &[u8], header: &str) -> bool {
    if key.is_empty() {
        return false;
    }
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    mac256(key).is_some_and(|mut mac| {
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// The TwiML of a call: the text twice; with `action` (the keypress URL), inside a one-digit
/// `<Gather>` that ends with the prompt (RSP-282) in the account's language `t` (RSP-293).
pub fn call_twiml(text: &str, action: Option<&str>, t: &Texts) -> String {
    let say = escape_html(text);
    match action {
        None => {
            format!("<Response><Say>{say}</Say><Pause length=\"1\"/><Say>{say}</Say></Response>")
        }
        Some(url) => format!(
            "<Response>{gather}<Say>{say}</Say><Pause length=\"1\"/><Say>{say}</Say>\
             <Say>{}</Say></Gather><Say>{}</Say></Response>",
            t.press_one,
            t.no_key,
            gather = gather_open(url),
        ),
    }
}

fn gather_open(url: &str) -> String {
    format!(
        "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"8\" method=\"POST\" action=\"{}\">",
        escape_html(url)
    )
}

/// The answer to a key other than 1: asks once more with `action`.
pub fn reprompt_twiml(action: &str, t: &Texts) -> String {
    format!(
        "<Response>{}<Say>{} {}</Say></Gather><Say>{}</Say></Response>",
        gather_open(action),
        t.key_does_nothing,
        t.press_one,
        t.nothing_changed,
    )
}

/// An answer that says `text` and hangs up.
pub fn say_twiml(text: &str) -> String {
    format!(
        "<Response><Say>{}</Say><Hangup/></Response>",
        escape_html(text)
    )
}

/// The answer to an inbound SMS: one reply message.
pub fn message_twiml(text: &str) -> String {
    format!(
        "<Response><Message>{}</Message></Response>",
        escape_html(text)
    )
}

/// An empty TwiML answer (nothing to say or send).
pub const EMPTY_TWIML: &str = "<Response></Response>";

/// A fresh four-digit reply code (1000–9999).
pub fn new_reply_code(rng: &mut impl rand::Rng) -> String {
    rng.random_range(1000..10_000).to_string()
}

/// The SMS body with the reply hint (in the account's language `t`) on its own last line;
/// the body is shortened so the whole stays within the SMS limit.
pub fn sms_with_hint(body: &str, code: &str, t: &Texts) -> String {
    let hint = t.reply_hint(code);
    let room = render::SMS_MAX_CHARS.saturating_sub(hint.chars().count() + 1);
    format!("{}\n{hint}", render::truncate_chars(body, room, "…"))
}

/// What a reply asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyVerb {
    Acknowledge,
    Close,
}

/// Reads a reply: `<code> 1` acknowledges, `<code> 2` closes (`ack` and `close` are accepted
/// as words too). `None`: not a reply Klaxon understands.
pub fn parse_reply(body: &str) -> Option<(String, ReplyVerb)> {
    let words: Vec<&str> = body.split_whitespace().collect();
    let [code, verb] = words.as_slice() else {
        return None;
    };
    if code.len() != 4 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let verb = match verb.to_ascii_lowercase().as_str() {
        "1" | "ack" | "acknowledge" => ReplyVerb::Acknowledge,
        "2" | "close" => ReplyVerb::Close,
        _ => return None,
    };
    Some(((*code).to_string(), verb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texts::{EN, ZH};

    fn token() -> VoiceToken {
        VoiceToken {
            account_id: 7,
            incident_id: "65a1b2c3d4e5f60718293a4b".into(),
            member_id: 42,
            rid: "r-1".into(),
            expires_at: 10_000,
        }
    }

    #[test]
    fn twilio_signature_matches_the_documented_example() {
        // spec: RSP-314 (the keypress request is Twilio's). The example of Twilio's security
        // page; the expected value was also computed with Python's hmac module.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .rev()
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            twilio_signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(twilio_signature_valid(
            "12345",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!twilio_signature_valid(
            "12346",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!twilio_signature_valid("12345", url, &params, ""));
        assert!(!twilio_signature_valid("", url, &params, "x"));
    }

    #[test]
    fn tokens_are_signed_and_expire() {
        // spec: RSP-314 (only the called member, only for that incident)
        let t = token();
        let s = sign_token("secret", &t);
        assert!(!s.contains(['/', '+', '=', '&', '?']), "{s}");
        assert_eq!(verify_token("secret", &s, 9_999), Ok(t.clone()));
        assert_eq!(
            verify_token("secret", &s, 10_000),
            Err(TokenError::Expired(t.clone()))
        );
        assert_eq!(verify_token("other", &s, 0), Err(TokenError::Invalid));
        // Another member in the same payload position: the signature no longer matches.
        let forged = VoiceToken {
            member_id: 1,
            ..t.clone()
        };
        let (_, sig) = s.split_once('.').unwrap_or_default();
        let other_payload = sign_token("secret", &forged);
        let (payload, _) = other_payload.split_once('.').unwrap_or_default();
        assert_eq!(
            verify_token("secret", &format!("{payload}.{sig}"), 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify_token("secret", "garbage", 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn gateway_signatures() {
        let body = br#"{"from":"+15005550100","body":"1234 1"}"#;
        let sig = gateway_signature("k", body);
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
        assert!(gateway_signature_valid("k", body, &sig));
        assert!(!gateway_signature_valid("k", b"{}", &sig));
        assert!(!gateway_signature_valid("", body, &sig));
        assert!(!gateway_signature_valid("k", body, "sha256=zz"));
    }

    #[test]
    fn replies_are_a_code_and_a_verb() {
        assert_eq!(
            parse_reply(" 4821 1 "),
            Some(("4821".into(), ReplyVerb::Acknowledge))
        );
        assert_eq!(
            parse_reply("4821 CLOSE"),
            Some(("4821".into(), ReplyVerb::Close))
        );
        assert_eq!(parse_reply("4821 3"), None);
        assert_eq!(parse_reply("48211"), None);
        assert_eq!(parse_reply("482 1"), None);
        assert_eq!(parse_reply("hello there"), None);
    }

    #[test]
    fn the_hint_fits_in_the_sms_limit() {
        let long = "x".repeat(2_000);
        let sms = sms_with_hint(&long, "4821", &EN);
        assert_eq!(sms.chars().count(), render::SMS_MAX_CHARS);
        assert!(sms.ends_with("\nReply 4821 1 to acknowledge, 4821 2 to close."));
        assert_eq!(
            sms_with_hint("db down", "1000", &EN),
            "db down\nReply 1000 1 to acknowledge, 1000 2 to close."
        );
        // spec: RSP-293
        assert_eq!(
            sms_with_hint("db down", "1000", &ZH),
            "db down\n回复 1000 1 认领，回复 1000 2 关闭。"
        );
    }

    #[test]
    fn call_twiml_gathers_one_digit() {
        // spec: RSP-282 (the rendered voice body, then a prompt to press 1)
        let t = call_twiml("db <down>", Some("https://k.example/voice?t=a.b&x=1"), &EN);
        assert!(t.starts_with("<Response><Gather input=\"dtmf\" numDigits=\"1\""));
        assert!(t.contains("action=\"https://k.example/voice?t=a.b&amp;x=1\""));
        assert!(t.contains("<Say>db &lt;down&gt;</Say>"));
        assert!(t.contains("<Say>Press 1 to acknowledge this incident.</Say>"));
        // spec: RSP-293
        let zh = call_twiml("db", Some("https://k.example/v"), &ZH);
        assert!(zh.contains("<Say>按 1 认领此故障。</Say></Gather><Say>没有按键。再见。</Say>"));
        assert!(
            reprompt_twiml("https://k.example/v", &ZH)
                .contains("<Say>该按键无效。 按 1 认领此故障。</Say>")
        );
        assert_eq!(
            call_twiml("hi", None, &EN),
            "<Response><Say>hi</Say><Pause length=\"1\"/><Say>hi</Say></Response>"
        );
    }
}
