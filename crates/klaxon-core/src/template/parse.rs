//! Parsing the Go `text/template` subset of RSP-341 into a tree. Every error carries the byte
//! offset of the action it is about, so the save error can name the line and column (RSP-345).

use super::TemplateError;
use super::funcs::is_known_func;

/// Nesting bound for blocks and parentheses, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Print(Pipe),
    /// `(condition, body)` for `if` and each `else if`, then the `else` body.
    If(Vec<(Pipe, Vec<Node>)>, Vec<Node>),
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
    With {
        pipe: Pipe,
        body: Vec<Node>,
        els: Vec<Node>,
    },
}

#[derive(Debug, Clone)]
pub struct Pipe {
    /// Byte offset of the action in the source, for execution errors.
    pub pos: usize,
    /// `$a, $b :=` (declare) or `$a =` (assign).
    pub vars: Vec<String>,
    pub declare: bool,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Func(&'static str),
    Sub(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    /// `)` immediately followed by `.Field` chains.
    RParen(Vec<String>),
    Bar,
    Declare,
    Assign,
    Comma,
}

fn err(pos: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError::at(pos, msg)
}

/// Cut the source into text and actions, applying trim markers and dropping comments.
fn split(src: &str) -> Result<Vec<(usize, Option<String>, String)>, TemplateError> {
    // (offset, None, text) for text; (offset, Some(()), action body) for actions.
    let mut out: Vec<(usize, Option<String>, String)> = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    while i < src.len() {
        let rest = &src[i..];
        let Some(open) = rest.find("{{") else {
            let mut t = rest;
            if trim_next {
                t = t.trim_start();
            }
            out.push((i, None, t.to_string()));
            break;
        };
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let start = i + open;
        let mut body_start = start + 2;
        let bytes = src.as_bytes();
        let trim_left = bytes.get(body_start) == Some(&b'-')
            && bytes
                .get(body_start + 1)
                .is_some_and(|b| b.is_ascii_whitespace());
        if trim_left {
            text = text.trim_end();
            body_start += 1;
        }
        out.push((i, None, text.to_string()));
        // Find the closing `}}` outside string literals.
        let mut j = body_start;
        let mut quote: Option<u8> = None;
        let close = loop {
            let Some(&b) = bytes.get(j) else {
                return Err(err(start, "unclosed action"));
            };
            match quote {
                Some(q) => {
                    if b == b'\\' && q == b'"' {
                        j += 1;
                    } else if b == q {
                        quote = None;
                    }
                }
                None => {
                    if b == b'"' || b == b'`' || b == b'\'' {
                        quote = Some(b);
                    } else if b == b'}' && bytes.get(j + 1) == Some(&b'}') {
                        break j;
                    }
                }
            }
            j += 1;
        };
        let mut body_end = close;
        trim_next = false;
        if close > body_start
            && bytes[close - 1] == b'-'
            && close >= 2
            && bytes[close - 2].is_ascii_whitespace()
        {
            trim_next = true;
            body_end = close - 1;
        }
        let body = &src[body_start..body_end];
        let trimmed = body.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(err(start, "unclosed comment"));
            }
        } else {
            out.push((start, Some(String::new()), body.to_string()));
        }
        i = close + 2;
    }
    Ok(out)
}

fn path_after(s: &[u8], mut k: usize) -> (Vec<String>, usize) {
    let mut path = Vec::new();
    while s.get(k) == Some(&b'.') {
        let st = k + 1;
        let mut e = st;
        while s
            .get(e)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            e += 1;
        }
        if e == st {
            break;
        }
        path.push(String::from_utf8_lossy(&s[st..e]).into_owned());
        k = e;
    }
    (path, k)
}

