//! Link integrations (response.md 1.20, RSP-404): the `${…}` placeholders of a link's
//! `url_template`, filled from the incident (or the alert) whose detail page shows the link.
//!
//! - Every value is percent-encoded as a URL query component, so a value cannot add a query
//!   parameter, a path segment or a fragment; the literal text of the template is kept as
//!   written.
//! - A missing or unknown placeholder becomes the empty string: the link is still shown.
//! - `${alert_id}` and `${alert_severity}` have a value only on an alert's page.
//! - Times are Unix seconds; a time that is not set (an open incident's `end_time`) is
//!   missing, so it renders empty rather than as a misleading `0`.
//! - `${` without a closing `}` is not a placeholder and stays as written.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{Alert, Incident, Labels, Millis};
use crate::standard::percent_encode;

/// Longest `url_template` (response.md 1.20), in bytes.
pub const MAX_URL_TEMPLATE_BYTES: usize = 2048;

/// What a link's placeholders can refer to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkContext {
    pub incident_id: String,
    pub num: String,
    pub title: String,
    pub description: String,
    pub progress: String,
    pub incident_severity: String,
    pub channel_id: i64,
    pub start_time: Millis,
    pub end_time: Millis,
    /// The incident's labels, or the alert's on an alert page.
    pub labels: Labels,
    /// The incident's custom fields.
    pub fields: BTreeMap<String, Value>,
    /// Set on an alert's detail page only.
    pub alert: Option<AlertRef>,
}

/// The alert of an alert detail page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertRef {
    pub alert_id: String,
    pub alert_severity: String,
}

impl LinkContext {
    /// The context of an incident's detail page.
    pub fn of_incident(inc: &Incident) -> LinkContext {
        LinkContext {
            incident_id: inc.incident_id.clone(),
            num: inc.num.clone(),
            title: inc.title.clone(),
            description: inc.description.clone(),
            progress: inc.progress.as_str().to_string(),
            incident_severity: inc.incident_severity.as_str().to_string(),
            channel_id: inc.channel_id,
            start_time: inc.start_time,
            end_time: inc.end_time,
            labels: inc.labels.clone(),
            fields: inc.response.fields.clone(),
            alert: None,
        }
    }

    /// The context of an alert's detail page: the alert's own labels, plus its incident's
    /// attributes when it has one.
    pub fn of_alert(alert: &Alert, incident: Option<&Incident>) -> LinkContext {
        let mut ctx = incident.map(LinkContext::of_incident).unwrap_or_default();
        if incident.is_none() {
            ctx.channel_id = alert.channel_id;
        }
        ctx.labels = alert.labels.clone();
        ctx.alert = Some(AlertRef {
            alert_id: alert.alert_id.clone(),
            alert_severity: alert.alert_severity.as_str().to_string(),
        });
        ctx
    }

    /// The raw (unencoded) value of one placeholder; `None` when missing or unknown.
    pub fn value(&self, name: &str) -> Option<String> {
        let secs = |ms: Millis| (ms > 0).then(|| ms.div_euclid(1000).to_string());
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        if let Some(key) = name.strip_prefix("labels.") {
            return self.labels.get(key).cloned();
        }
        if let Some(key) = name.strip_prefix("fields.") {
            return self.fields.get(key).and_then(field_text);
        }
        match name {
            "title" => text(&self.title),
            "description" => text(&self.description),
            "num" => text(&self.num),
            "incident_id" => text(&self.incident_id),
            "progress" => text(&self.progress),
            "incident_severity" => text(&self.incident_severity),
            "channel_id" => (self.channel_id > 0).then(|| self.channel_id.to_string()),
            "start_time" => secs(self.start_time),
            "end_time" => secs(self.end_time),
            "alert_id" => self.alert.as_ref().and_then(|a| text(&a.alert_id)),
            "alert_severity" => self.alert.as_ref().and_then(|a| text(&a.alert_severity)),
            _ => None,
        }
    }
}

