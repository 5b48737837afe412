//! Field mapping, value mapping and batch push for the standard family (ingest.md §2.3,
//! ING-040…049): arbitrary JSON items → standard payload objects → validated [`NewEvent`]s.
//! Pure: the integration's settings, the body and the receive time come in as arguments.
//!
//! A [`FieldMapping`] is parsed (and so checked) from `settings.field_mapping` and
//! `settings.value_mapping` once; [`FieldMapping::apply`] turns one push body (an object or an
//! array of 1–100 objects) into events, all or nothing.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::model::NewEvent;
use crate::standard::{PushContext, parse_standard};

/// ING-042: the targets a field mapping may fill.
pub const TARGETS: [&str; 8] = [
    "title",
    "title_rule",
    "description",
    "event_status",
    "alert_key",
    "labels",
    "images",
    "event_time",
];

/// ING-041: at most this many items in one array body.
pub const BATCH_MAX: usize = 100;

/// ING-043: targets whose whole non-string value is converted to text.
const STRING_TARGETS: [&str; 5] = [
    "title",
    "title_rule",
    "description",
    "event_status",
    "alert_key",
];

/// A variable path (ING-042): segments separated by `.`; all-digit segments index arrays.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct VarPath(Vec<String>);

impl VarPath {
    /// `text` without braces; surrounding whitespace is ignored. `None` for an empty path or
    /// an empty segment (`a..b`, `.a`).
    fn parse(text: &str) -> Option<VarPath> {
        let text = text.trim();
        if text.is_empty() || text.contains("{{") || text.contains("}}") {
            return None;
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return None;
        }
        Some(VarPath(segments))
    }

    fn shown(&self) -> String {
        self.0.join(".")
    }

    /// The value at this path, or `None` when it cannot be resolved (ING-044: a missing
    /// member, an index out of range, descending into a scalar, or `null`).
    fn resolve<'v>(&self, item: &'v Value) -> Option<&'v Value> {
        let mut at = item;
        for segment in &self.0 {
            at = match at {
                Value::Object(m) => m.get(segment)?,
                Value::Array(a) if segment.bytes().all(|b| b.is_ascii_digit()) => {
                    a.get(segment.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        (!at.is_null()).then_some(at)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(VarPath),
}

/// A target value: literal text and `{{path}}` variables.
#[derive(Debug, Clone, PartialEq)]
struct Template(Vec<Part>);

impl Template {
    /// ING-042. `field` names the setting in errors (e.g. `field_mapping.title`).
    fn parse(text: &str, field: &str) -> Result<Template, ApiError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let (before, after) = rest.split_at(open);
            if !before.is_empty() {
                parts.push(Part::Text(before.to_owned()));
            }
            let after = after.get(2..).unwrap_or("");
            let close = after.find("}}").ok_or_else(|| {
                ApiError::invalid(format!("{field}: a variable is not closed with }}}}"))
            })?;
            let inner = after.get(..close).unwrap_or("");
            let path = VarPath::parse(inner).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{field}: variable {{{{{inner}}}}} is not a valid path"
                ))
            })?;
            parts.push(Part::Var(path));
            rest = after.get(close + 2..).unwrap_or("");
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template(parts))
    }

    /// The single variable when the template is exactly one variable (ING-043).
    fn whole(&self) -> Option<&VarPath> {
        match self.0.as_slice() {
            [Part::Var(p)] => Some(p),
            _ => None,
        }
    }
}

/// ING-046: the two label forms.
#[derive(Debug, Clone, PartialEq)]
enum LabelMapping {
    /// `"labels": "{{tags}}"`: the members of one object.
    Expand(VarPath),
    /// `"labels": {"env": "{{tags.env}}"}`: one template per label.
    PerLabel(Vec<(String, Template)>),
}

