//! The `[notify]` section of the configuration file (docs/notifications.md).

use serde::Deserialize;

/// Delivery settings and providers. A channel whose provider is not configured records
/// `provider_error:not_configured` (RSP-291).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Allow outbound HTTP requests to loopback, private, link-local and other non-public
    /// addresses. Off by default, so a bot URL typed into an escalation rule cannot reach into
    /// the network Klaxon runs in. Tests and closed installations turn it on.
    pub allow_private_targets: bool,
    /// Let outbound webhooks (response.md §2.23) reach loopback and private addresses even
    /// when `allow_private_targets` is off. On by default: RSP-380 lets webhook endpoints be
    /// private (receivers usually live inside the operator's network, and only people with
    /// Integrations Manage configure them). A cloud operator turns it off.
    pub webhook_private_targets: bool,
    /// Attempts per notification, the first included, before a transient provider error
    /// becomes a failure.
    pub max_attempts: u32,
    /// Back-off before the second attempt; it doubles with every further attempt.
    pub retry_base_ms: u64,
    /// Longest back-off between two attempts.
    pub retry_max_ms: u64,
    /// Timeout of one provider request (connect and response), at most 30 000.
    pub timeout_ms: u64,
    /// Notifications sent at the same time by one node.
    pub concurrency: usize,
    /// E-mail over SMTP; absent = e-mail is not configured.
    pub email: Option<SmtpConfig>,
    /// SMS and voice through a Twilio-compatible API; absent = neither is configured.
    pub twilio: Option<TwilioConfig>,
    /// A second SMTP server, tried when `email` fails (RSP-291 failover).
    pub email_backup: Option<SmtpConfig>,
    /// A second Twilio-compatible account or service, tried when `twilio` fails.
    pub twilio_backup: Option<TwilioConfig>,
    /// The Slack Web API origin the Slack app channel calls (`chat.postMessage`); Slack's own
    /// by default. Tests and proxies point it elsewhere.
    pub slack_api_base: String,
    /// The Microsoft identity platform the Teams app obtains its Bot Connector tokens from;
    /// Microsoft's by default. Tests point it at a fake.
    pub teams_login_base: String,
    /// Where the Bot Connector publishes the keys its requests are signed with (OpenID
    /// metadata); Microsoft's by default. Tests point it at a fake that signs with its own
    /// key.
    pub teams_openid_url: String,
    /// App push through an ntfy server (RSP-285); absent = app push is not configured and
    /// members cannot add devices.
    pub push: Option<PushConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            allow_private_targets: false,
            webhook_private_targets: true,
            max_attempts: 6,
            retry_base_ms: 2_000,
            retry_max_ms: 300_000,
            timeout_ms: 10_000,
            concurrency: 8,
            email: None,
            twilio: None,
            email_backup: None,
            twilio_backup: None,
            slack_api_base: "https://slack.com/api".to_string(),
            teams_login_base: crate::teams::DEFAULT_LOGIN_BASE.to_string(),
            teams_openid_url: crate::teams::DEFAULT_OPENID_URL.to_string(),
            push: None,
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption at all (a relay on the same host or network).
    None,
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Empty = no authentication.
    pub username: String,
    pub password: String,
    /// The sender, `Name <address>` or a bare address (RSP-284).
    pub from: String,
    /// A PEM file of extra CA certificates to trust for this server (a private CA); "" = the
    /// built-in web roots only.
    pub ca_file: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: String::new(),
            password: String::new(),
            from: String::new(),
            ca_file: String::new(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    /// The API origin; Twilio's own by default. Any Twilio-compatible service works.
    pub api_base: String,
    pub account_sid: String,
    pub auth_token: String,
    /// The sending number (E.164) of SMS and the caller id of calls.
    pub from: String,
    /// Send SMS through this account.
    pub sms: bool,
    /// Place voice calls through this account.
    pub voice: bool,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            api_base: "https://api.twilio.com".to_string(),
            account_sid: String::new(),
            auth_token: String::new(),
            from: String::new(),
            sms: true,
            voice: true,
        }
    }
}

