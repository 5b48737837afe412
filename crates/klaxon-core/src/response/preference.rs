//! A member's personal notification preference (response.md 1.15, §2.21): the direct channels
//! they want per severity. Firings read it for direct assignments (RSP-157) and for levels
//! that follow preferences (RSP-155, RSP-330); shift reminders read its Info list (RSP-232).
//!
//! The wire shape (`/member/preference/*`) is
//! `{critical: [PrefChannel], warning: [PrefChannel], info: [PrefChannel]}` where a
//! `PrefChannel` is `{channel, integration_id?}`; a bare channel name is accepted for
//! `{channel}`. Validation here is pure; whether a named IM integration exists is the
//! caller's check ([`NotificationPreference::integration_refs`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rules::DIRECT_CHANNELS;
use crate::model::Severity;

/// The three severities in the order the preference lists them.
pub const SEVERITIES: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

/// At most this many entries per severity: every direct channel, and a few IM instances.
pub const MAX_ENTRIES: usize = 20;

/// One channel of a preference list. `integration_id` picks one instance of an IM app
/// integration; absent means the member's linked instance of that type (1.15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefChannel {
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<i64>,
}

impl PrefChannel {
    pub fn new(channel: impl Into<String>) -> PrefChannel {
        PrefChannel {
            channel: channel.into(),
            integration_id: None,
        }
    }

    /// IM app channels (`slack_app`, `feishu_app`, …) need a linked identity (RSP-332).
    pub fn is_im_app(&self) -> bool {
        is_im_app(&self.channel)
    }
}

/// Whether a direct channel is an IM app direct message (RSP-280), as opposed to voice, SMS,
/// e-mail and mobile push.
pub fn is_im_app(channel: &str) -> bool {
    channel.ends_with("_app") && channel != "app"
}

/// The IM integration `kind` an IM app channel sends through (`slack_app` → `slack`).
pub fn im_kind(channel: &str) -> Option<&str> {
    if is_im_app(channel) {
        channel.strip_suffix("_app")
    } else {
        None
    }
}

/// response.md 1.15.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPreference {
    pub critical: Vec<PrefChannel>,
    pub warning: Vec<PrefChannel>,
    pub info: Vec<PrefChannel>,
}

/// A refused preference, naming the bad part as the API reports it (`warning[1].channel`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PreferenceError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> PreferenceError {
    PreferenceError {
        field: field.into(),
        message: message.into(),
    }
}

