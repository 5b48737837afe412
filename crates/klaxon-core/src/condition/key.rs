//! Keys and contexts (ingest.md §4.2): what a condition looks at, and which keys each place
//! that uses the language allows.

use std::borrow::Cow;
use std::fmt;

pub(super) const LABEL_PREFIX: &str = "labels.";

/// What a condition looks at, parsed from the wire `key`.
///
/// New keys are added here and to the key lists of the contexts that allow them
/// ([`Context::keys`]); nothing else in the language depends on the key set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Title,
    Description,
    /// Which severity depends on the context: event, alert or incident severity.
    Severity,
    /// The integration id in decimal.
    IntegrationId,
    /// The integration type id (ingest.md §3.11).
    IntegrationType,
    /// `labels.<name>`: the name is everything after the first `labels.` and may itself
    /// contain dots (`labels.obj.instance` is the label `obj.instance`).
    Label(String),
    /// E-mail rules (ingest.md §2.18): the decoded subject.
    Subject,
    /// E-mail and chat-bot rules: the body text.
    Content,
    /// E-mail rules: the sender address.
    From,
}

impl Key {
    /// Parse a wire key; `None` for an unknown key or `labels.` without a name. Keys are
    /// case-sensitive. Whether the key is allowed where it is used is the context's business
    /// ([`Context::allows`]).
    pub fn parse(key: &str) -> Option<Key> {
        if let Some(name) = key.strip_prefix(LABEL_PREFIX) {
            return (!name.is_empty()).then(|| Key::Label(name.to_owned()));
        }
        match key {
            "title" => Some(Key::Title),
            "description" => Some(Key::Description),
            "severity" => Some(Key::Severity),
            "integration_id" => Some(Key::IntegrationId),
            "integration_type" => Some(Key::IntegrationType),
            "subject" => Some(Key::Subject),
            "content" => Some(Key::Content),
            "from" => Some(Key::From),
            _ => None,
        }
    }

    /// The wire spelling (`labels.obj.instance` for a label).
    pub fn as_wire(&self) -> Cow<'_, str> {
        match self {
            Key::Label(name) => Cow::Owned(format!("{LABEL_PREFIX}{name}")),
            other => Cow::Borrowed(other.family()),
        }
    }

    /// The name under which [`Context::keys`] lists this key: the wire name, or
    /// `labels.<name>` for every label.
    fn family(&self) -> &'static str {
        match self {
            Key::Title => "title",
            Key::Description => "description",
            Key::Severity => "severity",
            Key::IntegrationId => "integration_id",
            Key::IntegrationType => "integration_type",
            Key::Label(_) => "labels.<name>",
            Key::Subject => "subject",
            Key::Content => "content",
            Key::From => "from",
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_wire())
    }
}

/// Where a condition is evaluated (the context table of ingest.md §4.2). The context fixes
/// the allowed keys and whether `cidr:` / `num:` values are patterns or plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// Enrichment rule condition (event), ING-060.
    Enrichment,
    /// Pipeline action `condition` (event), ING-080.
    PipelineAction,
    /// Pipeline inhibit `source_conditions` (active alert), ING-085.
    PipelineInhibitSource,
    /// Route rule `conditions` (event), ING-091.
    Route,
    /// Channel drop rule `conditions` (event), ING-101.
    Drop,
    /// Silence rule `filters` (candidate alert), ING-130.
    Silence,
    /// Inhibit rule `target_conditions` (candidate alert), ING-140.
    InhibitTarget,
    /// Inhibit rule `source_conditions` (active incident), ING-140 / ING-141.
    InhibitSource,
    /// Fine-grained grouping rule (alert), ING-154.
    FineGrouping,
    /// E-mail `by_rules` rule (message), ING-216.
    EmailRule,
    /// Chat-bot `by_rules` rule (message), ING-218.
    ChatBotRule,
    /// Escalation rule incident filter, response.md RSP-134.
    Escalation,
    /// Alert/incident list label filter (search).
    LabelSearch,
}

/// Keys of the contexts that evaluate an event or a candidate alert.
const EVENT_KEYS: &[&str] = &[
    "title",
    "description",
    "severity",
    "labels.<name>",
    "integration_id",
    "integration_type",
];
/// Keys of the contexts that evaluate a stored alert or incident.
const OBJECT_KEYS: &[&str] = &["title", "description", "severity", "labels.<name>"];
const EMAIL_KEYS: &[&str] = &["subject", "content", "from"];
/// ING-218: "`content` as the only rule field besides `title`".
const CHAT_BOT_KEYS: &[&str] = &["title", "content"];
const LABEL_KEYS: &[&str] = &["labels.<name>"];

impl Context {
    /// The keys allowed here, as listed in error messages (`labels.<name>` stands for every
    /// label).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Context::Enrichment
            | Context::PipelineAction
            | Context::Route
            | Context::Drop
            | Context::Silence
            | Context::InhibitTarget
            | Context::FineGrouping => EVENT_KEYS,
            Context::PipelineInhibitSource | Context::InhibitSource | Context::Escalation => {
                OBJECT_KEYS
            }
            Context::EmailRule => EMAIL_KEYS,
            Context::ChatBotRule => CHAT_BOT_KEYS,
            Context::LabelSearch => LABEL_KEYS,
        }
    }

    pub fn allows(self, key: &Key) -> bool {
        self.keys().contains(&key.family())
    }

    /// Whether `cidr:` and `num:` values are patterns here. Where they are not, such a value
    /// is plain text (exact, or wildcard when it contains `*`/`?`).
    pub fn cidr_and_num_active(self) -> bool {
        !matches!(
            self,
            Context::PipelineInhibitSource
                | Context::InhibitSource
                | Context::Escalation
                | Context::LabelSearch
        )
    }
}
