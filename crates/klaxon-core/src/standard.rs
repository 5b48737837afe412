//! The standard alert event protocol (ingest.md §2.2, §2.4, ING-012): a push body → validated
//! [`NewEvent`]s. Pure: the receive time and the integration come in as arguments.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::model::{Image, Labels, Millis, NewEvent, Severity, Status};

/// ING-024 / §1.3.3 limits, in characters (Unicode scalar values).
const TITLE_MAX: usize = 512;
const DESCRIPTION_MAX: usize = 2048;
const ALERT_KEY_MAX: usize = 255;
const LABEL_KEY_MAX: usize = 128;
const LABEL_VALUE_MAX: usize = 2048;
const LABELS_MAX: usize = 50;
const IMAGE_ALT_MAX: usize = 128;
const IMAGE_SRC_MAX: usize = 256;
const IMAGE_HREF_MAX: usize = 256;
const IMAGE_KEY_MAX: usize = 128;
const IMAGES_MAX: usize = 20;
/// ING-029: an `event_time` above this is milliseconds; one further ahead than the tolerance
/// is replaced by the receive time.
const EVENT_TIME_MS_ABOVE: i64 = 1_000_000_000_000;
const EVENT_TIME_FUTURE_MS: Millis = 300_000;
/// What a missing label or unknown field renders as (ING-023, §2.5.1).
const NO_VALUE: &str = "<no value>";
/// Bound, in bytes, on any string a title rendering builds. A title keeps 512 characters, so
/// this only stops hostile rules (`$a$a$a…`, chained `replace`) from exhausting memory.
const RENDER_CAP: usize = 64 * 1024;

/// What the adapter needs to know about the push besides its body.
#[derive(Debug, Clone)]
pub struct PushContext<'a> {
    pub integration_id: i64,
    /// Query parameters other than `integration_key`, in order (ING-012: last value wins).
    pub query_labels: &'a [(String, String)],
    /// Platform receive time.
    pub received_at: Millis,
}

/// Parses and validates one standard push body (ING-020…031, ING-012, ING-050).
/// Returns exactly one event (field mapping and batches are issue 4's §2.3).
pub fn parse_standard(body: &Value, ctx: &PushContext<'_>) -> Result<NewEvent, ApiError> {
    let obj = match body {
        Value::Object(obj) => obj,
        Value::Array(_) => return Err(ApiError::invalid("batch push requires field mapping")),
        _ => return Err(ApiError::invalid("request body must be a JSON object")),
    };

    let status = obj
        .get("event_status")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Status>().ok())
        .ok_or_else(|| ApiError::invalid("event_status is invalid"))?;
    let title_rule = opt_str(obj, "title_rule")?.unwrap_or("");
    let literal_title = opt_str(obj, "title")?;
    let description = truncate(opt_str(obj, "description")?.unwrap_or(""), DESCRIPTION_MAX);

    let alert_key = match obj.get("alert_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.is_empty() => None,
        Some(Value::String(k)) if k.chars().count() > ALERT_KEY_MAX => {
            return Err(ApiError::invalid("alert_key is too long"));
        }
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(ApiError::invalid("alert_key must be a string")),
    };
    if status == Status::Ok && alert_key.is_none() {
        return Err(ApiError::invalid(
            "alert_key is required when event_status is Ok",
        ));
    }

    let labels = parse_labels(obj.get("labels"), ctx.query_labels)?;
    let event_time = parse_event_time(obj.get("event_time"), ctx.received_at)?;
    let images = parse_images(obj.get("images"));

    // ING-022/023: a non-blank title_rule is rendered; otherwise the literal title is used.
    let use_rule = !title_rule.trim().is_empty();
    if status.is_trigger() && !use_rule && literal_title.is_none_or(|t| t.trim().is_empty()) {
        return Err(ApiError::invalid("title_rule is required"));
    }
    let (title, stored_rule) = if use_rule {
        let vars = tpl::Vars {
            title: literal_title.unwrap_or(""),
            description: &description,
            event_severity: status.severity().map_or("", Severity::as_str),
            event_status: status.as_str(),
            alert_key: alert_key.as_deref().unwrap_or(""),
            labels: &labels,
            pull: None,
            url_encode: false,
        };
        let title = render_title(title_rule, &vars, status.is_trigger());
        (title, truncate(title_rule, TITLE_MAX))
    } else {
        (
            truncate(literal_title.unwrap_or("").trim(), TITLE_MAX),
            String::new(),
        )
    };

    // ING-026: deterministic key for triggers without one.
    let alert_key = alert_key.unwrap_or_else(|| {
        let id = ctx.integration_id.to_string();
        hash_parts(&["std", &id, &title, &canon_labels(&labels)])
    });

    Ok(NewEvent {
        alert_key,
        event_status: status,
        // ING-050: a recovery's severity is filled in by processing.
        event_severity: status.severity(),
        title,
        title_rule: stored_rule,
        description,
        labels,
        images,
        event_time,
        // The server fills in the body as received (ING-054).
        raw: String::new(),
    })
}

/// `H(p1, …, pn)` of ingest.md §0.
pub fn hash_parts(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0x1f]);
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    hex::encode(&digest[..16])
}

/// `canon(L)` of ingest.md §0.
pub fn canon_labels(labels: &Labels) -> String {
    // A BTreeMap<String, _> iterates in byte-wise key order.
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}\u{1e}{v}"))
        .collect();
    pairs.join("\u{1d}")
}

/// Keeps the first `max` Unicode scalar values (§0 "Truncate to N").
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => s.get(..end).unwrap_or(s).to_owned(),
        None => s.to_owned(),
    }
}

/// A string field that may be absent or null; any other type is a 400 naming the field.
fn opt_str<'v>(obj: &'v Map<String, Value>, field: &str) -> Result<Option<&'v str>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("{field} must be a string"))),
    }
}

