//! The CSV of mapping-table upload and download (ING-071): RFC 4180 fields (quoted fields may
//! hold commas, quotes as `""` and line breaks), CRLF or LF line ends, UTF-8 with an optional
//! byte-order mark. Small and strict enough that a broken file is refused with its line number
//! rather than half-read.

use std::fmt;

/// A file that is not CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line where the problem starts.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The records of `text`, each with the line it starts on. Blank lines are skipped.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut start_line = 1usize;
    let mut chars = text.chars().peekable();
    // Whether the current record has any content (a lone line break is a blank line).
    let mut started = false;
    loop {
        let Some(c) = chars.next() else {
            if started {
                record.push(std::mem::take(&mut field));
                records.push((start_line, std::mem::take(&mut record)));
            }
            break;
        };
        match c {
            '"' if field.is_empty() => {
                started = true;
                let quote_line = line;
                loop {
                    match chars.next() {
                        None => {
                            return Err(CsvError {
                                line: quote_line,
                                message: "a quoted field is not closed".into(),
                            });
                        }
                        Some('"') => {
                            if chars.peek() == Some(&'"') {
                                chars.next();
                                field.push('"');
                            } else {
                                break;
                            }
                        }
                        Some(ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            field.push(ch);
                        }
                    }
                }
                match chars.peek() {
                    None | Some(',') | Some('\r') | Some('\n') => {}
                    Some(_) => {
                        return Err(CsvError {
                            line,
                            message: "text after a closing quote (write a quote inside a quoted field as \"\")".into(),
                        });
                    }
                }
            }
            ',' => {
                started = true;
                record.push(std::mem::take(&mut field));
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                if started {
                    record.push(std::mem::take(&mut field));
                    records.push((start_line, std::mem::take(&mut record)));
                }
                started = false;
                line += 1;
                start_line = line;
            }
            ch => {
                if !started {
                    start_line = line;
                }
                started = true;
                field.push(ch);
            }
        }
    }
    Ok(records)
}

fn write_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ') {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Writes records as CSV with CRLF line ends (what spreadsheet programs expect).
pub fn write_csv<'a>(records: impl IntoIterator<Item = &'a [String]>) -> String {
    let mut out = String::new();
    for record in records {
        for (i, field) in record.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_field(&mut out, field);
        }
        out.push_str("\r\n");
    }
    out
}
