//! Chat-bot alert integrations (ingest.md ING-218): `dingtalk_alert`, `feishu_alert` and
//! `wecom_alert` take the body a tool would send to a DingTalk, Feishu/Lark or WeCom group
//! bot, so a tool that can only notify such a bot can feed Klaxon by changing the bot URL.
//!
//! Only the text and titled-text message types are read: DingTalk and WeCom `text` and
//! `markdown`, Feishu `text` and `post` (Feishu's titled rich text; its custom bots have no
//! `markdown` type). The message title — or the type's default title when the message has none
//! — is the alert title, the text the description, and the severity is always Warning. The
//! push modes of e-mail (ING-216) apply with the title in place of the subject; WeCom offers
//! only `always_new` and `by_rules` and falls back to a random key.
//!
//! Pure: the server reads the body, resolves the key and answers in the bot's own shape
//! (`klaxon-server/src/chatbots.rs`); anything random comes from the caller.

use std::borrow::Cow;

use klaxon_core::condition::{Context as FilterContext, Key, Subject};
use klaxon_core::error::ApiError;
use klaxon_core::model::{NewEvent, Status};
use klaxon_core::standard::hash_parts;
use regex::Regex;
use serde_json::{Map, Value};

use crate::Context;
use crate::common::{Draft, object};
use crate::push_rules::{self, Decision, Flavor, PushMode, Rule, RuleAction};

/// The three bot protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bot {
    DingTalk,
    Feishu,
    WeCom,
}

/// The integration types served by [`Bot`]s.
pub const TYPES: [&str; 3] = ["dingtalk_alert", "feishu_alert", "wecom_alert"];

/// The names `settings` may hold for a chat-bot integration.
pub const SETTING_NAMES: [&str; 4] = ["push_mode", "rules", "key_rule", "drop_unmatched"];

const KEY_SOURCES: &[&str] = &["title", "content"];

const FULL_FLAVOR: Flavor = Flavor {
    filter: FilterContext::ChatBotRule,
    modes: &[
        ("always_new", PushMode::AlwaysNew),
        ("by_subject", PushMode::BySubject),
        ("by_rules", PushMode::ByRules),
    ],
    key_sources: KEY_SOURCES,
};

/// ING-218: WeCom offers no title-keyed mode (its messages carry no title).
const WECOM_FLAVOR: Flavor = Flavor {
    filter: FilterContext::ChatBotRule,
    modes: &[
        ("always_new", PushMode::AlwaysNew),
        ("by_rules", PushMode::ByRules),
    ],
    key_sources: KEY_SOURCES,
};

impl Bot {
    /// The bot of an integration type, if it is one of [`TYPES`].
    pub fn from_type(integration_type: &str) -> Option<Bot> {
        match integration_type {
            "dingtalk_alert" => Some(Bot::DingTalk),
            "feishu_alert" => Some(Bot::Feishu),
            "wecom_alert" => Some(Bot::WeCom),
            _ => None,
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            Bot::DingTalk => "dingtalk_alert",
            Bot::Feishu => "feishu_alert",
            Bot::WeCom => "wecom_alert",
        }
    }

    /// ING-218: the title of a message that has none.
    pub fn default_title(self) -> &'static str {
        match self {
            Bot::DingTalk => "Dingtalk Alert",
            Bot::Feishu => "Feishu Alert",
            Bot::WeCom => "Wecom Alert",
        }
    }

    fn flavor(self) -> &'static Flavor {
        match self {
            Bot::WeCom => &WECOM_FLAVOR,
            _ => &FULL_FLAVOR,
        }
    }
}

/// `key_rule.source` of a chat-bot integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Title,
    Content,
}

/// The validated settings of one chat-bot integration (ING-216 via ING-218).
#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub push_mode: PushMode,
    pub rules: Vec<Rule>,
    pub key_rule: Option<(KeySource, Regex)>,
    pub drop_unmatched: bool,
}

impl ChatSettings {
    /// Validates the integration's `settings` object (on save and on receipt). Unknown
    /// members are the caller's business ([`SETTING_NAMES`]).
    pub fn from_json(bot: Bot, settings: &Value) -> Result<ChatSettings, ApiError> {
        let p = push_rules::parse(settings, bot.flavor())?;
        Ok(ChatSettings {
            push_mode: p.push_mode,
            rules: p.rules,
            key_rule: p.key_rule.map(|(i, re)| {
                let source = if i == 1 {
                    KeySource::Content
                } else {
                    KeySource::Title
                };
                (source, re)
            }),
            drop_unmatched: p.drop_unmatched,
        })
    }
}

