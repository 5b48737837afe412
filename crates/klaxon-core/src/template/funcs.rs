//! The functions of RSP-341 (built-ins) and RSP-344 (Klaxon helpers and the Sprig subset).
//! The list is fixed: any other name is a parse error.

use std::collections::BTreeMap;

use super::TemplateError;
use super::exec::Exec;
use super::parse::Arg;
use super::value::V;

#[rustfmt::skip]
const FUNCS: &[&str] = &[
    // Go built-ins (RSP-341).
    "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
    // Klaxon helpers (RSP-344).
    "toHtml", "date", "ago", "alertLabels", "joinAlertLabels", "jsonGet", "imageSrcToURL", "transferImage",
    "fireReason", "colorSeverity", "serverityToColor", "in", "mustToPrettyJson",
    // Sprig subset (RSP-344).
    "default", "empty", "coalesce", "ternary", "upper", "lower", "title", "trim", "trimPrefix", "trimSuffix",
    "trimAll", "contains", "hasPrefix", "hasSuffix", "replace", "repeat", "substr", "trunc", "abbrev",
    "nospace", "quote", "squote", "split", "splitList", "join", "list", "dict", "keys", "sortAlpha", "uniq",
    "has", "first", "last", "toJson", "toPrettyJson", "toString", "atoi", "int", "int64", "float64", "add",
    "sub", "mul", "div", "mod", "max", "min", "now", "unixEpoch", "dateInZone", "toDate", "duration",
    "b64enc", "b64dec", "regexMatch", "regexFind", "regexReplaceAll", "indent", "nindent",
];

pub fn is_known_func(name: &str) -> Option<&'static str> {
    FUNCS.iter().find(|f| **f == name).copied()
}

type R<T> = Result<T, TemplateError>;

fn err(pos: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError::at(pos, msg)
}

pub fn call(
    ex: &mut Exec<'_>,
    pos: usize,
    name: &str,
    args: &[Arg],
    dot: &V,
    prev: Option<V>,
) -> R<V> {
    // `and` and `or` short-circuit, so their arguments are evaluated lazily (RSP-341).
    if name == "and" || name == "or" {
        let mut last = V::Nil;
        let total = args.len() + usize::from(prev.is_some());
        if total == 0 {
            return Err(err(
                pos,
                format!("wrong number of args for {name}: want at least 1"),
            ));
        }
        for a in args {
            last = ex.arg(pos, a, dot)?;
            if (name == "and") != last.truthy() {
                return Ok(last);
            }
        }
        if let Some(p) = prev {
            last = p;
        }
        return Ok(last);
    }
    let mut vals = Vec::with_capacity(args.len() + 1);
    for a in args {
        vals.push(ex.arg(pos, a, dot)?);
    }
    if let Some(p) = prev {
        vals.push(p);
    }
    apply(ex, pos, name, vals)
}

fn want(pos: usize, name: &str, v: &[V], n: usize) -> R<()> {
    if v.len() != n {
        return Err(err(
            pos,
            format!("wrong number of args for {name}: want {n} got {}", v.len()),
        ));
    }
    Ok(())
}

fn s(pos: usize, name: &str, v: &V) -> R<String> {
    match v {
        V::Str(x) | V::Html(x) => Ok(x.clone()),
        V::Int(_) | V::Float(_) | V::Bool(_) | V::Nil => Ok(if matches!(v, V::Nil) {
            String::new()
        } else {
            v.display()
        }),
        other => Err(err(
            pos,
            format!("{name}: expected string, got {}", other.kind()),
        )),
    }
}

fn num(pos: usize, name: &str, v: &V) -> R<i64> {
    match v {
        V::Int(i) => Ok(*i),
        V::Float(f) => Ok(*f as i64),
        V::Str(x) | V::Html(x) => x
            .trim()
            .parse::<i64>()
            .or_else(|_| x.trim().parse::<f64>().map(|f| f as i64))
            .map_err(|_| err(pos, format!("{name}: {x:?} is not a number"))),
        V::Bool(b) => Ok(i64::from(*b)),
        V::Nil => Ok(0),
        other => Err(err(
            pos,
            format!("{name}: expected number, got {}", other.kind()),
        )),
    }
}

fn fnum(pos: usize, name: &str, v: &V) -> R<f64> {
    match v {
        V::Float(f) => Ok(*f),
        V::Str(x) | V::Html(x) => x
            .trim()
            .parse::<f64>()
            .map_err(|_| err(pos, format!("{name}: {x:?} is not a number"))),
        other => num(pos, name, other).map(|i| i as f64),
    }
}

