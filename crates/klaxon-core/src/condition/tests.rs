//! Tests of the condition language. Section references are to ingest.md §4, which has no
//! rule ids of its own; Q-38 is its decision entry; RSP-134 restates it for incident filters.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::*;
use crate::error::{ApiError, ErrorCode};

/// A subject keyed by wire key (`severity`, `labels.check`, …).
struct Fields(BTreeMap<String, String>);

impl Subject for Fields {
    fn value(&self, key: &Key) -> Option<Cow<'_, str>> {
        self.0
            .get(key.as_wire().as_ref())
            .map(|v| Cow::Borrowed(v.as_str()))
    }
}

fn subject(pairs: &[(&str, &str)]) -> Fields {
    Fields(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn compile(groups: &[Vec<Condition>], context: Context) -> Filter {
    Filter::compile(groups, context).unwrap()
}

/// One condition compiled in `context`, evaluated on `key = value` (`None` = absent).
fn one(context: Context, condition: Condition, value: Option<&str>) -> bool {
    let key = condition.key.clone();
    let filter = compile(&[vec![condition]], context);
    match value {
        Some(v) => filter.matches(&subject(&[(&key, v)])),
        None => filter.matches(&subject(&[])),
    }
}

/// `labels.x IN [pattern]` in a context where every pattern kind is active.
fn hit(pattern: &str, value: &str) -> bool {
    one(
        Context::Route,
        Condition::is_in("labels.x", [pattern]),
        Some(value),
    )
}

/// The same in a context where `cidr:` and `num:` are plain text.
fn hit_incident(pattern: &str, value: &str) -> bool {
    one(
        Context::Escalation,
        Condition::is_in("labels.x", [pattern]),
        Some(value),
    )
}

fn error(groups: &[Vec<Condition>], context: Context) -> String {
    Filter::compile(groups, context).unwrap_err().to_string()
}

fn value_error(pattern: &str) -> String {
    error(
        &[vec![Condition::is_in("title", [pattern])]],
        Context::Route,
    )
}

// --- §4.7 worked example, §4.6 rendering ---------------------------------------------------

fn worked_example() -> FilterGroups {
    vec![
        vec![
            Condition::is_in("severity", ["Critical", "Warning"]),
            Condition::is_in("labels.check", ["Binlog Sync Delay"]),
        ],
        vec![
            Condition::is_in("labels.check", ["/cpu/", "/io/", "/disk/"]),
            Condition::is_in("labels.value", ["num:gt:90"]),
        ],
    ]
}

// spec: ingest.md §4.7 (worked example, verbatim)
#[test]
fn worked_example_table() {
    let filter = compile(&worked_example(), Context::Route);
    let rows: [(&str, Option<&str>, Option<&str>, bool); 6] = [
        ("Critical", Some("Binlog Sync Delay"), None, true),
        ("Info", Some("Binlog Sync Delay"), None, false),
        ("Info", Some("high cpu usage"), Some("95"), true),
        ("Info", Some("high cpu usage"), Some("90"), false),
        ("Info", Some("disk full"), Some("abc"), false),
        ("Warning", None, Some("99"), false),
    ];
    for (severity, check, value, expected) in rows {
        let mut pairs = vec![("severity", severity)];
        pairs.extend(check.map(|c| ("labels.check", c)));
        pairs.extend(value.map(|v| ("labels.value", v)));
        assert_eq!(
            filter.matches(&subject(&pairs)),
            expected,
            "{severity} / {check:?} / {value:?}"
        );
    }
}

// spec: ingest.md §4.7 (NOTIN example)
#[test]
fn worked_example_notin() {
    let filter = compile(
        &[vec![Condition::not_in("labels.env", ["prod", "staging"])]],
        Context::Route,
    );
    assert!(filter.matches(&subject(&[("labels.env", "dev")])));
    assert!(filter.matches(&subject(&[])));
    assert!(!filter.matches(&subject(&[("labels.env", "prod")])));
}

// spec: ingest.md §4.6
#[test]
fn renders_the_worked_example_as_text() {
    let text = "( severity == Critical|Warning && labels.check == Binlog Sync Delay ) or ( labels.check == /cpu/|/io/|/disk/ && labels.value == num:gt:90 )";
    assert_eq!(render(&worked_example()), text);
    assert_eq!(compile(&worked_example(), Context::Route).to_string(), text);
}

// spec: ingest.md §4.6
#[test]
fn renders_notin_as_not_equal_and_values_as_entered() {
    let groups = vec![vec![Condition::not_in("labels.env", ["prod", " *x? "])]];
    assert_eq!(render(&groups), "( labels.env != prod| *x?  )");
    assert_eq!(render(&[]), "");
}

// --- §4.1 structure and AND/OR -------------------------------------------------------------

// spec: ingest.md §4.1 (empty FilterGroups = no restriction)
#[test]
fn empty_filter_matches_everything() {
    let filter = compile(&[], Context::Route);
    assert!(filter.is_empty());
    assert!(filter.matches(&subject(&[])));
    assert!(filter.matches(&subject(&[("title", "x")])));
    assert!(Filter::default().matches(&subject(&[])));
}

// spec: ingest.md §4.1 (conditions AND-ed, groups OR-ed)
#[test]
fn groups_are_ored_and_conditions_anded() {
    let filter = compile(
        &[
            vec![
                Condition::is_in("labels.a", ["1"]),
                Condition::is_in("labels.b", ["2"]),
            ],
            vec![Condition::is_in("labels.c", ["3"])],
        ],
        Context::Route,
    );
    assert!(filter.matches(&subject(&[("labels.a", "1"), ("labels.b", "2")])));
    assert!(!filter.matches(&subject(&[("labels.a", "1")])));
    assert!(!filter.matches(&subject(&[("labels.a", "1"), ("labels.b", "x")])));
    assert!(filter.matches(&subject(&[("labels.c", "3")])));
    assert!(filter.matches(&subject(&[("labels.a", "0"), ("labels.c", "3")])));
    assert!(!filter.matches(&subject(&[("labels.a", "0"), ("labels.c", "4")])));
}

// spec: ingest.md §4.1 (IN: any value matches; NOTIN: no value matches)
#[test]
fn in_needs_one_value_and_notin_needs_none() {
    let is_in = Condition::is_in("title", ["a", "b*"]);
    let not_in = Condition::not_in("title", ["a", "b*"]);
    assert!(one(Context::Route, is_in.clone(), Some("a")));
    assert!(one(Context::Route, is_in.clone(), Some("bcd")));
    assert!(!one(Context::Route, is_in, Some("c")));
    assert!(!one(Context::Route, not_in.clone(), Some("a")));
    assert!(!one(Context::Route, not_in.clone(), Some("bcd")));
    assert!(one(Context::Route, not_in, Some("c")));
}

// spec: ingest.md §4.1 (limits at their maximum are accepted)
#[test]
fn limits_at_their_maximum_are_accepted() {
    let condition = Condition::is_in("title", vec!["v"; MAX_VALUES]);
    let groups = vec![vec![condition; MAX_CONDITIONS]; MAX_GROUPS];
    assert!(Filter::compile(&groups, Context::Route).is_ok());
    // Length counts characters, not bytes: 1024 × "é" is 2048 bytes.
    let long = "é".repeat(MAX_VALUE_CHARS);
    let groups = vec![vec![Condition::is_in("title", [long])]];
    assert!(Filter::compile(&groups, Context::Route).is_ok());
}

// spec: ingest.md §4.1, §4.5 (limits exceeded)
#[test]
fn limits_exceeded_are_refused_with_their_position() {
    let ok = Condition::is_in("title", ["x"]);
    let groups = vec![vec![ok.clone()]; MAX_GROUPS + 1];
    assert_eq!(
        error(&groups, Context::Route),
        "filters: too many groups (21; at most 20)"
    );
    let groups = vec![vec![ok.clone()], vec![ok.clone(); MAX_CONDITIONS + 1]];
    assert_eq!(
        error(&groups, Context::Route),
        "filters[1]: too many conditions in a group (21; at most 20)"
    );
    let groups = vec![vec![
        ok.clone(),
        Condition::is_in("title", vec!["v"; MAX_VALUES + 1]),
    ]];
    assert_eq!(
        error(&groups, Context::Route),
        "filters[0][1].vals: too many values (101; at most 100)"
    );
    let long = "x".repeat(MAX_VALUE_CHARS + 1);
    let groups = vec![vec![Condition::is_in("title", ["ok".to_string(), long])]];
    assert_eq!(
        error(&groups, Context::Route),
        "filters[0][0].vals[1]: value too long (1025 characters; at most 1024)"
    );
}

// spec: ingest.md §4.5 (a group with no conditions, a condition with no values)
#[test]
fn empty_groups_and_empty_value_lists_are_refused() {
    let groups = vec![vec![Condition::is_in("title", ["x"])], vec![]];
    assert_eq!(
        error(&groups, Context::Route),
        "filters[1]: a group needs at least one condition"
    );
    let groups = vec![vec![Condition::not_in("title", Vec::<String>::new())]];
    assert_eq!(
        error(&groups, Context::Route),
        "filters[0][0].vals: a condition needs at least one value"
    );
}

// --- §4.2 keys and contexts ------------------------------------------------------------------

// spec: ingest.md §4.2 (labels.<name>: everything after the first `labels.`)
#[test]
fn label_names_may_contain_dots() {
    assert_eq!(
        Key::parse("labels.obj.instance"),
        Some(Key::Label("obj.instance".into()))
    );
    assert_eq!(
        Key::parse("labels.labels.x"),
        Some(Key::Label("labels.x".into()))
    );
    let condition = Condition::is_in("labels.obj.instance", ["db-1"]);
    assert!(one(Context::Route, condition, Some("db-1")));
    assert_eq!(
        Key::Label("obj.instance".into()).to_string(),
        "labels.obj.instance"
    );
}

// spec: ingest.md §4.2 (key sets per context)
#[test]
fn each_context_allows_its_keys() {
    use Context::*;
    let event = [
        "title",
        "description",
        "severity",
        "labels.x",
        "integration_id",
        "integration_type",
    ];
    for context in [
        Enrichment,
        PipelineAction,
        Route,
        Drop,
        Silence,
        InhibitTarget,
        FineGrouping,
    ] {
        for key in event {
            assert!(
                context.allows(&Key::parse(key).unwrap()),
                "{context:?} {key}"
            );
        }
        assert!(!context.allows(&Key::Subject), "{context:?}");
    }
    // spec: RSP-134, ING-085, ING-140 (incident and stored-alert filters)
    for context in [PipelineInhibitSource, InhibitSource, Escalation] {
        for key in &event[..4] {
            assert!(
                context.allows(&Key::parse(key).unwrap()),
                "{context:?} {key}"
            );
        }
        assert!(!context.allows(&Key::IntegrationId), "{context:?}");
        assert!(!context.allows(&Key::IntegrationType), "{context:?}");
    }
    // spec: ING-216 (e-mail rule fields), ING-218 (chat-bot rule fields)
    for key in [Key::Subject, Key::Content, Key::From] {
        assert!(EmailRule.allows(&key));
    }
    assert!(!EmailRule.allows(&Key::Title));
    assert!(ChatBotRule.allows(&Key::Title));
    assert!(ChatBotRule.allows(&Key::Content));
    assert!(!ChatBotRule.allows(&Key::Subject));
    assert!(LabelSearch.allows(&Key::Label("x".into())));
    assert!(!LabelSearch.allows(&Key::Title));
}

// spec: ingest.md §4.5 (unknown key for the context, `labels.` without a name)
#[test]
fn bad_keys_are_refused_with_their_position() {
    let groups = vec![vec![Condition::is_in("integration_id", ["7"])]];
    assert!(Filter::compile(&groups, Context::Route).is_ok());
    assert_eq!(
        error(&groups, Context::Escalation),
        "filters[0][0].key: unknown key \"integration_id\" \
         (allowed here: title, description, severity, labels.<name>)"
    );
    let groups = vec![vec![
        Condition::is_in("title", ["x"]),
        Condition::is_in("labels.", ["x"]),
    ]];
    assert_eq!(
        error(&groups, Context::Route),
        "filters[0][1].key: label name missing after \"labels.\""
    );
    // Keys are case-sensitive, and `labels` alone is no key.
    for key in ["Title", "labels", "label.x", ""] {
        let groups = vec![vec![Condition::is_in(key, ["x"])]];
        let err = Filter::compile(&groups, Context::Route).unwrap_err();
        assert!(
            matches!(err.problem(), Problem::UnknownKey { .. }),
            "{key}: {err}"
        );
    }
}

// spec: ingest.md §4.2 (`cidr:`/`num:` are text in contexts marked "no")
// spec: RSP-134, ING-085, ING-141
#[test]
fn cidr_and_num_are_plain_text_where_inactive() {
    assert!(hit_incident("num:gt:5", "num:gt:5"));
    assert!(!hit_incident("num:gt:5", "10"));
    assert!(hit_incident("cidr:10.0.0.0/8", "cidr:10.0.0.0/8"));
    assert!(!hit_incident("cidr:10.0.0.0/8", "10.0.0.1"));
    // Malformed values are valid text there…
    assert!(hit_incident("num:abc", "num:abc"));
    assert!(hit_incident("cidr:", "cidr:"));
    // …and with `*`/`?` they are wildcards.
    assert!(hit_incident("cidr:10.*", "cidr:10.1.2.3"));
    assert!(hit_incident("num:g?:*", "num:gt:5"));
    for context in [
        Context::PipelineInhibitSource,
        Context::InhibitSource,
        Context::LabelSearch,
    ] {
        let condition = Condition::is_in("labels.x", ["num:gt:5"]);
        assert!(
            one(context, condition.clone(), Some("num:gt:5")),
            "{context:?}"
        );
        assert!(!one(context, condition, Some("6")), "{context:?}");
    }
}

// spec: ingest.md §4.2 (editors SHOULD warn)
#[test]
fn warns_about_cidr_and_num_where_they_are_text() {
    let groups = vec![vec![Condition::is_in(
        "labels.x",
        ["num:gt:5", "/num:x/", "plain", "cidr:10.0.0.0/8"],
    )]];
    let warnings = warnings(&groups, Context::Escalation);
    let at: Vec<String> = warnings
        .iter()
        .map(|w| w.position.path("filters"))
        .collect();
    assert_eq!(at, ["filters[0][0].vals[0]", "filters[0][0].vals[3]"]);
    assert!(
        warnings[0]
            .to_string()
            .starts_with("filters[0][0].vals[0]: cidr: and num:")
    );
    assert!(super::warnings(&groups, Context::Route).is_empty());
}

// --- §4.3 pattern kinds ----------------------------------------------------------------------

// spec: ingest.md §4.3 (regex, unanchored), Q-38
#[test]
fn regex_is_searched_anywhere() {
    assert!(hit("/down/", "host down now"));
    assert!(!hit("/down/", "host DOWN now"));
    assert!(hit("/(?i)down/", "host DOWN now"));
    assert!(hit("/^host/", "host down"));
    assert!(!hit("/^down$/", "host down"));
    assert!(hit("/^down$/", "down"));
    assert!(hit("/d.wn/", "dawn"));
}

// spec: ingest.md §4.3 (regex recognised when length ≥ 2 and wrapped in `/`; first rule wins)
#[test]
fn regex_classification_edges() {
    // `//` is the empty expression: it matches every present subject.
    assert!(hit("//", "anything"));
    // `/` alone is exact text.
    assert!(hit("/", "/"));
    assert!(!hit("/", "a/b"));
    // A value wrapped in slashes is a regex even with `*` or a `num:` prefix inside.
    assert!(hit("/ab*c/", "xacx"));
    assert!(hit("/num:gt/", "num:gt:1"));
    // Only one slash: not a regex; with `*` it is a wildcard.
    assert!(hit("/var/*", "/var/log"));
    assert!(!hit("/var/*", "x/var/log"));
    // Descriptions span lines; `.` does not cross a newline unless `(?s)` says so.
    assert!(hit("/b$/", "a\nb"));
    assert!(!hit("/a.b/", "a\nb"));
    assert!(hit("/(?s)a.b/", "a\nb"));
}

// spec: ingest.md §4.5 (regex must compile under RE2; Perl-only constructs rejected)
#[test]
fn invalid_regexes_are_refused_with_their_position() {
    let groups = vec![vec![
        Condition::is_in("title", ["x"]),
        Condition::is_in("labels.a", ["ok", "/ok/", "/(unclosed/"]),
    ]];
    let message = error(&groups, Context::Route);
    assert!(
        message.starts_with("filters[0][1].vals[2]: invalid regular expression: "),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    for perl_only in [
        "/(?<=a)b/",
        "/a(?=b)/",
        r"/(a)\1/",
        "/(?>a)/",
        "/(?P<n>a)(?P=n)/",
    ] {
        let message = value_error(perl_only);
        assert!(
            message.starts_with("filters[0][0].vals[0]: invalid regular expression: "),
            "{perl_only}: {message}"
        );
    }
}

// spec: ingest.md §4.3 (numeric), Q-38
#[test]
fn numeric_compares_the_trimmed_subject() {
    assert!(hit("num:ge:90", "90"));
    assert!(hit("num:ge:90", "95.5"));
    assert!(hit("num:ge:90", " 100 "));
    assert!(!hit("num:ge:90", "abc"));
    assert!(!hit("num:ge:90", "89.99"));
    assert!(!hit("num:gt:90", "90"));
    assert!(hit("num:gt:90", "90.0001"));
    assert!(hit("num:lt:0", "-1"));
    assert!(!hit("num:lt:0", "0"));
    assert!(hit("num:le:0", "0"));
    assert!(hit("num:le:0", "-0"));
    // Sign and exponent, in the pattern and in the subject.
    assert!(hit("num:gt:-1.5e2", "-149"));
    assert!(hit("num:ge:+1E3", "1e3"));
    assert!(hit("num:lt:.5", "0.25"));
    assert!(hit("num:gt:1", "+2"));
}

// spec: ingest.md §4.3 (the subject must parse as a finite number)
#[test]
fn numeric_needs_a_finite_decimal_subject() {
    for subject in [
        "inf",
        "-infinity",
        "NaN",
        "1e999",
        "0x10",
        "1,000",
        "12abc",
        "1 2",
        "",
        "e5",
        ".",
    ] {
        assert!(!hit("num:lt:1e300", subject), "{subject:?}");
        assert!(!hit("num:gt:-1e300", subject), "{subject:?}");
    }
}

// spec: ingest.md §4.5 (a malformed `num:` value is an error where num: is active)
#[test]
fn malformed_numeric_values_are_refused() {
    for bad in [
        "num:abc",
        "num:",
        "num:gt:",
        "num:gt",
        "num:eq:5",
        "num:GT:5",
        "num:gt: 5",
        "num:gt:5 ",
        "num:gt:inf",
        "num:gt:NaN",
        "num:gt:1e999",
        "num:gt:1e",
        "num:gt:0x10",
    ] {
        assert_eq!(
            value_error(bad),
            "filters[0][0].vals[0]: invalid numeric pattern: expected num:gt:, num:ge:, \
             num:lt: or num:le: followed by a decimal number",
            "{bad}"
        );
    }
    // `Num:` is not the prefix (case-sensitive), so it is text.
    assert!(hit("Num:gt:5", "Num:gt:5"));
}

// spec: ingest.md §4.3 (CIDR, host bits ignored, `:port` stripped), Q-38
#[test]
fn cidr_matches_addresses_inside_the_network() {
    assert!(hit("cidr:10.0.0.206/24", "10.0.0.7"));
    assert!(hit("cidr:10.0.0.206/24", "10.0.0.7:9100"));
    assert!(!hit("cidr:10.0.0.206/24", "10.0.1.7"));
    assert!(hit("cidr:10.0.0.206/24", " 10.0.0.7 "));
    assert!(hit("cidr:0.0.0.0/0", "192.168.1.1"));
    // A single address is a /32.
    assert!(hit("cidr:10.0.0.5", "10.0.0.5:22"));
    assert!(!hit("cidr:10.0.0.5", "10.0.0.6"));
    // Not an address, or a bad port: no match.
    for subject in [
        "host-1",
        "10.0.0",
        "10.0.0.7:",
        "10.0.0.7:99999",
        "10.0.0.7/32",
        "010.0.0.7",
    ] {
        assert!(!hit("cidr:10.0.0.0/8", subject), "{subject:?}");
    }
}

// spec: ingest.md §4.3 (IPv6 networks, `[addr]:port`, IPv4-mapped subjects)
#[test]
fn cidr_handles_ipv6() {
    assert!(hit("cidr:2001:db8::/32", "2001:db8::1"));
    assert!(hit("cidr:2001:db8::/32", "[2001:db8::1]:80"));
    assert!(hit("cidr:2001:db8::/32", "[2001:db8::1]"));
    assert!(!hit("cidr:2001:db8::/32", "2001:db9::1"));
    // A bare IPv6 address is never cut at its last colon.
    assert!(hit("cidr:2001:db8::1:80", "2001:db8::1:80"));
    // IPv4-mapped subjects compare as IPv4, in either notation of the network.
    assert!(hit("cidr:10.0.0.0/24", "::ffff:10.0.0.7"));
    assert!(hit("cidr:10.0.0.0/24", "[::ffff:10.0.0.7]:9100"));
    assert!(hit("cidr:::ffff:10.0.0.0/120", "10.0.0.7"));
    assert!(!hit("cidr:10.0.0.0/24", "::ffff:10.0.1.7"));
    // The families do not mix otherwise.
    assert!(!hit("cidr:::/0", "10.0.0.7"));
    assert!(!hit("cidr:0.0.0.0/0", "2001:db8::1"));
}

// spec: ingest.md §4.5 (a malformed `cidr:` value is an error where cidr: is active)
#[test]
fn malformed_cidr_values_are_refused() {
    for bad in [
        "cidr:",
        "cidr:abc",
        "cidr:10.0.0/24",
        "cidr:10.0.0.0/",
        "cidr:10.0.0.0/33",
        "cidr:10.0.0.0/+8",
        "cidr:2001:db8::/129",
        "cidr:10.0.0.0:80",
        "cidr: 10.0.0.0/8",
    ] {
        assert_eq!(
            value_error(bad),
            "filters[0][0].vals[0]: invalid CIDR pattern: expected cidr: followed by an \
             IPv4/IPv6 address or network such as 10.0.0.0/24",
            "{bad}"
        );
    }
}

// spec: ingest.md §4.3 (wildcard: whole string, `*` any run, `?` one character), Q-38
#[test]
fn wildcard_matches_the_whole_string() {
    assert!(hit("down*", "down-01"));
    assert!(hit("down*", "down"));
    assert!(!hit("down*", "is down"));
    assert!(hit("*down", "is down"));
    assert!(hit("*down*", "is down now"));
    assert!(hit("db-??", "db-01"));
    assert!(!hit("db-??", "db-1"));
    assert!(!hit("db-??", "db-001"));
    // `?` is one character, not one byte.
    assert!(hit("caf?", "café"));
    // `*` crosses newlines (descriptions have them).
    assert!(hit("a*b", "a\nb"));
    assert!(hit("a**b", "ab"));
}

// spec: ingest.md §4.3 (wildcard: everything else literal, no escaping, case-sensitive)
#[test]
fn wildcard_has_no_other_metacharacters() {
    assert!(hit("a.b*", "a.bc"));
    assert!(!hit("a.b*", "axbc"));
    assert!(hit("(x)+[y]*", "(x)+[y]z"));
    assert!(hit(r"\*", r"\anything"));
    assert!(!hit("Down*", "down-01"));
    assert!(hit("$^*", "$^"));
}

// spec: ingest.md §4.1, §4.3 (the largest wildcards compile and stay usable)
#[test]
fn long_wildcards_compile() {
    for unit in ["?a", "*a", "*?", "é*"] {
        let pattern = unit.repeat(MAX_VALUE_CHARS / 2);
        let filter = compile(
            &[vec![Condition::is_in("title", [&pattern])]],
            Context::Route,
        );
        let _ = filter.matches(&subject(&[("title", &"a".repeat(4096))]));
    }
}

// spec: ingest.md §4.3 (exact: equality, case-sensitive)
#[test]
fn exact_is_case_sensitive_equality() {
    assert!(hit("Critical", "Critical"));
    assert!(!hit("Critical", "critical"));
    assert!(!hit("Critical", "Critical "));
    assert!(!hit("Critical", "Critical!"));
    assert!(hit("a b|c", "a b|c"));
}

// --- §4.4 absent subjects --------------------------------------------------------------------

// spec: ingest.md §4.4 (every pattern fails on an absent subject), Q-38
#[test]
fn absent_subjects_fail_every_pattern() {
    for pattern in [
        "*",
        "?*",
        "/^$/",
        "//",
        "",
        "num:le:0",
        "cidr:0.0.0.0/0",
        "x",
    ] {
        for absent in [None, Some("")] {
            let is_in = Condition::is_in("labels.x", [pattern]);
            let not_in = Condition::not_in("labels.x", [pattern]);
            assert!(
                !one(Context::Route, is_in, absent),
                "{pattern:?} IN on {absent:?}"
            );
            assert!(
                one(Context::Route, not_in, absent),
                "{pattern:?} NOTIN on {absent:?}"
            );
        }
    }
    // Whitespace is present.
    assert!(hit("*", " "));
}

// spec: ingest.md §4.4 (existence tests), RSP-134
#[test]
fn star_tests_existence() {
    let exists = Condition::is_in("labels.x", ["*"]);
    let missing = Condition::not_in("labels.x", ["*"]);
    assert!(one(Context::Escalation, exists.clone(), Some("v")));
    assert!(!one(Context::Escalation, exists, None));
    assert!(one(Context::Escalation, missing.clone(), None));
    assert!(!one(Context::Escalation, missing, Some("v")));
}

// spec: ingest.md §4.4 (an attribute whose value is the empty string is absent)
#[test]
fn empty_attributes_are_absent() {
    let filter = compile(
        &[vec![Condition::not_in("description", ["*"])]],
        Context::Route,
    );
    assert!(filter.matches(&subject(&[("description", "")])));
    assert!(!filter.matches(&subject(&[("description", "d")])));
}

// --- §4.5 validation -------------------------------------------------------------------------

// spec: ingest.md §4.5 (oper other than IN/NOTIN), openapi-compat.md 1.9 (wire form)
#[test]
fn unknown_opers_are_read_and_refused_with_their_position() {
    let json =
        r#"[[{"key":"title","oper":"IN","vals":["a"]},{"key":"title","oper":"in","vals":["a"]}]]"#;
    let groups: FilterGroups = serde_json::from_str(json).unwrap();
    assert_eq!(groups[0][1].oper, Oper::Invalid("in".into()));
    assert_eq!(
        error(&groups, Context::Route),
        "filters[0][1].oper: oper must be IN or NOTIN, not \"in\""
    );
}

// spec: ingest.md §4.5 (refused with 400 InvalidParameter, naming the position)
#[test]
fn errors_become_invalid_parameter_under_the_callers_field_name() {
    let groups = vec![vec![Condition::is_in("title", ["num:x"])]];
    let err = Filter::compile(&groups, Context::Route)
        .unwrap_err()
        .in_field("conditions");
    assert_eq!(
        err.position(),
        Position {
            group: Some(0),
            condition: Some(0),
            part: Some(Part::Val(0)),
        }
    );
    assert_eq!(err.problem(), &Problem::InvalidNumeric);
    let api = ApiError::from(err);
    assert_eq!(api.code, ErrorCode::InvalidParameter);
    assert!(
        api.message
            .starts_with("conditions[0][0].vals[0]: invalid numeric pattern")
    );
    assert!(validate(&groups, Context::Escalation).is_ok());
    assert!(validate(&groups, Context::Route).is_err());
}

// spec: ingest.md §4.5 (the first problem in wire order is reported)
#[test]
fn the_first_problem_in_wire_order_is_reported() {
    let groups = vec![
        vec![Condition::is_in("title", ["ok"])],
        vec![Condition::new(
            "nope",
            Oper::Invalid("EQ".into()),
            Vec::<String>::new(),
        )],
        vec![],
    ];
    assert!(error(&groups, Context::Route).starts_with("filters[1][0].key: unknown key"));
}

// --- wire form and helpers -------------------------------------------------------------------

// spec: openapi-compat.md 1.9 (`{key, oper: IN|NOTIN, vals}`, OR-of-AND)
#[test]
fn wire_form_round_trips() {
    let json = r#"[[{"key":"severity","oper":"IN","vals":["Critical"]},{"key":"labels.env","oper":"NOTIN","vals":["prod"]}]]"#;
    let groups: FilterGroups = serde_json::from_str(json).unwrap();
    assert_eq!(
        groups,
        vec![vec![
            Condition::is_in("severity", ["Critical"]),
            Condition::not_in("labels.env", ["prod"]),
        ]]
    );
    assert_eq!(serde_json::to_string(&groups).unwrap(), json);
    let filter = compile(&groups, Context::Route);
    assert_eq!(filter.source(), groups.as_slice());
    // Values are always strings.
    let numeric = r#"[[{"key":"title","oper":"IN","vals":[5]}]]"#;
    assert!(serde_json::from_str::<FilterGroups>(numeric).is_err());
}

// spec: ING-134 (pattern-like values written as anchored, escaped regexes stay exact)
#[test]
fn exact_value_matches_only_itself_in_every_context() {
    // Text that §4.3 reads as exact stays as it is, regex metacharacters included.
    assert_eq!(exact_value("prod"), "prod");
    assert_eq!(exact_value("a.b+(c)|[d]^$"), "a.b+(c)|[d]^$");
    for text in [
        "a*b",
        "x?",
        "/tmp/",
        "num:gt:5",
        "cidr:10.0.0.0/8",
        "/a.b+(c)|[d]^$/",
    ] {
        let value = exact_value(text);
        assert!(value.starts_with("/^") && value.ends_with("$/"), "{value}");
        for context in [Context::Silence, Context::Escalation] {
            let condition = Condition::is_in("labels.x", [value.as_str()]);
            assert!(one(context, condition.clone(), Some(text)), "{text}");
            assert!(
                !one(context, condition.clone(), Some(&format!("{text}!"))),
                "{text}"
            );
            assert!(!one(context, condition, Some("a-b")), "{text}");
        }
    }
}

#[test]
fn compiled_filters_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Filter>();
}

// spec: ingest.md §4.3 (ordinary RE2 expressions fit the per-regex size budget)
#[test]
fn ordinary_regexes_fit_the_size_budget() {
    for expr in [
        r"/\w{50}/",
        r"/\w{100}/",
        r"/^\d{1,20}\.\d+$/",
        r"/.{0,200}error/",
        r"/(?i)(cpu|memory|disk|io)\s+(usage|load)\s+(high|critical)/",
        r"/[\p{Han}]+/",
    ] {
        assert!(
            Filter::compile(&[vec![Condition::is_in("title", [expr])]], Context::Route).is_ok(),
            "{expr}"
        );
    }
    // A blow-up is refused, not stored.
    assert!(value_error(r"/\w{1000}{1000}/").contains("invalid regular expression"));
}
