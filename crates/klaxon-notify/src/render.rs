//! Fixed renderings per channel, following what the default template must show (RSP-351) and
//! the size limits of RSP-348. Direct SMS, voice and e-mail sends are rendered from templates
//! (`klaxon_core::template`, see `templating.rs`); the bot channels still use these fixed
//! texts until their vendor formatting moves onto templates too.

use klaxon_core::model::Millis;

/// What a message says about an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub incident_id: String,
    pub num: String,
    pub title: String,
    pub description: String,
    /// `Critical`, `Warning` or `Info`.
    pub severity: String,
    /// `None` for a global incident (RSP-351).
    pub channel_name: String,
    /// RSP-355, with its trailing space, or "".
    pub fire_reason: String,
    pub start_time: Millis,
    pub alert_cnt: i64,
    /// Names of the responders of the firing, for `@name` mentions.
    pub responders: Vec<String>,
    /// `{base_url}/incident/detail/{incident_id}` (response.md 1.7).
    pub detail_url: String,
}

/// RSP-348 limits used here.
pub const SMS_MAX_CHARS: usize = 500;
pub const VOICE_MAX_CHARS: usize = 500;
pub const EMAIL_MAX_BYTES: usize = 1 << 20;
pub const BOT_MAX_BYTES: usize = 4000;
pub const SLACK_MAX_CHARS: usize = 15_000;
pub const TELEGRAM_MAX_CHARS: usize = 4096;
/// Longest description quoted in a message; the details link has the rest.
const DESCRIPTION_MAX_CHARS: usize = 1000;

/// RSP-355 from the notification's reason, its repeat number (RSP-343 `RepeatIndex`) and the
/// assignment type at delivery. The same rule the templates' `fireReason` applies, so the
/// built-in bodies and the templated ones agree.
pub fn fire_reason(reason: &str, repeat_index: i64, assign_type: &str) -> String {
    klaxon_core::template::fire_reason(reason, repeat_index, assign_type)
}

impl Message {
    /// The acknowledge link (RSP-316).
    pub fn ack_url(&self) -> String {
        format!("{}?ack=1", self.detail_url)
    }

    fn started(&self) -> String {
        jiff::Timestamp::from_millisecond(self.start_time)
            .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    }

    fn headline(&self) -> String {
        one_line(&format!(
            "{}INC #{} {}",
            self.fire_reason, self.num, self.title
        ))
    }

    fn description(&self) -> String {
        truncate_chars(self.description.trim(), DESCRIPTION_MAX_CHARS, "…")
    }

    /// RSP-351's default SMS and voice text, whitespace collapsed (RSP-347).
    fn phone_text(&self) -> String {
        let mut s = format!(
            "You have a pending incident: {}, Channel: {}, Severity: {}",
            self.title, self.channel_name, self.severity
        );
        if self.alert_cnt > 1 {
            s.push_str(&format!(", Grouped {} alerts", self.alert_cnt));
        }
        one_line(&s)
    }

    /// The SMS body: at most 500 characters, truncated ending in `…` (RSP-283, RSP-348).
    pub fn sms(&self) -> String {
        truncate_chars(&self.phone_text(), SMS_MAX_CHARS, "…")
    }

    /// What the call says: at most 500 characters, truncated (RSP-282, RSP-348).
    pub fn voice(&self) -> String {
        truncate_chars(&self.phone_text(), VOICE_MAX_CHARS, "")
    }

    /// The e-mail subject (RSP-284): plain text `<fireReason>INC #<num> <title>`.
    pub fn email_subject(&self) -> String {
        self.headline()
    }