/// A checked field mapping with its value mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMapping {
    /// Every target except `labels`, in [`TARGETS`] order.
    fields: Vec<(&'static str, Template)>,
    labels: Option<LabelMapping>,
    /// ING-045: path → (source text → replacement).
    values: HashMap<VarPath, Map<String, Value>>,
}

impl FieldMapping {
    /// Parses and checks `settings.field_mapping` and `settings.value_mapping` (ING-042,
    /// ING-045, ING-046, ING-049). `Ok(None)` when there is no field mapping or it is an empty
    /// object (ING-040: the body is then a standard payload). Errors name the bad key.
    pub fn from_settings(
        field_mapping: Option<&Value>,
        value_mapping: Option<&Value>,
    ) -> Result<Option<FieldMapping>, ApiError> {
        let fm = match field_mapping {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(ApiError::invalid("field_mapping must be an object")),
        };
        let vm = match value_mapping {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(ApiError::invalid("value_mapping must be an object")),
        };
        let Some(fm) = fm.filter(|m| !m.is_empty()) else {
            if vm.is_some_and(|m| !m.is_empty()) {
                return Err(ApiError::invalid(
                    "value_mapping needs a non-empty field_mapping",
                ));
            }
            return Ok(None);
        };
        if let Some(bad) = fm.keys().find(|k| !TARGETS.contains(&k.as_str())) {
            return Err(ApiError::invalid(format!(
                "field_mapping.{bad} is not a mapping target (allowed: {})",
                TARGETS.join(", ")
            )));
        }
        let mut fields = Vec::new();
        let mut labels = None;
        for target in TARGETS {
            let Some(value) = fm.get(target) else {
                continue;
            };
            let field = format!("field_mapping.{target}");
            if target == "labels" {
                labels = Some(label_mapping(value, &field)?);
                continue;
            }
            let text = value
                .as_str()
                .ok_or_else(|| ApiError::invalid(format!("{field} must be a string")))?;
            fields.push((target, Template::parse(text, &field)?));
        }
        // ING-049: what every mapped item needs.
        let defined = |t: &str| {
            fm.get(t)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        };
        if !defined("event_status") {
            return Err(ApiError::invalid("field_mapping.event_status is required"));
        }
        if !defined("title") && !defined("title_rule") {
            return Err(ApiError::invalid(
                "field_mapping.title or field_mapping.title_rule is required",
            ));
        }
        let mut values = HashMap::new();
        for (path, table) in vm.into_iter().flatten() {
            let field = format!("value_mapping.{path}");
            let parsed = VarPath::parse(path).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{field}: not a valid path (segments separated by '.', without braces)"
                ))
            })?;
            let Value::Object(table) = table else {
                return Err(ApiError::invalid(format!(
                    "{field} must be an object of source value → target value"
                )));
            };
            for (source, target) in table {
                if !matches!(target, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                    return Err(ApiError::invalid(format!(
                        "{field}.{source} must be a string, number or boolean"
                    )));
                }
            }
            if values.insert(parsed, table.clone()).is_some() {
                return Err(ApiError::invalid(format!(
                    "{field}: the same path is mapped twice"
                )));
            }
        }
        Ok(Some(FieldMapping {
            fields,
            labels,
            values,
        }))
    }

    /// ING-041, ING-047: a push body → one event per item, in input order, or the first error
    /// (prefixed `item <index>:`); nothing is returned unless every item is valid.
    /// `raw_of(index, item)` gives the kept source text of an item (ING-054).
    pub fn apply(
        &self,
        body: &Value,
        ctx: &PushContext<'_>,
        raw_of: impl Fn(usize, &Value) -> String,
    ) -> Result<Vec<NewEvent>, ApiError> {
        let items: Vec<&Value> = match body {
            Value::Object(_) => vec![body],
            Value::Array(items) if items.is_empty() => {
                return Err(ApiError::invalid("batch must contain at least one item"));
            }
            Value::Array(items) if items.len() > BATCH_MAX => {
                return Err(ApiError::invalid(format!(
                    "batch has too many items ({} > {BATCH_MAX})",
                    items.len()
                )));
            }
            Value::Array(items) => items.iter().collect(),
            _ => {
                return Err(ApiError::invalid(
                    "request body must be a JSON object or an array of objects",
                ));
            }
        };
        if let Some(i) = items.iter().position(|item| !item.is_object()) {
            return Err(ApiError::invalid(format!(
                "item {i}: must be a JSON object"
            )));
        }
        let mut events = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let payload = self.map_item(item).map_err(|m| prefixed(i, &m))?;
            let mut event = parse_standard(&payload, ctx).map_err(|e| prefixed(i, &e.message))?;
            event.raw = raw_of(i, item);
            events.push(event);
        }
        Ok(events)
    }

    /// ING-042…046: one source item → the standard payload object it maps to. The error is
    /// the message without the item prefix.
    pub fn map_item(&self, item: &Value) -> Result<Value, String> {
        let mut out = Map::new();
        for (target, template) in &self.fields {
            let mut value = self.render(template, item)?;
            if STRING_TARGETS.contains(target) && !value.is_string() {
                value = Value::String(text(&value));
            }
            if *target == "event_time"
                && let Value::String(s) = &value
                && !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && let Ok(n) = s.parse::<u64>()
            {
                value = Value::from(n);
            }
            out.insert((*target).to_owned(), value);
        }
        match &self.labels {
            None => {}
            Some(LabelMapping::Expand(path)) => {
                let Value::Object(members) = self.resolve(path, item)? else {
                    return Err(format!(
                        "labels: variable {} is not an object",
                        path.shown()
                    ));
                };
                let labels: Map<String, Value> = members
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Object(_) | Value::Array(_) => Value::String(v.to_string()),
                            other => other,
                        };
                        (k, v)
                    })
                    .collect();
                out.insert("labels".into(), Value::Object(labels));
            }
            Some(LabelMapping::PerLabel(templates)) => {
                let mut labels = Map::new();
                for (name, template) in templates {
                    let value = self.render(template, item)?;
                    labels.insert(name.clone(), Value::String(text(&value)));
                }
                out.insert("labels".into(), Value::Object(labels));
            }
        }
        Ok(Value::Object(out))
    }

    /// ING-043: one variable alone keeps its JSON type; anything else is text.
    fn render(&self, template: &Template, item: &Value) -> Result<Value, String> {
        if let Some(path) = template.whole() {
            return self.resolve(path, item);
        }
        let mut s = String::new();
        for part in &template.0 {
            match part {
                Part::Text(t) => s.push_str(t),
                Part::Var(path) => s.push_str(&text(&self.resolve(path, item)?)),
            }
        }
        Ok(Value::String(s))
    }

    /// ING-044 and ING-045: the value of a variable, after its value mapping.
    fn resolve(&self, path: &VarPath, item: &Value) -> Result<Value, String> {
        let value = path
            .resolve(item)
            .ok_or_else(|| format!("variable {} not found", path.shown()))?;
        let replaced = self
            .values
            .get(path)
            .and_then(|table| table.get(&text(value)));
        Ok(replaced.unwrap_or(value).clone())
    }
}