fn key(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

impl Default for NotificationPreference {
    /// OQ-24: Critical `[email, sms, voice]`, Warning `[email, sms]`, Info `[email]`.
    fn default() -> Self {
        let list = |names: &[&str]| names.iter().map(|n| PrefChannel::new(*n)).collect();
        NotificationPreference {
            critical: list(&["email", "sms", "voice"]),
            warning: list(&["email", "sms"]),
            info: list(&["email"]),
        }
    }
}

impl NotificationPreference {
    pub fn for_severity(&self, sev: Severity) -> &[PrefChannel] {
        match sev {
            Severity::Critical => &self.critical,
            Severity::Warning => &self.warning,
            Severity::Info => &self.info,
        }
    }

    fn for_severity_mut(&mut self, sev: Severity) -> &mut Vec<PrefChannel> {
        match sev {
            Severity::Critical => &mut self.critical,
            Severity::Warning => &mut self.warning,
            Severity::Info => &mut self.info,
        }
    }

    /// Reads the wire object. Every severity is required (a partial body would leave the
    /// member unsure what the missing ones became); the result is validated.
    pub fn from_wire(v: &Value) -> Result<NotificationPreference, PreferenceError> {
        let Some(obj) = v.as_object() else {
            return Err(refuse(
                "preference",
                "must be an object with critical, warning and info",
            ));
        };
        let mut out = NotificationPreference {
            critical: Vec::new(),
            warning: Vec::new(),
            info: Vec::new(),
        };
        for sev in SEVERITIES {
            let name = key(sev);
            let Some(list) = obj.get(name).filter(|l| !l.is_null()) else {
                return Err(refuse(name, "required (a list of channels)"));
            };
            let Some(items) = list.as_array() else {
                return Err(refuse(name, "must be a list of channels"));
            };
            let dest = out.for_severity_mut(sev);
            for (i, item) in items.iter().enumerate() {
                let field = format!("{name}[{i}]");
                let entry = match item {
                    Value::String(s) => PrefChannel::new(s.trim()),
                    Value::Object(o) => {
                        let channel = match o.get("channel") {
                            Some(Value::String(s)) => s.trim().to_string(),
                            _ => {
                                return Err(refuse(
                                    format!("{field}.channel"),
                                    "required (a channel name)",
                                ));
                            }
                        };
                        let integration_id = match o.get("integration_id") {
                            None | Some(Value::Null) => None,
                            Some(Value::Number(n)) => match n.as_i64() {
                                Some(0) => None,
                                Some(id) => Some(id),
                                None => {
                                    return Err(refuse(
                                        format!("{field}.integration_id"),
                                        "must be an integration id",
                                    ));
                                }
                            },
                            Some(_) => {
                                return Err(refuse(
                                    format!("{field}.integration_id"),
                                    "must be an integration id",
                                ));
                            }
                        };
                        PrefChannel {
                            channel,
                            integration_id,
                        }
                    }
                    _ => {
                        return Err(refuse(
                            field,
                            "must be a channel name or {channel, integration_id}",
                        ));
                    }
                };
                dest.push(entry);
            }
        }
        out.validate()?;
        Ok(out)
    }

    /// The rules a stored preference keeps:
    /// - every channel is a direct channel (response.md 1.1 `DirectChannel`);
    /// - `integration_id` only on IM app channels, and positive;
    /// - no entry twice in one list (RSP-156 would send it once anyway);
    /// - each severity names at least one channel and at most [`MAX_ENTRIES`]: an empty list
    ///   would make a direct assignment notify the member of nothing, silently.
    pub fn validate(&self) -> Result<(), PreferenceError> {
        for sev in SEVERITIES {
            let name = key(sev);
            let list = self.for_severity(sev);
            if list.is_empty() {
                return Err(refuse(name, "choose at least one channel"));
            }
            if list.len() > MAX_ENTRIES {
                return Err(refuse(name, format!("at most {MAX_ENTRIES} channels")));
            }
            for (i, entry) in list.iter().enumerate() {
                let field = format!("{name}[{i}]");
                if !DIRECT_CHANNELS.contains(&entry.channel.as_str()) {
                    return Err(refuse(
                        format!("{field}.channel"),
                        format!(
                            "unknown channel {:?}; one of {}",
                            entry.channel,
                            DIRECT_CHANNELS.join(", ")
                        ),
                    ));
                }
                if let Some(id) = entry.integration_id {
                    if !entry.is_im_app() {
                        return Err(refuse(
                            format!("{field}.integration_id"),
                            format!(
                                "only IM app channels name an integration, not {}",
                                entry.channel
                            ),
                        ));
                    }
                    if id < 0 {
                        return Err(refuse(
                            format!("{field}.integration_id"),
                            "must be an integration id",
                        ));
                    }
                }
                if list[..i].contains(entry) {
                    return Err(refuse(field, format!("{} is listed twice", entry.channel)));
                }
            }
        }
        Ok(())
    }

    /// Every IM integration the preference names, with the field that names it, so the
    /// caller can check each exists and is of the channel's kind.
    pub fn integration_refs(&self) -> Vec<(String, &str, i64)> {
        let mut out = Vec::new();
        for sev in SEVERITIES {
            for (i, entry) in self.for_severity(sev).iter().enumerate() {
                if let Some(id) = entry.integration_id {
                    out.push((
                        format!("{}[{i}].integration_id", key(sev)),
                        entry.channel.as_str(),
                        id,
                    ));
                }
            }
        }
        out
    }

    /// The wire object of `/member/preference/info`.
    pub fn to_wire(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_defaults_are_those_of_oq_24() {
        // spec: OQ-24, response.md 1.15
        let d = NotificationPreference::default();
        let names = |sev| {
            d.for_severity(sev)
                .iter()
                .map(|c| c.channel.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Severity::Critical), ["email", "sms", "voice"]);
        assert_eq!(names(Severity::Warning), ["email", "sms"]);
        assert_eq!(names(Severity::Info), ["email"]);
        assert!(d.validate().is_ok());
    }

    #[test]
    fn the_wire_takes_names_and_objects_and_round_trips() {
        // spec: response.md 1.15 (PrefChannel = {channel, integration_id?})
        let p = NotificationPreference::from_wire(&json!({
            "critical": ["voice", {"channel": "slack_app", "integration_id": 7}],
            "warning": [{"channel": "sms"}],
            "info": [" email "],
        }))
        .unwrap();
        assert_eq!(
            p.critical,
            vec![
                PrefChannel::new("voice"),
                PrefChannel {
                    channel: "slack_app".into(),
                    integration_id: Some(7)
                }
            ]
        );
        assert_eq!(p.info, vec![PrefChannel::new("email")]);
        let again = NotificationPreference::from_wire(&p.to_wire()).unwrap();
        assert_eq!(again, p);
        assert_eq!(
            p.integration_refs(),
            vec![("critical[1].integration_id".to_string(), "slack_app", 7)]
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let err = |v: Value| NotificationPreference::from_wire(&v).unwrap_err().field;
        let ok = json!(["email"]);
        assert_eq!(err(json!([])), "preference");
        assert_eq!(err(json!({"critical": ok, "warning": ok})), "info");
        assert_eq!(
            err(json!({"critical": ok, "warning": "sms", "info": ok})),
            "warning"
        );
        assert_eq!(
            err(json!({"critical": ok, "warning": [], "info": ok})),
            "warning"
        );
        assert_eq!(
            err(json!({"critical": ["email", "pager"], "warning": ok, "info": ok})),
            "critical[1].channel"
        );
        assert_eq!(
            err(json!({"critical": ["email", "email"], "warning": ok, "info": ok})),
            "critical[1]"
        );
        assert_eq!(
            err(json!({"critical": ok, "warning": ok,
                       "info": [{"channel": "sms", "integration_id": 3}]})),
            "info[0].integration_id"
        );
        assert_eq!(
            err(json!({"critical": ok, "warning": ok,
                       "info": [{"channel": "slack_app", "integration_id": "x"}]})),
            "info[0].integration_id"
        );
        assert_eq!(
            err(json!({"critical": ok, "warning": ok, "info": [{"integration_id": 3}]})),
            "info[0].channel"
        );
        assert_eq!(
            err(json!({"critical": ok, "warning": ok, "info": [5]})),
            "info[0]"
        );
        // A group-only bot is no direct channel.
        assert_eq!(
            err(json!({"critical": ["slack"], "warning": ok, "info": ok})),
            "critical[0].channel"
        );
    }

    #[test]
    fn im_app_channels_and_their_kinds() {
        // spec: RSP-280, RSP-332
        assert_eq!(im_kind("slack_app"), Some("slack"));
        assert_eq!(im_kind("feishu_app"), Some("feishu"));
        assert_eq!(im_kind("app"), None);
        assert_eq!(im_kind("email"), None);
        assert!(PrefChannel::new("teams_app").is_im_app());
        assert!(!PrefChannel::new("app").is_im_app());
    }
}