    /// The e-mail bodies, HTML and plain text, each at most 1 MiB (RSP-348).
    /// The default e-mail, HTML and plain text. With a one-click `action` link
    /// (`{base_url}/act/{token}`) the e-mail offers Acknowledge, Close and Snooze through it;
    /// without one, the console's acknowledge link (RSP-316).
    pub fn email_bodies(&self, action: Option<&str>) -> (String, String) {
        let mut rows = vec![
            ("Channel", self.channel_name.clone()),
            ("Severity", self.severity.clone()),
            ("Started", self.started()),
        ];
        if self.alert_cnt > 1 {
            rows.push(("Alerts", format!("{} grouped", self.alert_cnt)));
        }
        if !self.responders.is_empty() {
            rows.push(("Responders", self.mentions_text()));
        }
        let mut html = format!(
            "<!doctype html><html><body><h2>{}</h2><table>",
            escape_html(&self.headline())
        );
        let mut text = format!("{}\n\n", self.headline());
        for (k, v) in &rows {
            html.push_str(&format!(
                "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
                escape_html(v)
            ));
            text.push_str(&format!("{k}: {v}\n"));
        }
        html.push_str("</table>");
        let desc = self.description();
        if !desc.is_empty() {
            html.push_str(&format!("<pre>{}</pre>", escape_html(&desc)));
            text.push_str(&format!("\n{desc}\n"));
        }
        let links: Vec<(&str, String)> = match action {
            Some(a) => vec![
                ("Details", self.detail_url.clone()),
                ("Acknowledge", format!("{a}?do=ack")),
                ("Close", format!("{a}?do=close")),
                ("Snooze", format!("{a}?do=snooze")),
            ],
            None => vec![
                ("Details", self.detail_url.clone()),
                ("Acknowledge", self.ack_url()),
            ],
        };
        let anchors: Vec<String> = links
            .iter()
            .map(|(label, url)| format!("<a href=\"{}\">{label}</a>", escape_html(url)))
            .collect();
        html.push_str(&format!("<p>{}</p></body></html>", anchors.join(" · ")));
        text.push('\n');
        for (label, url) in &links {
            text.push_str(&format!("{label}: {url}\n"));
        }
        (
            truncate_bytes(&html, EMAIL_MAX_BYTES),
            truncate_bytes(&text, EMAIL_MAX_BYTES),
        )
    }