fn lex(body: &str, pos: usize) -> Result<Vec<Tok>, TemplateError> {
    let s = body.as_bytes();
    let mut toks = Vec::new();
    let mut k = 0;
    while k < s.len() {
        let b = s[k];
        let here = pos + 2 + k;
        match b {
            b if b.is_ascii_whitespace() => k += 1,
            b'(' => {
                toks.push(Tok::LParen);
                k += 1;
            }
            b')' => {
                let (path, e) = path_after(s, k + 1);
                toks.push(Tok::RParen(path));
                k = e;
            }
            b'|' => {
                toks.push(Tok::Bar);
                k += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                k += 1;
            }
            b':' if s.get(k + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                k += 2;
            }
            b'=' => {
                toks.push(Tok::Assign);
                k += 1;
            }
            b'.' => {
                let (path, e) = path_after(s, k);
                if path.is_empty() {
                    toks.push(Tok::Dot);
                    k += 1;
                } else {
                    toks.push(Tok::Field(path));
                    k = e;
                }
            }
            b'$' => {
                let mut e = k + 1;
                while s
                    .get(e)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    e += 1;
                }
                let name = body[k..e].to_string();
                let (path, e2) = path_after(s, e);
                toks.push(Tok::Var(name, path));
                k = e2;
            }
            b'"' => {
                let mut out = String::new();
                let mut chars = body[k + 1..].char_indices();
                let mut closed = None;
                while let Some((ci, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = Some(k + 1 + ci + 1);
                            break;
                        }
                        '\\' => match chars.next().map(|x| x.1) {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some('r') => out.push('\r'),
                            Some('\\') => out.push('\\'),
                            Some('"') => out.push('"'),
                            Some(o) => {
                                return Err(err(here, format!("unknown escape sequence \\{o}")));
                            }
                            None => break,
                        },
                        c => out.push(c),
                    }
                }
                let Some(e) = closed else {
                    return Err(err(here, "unterminated quoted string"));
                };
                toks.push(Tok::Str(out));
                k = e;
            }
            b'`' => {
                let Some(e) = body[k + 1..].find('`') else {
                    return Err(err(here, "unterminated raw quoted string"));
                };
                toks.push(Tok::Str(body[k + 1..k + 1 + e].to_string()));
                k = k + e + 2;
            }
            b'0'..=b'9' | b'-' | b'+' => {
                let mut e = k + 1;
                while s
                    .get(e)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'_')
                {
                    e += 1;
                }
                let lit = &body[k..e];
                if let Ok(i) = lit.parse::<i64>() {
                    toks.push(Tok::Int(i));
                } else if let Ok(f) = lit.parse::<f64>() {
                    toks.push(Tok::Float(f));
                } else {
                    return Err(err(here, format!("bad number syntax: {lit:?}")));
                }
                k = e;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let mut e = k + 1;
                while s
                    .get(e)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                {
                    e += 1;
                }
                toks.push(Tok::Ident(body[k..e].to_string()));
                k = e;
            }
            _ => {
                let c = body[k..].chars().next().unwrap_or('?');
                return Err(err(here, format!("unexpected {c:?} in action")));
            }
        }
    }
    Ok(toks)
}

struct Parser {
    items: std::vec::IntoIter<(usize, Option<String>, String)>,
}

enum Stop {
    Eof,
    End,
    Else(usize, Vec<Tok>),
}

pub fn parse(src: &str) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser {
        items: split(src)?.into_iter(),
    };
    let (nodes, stop) = p.list(0)?;
    match stop {
        Stop::Eof => Ok(nodes),
        Stop::End => Err(err(0, "unexpected {{end}}")),
        Stop::Else(pos, _) => Err(err(pos, "unexpected {{else}}")),
    }
}

