//! CSV exports of insights (response.md RSP-483): the incident list (without labels) and the
//! team, channel and responder rows, with the columns the caller picks. Pure: rows arrive as
//! the JSON objects the endpoints list, and leave as RFC 4180 text (the writer of mapping
//! tables, `crate::enrichment::write_csv`).

use serde_json::Value;

use crate::enrichment::write_csv;

/// RSP-483: one export holds at most this many rows.
pub const MAX_ROWS: usize = 100_000;
/// `export_fields` names at most this many columns.
pub const MAX_FIELDS: usize = 50;

/// Why an export is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooManyFields,
    UnknownField(String),
    TooManyRows(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooManyFields => {
                write!(f, "export_fields names at most {MAX_FIELDS} fields")
            }
            Refusal::UnknownField(name) => write!(
                f,
                "export_fields has an unknown field: {name:?} (not a column of this export)"
            ),
            Refusal::TooManyRows(n) => write!(
                f,
                "the export would hold {n} rows, more than {MAX_ROWS}; choose a shorter range"
            ),
        }
    }
}

/// The columns of an export: the fields asked for, in their order and without repeats, or
/// every known one when none is.
pub fn columns(asked: &[String], known: &[&str]) -> Result<Vec<String>, Refusal> {
    if asked.len() > MAX_FIELDS {
        return Err(Refusal::TooManyFields);
    }
    if asked.is_empty() {
        return Ok(known.iter().map(|k| (*k).to_string()).collect());
    }
    let mut out: Vec<String> = Vec::new();
    for name in asked {
        let name = name.trim();
        if !known.contains(&name) {
            return Err(Refusal::UnknownField(name.to_string()));
        }
        if !out.iter().any(|c| c == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

/// RSP-483: refuses a result of more than [`MAX_ROWS`] rows.
pub fn check_rows(n: usize) -> Result<(), Refusal> {
    if n > MAX_ROWS {
        return Err(Refusal::TooManyRows(n));
    }
    Ok(())
}

/// One cell: text as it is, numbers and booleans as JSON writes them, nothing for null, and
/// lists or objects as JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => guard(s),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => other.to_string(),
    }
}

/// Text that a spreadsheet would run as a formula (incident titles come from alerts, which
/// anyone with an integration key can send) gets a leading apostrophe, so it stays text.
fn guard(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The CSV of `rows` (JSON objects) under a header line of `columns`.
pub fn csv(columns: &[String], rows: &[Value]) -> String {
    let mut records: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    records.push(columns.to_vec());
    for row in rows {
        records.push(columns.iter().map(|c| cell(row.get(c))).collect());
    }
    write_csv(records.iter().map(Vec::as_slice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrichment::parse_csv;
    use serde_json::json;

    const KNOWN: &[&str] = &["incident_id", "title", "seconds_to_ack", "responders"];

    #[test]
    fn columns_are_checked_and_default_to_all() {
        // spec: RSP-483
        assert_eq!(columns(&[], KNOWN).unwrap().len(), 4);
        let asked = vec!["title".to_string(), "incident_id".into(), "title".into()];
        assert_eq!(
            columns(&asked, KNOWN).unwrap(),
            vec!["title", "incident_id"]
        );
        assert_eq!(
            columns(&["labels".to_string()], KNOWN),
            Err(Refusal::UnknownField("labels".into()))
        );
        let many: Vec<String> = (0..51).map(|_| "title".to_string()).collect();
        assert_eq!(columns(&many, KNOWN), Err(Refusal::TooManyFields));
        assert!(
            Refusal::UnknownField("labels".into())
                .to_string()
                .contains("\"labels\"")
        );
    }

    #[test]
    fn at_most_100000_rows() {
        // spec: RSP-483
        assert_eq!(check_rows(MAX_ROWS), Ok(()));
        let refused = check_rows(MAX_ROWS + 1).unwrap_err();
        assert!(refused.to_string().contains("shorter range"), "{refused}");
    }

    #[test]
    fn cells_are_quoted_and_read_back() {
        // spec: RSP-483
        let cols = columns(&[], KNOWN).unwrap();
        let rows = [
            json!({"incident_id": "a1", "title": "db, \"primary\"\ndown", "seconds_to_ack": 240,
                   "responders": [{"person_id": 1}]}),
            json!({"incident_id": "a2", "title": "=HYPERLINK(\"x\")", "seconds_to_ack": null}),
        ];
        let text = csv(&cols, &rows);
        let back: Vec<Vec<String>> = parse_csv(&text).unwrap().into_iter().map(|r| r.1).collect();
        assert_eq!(back[0], cols);
        assert_eq!(
            back[1],
            vec!["a1", "db, \"primary\"\ndown", "240", r#"[{"person_id":1}]"#]
        );
        // A formula stays text; a missing or null value is an empty cell.
        assert_eq!(back[2], vec!["a2", "'=HYPERLINK(\"x\")", "", ""]);
    }
}
