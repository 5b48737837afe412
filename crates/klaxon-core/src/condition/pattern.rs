//! Value pattern kinds (ingest.md §4.3): how one value is classified and what it matches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use regex::{Regex, RegexBuilder};

use super::error::Problem;

const NUM_PREFIX: &str = "num:";
const CIDR_PREFIX: &str = "cidr:";

/// Compiled-size budget per regular expression, RE2's default memory budget (8 MiB). Perl
/// classes are Unicode-aware here (`\w{50}` needs a few MiB), so much less would refuse
/// ordinary expressions; the budget still refuses blow-ups such as `\w{1000}{1000}`.
const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// One compiled value of a condition.
#[derive(Debug, Clone)]
pub(super) enum Pattern {
    /// `/…/`: searched anywhere in the subject (unanchored).
    Regex(Regex),
    /// `num:<op>:<number>`.
    Numeric(Comparison, f64),
    /// `cidr:<network>`.
    Cidr(Network),
    /// Contains `*` or `?`: compiled to an anchored regular expression, which keeps matching
    /// linear in the subject whatever the number of stars.
    Wildcard(Regex),
    Exact(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Comparison {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Pattern {
    /// Classify `value` by the first rule of §4.3 that applies. `cidr_and_num` says whether
    /// the context gives `cidr:` and `num:` their meaning (§4.2); where it does, a malformed
    /// one is an error rather than text (§4.5).
    pub(super) fn compile(value: &str, cidr_and_num: bool) -> Result<Pattern, Problem> {
        if let Some(expr) = regex_body(value) {
            return compile_regex(expr)
                .map(Pattern::Regex)
                .map_err(Problem::InvalidRegex);
        }
        if cidr_and_num {
            if let Some(rest) = value.strip_prefix(NUM_PREFIX) {
                let (cmp, bound) = parse_numeric(rest).ok_or(Problem::InvalidNumeric)?;
                return Ok(Pattern::Numeric(cmp, bound));
            }
            if let Some(rest) = value.strip_prefix(CIDR_PREFIX) {
                return Network::parse(rest)
                    .map(Pattern::Cidr)
                    .ok_or(Problem::InvalidCidr);
            }
        }
        if is_wildcard(value) {
            return compile_wildcard(value)
                .map(Pattern::Wildcard)
                .map_err(Problem::WildcardTooComplex);
        }
        Ok(Pattern::Exact(value.to_owned()))
    }

    /// Whether the pattern matches a present (non-empty) subject. Absent subjects never
    /// reach this: the caller fails every pattern on them (§4.4).
    pub(super) fn matches(&self, subject: &str) -> bool {
        match self {
            Pattern::Regex(re) | Pattern::Wildcard(re) => re.is_match(subject),
            Pattern::Numeric(cmp, bound) => {
                parse_decimal(subject.trim()).is_some_and(|n| cmp.holds(n, *bound))
            }
            Pattern::Cidr(net) => parse_host(subject).is_some_and(|ip| net.contains(ip)),
            Pattern::Exact(text) => subject == text,
        }
    }
}

/// Whether `value` would be read as anything but exact text in some context: used to write
/// exact values safely (see [`super::exact_value`]).
pub(super) fn is_special(value: &str) -> bool {
    regex_body(value).is_some()
        || is_wildcard(value)
        || value.starts_with(NUM_PREFIX)
        || value.starts_with(CIDR_PREFIX)
}

/// Whether `value` is a `cidr:`/`num:` value that is plain text where those are inactive.
pub(super) fn has_inactive_prefix(value: &str) -> bool {
    regex_body(value).is_none() && (value.starts_with(NUM_PREFIX) || value.starts_with(CIDR_PREFIX))
}

// --- regex -------------------------------------------------------------------------------

/// The expression between the slashes of a `/…/` value (length ≥ 2, so `/` alone is text and
/// `//` is the empty expression).
fn regex_body(value: &str) -> Option<&str> {
    if value.len() >= 2 {
        value.strip_prefix('/')?.strip_suffix('/')
    } else {
        None
    }
}

fn compile_regex(expr: &str) -> Result<Regex, String> {
    RegexBuilder::new(expr)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| short_regex_error(&e))
}

/// The regex crate's syntax errors span several lines (the pattern, a caret line, then
/// `error: …`); an API message wants the one line that says what is wrong.
fn short_regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text);
    last.trim().trim_start_matches("error: ").to_owned()
}

// --- wildcard ----------------------------------------------------------------------------

fn is_wildcard(value: &str) -> bool {
    value.contains(['*', '?'])
}

