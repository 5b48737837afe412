//! The columns a person chooses for the incident list (response.md RSP-506): basic
//! attributes, custom fields and labels, stored per member.
//!
//! A column is named on the wire by a key: a basic attribute by its name (`duration`,
//! `responders`, …), a custom field as `field.<field_name>`, a label as `label.<name>`. The
//! incident's title (with the link to its page) is always shown and is not a column.

/// The basic attributes, in the order the list shows them, with their headings.
pub const BASIC: [(&str, &str); 10] = [
    ("severity", "Severity"),
    ("progress", "Progress"),
    ("channel", "Channel"),
    ("start_time", "Started"),
    ("duration", "Duration"),
    ("alerts", "Alerts"),
    ("responders", "Responders"),
    ("ack_time", "Acknowledged"),
    ("close_time", "Closed"),
    ("creator", "Created by"),
];

/// What a member who never chose sees: the list as it always was.
pub const DEFAULT: [&str; 5] = ["severity", "progress", "channel", "start_time", "alerts"];

/// At most this many columns (a list row must still fit a screen).
pub const MAX_COLUMNS: usize = 30;
/// Custom field and label names are at most this long.
pub const MAX_NAME: usize = 128;

/// One chosen column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Basic(&'static str),
    Field(String),
    Label(String),
}

impl Column {
    /// The wire key of the column.
    pub fn key(&self) -> String {
        match self {
            Column::Basic(b) => (*b).to_string(),
            Column::Field(f) => format!("field.{f}"),
            Column::Label(l) => format!("label.{l}"),
        }
    }

    /// Parses one wire key; the error names the key and what is wrong with it.
    pub fn parse(key: &str) -> Result<Column, String> {
        let named = |kind: &str, name: &str| -> Result<String, String> {
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("{key:?} names no {kind}"));
            }
            if name.chars().count() > MAX_NAME {
                return Err(format!(
                    "{kind} name {name:?} is longer than {MAX_NAME} characters"
                ));
            }
            if name.chars().any(char::is_control) {
                return Err(format!("{kind} name {name:?} holds a control character"));
            }
            Ok(name.to_string())
        };
        if let Some(name) = key.strip_prefix("field.") {
            return named("custom field", name).map(Column::Field);
        }
        if let Some(name) = key.strip_prefix("label.") {
            return named("label", name).map(Column::Label);
        }
        BASIC
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(k, _)| Column::Basic(k))
            .ok_or_else(|| {
                format!(
                    "{key:?} is not a column: use one of {}, field.<name> or label.<name>",
                    BASIC.map(|(k, _)| k).join(", ")
                )
            })
    }
}

/// Checks a chosen list: every key a column, none twice, at most [`MAX_COLUMNS`]. The error
/// is `columns[i]: …` naming the first bad entry. An empty list is allowed (title only).
pub fn validate(keys: &[String]) -> Result<Vec<Column>, String> {
    if keys.len() > MAX_COLUMNS {
        return Err(format!(
            "columns: at most {MAX_COLUMNS} columns, {} given",
            keys.len()
        ));
    }
    let mut out: Vec<Column> = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let c = Column::parse(key.trim()).map_err(|e| format!("columns[{i}]: {e}"))?;
        if out.contains(&c) {
            return Err(format!("columns[{i}]: {:?} is chosen twice", c.key()));
        }
        out.push(c);
    }
    Ok(out)
}

/// The default columns as wire keys.
pub fn default_keys() -> Vec<String> {
    DEFAULT.iter().map(|k| (*k).to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| (*s).to_string()).collect()
    }

    // spec: RSP-506 (basic attributes, custom fields and labels)
    #[test]
    fn basic_field_and_label_columns_parse() {
        let c = validate(&keys(&[
            "duration",
            "field.region",
            "label.host",
            "responders",
        ]))
        .unwrap();
        assert_eq!(
            c,
            vec![
                Column::Basic("duration"),
                Column::Field("region".into()),
                Column::Label("host".into()),
                Column::Basic("responders"),
            ]
        );
        assert_eq!(c[1].key(), "field.region");
        assert!(validate(&[]).unwrap().is_empty());
        assert_eq!(validate(&default_keys()).unwrap().len(), DEFAULT.len());
    }

    // spec: RSP-506 (a bad choice is refused with the entry named)
    #[test]
    fn bad_choices_name_their_entry() {
        let e = validate(&keys(&["duration", "colour"])).unwrap_err();
        assert!(
            e.starts_with("columns[1]: \"colour\" is not a column"),
            "{e}"
        );
        let e = validate(&keys(&["label.host", "label.host"])).unwrap_err();
        assert!(e.contains("columns[1]") && e.contains("twice"), "{e}");
        let e = validate(&keys(&["field.  "])).unwrap_err();
        assert!(e.contains("names no custom field"), "{e}");
        let long = format!("label.{}", "x".repeat(MAX_NAME + 1));
        assert!(validate(&[long]).unwrap_err().contains("longer than"));
        let many: Vec<String> = (0..=MAX_COLUMNS).map(|n| format!("label.l{n}")).collect();
        assert!(validate(&many).unwrap_err().contains("at most 30"));
    }
}