/// A message as the rules and the mapping read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The protocol's message type as sent (`text`, `markdown`, `post`).
    pub msg_type: String,
    /// The message's own title, trimmed, or the bot's default title.
    pub title: String,
    /// The message text.
    pub content: String,
}

/// Why a body was refused; the server answers each in the bot's error form.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageError {
    /// A message type other than the two accepted ones.
    UnsupportedType(ApiError),
    /// A malformed body: a missing or mistyped field.
    Invalid(ApiError),
}

impl MessageError {
    pub fn error(&self) -> &ApiError {
        match self {
            MessageError::UnsupportedType(e) | MessageError::Invalid(e) => e,
        }
    }
}

fn invalid(message: impl Into<String>) -> MessageError {
    MessageError::Invalid(ApiError::invalid(message))
}

/// A required string member: missing, empty or not a string names `path`.
fn text<'v>(obj: &'v Map<String, Value>, field: &str, path: &str) -> Result<&'v str, MessageError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(invalid(format!("{path} is required")))
        }
        Some(_) => Err(invalid(format!("{path} must be a string"))),
    }
}

/// A required object member.
fn member<'v>(
    obj: &'v Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<&'v Map<String, Value>, MessageError> {
    match obj.get(field) {
        Some(Value::Object(o)) => Ok(o),
        None | Some(Value::Null) => Err(invalid(format!("{path} is required"))),
        Some(_) => Err(invalid(format!("{path} must be an object"))),
    }
}

/// An optional title: absent, null or blank → the bot's default.
fn title_or_default(
    obj: &Map<String, Value>,
    path: &str,
    bot: Bot,
) -> Result<String, MessageError> {
    match obj.get("title") {
        None | Some(Value::Null) => Ok(bot.default_title().to_owned()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(bot.default_title().to_owned()),
        Some(Value::String(s)) => Ok(s.trim().to_owned()),
        Some(_) => Err(invalid(format!("{path} must be a string"))),
    }
}

/// Reads one bot message (ING-218).
pub fn parse_message(bot: Bot, body: &Value) -> Result<Message, MessageError> {
    let obj = object(body, "the body").map_err(MessageError::Invalid)?;
    // DingTalk and WeCom name the type `msgtype`, Feishu `msg_type`.
    let type_field = if bot == Bot::Feishu {
        "msg_type"
    } else {
        "msgtype"
    };
    let msg_type = text(obj, type_field, type_field)?.to_owned();
    let (title, content) = match (bot, msg_type.as_str()) {
        (Bot::DingTalk | Bot::WeCom, "text") => {
            let t = member(obj, "text", "text")?;
            (
                bot.default_title().to_owned(),
                text(t, "content", "text.content")?.to_owned(),
            )
        }
        (Bot::DingTalk, "markdown") => {
            let m = member(obj, "markdown", "markdown")?;
            (
                title_or_default(m, "markdown.title", bot)?,
                text(m, "text", "markdown.text")?.to_owned(),
            )
        }
        // WeCom markdown has no title.
        (Bot::WeCom, "markdown") => {
            let m = member(obj, "markdown", "markdown")?;
            (
                bot.default_title().to_owned(),
                text(m, "content", "markdown.content")?.to_owned(),
            )
        }
        (Bot::Feishu, "text") => {
            let c = member(obj, "content", "content")?;
            (
                bot.default_title().to_owned(),
                text(c, "text", "content.text")?.to_owned(),
            )
        }
        (Bot::Feishu, "post") => feishu_post(member(obj, "content", "content")?)?,
        (_, other) => {
            let accepted = if bot == Bot::Feishu {
                "text or post"
            } else {
                "text or markdown"
            };
            return Err(MessageError::UnsupportedType(ApiError::invalid(format!(
                "{type_field} {other:?} is not accepted, only {accepted}"
            ))));
        }
    };
    Ok(Message {
        msg_type,
        title,
        content,
    })
}

/// Feishu `post`: `content.post.<language>{title, content[[element]]}`. The Chinese version
/// wins, then English, then Japanese, then whichever comes first. Text-bearing elements are
/// joined per paragraph; paragraphs become lines.
fn feishu_post(content: &Map<String, Value>) -> Result<(String, String), MessageError> {
    let post = member(content, "post", "content.post")?;
    let (lang, body) = ["zh_cn", "en_us", "ja_jp"]
        .iter()
        .find_map(|l| post.get(*l).map(|v| (l.to_string(), v)))
        .or_else(|| post.iter().next().map(|(l, v)| (l.clone(), v)))
        .ok_or_else(|| invalid("content.post needs a language version"))?;
    let path = format!("content.post.{lang}");
    let body = body
        .as_object()
        .ok_or_else(|| invalid(format!("{path} must be an object")))?;
    let title = title_or_default(body, &format!("{path}.title"), Bot::Feishu)?;
    let paragraphs = match body.get("content") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => return Err(invalid(format!("{path}.content is required"))),
        Some(_) => return Err(invalid(format!("{path}.content must be an array"))),
    };
    let mut lines = Vec::with_capacity(paragraphs.len());
    for (i, paragraph) in paragraphs.iter().enumerate() {
        let elements = paragraph
            .as_array()
            .ok_or_else(|| invalid(format!("{path}.content[{i}] must be an array")))?;
        let mut line = String::new();
        for element in elements {
            let Some(e) = element.as_object() else {
                continue;
            };
            let field = |name: &str| e.get(name).and_then(Value::as_str).unwrap_or("");
            match field("tag") {
                "text" | "md" => line.push_str(field("text")),
                "a" => {
                    line.push_str(field("text"));
                    if !field("href").is_empty() {
                        line.push_str(&format!(" ({})", field("href")));
                    }
                }
                "at" => {
                    let who = match field("user_name") {
                        "" => field("user_id"),
                        name => name,
                    };
                    line.push('@');
                    line.push_str(who);
                }
                // Images, emotions and dividers carry no text.
                _ => {}
            }
        }
        lines.push(line);
    }
    let text = lines.join("\n");
    if text.trim().is_empty() {
        return Err(invalid(format!("{path}.content has no text")));
    }
    Ok((title, text))
}

