//! Custom fields (response.md 1.11, RSP-014, RSP-084, RSP-085): definitions, their validation,
//! and checking a value against a definition.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Millis;

/// At most this many fields per account (RSP-085).
pub const FIELDS_MAX: usize = 15;
pub const DISPLAY_NAME_MAX: usize = 40;
pub const DESCRIPTION_MAX: usize = 200;
pub const OPTIONS_MAX: usize = 10;
pub const OPTION_MAX_CHARS: usize = 200;
pub const TEXT_VALUE_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    SingleSelect,
    MultiSelect,
    Checkbox,
}

impl FieldType {
    /// The wire `value_type` (openapi-compat.md 1.9).
    pub fn value_type(self) -> &'static str {
        match self {
            FieldType::Checkbox => "bool",
            _ => "string",
        }
    }

    fn is_select(self) -> bool {
        matches!(self, FieldType::SingleSelect | FieldType::MultiSelect)
    }
}

/// One custom field definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDefinition {
    #[serde(default)]
    pub field_id: String,
    pub field_name: String,
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    pub field_type: FieldType,
    #[serde(default)]
    pub options: Vec<String>,
    /// `Null` = no default.
    #[serde(default)]
    pub default_value: Value,
    #[serde(default)]
    pub creator_id: i64,
    #[serde(default)]
    pub updated_by: i64,
    #[serde(default)]
    pub created_at: Millis,
    #[serde(default)]
    pub updated_at: Millis,
}

/// A definition or value that fails validation, naming the field as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// `^[a-zA-Z_][a-zA-Z0-9_]{0,39}$` (response.md 1.11).
pub fn valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 40
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a definition on create or update, normalising the default value.
pub fn validate_definition(def: &mut FieldDefinition) -> Result<(), FieldError> {
    if !valid_field_name(&def.field_name) {
        return Err(bad(
            "field_name",
            "must start with a letter or _, then letters, digits or _, at most 40 characters",
        ));
    }
    def.display_name = def.display_name.trim().to_string();
    let n = def.display_name.chars().count();
    if n == 0 || n > DISPLAY_NAME_MAX {
        return Err(bad("display_name", "must be 1 to 40 characters"));
    }
    if def.description.chars().count() > DESCRIPTION_MAX {
        return Err(bad("description", "must be at most 200 characters"));
    }
    if def.field_type.is_select() {
        if def.options.is_empty() || def.options.len() > OPTIONS_MAX {
            return Err(bad("options", "a select field needs 1 to 10 options"));
        }
        for (i, o) in def.options.iter().enumerate() {
            let len = o.chars().count();
            if len == 0 || len > OPTION_MAX_CHARS {
                return Err(bad(&format!("options[{i}]"), "must be 1 to 200 characters"));
            }
            if def.options[..i].contains(o) {
                return Err(bad(
                    &format!("options[{i}]"),
                    format!("{o} is listed twice"),
                ));
            }
        }
    } else if !def.options.is_empty() {
        return Err(bad("options", "only select fields have options"));
    }
    if !def.default_value.is_null() {
        def.default_value =
            check_value(def, &def.default_value).map_err(|e| bad("default_value", e.message))?;
    }
    Ok(())
}

/// RSP-084: a value for `def`, normalised (multi-select de-duplicated and in option order).
/// `Null` is returned as `Null` (it removes the value).
pub fn check_value(def: &FieldDefinition, value: &Value) -> Result<Value, FieldError> {
    let field = "field_value";
    match (def.field_type, value) {
        (_, Value::Null) => Ok(Value::Null),
        (FieldType::Text, Value::String(s)) => {
            if s.chars().count() > TEXT_VALUE_MAX {
                return Err(bad(field, "must be at most 500 characters"));
            }
            Ok(value.clone())
        }
        (FieldType::Checkbox, Value::Bool(_)) => Ok(value.clone()),
        (FieldType::SingleSelect, Value::String(s)) => {
            if def.options.contains(s) {
                Ok(value.clone())
            } else {
                Err(bad(
                    field,
                    format!("{s} is not an option of {}", def.field_name),
                ))
            }
        }
        (FieldType::MultiSelect, Value::Array(items)) => {
            let mut chosen: Vec<&str> = Vec::new();
            for item in items {
                let Some(s) = item.as_str() else {
                    return Err(bad(field, "must be a list of options"));
                };
                if !def.options.iter().any(|o| o == s) {
                    return Err(bad(
                        field,
                        format!("{s} is not an option of {}", def.field_name),
                    ));
                }
                chosen.push(s);
            }
            Ok(Value::Array(
                def.options
                    .iter()
                    .filter(|o| chosen.contains(&o.as_str()))
                    .map(|o| Value::String(o.clone()))
                    .collect(),
            ))
        }
        (t, _) => Err(bad(
            field,
            match t {
                FieldType::Text | FieldType::SingleSelect => "must be a string",
                FieldType::MultiSelect => "must be a list of options",
                FieldType::Checkbox => "must be true or false",
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(kind: FieldType) -> FieldDefinition {
        FieldDefinition {
            field_id: String::new(),
            field_name: "env".into(),
            display_name: "Environment".into(),
            description: String::new(),
            field_type: kind,
            options: vec!["prod".into(), "staging".into(), "dev".into()],
            default_value: Value::Null,
            creator_id: 0,
            updated_by: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn values_are_checked_against_the_type() {
        // spec: RSP-084
        let single = select(FieldType::SingleSelect);
        assert_eq!(check_value(&single, &json!("prod")).unwrap(), json!("prod"));
        assert!(check_value(&single, &json!("qa")).is_err());
        assert!(check_value(&single, &json!(true)).is_err());
        let multi = select(FieldType::MultiSelect);
        assert_eq!(
            check_value(&multi, &json!(["dev", "prod", "dev"])).unwrap(),
            json!(["prod", "dev"]),
            "de-duplicated and in option order"
        );
        let mut text = select(FieldType::Text);
        text.options.clear();
        assert!(check_value(&text, &json!("x".repeat(501))).is_err());
        assert_eq!(check_value(&text, &Value::Null).unwrap(), Value::Null);
        let mut check = select(FieldType::Checkbox);
        check.options.clear();
        assert!(check_value(&check, &json!("yes")).is_err());
        assert_eq!(check_value(&check, &json!(false)).unwrap(), json!(false));
    }

    #[test]
    fn definitions_are_validated() {
        // spec: response.md 1.11, RSP-085
        let mut ok = select(FieldType::MultiSelect);
        ok.default_value = json!(["dev", "prod"]);
        validate_definition(&mut ok).unwrap();
        assert_eq!(ok.default_value, json!(["prod", "dev"]));
        for (mutate, field) in [
            (
                Box::new(|d: &mut FieldDefinition| d.field_name = "9lives".into())
                    as Box<dyn Fn(&mut FieldDefinition)>,
                "field_name",
            ),
            (Box::new(|d| d.field_name = "a".repeat(41)), "field_name"),
            (Box::new(|d| d.display_name = " ".into()), "display_name"),
            (Box::new(|d| d.options = vec![]), "options"),
            (Box::new(|d| d.options = vec!["a".into(); 11]), "options"),
            (
                Box::new(|d| d.options = vec!["a".into(), "a".into()]),
                "options[1]",
            ),
            (Box::new(|d| d.default_value = json!("qa")), "default_value"),
        ] {
            let mut d = select(FieldType::SingleSelect);
            mutate(&mut d);
            assert_eq!(validate_definition(&mut d).unwrap_err().field, field);
        }
    }
}