/// ING-027 key rules: trimmed; empty → `None` (ignored); too long or control characters → 400.
fn label_key(raw: &str) -> Result<Option<String>, ApiError> {
    let key = raw.trim();
    if key.is_empty() {
        return Ok(None);
    }
    let shown = truncate(key, LABEL_KEY_MAX);
    if key.chars().count() > LABEL_KEY_MAX {
        let shown = shown.escape_debug();
        return Err(ApiError::invalid(format!(
            "labels: key \"{shown}…\" is longer than {LABEL_KEY_MAX} characters"
        )));
    }
    if key.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}') {
        let shown = shown.escape_debug();
        return Err(ApiError::invalid(format!(
            "labels: key \"{shown}\" contains a control character"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// ING-027 + ING-012: query labels first, payload labels over them. An empty value is the
/// same as no label, so it never removes or overrides anything.
pub fn parse_labels(raw: Option<&Value>, query: &[(String, String)]) -> Result<Labels, ApiError> {
    fn put(labels: &mut Labels, key: String, value: &str) {
        let value = truncate(value, LABEL_VALUE_MAX);
        if !value.is_empty() {
            labels.insert(key, value);
        }
    }
    let mut labels = Labels::new();
    for (name, value) in query {
        if name == "integration_key" {
            continue;
        }
        if let Some(key) = label_key(name)? {
            put(&mut labels, key, value);
        }
    }
    match raw {
        None | Some(Value::Null) => {}
        Some(Value::Object(payload)) => {
            for (name, value) in payload {
                let Some(key) = label_key(name)? else {
                    continue;
                };
                let value = match value {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Array(_) | Value::Object(_) => {
                        return Err(ApiError::invalid(format!("labels.{key} must be a string")));
                    }
                };
                put(&mut labels, key, &value);
            }
        }
        Some(_) => return Err(ApiError::invalid("labels must be an object")),
    }
    if labels.len() > LABELS_MAX {
        return Err(ApiError::invalid(format!(
            "labels: too many labels ({} > {LABELS_MAX})",
            labels.len()
        )));
    }
    Ok(labels)
}

/// A source value as label text (ING-027 conversions, ING-052): strings as is, numbers in
/// their shortest JSON form, booleans `true`/`false`, objects and arrays as compact JSON;
/// `null` is no label.
pub fn label_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

/// ING-052: label normalisation for third-party payloads. Never fails.
///
/// `pairs` come in precedence order and the first non-empty value of a key wins, so callers
/// pass the source's labels first, then the labels they derive (ING-053 "fill when absent"),
/// then the query-string labels (ING-012). Keys are trimmed; empty keys, keys over 128
/// characters and keys with control characters are dropped; values are truncated to 2048
/// characters and empty values dropped. If more than 50 remain, the 50 smallest keys
/// (byte-wise) are kept and the second result is `true` (the outcome's `labels_truncated`).
pub fn adapter_labels(pairs: impl IntoIterator<Item = (String, String)>) -> (Labels, bool) {
    let mut labels = Labels::new();
    for (name, value) in pairs {
        let key = name.trim();
        if key.is_empty()
            || key.chars().count() > LABEL_KEY_MAX
            || key.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}')
            || labels.contains_key(key)
        {
            continue;
        }
        let value = truncate(&value, LABEL_VALUE_MAX);
        if !value.is_empty() {
            labels.insert(key.to_owned(), value);
        }
    }
    let cut = labels.len() > LABELS_MAX;
    while labels.len() > LABELS_MAX {
        labels.pop_last();
    }
    (labels, cut)
}

/// Title and description limits of §1.3.3, for adapters that build them from source fields.
pub const TITLE_MAX_CHARS: usize = TITLE_MAX;
pub const DESCRIPTION_MAX_CHARS: usize = DESCRIPTION_MAX;
pub const ALERT_KEY_MAX_CHARS: usize = ALERT_KEY_MAX;

/// ING-029, returned in milliseconds (whole seconds). Shared with the source adapters, which
/// pass the source's own time field (e.g. Alertmanager's `annotations.timestamp`).
pub fn parse_event_time(raw: Option<&Value>, received_at: Millis) -> Result<Millis, ApiError> {
    let secs = match raw {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i,
            (None, Some(_), _) => i64::MAX, // beyond i64: certainly too far ahead
            (None, None, f) => f.map_or(0, |f| f.floor() as i64), // `as` saturates
        }),
        Some(_) => return Err(ApiError::invalid("event_time is invalid")),
    };
    let secs = secs
        .map(|s| {
            if s > EVENT_TIME_MS_ABOVE {
                s.div_euclid(1000)
            } else {
                s
            }
        })
        .filter(|&s| {
            s > 0 && s.saturating_mul(1000) <= received_at.saturating_add(EVENT_TIME_FUTURE_MS)
        })
        .unwrap_or_else(|| received_at.div_euclid(1000));
    Ok(secs.saturating_mul(1000))
}

/// ING-028. Never fails: bad elements (or a non-array) are dropped. Shared with the source
/// adapters, which build the `{src, alt, href}` array from their own fields.
pub fn parse_images(raw: Option<&Value>) -> Vec<Image> {
    let Some(Value::Array(items)) = raw else {
        return Vec::new();
    };
    let text = |o: &Map<String, Value>, field: &str, max: usize| {
        truncate(o.get(field).and_then(Value::as_str).unwrap_or(""), max)
    };
    let mut images: Vec<Image> = Vec::new();
    let mut by_alt: HashMap<String, usize> = HashMap::new();
    for item in items {
        let Value::Object(o) = item else { continue };
        let Some(src) = o.get("src").and_then(Value::as_str) else {
            continue;
        };
        if !valid_image_src(src) {
            continue;
        }
        let image = Image {
            alt: text(o, "alt", IMAGE_ALT_MAX),
            src: src.to_owned(),
            href: text(o, "href", IMAGE_HREF_MAX),
        };
        // Same alt (absent = ""): the last wins, at the position of the first.
        match by_alt.get(&image.alt).and_then(|&i| images.get_mut(i)) {
            Some(slot) => *slot = image,
            None => {
                by_alt.insert(image.alt.clone(), images.len());
                images.push(image);
            }
        }
    }
    images.truncate(IMAGES_MAX);
    images
}

