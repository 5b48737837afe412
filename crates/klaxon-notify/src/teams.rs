//! The Microsoft Teams app (response.md §2.19 RSP-300/RSP-301/RSP-302, §2.20 RSP-310/RSP-311/
//! RSP-317, RSP-045): the Adaptive Card its messages carry, the `Action.Submit` data the
//! messaging endpoint reads back, the bot commands, and the cache of the Bot Connector access
//! token.
//!
//! The card is an Adaptive Card (1.4): the header line in the severity colour (Adaptive Cards
//! offer named colours: `attention`, `warning`, `accent`, `good`), the state, the rendered
//! `teams_app` template and the note of what was just done, then the buttons (RSP-311):
//! Acknowledge, Close, Snooze 2 hours, "Snooze longer" (a card that opens under the buttons
//! with a choice of 4, 12 or 24 hours) and Details.

use serde_json::{Value, json};

use crate::card::{Action, Card, SNOOZE_MENU_MINUTES, SNOOZE_ONE_CLICK_MINUTES, snooze_end};

/// The issuer of the tokens the Bot Connector service sends with every activity.
pub const ISSUER: &str = "https://api.botframework.com";
/// Where the Bot Connector publishes the keys its tokens are signed with.
pub const DEFAULT_OPENID_URL: &str =
    "https://login.botframework.com/v1/.well-known/openidconfiguration";
/// The Microsoft identity platform, which issues the bot's own access tokens.
pub const DEFAULT_LOGIN_BASE: &str = "https://login.microsoftonline.com";
/// The tenant of a multi-tenant bot's tokens.
pub const DEFAULT_TENANT: &str = "botframework.com";
pub const SCOPE: &str = "https://api.botframework.com/.default";

/// The `klaxon` value of the buttons' data.
pub const ACTION_ACK: &str = "ack";
pub const ACTION_CLOSE: &str = "close";
pub const ACTION_SNOOZE: &str = "snooze";
pub const ACTION_SNOOZE_MENU: &str = "snooze_menu";

/// The Adaptive Card colour of the severity colours of [`crate::card::colour`].
pub fn colour(severity: &str, progress: &str) -> &'static str {
    if progress == "Closed" {
        return "good";
    }
    match severity {
        "Critical" => "attention",
        "Warning" => "warning",
        _ => "accent",
    }
}

fn text(t: &str) -> Value {
    json!({"type": "TextBlock", "text": t, "wrap": true})
}

/// Adaptive Card text is Markdown: incident text is escaped so it cannot add links or
/// formatting.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '`' | '<' | '>' | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn state_line(card: &Card) -> String {
    let mut parts = vec![card.severity.clone(), card.progress.clone()];
    if card.snoozed_before > 0 && card.progress != "Closed" {
        parts.push(card.texts().snoozed_until(&snooze_end(card)));
    }
    parts.join(" · ")
}

/// A responder named on a chat card (RSP-289): the linked Teams user id, if any, and the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub user_id: Option<String>,
    pub name: String,
}

impl Mention {
    /// The text that names the person: `<at>name</at>` for a linked user (Teams renders it as
    /// a mention and notifies them when the card lists the matching entity), else `@name`.
    fn text(&self) -> String {
        match &self.user_id {
            Some(_) => format!("<at>{}</at>", escape(&self.name)),
            None => format!("@{}", escape(&self.name)),
        }
    }

    /// The card's `msteams.entities` entry of a linked user; the text must match exactly.
    fn entity(&self) -> Option<Value> {
        let id = self.user_id.as_ref()?;
        Some(json!({"type": "mention", "text": self.text(),
                    "mentioned": {"id": id, "name": self.name}}))
    }
}

