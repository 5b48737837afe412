//! E-mail integrations (ingest.md §2.18, §3.8): one raw RFC 5322 message → at most one
//! canonical event.
//!
//! Pure: the SMTP listener of `klaxon-server` hands over the message bytes, the receive time,
//! the integration address and the integration's settings; anything random (the key of a
//! message without Message-ID) comes from the caller.

use std::borrow::Cow;

use klaxon_core::condition::{Context as FilterContext, Key, Subject};
use klaxon_core::error::ApiError;
use klaxon_core::model::{Millis, NewEvent, RAW_MAX_BYTES, Severity, Status, cut_bytes};
use klaxon_core::standard::{TITLE_MAX_CHARS, adapter_labels, hash_parts, truncate};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use regex::Regex;
use serde_json::Value;

use crate::push_rules::{self, Decision, Flavor};

/// ING-211: a message larger than 5 MiB is refused (552) and nothing is ingested.
pub const MAX_MESSAGE_BYTES: usize = 5 * 1024 * 1024;
/// ING-213: the body text is cut to 32 KiB; e-mail descriptions may be that long (Q-36).
pub const BODY_MAX_BYTES: usize = 32 * 1024;
pub use crate::push_rules::{PushMode, Rule, RuleAction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Subject,
    Content,
    From,
}

/// `key_rule.source` names, in [`KeySource`] order.
const KEY_SOURCES: [KeySource; 3] = [KeySource::Subject, KeySource::Content, KeySource::From];

const FLAVOR: Flavor = Flavor {
    filter: FilterContext::EmailRule,
    modes: &[
        ("always_new", PushMode::AlwaysNew),
        ("by_subject", PushMode::BySubject),
        ("by_rules", PushMode::ByRules),
    ],
    key_sources: &["subject", "content", "from"],
};

/// The validated e-mail settings of one integration (ING-216).
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub push_mode: PushMode,
    pub rules: Vec<Rule>,
    pub key_rule: Option<(KeySource, Regex)>,
    pub drop_unmatched: bool,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            push_mode: PushMode::AlwaysNew,
            rules: Vec::new(),
            key_rule: None,
            drop_unmatched: false,
        }
    }
}

/// The names `settings` may hold for an `email` integration.
pub const SETTING_NAMES: [&str; 4] = ["push_mode", "rules", "key_rule", "drop_unmatched"];

impl EmailSettings {
    /// Validates the integration's `settings` object (on save and on receipt). Unknown
    /// members are the caller's business ([`SETTING_NAMES`]).
    pub fn from_json(settings: &Value) -> Result<EmailSettings, ApiError> {
        let p = push_rules::parse(settings, &FLAVOR)?;
        Ok(EmailSettings {
            push_mode: p.push_mode,
            rules: p.rules,
            key_rule: p
                .key_rule
                .and_then(|(i, re)| KEY_SOURCES.get(i).map(|s| (*s, re))),
            drop_unmatched: p.drop_unmatched,
        })
    }
}

/// A parsed message: what the rules and the mapping of §3.8 read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// RFC 2047-decoded subject, trimmed.
    pub subject: String,
    /// ING-212 body text, cut per ING-213.
    pub body: String,
    pub body_cut: bool,
    pub attachment_stripped: bool,
    /// Sender address, lower-case, address part only.
    pub from: String,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
}

/// ING-212…214: decodes a raw message. A message that is not RFC 5322 at all is refused.
pub fn parse_mail(raw: &[u8]) -> Result<Mail, ApiError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| ApiError::invalid("the message is not a valid RFC 5322 message"))?;
    let subject = message.subject().unwrap_or("").trim().to_owned();
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .trim()
        .to_lowercase();
    let message_id = message
        .message_id()
        .map(|m| {
            m.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|m| !m.is_empty());

    let mut plain: Option<String> = None;
    let mut html: Option<String> = None;
    let mut stripped = false;
    for part in &message.parts {
        let attachment = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Text(text) if !attachment => {
                let is_plain = part.content_type().is_none_or(|ct| {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
                });
                if is_plain && plain.is_none() {
                    plain = Some(text.to_string());
                }
            }
            PartType::Html(text) if !attachment => {
                if html.is_none() {
                    html = Some(text.to_string());
                }
            }
            _ => stripped = true,
        }
    }
    let text = match (plain, html) {
        (Some(p), _) => p,
        (None, Some(h)) => html_to_text(&h),
        (None, None) => String::new(),
    };
    let text = text.replace("\r\n", "\n");
    let cut = cut_bytes(&text, BODY_MAX_BYTES);
    let body_cut = cut.len() < text.len();
    Ok(Mail {
        subject,
        body: cut.to_owned(),
        body_cut,
        attachment_stripped: stripped,
        from,
        message_id,
    })
}

