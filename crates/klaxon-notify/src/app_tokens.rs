//! The cache of IM app access tokens that WeCom, DingTalk, Feishu/Lark and Microsoft Teams
//! share (response.md RSP-302): each answers a token with its lifetime (about two hours), and
//! each API call needs one. A token is reused, across the delivery workers and the callback
//! URLs, until five minutes before it ends.
//!
//! Tokens are keyed by (API origin or token endpoint, app id, secret): a changed secret never reuses the token
//! the old one obtained, and two platforms never share an entry.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use klaxon_core::model::Millis;

/// A token is not used in its last five minutes.
pub const TOKEN_REFRESH_MARGIN_MS: Millis = 5 * 60 * 1000;

#[derive(Clone)]
struct CachedToken {
    secret: String,
    token: String,
    expires_at: Millis,
}

type TokenKey = (String, String);

fn tokens() -> &'static Mutex<HashMap<TokenKey, CachedToken>> {
    static TOKENS: OnceLock<Mutex<HashMap<TokenKey, CachedToken>>> = OnceLock::new();
    TOKENS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn key(api_base: &str, app_id: &str, secret: &str) -> TokenKey {
    (api_base.to_string(), format!("{app_id}\n{secret}"))
}

/// A cached token for the app, still valid at `now`, obtained with this secret.
pub fn cached_token(api_base: &str, app_id: &str, secret: &str, now: Millis) -> Option<String> {
    let map = tokens().lock().ok()?;
    map.get(&key(api_base, app_id, secret))
        .filter(|t| t.secret == secret && now + TOKEN_REFRESH_MARGIN_MS < t.expires_at)
        .map(|t| t.token.clone())
}

/// Keeps a token the platform issued at `now` for `expires_in` seconds.
pub fn remember_token(
    api_base: &str,
    app_id: &str,
    secret: &str,
    token: &str,
    expires_in: i64,
    now: Millis,
) {
    if let Ok(mut map) = tokens().lock() {
        map.insert(
            key(api_base, app_id, secret),
            CachedToken {
                secret: secret.to_string(),
                token: token.to_string(),
                expires_at: now + expires_in.max(0) * 1000,
            },
        );
    }
}

/// Drops the app's token (the platform refused it).
pub fn forget_token(api_base: &str, app_id: &str, secret: &str) {
    if let Ok(mut map) = tokens().lock() {
        map.remove(&key(api_base, app_id, secret));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_reused_until_five_minutes_before_they_end() {
        // spec: RSP-302
        let base = "https://tokens.test";
        remember_token(base, "app", "s1", "t1", 7200, 0);
        assert_eq!(cached_token(base, "app", "s1", 0).as_deref(), Some("t1"));
        assert_eq!(
            cached_token(base, "app", "s1", 7_200_000 - 300_001).as_deref(),
            Some("t1")
        );
        assert_eq!(cached_token(base, "app", "s1", 7_200_000 - 300_000), None);
        assert_eq!(cached_token(base, "app", "s2", 0), None);
        forget_token(base, "app", "s1");
        assert_eq!(cached_token(base, "app", "s1", 0), None);
    }
}
