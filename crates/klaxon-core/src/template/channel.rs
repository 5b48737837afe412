//! Per-channel rules: which body applies, the render-time fallback (RSP-346), post-processing
//! (RSP-347) and size limits (RSP-348).

use super::defaults::default_body;
use super::{Env, Vars, render_str};

/// The 14 `TemplateChannel` keys (response.md, exactly these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Sms,
    Voice,
    Dingtalk,
    Wecom,
    Feishu,
    FeishuApp,
    DingtalkApp,
    WecomApp,
    Slack,
    SlackApp,
    TeamsApp,
    Telegram,
    Zoom,
}

impl Channel {
    pub const ALL: [Channel; 14] = [
        Channel::Email,
        Channel::Sms,
        Channel::Voice,
        Channel::Dingtalk,
        Channel::Wecom,
        Channel::Feishu,
        Channel::FeishuApp,
        Channel::DingtalkApp,
        Channel::WecomApp,
        Channel::Slack,
        Channel::SlackApp,
        Channel::TeamsApp,
        Channel::Telegram,
        Channel::Zoom,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Dingtalk => "dingtalk",
            Channel::Wecom => "wecom",
            Channel::Feishu => "feishu",
            Channel::FeishuApp => "feishu_app",
            Channel::DingtalkApp => "dingtalk_app",
            Channel::WecomApp => "wecom_app",
            Channel::Slack => "slack",
            Channel::SlackApp => "slack_app",
            Channel::TeamsApp => "teams_app",
            Channel::Telegram => "telegram",
            Channel::Zoom => "zoom",
        }
    }

    pub fn from_key(key: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.key() == key)
    }

    fn is_im_app(self) -> bool {
        matches!(
            self,
            Channel::FeishuApp
                | Channel::DingtalkApp
                | Channel::WecomApp
                | Channel::SlackApp
                | Channel::TeamsApp
        )
    }
}

/// What a send carries after rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The text to send, post-processed and within the channel's limit.
    pub text: String,
    /// The custom body failed and the default body was used (RSP-346).
    pub template_fallback: bool,
    /// The error that caused the fallback, for previews and logs.
    pub error: Option<String>,
    /// `message_too_long` when the channel refuses oversize text instead of truncating.
    pub failed_reason: Option<&'static str>,
    /// The text was cut to the limit.
    pub truncated: bool,
}

/// Render `custom` (a non-empty custom body, or `None` for the default) for `channel` the way
/// delivery does: a failing custom body falls back to the default (RSP-346), then
/// post-processing and limits apply (RSP-347, RSP-348).
pub fn render(channel: Channel, custom: Option<&str>, vars: &Vars, env: &Env) -> Outcome {
    let env = Env {
        escape_html: channel == Channel::Email,
        ..env.clone()
    };
    let (raw, fallback, error) = match custom.filter(|b| !b.is_empty()) {
        Some(body) => match render_str(body, vars, &env).map_err(|e| e.to_string()) {
            Ok(t) => match shape_error(channel, &t) {
                None => (t, false, None),
                Some(e) => (render_default(channel, vars, &env), true, Some(e)),
            },
            Err(e) => (render_default(channel, vars, &env), true, Some(e)),
        },
        None => (render_default(channel, vars, &env), false, None),
    };
    let mut out = finish(channel, &raw, vars, &env);
    out.template_fallback = fallback;
    out.error = error;
    out
}

/// The default body cannot fail on well-formed data; if it ever did, a minimal headline still
/// goes out so the page is not lost.
fn render_default(channel: Channel, vars: &Vars, env: &Env) -> String {
    render_str(default_body(channel), vars, env)
        .unwrap_or_else(|_| format!("INC #{} {}", vars.num, vars.title))
}

/// RSP-350: the Zoom bot takes only `{content: {head, body: [...]}, is_markdown_support?}`;
/// a custom body that renders to anything else would be refused by Zoom, so it counts as a
/// failed template and the default goes out instead (RSP-346). Other channels take any text.
pub fn shape_error(channel: Channel, text: &str) -> Option<String> {
    if channel != Channel::Zoom {
        return None;
    }
    let v: serde_json::Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => return Some(format!("zoom: the body must render to a JSON object: {e}")),
    };
    let content = &v["content"];
    if !v.is_object() || !content["head"].is_object() || !content["body"].is_array() {
        return Some(
            "zoom: the body must render to {\"content\": {\"head\": {...}, \"body\": [...]}}"
                .into(),
        );
    }
    if v.get("is_markdown_support")
        .is_some_and(|m| !m.is_boolean())
    {
        return Some("zoom: is_markdown_support must be true or false".into());
    }
    None
}