fn list(pos: usize, name: &str, v: &V) -> R<Vec<V>> {
    match v {
        V::List(l) => Ok(l.clone()),
        V::Nil => Ok(Vec::new()),
        other => Err(err(
            pos,
            format!("{name}: expected list, got {}", other.kind()),
        )),
    }
}

/// `eq`, `lt`…: values of different kinds cannot be compared (RSP-341).
fn compare(pos: usize, a: &V, b: &V) -> R<std::cmp::Ordering> {
    use std::cmp::Ordering;
    match (a, b) {
        (V::Int(x), V::Int(y)) => Ok(x.cmp(y)),
        (V::Int(_) | V::Float(_), V::Int(_) | V::Float(_)) => {
            let (x, y) = (fnum(pos, "compare", a)?, fnum(pos, "compare", b)?);
            Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal))
        }
        (V::Str(x) | V::Html(x), V::Str(y) | V::Html(y)) => Ok(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Ok(x.cmp(y)),
        _ => Err(err(
            pos,
            format!(
                "incompatible types for comparison: {} and {}",
                a.kind(),
                b.kind()
            ),
        )),
    }
}

fn equal(pos: usize, a: &V, b: &V) -> R<bool> {
    match (a, b) {
        (V::Nil, V::Nil) => Ok(true),
        (V::Nil, _) | (_, V::Nil) => Ok(false),
        _ => compare(pos, a, b).map(|o| o.is_eq()),
    }
}

