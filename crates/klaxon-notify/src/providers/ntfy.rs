//! App push through an ntfy server (response.md RSP-285; docs/notifications.md "App push"):
//! one JSON publish per device (`POST {ntfy_url}/` with the topic in the body), as ntfy
//! documents its JSON publishing.

use serde_json::{Value, json};

use super::{HttpProviders, SendError, clean};
use crate::config::PushConfig;

/// One push, before it is addressed to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// `INC #<num> <title>` (RSP-285).
    pub title: String,
    /// `<severity> · <channel name>` (RSP-285).
    pub body: String,
    /// `Critical`, `Warning` or `Info`.
    pub severity: String,
    /// Opened when the notification is tapped: the incident's page.
    pub click: String,
    /// The notification's one-click link (`{base_url}/act/{token}`): the buttons post to it.
    pub action_url: String,
}

/// ntfy's priority (1..5) for a severity. RSP-285: a Critical incident goes at the highest
/// priority, which the ntfy app lets through do-not-disturb when the user allows it.
pub fn priority(severity: &str) -> u8 {
    match severity {
        "Critical" => 5,
        "Warning" => 4,
        _ => 3,
    }
}

/// The JSON body of the publish to `topic`. ntfy shows at most three buttons: acknowledge,
/// snooze for two hours and close, each a POST of the action link's form that also clears
/// the notification.
pub fn body(push: &Push, topic: &str) -> Value {
    let button = |label: &str, form: &str| {
        json!({
            "action": "http",
            "label": label,
            "url": push.action_url,
            "method": "POST",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "body": form,
            "clear": true,
        })
    };
    let tag = match push.severity.as_str() {
        "Critical" => "rotating_light",
        "Warning" => "warning",
        _ => "information_source",
    };
    json!({
        "topic": topic,
        "title": push.title,
        "message": push.body,
        "priority": priority(&push.severity),
        "tags": [tag],
        "click": push.click,
        "actions": [
            button("Acknowledge", "action=ack"),
            button("Snooze 2h", "action=snooze&minutes=120"),
            button("Close", "action=close"),
        ],
    })
}

impl HttpProviders {
    /// Publishes `push` to one device's topic. Ok = ntfy's message id.
    pub async fn ntfy_publish(
        &self,
        cfg: &PushConfig,
        rid: &str,
        topic: &str,
        push: &Push,
    ) -> Result<String, SendError> {
        let url = self.url(&format!("{}/", cfg.ntfy_url.trim().trim_end_matches('/')))?;
        let mut req = self
            .client()?
            .post(url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", rid)
            .body(body(push, topic).to_string());
        if !cfg.access_token.is_empty() {
            req = req.bearer_auth(&cfg.access_token);
        }
        let (status, text) = self.send(req).await?;
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(parsed["id"].as_str().unwrap_or_default().to_string());
        }
        // ntfy answers errors as {"code": 40301, "http": 403, "error": "forbidden", …}.
        let message = match (parsed["code"].as_i64(), parsed["error"].as_str()) {
            (Some(code), Some(e)) => format!("{code} {e}"),
            (None, Some(e)) => e.to_string(),
            _ => format!("HTTP {status}"),
        };
        if status == 429 {
            Err(SendError::RateLimited(clean(&message)))
        } else if status >= 500 {
            Err(SendError::Transient(clean(&message)))
        } else {
            Err(SendError::provider(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(severity: &str) -> Push {
        Push {
            title: "INC #12 db down".into(),
            body: format!("{severity} · Payments"),
            severity: severity.into(),
            click: "https://k.example/incident/detail/abc".into(),
            action_url: "https://k.example/act/T0k".into(),
        }
    }

    #[test]
    fn a_push_names_the_incident_and_critical_breaks_through() {
        // spec: RSP-285 (title, body, tap opens the incident, critical at the top priority)
        let b = body(&push("Critical"), "klaxon-abc");
        assert_eq!(b["topic"], "klaxon-abc");
        assert_eq!(b["title"], "INC #12 db down");
        assert_eq!(b["message"], "Critical · Payments");
        assert_eq!(b["click"], "https://k.example/incident/detail/abc");
        assert_eq!(b["priority"], 5);
        assert_eq!(body(&push("Warning"), "t")["priority"], 4);
        assert_eq!(body(&push("Info"), "t")["priority"], 3);
        // The app can act: each button posts the one-click link's form.
        let actions = b["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 3, "ntfy shows at most three buttons");
        let forms: Vec<&str> = actions
            .iter()
            .map(|a| a["body"].as_str().unwrap())
            .collect();
        assert_eq!(
            forms,
            ["action=ack", "action=snooze&minutes=120", "action=close"]
        );
        assert!(
            actions
                .iter()
                .all(|a| a["url"] == "https://k.example/act/T0k"
                    && a["method"] == "POST"
                    && a["action"] == "http")
        );
    }
}