/// `*` = any run of characters (possibly empty), `?` = exactly one character, everything else
/// literal (no escaping), whole string, case-sensitive. `(?s)` lets both cross newlines, which
/// descriptions contain.
fn compile_wildcard(value: &str) -> Result<Regex, String> {
    let mut expr = String::from(r"(?s)\A");
    let mut literal = String::new();
    let mut previous_star = false;
    for ch in value.chars() {
        match ch {
            '*' | '?' => {
                expr.push_str(&regex::escape(&literal));
                literal.clear();
                // `**` means the same as `*`; collapsing keeps the program small.
                if ch == '?' {
                    expr.push('.');
                } else if !previous_star {
                    expr.push_str(".*");
                }
            }
            other => literal.push(other),
        }
        previous_star = ch == '*';
    }
    expr.push_str(&regex::escape(&literal));
    expr.push_str(r"\z");
    RegexBuilder::new(&expr)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| short_regex_error(&e))
}

// --- numeric -----------------------------------------------------------------------------

impl Comparison {
    fn holds(self, n: f64, bound: f64) -> bool {
        match self {
            Comparison::Gt => n > bound,
            Comparison::Ge => n >= bound,
            Comparison::Lt => n < bound,
            Comparison::Le => n <= bound,
        }
    }
}

/// `gt:90` (the part after `num:`). Operators are lower case, as the spec spells them.
fn parse_numeric(rest: &str) -> Option<(Comparison, f64)> {
    let (op, number) = rest.split_once(':')?;
    let cmp = match op {
        "gt" => Comparison::Gt,
        "ge" => Comparison::Ge,
        "lt" => Comparison::Lt,
        "le" => Comparison::Le,
        _ => return None,
    };
    Some((cmp, parse_decimal(number)?))
}

/// A finite decimal number: optional sign, digits with an optional fraction, optional
/// exponent. Stricter than `f64::from_str`, which would also take `inf`, `NaN` and
/// `infinity`; values that overflow to infinity (`1e999`) are refused too.
fn parse_decimal(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let digits_from = |i: usize| {
        bytes.get(i..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let int_digits = digits_from(i);
    i += int_digits;
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        frac_digits = digits_from(i + 1);
        i += 1 + frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(bytes.get(i), Some(b'+' | b'-')));
        let exp_digits = digits_from(i);
        if exp_digits == 0 {
            return None;
        }
        i += exp_digits;
    }
    if i != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

// --- CIDR --------------------------------------------------------------------------------

/// An IP network with its host bits cleared, so `10.0.0.206/24` ≡ `10.0.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Network {
    V4 { base: u32, prefix: u32 },
    V6 { base: u128, prefix: u32 },
}

impl Network {
    /// `10.0.0.0/24`, `2001:db8::/32`, or a single address (a /32 or /128).
    fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(parse_prefix(prefix)?)),
            None => (text, None),
        };
        match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => Network::v4(v4, prefix.unwrap_or(32)),
            IpAddr::V6(v6) => {
                let prefix = prefix.unwrap_or(128);
                // Subjects in IPv4-mapped form are compared as IPv4, so a mapped network
                // that lies wholly inside ::ffff:0:0/96 is stored as the IPv4 network it is.
                match v6.to_ipv4_mapped() {
                    Some(v4) if prefix >= 96 => Network::v4(v4, prefix - 96),
                    _ => Network::v6(v6, prefix),
                }
            }
        }
    }

    fn v4(addr: Ipv4Addr, prefix: u32) -> Option<Network> {
        (prefix <= 32).then(|| Network::V4 {
            base: u32::from(addr) & mask_v4(prefix),
            prefix,
        })
    }

    fn v6(addr: Ipv6Addr, prefix: u32) -> Option<Network> {
        (prefix <= 128).then(|| Network::V6 {
            base: u128::from(addr) & mask_v6(prefix),
            prefix,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self, canonical(ip)) {
            (Network::V4 { base, prefix }, IpAddr::V4(v4)) => {
                u32::from(v4) & mask_v4(*prefix) == *base
            }
            (Network::V6 { base, prefix }, IpAddr::V6(v6)) => {
                u128::from(v6) & mask_v6(*prefix) == *base
            }
            _ => false,
        }
    }
}

/// Decimal digits only: `/+24` and `/ 24` are not prefixes.
fn parse_prefix(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn mask_v4(prefix: u32) -> u32 {
    // A shift by the full width is 0 (no network bits), not an overflow.
    u32::MAX.checked_shl(32 - prefix).unwrap_or(0)
}

fn mask_v6(prefix: u32) -> u128 {
    u128::MAX.checked_shl(128 - prefix).unwrap_or(0)
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.7`) are compared as IPv4 (§4.3).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The trimmed subject as an address, after removing a `:port` suffix: `10.0.0.5`,
/// `10.0.0.5:9100`, `2001:db8::1`, `[2001:db8::1]:80`, `[2001:db8::1]`. A bare IPv6 address
/// is read as an address first, so `2001:db8::1:80` is never cut at its last colon.
fn parse_host(subject: &str) -> Option<IpAddr> {
    let text = subject.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = text.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}