impl Parser {
    fn list(&mut self, depth: usize) -> Result<(Vec<Node>, Stop), TemplateError> {
        if depth > MAX_DEPTH {
            return Err(err(0, "template nested too deeply"));
        }
        let mut nodes = Vec::new();
        while let Some((pos, action, body)) = self.items.next() {
            if action.is_none() {
                if !body.is_empty() {
                    nodes.push(Node::Text(body));
                }
                continue;
            }
            let toks = lex(&body, pos)?;
            let Some(first) = toks.first().cloned() else {
                return Err(err(pos, "missing value for command"));
            };
            let rest = toks[1..].to_vec();
            match first {
                Tok::Ident(ref kw) if kw == "end" => {
                    if !rest.is_empty() {
                        return Err(err(pos, "unexpected words after end"));
                    }
                    return Ok((nodes, Stop::End));
                }
                Tok::Ident(ref kw) if kw == "else" => return Ok((nodes, Stop::Else(pos, rest))),
                Tok::Ident(ref kw) if kw == "if" => {
                    nodes.push(self.if_chain(pos, rest, depth)?);
                }
                Tok::Ident(ref kw) if kw == "range" || kw == "with" => {
                    let pipe = pipeline(pos, &rest, kw == "range", depth)?;
                    let (body, stop) = self.list(depth + 1)?;
                    let els = match stop {
                        Stop::End => Vec::new(),
                        Stop::Else(epos, etoks) => {
                            if !etoks.is_empty() {
                                return Err(err(
                                    epos,
                                    format!("unexpected words after else in {kw}"),
                                ));
                            }
                            let (els, stop2) = self.list(depth + 1)?;
                            if !matches!(stop2, Stop::End) {
                                return Err(err(
                                    pos,
                                    format!("unclosed {kw}: missing {{{{end}}}}"),
                                ));
                            }
                            els
                        }
                        Stop::Eof => {
                            return Err(err(pos, format!("unclosed {kw}: missing {{{{end}}}}")));
                        }
                    };
                    nodes.push(if kw == "range" {
                        Node::Range { pipe, body, els }
                    } else {
                        Node::With { pipe, body, els }
                    });
                }
                Tok::Ident(ref kw)
                    if matches!(
                        kw.as_str(),
                        "define" | "template" | "block" | "break" | "continue"
                    ) =>
                {
                    return Err(err(pos, format!("{kw} is not supported")));
                }
                _ => nodes.push(Node::Print(pipeline(pos, &toks, false, depth)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn if_chain(
        &mut self,
        pos: usize,
        cond: Vec<Tok>,
        depth: usize,
    ) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut cond_pos = pos;
        let mut cond = cond;
        loop {
            let pipe = pipeline(cond_pos, &cond, false, depth)?;
            let (body, stop) = self.list(depth + 1)?;
            branches.push((pipe, body));
            match stop {
                Stop::End => return Ok(Node::If(branches, Vec::new())),
                Stop::Eof => return Err(err(pos, "unclosed if: missing {{end}}")),
                Stop::Else(epos, etoks) => {
                    if etoks.is_empty() {
                        let (els, stop2) = self.list(depth + 1)?;
                        if !matches!(stop2, Stop::End) {
                            return Err(err(pos, "unclosed if: missing {{end}}"));
                        }
                        return Ok(Node::If(branches, els));
                    }
                    if etoks.first() != Some(&Tok::Ident("if".to_string())) {
                        return Err(err(epos, "expected else or else if"));
                    }
                    cond = etoks[1..].to_vec();
                    cond_pos = epos;
                }
            }
        }
    }
}

fn pipeline(pos: usize, toks: &[Tok], range: bool, depth: usize) -> Result<Pipe, TemplateError> {
    if depth > MAX_DEPTH {
        return Err(err(pos, "template nested too deeply"));
    }
    let mut vars = Vec::new();
    let mut declare = false;
    let mut k = 0;
    // `$x :=`, `$x =`, or in range `$i, $v :=`.
    let decl_end = toks
        .iter()
        .position(|t| matches!(t, Tok::Declare | Tok::Assign));
    if let Some(d) = decl_end {
        let head = &toks[..d];
        let ok = match head {
            [Tok::Var(a, p)] if p.is_empty() => {
                vars.push(a.clone());
                true
            }
            [Tok::Var(a, p1), Tok::Comma, Tok::Var(b, p2)]
                if range && p1.is_empty() && p2.is_empty() =>
            {
                vars.push(a.clone());
                vars.push(b.clone());
                true
            }
            _ => false,
        };
        if !ok {
            return Err(err(pos, "bad variable declaration"));
        }
        declare = matches!(toks[d], Tok::Declare);
        if !declare && vars.len() > 1 {
            return Err(err(pos, "bad variable assignment"));
        }
        k = d + 1;
    }
    let (cmds, used) = commands(pos, &toks[k..], depth)?;
    if k + used != toks.len() {
        return Err(err(pos, "unexpected ) in command"));
    }
    if cmds.is_empty() {
        return Err(err(pos, "missing value for command"));
    }
    Ok(Pipe {
        pos,
        vars,
        declare,
        cmds,
    })
}

/// Parse commands separated by `|` until the end or an unmatched `)`; returns how many tokens
/// were used.
fn commands(
    pos: usize,
    toks: &[Tok],
    depth: usize,
) -> Result<(Vec<Vec<Arg>>, usize), TemplateError> {
    if depth > MAX_DEPTH {
        return Err(err(pos, "parentheses nested too deeply"));
    }
    let mut cmds = Vec::new();
    let mut cur: Vec<Arg> = Vec::new();
    let mut k = 0;
    while k < toks.len() {
        let t = &toks[k];
        match t {
            Tok::Bar => {
                if cur.is_empty() {
                    return Err(err(pos, "missing command before |"));
                }
                cmds.push(std::mem::take(&mut cur));
                k += 1;
                continue;
            }
            Tok::RParen(_) => break,
            Tok::LParen => {
                let (sub, used) = commands(pos, &toks[k + 1..], depth + 1)?;
                let close = k + 1 + used;
                let Some(Tok::RParen(path)) = toks.get(close) else {
                    return Err(err(pos, "unclosed left paren"));
                };
                if sub.is_empty() {
                    return Err(err(pos, "missing value in parentheses"));
                }
                let pipe = Pipe {
                    pos,
                    vars: Vec::new(),
                    declare: false,
                    cmds: sub,
                };
                cur.push(Arg::Sub(Box::new(pipe), path.clone()));
                k = close + 1;
                continue;
            }
            Tok::Dot => cur.push(Arg::Dot),
            Tok::Field(p) => cur.push(Arg::Field(p.clone())),
            Tok::Var(n, p) => cur.push(Arg::Var(n.clone(), p.clone())),
            Tok::Str(s) => cur.push(Arg::Str(s.clone())),
            Tok::Int(i) => cur.push(Arg::Int(*i)),
            Tok::Float(f) => cur.push(Arg::Float(*f)),
            Tok::Ident(id) => match id.as_str() {
                "true" => cur.push(Arg::Bool(true)),
                "false" => cur.push(Arg::Bool(false)),
                "nil" => cur.push(Arg::Nil),
                name => match is_known_func(name) {
                    Some(f) => cur.push(Arg::Func(f)),
                    None => return Err(err(pos, format!("function {name:?} not defined"))),
                },
            },
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return Err(err(pos, "unexpected declaration in command"));
            }
        }
        k += 1;
    }
    if !cur.is_empty() {
        cmds.push(cur);
    } else if !cmds.is_empty() {
        return Err(err(pos, "missing command after |"));
    }
    Ok((cmds, k))
}
