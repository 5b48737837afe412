//! What changed between two route versions (ING-095 history; served by `/route/diff`).
//!
//! Rules are matched by `id`: a rule only in the newer version is added, one only in the older
//! is removed, one in both is changed when any of its fields or its position differs. The
//! default route is compared as a set; sections as a whole.

use serde::Serialize;

use super::{RouteConfig, RouteRule};

/// One rule's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum RuleChange {
    Added {
        id: String,
        position: usize,
        rule: RouteRule,
    },
    Removed {
        id: String,
        position: usize,
        rule: RouteRule,
    },
    Changed {
        id: String,
        from_position: usize,
        to_position: usize,
        /// Which of `name`, `enabled`, `conditions`, `channel_ids`, `flow`, `position`.
        fields: Vec<&'static str>,
        before: RouteRule,
        after: RouteRule,
    },
}

/// Channels added to or removed from a list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ChannelChange {
    pub added: Vec<i64>,
    pub removed: Vec<i64>,
}

/// The structured difference from one version to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteDiff {
    pub from_version: i64,
    pub to_version: i64,
    /// Removed rules (in their old order), then added and changed ones in their new order.
    pub rules: Vec<RuleChange>,
    pub default_channel_ids: ChannelChange,
    pub sections_changed: bool,
    /// Nothing differs (a rollback to identical content, for instance).
    pub identical: bool,
}

fn changed_fields(before: &RouteRule, after: &RouteRule, moved: bool) -> Vec<&'static str> {
    let mut out = Vec::new();
    if before.name != after.name {
        out.push("name");
    }
    if before.enabled != after.enabled {
        out.push("enabled");
    }
    if before.conditions != after.conditions {
        out.push("conditions");
    }
    if before.channel_ids != after.channel_ids {
        out.push("channel_ids");
    }
    if before.flow != after.flow {
        out.push("flow");
    }
    if moved {
        out.push("position");
    }
    out
}

/// The difference from `from` to `to`.
pub fn diff(from: &RouteConfig, to: &RouteConfig) -> RouteDiff {
    let mut rules = Vec::new();
    for (position, rule) in from.rules.iter().enumerate() {
        if !to.rules.iter().any(|r| r.id == rule.id) {
            rules.push(RuleChange::Removed {
                id: rule.id.clone(),
                position,
                rule: rule.clone(),
            });
        }
    }
    for (to_position, after) in to.rules.iter().enumerate() {
        match from.rules.iter().position(|r| r.id == after.id) {
            None => rules.push(RuleChange::Added {
                id: after.id.clone(),
                position: to_position,
                rule: after.clone(),
            }),
            Some(from_position) => {
                let before = &from.rules[from_position];
                let fields = changed_fields(before, after, from_position != to_position);
                if !fields.is_empty() {
                    rules.push(RuleChange::Changed {
                        id: after.id.clone(),
                        from_position,
                        to_position,
                        fields,
                        before: before.clone(),
                        after: after.clone(),
                    });
                }
            }
        }
    }
    let default_channel_ids = ChannelChange {
        added: to
            .default_channel_ids
            .iter()
            .filter(|id| !from.default_channel_ids.contains(id))
            .copied()
            .collect(),
        removed: from
            .default_channel_ids
            .iter()
            .filter(|id| !to.default_channel_ids.contains(id))
            .copied()
            .collect(),
    };
    let sections_changed = from.sections != to.sections;
    let identical = rules.is_empty()
        && default_channel_ids.added.is_empty()
        && default_channel_ids.removed.is_empty()
        && !sections_changed;
    RouteDiff {
        from_version: from.version,
        to_version: to.version,
        rules,
        default_channel_ids,
        sections_changed,
        identical,
    }
}
