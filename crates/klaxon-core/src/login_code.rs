//! E-mail-code sign-in rules (response.md RSP-578, docs/sign-in.md): what a code looks like,
//! how long it lives, how often it may be asked for and guessed, and who may use it while
//! single sign-on is on. Pure: the store keeps the codes, the server sends them.

// The figures are those of every one-time code Klaxon sends (`one_time_code`): 10 minutes,
// 5 tries, 5 codes an hour, 6 digits.
use crate::one_time_code::{CODE_TTL, CODE_WINDOW, CODES_PER_HOUR, MAX_CODE_ATTEMPTS};

/// A code works this long after it is sent (the specification names no figure).
pub const CODE_TTL_MS: i64 = CODE_TTL.as_secs() * 1000;
/// Wrong codes a code survives: the fifth wrong try spends it.
pub const MAX_TRIES: i64 = MAX_CODE_ATTEMPTS;
/// Codes one member may be sent per [`WINDOW_MS`]; further requests send nothing.
pub const MAX_PER_WINDOW: i64 = CODES_PER_HOUR;
pub const WINDOW_MS: i64 = CODE_WINDOW.as_secs() * 1000;
/// Six decimal digits: easy to type from a phone, and with five tries per code a guess
/// succeeds with odds of 1 in 200 000.
pub use crate::one_time_code::CODE_DIGITS;

/// The code as typed, reduced to its digits when it has the right shape: people copy codes
/// with spaces or a dash in the middle ("123 456", "123-456").
pub fn normalize_code(typed: &str) -> Option<String> {
    let digits: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\t'))
        .collect();
    (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A number below 10^6 as the six digits of a code, with leading zeros.
pub fn format_code(n: u32) -> String {
    format!("{:06}", n % 1_000_000)
}

/// RSP-578: while the account's single sign-on is on, only the owner signs in locally (the
/// break-glass access when the identity provider is down); everyone else signs in through
/// SSO. With SSO off, every member may use an e-mail code.
pub fn local_sign_in_allowed(sso_enabled: bool, is_owner: bool) -> bool {
    !sso_enabled || is_owner
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(normalize_code("123456").as_deref(), Some("123456"));
        assert_eq!(normalize_code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(normalize_code("123-456").as_deref(), Some("123456"));
        assert_eq!(normalize_code("12345"), None);
        assert_eq!(normalize_code("1234567"), None);
        assert_eq!(normalize_code("12345a"), None);
        assert_eq!(normalize_code("１２３４５６"), None);
        assert_eq!(format_code(42), "000042");
        assert_eq!(format_code(999_999), "999999");
    }

    #[test]
    fn only_the_owner_signs_in_locally_while_sso_is_on() {
        // spec: RSP-578
        assert!(local_sign_in_allowed(true, true));
        assert!(!local_sign_in_allowed(true, false));
        assert!(local_sign_in_allowed(false, false));
        assert!(local_sign_in_allowed(false, true));
    }
}