/// A custom field's value as text: a multi-select (a list) joined with `,`.
fn field_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(field_text)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

/// Renders `template` for `ctx` (RSP-404).
pub fn render(template: &str, ctx: &LinkContext) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = after[..end].trim();
        if let Some(v) = ctx.value(name) {
            out.push_str(&percent_encode(&v));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> LinkContext {
        LinkContext {
            incident_id: "6800000000000000c85c56e25b".into(),
            num: "56E25B".into(),
            title: "db down & out".into(),
            description: "disk 100%".into(),
            progress: "Processing".into(),
            incident_severity: "Critical".into(),
            channel_id: 42,
            start_time: 1_700_000_000_123,
            end_time: 0,
            labels: [("host".to_string(), "db-1/a".to_string())].into(),
            fields: [
                ("team".to_string(), json!(["sre", "dba"])),
                ("priority".to_string(), json!(2)),
                ("owner".to_string(), json!("ann b")),
                ("empty".to_string(), Value::Null),
            ]
            .into(),
            alert: None,
        }
    }

    #[test]
    fn incident_placeholders_follow_the_table() {
        // spec: RSP-404 (incident attributes; times in Unix seconds)
        let c = ctx();
        for (tpl, want) in [
            ("${title}", "db%20down%20%26%20out"),
            ("${description}", "disk%20100%25"),
            ("${num}", "56E25B"),
            ("${incident_id}", "6800000000000000c85c56e25b"),
            ("${progress}", "Processing"),
            ("${incident_severity}", "Critical"),
            ("${channel_id}", "42"),
            ("${start_time}", "1700000000"),
        ] {
            assert_eq!(render(tpl, &c), want, "{tpl}");
        }
    }

    #[test]
    fn labels_and_fields_are_looked_up_and_multi_select_is_joined() {
        // spec: RSP-404 (`labels.KEY`, `fields.KEY`, a multi-select joined with `,`)
        let c = ctx();
        assert_eq!(
            render("https://x/?h=${labels.host}", &c),
            "https://x/?h=db-1%2Fa"
        );
        assert_eq!(render("${fields.team}", &c), "sre%2Cdba");
        assert_eq!(render("${fields.priority}", &c), "2");
        assert_eq!(render("${fields.owner}", &c), "ann%20b");
    }

    #[test]
    fn missing_and_unknown_placeholders_become_empty() {
        // spec: RSP-404 (missing or unknown → empty; the link is still shown)
        let c = ctx();
        assert_eq!(
            render(
                "https://x/?a=${labels.nope}&b=${fields.empty}&c=${bogus}&d=${end_time}",
                &c
            ),
            "https://x/?a=&b=&c=&d="
        );
        // Not a placeholder: kept as written.
        assert_eq!(render("https://x/${title", &c), "https://x/${title");
        assert_eq!(render("no placeholders", &c), "no placeholders");
        // Spaces inside the braces are ignored.
        assert_eq!(render("${ num }", &c), "56E25B");
    }

    #[test]
    fn alert_placeholders_only_on_alert_pages() {
        // spec: RSP-404 (`alert_id`, `alert_severity` on alert pages only)
        let mut c = ctx();
        assert_eq!(render("${alert_id}|${alert_severity}", &c), "|");
        c.alert = Some(AlertRef {
            alert_id: "a1".into(),
            alert_severity: "Warning".into(),
        });
        assert_eq!(render("${alert_id}|${alert_severity}", &c), "a1|Warning");
    }

    #[test]
    fn a_value_cannot_add_query_parameters() {
        // spec: RSP-404 (each value percent-encoded as a query component)
        let mut c = ctx();
        c.title = "x&admin=1#frag?y".into();
        assert_eq!(
            render("https://x/s?q=${title}&n=1", &c),
            "https://x/s?q=x%26admin%3D1%23frag%3Fy&n=1"
        );
    }
}
