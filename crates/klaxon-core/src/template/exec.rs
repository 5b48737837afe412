//! Executing a parsed template over a root value (RSP-341, RSP-342).

use super::funcs::call;
use super::parse::{Arg, Node, Pipe};
use super::value::V;
use super::{Env, TemplateError};

/// Output bound while executing, so a loop cannot build an unbounded string; the channel
/// limits of RSP-348 are far below it.
const OUTPUT_CAP: usize = 4 << 20;
/// Bound on range iterations in total, for the same reason.
const MAX_STEPS: usize = 200_000;

pub struct Exec<'a> {
    pub env: &'a Env,
    vars: Vec<(String, V)>,
    out: String,
    steps: usize,
}

type R<T> = Result<T, TemplateError>;

fn err(pos: usize, msg: impl Into<String>) -> TemplateError {
    TemplateError::at(pos, msg)
}

pub fn run(nodes: &[Node], root: &V, env: &Env) -> R<String> {
    let mut ex = Exec {
        env,
        vars: vec![("$".to_string(), root.clone())],
        out: String::new(),
        steps: 0,
    };
    ex.list(nodes, root)?;
    Ok(ex.out)
}

impl Exec<'_> {
    fn list(&mut self, nodes: &[Node], dot: &V) -> R<()> {
        for n in nodes {
            self.node(n, dot)?;
        }
        Ok(())
    }

    fn scoped(&mut self, nodes: &[Node], dot: &V) -> R<()> {
        let mark = self.vars.len();
        let r = self.list(nodes, dot);
        self.vars.truncate(mark);
        r
    }

    fn emit(&mut self, pos: usize, s: &str) -> R<()> {
        if self.out.len() + s.len() > OUTPUT_CAP {
            return Err(err(pos, "output too large"));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn node(&mut self, n: &Node, dot: &V) -> R<()> {
        match n {
            Node::Text(t) => self.emit(0, t),
            Node::Print(p) => {
                let v = self.pipe(p, dot)?;
                if !p.vars.is_empty() {
                    return Ok(()); // a declaration prints nothing
                }
                let s = match &v {
                    V::Html(h) => h.clone(),
                    other if self.env.escape_html => escape_html(&other.display()),
                    other => other.display(),
                };
                self.emit(p.pos, &s)
            }
            Node::If(branches, els) => {
                for (cond, body) in branches {
                    let mark = self.vars.len();
                    let c = self.pipe(cond, dot)?;
                    if c.truthy() {
                        let r = self.list(body, dot);
                        self.vars.truncate(mark);
                        return r;
                    }
                    self.vars.truncate(mark);
                }
                self.scoped(els, dot)
            }
            Node::With { pipe, body, els } => {
                let mark = self.vars.len();
                let v = self.pipe(pipe, dot)?;
                let r = if v.truthy() {
                    self.list(body, &v)
                } else {
                    self.list(els, dot)
                };
                self.vars.truncate(mark);
                r
            }
            Node::Range { pipe, body, els } => {
                let mark = self.vars.len();
                let plain = Pipe {
                    vars: Vec::new(),
                    declare: false,
                    ..pipe.clone()
                };
                let v = self.pipe(&plain, dot)?;
                let items: Vec<(V, V)> = match v {
                    V::List(l) => l
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| (V::Int(i as i64), x))
                        .collect(),
                    V::Map(m) | V::Struct(m) => {
                        m.into_iter().map(|(k, x)| (V::Str(k), x)).collect()
                    }
                    V::Int(n) => (0..n.max(0)).map(|i| (V::Int(i), V::Int(i))).collect(),
                    // A missing map key is "" (RSP-341): ranging over it runs the else branch.
                    V::Nil => Vec::new(),
                    V::Str(s) if s.is_empty() => Vec::new(),
                    other => {
                        return Err(err(
                            pipe.pos,
                            format!("range can't iterate over {}", other.kind()),
                        ));
                    }
                };
                if items.is_empty() {
                    return self.scoped(els, dot);
                }
                for (k, x) in items {
                    self.steps += 1;
                    if self.steps > MAX_STEPS {
                        return Err(err(pipe.pos, "too many range iterations"));
                    }
                    let inner = self.vars.len();
                    match pipe.vars.as_slice() {
                        [v] => self.vars.push((v.clone(), x.clone())),
                        [i, v] => {
                            self.vars.push((i.clone(), k));
                            self.vars.push((v.clone(), x.clone()));
                        }
                        _ => {}
                    }
                    let r = self.list(body, &x);
                    self.vars.truncate(inner);
                    r?;
                }
                self.vars.truncate(mark);
                Ok(())
            }
        }
    }

    pub fn pipe(&mut self, p: &Pipe, dot: &V) -> R<V> {
        let mut prev: Option<V> = None;
        for cmd in &p.cmds {
            prev = Some(self.cmd(p.pos, cmd, dot, prev)?);
        }
        let v = prev.unwrap_or(V::Nil);
        if let Some(name) = p.vars.first() {
            if p.declare {
                self.vars.push((name.clone(), v.clone()));
            } else {
                let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) else {
                    return Err(err(p.pos, format!("undefined variable: {name}")));
                };
                slot.1 = v.clone();
            }
        }
        Ok(v)
    }

    fn cmd(&mut self, pos: usize, cmd: &[Arg], dot: &V, prev: Option<V>) -> R<V> {
        match cmd.first() {
            Some(Arg::Func(name)) => call(self, pos, name, &cmd[1..], dot, prev),
            Some(first) => {
                if cmd.len() > 1 || prev.is_some() {
                    return Err(err(pos, "can't give argument to non-function"));
                }
                self.arg(pos, first, dot)
            }
            None => Err(err(pos, "empty command")),
        }
    }

    pub fn arg(&mut self, pos: usize, a: &Arg, dot: &V) -> R<V> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(path) => walk(pos, dot, path),
            Arg::Var(name, path) => {
                let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(err(pos, format!("undefined variable: {name}")));
                };
                let v = v.clone();
                walk(pos, &v, path)
            }
            Arg::Str(s) => Ok(V::Str(s.clone())),
            Arg::Int(i) => Ok(V::Int(*i)),
            Arg::Float(f) => Ok(V::Float(*f)),
            Arg::Bool(b) => Ok(V::Bool(*b)),
            Arg::Nil => Ok(V::Nil),
            Arg::Func(name) => call(self, pos, name, &[], dot, None),
            Arg::Sub(p, path) => {
                let v = self.pipe(p, dot)?;
                walk(pos, &v, path)
            }
        }
    }
}

/// Field access: a struct field must exist, a map key may be missing (RSP-341).
fn walk(pos: usize, v: &V, path: &[String]) -> R<V> {
    let mut cur = v.clone();
    for name in path {
        cur = match cur {
            V::Struct(mut m) => match m.remove(name) {
                Some(x) => x,
                None => return Err(err(pos, format!("can't evaluate field {name}"))),
            },
            V::Map(mut m) => m.remove(name).unwrap_or_else(|| V::str("")),
            V::Nil => return Err(err(pos, format!("nil pointer evaluating .{name}"))),
            other => {
                return Err(err(
                    pos,
                    format!("can't evaluate field {name} in type {}", other.kind()),
                ));
            }
        };
    }
    Ok(cur)
}

/// The email channel's escaping (RSP-342).
pub fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            '+' => o.push_str("&#43;"),
            '\0' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}