/// The card of a direct message or a linked team or chat (RSP-286, RSP-311, RSP-317). A
/// chat's card names the responders under the state, linked ones as real mentions.
pub fn card(card: &Card, mentions: &[Mention]) -> Value {
    let t = card.texts();
    let headline = format!("INC #{} {}", card.num, card.title);
    let header = if card.outlier {
        format!("{} {headline}", t.outlier)
    } else {
        headline
    };
    let mut body = vec![json!({
        "type": "TextBlock", "text": escape(&crate::render::one_line(&header)), "wrap": true,
        "weight": "Bolder", "size": "Medium", "color": colour(&card.severity, &card.progress),
    })];
    body.push(
        json!({"type": "TextBlock", "text": state_line(card), "wrap": true,
                     "isSubtle": true}),
    );
    if !mentions.is_empty() {
        let names: Vec<String> = mentions.iter().map(Mention::text).collect();
        body.push(text(&names.join(" ")));
    }
    if !card.body.is_empty() {
        body.push(text(&escape(&card.body)));
    }
    if !card.note.is_empty() {
        body.push(
            json!({"type": "TextBlock", "text": escape(&card.note), "wrap": true,
                         "isSubtle": true, "size": "Small"}),
        );
    }
    let details = json!({"type": "Action.OpenUrl", "title": t.details, "url": card.detail_url});
    let actions = if card.progress == "Closed" {
        vec![details]
    } else {
        let id = &card.incident_id;
        let choices: Vec<Value> = SNOOZE_MENU_MINUTES
            .iter()
            .map(|m| json!({"title": t.hours(m / 60), "value": m.to_string()}))
            .collect();
        vec![
            json!({"type": "Action.Submit", "title": t.acknowledge, "style": "positive",
                   "data": {"klaxon": ACTION_ACK, "incident_id": id}}),
            json!({"type": "Action.Submit", "title": t.close, "style": "destructive",
                   "data": {"klaxon": ACTION_CLOSE, "incident_id": id}}),
            json!({"type": "Action.Submit", "title": t.snooze_one_click,
                   "data": {"klaxon": ACTION_SNOOZE, "incident_id": id,
                            "minutes": SNOOZE_ONE_CLICK_MINUTES.to_string()}}),
            json!({"type": "Action.ShowCard", "title": t.snooze_longer, "card": {
                "type": "AdaptiveCard",
                "body": [{"type": "Input.ChoiceSet", "id": "minutes", "choices": choices,
                          "value": SNOOZE_MENU_MINUTES[0].to_string()}],
                "actions": [{"type": "Action.Submit", "title": t.snooze,
                             "data": {"klaxon": ACTION_SNOOZE_MENU, "incident_id": id}}],
            }}),
            details,
        ]
    };
    let mut out = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
        "actions": actions,
    });
    let entities: Vec<Value> = mentions.iter().filter_map(Mention::entity).collect();
    if !entities.is_empty() {
        out["msteams"] = json!({"entities": entities});
    }
    out
}

/// The message activity that carries `card`.
pub fn activity(card: &Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                         "content": card}],
    })
}

/// A text reply of the bot.
pub fn text_activity(text: &str) -> Value {
    json!({"type": "message", "text": text})
}

/// Reads the data of an `Action.Submit` (a message activity's `value`). `None` for anything
/// the card does not offer.
pub fn parse_action(value: &Value) -> Option<Action> {
    let kind = value.get("klaxon").and_then(Value::as_str)?;
    let incident_id = value
        .get("incident_id")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty() && v.len() <= 64)?
        .to_string();
    let minutes = match value.get("minutes") {
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    match kind {
        ACTION_ACK => Some(Action::Ack { incident_id }),
        ACTION_CLOSE => Some(Action::Close { incident_id }),
        ACTION_SNOOZE => (minutes? == SNOOZE_ONE_CLICK_MINUTES).then_some(Action::Snooze {
            incident_id,
            minutes: SNOOZE_ONE_CLICK_MINUTES,
        }),
        ACTION_SNOOZE_MENU => {
            let m = minutes?;
            SNOOZE_MENU_MINUTES.contains(&m).then_some(Action::Snooze {
                incident_id,
                minutes: m,
            })
        }
        _ => None,
    }
}

/// A bot command (RSP-300, RSP-301, RSP-302).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `linkTeam {ID}`, sent in a team's General channel.
    LinkTeam { id: String },
    /// `linkChat {ID} {ChatName}`, sent in a group chat.
    LinkChat { id: String, name: String },
    /// `linkUser {code}`, sent to the bot in a personal chat.
    LinkUser { code: String },
}

/// Reads a command from a message's text: mentions of the bot (`<at>…</at>`) are dropped, the
/// command word is case-insensitive, braces around arguments are optional. `None` for any
/// other text.
pub fn parse_command(text: &str) -> Option<Command> {
    let mut plain = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<at>") {
        plain.push_str(&rest[..start]);
        match rest[start..].find("</at>") {
            Some(end) => rest = &rest[start + end + 5..],
            None => {
                rest = "";
            }
        }
    }
    plain.push_str(rest);
    let plain = plain.replace("&nbsp;", " ");
    let mut words = plain.split_whitespace();
    let verb = words.next()?.to_ascii_lowercase();
    let unbrace = |w: &str| w.trim_matches(|c| c == '{' || c == '}').to_string();
    let args: Vec<String> = words.map(unbrace).filter(|w| !w.is_empty()).collect();
    match (verb.as_str(), args.as_slice()) {
        ("linkteam", [id]) => Some(Command::LinkTeam { id: id.clone() }),
        ("linkchat", [id, name @ ..]) if !name.is_empty() => Some(Command::LinkChat {
            id: id.clone(),
            name: name.join(" "),
        }),
        ("linkuser", [code]) => Some(Command::LinkUser { code: code.clone() }),
        _ => None,
    }
}

// ---- the Bot Connector access token ----

