//! The response side (response.md §1.7–§1.12, §2.1–§2.16): what happens to an incident once
//! it exists — assignment by escalation rules, acknowledgement, snooze, close, reopen, edits,
//! escalation and repeat timing — as pure functions over the incident and `now`.
//!
//! - [`state`]: responders, `assigned_to`, the escalation state (kept on the incident);
//! - [`rules`]: escalation rules, their validation and matching;
//! - [`engine`]: the actions and timed steps, producing timeline entries and notification
//!   decisions;
//! - [`preference`]: a member's notification preference (1.15, §2.21).

pub mod engine;
pub mod fields;
pub mod list_columns;
pub mod preference;
pub mod rules;
pub mod similarity;
pub mod state;

#[cfg(test)]
mod tests;

pub use engine::{
    ActionError, DirectTargets, Directory, Engine, MemberStatus, Notification, Outcome,
    TimelineEntry, TimerKind, apply_field_defaults, auto_close_at, check_invariants,
    default_preference, pending_timers,
};
pub use fields::{FieldDefinition, FieldType};
pub use preference::{NotificationPreference, PrefChannel, PreferenceError};
pub use rules::{
    EscalationRule, Level, MatchContext, RuleError, RuleStatus, Target, TimeFilter,
    reorder_priorities, unknown_calendars, validate_rule,
};
pub use state::{AssignType, Assignment, EscalationState, Responder, ResponderAs, Response};
