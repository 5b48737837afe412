//! Helpers of the console's edit forms: the Open API checks every value and names the bad
//! field at the start of its message (`layers[0].escalate_window: must be …`); a form puts
//! that message next to the input the field came from and draws the form again with what the
//! person typed.

use std::collections::BTreeMap;

/// The field path an API error message starts with, and the rest of it:
/// `"rule_name: must be 1 to 39 characters"` → `(Some("rule_name"), "must be …")`.
pub(super) fn split_field(message: &str) -> (Option<&str>, &str) {
    if let Some((head, rest)) = message.split_once(": ") {
        let is_path = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
        if is_path {
            return (Some(head), rest);
        }
    }
    // `rule_name is required`, `members[0].email is not a valid address`, … name the field
    // first, too. A plain word (`incident 7 not found`) is no field: a path has `_`, `.` or
    // an index in it.
    if let Some((head, _)) = message.split_once(' ')
        && head.starts_with(|c: char| c.is_ascii_lowercase())
        && head.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '[' | ']')
        })
        && head.contains(['_', '.', '['])
    {
        return (Some(head), message);
    }
    (None, message)
}

/// Errors by form input id; `_form` holds what belongs to no single input.
#[derive(Debug, Default)]
pub(super) struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    /// Files an API error under the input `input_of(field path)` names, or under `_form`.
    pub fn file(message: &str, input_of: impl Fn(&str) -> Option<String>) -> FieldErrors {
        let (field, _) = split_field(message);
        let key = field
            .and_then(input_of)
            .unwrap_or_else(|| "_form".to_string());
        let mut map = BTreeMap::new();
        map.insert(key, message.to_string());
        FieldErrors(map)
    }

    pub fn one(input: &str, message: impl Into<String>) -> FieldErrors {
        let mut map = BTreeMap::new();
        map.insert(input.to_string(), message.into());
        FieldErrors(map)
    }
}

/// `layers[3].target.person_ids` → `Some(3)` with the rest `target.person_ids`.
pub(super) fn indexed<'a>(path: &'a str, list: &str) -> Option<(usize, &'a str)> {
    let rest = path.strip_prefix(list)?.strip_prefix('[')?;
    let (n, rest) = rest.split_once(']')?;
    let n = n.parse().ok()?;
    Some((n, rest.strip_prefix('.').unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_messages_name_their_field() {
        assert_eq!(
            split_field("layers[0].escalate_window: must be between 1 and 720 minutes"),
            (
                Some("layers[0].escalate_window"),
                "must be between 1 and 720 minutes"
            )
        );
        assert_eq!(split_field("rule_name is required").0, Some("rule_name"));
        assert_eq!(split_field("invalid rule: missing field").0, None);
        assert_eq!(split_field("channel 7 not found").0, None);
        assert_eq!(
            split_field("members[0].email is not a valid email address").0,
            Some("members[0].email")
        );
        assert_eq!(
            split_field("updates.time_zone is not a known IANA time zone: \"Mars\"").0,
            Some("updates.time_zone")
        );
        assert_eq!(
            indexed("layers[2].target.person_ids", "layers"),
            Some((2, "target.person_ids"))
        );
        assert_eq!(indexed("layers", "layers"), None);
    }
}
