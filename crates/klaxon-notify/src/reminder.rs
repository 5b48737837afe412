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
        })
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
            .unwrap_or_else(|| format!("member {id}"))
    }

    fn names_of(&self, ids: &[i64]) -> String {
        ids.iter()
            .map(|&id| self.name(id))
            .collect::<Vec<_>>()
            .join(", ")
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
            ReminderKind::Advance { handoff_at, .. } => format!(
                "Shift reminder: {} hands over at {}",
                self.stored.schedule_name,
                self.at(*handoff_at)
            ),
            ReminderKind::Daily { .. } => {
                format!("Daily on-call summary: {}", self.stored.schedule_name)
            }
        }
    }

    /// The body lines, without the link.
    fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.stored.kind {
            ReminderKind::Advance {
                handoff_at,
                incoming,
                outgoing,
            } => {
                for &p in incoming {
                    let until = match self.stored.shift_ends.get(&p) {
                        Some(end) => format!(" until {}", self.at(*end)),
                        None => String::new(),
                    };
                    out.push(format!(
                        "{} goes on call at {}{until}.",
                        self.name(p),
                        self.at(*handoff_at)
                    ));
                }
                if !outgoing.is_empty() {
                    out.push(format!(
                        "{} {} off call at {}.",
                        self.names_of(outgoing),
                        if outgoing.len() == 1 { "goes" } else { "go" },
                        self.at(*handoff_at)
                    ));
                }
            }
            ReminderKind::Daily {
                on_call,
                upcoming,
                handoffs,
            } => {
                if on_call.is_empty() {
                    out.push("Nobody is on call now.".to_string());
                } else {
                    out.push("On call now:".to_string());
                    out.extend(on_call.iter().map(|c| self.current(c)));
                }
                if !upcoming.is_empty() {
                    out.push("Coming on call in the next 24 hours:".to_string());
                    out.extend(upcoming.iter().map(|u| self.upcoming(u)));
                }
                if !handoffs.is_empty() {
                    out.push("Handoffs in the next 24 hours:".to_string());
                    for h in handoffs {
                        let mut parts = Vec::new();
                        if !h.incoming.is_empty() {
                            parts.push(format!("on: {}", self.names_of(&h.incoming)));
                        }
                        if !h.outgoing.is_empty() {
                            parts.push(format!("off: {}", self.names_of(&h.outgoing)));
                        }
                        out.push(format!("- {}: {}", self.at(h.at), parts.join("; ")));
                    }
                }
            }
        }
        out
    }

    fn current(&self, c: &CurrentShift) -> String {
        match c.until {
            Some(until) => format!("- {} until {}", self.name(c.person_id), self.at(until)),
            None => format!("- {} (no end in sight)", self.name(c.person_id)),
        }
    }

    fn upcoming(&self, u: &UpcomingShift) -> String {
        format!("- {} from {}", self.name(u.person_id), self.at(u.from))
    }

    /// Plain text: the headline, the lines, the link.
    pub fn text(&self) -> String {
        let mut s = format!("{}\n", self.subject());
        for line in self.lines() {
            s.push_str(&line);
            s.push('\n');
        }
        s.push_str(&format!("Schedule: {}", self.link));
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
