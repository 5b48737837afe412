//! The callback message crypto WeCom and DingTalk share (response.md RSP-302): both sign a
//! callback with the hex SHA-1 of the sorted Token, timestamp, nonce and ciphertext, and
//! encrypt it with AES-256-CBC under a 43-character base64 key (WeCom's EncodingAESKey,
//! DingTalk's aes_key), IV = the key's first 16 bytes, PKCS#7 padding to 32 bytes, over 16
//! random bytes, the message length (4 bytes, big-endian), the message and the receiver id
//! (WeCom: the corp ID; DingTalk: the app's Client ID or the CorpId).
//!
//! Also the replay window both callback URLs apply: a signed request is valid only near the
//! time it names, so a captured one cannot be played again later.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine as _;
use klaxon_core::model::Millis;
use sha1::Digest as _;

/// How far a callback's timestamp may be from our clock, either way.
pub const REPLAY_WINDOW_MS: Millis = 5 * 60 * 1000;

/// The 32-byte AES key of a 43-character key (base64 without the final `=`). The platforms'
/// keys are random characters, so the last one may carry non-zero spare bits.
pub fn aes_key(encoding_aes_key: &str) -> Option<[u8; 32]> {
    if encoding_aes_key.len() != 43 {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let raw = engine.decode(format!("{encoding_aes_key}=")).ok()?;
    raw.try_into().ok()
}

/// The signature: hex SHA-1 of the Token, timestamp, nonce and ciphertext, sorted.
pub fn signature(token: &str, timestamp: &str, nonce: &str, encrypted: &str) -> String {
    let mut parts = [token, timestamp, nonce, encrypted];
    parts.sort_unstable();
    let mut h = sha1::Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// Decrypts a ciphertext; Ok = (message, the receiver id it names).
pub fn decrypt(encoding_aes_key: &str, encrypted: &str) -> Result<(Vec<u8>, String), String> {
    let key = aes_key(encoding_aes_key).ok_or("the AES key is not 43 base64 characters")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encrypted.trim())
        .map_err(|_| "Encrypt: not base64".to_string())?;
    if raw.is_empty() || raw.len() % 32 != 0 {
        return Err("Encrypt: not an AES-CBC message".into());
    }
    let plain = cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &key[..16])
        .map_err(|_| "Encrypt: bad key".to_string())?
        .decrypt_padded_vec_mut::<NoPadding>(&raw)
        .map_err(|_| "Encrypt: cannot be decrypted".to_string())?;
    // PKCS#7 over 32-byte blocks.
    let pad = usize::from(*plain.last().unwrap_or(&0));
    if !(1..=32).contains(&pad) || pad > plain.len() {
        return Err("Encrypt: cannot be decrypted with this key".into());
    }
    let body = &plain[..plain.len() - pad];
    if body.len() < 20 {
        return Err("Encrypt: too short".into());
    }
    let len = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
    let rest = &body[20..];
    if len > rest.len() {
        return Err("Encrypt: bad length".into());
    }
    let (msg, receiver) = rest.split_at(len);
    Ok((msg.to_vec(), String::from_utf8_lossy(receiver).into_owned()))
}

/// The ciphertext of `msg` for `receiver` with these 16 random bytes: what [`decrypt`] reads.
/// Answers that must be encrypted (DingTalk's) and tests use it. "" when the key is not a
/// 43-character key.
pub fn encrypt(encoding_aes_key: &str, msg: &[u8], receiver: &str, random: [u8; 16]) -> String {
    let Some(key) = aes_key(encoding_aes_key) else {
        return String::new();
    };
    let mut plain = random.to_vec();
    plain.extend((msg.len() as u32).to_be_bytes());
    plain.extend(msg);
    plain.extend(receiver.as_bytes());
    let pad = 32 - plain.len() % 32;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let Ok(enc) = cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &key[..16]) else {
        return String::new();
    };
    base64::engine::general_purpose::STANDARD
        .encode(enc.encrypt_padded_vec_mut::<NoPadding>(&plain))
}

