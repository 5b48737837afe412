//! The built-in text of a shift reminder (response.md RSP-232: not a user template; it names
//! the schedule, the person or persons, the shift's start and end in the schedule's zone, and
//! links to the schedule).
//!
//! The store queues reminders with the decided reminder in `target.reminder` (see
//! `klaxon_store::sweep_shift_reminders`); names are looked up at send time, like every other
//! message, so a renamed member shows under the new name.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use klaxon_core::model::Millis;
use klaxon_core::schedule::{CurrentShift, ReminderKind, UpcomingShift};
use serde::Deserialize;
use serde_json::Value;

use crate::providers::BotContent;

#[derive(Debug, Clone, Deserialize)]
struct Stored {
    schedule_id: i64,
    schedule_name: String,
    time_zone: String,
    kind: ReminderKind,
    #[serde(default)]
    shift_ends: BTreeMap<i64, Millis>,
}

/// A reminder ready to render, with the names of everyone it mentions.
#[derive(Debug, Clone)]
pub struct ReminderMessage {
    stored: Stored,
    names: HashMap<i64, String>,
    link: String,
    words: &'static Words,
}

/// The fixed words of a reminder in one locale (RSP-293: system texts follow the account's
/// locale). Each holds `{name}`, `{names}`, `{at}`, `{schedule}`, `{id}` or `{link}` where the
/// value goes.
#[derive(Debug)]
struct Words {
    handover_subject: &'static str,
    daily_subject: &'static str,
    goes_on: &'static str,
    until: &'static str,
    goes_off: &'static str,
    go_off: &'static str,
    nobody: &'static str,
    on_call_now: &'static str,
    coming: &'static str,
    handoffs: &'static str,
    on: &'static str,
    off: &'static str,
    separator: &'static str,
    names_separator: &'static str,
    current_until: &'static str,
    current_open: &'static str,
    upcoming: &'static str,
    schedule_link: &'static str,
    member: &'static str,
}

const EN: Words = Words {
    handover_subject: "Shift reminder: {schedule} hands over at {at}",
    daily_subject: "Daily on-call summary: {schedule}",
    goes_on: "{name} goes on call at {at}{until}.",
    until: " until {at}",
    goes_off: "{names} goes off call at {at}.",
    go_off: "{names} go off call at {at}.",
    nobody: "Nobody is on call now.",
    on_call_now: "On call now:",
    coming: "Coming on call in the next 24 hours:",
    handoffs: "Handoffs in the next 24 hours:",
    on: "on: {names}",
    off: "off: {names}",
    separator: "; ",
    names_separator: ", ",
    current_until: "- {name} until {at}",
    current_open: "- {name} (no end in sight)",
    upcoming: "- {name} from {at}",
    schedule_link: "Schedule: {link}",
    member: "member {id}",
};

const ZH: Words = Words {
    handover_subject: "值班提醒：{schedule} 将于 {at} 交接",
    daily_subject: "每日值班摘要：{schedule}",
    goes_on: "{name} 将于 {at} 开始值班{until}。",
    until: "，至 {at}",
    goes_off: "{names} 将于 {at} 结束值班。",
    go_off: "{names} 将于 {at} 结束值班。",
    nobody: "当前无人值班。",
    on_call_now: "当前值班：",
    coming: "未来 24 小时内开始值班：",
    handoffs: "未来 24 小时内的交接：",
    on: "接班：{names}",
    off: "交班：{names}",
    separator: "；",
    names_separator: "、",
    current_until: "- {name}，至 {at}",
    current_open: "- {name}（暂无结束时间）",
    upcoming: "- {name}，自 {at} 起",
    schedule_link: "排班：{link}",
    member: "成员 {id}",
};

/// `template` with each `{key}` replaced by its value.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

impl ReminderMessage {
    /// Reads `target.reminder`; `None` when the row carries no readable reminder.
    pub fn from_target(target: &Value, base_url: &str) -> Option<ReminderMessage> {
        let stored: Stored = serde_json::from_value(target.get("reminder")?.clone()).ok()?;
        let link = format!(
            "{}/schedules/{}",
            base_url.trim_end_matches('/'),
            stored.schedule_id
        );
        Some(ReminderMessage {
            stored,
            names: HashMap::new(),
            link,
            words: &EN,
        })
    }