fn is_json_card(channel: Channel, text: &str) -> bool {
    match channel {
        Channel::Feishu => serde_json::from_str::<serde_json::Value>(text.trim())
            .ok()
            .and_then(|v| {
                v.get("msg_type")
                    .and_then(|m| m.as_str())
                    .map(|m| m == "interactive" || m == "post")
            })
            .unwrap_or(false),
        Channel::Zoom => text.trim_start().starts_with('{'),
        _ => false,
    }
}

/// RSP-347 then RSP-348.
fn finish(channel: Channel, raw: &str, vars: &Vars, env: &Env) -> Outcome {
    let json = is_json_card(channel, raw);
    let text = post_process(channel, raw, json);
    let mut out = Outcome {
        text,
        template_fallback: false,
        error: None,
        failed_reason: None,
        truncated: false,
    };
    match channel {
        Channel::Feishu | Channel::Dingtalk | Channel::Wecom => limit_bytes(&mut out, 4000),
        Channel::Telegram => refuse_chars(&mut out, 4096),
        Channel::Slack | Channel::SlackApp => limit_chars(&mut out, 15_000, ""),
        Channel::Zoom => limit_chars(&mut out, 4000, ""),
        Channel::TeamsApp => {
            if out.text.len() > 28_672 {
                out.failed_reason = Some("message_too_long");
            }
        }
        Channel::WecomApp => {
            let lines: Vec<&str> = out.text.lines().collect();
            if lines.len() > 8 {
                out.text = lines[..8].join("\n");
                out.truncated = true;
            }
        }
        Channel::FeishuApp | Channel::DingtalkApp => limit_bytes(&mut out, 30_000),
        Channel::Sms => limit_chars(&mut out, 500, "…"),
        Channel::Voice => limit_chars(&mut out, 500, ""),
        Channel::Email => limit_bytes(&mut out, 1 << 20),
    }
    // A JSON card over its limit would be cut into invalid JSON: send the channel's plain-text
    // form instead, truncated (RSP-348, OQ-26).
    if json && out.truncated {
        let plain = render_str(default_body(Channel::Dingtalk), vars, env).unwrap_or_default();
        let plain = post_process(Channel::Dingtalk, &plain, false);
        let mut p = Outcome {
            text: plain,
            ..out.clone()
        };
        p.truncated = false;
        if channel == Channel::Zoom {
            limit_chars(&mut p, 3000, "");
            p.text = serde_json::json!({"content": {"head": {"text": format!("INC #{}", vars.num)}, "body": [{"type": "message", "text": p.text}]}}).to_string();
            limit_chars(&mut p, 4000, "");
        } else {
            limit_bytes(&mut p, 4000);
        }
        p.truncated = true;
        return p;
    }
    out
}

fn post_process(channel: Channel, raw: &str, json: bool) -> String {
    match channel {
        c if c.is_im_app() => drop_blank_lines(raw),
        Channel::Dingtalk
        | Channel::Wecom
        | Channel::Telegram
        | Channel::Slack
        | Channel::Zoom
        | Channel::Feishu => {
            if !json && raw.contains("<br>") {
                drop_blank_lines(raw).replace("<br>", "\n")
            } else {
                raw.to_string()
            }
        }
        Channel::Sms | Channel::Voice => raw.split_whitespace().collect::<Vec<_>>().join(" "),
        _ => raw.to_string(),
    }
}

fn drop_blank_lines(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Cut to `max` bytes without splitting a UTF-8 character.
fn limit_bytes(o: &mut Outcome, max: usize) {
    if o.text.len() > max {
        let mut end = max;
        while !o.text.is_char_boundary(end) {
            end -= 1;
        }
        o.text.truncate(end);
        o.truncated = true;
    }
}

/// Cut to `max` characters; `tail` (e.g. `…`) counts towards the limit.
fn limit_chars(o: &mut Outcome, max: usize, tail: &str) {
    if o.text.chars().count() > max {
        let keep = max.saturating_sub(tail.chars().count());
        let mut t: String = o.text.chars().take(keep).collect();
        t.push_str(tail);
        o.text = t;
        o.truncated = true;
    }
}

fn refuse_chars(o: &mut Outcome, max: usize) {
    if o.text.chars().count() > max {
        o.failed_reason = Some("message_too_long");
    }
}
