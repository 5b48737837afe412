//! The template environment: every template is compiled into the binary, HTML is escaped
//! automatically, and a few filters format what the Open API answers (Unix seconds) for
//! people.

use std::sync::OnceLock;

use axum::response::Html;
use minijinja::{Environment, Value as JValue};

macro_rules! templates {
    ($env:ident, $($name:literal),* $(,)?) => {
        $(
            if let Err(e) = $env.add_template(
                $name,
                include_str!(concat!("../../templates/console/", $name)),
            ) {
                tracing::error!(template = $name, error = %e, "console template does not compile");
            }
        )*
    };
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        templates!(
            env,
            "base.html",
            "error.html",
            "action_link.html",
            "signin.html",
            "register.html",
            "incidents.html",
            "results.html",
            "incident.html",
            "incident_body.html",
            "alert_events.html",
            "related_changes.html",
            "label_suggestions.html",
            "channels.html",
            "rule.html",
            "rule_form.html",
            "schedules.html",
            "schedule.html",
            "schedule_new.html",
            "schedule_form.html",
            "schedule_month.html",
            "schedule_layers.html",
            "schedule_layers_form.html",
            "schedule_override_form.html",
            "schedule_swap_form.html",
            "schedule_feed.html",
            "calendars.html",
            "calendar.html",
            "calendar_new.html",
            "calendar_form.html",
            "calendar_month.html",
            "members.html",
            "member_list.html",
            "invite_form.html",
            "teams.html",
            "insights.html",
            "team.html",
            "team_form.html",
            "ticket_syncs.html",
            "ticket_sync.html",
            "ticket_sync_form.html",
            "settings.html",
            "profile.html",
            "contact.html",
            "preference.html",
            "app_keys.html",
            "push_devices.html",
            "integrations.html",
            "routing.html",
            "route_rule_form.html",
            "noise_rules.html",
            "noise_rule.html",
            "noise_form.html",
            "condition_rows.html",
            "incident_groups.html",
            "route_rule.html",
            "route_edit_form.html",
            "noise_settings.html",
            "noise_settings_form.html",
            "noise_preview.html",
            "enrichment.html",
            "pipeline.html",
            "mapping_tables.html",
            "mapping_table.html",
            "list_columns_form.html",
            "route_layout_form.html",
            "account.html",
            "account_body.html",
        );
        env.add_filter("when", when);
        env.add_filter("ago", ago);
        env.add_filter("until", until);
        env.add_global("htmx_url", super::assets::htmx_url());
        env.add_global("css_url", super::assets::css_url());
        env.add_global("schedule_drag_url", super::assets::schedule_drag_url());
        env.add_global("version", env!("CARGO_PKG_VERSION"));
        env
    })
}

/// Renders a template; a failure is logged and shown as a plain error page.
pub fn render(name: &str, ctx: JValue) -> Html<String> {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html),
        Err(e) => {
            tracing::error!(template = name, error = %e, "console template failed");
            Html(format!(
                "<!doctype html><title>Klaxon</title><p>The page could not be drawn: {}</p>",
                escape(&e.to_string())
            ))
        }
    }
}

/// Renders a template the tests check directly.
#[cfg(test)]
pub fn render_string(name: &str, ctx: JValue) -> Result<String, minijinja::Error> {
    env().get_template(name).and_then(|t| t.render(ctx))
}

pub fn escape(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

/// Unix seconds → `2026-11-26 11:33:05 UTC`; 0 (unset) → `-`.
pub(super) fn when(secs: i64) -> String {
    if secs <= 0 {
        return "-".to_string();
    }
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => "-".to_string(),
    }
}

/// How long before `now` (both Unix seconds) — `42 s`, `5 min`, `3 h 10 min`, `2 d 4 h`.
pub(super) fn ago(secs: i64, now: i64) -> String {
    if secs <= 0 {
        return "-".to_string();
    }
    let d = (now - secs).max(0);
    match d {
        0..60 => format!("{d} s"),
        60..3600 => format!("{} min", d / 60),
        3600..86_400 => format!("{} h {} min", d / 3600, d % 3600 / 60),
        _ => format!("{} d {} h", d / 86_400, d % 86_400 / 3600),
    }
}