    /// The reminder in the account's locale: `zh-CN`, else English.
    pub fn in_locale(mut self, locale: &str) -> ReminderMessage {
        self.words = if locale == "zh-CN" { &ZH } else { &EN };
        self
    }

    /// Everyone the text names, to look their names up.
    pub fn person_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = match &self.stored.kind {
            ReminderKind::Advance {
                incoming, outgoing, ..
            } => incoming.iter().chain(outgoing).copied().collect(),
            ReminderKind::Daily {
                on_call,
                upcoming,
                handoffs,
            } => on_call
                .iter()
                .map(|c| c.person_id)
                .chain(upcoming.iter().map(|u| u.person_id))
                .chain(
                    handoffs
                        .iter()
                        .flat_map(|h| h.incoming.iter().chain(&h.outgoing).copied()),
                )
                .collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub fn with_names(mut self, names: HashMap<i64, String>) -> ReminderMessage {
        self.names = names;
        self
    }

    fn name(&self, id: i64) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| fill(self.words.member, &[("id", &id.to_string())]))
    }

    fn names_of(&self, ids: &[i64]) -> String {
        ids.iter()
            .map(|&id| self.name(id))
            .collect::<Vec<_>>()
            .join(self.words.names_separator)
    }

    /// `2025-03-10 09:00 EDT` in the schedule's zone (UTC if the zone is unknown).
    fn at(&self, t: Millis) -> String {
        let tz = TimeZone::get(&self.stored.time_zone).unwrap_or(TimeZone::UTC);
        match Timestamp::from_millisecond(t) {
            Ok(ts) => ts
                .to_zoned_datetime(tz)
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string(),
            Err(_) => t.to_string(),
        }
    }

    /// One line for e-mail subjects and bot titles.
    pub fn subject(&self) -> String {
        match &self.stored.kind {
            ReminderKind::Advance { handoff_at, .. } => fill(
                self.words.handover_subject,
                &[
                    ("schedule", &self.stored.schedule_name),
                    ("at", &self.at(*handoff_at)),
                ],
            ),
            ReminderKind::Daily { .. } => fill(
                self.words.daily_subject,
                &[("schedule", &self.stored.schedule_name)],
            ),
        }
    }

    /// The body lines, without the link.
    fn lines(&self) -> Vec<String> {
        let w = self.words;
        let mut out = Vec::new();
        match &self.stored.kind {
            ReminderKind::Advance {
                handoff_at,
                incoming,
                outgoing,
            } => {
                for &p in incoming {
                    let until = match self.stored.shift_ends.get(&p) {
                        Some(end) => fill(w.until, &[("at", &self.at(*end))]),
                        None => String::new(),
                    };
                    out.push(fill(
                        w.goes_on,
                        &[
                            ("name", &self.name(p)),
                            ("at", &self.at(*handoff_at)),
                            ("until", &until),
                        ],
                    ));
                }
                if !outgoing.is_empty() {
                    let template = if outgoing.len() == 1 {
                        w.goes_off
                    } else {
                        w.go_off
                    };
                    out.push(fill(
                        template,
                        &[
                            ("names", &self.names_of(outgoing)),
                            ("at", &self.at(*handoff_at)),
                        ],
                    ));
                }
            }
            ReminderKind::Daily {
                on_call,
                upcoming,
                handoffs,
            } => {
                if on_call.is_empty() {
                    out.push(w.nobody.to_string());
                } else {
                    out.push(w.on_call_now.to_string());
                    out.extend(on_call.iter().map(|c| self.current(c)));
                }
                if !upcoming.is_empty() {
                    out.push(w.coming.to_string());
                    out.extend(upcoming.iter().map(|u| self.upcoming(u)));
                }
                if !handoffs.is_empty() {
                    out.push(w.handoffs.to_string());
                    for h in handoffs {
                        let mut parts = Vec::new();
                        if !h.incoming.is_empty() {
                            parts.push(fill(w.on, &[("names", &self.names_of(&h.incoming))]));
                        }
                        if !h.outgoing.is_empty() {
                            parts.push(fill(w.off, &[("names", &self.names_of(&h.outgoing))]));
                        }
                        out.push(format!("- {}: {}", self.at(h.at), parts.join(w.separator)));
                    }
                }
            }
        }
        out
    }

    fn current(&self, c: &CurrentShift) -> String {
        let name = self.name(c.person_id);
        match c.until {
            Some(until) => fill(
                self.words.current_until,
                &[("name", &name), ("at", &self.at(until))],
            ),
            None => fill(self.words.current_open, &[("name", &name)]),
        }
    }

    fn upcoming(&self, u: &UpcomingShift) -> String {
        fill(
            self.words.upcoming,
            &[("name", &self.name(u.person_id)), ("at", &self.at(u.from))],
        )
    }

    /// Plain text: the headline, the lines, the link.
    pub fn text(&self) -> String {
        let mut s = format!("{}\n", self.subject());
        for line in self.lines() {
            s.push_str(&line);
            s.push('\n');
        }
        s.push_str(&fill(self.words.schedule_link, &[("link", &self.link)]));
        s
    }

    /// The e-mail's HTML part (the plain part is [`Self::text`]).
    pub fn html(&self) -> String {
        let esc = crate::render::escape_html;
        let mut s = format!("<p><strong>{}</strong></p>\n<p>", esc(&self.subject()));
        for line in self.lines() {
            s.push_str(&esc(&line));
            s.push_str("<br>\n");
        }
        s.push_str(&format!(
            "</p>\n<p><a href=\"{0}\">{0}</a></p>\n",
            esc(&self.link)
        ));
        s
    }

    /// SMS: one line per fact, no link headline repeated.
    pub fn sms(&self) -> String {
        let mut parts = vec![format!("[{}]", self.stored.schedule_name)];
        parts.extend(self.lines());
        parts.join(" ")
    }
}

