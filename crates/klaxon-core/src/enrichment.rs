//! Label enrichment (ingest.md §2.5, §2.6): integration-level rules that add, derive or delete
//! labels before the pipeline and routing see the event (stage 4 of §1.4).
//!
//! Three steps, like the condition language:
//! 1. the wire/stored form is a list of [`EnrichmentRule`]s;
//! 2. [`RuleSet::compile`] validates the list (ING-061…065, §4.5) and compiles every regex,
//!    filter and template once — the error names the rule and field;
//! 3. [`RuleSet::apply`] runs the compiled rules top to bottom on one event.
//!
//! Mapping-table look-ups go through the [`Tables`] trait so the core never reads the store: the
//! caller answers from rows it loaded for the whole batch, and may answer [`Lookup::NotLoaded`]
//! for a key it has not read yet; the key is then reported in [`Report::wanted`] so the caller
//! can load every missing key of the batch with one query and run the event again.
//!
//! Mapping services (map rules with `source = api`, ING-072…075) work the same way: the caller
//! answers each request from the answers it holds ([`Tables::api_answer`]); a request it has
//! not made yet is reported in [`Report::calls`], so the calls of a whole batch are made
//! outside the batch's transaction and the batch runs again with their answers.

pub mod api;
mod csv;
mod tables;
#[cfg(test)]
mod tests;

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::condition::{Context, Filter, FilterGroups};
use crate::model::QueuedEvent;
use crate::routing::EventFields;
use crate::standard::{TemplateFields, render_template, truncate};

pub use api::{
    ApiAnswer, ApiCall, ApiKey, ApiLookup, CheckedService, MappingService, ServiceError,
    validate_service,
};
pub use csv::{CsvError, parse_csv, write_csv};
pub use tables::{
    MAX_RESULT_KEYS, MAX_ROWS, MAX_SOURCE_KEYS, MappingSchema, SchemaError, TableUpload,
    UploadError, row_key, validate_schema,
};

/// ING-065: enrichment never takes an event beyond this many labels.
pub const MAX_LABELS: usize = 100;
/// ING-065 / ING-052: produced keys and values.
pub const MAX_KEY_CHARS: usize = 128;
pub const MAX_VALUE_CHARS: usize = 2048;
/// ING-062: a compose template.
pub const MAX_TEMPLATE_CHARS: usize = 1024;
/// ING-064: names one delete rule lists.
pub const MAX_DELETE_NAMES: usize = 50;
/// ING-063: result keys of an `api` map rule.
pub const MAX_API_RESULT_KEYS: usize = 20;
/// Rules of one integration. The spec sets no bound; this one keeps the per-event work and the
/// stored row small, and is far above what the console shows comfortably.
pub const MAX_RULES: usize = 100;
/// An extract pattern, in characters (the same bound as a condition value, §4.1).
pub const MAX_PATTERN_CHARS: usize = 1024;
/// Compiled size bound for a pattern, so a hostile regex cannot take the processor's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `type` of a rule (§1.3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    Extract,
    Compose,
    Map,
    Delete,
}

impl RuleType {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleType::Extract => "extract",
            RuleType::Compose => "compose",
            RuleType::Map => "map",
            RuleType::Delete => "delete",
        }
    }
}

fn default_true() -> bool {
    true
}

/// One enrichment rule (§1.3.7 EnrichmentRule). A flat record: the fields of the other types
/// are empty. `source` is the extract source (`title`, `description`, `labels.<name>`) or the
/// map source (`table`, `api`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrichmentRule {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: RuleType,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Null or empty = always (ING-060).
    #[serde(default)]
    pub condition: Option<FilterGroups>,
    #[serde(default)]
    pub r#override: bool,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub pattern: String,
    #[serde(default)]
    pub result_label: String,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub schema_id: String,
    #[serde(default)]
    pub service_id: String,
    #[serde(default)]
    pub result_label_keys: Vec<String>,
    #[serde(default)]
    pub label_names: Vec<String>,
}

impl EnrichmentRule {
    /// A rule of `kind` with every type field empty, enabled, no condition, no override.
    pub fn new(kind: RuleType) -> EnrichmentRule {
        EnrichmentRule {
            id: String::new(),
            kind,
            enabled: true,
            condition: None,
            r#override: false,
            source: String::new(),
            pattern: String::new(),
            result_label: String::new(),
            template: String::new(),
            schema_id: String::new(),
            service_id: String::new(),
            result_label_keys: Vec::new(),
            label_names: Vec::new(),
        }
    }
}

/// A refused rule list: `rules[2].pattern: invalid regular expression: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}