/// ING-212: tags removed, block elements become line breaks, entities decoded, runs of
/// blank lines collapsed.
pub fn html_to_text(html: &str) -> String {
    const BLOCKS: [&str; 18] = [
        "br",
        "p",
        "div",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "table",
        "blockquote",
        "pre",
        "hr",
        "section",
    ];
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&rest[..lt]);
        }
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..gt]
            .trim()
            .trim_start_matches('/')
            .to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = after.trim_start().starts_with('/');
        match (skip_until, name.as_str(), closing) {
            (Some(end), n, true) if n == end => skip_until = None,
            (Some(_), _, _) => {}
            (None, "script", false) => skip_until = Some("script"),
            (None, "style", false) => skip_until = Some("style"),
            (None, "head", false) => skip_until = Some("head"),
            (None, n, _) if BLOCKS.contains(&n) => out.push('\n'),
            _ => {}
        }
        rest = &after[gt + 1..];
    }
    if skip_until.is_none() {
        out.push_str(rest);
    }
    let decoded = decode_entities(&out);
    // Collapse whitespace inside lines (HTML source formatting), then runs of blank lines.
    let mut lines: Vec<String> = Vec::new();
    for line in decoded.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() && lines.last().is_none_or(|l: &String| l.is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

struct MailSubject<'a>(&'a Mail);

impl Subject for MailSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        match key {
            Key::Subject => Some(Cow::Borrowed(self.0.subject.as_str())),
            Key::Content => Some(Cow::Borrowed(self.0.body.as_str())),
            Key::From => Some(Cow::Borrowed(self.0.from.as_str())),
            _ => None,
        }
    }
}

/// What one message becomes for one integration.
#[derive(Debug, Clone, PartialEq)]
pub enum MailOutcome {
    Event(Box<NewEvent>),
    /// ING-216 `drop_unmatched`: outcome `dropped_unmatched_email`.
    DroppedUnmatched,
}

/// §3.8: the event of `mail` for the integration `integration_id` at `address`.
/// `random_key` (32 hex) is used by `always_new` when the message has no Message-ID.
pub fn to_event(
    mail: &Mail,
    raw: &[u8],
    integration_id: i64,
    address: &str,
    settings: &EmailSettings,
    received_at: Millis,
    random_key: &str,
) -> MailOutcome {
    let id = integration_id.to_string();
    let subject_key = || hash_parts(&["mail-subject", &id, mail.subject.trim()]);
    let (status, alert_key) = match settings.push_mode {
        PushMode::AlwaysNew => (
            Status::Warning,
            match &mail.message_id {
                Some(mid) => hash_parts(&["mail", &id, mid]),
                None => random_key.to_owned(),
            },
        ),
        PushMode::BySubject => (Status::Warning, subject_key()),
        PushMode::ByRules => {
            let key = settings.key_rule.as_ref().map(|(source, re)| {
                let text = match source {
                    KeySource::Subject => mail.subject.as_str(),
                    KeySource::Content => mail.body.as_str(),
                    KeySource::From => mail.from.as_str(),
                };
                (re, text)
            });
            let decision = push_rules::by_rules(
                &settings.rules,
                settings.drop_unmatched,
                &MailSubject(mail),
                key,
                "mail-key",
                &id,
            );
            match decision {
                Decision::Drop => return MailOutcome::DroppedUnmatched,
                Decision::Act(action, key) => {
                    let status = match action {
                        RuleAction::Trigger => Status::Warning,
                        RuleAction::Close => Status::Ok,
                    };
                    (status, key.unwrap_or_else(subject_key))
                }
            }
        }
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !mail.from.is_empty() {
        pairs.push(("from".into(), mail.from.clone()));
    }
    pairs.push(("to".into(), address.to_lowercase()));
    if let Some(mid) = &mail.message_id {
        pairs.push(("message_id".into(), mid.clone()));
    }
    if mail.body_cut {
        pairs.push(("body_cut".into(), "true".into()));
    }
    if mail.attachment_stripped {
        pairs.push(("attachment_stripped".into(), "true".into()));
    }
    let (labels, _) = adapter_labels(pairs);
    let title = if mail.subject.is_empty() {
        "(no subject)".to_owned()
    } else {
        truncate(&mail.subject, TITLE_MAX_CHARS)
    };
    MailOutcome::Event(Box::new(NewEvent {
        alert_key,
        event_status: status,
        event_severity: match status {
            Status::Ok => None,
            _ => Some(Severity::Warning),
        },
        title,
        title_rule: String::new(),
        description: mail.body.clone(),
        labels,
        images: Vec::new(),
        // §3.8: receive time, whole seconds (ING-029).
        event_time: received_at - received_at.rem_euclid(1000),
        raw: cut_bytes(&String::from_utf8_lossy(raw), RAW_MAX_BYTES).to_owned(),
    }))
}