impl BotContent for ReminderMessage {
    fn bot_text(&self, mentions: &str) -> String {
        // `#` keeps DingTalk and Feishu keyword security satisfied, as for incident messages
        // (RSP-351).
        let mut s = format!("# {}\n", self.text());
        if !mentions.is_empty() {
            s.push_str(&format!("\n{mentions}"));
        }
        s
    }

    fn title(&self) -> String {
        crate::render::one_line(&self.subject())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn advance() -> ReminderMessage {
        let target = json!({"reminder": {
            "schedule_id": 7, "schedule_name": "DB", "time_zone": "Asia/Shanghai",
            "kind": {"type": "advance", "handoff_at": 1_700_000_000_000_i64,
                     "incoming": [1], "outgoing": [2, 3]},
            "shift_ends": {"1": 1_700_086_400_000_i64},
        }});
        ReminderMessage::from_target(&target, "https://k.example/")
            .expect("a readable reminder")
            .with_names(HashMap::from([(1, "Ann".into()), (2, "Bob".into())]))
    }

    #[test]
    fn a_reminder_speaks_the_account_locale() {
        // spec: RSP-232, RSP-293
        let en = advance();
        assert_eq!(
            en.subject(),
            "Shift reminder: DB hands over at 2023-11-15 06:13 CST"
        );
        assert_eq!(
            en.text(),
            "Shift reminder: DB hands over at 2023-11-15 06:13 CST\n\
             Ann goes on call at 2023-11-15 06:13 CST until 2023-11-16 06:13 CST.\n\
             Bob, member 3 go off call at 2023-11-15 06:13 CST.\n\
             Schedule: https://k.example/schedules/7"
        );
        let zh = advance().in_locale("zh-CN");
        assert_eq!(zh.subject(), "值班提醒：DB 将于 2023-11-15 06:13 CST 交接");
        assert_eq!(
            zh.text(),
            "值班提醒：DB 将于 2023-11-15 06:13 CST 交接\n\
             Ann 将于 2023-11-15 06:13 CST 开始值班，至 2023-11-16 06:13 CST。\n\
             Bob、成员 3 将于 2023-11-15 06:13 CST 结束值班。\n\
             排班：https://k.example/schedules/7"
        );
        // Any other locale is English.
        assert_eq!(advance().in_locale("fr-FR").subject(), en.subject());
    }
}