impl From<RuleError> for crate::error::ApiError {
    fn from(e: RuleError) -> Self {
        crate::error::ApiError::invalid(e.message)
    }
}

fn refuse(index: usize, field: &str, msg: impl fmt::Display) -> RuleError {
    RuleError {
        message: format!("rules[{index}].{field}: {msg}"),
    }
}

/// ING-052 key rules for a produced or configured key: 1–128 characters after trimming, no
/// control characters. Returns the trimmed key.
pub fn label_key(key: &str) -> Option<&str> {
    let key = key.trim();
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS || key.chars().any(char::is_control) {
        return None;
    }
    Some(key)
}

fn check_key(index: usize, field: &str, key: &str) -> Result<String, RuleError> {
    label_key(key).map(str::to_string).ok_or_else(|| {
        refuse(
            index,
            field,
            format!(
                "{key:?} is not a valid label name (1–{MAX_KEY_CHARS} characters, no control characters)"
            ),
        )
    })
}

/// ING-061: a surrounding `/…/` is accepted and stripped.
fn strip_slashes(pattern: &str) -> &str {
    if pattern.len() >= 2 && pattern.starts_with('/') && pattern.ends_with('/') {
        &pattern[1..pattern.len() - 1]
    } else {
        pattern
    }
}

#[derive(Debug, Clone)]
enum Source {
    Title,
    Description,
    Label(String),
}

#[derive(Debug, Clone)]
enum Action {
    Extract {
        source: Source,
        regex: Regex,
        /// Named groups, in pattern order.
        named: Vec<String>,
        /// Empty: not set (allowed only with named groups).
        result_label: String,
    },
    Compose {
        result_label: String,
        template: String,
    },
    Table {
        schema_id: String,
    },
    Api {
        service_id: String,
        result_label_keys: Vec<String>,
    },
    Delete {
        names: Vec<String>,
    },
}

#[derive(Debug, Clone)]
struct Compiled {
    enabled: bool,
    filter: Filter,
    overwrite: bool,
    action: Action,
}

/// A validated, compiled rule list of one integration.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Compiled>,
}

/// What a mapping-table look-up found (ING-070).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The schema does not exist (deleted after the rule was saved).
    NoSchema,
    /// The caller has not read this key yet: report it and produce nothing this time.
    NotLoaded,
    /// No row has these source values.
    NoRow,
    /// The matching row's result values, in the schema's result key order.
    Row(&'a [String]),
}

/// Mapping tables as the caller holds them.
pub trait Tables {
    /// The schema's source and result keys, or None when it does not exist.
    fn schema(&self, schema_id: &str) -> Option<&MappingSchema>;
    /// The row of `schema_id` whose source values are `values` (in source key order).
    fn lookup(&self, schema_id: &str, values: &[String]) -> Lookup<'_>;
    /// The mapping service `service_id`, or None when it does not exist (deleted after the
    /// rule was saved).
    fn service(&self, _service_id: &str) -> Option<&MappingService> {
        None
    }
    /// The answer to one mapping-service request, if the caller has made it.
    fn api_answer(&self, _key: &ApiKey) -> ApiLookup<'_> {
        ApiLookup::NotLoaded
    }
    /// ING-072: the id of the active alert with the event's identity in its dedicated
    /// integration's channel, when the caller knows one; "" otherwise.
    fn alert_id(&self, _q: &QueuedEvent) -> &str {
        ""
    }
}

/// No tables at all (integrations without map rules).
pub struct NoTables;

impl Tables for NoTables {
    fn schema(&self, _: &str) -> Option<&MappingSchema> {
        None
    }
    fn lookup(&self, _: &str, _: &[String]) -> Lookup<'_> {
        Lookup::NoSchema
    }
}

/// What enrichment did to one event, for its outcome (ING-262 detail flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// ING-065: a label was not added because the event had 100.
    pub labels_truncated: bool,
    /// ING-062 / ING-073: a rule failed (template error, missing schema).
    pub enrich_error: bool,
    /// Table keys the caller answered `NotLoaded` for: `(schema_id, source values)`.
    pub wanted: Vec<(String, Vec<String>)>,
    /// Mapping-service requests the caller answered `NotLoaded` for (ING-072).
    pub calls: Vec<ApiCall>,
}

impl RuleSet {
    /// Validates and compiles `rules` (ING-061…065, §4.5). Every refusal names the rule and
    /// the field. `schema_exists` says whether a table map rule's `schema_id` names a schema of
    /// the account (checked on save; a schema deleted later makes the rule a no-op with
    /// `enrich_error`).
    pub fn compile(
        rules: &[EnrichmentRule],
        schema_exists: impl Fn(&str) -> bool,
    ) -> Result<RuleSet, RuleError> {
        Self::compile_with(rules, schema_exists, |_| false)
    }