/// An `http(s)://` URL or an uploaded image key `[A-Za-z0-9_-]{1,128}`, at most 256 chars.
fn valid_image_src(src: &str) -> bool {
    let len = src.chars().count();
    if len == 0 || len > IMAGE_SRC_MAX {
        return false;
    }
    let has_scheme = |scheme: &str| {
        src.len() > scheme.len()
            && src
                .get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
    };
    has_scheme("http://")
        || has_scheme("https://")
        || (len <= IMAGE_KEY_MAX
            && src
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

/// ING-023 forms 1 and 2; the result is trimmed and truncated, and never empty for a trigger.
fn render_title(rule: &str, vars: &tpl::Vars<'_>, trigger: bool) -> String {
    let (rendered, unrendered) = match rule.strip_prefix("[TPL]") {
        Some(body) => {
            let source = substitute_braced(body, vars.labels);
            (
                tpl::render(&source, vars).unwrap_or_else(|_| body.to_owned()),
                body,
            )
        }
        None => (substitute_legacy(rule, vars.labels), rule),
    };
    let mut title = truncate(rendered.trim(), TITLE_MAX);
    if title.is_empty() && trigger {
        title = truncate(unrendered.trim(), TITLE_MAX);
        if title.is_empty() {
            title = truncate(rule.trim(), TITLE_MAX); // the rule was just "[TPL]"
        }
    }
    title
}

/// The variables of a title rule (ING-023 1b); the alert pipeline fills them from the event
/// as enrichment left it (ING-081).
pub use tpl::Vars as RuleVars;

/// ING-023 forms 1 and 2 as the alert pipeline uses them (ING-081, ING-082): the rendered
/// text, neither trimmed nor cut, and without the title's "empty → rule text" fallback (there
/// an empty result means "unchanged"). A `[TPL]` template that fails to parse or run still
/// gives the rule text without its prefix, as ING-023 says.
pub fn render_rule(rule: &str, vars: &RuleVars<'_>) -> String {
    match rule.strip_prefix("[TPL]") {
        Some(body) => tpl::render(&substitute_braced(body, vars.labels), vars)
            .unwrap_or_else(|_| body.to_owned()),
        None => substitute_legacy(rule, vars.labels),
    }
}

/// ING-023 1a: `${name}` → the label's value, or `<no value>`.
fn substitute_braced(src: &str, labels: &Labels) -> String {
    let mut out = Capped::new(src.len().saturating_add(RENDER_CAP));
    let mut rest = src;
    while let Some(pos) = rest.find("${") {
        out.push(rest.get(..pos).unwrap_or(""));
        let after = rest.get(pos + 2..).unwrap_or("");
        let Some(end) = after.find('}') else {
            out.push("${");
            rest = after;
            continue;
        };
        let name = after.get(..end).unwrap_or("").trim();
        out.push(labels.get(name).map_or(NO_VALUE, String::as_str));
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push(rest);
    out.0
}

/// ING-023 2: `$name` (longest `[A-Za-z_][A-Za-z0-9_]*`) → the label's value if it exists.
fn substitute_legacy(rule: &str, labels: &Labels) -> String {
    let mut out = Capped::new(RENDER_CAP);
    let mut rest = rule;
    while let Some(pos) = rest.find('$') {
        out.push(rest.get(..pos).unwrap_or(""));
        let after = rest.get(pos + 1..).unwrap_or("");
        let len = after
            .bytes()
            .enumerate()
            .take_while(|&(i, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
            })
            .count();
        let name = after.get(..len).unwrap_or("");
        match labels.get(name).filter(|_| len > 0) {
            Some(value) => out.push(value),
            None => {
                out.push("$");
                out.push(name);
            }
        }
        rest = after.get(len..).unwrap_or("");
    }
    out.push(rest);
    out.0
}

/// A string builder that silently stops at a byte capacity (on a char boundary).
struct Capped(String, usize);

impl Capped {
    fn new(cap: usize) -> Self {
        Capped(String::new(), cap)
    }

    fn push(&mut self, s: &str) {
        let room = self.1.saturating_sub(self.0.len());
        self.0
            .push_str(s.get(..s.floor_char_boundary(room)).unwrap_or(""));
    }
}

/// The T-template subset of ingest.md §2.5.1 (Go `text/template` semantics, leniently): text,
/// `{{-`/`-}}`, field references, `if`/`else if`/`else`/`end`, pipes and a fixed function set.
/// Missing labels and unknown fields are "missing": false, `""` as a function argument, and
/// printed as `<no value>`.
mod tpl {
    use super::{Capped, Labels, NO_VALUE, RENDER_CAP};

    /// The variables a title template sees (ING-023 1b).
    pub struct Vars<'a> {
        pub title: &'a str,
        pub description: &'a str,
        pub event_severity: &'a str,
        pub event_status: &'a str,
        pub alert_key: &'a str,
        pub labels: &'a Labels,
        /// The pull variables of ingest.md ING-222, for HTTP-pull URLs and bodies only.
        pub pull: Option<&'a super::PullVars>,
        /// ING-075: every printed value is percent-encoded (mapping-service URLs).
        pub url_encode: bool,
    }

    /// A parse or execution error; the caller decides what it means.
    #[derive(Debug)]
    pub(super) struct TplError;

    type R<T> = Result<T, TplError>;

    /// Nesting bound for `if` and parentheses, so hostile input cannot exhaust the stack.
    const MAX_DEPTH: usize = 50;

    pub(super) fn render(src: &str, vars: &Vars<'_>) -> R<String> {
        let mut segs = split(src)?.into_iter();
        let (nodes, end) = parse_list(&mut segs, 0)?;
        if !matches!(end, Stop::Eof) {
            return Err(TplError);
        }
        let mut out = Capped::new(RENDER_CAP);
        exec(&nodes, vars, &mut out)?;
        Ok(out.0)
    }

    enum Seg<'s> {
        Text(&'s str),
        Action(&'s str),
    }

    enum Node {
        Text(String),
        Print(Pipe),
        /// `(condition, body)` for `if` and each `else if`, then the `else` body.
        If(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    }

    type Pipe = Vec<Cmd>;
    type Cmd = Vec<Arg>;

    enum Arg {
        Field(Vec<String>),
        Str(String),
        Int(i64),
        Float(f64),
        Bool(bool),
        Func(&'static str),
        Sub(Pipe),
    }

    /// The functions of §2.5.1; any other name is a parse error (as in Go).
    #[rustfmt::skip]
    const FUNCS: [&str; 15] = [
        "eq", "ne", "and", "or", "not", "lower", "upper", "trim", "default", "replace",
        "contains", "hasPrefix", "hasSuffix", "printf", "index",
    ];

    fn is_space(c: char) -> bool {
        matches!(c, ' ' | '\t' | '\r' | '\n')
    }

    /// Cuts the source into text and action bodies, applying the trim markers.
    fn split(src: &str) -> R<Vec<Seg<'_>>> {
        let mut segs = Vec::new();
        let mut rest = src;
        let mut trim_next = false;
        loop {
            let open = rest.find("{{");
            let mut text = rest.get(..open.unwrap_or(rest.len())).unwrap_or("");
            if trim_next {
                text = text.trim_start_matches(is_space);
            }
            let Some(open) = open else {
                if !text.is_empty() {
                    segs.push(Seg::Text(text));
                }
                return Ok(segs);
            };
            let mut inner = rest.get(open + 2..).unwrap_or("");
            if let Some(after) = inner.strip_prefix('-').filter(|a| a.starts_with(is_space)) {
                text = text.trim_end_matches(is_space);
                inner = after;
            }
            if !text.is_empty() {
                segs.push(Seg::Text(text));
            }
            let close = find_close(inner)?;
            let mut body = inner.get(..close).unwrap_or("");
            trim_next = false;
            if let Some(b) = body.strip_suffix('-').filter(|b| b.ends_with(is_space)) {
                body = b;
                trim_next = true;
            }
            segs.push(Seg::Action(body));
            rest = inner.get(close + 2..).unwrap_or("");
        }
    }

    /// Byte offset of the `}}` closing an action, skipping quoted strings.
    fn find_close(s: &str) -> R<usize> {
        let mut quote: Option<char> = None;
        let mut escaped = false;
        let mut chars = s.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match quote {
                Some('"') if escaped => escaped = false,
                Some('"') if c == '\\' => escaped = true,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '`' => quote = Some(c),
                None if c == '}' && chars.peek().is_some_and(|&(_, n)| n == '}') => return Ok(i),
                None => {}
            }
        }
        Err(TplError)
    }

    enum Tok {
        Field(Vec<String>),
        Str(String),
        Int(i64),
        Float(f64),
        Ident(String),
        Pipe,
        Open,
        Close,
    }

    fn lex(s: &str) -> R<Vec<Tok>> {
        let is_ident = |c: char| c.is_alphanumeric() || c == '_';
        let mut toks = Vec::new();
        let mut it = s.chars().peekable();
        while let Some(&c) = it.peek() {
            if is_space(c) {
                it.next();
                continue;
            }
            let tok = match c {
                '|' | '(' | ')' => {
                    it.next();
                    match c {
                        '|' => Tok::Pipe,
                        '(' => Tok::Open,
                        _ => Tok::Close,
                    }
                }
                '"' => {
                    it.next();
                    let mut out = String::new();
                    loop {
                        match it.next().ok_or(TplError)? {
                            '"' => break,
                            '\\' => out.push(match it.next().ok_or(TplError)? {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                e @ ('\\' | '"') => e,
                                _ => return Err(TplError),
                            }),
                            ch => out.push(ch),
                        }
                    }
                    Tok::Str(out)
                }
                '`' => {
                    it.next();
                    let out: String = it.by_ref().take_while(|&ch| ch != '`').collect();
                    Tok::Str(out)
                }
                '.' => {
                    let mut path = Vec::new();
                    while it.next_if_eq(&'.').is_some() {
                        let mut name = String::new();
                        while let Some(ch) = it.next_if(|&ch| is_ident(ch)) {
                            name.push(ch);
                        }
                        if name.is_empty() {
                            if path.is_empty() && it.peek() != Some(&'.') {
                                break; // `.` alone
                            }
                            return Err(TplError);
                        }
                        path.push(name);
                    }
                    Tok::Field(path)
                }
                '0'..='9' | '-' | '+' => {
                    let mut num = String::new();
                    num.extend(it.next_if(|&ch| ch == '-' || ch == '+'));
                    while let Some(ch) = it.next_if(|&ch| {
                        ch.is_ascii_alphanumeric()
                            || ch == '.'
                            || ((ch == '-' || ch == '+') && num.ends_with(['e', 'E']))
                    }) {
                        num.push(ch);
                    }
                    // A digit must follow the sign (`-inf` is no number here).
                    let unsigned = num.trim_start_matches(['-', '+']);
                    if !unsigned.starts_with(|ch: char| ch.is_ascii_digit()) {
                        return Err(TplError);
                    }
                    match num.parse::<i64>() {
                        Ok(i) => Tok::Int(i),
                        Err(_) => Tok::Float(num.parse().map_err(|_| TplError)?),
                    }
                }
                c if is_ident(c) => {
                    let mut name = String::new();
                    while let Some(ch) = it.next_if(|&ch| is_ident(ch)) {
                        name.push(ch);
                    }
                    Tok::Ident(name)
                }
                _ => return Err(TplError),
            };
            toks.push(tok);
        }
        Ok(toks)
    }

    /// How a list of nodes ended.
    enum Stop {
        Eof,
        End,
        Else(Option<Pipe>),
    }

    fn parse_list<'s>(
        segs: &mut impl Iterator<Item = Seg<'s>>,
        depth: usize,
    ) -> R<(Vec<Node>, Stop)> {
        if depth > MAX_DEPTH {
            return Err(TplError);
        }
        let mut nodes = Vec::new();
        while let Some(seg) = segs.next() {
            let body = match seg {
                Seg::Text(t) => {
                    nodes.push(Node::Text(t.to_owned()));
                    continue;
                }
                Seg::Action(body) => body,
            };
            let mut toks = lex(body)?.into_iter().peekable();
            let keyword = match toks.peek() {
                Some(Tok::Ident(k)) if matches!(k.as_str(), "if" | "else" | "end") => k.clone(),
                _ => {
                    nodes.push(Node::Print(parse_pipe_all(toks, depth)?));
                    continue;
                }
            };
            toks.next();
            match keyword.as_str() {
                "end" if toks.peek().is_none() => return Ok((nodes, Stop::End)),
                "else" if toks.peek().is_none() => return Ok((nodes, Stop::Else(None))),
                "else"
                    if toks
                        .next_if(|t| matches!(t, Tok::Ident(k) if k == "if"))
                        .is_some() =>
                {
                    return Ok((nodes, Stop::Else(Some(parse_pipe_all(toks, depth)?))));
                }
                "if" => {
                    let mut branches = Vec::new();
                    let mut cond = parse_pipe_all(toks, depth)?;
                    let otherwise = loop {
                        let (body, end) = parse_list(segs, depth + 1)?;
                        branches.push((cond, body));
                        match end {
                            Stop::End => break Vec::new(),
                            Stop::Else(Some(next)) => cond = next,
                            Stop::Else(None) => match parse_list(segs, depth + 1)? {
                                (body, Stop::End) => break body,
                                _ => return Err(TplError),
                            },
                            Stop::Eof => return Err(TplError),
                        }
                    };
                    nodes.push(Node::If(branches, otherwise));
                }
                _ => return Err(TplError),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// A pipeline that must use up all tokens.
    fn parse_pipe_all(toks: impl Iterator<Item = Tok>, depth: usize) -> R<Pipe> {
        let mut toks = toks.peekable();
        let pipe = parse_pipe(&mut toks, depth)?;
        match toks.next() {
            None => Ok(pipe),
            Some(_) => Err(TplError),
        }
    }

    /// `cmd | cmd …`, stopping before a `)` or at the end.
    fn parse_pipe(
        toks: &mut std::iter::Peekable<impl Iterator<Item = Tok>>,
        depth: usize,
    ) -> R<Pipe> {
        if depth > MAX_DEPTH {
            return Err(TplError);
        }
        let mut pipe = Vec::new();
        let mut cmd = Vec::new();
        while let Some(tok) = toks.next_if(|t| !matches!(t, Tok::Close)) {
            let arg = match tok {
                Tok::Pipe if cmd.is_empty() => return Err(TplError),
                Tok::Pipe => {
                    pipe.push(std::mem::take(&mut cmd));
                    continue;
                }
                Tok::Open => {
                    let sub = parse_pipe(toks, depth + 1)?;
                    toks.next_if(|t| matches!(t, Tok::Close)).ok_or(TplError)?;
                    Arg::Sub(sub)
                }
                Tok::Close => return Err(TplError),
                Tok::Field(path) => Arg::Field(path),
                Tok::Str(s) => Arg::Str(s),
                Tok::Int(i) => Arg::Int(i),
                Tok::Float(f) => Arg::Float(f),
                Tok::Ident(name) => match name.as_str() {
                    "true" => Arg::Bool(true),
                    "false" => Arg::Bool(false),
                    _ => Arg::Func(FUNCS.into_iter().find(|f| *f == name).ok_or(TplError)?),
                },
            };
            cmd.push(arg);
        }
        if cmd.is_empty() {
            return Err(TplError);
        }
        pipe.push(cmd);
        Ok(pipe)
    }

    #[derive(Clone)]
    pub(super) enum Val<'a> {
        Str(String),
        Int(i64),
        Float(f64),
        Bool(bool),
        Labels(&'a Labels),
        Root,
        Missing,
    }

    impl Val<'_> {
        fn truthy(&self) -> bool {
            match self {
                Val::Str(s) => !s.is_empty(),
                Val::Int(i) => *i != 0,
                Val::Float(f) => *f != 0.0,
                Val::Bool(b) => *b,
                Val::Labels(m) => !m.is_empty(),
                Val::Root => true,
                Val::Missing => false,
            }
        }

        /// The value as a function argument.
        fn text(&self) -> R<String> {
            Ok(match self {
                Val::Str(s) => s.clone(),
                Val::Int(i) => i.to_string(),
                Val::Float(f) => f.to_string(),
                Val::Bool(b) => b.to_string(),
                Val::Labels(m) => {
                    let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("map[{}]", pairs.join(" "))
                }
                Val::Root => return Err(TplError),
                Val::Missing => String::new(),
            })
        }

        /// The value as printed output.
        fn print(&self) -> R<String> {
            match self {
                Val::Missing => Ok(NO_VALUE.to_owned()),
                v => v.text(),
            }
        }
    }

    fn exec(nodes: &[Node], vars: &Vars<'_>, out: &mut Capped) -> R<()> {
        for node in nodes {
            match node {
                Node::Text(t) => out.push(t),
                Node::Print(pipe) => {
                    let printed = eval_pipe(pipe, vars)?.print()?;
                    if vars.url_encode {
                        out.push(&super::percent_encode(&printed));
                    } else {
                        out.push(&printed);
                    }
                }
                Node::If(branches, otherwise) => {
                    let mut body = otherwise;
                    for (cond, branch) in branches {
                        if eval_pipe(cond, vars)?.truthy() {
                            body = branch;
                            break;
                        }
                    }
                    exec(body, vars, out)?;
                }
            }
        }
        Ok(())
    }

    fn eval_pipe<'a>(pipe: &Pipe, vars: &Vars<'a>) -> R<Val<'a>> {
        let mut piped = None;
        for cmd in pipe {
            piped = Some(match (cmd.split_first(), piped) {
                (Some((Arg::Func(f), args)), piped) => {
                    let mut vals = args
                        .iter()
                        .map(|a| eval_arg(a, vars))
                        .collect::<R<Vec<_>>>()?;
                    vals.extend(piped);
                    call(f, &vals)?
                }
                (Some((arg, [])), None) => eval_arg(arg, vars)?,
                _ => return Err(TplError),
            });
        }
        piped.ok_or(TplError)
    }

    fn eval_arg<'a>(arg: &Arg, vars: &Vars<'a>) -> R<Val<'a>> {
        Ok(match arg {
            Arg::Field(path) => {
                let mut val = Val::Root;
                for name in path {
                    val = match val {
                        Val::Root => match name.as_str() {
                            "Title" => Val::Str(vars.title.to_owned()),
                            "Description" => Val::Str(vars.description.to_owned()),
                            "EventSeverity" => Val::Str(vars.event_severity.to_owned()),
                            "EventStatus" => Val::Str(vars.event_status.to_owned()),
                            "AlertKey" => Val::Str(vars.alert_key.to_owned()),
                            "Labels" => Val::Labels(vars.labels),
                            other => match vars.pull {
                                Some(p) => p.field(other).unwrap_or(Val::Missing),
                                None => Val::Missing,
                            },
                        },
                        Val::Labels(m) => m.get(name).map_or(Val::Missing, |v| Val::Str(v.clone())),
                        Val::Missing => Val::Missing,
                        _ => return Err(TplError),
                    };
                }
                val
            }
            Arg::Str(s) => Val::Str(s.clone()),
            Arg::Int(i) => Val::Int(*i),
            Arg::Float(f) => Val::Float(*f),
            Arg::Bool(b) => Val::Bool(*b),
            Arg::Func(f) => call(f, &[])?,
            Arg::Sub(pipe) => eval_pipe(pipe, vars)?,
        })
    }

    /// Numbers compare numerically, everything else by text (missing = "").
    fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
        match (a, b) {
            (Val::Int(x), Val::Int(y)) => x == y,
            (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => num(a) == num(b),
            _ => matches!((a.text(), b.text()), (Ok(x), Ok(y)) if x == y),
        }
    }

    fn num(v: &Val<'_>) -> f64 {
        match v {
            Val::Int(i) => *i as f64,
            Val::Float(f) => *f,
            _ => f64::NAN,
        }
    }

    fn capped(s: String) -> String {
        let mut out = Capped::new(RENDER_CAP);
        out.push(&s);
        out.0
    }

    fn call<'a>(f: &str, args: &[Val<'a>]) -> R<Val<'a>> {
        Ok(match (f, args) {
            ("eq", [a, rest @ ..]) if !rest.is_empty() => {
                Val::Bool(rest.iter().any(|b| equal(a, b)))
            }
            ("ne", [a, b]) => Val::Bool(!equal(a, b)),
            // Go semantics: the first falsy (and) / truthy (or) argument, else the last.
            ("and", [.., last]) => args.iter().find(|v| !v.truthy()).unwrap_or(last).clone(),
            ("or", [.., last]) => args.iter().find(|v| v.truthy()).unwrap_or(last).clone(),
            ("not", [a]) => Val::Bool(!a.truthy()),
            ("lower", [s]) => Val::Str(capped(s.text()?.to_lowercase())),
            ("upper", [s]) => Val::Str(capped(s.text()?.to_uppercase())),
            ("trim", [s]) => Val::Str(s.text()?.trim().to_owned()),
            ("default", [fallback, v]) => (if v.truthy() { v } else { fallback }).clone(),
            ("replace", [old, new, s]) => Val::Str(replace(&s.text()?, &old.text()?, &new.text()?)),
            ("contains", [sub, s]) => Val::Bool(s.text()?.contains(sub.text()?.as_str())),
            ("hasPrefix", [p, s]) => Val::Bool(s.text()?.starts_with(p.text()?.as_str())),
            ("hasSuffix", [p, s]) => Val::Bool(s.text()?.ends_with(p.text()?.as_str())),
            ("printf", [format, rest @ ..]) => Val::Str(printf(&format.text()?, rest)?),
            ("index", [item, keys @ ..]) => {
                let mut val = item.clone();
                for key in keys {
                    val = match val {
                        Val::Labels(m) => m
                            .get(&key.text()?)
                            .map_or(Val::Missing, |v| Val::Str(v.clone())),
                        _ => return Err(TplError),
                    };
                }
                val
            }
            _ => return Err(TplError),
        })
    }

    /// Go `strings.ReplaceAll` (an empty `old` inserts `new` around every char), capped.
    fn replace(s: &str, old: &str, new: &str) -> String {
        let mut out = Capped::new(RENDER_CAP);
        if old.is_empty() {
            out.push(new);
            for c in s.chars() {
                out.push(c.encode_utf8(&mut [0; 4]));
                out.push(new);
            }
        } else {
            let mut parts = s.split(old);
            out.push(parts.next().unwrap_or(""));
            for part in parts {
                out.push(new);
                out.push(part);
            }
        }
        out.0
    }

    /// `printf` with `%s`, `%v`, `%d` and `%%`; other verbs are an execution error.
    fn printf(format: &str, args: &[Val<'_>]) -> R<String> {
        let mut out = Capped::new(RENDER_CAP);
        let mut args = args.iter();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c.encode_utf8(&mut [0; 4]));
                continue;
            }
            let verb = chars.next().ok_or(TplError)?;
            if verb == '%' {
                out.push("%");
                continue;
            }
            let text = match (verb, args.next()) {
                ('s' | 'v' | 'd', None) => format!("%!{verb}(MISSING)"),
                ('s' | 'v', Some(arg)) => arg.print()?,
                ('d', Some(Val::Int(i))) => i.to_string(),
                ('d', Some(arg)) => {
                    let text = arg.print()?;
                    match text.trim().parse::<i64>() {
                        Ok(i) => i.to_string(),
                        Err(_) => format!("%!d({text})"),
                    }
                }
                _ => return Err(TplError),
            };
            out.push(&text);
        }
        Ok(out.0)
    }
}