/// Tokens of the Microsoft identity platform are cached with the other IM apps'
/// ([`crate::app_tokens`]), by token endpoint, App ID and client secret.
pub use crate::app_tokens::{TOKEN_REFRESH_MARGIN_MS, cached_token, forget_token, remember_token};

#[cfg(test)]
mod tests {
    use super::*;

    fn card_of() -> Card {
        Card {
            incident_id: "65a1b2c3d4e5f60718293a4b".into(),
            num: "293A4B".into(),
            title: "db [down]".into(),
            severity: "Warning".into(),
            progress: "Triggered".into(),
            snoozed_before: 0,
            outlier: false,
            body: "See [here](http://evil)".into(),
            detail_url: "https://k.example/incident/detail/65a1b2c3d4e5f60718293a4b".into(),
            time_zone: "UTC".into(),
            note: String::new(),
            locale: "en-US".into(),
        }
    }

    #[test]
    fn linked_responders_are_mentioned_with_their_entity() {
        // spec: RSP-289
        let people = [
            Mention {
                user_id: Some("29:abc".into()),
                name: "Ann_B".into(),
            },
            Mention {
                user_id: None,
                name: "Bob".into(),
            },
        ];
        let c = card(&card_of(), &people);
        assert_eq!(c["body"][2]["text"], "<at>Ann\\_B</at> @Bob");
        assert_eq!(
            c["msteams"]["entities"],
            json!([{"type": "mention", "text": "<at>Ann\\_B</at>",
                    "mentioned": {"id": "29:abc", "name": "Ann_B"}}])
        );
        // Nobody linked: no entities at all.
        let c = card(&card_of(), &people[1..]);
        assert!(c.get("msteams").is_none());
    }

    #[test]
    fn the_card_has_the_header_body_and_buttons() {
        // spec: RSP-286, RSP-311, RSP-317, RSP-045
        let c = card(&card_of(), &[]);
        assert_eq!(c["type"], "AdaptiveCard");
        assert_eq!(c["body"][0]["text"], "INC #293A4B db \\[down\\]");
        assert_eq!(c["body"][0]["color"], "warning");
        assert_eq!(c["body"][1]["text"], "Warning · Triggered");
        assert_eq!(c["body"][2]["text"], "See \\[here\\]\\(http://evil\\)");
        let titles: Vec<&str> = c["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "Acknowledge",
                "Close",
                "Snooze 2 hours",
                "Snooze longer",
                "Details"
            ]
        );
        let menu = &c["actions"][3]["card"];
        let values: Vec<&str> = menu["body"][0]["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["value"].as_str().unwrap())
            .collect();
        assert_eq!(values, ["240", "720", "1440"]);
        let closed = card(
            &Card {
                progress: "Closed".into(),
                ..card_of()
            },
            &[],
        );
        assert_eq!(closed["actions"].as_array().unwrap().len(), 1);
        assert_eq!(closed["body"][0]["color"], "good");
    }

    #[test]
    fn only_offered_actions_are_read_back() {
        // spec: RSP-045, RSP-311
        let id = "65a1b2c3d4e5f60718293a4b";
        assert_eq!(
            parse_action(&json!({"klaxon": "ack", "incident_id": id})),
            Some(Action::Ack {
                incident_id: id.into()
            })
        );
        assert_eq!(
            parse_action(&json!({"klaxon": "snooze", "incident_id": id, "minutes": "120"})),
            Some(Action::Snooze {
                incident_id: id.into(),
                minutes: 120
            })
        );
        assert_eq!(
            parse_action(&json!({"klaxon": "snooze", "incident_id": id, "minutes": "240"})),
            None
        );
        assert_eq!(
            parse_action(&json!({"klaxon": "snooze_menu", "incident_id": id, "minutes": "1440"})),
            Some(Action::Snooze {
                incident_id: id.into(),
                minutes: 1440
            })
        );
        assert_eq!(
            parse_action(&json!({"klaxon": "snooze_menu", "incident_id": id, "minutes": "5"})),
            None
        );
        assert_eq!(parse_action(&json!({"klaxon": "ack"})), None);
    }

    #[test]
    fn commands_are_read_without_the_mention() {
        // spec: RSP-300, RSP-301, RSP-302 (linkTeam, linkChat, linkUser)
        assert_eq!(
            parse_command("<at>Klaxon</at> linkTeam {1234}"),
            Some(Command::LinkTeam { id: "1234".into() })
        );
        assert_eq!(
            parse_command("<at>Klaxon</at>&nbsp;linkchat 1234 {Ops war room}"),
            Some(Command::LinkChat {
                id: "1234".into(),
                name: "Ops war room".into()
            })
        );
        assert_eq!(
            parse_command("linkUser {K7QX2M}"),
            Some(Command::LinkUser {
                code: "K7QX2M".into()
            })
        );
        assert_eq!(parse_command("linkChat 1234"), None);
        assert_eq!(parse_command("hello"), None);
        assert_eq!(parse_command(""), None);
    }
}
