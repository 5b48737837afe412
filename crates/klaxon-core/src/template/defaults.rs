//! The built-in default template (RSP-351), one body per channel. Immutable: a custom
//! template's empty body means "this one" (RSP-340).

use super::Channel;

/// Bot text (DingTalk, WeCom, Slack, Telegram, plain Feishu): contains `#` for the keyword
/// security of DingTalk and Feishu (RSP-351).
const BOT: &str = r#"{{fireReason $}}INC #{{.Num}} {{.Title}}
Channel: {{default "None" .ChannelName}}
Severity: {{.IncidentSeverity}}
Started: {{date "2006-01-02 15:04:05 MST" .StartTime}} ({{ago .StartTime}} ago)
{{if gt .AlertCnt 1}}Alerts: {{.AlertCnt}} grouped
{{end}}{{with joinAlertLabels $ "resource" ", "}}Resources: {{.}}
{{end}}{{with .Description}}Description: {{.}}
{{end}}{{if .IsFlapping}}Flapping: notifications muted for {{.Flapping.MuteMinutes}} minutes
{{end}}{{if .IsInStorm}}Alert storm: {{.AlertCnt}} alerts grouped
{{end}}{{with .Responders}}Responders:{{range .}} @{{.PersonName}}{{end}}
{{end}}Details: {{.DetailUrl}}
Acknowledge: {{.DetailUrl}}?ack=1"#;

/// IM app card body: one line per item, blank lines are removed afterwards (RSP-347); all
/// labels except the three with their own lines (RSP-351).
const APP: &str = r#"{{fireReason $}}INC #{{.Num}} {{.Title}}
Channel: {{default "None" .ChannelName}}
Severity: {{.IncidentSeverity}}
Started: {{date "2006-01-02 15:04:05 MST" .StartTime}} ({{ago .StartTime}} ago)
{{if gt .AlertCnt 1}}Alerts: {{.AlertCnt}} grouped{{end}}
{{with joinAlertLabels $ "resource" ", "}}Resources: {{.}}{{end}}
{{with .Labels.body_text}}{{.}}{{end}}
{{with .Labels.body_text_with_table}}{{.}}{{end}}
{{range $k, $v := .Labels}}{{if not (in $k "resource" "body_text" "body_text_with_table")}}{{$k}}: {{$v}}
{{end}}{{end}}
{{with .Description}}Description: {{.}}{{end}}
{{if .IsFlapping}}Flapping: notifications muted for {{.Flapping.MuteMinutes}} minutes{{end}}
{{if .IsInStorm}}Alert storm: {{.AlertCnt}} alerts grouped{{end}}
{{with .Responders}}Responders:{{range .}} @{{.PersonName}}{{end}}{{end}}
Details: {{.DetailUrl}}
Acknowledge: {{.DetailUrl}}?ack=1"#;

/// WeCom app cards show 8 lines (RSP-348), so its default packs the same facts into 8.
const WECOM_APP: &str = r#"{{fireReason $}}INC #{{.Num}} {{.Title}}
Channel: {{default "None" .ChannelName}} | Severity: {{.IncidentSeverity}}
Started: {{date "2006-01-02 15:04:05 MST" .StartTime}} ({{ago .StartTime}} ago){{if gt .AlertCnt 1}} | Alerts: {{.AlertCnt}} grouped{{end}}
{{with joinAlertLabels $ "resource" ", "}}Resources: {{.}}{{end}}
{{with .Labels.body_text}}{{.}}{{end}}
{{with .Description}}Description: {{.}}{{end}}{{if .IsFlapping}} (flapping: notifications muted for {{.Flapping.MuteMinutes}} minutes){{end}}
{{with .Responders}}Responders:{{range .}} @{{.PersonName}}{{end}}{{end}}
Details: {{.DetailUrl}} | Acknowledge: {{.DetailUrl}}?ack=1"#;

/// SMS and voice, verbatim from RSP-351.
const PHONE: &str = r#"You have a pending incident: {{.Title}}, Channel: {{default "None" .ChannelName}}, Severity: {{.IncidentSeverity}}{{if gt .AlertCnt 1}}, Grouped {{.AlertCnt}} alerts{{end}}"#;

/// Email HTML; values are escaped by the engine (RSP-342). No duration in email (RSP-351).
const EMAIL: &str = r#"<!doctype html><html><body>
<h2>{{fireReason $}}INC #{{.Num}} {{.Title}}</h2>
<table>
<tr><th align="left">Channel</th><td>{{default "None" .ChannelName}}</td></tr>
<tr><th align="left">Severity</th><td>{{.IncidentSeverity}}</td></tr>
<tr><th align="left">Started</th><td>{{date "2006-01-02 15:04:05 MST" .StartTime}}</td></tr>
{{if gt .AlertCnt 1}}<tr><th align="left">Alerts</th><td>{{.AlertCnt}} grouped</td></tr>
{{end}}{{with joinAlertLabels $ "resource" ", "}}<tr><th align="left">Resources</th><td>{{.}}</td></tr>
{{end}}{{with .Responders}}<tr><th align="left">Responders</th><td>{{range $i, $r := .}}{{if $i}} {{end}}@{{$r.PersonName}}{{end}}</td></tr>
{{end}}</table>
{{with .Description}}<pre>{{.}}</pre>
{{end}}<p><a href="{{.DetailUrl}}">Details</a>{{if .ActionUrl}} · <a href="{{.ActionUrl}}?do=ack">Acknowledge</a> · <a href="{{.ActionUrl}}?do=close">Close</a> · <a href="{{.ActionUrl}}?do=snooze">Snooze</a>{{else}} · <a href="{{.DetailUrl}}?ack=1">Acknowledge</a>{{end}}</p>
</body></html>"#;

/// Zoom renders to the JSON object of RSP-350.
const ZOOM: &str = r#"{{- $who := "" -}}{{- range .Responders}}{{$who = print $who " @" .PersonName}}{{end -}}
{"content":{"head":{"text":{{toJson (print (fireReason $) "INC #" .Num " " .Title)}}},"body":[{"type":"message","text":{{toJson (print "Channel: " (default "None" .ChannelName) "\nSeverity: " .IncidentSeverity "\nStarted: " (date "2006-01-02 15:04:05 MST" .StartTime) " (" (ago .StartTime) " ago)" (ternary (printf "\nAlerts: %d grouped" .AlertCnt) "" (gt .AlertCnt 1)) (ternary (print "\nResources: " (joinAlertLabels $ "resource" ", ")) "" (ne (joinAlertLabels $ "resource" ", ") "")) (ternary (print "\nDescription: " .Description) "" (ne .Description "")) (ternary (printf "\nFlapping: notifications muted for %d minutes" .Flapping.MuteMinutes) "" .IsFlapping) (ternary (printf "\nAlert storm: %d alerts grouped" .AlertCnt) "" .IsInStorm) (ternary (print "\nResponders:" $who) "" (ne $who "")))}}},{"type":"message","text":{{toJson (print "Details: " .DetailUrl "\nAcknowledge: " .DetailUrl "?ack=1")}}}]},"is_markdown_support":true}"#;

pub fn default_body(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => EMAIL,
        Channel::Sms | Channel::Voice => PHONE,
        Channel::Dingtalk
        | Channel::Wecom
        | Channel::Feishu
        | Channel::Slack
        | Channel::Telegram => BOT,
        Channel::WecomApp => WECOM_APP,
        Channel::FeishuApp | Channel::DingtalkApp | Channel::SlackApp | Channel::TeamsApp => APP,
        Channel::Zoom => ZOOM,
    }
}