/// The fields a T-template (ingest.md §2.5.1) can reference, for the stages after the adapter
/// (enrichment *compose*, ING-062) that render one against the event as it stands.
#[derive(Debug, Clone, Copy)]
pub struct TemplateFields<'a> {
    pub title: &'a str,
    pub description: &'a str,
    pub event_severity: &'a str,
    pub event_status: &'a str,
    pub alert_key: &'a str,
    pub labels: &'a Labels,
}

/// A T-template that does not parse or fails to execute; each use site decides what that
/// means (§2.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFailed;

impl std::fmt::Display for TemplateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the template does not parse or cannot be executed")
    }
}

/// Renders a T-template with the same engine as `[TPL]` titles (no second implementation of
/// §2.5.1). Missing labels print `<no value>`.
pub fn render_template(src: &str, fields: &TemplateFields<'_>) -> Result<String, TemplateFailed> {
    let vars = tpl::Vars {
        title: fields.title,
        description: fields.description,
        event_severity: fields.event_severity,
        event_status: fields.event_status,
        alert_key: fields.alert_key,
        labels: fields.labels,
        pull: None,
        url_encode: false,
    };
    tpl::render(src, &vars).map_err(|_| TemplateFailed)
}

/// Renders a mapping-service URL (ING-075): like [`render_template`], but every value a
/// `{{ … }}` action prints is percent-encoded as a path/query component; the literal text
/// around the actions is kept as written.
pub fn render_url_template(
    src: &str,
    fields: &TemplateFields<'_>,
) -> Result<String, TemplateFailed> {
    let vars = tpl::Vars {
        title: fields.title,
        description: fields.description,
        event_severity: fields.event_severity,
        event_status: fields.event_status,
        alert_key: fields.alert_key,
        labels: fields.labels,
        pull: None,
        url_encode: true,
    };
    tpl::render(src, &vars).map_err(|_| TemplateFailed)
}

