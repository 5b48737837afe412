//! Delivery providers per region (SVC-214): the notification providers — SMS, voice,
//! e-mail, IM, push — necessarily receive message contents, so the operator publishes, per
//! region, which ones are used and where they process messages; a change is a "provider
//! change" of SVC-238, announced to the region's tenants. Pure: the vocabulary, the checks
//! of a change, which entries are in force at an instant, and the notice's text.

use jiff::Timestamp;

use crate::error::{Result, SaasError};

/// The notification channels a provider serves.
pub const CHANNELS: [&str; 5] = ["sms", "voice", "email", "im", "push"];

/// Longest provider name or location.
pub const MAX_TEXT: usize = 200;

/// One published entry: `provider` delivers `channel` in `region`, processing messages at
/// `location`, from `effective_at` until `removed_at` (exclusive; `None` = still in force).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub region: String,
    pub channel: String,
    pub provider: String,
    pub location: String,
    pub effective_at: Timestamp,
    pub removed_at: Option<Timestamp>,
}

impl Entry {
    /// Whether the entry is in force at `at`.
    pub fn in_force(&self, at: Timestamp) -> bool {
        self.effective_at <= at && self.removed_at.is_none_or(|r| at < r)
    }
}

fn text(field: &'static str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(SaasError::invalid(field, "is required"));
    }
    if v.chars().count() > MAX_TEXT || v.contains(['\n', '\r']) {
        return Err(SaasError::invalid(
            field,
            format!("one line of at most {MAX_TEXT} characters"),
        ));
    }
    Ok(v.to_string())
}

/// A change the operator asks for: add (or move) `provider` for `channel` in `region`, or
/// remove it, taking effect at `effective_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub region: String,
    pub channel: String,
    pub provider: String,
    /// Where it processes messages; empty for a removal.
    pub location: String,
    pub remove: bool,
    pub effective_at: Timestamp,
}

/// Checks a change at `now`: known channel, named region and provider, a location when
/// adding, and an effective time not in the past (SVC-238: tenants are told before a change
/// applies, never after). Returns it trimmed.
pub fn check_change(c: &Change, now: Timestamp) -> Result<Change> {
    let channel = c.channel.trim().to_lowercase();
    if !CHANNELS.contains(&channel.as_str()) {
        return Err(SaasError::invalid(
            "channel",
            format!("{:?}: one of {}", c.channel, CHANNELS.join(", ")),
        ));
    }
    let region = text("region", &c.region)?;
    let provider = text("provider", &c.provider)?;
    let location = if c.remove {
        String::new()
    } else {
        text("location", &c.location)?
    };
    if c.effective_at < now {
        return Err(SaasError::refused(
            "SVC-238",
            format!(
                "effective_at {} is in the past: a change is announced before it applies",
                c.effective_at
            ),
        ));
    }
    Ok(Change {
        region,
        channel,
        provider,
        location,
        remove: c.remove,
        effective_at: c.effective_at,
    })
}

/// The entries of `region` in force at `at`, by channel then provider.
pub fn in_force_at<'a>(entries: &'a [Entry], region: &str, at: Timestamp) -> Vec<&'a Entry> {
    let mut out: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.region == region && e.in_force(at))
        .collect();
    out.sort_by(|a, b| (&a.channel, &a.provider).cmp(&(&b.channel, &b.provider)));
    out
}

/// The subject and text of the SVC-238 notice of a change.
pub fn notice(c: &Change) -> (String, String) {
    let subject = format!(
        "Notification provider change in region {}: {} ({})",
        c.region, c.provider, c.channel
    );
    let what = if c.remove {
        format!(
            "{} will no longer deliver {} messages for region {}",
            c.provider, c.channel, c.region
        )
    } else {
        format!(
            "{} will deliver {} messages for region {}, processing them in {}",
            c.provider, c.channel, c.region, c.location
        )
    };
    let content = format!(
        "From {} {what}. Notification providers receive the contents of the messages they \
         deliver. The current list is available at /account/delivery-provider/list.\n",
        c.effective_at
    );
    (subject, content)
}