/// ING-046: the label form of `field_mapping.labels`.
fn label_mapping(value: &Value, field: &str) -> Result<LabelMapping, ApiError> {
    match value {
        Value::String(s) => Template::parse(s, field)?
            .whole()
            .cloned()
            .map(LabelMapping::Expand)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{field} must be one variable such as \"{{{{tags}}}}\" or an object of \
                     label templates"
                ))
            }),
        Value::Object(m) => {
            let mut templates = Vec::with_capacity(m.len());
            for (name, t) in m {
                let label_field = format!("{field}.{name}");
                if name.trim().is_empty() {
                    return Err(ApiError::invalid(format!("{field}: a label name is empty")));
                }
                let t = t
                    .as_str()
                    .ok_or_else(|| ApiError::invalid(format!("{label_field} must be a string")))?;
                templates.push((name.clone(), Template::parse(t, &label_field)?));
            }
            Ok(LabelMapping::PerLabel(templates))
        }
        _ => Err(ApiError::invalid(format!(
            "{field} must be a string (\"{{{{tags}}}}\") or an object of label templates"
        ))),
    }
}

/// ING-043 text form: strings verbatim, numbers in shortest form, booleans, compact JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn prefixed(index: usize, message: &str) -> ApiError {
    ApiError::invalid(format!("item {index}: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Millis, Status};
    use serde_json::json;

    const RECEIVED: Millis = 1_700_000_000_789;

    fn ctx(query: &[(String, String)]) -> PushContext<'_> {
        PushContext {
            integration_id: 42,
            query_labels: query,
            received_at: RECEIVED,
        }
    }

    fn mapping(fm: Value, vm: Value) -> FieldMapping {
        FieldMapping::from_settings(Some(&fm), Some(&vm))
            .unwrap()
            .unwrap()
    }

    fn refused(fm: Value, vm: Value) -> String {
        FieldMapping::from_settings(Some(&fm), Some(&vm))
            .unwrap_err()
            .message
    }

    fn apply(m: &FieldMapping, body: Value) -> Result<Vec<NewEvent>, ApiError> {
        m.apply(&body, &ctx(&[]), |_, item| item.to_string())
    }

    fn one(m: &FieldMapping, body: Value) -> NewEvent {
        let mut events = apply(m, body).unwrap();
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn err(m: &FieldMapping, body: Value) -> String {
        apply(m, body).unwrap_err().message
    }

    fn basic() -> FieldMapping {
        mapping(
            json!({"event_status": "{{severity}}", "title": "{{host}} - {{check}}"}),
            json!({}),
        )
    }

    // spec: ING-045 — the worked example.
    #[test]
    fn value_mapping_worked_example() {
        let m = mapping(
            json!({"event_status": "{{severity}}", "title": "t"}),
            json!({"severity": {"high": "Critical"}}),
        );
        let ev = one(&m, json!({"severity": "high"}));
        assert_eq!(ev.event_status, Status::Critical);
    }

    // spec: ING-045 — exact, case-sensitive hits only; misses pass through; before
    // concatenation; text form of non-strings is what is looked up.
    #[test]
    fn value_mapping_hits_and_misses() {
        let m = mapping(
            json!({"event_status": "{{sev}}", "title": "[{{sev}}] {{code}}",
                   "description": "{{code}}"}),
            json!({"sev": {"high": "Critical", "low": "Info"}, "code": {"500": "server error"}}),
        );
        let ev = one(&m, json!({"sev": "high", "code": 500}));
        assert_eq!(ev.event_status, Status::Critical);
        assert_eq!(ev.title, "[Critical] server error");
        assert_eq!(ev.description, "server error");
        // "High" is not "high": no hit, passes through and then fails ING-021.
        assert_eq!(
            err(&m, json!({"sev": "High", "code": 1})),
            "item 0: event_status is invalid"
        );
        let ev = one(&m, json!({"sev": "low", "code": 404}));
        assert_eq!(ev.title, "[Info] 404");
        assert_eq!(ev.description, "404");
    }

    // spec: ING-042 — paths: members, 0-based array indexes, whitespace inside braces.
    #[test]
    fn path_syntax() {
        let m = mapping(
            json!({"event_status": "{{ data.alerts.1.state }}", "title": "{{data.alerts.0.name}}",
                   "alert_key": "{{data.id}}"}),
            json!({}),
        );
        let ev = one(
            &m,
            json!({"data": {"id": "k-1", "alerts": [{"name": "first", "state": "Ok"},
                                                    {"name": "second", "state": "Warning"}]}}),
        );
        assert_eq!(ev.title, "first");
        assert_eq!(ev.event_status, Status::Warning);
        assert_eq!(ev.alert_key, "k-1");
        // A literal without variables is a constant.
        let m = mapping(
            json!({"event_status": "Warning", "title": "Constant"}),
            json!({}),
        );
        let ev = one(&m, json!({"anything": 1}));
        assert_eq!(
            (ev.event_status, ev.title.as_str()),
            (Status::Warning, "Constant")
        );
    }

    // spec: ING-040 — only mapped targets are filled; raw fields named like standard ones are
    // ignored.
    #[test]
    fn only_mapped_targets_are_filled() {
        let ev = one(
            &basic(),
            json!({"severity": "Info", "host": "h", "check": "cpu",
                   "title": "ignored", "description": "ignored", "alert_key": "ignored",
                   "labels": {"x": "ignored"}, "event_status": "Critical"}),
        );
        assert_eq!(ev.event_status, Status::Info);
        assert_eq!(ev.title, "h - cpu");
        assert_eq!(ev.description, "");
        assert!(ev.labels.is_empty());
        assert_eq!(ev.alert_key.len(), 32, "generated, not the raw alert_key");
        assert_ne!(ev.alert_key, "ignored");
    }

    // spec: ING-043 — type preservation and text conversion.
    #[test]
    fn type_preservation() {
        let m = mapping(
            json!({"event_status": "Info", "title": "{{n}}|{{f}}|{{b}}|{{o}}|{{a}}|{{s}}",
                   "description": "{{o}}", "alert_key": "{{n}}", "event_time": "{{t}}",
                   "images": "{{imgs}}"}),
            json!({}),
        );
        let ev = one(
            &m,
            json!({"n": 90, "f": 0.5, "b": true, "o": {"k": [1, "x"]}, "a": [1, 2], "s": "str",
                   "t": 1_600_000_000, "imgs": [{"src": "https://i/1.png", "alt": "cpu"}]}),
        );
        assert_eq!(ev.title, r#"90|0.5|true|{"k":[1,"x"]}|[1,2]|str"#);
        // Whole non-string values of string targets become text.
        assert_eq!(ev.description, r#"{"k":[1,"x"]}"#);
        assert_eq!(ev.alert_key, "90");
        // Whole values keep their type: a number for event_time, an array for images.
        assert_eq!(ev.event_time, 1_600_000_000_000);
        assert_eq!(ev.images.len(), 1);
        assert_eq!(ev.images[0].alt, "cpu");
    }

    // spec: ING-043 — event_time: a digits-only string is that integer; other strings fail.
    #[test]
    fn event_time_from_digit_strings() {
        let m = mapping(
            json!({"event_status": "Info", "title": "t", "event_time": "{{t}}"}),
            json!({}),
        );
        assert_eq!(
            one(&m, json!({"t": "1600000000"})).event_time,
            1_600_000_000_000
        );
        assert_eq!(
            one(&m, json!({"t": "1600000000123"})).event_time,
            1_600_000_000_000
        );
        assert_eq!(
            err(&m, json!({"t": "2020-01-01"})),
            "item 0: event_time is invalid"
        );
        assert_eq!(err(&m, json!({"t": "-5"})), "item 0: event_time is invalid");
        // Embedded text yielding digits only is accepted too.
        let m = mapping(
            json!({"event_status": "Info", "title": "t", "event_time": "{{s}}000"}),
            json!({}),
        );
        assert_eq!(
            one(&m, json!({"s": 1_600_000})).event_time,
            1_600_000_000_000
        );
    }

    // spec: ING-044 — unresolvable variables name the item index and the path.
    #[test]
    fn unresolvable_variables() {
        let m = mapping(
            json!({"event_status": "{{data.severity}}", "title": "{{list.2}} {{s.deeper}}"}),
            json!({}),
        );
        let good = json!({"data": {"severity": "Info"}, "list": [0, 1, 2], "s": {"deeper": 1}});
        assert_eq!(one(&m, good.clone()).title, "2 1");
        for (body, path) in [
            (
                json!({"list": [0, 1, 2], "s": {"deeper": 1}}),
                "data.severity",
            ),
            (
                json!({"data": {"severity": null}, "list": [0, 1, 2], "s": {"deeper": 1}}),
                "data.severity",
            ),
            (
                json!({"data": "scalar", "list": [0, 1, 2], "s": {"deeper": 1}}),
                "data.severity",
            ),
            (
                json!({"data": {"severity": "Info"}, "list": [0, 1], "s": {"deeper": 1}}),
                "list.2",
            ),
            (
                json!({"data": {"severity": "Info"}, "list": {"a": 1}, "s": {"deeper": 1}}),
                "list.2",
            ),
            (
                json!({"data": {"severity": "Info"}, "list": [0, 1, 2], "s": "x"}),
                "s.deeper",
            ),
        ] {
            assert_eq!(err(&m, body), format!("item 0: variable {path} not found"));
        }
        // The index of the failing item in a batch; nothing is returned.
        let bad = json!({"list": [0, 1, 2], "s": {"deeper": 1}});
        assert_eq!(
            err(&m, json!([good.clone(), good.clone(), good.clone(), bad])),
            "item 3: variable data.severity not found"
        );
    }

    // spec: ING-041 — body shapes and batch limits.
    #[test]
    fn body_shapes() {
        let m = basic();
        let item = |i: usize| json!({"severity": "Warning", "host": format!("h{i}"), "check": "c"});
        let events = apply(&m, Value::Array((0..100).map(item).collect())).unwrap();
        assert_eq!(events.len(), 100);
        assert_eq!(events[0].title, "h0 - c");
        assert_eq!(events[99].title, "h99 - c");
        assert_eq!(
            err(&m, Value::Array((0..101).map(item).collect())),
            "batch has too many items (101 > 100)"
        );
        assert_eq!(err(&m, json!([])), "batch must contain at least one item");
        assert_eq!(
            err(&m, json!([item(0), "text"])),
            "item 1: must be a JSON object"
        );
        for bad in [json!("x"), json!(1), json!(null)] {
            assert_eq!(
                err(&m, bad),
                "request body must be a JSON object or an array of objects"
            );
        }
        // Each item keeps its own source text (ING-054).
        let events = m
            .apply(&json!([item(0), item(1)]), &ctx(&[]), |i, _| {
                format!("raw {i}")
            })
            .unwrap();
        assert_eq!(events[1].raw, "raw 1");
    }

    // spec: ING-046 — expansion form.
    #[test]
    fn labels_expansion() {
        let m = mapping(
            json!({"event_status": "Info", "title": "t", "labels": "{{ tags }}"}),
            json!({"tags.env": {"prd": "production"}}),
        );
        let ev = one(
            &m,
            json!({"tags": {"env": "prd", "n": 3, "ok": false, "nested": {"a": [1]},
                            "list": ["x"], "gone": null, "empty": ""}}),
        );
        let got: Vec<(&str, &str)> = ev
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Value mapping applies to the variable itself ({{tags}}), not to its members.
        assert_eq!(
            got,
            vec![
                ("env", "prd"),
                ("list", r#"["x"]"#),
                ("n", "3"),
                ("nested", r#"{"a":[1]}"#),
                ("ok", "false"),
            ]
        );
        assert_eq!(
            err(&m, json!({"tags": ["a"]})),
            "item 0: labels: variable tags is not an object"
        );
        assert_eq!(
            err(&m, json!({"tags": "a=b"})),
            "item 0: labels: variable tags is not an object"
        );
        assert_eq!(err(&m, json!({})), "item 0: variable tags not found");
    }

    // spec: ING-046 — per-label form, values are templates.
    #[test]
    fn labels_per_label() {
        let m = mapping(
            json!({"event_status": "Info", "title_rule": "$env on $host",
                   "labels": {"env": "{{tags.env}}", "host": "{{hostname}}", "port": "{{p}}",
                              "where": "{{tags.env}}/{{hostname}}"}}),
            json!({"tags.env": {"prd": "production"}}),
        );
        let ev = one(
            &m,
            json!({"tags": {"env": "prd"}, "hostname": "db1", "p": 5432}),
        );
        assert_eq!(ev.labels["env"], "production");
        assert_eq!(ev.labels["host"], "db1");
        assert_eq!(ev.labels["port"], "5432");
        assert_eq!(ev.labels["where"], "production/db1");
        // The legacy title rule sees the mapped labels (ING-023).
        assert_eq!(ev.title, "production on db1");
    }

    // spec: ING-047 — validation after mapping, with the item prefix; ING-030 does not apply.
    #[test]
    fn validation_after_mapping() {
        let m = mapping(
            json!({"event_status": "{{s}}", "title": "{{t}}", "alert_key": "{{k}}",
                   "labels": "{{l}}"}),
            json!({}),
        );
        let ok = json!({"s": "Critical", "t": "x", "k": "a", "l": {}});
        assert_eq!(
            err(
                &m,
                json!([ok.clone(), {"s": "critical", "t": "x", "k": "a", "l": {}}])
            ),
            "item 1: event_status is invalid"
        );
        assert_eq!(
            err(&m, json!({"s": "Critical", "t": " ", "k": "a", "l": {}})),
            "item 0: title_rule is required"
        );
        assert_eq!(
            err(
                &m,
                json!({"s": "Critical", "t": "x", "k": "k".repeat(256), "l": {}})
            ),
            "item 0: alert_key is too long"
        );
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            err(&m, json!({"s": "Critical", "t": "x", "k": "a", "l": many})),
            "item 0: labels: too many labels (51 > 50)"
        );
        // A recovery with a key is fine; an array body is fine (no ING-030).
        let evs = apply(&m, json!([ok, {"s": "Ok", "t": "", "k": "a", "l": {}}])).unwrap();
        assert_eq!(evs[1].event_status, Status::Ok);
        // Query labels (ING-012) are merged under the mapped ones.
        let q = vec![("team".to_string(), "db".to_string())];
        let ev = m
            .apply(
                &json!({"s": "Info", "t": "x", "k": "a", "l": {"host": "h"}}),
                &ctx(&q),
                |_, i| i.to_string(),
            )
            .unwrap();
        assert_eq!(ev[0].labels["team"], "db");
        assert_eq!(ev[0].labels["host"], "h");
    }

    // spec: ING-026 — a generated key is the same as for the equivalent standard payload.
    #[test]
    fn generated_key_matches_standard_payload() {
        let m = mapping(
            json!({"event_status": "{{s}}", "title": "{{t}}", "labels": {"host": "{{h}}"}}),
            json!({}),
        );
        let ev = one(&m, json!({"s": "Critical", "t": "CPU high", "h": "web-1"}));
        let std = parse_standard(
            &json!({"event_status": "Critical", "title": "CPU high",
                    "labels": {"host": "web-1"}}),
            &ctx(&[]),
        )
        .unwrap();
        assert_eq!(ev.alert_key, std.alert_key);
    }

    // spec: ING-042 — save-time refusals name the bad key.
    #[test]
    fn refused_on_save() {
        let base = || json!({"event_status": "{{s}}", "title": "{{t}}"});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        assert!(
            refused(with("severity", json!("x")), json!({}))
                .starts_with("field_mapping.severity is not a mapping target")
        );
        assert_eq!(
            refused(with("title", json!(5)), json!({})),
            "field_mapping.title must be a string"
        );
        assert_eq!(
            refused(with("description", json!("{{a")), json!({})),
            "field_mapping.description: a variable is not closed with }}"
        );
        for bad in ["{{}}", "{{ }}", "{{a..b}}", "{{.a}}", "{{a.}}"] {
            let msg = refused(with("alert_key", json!(bad)), json!({}));
            assert!(
                msg.starts_with("field_mapping.alert_key: variable {{")
                    && msg.ends_with("is not a valid path"),
                "{bad}: {msg}"
            );
        }
        assert_eq!(
            refused(json!([]), json!({})),
            "field_mapping must be an object"
        );
        assert_eq!(
            refused(base(), json!([])),
            "value_mapping must be an object"
        );
    }

    // spec: ING-049 — event_status and one of title / title_rule are required.
    #[test]
    fn required_targets() {
        assert_eq!(
            refused(json!({"title": "t"}), json!({})),
            "field_mapping.event_status is required"
        );
        assert_eq!(
            refused(json!({"title": "t", "event_status": ""}), json!({})),
            "field_mapping.event_status is required"
        );
        assert_eq!(
            refused(
                json!({"event_status": "{{s}}", "description": "d"}),
                json!({})
            ),
            "field_mapping.title or field_mapping.title_rule is required"
        );
        assert!(
            FieldMapping::from_settings(
                Some(&json!({"event_status": "{{s}}", "title_rule": "$host"})),
                None
            )
            .unwrap()
            .is_some()
        );
        // No mapping, or an empty one: the body stays a standard payload (ING-040).
        assert_eq!(FieldMapping::from_settings(None, None).unwrap(), None);
        assert_eq!(
            FieldMapping::from_settings(Some(&json!({})), None).unwrap(),
            None
        );
        assert_eq!(
            FieldMapping::from_settings(Some(&json!({})), Some(&json!({"a": {"b": "c"}})))
                .unwrap_err()
                .message,
            "value_mapping needs a non-empty field_mapping"
        );
    }

    // spec: ING-046 — label forms on save: one variable or an object of templates.
    #[test]
    fn label_forms_on_save() {
        let with = |labels: Value| json!({"event_status": "Info", "title": "t", "labels": labels});
        for bad in [json!("{{a}}-{{b}}"), json!("constant"), json!("x {{a}}")] {
            assert!(
                refused(with(bad.clone()), json!({}))
                    .starts_with("field_mapping.labels must be one variable"),
                "{bad}"
            );
        }
        assert!(
            refused(with(json!(["a"])), json!({}))
                .starts_with("field_mapping.labels must be a string")
        );
        assert_eq!(
            refused(with(json!({"env": 1})), json!({})),
            "field_mapping.labels.env must be a string"
        );
        assert_eq!(
            refused(with(json!({" ": "x"})), json!({})),
            "field_mapping.labels: a label name is empty"
        );
        assert!(
            refused(with(json!({"env": "{{a"})), json!({}))
                .starts_with("field_mapping.labels.env: a variable is not closed")
        );
    }

    // spec: ING-045 — value mapping shape on save.
    #[test]
    fn value_mapping_on_save() {
        let fm = json!({"event_status": "{{s}}", "title": "t"});
        assert_eq!(
            refused(fm.clone(), json!({"s": "Critical"})),
            "value_mapping.s must be an object of source value → target value"
        );
        assert_eq!(
            refused(fm.clone(), json!({"s": {"high": {"x": 1}}})),
            "value_mapping.s.high must be a string, number or boolean"
        );
        assert!(
            refused(fm.clone(), json!({"{{s}}": {"a": "b"}}))
                .starts_with("value_mapping.{{s}}: not a valid path")
        );
        let twice = refused(fm.clone(), json!({"s": {}, " s ": {}}));
        assert!(twice.ends_with("the same path is mapped twice"), "{twice}");
        // Paths are compared after trimming, like variables.
        let m = mapping(fm, json!({" s ": {"high": "Warning"}}));
        assert_eq!(one(&m, json!({"s": "high"})).event_status, Status::Warning);
    }
}