/// RFC 3986 component encoding: every byte but the unreserved `A-Z a-z 0-9 - . _ ~` becomes
/// `%XX` (upper-case hex), so a value cannot add a path segment, a query parameter or a
/// fragment.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The variables of an HTTP-pull URL or body (ingest.md ING-222). All pages of one pull share
/// `now`/`last_pull`; `cursor` is the current page's (empty on the first page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullVars {
    /// `.NowTime`: start of this pull, Unix seconds.
    pub now: i64,
    /// `.LastPullTime`: `.NowTime` of the last pull that finished without failure.
    pub last_pull: i64,
    /// `.CursorValue` / `.PageValue`.
    pub cursor: String,
}

impl PullVars {
    fn field(&self, name: &str) -> Option<tpl::Val<'static>> {
        Some(match name {
            "NowTime" => tpl::Val::Int(self.now),
            "LastPullTime" => tpl::Val::Int(self.last_pull),
            "NowTimeISO" => tpl::Val::Str(iso_seconds(self.now)),
            "LastPullTimeISO" => tpl::Val::Str(iso_seconds(self.last_pull)),
            "CursorValue" | "PageValue" => tpl::Val::Str(self.cursor.clone()),
            _ => return None,
        })
    }
}

/// RFC 3339 UTC with seconds, e.g. `2026-05-13T06:00:00Z` (ING-222).
pub fn iso_seconds(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Renders an HTTP-pull URL or body template (§2.5.1 with the variables of ING-222; event
/// fields and labels are empty there). A parse or execution error is the caller's to report.
pub fn render_pull_template(src: &str, pull: &PullVars) -> Result<String, TemplateFailed> {
    let labels = Labels::new();
    let vars = tpl::Vars {
        title: "",
        description: "",
        event_severity: "",
        event_status: "",
        alert_key: "",
        labels: &labels,
        pull: Some(pull),
        url_encode: false,
    };
    tpl::render(src, &vars).map_err(|_| TemplateFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RECEIVED: Millis = 1_700_000_000_789;
    const RECEIVED_S: i64 = 1_700_000_000;

    fn ctx(query: &[(String, String)]) -> PushContext<'_> {
        PushContext {
            integration_id: 42,
            query_labels: query,
            received_at: RECEIVED,
        }
    }

    fn parse(body: Value) -> Result<NewEvent, ApiError> {
        parse_standard(&body, &ctx(&[]))
    }

    fn parse_q(body: Value, query: &[(&str, &str)]) -> Result<NewEvent, ApiError> {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_standard(&body, &ctx(&query))
    }

    fn err(body: Value) -> String {
        let e = parse(body).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidParameter);
        e.message
    }

    /// A trigger with the given extra fields.
    fn trigger(extra: Value) -> Value {
        let mut body = json!({"event_status": "Critical", "title": "disk full"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Renders a title rule against labels, as a Warning trigger with alert_key "k1".
    fn title(rule: &str, l: Value) -> String {
        parse(json!({
            "event_status": "Warning", "title_rule": rule, "labels": l,
            "alert_key": "k1", "title": "lit", "description": "desc"
        }))
        .unwrap()
        .title
    }

    // spec: §0 H(...) — 16 bytes of SHA-256 over parts joined with 0x1F, lower-case hex.
    #[test]
    fn hash_parts_golden() {
        assert_eq!(hash_parts(&[""]), "e3b0c44298fc1c149afbf4c8996fb924");
        assert_eq!(hash_parts(&["a", "b"]), "f04cdced9736a69da6103f08a4daaf8c");
        assert_ne!(hash_parts(&["a", "b"]), hash_parts(&["ab"]));
    }

    // spec: §0 canon(L) — sorted by key, key 0x1E value, pairs joined with 0x1D.
    #[test]
    fn canon_labels_format() {
        assert_eq!(canon_labels(&Labels::new()), "");
        let l = labels(&[("host", "web-1"), ("check", "cpu"), ("Z", "z")]);
        assert_eq!(
            canon_labels(&l),
            "Z\u{1e}z\u{1d}check\u{1e}cpu\u{1d}host\u{1e}web-1"
        );
    }

    // spec: ING-020
    #[test]
    fn full_payload() {
        let ev = parse(json!({
            "title_rule": "$check on $host",
            "event_status": "Warning",
            "alert_key": "abc",
            "description": "load is high",
            "labels": {"host": "web-1", "check": "load"},
            "images": [{"src": "https://img.example.com/a.png", "alt": "graph", "href": "https://x"}],
            "event_time": 1_699_999_000,
        }))
        .unwrap();
        assert_eq!(ev.title, "load on web-1");
        assert_eq!(ev.title_rule, "$check on $host");
        assert_eq!(ev.event_status, Status::Warning);
        assert_eq!(ev.alert_key, "abc");
        assert_eq!(ev.description, "load is high");
        assert_eq!(ev.labels, labels(&[("host", "web-1"), ("check", "load")]));
        assert_eq!(ev.images.len(), 1);
        assert_eq!(ev.event_time, 1_699_999_000_000);
    }

    // spec: ING-021
    #[test]
    fn event_status_is_exact() {
        for (s, status) in [
            ("Critical", Status::Critical),
            ("Warning", Status::Warning),
            ("Info", Status::Info),
            ("Ok", Status::Ok),
        ] {
            let ev = parse(json!({"event_status": s, "title": "t", "alert_key": "k"})).unwrap();
            assert_eq!(ev.event_status, status);
        }
        for bad in [
            json!("critical"),
            json!("OK"),
            json!("Resolved"),
            json!(" Ok"),
            json!(null),
            json!(1),
            json!(["Ok"]),
        ] {
            assert_eq!(
                err(json!({"event_status": bad, "title": "t", "alert_key": "k"})),
                "event_status is invalid"
            );
        }
        assert_eq!(err(json!({"title": "t"})), "event_status is invalid");
    }

    // spec: ING-022
    #[test]
    fn trigger_needs_a_title() {
        for body in [
            json!({"event_status": "Critical"}),
            json!({"event_status": "Info", "title": "  ", "title_rule": "\t"}),
            json!({"event_status": "Warning", "title_rule": "", "title": null}),
        ] {
            assert_eq!(err(body), "title_rule is required");
        }
        let ev = parse(json!({"event_status": "Critical", "title": " lit "})).unwrap();
        assert_eq!(ev.title, "lit");
        // Recoveries need neither.
        let ev = parse(json!({"event_status": "Ok", "alert_key": "k"})).unwrap();
        assert_eq!((ev.title.as_str(), ev.title_rule.as_str()), ("", ""));
    }

    // spec: ING-022 — wrong JSON types for the text fields.
    #[test]
    fn text_fields_must_be_strings() {
        assert_eq!(err(trigger(json!({"title": 5}))), "title must be a string");
        assert_eq!(
            err(trigger(json!({"title_rule": {}}))),
            "title_rule must be a string"
        );
        assert_eq!(
            err(trigger(json!({"description": 1}))),
            "description must be a string"
        );
        let ev = parse(trigger(json!({"description": null, "title_rule": null}))).unwrap();
        assert_eq!(
            (ev.description.as_str(), ev.title.as_str()),
            ("", "disk full")
        );
    }

    // spec: ING-023 — legacy `$name` form, the spec's example.
    #[test]
    fn legacy_title_example() {
        let l = json!({"cluster": "nj", "resource": "es.nj.01", "check": "cpu"});
        assert_eq!(title("$cluster::$resource::$check", l), "nj::es.nj.01::cpu");
    }

    // spec: ING-023 — legacy: absent labels stay literal, longest name match, lone `$`.
    #[test]
    fn legacy_title_edges() {
        let l = json!({"a": "1", "a_b": "2", "x9": "3"});
        assert_eq!(title("$missing and $a", l.clone()), "$missing and 1");
        assert_eq!(title("$a_b-$a.b $x9x", l.clone()), "2-1.b $x9x");
        assert_eq!(title("cost $5 $$a $", l.clone()), "cost $5 $1 $");
        assert_eq!(title("${a}", l), "${a}");
    }

    // spec: ING-023 — `[TPL]`: `${name}` first (absent → `<no value>`), then the template.
    #[test]
    fn tpl_title_substitution_and_fields() {
        let l = json!({"host": "web-1", "my.dotted": "d"});
        assert_eq!(
            title("[TPL]${host} / ${nope}", l.clone()),
            "web-1 / <no value>"
        );
        assert_eq!(
            title(
                "[TPL]{{.EventStatus}}|{{.EventSeverity}}|{{.AlertKey}}|{{.Title}}|{{.Description}}",
                l.clone()
            ),
            "Warning|Warning|k1|lit|desc"
        );
        assert_eq!(
            title(
                "[TPL]{{.Labels.host}} {{.Labels.nope}} {{.Nope}}",
                l.clone()
            ),
            "web-1 <no value> <no value>"
        );
        assert_eq!(
            title(r#"[TPL]{{index .Labels "my.dotted"}}"#, l.clone()),
            "d"
        );
        assert_eq!(
            title(r#"[TPL]{{index .Labels "x"}}"#, l.clone()),
            "<no value>"
        );
        // `${…}` output is template source.
        assert_eq!(
            title("[TPL]{{ ${host} }}", json!({"host": "upper \"a\""})),
            "A"
        );
    }

    // spec: ING-023 — §2.5.1 subset: trim markers, if/else if/else, pipes, functions.
    #[test]
    fn tpl_subset() {
        let l = json!({"env": "Prod", "n": "7", "empty_not_sent": ""});
        let t = |rule: &str| title(&format!("[TPL]{rule}"), l.clone());
        assert_eq!(t("a  {{- \" b \" -}}  c"), "a b c");
        assert_eq!(t("{{if eq .Labels.env \"Prod\"}}P{{else}}N{{end}}"), "P");
        assert_eq!(
            t("{{if .Labels.x}}x{{else if ne .Labels.env \"Prod\"}}y{{else}}z{{end}}"),
            "z"
        );
        assert_eq!(t("{{if not .Labels.x}}none{{end}}"), "none");
        assert_eq!(
            t("{{.Labels.env | lower}} {{upper .Labels.env}}"),
            "prod PROD"
        );
        assert_eq!(
            t("{{.Labels.x | default \"dflt\"}}/{{default \"d\" .Labels.env}}"),
            "dflt/Prod"
        );
        assert_eq!(t("{{replace \"o\" \"0\" .Labels.env}}"), "Pr0d");
        assert_eq!(
            t("{{trim \"  s \"}}|{{contains \"ro\" .Labels.env}}"),
            "s|true"
        );
        assert_eq!(
            t("{{hasPrefix \"Pr\" .Labels.env}} {{hasSuffix \"x\" .Labels.env}}"),
            "true false"
        );
        assert_eq!(
            t("{{printf \"%s=%d%% %v\" .Labels.env .Labels.n 1.5}}"),
            "Prod=7% 1.5"
        );
        assert_eq!(
            t("{{and 1 \"\" 2}}|{{or \"\" 0 \"y\"}}|{{and 1 2}}"),
            "|y|2"
        );
        assert_eq!(t("{{if and (eq .Labels.n \"7\") (ne 1 2)}}ok{{end}}"), "ok");
        assert_eq!(t("{{eq 2 1 2.0}} {{eq .Labels.x \"\"}}"), "true true");
        assert_eq!(t("{{`raw \"q\"`}}"), "raw \"q\"");
    }

    // spec: ING-023 — a template that fails to parse or execute gives the rule without prefix.
    #[test]
    fn tpl_errors_fall_back_to_rule_text() {
        for rule in [
            "{{.Title",
            "{{if .Title}}x",
            "{{end}}",
            "{{else}}",
            "{{nosuchfunc 1}}",
            "{{range .Labels}}{{end}}",
            "{{lower}}",
            "{{printf \"%x\" 1}}",
            "{{.Labels.host.deeper}}",
            "{{(1}}",
            "{{}}",
        ] {
            assert_eq!(
                title(&format!("[TPL]{rule}"), json!({"host": "h"})),
                rule,
                "{rule}"
            );
        }
        // Nesting beyond the depth bound is an error, not a stack overflow.
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(
            title(&format!("[TPL]{{{{{deep}}}}}"), json!({})).len(),
            TITLE_MAX
        );
        let deep_if = "{{if 1}}".repeat(10_000);
        assert_eq!(
            title(&format!("[TPL]{deep_if}"), json!({})).chars().count(),
            TITLE_MAX
        );
    }

    // spec: ING-023 — an empty rendering of a trigger's title becomes the unrendered rule.
    #[test]
    fn empty_render_uses_rule_text() {
        assert_eq!(
            title("[TPL]{{if .Labels.x}}x{{end}}", json!({})),
            "{{if .Labels.x}}x{{end}}"
        );
        assert_eq!(title("[TPL]", json!({})), "[TPL]");
        assert_eq!(title("  $a  ", json!({"a": " "})), "$a");
        // A recovery may end up with an empty title.
        let ev = parse(json!({"event_status": "Ok", "alert_key": "k",
            "title_rule": "[TPL]{{if .Labels.x}}x{{end}}"}))
        .unwrap();
        assert_eq!(ev.title, "");
        assert_eq!(ev.title_rule, "[TPL]{{if .Labels.x}}x{{end}}");
    }

    // spec: ING-023 — literal `title`; title_rule stored only when it was used.
    #[test]
    fn literal_title_and_stored_rule() {
        let ev = parse(trigger(
            json!({"title": "$host is down", "labels": {"host": "h"}}),
        ))
        .unwrap();
        assert_eq!(ev.title, "$host is down");
        assert_eq!(ev.title_rule, "");
        let ev = parse(trigger(
            json!({"title_rule": " $host ", "labels": {"host": "h"}}),
        ))
        .unwrap();
        assert_eq!(ev.title, "h");
        assert_eq!(ev.title_rule, " $host ");
    }

    // spec: ING-024 — truncation by Unicode scalar values, never an error.
    #[test]
    fn truncation_by_scalar_values() {
        let long = |n: usize| "é".repeat(n);
        let ev = parse(json!({
            "event_status": "Info",
            "title_rule": long(600),
            "description": long(3000),
            "labels": {"v": long(3000)},
            "images": [{"src": "key_1", "alt": long(200), "href": long(300)}],
        }))
        .unwrap();
        assert_eq!(ev.title, long(512));
        assert_eq!(ev.title_rule, long(512));
        assert_eq!(ev.description, long(2048));
        assert_eq!(ev.labels["v"], long(2048));
        assert_eq!(ev.images[0].alt, long(128));
        assert_eq!(ev.images[0].href, long(256));
        let ev = parse(trigger(
            json!({"title": long(513), "description": long(2048)}),
        ))
        .unwrap();
        assert_eq!(ev.title, long(512));
        assert_eq!(ev.description, long(2048));
        assert_eq!(truncate("ab", 5), "ab");
    }

    // spec: ING-024 — hostile rules are bounded, the title still 512 characters.
    #[test]
    fn rendering_is_bounded() {
        let l = json!({"a": "x".repeat(2048)});
        assert_eq!(title(&"$a".repeat(100_000), l.clone()).len(), TITLE_MAX);
        let chain = "| replace \"\" .Labels.a ".repeat(10);
        assert_eq!(
            title(&format!("[TPL]{{{{.Labels.a {chain}}}}}"), l).len(),
            TITLE_MAX
        );
    }

    // spec: ING-025
    #[test]
    fn alert_key_validation() {
        assert_eq!(
            err(trigger(json!({"alert_key": 5}))),
            "alert_key must be a string"
        );
        let ev = parse(trigger(json!({"alert_key": " Key "}))).unwrap();
        assert_eq!(ev.alert_key, " Key ");
        let ev = parse(trigger(json!({"alert_key": "ü".repeat(255)}))).unwrap();
        assert_eq!(ev.alert_key.chars().count(), 255);
        assert_eq!(
            err(trigger(json!({"alert_key": "k".repeat(256)}))),
            "alert_key is too long"
        );
        // Empty counts as absent: a trigger gets a generated key, a recovery is refused.
        assert_eq!(
            parse(trigger(json!({"alert_key": ""})))
                .unwrap()
                .alert_key
                .len(),
            32
        );
        for key in [json!(null), json!("")] {
            assert_eq!(
                err(json!({"event_status": "Ok", "alert_key": key})),
                "alert_key is required when event_status is Ok"
            );
        }
    }

    // spec: ING-026
    #[test]
    fn generated_alert_key() {
        let body =
            trigger(json!({"labels": {"host": "web-1", "check": "cpu"}, "title": "CPU high"}));
        let a = parse(body.clone()).unwrap().alert_key;
        assert_eq!(a, parse(body).unwrap().alert_key);
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        // integration 42, title "CPU high", canon(check=cpu, host=web-1); computed independently.
        assert_eq!(a, "f6bfedc8155ccc052d6e5dad396a0387");
        let other_value =
            trigger(json!({"labels": {"host": "web-2", "check": "cpu"}, "title": "CPU high"}));
        let other_title =
            trigger(json!({"labels": {"host": "web-1", "check": "cpu"}, "title": "CPU low"}));
        assert_ne!(a, parse(other_value).unwrap().alert_key);
        assert_ne!(a, parse(other_title).unwrap().alert_key);
        // Query labels are part of the labels hashed; another integration gives another key.
        let body =
            trigger(json!({"labels": {"host": "web-1", "check": "cpu"}, "title": "CPU high"}));
        assert_ne!(
            a,
            parse_q(body.clone(), &[("team", "db")]).unwrap().alert_key
        );
        let ctx = PushContext {
            integration_id: 43,
            ..ctx(&[])
        };
        assert_ne!(a, parse_standard(&body, &ctx).unwrap().alert_key);
    }

    // spec: ING-027 — value types.
    #[test]
    fn label_values() {
        let ev = parse(trigger(json!({"labels": {
            "int": 90, "float": 0.5, "neg": -3, "t": true, "f": false,
            "gone": null, "empty": "", "s": " keep spaces "
        }})))
        .unwrap();
        assert_eq!(
            ev.labels,
            labels(&[
                ("int", "90"),
                ("float", "0.5"),
                ("neg", "-3"),
                ("t", "true"),
                ("f", "false"),
                ("s", " keep spaces ")
            ])
        );
        assert_eq!(
            err(trigger(json!({"labels": {"x": {"a": 1}}}))),
            "labels.x must be a string"
        );
        assert_eq!(
            err(trigger(json!({"labels": {" y ": [1]}}))),
            "labels.y must be a string"
        );
        for bad in [json!([]), json!("a=b"), json!(1)] {
            assert_eq!(
                err(trigger(json!({"labels": bad}))),
                "labels must be an object"
            );
        }
        assert!(
            parse(trigger(json!({"labels": null})))
                .unwrap()
                .labels
                .is_empty()
        );
    }

    // spec: ING-027 — keys.
    #[test]
    fn label_keys() {
        let ev = parse(trigger(
            json!({"labels": {"  host ": "h", "  ": "ignored", "": "x",
            "a.b/c-d": "1", "Host": "H", "ключ": "v"}}),
        ))
        .unwrap();
        assert_eq!(
            ev.labels,
            labels(&[
                ("host", "h"),
                ("a.b/c-d", "1"),
                ("Host", "H"),
                ("ключ", "v")
            ])
        );
        let ok = "k".repeat(128);
        assert!(parse(trigger(json!({"labels": {ok: "v"}}))).is_ok());
        let msg = err(trigger(json!({"labels": {"k".repeat(129): "v"}})));
        assert!(
            msg.starts_with("labels: key \"kkk") && msg.ends_with("is longer than 128 characters"),
            "{msg}"
        );
        for key in ["a\u{0}b", "a\u{1f}b", "a\u{7f}b", "a\nb"] {
            let msg = err(trigger(json!({"labels": {key: "v"}})));
            assert!(msg.ends_with("contains a control character"), "{msg}");
        }
    }

    // spec: ING-027 — at most 50 labels after the query labels are merged.
    #[test]
    fn label_count_limit() {
        let many = |n: usize| -> Value {
            Value::Object((0..n).map(|i| (format!("k{i:02}"), json!("v"))).collect())
        };
        assert_eq!(
            parse(trigger(json!({"labels": many(50)})))
                .unwrap()
                .labels
                .len(),
            50
        );
        assert_eq!(
            err(trigger(json!({"labels": many(51)}))),
            "labels: too many labels (51 > 50)"
        );
        assert_eq!(
            parse_q(trigger(json!({"labels": many(50)})), &[("extra", "1")])
                .unwrap_err()
                .message,
            "labels: too many labels (51 > 50)"
        );
        // Empty values do not count.
        let mut m = many(50);
        m["empty"] = json!("");
        assert!(parse(trigger(json!({"labels": m}))).is_ok());
    }

    // spec: ING-012
    #[test]
    fn query_parameters_become_labels() {
        let query = [
            ("team", "a"),
            ("team", "b"),
            ("host", "q"),
            ("integration_key", "secret"),
        ];
        let ev = parse_q(
            trigger(json!({"labels": {"host": "p", "empty": ""}})),
            &query,
        )
        .unwrap();
        assert_eq!(ev.labels, labels(&[("team", "b"), ("host", "p")]));
        // An empty payload value is no label, so the query label stays.
        let ev = parse_q(trigger(json!({"labels": {"team": ""}})), &[("team", "q")]).unwrap();
        assert_eq!(ev.labels, labels(&[("team", "q")]));
        // Query labels feed the legacy title too.
        let ev = parse_q(trigger(json!({"title_rule": "$team"})), &[("team", "q")]).unwrap();
        assert_eq!(ev.title, "q");
    }

    // spec: ING-028
    #[test]
    fn images() {
        let ev = parse(trigger(json!({"images": [
            {"src": "https://a/1.png", "alt": "cpu"},
            "not an object",
            {"alt": "no src"},
            {"src": "", "alt": "empty"},
            {"src": "ftp://a/b", "alt": "scheme"},
            {"src": format!("https://{}", "a".repeat(250)), "alt": "too long"},
            {"src": "bad key!", "alt": "key"},
            {"src": "upload_Key-9", "alt": "mem"},
            {"src": "HTTP://a/2.png", "alt": "cpu", "href": "https://h"},
            {"src": "http://a/3.png"},
            {"src": "k".repeat(128), "alt": 5},
            {"src": "k".repeat(129), "alt": "long key"},
        ]})))
        .unwrap();
        let got: Vec<(&str, &str, &str)> = ev
            .images
            .iter()
            .map(|i| (i.alt.as_str(), i.src.as_str(), i.href.as_str()))
            .collect();
        let k128 = "k".repeat(128);
        assert_eq!(
            got,
            vec![
                ("cpu", "HTTP://a/2.png", "https://h"),
                ("mem", "upload_Key-9", ""),
                ("", k128.as_str(), ""),
            ]
        );
        // At most 20, the first 20 after collapsing.
        let many: Vec<Value> = (0..30)
            .map(|i| json!({"src": "k", "alt": format!("{i}")}))
            .collect();
        let ev = parse(trigger(json!({"images": many}))).unwrap();
        assert_eq!(ev.images.len(), 20);
        assert_eq!(ev.images[19].alt, "19");
        // Another type is ignored, never an error.
        for other in [json!({"src": "k"}), json!("x"), json!(null)] {
            assert!(
                parse(trigger(json!({"images": other})))
                    .unwrap()
                    .images
                    .is_empty()
            );
        }
    }

    // spec: ING-029
    #[test]
    fn event_time() {
        let at = |t: Value| parse(trigger(json!({"event_time": t}))).unwrap().event_time;
        let now = RECEIVED_S * 1000;
        assert_eq!(at(json!(1_600_000_000)), 1_600_000_000_000);
        assert_eq!(at(json!(1_600_000_000_999_i64)), 1_600_000_000_000);
        // Exactly 10^12 is still seconds, and so far ahead that the receive time is used.
        assert_eq!(at(json!(1_000_000_000_000_i64)), now);
        assert_eq!(at(json!(1_000_000_000_001_i64)), 1_000_000_000_000);
        assert_eq!(at(json!(1_600_000_000.9)), 1_600_000_000_000);
        assert_eq!(at(json!(1_600_000_000_500.5)), 1_600_000_000_000);
        assert_eq!(at(json!(RECEIVED_S + 300)), (RECEIVED_S + 300) * 1000);
        assert_eq!(at(json!(RECEIVED_S + 301)), now);
        assert_eq!(at(json!((RECEIVED_S + 301) * 1000)), now);
        for fallback in [
            json!(null),
            json!(0),
            json!(-5),
            json!(0.5),
            json!(u64::MAX),
            json!(1e300),
        ] {
            assert_eq!(at(fallback), now);
        }
        assert_eq!(parse(trigger(json!({}))).unwrap().event_time, now);
        for bad in [json!("1600000000"), json!(true), json!([1]), json!({})] {
            assert_eq!(
                err(trigger(json!({"event_time": bad}))),
                "event_time is invalid"
            );
        }
    }

    // spec: ING-030
    #[test]
    fn body_shape() {
        assert_eq!(
            err(json!([{"event_status": "Ok"}])),
            "batch push requires field mapping"
        );
        for bad in [json!("x"), json!(1), json!(null), json!(true)] {
            assert_eq!(err(bad), "request body must be a JSON object");
        }
        let ev = parse(trigger(json!({"unknown": {"deep": [1]}, "severity": "x"}))).unwrap();
        assert_eq!(ev.title, "disk full");
    }

    // spec: ING-050
    #[test]
    fn event_severity() {
        for (s, sev) in [
            ("Critical", Severity::Critical),
            ("Warning", Severity::Warning),
            ("Info", Severity::Info),
        ] {
            let ev = parse(json!({"event_status": s, "title": "t"})).unwrap();
            assert_eq!(ev.event_severity, Some(sev));
        }
        let ev = parse(json!({"event_status": "Ok", "alert_key": "k"})).unwrap();
        assert_eq!(ev.event_severity, None);
        let ev = parse(json!({"event_status": "Ok", "alert_key": "k",
            "title_rule": "[TPL]{{.EventSeverity}}-{{.EventStatus}}"}))
        .unwrap();
        assert_eq!(ev.title, "-Ok");
    }
}
