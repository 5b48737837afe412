//! Lenient, field-naming access to an Open API request body (openapi-compat.md 1.3).
//!
//! Go clients omit zero values, so absent, `null`, `0`, `""` and `false` all read as "not
//! given". A value of the wrong type is an `InvalidParameter` naming the field.

use klaxon_core::error::ApiError;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct Args {
    map: Map<String, Value>,
}

fn wrong(name: &str, expected: &str) -> ApiError {
    ApiError::invalid(format!("{name} must be {expected}"))
}

impl Args {
    pub fn new(map: Map<String, Value>) -> Self {
        Args { map }
    }

    /// The whole body, for endpoints that take nested objects (schedules' `layers`).
    pub fn raw(&self) -> &Map<String, Value> {
        &self.map
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// An integer; integral floats (`1.0`) are accepted since some clients send them.
    pub fn i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .map(Some)
                .ok_or_else(|| wrong(name, "an integer")),
            Some(_) => Err(wrong(name, "an integer")),
        }
    }

    /// A required positive id: absent is "`name` is required", zero or negative is
    /// "`name` must be a positive id".
    pub fn required_id(&self, name: &str) -> Result<i64, ApiError> {
        match self.i64(name)? {
            Some(id) if id > 0 => Ok(id),
            Some(_) => Err(ApiError::invalid(format!("{name} must be a positive id"))),
            None => Err(ApiError::invalid(format!("{name} is required"))),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong(name, "a boolean")),
        }
    }

    /// A string; `""` reads as absent.
    pub fn str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong(name, "a string")),
        }
    }

    pub fn i64_list(&self, name: &str) -> Result<Vec<i64>, ApiError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_i64()
                        .ok_or_else(|| wrong(name, "an array of integers"))
                })
                .collect(),
            Some(_) => Err(wrong(name, "an array of integers")),
        }
    }

    pub fn str_list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| wrong(name, "an array of strings"))
                })
                .collect(),
            Some(_) => Err(wrong(name, "an array of strings")),
        }
    }

    /// A comma-separated string (`"Triggered,Processing"`, openapi-compat.md 1.3); a JSON array
    /// of strings is accepted too.
    pub fn comma_list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.get(name) {
            Some(Value::String(s)) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()),
            Some(Value::Array(_)) => self.str_list(name),
            None => Ok(Vec::new()),
            Some(_) => Err(wrong(name, "a comma-separated string")),
        }
    }
}

/// The first member of `map` (as a path, `a.b[2]`) whose name or text holds U+0000.
pub fn nul_field(map: &Map<String, Value>) -> Option<String> {
    fn walk(v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) if s.contains('\0') => Some(path.to_string()),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item, &format!("{path}[{i}]"))),
            Value::Object(map) => in_map(map, &format!("{path}.")),
            _ => None,
        }
    }
    fn in_map(map: &Map<String, Value>, prefix: &str) -> Option<String> {
        map.iter().find_map(|(k, v)| {
            let path = format!("{prefix}{}", k.replace('\0', "\\u0000"));
            if k.contains('\0') {
                return Some(path);
            }
            walk(v, &path)
        })
    }
    in_map(map, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        match v {
            Value::Object(m) => Args::new(m),
            _ => Args::new(Map::new()),
        }
    }

    #[test]
    fn nul_characters_are_found_wherever_they_are() {
        let map = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        assert_eq!(nul_field(&map(json!({"a": "x", "b": [1, "y"]}))), None);
        assert_eq!(
            nul_field(&map(json!({"a": {"b": ["ok", "n\0o"]}}))).as_deref(),
            Some("a.b[1]")
        );
        assert!(nul_field(&map(json!({"k\0": 1}))).is_some());
    }

    #[test]
    fn zero_values_read_as_absent_and_wrong_types_name_the_field() {
        let a = args(
            json!({"p": null, "query": "", "limit": "x", "progress": "Triggered, Processing"}),
        );
        assert_eq!(a.i64("p").unwrap(), None);
        assert_eq!(a.str("query").unwrap(), None);
        assert_eq!(
            a.i64("limit").unwrap_err().message,
            "limit must be an integer"
        );
        assert_eq!(
            a.comma_list("progress").unwrap(),
            vec!["Triggered", "Processing"]
        );
    }
}
