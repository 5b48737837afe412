//! The values a template sees. Go distinguishes structs (an unknown field is an error) from
//! maps (a missing key is the zero value); RSP-341 keeps that distinction, so the data model
//! does too instead of using plain JSON.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `toHtml` output: a string that the email channel prints unescaped (RSP-342).
    Html(String),
    List(Vec<V>),
    /// `map[string]…`: a missing key yields `""` (RSP-341).
    Map(BTreeMap<String, V>),
    /// A struct: a field it does not define is an execution error (RSP-341).
    Struct(BTreeMap<String, V>),
}

impl V {
    pub fn str(s: impl Into<String>) -> V {
        V::Str(s.into())
    }

    pub fn strukt<const N: usize>(fields: [(&str, V); N]) -> V {
        V::Struct(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    pub fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> V {
        V::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.clone(), V::Str(v.clone())))
                .collect(),
        )
    }

    /// Go's truthiness (RSP-341).
    pub fn truthy(&self) -> bool {
        match self {
            V::Nil => false,
            V::Bool(b) => *b,
            V::Int(i) => *i != 0,
            V::Float(f) => *f != 0.0,
            V::Str(s) | V::Html(s) => !s.is_empty(),
            V::List(l) => !l.is_empty(),
            V::Map(m) => !m.is_empty(),
            V::Struct(_) => true,
        }
    }

    /// The kind name used in error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            V::Nil => "nil",
            V::Bool(_) => "bool",
            V::Int(_) => "int",
            V::Float(_) => "float",
            V::Str(_) | V::Html(_) => "string",
            V::List(_) => "list",
            V::Map(_) => "map",
            V::Struct(_) => "struct",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            V::Str(s) | V::Html(s) => Some(s),
            _ => None,
        }
    }

    /// How `print` and `{{ x }}` show a value (Go's `%v`).
    pub fn display(&self) -> String {
        match self {
            V::Nil => "<no value>".to_string(),
            V::Bool(b) => b.to_string(),
            V::Int(i) => i.to_string(),
            V::Float(f) => fmt_float(*f),
            V::Str(s) | V::Html(s) => s.clone(),
            V::List(l) => {
                let parts: Vec<String> = l.iter().map(V::display).collect();
                format!("[{}]", parts.join(" "))
            }
            V::Map(m) | V::Struct(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.display()))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
        }
    }

    /// JSON form for `toJson` and friends.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            V::Nil => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Int(i) => J::from(*i),
            V::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            V::Str(s) | V::Html(s) => J::String(s.clone()),
            V::List(l) => J::Array(l.iter().map(V::to_json).collect()),
            V::Map(m) | V::Struct(m) => {
                J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    pub fn from_json(j: &serde_json::Value) -> V {
        use serde_json::Value as J;
        match j {
            J::Null => V::Nil,
            J::Bool(b) => V::Bool(*b),
            J::Number(n) => n
                .as_i64()
                .map(V::Int)
                .unwrap_or_else(|| V::Float(n.as_f64().unwrap_or(0.0))),
            J::String(s) => V::Str(s.clone()),
            J::Array(a) => V::List(a.iter().map(V::from_json).collect()),
            J::Object(o) => V::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), V::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// Go's `%v` for float64: shortest representation, no trailing `.0` for whole numbers.
pub fn fmt_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}