    /// [`RuleSet::compile`], with `service_exists` saying whether an api map rule's
    /// `service_id` names a mapping service of the account (ING-063).
    pub fn compile_with(
        rules: &[EnrichmentRule],
        schema_exists: impl Fn(&str) -> bool,
        service_exists: impl Fn(&str) -> bool,
    ) -> Result<RuleSet, RuleError> {
        if rules.len() > MAX_RULES {
            return Err(RuleError {
                message: format!("rules: at most {MAX_RULES} rules, got {}", rules.len()),
            });
        }
        let mut out = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            out.push(compile_one(i, r, &schema_exists, &service_exists)?);
        }
        Ok(RuleSet { rules: out })
    }

    /// Compiles stored rules for processing: a rule that no longer compiles (a stored list is
    /// validated on save, so only a code change can cause this) is skipped and reported.
    pub fn compile_skipping(rules: &[EnrichmentRule]) -> (RuleSet, Vec<RuleError>) {
        let mut out = Vec::with_capacity(rules.len());
        let mut broken = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match compile_one(i, r, &|_: &str| true, &|_: &str| true) {
                Ok(c) => out.push(c),
                Err(e) => broken.push(e),
            }
        }
        (RuleSet { rules: out }, broken)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The schemas the enabled table map rules read.
    pub fn schema_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.enabled)
            .filter_map(|r| match &r.action {
                Action::Table { schema_id } => Some(schema_id.clone()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The mapping services the enabled api map rules call.
    pub fn service_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.enabled)
            .filter_map(|r| match &r.action {
                Action::Api { service_id, .. } => Some(service_id.clone()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Runs the rules top to bottom on `q` (ING-060): each rule sees the labels the previous
    /// ones left; disabled rules are skipped; a rule whose condition does not match, or which
    /// produces nothing, changes nothing.
    pub fn apply(&self, q: &mut QueuedEvent, tables: &dyn Tables) -> Report {
        let mut report = Report::default();
        for rule in &self.rules {
            if !rule.enabled {
                continue;
            }
            if !rule.filter.is_empty() && !rule.filter.matches(&EventFields::of_queued(q)) {
                continue;
            }
            let produced = match &rule.action {
                Action::Delete { names } => {
                    // ING-064: absent names are ignored; `override` means nothing here.
                    for name in names {
                        q.event.labels.remove(name);
                    }
                    continue;
                }
                Action::Extract {
                    source,
                    regex,
                    named,
                    result_label,
                } => extract(q, source, regex, named, result_label),
                Action::Compose {
                    result_label,
                    template,
                } => match compose(q, template) {
                    Ok(Some(value)) => vec![(result_label.clone(), value)],
                    Ok(None) => Vec::new(),
                    Err(()) => {
                        // ING-062: a template error sets nothing and is recorded.
                        report.enrich_error = true;
                        Vec::new()
                    }
                },
                Action::Table { schema_id } => table(q, schema_id, tables, &mut report),
                Action::Api {
                    service_id,
                    result_label_keys,
                } => call(q, service_id, result_label_keys, tables, &mut report),
            };
            for (key, value) in produced {
                put(q, &key, &value, rule.overwrite, &mut report);
            }
        }
        report
    }
}

fn compile_one(
    i: usize,
    r: &EnrichmentRule,
    schema_exists: &dyn Fn(&str) -> bool,
    service_exists: &dyn Fn(&str) -> bool,
) -> Result<Compiled, RuleError> {
    let groups = r.condition.clone().unwrap_or_default();
    let filter = Filter::compile(&groups, Context::Enrichment).map_err(|e| RuleError {
        message: e.in_field(format!("rules[{i}].condition")).to_string(),
    })?;
    let action = match r.kind {
        RuleType::Extract => {
            let source = match r.source.as_str() {
                "title" => Source::Title,
                "description" => Source::Description,
                s => match s.strip_prefix("labels.") {
                    Some(name) if label_key(name).is_some() => Source::Label(name.to_string()),
                    _ => {
                        return Err(refuse(
                            i,
                            "source",
                            format!(
                                "{s:?} is not a valid extract source (title, description or labels.<name>)"
                            ),
                        ));
                    }
                },
            };
            let pattern = strip_slashes(&r.pattern);
            if pattern.is_empty() {
                return Err(refuse(i, "pattern", "a pattern is required"));
            }
            if pattern.chars().count() > MAX_PATTERN_CHARS {
                return Err(refuse(
                    i,
                    "pattern",
                    format!("at most {MAX_PATTERN_CHARS} characters"),
                ));
            }
            let regex = regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    refuse(
                        i,
                        "pattern",
                        format!("invalid regular expression (RE2 syntax): {e}"),
                    )
                })?;
            let mut named = Vec::new();
            for name in regex.capture_names().flatten() {
                named.push(check_key(i, "pattern", name)?);
            }
            let result_label = if r.result_label.trim().is_empty() {
                if named.is_empty() {
                    return Err(refuse(
                        i,
                        "result_label",
                        "required when the pattern has no named capture groups",
                    ));
                }
                String::new()
            } else {
                check_key(i, "result_label", &r.result_label)?
            };
            Action::Extract {
                source,
                regex,
                named,
                result_label,
            }
        }
        RuleType::Compose => {
            if r.result_label.trim().is_empty() {
                return Err(refuse(i, "result_label", "a result label is required"));
            }
            let result_label = check_key(i, "result_label", &r.result_label)?;
            if r.template.trim().is_empty() {
                return Err(refuse(i, "template", "a template is required"));
            }
            if r.template.chars().count() > MAX_TEMPLATE_CHARS {
                return Err(refuse(
                    i,
                    "template",
                    format!("at most {MAX_TEMPLATE_CHARS} characters"),
                ));
            }
            // Parse errors show on save: render once against an empty sample event.
            let labels = crate::model::Labels::new();
            let sample = TemplateFields {
                title: "",
                description: "",
                event_severity: "Critical",
                event_status: "Critical",
                alert_key: "",
                labels: &labels,
            };
            if render_template(&r.template, &sample).is_err() {
                return Err(refuse(
                    i,
                    "template",
                    "the template does not parse (Go text/template subset of ingest.md §2.5.1)",
                ));
            }
            Action::Compose {
                result_label,
                template: r.template.clone(),
            }
        }
        RuleType::Map => match r.source.as_str() {
            "table" => {
                let id = r.schema_id.trim();
                if id.is_empty() {
                    return Err(refuse(i, "schema_id", "required for a table map rule"));
                }
                if !schema_exists(id) {
                    return Err(refuse(
                        i,
                        "schema_id",
                        format!("mapping schema {id} not found"),
                    ));
                }
                Action::Table {
                    schema_id: id.to_string(),
                }
            }
            "api" => {
                let id = r.service_id.trim();
                if id.is_empty() {
                    return Err(refuse(i, "service_id", "required for an api map rule"));
                }
                if !service_exists(id) {
                    return Err(refuse(
                        i,
                        "service_id",
                        format!("mapping service {id} not found"),
                    ));
                }
                let n = r.result_label_keys.len();
                if n == 0 || n > MAX_API_RESULT_KEYS {
                    return Err(refuse(
                        i,
                        "result_label_keys",
                        format!("1–{MAX_API_RESULT_KEYS} label names, got {n}"),
                    ));
                }
                let mut keys: Vec<String> = Vec::with_capacity(n);
                for (j, k) in r.result_label_keys.iter().enumerate() {
                    let field = format!("result_label_keys[{j}]");
                    let key = check_key(i, &field, k)?;
                    if keys.contains(&key) {
                        return Err(refuse(i, &field, format!("{key:?} is listed twice")));
                    }
                    keys.push(key);
                }
                Action::Api {
                    service_id: id.to_string(),
                    result_label_keys: keys,
                }
            }
            s => {
                return Err(refuse(
                    i,
                    "source",
                    format!("{s:?} is not a valid map source (table or api)"),
                ));
            }
        },
        RuleType::Delete => {
            if r.label_names.is_empty() || r.label_names.len() > MAX_DELETE_NAMES {
                return Err(refuse(
                    i,
                    "label_names",
                    format!(
                        "1–{MAX_DELETE_NAMES} label names, got {}",
                        r.label_names.len()
                    ),
                ));
            }
            let mut names = Vec::with_capacity(r.label_names.len());
            for (j, n) in r.label_names.iter().enumerate() {
                names.push(check_key(i, &format!("label_names[{j}]"), n)?);
            }
            Action::Delete { names }
        }
    };
    Ok(Compiled {
        enabled: r.enabled,
        filter,
        overwrite: r.r#override,
        action,
    })
}

/// ING-061.
fn extract(
    q: &QueuedEvent,
    source: &Source,
    regex: &Regex,
    named: &[String],
    result_label: &str,
) -> Vec<(String, String)> {
    let text = match source {
        Source::Title => q.event.title.as_str(),
        Source::Description => q.event.description.as_str(),
        Source::Label(name) => match q.event.labels.get(name) {
            Some(v) => v.as_str(),
            None => return Vec::new(), // a missing source label is "no match"
        },
    };
    let Some(caps) = regex.captures(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !named.is_empty() {
        for name in named {
            if let Some(m) = caps.name(name)
                && !m.as_str().is_empty()
            {
                out.push((name.clone(), m.as_str().to_string()));
            }
        }
        if !result_label.is_empty()
            && let Some(m) = caps.get(1)
        {
            out.push((result_label.to_string(), m.as_str().to_string()));
        }
    } else {
        let m = caps.get(1).or_else(|| caps.get(0));
        if let Some(m) = m {
            out.push((result_label.to_string(), m.as_str().to_string()));
        }
    }
    out
}

/// ING-062: Ok(None) for an empty result, Err for a template error.
fn compose(q: &QueuedEvent, template: &str) -> Result<Option<String>, ()> {
    let severity = q
        .event
        .event_status
        .severity()
        .or(q.event.event_severity)
        .map(|s| s.as_str())
        .unwrap_or("");
    let fields = TemplateFields {
        title: &q.event.title,
        description: &q.event.description,
        event_severity: severity,
        event_status: q.event.event_status.as_str(),
        alert_key: &q.event.alert_key,
        labels: &q.event.labels,
    };
    let rendered = render_template(template, &fields).map_err(|_| ())?;
    let value = rendered.trim();
    Ok((!value.is_empty()).then(|| value.to_string()))
}

/// ING-070.
fn table(
    q: &QueuedEvent,
    schema_id: &str,
    tables: &dyn Tables,
    report: &mut Report,
) -> Vec<(String, String)> {
    let Some(schema) = tables.schema(schema_id) else {
        report.enrich_error = true;
        return Vec::new();
    };
    let mut values = Vec::with_capacity(schema.source_label_keys.len());
    for key in &schema.source_label_keys {
        match q.event.labels.get(key) {
            Some(v) if !v.is_empty() => values.push(v.clone()),
            _ => return Vec::new(),
        }
    }
    match tables.lookup(schema_id, &values) {
        Lookup::Row(results) => schema
            .result_label_keys
            .iter()
            .zip(results)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Lookup::NotLoaded => {
            report.wanted.push((schema_id.to_string(), values));
            Vec::new()
        }
        Lookup::NoRow => Vec::new(),
        Lookup::NoSchema => {
            report.enrich_error = true;
            Vec::new()
        }
    }
}

/// ING-072…075: the labels a mapping service's answer produces, or the call to make.
fn call(
    q: &QueuedEvent,
    service_id: &str,
    keys: &[String],
    tables: &dyn Tables,
    report: &mut Report,
) -> Vec<(String, String)> {
    let Some(service) = tables.service(service_id) else {
        // Deleted after the rule was saved (deletion of a service in use is refused).
        report.enrich_error = true;
        return Vec::new();
    };
    if !service.enabled {
        return Vec::new();
    }
    // ING-075: a rendering error counts as a call failure.
    let Ok(url) = api::render_url(&service.url, q) else {
        report.enrich_error = true;
        return Vec::new();
    };
    let body = api::request_body(keys, q, tables.alert_id(q)).to_string();
    let key = ApiKey {
        service_id: service_id.to_string(),
        url,
        body,
    };
    match tables.api_answer(&key) {
        ApiLookup::NotLoaded => {
            report.calls.push(ApiCall {
                service: service.clone(),
                url: key.url,
                body: key.body,
            });
            Vec::new()
        }
        ApiLookup::Answer(ApiAnswer::Labels(labels)) => api::produced(labels, keys),
        ApiLookup::Answer(ApiAnswer::NoResult) => Vec::new(),
        ApiLookup::Answer(ApiAnswer::Failed(_)) => {
            report.enrich_error = true;
            Vec::new()
        }
    }
}

/// ING-065: write one produced label under the override flag, key rules, value truncation and
/// the 100-label cap.
fn put(q: &mut QueuedEvent, key: &str, value: &str, overwrite: bool, report: &mut Report) {
    let Some(key) = label_key(key) else {
        return;
    };
    if value.is_empty() {
        return;
    }
    let value = truncate(value, MAX_VALUE_CHARS);
    let labels = &mut q.event.labels;
    match labels.get_mut(key) {
        Some(old) => {
            if overwrite {
                *old = value;
            }
        }
        None => {
            if labels.len() >= MAX_LABELS {
                report.labels_truncated = true;
            } else {
                labels.insert(key.to_string(), value);
            }
        }
    }
}