/// How long from `now` until `secs` (both Unix seconds), in the words of [`ago`]; a past
/// instant is `0 s`.
fn until(secs: i64, now: i64) -> String {
    if secs <= 0 {
        return "-".to_string();
    }
    ago(now, now + (secs - now).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_for_people() {
        assert_eq!(when(0), "-");
        assert_eq!(when(1_764_156_785), "2025-11-26 11:33:05 UTC");
        assert_eq!(ago(100, 142), "42 s");
        assert_eq!(ago(100, 100 + 3 * 3600 + 600), "3 h 10 min");
        assert_eq!(ago(100, 100 + 2 * 86_400 + 4 * 3600), "2 d 4 h");
        assert_eq!(ago(0, 5), "-");
        assert_eq!(until(100 + 3 * 3600 + 600, 100), "3 h 10 min");
        assert_eq!(until(50, 100), "0 s");
    }

    /// The results fragment draws a thousand rows (more than a page ever holds) with every
    /// title escaped.
    #[test]
    fn the_results_fragment_renders_a_thousand_incidents() {
        let items: Vec<serde_json::Value> = (0..1000)
            .map(|n| {
                serde_json::json!({
                    "incident_id": format!("{n:024x}"),
                    "num": format!("{n:06X}"),
                    "title": format!("<b>incident {n}</b>"),
                    "incident_severity": "Critical",
                    "progress": "Triggered",
                    "channel_name": "Default",
                    "start_time": 1_764_156_000 + n,
                    "snoozed_before": 0,
                    "active_alert_cnt": 1,
                    "alert_cnt": 1,
                })
            })
            .collect();
        let r = minijinja::context! {
            items => JValue::from(minijinja::value::Serde(&items)),
            total => 1000,
            total_text => "1000",
            now => 1_764_160_000,
            query => "who=all&range=7d",
            page => 1,
            pages => 10,
            who => "all",
        };
        let html = render_string("results.html", minijinja::context! { r => r }).unwrap();
        assert_eq!(html.matches("id=\"row-").count(), 1000);
        assert!(html.contains("&lt;b&gt;incident 999&lt;&#x2f;b&gt;"));
        assert!(!html.contains("<b>incident"));
    }

    #[test]
    fn every_template_compiles() {
        for name in [
            "base.html",
            "error.html",
            "signin.html",
            "register.html",
            "incidents.html",
            "results.html",
            "incident.html",
            "incident_body.html",
            "alert_events.html",
            "related_changes.html",
            "label_suggestions.html",
            "channels.html",
            "rule.html",
            "rule_form.html",
            "schedules.html",
            "schedule.html",
            "schedule_new.html",
            "schedule_form.html",
            "schedule_month.html",
            "schedule_layers.html",
            "schedule_layers_form.html",
            "schedule_override_form.html",
            "schedule_swap_form.html",
            "schedule_feed.html",
            "calendars.html",
            "calendar.html",
            "calendar_new.html",
            "calendar_form.html",
            "calendar_month.html",
            "members.html",
            "member_list.html",
            "invite_form.html",
            "teams.html",
            "insights.html",
            "team.html",
            "team_form.html",
            "ticket_syncs.html",
            "ticket_sync.html",
            "ticket_sync_form.html",
            "settings.html",
            "profile.html",
            "contact.html",
            "preference.html",
            "app_keys.html",
            "integrations.html",
            "routing.html",
            "route_rule_form.html",
            "noise_rules.html",
            "noise_rule.html",
            "noise_form.html",
            "condition_rows.html",
            "incident_groups.html",
            "route_rule.html",
            "route_edit_form.html",
            "noise_settings.html",
            "noise_settings_form.html",
            "noise_preview.html",
            "enrichment.html",
            "pipeline.html",
            "mapping_tables.html",
            "mapping_table.html",
            "list_columns_form.html",
            "route_layout_form.html",
            "account.html",
            "account_body.html",
        ] {
            assert!(env().get_template(name).is_ok(), "{name}");
        }
    }
}
