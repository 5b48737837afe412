use super::*;

const NOW: i64 = 1_700_000_000;

fn env() -> Env {
    Env {
        now: NOW,
        time_zone: "UTC".into(),
        escape_html: false,
    }
}

fn r(src: &str) -> String {
    render_str(src, &Vars::mock(NOW), &env()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn r_err(src: &str) -> TemplateError {
    match render_str(src, &Vars::mock(NOW), &env()) {
        Ok(t) => panic!("{src} rendered {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_variable_of_rsp_343_is_readable() {
    // spec: RSP-343
    let mut v = Vars::mock(NOW);
    v.impact = "users".into();
    v.root_cause = "disk".into();
    v.resolution = "cleaned".into();
    v.end_time = NOW - 1;
    v.snoozed_before = 5;
    v.ack_time = 6;
    v.close_time = 7;
    v.creator = Some(Person {
        person_id: 9,
        person_name: "Bob".into(),
        email: "b@x".into(),
    });
    v.creator_id = 9;
    v.is_flapping = true;
    v.is_in_storm = true;
    v.frequency = "rare".into();
    v.repeat_index = 2;
    v.fields.insert("team".into(), serde_json::json!("dba"));
    let src = "{{.ID}}|{{.Num}}|{{.DetailUrl}}|{{.Title}}|{{.Description}}|{{.Impact}}|{{.RootCause}}|{{.Resolution}}|\
{{.IncidentSeverity}}|{{.IncidentStatus}}|{{.Progress}}|{{.StartTime}}|{{.LastTime}}|{{.EndTime}}|{{.SnoozedBefore}}|\
{{.AckTime}}|{{.CloseTime}}|{{.Creator.PersonName}}|{{.Creator.Email}}|{{.CreatorID}}|{{.Closer}}|{{.AssignedTo.EscalateRuleName}}|\
{{.AssignedTo.LayerIdx}}|{{.AssignedTo.Type}}|{{index .AssignedTo.PersonIDs 0}}|{{(index .Responders 0).PersonName}}|{{.ChannelID}}|{{.ChannelName}}|\
{{.GroupMethod}}|{{.Labels.resource}}|{{.Fields.team}}|{{.AlertCnt}}|{{len .Alerts}}|{{(index .Alerts 1).Labels.resource}}|\
{{(index .Images 0).Alt}}|{{.FireType}}|{{.IsFlapping}}|{{.Flapping.MuteMinutes}}|{{.IsInStorm}}|{{.Frequency}}|{{.NotifyReason}}|{{.RepeatIndex}}";
    let out = render_str(src, &v, &env()).unwrap();
    let want = format!(
        "6560000000000000000000aa|A1B2C3|https://klaxon.example/incident/detail/6560000000000000000000aa|High CPU on db-01|\
CPU usage is above 90% on db-01 and db-02|users|disk|cleaned|Critical|Critical|Triggered|{}|{}|{}|5|6|7|Bob|b@x|9|<no value>|\
Default rule|0|assign|1001|Alice|2001|Databases|p|db-01|dba|2|2|db-02|cpu|fire|true|120|true|rare|assign|2",
        NOW - 600,
        NOW - 60,
        NOW - 1
    );
    assert_eq!(out, want);
}

#[test]
fn alerts_are_capped_at_100() {
    // spec: RSP-343 — at most the 100 most recent alerts.
    let mut v = Vars::mock(NOW);
    v.alerts = (0..150).map(|_| v.alerts[0].clone()).collect();
    assert_eq!(render_str("{{len .Alerts}}", &v, &env()).unwrap(), "100");
}

#[test]
fn control_structures_trim_and_comments() {
    // spec: RSP-341
    assert_eq!(r("a  {{- /* note */ -}}  b"), "ab");
    assert_eq!(
        r(
            "{{if eq .IncidentSeverity \"Info\"}}i{{else if eq .IncidentSeverity \"Warning\" \"Critical\"}}wc{{else}}x{{end}}"
        ),
        "wc"
    );
    assert_eq!(
        r("{{range $i, $a := .Alerts}}{{$i}}={{$a.Labels.resource}};{{end}}"),
        "0=db-01;1=db-02;"
    );
    assert_eq!(
        r("{{range $k, $v := .Labels}}{{$k}} {{end}}"),
        "body_text check resource "
    );
    assert_eq!(
        r("{{range .Images}}{{.Src}}{{end}}"),
        "https://klaxon.example/img/cpu.png"
    );
    assert_eq!(r("{{range .Labels.none}}x{{else}}empty{{end}}"), "empty");
    assert_eq!(
        r("{{with .Creator}}{{.PersonName}}{{else}}auto{{end}}"),
        "auto"
    );
    assert_eq!(r("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"), "2");
    assert_eq!(r("{{range .Alerts}}{{$.Num}}{{end}}"), "A1B2C3A1B2C3");
    assert_eq!(
        r("{{index .Labels \"check\"}}|{{.Labels.missing}}|"),
        "cpu_usage||"
    );
}

#[test]
fn builtins_and_truthiness() {
    // spec: RSP-341
    assert_eq!(
        r(
            "{{len .Title}} {{print \"a\" \"b\" 1 2}} {{printf \"%s-%d-%v-%q-%.1f\" \"x\" 3 true \"q\" 1.25}}"
        ),
        "17 ab1 2 x-3-true-\"q\"-1.2"
    );
    assert_eq!(r("{{println 1 2}}"), "1 2\n");
    assert_eq!(
        r("{{eq 1 2 3 1}} {{ne \"a\" \"b\"}} {{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 3 2}}"),
        "true true true true false true"
    );
    assert_eq!(
        r("{{and 1 0 \"x\"}} {{or 0 \"\" \"y\"}} {{not .Labels}}"),
        "0 y false"
    );
    // and/or short-circuit: the failing right side is never evaluated.
    assert_eq!(r("{{or .Title .Nope}}"), "High CPU on db-01");
    assert_eq!(r("{{and false .Nope}}"), "false");
    for falsy in [
        "false",
        "0",
        "\"\"",
        "nil",
        ".Labels.none",
        "(list)",
        "(dict)",
    ] {
        assert_eq!(
            r(&format!("{{{{if {falsy}}}}}t{{{{else}}}}f{{{{end}}}}")),
            "f",
            "{falsy}"
        );
    }
}

#[test]
fn missing_fields_and_kind_mismatches_are_errors() {
    // spec: RSP-341
    assert!(
        r_err("{{.Nope}}")
            .message
            .contains("can't evaluate field Nope")
    );
    assert!(
        r_err("{{.Creator.PersonName}}")
            .message
            .contains("nil pointer")
    );
    assert!(
        r_err("{{eq .AlertCnt \"2\"}}")
            .message
            .contains("incompatible types")
    );
    assert!(r_err("{{$y}}").message.contains("undefined variable"));
}

#[test]
fn parse_errors_name_the_position() {
    // spec: RSP-345 — the error names the position.
    let e = Template::parse("line one\nok {{ .Title }} then {{ nosuch .Title }}").unwrap_err();
    assert_eq!((e.line, e.column), (2, 22));
    assert!(e.message.contains("\"nosuch\" not defined"), "{e}");
    let e = Template::parse("{{if .Title}}x").unwrap_err();
    assert!(e.message.contains("missing {{end}}"), "{e}");
    assert!(
        Template::parse("{{ .Title ")
            .unwrap_err()
            .message
            .contains("unclosed action")
    );
    assert!(Template::parse("{{end}}").is_err());
    assert!(
        Template::parse("{{template \"x\"}}")
            .unwrap_err()
            .message
            .contains("not supported")
    );
    assert!(Template::parse("{{ \"abc }}").is_err());
}

#[test]
fn email_escapes_everything_but_to_html() {
    // spec: RSP-342
    let mut v = Vars::mock(NOW);
    v.title = "<b>a&b</b> \"q\" 'x' 1+1\0".into();
    v.description = "&lt;i&gt;ok&lt;/i&gt;".into();
    let e = Env {
        escape_html: true,
        ..env()
    };
    assert_eq!(
        render_str("{{.Title}}", &v, &e).unwrap(),
        "&lt;b&gt;a&amp;b&lt;/b&gt; &#34;q&#34; &#39;x&#39; 1&#43;1\u{FFFD}"
    );
    assert_eq!(
        render_str("{{toHtml .Impact .Description}}", &v, &e).unwrap(),
        "<i>ok</i>"
    );
    // Other channels do not escape.
    assert_eq!(render_str("{{.Title}}", &v, &env()).unwrap(), v.title);
}

#[test]
fn klaxon_helpers() {
    // spec: RSP-344
    assert_eq!(
        r("{{date \"2006-01-02 15:04:05 MST Jan Mon -0700\" 0}}"),
        "1970-01-01 00:00:00 UTC Jan Thu +0000"
    );
    let tz = Env {
        time_zone: "Asia/Shanghai".into(),
        ..env()
    };
    assert_eq!(
        render_str("{{date \"15:04\" 0}}", &Vars::mock(NOW), &tz).unwrap(),
        "08:00"
    );
    assert_eq!(
        r("{{ago .StartTime}} {{ago (sub now 45)}} {{ago (sub now 3722)}}"),
        "10m0s 45s 1h2m2s"
    );
    assert_eq!(
        r("{{alertLabels $ \"resource\"}} {{joinAlertLabels $ \"resource\" \",\"}}"),
        "[db-01 db-02] db-01,db-02"
    );
    assert_eq!(
        r(
            "{{jsonGet `{\"a\":{\"b\":[1,{\"c\":\"x\"}]}}` \"a.b.1.c\"}}|{{jsonGet \"nope\" \"a\"}}|"
        ),
        "x||"
    );
    assert_eq!(
        r(
            "{{imageSrcToURL $ \"https://i/x.png\"}}|{{imageSrcToURL $ \"file.png\"}}|{{transferImage $ \"x\"}}|"
        ),
        "https://i/x.png|||"
    );
    assert_eq!(
        r("{{colorSeverity \"Critical\"}} {{serverityToColor \"Ok\"}}"),
        "<font color=\"#C80000\">Critical</font> #84CC16"
    );
    assert_eq!(
        r("{{in .GroupMethod \"n\" \"p\"}} {{in 1 2}}"),
        "true false"
    );
    assert_eq!(
        r("{{mustToPrettyJson (dict \"b\" 1 \"a\" (list 1 2))}}"),
        "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": 1\n}"
    );
    assert_eq!(r("{{eq .Frequency \"rare\"}}"), "false");
}

#[test]
fn fire_reason_strings() {
    // spec: RSP-355
    assert_eq!(fire_reason("refire", 3, "assign"), "[Repeat 3] ");
    assert_eq!(fire_reason("assign", 0, "escalate"), "[Escalated] ");
    assert_eq!(fire_reason("assign", 0, "reassign"), "[Reassigned] ");
    assert_eq!(fire_reason("assign", 0, "reopen"), "[Reopened] ");
    assert_eq!(fire_reason("wake", 0, "assign"), "[Snooze ended] ");
    assert_eq!(fire_reason("storm", 0, "assign"), "[Alert storm] ");
    assert_eq!(fire_reason("assign", 0, "assign"), "");
    let mut v = Vars::mock(NOW);
    v.notify_reason = "refire".into();
    v.repeat_index = 2;
    assert_eq!(
        render_str("{{fireReason $}}x", &v, &env()).unwrap(),
        "[Repeat 2] x"
    );
}

#[test]
fn sprig_subset() {
    // spec: RSP-344
    assert_eq!(
        r(
            "{{default \"d\" .Labels.none}} {{empty \"\"}} {{coalesce \"\" 0 \"c\"}} {{ternary \"y\" \"n\" true}}"
        ),
        "d true c y"
    );
    assert_eq!(
        r(
            "{{upper \"ab\"}}{{lower \"CD\"}}{{title \"ef gh\"}}{{trim \" i \"}}{{trimPrefix \"a\" \"ab\"}}{{trimSuffix \"b\" \"ab\"}}{{trimAll \"x\" \"xjx\"}}"
        ),
        "ABcdEf GhibaJ".replace('J', "j").as_str()
    );
    assert_eq!(
        r(
            "{{contains \"b\" \"abc\"}}{{hasPrefix \"a\" \"abc\"}}{{hasSuffix \"c\" \"abc\"}}{{replace \"a\" \"b\" \"aa\"}}{{repeat 2 \"x\"}}"
        ),
        "truetruetruebbxx"
    );
    assert_eq!(
        r(
            "{{substr 1 3 \"abcd\"}} {{trunc 2 \"abcd\"}} {{abbrev 5 \"abcdefg\"}} {{nospace \"a b\"}} {{quote \"a\"}} {{squote \"a\"}}"
        ),
        "bc ab ab... ab \"a\" 'a'"
    );
    assert_eq!(
        r(
            "{{join \"-\" (splitList \",\" \"a,b\")}} {{(split \",\" \"a,b\")._1}} {{keys (dict \"k\" 1)}} {{sortAlpha (list \"b\" \"a\")}} {{uniq (list 1 1 2)}}"
        ),
        "a-b b [k] [a b] [1 2]"
    );
    assert_eq!(
        r(
            "{{has 2 (list 1 2)}} {{first (list 1 2)}} {{last (list 1 2)}} {{toJson (list 1 \"a\")}} {{toString 5}} {{atoi \"7\"}} {{int \"8\"}} {{int64 9}} {{float64 \"1.5\"}}"
        ),
        "true 1 2 [1,\"a\"] 5 7 8 9 1.5"
    );
    assert_eq!(
        r("{{add 1 2}} {{sub 5 1}} {{mul 2 3}} {{div 7 2}} {{mod 7 2}} {{max 1 5 3}} {{min 4 2}}"),
        "3 4 6 3 1 5 2"
    );
    assert_eq!(
        r(
            "{{now}} {{unixEpoch 5}} {{dateInZone \"15\" 0 \"Asia/Tokyo\"}} {{toDate \"2006-01-02\" \"1970-01-02\"}} {{duration 61}}"
        ),
        format!("{NOW} 5 09 86400 1m1s")
    );
    assert_eq!(
        r("{{b64enc \"hello\"}} {{b64dec \"aGVsbG8=\"}}"),
        "aGVsbG8= hello"
    );
    assert_eq!(
        r(
            "{{regexMatch \"^db\" \"db-1\"}} {{regexFind \"[0-9]+\" \"db-12\"}} {{regexReplaceAll \"[0-9]\" \"db-12\" \"x\"}}"
        ),
        "true 12 db-xx"
    );
    assert_eq!(
        r("{{indent 2 \"a\\nb\"}}|{{nindent 1 \"c\"}}"),
        "  a\n  b|\n c"
    );
    assert!(r_err("{{div 1 0}}").message.contains("divide by zero"));
}

#[test]
fn default_bodies_render_what_rsp_351_lists() {
    // spec: RSP-351
    let mut v = Vars::mock(NOW);
    v.is_flapping = true;
    v.is_in_storm = true;
    for ch in Channel::ALL {
        let o = render_channel(ch, None, &v, &env());
        assert!(!o.template_fallback && o.failed_reason.is_none(), "{ch:?}");
        let t = &o.text;
        match ch {
            Channel::Sms | Channel::Voice => assert_eq!(
                t,
                "You have a pending incident: High CPU on db-01, Channel: Databases, Severity: Critical, Grouped 2 alerts"
            ),
            _ => {
                for want in [
                    "INC #A1B2C3",
                    "High CPU on db-01",
                    "Databases",
                    "Critical",
                    "db-01, db-02",
                    "@Alice",
                    "2 grouped",
                ] {
                    assert!(t.contains(want), "{ch:?} lacks {want}: {t}");
                }
                // The e-mail acts through its one-click link when it has one (the mock
                // has); the other channels carry the console's acknowledge link (RSP-316).
                let ack = if ch == Channel::Email {
                    "/act/sample-link?do=ack"
                } else {
                    "?ack=1"
                };
                assert!(t.contains(ack), "{ch:?} lacks {ack}: {t}");
                if ch == Channel::Email {
                    assert!(!t.contains("10m0s"), "no duration in email");
                } else {
                    assert!(t.contains("10m0s"), "{ch:?} duration");
                }
                if matches!(ch, Channel::Feishu | Channel::Dingtalk | Channel::Zoom) {
                    assert!(
                        t.contains("notifications muted for 120 minutes"),
                        "{ch:?} flapping: {t}"
                    );
                    assert!(t.contains("2 alerts grouped"), "{ch:?} storm");
                }
            }
        }
        if ch == Channel::Zoom {
            let j: serde_json::Value = serde_json::from_str(t).unwrap();
            assert!(j["content"]["body"].is_array(), "RSP-350");
        }
        if matches!(
            ch,
            Channel::FeishuApp | Channel::DingtalkApp | Channel::SlackApp | Channel::TeamsApp
        ) {
            assert!(
                t.contains("check: cpu_usage") && t.contains("CPU usage 97% for 5m"),
                "{ch:?} labels: {t}"
            );
            assert!(!t.contains("resource: db-01"), "resource has its own line");
        }
    }
    // Global incident: channel `None`; a single alert shows no count.
    v.channel_name = String::new();
    v.alert_cnt = 1;
    let o = render_channel(Channel::Sms, None, &v, &env());
    assert_eq!(
        o.text,
        "You have a pending incident: High CPU on db-01, Channel: None, Severity: Critical"
    );
}

#[test]
fn post_processing_per_channel() {
    // spec: RSP-347
    let v = Vars::mock(NOW);
    let body = "a\n\n   \nb<br>c";
    assert_eq!(
        render_channel(Channel::SlackApp, Some(body), &v, &env()).text,
        "a\nb<br>c"
    );
    assert_eq!(
        render_channel(Channel::Dingtalk, Some(body), &v, &env()).text,
        "a\nb\nc"
    );
    assert_eq!(
        render_channel(Channel::Sms, Some("  a \n\t b  "), &v, &env()).text,
        "a b"
    );
    assert_eq!(
        render_channel(Channel::Email, Some(body), &v, &env()).text,
        body
    );
}

#[test]
fn size_limits_per_channel() {
    // spec: RSP-348 — truncation never splits a UTF-8 character.
    let v = Vars::mock(NOW);
    let long = |n: usize, s: &str| format!("{{{{repeat {n} \"{s}\"}}}}");
    let sms = render_channel(Channel::Sms, Some(&long(600, "é")), &v, &env());
    assert_eq!(sms.text.chars().count(), 500);
    assert!(sms.text.ends_with('…') && sms.truncated);
    let voice = render_channel(Channel::Voice, Some(&long(600, "x")), &v, &env());
    assert_eq!(voice.text.len(), 500);
    let bot = render_channel(Channel::Dingtalk, Some(&long(2001, "é")), &v, &env());
    assert_eq!(bot.text.len(), 4000);
    let bot = render_channel(Channel::Wecom, Some(&long(1500, "日")), &v, &env());
    assert_eq!(bot.text.len(), 3999, "a 3-byte char is not split");
    assert_eq!(
        render_channel(Channel::Telegram, Some(&long(4097, "x")), &v, &env()).failed_reason,
        Some("message_too_long")
    );
    assert_eq!(
        render_channel(Channel::Telegram, Some(&long(4096, "x")), &v, &env()).failed_reason,
        None
    );
    assert_eq!(
        render_channel(Channel::Slack, Some(&long(15_001, "x")), &v, &env())
            .text
            .len(),
        15_000
    );
    assert_eq!(
        render_channel(Channel::TeamsApp, Some(&long(28_673, "x")), &v, &env()).failed_reason,
        Some("message_too_long")
    );
    assert_eq!(
        render_channel(
            Channel::WecomApp,
            Some("1\n2\n3\n4\n5\n6\n7\n8\n9\n10"),
            &v,
            &env()
        )
        .text,
        "1\n2\n3\n4\n5\n6\n7\n8"
    );
    assert_eq!(
        render_channel(Channel::FeishuApp, Some(&long(30_001, "x")), &v, &env())
            .text
            .len(),
        30_000
    );
    assert_eq!(
        render_channel(Channel::Email, Some(&long((1 << 20) + 1, "x")), &v, &env())
            .text
            .len(),
        1 << 20
    );
    // A Feishu card over the limit becomes the plain-text default, truncated.
    let card = format!(
        "{{\"msg_type\":\"interactive\",\"card\":\"{}\"}}",
        long(5000, "x")
    );
    let o = render_channel(Channel::Feishu, Some(&card), &v, &env());
    assert!(
        o.text.starts_with("INC #A1B2C3") && o.text.len() <= 4000,
        "{}",
        o.text
    );
    let zoom = format!(
        "{{\"content\":{{\"head\":{{\"text\":\"{}\"}},\"body\":[]}}}}",
        long(5000, "x")
    );
    let o = render_channel(Channel::Zoom, Some(&zoom), &v, &env());
    assert!(
        serde_json::from_str::<serde_json::Value>(&o.text).is_ok()
            && o.text.chars().count() <= 4000
    );
}

#[test]
fn a_failing_custom_body_falls_back_to_the_default() {
    // spec: RSP-346
    let mut v = Vars::mock(NOW);
    v.creator = None;
    let o = render_channel(Channel::Sms, Some("{{.Creator.PersonName}}"), &v, &env());
    assert!(o.template_fallback);
    assert!(o.text.starts_with("You have a pending incident"));
    assert!(o.error.as_deref().unwrap_or("").contains("nil pointer"));
    let ok = render_channel(
        Channel::Sms,
        Some("Flapping={{.IsFlapping}} mute={{.Flapping.MuteMinutes}}"),
        &v,
        &env(),
    );
    assert_eq!(
        (ok.text.as_str(), ok.template_fallback),
        ("Flapping=false mute=120", false)
    );
}

#[test]
fn validation_names_channel_and_position() {
    // spec: RSP-345
    let e = validate(Channel::Email, "<p>\n{{ .Title | nosuch }}</p>", &env()).unwrap_err();
    assert!(
        e.starts_with("email: line 2, column 1:") && e.contains("nosuch"),
        "{e}"
    );
    let e = validate(Channel::Sms, "{{.Nope}}", &env()).unwrap_err();
    assert!(
        e.starts_with("sms: line 1, column 1:") && e.contains("Nope"),
        "{e}"
    );
    assert!(
        validate(Channel::Feishu, "{\"msg_type\": {{.Title}}}", &env())
            .unwrap_err()
            .contains("not valid JSON")
    );
    assert!(validate(Channel::Feishu, "plain {{.Title}}", &env()).is_ok());
    assert!(validate(Channel::Zoom, default_body(Channel::Zoom), &env()).is_ok());
    assert!(validate(Channel::Sms, &"x".repeat(MAX_BODY_BYTES + 1), &env()).is_err());
    for ch in Channel::ALL {
        assert!(validate(ch, default_body(ch), &env()).is_ok(), "{ch:?}");
    }
}

#[test]
fn hostile_input_is_bounded() {
    let deep = "{{if true}}".repeat(200) + &"{{end}}".repeat(200);
    assert!(Template::parse(&deep).is_err());
    assert!(
        r_err("{{range 100000000}}{{range 1000}}x{{end}}{{end}}")
            .message
            .contains("too")
    );
}

#[test]
fn a_zoom_body_must_be_zooms_message_object() {
    // spec: RSP-350
    let v = Vars::mock(0);
    for bad in [
        "plain text {{.Title}}",
        r#"{"text": "{{.Title}}"}"#,
        r#"{"content": {"head": {"text": "x"}}}"#,
        r#"{"content": {"head": {"text": "x"}, "body": []}, "is_markdown_support": "yes"}"#,
    ] {
        assert!(validate(Channel::Zoom, bad, &env()).is_err(), "{bad}");
        let o = render_channel(Channel::Zoom, Some(bad), &v, &env());
        assert!(o.template_fallback, "{bad}");
        assert!(o.error.as_deref().unwrap().starts_with("zoom: "), "{bad}");
        let j: serde_json::Value = serde_json::from_str(&o.text).unwrap();
        assert!(
            j["content"]["body"].is_array(),
            "the default goes out: {}",
            o.text
        );
    }
    let good = r#"{"content": {"head": {"text": {{toJson .Title}}}, "body": [{"type": "message", "text": "x"}]}, "is_markdown_support": true}"#;
    assert!(validate(Channel::Zoom, good, &env()).is_ok());
    let o = render_channel(Channel::Zoom, Some(good), &v, &env());
    assert!(!o.template_fallback, "{:?}", o.error);
    let j: serde_json::Value = serde_json::from_str(&o.text).unwrap();
    assert_eq!(j["content"]["head"]["text"], v.title);
}