struct ChatSubject<'a>(&'a Message);

impl Subject for ChatSubject<'_> {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        match key {
            Key::Title => Some(Cow::Borrowed(self.0.title.as_str())),
            Key::Content => Some(Cow::Borrowed(self.0.content.as_str())),
            _ => None,
        }
    }
}

/// What one message becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatOutcome {
    Event(Box<NewEvent>),
    /// `drop_unmatched`: no rule matched.
    DroppedUnmatched,
}

/// ING-218: the event of `message`. `raw` is the body as received (ING-054); `random_key`
/// (32 hex) keys `always_new` messages and WeCom's fallback.
pub fn to_event(
    bot: Bot,
    message: &Message,
    raw: &str,
    settings: &ChatSettings,
    ctx: &Context<'_>,
    random_key: &str,
) -> ChatOutcome {
    let id = ctx.integration_id.to_string();
    // The spec's title key is the e-mail subject key with the title in place of the subject.
    let title_key = || hash_parts(&["mail-subject", &id, message.title.trim()]);
    let fallback = || match bot {
        Bot::WeCom => random_key.to_owned(),
        _ => title_key(),
    };
    let (status, alert_key) = match settings.push_mode {
        PushMode::AlwaysNew => (Status::Warning, random_key.to_owned()),
        PushMode::BySubject => (Status::Warning, title_key()),
        PushMode::ByRules => {
            let key = settings.key_rule.as_ref().map(|(source, re)| {
                let text = match source {
                    KeySource::Title => message.title.as_str(),
                    KeySource::Content => message.content.as_str(),
                };
                (re, text)
            });
            let decision = push_rules::by_rules(
                &settings.rules,
                settings.drop_unmatched,
                &ChatSubject(message),
                key,
                "mail-key",
                &id,
            );
            match decision {
                Decision::Drop => return ChatOutcome::DroppedUnmatched,
                Decision::Act(action, key) => {
                    let status = match action {
                        RuleAction::Trigger => Status::Warning,
                        RuleAction::Close => Status::Ok,
                    };
                    (status, key.unwrap_or_else(fallback))
                }
            }
        }
    };
    let mut draft = Draft::new(status, ctx.received_at);
    draft.title = message.title.clone();
    draft.description = message.content.clone();
    draft.alert_key = alert_key;
    draft.raw = raw.to_owned();
    ChatOutcome::Event(Box::new(draft.finish(ctx)))
}