impl NotifyConfig {
    /// Checks what serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 || self.max_attempts > 20 {
            return Err("notify.max_attempts must be 1..20".into());
        }
        if self.retry_base_ms == 0 || self.retry_base_ms > self.retry_max_ms {
            return Err("notify.retry_base_ms must be > 0 and <= notify.retry_max_ms".into());
        }
        if self.timeout_ms == 0 || self.timeout_ms > 30_000 {
            return Err("notify.timeout_ms must be 1..30000".into());
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return Err("notify.concurrency must be 1..256".into());
        }
        if !(self.slack_api_base.starts_with("https://")
            || self.slack_api_base.starts_with("http://"))
        {
            return Err("notify.slack_api_base must be an http(s) URL".into());
        }
        for (key, v) in [
            ("teams_login_base", &self.teams_login_base),
            ("teams_openid_url", &self.teams_openid_url),
        ] {
            if !(v.starts_with("https://") || v.starts_with("http://")) {
                return Err(format!("notify.{key} must be an http(s) URL"));
            }
        }
        if let Some(p) = &self.push {
            let url = p.ntfy_url.trim_end_matches('/');
            if !(url.starts_with("https://") || url.starts_with("http://"))
                || reqwest::Url::parse(url).is_err()
            {
                return Err("notify.push.ntfy_url must be an http(s) URL".into());
            }
        }
        for (key, email) in [("email", &self.email), ("email_backup", &self.email_backup)] {
            if let Some(e) = email {
                check_smtp(key, e)?;
            }
        }
        for (key, twilio) in [
            ("twilio", &self.twilio),
            ("twilio_backup", &self.twilio_backup),
        ] {
            if let Some(t) = twilio {
                check_twilio(key, t)?;
            }
        }
        Ok(())
    }
}

fn check_smtp(key: &str, e: &SmtpConfig) -> Result<(), String> {
    if e.host.trim().is_empty() {
        return Err(format!("notify.{key}.host is required"));
    }
    if e.from.trim().is_empty() {
        return Err(format!("notify.{key}.from is required"));
    }
    if e.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(format!(
            "notify.{key}.from: {:?} is not an e-mail address",
            e.from
        ));
    }
    if e.username.is_empty() != e.password.is_empty() {
        return Err(format!("notify.{key}.username and password go together"));
    }
    Ok(())
}

fn check_twilio(key: &str, t: &TwilioConfig) -> Result<(), String> {
    for (field, v) in [
        ("account_sid", &t.account_sid),
        ("auth_token", &t.auth_token),
        ("from", &t.from),
    ] {
        if v.trim().is_empty() {
            return Err(format!("notify.{key}.{field} is required"));
        }
    }
    if !(t.api_base.starts_with("https://") || t.api_base.starts_with("http://")) {
        return Err(format!("notify.{key}.api_base must be an http(s) URL"));
    }
    Ok(())
}

// Secrets never reach a log line through `{:?}`.
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("api_base", &self.api_base)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .field("sms", &self.sms)
            .field("voice", &self.voice)
            .finish()
    }
}

/// `[notify.push]`: app push through an ntfy server (docs/notifications.md "App push").
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// The ntfy server's origin: a self-hosted one, or the public `https://ntfy.sh`. Klaxon
    /// publishes to it, and members subscribe their phones to it.
    pub ntfy_url: String,
    /// An access token of a user who may publish to the topics (`tk_…`), sent as a bearer
    /// token; "" = publish anonymously (a server that allows it).
    pub access_token: String,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            ntfy_url: "https://ntfy.sh".to_string(),
            access_token: String::new(),
        }
    }
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("ntfy_url", &self.ntfy_url)
            .field("access_token", &"<redacted>")
            .finish()
    }
}
