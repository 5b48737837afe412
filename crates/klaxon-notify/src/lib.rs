//! Notification delivery (response.md §2.19, RSP-280–RSP-291; DESIGN.md principle 5).
//!
//! The escalation side decides who is notified and writes one outbox row per send in the same
//! transaction as the incident change. This crate delivers those rows: [`Deliverer`] claims
//! due rows under a lease, resolves the recipient's contact (RSP-281), renders a message per
//! channel ([`render`]), sends it through the configured provider (SMTP e-mail, Twilio-compatible
//! SMS and voice, chat bots) and writes `sent` / `failed` / a retry back.
//!
//! The Slack, Feishu/Lark, DingTalk, WeCom and Teams apps' messages are interactive cards
//! ([`card`], laid out by [`slack`], [`feishu`], [`dingtalk`], [`wecom`] and [`teams`]); calls
//! take a keypress and SMS a reply code ([`phone`]); app push is a later slice;
//! docs/notifications.md lists what is done.

pub mod app_tokens;
pub mod card;
pub mod card_refresh;
pub mod config;
pub mod contact;
mod deliver;
pub mod dingtalk;
pub mod feishu;
pub mod guard;
pub mod msgcrypt;
pub mod phone;
pub mod providers;
pub mod reminder;
pub mod render;
pub mod retry;
pub mod slack;
pub mod smtp;
pub mod teams;
pub mod templating;
pub mod texts;
pub mod tickets;
pub mod war_room;
pub mod webhook;
pub mod wecom;

pub use config::{NotifyConfig, PushConfig, SmtpConfig, SmtpSecurity, TwilioConfig};
pub use deliver::{ACTION_LINK_TTL_MS, Deliverer, RATE_LIMIT_WINDOW_MS, Round};

/// Installs rustls' `ring` provider as the process default (DESIGN.md: ring only), once.
/// Every constructor that may open TLS calls it, so tests get it too.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err = another provider was installed first; that one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