/// Compares in constant time; an empty expected value never matches.
pub fn same(expected: &str, got: &str) -> bool {
    let (a, b) = (expected.as_bytes(), got.as_bytes());
    if a.is_empty() || a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a callback was not accepted as coming from the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    BadSignature,
    /// The timestamp is missing or more than [`REPLAY_WINDOW_MS`] from our clock.
    Stale,
    /// Not decryptable, not for this receiver, or not the message the platform sends.
    Unreadable,
}

/// Whether a callback's `timestamp` (in `unit_ms` milliseconds: 1000 for WeCom's seconds, 1
/// for DingTalk's milliseconds) is within [`REPLAY_WINDOW_MS`] of `now`.
pub fn fresh(timestamp: &str, unit_ms: Millis, now: Millis) -> bool {
    timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|t| t.checked_mul(unit_ms))
        .is_some_and(|t| (t - now).abs() <= REPLAY_WINDOW_MS)
}

/// Proves and decrypts a ciphertext: the signature must match, the timestamp must be fresh,
/// and the message must name one of `receivers`.
pub fn open(
    token: &str,
    encoding_aes_key: &str,
    receivers: &[&str],
    (signature_got, timestamp, nonce): (&str, &str, &str),
    encrypted: &str,
    freshness: (Millis, Millis),
) -> Result<Vec<u8>, Unverified> {
    if token.is_empty()
        || !same(
            &signature(token, timestamp, nonce, encrypted),
            signature_got.trim(),
        )
    {
        return Err(Unverified::BadSignature);
    }
    let (unit_ms, now) = freshness;
    if !fresh(timestamp, unit_ms, now) {
        return Err(Unverified::Stale);
    }
    let (msg, receiver) =
        decrypt(encoding_aes_key, encrypted).map_err(|_| Unverified::Unreadable)?;
    if !receivers.iter().any(|r| same(r, &receiver)) {
        return Err(Unverified::Unreadable);
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    #[test]
    fn messages_round_trip_and_are_signed() {
        // spec: RSP-302 (Token + AES key)
        assert_eq!(aes_key(KEY).map(|k| k.len()), Some(32));
        assert_eq!(aes_key("short"), None);
        let e = encrypt(KEY, b"{}", "app1", [9u8; 16]);
        assert_eq!(
            decrypt(KEY, &e).unwrap(),
            (b"{}".to_vec(), "app1".to_string())
        );
        let now = 1_700_000_000_000;
        let sig = signature("tok", "1700000000", "n1", &e);
        let q = (sig.as_str(), "1700000000", "n1");
        assert_eq!(
            open("tok", KEY, &["x", "app1"], q, &e, (1000, now)),
            Ok(b"{}".to_vec())
        );
        assert_eq!(
            open("other", KEY, &["app1"], q, &e, (1000, now)),
            Err(Unverified::BadSignature)
        );
        assert_eq!(
            open("tok", KEY, &["app2"], q, &e, (1000, now)),
            Err(Unverified::Unreadable)
        );
    }

    #[test]
    fn timestamps_older_or_newer_than_five_minutes_are_stale() {
        // spec: RSP-302 (callbacks are proved; a replayed one is refused)
        let now = 1_700_000_000_000;
        assert!(fresh("1700000000", 1000, now));
        assert!(fresh("1700000300", 1000, now));
        assert!(!fresh("1700000301", 1000, now));
        assert!(!fresh("1699999699", 1000, now));
        assert!(fresh("1700000000000", 1, now));
        assert!(!fresh("1699999000000", 1, now));
        assert!(!fresh("", 1, now));
        assert!(!fresh("soon", 1, now));
        let e = encrypt(KEY, b"{}", "app1", [1u8; 16]);
        let sig = signature("tok", "1699999000", "n", &e);
        assert_eq!(
            open(
                "tok",
                KEY,
                &["app1"],
                (&sig, "1699999000", "n"),
                &e,
                (1000, now)
            ),
            Err(Unverified::Stale)
        );
    }

    #[test]
    fn the_signature_sorts_its_parts() {
        assert_eq!(signature("b", "a", "d", "c"), signature("a", "b", "c", "d"));
    }
}
