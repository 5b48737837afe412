//! The incident detail's custom fields (response.md RSP-084, §2.26): every field of the
//! account with the incident's value, and a small form per field that saves through
//! `/incident/field/reset`. The form's inputs follow the field's type; what a form sends is
//! turned into the value the API expects here, and the API checks it (an option that is not
//! one of the field's is refused beside that field).

use serde_json::{Value, json};

/// What a refused field form had: the field and the values typed or ticked, shown again.
#[derive(Debug, Clone, Default)]
pub(super) struct Kept {
    pub field_name: String,
    pub values: Vec<String>,
}

/// The form's `value` inputs as the API value of `field_type`: an empty text or choice
/// removes the value (`null`), a checkbox is `true`/`false`, a multi-select the ticked list.
pub(super) fn submitted(pairs: &[(String, String)]) -> (String, Value, Kept) {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let field_name = get("field_name");
    let values: Vec<String> = pairs
        .iter()
        .filter(|(k, v)| k == "value" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect();
    let value = match get("field_type").as_str() {
        "multi_select" if values.is_empty() => Value::Null,
        "multi_select" => json!(values),
        "checkbox" => match values.first().map(String::as_str) {
            Some("true") => Value::Bool(true),
            Some("false") => Value::Bool(false),
            // Anything else goes through as typed, so the API's own check names it.
            Some(other) => json!(other),
            None => Value::Null,
        },
        _ => values.first().map_or(Value::Null, |v| json!(v)),
    };
    let kept = Kept {
        field_name: field_name.clone(),
        values,
    };
    (field_name, value, kept)
}

/// One row per field of the account (`/field/list` items) with the incident's value, the
/// values the form shows (kept ones after a refusal), and its options marked.
pub(super) fn rows(defs: &Value, incident: &Value, kept: &Kept) -> Vec<Value> {
    defs.as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let name = d["field_name"].as_str().unwrap_or_default();
            let current = &incident["fields"][name];
            let shown: Vec<String> = if !kept.field_name.is_empty() && kept.field_name == name {
                kept.values.clone()
            } else {
                match current {
                    Value::Null => Vec::new(),
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    Value::Bool(b) => vec![b.to_string()],
                    Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                }
            };
            let options: Vec<Value> = d["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|o| json!({"value": o, "chosen": shown.iter().any(|s| s == o)}))
                .collect();
            let display = match current {
                Value::Null => String::new(),
                Value::Bool(true) => "Yes".to_string(),
                Value::Bool(false) => "No".to_string(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let label = d["display_name"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(name);
            json!({
                "name": name,
                "label": label,
                "type": d["field_type"],
                "display": display,
                "text": shown.first().cloned().unwrap_or_default(),
                "options": options,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    // spec: RSP-084 (set, or with null remove, a value of the field's type)
    #[test]
    fn each_type_becomes_its_api_value() {
        let (name, v, _) = submitted(&pairs(&[
            ("field_name", "env"),
            ("field_type", "single_select"),
            ("value", "prod"),
        ]));
        assert_eq!((name.as_str(), v), ("env", json!("prod")));
        let (_, v, _) = submitted(&pairs(&[("field_type", "text"), ("value", "  ")]));
        assert_eq!(v, Value::Null);
        let (_, v, kept) = submitted(&pairs(&[
            ("field_type", "multi_select"),
            ("value", "a"),
            ("value", "c"),
        ]));
        assert_eq!(v, json!(["a", "c"]));
        assert_eq!(kept.values, ["a", "c"]);
        let (_, v, _) = submitted(&pairs(&[("field_type", "multi_select")]));
        assert_eq!(v, Value::Null);
        let (_, v, _) = submitted(&pairs(&[("field_type", "checkbox"), ("value", "false")]));
        assert_eq!(v, json!(false));
        let (_, v, _) = submitted(&pairs(&[("field_type", "checkbox")]));
        assert_eq!(v, Value::Null);
    }

    #[test]
    fn rows_show_the_value_or_what_a_refused_form_had() {
        let defs = json!([
            {"field_name": "env", "display_name": "Environment", "field_type": "single_select",
             "options": ["prod", "staging"]},
            {"field_name": "tags", "display_name": "", "field_type": "multi_select",
             "options": ["db", "net"]},
        ]);
        let incident = json!({"fields": {"env": "prod", "tags": ["db", "net"]}});
        let r = rows(&defs, &incident, &Kept::default());
        assert_eq!(r[0]["label"], "Environment");
        assert_eq!(r[0]["display"], "prod");
        assert_eq!(r[0]["options"][0]["chosen"], true);
        assert_eq!(r[1]["label"], "tags");
        assert_eq!(r[1]["display"], "db, net");
        let kept = Kept {
            field_name: "env".into(),
            values: vec!["staging".into()],
        };
        let r = rows(&defs, &incident, &kept);
        assert_eq!(r[0]["options"][1]["chosen"], true);
        assert_eq!(r[0]["display"], "prod", "the stored value is still shown");
    }
}
