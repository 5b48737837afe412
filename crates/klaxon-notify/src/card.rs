//! What every IM app card shows (response.md §2.19 RSP-286, §2.20 RSP-311, RSP-045), apart
//! from any platform's wire format: the incident's state, the severity colour, the snooze
//! durations the buttons offer, and the actions a press can ask for. `slack`, `feishu`,
//! `wecom` and `teams` lay the same [`Card`] out in their own JSON.

use klaxon_core::model::Millis;

/// RSP-045: one click snoozes 2 hours; the menu offers 4, 12 and 24 hours (in minutes).
pub const SNOOZE_ONE_CLICK_MINUTES: i64 = 120;
pub const SNOOZE_MENU_MINUTES: [i64; 3] = [240, 720, 1440];

/// What a card shows: the incident as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub incident_id: String,
    pub num: String,
    pub title: String,
    /// `Critical`, `Warning` or `Info`.
    pub severity: String,
    /// `Triggered`, `Processing` or `Closed`.
    pub progress: String,
    /// The end of an active snooze; 0 = not snoozed.
    pub snoozed_before: Millis,
    /// A rare incident (RSP-453).
    pub outlier: bool,
    /// The rendered app template (`slack_app`, `feishu_app`), post-processed (RSP-347,
    /// RSP-348).
    pub body: String,
    pub detail_url: String,
    /// The account's time zone, for the snooze end.
    pub time_zone: String,
    /// A line saying what was just done from the card (`Acknowledged by Ann`), or "".
    pub note: String,
    /// The account's locale: the buttons' language (RSP-293).
    pub locale: String,
}

impl Card {
    /// The system texts of the card's locale.
    pub fn texts(&self) -> &'static crate::texts::Texts {
        crate::texts::texts(&self.locale)
    }
}

/// The severity colour (the template functions' `serverityToColor`); a closed incident is
/// shown in the `Ok` colour.
pub fn colour(severity: &str, progress: &str) -> &'static str {
    if progress == "Closed" {
        return "#84CC16";
    }
    match severity {
        "Critical" => "#C80000",
        "Warning" => "#FF9900",
        _ => "#6C53B1",
    }
}

/// The end of the card's snooze, in the account's zone, for the state line.
pub fn snooze_end(card: &Card) -> String {
    let zone = jiff::tz::TimeZone::get(&card.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_millisecond(card.snoozed_before)
        .map(|t| {
            t.to_zoned_datetime(zone)
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default()
}

/// What a pressed control asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Ack {
        incident_id: String,
    },
    Close {
        incident_id: String,
    },
    Snooze {
        incident_id: String,
        minutes: i64,
    },
    /// The Details link: the platform may report the click; there is nothing to do.
    Details,
}