    fn mentions_text(&self) -> String {
        self.responders
            .iter()
            .map(|n| format!("@{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The plain text of a bot message: headline, facts, description, responders as given
    /// in `mentions` (already formatted for the platform), links. Contains `#` (RSP-351).
    pub fn bot_text(&self, mentions: &str) -> String {
        let mut s = format!(
            "{}\nChannel: {}\nSeverity: {}\nStarted: {}\n",
            self.headline(),
            self.channel_name,
            self.severity,
            self.started()
        );
        if self.alert_cnt > 1 {
            s.push_str(&format!("Alerts: {} grouped\n", self.alert_cnt));
        }
        let desc = self.description();
        if !desc.is_empty() {
            s.push_str(&format!("{desc}\n"));
        }
        if !mentions.is_empty() {
            s.push_str(&format!("Responders: {mentions}\n"));
        }
        s.push_str(&format!(
            "Details: {}\nAcknowledge: {}",
            self.detail_url,
            self.ack_url()
        ));
        s
    }

    /// `@name` for every responder (RSP-289's plain form).
    pub fn plain_mentions(&self) -> String {
        self.mentions_text()
    }
}

/// Collapses runs of whitespace (newlines included) to single spaces, trimmed.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters; when cut, the last ones give way to `tail`.
pub fn truncate_chars(s: &str, max: usize, tail: &str) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(tail.chars().count());
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(tail);
    out
}

/// At most `max` bytes, never splitting a UTF-8 character (RSP-348).
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The plain-text alternative of a templated HTML e-mail: tags dropped (block ends become
/// line breaks), entities decoded, blank runs collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find('>') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let tag = rest[i + 1..i + j]
            .trim_start_matches('/')
            .to_ascii_lowercase();
        if [
            "br", "p", "tr", "h1", "h2", "h3", "div", "li", "table", "pre",
        ]
        .iter()
        .any(|t| tag.split(|c: char| !c.is_ascii_alphanumeric()).next() == Some(*t))
        {
            out.push('\n');
        } else if tag.starts_with("td") || tag.starts_with("th") {
            out.push(' ');
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#43;", "+")
        .replace("&amp;", "&");
    let lines: Vec<String> = decoded
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    truncate_bytes(&lines.join("\n"), EMAIL_MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            incident_id: "65a1b2c3d4e5f60718293a4b".into(),
            num: "A1B2C".into(),
            title: "db   down\non web-1".into(),
            description: "disk <full>".into(),
            severity: "Critical".into(),
            channel_name: "Payments".into(),
            fire_reason: "[Escalated] ".into(),
            start_time: 1_700_000_000_000,
            alert_cnt: 3,
            responders: vec!["Ann".into(), "Bo".into()],
            detail_url: "https://k.example/incident/detail/65a1b2c3d4e5f60718293a4b".into(),
        }
    }

    #[test]
    fn sms_is_the_default_text_collapsed_and_limited_to_500_chars() {
        // spec: RSP-351 (default sms text), RSP-347, RSP-348 (sms 500, ending in …)
        let m = msg();
        assert_eq!(
            m.sms(),
            "You have a pending incident: db down on web-1, Channel: Payments, Severity: Critical, Grouped 3 alerts"
        );
        let long = Message {
            title: "é".repeat(600),
            ..msg()
        };
        let sms = long.sms();
        assert_eq!(sms.chars().count(), 500);
        assert!(sms.ends_with('…'));
        assert_eq!(long.voice().chars().count(), 500);
        assert!(!long.voice().ends_with('…'));
    }

    #[test]
    fn email_subject_and_body() {
        // spec: RSP-284 (subject), RSP-355 (fireReason), RSP-351, RSP-316 (ack link)
        let m = msg();
        assert_eq!(m.email_subject(), "[Escalated] INC #A1B2C db down on web-1");
        let (html, text) = m.email_bodies(None);
        assert!(html.contains("disk &lt;full&gt;"), "{html}");
        assert!(html.contains(&format!("href=\"{}?ack=1\"", m.detail_url)));
        assert!(text.contains("Responders: @Ann @Bo"), "{text}");
        assert!(text.contains("Started: 2023-11-14 22:13:20 UTC"), "{text}");
        // With a one-click link the e-mail acts through it instead.
        let (html, text) = m.email_bodies(Some("https://k.example/act/T0k"));
        assert!(!html.contains("?ack=1"), "{html}");
        for verb in ["ack", "close", "snooze"] {
            assert!(
                html.contains(&format!("href=\"https://k.example/act/T0k?do={verb}\"")),
                "{html}"
            );
        }
        assert!(
            text.contains("Close: https://k.example/act/T0k?do=close"),
            "{text}"
        );
    }

    #[test]
    fn fire_reasons() {
        // spec: RSP-355
        assert_eq!(fire_reason("refire", 1, "assign"), "[Repeat 1] ");
        assert_eq!(fire_reason("refire", 3, "escalate"), "[Repeat 3] ");
        assert_eq!(fire_reason("storm", 0, "assign"), "[Alert storm] ");
        assert_eq!(fire_reason("wake", 0, "assign"), "[Snooze ended] ");
        assert_eq!(fire_reason("assign", 0, "escalate"), "[Escalated] ");
        assert_eq!(fire_reason("assign", 0, "reassign"), "[Reassigned] ");
        assert_eq!(fire_reason("assign", 0, "reopen"), "[Reopened] ");
        assert_eq!(fire_reason("assign", 0, "assign"), "");
    }

    #[test]
    fn truncation_never_splits_a_character() {
        // spec: RSP-348
        let s = "ab€€";
        assert_eq!(truncate_bytes(s, 4), "ab");
        assert_eq!(truncate_bytes(s, 5), "ab€");
        assert_eq!(truncate_bytes(s, 100), s);
        assert_eq!(truncate_chars("abcdef", 4, "…"), "abc…");
    }

    #[test]
    fn bot_text_has_the_hash_sign_links_and_mentions() {
        // spec: RSP-351 (`#` for keyword security, details and acknowledge links)
        let t = msg().bot_text("@Ann @Bo");
        assert!(
            t.starts_with("[Escalated] INC #A1B2C db down on web-1\n"),
            "{t}"
        );
        assert!(t.contains("Responders: @Ann @Bo"));
        assert!(t.ends_with("?ack=1"));
    }

    #[test]
    fn templated_html_gets_a_plain_text_alternative() {
        // spec: RSP-284 (e-mail body from the `email` template)
        assert_eq!(
            html_to_text(
                "<h2>INC #1 a &amp; b</h2><table><tr><th>Sev</th><td>Critical</td></tr></table>"
            ),
            "INC #1 a & b\nSev Critical"
        );
    }
}