fn apply(ex: &mut Exec<'_>, pos: usize, name: &str, v: Vec<V>) -> R<V> {
    let env = ex.env;
    let arg = |i: usize| v.get(i).cloned().unwrap_or(V::Nil);
    Ok(match name {
        "len" => {
            want(pos, name, &v, 1)?;
            V::Int(match &v[0] {
                V::Str(x) | V::Html(x) => x.len(),
                V::List(l) => l.len(),
                V::Map(m) | V::Struct(m) => m.len(),
                V::Nil => 0,
                o => return Err(err(pos, format!("len of type {}", o.kind()))),
            } as i64)
        }
        "index" => {
            if v.is_empty() {
                return Err(err(pos, "wrong number of args for index"));
            }
            let mut cur = v[0].clone();
            for k in &v[1..] {
                cur = match (&cur, k) {
                    (V::List(l), _) => {
                        let i = num(pos, name, k)?;
                        match usize::try_from(i).ok().and_then(|i| l.get(i)) {
                            Some(x) => x.clone(),
                            None => return Err(err(pos, format!("index out of range: {i}"))),
                        }
                    }
                    (V::Map(m) | V::Struct(m), _) => m
                        .get(&s(pos, name, k)?)
                        .cloned()
                        .unwrap_or_else(|| V::str("")),
                    (V::Nil, _) => V::str(""),
                    (o, _) => {
                        return Err(err(pos, format!("can't index item of type {}", o.kind())));
                    }
                };
            }
            cur
        }
        "print" | "println" => {
            let mut out = String::new();
            for (i, x) in v.iter().enumerate() {
                // Go's print puts a space between operands when neither is a string.
                let neither_string = i > 0
                    && !matches!(x, V::Str(_) | V::Html(_))
                    && !matches!(v[i - 1], V::Str(_) | V::Html(_));
                if i > 0 && (name == "println" || neither_string) {
                    out.push(' ');
                }
                out.push_str(&x.display());
            }
            if name == "println" {
                out.push('\n');
            }
            V::Str(out)
        }
        "printf" => {
            if v.is_empty() {
                return Err(err(pos, "wrong number of args for printf"));
            }
            V::Str(printf(pos, &s(pos, name, &v[0])?, &v[1..])?)
        }
        "eq" => {
            if v.len() < 2 {
                return Err(err(pos, "wrong number of args for eq: want at least 2"));
            }
            let mut any = false;
            for b in &v[1..] {
                if equal(pos, &v[0], b)? {
                    any = true;
                }
            }
            V::Bool(any)
        }
        "in" => {
            if v.is_empty() {
                return Err(err(pos, "wrong number of args for in"));
            }
            V::Bool(v[1..].iter().any(|b| equal(pos, &v[0], b).unwrap_or(false)))
        }
        "ne" => {
            want(pos, name, &v, 2)?;
            V::Bool(!equal(pos, &v[0], &v[1])?)
        }
        "lt" | "le" | "gt" | "ge" => {
            want(pos, name, &v, 2)?;
            let o = compare(pos, &v[0], &v[1])?;
            V::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "not" => {
            want(pos, name, &v, 1)?;
            V::Bool(!v[0].truthy())
        }
        "toHtml" => V::Html(decode_entities(
            &v.iter()
                .map(|x| s(pos, name, x))
                .collect::<R<Vec<_>>>()?
                .into_iter()
                .find(|x| !x.is_empty())
                .unwrap_or_default(),
        )),
        "date" => {
            want(pos, name, &v, 2)?;
            V::Str(go_date(
                &s(pos, name, &v[0])?,
                num(pos, name, &v[1])?,
                &env.time_zone,
            ))
        }
        "dateInZone" => {
            want(pos, name, &v, 3)?;
            V::Str(go_date(
                &s(pos, name, &v[0])?,
                num(pos, name, &v[1])?,
                &s(pos, name, &v[2])?,
            ))
        }
        "ago" => {
            want(pos, name, &v, 1)?;
            V::Str(go_duration(env.now.saturating_sub(num(pos, name, &v[0])?)))
        }
        "duration" => {
            want(pos, name, &v, 1)?;
            V::Str(go_duration(num(pos, name, &v[0])?))
        }
        "now" => V::Int(env.now),
        "unixEpoch" => V::Int(num(pos, name, &arg(0))?),
        "toDate" => {
            want(pos, name, &v, 2)?;
            let text = s(pos, name, &v[1])?;
            let layout = s(pos, name, &v[0])?;
            V::Int(
                parse_go_date(&layout, &text).ok_or_else(|| {
                    err(pos, format!("toDate: cannot parse {text:?} as {layout:?}"))
                })?,
            )
        }
        "alertLabels" | "joinAlertLabels" => {
            let key = s(pos, name, &arg(1))?;
            let alerts = match &v.first() {
                Some(V::Struct(m) | V::Map(m)) => {
                    list(pos, name, m.get("Alerts").unwrap_or(&V::Nil))?
                }
                _ => {
                    return Err(err(
                        pos,
                        format!("{name}: the first argument must be the root object ($)"),
                    ));
                }
            };
            let mut seen: Vec<String> = Vec::new();
            for a in alerts {
                if let V::Struct(m) | V::Map(m) = a
                    && let Some(V::Map(l) | V::Struct(l)) = m.get("Labels")
                    && let Some(x) = l.get(&key).and_then(V::as_str)
                    && !x.is_empty()
                    && !seen.iter().any(|y| y == x)
                {
                    seen.push(x.to_string());
                }
            }
            if name == "alertLabels" {
                V::List(seen.into_iter().map(V::Str).collect())
            } else {
                V::Str(seen.join(&s(pos, name, &arg(2))?))
            }
        }
        "jsonGet" => {
            want(pos, name, &v, 2)?;
            V::Str(json_get(&s(pos, name, &v[0])?, &s(pos, name, &v[1])?))
        }
        "imageSrcToURL" => {
            let src = s(pos, name, &arg(1))?;
            V::Str(
                if src.starts_with("http://") || src.starts_with("https://") {
                    src
                } else {
                    String::new()
                },
            )
        }
        // No IM image upload exists in this build, so the upload permission is always missing
        // and RSP-344 gives "".
        "transferImage" => V::str(""),
        "fireReason" => {
            let m = match v.first() {
                Some(V::Struct(m) | V::Map(m)) => m,
                _ => {
                    return Err(err(
                        pos,
                        "fireReason: the argument must be the root object ($)",
                    ));
                }
            };
            let get = |k: &str| m.get(k).map(V::display).unwrap_or_default();
            let assign_type = match m.get("AssignedTo") {
                Some(V::Struct(a) | V::Map(a)) => a.get("Type").map(V::display).unwrap_or_default(),
                _ => String::new(),
            };
            let repeat = match m.get("RepeatIndex") {
                Some(V::Int(i)) => *i,
                _ => 0,
            };
            V::Str(super::fire_reason(
                &get("NotifyReason"),
                repeat,
                &assign_type,
            ))
        }
        "colorSeverity" | "serverityToColor" => {
            let sev = s(pos, name, &arg(0))?;
            let c = match sev.as_str() {
                "Critical" => "#C80000",
                "Warning" => "#FF9900",
                "Info" => "#6C53B1",
                "Ok" => "#84CC16",
                _ => "",
            };
            V::Str(if name == "serverityToColor" || c.is_empty() {
                c.to_string()
            } else {
                format!("<font color=\"{c}\">{sev}</font>")
            })
        }
        "mustToPrettyJson" | "toPrettyJson" => V::Str(pretty_sorted(&arg(0).to_json())),
        "toJson" => V::Str(serde_json::to_string(&arg(0).to_json()).unwrap_or_default()),
        "default" => {
            want(pos, name, &v, 2)?;
            if v[1].truthy() {
                v[1].clone()
            } else {
                v[0].clone()
            }
        }
        "empty" => V::Bool(!arg(0).truthy()),
        "coalesce" => v.iter().find(|x| x.truthy()).cloned().unwrap_or(V::Nil),
        "ternary" => {
            want(pos, name, &v, 3)?;
            if v[2].truthy() {
                v[0].clone()
            } else {
                v[1].clone()
            }
        }
        "upper" => V::Str(s(pos, name, &arg(0))?.to_uppercase()),
        "lower" => V::Str(s(pos, name, &arg(0))?.to_lowercase()),
        "title" => V::Str(
            s(pos, name, &arg(0))?
                .split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "trim" => V::Str(s(pos, name, &arg(0))?.trim().to_string()),
        "nospace" => V::Str(
            s(pos, name, &arg(0))?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        ),
        "trimPrefix" => {
            let (p, x) = (s(pos, name, &arg(0))?, s(pos, name, &arg(1))?);
            V::Str(x.strip_prefix(p.as_str()).unwrap_or(&x).to_string())
        }
        "trimSuffix" => {
            let (p, x) = (s(pos, name, &arg(0))?, s(pos, name, &arg(1))?);
            V::Str(x.strip_suffix(p.as_str()).unwrap_or(&x).to_string())
        }
        "trimAll" => {
            let (p, x) = (s(pos, name, &arg(0))?, s(pos, name, &arg(1))?);
            V::Str(x.trim_matches(|c| p.contains(c)).to_string())
        }
        "contains" => V::Bool(s(pos, name, &arg(1))?.contains(&s(pos, name, &arg(0))?)),
        "hasPrefix" => V::Bool(s(pos, name, &arg(1))?.starts_with(&s(pos, name, &arg(0))?)),
        "hasSuffix" => V::Bool(s(pos, name, &arg(1))?.ends_with(&s(pos, name, &arg(0))?)),
        "replace" => {
            want(pos, name, &v, 3)?;
            V::Str(s(pos, name, &v[2])?.replace(&s(pos, name, &v[0])?, &s(pos, name, &v[1])?))
        }
        "repeat" => {
            let n = num(pos, name, &arg(0))?.max(0) as usize;
            let x = s(pos, name, &arg(1))?;
            if x.len().saturating_mul(n) > 4 << 20 {
                return Err(err(pos, "repeat: result too large"));
            }
            V::Str(x.repeat(n))
        }
        "substr" => {
            want(pos, name, &v, 3)?;
            let x: Vec<char> = s(pos, name, &v[2])?.chars().collect();
            let st = num(pos, name, &v[0])?.clamp(0, x.len() as i64) as usize;
            let en = num(pos, name, &v[1])?;
            let en = if en < 0 {
                x.len()
            } else {
                (en as usize).min(x.len())
            };
            V::Str(x[st.min(en)..en].iter().collect())
        }
        "trunc" => {
            let n = num(pos, name, &arg(0))?;
            let x: Vec<char> = s(pos, name, &arg(1))?.chars().collect();
            let k = n.unsigned_abs() as usize;
            V::Str(if k >= x.len() {
                x.iter().collect()
            } else if n >= 0 {
                x[..k].iter().collect()
            } else {
                x[x.len() - k..].iter().collect()
            })
        }
        "abbrev" => {
            let n = num(pos, name, &arg(0))?.max(0) as usize;
            let x = s(pos, name, &arg(1))?;
            V::Str(if x.chars().count() <= n || n < 3 {
                x
            } else {
                x.chars().take(n - 3).collect::<String>() + "..."
            })
        }
        "quote" => V::Str(
            v.iter()
                .map(|x| format!("{:?}", x.display()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => V::Str(
            v.iter()
                .map(|x| format!("'{}'", x.display()))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "split" => {
            let parts: Vec<String> = s(pos, name, &arg(1))?
                .split(&s(pos, name, &arg(0))?)
                .map(str::to_string)
                .collect();
            V::Map(
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("_{i}"), V::Str(p)))
                    .collect(),
            )
        }
        "splitList" => V::List(
            s(pos, name, &arg(1))?
                .split(&s(pos, name, &arg(0))?)
                .map(V::str)
                .collect(),
        ),
        "join" => {
            let sep = s(pos, name, &arg(0))?;
            V::Str(
                list(pos, name, &arg(1))?
                    .iter()
                    .map(V::display)
                    .collect::<Vec<_>>()
                    .join(&sep),
            )
        }
        "list" => V::List(v),
        "dict" => {
            let mut m = BTreeMap::new();
            for pair in v.chunks(2) {
                m.insert(
                    s(pos, name, &pair[0])?,
                    pair.get(1).cloned().unwrap_or_else(|| V::str("")),
                );
            }
            V::Map(m)
        }
        "keys" => {
            let mut out = Vec::new();
            for x in &v {
                if let V::Map(m) | V::Struct(m) = x {
                    out.extend(m.keys().cloned().map(V::Str));
                }
            }
            V::List(out)
        }
        "sortAlpha" => {
            let mut l: Vec<String> = list(pos, name, &arg(0))?.iter().map(V::display).collect();
            l.sort();
            V::List(l.into_iter().map(V::Str).collect())
        }
        "uniq" => {
            let mut out: Vec<V> = Vec::new();
            for x in list(pos, name, &arg(0))? {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
            V::List(out)
        }
        "has" => V::Bool(list(pos, name, &arg(1))?.contains(&arg(0))),
        "first" => list(pos, name, &arg(0))?.first().cloned().unwrap_or(V::Nil),
        "last" => list(pos, name, &arg(0))?.last().cloned().unwrap_or(V::Nil),
        "toString" => V::Str(arg(0).display()),
        "atoi" => V::Int(s(pos, name, &arg(0))?.trim().parse::<i64>().unwrap_or(0)),
        "int" | "int64" => V::Int(num(pos, name, &arg(0)).unwrap_or(0)),
        "float64" => V::Float(fnum(pos, name, &arg(0)).unwrap_or(0.0)),
        "add" | "sub" | "mul" | "div" | "mod" | "max" | "min" => {
            if v.len() < 2 && !matches!(name, "add" | "mul" | "max" | "min") {
                return Err(err(pos, format!("wrong number of args for {name}: want 2")));
            }
            let mut it = v.iter();
            let mut acc = num(pos, name, it.next().unwrap_or(&V::Int(0)))?;
            for x in it {
                let b = num(pos, name, x)?;
                acc = match name {
                    "add" => acc.wrapping_add(b),
                    "sub" => acc.wrapping_sub(b),
                    "mul" => acc.wrapping_mul(b),
                    "div" | "mod" if b == 0 => return Err(err(pos, "integer divide by zero")),
                    "div" => acc.wrapping_div(b),
                    "mod" => acc.wrapping_rem(b),
                    "max" => acc.max(b),
                    _ => acc.min(b),
                };
            }
            V::Int(acc)
        }
        "b64enc" => V::Str(b64enc(s(pos, name, &arg(0))?.as_bytes())),
        "b64dec" => V::Str(
            b64dec(&s(pos, name, &arg(0))?)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
        ),
        "regexMatch" | "regexFind" | "regexReplaceAll" => {
            let re = regex::Regex::new(&s(pos, name, &arg(0))?)
                .map_err(|e| err(pos, format!("{name}: {e}")))?;
            let x = s(pos, name, &arg(1))?;
            match name {
                "regexMatch" => V::Bool(re.is_match(&x)),
                "regexFind" => V::Str(
                    re.find(&x)
                        .map(|m| m.as_str().to_string())
                        .unwrap_or_default(),
                ),
                _ => V::Str(
                    re.replace_all(&x, s(pos, name, &arg(2))?.as_str())
                        .into_owned(),
                ),
            }
        }
        "indent" | "nindent" => {
            let pad = " ".repeat(num(pos, name, &arg(0))?.clamp(0, 1000) as usize);
            let body = s(pos, name, &arg(1))?
                .lines()
                .map(|l| format!("{pad}{l}"))
                .collect::<Vec<_>>()
                .join("\n");
            V::Str(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        other => return Err(err(pos, format!("function {other:?} not defined"))),
    })
}

fn printf(pos: usize, fmt: &str, args: &[V]) -> R<String> {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '.' || d == '-' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = it.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let (width, prec) = match spec.split_once('.') {
            Some((w, p)) => (w.to_string(), p.parse::<usize>().ok()),
            None => (spec.clone(), None),
        };
        let body = match verb {
            's' | 'v' => a.display(),
            'd' => match a {
                V::Int(i) => i.to_string(),
                other => format!("%!d({})", other.display()),
            },
            'q' => format!("{:?}", a.display()),
            'f' => format!("{:.*}", prec.unwrap_or(6), fnum(pos, "printf", a)?),
            other => {
                return Err(err(
                    pos,
                    format!("printf: verb %{other} is not supported (use %s %d %v %q %f)"),
                ));
            }
        };
        let left = width.starts_with('-');
        let w: usize = width.trim_start_matches('-').parse().unwrap_or(0);
        let n = body.chars().count();
        if n < w {
            let pad = " ".repeat(w - n);
            if left {
                out.push_str(&body);
                out.push_str(&pad);
            } else {
                out.push_str(&pad);
                out.push_str(&body);
            }
        } else {
            out.push_str(&body);
        }
    }
    Ok(out)
}

/// `toHtml` decodes entities so text that arrived escaped shows as intended (RSP-342).
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let dec = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match dec {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Go duration form, whole seconds (`45s`, `3m2s`, `1h2m3s`).
pub fn go_duration(secs: i64) -> String {
    let neg = secs < 0;
    let s = secs.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let body = if h > 0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    };
    if neg { format!("-{body}") } else { body }
}

const GO_TOKENS: &[(&str, &str)] = &[
    ("January", "%B"),
    ("Monday", "%A"),
    ("2006", "%Y"),
    ("-0700", "%z"),
    ("MST", "%Z"),
    ("Jan", "%b"),
    ("Mon", "%a"),
    ("01", "%m"),
    ("02", "%d"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("06", "%y"),
    ("PM", "%p"),
];

/// Go reference layout → strftime.
fn go_layout(layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (go, sf) in GO_TOKENS {
            if let Some(r) = rest.strip_prefix(go) {
                out.push_str(sf);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `date`: ts in the account time zone, Go layout (RSP-344).
fn go_date(layout: &str, ts: i64, tz: &str) -> String {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC);
    match jiff::Timestamp::from_second(ts) {
        Ok(t) => t
            .to_zoned_datetime(zone)
            .strftime(&go_layout(layout))
            .to_string(),
        Err(_) => String::new(),
    }
}

fn parse_go_date(layout: &str, text: &str) -> Option<i64> {
    let f = go_layout(layout);
    if let Ok(z) = jiff::ZonedDateTime::strptime(&f, text) {
        return Some(z.timestamp().as_second());
    }
    jiff::civil::DateTime::strptime(&f, text)
        .ok()
        .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_second())
}

/// gjson-style dotted path (`a.b.0.c`; `\.` escapes a dot).
fn json_get(s: &str, path: &str) -> String {
    let Ok(mut cur) = serde_json::from_str::<serde_json::Value>(s) else {
        return String::new();
    };
    let mut parts = Vec::new();
    let mut buf = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => buf.extend(chars.next()),
            '.' => parts.push(std::mem::take(&mut buf)),
            c => buf.push(c),
        }
    }
    parts.push(buf);
    for p in parts {
        cur = match cur {
            serde_json::Value::Object(mut o) => match o.remove(&p) {
                Some(x) => x,
                None => return String::new(),
            },
            serde_json::Value::Array(mut a) => {
                match p.parse::<usize>().ok().filter(|i| *i < a.len()) {
                    Some(i) => a.swap_remove(i),
                    None => return String::new(),
                }
            }
            _ => return String::new(),
        };
    }
    match cur {
        serde_json::Value::String(x) => x,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn sort_json(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => {
            let sorted: BTreeMap<String, serde_json::Value> =
                o.iter().map(|(k, x)| (k.clone(), sort_json(x))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort_json).collect()),
        o => o.clone(),
    }
}

fn pretty_sorted(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(&sort_json(v)).unwrap_or_default()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64enc(b: &[u8]) -> String {
    let mut o = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                o.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

fn b64dec(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|x| *x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
