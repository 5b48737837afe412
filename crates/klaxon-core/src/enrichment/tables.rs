//! Mapping schemas and their rows (ingest.md §2.6, ING-070, ING-071): validation of a schema,
//! and a CSV upload turned into the rows that replace the table.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::csv::{CsvError, parse_csv};
use super::{MAX_KEY_CHARS, MAX_VALUE_CHARS, label_key};
use crate::standard::truncate;

/// §1.3.7 MappingSchema limits.
pub const MAX_SOURCE_KEYS: usize = 5;
pub const MAX_RESULT_KEYS: usize = 20;
/// ING-071: rows per schema.
pub const MAX_ROWS: usize = 100_000;
/// A schema's name and description (the spec names no bounds; these match other objects).
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// A mapping table's definition (§1.3.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingSchema {
    pub schema_id: String,
    pub account_id: i64,
    pub name: String,
    pub description: String,
    pub team_id: i64,
    pub source_label_keys: Vec<String>,
    pub result_label_keys: Vec<String>,
}

/// A refused schema, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn keys(field: &str, keys: &[String], max: usize) -> Result<Vec<String>, SchemaError> {
    if keys.is_empty() || keys.len() > max {
        return Err(SchemaError(format!(
            "{field}: 1–{max} label names, got {}",
            keys.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let Some(key) = label_key(k) else {
            return Err(SchemaError(format!(
                "{field}[{i}]: {k:?} is not a valid label name (1–{MAX_KEY_CHARS} characters, no control characters)"
            )));
        };
        if out.iter().any(|o| o == key) {
            return Err(SchemaError(format!(
                "{field}[{i}]: {key:?} is listed twice"
            )));
        }
        out.push(key.to_string());
    }
    Ok(out)
}

/// Checks a schema (§1.3.7) and returns it with trimmed names and keys.
pub fn validate_schema(mut s: MappingSchema) -> Result<MappingSchema, SchemaError> {
    s.name = s.name.trim().to_string();
    if s.name.is_empty() || s.name.chars().count() > MAX_NAME_CHARS {
        return Err(SchemaError(format!(
            "name: 1–{MAX_NAME_CHARS} characters required"
        )));
    }
    if s.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(SchemaError(format!(
            "description: at most {MAX_DESCRIPTION_CHARS} characters"
        )));
    }
    s.source_label_keys = keys("source_label_keys", &s.source_label_keys, MAX_SOURCE_KEYS)?;
    s.result_label_keys = keys("result_label_keys", &s.result_label_keys, MAX_RESULT_KEYS)?;
    if let Some(k) = s
        .result_label_keys
        .iter()
        .find(|k| s.source_label_keys.contains(k))
    {
        return Err(SchemaError(format!(
            "result_label_keys: {k:?} is also a source label key (they must be disjoint)"
        )));
    }
    Ok(s)
}

/// The stored look-up key of a row: its source values in source key order, as a JSON array
/// (unambiguous whatever the values contain).
pub fn row_key(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

/// Why an upload was refused as a whole (ING-071: nothing is replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadError {
    Csv(CsvError),
    Empty,
    MissingColumns(Vec<String>),
    DuplicateColumn(String),
    TooManyRows(usize),
    TooManyFields {
        line: usize,
        got: usize,
        header: usize,
    },
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadError::Csv(e) => write!(f, "csv: {e}"),
            UploadError::Empty => {
                f.write_str("csv: the file is empty (the first row must be the header)")
            }
            UploadError::MissingColumns(c) => {
                write!(f, "csv: the header lacks the column(s) {}", c.join(", "))
            }
            UploadError::DuplicateColumn(c) => write!(f, "csv: the header names {c:?} twice"),
            UploadError::TooManyRows(_) => write!(
                f,
                "csv: more than {MAX_ROWS} rows; a mapping table holds at most {MAX_ROWS} rows, nothing was replaced"
            ),
            UploadError::TooManyFields { line, got, header } => write!(
                f,
                "csv: line {line} has {got} fields, the header has {header}"
            ),
        }
    }
}

/// The rows an upload leaves in the table, in file order of their last occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableUpload {
    /// `(source values, result values)` in the schema's key orders.
    pub rows: Vec<(Vec<String>, Vec<String>)>,
    /// Rows skipped because a source cell was empty.
    pub skipped: usize,
}

impl TableUpload {
    /// ING-071: the header must name every source and result key (other columns are ignored);
    /// rows whose source values contain an empty cell are skipped; of rows with the same source
    /// values the last wins; more than [`MAX_ROWS`] rows refuse the upload.
    pub fn parse(schema: &MappingSchema, text: &str) -> Result<TableUpload, UploadError> {
        let records = parse_csv(text).map_err(UploadError::Csv)?;
        let mut records = records.into_iter();
        let Some((_, header)) = records.next() else {
            return Err(UploadError::Empty);
        };
        let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        let mut seen = HashSet::new();
        for h in &header {
            if !h.is_empty() && !seen.insert(h.as_str()) {
                return Err(UploadError::DuplicateColumn(h.clone()));
            }
        }
        let column = |key: &String| header.iter().position(|h| h == key);
        let missing: Vec<String> = schema
            .source_label_keys
            .iter()
            .chain(&schema.result_label_keys)
            .filter(|k| column(k).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(UploadError::MissingColumns(missing));
        }
        let src: Vec<usize> = schema.source_label_keys.iter().filter_map(column).collect();
        let res: Vec<usize> = schema.result_label_keys.iter().filter_map(column).collect();
        let mut by_key: BTreeMap<Vec<String>, (usize, Vec<String>)> = BTreeMap::new();
        let mut skipped = 0;
        for (order, (line, record)) in records.enumerate() {
            if record.len() > header.len() {
                return Err(UploadError::TooManyFields {
                    line,
                    got: record.len(),
                    header: header.len(),
                });
            }
            let cell = |i: &usize| {
                truncate(
                    record.get(*i).map(|c| c.trim()).unwrap_or(""),
                    MAX_VALUE_CHARS,
                )
            };
            let source: Vec<String> = src.iter().map(cell).collect();
            if source.iter().any(String::is_empty) {
                skipped += 1;
                continue;
            }
            let result: Vec<String> = res.iter().map(cell).collect();
            by_key.insert(source, (order, result));
            if by_key.len() > MAX_ROWS {
                return Err(UploadError::TooManyRows(by_key.len()));
            }
        }
        let mut rows: Vec<(usize, Vec<String>, Vec<String>)> = by_key
            .into_iter()
            .map(|(s, (order, r))| (order, s, r))
            .collect();
        rows.sort_by_key(|r| r.0);
        Ok(TableUpload {
            rows: rows.into_iter().map(|(_, s, r)| (s, r)).collect(),
            skipped,
        })
    }
}
